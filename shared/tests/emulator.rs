//! Service tests that are about DynamoDB, KMS, SQS and SNS themselves, on the emulator: AWS calls
//! per operation (counted by `CallCounter`), KMS public-key fetches, races against the real table,
//! transactions at DynamoDB's 100-item limit, raw items, and delivery through SNS → SQS. Every
//! service *rule* also runs on the in-memory adapters (`services.rs`, `usage.rs`, `lifecycle.rs`,
//! `workflows.rs`); these are ignored by plain `cargo test` and run by `make test`.

mod services {
    //! Validation, heartbeats and seats: call counts, KMS, races on the seat counter.

    use shared::domain::ports::{HeartbeatReport, InstallationRegistry, LicenseReader, SeatClaim};
    use shared::domain::{InstallationId, InstallationStatus, Plan};
    use shared::service::admin::IssueCommand;
    use shared::service::check::Code;
    use shared::service::heartbeat::{HeartbeatCommand, heartbeat};
    use shared::service::validate::{ValidateCommand, validate};
    use shared::testing::{Issued, Stack, TEST_ISSUER};
    use shared::token::LicenseKey;
    use time::macros::datetime;
    use time::{Duration, OffsetDateTime};

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    async fn issue(stack: &Stack, plan: Plan, tweak: impl FnOnce(&mut IssueCommand)) -> Issued {
        stack.issue(plan, NOW, tweak).await
    }

    fn installation(id: &str) -> InstallationId {
        InstallationId::parse(id).expect("valid id")
    }

    fn validate_cmd(key: &LicenseKey, inst: &str) -> ValidateCommand {
        ValidateCommand {
            key: key.clone(),
            installation_id: installation(inst),
            domain: None,
            feature: None,
        }
    }

    fn beat_cmd(key: &LicenseKey, inst: &str) -> HeartbeatCommand {
        HeartbeatCommand {
            key: key.clone(),
            installation_id: installation(inst),
            version: "1.4.2".into(),
            domain: None,
            gauges: Default::default(),
            signals: Vec::new(),
        }
    }

