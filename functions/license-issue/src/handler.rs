//! Issue handler: authenticate → parse → `service::admin::issue_license` (signs with KMS).

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::api::{IssueLicenseRequest, LicenseIssuedResponse, LicenseView};
use shared::config::AdminAuth;
use shared::domain::ports::{Clock, CustomerDirectory, IdSource, LicenseWriter, TokenSigner};
use shared::http::{self, ApiError};
use shared::service::admin::{IssueCommand, issue_license};

/// What the handler needs.
pub struct Deps<S> {
    /// Admin token check.
    pub auth: AdminAuth,
    /// Customer reads and license writes.
    pub store: S,
    /// Signs the new key.
    pub signer: Arc<dyn TokenSigner>,
    /// `iss` claim.
    pub issuer: String,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// New ids.
    pub ids: Arc<dyn IdSource>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error>
where
    S: CustomerDirectory + LicenseWriter,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: CustomerDirectory + LicenseWriter,
{
    http::require_method(req, &Method::POST)?;
    let actor = http::admin_actor(req, &deps.auth)?;
    let cmd = IssueCommand::try_from(http::parse_json::<IssueLicenseRequest>(req)?)?;
    let (license, key) = issue_license(
        &deps.store,
        deps.signer.as_ref(),
        deps.ids.as_ref(),
        &deps.issuer,
        cmd,
        actor,
        deps.clock.now(),
    )
    .await?;
    Ok(http::json(
        StatusCode::CREATED,
        &LicenseIssuedResponse {
            license: LicenseView::from(&license),
            license_key: key.expose().to_owned(),
        },
    ))
}
