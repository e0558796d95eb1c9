//! Sandbox processes, the server's side: a small pool of warm workers (the server's own
//! binary re-executed in its worker role, with an empty environment and only its pipes), one
//! run per worker at a time. The server answers the worker's tool calls, and kills it at the
//! wall limit plus a short grace, on cancellation, or when it dies of a limit; a replacement
//! is started for the pool. A run can then never outlive its limit by more than the grace,
//! whatever the program does, and never slow another session's runs.
//!
//! A worker whose run ended cleanly goes back to its session ([`WorkerSlot`]), never to
//! another session, and runs that session's next program in a fresh context it prepared
//! meanwhile: a session's runs skip starting a process and building a context.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::BufReader;
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::wire::{self, Header, WireLimits};
use crate::worker::{RunDone, RunRequest};
use crate::{Control, Host, HostValue, Limits, RunError, RunOutput, State, WATCHDOG_GRACE};

/// Where programs run (CONTRACT §3.4).
#[derive(Debug, Clone)]
pub enum Isolation {
    /// In a confined worker process from this pool, killed when it overruns.
    Process(Arc<Pool>),
    /// On a thread of the calling process: no system-call filter, and a program stuck in a
    /// built-in keeps a thread busy until it returns.
    InProcess,
}

impl Isolation {
    /// Runs a program where this says, in the session's own worker (`slot`) when it has
    /// one. Never panics into the caller.
    pub async fn run(
        &self,
        program: &str,
        host: Arc<dyn Host>,
        state: State,
        limits: Limits,
        control: Control,
        slot: &WorkerSlot,
    ) -> RunOutput {
        match self {
            Isolation::Process(pool) => pool.run(program, host, state, limits, control, slot).await,
            Isolation::InProcess => crate::run(program, host, state, limits, control).await,
        }
    }
}

/// How to start a worker: a program and its arguments (`kubecode sandbox-worker`).
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl WorkerCommand {
    /// This very executable, re-executed with `args`.
    pub fn current_exe(args: &[&str]) -> std::io::Result<WorkerCommand> {
        Ok(WorkerCommand {
            program: std::env::current_exe()?,
            args: args.iter().map(|a| a.to_string()).collect(),
        })
    }
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Held while the worker waits in a session's slot (counts against [`MAX_KEPT`]).
    kept: Option<Kept>,
}

/// Workers kept in session slots, all sessions together, at most.
const MAX_KEPT: usize = 16;

/// One running worker's place in the count.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One kept worker's place in the count.
struct Kept(Arc<AtomicUsize>);

impl Drop for Kept {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A session's own worker, kept between its runs. Dropping the slot (the session ends) stops
/// the worker.
#[derive(Default)]
pub struct WorkerSlot(Mutex<Option<Worker>>);

impl std::fmt::Debug for WorkerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.0.lock().map(|w| w.is_some()).unwrap_or(false);
        f.debug_struct("WorkerSlot").field("kept", &kept).finish()
    }
}

impl WorkerSlot {
    /// The kept worker, if it is still alive.
    fn take_alive(&self) -> Option<Worker> {
        let mut worker = self.0.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        matches!(worker.child.try_wait(), Ok(None)).then_some(worker)
    }

    fn keep(&self, worker: Worker) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(worker);
    }
}

/// Warm workers, ready for the next run.
pub struct Pool {
    command: WorkerCommand,
    warm: Mutex<Vec<Worker>>,
    size: usize,
    kept: Arc<AtomicUsize>,
    running: AtomicUsize,
}

