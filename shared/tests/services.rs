//! Validation, heartbeats, seats, leases and the admin services on the in-memory adapters (no
//! emulator): one fresh `MemoryStack` per test, time injected so expiry is tested without waiting.
//! A rule whose AWS cost is part of it runs on both layers (`memory::` and, ignored by plain
//! `cargo test`, `emulator::`, which also asserts the AWS calls). What is about DynamoDB or KMS
//! themselves (call counts, races on the real table, key fetches) is in `emulator.rs`.

mod common;

use common::{Layer, aws_calls, beat_cmd, beat_once, installation, validate_cmd};
use shared::domain::ports::{CustomerDirectory, LicenseReader, LicenseWriter, RandomIds};
use shared::domain::{
    Actor, AuditEntry, DomainError, DomainPattern, Feature, Hostname, InstallationStatus,
    LicenseId, LicenseStatus, LimitOverrides, Plan,
};
use shared::service::admin::{
    IssueCommand, StatusAction, Term, change_status, issue_license, lookup_customer,
};
use shared::service::check::Code;
use shared::service::heartbeat::heartbeat;
use shared::service::validate::{ValidateCommand, validate};
use shared::testing::{CountingSigner, MemoryStack, Stack, TEST_ISSUER};
use shared::token::{LicenseClaims, LicenseKey, TokenKind, sign_jwt};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

async fn code_of(stack: &MemoryStack, cmd: &ValidateCommand, now: OffsetDateTime) -> Code {
    let ring = stack.key_ring().await;
    validate(&ring, &stack.store, cmd, now)
        .await
        .expect("validate")
        .verdict
        .code
}

/// What validate says of `key` on installation `inst` at `now`.
async fn validated(stack: &MemoryStack, key: &LicenseKey, inst: &str, now: OffsetDateTime) -> Code {
    code_of(stack, &validate_cmd(key, inst), now).await
}

#[tokio::test]
async fn validate_reports_expired_from_the_expiry_instant_on() {
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let expiry = issued.license.expires_at;
    let cmd = validate_cmd(&issued.key, "i-1");
    assert_eq!(
        code_of(&stack, &cmd, expiry - Duration::seconds(1)).await,
        Code::Valid
    );
    assert_eq!(code_of(&stack, &cmd, expiry).await, Code::Expired);
    assert_eq!(
        code_of(&stack, &cmd, expiry + Duration::days(400)).await,
        Code::Expired
    );
}

#[tokio::test]
async fn validate_checks_domain_restrictions_on_label_boundaries() {
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Enterprise, NOW, |c| {
            c.domain_restrictions = vec![DomainPattern::parse("*.acme.com").expect("valid")];
        })
        .await;
    let with_domain = |d: Option<&str>| ValidateCommand {
        domain: d.map(|d| Hostname::parse(d).expect("valid")),
        ..validate_cmd(&issued.key, "i-1")
    };
    assert_eq!(
        code_of(&stack, &with_domain(Some("app.ACME.com.")), NOW).await,
        Code::Valid
    );
    assert_eq!(
        code_of(&stack, &with_domain(Some("evilacme.com")), NOW).await,
        Code::DomainMismatch
    );
    assert_eq!(
        code_of(&stack, &with_domain(None), NOW).await,
        Code::DomainMismatch
    );
}

#[tokio::test]
async fn validate_refuses_a_feature_outside_the_plan() {
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let with_feature = |f: &str| ValidateCommand {
        feature: Some(Feature::parse(f).expect("valid")),
        ..validate_cmd(&issued.key, "i-1")
    };
    assert_eq!(
        code_of(&stack, &with_feature("workflows"), NOW).await,
        Code::Valid
    );
    assert_eq!(
        code_of(&stack, &with_feature("analytics"), NOW).await,
        Code::FeatureNotEntitled
    );
}

#[tokio::test]
async fn a_validly_signed_key_for_a_license_not_on_record_is_not_found() {
    let stack = MemoryStack::new();
    let signer = stack.signer().await;
    let ghost = LicenseId::parse("NECTAR-STARTER-2026-GHOST000").expect("valid");
    let claims = LicenseClaims {
        iss: TEST_ISSUER.into(),
        typ: TokenKind::License,
        lic: ghost.product_line().into(),
        jti: ghost,
        cid: shared::domain::CustomerId::from_uuid(uuid::Uuid::new_v4()),
        iat: NOW.unix_timestamp(),
        exp: (NOW + Duration::days(1)).unix_timestamp(),
        feat: vec![],
        limits: Plan::Starter.default_limits(),
        domain_restrictions: vec![],
    };
    let key = LicenseKey::new(
        sign_jwt(&signer, TokenKind::License, &claims)
            .await
            .expect("sign"),
    );
    assert_eq!(validated(&stack, &key, "i-1", NOW).await, Code::NotFound);
}

