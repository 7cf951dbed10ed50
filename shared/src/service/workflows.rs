//! Cloud workflow execution: license-gated, rate-limited, metered runs of the workflow engine,
//! recorded for the license to read back.
//!
//! Order of checks (each refusal happens before anything is counted): key signature (offline) →
//! license state (one consistent read) → `workflows` entitlement → graph validation → features
//! of every node type → rate window → one `workflows_per_month` unit reserved atomically. Only
//! then does any node run; a run that fails (a limit, a `fail` node) still counts.

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::check::{self, Code, Verdict};
use crate::domain::license::whole_seconds;
use crate::domain::ports::{ExecutionLog, LicenseReader, RateLimiter, UsageLedger};
use crate::domain::workflow::{ExecutionId, ExecutionRecord, WorkflowPolicy};
use crate::domain::{DomainError, Feature, LicenseId, Period, Plan};
use crate::token::{KeyRing, LicenseKey};

/// A parsed execution request.
#[derive(Debug, Clone)]
pub struct ExecuteCommand {
    /// From `Authorization: License <key>`.
    pub key: LicenseKey,
    /// The caller's workflow id (1..=128 printable characters).
    pub workflow_id: String,
    /// The workflow object (`{nodes, start?}`), validated by the engine.
    pub workflow: Value,
    /// The input.
    pub data: Value,
    /// The id this execution will have.
    pub execution_id: ExecutionId,
}

/// Why an execution was refused. Nothing was counted.
#[derive(Debug)]
pub enum Refusal {
    /// The key or the license is not acceptable (`INVALID_KEY`, `NOT_FOUND`, `REVOKED`,
    /// `SUSPENDED`, `EXPIRED`, `FEATURE_NOT_ENTITLED` for `workflows` itself).
    License(Verdict),
    /// The graph is invalid; every problem with its JSON pointer.
    Invalid(nectar_workflow::ValidationErrors),
    /// A node type needs a feature the license lacks.
    NodeNotEntitled {
        /// The feature.
        feature: String,
        /// The first node needing it.
        node_id: String,
        /// Its type.
        node_type: String,
        /// Its JSON pointer.
        pointer: String,
    },
    /// Too many executions this minute.
    RateLimited {
        /// Executions allowed per minute.
        limit: u64,
        /// Seconds until the window ends.
        retry_after: u64,
    },
    /// The monthly allowance is used up.
    UsageExceeded {
        /// The monthly limit.
        limit: u64,
        /// Seconds until the next period.
        retry_after: u64,
    },
    /// Storage failed.
    Domain(DomainError),
}

