//! What each node does with its input: jq evaluation with the run's deadline, template
//! rendering, `set` paths, merges, and the `http` and `ai` calls through the [`super::Env`]
//! ports, each turned into a [`Flow`] for the scheduler in [`super`] or a [`Failure`].

use serde_json::{Map, Value};

use super::{ErrorCode, Failure, Flow, Run, failure};
use crate::analytics::AnalyticsError;
use crate::http::{HttpError, HttpRequest};
use crate::jq::{EvalError, Jq, Take, Template};
use crate::model::{Body, Kind, MergeMode, SetSource, Workflow};

impl Run<'_> {
    async fn eval(&mut self, jq: &Jq, input: Value, take: Take) -> Result<Vec<Value>, Failure> {
        match self.jq.eval(jq, input, take, self.deadline).await {
            Ok(values) => Ok(values),
            Err(EvalError::Runtime(m)) => Err(failure(
                ErrorCode::ExpressionError,
                format!("`{}`: {m}", jq.source()),
            )),
            Err(EvalError::Deadline) => Err(self.time_limit()),
            Err(EvalError::Memory(bytes)) => Err(failure(
                ErrorCode::MemoryLimit,
                format!(
                    "`{}` needed more than the memory limit of {} MiB",
                    jq.source(),
                    bytes / (1024 * 1024)
                ),
            )),
        }
    }

    async fn first(&mut self, jq: &Jq, input: Value) -> Result<Value, Failure> {
        let mut values = self.eval(jq, input, Take::First).await?;
        values.pop().ok_or_else(|| {
            failure(
                ErrorCode::ExpressionError,
                format!("`{}` produced no result", jq.source()),
            )
        })
    }

    async fn render(&mut self, template: &Template, input: &Value) -> Result<String, Failure> {
        match template {
            Template::Literal(s) => Ok(s.clone()),
            Template::Program(jq) => match self.first(jq, input.clone()).await? {
                Value::String(s) => Ok(s),
                other => Ok(other.to_string()),
            },
        }
    }

    pub(super) async fn node(&mut self, index: usize, input: Value) -> Result<Flow, Failure> {
        let wf = self.wf;
        let node = &wf.nodes[index];
        let cont = |value| {
            Ok(Flow::Continue {
                value,
                targets: node.next.clone(),
            })
        };
        match &node.kind {
            Kind::Transform {
                expr,
                collect: false,
            } => cont(self.first(expr, input).await?),
            Kind::Transform {
                expr,
                collect: true,
            } => {
                let values = self
                    .eval(
                        expr,
                        input,
                        Take::All {
                            max: self.policy.max_results,
                        },
                    )
                    .await?;
                cont(Value::Array(values))
            }
            Kind::Condition {
                expr,
                on_true,
                on_false,
            } => {
                // jq truthiness; no result at all counts as false.
                let truthy = match self.eval(expr, input.clone(), Take::First).await?.first() {
                    None | Some(Value::Null | Value::Bool(false)) => false,
                    Some(_) => true,
                };
                let target = if truthy { on_true } else { on_false };
                Ok(Flow::Continue {
                    value: input,
                    targets: target.iter().copied().collect(),
                })
            }
            Kind::Set { entries } => {
                let mut out = match &input {
                    Value::Object(o) => o.clone(),
                    Value::Null => Map::new(),
                    other => {
                        return Err(failure(
                            ErrorCode::InvalidValue,
                            format!("set needs an object input, not {}", kind(other)),
                        ));
                    }
                };
                for (path, source) in entries {
                    let value = match source {
                        SetSource::Const(v) => v.clone(),
                        SetSource::Expr(jq) => self.first(jq, input.clone()).await?,
                        SetSource::Template(t) => Value::String(self.render(t, &input).await?),
                    };
                    set_path(&mut out, path, value)?;
                }
                cont(Value::Object(out))
            }
            Kind::Merge { mode } => {
                let mut inbox = std::mem::take(&mut self.inbox[index]);
                let preds = &wf.preds[index];
                inbox.sort_by_key(|(from, _)| preds.iter().position(|p| p == from));
                cont(merge(*mode, inbox, wf))
            }
            Kind::Http {
                method,
                url,
                headers,
                body,
                fail_on_status,
            } => {
                let url = self.render(url, &input).await?;
                let mut rendered = Vec::with_capacity(headers.len());
                for (name, value) in headers {
                    rendered.push((name.clone(), self.render(value, &input).await?));
                }
                let body = match body {
                    None => None,
                    Some(Body::Const(v)) => Some(v.clone()),
                    Some(Body::Expr(jq)) => Some(self.first(jq, input.clone()).await?),
                };
                let now = tokio::time::Instant::now();
                let node_deadline = (now + self.policy.http_timeout).min(self.deadline);
                let request = HttpRequest {
                    method: *method,
                    url: url.clone(),
                    headers: rendered,
                    body: body.map(|b| b.to_string().into_bytes()),
                    timeout: node_deadline.saturating_duration_since(now),
                };
                let response =
                    match tokio::time::timeout_at(node_deadline, self.env.http.call(request)).await
                    {
                        Ok(response) => response,
                        Err(_) if node_deadline >= self.deadline => return Err(self.time_limit()),
                        Err(_) => Err(HttpError::Timeout(self.policy.http_timeout)),
                    };
                let response = response.map_err(|e| {
                    let code = match e {
                        HttpError::NotAllowed(_)
                        | HttpError::InvalidUrl(_)
                        | HttpError::Disabled => ErrorCode::HttpRefused,
                        _ => ErrorCode::HttpError,
                    };
                    failure(code, format!("{} {url}: {e}", method.as_str()))
                })?;
                if *fail_on_status && response.status >= 400 {
                    return Err(failure(
                        ErrorCode::HttpStatus,
                        format!("{} {url} answered {}", method.as_str(), response.status),
                    ));
                }
                let body = if response.body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&response.body).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&response.body).into_owned())
                    })
                };
                let headers: Map<String, Value> = response
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                cont(
                    serde_json::json!({"status": response.status, "headers": headers, "body": body}),
                )
            }
            Kind::Ai {
                operation,
                input: selector,
            } => {
                let selected = match selector {
                    Some(jq) => self.first(jq, input).await?,
                    None => input,
                };
                let result = self
                    .env
                    .analytics
                    .analyze(operation, &selected)
                    .await
                    .map_err(|e| {
                        let message = match e {
                            AnalyticsError::InvalidInput(m) => {
                                format!("{}: {m}", operation.as_str())
                            }
                            other => other.to_string(),
                        };
                        failure(ErrorCode::AnalyticsError, message)
                    })?;
                cont(result)
            }
            Kind::Fail { message } => Ok(Flow::Fail(self.render(message, &input).await?)),
            Kind::Output { expr: Some(jq) } => Ok(Flow::Output(self.first(jq, input).await?)),
            Kind::Output { expr: None } => Ok(Flow::Output(input)),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Writes `value` at `path`, creating objects on the way; refuses to go through a non-object.
