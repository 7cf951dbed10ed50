//! Installation-side trust, as an attacker with the customer's host would try it: every way of
//! talking the client into a lease Nectar did not sign fails closed, with a stable reason.
//!
//! The client here trusts the rig's root (tests cannot compile a root in; `with_roots` exists
//! only in test and development builds). Everything else — the server it talks to, the state
//! file, the activation file — is the attacker's to choose.

use std::path::PathBuf;
use std::sync::Arc;

use nectar_client::state::StateStore;
use nectar_client::testing::{
    FakeServer, TEST_ISSUER, TestSigner, TestTrust, lease_claims, license_claims,
};
use nectar_client::token::{TokenError, TokenKind};
use nectar_client::{
    ClientConfig, ClientError, Decision, LicenseClient, LicenseServer, ManualClock,
};
use nectar_protocol::token::{ACTIVATION_FORMAT, ActivationFile};

const HOUR: i64 = 3_600;
const DAY: i64 = 24 * HOUR;
/// 2026-06-01T00:00:00Z.
const T0: i64 = 1_780_272_000;
const IID: &str = "inst-1";

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nectar-client-trust-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Nectar's real keys (the root the client trusts), a clock, a state directory.
struct Rig {
    nectar: TestTrust,
    clock: ManualClock,
    dir: PathBuf,
}

impl Rig {
    fn new() -> Self {
        Self {
            nectar: TestTrust::new("nectar"),
            clock: ManualClock::at(T0),
            dir: temp_dir(),
        }
    }

    /// A license key Nectar signed, valid for a year.
    fn key(&self) -> String {
        self.nectar
            .license
            .sign(&license_claims(T0, T0 + 365 * DAY, &[]))
    }

    fn client_with(&self, key: &str, server: &Arc<FakeServer>) -> LicenseClient {
        let mut config = ClientConfig::new(key, &self.dir).with_roots(self.nectar.roots());
        config.installation_id = Some(IID.into());
        LicenseClient::new(
            config,
            Arc::new(self.clock.clone()),
            server.clone() as Arc<dyn LicenseServer>,
        )
        .expect("client")
    }

    /// Nectar's own server.
    fn real_server(&self) -> Arc<FakeServer> {
        Arc::new(FakeServer::with_trust(
            Arc::new(self.clock.clone()),
            self.nectar.clone(),
        ))
    }

    /// A server the attacker runs, with their own root and keys.
    fn fake_server(&self) -> Arc<FakeServer> {
        Arc::new(FakeServer::with_trust(
            Arc::new(self.clock.clone()),
            TestTrust::new("nectar"), // same key ids, different keys
        ))
    }
}

#[tokio::test]
async fn a_self_minted_license_key_never_verifies_whatever_the_server_publishes() {
    // The attack: a P-256 key of the customer's own, a JWKS and endorsements made with it, an
    // enterprise license for ten years — served by their own license server.
    let rig = Rig::new();
    let attacker = rig.fake_server();
    let mut claims = license_claims(T0, T0 + 3_650 * DAY, &[]);
    claims["feat"] = serde_json::json!(["workflows", "sso", "analytics", "everything"]);
    let forged = attacker.trust.license.sign(&claims);
    let client = rig.client_with(&forged, &attacker);

    let outcome = client.heartbeat().await;

    assert!(
        matches!(
            outcome,
            Err(ClientError::LeaseRejected(TokenError::LicenseUnverified))
        ),
        "{outcome:?}"
    );
    assert_eq!(client.license().map(|_| ()), Err(TokenError::UnknownKey));
    assert_eq!(client.check("workflows"), Decision::NoLease);
    assert_eq!(
        client.status().license_key_error.as_deref(),
        Some("TOKEN_UNTRUSTED_KEY")
    );
}

#[tokio::test]
async fn a_fake_server_cannot_hand_a_real_license_a_lease() {
    // A real key, but the agent pointed at a 30-line fake server signing its own leases.
    let rig = Rig::new();
    let attacker = rig.fake_server();
    let client = rig.client_with(&rig.key(), &attacker);

    let outcome = client.heartbeat().await;

    // Its endorsements are not by a root: the license key's own key stays unknown, and a lease
    // is never believed without a verified license.
    assert!(
        matches!(
            outcome,
            Err(ClientError::LeaseRejected(TokenError::LicenseUnverified))
        ),
        "{outcome:?}"
    );
    assert_eq!(client.check("workflows"), Decision::NoLease);
}

