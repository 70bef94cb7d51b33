//! Trace outputs chosen on the command line: the Chrome/Perfetto file, its level and its
//! filter, the capture layer for the UI, and warnings on stderr.
//!
//! `--trace FILE` writes the spans with tracing-chrome. `--trace-style session` (the
//! default) records each span as an async slice grouped by its root span, so every
//! session gets its own track and reads left to right from `stream_sock_accept` to
//! `session_free`; `--trace-style loop` records the single event-loop thread's timeline
//! instead (what the thread did, when). `--trace-level` follows HAProxy's trace levels
//! (`user`: session life; `proto`: analysers and I/O; `state`: also the state machines;
//! `developer`: also pools, tasks and poll iterations) and `--trace-filter` keeps only one
//! session, frontend or backend, so a trace of a busy proxy stays readable.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, ValueEnum};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::trace::capture::CaptureLayer;
use crate::trace::names;

/// How spans are laid out in the Chrome trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum TraceStyle {
    /// One track per session (async slices grouped by the session's root span).
    #[default]
    Session,
    /// The event-loop thread's timeline.
    Loop,
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
    names::ASSIGN_SERVER,
    names::PENDCONN_ADD,
    names::PROCESS_SRV_QUEUE,
    names::STREAM_SOCK_SHUTR,
    names::STREAM_SOCK_SHUTW,
    names::LISTENER_FULL,
    names::LIMIT_LISTENER,
    names::RESUME_LISTENER,
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

    /// Whether a span or event with this metadata is kept at this level.
    pub fn keeps(self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max_level()
            && !(self == TraceLevel::Proto && STATE_SPANS.contains(&meta.name()))
    }
}

/// `--trace-filter`: keep one session, frontend or backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceFilter {
    /// `sess=N`: the session whose `uniq_id` is N.
    Session(u32),
    /// `fe=NAME`: sessions accepted by this frontend.
    Frontend(String),
    /// `be=NAME`: sessions once they are assigned to this backend (HAProxy's
    /// `lock backend`: what happened before the backend was known is not shown).
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
    /// Keep only `sess=N`, `fe=NAME` or `be=NAME`.
    #[arg(long, value_name = "FILTER")]
    pub trace_filter: Option<TraceFilter>,
    /// Include source file and line of each span in the trace.
    #[arg(long)]
    pub trace_locations: bool,
}

/// Keeps the trace file open; dropping it completes the JSON (`]`) and closes the file.
pub struct TraceGuard {
    _chrome: Option<tracing_chrome::FlushGuard>,
}

/// Per-span decision stored in the span's extensions.
struct Forwarded;

/// What a session tree's root knows about the filter.
struct RootMatch(AtomicBool);

/// Forwards span callbacks to `inner` only for the session trees `filter` selects.
pub struct TreeFilter<L> {
    inner: L,
    filter: Option<TraceFilter>,
}

struct FieldFinder<'a> {
    name: &'a str,
    found: Option<String>,
}

impl tracing::field::Visit for FieldFinder<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == self.name {
            self.found = Some(format!("{value:?}"));
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == self.name {
            self.found = Some(value.to_string());
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == self.name {
            self.found = Some(value.to_string());
        }
    }
}

fn find(values: &dyn Fn(&mut FieldFinder<'_>), name: &str) -> Option<String> {
    let mut f = FieldFinder { name, found: None };
    values(&mut f);
    f.found
}

impl<S, L> Layer<S> for TreeFilter<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(filter) = &self.filter else {
            return self.inner.on_new_span(attrs, id, ctx);
        };
        let Some(span) = ctx.span(id) else { return };
        let matched = match span.scope().from_root().next() {
            Some(root) if root.id() == *id => {
                // A new tree: only session trees can match.
                let m = attrs.metadata().name() == names::SESSION
                    && match filter {
                        TraceFilter::Session(n) => find(&|f| attrs.record(f), "sess") == Some(n.to_string()),
                        TraceFilter::Frontend(fe) => find(&|f| attrs.record(f), "fe").as_deref() == Some(fe),
                        TraceFilter::Backend(_) => false,
                    };
                span.extensions_mut().insert(RootMatch(AtomicBool::new(m)));
                m
            }
            Some(root) => {
                let ext = root.extensions();
                let Some(rm) = ext.get::<RootMatch>() else { return };
                if let TraceFilter::Backend(be) = filter
                    && find(&|f| attrs.record(f), "backend").as_deref() == Some(be)
                {
                    rm.0.store(true, Ordering::Relaxed);
                }
                rm.0.load(Ordering::Relaxed)
            }
            None => false,
        };
        if matched {
            span.extensions_mut().insert(Forwarded);
            drop(span);
            self.inner.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if self.filter.is_none() {
            return self.inner.on_record(id, values, ctx);
        }
        let Some(span) = ctx.span(id) else { return };
        if let Some(TraceFilter::Backend(be)) = &self.filter
            && find(&|f| values.record(f), "backend").as_deref() == Some(be)
            && let Some(root) = span.scope().from_root().next()
            && let Some(rm) = root.extensions().get::<RootMatch>()
        {
            rm.0.store(true, Ordering::Relaxed);
        }
        let forwarded = span.extensions().get::<Forwarded>().is_some();
        drop(span);
        if forwarded {
            self.inner.on_record(id, values, ctx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if self.filter.is_none() || ctx.span(id).is_some_and(|s| s.extensions().get::<Forwarded>().is_some())
        {
            self.inner.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if self.filter.is_none() || ctx.span(id).is_some_and(|s| s.extensions().get::<Forwarded>().is_some())
        {
            self.inner.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if self.filter.is_none() || ctx.span(&id).is_some_and(|s| s.extensions().get::<Forwarded>().is_some())
        {
            self.inner.on_close(id, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if self.filter.is_none()
            || ctx.event_span(event).is_some_and(|s| s.extensions().get::<Forwarded>().is_some())
        {
            self.inner.on_event(event, ctx);
        }
    }
}

/// Installs the process-wide subscriber: the capture layer (if any), the Chrome file (if
/// `--trace`), and warnings on stderr (unless a UI owns the terminal). Returns the guard
/// that completes the trace file when dropped.
pub fn install(args: &TraceArgs, capture: Option<CaptureLayer>, stderr: bool) -> Result<TraceGuard, String> {
    let level = args.trace_level;
    let (chrome, guard) = match &args.trace {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| format!("cannot create trace file {}: {e}", path.display()))?;
            let (layer, guard) = tracing_chrome::ChromeLayerBuilder::new()
                .writer(file)
                .include_args(true)
                .include_locations(args.trace_locations)
                .trace_style(match args.trace_style {
                    TraceStyle::Session => tracing_chrome::TraceStyle::Async,
                    TraceStyle::Loop => tracing_chrome::TraceStyle::Threaded,
                })
                .build();
            let layer = TreeFilter { inner: layer, filter: args.trace_filter.clone() }
                .with_filter(FilterFn::new(move |meta| level.keeps(meta)));
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let warnings = stderr.then(|| {
        let env = tracing_subscriber::EnvFilter::try_from_env("HAFLOW_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(env)
    });
    let subscriber = tracing_subscriber::registry().with(capture).with(chrome).with(warnings);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| format!("cannot install the trace subscriber: {e}"))?;
    Ok(TraceGuard { _chrome: guard })
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
