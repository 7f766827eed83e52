//! Lambda's SQS event source mapping, emulated for the dispatcher.
//!
//! A few pollers (`concurrency`, like `ScalingConfig.MaximumConcurrency`)
//! each loop: `ReceiveMessage` (up to `batch_size` ≤ 10 messages, 1 s long
//! poll, all system and message attributes), build the SQS event exactly as
//! Lambda does, invoke the function synchronously, then delete only the
//! messages that did not come back in `batchItemFailures`
//! (`FunctionResponseTypes: [ReportBatchItemFailures]`). A function error, a
//! crash, a timeout, or an empty or unknown `itemIdentifier` fails the whole
//! batch: nothing is deleted.
//!
//! Messages that are not deleted reappear after the queue's visibility
//! timeout with a higher `ApproximateReceiveCount`. The dead-letter queue is
//! the queue's own redrive policy: moto, like SQS, moves a message there when
//! a receive finds it already received `maxReceiveCount` times, so nothing
//! here needs to emulate it.
//!
//! Receives are serialised across the pollers: moto's `ReceiveMessage` is
//! not atomic, and two concurrent calls can hand out the same message (seen
//! as duplicate dispatches under a burst), which SQS never does within the
//! visibility timeout. One poller long-polls at a time; the others process
//! and delete meanwhile, so the concurrency of batches is unchanged.
//!
//! (moto's other gap, forgetting a FIFO de-duplication id once the message
//! is deleted, is closed in moto itself by [`crate::moto`].)
//!
//! Every batch is reported to observers ([`SqsEventSource::subscribe`]) for
//! the demo's printing and the tests' assertions.
//!
//! The shape of the event and the partial batch response rules are in the
//! `lambda_event` submodule; this file is the pollers.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::runtime_api::{InvokeResult, Invoker};

mod lambda_event;

use lambda_event::received_message;
pub use lambda_event::{batch_item_failures, sqs_event};

/// How the mapping polls; the defaults are the template's.
#[derive(Clone, Debug)]
pub struct EventSourceOptions {
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    /// Messages per batch, 1..=10 (FIFO queues allow at most 10).
    pub batch_size: i32,
    /// Concurrent pollers, each with at most one batch in flight.
    pub concurrency: usize,
    /// `WaitTimeSeconds` of each receive.
    pub wait_time: Duration,
    /// How long [`SqsEventSource::shutdown`] lets in-flight batches finish.
    pub shutdown_grace: Duration,
}

impl EventSourceOptions {
    pub fn new(queue_url: &str, queue_arn: &str, region: &str) -> Self {
        EventSourceOptions {
            queue_url: queue_url.to_string(),
            queue_arn: queue_arn.to_string(),
            region: region.to_string(),
            batch_size: 10,
            concurrency: 2,
            wait_time: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A message as the poller received it.
#[derive(Clone, Debug)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receive_count: u32,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    pub sequence_number: Option<String>,
    /// System attributes (`SentTimestamp`, ...), by name.
    pub attributes: BTreeMap<String, String>,
    /// Message attributes with a string value, by name.
    pub message_attributes: BTreeMap<String, String>,
    pub body: String,
}

/// What became of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchOutcome {
    /// The function answered; the listed messages failed and stay queued.
    Answered { failed: Vec<String> },
    /// The whole batch failed: a function error, crash or timeout, or a
    /// response that names messages not in the batch.
    BatchFailed { reason: String },
}

/// One batch, start to end.
#[derive(Clone, Debug)]
pub struct BatchReport {
    pub poller: usize,
    pub messages: Vec<ReceivedMessage>,
    pub outcome: BatchOutcome,
    /// Messages deleted from the queue (processed).
    pub deleted: Vec<String>,
    /// Messages left for redelivery (or, eventually, the dead-letter queue).
    pub retained: Vec<String>,
    /// The function's result, as it came back.
    pub result: Option<InvokeResult>,
    pub duration: Duration,
}

/// What observers hear.
#[derive(Clone, Debug)]
pub enum EventSourceEvent {
    /// A batch was received and is being handed to the function.
    Invoking {
        poller: usize,
        messages: Vec<ReceivedMessage>,
    },
    /// The batch is done.
    Completed(BatchReport),
    /// `ReceiveMessage` or `DeleteMessageBatch` failed (the poller carries on).
    Error { poller: usize, error: String },
}

/// Running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventSourceStats {
    pub batches: u64,
    pub messages: u64,
    pub deleted: u64,
    pub retained: u64,
    pub failed_batches: u64,
    pub errors: u64,
}

