//! Authentication and roles, one layer for every gRPC service (docs/design.md §6).
//!
//! A caller presents `authorization: Bearer <token>`: a JWT (HS256 or RS256, keys from files; claims
//! `sub`, `role`, `org`, optional `territory`, `exp` required; `nbf` checked; `iss` and `aud`
//! checked when configured; a token living longer than `--jwt-max-lifetime` refused) or a key
//! listed in the API-key file (`<key> <role> <subject> <organisation> [territory]` per line). A
//! partner or a coordinator always names its organisation. The principal is put in the
//! request's extensions for the services' own finer checks (a partner appends for its organisation
//! only; a coordinator sees its territory only). Health and reflection need no token.
//! Without any of this, `--insecure` lets every call through, and says so loudly.
use crate::errors;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::{
    collections::HashMap,
    future::Future,
    path::Path,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tonic::{codegen::http, Status};
use tower::{Layer, Service};

pub use crate::config::AuthConfig;
pub use crate::principal::{Principal, Role};

#[derive(Debug, serde::Deserialize)]
struct Claims {
    sub: String,
    role: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    territory: Option<String>,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
}

/// What a JWT must satisfy beside its signature: the configured issuer and audience, and a
/// lifetime no longer than the maximum.
struct JwtRules {
    issuer: Option<String>,
    audience: Option<String>,
    max_lifetime: u64,
}

/// Clock skew tolerated between the token's issuer and this server (jsonwebtoken's default).
const LEEWAY_SECS: u64 = 60;

impl JwtRules {
    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        // A configured claim must be present: jsonwebtoken checks it only when it is.
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            v.required_spec_claims.insert("iss".into());
        }
        if let Some(aud) = &self.audience {
            v.set_audience(&[aud]);
            v.required_spec_claims.insert("aud".into());
        }
        v
    }

    /// Refuses a token issued in the future or living longer than the maximum (from `iat`, or
    /// from now when it has none).
    fn check_lifetime(&self, claims: &Claims, now: u64) -> Result<(), String> {
        if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
            return Err("it is issued in the future (iat); check the issuer's clock".into());
        }
        let lifetime = claims.exp.saturating_sub(claims.iat.unwrap_or(now));
        if lifetime > self.max_lifetime {
            return Err(format!(
                "it lives {}, longer than the {} this server accepts (--jwt-max-lifetime); ask for a shorter-lived token",
                in_words(lifetime),
                in_words(self.max_lifetime)
            ));
        }
        Ok(())
    }

    /// Why jsonwebtoken refused a token, in words.
    fn refusal(&self, e: &jsonwebtoken::errors::Error) -> String {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::ExpiredSignature => "it has expired (exp); ask for a new token".into(),
            K::ImmatureSignature => {
                "it is not valid yet (nbf); wait, or check the issuer's clock".into()
            }
            K::InvalidSignature => "its signature does not match this server's key".into(),
            K::InvalidIssuer => format!(
                "its issuer (iss) is not {:?}",
                self.issuer.as_deref().unwrap_or_default()
            ),
            K::InvalidAudience => match &self.audience {
                Some(aud) => format!("its audience (aud) is not {aud:?}"),
                None => {
                    "it names an audience (aud) and this server has none (--jwt-audience)".into()
                }
            },
            K::MissingRequiredClaim(claim) => format!("the {claim} claim is missing"),
            _ => e.to_string(),
        }
    }
}

