//! `_typeFilter` of a Bulk Data kick-off (Bulk Data Access IG 2.0): FHIR search queries, one per
//! type (`Encounter?status=finished`), that narrow what the export writes of that type; several
//! queries of one type are joined with OR, a type without a query is written whole. This server
//! understands the `status` search parameter, values separated by commas (OR), on the types whose
//! resources have a `status`; any other parameter is refused, so that no filter is silently
//! ignored.
use crate::Kind;

/// The queries of `_typeFilter`: each type filtered, and the statuses its resources may have.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TypeFilters(Vec<(&'static str, Vec<String>)>);

/// The types with a `status` search parameter (Patient has `active`, Condition
/// `clinical-status`, Provenance none).
fn has_status(kind: &str) -> bool {
    Kind::parse(kind).is_some_and(|k| k != Kind::Patient && k != Kind::Condition)
}

impl TypeFilters {
    /// Adds the queries of one `_typeFilter` value (decoded): queries separated by commas, a
    /// comma inside a query's value list kept with that query. `exported`: the type a name
    /// gives, if exported. A refusal says what is wrong (the request's 400).
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
                    "{q:?} is not a search query: write <Type>?status=<code>, e.g. Encounter?status=finished"
                )
            })?;
            let kind = exported(kind.trim())
                .ok_or_else(|| format!("{kind:?} is not a type this server exports"))?;
            let mut statuses = Vec::new();
            for param in params.split('&').filter(|p| !p.is_empty()) {
                match param.split_once('=') {
                    Some(("status", codes)) if has_status(kind) && !codes.is_empty() => {
                        statuses.extend(codes.split(',').map(|c| c.trim().to_string()))
                    }
                    _ => {
                        return Err(format!(
                            "{kind}?{param}: this server filters by status only, on the types that have one (not Patient, Condition, Provenance)"
                        ))
                    }
                }
            }
            if statuses.is_empty() {
                return Err(format!("{q:?}: give a status, e.g. {kind}?status=<code>"));
            }
            match self.0.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, kept)) => kept.extend(statuses),
                None => self.0.push((kind, statuses)),
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

    /// Whether a resource of `kind` with `status` is written.
    pub fn keeps(&self, kind: &str, status: Option<&str>) -> bool {
        match self.0.iter().find(|(k, _)| *k == kind) {
            None => true,
            Some((_, kept)) => status.is_some_and(|s| kept.iter().any(|k| k == s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The types an export writes, as `query.rs` gives them (the mapped ones, Provenance).
    fn exported(kind: &str) -> Option<&'static str> {
        Kind::parse(kind)
            .map(Kind::name)
            .or((kind == "Provenance").then_some("Provenance"))
    }

    #[test]
    fn queries_of_a_type_are_joined_with_or_and_other_types_are_whole() {
        let mut f = TypeFilters::default();
        f.add(
            "Encounter?status=finished,in-progress,Task?status=requested",
            exported,
        )
        .unwrap();
        f.add("Encounter?status=entered-in-error", exported)
            .unwrap();
        assert!(f.keeps("Encounter", Some("in-progress")));
        assert!(f.keeps("Encounter", Some("entered-in-error")));
        assert!(!f.keeps("Encounter", Some("onleave")));
        assert!(!f.keeps("Task", Some("completed")));
        assert!(!f.keeps("Task", None));
        assert!(f.keeps("Observation", Some("final")));
        assert_eq!(f.kinds().collect::<Vec<_>>(), ["Encounter", "Task"]);
    }

    #[test]
    fn what_it_cannot_filter_is_refused() {
        for bad in [
            "x",
            "Encounter?class=IMP",
            "Patient?status=active",
            "Practitioner?status=x",
            "Encounter?status=",
            "Encounter?",
        ] {
            assert!(TypeFilters::default().add(bad, exported).is_err(), "{bad}");
        }
    }
}
