//! `haflow walkthrough`: one HTTP session through haflow, paused at each step of the
//! walkthrough (`walkthrough/NN-*.md`) with the proxy's state at that moment.
//!
//! The steps' texts are embedded from `walkthrough/`, the single source the book also
//! includes. Each names the span where it stops (`- Stops at: `span {field=value}``).
//! The proxy code marks the places where a step can stop with `haproxy::step_point`,
//! right after entering the step's span; the call costs one atomic load unless a
//! walkthrough runs. While one runs, its `Stepper`, an `Observer` registered on the proxy
//! thread, checks whether the point is the next step's (span name, and the field
//! condition against the span's recorded fields), copies the state the point shows (the
//! session, its stream interfaces and buffers, or the listeners at start-up) with the
//! stack of entered spans, hands it to the UI and waits for the UI's word: the whole proxy
//! is paused, as in a debugger.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::mpsc::{Receiver, Sender};

use crate::haproxy::buffers::Buffer;
use crate::haproxy::haproxy::{Observer, View};
use crate::haproxy::listener::Listener;
use crate::trace::capture::{Capture, Field2, Record};
use crate::trace::names;
use crate::trace::subscriber::{entered_spans, flush_thread};

/// The step files, in order.
pub const FILES: &[(&str, &str)] = &[
    ("01-protocol.md", include_str!("../walkthrough/01-protocol.md")),
    ("02-listener.md", include_str!("../walkthrough/02-listener.md")),
    ("03-bind.md", include_str!("../walkthrough/03-bind.md")),
    ("04-enable.md", include_str!("../walkthrough/04-enable.md")),
    ("05-accept.md", include_str!("../walkthrough/05-accept.md")),
    ("06-read.md", include_str!("../walkthrough/06-read.md")),
    ("07-process-session.md", include_str!("../walkthrough/07-process-session.md")),
    ("08-http-request.md", include_str!("../walkthrough/08-http-request.md")),
    ("09-connect.md", include_str!("../walkthrough/09-connect.md")),
    ("10-write.md", include_str!("../walkthrough/10-write.md")),
    ("11-establish.md", include_str!("../walkthrough/11-establish.md")),
    ("12-http-response.md", include_str!("../walkthrough/12-http-response.md")),
    ("13-keep-alive.md", include_str!("../walkthrough/13-keep-alive.md")),
    ("14-session-end.md", include_str!("../walkthrough/14-session-end.md")),
];

/// The scenario the walkthrough runs (`scenarios/walkthrough.toml`).
pub const SCENARIO: &str = "walkthrough";

/// A condition on a span's fields: `{side=cli}`, `{bytes!=0}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// The field has this value.
    Eq(String, String),
    /// The field has another value.
    Ne(String, String),
}

impl Cond {
    fn holds(&self, fields: &[Field2]) -> bool {
        let get = |k: &str| fields.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        match self {
            Cond::Eq(k, v) => get(k) == Some(v.as_str()),
            Cond::Ne(k, v) => get(k).is_some_and(|x| x != v),
        }
    }
}

/// One step.
#[derive(Clone, Debug)]
pub struct Step {
    /// 1-based.
    pub number: usize,
    /// The file name in `walkthrough/`.
    pub file: &'static str,
    /// The title (the `## Step N: ...` line without its marks).
    pub title: String,
    /// The whole text.
    pub text: &'static str,
    /// The span where it stops.
    pub span: String,
    /// Which run of the span, when it runs several times.
    pub cond: Option<Cond>,
}

/// Reads a `Stops at:` value: `span` or `span {field=value}` / `{field!=value}`.
pub fn parse_stop(s: &str) -> Option<(String, Option<Cond>)> {
    let s = s.trim();
    let Some((span, rest)) = s.split_once(' ') else {
        return (!s.is_empty()).then(|| (s.to_string(), None));
    };
    let inner = rest.trim().strip_prefix('{')?.strip_suffix('}')?;
    let cond = match inner.split_once("!=") {
        Some((k, v)) => Cond::Ne(k.trim().into(), v.trim().into()),
        None => {
            let (k, v) = inner.split_once('=')?;
            Cond::Eq(k.trim().into(), v.trim().into())
        }
    };
    Some((span.to_string(), Some(cond)))
}

