//! Running a validated [`Workflow`]: scheduling, node semantics, limits and the trace.
//!
//! # Scheduling
//!
//! Nodes run one at a time from a first-in first-out queue, starting with the start node on
//! `data`. When a node completes it delivers its output to its successors in `next` order
//! (fan-out: each gets the same value); a `condition` delivers to one branch target only.
//! A successor that is not delivered to — the branch not taken, and transitively everything
//! only it leads to — is *skipped* and appears in the trace as such.
//!
//! A `merge` node runs once, when each of its predecessors has either delivered or been
//! skipped, on what was delivered; if nothing was, it is skipped too. So a merge behind a
//! condition never waits for the path that was not taken.
//!
//! # Ending
//!
//! * An `output` node ends the run successfully with its value; nodes still queued do not run.
//! * A `fail` node ends the run as failed (`WORKFLOW_FAILED`) with its rendered message.
//! * A failing node (jq error, HTTP error…) or an exceeded limit ends the run as failed.
//! * Otherwise the run succeeds when the queue is empty, with the output of the last node that
//!   ran and delivered to no successor (the end of the last completed path), e.g. the final
//!   merge; the value of a condition whose taken branch is absent is its input.
//!
//! The output of a failed run is `null`.
//!
//! This file owns the result types, the scheduler and the limits; what each node type does
//! is in `node.rs`.

use std::io;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::analytics::Analytics;
use crate::http::HttpCaller;
use crate::jq::JqWorker;
use crate::model::{NodeType, Workflow};
use crate::policy::Policy;

mod node;

/// The ports nodes call out through.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// Used by `http` nodes.
    pub http: &'a dyn HttpCaller,
    /// Used by `ai` nodes.
    pub analytics: &'a dyn Analytics,
}

/// Outcome of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Ended by an `output` node or by running out of work.
    Succeeded,
    /// Ended by a `fail` node, a failing node or a limit.
    Failed,
}

/// Stable code of a run failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// A jq expression raised an error, produced no result where one is needed, or too many.
    ExpressionError,
    /// A value has the wrong shape for the node (e.g. `set` on a number).
    InvalidValue,
    /// An `http` call was refused before connecting (allow-list, scheme, URL).
    HttpRefused,
    /// An `http` call failed (transport, timeout of the call, oversized response).
    HttpError,
    /// An `http` call answered 4xx/5xx and the node has `failOnStatus` (the default).
    HttpStatus,
    /// An `ai` node's analysis failed.
    AnalyticsError,
    /// A `fail` node was reached.
    WorkflowFailed,
    /// More node executions than `Policy::max_steps`.
    StepLimit,
    /// The run outlived `Policy::max_wall`.
    TimeLimit,
    /// The final output exceeds `Policy::max_output_bytes`.
    OutputLimit,
    /// A value between nodes exceeds `Policy::max_value_bytes`.
    ValueLimit,
    /// A jq evaluation needed more memory than `Policy::max_memory_bytes` (sandboxed runs).
    MemoryLimit,
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable explanation, safe to return to the workflow author.
    pub message: String,
    /// The node concerned, if any.
    pub node_id: Option<String>,
}

/// Outcome of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// The node ran.
    Succeeded,
    /// The node ran and failed (or was a `fail` node); the run ends here.
    Failed,
    /// The node was on a path not taken.
    Skipped,
}

/// One entry of the trace, in the order things happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The node.
    pub node_id: String,
    /// Its type (`type` on the wire, as the API's step shape names it).
    #[serde(rename = "type")]
    pub node_type: NodeType,
    /// What happened.
    pub status: StepStatus,
    /// Wall time of the node in milliseconds, microsecond precision (0 when skipped).
    pub duration_ms: f64,
    /// Why it failed.
    pub error: Option<String>,
}

/// The result of [`execute`], returned by the API as is (camelCase JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// Outcome.
    pub status: RunStatus,
    /// The run's output (`null` when failed).
    pub output: Value,
    /// Why it failed.
    pub error: Option<RunError>,
    /// The trace.
    pub steps: Vec<Step>,
    /// Wall time of the run in milliseconds, microsecond precision.
    pub duration_ms: f64,
}

