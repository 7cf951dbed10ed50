//! The console's requests: route → (assets and sign-in need no session) → session → for a
//! state-changing request the same-origin rule and the CSRF token → the role the page or action
//! needs → the shared services → a page, a redirect, or the one error page.
//!
//! Pages read through the same services and store ports as the API (fleet listings, the metrics
//! snapshots, the admin services), so the console can do nothing the API would not let the same
//! operator do, and each page's reads are bounded (asserted in the tests). Errors map through the
//! API's own `DomainError` → status/code mapping, rendered as a page that says what to do.

use std::sync::Arc;

use lambda_http::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, SET_COOKIE};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use time::{Duration, OffsetDateTime};

use shared::api::fleet::{Params, customer_query, encode_cursor, license_query};
use shared::config::AdminAuth;
use shared::domain::fleet::{AttentionKind, InstallationFilter};
use shared::domain::ports::{
    AuditLog, Clock, CustomerDirectory, FleetIndex, IdSource, InstallationRegistry, LicenseAmender,
    LicenseReader, LicenseWriter, LifecycleIndex, MetricsStore, OperatorDirectory, SessionStore,
    TokenSigner, UsageLedger,
};
use shared::domain::revenue::{Channel, PriceList};
use shared::domain::session::ConsoleSession;
use shared::domain::{
    DomainError, InstallationId, InstallationStatus, LicenseId, LicenseStatus, Period, Plan, Role,
};
use shared::http::{self, ApiError, keys};
use shared::service::admin::{StatusAction, Term};
use shared::service::changes::ChangeCommand;

use crate::pages::{self, Me, When, money};
use crate::session::{self as sessions, Lifetime, SESSION_COOKIE, SIGN_IN_COOKIE};
use crate::web;
pub use crate::web::Edge;

/// What the console needs.
pub struct Deps<S> {
    /// The bootstrap token's check.
    pub auth: AdminAuth,
    /// Every read and write the pages make, sessions included.
    pub store: S,
    /// Signs the keys the console issues, renews and changes.
    pub signer: Arc<dyn TokenSigner>,
    /// `iss` claim.
    pub issuer: String,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Session secrets, CSRF tokens, new ids.
    pub ids: Arc<dyn IdSource>,
    /// Prices (the usage report's amounts).
    pub prices: PriceList,
    /// How long a session lasts.
    pub lifetime: Lifetime,
    /// What stands in front (which header names the requested host).
    pub edge: web::Edge,
}

/// The store the console uses.
pub trait ConsoleStore:
    SessionStore
    + OperatorDirectory
    + FleetIndex
    + LifecycleIndex
    + MetricsStore
    + CustomerDirectory
    + LicenseReader
    + LicenseWriter
    + LicenseAmender
    + InstallationRegistry
    + AuditLog
    + UsageLedger
{
}
impl<T> ConsoleStore for T where
    T: SessionStore
        + OperatorDirectory
        + FleetIndex
        + LifecycleIndex
        + MetricsStore
        + CustomerDirectory
        + LicenseReader
        + LicenseWriter
        + LicenseAmender
        + InstallationRegistry
        + AuditLog
        + UsageLedger
{
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Home,
    SignInPage,
    SignIn,
    SignOut,
    Licenses,
    NewLicense,
    Issue,
    License,
    Action,
    Release,
    Customers,
    Installations,
    Usage,
    Revenue,
    UsageCsv,
    Asset,
}

/// Every console route; `licenses/new` before `licenses/{licenseId}`.
const ROUTES: &[(&str, Route)] = &[
    (keys::CONSOLE_HOME, Route::Home),
    (keys::CONSOLE_SIGN_IN_PAGE, Route::SignInPage),
    (keys::CONSOLE_SIGN_IN, Route::SignIn),
    (keys::CONSOLE_SIGN_OUT, Route::SignOut),
    (keys::CONSOLE_LICENSES, Route::Licenses),
    (keys::CONSOLE_NEW_LICENSE, Route::NewLicense),
    (keys::CONSOLE_ISSUE, Route::Issue),
    (keys::CONSOLE_LICENSE, Route::License),
    (keys::CONSOLE_LICENSE_ACTION, Route::Action),
    (keys::CONSOLE_RELEASE, Route::Release),
    (keys::CONSOLE_CUSTOMERS, Route::Customers),
    (keys::CONSOLE_INSTALLATIONS, Route::Installations),
    (keys::CONSOLE_USAGE, Route::Usage),
    (keys::CONSOLE_REVENUE, Route::Revenue),
    (keys::CONSOLE_USAGE_CSV, Route::UsageCsv),
    (keys::CONSOLE_ASSET, Route::Asset),
];

/// A failed request: the API's error, and who was signed in (for the layout).
struct Failure {
    error: ApiError,
    me: Option<Box<Me>>,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self { error, me: None }
    }
}