#[tokio::test]
async fn revocation_is_seen_by_the_very_next_validate_and_heartbeat() {
    // Arrange
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
    let ring = stack.key_ring().await;
    let signer = stack.lease_signer().await;
    let cmd = validate_cmd(&issued.key, "i-1");
    assert_eq!(code_of(&stack, &cmd, NOW).await, Code::Valid);
    // Act
    let (license, changed) = change_status(
        &stack.store,
        &issued.license.id,
        StatusAction::Revoke,
        Some("chargeback".into()),
        Actor::operator("bob", None),
        NOW,
    )
    .await
    .expect("revoke");
    // Assert
    assert!(changed);
    assert_eq!(license.status, LicenseStatus::Revoked);
    assert_eq!(code_of(&stack, &cmd, NOW).await, Code::Revoked);
    let beat = beat_once(&ring, &stack.store, &signer, &issued.key, "i-1", NOW).await;
    assert_eq!(beat.verdict.code, Code::Revoked);
    // A revoked license says REVOKED even once it is also past its expiry.
    assert_eq!(
        code_of(&stack, &cmd, NOW + Duration::days(365)).await,
        Code::Revoked
    );
}

#[tokio::test]
async fn revoking_twice_changes_nothing_the_second_time_and_audits_once() {
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let revoke = || {
        change_status(
            &stack.store,
            &issued.license.id,
            StatusAction::Revoke,
            Some("fraud".into()),
            Actor::operator("bootstrap", None),
            NOW,
        )
    };
    assert!(revoke().await.expect("first").1);
    assert!(!revoke().await.expect("second").1);
    let (_, licenses) = lookup_customer(&stack.store, &issued.customer.id)
        .await
        .expect("lookup");
    let actions: Vec<&str> = licenses[0]
        .audit
        .iter()
        .map(|a| a.action.as_str())
        .collect();
    assert_eq!(actions, ["license.issued", "license.revoked"]);
    let revoked = &licenses[0].audit[1];
    assert_eq!(revoked.reason.as_deref(), Some("fraud"));
    assert_eq!(revoked.actor.as_str(), "operator:bootstrap");
    assert_eq!(
        (revoked.from, revoked.to),
        (Some(LicenseStatus::Active), Some(LicenseStatus::Revoked))
    );
}

#[tokio::test]
async fn suspend_then_reinstate_round_trips_and_a_revoked_license_cannot_come_back() {
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let id = &issued.license.id;
    let act = |action| {
        change_status(
            &stack.store,
            id,
            action,
            None,
            Actor::operator("bootstrap", None),
            NOW,
        )
    };
    let cmd = validate_cmd(&issued.key, "i-1");

    act(StatusAction::Suspend).await.expect("suspend");
    assert_eq!(code_of(&stack, &cmd, NOW).await, Code::Suspended);
    act(StatusAction::Reinstate).await.expect("reinstate");
    assert_eq!(code_of(&stack, &cmd, NOW).await, Code::Valid);
    act(StatusAction::Revoke).await.expect("revoke");
    let err = act(StatusAction::Reinstate).await.expect_err("terminal");
    assert!(matches!(
        err,
        DomainError::InvalidTransition {
            action: "reinstate",
            from: LicenseStatus::Revoked
        }
    ));
}

#[tokio::test]
async fn status_changes_on_an_unknown_license_are_not_found() {
    let stack = MemoryStack::new();
    let id = LicenseId::parse("NECTAR-STARTER-2026-NOPE0000").expect("valid");
    let err = change_status(
        &stack.store,
        &id,
        StatusAction::Revoke,
        None,
        Actor::operator("bootstrap", None),
        NOW,
    )
    .await
    .expect_err("missing");
    assert!(matches!(err, DomainError::LicenseNotFound));
}

#[tokio::test]
async fn issuing_checks_customer_features_and_term_before_signing() {
    let stack = MemoryStack::new();
    let signer = CountingSigner::new(stack.signer().await);
    let base = IssueCommand {
        customer_id: shared::domain::CustomerId::from_uuid(uuid::Uuid::new_v4()),
        plan: Plan::Starter,
        term: Term::Days(30),
        features: None,
        limits: LimitOverrides::default(),
        domain_restrictions: vec![],
        contract: Default::default(),
    };
    let run = |cmd: IssueCommand| {
        let signer = &signer;
        let store = &stack.store;
        async move {
            issue_license(
                store,
                signer,
                &RandomIds,
                TEST_ISSUER,
                cmd,
                Actor::operator("bootstrap", None),
                NOW,
            )
            .await
        }
    };
    assert!(matches!(
        run(base.clone()).await,
        Err(DomainError::CustomerNotFound)
    ));
    let unknown_feature = IssueCommand {
        features: Some(vec![Feature::parse("teleportation").expect("well-formed")]),
        ..base.clone()
    };
    assert!(
        matches!(run(unknown_feature).await, Err(DomainError::UnknownFeature(f)) if f == "teleportation")
    );
    let past = IssueCommand {
        term: Term::Until(NOW - Duration::days(1)),
        ..base.clone()
    };
    assert!(matches!(
        run(past).await,
        Err(DomainError::InvalidValue {
            field: "expiresAt",
            ..
        })
    ));
    let too_long = IssueCommand {
        term: Term::Days(10_000),
        ..base
    };
    assert!(matches!(
        run(too_long).await,
        Err(DomainError::InvalidValue {
            field: "validDays",
            ..
        })
    ));
    assert_eq!(
        signer.count(),
        0,
        "nothing invalid reaches the signer (KMS)"
    );
}

