//! `nectar-agent check`: the startup gate for container entrypoints. It refuses (non-zero exit,
//! clear message) a key that is missing, malformed, not signed by a key Nectar endorsed, expired
//! or for another domain, then asks the server. It passes only on the server's `VALID` or, when
//! the server cannot be reached, on a lease Nectar signed for this installation (from an earlier
//! heartbeat or an offline activation file) — never on the license key alone, which anyone who
//! once saw it could present.

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
            "the license key was not signed by a key Nectar endorsed (TOKEN_UNTRUSTED_KEY)".into()
        }
        TokenError::Signature => "the license key signature is invalid (TOKEN_SIGNATURE)".into(),
        TokenError::WrongKind | TokenError::Type => {
            format!("this token is not a license key ({})", e.code())
        }
        other => format!("the license key is invalid: {other} ({})", other.code()),
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
    if let Some(path) = &settings.activation_file
        && let Err(message) = crate::install_activation(&client, path)
    {
        return CheckOutcome::Fail(message);
    }
    let reachable = match client.ensure_keys().await {
        Ok(()) => true,
        Err(ClientError::Net(_)) => false,
        Err(e) => return CheckOutcome::Fail(format!("cannot verify the license key: {e}")),
    };
    let license = match client.license() {
        Ok(l) => l,
        Err(TokenError::UnknownKey) if !reachable => {
            return CheckOutcome::Fail(
                "cannot verify the license key: the license server is unreachable and no \
                 endorsement of its signing key is known yet (first start needs the license \
                 server, or an activation file in NECTAR_ACTIVATION_FILE)"
                    .into(),
            );
        }
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
    // Offline: only a lease Nectar signed for this installation lets the product start.
    match client.check_license() {
        Decision::Allowed => CheckOutcome::Warn(format!(
            "license server unreachable; starting on the signed lease of license {} \
                 (lease valid until {})",
            license.jti,
            client
                .status()
                .lease_expires_at
                .unwrap_or_else(|| "?".into())
        )),
        Decision::NoLease => CheckOutcome::Fail(format!(
            "license server unreachable and this installation holds no lease for license {}: \
             the first start needs the license server (or an offline activation file in \
             NECTAR_ACTIVATION_FILE)",
            license.jti
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
        settings.roots = server.trust.roots();
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
        // The real license key's id, another key: the signature cannot verify.
        let other = nectar_client::testing::TestSigner::random("fake-license");
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
                server
                    .trust
                    .license
                    .sign(&license_claims(NOW - 10, NOW - 1, &[])),
                None,
                "expired on",
            ),
            (
                "other domain",
                server
                    .trust
                    .license
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
    async fn the_startup_check_warns_but_passes_offline_on_a_lease_it_holds() {
        let (clock, server, s) = rig();
        assert!(matches!(
            check(&clock, &server, &s).await,
            CheckOutcome::Pass(_)
        ));
        server.set_reachable(false);
        let outcome = check(&clock, &server, &s).await;
        assert!(
            matches!(&outcome, CheckOutcome::Warn(m) if m.contains("unreachable")),
            "{outcome:?}"
        );
        assert_eq!(outcome.exit_code(), 0);
    }

    #[tokio::test]
    async fn a_first_start_without_the_server_fails_even_with_a_genuine_key() {
        let (clock, server, s) = rig();
        server.set_reachable(false);
        let outcome = check(&clock, &server, &s).await;
        assert!(
            matches!(&outcome, CheckOutcome::Fail(m) if m.contains("NECTAR_ACTIVATION_FILE")),
            "{outcome:?}"
        );
        assert_eq!(outcome.exit_code(), 1);
    }

    #[tokio::test]
    async fn a_self_minted_key_fails_the_check_online_and_offline() {
        // Attack 1 of the trust issue: the customer's own P-256 key, an enterprise license for
        // ten years, the agent pointed at a dead server — or at their own fake one.
        let (clock, server, mut s) = rig();
        let attacker = nectar_client::testing::TestTrust::new("evil");
        let mut claims = license_claims(NOW, NOW + 3_650 * 86_400, &[]);
        claims["feat"] = serde_json::json!(["workflows", "sso", "everything"]);
        s.license_key = attacker.license.sign(&claims);
        for reachable in [false, true] {
            server.set_reachable(reachable);
            let outcome = check(&clock, &server, &s).await;
            assert_eq!(outcome.exit_code(), 1, "{outcome:?}");
        }
        let fake = Arc::new(FakeServer::with_trust(
            Arc::new(clock.clone()),
            attacker.clone(),
        ));
        let outcome = check(&clock, &fake, &s).await;
        assert!(
            matches!(&outcome, CheckOutcome::Fail(m) if m.contains("TOKEN_UNTRUSTED_KEY")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn an_activation_file_lets_an_air_gapped_installation_start() {
        let (clock, server, mut s) = rig();
        server.set_reachable(false);
        s.installation_id = Some("air-1".into());
        let mut lease = nectar_client::testing::lease_claims("air-1", NOW, NOW + 90 * 86_400);
        lease["lid"] = nectar_client::testing::TEST_LICENSE_ID.into();
        let file = nectar_protocol::token::ActivationFile {
            format: nectar_protocol::token::ACTIVATION_FORMAT.into(),
            license_id: nectar_client::testing::TEST_LICENSE_ID.into(),
            installation_id: "air-1".into(),
            expires_at: String::new(),
            lease: server.trust.lease.sign(&lease),
            endorsements: server.trust.endorsements.clone(),
        };
        let path = s.state_dir.join("activation.json");
        std::fs::create_dir_all(&s.state_dir).expect("dir");
        std::fs::write(&path, serde_json::to_vec(&file).expect("json")).expect("write");
        s.activation_file = Some(path.clone());
        let outcome = check(&clock, &server, &s).await;
        assert!(matches!(&outcome, CheckOutcome::Warn(_)), "{outcome:?}");
        // The same file on another installation is refused with its reason.
        let (clock2, server2, mut other) = rig();
        server2.set_reachable(false);
        other.installation_id = Some("air-2".into());
        other.roots = s.roots.clone();
        other.license_key = s.license_key.clone();
        other.activation_file = Some(path);
        let outcome = check(&clock2, &server2, &other).await;
        assert!(
            matches!(&outcome, CheckOutcome::Fail(m) if m.contains("LEASE_WRONG_INSTALLATION")),
            "{outcome:?}"
        );
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
}
