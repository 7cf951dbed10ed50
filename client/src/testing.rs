//! Test support, public so benchmarks, the agent's tests and the end-to-end tests can use it: the
//! protocol's local ES256 signer (standing in for the license server's KMS keys), a test trust
//! chain (root → endorsed license and lease keys), claim builders and an in-memory license
//! server.

use nectar_protocol::Code;
use serde::Deserialize;
use serde_json::{Value, json};

pub use nectar_protocol::testing::TestSigner;
use nectar_protocol::token::TokenKind;

use crate::token::{Jwks, TrustRoots, TrustedKeys};

/// The issuer test tokens name.
pub const TEST_ISSUER: &str = "nectar-test";
/// The license id test tokens name.
pub const TEST_LICENSE_ID: &str = "NECTAR-PROFESSIONAL-2026-TEST0001";

/// A whole test trust chain: a root key, and a license key and a lease key it endorsed (until
/// the year 2100), as the server's KMS keys and the admin command's endorsements are.
#[derive(Clone)]
pub struct TestTrust {
    /// The root (compiled into real builds; given with [`crate::ClientConfig::with_roots`] here).
    pub root: TestSigner,
    /// Signs license keys.
    pub license: TestSigner,
    /// Signs leases.
    pub lease: TestSigner,
    /// The root's endorsements of `license` and `lease`.
    pub endorsements: Vec<String>,
}

/// End of the test endorsements: 2100-01-01.
pub const ENDORSED_UNTIL: i64 = 4_102_444_800;

impl TestTrust {
    /// Fresh keys with ids prefixed by `name`.
    pub fn new(name: &str) -> Self {
        let root = TestSigner::random(&format!("{name}-root"));
        let license = TestSigner::random(&format!("{name}-license"));
        let lease = TestSigner::random(&format!("{name}-lease"));
        let endorsements = vec![
            root.endorse(TEST_ISSUER, &license, TokenKind::License, 0, ENDORSED_UNTIL),
            root.endorse(TEST_ISSUER, &lease, TokenKind::Lease, 0, ENDORSED_UNTIL),
        ];
        Self {
            root,
            license,
            lease,
            endorsements,
        }
    }

    /// The roots (the root key only).
    pub fn roots(&self) -> TrustRoots {
        match TrustRoots::from_jwks(&self.root.jwks()) {
            Ok(r) => r,
            // A key we generated always yields a usable JWK.
            Err(e) => panic!("test root JWKS is unusable: {e}"),
        }
    }

    /// The trusted keys an installation holds once it has the endorsements.
    pub fn keys(&self) -> TrustedKeys {
        let mut keys = TrustedKeys::new(self.roots());
        keys.endorse_all(&self.endorsements, 0);
        keys
    }

    /// What the server publishes at `/.well-known/jwks.json`.
    pub fn published(&self) -> Jwks {
        Jwks {
            keys: vec![self.license.jwk(), self.lease.jwk()],
            endorsements: self.endorsements.clone(),
        }
    }
}

/// Lease claims for installation `iid`, valid from `iat` to `exp`, professional plan, 72 h grace.
pub fn lease_claims(iid: &str, iat: i64, exp: i64) -> Value {
    json!({
        "iss": TEST_ISSUER,
        "typ": "lease",
        "jti": format!("lease-{iat}"),
        "lid": TEST_LICENSE_ID,
        "iid": iid,
        "cid": "0b7f3c8e-2f0c-4c1e-9d8a-3b2f1e0d9c8b",
        "plan": "professional",
        "status": "active",
        "feat": ["workflows", "api_access", "integrations", "audit_logs"],
        "limits": {"workflows_per_month": 10_000, "users": 25, "storage_gb": 100, "installations": 3},
        "iat": iat,
        "exp": exp,
        "ts": iat,
        "lexp": iat + 365 * 86_400,
        "grace": 72 * 3_600,
    })
}

