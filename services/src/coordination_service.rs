//! The gRPC `Coordination` service over the coordination read model (and, for the readmission
//! figures of the indicators, the readmission read model of the same database).
use crate::{
    access_log::{audited, purpose, Access, AccessLog},
    errors,
    principal::{self, Principal, Role},
    readmission_service::period,
};
use journey_projections::{
    coordination::{
        calendar::{paris_midnight, week_start_secs},
        followup::{quantile, AppointmentState, LETTER_ITEMS_REQUIRED},
        indicators, letters, patient,
        queries::{self, Filter, Item},
        Coordination as Model,
    },
    readmission::Readmission,
    runtime::Runner,
    scope::Scope,
};
use journey_proto::{
    prost_types::Timestamp,
    v1::{
        coordination_server::Coordination, AlertView, AppointmentView, FollowUpRequest,
        FollowUpResponse, IndicatorsRequest, IndicatorsResponse, LetterQuality, Referent, Severity,
        WeekIndicators, WorklistItem, WorklistRequest, WorklistResponse,
    },
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub(crate) mod memo;
use memo::{Memo, Stand};

#[derive(Clone)]
pub struct CoordinationService {
    pub runner: Arc<Runner<Model>>,
    /// Where reads are recorded (who read which patient).
    pub access: Option<AccessLog>,
    /// The readmission read model in the same database, for the readmission indicators.
    pub readmission: Option<Arc<Runner<Readmission>>>,
}

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn now_or(t: Option<&Timestamp>) -> i64 {
    t.map_or_else(|| chrono::Utc::now().timestamp(), |t| t.seconds)
}

fn referent(r: queries::Referent) -> Referent {
    Referent {
        role: r.role,
        professional_id: r.professional_id,
        name: r.name,
        phone: r.phone,
    }
}

pub fn worklist_item(i: Item, now: i64) -> WorklistItem {
    let (pathway, pathway_steps) = crate::pathway_steps::of(&i.discharge, now);
    let (d, fu) = (i.discharge, i.follow_up);
    WorklistItem {
        patient_id: d.patient_id,
        display_name: d.display_name,
        birth_date: d.birth_date,
        sex: d.sex,
        ins: d.ins,
        encounter_id: d.encounter_id,
        facility_id: d.facility_id,
        facility_name: d.facility_name,
        territory: d.territory,
        unit: d.unit,
        setting: d.setting,
        disposition: d.disposition,
        discharged_at: ts(d.facts.discharged_at),
        letter: fu.letter.as_str().into(),
        letter_delay_days: fu.letter_delay_days.unwrap_or(-1),
        letter_items_present: fu.letter_items,
        letter_items_required: LETTER_ITEMS_REQUIRED,
        medication_reconciliation: fu.reconciliation.as_str().into(),
        first_contact: fu.first_contact.as_str().into(),
        first_contact_due_at: ts(fu.first_contact_due_at),
        first_contact_delay_hours: fu.first_contact_delay_hours.unwrap_or(-1),
        appointments_upcoming: fu.appointments_upcoming,
        appointments_done: fu.appointments_done,
        appointments_missed: fu.appointments_missed,
        appointments_overdue: fu.appointments_overdue,
        next_appointment_due_at: fu.next_appointment_due_at.and_then(ts),
        open_alerts_low: fu.open_alerts[0],
        open_alerts_moderate: fu.open_alerts[1],
        open_alerts_high: fu.open_alerts[2],
        open_alerts_critical: fu.open_alerts[3],
        unacknowledged_alerts: fu.unacknowledged_alerts,
        oldest_open_alert_age_hours: fu
            .oldest_open_alert_at
            .map_or(0, |t| ((now - t).max(0) / 3600) as u64),
        referents: d.referents.into_iter().map(referent).collect(),
        consent: d.consent,
        overdue: fu.overdue,
        urgency: fu.urgency,
        tasks: fu.tasks.iter().map(|t| t.to_string()).collect(),
        pathway,
        pathway_steps,
    }
}

/// Checks a worklist request; every bad field gets its own message.
pub fn filter(req: &WorklistRequest) -> Result<Filter, Status> {
    let sev = Severity::try_from(req.min_alert_severity).map_err(|_| {
        errors::invalid(
            "min_alert_severity",
            &format!(
                "unknown value {}: use 0 (any) to 4 (critical)",
                req.min_alert_severity
            ),
        )
    })?;
    if req.window_days > 3660 {
        return Err(errors::invalid("window_days", "at most 3660 (ten years)"));
    }
    Ok(Filter {
        facility_id: req.facility_id.clone(),
        territory: req.territory.clone(),
        referent_id: req.referent_id.clone(),
        organisation: None,
        overdue_only: req.overdue_only,
        min_alert_severity: sev as i32,
        window_days: if req.window_days == 0 {
            30
        } else {
            req.window_days as i64
        },
    })
}

/// The page a request asks for: (offset, size).
pub fn page(size: u32, token: &str) -> Result<(usize, usize), Status> {
    let size = match size {
        0 => 50,
        n => n.min(1000) as usize,
    };
    let offset = if token.is_empty() {
        0
    } else {
        token
            .parse::<usize>()
            .map_err(|_| errors::invalid("page_token", "not a token this service issued"))?
    };
    Ok((offset, size))
}

/// A page that starts past the end (the list shrank since the token was issued) is refused.
pub fn check_offset(offset: usize, total: usize) -> Result<(), Status> {
    if offset > total {
        return Err(errors::invalid(
            "page_token",
            &format!(
                "page starts at item {offset} but only {total} match; start again without a token"
            ),
        ));
    }
    Ok(())
}

impl CoordinationService {
    /// The worklist page `req` asks for, as `caller` may see it (a coordinator: its territory).
    pub async fn worklist_page(
        &self,
        req: &WorklistRequest,
        caller: Option<&Principal>,
    ) -> Result<WorklistResponse, Status> {
        crate::pathway_steps::templates()?;
        let mut f = filter(req)?;
        f.territory = territory_for(caller, &req.territory)?;
        f.organisation = crate::consent::scope(caller);
        let now = now_or(req.as_of.as_ref());
        let checkpoint = self.runner.watch().borrow().checkpoint;
        let (offset, size) = page(req.page_size, &req.page_token)?;
        let found = queries::worklist(
            &self.runner.db.pool,
            &self.runner.live_prefix(),
            &f,
            now,
            offset as u64,
            size as u64,
        )
        .await
        .map_err(errors::read_model_error)?;
        let total = found.total as usize;
        check_offset(offset, total)?;
        let next = offset + size;
        let items: Vec<WorklistItem> = found
            .items
            .into_iter()
            .map(|i| worklist_item(i, now))
            .collect();
        Ok(WorklistResponse {
            items,
            next_page_token: if next < total {
                next.to_string()
            } else {
                String::new()
            },
            total: total as u64,
            checkpoint,
        })
    }

    pub async fn follow_up_of(
        &self,
        req: &FollowUpRequest,
        caller: Option<&Principal>,
    ) -> Result<FollowUpResponse, Status> {
        if req.patient_id.is_empty() {
            return Err(errors::invalid("patient_id", "required"));
        }
        crate::pathway_steps::templates()?;
        let territory = territory_for(caller, "")?;
        if let Some(org) = crate::consent::scope(caller) {
            let revoked = queries::consent_revoked(
                &self.runner.db.pool,
                &self.runner.live_prefix(),
                &req.patient_id,
                &org,
            )
            .await
            .map_err(errors::read_model_error)?;
            if revoked {
                tracing::info!(patient = %req.patient_id, organisation = %org, "follow-up refused: consent revoked");
                return Err(errors::consent_revoked(&req.patient_id, &org));
            }
        }
        let now = now_or(req.as_of.as_ref());
        let checkpoint = self.runner.watch().borrow().checkpoint;
        let found = patient::patient(
            &self.runner.db.pool,
            &self.runner.live_prefix(),
            &req.patient_id,
            now,
        )
        .await
        .map_err(errors::read_model_error)?
        .ok_or_else(|| errors::no_follow_up(&req.patient_id))?;
        let discharges: Vec<WorklistItem> = found
            .discharges
            .into_iter()
            .map(|i| worklist_item(i, now))
            .collect();
        let answer = FollowUpResponse {
            patient_id: req.patient_id.clone(),
            display_name: found.display_name,
            discharges,
            appointments: found
                .appointments
                .into_iter()
                .map(|(_, a, with)| AppointmentView {
                    state: match a.state {
                        AppointmentState::Completed => "completed",
                        AppointmentState::Missed => "missed",
                        AppointmentState::Scheduled if a.due_at < now => "overdue",
                        AppointmentState::Scheduled => "scheduled",
                    }
                    .into(),
                    appointment_id: a.appointment_id,
                    kind: a.kind,
                    due_at: ts(a.due_at),
                    with_name: with,
                })
                .collect(),
            alerts: found
                .alerts
                .into_iter()
                .map(|(a, rule)| AlertView {
                    alert_id: a.alert_id,
                    severity: a.severity,
                    rule,
                    reason: a.reason,
                    raised_at: ts(a.raised_at),
                    acknowledged: a.acknowledged_at.is_some(),
                    resolved: a.resolved_at.is_some(),
                    age_hours: (a.resolved_at.unwrap_or(now) - a.raised_at).max(0) as u64 / 3600,
                })
                .collect(),
            referents: found.referents.into_iter().map(referent).collect(),
            deceased: found.deceased,
            checkpoint,
        };
        if !territory.is_empty() && !answer.discharges.iter().any(|d| d.territory == territory) {
            return Err(errors::outside_territory(&answer.patient_id, &territory));
        }
        Ok(answer)
    }

    /// The indicators of `req`, over the units whose name holds its `unit` as a reader typed it
    /// (any case; empty: every unit).
    pub async fn indicators_of(
        &self,
        req: &IndicatorsRequest,
        caller: Option<&Principal>,
    ) -> Result<IndicatorsResponse, Status> {
        let territory = territory_for(caller, &req.territory)?;
        let (from_day, to_day) = period(req.period.as_ref())?;
        let today = crate::readmission_service::today();
        // Open-ended periods: the last twelve weeks up to today.
        let open = |d: i64| d.abs() > 10_000_000;
        let to_day = if open(to_day) { today } else { to_day };
        let from_day = if open(from_day) {
            to_day - 12 * 7 + 1
        } else {
            from_day
        };
        if to_day - from_day > 3 * 366 {
            return Err(errors::invalid(
                "period",
                "at most three years of weeks at once",
            ));
        }
        let question = Question {
            from_day,
            to_day,
            facility_id: req.facility_id.clone(),
            territory,
            unit: req.unit.trim().to_string(),
        };
        let mut stands = vec![Stand::of(&self.runner)];
        stands.extend(self.readmission.as_ref().map(Stand::of));
        let compute = Self::figures(
            self.runner.clone(),
            self.readmission.clone(),
            question.clone(),
        );
        let figures = FIGURES
            .get_or(question, stands, compute)
            .await
            .map_err(errors::read_model_error)?;
        let now = chrono::Utc::now().timestamp();
        let mut answer = figures.answer.clone();
        for (w, raised) in answer.weeks.iter_mut().zip(&figures.open_alerts) {
            w.open_alert_age_median_hours =
                quantile(&mut raised.open_alert_ages_h(now), 0.5).unwrap_or(-1);
        }
        Ok(answer)
    }

    /// The figures of `q` as the read models stand (the open alerts' ages aside): the weekly
    /// counts and the QLS, queried at once.
    async fn figures(
        runner: Arc<Runner<Model>>,
        readmission: Option<Arc<Runner<Readmission>>>,
        q: Question,
    ) -> Result<Figures, sqlx::Error> {
        // Read before the figures: they hold at least the events up to it.
        let checkpoint = runner.watch().borrow().checkpoint;
        let day = |d: i64| paris_midnight(chrono::NaiveDate::default() + chrono::Duration::days(d));
        let rp = readmission.as_ref().map(|r| r.live_prefix());
        let p = runner.live_prefix();
        let places = format!(
            "{p}{}",
            journey_projections::coordination::directory::PLACES
        );
        let (weeks, qls) = tokio::try_join!(
            indicators::indicators(
                &runner.db.pool,
                &p,
                Scope {
                    readmission_prefix: rp.as_deref(),
                    places: Some(&places),
                    from: day(q.from_day),
                    to: day(q.to_day + 1),
                    facility_id: &q.facility_id,
                    territory: &q.territory,
                    unit: &q.unit,
                },
            ),
            letters::qls_summary(
                &runner.db.pool,
                &p,
                Scope {
                    readmission_prefix: None,
                    places: Some(&places),
                    from: week_start_secs(day(q.from_day)),
                    to: day(q.to_day + 1),
                    facility_id: &q.facility_id,
                    territory: &q.territory,
                    unit: &q.unit,
                },
            ),
        )?;
        let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        let answer = IndicatorsResponse {
            letter_quality: Some(LetterQuality {
                stays: qls.stays,
                mean_score: qls.mean().unwrap_or(0.0),
                scored: qls.scored,
                complete: qls.complete,
            }),
            weeks: weeks
                .iter()
                .map(|w| {
                    let mut delays = w.first_contact_delays_h.clone();
                    WeekIndicators {
                        week: w.week.format("%Y-%m-%d").to_string(),
                        discharges: w.discharges,
                        index_stays: w.index_stays,
                        readmissions_30d: w.readmissions_30d,
                        readmission_rate: ratio(w.readmissions_30d, w.index_stays),
                        ed_revisits_30d: w.ed_revisits_30d,
                        first_contacts: delays.len() as u64,
                        first_contact_delay_median_hours: quantile(&mut delays, 0.5).unwrap_or(-1),
                        first_contact_delay_p90_hours: quantile(&mut delays, 0.9).unwrap_or(-1),
                        letters: w.letters,
                        letter_same_day_rate: ratio(w.letters_same_day, w.discharges),
                        letter_completeness: ratio(
                            w.letter_items_sum,
                            w.letters * LETTER_ITEMS_REQUIRED as u64,
                        ),
                        appointments_due: w.appointments_due,
                        appointments_missed: w.appointments_missed,
                        alerts_raised: w.alerts_raised,
                        alerts_open: w.alerts_open,
                        // The time's: set at each answer from `open_alerts`.
                        open_alert_age_median_hours: -1,
                        had_palliative: w.had[0],
                        had_acute_chronic: w.had[1],
                        had_nursing_home_support: w.had[2],
                    }
                })
                .collect(),
            checkpoint,
        };
        let open_alerts = weeks
            .into_iter()
            .map(|w| indicators::Week {
                open_alerts_raised_at: w.open_alerts_raised_at,
                ..Default::default()
            })
            .collect();
        Ok(Figures {
            answer,
            open_alerts,
        })
    }
}

/// What an indicators request asks once its period and territory are decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Question {
    from_day: i64,
    to_day: i64,
    facility_id: String,
    territory: String,
    unit: String,
}

