//! What a FHIR request asks: its parameters checked (a read takes none, `$everything` only
//! `_since`, a search only `patient`, a Bulk Data export `_type`, `_since` and `_outputFormat`),
//! every other parameter refused with what to send instead. Pure: the HTTP API turns an
//! [`Invalid`] into its 400 OperationOutcome.
pub use crate::type_filter::TypeFilters;
use crate::Kind;

/// A parameter refused: which, and why (what to send instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub parameter: String,
    pub message: String,
}

impl Invalid {
    /// "`parameter`: `message`", as the API says it.
    pub fn message(&self) -> String {
        format!("{}: {}", self.parameter, self.message)
    }
}

fn invalid(parameter: &str, message: &str) -> Invalid {
    Invalid {
        parameter: parameter.to_string(),
        message: message.to_string(),
    }
}

/// What a request asks, once its address and query are understood.
pub enum Select {
    Patient,
    /// With `_since`: only the resources changed from then on (`meta.lastUpdated`, RFC 3339 UTC
    /// with milliseconds, as the resources carry it).
    Everything {
        since: Option<String>,
    },
    /// A search of one type (its name): a mapped type, or `Provenance`.
    Type(&'static str),
}

/// The type the API adds to the mapped ones: a Provenance per event.
pub const PROVENANCE: &str = crate::provenance::KIND;

/// A read or `$everything` takes no parameter.
pub fn no_parameters(query: Option<&str>) -> Result<(), Invalid> {
    match query.and_then(|q| q.split('&').find(|kv| !kv.is_empty())) {
        Some(kv) => Err(invalid(
            kv.split('=').next().unwrap_or(kv),
            "unsupported parameter: this server reads a patient and its $everything without parameters",
        )),
        None => Ok(()),
    }
}

/// `$everything` takes `_since` (an instant) only.
pub fn everything_request(query: Option<&str>) -> Result<Select, Invalid> {
    let mut since = None;
    for kv in query.unwrap_or("").split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k != "_since" || since.is_some() {
            return Err(invalid(
                &percent_decoded(k).unwrap_or_else(|_| k.to_string()),
                "unsupported parameter: $everything takes _since (an instant, e.g. 2026-12-04T10:00:00Z), once",
            ));
        }
        since = Some(instant(v)?);
    }
    Ok(Select::Everything { since })
}

