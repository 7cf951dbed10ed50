//! [`FleetIndex`] on DynamoDB: each listing's legs (see `adapters::fleet`) read with `Query` and
//! `Limit`, on the table or the index the leg names. Index reads are eventually consistent: an
//! item written a moment ago may be missing from a listing for a moment.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::attention::FlagRecord;
use super::customers::CustomerRecord;
use super::installations::InstallationRecord;
use super::licenses::LicenseRecord;
use super::table::{DynamoStore, Item, from_item, s, sdk_error, values};
use crate::adapters::fleet::{
    Leg, LegRead, customer_legs, fill_page, flag_legs, installation_legs, license_legs,
};
use crate::domain::fleet::{
    AttentionKind, CustomerFilter, Flag, InstallationFilter, LicenseFilter, Page, PageCursor,
};
use crate::domain::ports::FleetIndex;
use crate::domain::{Customer, Installation, License, StoreError};

impl DynamoStore {
    /// One `Query` of a leg: up to `limit` items with sort keys in `[from, leg.upper]`, decoded
    /// by `decode`. An item that does not decode (a hand edit, a bug) is logged and skipped; its
    /// sort key still moves the cursor past it.
    async fn read_leg<T>(
        &self,
        leg: Leg,
        from: String,
        limit: usize,
        decode: fn(Item) -> Result<T, StoreError>,
    ) -> Result<LegRead<T>, StoreError> {
        let (pk_attr, sk_attr) = leg.index.attributes();
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(leg.index.name().map(str::to_owned))
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_names("#sk", sk_attr)
            .set_expression_attribute_values(Some(values(vec![
                (":pk", s(leg.pk)),
                (":from", s(from)),
                (":to", s(leg.upper)),
            ])))
            .limit(i32::try_from(limit.clamp(1, 1_000)).unwrap_or(100))
            .send()
            .await
            .map_err(sdk_error)?;
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        let entries = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let sk = match item.get(sk_attr) {
                    Some(AttributeValue::S(v)) => v.clone(),
                    _ => String::new(),
                };
                let decoded = decode(item)
                    .map_err(
                        |e| tracing::error!(error = %e, item = %sk, "undecodable item skipped"),
                    )
                    .ok();
                (sk, decoded)
            })
            .collect();
        Ok((entries, more))
    }
}

fn customer(item: Item) -> Result<Customer, StoreError> {
    Customer::try_from(from_item::<CustomerRecord>(item)?)
}

fn license(item: Item) -> Result<License, StoreError> {
    License::try_from(from_item::<LicenseRecord>(item)?)
}

fn installation(item: Item) -> Result<Installation, StoreError> {
    Installation::try_from(from_item::<InstallationRecord>(item)?)
}

fn flag(item: Item) -> Result<Flag, StoreError> {
    Flag::try_from(from_item::<FlagRecord>(item)?)
}

#[async_trait]
impl FleetIndex for DynamoStore {
    #[tracing::instrument(skip_all)]
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
            |leg, at, n| self.read_leg(leg, at, n, customer),
        )
        .await
    }

    #[tracing::instrument(skip_all)]
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
            |leg, at, n| self.read_leg(leg, at, n, license),
        )
        .await
    }

    #[tracing::instrument(skip_all)]
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
            |leg, at, n| self.read_leg(leg, at, n, installation),
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(kind = kind.as_str()))]
    async fn list_flags(
        &self,
        kind: AttentionKind,
        now: OffsetDateTime,
        from: Option<&PageCursor>,
        limit: usize,
    ) -> Result<Page<Flag>, StoreError> {
        // DynamoDB deletes by TTL lazily: a flag past its lifetime is skipped here.
        let legs = flag_legs(kind);
        fill_page(
            &legs,
            from,
            limit,
            |f: &Flag| f.expires_at() > now,
            |leg, at, n| self.read_leg(leg, at, n, flag),
        )
        .await
    }
}