/// How many workers a pool has, by what they do (the server's `sandbox workers` gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Started and waiting for any session's next run.
    pub warm: usize,
    /// Kept by a session for its runs (between them, or running one).
    pub kept: usize,
    /// Running a program now.
    pub running: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("command", &self.command)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool that keeps `size` workers warm (started on first use, then after each run).
    pub fn new(command: WorkerCommand, size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            command,
            warm: Mutex::new(Vec::new()),
            size,
            kept: Arc::new(AtomicUsize::new(0)),
            running: AtomicUsize::new(0),
        })
    }

    /// The pool's workers now, by what they do.
    pub fn counts(&self) -> WorkerCounts {
        WorkerCounts {
            warm: self.warm.lock().unwrap_or_else(|e| e.into_inner()).len(),
            kept: self.kept.load(Ordering::SeqCst),
            running: self.running.load(Ordering::SeqCst),
        }
    }

    fn spawn(&self) -> std::io::Result<Worker> {
        let mut child = tokio::process::Command::new(&self.command.program)
            .args(&self.command.args)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("the worker has no pipes"));
        };
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            kept: None,
        })
    }

    /// Starts workers until `size` are warm.
    pub fn fill(&self) {
        let mut warm = self.warm.lock().unwrap_or_else(|e| e.into_inner());
        while warm.len() < self.size {
            match self.spawn() {
                Ok(w) => warm.push(w),
                Err(e) => {
                    tracing::warn!("cannot start a sandbox worker: {e}");
                    break;
                }
            }
        }
    }

    fn take(&self) -> std::io::Result<Worker> {
        let warm = self.warm.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match warm {
            Some(w) => Ok(w),
            None => self.spawn(),
        }
    }

    /// Runs a program in a worker. Never panics into the caller: every failure is a failed
    /// [`RunOutput`].
    pub async fn run(
        self: &Arc<Pool>,
        program: &str,
        host: Arc<dyn Host>,
        state: State,
        limits: Limits,
        control: Control,
        slot: &WorkerSlot,
    ) -> RunOutput {
        let started = Instant::now();
        let worker = match slot.take_alive() {
            Some(w) => Ok(w),
            None => {
                let w = self.take();
                // The next session's worker starts while this one runs.
                let pool = self.clone();
                tokio::task::spawn_blocking(move || pool.fill());
                w
            }
        };
        let mut out = match worker {
            Ok(w) => {
                self.running.fetch_add(1, Ordering::SeqCst);
                // Counted down however the run ends (the caller may drop this future).
                let _running = Running(&self.running);
                let (out, back) = drive(w, program, host, state, &limits, control).await;
                if let Some(w) = back.and_then(|w| self.keep(w)) {
                    slot.keep(w);
                }
                out
            }
            Err(e) => failed(
                "InternalError",
                format!("cannot start a sandbox process: {e}"),
            ),
        };
        out.stats.wall_ms = out.stats.wall_ms.max(started.elapsed().as_millis() as u64);
        out
    }

    /// A worker that may wait in a session's slot, counted; `None` (the worker is stopped)
    /// when [`MAX_KEPT`] already wait.
    fn keep(&self, mut worker: Worker) -> Option<Worker> {
        if worker.kept.is_none() {
            if self.kept.fetch_add(1, Ordering::SeqCst) >= MAX_KEPT {
                self.kept.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
            worker.kept = Some(Kept(self.kept.clone()));
        }
        Some(worker)
    }
}

fn failed(name: &str, message: String) -> RunOutput {
    RunOutput::failed(RunError::simple(name, &message), Vec::new(), Vec::new())
}

/// A call's result as it crosses the pipe: JSON text, or a list's items one per line
/// (compact JSON has no raw newline), which the worker hands over item by item.
fn result_payload(value: HostValue) -> (Vec<u8>, bool) {
    match value {
        HostValue::Json(v) => (v.to_string().into_bytes(), false),
        HostValue::Text(t) => (t.into_bytes(), false),
        HostValue::Items(items) => (wire::join_items(&items), true),
    }
}

