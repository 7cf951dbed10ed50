//! `validate`: is this key good for this installation (and domain, and feature) right now?
//!
//! Warm path cost: one DynamoDB round trip (license + installation, and the usage counter when a
//! capped feature is asked about, in one `BatchGetItem`), zero KMS calls (the key ring was loaded
//! at cold start), no writes.

use time::OffsetDateTime;

use super::check::{self, Code, Verdict};
use super::usage as usage_service;
use crate::domain::ports::LicenseReader;
use crate::domain::usage;
use crate::domain::{
    DomainError, Feature, FeatureUsage, Hostname, InstallationId, InstallationStatus, License,
    Period,
};
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
    let period = Period::containing(now);
    let counter = cmd
        .feature
        .as_ref()
        .filter(|f| usage::is_capped(f))
        .map(|f| (f, period));
    let snapshot = store
        .snapshot(&claims.jti, &cmd.installation_id, counter)
        .await?;
    let (license, installation) = (snapshot.license, snapshot.installation);
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
        Ok(()) => {
            let exhausted = cmd
                .feature
                .as_ref()
                .zip(snapshot.used)
                .and_then(|(f, used)| {
                    usage_service::exceeded(&FeatureUsage {
                        feature: f.clone(),
                        period,
                        used,
                        limit: usage::monthly_limit(f, &license.limits),
                        daily: Vec::new(),
                    })
                });
            match exhausted {
                Some(v) => v,
                None if !holds_seat && license.seats_full() => check::seats_full(&license),
                None => Verdict::valid(),
            }
        }
    };
    tracing::info!(license_id = %license.id, code = ?verdict.code, "license validated");
    // An INVALID_KEY verdict never carries license details, whatever check produced it; nor does
    // any answer to a key naming another customer (the old key of a license moved away) or to a
    // superseded key (often rotated because it leaked).
    let license = (verdict.code != Code::InvalidKey
        && claims.cid == license.customer_id
        && !license.supersedes(claims.iat))
    .then_some(license);
    Ok(Checked { verdict, license })
}
