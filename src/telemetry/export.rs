//! The exporter of one signal (spans, or log records): a bounded queue that request
//! handlers never wait on, and a thread of its own that sends it in batches to the OTLP
//! endpoint, over http or https, gzipped when configured.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};

use super::otlp::{self, LogRecord, ResourceEntries};
use super::settings::{Compression, Otlp};
use super::span::{SpanData, Value};

/// What one exporter sends: how an entry is encoded, and what its messages call it. The
/// queue, the batching and the thread are the same for every signal, and so is the
/// request around the entries (see `otlp::export_request`); the endpoint (its path
/// `/v1/traces` or `/v1/logs`) comes with the settings.
pub trait Signal: Send + Sync + 'static {
    /// What an entry is made from.
    type Item<'a>;
    /// The signal, for the exporter's thread and messages: `traces`, `logs`.
    const NAME: &'static str;
    /// Its entries, for messages: `spans`, `log records`.
    const ENTRIES: &'static str;
    /// Appends `item` to `out` as one entry of the request's innermost list.
    fn encode(out: &mut Vec<u8>, item: &Self::Item<'_>);
}

/// Spans, to `ExportTraceServiceRequest`s.
pub struct Traces;

impl Signal for Traces {
    type Item<'a> = SpanData;
    const NAME: &'static str = "traces";
    const ENTRIES: &'static str = "spans";
    fn encode(out: &mut Vec<u8>, span: &SpanData) {
        otlp::encode_span(out, span);
    }
}

/// Log lines, to `ExportLogsServiceRequest`s.
pub struct Logs;

impl Signal for Logs {
    type Item<'a> = LogRecord<'a>;
    const NAME: &'static str = "logs";
    const ENTRIES: &'static str = "log records";
    fn encode(out: &mut Vec<u8>, record: &LogRecord<'_>) {
        otlp::encode_log_record(out, record);
    }
}

/// Counts of what happened to one signal's entries (spans, log records), for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub exported: AtomicU64,
    /// Dropped because the queue was full (the endpoint is slower than the shop).
    pub dropped: AtomicU64,
    /// Lost with a batch the endpoint refused or never answered.
    pub failed: AtomicU64,
}

impl Stats {
    /// Entries the endpoint accepted.
    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// Entries dropped before sending: the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Entries lost with a batch the endpoint refused or never answered.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// Entries waiting for the export thread, encoded. Each worker thread fills a batch of its
/// own (a lock no other worker takes, so workers never contend), and hands it over when
/// full; the export thread is woken once per full batch, never per entry, and collects
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
    /// Full batches, oldest first, and the entries in them (at most `max_queue`).
    batches: VecDeque<Batch>,
    queued: usize,
    /// Batches sent and emptied, to be filled again: their buffers keep their size, so a
    /// busy shop does not allocate (and free) a batch's worth of memory per batch.
    spare: Vec<Batch>,
    /// Callers waiting until what was queued before they asked is sent.
    flushes: Vec<oneshot::Sender<()>>,
    /// The exporter is gone: send what is left, then stop.
    closed: bool,
}

