//! Test support (feature `test-util`): clients for the emulator that `make test` starts, fresh
//! per-test tables and keys, and an SDK interceptor that counts AWS calls per operation; and
//! [`MemoryStack`], the same fixtures on the in-memory adapters for tests that need no emulator.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::adapters::dynamo::{DynamoStore, schema};
use crate::adapters::kms::KmsSigner;
use crate::token::KeyRing;

/// Counts SDK calls by `Service.Operation` (e.g. `DynamoDB.BatchGetItem`).
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    calls: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl CallCounter {
    /// Every call so far, by `Service.Operation`.
    pub fn snapshot(&self) -> BTreeMap<String, usize> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Forgets the calls so far.
    pub fn reset(&self) {
        if let Ok(mut c) = self.calls.lock() {
            c.clear();
        }
    }

    /// Calls whose name starts with `prefix` (e.g. `KMS.`); the derived `.items` / `.failed`
    /// tallies are not calls and are left out.
    pub fn count(&self, prefix: &str) -> usize {
        count_calls(&self.snapshot(), prefix)
    }
}

/// In a [`CallCounter::snapshot`], the calls whose name starts with `prefix`, as
/// [`CallCounter::count`] counts them.
pub fn count_calls(calls: &BTreeMap<String, usize>, prefix: &str) -> usize {
    calls
        .iter()
        .filter(|(k, _)| k.starts_with(prefix) && !k.ends_with(".items") && !k.ends_with(".failed"))
        .map(|(_, v)| v)
        .sum()
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg
            .load::<Metadata>()
            .map(|m| format!("{}.{}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown".into());
        // Items written by a transaction count separately: that is the write cost, not the call.
        let items = context
            .input()
            .downcast_ref::<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput>()
            .map(|i| i.transact_items().len());
        if let Ok(mut c) = self.calls.lock() {
            if let Some(n) = items {
                *c.entry(format!("{name}.items")).or_default() += n;
            }
            *c.entry(name).or_default() += 1;
        }
        cfg.interceptor_state().store_put(Attempted {
            items: items.unwrap_or(0),
        });
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Failed calls (e.g. a transaction cancelled by a condition) wrote nothing.
        if matches!(context.output_or_error(), Some(Err(_))) {
            let name = cfg
                .load::<Metadata>()
                .map(|m| format!("{}.{}", m.service(), m.name()))
                .unwrap_or_else(|| "unknown".into());
            let items = cfg.load::<Attempted>().map(|a| a.items).unwrap_or(0);
            if let Ok(mut c) = self.calls.lock() {
                *c.entry(format!("{name}.failed")).or_default() += 1;
                if items > 0 {
                    *c.entry(format!("{name}.failed.items")).or_default() += items;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Attempted {
    items: usize,
}

impl aws_smithy_types::config_bag::Storable for Attempted {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// A unique, readable resource name for one test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The emulator-backed SDK config; panics with a clear message when `AWS_ENDPOINT_URL` is unset,
/// because these tests are meant to run under `make test`, which starts the emulator.
pub async fn emulator() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the tests with `make test`, which starts the emulator"
    );
    // The emulator takes any credentials; fixed ones keep the SDK from probing the instance
    // metadata service when the environment has none.
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "emulator",
        ))
        .load()
        .await
}

/// A fresh table, a fresh signing key and clients that count their calls.
pub struct Stack {
    /// DynamoDB client (counted).
    pub dynamo: aws_sdk_dynamodb::Client,
    /// KMS client (counted).
    pub kms: aws_sdk_kms::Client,
    /// Every AWS call made through the two clients.
    pub calls: CallCounter,
    /// The store on the fresh table.
    pub store: DynamoStore,
    /// The fresh license signing key's id.
    pub key_id: String,
    /// The fresh lease signing key's id.
    pub lease_key_id: String,
}

/// The issuer used by test stacks.
pub const TEST_ISSUER: &str = "nectar-test";

impl Stack {
    /// Creates a fresh table and ECC P-256 signing key in the emulator.
    pub async fn new() -> Self {
        let sdk = emulator().await;
        let calls = CallCounter::default();
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(calls.clone())
                .build(),
        );
        let kms = aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(&sdk)
                .interceptor(calls.clone())
                .build(),
        );
        let table = unique("licenses");
        schema::ensure_table(&dynamo, &table)
            .await
            .expect("create test table");
        let key_id = create_signing_key(&kms).await;
        let lease_key_id = create_signing_key(&kms).await;
        calls.reset();
        Self {
            store: DynamoStore::new_with_table(dynamo.clone(), table),
            dynamo,
            kms,
            calls,
            key_id,
            lease_key_id,
        }
    }

    /// A signer for the stack's lease key.
    pub async fn lease_signer(&self) -> KmsSigner {
        KmsSigner::connect(self.kms.clone(), &self.lease_key_id)
            .await
            .expect("connect lease signer")
    }

    /// A signer for the stack's license key.
    pub async fn signer(&self) -> KmsSigner {
        KmsSigner::connect(self.kms.clone(), &self.key_id)
            .await
            .expect("connect signer")
    }

    /// The key ring trusting the stack's license key and lease key.
    pub async fn key_ring(&self) -> KeyRing {
        crate::adapters::kms::load_lease_signer_and_key_ring(
            &self.kms,
            TEST_ISSUER,
            std::slice::from_ref(&self.key_id),
            &self.lease_key_id,
        )
        .await
        .expect("load key ring")
        .1
    }
}

