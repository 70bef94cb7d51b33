//! The command line: what clap parsed, then a validated run.
//!
//! `haflow run -f FILE` runs the proxy in the foreground (SIGINT/SIGTERM stop it,
//! SIGUSR1 stops it softly); with `--tui` it also shows its insides live in the terminal
//! (see `tui`); `haflow check -f FILE` checks a configuration like
//! `haproxy -c`; `haflow scenario`, `haflow walkthrough` and `haflow demo` run haflow in
//! this process against embedded servers, to check it, to step through it and to watch
//! it (`scenario` holds the scenario commands). Messages follow HAProxy's layout (`[ALERT]    (pid) : config : ...`) so
//! that the same eyes and scripts read both.
//!
//! The same binary also takes HAProxy's own command line (`haflow -d -f FILE`, `-c`, `-q`,
//! `-v`, `-vv`, `-p PIDFILE`...), so that test harnesses, init scripts and people used to
//! `haproxy` can start haflow unchanged (see `haproxy_main`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::haproxy::cfgparse::{Diag, readcfgfile};
use crate::haproxy::errors::print_message;
use crate::haproxy::haproxy::{
    Haproxy, InitError, OldPids, OnLoopTurn, bind_and_enable, observe, run_poll_loop,
};
use crate::trace::export::{TraceArgs, install};

pub mod scenario;

/// `println!` for a command's output, except that a reader gone away (`haflow scenario
/// list | head -1`) is not an error: `println!` panics on the broken pipe, this drops
/// the line (the command goes on, and its exit status says how it went).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
pub(crate) use say;

/// A writer whose closed pipe (`| head`) swallows the rest of the output instead of
/// failing the command that writes it.
struct PipeTolerant<W>(W);

impl<W: std::io::Write> std::io::Write for PipeTolerant<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(buf.len()),
            r => r,
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            r => r,
        }
    }
}

/// haflow: HAProxy's insides, reproduced in Rust and made visible.
#[derive(Debug, Parser)]
#[command(name = "haflow", version, about, long_about = None, after_help = HAPROXY_STYLE)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The end of `haflow --help`: HAProxy's own command line, which haflow also takes.
const HAPROXY_STYLE: &str = "HAProxy's command line works too (init scripts, test harnesses, habits):
  haflow -f haproxy.cfg [-f more.cfg]... -db    run in the foreground (-d: with debug lines)
  haflow -c -f haproxy.cfg                       check the configuration, like haproxy -c
  haflow -f haproxy.cfg -p PIDFILE -sf PID...    HAProxy's reload flags -sf/-st are taken
  haflow -v | -vv                                version | build options
haflow -h lists every HAProxy flag.

Read a recorded trace (--trace FILE, or x in the UI) in the terminal UI: haflow replay FILE.json";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the proxy in the foreground from an haproxy.cfg.
    Run(RunArgs),
    /// Check a configuration and exit (like `haproxy -c`).
    Check(CheckArgs),
    /// Scripted runs: embedded backends, real traffic, checked expectations.
    #[command(subcommand)]
    Scenario(scenario::ScenarioCmd),
    /// One HTTP session, paused at each step of the walkthrough with the proxy's state.
    Walkthrough(WalkthroughArgs),
    /// haflow in front of embedded servers with steady mixed traffic, shown live.
    Demo(DemoArgs),
    /// Show a recorded trace (--trace FILE, or x/w in the UI) in the terminal UI, with
    /// time moving as recorded: space pauses, . steps, [ ] and { } seek.
    Replay(ReplayArgs),
}

/// Options of `haflow replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The trace file (Chrome/Perfetto JSON).
    pub file: PathBuf,
    /// How much faster than recorded time the replay moves.
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.001..=1000.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}': a speed from 0.001 to 1000")),
    }
}

/// The longest `--duration` or `--every` of the demo: a week.
const MAX_DEMO_SECS: u64 = 7 * 24 * 3600;

/// Options of `haflow demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop after this many seconds (default: run until `q` or Ctrl-C).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=MAX_DEMO_SECS))]
    pub duration: Option<u64>,
    /// Without a terminal: print a summary every SECS seconds.
    #[arg(long, value_name = "SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=MAX_DEMO_SECS))]
    pub every: u64,
}

