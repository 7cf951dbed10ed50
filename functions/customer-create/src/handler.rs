//! Create-customer handler: authorise (`admin`) → parse → `service::admin::create_customer`.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::api::{CreateCustomerRequest, CustomerCreatedResponse, CustomerView};
use shared::config::AdminAuth;
use shared::domain::ports::{Clock, CustomerDirectory, IdSource, OperatorDirectory};
use shared::http::{self, ApiError};
use shared::service::admin::create_customer;

/// What the handler needs.
pub struct Deps<D> {
    /// The bootstrap token's check (operators' tokens are looked up in `store`).
    pub auth: AdminAuth,
    /// Customer writes; operator tokens.
    pub store: D,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// New ids.
    pub ids: Arc<dyn IdSource>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<D: CustomerDirectory + OperatorDirectory>(
    deps: &Deps<D>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(deps, &req).await))
}

async fn run<D: CustomerDirectory + OperatorDirectory>(
    deps: &Deps<D>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let matched = http::route(req, &[(http::keys::CUSTOMER_CREATE, ())])?;
    let actor = http::authorize(req, &matched, &deps.auth, &deps.store)
        .await?
        .actor();
    let new = http::parse_json::<CreateCustomerRequest>(req)?.into();
    let customer =
        create_customer(&deps.store, deps.ids.as_ref(), new, actor, deps.clock.now()).await?;
    Ok(http::json(
        StatusCode::CREATED,
        &CustomerCreatedResponse {
            customer: CustomerView::from(&customer),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::ports::{RandomIds, SystemClock};
    use shared::testing::{MemoryStack, TEST_ADMIN_TOKEN, admin_auth, apigw_v2, body_json};

    #[tokio::test]
    async fn creating_a_customer_answers_201_with_its_new_id() {
        let stack = MemoryStack::new();
        let deps = Deps {
            auth: admin_auth(),
            store: stack.store.clone(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
        };
        let req = apigw_v2(
            include_str!("../../../tests/fixtures/apigw_v2/customer_create.json"),
            &[("__ADMIN_TOKEN__", TEST_ADMIN_TOKEN)],
        );
        let resp = handle(&deps, req).await.expect("always Ok");
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::CREATED, "{body}");
        assert_eq!(body["customer"]["email"], "ops@acme.example");
        let id = shared::domain::CustomerId::parse(body["customer"]["id"].as_str().expect("id"))
            .expect("uuid");
        assert!(stack.store.customer(&id).await.expect("read").is_some());
    }
}
