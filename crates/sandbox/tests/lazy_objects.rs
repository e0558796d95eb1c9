//! List objects reach a program lazily (large members parsed on first read) and in batches
//! ahead of the call's result; to the program they are ordinary parsed JSON.

use std::sync::Arc;
use std::time::Duration;

use sandbox::{CallFuture, Control, Host, HostValue, Limits, RunOutput, State};
use serde_json::{Value, json};

/// Objects with large nested members, escaped keys, a `__proto__` key and arrays of objects.
fn objects() -> Vec<Value> {
    (0..12)
        .map(|i| {
            let long = "x".repeat(80);
            let mut o = json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": format!("pod-{i}"), "labels": {"app": "a", "long": long}, "n": i},
                "spec": {"containers": [
                    {"name": "c", "image": format!("registry.example.com/c:{i}-{long}"), "ports": [{"containerPort": 80}]},
                    {"name": "d", "image": "d", "env": [{"name": "X", "value": "line\nbreak \"quoted\" \u{e9}"}]}
                ]},
                "status": {"phase": if i % 3 == 0 { "Pending" } else { "Running" }, "conditions": [
                    {"type": "Ready", "status": "True", "message": long.clone()},
                    {"type": "Scheduled", "status": "True", "reason": null, "n": 1.5e-3, "ok": false}
                ]}
            });
            if i == 7 {
                o["status"]["__proto__"] = json!({"polluted": true, "long": long});
            }
            if i == 8 {
                o["status"]["esc\"aped key"] = json!({"long": long});
            }
            o
        })
        .collect()
}

struct ObjectsHost;

impl Host for ObjectsHost {
    fn functions(&self) -> Vec<String> {
        vec![
            "test.objects".into(),
            "test.parsed".into(),
            "test.failing".into(),
        ]
    }
    fn call(&self, path: &str, _args: Value, mut ahead: sandbox::ItemBatches) -> CallFuture {
        let path = path.to_string();
        Box::pin(async move {
            let texts: Vec<String> = objects().iter().map(Value::to_string).collect();
            match path.as_str() {
                // Five ahead in two batches, the rest with the result.
                "test.objects" => {
                    ahead(texts[..2].to_vec());
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    ahead(texts[2..5].to_vec());
                    Ok(HostValue::Items(texts[5..].to_vec()))
                }
                "test.parsed" => Ok(HostValue::Json(Value::Array(objects()))),
                _ => {
                    ahead(texts[..3].to_vec());
                    Err(("Unavailable".into(), "the list broke off".into()))
                }
            }
        })
    }
    fn search(&self, _query: &str, _limit: usize) -> Value {
        json!([])
    }
    fn describe(&self, _path: &str) -> Option<String> {
        None
    }
}

async fn run(program: &str) -> RunOutput {
    sandbox::run(
        program,
        Arc::new(ObjectsHost),
        State::default(),
        Limits {
            wall: Duration::from_secs(5),
            ..Limits::default()
        },
        Control::default(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_objects_behave_as_parsed_json() {
    let o = run(r#"
const objs = await tools.test.objects();
const parsed = await tools.test.parsed();
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const r = {};
r.count = objs.length;
r.keys = same(objs.map(Object.keys), parsed.map(Object.keys));
r.statusKeys = same(objs.map((o) => Object.keys(o.status)), parsed.map((o) => Object.keys(o.status)));
r.spread = same({ ...objs[1] }, parsed[1]);
r.assigned = Object.assign({}, objs[10]).spec.containers[1].env[0].value === parsed[10].spec.containers[1].env[0].value;
r.identity = objs[0].status === objs[0].status && objs[0].spec.containers === objs[0].spec.containers;
objs[2].status = 5;
r.assignment = objs[2].status;
r.frozen = Object.freeze(objs[3]).status.phase;
const child = Object.create(objs[4]);
r.inherited = child.status.phase + "/" + objs[4].status.phase;
r.entries = Object.entries(objs[5]).length;
r.inOperator = "status" in objs[6] && !("nope" in objs[6]);
r.protoKey = Object.prototype.hasOwnProperty.call(objs[7].status, "__proto__") && objs[7].status.polluted === undefined && ({}).polluted === undefined;
r.escapedKey = objs[8].status['esc"aped key'].long.length;
r.deleted = (delete objs[9].spec) && !("spec" in objs[9]);
r.noHiddenKeys = Object.getOwnPropertyNames(objs[11]).join(",");
r.all = same(objs.slice(10), parsed.slice(10)) && same(objs.slice(0, 2), parsed.slice(0, 2));
return r;
"#)
    .await;
    assert!(o.ok, "the run failed: {:?}", o.error);
    assert_eq!(
        o.result,
        json!({
            "count": 12,
            "keys": true,
            "statusKeys": true,
            "spread": true,
            "assigned": true,
            "identity": true,
            "assignment": 5,
            "frozen": "Pending",
            "inherited": "Running/Running",
            "entries": 5,
            "inOperator": true,
            "protoKey": true,
            "escapedKey": 80,
            "deleted": true,
            "noHiddenKeys": "apiVersion,kind,metadata,spec,status",
            "all": true
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_that_fails_after_sending_items_ahead_rejects() {
    let o = run(
        r#"try { await tools.test.failing(); return "resolved"; } catch (e) { return e.code + ": " + e.message; }"#,
    )
    .await;
    assert!(o.ok, "the run failed: {:?}", o.error);
    assert_eq!(o.result, json!("Unavailable: the list broke off"));
}
