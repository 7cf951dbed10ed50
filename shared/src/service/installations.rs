//! Support's action on one installation: release its seat.
//!
//! For a machine that is gone (decommissioned, rebuilt) whose seat the customer needs for a new
//! one now, not after the lifecycle job's inactivity window. The seat is freed at once; a lease the
//! installation already holds stays valid until its own expiry (it is signed and offline-checked),
//! and if that installation heartbeats again it must claim a seat like a new one.

use time::OffsetDateTime;

use crate::domain::license::whole_seconds;
use crate::domain::ports::{InstallationRegistry, LicenseReader, LifecycleIndex};
use crate::domain::{
    Actor, AuditEntry, DomainError, Installation, InstallationId, InstallationStatus, LicenseId,
};

/// Attempts before answering `InstallationBusy`: each lost attempt means a heartbeat landed
/// between the read and the conditional write.
const ATTEMPTS: usize = 3;

/// Frees `installation`'s seat on `license`, audited `installation.released` with `reason`.
/// Returns the installation as it now is and whether this call freed the seat (`false`: it held
/// none — releasing twice is not an error).
pub async fn release_installation<S>(
    store: &S,
    license: &LicenseId,
    installation: &InstallationId,
    reason: String,
    actor: Actor,
    now: OffsetDateTime,
) -> Result<(Installation, bool), DomainError>
where
    S: LicenseReader + InstallationRegistry + LifecycleIndex + ?Sized,
{
    store
        .license(license)
        .await?
        .ok_or(DomainError::LicenseNotFound)?;
    for _ in 0..ATTEMPTS {
        let mut current = store
            .installations(license)
            .await?
            .into_iter()
            .find(|i| &i.id == installation)
            .ok_or(DomainError::InstallationNotFound)?;
        if current.status != InstallationStatus::Active {
            return Ok((current, false));
        }
        let entry = AuditEntry {
            action: "installation.released".into(),
            actor: actor.clone(),
            reason: Some(format!("{}: {reason}; seat released", current.id)),
            from: None,
            to: None,
            at: whole_seconds(now),
        };
        // Conditioned on the installation being unchanged since this read (still active, no
        // heartbeat since `last_seen_at`): the seat count moves with the installation, never
        // twice.
        if store.deactivate_installation(&current, &entry).await? {
            current.status = InstallationStatus::Inactive;
            return Ok((current, true));
        }
    }
    Err(DomainError::InstallationBusy)
}
