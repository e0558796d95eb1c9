//! One run: a fresh QuickJS runtime and context on a blocking thread, the event loop that
//! settles tool calls and sleeps, and the limits that stop runaway programs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::module::WriteOptions;
use rquickjs::object::Property;
use rquickjs::{
    Context, Ctx, Function, Module, Object, Persistent, Promise, Runtime, Value as JsValue,
};
use serde_json::Value;

use crate::strip::Stripped;
use crate::{CallRecord, Host, Limits, RunError, RunOutput, State};

/// A settled tool call or timer, sent to the sandbox thread.
enum Completion {
    Call {
        id: u64,
        ms: u64,
        result: Result<crate::HostValue, (String, String)>,
    },
    /// Leading items of a call's list result.
    Items { id: u64, items: Vec<String> },
}

type Resolvers = (Persistent<Function<'static>>, Persistent<Function<'static>>);

#[derive(Default)]
struct Pending {
    next_id: u64,
    resolvers: HashMap<u64, Resolvers>,
    /// Which entry of `calls` a pending call id fills in.
    call_index: HashMap<u64, usize>,
    timers: Vec<(Instant, u64)>,
    calls: Vec<CallRecord>,
    logs: Vec<String>,
    log_chars: usize,
    limit: Option<RunError>,
    memory_limit: usize,
    /// `defineLazy` of [`crate::lazy::LAZY_JS`], once the prelude has run.
    define_lazy: Option<Persistent<Function<'static>>>,
    /// The objects of list results received ahead of their call's result.
    ahead: HashMap<u64, Persistent<rquickjs::Array<'static>>>,
}

fn limit_error(limit: &str, value: impl std::fmt::Display, advice: &str) -> RunError {
    RunError::limit_exceeded(format!(
        "the {limit} limit ({value}) was exceeded: {advice}"
    ))
}

const PRELUDE: &str = include_str!("prelude.js");

/// Everything a run needs, moved onto the sandbox thread.
pub struct Job {
    pub stripped: Stripped,
    pub host: Arc<dyn Host>,
    pub state: State,
    pub limits: Limits,
    pub cancel: Arc<AtomicBool>,
    pub handle: tokio::runtime::Handle,
    pub progress: Option<Arc<dyn Fn(usize, Duration) + Send + Sync>>,
}

/// Runs a stripped program to completion (or to a limit) in a fresh context. Blocks the
/// calling thread.
pub fn execute(job: Job) -> RunOutput {
    match Prepared::new(job.host.functions()) {
        Ok(prepared) => prepared.run(job).0,
        Err(e) => RunOutput::failed(
            RunError::simple(
                "InternalError",
                &format!("the sandbox could not start: {e}"),
            ),
            Vec::new(),
            Vec::new(),
        ),
    }
}

/// What the host functions of a prepared context reach: given when its run starts.
struct Binding {
    host: Arc<dyn Host>,
    state: State,
    limits: Limits,
    handle: tokio::runtime::Handle,
    in_flight: Arc<tokio::sync::Semaphore>,
}

type Bound = Rc<RefCell<Option<Binding>>>;

/// A fresh runtime and context with the host functions installed and the prelude evaluated:
/// the part of a run that does not depend on the program (most of a trivial run's time). A
/// worker process prepares the next run's while it waits for it. Used by one run only.
pub struct Prepared {
    rt: Runtime,
    /// `None` only while it is dropped (before the runtime's last collection).
    ctx: Option<Context>,
    functions: Vec<String>,
    pending: Rc<RefCell<Pending>>,
    bound: Bound,
    /// Where tool calls and timers settle (the host functions hold the senders).
    rx: mpsc::Receiver<Completion>,
}

impl Prepared {
    /// A context whose `tools` offers `functions`, in a runtime of its own.
    pub fn new(functions: Vec<String>) -> rquickjs::Result<Prepared> {
        Prepared::new_in(&Runtime::new()?, functions)
    }

    /// A context in `rt`, a runtime that outlives it: a worker keeps one for the contexts
    /// of all its runs (the names every context interns stay interned).
    pub fn new_in(rt: &Runtime, functions: Vec<String>) -> rquickjs::Result<Prepared> {
        let rt = rt.clone();
        let ctx = Context::full(&rt)?;
        let pending = Rc::new(RefCell::new(Pending::default()));
        let bound: Bound = Rc::new(RefCell::new(None));
        let (tx, rx) = mpsc::channel::<Completion>();
        ctx.with(|ctx| install(&ctx, &functions, &pending, &bound, &tx))?;
        Ok(Prepared {
            rt,
            ctx: Some(ctx),
            functions,
            pending,
            bound,
            rx,
        })
    }

