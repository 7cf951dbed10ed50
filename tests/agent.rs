//! End-to-end: the installation side (`nectar-agent` with `nectar-client`) against the real local
//! stack that `make test` serves. Installation clocks are injected (`ManualClock`), so expiry,
//! grace and rollback are reached without waiting; "the server is unreachable" is a closed port.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use e2e::Api;
use nectar_agent::{RunningAgent, Settings};
use nectar_client::token::TrustRoots;
use nectar_client::{HttpLicenseServer, Jwks, LicenseServer, ManualClock};
use reqwest::StatusCode;
use serde_json::{Value, json};

const DAY: i64 = 86_400;

fn base_url() -> String {
    std::env::var("NECTAR_E2E_URL").expect("NECTAR_E2E_URL: run with `make test`")
}

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nectar-e2e-agent-{label}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A URL nothing listens on: a port we bound and released.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The local stack's root key (made by `nectar-admin bootstrap`): what a release agent has
/// compiled in, given here because these agents run in the test process.
fn roots() -> TrustRoots {
    let path =
        std::env::var("NECTAR_E2E_ROOT_JWKS").expect("NECTAR_E2E_ROOT_JWKS: run with `make test`");
    let jwks: Jwks =
        serde_json::from_str(&std::fs::read_to_string(path).expect("root JWKS")).expect("json");
    TrustRoots::from_jwks(&jwks).expect("a root key")
}

fn settings(key: &str, url: &str, dir: &Path) -> Settings {
    let mut s = Settings::new(key, url, dir.to_path_buf());
    s.roots = roots();
    s.usage_flush_secs = 1;
    s
}

async fn start(settings: &Settings, clock: &ManualClock) -> RunningAgent {
    let server = HttpLicenseServer::new(&settings.license_server_url).expect("http client");
    nectar_agent::start(
        settings,
        Arc::new(clock.clone()),
        Arc::new(server) as Arc<dyn LicenseServer>,
    )
    .await
    .expect("agent starts")
}

/// `GET` on the agent's local API, with its bearer token as the product sends it.
async fn local(agent: &RunningAgent, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("http://{}{path}", agent.addr))
        .bearer_auth(agent.api_token.expose())
        .send()
        .await
        .expect("agent answers")
        .json()
        .await
        .expect("json")
}