#[tokio::test]
async fn an_issued_license_carries_plan_defaults_overrides_and_the_human_id_format() {
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Professional, NOW, |c| {
            c.limits.installations = Some(7);
        })
        .await;
    let l = &issued.license;
    assert!(l.id.as_str().starts_with("NECTAR-PROFESSIONAL-2026-"));
    assert_eq!(l.features, Plan::Professional.default_features());
    assert_eq!(l.limits.installations, 7);
    assert_eq!(l.limits.users, Plan::Professional.default_limits().users);
    assert_eq!(l.expires_at, NOW + Duration::days(30));
    let claims = stack
        .key_ring()
        .await
        .verify_license(&issued.key)
        .expect("verifies");
    assert_eq!(claims.jti, l.id);
    assert_eq!(claims.cid, issued.customer.id);
    assert_eq!(claims.exp, l.expires_at.unix_timestamp());
    assert_eq!(claims.limits.installations, 7);
}

/// The rule, on either layer; hands back the calls of the first beat and of the later one.
async fn first_heartbeat_registers_the_installation_and_later_ones_refresh_it<L: Layer>(
    stack: &L,
) -> (L::Calls, L::Calls) {
    // Arrange
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let ring = stack.key_ring().await;
    let signer = stack.lease_signer().await;
    let cmd = beat_cmd(&issued.key, "i-1");
    let beat = |at| heartbeat(&ring, stack.store(), &signer, &cmd, Duration::hours(1), at);
    // Act
    stack.reset_calls();
    let first = beat(NOW).await.expect("first");
    let first_calls = stack.calls();
    stack.reset_calls();
    let later = beat(NOW + Duration::minutes(61)).await.expect("second");
    let later_calls = stack.calls();
    // Assert
    assert_eq!(first.verdict.code, Code::Valid);
    assert_eq!(first.next_due_at, NOW + Duration::hours(1));
    let inst = later.installation.expect("recorded");
    assert_eq!(inst.first_seen_at, NOW);
    assert_eq!(inst.last_seen_at, NOW + Duration::minutes(61));
    assert_eq!(inst.status, InstallationStatus::Active);
    let (license, _) = stack
        .store()
        .license_and_installation(&issued.license.id, &installation("i-1"))
        .await
        .expect("read");
    assert_eq!(
        license.expect("license").active_installations,
        1,
        "one seat, not two"
    );
    assert_eq!(
        first.lease, later.lease,
        "the fresh lease is handed out again"
    );
    (first_calls, later_calls)
}

mod memory {
    use super::*;

    #[tokio::test]
    async fn first_heartbeat_registers_the_installation_and_later_ones_refresh_it() {
        super::first_heartbeat_registers_the_installation_and_later_ones_refresh_it(
            &MemoryStack::new(),
        )
        .await;
    }
}

mod emulator {
    use super::*;

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn first_heartbeat_registers_the_installation_and_later_ones_refresh_it() {
        let (first, later) =
            super::first_heartbeat_registers_the_installation_and_later_ones_refresh_it(
                &Stack::new().await,
            )
            .await;
        // First contact: read, take a seat, record the installation, sign and store its lease.
        // Later (lease still fresh): read, refresh — no signing.
        assert_eq!(
            first,
            aws_calls(&[
                ("DynamoDB.BatchGetItem", 1),
                ("DynamoDB.PutItem", 1),
                ("DynamoDB.UpdateItem", 3),
                ("KMS.Sign", 1)
            ])
        );
        assert_eq!(
            later,
            aws_calls(&[("DynamoDB.BatchGetItem", 1), ("DynamoDB.UpdateItem", 1)])
        );
    }
}

#[tokio::test]
async fn a_new_installation_beyond_the_seat_limit_is_refused_everywhere() {
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, NOW, |c| c.limits.installations = Some(2))
        .await;
    let ring = stack.key_ring().await;
    let signer = stack.lease_signer().await;
    for (inst, expected) in [
        ("i-1", Code::Valid),
        ("i-2", Code::Valid),
        ("i-3", Code::InstallationLimit),
    ] {
        let beat = beat_once(&ring, &stack.store, &signer, &issued.key, inst, NOW).await;
        assert_eq!(beat.verdict.code, expected, "{inst}");
    }
    // Seat holders still validate; the newcomer is told why it cannot.
    assert_eq!(
        validated(&stack, &issued.key, "i-1", NOW).await,
        Code::Valid
    );
    assert_eq!(
        validated(&stack, &issued.key, "i-3", NOW).await,
        Code::InstallationLimit
    );
}