#[tokio::test]
async fn a_lease_for_another_license_is_refused() {
    let rig = Rig::new();
    let server = rig.real_server();
    server.edit_leases(Box::new(|claims| {
        claims["lid"] = "NECTAR-ENTERPRISE-2026-OTHER001".into();
        None
    }));
    let client = rig.client_with(&rig.key(), &server);
    let outcome = client.heartbeat().await;
    assert!(
        matches!(
            outcome,
            Err(ClientError::LeaseRejected(TokenError::WrongLicense))
        ),
        "{outcome:?}"
    );
    assert_eq!(client.check("workflows"), Decision::NoLease);
}

#[tokio::test]
async fn a_lease_signed_by_the_license_key_is_refused() {
    let rig = Rig::new();
    let server = rig.real_server();
    let license_key_signer = rig.nectar.license.clone();
    server.edit_leases(Box::new(move |_| Some(license_key_signer.clone())));
    let client = rig.client_with(&rig.key(), &server);
    let outcome = client.heartbeat().await;
    assert!(
        matches!(
            outcome,
            Err(ClientError::LeaseRejected(TokenError::UnknownKey))
        ),
        "{outcome:?}"
    );
    assert_eq!(client.check("workflows"), Decision::NoLease);
}

#[tokio::test]
async fn a_license_key_signed_by_the_lease_key_is_refused() {
    let rig = Rig::new();
    let server = rig.real_server();
    let by_lease_key = rig
        .nectar
        .lease
        .sign(&license_claims(T0, T0 + 365 * DAY, &[]));
    let client = rig.client_with(&by_lease_key, &server);
    let _ = client.heartbeat().await;
    assert_eq!(client.license().map(|_| ()), Err(TokenError::UnknownKey));
    assert_eq!(client.check("workflows"), Decision::NoLease);
}

#[tokio::test]
async fn forged_endorsements_and_leases_in_the_state_file_are_discarded_on_load() {
    // Attack 3: the state file is the customer's to edit (its checksum is not a signature).
    let rig = Rig::new();
    let server = rig.real_server();
    let client = rig.client_with(&rig.key(), &server);
    client.heartbeat().await.expect("heartbeat");
    drop(client);

    let store = StateStore::in_dir(&rig.dir);
    let mut state = store.load();
    let forger = TestTrust::new("nectar");
    state.endorsements = forger.endorsements.clone();
    state.lease = Some(forger.lease.sign(&lease_claims(IID, T0, T0 + 3_650 * DAY)));
    store.save(&state).expect("save");

    let restarted = rig.client_with(&rig.key(), &server);
    assert_eq!(restarted.check("workflows"), Decision::NoLease);
    assert_eq!(restarted.license().map(|_| ()), Err(TokenError::UnknownKey));
}

#[tokio::test]
async fn high_s_variants_of_a_real_lease_are_refused() {
    let rig = Rig::new();
    let server = rig.real_server();
    let client = rig.client_with(&rig.key(), &server);
    client.heartbeat().await.expect("heartbeat");
    drop(client);
    let store = StateStore::in_dir(&rig.dir);
    let mut state = store.load();
    let lease = state.lease.clone().expect("lease");
    state.lease = Some(nectar_protocol::jws::high_s_variant(&lease));
    store.save(&state).expect("save");
    let restarted = rig.client_with(&rig.key(), &server);
    assert_eq!(restarted.check("workflows"), Decision::NoLease);
    // A high-S twin of the license key itself is refused too.
    let twin = nectar_protocol::jws::high_s_variant(&rig.key());
    let other = rig.client_with(&twin, &server);
    assert_eq!(other.license().map(|_| ()), Err(TokenError::NonCanonical));
}

#[tokio::test]
async fn the_unsigned_response_time_never_moves_the_clock_state() {
    // A server (or a proxy) that lies about `ts` a year ahead would otherwise make every later
    // honest reading look like a rollback — or, the other way, hide one.
    let rig = Rig::new();
    let server = rig.real_server();
    server.skew_response_ts(365 * DAY);
    let client = rig.client_with(&rig.key(), &server);
    client.heartbeat().await.expect("heartbeat");
    assert_eq!(client.check("workflows"), Decision::Allowed);
    assert!(!client.status().clock_tampered);
    assert_eq!(client.trusted_now(), T0);
}

