//! `kubecode bench tokens`: each scenario's two transcripts replayed through real MCP sessions,
//! with the context a model would re-read at every turn counted in o200k_base tokens.
//!
//! Billing model: a conversation re-sends its whole context on every turn. Turn 1 holds the
//! system prompt, the tool definitions and the question; every tool call adds the call the
//! model wrote and the result it got back; after the last call one more turn writes the
//! answer. Cumulative input tokens = Σ over turns of the context at that turn.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use tiktoken_rs::CoreBPE;

use crate::cluster;
use crate::scenario::{self, Scenario, Step};
use crate::session::Session;

/// The tokenizer every figure is counted with.
pub const TOKENIZER: &str = "o200k_base";

/// The system prompt of the simulated agent: the same short prompt in both modes.
pub const SYSTEM_PROMPT: &str = "You are a site reliability engineer with read-only access to a \
Kubernetes cluster through the tools below. Investigate the user's question with the tools, then \
answer with the root cause and the evidence for it. Be concise.";

/// Tokens a chat format spends framing each message (role, separators).
const MESSAGE_OVERHEAD: usize = 4;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The kubecode binary to serve with.
    pub binary: PathBuf,
    /// The scenarios directory.
    pub scenarios: PathBuf,
    /// Only these scenarios (all when empty).
    pub only: Vec<String>,
    /// Where to write the plot of the crash-loop scenario (SVG).
    pub plot: Option<PathBuf>,
}

/// One mode's replay of a scenario.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeReport {
    /// Tool calls the model makes.
    pub round_trips: usize,
    /// Tokens of the tool definitions in context.
    pub definition_tokens: usize,
    /// Tokens of everything the tools returned.
    pub result_tokens: usize,
    /// Σ over turns of the context at that turn.
    pub cumulative_tokens: usize,
    /// Every call succeeded and every expected finding was read.
    pub correct: bool,
    /// Wall time of the calls, milliseconds.
    pub wall_ms: u64,
    /// Context tokens at each turn (the last turn writes the answer).
    pub context_per_turn: Vec<usize>,
    /// Expected findings not found in what the model read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Calls that failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Calls whose result was cut to the output limit (the transcript must not rely on what
    /// was cut).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
}

/// One scenario, both modes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// What it exercises.
    pub title: String,
    /// Tools mode.
    pub tools: ModeReport,
    /// Code mode.
    pub code: ModeReport,
    /// code cumulativeTokens / tools cumulativeTokens.
    pub ratio: f64,
}

/// The whole suite.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `o200k_base`.
    pub tokenizer: &'static str,
    /// Tokens of the system prompt (in every turn of both modes).
    pub system_prompt_tokens: usize,
    /// Per scenario.
    pub scenarios: Vec<ScenarioReport>,
    /// Median of the ratios.
    pub median_ratio: f64,
    /// Scenarios whose code-mode transcript is a single run_code call.
    pub single_run_code: usize,
    /// Every scenario answered correctly in both modes.
    pub all_correct: bool,
}

/// Counts tokens.
pub struct Counter(CoreBPE);

impl Counter {
    /// The o200k_base tokenizer.
    pub fn new() -> anyhow::Result<Counter> {
        Ok(Counter(
            tiktoken_rs::o200k_base().map_err(|e| anyhow::anyhow!("{e}"))?,
        ))
    }

    /// Tokens of a text.
    pub fn count(&self, text: &str) -> usize {
        self.0.encode_with_special_tokens(text).len()
    }
}

/// Runs the suite.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let counter = Counter::new()?;
    let background = scenario::background(&options.scenarios)?;
    let scenarios = scenario::load_all(&options.scenarios, &options.only)?;
    let mut reports = Vec::new();
    for s in &scenarios {
        s.check()?;
        let served = cluster::serve_scenario(s, &background)
            .await
            .with_context(|| format!("scenario {}", s.name))?;
        let tools = replay(options, &counter, s, "tools", &s.tools, &served.kubeconfig).await?;
        let code = replay(options, &counter, s, "code", &s.code, &served.kubeconfig).await?;
        served.server.shutdown().await;
        let ratio = code.cumulative_tokens as f64 / tools.cumulative_tokens.max(1) as f64;
        reports.push(ScenarioReport {
            name: s.name.clone(),
            title: s.title.clone(),
            tools,
            code,
            ratio,
        });
    }
    let mut ratios: Vec<f64> = reports.iter().map(|r| r.ratio).collect();
    ratios.sort_by(f64::total_cmp);
    let median_ratio = median(&ratios);
    let single_run_code = scenarios
        .iter()
        .filter(|s| s.code.len() == 1 && s.code[0].tool == "run_code")
        .count();
    let all_correct = reports.iter().all(|r| r.tools.correct && r.code.correct);
    if let Some(path) = &options.plot
        && let Some(r) = reports.iter().find(|r| r.name == "crash-loop")
    {
        crate::plot::cumulative(path, r)?;
    }
    Ok(Report {
        tokenizer: TOKENIZER,
        system_prompt_tokens: counter.count(SYSTEM_PROMPT),
        scenarios: reports,
        median_ratio,
        single_run_code,
        all_correct,
    })
}

