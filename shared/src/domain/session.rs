//! Console sessions: what a signed-in operator's browser holds (an opaque secret in a cookie) and
//! what the store keeps (only the secret's hash, with the operator it stands for).
//!
//! A session is bound to the operator token it was opened with (its hash): every request checks
//! that token is still valid, so rotating or disabling the operator ends its sessions at once,
//! without a list of sessions to sweep. Sessions end at a fixed time (no sliding renewal: reading
//! a page writes nothing), or when signed out.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use super::operator::{Principal, TokenHash};

/// The secret in the session cookie. Its `Debug` never prints it.
#[derive(Clone)]
pub struct SessionSecret(SecretString);

impl SessionSecret {
    /// Characters of a secret: 32 random bytes, base64url without padding.
    pub const LEN: usize = 43;

    /// A secret from 32 bytes of a cryptographically secure generator.
    pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A secret as a cookie carried it, if it has a secret's shape (anything else is never looked
    /// up: a garbage cookie costs no read).
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == Self::LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(SecretString::from(raw.to_owned())))
    }

    /// The secret, for the `Set-Cookie` header only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The key the session is stored under (the secret itself never is).
    pub fn key(&self) -> TokenHash {
        TokenHash::of(self.expose())
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret(<redacted>)")
    }
}

/// A stored console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The hash of the cookie's secret: the store key.
    pub key: TokenHash,
    /// Who is signed in (as of sign-in; the role is checked again against the token).
    pub principal: Principal,
    /// The hash of the operator token signed in with.
    pub token_hash: TokenHash,
    /// The session's anti-forgery token, sent back in every form.
    pub csrf: String,
    /// Sign-in time (whole seconds).
    pub created_at: OffsetDateTime,
    /// End of the session (whole seconds).
    pub expires_at: OffsetDateTime,
}

impl ConsoleSession {
    /// Whether the session still holds at `now`.
    pub fn is_live_at(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_has_one_shape_hashes_to_its_key_and_never_prints() {
        let secret = SessionSecret::from_random_bytes([9; 32]);
        assert_eq!(secret.expose().len(), SessionSecret::LEN);
        let parsed = SessionSecret::parse(secret.expose()).expect("its own shape");
        assert!(parsed.key().matches(&secret.key()));
        assert_eq!(format!("{secret:?}"), "SessionSecret(<redacted>)");
        for bad in ["", "short", &"*".repeat(43), &"a".repeat(44)] {
            assert!(SessionSecret::parse(bad).is_none(), "{bad}");
        }
    }
}