impl From<DomainError> for Failure {
    fn from(e: DomainError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<shared::domain::StoreError> for Failure {
    fn from(e: shared::domain::StoreError) -> Self {
        DomainError::from(e).into()
    }
}

fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::field("INVALID_FIELD", field, message)
}

/// Handles one request; always `Ok` (errors are pages).
pub async fn handle<S: ConsoleStore>(
    deps: &Deps<S>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(match run(deps, &req).await {
        Ok(response) => response,
        Err(f) => error_page(&f),
    })
}

fn error_page(f: &Failure) -> Response<Body> {
    let e = &f.error;
    if e.status.is_server_error() {
        tracing::error!(code = e.code, message = %e.message, "console request failed");
    }
    let hint = match e.status.as_u16() {
        400 => "Check the form's values and send it again.",
        401 => "Sign in again.",
        403 => "Ask an admin for the role this needs, or reload the page and try again.",
        404 => "Check the address; the license or customer may not exist.",
        409 => "The license changed meanwhile: reload its page and look again.",
        _ => "Try again in a moment; if it keeps failing, the function's logs say why.",
    };
    let page = pages::ErrorPage {
        me: f.me.as_deref().cloned(),
        status: e.status.as_u16(),
        code: e.code.to_owned(),
        message: e.message.clone(),
        hint: hint.to_owned(),
    };
    let body = pages::render(&page).unwrap_or_else(|_| e.message.clone());
    web::html(e.status, body)
}

async fn run<S: ConsoleStore>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, Failure> {
    let matched = http::route(req, ROUTES)?;
    let now = deps.clock.now();
    match matched.route {
        Route::Asset => return asset(matched.param("file").unwrap_or_default()),
        Route::SignInPage | Route::SignIn => return sign_in(deps, req, matched.route, now).await,
        _ => {}
    }
    let session = sessions::current(
        &deps.store,
        &deps.auth,
        web::cookie(req, SESSION_COOKIE),
        now,
    )
    .await?;
    let posting = req.method() == lambda_http::http::Method::POST;
    let Some(session) = session else {
        if posting {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "SIGNED_OUT",
                "your session has ended (or was never opened): sign in again",
            )
            .into());
        }
        let next = format!(
            "{}{}",
            req.uri().path(),
            req.uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        );
        return Ok(web::redirect(
            &format!("/console/sign-in?next={}", web::encode(&next)),
            &[],
        ));
    };
    let me = Me::new(&session.principal, &session.csrf);
    let with_me = |error: ApiError| Failure {
        error,
        me: Some(Box::new(me.clone())),
    };
    let form = if posting {
        let form = web::form(req).ok_or_else(|| {
            with_me(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "the form could not be read",
            ))
        })?;
        guard_post(req, deps.edge, &session, &form).map_err(with_me)?;
        form
    } else {
        Vec::new()
    };
    let result = page(deps, req, &matched, &session, &me, &form, now).await;
    result.map_err(|mut f| {
        f.me = Some(Box::new(me.clone()));
        f
    })
}

/// A state-changing request must come from our origin and carry the session's CSRF token.
fn guard_post(
    req: &Request,
    edge: web::Edge,
    session: &ConsoleSession,
    form: &[(String, String)],
) -> Result<(), ApiError> {
    if !web::same_origin(req, edge) {
        return Err(forbidden(
            "CROSS_SITE",
            "this form was sent from another site; use the console itself",
        ));
    }
    let sent = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if !sessions::tokens_match(sent, &session.csrf) {
        return Err(forbidden(
            "CSRF_REJECTED",
            "the form's anti-forgery token is missing or stale; reload the page and send it again",
        ));
    }
    Ok(())
}

/// The role `route` (and, for license actions, `action`) needs.
/// Every route and action is named: anything new needs `admin` until it is listed here.
fn needs(route: Route, action: Option<&str>) -> Role {
    match (route, action) {
        (
            Route::Home
            | Route::SignOut
            | Route::Licenses
            | Route::License
            | Route::Customers
            | Route::Installations
            | Route::Usage
            | Route::Revenue
            | Route::UsageCsv,
            _,
        ) => Role::Viewer,
        (Route::Action, Some("suspend" | "reinstate" | "renew")) | (Route::Release, _) => {
            Role::Support
        }
        _ => Role::Admin,
    }
}

