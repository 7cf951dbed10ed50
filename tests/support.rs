//! End-to-end test support: an HTTP client for the stack `make test` serves through
//! `cargo lambda watch` (its URL and admin token arrive in `NECTAR_E2E_*` variables).

use reqwest::StatusCode;
use serde_json::{Value, json};

/// The running stack.
pub struct Api {
    base: String,
    admin_token: String,
    http: reqwest::Client,
    /// The signing key (alias) the stack's functions use.
    pub signing_key: String,
    /// The `iss` the stack's functions use.
    pub issuer: String,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the end-to-end tests with `make test`, which starts the stack"
        )
    })
}

impl Api {
    /// Connects to a stack of the caller's own (e.g. the fault tests').
    pub fn new(base: &str, admin_token: &str, signing_key: &str, issuer: &str) -> Self {
        Self {
            base: base.to_owned(),
            admin_token: admin_token.to_owned(),
            signing_key: signing_key.to_owned(),
            issuer: issuer.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Connects to the stack named by the environment.
    pub fn from_env() -> Self {
        Self {
            base: env("NECTAR_E2E_URL"),
            admin_token: env("NECTAR_E2E_ADMIN_TOKEN"),
            signing_key: env("NECTAR_E2E_SIGNING_KEY"),
            issuer: env("NECTAR_E2E_ISSUER"),
            http: reqwest::Client::new(),
        }
    }

    /// Sends a request; returns the status, the body as JSON (`Null` if it is not JSON) and the
    /// raw headers.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let auth = token.map(|t| ("authorization", format!("Bearer {t}")));
        self.send_with_header(method, path, body, auth).await
    }

    /// Verifies an ES256 token offline against the stack's published JWKS (standard library, alg
    /// pinned) and returns its claims.
    pub async fn verify_with_jwks(&self, token: &str) -> Value {
        let (_, jwks, _) = self
            .send(reqwest::Method::GET, "/.well-known/jwks.json", None, None)
            .await;
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).expect("a JWK set");
        let kid = jsonwebtoken::decode_header(token)
            .expect("header")
            .kid
            .expect("kid");
        let jwk = set.find(&kid).expect("the token's kid is published");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_issuer(&[self.issuer.as_str()]);
        jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("jwk"),
            &validation,
        )
        .expect("verifies offline")
        .claims
    }

    /// Invokes a non-HTTP function (as EventBridge or SQS would) through `cargo lambda watch`'s
    /// Invoke API; returns the status and the function's JSON result.
    pub async fn invoke(&self, function: &str, payload: &Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.base
            ))
            .json(payload)
            .send()
            .await
            .expect("the stack answers");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The SNS topic the lifecycle job publishes to.
    pub fn events_topic(&self) -> String {
        env("NECTAR_E2E_EVENTS_TOPIC_ARN")
    }

    /// Sends a request with one extra header (e.g. `Authorization: License <key>`).
    pub async fn send_with_header(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        header: Option<(&str, String)>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        let resp = req.send().await.expect("the stack answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers,
        )
    }

    /// GET as the admin, the body as text (for downloads that are not JSON).
    pub async fn admin_get_text(
        &self,
        path: &str,
    ) -> (StatusCode, String, reqwest::header::HeaderMap) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.admin_token))
            .send()
            .await
            .expect("the stack answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        (status, resp.text().await.expect("body"), headers)
    }

    /// POST JSON without credentials.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(
                reqwest::Method::POST,
                path,
                Some(body.to_string().into_bytes()),
                None,
            )
            .await;
        (s, v)
    }

    /// POST JSON as the admin.
    pub async fn admin_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(
                reqwest::Method::POST,
                path,
                Some(body.to_string().into_bytes()),
                Some(&self.admin_token),
            )
            .await;
        (s, v)
    }

    /// PATCH JSON as the admin.
    pub async fn admin_patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(
                reqwest::Method::PATCH,
                path,
                Some(body.to_string().into_bytes()),
                Some(&self.admin_token),
            )
            .await;
        (s, v)
    }

    /// GET as the admin.
    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(reqwest::Method::GET, path, None, Some(&self.admin_token))
            .await;
        (s, v)
    }

    /// A new customer's id.
    pub async fn new_customer(&self) -> String {
        let (status, body) = self
            .admin_post(
                "/api/admin/customers",
                json!({"name": "Acme Corp", "email": "ops@acme.example"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["customer"]["id"].as_str().expect("id").to_owned()
    }

    /// Issues a license for a new customer; `extra` is merged into the request. Returns the
    /// license view and the key.
    pub async fn issue(&self, plan: &str, extra: Value) -> (Value, String) {
        let customer = self.new_customer().await;
        let mut body = json!({"customerId": customer, "plan": plan});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, resp) = self.admin_post("/api/admin/licenses", body).await;
        assert_eq!(status, StatusCode::CREATED, "{resp}");
        (
            resp["license"].clone(),
            resp["licenseKey"].as_str().expect("key").to_owned(),
        )
    }

    /// `POST /api/validate` for `key` from `installation`, with optional extra fields.
    pub async fn validate(&self, key: &str, installation: &str, extra: Value) -> Value {
        let mut body = json!({"licenseKey": key, "installationId": installation});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, resp) = self.post("/api/validate", body).await;
        assert_eq!(status, StatusCode::OK, "{resp}");
        resp
    }

    /// `POST /api/heartbeat` for `key` from `installation`.
    pub async fn heartbeat(&self, key: &str, installation: &str) -> Value {
        let (status, resp) = self
            .post(
                "/api/heartbeat",
                json!({"licenseKey": key, "installationId": installation, "version": "2.3.1"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{resp}");
        resp
    }
}

impl Api {
    /// `POST /api/usage` with `events`.
    pub async fn usage(&self, key: &str, events: Value) -> (StatusCode, Value) {
        self.post("/api/usage", json!({"licenseKey": key, "events": events}))
            .await
    }

    /// `POST /api/usage/stats`: this month's usage of `feature`.
    pub async fn used(&self, key: &str, feature: &str) -> u64 {
        let (status, body) = self
            .post("/api/usage/stats", json!({"licenseKey": key}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["features"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["feature"] == feature))
            .and_then(|f| f["used"].as_u64())
            .unwrap_or_else(|| panic!("feature {feature} in {body}"))
    }

    /// Polls `used` until it equals `expected` (counting is asynchronous), for at most `secs`.
    pub async fn wait_used(&self, key: &str, feature: &str, expected: u64, secs: u64) -> u64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let now = self.used(key, feature).await;
            if now == expected || std::time::Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// Polls the usage queue until nothing is waiting or in flight (every message counted or
    /// dead-lettered, so no redelivery is pending), for at most `secs`; panics if it never drains.
    /// Every test running at once shares the queue, so this waits for their messages too: under
    /// the full suite that is the backlog of the 1,000-event tests (the emulator counts ~20 events
    /// a second), hence generous timeouts.
    pub async fn wait_queue_drained(&self, secs: u64) {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let sqs = aws_sdk_sqs::Client::new(&shared::testing::emulator().await);
        let (queue, _) = self.usage_queues();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(&queue)
                .attribute_names(A::ApproximateNumberOfMessages)
                .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .expect("queue attributes")
                .attributes
                .unwrap_or_default();
            let count = |name: &A| {
                attrs
                    .get(name)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let left = count(&A::ApproximateNumberOfMessages)
                + count(&A::ApproximateNumberOfMessagesNotVisible);
            if left == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the usage queue still holds {left} messages after {secs} s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// The usage queue and its dead-letter queue, as the stack was bootstrapped.
    pub fn usage_queues(&self) -> (String, String) {
        (
            env("NECTAR_E2E_USAGE_QUEUE_URL"),
            env("NECTAR_E2E_USAGE_DLQ_URL"),
        )
    }
}

/// Runs `nectar-admin` (built by `make test` next to the test binaries) with `args` against the
/// stack's table; its JSON output.
pub fn cli(args: &[&str]) -> Value {
    let exe = std::env::current_exe().expect("test binary");
    // target/debug/deps/<test>-<hash> → target/debug/nectar-admin (make test builds every bin).
    let admin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("nectar-admin");
    let table = std::env::var("NECTAR_E2E_TABLE").expect("NECTAR_E2E_TABLE (make test)");
    let out = std::process::Command::new(&admin)
        .args(args)
        .args(["--table", &table])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", admin.display()));
    assert!(
        out.status.success(),
        "nectar-admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}
