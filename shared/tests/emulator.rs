//! Service tests that are about DynamoDB, KMS and SNS themselves, on the emulator: AWS calls per
//! operation (counted by `CallCounter`), KMS public-key fetches, races against the real table,
//! and raw items. Every service *rule* runs on the in-memory adapters (`services.rs`, `usage.rs`,
//! `lifecycle.rs`, `workflows.rs`); the rules whose AWS cost or delivery matters also run on the
//! emulator from there (their `emulator::` tests). These are ignored by plain `cargo test` and run
//! by `make test`.

mod common;

mod services {
    //! Validation, heartbeats and seats: call counts, KMS, races on the seat counter.

    use super::common::{beat_once, report, seated_and_full, seats, validate_cmd};
    use shared::domain::Plan;
    use shared::domain::ports::InstallationRegistry;
    use shared::service::check::Code;
    use shared::service::validate::validate;
    use shared::testing::{Stack, TEST_ISSUER};
    use time::OffsetDateTime;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn validate_costs_one_dynamodb_read_and_no_kms_call_on_the_warm_path() {
        // Arrange: a license, and a ring loaded once as at cold start.
        let stack = Stack::new().await;
        let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
        let ring = stack.key_ring().await;
        stack.calls.reset();
        // Act
        let checked = validate(&ring, &stack.store, &validate_cmd(&issued.key, "i-1"), NOW)
            .await
            .expect("validate");
        // Assert
        assert_eq!(checked.verdict.code, Code::Valid);
        assert_eq!(
            stack.calls.snapshot().into_iter().collect::<Vec<_>>(),
            vec![("DynamoDB.BatchGetItem".to_owned(), 1)]
        );
        assert_eq!(stack.calls.count("KMS."), 0);
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn concurrent_seat_claims_admit_exactly_the_limit() {
        // Arrange: 24 new installations race for 5 seats.
        let stack = Stack::new().await;
        let issued = stack
            .issue(Plan::Enterprise, NOW, |c| c.limits.installations = Some(5))
            .await;
        let reports: Vec<_> = (0..24)
            .map(|i| report(&issued.license.id, &format!("node-{i}"), NOW))
            .collect();
        // Act
        let claims =
            futures::future::join_all(reports.iter().map(|r| stack.store.claim_seat(r, 5))).await;
        // Assert
        assert_eq!(seated_and_full(&claims), (5, 19), "{claims:?}");
        assert_eq!(seats(&stack.store, &issued.license.id).await, 5);
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn the_same_installation_beating_concurrently_takes_one_seat() {
        let stack = Stack::new().await;
        let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
        let twin = report(&issued.license.id, "twin", NOW);
        let claims =
            futures::future::join_all((0..8).map(|_| stack.store.claim_seat(&twin, 10))).await;
        assert_eq!(seated_and_full(&claims), (8, 0), "{claims:?}");
        assert_eq!(seats(&stack.store, &issued.license.id).await, 1);
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn duplicate_beats_that_momentarily_fill_the_license_still_settle_on_one_seat() {
        // 8 concurrent beats of one installation against 3 seats: the duplicates briefly hold all
        // three seats, so a duplicate may be told INSTALLATION_LIMIT for that beat; the seat count
        // must still settle on exactly one, held by the installation.
        let stack = Stack::new().await;
        let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
        let twin = report(&issued.license.id, "twin", NOW);
        let claims =
            futures::future::join_all((0..8).map(|_| stack.store.claim_seat(&twin, 3))).await;
        assert!(claims.iter().all(Result::is_ok), "{claims:?}");
        assert!(seated_and_full(&claims).0 > 0, "{claims:?}");
        assert_eq!(seats(&stack.store, &issued.license.id).await, 1);
        assert!(stack.store.touch(&twin).await.expect("touch").is_some());
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn a_signing_and_verifying_function_fetches_each_public_key_once_at_cold_start() {
        // Arrange
        let stack = Stack::new().await;
        let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
        stack.calls.reset();
        // Act
        let (signer, ring) = shared::adapters::kms::load_lease_signer_and_key_ring(
            &stack.kms,
            TEST_ISSUER,
            std::slice::from_ref(&stack.key_id),
            &stack.lease_key_id,
        )
        .await
        .expect("loads");
        // Assert: the license key and the lease key, once each.
        assert_eq!(stack.calls.count("KMS.GetPublicKey"), 2);
        assert_eq!(stack.calls.count("KMS."), 2);
        let beat = beat_once(&ring, &stack.store, &signer, &issued.key, "i-1", NOW).await;
        let lease = beat.lease.expect("a lease");
        assert!(
            ring.verify_lease(lease.token.expose()).is_ok(),
            "signer and ring agree"
        );
    }
}

mod usage {
    //! Usage metering: concurrent reservations on the real counter.

    use super::common::{feature, used};
    use shared::domain::{Period, Plan};
    use shared::service::usage::{Reservation, reserve};
    use shared::testing::Stack;
    use time::OffsetDateTime;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-07-15 12:00 UTC);

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn a_hundred_concurrent_reservations_against_a_limit_of_twenty_admit_exactly_twenty() {
        let stack = Stack::new().await;
        let issued = stack
            .issue(Plan::Starter, NOW, |c| {
                c.limits.workflows_per_month = Some(20)
            })
            .await;
        let workflows = feature("workflows");
        let results = futures::future::join_all(
            (0..100).map(|_| reserve(&stack.store, &issued.license, &workflows, 1, NOW)),
        )
        .await;
        let granted = results
            .iter()
            .filter(|r| matches!(r, Ok(Reservation::Granted { .. })))
            .count();
        let refused = results
            .iter()
            .filter(|r| matches!(r, Ok(Reservation::Exceeded { limit: 20 })))
            .count();
        assert_eq!((granted, refused), (20, 80), "{results:?}");
        assert_eq!(
            used(&stack.store, &issued.license.id, Period::containing(NOW))
                .await
                .0,
            20
        );
        let mut totals: Vec<u64> = results
            .iter()
            .filter_map(|r| match r {
                Ok(Reservation::Granted { used, .. }) => Some(*used),
                _ => None,
            })
            .collect();
        totals.sort_unstable();
        // (Which total each grant saw is not checked: the emulator's ReturnValues can race.)
        assert_eq!(
            totals.last(),
            Some(&20),
            "no grant saw a total past the limit"
        );
    }
}

mod lifecycle {
    //! The lifecycle job: an undecodable item in the index.

    use super::common::{issue_expiring, run_ok};
    use shared::domain::Plan;
    use shared::service::lifecycle::{Job, Settings};
    use shared::testing::{Inbox, Stack};
    use time::macros::datetime;
    use time::{Duration, OffsetDateTime};

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn an_undecodable_license_item_is_skipped_and_the_sweep_goes_on() {
        use aws_sdk_dynamodb::types::AttributeValue::S;
        // Arrange: a broken item sorted before a good license in the status index.
        let stack = Stack::new().await;
        let inbox = Inbox::new().await;
        let good = issue_expiring(&stack, Plan::Starter, NOW, NOW + Duration::days(7)).await;
        let broken_sk = format!(
            "{}#garbage",
            shared::adapters::dynamo::keys::sortable_time(NOW + Duration::days(1))
        );
        stack
            .dynamo
            .put_item()
            .table_name(stack.store.table())
            .item("pk", S("LICENSE#garbage".into()))
            .item("sk", S("LICENSE".into()))
            .item("gsi2pk", S("STATUS#active".into()))
            .item("gsi2sk", S(broken_sk))
            .send()
            .await
            .expect("put");
        // Act
        let report = run_ok(
            &stack.store,
            &inbox.publisher,
            &[Job::ExpiryWarnings],
            NOW,
            Settings::default(),
        )
        .await;
        // Assert
        assert_eq!((report[0].published, report[0].swept), (1, true));
        let events = inbox.drain().await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["licenseId"], good.license.id.as_str());
    }
}

mod workflows {
    //! Workflow executions: concurrent metering on the real counter.

    use super::common::{Harness, execute_cmd};
    use serde_json::json;
    use shared::domain::Plan;
    use shared::domain::ports::UsageLedger;
    use shared::service::workflows::{Refusal, workflows_feature};
    use shared::testing::Stack;
    use time::OffsetDateTime;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00:10 UTC);

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn thirty_concurrent_executions_with_ten_left_run_exactly_ten() {
        // Arrange: a limit of 12, 2 already used.
        let h = Harness::new(Stack::new().await, NOW).await;
        let issued = h.issue(Plan::Professional, Some(12)).await;
        h.stack
            .store
            .reserve(&issued.license.id, &workflows_feature(), NOW, 2, 12)
            .await
            .expect("reserve");
        let workflow = json!({"nodes": [{"id": "o", "type": "output", "params": {"expr": ".n"}}]});
        // Act
        let runs = futures::future::join_all(
            (0..30).map(|n| h.run(execute_cmd(&issued, workflow.clone(), json!({ "n": n })))),
        )
        .await;
        // Assert
        let ok = runs.iter().filter(|r| r.is_ok()).count();
        let exceeded = runs
            .iter()
            .filter(|r| matches!(r, Err(Refusal::UsageExceeded { limit: 12, .. })))
            .count();
        assert_eq!((ok, exceeded), (10, 20));
        assert_eq!(h.used(&issued).await, 12);
    }
}

mod cold_start {
    //! A verifying function's cold start with the license keys delivered by configuration.

