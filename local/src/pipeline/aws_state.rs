//! What the tests and the demo read and change in the local AWS services
//! behind a running [`Pipeline`]: queue depths, the dead-letter queue, the
//! store table (held events, refused clicks, the table itself).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_sdk_sqs::types::QueueAttributeName;
use tokio::time::Instant;

use super::Pipeline;
use crate::aws_setup::create_store_table;

/// Messages in a queue, by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

impl QueueDepth {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

impl Pipeline {
    /// Stores `body` as the dispatcher stores an event it reports with an
    /// Approve button: held since `reported_ago`, approvable for
    /// [`PipelineOptions::approval_ttl_hours`] from then.
    pub async fn store_held_event(
        &self,
        event_id: &str,
        body: &str,
        reason: &str,
        user_count: u32,
        reported_ago: Duration,
    ) -> anyhow::Result<()> {
        let held = shared::store::HeldEvent::new(
            event_id,
            body,
            reason,
            user_count,
            time::OffsetDateTime::now_utc() - reported_ago,
            Duration::from_secs(self.options.approval_ttl_hours * 3600),
        );
        self.store
            .put_held_event(&held)
            .await
            .with_context(|| format!("storing the held event {event_id}"))?;
        Ok(())
    }

    /// The refused clicks the store kept for this Slack user, oldest first:
    /// each item's string and number attributes.
    pub async fn refusals(
        &self,
        slack_user_id: &str,
    ) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let out = self
            .aws
            .dynamodb
            .query()
            .table_name(&self.stack.store_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(format!("refusal#{slack_user_id}")),
            )
            .consistent_read(true)
            .send()
            .await
            .context("querying the store for refusals")?;
        Ok(out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                item.into_iter()
                    .filter_map(|(k, v)| match v {
                        AttributeValue::S(s) | AttributeValue::N(s) => Some((k, s)),
                        _ => None,
                    })
                    .collect()
            })
            .collect())
    }

    /// Deletes the store table: from now on both functions find the store
    /// unavailable (DynamoDB answers `ResourceNotFoundException`).
    pub async fn delete_store_table(&self) -> anyhow::Result<()> {
        self.aws
            .dynamodb
            .delete_table()
            .table_name(&self.stack.store_table)
            .send()
            .await
            .context("deleting the store table")?;
        Ok(())
    }

    /// Creates the store table again (empty) after [`Pipeline::delete_store_table`].
    pub async fn recreate_store_table(&self) -> anyhow::Result<()> {
        create_store_table(&self.aws, &self.stack.store_table)
            .await
            .context("creating the store table again")
    }

    async fn depth(&self, queue_url: &str) -> anyhow::Result<QueueDepth> {
        let out = self
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .with_context(|| format!("GetQueueAttributes {queue_url}"))?;
        let attrs = out.attributes.unwrap_or_default();
        let get =
            |name: &QueueAttributeName| attrs.get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(QueueDepth {
            visible: get(&QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    /// The event queue's depth.
    pub async fn queue_depth(&self) -> anyhow::Result<QueueDepth> {
        self.depth(&self.stack.queues.queue_url).await
    }

    /// The dead-letter queue's depth.
    pub async fn dlq_depth(&self) -> anyhow::Result<QueueDepth> {
        self.depth(&self.stack.queues.dlq_url).await
    }

    /// Bodies of the messages in the dead-letter queue (read without hiding them).
    pub async fn dlq_bodies(&self) -> anyhow::Result<Vec<String>> {
        let out = self
            .aws
            .sqs
            .receive_message()
            .queue_url(&self.stack.queues.dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .context("ReceiveMessage on the dead-letter queue")?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.body)
            .collect())
    }

    /// Waits until the event queue is empty and no batch is in flight.
    pub async fn wait_until_drained(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = QueueDepth::default();
        loop {
            if self.event_source.batches_in_flight() == 0 {
                last = self.queue_depth().await?;
                if last.total() == 0 && self.event_source.batches_in_flight() == 0 {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "the queue was not drained after {timeout:?}: {} visible, {} in flight, {} batches being processed",
                    last.visible,
                    last.in_flight,
                    self.event_source.batches_in_flight()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
