//! Trace outputs chosen on the command line: the Chrome/Perfetto file, its level and its
//! filter, the capture layer for the UI, and warnings on stderr.
//!
//! `--trace FILE` writes the spans as Chrome trace-event JSON (`trace::chrome`, fed by
//! haflow's own subscriber, `trace::subscriber`). `--trace-style session` (the
//! default) records each span as an async slice grouped by its root span, so every
//! session gets its own track and reads left to right from `stream_sock_accept` to
//! `session_free`; `--trace-style loop` records the single event-loop thread's timeline
//! instead (what the thread did, when). `--trace-level` follows HAProxy's trace levels
//! (`user`: session life; `proto`: analysers and I/O; `state`: also the state machines;
//! `developer`: also pools, tasks and poll iterations) and `--trace-filter` keeps only one
//! session, frontend or backend, so a trace of a busy proxy stays readable.
//!
//! `--trace-writer tracing-chrome` writes the file through the ecosystem's reference
//! instead: tracing-subscriber's registry, with haflow's subscriber as one of its layers
//! (the UI and the runtime traces still see every span) and tracing-chrome's layer beside
//! it, filtered to the same level. `both` writes the two files from the same spans; a test
//! compares their span trees, so tracing-chrome checks haflow's writer on every run.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, ValueEnum};
use tracing::Level;

use crate::trace::capture::{Sink, lossless};
use crate::trace::chrome::{TraceGuard, start_writer};
use crate::trace::names;
use crate::trace::subscriber::{FlowSubscriber, Route, install_global, install_global_with};
use tracing_chrome::ChromeLayerBuilder;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;

/// How spans are laid out in the Chrome trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum TraceStyle {
    /// One track per session (async slices grouped by the session's root span).
    #[default]
    Session,
    /// The event-loop thread's timeline.
    Loop,
}

/// Which writer makes the `--trace` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum TraceWriter {
    /// haflow's own: its subscriber's record batches, written on a thread of their own.
    #[default]
    Haflow,
    /// tracing-subscriber's registry and tracing-chrome's layer, the ecosystem's reference
    /// (several times dearer per span; `--trace-filter` is haflow's writer's alone).
    TracingChrome,
    /// Both, from the same spans: FILE by haflow's writer and FILE with the extension
    /// `.tracing-chrome.json` by tracing-chrome, to compare them.
    Both,
}

/// Where `--trace-writer both` has tracing-chrome write, beside `path`.
pub fn reference_path(path: &std::path::Path) -> PathBuf {
    path.with_extension("tracing-chrome.json")
}

/// HAProxy's trace levels, mapped onto `tracing` levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Default)]
pub enum TraceLevel {
    /// Session life: accept, sessions, start-up (`INFO`).
    User,
    /// Plus the analysers and the I/O callbacks (`DEBUG`, without state machines).
    Proto,
    /// Plus the stream-interface and listener state machines (all of `DEBUG`).
    #[default]
    State,
    /// Plus pools, tasks and poll iterations (`TRACE`).
    Developer,
}

/// Spans that belong to the `state` level rather than `proto`: state-machine steps.
pub const STATE_SPANS: &[&str] = &[
    names::SESS_PREPARE_CONN_REQ,
    names::SESS_UPDATE_STREAM_INT,
    names::SESS_UPDATE_ST_CON_TCP,
    names::SESS_UPDATE_ST_CER,
    names::SESS_ESTABLISH,
    names::HTTP_RESYNC_STATES,
    names::ASSIGN_SERVER,
    names::CONN_BACKEND_GET,
    names::SRV_ADD_TO_IDLE_LIST,
    names::SRV_CLEANUP_IDLE_CONNS,
    names::PENDCONN_ADD,
    names::PROCESS_SRV_QUEUE,
    names::STREAM_SOCK_SHUTR,
    names::STREAM_SOCK_SHUTW,
    names::LISTENER_FULL,
    names::LIMIT_LISTENER,
    names::RESUME_LISTENER,
    names::MANAGE_GLOBAL_LISTENER_QUEUE,
];

impl TraceLevel {
    /// The most verbose `tracing` level kept.
    pub fn max_level(self) -> Level {
        match self {
            TraceLevel::User => Level::INFO,
            TraceLevel::Proto | TraceLevel::State => Level::DEBUG,
            TraceLevel::Developer => Level::TRACE,
        }
    }
}

/// `--trace-filter`: keep one session, frontend or backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceFilter {
    /// `sess=N`: the session whose `uniq_id` is N.
    Session(u32),
    /// `fe=NAME`: sessions accepted by this frontend.
    Frontend(String),
    /// `be=NAME`: sessions that reach this backend, whole: the writer holds a session's
    /// events back until its backend is known, then writes them or drops them.
    Backend(String),
}

impl FromStr for TraceFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some(("sess" | "session", v)) => {
                v.parse().map(TraceFilter::Session).map_err(|_| format!("'{v}' is not a session number"))
            }
            Some(("fe" | "frontend", v)) if !v.is_empty() => Ok(TraceFilter::Frontend(v.to_string())),
            Some(("be" | "backend", v)) if !v.is_empty() => Ok(TraceFilter::Backend(v.to_string())),
            _ => Err(format!("'{s}': expected sess=N, fe=NAME or be=NAME")),
        }
    }
}

