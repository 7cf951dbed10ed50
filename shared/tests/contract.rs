//! The port contract suite: every rule the services rely on from the store ports, written once
//! against the ports and run against the in-memory adapter (always) and against DynamoDB on the
//! emulator (ignored by plain `cargo test`; `make test` includes it) — so the fast test layer
//! cannot drift from DynamoDB's semantics.
//!
//! Each rule is a generic `async fn` over a [`Fixture`]; the `contract!` macro instantiates all of
//! them once per adapter.

mod common;

use std::collections::BTreeMap;

use async_trait::async_trait;
use common::{Store, event, feature, installation, report, seated_and_full, seats};
use shared::adapters::memory::MemoryStore;
use shared::domain::lifecycle::NoticeState;
use shared::domain::ports::{
    AuditLog, Candidate, CustomerDirectory, ExecutionLog, HeartbeatReport, InstallationRegistry,
    LicenseReader, LicenseWriter, LifecycleIndex, NoticeClaim, NoticeLedger, OperatorCreated,
    OperatorDirectory, RateLimiter, Recorded, SeatClaim, SweepPage, UsageLedger,
};
use shared::domain::workflow::{ExecutionId, ExecutionRecord};
use shared::domain::{
    Actor, AuditEntry, Customer, CustomerId, Gauges, Hostname, Installation, InstallationStatus,
    Lease, LeaseToken, License, LicenseId, LicenseStatus, Operator, OperatorId, OperatorName,
    OperatorStatus, Period, Plan, Role, StoreError, TokenHash, UsageEvent,
};
use shared::testing::Stack;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-06-10 12:00 UTC);

/// A fresh, empty store of one adapter.
#[async_trait]
trait Fixture: Send + Sync {
    /// The adapter under test.
    type S: Store;
    /// A fresh, empty store.
    async fn new() -> Self;
    /// The store.
    fn store(&self) -> &Self::S;
    /// Plays DynamoDB's TTL process at `now`: deletes every item whose `ttl` is at or before it.
    async fn expire_ttl(&self, now: OffsetDateTime);
    /// Starts counting DynamoDB requests afresh.
    fn reset_requests(&self) {}
    /// DynamoDB `Query` requests since the last reset (`None`: the store makes no requests).
    fn queries(&self) -> Option<usize> {
        None
    }
}

struct Memory(MemoryStore);

#[async_trait]
impl Fixture for Memory {
    type S = MemoryStore;
    async fn new() -> Self {
        Self(MemoryStore::new())
    }
    fn store(&self) -> &MemoryStore {
        &self.0
    }
    async fn expire_ttl(&self, now: OffsetDateTime) {
        self.0.expire_ttl(now);
    }
}

struct Dynamo(Stack);

#[async_trait]
impl Fixture for Dynamo {
    type S = shared::adapters::dynamo::DynamoStore;
    async fn new() -> Self {
        Self(Stack::new().await)
    }
    fn store(&self) -> &Self::S {
        &self.0.store
    }
    fn reset_requests(&self) {
        self.0.calls.reset();
    }
    fn queries(&self) -> Option<usize> {
        Some(self.0.calls.count("DynamoDB.Query"))
    }
    /// The emulator does not run DynamoDB's TTL process: a scan deletes what it would.
    async fn expire_ttl(&self, now: OffsetDateTime) {
        use aws_sdk_dynamodb::types::AttributeValue;
        let dynamo = &self.0.dynamo;
        let mut start = None;
        loop {
            let page = dynamo
                .scan()
                .table_name(self.0.store.table())
                .filter_expression("#ttl <= :now")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(now.unix_timestamp().to_string()),
                )
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            for item in page.items.unwrap_or_default() {
                dynamo
                    .delete_item()
                    .table_name(self.0.store.table())
                    .key("pk", item["pk"].clone())
                    .key("sk", item["sk"].clone())
                    .send()
                    .await
                    .expect("delete");
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return,
            }
        }
    }
}

macro_rules! contract {
    ($($rule:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $rule() {
                    super::$rule(&<super::Memory as super::Fixture>::new().await).await;
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test]
                #[ignore = "emulator: run by make test"]
                async fn $rule() {
                    super::$rule(&<super::Dynamo as super::Fixture>::new().await).await;
                }
            )*
        }
    };
}

contract!(
    creates_are_conditional_and_write_their_audit_entry_with_them,
    status_changes_are_optimistic_and_audited_atomically,
    renewal_moves_the_expiry_and_the_index_with_the_status,
    a_snapshot_reads_license_installation_and_counter_together,
    seats_stop_at_the_limit_and_a_seated_installation_keeps_its_seat,
    concurrent_claims_never_pass_the_seat_limit,
    concurrent_beats_of_one_installation_take_one_seat,
    touch_refreshes_only_an_active_installation_and_keeps_unreported_readings,
    a_lease_is_recorded_only_for_a_known_installation,
    usage_counts_each_event_once_per_license_and_event_id,
    a_group_larger_than_one_transaction_counts_each_event_once,
    dedupe_markers_last_until_their_ttl,
    reservations_never_pass_the_limit_even_concurrently,
    notice_claims_exclude_each_other_until_they_lapse_and_sent_is_final,
    licenses_by_expiry_pages_in_index_order_and_resumes_after_a_cursor,
    silent_installations_page_oldest_first_and_only_active_ones,
    deactivation_is_conditional_and_frees_the_seat_with_its_audit_entry,
    sweep_cursors_round_trip,
    rate_windows_admit_up_to_the_limit_and_refusals_do_not_count,
    executions_read_back_until_their_ttl_and_ids_are_never_reused,
    expiry_applies_only_to_the_expiry_decided_on,
    a_seat_count_is_repaired_only_from_the_count_it_was_read_at,
    an_entry_keyed_once_is_appended_once_until_its_key_lapses,
    an_audit_trail_pages_newest_first_each_entry_once,
    operators_are_created_once_under_a_unique_name_and_found_by_their_token_hash,
    a_rotation_replaces_the_token_only_from_the_token_read,
    disabling_removes_the_token_and_frees_the_name_only_from_the_token_read,
    operators_page_in_id_order_each_once,
    licenses_list_by_each_filter_page_after_page,
    customers_list_by_name_prefix_email_and_created_range,
    installations_list_by_license_state_version_and_silence,
    flags_list_until_their_lifetime_ends_and_raising_again_refreshes,
    a_days_snapshot_is_written_once_per_day_and_read_in_one_request,
    an_amendment_is_conditional_on_revision_and_status_and_moves_the_indexes_with_it,
    a_session_reads_back_until_its_end_and_is_gone_once_deleted,
);

// ---- fixtures ----

fn license_id(suffix: &str) -> LicenseId {
    LicenseId::parse(&format!("NECTAR-STARTER-2026-{suffix}")).expect("valid license id")
}

fn customer() -> Customer {
    Customer {
        id: CustomerId::from_uuid(uuid::Uuid::new_v4()),
        name: "Acme".into(),
        email: "ops@acme.com".into(),
        created_at: NOW,
    }
}

fn license(suffix: &str, owner: &Customer, expires_at: OffsetDateTime) -> License {
    License {
        id: license_id(suffix),
        customer_id: owner.id,
        plan: Plan::Starter,
        status: LicenseStatus::Active,
        features: Plan::Starter.default_features(),
        limits: Plan::Starter.default_limits(),
        domain_restrictions: Vec::new(),
        issued_at: NOW,
        expires_at,
        active_installations: 0,
        revision: 0,
        keys_valid_from: None,
        updated_at: NOW,
        contract: Default::default(),
    }
}

fn audit(action: &str, at: OffsetDateTime) -> AuditEntry {
    AuditEntry {
        action: action.into(),
        actor: Actor::operator("bootstrap", None),
        reason: None,
        from: None,
        to: None,
        at,
    }
}

/// A customer and one active license expiring in 30 days, as stored.
async fn seeded<S: Store>(store: &S, suffix: &str) -> License {
    let owner = customer();
    store
        .create_customer(&owner, &audit("customer.created", NOW))
        .await
        .expect("customer");
    let l = license(suffix, &owner, NOW + Duration::days(30));
    store
        .create_license(&l, &audit("license.issued", NOW))
        .await
        .expect("license");
    l
}

async fn claim<S: Store>(store: &S, r: &HeartbeatReport, limit: u64) -> SeatClaim {
    store.claim_seat(r, limit).await.expect("claim")
}

async fn trail<S: Store>(store: &S, owner: CustomerId, id: &LicenseId) -> Vec<String> {
    store
        .licenses_of(&owner)
        .await
        .expect("lookup")
        .into_iter()
        .find(|d| &d.license.id == id)
        .expect("listed")
        .audit
        .into_iter()
        .map(|a| a.action)
        .collect()
}

// ---- rules ----