/// Options of `haflow walkthrough`.
#[derive(Debug, Args)]
pub struct WalkthroughArgs {
    /// Print every step and its captured state instead of the terminal UI.
    #[arg(long)]
    pub print: bool,
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

fn print_notices() {
    print_message("NOTICE", &format!("haflow version is {}", env!("CARGO_PKG_VERSION")));
    if let Ok(exe) = std::env::current_exe() {
        print_message("NOTICE", &format!("path to executable is {}", exe.display()));
    }
}

/// Prints a configuration's ALERTs and WARNINGs the way `haproxy -c` does.
pub fn print_diag(diag: &Diag, quiet: bool) {
    if quiet || (diag.alerts.is_empty() && diag.warnings.is_empty()) {
        return;
    }
    print_notices();
    for w in &diag.warnings {
        print_message("WARNING", &format!("config : {w}"));
    }
    for a in &diag.alerts {
        print_message("ALERT", &format!("config : {a}"));
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
                say!("Warnings were found.");
            }
            if cfg.listeners.is_empty() {
                say!("Configuration file has no error but will not start (no listener) => exit(2).");
                return ExitCode::from(2);
            }
            say!("Configuration file is valid");
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
            print_message("ALERT", &format!("cannot create the poller: {e}"));
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
    let (layer, capture) = crate::tui::ui_capture();
    let _trace = match install(&args.trace, Some(layer), false, false) {
        Ok(g) => g,
        Err(e) => {
            print_message("ALERT", &e);
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
    // Each turn's span records go out to the trace outputs before the loop may sleep.
    observe(Box::new(OnLoopTurn(crate::trace::subscriber::flush_thread)));
    run_poll_loop(w);
    ExitCode::SUCCESS
}

/// Installs the signal handlers, binds and enables the listeners, writes the pidfile;
/// on failure prints HAProxy's messages and returns the exit code.
pub fn start(w: &mut Haproxy) -> Result<(), ExitCode> {
    if let Err(e) = w.install_signal_handlers() {
        print_message("ALERT", &format!("cannot install signal handlers: {e}"));
        return Err(ExitCode::from(1));
    }
    match crate::haproxy::haproxy::apply_fd_limit(&w.global) {
        Ok(None) => {}
        Ok(Some(warning)) => print_message("WARNING", &warning),
        Err(msg) => {
            print_notices();
            print_message("ALERT", &msg);
            return Err(ExitCode::from(1));
        }
    }
    match bind_and_enable(w) {
        Ok(()) => {}
        Err(InitError::Bind(msg)) => {
            print_notices();
            for line in msg.lines() {
                print_message("ALERT", line);
            }
            print_message(
                "ALERT",
                "[haproxy.main()] Some protocols failed to start their listeners! Exiting.",
            );
            return Err(ExitCode::from(1));
        }
        Err(e) => {
            print_message("ALERT", &format!("{e:?}"));
            return Err(ExitCode::from(1));
        }
    }
    if let Some(pidfile) = &w.global.pidfile
        && let Err(e) = std::fs::write(pidfile, format!("{}\n", std::process::id()))
    {
        print_message("ALERT", &format!("[haflow.main()] Cannot create pidfile {} : {e}", pidfile.display()));
    }
    Ok(())
}

/// Installs the trace outputs for a command that runs the proxy; the guard completes the
/// trace file when the command returns (normal exit, SIGINT or SIGTERM alike).
fn with_trace(args: &TraceArgs, f: impl FnOnce() -> ExitCode) -> ExitCode {
    let capture = args.trace_capture.then(|| {
        let (layer, cap) = crate::tui::ui_capture();
        // Stands for the UI: takes every batch as it comes and hands it back unread.
        std::thread::spawn(move || {
            while let Some(batch) = cap.recv_batch() {
                crate::trace::capture::recycle(batch);
            }
        });
        layer
    });
    match install(args, capture, true, false) {
        Ok(_guard) => f(),
        Err(e) => {
            print_message("ALERT", &e);
            ExitCode::from(1)
        }
    }
}

/// HAProxy's command line, once read (haproxy.c:init()'s `arg_mode` and friends).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HaproxyArgs {
    /// `-f FILE` (repeatable), and the files after `--`.
    pub files: Vec<PathBuf>,
    /// `-d`: foreground with debug lines (`MODE_DEBUG`).
    pub debug: bool,
    /// `-db`: foreground without background mode (haflow always runs in the foreground).
    pub foreground: bool,
    /// `-c`: check the configuration and exit.
    pub check: bool,
    /// `-q`: quiet.
    pub quiet: bool,
    /// `-V`: verbose (cancels quiet).
    pub verbose: bool,
    /// `-v` (1) or `-vv` (2): print the version and exit.
    pub version: u8,
    /// `-p PIDFILE`.
    pub pidfile: Option<PathBuf>,
    /// `-cc EXPR`: evaluate a condition and exit.
    pub cond: Option<String>,
    /// `-n MAXCONN`.
    pub maxconn: Option<u32>,
    /// `-C DIR`: change to this directory before reading the files.
    pub chdir: Option<PathBuf>,
    /// `-sf PID...` / `-st PID...`: old processes to take the ports from.
    pub oldpids: OldPids,
    /// `-dR`: do not set `SO_REUSEPORT` on listeners.
    pub noreuseport: bool,
    /// `-dS`: no kernel splicing (`nosplice`).
    pub nosplice: bool,
    /// Options accepted and ignored, to be reported (`-D`, `-W`...).
    pub ignored: Vec<String>,
}

/// The usage text of `haproxy -h` (on stderr), haflow's way.
pub const HAPROXY_USAGE: &str =
    "Usage : haflow [-f <cfgfile|cfgdir>]* [ -vdVD ] [ -n <maxconn> ] [ -N <maxpconn> ]
        [ -p <pidfile> ] [ -m <max megs> ] [ -C <dir> ] [-- <cfgfile>*]
        -v displays version ; -vv shows known build options.
        -d enters debug mode ; -db only disables background mode.
        -dM[<byte>,help,...] debug memory (accepted, ignored)
        -V enters verbose mode (disables quiet mode)
        -D goes daemon (accepted, haflow stays in the foreground)
        -W master-worker mode (accepted, ignored).
        -q quiet mode : don't display messages
        -c check mode : only check config files and exit
        -cc check condition : evaluate a condition and exit
        -n sets the maximum total # of connections (uses ulimit -n)
        -m limits the usable amount of memory (in MB) (accepted, ignored)
        -N sets the default, per-proxy maximum # of connections (accepted, ignored)
        -L set local peer name (accepted, ignored)
        -p writes pids of all children to this file
        -dR disables SO_REUSEPORT usage
        -dS disables splice usage (broken on old kernels)
        -de, -dp, -dG, -dr, -dV, -dW, -dD, -dI accepted and ignored
        -sf/-st [pid ]* finishes/terminates old pids.
        -x <unix_socket>, -S <bind> accepted and ignored
    or: haflow <run|check> ... (see haflow --help)
";

/// Reads HAProxy's command line (everything after the program name).
pub fn parse_haproxy_args(args: &[String]) -> Result<HaproxyArgs, String> {
    let mut a = HaproxyArgs::default();
    let mut i = 0;
    let value = |i: &mut usize, flag: &str| -> Result<String, String> {
        *i += 1;
        args.get(*i).cloned().ok_or_else(|| format!("option '{flag}' expects an argument"))
    };
    while i < args.len() {
        let arg = args[i].as_str();
        match arg {
            "--" => {
                a.files.extend(args[i + 1..].iter().map(PathBuf::from));
                break;
            }
            "-f" => a.files.push(value(&mut i, arg)?.into()),
            "-d" => a.debug = true,
            "-db" => a.foreground = true,
            "-c" => a.check = true,
            "-cc" => a.cond = Some(value(&mut i, arg)?),
            "-q" => a.quiet = true,
            "-V" => a.verbose = true,
            "-v" => a.version = a.version.max(1),
            "-vv" => a.version = 2,
            "-p" => a.pidfile = Some(value(&mut i, arg)?.into()),
            "-n" => {
                a.maxconn =
                    Some(value(&mut i, arg)?.parse().map_err(|_| "'-n' expects a number".to_string())?)
            }
            "-C" => a.chdir = Some(value(&mut i, arg)?.into()),
            "-m" | "-N" | "-L" | "-S" | "-x" => {
                value(&mut i, arg)?;
                a.ignored.push(arg.into());
            }
            "-sf" | "-st" => {
                // haproxy.c:init() in 2.6: the pids are the arguments up to the next option.
                a.oldpids.sig = if arg == "-sf" { libc::SIGUSR1 } else { libc::SIGTERM };
                while let Some(p) = args.get(i + 1).filter(|p| !p.starts_with('-')) {
                    match p.parse::<i32>() {
                        Ok(pid) if pid > 0 => a.oldpids.pids.push(pid),
                        _ => return Err(format!("'{arg}' expects process ids, not '{p}'")),
                    }
                    i += 1;
                }
            }
            "-dR" => a.noreuseport = true,
            "-dS" => a.nosplice = true,
            "-D" | "-W" | "-Ws" => a.ignored.push(arg.into()),
            a2 if a2.starts_with("-d") && a2.len() > 2 => a.ignored.push(a2.into()),
            other => return Err(format!("unknown option '{other}'")),
        }
        i += 1;
    }
    Ok(a)
}

/// The `uname -srvm` line of `-v`.
fn running_on() -> String {
    // SAFETY: uname fills a plain struct we own.
    let u = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return String::new();
        }
        u
    };
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{} {} {} {}", field(&u.sysname), field(&u.release), field(&u.version), field(&u.machine))
}