/// A number of seconds as a reader says it (`48 h`, `1 h 30 min`).
fn in_words(secs: u64) -> String {
    let parts = [
        (secs / 3600, "h"),
        (secs % 3600 / 60, "min"),
        (secs % 60, "s"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    if words.is_empty() {
        "0 s".into()
    } else {
        words.join(" ")
    }
}

/// A partner writes for its organisation, a coordinator reads for it, a liaison nurse's is her
/// facility: none goes without one.
fn check_organisation(role: Role, organisation: &str) -> Result<(), String> {
    if matches!(role, Role::Partner | Role::Coordinator | Role::LiaisonNurse)
        && organisation.trim().is_empty()
    {
        return Err(format!(
            "a {} must name its organisation (org)",
            format!("{role:?}").to_lowercase()
        ));
    }
    Ok(())
}

pub struct Authenticator {
    insecure: bool,
    /// Where refused calls are recorded (set once a database is open).
    refusals: std::sync::OnceLock<crate::access_log::AccessLog>,
    keys: HashMap<String, Principal>,
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
    jwt: JwtRules,
    territories: HashMap<String, String>,
}

fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the {what} {}: {e}", path.display()))
}

impl Authenticator {
    /// From the settings, plus an extra admin key (the local admin token of `journey up`).
    pub fn new(config: &AuthConfig, admin_token: Option<&str>) -> anyhow::Result<Self> {
        let mut keys = HashMap::new();
        if let Some(path) = &config.api_keys_file {
            for (n, line) in crate::secret_files::read(path, "API-key file")?
                .lines()
                .enumerate()
            {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.is_empty() || f[0].starts_with('#') {
                    continue;
                }
                let bad = || {
                    anyhow::anyhow!("{}:{}: expected `<key> <role> <subject> <organisation> [territory]` with a role among partner, coordinator, quality, auditor, admin, service, consent, gp, liaison_nurse", path.display(), n + 1)
                };
                if f.len() < 4 {
                    return Err(bad());
                }
                let role = Role::parse(f[1]).ok_or_else(bad)?;
                check_organisation(role, f[3])
                    .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
                crate::secret_files::check_api_key(path, n + 1, f[0])?;
                keys.insert(
                    f[0].to_string(),
                    Principal {
                        subject: f[2].into(),
                        role,
                        organisation: f[3].into(),
                        territory: f.get(4).map(|t| t.to_string()),
                    },
                );
            }
        }
        keys.extend(admin_token.map(admin_key));
        let hs256 = match &config.jwt_hs256_secret_file {
            Some(p) => Some(DecodingKey::from_secret(
                crate::secret_files::hs256_secret(p)?.as_bytes(),
            )),
            None => None,
        };
        let rs256 = match &config.jwt_rs256_public_key_file {
            Some(p) => Some(
                DecodingKey::from_rsa_pem(read(p, "RS256 public key")?.as_bytes()).map_err(
                    |e| anyhow::anyhow!("{}: not an RSA public key in PEM: {e}", p.display()),
                )?,
            ),
            None => None,
        };
        let mut territories = HashMap::new();
        if let Some(path) = &config.territories_file {
            for line in read(path, "territories file")?.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() == 2 && !f[0].starts_with('#') {
                    territories.insert(f[0].to_string(), f[1].to_string());
                }
            }
        }
        if config.insecure {
            tracing::warn!("INSECURE: every call is accepted without a token (--insecure); never in production");
            eprintln!("WARNING: --insecure: calls are not authenticated");
        }
        Ok(Authenticator {
            insecure: config.insecure,
            refusals: std::sync::OnceLock::new(),
            keys,
            hs256,
            rs256,
            jwt: JwtRules {
                issuer: config.jwt_issuer.clone(),
                audience: config.jwt_audience.clone(),
                max_lifetime: config.jwt_max_lifetime.as_secs(),
            },
            territories,
        })
    }

    /// Adds the local admin token of `journey up` (read once the data folder is open).
    pub fn add_admin_token(&mut self, token: &str) {
        self.keys.extend([admin_key(token)]);
    }

    /// Records every refused call in `log` from now on.
    /// Whether every call is let through (`--insecure`).
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    pub fn record_refusals_in(&self, log: crate::access_log::AccessLog) {
        let _ = self.refusals.set(log);
    }

    /// The caller of a request with this `authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, Status> {
        self.authenticate_until(header).map(|(p, _)| p)
    }

    /// The caller, and until when its token holds (a JWT's `exp`, in seconds since the epoch;
    /// `None` for an API key): a dashboard session ends there.
    pub fn authenticate_until(
        &self,
        header: Option<&str>,
    ) -> Result<(Principal, Option<u64>), Status> {
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err(errors::missing_token());
        };
        if let Some(p) = self.keys.get(token) {
            return Ok((p.clone(), None));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| errors::unknown_token())?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::RS256 => self.rs256.as_ref(),
            _ => None,
        }
        .ok_or_else(|| errors::jwt_algorithm_not_configured(header.alg))?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.jwt.validation(header.alg))
            .map_err(|e| errors::invalid_jwt(self.jwt.refusal(&e)))?
            .claims;
        self.jwt
            .check_lifetime(&claims, jsonwebtoken::get_current_timestamp())
            .map_err(errors::invalid_jwt)?;
        let role = Role::parse(&claims.role).ok_or_else(|| errors::unknown_role(&claims.role))?;
        check_organisation(role, &claims.org).map_err(errors::invalid_jwt)?;
        let territory = claims
            .territory
            .or_else(|| self.territories.get(&claims.org).cloned());
        let principal = Principal {
            subject: claims.sub,
            role,
            organisation: claims.org,
            territory,
        };
        Ok((principal, Some(claims.exp)))
    }
}

