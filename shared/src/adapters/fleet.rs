//! The fleet listings as index walks, shared by the DynamoDB store and the in-memory one so both
//! page identically: which index partitions ("legs") a filter walks, in which order and key
//! range, and the one paging loop that fills a page from them.
//!
//! A store supplies only "read up to n entries of this leg from this sort key on" (a DynamoDB
//! `Query` with `Limit`, or the same over the memory store's maps with the same key functions);
//! what the index cannot select is filtered here, after decoding, by the filter's own `matches`
//! (a DynamoDB `FilterExpression` would read — and bill — the same items).

use std::future::Future;

use crate::domain::fleet::{
    AttentionKind, CustomerFilter, InstallationFilter, LicenseFilter, MAX_READS_PER_PAGE, Page,
    PageCursor,
};
use crate::domain::{InstallationStatus, LicenseStatus, StoreError};

use super::dynamo::keys as dkeys;

/// The table or one of its indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Index {
    /// The table itself (`pk` / `sk`).
    Table,
    /// Customer index.
    Gsi1,
    /// Status + expiry, heartbeat, creation index.
    Gsi2,
    /// Plan, version, name index.
    Gsi3,
    /// Email index.
    Gsi4,
}

impl Index {
    /// The index name for a `Query` (`None`: the table).
    pub(crate) fn name(self) -> Option<&'static str> {
        match self {
            Self::Table => None,
            Self::Gsi1 => Some(dkeys::GSI1),
            Self::Gsi2 => Some(dkeys::GSI2),
            Self::Gsi3 => Some(dkeys::GSI3),
            Self::Gsi4 => Some(dkeys::GSI4),
        }
    }

    /// The partition and sort key attribute names.
    pub(crate) fn attributes(self) -> (&'static str, &'static str) {
        match self {
            Self::Table => ("pk", "sk"),
            Self::Gsi1 => ("gsi1pk", "gsi1sk"),
            Self::Gsi2 => ("gsi2pk", "gsi2sk"),
            Self::Gsi3 => ("gsi3pk", "gsi3sk"),
            Self::Gsi4 => ("gsi4pk", "gsi4sk"),
        }
    }
}

/// Below every sort key we write (they start with a digit, a letter or a folded name, which has
/// no control character): the lower bound of an unbounded leg. DynamoDB refuses empty key values.
pub(crate) const BOTTOM: &str = " ";
/// Above every sort key we write: U+10FFFF is the largest code point, so its UTF-8 sorts after any
/// other character's in DynamoDB's byte order (and in Rust's `str` order, the same).
pub(crate) const TOP: &str = "\u{10FFFF}";

/// One index partition to walk, over the inclusive sort-key range `[lower, upper]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leg {
    /// Where.
    pub index: Index,
    /// The partition key value (also the leg's name in a cursor).
    pub pk: String,
    /// Lowest sort key wanted.
    pub lower: String,
    /// Highest sort key wanted.
    pub upper: String,
}

impl Leg {
    fn new(
        index: Index,
        pk: impl Into<String>,
        lower: Option<String>,
        upper: Option<String>,
    ) -> Self {
        Self {
            index,
            pk: pk.into(),
            lower: lower.unwrap_or_else(|| BOTTOM.to_owned()),
            upper: upper.unwrap_or_else(|| TOP.to_owned()),
        }
    }
}

/// Sort keys that start with a time (`<time>#…`) at or after `from` and before `to`: `T#…` sorts
/// above `T` and below `T'` for every later `T'`, so the text bounds are the times themselves.
fn time_range(
    from: Option<time::OffsetDateTime>,
    to: Option<time::OffsetDateTime>,
) -> (Option<String>, Option<String>) {
    (from.map(dkeys::sortable_time), to.map(dkeys::sortable_time))
}

/// Legs of the customer listing: exact email, else name prefix, else a created range, else all
/// customers by name.
pub(crate) fn customer_legs(f: &CustomerFilter) -> Vec<Leg> {
    use super::dynamo::customers as c;
    if let Some(email) = &f.email {
        return vec![Leg::new(Index::Gsi4, c::email_gsi4_pk(email), None, None)];
    }
    if let Some(prefix) = &f.name_prefix {
        let key = c::name_key(prefix);
        return vec![Leg::new(
            Index::Gsi3,
            c::NAME_GSI3_PK,
            Some(key.clone()),
            Some(format!("{key}{TOP}")),
        )];
    }
    if f.created_after.is_some() || f.created_before.is_some() {
        let (lower, upper) = time_range(f.created_after, f.created_before);
        return vec![Leg::new(Index::Gsi2, c::CREATED_GSI2_PK, lower, upper)];
    }
    vec![Leg::new(Index::Gsi3, c::NAME_GSI3_PK, None, None)]
}

