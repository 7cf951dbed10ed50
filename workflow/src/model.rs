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

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::analytics::Operation;
use crate::jq::{Jq, Template};
use crate::policy::Policy;

/// Longest node id accepted.
pub const MAX_ID_CHARS: usize = 64;

/// The kind of a node, as written in its `type` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
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
    const ALL: [Self; 8] = [
        Self::Transform,
        Self::Condition,
        Self::Set,
        Self::Merge,
        Self::Http,
        Self::Ai,
        Self::Fail,
        Self::Output,
    ];

    /// The name used in the `type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transform => "transform",
            Self::Condition => "condition",
            Self::Set => "set",
            Self::Merge => "merge",
            Self::Http => "http",
            Self::Ai => "ai",
            Self::Fail => "fail",
            Self::Output => "output",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
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
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
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

struct Validator<'p> {
    issues: Vec<Issue>,
    policy: &'p Policy,
}

/// A reference from one node to another, as written.
struct Ref {
    target: String,
    pointer: String,
}

struct Draft {
    id: Option<String>,
    node_type: Option<NodeType>,
    kind: Option<Kind>,
    next: Vec<Ref>,
    branches: [Option<Ref>; 2],
}

impl Validator<'_> {
    fn issue(
        &mut self,
        pointer: impl Into<String>,
        node_id: Option<&str>,
        code: IssueCode,
        message: impl Into<String>,
    ) {
        self.issues.push(Issue {
            pointer: pointer.into(),
            node_id: node_id.map(str::to_owned),
            code,
            message: message.into(),
        });
    }

    fn unknown_keys(
        &mut self,
        obj: &Map<String, Value>,
        base: &str,
        node_id: Option<&str>,
        allowed: &[&str],
    ) {
        for key in obj.keys().filter(|k| !allowed.contains(&k.as_str())) {
            let expected = allowed.join(", ");
            self.issue(
                pointer(base, key),
                node_id,
                IssueCode::UnknownField,
                format!("unknown field `{key}` (expected one of: {expected})"),
            );
        }
    }

    fn workflow(&mut self, wf: &Value) -> Option<Workflow> {
        let Some(obj) = wf.as_object() else {
            self.issue(
                "",
                None,
                IssueCode::NotAnObject,
                format!("the workflow must be an object, not {}", describe(wf)),
            );
            return None;
        };
        self.unknown_keys(obj, "", None, &["nodes", "start", "name", "description"]);
        let nodes = match obj.get("nodes") {
            None => {
                self.issue(
                    "/nodes",
                    None,
                    IssueCode::MissingField,
                    "`nodes` is required",
                );
                return None;
            }
            Some(Value::Array(nodes)) => nodes,
            Some(other) => {
                self.issue(
                    "/nodes",
                    None,
                    IssueCode::InvalidField,
                    format!("`nodes` must be an array, not {}", describe(other)),
                );
                return None;
            }
        };
        if nodes.is_empty() {
            self.issue(
                "/nodes",
                None,
                IssueCode::EmptyWorkflow,
                "a workflow needs at least one node",
            );
            return None;
        }
        if nodes.len() > self.policy.max_nodes {
            // Refused before looking at any node: validating a huge graph is itself the cost.
            self.issues.push(Issue {
                pointer: "/nodes".into(),
                node_id: None,
                code: IssueCode::TooManyNodes,
                message: format!(
                    "{} nodes exceed the limit of {}",
                    nodes.len(),
                    self.policy.max_nodes
                ),
            });
            return None;
        }

        let ids = self.collect_ids(nodes);
        let index: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .rev() // the first declaration of a duplicated id wins
            .filter_map(|(i, id)| id.as_deref().map(|id| (id, i)))
            .collect();
        let drafts: Vec<Draft> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| self.node(i, n, ids[i].clone()))
            .collect();

        let start = match obj.get("start") {
            None => Some(0),
            Some(Value::String(s)) => {
                let found = index.get(s.as_str()).copied();
                if found.is_none() {
                    self.issue(
                        "/start",
                        None,
                        IssueCode::UnknownReference,
                        format!("start node `{s}` does not exist"),
                    );
                }
                found
            }
            Some(other) => {
                self.issue(
                    "/start",
                    None,
                    IssueCode::InvalidField,
                    format!("`start` must be a node id string, not {}", describe(other)),
                );
                None
            }
        };

        // Edges resolved to indices; unresolved ones are reported and left out of graph checks.
        let mut edges: Vec<Vec<(usize, String)>> = vec![Vec::new(); drafts.len()];
        let mut resolved_next: Vec<Vec<usize>> = vec![Vec::new(); drafts.len()];
        let mut resolved_branches: Vec<[Option<usize>; 2]> = vec![[None, None]; drafts.len()];
        for (i, d) in drafts.iter().enumerate() {
            let node_id = d.id.as_deref();
            for r in &d.next {
                if let Some(t) = self.resolve(&index, r, node_id) {
                    resolved_next[i].push(t);
                    edges[i].push((t, r.pointer.clone()));
                }
            }
            for (slot, r) in d.branches.iter().enumerate() {
                if let Some(r) = r
                    && let Some(t) = self.resolve(&index, r, node_id)
                {
                    resolved_branches[i][slot] = Some(t);
                    if edges[i].iter().all(|(e, _)| *e != t) {
                        edges[i].push((t, r.pointer.clone()));
                    }
                }
            }
        }

        let label = |i: usize| ids[i].clone().unwrap_or_else(|| format!("#{i}"));
        self.cycles(&edges, &label, &ids);
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); drafts.len()];
        for (from, out) in edges.iter().enumerate() {
            for (to, _) in out {
                if !preds[*to].contains(&from) {
                    preds[*to].push(from);
                }
            }
        }
        if let Some(start) = start {
            self.reachability(start, &edges, &ids);
        }
        for (i, d) in drafts.iter().enumerate() {
            let merge = d.node_type == Some(NodeType::Merge);
            let node_id = d.id.as_deref();
            if !merge && preds[i].len() > 1 {
                let names: Vec<String> = preds[i]
                    .iter()
                    .map(|p| format!("`{}`", label(*p)))
                    .collect();
                self.issue(
                    format!("/nodes/{i}"),
                    node_id,
                    IssueCode::InvalidJoin,
                    format!(
                        "only a merge node may have several predecessors; this one has {}",
                        names.join(", ")
                    ),
                );
            }
            if merge && preds[i].is_empty() {
                self.issue(
                    format!("/nodes/{i}"),
                    node_id,
                    IssueCode::InvalidJoin,
                    "a merge node needs at least one predecessor",
                );
            }
        }

        if !self.issues.is_empty() {
            return None;
        }
        let start = start?;
        let mut built = Vec::with_capacity(drafts.len());
        for (i, d) in drafts.into_iter().enumerate() {
            let (id, node_type, mut kind) = (d.id?, d.node_type?, d.kind?);
            if let Kind::Condition {
                on_true, on_false, ..
            } = &mut kind
            {
                [*on_true, *on_false] = resolved_branches[i];
            }
            let next = edges[i].iter().map(|(t, _)| *t).collect();
            built.push(Node {
                id,
                node_type,
                kind,
                next,
            });
        }
        Some(Workflow {
            nodes: built,
            start,
            preds,
        })
    }

    fn collect_ids(&mut self, nodes: &[Value]) -> Vec<Option<String>> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut ids = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            let at = format!("/nodes/{i}/id");
            let id = match node.get("id") {
                None if node.is_object() => {
                    self.issue(at, None, IssueCode::MissingField, "`id` is required");
                    None
                }
                None => None, // reported as NOT_AN_OBJECT by `node`
                Some(Value::String(id)) => {
                    let valid_chars = id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if id.is_empty() || id.chars().count() > MAX_ID_CHARS || !valid_chars {
                        self.issue(
                            at,
                            None,
                            IssueCode::InvalidId,
                            format!("node ids are 1–{MAX_ID_CHARS} characters of A-Z a-z 0-9 _ -, not {id:?}"),
                        );
                        None
                    } else if let Some(first) = seen.get(id) {
                        self.issue(
                            at,
                            Some(id),
                            IssueCode::DuplicateId,
                            format!("id `{id}` is already used by /nodes/{first}"),
                        );
                        None
                    } else {
                        seen.insert(id.clone(), i);
                        Some(id.clone())
                    }
                }
                Some(other) => {
                    self.issue(
                        at,
                        None,
                        IssueCode::InvalidField,
                        format!("`id` must be a string, not {}", describe(other)),
                    );
                    None
                }
            };
            ids.push(id);
        }
        ids
    }

    fn resolve(
        &mut self,
        index: &HashMap<&str, usize>,
        r: &Ref,
        node_id: Option<&str>,
    ) -> Option<usize> {
        let found = index.get(r.target.as_str()).copied();
        if found.is_none() {
            self.issue(
                &r.pointer,
                node_id,
                IssueCode::UnknownReference,
                format!("node `{}` does not exist", r.target),
            );
        }
        found
    }

    fn node(&mut self, i: usize, node: &Value, id: Option<String>) -> Draft {
        let base = format!("/nodes/{i}");
        let mut draft = Draft {
            id,
            node_type: None,
            kind: None,
            next: Vec::new(),
            branches: [None, None],
        };
        let Some(obj) = node.as_object() else {
            self.issue(
                &base,
                None,
                IssueCode::NotAnObject,
                format!("a node must be an object, not {}", describe(node)),
            );
            return draft;
        };
        let node_id = draft.id.clone();
        let node_id = node_id.as_deref();
        self.unknown_keys(
            obj,
            &base,
            node_id,
            &[
                "id",
                "type",
                "params",
                "next",
                "branches",
                "name",
                "description",
            ],
        );
        let node_type = match obj.get("type") {
            None => {
                self.issue(
                    format!("{base}/type"),
                    node_id,
                    IssueCode::MissingField,
                    "`type` is required",
                );
                None
            }
            Some(Value::String(t)) => {
                let parsed = NodeType::parse(t);
                if parsed.is_none() {
                    let known: Vec<&str> = NodeType::ALL.iter().map(|t| t.as_str()).collect();
                    self.issue(
                        format!("{base}/type"),
                        node_id,
                        IssueCode::UnknownNodeType,
                        format!(
                            "unknown node type `{t}` (expected one of: {})",
                            known.join(", ")
                        ),
                    );
                }
                parsed
            }
            Some(other) => {
                self.issue(
                    format!("{base}/type"),
                    node_id,
                    IssueCode::InvalidField,
                    format!("`type` must be a string, not {}", describe(other)),
                );
                None
            }
        };
        draft.node_type = node_type;

        let empty = Map::new();
        let params = match obj.get("params") {
            None => Some(&empty),
            Some(Value::Object(p)) => Some(p),
            Some(other) => {
                self.issue(
                    format!("{base}/params"),
                    node_id,
                    IssueCode::InvalidField,
                    format!("`params` must be an object, not {}", describe(other)),
                );
                None
            }
        };
        if let (Some(t), Some(params)) = (node_type, params) {
            let mut p = Params {
                v: self,
                map: params,
                base: format!("{base}/params"),
                node_id,
            };
            draft.kind = p.kind(t);
        }

        let takes_next = node_type.is_some_and(|t| t != NodeType::Condition && !t.is_terminal());
        let takes_branches = node_type == Some(NodeType::Condition);
        if let Some(next) = obj.get("next") {
            let at = format!("{base}/next");
            if node_type.is_some() && !takes_next {
                let t = node_type.map_or("", NodeType::as_str);
                let why = if takes_branches {
                    "routes with `branches`"
                } else {
                    "ends the run"
                };
                self.issue(
                    at,
                    node_id,
                    IssueCode::EdgeNotAllowed,
                    format!("a {t} node {why}; it takes no `next`"),
                );
            } else {
                draft.next = self.next_refs(next, &at, node_id);
            }
        }
        match obj.get("branches") {
            Some(_) if node_type.is_some() && !takes_branches => {
                self.issue(
                    format!("{base}/branches"),
                    node_id,
                    IssueCode::EdgeNotAllowed,
                    "only condition nodes take `branches`; use `next`",
                );
            }
            Some(Value::Object(b)) => {
                self.unknown_keys(b, &format!("{base}/branches"), node_id, &["true", "false"]);
                for (slot, key) in ["true", "false"].into_iter().enumerate() {
                    let at = format!("{base}/branches/{key}");
                    match b.get(key) {
                        None => {}
                        Some(Value::String(t)) => {
                            draft.branches[slot] = Some(Ref {
                                target: t.clone(),
                                pointer: at,
                            })
                        }
                        Some(other) => {
                            self.issue(
                                at,
                                node_id,
                                IssueCode::InvalidField,
                                format!(
                                    "a branch target must be a node id string, not {}",
                                    describe(other)
                                ),
                            );
                        }
                    }
                }
            }
            Some(other) => {
                self.issue(
                    format!("{base}/branches"),
                    node_id,
                    IssueCode::InvalidField,
                    format!("`branches` must be an object, not {}", describe(other)),
                );
            }
            None => {}
        }
        draft
    }

    fn next_refs(&mut self, next: &Value, at: &str, node_id: Option<&str>) -> Vec<Ref> {
        match next {
            Value::String(t) => vec![Ref {
                target: t.clone(),
                pointer: at.to_owned(),
            }],
            Value::Array(items) => {
                let mut refs: Vec<Ref> = Vec::new();
                for (j, item) in items.iter().enumerate() {
                    let item_at = format!("{at}/{j}");
                    match item {
                        Value::String(t) if refs.iter().any(|r| &r.target == t) => {
                            self.issue(
                                item_at,
                                node_id,
                                IssueCode::DuplicateEdge,
                                format!("`{t}` is already listed in `next`"),
                            );
                        }
                        Value::String(t) => refs.push(Ref {
                            target: t.clone(),
                            pointer: item_at,
                        }),
                        other => {
                            self.issue(
                                item_at,
                                node_id,
                                IssueCode::InvalidField,
                                format!(
                                    "`next` entries must be node id strings, not {}",
                                    describe(other)
                                ),
                            );
                        }
                    }
                }
                refs
            }
            other => {
                self.issue(
                    at,
                    node_id,
                    IssueCode::InvalidField,
                    format!(
                        "`next` must be a node id or a list of ids, not {}",
                        describe(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    /// Depth-first search in declaration and edge order; every edge into a node still on the
    /// stack closes a cycle and is reported with the cycle's path.
    fn cycles(
        &mut self,
        edges: &[Vec<(usize, String)>],
        label: &dyn Fn(usize) -> String,
        ids: &[Option<String>],
    ) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnStack,
            Done,
        }
        let mut mark = vec![Mark::New; edges.len()];
        for root in 0..edges.len() {
            if mark[root] != Mark::New {
                continue;
            }
            // (node, index of the next edge to follow)
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            mark[root] = Mark::OnStack;
            while let Some(&mut (node, ref mut cursor)) = stack.last_mut() {
                let Some((to, at)) = edges[node].get(*cursor) else {
                    mark[node] = Mark::Done;
                    stack.pop();
                    continue;
                };
                *cursor += 1;
                match mark[*to] {
                    Mark::New => {
                        mark[*to] = Mark::OnStack;
                        stack.push((*to, 0));
                    }
                    Mark::OnStack => {
                        let from = stack.iter().position(|(n, _)| n == to).unwrap_or(0);
                        let path: Vec<String> = stack[from..]
                            .iter()
                            .map(|(n, _)| label(*n))
                            .chain([label(*to)])
                            .collect();
                        let message = format!("this edge closes the cycle {}", path.join(" → "));
                        self.issue(at.clone(), ids[node].as_deref(), IssueCode::Cycle, message);
                    }
                    Mark::Done => {}
                }
            }
        }
    }

    fn reachability(
        &mut self,
        start: usize,
        edges: &[Vec<(usize, String)>],
        ids: &[Option<String>],
    ) {
        let mut seen = vec![false; edges.len()];
        let mut todo = vec![start];
        seen[start] = true;
        while let Some(n) = todo.pop() {
            for (to, _) in &edges[n] {
                if !seen[*to] {
                    seen[*to] = true;
                    todo.push(*to);
                }
            }
        }
        let start_label = ids[start].clone().unwrap_or_default();
        for (i, reached) in seen.iter().enumerate() {
            if !reached {
                self.issue(
                    format!("/nodes/{i}"),
                    ids[i].as_deref(),
                    IssueCode::UnreachableNode,
                    format!("the start node `{start_label}` never reaches this node"),
                );
            }
        }
    }
}

/// Reads one node's `params`, reporting problems under `base` and refusing unknown keys.
struct Params<'a, 'v, 'p> {
    v: &'v mut Validator<'p>,
    map: &'a Map<String, Value>,
    base: String,
    node_id: Option<&'a str>,
}

impl<'a> Params<'a, '_, '_> {
    fn kind(&mut self, t: NodeType) -> Option<Kind> {
        let allowed: &[&str] = match t {
            NodeType::Transform => &["expr", "collect"],
            NodeType::Condition => &["expr"],
            NodeType::Set => &["values", "exprs", "templates"],
            NodeType::Merge => &["mode"],
            NodeType::Http => &[
                "method",
                "url",
                "headers",
                "body",
                "bodyExpr",
                "failOnStatus",
            ],
            NodeType::Ai => &["operation", "input", "threshold"],
            NodeType::Fail => &["message"],
            NodeType::Output => &["expr"],
        };
        let base = self.base.clone();
        self.v.unknown_keys(self.map, &base, self.node_id, allowed);
        let before = self.v.issues.len();
        let kind = match t {
            NodeType::Transform => {
                let expr = self.jq("expr", true);
                let collect = self.bool("collect").unwrap_or(false);
                expr.map(|expr| Kind::Transform { expr, collect })
            }
            NodeType::Condition => self.jq("expr", true).map(|expr| Kind::Condition {
                expr,
                on_true: None,
                on_false: None,
            }),
            NodeType::Set => self.set(),
            NodeType::Merge => {
                let mode = match self.str("mode", false) {
                    None | Some("object") => Some(MergeMode::Object),
                    Some("array") => Some(MergeMode::Array),
                    Some("deep") => Some(MergeMode::Deep),
                    Some("first") => Some(MergeMode::First),
                    Some(other) => {
                        self.bad("mode", format!("unknown merge mode `{other}` (expected object, array, deep or first)"));
                        None
                    }
                };
                mode.map(|mode| Kind::Merge { mode })
            }
            NodeType::Http => self.http(),
            NodeType::Ai => self.ai(),
            NodeType::Fail => self
                .template("message", true)
                .map(|message| Kind::Fail { message }),
            NodeType::Output => {
                let expr = self.jq("expr", false);
                Some(Kind::Output { expr })
            }
        };
        if self.v.issues.len() > before {
            None
        } else {
            kind
        }
    }

    fn at(&self, key: &str) -> String {
        pointer(&self.base, key)
    }

    fn bad(&mut self, key: &str, message: String) {
        let at = self.at(key);
        self.v
            .issue(at, self.node_id, IssueCode::InvalidField, message);
    }

    fn missing(&mut self, key: &str) {
        let at = self.at(key);
        self.v.issue(
            at,
            self.node_id,
            IssueCode::MissingField,
            format!("`params.{key}` is required"),
        );
    }

    fn str(&mut self, key: &str, required: bool) -> Option<&'a str> {
        let map = self.map;
        match map.get(key) {
            None => {
                if required {
                    self.missing(key);
                }
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.bad(
                    key,
                    format!("`params.{key}` must be a string, not {}", describe(other)),
                );
                None
            }
        }
    }

    fn bool(&mut self, key: &str) -> Option<bool> {
        match self.map.get(key) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.bad(
                    key,
                    format!("`params.{key}` must be a boolean, not {}", describe(other)),
                );
                None
            }
        }
    }

    fn expression_at(
        &mut self,
        at: String,
        source: &str,
        template: bool,
    ) -> Option<SetSourceCompiled> {
        let max = self.v.policy.max_expression_chars;
        let defs = self.v.policy.allow_jq_definitions;
        if source.chars().count() > max {
            self.v.issue(
                at,
                self.node_id,
                IssueCode::InvalidExpression,
                format!("the expression exceeds {max} characters"),
            );
            return None;
        }
        let compiled = if template {
            Template::parse(source, defs).map(SetSourceCompiled::Template)
        } else if source.trim().is_empty() {
            Err("the expression is empty".to_owned())
        } else {
            Jq::compile(source, defs).map(SetSourceCompiled::Jq)
        };
        compiled
            .map_err(|message| {
                self.v
                    .issue(at, self.node_id, IssueCode::InvalidExpression, message)
            })
            .ok()
    }

    fn jq(&mut self, key: &str, required: bool) -> Option<Jq> {
        let source = self.str(key, required)?.to_owned();
        match self.expression_at(self.at(key), &source, false)? {
            SetSourceCompiled::Jq(jq) => Some(jq),
            SetSourceCompiled::Template(_) => None,
        }
    }

    fn template(&mut self, key: &str, required: bool) -> Option<Template> {
        let source = self.str(key, required)?.to_owned();
        match self.expression_at(self.at(key), &source, true)? {
            SetSourceCompiled::Template(t) => Some(t),
            SetSourceCompiled::Jq(_) => None,
        }
    }

    fn object(&mut self, key: &str) -> Option<&'a Map<String, Value>> {
        let map = self.map;
        match map.get(key) {
            None => None,
            Some(Value::Object(o)) => Some(o),
            Some(other) => {
                self.bad(
                    key,
                    format!("`params.{key}` must be an object, not {}", describe(other)),
                );
                None
            }
        }
    }

    fn set(&mut self) -> Option<Kind> {
        let mut entries: Vec<(Vec<String>, SetSource)> = Vec::new();
        let mut written: Vec<(Vec<String>, String)> = Vec::new();
        for group in ["values", "exprs", "templates"] {
            let Some(map) = self.object(group) else {
                continue;
            };
            for (path, value) in map {
                let at = pointer(&self.at(group), path);
                let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
                if segments.iter().any(String::is_empty) {
                    self.v.issue(
                        at,
                        self.node_id,
                        IssueCode::InvalidField,
                        format!("path `{path}` must be dot-separated non-empty keys, e.g. `a.b`"),
                    );
                    continue;
                }
                let conflict = written.iter().find(|(w, _)| {
                    let n = w.len().min(segments.len());
                    w[..n] == segments[..n]
                });
                if let Some((_, other)) = conflict {
                    let message = format!("path `{path}` overlaps `{other}` set by the same node");
                    self.v
                        .issue(at, self.node_id, IssueCode::PathConflict, message);
                    continue;
                }
                let source = match (group, value) {
                    ("values", v) => Some(SetSource::Const(v.clone())),
                    (_, Value::String(s)) => {
                        match self.expression_at(at.clone(), s, group == "templates") {
                            Some(SetSourceCompiled::Jq(jq)) => Some(SetSource::Expr(jq)),
                            Some(SetSourceCompiled::Template(t)) => Some(SetSource::Template(t)),
                            None => None,
                        }
                    }
                    (_, other) => {
                        let message =
                            format!("`{group}` entries must be strings, not {}", describe(other));
                        self.v
                            .issue(at, self.node_id, IssueCode::InvalidField, message);
                        None
                    }
                };
                written.push((segments.clone(), path.clone()));
                if let Some(source) = source {
                    entries.push((segments, source));
                }
            }
        }
        if written.is_empty() {
            let at = self.base.clone();
            self.v.issue(
                at,
                self.node_id,
                IssueCode::MissingField,
                "a set node needs at least one entry in `values`, `exprs` or `templates`",
            );
        }
        Some(Kind::Set { entries })
    }

    fn http(&mut self) -> Option<Kind> {
        let method = match self.str("method", true) {
            None => None,
            Some(m) => {
                let method = [
                    Method::Get,
                    Method::Post,
                    Method::Put,
                    Method::Patch,
                    Method::Delete,
                ]
                .into_iter()
                .find(|x| x.as_str() == m);
                if method.is_none() {
                    self.bad(
                        "method",
                        format!(
                            "unsupported method `{m}` (expected GET, POST, PUT, PATCH or DELETE)"
                        ),
                    );
                }
                method
            }
        };
        let url = self.template("url", true);
        let mut headers = Vec::new();
        if let Some(map) = self.object("headers") {
            for (name, value) in map {
                let at = pointer(&self.at("headers"), name);
                let token = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token {
                    self.v.issue(
                        at,
                        self.node_id,
                        IssueCode::InvalidField,
                        format!("`{name}` is not a valid header name"),
                    );
                    continue;
                }
                let Value::String(s) = value else {
                    self.v.issue(
                        at,
                        self.node_id,
                        IssueCode::InvalidField,
                        format!("header values must be strings, not {}", describe(value)),
                    );
                    continue;
                };
                if let Some(SetSourceCompiled::Template(t)) = self.expression_at(at, s, true) {
                    headers.push((name.to_ascii_lowercase(), t));
                }
            }
        }
        let body = match (self.map.get("body"), self.map.contains_key("bodyExpr")) {
            (Some(_), true) => {
                self.bad(
                    "bodyExpr",
                    "give either `body` (a constant) or `bodyExpr` (a jq expression), not both"
                        .into(),
                );
                None
            }
            (Some(v), false) => Some(Body::Const(v.clone())),
            (None, true) => self.jq("bodyExpr", true).map(Body::Expr),
            (None, false) => None,
        };
        let fail_on_status = self.bool("failOnStatus").unwrap_or(true);
        Some(Kind::Http {
            method: method?,
            url: url?,
            headers,
            body,
            fail_on_status,
        })
    }

    fn ai(&mut self) -> Option<Kind> {
        let threshold = match self.map.get("threshold") {
            None => None,
            Some(Value::Number(n)) if n.as_f64().is_some_and(|t| t > 0.0) => n.as_f64(),
            Some(other) => {
                self.bad(
                    "threshold",
                    format!("`params.threshold` must be a positive number, not {other}"),
                );
                None
            }
        };
        let operation = match self.str("operation", true) {
            None => None,
            Some("summary") => Some(Operation::Summary),
            Some("trend") => Some(Operation::Trend),
            Some("anomalies") => Some(Operation::Anomalies {
                threshold: threshold.unwrap_or(Operation::DEFAULT_THRESHOLD),
            }),
            Some(other) => {
                self.bad(
                    "operation",
                    format!("unknown operation `{other}` (expected summary, trend or anomalies)"),
                );
                None
            }
        };
        if threshold.is_some() && !matches!(operation, Some(Operation::Anomalies { .. }) | None) {
            self.bad(
                "threshold",
                "`threshold` only applies to the anomalies operation".into(),
            );
        }
        let input = self.jq("input", false);
        Some(Kind::Ai {
            operation: operation?,
            input,
        })
    }
}

enum SetSourceCompiled {
    Jq(Jq),
    Template(Template),
}
