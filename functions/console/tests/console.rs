//! The console's handler, as a browser drives it, on the in-memory store (and, for what each page
//! costs in DynamoDB requests, on the emulator): sign-in and sessions, the same-origin and CSRF
//! rules, what each role sees and may do, and every page rendering.

use std::sync::Arc;

use console::handler::{ConsoleStore, Deps, handle};
use console::session::Lifetime;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::domain::ports::{LicenseReader, RandomIds, SystemClock};
use shared::domain::revenue::PriceList;
use shared::domain::{LicenseStatus, Plan, Role};
use shared::testing::{MemoryStack, TEST_ADMIN_TOKEN, TEST_ISSUER, admin_auth, operator_on};

type MemDeps = Deps<shared::adapters::memory::MemoryStore>;

fn deps(stack: &MemoryStack, signer: shared::adapters::local::LocalSigner) -> MemDeps {
    Deps {
        auth: admin_auth(),
        store: stack.store.clone(),
        signer: Arc::new(signer),
        issuer: TEST_ISSUER.into(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
        prices: PriceList::default(),
        lifetime: Lifetime::default(),
        edge: console::handler::Edge::ApiGateway,
    }
}

/// A request as the local edge delivers it: `Host` 127.0.0.1, the browser's same-origin marks.
fn request(method: &str, path: &str, cookie: Option<&str>, form: Option<&str>) -> Request {
    let mut b = lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:9000{path}"))
        .header("host", "127.0.0.1:9000")
        .header("sec-fetch-site", "same-origin");
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    if form.is_some() {
        b = b.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = b
        .body(form.map_or(Body::Empty, |f| Body::Text(f.to_owned())))
        .expect("request");
    let query: std::collections::HashMap<String, Vec<String>> = path
        .split_once('?')
        .map(|(_, q)| q)
        .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .fold(Default::default(), |mut m, (k, v)| {
            m.entry(k).or_default().push(v);
            m
        });
    lambda_http::RequestExt::with_query_string_parameters(req, query)
}

fn text(r: &Response<Body>) -> String {
    match r.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn header(r: &Response<Body>, name: &str) -> Vec<String> {
    r.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// The `name=value` part of the response's cookie `name`.
fn cookie_from(r: &Response<Body>, name: &str) -> Option<String> {
    header(r, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next().map(str::to_owned))
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().expect("value").to_owned()
}

/// A signed-in browser: its session cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn sign_in<S: ConsoleStore>(deps: &Deps<S>, token: &str) -> Browser {
    let form_page = handle(deps, request("GET", "/console/sign-in", None, None))
        .await
        .expect("ok");
    let pre = cookie_from(&form_page, "nectar_sign_in").expect("sign-in cookie");
    let csrf = csrf_of(&text(&form_page));
    let body = serde_urlencoded::to_string([
        ("csrf", csrf.as_str()),
        ("token", token),
        ("next", "/console/licenses"),
    ])
    .expect("form");
    let signed = handle(
        deps,
        request("POST", "/console/sign-in", Some(&pre), Some(&body)),
    )
    .await
    .expect("ok");
    assert_eq!(signed.status(), StatusCode::SEE_OTHER, "{}", text(&signed));
    let cookie = cookie_from(&signed, "nectar_session").expect("session cookie");
    let page = handle(
        deps,
        request("GET", "/console/licenses", Some(&cookie), None),
    )
    .await
    .expect("ok");
    Browser {
        csrf: csrf_of(&text(&page)),
        cookie,
    }
}

async fn get<S: ConsoleStore>(deps: &Deps<S>, b: &Browser, path: &str) -> Response<Body> {
    handle(deps, request("GET", path, Some(&b.cookie), None))
        .await
        .expect("ok")
}

async fn post<S: ConsoleStore>(
    deps: &Deps<S>,
    b: &Browser,
    path: &str,
    pairs: &[(&str, &str)],
) -> Response<Body> {
    let mut all = vec![("csrf", b.csrf.as_str())];
    all.extend_from_slice(pairs);
    let body = serde_urlencoded::to_string(&all).expect("form");
    handle(deps, request("POST", path, Some(&b.cookie), Some(&body)))
        .await
        .expect("ok")
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_session_cookie_and_every_page_a_strict_csp() {
    let stack = MemoryStack::new();
    let deps = deps(&stack, stack.signer().await);
    // The sign-in form: its own CSRF cookie.
    let form = handle(&deps, request("GET", "/console/sign-in", None, None))
        .await
        .expect("ok");
    assert_eq!(form.status(), StatusCode::OK);
    let csp = header(&form, "content-security-policy").join("");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Signing in with the bootstrap token.
    let pre = cookie_from(&form, "nectar_sign_in").expect("cookie");
    let body = format!(
        "csrf={}&token={TEST_ADMIN_TOKEN}&next=%2Fconsole%2Frevenue",
        csrf_of(&text(&form))
    );
    let signed = handle(
        &deps,
        request("POST", "/console/sign-in", Some(&pre), Some(&body)),
    )
    .await
    .expect("ok");
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&signed, "location"), ["/console/revenue"]);
    let session = header(&signed, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with("nectar_session="))
        .expect("session cookie");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=3600",
    ] {
        assert!(session.contains(part), "{session}");
    }
    assert!(
        !session.contains("Secure"),
        "plain HTTP on loopback: {session}"
    );
    assert_eq!(header(&signed, "cache-control"), ["no-store"]);
}

#[tokio::test]
async fn a_wrong_token_or_a_forged_sign_in_opens_no_session() {
    let stack = MemoryStack::new();
    let deps = deps(&stack, stack.signer().await);
    let form = handle(&deps, request("GET", "/console/sign-in", None, None))
        .await
        .expect("ok");
    let pre = cookie_from(&form, "nectar_sign_in").expect("cookie");
    let csrf = csrf_of(&text(&form));
    let wrong = handle(
        &deps,
        request(
            "POST",
            "/console/sign-in",
            Some(&pre),
            Some(&format!("csrf={csrf}&token=nop_guess")),
        ),
    )
    .await
    .expect("ok");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_from(&wrong, "nectar_session").is_none());
    // Without the form's cookie (a cross-site login attempt): refused before the token is read.
    let forged = handle(
        &deps,
        request(
            "POST",
            "/console/sign-in",
            None,
            Some(&format!("csrf={csrf}&token={TEST_ADMIN_TOKEN}")),
        ),
    )
    .await
    .expect("ok");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(cookie_from(&forged, "nectar_session").is_none());
}

