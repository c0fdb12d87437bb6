//! `_typeFilter` of a Bulk Data kick-off (Bulk Data Access IG 2.0): FHIR search queries, one per
//! type (`Observation?code=http://loinc.org|29463-7&date=ge2024-01-01`), that narrow what the
//! export writes of that type. The parameters of one query are joined with AND (a parameter
//! given twice too), the values of one parameter separated by commas with OR, several queries of
//! one type with OR; a type without a query is written whole.
//!
//! Each type is searched by the FHIR R4 search parameters that read an element our resources
//! fill ([`parameters`]): tokens (`status`, `code`, `category`, `class`, `clinical-status`,
//! `verification-status`: `code`, `system|code`, `system|`, `|code`) and dates (`date` and the
//! like, and `_lastUpdated` on every type: prefixes `eq` `ne` `gt` `lt` `ge` `le` `sa` `eb`, a
//! year, a month, a day or an instant; a date without a zone is a UTC one, as the resources
//! write their times). A date is compared as FHIR search does, as ranges: the search value's
//! (a month from its first to its last millisecond) against the element's (an instant's
//! millisecond, a period from its start to its end, open at the end while it runs). Anything
//! else (another parameter, a modifier, `ap`, a value that is not a date) is refused, naming the
//! parameters of that type, so that no filter is silently ignored.
use crate::{bundle::Entry, resource::Body};
use chrono::{NaiveDate, NaiveTime};
use serde_json::Value;
use std::borrow::Cow;

/// The queries of `_typeFilter`: each type filtered, with its queries (any of them keeps a
/// resource).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TypeFilters(Vec<(&'static str, Vec<Query>)>);

/// One query: all its conditions hold.
#[derive(Debug, Clone, PartialEq)]
struct Query(Vec<Condition>);

/// One parameter of a query: the element it reads, and its values (any of them holds).
#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Token(Element, Vec<Token>),
    Date(Element, Vec<(Prefix, Range)>),
}

/// What a search parameter reads of a resource.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Element {
    /// A `code` (the `status`): the code alone.
    Code(&'static str),
    /// A Coding (`Encounter.class`).
    Coding(&'static str),
    /// A CodeableConcept, or a list of them (`category`).
    Concept(&'static str),
    /// A date, dateTime, instant or Period: the first of these elements present.
    Date(&'static [&'static str]),
    /// `meta.lastUpdated`.
    LastUpdated,
}

/// A token's value: `code`, `system|code`, `system|` (any code of the system), `|code` (a code
/// without system).
#[derive(Debug, Clone, PartialEq)]
struct Token {
    system: Option<String>,
    code: String,
}

/// A date prefix (FHIR R4 search, 3.1.1.4.5); `ap` is not served.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
}

/// A time range in milliseconds since the epoch, from `start` (included) to `end` (excluded);
/// `i64::MIN` / `i64::MAX` for an open side.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Range {
    start: i64,
    end: i64,
}

/// The search parameters of `kind` in `_typeFilter`: FHIR R4's, where our resources fill the
/// element they read (the CapabilityStatement lists them).
pub fn parameters(kind: &str) -> Vec<&'static str> {
    elements(kind).iter().map(|(name, _)| *name).collect()
}

