//! The workflow model and its validation: a `workflow` JSON object becomes a [`Workflow`] only
//! if every problem check passes; otherwise every problem found is reported, each with a JSON
//! pointer into the workflow object.
//!
//! # Shape
//!
//! ```json
//! {"start": "fetch",                       // optional; default: the first node
//!  "nodes": [{"id": "fetch", "type": "http", "params": {...}, "next": "check"},
//!            {"id": "check", "type": "condition", "params": {"expr": ".status == 200"},
//!             "branches": {"true": "ok", "false": "bad"}}, ...]}
//! ```
//!
//! Both the workflow and each node may carry a `name` and a `description` (strings, ignored);
//! any other unknown key is refused. A node id is 1–64 characters of `A-Z a-z 0-9 _ -`.
//!
//! # Edges
//!
//! `next` is one id or a list of ids (fan-out: every listed successor runs, in list order, on
//! the node's output). `condition` nodes route with `branches` instead; `fail` and `output`
//! end the run and have no successors.
//!
//! # Graph rules
//!
//! * every reference (`start`, `next`, branch targets) names an existing node;
//! * no cycles: each edge closing a cycle is reported at its own pointer;
//! * every node is reachable from the start node — an unreachable node is an error, since it
//!   can only be a mistake (it would never run);
//! * only `merge` nodes may have more than one predecessor (a merge joins paths; any other
//!   node would be ambiguous about which input it runs on), and a merge has at least one.
//!
//! This file owns the node and workflow types and their public API; the graph checks are in
//! `validate.rs`, one node's fields and edges in `node.rs`, and each node type's `params` in
//! `params.rs`.

use serde::Serialize;
use serde_json::Value;

use crate::analytics::Operation;
use crate::jq::{Jq, Template};
use crate::policy::Policy;

mod node;
mod params;
mod validate;

use validate::Validator;

/// Longest node id accepted.
pub const MAX_ID_CHARS: usize = 64;

/// The kind of a node, as written in its `type` field.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum NodeType {
    /// `transform`: a jq program maps the input.
    Transform,
    /// `condition`: a jq program picks the `true` or `false` branch.
    Condition,
    /// `set`: constants, jq results and templates written at paths of the input.
    Set,
    /// `merge`: joins the outputs of its predecessors.
    Merge,
    /// `http`: an outbound call through the [`crate::HttpCaller`] port.
    Http,
    /// `ai`: a statistical analysis through the [`crate::Analytics`] port.
    Ai,
    /// `fail`: ends the run as failed.
    Fail,
    /// `output`: ends the run successfully.
    Output,
}

impl NodeType {
    /// The name used in the `type` field.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    fn is_terminal(self) -> bool {
        matches!(self, Self::Fail | Self::Output)
    }
}

impl std::fmt::Display for NodeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stable code of a validation problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IssueCode {
    /// The workflow or a node is not a JSON object.
    NotAnObject,
    /// A required field or parameter is absent.
    MissingField,
    /// A field or parameter has the wrong JSON type or an unaccepted value.
    InvalidField,
    /// A key that this object does not accept.
    UnknownField,
    /// `nodes` is empty.
    EmptyWorkflow,
    /// More nodes than the policy allows (reported at `/nodes`; nothing else is checked).
    TooManyNodes,
    /// An id that is empty, too long or has characters outside `A-Z a-z 0-9 _ -`.
    InvalidId,
    /// An id already used by an earlier node.
    DuplicateId,
    /// A `type` that is not one of the node types.
    UnknownNodeType,
    /// `start`, `next` or a branch names no node.
    UnknownReference,
    /// The same successor listed twice in one `next`.
    DuplicateEdge,
    /// `next` or `branches` on a node type that does not take it.
    EdgeNotAllowed,
    /// An edge that closes a cycle.
    Cycle,
    /// A node the start node cannot reach.
    UnreachableNode,
    /// A non-merge node with several predecessors, or a merge with none.
    InvalidJoin,
    /// A jq expression or `{{ }}` template that does not compile.
    InvalidExpression,
    /// Two `set` paths that are equal or one a prefix of the other.
    PathConflict,
}

/// One validation problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    /// JSON pointer into the workflow object, e.g. `/nodes/3/next`.
    pub pointer: String,
    /// Id of the node concerned, when it has a usable one.
    pub node_id: Option<String>,
    /// Stable code.
    pub code: IssueCode,
    /// Human-readable explanation (the jq compiler message for expressions).
    pub message: String,
}

/// Every problem found in a refused workflow, in document order per check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("invalid workflow: {} problem(s), first: {} at {}", .issues.len(), .issues[0].message, .issues[0].pointer)]
pub struct ValidationErrors {
    /// At least one.
    pub issues: Vec<Issue>,
}

/// How a `merge` node combines what its predecessors delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMode {
    /// An object keyed by predecessor id.
    Object,
    /// An array in predecessor declaration order.
    Array,
    /// Objects deep-merged in predecessor declaration order (later keys win; non-objects replace).
    Deep,
    /// The first delivered value in predecessor declaration order (joins exclusive branches).
    First,
}