#[tokio::test]
async fn a_page_without_a_session_sends_the_browser_to_sign_in_and_back() {
    let stack = MemoryStack::new();
    let deps = deps(&stack, stack.signer().await);
    let r = handle(
        &deps,
        request("GET", "/console/licenses?status=active", None, None),
    )
    .await
    .expect("ok");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header(&r, "location"),
        ["/console/sign-in?next=%2Fconsole%2Flicenses%3Fstatus%3Dactive"]
    );
    let post = handle(
        &deps,
        request(
            "POST",
            "/console/sign-out",
            Some("nectar_session=x"),
            Some(""),
        ),
    )
    .await
    .expect("ok");
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn each_role_sees_only_its_actions_and_a_viewers_forged_post_is_refused() {
    // Arrange
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, time::OffsetDateTime::now_utc(), |_| {})
        .await;
    let deps = deps(&stack, stack.signer().await);
    let page = format!("/console/licenses/{}", issued.license.id);
    let mut seen = Vec::new();
    for role in Role::ALL {
        let (_, token) = operator_on(&stack.store, &format!("op-{role}"), *role).await;
        let b = sign_in(&deps, token.expose()).await;
        let html = text(&get(&deps, &b, &page).await);
        let actions: Vec<&str> = ["suspend", "renew", "change", "revoke"]
            .into_iter()
            .filter(|a| html.contains(&format!("data-testid=\"{a}\"")))
            .collect();
        seen.push((*role, actions));
        if *role == Role::Viewer {
            // Act: a viewer posts the suspend form by hand (with its own valid CSRF token).
            let r = post(&deps, &b, &format!("{page}/suspend"), &[("reason", "x")]).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            assert!(
                text(&r).contains("needs the `support` role"),
                "{}",
                text(&r)
            );
        }
    }
    // Assert
    assert_eq!(
        seen,
        [
            (Role::Viewer, vec![]),
            (Role::Support, vec!["suspend", "renew"]),
            (Role::Admin, vec!["suspend", "renew", "change", "revoke"]),
        ]
    );
    let license = stack
        .store
        .license(&issued.license.id)
        .await
        .expect("read")
        .expect("license");
    assert_eq!(
        license.status,
        LicenseStatus::Active,
        "nothing was suspended"
    );
}

