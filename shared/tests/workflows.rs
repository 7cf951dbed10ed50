//! The workflow execution service on the in-memory adapters: gates before anything runs or counts,
//! exact outputs, metering, rate windows, revocation, and executions readable only by their own
//! license. The branching workflow also runs on the emulator, where its AWS calls are counted
//! (`memory::` and `emulator::`, the latter ignored by plain `cargo test`); concurrent metering on
//! the real counter is in `emulator.rs`.

mod common;

use common::{Harness, Layer, aws_calls, execute_cmd as cmd};
use nectar_workflow::IssueCode;
use serde_json::{Value, json};
use shared::domain::workflow::{ExecutionId, WorkflowPolicy};
use shared::domain::{Actor, Plan};
use shared::service::admin::{StatusAction, change_status};
use shared::service::check::Code;
use shared::service::workflows::{ReadRefusal, Refusal, execution_of};
use shared::testing::{MemoryStack, Stack};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00:10 UTC);

/// A memory stack running workflows at [`NOW`].
async fn harness() -> Harness<MemoryStack> {
    Harness::new(MemoryStack::new(), NOW).await
}

/// Orders of at least 100 take the express lane and a 10 % discount; the rest are grouped.
fn order_workflow() -> Value {
    json!({"nodes": [
        {"id": "total", "type": "transform",
         "params": {"expr": "{customer: .customer, total: ([.items[] | .price * .qty] | add)}"},
         "next": "big"},
        {"id": "big", "type": "condition", "params": {"expr": ".total >= 100"},
         "branches": {"true": "discount", "false": "standard"}},
        {"id": "discount", "type": "transform",
         "params": {"expr": ". + {total: (.total * 0.9), lane: \"express\"}"}, "next": "label"},
        {"id": "standard", "type": "set", "params": {"values": {"lane": "standard"}},
         "next": "label"},
        {"id": "label", "type": "merge", "params": {"mode": "first"}, "next": "done"},
        {"id": "done", "type": "output",
         "params": {"expr": "{customer, lane, total, summary: \"\\(.customer): \\(.lane)\"}"}}
    ]})
}

#[tokio::test]
async fn the_cheap_branch_is_taken_below_the_threshold() {
    let h = harness().await;
    let issued = h.issue(Plan::Starter, None).await;
    let data = json!({"customer": "bee", "items": [{"price": 10, "qty": 3}]});
    let body = h
        .run(cmd(&issued, order_workflow(), data))
        .await
        .expect("runs");
    assert_eq!(
        body["output"],
        json!({"customer": "bee", "lane": "standard", "total": 30, "summary": "bee: standard"})
    );
}

#[tokio::test]
async fn invalid_graphs_are_refused_with_pointers_before_anything_is_counted() {
    // Arrange
    let h = harness().await;
    let issued = h.issue(Plan::Starter, None).await;
    let cycle = json!({"nodes": [
        {"id": "a", "type": "transform", "params": {"expr": "."}, "next": "b"},
        {"id": "b", "type": "transform", "params": {"expr": "."}, "next": "a"}
    ]});
    let dangling = json!({"nodes": [
        {"id": "a", "type": "transform", "params": {"expr": "."}, "next": "ghost"}
    ]});
    let nodes: Vec<Value> = (0..26)
        .map(|i| json!({"id": format!("n{i}"), "type": "output"}))
        .collect();
    let oversize = json!({ "nodes": nodes });
    // Act / Assert
    for (workflow, pointer, code) in [
        (cycle, "/nodes/1/next", IssueCode::Cycle),
        (dangling, "/nodes/0/next", IssueCode::UnknownReference),
        (oversize, "/nodes", IssueCode::TooManyNodes),
    ] {
        match h.run(cmd(&issued, workflow, json!({}))).await {
            Err(Refusal::Invalid(errors)) => {
                assert!(
                    errors
                        .issues
                        .iter()
                        .any(|i| i.pointer == pointer && i.code == code),
                    "{pointer}: {errors:?}"
                );
            }
            other => panic!("{pointer}: {other:?}"),
        }
    }
    assert_eq!(h.used(&issued).await, 0);
}