async fn creates_are_conditional_and_write_their_audit_entry_with_them<F: Fixture>(f: &F) {
    let store = f.store();
    let owner = customer();
    store
        .create_customer(&owner, &audit("customer.created", NOW))
        .await
        .expect("first");
    assert!(matches!(
        store
            .create_customer(&owner, &audit("customer.created", NOW))
            .await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.customer(&owner.id).await.expect("read"),
        Some(owner.clone())
    );
    let l = license("AAAAAAAA", &owner, NOW + Duration::days(30));
    store
        .create_license(&l, &audit("license.issued", NOW))
        .await
        .expect("first");
    let again = store
        .create_license(&l, &audit("license.issued.again", NOW))
        .await;
    assert!(matches!(again, Err(StoreError::AlreadyExists)), "{again:?}");
    assert_eq!(store.license(&l.id).await.expect("read"), Some(l.clone()));
    // The refused create wrote no audit entry: the entry and the item commit together.
    assert_eq!(trail(store, owner.id, &l.id).await, ["license.issued"]);
    let missing = CustomerId::from_uuid(uuid::Uuid::new_v4());
    assert_eq!(store.customer(&missing).await.expect("read"), None);
    assert!(store.licenses_of(&missing).await.expect("read").is_empty());
}

async fn status_changes_are_optimistic_and_audited_atomically<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "BBBBBBBB").await;
    let later = NOW + Duration::minutes(5);
    let suspend = AuditEntry {
        from: Some(LicenseStatus::Active),
        to: Some(LicenseStatus::Suspended),
        ..audit("license.suspended", later)
    };
    // The wrong expected status: nothing written, not even the audit entry.
    assert!(
        !store
            .set_status(
                &l.id,
                LicenseStatus::Suspended,
                LicenseStatus::Active,
                &suspend
            )
            .await
            .expect("set")
    );
    assert!(
        store
            .set_status(
                &l.id,
                LicenseStatus::Active,
                LicenseStatus::Suspended,
                &suspend
            )
            .await
            .expect("set")
    );
    let read = store.license(&l.id).await.expect("read").expect("license");
    assert_eq!(
        (read.status, read.updated_at),
        (LicenseStatus::Suspended, later)
    );
    assert!(
        !store
            .set_status(
                &l.id,
                LicenseStatus::Active,
                LicenseStatus::Suspended,
                &suspend
            )
            .await
            .expect("set"),
        "moved on: a second identical change is refused"
    );
    assert!(
        !store
            .set_status(
                &license_id("MISSING0"),
                LicenseStatus::Active,
                LicenseStatus::Revoked,
                &suspend
            )
            .await
            .expect("set"),
        "a missing license is not created"
    );
    assert_eq!(
        store.license(&license_id("MISSING0")).await.expect("read"),
        None
    );
    // Entries appended outside a transaction land in the same trail, in time order.
    store
        .append(
            &l.id,
            &audit("installation.signal", later + Duration::seconds(1)),
        )
        .await
        .expect("append");
    assert_eq!(
        trail(store, l.customer_id, &l.id).await,
        ["license.issued", "license.suspended", "installation.signal"]
    );
    let detail = store.licenses_of(&l.customer_id).await.expect("lookup");
    assert_eq!(
        (detail[0].audit[1].from, detail[0].audit[1].to),
        (Some(LicenseStatus::Active), Some(LicenseStatus::Suspended))
    );
}

async fn renewal_moves_the_expiry_and_the_index_with_the_status<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "CCCCCCCC").await;
    let expired = audit("license.expired", NOW);
    assert!(
        store
            .set_status(
                &l.id,
                LicenseStatus::Active,
                LicenseStatus::Expired,
                &expired
            )
            .await
            .expect("expire")
    );
    let new_expiry = NOW + Duration::days(90);
    assert!(
        !store
            .renew(
                &l.id,
                LicenseStatus::Active,
                LicenseStatus::Active,
                new_expiry,
                &audit("license.renewed", NOW)
            )
            .await
            .expect("renew"),
        "not active any more"
    );
    assert!(
        store
            .renew(
                &l.id,
                LicenseStatus::Expired,
                LicenseStatus::Active,
                new_expiry,
                &audit("license.renewed", NOW)
            )
            .await
            .expect("renew")
    );
    let read = store.license(&l.id).await.expect("read").expect("license");
    assert_eq!(
        (read.status, read.expires_at),
        (LicenseStatus::Active, new_expiry)
    );
    let around = |at: OffsetDateTime| {
        store.licenses_by_expiry(
            LicenseStatus::Active,
            at - Duration::days(1),
            at + Duration::days(1),
            None,
            10,
        )
    };
    assert!(around(l.expires_at).await.expect("old").items.is_empty());
    let found = around(new_expiry).await.expect("new");
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].license.id, l.id);
    assert_eq!(
        trail(store, l.customer_id, &l.id).await,
        ["license.issued", "license.expired", "license.renewed"]
    );
}

async fn a_snapshot_reads_license_installation_and_counter_together<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "DDDDDDDD").await;
    let i1 = installation("i-1");
    let period = Period::containing(NOW);
    let workflows = feature("workflows");
    let empty = store.snapshot(&l.id, &i1, None).await.expect("snapshot");
    assert_eq!(empty.license.as_ref(), Some(&l));
    assert_eq!((empty.installation, empty.used), (None, None));
    let counted = store
        .snapshot(&l.id, &i1, Some((&workflows, period)))
        .await
        .expect("snapshot");
    assert_eq!(counted.used, Some(0), "an unused counter reads 0");
    claim(store, &report(&l.id, "i-1", NOW), 5).await;
    store
        .record(&[event(&l.id, "e1", 4, NOW)], NOW)
        .await
        .expect("record");
    let full = store
        .snapshot(&l.id, &i1, Some((&workflows, period)))
        .await
        .expect("snapshot");
    assert_eq!(full.used, Some(4));
    assert_eq!(
        full.installation.map(|i| (i.id, i.status)),
        Some((i1.clone(), InstallationStatus::Active))
    );
    assert_eq!(full.license.map(|l| l.active_installations), Some(1));
    let ghost = store
        .license_and_installation(&license_id("GHOST000"), &i1)
        .await
        .expect("read");
    assert_eq!(ghost, (None, None));
}

async fn seats_stop_at_the_limit_and_a_seated_installation_keeps_its_seat<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "EEEEEEEE").await;
    let first = claim(store, &report(&l.id, "i-1", NOW), 2).await;
    let SeatClaim::Seated(seated) = first else {
        panic!("seated: {first:?}");
    };
    assert_eq!(
        (seated.status, seated.first_seen_at, seated.last_seen_at),
        (InstallationStatus::Active, NOW, NOW)
    );
    assert!(matches!(
        claim(store, &report(&l.id, "i-2", NOW), 2).await,
        SeatClaim::Seated(_)
    ));
    assert_eq!(
        claim(store, &report(&l.id, "i-3", NOW), 2).await,
        SeatClaim::SeatsFull
    );
    // A seat holder claiming again is refreshed, not counted twice, even at the limit.
    let later = NOW + Duration::minutes(3);
    let again = claim(store, &report(&l.id, "i-1", later), 2).await;
    assert!(
        matches!(&again, SeatClaim::Seated(i) if i.last_seen_at == later && i.first_seen_at == NOW),
        "{again:?}"
    );
    assert_eq!(seats(store, &l.id).await, 2);
    let ids: Vec<String> = store
        .installations(&l.id)
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.id.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["i-1", "i-2"], "the refused one was not recorded");
    assert_eq!(
        claim(store, &report(&license_id("GHOST000"), "i-1", NOW), 2).await,
        SeatClaim::SeatsFull,
        "no seat on a license not on record"
    );
}

async fn concurrent_claims_never_pass_the_seat_limit<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "FFFFFFFF").await;
    let reports: Vec<HeartbeatReport> = (0..12)
        .map(|i| report(&l.id, &format!("node-{i}"), NOW))
        .collect();
    let claims = futures::future::join_all(reports.iter().map(|r| store.claim_seat(r, 3))).await;
    assert_eq!(seated_and_full(&claims), (3, 9), "{claims:?}");
    assert_eq!(seats(store, &l.id).await, 3);
    assert_eq!(store.installations(&l.id).await.expect("list").len(), 3);
}

async fn concurrent_beats_of_one_installation_take_one_seat<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "GGGGGGGG").await;
    let twin = report(&l.id, "twin", NOW);
    let claims = futures::future::join_all((0..6).map(|_| store.claim_seat(&twin, 10))).await;
    assert!(
        claims.iter().all(|c| matches!(c, Ok(SeatClaim::Seated(_)))),
        "{claims:?}"
    );
    assert_eq!(seats(store, &l.id).await, 1);
}

async fn touch_refreshes_only_an_active_installation_and_keeps_unreported_readings<F: Fixture>(
    f: &F,
) {
    let store = f.store();
    let l = seeded(store, "HHHHHHHH").await;
    let mut r = report(&l.id, "i-1", NOW);
    assert_eq!(store.touch(&r).await.expect("touch"), None, "unknown");
    r.gauges = Gauges {
        users: Some(3),
        storage_gb: Some(9),
    };
    r.domain = Some(Hostname::parse("app.acme.com").expect("valid"));
    claim(store, &r, 5).await;
    let later = NOW + Duration::minutes(10);
    let beat = HeartbeatReport {
        version: "1.1.0".into(),
        gauges: Gauges {
            users: Some(4),
            storage_gb: None,
        },
        domain: None,
        at: later,
        ..r.clone()
    };
    let touched = store.touch(&beat).await.expect("touch").expect("active");
    assert_eq!(
        (
            touched.version.as_str(),
            touched.last_seen_at,
            touched.first_seen_at
        ),
        ("1.1.0", later, NOW)
    );
    assert_eq!(
        touched.gauges,
        Gauges {
            users: Some(4),
            storage_gb: Some(9)
        },
        "an absent reading keeps its value"
    );
    assert_eq!(
        touched.domain.as_ref().map(Hostname::as_str),
        Some("app.acme.com")
    );
    // Once culled, a touch writes nothing; a claim revives it (same first sighting).
    assert!(
        store
            .deactivate_installation(&touched, &audit("installation.deactivated", later))
            .await
            .expect("deactivate")
    );
    assert_eq!(store.touch(&beat).await.expect("touch"), None);
    let revived = claim(store, &beat, 5).await;
    assert!(
        matches!(&revived, SeatClaim::Seated(i) if i.first_seen_at == NOW && i.status == InstallationStatus::Active),
        "{revived:?}"
    );
    assert_eq!(seats(store, &l.id).await, 1);
}