/// Statuses in the order an unfiltered license listing walks them.
const STATUS_ORDER: [LicenseStatus; 4] = [
    LicenseStatus::Active,
    LicenseStatus::Suspended,
    LicenseStatus::Expired,
    LicenseStatus::Revoked,
];

/// Legs of the license listing: the customer's licenses, else one status, else one plan, else
/// one channel, else every status in turn — each by expiry within the asked range.
pub(crate) fn license_legs(f: &LicenseFilter) -> Vec<Leg> {
    use super::dynamo::licenses as l;
    if let Some(customer) = &f.customer {
        return vec![Leg::new(
            Index::Gsi1,
            super::dynamo::customers::customer_pk(customer),
            Some("LICENSE#".into()),
            Some(format!("LICENSE#{TOP}")),
        )];
    }
    let (lower, upper) = time_range(f.expires_after, f.expires_before);
    if let Some(status) = f.status {
        return vec![Leg::new(
            Index::Gsi2,
            l::status_gsi2_pk(status),
            lower,
            upper,
        )];
    }
    if let Some(plan) = f.plan {
        return vec![Leg::new(Index::Gsi3, l::plan_gsi3_pk(plan), lower, upper)];
    }
    if let Some(channel) = f.channel {
        return vec![Leg::new(
            Index::Gsi4,
            l::channel_gsi4_pk(channel),
            lower,
            upper,
        )];
    }
    STATUS_ORDER
        .iter()
        .map(|s| {
            Leg::new(
                Index::Gsi2,
                l::status_gsi2_pk(*s),
                lower.clone(),
                upper.clone(),
            )
        })
        .collect()
}

/// Legs of the installation listing: the license's installations, else one version, else one
/// seat state, else active then inactive ones — by last heartbeat before `seen_before`.
pub(crate) fn installation_legs(f: &InstallationFilter) -> Vec<Leg> {
    use super::dynamo::installations as i;
    if let Some(license) = &f.license {
        return vec![Leg::new(
            Index::Table,
            super::dynamo::licenses::license_pk(license),
            Some("INSTALLATION#".into()),
            Some(format!("INSTALLATION#{TOP}")),
        )];
    }
    let (_, upper) = time_range(None, f.seen_before);
    if let Some(version) = &f.version {
        return vec![Leg::new(
            Index::Gsi3,
            i::version_gsi3_pk(version),
            None,
            upper,
        )];
    }
    let states = match f.status {
        Some(InstallationStatus::Active) => vec![i::SEEN_GSI2_PK],
        Some(InstallationStatus::Inactive) => vec![i::UNSEATED_GSI2_PK],
        None => vec![i::SEEN_GSI2_PK, i::UNSEATED_GSI2_PK],
    };
    states
        .into_iter()
        .map(|pk| Leg::new(Index::Gsi2, pk, None, upper.clone()))
        .collect()
}

/// The leg of one kind of stored flag.
pub(crate) fn flag_legs(kind: AttentionKind) -> Vec<Leg> {
    vec![Leg::new(
        Index::Table,
        super::dynamo::attention::flag_pk(kind),
        None,
        None,
    )]
}

/// What one read of a leg returned: entries `(sort key, decoded item or None if undecodable)` in
/// sort-key order, and whether more may follow (DynamoDB's `LastEvaluatedKey`: set whenever the
/// read stopped at its limit, even if nothing follows).
pub(crate) type LegRead<T> = (Vec<(String, Option<T>)>, bool);