/// Replays the calls a model agent made (its log, one `{"tool", "arguments"}` JSON object a
/// line, as `scripts/mcp-call --log` writes it) on the scenario's cluster in `mode`, and
/// counts them as the suite counts its transcripts: the same tokenizer, system prompt,
/// definitions and cumulative context. `correct` says whether what the calls returned holds
/// the scenario's expected findings.
pub async fn replay_log(
    options: &Options,
    name: &str,
    mode: &str,
    log: &str,
) -> anyhow::Result<ModeReport> {
    let counter = Counter::new()?;
    let background = scenario::background(&options.scenarios)?;
    let s = scenario::load_all(&options.scenarios, &[name.to_string()])?
        .pop()
        .with_context(|| format!("no scenario {name}"))?;
    let mut steps = Vec::new();
    for (i, line) in log
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("line {} of the log is not JSON", i + 1))?;
        steps.push(Step {
            why: String::new(),
            tool: v["tool"]
                .as_str()
                .with_context(|| format!("line {} of the log names no tool", i + 1))?
                .to_string(),
            args: v.get("arguments").cloned().unwrap_or_else(|| json!({})),
        });
    }
    let served = cluster::serve_scenario(&s, &background)
        .await
        .with_context(|| format!("scenario {}", s.name))?;
    let report = replay(options, &counter, &s, mode, &steps, &served.kubeconfig).await;
    served.server.shutdown().await;
    report
}

/// The median of sorted values (0 when empty).
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Tokens of tool definitions as a model API receives them: name, description, input schema.
fn definition_tokens(counter: &Counter, tools: &[rmcp::model::Tool]) -> usize {
    let defs: Vec<Value> = tools
        .iter()
        .map(|t| {
            json!({"name": t.name, "description": t.description, "input_schema": t.input_schema})
        })
        .collect();
    counter.count(&Value::Array(defs).to_string())
}

async fn replay(
    options: &Options,
    counter: &Counter,
    scenario: &Scenario,
    mode: &str,
    steps: &[Step],
    kubeconfig: &Path,
) -> anyhow::Result<ModeReport> {
    let session = Session::start(&options.binary, mode, kubeconfig).await?;
    let definition_tokens = definition_tokens(counter, &session.tools().await?);
    let base = counter.count(SYSTEM_PROMPT)
        + definition_tokens
        + counter.count(&scenario.question)
        + 3 * MESSAGE_OVERHEAD;
    let mut history = 0;
    let mut context_per_turn = Vec::new();
    let mut result_tokens = 0;
    let mut wall = Duration::ZERO;
    let mut evidence = String::new();
    let mut errors = Vec::new();
    let mut truncated = Vec::new();
    for step in steps {
        context_per_turn.push(base + history);
        let answer = session.call(&step.tool, &step.args).await?;
        wall += answer.elapsed;
        let call = json!({"name": step.tool, "arguments": step.args}).to_string();
        let returned = counter.count(&answer.text);
        history += counter.count(&call) + returned + 2 * MESSAGE_OVERHEAD;
        result_tokens += returned;
        let failed = answer.is_error
            || answer
                .structured
                .as_ref()
                .is_some_and(|s| s.get("ok") == Some(&Value::Bool(false)));
        if failed {
            errors.push(format!("{} {}: {}", step.tool, step.args, answer.text));
        }
        if answer
            .structured
            .as_ref()
            .is_some_and(|s| s.get("truncated") == Some(&Value::Bool(true)))
        {
            truncated.push(format!("{} {}", step.tool, step.args));
        }
        evidence.push_str(&answer.text);
        evidence.push('\n');
        if let Ok(v) = serde_json::from_str::<Value>(&answer.text) {
            collect_strings(&v, &mut evidence);
        }
    }
    context_per_turn.push(base + history);
    session.close().await?;
    let missing: Vec<String> = scenario
        .expect
        .iter()
        .filter(|e| !e.found_in(&evidence))
        .map(|e| e.describe())
        .collect();
    Ok(ModeReport {
        round_trips: steps.len(),
        definition_tokens,
        result_tokens,
        cumulative_tokens: context_per_turn.iter().sum(),
        correct: missing.is_empty() && errors.is_empty(),
        wall_ms: wall.as_millis() as u64,
        context_per_turn,
        missing,
        errors,
        truncated,
    })
}

/// Appends every string in `v` on its own line, so findings with quotes are found unescaped.
fn collect_strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// The report as Markdown (what the README quotes).
pub fn markdown(r: &Report) -> String {
    let mut s = String::from(
        "| scenario | tools: calls | tools: definitions | tools: results | tools: cumulative | code: calls | code: definitions | code: results | code: cumulative | code/tools | correct |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|\n",
    );
    for x in &r.scenarios {
        let ok = |m: &ModeReport| if m.correct { "✓" } else { "✗" };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {} {} |\n",
            x.name,
            x.tools.round_trips,
            x.tools.definition_tokens,
            x.tools.result_tokens,
            x.tools.cumulative_tokens,
            x.code.round_trips,
            x.code.definition_tokens,
            x.code.result_tokens,
            x.code.cumulative_tokens,
            x.ratio,
            ok(&x.tools),
            ok(&x.code),
        ));
    }
    s.push_str(&format!(
        "\nTokenizer {}; system prompt {} tokens in every turn of both modes. Median code/tools ratio of cumulative context tokens: **{:.3}**. Single `run_code` call: {} of {} scenarios. All answered correctly in both modes: {}.\n",
        r.tokenizer,
        r.system_prompt_tokens,
        r.median_ratio,
        r.single_run_code,
        r.scenarios.len(),
        if r.all_correct { "yes" } else { "NO" },
    ));
    for x in &r.scenarios {
        for (mode, m) in [("tools", &x.tools), ("code", &x.code)] {
            for e in &m.errors {
                s.push_str(&format!("\n- {} ({mode}): call failed: {e}", x.name));
            }
            for e in &m.truncated {
                s.push_str(&format!(
                    "\n- {} ({mode}): result cut to the output limit: {e}",
                    x.name
                ));
            }
            for e in &m.missing {
                s.push_str(&format!("\n- {} ({mode}): finding not read: {e}", x.name));
            }
        }
    }
    s
}
