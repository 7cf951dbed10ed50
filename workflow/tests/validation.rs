//! Workflow validation: every problem is reported, at the pointer where it is.

use nectar_workflow::{FeatureNeed, Issue, IssueCode, NodeType, Policy, Workflow};
use serde_json::{Value, json};

fn problems(workflow: Value) -> Vec<Issue> {
    Workflow::parse(&workflow, &Policy::default())
        .expect_err("the workflow must be refused")
        .issues
}

fn summary(issues: &[Issue]) -> Vec<(&str, IssueCode)> {
    issues
        .iter()
        .map(|i| (i.pointer.as_str(), i.code))
        .collect()
}

fn t(id: &str, expr: &str, next: Value) -> Value {
    json!({"id": id, "type": "transform", "params": {"expr": expr}, "next": next})
}

#[test]
fn a_valid_workflow_starts_at_its_first_node_unless_start_is_given() {
    // Arrange
    let nodes = json!([t("a", ".", json!("b")), t("b", ".", json!([]))]);
    // Act
    let default_start =
        Workflow::parse(&json!({"nodes": nodes}), &Policy::default()).expect("valid");
    let explicit = Workflow::parse(
        &json!({"nodes": [t("b", ".", json!([])), t("a", ".", json!("b"))], "start": "a"}),
        &Policy::default(),
    )
    .expect("valid");
    // Assert
    assert_eq!(default_start.start().id(), "a");
    assert_eq!(explicit.start().id(), "a");
}

#[test]
fn a_cycle_is_refused_with_the_pointer_of_the_closing_edge_and_its_path() {
    // Arrange: a → b → c → a, plus a self-loop on d reached from a
    let wf = json!({"nodes": [
        t("a", ".", json!(["b", "d"])),
        t("b", ".", json!("c")),
        t("c", ".", json!("a")),
        {"id": "d", "type": "merge", "next": ["d"]},
    ]});
    // Act
    let issues = problems(wf);
    // Assert
    let cycles: Vec<&Issue> = issues
        .iter()
        .filter(|i| i.code == IssueCode::Cycle)
        .collect();
    assert_eq!(cycles.len(), 2, "{issues:#?}");
    assert_eq!(cycles[0].pointer, "/nodes/2/next");
    assert_eq!(cycles[0].node_id.as_deref(), Some("c"));
    assert_eq!(
        cycles[0].message,
        "this edge closes the cycle a → b → c → a"
    );
    assert_eq!(cycles[1].pointer, "/nodes/3/next/0");
    assert_eq!(cycles[1].message, "this edge closes the cycle d → d");
}

#[test]
fn dangling_references_are_each_reported_where_they_are_written() {
    let wf = json!({"start": "nope", "nodes": [
        t("a", ".", json!(["b", "ghost"])),
        {"id": "b", "type": "condition", "params": {"expr": ".x"}, "branches": {"true": "c", "false": "phantom"}},
        {"id": "c", "type": "output"},
    ]});
    let issues = problems(wf);
    assert_eq!(
        summary(&issues),
        vec![
            ("/start", IssueCode::UnknownReference),
            ("/nodes/0/next/1", IssueCode::UnknownReference),
            ("/nodes/1/branches/false", IssueCode::UnknownReference),
        ]
    );
    assert_eq!(issues[1].message, "node `ghost` does not exist");
    assert_eq!(issues[1].node_id.as_deref(), Some("a"));
}

#[test]
fn an_oversized_graph_is_refused_at_nodes_without_looking_further() {
    let policy = Policy {
        max_nodes: 3,
        ..Policy::default()
    };
    let nodes: Vec<Value> = (0..4)
        .map(|i| json!({"id": format!("n{i}"), "type": "bogus"}))
        .collect();
    let issues = Workflow::parse(&json!({"nodes": nodes}), &policy)
        .expect_err("too many")
        .issues;
    assert_eq!(summary(&issues), vec![("/nodes", IssueCode::TooManyNodes)]);
    assert_eq!(issues[0].message, "4 nodes exceed the limit of 3");
}