#[tokio::test]
async fn the_signed_lease_time_raises_trusted_time() {
    // The local clock is a day behind Nectar's: the lease's signed `ts` moves trusted time.
    let rig = Rig::new();
    let nectar_clock = ManualClock::at(T0);
    let server = Arc::new(FakeServer::with_trust(
        Arc::new(nectar_clock),
        rig.nectar.clone(),
    ));
    rig.clock.set(T0 - DAY);
    let client = rig.client_with(&rig.key(), &server);
    assert_eq!(client.trusted_now(), T0 - DAY);
    client.heartbeat().await.expect("heartbeat");
    assert_eq!(client.trusted_now(), T0);
    assert_eq!(client.check("workflows"), Decision::ClockTampered);
}

#[tokio::test]
async fn the_clock_tolerance_is_capped_at_an_hour() {
    let rig = Rig::new();
    let server = rig.real_server();
    let mut config = ClientConfig::new(rig.key(), &rig.dir).with_roots(rig.nectar.roots());
    config.clock_tolerance_secs = 30 * DAY;
    let client = LicenseClient::new(
        config,
        Arc::new(rig.clock.clone()),
        server.clone() as Arc<dyn LicenseServer>,
    )
    .expect("client");
    assert_eq!(
        client.config().clock_tolerance_secs,
        nectar_client::client::MAX_CLOCK_TOLERANCE_SECS
    );
    client.heartbeat().await.expect("heartbeat");
    rig.clock.advance(-2 * HOUR);
    assert_eq!(client.check("workflows"), Decision::ClockTampered);
}

#[tokio::test]
async fn a_restored_older_state_file_replays_at_most_one_signed_lease_within_its_ttl() {
    // The customer saves the state while valid, is revoked, then restores the old file. The
    // bound: the old lease Nectar signed works until its own expiry (72 h here), running work
    // through its grace, and not one second more.
    let rig = Rig::new();
    let server = rig.real_server();
    let client = rig.client_with(&rig.key(), &server);
    client.heartbeat().await.expect("heartbeat");
    drop(client);
    let saved = std::fs::read(rig.dir.join("state.json")).expect("state");

    server.set_code("REVOKED");
    let client = rig.client_with(&rig.key(), &server);
    client.heartbeat().await.expect("heartbeat");
    assert!(matches!(client.check("workflows"), Decision::Locked(_)));
    drop(client);

    std::fs::write(rig.dir.join("state.json"), &saved).expect("restore");
    server.set_reachable(false);
    let replayed = rig.client_with(&rig.key(), &server);
    assert_eq!(replayed.check("workflows"), Decision::Allowed, "the replay");
    rig.clock.advance(72 * HOUR);
    assert_eq!(
        replayed.check("workflows"),
        Decision::LeaseExpired { in_grace: true }
    );
    rig.clock.advance(72 * HOUR);
    assert_eq!(
        replayed.check_running("workflows"),
        Decision::LeaseExpired { in_grace: false }
    );
    // Winding the clock back to replay again is tampering, not a second window.
    rig.clock.set(T0 + HOUR);
    assert_eq!(replayed.check("workflows"), Decision::ClockTampered);
}

fn activation(rig: &Rig, lease_signer: &TestSigner, iid: &str, days: i64) -> ActivationFile {
    let mut claims = lease_claims(iid, T0, T0 + days * DAY);
    claims["lid"] = nectar_client::testing::TEST_LICENSE_ID.into();
    ActivationFile {
        format: ACTIVATION_FORMAT.into(),
        license_id: nectar_client::testing::TEST_LICENSE_ID.into(),
        installation_id: iid.into(),
        expires_at: String::new(),
        lease: lease_signer.sign(&claims),
        endorsements: rig.nectar.endorsements.clone(),
    }
}

#[tokio::test]
async fn an_offline_activation_file_starts_an_air_gapped_installation() {
    let rig = Rig::new();
    let server = rig.real_server();
    server.set_reachable(false);
    let client = rig.client_with(&rig.key(), &server);
    assert_eq!(client.check("workflows"), Decision::NoLease);

    let installed = client
        .install_activation(&activation(&rig, &rig.nectar.lease, IID, 90))
        .expect("accepted");

    assert!(installed);
    assert_eq!(client.check("workflows"), Decision::Allowed);
    rig.clock.advance(89 * DAY);
    assert_eq!(client.check("workflows"), Decision::Allowed);
    rig.clock.advance(DAY);
    assert!(matches!(
        client.check("workflows"),
        Decision::LeaseExpired { .. }
    ));
}

