//! The bounded in-memory export queue: a FIFO of [`Batch`]es bounded both in batches and in
//! encoded bytes. It is plain data owned by the exporter task (no locks); the task applies the
//! admission policy through [`Queue::offer`] and takes work with [`Queue::pop_batch`], which is
//! also the batcher: it merges consecutive queued batches of one signal into one request.
//!
//! Admission policy when full: host batches evict the oldest host batches (newer samples
//! supersede older ones) and are dropped themselves only if no host batch is left to evict;
//! relay batches are rejected, so the application keeps the data and retries.
//!
//! **Spool seam.** A later on-disk spool implements this same surface (`offer`, `pop_batch`,
//! `len`, `bytes`, `drain`): the exporter task only calls these, so a disk-backed queue (or a
//! memory queue that overflows to disk instead of evicting) slots in here without touching
//! the inputs or the client.

use std::collections::VecDeque;

use super::batch::{Batch, Origin};

/// Merged requests stop growing past this many encoded bytes, well under the 4 MiB default
/// gRPC message limit of collectors. A single larger batch is still sent on its own.
pub const MAX_MERGED_BYTES: usize = 3 << 20;

/// Result of [`Queue::offer`].
#[derive(Debug)]
pub struct Offer {
    /// The offered batch, handed back when it was not queued.
    pub rejected: Option<Batch>,
    /// Older host batches removed to make room (the caller counts them as dropped).
    pub evicted: Vec<Batch>,
}

/// FIFO of batches, bounded in count and bytes.
#[derive(Debug)]
pub struct Queue {
    items: VecDeque<Batch>,
    capacity: usize,
    max_bytes: usize,
    bytes: usize,
}