/// License-key claims valid from `iat` to `exp`, restricted to `domains` (empty: any).
pub fn license_claims(iat: i64, exp: i64, domains: &[&str]) -> Value {
    json!({
        "iss": TEST_ISSUER,
        "typ": "license",
        "jti": TEST_LICENSE_ID,
        "lic": "NECTAR-PROFESSIONAL-2026",
        "cid": "0b7f3c8e-2f0c-4c1e-9d8a-3b2f1e0d9c8b",
        "iat": iat,
        "exp": exp,
        "feat": ["workflows", "api_access", "integrations", "audit_logs"],
        "limits": {"workflows_per_month": 10_000, "users": 25, "storage_gb": 100, "installations": 3},
        "domain_restrictions": domains,
    })
}

/// An in-memory license server: signs leases with its [`TestSigner`], answers heartbeats with a
/// settable code, deduplicates usage by event id, and can be made unreachable.
pub struct FakeServer {
    /// The server's keys: root, license key, lease key, endorsements.
    pub trust: TestTrust,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    reachable: std::sync::atomic::AtomicBool,
    code: std::sync::Mutex<Code>,
    lease_ttl: i64,
    grace: i64,
    heartbeats: std::sync::Mutex<Vec<Value>>,
    counted: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    usage_calls: std::sync::atomic::AtomicU64,
    lease_edit: std::sync::Mutex<Option<LeaseEdit>>,
    ts_skew: std::sync::atomic::AtomicI64,
}

