//! The command line: what clap parsed, then a validated run.
//!
//! `haflow run -f FILE` runs the proxy in the foreground (SIGINT/SIGTERM stop it,
//! SIGUSR1 stops it softly); with `--tui` it also shows its insides live in the terminal
//! (see `tui`); `haflow check -f FILE` checks a configuration like
//! `haproxy -c`. Messages follow HAProxy's layout (`[ALERT]    (pid) : config : ...`) so
//! that the same eyes and scripts read both.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::haproxy::cfgparse::{Diag, readcfgfile};
use crate::haproxy::haproxy::{Haproxy, InitError, run_poll_loop, start_proxies};
use crate::trace::export::{TraceArgs, install};

/// haflow: HAProxy's insides, reproduced in Rust and made visible.
#[derive(Debug, Parser)]
#[command(name = "haflow", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the proxy in the foreground from an haproxy.cfg.
    Run(RunArgs),
    /// Check a configuration and exit (like `haproxy -c`).
    Check(CheckArgs),
}

/// Options of `haflow run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file(s), read in order.
    #[arg(short = 'f', long = "file", required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print HAProxy's debug lines (accept, request, response, close) on stdout.
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// Quiet: do not print warnings.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show what HAProxy's insides are doing, live, in a terminal UI (logs go to its log pane).
    #[arg(long)]
    pub tui: bool,
    /// Trace outputs (Chrome/Perfetto file, level, filter).
    #[command(flatten)]
    pub trace: TraceArgs,
}

/// Options of `haflow check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Configuration file(s), read in order.
    #[arg(short = 'f', long = "file", required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Quiet: print nothing, only set the exit code.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Prints a message with HAProxy's prefix: `[ALERT]    (1234) : `.
pub fn print_msg(tag: &str, body: &str) {
    eprintln!("{:<11}({}) : {}", format!("[{tag}]"), std::process::id(), body);
}

fn print_notices() {
    print_msg("NOTICE", &format!("haflow version is {}", env!("CARGO_PKG_VERSION")));
    if let Ok(exe) = std::env::current_exe() {
        print_msg("NOTICE", &format!("path to executable is {}", exe.display()));
    }
}

/// Prints a configuration's ALERTs and WARNINGs the way `haproxy -c` does.
pub fn print_diag(diag: &Diag, quiet: bool) {
    if quiet || (diag.alerts.is_empty() && diag.warnings.is_empty()) {
        return;
    }
    print_notices();
    for w in &diag.warnings {
        print_msg("WARNING", &format!("config : {w}"));
    }
    for a in &diag.alerts {
        print_msg("ALERT", &format!("config : {a}"));
    }
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `haflow check`: 0 when valid, 1 on errors, 2 when valid but without any listener.
pub fn check(args: &CheckArgs) -> ExitCode {
    match readcfgfile(&args.files, &env_lookup) {
        Err(diag) => {
            print_diag(&diag, args.quiet);
            ExitCode::from(1)
        }
        Ok(cfg) => {
            let diag = Diag { alerts: vec![], warnings: cfg.warnings.clone() };
            print_diag(&diag, args.quiet);
            if args.quiet {
                return if cfg.listeners.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS };
            }
            if !diag.warnings.is_empty() {
                println!("Warnings were found.");
            }
            if cfg.listeners.is_empty() {
                println!("Configuration file has no error but will not start (no listener) => exit(2).");
                return ExitCode::from(2);
            }
            println!("Configuration file is valid");
            ExitCode::SUCCESS
        }
    }
}

/// Reads the configuration and builds the process state; prints ALERTs and WARNINGs the way
/// HAProxy does. Returns the state and the warnings, or the exit code.
fn load(args: &RunArgs) -> Result<(Haproxy, Vec<String>), ExitCode> {
    let cfg = match readcfgfile(&args.files, &env_lookup) {
        Ok(c) => c,
        Err(diag) => {
            print_diag(&diag, false);
            return Err(ExitCode::from(1));
        }
    };
    let warnings = cfg.warnings.clone();
    print_diag(&Diag { alerts: vec![], warnings: warnings.clone() }, args.quiet);
    let mut w = match Haproxy::new(cfg) {
        Ok(w) => w,
        Err(e) => {
            print_msg("ALERT", &format!("cannot create the poller: {e}"));
            return Err(ExitCode::from(1));
        }
    };
    w.global.debug |= args.debug;
    w.global.quiet |= args.quiet;
    Ok((w, warnings))
}