impl From<DomainError> for Refusal {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

impl From<crate::domain::StoreError> for Refusal {
    fn from(e: crate::domain::StoreError) -> Self {
        Self::Domain(e.into())
    }
}

/// A run that happened (and was counted).
#[derive(Debug, Clone)]
pub struct Executed {
    /// The response body: `{executionId, workflowId, status, output, error?, steps, durationMs,
    /// usage: {used, limit, remaining}}`.
    pub body: Value,
}

/// The feature every execution needs.
pub fn workflows_feature() -> Feature {
    Feature::parse("workflows").unwrap_or_else(|_| unreachable!("a valid feature name"))
}

/// Runs a workflow for the license of `cmd.key` under its plan's `policy`.
#[tracing::instrument(skip_all, fields(execution_id = %cmd.execution_id))]
pub async fn execute_workflow<S>(
    ring: &KeyRing,
    store: &S,
    env: &nectar_workflow::Env<'_>,
    policy: impl Fn(Plan) -> WorkflowPolicy,
    cmd: ExecuteCommand,
    now: OffsetDateTime,
) -> Result<Executed, Refusal>
where
    S: LicenseReader + UsageLedger + RateLimiter + ExecutionLog + ?Sized,
{
    let now = whole_seconds(now);
    let claims = ring
        .verify_license(&cmd.key)
        .map_err(|r| Refusal::License(r.into()))?;
    let Some(license) = store.license(&claims.jti).await? else {
        return Err(Refusal::License(Verdict::new(
            Code::NotFound,
            format!("no license {} on record", claims.jti),
        )));
    };
    check::check_status(&claims, &license, now).map_err(Refusal::License)?;
    let workflows = workflows_feature();
    if !license.has_feature(&workflows) {
        return Err(Refusal::License(Verdict::new(
            Code::FeatureNotEntitled,
            "the license does not include feature workflows",
        )));
    }
    let policy = policy(license.plan);
    let workflow = nectar_workflow::Workflow::parse(&cmd.workflow, &policy.engine)
        .map_err(Refusal::Invalid)?;
    for need in workflow.required_features() {
        let entitled = Feature::parse(need.feature).is_ok_and(|f| license.has_feature(&f));
        if !entitled {
            return Err(Refusal::NodeNotEntitled {
                feature: need.feature.to_owned(),
                node_id: need.node_id.clone(),
                node_type: need.node_type.as_str().to_owned(),
                pointer: need.pointer.clone(),
            });
        }
    }

    let (window_start, window) = minute_window(now);
    if !store
        .admit(
            license.id.as_str(),
            window_start,
            window,
            policy.rate_per_minute,
        )
        .await?
    {
        return Err(Refusal::RateLimited {
            limit: policy.rate_per_minute,
            retry_after: seconds_until(window_start + window, now),
        });
    }
    let limit = license.limits.workflows_per_month;
    let Some(used) = store
        .reserve(&license.id, &workflows, now, 1, limit)
        .await?
    else {
        let next_period = Period::containing(now).next().start();
        return Err(Refusal::UsageExceeded {
            limit,
            retry_after: seconds_until(next_period, now),
        });
    };

    let run = nectar_workflow::execute(&workflow, cmd.data, &policy.engine, env).await;
    tracing::info!(
        license_id = %license.id,
        status = ?run.status,
        steps = run.steps.len(),
        duration_ms = run.duration_ms,
        "workflow executed"
    );
    let mut body = json!({
        "executionId": cmd.execution_id.to_string(),
        "workflowId": cmd.workflow_id,
        "licenseId": license.id.as_str(),
        "startedAt": crate::adapters::dynamo::keys::sortable_time(now),
        "usage": {"used": used, "limit": limit, "remaining": limit.saturating_sub(used)},
    });
    if let (Some(obj), Ok(Value::Object(run))) = (body.as_object_mut(), serde_json::to_value(&run))
    {
        obj.extend(run);
    }
    let record = ExecutionRecord {
        id: cmd.execution_id,
        license_id: license.id.clone(),
        workflow_id: cmd.workflow_id,
        started_at: now,
        body: body.clone(),
    };
    // The run happened and was counted: a lost record must not turn it into an error.
    if let Err(e) = store.record_execution(&record).await {
        tracing::error!(error = %e, "execution not recorded");
    }
    Ok(Executed { body })
}

/// Why an execution cannot be read.
#[derive(Debug)]
pub enum ReadRefusal {
    /// The key is not acceptable.
    License(Verdict),
    /// No such execution for this license (another license's executions read as absent).
    NotFound,
    /// Storage failed.
    Domain(DomainError),
}

/// Reads an execution recorded for the license of `key` — and only for it, while the license is
/// in force (a revoked or suspended key reads nothing, as it runs nothing).
pub async fn execution_of<S>(
    ring: &KeyRing,
    store: &S,
    key: &LicenseKey,
    id: &ExecutionId,
    now: OffsetDateTime,
) -> Result<Value, ReadRefusal>
where
    S: ExecutionLog + LicenseReader + ?Sized,
{
    let claims = ring
        .verify_license(key)
        .map_err(|r| ReadRefusal::License(r.into()))?;
    let license = store
        .license(&claims.jti)
        .await
        .map_err(|e| ReadRefusal::Domain(e.into()))?
        .ok_or_else(|| {
            ReadRefusal::License(Verdict::new(
                Code::NotFound,
                format!("no license {} on record", claims.jti),
            ))
        })?;
    check::check_status(&claims, &license, now).map_err(ReadRefusal::License)?;
    match store.execution(id).await {
        Ok(Some(r)) if r.license_id == claims.jti => Ok(r.body),
        Ok(_) => Err(ReadRefusal::NotFound),
        Err(e) => Err(ReadRefusal::Domain(e.into())),
    }
}

fn minute_window(now: OffsetDateTime) -> (OffsetDateTime, Duration) {
    let start = now - Duration::seconds(i64::from(now.second()));
    (start, Duration::MINUTE)
}

fn seconds_until(t: OffsetDateTime, now: OffsetDateTime) -> u64 {
    u64::try_from((t - now).whole_seconds()).unwrap_or(0).max(1)
}

/// The license a key claims, without checking anything but the signature (for logs and tests).
pub fn claimed_license(ring: &KeyRing, key: &LicenseKey) -> Option<LicenseId> {
    ring.verify_license(key).ok().map(|c| c.jti)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn rate_windows_are_whole_minutes_and_retry_after_counts_to_their_end() {
        let now = datetime!(2026-06-01 12:34:56 UTC);
        let (start, len) = minute_window(now);
        assert_eq!(start, datetime!(2026-06-01 12:34:00 UTC));
        assert_eq!(seconds_until(start + len, now), 4);
        assert_eq!(seconds_until(now, now), 1, "never 0: a client must wait");
    }
}
