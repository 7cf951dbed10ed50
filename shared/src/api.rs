//! Wire types: request DTOs (converted with `TryFrom` into domain commands, so handlers never
//! re-check) and response views. JSON fields are camelCase; limit names stay snake_case because
//! they are identifiers, not fields.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::ports::LicenseDetail;
use crate::domain::{
    AuditEntry, Customer, CustomerId, DomainError, DomainPattern, EventId, Feature, FeatureUsage,
    Hostname, Installation, InstallationId, InstallationStatus, License, LicenseId, LicenseStatus,
    LimitOverrides, Limits, Period, Plan,
};
use crate::service::admin::{IssueCommand, NewCustomer};
use crate::service::check::Code;
use crate::service::heartbeat::{Beat, HeartbeatCommand, Signal};
use crate::service::validate::{Checked, ValidateCommand};
use crate::token::{Jwks, LicenseKey};

fn parse<T, E: Into<crate::domain::ParseError>>(
    field: &'static str,
    result: Result<T, E>,
) -> Result<T, DomainError> {
    result.map_err(|e| DomainError::InvalidField {
        field,
        source: e.into(),
    })
}

fn text(field: &'static str, value: String, max: usize) -> Result<String, DomainError> {
    let value = value.trim().to_owned();
    let printable = value.chars().all(|c| !c.is_control());
    if value.is_empty() || value.chars().count() > max || !printable {
        return Err(DomainError::InvalidValue {
            field,
            message: format!("must be 1 to {max} printable characters"),
        });
    }
    Ok(value)
}

/// `POST /api/validate`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateRequest {
    /// The license key (a JWT; redacted in `Debug`).
    pub license_key: LicenseKey,
    /// The asking installation.
    pub installation_id: String,
    /// The domain it serves.
    pub domain: Option<String>,
    /// A feature to check.
    pub feature: Option<String>,
    /// Its product version (informational).
    pub version: Option<String>,
}

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

/// `POST /api/heartbeat`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatRequest {
    /// The license key (redacted in `Debug`).
    pub license_key: LicenseKey,
    /// The installation.
    pub installation_id: String,
    /// Its product version.
    pub version: String,
    /// The domain it serves.
    pub domain: Option<String>,
    /// Current gauge readings (`users`, `storage_gb`).
    #[serde(default)]
    pub gauges: Option<crate::domain::Gauges>,
    /// Integrity signals the installation raises (`CLOCK_TAMPERED`).
    #[serde(default)]
    pub signals: Vec<String>,
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
    if raw.len() > 8 {
        return Err(DomainError::InvalidValue {
            field: "signals",
            message: "at most 8 signals".into(),
        });
    }
    let mut out: Vec<Signal> = Vec::new();
    for name in raw {
        let signal = Signal::parse(name).ok_or_else(|| DomainError::InvalidValue {
            field: "signals",
            message: format!(
                "unknown signal `{}`; known: CLOCK_TAMPERED",
                name.chars().take(40).collect::<String>()
            ),
        })?;
        if !out.contains(&signal) {
            out.push(signal);
        }
    }
    Ok(out)
}

/// `POST /api/revoke`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevokeRequest {
    /// The license to revoke.
    pub license_id: String,
    /// Why (recorded in the audit trail).
    pub reason: String,
}

impl RevokeRequest {
    /// The parsed id and reason.
    pub fn parse(self) -> Result<(LicenseId, String), DomainError> {
        Ok((
            parse("licenseId", LicenseId::parse(&self.license_id))?,
            text("reason", self.reason, 500)?,
        ))
    }
}

/// `POST /api/admin/licenses/{licenseId}/suspend|reinstate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChangeRequest {
    /// Why (recorded in the audit trail).
    pub reason: String,
}

impl StatusChangeRequest {
    /// The parsed reason.
    pub fn parse(self) -> Result<String, DomainError> {
        text("reason", self.reason, 500)
    }
}

/// `POST /api/admin/customers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerRequest {
    /// Display name.
    pub name: String,
    /// Contact email.
    pub email: String,
}

impl From<CreateCustomerRequest> for NewCustomer {
    fn from(r: CreateCustomerRequest) -> Self {
        Self {
            name: r.name,
            email: r.email,
        }
    }
}

