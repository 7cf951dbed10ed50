//! Limits a workflow is validated and executed under.

use std::time::Duration;

/// Limits applied to one workflow: some at validation ([`crate::Workflow::parse`]), the rest
/// while it runs ([`crate::execute`]). Exceeding a run limit fails the run with
/// `STEP_LIMIT`, `TIME_LIMIT`, `OUTPUT_LIMIT`, `VALUE_LIMIT` or `MEMORY_LIMIT`; it still ran, so a caller that
/// meters executions counts it.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Most nodes a workflow may declare; more is refused at `/nodes` without looking further.
    pub max_nodes: usize,
    /// Most node executions in one run.
    pub max_steps: usize,
    /// Wall-clock budget of one run, in-flight HTTP calls and jq evaluations included.
    pub max_wall: Duration,
    /// Most bytes of the final output, serialized as compact JSON.
    pub max_output_bytes: usize,
    /// Most bytes (compact JSON) of any value passed between nodes.
    pub max_value_bytes: usize,
    /// Most results a collecting jq expression (`collect: true`) may produce.
    pub max_results: usize,
    /// Timeout of one `http` node's call (also bounded by what is left of `max_wall`).
    pub http_timeout: Duration,
    /// Most characters of one jq expression or template.
    pub max_expression_chars: usize,
    /// Whether jq expressions may define functions (`def`): jaq does not bound recursion depth
    /// and a stack overflow aborts the whole process, so this stays off for untrusted workflows.
    pub allow_jq_definitions: bool,
    /// Most memory one jq evaluation may use, in bytes, when the process sandbox is enabled
    /// (`jq::process`): beyond it the run fails with `MEMORY_LIMIT`.
    pub max_memory_bytes: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_nodes: 100,
            max_steps: 500,
            max_wall: Duration::from_secs(10),
            max_output_bytes: 1024 * 1024,
            max_value_bytes: 4 * 1024 * 1024,
            max_results: 10_000,
            http_timeout: Duration::from_secs(5),
            max_expression_chars: 4096,
            allow_jq_definitions: false,
            max_memory_bytes: 256 * 1024 * 1024,
        }
    }
}