async fn a_lease_is_recorded_only_for_a_known_installation<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "IIIIIIII").await;
    let lease = Lease {
        token: LeaseToken::new("header.claims.signature"),
        issued_at: NOW,
        expires_at: NOW + Duration::days(7),
    };
    assert!(
        store
            .record_lease(&l.id, &installation("i-1"), &lease)
            .await
            .is_err(),
        "no installation: nothing created"
    );
    assert!(store.installations(&l.id).await.expect("list").is_empty());
    claim(store, &report(&l.id, "i-1", NOW), 5).await;
    store
        .record_lease(&l.id, &installation("i-1"), &lease)
        .await
        .expect("record");
    let listed: Vec<Installation> = store.installations(&l.id).await.expect("list");
    assert_eq!(listed[0].lease.as_ref(), Some(&lease));
}

async fn usage_counts_each_event_once_per_license_and_event_id<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "JJJJJJJJ").await;
    let other = seeded(store, "KKKKKKKK").await;
    let yesterday = NOW - Duration::days(1);
    let outcome = store
        .record(
            &[
                event(&l.id, "a", 2, NOW),
                event(&l.id, "b", 3, yesterday),
                event(&l.id, "a", 2, NOW),
            ],
            NOW,
        )
        .await
        .expect("record");
    assert_eq!(
        outcome,
        [Recorded::Counted, Recorded::Counted, Recorded::Duplicate]
    );
    let again = store
        .record(
            &[event(&l.id, "b", 3, yesterday), event(&l.id, "c", 5, NOW)],
            NOW,
        )
        .await
        .expect("record");
    assert_eq!(again, [Recorded::Duplicate, Recorded::Counted]);
    // Event ids are per license: another license's "a" is its own event.
    assert_eq!(
        store
            .record(&[event(&other.id, "a", 1, NOW)], NOW)
            .await
            .expect("record"),
        [Recorded::Counted]
    );
    let period = Period::containing(NOW);
    let usage = store
        .usage(
            &l.id,
            &[feature("workflows"), feature("api_access")],
            period,
        )
        .await
        .expect("usage");
    let (total, daily) = &usage[0];
    assert_eq!(*total, 10);
    assert_eq!(daily.len(), 30, "June has 30 days");
    assert_eq!((daily[8], daily[9]), (3, 7));
    assert_eq!(usage[1], (0, vec![0; 30]), "an unused feature reads 0");
    let totals = store
        .usage_totals(
            &[l.id.clone(), other.id.clone(), license_id("GHOST000")],
            &feature("workflows"),
            period,
        )
        .await
        .expect("totals");
    assert_eq!(totals.get(&l.id), Some(&10));
    assert_eq!(totals.get(&other.id), Some(&1));
    assert_eq!(totals.get(&license_id("GHOST000")), None);
    let mixed = store
        .record(
            &[event(&l.id, "x", 1, NOW), event(&other.id, "y", 1, NOW)],
            NOW,
        )
        .await;
    assert!(mixed.is_err(), "one call, one counter");
    assert!(store.record(&[], NOW).await.expect("empty").is_empty());
}

async fn a_group_larger_than_one_transaction_counts_each_event_once<F: Fixture>(f: &F) {
    // DynamoDB takes 100 items per transaction: 250 events span three, and re-sent ones (some
    // already counted, some repeated within the call) straddle the boundaries.
    let store = f.store();
    let l = seeded(store, "SSSSSSSS").await;
    let first: Vec<UsageEvent> = (0..120)
        .map(|i| event(&l.id, &format!("g{i}"), 1, NOW))
        .collect();
    store.record(&first, NOW).await.expect("record");
    let mut group: Vec<UsageEvent> = (100..330)
        .map(|i| event(&l.id, &format!("g{i}"), 1, NOW))
        .collect();
    group.extend((300..320).map(|i| event(&l.id, &format!("g{i}"), 1, NOW)));
    let outcome = store.record(&group, NOW).await.expect("record");
    let counted = outcome.iter().filter(|r| **r == Recorded::Counted).count();
    assert_eq!(
        counted, 210,
        "g120..g329 are new; g100..g119 and the repeats are not"
    );
    assert_eq!(outcome[..20], [Recorded::Duplicate; 20]);
    assert_eq!(outcome[230..], [Recorded::Duplicate; 20]);
    let total = store
        .usage(&l.id, &[feature("workflows")], Period::containing(NOW))
        .await
        .expect("usage")[0]
        .0;
    assert_eq!(total, 330);
}

async fn dedupe_markers_last_until_their_ttl<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "LLLLLLLL").await;
    let e = event(&l.id, "late", 1, NOW);
    let ttl = NOW + Duration::days(shared::adapters::dynamo::MARKER_TTL_DAYS);
    store
        .record(std::slice::from_ref(&e), NOW)
        .await
        .expect("record");
    f.expire_ttl(ttl - Duration::seconds(1)).await;
    assert_eq!(
        store
            .record(std::slice::from_ref(&e), NOW)
            .await
            .expect("record"),
        [Recorded::Duplicate]
    );
    f.expire_ttl(ttl).await;
    assert_eq!(
        store.record(&[e], NOW).await.expect("record"),
        [Recorded::Counted],
        "past its TTL the marker is gone (the edge refuses events that old)"
    );
}

async fn reservations_never_pass_the_limit_even_concurrently<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "MMMMMMMM").await;
    let w = feature("workflows");
    assert_eq!(
        store.reserve(&l.id, &w, NOW, 7, 10).await.expect("r"),
        Some(7)
    );
    assert_eq!(store.reserve(&l.id, &w, NOW, 4, 10).await.expect("r"), None);
    assert_eq!(
        store.reserve(&l.id, &w, NOW, 11, 10).await.expect("r"),
        None
    );
    let tomorrow = NOW + Duration::days(1);
    assert_eq!(
        store.reserve(&l.id, &w, tomorrow, 3, 10).await.expect("r"),
        Some(10)
    );
    let (total, daily) = store
        .usage(&l.id, std::slice::from_ref(&w), Period::containing(NOW))
        .await
        .expect("usage")
        .remove(0);
    assert_eq!((total, daily[9], daily[10]), (10, 7, 3));
    let api = feature("api_access");
    let results =
        futures::future::join_all((0..30).map(|_| store.reserve(&l.id, &api, NOW, 1, 10))).await;
    let granted: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().expect("reserve").as_ref().copied())
        .collect();
    assert_eq!(granted.len(), 10, "{results:?}");
    assert!(granted.iter().all(|&g| g <= 10));
    let next_month = Period::containing(NOW).end() + Duration::hours(1);
    assert_eq!(
        store
            .reserve(&l.id, &w, next_month, 1, 10)
            .await
            .expect("r"),
        Some(1),
        "each month starts from zero"
    );
}

async fn notice_claims_exclude_each_other_until_they_lapse_and_sent_is_final<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "NNNNNNNN").await;
    let until = NOW + Duration::minutes(5);
    let c = |id: &'static str, now: OffsetDateTime, stale: Vec<String>| {
        let (store, l) = (store, &l);
        async move {
            store
                .claim_notice(&l.id, id, now, now + Duration::minutes(5), &stale)
                .await
                .expect("claim")
        }
    };
    assert_eq!(c("old", NOW, vec![]).await, NoticeClaim::Claimed);
    assert_eq!(c("n1", NOW, vec![]).await, NoticeClaim::Claimed);
    assert_eq!(
        c("n1", NOW + Duration::minutes(1), vec![]).await,
        NoticeClaim::Taken
    );
    assert_eq!(
        c("n1", until, vec![]).await,
        NoticeClaim::Taken,
        "live through `until`"
    );
    let lapsed = until + Duration::seconds(1);
    assert_eq!(c("n1", lapsed, vec![]).await, NoticeClaim::Claimed);
    store
        .mark_notice_sent(&l.id, "n1", lapsed)
        .await
        .expect("sent");
    assert_eq!(
        c("n1", lapsed + Duration::days(400), vec![]).await,
        NoticeClaim::Taken,
        "sent is final"
    );
    // A claim forgets the stale notices it is given (never itself).
    assert_eq!(
        c("n2", NOW, vec!["old".into(), "n2".into()]).await,
        NoticeClaim::Claimed
    );
    let page = store
        .licenses_by_expiry(
            LicenseStatus::Active,
            NOW,
            NOW + Duration::days(31),
            None,
            10,
        )
        .await
        .expect("sweep");
    let notices: &BTreeMap<String, NoticeState> = &page.items[0].notices;
    assert_eq!(
        notices
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [
            ("n1", NoticeState::Sent),
            (
                "n2",
                NoticeState::Claimed {
                    until: NOW + Duration::minutes(5)
                }
            )
        ]
    );
    assert_eq!(
        store
            .claim_notice(&license_id("GHOST000"), "n1", NOW, until, &[])
            .await
            .expect("claim"),
        NoticeClaim::Taken,
        "no ledger without a license"
    );
    assert!(
        store
            .mark_notice_sent(&license_id("GHOST000"), "n1", NOW)
            .await
            .is_err()
    );
}

