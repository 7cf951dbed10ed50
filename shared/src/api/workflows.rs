//! Workflow execution: the request body, read through the protocol's [`ExecuteRequest`].

use nectar_protocol::workflows::ExecuteRequest;
use serde_json::Value;

use super::text;
use crate::domain::DomainError;

/// Longest workflow id.
const MAX_WORKFLOW_ID: usize = 128;

/// The body of `POST /api/workflows/execute`: `{workflowId, workflow: {nodes, start?}, data?}`,
/// or the seed's flat `{workflowId, nodes, start?, data?}`. Returns `(workflowId, workflow,
/// data)`; `data` defaults to `{}`. The workflow itself is validated by the engine.
pub fn parse_execute_body(body: Value) -> Result<(String, Value, Value), DomainError> {
    if !body.is_object() {
        return Err(invalid("body", "must be a JSON object".into()));
    }
    let request: ExecuteRequest =
        serde_path_to_error::deserialize(body).map_err(|e| shape_problem(&e))?;
    let workflow_id = text("workflowId", request.workflow_id, MAX_WORKFLOW_ID)?;
    let workflow = match (request.workflow, request.nodes) {
        (Some(_), None) if request.start.is_some() => {
            return Err(invalid("start", "belongs inside `workflow`".into()));
        }
        (Some(w), None) => w,
        (None, Some(nodes)) => {
            let mut flat = serde_json::Map::new();
            flat.insert("nodes".into(), nodes);
            if let Some(start) = request.start {
                flat.insert("start".into(), start);
            }
            Value::Object(flat)
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                "nodes",
                "send either `workflow` or the flat `nodes`, not both".into(),
            ));
        }
        (None, None) => {
            return Err(invalid(
                "workflow",
                "is required (`{\"nodes\": [...]}`)".into(),
            ));
        }
    };
    Ok((workflow_id, workflow, request.data))
}

fn invalid(field: &'static str, message: String) -> DomainError {
    DomainError::InvalidValue { field, message }
}

/// The field and message of a body without the [`ExecuteRequest`] shape. Serde names a missing
/// or unknown member only inside its message (the path stops at the body), so those two cases
/// read the name from the message to keep the answers' wording.
fn shape_problem(e: &serde_path_to_error::Error<serde_json::Error>) -> DomainError {
    let inner = e.inner().to_string();
    let quoted = |prefix: &str| {
        inner
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if quoted("missing field `").as_deref() == Some("workflowId") {
        return invalid("workflowId", "is required".into());
    }
    if let Some(unknown) = quoted("unknown field `") {
        return invalid(
            "body",
            format!(
                "unknown field `{}`; expected workflowId, workflow, data",
                unknown.chars().take(40).collect::<String>()
            ),
        );
    }
    match e.path().iter().next_back() {
        Some(serde_path_to_error::Segment::Map { key }) if key == "workflowId" => {
            invalid("workflowId", "must be a string".into())
        }
        _ => invalid("body", inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_nested_and_the_flat_seed_shapes_parse_to_the_same_workflow() {
        let nodes = json!([{"id": "a", "type": "output"}]);
        let nested = parse_execute_body(
            json!({"workflowId": "w1", "workflow": {"nodes": nodes}, "data": {"x": 1}}),
        )
        .expect("valid");
        let flat =
            parse_execute_body(json!({"workflowId": "w1", "nodes": nodes, "data": {"x": 1}}))
                .expect("valid");
        assert_eq!(nested, flat);
        assert_eq!(nested.1, json!({"nodes": nodes}));
    }

    #[test]
    fn missing_ambiguous_or_unknown_fields_are_named() {
        let field = |b: serde_json::Value| match parse_execute_body(b) {
            Err(DomainError::InvalidValue { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(json!({"nodes": []})), "workflowId");
        assert_eq!(field(json!({"workflowId": 7, "nodes": []})), "workflowId");
        assert_eq!(field(json!({"workflowId": "w"})), "workflow");
        assert_eq!(
            field(json!({"workflowId": "w", "workflow": {}, "nodes": []})),
            "nodes"
        );
        assert_eq!(
            field(json!({"workflowId": "w", "nodes": [], "extra": 1})),
            "body"
        );
    }
}
