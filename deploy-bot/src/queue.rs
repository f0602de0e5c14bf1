//! The durable work queue in `--state-dir`: an append-only, fsynced journal of accepted deliveries (group commit), replayed after a restart; it also remembers delivery ids so a redelivery is acted on once.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};

use crate::error::{Error, Result};

/// How many delivery ids are remembered across compactions.
const REMEMBERED_DELIVERIES: usize = 100_000;

/// Work accepted from a webhook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Job {
    /// A push to the watched branch: fetch and apply the head.
    Push {
        /// The pushed commit (`after`).
        after: String,
        /// The pull request merged by this push, when the head commit names one.
        #[serde(default)]
        pull_request: Option<u64>,
    },
    /// A pull request event.
    PullRequest {
        /// `opened`, `synchronize`, `reopened`, `closed`.
        action: String,
        /// Its number.
        number: u64,
        /// Head commit.
        head_sha: String,
        /// Head branch.
        head_ref: String,
        /// Base branch.
        base_ref: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Record {
    Enq {
        seq: u64,
        delivery: String,
        job: Job,
    },
    Done {
        seqs: Vec<u64>,
    },
    Seen {
        delivery: String,
    },
}

/// The answer to an enqueue.
#[derive(Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Durably queued with this sequence number.
    Queued(u64),
    /// This delivery id was accepted before.
    Duplicate,
}

struct Append {
    rec: Record,
    line: Vec<u8>,
    done: oneshot::Sender<std::io::Result<()>>,
}

/// What the journal holds, replayed: remembered delivery ids (oldest first) and pending jobs.
/// The writer thread keeps one in step with the file, so it can compact it while running.
#[derive(Default)]
struct Mirror {
    order: VecDeque<String>,
    pending: BTreeMap<u64, Job>,
}

impl Mirror {
    fn apply(&mut self, rec: &Record) {
        match rec {
            Record::Enq { seq, delivery, job } => {
                if !delivery.is_empty() {
                    self.order.push_back(delivery.clone());
                }
                self.pending.insert(*seq, job.clone());
            }
            Record::Done { seqs } => {
                for s in seqs {
                    self.pending.remove(s);
                }
            }
            Record::Seen { delivery } => self.order.push_back(delivery.clone()),
        }
        while self.order.len() > REMEMBERED_DELIVERIES {
            self.order.pop_front();
        }
    }

    /// The compacted journal: `seen` for each remembered delivery, `enq` for each pending job.
    fn snapshot(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        for d in &self.order {
            let rec = Record::Seen {
                delivery: d.clone(),
            };
            serde_json::to_writer(&mut buf, &rec).expect("serialise journal record");
            buf.push(b'\n');
        }
        for (seq, job) in &self.pending {
            let rec = Record::Enq {
                seq: *seq,
                delivery: String::new(),
                job: job.clone(),
            };
            serde_json::to_writer(&mut buf, &rec).expect("serialise journal record");
            buf.push(b'\n');
        }
        buf
    }
}

/// Compact the journal while running once this much was appended since the last compaction.
const COMPACT_AT: u64 = 16 * 1024 * 1024;

struct State {
    seen: HashSet<String>,
    order: VecDeque<String>,
    pending: BTreeMap<u64, Job>,
    next_seq: u64,
}

