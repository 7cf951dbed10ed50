//! Validate and heartbeat: requests into commands, check results into answers.

use nectar_protocol::codes::Signal;
use time::OffsetDateTime;

use super::{Validated, parse, text};
use crate::domain::{DomainError, Feature, Hostname, Installation, InstallationId, License};
use crate::service::check::Code;
use crate::service::heartbeat::{Beat, HeartbeatCommand};
use crate::service::validate::{Checked, ValidateCommand};
use crate::token::LicenseKey;

pub use nectar_protocol::licensing::{HeartbeatTiming, LeaseView};

/// `POST /api/validate`, the key read straight into its redacting type.
pub type ValidateRequest = nectar_protocol::licensing::ValidateRequest<LicenseKey>;
/// `POST /api/heartbeat`, the key read straight into its redacting type.
pub type HeartbeatRequest = nectar_protocol::licensing::HeartbeatRequest<LicenseKey>;

/// A license as the API shows it.
pub type LicenseView = nectar_protocol::licensing::LicenseView<Validated>;
/// An installation as the API shows it.
pub type InstallationView = nectar_protocol::licensing::InstallationView<Validated>;
/// `POST /api/validate` answer.
pub type ValidateResponse = nectar_protocol::licensing::ValidateResponse<Validated>;
/// `POST /api/heartbeat` answer.
pub type HeartbeatResponse = nectar_protocol::licensing::HeartbeatResponse<Validated>;

/// Most signals one heartbeat may raise.
const MAX_SIGNALS: usize = 8;

impl TryFrom<ValidateRequest> for ValidateCommand {
    type Error = DomainError;

    fn try_from(r: ValidateRequest) -> Result<Self, DomainError> {
        if let Some(v) = r.version {
            text("version", v, 64)?;
        }
        Ok(Self {
            key: r.license_key,
            installation_id: parse("installationId", InstallationId::parse(&r.installation_id))?,
            domain: r
                .domain
                .map(|d| parse("domain", Hostname::parse(&d)))
                .transpose()?,
            feature: r
                .feature
                .map(|f| parse("feature", Feature::parse(&f)))
                .transpose()?,
        })
    }
}

impl TryFrom<HeartbeatRequest> for HeartbeatCommand {
    type Error = DomainError;

    fn try_from(r: HeartbeatRequest) -> Result<Self, DomainError> {
        Ok(Self {
            key: r.license_key,
            installation_id: parse("installationId", InstallationId::parse(&r.installation_id))?,
            version: text("version", r.version, 64)?,
            gauges: r.gauges.unwrap_or_default(),
            domain: r
                .domain
                .map(|d| parse("domain", Hostname::parse(&d)))
                .transpose()?,
            signals: parse_signals(&r.signals)?,
        })
    }
}

fn parse_signals(raw: &[String]) -> Result<Vec<Signal>, DomainError> {
    if raw.len() > MAX_SIGNALS {
        return Err(DomainError::InvalidValue {
            field: "signals",
            message: format!("at most {MAX_SIGNALS} signals"),
        });
    }
    let mut out: Vec<Signal> = Vec::new();
    for name in raw {
        let signal = Signal::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Signal::ALL.iter().map(|s| s.as_str()).collect();
            DomainError::InvalidValue {
                field: "signals",
                message: format!(
                    "unknown signal `{}`; known: {}",
                    name.chars().take(40).collect::<String>(),
                    known.join(", ")
                ),
            }
        })?;
        if !out.contains(&signal) {
            out.push(signal);
        }
    }
    Ok(out)
}

impl From<&License> for LicenseView {
    fn from(l: &License) -> Self {
        Self {
            id: l.id.clone(),
            customer_id: l.customer_id,
            plan: l.plan,
            status: l.status,
            issued_at: l.issued_at,
            expires_at: l.expires_at,
            features: l.features.iter().cloned().collect(),
            limits: l.limits,
            domain_restrictions: l.domain_restrictions.clone(),
        }
    }
}

impl From<&Installation> for InstallationView {
    fn from(i: &Installation) -> Self {
        Self {
            id: i.id.clone(),
            status: i.status,
            version: i.version.clone(),
            domain: i.domain.clone(),
            first_seen_at: i.first_seen_at,
            last_seen_at: i.last_seen_at,
            gauges: i.gauges,
        }
    }
}

/// Builds the validate answer; a trait because the answer type is the protocol's.
pub trait ValidateAnswer {
    /// The view of a check result at `ts`.
    fn new(checked: &Checked, ts: OffsetDateTime) -> Self;
}

impl ValidateAnswer for ValidateResponse {
    fn new(checked: &Checked, ts: OffsetDateTime) -> Self {
        Self {
            valid: checked.is_valid(),
            code: checked.verdict.code,
            detail: checked.verdict.detail.clone(),
            ts,
            license: checked.license.as_ref().map(LicenseView::from),
        }
    }
}

/// Builds the heartbeat answer; a trait because the answer type is the protocol's.
pub trait HeartbeatAnswer {
    /// The view of a heartbeat result at `ts`.
    fn new(beat: &Beat, interval: time::Duration, ts: OffsetDateTime) -> Self;
}

impl HeartbeatAnswer for HeartbeatResponse {
    fn new(beat: &Beat, interval: time::Duration, ts: OffsetDateTime) -> Self {
        Self {
            ok: beat.verdict.code == Code::Valid,
            code: beat.verdict.code,
            detail: beat.verdict.detail.clone(),
            ts,
            license: beat.license.as_ref().map(LicenseView::from),
            installation: beat.installation.as_ref().map(InstallationView::from),
            heartbeat: HeartbeatTiming {
                interval_seconds: interval.whole_seconds(),
                next_due_at: beat.next_due_at,
            },
            lease: beat.lease.as_ref().map(|l| LeaseView {
                token: l.token.expose().to_owned(),
                issued_at: l.issued_at,
                expires_at: l.expires_at,
            }),
        }
    }
}
