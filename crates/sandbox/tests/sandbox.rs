//! The sandbox on its own: language, globals, the bridge, errors and every limit. The host
//! here is a small in-test implementation of the sandbox's one boundary (`Host`); the
//! Kubernetes end-to-end runs are in the kubecode crate's tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::{CallFuture, Control, Host, Limits, RunOutput, State};
use serde_json::{Value, json};

struct TestHost;

impl Host for TestHost {
    fn functions(&self) -> Vec<String> {
        vec![
            "test.echo".into(),
            "test.slow".into(),
            "test.fail".into(),
            "test.items".into(),
        ]
    }
    fn call(&self, path: &str, args: Value, _ahead: sandbox::ItemBatches) -> CallFuture {
        let path = path.to_string();
        Box::pin(async move {
            match path.as_str() {
                "test.echo" => Ok(args.into()),
                "test.items" => Ok(sandbox::HostValue::Items(vec![
                    "{\"a\":1}".into(),
                    "[2]".into(),
                ])),
                "test.slow" => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok(sandbox::HostValue::Text("\"done\"".into()))
                }
                _ => Err(("NotFound".to_string(), "pods \"x\" not found".to_string())),
            }
        })
    }
    fn search(&self, query: &str, _limit: usize) -> Value {
        json!([{"path": "test.echo", "summary": format!("matches {query}"), "signature": "test.echo({})"}])
    }
    fn describe(&self, path: &str) -> Option<String> {
        (path == "test.echo").then(|| "function echo(a: object): Promise<object>".to_string())
    }
}

fn quick() -> Limits {
    Limits {
        wall: Duration::from_secs(2),
        ..Limits::default()
    }
}

async fn run_with(program: &str, limits: Limits, state: State) -> RunOutput {
    sandbox::run(
        program,
        Arc::new(TestHost),
        state,
        limits,
        Control::default(),
    )
    .await
}

async fn run(program: &str) -> RunOutput {
    run_with(program, quick(), State::default()).await
}

fn ok(o: &RunOutput) -> &Value {
    assert!(o.ok, "the run failed: {:?}", o.error);
    &o.result
}

