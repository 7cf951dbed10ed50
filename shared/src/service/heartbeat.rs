//! `heartbeat`: an installation says it is alive. First contact registers it, taking a seat
//! atomically; later beats refresh last-seen. A revoked or suspended license says so here, which is
//! how a running installation learns of a revocation. A beat that holds a seat under a usable
//! license also gets a lease (see [`crate::token::LeaseClaims`]), re-signed only when the stored one
//! has less than half its life left.

use time::{Duration, OffsetDateTime};

use super::check::{self, Code, Verdict};
use crate::domain::fleet::{AttentionKind, Flag};
use crate::domain::license::whole_seconds;
use crate::domain::ports::{
    AttentionFlags, AuditLog, HeartbeatReport, InstallationRegistry, LicenseReader, RateLimiter,
    SeatClaim, TokenSigner,
};
use crate::domain::{Actor, AuditEntry};
use crate::domain::{
    DomainError, Hostname, Installation, InstallationId, InstallationStatus, Lease, LeaseToken,
    License, LicenseStatus,
};
use crate::token::{KeyRing, LeaseClaims, LicenseKey, TokenKind, sign_jwt};

/// Something an installation reports about itself on a heartbeat (a wire name it sends).
pub use nectar_protocol::codes::Signal;

/// A parsed heartbeat request.
#[derive(Debug, Clone)]
pub struct HeartbeatCommand {
    /// The installation's license key.
    pub key: LicenseKey,
    /// The installation.
    pub installation_id: InstallationId,
    /// Its product version (1..=64 printable ASCII characters; checked at the edge).
    pub version: String,
    /// The domain it serves.
    pub domain: Option<Hostname>,
    /// Gauge readings (`users`, `storage_gb`), if reported.
    pub gauges: crate::domain::Gauges,
    /// Integrity signals raised by the installation (recorded in the audit trail).
    pub signals: Vec<Signal>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone)]
pub struct Beat {
    /// `VALID` when the installation holds a seat under a usable license.
    pub verdict: Verdict,
    /// The license, once the key verified and the record exists.
    pub license: Option<License>,
    /// The installation as recorded after this beat (absent when nothing was recorded).
    pub installation: Option<Installation>,
    /// When the next heartbeat is due.
    pub next_due_at: OffsetDateTime,
    /// The installation's lease, when the verdict is `VALID` and one could be signed.
    pub lease: Option<Lease>,
}

/// Default ceiling on new installation activations per license per hour.
pub const DEFAULT_ACTIVATIONS_PER_HOUR: u64 = 20;

/// How heartbeats are answered: the interval advertised, and the per-license ceiling on
/// activations of installations that hold no seat (new ones, and revivals after a cull).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeatPolicy {
    /// When the next heartbeat is due.
    pub interval: Duration,
    /// Activations per license per clock hour (the first, while no seat is held, always passes).
    pub activations_per_hour: u64,
}

impl From<Duration> for BeatPolicy {
    fn from(interval: Duration) -> Self {
        Self {
            interval,
            activations_per_hour: DEFAULT_ACTIVATIONS_PER_HOUR,
        }
    }
}

