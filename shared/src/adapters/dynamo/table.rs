//! The table: [`DynamoStore`] (a client bound to one table) with the request helpers every entity
//! module uses — consistent `GetItem` / `BatchGetItem`, `Query` to the end, transactions — the one
//! error classification, the one retry policy ([`Backoff`]) and the [`AccessPattern`] record each
//! entity module declares its reads and writes with.
//!
//! Retries: the SDK retries throttling and transient faults of each call itself (standard mode).
//! [`Backoff`] covers only what the SDK does not: unprocessed `BatchGetItem` keys, transaction
//! conflicts on a hot counter, a seat refusal worth re-checking, and waiting for a new table.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys;
use crate::domain::StoreError;

/// One item's attributes.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// The store, bound to one table (tests pass their own table name).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
}

impl DynamoStore {
    /// Binds `client` to `table`.
    pub fn new_with_table(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Strongly consistent `GetItem`.
    pub(crate) async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item)
    }

    /// Strongly consistent `BatchGetItem` of up to 100 keys in one round trip; keys DynamoDB
    /// leaves unprocessed under load are retried under [`Backoff::UNPROCESSED_KEYS`], then
    /// reported as [`StoreError::Throttled`].
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut pending = keys;
        let mut found = Vec::new();
        let mut attempt = 0;
        loop {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Backend(e.into()))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(sdk_error)?;
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(found);
            }
            if !Backoff::UNPROCESSED_KEYS.pause(attempt).await {
                tracing::warn!(keys = pending.len(), "BatchGetItem keys still unprocessed");
                return Err(StoreError::Throttled);
            }
            attempt += 1;
        }
    }

    /// `TransactWriteItems`; a cancellation comes back with its per-item reason codes.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), TransactError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    Err(TransactError::Cancelled(
                        e.cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("None").to_owned())
                            .collect(),
                    ))
                }
                other => {
                    let code = other.code().map(str::to_owned);
                    Err(TransactError::Store(classify(
                        code.as_deref(),
                        other.into(),
                    )))
                }
            },
            Err(other) => Err(TransactError::Store(sdk_error(other))),
        }
    }

    /// A transaction item putting `item`, if `condition` holds.
    pub(crate) fn put(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(|e| StoreError::Backend(e.into()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Every item matching `key_condition`, page after page. The table is read consistently;
    /// indexes only offer eventual consistency.
    pub(crate) async fn query_all(
        &self,
        index: Option<&str>,
        key_condition: &str,
        values: Item,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .consistent_read(index.is_none())
                .key_condition_expression(key_condition)
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}

/// Why a transaction did not commit.
pub(crate) enum TransactError {
    /// Cancelled; one reason code per item, in order (`None`, `ConditionalCheckFailed`, …).
    Cancelled(Vec<String>),
    /// Any other failure.
    Store(StoreError),
}

/// Whether the first item of a cancelled transaction failed its condition.
pub(crate) fn first_failed(reasons: &[String]) -> bool {
    reasons.first().map(String::as_str) == Some("ConditionalCheckFailed")
}

fn classify(code: Option<&str>, source: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    match code {
        // Retryable by the caller: capacity, a concurrent transaction on the item (which the SDK
        // does not retry itself), or a transient service fault.
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TransactionConflictException"
            | "InternalServerError"
            | "ServiceUnavailable",
        ) => StoreError::Throttled,
        _ => StoreError::Backend(source),
    }
}

/// The one mapping of an SDK error to a [`StoreError`].
pub(crate) fn sdk_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    // No answer at all (connection refused or reset, DNS, a timeout, an unreadable response) is
    // as transient as throttling: the caller gets a 503 with Retry-After, not a 500.
    if matches!(
        e,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_)
    ) {
        return StoreError::Unavailable(Box::new(e));
    }
    let code = e.code().map(str::to_owned);
    classify(code.as_deref(), Box::new(e))
}

/// An item record as attributes.
pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Backend(e.into()))
}

/// A record from attributes; an item that does not decode is [`StoreError::Corrupt`].
pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Expression attribute names.
pub(crate) fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Expression attribute values.
pub(crate) fn values(pairs: Vec<(&str, AttributeValue)>) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A time as stored: whole-second RFC 3339 UTC text (see [`keys::sortable_time`]).
pub(crate) fn time_value(t: time::OffsetDateTime) -> AttributeValue {
    s(keys::sortable_time(t))
}

/// Only the entity tag, to route a partition's items to their record types.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Tagged {
    /// The entity tag.
    pub entity: String,
}

/// What one attempt under a [`Backoff`] came to.
pub(crate) enum Step<T> {
    /// Finished with this value.
    Done(T),
    /// Worth another attempt after a pause.
    Retry,
}

