//! The span exporter: a bounded queue that request handlers never wait on, and a thread
//! of its own that sends it in batches to the OTLP endpoint.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// Spans waiting for the export thread, encoded. Each worker thread fills a batch of its
/// own (a lock no other worker takes, so workers never contend), and hands it over when
/// full; the export thread is woken once per full batch, never per span, and collects
/// the partly filled ones on its timer.
struct Queue {
    /// Tells this queue's shards from another exporter's in a thread's table.
    id: usize,
    shards: Mutex<Vec<Arc<Shard>>>,
    ready: Mutex<Ready>,
    wake: Notify,
    max_queue: usize,
    max_batch: usize,
    resources: usize,
}

/// One worker thread's batch being filled.
struct Shard {
    open: Mutex<Batch>,
}

#[derive(Default)]
struct Ready {
    /// Full batches, oldest first, and the spans in them (at most `max_queue`).
    batches: VecDeque<Batch>,
    spans: usize,
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Queue {
    /// A batch to fill: a spare one when there is one.
    fn empty_batch(&self, ready: &mut Ready) -> Batch {
        ready.spare.pop().unwrap_or_else(|| Batch {
            spans: vec![Vec::new(); self.resources],
            count: 0,
        })
    }

    /// Runs `f` on this thread's shard, made on the thread's first span.
    fn with_shard<R>(&self, f: impl FnOnce(&Shard) -> R) -> R {
        SHARDS.with_borrow_mut(|shards| {
            if let Some((_, shard)) = shards.iter().find(|(id, _)| *id == self.id) {
                return f(shard);
            }
            let empty = self.empty_batch(&mut lock(&self.ready));
            let shard = Arc::new(Shard {
                open: Mutex::new(empty),
            });
            lock(&self.shards).push(shard.clone());
            shards.push((self.id, shard));
            f(&shards.last().expect("just pushed").1)
        })
    }

    /// Hands a full batch over (dropped, and counted, when the queue is full).
    fn seal(&self, open: &mut Batch, stats: &Stats) {
        let mut ready = lock(&self.ready);
        let empty = self.empty_batch(&mut ready);
        let full = std::mem::replace(open, empty);
        if ready.spans + full.count > self.max_queue {
            stats
                .dropped
                .fetch_add(full.count as u64, Ordering::Relaxed);
            self.recycle_locked(&mut ready, full);
            return;
        }
        ready.spans += full.count;
        ready.batches.push_back(full);
        drop(ready);
        self.wake.notify_one();
    }

    /// The full batches, and (with `everything`) every shard's partly filled one.
    fn take(&self, everything: bool) -> Vec<Batch> {
        let mut partial = Vec::new();
        if everything {
            let shards = lock(&self.shards).clone();
            for shard in shards {
                let mut open = lock(&shard.open);
                if open.count > 0 {
                    let empty = self.empty_batch(&mut lock(&self.ready));
                    partial.push(std::mem::replace(&mut *open, empty));
                }
            }
        }
        let mut ready = lock(&self.ready);
        ready.spans = 0;
        let mut batches: Vec<Batch> = ready.batches.drain(..).collect();
        // The workers' partly filled batches go together, so that a quiet shop sends
        // one request per interval, not one per worker.
        let mut merged: Vec<Batch> = Vec::new();
        for part in partial {
            match merged.last_mut() {
                Some(last) if last.count + part.count <= self.max_batch => {
                    for (into, from) in last.spans.iter_mut().zip(&part.spans) {
                        into.extend_from_slice(from);
                    }
                    last.count += part.count;
                    self.recycle_locked(&mut ready, part);
                }
                _ => merged.push(part),
            }
        }
        batches.extend(merged);
        batches
    }

    /// Keeps a sent batch's buffers for reuse.
    fn recycle(&self, batch: Batch) {
        self.recycle_locked(&mut lock(&self.ready), batch);
    }

    fn recycle_locked(&self, ready: &mut Ready, mut batch: Batch) {
        batch.spans.iter_mut().for_each(Vec::clear);
        batch.count = 0;
        if ready.spare.len() < 4 {
            ready.spare.push(batch);
        }
    }
}

thread_local! {
    /// Where a worker encodes a span before queueing it (reused: no allocation).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// This thread's shard of each exporter it has sent spans to.
    static SHARDS: RefCell<Vec<(usize, Arc<Shard>)>> = const { RefCell::new(Vec::new()) };
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
        static EXPORTERS: AtomicUsize = AtomicUsize::new(0);
        let queue = Arc::new(Queue {
            id: EXPORTERS.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::default(),
            ready: Mutex::default(),
            wake: Notify::new(),
            max_queue: settings.max_queue,
            max_batch: settings.max_batch,
            resources: resources.len(),
        });
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
            self.queue.with_shard(|shard| {
                let mut open = lock(&shard.open);
                open.spans[resource].extend_from_slice(encoded);
                open.count += 1;
                if open.count >= self.queue.max_batch {
                    self.queue.seal(&mut open, &self.stats);
                }
            });
        });
    }

    /// Sends everything queued so far, waiting at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        lock(&self.queue.ready).flushes.push(done);
        self.queue.wake.notify_one();
        let _ = tokio::time::timeout(timeout, wait).await;
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        lock(&self.queue.ready).closed = true;
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
                let mut ready = lock(&self.queue.ready);
                (std::mem::take(&mut ready.flushes), ready.closed)
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
