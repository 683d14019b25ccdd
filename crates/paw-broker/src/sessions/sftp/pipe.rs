//! The two directions an SFTP session writes to, each drained by a task of its own.
//!
//! Why: a write to an SSH channel waits for the peer's window, and the window only opens
//! while the connection's messages are being read. A proxy loop that awaited its writes
//! stopped reading the other side meanwhile; russh then stopped handing over the target's
//! answers (and with them its window adjustments), and a transfer of more than a few MB
//! stalled for good. Here the loop only queues; the queue's bytes are counted, and the loop
//! stops reading the client's requests while either queue holds more than [`LIMIT`], so a
//! client that does not read its answers cannot make the broker hold more than that.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::{ChannelId, ChannelWriteHalf};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

/// Bytes a direction may hold queued before the client's requests wait.
pub(super) const LIMIT: usize = 4 << 20;

pub(super) enum Out {
    Data(Bytes),
    /// The client's stderr (what `paw: …` lines go to); the target has none.
    Stderr(Bytes),
    Exit(u32),
    Eof,
}

pub(super) enum Sink {
    Target(ChannelWriteHalf<russh::client::Msg>),
    Client(russh::server::Handle, ChannelId),
}

impl Sink {
    async fn deliver(&self, o: Out) -> Result<(), ()> {
        match (self, o) {
            (Sink::Target(t), Out::Data(b)) => t.data_bytes(b).await.map_err(drop),
            (Sink::Target(t), Out::Eof) => t.eof().await.map_err(drop),
            (Sink::Target(_), Out::Stderr(_) | Out::Exit(_)) => Ok(()),
            (Sink::Client(h, c), Out::Data(b)) => h.data(*c, b).await.map_err(drop),
            (Sink::Client(h, c), Out::Stderr(b)) => h.extended_data(*c, 1, b).await.map_err(drop),
            (Sink::Client(h, c), Out::Exit(s)) => h.exit_status_request(*c, s).await.map_err(drop),
            (Sink::Client(h, c), Out::Eof) => h.eof(*c).await.map_err(drop),
        }
    }
}

pub(super) struct Pipe {
    tx: mpsc::UnboundedSender<Out>,
    queued: Arc<AtomicUsize>,
    broken: Arc<AtomicBool>,
    task: JoinHandle<Sink>,
}

impl Pipe {
    /// Starts the writer; `wake` is notified each time bytes leave the queue or it breaks.
    pub(super) fn new(sink: Sink, wake: Arc<Notify>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
        let queued = Arc::new(AtomicUsize::new(0));
        let broken = Arc::new(AtomicBool::new(false));
        let (q, b) = (queued.clone(), broken.clone());
        let task = tokio::spawn(async move {
            while let Some(o) = rx.recv().await {
                let n = match &o {
                    Out::Data(d) | Out::Stderr(d) => d.len(),
                    _ => 0,
                };
                let ok = sink.deliver(o).await.is_ok();
                q.fetch_sub(n, Ordering::SeqCst);
                if !ok {
                    b.store(true, Ordering::SeqCst);
                }
                wake.notify_one();
                if !ok {
                    break;
                }
            }
            sink
        });
        Self {
            tx,
            queued,
            broken,
            task,
        }
    }

    /// Queues `o`; an error once the writer has failed (the peer is gone).
    pub(super) fn push(&self, o: Out) -> Result<(), ()> {
        if self.broken() {
            return Err(());
        }
        if let Out::Data(d) | Out::Stderr(d) = &o {
            self.queued.fetch_add(d.len(), Ordering::SeqCst);
        }
        self.tx.send(o).map_err(drop)
    }

    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    pub(super) fn broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// Lets what is queued go out (for at most `limit`) and gives the sink back.
    pub(super) async fn finish(self, limit: Duration) -> Option<Sink> {
        drop(self.tx);
        let abort = self.task.abort_handle();
        match tokio::time::timeout(limit, self.task).await {
            Ok(Ok(sink)) => Some(sink),
            _ => {
                abort.abort();
                None
            }
        }
    }
}