/// The local admin token as an API key.
fn admin_key(token: &str) -> (String, Principal) {
    let admin = Principal {
        subject: "local-admin".into(),
        role: Role::Admin,
        organisation: "local".into(),
        territory: None,
    };
    (token.to_string(), admin)
}

/// Which roles may call a gRPC method (`/journey.v1.Service/Method`).
pub fn allowed(role: Role, path: &str) -> bool {
    use Role::*;
    let method = path.trim_start_matches("/journey.v1.");
    let (service, call) = method.split_once('/').unwrap_or((method, ""));
    match (service, call) {
        (_, _) if role == Admin => true,
        ("EventLog", "Append" | "AppendStream") => matches!(role, Partner | Service | Consent),
        ("EventLog", "Verify") => role == Auditor,
        ("EventLog", _) => matches!(role, Service | Auditor),
        ("Readmission", _) => role == Quality,
        ("Coordination", _) => role == Coordinator,
        ("Audit", _) => role == Auditor,
        ("Projections", "Status") => true,
        // A GP and a liaison nurse read on the dashboard only (`dashboard/gp.rs`,
        // `dashboard/liaison.rs`), where their patients are decided.
        _ => false,
    }
}

/// The local admin token of `journey up`: read from `<data_dir>/admin.token`, or created there
/// (mode 0600) on first start.
pub fn admin_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("admin.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    use rand::Rng;
    let token: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    crate::files::create_dirs(data_dir)?;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    std::io::Write::write_all(&mut f, token.as_bytes())?;
    f.sync_all()?;
    Ok(token)
}

/// The tower layer checking every call.
#[derive(Clone)]
pub struct AuthLayer(pub Arc<Authenticator>);

impl<S> Layer<S> for AuthLayer {
    type Service = Checked<S>;
    fn layer(&self, inner: S) -> Checked<S> {
        Checked {
            inner,
            auth: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Checked<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

fn refuse<B: Default>(status: Status, path: &str) -> http::Response<B> {
    metrics::counter!("journey_auth_refused_total", "code" => format!("{:?}", status.code()).to_lowercase())
        .increment(1);
    tracing::info!(path, code = ?status.code(), reason = status.message(), "call refused");
    let mut r = http::Response::new(B::default());
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/grpc"),
    );
    r.headers_mut()
        .insert("grpc-status", http::HeaderValue::from(status.code() as i32));
    if let Ok(v) = http::HeaderValue::from_str(&status.message().replace(['\r', '\n'], " ")) {
        r.headers_mut().insert("grpc-message", v);
    }
    r
}

impl<S, B, R> Service<http::Request<B>> for Checked<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: Default + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_string();
        let open = path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.");
        if !open && !self.auth.insecure {
            let header = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            match self.auth.authenticate(header) {
                Ok(p) if allowed(p.role, &path) => {
                    request.extensions_mut().insert(p);
                }
                Ok(p) => {
                    let status = errors::may_not_call(&p, &path);
                    return self.refused(Some(p), status, request);
                }
                Err(status) => return self.refused(None, status, request),
            }
        }
        Box::pin(self.inner.call(request))
    }
}

