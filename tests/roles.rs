//! Every admin route × every kind of credential, as a specification table (`CASES`: the role
//! each route needs, written out here on purpose, independently of `shared::http::access::ROLES`).
//!
//! Two layers:
//! - `handlers::` — the real handlers of every admin function on the memory adapters (no stack,
//!   part of plain `cargo test`): a permitted role gets the route's success status, a lower role
//!   `403 FORBIDDEN` naming both roles, a disabled, unknown or missing token the one `401` —
//!   refused credentials are decided before the body is read (it is malformed on purpose);
//! - `http::` — over HTTP against the stack `make test` starts (the function binaries as
//!   deployed): the same matrix, with operators made through the API by the bootstrap token; an
//!   operator's whole life — create, act, audit trail, rotate (old token 401), disable (401); and
//!   the same life through `nectar-admin operator …`.

use serde_json::{Value, json};
use shared::domain::Role;
use shared::http::keys;

/// One admin route: its key, the role the specification gives it, and its success status.
struct Case {
    key: &'static str,
    needs: Role,
    ok: u16,
}

const fn case(key: &'static str, needs: Role, ok: u16) -> Case {
    Case { key, needs, ok }
}

/// The specification: who may call what.
const CASES: &[Case] = &[
    case(keys::CUSTOMER_LICENSES, Role::Viewer, 200),
    case(keys::LICENSE_AUDIT, Role::Viewer, 200),
    case(keys::LICENSE_USAGE, Role::Viewer, 200),
    case(keys::FLEET_CUSTOMERS, Role::Viewer, 200),
    case(keys::FLEET_LICENSES, Role::Viewer, 200),
    case(keys::FLEET_INSTALLATIONS, Role::Viewer, 200),
    case(keys::FLEET_ATTENTION, Role::Viewer, 200),
    case(keys::METRICS, Role::Viewer, 200),
    case(keys::METRICS_HISTORY, Role::Viewer, 200),
    case(keys::USAGE_REPORT, Role::Viewer, 200),
    case(keys::LICENSE_SUSPEND, Role::Support, 200),
    case(keys::LICENSE_REINSTATE, Role::Support, 200),
    case(keys::LICENSE_RENEW, Role::Support, 200),
    case(keys::INSTALLATION_RELEASE, Role::Support, 200),
    case(keys::REVOKE, Role::Admin, 200),
    case(keys::CUSTOMER_CREATE, Role::Admin, 201),
    case(keys::LICENSE_ISSUE, Role::Admin, 201),
    case(keys::LICENSE_CHANGE, Role::Admin, 200),
    case(keys::LICENSE_ACTIVATE, Role::Admin, 201),
    case(keys::OPERATOR_CREATE, Role::Admin, 201),
    case(keys::OPERATOR_LIST, Role::Admin, 200),
    case(keys::OPERATOR_ROTATE, Role::Admin, 200),
    case(keys::OPERATOR_DISABLE, Role::Admin, 200),
];

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// A stored operator with this role.
    Operator(Role),
    /// The bootstrap token (an `admin`).
    Bootstrap,
    /// A disabled operator's token (it was an `admin`).
    Disabled,
    /// A well-formed token nobody holds.
    Unknown,
    /// No `Authorization` header.
    Missing,
}

const CALLERS: &[Caller] = &[
    Caller::Operator(Role::Viewer),
    Caller::Operator(Role::Support),
    Caller::Operator(Role::Admin),
    Caller::Bootstrap,
    Caller::Disabled,
    Caller::Unknown,
    Caller::Missing,
];

/// What `caller` must get from a route that needs `needs`: `Ok(())` for the success status,
/// `Err((status, body))` for a refusal.
fn expected(caller: Caller, needs: Role) -> Result<(), (u16, Value)> {
    let role = match caller {
        Caller::Operator(role) => role,
        Caller::Bootstrap => Role::Admin,
        Caller::Disabled | Caller::Unknown | Caller::Missing => {
            return Err((
                401,
                json!({"error": {"code": "UNAUTHORIZED", "message": "missing or invalid admin credentials"}}),
            ));
        }
    };
    if role >= needs {
        Ok(())
    } else {
        Err((
            403,
            json!({"error": {"code": "FORBIDDEN", "message":
                format!("this route needs the `{needs}` role; you are `{role}`")}}),
        ))
    }
}