#[test]
fn every_bad_param_is_reported_in_one_pass() {
    let wf = json!({"nodes": [
        {"id": "a", "type": "transform", "params": {"expr": ".a | ", "colect": true}, "next": "b"},
        {"id": "b", "type": "teleport", "next": "c"},
        {"id": "c", "type": "http", "params": {"method": "FETCH", "url": "https://x.test/{{ .id"}, "next": "d"},
        {"id": "d", "type": "ai", "params": {"operation": "summary", "threshold": 2}, "next": "e"},
        {"id": "e", "type": "merge", "params": {"mode": "zip"}, "next": "f"},
        {"id": "f", "type": "set", "params": {"values": {"a": 1, "a.b": 2}, "exprs": {"c..d": "."}}, "next": "g"},
        {"id": "g", "type": "fail"},
    ]});
    let issues = problems(wf);
    assert_eq!(
        summary(&issues),
        vec![
            ("/nodes/0/params/colect", IssueCode::UnknownField),
            ("/nodes/0/params/expr", IssueCode::InvalidExpression),
            ("/nodes/1/type", IssueCode::UnknownNodeType),
            ("/nodes/2/params/method", IssueCode::InvalidField),
            ("/nodes/2/params/url", IssueCode::InvalidExpression),
            ("/nodes/3/params/threshold", IssueCode::InvalidField),
            ("/nodes/4/params/mode", IssueCode::InvalidField),
            ("/nodes/5/params/values/a.b", IssueCode::PathConflict),
            ("/nodes/5/params/exprs/c..d", IssueCode::InvalidField),
            ("/nodes/6/params/message", IssueCode::MissingField),
        ],
        "{issues:#?}"
    );
    assert_eq!(
        issues[1].message,
        "expected term but found end of input at column 6"
    );
    assert_eq!(
        issues[2].message,
        "unknown node type `teleport` (expected one of: transform, condition, set, merge, http, ai, fail, output)"
    );
    assert_eq!(
        issues[4].message,
        "unclosed `{{` placeholder (missing `}}`)"
    );
}

#[test]
fn a_jq_syntax_error_is_reported_at_the_expression_with_the_compiler_message() {
    let issues = problems(
        json!({"nodes": [{"id": "a", "type": "condition", "params": {"expr": "if . then 1"}}]}),
    );
    assert_eq!(
        summary(&issues),
        vec![("/nodes/0/params/expr", IssueCode::InvalidExpression)]
    );
    assert_eq!(
        issues[0].message,
        "expected else or end but found end of input at column 12"
    );
    let undefined = problems(
        json!({"nodes": [{"id": "a", "type": "transform", "params": {"expr": "map(foo)"}}]}),
    );
    assert_eq!(undefined[0].message, "undefined filter `foo/0`");
}

#[test]
fn ids_must_be_unique_non_empty_and_plain() {
    let issues = problems(json!({"nodes": [
        t("a", ".", json!(["b", "c"])),
        t("a", ".", json!([])),
        {"id": "", "type": "output"},
        {"id": "has space", "type": "output"},
        {"id": "x".repeat(65), "type": "output"},
        {"type": "output"},
    ]}));
    let ids: Vec<(&str, IssueCode)> = summary(&issues)
        .into_iter()
        .filter(|(p, _)| p.ends_with("/id"))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("/nodes/1/id", IssueCode::DuplicateId),
            ("/nodes/2/id", IssueCode::InvalidId),
            ("/nodes/3/id", IssueCode::InvalidId),
            ("/nodes/4/id", IssueCode::InvalidId),
            ("/nodes/5/id", IssueCode::MissingField),
        ]
    );
    assert_eq!(issues[0].message, "id `a` is already used by /nodes/0");
}

#[test]
fn unreachable_nodes_are_an_error() {
    let issues = problems(json!({"nodes": [t("a", ".", json!([])), t("island", ".", json!([]))]}));
    assert_eq!(
        summary(&issues),
        vec![("/nodes/1", IssueCode::UnreachableNode)]
    );
    assert_eq!(
        issues[0].message,
        "the start node `a` never reaches this node"
    );
}