/// Parses one step file; `Err` says what is wrong with it.
pub fn parse_step(number: usize, file: &'static str, text: &'static str) -> Result<Step, String> {
    let first = text.lines().next().unwrap_or("");
    let title = first
        .strip_prefix("## Step ")
        .and_then(|t| t.split_once(": "))
        .map(|(_, t)| t.trim().to_string())
        .ok_or_else(|| format!("{file}: the first line is not `## Step N: title`"))?;
    let stop = text
        .lines()
        .find_map(|l| l.strip_prefix("- Stops at: `")?.strip_suffix('`'))
        .ok_or_else(|| format!("{file}: no `- Stops at: `span`` line"))?;
    let (span, cond) = parse_stop(stop).ok_or_else(|| format!("{file}: cannot read `Stops at: {stop}`"))?;
    Ok(Step { number, file, title, text, span, cond })
}

/// Every step, in order.
pub fn steps() -> Result<Vec<Step>, String> {
    FILES.iter().enumerate().map(|(i, (f, t))| parse_step(i + 1, f, t)).collect()
}

/// What the UI answers at a stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Run to the next step.
    Next,
    /// Run to the end without stopping.
    Continue,
}

/// A step reached, with the state at that moment.
#[derive(Clone, Debug)]
pub struct Stop {
    /// Which step (index into `steps()`).
    pub index: usize,
    /// The span entered, with its fields as recorded so far.
    pub span: String,
    /// The entered spans, outermost first, each as a listing line.
    pub stack: Vec<String>,
    /// The state, as titled groups of lines.
    pub state: Vec<(String, Vec<String>)>,
}

impl Stop {
    /// The stop as text: the stack, then the state.
    pub fn render(&self) -> Vec<String> {
        let mut out = vec!["span stack (outermost first):".to_string()];
        for (depth, s) in self.stack.iter().enumerate() {
            out.push(format!("  {}{s}", "  ".repeat(depth)));
        }
        for (title, lines) in &self.state {
            out.push(format!("{title}:"));
            out.extend(lines.iter().map(|l| format!("  {l}")));
        }
        out
    }
}

/// The stepper that stops at each of `steps`, to register on the proxy thread: it reads
/// the span records from `feed` (that thread's route), sends each stop on `to_ui` and waits
/// for `from_ui`.
pub fn stepper(steps: Vec<Step>, feed: Capture, to_ui: Sender<Stop>, from_ui: Receiver<Resume>) -> Stepper {
    Stepper { steps, next: 0, stepping: true, feed, open: HashMap::new(), to_ui, from_ui }
}

struct OpenSpan {
    name: &'static str,
    fields: Vec<Field2>,
}

/// The walkthrough's observer: stops the proxy at each step's step point.
pub struct Stepper {
    steps: Vec<Step>,
    next: usize,
    stepping: bool,
    feed: Capture,
    /// Spans of this thread not closed yet.
    open: HashMap<u64, OpenSpan>,
    to_ui: Sender<Stop>,
    from_ui: Receiver<Resume>,
}

impl Stepper {
    fn absorb(&mut self) {
        flush_thread();
        for r in self.feed.try_iter() {
            match r {
                Record::New { id, name, fields, .. } => {
                    self.open.insert(id, OpenSpan { name, fields });
                }
                Record::Update { id, fields } => {
                    if let Some(o) = self.open.get_mut(&id) {
                        o.fields.extend(fields);
                    }
                }
                Record::Close { id, .. } => {
                    self.open.remove(&id);
                }
                Record::Event { .. } => {}
            }
        }
    }

    fn line(&self, id: u64) -> Option<String> {
        let o = self.open.get(&id)?;
        let mut s = o.name.to_string();
        if !o.fields.is_empty() {
            let mut shown: Vec<(&str, &str)> = Vec::new();
            for (k, v) in &o.fields {
                match shown.iter_mut().find(|(sk, _)| sk == k) {
                    Some(e) => e.1 = v,
                    None => shown.push((k, v)),
                }
            }
            let parts: Vec<String> = shown.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = write!(s, " {{{}}}", parts.join(", "));
        }
        Some(s)
    }