/// Runs the validate checks (without feature), then records the beat.
#[tracing::instrument(skip_all, fields(installation_id = %cmd.installation_id))]
pub async fn heartbeat<S>(
    ring: &KeyRing,
    store: &S,
    signer: &dyn TokenSigner,
    cmd: &HeartbeatCommand,
    policy: impl Into<BeatPolicy>,
    now: OffsetDateTime,
) -> Result<Beat, DomainError>
where
    S: LicenseReader + InstallationRegistry + AuditLog + AttentionFlags + RateLimiter + ?Sized,
{
    let policy = policy.into();
    let next_due_at = now + policy.interval;
    let answer = |verdict: Verdict, license: Option<License>, installation| Beat {
        verdict,
        license,
        installation,
        next_due_at,
        lease: None,
    };
    let claims = match ring.verify_license(&cmd.key) {
        Ok(c) => c,
        Err(rejection) => return Ok(answer(rejection.into(), None, None)),
    };
    let (license, installation) = store
        .license_and_installation(&claims.jti, &cmd.installation_id)
        .await?;
    let Some(license) = license else {
        let v = Verdict::new(
            Code::NotFound,
            format!("no license {} on record", claims.jti),
        );
        return Ok(answer(v, None, None));
    };
    if let Err(v) = check::check_license(&claims, &license, cmd.domain.as_ref(), None, now) {
        // Nothing of the license for a foreign key, the old key of a license that moved to
        // another customer, or a superseded key.
        if v.code == Code::InvalidKey
            || claims.cid != license.customer_id
            || license.supersedes(claims.iat)
        {
            return Ok(answer(v, None, None));
        }
        return Ok(answer(v, Some(license), installation));
    }

    // Only from an installation of a license in force: anything else is refused above and must
    // not be able to write to the audit trail. Each signal is audited at most once per
    // installation per UTC day, however often it is sent: a client cannot grow the trail.
    let day = now.date();
    let day_ends = day
        .next_day()
        .map_or(now + Duration::days(1), |d| d.midnight().assume_utc());
    for signal in &cmd.signals {
        let entry = AuditEntry {
            action: "installation.signal".into(),
            actor: Actor::installation(&cmd.installation_id),
            reason: Some(format!("{}; version {}", signal.as_str(), cmd.version)),
            from: None,
            to: None,
            at: whole_seconds(now),
        };
        let once = format!("signal#{}#{}#{day}", cmd.installation_id, signal.as_str());
        match store
            .append_once(&license.id, &once, day_ends, &entry)
            .await
        {
            Ok(true) => {
                tracing::warn!(license_id = %license.id, signal = signal.as_str(), "installation raised a signal");
                let flag = Flag {
                    kind: AttentionKind::ClockTamper,
                    license_id: license.id.clone(),
                    installation_id: Some(cmd.installation_id.clone()),
                    detail: format!("reported {}; version {}", signal.as_str(), cmd.version),
                    raised_at: whole_seconds(now),
                };
                raise(store, &flag).await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, license_id = %license.id, "audit entry not written");
            }
        }
    }
    let report = HeartbeatReport {
        license_id: license.id.clone(),
        installation_id: cmd.installation_id.clone(),
        version: cmd.version.clone(),
        domain: cmd.domain.clone(),
        gauges: cmd.gauges,
        at: whole_seconds(now),
    };
    let holds_seat = installation
        .as_ref()
        .is_some_and(|i| i.status == InstallationStatus::Active);
    // A seat holder normally just refreshes; if it lost its seat meanwhile, it competes again.
    let touched = if holds_seat {
        store.touch(&report).await?
    } else {
        None
    };
    if touched.is_none() && license.active_installations > 0 {
        // Activation churn (new installation ids, or revivals) is throttled per license; while
        // no seat is held at all, the activation always passes, so a customer is never locked
        // out of their first (or only) installation.
        let start = now - Duration::seconds(i64::from(now.minute()) * 60 + i64::from(now.second()));
        let key = format!("activation#{}", license.id);
        if !store
            .admit(&key, start, Duration::HOUR, policy.activations_per_hour)
            .await?
        {
            let retry_after = u64::try_from((start + Duration::HOUR - now).whole_seconds())
                .unwrap_or(1)
                .max(1);
            return Err(DomainError::ActivationRateLimited {
                limit: policy.activations_per_hour,
                retry_after,
            });
        }
    }
    let recorded = match touched {
        Some(i) => Some(i),
        None => match store
            .claim_seat(&report, license.limits.installations)
            .await?
        {
            SeatClaim::Seated(i) => {
                let mut i = *i;
                if let Some(before) = &installation {
                    i.first_seen_at = before.first_seen_at;
                }
                let why = match &installation {
                    None => "first heartbeat",
                    Some(_) => "heartbeat after its seat was released",
                };
                let entry = AuditEntry {
                    action: "installation.activated".into(),
                    actor: Actor::installation(&cmd.installation_id),
                    reason: Some(format!("{why}; version {}", cmd.version)),
                    from: None,
                    to: None,
                    at: report.at,
                };
                // The seat is taken either way; a lost audit entry must not fail the beat.
                if let Err(e) = store.append(&license.id, &entry).await {
                    tracing::error!(error = %e, license_id = %license.id, "audit entry not written");
                }
                Some(i)
            }
            SeatClaim::SeatsFull => None,
        },
    };
    let beat = match recorded {
        Some(mut i) => {
            let lease = lease_for(store, signer, ring, &license, &i, now).await;
            i.lease.clone_from(&lease);
            let mut beat = answer(Verdict::valid(), Some(license), Some(i));
            beat.lease = lease;
            beat
        }
        None => {
            // Refused: audited and flagged for operators once per installation per day, however
            // often it retries.
            let entry = AuditEntry {
                action: "installation.refused".into(),
                actor: Actor::installation(&cmd.installation_id),
                reason: Some(format!(
                    "all {} seats in use; version {}",
                    license.limits.installations, cmd.version
                )),
                from: None,
                to: None,
                at: whole_seconds(now),
            };
            let once = format!("refused#{}#{day}", cmd.installation_id);
            match store
                .append_once(&license.id, &once, day_ends, &entry)
                .await
            {
                Ok(true) => {
                    let flag = Flag {
                        kind: AttentionKind::SeatLimit,
                        license_id: license.id.clone(),
                        installation_id: Some(cmd.installation_id.clone()),
                        detail: format!(
                            "refused a seat: all {} seats in use (version {})",
                            license.limits.installations, cmd.version
                        ),
                        raised_at: whole_seconds(now),
                    };
                    raise(store, &flag).await;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, license_id = %license.id, "audit entry not written");
                }
            }
            let v = check::seats_full(&license);
            answer(v, Some(license), installation)
        }
    };
    tracing::info!(license_id = %claims.jti, code = ?beat.verdict.code, "heartbeat recorded");
    Ok(beat)
}