#[tokio::test]
async fn support_releases_a_gone_installations_seat_and_a_new_installation_takes_it() {
    use shared::domain::ports::{AuditLog, InstallationRegistry};
    use shared::domain::{Actor, InstallationStatus};
    use shared::service::installations::release_installation;
    // Arrange: one seat, held by i-1; i-2 is refused.
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, NOW, |c| c.limits.installations = Some(1))
        .await;
    let id = issued.license.id.clone();
    let ring = stack.key_ring().await;
    let signer = stack.lease_signer().await;
    let beat = |inst: &'static str, at: OffsetDateTime| {
        let (ring, store, signer, key) = (&ring, &stack.store, &signer, &issued.key);
        async move {
            beat_once(ring, store, signer, key, inst, at)
                .await
                .verdict
                .code
        }
    };
    assert_eq!(beat("i-1", NOW).await, Code::Valid);
    assert_eq!(beat("i-2", NOW).await, Code::InstallationLimit);
    let release = |inst: &'static str| {
        let (store, id) = (&stack.store, &id);
        async move {
            release_installation(
                store,
                id,
                &installation(inst),
                "machine decommissioned".into(),
                Actor::operator("sam", None),
                NOW + Duration::minutes(1),
            )
            .await
        }
    };

    // Act
    let (released, changed) = release("i-1").await.expect("released");

    // Assert: the seat is free at once and the new installation takes it; the release is audited.
    assert!(changed);
    assert_eq!(released.status, InstallationStatus::Inactive);
    assert_eq!(beat("i-2", NOW + Duration::minutes(2)).await, Code::Valid);
    let seats = stack.store.installations(&id).await.expect("installations");
    let active: Vec<&str> = seats
        .iter()
        .filter(|i| i.status == InstallationStatus::Active)
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(active, ["i-2"]);
    let license = stack
        .store
        .license(&id)
        .await
        .expect("read")
        .expect("license");
    assert_eq!(license.active_installations, 1);
    let trail = stack.store.audit_page(&id, None, 10).await.expect("audit");
    let entry = trail
        .entries
        .iter()
        .find(|e| e.action == "installation.released")
        .expect("audited");
    assert_eq!(entry.actor.as_str(), "operator:sam");
    assert!(
        entry
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("i-1") && r.contains("decommissioned")),
        "{entry:?}"
    );
    // Releasing again changes nothing (and the count does not go below the truth).
    let (_, again) = release("i-1").await.expect("idempotent");
    assert!(!again);
    let license = stack
        .store
        .license(&id)
        .await
        .expect("read")
        .expect("license");
    assert_eq!(license.active_installations, 1);
    // An installation the license never had, or a license that does not exist: not found.
    assert!(matches!(
        release("i-9").await,
        Err(DomainError::InstallationNotFound)
    ));
    let missing = release_installation(
        &stack.store,
        &shared::domain::LicenseId::parse("NECTAR-STARTER-2026-ZZZZZZZZ").expect("id"),
        &installation("i-1"),
        "x".into(),
        Actor::operator("sam", None),
        NOW,
    )
    .await;
    assert!(
        matches!(missing, Err(DomainError::LicenseNotFound)),
        "{missing:?}"
    );
}

#[tokio::test]
async fn lookup_returns_the_customer_with_licenses_installations_and_audit() {
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let ring = stack.key_ring().await;
    let signer = stack.lease_signer().await;
    beat_once(&ring, &stack.store, &signer, &issued.key, "i-1", NOW).await;
    let (customer, licenses) = lookup_customer(&stack.store, &issued.customer.id)
        .await
        .expect("lookup");
    assert_eq!(customer, issued.customer);
    assert_eq!(licenses.len(), 1);
    assert_eq!(licenses[0].license.id, issued.license.id);
    assert_eq!(licenses[0].license.active_installations, 1);
    assert_eq!(licenses[0].installations.len(), 1);
    assert_eq!(licenses[0].installations[0].version, "1.4.2");
    assert_eq!(licenses[0].audit[0].actor.as_str(), "operator:bootstrap");
    let missing = shared::domain::CustomerId::from_uuid(uuid::Uuid::new_v4());
    assert!(matches!(
        lookup_customer(&stack.store, &missing).await,
        Err(DomainError::CustomerNotFound)
    ));
    assert!(
        stack
            .store
            .customer(&missing)
            .await
            .expect("read")
            .is_none()
    );
}

#[tokio::test]
async fn a_lease_is_bound_to_its_installation_and_resigned_only_past_half_its_life() {
    // Arrange
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
    let ring = stack.key_ring().await;
    let signer = CountingSigner::new(stack.lease_signer().await);
    let cmd = beat_cmd(&issued.key, "i-1");
    let beat = |at| heartbeat(&ring, &stack.store, &signer, &cmd, Duration::hours(1), at);
    let ttl = Plan::Professional.policy().lease_ttl;
    // Act
    let first = beat(NOW).await.expect("first").lease.expect("a lease");
    let signed_before = signer.count();
    let before_half = beat(NOW + ttl / 2 - Duration::minutes(1))
        .await
        .expect("beat")
        .lease
        .expect("a lease");
    let signs_before_half = signer.count() - signed_before;
    let past_half = beat(NOW + ttl / 2 + Duration::minutes(1))
        .await
        .expect("beat")
        .lease
        .expect("a lease");
    let signs_total = signer.count() - signed_before;
    // Assert
    let claims = ring.verify_lease(first.token.expose()).expect("verifies");
    assert_eq!(claims.typ, TokenKind::Lease);
    assert_eq!(claims.lid, issued.license.id);
    assert_eq!(claims.iid.as_str(), "i-1");
    assert_eq!(claims.cid, issued.customer.id);
    assert_eq!(
        (claims.iat, claims.ts),
        (NOW.unix_timestamp(), NOW.unix_timestamp())
    );
    assert_eq!(claims.exp, (NOW + ttl).unix_timestamp());
    assert_eq!(claims.lexp, issued.license.expires_at.unix_timestamp());
    assert_eq!(
        claims.grace,
        Plan::Professional.policy().offline_grace.whole_seconds()
    );
    assert_eq!(
        claims.feat,
        issued.license.features.iter().cloned().collect::<Vec<_>>()
    );
    assert_eq!(before_half, first, "more than half its life left: reused");
    assert_eq!(signs_before_half, 0);
    assert_ne!(past_half, first, "less than half its life left: re-signed");
    assert_eq!(signs_total, 1);
    assert_eq!(
        past_half.expires_at,
        NOW + ttl / 2 + Duration::minutes(1) + ttl
    );
    // Neither kind of token passes as the other.
    assert!(
        ring.verify_license(&LicenseKey::new(first.token.expose()))
            .is_err()
    );
    assert!(ring.verify_lease(issued.key.expose()).is_err());
}

