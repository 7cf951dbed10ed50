//! Per-node parameter parsing: each node type's `params` become its compiled [`Kind`] (jq
//! programs and templates compiled under the policy's limits), with unknown keys refused and
//! every problem reported at its pointer under `/nodes/i/params`. The graph shape is checked
//! elsewhere; this file only knows what each node type accepts.

use serde_json::{Map, Value};

use super::validate::Validator;
use super::{Body, IssueCode, Kind, MergeMode, Method, NodeType, SetSource, describe, pointer};
use crate::analytics::Operation;
use crate::jq::{Jq, Template};

/// Reads one node's `params`, reporting problems under `base` and refusing unknown keys.
pub(super) struct Params<'a, 'v, 'p> {
    pub(super) v: &'v mut Validator<'p>,
    pub(super) map: &'a Map<String, Value>,
    pub(super) base: String,
    pub(super) node_id: Option<&'a str>,
}

impl<'a> Params<'a, '_, '_> {
    pub(super) fn kind(&mut self, t: NodeType) -> Option<Kind> {
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
                let method = m.parse::<Method>().ok();
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

/// What [`Params::expression_at`] compiled: a jq program or a `{{ }}` template.
enum SetSourceCompiled {
    Jq(Jq),
    Template(Template),
}
