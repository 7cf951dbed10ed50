//! Engine overhead: a 50-node workflow (transforms, sets, conditions, merges; no I/O) against a
//! 1-node baseline, then the per-node figure printed as (time(50) − time(1)) / 49 and time/50.
//!
//! `NECTAR_BENCH_SANDBOX=1` runs the same with jq in the process sandbox (worker processes, as
//! the `workflows` function runs customers' expressions); `make bench` runs both.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use nectar_workflow::{
    DisabledHttp, Env, Policy, RunStatus, StatisticalAnalytics, Workflow, execute,
};
use serde_json::{Value, json};

/// Ten blocks of five nodes: transform → condition → (set | transform, skipped) → merge.
fn fifty_nodes() -> Value {
    let mut nodes = Vec::new();
    for k in 0..10 {
        let next_block = if k < 9 {
            json!(format!("t{}", k + 1))
        } else {
            json!([])
        };
        nodes.push(json!({"id": format!("t{k}"), "type": "transform", "params": {"expr": ".n += 1 | .sum += .n"}, "next": format!("c{k}")}));
        nodes.push(
            json!({"id": format!("c{k}"), "type": "condition", "params": {"expr": ".n > 0"},
                          "branches": {"true": format!("s{k}"), "false": format!("u{k}")}}),
        );
        nodes.push(json!({"id": format!("s{k}"), "type": "set", "params": {"values": {"ok": true}, "exprs": {"last": ".n"}}, "next": format!("m{k}")}));
        nodes.push(json!({"id": format!("u{k}"), "type": "transform", "params": {"expr": ".ok = false"}, "next": format!("m{k}")}));
        nodes.push(json!({"id": format!("m{k}"), "type": "merge", "params": {"mode": "first"}, "next": next_block}));
    }
    json!({ "nodes": nodes })
}

fn one_node() -> Value {
    json!({"nodes": [{"id": "t0", "type": "transform", "params": {"expr": ".n += 1 | .sum += .n"}}]})
}

fn data() -> Value {
    json!({"n": 0, "sum": 0, "payload": {"customer": "acme", "tags": ["a", "b", "c"]}})
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

fn run_once(rt: &tokio::runtime::Runtime, wf: &Workflow, policy: &Policy) -> Value {
    let env = Env {
        http: &DisabledHttp,
        analytics: &StatisticalAnalytics,
    };
    let run = rt.block_on(execute(wf, data(), policy, &env));
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    run.output
}

fn mean_time(
    rt: &tokio::runtime::Runtime,
    wf: &Workflow,
    policy: &Policy,
    iterations: u32,
) -> Duration {
    let started = Instant::now();
    for _ in 0..iterations {
        black_box(run_once(rt, wf, policy));
    }
    started.elapsed() / iterations
}

fn main() {
    let sandboxed = std::env::var_os("NECTAR_BENCH_SANDBOX").is_some();
    if sandboxed {
        nectar_workflow::jq::process::enable(nectar_workflow::jq::process::SandboxCommand {
            program: env!("CARGO_BIN_EXE_nectar-jq-worker").into(),
            args: Vec::new(),
        });
    }
    let policy = Policy::default();
    let rt = runtime();
    let fifty = Workflow::parse(&fifty_nodes(), &policy).expect("valid 50-node workflow");
    let one = Workflow::parse(&one_node(), &policy).expect("valid 1-node workflow");
    assert_eq!(run_once(&rt, &fifty, &policy)["sum"], json!(55));

    let mut c = Criterion::default().configure_from_args();
    {
        let mut group = c.benchmark_group("execute");
        group.throughput(Throughput::Elements(1));
        group.bench_function("1_node", |b| b.iter(|| run_once(&rt, &one, &policy)));
        group.throughput(Throughput::Elements(50));
        group.bench_function("50_nodes", |b| b.iter(|| run_once(&rt, &fifty, &policy)));
        group.finish();
    }
    {
        let source = fifty_nodes();
        let mut group = c.benchmark_group("parse");
        group.throughput(Throughput::Elements(50));
        // Expressions come from the process-wide compile cache after the first parse.
        group.bench_function("50_nodes_cached", |b| {
            b.iter(|| Workflow::parse(black_box(&source), &policy))
        });
        group.finish();
    }
    c.final_summary();

    let iterations = 2_000;
    let t1 = mean_time(&rt, &one, &policy, iterations);
    let t50 = mean_time(&rt, &fifty, &policy, iterations);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mode = if sandboxed {
        "jq in the process sandbox"
    } else {
        "jq on an in-process thread"
    };
    println!("\nengine overhead, {mode} ({iterations} runs each, mean):");
    println!("  1-node run:   {:8.2} µs", us(t1));
    println!(
        "  50-node run:  {:8.2} µs (40 nodes run, 10 skipped)",
        us(t50)
    );
    println!(
        "  per node:     {:8.2} µs  (50-node time / 50)",
        us(t50) / 50.0
    );
    println!(
        "  marginal:     {:8.2} µs  ((50-node − 1-node) / 49)",
        (us(t50) - us(t1)) / 49.0
    );
}