/// The parameters of a type and what each reads.
fn elements(kind: &str) -> &'static [(&'static str, Element)] {
    use Element::*;
    const STATUS: (&str, Element) = ("status", Code("status"));
    const LAST_UPDATED: (&str, Element) = ("_lastUpdated", LastUpdated);
    match kind {
        "Patient" | "Provenance" => &[LAST_UPDATED],
        "Encounter" => &[
            STATUS,
            ("class", Coding("class")),
            ("date", Date(&["period"])),
            LAST_UPDATED,
        ],
        "Observation" => &[
            STATUS,
            ("code", Concept("code")),
            ("category", Concept("category")),
            ("date", Date(&["effectiveDateTime", "effectivePeriod"])),
            LAST_UPDATED,
        ],
        "Condition" => &[
            ("code", Concept("code")),
            ("category", Concept("category")),
            ("clinical-status", Concept("clinicalStatus")),
            ("verification-status", Concept("verificationStatus")),
            ("onset-date", Date(&["onsetDateTime", "onsetPeriod"])),
            ("recorded-date", Date(&["recordedDate"])),
            LAST_UPDATED,
        ],
        "MedicationRequest" => &[
            STATUS,
            ("code", Concept("medicationCodeableConcept")),
            ("authoredon", Date(&["authoredOn"])),
            LAST_UPDATED,
        ],
        "Procedure" => &[
            STATUS,
            ("code", Concept("code")),
            ("date", Date(&["performedDateTime", "performedPeriod"])),
            LAST_UPDATED,
        ],
        "CarePlan" | "CareTeam" => &[STATUS, LAST_UPDATED],
        "Appointment" => &[STATUS, ("date", Date(&["start"])), LAST_UPDATED],
        "DocumentReference" => &[
            STATUS,
            ("type", Concept("type")),
            ("date", Date(&["date"])),
            LAST_UPDATED,
        ],
        "Communication" => &[STATUS, ("sent", Date(&["sent"])), LAST_UPDATED],
        "Flag" => &[
            STATUS,
            ("category", Concept("category")),
            ("date", Date(&["period"])),
            LAST_UPDATED,
        ],
        "Consent" => &[
            STATUS,
            ("category", Concept("category")),
            ("date", Date(&["dateTime"])),
            LAST_UPDATED,
        ],
        "Task" => &[
            STATUS,
            ("code", Concept("code")),
            ("authored-on", Date(&["authoredOn"])),
            LAST_UPDATED,
        ],
        _ => &[],
    }
}

impl TypeFilters {
    /// Adds the queries of one `_typeFilter` value (decoded once): queries separated by commas, a
    /// comma inside a query's value list kept with that query; within a query, parameters
    /// separated by `&`, names and values percent-encoded. `exported`: the type a name gives,
    /// if exported. A refusal says what is wrong (the request's 400).
    pub fn add(
        &mut self,
        value: &str,
        exported: impl Fn(&str) -> Option<&'static str>,
    ) -> Result<(), String> {
        let mut queries: Vec<String> = Vec::new();
        for piece in value.split(',') {
            let starts_query = piece
                .split_once('?')
                .is_some_and(|(kind, _)| exported(kind.trim()).is_some());
            match queries.last_mut() {
                Some(q) if !starts_query => {
                    q.push(',');
                    q.push_str(piece);
                }
                _ => queries.push(piece.to_string()),
            }
        }
        for q in queries {
            let (kind, params) = q.split_once('?').ok_or_else(|| {
                format!(
                    "{q:?} is not a search query: write <Type>?<parameter>=<value>, e.g. Observation?code=http://loinc.org|29463-7"
                )
            })?;
            let kind = exported(kind.trim())
                .ok_or_else(|| format!("{kind:?} is not a type this server exports"))?;
            let query = parse_query(kind, params)?;
            match self.0.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, kept)) => kept.push(query),
                None => self.0.push((kind, vec![query])),
            }
        }
        Ok(())
    }

    /// The types filtered.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(k, _)| *k)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `entry` is written: its type is not filtered, or one of its type's queries keeps
    /// it. A resource written as text is read back as a tree only when a query reads more than
    /// its `meta.lastUpdated`.
    pub fn keeps(&self, entry: &Entry) -> bool {
        let Some((_, queries)) = self.0.iter().find(|(k, _)| *k == entry.kind()) else {
            return true;
        };
        let json = match queries.iter().all(Query::reads_last_updated_only) {
            true => None,
            false => tree(entry),
        };
        let last_updated = entry.last_updated();
        let resource = Resource {
            json: json.as_deref(),
            last_updated: last_updated.as_deref(),
        };
        queries.iter().any(|q| q.keeps(&resource))
    }
}

/// An entry's JSON as a tree: borrowed, or read back from its text.
fn tree<'a>(entry: &'a Entry) -> Option<Cow<'a, Value>> {
    match entry {
        Entry::Resource(r) => match &r.body {
            Body::Tree(v) => Some(Cow::Borrowed(v)),
            Body::Text { json, .. } => serde_json::from_str(json).ok().map(Cow::Owned),
        },
        Entry::Provenance(e) => serde_json::to_value(crate::provenance::of(e))
            .ok()
            .map(Cow::Owned),
    }
}

