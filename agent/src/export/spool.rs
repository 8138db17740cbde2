//! The on-disk spool: every batch waits here, in arrival order, until the collector has
//! acknowledged it, so nothing that was accepted is lost to an agent restart, a host reboot or
//! a collector outage, as long as it fits in `exporter.queue.max_bytes` and is younger than
//! `exporter.queue.max_age`.
//!
//! It is plain data owned by the exporter task (no locks, no threads); the task calls
//! [`Spool::append`] for each offer and [`Spool::sync`] before it answers anyone, takes work with
//! [`Spool::next_batch`] (which is also the batcher: it merges consecutive records of one
//! signal into one request) and, once the delivery is over, [`Spool::ack`].
//!
//! # On disk
//!
//! The directory holds segment files `<first id, 20 digits>.seg`, a `head` file and a `lock`
//! file. A segment is a sequence of records:
//!
//! ```text
//! u32 LE body length | u32 LE CRC-32 of the body | body
//! body: u8 version (1) | u8 signal | u8 origin | u8 0 | u64 LE id | u64 LE written (Unix ms)
//!       | u32 LE items | encoded Export*ServiceRequest
//! ```
//!
//! Ids increase by one per record across segments. `head` holds the first id that is still
//! live (`u64 LE` + CRC-32), replaced atomically (write `head.tmp`, fsync, rename, fsync the
//! directory): records below it were delivered, or dropped as too old or to make room. A
//! segment is deleted once all of its records are below `head`. The spool's bytes are the live
//! records' sizes; disk use can exceed `max_bytes` by at most the oldest segment's dead part
//! (segments are `max_bytes / 16`, between 64 KiB and 16 MiB).
//!
//! # Crash safety
//!
//! A record is written with one `write` and made durable by [`Spool::sync`] (fdatasync) before
//! the relay answers the application or the host batch counts as queued. At start
//! ([`Spool::open`]) every segment is read back: a record whose length runs past the end of
//! the file, whose CRC does not match, or whose id does not follow its predecessor is a torn
//! write, and the segment is truncated there (counted and logged, never a panic). Records are
//! read back in id order from `head` on, so delivery resumes oldest-first. A delivery that was
//! in flight during a crash is sent again (at least once; the collector drops duplicates).
//!
//! `lock` is held with `flock` while the spool is open, so two agents never share one
//! directory. The directory is created `0700` and the files `0600`: spooled data is whatever
//! applications send.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::batch::{Batch, Origin, Payload, Signal};
use crate::config::QueueConfig;

/// Merged requests stop growing past this many bytes, well under the 4 MiB default gRPC
/// message limit of collectors. A single larger record is still sent on its own.
pub const MAX_MERGED_BYTES: usize = 3 << 20;

/// Bytes before the body: length and CRC.
const FRAME: usize = 8;
/// Bytes of the body before the encoded request.
const BODY_HEADER: usize = 24;
const VERSION: u8 = 1;
const SEGMENT_SUFFIX: &str = ".seg";

/// A spool operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{dir}: spool directory is in use by another process")]
    Locked { dir: PathBuf },
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Why records left the spool without being delivered (`reason` of the drop counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    /// Evicted, oldest first, to make room.
    Full,
    /// Older than `max_age`.
    TooOld,
    /// Unreadable when it was due (I/O error or CRC mismatch).
    Corrupt,
}

/// Records that left the spool undelivered: per signal, how many items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub cause: DropCause,
    pub signal: Signal,
    pub items: u64,
}

/// What [`Spool::open`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Live records found.
    pub records: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Torn or corrupt tails cut off, as `(segment, offset)`.
    pub truncated: Vec<(PathBuf, u64)>,
}

/// Result of [`Spool::append`].
#[derive(Debug, Default)]
pub struct Appended {
    /// Whether the record was written (false: it cannot fit even in an empty spool).
    pub stored: bool,
    /// Older records dropped to make room.
    pub dropped: Vec<Dropped>,
    /// True when a dropped record belonged to the delivery in flight, which the caller must
    /// abandon (the rest of its records are handed out again).
    pub cancels_inflight: bool,
}

/// A merged request taken by [`Spool::next_batch`], to be acknowledged with [`Spool::ack`].
#[derive(Debug)]
pub struct Taken {
    pub batch: Batch,
    /// The id to pass to [`Spool::ack`].
    pub last_id: u64,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: File,
    /// Bytes written.
    len: u64,
    /// Id of the last record in it, if any.
    last_id: Option<u64>,
}