/// The answer to a [`Question`] but for the open alerts' ages (they grow with the time), with
/// when each week's open alerts were raised.
pub(crate) struct Figures {
    answer: IndicatorsResponse,
    open_alerts: Vec<indicators::Week>,
}

/// The indicators' answers, kept while the coordination and readmission views stand still.
static FIGURES: Memo<Question, Figures> = Memo::new();

/// A coordinator sees its own territory only: the territory a request may cover.
pub(crate) fn territory_for(caller: Option<&Principal>, requested: &str) -> Result<String, Status> {
    let Some(p) = caller.filter(|p| p.role == Role::Coordinator) else {
        return Ok(requested.to_string());
    };
    let Some(own) = &p.territory else {
        return Err(errors::no_territory(p));
    };
    if !requested.is_empty() && requested != own {
        return Err(errors::not_your_territory(requested, own));
    }
    Ok(own.clone())
}

impl CoordinationService {
    /// Records a read of `patient_id` ("" for a list) by `caller`, then returns `result`.
    pub async fn audit<T>(
        &self,
        caller: Option<&Principal>,
        call: &str,
        patient_id: &str,
        purpose: &str,
        detail: String,
        result: Result<T, Status>,
    ) -> Result<T, Status> {
        let access = Access {
            caller,
            call,
            patient_id,
            purpose,
            detail,
            ..Default::default()
        };
        audited(self.access.as_ref(), access, result).await
    }
}