/// What a query reads of a resource.
struct Resource<'a> {
    json: Option<&'a Value>,
    last_updated: Option<&'a str>,
}

impl Query {
    fn reads_last_updated_only(&self) -> bool {
        self.0
            .iter()
            .all(|c| matches!(c, Condition::Date(Element::LastUpdated, _)))
    }

    fn keeps(&self, r: &Resource) -> bool {
        self.0.iter().all(|c| c.holds(r))
    }
}

impl Condition {
    fn holds(&self, r: &Resource) -> bool {
        match self {
            Condition::Token(element, tokens) => {
                let Some(json) = r.json else { return false };
                let implied = matches!(element, Element::Code(_));
                let codings = codings(json, *element);
                tokens
                    .iter()
                    .any(|t| codings.iter().any(|(s, c)| t.matches(implied, *s, c)))
            }
            Condition::Date(element, values) => {
                let target = match element {
                    Element::LastUpdated => r.last_updated.and_then(range),
                    Element::Date(names) => r.json.and_then(|j| date_of(j, names)),
                    _ => None,
                };
                let Some(target) = target else { return false };
                values.iter().any(|(p, search)| p.holds(*search, target))
            }
        }
    }
}

/// A coding's system (if any) and code.
fn coding(c: &Value) -> Option<(Option<&str>, &str)> {
    Some((c["system"].as_str(), c["code"].as_str()?))
}

/// The (system, code) pairs a token element holds.
fn codings(json: &Value, element: Element) -> Vec<(Option<&str>, &str)> {
    match element {
        Element::Code(name) => json[name].as_str().map(|c| (None, c)).into_iter().collect(),
        Element::Coding(name) => coding(&json[name]).into_iter().collect(),
        Element::Concept(name) => {
            let concepts = match &json[name] {
                Value::Array(list) => list.iter().collect(),
                v => vec![v],
            };
            concepts
                .into_iter()
                .filter_map(|c| c["coding"].as_array())
                .flatten()
                .filter_map(coding)
                .collect()
        }
        Element::Date(_) | Element::LastUpdated => Vec::new(),
    }
}

impl Token {
    /// Whether a coding matches; `system` `None` for a coding without a system, and for a code
    /// element (`implied`: its system is the element's, its code alone compared).
    fn matches(&self, implied: bool, system: Option<&str>, code: &str) -> bool {
        match (&self.system, system) {
            _ if implied => !self.code.is_empty() && self.code == code,
            (None, _) => self.code == code,
            (Some(s), None) => s.is_empty() && self.code == code,
            (Some(s), Some(own)) => s == own && (self.code.is_empty() || self.code == code),
        }
    }
}

/// The range of the first of `names` present: a date or dateTime, or a Period.
fn date_of(json: &Value, names: &[&str]) -> Option<Range> {
    let v = names.iter().map(|n| &json[*n]).find(|v| !v.is_null())?;
    match v {
        Value::String(s) => range(s),
        Value::Object(period) => {
            let side = |k: &str| period.get(k).and_then(Value::as_str);
            if side("start").is_none() && side("end").is_none() {
                return None;
            }
            let start = match side("start") {
                Some(s) => range(s)?.start,
                None => i64::MIN,
            };
            let end = match side("end") {
                Some(e) => range(e)?.end,
                None => i64::MAX,
            };
            Some(Range { start, end })
        }
        _ => None,
    }
}

impl Prefix {
    fn parse(value: &str) -> Result<(Prefix, &str), String> {
        let lead = value
            .get(..2)
            .filter(|p| p.bytes().all(|b| b.is_ascii_lowercase()));
        let Some(lead) = lead else {
            return Ok((Prefix::Eq, value));
        };
        let prefix = match lead {
            "eq" => Prefix::Eq,
            "ne" => Prefix::Ne,
            "gt" => Prefix::Gt,
            "lt" => Prefix::Lt,
            "ge" => Prefix::Ge,
            "le" => Prefix::Le,
            "sa" => Prefix::Sa,
            "eb" => Prefix::Eb,
            _ => {
                return Err(format!(
                "{lead:?} is not a date prefix this server serves: eq, ne, gt, lt, ge, le, sa, eb"
            ))
            }
        };
        Ok((prefix, &value[2..]))
    }