#[test]
fn the_specification_covers_every_admin_route_and_agrees_with_the_code() {
    let specified: Vec<&str> = CASES.iter().map(|c| c.key).collect();
    let admin: Vec<&str> = keys::ALL
        .iter()
        .copied()
        .filter(|k| shared::http::access::required_role(k).is_some())
        .collect();
    let mut a = specified.clone();
    let mut b = admin.clone();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "every admin route is specified here, once");
    for c in CASES {
        assert_eq!(
            shared::http::access::required_role(c.key),
            Some(c.needs),
            "{}",
            c.key
        );
    }
}

mod handlers {
    //! The matrix on the handlers themselves, memory adapters.

    use super::*;
    use std::sync::Arc;

    use lambda_http::{Body, Request, Response};
    use shared::adapters::memory::MemoryStore;
    use shared::domain::ports::{Clock, OperatorDirectory, RandomIds, SystemClock, TokenSigner};
    use shared::domain::{Operator, OperatorToken, Plan, Principal};
    use shared::service::operators::disable_operator;
    use shared::testing::{
        Issued, MemoryStack, TEST_ADMIN_TOKEN, TEST_ISSUER, admin_auth, body_json, local_request,
        operator_on,
    };

    /// A fresh world for one route: a license, an operator of each role, a disabled one, and a
    /// bystander operator for the operator routes to act on.
    struct World {
        stack: MemoryStack,
        issued: Issued,
        tokens: Vec<(Caller, Option<String>)>,
        target: Operator,
    }

    async fn world() -> World {
        let stack = MemoryStack::new();
        let issued = stack
            .issue(Plan::Professional, SystemClock.now(), |_| {})
            .await;
        // An installation holding a seat, for the release route (releasing twice is a 200 too).
        let report = shared::domain::ports::HeartbeatReport {
            license_id: issued.license.id.clone(),
            installation_id: shared::domain::InstallationId::parse("node-1").expect("id"),
            version: "1.0.0".into(),
            domain: None,
            gauges: Default::default(),
            at: SystemClock.now(),
        };
        shared::domain::ports::InstallationRegistry::claim_seat(&stack.store, &report, 5)
            .await
            .expect("a seat");
        let mut tokens = vec![(Caller::Bootstrap, Some(TEST_ADMIN_TOKEN.to_owned()))];
        for role in Role::ALL {
            let (_, token) = operator_on(&stack.store, &format!("as-{role}"), *role).await;
            tokens.push((Caller::Operator(*role), Some(token.expose().to_owned())));
        }
        let (gone, token) = operator_on(&stack.store, "gone", Role::Admin).await;
        disable_operator(
            &stack.store,
            &gone.id,
            "left".into(),
            Principal::bootstrap().actor(),
            SystemClock.now(),
        )
        .await
        .expect("disable");
        tokens.push((Caller::Disabled, Some(token.expose().to_owned())));
        let stranger = OperatorToken::from_random_bytes([42; 32]);
        tokens.push((Caller::Unknown, Some(stranger.expose().to_owned())));
        tokens.push((Caller::Missing, None));
        let (target, _) = operator_on(&stack.store, "bystander", Role::Viewer).await;
        World {
            stack,
            issued,
            tokens,
            target,
        }
    }