/// The running mapping; stops on [`shutdown`](Self::shutdown) or drop.
pub struct SqsEventSource {
    events: broadcast::Sender<EventSourceEvent>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    grace: Duration,
}

#[derive(Default)]
struct Shared {
    in_flight: AtomicUsize,
    batches: AtomicU64,
    messages: AtomicU64,
    deleted: AtomicU64,
    retained: AtomicU64,
    failed_batches: AtomicU64,
    errors: AtomicU64,
    /// Held for each `ReceiveMessage` (see the module docs).
    receiving: tokio::sync::Mutex<()>,
}

impl SqsEventSource {
    /// Starts the pollers.
    pub fn start(
        sqs: aws_sdk_sqs::Client,
        function: Invoker,
        options: EventSourceOptions,
    ) -> SqsEventSource {
        let (events, _) = broadcast::channel(16_384);
        let (stop, _) = watch::channel(false);
        let shared = Arc::new(Shared::default());
        let options = Arc::new(EventSourceOptions {
            batch_size: options.batch_size.clamp(1, 10),
            ..options
        });
        let tasks = (0..options.concurrency.max(1))
            .map(|poller| {
                let poller_state = Poller {
                    index: poller,
                    sqs: sqs.clone(),
                    function: function.clone(),
                    options: options.clone(),
                    events: events.clone(),
                    shared: shared.clone(),
                };
                tokio::spawn(poller_state.run(stop.subscribe()))
            })
            .collect();
        SqsEventSource {
            events,
            stop,
            tasks,
            shared,
            grace: options.shutdown_grace,
        }
    }