/// One live record, indexed in memory; its payload stays on disk until it is due.
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u64,
    /// Key of its segment in `segments`.
    segment: u64,
    offset: u64,
    /// Frame plus body.
    len: u32,
    signal: Signal,
    origin: Origin,
    items: u32,
    written_ms: u64,
}

/// The spool (see the module doc).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Held for the spool's lifetime; the `flock` goes away with the file descriptor.
    _lock: File,
    max_bytes: u64,
    max_age: Duration,
    segment_bytes: u64,
    /// By first id. The last one is where appends go (once `writer` is set).
    segments: BTreeMap<u64, Segment>,
    /// The segment appends go to; `None` until the first append after opening, so each start
    /// writes a fresh segment and never appends behind a truncated tail.
    writer: Option<u64>,
    /// Live records, oldest first.
    entries: VecDeque<Entry>,
    bytes: u64,
    next_id: u64,
    /// First live id, as persisted (see `head_dirty`).
    head: u64,
    /// `head` moved (drops) and is not yet written; written by the next `sync` or `ack`.
    head_dirty: bool,
    /// Appended data not yet fdatasync'ed, and whether a new segment's directory entry is.
    data_dirty: bool,
    dir_dirty: bool,
    /// Entries at the front handed out by `next_batch` and not yet acknowledged.
    inflight: usize,
}

