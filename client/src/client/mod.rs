//! The installation's license client: answers `check(feature)` from the cached, verified lease
//! without any network call, keeps the lease fresh with background heartbeats, locks on a
//! conclusive server verdict, watches the clock for rollbacks, and persists what it learns.
//!
//! Hot path: `check` reads the clock once, bumps the trusted-time high-water mark (one atomic),
//! takes a read lock and compares a few integers and strings. Signatures are verified once, when
//! a lease is installed, never per check.
//!
//! This file owns the configuration, the state and the offline check API; everything that
//! talks to the server (heartbeats, pinning, the background tasks) is in `online.rs`.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::clock::{Clock, rfc3339};
use crate::decision::Decision;
use crate::persist::PersistError;
use crate::schedule::Schedule;
use crate::server::{Gauges, LicenseServer, NetError};
use crate::state::{Lock, State, StateStore};
use crate::token::{
    JwksError, LeaseClaims, LicenseClaims, Limits, TokenError, TrustRoots, TrustedKeys,
};

mod online;

pub use online::Background;

/// Default tolerance for the local clock going backwards before it counts as tampering.
pub const DEFAULT_CLOCK_TOLERANCE_SECS: i64 = 300;
/// The most tolerance a configuration may ask for: beyond an hour, a rolled-back clock could
/// stretch a lease's life noticeably.
pub const MAX_CLOCK_TOLERANCE_SECS: i64 = 3_600;

/// What the client needs to know. `Debug` hides the license key.
#[derive(Clone)]
pub struct ClientConfig {
    /// The license key (a JWT).
    pub license_key: String,
    /// This installation's id; generated once (UUID) and persisted when `None`.
    pub installation_id: Option<String>,
    /// Product version reported on heartbeat.
    pub version: String,
    /// The domain this installation serves (checked against the license's restrictions).
    pub domain: Option<String>,
    /// Where the state file lives.
    pub state_dir: PathBuf,
    /// How far local time may go back before it counts as tampering, in seconds.
    pub clock_tolerance_secs: i64,
    /// Heartbeat timing.
    pub schedule: Schedule,
    /// Nectar's root keys: the compiled ones (see [`TrustRoots`]); not settable at run time.
    roots: TrustRoots,
}

impl ClientConfig {
    /// A configuration with defaults for everything but the key and the state directory.
    pub fn new(license_key: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            license_key: license_key.into(),
            installation_id: None,
            version: env!("CARGO_PKG_VERSION").into(),
            domain: None,
            state_dir: state_dir.into(),
            clock_tolerance_secs: DEFAULT_CLOCK_TOLERANCE_SECS,
            schedule: Schedule::default(),
            roots: TrustRoots::compiled(),
        }
    }

    /// The roots this build trusts ([`TrustRoots::for_this_build`]): in a release build the
    /// compiled ones, and an error if a development setting is present.
    pub fn with_build_roots(mut self) -> Result<Self, JwksError> {
        self.roots = TrustRoots::for_this_build()?;
        Ok(self)
    }

    /// These roots. Safe to expose: outside test and development builds the only roots that
    /// exist are the compiled ones ([`TrustRoots::from_jwks`] is not compiled in).
    pub fn with_roots(mut self, roots: TrustRoots) -> Self {
        self.roots = roots;
        self
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("license_key", &"<redacted>")
            .field("installation_id", &self.installation_id)
            .field("version", &self.version)
            .field("domain", &self.domain)
            .field("state_dir", &self.state_dir)
            .field("roots", &self.roots)
            .field("clock_tolerance_secs", &self.clock_tolerance_secs)
            .finish()
    }
}

/// Why the client could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The configured installation id has characters the server refuses.
    #[error("installation id must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")]
    InstallationId,
    /// The trust roots cannot be used.
    #[error("the trust roots cannot be used: {0}")]
    Jwks(#[from] JwksError),
    /// The server could not be asked.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The server's lease did not verify against the trusted keys.
    #[error("the lease from the server was rejected: {0}")]
    LeaseRejected(TokenError),
    /// The state could not be written.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// A verified lease.
#[derive(Clone)]
struct Lease {
    token: String,
    claims: LeaseClaims,
}

struct Inner {
    keys: TrustedKeys,
    /// The license key's verdict under `keys` (`UnknownKey` until its key's endorsement is known).
    license: Result<LicenseClaims, TokenError>,
    lease: Option<Lease>,
    lock: Option<Lock>,
    last_heartbeat_at: Option<i64>,
    interval: Option<i64>,
}

/// What a heartbeat achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatReport {
    /// Whether the server said `VALID`.
    pub ok: bool,
    /// The server's code.
    pub code: String,
    /// Its sentence.
    pub detail: String,
    /// The server's interval until the next beat.
    pub interval: Duration,
    /// Whether a lease (new or the same) was installed.
    pub lease_installed: bool,
    /// Signals sent with this beat.
    pub signals: Vec<String>,
}