/// The trace options shared by every command that runs the proxy.
#[derive(Clone, Debug, Default, Args)]
pub struct TraceArgs {
    /// Write a Chrome/Perfetto trace of the call flow to FILE (open it in ui.perfetto.dev).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// `session`: one track per session; `loop`: the event-loop thread's timeline.
    #[arg(long, value_enum, default_value_t = TraceStyle::Session, value_name = "STYLE")]
    pub trace_style: TraceStyle,
    /// HAProxy's trace levels: user, proto, state, developer.
    #[arg(long, value_enum, default_value_t = TraceLevel::State, value_name = "LEVEL")]
    pub trace_level: TraceLevel,
    /// The writer: haflow's own (the default), tracing-chrome (through
    /// tracing-subscriber's registry), or both (FILE and FILE.tracing-chrome.json).
    #[arg(long, value_enum, default_value_t = TraceWriter::Haflow, value_name = "WRITER", requires = "trace")]
    pub trace_writer: TraceWriter,
    /// Keep only `sess=N`, `fe=NAME` or `be=NAME`.
    #[arg(long, value_name = "FILTER")]
    pub trace_filter: Option<TraceFilter>,
    /// Benchmarking aid: feed the capture layer (the UI's feed) to a consumer that
    /// discards the records, to measure what watching costs the proxy.
    #[arg(long, hide = true)]
    pub trace_capture: bool,
}

/// Installs the process-wide subscriber: the capture feed (if any, at every level), the
/// trace file (if `--trace`, at `--trace-level`), and warnings on stderr (unless a UI owns
/// the terminal; `HAFLOW_LOG=info|debug|...` makes them more verbose); `routed` lets proxy
/// threads add feeds of their own (the scenario runner's). Returns the guard that
/// completes the trace file when dropped.
pub fn install(
    args: &TraceArgs,
    capture: Option<Sink>,
    stderr: bool,
    routed: bool,
) -> Result<Option<TraceGuard>, String> {
    let mut routes = Vec::new();
    if let Some(sink) = capture {
        routes.push(Route { sink, max: Level::TRACE });
    }
    let (ours, reference) = match (&args.trace, args.trace_writer) {
        (None, _) => (None, None),
        (Some(p), TraceWriter::Haflow) => (Some(p), None),
        (Some(p), TraceWriter::TracingChrome) => (None, Some(p.clone())),
        (Some(p), TraceWriter::Both) => (Some(p), Some(reference_path(p))),
    };
    if reference.is_some() && args.trace_filter.is_some() {
        return Err(
            "--trace-filter is applied by haflow's trace writer only: drop it, or --trace-writer".into()
        );
    }
    let guard = match ours {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| format!("cannot create trace file {}: {e}", path.display()))?;
            let (sink, feed) = lossless();
            routes.push(Route { sink: sink.clone(), max: args.trace_level.max_level() });
            Some(start_writer(
                file,
                feed,
                sink,
                args.trace_style,
                args.trace_level,
                args.trace_filter.clone(),
            ))
        }
        None => None,
    };
    let stderr_level = stderr.then(|| match std::env::var("HAFLOW_LOG").as_deref() {
        Ok("error") => Level::ERROR,
        Ok("info") => Level::INFO,
        Ok("debug") => Level::DEBUG,
        Ok("trace") => Level::TRACE,
        _ => Level::WARN,
    });
    let sub = FlowSubscriber::new(routes, routed, stderr_level);
    let Some(path) = reference else {
        if !install_global(sub) {
            return Err("a trace subscriber is already installed".into());
        }
        return Ok(guard);
    };
    let file = std::fs::File::create(&path)
        .map_err(|e| format!("cannot create trace file {}: {e}", path.display()))?;
    let (layer, flush) = ChromeLayerBuilder::new()
        .writer(file)
        .include_args(true)
        .include_locations(false)
        .trace_style(match args.trace_style {
            TraceStyle::Session => tracing_chrome::TraceStyle::Async,
            TraceStyle::Loop => tracing_chrome::TraceStyle::Threaded,
        })
        .build();
    // The spans haflow's writer would write at this level (events it does not write).
    let level = args.trace_level;
    let layer = layer.with_filter(filter_fn(move |meta| {
        meta.is_span()
            && *meta.level() <= level.max_level()
            && !(level == TraceLevel::Proto && STATE_SPANS.contains(&meta.name()))
    }));
    if !install_global_with(sub, layer) {
        return Err("a trace subscriber is already installed".into());
    }
    Ok(Some(TraceGuard::completing(guard, flush)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!("sess=3".parse::<TraceFilter>(), Ok(TraceFilter::Session(3)));
        assert_eq!("fe=web".parse::<TraceFilter>(), Ok(TraceFilter::Frontend("web".into())));
        assert_eq!("be=api".parse::<TraceFilter>(), Ok(TraceFilter::Backend("api".into())));
        assert!("sess=x".parse::<TraceFilter>().is_err());
        assert!("foo".parse::<TraceFilter>().is_err());
    }

    #[test]
    fn levels_nest_like_haproxy() {
        assert!(TraceLevel::User < TraceLevel::Proto && TraceLevel::State < TraceLevel::Developer);
        assert_eq!(TraceLevel::Proto.max_level(), Level::DEBUG);
        assert_eq!(TraceLevel::Developer.max_level(), Level::TRACE);
    }
}
