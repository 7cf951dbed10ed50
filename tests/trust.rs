//! End-to-end: installation trust against the local stack — the rotation walk (root → endorsed
//! signing key → a new key endorsed → an endorsement that ends), offline activation through the
//! stack's own lease key, and the server refusing tokens made with the wrong key, the wrong type
//! or a malleated signature.
//!
//! Rotation here never touches the stack's running functions (other tests share them): new lease
//! keys are made in the emulator, endorsed with the stack's root key into the stack's table (so
//! the real JWKS function publishes them), and a relay in front of the real server hands the
//! agent leases signed by them — what the heartbeat function does after a rotation.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use e2e::Api;
use nectar_client::server::{
    HeartbeatRequest, HeartbeatResponse, UsageOutcome, UsageRequest, ValidateRequest,
    ValidateResponse,
};
use nectar_client::token::{TokenError, TrustRoots};
use nectar_client::{
    ClientConfig, ClientError, Decision, HttpLicenseServer, Jwks, LicenseClient, LicenseServer,
    ManualClock, NetError,
};
use reqwest::StatusCode;
use serde_json::json;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::kms::{KmsSigner, public_key};
use shared::domain::ports::{EndorsementRegistry, StoredEndorsement};
use shared::testing::{create_signing_key, emulator};
use shared::token::{TokenKind, sign_endorsement, sign_jwt};

const DAY: i64 = 86_400;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run with `make test`"))
}

fn roots() -> TrustRoots {
    let jwks: Jwks = serde_json::from_str(
        &std::fs::read_to_string(env("NECTAR_E2E_ROOT_JWKS")).expect("root JWKS"),
    )
    .expect("json");
    TrustRoots::from_jwks(&jwks).expect("a root key")
}

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nectar-e2e-trust-{label}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The stack's KMS, table and root key, as the operator's admin command holds them.
struct Operator {
    kms: aws_sdk_kms::Client,
    store: DynamoStore,
}

impl Operator {
    async fn new() -> Self {
        let sdk = emulator().await;
        Self {
            kms: aws_sdk_kms::Client::new(&sdk),
            store: DynamoStore::new_with_table(
                aws_sdk_dynamodb::Client::new(&sdk),
                env("NECTAR_E2E_TABLE"),
            ),
        }
    }

    /// A new lease key, endorsed by the stack's root until `exp` and stored for the JWKS.
    async fn new_endorsed_lease_key(&self, now: i64, exp: i64) -> KmsSigner {
        let key_id = create_signing_key(&self.kms).await;
        let signer = KmsSigner::connect(self.kms.clone(), &key_id)
            .await
            .expect("signer");
        let (_, public) = public_key(&self.kms, &key_id).await.expect("public key");
        let root = KmsSigner::connect(self.kms.clone(), &env("NECTAR_E2E_ROOT_KEY"))
            .await
            .expect("root");
        let token = sign_endorsement(
            &root,
            &env("NECTAR_E2E_ISSUER"),
            &public.kid,
            &public.spki_der,
            TokenKind::Lease,
            now,
            exp,
        )
        .await
        .expect("endorse");
        self.store
            .put_endorsement(&StoredEndorsement {
                kid: public.kid,
                use_: TokenKind::Lease,
                token,
                expires_at: time::OffsetDateTime::from_unix_timestamp(exp).expect("time"),
            })
            .await
            .expect("stored");
        signer
    }
}

/// The real server, except that leases in heartbeat answers are re-signed with `lease_key`:
/// what the heartbeat function hands out once Nectar has rotated its lease key.
struct Rotated {
    real: HttpLicenseServer,
    lease_key: tokio::sync::Mutex<KmsSigner>,
}

#[async_trait]
impl LicenseServer for Rotated {
    async fn heartbeat(&self, req: &HeartbeatRequest) -> Result<HeartbeatResponse, NetError> {
        let mut answer = self.real.heartbeat(req).await?;
        if let Some(lease) = answer.lease.as_mut() {
            let claims = nectar_client::token::peek_claims(&lease.token).expect("claims");
            let key = self.lease_key.lock().await;
            lease.token = sign_jwt(&*key, TokenKind::Lease, &claims)
                .await
                .expect("sign");
        }
        Ok(answer)
    }
    async fn validate(&self, req: &ValidateRequest) -> Result<ValidateResponse, NetError> {
        self.real.validate(req).await
    }
    async fn jwks(&self) -> Result<Jwks, NetError> {
        self.real.jwks().await
    }
    async fn usage(&self, req: &UsageRequest) -> Result<UsageOutcome, NetError> {
        self.real.usage(req).await
    }
}

