//! Lifecycle handler: which jobs to run → `service::lifecycle::run` → a JSON report.
//!
//! The schedule sends a plain EventBridge "Scheduled Event" (no custom input): every job runs,
//! then the `metrics` job records today's snapshot (`service::metrics::record_daily`). An operator
//! may invoke the function with `{"jobs": ["expiry", "metrics", ...]}` to run some by hand.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::domain::ports::{Clock, EventPublisher, FleetIndex, MetricsStore};
use shared::domain::revenue::PriceList;
use shared::service::lifecycle::{Job, LifecycleStore, Settings, run};

/// What the handler needs.
pub struct Deps<S, P> {
    /// Licenses, installations, the notice ledger.
    pub store: S,
    /// The events topic.
    pub publisher: P,
    /// Time.
    pub clock: Box<dyn Clock>,
    /// Per-run bounds.
    pub settings: Settings,
    /// Prices for the metrics snapshot.
    pub prices: PriceList,
}

/// The name of the daily metrics job (not a sweep of `service::lifecycle`).
const METRICS: &str = "metrics";

/// The two ways the function is invoked.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Trigger {
    /// By hand: `{"jobs": [...]}`.
    Manual {
        /// Job names (`expiry_warnings`, `expiry`, `usage_warnings`, `installations`).
        jobs: Vec<String>,
    },
    /// By the schedule.
    Scheduled(Box<EventBridgeEvent<Value>>),
}

/// Runs the selected jobs. Fails (so the invocation is retried and alarms fire) if a job could
/// not query its index; per-candidate failures are only counted, and retried on a later run.
pub async fn handle<S, P>(deps: &Deps<S, P>, event: LambdaEvent<Value>) -> Result<Value, Error>
where
    S: LifecycleStore + FleetIndex + MetricsStore,
    P: EventPublisher,
{
    let (jobs, metrics) = select_jobs(event.payload)?;
    let reports = run(
        &deps.store,
        &deps.publisher,
        &jobs,
        deps.clock.now(),
        deps.settings,
    )
    .await;
    let mut failed = Vec::new();
    let mut done = Vec::new();
    for (job, report) in jobs.iter().zip(reports) {
        match report {
            Ok(r) => done.push(json!(r)),
            Err(_) => failed.push(job.name()),
        }
    }
    if metrics {
        match shared::service::metrics::record_daily(&deps.store, &deps.prices, deps.clock.now())
            .await
        {
            Ok(s) => done.push(json!({"job": METRICS, "date": s.date})),
            Err(e) => {
                tracing::error!(error = %e, "metrics job failed");
                failed.push(METRICS);
            }
        }
    }
    if !failed.is_empty() {
        return Err(format!("lifecycle jobs failed: {}", failed.join(", ")).into());
    }
    Ok(json!({ "jobs": done }))
}

/// The sweeps to run, and whether to record the metrics snapshot.
fn select_jobs(payload: Value) -> Result<(Vec<Job>, bool), Error> {
    match serde_json::from_value::<Trigger>(payload) {
        Ok(Trigger::Scheduled(ev)) => {
            tracing::info!(detail_type = %ev.detail_type, id = ?ev.id, "scheduled run");
            Ok((Job::ALL.to_vec(), true))
        }
        Ok(Trigger::Manual { jobs }) => {
            if jobs.is_empty() {
                return Err("`jobs` is empty; name at least one job".into());
            }
            let metrics = jobs.iter().any(|j| j == METRICS);
            let sweeps = jobs
                .iter()
                .filter(|j| *j != METRICS)
                .map(|name| {
                    Job::parse(name).ok_or_else(|| {
                        Error::from(format!(
                            "unknown job `{name}`; known: expiry_warnings, expiry, usage_warnings, installations, seats, metrics"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok((sweeps, metrics))
        }
        Err(_) => Err("expected an EventBridge scheduled event or {\"jobs\": [...]}".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULED: &str = r#"{
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-28T12:00:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/nectar-lifecycle"],
        "detail": {}
    }"#;

    #[test]
    fn a_scheduled_event_runs_every_job() {
        let event: Value = serde_json::from_str(SCHEDULED).expect("json");
        assert_eq!(
            select_jobs(event).expect("valid"),
            (Job::ALL.to_vec(), true)
        );
    }

    #[test]
    fn a_manual_invocation_runs_the_named_jobs() {
        let jobs = select_jobs(json!({"jobs": ["installations", "expiry"]})).expect("valid");
        assert_eq!(jobs, (vec![Job::Installations, Job::Expiry], false));
        let jobs = select_jobs(json!({"jobs": ["metrics"]})).expect("valid");
        assert_eq!(jobs, (vec![], true));
    }

    #[test]
    fn unknown_or_missing_jobs_are_refused_with_the_known_names() {
        let e = select_jobs(json!({"jobs": ["expire"]})).expect_err("unknown");
        assert!(e.to_string().contains("usage_warnings"), "{e}");
        assert!(select_jobs(json!({"jobs": []})).is_err());
        assert!(select_jobs(json!({"hello": 1})).is_err());
    }
}