/// `POST /api/admin/licenses`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueLicenseRequest {
    /// Owner.
    pub customer_id: String,
    /// `starter`, `professional` or `enterprise`.
    pub plan: String,
    /// End of term (RFC 3339); exclusive with `validDays`.
    pub expires_at: Option<String>,
    /// Term in days (1..=3650, default 365).
    pub valid_days: Option<i64>,
    /// Replaces the plan's features.
    pub features: Option<Vec<String>>,
    /// Overrides some of the plan's limits.
    pub limits: Option<LimitOverrides>,
    /// Allowed domains.
    pub domain_restrictions: Option<Vec<String>>,
}

impl TryFrom<IssueLicenseRequest> for IssueCommand {
    type Error = DomainError;

    fn try_from(r: IssueLicenseRequest) -> Result<Self, DomainError> {
        let plan = Plan::parse(&r.plan).ok_or_else(|| DomainError::UnknownPlan(r.plan.clone()))?;
        let term = parse_term(r.expires_at, r.valid_days)?;
        let features = r
            .features
            .map(|list| {
                list.iter()
                    .map(|f| parse("features", Feature::parse(f)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let domains = r.domain_restrictions.unwrap_or_default();
        if domains.len() > 50 {
            return Err(DomainError::InvalidValue {
                field: "domainRestrictions",
                message: "at most 50 entries".into(),
            });
        }
        Ok(Self {
            customer_id: parse("customerId", CustomerId::parse(&r.customer_id))?,
            plan,
            term,
            features,
            limits: r.limits.unwrap_or_default(),
            domain_restrictions: domains
                .iter()
                .map(|d| parse("domainRestrictions", DomainPattern::parse(d)))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A license as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseView {
    /// Id.
    pub id: LicenseId,
    /// Owner.
    pub customer_id: CustomerId,
    /// Tier.
    pub plan: Plan,
    /// State.
    pub status: LicenseStatus,
    /// Issue time.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Entitled features.
    pub features: Vec<Feature>,
    /// Limits.
    pub limits: Limits,
    /// Allowed domains (empty: any).
    pub domain_restrictions: Vec<DomainPattern>,
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

/// An installation as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallationView {
    /// Id.
    pub id: InstallationId,
    /// Seat state.
    pub status: InstallationStatus,
    /// Last reported version.
    pub version: String,
    /// Last reported domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<Hostname>,
    /// First heartbeat.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen_at: OffsetDateTime,
    /// Latest heartbeat.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Latest gauge readings.
    pub gauges: crate::domain::Gauges,
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

/// `POST /api/validate` answer (always 200 for a well-formed request).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidateResponse {
    /// Whether `code` is `VALID`.
    pub valid: bool,
    /// The verdict.
    pub code: Code,
    /// A sentence for humans.
    pub detail: String,
    /// Server time.
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// The license, once the key verified and the record exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<LicenseView>,
}

impl ValidateResponse {
    /// The view of a check result at `ts`.
    pub fn new(checked: &Checked, ts: OffsetDateTime) -> Self {
        Self {
            valid: checked.is_valid(),
            code: checked.verdict.code,
            detail: checked.verdict.detail.clone(),
            ts,
            license: checked.license.as_ref().map(LicenseView::from),
        }
    }
}

/// Heartbeat timing advice.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatTiming {
    /// Seconds between heartbeats.
    pub interval_seconds: i64,
    /// When the next one is due.
    #[serde(with = "time::serde::rfc3339")]
    pub next_due_at: OffsetDateTime,
}

/// `POST /api/heartbeat` answer (always 200 for a well-formed request).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// Whether `code` is `VALID` (the installation holds a seat under a usable license).
    pub ok: bool,
    /// The verdict.
    pub code: Code,
    /// A sentence for humans.
    pub detail: String,
    /// Server time.
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// The license, once the key verified and the record exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<LicenseView>,
    /// The installation as recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installation: Option<InstallationView>,
    /// When to beat next.
    pub heartbeat: HeartbeatTiming,
    /// The installation's lease, when `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseView>,
}

/// A lease as handed to its installation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseView {
    /// The signed lease (compact JWS, `typ: lease`).
    pub token: String,
    /// `iat`.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// `exp`.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl HeartbeatResponse {
    /// The view of a heartbeat result at `ts`.
    pub fn new(beat: &Beat, interval: time::Duration, ts: OffsetDateTime) -> Self {
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

/// `expiresAt` (RFC 3339, UTC) or `validDays` (default [`crate::service::admin::DEFAULT_VALID_DAYS`]), not both.
fn parse_term(
    expires_at: Option<String>,
    valid_days: Option<i64>,
) -> Result<crate::service::admin::Term, DomainError> {
    use crate::service::admin::Term;
    Ok(match (expires_at, valid_days) {
        (Some(_), Some(_)) => {
            return Err(DomainError::InvalidValue {
                field: "expiresAt",
                message: "give expiresAt or validDays, not both".into(),
            });
        }
        (Some(at), None) => Term::Until(
            // Stored and shown in UTC; an instant UTC cannot represent is refused here.
            OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                .ok()
                .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
                .ok_or_else(|| DomainError::InvalidValue {
                    field: "expiresAt",
                    message: "must be an RFC 3339 timestamp such as 2027-01-31T00:00:00Z".into(),
                })?,
        ),
        (None, days) => Term::Days(days.unwrap_or(crate::service::admin::DEFAULT_VALID_DAYS)),
    })
}

/// `POST /api/admin/licenses/{licenseId}/renew`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenewLicenseRequest {
    /// New expiry (RFC 3339); or
    pub expires_at: Option<String>,
    /// new term in days from now (1..=3650, default 365).
    pub valid_days: Option<i64>,
    /// Why (kept in the audit trail).
    pub reason: Option<String>,
}

impl RenewLicenseRequest {
    /// The term and the reason.
    pub fn parse(self) -> Result<(crate::service::admin::Term, Option<String>), DomainError> {
        let term = parse_term(self.expires_at, self.valid_days)?;
        let reason = self.reason.map(|r| text("reason", r, 500)).transpose()?;
        Ok((term, reason))
    }
}

/// A customer as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerView {
    /// Id.
    pub id: CustomerId,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Customer> for CustomerView {
    fn from(c: &Customer) -> Self {
        Self {
            id: c.id,
            name: c.name.clone(),
            email: c.email.clone(),
            created_at: c.created_at,
        }
    }
}

/// An audit entry as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditView {
    /// What happened.
    pub action: String,
    /// Who did it.
    pub actor: String,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Status before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<LicenseStatus>,
    /// Status after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<LicenseStatus>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl From<&AuditEntry> for AuditView {
    fn from(a: &AuditEntry) -> Self {
        Self {
            action: a.action.clone(),
            actor: a.actor.as_str().to_owned(),
            reason: a.reason.clone(),
            from: a.from,
            to: a.to,
            at: a.at,
        }
    }
}

/// A license with its installations and audit trail, for `GET /api/license/{customerId}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseDetailView {
    /// The license.
    #[serde(flatten)]
    pub license: LicenseView,
    /// Installations holding a seat.
    pub active_installations: u64,
    /// Every installation.
    pub installations: Vec<InstallationView>,
    /// State changes, oldest first.
    pub audit: Vec<AuditView>,
}

impl From<&LicenseDetail> for LicenseDetailView {
    fn from(d: &LicenseDetail) -> Self {
        Self {
            license: LicenseView::from(&d.license),
            active_installations: d.license.active_installations,
            installations: d.installations.iter().map(InstallationView::from).collect(),
            audit: d.audit.iter().map(AuditView::from).collect(),
        }
    }
}

/// `GET /api/license/{customerId}` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerLicensesResponse {
    /// The customer.
    pub customer: CustomerView,
    /// Their licenses, oldest first.
    pub licenses: Vec<LicenseDetailView>,
}

/// `POST /api/revoke` and suspend / reinstate answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusChangeResponse {
    /// The license after the call.
    pub license: LicenseView,
    /// Whether this call changed it (false: it already had that status).
    pub changed: bool,
}

/// `POST /api/admin/customers` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerCreatedResponse {
    /// The new customer.
    pub customer: CustomerView,
}

/// `POST /api/admin/licenses` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseIssuedResponse {
    /// The new license.
    pub license: LicenseView,
    /// Its signed key: hand it to the customer. Shown once; not stored in plain text by us.
    pub license_key: String,
}