/// Where a `set` entry's value comes from.
#[derive(Clone, Debug)]
pub(crate) enum SetSource {
    Const(Value),
    Expr(Jq),
    Template(Template),
}

/// HTTP methods an `http` node may use.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method name on the wire.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Body {
    Const(Value),
    Expr(Jq),
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Transform {
        expr: Jq,
        collect: bool,
    },
    Condition {
        expr: Jq,
        on_true: Option<usize>,
        on_false: Option<usize>,
    },
    Set {
        entries: Vec<(Vec<String>, SetSource)>,
    },
    Merge {
        mode: MergeMode,
    },
    Http {
        method: Method,
        url: Template,
        headers: Vec<(String, Template)>,
        body: Option<Body>,
        fail_on_status: bool,
    },
    Ai {
        operation: Operation,
        input: Option<Jq>,
    },
    Fail {
        message: Template,
    },
    Output {
        expr: Option<Jq>,
    },
}

/// A validated node.
#[derive(Clone, Debug)]
pub struct Node {
    pub(crate) id: String,
    pub(crate) node_type: NodeType,
    pub(crate) kind: Kind,
    /// Successors in run order (for a condition: the true then the false target, deduplicated).
    pub(crate) next: Vec<usize>,
}

impl Node {
    /// The node's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The node's type.
    pub fn node_type(&self) -> NodeType {
        self.node_type
    }
}

/// A feature a workflow needs, with the first node (in declaration order) needing it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureNeed {
    /// The license feature, see [`required_feature`].
    pub feature: &'static str,
    /// Type of the first node needing it.
    pub node_type: NodeType,
    /// Id of that node.
    pub node_id: String,
    /// Pointer to that node's `type`, e.g. `/nodes/2/type`.
    pub pointer: String,
}

/// The license feature a node type needs: `integrations` for `http`, `analytics` for `ai`,
/// `workflows` for every other type.
pub fn required_feature(node_type: NodeType) -> &'static str {
    match node_type {
        NodeType::Http => "integrations",
        NodeType::Ai => "analytics",
        _ => "workflows",
    }
}

/// A validated workflow: acyclic, every node reachable from `start`, every expression compiled.
#[derive(Clone, Debug)]
pub struct Workflow {
    pub(crate) nodes: Vec<Node>,
    pub(crate) start: usize,
    /// Distinct predecessors of each node, in declaration order.
    pub(crate) preds: Vec<Vec<usize>>,
}

impl Workflow {
    /// Validates the `workflow` object under `policy`'s `max_nodes`, expression length and
    /// `allow_jq_definitions`, reporting every problem found.
    pub fn parse(workflow: &Value, policy: &Policy) -> Result<Self, ValidationErrors> {
        let mut v = Validator {
            issues: Vec::new(),
            policy,
        };
        let parsed = v.workflow(workflow);
        match parsed {
            Some(wf) if v.issues.is_empty() => Ok(wf),
            _ => Err(ValidationErrors { issues: v.issues }),
        }
    }

    /// The nodes in declaration order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The start node.
    pub fn start(&self) -> &Node {
        &self.nodes[self.start]
    }

    /// Each distinct feature the workflow needs, in order of first appearance, so a caller can
    /// refuse a workflow before any node runs (e.g. `FEATURE_NOT_ENTITLED` naming the node type).
    pub fn required_features(&self) -> Vec<FeatureNeed> {
        let mut needs: Vec<FeatureNeed> = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let feature = required_feature(node.node_type);
            if needs.iter().all(|n| n.feature != feature) {
                needs.push(FeatureNeed {
                    feature,
                    node_type: node.node_type,
                    node_id: node.id.clone(),
                    pointer: format!("/nodes/{i}/type"),
                });
            }
        }
        needs
    }
}

/// Appends `key` to a JSON pointer, escaping `~` and `/` (RFC 6901).
pub(crate) fn pointer(base: &str, key: &str) -> String {
    format!("{base}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use strum::VariantArray as _;

    use super::{Method, NodeType};

    #[test]
    fn node_types_keep_their_wire_names_and_parse_back() {
        let names: Vec<&str> = NodeType::VARIANTS.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "transform",
                "condition",
                "set",
                "merge",
                "http",
                "ai",
                "fail",
                "output"
            ]
        );
        for t in NodeType::VARIANTS {
            assert_eq!(NodeType::parse(t.as_str()), Some(*t));
            assert_eq!(t.to_string(), t.as_str());
        }
        // Exact match only: the `type` field is case-sensitive.
        assert_eq!(NodeType::parse("HTTP"), None);
        assert_eq!(NodeType::parse("loop"), None);
    }

    #[test]
    fn methods_keep_their_wire_names_and_parse_back() {
        let names: Vec<&str> = Method::VARIANTS.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["GET", "POST", "PUT", "PATCH", "DELETE"]);
        for m in Method::VARIANTS {
            assert_eq!(m.as_str().parse::<Method>().ok(), Some(*m));
        }
        assert!("get".parse::<Method>().is_err());
        assert!("HEAD".parse::<Method>().is_err());
    }
}