/// Creates an ECC_NIST_P256 SIGN_VERIFY key and returns its id.
pub async fn create_signing_key(kms: &aws_sdk_kms::Client) -> String {
    kms.create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .description("nectar test signing key")
        .send()
        .await
        .expect("create KMS key")
        .key_metadata
        .map(|m| m.key_id)
        .expect("key metadata")
}

/// A license issued on a test stack, with its owner and key.
pub struct Issued {
    /// The owner.
    pub customer: crate::domain::Customer,
    /// The license as stored.
    pub license: crate::domain::License,
    /// Its signed key.
    pub key: crate::token::LicenseKey,
}

impl Stack {
    /// Creates a customer and issues them a 30-day `plan` license at `now`, adjusted by `tweak`.
    pub async fn issue(
        &self,
        plan: crate::domain::Plan,
        now: time::OffsetDateTime,
        tweak: impl FnOnce(&mut crate::service::admin::IssueCommand),
    ) -> Issued {
        let issued = issue_on(&self.store, &self.signer().await, plan, now, tweak).await;
        self.calls.reset();
        issued
    }
}

/// Creates a customer on `store` and issues them a 30-day `plan` license at `now`, signed by
/// `signer` and adjusted by `tweak`: what both stacks' `issue` do.
pub async fn issue_on<S>(
    store: &S,
    signer: &dyn crate::domain::ports::TokenSigner,
    plan: crate::domain::Plan,
    now: time::OffsetDateTime,
    tweak: impl FnOnce(&mut crate::service::admin::IssueCommand),
) -> Issued
where
    S: crate::domain::ports::CustomerDirectory + crate::domain::ports::LicenseWriter,
{
    use crate::domain::ports::RandomIds;
    use crate::domain::{Actor, LimitOverrides};
    use crate::service::admin::{IssueCommand, NewCustomer, Term, create_customer, issue_license};

    let customer = create_customer(
        store,
        &RandomIds,
        NewCustomer {
            name: "Acme".into(),
            email: "ops@acme.com".into(),
        },
        Actor::system("test"),
        now,
    )
    .await
    .expect("customer");
    let mut cmd = IssueCommand {
        customer_id: customer.id,
        plan,
        term: Term::Days(30),
        features: None,
        limits: LimitOverrides::default(),
        domain_restrictions: Vec::new(),
        contract: Default::default(),
    };
    tweak(&mut cmd);
    let (license, key) = issue_license(
        store,
        signer,
        &RandomIds,
        TEST_ISSUER,
        cmd,
        crate::domain::Principal::bootstrap().actor(),
        now,
    )
    .await
    .expect("issue");
    Issued {
        customer,
        license,
        key,
    }
}

