//! DynamoDB adapter: one table, storage owned by entity. Each module owns its entity's keys, item
//! records (serde_dynamo) and port implementations, and declares its access patterns as data:
//! - [`table`]: the client wrapper, error classification and the one retry policy;
//! - `licenses`, `installations` (heartbeats and the seat claim), `customers`, `audit`, `usage`,
//!   `workflows` (rate windows, executions), `lifecycle` (index sweeps, cursors, notice ledger),
//!   `trust` (endorsements), `operators` (operators, their tokens and names), `attention`
//!   ("needs attention" flags), `fleet` (the operators' listings over the indexes);
//! - [`keys`]: what all keys share (index names, time encoding); [`schema`]: the table definition.
//!
//! Consistency: every read that decides a validation is strongly consistent, so a revocation is
//! seen by the very next request. Every state change and its audit entry go in one transaction.
//! The README's access-pattern table is generated from [`access_patterns`] (and checked in a test).

pub(crate) mod attention;
mod audit;
pub(crate) mod customers;
mod fleet;
pub(crate) mod installations;
pub mod keys;
pub(crate) mod licenses;
mod lifecycle;
pub(crate) mod metrics;
mod operators;
pub mod schema;
mod sessions;
pub mod table;
mod trust;
mod usage;
mod workflows;

pub use table::{AccessPattern, Consistency, DynamoStore};
pub use usage::MARKER_TTL_DAYS;
pub use workflows::EXECUTION_TTL_DAYS;

pub(crate) use installations::seen_gsi2_sk;
pub(crate) use licenses::expiry_gsi2_sk;
pub(crate) use workflows::fit_for_storage;

/// Every access pattern of the table, entity by entity.
pub fn access_patterns() -> Vec<AccessPattern> {
    [
        licenses::ACCESS_PATTERNS,
        installations::ACCESS_PATTERNS,
        customers::ACCESS_PATTERNS,
        attention::ACCESS_PATTERNS,
        metrics::ACCESS_PATTERNS,
        audit::ACCESS_PATTERNS,
        usage::ACCESS_PATTERNS,
        workflows::ACCESS_PATTERNS,
        lifecycle::ACCESS_PATTERNS,
        trust::ACCESS_PATTERNS,
        sessions::ACCESS_PATTERNS,
        operators::ACCESS_PATTERNS,
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    const README: &str = include_str!("../../../../README.md");
    const BEGIN: &str = "<!-- access-patterns:begin -->";
    const END: &str = "<!-- access-patterns:end -->";

    #[test]
    fn the_readme_access_pattern_table_matches_the_code() {
        let expected = super::table::render_access_patterns(&super::access_patterns());
        let found = README
            .split_once(BEGIN)
            .and_then(|(_, rest)| rest.split_once(END))
            .map(|(table, _)| table.trim());
        assert!(
            found == Some(expected.trim()),
            "README.md's access-pattern table (between {BEGIN} and {END}) is out of date; \
             paste this between the markers:\n\n{expected}"
        );
    }
}