#[tokio::test]
async fn a_lease_never_outlives_its_license() {
    // Arrange: a license with a day left, shorter than the lease lifetime.
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, NOW, |c| {
            c.term = shared::service::admin::Term::Until(NOW + Duration::days(1));
        })
        .await;
    let ring = stack.key_ring().await;
    let signer = stack.lease_signer().await;
    // Act
    let beat = beat_once(&ring, &stack.store, &signer, &issued.key, "i-1", NOW).await;
    // Assert
    let lease = beat.lease.expect("a lease");
    assert_eq!(lease.expires_at, issued.license.expires_at);
}

#[tokio::test]
async fn a_clock_tamper_signal_is_recorded_in_the_license_audit_trail() {
    // Arrange
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let ring = stack.key_ring().await;
    let signer = stack.lease_signer().await;
    let mut cmd = beat_cmd(&issued.key, "i-1");
    cmd.signals = vec![shared::service::heartbeat::Signal::ClockTampered];
    // Act
    let beat = heartbeat(&ring, &stack.store, &signer, &cmd, Duration::hours(1), NOW)
        .await
        .expect("beat");
    // Assert
    assert_eq!(beat.verdict.code, Code::Valid);
    let (_, licenses) = lookup_customer(&stack.store, &issued.customer.id)
        .await
        .expect("lookup");
    let signal = licenses[0]
        .audit
        .iter()
        .find(|e| e.action == "installation.signal")
        .expect("the signal is audited");
    assert!(
        signal
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("CLOCK_TAMPERED")),
        "{signal:?}"
    );
}

#[tokio::test]
async fn a_signal_is_audited_once_per_installation_per_day_however_often_it_is_sent() {
    // Arrange: an installation sending CLOCK_TAMPERED on every beat, every minute.
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, NOW, |c| c.term = Term::Days(30))
        .await;
    let ring = stack.key_ring().await;
    let signer = stack.lease_signer().await;
    let signalled = |inst: &str| {
        let mut cmd = beat_cmd(&issued.key, inst);
        cmd.signals = vec![shared::service::heartbeat::Signal::ClockTampered];
        cmd
    };
    let signals = || async {
        let (_, licenses) = lookup_customer(&stack.store, &issued.customer.id)
            .await
            .expect("lookup");
        licenses[0]
            .audit
            .iter()
            .filter(|e| e.action == "installation.signal")
            .count()
    };
    // Act: 200 beats of one installation over the day, then a second installation, then the
    // next day.
    for minute in 0..200 {
        heartbeat(
            &ring,
            &stack.store,
            &signer,
            &signalled("i-1"),
            Duration::hours(1),
            NOW + Duration::minutes(minute),
        )
        .await
        .expect("beat");
    }
    assert_eq!(signals().await, 1, "one entry for the day");
    heartbeat(
        &ring,
        &stack.store,
        &signer,
        &signalled("i-2"),
        Duration::hours(1),
        NOW,
    )
    .await
    .expect("beat");
    assert_eq!(signals().await, 2, "another installation is another entry");
    heartbeat(
        &ring,
        &stack.store,
        &signer,
        &signalled("i-1"),
        Duration::hours(1),
        NOW + Duration::days(1),
    )
    .await
    .expect("beat");
    assert_eq!(signals().await, 3, "the next day is another entry");
}