    /// Whether a target range matches the search range (FHIR R4 search, 3.1.1.4.5): `eq` the
    /// search range holds the whole target, `gt` / `lt` the target reaches past its end / before
    /// its start, `ge` / `le` either, `sa` / `eb` the target starts after its end / ends before
    /// its start.
    fn holds(self, search: Range, target: Range) -> bool {
        let eq = search.start <= target.start && target.end <= search.end;
        let gt = target.end > search.end;
        let lt = target.start < search.start;
        match self {
            Prefix::Eq => eq,
            Prefix::Ne => !eq,
            Prefix::Gt => gt,
            Prefix::Lt => lt,
            Prefix::Ge => gt || eq,
            Prefix::Le => lt || eq,
            Prefix::Sa => target.start >= search.end,
            Prefix::Eb => target.end <= search.start,
        }
    }
}

/// The range a date, dateTime or instant covers at its precision: a year, a month, a day, a
/// minute, a second, or a millisecond (with a fraction); a time without a zone is UTC.
fn range(s: &str) -> Option<Range> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let digits = |p: &str, n: usize| -> Option<u32> {
        (p.len() == n && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let parts: Vec<&str> = date.split('-').collect();
    let year = digits(parts.first()?, 4)? as i32;
    let month = parts.get(1).map(|m| digits(m, 2)).unwrap_or(Some(1))?;
    let day = parts.get(2).map(|d| digits(d, 2)).unwrap_or(Some(1))?;
    let first = NaiveDate::from_ymd_opt(year, month, day)?;
    let ms = |d: NaiveDate, t: NaiveTime| d.and_time(t).and_utc().timestamp_millis();
    let midnight = NaiveTime::MIN;
    let Some(time) = time else {
        let next = match parts.len() {
            1 => NaiveDate::from_ymd_opt(year + 1, 1, 1)?,
            2 => first.checked_add_months(chrono::Months::new(1))?,
            3 => first.succ_opt()?,
            _ => return None,
        };
        return Some(Range {
            start: ms(first, midnight),
            end: ms(next, midnight),
        });
    };
    if parts.len() != 3 {
        return None;
    }
    // The zone: Z, ±hh:mm (a `+` a query decoded to a space taken back), or none (UTC).
    let (clock, offset) = match time.find(['Z', '+', '-', ' ']) {
        Some(at) => {
            let zone = &time[at..];
            let offset = match zone {
                "Z" => 0,
                _ => {
                    let sign = if zone.starts_with('-') { -1 } else { 1 };
                    let (h, m) = zone[1..].split_once(':')?;
                    sign * (digits(h, 2)? as i64 * 60 + digits(m, 2)? as i64) * 60_000
                }
            };
            (&time[..at], offset)
        }
        None => (time, 0),
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (clock, None),
    };
    let fields: Vec<&str> = hms.split(':').collect();
    let (h, m) = (digits(fields.first()?, 2)?, digits(fields.get(1)?, 2)?);
    let sec = fields.get(2).map(|s| digits(s, 2)).unwrap_or(Some(0))?;
    if fields.len() > 3 || (fields.len() < 3 && fraction.is_some()) {
        return None;
    }
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{:0<3}", &f[..f.len().min(3)]).parse().ok()?
        }
        Some(_) => return None,
    };
    let t = NaiveTime::from_hms_milli_opt(h, m, sec, millis)?;
    let start = ms(first, t) - offset;
    let width = match (fields.len(), fraction) {
        (2, _) => 60_000,
        (_, None) => 1_000,
        (_, Some(_)) => 1,
    };
    Some(Range {
        start,
        end: start + width,
    })
}