    /// The functions its `tools` offers.
    pub fn functions(&self) -> &[String] {
        &self.functions
    }

    /// Runs a program here. The context is spent afterwards: dropping what comes back with
    /// the output frees it, when the caller has time (a worker answers first).
    pub fn run(self, job: Job) -> (RunOutput, Spent) {
        let started = Instant::now();
        let deadline = started + job.limits.wall;
        let mut out = self.run_inner(&job, started, deadline).unwrap_or_else(|e| {
            RunOutput::failed(
                RunError::simple(
                    "InternalError",
                    &format!("the sandbox could not start: {e}"),
                ),
                Vec::new(),
                Vec::new(),
            )
        });
        out.stats.wall_ms = started.elapsed().as_millis() as u64;
        (out, Spent(self))
    }

    fn run_inner(
        &self,
        job: &Job,
        started: Instant,
        deadline: Instant,
    ) -> rquickjs::Result<RunOutput> {
        let Prepared {
            rt,
            ctx,
            pending,
            bound,
            rx,
            ..
        } = self;
        let Some(ctx) = ctx else {
            return Err(rquickjs::Error::Unknown);
        };
        rt.set_memory_limit(job.limits.memory);
        rt.set_max_stack_size(job.limits.stack);
        let cancel = job.cancel.clone();
        rt.set_interrupt_handler(Some(Box::new(move || {
            Instant::now() >= deadline || cancel.load(Ordering::Relaxed)
        })));
        pending.borrow_mut().memory_limit = job.limits.memory;
        *bound.borrow_mut() = Some(Binding {
            host: job.host.clone(),
            state: job.state.clone(),
            limits: job.limits.clone(),
            handle: job.handle.clone(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(job.limits.in_flight.max(1))),
        });
        drive(rt, ctx, pending, rx, job, started, deadline)
    }
}

/// A context whose run is over; dropping it frees the context and its runtime.
pub struct Spent(#[allow(dead_code)] Prepared);

impl Drop for Prepared {
    fn drop(&mut self) {
        // The host functions hold `pending`, and `pending` holds JavaScript functions: break
        // the cycle before the context and runtime are freed (used or not), or QuickJS finds
        // objects still alive.
        {
            let mut p = self.pending.borrow_mut();
            p.resolvers.clear();
            p.timers.clear();
            p.define_lazy = None;
            p.ahead.clear();
        }
        *self.bound.borrow_mut() = None;
        self.rt.set_interrupt_handler(None);
        drop(self.ctx.take());
        self.rt.run_gc();
    }
}

fn drive(
    rt: &Runtime,
    ctx: &Context,
    pending: &Rc<RefCell<Pending>>,
    rx: &mpsc::Receiver<Completion>,
    job: &Job,
    started: Instant,
    deadline: Instant,
) -> rquickjs::Result<RunOutput> {
    let main: rquickjs::Result<Persistent<Promise<'static>>> = ctx.with(|ctx| {
        let wrapped = format!(
            "__finish((async function __body() {{\n{}\n}})())",
            job.stripped.code
        );
        let mut options = EvalOptions::default();
        options.global = true;
        options.strict = false;
        options.promise = false;
        options.filename = Some("program.js".into());
        let promise: Promise = ctx.eval_with_options(wrapped, options)?;
        Ok(Persistent::save(&ctx, promise))
    });
    let main = match main {
        Ok(p) => p,
        Err(e) => {
            let error = ctx.with(|ctx| describe_exception(&ctx, e, job, pending));
            let p = pending.borrow();
            return Ok(RunOutput::failed(error, p.logs.clone(), p.calls.clone()));
        }
    };

    loop {
        // Run every pending job (promise continuations); a job that throws uncaught is
        // reported through the main promise.
        loop {
            match rt.execute_pending_job() {
                Ok(true) => continue,
                Ok(false) => break,
                Err(_) => continue,
            }
        }
        let settled = ctx.with(|ctx| main.clone().restore(&ctx).map(|p| p.state()))?;
        let now = Instant::now();
        let limit = pending.borrow_mut().limit.take();
        if let Some(e) = limit {
            return Ok(finish_failed(pending, e));
        }
        if job.cancel.load(Ordering::Relaxed) {
            let e = RunError::simple("Cancelled", "the client cancelled the run");
            return Ok(finish_failed(pending, e));
        }
        match settled {
            rquickjs::promise::PromiseState::Pending => {}
            _ => break,
        }
        if now >= deadline {
            return Ok(finish_failed(pending, wall_error(job)));
        }
        let (outstanding, next_timer) = {
            let p = pending.borrow();
            (p.resolvers.len(), p.timers.iter().map(|(t, _)| *t).min())
        };
        if outstanding == 0 {
            let e = RunError::simple(
                "Error",
                "the program is waiting for a promise that can never settle (no tool call or sleep is in progress)",
            );
            return Ok(finish_failed(pending, e));
        }
        let wake = next_timer.map_or(deadline, |t| t.min(deadline));
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(c) => settle(ctx, pending, c),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
        }
        // Settle whatever else has arrived, then the timers that are due.
        while let Ok(c) = rx.try_recv() {
            settle(ctx, pending, c);
        }
        fire_timers(ctx, pending);
        if let Some(report) = &job.progress {
            report(pending.borrow().calls.len(), started.elapsed());
        }
    }

    let outcome = ctx.with(|ctx| -> rquickjs::Result<Result<String, RunError>> {
        let promise = main.clone().restore(&ctx)?;
        match promise.result::<String>() {
            Some(Ok(json)) => Ok(Ok(json)),
            Some(Err(e)) => Ok(Err(describe_exception(&ctx, e, job, pending))),
            None => Ok(Err(RunError::simple("Error", "the program did not finish"))),
        }
    })?;
    let p = pending.borrow();
    Ok(match outcome {
        Ok(json) => RunOutput::succeeded(json, p.logs.clone(), p.calls.clone()),
        Err(e) => RunOutput::failed(e, p.logs.clone(), p.calls.clone()),
    })
}