    use shared::config::Config;
    use shared::domain::ports::TokenSigner;
    use shared::testing::{Stack, TEST_ISSUER};
    use shared::token::{LicenseKey, TokenKind, sign_jwt};

    fn config(jwks: &str, key_id: &str) -> Config {
        let (jwks, key_id) = (jwks.to_owned(), key_id.to_owned());
        Config::from_lookup(move |name| match name {
            "LICENSE_KEYS_JWKS" => Some(jwks.clone()),
            "SIGNING_KEY_ID" => Some(key_id.clone()),
            "TOKEN_ISSUER" => Some(TEST_ISSUER.into()),
            _ => None,
        })
        .expect("config")
    }

    /// An SDK configuration whose every call is refused (KMS down).
    fn unreachable() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(
                aws_sdk_kms::config::Credentials::new("test", "test", None, None, "test"),
            ))
            .build()
    }

    #[tokio::test]
    async fn with_the_keys_configured_a_cold_start_verifies_keys_while_kms_is_down() {
        // The offline half needs no emulator: the keys come from a local signer.
        let signer = shared::adapters::local::LocalSigner::random("configured-key");
        let der = signer.spki_der();
        let ring =
            shared::token::KeyRing::from_spki_der(TEST_ISSUER, [(signer.kid(), der.as_slice())])
                .expect("ring");
        let jwks = serde_json::to_string(&ring.jwks()).expect("json");
        let sdk = unreachable();
        // Act: the cold start.
        let configured = shared::aws::key_ring(&sdk, &config(&jwks, "alias/unused"))
            .await
            .expect("starts without KMS");
        // Assert: it verifies a key the configured key signed.
        let claims = serde_json::json!({
            "iss": TEST_ISSUER, "typ": "license", "jti": "NECTAR-STARTER-2026-COLDSTRT",
            "lic": "NECTAR-STARTER-2026", "cid": "0b7f3c8e-2f0c-4c1e-9d8a-3b2f1e0d9c8b",
            "iat": 1, "exp": 2, "feat": [], "domain_restrictions": [],
            "limits": {"workflows_per_month": 1, "users": 1, "storage_gb": 1, "installations": 1},
        });
        let key = LicenseKey::new(
            sign_jwt(&signer, TokenKind::License, &claims)
                .await
                .expect("sign"),
        );
        assert!(configured.verify_license(&key).is_ok());
        // Without the configuration the same cold start needs KMS, and fails while it is down.
        let bare = Config::from_lookup(|name| match name {
            "SIGNING_KEY_ID" => Some("alias/unused".into()),
            _ => None,
        })
        .expect("config");
        assert!(shared::aws::key_ring(&sdk, &bare).await.is_err());
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn configured_keys_are_checked_against_kms_when_it_answers() {
        let stack = Stack::new().await;
        let fetched = stack.key_ring().await.jwks();
        let only_license = shared::token::Jwks {
            keys: vec![fetched.keys[0].clone()],
            endorsements: Vec::new(),
        };
        let refs = vec![stack.key_id.clone()];
        assert_eq!(
            shared::aws::check_against_kms(&stack.kms, TEST_ISSUER, &refs, &only_license).await,
            Some(true)
        );
        // Same kid, another key: what a stale deployment parameter looks like.
        let other = shared::adapters::local::LocalSigner::random("other").spki_der();
        let stale = shared::token::KeyRing::from_spki_der(
            TEST_ISSUER,
            [(fetched.keys[0].kid.as_str(), other.as_slice())],
        )
        .expect("ring")
        .jwks();
        assert_eq!(
            shared::aws::check_against_kms(&stack.kms, TEST_ISSUER, &refs, &stale).await,
            Some(false)
        );
    }
}