/// A snapshot of the installation's license state, for status pages and the agent's
/// `GET /v1/license`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseStatus {
    /// This installation.
    pub installation_id: String,
    /// `active`, `grace`, `expired`, `license_expired`, `locked`, `clock_tampered` or `no_lease`.
    pub status: &'static str,
    /// Why new work may or may not start (a [`Decision::reason`]).
    pub reason: &'static str,
    /// License id.
    pub license_id: Option<String>,
    /// Plan.
    pub plan: Option<String>,
    /// License expiry (RFC 3339).
    pub license_expires_at: Option<String>,
    /// Lease expiry (RFC 3339).
    pub lease_expires_at: Option<String>,
    /// End of the offline grace for running work (RFC 3339).
    pub grace_ends_at: Option<String>,
    /// Whether the lease has expired and its grace is running.
    pub in_grace: bool,
    /// Entitled features.
    pub features: Vec<String>,
    /// Limits.
    pub limits: Option<Limits>,
    /// The server's lock, if any.
    pub lock: Option<Lock>,
    /// Last heartbeat the server answered (RFC 3339).
    pub last_heartbeat_at: Option<String>,
    /// Whether the local clock is behind trusted time by more than the tolerance.
    pub clock_tampered: bool,
    /// Why the license key does not verify (a [`TokenError::code`]), if it does not.
    pub license_key_error: Option<String>,
}

/// The license client. Share it as `Arc<LicenseClient>`.
pub struct LicenseClient {
    config: ClientConfig,
    installation_id: String,
    key_id: String,
    clock: Arc<dyn Clock>,
    server: Arc<dyn LicenseServer>,
    store: StateStore,
    inner: RwLock<Inner>,
    high_water: AtomicI64,
    tamper_pending: AtomicBool,
    tampered_now: AtomicBool,
    calls: AtomicU64,
    gauges: Mutex<Option<Gauges>>,
    save_lock: Mutex<()>,
    beat_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for LicenseClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LicenseClient")
            .field("installation_id", &self.installation_id)
            .field("config", &self.config)
            .finish()
    }
}