fn client(
    key: &str,
    dir: &std::path::Path,
    clock: &ManualClock,
    server: Arc<dyn LicenseServer>,
) -> LicenseClient {
    let mut config = ClientConfig::new(key, dir).with_roots(roots());
    // One installation through the walk (a restart with new state each time): one seat.
    config.installation_id = Some("trust-walk".into());
    LicenseClient::new(config, Arc::new(clock.clone()), server).expect("client")
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn the_rotation_walk_root_endorsed_key_rotation_and_an_endorsement_that_ends() {
    let api = Api::from_env();
    let operator = Operator::new().await;
    let (_, key) = api.issue("professional", json!({})).await;
    let clock = ManualClock::starting_now();
    let now = nectar_client::Clock::now(&clock);
    let base = env("NECTAR_E2E_URL");

    // 1. Root → the stack's endorsed lease key: a first start fetches the endorsements from the
    //    real JWKS and installs the real heartbeat's lease.
    let plain = Arc::new(HttpLicenseServer::new(&base).expect("url"));
    let c = client(&key, &temp_dir("walk-1"), &clock, plain);
    let report = c.heartbeat().await.expect("heartbeat");
    assert!(report.lease_installed, "{report:?}");
    assert_eq!(c.check("workflows"), Decision::Allowed);

    // 2. Rotation: a new lease key, endorsed for a year. The agent has never seen it; on the
    //    first lease it signs, the agent fetches the endorsements again and accepts it.
    let next = operator.new_endorsed_lease_key(now, now + 365 * DAY).await;
    let rotated = Arc::new(Rotated {
        real: HttpLicenseServer::new(&base).expect("url"),
        lease_key: tokio::sync::Mutex::new(next),
    });
    let c2 = client(&key, &temp_dir("walk-2"), &clock, rotated.clone());
    let report = c2.heartbeat().await.expect("heartbeat after rotation");
    assert!(report.lease_installed, "{report:?}");
    assert_eq!(c2.check("workflows"), Decision::Allowed);

    // 3. A key whose endorsement ends in two days: accepted now, refused once it has ended —
    //    even though the server still hands out leases it signed.
    let short = operator.new_endorsed_lease_key(now, now + 2 * DAY).await;
    *rotated.lease_key.lock().await = short;
    let c3 = client(&key, &temp_dir("walk-3"), &clock, rotated.clone());
    assert!(c3.heartbeat().await.expect("heartbeat").lease_installed);
    clock.advance(3 * DAY);
    let outcome = c3.heartbeat().await;
    assert!(
        matches!(
            outcome,
            Err(ClientError::LeaseRejected(TokenError::UnknownKey))
        ),
        "{outcome:?}"
    );

    // 4. A key nobody endorsed signs nothing the agent believes.
    let unendorsed = KmsSigner::connect(
        operator.kms.clone(),
        &create_signing_key(&operator.kms).await,
    )
    .await
    .expect("signer");
    *rotated.lease_key.lock().await = unendorsed;
    let c4 = client(
        &key,
        &temp_dir("walk-4"),
        &ManualClock::starting_now(),
        rotated,
    );
    let outcome = c4.heartbeat().await;
    assert!(
        matches!(
            outcome,
            Err(ClientError::LeaseRejected(TokenError::UnknownKey))
        ),
        "{outcome:?}"
    );
    assert_eq!(c4.check("workflows"), Decision::NoLease);
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn an_offline_activation_from_the_stack_starts_an_agent_that_cannot_reach_the_server() {
    let api = Api::from_env();
    let (license, key) = api.issue("professional", json!({})).await;
    let iid = format!("air-{}", uuid::Uuid::new_v4().simple());
    let id = license["id"].as_str().expect("id");
    // The operator asks the admin API for the file (the license-activate function).
    let (status, body) = api
        .admin_post(
            &format!("/api/admin/licenses/{id}/activations"),
            json!({"installationId": iid, "days": 90}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let file: nectar_protocol::token::ActivationFile =
        serde_json::from_value(body).expect("an activation file");
    // An air-gapped agent: nothing listens at its server URL.
    let dead = Arc::new(HttpLicenseServer::new("http://127.0.0.1:9").expect("url"));
    let clock = ManualClock::starting_now();
    let mut config = ClientConfig::new(&key, temp_dir("air")).with_roots(roots());
    config.installation_id = Some(iid.clone());
    let c = LicenseClient::new(config, Arc::new(clock.clone()), dead).expect("client");
    assert_eq!(c.check("workflows"), Decision::NoLease);
    assert!(c.install_activation(&file).expect("accepted"));
    assert_eq!(c.check("workflows"), Decision::Allowed);
    clock.advance(89 * DAY);
    assert_eq!(c.check("workflows"), Decision::Allowed);
    // The seat is taken on the server, and the activation is in the audit trail.
    let (status, detail) = api
        .admin_get(&format!(
            "/api/license/{}",
            license["customerId"].as_str().expect("cid")
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let text = detail.to_string();
    assert!(text.contains(&iid), "{text}");
    assert!(text.contains("installation.activated_offline"), "{text}");
}

#[tokio::test]
#[ignore = "end-to-end: needs the stack `make test` starts"]
async fn the_server_refuses_keys_made_with_the_lease_key_a_swapped_type_or_a_high_s_signature() {
    let api = Api::from_env();
    let operator = Operator::new().await;
    let (_, key) = api.issue("professional", json!({})).await;
    let claims = nectar_client::token::peek_claims(&key).expect("claims");
    // Control: the genuine key is valid.
    assert_eq!(api.validate(&key, "i-1", json!({})).await["code"], "VALID");
    // The lease key (the public heartbeat's key) signing a license key.
    let lease_key = KmsSigner::connect(operator.kms.clone(), &env("NECTAR_E2E_LEASE_KEY"))
        .await
        .expect("lease key");
    let by_lease_key = sign_jwt(&lease_key, TokenKind::License, &claims)
        .await
        .expect("sign");
    // Our own license key, but typed `lease+jwt` in the header.
    let license_key = KmsSigner::connect(operator.kms.clone(), &api.signing_key)
        .await
        .expect("license key");
    let swapped = sign_jwt(&license_key, TokenKind::Lease, &claims)
        .await
        .expect("sign");
    // The genuine key's high-S twin.
    let twin = nectar_protocol::jws::high_s_variant(&key);
    assert_ne!(twin, key);
    for (name, token) in [
        ("signed by the lease key", by_lease_key),
        ("lease+jwt header", swapped),
        ("high-S twin", twin),
    ] {
        let answer = api.validate(&token, "i-1", json!({})).await;
        assert_eq!(answer["code"], "INVALID_KEY", "{name}: {answer}");
    }
}
