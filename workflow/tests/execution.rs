//! Running workflows: node semantics, scheduling, merges, ends of runs and limits.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use nectar_workflow::{
    DisabledHttp, Env, ErrorCode, Execution, HttpCaller, HttpError, HttpRequest, HttpResponse,
    Policy, RunStatus, StatisticalAnalytics, StepStatus, Workflow, execute,
};
use serde_json::{Value, json};

fn workflow(nodes: Value, policy: &Policy) -> Workflow {
    Workflow::parse(&json!({ "nodes": nodes }), policy).expect("the test workflow is valid")
}

async fn run_with(nodes: Value, data: Value, policy: &Policy, http: &dyn HttpCaller) -> Execution {
    let wf = workflow(nodes, policy);
    let env = Env {
        http,
        analytics: &StatisticalAnalytics,
    };
    execute(&wf, data, policy, &env).await
}

async fn run(nodes: Value, data: Value) -> Execution {
    run_with(nodes, data, &Policy::default(), &DisabledHttp).await
}

fn trace(run: &Execution) -> Vec<(&str, StepStatus)> {
    run.steps
        .iter()
        .map(|s| (s.node_id.as_str(), s.status))
        .collect()
}

fn error_code(run: &Execution) -> Option<ErrorCode> {
    run.error.as_ref().map(|e| e.code)
}

/// Orders → totals → condition → (high: set, fan-out to two transforms | low: set) → merge → final.
fn order_pipeline() -> Value {
    json!([
        {"id": "big", "type": "transform", "next": "check",
         "params": {"expr": ".threshold as $t | {big: [.orders[] | select(.amount > $t) | .id], total: ([.orders[].amount] | add)}"}},
        {"id": "check", "type": "condition", "params": {"expr": ".total > 200"},
         "branches": {"true": "tag_high", "false": "tag_low"}},
        {"id": "tag_high", "type": "set", "next": ["fanA", "fanB"],
         "params": {"values": {"tier": "high"}, "exprs": {"count": ".big | length"},
                    "templates": {"label": "{{ .big | length }} big orders of {{ .total }}"}}},
        {"id": "tag_low", "type": "set", "params": {"values": {"tier": "low"}}, "next": "join"},
        {"id": "fanA", "type": "transform", "params": {"expr": ".total / 2"}, "next": "join"},
        {"id": "fanB", "type": "transform", "params": {"expr": "{ids: .big, label}"}, "next": "join"},
        {"id": "join", "type": "merge", "params": {"mode": "object"}, "next": "final"},
        {"id": "final", "type": "transform", "params": {"expr": ".tag_low // {half: .fanA, ids: .fanB.ids, label: .fanB.label}"}}
    ])
}

#[tokio::test]
async fn the_high_branch_fans_out_and_the_merge_ignores_the_skipped_low_branch() {
    // Arrange: amounts 120 + 30 + 75 = 225 > 200; orders above 50 are 1 and 3
    let data = json!({"threshold": 50, "orders": [
        {"id": 1, "amount": 120}, {"id": 2, "amount": 30}, {"id": 3, "amount": 75}]});
    // Act
    let run = run(order_pipeline(), data).await;
    // Assert
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(
        run.output,
        json!({"half": 112.5, "ids": [1, 3], "label": "2 big orders of 225"})
    );
    assert_eq!(
        trace(&run),
        vec![
            ("big", StepStatus::Succeeded),
            ("check", StepStatus::Succeeded),
            ("tag_low", StepStatus::Skipped),
            ("tag_high", StepStatus::Succeeded),
            ("fanA", StepStatus::Succeeded),
            ("fanB", StepStatus::Succeeded),
            ("join", StepStatus::Succeeded),
            ("final", StepStatus::Succeeded),
        ]
    );
}

#[tokio::test]
async fn the_low_branch_skips_the_whole_fan_out_and_the_merge_still_runs() {
    let data =
        json!({"threshold": 50, "orders": [{"id": 1, "amount": 10}, {"id": 2, "amount": 20}]});
    let run = run(order_pipeline(), data).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.output, json!({"big": [], "total": 30, "tier": "low"}));
    assert_eq!(
        trace(&run),
        vec![
            ("big", StepStatus::Succeeded),
            ("check", StepStatus::Succeeded),
            ("tag_high", StepStatus::Skipped),
            ("fanA", StepStatus::Skipped),
            ("fanB", StepStatus::Skipped),
            ("tag_low", StepStatus::Succeeded),
            ("join", StepStatus::Succeeded),
            ("final", StepStatus::Succeeded),
        ]
    );
}