/// `GET /health` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthResponse {
    /// Always `ok`.
    pub status: String,
    /// The deployed version.
    pub version: String,
}

/// `GET /.well-known/jwks.json` answer.
pub type JwksResponse = Jwks;

/// `POST /api/usage`. Events stay raw JSON here so every problem is reported per event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageRequest {
    /// The license key (redacted in `Debug`).
    pub license_key: LicenseKey,
    /// 1..=100 events.
    pub events: Vec<serde_json::Value>,
}

/// A per-event problem, as returned in `error.events` with a 400.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventProblemView {
    /// Position in `events`.
    pub index: usize,
    /// The event's id, when it had a readable one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Stable code.
    pub code: String,
    /// What is wrong.
    pub message: String,
}

const EVENT_FIELDS: &[&str] = &["eventId", "feature", "quantity", "occurredAt", "metadata"];

fn parse_event(
    index: usize,
    raw: &serde_json::Value,
) -> Result<crate::service::usage::EventInput, EventProblemView> {
    let id_text = raw
        .get("eventId")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let problem = |code: &str, message: String| EventProblemView {
        index,
        event_id: id_text.clone(),
        code: code.to_owned(),
        message,
    };
    let obj = raw
        .as_object()
        .ok_or_else(|| problem("INVALID_FIELD", "each event must be a JSON object".into()))?;
    if let Some(unknown) = obj.keys().find(|k| !EVENT_FIELDS.contains(&k.as_str())) {
        return Err(problem(
            "INVALID_FIELD",
            format!("unknown field `{unknown}`"),
        ));
    }
    let event_id = id_text
        .as_deref()
        .ok_or_else(|| problem("INVALID_FIELD", "eventId (string) is required".into()))
        .and_then(|s| {
            EventId::parse(s).map_err(|e| problem("INVALID_FIELD", format!("eventId: {e}")))
        })?;
    let feature = obj
        .get("feature")
        .and_then(|v| v.as_str())
        .ok_or_else(|| problem("INVALID_FIELD", "feature (string) is required".into()))
        .and_then(|s| {
            Feature::parse(s).map_err(|e| problem("INVALID_FIELD", format!("feature: {e}")))
        })?;
    if !crate::domain::plan::is_known_feature(&feature) {
        return Err(problem(
            "UNKNOWN_FEATURE",
            format!("unknown feature `{feature}`"),
        ));
    }
    let quantity = match obj.get("quantity") {
        Some(serde_json::Value::Number(n)) => n.as_u64().filter(|q| *q >= 1).ok_or_else(|| {
            problem(
                "INVALID_QUANTITY",
                format!(
                    "quantity must be a whole number from 1 to {}",
                    crate::domain::usage::MAX_QUANTITY
                ),
            )
        })?,
        _ => {
            return Err(problem(
                "INVALID_QUANTITY",
                "quantity (positive integer) is required".into(),
            ));
        }
    };
    let occurred_at = match obj.get("occurredAt") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| {
                    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
                })
                .ok_or_else(|| {
                    problem(
                        "INVALID_OCCURRED_AT",
                        "occurredAt must be an RFC 3339 timestamp".into(),
                    )
                })?,
        ),
    };
    let metadata = match obj.get("metadata") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Object(m))
            if serde_json::Value::Object(m.clone()).to_string().len() <= 1024 =>
        {
            Some(m.clone())
        }
        Some(_) => {
            return Err(problem(
                "INVALID_FIELD",
                "metadata must be a JSON object of at most 1 KiB".into(),
            ));
        }
    };
    Ok(crate::service::usage::EventInput {
        event_id,
        feature,
        quantity,
        occurred_at,
        metadata,
    })
}