    /// Batches from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EventSourceEvent> {
        self.events.subscribe()
    }

    pub fn stats(&self) -> EventSourceStats {
        let s = &self.shared;
        EventSourceStats {
            batches: s.batches.load(Ordering::Relaxed),
            messages: s.messages.load(Ordering::Relaxed),
            deleted: s.deleted.load(Ordering::Relaxed),
            retained: s.retained.load(Ordering::Relaxed),
            failed_batches: s.failed_batches.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
        }
    }

    /// Batches being processed right now.
    pub fn batches_in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Stops polling; batches in flight may finish within the grace period.
    pub async fn shutdown(&mut self) {
        self.stop.send_replace(true);
        let deadline = Instant::now() + self.grace;
        for task in self.tasks.drain(..) {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for SqsEventSource {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct Poller {
    index: usize,
    sqs: aws_sdk_sqs::Client,
    function: Invoker,
    options: Arc<EventSourceOptions>,
    events: broadcast::Sender<EventSourceEvent>,
    shared: Arc<Shared>,
}

impl Poller {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let wait_seconds = i32::try_from(self.options.wait_time.as_secs())
            .unwrap_or(1)
            .clamp(0, 20);
        loop {
            if *stop.borrow() {
                return;
            }
            let receive = async {
                let _one_at_a_time = self.shared.receiving.lock().await;
                self.sqs
                    .receive_message()
                    .queue_url(&self.options.queue_url)
                    .max_number_of_messages(self.options.batch_size)
                    .wait_time_seconds(wait_seconds)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send()
                    .await
            };
            let received = tokio::select! {
                received = receive => received,
                _ = stop.changed() => return,
            };
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(e) => {
                    if *stop.borrow() {
                        return;
                    }
                    self.error(format!(
                        "ReceiveMessage failed: {}",
                        DisplayErrorContext(&e)
                    ));
                    // Back off a little so a dead endpoint does not spin.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => return,
                    }
                    continue;
                }
            };
            if messages.is_empty() {
                continue;
            }
            // Counted before the invoke and released after the deletes, so
            // "queue empty and nothing in flight" means drained.
            self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
            self.process(messages).await;
            self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn error(&self, error: String) {
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        let _ = self.events.send(EventSourceEvent::Error {
            poller: self.index,
            error,
        });
    }

    async fn process(&self, messages: Vec<Message>) {
        let started = Instant::now();
        let received: Vec<ReceivedMessage> = messages.iter().map(received_message).collect();
        let _ = self.events.send(EventSourceEvent::Invoking {
            poller: self.index,
            messages: received.clone(),
        });
        let event = sqs_event(&messages, &self.options.queue_arn, &self.options.region);
        let ids: HashSet<&str> = messages.iter().filter_map(Message::message_id).collect();

        let (outcome, result) = match self.function.invoke(&event).await {
            Ok(result) => {
                let outcome = match &result {
                    InvokeResult::Response(value) => match batch_item_failures(value, &ids) {
                        Ok(failed) => BatchOutcome::Answered { failed },
                        Err(reason) => BatchOutcome::BatchFailed { reason },
                    },
                    other => BatchOutcome::BatchFailed {
                        reason: other
                            .error_payload()
                            .map(|p| {
                                format!(
                                    "{}: {}",
                                    p["errorType"].as_str().unwrap_or("Error"),
                                    p["errorMessage"].as_str().unwrap_or("")
                                )
                            })
                            .unwrap_or_default(),
                    },
                };
                (outcome, Some(result))
            }
            Err(e) => (
                BatchOutcome::BatchFailed {
                    reason: format!("invoke failed: {e:#}"),
                },
                None,
            ),
        };

        let keep: HashSet<&str> = match &outcome {
            BatchOutcome::Answered { failed } => failed.iter().map(String::as_str).collect(),
            BatchOutcome::BatchFailed { .. } => ids.clone(),
        };
        let to_delete: Vec<&Message> = messages
            .iter()
            .filter(|m| m.message_id().is_some_and(|id| !keep.contains(id)))
            .collect();
        let deleted = self.delete(&to_delete).await;
        let retained: Vec<String> = received
            .iter()
            .map(|m| m.message_id.clone())
            .filter(|id| !deleted.contains(id))
            .collect();

        let s = &self.shared;
        s.batches.fetch_add(1, Ordering::Relaxed);
        s.messages
            .fetch_add(received.len() as u64, Ordering::Relaxed);
        s.deleted.fetch_add(deleted.len() as u64, Ordering::Relaxed);
        s.retained
            .fetch_add(retained.len() as u64, Ordering::Relaxed);
        if matches!(outcome, BatchOutcome::BatchFailed { .. }) {
            s.failed_batches.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.events.send(EventSourceEvent::Completed(BatchReport {
            poller: self.index,
            messages: received,
            outcome,
            deleted,
            retained,
            result,
            duration: started.elapsed(),
        }));
    }

    /// Deletes the processed messages; returns the ids actually deleted.
    async fn delete(&self, messages: &[&Message]) -> Vec<String> {
        let mut deleted = Vec::new();
        for chunk in messages.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, message) in chunk.iter().enumerate() {
                let entry = DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .build();
                if let Ok(entry) = entry {
                    entries.push(entry);
                }
            }
            let answer = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.options.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match answer {
                Ok(output) => {
                    for ok in output.successful() {
                        let id = ok.id().parse::<usize>().ok();
                        if let Some(message_id) =
                            id.and_then(|i| chunk.get(i)).and_then(|m| m.message_id())
                        {
                            deleted.push(message_id.to_string());
                        }
                    }
                    for failed in output.failed() {
                        self.error(format!(
                            "DeleteMessageBatch entry {} failed: {} {}",
                            failed.id(),
                            failed.code(),
                            failed.message().unwrap_or_default()
                        ));
                    }
                }
                Err(e) => self.error(format!(
                    "DeleteMessageBatch failed: {}",
                    DisplayErrorContext(&e)
                )),
            }
        }
        deleted
    }
}