    fn point(&mut self, span: &'static str, view: &View<'_>) {
        if !self.stepping || self.next >= self.steps.len() || self.steps[self.next].span != span {
            return;
        }
        self.absorb();
        let stack: Vec<u64> = entered_spans();
        // The step's span: the innermost entered span of that name.
        let Some(&id) = stack.iter().rev().find(|id| self.open.get(id).is_some_and(|o| o.name == span))
        else {
            return;
        };
        let step = &self.steps[self.next];
        if let Some(c) = &step.cond
            && !c.holds(&self.open[&id].fields)
        {
            return;
        }
        let stop = Stop {
            index: self.next,
            span: self.line(id).unwrap_or_else(|| span.to_string()),
            stack: stack.iter().filter_map(|id| self.line(*id)).collect(),
            state: state_of(view),
        };
        self.next += 1;
        if self.to_ui.send(stop).is_err() {
            self.stepping = false;
            return;
        }
        match self.from_ui.recv() {
            Ok(Resume::Next) => {}
            Ok(Resume::Continue) | Err(_) => self.stepping = false,
        }
    }
}

impl Observer for Stepper {
    fn wants_step_points(&self) -> bool {
        true
    }
    fn step_point(&mut self, span: &'static str, view: &View<'_>) {
        self.point(span, view);
    }
}

