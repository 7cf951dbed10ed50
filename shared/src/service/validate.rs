//! `validate`: is this key good for this installation (and domain, and feature) right now?
//!
//! Warm path cost: one DynamoDB round trip (license + installation in one `BatchGetItem`), zero
//! KMS calls (the key ring was loaded at cold start), no writes.

use time::OffsetDateTime;

use super::check::{self, Code, Verdict};
use crate::domain::ports::LicenseReader;
use crate::domain::{DomainError, Feature, Hostname, InstallationId, InstallationStatus, License};
use crate::token::{KeyRing, LicenseKey};

/// A parsed validate request.
#[derive(Debug, Clone)]
pub struct ValidateCommand {
    /// The key to check.
    pub key: LicenseKey,
    /// The asking installation.
    pub installation_id: InstallationId,
    /// The domain it serves, if it says.
    pub domain: Option<Hostname>,
    /// A feature to check entitlement for.
    pub feature: Option<Feature>,
}

/// The answer: a code, a sentence, and the license once the key verified and the record exists.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The verdict.
    pub verdict: Verdict,
    /// The license record, when found.
    pub license: Option<License>,
}

impl Checked {
    /// Whether the verdict is `VALID`.
    pub fn is_valid(&self) -> bool {
        self.verdict.code == Code::Valid
    }
}

/// Runs the checks in the documented order (see [`check`]).
#[tracing::instrument(skip_all, fields(installation_id = %cmd.installation_id))]
pub async fn validate<R: LicenseReader + ?Sized>(
    ring: &KeyRing,
    store: &R,
    cmd: &ValidateCommand,
    now: OffsetDateTime,
) -> Result<Checked, DomainError> {
    let claims = match ring.verify_license(&cmd.key) {
        Ok(c) => c,
        Err(rejection) => {
            return Ok(Checked {
                verdict: rejection.into(),
                license: None,
            });
        }
    };
    let (license, installation) = store
        .license_and_installation(&claims.jti, &cmd.installation_id)
        .await?;
    let Some(license) = license else {
        return Ok(Checked {
            verdict: Verdict::new(
                Code::NotFound,
                format!("no license {} on record", claims.jti),
            ),
            license: None,
        });
    };
    let holds_seat = installation.is_some_and(|i| i.status == InstallationStatus::Active);
    let verdict = match check::check_license(
        &claims,
        &license,
        cmd.domain.as_ref(),
        cmd.feature.as_ref(),
        now,
    ) {
        Err(v) => v,
        Ok(()) if !holds_seat && license.seats_full() => check::seats_full(&license),
        Ok(()) => Verdict::valid(),
    };
    tracing::info!(license_id = %license.id, code = ?verdict.code, "license validated");
    Ok(Checked {
        verdict,
        license: Some(license),
    })
}