async fn page<S: ConsoleStore>(
    deps: &Deps<S>,
    req: &Request,
    matched: &http::route::Matched<Route>,
    session: &ConsoleSession,
    me: &Me,
    form: &[(String, String)],
    now: OffsetDateTime,
) -> Result<Response<Body>, Failure> {
    let needed = needs(matched.route, matched.param("action"));
    // (`needs` lists the console's routes; the sign-in and asset routes never reach here.)
    if !me.role.includes(needed) {
        return Err(forbidden(
            "FORBIDDEN",
            format!(
                "this needs the `{needed}` role; you are `{}`",
                me.role.as_str()
            ),
        )
        .into());
    }
    let store = &deps.store;
    let actor = session.principal.actor();
    let query = web::query(req);
    let ok = |page: String| Ok(web::html(StatusCode::OK, page));
    match matched.route {
        Route::Home => Ok(web::redirect("/console/licenses", &[])),
        Route::SignOut => {
            sessions::sign_out(store, web::cookie(req, SESSION_COOKIE)).await?;
            let gone = web::set_cookie(
                SESSION_COOKIE,
                "",
                0,
                web::needs_secure_cookies(req, deps.edge),
            );
            Ok(web::redirect("/console/sign-in", &[gone]))
        }
        Route::Licenses => ok(licenses_page(deps, me, &query).await?),
        Route::Customers => {
            let q = web::field(&query, "q").unwrap_or_default().to_owned();
            let mut pairs = Vec::new();
            if !q.is_empty() {
                pairs.push(("namePrefix".to_owned(), q.clone()));
            }
            if let Some(c) = web::field(&query, "cursor") {
                pairs.push(("cursor".to_owned(), c.to_owned()));
            }
            let (filter, page) = customer_query(&Params::new(&pairs))?;
            let found = store
                .list_customers(&filter, page.cursor.as_ref(), page.limit)
                .await?;
            let rows = found
                .items
                .iter()
                .map(|c| pages::CustomerRow {
                    id: c.id.to_string(),
                    name: c.name.clone(),
                    email: c.email.clone(),
                    created: When::at(c.created_at, now),
                })
                .collect();
            let next = found.next.as_ref().map(|n| {
                format!(
                    "/console/customers?q={}&cursor={}",
                    web::encode(&q),
                    encode_cursor(n)
                )
            });
            ok(pages::render(&pages::CustomersPage {
                me: me.clone(),
                q,
                rows,
                next,
            })?)
        }
        Route::License => {
            let id: LicenseId = matched.id("licenseId")?;
            ok(license_page(deps, me, &id, &query, now).await?)
        }
        Route::NewLicense => ok(pages::render(&pages::NewLicensePage {
            me: me.clone(),
            customer_id: web::field(&query, "customerId")
                .unwrap_or_default()
                .to_owned(),
            plans: pages::choices(&plan_names(), Some("starter")),
        })?),
        Route::Issue => {
            let request = shared::api::IssueLicenseRequest {
                customer_id: web::field(form, "customerId")
                    .unwrap_or_default()
                    .to_owned(),
                plan: web::field(form, "plan").unwrap_or_default().to_owned(),
                expires_at: None,
                valid_days: Some(
                    number(form, "validDays")?
                        .map_or(365, |d| i64::try_from(d).unwrap_or(i64::MAX)),
                ),
                features: None,
                limits: Some(shared::domain::LimitOverrides {
                    installations: number(form, "installations")?,
                    ..Default::default()
                }),
                domain_restrictions: None,
                contract: Some(shared::api::ContractTerms {
                    channel: web::field(form, "channel").map(str::to_owned),
                    ..Default::default()
                }),
            };
            let cmd = shared::service::admin::IssueCommand::try_from(request)?;
            let (license, key) = shared::service::admin::issue_license(
                store,
                deps.signer.as_ref(),
                deps.ids.as_ref(),
                &deps.issuer,
                cmd,
                actor,
                now,
            )
            .await?;
            key_page(
                me,
                "License issued",
                &license.id,
                key.expose(),
                Vec::new(),
                false,
            )
        }
        Route::Action => {
            let id: LicenseId = matched.id("licenseId")?;
            let action = matched.param("action").unwrap_or_default();
            let reason = web::field(form, "reason").map(str::to_owned);
            let status = |a: StatusAction, reason: Option<String>| {
                let (id, actor) = (id.clone(), actor.clone());
                async move {
                    let reason = reason.ok_or_else(|| bad("reason", "give a reason"))?;
                    shared::service::admin::change_status(store, &id, a, Some(reason), actor, now)
                        .await
                        .map_err(Failure::from)
                }
            };
            match action {
                "suspend" => {
                    status(StatusAction::Suspend, reason).await?;
                    Ok(back(&id, "suspended"))
                }
                "reinstate" => {
                    status(StatusAction::Reinstate, reason).await?;
                    Ok(back(&id, "reinstated"))
                }
                "revoke" => {
                    if web::field(form, "confirm") != Some(id.as_str()) {
                        return Err(bad(
                            "confirm",
                            format!("type the license id ({id}) exactly to confirm the revocation"),
                        )
                        .into());
                    }
                    status(StatusAction::Revoke, reason).await?;
                    Ok(back(&id, "revoked"))
                }
                "renew" => {
                    let days = number(form, "validDays")?.unwrap_or(365);
                    let (license, key) = shared::service::admin::renew_license(
                        store,
                        deps.signer.as_ref(),
                        &deps.issuer,
                        shared::service::admin::RenewCommand {
                            id: id.clone(),
                            term: Term::Days(i64::try_from(days).unwrap_or(i64::MAX)),
                            reason,
                        },
                        actor,
                        now,
                    )
                    .await?;
                    key_page(
                        me,
                        "License renewed",
                        &license.id,
                        key.expose(),
                        vec![format!("expires {}", pages::utc(license.expires_at))],
                        false,
                    )
                }
                "change" => {
                    let cmd = ChangeCommand {
                        plan: web::field(form, "plan")
                            .map(|p| Plan::parse(p).ok_or(DomainError::UnknownPlan(p.to_owned())))
                            .transpose()?,
                        limits: number(form, "installations")?.map(|n| {
                            shared::domain::LimitOverrides {
                                installations: Some(n),
                                ..Default::default()
                            }
                        }),
                        revoke_previous_key: web::field(form, "revokePreviousKey") == Some("true"),
                        reason,
                        ..Default::default()
                    };
                    let changed = shared::service::changes::change_license(
                        store,
                        deps.signer.as_ref(),
                        &deps.issuer,
                        &id,
                        &cmd,
                        actor,
                        now,
                    )
                    .await?;
                    let mut lines: Vec<String> = changed
                        .changes
                        .iter()
                        .map(|c| format!("{}: {} → {}", c.field, c.from, c.to))
                        .collect();
                    if changed.seats_over_limit > 0 {
                        lines.push(format!(
                            "{} installation(s) hold a seat beyond the new limit; release them from the license page",
                            changed.seats_over_limit
                        ));
                    }
                    key_page(
                        me,
                        "License changed",
                        &changed.license.id,
                        changed.key.expose(),
                        lines,
                        changed.previous_keys_revoked,
                    )
                }
                other => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "ROUTE_NOT_FOUND",
                    format!("no license action `{other}`"),
                )
                .into()),
            }
        }
        Route::Release => {
            let id: LicenseId = matched.id("licenseId")?;
            let installation: InstallationId = matched.id("installationId")?;
            let reason = web::field(form, "reason")
                .unwrap_or("released from the console")
                .to_owned();
            shared::service::installations::release_installation(
                store,
                &id,
                &installation,
                reason,
                actor,
                now,
            )
            .await?;
            Ok(back(&id, "released"))
        }
        Route::Installations => ok(installations_page(deps, me, now).await?),
        Route::Usage => ok(usage_page(deps, me, now).await?),
        Route::Revenue => ok(revenue_page(deps, me, now).await?),
        Route::UsageCsv => {
            let period = shared::api::parse_period(web::field(&query, "period"), now)?;
            let rows = shared::service::metrics::usage_report(store, &deps.prices, period).await?;
            let csv = shared::service::metrics::usage_csv(period, &rows, &deps.prices);
            let mut response = Response::new(Body::Text(csv));
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"nectar-usage-{period}.csv\""
            )) {
                headers.insert(CONTENT_DISPOSITION, v);
            }
            web::secure(headers);
            Ok(response)
        }
        // Answered before the session is read; never here.
        Route::Asset | Route::SignInPage | Route::SignIn => Err(ApiError::internal().into()),
    }
}