/// Encoded entries per resource (service), and how many.
#[derive(Default)]
struct Batch {
    entries: Vec<Vec<u8>>,
    count: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Queue {
    /// A batch to fill: a spare one when there is one.
    fn empty_batch(&self, ready: &mut Ready) -> Batch {
        ready.spare.pop().unwrap_or_else(|| Batch {
            entries: vec![Vec::new(); self.resources],
            count: 0,
        })
    }

    /// Runs `f` on this thread's shard, made on the thread's first entry; `None` when
    /// the thread's shards are busy (a re-entrant call) or gone (the thread is ending).
    fn with_shard<R>(&self, f: impl FnOnce(&Shard) -> R) -> Option<R> {
        SHARDS
            .try_with(|shards| {
                let mut shards = shards.try_borrow_mut().ok()?;
                if let Some((_, shard)) = shards.iter().find(|(id, _)| *id == self.id) {
                    return Some(f(shard));
                }
                let empty = self.empty_batch(&mut lock(&self.ready));
                let shard = Arc::new(Shard {
                    open: Mutex::new(empty),
                });
                lock(&self.shards).push(shard.clone());
                shards.push((self.id, shard));
                Some(f(&shards.last().expect("just pushed").1))
            })
            .ok()
            .flatten()
    }

    /// Hands a full batch over (dropped, and counted, when the queue is full).
    fn seal(&self, open: &mut Batch, stats: &Stats) {
        let mut ready = lock(&self.ready);
        let empty = self.empty_batch(&mut ready);
        let full = std::mem::replace(open, empty);
        if ready.queued + full.count > self.max_queue {
            stats
                .dropped
                .fetch_add(full.count as u64, Ordering::Relaxed);
            self.recycle_locked(&mut ready, full);
            return;
        }
        ready.queued += full.count;
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
        ready.queued = 0;
        let mut batches: Vec<Batch> = ready.batches.drain(..).collect();
        // The workers' partly filled batches go together, so that a quiet shop sends
        // one request per interval, not one per worker.
        let mut merged: Vec<Batch> = Vec::new();
        for part in partial {
            match merged.last_mut() {
                Some(last) if last.count + part.count <= self.max_batch => {
                    for (into, from) in last.entries.iter_mut().zip(&part.entries) {
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
        batch.entries.iter_mut().for_each(Vec::clear);
        batch.count = 0;
        if ready.spare.len() < 4 {
            ready.spare.push(batch);
        }
    }
}

thread_local! {
    /// Where a worker encodes an entry before queueing it (reused: no allocation).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// This thread's shard of each exporter it has sent entries to.
    static SHARDS: RefCell<Vec<(usize, Arc<Shard>)>> = const { RefCell::new(Vec::new()) };
}

/// The sending side of one signal, shared by every worker of every role of the process.
pub struct Exporter<S: Signal> {
    queue: Arc<Queue>,
    pub stats: Arc<Stats>,
    signal: PhantomData<S>,
}

impl<S: Signal> Exporter<S> {
    /// Starts the export thread. `resources` are the resource attributes of each service
    /// that entries are recorded for (indexed as in `send`); `tls` is how https endpoints
    /// are trusted.
    pub fn start(
        settings: &Otlp,
        resources: Vec<Vec<(String, Value)>>,
        tls: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<Self> {
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
        let batcher = Batcher::<S> {
            settings: settings.clone(),
            resources,
            stats: stats.clone(),
            queue: queue.clone(),
            failing: false,
            signal: PhantomData,
        };
        std::thread::Builder::new()
            .name(format!("otlp-{}", S::NAME))
            .spawn(move || {
                // What this thread logs (its warnings) goes to stderr, never into an
                // export queue: log export must not feed on itself.
                super::logs::quiet_this_thread();
                actix_web::rt::System::new().block_on(batcher.run(tls))
            })?;
        Ok(Exporter {
            queue,
            stats,
            signal: PhantomData,
        })
    }

    /// Queues an entry of service `resource`; a full queue drops it (counted). Never
    /// waits on the export thread. An entry made while this thread is already queueing
    /// one (a log line written from inside `send`) is dropped too, not queued twice over.
    pub fn send(&self, resource: usize, item: &S::Item<'_>) {
        let queued = SCRATCH.try_with(|scratch| {
            let Ok(mut encoded) = scratch.try_borrow_mut() else {
                return false;
            };
            encoded.clear();
            S::encode(&mut encoded, item);
            self.queue
                .with_shard(|shard| {
                    let mut open = lock(&shard.open);
                    open.entries[resource].extend_from_slice(&encoded);
                    open.count += 1;
                    if open.count >= self.queue.max_batch {
                        self.queue.seal(&mut open, &self.stats);
                    }
                })
                .is_some()
        });
        if queued != Ok(true) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends everything queued so far, waiting at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        lock(&self.queue.ready).flushes.push(done);
        self.queue.wake.notify_one();
        let _ = tokio::time::timeout(timeout, wait).await;
    }
}

impl<S: Signal> Drop for Exporter<S> {
    fn drop(&mut self) {
        lock(&self.queue.ready).closed = true;
        self.queue.wake.notify_one();
    }
}

struct Batcher<S> {
    settings: Otlp,
    resources: Vec<Vec<(String, Value)>>,
    stats: Arc<Stats>,
    queue: Arc<Queue>,
    /// Whether the last export failed, so an outage is logged once, not per batch.
    failing: bool,
    signal: PhantomData<S>,
}

impl<S: Signal> Batcher<S> {
    async fn run(mut self, tls: Arc<rustls::ClientConfig>) {
        let client = awc::Client::builder()
            .connector(awc::Connector::new().rustls_0_23(tls))
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
        let mut request = client
            .post(&self.settings.endpoint)
            .insert_header(("content-type", "application/x-protobuf"));
        let body = match self.settings.compression {
            Compression::None => self.encode(batch),
            Compression::Gzip => {
                request = request.insert_header(("content-encoding", "gzip"));
                gzip(&self.encode(batch))
            }
        };
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
                    log::warn!("msg=\"{} export works again\"", S::NAME);
                }
            }
            Err(why) => {
                self.stats.failed.fetch_add(count, Ordering::Relaxed);
                if !std::mem::replace(&mut self.failing, true) {
                    log::warn!(
                        "msg=\"{} export failed; {} are dropped until it works\" endpoint={} error={}",
                        S::NAME,
                        S::ENTRIES,
                        super::logfmt::value(&self.settings.endpoint),
                        super::logfmt::value(&why)
                    );
                }
            }
        }
    }

    /// One request with a group per service that has entries in `batch`.
    fn encode(&self, batch: &Batch) -> Vec<u8> {
        let groups: Vec<ResourceEntries<'_>> = batch
            .entries
            .iter()
            .zip(&self.resources)
            .filter(|(entries, _)| !entries.is_empty())
            .map(|(entries, resource)| ResourceEntries { resource, entries })
            .collect();
        otlp::export_request(&groups)
    }
}

/// `body` gzipped. The fastest level: the export thread shares the shop's cores, and
/// protobuf of repeated attribute names shrinks well at any level.
fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .expect("writing to memory does not fail")
}