impl UsageRequest {
    /// Parses every event; on any problem returns all of them (the request is refused whole).
    pub fn parse(
        self,
        now: OffsetDateTime,
    ) -> Result<(LicenseKey, Vec<crate::service::usage::EventInput>), Vec<EventProblemView>> {
        use crate::service::usage::{MAX_EVENTS, check_events};
        if self.events.is_empty() || self.events.len() > MAX_EVENTS {
            return Err(vec![EventProblemView {
                index: 0,
                event_id: None,
                code: "INVALID_EVENT_COUNT".into(),
                message: format!("send 1 to {MAX_EVENTS} events (got {})", self.events.len()),
            }]);
        }
        let mut events = Vec::with_capacity(self.events.len());
        let mut problems = Vec::new();
        for (i, raw) in self.events.iter().enumerate() {
            match parse_event(i, raw) {
                Ok(e) => events.push(e),
                Err(p) => problems.push(p),
            }
        }
        if problems.is_empty()
            && let Err(found) = check_events(&events, now)
        {
            problems.extend(found.into_iter().map(|p| EventProblemView {
                index: p.index,
                event_id: Some(events[p.index].event_id.to_string()),
                code: p.code.into(),
                message: p.message,
            }));
        }
        if problems.is_empty() {
            Ok((self.license_key, events))
        } else {
            Err(problems)
        }
    }
}