/// The one retry policy for what the SDK does not retry itself: at most `attempts` attempts,
/// pausing between them for an exponentially growing delay (`base` × 2ⁿ, at most `cap`) with
/// "equal jitter" (a uniform pick in its upper half), so concurrent writers spread out yet the
/// total wait stays bounded. Giving up is never silent: it is logged, and the caller says what
/// it means (an error, or a definite answer such as "every seat is taken").
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    attempts: u32,
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// `BatchGetItem` keys left unprocessed under load (4 attempts, ≤ 0.3 s in all).
    pub(crate) const UNPROCESSED_KEYS: Self = Self::new(4, 20, 160);
    /// A transaction cancelled by a concurrent one on the same counter (6 attempts, ≤ 1.5 s).
    pub(crate) const TRANSACTION_CONFLICT: Self = Self::new(6, 10, 400);
    /// A seat refusal re-checked while concurrent beats of the same installation may be about to
    /// give their seats back (3 attempts, ≤ 0.15 s).
    pub(crate) const SEAT_RECHECK: Self = Self::new(3, 25, 100);
    /// A table being created until it is active (60 attempts, ≤ 60 s).
    pub(crate) const TABLE_ACTIVE: Self = Self::new(60, 100, 1_000);

    const fn new(attempts: u32, base_ms: u64, cap_ms: u64) -> Self {
        Self {
            attempts,
            base: Duration::from_millis(base_ms),
            cap: Duration::from_millis(cap_ms),
        }
    }

    /// The delay after attempt `n` (0-based).
    fn delay(self, n: u32) -> Duration {
        let full = self
            .base
            .saturating_mul(1u32.checked_shl(n).unwrap_or(u32::MAX))
            .min(self.cap);
        let half = full / 2;
        let millis = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::random_range(0..=millis))
    }

    /// After attempt `n` (0-based) fell short: pauses and returns `true` if another attempt is
    /// allowed, else returns `false` at once — the caller then reports what giving up means, as
    /// an error (and logs it). For loops that carry state between attempts.
    pub(crate) async fn pause(self, n: u32) -> bool {
        if n + 1 < self.attempts {
            tokio::time::sleep(self.delay(n)).await;
            true
        } else {
            false
        }
    }

    /// Runs `attempt(n)` until it is [`Step::Done`] or fails, pausing between attempts; when the
    /// attempts run out, returns `give_up()`: an error is logged as a warning, a definite answer
    /// (such as "every seat is taken") at debug level. No pause follows the last attempt.
    pub(crate) async fn run<T, F, Fut>(
        self,
        what: &'static str,
        mut attempt: F,
        give_up: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<Step<T>, StoreError>>,
    {
        let mut n = 0;
        loop {
            if let Step::Done(value) = attempt(n).await? {
                return Ok(value);
            }
            if !self.pause(n).await {
                let outcome = give_up();
                if outcome.is_err() {
                    tracing::warn!(attempts = self.attempts, what, "retries exhausted");
                } else {
                    tracing::debug!(attempts = self.attempts, what, "retries exhausted");
                }
                return outcome;
            }
            n += 1;
        }
    }
}

/// How a read is consistent (or that the pattern writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Consistency {
    /// A strongly consistent read of the table.
    Strong,
    /// An eventually consistent read (every index read).
    Eventual,
    /// A write; conditions are checked against the latest state.
    Write,
}

impl Consistency {
    fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One way the code reads or writes the table, declared next to the code that does it; the
/// README's access-pattern table is rendered from these and checked against them in a test.
#[derive(Debug, Clone, Copy)]
pub struct AccessPattern {
    /// The entity (item type) it is about.
    pub entity: &'static str,
    /// What it does, in words.
    pub name: &'static str,
    /// The DynamoDB operation (e.g. `BatchGetItem`, `Query gsi2`, `TransactWriteItems`).
    pub operation: &'static str,
    /// The key (condition) and, for writes, the condition expression, in key-template terms.
    pub key: &'static str,
    /// Read consistency, or [`Consistency::Write`].
    pub consistency: Consistency,
    /// The port method(s) that use it.
    pub used_by: &'static str,
}

/// The Markdown table of `patterns`, in order, with a line saying where it comes from.
pub fn render_access_patterns(patterns: &[AccessPattern]) -> String {
    let mut out = String::from(
        "Access patterns, as each entity module of `shared/src/adapters/dynamo/` declares them \
         (`ACCESS_PATTERNS`; generated — `cargo test -p shared` checks this table):\n\n\
         | entity | access pattern | operation | key / condition | consistency | used by |\n\
         |---|---|---|---|---|---|\n",
    );
    for p in patterns {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            p.entity,
            p.name,
            p.operation,
            p.key.replace('|', "\\|"),
            p.consistency.as_str(),
            p.used_by
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;

    /// A store that does not answer is a retryable outage (503), never a 500.
    #[test]
    fn no_answer_from_dynamodb_is_unavailable_and_maps_to_a_503_with_retry_after() {
        let hung = SdkError::<GetItemError, HttpResponse>::timeout_error("no answer in time");
        let error = sdk_error(hung);
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        let response =
            crate::http::ApiError::from(crate::domain::DomainError::Store(error)).into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
    }

    #[test]
    fn pauses_grow_to_the_cap_and_stay_in_their_upper_half() {
        let b = Backoff::new(10, 20, 160);
        for n in 0..10 {
            let full = Duration::from_millis((20u64 << n).min(160));
            let p = b.delay(n);
            assert!(p >= full / 2 && p <= full, "attempt {n}: {p:?}");
        }
        assert!(Backoff::new(40, 100, 1_000).delay(39) <= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn retries_until_done_and_reports_giving_up() {
        let quick = Backoff::new(3, 1, 1);
        let mut calls = 0;
        let done = quick
            .run(
                "test",
                |n| {
                    calls += 1;
                    async move { Ok(if n == 1 { Step::Done(n) } else { Step::Retry }) }
                },
                || Err(StoreError::Throttled),
            )
            .await;
        assert_eq!((done.ok(), calls), (Some(1), 2));
        let mut calls = 0;
        let gave_up: Result<u32, _> = quick
            .run(
                "test",
                |_| {
                    calls += 1;
                    async { Ok(Step::Retry) }
                },
                || Err(StoreError::Throttled),
            )
            .await;
        assert!(matches!(gave_up, Err(StoreError::Throttled)));
        assert_eq!(calls, 3);
        let failed: Result<u32, _> = quick
            .run(
                "test",
                |_| async { Err(StoreError::Corrupt("x".into())) },
                || Ok(0),
            )
            .await;
        assert!(
            matches!(failed, Err(StoreError::Corrupt(_))),
            "errors end it"
        );
    }
}