/// Back to the license page, with a notice from a fixed set (never text from the request).
fn back(id: &LicenseId, notice: &str) -> Response<Body> {
    web::redirect(&format!("/console/licenses/{id}?notice={notice}"), &[])
}

fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "suspended" => "Suspended: installations are refused on their next check.",
        "reinstated" => "Reinstated: the license validates again.",
        "revoked" => "Revoked for good: every key of this license now answers REVOKED.",
        "released" => "The seat is free; the installation must claim one again on its next beat.",
        _ => return None,
    })
}

fn key_page(
    me: &Me,
    title: &str,
    id: &LicenseId,
    key: &str,
    changes: Vec<String>,
    revoked_previous: bool,
) -> Result<Response<Body>, Failure> {
    let page = pages::render(&pages::KeyPage {
        me: me.clone(),
        title: title.to_owned(),
        license_id: id.to_string(),
        key: key.to_owned(),
        changes,
        revoked_previous,
    })?;
    Ok(web::html(StatusCode::OK, page))
}

/// An optional whole number field.
fn number(form: &[(String, String)], name: &'static str) -> Result<Option<u64>, ApiError> {
    web::field(form, name)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| bad(name, "must be a whole number"))
        })
        .transpose()
}

fn plan_names() -> Vec<&'static str> {
    Plan::ALL.iter().map(|p| p.name()).collect()
}