fn memory_error(job: &Job) -> RunError {
    limit_error(
        "memory",
        format!("{} MiB", job.limits.memory / (1024 * 1024)),
        "the program held too much data; keep only the fields you need, or process objects in smaller batches",
    )
}

fn wall_error(job: &Job) -> RunError {
    limit_error(
        "wall-clock",
        format!("{} ms", job.limits.wall.as_millis()),
        "the program ran too long; fetch less, filter on the server (labelSelector, fieldSelector, tailLines), or avoid long loops and sleeps",
    )
}

fn finish_failed(pending: &Rc<RefCell<Pending>>, e: RunError) -> RunOutput {
    let p = pending.borrow();
    RunOutput::failed(e, p.logs.clone(), p.calls.clone())
}

/// What the run's binding says, if a run is bound (host functions only run during one).
fn with_binding<T>(bound: &Bound, f: impl FnOnce(&Binding) -> T) -> Option<T> {
    bound.borrow().as_ref().map(f)
}

/// Installs the host functions and runs the prelude. The functions reach the run's host,
/// state and limits through `bound`, which the run fills in when it starts.
fn install<'js>(
    ctx: &Ctx<'js>,
    functions: &[String],
    pending: &Rc<RefCell<Pending>>,
    bound: &Bound,
    tx: &mpsc::Sender<Completion>,
) -> rquickjs::Result<()> {
    let g = ctx.globals();
    g.set("__paths", functions.to_vec())?;

    let (p, b, tx) = (pending.clone(), bound.clone(), tx.clone());
    g.set(
        "__call",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, path: String, args: String| -> rquickjs::Result<Promise<'js>> {
            let (promise, resolve, reject) = Promise::new(&ctx)?;
            let Some((host, sem, handle, max_calls)) = with_binding(&b, |b| {
                (b.host.clone(), b.in_flight.clone(), b.handle.clone(), b.limits.calls)
            }) else {
                let e: JsValue = ctx.eval("new Error('no run is in progress')")?;
                reject.call::<_, ()>((e,))?;
                return Ok(promise);
            };
            let mut p = p.borrow_mut();
            if p.calls.len() >= max_calls {
                p.limit = Some(limit_error(
                    "tool calls",
                    max_calls,
                    "make fewer calls: list with selectors instead of getting objects one by one",
                ));
                drop(p);
                let e: JsValue = ctx.eval("new Error('the tool call limit was exceeded')")?;
                reject.call::<_, ()>((e,))?;
                return Ok(promise);
            }
            p.next_id += 1;
            let id = p.next_id;
            let index = p.calls.len();
            p.calls.push(CallRecord { path: path.clone(), ms: 0, ok: false });
            p.call_index.insert(id, index);
            p.resolvers.insert(id, (Persistent::save(&ctx, resolve), Persistent::save(&ctx, reject)));
            drop(p);
            let args: Value = serde_json::from_str(&args).unwrap_or(Value::Null);
            let (host, tx, sem) = (host.clone(), tx.clone(), sem.clone());
            handle.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let started = Instant::now();
                let items_tx = tx.clone();
                let ahead: crate::ItemBatches = Box::new(move |items| {
                    let _ = items_tx.send(Completion::Items { id, items });
                });
                let result = host.call(&path, args, ahead).await;
                let _ = tx.send(Completion::Call { id, ms: started.elapsed().as_millis() as u64, result });
            });
            Ok(promise)
        })?,
    )?;

    let b = bound.clone();
    g.set(
        "__search",
        Function::new(ctx.clone(), move |query: String, opts: String| -> String {
            let limit = serde_json::from_str::<Value>(&opts)
                .ok()
                .and_then(|o| o.get("limit").and_then(Value::as_u64))
                .unwrap_or(10) as usize;
            with_binding(&b, |b| b.host.search(&query, limit).to_string())
                .unwrap_or_else(|| "[]".into())
        })?,
    )?;
    let b = bound.clone();
    g.set(
        "__describe",
        Function::new(ctx.clone(), move |path: String| -> Option<String> {
            with_binding(&b, |b| b.host.describe(&path)).flatten()
        })?,
    )?;

    let (p, b) = (pending.clone(), bound.clone());
    // A bound on what is kept in memory, not the output's shaping: the server fits the logs
    // into the output limit with everything else.
    g.set(
        "__log",
        Function::new(ctx.clone(), move |level: String, text: String| {
            let max_log = with_binding(&b, |b| b.limits.output).unwrap_or(0);
            let mut p = p.borrow_mut();
            if p.log_chars >= max_log {
                return;
            }
            let line = if level == "log" {
                text
            } else {
                format!("[{level}] {text}")
            };
            let room = max_log - p.log_chars;
            let line: String = line.chars().take(room).collect();
            p.log_chars += line.chars().count().max(1);
            p.logs.push(line);
            if p.log_chars >= max_log {
                p.logs.push(format!(
                    "[console output beyond {max_log} characters was not kept]"
                ));
            }
        })?,
    )?;

    let (p, b) = (pending.clone(), bound.clone());
    g.set(
        "__sleep",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, ms: f64| -> rquickjs::Result<Promise<'js>> {
                let (promise, resolve, reject) = Promise::new(&ctx)?;
                let deadline_cap = with_binding(&b, |b| b.limits.wall).unwrap_or_default();
                let mut p = p.borrow_mut();
                p.next_id += 1;
                let id = p.next_id;
                let wait = Duration::from_millis(
                    ms.clamp(0.0, deadline_cap.as_millis() as f64 + 1000.0) as u64,
                );
                p.timers.push((Instant::now() + wait, id));
                p.resolvers.insert(
                    id,
                    (
                        Persistent::save(&ctx, resolve),
                        Persistent::save(&ctx, reject),
                    ),
                );
                Ok(promise)
            },
        )?,
    )?;

    let b = bound.clone();
    g.set(
        "__state_get",
        Function::new(ctx.clone(), move |key: String| {
            with_binding(&b, |b| b.state.get(&key)).flatten()
        })?,
    )?;
    let b = bound.clone();
    g.set(
        "__state_set",
        Function::new(
            ctx.clone(),
            move |key: String, json: String| -> Option<String> {
                with_binding(&b, |b| b.state.set(&key, json).err()).flatten()
            },
        )?,
    )?;
    let b = bound.clone();
    g.set(
        "__state_keys",
        Function::new(ctx.clone(), move || -> String {
            with_binding(&b, |b| serde_json::to_string(&b.state.keys()).ok())
                .flatten()
                .unwrap_or_else(|| "[]".into())
        })?,
    )?;
    let b = bound.clone();
    g.set(
        "__state_delete",
        Function::new(ctx.clone(), move |key: String| {
            with_binding(&b, |b| b.state.delete(&key)).unwrap_or_default()
        })?,
    )?;
    let p = pending.clone();
    g.set(
        "__materialize",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, text: String| -> rquickjs::Result<JsValue<'js>> {
                let define = p.borrow().define_lazy.clone();
                match define {
                    Some(define) => crate::lazy::materialize(&ctx, &define.restore(&ctx)?, &text),
                    None => ctx.json_parse(text),
                }
            },
        )?,
    )?;
    evaluate_prelude(ctx, 0)?;
    let define: Function = g.get("__define_lazy")?;
    g.remove("__define_lazy")?;
    pending.borrow_mut().define_lazy = Some(Persistent::save(ctx, define));
    evaluate_prelude(ctx, 1)?;
    Ok(())
}

