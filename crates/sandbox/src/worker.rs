//! The worker side of a sandbox process (`kubecode sandbox-worker`): it receives one program
//! over stdin, confines itself ([`crate::confine`]), runs the program in QuickJS, sends its
//! tool calls to the server over stdout and, at the end, the run's output and `state`. Then
//! it exits: a worker never runs a second program.
//!
//! Threads are made before confinement (a reader of stdin, and a small async runtime that
//! drives tool-call futures); after it, no thread, file or socket can be made.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{self, Header};
use crate::{CallFuture, Control, Host, HostValue, Limits, RunOutput};

/// The `run` payload.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RunRequest {
    pub program: String,
    pub state: BTreeMap<String, String>,
}

/// The `done` payload.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RunDone {
    pub output: RunOutput,
    pub state: BTreeMap<String, String>,
}

type CallReply = tokio::sync::oneshot::Sender<Result<HostValue, (String, String)>>;

/// What the reader thread hands to whom.
#[derive(Default)]
struct Waiting {
    calls: Mutex<HashMap<u64, CallReply>>,
    /// Where each call's list items sent ahead of its result go.
    ahead: Mutex<HashMap<u64, crate::ItemBatches>>,
    answers: Mutex<HashMap<u64, mpsc::Sender<Option<String>>>>,
}

/// Writes messages to the server; one writer at a time.
#[derive(Clone)]
struct Outbox(Arc<Mutex<std::io::Stdout>>);

impl Outbox {
    fn send(&self, header: &Header, payload: &[u8]) {
        let mut out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if wire::write(&mut *out, header, payload).is_err() {
            // The server is gone: nobody is waiting for this run any more.
            std::process::exit(0);
        }
    }
}

/// The program's view of the server: every call and question crosses the pipe.
struct PipeHost {
    functions: Vec<String>,
    outbox: Outbox,
    waiting: Arc<Waiting>,
    next_id: AtomicU64,
}

impl PipeHost {
    fn ask(&self, header: impl FnOnce(u64) -> Header) -> Option<String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        lock(&self.waiting.answers).insert(id, tx);
        self.outbox.send(&header(id), b"");
        rx.recv().ok().flatten()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Host for PipeHost {
    fn functions(&self) -> Vec<String> {
        self.functions.clone()
    }

    fn call(&self, path: &str, args: Value, ahead: crate::ItemBatches) -> CallFuture {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.waiting.calls).insert(id, tx);
        lock(&self.waiting.ahead).insert(id, ahead);
        let payload = args.to_string().into_bytes();
        self.outbox.send(
            &Header::Call {
                id,
                path: path.to_string(),
                len: payload.len(),
            },
            &payload,
        );
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Err((
                    "Unavailable".into(),
                    "the server stopped answering this run".into(),
                ))
            })
        })
    }

    fn search(&self, query: &str, limit: usize) -> Value {
        self.ask(|id| Header::Search {
            id,
            query: query.to_string(),
            limit,
        })
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Array(Vec::new()))
    }

    fn describe(&self, path: &str) -> Option<String> {
        self.ask(|id| Header::Describe {
            id,
            path: path.to_string(),
        })
    }
}

/// Reads the server's messages until stdin closes: results to their calls, answers to their
/// questions, the run request to `runs`, cancellation to the flag.
fn read_messages(
    waiting: Arc<Waiting>,
    runs: mpsc::Sender<(Header, Vec<u8>)>,
    cancel: Arc<AtomicBool>,
) {
    let mut input = BufReader::new(std::io::stdin());
    loop {
        let Ok(Some((header, payload))) = wire::read(&mut input) else {
            // The server closed the pipe or sent garbage: stop the program, then leave.
            cancel.store(true, Ordering::SeqCst);
            std::process::exit(0);
        };
        match header {
            Header::Run { .. } => {
                let _ = runs.send((header, payload));
            }
            Header::Items { id, .. } => {
                if let Some(ahead) = lock(&waiting.ahead).get_mut(&id) {
                    ahead(lines(text_of(payload)));
                }
            }
            Header::Result {
                id,
                ok,
                items,
                code,
                message,
                ..
            } => {
                lock(&waiting.ahead).remove(&id);
                let text = text_of(payload);
                let result = if ok && items {
                    Ok(HostValue::Items(lines(text)))
                } else if ok {
                    Ok(HostValue::Text(text))
                } else {
                    Err((code.unwrap_or_default(), message.unwrap_or_default()))
                };
                if let Some(tx) = lock(&waiting.calls).remove(&id) {
                    let _ = tx.send(result);
                }
            }
            Header::Answer { id, found, .. } => {
                let answer = found.then(|| String::from_utf8_lossy(&payload).into_owned());
                if let Some(tx) = lock(&waiting.answers).remove(&id) {
                    let _ = tx.send(answer);
                }
            }
            Header::Cancel => cancel.store(true, Ordering::SeqCst),
            _ => {}
        }
    }
}