#[tokio::test]
async fn renewing_an_expired_license_reactivates_it_with_a_new_key_and_an_audit_entry() {
    // Arrange: a license marked expired (as the lifecycle job does).
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Professional, NOW, |c| {
            c.term = shared::service::admin::Term::Days(1);
        })
        .await;
    let later = NOW + Duration::days(2);
    let entry = AuditEntry {
        action: "license.expired".into(),
        actor: Actor::system("lifecycle"),
        reason: None,
        from: Some(LicenseStatus::Active),
        to: Some(LicenseStatus::Expired),
        at: later,
    };
    assert!(
        stack
            .store
            .set_status(
                &issued.license.id,
                LicenseStatus::Active,
                LicenseStatus::Expired,
                &entry
            )
            .await
            .expect("expire")
    );
    let ring = stack.key_ring().await;
    let signer = stack.signer().await;
    // Act
    let (license, key) = shared::service::admin::renew_license(
        &stack.store,
        &signer,
        TEST_ISSUER,
        shared::service::admin::RenewCommand {
            id: issued.license.id.clone(),
            term: shared::service::admin::Term::Days(30),
            reason: Some("renewal order 7".into()),
        },
        Actor::operator("ops", None),
        later,
    )
    .await
    .expect("renews");
    // Assert
    assert_eq!(license.status, LicenseStatus::Active);
    assert_eq!(license.expires_at, later + Duration::days(30));
    let claims = ring.verify_license(&key).expect("the new key verifies");
    assert_eq!(claims.jti, issued.license.id);
    assert_eq!(claims.exp, (later + Duration::days(30)).unix_timestamp());
    assert_eq!(validated(&stack, &key, "i-1", later).await, Code::Valid);
    assert_eq!(
        validated(&stack, &issued.key, "i-1", later).await,
        Code::Expired,
        "the old key still carries the old expiry"
    );
    let (_, licenses) = lookup_customer(&stack.store, &issued.customer.id)
        .await
        .expect("lookup");
    let renewal = licenses[0]
        .audit
        .iter()
        .find(|e| e.action == "license.renewed")
        .expect("audited");
    assert_eq!(
        (renewal.from, renewal.to),
        (Some(LicenseStatus::Expired), Some(LicenseStatus::Active))
    );
    assert!(
        renewal
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("renewal order 7; expiry "))
    );
}

#[tokio::test]
async fn a_revoked_license_cannot_be_renewed() {
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    change_status(
        &stack.store,
        &issued.license.id,
        StatusAction::Revoke,
        Some("fraud".into()),
        Actor::operator("bootstrap", None),
        NOW,
    )
    .await
    .expect("revoke");
    let renewed = shared::service::admin::renew_license(
        &stack.store,
        &stack.signer().await,
        TEST_ISSUER,
        shared::service::admin::RenewCommand {
            id: issued.license.id.clone(),
            term: shared::service::admin::Term::Days(30),
            reason: None,
        },
        Actor::operator("bootstrap", None),
        NOW,
    )
    .await;
    assert!(
        matches!(
            renewed,
            Err(DomainError::InvalidTransition {
                action: "renew",
                from: LicenseStatus::Revoked
            })
        ),
        "{renewed:?}"
    );
}

mod offline_activation {
    //! Offline activation files: a seat, a long lease signed by the lease key, audited.

    use super::*;
    use shared::domain::InstallationId;
    use shared::domain::ports::InstallationRegistry;
    use shared::service::activation::{ActivationCommand, activate_offline};

    fn cmd(issued: &shared::testing::Issued, iid: &str, days: i64) -> ActivationCommand {
        ActivationCommand {
            license_id: issued.license.id.clone(),
            installation_id: InstallationId::parse(iid).expect("iid"),
            days,
            actor: Actor::operator("ops@nectar", None),
        }
    }

    #[tokio::test]
    async fn an_activation_takes_a_seat_and_carries_a_long_lease_for_that_installation_only() {
        // Arrange: a license with one seat.
        let stack = MemoryStack::new();
        let issued = stack
            .issue(Plan::Professional, NOW, |c| {
                c.limits.installations = Some(1);
                c.term = Term::Days(365);
            })
            .await;
        // Act
        let file = activate_offline(
            &stack.store,
            &stack.lease_signer,
            TEST_ISSUER,
            &cmd(&issued, "air-gapped-1", 90),
            NOW,
        )
        .await
        .expect("activation");
        // Assert: the lease verifies as a lease (lease key), for that installation, 90 days.
        let claims = stack.ring.verify_lease(&file.lease).expect("a lease");
        assert_eq!(claims.iid.as_str(), "air-gapped-1");
        assert_eq!(claims.exp - claims.iat, 90 * 86_400);
        assert_eq!(file.installation_id, "air-gapped-1");
        let seats = stack
            .store
            .installations(&issued.license.id)
            .await
            .expect("installations");
        assert_eq!(seats.len(), 1);
        assert_eq!(seats[0].status, InstallationStatus::Active);
        // The one seat is taken: a second air-gapped installation is refused, the same one is not.
        let refused = activate_offline(
            &stack.store,
            &stack.lease_signer,
            TEST_ISSUER,
            &cmd(&issued, "air-gapped-2", 90),
            NOW,
        )
        .await;
        assert!(
            matches!(refused, Err(DomainError::SeatsFull { limit: 1, .. })),
            "{refused:?}"
        );
        activate_offline(
            &stack.store,
            &stack.lease_signer,
            TEST_ISSUER,
            &cmd(&issued, "air-gapped-1", 30),
            NOW,
        )
        .await
        .expect("renewing the same installation's activation");
        // Audited with the operator.
        let (_, licenses) = lookup_customer(&stack.store, &issued.customer.id)
            .await
            .expect("lookup");
        let trail: Vec<String> = licenses
            .iter()
            .flat_map(|l| {
                l.audit
                    .iter()
                    .map(|a| format!("{} by {}", a.action, a.actor.as_str()))
            })
            .collect();
        assert!(
            trail
                .iter()
                .any(|t| t == "installation.activated_offline by operator:ops@nectar"),
            "{trail:?}"
        );
    }

