//! The table definition for local stacks and tests; `template.yaml` declares the same table for AWS.
//! Waiting for a new table to become active uses the one retry policy ([`Backoff::TABLE_ACTIVE`])
//! and fails loudly if it never does.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::keys::{GSI1, GSI2, GSI3, GSI4};
use super::table::{Backoff, Step};
use crate::domain::StoreError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Creates the table (and its TTL setting) unless it exists; waits until it is active.
pub async fn ensure_table(client: &Client, name: &str) -> Result<(), BoxError> {
    let exists = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .is_ok();
    if !exists {
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
        };
        let index = |name: &str, pk: &str, sk: &str| -> Result<GlobalSecondaryIndex, BoxError> {
            Ok(GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(pk, KeyType::Hash)?)
                .key_schema(key(sk, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()?)
        };
        let mut create = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .global_secondary_indexes(index(GSI1, "gsi1pk", "gsi1sk")?)
            .global_secondary_indexes(index(GSI2, "gsi2pk", "gsi2sk")?)
            .global_secondary_indexes(index(GSI3, "gsi3pk", "gsi3sk")?)
            .global_secondary_indexes(index(GSI4, "gsi4pk", "gsi4sk")?);
        for a in [
            "pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "gsi4pk",
            "gsi4sk",
        ] {
            create = create.attribute_definitions(attr(a)?);
        }
        create.send().await?;
    }
    Backoff::TABLE_ACTIVE
        .run(
            "wait for the table to become active",
            |_| async {
                let status = client
                    .describe_table()
                    .table_name(name)
                    .send()
                    .await
                    .map_err(|e| StoreError::Backend(e.into()))?
                    .table
                    .and_then(|t| t.table_status);
                Ok(
                    if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
                        Step::Done(())
                    } else {
                        Step::Retry
                    },
                )
            },
            || {
                Err(StoreError::Backend(
                    format!("table {name} is not active yet; giving up").into(),
                ))
            },
        )
        .await?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("ttl")
                .enabled(true)
                .build()?,
        )
        .send()
        .await
        .map(|_| ())
        .or_else(|e| {
            // Re-running bootstrap on a table whose TTL is already on is fine.
            let msg = format!("{e:?}");
            if msg.contains("already enabled") {
                Ok(())
            } else {
                Err(e.into())
            }
        })
}