fn fan_into_merge(mode: &str) -> Value {
    // `c` is declared before `b`: merge order follows declaration, not `next` order.
    json!([
        {"id": "a", "type": "transform", "params": {"expr": "."}, "next": ["b", "c"]},
        {"id": "c", "type": "transform", "params": {"expr": "{a: {y: 2}, k: 2}"}, "next": "m"},
        {"id": "b", "type": "transform", "params": {"expr": "{a: {x: 1}, k: 1}"}, "next": "m"},
        {"id": "m", "type": "merge", "params": {"mode": mode}}
    ])
}

#[tokio::test]
async fn merge_modes_combine_in_predecessor_declaration_order() {
    let cases = [
        (
            "object",
            json!({"c": {"a": {"y": 2}, "k": 2}, "b": {"a": {"x": 1}, "k": 1}}),
        ),
        (
            "array",
            json!([{"a": {"y": 2}, "k": 2}, {"a": {"x": 1}, "k": 1}]),
        ),
        ("deep", json!({"a": {"x": 1, "y": 2}, "k": 1})),
        ("first", json!({"a": {"y": 2}, "k": 2})),
    ];
    for (mode, expected) in cases {
        let run = run(fan_into_merge(mode), json!(null)).await;
        assert_eq!(run.output, expected, "mode {mode}");
        assert_eq!(
            trace(&run).last(),
            Some(&("m", StepStatus::Succeeded)),
            "mode {mode}"
        );
    }
}

#[tokio::test]
async fn a_merge_whose_predecessors_were_all_skipped_is_skipped_and_the_run_ends_on_the_last_path()
{
    let nodes = json!([
        {"id": "gate", "type": "condition", "params": {"expr": ".go"}, "branches": {"true": "work", "false": "other"}},
        {"id": "work", "type": "transform", "params": {"expr": "1"}, "next": "m"},
        {"id": "other", "type": "transform", "params": {"expr": "{skipped: true}"}},
        {"id": "m", "type": "merge"}
    ]);
    let run = run(nodes, json!({"go": false})).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output, json!({"skipped": true}));
    assert_eq!(
        trace(&run),
        vec![
            ("gate", StepStatus::Succeeded),
            ("work", StepStatus::Skipped),
            ("m", StepStatus::Skipped),
            ("other", StepStatus::Succeeded),
        ]
    );
}

#[tokio::test]
async fn a_condition_without_the_taken_branch_ends_that_path_with_its_input() {
    let nodes = json!([
        {"id": "gate", "type": "condition", "params": {"expr": ".n > 10"}, "branches": {"true": "big"}},
        {"id": "big", "type": "output", "params": {"expr": "\"big\""}}
    ]);
    let small = run(nodes.clone(), json!({"n": 3})).await;
    assert_eq!(
        (small.status, small.output.clone()),
        (RunStatus::Succeeded, json!({"n": 3}))
    );
    assert_eq!(
        trace(&small),
        vec![
            ("gate", StepStatus::Succeeded),
            ("big", StepStatus::Skipped)
        ]
    );
    let big = run(nodes, json!({"n": 30})).await;
    assert_eq!(big.output, json!("big"));
}

#[tokio::test]
async fn jq_truthiness_decides_conditions() {
    let nodes = json!([
        {"id": "gate", "type": "condition", "params": {"expr": ".v"}, "branches": {"true": "yes", "false": "no"}},
        {"id": "yes", "type": "output", "params": {"expr": "true"}},
        {"id": "no", "type": "output", "params": {"expr": "false"}}
    ]);
    for (v, expected) in [
        (json!(0), true),
        (json!(""), true),
        (json!([]), true),
        (json!(null), false),
        (json!(false), false),
    ] {
        let run = run(nodes.clone(), json!({ "v": v })).await;
        assert_eq!(run.output, json!(expected), "value {v}");
    }
}