/// One query's parameters (`a=1&b=2`) on `kind`.
fn parse_query(kind: &'static str, params: &str) -> Result<Query, String> {
    let known = elements(kind);
    let supported = || {
        format!(
            "{kind} is filtered by {}",
            known.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        )
    };
    let mut conditions = Vec::new();
    for param in params.split('&').filter(|p| !p.is_empty()) {
        let (name, raw) = param.split_once('=').unwrap_or((param, ""));
        let name =
            decoded(name).ok_or_else(|| format!("{kind}?{param}: not percent-encoded UTF-8"))?;
        let raw =
            decoded(raw).ok_or_else(|| format!("{kind}?{param}: not percent-encoded UTF-8"))?;
        if let Some((base, modifier)) = name.split_once(':') {
            return Err(format!(
                "{kind}?{param}: the modifier :{modifier} of {base} is not served ({})",
                supported()
            ));
        }
        let Some((_, element)) = known.iter().find(|(n, _)| *n == name) else {
            return Err(format!(
                "{kind}?{param}: {name} is not a search parameter this server filters {kind} by ({})",
                supported()
            ));
        };
        let values = split_values(&raw);
        if values.iter().any(String::is_empty) {
            return Err(format!("{kind}?{param}: give a value to {name}"));
        }
        let condition = match element {
            Element::Date(_) | Element::LastUpdated => {
                let mut dates = Vec::new();
                for v in &values {
                    let (prefix, date) =
                        Prefix::parse(v).map_err(|e| format!("{kind}?{param}: {e}"))?;
                    let r = range(date).ok_or_else(|| {
                        format!(
                            "{kind}?{param}: {date:?} is not a date: write a year, a month, a day or an instant with its zone, after a prefix if any, e.g. ge2024-05 or lt2024-05-01T10:00:00Z"
                        )
                    })?;
                    dates.push((prefix, r));
                }
                Condition::Date(*element, dates)
            }
            _ => Condition::Token(*element, values.iter().map(|v| token(v)).collect()),
        };
        conditions.push(condition);
    }
    if conditions.is_empty() {
        return Err(format!(
            "{kind}?: give a search parameter, e.g. {kind}?{}=… ({})",
            known[0].0,
            supported()
        ));
    }
    Ok(Query(conditions))
}

/// A parameter's values: separated by commas, `\,` a comma within a value (`\|`, `\\` kept
/// escaped for [`token`]).
fn split_values(raw: &str) -> Vec<String> {
    let mut values = vec![String::new()];
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(',') => values.last_mut().unwrap().push(','),
                Some(n) => {
                    let v = values.last_mut().unwrap();
                    v.push('\\');
                    v.push(n);
                }
                None => values.last_mut().unwrap().push('\\'),
            },
            ',' => values.push(String::new()),
            c => values.last_mut().unwrap().push(c),
        }
    }
    values
}