async fn sign_in<S: ConsoleStore>(
    deps: &Deps<S>,
    req: &Request,
    route: Route,
    now: OffsetDateTime,
) -> Result<Response<Body>, Failure> {
    let secure = web::needs_secure_cookies(req, deps.edge);
    let render = |status: StatusCode, next: String, error: Option<String>| {
        let csrf = sessions::random_token(deps.ids.as_ref());
        let page = pages::render(&pages::SignInPage {
            csrf: csrf.clone(),
            next,
            error,
        })?;
        let mut response = web::html(status, page);
        let cookie = web::set_cookie(SIGN_IN_COOKIE, &csrf, sessions::SIGN_IN_FORM_SECS, secure);
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, v);
        }
        Ok::<_, Failure>(response)
    };
    if route == Route::SignInPage {
        let next = web::local_next(web::field(&web::query(req), "next"));
        if sessions::current(
            &deps.store,
            &deps.auth,
            web::cookie(req, SESSION_COOKIE),
            now,
        )
        .await?
        .is_some()
        {
            return Ok(web::redirect(&next, &[]));
        }
        return render(StatusCode::OK, next, None);
    }
    let form = web::form(req).unwrap_or_default();
    let next = web::local_next(web::field(&form, "next"));
    let sent = web::field(&form, "csrf").unwrap_or_default();
    let expected = web::cookie(req, SIGN_IN_COOKIE).unwrap_or_default();
    if !web::same_origin(req, deps.edge)
        || expected.is_empty()
        || !sessions::tokens_match(sent, expected)
    {
        return render(
            StatusCode::FORBIDDEN,
            next,
            Some("The sign-in form expired or came from elsewhere; try again.".into()),
        );
    }
    let token = web::field(&form, "token").unwrap_or_default();
    match sessions::sign_in(
        &deps.store,
        &deps.auth,
        deps.ids.as_ref(),
        token,
        deps.lifetime,
        now,
    )
    .await?
    {
        Some((secret, session)) => {
            let max_age = (session.expires_at - session.created_at)
                .whole_seconds()
                .max(0);
            let cookies = [
                web::set_cookie(SESSION_COOKIE, secret.expose(), max_age, secure),
                web::set_cookie(SIGN_IN_COOKIE, "", 0, secure),
            ];
            Ok(web::redirect(&next, &cookies))
        }
        None => render(
            StatusCode::UNAUTHORIZED,
            next,
            Some(
                "That token signs no one in: it is mistyped, rotated, or its operator is disabled."
                    .into(),
            ),
        ),
    }
}