impl Queue {
    /// A queue holding at most `capacity` batches and `max_bytes` encoded bytes.
    pub fn new(capacity: usize, max_bytes: usize) -> Queue {
        Queue {
            items: VecDeque::with_capacity(capacity.min(64)),
            capacity: capacity.max(1),
            max_bytes: max_bytes.max(1),
            bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Encoded bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Would `b` fit next to `len` batches of `bytes` bytes? An empty queue takes any batch, so
    /// an oversized one cannot wedge the pipeline.
    fn fits(&self, len: usize, bytes: usize, b: &Batch) -> bool {
        len == 0 || (len < self.capacity && bytes + b.bytes <= self.max_bytes)
    }

    /// Applies the admission policy (see the module doc).
    pub fn offer(&mut self, batch: Batch) -> Offer {
        let mut evicted = Vec::new();
        if !self.fits(self.items.len(), self.bytes, &batch) {
            // Only host batches may evict, and only if evicting every host batch would make
            // room: otherwise nothing is gained by dropping them.
            let (relay_len, relay_bytes) = self
                .items
                .iter()
                .filter(|b| b.origin == Origin::Relay)
                .fold((0, 0), |(n, s), b| (n + 1, s + b.bytes));
            if batch.origin == Origin::Relay || !self.fits(relay_len, relay_bytes, &batch) {
                return Offer {
                    rejected: Some(batch),
                    evicted,
                };
            }
            while !self.fits(self.items.len(), self.bytes, &batch) {
                let Some(pos) = self.items.iter().position(|b| b.origin == Origin::Host) else {
                    break;
                };
                if let Some(old) = self.items.remove(pos) {
                    self.bytes -= old.bytes;
                    evicted.push(old);
                }
            }
        }
        self.bytes += batch.bytes;
        self.items.push_back(batch);
        Offer {
            rejected: None,
            evicted,
        }
    }

    /// Takes the oldest batch, merged with the following batches of the same signal while the
    /// result stays within `max_items` items and [`MAX_MERGED_BYTES`].
    pub fn pop_batch(&mut self, max_items: usize) -> Option<Batch> {
        let mut head = self.items.pop_front()?;
        self.bytes -= head.bytes;
        while let Some(next) = self.items.front() {
            if next.signal() != head.signal()
                || head.items + next.items > max_items
                || head.bytes + next.bytes > MAX_MERGED_BYTES
            {
                break;
            }
            let Some(next) = self.items.pop_front() else {
                break;
            };
            self.bytes -= next.bytes;
            head.items += next.items;
            head.bytes += next.bytes;
            if let Err(p) = head.payload.merge(next.payload) {
                // Unreachable (same signal checked above); never lose data if it happens.
                self.items.push_front(Batch::new(p, next.origin));
                self.bytes += self.items.front().map_or(0, |b| b.bytes);
                break;
            }
            // A merged batch is only "host" if all its parts are.
            if next.origin == Origin::Relay {
                head.origin = Origin::Relay;
            }
        }
        Some(head)
    }

    /// Removes everything (used when the drain deadline passes).
    pub fn drain(&mut self) -> impl Iterator<Item = Batch> + '_ {
        self.bytes = 0;
        self.items.drain(..)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::export::batch::Payload;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn spans(n: usize, origin: Origin) -> Batch {
        let p = Payload::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        Batch::new(p, origin)
    }

    fn host(tag: usize) -> Batch {
        let mut b = Batch::new(
            Payload::Metrics(ExportMetricsServiceRequest::default()),
            Origin::Host,
        );
        b.items = tag; // a marker for the test
        b.bytes = 10;
        b
    }

    #[test]
    fn relay_is_rejected_when_full() {
        let mut q = Queue::new(2, 1 << 20);
        assert!(q.offer(spans(1, Origin::Relay)).rejected.is_none());
        assert!(q.offer(spans(1, Origin::Relay)).rejected.is_none());
        let o = q.offer(spans(1, Origin::Relay));
        assert!(o.rejected.is_some() && o.evicted.is_empty());
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn host_evicts_oldest_host() {
        let mut q = Queue::new(3, 1 << 20);
        q.offer(host(1));
        q.offer(spans(1, Origin::Relay));
        q.offer(host(2));
        let Offer { rejected, evicted } = q.offer(host(3));
        assert!(rejected.is_none());
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].items, 1);
        assert_eq!(q.len(), 3);
        // Relay data is never evicted; with no host batch left, a host batch is rejected.
        let mut q = Queue::new(1, 1 << 20);
        q.offer(spans(1, Origin::Relay));
        let o = q.offer(host(9));
        assert!(o.rejected.is_some() && o.evicted.is_empty());
        // A host batch evicts a host batch even when relay data fills the rest.
        let mut q = Queue::new(2, 1 << 20);
        q.offer(spans(1, Origin::Relay));
        q.offer(host(1));
        q.offer(spans(1, Origin::Relay)); // rejected: full
        let o = q.offer(host(2));
        assert!(o.rejected.is_none() && o.evicted.len() == 1);
    }

    #[test]
    fn byte_bound() {
        let mut q = Queue::new(100, 25);
        q.offer(host(1));
        q.offer(host(2));
        assert_eq!(q.bytes(), 20);
        let o = q.offer(host(3));
        assert_eq!(o.evicted.len(), 1);
        assert_eq!(q.bytes(), 20);
        // An oversized batch is accepted into an empty queue only.
        let mut q = Queue::new(10, 1);
        assert!(q.offer(spans(5, Origin::Relay)).rejected.is_none());
        assert!(q.offer(spans(5, Origin::Relay)).rejected.is_some());
    }

    #[test]
    fn pop_merges_same_signal_up_to_limit() {
        let mut q = Queue::new(10, 1 << 20);
        q.offer(spans(2, Origin::Relay));
        q.offer(spans(3, Origin::Relay));
        q.offer(spans(4, Origin::Relay));
        q.offer(host(0));
        q.offer(spans(1, Origin::Relay));
        let b = q.pop_batch(6).unwrap();
        assert_eq!(b.items, 5);
        assert_eq!(b.payload.items(), 5);
        assert_eq!(q.pop_batch(100).unwrap().items, 4);
        assert_eq!(
            q.pop_batch(100).unwrap().signal(),
            crate::export::batch::Signal::Metrics
        );
        assert_eq!(q.pop_batch(100).unwrap().items, 1);
        assert!(q.pop_batch(100).is_none());
        assert_eq!(q.bytes(), 0);
    }
}