impl<S> Checked<S> {
    /// The refusal's answer, once it is recorded in the access log (when there is one): on its
    /// own with the patient the call asked about and the purpose it declared (a known caller,
    /// within its rate), or counted into its source's record of the minute (no identity, or
    /// beyond the rate; `access_log/refusals.rs`).
    fn refused<B, R: Default + 'static, E: 'static>(
        &self,
        caller: Option<Principal>,
        status: Status,
        request: http::Request<B>,
    ) -> Pin<Box<dyn Future<Output = Result<http::Response<R>, E>> + Send>>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = request.uri().path().to_string();
        let peer = crate::access_log::peer_of(request.extensions());
        let log = self
            .auth
            .refusals
            .get()
            .filter(|log| !log.refusal_counted(caller.as_ref(), peer, &path, &status))
            .cloned();
        let purpose = request
            .headers()
            .get("x-journey-purpose")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Box::pin(async move {
            if let Some(log) = log {
                let patient = crate::request_patient::of_refused(&path, request.into_body()).await;
                let outcome = format!("{:?}", status.code()).to_lowercase();
                let recorded = log
                    .record(crate::access_log::Access {
                        caller: caller.as_ref(),
                        call: path.trim_start_matches("/journey.v1."),
                        patient_id: &patient,
                        purpose: &purpose,
                        outcome: &outcome,
                        detail: status.message().to_string(),
                        peer,
                        ..Default::default()
                    })
                    .await;
                if let Err(e) = recorded {
                    tracing::warn!(error = %e.message(), "a refused call could not be recorded");
                }
            }
            Ok(refuse(status, &path))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_table() {
        use Role::*;
        let cases = [
            (
                "/journey.v1.EventLog/Append",
                [Partner, Service, Consent, Admin].as_slice(),
            ),
            (
                "/journey.v1.EventLog/ReadStream",
                &[Service, Auditor, Admin],
            ),
            ("/journey.v1.EventLog/Verify", &[Auditor, Admin]),
            ("/journey.v1.Readmission/Rates", &[Quality, Admin]),
            ("/journey.v1.Coordination/Worklist", &[Coordinator, Admin]),
            ("/journey.v1.Audit/Timeline", &[Auditor, Admin]),
            ("/journey.v1.Projections/Rebuild", &[Admin]),
            ("/journey.v1.Projections/Status", &Role::ALL),
            ("/journey.v1.Coordination/FollowUp", &[Coordinator, Admin]),
        ];
        for (path, who) in cases {
            for role in Role::ALL {
                assert_eq!(
                    allowed(role, path),
                    who.contains(&role),
                    "{role:?} on {path}"
                );
            }
        }
    }

    #[test]
    fn api_keys_and_jwts() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::write(
            &keys,
            "# key role subject org territory\nk1-0123456789abcdef coordinator alice cpts-nord T-NORD\n",
        )
        .unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret-s3cret-s3cret-s3cret-s3cret\n").unwrap();
        for f in [&keys, &secret] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let a = Authenticator::new(
            &AuthConfig {
                api_keys_file: Some(keys),
                jwt_hs256_secret_file: Some(secret),
                ..Default::default()
            },
            Some("adm"),
        )
        .unwrap();
        assert_eq!(
            a.authenticate(Some("Bearer k1-0123456789abcdef"))
                .unwrap()
                .territory
                .as_deref(),
            Some("T-NORD")
        );
        assert_eq!(
            a.authenticate(Some("Bearer adm")).unwrap().role,
            Role::Admin
        );
        assert_eq!(
            a.authenticate(None).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            a.authenticate(Some("Bearer nope")).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let exp = jsonwebtoken::get_current_timestamp() + 3600;
        let claims = serde_json::json!({"sub": "bob", "role": "quality", "org": "chu", "exp": exp});
        let jwt = |secret: &[u8], claims: &serde_json::Value| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::default(),
                claims,
                &jsonwebtoken::EncodingKey::from_secret(secret),
            )
            .unwrap()
        };
        let ok = a
            .authenticate(Some(&format!(
                "Bearer {}",
                jwt(b"s3cret-s3cret-s3cret-s3cret-s3cret", &claims)
            )))
            .unwrap();
        assert_eq!((ok.subject.as_str(), ok.role), ("bob", Role::Quality));
        let forged = a.authenticate(Some(&format!("Bearer {}", jwt(b"other", &claims))));
        assert_eq!(forged.unwrap_err().code(), tonic::Code::Unauthenticated);
        let expired = serde_json::json!({"sub": "bob", "role": "quality", "org": "chu", "exp": 1_000_000_000u64});
        let e = a
            .authenticate(Some(&format!(
                "Bearer {}",
                jwt(b"s3cret-s3cret-s3cret-s3cret-s3cret", &expired)
            )))
            .unwrap_err();
        assert!(e.message().contains("expired (exp)"), "{}", e.message());
    }

    /// An authenticator taking HS256 JWTs signed with [`SECRET`], with `rules`.
    fn jwt_authenticator(dir: &Path, config: AuthConfig) -> Authenticator {
        let secret = dir.join("secret");
        std::fs::write(&secret, SECRET).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        Authenticator::new(
            &AuthConfig {
                jwt_hs256_secret_file: Some(secret),
                ..config
            },
            None,
        )
        .unwrap()
    }

    const SECRET: &[u8] = b"s3cret-s3cret-s3cret-s3cret-s3cret";

