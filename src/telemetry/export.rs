//! The span exporter: a bounded queue that request handlers never wait on, and a thread
//! of its own that sends batches to the OTLP endpoint.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::otlp::{self, ResourceSpans};
use super::settings::Otlp;
use super::span::{SpanData, Value};

/// Counts of what happened to spans, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub exported: AtomicU64,
    /// Dropped because the queue was full (the endpoint is slower than the shop).
    pub dropped: AtomicU64,
    /// Lost with a batch the endpoint refused or never answered.
    pub failed: AtomicU64,
}

enum Message {
    Span(usize, SpanData),
    Flush(oneshot::Sender<()>),
}

/// The sending side, shared by every worker of every role of the process.
pub struct Exporter {
    queue: mpsc::Sender<Message>,
    pub stats: Arc<Stats>,
}

impl Exporter {
    /// Starts the export thread. `resources` are the resource attributes of each service
    /// that spans are recorded for (indexed as in `send`).
    pub fn start(settings: &Otlp, resources: Vec<Vec<(String, Value)>>) -> std::io::Result<Self> {
        let (queue, receiver) = mpsc::channel(settings.max_queue);
        let stats = Arc::new(Stats::default());
        let resources_len = resources.len();
        let batcher = Batcher {
            settings: settings.clone(),
            resources,
            stats: stats.clone(),
            pending: vec![Vec::new(); resources_len],
            pending_count: 0,
            failing: false,
        };
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || actix_web::rt::System::new().block_on(batcher.run(receiver)))?;
        Ok(Exporter { queue, stats })
    }

    /// Queues a finished span of service `resource`; a full queue drops it (counted).
    pub fn send(&self, resource: usize, span: SpanData) {
        if self.queue.try_send(Message::Span(resource, span)).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends everything queued so far, waiting at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        let sent = tokio::time::timeout(timeout, self.queue.send(Message::Flush(done))).await;
        if matches!(sent, Ok(Ok(()))) {
            let _ = tokio::time::timeout(timeout, wait).await;
        }
    }
}

struct Batcher {
    settings: Otlp,
    resources: Vec<Vec<(String, Value)>>,
    stats: Arc<Stats>,
    /// Spans waiting, per resource; never more than a batch in all.
    pending: Vec<Vec<SpanData>>,
    pending_count: usize,
    /// Whether the last export failed, so an outage is logged once, not per batch.
    failing: bool,
}

impl Batcher {
    async fn run(mut self, mut receiver: mpsc::Receiver<Message>) {
        let client = awc::Client::builder()
            .timeout(self.settings.timeout)
            .disable_redirects()
            .finish();
        let mut tick = tokio::time::interval(self.settings.schedule_delay);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = receiver.recv() => match message {
                    Some(Message::Span(resource, span)) => {
                        self.pending[resource].push(span);
                        self.pending_count += 1;
                        if self.pending_count >= self.settings.max_batch {
                            self.export(&client).await;
                        }
                    }
                    Some(Message::Flush(done)) => {
                        // Spans queued before the flush request are already received.
                        self.export(&client).await;
                        let _ = done.send(());
                    }
                    None => {
                        self.export(&client).await;
                        return;
                    }
                },
                _ = tick.tick() => self.export(&client).await,
            }
        }
    }

    async fn export(&mut self, client: &awc::Client) {
        if self.pending_count == 0 {
            return;
        }
        let count = std::mem::take(&mut self.pending_count) as u64;
        let body = self.encode();
        for spans in &mut self.pending {
            spans.clear();
        }
        let mut request = client
            .post(&self.settings.endpoint)
            .insert_header(("content-type", "application/x-protobuf"));
        for (name, value) in &self.settings.headers {
            request = request.insert_header((name.as_str(), value.expose()));
        }
        let outcome = match request.send_body(body).await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("answered {}", response.status())),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                self.stats.exported.fetch_add(count, Ordering::Relaxed);
                if std::mem::take(&mut self.failing) {
                    log::warn!("msg=\"span export works again\"");
                }
            }
            Err(why) => {
                self.stats.failed.fetch_add(count, Ordering::Relaxed);
                if !std::mem::replace(&mut self.failing, true) {
                    log::warn!(
                        "msg=\"span export failed; spans are dropped until it works\" endpoint={} error={:?}",
                        self.settings.endpoint,
                        why
                    );
                }
            }
        }
    }

    /// One request with a ResourceSpans per service that has spans waiting.
    fn encode(&self) -> Vec<u8> {
        let groups: Vec<ResourceSpans<'_>> = self
            .pending
            .iter()
            .zip(&self.resources)
            .filter(|(spans, _)| !spans.is_empty())
            .map(|(spans, resource)| ResourceSpans { resource, spans })
            .collect();
        otlp::export_request(&groups)
    }
}
