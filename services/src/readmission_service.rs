//! The gRPC `Readmission` and `Projections` services over the readmission read model.
use crate::errors;
use journey_projections::{
    coordination::Coordination,
    readmission::{
        queries::{self, GroupBy as G, StayRow},
        Readmission as Model,
    },
    runtime::Runner,
};
use journey_proto::v1::{
    readmission_server::Readmission, AtRiskRequest, AtRiskResponse, GroupBy, IndexStay,
    IndexStaysRequest, IndexStaysResponse, PatientStaysRequest, PatientStaysResponse, Period,
    RateRow, RatesRequest, RatesResponse,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct ReadmissionService {
    pub runner: Arc<Runner<Model>>,
    /// Where reads are recorded (who read which patient).
    pub access: Option<crate::access_log::AccessLog>,
    /// The coordination read model, whose consents hide patients from the organisations they
    /// revoked (`None`: consents unknown here, so no patient-level row for a quality caller).
    pub consents: Option<Arc<Runner<Coordination>>>,
}

/// "YYYY-MM-DD" → day number; empty → `default`.
pub(crate) fn parse_day(field: &str, s: &str, default: i64) -> Result<i64, Status> {
    if s.is_empty() {
        return Ok(default);
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| errors::invalid(field, &format!("{s:?} is not a date (YYYY-MM-DD)")))?;
    Ok(d.signed_duration_since(chrono::NaiveDate::default())
        .num_days())
}

pub fn date_of(day: i64) -> String {
    (chrono::NaiveDate::default() + chrono::Duration::days(day))
        .format("%Y-%m-%d")
        .to_string()
}

pub(crate) fn today() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(86_400)
}

pub(crate) fn period(p: Option<&Period>) -> Result<(i64, i64), Status> {
    let p = p.cloned().unwrap_or_default();
    let from = parse_day("period.from_date", &p.from_date, i64::MIN / 2)?;
    let to = parse_day("period.to_date", &p.to_date, i64::MAX / 2)?;
    if from > to {
        return Err(errors::invalid("period", "from_date is after to_date"));
    }
    Ok((from, to))
}

fn index_stay(r: StayRow) -> IndexStay {
    IndexStay {
        patient_id: r.patient_id,
        encounter_id: r.encounter_id,
        first_encounter_id: r.first_encounter_id,
        facility_id: r.facility_id,
        unit: r.unit,
        disposition: r.disposition as i32,
        admit_date: date_of(r.admit_day),
        discharge_date: date_of(r.discharge_day),
        length_of_stay_days: r.length_of_stay,
        lace: r.lace as u32,
        charlson: r.charlson as u32,
        high_risk: r.lace >= 10,
        readmitted: r.readmitted,
        readmit_encounter_id: r.readmit_encounter_id.unwrap_or_default(),
        days_to_readmission: r.days_to_readmission.unwrap_or_default(),
        unplanned: r.unplanned,
        ed_revisit: r.ed_revisit,
    }
}

fn rate_row(r: queries::RateRow) -> RateRow {
    let ratio = |n: i64| {
        if r.index_stays == 0 {
            0.0
        } else {
            n as f64 / r.index_stays as f64
        }
    };
    RateRow {
        rate: ratio(r.readmissions),
        unplanned_rate: ratio(r.unplanned_readmissions),
        key: r.key,
        index_stays: r.index_stays as u64,
        readmissions: r.readmissions as u64,
        unplanned_readmissions: r.unplanned_readmissions as u64,
        ed_revisits: r.ed_revisits as u64,
    }
}

fn group(g: i32) -> Result<G, Status> {
    Ok(
        match GroupBy::try_from(g)
            .map_err(|_| errors::invalid("group_by", &format!("unknown value {g}")))?
        {
            GroupBy::None => G::None,
            GroupBy::Facility => G::Facility,
            GroupBy::Unit => G::Unit,
            GroupBy::Disposition => G::Disposition,
            GroupBy::Month => G::Month,
            GroupBy::DiagnosisChapter => G::DiagnosisChapter,
            GroupBy::Territory => G::Territory,
        },
    )
}

/// A read to record: who, for what purpose, from where, and the request.
struct AccessOf {
    caller: Option<crate::principal::Principal>,
    purpose: String,
    peer: Option<std::net::SocketAddr>,
    detail: String,
}

fn access_of<T: std::fmt::Debug>(request: &Request<T>) -> AccessOf {
    AccessOf {
        caller: crate::principal::of(request).cloned(),
        purpose: crate::access_log::purpose(request),
        peer: request.remote_addr(),
        detail: format!("{:?}", request.get_ref()),
    }
}

impl ReadmissionService {
    /// Records the read of the patients of `stays` (`patient`: the one asked about, "" for a
    /// list), then returns `result`.
    async fn audit<T>(
        &self,
        a: AccessOf,
        call: &str,
        patient: &str,
        stays: &[IndexStay],
        result: Result<T, Status>,
    ) -> Result<T, Status> {
        let patients: Vec<String> = if patient.is_empty() {
            stays.iter().map(|s| s.patient_id.clone()).collect()
        } else {
            Vec::new()
        };
        let access = crate::access_log::Access {
            caller: a.caller.as_ref(),
            call,
            patient_id: patient,
            patients: &patients,
            purpose: &a.purpose,
            detail: a.detail,
            peer: a.peer,
            ..Default::default()
        };
        crate::access_log::audited(self.access.as_ref(), access, result).await
    }

