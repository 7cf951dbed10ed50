//! Whole-graph validation: the [`Validator`] that collects every [`Issue`] with its JSON
//! pointer, the workflow-level checks (node limit, ids, `start`, references, joins, cycles,
//! reachability) and the assembly of the validated [`Workflow`]. One node's own fields are read
//! in [`super::node`] and its `params` in [`super::params`]; this file owns what needs the whole
//! graph at once.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{Issue, IssueCode, Kind, MAX_ID_CHARS, Node, NodeType, Workflow, describe, pointer};
use crate::policy::Policy;

/// Collects every problem found while reading one workflow under one policy.
pub(super) struct Validator<'p> {
    pub(super) issues: Vec<Issue>,
    pub(super) policy: &'p Policy,
}

/// A reference from one node to another, as written.
pub(super) struct Ref {
    pub(super) target: String,
    pub(super) pointer: String,
}

/// One node as read, before its references are resolved; `None` where the node had a problem.
pub(super) struct Draft {
    pub(super) id: Option<String>,
    pub(super) node_type: Option<NodeType>,
    pub(super) kind: Option<Kind>,
    pub(super) next: Vec<Ref>,
    /// The `true` then the `false` branch target.
    pub(super) branches: [Option<Ref>; 2],
}

impl Validator<'_> {
    pub(super) fn issue(
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

    pub(super) fn unknown_keys(
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

    pub(super) fn workflow(&mut self, wf: &Value) -> Option<Workflow> {
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
