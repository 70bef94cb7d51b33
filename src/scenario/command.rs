//! `haflow scenario list` and `haflow scenario run NAME`: the shipped scenarios from the
//! command line, with what happened, the logs and (`--flow`) the call-flow listing.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::cli::print_msg;
use crate::scenario::catalog::{SCENARIOS, find};
use crate::scenario::runner::{RunOptions, run};
use crate::scenario::spec::Scenario;
use crate::trace::export::{TraceArgs, install};

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
    /// Trace outputs (Chrome/Perfetto file, level, filter).
    #[command(flatten)]
    pub trace: TraceArgs,
}

/// Runs `haflow scenario ...`.
pub fn main(cmd: &ScenarioCmd) -> ExitCode {
    match cmd {
        ScenarioCmd::List => {
            let w = SCENARIOS.iter().map(|e| e.name.len()).max().unwrap_or(0);
            for e in SCENARIOS {
                match e.scenario() {
                    Ok(sc) => println!("{:<w$}  {}  ({})", e.name, sc.title, sc.seed),
                    Err(err) => println!("{:<w$}  (unreadable: {err})", e.name),
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
            print_msg("ALERT", &e);
            return ExitCode::from(2);
        }
    };
    // Routed: the runner's own feed (for the listing) joins the trace file's.
    let _guard = match install(&a.trace, None, true, true) {
        Ok(g) => g,
        Err(e) => {
            print_msg("ALERT", &e);
            return ExitCode::from(1);
        }
    };
    println!("scenario {}: {} ({})", sc.name, sc.title, sc.seed);
    println!();
    for l in textwrap(&sc.about, 88) {
        println!("  {l}");
    }
    println!();
    println!("traffic:");
    let opts =
        RunOptions { progress: Some(Box::new(|l: &str| println!("  {l}"))), golden, ..RunOptions::default() };
    let out = match run(&sc, opts) {
        Ok(o) => o,
        Err(e) => {
            print_msg("ALERT", &format!("scenario {}: {e}", sc.name));
            return ExitCode::from(1);
        }
    };
    if a.config {
        println!("\nhaproxy.cfg as run:");
        for l in out.config.lines() {
            println!("  {l}");
        }
    }
    println!("\nlogs:");
    for l in &out.logs {
        println!("  {l}");
    }
    if a.flow {
        println!("\ncall flow:");
        for l in out.listing.lines() {
            println!("  {l}");
        }
    }
    println!();
    if out.passed() {
        println!("all expectations met");
        ExitCode::SUCCESS
    } else {
        println!("{} expectation(s) not met:", out.failures.len());
        for f in &out.failures {
            println!("  - {f}");
        }
        ExitCode::from(1)
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
