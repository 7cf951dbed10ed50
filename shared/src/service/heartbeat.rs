//! `heartbeat`: an installation says it is alive. First contact registers it, taking a seat
//! atomically; later beats refresh last-seen. A revoked or suspended license says so here, which is
//! how a running installation learns of a revocation.

use time::{Duration, OffsetDateTime};

use super::check::{self, Code, Verdict};
use crate::domain::license::whole_seconds;
use crate::domain::ports::{
    AuditLog, HeartbeatReport, InstallationRegistry, LicenseReader, SeatClaim,
};
use crate::domain::{Actor, AuditEntry};
use crate::domain::{
    DomainError, Hostname, Installation, InstallationId, InstallationStatus, License,
};
use crate::token::{KeyRing, LicenseKey};

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
}

/// Runs the validate checks (without feature), then records the beat.
#[tracing::instrument(skip_all, fields(installation_id = %cmd.installation_id))]
pub async fn heartbeat<S>(
    ring: &KeyRing,
    store: &S,
    cmd: &HeartbeatCommand,
    interval: Duration,
    now: OffsetDateTime,
) -> Result<Beat, DomainError>
where
    S: LicenseReader + InstallationRegistry + AuditLog + ?Sized,
{
    let next_due_at = now + interval;
    let answer = |verdict: Verdict, license: Option<License>, installation| Beat {
        verdict,
        license,
        installation,
        next_due_at,
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
        if v.code == Code::InvalidKey {
            return Ok(answer(v, None, None));
        }
        return Ok(answer(v, Some(license), installation));
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
    let recorded = match touched {
        Some(i) => Some(i),
        None => match store
            .claim_seat(&report, license.limits.installations)
            .await?
        {
            SeatClaim::Seated(mut i) => {
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
        Some(i) => answer(Verdict::valid(), Some(license), Some(i)),
        None => {
            let v = check::seats_full(&license);
            answer(v, Some(license), installation)
        }
    };
    tracing::info!(license_id = %claims.jti, code = ?beat.verdict.code, "heartbeat recorded");
    Ok(beat)
}