/// The in-memory counterpart of [`Stack`]: the memory adapters behind every store port, a usage
/// queue and an events topic a test can drain (and make fail), and a local signing key with the
/// ring that trusts it — no emulator, so a service rule is tested in milliseconds.
pub struct MemoryStack {
    /// Every store port.
    pub store: crate::adapters::memory::MemoryStore,
    /// The usage queue.
    pub queue: crate::adapters::memory::MemoryQueue,
    /// The events topic.
    pub publisher: crate::adapters::memory::MemoryPublisher,
    /// The license signing key (as KMS would sign).
    pub signer: crate::adapters::local::LocalSigner,
    /// The lease signing key.
    pub lease_signer: crate::adapters::local::LocalSigner,
    /// The ring trusting both keys, each for its kind, with issuer [`TEST_ISSUER`].
    pub ring: KeyRing,
}

impl Default for MemoryStack {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStack {
    /// Empty adapters and a fresh key.
    pub fn new() -> Self {
        let signer = crate::adapters::local::LocalSigner::random("memory-test-key");
        let lease_signer = crate::adapters::local::LocalSigner::random("memory-lease-key");
        let ring = ring_of(&signer, &lease_signer);
        Self {
            store: Default::default(),
            queue: Default::default(),
            publisher: Default::default(),
            signer,
            lease_signer,
            ring,
        }
    }

    /// The signer (a copy of [`MemoryStack::signer`]), as [`Stack::signer`] gives one.
    pub async fn signer(&self) -> crate::adapters::local::LocalSigner {
        self.signer.clone()
    }

    /// The lease signer, as [`Stack::lease_signer`] gives one.
    pub async fn lease_signer(&self) -> crate::adapters::local::LocalSigner {
        self.lease_signer.clone()
    }

    /// A ring trusting the stack's keys, as [`Stack::key_ring`] gives one.
    pub async fn key_ring(&self) -> KeyRing {
        ring_of(&self.signer, &self.lease_signer)
    }

