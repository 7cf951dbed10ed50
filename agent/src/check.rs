//! `nectar-agent check`: the startup gate for container entrypoints. It refuses (non-zero exit,
//! clear message) a key that is missing, malformed, badly signed, expired or for another domain
//! — all verified offline — then asks the server. When the server cannot be reached it passes
//! with a warning if a valid lease or the unexpired key vouches for the license.

use std::sync::Arc;

use nectar_client::token::{TokenError, peek_claims};
use nectar_client::{ClientError, Clock, Decision, LicenseClient, LicenseServer, NetError};

use crate::config::Settings;

/// The verdict of a startup check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The product may start.
    Pass(String),
    /// The product may start, but something needs attention (e.g. the server is unreachable).
    Warn(String),
    /// The product must not start.
    Fail(String),
}

impl CheckOutcome {
    /// The process exit code: 0 to start, 1 to refuse.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Pass(_) | Self::Warn(_) => 0,
            Self::Fail(_) => 1,
        }
    }
}

fn date(unix: i64) -> String {
    nectar_client::clock::rfc3339(unix).unwrap_or_else(|| unix.to_string())
}

fn offline_reason(e: TokenError) -> String {
    match e {
        TokenError::Malformed => "the license key is malformed (expected a signed JWT)".into(),
        TokenError::Algorithm => "the license key is not signed with ES256".into(),
        TokenError::UnknownKey => {
            "the license key was not signed by a trusted Nectar key (check NECTAR_JWKS)".into()
        }
        TokenError::Signature => "the license key signature is invalid".into(),
        TokenError::WrongKind => "this token is a lease, not a license key".into(),
        other => format!("the license key is invalid: {other}"),
    }
}

/// Runs the startup check.
pub async fn run_check(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    server: Arc<dyn LicenseServer>,
) -> CheckOutcome {
    let key = settings.license_key.trim();
    if key.split('.').count() != 3 || peek_claims(key).is_none() {
        return CheckOutcome::Fail(offline_reason(TokenError::Malformed));
    }
    let client = match LicenseClient::new(settings.client_config(), clock.clone(), server) {
        Ok(c) => c,
        Err(e) => return CheckOutcome::Fail(format!("cannot start the license client: {e}")),
    };
    let reachable = match client.ensure_keys().await {
        Ok(()) => true,
        Err(ClientError::Net(_)) => false,
        Err(e) => return CheckOutcome::Fail(format!("cannot verify the license key: {e}")),
    };
    let Some(license) = client.license() else {
        return CheckOutcome::Fail(
            "cannot verify the license key offline: no JWKS is pinned (set NECTAR_JWKS) and the \
             license server is unreachable"
                .into(),
        );
    };
    let license = match license {
        Ok(l) => l,
        Err(e) => return CheckOutcome::Fail(offline_reason(e)),
    };
    let now = clock.now();
    if license.exp <= now {
        return CheckOutcome::Fail(format!(
            "license {} expired on {}",
            license.jti,
            date(license.exp)
        ));
    }
    if !license.allows_domain(settings.domain.as_deref()) {
        return CheckOutcome::Fail(format!(
            "license {} is not valid for domain {} (allowed: {})",
            license.jti,
            settings
                .domain
                .as_deref()
                .unwrap_or("<none: set NECTAR_DOMAIN>"),
            license.domain_restrictions.join(", ")
        ));
    }
    if reachable {
        match client.heartbeat().await {
            Ok(r) if r.ok => {
                return CheckOutcome::Pass(format!(
                    "license {} valid until {} (installation {})",
                    license.jti,
                    date(license.exp),
                    client.installation_id()
                ));
            }
            Ok(r) => {
                return CheckOutcome::Fail(format!(
                    "license server refused license {}: {} ({})",
                    license.jti, r.code, r.detail
                ));
            }
            Err(ClientError::Net(NetError::Unreachable(_))) => {}
            Err(e) => return CheckOutcome::Fail(format!("license check failed: {e}")),
        }
    }
    // Offline: the persisted lease decides if there is one; otherwise the unexpired key.
    match client.check_license() {
        Decision::Allowed | Decision::NoLease => CheckOutcome::Warn(format!(
            "license server unreachable; starting on the offline-verified license {} \
                 (valid until {})",
            license.jti,
            date(license.exp)
        )),
        Decision::Locked(reason) => CheckOutcome::Fail(format!(
            "license {} is {} (last server verdict)",
            license.jti,
            reason.code()
        )),
        refused => CheckOutcome::Fail(format!(
            "license server unreachable and the lease does not allow starting: {}",
            refused.reason()
        )),
    }
}