/// Usage of one feature in a period, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureUsageView {
    /// The feature.
    pub feature: Feature,
    /// Total counted this period.
    pub used: u64,
    /// Monthly cap (`null`: uncapped).
    pub limit: Option<u64>,
    /// What is left (`null`: uncapped).
    pub remaining: Option<u64>,
    /// Whether the cap is reached (`validate` then answers `USAGE_EXCEEDED` for it).
    pub exhausted: bool,
    /// Start of the period (UTC calendar month).
    #[serde(with = "time::serde::rfc3339")]
    pub period_start: OffsetDateTime,
    /// End of the period (exclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub period_end: OffsetDateTime,
    /// Per-day totals, day 1 first (only in statistics answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily: Option<Vec<u64>>,
}

impl FeatureUsageView {
    /// The view of `u`, with or without its daily series.
    pub fn new(u: &FeatureUsage, with_daily: bool) -> Self {
        Self {
            feature: u.feature.clone(),
            used: u.used,
            limit: u.limit,
            remaining: u.remaining(),
            exhausted: u.exhausted(),
            period_start: u.period.start(),
            period_end: u.period.end(),
            daily: with_daily.then(|| u.daily.clone()),
        }
    }
}

/// One event's fate in a usage answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventStatusView {
    /// The event.
    pub event_id: String,
    /// `accepted` (queued; counted exactly once), `rejected` (never counted) or `failed` (not
    /// queued: send it again).
    pub status: String,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
    /// Details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `POST /api/usage` answer (202, or 503 when some events could not be queued).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageResponse {
    /// The license.
    pub license_id: LicenseId,
    /// Events queued.
    pub accepted: usize,
    /// Events refused for this license.
    pub rejected: usize,
    /// Events not queued (retry them).
    pub failed: usize,
    /// Per event, in request order.
    pub events: Vec<EventStatusView>,
    /// This period's usage of the features touched, before these events are counted.
    pub usage: Vec<FeatureUsageView>,
    /// Server time.
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
}

impl UsageResponse {
    /// The view of a submission at `ts`.
    pub fn new(s: &crate::service::usage::Submitted, ts: OffsetDateTime) -> Self {
        use crate::service::usage::EventStatus;
        let events: Vec<EventStatusView> = s
            .statuses
            .iter()
            .map(|(id, status)| {
                let (name, code, detail) = match status {
                    EventStatus::Accepted => ("accepted", None, None),
                    EventStatus::Rejected(v) => ("rejected", Some(v.code), Some(v.detail.clone())),
                    EventStatus::Failed => (
                        "failed",
                        None,
                        Some("could not be queued; send it again".to_owned()),
                    ),
                };
                EventStatusView {
                    event_id: id.to_string(),
                    status: name.into(),
                    code,
                    detail,
                }
            })
            .collect();
        let count = |name: &str| events.iter().filter(|e| e.status == name).count();
        Self {
            license_id: s.license.id.clone(),
            accepted: count("accepted"),
            rejected: count("rejected"),
            failed: count("failed"),
            usage: s
                .usage
                .iter()
                .map(|u| FeatureUsageView::new(u, false))
                .collect(),
            events,
            ts,
        }
    }
}

/// `POST /api/usage/stats`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageStatsRequest {
    /// The license key (redacted in `Debug`).
    pub license_key: LicenseKey,
    /// `YYYY-MM` (default: the current month, UTC).
    pub period: Option<String>,
}

/// Parses an optional `YYYY-MM`, defaulting to the month of `now`.
pub fn parse_period(raw: Option<&str>, now: OffsetDateTime) -> Result<Period, DomainError> {
    raw.map(|p| parse("period", Period::parse(p)))
        .transpose()
        .map(|p| p.unwrap_or_else(|| Period::containing(now)))
}

/// Usage statistics answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageStatsResponse {
    /// The license.
    pub license_id: LicenseId,
    /// `YYYY-MM`.
    pub period: String,
    /// Start of the period.
    #[serde(with = "time::serde::rfc3339")]
    pub period_start: OffsetDateTime,
    /// End of the period (exclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub period_end: OffsetDateTime,
    /// Every entitled feature, with daily series.
    pub features: Vec<FeatureUsageView>,
    /// Gauges summed over the active installations' latest readings.
    pub gauges: Vec<GaugeView>,
}

/// A gauge of a license, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaugeView {
    /// `users` or `storage_gb`.
    pub gauge: String,
    /// Sum over the active installations' latest readings.
    pub value: u64,
    /// The license's limit.
    pub limit: u64,
    /// Whether the sum is above the limit.
    pub over_limit: bool,
}

