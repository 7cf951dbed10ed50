//! Signing in and out, and who is signed in.
//!
//! Sign-in takes an operator token (or the bootstrap token), authenticates it exactly as the API
//! does, and opens a session: a random secret in an `HttpOnly; SameSite=Strict` cookie (`Secure`
//! off loopback), its hash in the store with the token's hash, the role, a CSRF token and a fixed
//! end. Each request then costs two reads — the session, and the operator token it was opened
//! with — so a rotated or disabled operator is signed out everywhere at once, and the role shown
//! is the token's current one. The sign-in form itself is protected by a short-lived pre-session
//! CSRF cookie (login CSRF), since there is no session yet to hold a token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use shared::config::AdminAuth;
use shared::domain::license::whole_seconds;
use shared::domain::operator::Principal;
use shared::domain::ports::{IdSource, OperatorDirectory, SessionStore};
use shared::domain::session::{ConsoleSession, SessionSecret};
use shared::domain::{DomainError, TokenHash};

/// The session cookie.
pub const SESSION_COOKIE: &str = "nectar_session";
/// The sign-in form's CSRF cookie.
pub const SIGN_IN_COOKIE: &str = "nectar_sign_in";
/// How long the sign-in form's CSRF cookie lasts.
pub const SIGN_IN_FORM_SECS: i64 = 600;

/// How long a session lasts (no sliding renewal).
#[derive(Debug, Clone, Copy)]
pub struct Lifetime(pub Duration);

impl Default for Lifetime {
    /// One hour: a console session is a working session, not a standing credential.
    fn default() -> Self {
        Self(Duration::hours(1))
    }
}

/// A random URL-safe token (CSRF).
pub fn random_token(ids: &dyn IdSource) -> String {
    URL_SAFE_NO_PAD.encode(ids.secret_bytes())
}

/// Constant-time equality of two tokens (CSRF).
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Opens a session for `token`: `None` when the token authenticates no one (the caller says so
/// without telling which part was wrong).
pub async fn sign_in<S>(
    store: &S,
    bootstrap: &AdminAuth,
    ids: &dyn IdSource,
    token: &str,
    lifetime: Lifetime,
    now: OffsetDateTime,
) -> Result<Option<(SessionSecret, ConsoleSession)>, DomainError>
where
    S: OperatorDirectory + SessionStore + ?Sized,
{
    let token = token.trim();
    let Some(principal) = shared::service::operators::authenticate(bootstrap, store, token).await?
    else {
        return Ok(None);
    };
    let now = whole_seconds(now);
    let secret = SessionSecret::from_random_bytes(ids.secret_bytes());
    let session = ConsoleSession {
        key: secret.key(),
        token_hash: TokenHash::of(token),
        csrf: random_token(ids),
        created_at: now,
        expires_at: now + lifetime.0,
        principal,
    };
    store.create_session(&session).await?;
    tracing::info!(operator = %session.principal.name, role = %session.principal.role, "console sign-in");
    Ok(Some((secret, session)))
}

/// The live session of the cookie `raw`, with the principal as its token stands now; `None` when
/// there is no session, it ended, or its token no longer works.
pub async fn current<S>(
    store: &S,
    bootstrap: &AdminAuth,
    raw: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<ConsoleSession>, DomainError>
where
    S: OperatorDirectory + SessionStore + ?Sized,
{
    let Some(secret) = raw.and_then(SessionSecret::parse) else {
        return Ok(None);
    };
    let Some(mut session) = store.session(&secret.key(), now).await? else {
        return Ok(None);
    };
    let principal = match session.principal.id {
        None => bootstrap
            .accepts_hash(&session.token_hash)
            .then(Principal::bootstrap),
        Some(id) => store
            .credential(&session.token_hash)
            .await?
            .filter(|c| c.operator_id == id && c.token_hash.matches(&session.token_hash))
            .map(|c| Principal::operator(&c)),
    };
    Ok(principal.map(|p| {
        session.principal = p;
        session
    }))
}

/// Ends the session of the cookie `raw`, if any.
pub async fn sign_out<S>(store: &S, raw: Option<&str>) -> Result<(), DomainError>
where
    S: SessionStore + ?Sized,
{
    if let Some(secret) = raw.and_then(SessionSecret::parse) {
        store.delete_session(&secret.key()).await?;
    }
    Ok(())
}