    /// One heartbeat of `inst` at `at`, with the usual command.
    async fn beat_once(
        ring: &shared::token::KeyRing,
        stack: &Stack,
        signer: &dyn shared::domain::ports::TokenSigner,
        key: &LicenseKey,
        inst: &str,
        at: OffsetDateTime,
    ) -> shared::service::heartbeat::Beat {
        heartbeat(
            ring,
            &stack.store,
            signer,
            &beat_cmd(key, inst),
            Duration::hours(1),
            at,
        )
        .await
        .expect("heartbeat")
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn validate_costs_one_dynamodb_read_and_no_kms_call_on_the_warm_path() {
        // Arrange: a license, and a ring loaded once as at cold start.
        let stack = Stack::new().await;
        let issued = issue(&stack, Plan::Professional, |_| {}).await;
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
    async fn first_heartbeat_registers_the_installation_and_later_ones_refresh_it() {
        // Arrange
        let stack = Stack::new().await;
        let issued = issue(&stack, Plan::Starter, |_| {}).await;
        let ring = stack.key_ring().await;
        let signer = stack.signer().await;
        let cmd = beat_cmd(&issued.key, "i-1");
        let beat = |at| heartbeat(&ring, &stack.store, &signer, &cmd, Duration::hours(1), at);
        stack.calls.reset();
        // Act
        let first = beat(NOW).await.expect("first");
        let first_calls = stack.calls.snapshot();
        stack.calls.reset();
        let later = beat(NOW + Duration::minutes(61)).await.expect("second");
        let later_calls = stack.calls.snapshot();
        // Assert
        assert_eq!(first.verdict.code, Code::Valid);
        assert_eq!(first.next_due_at, NOW + Duration::hours(1));
        let inst = later.installation.expect("recorded");
        assert_eq!(inst.first_seen_at, NOW);
        assert_eq!(inst.last_seen_at, NOW + Duration::minutes(61));
        assert_eq!(inst.status, InstallationStatus::Active);
        let (license, _) = stack
            .store
            .license_and_installation(&issued.license.id, &installation("i-1"))
            .await
            .expect("read");
        assert_eq!(
            license.expect("license").active_installations,
            1,
            "one seat, not two"
        );
        // First contact: read, take a seat, record the installation, sign and store its lease.
        // Later (lease still fresh): read, refresh — no signing.
        let calls = |pairs: &[(&str, usize)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        assert_eq!(
            first_calls,
            calls(&[
                ("DynamoDB.BatchGetItem", 1),
                ("DynamoDB.PutItem", 1),
                ("DynamoDB.UpdateItem", 3),
                ("KMS.Sign", 1)
            ])
        );
        assert_eq!(
            later_calls,
            calls(&[("DynamoDB.BatchGetItem", 1), ("DynamoDB.UpdateItem", 1)])
        );
        assert_eq!(
            first.lease, later.lease,
            "the fresh lease is handed out again"
        );
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn concurrent_seat_claims_admit_exactly_the_limit() {
        // Arrange: 24 new installations race for 5 seats.
        let stack = Stack::new().await;
        let issued = issue(&stack, Plan::Enterprise, |c| {
            c.limits.installations = Some(5)
        })
        .await;
        let reports: Vec<HeartbeatReport> = (0..24)
            .map(|i| HeartbeatReport {
                license_id: issued.license.id.clone(),
                installation_id: installation(&format!("node-{i}")),
                version: "1.0.0".into(),
                domain: None,
                gauges: Default::default(),
                at: NOW,
            })
            .collect();
        // Act
        let claims =
            futures::future::join_all(reports.iter().map(|r| stack.store.claim_seat(r, 5))).await;
        // Assert
        let seated = claims
            .iter()
            .filter(|c| matches!(c, Ok(SeatClaim::Seated(_))))
            .count();
        let full = claims
            .iter()
            .filter(|c| matches!(c, Ok(SeatClaim::SeatsFull)))
            .count();
        assert_eq!((seated, full), (5, 19), "{claims:?}");
        let license = stack
            .store
            .license(&issued.license.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(license.active_installations, 5);
    }

    /// The report of one installation ("twin") that several concurrent beats will share.
    fn twin(issued: &Issued) -> HeartbeatReport {
        HeartbeatReport {
            license_id: issued.license.id.clone(),
            installation_id: installation("twin"),
            version: "1.0.0".into(),
            domain: None,
            gauges: Default::default(),
            at: NOW,
        }
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn the_same_installation_beating_concurrently_takes_one_seat() {
        let stack = Stack::new().await;
        let issued = issue(&stack, Plan::Professional, |_| {}).await;
        let report = twin(&issued);
        let claims =
            futures::future::join_all((0..8).map(|_| stack.store.claim_seat(&report, 10))).await;
        assert!(
            claims.iter().all(|c| matches!(c, Ok(SeatClaim::Seated(_)))),
            "{claims:?}"
        );
        let license = stack
            .store
            .license(&issued.license.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(license.active_installations, 1);
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn duplicate_beats_that_momentarily_fill_the_license_still_settle_on_one_seat() {
        // 8 concurrent beats of one installation against 3 seats: the duplicates briefly hold all
        // three seats, so a duplicate may be told INSTALLATION_LIMIT for that beat; the seat count
        // must still settle on exactly one, held by the installation.
        let stack = Stack::new().await;
        let issued = issue(&stack, Plan::Professional, |_| {}).await;
        let report = twin(&issued);
        let claims =
            futures::future::join_all((0..8).map(|_| stack.store.claim_seat(&report, 3))).await;
        assert!(claims.iter().all(Result::is_ok), "{claims:?}");
        assert!(claims.iter().any(|c| matches!(c, Ok(SeatClaim::Seated(_)))));
        let license = stack
            .store
            .license(&issued.license.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(license.active_installations, 1);
        assert!(stack.store.touch(&report).await.expect("touch").is_some());
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn a_signing_and_verifying_function_fetches_each_public_key_once_at_cold_start() {
        // Arrange
        let stack = Stack::new().await;
        let issued = issue(&stack, Plan::Starter, |_| {}).await;
        stack.calls.reset();
        // Act
        let (signer, ring) = shared::adapters::kms::load_signer_and_key_ring(
            &stack.kms,
            TEST_ISSUER,
            std::slice::from_ref(&stack.key_id),
        )
        .await
        .expect("loads");
        // Assert
        assert_eq!(stack.calls.count("KMS.GetPublicKey"), 1);
        assert_eq!(stack.calls.count("KMS."), 1);
        let beat = beat_once(&ring, &stack, &signer, &issued.key, "i-1", NOW).await;
        let lease = beat.lease.expect("a lease");
        assert!(
            ring.verify_lease(lease.token.expose()).is_ok(),
            "signer and ring agree"
        );
    }
}

mod usage {
    //! Usage metering: transactions at the item limit, concurrent reservations, the counter read
    //! inside validate's one round trip, SQS and the dedupe marker item.

    use shared::adapters::sqs::SqsUsageQueue;
    use shared::domain::ports::UsageLedger;
    use shared::domain::{EventId, Feature, InstallationId, LicenseId, Period, Plan, UsageEvent};
    use shared::service::check::Code;
    use shared::service::usage::{
        EventInput, EventStatus, Message, Reservation, process_batch, reserve, submit,
    };
    use shared::service::validate::{ValidateCommand, validate};
    use shared::testing::Stack;
    use time::macros::datetime;
    use time::{Duration, OffsetDateTime};

    const NOW: OffsetDateTime = datetime!(2026-07-15 12:00 UTC);

    /// The processor's production setting: several counters written at once.
    const PARALLELISM: usize = shared::config::DEFAULT_USAGE_GROUP_CONCURRENCY;

    fn feature(name: &str) -> Feature {
        Feature::parse(name).expect("valid feature")
    }

    fn event(license: &LicenseId, id: &str, quantity: u64, at: OffsetDateTime) -> UsageEvent {
        UsageEvent {
            license_id: license.clone(),
            event_id: EventId::parse(id).expect("valid id"),
            feature: feature("workflows"),
            quantity,
            occurred_at: at,
            metadata: None,
        }
    }

    fn message(n: usize, e: &UsageEvent) -> Message {
        Message {
            id: format!("msg-{n}"),
            body: serde_json::to_string(e).expect("json"),
        }
    }

    async fn used(stack: &Stack, license: &LicenseId, period: Period) -> (u64, Vec<u64>) {
        stack
            .store
            .usage(license, &[feature("workflows")], period)
            .await
            .expect("usage")
            .remove(0)
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn a_thousand_events_with_ten_percent_resent_count_exactly_the_distinct_sum() {
        // Arrange: 900 distinct events (quantities 1..=5 over three days), and 100 of them sent again
        // — some in the same batch, most in later batches, as client re-sends and SQS redeliveries.
        let stack = Stack::new().await;
        let issued = stack.issue(Plan::Enterprise, NOW, |_| {}).await;
        let id = &issued.license.id;
        let distinct: Vec<UsageEvent> = (0..900)
            .map(|i| {
                event(
                    id,
                    &format!("evt-{i}"),
                    (i % 5) as u64 + 1,
                    NOW - Duration::days((i % 3) as i64),
                )
            })
            .collect();
        let mut stream = distinct.clone();
        for k in 0..100 {
            stream.insert((k * 9 + 5).min(stream.len()), distinct[k * 7].clone());
        }
        let expected: u64 = distinct.iter().map(|e| e.quantity).sum();
        // Act: batches of 100, as the event source mapping delivers them (BatchSize 100 with a
        // batching window in template.yaml).
        let mut counted = 0;
        let mut duplicates = 0;
        for (b, chunk) in stream.chunks(100).enumerate() {
            let messages: Vec<Message> = chunk
                .iter()
                .enumerate()
                .map(|(i, e)| message(b * 100 + i, e))
                .collect();
            let outcome = process_batch(&stack.store, &messages, NOW, PARALLELISM).await;
            assert!(outcome.failed.is_empty(), "batch {b}: {outcome:?}");
            counted += outcome.counted;
            duplicates += outcome.duplicates;
        }
        // Assert
        let (total, daily) = used(&stack, id, Period::containing(NOW)).await;
        assert_eq!(total, expected);
        assert_eq!((counted, duplicates), (900, 100));
        assert_eq!(
            daily.iter().sum::<u64>(),
            expected,
            "the daily series adds up to the total"
        );
        assert_eq!(daily.len(), 31, "July has 31 days");
        assert!(
            daily[12] > 0 && daily[13] > 0 && daily[14] > 0 && daily[15] == 0,
            "{daily:?}"
        );
    }

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
            used(&stack, &issued.license.id, Period::containing(NOW))
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

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn validate_says_usage_exceeded_once_the_limit_is_reached_and_valid_again_next_month() {
        // Arrange: a limit of 5, and 6 units reported asynchronously (reports may pass the limit).
        let stack = Stack::new().await;
        let issued = stack
            .issue(Plan::Starter, NOW, |c| {
                c.limits.workflows_per_month = Some(5)
            })
            .await;
        let ring = stack.key_ring().await;
        let cmd = |f: &str| ValidateCommand {
            key: issued.key.clone(),
            installation_id: InstallationId::parse("i-1").expect("valid"),
            domain: None,
            feature: Some(feature(f)),
        };
        let code = |c: ValidateCommand, at| {
            let (ring, store) = (&ring, &stack.store);
            async move {
                validate(ring, store, &c, at)
                    .await
                    .expect("validate")
                    .verdict
                    .code
            }
        };
        let id = &issued.license.id;
        let msgs: Vec<Message> = (0..3)
            .map(|i| message(i, &event(id, &format!("u{i}"), 2, NOW)))
            .collect();
        assert_eq!(code(cmd("workflows"), NOW).await, Code::Valid);
        // Act
        stack.calls.reset();
        process_batch(&stack.store, &msgs, NOW, PARALLELISM).await;
        // Assert: counted past the limit, never dropped; validate refuses the feature, not the rest.
        assert_eq!(used(&stack, id, Period::containing(NOW)).await.0, 6);
        stack.calls.reset();
        assert_eq!(code(cmd("workflows"), NOW).await, Code::UsageExceeded);
        assert_eq!(
            stack.calls.count("DynamoDB."),
            1,
            "counter read in the same round trip"
        );
        assert_eq!(code(cmd("api_access"), NOW).await, Code::Valid);
        let next_month = Period::containing(NOW).end() + Duration::hours(1);
        assert_eq!(code(cmd("workflows"), next_month).await, Code::Valid);
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn submit_rejects_unentitled_features_per_event_and_reports_queue_failures_honestly() {
        let stack = Stack::new().await;
        let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
        let ring = stack.key_ring().await;
        let sqs = aws_sdk_sqs::Client::new(&shared::testing::emulator().await);
        let queue_url = sqs
            .create_queue()
            .queue_name(shared::testing::unique("usage"))
            .send()
            .await
            .expect("queue")
            .queue_url
            .expect("url");
        let input = |id: &str, f: &str| EventInput {
            event_id: EventId::parse(id).expect("valid"),
            feature: feature(f),
            quantity: 1,
            occurred_at: None,
            metadata: None,
        };
        // A working queue: one accepted, one rejected (starter has no analytics).
        let queue = SqsUsageQueue::new(sqs.clone(), &queue_url);
        let mut with_meta = input("a", "workflows");
        with_meta.metadata = serde_json::json!({"run": "wf-42"}).as_object().cloned();
        let submitted = submit(
            &ring,
            &stack.store,
            &queue,
            &issued.key,
            vec![with_meta, input("b", "analytics")],
            NOW,
        )
        .await
        .map_err(|_| "submit failed")
        .expect("submitted");
        assert_eq!(submitted.statuses[0].1, EventStatus::Accepted);
        assert!(
            matches!(&submitted.statuses[1].1, EventStatus::Rejected(v) if v.code == Code::FeatureNotEntitled)
        );
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let bodies: Vec<UsageEvent> = received
            .messages
            .unwrap_or_default()
            .iter()
            .filter_map(|m| serde_json::from_str(m.body.as_deref()?).ok())
            .collect();
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0].event_id.as_str(), "a");
        assert_eq!(
            bodies[0].occurred_at, NOW,
            "occurredAt defaults to the time of receipt"
        );
        // Metadata travels with the event and is kept on its marker for billing reconciliation.
        assert_eq!(
            bodies[0].metadata.as_ref().and_then(|m| m.get("run")),
            Some(&serde_json::json!("wf-42"))
        );
        process_batch(&stack.store, &[message(0, &bodies[0])], NOW, PARALLELISM).await;
        let marker = stack
            .dynamo
            .get_item()
            .table_name(stack.store.table())
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!(
                    "EVENT#{}#a",
                    issued.license.id
                )),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("EVENT".into()),
            )
            .send()
            .await
            .expect("get marker")
            .item
            .expect("marker exists");
        let kept = marker
            .get("metadata")
            .and_then(|v| v.as_s().ok())
            .expect("metadata kept");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(kept).expect("json"),
            serde_json::json!({"run": "wf-42"})
        );
        // A queue that does not exist: nothing is silently half-accepted.
        let broken = SqsUsageQueue::new(sqs, format!("{queue_url}-missing"));
        let submitted = submit(
            &ring,
            &stack.store,
            &broken,
            &issued.key,
            vec![input("c", "workflows")],
            NOW,
        )
        .await
        .map_err(|_| "submit failed")
        .expect("submitted");
        assert!(submitted.any_failed());
        assert_eq!(submitted.statuses[0].1, EventStatus::Failed);
    }
}

mod lifecycle {
    //! The lifecycle job: notices through SNS to a subscriber under concurrent runs, and an
    //! undecodable item in the index.

    use serde_json::Value;

    use shared::domain::ports::{CustomerDirectory, EventPublisher, LicenseReader};
    use shared::domain::{LicenseStatus, Plan};
    use shared::service::admin::Term;

    use shared::service::lifecycle::{Job, JobReport, Settings, run};
    use shared::testing::{Inbox, Issued, Stack};
    use time::macros::datetime;
    use time::{Duration, OffsetDateTime};

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn types(events: &[Value]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let threshold = e["threshold"]
                    .as_u64()
                    .map(|t| format!("@{t}"))
                    .unwrap_or_default();
                format!("{}{threshold}", e["type"].as_str().unwrap_or("?"))
            })
            .collect()
    }

    async fn run_ok<P: EventPublisher>(
        stack: &Stack,
        publisher: &P,
        jobs: &[Job],
        at: OffsetDateTime,
        settings: Settings,
    ) -> Vec<JobReport> {
        run(&stack.store, publisher, jobs, at, settings)
            .await
            .into_iter()
            .map(|r| r.expect("job ran"))
            .collect()
    }

    async fn issue_expiring(stack: &Stack, plan: Plan, expires_at: OffsetDateTime) -> Issued {
        stack
            .issue(plan, NOW, |c| c.term = Term::Until(expires_at))
            .await
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn a_license_walking_to_its_expiry_gets_three_warnings_one_expiry_and_one_audit_entry() {
        // Arrange: a starter license (no expiry grace) expiring 31 days from now.
        let stack = Stack::new().await;
        let inbox = Inbox::new().await;
        let expires = NOW + Duration::days(31);
        let issued = issue_expiring(&stack, Plan::Starter, expires).await;
        let jobs = [Job::ExpiryWarnings, Job::Expiry];
        let settings = Settings::default();
        // Act: at each step the job runs twice at once, then three more times.
        for days_left in [31, 30, 8, 7, 2, 1, 0, -1] {
            let at = expires - Duration::days(days_left);
            let (a, b) = futures::join!(
                run(&stack.store, &inbox.publisher, &jobs, at, settings),
                run(&stack.store, &inbox.publisher, &jobs, at, settings),
            );
            assert!(a.iter().chain(&b).all(Result::is_ok));
            for minute in 1..4 {
                run_ok(
                    &stack,
                    &inbox.publisher,
                    &jobs,
                    at + Duration::minutes(minute),
                    settings,
                )
                .await;
            }
        }
        // Assert
        let events = inbox.drain().await;
        assert_eq!(
            types(&events),
            [
                "license.expiry_warning@30",
                "license.expiry_warning@7",
                "license.expiry_warning@1",
                "license.expired",
            ],
            "{events:#?}"
        );
        let expired = &events[3];
        assert_eq!(expired["licenseId"], issued.license.id.as_str());
        assert_eq!(expired["customerId"], issued.customer.id.to_string());
        assert_eq!(expired["email"], issued.customer.email);
        let ids: std::collections::BTreeSet<&str> = events
            .iter()
            .filter_map(|e| e["idempotencyId"].as_str())
            .collect();
        assert_eq!(ids.len(), 4, "each notice has its own idempotency id");
        let license = stack
            .store
            .license(&issued.license.id)
            .await
            .expect("read")
            .expect("license");
        assert_eq!(license.status, LicenseStatus::Expired);
        let (_, details) = stack
            .store
            .licenses_of(&issued.customer.id)
            .await
            .map(|l| ((), l))
            .expect("lookup");
        let expiries: Vec<_> = details[0]
            .audit
            .iter()
            .filter(|e| e.action == "license.expired")
            .collect();
        assert_eq!(expiries.len(), 1, "{:?}", details[0].audit);
        assert_eq!(
            (expiries[0].from, expiries[0].to),
            (Some(LicenseStatus::Active), Some(LicenseStatus::Expired))
        );
        assert_eq!(expiries[0].actor.as_str(), "system:lifecycle");
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn an_undecodable_license_item_is_skipped_and_the_sweep_goes_on() {
        use aws_sdk_dynamodb::types::AttributeValue::S;
        // Arrange: a broken item sorted before a good license in the status index.
        let stack = Stack::new().await;
        let inbox = Inbox::new().await;
        let good = issue_expiring(&stack, Plan::Starter, NOW + Duration::days(7)).await;
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
            &stack,
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
    //! Workflow executions: AWS calls per execution, concurrent metering on the real counter.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use nectar_workflow::{
        Env, HttpCaller, HttpError, HttpRequest, HttpResponse, StatisticalAnalytics,
    };
    use serde_json::{Value, json};
    use shared::domain::Plan;
    use shared::domain::ports::UsageLedger;
    use shared::domain::workflow::{ExecutionId, WorkflowPolicy};
    use shared::service::admin::Term;

    use shared::service::workflows::{
        ExecuteCommand, Refusal, execute_workflow, execution_of, workflows_feature,
    };
    use shared::testing::{Issued, Stack};
    use shared::token::KeyRing;
    use time::OffsetDateTime;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00:10 UTC);

    /// Counts outbound calls; answers 200 `{"ok": true}`.
    #[derive(Default)]
    struct CountingHttp(AtomicUsize);

    #[async_trait]
    impl HttpCaller for CountingHttp {
        async fn call(&self, _req: HttpRequest) -> Result<HttpResponse, HttpError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(HttpResponse {
                status: 200,
                headers: Default::default(),
                body: br#"{"ok": true}"#.to_vec(),
            })
        }
    }

    fn cmd(issued: &Issued, workflow: Value, data: Value) -> ExecuteCommand {
        ExecuteCommand {
            key: issued.key.clone(),
            workflow_id: "wf-1".into(),
            workflow,
            data,
            execution_id: ExecutionId::from_uuid(uuid::Uuid::now_v7()),
        }
    }

    async fn used(stack: &Stack, issued: &Issued) -> u64 {
        stack
            .store
            .usage(
                &issued.license.id,
                &[workflows_feature()],
                shared::domain::Period::containing(NOW),
            )
            .await
            .expect("usage")[0]
            .0
    }

    struct Harness {
        stack: Stack,
        ring: KeyRing,
        http: CountingHttp,
    }

    impl Harness {
        async fn new() -> Self {
            let stack = Stack::new().await;
            let ring = stack.key_ring().await;
            Self {
                stack,
                ring,
                http: CountingHttp::default(),
            }
        }

        async fn issue(&self, plan: Plan, limit: Option<u64>) -> Issued {
            self.stack
                .issue(plan, NOW, |c| {
                    c.term = Term::Days(365);
                    c.limits.workflows_per_month = limit;
                })
                .await
        }

        async fn run_with(
            &self,
            policy: impl Fn(Plan) -> WorkflowPolicy,
            c: ExecuteCommand,
            at: OffsetDateTime,
        ) -> Result<Value, Refusal> {
            let env = Env {
                http: &self.http,
                analytics: &StatisticalAnalytics,
            };
            execute_workflow(&self.ring, &self.stack.store, &env, policy, c, at)
                .await
                .map(|e| e.body)
        }

        async fn run(&self, c: ExecuteCommand) -> Result<Value, Refusal> {
            self.run_with(Plan::workflow_policy, c, NOW).await
        }
    }

    /// Orders of at least 100 take the express lane and a 10 % discount; the rest are grouped.
    fn order_workflow() -> Value {
        json!({"nodes": [
            {"id": "total", "type": "transform",
             "params": {"expr": "{customer: .customer, total: ([.items[] | .price * .qty] | add)}"},
             "next": "big"},
            {"id": "big", "type": "condition", "params": {"expr": ".total >= 100"},
             "branches": {"true": "discount", "false": "standard"}},
            {"id": "discount", "type": "transform",
             "params": {"expr": ". + {total: (.total * 0.9), lane: \"express\"}"}, "next": "label"},
            {"id": "standard", "type": "set", "params": {"values": {"lane": "standard"}},
             "next": "label"},
            {"id": "label", "type": "merge", "params": {"mode": "first"}, "next": "done"},
            {"id": "done", "type": "output",
             "params": {"expr": "{customer, lane, total, summary: \"\\(.customer): \\(.lane)\"}"}}
        ]})
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn a_branching_workflow_gives_the_exact_output_is_counted_once_and_can_be_read_back() {
        // Arrange
        let h = Harness::new().await;
        let issued = h.issue(Plan::Professional, None).await;
        let data = json!({"customer": "acme", "items": [
            {"price": 40, "qty": 2}, {"price": 25, "qty": 1}
        ]});
        let c = cmd(&issued, order_workflow(), data);
        let id = c.execution_id;
        h.stack.calls.reset();
        // Act
        let body = h.run(c).await.expect("runs");
        let calls = h.stack.calls.snapshot();
        // Assert: 105 ≥ 100 → express, 105 × 0.9 = 94.5.
        assert_eq!(body["status"], "succeeded", "{body}");
        assert_eq!(
            body["output"],
            json!({"customer": "acme", "lane": "express", "total": 94.5,
                   "summary": "acme: express"})
        );
        let ran: Vec<(&str, &str)> = body["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| {
                (
                    s["nodeId"].as_str().unwrap_or(""),
                    s["status"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert!(ran.contains(&("discount", "succeeded")), "{ran:?}");
        assert_eq!(
            (&body["steps"][0]["nodeId"], &body["steps"][0]["type"]),
            (&json!("total"), &json!("transform")),
            "steps name their node and its type"
        );
        assert!(ran.contains(&("standard", "skipped")), "{ran:?}");
        assert_eq!(
            body["usage"],
            json!({"used": 1, "limit": 10_000, "remaining": 9_999})
        );
        assert_eq!(used(&h.stack, &issued).await, 1);
        // One license read, one rate window, one reservation, one record; no KMS.
        let expected: std::collections::BTreeMap<String, usize> = [
            ("DynamoDB.GetItem", 1),
            ("DynamoDB.PutItem", 1),
            ("DynamoDB.UpdateItem", 2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(calls, expected);
        let read = execution_of(&h.ring, &h.stack.store, &issued.key, &id, NOW)
            .await
            .expect("recorded");
        assert_eq!(read, body);
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn thirty_concurrent_executions_with_ten_left_run_exactly_ten() {
        // Arrange: a limit of 12, 2 already used.
        let h = Harness::new().await;
        let issued = h.issue(Plan::Professional, Some(12)).await;
        h.stack
            .store
            .reserve(&issued.license.id, &workflows_feature(), NOW, 2, 12)
            .await
            .expect("reserve");
        let workflow = json!({"nodes": [{"id": "o", "type": "output", "params": {"expr": ".n"}}]});
        // Act
        let runs = futures::future::join_all(
            (0..30).map(|n| h.run(cmd(&issued, workflow.clone(), json!({ "n": n })))),
        )
        .await;
        // Assert
        let ok = runs.iter().filter(|r| r.is_ok()).count();
        let exceeded = runs
            .iter()
            .filter(|r| matches!(r, Err(Refusal::UsageExceeded { limit: 12, .. })))
            .count();
        assert_eq!((ok, exceeded), (10, 20));
        assert_eq!(used(&h.stack, &issued).await, 12);
    }
}