/// The sandbox's own scripts, in the order they run: the lazy-object helpers, then the
/// prelude (which hides the host functions the first one still needs).
const PRELUDE_SCRIPTS: [(&str, &str); 2] =
    [("lazy.js", crate::lazy::LAZY_JS), ("prelude.js", PRELUDE)];

/// The scripts compiled once per process: compiling them is most of what a fresh context
/// costs, and a worker makes one for every run.
fn prelude_bytecode() -> Option<&'static [Vec<u8>]> {
    static COMPILED: OnceLock<Option<Vec<Vec<u8>>>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let rt = Runtime::new().ok()?;
            let ctx = Context::full(&rt).ok()?;
            ctx.with(|ctx| {
                PRELUDE_SCRIPTS
                    .iter()
                    .map(|(name, source)| {
                        Module::declare(ctx.clone(), *name, *source)
                            .and_then(|m| m.write(WriteOptions::default()))
                            .ok()
                    })
                    .collect()
            })
        })
        .as_deref()
}

/// Runs sandbox script `index` in a context: from the process's compiled copy, or from
/// source if compiling failed.
fn evaluate_prelude(ctx: &Ctx<'_>, index: usize) -> rquickjs::Result<()> {
    let (name, source) = PRELUDE_SCRIPTS[index];
    if let Some(bytes) = prelude_bytecode().and_then(|all| all.get(index)) {
        // SAFETY: the bytes are this process's own compilation of a constant script, by the
        // same QuickJS.
        let module = unsafe { Module::load(ctx.clone(), bytes)? };
        let (_, done) = module.eval()?;
        return done.finish::<()>();
    }
    let mut options = EvalOptions::default();
    options.filename = Some(name.into());
    let _: JsValue = ctx.eval_with_options(source, options)?;
    Ok(())
}