fn set_path(root: &mut Map<String, Value>, path: &[String], value: Value) -> Result<(), Failure> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut current = root;
    for (depth, key) in parents.iter().enumerate() {
        let slot = current
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if slot.is_null() {
            *slot = Value::Object(Map::new());
        }
        current = match slot {
            Value::Object(o) => o,
            other => {
                let at = path[..=depth].join(".");
                let message = format!("cannot set `{}`: `{at}` is {}", path.join("."), kind(other));
                return Err(failure(ErrorCode::InvalidValue, message));
            }
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

fn merge(mode: MergeMode, inbox: Vec<(usize, Value)>, wf: &Workflow) -> Value {
    match mode {
        MergeMode::Object => Value::Object(
            inbox
                .into_iter()
                .map(|(from, v)| (wf.nodes[from].id.clone(), v))
                .collect(),
        ),
        MergeMode::Array => Value::Array(inbox.into_iter().map(|(_, v)| v).collect()),
        MergeMode::First => inbox.into_iter().next().map_or(Value::Null, |(_, v)| v),
        MergeMode::Deep => inbox
            .into_iter()
            .map(|(_, v)| v)
            .reduce(deep_merge)
            .unwrap_or(Value::Null),
    }
}

fn deep_merge(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, v) in b {
                let merged = match a.remove(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => v,
                };
                a.insert(k, merged);
            }
            Value::Object(a)
        }
        (_, over) => over,
    }
}