mod operators {
    //! Admin authentication and operator changes: DynamoDB calls per operation.

    use shared::config::AdminAuth;
    use shared::domain::{OperatorToken, Principal, Role};
    use shared::service::operators::{authenticate, disable_operator, rotate_operator};
    use shared::testing::{Stack, operator_on};
    use std::collections::BTreeMap;

    fn calls(stack: &Stack) -> Vec<(String, usize)> {
        stack.calls.snapshot().into_iter().collect()
    }

    fn expect(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect()
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn an_operator_token_costs_one_get_item_and_the_bootstrap_token_none() {
        // Arrange: an operator, and the bootstrap token's configured hash.
        let stack = Stack::new().await;
        let (alice, token) = operator_on(&stack.store, "alice", Role::Support).await;
        let bootstrap =
            AdminAuth::from_hex_sha256(&AdminAuth::hash_token("break-glass")).expect("hash");
        let stranger = OperatorToken::from_random_bytes([3; 32]);
        // (what, bearer token, the role it authenticates as, its AWS calls)
        type Case<'a> = (&'a str, &'a str, Option<Role>, &'a [(&'a str, usize)]);
        let cases: [Case; 4] = [
            (
                "operator token",
                token.expose(),
                Some(Role::Support),
                &[("DynamoDB.GetItem", 1)],
            ),
            ("bootstrap token", "break-glass", Some(Role::Admin), &[]),
            ("malformed token", "guess", None, &[]),
            (
                "unknown operator token",
                stranger.expose(),
                None,
                &[("DynamoDB.GetItem", 1)],
            ),
        ];
        for (what, bearer, role, cost) in cases {
            stack.calls.reset();
            // Act
            let principal = authenticate(&bootstrap, &stack.store, bearer)
                .await
                .expect("auth");
            // Assert
            assert_eq!(principal.map(|p| p.role), role, "{what}");
            assert_eq!(calls(&stack), expect(cost), "{what}");
        }

        // Rotating and disabling: one read of the operator, one transaction of 4 items each.
        let actor = Principal::bootstrap().actor();
        let now = time::OffsetDateTime::now_utc();
        stack.calls.reset();
        let (_, new) = rotate_operator(
            &stack.store,
            &shared::domain::ports::RandomIds,
            &alice.id,
            None,
            actor.clone(),
            now,
        )
        .await
        .expect("rotate");
        let four_items = expect(&[
            ("DynamoDB.GetItem", 1),
            ("DynamoDB.TransactWriteItems", 1),
            ("DynamoDB.TransactWriteItems.items", 4),
        ]);
        assert_eq!(calls(&stack), four_items, "rotate");
        stack.calls.reset();
        disable_operator(&stack.store, &alice.id, "left".into(), actor, now)
            .await
            .expect("disable");
        assert_eq!(calls(&stack), four_items, "disable");
        // Both seen by the very next request (strongly consistent reads).
        for gone in [token.expose(), new.expose()] {
            assert_eq!(
                authenticate(&bootstrap, &stack.store, gone)
                    .await
                    .expect("auth"),
                None
            );
        }
    }
}
