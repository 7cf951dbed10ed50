//! What every entity's keys share: the index names and the time encoding of sort keys. Each
//! entity module builds its own keys (`licenses.rs`: `LICENSE#<lid>` / `LICENSE`, …); the README's
//! access-pattern table, generated from the modules, shows them all.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Name of the customer index (`gsi1pk` / `gsi1sk`): a customer's licenses.
pub const GSI1: &str = "gsi1";
/// Name of the status + expiry / silence index (`gsi2pk` / `gsi2sk`), which the lifecycle job
/// sweeps (also: customers by creation time).
pub const GSI2: &str = "gsi2";
/// Name of the fleet index (`gsi3pk` / `gsi3sk`): licenses by plan, installations by version,
/// customers by name.
pub const GSI3: &str = "gsi3";
/// Name of the exact-match index (`gsi4pk` / `gsi4sk`): customers by email.
pub const GSI4: &str = "gsi4";

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
