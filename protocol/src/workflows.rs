//! `POST /api/workflows/execute`: the execution request body.
//!
//! Two shapes are accepted: `{workflowId, workflow: {nodes, start?}, data?}` and the seed's flat
//! `{workflowId, nodes, start?, data?}`. The workflow document itself stays raw JSON here: the
//! engine validates it and names the offending node path, which a serde type could not.

use serde::{Deserialize, Serialize};

/// The body of `POST /api/workflows/execute`, in either accepted shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteRequest {
    /// The caller's name for the workflow (1..=128 printable characters).
    pub workflow_id: String,
    /// The workflow document, `{nodes, start?}`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub workflow: Option<serde_json::Value>,
    /// Flat shape: the nodes, instead of `workflow`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub nodes: Option<serde_json::Value>,
    /// Flat shape: the start node, instead of `workflow.start`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<serde_json::Value>,
    /// The input document (default `{}`; an explicit `null` is passed on as `null`).
    #[serde(default = "empty_object")]
    pub data: serde_json::Value,
}

/// A member that is present is `Some`, even when it is `null`: the shape rules ("`start` belongs
/// inside `workflow`", "not both") are about which members were sent, not their values.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}