    /// Refuses one patient's rows to a caller whose organisation the patient revoked.
    async fn patient_consented(&self, a: &AccessOf, patient: &str) -> Result<(), Status> {
        let Some(organisation) = crate::consent::scope(a.caller.as_ref()) else {
            return Ok(());
        };
        let Some(consents) = &self.consents else {
            return Err(errors::consent_unknown(&organisation));
        };
        let revoked = crate::consent::revoked_among(consents, &organisation, [patient]).await?;
        match revoked.is_empty() {
            true => Ok(()),
            false => Err(errors::consent_revoked(patient, &organisation)),
        }
    }

    /// `rows` without the patients who revoked the consent to share with the caller's
    /// organisation (admins and auditors see every row).
    async fn consented(
        &self,
        caller: Option<&crate::principal::Principal>,
        rows: Vec<StayRow>,
    ) -> Result<Vec<StayRow>, Status> {
        let Some(organisation) = crate::consent::scope(caller) else {
            return Ok(rows);
        };
        let Some(consents) = &self.consents else {
            return Err(errors::consent_unknown(&organisation));
        };
        let revoked = crate::consent::revoked_among(
            consents,
            &organisation,
            rows.iter().map(|r| r.patient_id.as_str()),
        )
        .await?;
        Ok(rows
            .into_iter()
            .filter(|r| !revoked.contains(&r.patient_id))
            .collect())
    }
}

#[tonic::async_trait]
impl Readmission for ReadmissionService {
    async fn rates(
        &self,
        request: Request<RatesRequest>,
    ) -> Result<Response<RatesResponse>, Status> {
        let req = request.into_inner();
        let (from, to) = period(req.period.as_ref())?;
        let g = group(req.group_by)?;
        let checkpoint = self.runner.watch().borrow().checkpoint;
        let p = self.runner.live_prefix();
        let pool = &self.runner.db.pool;
        let rows = queries::rates(pool, &p, from, to, g)
            .await
            .map_err(errors::read_model_error)?;
        let total = queries::RateRow::total(&rows);
        let (day_surgery, had) = queries::other_stays(pool, &p, from, to)
            .await
            .map_err(errors::read_model_error)?;
        Ok(Response::new(RatesResponse {
            rows: rows.into_iter().map(rate_row).collect(),
            total: Some(rate_row(total)),
            checkpoint,
            day_surgery_stays: day_surgery as u64,
            had_stays: had as u64,
        }))
    }

    async fn index_stays(
        &self,
        request: Request<IndexStaysRequest>,
    ) -> Result<Response<IndexStaysResponse>, Status> {
        let access = access_of(&request);
        let req = request.into_inner();
        let (from, to) = period(req.period.as_ref())?;
        let size = match req.page_size {
            0 => 100,
            n => n.min(1000),
        } as i64;
        let offset = if req.page_token.is_empty() {
            0
        } else {
            req.page_token
                .parse::<i64>()
                .map_err(|_| errors::invalid("page_token", "not a token this service issued"))?
        };
        let rows = queries::index_stays(
            &self.runner.db.pool,
            &self.runner.live_prefix(),
            from,
            to,
            offset,
            size + 1,
        )
        .await
        .map_err(errors::read_model_error)?;
        let more = rows.len() as i64 > size;
        let rows = rows.into_iter().take(size as usize).collect();
        let rows = self.consented(access.caller.as_ref(), rows).await;
        let answer = rows.map(|rows| IndexStaysResponse {
            stays: rows.into_iter().map(index_stay).collect(),
            next_page_token: if more {
                (offset + size).to_string()
            } else {
                String::new()
            },
        });
        let stays = answer.as_ref().map_or(&[][..], |a| &a.stays);
        let stays = stays.to_vec();
        self.audit(access, "Readmission/IndexStays", "", &stays, answer)
            .await
            .map(Response::new)
    }

    async fn at_risk(
        &self,
        request: Request<AtRiskRequest>,
    ) -> Result<Response<AtRiskResponse>, Status> {
        let access = access_of(&request);
        let req = request.into_inner();
        let as_of = parse_day("as_of_date", &req.as_of_date, today())?;
        let limit = match req.limit {
            0 => 100,
            n => n.min(10_000),
        } as i64;
        let rows = queries::at_risk(
            &self.runner.db.pool,
            &self.runner.live_prefix(),
            as_of,
            limit,
        )
        .await
        .map_err(errors::read_model_error)?;
        let answer = self
            .consented(access.caller.as_ref(), rows)
            .await
            .map(|rows| AtRiskResponse {
                stays: rows.into_iter().map(index_stay).collect(),
            });
        let stays = answer.as_ref().map_or(Vec::new(), |a| a.stays.clone());
        self.audit(access, "Readmission/AtRisk", "", &stays, answer)
            .await
            .map(Response::new)
    }

    async fn patient_stays(
        &self,
        request: Request<PatientStaysRequest>,
    ) -> Result<Response<PatientStaysResponse>, Status> {
        let access = access_of(&request);
        let req = request.into_inner();
        if req.patient_id.is_empty() {
            return Err(errors::invalid("patient_id", "required"));
        }
        let rows = queries::patient_stays(
            &self.runner.db.pool,
            &self.runner.live_prefix(),
            &req.patient_id,
        )
        .await
        .map_err(errors::read_model_error)?;
        let answer = self
            .patient_consented(&access, &req.patient_id)
            .await
            .map(|()| PatientStaysResponse {
                stays: rows.into_iter().map(index_stay).collect(),
            });
        self.audit(
            access,
            "Readmission/PatientStays",
            &req.patient_id,
            &[],
            answer,
        )
        .await
        // The access log keeps the refusal; the caller gets what an unknown patient gets, no
        // stays (no enumeration).
        .or_else(|s| match s.code() {
            tonic::Code::PermissionDenied => Ok(PatientStaysResponse::default()),
            _ => Err(s),
        })
        .map(Response::new)
    }
}
