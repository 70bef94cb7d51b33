//! `haflow scenario list` and `haflow scenario run NAME`: the shipped scenarios from the
//! command line, with what happened, the logs and (`--flow`) the call-flow listing, or
//! (`--tui`) watched live in the terminal UI with the outcome shown there.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::cli::say;
use crate::haproxy::errors::print_message;
use crate::scenario::catalog::{SCENARIOS, find};
use crate::scenario::runner::{Outcome, RunOptions, run};
use crate::scenario::spec::{ARTICLE, Scenario};
use crate::trace::export::{TraceArgs, install};
use crate::tui::snapshot::{LogKind, producer};
use crate::tui::state::Tone;
use crate::tui::{App, SNAPSHOT_INTERVAL_MS, has_terminal, watch};

/// `haflow scenario ...`.
#[derive(Debug, Subcommand)]
pub enum ScenarioCmd {
    /// List the scenarios.
    List,
    /// Run one and check what it must observe (exit status 1 if something differs).
    Run(ScenarioRunArgs),
}

/// Options of `haflow scenario run`.
#[derive(Debug, Args)]
pub struct ScenarioRunArgs {
    /// A scenario name (see `haflow scenario list`) or a scenario file.
    pub name: String,
    /// Print the call-flow listing of the scenario's sessions.
    #[arg(long)]
    pub flow: bool,
    /// Print the configuration as run (with the addresses the run was given).
    #[arg(long)]
    pub config: bool,
    /// Watch the run in the terminal UI; the outcome shows there, and the UI stays open
    /// until `q`.
    #[arg(long)]
    pub tui: bool,
    /// Trace outputs (Chrome/Perfetto file, level, filter).
    #[command(flatten)]
    pub trace: TraceArgs,
}

/// Runs `haflow scenario ...`.
pub fn main(cmd: &ScenarioCmd) -> ExitCode {
    match cmd {
        ScenarioCmd::List => {
            say!("\"§3.1\" below is section 3.1 of the article, {ARTICLE}.");
            let w = SCENARIOS.iter().map(|e| e.name.len()).max().unwrap_or(0);
            for e in SCENARIOS {
                match e.scenario() {
                    Ok(sc) => say!("{:<w$}  {}  ({})", e.name, sc.title, sc.seed),
                    Err(err) => say!("{:<w$}  (unreadable: {err})", e.name),
                }
            }
            ExitCode::SUCCESS
        }
        ScenarioCmd::Run(a) => run_one(a),
    }
}

/// The scenario `name` names: a shipped one, or a file.
fn load(name: &str) -> Result<(Scenario, Option<String>), String> {
    if let Some(e) = find(name) {
        return Ok((e.scenario()?, Some(e.golden.to_string())));
    }
    let text = std::fs::read_to_string(name)
        .map_err(|e| format!("no scenario '{name}' (see `haflow scenario list`), and no such file: {e}"))?;
    let sc = Scenario::parse(&text).map_err(|e| format!("{name}: {e}"))?;
    // A file next to a `golden/` directory brings its listing along.
    let golden = std::path::Path::new(name)
        .parent()
        .map(|d| d.join("golden").join(format!("{}.txt", sc.name)))
        .and_then(|p| std::fs::read_to_string(p).ok());
    Ok((sc, golden))
}

fn run_one(a: &ScenarioRunArgs) -> ExitCode {
    let (sc, golden) = match load(&a.name) {
        Ok(x) => x,
        Err(e) => {
            print_message("ALERT", &e);
            return ExitCode::from(2);
        }
    };
    if a.tui {
        return run_tui(a, sc, golden);
    }
    // Routed: the runner's own feed (for the listing) joins the trace file's.
    let _guard = match install(&a.trace, None, true, true) {
        Ok(g) => g,
        Err(e) => {
            print_message("ALERT", &e);
            return ExitCode::from(1);
        }
    };
    say!("scenario {}: {} ({})", sc.name, sc.title, sc.seed);
    say!();
    for l in textwrap(&sc.about, 88) {
        say!("  {l}");
    }
    say!();
    say!("traffic:");
    let opts =
        RunOptions { progress: Some(Box::new(|l: &str| say!("  {l}"))), golden, ..RunOptions::default() };
    let out = match run(&sc, opts) {
        Ok(o) => o,
        Err(e) => {
            print_message("ALERT", &format!("scenario {}: {e}", sc.name));
            return ExitCode::from(1);
        }
    };
    print_outcome(a, &out)
}

/// Prints what a run observed (the configuration and the listing when asked for, the
/// logs) and the verdict; returns the exit status: 0 when every expectation was met.
fn print_outcome(a: &ScenarioRunArgs, out: &Outcome) -> ExitCode {
    if a.config {
        say!("\nhaproxy.cfg as run:");
        for l in out.config.lines() {
            say!("  {l}");
        }
    }
    say!("\nlogs:");
    for l in &out.logs {
        say!("  {l}");
    }
    if a.flow {
        say!("\ncall flow:");
        for l in out.listing.lines() {
            say!("  {l}");
        }
    }
    say!();
    if out.passed() {
        say!("all expectations met");
        ExitCode::SUCCESS
    } else {
        say!("{} expectation(s) not met:", out.failures.len());
        for f in &out.failures {
            say!("  - {f}");
        }
        ExitCode::from(1)
    }
}