    #[tokio::test]
    async fn activations_are_refused_out_of_range_or_for_a_license_not_in_force() {
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
        for days in [0, 366, -5] {
            let r = activate_offline(
                &stack.store,
                &stack.lease_signer,
                TEST_ISSUER,
                &cmd(&issued, "air-1", days),
                NOW,
            )
            .await;
            assert!(
                matches!(r, Err(DomainError::InvalidValue { field: "days", .. })),
                "{days}: {r:?}"
            );
        }
        change_status(
            &stack.store,
            &issued.license.id,
            StatusAction::Suspend,
            Some("unpaid".into()),
            Actor::operator("bootstrap", None),
            NOW,
        )
        .await
        .expect("suspend");
        let r = activate_offline(
            &stack.store,
            &stack.lease_signer,
            TEST_ISSUER,
            &cmd(&issued, "air-1", 30),
            NOW,
        )
        .await;
        assert!(
            matches!(r, Err(DomainError::InvalidTransition { .. })),
            "{r:?}"
        );
    }
}

mod operators {
    //! Admin authentication and operator accounts on the memory layer.

    use super::*;
    use shared::config::AdminAuth;
    use shared::domain::ports::OperatorDirectory;
    use shared::domain::{OperatorName, OperatorToken, Principal, Role};
    use shared::service::operators::{
        NewOperator, authenticate, create_operator, disable_operator, list_operators,
        rotate_operator,
    };
    use shared::testing::{Untouchable, operator_on};

    fn bootstrap() -> AdminAuth {
        AdminAuth::from_hex_sha256(&AdminAuth::hash_token("the-bootstrap-token")).expect("hash")
    }

