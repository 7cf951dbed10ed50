//! Every DynamoDB key of the single table is built here and nowhere else.
//!
//! | item         | pk                 | sk                          | gsi1 (by customer)          | gsi2 (by status + expiry)       |
//! |--------------|--------------------|-----------------------------|-----------------------------|---------------------------------|
//! | customer     | `CUSTOMER#<cid>`   | `CUSTOMER`                  |                             |                                 |
//! | license      | `LICENSE#<lid>`    | `LICENSE`                   | `CUSTOMER#<cid>` / `LICENSE#<lid>` | `STATUS#<status>` / `<expiresAt>#<lid>` |
//! | installation | `LICENSE#<lid>`    | `INSTALLATION#<iid>`        |                             | `SEEN#active` / `<lastSeenAt>#<lid>#<iid>` (active only) |
//! | audit        | `LICENSE#<lid>` or `CUSTOMER#<cid>` | `AUDIT#<at>#<uuid>` |                             |                                 |
//! | usage counter | `LICENSE#<lid>` | `USAGE#<feature>#<YYYY-MM>` (total + `d01`..`d31`) |     |                                 |
//! | event marker | `EVENT#<lid>#<eventId>` | `EVENT` (TTL'd)        |                             |                                 |
//! | job cursor   | `JOB#<job>`        | `CURSOR`                    |                             |                                 |
//! | rate window (TTL'd) | `RATE#<lid>#<window start>` | `RATE`          |                             |                                 |
//! | execution (TTL'd) | `EXECUTION#<id>` | `EXECUTION`               |                             |                                 |
//!
//! Lifecycle notices are attributes of the license item (`notice:<idempotency id>`), so the
//! index query that finds a candidate also says which notices it already got.
//!
//! A license's installations and audit trail share its partition, so one query returns all of it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::{
    CustomerId, EventId, Feature, InstallationId, LicenseId, LicenseStatus, Period,
};

/// Name of the customer index.
pub const GSI1: &str = "gsi1";
/// Name of the status + expiry index.
pub const GSI2: &str = "gsi2";
/// Sort key of a license item.
pub const LICENSE_SK: &str = "LICENSE";
/// Sort key of a customer item.
pub const CUSTOMER_SK: &str = "CUSTOMER";

/// Partition of a license (and its installations and audit trail).
pub fn license_pk(id: &LicenseId) -> String {
    format!("LICENSE#{id}")
}

/// Partition of a customer; also the customer index key of their licenses.
pub fn customer_pk(id: &CustomerId) -> String {
    format!("CUSTOMER#{id}")
}

/// Sort key of an installation under its license.
pub fn installation_sk(id: &InstallationId) -> String {
    format!("INSTALLATION#{id}")
}

/// Sort key of an audit entry; `unique` (a time-ordered UUIDv7) orders entries within a second.
pub fn audit_sk(at: OffsetDateTime, unique: &uuid::Uuid) -> String {
    format!("AUDIT#{}#{unique}", sortable_time(at))
}

/// Sort key of a usage counter: one item per feature and month, holding the total and `d01`..`d31`.
pub fn usage_sk(feature: &Feature, period: Period) -> String {
    format!("USAGE#{feature}#{period}")
}

/// Partition of a usage event's dedupe marker: one partition per event, so a license reporting
/// thousands of events a second is not throttled on a single hot partition (and license lookups
/// never page through markers).
pub fn event_marker_pk(license: &LicenseId, event: &EventId) -> String {
    format!("EVENT#{license}#{event}")
}

/// Sort key of a dedupe marker.
pub const EVENT_MARKER_SK: &str = "EVENT";

/// Attribute holding one day's total in a usage counter (`d01`..`d31`).
pub fn day_attribute(day: u8) -> String {
    format!("d{day:02}")
}

/// Customer-index sort key of a license.
pub fn license_gsi1_sk(id: &LicenseId) -> String {
    format!("LICENSE#{id}")
}

/// Status-index partition.
pub fn status_gsi2_pk(status: LicenseStatus) -> String {
    format!("STATUS#{}", status.as_str())
}

/// Status-index sort key: expiry first, so "active licenses expiring before T" is one range query.
pub fn expiry_gsi2_sk(expires_at: OffsetDateTime, id: &LicenseId) -> String {
    format!("{}#{id}", sortable_time(expires_at))
}

/// Silence-index partition of active installations (inactive ones leave the index).
pub const SEEN_GSI2_PK: &str = "SEEN#active";

/// Silence-index sort key: last heartbeat first, so "silent since before T" is one range query.
pub fn seen_gsi2_sk(at: OffsetDateTime, license: &LicenseId, id: &InstallationId) -> String {
    format!("{}#{license}#{id}", sortable_time(at))
}

/// Partition of one rate-limit window of one key: one item per window, so no hot item outlives a
/// minute.
pub fn rate_pk(key: &str, window_start: OffsetDateTime) -> String {
    format!("RATE#{key}#{}", window_start.unix_timestamp())
}

/// Sort key of a rate window.
pub const RATE_SK: &str = "RATE";

/// Partition of a recorded execution (its own partition: executions are read by id).
pub fn execution_pk(id: &crate::domain::workflow::ExecutionId) -> String {
    format!("EXECUTION#{id}")
}

/// Sort key of a recorded execution.
pub const EXECUTION_SK: &str = "EXECUTION";

/// Partition of a lifecycle job's sweep cursor.
pub fn job_pk(job: &str) -> String {
    format!("JOB#{job}")
}

/// Sort key of a sweep cursor.
pub const JOB_CURSOR_SK: &str = "CURSOR";

/// License-item attribute holding the ledger state of one notice.
pub fn notice_attribute(idempotency_id: &str) -> String {
    format!("{NOTICE_PREFIX}{idempotency_id}")
}

/// Prefix of notice attributes.
pub const NOTICE_PREFIX: &str = "notice:";

/// RFC 3339 in UTC at whole seconds (`2026-01-31T12:00:00Z`): fixed width, so text order is time
/// order. Callers pass whole-second times (see `whole_seconds`); sub-seconds are dropped here too.
pub fn sortable_time(t: OffsetDateTime) -> String {
    let utc = t.checked_to_offset(time::UtcOffset::UTC).unwrap_or(t);
    let t = utc.replace_nanosecond(0).unwrap_or(utc);
    t.format(&Rfc3339).unwrap_or_default()
}

/// A primary key map.
pub fn key(pk: String, sk: impl Into<String>) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.into())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sortable_time_is_fixed_width_utc_so_text_order_is_time_order() {
        let a = sortable_time(datetime!(2026-01-01 0:00:00.9 UTC));
        let b = sortable_time(datetime!(2026-01-01 0:00:01 +02:00));
        assert_eq!(a, "2026-01-01T00:00:00Z");
        assert_eq!(b, "2025-12-31T22:00:01Z");
        assert!(b < a);
    }
}
