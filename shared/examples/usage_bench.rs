//! Usage-processor benchmark against the emulator: DynamoDB writes per event on a realistic mix,
//! and processing throughput. Run with `make bench-usage` (starts its own emulator).
//!
//! Mix (what installations send): each request comes from one of 20 licenses and carries 20-60
//! events (the agent flushes its buffer), features workflows 70 %, api_access 25 %,
//! integrations 5 %, spread over the last three days; about 10 % of events arrive twice (a request
//! resent after a lost response); the processor gets batches of 100 messages (BatchSize 100).
//! Every number printed is measured; elapsed time is dominated by the emulator.

use std::time::Instant;

use shared::domain::{EventId, Feature, Plan, UsageEvent};
use shared::service::usage::{Message, process_batch};
use shared::testing::Stack;
use time::macros::datetime;

const EVENTS: usize = 2_000;
const LICENSES: usize = 20;
const BATCH: usize = 100;

#[tokio::main]
async fn main() {
    let now = datetime!(2026-07-28 12:00 UTC);
    let stack = Stack::new().await;
    let mut licenses = Vec::new();
    for _ in 0..LICENSES {
        licenses.push(stack.issue(Plan::Enterprise, now, |_| {}).await.license.id);
    }
    // Deterministic pseudo-random mix (no RNG state to seed: an LCG is enough here).
    let mut x: u64 = 42;
    let mut next = move || {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        x >> 33
    };
    let mut events: Vec<UsageEvent> = Vec::with_capacity(EVENTS);
    let mut n = 0;
    while events.len() < EVENTS {
        let start = events.len();
        if start > 100 && next() % 10 == 0 {
            // A resent request: the same events again.
            let from = (next() as usize) % (start - 40);
            let again: Vec<UsageEvent> = events[from..from + 40].to_vec();
            events.extend(again);
            continue;
        }
        let license = licenses[(next() as usize) % LICENSES].clone();
        for _ in 0..(20 + next() % 41) {
            let r = next() % 100;
            let feature = if r < 70 {
                "workflows"
            } else if r < 95 {
                "api_access"
            } else {
                "integrations"
            };
            events.push(UsageEvent {
                license_id: license.clone(),
                event_id: EventId::parse(&format!("b-{n}")).expect("id"),
                feature: Feature::parse(feature).expect("feature"),
                quantity: next() % 5 + 1,
                occurred_at: now - time::Duration::days((next() % 3) as i64),
                metadata: None,
            });
            n += 1;
        }
    }
    events.truncate(EVENTS);
    let messages: Vec<Message> = events
        .iter()
        .enumerate()
        .map(|(i, e)| Message {
            id: i.to_string(),
            body: serde_json::to_string(e).expect("json"),
        })
        .collect();

    stack.calls.reset();
    let started = Instant::now();
    let (mut counted, mut duplicates) = (0, 0);
    for batch in messages.chunks(BATCH) {
        let outcome = process_batch(
            &stack.store,
            batch,
            now,
            shared::config::DEFAULT_USAGE_GROUP_CONCURRENCY,
        )
        .await;
        assert!(outcome.failed.is_empty(), "{outcome:?}");
        counted += outcome.counted;
        duplicates += outcome.duplicates;
    }
    let elapsed = started.elapsed();
    let calls = stack.calls.snapshot();
    let get = |k: &str| calls.get(k).copied().unwrap_or(0);
    let transactions = get("DynamoDB.TransactWriteItems");
    let cancelled = get("DynamoDB.TransactWriteItems.failed");
    let items = get("DynamoDB.TransactWriteItems.items");
    let written = items - get("DynamoDB.TransactWriteItems.failed.items");
    println!("usage-processor benchmark (emulator: moto; batches of {BATCH})");
    println!("  events delivered          {}", events.len());
    println!("  counted / duplicates      {counted} / {duplicates}");
    println!(
        "  transactions (calls)      {transactions}  ({cancelled} cancelled by an already-counted event)"
    );
    println!(
        "  items in transactions     {items}  ({:.3} per delivered event)",
        items as f64 / events.len() as f64
    );
    println!(
        "  items written             {written}  ({:.3} per counted event)",
        written as f64 / counted as f64
    );
    println!(
        "  elapsed                   {:.2} s  ({:.0} events/s, emulator-bound)",
        elapsed.as_secs_f64(),
        events.len() as f64 / elapsed.as_secs_f64()
    );
}
