//! Who may use the local API, and how much it takes: the real agent on a real loopback listener,
//! against an in-memory license server that cannot be reached (so accepted usage stays in the
//! buffer, where the tests can count it).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nectar_agent::api_token::{FILE_NAME, TokenError};
use nectar_agent::{AgentError, RunningAgent, Settings};
use nectar_client::testing::FakeServer;
use nectar_client::{LicenseServer, ManualClock};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap, WWW_AUTHENTICATE};
use serde_json::{Value, json};

const NOW: i64 = 1_780_272_000;
const MAX_BODY: usize = 64 * 1024;

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "nectar-agent-local-api-{}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// An agent over `dir`, `configure`d, whose license server is unreachable.
async fn start_in(
    dir: &Path,
    configure: impl FnOnce(&mut Settings),
) -> Result<RunningAgent, AgentError> {
    let clock = ManualClock::at(NOW);
    let server = Arc::new(FakeServer::new(Arc::new(clock.clone())));
    server.set_reachable(false);
    let mut settings = Settings::new(server.license_key(), "http://unused", dir.to_path_buf());
    configure(&mut settings);
    nectar_agent::start(&settings, Arc::new(clock), server as Arc<dyn LicenseServer>).await
}

async fn start(configure: impl FnOnce(&mut Settings)) -> (RunningAgent, PathBuf) {
    let dir = temp_dir();
    let agent = start_in(&dir, configure).await.expect("agent starts");
    (agent, dir)
}

/// A request to the agent; `token: None` sends no `Authorization`.
fn request(
    agent: &RunningAgent,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let r = reqwest::Client::new().request(method, format!("http://{}{path}", agent.addr));
    match token {
        Some(t) => r.header(AUTHORIZATION, format!("Bearer {t}")),
        None => r,
    }
}

fn get(agent: &RunningAgent, path: &str) -> reqwest::RequestBuilder {
    request(
        agent,
        reqwest::Method::GET,
        path,
        Some(agent.api_token.expose()),
    )
}

/// `POST /v1/usage` with the token and a JSON body.
fn post_usage(agent: &RunningAgent, body: &Value) -> reqwest::RequestBuilder {
    request(
        agent,
        reqwest::Method::POST,
        "/v1/usage",
        Some(agent.api_token.expose()),
    )
    .json(body)
}

async fn send(r: reqwest::RequestBuilder) -> (StatusCode, Value, HeaderMap) {
    let resp = r.send().await.expect("agent answers");
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

fn events(n: usize, feature: &str, quantity: u64) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|_| json!({"feature": feature, "quantity": quantity}))
        .collect();
    json!({ "events": events })
}

/// Events in the batch files on disk (what a restart would find).
fn events_on_disk(dir: &Path) -> usize {
    #[derive(serde::Deserialize)]
    struct Batch {
        events: Vec<Value>,
    }
    std::fs::read_dir(dir.join("usage"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter_map(|p| nectar_client::persist::load::<Batch>(&p).ok().flatten())
                .map(|b| b.events.len())
                .sum()
        })
        .unwrap_or(0)
}

fn files_in_buffer(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("usage")).map_or(0, |entries| entries.count())
}