#[tokio::test]
async fn an_http_node_without_integrations_is_refused_before_any_node_runs_or_counts() {
    // Arrange: starter has no `integrations`.
    let h = harness().await;
    let issued = h.issue(Plan::Starter, None).await;
    let workflow = json!({"nodes": [
        {"id": "prep", "type": "transform", "params": {"expr": "."}, "next": "call"},
        {"id": "call", "type": "http", "params": {"method": "GET", "url": "https://api.example.com/x"}}
    ]});
    // Act
    let refused = h.run(cmd(&issued, workflow.clone(), json!({}))).await;
    // Assert
    match refused {
        Err(Refusal::NodeNotEntitled {
            feature,
            node_id,
            node_type,
            pointer,
        }) => {
            assert_eq!(
                (
                    feature.as_str(),
                    node_id.as_str(),
                    node_type.as_str(),
                    pointer.as_str()
                ),
                ("integrations", "call", "http", "/nodes/1/type")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.http.count(), 0, "no call made");
    assert_eq!(h.used(&issued).await, 0, "nothing counted");
    // The same workflow runs for a plan with integrations.
    let pro = h.issue(Plan::Professional, None).await;
    let body = h.run(cmd(&pro, workflow, json!({}))).await.expect("runs");
    assert_eq!(body["output"]["body"], json!({"ok": true}));
    assert_eq!(h.http.count(), 1);
}

#[tokio::test]
async fn the_rate_limit_refuses_until_the_next_minute_and_refusals_do_not_count() {
    // Arrange: 3 executions a minute.
    let h = harness().await;
    let issued = h.issue(Plan::Professional, None).await;
    let policy = |p: Plan| WorkflowPolicy {
        rate_per_minute: 3,
        ..p.workflow_policy()
    };
    let workflow = json!({"nodes": [{"id": "o", "type": "output"}]});
    // Act
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(
            h.run_with(policy, cmd(&issued, workflow.clone(), json!({})), NOW)
                .await,
        );
    }
    let next_minute = h
        .run_with(
            policy,
            cmd(&issued, workflow, json!({})),
            datetime!(2026-06-01 12:01:00 UTC),
        )
        .await;
    // Assert
    assert!(outcomes[..3].iter().all(Result::is_ok));
    match &outcomes[3] {
        Err(Refusal::RateLimited { limit, retry_after }) => {
            assert_eq!((*limit, *retry_after), (3, 50));
        }
        other => panic!("{other:?}"),
    }
    assert!(next_minute.is_ok());
    assert_eq!(h.used(&issued).await, 4);
}

#[tokio::test]
async fn a_revoked_license_is_refused_on_the_very_next_call() {
    // Arrange
    let h = harness().await;
    let issued = h.issue(Plan::Starter, None).await;
    let workflow = json!({"nodes": [{"id": "o", "type": "output"}]});
    let first = cmd(&issued, workflow.clone(), json!({}));
    let first_id = first.execution_id;
    h.run(first).await.expect("runs");
    change_status(
        &h.stack.store,
        &issued.license.id,
        StatusAction::Revoke,
        Some("chargeback".into()),
        Actor::operator("bootstrap", None),
        NOW,
    )
    .await
    .expect("revoke");
    // Act
    let refused = h.run(cmd(&issued, workflow, json!({}))).await;
    // Assert
    assert!(
        matches!(&refused, Err(Refusal::License(v)) if v.code == Code::Revoked),
        "{refused:?}"
    );
    assert_eq!(h.used(&issued).await, 1);
    let read = execution_of(&h.ring, &h.stack.store, &issued.key, &first_id, NOW).await;
    assert!(
        matches!(&read, Err(ReadRefusal::License(v)) if v.code == Code::Revoked),
        "a revoked key reads nothing either: {read:?}"
    );
}

#[tokio::test]
async fn a_limit_hit_fails_the_run_and_still_counts_it() {
    let h = harness().await;
    let issued = h.issue(Plan::Starter, None).await;
    let policy = |p: Plan| {
        let mut w = p.workflow_policy();
        w.engine.max_steps = 2;
        w
    };
    let workflow = json!({"nodes": [
        {"id": "a", "type": "transform", "params": {"expr": "."}, "next": "b"},
        {"id": "b", "type": "transform", "params": {"expr": "."}, "next": "c"},
        {"id": "c", "type": "output"}
    ]});
    let body = h
        .run_with(policy, cmd(&issued, workflow, json!({})), NOW)
        .await
        .expect("ran");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["error"]["code"], "STEP_LIMIT");
    assert_eq!(h.used(&issued).await, 1);
}