#[tokio::test]
async fn an_output_node_ends_the_run_before_queued_nodes() {
    let nodes = json!([
        {"id": "a", "type": "transform", "params": {"expr": ".x + 1"}, "next": ["out", "later"]},
        {"id": "out", "type": "output", "params": {"expr": "{result: .}"}},
        {"id": "later", "type": "fail", "params": {"message": "never reached"}}
    ]);
    let run = run(nodes, json!({"x": 41})).await;
    assert_eq!(
        (run.status, run.output.clone(), run.error.clone()),
        (RunStatus::Succeeded, json!({"result": 42}), None)
    );
    assert_eq!(
        trace(&run),
        vec![("a", StepStatus::Succeeded), ("out", StepStatus::Succeeded)]
    );
}

#[tokio::test]
async fn a_fail_node_fails_the_run_with_its_rendered_message() {
    let nodes = json!([
        {"id": "check", "type": "condition", "params": {"expr": ".qty > 0"}, "branches": {"false": "reject"}},
        {"id": "reject", "type": "fail", "params": {"message": "quantity {{ .qty }} for {{ .sku }} is not positive"}}
    ]);
    let run = run(nodes, json!({"qty": -2, "sku": "A-1"})).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.output, Value::Null);
    let error = run.error.clone().expect("an error");
    assert_eq!(error.code, ErrorCode::WorkflowFailed);
    assert_eq!(error.message, "quantity -2 for A-1 is not positive");
    assert_eq!(error.node_id.as_deref(), Some("reject"));
    assert_eq!(
        trace(&run),
        vec![
            ("check", StepStatus::Succeeded),
            ("reject", StepStatus::Failed)
        ]
    );
}

#[tokio::test]
async fn a_jq_runtime_error_fails_the_step_with_the_jq_message() {
    let nodes = json!([{"id": "a", "type": "transform", "params": {"expr": ".name - 1"}}]);
    let run = run(nodes, json!({"name": "x"})).await;
    let error = run.error.clone().expect("an error");
    assert_eq!(error.code, ErrorCode::ExpressionError);
    assert_eq!(error.message, "`.name - 1`: cannot calculate \"x\" - 1");
    assert_eq!(
        run.steps[0].error.as_deref(),
        Some("`.name - 1`: cannot calculate \"x\" - 1")
    );
}

#[tokio::test]
async fn transform_takes_the_first_result_or_collects_them_all() {
    let first = run(
        json!([{"id": "a", "type": "transform", "params": {"expr": ".[] * 10"}}]),
        json!([1, 2, 3]),
    )
    .await;
    assert_eq!(first.output, json!(10));
    let all = run(
        json!([{"id": "a", "type": "transform", "params": {"expr": ".[] * 10", "collect": true}}]),
        json!([1, 2, 3]),
    )
    .await;
    assert_eq!(all.output, json!([10, 20, 30]));
    let none = run(
        json!([{"id": "a", "type": "transform", "params": {"expr": "empty"}}]),
        json!(1),
    )
    .await;
    assert_eq!(
        none.error.map(|e| (e.code, e.message)),
        Some((
            ErrorCode::ExpressionError,
            "`empty` produced no result".into()
        ))
    );
}

#[tokio::test]
async fn set_writes_nested_paths_and_refuses_to_go_through_scalars() {
    let nodes = json!([{"id": "s", "type": "set", "params": {"values": {"meta.source": "api", "meta.version": 2}, "exprs": {"n2": ".n * 2"}}}]);
    let run_ok = run(nodes.clone(), json!({"n": 4, "meta": {"old": true}})).await;
    assert_eq!(
        run_ok.output,
        json!({"n": 4, "n2": 8, "meta": {"old": true, "source": "api", "version": 2}})
    );
    let run_bad = run(nodes, json!({"n": 1, "meta": 5})).await;
    let error = run_bad.error.expect("an error");
    assert_eq!(
        (error.code, error.message.as_str()),
        (
            ErrorCode::InvalidValue,
            "cannot set `meta.source`: `meta` is a number"
        )
    );
}