    fn bearer(claims: serde_json::Value) -> String {
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        format!("Bearer {jwt}")
    }

    /// The refusal of `claims` by `a`, as its message (panics when accepted).
    fn refused(a: &Authenticator, claims: serde_json::Value) -> String {
        let e = a.authenticate(Some(&bearer(claims))).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{}", e.message());
        e.message().to_string()
    }

    #[test]
    fn jwts_are_held_to_nbf_lifetime_and_organisation() {
        let dir = tempfile::tempdir().unwrap();
        let a = jwt_authenticator(dir.path(), AuthConfig::default());
        let now = jsonwebtoken::get_current_timestamp();
        let claims = |extra: serde_json::Value| {
            let mut c = serde_json::json!({"sub": "bob", "role": "coordinator", "org": "cpts", "exp": now + 3600});
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            c
        };
        let (p, until) = a
            .authenticate_until(Some(&bearer(claims(serde_json::json!({})))))
            .unwrap();
        assert_eq!((p.subject.as_str(), until), ("bob", Some(now + 3600)));
        assert!(
            refused(&a, claims(serde_json::json!({"nbf": now + 600}))).contains("not valid yet"),
        );
        assert!(a
            .authenticate(Some(&bearer(claims(serde_json::json!({"nbf": now - 10})))))
            .is_ok());
        // 24 h at most by default, from iat, or from now without it.
        let m = refused(&a, claims(serde_json::json!({"exp": now + 3 * 86_400})));
        assert!(
            m.contains("lives") && m.contains("24 h") && m.contains("--jwt-max-lifetime"),
            "{m}"
        );
        let m = refused(
            &a,
            claims(serde_json::json!({"iat": now - 2 * 86_400 + 90, "exp": now + 60})),
        );
        assert!(m.contains("lives 47 h 59 min 30 s"), "{m}");
        assert!(refused(&a, claims(serde_json::json!({"iat": now + 3600}))).contains("future"));
        for role in ["coordinator", "partner"] {
            let m = refused(&a, claims(serde_json::json!({"role": role, "org": ""})));
            assert!(m.contains("must name its organisation"), "{m}");
        }
        assert!(a
            .authenticate(Some(&bearer(claims(
                serde_json::json!({"role": "quality", "org": ""})
            ))))
            .is_ok());
        // Without a configured audience, a token meant for another audience is refused.
        assert!(refused(&a, claims(serde_json::json!({"aud": "elsewhere"}))).contains("aud"));
    }

    #[test]
    fn configured_issuer_and_audience_are_required() {
        let dir = tempfile::tempdir().unwrap();
        let a = jwt_authenticator(
            dir.path(),
            AuthConfig {
                jwt_issuer: Some("https://idp.example".into()),
                jwt_audience: Some("journey".into()),
                jwt_max_lifetime: std::time::Duration::from_secs(600),
                ..Default::default()
            },
        );
        let exp = jsonwebtoken::get_current_timestamp() + 300;
        let good = serde_json::json!({"sub": "bob", "role": "quality", "exp": exp, "iss": "https://idp.example", "aud": "journey"});
        assert!(a.authenticate(Some(&bearer(good.clone()))).is_ok());
        for (claim, value, why) in [
            ("iss", serde_json::json!("https://other.example"), "issuer"),
            ("iss", serde_json::Value::Null, "iss claim is missing"),
            ("aud", serde_json::json!("other"), "audience"),
            ("aud", serde_json::Value::Null, "aud claim is missing"),
            ("exp", serde_json::json!(exp + 3600), "10 min"),
        ] {
            let mut c = good.clone();
            match value {
                serde_json::Value::Null => c.as_object_mut().unwrap().remove(claim),
                v => c.as_object_mut().unwrap().insert(claim.into(), v),
            };
            let m = refused(&a, c);
            assert!(m.contains(why), "{claim}: {m}");
        }
    }

    #[test]
    fn api_key_lines_of_partners_and_coordinators_name_an_organisation() {
        assert!(check_organisation(Role::Partner, "").is_err());
        assert!(check_organisation(Role::Coordinator, " ").is_err());
        assert!(check_organisation(Role::Coordinator, "cpts").is_ok());
        assert!(check_organisation(Role::LiaisonNurse, "").is_err());
        assert!(check_organisation(Role::LiaisonNurse, "F1").is_ok());
        assert!(check_organisation(Role::Auditor, "").is_ok());
    }
}