#[cfg(test)]
mod tests {
    use nectar_client::ManualClock;
    use nectar_client::testing::{FakeServer, license_claims};

    use super::*;

    const NOW: i64 = 1_780_272_000;

    fn rig() -> (ManualClock, Arc<FakeServer>, Settings) {
        let clock = ManualClock::at(NOW);
        let server = Arc::new(FakeServer::new(Arc::new(clock.clone())));
        let dir = std::env::temp_dir().join(format!(
            "nectar-agent-check-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut settings = Settings::new(server.license_key(), "http://unused", dir);
        settings.jwks = Some(server.signer.jwks());
        (clock, server, settings)
    }

    async fn check(clock: &ManualClock, server: &Arc<FakeServer>, s: &Settings) -> CheckOutcome {
        run_check(
            s,
            Arc::new(clock.clone()),
            server.clone() as Arc<dyn LicenseServer>,
        )
        .await
    }

    #[tokio::test]
    async fn the_startup_check_refuses_bad_keys_with_a_clear_message() {
        let (clock, server, base) = rig();
        let other = nectar_client::testing::TestSigner::random("fake-k1");
        let cases: Vec<(&str, String, Option<&str>, &str)> = vec![
            ("malformed", "not-a-jwt".into(), None, "malformed"),
            (
                "badly signed",
                other.sign(&license_claims(NOW, NOW + 86_400, &[])),
                None,
                "signature is invalid",
            ),
            (
                "expired",
                server.signer.sign(&license_claims(NOW - 10, NOW - 1, &[])),
                None,
                "expired on",
            ),
            (
                "other domain",
                server
                    .signer
                    .sign(&license_claims(NOW, NOW + 86_400, &["acme.com"])),
                Some("evil.com"),
                "not valid for domain evil.com",
            ),
        ];
        for (label, key, domain, expected) in cases {
            let mut s = base.clone();
            s.license_key = key;
            s.domain = domain.map(str::to_owned);
            let outcome = check(&clock, &server, &s).await;
            assert_eq!(outcome.exit_code(), 1, "{label}: {outcome:?}");
            let CheckOutcome::Fail(message) = outcome else {
                panic!("{label}")
            };
            assert!(message.contains(expected), "{label}: {message}");
            assert!(!message.contains(&s.license_key), "{label}: key in message");
        }
    }

    #[tokio::test]
    async fn the_startup_check_passes_online_and_refuses_a_revoked_license() {
        let (clock, server, s) = rig();
        assert!(matches!(
            check(&clock, &server, &s).await,
            CheckOutcome::Pass(_)
        ));
        server.set_code("REVOKED");
        let outcome = check(&clock, &server, &s).await;
        assert!(
            matches!(&outcome, CheckOutcome::Fail(m) if m.contains("REVOKED")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn the_startup_check_warns_but_passes_when_the_server_is_unreachable() {
        let (clock, server, s) = rig();
        server.set_reachable(false);
        let outcome = check(&clock, &server, &s).await;
        assert!(
            matches!(&outcome, CheckOutcome::Warn(m) if m.contains("unreachable")),
            "{outcome:?}"
        );
        assert_eq!(outcome.exit_code(), 0);
    }

    #[tokio::test]
    async fn the_startup_check_fails_offline_once_the_lease_and_its_grace_are_over() {
        let (clock, server, s) = rig();
        assert!(matches!(
            check(&clock, &server, &s).await,
            CheckOutcome::Pass(_)
        ));
        server.set_reachable(false);
        clock.advance(7 * 86_400);
        let outcome = check(&clock, &server, &s).await;
        assert!(
            matches!(&outcome, CheckOutcome::Fail(m) if m.contains("LEASE_EXPIRED")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn the_startup_check_fails_without_a_pin_when_the_server_is_unreachable() {
        let (clock, server, mut s) = rig();
        s.jwks = None;
        server.set_reachable(false);
        let outcome = check(&clock, &server, &s).await;
        assert!(
            matches!(&outcome, CheckOutcome::Fail(m) if m.contains("NECTAR_JWKS")),
            "{outcome:?}"
        );
    }
}