    /// Calls route `key` of `world` as `token`: its function's real handler with a request as
    /// the local router delivers it — a valid body, or a malformed one when `valid` is false.
    async fn call(
        w: &World,
        key: &str,
        token: Option<&str>,
        valid: bool,
        n: usize,
    ) -> Response<Body> {
        let store: MemoryStore = w.stack.store.clone();
        let lid = w.issued.license.id.as_str();
        let cid = w.issued.customer.id.to_string();
        let op = w.target.id.to_string();
        let (method, path, body): (&str, String, String) = match key {
            keys::CUSTOMER_LICENSES => ("GET", format!("/api/license/{cid}"), String::new()),
            keys::LICENSE_AUDIT => (
                "GET",
                format!("/api/admin/licenses/{lid}/audit"),
                String::new(),
            ),
            keys::LICENSE_USAGE => (
                "GET",
                format!("/api/admin/licenses/{lid}/usage"),
                String::new(),
            ),
            keys::LICENSE_SUSPEND => (
                "POST",
                format!("/api/admin/licenses/{lid}/suspend"),
                json!({"reason": "r"}).to_string(),
            ),
            keys::LICENSE_REINSTATE => (
                "POST",
                format!("/api/admin/licenses/{lid}/reinstate"),
                json!({"reason": "r"}).to_string(),
            ),
            keys::INSTALLATION_RELEASE => (
                "POST",
                format!("/api/admin/licenses/{lid}/installations/node-1/release"),
                json!({"reason": "r"}).to_string(),
            ),
            keys::LICENSE_RENEW => (
                "POST",
                format!("/api/admin/licenses/{lid}/renew"),
                json!({"validDays": 60}).to_string(),
            ),
            keys::REVOKE => (
                "POST",
                "/api/revoke".into(),
                json!({"licenseId": lid, "reason": "r"}).to_string(),
            ),
            keys::CUSTOMER_CREATE => (
                "POST",
                "/api/admin/customers".into(),
                json!({"name": "Globex", "email": "it@globex.example"}).to_string(),
            ),
            keys::LICENSE_ISSUE => (
                "POST",
                "/api/admin/licenses".into(),
                json!({"customerId": cid, "plan": "starter"}).to_string(),
            ),
            keys::LICENSE_CHANGE => (
                "PATCH",
                format!("/api/admin/licenses/{lid}"),
                json!({"limits": {"users": 6 + n}, "reason": "r"}).to_string(),
            ),
            keys::LICENSE_ACTIVATE => (
                "POST",
                format!("/api/admin/licenses/{lid}/activations"),
                json!({"installationId": format!("air-{n}")}).to_string(),
            ),
            keys::OPERATOR_CREATE => (
                "POST",
                "/api/admin/operators".into(),
                json!({"name": format!("new-{n}"), "role": "viewer"}).to_string(),
            ),
            keys::OPERATOR_LIST => ("GET", "/api/admin/operators".into(), String::new()),
            keys::FLEET_CUSTOMERS => (
                "GET",
                "/api/admin/fleet/customers?namePrefix=a".into(),
                String::new(),
            ),
            keys::FLEET_LICENSES => (
                "GET",
                "/api/admin/fleet/licenses?status=active".into(),
                String::new(),
            ),
            keys::FLEET_INSTALLATIONS => (
                "GET",
                format!("/api/admin/fleet/installations?licenseId={lid}"),
                String::new(),
            ),
            keys::FLEET_ATTENTION => (
                "GET",
                "/api/admin/fleet/attention?kind=expiring".into(),
                String::new(),
            ),
            keys::METRICS => ("GET", "/api/admin/metrics".into(), String::new()),
            keys::METRICS_HISTORY => (
                "GET",
                "/api/admin/metrics/history?from=2026-01-01&to=2026-01-31".into(),
                String::new(),
            ),
            keys::USAGE_REPORT => (
                "GET",
                "/api/admin/reports/usage?period=2026-06".into(),
                String::new(),
            ),
            keys::OPERATOR_ROTATE => (
                "POST",
                format!("/api/admin/operators/{op}/rotate"),
                "{}".into(),
            ),
            keys::OPERATOR_DISABLE => (
                "POST",
                format!("/api/admin/operators/{op}/disable"),
                json!({"reason": "r"}).to_string(),
            ),
            other => panic!("no request for {other}: add it here"),
        };
        let body = match (method, valid) {
            ("GET", _) => None,
            (_, true) => Some(body.as_str()),
            (_, false) => Some("{not json"),
        };
        let req: Request = local_request(method, &path, token, body);
        let clock = Arc::new(SystemClock);
        let signer: Arc<dyn TokenSigner> = Arc::new(w.stack.signer().await);
        match key {
            keys::CUSTOMER_LICENSES | keys::LICENSE_AUDIT => {
                let deps = license_lookup::handler::Deps {
                    auth: admin_auth(),
                    store,
                };
                license_lookup::handler::handle(&deps, req).await
            }
            keys::FLEET_CUSTOMERS
            | keys::FLEET_LICENSES
            | keys::FLEET_INSTALLATIONS
            | keys::FLEET_ATTENTION
            | keys::METRICS
            | keys::METRICS_HISTORY
            | keys::USAGE_REPORT => {
                let prices = shared::domain::revenue::PriceList::default();
                // The summary reads the latest daily snapshot: record one first.
                shared::service::metrics::record_daily(&store, &prices, clock.now())
                    .await
                    .expect("snapshot");
                let deps = fleet::handler::Deps {
                    auth: admin_auth(),
                    store,
                    clock,
                    prices,
                };
                fleet::handler::handle(&deps, req).await
            }
            keys::LICENSE_USAGE => {
                let deps = usage_stats::handler::Deps {
                    ring: w.stack.key_ring().await,
                    auth: admin_auth(),
                    store,
                    clock,
                };
                usage_stats::handler::handle(&deps, req).await
            }
            keys::LICENSE_SUSPEND | keys::LICENSE_REINSTATE | keys::INSTALLATION_RELEASE => {
                let deps = license_status::handler::Deps {
                    auth: admin_auth(),
                    store,
                    clock,
                };
                license_status::handler::handle(&deps, req).await
            }
            keys::LICENSE_RENEW | keys::LICENSE_ISSUE | keys::LICENSE_CHANGE => {
                let deps = license_issue::handler::Deps {
                    auth: admin_auth(),
                    store,
                    signer,
                    issuer: TEST_ISSUER.into(),
                    clock,
                    ids: Arc::new(RandomIds),
                };
                license_issue::handler::handle(&deps, req).await
            }
            keys::REVOKE => {
                let deps = revoke::handler::Deps {
                    auth: admin_auth(),
                    store,
                    clock,
                };
                revoke::handler::handle(&deps, req).await
            }
            keys::CUSTOMER_CREATE => {
                let deps = customer_create::handler::Deps {
                    auth: admin_auth(),
                    store,
                    clock,
                    ids: Arc::new(RandomIds),
                };
                customer_create::handler::handle(&deps, req).await
            }
            keys::LICENSE_ACTIVATE => {
                let deps = license_activate::handler::Deps {
                    auth: admin_auth(),
                    store,
                    lease_signer: Arc::new(w.stack.lease_signer().await),
                    issuer: TEST_ISSUER.into(),
                    clock,
                };
                license_activate::handler::handle(&deps, req).await
            }
            _ => {
                let deps = operators::handler::Deps {
                    auth: admin_auth(),
                    store,
                    clock,
                    ids: Arc::new(RandomIds),
                };
                operators::handler::handle(&deps, req).await
            }
        }
        .expect("handlers always answer")
    }

