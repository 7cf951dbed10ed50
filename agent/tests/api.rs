//! The agent's local API end to end in-process, against an in-memory license server.

use std::sync::Arc;
use std::time::Duration;

use nectar_agent::Settings;
use nectar_client::testing::FakeServer;
use nectar_client::{LicenseServer, ManualClock};
use serde_json::{Value, json};

const NOW: i64 = 1_780_272_000;

async fn get(agent: &nectar_agent::RunningAgent, path: &str) -> Value {
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

#[tokio::test]
async fn the_local_api_answers_license_features_and_takes_usage() {
    // Arrange
    let clock = ManualClock::at(NOW);
    let server = Arc::new(FakeServer::new(Arc::new(clock.clone())));
    let dir = std::env::temp_dir().join(format!(
        "nectar-agent-api-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut settings = Settings::new(server.license_key(), "http://unused", dir);
    settings.roots = server.trust.roots();
    settings.usage_flush_secs = 1;
    let agent = nectar_agent::start(
        &settings,
        Arc::new(clock.clone()),
        server.clone() as Arc<dyn LicenseServer>,
    )
    .await
    .expect("starts");
    agent.client.heartbeat().await.expect("heartbeat");

    // Act + Assert
    assert_eq!(get(&agent, "/healthz").await["status"], "ok");
    let license = get(&agent, "/v1/license").await;
    assert_eq!(license["status"], "active", "{license}");
    assert_eq!(license["plan"], "professional");
    assert_eq!(license["installationId"], agent.client.installation_id());
    assert_eq!(
        get(&agent, "/v1/features/workflows").await,
        json!({"feature": "workflows", "allowed": true, "reason": "ALLOWED"})
    );
    assert_eq!(
        get(&agent, "/v1/features/sso").await["reason"],
        "NOT_ENTITLED"
    );

    let http = reqwest::Client::new();
    let resp = http
        .post(format!("http://{}/v1/usage", agent.addr))
        .bearer_auth(agent.api_token.expose())
        .json(&json!({"events": [{"feature": "workflows", "quantity": 3}, {"feature": "api_access", "quantity": 1}]}))
        .send()
        .await
        .expect("usage");
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["accepted"], 2);
    let bad = http
        .post(format!("http://{}/v1/usage", agent.addr))
        .bearer_auth(agent.api_token.expose())
        .json(&json!({"events": [{"feature": "Workflows!", "quantity": 0}]}))
        .send()
        .await
        .expect("usage");
    assert_eq!(bad.status(), 400);

    // Forwarded promptly, then gone from the buffer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.counted_usage().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.counted_usage().values().sum::<u64>(), 4);
    assert_eq!(agent.buffer.pending(), 0);
    agent.shutdown().await;
}
