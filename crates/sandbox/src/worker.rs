//! The worker side of a sandbox process (`kubecode sandbox-worker`): it prepares a fresh
//! QuickJS context (prelude evaluated), confines itself ([`crate::confine`]) before any
//! program arrives, receives a program over stdin, runs it, sends its tool calls to the
//! server over stdout and, at the end, the run's output and `state`.
//!
//! A worker serves one session: the server gives it the same session's next program, never
//! another session's, and every run gets a context of its own (prepared while the worker
//! waited), so nothing a program leaves behind reaches the next. A worker retires (exits
//! after its run) when it has used half its CPU-time limit, grown large, or run
//! [`MAX_RUNS`] programs.
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
use crate::{CallFuture, Control, Host, HostValue, RunOutput};

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
    /// The worker waits for its session's next program (else it exits after this message).
    #[serde(default)]
    pub reusable: bool,
}

/// Programs one worker runs at most.
pub const MAX_RUNS: u32 = 100;

/// A worker whose allocator holds more than this after a run retires: its heap would stay
/// that large.
const MAX_KEPT_HEAP: usize = 48 << 20;

/// How a worker is started: the functions its contexts offer and the server's largest
/// limits (its resource limits are set from them once, before the first program).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The `tools` paths to prepare contexts for.
    pub functions: Vec<String>,
    /// The heap limit of a run, in bytes (the address-space limit follows from it).
    pub memory: usize,
    /// The wall-clock limit of a run, in ms (the CPU-time limit follows from it).
    pub wall_ms: u64,
}

impl Options {
    /// The arguments that say these options (`--functions a,b --memory N --wall-ms N`).
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--functions".into(),
            self.functions.join(","),
            "--memory".into(),
            self.memory.to_string(),
            "--wall-ms".into(),
            self.wall_ms.to_string(),
        ]
    }

    /// Reads [`Options::to_args`]; `None` for anything else.
    pub fn parse(args: &[String]) -> Option<Options> {
        let mut o = Options::default();
        for pair in args.chunks(2) {
            match pair {
                [k, v] if k == "--functions" => {
                    o.functions = v
                        .split(',')
                        .filter(|f| !f.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                [k, v] if k == "--memory" => o.memory = v.parse().ok()?,
                [k, v] if k == "--wall-ms" => o.wall_ms = v.parse().ok()?,
                _ => return None,
            }
        }
        Some(o)
    }

    /// CPU seconds the worker may use in all: two full runs' worth (a run is stopped by
    /// the server at its wall-clock limit plus a second; this is the backstop).
    fn cpu_seconds(&self) -> u64 {
        2 * (self.wall_ms.div_ceil(1000) + 2)
    }
}

/// CPU time used so far (user and system), in seconds.
fn cpu_seconds_used() -> f64 {
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return f64::MAX;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

/// Bytes the allocator holds, in use or kept free (glibc's count; 0 where the C library
/// does not say). Not the peak RSS from getrusage: after the server's vfork and exec that
/// counts the server's own size.
fn heap_held() -> usize {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        info.arena + info.hblkhd
    }
    #[cfg(not(target_env = "gnu"))]
    {
        0
    }
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
    next_id: Arc<AtomicU64>,
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
                    ahead(wire::split_items(&text_of(payload)));
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
                    Ok(HostValue::Items(wire::split_items(&text)))
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
    if let Err(e) = crate::confine::confine(64 << 20, 14) {
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
pub fn main(options: Options) -> i32 {
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
    let outbox = Outbox(Arc::new(Mutex::new(std::io::stdout())));
    // Call ids stay unique across runs: a late answer to an earlier run's call finds nobody.
    let next_id = Arc::new(AtomicU64::new(1));
    // One runtime for the worker's life; each run gets a fresh context in it.
    let Ok(runtime) = rquickjs::Runtime::new() else {
        eprintln!("sandbox worker: cannot make a JavaScript runtime");
        return 2;
    };
    let mut prepared = crate::run::Prepared::new_in(&runtime, options.functions.clone()).ok();
    // Confined now when the server said its limits (it always does), so that the first run
    // does not wait for it; else before the first run, from that run's limits.
    let mut confined: Option<Options> = None;
    if options.memory > 0 && options.wall_ms > 0 {
        if let Err(e) = crate::confine::confine(options.memory, options.cpu_seconds()) {
            eprintln!("sandbox worker: {e}");
            return 3;
        }
        confined = Some(options.clone());
    }
    let mut runs_done = 0u32;
    loop {
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
        let bounds = match &confined {
            Some(bounds) => bounds.clone(),
            None => {
                let bounds = Options {
                    functions: Vec::new(),
                    memory: limits.memory,
                    wall_ms: limits.wall_ms,
                };
                if let Err(e) = crate::confine::confine(bounds.memory, bounds.cpu_seconds()) {
                    eprintln!("sandbox worker: {e}");
                    return 3;
                }
                confined.insert(bounds).clone()
            }
        };
        let cpu_budget = bounds.cpu_seconds() as f64;
        let fits = limits.memory <= bounds.memory && limits.wall_ms <= bounds.wall_ms;
        cancel.store(false, Ordering::SeqCst);
        let context = match prepared.take() {
            Some(p) if p.functions() == functions.as_slice() => Ok(p),
            _ => crate::run::Prepared::new_in(&runtime, functions.clone()),
        };
        let host = Arc::new(PipeHost {
            functions: functions.clone(),
            outbox: outbox.clone(),
            waiting: waiting.clone(),
            next_id: next_id.clone(),
        });
        let state = crate::State::default();
        state.replace(request.state);
        let progress_out = outbox.clone();
        let last = Mutex::new((usize::MAX, Instant::now()));
        let control = Control {
            cancel: cancel.clone(),
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
        let (output, spent) = match context {
            Ok(context) => crate::run_prepared(
                context,
                &request.program,
                host,
                state.clone(),
                limits.into(),
                control,
                handle.clone(),
            ),
            Err(e) => (
                RunOutput::failed(
                    crate::RunError::simple(
                        "InternalError",
                        &format!("the sandbox could not start: {e}"),
                    ),
                    Vec::new(),
                    Vec::new(),
                ),
                None,
            ),
        };
        runs_done += 1;
        let cpu = cpu_seconds_used();
        // Another run must fit in what is left of the CPU-time limit.
        let reusable =
            fits && runs_done < MAX_RUNS && cpu < cpu_budget / 2.0 && heap_held() < MAX_KEPT_HEAP;
        let done = RunDone {
            output,
            state: state.snapshot(),
            reusable,
        };
        let payload = serde_json::to_vec(&done).unwrap_or_default();
        outbox.send(&Header::Done { len: payload.len() }, &payload);
        let _ = std::io::stdout().flush();
        if !reusable {
            return 0;
        }
        // Freed after the answer is on its way.
        drop(spent);
        // The next run's context, made while the server answers the client.
        prepared = crate::run::Prepared::new_in(&runtime, functions).ok();
    }
}