/// The static assets, compiled into the binary.
fn asset(file: &str) -> Result<Response<Body>, Failure> {
    let (body, content_type): (&'static str, &'static str) = match file {
        "console.css" => (include_str!("../assets/console.css"), "text/css"),
        "console.js" => (include_str!("../assets/console.js"), "text/javascript"),
        "uPlot.iife.min.js" => (
            include_str!("../assets/vendor/uPlot.iife.min.js"),
            "text/javascript",
        ),
        "uPlot.min.css" => (include_str!("../assets/vendor/uPlot.min.css"), "text/css"),
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "ROUTE_NOT_FOUND",
                format!("no asset `{file}`"),
            )
            .into());
        }
    };
    let mut response = Response::new(Body::Text(body.to_owned()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    web::secure(headers);
    Ok(response)
}

async fn licenses_page<S: ConsoleStore>(
    deps: &Deps<S>,
    me: &Me,
    query: &[(String, String)],
) -> Result<String, Failure> {
    let now = deps.clock.now();
    // The form's date input gives a day; the API's parameter is an instant.
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "notice")
        .map(|(k, v)| {
            if k == "expiresBefore" && v.len() == 10 {
                (k.clone(), format!("{v}T00:00:00Z"))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    pairs.retain(|(k, _)| k != "limit");
    let (filter, page) = license_query(&Params::new(&pairs))?;
    let found = deps
        .store
        .list_licenses(&filter, page.cursor.as_ref(), 50)
        .await?;
    let customer_name = match filter.customer {
        Some(c) => deps.store.customer(&c).await?.map(|c| c.name),
        None => None,
    };
    let rows = found
        .items
        .iter()
        .map(|l| pages::LicenseRow {
            id: l.id.to_string(),
            plan: l.plan.name().to_owned(),
            status: l.status.as_str().to_owned(),
            channel: l.contract.channel.as_str().to_owned(),
            seats: format!("{} / {}", l.active_installations, l.limits.installations),
            expires: When::at(l.expires_at, now),
        })
        .collect();
    let next = found.next.as_ref().map(|n| {
        let mut q: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k != "cursor" && k != "notice")
            .cloned()
            .collect();
        q.push(("cursor".into(), encode_cursor(n)));
        format!(
            "/console/licenses?{}",
            serde_urlencoded::to_string(&q).unwrap_or_default()
        )
    });
    let get = |k: &str| web::field(query, k);
    let statuses: Vec<&str> = [
        LicenseStatus::Active,
        LicenseStatus::Suspended,
        LicenseStatus::Expired,
        LicenseStatus::Revoked,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    let page = pages::LicensesPage {
        me: me.clone(),
        statuses: pages::choices(&statuses, get("status")),
        plans: pages::choices(&plan_names(), get("plan")),
        channels: pages::choices(
            &[Channel::SelfHosted.as_str(), Channel::Saas.as_str()],
            get("channel"),
        ),
        customer_id: get("customerId").unwrap_or_default().to_owned(),
        customer_name,
        expires_before: get("expiresBefore").unwrap_or_default().to_owned(),
        rows,
        next,
        filtered: !query.is_empty(),
    };
    Ok(pages::render(&page)?)
}

async fn license_page<S: ConsoleStore>(
    deps: &Deps<S>,
    me: &Me,
    id: &LicenseId,
    query: &[(String, String)],
    now: OffsetDateTime,
) -> Result<String, Failure> {
    let store = &deps.store;
    let license = store
        .license(id)
        .await?
        .ok_or(DomainError::LicenseNotFound)?;
    let customer = store.customer(&license.customer_id).await?;
    let installations = store.installations(id).await?;
    let usage =
        shared::service::usage::statistics(store, &license, Period::containing(now)).await?;
    let before = http::audit_before(web::field(query, "before"))?;
    let audit = store
        .audit_page(id, before, 20)
        .await
        .map_err(http::audit_page_error)?;
    let status = license.status;
    let live = status != LicenseStatus::Revoked;
    let contract = shared::api::contract_view(&license.contract, license.issued_at);
    let page = pages::LicensePage {
        me: me.clone(),
        id: id.to_string(),
        customer_id: license.customer_id.to_string(),
        customer_name: customer.map_or_else(|| "(unknown customer)".into(), |c| c.name),
        plan: license.plan.name().to_owned(),
        status: status.as_str().to_owned(),
        issued: When::at(license.issued_at, now),
        expires: When::at(license.expires_at, now),
        features: license.features.iter().map(ToString::to_string).collect(),
        limits: vec![
            (
                "Workflow runs a month".into(),
                pages::count(license.limits.workflows_per_month),
            ),
            ("Users".into(), pages::count(license.limits.users)),
            (
                "Storage (GB)".into(),
                pages::count(license.limits.storage_gb),
            ),
            ("Seats".into(), pages::count(license.limits.installations)),
        ],
        domains: license
            .domain_restrictions
            .iter()
            .map(ToString::to_string)
            .collect(),
        contract: vec![
            ("Channel".into(), contract.channel.clone()),
            ("Billing".into(), contract.interval.clone()),
            (
                "Price".into(),
                contract.price.map_or_else(
                    || format!("list price ({})", contract.currency),
                    |p| money(p, &contract.currency),
                ),
            ),
            ("Billing from".into(), contract.start.clone()),
        ],
        seats: format!(
            "{} of {}",
            license.active_installations, license.limits.installations
        ),
        installations: installations
            .iter()
            .map(|i| installation_row(i, now))
            .collect(),
        usage: usage
            .iter()
            .filter_map(|u| {
                let limit = u.limit?;
                let percent = (u.used.saturating_mul(100))
                    .checked_div(limit)
                    .unwrap_or(100);
                Some(pages::UsageRow {
                    feature: u.feature.to_string(),
                    used: pages::count(u.used),
                    limit: pages::count(limit),
                    percent,
                    over: u.used > limit,
                })
            })
            .collect(),
        audit: audit
            .entries
            .iter()
            .map(|a| pages::AuditRow {
                action: a.action.clone(),
                actor: a.actor.as_str().to_owned(),
                reason: a.reason.clone().unwrap_or_default(),
                at: When::at(a.at, now),
            })
            .collect(),
        audit_next: audit
            .next
            .as_ref()
            .map(|n| format!("/console/licenses/{id}?before={}", web::encode(n))),
        plans: pages::choices(&plan_names(), Some(license.plan.name())),
        current_seats: license.limits.installations,
        can_suspend: me.support() && status == LicenseStatus::Active,
        can_reinstate: me.support() && status == LicenseStatus::Suspended,
        can_renew: me.support() && live,
        can_change: me.admin() && live,
        can_revoke: me.admin() && live,
        notice: web::field(query, "notice")
            .and_then(notice_text)
            .map(str::to_owned),
    };
    Ok(pages::render(&page)?)
}

fn installation_row(
    i: &shared::domain::Installation,
    now: OffsetDateTime,
) -> pages::InstallationRow {
    pages::InstallationRow {
        id: i.id.to_string(),
        license_id: i.license_id.to_string(),
        active: i.status == InstallationStatus::Active,
        version: i.version.clone(),
        domain: i
            .domain
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        first_seen: When::at(i.first_seen_at, now),
        last_seen: When::at(i.last_seen_at, now),
    }
}

/// `YYYY-MM-DD` of `t`.
fn day(t: OffsetDateTime) -> String {
    shared::service::metrics::day(t)
}

/// The daily snapshots of the last `days` days, oldest first (one query).
async fn history<S: ConsoleStore>(
    deps: &Deps<S>,
    now: OffsetDateTime,
    days: i64,
) -> Result<Vec<nectar_protocol::metrics::MetricsSnapshot>, Failure> {
    Ok(deps
        .store
        .snapshots(&day(now - Duration::days(days - 1)), &day(now))
        .await?)
}

/// Midnight UTC of a snapshot's day, as Unix seconds (a chart's x).
fn day_x(date: &str) -> i64 {
    time::Date::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map(|d| d.midnight().assume_utc().unix_timestamp())
    .unwrap_or_default()
}

async fn attention_rows<S: ConsoleStore>(
    deps: &Deps<S>,
    kinds: &[AttentionKind],
    now: OffsetDateTime,
) -> Result<Vec<pages::AttentionRow>, Failure> {
    let mut rows = Vec::new();
    for kind in kinds {
        let query = shared::service::fleet::AttentionQuery {
            kind: *kind,
            within_days: shared::service::fleet::DEFAULT_WITHIN_DAYS,
            silent_hours: shared::service::fleet::DEFAULT_SILENT_HOURS,
        };
        let page = shared::service::fleet::attention(&deps.store, query, now, None, 50).await?;
        rows.extend(page.items.iter().map(|a| {
            pages::AttentionRow {
                kind: a.kind.as_str().to_owned(),
                license_id: a.license_id.to_string(),
                installation_id: a
                    .installation_id
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                detail: a.detail.clone(),
                at: When::at(a.at, now),
            }
        }));
    }
    Ok(rows)
}

async fn installations_page<S: ConsoleStore>(
    deps: &Deps<S>,
    me: &Me,
    now: OffsetDateTime,
) -> Result<String, Failure> {
    let latest = deps.store.latest_snapshot().await?;
    let days = history(deps, now, 30).await?;
    let attention = attention_rows(
        deps,
        &[
            AttentionKind::ClockTamper,
            AttentionKind::SeatLimit,
            AttentionKind::Silent,
        ],
        now,
    )
    .await?;
    let silent = attention
        .iter()
        .filter(|a| a.kind == AttentionKind::Silent.as_str())
        .count();
    let active = deps
        .store
        .list_installations(
            &InstallationFilter {
                status: Some(InstallationStatus::Active),
                ..Default::default()
            },
            None,
            200,
        )
        .await?;
    let mut newest = active.items;
    newest.sort_by_key(|i| std::cmp::Reverse(i.first_seen_at));
    newest.truncate(10);
    let x: Vec<i64> = days.iter().map(|d| day_x(&d.date)).collect();
    let counts: Vec<f64> = days.iter().map(|d| d.installations.active as f64).collect();
    let page = pages::InstallationsPage {
        me: me.clone(),
        active: latest
            .as_ref()
            .map_or_else(|| "–".into(), |s| pages::count(s.installations.active)),
        silent,
        versions: latest
            .as_ref()
            .map(|s| {
                s.installations
                    .versions
                    .iter()
                    .rev()
                    .map(|(v, n)| (v.clone(), pages::count(*n)))
                    .collect()
            })
            .unwrap_or_default(),
        attention,
        newest: newest.iter().map(|i| installation_row(i, now)).collect(),
        chart: pages::chart_json(&x, &[("Active installations", counts)]),
        table: days
            .iter()
            .map(|d| (d.date.clone(), pages::count(d.installations.active)))
            .collect(),
    };
    Ok(pages::render(&page)?)
}

async fn usage_page<S: ConsoleStore>(
    deps: &Deps<S>,
    me: &Me,
    now: OffsetDateTime,
) -> Result<String, Failure> {
    let period = Period::containing(now);
    let month_days = (now - period.start()).whole_days() + 1;
    let days = history(deps, now, month_days).await?;
    let latest = days.last().cloned();
    let mut rows =
        shared::service::metrics::usage_report(&deps.store, &deps.prices, period).await?;
    rows.sort_by_key(|r| std::cmp::Reverse(r.used));
    rows.truncate(10);
    let near = attention_rows(deps, &[AttentionKind::Usage], now).await?;
    let x: Vec<i64> = days.iter().map(|d| day_x(&d.date)).collect();
    let used: Vec<f64> = days.iter().map(|d| d.usage.workflows_used as f64).collect();
    let included: Vec<f64> = days
        .iter()
        .map(|d| d.usage.workflows_included as f64)
        .collect();
    let list = deps.prices.currency.to_string();
    let overage = latest
        .as_ref()
        .and_then(|s| s.revenue.iter().find(|c| c.currency == list))
        .map_or(0, |c| c.overage);
    let page = pages::UsagePage {
        me: me.clone(),
        period: period.to_string(),
        used: latest
            .as_ref()
            .map_or_else(|| "0".into(), |s| pages::count(s.usage.workflows_used)),
        included: latest
            .as_ref()
            .map_or_else(|| "0".into(), |s| pages::count(s.usage.workflows_included)),
        licenses_over: latest
            .as_ref()
            .map_or_else(|| "0".into(), |s| pages::count(s.usage.licenses_over)),
        overage: money(overage, &list),
        chart: pages::chart_json(&x, &[("Used", used), ("Included", included)]),
        table: days
            .iter()
            .map(|d| {
                (
                    d.date.clone(),
                    pages::count(d.usage.workflows_used),
                    pages::count(d.usage.workflows_included),
                )
            })
            .collect(),
        top: rows
            .iter()
            .map(|r| {
                (
                    r.license.id.to_string(),
                    pages::count(r.used),
                    pages::count(r.included),
                    pages::count(r.overage),
                )
            })
            .collect(),
        near,
    };
    Ok(pages::render(&page)?)
}

/// Each month's movements as its last snapshot in `days` has them (a month's figures grow until
/// its last day), newest month first: (month, currency, expansion, contraction, churn).
fn months(
    days: &[nectar_protocol::metrics::MetricsSnapshot],
) -> Vec<(String, String, String, String, String)> {
    let mut last: std::collections::BTreeMap<&str, &nectar_protocol::metrics::MetricsSnapshot> =
        std::collections::BTreeMap::new();
    for d in days {
        last.insert(d.date.get(..7).unwrap_or(&d.date), d);
    }
    let line = |m: &nectar_protocol::metrics::Movement, c: &str| {
        format!("{} · {}", m.count, money(m.mrr, c))
    };
    last.iter()
        .rev()
        .flat_map(|(month, d)| {
            d.revenue.iter().map(move |c| {
                (
                    (*month).to_owned(),
                    c.currency.clone(),
                    line(&c.expansion, &c.currency),
                    line(&c.contraction, &c.currency),
                    line(&c.churn, &c.currency),
                )
            })
        })
        .collect()
}

async fn revenue_page<S: ConsoleStore>(
    deps: &Deps<S>,
    me: &Me,
    now: OffsetDateTime,
) -> Result<String, Failure> {
    let days = history(deps, now, 90).await?;
    let latest = match days.last() {
        Some(s) => Some(s.clone()),
        None => deps.store.latest_snapshot().await?,
    };
    let movement = |m: &nectar_protocol::metrics::Movement, c: &str| {
        format!("{} license(s), {} MRR", m.count, money(m.mrr, c))
    };
    let blocks: Vec<pages::CurrencyBlock> = latest
        .as_ref()
        .map(|s| {
            s.revenue
                .iter()
                .map(|c| {
                    let cur = c.currency.as_str();
                    pages::CurrencyBlock {
                        currency: c.currency.clone(),
                        mrr: money(c.mrr, cur),
                        arr: money(c.arr, cur),
                        by_plan: c
                            .mrr_by_plan
                            .iter()
                            .map(|(k, v)| (k.clone(), money(*v, cur)))
                            .collect(),
                        by_channel: c
                            .mrr_by_channel
                            .iter()
                            .map(|(k, v)| (k.replace('_', "-"), money(*v, cur)))
                            .collect(),
                        renewals: c
                            .renewals
                            .iter()
                            .map(|r| (r.days.to_string(), r.count.to_string(), money(r.value, cur)))
                            .collect(),
                        churn: movement(&c.churn, cur),
                        expansion: movement(&c.expansion, cur),
                        contraction: movement(&c.contraction, cur),
                        overage: money(c.overage, cur),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut currencies: Vec<String> = days
        .iter()
        .flat_map(|d| d.revenue.iter().map(|c| c.currency.clone()))
        .collect();
    currencies.sort();
    currencies.dedup();
    let mrr_of = |d: &nectar_protocol::metrics::MetricsSnapshot, c: &str| {
        d.revenue.iter().find(|f| f.currency == c).map(|f| f.mrr)
    };
    let x: Vec<i64> = days.iter().map(|d| day_x(&d.date)).collect();
    let labels: Vec<String> = currencies.iter().map(|c| format!("MRR {c}")).collect();
    let series: Vec<(&str, Vec<f64>)> = currencies
        .iter()
        .zip(&labels)
        .map(|(c, label)| {
            (
                label.as_str(),
                days.iter()
                    .map(|d| mrr_of(d, c).unwrap_or(0) as f64)
                    .collect(),
            )
        })
        .collect();
    let page = pages::RevenuePage {
        me: me.clone(),
        date: latest
            .as_ref()
            .map_or_else(|| "–".into(), |s| s.date.clone()),
        unpriced: latest.as_ref().map_or(0, |s| s.unpriced_licenses),
        blocks,
        chart: pages::chart_json(&x, &series),
        table: days
            .iter()
            .map(|d| {
                (
                    d.date.clone(),
                    currencies
                        .iter()
                        .map(|c| mrr_of(d, c).map_or_else(|| "–".into(), |m| money(m, c)))
                        .collect(),
                )
            })
            .collect(),
        months: months(&days),
        currencies,
        period: Period::containing(now).to_string(),
    };
    Ok(pages::render(&page)?)
}