/// `haflow scenario run NAME --tui`: the scenario runs on a thread of its own with the
/// UI's snapshot producer as its proxy's observer and the UI's capture as a second route
/// of its span records; the UI shows the traffic's report lines in its log pane as they
/// happen, then the outcome, and stays open until `q`. What a run without `--tui` prints
/// after its traffic is printed once the terminal is given back.
fn run_tui(a: &ScenarioRunArgs, sc: Scenario, golden: Option<String>) -> ExitCode {
    if !has_terminal() {
        print_message("ALERT", "--tui needs a terminal on stdout");
        return ExitCode::from(1);
    }
    // No warnings on stderr: the terminal is the UI's.
    let _guard = match install(&a.trace, None, false, true) {
        Ok(g) => g,
        Err(e) => {
            print_message("ALERT", &e);
            return ExitCode::from(1);
        }
    };
    let (sink, capture) = crate::tui::ui_capture();
    let (prod, feed) = producer(SNAPSHOT_INTERVAL_MS);
    let (report_tx, report_rx) = std::sync::mpsc::channel::<String>();
    let mut app = App::default();
    app.state.push_log(LogKind::Ui, format!("scenario {}: {} ({})", sc.name, sc.title, sc.seed));
    for l in textwrap(&sc.about, 100) {
        app.state.push_log(LogKind::Ui, format!("  {l}"));
    }
    app.state.push_log(LogKind::Ui, "traffic:".into());
    app.set_status(format!("scenario {}: {} - running its traffic...", sc.name, sc.title), Tone::Info);
    app.control_off = Some("d/e are off: a scenario runs as written, so that its expectations hold".into());
    let name = sc.name.clone();
    let driver = std::thread::Builder::new().name("haflow-scenario".into()).spawn(move || {
        let opts = RunOptions {
            observer: Some(Box::new(prod)),
            also: Some(sink),
            progress: Some(Box::new(move |l: &str| {
                let _ = report_tx.send(l.to_string());
            })),
            golden,
            ..RunOptions::default()
        };
        run(&sc, opts)
    });
    let mut driver = match driver {
        Ok(d) => Some(d),
        Err(e) => {
            print_message("ALERT", &format!("cannot start the scenario: {e}"));
            return ExitCode::from(1);
        }
    };
    let mut result = None;
    let ui = watch(&mut app, &feed, &capture, None, |app| {
        for l in report_rx.try_iter() {
            app.state.push_log(LogKind::Ui, format!("  {l}"));
        }
        if driver.as_ref().is_some_and(|d| d.is_finished())
            && let Some(d) = driver.take()
        {
            let res = joined(d);
            show_outcome(app, &name, &res);
            result = Some(res);
        }
        // The outcome stays on screen until `q`.
        false
    });
    // Left before the end: the run ends on its own (its waits are bounded).
    let res = match (result, driver) {
        (Some(r), _) => r,
        (None, Some(d)) => joined(d),
        (None, None) => Err("the scenario's result was lost".into()),
    };
    if let Err(e) = ui {
        print_message("ALERT", &format!("terminal error: {e}"));
    }
    match res {
        Ok(out) => print_outcome(a, &out),
        Err(e) => {
            print_message("ALERT", &format!("scenario {name}: {e}"));
            ExitCode::from(1)
        }
    }
}

fn joined(d: std::thread::JoinHandle<Result<Outcome, String>>) -> Result<Outcome, String> {
    d.join().unwrap_or_else(|_| Err("the scenario's thread panicked".into()))
}

/// Shows the result of scenario `name` in the UI: the verdict on the status line (green
/// when every expectation was met, red otherwise), and each failure in the log pane.
pub fn show_outcome(app: &mut App, name: &str, res: &Result<Outcome, String>) {
    match res {
        Ok(o) if o.passed() => {
            app.state.push_log(LogKind::Ui, "all expectations met".into());
            app.set_status(format!("scenario {name}: all expectations met (q quits)"), Tone::Good);
        }
        Ok(o) => {
            app.state.push_log(LogKind::Ui, format!("{} expectation(s) not met:", o.failures.len()));
            for f in &o.failures {
                for (i, l) in f.lines().enumerate() {
                    app.state.push_log(LogKind::Ui, format!("{}{l}", if i == 0 { "  - " } else { "    " }));
                }
            }
            let first = o.failures.first().and_then(|f| f.lines().next()).unwrap_or("");
            app.set_status(
                format!(
                    "scenario {name}: {} expectation(s) not met (5 Logs lists them): {first}",
                    o.failures.len()
                ),
                Tone::Bad,
            );
        }
        Err(e) => {
            app.state.push_log(LogKind::Ui, format!("the scenario could not run: {e}"));
            app.set_status(format!("scenario {name} could not run: {e}"), Tone::Bad);
        }
    }
}

/// Splits `text` into lines of at most `width` characters, paragraph by paragraph.
pub fn textwrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for para in text.trim().split("\n\n") {
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            out.push(line);
        }
        out.push(String::new());
    }
    out.pop();
    out
}