/// Every item of a sweep, page by page; also the number of pages it took.
async fn sweep_all<T, Fut>(mut page: impl FnMut(Option<String>) -> Fut) -> (Vec<T>, usize)
where
    Fut: std::future::Future<Output = Result<SweepPage<T>, StoreError>>,
{
    let (mut all, mut after, mut pages) = (Vec::new(), None, 0);
    loop {
        let got = page(after.take()).await.expect("page");
        pages += 1;
        all.extend(got.items);
        match got.next {
            Some(n) => after = Some(n),
            None => return (all, pages),
        }
        assert!(pages < 50, "the sweep ends");
    }
}

/// One page of the `status` licenses expiring within `range`, resuming after `after`.
async fn expiring<S: Store>(
    store: &S,
    status: LicenseStatus,
    range: std::ops::RangeInclusive<OffsetDateTime>,
    after: Option<&str>,
    limit: usize,
) -> SweepPage<Candidate> {
    store
        .licenses_by_expiry(status, *range.start(), *range.end(), after, limit)
        .await
        .expect("page")
}

async fn licenses_by_expiry_pages_in_index_order_and_resumes_after_a_cursor<F: Fixture>(f: &F) {
    let store = f.store();
    let owner = customer();
    store
        .create_customer(&owner, &audit("customer.created", NOW))
        .await
        .expect("customer");
    // Two share an expiry (ordered by id); one is suspended; one expires outside the range.
    for (suffix, days) in [
        ("Q0000004", 4),
        ("Q0000001", 1),
        ("Q0000003", 3),
        ("Q0000002", 3),
        ("Q0000005", 5),
        ("Q0000099", 99),
    ] {
        let l = license(suffix, &owner, NOW + Duration::days(days));
        store
            .create_license(&l, &audit("license.issued", NOW))
            .await
            .expect("create");
    }
    let suspended = license_id("Q0000005");
    assert!(
        store
            .set_status(
                &suspended,
                LicenseStatus::Active,
                LicenseStatus::Suspended,
                &audit("license.suspended", NOW)
            )
            .await
            .expect("suspend")
    );
    let to = NOW + Duration::days(30);
    let (items, pages) = sweep_all(|after| async move {
        store
            .licenses_by_expiry(LicenseStatus::Active, NOW, to, after.as_deref(), 2)
            .await
    })
    .await;
    let ids: Vec<&str> = items.iter().map(|c| &c.license.id.as_str()[20..]).collect();
    assert_eq!(ids, ["Q0000001", "Q0000002", "Q0000003", "Q0000004"]);
    assert!(pages >= 2, "paged by 2");
    // The range bounds are inclusive of the expiry instant at `to`.
    let day3 = NOW + Duration::days(3);
    let exact = expiring(store, LicenseStatus::Active, day3..=day3, None, 10).await;
    assert_eq!(exact.items.len(), 2);
    // A cursor resumes right after its item; one from before the range starts at the range.
    let first = expiring(store, LicenseStatus::Active, NOW..=to, None, 1).await;
    let cursor = first.next.expect("more to come");
    let rest = expiring(store, LicenseStatus::Active, NOW..=to, Some(&cursor), 10).await;
    assert_eq!(rest.items.len(), 3);
    assert_eq!(rest.next, None);
    let day2 = NOW + Duration::days(2);
    let early = expiring(store, LicenseStatus::Active, day2..=to, Some(&cursor), 10).await;
    assert_eq!(early.items.len(), 3);
    let suspended_page = expiring(store, LicenseStatus::Suspended, NOW..=to, None, 10).await;
    assert_eq!(suspended_page.items.len(), 1);
    assert_eq!(suspended_page.items[0].license.id, suspended);
}

async fn silent_installations_page_oldest_first_and_only_active_ones<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "OOOOOOOO").await;
    for (inst, hours_ago) in [("c", 1), ("a", 30), ("b", 20), ("d", 50)] {
        claim(
            store,
            &report(&l.id, inst, NOW - Duration::hours(hours_ago)),
            10,
        )
        .await;
    }
    // "d" is culled: it leaves the index.
    let d = store
        .installations(&l.id)
        .await
        .expect("list")
        .into_iter()
        .find(|i| i.id.as_str() == "d")
        .expect("d");
    assert!(
        store
            .deactivate_installation(&d, &audit("installation.deactivated", NOW))
            .await
            .expect("cull")
    );
    let before = NOW - Duration::hours(2);
    let (items, _) = sweep_all(|after| async move {
        store
            .silent_installations(before, after.as_deref(), 1)
            .await
    })
    .await;
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        ["a", "b"],
        "oldest first; recent and inactive ones left out"
    );
    let at_instant = store
        .silent_installations(NOW - Duration::hours(20), None, 10)
        .await
        .expect("page");
    assert_eq!(
        at_instant.items.len(),
        2,
        "seen exactly at the bound counts"
    );
}

async fn deactivation_is_conditional_and_frees_the_seat_with_its_audit_entry<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "PPPPPPPP").await;
    let SeatClaim::Seated(seen) = claim(store, &report(&l.id, "i-1", NOW), 2).await else {
        panic!("seated");
    };
    // It beat after the sweep read it: left alone.
    store
        .touch(&report(&l.id, "i-1", NOW + Duration::minutes(1)))
        .await
        .expect("touch");
    assert!(
        !store
            .deactivate_installation(&seen, &audit("installation.deactivated", NOW))
            .await
            .expect("cull")
    );
    assert_eq!(seats(store, &l.id).await, 1);
    let fresh = store.installations(&l.id).await.expect("list").remove(0);
    assert!(
        store
            .deactivate_installation(&fresh, &audit("installation.deactivated", NOW))
            .await
            .expect("cull")
    );
    assert!(
        !store
            .deactivate_installation(&fresh, &audit("installation.deactivated", NOW))
            .await
            .expect("cull"),
        "only once"
    );
    assert_eq!(seats(store, &l.id).await, 0);
    let listed = store.installations(&l.id).await.expect("list");
    assert_eq!(listed[0].status, InstallationStatus::Inactive);
    assert_eq!(
        trail(store, l.customer_id, &l.id).await,
        ["license.issued", "installation.deactivated"]
    );
}

async fn sweep_cursors_round_trip<F: Fixture>(f: &F) {
    let store = f.store();
    assert_eq!(store.cursor("expiry").await.expect("read"), None);
    store
        .save_cursor("expiry", Some("2026#X"))
        .await
        .expect("save");
    store
        .save_cursor("usage", Some("other"))
        .await
        .expect("save");
    assert_eq!(
        store.cursor("expiry").await.expect("read").as_deref(),
        Some("2026#X")
    );
    store.save_cursor("expiry", None).await.expect("save");
    assert_eq!(store.cursor("expiry").await.expect("read"), None);
    assert_eq!(
        store.cursor("usage").await.expect("read").as_deref(),
        Some("other")
    );
}

async fn rate_windows_admit_up_to_the_limit_and_refusals_do_not_count<F: Fixture>(f: &F) {
    let store = f.store();
    let minute = Duration::minutes(1);
    let window = datetime!(2026-06-10 12:00 UTC);
    let admit = |key: &'static str, start: OffsetDateTime, limit: u64| async move {
        store.admit(key, start, minute, limit).await.expect("admit")
    };
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(admit("lic-a", window, 3).await);
    }
    assert_eq!(got, [true, true, true, false, false]);
    assert!(admit("lic-a", window, 4).await, "refusals were not counted");
    assert!(admit("lic-b", window, 3).await, "keys are independent");
    assert!(admit("lic-a", window + minute, 3).await, "a new window");
    let concurrent =
        futures::future::join_all((0..10).map(|_| store.admit("lic-c", window, minute, 4))).await;
    let admitted = concurrent.iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(admitted, 4, "{concurrent:?}");
    // The window lives until an hour past its end, then the TTL process removes it.
    f.expire_ttl(window + minute + Duration::hours(1)).await;
    assert!(
        admit("lic-a", window, 1).await,
        "a deleted window starts over"
    );
}