fn settle(context: &Context, pending: &Rc<RefCell<Pending>>, c: Completion) {
    match c {
        Completion::Items { id, items } => receive_ahead(context, pending, id, items),
        Completion::Call { id, ms, result } => settle_call(context, pending, id, ms, result),
    }
}

/// Turns list items into objects at the end of `array` (large members left to be parsed on
/// first read).
fn append_items<'js>(
    ctx: &Ctx<'js>,
    pending: &Rc<RefCell<Pending>>,
    array: &rquickjs::Array<'js>,
    items: Vec<String>,
) -> rquickjs::Result<()> {
    let define = pending.borrow().define_lazy.clone();
    let define = define.map(|d| d.restore(ctx)).transpose()?;
    for (index, text) in (array.len()..).zip(items) {
        let item = match &define {
            Some(define) => crate::lazy::materialize(ctx, define, &text)?,
            None => ctx.json_parse(text)?,
        };
        array.set(index, item)?;
    }
    Ok(())
}

/// Items of a list that arrive ahead of the call's result become objects now, while the
/// host fetches the next page.
fn receive_ahead(context: &Context, pending: &Rc<RefCell<Pending>>, id: u64, items: Vec<String>) {
    if !pending.borrow().resolvers.contains_key(&id) {
        return;
    }
    context.with(|ctx| {
        let outcome = (|| -> rquickjs::Result<()> {
            let earlier = pending.borrow_mut().ahead.remove(&id);
            let array = match earlier {
                Some(a) => a.restore(&ctx)?,
                None => rquickjs::Array::new(ctx.clone())?,
            };
            append_items(&ctx, pending, &array, items)?;
            pending
                .borrow_mut()
                .ahead
                .insert(id, Persistent::save(&ctx, array));
            Ok(())
        })();
        if let Err(e) = outcome {
            handover_failed(&ctx, pending, e);
        }
    });
}

