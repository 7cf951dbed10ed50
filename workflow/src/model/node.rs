//! One node's envelope: its `type`, the dispatch of its `params` to [`super::params`], and its
//! outgoing edges (`next`, `branches`) as unresolved [`Ref`]s. Kept apart from
//! [`super::validate`] because none of it needs the rest of the graph; references are resolved
//! and checked there.

use serde_json::{Map, Value};
use strum::VariantArray as _;

use super::params::Params;
use super::validate::{Draft, Ref, Validator};
use super::{IssueCode, NodeType, describe};

impl Validator<'_> {
    pub(super) fn node(&mut self, i: usize, node: &Value, id: Option<String>) -> Draft {
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
                    let known: Vec<&str> = NodeType::VARIANTS.iter().map(|t| t.as_str()).collect();
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
}
