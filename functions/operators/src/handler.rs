//! Operators handler: route → authorise (`admin`) → parse → `service::operators` → one response
//! mapping. Tokens appear in answers only (create, rotate), never in logs.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::api::{
    CreateOperatorRequest, DisableOperatorRequest, OperatorChangeResponse, OperatorListResponse,
    OperatorTokenResponse, OperatorView, RotateOperatorRequest,
};
use shared::config::AdminAuth;
use shared::domain::OperatorId;
use shared::domain::ports::{Clock, IdSource, OperatorDirectory};
use shared::http::{self, ApiError};
use shared::service::operators::{
    DEFAULT_PAGE, MAX_PAGE, NewOperator, create_operator, disable_operator, list_operators,
    rotate_operator,
};

/// The routes this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Create,
    List,
    Rotate,
    Disable,
}

const ROUTES: &[(&str, Route)] = &[
    (http::keys::OPERATOR_CREATE, Route::Create),
    (http::keys::OPERATOR_LIST, Route::List),
    (http::keys::OPERATOR_ROTATE, Route::Rotate),
    (http::keys::OPERATOR_DISABLE, Route::Disable),
];

/// What the handler needs.
pub struct Deps<S> {
    /// The bootstrap token's check (operators' tokens are looked up in `store`).
    pub auth: AdminAuth,
    /// Operators, their tokens and audit trails.
    pub store: S,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// New operator ids and tokens.
    pub ids: Arc<dyn IdSource>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S: OperatorDirectory>(
    deps: &Deps<S>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S: OperatorDirectory>(
    deps: &Deps<S>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let matched = http::route(req, ROUTES)?;
    let principal = http::authorize(req, &matched, &deps.auth, &deps.store).await?;
    let now = deps.clock.now();
    match matched.route {
        Route::Create => {
            let new = NewOperator::try_from(http::parse_json::<CreateOperatorRequest>(req)?)?;
            let (operator, token) =
                create_operator(&deps.store, deps.ids.as_ref(), new, principal.actor(), now)
                    .await?;
            Ok(http::json(
                StatusCode::CREATED,
                &OperatorTokenResponse {
                    operator: OperatorView::from(&operator),
                    token: token.expose().to_owned(),
                },
            ))
        }
        Route::List => {
            let params = req.query_string_parameters();
            let limit = match params.first("limit") {
                None => DEFAULT_PAGE,
                Some(v) => v.parse::<usize>().map_err(|_| {
                    ApiError::field(
                        "INVALID_FIELD",
                        "limit",
                        format!("limit must be a whole number from 1 to {MAX_PAGE}"),
                    )
                })?,
            };
            let after = params
                .first("after")
                .map(|a| {
                    OperatorId::parse(a).map_err(|_| {
                        ApiError::field(
                            "INVALID_FIELD",
                            "after",
                            "after must be the `next` cursor of an earlier page",
                        )
                    })
                })
                .transpose()?;
            let page = list_operators(&deps.store, after.as_ref(), limit).await?;
            Ok(http::json(
                StatusCode::OK,
                &OperatorListResponse::from(&page),
            ))
        }
        Route::Rotate => {
            let id: OperatorId = matched.id("operatorId")?;
            let reason = http::parse_json::<RotateOperatorRequest>(req)?.reason()?;
            let (operator, token) = rotate_operator(
                &deps.store,
                deps.ids.as_ref(),
                &id,
                reason,
                principal.actor(),
                now,
            )
            .await?;
            Ok(http::json(
                StatusCode::OK,
                &OperatorTokenResponse {
                    operator: OperatorView::from(&operator),
                    token: token.expose().to_owned(),
                },
            ))
        }
        Route::Disable => {
            let id: OperatorId = matched.id("operatorId")?;
            let reason = http::parse_json::<DisableOperatorRequest>(req)?.reason()?;
            let (operator, changed) =
                disable_operator(&deps.store, &id, reason, principal.actor(), now).await?;
            Ok(http::json(
                StatusCode::OK,
                &OperatorChangeResponse {
                    operator: OperatorView::from(&operator),
                    changed,
                },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::adapters::memory::MemoryStore;
    use shared::domain::ports::{RandomIds, SystemClock};
    use shared::domain::{OperatorStatus, Role};
    use shared::testing::{
        MemoryStack, TEST_ADMIN_TOKEN, admin_auth, apigw_v2, body_json, local_request, operator_on,
    };

    fn deps(stack: &MemoryStack) -> Deps<MemoryStore> {
        Deps {
            auth: admin_auth(),
            store: stack.store.clone(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
        }
    }

    async fn call(
        deps: &Deps<MemoryStore>,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let resp = handle(deps, local_request(method, path, Some(token), body))
            .await
            .expect("always Ok");
        (resp.status(), body_json(&resp))
    }

    #[tokio::test]
    async fn an_operator_is_created_with_a_token_shown_once_that_then_authenticates() {
        let stack = MemoryStack::new();
        let d = deps(&stack);
        let (status, body) = call(
            &d,
            "POST",
            "/api/admin/operators",
            TEST_ADMIN_TOKEN,
            Some(r#"{"name":"carol","role":"admin","email":"carol@nectar.example"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["operator"]["name"], "carol");
        assert_eq!(body["operator"]["role"], "admin");
        assert_eq!(body["operator"]["status"], "active");
        assert_eq!(body["operator"]["email"], "carol@nectar.example");
        assert!(body["operator"].get("tokenHash").is_none(), "{body}");
        let token = body["token"].as_str().expect("token").to_owned();
        // The new admin lists operators with its own token; its creation is audited.
        let (status, list) = call(&d, "GET", "/api/admin/operators", &token, None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["operators"][0]["id"], body["operator"]["id"]);
        let id = OperatorId::parse(body["operator"]["id"].as_str().expect("id")).expect("id");
        let trail = stack
            .store
            .operator_audit(&id, None, 10)
            .await
            .expect("trail");
        assert_eq!(trail.entries[0].action, "operator.created");
        assert_eq!(trail.entries[0].actor.as_str(), "operator:bootstrap");
    }

    #[tokio::test]
    async fn the_list_pages_in_creation_order_with_a_cursor() {
        let stack = MemoryStack::new();
        let d = deps(&stack);
        let mut made = Vec::new();
        for i in 0..5 {
            made.push(
                operator_on(&stack.store, &format!("op{i}"), Role::Viewer)
                    .await
                    .0
                    .id
                    .to_string(),
            );
        }
        let mut seen = Vec::new();
        let mut path = "/api/admin/operators?limit=2".to_owned();
        loop {
            let (status, page) = call(&d, "GET", &path, TEST_ADMIN_TOKEN, None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let ops = page["operators"].as_array().expect("operators");
            assert!(ops.len() <= 2);
            seen.extend(
                ops.iter()
                    .map(|o| o["id"].as_str().unwrap_or("").to_owned()),
            );
            match page["next"].as_str() {
                Some(next) => path = format!("/api/admin/operators?limit=2&after={next}"),
                None => break,
            }
        }
        assert_eq!(seen, made);
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=x", "limit"),
            ("after=nope", "after"),
        ] {
            let (status, body) = call(
                &d,
                "GET",
                &format!("/api/admin/operators?{query}"),
                TEST_ADMIN_TOKEN,
                None,
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert_eq!(body["error"]["field"], field, "{query}");
        }
    }

    #[tokio::test]
    async fn rotating_through_api_gateway_replaces_the_token_at_once() {
        let stack = MemoryStack::new();
        let d = deps(&stack);
        let (operator, old) = operator_on(&stack.store, "dave", Role::Support).await;
        let id = operator.id.to_string();
        let resp = handle(
            &d,
            apigw_v2(
                include_str!("../../../tests/fixtures/apigw_v2/operator_rotate.json"),
                &[
                    ("__TOKEN__", TEST_ADMIN_TOKEN),
                    ("__OPERATOR_ID__", &id),
                    ("__REASON__", "laptop lost"),
                ],
            ),
        )
        .await
        .expect("always Ok");
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::OK, "{body}");
        let new = body["token"].as_str().expect("token");
        assert_ne!(new, old.expose());
        // The old token is refused (401), the new one authenticates (a support operator is
        // refused the operator list: 403, not 401).
        let (status, _) = call(&d, "GET", "/api/admin/operators", old.expose(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) = call(&d, "GET", "/api/admin/operators", new, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            body["error"]["message"],
            "this route needs the `admin` role; you are `support`"
        );
        let trail = stack
            .store
            .operator_audit(&operator.id, None, 10)
            .await
            .expect("trail");
        assert_eq!(trail.entries[0].action, "operator.token_rotated");
        assert_eq!(trail.entries[0].reason.as_deref(), Some("laptop lost"));
    }

    #[tokio::test]
    async fn disabling_stops_the_token_is_idempotent_and_frees_the_name() {
        let stack = MemoryStack::new();
        let d = deps(&stack);
        let (admin, admin_token) = operator_on(&stack.store, "erin", Role::Admin).await;
        let (target, token) = operator_on(&stack.store, "frank", Role::Viewer).await;
        let path = format!("/api/admin/operators/{}/disable", target.id);
        let body = Some(r#"{"reason":"left the company"}"#);
        let (status, first) = call(&d, "POST", &path, admin_token.expose(), body).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(
            (
                first["changed"].as_bool(),
                first["operator"]["status"].as_str()
            ),
            (Some(true), Some("disabled"))
        );
        let (status, again) = call(&d, "POST", &path, admin_token.expose(), body).await;
        assert_eq!(
            (status, again["changed"].as_bool()),
            (StatusCode::OK, Some(false))
        );
        let (status, _) = call(&d, "GET", "/api/admin/operators", token.expose(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Rotating a disabled operator is refused; its name can be taken again.
        let (status, refused) = call(
            &d,
            "POST",
            &format!("/api/admin/operators/{}/rotate", target.id),
            admin_token.expose(),
            Some("{}"),
        )
        .await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("INVALID_TRANSITION"))
        );
        let stored = stack
            .store
            .operator(&target.id)
            .await
            .expect("read")
            .expect("kept");
        assert_eq!(stored.status, OperatorStatus::Disabled);
        let trail = stack
            .store
            .operator_audit(&target.id, None, 10)
            .await
            .expect("trail");
        assert_eq!(trail.entries[0].action, "operator.disabled");
        assert_eq!(
            trail.entries[0].actor.as_str(),
            format!("operator:erin ({})", admin.id)
        );
        let (status, _) = call(
            &d,
            "POST",
            "/api/admin/operators",
            admin_token.expose(),
            Some(r#"{"name":"Frank","role":"viewer"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn bad_requests_get_stable_codes() {
        let stack = MemoryStack::new();
        let d = deps(&stack);
        operator_on(&stack.store, "grace", Role::Viewer).await;
        let unknown = "/api/admin/operators/0192e4c4-7b1a-7cde-8f00-123456789abc/rotate";
        let cases: &[(&str, &str, Option<&str>, StatusCode, &str)] = &[
            (
                "POST",
                "/api/admin/operators",
                Some(r#"{"name":"GRACE","role":"viewer"}"#),
                StatusCode::CONFLICT,
                "OPERATOR_NAME_TAKEN",
            ),
            (
                "POST",
                "/api/admin/operators",
                Some(r#"{"name":"bootstrap","role":"admin"}"#),
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
            ),
            (
                "POST",
                "/api/admin/operators",
                Some(r#"{"name":"heidi","role":"root"}"#),
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
            ),
            (
                "POST",
                "/api/admin/operators",
                Some(r#"{"name":"heidi","role":"viewer","email":"not-an-email"}"#),
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
            ),
            (
                "POST",
                "/api/admin/operators",
                Some(r#"{"name":"heidi","role":"viewer","email":null}"#),
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
            ),
            (
                "POST",
                unknown,
                Some("{}"),
                StatusCode::NOT_FOUND,
                "OPERATOR_NOT_FOUND",
            ),
            (
                "POST",
                "/api/admin/operators/0192E4C4-7B1A-7CDE-8F00-123456789ABC/disable",
                Some(r#"{"reason":"x"}"#),
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
            ),
            (
                "POST",
                "/api/admin/operators/0192e4c4-7b1a-7cde-8f00-123456789abc/disable",
                Some("{}"),
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
            ),
            (
                "POST",
                unknown,
                None,
                StatusCode::BAD_REQUEST,
                "MALFORMED_JSON",
            ),
        ];
        for (method, path, body, status, code) in cases {
            let (got, answer) = call(&d, method, path, TEST_ADMIN_TOKEN, *body).await;
            assert_eq!(
                (got, answer["error"]["code"].as_str()),
                (*status, Some(*code)),
                "{method} {path} {body:?}: {answer}"
            );
        }
    }
}