/// Answers the worker's messages until it is done, dies, or runs out of time. Gives the
/// worker back when it finished cleanly and can run its session's next program.
async fn drive(
    mut w: Worker,
    program: &str,
    host: Arc<dyn Host>,
    state: State,
    limits: &Limits,
    control: Control,
) -> (RunOutput, Option<Worker>) {
    let request = RunRequest {
        program: program.to_string(),
        state: state.snapshot(),
    };
    let payload = serde_json::to_vec(&request).unwrap_or_default();
    let run = Header::Run {
        limits: WireLimits::from(limits),
        functions: host.functions(),
        len: payload.len(),
    };
    if let Err(e) = wire::nonblocking::write(&mut w.stdin, &run, &payload).await {
        let out = failed(
            "InternalError",
            format!("cannot reach the sandbox process: {e}"),
        );
        return (out, None);
    }
    let Worker {
        mut child,
        mut stdin,
        mut stdout,
        kept,
    } = w;
    // Replies from concurrent calls go through one writer; it gives the pipe back when the
    // run's senders are gone.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Header, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((h, p)) = rx.recv().await {
            if wire::nonblocking::write(&mut stdin, &h, &p).await.is_err() {
                return None;
            }
        }
        Some(stdin)
    });
    // Messages are read by a task of their own: a read cut short by another branch of the
    // select below would lose its place in the stream. It gives the pipe back after `done`.
    let (inbox_tx, mut inbox) = tokio::sync::mpsc::channel(64);
    let reader = tokio::spawn(async move {
        loop {
            let message = wire::nonblocking::read(&mut stdout).await;
            let done = matches!(message, Ok(Some((Header::Done { .. }, _))));
            let end = !matches!(message, Ok(Some(_)));
            if inbox_tx.send(message).await.is_err() || end {
                return None;
            }
            if done {
                return Some(stdout);
            }
        }
    });
    let mut reusable = false;
    let mut deadline = tokio::time::Instant::now() + limits.wall + WATCHDOG_GRACE;
    let mut cancel_sent = false;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut calls = tokio::task::JoinSet::new();
    let outcome = loop {
        tokio::select! {
            message = inbox.recv() => match message.unwrap_or(Ok(None)) {
                Ok(Some((Header::Call { id, path, .. }, payload))) => {
                    let args = serde_json::from_slice(&payload).unwrap_or(serde_json::Value::Null);
                    let (host, tx) = (host.clone(), tx.clone());
                    let items_tx = tx.clone();
                    let ahead: crate::ItemBatches = Box::new(move |items: Vec<String>| {
                        let payload = wire::join_items(&items);
                        let _ = items_tx.send((Header::Items { id, len: payload.len() }, payload));
                    });
                    calls.spawn(async move {
                        let header = match host.call(&path, args, ahead).await {
                            Ok(v) => {
                                let (payload, items) = result_payload(v);
                                let len = payload.len();
                                (Header::Result { id, ok: true, items, code: None, message: None, len }, payload)
                            }
                            Err((code, message)) => {
                                (Header::Result { id, ok: false, items: false, code: Some(code), message: Some(message), len: 0 }, Vec::new())
                            }
                        };
                        let _ = tx.send(header);
                    });
                }
                Ok(Some((Header::Search { id, query, limit }, _))) => {
                    let answer = host.search(&query, limit).to_string().into_bytes();
                    let _ = tx.send((Header::Answer { id, found: true, len: answer.len() }, answer));
                }
                Ok(Some((Header::Describe { id, path }, _))) => {
                    let answer = host.describe(&path);
                    let found = answer.is_some();
                    let bytes = answer.unwrap_or_default().into_bytes();
                    let _ = tx.send((Header::Answer { id, found, len: bytes.len() }, bytes));
                }
                Ok(Some((Header::Progress { calls, ms }, _))) => {
                    if let Some(report) = &control.progress {
                        report(calls, Duration::from_millis(ms));
                    }
                }
                Ok(Some((Header::Done { .. }, payload))) => {
                    break match serde_json::from_slice::<RunDone>(&payload) {
                        Ok(done) => {
                            state.replace(done.state);
                            reusable = done.reusable && !cancel_sent;
                            done.output
                        }
                        Err(e) => failed("InternalError", format!("the sandbox process sent an unreadable result: {e}")),
                    };
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break died(&mut child, limits).await,
            },
            () = tokio::time::sleep_until(deadline) => {
                let _ = child.start_kill();
                break RunOutput::failed(
                    if cancel_sent {
                        RunError::simple("Cancelled", "the client cancelled the run")
                    } else {
                        RunError::limit_exceeded(format!(
                            "the wall-clock limit ({} ms) was exceeded: the program was stopped; fetch less, filter on the server (labelSelector, fieldSelector, tailLines), or avoid long loops and sleeps",
                            limits.wall.as_millis()
                        ))
                    },
                    Vec::new(),
                    Vec::new(),
                );
            }
            _ = tick.tick() => {
                if !cancel_sent && control.cancel.load(Ordering::Relaxed) {
                    cancel_sent = true;
                    let _ = tx.send((Header::Cancel, Vec::new()));
                    // It stops at its next interrupt check; if it does not, it is killed.
                    deadline = deadline.min(tokio::time::Instant::now() + WATCHDOG_GRACE);
                }
            }
        }
    };
    if reusable {
        // Calls the program left running are of no use now; once they are gone the writer
        // has flushed what they sent and gives the pipe back.
        calls.shutdown().await;
        drop(tx);
        if let (Ok(Some(stdin)), Ok(Some(stdout))) = (writer.await, reader.await) {
            let worker = Worker {
                child,
                stdin,
                stdout,
                kept,
            };
            return (outcome, Some(worker));
        }
        return (outcome, None);
    }
    calls.abort_all();
    drop(tx);
    writer.abort();
    reader.abort();
    // A worker that is not kept exits by itself after `done`; kill it in any case (tokio
    // reaps it).
    let _ = child.start_kill();
    (outcome, None)
}

/// Why a worker ended without a result, from its exit status.
async fn died(child: &mut Child, limits: &Limits) -> RunOutput {
    let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    let error = match status.ok().and_then(Result::ok) {
        Some(s) if s.signal() == Some(libc::SIGSYS) => RunError::simple(
            "SecurityError",
            "the program tried a system call the sandbox forbids, and was stopped",
        ),
        Some(s) if s.signal() == Some(libc::SIGXCPU) => RunError::limit_exceeded(format!(
            "the CPU time limit ({} s) was exceeded: the program was stopped",
            limits.wall.as_secs() + 2
        )),
        Some(s)
            if matches!(
                s.signal(),
                Some(libc::SIGABRT | libc::SIGSEGV | libc::SIGBUS)
            ) =>
        {
            RunError::limit_exceeded(format!(
                "the memory limit ({} MiB) was exceeded: the sandbox process ran out of memory; work on less data at once",
                limits.memory / (1024 * 1024)
            ))
        }
        Some(s) => RunError::simple(
            "InternalError",
            &format!("the sandbox process ended unexpectedly ({s})"),
        ),
        None => RunError::simple("InternalError", "the sandbox process stopped answering"),
    };
    RunOutput::failed(error, Vec::new(), Vec::new())
}