/// Up to `max` bytes of `bytes` as readable text (`\r\n` and other controls escaped).
pub fn preview(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(max) {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    if bytes.len() > max {
        let _ = write!(s, "... ({} bytes)", bytes.len());
    }
    s
}

fn buffer_lines(b: &Buffer) -> Vec<String> {
    let (out, inp) = (b.output(), b.input());
    let mut v = vec![
        format!("flags     {}", b.flags),
        format!("analysers {}", b.analysers),
        format!("o={} i={} to_forward={} size={}", b.o(), b.i(), fmt_forward(b.to_forward), b.size),
    ];
    if !out.is_empty() {
        v.push(format!("output \"{}\"", preview(out, 160)));
    }
    if !inp.is_empty() {
        v.push(format!("input  \"{}\"", preview(inp, 160)));
    }
    v
}

/// HAProxy's names of the flags set, joined by `|` (`0` when none is).
fn flag_names<F: bitflags::Flags>(f: &F) -> String {
    let names: Vec<&str> = f.iter_names().map(|(n, _)| n).collect();
    if names.is_empty() { "0".into() } else { names.join("|") }
}

fn fmt_forward(n: u64) -> String {
    if n == crate::haproxy::buffers::BUF_INFINITE_FORWARD { "infinite".into() } else { n.to_string() }
}

fn listener_line(l: &Listener, fe: &str) -> String {
    let fd = l.fd.map_or("-".to_string(), |f| f.0.to_string());
    let fe = if fe.is_empty() { String::new() } else { format!("{fe} ") };
    format!(
        "{fe}{} {:?} proto={} fd={fd} accept={} handler={} nbconn={}/{}",
        l.addr,
        l.state,
        l.proto.name,
        if l.accept.is_some() { names::SESSION_ACCEPT } else { "-" },
        if l.handler.is_some() { names::PROCESS_SESSION } else { "-" },
        l.nbconn,
        l.maxconn
    )
}

/// The state a view shows, as titled groups of lines.
fn state_of(view: &View<'_>) -> Vec<(String, Vec<String>)> {
    match view {
        View::Listener(l) => vec![("listener".into(), vec![listener_line(l, "")])],
        View::Listeners(proxies, listeners) => {
            let fe =
                |l: &Listener| proxies.get(l.frontend.idx()).map_or("?", |p| p.name.as_str()).to_string();
            vec![("listeners".into(), listeners.iter().map(|l| listener_line(l, &fe(l))).collect())]
        }
        View::Session(w, s) => {
            let px = |id: crate::ids::ProxyId| w.proxies.get(id.idx()).map_or("?", |p| p.name.as_str());
            let srv = s.srv.map_or("-".to_string(), |id| w.server(id).name.clone());
            let task = w.sched.get(s.task).map_or("-".to_string(), |t| t.state.to_string());
            let si = |i: usize| {
                let x = &s.si[i];
                format!(
                    "si[{i}] {:<10} flags={} fd={} exp={}",
                    x.state.to_string(),
                    flag_names(&x.flags),
                    x.fd.map_or("-".to_string(), |f| f.0.to_string()),
                    x.exp.map_or("-".to_string(), |e| format!(
                        "in {}ms",
                        e.0.saturating_sub(w.clock.now_ms.0)
                    ))
                )
            };
            vec![
                (
                    format!("session {}", s.uniq_id),
                    vec![
                        format!("fe={} be={} srv={srv} flags={}", px(s.fe), px(s.be), flag_names(&s.flags)),
                        format!("task state {task}"),
                        format!("term {}{}", s.err.log_char(), s.finst.log_char()),
                        si(0),
                        si(1),
                    ],
                ),
                ("req (client -> server)".into(), buffer_lines(&s.req)),
                ("rep (server -> client)".into(), buffer_lines(&s.rep)),
                // The listener keeps working beside the session (`LI_READY`, one more
                // connection in `nbconn`): step 4's result, seen from here on.
                ("listeners".into(), w.listeners.iter().map(|l| listener_line(l, px(l.frontend))).collect()),
            ]
        }
    }
}

/// A walkthrough in progress: its stops arrive on `stops`, answers go to `resume`, and
/// `driver` ends with the scenario's outcome.
pub struct Walkthrough {
    /// The steps.
    pub steps: Vec<Step>,
    /// Each step's stop, in order.
    pub stops: Receiver<Stop>,
    /// Where to answer.
    pub resume: Sender<Resume>,
    /// The thread running the scenario.
    pub driver: std::thread::JoinHandle<Result<crate::scenario::runner::Outcome, String>>,
}

/// Starts the walkthrough's scenario with the stepper on its proxy thread.
pub fn start() -> Result<Walkthrough, String> {
    let steps = steps()?;
    let entry = crate::scenario::catalog::find(SCENARIO).ok_or("the walkthrough's scenario is missing")?;
    let sc = entry.scenario()?;
    let (stop_tx, stops) = std::sync::mpsc::channel();
    let (resume, resume_rx) = std::sync::mpsc::channel();
    let (sink, feed) = crate::trace::capture::lossless();
    let for_stepper = steps.clone();
    let driver = std::thread::Builder::new()
        .name("haflow-walkthrough".into())
        .spawn(move || {
            let opts = crate::scenario::runner::RunOptions {
                also: Some(sink),
                observer: Some(Box::new(stepper(for_stepper, feed, stop_tx, resume_rx))),
                // The proxy may stay paused while the learner reads.
                patience: Some(std::time::Duration::from_secs(24 * 3600)),
                ..Default::default()
            };
            crate::scenario::runner::run(&sc, opts)
        })
        .map_err(|e| format!("cannot start the walkthrough: {e}"))?;
    Ok(Walkthrough { steps, stops, resume, driver })
}

/// `haflow walkthrough --print`: every step with the state captured when the proxy
/// stopped there, on `out`. Fails if a step was not reached or the scenario failed.
pub fn print(out: &mut impl std::io::Write) -> Result<(), String> {
    let wt = start()?;
    let total = wt.steps.len();
    let mut reached = 0;
    writeln!(
        out,
        "The walkthrough follows the article, {}; \"Article: §2.1\" is its section 2.1.\n",
        crate::scenario::spec::ARTICLE
    )
    .map_err(|e| e.to_string())?;
    while let Ok(stop) = wt.stops.recv() {
        let step = &wt.steps[stop.index];
        let io = |e: std::io::Error| e.to_string();
        writeln!(out, "==== step {}/{total}: {} ====", step.number, step.title).map_err(io)?;
        // The text without its title line, printed just above.
        let body = step.text.split_once('\n').map_or("", |(_, rest)| rest);
        writeln!(out, "{}", body.trim()).map_err(io)?;
        writeln!(out).map_err(io)?;
        writeln!(out, "stopped in: {}", stop.span).map_err(io)?;
        for l in stop.render() {
            writeln!(out, "{l}").map_err(io)?;
        }
        writeln!(out).map_err(io)?;
        reached += 1;
        let _ = wt.resume.send(Resume::Next);
    }
    let outcome = wt.driver.join().map_err(|_| "the walkthrough's scenario panicked".to_string())??;
    if reached != total {
        return Err(format!("only {reached} of {total} steps were reached"));
    }
    if !outcome.passed() {
        return Err(format!("the walkthrough's scenario failed: {}", outcome.failures.join("; ")));
    }
    Ok(())
}