fn settle_call(
    context: &Context,
    pending: &Rc<RefCell<Pending>>,
    id: u64,
    ms: u64,
    result: Result<crate::HostValue, (String, String)>,
) {
    let removed = pending.borrow_mut().resolvers.remove(&id);
    let earlier = pending.borrow_mut().ahead.remove(&id);
    let Some((resolve, reject)) = removed else {
        return;
    };
    {
        let mut p = pending.borrow_mut();
        let index = p.call_index.remove(&id);
        if let Some(record) = index.and_then(|i| p.calls.get_mut(i)) {
            record.ms = ms;
            record.ok = result.is_ok();
        }
    }
    context.with(|ctx| {
        let outcome = (|| -> rquickjs::Result<()> {
            match result {
                Ok(crate::HostValue::Json(value)) => {
                    let v = to_js(&ctx, value)?;
                    resolve.restore(&ctx)?.call::<_, ()>((v,))
                }
                Ok(crate::HostValue::Text(text)) => {
                    let v = ctx.json_parse(text)?;
                    resolve.restore(&ctx)?.call::<_, ()>((v,))
                }
                Ok(crate::HostValue::Items(items)) => {
                    let array = match earlier {
                        Some(a) => a.restore(&ctx)?,
                        None => rquickjs::Array::new(ctx.clone())?,
                    };
                    append_items(&ctx, pending, &array, items)?;
                    resolve.restore(&ctx)?.call::<_, ()>((array,))
                }
                Err((code, message)) => {
                    let make: Function = ctx.eval(
                        "(function (code, message) { const e = new Error(message); e.name = code === 'BadInput' ? 'TypeError' : 'ToolError'; e.code = code; return e; })",
                    )?;
                    let e: JsValue = make.call((code, message))?;
                    reject.restore(&ctx)?.call::<_, ()>((e,))
                }
            }
        })();
        if let Err(e) = outcome {
            handover_failed(&ctx, pending, e);
        }
    });
}

/// A result could not be handed to the program (its promise can no longer settle): stop the
/// run and say why.
fn handover_failed(ctx: &Ctx<'_>, pending: &Rc<RefCell<Pending>>, e: rquickjs::Error) {
    let thrown = ctx.catch();
    let message = thrown
        .as_object()
        .and_then(|o| o.get::<_, Option<String>>("message").ok().flatten())
        .unwrap_or_else(|| e.to_string());
    let mut p = pending.borrow_mut();
    let memory = p.memory_limit;
    p.limit = Some(if message.contains("out of memory") {
        limit_error(
            "memory",
            format!("{} MiB", memory / (1024 * 1024)),
            "a call returned more data than the sandbox can hold; narrow it (namespace, labelSelector, fieldSelector, limit)",
        )
    } else {
        RunError::simple(
            "InternalError",
            &format!("the result could not be handed to the program: {message}"),
        )
    });
}

/// Converts JSON into JavaScript values directly (no intermediate JSON text in the heap),
/// consuming it so that each part is freed as soon as it has been converted: a large list is
/// never held twice.
fn to_js<'js>(ctx: &Ctx<'js>, value: Value) -> rquickjs::Result<JsValue<'js>> {
    Ok(match value {
        Value::Null => JsValue::new_null(ctx.clone()),
        Value::Bool(b) => JsValue::new_bool(ctx.clone(), b),
        Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => JsValue::new_int(ctx.clone(), i),
            None => JsValue::new_float(ctx.clone(), n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => rquickjs::String::from_str(ctx.clone(), &s)?.into_value(),
        Value::Array(items) => {
            let array = rquickjs::Array::new(ctx.clone())?;
            for (i, item) in items.into_iter().enumerate() {
                array.set(i, to_js(ctx, item)?)?;
            }
            array.into_value()
        }
        Value::Object(map) => {
            let object = Object::new(ctx.clone())?;
            for (k, v) in map {
                let v = to_js(ctx, v)?;
                if k == "__proto__" {
                    // An own property, as JSON.parse makes it: `set` would replace the prototype.
                    object.prop(
                        k.as_str(),
                        Property::from(v).writable().enumerable().configurable(),
                    )?;
                } else {
                    object.set(k.as_str(), v)?;
                }
            }
            object.into_value()
        }
    })
}