    #[tokio::test]
    async fn the_bootstrap_token_and_garbage_are_decided_without_touching_the_store() {
        // The Untouchable store panics if reached.
        assert_eq!(
            authenticate(&bootstrap(), &Untouchable, "the-bootstrap-token")
                .await
                .expect("auth"),
            Some(Principal::bootstrap())
        );
        for garbage in ["", "guess", "the-bootstrap-token ", "nop_short"] {
            assert_eq!(
                authenticate(&bootstrap(), &Untouchable, garbage)
                    .await
                    .expect("auth"),
                None,
                "{garbage:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_operator_token_authenticates_as_its_operator_until_rotated_or_disabled() {
        let stack = MemoryStack::new();
        let (alice, token) = operator_on(&stack.store, "alice", Role::Support).await;
        let principal = authenticate(&bootstrap(), &stack.store, token.expose())
            .await
            .expect("auth")
            .expect("known");
        assert_eq!(
            (principal.id, principal.role, principal.name.as_str()),
            (Some(alice.id), Role::Support, "alice")
        );
        assert_eq!(
            principal.actor().as_str(),
            format!("operator:alice ({})", alice.id)
        );
        // A well-formed token nobody holds.
        let stranger = OperatorToken::from_random_bytes([9; 32]);
        assert_eq!(
            authenticate(&bootstrap(), &stack.store, stranger.expose())
                .await
                .expect("auth"),
            None
        );
        // Rotated: the old token is nobody's, the new one is alice's.
        let (_, new) = rotate_operator(
            &stack.store,
            &RandomIds,
            &alice.id,
            None,
            Principal::bootstrap().actor(),
            NOW,
        )
        .await
        .expect("rotate");
        let who = |t: String| {
            let store = stack.store.clone();
            async move {
                authenticate(&bootstrap(), &store, &t)
                    .await
                    .expect("auth")
                    .map(|p| p.name)
            }
        };
        assert_eq!(who(token.expose().to_owned()).await, None);
        assert_eq!(who(new.expose().to_owned()).await.as_deref(), Some("alice"));
        // Disabled: nobody's either.
        let (_, changed) = disable_operator(
            &stack.store,
            &alice.id,
            "left".into(),
            Principal::bootstrap().actor(),
            NOW,
        )
        .await
        .expect("disable");
        assert!(changed);
        assert_eq!(who(new.expose().to_owned()).await, None);
    }

    #[tokio::test]
    async fn operator_changes_are_audited_with_who_did_them_in_the_operators_trail() {
        let stack = MemoryStack::new();
        let (admin, _) = operator_on(&stack.store, "root-ish", Role::Admin).await;
        let actor = Principal::operator(&admin.credential()).actor();
        let (target, _) = create_operator(
            &stack.store,
            &RandomIds,
            NewOperator {
                name: OperatorName::parse("ivan").expect("name"),
                email: Some("ivan@nectar.example".into()),
                role: Role::Viewer,
            },
            actor.clone(),
            NOW,
        )
        .await
        .expect("create");
        rotate_operator(
            &stack.store,
            &RandomIds,
            &target.id,
            Some("suspected leak".into()),
            actor.clone(),
            NOW + Duration::minutes(1),
        )
        .await
        .expect("rotate");
        disable_operator(
            &stack.store,
            &target.id,
            "left".into(),
            actor.clone(),
            NOW + Duration::minutes(2),
        )
        .await
        .expect("disable");
        let trail = stack
            .store
            .operator_audit(&target.id, None, 10)
            .await
            .expect("trail");
        let seen: Vec<(&str, &str, Option<&str>)> = trail
            .entries
            .iter()
            .map(|e| (e.action.as_str(), e.actor.as_str(), e.reason.as_deref()))
            .collect();
        let by = format!("operator:root-ish ({})", admin.id);
        assert_eq!(
            seen,
            [
                ("operator.disabled", by.as_str(), Some("left")),
                (
                    "operator.token_rotated",
                    by.as_str(),
                    Some("suspected leak")
                ),
                ("operator.created", by.as_str(), Some("ivan, role viewer")),
            ]
        );
    }

    #[tokio::test]
    async fn names_are_unique_among_active_operators_and_emails_are_checked() {
        let stack = MemoryStack::new();
        operator_on(&stack.store, "judy", Role::Viewer).await;
        let new = |name: &str, email: Option<&str>| NewOperator {
            name: OperatorName::parse(name).expect("name"),
            email: email.map(str::to_owned),
            role: Role::Viewer,
        };
        let actor = Principal::bootstrap().actor();
        assert!(matches!(
            create_operator(&stack.store, &RandomIds, new("JUDY", None), actor.clone(), NOW).await,
            Err(DomainError::OperatorNameTaken(name)) if name == "JUDY"
        ));
        assert!(matches!(
            create_operator(
                &stack.store,
                &RandomIds,
                new("kim", Some("kim")),
                actor.clone(),
                NOW
            )
            .await,
            Err(DomainError::InvalidValue { field: "email", .. })
        ));
        assert!(matches!(
            list_operators(&stack.store, None, 0).await,
            Err(DomainError::InvalidValue { field: "limit", .. })
        ));
        assert_eq!(
            list_operators(&stack.store, None, 100)
                .await
                .expect("list")
                .items
                .len(),
            1
        );
    }

    /// The memory store, with another rotation landing just before the first one asked for.
    struct Racing {
        inner: shared::adapters::memory::MemoryStore,
        raced: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl OperatorDirectory for Racing {
        async fn create_operator(
            &self,
            o: &shared::domain::Operator,
            a: &AuditEntry,
        ) -> Result<shared::domain::ports::OperatorCreated, shared::domain::StoreError> {
            self.inner.create_operator(o, a).await
        }
        async fn credential(
            &self,
            h: &shared::domain::TokenHash,
        ) -> Result<Option<shared::domain::OperatorCredential>, shared::domain::StoreError>
        {
            self.inner.credential(h).await
        }
        async fn operator(
            &self,
            id: &shared::domain::OperatorId,
        ) -> Result<Option<shared::domain::Operator>, shared::domain::StoreError> {
            self.inner.operator(id).await
        }
        async fn operators(
            &self,
            after: Option<&shared::domain::OperatorId>,
            limit: usize,
        ) -> Result<
            shared::domain::ports::SweepPage<shared::domain::Operator>,
            shared::domain::StoreError,
        > {
            self.inner.operators(after, limit).await
        }
        async fn rotate_operator_token(
            &self,
            o: &shared::domain::Operator,
            new: &shared::domain::TokenHash,
            a: &AuditEntry,
        ) -> Result<bool, shared::domain::StoreError> {
            if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let other = shared::domain::TokenHash::of("the other caller's token");
                assert!(self.inner.rotate_operator_token(o, &other, a).await?);
            }
            self.inner.rotate_operator_token(o, new, a).await
        }
        async fn disable_operator(
            &self,
            o: &shared::domain::Operator,
            a: &AuditEntry,
        ) -> Result<bool, shared::domain::StoreError> {
            self.inner.disable_operator(o, a).await
        }
        async fn operator_audit(
            &self,
            id: &shared::domain::OperatorId,
            before: Option<&str>,
            limit: usize,
        ) -> Result<shared::domain::ports::AuditPage, shared::domain::StoreError> {
            self.inner.operator_audit(id, before, limit).await
        }
    }

    #[tokio::test]
    async fn a_rotation_beaten_by_another_is_reported_and_keeps_the_other_callers_token() {
        let stack = MemoryStack::new();
        let (lena, _) = operator_on(&stack.store, "lena", Role::Viewer).await;
        let racing = Racing {
            inner: stack.store.clone(),
            raced: Default::default(),
        };
        let outcome = rotate_operator(
            &racing,
            &RandomIds,
            &lena.id,
            None,
            Principal::bootstrap().actor(),
            NOW,
        )
        .await;
        assert!(
            matches!(outcome, Err(DomainError::OperatorRotatedMeanwhile)),
            "{outcome:?}"
        );
        // The other caller's token is the one that works.
        let credential = stack
            .store
            .credential(&shared::domain::TokenHash::of("the other caller's token"))
            .await
            .expect("read");
        assert_eq!(credential.map(|c| c.operator_id), Some(lena.id));
    }
}