fn segment_name(first_id: u64) -> String {
    format!("{first_id:020}{SEGMENT_SUFFIX}")
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn signal_code(s: Signal) -> u8 {
    s as u8
}

fn signal_from(code: u8) -> Option<Signal> {
    Signal::ALL.get(usize::from(code)).copied()
}

fn origin_code(o: Origin) -> u8 {
    match o {
        Origin::Host => 0,
        Origin::Relay => 1,
    }
}

fn origin_from(code: u8) -> Option<Origin> {
    match code {
        0 => Some(Origin::Host),
        1 => Some(Origin::Relay),
        _ => None,
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Encodes one record (frame and body).
fn encode_record(id: u64, written_ms: u64, batch: &Batch) -> Vec<u8> {
    let payload_len = batch.payload.encoded_len();
    let mut rec = Vec::with_capacity(FRAME + BODY_HEADER + payload_len);
    rec.extend_from_slice(&[0u8; FRAME]);
    rec.extend_from_slice(&[
        VERSION,
        signal_code(batch.signal()),
        origin_code(batch.origin),
        0,
    ]);
    rec.extend_from_slice(&id.to_le_bytes());
    rec.extend_from_slice(&written_ms.to_le_bytes());
    let items = u32::try_from(batch.items).unwrap_or(u32::MAX);
    rec.extend_from_slice(&items.to_le_bytes());
    // Encoding into a Vec cannot run out of room.
    let _ = match &batch.payload {
        Payload::Metrics(r) => r.encode(&mut rec),
        Payload::Traces(r) => r.encode(&mut rec),
        Payload::Logs(r) => r.encode(&mut rec),
    };
    let body_len = u32::try_from(rec.len() - FRAME).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(&rec[FRAME..]);
    rec[0..4].copy_from_slice(&body_len.to_le_bytes());
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
    rec
}

/// A record body's header fields, once its CRC checked out.
struct Header {
    signal: Signal,
    origin: Origin,
    id: u64,
    written_ms: u64,
    items: u32,
}

fn parse_header(body: &[u8]) -> Option<Header> {
    if body.len() < BODY_HEADER || body[0] != VERSION {
        return None;
    }
    Some(Header {
        signal: signal_from(body[1])?,
        origin: origin_from(body[2])?,
        id: u64_at(body, 4),
        written_ms: u64_at(body, 12),
        items: u32_at(body, 20),
    })
}

fn decode_payload(signal: Signal, bytes: &[u8]) -> Result<Payload, prost::DecodeError> {
    Ok(match signal {
        Signal::Metrics => Payload::Metrics(ExportMetricsServiceRequest::decode(bytes)?),
        Signal::Traces => Payload::Traces(ExportTraceServiceRequest::decode(bytes)?),
        Signal::Logs => Payload::Logs(ExportLogsServiceRequest::decode(bytes)?),
    })
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir, "fsync directory"))
}

impl Spool {
    /// Opens (creating if needed) and locks the spool directory, reads every segment back,
    /// truncates torn tails, and drops nothing: records past `max_age` or `max_bytes` go at
    /// the first [`Spool::expire`] / [`Spool::append`], where they are counted.
    pub fn open(cfg: &QueueConfig) -> Result<(Spool, Recovery), SpoolError> {
        let dir = cfg.directory.clone();
        // Spooled data is whatever applications send (logs included): owner-only.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir, "create directory"))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io(&lock_path, "open"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| SpoolError::Locked { dir: dir.clone() })?;

        let head = read_head(&dir)?;
        let mut firsts = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir, "list"))? {
            let entry = entry.map_err(io(&dir, "list"))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(num) = name.strip_suffix(SEGMENT_SUFFIX)
                && let Ok(first) = num.parse::<u64>()
            {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();

        let segment_bytes = (cfg.max_bytes / 16).clamp(64 << 10, 16 << 20);
        let mut spool = Spool {
            dir: dir.clone(),
            _lock: lock,
            max_bytes: cfg.max_bytes,
            max_age: cfg.max_age,
            segment_bytes,
            segments: BTreeMap::new(),
            writer: None,
            entries: VecDeque::new(),
            bytes: 0,
            next_id: head,
            head,
            head_dirty: false,
            data_dirty: false,
            dir_dirty: false,
            inflight: 0,
        };
        let mut recovery = Recovery::default();
        let mut last_id: Option<u64> = None;
        for first in firsts {
            let path = dir.join(segment_name(first));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io(&path, "open"))?;
            let (good_len, seg_last, found) = scan_segment(&file, &path, first, &mut last_id)?;
            let file_len = file.metadata().map_err(io(&path, "stat"))?.len();
            if good_len < file_len {
                file.set_len(good_len).map_err(io(&path, "truncate"))?;
                file.sync_all().map_err(io(&path, "fsync"))?;
                tracing::warn!(segment = %path.display(), offset = good_len, cut = file_len - good_len,
                    "spool segment has a torn or corrupt tail (a crash during a write); truncated it");
                recovery.truncated.push((path.clone(), good_len));
            }
            let live: Vec<Entry> = found.into_iter().filter(|e| e.id >= head).collect();
            if seg_last.is_none_or(|l| l < head) {
                // Nothing live (or nothing at all): delivered before the last stop.
                drop(file);
                std::fs::remove_file(&path).map_err(io(&path, "remove"))?;
                spool.dir_dirty = true;
                continue;
            }
            for e in &live {
                spool.bytes += u64::from(e.len);
            }
            spool.entries.extend(live);
            spool.segments.insert(
                first,
                Segment {
                    path,
                    file,
                    len: good_len,
                    last_id: seg_last,
                },
            );
        }
        if let Some(l) = last_id {
            spool.next_id = spool.next_id.max(l + 1);
        }
        if spool.dir_dirty {
            sync_dir(&dir)?;
            spool.dir_dirty = false;
        }
        recovery.records = spool.entries.len();
        recovery.bytes = spool.bytes;
        Ok((spool, recovery))
    }

    /// Live records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of the live records (frames included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Wall-clock write time of the oldest live record.
    pub fn oldest(&self) -> Option<SystemTime> {
        self.entries
            .front()
            .map(|e| UNIX_EPOCH + Duration::from_millis(e.written_ms))
    }

    /// Drops the first `n` live records (oldest first) as `cause`.
    fn drop_front(&mut self, n: usize, cause: DropCause, out: &mut Vec<Dropped>) -> bool {
        let mut cancels = false;
        for _ in 0..n {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= u64::from(e.len);
            self.head = e.id + 1;
            self.head_dirty = true;
            if self.inflight > 0 {
                cancels = true;
            }
            push_dropped(out, cause, e.signal, u64::from(e.items));
        }
        if cancels {
            self.inflight = 0;
        }
        cancels
    }

    /// Writes `batch` as one record (not yet durable: call [`Spool::sync`] before telling
    /// anyone), dropping the oldest records first if it would not fit in `max_bytes`.
    pub fn append(&mut self, batch: &Batch, now: SystemTime) -> Result<Appended, SpoolError> {
        let rec = encode_record(self.next_id, unix_ms(now), batch);
        let len = rec.len() as u64;
        let mut out = Appended::default();
        if len > self.max_bytes {
            return Ok(out);
        }
        let mut n = 0;
        let mut freed = 0u64;
        while self.bytes - freed + len > self.max_bytes {
            match self.entries.get(n) {
                Some(e) => {
                    freed += u64::from(e.len);
                    n += 1;
                }
                None => break,
            }
        }
        out.cancels_inflight = self.drop_front(n, DropCause::Full, &mut out.dropped);

        let seg_key = self.writable_segment(len)?;
        let Some(seg) = self.segments.get_mut(&seg_key) else {
            unreachable!("writable_segment returns an existing key")
        };
        let offset = seg.len;
        if let Err(e) = seg.file.write_all_at(&rec, offset) {
            // Nothing after `offset` counts; cut a partial write off so the next record
            // starts clean.
            let _ = seg.file.set_len(offset);
            return Err(SpoolError::Io {
                path: seg.path.clone(),
                op: "write",
                source: e,
            });
        }
        seg.len += len;
        seg.last_id = Some(self.next_id);
        self.entries.push_back(Entry {
            id: self.next_id,
            segment: seg_key,
            offset,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            signal: batch.signal(),
            origin: batch.origin,
            items: u32::try_from(batch.items).unwrap_or(u32::MAX),
            written_ms: unix_ms(now),
        });
        self.bytes += len;
        self.next_id += 1;
        self.data_dirty = true;
        out.stored = true;
        Ok(out)
    }

    /// The segment the next `len` bytes go to, starting a new one when there is none yet or
    /// the current one is full.
    fn writable_segment(&mut self, len: u64) -> Result<u64, SpoolError> {
        if let Some(k) = self.writer
            && let Some(seg) = self.segments.get(&k)
            && (seg.len == 0 || seg.len + len <= self.segment_bytes)
        {
            return Ok(k);
        }
        // The old writer's data must be durable before we stop syncing it.
        self.sync_data()?;
        let first = self.next_id;
        let path = self.dir.join(segment_name(first));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path, "create"))?;
        self.segments.insert(
            first,
            Segment {
                path,
                file,
                len: 0,
                last_id: None,
            },
        );
        self.writer = Some(first);
        self.dir_dirty = true;
        Ok(first)
    }

    fn sync_data(&mut self) -> Result<(), SpoolError> {
        if self.data_dirty {
            if let Some(seg) = self.writer.and_then(|k| self.segments.get(&k)) {
                seg.file.sync_data().map_err(io(&seg.path, "fdatasync"))?;
            }
            self.data_dirty = false;
        }
        Ok(())
    }

    /// Makes every append so far durable (data, new segments' directory entries, and the
    /// head moved by drops).
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        self.sync_data()?;
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        if self.head_dirty {
            // Drops moved the head: persist it, and free the segments it passed (during a
            // long outage no ack comes to do it, and the disk must stay bounded).
            self.persist_head()?;
            self.remove_dead_segments()?;
        }
        Ok(())
    }

    /// Drops records older than `max_age` at `now` (oldest first).
    pub fn expire(&mut self, now: SystemTime) -> (Vec<Dropped>, bool) {
        let cutoff = unix_ms(now)
            .saturating_sub(u64::try_from(self.max_age.as_millis()).unwrap_or(u64::MAX));
        let n = self
            .entries
            .iter()
            .take_while(|e| e.written_ms < cutoff)
            .count();
        let mut out = Vec::new();
        let cancels = self.drop_front(n, DropCause::TooOld, &mut out);
        (out, cancels)
    }

    /// Reads the oldest records not yet handed out and merges consecutive ones of one signal
    /// while the result stays within `max_items` and [`MAX_MERGED_BYTES`]. Returns `None` while
    /// a batch is in flight (one delivery at a time) or when empty. Unreadable records are
    /// dropped (returned in the second value).
    pub fn next_batch(&mut self, max_items: usize) -> (Option<Taken>, Vec<Dropped>) {
        let mut dropped = Vec::new();
        if self.inflight > 0 {
            return (None, dropped);
        }
        let mut taken: Option<Taken> = None;
        let mut i = 0;
        while i < self.entries.len() {
            let e = self.entries[i];
            if let Some(t) = &taken
                && (e.signal != t.batch.signal()
                    || t.batch.items + e.items as usize > max_items
                    || t.batch.bytes + e.len as usize > MAX_MERGED_BYTES)
            {
                break;
            }
            let payload = match self.read_payload(&e) {
                Ok(p) => p,
                Err(problem) => {
                    if taken.is_some() {
                        // End the batch here; the record is dealt with when it is the oldest,
                        // so that dropping it can move the head past it.
                        break;
                    }
                    tracing::warn!(id = e.id, problem, "unreadable spool record; dropped");
                    if let Some(gone) = self.entries.pop_front() {
                        self.bytes -= u64::from(gone.len);
                        self.head = gone.id + 1;
                        self.head_dirty = true;
                        push_dropped(
                            &mut dropped,
                            DropCause::Corrupt,
                            gone.signal,
                            u64::from(gone.items),
                        );
                    }
                    continue;
                }
            };
            match &mut taken {
                None => {
                    let mut batch = Batch::new(payload, e.origin);
                    batch.items = e.items as usize;
                    batch.bytes = e.len as usize;
                    taken = Some(Taken {
                        batch,
                        last_id: e.id,
                    });
                }
                Some(t) => {
                    if t.batch.payload.merge(payload).is_err() {
                        break; // unreachable: same signal checked above
                    }
                    t.batch.items += e.items as usize;
                    t.batch.bytes += e.len as usize;
                    if e.origin == Origin::Relay {
                        t.batch.origin = Origin::Relay;
                    }
                    t.last_id = e.id;
                }
            }
            i += 1;
        }
        self.inflight = i.min(self.entries.len());
        if taken.is_none() {
            self.inflight = 0;
        }
        (taken, dropped)
    }

    fn read_payload(&self, e: &Entry) -> Result<Payload, String> {
        let seg = self
            .segments
            .get(&e.segment)
            .ok_or_else(|| "segment is gone".to_string())?;
        let mut rec = vec![0u8; e.len as usize];
        seg.file
            .read_exact_at(&mut rec, e.offset)
            .map_err(|err| format!("{}: read: {err}", seg.path.display()))?;
        let crc = u32_at(&rec, 4);
        if crc32fast::hash(&rec[FRAME..]) != crc {
            return Err(format!(
                "{}: CRC mismatch at {}",
                seg.path.display(),
                e.offset
            ));
        }
        decode_payload(e.signal, &rec[FRAME + BODY_HEADER..])
            .map_err(|err| format!("{}: undecodable record: {err}", seg.path.display()))
    }

    /// The batch handed out by [`Spool::next_batch`] is done with (delivered, or given up as
    /// permanently refused): removes its records, persists the new head, and deletes segments
    /// left without live records. A `last_id` whose records were already dropped is a no-op.
    pub fn ack(&mut self, last_id: u64) -> Result<(), SpoolError> {
        while let Some(e) = self.entries.front() {
            if e.id > last_id {
                break;
            }
            self.bytes -= u64::from(e.len);
            self.entries.pop_front();
        }
        self.inflight = 0;
        if last_id + 1 > self.head {
            self.head = last_id + 1;
            self.head_dirty = true;
        }
        self.persist_head()?;
        self.remove_dead_segments()
    }

    /// The delivery in flight was abandoned (shutdown): its records stay, to be sent again.
    pub fn release(&mut self) {
        self.inflight = 0;
    }

    fn persist_head(&mut self) -> Result<(), SpoolError> {
        let tmp = self.dir.join("head.tmp");
        let path = self.dir.join("head");
        let mut buf = Vec::with_capacity(12);
        buf.extend_from_slice(&self.head.to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(&self.head.to_le_bytes()).to_le_bytes());
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp, "create"))?;
        f.write_all(&buf).map_err(io(&tmp, "write"))?;
        f.sync_all().map_err(io(&tmp, "fsync"))?;
        std::fs::rename(&tmp, &path).map_err(io(&path, "rename"))?;
        sync_dir(&self.dir)?;
        self.head_dirty = false;
        Ok(())
    }

    fn remove_dead_segments(&mut self) -> Result<(), SpoolError> {
        let dead: Vec<u64> = self
            .segments
            .iter()
            .filter(|(k, s)| Some(**k) != self.writer && s.last_id.is_none_or(|l| l < self.head))
            .map(|(k, _)| *k)
            .collect();
        for k in &dead {
            if let Some(seg) = self.segments.remove(k) {
                std::fs::remove_file(&seg.path).map_err(io(&seg.path, "remove"))?;
            }
        }
        if !dead.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

fn push_dropped(out: &mut Vec<Dropped>, cause: DropCause, signal: Signal, items: u64) {
    match out
        .iter_mut()
        .find(|d| d.cause == cause && d.signal == signal)
    {
        Some(d) => d.items += items,
        None => out.push(Dropped {
            cause,
            signal,
            items,
        }),
    }
}

/// Reads the persisted head; a missing file is 0, an unreadable one is 0 too (everything on
/// disk is delivered again: at least once), logged.
fn read_head(dir: &Path) -> Result<u64, SpoolError> {
    let path = dir.join("head");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(&path, "read")(e)),
    };
    if bytes.len() == 12 {
        let head = u64_at(&bytes, 0);
        if crc32fast::hash(&bytes[0..8]) == u32_at(&bytes, 8) {
            return Ok(head);
        }
    }
    tracing::warn!(file = %path.display(), "spool head file is corrupt; everything spooled will be delivered again");
    Ok(0)
}