impl CoordinationService {
    /// Records a worklist page read under every patient it returned, then returns it.
    pub async fn audit_worklist(
        &self,
        caller: Option<&Principal>,
        call: &str,
        purpose: &str,
        peer: Option<std::net::SocketAddr>,
        detail: String,
        result: Result<WorklistResponse, Status>,
    ) -> Result<WorklistResponse, Status> {
        let patients: Vec<String> = result
            .as_ref()
            .map(|page| page.items.iter().map(|i| i.patient_id.clone()).collect())
            .unwrap_or_default();
        let access = Access {
            caller,
            call,
            patients: &patients,
            purpose,
            detail,
            peer,
            ..Default::default()
        };
        audited(self.access.as_ref(), access, result).await
    }
}

#[tonic::async_trait]
impl Coordination for CoordinationService {
    async fn worklist(
        &self,
        request: Request<WorklistRequest>,
    ) -> Result<Response<WorklistResponse>, Status> {
        let caller = principal::of(&request);
        let result = self.worklist_page(request.get_ref(), caller).await;
        let detail = format!("{:?}", request.get_ref());
        let page = self
            .audit_worklist(
                caller,
                "Coordination/Worklist",
                &purpose(&request),
                request.remote_addr(),
                detail,
                result,
            )
            .await?;
        Ok(Response::new(page))
    }

    async fn follow_up(
        &self,
        request: Request<FollowUpRequest>,
    ) -> Result<Response<FollowUpResponse>, Status> {
        let caller = principal::of(&request);
        let result = self.follow_up_of(request.get_ref(), caller).await;
        let access = Access {
            caller,
            call: "Coordination/FollowUp",
            patient_id: &request.get_ref().patient_id,
            purpose: &purpose(&request),
            peer: request.remote_addr(),
            ..Default::default()
        };
        // The access log keeps why; the caller gets the same answer for a patient outside its
        // territory or withheld by consent as for an unknown one (no enumeration).
        let patient_level = caller.is_some_and(|p| p.territory.is_some());
        let answer = audited(self.access.as_ref(), access, result)
            .await
            .map_err(|s| match s.code() {
                tonic::Code::PermissionDenied if patient_level => {
                    errors::no_follow_up(&request.get_ref().patient_id)
                }
                _ => s,
            })?;
        Ok(Response::new(answer))
    }

    async fn indicators(
        &self,
        request: Request<IndicatorsRequest>,
    ) -> Result<Response<IndicatorsResponse>, Status> {
        let answer = self
            .indicators_of(request.get_ref(), principal::of(&request))
            .await?;
        Ok(Response::new(answer))
    }
}