fn ms(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// Runs `workflow` on `data` under `policy`'s run limits.
///
/// Never fails as a function: every failure, limits included, is an [`Execution`] with status
/// `failed`, since the run happened and a metering caller counts it.
pub async fn execute(
    workflow: &Workflow,
    data: Value,
    policy: &Policy,
    env: &Env<'_>,
) -> Execution {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + policy.max_wall;
    let n = workflow.nodes.len();
    let mut run = Run {
        wf: workflow,
        policy,
        env,
        deadline,
        jq: JqWorker::with_memory(policy.max_memory_bytes),
        steps: Vec::new(),
        inbox: vec![Vec::new(); n],
        settled: vec![0; n],
        queue: std::collections::VecDeque::new(),
    };
    let result = run.drive(data).await;
    let (status, output, error) = match result {
        Ok(output) => match exceeds(&output, policy.max_output_bytes) {
            None => (RunStatus::Succeeded, output, None),
            Some(size) => {
                let message = format!(
                    "the output is over {size} bytes; the limit is {}",
                    policy.max_output_bytes
                );
                (
                    RunStatus::Failed,
                    Value::Null,
                    Some(RunError {
                        code: ErrorCode::OutputLimit,
                        message,
                        node_id: None,
                    }),
                )
            }
        },
        Err(e) => (RunStatus::Failed, Value::Null, Some(e)),
    };
    Execution {
        status,
        output,
        error,
        steps: run.steps,
        duration_ms: ms(started.elapsed()),
    }
}

/// Counts compact-JSON bytes and stops writing once past the limit, so oversized values are
/// never serialized in full.
struct Meter {
    written: usize,
    limit: usize,
}

impl io::Write for Meter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        if self.written > self.limit {
            Err(io::Error::other("over the limit"))
        } else {
            Ok(buf.len())
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `Some(bytes written so far)` when `value` serializes to more than `limit` bytes.
fn exceeds(value: &Value, limit: usize) -> Option<usize> {
    let mut meter = Meter { written: 0, limit };
    serde_json::to_writer(&mut meter, value)
        .err()
        .map(|_| meter.written)
}

/// A node failure before it is attributed to the node.
struct Failure {
    code: ErrorCode,
    message: String,
}

fn failure(code: ErrorCode, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

enum Flow {
    /// Deliver `value` to these successors (indices into the workflow; may be empty).
    Continue {
        value: Value,
        targets: Vec<usize>,
    },
    Output(Value),
    Fail(String),
}

struct Run<'r> {
    wf: &'r Workflow,
    policy: &'r Policy,
    env: &'r Env<'r>,
    deadline: tokio::time::Instant,
    jq: JqWorker,
    steps: Vec<Step>,
    /// What each merge node has received, by predecessor.
    inbox: Vec<Vec<(usize, Value)>>,
    /// How many predecessors of each merge node have delivered or been skipped.
    settled: Vec<usize>,
    queue: std::collections::VecDeque<(usize, Value)>,
}

impl Run<'_> {
    async fn drive(&mut self, data: Value) -> Result<Value, RunError> {
        let mut last_end = Value::Null;
        let mut executed = 0usize;
        self.queue.push_back((self.wf.start, data));
        let wf = self.wf;
        while let Some((index, input)) = self.queue.pop_front() {
            let node = &wf.nodes[index];
            let fail = |code, message: String| RunError {
                code,
                message,
                node_id: Some(node.id.clone()),
            };
            if executed >= self.policy.max_steps {
                let message = format!(
                    "more than {} steps; node `{}` would have been next",
                    self.policy.max_steps, node.id
                );
                return Err(fail(ErrorCode::StepLimit, message));
            }
            executed += 1;
            let started = Instant::now();
            let outcome =
                match tokio::time::timeout_at(self.deadline, self.node(index, input)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(self.time_limit()),
                };
            let outcome = outcome.and_then(|flow| match flow {
                Flow::Continue { value, .. } | Flow::Output(value)
                    if exceeds(&value, self.policy.max_value_bytes).is_some() =>
                {
                    let message = format!(
                        "the node's output is over the {}-byte limit for values",
                        self.policy.max_value_bytes
                    );
                    Err(failure(ErrorCode::ValueLimit, message))
                }
                flow => Ok(flow),
            });
            let mut step = Step {
                node_id: node.id.clone(),
                node_type: node.node_type,
                status: StepStatus::Succeeded,
                duration_ms: ms(started.elapsed()),
                error: None,
            };
            match outcome {
                Err(f) => {
                    step.status = StepStatus::Failed;
                    step.error = Some(f.message.clone());
                    self.steps.push(step);
                    return Err(fail(f.code, f.message));
                }
                Ok(Flow::Output(value)) => {
                    self.steps.push(step);
                    return Ok(value);
                }
                Ok(Flow::Fail(message)) => {
                    step.status = StepStatus::Failed;
                    step.error = Some(message.clone());
                    self.steps.push(step);
                    return Err(fail(ErrorCode::WorkflowFailed, message));
                }
                Ok(Flow::Continue { value, targets }) => {
                    self.steps.push(step);
                    if targets.is_empty() {
                        last_end = value;
                        for &succ in &node.next {
                            self.not_delivered(index, succ);
                        }
                    } else {
                        for &succ in &node.next {
                            if targets.contains(&succ) {
                                self.deliver(index, succ, value.clone());
                            } else {
                                self.not_delivered(index, succ);
                            }
                        }
                    }
                }
            }
        }
        Ok(last_end)
    }

    fn time_limit(&self) -> Failure {
        failure(
            ErrorCode::TimeLimit,
            format!(
                "the run exceeded its time limit of {:?}",
                self.policy.max_wall
            ),
        )
    }

    fn is_merge(&self, index: usize) -> bool {
        self.wf.nodes[index].node_type == NodeType::Merge
    }

    fn deliver(&mut self, from: usize, to: usize, value: Value) {
        if self.is_merge(to) {
            self.inbox[to].push((from, value));
            self.settle(to);
        } else {
            self.queue.push_back((to, value));
        }
    }

    /// `from` ran or was skipped without delivering to `to`.
    fn not_delivered(&mut self, _from: usize, to: usize) {
        let mut skipped = Vec::new();
        if self.is_merge(to) {
            if self.settle(to) {
                skipped.push(to);
            }
        } else {
            // Only merges have several predecessors, so `from` was this node's only way in.
            skipped.push(to);
        }
        while let Some(node) = skipped.pop() {
            let n = &self.wf.nodes[node];
            self.steps.push(Step {
                node_id: n.id.clone(),
                node_type: n.node_type,
                status: StepStatus::Skipped,
                duration_ms: 0.0,
                error: None,
            });
            for &succ in n.next.iter().rev() {
                if !self.is_merge(succ) || self.settle(succ) {
                    skipped.push(succ);
                }
            }
        }
    }

    /// Counts one more settled predecessor of merge `to`; queues the merge when all are settled
    /// and something was delivered. Returns whether it is now to be skipped.
    fn settle(&mut self, to: usize) -> bool {
        self.settled[to] += 1;
        if self.settled[to] < self.wf.preds[to].len() {
            return false;
        }
        if self.inbox[to].is_empty() {
            return true;
        }
        self.queue.push_back((to, Value::Null));
        false
    }
}
