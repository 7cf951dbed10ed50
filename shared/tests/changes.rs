//! License changes after issue (`service::changes`) on the in-memory adapters: what a change does
//! to the license, its keys (kept, or superseded), the installations' leases, the audit trail and
//! the month's revenue movements. The store rules they rely on (the conditional amendment, the
//! indexes moving with it) are in the contract suite, on both adapters.

mod common;

use common::{beat_cmd, beat_once, validate_cmd};
use shared::domain::ports::{CustomerDirectory, LicenseReader, LicenseWriter};
use shared::domain::revenue::{Channel, PriceList};
use shared::domain::{
    Actor, AuditEntry, Customer, CustomerId, DomainError, DomainPattern, Feature, LicenseStatus,
    LimitOverrides, Plan,
};
use shared::service::changes::{ChangeCommand, Changed, ContractEdit, change_license};
use shared::service::check::Code;
use shared::service::heartbeat::heartbeat;
use shared::service::validate::validate;
use shared::testing::{CountingSigner, Issued, MemoryStack, TEST_ISSUER};
use shared::token::LicenseKey;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-06-10 12:00 UTC);

fn operator() -> Actor {
    Actor::operator("alice", None)
}

async fn change(
    stack: &MemoryStack,
    issued: &Issued,
    cmd: ChangeCommand,
    at: OffsetDateTime,
) -> Result<Changed, DomainError> {
    change_license(
        &stack.store,
        &stack.signer().await,
        TEST_ISSUER,
        &issued.license.id,
        &cmd,
        operator(),
        at,
    )
    .await
}

/// What validate says of `key` at `at` (on installation `i-1`), and whether it showed the license.
async fn validated(stack: &MemoryStack, key: &LicenseKey, at: OffsetDateTime) -> (Code, bool) {
    let checked = validate(
        &stack.key_ring().await,
        &stack.store,
        &validate_cmd(key, "i-1"),
        at,
    )
    .await
    .expect("validate");
    (checked.verdict.code, checked.license.is_some())
}

async fn actions(stack: &MemoryStack, owner: CustomerId) -> Vec<(String, Option<String>)> {
    stack
        .store
        .licenses_of(&owner)
        .await
        .expect("lookup")
        .into_iter()
        .flat_map(|d| d.audit)
        .map(|a| (a.action, a.reason))
        .collect()
}

fn features(names: &[&str]) -> Vec<Feature> {
    names
        .iter()
        .map(|n| Feature::parse(n).expect("feature"))
        .collect()
}

#[tokio::test]
async fn an_upgrade_starts_from_the_new_plans_defaults_applies_overrides_and_is_audited() {
    // Arrange
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let later = NOW + Duration::hours(1);
    // Act
    let changed = change(
        &stack,
        &issued,
        ChangeCommand {
            plan: Some(Plan::Professional),
            limits: Some(LimitOverrides {
                installations: Some(10),
                ..Default::default()
            }),
            reason: Some("upgrade order 2051".into()),
            ..Default::default()
        },
        later,
    )
    .await
    .expect("changes");
    // Assert: the stored license.
    let stored = stack
        .store
        .license(&issued.license.id)
        .await
        .expect("read")
        .expect("license");
    assert_eq!(stored, changed.license);
    assert_eq!(stored.plan, Plan::Professional);
    assert_eq!(stored.features, Plan::Professional.default_features());
    let mut limits = Plan::Professional.default_limits();
    limits.installations = 10;
    assert_eq!(stored.limits, limits);
    assert_eq!((stored.revision, stored.updated_at), (1, later));
    assert_eq!(
        stored.expires_at, issued.license.expires_at,
        "the term stays"
    );
    // The new key: same id, the new terms.
    let claims = stack
        .key_ring()
        .await
        .verify_license(&changed.key)
        .expect("verifies");
    assert_eq!(claims.jti, issued.license.id);
    assert_eq!(claims.limits, limits);
    assert_eq!(
        claims.feat,
        Plan::Professional
            .default_features()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(claims.exp, issued.license.expires_at.unix_timestamp());
    // What changed, field by field, in the answer and in the audit trail.
    let fields: Vec<&str> = changed.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "plan",
            "features",
            "limits.installations",
            "limits.storage_gb",
            "limits.users",
            "limits.workflows_per_month"
        ]
    );
    assert!(!changed.previous_keys_revoked);
    let trail = actions(&stack, issued.customer.id).await;
    let (action, reason) = trail.last().expect("audited");
    assert_eq!(action, "license.changed");
    let reason = reason.as_deref().expect("reason");
    assert!(
        reason.starts_with("upgrade order 2051; plan \"starter\" → \"professional\"; "),
        "{reason}"
    );
    assert!(reason.contains("limits.installations 1 → 10"), "{reason}");
    // Both keys validate, and both grant the new terms at once (validation reads the record).
    let integrations = shared::service::validate::ValidateCommand {
        feature: Some(Feature::parse("integrations").expect("feature")),
        ..validate_cmd(&issued.key, "i-1")
    };
    let ring = stack.key_ring().await;
    let old_key = validate(&ring, &stack.store, &integrations, later)
        .await
        .expect("validate");
    assert_eq!(old_key.verdict.code, Code::Valid, "{:?}", old_key.verdict);
    assert_eq!(
        validated(&stack, &changed.key, later).await,
        (Code::Valid, true)
    );
}