    #[tokio::test]
    async fn every_admin_route_answers_each_caller_as_its_role_allows() {
        let mut failures = Vec::new();
        for (n, c) in CASES.iter().enumerate() {
            let w = world().await;
            for (i, (caller, token)) in w.tokens.iter().enumerate() {
                let want = expected(*caller, c.needs);
                // Refused callers send a malformed body: refusal comes before parsing.
                let resp = call(&w, c.key, token.as_deref(), want.is_ok(), n * 10 + i).await;
                let status = resp.status().as_u16();
                // Every answer is JSON but a successful CSV download.
                let csv = resp
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/csv"));
                let body = if csv { Value::Null } else { body_json(&resp) };
                let ok = match &want {
                    Ok(()) => status == c.ok,
                    Err((s, b)) => status == *s && body == *b,
                };
                if !ok {
                    failures.push(format!(
                        "{} as {caller:?}: got {status} {body}, want {}",
                        c.key,
                        match &want {
                            Ok(()) => c.ok.to_string(),
                            Err((s, b)) => format!("{s} {b}"),
                        }
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        // The caller list this test iterates is the one the specification names.
        assert_eq!(world().await.tokens.len(), CALLERS.len());
    }

    #[tokio::test]
    async fn a_license_change_is_audited_under_the_operator_who_made_it() {
        let w = world().await;
        let support = w
            .tokens
            .iter()
            .find(|(c, _)| *c == Caller::Operator(Role::Support))
            .and_then(|(_, t)| t.clone())
            .expect("support token");
        let resp = call(&w, keys::LICENSE_SUSPEND, Some(&support), true, 0).await;
        assert_eq!(resp.status(), 200, "{}", body_json(&resp));
        let credential = w
            .stack
            .store
            .credential(&shared::domain::TokenHash::of(&support))
            .await
            .expect("read")
            .expect("active");
        let (_, licenses) =
            shared::service::admin::lookup_customer(&w.stack.store, &w.issued.customer.id)
                .await
                .expect("lookup");
        let last = licenses[0].audit.last().expect("an entry");
        assert_eq!(last.action, "license.suspended");
        assert_eq!(
            last.actor.as_str(),
            format!("operator:as-support ({})", credential.operator_id)
        );
    }
}

mod http {
    //! Over HTTP, against the stack `make test` starts.

    use super::*;
    use e2e::{Api, cli};
    use reqwest::{Method, StatusCode};

    /// Creates an operator through the API with the bootstrap token; its id and token.
    async fn create(api: &Api, role: Role) -> (String, String) {
        let name = format!(
            "e2e-{role}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let (status, body) = api
            .admin_post(
                "/api/admin/operators",
                json!({"name": name, "role": role.as_str()}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["operator"]["id"].as_str().expect("id").to_owned(),
            body["token"].as_str().expect("token").to_owned(),
        )
    }

    fn method_and_path(key: &str) -> (Method, String) {
        // Ids that exist nowhere: a permitted caller gets a domain answer (404, 400, 409), never
        // 401 or 403, and nothing is changed.
        let (method, template) = key.split_once(' ').expect("a route key");
        let path = template
            .replace("{licenseId}", "NECTAR-STARTER-2026-NOSUCH01")
            .replace("{customerId}", "0b7f3c8e-2f0c-4c1e-9d8a-3b2f1e0d9c8b")
            .replace("{operatorId}", "0192e4c4-7b1a-7cde-8f00-123456789abc")
            .replace("{installationId}", "no-such-node");
        (Method::from_bytes(method.as_bytes()).expect("method"), path)
    }

    #[tokio::test]
    #[ignore = "end-to-end: needs the stack `make test` starts"]
    async fn every_admin_route_refuses_or_serves_each_caller_by_role_over_http() {
        let api = Api::from_env();
        let mut callers: Vec<(Caller, Option<String>)> = Vec::new();
        for role in Role::ALL {
            callers.push((Caller::Operator(*role), Some(create(&api, *role).await.1)));
        }
        let (gone, gone_token) = create(&api, Role::Admin).await;
        let (status, body) = api
            .admin_post(
                &format!("/api/admin/operators/{gone}/disable"),
                json!({"reason": "e2e"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        callers.push((Caller::Disabled, Some(gone_token)));
        callers.push((
            Caller::Unknown,
            Some(
                shared::domain::OperatorToken::from_random_bytes([7; 32])
                    .expose()
                    .to_owned(),
            ),
        ));
        callers.push((Caller::Missing, None));
        let mut failures = Vec::new();
        for c in CASES {
            let (method, path) = method_and_path(c.key);
            for (caller, token) in &callers {
                let body =
                    (method == Method::POST || method == Method::PATCH).then(|| b"{}".to_vec());
                let (status, answer, _) = api
                    .send(method.clone(), &path, body, token.as_deref())
                    .await;
                let ok = match expected(*caller, c.needs) {
                    Ok(()) => !matches!(status.as_u16(), 401 | 403) && !status.is_server_error(),
                    Err((s, b)) => status.as_u16() == s && answer == b,
                };
                if !ok {
                    failures.push(format!("{} as {caller:?}: {status} {answer}", c.key));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[tokio::test]
    #[ignore = "end-to-end: needs the stack `make test` starts"]
    async fn an_operator_acts_under_its_name_then_rotation_and_disabling_stop_its_tokens() {
        let api = Api::from_env();
        // The bootstrap token creates a support operator.
        let name = format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let (status, created) = api
            .admin_post(
                "/api/admin/operators",
                json!({"name": name, "role": "support", "email": "ops@nectar.example"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["operator"]["id"].as_str().expect("id").to_owned();
        let token = created["token"].as_str().expect("token").to_owned();
        assert!(token.starts_with("nop_"), "{token}");

        // It suspends a license: the trail names it.
        let (license, _) = api.issue("professional", json!({})).await;
        let lid = license["id"].as_str().expect("id");
        let cid = license["customerId"].as_str().expect("customer");
        let post = |path: String, body: Value, token: String| {
            let api = &api;
            async move {
                let (s, v, _) = api
                    .send(
                        Method::POST,
                        &path,
                        Some(body.to_string().into_bytes()),
                        Some(&token),
                    )
                    .await;
                (s, v)
            }
        };
        let get = |path: String, token: String| {
            let api = &api;
            async move {
                let (s, v, _) = api.send(Method::GET, &path, None, Some(&token)).await;
                (s, v)
            }
        };
        let (status, body) = post(
            format!("/api/admin/licenses/{lid}/suspend"),
            json!({"reason": "invoice overdue"}),
            token.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, lookup) = get(format!("/api/license/{cid}"), token.clone()).await;
        assert_eq!(status, StatusCode::OK, "{lookup}");
        let last = lookup["licenses"][0]["audit"]
            .as_array()
            .and_then(|a| a.last().cloned())
            .expect("an entry");
        assert_eq!(last["action"], "license.suspended");
        assert_eq!(last["actor"], format!("operator:{name} ({id})"));
        // Issuing needs admin.
        let (status, body) = post(
            "/api/admin/licenses".into(),
            json!({"customerId": cid, "plan": "starter"}),
            token.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            body["error"]["message"],
            "this route needs the `admin` role; you are `support`"
        );

        // Rotated: the old token is 401 at once, the new one works.
        let (status, rotated) = api
            .admin_post(
                &format!("/api/admin/operators/{id}/rotate"),
                json!({"reason": "e2e"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{rotated}");
        let new = rotated["token"].as_str().expect("token").to_owned();
        let (status, body) = get(format!("/api/license/{cid}"), token.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        let (status, body) = get(format!("/api/license/{cid}"), new.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // Disabled: the new token is 401 too; the list shows it disabled.
        let (status, body) = api
            .admin_post(
                &format!("/api/admin/operators/{id}/disable"),
                json!({"reason": "e2e done"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = get(format!("/api/license/{cid}"), new).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"))
        );
        let mut after: Option<String> = None;
        let listed = loop {
            let path = match &after {
                Some(a) => format!("/api/admin/operators?limit=100&after={a}"),
                None => "/api/admin/operators?limit=100".to_owned(),
            };
            let (status, page) = api.admin_get(&path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            if let Some(op) = page["operators"]
                .as_array()
                .and_then(|ops| ops.iter().find(|o| o["id"] == id.as_str()).cloned())
            {
                break op;
            }
            after = Some(
                page["next"]
                    .as_str()
                    .expect("listed on a later page")
                    .to_owned(),
            );
        };
        assert_eq!(listed["status"], "disabled");
        assert_eq!(listed["name"], name.as_str());
    }

    #[tokio::test]
    #[ignore = "end-to-end: needs the stack `make test` starts"]
    async fn the_cli_renews_a_license_and_pages_its_audit_trail() {
        // Arrange: a license issued over the API.
        let api = Api::from_env();
        let (license, _) = api.issue("starter", json!({"validDays": 10})).await;
        let id = license["id"].as_str().expect("id");
        // Act: renew through the CLI, with the stack's signing key and issuer.
        let renewed = cli(&[
            "renew",
            id,
            "--days",
            "30",
            "--reason",
            "renewal order 77",
            "--signing-key",
            &api.signing_key,
            "--issuer",
            &api.issuer,
        ]);
        // Assert: the new key validates on the stack; the trail pages newest first.
        let key = renewed["licenseKey"].as_str().expect("key");
        assert_eq!(
            api.validate(key, "cli-node", json!({})).await["code"],
            "VALID"
        );
        let newest = cli(&["audit", id, "--limit", "1"]);
        assert_eq!(
            newest["entries"][0]["action"], "license.renewed",
            "{newest}"
        );
        assert!(
            newest["entries"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("renewal order 77")),
            "{newest}"
        );
        let next = newest["next"].as_str().expect("an older page");
        let older = cli(&["audit", id, "--limit", "1", "--before", next]);
        assert_eq!(older["entries"][0]["action"], "license.issued", "{older}");
    }

    #[tokio::test]
    #[ignore = "end-to-end: needs the stack `make test` starts"]
    async fn the_cli_changes_a_license_and_moves_it_to_another_customer() {
        // Arrange
        let api = Api::from_env();
        let (license, old_key) = api.issue("starter", json!({})).await;
        let id = license["id"].as_str().expect("id");
        let buyer = api.new_customer().await;
        let sign = ["--signing-key", &api.signing_key, "--issuer", &api.issuer];
        // Act: an upgrade with a seat override and a negotiated price, then a move.
        let mut upgrade = vec![
            "change",
            id,
            "--plan",
            "professional",
            "--installations",
            "7",
            "--price",
            "120000",
            "--reason",
            "order 88",
        ];
        upgrade.extend(sign);
        let upgraded = cli(&upgrade);
        let mut moving = vec!["change", id, "--move-to", &buyer, "--reason", "acquired"];
        moving.extend(sign);
        let moved = cli(&moving);
        // Assert
        assert_eq!(upgraded["license"]["plan"], "professional", "{upgraded}");
        assert_eq!(upgraded["license"]["limits"]["installations"], 7);
        assert_eq!(upgraded["contract"]["price"], 120_000);
        assert_eq!(upgraded["previousKeysRevoked"], false);
        assert_eq!(moved["license"]["customerId"], buyer.as_str());
        assert_eq!(moved["previousKeysRevoked"], true);
        let new_key = moved["licenseKey"].as_str().expect("key");
        assert_eq!(
            api.validate(new_key, "cli-node", json!({})).await["code"],
            "VALID"
        );
        assert_eq!(
            api.validate(&old_key, "cli-node", json!({})).await["code"],
            "REVOKED"
        );
        let (status, listed) = api.admin_get(&format!("/api/license/{buyer}")).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        assert_eq!(listed["licenses"][0]["id"], id, "{listed}");
        let newest = cli(&["audit", id, "--limit", "2"]);
        let actions: Vec<&str> = newest["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert_eq!(actions, ["license.moved", "license.changed"], "{newest}");
    }

    #[tokio::test]
    #[ignore = "end-to-end: needs the stack `make test` starts"]
    async fn the_cli_creates_lists_rotates_and_disables_operators_the_api_then_honours() {
        let api = Api::from_env();
        let name = format!("cli-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let created = cli(&["operator", "create", "--name", &name, "--role", "admin"]);
        let id = created["operator"]["id"].as_str().expect("id").to_owned();
        let token = created["token"].as_str().expect("token").to_owned();
        let list = |token: &str| {
            let api = &api;
            let token = token.to_owned();
            async move {
                api.send(
                    Method::GET,
                    "/api/admin/operators?limit=1",
                    None,
                    Some(&token),
                )
                .await
                .0
            }
        };
        assert_eq!(list(&token).await, StatusCode::OK);
        let listed = cli(&[
            "operator",
            "list",
            "--after",
            "00000000-0000-0000-0000-000000000000",
        ]);
        assert!(listed["operators"].is_array(), "{listed}");
        let rotated = cli(&["operator", "rotate", &id, "--reason", "cli e2e"]);
        let new = rotated["token"].as_str().expect("token").to_owned();
        assert_eq!(list(&token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(list(&new).await, StatusCode::OK);
        let disabled = cli(&["operator", "disable", &id, "--reason", "cli e2e done"]);
        assert_eq!(disabled["operator"]["status"], "disabled");
        assert_eq!(disabled["changed"], true);
        assert_eq!(list(&new).await, StatusCode::UNAUTHORIZED);
    }
}
