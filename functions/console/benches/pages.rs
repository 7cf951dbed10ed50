//! Console page server time: each page rendered by the handler on the in-memory store holding a
//! book the size of the demo's (20 customers, 40 licenses, installations, 90 daily snapshots), so
//! what is timed is the console's own work — session check, services, templates — without the
//! emulator (each page's DynamoDB requests are counted in `tests/console.rs` instead). Target:
//! under 30 ms p50 per page. Run with `make bench-console`.

use std::hint::black_box;
use std::sync::Arc;

use console::handler::{Deps, handle};
use console::session::Lifetime;
use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::Body;
use shared::domain::ports::{RandomIds, SystemClock};
use shared::domain::revenue::PriceList;
use shared::domain::{InstallationId, Plan};
use shared::service::heartbeat::{HeartbeatCommand, heartbeat};
use shared::testing::{MemoryStack, TEST_ADMIN_TOKEN, TEST_ISSUER, admin_auth};
use time::{Duration, OffsetDateTime};

/// A request with the session cookie, as the local edge delivers it.
fn get(path: &str, cookie: &str) -> lambda_http::Request {
    lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!("http://127.0.0.1:9000{path}"))
        .header("host", "127.0.0.1:9000")
        .header("cookie", cookie)
        .body(Body::Empty)
        .expect("request")
}

fn pages(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stack = MemoryStack::new();
    let now = OffsetDateTime::now_utc();
    let (deps, cookie, license) = rt.block_on(async {
        let ring = stack.key_ring().await;
        let lease = stack.lease_signer().await;
        let mut first = None;
        for i in 0..40 {
            let plan = [Plan::Starter, Plan::Professional, Plan::Enterprise][i % 3];
            let issued = stack
                .issue(plan, now - Duration::days(i as i64), |_| {})
                .await;
            for n in 0..usize::min(1 + i % 3, plan.default_limits().installations as usize) {
                let cmd = HeartbeatCommand {
                    key: issued.key.clone(),
                    installation_id: InstallationId::parse(&format!("node-{i}-{n}")).expect("id"),
                    version: ["3.2.1", "3.2.0", "3.1.4"][n % 3].into(),
                    domain: None,
                    gauges: Default::default(),
                    signals: Vec::new(),
                };
                heartbeat(&ring, &stack.store, &lease, &cmd, Duration::hours(1), now)
                    .await
                    .expect("beat");
            }
            first.get_or_insert(issued.license.id);
        }
        for d in (0..90).rev() {
            shared::service::metrics::record_daily(
                &stack.store,
                &PriceList::default(),
                now - Duration::days(d),
            )
            .await
            .expect("snapshot");
        }
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
        let (secret, _) = console::session::sign_in(
            &stack.store,
            &deps.auth,
            &RandomIds,
            TEST_ADMIN_TOKEN,
            Lifetime::default(),
            now,
        )
        .await
        .expect("sign in")
        .expect("a session");
        let cookie = format!("nectar_session={}", secret.expose());
        (deps, cookie, first.expect("a license"))
    });
    let detail = format!("/console/licenses/{license}");
    let mut group = c.benchmark_group("console page");
    for (name, path) in [
        ("licenses", "/console/licenses"),
        ("license", detail.as_str()),
        ("customers", "/console/customers?q=acme"),
        ("installations", "/console/installations"),
        ("usage", "/console/usage"),
        ("revenue", "/console/revenue"),
    ] {
        let probe = rt.block_on(handle(&deps, get(path, &cookie))).expect("ok");
        assert_eq!(probe.status(), 200, "{path}");
        // The real page, not a redirect or an error page: its own table, and its size.
        let html = match probe.body() {
            Body::Text(t) => t.clone(),
            _ => String::new(),
        };
        assert!(html.contains("</table>"), "{path}: {html}");
        eprintln!("{name}: {} bytes of HTML", html.len());
        group.bench_function(name, |b| {
            b.iter(|| black_box(rt.block_on(handle(&deps, get(path, &cookie))).expect("ok")));
        });
    }
    group.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