fn text_of(payload: Vec<u8>) -> String {
    String::from_utf8(payload)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A list's items, one per line (compact JSON has no raw newline).
fn lines(text: String) -> Vec<String> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').map(str::to_string).collect()
    }
}

/// What a test asks a confined worker to try: each must kill it with SIGSYS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// `open()` of a file.
    Open,
    /// `socket()`.
    Socket,
    /// `execve()`.
    Exec,
}

/// Confines a worker, then makes a forbidden system call. Returns only if the call was
/// allowed (a test-only entry point: the caller expects the process to die with SIGSYS).
pub fn try_forbidden(call: Forbidden) -> i32 {
    if let Err(e) = crate::confine::confine(64 << 20, 5_000) {
        eprintln!("{e}");
        return 2;
    }
    // SAFETY: plain system calls with valid constant arguments; the filter should kill the
    // process before any of them runs.
    let rc = unsafe {
        match call {
            Forbidden::Open => libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY),
            Forbidden::Socket => libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0),
            Forbidden::Exec => {
                let argv = [c"/bin/true".as_ptr(), std::ptr::null()];
                let envp = [std::ptr::null()];
                libc::execve(c"/bin/true".as_ptr(), argv.as_ptr(), envp.as_ptr())
            }
        }
    };
    eprintln!("the forbidden call returned {rc}: the filter did not stop it");
    0
}

/// The worker's main: returns the process's exit status.
pub fn main() -> i32 {
    // One malloc arena for every thread: glibc reads /proc/sys/vm/overcommit_memory the first
    // time it shrinks a thread's own arena, an open() the system-call filter would punish.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt with a valid option, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sandbox worker: cannot start: {e}");
            return 2;
        }
    };
    let handle = runtime.handle().clone();
    // Both threads must be running before confinement: a thread still starting would make
    // its start-up system calls (rseq, ...) under the filter, and die of them.
    let started = Arc::new(std::sync::Barrier::new(3));
    // The runtime's thread drives tool-call futures for as long as the process lives.
    let ready = started.clone();
    std::thread::spawn(move || {
        ready.wait();
        runtime.block_on(std::future::pending::<()>())
    });
    let waiting = Arc::new(Waiting::default());
    let cancel = Arc::new(AtomicBool::new(false));
    let (runs_tx, runs) = mpsc::channel();
    {
        let (waiting, cancel, ready) = (waiting.clone(), cancel.clone(), started.clone());
        std::thread::spawn(move || {
            ready.wait();
            read_messages(waiting, runs_tx, cancel)
        });
    }
    started.wait();
    let Ok((
        Header::Run {
            limits, functions, ..
        },
        payload,
    )) = runs.recv()
    else {
        return 0;
    };
    let request: RunRequest = match serde_json::from_slice(&payload) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sandbox worker: bad run request: {e}");
            return 2;
        }
    };
    if let Err(e) = crate::confine::confine(limits.memory, limits.wall_ms) {
        eprintln!("sandbox worker: {e}");
        return 3;
    }
    let outbox = Outbox(Arc::new(Mutex::new(std::io::stdout())));
    let host = Arc::new(PipeHost {
        functions,
        outbox: outbox.clone(),
        waiting,
        next_id: AtomicU64::new(1),
    });
    let state = crate::State::default();
    state.replace(request.state);
    let progress_out = outbox.clone();
    let last = Mutex::new((usize::MAX, Instant::now()));
    let control = Control {
        cancel,
        progress: Some(Arc::new(move |calls: usize, elapsed: Duration| {
            // On every new call, else at most ten reports a second.
            let mut last = lock(&last);
            if last.0 != calls || last.1.elapsed() >= Duration::from_millis(100) {
                *last = (calls, Instant::now());
                progress_out.send(
                    &Header::Progress {
                        calls,
                        ms: elapsed.as_millis() as u64,
                    },
                    b"",
                );
            }
        })),
    };
    let limits: Limits = limits.into();
    let output = crate::run_here(
        &request.program,
        host,
        state.clone(),
        limits,
        control,
        handle,
    );
    let done = RunDone {
        output,
        state: state.snapshot(),
    };
    let payload = serde_json::to_vec(&done).unwrap_or_default();
    outbox.send(&Header::Done { len: payload.len() }, &payload);
    let _ = std::io::stdout().flush();
    0
}