#[tokio::test]
async fn without_a_plan_change_limits_override_field_by_field_and_features_replace_the_set() {
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Professional, NOW, |c| {
            c.limits.users = Some(40);
        })
        .await;
    let changed = change(
        &stack,
        &issued,
        ChangeCommand {
            limits: Some(LimitOverrides {
                storage_gb: Some(500),
                ..Default::default()
            }),
            features: Some(features(&["workflows", "sso"])),
            domain_restrictions: Some(vec![DomainPattern::parse("*.acme.com").expect("ok")]),
            ..Default::default()
        },
        NOW,
    )
    .await
    .expect("changes");
    let l = &changed.license;
    assert_eq!(
        (l.limits.users, l.limits.storage_gb, l.limits.installations),
        (40, 500, 3),
        "the earlier override stays; only storage changed"
    );
    assert_eq!(
        l.features
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["sso", "workflows"]
    );
    assert_eq!(l.domain_restrictions.len(), 1);
    // An installation on another domain is refused from now on, whichever key it holds.
    let elsewhere = shared::service::validate::ValidateCommand {
        domain: Some(shared::domain::Hostname::parse("app.globex.com").expect("host")),
        ..validate_cmd(&issued.key, "i-1")
    };
    let ring = stack.key_ring().await;
    let verdict = validate(&ring, &stack.store, &elsewhere, NOW)
        .await
        .expect("validate")
        .verdict;
    assert_eq!(verdict.code, Code::DomainMismatch);
}

#[tokio::test]
async fn revoking_the_previous_key_supersedes_every_earlier_key_even_one_signed_that_second() {
    // Arrange: the change happens in the very second the license was issued.
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    // Act
    let changed = change(
        &stack,
        &issued,
        ChangeCommand {
            revoke_previous_key: true,
            reason: Some("key posted in a public issue".into()),
            ..Default::default()
        },
        NOW,
    )
    .await
    .expect("rotates");
    // Assert
    assert!(changed.previous_keys_revoked);
    assert!(changed.changes.is_empty(), "a rotation changes no term");
    assert_eq!(
        changed.license.keys_valid_from,
        Some(NOW + Duration::seconds(1))
    );
    let ring = stack.key_ring().await;
    let old = validate(&ring, &stack.store, &validate_cmd(&issued.key, "i-1"), NOW)
        .await
        .expect("validate");
    assert_eq!(old.verdict.code, Code::Revoked);
    assert!(
        old.verdict.detail.contains("replaced by a newer key"),
        "{}",
        old.verdict.detail
    );
    assert_eq!(
        validated(&stack, &changed.key, NOW).await,
        (Code::Valid, true)
    );
    assert!(old.license.is_none(), "a superseded key is shown nothing");
    // A second rotation in the same second supersedes the first rotation's key too.
    let again = change(
        &stack,
        &issued,
        ChangeCommand {
            revoke_previous_key: true,
            ..Default::default()
        },
        NOW,
    )
    .await
    .expect("rotates again");
    assert_eq!(
        validated(&stack, &changed.key, NOW).await,
        (Code::Revoked, false)
    );
    assert_eq!(
        validated(&stack, &again.key, NOW).await,
        (Code::Valid, true)
    );
    // A heartbeat with the old key is refused too, and gets no lease.
    let lease_signer = stack.lease_signer().await;
    let beat = beat_once(&ring, &stack.store, &lease_signer, &issued.key, "i-1", NOW).await;
    assert_eq!(beat.verdict.code, Code::Revoked);
    assert!(beat.lease.is_none());
    // A renewal in that same second signs a key at the floor, which works.
    let (_, renewed) = shared::service::admin::renew_license(
        &stack.store,
        &stack.signer().await,
        TEST_ISSUER,
        shared::service::admin::RenewCommand {
            id: issued.license.id.clone(),
            term: shared::service::admin::Term::Days(60),
            reason: None,
        },
        operator(),
        NOW,
    )
    .await
    .expect("renews");
    assert_eq!(validated(&stack, &renewed, NOW).await, (Code::Valid, true));
    let trail = actions(&stack, issued.customer.id).await;
    let rotation = trail
        .iter()
        .find(|(a, _)| a == "license.changed")
        .expect("audited");
    assert_eq!(
        rotation.1.as_deref(),
        Some("key posted in a public issue; earlier keys revoked")
    );
}

