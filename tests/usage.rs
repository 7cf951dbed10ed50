//! End-to-end usage metering: HTTP → SQS (emulated) → the local event source relay →
//! `usage-processor` under `cargo lambda watch` → DynamoDB counters → statistics and validate.

use e2e::Api;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn a_thousand_events_with_ten_percent_resent_count_exactly_the_distinct_sum() {
    // Arrange: 900 distinct events; 100 of them sent again in later requests.
    let api = Api::from_env();
    let (_, key) = api.issue("enterprise", json!({})).await;
    let distinct: Vec<Value> = (0..900)
        .map(|i| json!({"eventId": format!("run-{i}"), "feature": "workflows", "quantity": i % 4 + 1}))
        .collect();
    let expected: u64 = distinct.iter().filter_map(|e| e["quantity"].as_u64()).sum();
    let mut requests: Vec<Vec<Value>> = distinct.chunks(90).map(<[Value]>::to_vec).collect();
    for (r, request) in requests.iter_mut().enumerate().skip(1) {
        // Ten events of the previous request, resent (as after a lost response).
        request.extend(distinct[(r - 1) * 90..(r - 1) * 90 + 10].iter().cloned());
    }
    requests.push(distinct[890..900].to_vec());
    let sent: usize = requests.iter().map(Vec::len).sum();
    assert_eq!(sent, 1000);
    // Act
    for events in requests {
        let (status, body) = api.usage(&key, Value::Array(events)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["failed"], 0);
    }
    // Assert: exactly the distinct sum, and it stays there once the queue has drained.
    assert_eq!(
        api.wait_used(&key, "workflows", expected, 120).await,
        expected
    );
    api.wait_queue_drained(240).await;
    assert_eq!(api.used(&key, "workflows").await, expected);
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn a_poison_message_goes_to_the_dlq_while_its_batch_mates_are_counted() {
    let api = Api::from_env();
    let (license, key) = api.issue("enterprise", json!({})).await;
    let id = license["id"].as_str().expect("id");
    let (queue, dlq) = api.usage_queues();
    let sqs = aws_sdk_sqs::Client::new(&shared::testing::emulator().await);
    let poison_marker = format!("poison-{}", uuid::Uuid::new_v4());
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    let mut bodies: Vec<String> = (0..3)
        .map(|i| json!({"licenseId": id, "eventId": format!("mate-{i}"), "feature": "workflows", "quantity": 5, "occurredAt": now}).to_string())
        .collect();
    bodies.insert(
        1,
        format!("{{\"not\": \"an event\", \"marker\": \"{poison_marker}\"}}"),
    );
    let entries = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(b)
                .build()
                .expect("entry")
        })
        .collect();
    sqs.send_message_batch()
        .queue_url(&queue)
        .set_entries(Some(entries))
        .send()
        .await
        .expect("send");

    assert_eq!(
        api.wait_used(&key, "workflows", 15, 60).await,
        15,
        "batch-mates counted"
    );
    // The poison message is retried maxReceiveCount times, then redriven to the DLQ.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let found = loop {
        let got = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive dlq");
        let bodies: Vec<String> = got
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.body)
            .collect();
        if bodies.iter().any(|b| b.contains(&poison_marker)) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
    };
    assert!(found, "the poison message reached the DLQ");
    assert_eq!(
        api.used(&key, "workflows").await,
        15,
        "and nothing was counted twice meanwhile"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn usage_past_the_monthly_limit_is_counted_and_validate_then_says_usage_exceeded() {
    let api = Api::from_env();
    let (_, key) = api
        .issue("starter", json!({"limits": {"workflows_per_month": 5}}))
        .await;
    let (status, body) = api
        .usage(
            &key,
            json!([
                {"eventId": "a", "feature": "workflows", "quantity": 4},
                {"eventId": "b", "feature": "workflows", "quantity": 3},
                {"eventId": "c", "feature": "analytics", "quantity": 1}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(body["events"][2]["code"], "FEATURE_NOT_ENTITLED");
    assert_eq!(body["usage"][0]["limit"], 5);
    assert_eq!(
        api.wait_used(&key, "workflows", 7, 60).await,
        7,
        "reports past the limit are never dropped"
    );
    let v = api
        .validate(&key, "i-1", json!({"feature": "workflows"}))
        .await;
    assert_eq!(
        (v["valid"].as_bool(), v["code"].as_str()),
        (Some(false), Some("USAGE_EXCEEDED")),
        "{v}"
    );
    assert_eq!(
        api.validate(&key, "i-1", json!({"feature": "api_access"}))
            .await["code"],
        "VALID"
    );
    let (_, stats) = api
        .post("/api/usage/stats", json!({"licenseKey": key}))
        .await;
    let w = stats["features"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["feature"] == "workflows"))
        .cloned()
        .expect("workflows");
    assert_eq!(
        (w["remaining"].as_u64(), w["exhausted"].as_bool()),
        (Some(0), Some(true))
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn malformed_events_are_refused_whole_with_a_code_per_event() {
    let api = Api::from_env();
    let (_, key) = api.issue("starter", json!({})).await;
    let (status, body) = api
        .usage(&key, json!([
            {"eventId": "ok", "feature": "workflows", "quantity": 1},
            {"eventId": "neg", "feature": "workflows", "quantity": -3},
            {"eventId": "zero", "feature": "workflows", "quantity": 0},
            {"eventId": "huge", "feature": "workflows", "quantity": 1e12},
            {"eventId": "who", "feature": "teleport", "quantity": 1},
            {"eventId": "old", "feature": "workflows", "quantity": 1, "occurredAt": "2020-01-01T00:00:00Z"},
            {"eventId": "ok", "feature": "workflows", "quantity": 1},
            {"feature": "workflows", "quantity": 1}
        ]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_EVENTS");
    let codes: Vec<(u64, &str)> = body["error"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|p| {
            (
                p["index"].as_u64().unwrap_or(99),
                p["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            (1, "INVALID_QUANTITY"),
            (2, "INVALID_QUANTITY"),
            (3, "INVALID_QUANTITY"),
            (4, "UNKNOWN_FEATURE"),
            (7, "INVALID_FIELD")
        ],
        "{body}"
    );
    // Once the shape is right, clock and duplicate problems are reported too.
    let (status, body) = api
        .usage(&key, json!([
            {"eventId": "old", "feature": "workflows", "quantity": 1, "occurredAt": "2020-01-01T00:00:00Z"},
            {"eventId": "x", "feature": "workflows", "quantity": 1},
            {"eventId": "x", "feature": "workflows", "quantity": 1}
        ]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let codes: Vec<&str> = body["error"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|p| p["code"].as_str())
        .collect();
    assert_eq!(
        codes,
        ["INVALID_OCCURRED_AT", "DUPLICATE_EVENT_ID"],
        "{body}"
    );
    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"eventId": format!("e{i}"), "feature": "workflows", "quantity": 1}))
        .collect();
    let (status, body) = api.usage(&key, Value::Array(too_many)).await;
    assert_eq!(
        (status, body["error"]["events"][0]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_EVENT_COUNT"))
    );
    assert_eq!(
        api.used(&key, "workflows").await,
        0,
        "nothing from a refused request is counted"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn usage_needs_a_valid_key_and_a_license_in_force() {
    let api = Api::from_env();
    let (license, key) = api.issue("starter", json!({})).await;
    let event = json!([{"eventId": "e", "feature": "workflows", "quantity": 1}]);
    let (status, body) = api.usage("not-a-key", event.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("INVALID_KEY"))
    );
    api.admin_post(
        "/api/revoke",
        json!({"licenseId": license["id"], "reason": "test"}),
    )
    .await;
    let (status, body) = api.usage(&key, event).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("REVOKED"))
    );
    let id = license["id"].as_str().expect("id");
    let (status, stats) = api
        .admin_get(&format!("/api/admin/licenses/{id}/usage?period=2026-01"))
        .await;
    assert_eq!(
        (status, stats["period"].as_str()),
        (StatusCode::OK, Some("2026-01")),
        "{stats}"
    );
    let (status, err) = api
        .admin_get(&format!("/api/admin/licenses/{id}/usage?period=2026-13"))
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("period"))
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn gauges_reported_on_heartbeat_are_summed_and_flagged_over_limit_in_statistics() {
    let api = Api::from_env();
    let (license, key) = api
        .issue(
            "starter",
            json!({"limits": {"installations": 2, "users": 5}}),
        )
        .await;
    for (inst, users) in [("g-1", 3), ("g-2", 4)] {
        let (status, body) = api
            .post(
                "/api/heartbeat",
                json!({"licenseKey": key, "installationId": inst, "version": "1.0.0", "gauges": {"users": users, "storage_gb": 1}}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::OK, Some("VALID")),
            "{body}"
        );
        assert_eq!(body["installation"]["gauges"]["users"], users);
    }
    let (status, stats) = api
        .post("/api/usage/stats", json!({"licenseKey": key}))
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(
        stats["gauges"],
        json!([
            {"gauge": "users", "value": 7, "limit": 5, "overLimit": true},
            {"gauge": "storage_gb", "value": 2, "limit": license["limits"]["storage_gb"], "overLimit": false}
        ])
    );
    let (status, body) = api
        .post("/api/heartbeat", json!({"licenseKey": key, "installationId": "g-1", "version": "1.0.0", "gauges": {"seats": 1}}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_REQUEST")),
        "{body}"
    );
}
