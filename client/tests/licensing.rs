//! The license client against an in-memory server with injected clocks: leases, offline grace,
//! locks, clock rollback, persisted state, and how few network calls `check` costs.

use std::path::PathBuf;
use std::sync::Arc;

use nectar_client::testing::FakeServer;
use nectar_client::{
    ClientConfig, Clock, Decision, LicenseClient, LicenseServer, LockReason, ManualClock,
    TokioClock,
};

const HOUR: i64 = 3_600;
const DAY: i64 = 24 * HOUR;
/// 2026-06-01T00:00:00Z.
const T0: i64 = 1_780_272_000;

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nectar-client-it-{label}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// An installation and the server it talks to, each with its own clock.
struct Rig {
    local: ManualClock,
    remote: ManualClock,
    server: Arc<FakeServer>,
    key: String,
    dir: PathBuf,
}

impl Rig {
    fn new(label: &str) -> Self {
        let remote = ManualClock::at(T0);
        let server = Arc::new(FakeServer::new(Arc::new(remote.clone())));
        Self {
            local: ManualClock::at(T0),
            key: server.license_key(),
            remote,
            server,
            dir: temp_dir(label),
        }
    }

    fn config(&self) -> ClientConfig {
        let mut config =
            ClientConfig::new(self.key.clone(), &self.dir).with_roots(self.server.trust.roots());
        config.installation_id = Some("inst-1".into());
        config
    }

    /// A client (a fresh process) over the rig's state directory.
    fn client(&self) -> Arc<LicenseClient> {
        Arc::new(
            LicenseClient::new(
                self.config(),
                Arc::new(self.local.clone()),
                self.server.clone() as Arc<dyn LicenseServer>,
            )
            .expect("client"),
        )
    }

    /// Both clocks move together (real time passing).
    fn advance(&self, secs: i64) {
        self.local.advance(secs);
        self.remote.advance(secs);
    }
}

#[tokio::test]
async fn a_fresh_installation_gets_a_lease_on_its_first_heartbeat() {
    // Arrange
    let rig = Rig::new("fresh");
    let client = rig.client();
    assert_eq!(client.check("workflows"), Decision::NoLease);
    // Act
    let report = client.heartbeat().await.expect("heartbeat");
    // Assert
    assert!(report.ok && report.lease_installed, "{report:?}");
    assert_eq!(client.check("workflows"), Decision::Allowed);
    assert_eq!(client.check("sso"), Decision::NotEntitled);
    let status = client.status();
    assert_eq!(status.status, "active");
    assert_eq!(status.plan.as_deref(), Some("professional"));
    assert!(status.lease_expires_at.is_some());
}

#[tokio::test]
async fn checks_answer_from_the_lease_without_any_network_call() {
    let rig = Rig::new("no-network");
    let client = rig.client();
    client.heartbeat().await.expect("heartbeat");
    let before = client.network_calls();
    rig.server.set_reachable(false);
    for _ in 0..1_000 {
        assert_eq!(client.check("workflows"), Decision::Allowed);
    }
    assert_eq!(client.network_calls(), before);
}

#[tokio::test]
async fn offline_grace_keeps_running_work_refuses_new_work_then_fails_closed() {
    // Arrange: a 72 h lease with 72 h grace, work started while it is valid, then offline.
    let rig = Rig::new("grace");
    let client = rig.client();
    client.heartbeat().await.expect("heartbeat");
    let work = client.start_work("workflows").expect("work starts");
    rig.server.set_reachable(false);

    // While the lease is valid, everything works offline.
    rig.advance(71 * HOUR);
    assert!(client.heartbeat().await.is_err());
    assert_eq!(client.check("workflows"), Decision::Allowed);

    // After lease expiry: running work continues, new work is refused.
    rig.advance(2 * HOUR);
    assert_eq!(
        client.check("workflows"),
        Decision::LeaseExpired { in_grace: true }
    );
    assert!(matches!(work.check(), Decision::Grace { .. }));
    assert!(work.check().is_allowed());
    assert_eq!(
        client.start_work("workflows").map(|_| ()),
        Err(Decision::LeaseExpired { in_grace: true })
    );
    assert_eq!(client.status().status, "grace");

    // After grace: closed for everything.
    rig.advance(72 * HOUR);
    let closed = Decision::LeaseExpired { in_grace: false };
    assert_eq!(client.check("workflows"), closed);
    assert_eq!(work.check(), closed);
    assert_eq!(client.check_running("workflows"), closed);

    // Back online: a new lease reopens.
    rig.server.set_reachable(true);
    client.heartbeat().await.expect("heartbeat");
    assert_eq!(client.check("workflows"), Decision::Allowed);
}

