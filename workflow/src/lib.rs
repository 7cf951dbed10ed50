//! Nectar's workflow engine: validates a workflow graph, then runs it with jq expressions, HTTP
//! and analytics nodes under a [`Policy`] of limits. No licensing, metering or AWS here — the
//! caller checks [`Workflow::required_features`] against the license before [`execute`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use nectar_workflow::{execute, DisabledHttp, Env, Policy, StatisticalAnalytics, Workflow};
//! use serde_json::json;
//!
//! let policy = Policy::default();
//! let workflow = Workflow::parse(
//!     &json!({"nodes": [{"id": "double", "type": "transform", "params": {"expr": ".n * 2"}}]}),
//!     &policy,
//! )?; // Err(ValidationErrors) lists every problem with its JSON pointer
//! let env = Env { http: &DisabledHttp, analytics: &StatisticalAnalytics };
//! let run = execute(&workflow, json!({"n": 21}), &policy, &env).await;
//! assert_eq!(run.output, json!(42));
//! # Ok(()) }
//! ```
//!
//! # Node types
//!
//! Every node is `{"id", "type", "params"?, "next"? | "branches"?}`; `next` is an id or a list
//! of ids (see [`model`] for the graph rules and [`exec`] for scheduling). Expressions are jq
//! (jaq dialect); templates are strings with `{{ jq }}` placeholders rendered like jq string
//! interpolation (strings raw, other values as compact JSON).
//!
//! | type | params | output |
//! |---|---|---|
//! | `transform` | `expr` (jq), `collect`? (bool, default false) | the first result of `expr` (none → error); with `collect`, the array of all results (at most `Policy::max_results`) |
//! | `condition` | `expr` (jq); node has `branches: {"true"?: id, "false"?: id}` | its input, delivered to the taken branch only; `false`/`null`/no result are false; a missing branch ends that path |
//! | `set` | `values`? `{path: json}`, `exprs`? `{path: jq}`, `templates`? `{path: template}` — at least one entry; paths are dot-separated keys (`a.b`) | the input object (`null` counts as `{}`) with each path written, intermediate objects created; every expression sees the node's input |
//! | `merge` | `mode`? `object` (default: keyed by predecessor id) \| `array` \| `deep` (deep-merge of objects, later predecessor wins) \| `first` | the combination of what its predecessors delivered, in predecessor declaration order |
//! | `http` | `method` (GET/POST/PUT/PATCH/DELETE), `url` (template), `headers`? `{name: template}`, `body`? (constant JSON) or `bodyExpr`? (jq), `failOnStatus`? (default true: status ≥ 400 fails) | `{status, headers: {lowercase-name: value}, body}`, `body` parsed as JSON when it parses, else the text; empty → `null` |
//! | `ai` | `operation` (`summary` \| `trend` \| `anomalies`), `input`? (jq selecting the series, default `.`), `threshold`? (anomalies only, default 3) | see [`analytics`] |
//! | `fail` | `message` (template) | ends the run: failed, `WORKFLOW_FAILED`, with the message |
//! | `output` | `expr`? (jq) | ends the run: succeeded, with `expr`'s first result or the input |
//!
//! Unknown params are refused. License features: [`required_feature`].
//!
//! `http` calls through [`ReqwestCaller`] go only to allow-listed hosts, over https unless
//! plain http is enabled, without redirects or proxies, and — unless
//! [`HttpSettings::allow_private_networks`] is set (default off) — only to publicly routable
//! addresses: loopback, private, link-local (cloud metadata `169.254.169.254`), CGNAT,
//! multicast, documentation and other special-use IPv4/IPv6 ranges are refused before
//! connecting, for IP literals and for whatever an allow-listed name resolves to. Refusals
//! fail the node with `HTTP_REFUSED`; see [`http`] for the details.

pub mod analytics;
pub mod exec;
pub mod http;
pub mod jq;
pub mod model;
pub mod policy;

pub use analytics::{Analytics, AnalyticsError, Operation, StatisticalAnalytics};
pub use exec::{Env, ErrorCode, Execution, RunError, RunStatus, Step, StepStatus, execute};
pub use http::{
    DisabledHttp, HostPattern, HttpCaller, HttpError, HttpRequest, HttpResponse, HttpSettings,
    ReqwestCaller,
};
pub use jq::runaway_evaluations;
pub use model::{
    FeatureNeed, Issue, IssueCode, MergeMode, Method, Node, NodeType, ValidationErrors, Workflow,
    required_feature,
};
pub use policy::Policy;