/// Polls the agent's status until `status` (the background heartbeat runs at start).
async fn wait_status(agent: &RunningAgent, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = local(agent, "/v1/license").await;
        if now["status"] == status || tokio::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn unix(rfc3339: &Value) -> i64 {
    let text = rfc3339.as_str().expect("timestamp");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("rfc3339")
        .unix_timestamp()
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn a_fresh_installation_gets_a_lease_and_answers_features_without_the_network() {
    // Arrange: no pinned JWKS, so the agent pins the stack's on first use.
    let api = Api::from_env();
    let (license, key) = api.issue("professional", json!({})).await;
    let dir = temp_dir("fresh");
    let clock = ManualClock::starting_now();
    // Act
    let agent = start(&settings(&key, &base_url(), &dir), &clock).await;
    let status = wait_status(&agent, "active").await;
    // Assert
    assert_eq!(status["status"], "active", "{status}");
    assert_eq!(status["licenseId"], license["id"]);
    assert_eq!(status["plan"], "professional");
    assert!(status["leaseExpiresAt"].is_string(), "{status}");
    let calls = agent.client.network_calls();
    for _ in 0..100 {
        let w = local(&agent, "/v1/features/workflows").await;
        assert_eq!(
            (w["allowed"].as_bool(), w["reason"].as_str()),
            (Some(true), Some("ALLOWED"))
        );
    }
    let sso = local(&agent, "/v1/features/sso").await;
    assert_eq!(sso["reason"], "NOT_ENTITLED", "{sso}");
    assert_eq!(
        agent.client.network_calls(),
        calls,
        "feature checks never call the server"
    );
    agent.shutdown().await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn with_the_server_unreachable_the_agent_runs_on_its_lease_then_grace_then_fails_closed() {
    // Arrange: a lease from the real server, then a restart pointed at a closed port.
    let api = Api::from_env();
    let (_, key) = api.issue("professional", json!({})).await;
    let dir = temp_dir("offline");
    let clock = ManualClock::starting_now();
    let online = start(&settings(&key, &base_url(), &dir), &clock).await;
    let status = wait_status(&online, "active").await;
    online.shutdown().await;
    let lease_exp = unix(&status["leaseExpiresAt"]);
    let grace_end = unix(&status["graceEndsAt"]);
    assert!(grace_end > lease_exp, "{status}");

    let agent = start(&settings(&key, &closed_port_url(), &dir), &clock).await;
    // Offline, lease valid: everything works.
    assert_eq!(
        local(&agent, "/v1/features/workflows").await["allowed"],
        true
    );
    assert!(
        agent.client.heartbeat().await.is_err(),
        "server is unreachable"
    );
    // Past the lease: running work continues, new work is refused.
    clock.set(lease_exp + 60);
    let new = local(&agent, "/v1/features/workflows").await;
    assert_eq!(
        (new["allowed"].as_bool(), new["reason"].as_str()),
        (Some(false), Some("LEASE_EXPIRED_IN_GRACE")),
        "{new}"
    );
    let running = local(&agent, "/v1/features/workflows?running=true").await;
    assert_eq!(
        (running["allowed"].as_bool(), running["reason"].as_str()),
        (Some(true), Some("GRACE")),
        "{running}"
    );
    assert_eq!(local(&agent, "/v1/license").await["status"], "grace");
    // Past the grace: closed for everything.
    clock.set(grace_end + 60);
    for path in [
        "/v1/features/workflows",
        "/v1/features/workflows?running=true",
    ] {
        let closed = local(&agent, path).await;
        assert_eq!(
            (closed["allowed"].as_bool(), closed["reason"].as_str()),
            (Some(false), Some("LEASE_EXPIRED")),
            "{path}: {closed}"
        );
    }
    agent.shutdown().await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn revoking_the_license_locks_a_running_agent_on_its_next_heartbeat() {
    let api = Api::from_env();
    let (license, key) = api.issue("starter", json!({})).await;
    let dir = temp_dir("revoke");
    let clock = ManualClock::starting_now();
    let agent = start(&settings(&key, &base_url(), &dir), &clock).await;
    wait_status(&agent, "active").await;
    assert_eq!(
        local(&agent, "/v1/features/workflows").await["allowed"],
        true
    );
    // Act
    let (status, body) = api
        .admin_post(
            "/api/revoke",
            json!({"licenseId": license["id"], "reason": "chargeback"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = agent.client.heartbeat().await.expect("next heartbeat");
    // Assert: locked at once, lease days from expiry notwithstanding; and across a restart.
    assert_eq!(report.code, "REVOKED");
    let w = local(&agent, "/v1/features/workflows").await;
    assert_eq!(
        (w["allowed"].as_bool(), w["reason"].as_str()),
        (Some(false), Some("REVOKED")),
        "{w}"
    );
    assert_eq!(local(&agent, "/v1/license").await["status"], "locked");
    agent.shutdown().await;
    let restarted = start(&settings(&key, &closed_port_url(), &dir), &clock).await;
    assert_eq!(
        local(&restarted, "/v1/features/workflows").await["reason"],
        "REVOKED"
    );
    restarted.shutdown().await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn a_plan_change_reaches_a_running_agent_on_its_next_heartbeat_and_a_key_rotation_locks_it() {
    // Arrange: a starter installation, which has no `integrations`.
    let api = Api::from_env();
    let (license, key) = api.issue("starter", json!({})).await;
    let id = license["id"].as_str().expect("id").to_owned();
    let dir = temp_dir("change");
    let clock = ManualClock::starting_now();
    let agent = start(&settings(&key, &base_url(), &dir), &clock).await;
    wait_status(&agent, "active").await;
    assert_eq!(
        local(&agent, "/v1/features/integrations").await["reason"],
        "NOT_ENTITLED"
    );
    // Act: an upgrade, then the next heartbeat.
    let (status, body) = api
        .admin_patch(
            &format!("/api/admin/licenses/{id}"),
            json!({"plan": "professional", "reason": "upgrade order 2051"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changes"][0]["field"], "plan", "{body}");
    let report = agent.client.heartbeat().await.expect("next heartbeat");
    // Assert: the new lease carries the new plan, with the same key, without a restart.
    assert_eq!(report.code, "VALID");
    let i = local(&agent, "/v1/features/integrations").await;
    assert_eq!(
        (i["allowed"].as_bool(), i["reason"].as_str()),
        (Some(true), Some("ALLOWED")),
        "{i}"
    );
    assert_eq!(local(&agent, "/v1/license").await["plan"], "professional");
    // Act: the key is rotated (it leaked): the running agent's key is withdrawn.
    let (status, rotated) = api
        .admin_patch(
            &format!("/api/admin/licenses/{id}"),
            json!({"revokePreviousKey": true, "reason": "key leaked"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["previousKeysRevoked"], true);
    let report = agent.client.heartbeat().await.expect("next heartbeat");
    assert_eq!(report.code, "REVOKED");
    assert_eq!(local(&agent, "/v1/license").await["status"], "locked");
    agent.shutdown().await;
    // The new key, installed on a fresh agent, works.
    let new_key = rotated["licenseKey"].as_str().expect("key");
    let fresh = start(
        &settings(new_key, &base_url(), &temp_dir("rotated")),
        &clock,
    )
    .await;
    assert_eq!(wait_status(&fresh, "active").await["status"], "active");
    fresh.shutdown().await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn a_clock_rolled_back_two_days_is_refused_locally_and_reported_as_clock_tampered() {
    let api = Api::from_env();
    let (license, key) = api.issue("professional", json!({})).await;
    let dir = temp_dir("rollback");
    let clock = ManualClock::starting_now();
    let agent = start(&settings(&key, &base_url(), &dir), &clock).await;
    wait_status(&agent, "active").await;
    // Act
    clock.advance(-2 * DAY);
    // Assert: refused without the network, then reported on the next heartbeat.
    let w = local(&agent, "/v1/features/workflows").await;
    assert_eq!(
        (w["allowed"].as_bool(), w["reason"].as_str()),
        (Some(false), Some("CLOCK_TAMPERED")),
        "{w}"
    );
    assert_eq!(local(&agent, "/v1/license").await["clockTampered"], true);
    let report = agent
        .client
        .heartbeat()
        .await
        .expect("the server takes the signal");
    assert_eq!(report.signals, ["CLOCK_TAMPERED"]);
    assert!(report.ok, "{report:?}");
    // The server keeps the signal in the license's audit trail.
    let customer = license["customerId"].as_str().expect("customer");
    let (status, look) = api.admin_get(&format!("/api/license/{customer}")).await;
    assert_eq!(status, StatusCode::OK, "{look}");
    let signalled = look["licenses"][0]["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .any(|a| {
            a["action"] == "installation.signal"
                && a["reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("CLOCK_TAMPERED"))
        });
    assert!(signalled, "{look}");
    // Clock put right: allowed again.
    clock.advance(2 * DAY);
    assert_eq!(
        local(&agent, "/v1/features/workflows").await["allowed"],
        true
    );
    agent.shutdown().await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn buffered_usage_survives_a_kill_and_restart_and_is_counted_exactly_once() {
    // Arrange: an agent that cannot reach the server takes usage and is killed.
    let api = Api::from_env();
    let (_, key) = api.issue("professional", json!({})).await;
    let dir = temp_dir("usage");
    let clock = ManualClock::starting_now();
    let offline = start(&settings(&key, &closed_port_url(), &dir), &clock).await;
    let http = reqwest::Client::new();
    let mut expected = 0;
    for request in 0..3u64 {
        let events: Vec<Value> = (0..50u64)
            .map(|i| json!({"feature": "workflows", "quantity": 1 + (i + request) % 4}))
            .collect();
        expected += events
            .iter()
            .filter_map(|e| e["quantity"].as_u64())
            .sum::<u64>();
        let resp = http
            .post(format!("http://{}/v1/usage", offline.addr))
            .bearer_auth(offline.api_token.expose())
            // `.json` also sets `content-type: application/json`, which the agent requires.
            .json(&json!({"events": events}))
            .send()
            .await
            .expect("agent answers");
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
    assert_eq!(offline.buffer.pending(), 150);
    drop(offline); // killed: no graceful shutdown
    // What was on disk at the kill, to replay a crash between delivery and removal below.
    let usage_dir = dir.join("usage");
    let on_disk: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&usage_dir)
        .expect("buffer dir")
        .filter_map(|e| e.ok())
        .map(|e| (e.path(), std::fs::read(e.path()).expect("read")))
        .collect();

    // Act: restart from the same state directory, server reachable.
    let agent = start(&settings(&key, &base_url(), &dir), &clock).await;
    // Assert: every event counted (asynchronously, through SQS), the buffer empty.
    assert_eq!(
        api.wait_used(&key, "workflows", expected, 60).await,
        expected
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while agent.buffer.pending() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(agent.buffer.pending(), 0);
    drop(agent);

    // A crash after delivery but before removal: the same events are sent again on restart.
    for (path, bytes) in on_disk {
        std::fs::write(path, bytes).expect("restore");
    }
    let again = start(&settings(&key, &base_url(), &dir), &clock).await;
    let report = again.buffer.flush(&again.client).await.expect("flush");
    assert_eq!(report.remaining, 0);
    assert_eq!(again.buffer.pending(), 0);
    api.wait_queue_drained(240).await;
    assert_eq!(
        api.used(&key, "workflows").await,
        expected,
        "resent events counted once"
    );
    again.shutdown().await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn the_startup_check_passes_a_valid_key_and_fails_a_revoked_or_foreign_one() {
    use nectar_agent::check::{CheckOutcome, run_check};
    let api = Api::from_env();
    let (license, key) = api.issue("starter", json!({})).await;
    let server =
        || Arc::new(HttpLicenseServer::new(&base_url()).expect("client")) as Arc<dyn LicenseServer>;
    let check = |key: &str, dir: PathBuf| {
        let s = settings(key, &base_url(), &dir);
        async move { run_check(&s, Arc::new(nectar_client::SystemClock), server()).await }
    };
    let ok = check(&key, temp_dir("check-ok")).await;
    assert!(matches!(ok, CheckOutcome::Pass(_)), "{ok:?}");
    // A key signed by someone else (well-formed, right shape) is refused offline.
    let forger = nectar_client::testing::TestSigner::random("forged");
    let forged = forger.sign(&nectar_client::testing::license_claims(
        0,
        i64::from(i32::MAX),
        &[],
    ));
    let bad = check(&forged, temp_dir("check-forged")).await;
    assert!(
        matches!(&bad, CheckOutcome::Fail(m) if m.contains("TOKEN_UNTRUSTED_KEY")),
        "{bad:?}"
    );
    // Revoked: the server says so.
    let (status, _) = api
        .admin_post(
            "/api/revoke",
            json!({"licenseId": license["id"], "reason": "test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let revoked = check(&key, temp_dir("check-revoked")).await;
    assert!(
        matches!(&revoked, CheckOutcome::Fail(m) if m.contains("REVOKED")),
        "{revoked:?}"
    );
}