/// A token value: `system|code` at the first `|` not escaped, escapes removed.
fn token(v: &str) -> Token {
    let mut system = None;
    let mut current = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            '|' if system.is_none() => system = Some(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    Token {
        system,
        code: current,
    }
}

/// A value percent-decoded, `+` kept (a query inside `_typeFilter` is decoded once more); `None`
/// when a `%` is not followed by two hex digits or the bytes are not UTF-8.
pub(crate) fn decoded(v: &str) -> Option<String> {
    let malformed = v.split('%').skip(1).any(|hex| {
        !hex.get(..2)
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if malformed {
        return None;
    }
    percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{query::PROVENANCE, Kind, Resource};
    use journey_proto::{prost_types::Timestamp, v1::Event};
    use serde_json::json;

    /// The types an export writes, as `query.rs` gives them (the mapped ones, Provenance).
    fn exported(kind: &str) -> Option<&'static str> {
        Kind::parse(kind)
            .map(Kind::name)
            .or((kind == PROVENANCE).then_some(PROVENANCE))
    }

    fn filters(values: &[&str]) -> TypeFilters {
        let mut f = TypeFilters::default();
        for v in values {
            f.add(v, exported).unwrap_or_else(|e| panic!("{v}: {e}"));
        }
        f
    }

    fn entry(kind: &'static str, body: Value) -> Entry<'static> {
        Entry::Resource(Resource {
            kind,
            id: body["id"].as_str().unwrap_or("x").to_string(),
            body: Body::Tree(body),
        })
    }

    fn status(kind: &'static str, status: &str) -> Entry<'static> {
        entry(kind, json!({ "resourceType": kind, "status": status }))
    }

    #[test]
    fn queries_of_a_type_are_joined_with_or_and_other_types_are_whole() {
        let f = filters(&[
            "Encounter?status=finished,in-progress,Task?status=requested",
            "Encounter?status=entered-in-error",
        ]);
        assert!(f.keeps(&status("Encounter", "in-progress")));
        assert!(f.keeps(&status("Encounter", "entered-in-error")));
        assert!(!f.keeps(&status("Encounter", "onleave")));
        assert!(!f.keeps(&status("Task", "completed")));
        assert!(!f.keeps(&entry("Task", json!({}))));
        assert!(f.keeps(&status("Observation", "final")));
        assert_eq!(f.kinds().collect::<Vec<_>>(), ["Encounter", "Task"]);
    }

    fn weight(effective: &str) -> Entry<'static> {
        entry(
            "Observation",
            json!({
                "resourceType": "Observation",
                "status": "final",
                "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
                "code": { "coding": [{ "system": "http://loinc.org", "code": "29463-7" }] },
                "effectiveDateTime": effective,
            }),
        )
    }

    #[test]
    fn tokens_match_a_code_a_system_or_both_and_parameters_are_anded() {
        let w = weight("2024-05-03T10:00:00.000Z");
        for (query, kept) in [
            ("Observation?code=http://loinc.org|29463-7", true),
            ("Observation?code=http%3A%2F%2Floinc.org%7C29463-7", true),
            ("Observation?code=29463-7", true),
            ("Observation?code=http://loinc.org|", true),
            ("Observation?code=|29463-7", false),
            ("Observation?code=http://snomed.info/sct|29463-7", false),
            ("Observation?code=8867-4,29463-7", true),
            ("Observation?code=8867-4", false),
            ("Observation?category=vital-signs", true),
            ("Observation?category=laboratory", false),
            ("Observation?status=final&code=29463-7", true),
            ("Observation?status=final&code=8867-4", false),
            ("Observation?code=29463-7&code=8867-4", false),
            ("Observation?code=29463-7&date=ge2024-05-03", true),
            ("Observation?code=29463-7&date=gt2024-05-03", false),
        ] {
            assert_eq!(filters(&[query]).keeps(&w), kept, "{query}");
        }
        let class = entry(
            "Encounter",
            json!({ "class": { "system": crate::codes::ACT_CODE, "code": "IMP" } }),
        );
        assert!(filters(&["Encounter?class=IMP"]).keeps(&class));
        assert!(
            filters(&["Encounter?class=http://terminology.hl7.org/CodeSystem/v3-ActCode|IMP"])
                .keeps(&class)
        );
        assert!(!filters(&["Encounter?class=AMB"]).keeps(&class));
        // A code element (the status) has its system implied: its code alone is compared.
        assert!(filters(&["Encounter?status=x|finished"]).keeps(&status("Encounter", "finished")));
        assert!(!filters(&["Encounter?status=x|"]).keeps(&status("Encounter", "finished")));
    }

    #[test]
    fn dates_compare_as_ranges_at_their_precision() {
        let at = |t: &str| weight(t);
        let keeps = |q: &str, e: &Entry| filters(&[&format!("Observation?date={q}")]).keeps(e);
        let may = at("2024-05-31T23:59:59.999Z");
        let june = at("2024-06-01T00:00:00.000Z");
        assert!(keeps("2024-05", &may) && !keeps("2024-05", &june));
        assert!(keeps("eq2024", &may) && keeps("2024-05-31", &may));
        assert!(keeps("ne2024-05", &june) && !keeps("ne2024-05", &may));
        assert!(keeps("ge2024-06-01", &june) && !keeps("ge2024-06-01", &may));
        assert!(keeps("gt2024-05", &june) && !keeps("gt2024-05", &may));
        assert!(keeps("lt2024-06", &may) && !keeps("lt2024-06", &june));
        assert!(keeps("le2024-05-31", &may) && !keeps("le2024-05-31", &june));
        assert!(keeps("sa2024-05", &june) && keeps("eb2024-06", &may));
        // An instant with its zone: 02:00 in Paris is midnight UTC.
        assert!(keeps("ge2024-06-01T02:00:00%2B02:00", &june));
        assert!(!keeps("gt2024-06-01T02:00:00%2B02:00", &june));
        assert!(
            keeps("2024-06-01T00:00:00Z", &june),
            "the second holds the millisecond"
        );
        assert!(keeps("lt2024-06-01T00:00:00.001Z", &june));
        assert!(keeps("ge2024-05-31T23:59Z,ge2030", &may), "values ORed");
        // A period: from its start to its end, open while it runs.
        let stay = |end: Option<&str>| {
            let mut period = json!({ "start": "2024-05-10T08:00:00.000Z" });
            if let Some(e) = end {
                period["end"] = json!(e);
            }
            entry("Encounter", json!({ "period": period }))
        };
        let short = stay(Some("2024-05-12T10:00:00.000Z"));
        let open = stay(None);
        let on = |q: &str, e: &Entry| filters(&[&format!("Encounter?date={q}")]).keeps(e);
        assert!(on("2024-05", &short) && !on("2024-05", &open));
        assert!(
            !on("2024-05-11", &short),
            "eq: the day does not hold the stay"
        );
        assert!(on("gt2024-05-11", &short) && on("lt2024-05-11", &short));
        assert!(on("gt2030", &open) && !on("lt2024-05-10", &open));
        assert!(on("sa2024-05-09", &open) && !on("sa2024-05-10", &open));
        assert!(on("eb2024-05-13", &short) && !on("eb2024-05-12", &short));
        assert!(
            !on("2024", &entry("Encounter", json!({}))),
            "no period: no match"
        );
        let empty = entry("Encounter", json!({ "period": {} }));
        assert!(
            !on("gt2024", &empty) && !on("ne2024", &empty),
            "an empty period: no match"
        );
    }

    #[test]
    fn last_updated_reads_the_meta_of_text_and_provenance_alike() {
        let e = Event {
            event_id: "e-1".into(),
            recorded_at: Some(Timestamp {
                seconds: 1_717_200_000, // 2024-06-01T00:00:00Z
                nanos: 0,
            }),
            ..Default::default()
        };
        let f = filters(&["Provenance?_lastUpdated=ge2024-06-01"]);
        assert!(f.keeps(&Entry::Provenance(&e)));
        let f = filters(&["Provenance?_lastUpdated=lt2024-06-01"]);
        assert!(!f.keeps(&Entry::Provenance(&e)));
        let text = Entry::Resource(Resource::written(
            "Observation",
            "o".into(),
            &e,
            &json!({ "status": "final", "meta": { "lastUpdated": "2024-06-01T00:00:00.000Z" } }),
        ));
        assert!(filters(&["Observation?_lastUpdated=2024-06&status=final"]).keeps(&text));
        assert!(!filters(&["Observation?_lastUpdated=2024-06&status=amended"]).keeps(&text));
    }

    #[test]
    fn what_it_cannot_filter_is_refused_naming_what_it_can() {
        for (bad, says) in [
            ("x", "not a search query"),
            (
                "Patient?status=active",
                "Patient is filtered by _lastUpdated",
            ),
            ("Practitioner?status=x", "not a type"),
            ("Encounter?status=", "give a value"),
            ("Encounter?", "give a search parameter"),
            (
                "Encounter?code=x",
                "Encounter is filtered by status, class, date, _lastUpdated",
            ),
            ("Observation?code:text=weight", "modifier :text"),
            ("Observation?date=ap2024", "\"ap\" is not a date prefix"),
            ("Observation?date=ge2024-13", "is not a date"),
            ("Observation?date=yesterday", "is not a date"),
            ("Observation?date=2024-05-01T10", "is not a date"),
            ("Condition?date=2024", "Condition is filtered by code"),
            (
                "Provenance?code=x",
                "Provenance is filtered by _lastUpdated",
            ),
        ] {
            let refused = TypeFilters::default().add(bad, exported).unwrap_err();
            assert!(refused.contains(says), "{bad}: {refused}");
        }
    }
}