#[tokio::test]
async fn a_move_to_another_customer_revokes_the_old_key_and_shows_it_nothing() {
    // Arrange
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
    let buyer = Customer {
        id: CustomerId::from_uuid(uuid::Uuid::new_v4()),
        name: "Globex".into(),
        email: "it@globex.com".into(),
        created_at: NOW,
    };
    stack
        .store
        .create_customer(&buyer, &audit("customer.created"))
        .await
        .expect("buyer");
    let later = NOW + Duration::days(1);
    // Act
    let changed = change(
        &stack,
        &issued,
        ChangeCommand {
            customer_id: Some(buyer.id),
            reason: Some("acquired by Globex".into()),
            ..Default::default()
        },
        later,
    )
    .await
    .expect("moves");
    // Assert
    assert!(changed.previous_keys_revoked, "a move always revokes");
    assert_eq!(changed.license.customer_id, buyer.id);
    assert_eq!(changed.changes[0].field, "customerId");
    assert_eq!(
        validated(&stack, &issued.key, later).await,
        (Code::Revoked, false),
        "the seller's key is withdrawn and shows nothing of the buyer's license"
    );
    let ring = stack.key_ring().await;
    let lease_signer = stack.lease_signer().await;
    let beat = beat_once(
        &ring,
        &stack.store,
        &lease_signer,
        &issued.key,
        "i-1",
        later,
    )
    .await;
    assert_eq!(
        (beat.verdict.code, beat.license.is_none()),
        (Code::Revoked, true)
    );
    assert_eq!(
        ring.verify_license(&changed.key).expect("verifies").cid,
        buyer.id
    );
    assert_eq!(
        validated(&stack, &changed.key, later).await,
        (Code::Valid, true)
    );
    // The buyer lists it, with its whole trail; the seller no longer does.
    let trail = actions(&stack, buyer.id).await;
    assert_eq!(
        trail.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        ["license.issued", "license.moved"]
    );
    assert!(
        stack
            .store
            .licenses_of(&issued.customer.id)
            .await
            .expect("lookup")
            .is_empty()
    );
}

fn audit(action: &str) -> AuditEntry {
    AuditEntry {
        action: action.into(),
        actor: operator(),
        reason: None,
        from: None,
        to: None,
        at: NOW,
    }
}

#[tokio::test]
async fn a_move_to_a_customer_not_on_record_is_refused_and_writes_nothing() {
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let err = change(
        &stack,
        &issued,
        ChangeCommand {
            customer_id: Some(CustomerId::from_uuid(uuid::Uuid::new_v4())),
            ..Default::default()
        },
        NOW,
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, DomainError::CustomerNotFound), "{err:?}");
    assert_eq!(
        stack.store.license(&issued.license.id).await.expect("read"),
        Some(issued.license.clone())
    );
}