    /// Creates a customer and issues them a 30-day `plan` license at `now`, adjusted by `tweak`.
    pub async fn issue(
        &self,
        plan: crate::domain::Plan,
        now: time::OffsetDateTime,
        tweak: impl FnOnce(&mut crate::service::admin::IssueCommand),
    ) -> Issued {
        issue_on(&self.store, &self.signer, plan, now, tweak).await
    }
}

/// A signer that counts its signatures: the memory layer's counterpart of counting `KMS.Sign`
/// calls with [`CallCounter`].
pub struct CountingSigner<S> {
    inner: S,
    signed: std::sync::atomic::AtomicUsize,
}

impl<S> CountingSigner<S> {
    /// Counts what `inner` signs.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            signed: Default::default(),
        }
    }

    /// Signatures made so far.
    pub fn count(&self) -> usize {
        self.signed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl<S: crate::domain::ports::TokenSigner> crate::domain::ports::TokenSigner for CountingSigner<S> {
    fn kid(&self) -> &str {
        self.inner.kid()
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, crate::token::SignError> {
        self.signed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.sign(message).await
    }
}

fn ring_of(
    signer: &crate::adapters::local::LocalSigner,
    lease_signer: &crate::adapters::local::LocalSigner,
) -> KeyRing {
    use crate::domain::ports::TokenSigner;
    let der = signer.spki_der();
    let mut ring =
        KeyRing::from_spki_der(TEST_ISSUER, [(signer.kid(), der.as_slice())]).expect("a P-256 key");
    let lease_der = lease_signer.spki_der();
    ring.add(
        crate::token::TokenKind::Lease,
        [(lease_signer.kid(), lease_der.as_slice())],
    )
    .expect("a P-256 key");
    ring
}

/// The admin token handler tests authenticate with.
pub const TEST_ADMIN_TOKEN: &str = "test-admin-token";

/// An [`AdminAuth`](crate::config::AdminAuth) accepting [`TEST_ADMIN_TOKEN`].
pub fn admin_auth() -> crate::config::AdminAuth {
    crate::config::AdminAuth::from_hex_sha256(&crate::config::AdminAuth::hash_token(
        TEST_ADMIN_TOKEN,
    ))
    .expect("valid hash")
}

/// A request from an API Gateway v2 (HTTP API) event fixture, after replacing placeholders such
/// as `__LICENSE_KEY__` (JSON-escaped) in the fixture text.
pub fn apigw_v2(fixture: &str, replacements: &[(&str, &str)]) -> lambda_http::Request {
    let mut text = fixture.to_owned();
    for (from, to) in replacements {
        let escaped = serde_json::to_string(to).expect("string");
        // Inside a JSON string (the body is one), the value goes in without its outer quotes.
        text = text.replace(from, &escaped[1..escaped.len() - 1]);
    }
    lambda_http::request::from_str(&text).expect("a valid API Gateway v2 event")
}

/// A request as a local router (`cargo lambda watch`) delivers it: matched by method and path
/// (no route key), with an optional bearer token and JSON body.
pub fn local_request(
    method: &str,
    path_and_query: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> lambda_http::Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:9000{path_and_query}"))
        .header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let request = builder
        .body(match body {
            Some(b) => lambda_http::Body::Text(b.to_owned()),
            None => lambda_http::Body::Empty,
        })
        .expect("request");
    // Query parameters reach handlers through lambda_http's extension, as API Gateway's do.
    let query: std::collections::HashMap<String, Vec<String>> = path_and_query
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .fold(Default::default(), |mut m, (k, v)| {
            m.entry(k.to_owned()).or_default().push(v.to_owned());
            m
        });
    lambda_http::RequestExt::with_query_string_parameters(request, query)
}

/// The response body as JSON.
pub fn body_json(response: &lambda_http::Response<lambda_http::Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).expect("a JSON body")
}

/// An SNS topic with an SQS queue subscribed (raw delivery): what a subscriber would receive.
pub struct Inbox {
    /// Publishes to the topic.
    pub publisher: crate::adapters::sns::SnsPublisher,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Inbox {
    /// A fresh topic with its inbox.
    pub async fn new() -> Self {
        let sns = aws_sdk_sns::Client::new(&emulator().await);
        let topic = sns
            .create_topic()
            .name(unique("events"))
            .send()
            .await
            .expect("topic")
            .topic_arn
            .expect("arn");
        Self::subscribe(&topic).await
    }

    /// An inbox subscribed to the existing topic `topic`.
    pub async fn subscribe(topic: &str) -> Self {
        let sdk = emulator().await;
        let sns = aws_sdk_sns::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("inbox"))
            .send()
            .await
            .expect("queue")
            .queue_url
            .expect("url");
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("attributes")
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("queue arn");
        sns.subscribe()
            .topic_arn(topic)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .expect("subscribe");
        Self {
            publisher: crate::adapters::sns::SnsPublisher::new(sns, topic),
            sqs,
            queue_url,
        }
    }

    /// Every message delivered so far (removed from the queue), as JSON.
    pub async fn drain(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive");
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(serde_json::from_str(m.body().unwrap_or("null")).expect("JSON body"));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

/// A store that must never be reached: every call panics. Handler tests give it to prove that a
/// request is refused (bad input, no credentials) before any storage access — the memory layer's
/// counterpart of asserting zero AWS calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct Untouchable;

fn untouched(what: &str) -> ! {
    panic!("the store was reached ({what}); this request must be refused before any access")
}

#[async_trait::async_trait]
impl crate::domain::ports::LicenseReader for Untouchable {
    async fn snapshot(
        &self,
        _: &crate::domain::LicenseId,
        _: &crate::domain::InstallationId,
        _: Option<(&crate::domain::Feature, crate::domain::Period)>,
    ) -> Result<crate::domain::ports::Snapshot, crate::domain::StoreError> {
        untouched("snapshot")
    }

    async fn license(
        &self,
        _: &crate::domain::LicenseId,
    ) -> Result<Option<crate::domain::License>, crate::domain::StoreError> {
        untouched("license")
    }
}

#[async_trait::async_trait]
impl crate::domain::ports::LicenseWriter for Untouchable {
    async fn create_license(
        &self,
        _: &crate::domain::License,
        _: &crate::domain::AuditEntry,
    ) -> Result<(), crate::domain::StoreError> {
        untouched("create_license")
    }

    async fn set_status(
        &self,
        _: &crate::domain::LicenseId,
        _: crate::domain::LicenseStatus,
        _: crate::domain::LicenseStatus,
        _: &crate::domain::AuditEntry,
    ) -> Result<bool, crate::domain::StoreError> {
        untouched("set_status")
    }

    async fn renew(
        &self,
        _: &crate::domain::LicenseId,
        _: crate::domain::LicenseStatus,
        _: crate::domain::LicenseStatus,
        _: time::OffsetDateTime,
        _: &crate::domain::AuditEntry,
    ) -> Result<bool, crate::domain::StoreError> {
        untouched("renew")
    }
}

#[async_trait::async_trait]
impl crate::domain::ports::OperatorDirectory for Untouchable {
    async fn create_operator(
        &self,
        _: &crate::domain::Operator,
        _: &crate::domain::AuditEntry,
    ) -> Result<crate::domain::ports::OperatorCreated, crate::domain::StoreError> {
        untouched("create_operator")
    }

    async fn credential(
        &self,
        _: &crate::domain::TokenHash,
    ) -> Result<Option<crate::domain::OperatorCredential>, crate::domain::StoreError> {
        untouched("credential")
    }

    async fn operator(
        &self,
        _: &crate::domain::OperatorId,
    ) -> Result<Option<crate::domain::Operator>, crate::domain::StoreError> {
        untouched("operator")
    }

    async fn operators(
        &self,
        _: Option<&crate::domain::OperatorId>,
        _: usize,
    ) -> Result<crate::domain::ports::SweepPage<crate::domain::Operator>, crate::domain::StoreError>
    {
        untouched("operators")
    }

    async fn rotate_operator_token(
        &self,
        _: &crate::domain::Operator,
        _: &crate::domain::TokenHash,
        _: &crate::domain::AuditEntry,
    ) -> Result<bool, crate::domain::StoreError> {
        untouched("rotate_operator_token")
    }

    async fn disable_operator(
        &self,
        _: &crate::domain::Operator,
        _: &crate::domain::AuditEntry,
    ) -> Result<bool, crate::domain::StoreError> {
        untouched("disable_operator")
    }

    async fn operator_audit(
        &self,
        _: &crate::domain::OperatorId,
        _: Option<&str>,
        _: usize,
    ) -> Result<crate::domain::ports::AuditPage, crate::domain::StoreError> {
        untouched("operator_audit")
    }
}

/// Creates an active operator named `name` with `role` on `store` (as the bootstrap operator
/// would) and returns it with its token.
pub async fn operator_on<S>(
    store: &S,
    name: &str,
    role: crate::domain::Role,
) -> (crate::domain::Operator, crate::domain::OperatorToken)
where
    S: crate::domain::ports::OperatorDirectory + ?Sized,
{
    crate::service::operators::create_operator(
        store,
        &crate::domain::ports::RandomIds,
        crate::service::operators::NewOperator {
            name: crate::domain::OperatorName::parse(name).expect("a valid operator name"),
            email: None,
            role,
        },
        crate::domain::Principal::bootstrap().actor(),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .expect("create operator")
}

/// A clock stopped at one instant, for handler tests that need a known "now".
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub time::OffsetDateTime);

impl crate::domain::ports::Clock for FixedClock {
    fn now(&self) -> time::OffsetDateTime {
        self.0
    }
}

/// An endpoint that accepts connections and never answers — a hung dependency (a frozen
/// emulator, a black-holed network path). The listener lives as long as the process.
pub async fn hanging_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            // Keep the connection open and silent.
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// A DynamoDB client for `endpoint` with the production timeouts and retries of `deadline`
/// (what the functions get from [`crate::aws::sdk_config_for`]).
pub fn dynamo_client(endpoint: &str, deadline: crate::aws::Deadline) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .timeout_config(deadline.timeouts())
        .retry_config(deadline.retry())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An SQS client for `endpoint` with the production timeouts and retries of `deadline`.
pub fn sqs_client(endpoint: &str, deadline: crate::aws::Deadline) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .timeout_config(deadline.timeouts())
        .retry_config(deadline.retry())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}
