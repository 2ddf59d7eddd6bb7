//! The span exporter: a bounded queue that request handlers never wait on, and a thread
//! of its own that sends it in batches to the OTLP endpoint.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};

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

/// Spans waiting for the export thread, encoded. Workers lock it only to append a span;
/// the thread is woken once per full batch (or flush), never per span.
struct Queue {
    pending: Mutex<Pending>,
    wake: Notify,
    max_queue: usize,
    max_batch: usize,
    resources: usize,
}

#[derive(Default)]
struct Pending {
    /// The batch being filled, and full ones ready to go, oldest first.
    open: Batch,
    ready: VecDeque<Batch>,
    /// Spans in all of them, bounded by `max_queue`.
    queued: usize,
    /// Batches sent and emptied, to be filled again: their buffers keep their size, so a
    /// busy shop does not allocate (and free) a batch's worth of memory per batch.
    spare: Vec<Batch>,
    /// Callers waiting until what was queued before they asked is sent.
    flushes: Vec<oneshot::Sender<()>>,
    /// The exporter is gone: send what is left, then stop.
    closed: bool,
}

/// Encoded spans per resource (service), and how many.
#[derive(Default)]
struct Batch {
    spans: Vec<Vec<u8>>,
    count: usize,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The full batches, and (with `everything`) the one being filled.
    fn take(&self, everything: bool) -> Vec<Batch> {
        let mut pending = self.lock();
        let mut batches: Vec<Batch> = pending.ready.drain(..).collect();
        if everything && pending.open.count > 0 {
            let empty = self.empty_batch(&mut pending);
            batches.push(std::mem::replace(&mut pending.open, empty));
        }
        pending.queued -= batches.iter().map(|b| b.count).sum::<usize>();
        batches
    }

    /// A batch to fill: a spare one when there is one.
    fn empty_batch(&self, pending: &mut Pending) -> Batch {
        pending.spare.pop().unwrap_or_else(|| Batch {
            spans: vec![Vec::new(); self.resources],
            count: 0,
        })
    }

    /// Keeps a sent batch's buffers for reuse (two at most: one filling, one sending).
    fn recycle(&self, mut batch: Batch) {
        batch.spans.iter_mut().for_each(Vec::clear);
        batch.count = 0;
        let mut pending = self.lock();
        if pending.spare.len() < 2 {
            pending.spare.push(batch);
        }
    }
}

thread_local! {
    /// Where a worker encodes a span before queueing it (reused: no allocation).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The sending side, shared by every worker of every role of the process.
pub struct Exporter {
    queue: Arc<Queue>,
    pub stats: Arc<Stats>,
}

impl Exporter {
    /// Starts the export thread. `resources` are the resource attributes of each service
    /// that spans are recorded for (indexed as in `send`).
    pub fn start(settings: &Otlp, resources: Vec<Vec<(String, Value)>>) -> std::io::Result<Self> {
        let queue = Queue {
            pending: Mutex::default(),
            wake: Notify::new(),
            max_queue: settings.max_queue,
            max_batch: settings.max_batch,
            resources: resources.len(),
        };
        {
            let mut pending = queue.lock();
            pending.open = queue.empty_batch(&mut pending);
        }
        let queue = Arc::new(queue);
        let stats = Arc::new(Stats::default());
        let batcher = Batcher {
            settings: settings.clone(),
            resources,
            stats: stats.clone(),
            queue: queue.clone(),
            failing: false,
        };
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || actix_web::rt::System::new().block_on(batcher.run()))?;
        Ok(Exporter { queue, stats })
    }

    /// Queues a finished span of service `resource`; a full queue drops it (counted).
    pub fn send(&self, resource: usize, span: &SpanData) {
        SCRATCH.with_borrow_mut(|encoded| {
            encoded.clear();
            otlp::encode_span(encoded, span);
            let mut pending = self.queue.lock();
            if pending.queued >= self.queue.max_queue {
                drop(pending);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            pending.open.spans[resource].extend_from_slice(encoded);
            pending.open.count += 1;
            pending.queued += 1;
            if pending.open.count < self.queue.max_batch {
                return;
            }
            let empty = self.queue.empty_batch(&mut pending);
            let full = std::mem::replace(&mut pending.open, empty);
            pending.ready.push_back(full);
            drop(pending);
            self.queue.wake.notify_one();
        });
    }

    /// Sends everything queued so far, waiting at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        self.queue.lock().flushes.push(done);
        self.queue.wake.notify_one();
        let _ = tokio::time::timeout(timeout, wait).await;
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.wake.notify_one();
    }
}

struct Batcher {
    settings: Otlp,
    resources: Vec<Vec<(String, Value)>>,
    stats: Arc<Stats>,
    queue: Arc<Queue>,
    /// Whether the last export failed, so an outage is logged once, not per batch.
    failing: bool,
}

impl Batcher {
    async fn run(mut self) {
        let client = awc::Client::builder()
            .timeout(self.settings.timeout)
            .disable_redirects()
            .finish();
        let mut tick = tokio::time::interval(self.settings.schedule_delay);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Woken by a full batch, only full batches go; by the timer (or a flush, or the
            // end), everything waiting goes. So batches stay full under load.
            let timer = tokio::select! {
                _ = self.queue.wake.notified() => false,
                _ = tick.tick() => true,
            };
            // The flushes asked for so far are answered once what preceded them is sent.
            let (flushes, closed) = {
                let mut pending = self.queue.lock();
                (std::mem::take(&mut pending.flushes), pending.closed)
            };
            let everything = timer || closed || !flushes.is_empty();
            for batch in self.queue.take(everything) {
                self.export(&client, &batch).await;
                self.queue.recycle(batch);
            }
            for done in flushes {
                let _ = done.send(());
            }
            if closed {
                return;
            }
        }
    }

    async fn export(&mut self, client: &awc::Client, batch: &Batch) {
        let count = batch.count as u64;
        let body = self.encode(batch);
        let mut request = client
            .post(&self.settings.endpoint)
            .insert_header(("content-type", "application/x-protobuf"));
        for (name, value) in &self.settings.headers {
            request = request.insert_header((name.as_str(), value.expose()));
        }
        let outcome = match request.send_body(body).await {
            Ok(mut response) if response.status().is_success() => {
                // Read (it is tiny) so that the connection is kept for the next batch.
                let _ = response.body().limit(64 * 1024).await;
                Ok(())
            }
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

    /// One request with a ResourceSpans per service that has spans in `batch`.
    fn encode(&self, batch: &Batch) -> Vec<u8> {
        let groups: Vec<ResourceSpans<'_>> = batch
            .spans
            .iter()
            .zip(&self.resources)
            .filter(|(spans, _)| !spans.is_empty())
            .map(|(spans, resource)| ResourceSpans { resource, spans })
            .collect();
        otlp::export_request(&groups)
    }
}