#[tokio::test]
async fn a_request_without_the_token_is_refused_with_401_and_a_bearer_challenge() {
    let (agent, dir) = start(|_| {}).await;
    for (method, path) in [
        (reqwest::Method::GET, "/v1/license"),
        (reqwest::Method::GET, "/v1/features/workflows"),
        (reqwest::Method::POST, "/v1/usage"),
    ] {
        let (status, body, headers) =
            send(request(&agent, method.clone(), path, None).json(&events(1, "workflows", 1)))
                .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
        assert_eq!(headers[WWW_AUTHENTICATE], "Bearer");
    }
    assert_eq!(agent.buffer.pending(), 0);
    assert_eq!(events_on_disk(&dir), 0);
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_401() {
    let (agent, _dir) = start(|_| {}).await;
    let right = agent.api_token.expose().to_owned();
    // Same length, one character different.
    let other_first = if right.starts_with('A') { 'B' } else { 'A' };
    for presented in [
        format!("Bearer {}x", right),
        format!("Bearer {}", &right[1..]),
        "Bearer ".to_owned(),
        format!("Bearer {other_first}{}", &right[1..]),
        format!("Basic {right}"),
        right.clone(),
    ] {
        let (status, body, headers) = send(
            reqwest::Client::new()
                .get(format!("http://{}/v1/license", agent.addr))
                .header(AUTHORIZATION, &presented),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{presented}: {body}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
        assert!(
            headers[WWW_AUTHENTICATE]
                .to_str()
                .is_ok_and(|c| c.starts_with("Bearer")),
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn the_right_token_opens_every_route_and_healthz_needs_none() {
    let (agent, dir) = start(|_| {}).await;
    let (status, body, _) = send(get(&agent, "/v1/license")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pendingUsageEvents"], 0);
    let (status, body, _) = send(get(&agent, "/v1/features/workflows")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["feature"], "workflows");
    // The scheme is case-insensitive (RFC 9110).
    let (status, body, _) = send(
        reqwest::Client::new()
            .post(format!("http://{}/v1/usage", agent.addr))
            .header(
                AUTHORIZATION,
                format!("bearer {}", agent.api_token.expose()),
            )
            .json(&events(2, "workflows", 3)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 2);
    assert_eq!(events_on_disk(&dir), 2);

    let (status, body, _) = send(request(&agent, reqwest::Method::GET, "/healthz", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn a_foreign_host_is_refused_even_with_the_token() {
    // A DNS-rebinding page reaches 127.0.0.1 under its own name: the Host header says so.
    let (agent, _dir) = start(|_| {}).await;
    for host in [
        "evil.example",
        "evil.example:7878",
        "localhost.evil.example",
        "127.0.0.1.nip.io:7878",
        "localhost:7878.evil.example",
        "localhost:",
        "[::1",
        "[::2]:7878",
        "nectar-agent:7878",
    ] {
        for path in ["/v1/license", "/healthz", "/nowhere"] {
            let (status, body, _) = send(get(&agent, path).header(HOST, host)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{host} {path}: {body}");
            assert_eq!(body["error"]["code"], "HOST_NOT_ALLOWED", "{host} {path}");
        }
    }
    let (status, body, _) =
        send(post_usage(&agent, &events(1, "workflows", 1)).header(HOST, "evil.example:7878"))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(agent.buffer.pending(), 0);
    for host in [
        "localhost",
        "localhost:7878",
        "LocalHost:7878",
        "127.0.0.1",
        "127.0.0.1:7878",
        "[::1]",
        "[::1]:7878",
    ] {
        let (status, body, _) = send(get(&agent, "/v1/license").header(HOST, host)).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
}

#[tokio::test]
async fn a_configured_hostname_is_accepted() {
    let (agent, _dir) = start(|s| {
        s.allowed_hosts = vec!["nectar-agent".into(), "agent.internal".into()];
    })
    .await;
    for host in [
        "nectar-agent",
        "nectar-agent:7878",
        "Nectar-Agent:7878",
        "agent.internal:80",
        "localhost:7878",
    ] {
        let (status, body, _) = send(get(&agent, "/v1/license").header(HOST, host)).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
    for host in ["nectar-agent.evil.example", "other-agent:7878"] {
        let (status, body, _) = send(get(&agent, "/v1/license").header(HOST, host)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{host}: {body}");
    }
}

#[tokio::test]
async fn a_request_without_a_host_header_is_refused() {
    // HTTP/1.0 allows leaving Host out; reqwest always sends one, so this is written by hand.
    let (agent, _dir) = start(|_| {}).await;
    let addr = agent.addr;
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
            .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    })
    .await
    .expect("task");
    let status_line = answer.lines().next().unwrap_or_default();
    assert!(status_line.contains(" 403 "), "{answer}");
    assert!(answer.contains("HOST_NOT_ALLOWED"), "{answer}");
}

#[tokio::test]
async fn a_text_plain_post_is_refused_with_415_and_nothing_is_buffered() {
    // The cross-site "simple request": no preflight, a JSON text in a text/plain body.
    let (agent, dir) = start(|_| {}).await;
    let body = events(1, "workflows", 1).to_string();
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        None,
    ] {
        let mut r = request(
            &agent,
            reqwest::Method::POST,
            "/v1/usage",
            Some(agent.api_token.expose()),
        )
        .body(body.clone());
        if let Some(ct) = content_type {
            r = r.header(CONTENT_TYPE, ct);
        }
        let (status, answer, _) = send(r).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {answer}"
        );
        assert_eq!(answer["error"]["code"], "UNSUPPORTED_MEDIA_TYPE");
    }
    assert_eq!(agent.buffer.pending(), 0);
    assert_eq!(files_in_buffer(&dir), 0);
    // Parameters and case do not matter.
    let (status, answer, _) = send(
        request(
            &agent,
            reqwest::Method::POST,
            "/v1/usage",
            Some(agent.api_token.expose()),
        )
        .header(CONTENT_TYPE, "Application/JSON; charset=utf-8")
        .body(body),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused_with_413() {
    let (agent, dir) = start(|_| {}).await;
    // Valid JSON padded with whitespace to an exact size.
    let padded = |size: usize| {
        let mut text = events(1, "workflows", 1).to_string();
        text.push_str(&" ".repeat(size - text.len()));
        text
    };
    let send_text = |text: String| {
        send(
            request(
                &agent,
                reqwest::Method::POST,
                "/v1/usage",
                Some(agent.api_token.expose()),
            )
            .header(CONTENT_TYPE, "application/json")
            .body(text),
        )
    };
    let (status, body, _) = send_text(padded(MAX_BODY + 1)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "BODY_TOO_LARGE");
    assert_eq!(files_in_buffer(&dir), 0);
    let (status, body, _) = send_text(padded(MAX_BODY)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "exactly 64 KiB fits: {body}");
}

#[tokio::test]
async fn more_than_100_events_in_one_post_are_refused_with_400() {
    let (agent, dir) = start(|_| {}).await;
    let (status, body, _) = send(post_usage(&agent, &events(101, "workflows", 1))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_EVENT_COUNT");
    assert_eq!(events_on_disk(&dir), 0);
    let (status, body, _) = send(post_usage(&agent, &events(100, "workflows", 1))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(events_on_disk(&dir), 100);
}

#[tokio::test]
async fn a_quantity_over_the_ceiling_is_refused_with_400_and_nothing_is_buffered() {
    let (agent, dir) = start(|_| {}).await;
    // Over the configured ceiling (default 10,000), for a feature the server allows more of.
    let over_configured = json!({"events": [
        {"feature": "api_access", "quantity": 10},
        {"feature": "api_access", "quantity": 10_001},
    ]});
    // Over the feature's own ceiling (workflows: 1,000), though under the configured one.
    let over_feature = json!({"events": [{"feature": "workflows", "quantity": 1_001}]});
    for (body, index, ceiling) in [
        (over_configured, "events[1]", "10000"),
        (over_feature, "events[0]", "1000"),
    ] {
        let (status, answer, _) = send(post_usage(&agent, &body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["code"], "INVALID_EVENTS");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(index) && message.contains(ceiling),
            "{message}"
        );
    }
    assert_eq!(agent.buffer.pending(), 0);
    assert_eq!(files_in_buffer(&dir), 0);
    for ok in [
        json!({"events": [{"feature": "workflows", "quantity": 1_000}]}),
        json!({"events": [{"feature": "api_access", "quantity": 10_000}]}),
    ] {
        let (status, answer, _) = send(post_usage(&agent, &ok)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }

    // A lower configured ceiling wins over the feature's.
    let (strict, _dir) = start(|s| s.usage_max_quantity = 50).await;
    let (status, answer, _) = send(post_usage(&strict, &events(1, "workflows", 51))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(strict.buffer.pending(), 0);
}

#[tokio::test]
async fn a_full_buffer_answers_507_and_writes_nothing() {
    let (agent, dir) = start(|s| s.usage_buffer_max_events = 5).await;
    let (status, body, _) = send(post_usage(&agent, &events(3, "workflows", 1))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body, _) = send(post_usage(&agent, &events(3, "workflows", 1))).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"]["code"], "BUFFER_FULL");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("full") && message.contains('5') && message.contains("nothing was stored"),
        "{message}"
    );
    assert_eq!(agent.buffer.pending(), 3);
    assert_eq!(files_in_buffer(&dir), 1);
    assert_eq!(events_on_disk(&dir), 3);
    // What still fits is taken.
    let (status, body, _) = send(post_usage(&agent, &events(2, "workflows", 1))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(events_on_disk(&dir), 5);
    // And a restart does not forget the buffer is full.
    agent.shutdown().await;
    let restarted = start_in(&dir, |s| s.usage_buffer_max_events = 5)
        .await
        .expect("restarts");
    let (status, body, _) = send(post_usage(&restarted, &events(1, "workflows", 1))).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_near_the_cap_never_exceed_it() {
    let (agent, dir) = start(|s| s.usage_buffer_max_events = 50).await;
    let agent = Arc::new(agent);
    let posts: Vec<_> = (0..24)
        .map(|_| {
            let agent = agent.clone();
            tokio::spawn(
                async move { send(post_usage(&agent, &events(5, "workflows", 1))).await.0 },
            )
        })
        .collect();
    let mut statuses = Vec::new();
    for p in posts {
        statuses.push(p.await.expect("task"));
    }
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    let full = statuses
        .iter()
        .filter(|s| **s == StatusCode::INSUFFICIENT_STORAGE)
        .count();
    assert_eq!((accepted, full), (10, 14), "{statuses:?}");
    assert_eq!(agent.buffer.pending(), 50);
    assert_eq!(events_on_disk(&dir), 50);
}

#[tokio::test]
async fn the_token_file_is_created_with_mode_0600_and_reused_across_restarts() {
    let dir = temp_dir();
    let first = start_in(&dir, |_| {}).await.expect("starts");
    let path = dir.join(FILE_NAME);
    let mode = std::fs::metadata(&path)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        first.api_token.expose()
    );
    let token = first.api_token.expose().to_owned();
    assert_eq!(format!("{:?}", first.api_token), "ApiToken(<redacted>)");
    first.shutdown().await;

    let second = start_in(&dir, |_| {}).await.expect("restarts");
    assert_eq!(second.api_token.expose(), token);
    let (status, body, _) = send(
        reqwest::Client::new()
            .get(format!("http://{}/v1/license", second.addr))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the product's token still works: {body}"
    );
}

#[tokio::test]
async fn a_world_readable_token_file_stops_the_agent_from_starting() {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(FILE_NAME);
    std::fs::write(&path, "a".repeat(43)).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let refused = start_in(&dir, |_| {})
        .await
        .err()
        .expect("an exposed token is refused");
    assert!(
        matches!(refused, AgentError::Token(TokenError::Exposed { .. })),
        "{refused}"
    );
    assert!(refused.to_string().contains("chmod 600"), "{refused}");

    std::fs::write(&path, "").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let refused = start_in(&dir, |_| {}).await.err().expect("empty");
    assert!(
        matches!(refused, AgentError::Token(TokenError::Empty { .. })),
        "{refused}"
    );
}

#[test]
fn the_token_command_prints_the_token_without_needing_the_license_key() {
    let dir = temp_dir();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nectar-agent"))
            .arg("--state-dir")
            .arg(&dir)
            .arg("token")
            .env_remove("NECTAR_LICENSE_KEY")
            .env_remove("NECTAR_STATE_DIR")
            .output()
            .expect("runs")
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    let printed = String::from_utf8(first.stdout).expect("utf-8");
    let token = printed.strip_suffix('\n').expect("one line");
    assert!(!token.contains('\n'));
    assert_eq!(token.len(), 43);
    assert_eq!(
        std::fs::read_to_string(dir.join(FILE_NAME)).expect("file"),
        token
    );
    let again = run();
    assert_eq!(String::from_utf8(again.stdout).expect("utf-8"), printed);
}