#[tokio::test]
async fn another_license_cannot_read_an_execution() {
    // Arrange
    let h = harness().await;
    let owner = h.issue(Plan::Starter, None).await;
    let other = h.issue(Plan::Starter, None).await;
    let c = cmd(
        &owner,
        json!({"nodes": [{"id": "o", "type": "output"}]}),
        json!({"secret": 1}),
    );
    let id = c.execution_id;
    h.run(c).await.expect("runs");
    // Act
    let theirs = execution_of(&h.ring, &h.stack.store, &other.key, &id, NOW).await;
    let missing = execution_of(
        &h.ring,
        &h.stack.store,
        &owner.key,
        &ExecutionId::from_uuid(uuid::Uuid::now_v7()),
        NOW,
    )
    .await;
    // Assert
    assert!(matches!(theirs, Err(ReadRefusal::NotFound)), "{theirs:?}");
    assert!(matches!(missing, Err(ReadRefusal::NotFound)), "{missing:?}");
    let mine = execution_of(&h.ring, &h.stack.store, &owner.key, &id, NOW)
        .await
        .expect("the owner reads it");
    assert_eq!(mine["output"], json!({"secret": 1}));
}

// ---- a rule that also runs on the emulator ----

/// The rule, on either layer; hands back the calls of the execution.
async fn a_branching_workflow_gives_the_exact_output_is_counted_once_and_can_be_read_back<
    L: Layer,
>(
    stack: L,
) -> L::Calls {
    // Arrange
    let h = Harness::new(stack, NOW).await;
    let issued = h.issue(Plan::Professional, None).await;
    let data = json!({"customer": "acme", "items": [
        {"price": 40, "qty": 2}, {"price": 25, "qty": 1}
    ]});
    let c = cmd(&issued, order_workflow(), data);
    let id = c.execution_id;
    h.stack.reset_calls();
    // Act
    let body = h.run(c).await.expect("runs");
    let calls = h.stack.calls();
    // Assert: 105 ≥ 100 → express, 105 × 0.9 = 94.5.
    assert_eq!(body["status"], "succeeded", "{body}");
    assert_eq!(
        body["output"],
        json!({"customer": "acme", "lane": "express", "total": 94.5,
               "summary": "acme: express"})
    );
    let ran: Vec<(&str, &str)> = body["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["nodeId"].as_str().unwrap_or(""),
                s["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(ran.contains(&("discount", "succeeded")), "{ran:?}");
    assert_eq!(
        (&body["steps"][0]["nodeId"], &body["steps"][0]["type"]),
        (&json!("total"), &json!("transform")),
        "steps name their node and its type"
    );
    assert!(ran.contains(&("standard", "skipped")), "{ran:?}");
    assert_eq!(
        body["usage"],
        json!({"used": 1, "limit": 10_000, "remaining": 9_999})
    );
    assert_eq!(h.used(&issued).await, 1);
    let read = execution_of(&h.ring, h.stack.store(), &issued.key, &id, NOW)
        .await
        .expect("recorded");
    assert_eq!(read, body);
    calls
}

mod memory {
    use super::*;

    #[tokio::test]
    async fn a_branching_workflow_gives_the_exact_output_is_counted_once_and_can_be_read_back() {
        super::a_branching_workflow_gives_the_exact_output_is_counted_once_and_can_be_read_back(
            MemoryStack::new(),
        )
        .await;
    }
}

mod emulator {
    use super::*;

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn a_branching_workflow_gives_the_exact_output_is_counted_once_and_can_be_read_back() {
        let calls =
            super::a_branching_workflow_gives_the_exact_output_is_counted_once_and_can_be_read_back(
                Stack::new().await,
            )
            .await;
        // One license read, one rate window, one reservation, one record; no KMS.
        assert_eq!(
            calls,
            aws_calls(&[
                ("DynamoDB.GetItem", 1),
                ("DynamoDB.PutItem", 1),
                ("DynamoDB.UpdateItem", 2),
            ])
        );
    }
}