/// A `_since` value: an RFC 3339 instant with its zone, as the resources' `meta.lastUpdated`
/// writes it (UTC, milliseconds), so that text order is time order.
fn instant(v: &str) -> Result<String, Invalid> {
    let at = chrono::DateTime::parse_from_rfc3339(&percent_decoded(v)?).map_err(|e| {
        invalid(
            "_since",
            &format!("{e}: give an instant with its time zone, e.g. 2026-12-04T10:00:00Z"),
        )
    })?;
    Ok(at
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// What a Bulk Data kick-off asks: the types (`None`: every type), `_since` and `_typeFilter`.
pub struct ExportAsk {
    pub types: Option<Vec<&'static str>>,
    pub since: Option<String>,
    pub filters: TypeFilters,
}

/// The output formats a kick-off may name (`_outputFormat`): NDJSON only.
const NDJSON_FORMATS: [&str; 3] = ["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// A Bulk Data kick-off's parameters: `_type` (types separated by commas, possibly repeated),
/// `_since` once, `_typeFilter` (on the types asked; [`TypeFilters`]), `_outputFormat` NDJSON;
/// anything else refused.
pub fn export_request(query: Option<&str>) -> Result<ExportAsk, Invalid> {
    let mut ask = ExportAsk {
        types: None,
        since: None,
        filters: TypeFilters::default(),
    };
    for kv in query.unwrap_or("").split('&').filter(|kv| !kv.is_empty()) {
        let (k, raw) = kv.split_once('=').unwrap_or((kv, ""));
        let v = percent_decoded(raw)?;
        match k {
            "_since" if ask.since.is_none() => ask.since = Some(instant(raw)?),
            "_type" => {
                let types = ask.types.get_or_insert_with(Vec::new);
                for t in v.split(',').map(str::trim) {
                    let kind = exported(t)?;
                    if !types.contains(&kind) {
                        types.push(kind);
                    }
                }
            }
            "_typeFilter" => ask
                .filters
                .add(&v, |k| exported(k).ok())
                .map_err(|m| invalid("_typeFilter", &m))?,
            "_outputFormat" if NDJSON_FORMATS.contains(&v.as_str()) => {}
            "_outputFormat" => {
                return Err(invalid(
                    "_outputFormat",
                    &format!("{v:?} is not served: this server exports application/fhir+ndjson"),
                ))
            }
            _ => {
                return Err(invalid(
                    &percent_decoded(k).unwrap_or_else(|_| k.to_string()),
                    "unsupported parameter: an export takes _type (e.g. Patient,Encounter), _since (an instant, once), _typeFilter (e.g. Encounter?status=finished) and _outputFormat (application/fhir+ndjson)",
                ))
            }
        }
    }
    if let (Some(types), false) = (&ask.types, ask.filters.is_empty()) {
        if let Some(kind) = ask.filters.kinds().find(|k| !types.contains(k)) {
            return Err(invalid(
                "_typeFilter",
                &format!("{kind} is filtered but not among the types asked in _type"),
            ));
        }
    }
    Ok(ask)
}

/// A type an export writes: every mapped type (the Tasks from the coordination view, where the
/// server keeps one), and Provenance.
fn exported(kind: &str) -> Result<&'static str, Invalid> {
    if kind == PROVENANCE {
        return Ok(PROVENANCE);
    }
    Kind::parse(kind).map(Kind::name).ok_or_else(|| {
        let mut served: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        served.push(PROVENANCE);
        invalid(
            "_type",
            &format!(
                "{kind:?} is not a type this server exports; it exports {}",
                served.join(", ")
            ),
        )
    })
}

/// `GET /fhir/{Type}?patient={id}`: a mapped type, searched by patient only. The patient named
/// (for the access log, even when the request is refused), and what is asked.
pub fn search_request(kind: &str, query: Option<&str>) -> (String, Result<Select, Invalid>) {
    let params: Vec<(&str, &str)> = query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .collect();
    let patient = params
        .iter()
        .find(|(k, _)| *k == "patient")
        .map(|(_, v)| percent_decoded(v));
    let id = match &patient {
        Some(Ok(p)) => p.strip_prefix("Patient/").unwrap_or(p).to_string(),
        _ => String::new(),
    };
    let select = || {
        let kind = searchable(kind)?;
        if let Some((k, _)) = params.iter().find(|(k, _)| *k != "patient") {
            return Err(invalid(
                &percent_decoded(k).unwrap_or_else(|_| k.to_string()),
                "unsupported search parameter: this server searches by patient only (?patient=<id>)",
            ));
        }
        if params.iter().filter(|(k, _)| *k == "patient").count() > 1 {
            return Err(invalid("patient", "give it once"));
        }
        if let Some(Err(e)) = patient {
            return Err(e);
        }
        if id.is_empty() {
            return Err(invalid(
                "patient",
                "required: this server searches by patient only (?patient=<id>)",
            ));
        }
        Ok(Select::Type(kind))
    };
    let select = select();
    (id, select)
}

/// A type the API searches: every mapped type but Patient (read by id), and Provenance.
fn searchable(kind: &str) -> Result<&'static str, Invalid> {
    if kind == PROVENANCE {
        return Ok(PROVENANCE);
    }
    match Kind::parse(kind) {
        Some(Kind::Patient) => Err(invalid(
            "Patient",
            "this server does not search patients: read one with GET /fhir/Patient/{id}",
        )),
        Some(k) => Ok(k.name()),
        None => {
            let mut served: Vec<&str> = Kind::ALL[1..].iter().map(|k| k.name()).collect();
            served.push(PROVENANCE);
            Err(invalid(
                "type",
                &format!(
                    "{kind:?} is not a type this server serves; it serves Patient and {}",
                    served.join(", ")
                ),
            ))
        }
    }
}

/// A query value, percent-decoded (`+` is a space) and UTF-8.
fn percent_decoded(v: &str) -> Result<String, Invalid> {
    crate::type_filter::decoded(&v.replace('+', " "))
        .ok_or_else(|| invalid("query", "not a percent-encoded UTF-8 value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_takes_since_only() {
        let since = |q| match everything_request(Some(q)) {
            Ok(Select::Everything { since }) => Ok(since),
            Ok(_) => unreachable!(),
            Err(s) => Err(s.message()),
        };
        assert_eq!(
            since("_since=2026-12-04T11:00:00%2B01:00"),
            Ok(Some("2026-12-04T10:00:00.000Z".to_string()))
        );
        assert!(since("_since=yesterday")
            .unwrap_err()
            .starts_with("_since:"));
        assert!(since("_count=10")
            .unwrap_err()
            .starts_with("_count: unsupported"));
        assert!(since("_since=2026-12-04T10:00:00Z&_since=2026-12-04T10:00:00Z").is_err());
        assert!(matches!(
            everything_request(None),
            Ok(Select::Everything { since: None })
        ));
    }

    #[test]
    fn an_export_takes_types_since_and_ndjson() {
        let ask = export_request(Some(
            "_type=Patient,Encounter&_type=Provenance,Patient&_since=2026-12-04T11:00:00%2B01:00&_outputFormat=application%2Ffhir%2Bndjson",
        ))
        .map_err(|s| s.message())
        .unwrap();
        assert_eq!(ask.types, Some(vec!["Patient", "Encounter", PROVENANCE]));
        assert_eq!(ask.since.as_deref(), Some("2026-12-04T10:00:00.000Z"));
        let refused = |q| export_request(Some(q)).err().unwrap().message();
        assert!(refused("_type=Practitioner").contains("not a type this server exports"));
        assert!(refused("_outputFormat=text/csv").starts_with("_outputFormat:"));
        assert!(refused("_count=5").starts_with("_count: unsupported"));
        assert!(refused("_since=yesterday").starts_with("_since:"));
        assert!(export_request(None).ok().unwrap().types.is_none());
    }

    #[test]
    fn a_search_takes_a_mapped_type_and_the_patient_only() {
        let (p, s) = search_request("Observation", Some("patient=Patient%2FP%201"));
        assert_eq!(p, "P 1");
        assert!(matches!(s, Ok(Select::Type("Observation"))));
        assert!(matches!(
            search_request("Provenance", Some("patient=P1")).1,
            Ok(Select::Type(PROVENANCE))
        ));
        let (p, s) = search_request("Observation", Some("patient=P1&code=29463-7"));
        assert_eq!(p, "P1", "the patient is recorded with the refusal");
        assert!(s.is_err());
        let refused = |kind: &str, q: Option<&str>| search_request(kind, q).1.err().unwrap();
        assert_eq!(
            refused("Observation", Some("patient=P1&code=29463-7")).parameter,
            "code"
        );
        assert!(refused("Observation", Some("code=1"))
            .message()
            .starts_with("code: unsupported search parameter"));
        assert!(refused("Observation", None).message().contains("required"));
        assert!(refused("Practitioner", Some("patient=P1"))
            .message()
            .contains("not a type this server serves"));
        assert!(refused("Patient", Some("patient=P1"))
            .message()
            .contains("GET /fhir/Patient/{id}"));
        assert!(refused("Flag", Some("patient=%zz"))
            .message()
            .contains("percent"));
    }
}