#[tokio::test]
async fn a_change_that_changes_nothing_writes_nothing_and_still_returns_a_working_key() {
    // Arrange: a retry of an upgrade whose first answer was lost.
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let upgrade = || ChangeCommand {
        plan: Some(Plan::Professional),
        ..Default::default()
    };
    change(&stack, &issued, upgrade(), NOW)
        .await
        .expect("first");
    let before = actions(&stack, issued.customer.id).await;
    // Act
    let signer = CountingSigner::new(stack.signer().await);
    let again = change_license(
        &stack.store,
        &signer,
        TEST_ISSUER,
        &issued.license.id,
        &upgrade(),
        operator(),
        NOW + Duration::minutes(1),
    )
    .await
    .expect("retry");
    let empty = change(&stack, &issued, ChangeCommand::default(), NOW)
        .await
        .expect("an empty change");
    // Assert
    assert!(again.changes.is_empty() && empty.changes.is_empty());
    assert_eq!(signer.count(), 1, "a key is still signed");
    assert_eq!(again.license.revision, 1, "no second revision");
    assert_eq!(actions(&stack, issued.customer.id).await, before);
    assert_eq!(
        validated(&stack, &again.key, NOW + Duration::minutes(1)).await,
        (Code::Valid, true)
    );
}

#[tokio::test]
async fn bad_changes_are_refused_before_anything_is_signed() {
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let signer = CountingSigner::new(stack.signer().await);
    let run = |cmd: ChangeCommand| {
        let (signer, store, id) = (&signer, &stack.store, issued.license.id.clone());
        async move {
            change_license(store, signer, TEST_ISSUER, &id, &cmd, operator(), NOW)
                .await
                .expect_err("refused")
        }
    };
    let no_seats = run(ChangeCommand {
        limits: Some(LimitOverrides {
            installations: Some(0),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    assert!(
        matches!(
            no_seats,
            DomainError::InvalidValue {
                field: "limits.installations",
                ..
            }
        ),
        "{no_seats:?}"
    );
    let unknown = run(ChangeCommand {
        features: Some(vec![Feature::parse("teleport").expect("well-formed")]),
        ..Default::default()
    })
    .await;
    assert!(
        matches!(unknown, DomainError::UnknownFeature(ref f) if f == "teleport"),
        "{unknown:?}"
    );
    // A revoked license keeps its terms.
    let entry = AuditEntry {
        from: Some(LicenseStatus::Active),
        to: Some(LicenseStatus::Revoked),
        ..audit("license.revoked")
    };
    assert!(
        stack
            .store
            .set_status(
                &issued.license.id,
                LicenseStatus::Active,
                LicenseStatus::Revoked,
                &entry
            )
            .await
            .expect("revoke")
    );
    let revoked = run(ChangeCommand {
        plan: Some(Plan::Enterprise),
        ..Default::default()
    })
    .await;
    assert!(
        matches!(
            revoked,
            DomainError::InvalidTransition {
                action: "change",
                from: LicenseStatus::Revoked
            }
        ),
        "{revoked:?}"
    );
    assert_eq!(signer.count(), 0);
}

#[tokio::test]
async fn a_lowered_seat_limit_takes_no_seat_away_and_says_how_many_are_over() {
    // Arrange: three installations seated on a professional license (3 seats).
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
    let ring = stack.key_ring().await;
    let lease_signer = stack.lease_signer().await;
    for i in ["i-1", "i-2", "i-3"] {
        let beat = beat_once(&ring, &stack.store, &lease_signer, &issued.key, i, NOW).await;
        assert_eq!(beat.verdict.code, Code::Valid);
    }
    // Act
    let changed = change(
        &stack,
        &issued,
        ChangeCommand {
            limits: Some(LimitOverrides {
                installations: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        },
        NOW,
    )
    .await
    .expect("changes");
    // Assert
    assert_eq!(changed.seats_over_limit, 2);
    let later = NOW + Duration::minutes(5);
    let seated = beat_once(
        &ring,
        &stack.store,
        &lease_signer,
        &issued.key,
        "i-2",
        later,
    )
    .await;
    assert_eq!(
        seated.verdict.code,
        Code::Valid,
        "a seated installation keeps its seat"
    );
    let newcomer = beat_once(
        &ring,
        &stack.store,
        &lease_signer,
        &issued.key,
        "i-4",
        later,
    )
    .await;
    assert_eq!(newcomer.verdict.code, Code::InstallationLimit);
}

#[tokio::test]
async fn the_next_heartbeat_after_a_change_gets_a_lease_of_the_new_terms() {
    // Arrange: an installation with a fresh lease (reused for half its life, unchanged).
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let ring = stack.key_ring().await;
    let lease_signer = CountingSigner::new(stack.lease_signer().await);
    let cmd = beat_cmd(&issued.key, "i-1");
    let beat = |at| {
        heartbeat(
            &ring,
            &stack.store,
            &lease_signer,
            &cmd,
            Duration::hours(1),
            at,
        )
    };
    let first = beat(NOW).await.expect("beat").lease.expect("lease");
    let reused = beat(NOW + Duration::minutes(1))
        .await
        .expect("beat")
        .lease
        .expect("lease");
    assert_eq!((reused.clone(), lease_signer.count()), (first.clone(), 1));
    // Act
    change(
        &stack,
        &issued,
        ChangeCommand {
            plan: Some(Plan::Professional),
            ..Default::default()
        },
        NOW + Duration::minutes(2),
    )
    .await
    .expect("changes");
    let next = beat(NOW + Duration::minutes(3))
        .await
        .expect("beat")
        .lease
        .expect("lease");
    let after = beat(NOW + Duration::minutes(4))
        .await
        .expect("beat")
        .lease
        .expect("lease");
    // Assert: re-signed once with the new terms, then reused again.
    assert_ne!(next, first);
    assert_eq!((after, lease_signer.count()), (next.clone(), 2));
    let claims = ring.verify_lease(next.token.expose()).expect("verifies");
    assert_eq!(claims.plan, Plan::Professional);
    assert_eq!(
        claims.feat,
        Plan::Professional
            .default_features()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(claims.limits, Plan::Professional.default_limits());
}

#[tokio::test]
async fn plan_and_contract_changes_reach_the_months_expansion_and_contraction() {
    use shared::domain::ports::MetricsStore;
    // Arrange: a starter (USD list, yearly: 49,000/yr) and an enterprise one (999,000/yr).
    let stack = MemoryStack::new();
    let up = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let down = stack.issue(Plan::Enterprise, NOW, |_| {}).await;
    let channel_only = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let later = NOW + Duration::days(2);
    // Act: an upgrade to professional (199,000/yr); a negotiated enterprise price of 600,000/yr;
    // a channel change, which moves no money.
    let plan = |p| ChangeCommand {
        plan: Some(p),
        ..Default::default()
    };
    change(&stack, &up, plan(Plan::Professional), later)
        .await
        .expect("upgrade");
    let price = ChangeCommand {
        contract: ContractEdit {
            price: Some(Some(600_000)),
            ..Default::default()
        },
        ..Default::default()
    };
    change(&stack, &down, price, later).await.expect("discount");
    let saas = ChangeCommand {
        contract: ContractEdit {
            channel: Some(Channel::Saas),
            ..Default::default()
        },
        ..Default::default()
    };
    change(&stack, &channel_only, saas, later)
        .await
        .expect("channel");
    let snapshot =
        shared::service::metrics::record_daily(&stack.store, &PriceList::default(), later)
            .await
            .expect("snapshot");
    // Assert: (199,000 − 49,000) / 12 = 12,500; (999,000 − 600,000) / 12 = 33,250.
    let usd = snapshot
        .revenue
        .iter()
        .find(|c| c.currency == "USD")
        .expect("USD");
    assert_eq!((usd.expansion.count, usd.expansion.mrr), (1, 12_500));
    assert_eq!((usd.contraction.count, usd.contraction.mrr), (1, 33_250));
    assert_eq!(
        stack
            .store
            .revenue_changes(shared::domain::Period::containing(later))
            .await
            .expect("read")
            .len(),
        3,
        "every change of the contract is kept, money or not"
    );
}