/// Same charset as the server's installation ids.
fn valid_installation_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A short fingerprint of the key, so state learnt under one key is not applied to another.
fn fingerprint(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A panic while holding the lock cannot leave Inner half-updated in a way that matters:
    // every write replaces whole fields. So a poisoned lock is still read.
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LicenseClient {
    /// Builds the client from its configuration and persisted state. No network: the JWKS is
    /// fetched (when not configured) on the first heartbeat. A damaged state file is ignored
    /// with a warning; a persisted lease is verified again before it is trusted.
    pub fn new(
        config: ClientConfig,
        clock: Arc<dyn Clock>,
        server: Arc<dyn LicenseServer>,
    ) -> Result<Self, ClientError> {
        let store = StateStore::in_dir(&config.state_dir);
        let mut state = store.load();
        let key_id = fingerprint(&config.license_key);
        if state.key_id.as_deref().is_some_and(|k| k != key_id) {
            // A new key (renewal, replacement): what the old one earned or lost does not carry.
            tracing::info!("license key changed; dropping the previous lease and lock");
            state.lease = None;
            state.lock = None;
            state.last_heartbeat_at = None;
        }
        let installation_id = match config.installation_id.clone().or(state.installation_id) {
            Some(id) if valid_installation_id(&id) => id,
            Some(_) => return Err(ClientError::InstallationId),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let mut config = config;
        if config.clock_tolerance_secs > MAX_CLOCK_TOLERANCE_SECS {
            tracing::warn!(
                asked = config.clock_tolerance_secs,
                used = MAX_CLOCK_TOLERANCE_SECS,
                "clock tolerance capped"
            );
            config.clock_tolerance_secs = MAX_CLOCK_TOLERANCE_SECS;
        }
        // Endorsements from the state file count only because a compiled-in root signed them,
        // and only while they run (by trusted time: the high-water mark survives restarts).
        let trusted_now = state.high_water.max(clock.now());
        let mut keys = TrustedKeys::new(config.roots.clone());
        keys.endorse_all(&state.endorsements, trusted_now);
        let license = keys.verify_license(&config.license_key, trusted_now);
        let mut inner = Inner {
            keys,
            license,
            lease: None,
            lock: state.lock,
            last_heartbeat_at: state.last_heartbeat_at,
            interval: state.heartbeat_interval,
        };
        if let Some(token) = state.lease {
            match accept_lease(&inner, &installation_id, &token, trusted_now) {
                Ok(lease) => inner.lease = Some(lease),
                Err(e) => {
                    tracing::warn!(reason = e.code(), "persisted lease rejected; discarding it");
                }
            }
        }
        let client = Self {
            installation_id,
            key_id,
            clock,
            server,
            store,
            inner: RwLock::new(inner),
            high_water: AtomicI64::new(state.high_water),
            tamper_pending: AtomicBool::new(state.tamper_pending),
            tampered_now: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            gauges: Mutex::new(None),
            save_lock: Mutex::new(()),
            beat_lock: tokio::sync::Mutex::new(()),
            config,
        };
        // Noticing a rollback that happened while stopped, and persisting a generated id.
        client.observe_time();
        client.save()?;
        Ok(client)
    }

    /// This installation's id.
    pub fn installation_id(&self) -> &str {
        &self.installation_id
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Calls made to the license server so far (heartbeat, validate, JWKS, usage).
    pub fn network_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The license key's claims, or why it does not verify under the trusted keys.
    pub fn license(&self) -> Result<LicenseClaims, TokenError> {
        read(&self.inner).license.clone()
    }

    /// The trusted keys (roots and endorsed keys).
    pub fn trusted_keys(&self) -> TrustedKeys {
        read(&self.inner).keys.clone()
    }

    /// Trusted time now: the high-water mark or the local clock, whichever is later.
    pub fn trusted_now(&self) -> i64 {
        self.observe_time().0
    }

    /// Whether a verified lease is held (expired or not).
    pub fn has_lease(&self) -> bool {
        read(&self.inner).lease.is_some()
    }

    /// Gauge readings to send with the following heartbeats.
    pub fn set_gauges(&self, gauges: Gauges) {
        *guard(&self.gauges) = Some(gauges);
    }

    /// Reads the clock, raises the high-water mark, and says whether local time is behind
    /// trusted time by more than the tolerance. Returns `(trusted now, tampered)`.
    fn observe_time(&self) -> (i64, bool) {
        let now = self.clock.now();
        let mut prev = self.high_water.load(Ordering::Relaxed);
        if now > prev {
            prev = self.high_water.fetch_max(now, Ordering::Relaxed);
        }
        let tampered = now < prev.saturating_sub(self.config.clock_tolerance_secs);
        // One report per rollback episode; heartbeats also signal while it lasts.
        let was = self.tampered_now.load(Ordering::Relaxed);
        if tampered != was {
            self.tampered_now.store(tampered, Ordering::Relaxed);
        }
        if tampered && !was {
            self.tamper_pending.store(true, Ordering::Relaxed);
            tracing::warn!(
                local = now,
                trusted = prev,
                "local clock is behind trusted time; treating the lease as expired"
            );
        }
        (prev.max(now), tampered)
    }

    /// May new work using `feature` start now? Answered from the cached lease, no network.
    pub fn check(&self, feature: &str) -> Decision {
        self.decide(Some(feature), false)
    }

    /// May work using `feature` that is already running go on? Like [`LicenseClient::check`],
    /// but an expired lease still in its grace period answers [`Decision::Grace`].
    pub fn check_running(&self, feature: &str) -> Decision {
        self.decide(Some(feature), true)
    }

    /// May new licensed work start at all (any feature)? For startup gates and status pages.
    pub fn check_license(&self) -> Decision {
        self.decide(None, false)
    }

    /// Starts licensed work: `Ok` with a guard whose [`WorkGuard::check`] keeps answering
    /// through the grace period, or the refusal.
    pub fn start_work(self: &Arc<Self>, feature: &str) -> Result<WorkGuard, Decision> {
        match self.check(feature) {
            Decision::Allowed => Ok(WorkGuard {
                client: Arc::clone(self),
                feature: feature.to_owned(),
            }),
            refused => Err(refused),
        }
    }

    fn decide(&self, feature: Option<&str>, running: bool) -> Decision {
        let (trusted, tampered) = self.observe_time();
        let inner = read(&self.inner);
        if let Some(lock) = &inner.lock {
            return Decision::Locked(lock.reason);
        }
        let Some(lease) = &inner.lease else {
            return Decision::NoLease;
        };
        let c = &lease.claims;
        if trusted >= c.lexp {
            return Decision::LicenseExpired;
        }
        let entitled = feature.is_none_or(|f| c.feat.iter().any(|x| x == f));
        // A rolled-back clock cannot prove the lease is still valid: treat it as expired. The
        // high-water mark still tells how far into the grace period trusted time is.
        if tampered || trusted >= c.exp {
            let ends_at = c.exp.saturating_add(c.grace);
            let in_grace = trusted < ends_at;
            if running && in_grace && entitled {
                return Decision::Grace { ends_at };
            }
            if tampered {
                return Decision::ClockTampered;
            }
            return Decision::LeaseExpired { in_grace };
        }
        if entitled {
            Decision::Allowed
        } else {
            Decision::NotEntitled
        }
    }

    /// A snapshot for status pages.
    pub fn status(&self) -> LicenseStatus {
        let decision = self.decide(None, false);
        let (_, tampered) = self.observe_time();
        let inner = read(&self.inner);
        let lease = inner.lease.as_ref().map(|l| &l.claims);
        let license = inner.license.as_ref().ok();
        let status = match decision {
            Decision::Allowed => "active",
            Decision::LeaseExpired { in_grace: true } | Decision::Grace { .. } => "grace",
            Decision::LeaseExpired { in_grace: false } => "expired",
            Decision::LicenseExpired => "license_expired",
            Decision::Locked(_) => "locked",
            Decision::ClockTampered => "clock_tampered",
            Decision::NoLease | Decision::NotEntitled => "no_lease",
        };
        LicenseStatus {
            installation_id: self.installation_id.clone(),
            status,
            reason: decision.reason(),
            license_id: lease
                .map(|c| c.lid.clone())
                .or_else(|| license.map(|l| l.jti.clone())),
            plan: lease
                .map(|c| c.plan.clone())
                .or_else(|| license.and_then(LicenseClaims::plan)),
            license_expires_at: lease
                .map(|c| c.lexp)
                .or_else(|| license.map(|l| l.exp))
                .and_then(rfc3339),
            lease_expires_at: lease.and_then(|c| rfc3339(c.exp)),
            grace_ends_at: lease.and_then(|c| rfc3339(c.exp.saturating_add(c.grace))),
            in_grace: matches!(decision, Decision::LeaseExpired { in_grace: true }),
            features: lease.map(|c| c.feat.clone()).unwrap_or_default(),
            limits: lease.map(|c| c.limits),
            lock: inner.lock.clone(),
            last_heartbeat_at: inner.last_heartbeat_at.and_then(rfc3339),
            clock_tampered: tampered,
            license_key_error: inner.license.as_ref().err().map(|e| e.code().to_owned()),
        }
    }

    fn snapshot(&self) -> State {
        let inner = read(&self.inner);
        State {
            installation_id: Some(self.installation_id.clone()),
            key_id: Some(self.key_id.clone()),
            lease: inner.lease.as_ref().map(|l| l.token.clone()),
            endorsements: inner.keys.endorsements(),
            high_water: self.high_water.load(Ordering::Relaxed),
            lock: inner.lock.clone(),
            tamper_pending: self.tamper_pending.load(Ordering::Relaxed),
            last_heartbeat_at: inner.last_heartbeat_at,
            heartbeat_interval: inner.interval,
        }
    }

    /// Persists the state now (atomically).
    pub fn save(&self) -> Result<(), PersistError> {
        // Snapshots are taken and written under one lock, so files land in snapshot order.
        let _ordered = guard(&self.save_lock);
        self.store.save(&self.snapshot())
    }
}

/// Verifies a lease token for this installation at trusted time `now` and binds it to the
/// license key: no lease is believed unless the license key itself verified, and the lease names
/// the same license, customer and issuer.
fn accept_lease(
    inner: &Inner,
    installation_id: &str,
    token: &str,
    now: i64,
) -> Result<Lease, TokenError> {
    let license = inner
        .license
        .as_ref()
        .map_err(|_| TokenError::LicenseUnverified)?;
    let claims = inner.keys.verify_lease(token, installation_id, now)?;
    if claims.lid != license.jti || claims.iss != license.iss || claims.cid != license.cid {
        return Err(TokenError::WrongLicense);
    }
    Ok(Lease {
        token: token.to_owned(),
        claims,
    })
}

/// Licensed work in progress: started under a valid lease, it stays allowed through the
/// offline grace period, while new work is refused.
#[derive(Debug)]
pub struct WorkGuard {
    client: Arc<LicenseClient>,
    feature: String,
}

impl WorkGuard {
    /// Whether the work may go on ([`Decision::Allowed`] or [`Decision::Grace`]).
    pub fn check(&self) -> Decision {
        self.client.check_running(&self.feature)
    }

    /// The feature the work uses.
    pub fn feature(&self) -> &str {
        &self.feature
    }
}