#[tokio::test]
async fn a_revoked_answer_locks_at_once_and_the_lock_survives_a_restart() {
    let rig = Rig::new("revoked");
    let client = rig.client();
    client.heartbeat().await.expect("heartbeat");
    let work = client.start_work("workflows").expect("work starts");
    // Act
    rig.server.set_code("REVOKED");
    let report = client.heartbeat().await.expect("heartbeat");
    // Assert: locked for new and running work, although the lease had days left.
    assert_eq!(report.code, "REVOKED");
    let locked = Decision::Locked(LockReason::Revoked);
    assert_eq!(client.check("workflows"), locked);
    assert_eq!(work.check(), locked);
    rig.server.set_reachable(false);
    drop(client);
    let restarted = rig.client();
    assert_eq!(restarted.check("workflows"), locked);
    assert_eq!(restarted.status().status, "locked");
}

#[tokio::test]
async fn a_suspension_locks_until_a_heartbeat_says_valid_again() {
    let rig = Rig::new("suspended");
    let client = rig.client();
    client.heartbeat().await.expect("heartbeat");
    rig.server.set_code("SUSPENDED");
    client.heartbeat().await.expect("heartbeat");
    assert_eq!(
        client.check("workflows"),
        Decision::Locked(LockReason::Suspended)
    );
    rig.server.set_code("VALID");
    client.heartbeat().await.expect("heartbeat");
    assert_eq!(client.check("workflows"), Decision::Allowed);
}

#[tokio::test]
async fn a_clock_rolled_back_two_days_is_tampering_and_is_reported_on_the_next_heartbeat() {
    // Arrange
    let rig = Rig::new("rollback");
    let client = rig.client();
    client.heartbeat().await.expect("heartbeat");
    rig.advance(HOUR);
    assert_eq!(client.check("workflows"), Decision::Allowed);
    // Act: the local clock goes back two days; the server's does not.
    rig.local.advance(-2 * DAY);
    // Assert: new work refused at once, without any network call.
    assert_eq!(client.check("workflows"), Decision::ClockTampered);
    assert_eq!(client.status().status, "clock_tampered");
    let report = client.heartbeat().await.expect("heartbeat");
    assert_eq!(report.signals, ["CLOCK_TAMPERED"]);
    let sent = rig.server.heartbeat_requests();
    assert_eq!(
        sent.last().expect("beat")["signals"],
        serde_json::json!(["CLOCK_TAMPERED"])
    );
    assert!(sent[0].get("signals").is_none(), "{}", sent[0]);
    // The clock is put right: allowed again, and no more signal.
    rig.local.advance(2 * DAY);
    assert_eq!(client.check("workflows"), Decision::Allowed);
    client.heartbeat().await.expect("heartbeat");
    assert!(
        rig.server
            .heartbeat_requests()
            .last()
            .expect("beat")
            .get("signals")
            .is_none()
    );
}

#[tokio::test]
async fn a_clock_drift_within_the_tolerance_is_not_tampering() {
    let rig = Rig::new("drift");
    let client = rig.client();
    client.heartbeat().await.expect("heartbeat");
    rig.local.advance(-240);
    assert_eq!(client.check("workflows"), Decision::Allowed);
}

