//! Runaway jq programs: the run ends at the deadline and the evaluation thread stops too.
//! (Its own test binary: the runaway gauge is process-wide.)

use std::time::{Duration, Instant};

use nectar_workflow::{
    DisabledHttp, Env, ErrorCode, Policy, StatisticalAnalytics, Workflow, execute,
    runaway_evaluations,
};
use serde_json::json;

#[tokio::test]
async fn endless_generators_end_with_time_limit_and_their_threads_stop() {
    let policy = Policy {
        max_wall: Duration::from_millis(200),
        ..Policy::default()
    };
    let env = Env {
        http: &DisabledHttp,
        analytics: &StatisticalAnalytics,
    };
    let programs = [
        "last(range(1e12))",
        "reduce repeat(.) as $x (0; . + 1)",
        "[limit(1e12; repeat(.))] | length",
        "last(recurse(. + 1))",
        "[1 | while(true; . + 1)] | length",
        "0 | until(false; . + 1)",
        "[range(1e6) as $x | range(1e6)] | length",
    ];
    for program in programs {
        let wf = Workflow::parse(
            &json!({"nodes": [{"id": "spin", "type": "transform", "params": {"expr": program}}]}),
            &policy,
        )
        .expect("valid");
        let started = Instant::now();
        let run = execute(&wf, json!(1), &policy, &env).await;
        assert_eq!(
            run.error.map(|e| e.code),
            Some(ErrorCode::TimeLimit),
            "{program}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{program} took {:?}",
            started.elapsed()
        );
        let stopping = Instant::now();
        while runaway_evaluations() > 0 {
            assert!(
                stopping.elapsed() < Duration::from_secs(1),
                "the thread evaluating {program} did not stop"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