/// haproxy.c:display_version() and display_build_opts(): `-v` and `-vv`, HAProxy's
/// layout, saying haflow.
pub fn version_text(level: u8) -> String {
    let v = env!("CARGO_PKG_VERSION");
    let mut out = format!(
        "haflow version {v} - HAProxy 1.5's insides, HAProxy 2.6's behaviour
Status: development version.
Known bugs: none listed.
Running on: {}
",
        running_on()
    );
    if level >= 2 {
        let t = crate::haproxy::haproxy::Tune::default();
        out.push_str(&format!(
            "Build options :
  TARGET  = {}-{}
  CPU     = generic
  CC      = rustc
  OPTIONS = USE_PCRE2=1 USE_PCRE2_JIT=1

Feature list : {}

Default settings :
  bufsize = {}, maxrewrite = {}, maxpollevents = {}

Built without multi-threading support (one event-loop thread).
{}
Available polling systems :
      epoll : pref=300,  test result OK
Total: 1 (1 usable), will use epoll.

Available multiplexer protocols :
(protocols marked as <default> cannot be specified using 'proto' keyword)
  <default> : mode=HTTP  side=FE|BE  mux=H1    flags=
  <default> : mode=TCP   side=FE|BE  mux=PASS  flags=

Available services : none

Available filters : none
",
            std::env::consts::OS,
            std::env::consts::ARCH,
            crate::haproxy::cfgcond::BUILD_FEATURES,
            t.bufsize,
            t.maxrewrite.unwrap_or(1024),
            t.maxpollevents,
            crate::haproxy::regex::pcre2_build_info(),
        ));
    }
    out
}