#[tokio::test]
async fn a_rollback_made_while_stopped_is_noticed_on_restart() {
    let rig = Rig::new("rollback-stopped");
    let client = rig.client();
    client.heartbeat().await.expect("heartbeat");
    rig.advance(2 * HOUR);
    assert_eq!(client.check("workflows"), Decision::Allowed);
    client.save().expect("save");
    drop(client);
    rig.local.advance(-2 * DAY);
    let restarted = rig.client();
    assert_eq!(restarted.check("workflows"), Decision::ClockTampered);
    restarted.heartbeat().await.expect("heartbeat");
    assert_eq!(
        rig.server.heartbeat_requests().last().expect("beat")["signals"],
        serde_json::json!(["CLOCK_TAMPERED"])
    );
}

#[tokio::test]
async fn a_lease_expires_by_trusted_time_even_if_the_clock_goes_back_a_little() {
    // Small rollbacks (within tolerance) cannot stretch a lease past the high-water mark.
    let rig = Rig::new("stretch");
    let client = rig.client();
    client.heartbeat().await.expect("heartbeat");
    rig.server.set_reachable(false);
    rig.advance(72 * HOUR);
    assert_eq!(
        client.check("workflows"),
        Decision::LeaseExpired { in_grace: true }
    );
    rig.local.advance(-240);
    assert_eq!(
        client.check("workflows"),
        Decision::LeaseExpired { in_grace: true }
    );
}

#[tokio::test]
async fn a_corrupted_state_file_is_not_trusted_and_the_installation_relearns_online() {
    let rig = Rig::new("corrupt");
    let client = rig.client();
    client.heartbeat().await.expect("heartbeat");
    drop(client);
    let path = rig.dir.join("state.json");
    let mut bytes = std::fs::read(&path).expect("state");
    let at = bytes.len() / 3;
    bytes[at] ^= 0x20;
    std::fs::write(&path, bytes).expect("write");
    // Corrupt → no lease: fail closed until the server is reached again.
    let restarted = rig.client();
    assert_eq!(restarted.check("workflows"), Decision::NoLease);
    restarted.heartbeat().await.expect("heartbeat");
    assert_eq!(restarted.check("workflows"), Decision::Allowed);
}

#[tokio::test]
async fn a_persisted_lease_is_verified_again_on_load() {
    // A state file with an intact checksum but a lease the pinned key did not sign (e.g.
    // copied from another installation, or hand-made) is discarded.
    let rig = Rig::new("reverify");
    let client = rig.client();
    client.heartbeat().await.expect("heartbeat");
    drop(client);
    let store = nectar_client::state::StateStore::in_dir(&rig.dir);
    let mut state = store.load();
    let forger = nectar_client::testing::TestSigner::random("fake-k1");
    state.lease = Some(forger.sign(&nectar_client::testing::lease_claims(
        "inst-1",
        T0,
        T0 + 365 * DAY,
    )));
    store.save(&state).expect("save");
    assert_eq!(rig.client().check("workflows"), Decision::NoLease);
}

#[tokio::test]
async fn a_lease_for_another_installation_from_the_state_is_discarded() {
    let rig = Rig::new("other-iid");
    let client = rig.client();
    client.heartbeat().await.expect("heartbeat");
    drop(client);
    let mut config = rig.config();
    config.installation_id = Some("inst-2".into());
    let other = LicenseClient::new(
        config,
        Arc::new(rig.local.clone()),
        rig.server.clone() as Arc<dyn LicenseServer>,
    )
    .expect("client");
    assert_eq!(other.check("workflows"), Decision::NoLease);
}

#[tokio::test]
async fn endorsements_are_fetched_once_and_kept_in_the_state() {
    let rig = Rig::new("endorsements");
    let client = rig.client();
    assert_eq!(
        client.license().map(|_| ()),
        Err(nectar_client::token::TokenError::UnknownKey),
        "no signing key is trusted before its endorsement is seen"
    );
    client.heartbeat().await.expect("heartbeat");
    assert_eq!(client.network_calls(), 2, "JWKS + heartbeat");
    assert!(client.license().is_ok());
    drop(client);
    let restarted = rig.client();
    assert_eq!(restarted.check("workflows"), Decision::Allowed);
    restarted.heartbeat().await.expect("heartbeat");
    assert_eq!(
        restarted.network_calls(),
        1,
        "the endorsements came from the state"
    );
}

