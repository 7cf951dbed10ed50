//! SNS adapter for lifecycle notices: one message per notice on the events topic, the JSON notice
//! as the body and `type` / `licenseId` / `idempotencyId` as message attributes, so subscribers
//! (e-mail, webhooks, queues) filter without parsing and deduplicate on the idempotency id.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use crate::domain::lifecycle::Notice;
use crate::domain::ports::{EventPublisher, PublishError};

/// The events topic.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsPublisher {
    /// Binds `client` to the topic `topic_arn`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, PublishError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| PublishError(e.into()))
}

#[async_trait]
impl EventPublisher for SnsPublisher {
    #[tracing::instrument(skip_all, fields(notice = %notice.idempotency_id))]
    async fn publish(&self, notice: &Notice) -> Result<(), PublishError> {
        let body = serde_json::to_string(notice).map_err(|e| PublishError(e.into()))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            .message_attributes("type", attribute(notice.kind.type_name())?)
            .message_attributes("licenseId", attribute(notice.license_id.as_str())?)
            .message_attributes("idempotencyId", attribute(&notice.idempotency_id)?)
            .send()
            .await
            .map_err(|e| PublishError(e.into()))?;
        Ok(())
    }
}