fn fire_timers(context: &Context, pending: &Rc<RefCell<Pending>>) {
    let now = Instant::now();
    let due: Vec<Resolvers> = {
        let mut p = pending.borrow_mut();
        let (due, later): (Vec<_>, Vec<_>) = p.timers.drain(..).partition(|(t, _)| *t <= now);
        p.timers = later;
        due.into_iter()
            .filter_map(|(_, id)| p.resolvers.remove(&id))
            .collect()
    };
    for (resolve, _) in due {
        context.with(|ctx| {
            if let Ok(f) = resolve.restore(&ctx) {
                let _ = f.call::<_, ()>((rquickjs::Undefined,));
            }
        });
    }
}

/// Turns a thrown value into a RunError with the position in the model's own source.
/// The most of a thrown error's field that leaves the sandbox (the server fits the whole
/// output into the client's limit; this bounds what crosses to it).
const MAX_ERROR_FIELD: usize = 64 * 1024;

fn bounded(text: String) -> String {
    if text.len() <= MAX_ERROR_FIELD {
        return text;
    }
    match shaping::fit_value(Value::String(text), MAX_ERROR_FIELD, "error").value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn describe_exception(
    ctx: &Ctx<'_>,
    e: rquickjs::Error,
    job: &Job,
    pending: &Rc<RefCell<Pending>>,
) -> RunError {
    let limit = pending.borrow_mut().limit.take();
    if let Some(limit) = limit {
        return limit;
    }
    let thrown = if matches!(e, rquickjs::Error::Exception) {
        ctx.catch()
    } else {
        JsValue::new_undefined(ctx.clone())
    };
    let text = |v: &Object, key: &str| v.get::<_, Option<String>>(key).ok().flatten();
    let (mut name, mut message, stack, code) = match thrown.as_object() {
        Some(o) => (
            bounded(text(o, "name").unwrap_or_else(|| "Error".into())),
            bounded(text(o, "message").unwrap_or_default()),
            text(o, "stack").unwrap_or_default(),
            text(o, "code").map(bounded),
        ),
        None if matches!(e, rquickjs::Error::Exception) => {
            let s = ctx
                .json_stringify(thrown.clone())
                .ok()
                .flatten()
                .and_then(|s| s.to_string().ok())
                .unwrap_or_default();
            let shown = if s.is_empty() {
                "(nothing)".to_string()
            } else {
                s
            };
            let mut message = format!("the program threw a non-Error value: {shown}");
            if thrown.is_null() || thrown.is_undefined() || shown == "(nothing)" {
                message.push_str(&format!(
                    " (QuickJS throws no error value when it runs out of memory while raising an error: if the program did not throw this itself, it exceeded the memory limit of {} MiB)",
                    job.limits.memory / (1024 * 1024)
                ));
            }
            ("Error".into(), message, String::new(), None)
        }
        None => ("InternalError".into(), e.to_string(), String::new(), None),
    };
    if message.contains("interrupted") || job.cancel.load(Ordering::Relaxed) {
        if job.cancel.load(Ordering::Relaxed) {
            return RunError::simple("Cancelled", "the client cancelled the run");
        }
        return wall_error(job);
    }
    if message == "out of memory" {
        return memory_error(job);
    }
    if name == "RangeError" && message.contains("stack") {
        return limit_error(
            "stack",
            format!("{} KiB", job.limits.stack / 1024),
            "the recursion went too deep; use a loop",
        );
    }
    if name == "ReferenceError" {
        message.push_str(
            "; the sandbox's globals are tools, console, sleep, state and the standard ECMAScript built-ins (no require, import, process, fetch or setTimeout)",
        );
    }
    // `at __body (program.js:LINE:COL)`: LINE counts the wrapper's first line.
    let position = stack.lines().find_map(|l| {
        let inside = l.split("program.js:").nth(1)?;
        let mut parts = inside.trim_end_matches(')').split(':');
        let line: u32 = parts.next()?.parse().ok()?;
        Some(line)
    });
    let (line, column) = match position.and_then(|l| job.stripped.original(l.saturating_sub(1))) {
        Some((l, c)) => (Some(l), Some(c)),
        None => (None, None),
    };
    if name.is_empty() {
        name = "Error".into();
    }
    RunError {
        name,
        message,
        source: line
            .and_then(|l| job.stripped.source_line(l))
            .map(|s| s.trim().to_string()),
        line,
        column,
        code,
    }
}