/// Reads a segment's records: returns the length of its valid prefix, the last valid id and
/// the entries. The first record's id must be the segment's name and each next one must
/// follow on; `prev` is updated to the last valid id seen in any segment.
fn scan_segment(
    file: &File,
    path: &Path,
    first: u64,
    prev: &mut Option<u64>,
) -> Result<(u64, Option<u64>, Vec<Entry>), SpoolError> {
    let file_len = file.metadata().map_err(io(path, "stat"))?.len();
    let mut reader = BufReader::with_capacity(256 << 10, file);
    let mut offset = 0u64;
    let mut last = None;
    let mut entries = Vec::new();
    let mut frame = [0u8; FRAME];
    let mut body = Vec::new();
    loop {
        if offset + FRAME as u64 > file_len {
            break;
        }
        if reader.read_exact(&mut frame).is_err() {
            break;
        }
        let body_len = u64::from(u32_at(&frame, 0));
        let crc = u32_at(&frame, 4);
        if body_len < BODY_HEADER as u64 || offset + FRAME as u64 + body_len > file_len {
            break;
        }
        body.resize(body_len as usize, 0);
        if reader.read_exact(&mut body).is_err() || crc32fast::hash(&body) != crc {
            break;
        }
        let Some(h) = parse_header(&body) else { break };
        // The first record carries the segment's name; each next one follows on.
        if h.id != last.map_or(first, |l| l + 1) {
            break;
        }
        let len = FRAME as u64 + body_len;
        entries.push(Entry {
            id: h.id,
            segment: first,
            offset,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            signal: h.signal,
            origin: h.origin,
            items: h.items,
            written_ms: h.written_ms,
        });
        last = Some(h.id);
        offset += len;
    }
    if last.is_some() {
        *prev = last;
    }
    Ok((offset, last, entries))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    /// One span named `name`.
    fn span(name: &str, origin: Origin) -> Batch {
        Batch::new(
            Payload::Traces(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![Span {
                            name: name.to_string(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }),
            origin,
        )
    }

    fn host() -> Batch {
        Batch::new(
            Payload::Metrics(ExportMetricsServiceRequest::default()),
            Origin::Host,
        )
    }

    fn names(b: &Batch) -> Vec<String> {
        let Payload::Traces(t) = &b.payload else {
            return Vec::new();
        };
        t.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.name.clone())
            .collect()
    }

    fn cfg(dir: &Path, max_bytes: u64) -> QueueConfig {
        QueueConfig {
            directory: dir.to_path_buf(),
            max_bytes,
            max_age: Duration::from_secs(3600),
        }
    }

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    /// Takes and acks everything, returning the span names in delivery order.
    fn deliver_all(s: &mut Spool, max_items: usize) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let (taken, dropped) = s.next_batch(max_items);
            assert!(dropped.is_empty());
            let Some(taken) = taken else { break };
            out.extend(names(&taken.batch));
            s.ack(taken.last_id).unwrap();
        }
        out
    }

    #[test]
    fn write_read_ack_in_order_with_merging() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, rec) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
        assert_eq!(rec, Recovery::default());
        for i in 0..5 {
            assert!(
                s.append(&span(&format!("s{i}"), Origin::Relay), t(0))
                    .unwrap()
                    .stored
            );
        }
        s.append(&host(), t(0)).unwrap();
        s.append(&span("s5", Origin::Relay), t(0)).unwrap();
        s.sync().unwrap();
        assert_eq!(s.len(), 7);
        // One at a time while in flight; merged up to 3 items.
        let (a, _) = s.next_batch(3);
        let a = a.unwrap();
        assert_eq!(names(&a.batch), ["s0", "s1", "s2"]);
        assert!(s.next_batch(3).0.is_none(), "one delivery at a time");
        s.ack(a.last_id).unwrap();
        let (b, _) = s.next_batch(100);
        let b = b.unwrap();
        assert_eq!(names(&b.batch), ["s3", "s4"]);
        s.ack(b.last_id).unwrap();
        let (c, _) = s.next_batch(100);
        assert_eq!(c.as_ref().unwrap().batch.signal(), Signal::Metrics);
        s.ack(c.unwrap().last_id).unwrap();
        assert_eq!(deliver_all(&mut s, 100), ["s5"]);
        assert_eq!(s.len(), 0);
        assert_eq!(s.bytes(), 0);
    }

    #[test]
    fn restart_resumes_oldest_first_without_acked_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
            for i in 0..6 {
                s.append(&span(&format!("s{i}"), Origin::Relay), t(0))
                    .unwrap();
            }
            s.sync().unwrap();
            let (a, _) = s.next_batch(2);
            s.ack(a.unwrap().last_id).unwrap();
            // In flight when the agent stops: delivered again after the restart.
            let (b, _) = s.next_batch(2);
            assert_eq!(names(&b.unwrap().batch), ["s2", "s3"]);
        }
        let (mut s, rec) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
        assert_eq!(rec.records, 4);
        assert!(rec.truncated.is_empty());
        s.append(&span("s6", Origin::Relay), t(1)).unwrap();
        s.sync().unwrap();
        assert_eq!(deliver_all(&mut s, 100), ["s2", "s3", "s4", "s5", "s6"]);
        drop(s);
        // Everything acknowledged: nothing comes back, and dead segments are gone.
        let (s, rec) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
        assert_eq!(rec.records, 0);
        assert!(s.is_empty());
        let segs = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".seg")
            })
            .count();
        assert!(segs <= 1, "{segs} segments left");
    }

    #[test]
    fn second_open_of_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_s, _) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
        assert!(matches!(
            Spool::open(&cfg(dir.path(), 1 << 20)),
            Err(SpoolError::Locked { .. })
        ));
    }

    fn only_segment(dir: &Path) -> PathBuf {
        let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".seg"))
            .collect();
        segs.sort();
        segs.pop().unwrap()
    }

    #[test]
    fn torn_tail_is_truncated_and_the_rest_survives() {
        for cut in [1usize, 7, 20, 40] {
            let dir = tempfile::tempdir().unwrap();
            {
                let (mut s, _) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
                for i in 0..3 {
                    s.append(&span(&format!("s{i}"), Origin::Relay), t(0))
                        .unwrap();
                }
                s.sync().unwrap();
            }
            // A crash in the middle of writing the third record: its tail never made it.
            let seg = only_segment(dir.path());
            let len = std::fs::metadata(&seg).unwrap().len();
            let f = OpenOptions::new().write(true).open(&seg).unwrap();
            f.set_len(len - cut as u64).unwrap();
            drop(f);
            let (mut s, rec) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
            assert_eq!(rec.records, 2, "cut {cut}");
            assert_eq!(rec.truncated.len(), 1);
            s.append(&span("s3", Origin::Relay), t(0)).unwrap();
            s.sync().unwrap();
            assert_eq!(deliver_all(&mut s, 100), ["s0", "s1", "s3"]);
        }
    }

    #[test]
    fn garbage_tail_and_flipped_bits_are_cut_by_crc() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
            for i in 0..3 {
                s.append(&span(&format!("s{i}"), Origin::Relay), t(0))
                    .unwrap();
            }
            s.sync().unwrap();
        }
        let seg = only_segment(dir.path());
        let mut bytes = std::fs::read(&seg).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0xff; // the last record's payload
        bytes.extend_from_slice(&[0u8; 100]); // and zeros past it
        std::fs::write(&seg, &bytes).unwrap();
        let (mut s, rec) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
        assert_eq!(rec.records, 2);
        assert_eq!(deliver_all(&mut s, 100), ["s0", "s1"]);
    }

    #[test]
    fn full_drops_oldest_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let one = encode_record(0, 0, &span("s0", Origin::Relay)).len() as u64;
        let (mut s, _) = Spool::open(&cfg(dir.path(), one * 3)).unwrap();
        for i in 0..3 {
            let a = s
                .append(&span(&format!("s{i}"), Origin::Relay), t(0))
                .unwrap();
            assert!(a.stored && a.dropped.is_empty());
        }
        // In flight: s0. The next append evicts it (the oldest) and cancels the delivery.
        let (taken, _) = s.next_batch(1);
        assert_eq!(names(&taken.unwrap().batch), ["s0"]);
        let a = s.append(&span("s3", Origin::Relay), t(0)).unwrap();
        assert!(a.stored);
        assert!(a.cancels_inflight);
        assert_eq!(
            a.dropped,
            [Dropped {
                cause: DropCause::Full,
                signal: Signal::Traces,
                items: 1
            }]
        );
        s.sync().unwrap();
        assert_eq!(s.bytes(), one * 3);
        assert_eq!(deliver_all(&mut s, 100), ["s1", "s2", "s3"]);
        // Eviction is persistent: s0 does not come back after a restart.
        s.append(&span("s4", Origin::Relay), t(0)).unwrap();
        s.append(&span("s5", Origin::Relay), t(0)).unwrap();
        s.append(&span("s6", Origin::Relay), t(0)).unwrap();
        let a = s.append(&span("s7", Origin::Relay), t(0)).unwrap();
        assert_eq!(a.dropped.len(), 1);
        s.sync().unwrap();
        drop(s);
        let (mut s, _) = Spool::open(&cfg(dir.path(), one * 3)).unwrap();
        assert_eq!(deliver_all(&mut s, 100), ["s5", "s6", "s7"]);
        // Larger than the whole spool: not stored, nothing dropped for it.
        let (mut s2, _) = Spool::open(&cfg(&dir.path().join("tiny"), 10)).unwrap();
        let a = s2.append(&span("big", Origin::Relay), t(0)).unwrap();
        assert!(!a.stored && a.dropped.is_empty());
    }

    /// A long outage with a full spool: nothing is acknowledged, the oldest records are
    /// evicted, and the disk stays bounded because evicted segments are deleted.
    #[test]
    fn disk_stays_bounded_while_evicting_without_acks() {
        let dir = tempfile::tempdir().unwrap();
        let max = 1u64 << 20; // 64 KiB segments
        let (mut s, _) = Spool::open(&cfg(dir.path(), max)).unwrap();
        let big = "x".repeat(20_000);
        let mut dropped = 0;
        for i in 0..150 {
            let a = s
                .append(&span(&format!("{i:03}{big}"), Origin::Relay), t(0))
                .unwrap();
            dropped += a.dropped.iter().map(|d| d.items).sum::<u64>();
            s.sync().unwrap();
            let on_disk: u64 = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
                .map(|e| e.metadata().unwrap().len())
                .sum();
            assert!(s.bytes() <= max);
            assert!(
                on_disk <= max + (64 << 10) + 20_100,
                "{on_disk} bytes on disk"
            );
        }
        assert!(dropped > 90, "{dropped}");
        // What is left is the newest, in order.
        let got = deliver_all(&mut s, 1000);
        assert_eq!(got.len() as u64, 150 - dropped);
        assert!(got.last().unwrap().starts_with("149"));
    }

    #[test]
    fn age_limit_drops_old_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
        s.append(&span("old", Origin::Relay), t(0)).unwrap();
        s.append(&host(), t(10)).unwrap();
        s.append(&span("new", Origin::Relay), t(3000)).unwrap();
        s.sync().unwrap();
        let (d, cancels) = s.expire(t(3611));
        assert!(!cancels);
        assert_eq!(
            d,
            [
                Dropped {
                    cause: DropCause::TooOld,
                    signal: Signal::Traces,
                    items: 1
                },
                Dropped {
                    cause: DropCause::TooOld,
                    signal: Signal::Metrics,
                    items: 0
                }
            ]
        );
        s.sync().unwrap();
        drop(s);
        let (mut s, _) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
        assert_eq!(deliver_all(&mut s, 100), ["new"]);
    }

    #[test]
    fn segments_roll_over_and_are_deleted_when_delivered() {
        let dir = tempfile::tempdir().unwrap();
        // 64 KiB segments (the minimum); 20 kB records: three per segment.
        let (mut s, _) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
        let big = "x".repeat(20_000);
        for i in 0..20 {
            s.append(&span(&format!("{i}{big}"), Origin::Relay), t(0))
                .unwrap();
        }
        s.sync().unwrap();
        let count = |d: &Path| {
            std::fs::read_dir(d)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".seg")
                })
                .count()
        };
        assert!(count(dir.path()) >= 4, "{}", count(dir.path()));
        let got = deliver_all(&mut s, 2);
        assert_eq!(got.len(), 20);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, n)| n.starts_with(&i.to_string()))
        );
        assert_eq!(
            count(dir.path()),
            1,
            "only the segment being written remains"
        );
        drop(s);
        let (s, rec) = Spool::open(&cfg(dir.path(), 1 << 20)).unwrap();
        assert_eq!(rec.records, 0);
        assert!(s.is_empty());
    }
}