#[tokio::test]
async fn a_tampered_or_foreign_activation_file_is_refused() {
    let rig = Rig::new();
    let server = rig.real_server();
    server.set_reachable(false);
    let client = rig.client_with(&rig.key(), &server);
    let forger = TestTrust::new("nectar");

    // Signed by the attacker's key, with the attacker's endorsements.
    let mut forged = activation(&rig, &forger.lease, IID, 3_650);
    forged.endorsements = forger.endorsements.clone();
    assert!(matches!(
        client.install_activation(&forged),
        Err(ClientError::LeaseRejected(TokenError::LicenseUnverified))
    ));
    // A genuine file for another installation.
    let other = activation(&rig, &rig.nectar.lease, "inst-2", 90);
    assert!(matches!(
        client.install_activation(&other),
        Err(ClientError::LeaseRejected(TokenError::WrongInstallation))
    ));
    // A genuine file with its lease edited (expiry pushed out).
    let mut edited = activation(&rig, &rig.nectar.lease, IID, 90);
    let parts: Vec<&str> = edited.lease.split('.').collect();
    let mut claims = lease_claims(IID, T0, T0 + 3_650 * DAY);
    claims["lid"] = nectar_client::testing::TEST_LICENSE_ID.into();
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    edited.lease = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert!(matches!(
        client.install_activation(&edited),
        Err(ClientError::LeaseRejected(TokenError::Signature))
    ));
    assert_eq!(client.check("workflows"), Decision::NoLease);
}

#[tokio::test]
async fn a_rotated_lease_key_is_trusted_once_endorsed_and_refused_once_its_endorsement_ends() {
    // Rotation without a new agent: Nectar starts signing leases with a new key and publishes a
    // root endorsement of it; the installation fetches it on the first lease it cannot place.
    let rig = Rig::new();
    let server = rig.real_server();
    let client = rig.client_with(&rig.key(), &server);
    client.heartbeat().await.expect("heartbeat");

    let next = TestSigner::random("nectar-lease-2");
    let short_end = T0 + 10 * DAY;
    let endorsement = rig
        .nectar
        .root
        .endorse(TEST_ISSUER, &next, TokenKind::Lease, T0, short_end);
    let rotated = Arc::new(FakeServer::with_trust(
        Arc::new(rig.clock.clone()),
        TestTrust {
            lease: next.clone(),
            endorsements: vec![rig.nectar.endorsements[0].clone(), endorsement],
            ..rig.nectar.clone()
        },
    ));
    drop(client);
    let client = rig.client_with(&rig.key(), &rotated);
    let calls_before = client.network_calls();
    let report = client.heartbeat().await.expect("heartbeat");
    assert!(report.lease_installed);
    assert_eq!(
        client.network_calls() - calls_before,
        2,
        "heartbeat + one JWKS fetch"
    );
    assert_eq!(client.check("workflows"), Decision::Allowed);

    // The endorsement ends: leases the key signs are refused from then on.
    rig.clock.set(short_end);
    let outcome = client.heartbeat().await;
    assert!(
        matches!(
            outcome,
            Err(ClientError::LeaseRejected(TokenError::UnknownKey))
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_redirect_is_an_error_and_the_key_never_reaches_the_redirect_target() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The redirect target counts the connections it gets.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target_addr = target.local_addr().expect("addr");
    let reached = Arc::new(AtomicUsize::new(0));
    {
        let reached = reached.clone();
        tokio::spawn(async move {
            while let Ok((_s, _)) = target.accept().await {
                reached.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    // The configured server answers every request with a 307 to the target.
    let server = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server_addr = server.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = server.accept().await {
            let mut buf = vec![0u8; 16 * 1024];
            let _ = s.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{target_addr}/api/heartbeat\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    let http =
        nectar_client::HttpLicenseServer::new(&format!("http://{server_addr}")).expect("url");
    let request = nectar_client::server::HeartbeatRequest {
        license_key: "a.b.c".into(),
        installation_id: IID.into(),
        version: "1".into(),
        domain: None,
        gauges: None,
        signals: vec![],
    };
    let outcome = http.heartbeat(&request).await;
    assert_eq!(
        outcome.map(|_| ()),
        Err(nectar_client::NetError::Redirect(307))
    );
    assert_eq!(reached.load(Ordering::SeqCst), 0);
    // And plain http to another machine is refused before any connection.
    assert!(matches!(
        nectar_client::HttpLicenseServer::new("http://license.nectar.example"),
        Err(nectar_client::NetError::Url(_))
    ));
}