impl UsageStatsResponse {
    /// The view of `usage` for `license` in `period`.
    pub fn new(
        license: &License,
        period: Period,
        usage: &[FeatureUsage],
        gauges: &[crate::domain::GaugeUsage],
    ) -> Self {
        Self {
            gauges: gauges
                .iter()
                .map(|g| GaugeView {
                    gauge: g.gauge.to_owned(),
                    value: g.value,
                    limit: g.limit,
                    over_limit: g.over_limit(),
                })
                .collect(),
            license_id: license.id.clone(),
            period: period.to_string(),
            period_start: period.start(),
            period_end: period.end(),
            features: usage
                .iter()
                .map(|u| FeatureUsageView::new(u, true))
                .collect(),
        }
    }
}

/// The body of `POST /api/workflows/execute`: `{workflowId, workflow: {nodes, start?}, data?}`,
/// or the seed's flat `{workflowId, nodes, start?, data?}`. Returns `(workflowId, workflow,
/// data)`; `data` defaults to `{}`. The workflow itself is validated by the engine.
pub fn parse_execute_body(
    body: serde_json::Value,
) -> Result<(String, serde_json::Value, serde_json::Value), DomainError> {
    use serde_json::Value;
    let Value::Object(mut obj) = body else {
        return Err(DomainError::InvalidValue {
            field: "body",
            message: "must be a JSON object".into(),
        });
    };
    let workflow_id = match obj.remove("workflowId") {
        Some(Value::String(s)) => text("workflowId", s, 128)?,
        Some(_) => {
            return Err(DomainError::InvalidValue {
                field: "workflowId",
                message: "must be a string".into(),
            });
        }
        None => {
            return Err(DomainError::InvalidValue {
                field: "workflowId",
                message: "is required".into(),
            });
        }
    };
    let data = obj
        .remove("data")
        .unwrap_or_else(|| Value::Object(Default::default()));
    let workflow = match (obj.remove("workflow"), obj.remove("nodes")) {
        (Some(w), None) => {
            if obj.contains_key("start") {
                return Err(DomainError::InvalidValue {
                    field: "start",
                    message: "belongs inside `workflow`".into(),
                });
            }
            w
        }
        (None, Some(nodes)) => {
            let mut flat = serde_json::Map::new();
            flat.insert("nodes".into(), nodes);
            if let Some(start) = obj.remove("start") {
                flat.insert("start".into(), start);
            }
            Value::Object(flat)
        }
        (Some(_), Some(_)) => {
            return Err(DomainError::InvalidValue {
                field: "nodes",
                message: "send either `workflow` or the flat `nodes`, not both".into(),
            });
        }
        (None, None) => {
            return Err(DomainError::InvalidValue {
                field: "workflow",
                message: "is required (`{\"nodes\": [...]}`)".into(),
            });
        }
    };
    if let Some(unknown) = obj.keys().next() {
        return Err(DomainError::InvalidValue {
            field: "body",
            message: format!(
                "unknown field `{}`; expected workflowId, workflow, data",
                unknown.chars().take(40).collect::<String>()
            ),
        });
    }
    Ok((workflow_id, workflow, data))
}

#[cfg(test)]
mod execute_body_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_nested_and_the_flat_seed_shapes_parse_to_the_same_workflow() {
        let nodes = json!([{"id": "a", "type": "output"}]);
        let nested = parse_execute_body(
            json!({"workflowId": "w1", "workflow": {"nodes": nodes}, "data": {"x": 1}}),
        )
        .expect("valid");
        let flat =
            parse_execute_body(json!({"workflowId": "w1", "nodes": nodes, "data": {"x": 1}}))
                .expect("valid");
        assert_eq!(nested, flat);
        assert_eq!(nested.1, json!({"nodes": nodes}));
    }

    #[test]
    fn missing_ambiguous_or_unknown_fields_are_named() {
        let field = |b: serde_json::Value| match parse_execute_body(b) {
            Err(DomainError::InvalidValue { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(json!({"nodes": []})), "workflowId");
        assert_eq!(field(json!({"workflowId": 7, "nodes": []})), "workflowId");
        assert_eq!(field(json!({"workflowId": "w"})), "workflow");
        assert_eq!(
            field(json!({"workflowId": "w", "workflow": {}, "nodes": []})),
            "nodes"
        );
        assert_eq!(
            field(json!({"workflowId": "w", "nodes": [], "extra": 1})),
            "body"
        );
    }
}