/// The queue.
pub struct Queue {
    state: Mutex<State>,
    tx: std::sync::mpsc::Sender<Append>,
    notify: Notify,
    path: PathBuf,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// Open (or create) the journal `dir/queue.journal`: replay it, compact it, and start the writer thread.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, COMPACT_AT)
    }

    /// [`Queue::open`], compacting the journal after `compact_at` appended bytes.
    pub fn open_with(dir: &Path, compact_at: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join("queue.journal");
        let mut st = State {
            seen: HashSet::new(),
            order: VecDeque::new(),
            pending: BTreeMap::new(),
            next_seq: 1,
        };
        if path.exists() {
            let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
            for (n, line) in BufReader::new(f).lines().enumerate() {
                let line = line.map_err(|e| Error::io(&path, e))?;
                // A torn last line (crash mid-write, never acknowledged) is skipped.
                let Ok(rec) = serde_json::from_str::<Record>(&line) else {
                    tracing::warn!(
                        "{}:{}: skipping unreadable journal record",
                        path.display(),
                        n + 1
                    );
                    continue;
                };
                match rec {
                    Record::Enq { seq, delivery, job } => {
                        remember(&mut st, delivery);
                        st.pending.insert(seq, job);
                        st.next_seq = st.next_seq.max(seq + 1);
                    }
                    Record::Done { seqs } => {
                        for seq in seqs {
                            st.pending.remove(&seq);
                            st.next_seq = st.next_seq.max(seq + 1);
                        }
                    }
                    Record::Seen { delivery } => remember(&mut st, delivery),
                }
            }
        }
        // Compact: remembered deliveries, then what is still pending.
        let mut mirror = Mirror::default();
        let skip = st.order.len().saturating_sub(REMEMBERED_DELIVERIES);
        mirror.order = st.order.iter().skip(skip).cloned().collect();
        mirror.pending.clone_from(&st.pending);
        let buf = mirror.snapshot();
        microplatform_common::io::atomic_write(&path, &buf).map_err(|e| Error::io(&path, e))?;
        sync_dir(dir);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let (tx, rx) = std::sync::mpsc::channel::<Append>();
        std::thread::Builder::new()
            .name("queue-journal".into())
            .spawn({
                let path = path.clone();
                move || writer(file, &rx, &path, mirror, compact_at)
            })
            .map_err(|e| Error::setup("journal thread", e))?;
        Ok(Self {
            state: Mutex::new(st),
            tx,
            notify: Notify::new(),
            path,
        })
    }

    async fn append(&self, rec: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let (done, rx) = oneshot::channel();
        let rec = serde_json::from_slice(&line).map_err(std::io::Error::other)?;
        self.tx
            .send(Append { rec, line, done })
            .map_err(|_| std::io::Error::other("journal writer stopped"))?;
        rx.await
            .map_err(|_| std::io::Error::other("journal writer stopped"))?
    }

    /// Accept a delivery: fsynced before this returns `Queued`; a delivery id seen before is `Duplicate`.
    pub async fn enqueue(&self, delivery: &str, job: Job) -> std::io::Result<Enqueued> {
        let seq = {
            let mut st = self.state.lock().expect("queue lock");
            if st.seen.contains(delivery) {
                return Ok(Enqueued::Duplicate);
            }
            remember(&mut st, delivery.to_string());
            let seq = st.next_seq;
            st.next_seq += 1;
            seq
        };
        let rec = Record::Enq {
            seq,
            delivery: delivery.to_string(),
            job: job.clone(),
        };
        if let Err(e) = self.append(&rec).await {
            let mut st = self.state.lock().expect("queue lock");
            st.seen.remove(delivery);
            return Err(e);
        }
        self.state
            .lock()
            .expect("queue lock")
            .pending
            .insert(seq, job);
        self.notify.notify_one();
        Ok(Enqueued::Queued(seq))
    }

    /// Remember a delivery id without queueing work (ignored events), so a redelivery answers the same.
    pub fn is_duplicate(&self, delivery: &str) -> bool {
        self.state
            .lock()
            .expect("queue lock")
            .seen
            .contains(delivery)
    }

    /// Take every pending job (they stay in the journal until [`Queue::done`]).
    pub fn pending(&self) -> Vec<(u64, Job)> {
        let st = self.state.lock().expect("queue lock");
        st.pending.iter().map(|(s, j)| (*s, j.clone())).collect()
    }

    /// Number of pending jobs.
    pub fn depth(&self) -> usize {
        self.state.lock().expect("queue lock").pending.len()
    }

    /// Mark jobs finished.
    pub async fn done(&self, seqs: &[u64]) -> std::io::Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.append(&Record::Done {
            seqs: seqs.to_vec(),
        })
        .await?;
        let mut st = self.state.lock().expect("queue lock");
        for seq in seqs {
            st.pending.remove(seq);
        }
        Ok(())
    }

    /// Wait until something is queued.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn remember(st: &mut State, delivery: String) {
    if delivery.is_empty() {
        return;
    }
    if st.seen.insert(delivery.clone()) {
        st.order.push_back(delivery);
        if st.order.len() > 2 * REMEMBERED_DELIVERIES
            && let Some(old) = st.order.pop_front()
        {
            st.seen.remove(&old);
        }
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Group commit: write every record waiting, fsync once, then acknowledge them all.
fn writer(
    mut file: File,
    rx: &std::sync::mpsc::Receiver<Append>,
    path: &Path,
    mut mirror: Mirror,
    compact_at: u64,
) {
    let mut written = 0u64;
    let mut broken: Option<String> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        let mut buf = Vec::with_capacity(batch.len() * 128);
        for a in &batch {
            buf.extend_from_slice(&a.line);
        }
        let res = match &broken {
            Some(why) => Err(std::io::Error::other(why.clone())),
            None => file.write_all(&buf).and_then(|()| file.sync_data()),
        };
        if res.is_ok() {
            for a in &batch {
                mirror.apply(&a.rec);
            }
            written += buf.len() as u64;
        }
        // Every waiter of the batch gets the one error (an io::Error cannot be cloned: each gets
        // one of the same kind around the shared original).
        let res = res.map_err(std::sync::Arc::new);
        for a in batch {
            let r = match &res {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::new(e.kind(), std::sync::Arc::clone(e))),
            };
            let _ = a.done.send(r);
        }
        if res.is_ok() && written >= compact_at {
            // Everything acknowledged is in the mirror; rewrite the journal from it.
            let snapshot = mirror.snapshot();
            match microplatform_common::io::atomic_write(path, &snapshot) {
                Ok(()) => {
                    if let Some(dir) = path.parent() {
                        sync_dir(dir);
                    }
                    match OpenOptions::new().append(true).open(path) {
                        Ok(f) => {
                            file = f;
                            written = 0;
                            tracing::debug!("journal compacted to {} bytes", snapshot.len());
                        }
                        Err(e) => {
                            // The old handle points at the replaced file: refuse work rather than lose it.
                            tracing::error!("{}: cannot reopen the journal: {e}", path.display());
                            broken = Some(format!("journal unusable: {e}"));
                        }
                    }
                }
                Err(e) => tracing::warn!("{}: compaction failed, continuing: {e}", path.display()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(s: &str) -> Job {
        Job::Push {
            after: s.into(),
            pull_request: None,
        }
    }

    #[tokio::test]
    async fn compacts_while_running_without_losing_work() {
        let t = tempfile::tempdir().unwrap();
        {
            let q = Queue::open_with(t.path(), 2048).unwrap();
            for i in 0..200u64 {
                let seq = match q.enqueue(&format!("d{i}"), push("x")).await.unwrap() {
                    Enqueued::Queued(s) => s,
                    Enqueued::Duplicate => panic!("duplicate"),
                };
                if i % 3 != 0 {
                    q.done(&[seq]).await.unwrap();
                }
            }
            // Compacted while running: most `done` records are gone, replaced by `seen` records.
            let text = std::fs::read_to_string(t.path().join("queue.journal")).unwrap();
            let done = text
                .lines()
                .filter(|l| l.contains("\"op\":\"done\""))
                .count();
            let seen = text
                .lines()
                .filter(|l| l.contains("\"op\":\"seen\""))
                .count();
            assert!(
                done < 100 && seen > 100,
                "not compacted: {done} done, {seen} seen"
            );
        }
        let q = Queue::open(t.path()).unwrap();
        let pending: Vec<u64> = q.pending().into_iter().map(|(s, _)| s).collect();
        let want: Vec<u64> = (0..200u64).filter(|i| i % 3 == 0).map(|i| i + 1).collect();
        assert_eq!(pending, want);
        for i in [0, 57, 199] {
            assert_eq!(
                q.enqueue(&format!("d{i}"), push("x")).await.unwrap(),
                Enqueued::Duplicate
            );
        }
    }

    #[tokio::test]
    async fn survives_reopen_and_dedups() {
        let t = tempfile::tempdir().unwrap();
        {
            let q = Queue::open(t.path()).unwrap();
            assert_eq!(
                q.enqueue("d1", push("a")).await.unwrap(),
                Enqueued::Queued(1)
            );
            assert_eq!(
                q.enqueue("d1", push("a")).await.unwrap(),
                Enqueued::Duplicate
            );
            assert_eq!(
                q.enqueue("d2", push("b")).await.unwrap(),
                Enqueued::Queued(2)
            );
            q.done(&[1]).await.unwrap();
        }
        // Simulate a torn write after the last acknowledged record.
        let mut f = OpenOptions::new()
            .append(true)
            .open(t.path().join("queue.journal"))
            .unwrap();
        f.write_all(b"{\"op\":\"enq\",\"se").unwrap();
        drop(f);
        let q = Queue::open(t.path()).unwrap();
        assert_eq!(q.pending(), vec![(2, push("b"))]);
        assert_eq!(
            q.enqueue("d1", push("a")).await.unwrap(),
            Enqueued::Duplicate
        );
        assert_eq!(
            q.enqueue("d3", push("c")).await.unwrap(),
            Enqueued::Queued(3)
        );
    }
}
