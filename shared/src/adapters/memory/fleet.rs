//! The fleet listings, flags and metrics snapshots in memory: every entity's index entries are computed with the
//! DynamoDB adapter's key functions and walked by the same paging loop (`adapters::fleet`), so
//! order, page boundaries and cursors are the DynamoDB store's.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::MemoryStore;
use crate::adapters::dynamo::attention::{flag_pk, flag_sk};
use crate::adapters::dynamo::customers::CustomerRecord;
use crate::adapters::dynamo::installations::index_entries;
use crate::adapters::dynamo::licenses::LicenseRecord;
use crate::adapters::fleet::{
    Index, Leg, LegRead, customer_legs, fill_page, flag_legs, installation_legs, license_legs,
};
use crate::domain::fleet::{
    AttentionKind, CustomerFilter, Flag, InstallationFilter, LicenseFilter, Page, PageCursor,
};
use crate::domain::license::whole_seconds;
use crate::domain::ports::{AttentionFlags, FleetIndex};
use crate::domain::{Customer, Installation, License, StoreError};

/// One "query" of a leg over `(index, partition, sort key, item)` entries: as DynamoDB with
/// `Limit`, reporting more whenever it stopped at the limit.
fn read<T>(
    entries: impl Iterator<Item = (Index, String, String, T)>,
    leg: &Leg,
    from: &str,
    limit: usize,
) -> LegRead<T> {
    let mut hits: Vec<(String, Option<T>)> = entries
        .filter(|(index, pk, sk, _)| {
            *index == leg.index
                && *pk == leg.pk
                && sk.as_str() >= from
                && sk.as_str() <= leg.upper.as_str()
        })
        .map(|(_, _, sk, item)| (sk, Some(item)))
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0));
    let limit = limit.clamp(1, 1_000);
    hits.truncate(limit);
    let more = hits.len() == limit;
    (hits, more)
}

fn license_entries(l: &License) -> [(Index, String, String, License); 4] {
    let r = LicenseRecord::from(l);
    [
        (Index::Gsi1, r.gsi1pk, r.gsi1sk, l.clone()),
        (Index::Gsi2, r.gsi2pk, r.gsi2sk, l.clone()),
        (Index::Gsi3, r.gsi3pk, r.gsi3sk, l.clone()),
        (Index::Gsi4, r.gsi4pk, r.gsi4sk, l.clone()),
    ]
}

fn customer_entries(c: &Customer) -> [(Index, String, String, Customer); 3] {
    let r = CustomerRecord::from(c);
    [
        (Index::Gsi2, r.gsi2pk, r.gsi2sk, c.clone()),
        (Index::Gsi3, r.gsi3pk, r.gsi3sk, c.clone()),
        (Index::Gsi4, r.gsi4pk, r.gsi4sk, c.clone()),
    ]
}

#[async_trait]
impl FleetIndex for MemoryStore {
    async fn list_customers(
        &self,
        filter: &CustomerFilter,
        from: Option<&PageCursor>,
        limit: usize,
    ) -> Result<Page<Customer>, StoreError> {
        let legs = customer_legs(filter);
        fill_page(
            &legs,
            from,
            limit,
            |c| filter.matches(c),
            |leg, at, n| {
                let state = self.state();
                let got = read(
                    state.customers.values().flat_map(customer_entries),
                    &leg,
                    &at,
                    n,
                );
                async move { Ok(got) }
            },
        )
        .await
    }

    async fn list_licenses(
        &self,
        filter: &LicenseFilter,
        from: Option<&PageCursor>,
        limit: usize,
    ) -> Result<Page<License>, StoreError> {
        let legs = license_legs(filter);
        fill_page(
            &legs,
            from,
            limit,
            |l| filter.matches(l),
            |leg, at, n| {
                let state = self.state();
                let got = read(
                    state
                        .licenses
                        .values()
                        .flat_map(|item| license_entries(&item.license)),
                    &leg,
                    &at,
                    n,
                );
                async move { Ok(got) }
            },
        )
        .await
    }

    async fn list_installations(
        &self,
        filter: &InstallationFilter,
        from: Option<&PageCursor>,
        limit: usize,
    ) -> Result<Page<Installation>, StoreError> {
        let legs = installation_legs(filter);
        fill_page(
            &legs,
            from,
            limit,
            |i| filter.matches(i),
            |leg, at, n| {
                let state = self.state();
                let got = read(
                    state.installations.values().flat_map(|i| {
                        index_entries(i)
                            .into_iter()
                            .map(move |(index, pk, sk)| (index, pk, sk, i.clone()))
                    }),
                    &leg,
                    &at,
                    n,
                );
                async move { Ok(got) }
            },
        )
        .await
    }

    async fn list_flags(
        &self,
        kind: AttentionKind,
        now: OffsetDateTime,
        from: Option<&PageCursor>,
        limit: usize,
    ) -> Result<Page<Flag>, StoreError> {
        let legs = flag_legs(kind);
        fill_page(
            &legs,
            from,
            limit,
            |f: &Flag| f.expires_at() > now,
            |leg, at, n| {
                let state = self.state();
                let got = read(
                    state
                        .flags
                        .iter()
                        .map(|((pk, sk), f)| (Index::Table, pk.clone(), sk.clone(), f.clone())),
                    &leg,
                    &at,
                    n,
                );
                async move { Ok(got) }
            },
        )
        .await
    }
}

#[async_trait]
impl AttentionFlags for MemoryStore {
    async fn raise(&self, flag: &Flag) -> Result<(), StoreError> {
        let mut flag = flag.clone();
        flag.raised_at = whole_seconds(flag.raised_at);
        let key = (
            flag_pk(flag.kind),
            flag_sk(&flag.license_id, flag.installation_id.as_ref()),
        );
        self.state().flags.insert(key, flag);
        Ok(())
    }
}

#[async_trait]
impl crate::domain::ports::MetricsStore for MemoryStore {
    async fn put_snapshot(
        &self,
        snapshot: &nectar_protocol::metrics::MetricsSnapshot,
    ) -> Result<(), StoreError> {
        self.state()
            .snapshots
            .insert(snapshot.date.clone(), snapshot.clone());
        Ok(())
    }

    async fn latest_snapshot(
        &self,
    ) -> Result<Option<nectar_protocol::metrics::MetricsSnapshot>, StoreError> {
        Ok(self.state().snapshots.values().next_back().cloned())
    }

    async fn snapshots(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<nectar_protocol::metrics::MetricsSnapshot>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        Ok(self
            .state()
            .snapshots
            .range(from.to_owned()..=to.to_owned())
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn revenue_changes(
        &self,
        period: crate::domain::Period,
    ) -> Result<Vec<crate::domain::revenue::RevenueChange>, StoreError> {
        let month = period.to_string();
        Ok(self
            .state()
            .revenue_changes
            .iter()
            .filter(|((p, ..), _)| *p == month)
            .map(|(_, c)| c.clone())
            .collect())
    }
}
