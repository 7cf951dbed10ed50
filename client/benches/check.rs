//! `check(feature)` latency: answered from the cached, already-verified lease — a clock read, an
//! atomic high-water update, a read lock and a few comparisons. Prints p50/p99 over single calls,
//! then criterion's estimate. Also measures lease installation (the one signature verification).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use nectar_client::testing::{FakeServer, TestTrust, lease_claims};
use nectar_client::{Decision, LicenseClient, LicenseServer, SystemClock};

fn client_with_lease() -> Arc<LicenseClient> {
    let server = Arc::new(FakeServer::new(Arc::new(SystemClock)));
    let dir = std::env::temp_dir().join(format!("nectar-bench-{}", uuid::Uuid::new_v4().simple()));
    let config = server.client_config(&dir);
    let client = Arc::new(
        LicenseClient::new(
            config,
            Arc::new(SystemClock),
            server as Arc<dyn LicenseServer>,
        )
        .unwrap_or_else(|e| panic!("client: {e}")),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(client.heartbeat())
        .unwrap_or_else(|e| panic!("heartbeat: {e}"));
    assert_eq!(client.check("workflows"), Decision::Allowed);
    client
}

fn percentiles(client: &LicenseClient) {
    const N: usize = 200_000;
    let mut samples = Vec::with_capacity(N);
    for i in 0..N {
        let feature = if i % 2 == 0 { "workflows" } else { "sso" };
        let start = Instant::now();
        black_box(client.check(black_box(feature)));
        samples.push(start.elapsed().as_nanos());
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((N as f64) * q) as usize] as f64 / 1_000.0;
    println!(
        "check(feature), {N} single calls: p50 {:.3} µs, p99 {:.3} µs, max {:.1} µs",
        at(0.50),
        at(0.99),
        samples[N - 1] as f64 / 1_000.0
    );
}

fn bench(c: &mut Criterion) {
    let client = client_with_lease();
    percentiles(&client);
    c.bench_function("check(feature) allowed", |b| {
        b.iter(|| client.check(black_box("workflows")))
    });
    c.bench_function("check(feature) not entitled", |b| {
        b.iter(|| client.check(black_box("sso")))
    });
    let trust = TestTrust::new("bench");
    let keys = trust.keys();
    let token = trust
        .lease
        .sign(&lease_claims("inst-1", 1_000, 1_000 + 72 * 3_600));
    c.bench_function("verify lease (once per installed lease)", |b| {
        b.iter(|| keys.verify_lease(black_box(&token), "inst-1", 2_000))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