/// Expands a `-f` directory into its `*.cfg` files, in name order (as HAProxy does).
fn expand_cfg_paths(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for f in files {
        match std::fs::read_dir(f) {
            Ok(rd) if f.is_dir() => {
                let mut v: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
                    .collect();
                v.sort();
                out.extend(v);
            }
            _ => out.push(f.clone()),
        }
    }
    out
}

/// haproxy.c:main() for HAProxy's command line: `-v`, `-cc`, `-c`, or run in the
/// foreground (`-d` adds the debug lines).
pub fn haproxy_main(args: &[String]) -> ExitCode {
    // `-h`: HAProxy's usage (haproxy.c:usage(), which exits 1), without an ALERT.
    if args.first().is_some_and(|a| a == "-h") {
        eprint!("{HAPROXY_USAGE}");
        return ExitCode::from(1);
    }
    let a = match parse_haproxy_args(args) {
        Ok(a) => a,
        Err(e) => {
            print_message("ALERT", &e);
            eprint!("{HAPROXY_USAGE}");
            return ExitCode::from(1);
        }
    };
    if a.version > 0 {
        say!("{}", version_text(a.version).trim_end());
        return ExitCode::SUCCESS;
    }
    if let Some(expr) = &a.cond {
        return match crate::haproxy::cfgcond::cfg_eval_condition(expr, &env_lookup) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                print_message("ALERT", &format!("Failed to evaluate condition: {e}"));
                ExitCode::from(2)
            }
        };
    }
    if let Some(dir) = &a.chdir
        && let Err(e) = std::env::set_current_dir(dir)
    {
        print_message("ALERT", &format!("Cannot chdir to {} : {e}", dir.display()));
        return ExitCode::from(1);
    }
    if a.files.is_empty() {
        say!("{}", version_text(1).trim_end());
        eprint!("{HAPROXY_USAGE}");
        return ExitCode::from(1);
    }
    let files = expand_cfg_paths(&a.files);
    let quiet = a.quiet && !a.verbose;
    if a.check {
        return check(&CheckArgs { files, quiet });
    }
    let cfg = match readcfgfile(&files, &env_lookup) {
        Ok(c) => c,
        Err(diag) => {
            print_diag(&diag, quiet);
            return ExitCode::from(1);
        }
    };
    print_diag(&Diag { alerts: vec![], warnings: cfg.warnings.clone() }, quiet);
    let mut w = match Haproxy::new(cfg) {
        Ok(w) => w,
        Err(e) => {
            print_message("ALERT", &format!("cannot create the poller: {e}"));
            return ExitCode::from(1);
        }
    };
    w.global.debug |= a.debug;
    w.global.quiet |= quiet;
    w.global.noreuseport |= a.noreuseport;
    w.global.tune.use_splice &= !a.nosplice;
    w.oldpids = a.oldpids.clone();
    if let Some(n) = a.maxconn {
        w.global.maxconn = n;
    }
    if let Some(p) = &a.pidfile {
        w.global.pidfile = Some(p.clone());
    }
    if a.debug || a.verbose {
        say!("Using epoll() as the polling mechanism.");
    }
    serve(&mut w)
}

