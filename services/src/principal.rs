//! Who is calling: the principal the authentication layer (`auth.rs`) puts in each request, and
//! its role. Everything that checks or records a caller (the services' finer checks, the access
//! log, the refusals of `errors.rs`) reads it from here, without depending on how it was
//! authenticated.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Partner,
    Coordinator,
    Quality,
    Auditor,
    Admin,
    Service,
    /// The patient's consent registry: appends consent events only.
    Consent,
    /// A general practitioner (médecin traitant): signs in to the dashboard and sees only the
    /// patients who name them as GP or referent; the subject is the professional id (RPPS) the
    /// events name.
    Gp,
    /// A liaison nurse (infirmière de liaison): hospital side, prepares the discharges of her
    /// facility on the dashboard (the stays due to leave, their patients' pages, checklist items
    /// and contacts); her organisation is the facility's id (FINESS) the events name.
    LiaisonNurse,
}

impl Role {
    /// Every role, in the order of the enum.
    pub const ALL: [Role; 9] = [
        Role::Partner,
        Role::Coordinator,
        Role::Quality,
        Role::Auditor,
        Role::Admin,
        Role::Service,
        Role::Consent,
        Role::Gp,
        Role::LiaisonNurse,
    ];

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "partner" => Role::Partner,
            "coordinator" => Role::Coordinator,
            "quality" => Role::Quality,
            "auditor" => Role::Auditor,
            "admin" => Role::Admin,
            "service" => Role::Service,
            "consent" => Role::Consent,
            "gp" => Role::Gp,
            "liaison_nurse" => Role::LiaisonNurse,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub role: Role,
    pub organisation: String,
    /// A coordinator's territory (from the token, or the organisation → territory map). A liaison
    /// nurse's facility is her organisation.
    pub territory: Option<String>,
}

/// The caller of a request, if the server authenticates (`None` with `--insecure`).
pub fn of<T>(request: &tonic::Request<T>) -> Option<&Principal> {
    request.extensions().get::<Principal>()
}