async fn executions_read_back_until_their_ttl_and_ids_are_never_reused<F: Fixture>(f: &F) {
    let store = f.store();
    let record = ExecutionRecord {
        id: ExecutionId::from_uuid(uuid::Uuid::now_v7()),
        license_id: license_id("RRRRRRRR"),
        workflow_id: "wf-1".into(),
        started_at: NOW + Duration::milliseconds(250),
        body: serde_json::json!({"status": "succeeded", "output": {"n": 1}, "steps": []}),
    };
    store.record_execution(&record).await.expect("record");
    let read = store
        .execution(&record.id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(
        read,
        ExecutionRecord {
            started_at: NOW,
            ..record.clone()
        },
        "kept at whole seconds"
    );
    assert!(
        store.record_execution(&record).await.is_err(),
        "an id is recorded once"
    );
    let unknown = ExecutionId::from_uuid(uuid::Uuid::now_v7());
    assert_eq!(store.execution(&unknown).await.expect("read"), None);
    let ttl = NOW + Duration::days(shared::adapters::dynamo::EXECUTION_TTL_DAYS);
    f.expire_ttl(ttl - Duration::seconds(1)).await;
    assert!(store.execution(&record.id).await.expect("read").is_some());
    f.expire_ttl(ttl).await;
    assert_eq!(store.execution(&record.id).await.expect("read"), None);
}

async fn expiry_applies_only_to_the_expiry_decided_on<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "QQQQQQQQ").await;
    // Renewed after the decision: the expiry decided on no longer holds.
    assert!(
        store
            .renew(
                &l.id,
                LicenseStatus::Active,
                LicenseStatus::Active,
                l.expires_at + Duration::days(365),
                &audit("license.renewed", NOW),
            )
            .await
            .expect("renew")
    );
    assert!(
        !store
            .expire_license(&l.id, l.expires_at, &audit("license.expired", NOW))
            .await
            .expect("expire"),
        "a stale decision is refused"
    );
    let renewed = store.license(&l.id).await.expect("read").expect("exists");
    assert_eq!(renewed.status, LicenseStatus::Active);
    // On the current expiry it applies, once, with its audit entry.
    assert!(
        store
            .expire_license(&l.id, renewed.expires_at, &audit("license.expired", NOW))
            .await
            .expect("expire")
    );
    assert!(
        !store
            .expire_license(&l.id, renewed.expires_at, &audit("license.expired", NOW))
            .await
            .expect("expire"),
        "only once"
    );
    let expired = store.license(&l.id).await.expect("read").expect("exists");
    assert_eq!(expired.status, LicenseStatus::Expired);
    assert_eq!(
        trail(store, l.customer_id, &l.id).await,
        ["license.issued", "license.renewed", "license.expired"]
    );
}

async fn a_seat_count_is_repaired_only_from_the_count_it_was_read_at<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "RRRRRRRR").await;
    claim(store, &report(&l.id, "i-1", NOW), 3).await;
    assert_eq!(seats(store, &l.id).await, 1);
    // Read at 0 but it is 1 now (a claim landed): refused.
    assert!(
        !store
            .repair_seat_count(&l.id, 0, 0, &audit("license.seats_recounted", NOW))
            .await
            .expect("repair")
    );
    assert_eq!(seats(store, &l.id).await, 1);
    assert!(
        store
            .repair_seat_count(&l.id, 1, 2, &audit("license.seats_recounted", NOW))
            .await
            .expect("repair")
    );
    assert_eq!(seats(store, &l.id).await, 2);
    assert_eq!(
        trail(store, l.customer_id, &l.id).await,
        ["license.issued", "license.seats_recounted"]
    );
}

async fn an_entry_keyed_once_is_appended_once_until_its_key_lapses<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "SSSSSSSS").await;
    let until = NOW + Duration::hours(12);
    let entry = |at| audit("installation.signal", at);
    assert!(
        store
            .append_once(&l.id, "k", until, &entry(NOW))
            .await
            .expect("once")
    );
    assert!(
        !store
            .append_once(&l.id, "k", until, &entry(NOW + Duration::hours(1)))
            .await
            .expect("once")
    );
    assert!(
        store
            .append_once(&l.id, "other", until, &entry(NOW))
            .await
            .expect("once"),
        "another key"
    );
    // After its end the key no longer blocks (DynamoDB may not have deleted it yet).
    assert!(
        store
            .append_once(
                &l.id,
                "k",
                until + Duration::days(1),
                &entry(until + Duration::hours(1))
            )
            .await
            .expect("once")
    );
    assert_eq!(
        trail(store, l.customer_id, &l.id).await,
        [
            "license.issued",
            "installation.signal",
            "installation.signal",
            "installation.signal"
        ]
    );
}

async fn an_audit_trail_pages_newest_first_each_entry_once<F: Fixture>(f: &F) {
    let store = f.store();
    let l = seeded(store, "TTTTTTTT").await;
    for i in 0..7 {
        store
            .append(
                &l.id,
                &audit(&format!("e{i}"), NOW + Duration::seconds(i + 1)),
            )
            .await
            .expect("append");
    }
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = store
            .audit_page(&l.id, before.as_deref(), 3)
            .await
            .expect("page");
        assert!(page.entries.len() <= 3);
        seen.extend(page.entries.iter().map(|e| e.action.clone()));
        match page.next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["e6", "e5", "e4", "e3", "e2", "e1", "e0", "license.issued"]
    );
    // The lookup shows the latest entries, oldest first.
    let (_, details) = ((), store.licenses_of(&l.customer_id).await.expect("lookup"));
    let shown: Vec<String> = details[0].audit.iter().map(|e| e.action.clone()).collect();
    assert_eq!(shown.last().map(String::as_str), Some("e6"));
    assert_eq!(details[0].audit_next, None, "8 entries fit one lookup page");
}

// ---- operators ----

/// An active operator made at `NOW` with id number `n`, `name`, `role` and the token `token`.
fn operator(n: u128, name: &str, role: Role, token: &str) -> Operator {
    Operator {
        id: OperatorId::from_uuid(uuid::Uuid::from_u128(
            0x0192_0000_0000_7000_8000_0000_0000_0000 + n,
        )),
        name: OperatorName::parse(name).expect("name"),
        email: Some(format!("{name}@nectar.example")),
        role,
        status: OperatorStatus::Active,
        created_at: NOW,
        last_rotated_at: NOW,
        token_hash: TokenHash::of(token),
    }
}

async fn operator_trail<S: Store>(store: &S, id: &OperatorId) -> Vec<String> {
    store
        .operator_audit(id, None, 50)
        .await
        .expect("trail")
        .entries
        .into_iter()
        .map(|e| e.action)
        .collect()
}

async fn operators_are_created_once_under_a_unique_name_and_found_by_their_token_hash<
    F: Fixture,