/// `haflow walkthrough`: the walkthrough screen, or (`--print`) every step as text.
fn walkthrough(a: &WalkthroughArgs) -> ExitCode {
    crate::trace::subscriber::install_routed_global();
    if !a.print {
        return crate::tui::walkthrough::run();
    }
    match crate::walkthrough::print(&mut PipeTolerant(std::io::stdout().lock())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_message("ALERT", &e);
            ExitCode::from(1)
        }
    }
}

/// The entry point of the binary; returns the exit code.
pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    // HAProxy's flags are single-dash and multi-letter (`-db`, `-vv`, `-dM`, `-cc`), with
    // values in the next word (`-f FILE`, `-p FILE`): clap models neither, so a command
    // line that starts with a dash (other than clap's `--help`/`--version`) is read the
    // way haproxy.c:init() reads it, and the subcommands stay with clap.
    if let Some(first) = argv.get(1)
        && first.starts_with('-')
        && !matches!(first.as_str(), "--help" | "--version")
    {
        return with_trace(&TraceArgs::default(), || haproxy_main(&argv[1..]));
    }
    let cli = Cli::parse();
    match &cli.cmd {
        // The UI owns the terminal: its capture layer is the only subscriber.
        Cmd::Run(a) if a.tui => run_tui(a),
        Cmd::Run(a) => with_trace(&a.trace, || run(a)),
        Cmd::Check(a) => with_trace(&TraceArgs::default(), || check(a)),
        Cmd::Scenario(c) => scenario::main(c),
        Cmd::Walkthrough(a) => walkthrough(a),
        Cmd::Replay(a) => crate::tui::replay::run(&a.file, a.speed),
        Cmd::Demo(a) => {
            crate::demo::main(a.duration.map(Duration::from_secs), Duration::from_secs(a.every.max(1)))
        }
    }
}