/// `haflow run`: parse, bind, enable, loop until stopped.
pub fn run(args: &RunArgs) -> ExitCode {
    match load(args) {
        Ok((mut w, _)) => serve(&mut w),
        Err(code) => code,
    }
}

/// `haflow run --tui`: like `run`, with the proxy on its own thread and the terminal UI on
/// this one. The capture layer becomes the process's subscriber before the configuration
/// is read, so the UI sees start-up too; bind errors print before the UI takes the screen.
pub fn run_tui(args: &RunArgs) -> ExitCode {
    let (layer, capture) = crate::trace::capture::capture(crate::tui::CAPTURE_CAPACITY);
    let _trace = match install(&args.trace, Some(layer), false) {
        Ok(g) => g,
        Err(e) => {
            print_msg("ALERT", &e);
            return ExitCode::from(1);
        }
    };
    let (mut w, warnings) = match load(args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if let Err(code) = start(&mut w) {
        return code;
    }
    crate::tui::run(w, capture, warnings)
}

/// Binds, enables and runs the loop on this thread; returns the process exit code.
pub fn serve(w: &mut Haproxy) -> ExitCode {
    if let Err(code) = start(w) {
        return code;
    }
    run_poll_loop(w);
    ExitCode::SUCCESS
}

/// Installs the signal handlers, binds and enables the listeners, writes the pidfile;
/// on failure prints HAProxy's messages and returns the exit code.
pub fn start(w: &mut Haproxy) -> Result<(), ExitCode> {
    if let Err(e) = w.install_signal_handlers() {
        print_msg("ALERT", &format!("cannot install signal handlers: {e}"));
        return Err(ExitCode::from(1));
    }
    match start_proxies(w) {
        Ok(()) => {}
        Err(InitError::Bind(msg)) => {
            print_notices();
            print_msg("ALERT", &msg);
            print_msg("ALERT", "[haproxy.main()] Some protocols failed to start their listeners! Exiting.");
            return Err(ExitCode::from(1));
        }
        Err(e) => {
            print_msg("ALERT", &format!("{e:?}"));
            return Err(ExitCode::from(1));
        }
    }
    if let Some(pidfile) = &w.global.pidfile
        && let Err(e) = std::fs::write(pidfile, format!("{}\n", std::process::id()))
    {
        print_msg("ALERT", &format!("[haflow.main()] Cannot create pidfile {} : {e}", pidfile.display()));
    }
    Ok(())
}

/// Installs the trace outputs for a command that runs the proxy; the guard completes the
/// trace file when the command returns (normal exit, SIGINT or SIGTERM alike).
fn with_trace(args: &TraceArgs, f: impl FnOnce() -> ExitCode) -> ExitCode {
    let capture = args.trace_capture.then(|| {
        let (layer, cap) = crate::trace::capture::capture(crate::tui::CAPTURE_CAPACITY);
        // Stands for the UI: takes every record as fast as it can and throws it away.
        std::thread::spawn(move || while cap.recv().is_some() {});
        layer
    });
    match install(args, capture, true) {
        Ok(_guard) => f(),
        Err(e) => {
            print_msg("ALERT", &e);
            ExitCode::from(1)
        }
    }
}

/// The entry point of the binary; returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.cmd {
        // The UI owns the terminal: its capture layer is the only subscriber.
        Cmd::Run(a) if a.tui => run_tui(a),
        Cmd::Run(a) => with_trace(&a.trace, || run(a)),
        Cmd::Check(a) => with_trace(&TraceArgs::default(), || check(a)),
    }
}