/// Raises an operator flag; a flag that could not be stored must not fail the beat.
async fn raise<S: AttentionFlags + ?Sized>(store: &S, flag: &Flag) {
    if let Err(e) = store.raise(flag).await {
        tracing::error!(error = %e, license_id = %flag.license_id, "attention flag not raised");
    }
}

/// The stored lease if it is still worth handing out, else a freshly signed (and stored) one.
/// Signing or storing failures degrade to "no new lease": the installation keeps the one it has.
async fn lease_for<S>(
    store: &S,
    signer: &dyn TokenSigner,
    ring: &KeyRing,
    license: &License,
    installation: &Installation,
    now: OffsetDateTime,
) -> Option<Lease>
where
    S: InstallationRegistry + ?Sized,
{
    if let Some(current) = &installation.lease
        && current.reusable_at(now)
        && current.expires_at <= license.expires_at
        && lease_grants(current, license)
    {
        return Some(current.clone());
    }
    let ttl = license.plan.policy().lease_ttl;
    match sign_lease(
        store,
        signer,
        ring.issuer(),
        license,
        installation,
        ttl,
        now,
    )
    .await
    {
        Ok(lease) => Some(lease),
        Err(e) => {
            tracing::error!(error = %e, license_id = %license.id, "lease not signed");
            installation.lease.clone().filter(|l| l.expires_at > now)
        }
    }
}

/// Whether `lease` still grants what the license grants now — owner, plan, features, limits,
/// expiry — so an operator's change reaches the installation on its next heartbeat, not when the
/// old lease runs out. The lease is our own stored token, signed when it was stored: its claims
/// are read, not verified again (an ECDSA verification on every heartbeat would be the costliest
/// step of the warm path). Unreadable claims mean "sign a new one".
fn lease_grants(lease: &Lease, license: &License) -> bool {
    use base64::Engine as _;
    lease
        .token
        .expose()
        .split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|json| serde_json::from_slice::<LeaseClaims>(&json).ok())
        .is_some_and(|c| {
            c.cid == license.customer_id
                && c.plan == license.plan
                && c.limits == license.limits
                && c.lexp == license.expires_at.unix_timestamp()
                && c.feat.iter().eq(license.features.iter())
        })
}

/// Signs a lease of `ttl` (never past the license's expiry) for `installation` and stores it as
/// the installation's current lease. A storing failure is logged, not returned: the lease is
/// valid either way.
pub(crate) async fn sign_lease<S>(
    store: &S,
    signer: &dyn TokenSigner,
    issuer: &str,
    license: &License,
    installation: &Installation,
    ttl: Duration,
    now: OffsetDateTime,
) -> Result<Lease, DomainError>
where
    S: InstallationRegistry + ?Sized,
{
    let policy = license.plan.policy();
    let issued_at = whole_seconds(now);
    let expires_at = (issued_at + ttl).min(license.expires_at);
    let claims = LeaseClaims {
        iss: issuer.to_owned(),
        typ: TokenKind::Lease,
        jti: uuid::Uuid::now_v7().to_string(),
        lid: license.id.clone(),
        iid: installation.id.clone(),
        cid: license.customer_id,
        plan: license.plan,
        status: LicenseStatus::Active,
        feat: license.features.iter().cloned().collect(),
        limits: license.limits,
        iat: issued_at.unix_timestamp(),
        exp: expires_at.unix_timestamp(),
        ts: issued_at.unix_timestamp(),
        lexp: license.expires_at.unix_timestamp(),
        grace: policy.offline_grace.whole_seconds(),
    };
    let token = LeaseToken::new(sign_jwt(signer, TokenKind::Lease, &claims).await?);
    let lease = Lease {
        token,
        issued_at,
        expires_at,
    };
    if let Err(e) = store
        .record_lease(&license.id, &installation.id, &lease)
        .await
    {
        tracing::error!(error = %e, license_id = %license.id, "lease not stored");
    }
    Ok(lease)
}