#[tokio::test]
async fn an_installation_id_is_generated_once_and_persisted() {
    let rig = Rig::new("iid");
    let mut config = rig.config();
    config.installation_id = None;
    let make = || {
        LicenseClient::new(
            config.clone(),
            Arc::new(rig.local.clone()),
            rig.server.clone() as Arc<dyn LicenseServer>,
        )
        .expect("client")
    };
    let first = make().installation_id().to_owned();
    assert_eq!(make().installation_id(), first);
    assert!(uuid::Uuid::parse_str(&first).is_ok(), "{first}");
}

/// The seed validated each of 3 features every 5 minutes: 36 validations + 1 heartbeat an hour.
/// Here one simulated hour (tokio's paused clock drives both the timers and the injected clock)
/// of the same checks costs at most the one hourly heartbeat.
#[tokio::test(start_paused = true)]
async fn one_simulated_hour_of_three_features_costs_at_most_one_network_call() {
    // Arrange: an installation that has been running (it has a lease from its last beat).
    let clock = TokioClock::starting_at(T0);
    let server = Arc::new(FakeServer::new(Arc::new(clock.clone())));
    let dir = temp_dir("simulated-hour");
    let config = server.client_config(&dir);
    let make = || {
        Arc::new(
            LicenseClient::new(
                config.clone(),
                Arc::new(clock.clone()) as Arc<dyn Clock>,
                server.clone() as Arc<dyn LicenseServer>,
            )
            .expect("client"),
        )
    };
    make().heartbeat().await.expect("previous run's heartbeat");
    let client = make();
    let _background = client.spawn_background();
    // Act: every 5 minutes for an hour, check 3 features.
    let features = ["workflows", "api_access", "integrations"];
    let mut checks = 0;
    for _ in 0..12 {
        tokio::time::sleep(std::time::Duration::from_secs(300)).await;
        for f in features {
            assert_eq!(client.check(f), Decision::Allowed);
            checks += 1;
        }
    }
    // Assert
    let calls = client.network_calls();
    println!("simulated hour: {checks} checks, {calls} network call(s) (seed: 37)");
    assert_eq!(checks, 36);
    assert!(calls <= 1, "{calls} calls");

    // And over a simulated day, about one call an hour (±10 % jitter).
    for _ in 0..(23 * 12) {
        tokio::time::sleep(std::time::Duration::from_secs(300)).await;
        for f in features {
            assert_eq!(client.check(f), Decision::Allowed);
        }
    }
    let day = client.network_calls();
    println!("simulated day: {} checks, {day} network calls", 24 * 36);
    assert!((22..=27).contains(&day), "{day} calls in 24 h");
}

#[tokio::test(start_paused = true)]
async fn background_heartbeats_back_off_while_the_server_is_unreachable() {
    let clock = TokioClock::starting_at(T0);
    let server = Arc::new(FakeServer::new(Arc::new(clock.clone())));
    let dir = temp_dir("backoff");
    let config = server.client_config(&dir);
    server.set_reachable(false);
    let client = Arc::new(
        LicenseClient::new(
            config,
            Arc::new(clock.clone()),
            server.clone() as Arc<dyn LicenseServer>,
        )
        .expect("client"),
    );
    let _background = client.spawn_background();
    // 30 s, 60 s, 120 s, … capped at 15 min: about 8 attempts in the first hour, not thousands.
    tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
    let attempts = client.network_calls();
    assert!((6..=10).contains(&attempts), "{attempts} attempts");
    // Once it is back, the lease arrives within the backoff cap.
    server.set_reachable(true);
    tokio::time::sleep(std::time::Duration::from_secs(16 * 60)).await;
    assert_eq!(client.check("workflows"), Decision::Allowed);
}