/// Fills one page: walks `legs` from `cursor` (or the start), reading at most `limit` entries a
/// time, keeping those `keep` accepts, until the page is full, the legs end, or
/// [`MAX_READS_PER_PAGE`] reads were made. A cursor naming a leg this listing does not walk is
/// [`StoreError::InvalidCursor`].
pub(crate) async fn fill_page<T, F, Fut>(
    legs: &[Leg],
    cursor: Option<&PageCursor>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
    mut read: F,
) -> Result<Page<T>, StoreError>
where
    F: FnMut(Leg, String, usize) -> Fut,
    Fut: Future<Output = Result<LegRead<T>, StoreError>>,
{
    let limit = limit.max(1);
    let (mut leg, mut after) = match cursor {
        None => (0, None),
        Some(c) => (
            legs.iter()
                .position(|l| l.pk == c.leg)
                .ok_or(StoreError::InvalidCursor)?,
            Some(c.after.clone()).filter(|a| !a.is_empty()),
        ),
    };
    let mut items = Vec::new();
    let mut reads = 0;
    while leg < legs.len() {
        let current = &legs[leg];
        let from = match &after {
            // Strictly after the last key seen: every other key of the leg that sorts above it
            // also sorts at or above it + " " (keys hold no control characters).
            Some(a) if a.as_str() >= current.lower.as_str() => format!("{a} "),
            _ => current.lower.clone(),
        };
        if from > current.upper {
            leg += 1;
            after = None;
            continue;
        }
        if reads == MAX_READS_PER_PAGE {
            break;
        }
        let (entries, more) = read(current.clone(), from, limit - items.len()).await?;
        reads += 1;
        for (sk, item) in entries {
            after = Some(sk);
            if let Some(item) = item.filter(|i| keep(i)) {
                items.push(item);
            }
        }
        if !more {
            leg += 1;
            after = None;
        }
        if items.len() >= limit {
            break;
        }
    }
    let next = (leg < legs.len()).then(|| PageCursor {
        leg: legs[leg].pk.clone(),
        after: after.unwrap_or_default(),
    });
    Ok(Page { items, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn time_bounds_select_after_inclusive_and_before_exclusive() {
        let (lower, upper) = time_range(
            Some(datetime!(2026-01-01 0:00 UTC)),
            Some(datetime!(2026-02-01 0:00 UTC)),
        );
        let (lower, upper) = (lower.expect("lower"), upper.expect("upper"));
        let key = |t: &str| format!("{t}#NECTAR-STARTER-2026-AAAAAAAA");
        assert!(key("2026-01-01T00:00:00Z") >= lower);
        assert!(key("2026-01-31T23:59:59Z") <= upper);
        assert!(key("2026-02-01T00:00:00Z") > upper);
        assert!(key("2025-12-31T23:59:59Z") < lower);
    }

    #[test]
    fn an_unfiltered_license_listing_walks_every_status_in_order() {
        let legs = license_legs(&LicenseFilter::default());
        let pks: Vec<_> = legs.iter().map(|l| l.pk.as_str()).collect();
        assert_eq!(
            pks,
            [
                "STATUS#active",
                "STATUS#suspended",
                "STATUS#expired",
                "STATUS#revoked"
            ]
        );
    }

    #[tokio::test]
    async fn a_cursor_of_another_listing_is_refused() {
        let legs = license_legs(&LicenseFilter::default());
        let foreign = PageCursor {
            leg: "CUSTOMERS#name".into(),
            after: String::new(),
        };
        let got = fill_page::<u8, _, _>(
            &legs,
            Some(&foreign),
            10,
            |_| true,
            |_, _, _| async { Ok((Vec::new(), false)) },
        )
        .await;
        assert!(matches!(got, Err(StoreError::InvalidCursor)));
    }

    #[tokio::test]
    async fn a_page_stops_after_its_read_budget_and_resumes_where_it_stopped() {
        // One leg of keys "00".."99"; multiples of 20 kept. Reads of 10, 9, 9, 8 keys fill
        // page one with 0 and 20 and stop at the budget after key 35.
        let legs = vec![Leg::new(Index::Table, "P", None, None)];
        let all: Vec<String> = (0..100).map(|i| format!("{i:02}")).collect();
        let read = |_: Leg, from: String, n: usize| {
            let got: Vec<(String, Option<u32>)> = all
                .iter()
                .filter(|k| **k >= from)
                .take(n)
                .map(|k| (k.clone(), k.parse().ok()))
                .collect();
            let more = got.len() == n;
            async move { Ok((got, more)) }
        };
        let page = fill_page(&legs, None, 10, |v: &u32| v.is_multiple_of(20), read)
            .await
            .expect("page");
        assert_eq!(page.items, [0, 20]);
        let next = page.next.expect("more to come");
        assert_eq!(next.after, "35", "four reads examined 00..35");
        let page = fill_page(&legs, Some(&next), 10, |v: &u32| v.is_multiple_of(20), read)
            .await
            .expect("page");
        assert_eq!(page.items, [40, 60]);
    }
}