#[test]
fn only_merge_nodes_may_join_paths() {
    let issues = problems(json!({"nodes": [
        t("a", ".", json!(["b", "c"])),
        t("b", ".", json!("d")),
        t("c", ".", json!("d")),
        t("d", ".", json!([])),
    ]}));
    assert_eq!(summary(&issues), vec![("/nodes/3", IssueCode::InvalidJoin)]);
    assert_eq!(
        issues[0].message,
        "only a merge node may have several predecessors; this one has `b`, `c`"
    );
}

#[test]
fn edges_must_fit_the_node_type() {
    let issues = problems(json!({"nodes": [
        {"id": "a", "type": "condition", "params": {"expr": "."}, "next": "b", "branches": {"true": "b", "maybe": "b"}},
        {"id": "b", "type": "transform", "params": {"expr": "."}, "branches": {"true": "c"}, "next": ["c", "c"]},
        {"id": "c", "type": "output", "next": "a"},
    ]}));
    assert_eq!(
        summary(&issues),
        vec![
            ("/nodes/0/next", IssueCode::EdgeNotAllowed),
            ("/nodes/0/branches/maybe", IssueCode::UnknownField),
            ("/nodes/1/next/1", IssueCode::DuplicateEdge),
            ("/nodes/1/branches", IssueCode::EdgeNotAllowed),
            ("/nodes/2/next", IssueCode::EdgeNotAllowed),
        ]
    );
}

#[test]
fn malformed_documents_are_refused_with_a_pointer() {
    let cases = [
        (json!([]), "", IssueCode::NotAnObject),
        (json!({}), "/nodes", IssueCode::MissingField),
        (json!({"nodes": {}}), "/nodes", IssueCode::InvalidField),
        (json!({"nodes": []}), "/nodes", IssueCode::EmptyWorkflow),
        (json!({"nodes": [7]}), "/nodes/0", IssueCode::NotAnObject),
        (
            json!({"nodes": [{"id": "a", "type": "output", "params": []}]}),
            "/nodes/0/params",
            IssueCode::InvalidField,
        ),
        (
            json!({"nodes": [{"id": "a", "type": "output"}], "owner": "x"}),
            "/owner",
            IssueCode::UnknownField,
        ),
        (
            json!({"nodes": [{"id": "a", "type": "transform", "params": {"expr": "def f: f; f"}}]}),
            "/nodes/0/params/expr",
            IssueCode::InvalidExpression,
        ),
    ];
    for (wf, pointer, code) in cases {
        let issues = problems(wf.clone());
        assert_eq!(summary(&issues), vec![(pointer, code)], "for {wf}");
    }
}

#[test]
fn issues_serialize_with_camel_case_fields_and_upper_case_codes() {
    let issues = problems(json!({"nodes": [t("a", ".", json!("zz"))]}));
    assert_eq!(
        serde_json::to_value(&issues).expect("serializes"),
        json!([{"pointer": "/nodes/0/next", "nodeId": "a", "code": "UNKNOWN_REFERENCE", "message": "node `zz` does not exist"}])
    );
}

#[test]
fn required_features_name_the_first_node_needing_each() {
    let wf = Workflow::parse(
        &json!({"nodes": [
            t("a", ".", json!(["s1", "s2"])),
            {"id": "s1", "type": "ai", "params": {"operation": "summary"}, "next": "m"},
            {"id": "s2", "type": "http", "params": {"method": "GET", "url": "https://api.example.com"}, "next": "m"},
            {"id": "m", "type": "merge", "next": "h2"},
            {"id": "h2", "type": "http", "params": {"method": "GET", "url": "https://api.example.com"}},
        ]}),
        &Policy::default(),
    )
    .expect("valid");
    let need = |feature, node_type, node_id: &str, pointer: &str| FeatureNeed {
        feature,
        node_type,
        node_id: node_id.into(),
        pointer: pointer.into(),
    };
    assert_eq!(
        wf.required_features(),
        vec![
            need("workflows", NodeType::Transform, "a", "/nodes/0/type"),
            need("analytics", NodeType::Ai, "s1", "/nodes/1/type"),
            need("integrations", NodeType::Http, "s2", "/nodes/2/type"),
        ]
    );
}