fn err(o: &RunOutput) -> &sandbox::RunError {
    assert!(!o.ok, "the run succeeded: {}", o.result);
    o.error.as_ref().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_top_level_await_and_return() {
    assert_eq!(ok(&run("return 1 + 1").await), &json!(2));
    let program = "```ts\ninterface Pod { name: string; restarts: number }\nenum Level { Low = 1, High = 10 }\nfunction top<T extends Pod>(xs: T[], n: number): T[] { return [...xs].sort((a, b) => b.restarts - a.restarts).slice(0, n) }\nconst pods = [{ name: 'a', restarts: 3 }, { name: 'b', restarts: 9 }] satisfies Pod[];\nconst echoed = await tools.test.echo({ pods });\nreturn { top: top(echoed.pods, 1).map(p => p.name), level: Level.High, later: Promise.resolve('deep') };\n```";
    assert_eq!(
        ok(&run(program).await),
        &json!({"top": ["b"], "level": 10, "later": "deep"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sleep_state_and_calls() {
    let state = State::default();
    let o = run_with(
        "console.log('hi', {a: 1}); console.warn('careful'); const t = Date.now(); await sleep(50); state.set('seen', [1, 2]); return Date.now() - t >= 45",
        quick(),
        state.clone(),
    )
    .await;
    assert_eq!(ok(&o), &json!(true));
    assert_eq!(o.logs, ["hi {\"a\":1}", "[warn] careful"]);
    let o = run_with(
        "return { seen: state.get('seen'), keys: state.keys() }",
        quick(),
        state,
    )
    .await;
    assert_eq!(ok(&o), &json!({"seen": [1, 2], "keys": ["seen"]}));
    let fresh = run("return state.get('seen') ?? 'empty'").await;
    assert_eq!(ok(&fresh), &json!("empty"), "state belongs to its session");

    let started = Instant::now();
    let o = run("return await Promise.all([1,2,3,4,5].map(() => tools.test.slow()))").await;
    assert_eq!(ok(&o).as_array().unwrap().len(), 5);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "calls run concurrently: {:?}",
        started.elapsed()
    );
    assert_eq!(o.calls.len(), 5);
    assert!(
        o.calls
            .iter()
            .all(|c| c.ok && c.path == "test.slow" && c.ms >= 150)
    );
    let o = run("const hits = await tools.search('echo'); const d = await tools.describe('test.echo'); return [hits[0].path, d.includes('echo'), await tools.list('test')]").await;
    assert_eq!(
        ok(&o),
        &json!([
            "test.echo",
            true,
            ["test/", "test/echo", "test/slow", "test/fail", "test/items"]
        ])
    );
    let o = run("return await tools.test.items()").await;
    assert_eq!(
        ok(&o),
        &json!([{"a": 1}, [2]]),
        "results given as JSON texts arrive as values"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_point_at_the_models_own_lines() {
    let o = run("const a: number = 1;\n\nthrow new Error('boom ' + a);").await;
    let e = err(&o);
    assert_eq!(
        (e.name.as_str(), e.message.as_str(), e.line),
        ("Error", "boom 1", Some(3))
    );
    assert_eq!(e.source.as_deref(), Some("throw new Error('boom ' + a);"));
    let e = run("const x = 1;\nreturn require('fs');")
        .await
        .error
        .unwrap();
    assert_eq!(e.name, "ReferenceError");
    assert!(
        e.message
            .contains("globals are tools, console, sleep, state"),
        "{}",
        e.message
    );
    assert_eq!(e.line, Some(2));
    let e = run("const pods = tools.test.echo({});\nreturn pods.filter(p => p);")
        .await
        .error
        .unwrap();
    assert!(e.message.contains("add await"), "{}", e.message);
    let e = run("return await tools.test.ecko({})").await.error.unwrap();
    assert!(
        e.message.contains("tools.test.echo"),
        "nearest names: {}",
        e.message
    );
    let e = run("return await tools.tset.echo({})").await.error.unwrap();
    assert!(e.message.contains("tools.test"), "{}", e.message);
    let o =
        run("try { await tools.test.fail({}) } catch (e) { return [e.name, e.code, e.message] }")
            .await;
    assert_eq!(
        ok(&o),
        &json!(["ToolError", "NotFound", "pods \"x\" not found"])
    );
    let e = run("return await tools.test.fail({})").await.error.unwrap();
    assert_eq!(e.code.as_deref(), Some("NotFound"));
    let e = run("const = 1").await.error.unwrap();
    assert_eq!((e.name.as_str(), e.line), ("SyntaxError", Some(1)));
    let e = run("return new Promise(() => {})").await.error.unwrap();
    assert!(e.message.contains("never settle"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_contract_globals_exist() {
    let o = run("return [typeof require, typeof process, typeof fetch, typeof setTimeout, typeof __call, typeof Function('return this')().__call, typeof tools, typeof sleep]").await;
    assert_eq!(
        ok(&o),
        &json!([
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "object",
            "function"
        ])
    );
    let e = run("return await import('fs')").await;
    assert!(!e.ok);
    let o = run("try { tools.test = 1 } catch (e) { return e.message }").await;
    assert!(ok(&o).as_str().unwrap().contains("read-only"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_stops_the_run_with_its_name() {
    let wall = |o: &RunOutput| {
        let e = err(o);
        assert_eq!(e.code.as_deref(), Some("LimitExceeded"), "{e:?}");
        e.message.clone()
    };
    for program in [
        "while (true) {}",
        "await tools.test.echo({}); while (true) {}",
        "await sleep(60000)",
        "for (;;) { await null }",
    ] {
        let started = Instant::now();
        let o = run(program).await;
        assert!(
            wall(&o).contains("wall-clock limit (2000 ms)"),
            "{program}: {:?}",
            o.error
        );
        assert!(
            started.elapsed() < Duration::from_millis(3500),
            "{program}: {:?}",
            started.elapsed()
        );
    }
    let small = Limits {
        memory: 16 * 1024 * 1024,
        ..quick()
    };
    let o = run_with(
        "const a = []; while (true) a.push('x'.repeat(1000) + a.length);",
        small,
        State::default(),
    )
    .await;
    // QuickJS throws `null` when it runs out of memory while raising the out-of-memory error
    // (whether it can raise it depends on the heap's exact state): the error then explains
    // that and names the limit.
    let e = err(&o);
    assert!(
        e.message.contains("memory limit (16 MiB)")
            || e.message.contains("it exceeded the memory limit of 16 MiB"),
        "{e:?}"
    );
    let o = run("function f(n) { return f(n + 1) + 1 } return f(0)").await;
    assert!(wall(&o).contains("stack limit"), "{:?}", o.error);
    let o = run("for (let i = 0; i < 10000; i++) { await tools.test.echo({i}) }").await;
    assert!(wall(&o).contains("tool calls limit (500)"), "{:?}", o.error);
    // The server fits results to the output limit; the sandbox only bounds what it hands over.
    let o = run("return 'x'.repeat(20 * 1024 * 1024)").await;
    assert!(o.ok && o.truncated, "{:?}", o.error);
    let kept = o.result.as_str().unwrap();
    assert!(kept.len() <= sandbox::MAX_RESULT_BYTES && kept.ends_with("xxx"));
    // 50 MB of output does not fit the 128 MiB heap once serialized: the memory limit stops it.
    let o = run("return 'x'.repeat(50 * 1024 * 1024)").await;
    assert!(wall(&o).contains("memory limit"), "{:?}", o.error);
    let o = run("console.log('y'.repeat(100000)); console.log('more'); return 1").await;
    assert_eq!(o.logs.len(), 2, "nothing is logged past the cap");
    assert_eq!(o.logs[0].len(), 24_000);
    assert_eq!(
        o.logs[1],
        "[console output beyond 24000 characters was not kept]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_a_busy_program_and_progress_is_reported() {
    let control = Control::default();
    let cancel = control.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let started = Instant::now();
    let limits = Limits {
        wall: Duration::from_secs(20),
        ..Limits::default()
    };
    let o = sandbox::run(
        "await tools.test.echo({}); while (true) {}",
        Arc::new(TestHost),
        State::default(),
        limits.clone(),
        control,
    )
    .await;
    assert_eq!(err(&o).name, "Cancelled");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let control = Control {
        progress: Some(Arc::new(move |calls, _elapsed| {
            record.lock().unwrap().push(calls)
        })),
        ..Control::default()
    };
    let o = sandbox::run(
        "for (let i = 0; i < 3; i++) await tools.test.slow(); return 1",
        Arc::new(TestHost),
        State::default(),
        limits,
        control,
    )
    .await;
    assert_eq!(ok(&o), &json!(1));
    let seen = seen.lock().unwrap();
    assert!(
        seen.len() >= 3 && seen.last() == Some(&3),
        "progress after each settled call: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_returned_twice_is_written_twice_and_only_cycles_become_null() {
    let o = run("const pod = { name: 'p', status: { phase: 'Pending' } };
         const loop: any = { name: 'loop' }; loop.self = loop;
         return { a: pod, b: [pod, pod.status], c: await Promise.resolve(pod), loop };")
    .await;
    assert_eq!(
        ok(&o),
        &serde_json::json!({
            "a": {"name": "p", "status": {"phase": "Pending"}},
            "b": [{"name": "p", "status": {"phase": "Pending"}}, {"phase": "Pending"}],
            "c": {"name": "p", "status": {"phase": "Pending"}},
            "loop": {"name": "loop", "self": null}
        })
    );
}