#[tokio::test]
async fn an_ai_node_summarizes_the_selected_series() {
    let nodes = json!([{"id": "stats", "type": "ai", "params": {"operation": "summary", "input": "[.points[].v]"}, "next": "pick"},
                       {"id": "pick", "type": "transform", "params": {"expr": "{mean, median, count}"}}]);
    let run_ok = run(
        nodes.clone(),
        json!({"points": [{"v": 1}, {"v": 2}, {"v": 3}, {"v": 4}]}),
    )
    .await;
    assert_eq!(
        run_ok.output,
        json!({"mean": 2.5, "median": 2.5, "count": 4})
    );
    let run_bad = run(nodes, json!({"points": [{"v": 1}, {"v": "two"}]})).await;
    let error = run_bad.error.expect("an error");
    assert_eq!(
        (error.code, error.message.as_str()),
        (
            ErrorCode::AnalyticsError,
            "summary: element 1 is a string, expected a number"
        )
    );
}

#[tokio::test]
async fn an_ai_trend_of_two_x_plus_one_has_slope_two() {
    let nodes = json!([{"id": "t", "type": "ai", "params": {"operation": "trend"}}]);
    let run = run(nodes, json!([1, 3, 5, 7, 9])).await;
    assert_eq!(
        run.output,
        json!({"count": 5, "slope": 2.0, "intercept": 1.0, "r2": 1.0})
    );
}

#[tokio::test]
async fn exceeding_max_steps_fails_with_step_limit() {
    let policy = Policy {
        max_steps: 2,
        ..Policy::default()
    };
    let nodes = json!([
        {"id": "a", "type": "transform", "params": {"expr": "."}, "next": "b"},
        {"id": "b", "type": "transform", "params": {"expr": "."}, "next": "c"},
        {"id": "c", "type": "transform", "params": {"expr": "."}}
    ]);
    let run = run_with(nodes, json!(1), &policy, &DisabledHttp).await;
    assert_eq!(error_code(&run), Some(ErrorCode::StepLimit));
    assert_eq!(run.error.and_then(|e| e.node_id).as_deref(), Some("c"));
    assert_eq!(run.steps.len(), 2);
}

