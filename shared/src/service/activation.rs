//! Offline activation: for an air-gapped installation, an operator issues a signed activation
//! file — a long-lived lease (1–365 days, never past the license's expiry) bound to one
//! installation id, plus the root endorsements that vouch for the keys — which the agent accepts
//! from `NECTAR_ACTIVATION_FILE` under exactly the rules of a heartbeat lease.
//!
//! It is a seat like any other: it is claimed (or kept) atomically against the license's limit,
//! audited with the operator's name, and held until the lease ends (the lifecycle job does not
//! free the seat of an installation whose lease is still running).

use time::{Duration, OffsetDateTime};

use crate::domain::license::whole_seconds;
use crate::domain::ports::{
    AuditLog, EndorsementRegistry, HeartbeatReport, InstallationRegistry, LicenseReader, SeatClaim,
    TokenSigner,
};
use crate::domain::{
    Actor, AuditEntry, DomainError, InstallationId, InstallationStatus, LicenseId, LicenseStatus,
};
use nectar_protocol::token::{ACTIVATION_FORMAT, ActivationFile};

/// Shortest and longest offline activation, in days.
pub const ACTIVATION_DAYS: std::ops::RangeInclusive<i64> = 1..=365;

/// An operator's request for an offline activation.
#[derive(Debug, Clone)]
pub struct ActivationCommand {
    /// The license.
    pub license_id: LicenseId,
    /// The air-gapped installation's id (the agent's `NECTAR_INSTALLATION_ID`).
    pub installation_id: InstallationId,
    /// How long the lease runs, in days ([`ACTIVATION_DAYS`]).
    pub days: i64,
    /// Who asked.
    pub actor: Actor,
}

/// Issues an activation file: checks the license is in force, takes (or keeps) a seat, signs the
/// lease with the lease key, records it, audits it.
pub async fn activate_offline<S>(
    store: &S,
    lease_signer: &dyn TokenSigner,
    issuer: &str,
    cmd: &ActivationCommand,
    now: OffsetDateTime,
) -> Result<ActivationFile, DomainError>
where
    S: LicenseReader + InstallationRegistry + AuditLog + EndorsementRegistry + ?Sized,
{
    if !ACTIVATION_DAYS.contains(&cmd.days) {
        return Err(DomainError::InvalidValue {
            field: "days",
            message: format!(
                "must be {} to {} days",
                ACTIVATION_DAYS.start(),
                ACTIVATION_DAYS.end()
            ),
        });
    }
    let (license, installation) = store
        .license_and_installation(&cmd.license_id, &cmd.installation_id)
        .await?;
    let license = license.ok_or(DomainError::LicenseNotFound)?;
    if license.status != LicenseStatus::Active || license.expires_at <= now {
        return Err(DomainError::InvalidTransition {
            action: "activate an installation of",
            from: if license.expires_at <= now {
                LicenseStatus::Expired
            } else {
                license.status
            },
        });
    }
    let report = HeartbeatReport {
        license_id: license.id.clone(),
        installation_id: cmd.installation_id.clone(),
        version: "offline-activation".into(),
        domain: None,
        gauges: crate::domain::Gauges::default(),
        at: whole_seconds(now),
    };
    let seated = match installation {
        Some(i) if i.status == InstallationStatus::Active => i,
        _ => match store
            .claim_seat(&report, license.limits.installations)
            .await?
        {
            SeatClaim::Seated(i) => *i,
            SeatClaim::SeatsFull => {
                return Err(DomainError::SeatsFull {
                    license: license.id.to_string(),
                    limit: license.limits.installations,
                });
            }
        },
    };
    let lease = super::heartbeat::sign_lease(
        store,
        lease_signer,
        issuer,
        &license,
        &seated,
        Duration::days(cmd.days),
        now,
    )
    .await?;
    let entry = AuditEntry {
        action: "installation.activated_offline".into(),
        actor: cmd.actor.clone(),
        reason: Some(format!(
            "{}: offline activation until {}",
            cmd.installation_id,
            super::admin::rfc3339(lease.expires_at)
        )),
        from: None,
        to: None,
        at: whole_seconds(now),
    };
    store.append(&license.id, &entry).await?;
    let endorsements = store
        .endorsements(now)
        .await?
        .into_iter()
        .map(|e| e.token)
        .collect();
    Ok(ActivationFile {
        format: ACTIVATION_FORMAT.into(),
        license_id: license.id.to_string(),
        installation_id: cmd.installation_id.to_string(),
        expires_at: super::admin::rfc3339(lease.expires_at),
        lease: lease.token.expose().to_owned(),
        endorsements,
    })
}