/// How a misbehaving server changes the leases it hands out: their claims, and which key signs.
pub type LeaseEdit = Box<dyn Fn(&mut Value) -> Option<TestSigner> + Send + Sync>;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakeServer {
    /// A reachable server answering `VALID` with 72 h leases and 72 h grace, keeping time by
    /// `clock` (its own: the installation's clock may be rolled back independently).
    pub fn new(clock: std::sync::Arc<dyn crate::clock::Clock>) -> Self {
        Self {
            trust: TestTrust::new("fake"),
            clock,
            reachable: true.into(),
            code: std::sync::Mutex::new(Code::Valid),
            lease_ttl: 72 * 3_600,
            grace: 72 * 3_600,
            heartbeats: std::sync::Mutex::new(Vec::new()),
            counted: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            usage_calls: 0.into(),
            lease_edit: std::sync::Mutex::new(None),
            ts_skew: 0.into(),
        }
    }

    /// Makes the unsigned `ts` of heartbeat answers lie by `secs`.
    pub fn skew_response_ts(&self, secs: i64) {
        self.ts_skew
            .store(secs, std::sync::atomic::Ordering::SeqCst);
    }

    /// A server with the keys of `trust` (e.g. an attacker's own root and keys).
    pub fn with_trust(clock: std::sync::Arc<dyn crate::clock::Clock>, trust: TestTrust) -> Self {
        Self {
            trust,
            ..Self::new(clock)
        }
    }

    /// From now on, leases are edited by `edit` before signing; it may return another key to
    /// sign with (how tests play a server that lies or uses the wrong key).
    pub fn edit_leases(&self, edit: LeaseEdit) {
        *lock(&self.lease_edit) = Some(edit);
    }

    /// A license key this server accepts, valid for a year from now.
    pub fn license_key(&self) -> String {
        let now = self.clock.now();
        self.trust
            .license
            .sign(&license_claims(now, now + 365 * 86_400, &[]))
    }

    /// A client configuration for this server's license key in `dir`, trusting its root.
    pub fn client_config(&self, dir: &std::path::Path) -> crate::ClientConfig {
        crate::ClientConfig::new(self.license_key(), dir).with_roots(self.trust.roots())
    }

    /// Makes every call fail as unreachable (or work again).
    pub fn set_reachable(&self, reachable: bool) {
        self.reachable
            .store(reachable, std::sync::atomic::Ordering::SeqCst);
    }

    /// The code heartbeats answer from now on (`VALID`, `REVOKED`, …).
    pub fn set_code(&self, code: &str) {
        *lock(&self.code) = Code::deserialize(Value::from(code))
            .unwrap_or_else(|e| panic!("`{code}` is not a verdict code: {e}"));
    }

    /// Every heartbeat body received, license key removed.
    pub fn heartbeat_requests(&self) -> Vec<Value> {
        lock(&self.heartbeats).clone()
    }

    /// Usage counted per event id (each id once, whatever the resends).
    pub fn counted_usage(&self) -> std::collections::BTreeMap<String, u64> {
        lock(&self.counted).clone()
    }

    /// `POST /api/usage` calls received.
    pub fn usage_calls(&self) -> u64 {
        self.usage_calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn check_reachable(&self) -> Result<(), crate::server::NetError> {
        if self.reachable.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(())
        } else {
            Err(crate::server::NetError::Unreachable(
                "connection refused".into(),
            ))
        }
    }

    fn ts(&self) -> time::OffsetDateTime {
        let skew = self.ts_skew.load(std::sync::atomic::Ordering::SeqCst);
        time::OffsetDateTime::from_unix_timestamp(self.clock.now().saturating_add(skew))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
}

#[async_trait::async_trait]
impl crate::server::LicenseServer for FakeServer {
    async fn heartbeat(
        &self,
        req: &crate::server::HeartbeatRequest,
    ) -> Result<crate::server::HeartbeatResponse, crate::server::NetError> {
        self.check_reachable()?;
        let mut body = serde_json::to_value(req).unwrap_or(Value::Null);
        if let Some(o) = body.as_object_mut() {
            o.remove("licenseKey");
        }
        lock(&self.heartbeats).push(body);
        let now = self.clock.now();
        let code = *lock(&self.code);
        let ok = code == Code::Valid;
        let lease = ok.then(|| {
            let mut claims = lease_claims(&req.installation_id, now, now + self.lease_ttl);
            claims["grace"] = self.grace.into();
            let signer = lock(&self.lease_edit)
                .as_ref()
                .and_then(|edit| edit(&mut claims))
                .unwrap_or_else(|| self.trust.lease.clone());
            crate::server::LeaseView {
                token: signer.sign(&claims),
                issued_at: self.ts(),
                expires_at: self.ts() + time::Duration::seconds(self.lease_ttl),
            }
        });
        Ok(crate::server::HeartbeatResponse {
            ok,
            detail: format!("the license is {code}"),
            code,
            ts: self.ts(),
            license: None,
            installation: None,
            heartbeat: crate::server::HeartbeatTiming {
                interval_seconds: 3_600,
                next_due_at: self.ts() + time::Duration::hours(1),
            },
            lease,
        })
    }

    async fn validate(
        &self,
        _req: &crate::server::ValidateRequest,
    ) -> Result<crate::server::ValidateResponse, crate::server::NetError> {
        self.check_reachable()?;
        let code = *lock(&self.code);
        Ok(crate::server::ValidateResponse {
            valid: code == Code::Valid,
            detail: String::new(),
            code,
            ts: self.ts(),
            license: None,
        })
    }

    async fn jwks(&self) -> Result<Jwks, crate::server::NetError> {
        self.check_reachable()?;
        Ok(self.trust.published())
    }

    async fn usage(
        &self,
        req: &crate::server::UsageRequest,
    ) -> Result<crate::server::UsageOutcome, crate::server::NetError> {
        self.check_reachable()?;
        self.usage_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut counted = lock(&self.counted);
        let statuses = req
            .events
            .iter()
            .map(|e| {
                counted.entry(e.event_id.clone()).or_insert(e.quantity);
                crate::server::EventStatusView {
                    event_id: e.event_id.clone(),
                    status: "accepted".into(),
                    code: None,
                    detail: None,
                }
            })
            .collect();
        Ok(crate::server::UsageOutcome::Statuses(statuses))
    }
}