>(
    f: &F,
) {
    let store = f.store();
    let alice = operator(1, "alice", Role::Viewer, "token-a");
    let created = store
        .create_operator(&alice, &audit("operator.created", NOW))
        .await
        .expect("create");
    assert_eq!(created, OperatorCreated::Created);
    assert_eq!(
        store
            .credential(&TokenHash::of("token-a"))
            .await
            .expect("read"),
        Some(alice.credential())
    );
    assert_eq!(
        store
            .credential(&TokenHash::of("token-x"))
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        store.operator(&alice.id).await.expect("read"),
        Some(alice.clone())
    );
    // The same id again: AlreadyExists, nothing written.
    let twin = operator(1, "other", Role::Admin, "token-b");
    assert!(matches!(
        store
            .create_operator(&twin, &audit("operator.created", NOW))
            .await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store
            .credential(&TokenHash::of("token-b"))
            .await
            .expect("read"),
        None
    );
    // The same name in another case: NameTaken, nothing written.
    let namesake = operator(2, "ALICE", Role::Admin, "token-c");
    assert_eq!(
        store
            .create_operator(&namesake, &audit("operator.created", NOW))
            .await
            .expect("create"),
        OperatorCreated::NameTaken
    );
    assert_eq!(store.operator(&namesake.id).await.expect("read"), None);
    assert_eq!(
        store
            .credential(&TokenHash::of("token-c"))
            .await
            .expect("read"),
        None
    );
    // The same token: AlreadyExists, nothing written.
    let copycat = operator(3, "mallory", Role::Admin, "token-a");
    assert!(matches!(
        store
            .create_operator(&copycat, &audit("operator.created", NOW))
            .await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(store.operator(&copycat.id).await.expect("read"), None);
    assert_eq!(
        store
            .credential(&TokenHash::of("token-a"))
            .await
            .expect("read")
            .map(|c| c.operator_id),
        Some(alice.id)
    );
    assert_eq!(operator_trail(store, &alice.id).await, ["operator.created"]);
    assert!(operator_trail(store, &namesake.id).await.is_empty());
}

async fn a_rotation_replaces_the_token_only_from_the_token_read<F: Fixture>(f: &F) {
    let store = f.store();
    let bob = operator(1, "bob", Role::Support, "old");
    let carol = operator(2, "carol", Role::Admin, "carols");
    for o in [&bob, &carol] {
        store
            .create_operator(o, &audit("operator.created", NOW))
            .await
            .expect("create");
    }
    let later = NOW + Duration::hours(1);
    assert!(
        store
            .rotate_operator_token(
                &bob,
                &TokenHash::of("new"),
                &audit("operator.token_rotated", later)
            )
            .await
            .expect("rotate")
    );
    assert_eq!(
        store.credential(&TokenHash::of("old")).await.expect("read"),
        None
    );
    let now_bob = store.operator(&bob.id).await.expect("read").expect("bob");
    assert_eq!(now_bob.token_hash, TokenHash::of("new"));
    assert_eq!(now_bob.last_rotated_at, later);
    assert_eq!(now_bob.created_at, NOW);
    assert_eq!(
        store.credential(&TokenHash::of("new")).await.expect("read"),
        Some(now_bob.credential())
    );
    // From the stale read (the old token): refused, nothing written.
    assert!(
        !store
            .rotate_operator_token(
                &bob,
                &TokenHash::of("newer"),
                &audit("operator.token_rotated", later)
            )
            .await
            .expect("rotate")
    );
    assert_eq!(
        store
            .credential(&TokenHash::of("newer"))
            .await
            .expect("read"),
        None
    );
    // Onto a token another operator holds: refused, carol's token stays hers.
    assert!(
        !store
            .rotate_operator_token(
                &now_bob,
                &TokenHash::of("carols"),
                &audit("operator.token_rotated", later)
            )
            .await
            .expect("rotate")
    );
    assert_eq!(
        store
            .credential(&TokenHash::of("carols"))
            .await
            .expect("read")
            .map(|c| c.operator_id),
        Some(carol.id)
    );
    assert!(
        store
            .credential(&TokenHash::of("new"))
            .await
            .expect("read")
            .is_some()
    );
    assert_eq!(
        operator_trail(store, &bob.id).await,
        ["operator.token_rotated", "operator.created"]
    );
}

async fn disabling_removes_the_token_and_frees_the_name_only_from_the_token_read<F: Fixture>(
    f: &F,
) {
    let store = f.store();
    let dave = operator(1, "dave", Role::Viewer, "daves");
    let erin = operator(2, "erin", Role::Admin, "erins");
    for o in [&dave, &erin] {
        store
            .create_operator(o, &audit("operator.created", NOW))
            .await
            .expect("create");
    }
    assert!(
        store
            .disable_operator(&dave, &audit("operator.disabled", NOW))
            .await
            .expect("disable")
    );
    assert_eq!(
        store
            .credential(&TokenHash::of("daves"))
            .await
            .expect("read"),
        None
    );
    let stored = store.operator(&dave.id).await.expect("read").expect("kept");
    assert_eq!(stored.status, OperatorStatus::Disabled);
    // Final: neither disabled again nor rotated.
    assert!(
        !store
            .disable_operator(&dave, &audit("operator.disabled", NOW))
            .await
            .expect("disable")
    );
    assert!(
        !store
            .rotate_operator_token(
                &dave,
                &TokenHash::of("again"),
                &audit("operator.token_rotated", NOW)
            )
            .await
            .expect("rotate")
    );
    assert_eq!(
        store
            .credential(&TokenHash::of("again"))
            .await
            .expect("read"),
        None
    );
    // The name is free again.
    let new_dave = operator(3, "Dave", Role::Viewer, "new-daves");
    assert_eq!(
        store
            .create_operator(&new_dave, &audit("operator.created", NOW))
            .await
            .expect("create"),
        OperatorCreated::Created
    );
    // A disable from a stale read (the token rotated since) is refused: the new token stays.
    store
        .rotate_operator_token(
            &erin,
            &TokenHash::of("erins-2"),
            &audit("operator.token_rotated", NOW),
        )
        .await
        .expect("rotate");
    assert!(
        !store
            .disable_operator(&erin, &audit("operator.disabled", NOW))
            .await
            .expect("disable")
    );
    assert!(
        store
            .credential(&TokenHash::of("erins-2"))
            .await
            .expect("read")
            .is_some()
    );
    assert_eq!(
        operator_trail(store, &dave.id).await,
        ["operator.disabled", "operator.created"]
    );
}

async fn operators_page_in_id_order_each_once<F: Fixture>(f: &F) {
    let store = f.store();
    // Created out of id order.
    for n in [5u128, 2, 7, 1, 4, 3, 6] {
        let o = operator(n, &format!("op{n}"), Role::Viewer, &format!("t{n}"));
        store
            .create_operator(&o, &audit("operator.created", NOW))
            .await
            .expect("create");
    }
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut after: Option<OperatorId> = None;
    loop {
        let page = store.operators(after.as_ref(), 3).await.expect("page");
        pages.push(page.items.len());
        seen.extend(page.items.iter().map(|o| o.name.to_string()));
        match page.next {
            Some(n) => after = Some(OperatorId::parse(&n).expect("the cursor is an id")),
            None => break,
        }
    }
    assert_eq!(seen, ["op1", "op2", "op3", "op4", "op5", "op6", "op7"]);
    assert_eq!(pages, [3, 3, 1]);
    // A page that ends exactly at the last operator says so.
    let last = store
        .operators(Some(&operator(4, "x", Role::Viewer, "x").id), 3)
        .await
        .expect("page");
    assert_eq!((last.items.len(), last.next), (3, None));
}

// ---- fleet listings ----

/// Every page of a listing with page size `limit`: the items in order, and how many pages.
async fn all_pages<T, Fut>(
    mut page: impl FnMut(Option<shared::domain::fleet::PageCursor>) -> Fut,
) -> (Vec<T>, usize)
where
    Fut: std::future::Future<Output = Result<shared::domain::fleet::Page<T>, StoreError>>,
{
    let (mut items, mut pages, mut cursor) = (Vec::new(), 0, None);
    loop {
        let p = page(cursor.take()).await.expect("page");
        pages += 1;
        assert!(pages < 100, "a listing must end");
        items.extend(p.items);
        match p.next {
            Some(next) => cursor = Some(next),
            None => return (items, pages),
        }
    }
}

/// A book of 7 licenses of 2 customers across plans, statuses and expiries; returns the
/// customers. Suffixes (ids) tell them apart: `A…` is active, `S…` suspended, `R…` revoked.
async fn fleet_book<S: Store>(store: &S) -> (Customer, Customer) {
    let (acme, globex) = (customer(), customer());
    for c in [&acme, &globex] {
        store
            .create_customer(c, &audit("customer.created", NOW))
            .await
            .expect("customer");
    }
    let book = [
        ("AAAAAAA1", &acme, Plan::Starter, LicenseStatus::Active, 10),
        (
            "AAAAAAA2",
            &acme,
            Plan::Professional,
            LicenseStatus::Active,
            40,
        ),
        (
            "AAAAAAA3",
            &globex,
            Plan::Professional,
            LicenseStatus::Active,
            20,
        ),
        (
            "AAAAAAA4",
            &globex,
            Plan::Enterprise,
            LicenseStatus::Active,
            90,
        ),
        (
            "AAAAAAA5",
            &acme,
            Plan::Professional,
            LicenseStatus::Active,
            5,
        ),
        (
            "SSSSSSS1",
            &acme,
            Plan::Professional,
            LicenseStatus::Suspended,
            30,
        ),
        (
            "RRRRRRR1",
            &globex,
            Plan::Starter,
            LicenseStatus::Revoked,
            60,
        ),
    ];
    for (suffix, owner, plan, status, days) in book {
        let mut l = license(suffix, owner, NOW + Duration::days(days));
        l.plan = plan;
        if suffix == "AAAAAAA3" {
            l.contract.channel = shared::domain::revenue::Channel::Saas;
        }
        store
            .create_license(&l, &audit("license.issued", NOW))
            .await
            .expect("license");
        if status != LicenseStatus::Active {
            assert!(
                store
                    .set_status(&l.id, LicenseStatus::Active, status, &audit("x", NOW))
                    .await
                    .expect("status")
            );
        }
    }
    (acme, globex)
}

fn suffixes(ls: &[License]) -> Vec<String> {
    ls.iter()
        .map(|l| l.id.as_str().rsplit('-').next().unwrap_or("").to_owned())
        .collect()
}

async fn licenses_list_by_each_filter_page_after_page<F: Fixture>(f: &F) {
    use shared::domain::fleet::LicenseFilter;
    use shared::domain::ports::FleetIndex;
    let store = f.store();
    let (acme, _) = fleet_book(store).await;
    let list = |filter: LicenseFilter, limit: usize| async move {
        let (items, pages) = all_pages(|c| {
            let filter = filter.clone();
            async move { store.list_licenses(&filter, c.as_ref(), limit).await }
        })
        .await;
        (suffixes(&items), pages)
    };
    // Unfiltered: every status in turn (active, suspended, expired, revoked), each by expiry.
    let (all, _) = list(LicenseFilter::default(), 2).await;
    assert_eq!(
        all,
        [
            "AAAAAAA5", "AAAAAAA1", "AAAAAAA3", "AAAAAAA2", "AAAAAAA4", "SSSSSSS1", "RRRRRRR1"
        ]
    );
    // One status, by expiry, across pages of 2.
    let active = LicenseFilter {
        status: Some(LicenseStatus::Active),
        ..Default::default()
    };
    let (got, pages) = list(active.clone(), 2).await;
    assert_eq!(
        got,
        ["AAAAAAA5", "AAAAAAA1", "AAAAAAA3", "AAAAAAA2", "AAAAAAA4"]
    );
    assert!(pages >= 3, "five items in pages of two: {pages} pages");
    // One plan (any status), by expiry.
    let (got, _) = list(
        LicenseFilter {
            plan: Some(Plan::Professional),
            ..Default::default()
        },
        2,
    )
    .await;
    assert_eq!(got, ["AAAAAAA5", "AAAAAAA3", "SSSSSSS1", "AAAAAAA2"]);
    // Plan and status together: the status index selects, the plan filters.
    let (got, _) = list(
        LicenseFilter {
            plan: Some(Plan::Professional),
            status: Some(LicenseStatus::Active),
            ..Default::default()
        },
        1,
    )
    .await;
    assert_eq!(got, ["AAAAAAA5", "AAAAAAA3", "AAAAAAA2"]);
    // One channel's (the SaaS one), by expiry.
    let (got, _) = list(
        LicenseFilter {
            channel: Some(shared::domain::revenue::Channel::Saas),
            ..Default::default()
        },
        2,
    )
    .await;
    assert_eq!(got, ["AAAAAAA3"]);
    // One customer's, by id.
    let (got, _) = list(
        LicenseFilter {
            customer: Some(acme.id),
            ..Default::default()
        },
        3,
    )
    .await;
    assert_eq!(got, ["AAAAAAA1", "AAAAAAA2", "AAAAAAA5", "SSSSSSS1"]);
    // Expiring in [10 days, 40 days): inclusive after, exclusive before.
    let (got, _) = list(
        LicenseFilter {
            status: Some(LicenseStatus::Active),
            expires_after: Some(NOW + Duration::days(10)),
            expires_before: Some(NOW + Duration::days(40)),
            ..Default::default()
        },
        2,
    )
    .await;
    assert_eq!(got, ["AAAAAAA1", "AAAAAAA3"]);
    // A page an index selects exactly is one request.
    f.reset_requests();
    let page = store.list_licenses(&active, None, 2).await.expect("page");
    assert_eq!(page.items.len(), 2);
    if let Some(n) = f.queries() {
        assert_eq!(n, 1, "one Query for one selective page");
    }
    // A filter the index cannot apply reads on, at most MAX_READS_PER_PAGE times.
    f.reset_requests();
    let sparse = store
        .list_licenses(
            &LicenseFilter {
                status: Some(LicenseStatus::Active),
                plan: Some(Plan::Enterprise),
                ..Default::default()
            },
            None,
            1,
        )
        .await
        .expect("page");
    assert!(sparse.items.is_empty() || suffixes(&sparse.items) == ["AAAAAAA4"]);
    if let Some(n) = f.queries() {
        assert!(
            n <= shared::domain::fleet::MAX_READS_PER_PAGE,
            "{n} queries for one page"
        );
    }
    // Another listing's cursor is refused.
    let next = page.next.expect("more active licenses");
    let err = store
        .list_licenses(
            &LicenseFilter {
                plan: Some(Plan::Starter),
                ..Default::default()
            },
            Some(&next),
            2,
        )
        .await;
    assert!(matches!(err, Err(StoreError::InvalidCursor)));
}

async fn customers_list_by_name_prefix_email_and_created_range<F: Fixture>(f: &F) {
    use shared::domain::fleet::CustomerFilter;
    use shared::domain::ports::FleetIndex;
    let store = f.store();
    let people = [
        ("Acme Corp", "ops@acme.com", 0),
        ("acme labs", "Labs@Acme.com", 1),
        ("ACMEWORKS", "it@acmeworks.io", 2),
        ("Ärzte Übersee", "praxis@aerzte.de", 3),
        ("Globex", "ops@globex.com", 4),
    ];
    for (name, email, days) in people {
        let c = Customer {
            id: CustomerId::from_uuid(uuid::Uuid::new_v4()),
            name: name.into(),
            email: email.into(),
            created_at: NOW + Duration::days(days),
        };
        store
            .create_customer(&c, &audit("customer.created", NOW))
            .await
            .expect("customer");
    }
    let list = |filter: CustomerFilter| async move {
        let (items, _) = all_pages(|c| {
            let filter = filter.clone();
            async move { store.list_customers(&filter, c.as_ref(), 1).await }
        })
        .await;
        items.into_iter().map(|c| c.name).collect::<Vec<_>>()
    };
    assert_eq!(
        list(CustomerFilter {
            name_prefix: Some("acme".into()),
            ..Default::default()
        })
        .await,
        ["Acme Corp", "acme labs", "ACMEWORKS"],
        "case-insensitive prefix, by folded name"
    );
    assert_eq!(
        list(CustomerFilter {
            name_prefix: Some("ärzte ü".into()),
            ..Default::default()
        })
        .await,
        ["Ärzte Übersee"]
    );
    assert_eq!(
        list(CustomerFilter {
            email: Some("labs@acme.COM".into()),
            ..Default::default()
        })
        .await,
        ["acme labs"],
        "exact email, case-insensitive"
    );
    assert_eq!(
        list(CustomerFilter {
            created_after: Some(NOW + Duration::days(1)),
            created_before: Some(NOW + Duration::days(4)),
            ..Default::default()
        })
        .await,
        ["acme labs", "ACMEWORKS", "Ärzte Übersee"],
        "created in [after, before), oldest first"
    );
    assert_eq!(list(CustomerFilter::default()).await.len(), 5);
}

async fn installations_list_by_license_state_version_and_silence<F: Fixture>(f: &F) {
    use shared::domain::fleet::InstallationFilter;
    use shared::domain::ports::FleetIndex;
    let store = f.store();
    let one = seeded(store, "IIIIIII1").await;
    let two = seeded(store, "IIIIIII2").await;
    for (l, inst, version, hours_ago) in [
        (&one, "a", "1.0.0", 1),
        (&one, "b", "2.0.0", 30),
        (&one, "c", "2.0.0", 50),
        (&two, "d", "2.0.0", 5),
        (&two, "e", "1.0.0", 70),
    ] {
        let mut r = report(&l.id, inst, NOW - Duration::hours(hours_ago));
        r.version = version.into();
        claim(store, &r, 10).await;
    }
    // "c" loses its seat.
    let c = store
        .installations(&one.id)
        .await
        .expect("list")
        .into_iter()
        .find(|i| i.id.as_str() == "c")
        .expect("c");
    assert!(
        store
            .deactivate_installation(&c, &audit("installation.released", NOW))
            .await
            .expect("release")
    );
    let list = |filter: InstallationFilter| async move {
        let (items, _) = all_pages(|cur| {
            let filter = filter.clone();
            async move { store.list_installations(&filter, cur.as_ref(), 2).await }
        })
        .await;
        items
            .into_iter()
            .map(|i| i.id.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(InstallationFilter::default()).await,
        ["e", "b", "d", "a", "c"],
        "active ones by last heartbeat, then inactive ones"
    );
    assert_eq!(
        list(InstallationFilter {
            license: Some(one.id.clone()),
            ..Default::default()
        })
        .await,
        ["a", "b", "c"]
    );
    assert_eq!(
        list(InstallationFilter {
            license: Some(one.id.clone()),
            status: Some(InstallationStatus::Active),
            ..Default::default()
        })
        .await,
        ["a", "b"]
    );
    assert_eq!(
        list(InstallationFilter {
            status: Some(InstallationStatus::Inactive),
            ..Default::default()
        })
        .await,
        ["c"]
    );
    assert_eq!(
        list(InstallationFilter {
            version: Some("2.0.0".into()),
            ..Default::default()
        })
        .await,
        ["c", "b", "d"],
        "a version's installations by last heartbeat, any seat state"
    );
    assert_eq!(
        list(InstallationFilter {
            status: Some(InstallationStatus::Active),
            seen_before: Some(NOW - Duration::hours(5)),
            ..Default::default()
        })
        .await,
        ["e", "b"],
        "silent for more than 5 hours (seen exactly 5 hours ago is not before)"
    );
}

async fn flags_list_until_their_lifetime_ends_and_raising_again_refreshes<F: Fixture>(f: &F) {
    use shared::domain::fleet::{AttentionKind, FLAG_LIFETIME, Flag};
    use shared::domain::ports::{AttentionFlags, FleetIndex};
    let store = f.store();
    let flag = |suffix: &str, inst: Option<&str>, at: OffsetDateTime| Flag {
        kind: AttentionKind::SeatLimit,
        license_id: license_id(suffix),
        installation_id: inst.map(installation),
        detail: format!("refused {suffix}"),
        raised_at: at,
    };
    store
        .raise(&flag("FFFFFFF2", Some("x"), NOW))
        .await
        .expect("raise");
    store
        .raise(&flag("FFFFFFF1", Some("y"), NOW - Duration::days(6)))
        .await
        .expect("raise");
    store
        .raise(&flag("FFFFFFF3", None, NOW))
        .await
        .expect("raise");
    // Another kind's partition is separate.
    let mut tamper = flag("FFFFFFF1", Some("y"), NOW);
    tamper.kind = AttentionKind::ClockTamper;
    store.raise(&tamper).await.expect("raise");
    let listed = |now: OffsetDateTime| async move {
        let (items, _) = all_pages(|c| async move {
            store
                .list_flags(AttentionKind::SeatLimit, now, c.as_ref(), 2)
                .await
        })
        .await;
        items
            .into_iter()
            .map(|f: Flag| {
                f.license_id
                    .as_str()
                    .rsplit('-')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(listed(NOW).await, ["FFFFFFF1", "FFFFFFF2", "FFFFFFF3"]);
    // A day later the six-day-old flag has lapsed (even before the TTL process deletes it).
    assert_eq!(
        listed(NOW + Duration::days(1)).await,
        ["FFFFFFF2", "FFFFFFF3"]
    );
    // Raising it again refreshes it: one item, the new detail and time.
    let mut again = flag("FFFFFFF1", Some("y"), NOW + Duration::days(1));
    again.detail = "refused again".into();
    store.raise(&again).await.expect("raise");
    let page = store
        .list_flags(AttentionKind::SeatLimit, NOW + Duration::days(1), None, 10)
        .await
        .expect("page");
    assert_eq!(page.items.len(), 3);
    assert_eq!(page.items[0].detail, "refused again");
    assert_eq!(page.items[0].raised_at, NOW + Duration::days(1));
    f.expire_ttl(NOW + FLAG_LIFETIME + Duration::hours(12))
        .await;
    assert_eq!(
        listed(NOW + Duration::days(1)).await,
        ["FFFFFFF1"],
        "the TTL process deletes lapsed flags"
    );
}

async fn a_days_snapshot_is_written_once_per_day_and_read_in_one_request<F: Fixture>(f: &F) {
    use shared::domain::ports::MetricsStore;
    use shared::domain::revenue::PriceList;
    use shared::service::metrics::{Book, compute};
    let store = f.store();
    let empty = std::collections::HashMap::new();
    let snap = |at: OffsetDateTime| {
        compute(
            Book {
                licenses: &[],
                installations: &[],
                workflows_used: &empty,
                revenue_changes: &[],
            },
            &PriceList::default(),
            at,
        )
    };
    assert_eq!(store.latest_snapshot().await.expect("read"), None);
    for at in [NOW - Duration::days(2), NOW, NOW - Duration::days(1)] {
        store.put_snapshot(&snap(at)).await.expect("put");
    }
    // The same day again (a later run): it replaces the day's snapshot.
    let later = snap(NOW + Duration::hours(3));
    store.put_snapshot(&later).await.expect("put");
    f.reset_requests();
    let latest = store.latest_snapshot().await.expect("read").expect("some");
    assert_eq!(latest, later, "the newest day, as last written");
    if let Some(n) = f.queries() {
        assert_eq!(n, 1, "the summary is one Query");
    }
    f.reset_requests();
    let days = store
        .snapshots("2026-06-08", "2026-06-10")
        .await
        .expect("range");
    let dates: Vec<&str> = days.iter().map(|d| d.date.as_str()).collect();
    assert_eq!(
        dates,
        ["2026-06-08", "2026-06-09", "2026-06-10"],
        "one per day"
    );
    if let Some(n) = f.queries() {
        assert_eq!(n, 1, "a history is one Query");
    }
    assert!(
        store
            .snapshots("2026-06-10", "2026-06-01")
            .await
            .expect("reversed")
            .is_empty()
    );
}

async fn an_amendment_is_conditional_on_revision_and_status_and_moves_the_indexes_with_it<
    F: Fixture,
>(
    f: &F,
) {
    use shared::domain::fleet::LicenseFilter;
    use shared::domain::ports::{FleetIndex, LicenseAmender, MetricsStore};
    use shared::domain::revenue::{PricedTerms, RevenueChange};
    let store = f.store();
    let l = seeded(store, "CHANGE01").await;
    let buyer = customer();
    store
        .create_customer(&buyer, &audit("customer.created", NOW))
        .await
        .expect("buyer");
    // A seat taken meanwhile (the amendment must not write the seat count it read).
    let r = report(&l.id, "inst-1", NOW);
    assert!(matches!(claim(store, &r, 5).await, SeatClaim::Seated(_)));
    let later = NOW + Duration::minutes(1);
    let mut after = License {
        customer_id: buyer.id,
        plan: Plan::Professional,
        features: Plan::Professional.default_features(),
        limits: Plan::Professional.default_limits(),
        domain_restrictions: vec![
            shared::domain::DomainPattern::parse("*.globex.com").expect("ok"),
        ],
        keys_valid_from: Some(later + Duration::seconds(1)),
        revision: 1,
        updated_at: later,
        ..l.clone()
    };
    after.contract.price = Some(12_345);
    let change = RevenueChange {
        license_id: l.id.clone(),
        revision: 1,
        at: later,
        before: PricedTerms::of(&l),
        after: PricedTerms::of(&after),
    };
    let entry = audit("license.moved", later);
    // A stale revision, and a status that moved on: nothing written, not even the audit entry.
    let stale = License {
        revision: 2,
        ..after.clone()
    };
    assert!(
        !store
            .amend(&stale, &entry, Some(&change))
            .await
            .expect("amend")
    );
    let suspended = License {
        status: LicenseStatus::Suspended,
        ..after.clone()
    };
    assert!(
        !store
            .amend(&suspended, &entry, Some(&change))
            .await
            .expect("amend")
    );
    assert_eq!(trail(store, l.customer_id, &l.id).await, ["license.issued"]);
    assert!(
        store
            .revenue_changes(Period::containing(later))
            .await
            .expect("read")
            .is_empty()
    );
    // The expected revision: terms, owner, floor, revision, audit entry and revenue change.
    assert!(
        store
            .amend(&after, &entry, Some(&change))
            .await
            .expect("amend")
    );
    let read = store.license(&l.id).await.expect("read").expect("license");
    assert_eq!(
        read,
        License {
            active_installations: 1,
            ..after.clone()
        },
        "the seat taken after the read is kept"
    );
    // Applying the same revision again is refused: a retry cannot apply a change twice.
    assert!(
        !store
            .amend(&after, &entry, Some(&change))
            .await
            .expect("amend")
    );
    // The owner's index moved: the buyer lists it (with its trail), the seller no longer does.
    let buyers = store.licenses_of(&buyer.id).await.expect("buyer's");
    assert_eq!(buyers.len(), 1);
    assert_eq!(
        buyers[0]
            .audit
            .iter()
            .map(|a| a.action.as_str())
            .collect::<Vec<_>>(),
        ["license.issued", "license.moved"]
    );
    assert!(
        store
            .licenses_of(&l.customer_id)
            .await
            .expect("seller's")
            .is_empty()
    );
    // So did the plan index and the customer filter of the fleet listing.
    let by = |filter: LicenseFilter| async move {
        store
            .list_licenses(&filter, None, 10)
            .await
            .expect("list")
            .items
            .into_iter()
            .map(|l| l.id.to_string())
            .collect::<Vec<_>>()
    };
    let professional = LicenseFilter {
        plan: Some(Plan::Professional),
        ..Default::default()
    };
    assert_eq!(by(professional).await, [l.id.to_string()]);
    let starter = LicenseFilter {
        plan: Some(Plan::Starter),
        ..Default::default()
    };
    assert!(by(starter).await.is_empty());
    let buyer_filter = LicenseFilter {
        customer: Some(buyer.id),
        ..Default::default()
    };
    assert_eq!(by(buyer_filter).await, [l.id.to_string()]);
    // The revenue change reads back in its month, and only there.
    assert_eq!(
        store
            .revenue_changes(Period::containing(later))
            .await
            .expect("read"),
        [change]
    );
    assert!(
        store
            .revenue_changes(Period::containing(later + Duration::days(31)))
            .await
            .expect("read")
            .is_empty()
    );
    // A later amendment without a floor removes it.
    let cleared = License {
        keys_valid_from: None,
        revision: 2,
        ..after.clone()
    };
    assert!(store.amend(&cleared, &entry, None).await.expect("amend"));
    let read = store.license(&l.id).await.expect("read").expect("license");
    assert_eq!((read.keys_valid_from, read.revision), (None, 2));
}

async fn a_session_reads_back_until_its_end_and_is_gone_once_deleted<F: Fixture>(f: &F) {
    use shared::domain::operator::Principal;
    use shared::domain::ports::SessionStore;
    use shared::domain::session::{ConsoleSession, SessionSecret};
    let store = f.store();
    let secret = SessionSecret::from_random_bytes([3; 32]);
    let session = ConsoleSession {
        key: secret.key(),
        principal: Principal {
            id: Some(OperatorId::from_uuid(uuid::Uuid::now_v7())),
            name: "alice".into(),
            role: Role::Support,
        },
        token_hash: TokenHash::of("nop_alice"),
        csrf: "csrf-token".into(),
        created_at: NOW,
        expires_at: NOW + Duration::hours(1),
    };
    store.create_session(&session).await.expect("create");
    assert!(matches!(
        store.create_session(&session).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.session(&secret.key(), NOW).await.expect("read"),
        Some(session.clone())
    );
    let other = SessionSecret::from_random_bytes([4; 32]);
    assert_eq!(store.session(&other.key(), NOW).await.expect("read"), None);
    // At its end it reads as none, whether or not the TTL process has deleted it yet.
    let end = NOW + Duration::hours(1);
    assert_eq!(store.session(&secret.key(), end).await.expect("read"), None);
    f.expire_ttl(end).await;
    assert_eq!(store.session(&secret.key(), NOW).await.expect("read"), None);
    // Deleting: gone at once; deleting again is no error.
    let bootstrap = ConsoleSession {
        key: other.key(),
        principal: Principal::bootstrap(),
        ..session.clone()
    };
    store.create_session(&bootstrap).await.expect("create");
    assert_eq!(
        store.session(&other.key(), NOW).await.expect("read"),
        Some(bootstrap)
    );
    store.delete_session(&other.key()).await.expect("delete");
    store.delete_session(&other.key()).await.expect("again");
    assert_eq!(store.session(&other.key(), NOW).await.expect("read"), None);
}
