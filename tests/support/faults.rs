//! Sinks that inject faults into delivery, wrapped around a real sink.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use es::{LeaseGeneration, Sink, SinkError, StoredEvent};
use tokio::sync::Notify;

/// Loses one message on its way: the delivery that reaches the `nth` event offered
/// (counted over every delivery, from 1) hands the events before it to the inner sink,
/// loses that event and the rest of the batch, and fails as a transport that dropped a
/// message does. Only once; later deliveries go through.
pub struct DropOne<S> {
    inner: S,
    nth: u64,
    offered: AtomicU64,
    fired: AtomicBool,
    /// The event that was lost, once it was.
    pub dropped: Arc<Mutex<Option<StoredEvent>>>,
}

impl<S> DropOne<S> {
    pub fn new(inner: S, nth: u64) -> Self {
        Self {
            inner,
            nth: nth.max(1),
            offered: AtomicU64::new(0),
            fired: AtomicBool::new(false),
            dropped: Arc::default(),
        }
    }
}

impl<S: Sink> Sink for DropOne<S> {
    async fn deliver(&self, events: &[StoredEvent], lease: LeaseGeneration) -> Result<(), SinkError> {
        let before = self.offered.fetch_add(events.len() as u64, Ordering::SeqCst);
        let reached = before < self.nth && self.nth <= before + events.len() as u64;
        if reached && !self.fired.swap(true, Ordering::SeqCst) {
            let index = usize::try_from(self.nth - before - 1).expect("an index into the batch");
            if index > 0 {
                self.inner.deliver(&events[..index], lease).await?;
            }
            let lost = &events[index];
            *self.dropped.lock().unwrap() = Some(lost.clone());
            return Err(SinkError::transient(format!(
                "injected fault: the message of {}/{} v{} was lost in transit",
                lost.stream_type, lost.stream_id, lost.stream_version
            )));
        }
        self.inner.deliver(events, lease).await
    }
}

/// Freezes one delivery between the inner sink's answer and the relay's
/// acknowledgement: the `call`th delivery (from 1) is handed to the inner sink, then
/// waits, announcing it on `paused`, until `resume` is notified. The events of the
/// frozen delivery are kept in `held`.
pub struct PauseAfter<S> {
    inner: S,
    call: u64,
    calls: AtomicU64,
    pub paused: Arc<Notify>,
    pub resume: Arc<Notify>,
    pub held: Arc<Mutex<Vec<StoredEvent>>>,
}

impl<S> PauseAfter<S> {
    pub fn new(inner: S, call: u64) -> Self {
        Self {
            inner,
            call,
            calls: AtomicU64::new(0),
            paused: Arc::default(),
            resume: Arc::default(),
            held: Arc::default(),
        }
    }
}

impl<S: Sink> Sink for PauseAfter<S> {
    async fn deliver(&self, events: &[StoredEvent], lease: LeaseGeneration) -> Result<(), SinkError> {
        self.inner.deliver(events, lease).await?;
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.call {
            self.held.lock().unwrap().extend(events.iter().cloned());
            self.paused.notify_one();
            self.resume.notified().await;
        }
        Ok(())
    }
}