#[tokio::test]
async fn a_post_without_the_csrf_token_or_from_another_site_is_refused() {
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, time::OffsetDateTime::now_utc(), |_| {})
        .await;
    let deps = deps(&stack, stack.signer().await);
    let b = sign_in(&deps, TEST_ADMIN_TOKEN).await;
    let path = format!("/console/licenses/{}/suspend", issued.license.id);
    let no_token = handle(
        &deps,
        request("POST", &path, Some(&b.cookie), Some("reason=x")),
    )
    .await
    .expect("ok");
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    assert!(text(&no_token).contains("CSRF_REJECTED"));
    let mut cross = request(
        "POST",
        &path,
        Some(&b.cookie),
        Some(&format!("csrf={}&reason=x", b.csrf)),
    );
    cross
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().expect("value"));
    let cross = handle(&deps, cross).await.expect("ok");
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert!(text(&cross).contains("CROSS_SITE"));
    let still = stack
        .store
        .license(&issued.license.id)
        .await
        .expect("read")
        .expect("license");
    assert_eq!(still.status, LicenseStatus::Active);
}

#[tokio::test]
async fn suspend_reinstate_change_and_revoke_from_the_console_take_effect_under_the_operators_name()
{
    // Arrange
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, time::OffsetDateTime::now_utc(), |_| {})
        .await;
    let deps = deps(&stack, stack.signer().await);
    let (_, token) = operator_on(&stack.store, "alice", Role::Admin).await;
    let b = sign_in(&deps, token.expose()).await;
    let id = issued.license.id.clone();
    let page = format!("/console/licenses/{id}");
    let status = || async {
        stack
            .store
            .license(&id)
            .await
            .expect("read")
            .expect("license")
    };
    // Suspend, then reinstate: back to the page with a notice, and the audit line shows it.
    let r = post(
        &deps,
        &b,
        &format!("{page}/suspend"),
        &[("reason", "unpaid")],
    )
    .await;
    assert_eq!(header(&r, "location"), [format!("{page}?notice=suspended")]);
    assert_eq!(status().await.status, LicenseStatus::Suspended);
    let html = text(&get(&deps, &b, &format!("{page}?notice=suspended")).await);
    assert!(
        html.contains("license.suspended") && html.contains("alice"),
        "{html}"
    );
    post(
        &deps,
        &b,
        &format!("{page}/reinstate"),
        &[("reason", "paid")],
    )
    .await;
    assert_eq!(status().await.status, LicenseStatus::Active);
    // Change the plan: the new key is shown once and verifies.
    let r = post(
        &deps,
        &b,
        &format!("{page}/change"),
        &[("plan", "professional"), ("installations", "4")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", text(&r));
    let html = text(&r);
    let at = html.find("data-testid=\"license-key\">").expect("key") + 26;
    let key = html[at..].split('<').next().expect("key").to_owned();
    let claims = stack
        .key_ring()
        .await
        .verify_license(&shared::token::LicenseKey::new(key))
        .expect("the shown key verifies");
    assert_eq!(claims.limits.installations, 4);
    assert_eq!(status().await.plan, Plan::Professional);
    // Revoke: only with the typed confirmation.
    let r = post(
        &deps,
        &b,
        &format!("{page}/revoke"),
        &[("reason", "fraud"), ("confirm", "NOT-IT")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(status().await.status, LicenseStatus::Active);
    post(
        &deps,
        &b,
        &format!("{page}/revoke"),
        &[("reason", "fraud"), ("confirm", id.as_str())],
    )
    .await;
    assert_eq!(status().await.status, LicenseStatus::Revoked);
}

#[tokio::test]
async fn rotating_an_operators_token_or_signing_out_ends_its_sessions() {
    let stack = MemoryStack::new();
    let deps = deps(&stack, stack.signer().await);
    let (op, token) = operator_on(&stack.store, "bob", Role::Viewer).await;
    let b = sign_in(&deps, token.expose()).await;
    assert_eq!(
        get(&deps, &b, "/console/licenses").await.status(),
        StatusCode::OK
    );
    shared::service::operators::rotate_operator(
        &stack.store,
        &RandomIds,
        &op.id,
        None,
        shared::domain::Principal::bootstrap().actor(),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .expect("rotate");
    assert_eq!(
        get(&deps, &b, "/console/licenses").await.status(),
        StatusCode::SEE_OTHER,
        "the rotated token's session is over"
    );
    let admin = sign_in(&deps, TEST_ADMIN_TOKEN).await;
    let out = post(&deps, &admin, "/console/sign-out", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        header(&out, "set-cookie")
            .iter()
            .any(|c| c.starts_with("nectar_session=;") && c.contains("Max-Age=0"))
    );
    assert_eq!(
        get(&deps, &admin, "/console/licenses").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn every_page_renders_for_a_book_with_licenses_installations_and_a_snapshot() {
    // Arrange: two licenses, one installation, today's snapshot.
    let stack = MemoryStack::new();
    let now = time::OffsetDateTime::now_utc();
    let a = stack.issue(Plan::Professional, now, |_| {}).await;
    stack.issue(Plan::Starter, now, |_| {}).await;
    let ring = stack.key_ring().await;
    let lease = stack.lease_signer().await;
    let cmd = shared::service::heartbeat::HeartbeatCommand {
        key: a.key.clone(),
        installation_id: shared::domain::InstallationId::parse("node-1").expect("id"),
        version: "3.2.1".into(),
        domain: None,
        gauges: Default::default(),
        signals: Vec::new(),
    };
    shared::service::heartbeat::heartbeat(
        &ring,
        &stack.store,
        &lease,
        &cmd,
        time::Duration::hours(1),
        now,
    )
    .await
    .expect("beat");
    shared::service::metrics::record_daily(&stack.store, &PriceList::default(), now)
        .await
        .expect("snapshot");
    let deps = deps(&stack, stack.signer().await);
    let b = sign_in(&deps, TEST_ADMIN_TOKEN).await;
    // Act + Assert
    let license = format!("/console/licenses/{}", a.license.id);
    for (path, must) in [
        ("/console/licenses", "data-testid=\"licenses\""),
        ("/console/licenses?plan=professional", a.license.id.as_str()),
        ("/console/customers?q=acme", "data-testid=\"customers\""),
        (license.as_str(), "node-1"),
        ("/console/licenses/new", "data-testid=\"issue\""),
        ("/console/installations", "3.2.1"),
        ("/console/usage", "data-chart=\"usage-data\""),
        ("/console/revenue", "data-testid=\"revenue-USD\""),
    ] {
        let r = get(&deps, &b, path).await;
        let html = text(&r);
        assert_eq!(r.status(), StatusCode::OK, "{path}: {html}");
        assert!(html.contains(must), "{path} lacks {must}");
        assert!(!html.contains("<script>"), "{path}: no inline script");
    }
    let csv = get(&deps, &b, "/console/reports/usage").await;
    assert_eq!(header(&csv, "content-type"), ["text/csv; charset=utf-8"]);
    assert!(text(&csv).starts_with("period,licenseId,"));
    // A bad filter is a page that says so, not a crash.
    let bad = get(&deps, &b, "/console/licenses?status=lost").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let missing = get(&deps, &b, "/console/licenses/NECTAR-STARTER-2026-NOSUCH01").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(text(&missing).contains("LICENSE_NOT_FOUND"));
}

#[tokio::test]
#[ignore = "emulator: run by make test"]
async fn each_page_costs_a_bounded_number_of_dynamodb_requests() {
    // Arrange: a book on a fresh table, today's snapshot, a signed-in admin.
    let stack = shared::testing::Stack::new().await;
    let now = time::OffsetDateTime::now_utc();
    let a = stack.issue(Plan::Professional, now, |_| {}).await;
    stack.issue(Plan::Starter, now, |_| {}).await;
    shared::service::metrics::record_daily(&stack.store, &PriceList::default(), now)
        .await
        .expect("snapshot");
    let deps = Deps {
        auth: admin_auth(),
        store: stack.store.clone(),
        signer: Arc::new(stack.signer().await),
        issuer: TEST_ISSUER.into(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
        prices: PriceList::default(),
        lifetime: Lifetime::default(),
        edge: console::handler::Edge::ApiGateway,
    };
    let b = sign_in(&deps, TEST_ADMIN_TOKEN).await;
    let license = format!("/console/licenses/{}", a.license.id);
    // The session's read comes first on every page (the bootstrap token needs no second one).
    let expected: &[(&str, &[(&str, usize)])] = &[
        (
            "/console/licenses",
            &[("DynamoDB.GetItem", 1), ("DynamoDB.Query", 4)],
        ),
        (
            license.as_str(),
            &[
                ("DynamoDB.BatchGetItem", 1),
                ("DynamoDB.GetItem", 3),
                ("DynamoDB.Query", 2),
            ],
        ),
        (
            "/console/revenue",
            &[("DynamoDB.GetItem", 1), ("DynamoDB.Query", 1)],
        ),
        (
            "/console/customers?q=acme",
            &[("DynamoDB.GetItem", 1), ("DynamoDB.Query", 1)],
        ),
        (
            "/console/installations",
            &[("DynamoDB.GetItem", 1), ("DynamoDB.Query", 6)],
        ),
    ];
    for (path, calls) in expected {
        stack.calls.reset();
        // Act
        let r = get(&deps, &b, path).await;
        // Assert
        assert_eq!(r.status(), StatusCode::OK, "{path}: {}", text(&r));
        let got: Vec<(String, usize)> = stack
            .calls
            .snapshot()
            .into_iter()
            .filter(|(k, _)| !k.ends_with(".items") && !k.ends_with(".keys"))
            .collect();
        let want: Vec<(String, usize)> = calls.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        assert_eq!(got, want, "{path}");
    }
}