#[tokio::test]
async fn a_runaway_jq_program_ends_with_time_limit_promptly() {
    let policy = Policy {
        max_wall: Duration::from_millis(300),
        ..Policy::default()
    };
    for expr in [
        "last(range(1e12))",
        "[limit(1e12; repeat(.))] | length",
        "reduce range(1e12) as $x (0; . + $x)",
    ] {
        let started = Instant::now();
        let run = run_with(
            json!([{"id": "spin", "type": "transform", "params": {"expr": expr}}]),
            json!(1),
            &policy,
            &DisabledHttp,
        )
        .await;
        assert_eq!(error_code(&run), Some(ErrorCode::TimeLimit), "{expr}");
        assert_eq!(run.steps[0].status, StepStatus::Failed);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{expr} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn collecting_an_endless_generator_stops_at_the_result_cap() {
    let policy = Policy {
        max_results: 100,
        ..Policy::default()
    };
    let nodes = json!([{"id": "gen", "type": "transform", "params": {"expr": "range(1e12)", "collect": true}}]);
    let run = run_with(nodes, json!(null), &policy, &DisabledHttp).await;
    let error = run.error.expect("an error");
    assert_eq!(
        (error.code, error.message.as_str()),
        (
            ErrorCode::ExpressionError,
            "`range(1e12)`: the expression produced more than 100 results"
        )
    );
}

#[tokio::test]
async fn a_large_final_output_fails_with_output_limit() {
    let policy = Policy {
        max_output_bytes: 100,
        ..Policy::default()
    };
    let nodes = json!([{"id": "big", "type": "transform", "params": {"expr": "[range(50)]"}}]);
    let run = run_with(nodes, json!(null), &policy, &DisabledHttp).await;
    assert_eq!(
        (run.status, error_code(&run), run.output.clone()),
        (RunStatus::Failed, Some(ErrorCode::OutputLimit), Value::Null)
    );
    // The node itself succeeded; only the run's output is refused.
    assert_eq!(trace(&run), vec![("big", StepStatus::Succeeded)]);
}

#[tokio::test]
async fn a_large_intermediate_value_fails_with_value_limit() {
    let policy = Policy {
        max_value_bytes: 1000,
        ..Policy::default()
    };
    let nodes = json!([{"id": "big", "type": "transform", "params": {"expr": "[range(1000)]"}, "next": "small"},
                       {"id": "small", "type": "transform", "params": {"expr": "length"}}]);
    let run = run_with(nodes, json!(null), &policy, &DisabledHttp).await;
    assert_eq!(error_code(&run), Some(ErrorCode::ValueLimit));
    assert_eq!(trace(&run), vec![("big", StepStatus::Failed)]);
}

/// Never answers; records whether it was called.
struct Hanging;

#[async_trait]
impl HttpCaller for Hanging {
    async fn call(&self, _: HttpRequest) -> Result<HttpResponse, HttpError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Err(HttpError::Transport("unreachable".into()))
    }
}

#[tokio::test]
async fn an_in_flight_http_call_is_cut_at_the_deadline() {
    let policy = Policy {
        max_wall: Duration::from_millis(200),
        http_timeout: Duration::from_secs(30),
        ..Policy::default()
    };
    let nodes = json!([{"id": "slow", "type": "http", "params": {"method": "GET", "url": "https://api.example.com/"}}]);
    let started = Instant::now();
    let run = run_with(nodes, json!(null), &policy, &Hanging).await;
    assert_eq!(error_code(&run), Some(ErrorCode::TimeLimit));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_http_node_times_out_on_its_own_budget_before_the_run_deadline() {
    let policy = Policy {
        max_wall: Duration::from_secs(10),
        http_timeout: Duration::from_millis(100),
        ..Policy::default()
    };
    let nodes = json!([{"id": "slow", "type": "http", "params": {"method": "GET", "url": "https://api.example.com/"}}]);
    let run = run_with(nodes, json!(null), &policy, &Hanging).await;
    let error = run.error.expect("an error");
    assert_eq!(
        (error.code, error.message.as_str()),
        (
            ErrorCode::HttpError,
            "GET https://api.example.com/: no complete response within 100ms"
        )
    );
}

#[tokio::test]
async fn the_execution_serializes_with_camel_case_fields() {
    let run = run(
        json!([{"id": "a", "type": "transform", "params": {"expr": ". + 1"}}]),
        json!(1),
    )
    .await;
    let mut value = serde_json::to_value(&run).expect("serializes");
    value["durationMs"] = json!(0);
    value["steps"][0]["durationMs"] = json!(0);
    assert_eq!(
        value,
        json!({"status": "succeeded", "output": 2, "error": null, "durationMs": 0,
               "steps": [{"nodeId": "a", "type": "transform", "status": "succeeded", "durationMs": 0, "error": null}]})
    );
}

mod http_node {
    use super::*;
    use nectar_workflow::{HostPattern, HttpSettings, ReqwestCaller};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves one canned reply per connection on 127.0.0.1:0 and keeps the raw requests.
    async fn server(reply: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 16 * 1024];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                log.lock()
                    .expect("log")
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        (port, seen)
    }

    fn local_caller() -> ReqwestCaller {
        ReqwestCaller::new(HttpSettings {
            allowed_hosts: vec![HostPattern::parse("127.0.0.1").expect("pattern")],
            allow_plain_http: true,
            // The test server listens on loopback.
            allow_private_networks: true,
            ..HttpSettings::default()
        })
        .expect("client")
    }

    /// Default settings (private networks refused) with plain http and `hosts` allow-listed.
    fn public_only_caller(hosts: &[&str]) -> ReqwestCaller {
        ReqwestCaller::new(HttpSettings {
            allowed_hosts: hosts
                .iter()
                .map(|h| HostPattern::parse(h).expect("pattern"))
                .collect(),
            allow_plain_http: true,
            ..HttpSettings::default()
        })
        .expect("client")
    }

    #[tokio::test]
    async fn the_cloud_metadata_address_fails_with_http_refused_even_when_allow_listed() {
        let nodes = json!([{"id": "get", "type": "http", "params": {"method": "GET", "url": "https://169.254.169.254/latest/meta-data"}}]);
        let caller = public_only_caller(&["169.254.169.254"]);
        let run = run_with(nodes, json!(null), &Policy::default(), &caller).await;
        let error = run.error.expect("an error");
        assert_eq!(error.code, ErrorCode::HttpRefused);
        assert_eq!(
            error.message,
            "GET https://169.254.169.254/latest/meta-data: refused: address `169.254.169.254` is not publicly routable; private and internal networks are not allowed"
        );
    }

    #[tokio::test]
    async fn an_allow_listed_name_resolving_to_loopback_fails_with_http_refused_without_connecting()
    {
        let (port, seen) = server("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        let nodes = json!([{"id": "get", "type": "http", "params": {"method": "GET", "url": format!("http://localhost:{port}/")}}]);
        let caller = public_only_caller(&["localhost"]);
        let run = run_with(nodes, json!(null), &Policy::default(), &caller).await;
        let error = run.error.expect("an error");
        assert_eq!(error.code, ErrorCode::HttpRefused);
        assert_eq!(
            error.message,
            format!(
                "GET http://localhost:{port}/: refused: host `localhost` has no publicly routable address; private and internal networks are not allowed"
            )
        );
        assert!(seen.lock().expect("log").is_empty());
    }

    #[tokio::test]
    async fn an_http_node_renders_its_request_and_returns_status_headers_and_parsed_body() {
        // Arrange
        let (port, seen) = server("HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nx-request-id: r-1\r\ncontent-length: 21\r\nconnection: close\r\n\r\n{\"stored\":true,\"n\":7}").await;
        let nodes = json!([
            {"id": "post", "type": "http", "next": "pick", "params": {
                "method": "POST",
                "url": format!("http://127.0.0.1:{port}/items/{{{{ .item.id }}}}?tag={{{{ .tag }}}}"),
                "headers": {"X-Customer": "{{ .customer }}", "Accept": "application/json"},
                "bodyExpr": "{qty: (.item.qty * 2)}"}},
            {"id": "pick", "type": "transform", "params": {"expr": "{status, rid: .headers[\"x-request-id\"], body}"}}
        ]);
        let data = json!({"item": {"id": 7, "qty": 3}, "tag": "a", "customer": "acme"});
        // Act
        let run = run_with(nodes, data, &Policy::default(), &local_caller()).await;
        // Assert
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
        assert_eq!(
            run.output,
            json!({"status": 201, "rid": "r-1", "body": {"stored": true, "n": 7}})
        );
        let request = seen.lock().expect("log")[0].clone();
        assert!(
            request.starts_with("POST /items/7?tag=a HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("x-customer: acme\r\n"), "{request}");
        assert!(
            request.contains("content-type: application/json\r\n"),
            "{request}"
        );
        assert!(request.ends_with("\r\n\r\n{\"qty\":6}"), "{request}");
    }

    #[tokio::test]
    async fn an_error_status_fails_the_node_unless_fail_on_status_is_off() {
        let (port, _) = server(
            "HTTP/1.1 404 Not Found\r\ncontent-length: 7\r\nconnection: close\r\n\r\nmissing",
        )
        .await;
        let node = |fail: bool| json!([{"id": "get", "type": "http", "params": {"method": "GET", "url": format!("http://127.0.0.1:{port}/x"), "failOnStatus": fail}}]);
        let failing = run_with(node(true), json!(null), &Policy::default(), &local_caller()).await;
        let error = failing.error.expect("an error");
        assert_eq!(
            (error.code, error.message.as_str()),
            (
                ErrorCode::HttpStatus,
                format!("GET http://127.0.0.1:{port}/x answered 404").as_str()
            )
        );
        let tolerant = run_with(
            node(false),
            json!(null),
            &Policy::default(),
            &local_caller(),
        )
        .await;
        assert_eq!(
            tolerant.output,
            json!({"status": 404, "headers": {"content-length": "7", "connection": "close"}, "body": "missing"})
        );
    }

    #[tokio::test]
    async fn a_host_outside_the_allow_list_fails_with_http_refused() {
        let (port, seen) = server("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        let nodes = json!([{"id": "get", "type": "http", "params": {"method": "GET", "url": format!("http://localhost:{port}/")}}]);
        let run = run_with(nodes, json!(null), &Policy::default(), &local_caller()).await;
        let error = run.error.expect("an error");
        assert_eq!(error.code, ErrorCode::HttpRefused);
        assert_eq!(
            error.message,
            format!(
                "GET http://localhost:{port}/: refused: host `localhost` is not in the allow-list"
            )
        );
        assert!(seen.lock().expect("log").is_empty());
    }
}
