//! Runs a scenario: starts its backends and haflow on threads of this process, sends the
//! traffic, and checks what was observed (responses, log lines, the call-flow listing,
//! every pool back to zero).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::haproxy::haproxy::{Command, Haproxy, Observer, signal_name};
use crate::scenario::backends::{BackendSpec, HttpBehaviour, RunningBackend, body_pattern};
use crate::scenario::client::{Body, Conn, Request, Response, run_concurrent};
use crate::scenario::proxy::{RunningProxy, StartError, StartOptions};
use crate::scenario::spec::{Action, BackendDef, BackendKind, Scenario, Step};
use crate::scenario::websocket::WsClient;
use crate::trace::capture::{Sink, lossless};
use crate::trace::names;
use crate::trace::tree::{LISTING_FIELDS, Node, TreeBuilder, listing};

/// How long a client waits for an answer, and a wait step for its condition (unless
/// the run says otherwise).
const WAIT: Duration = Duration::from_secs(10);

/// Told each report line as it happens.
pub type Progress = Box<dyn FnMut(&str)>;

/// Options of a run.
#[derive(Default)]
pub struct RunOptions {
    /// Another observer on the proxy thread (the terminal UI's snapshot producer, the
    /// walkthrough's stepper).
    pub observer: Option<Box<dyn Observer>>,
    /// Another destination for the proxy thread's span records (the terminal UI's feed);
    /// the runner keeps its own lossless feed for the listing.
    pub also: Option<Sink>,
    /// Called with each report line as it happens (the CLI prints them at once).
    pub progress: Option<Progress>,
    /// The expected listing; a different listing is a failed expectation.
    pub golden: Option<String>,
    /// How long clients and waits wait (default 10 s; longer when the proxy may be
    /// paused by the walkthrough).
    pub patience: Option<Duration>,
}

/// What a run observed.
#[derive(Debug, Default)]
pub struct Outcome {
    /// What the clients did and got, one line per step.
    pub report: Vec<String>,
    /// The configuration as run (the backends' addresses filled in).
    pub config: String,
    /// The proxy's log lines.
    pub logs: Vec<String>,
    /// The call-flow listing of the `flow` sessions.
    pub listing: String,
    /// Expectations not met.
    pub failures: Vec<String>,
}

impl Outcome {
    /// True when every expectation was met.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A traffic log line (httplog/tcplog): it starts with the client's `address:port [`.
fn is_traffic_line(line: &str) -> bool {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^\S+:\d+ \[").expect("valid regex")).is_match(line)
}

fn backend_spec(def: &BackendDef) -> BackendSpec {
    let ms = |n: u64| (n > 0).then(|| Duration::from_millis(n));
    match def.kind {
        BackendKind::Http => BackendSpec::Http(HttpBehaviour {
            name: def.name.clone(),
            status: def.status,
            headers: def.headers.clone(),
            body_size: def.body_size,
            chunked: def.chunked,
            chunk_size: if def.chunk_size == 0 { 4096 } else { def.chunk_size },
            delay_before_headers: ms(def.delay_before_headers_ms),
            delay_mid_body: ms(def.delay_mid_body_ms),
            close_early: def.close_early,
            close_mid_body: def.close_mid_body,
            garbage: def.garbage,
            keep_alive: def.keep_alive,
            health_path: def.health_path.clone(),
        }),
        BackendKind::Echo => BackendSpec::Echo,
        BackendKind::Refuse => BackendSpec::Refuse,
        BackendKind::Blackhole => BackendSpec::BlackHole,
        BackendKind::Saturated => BackendSpec::Saturated,
        BackendKind::Websocket => BackendSpec::WebSocket,
    }
}

fn request_of(step: &Step) -> Request {
    let mut r = Request::new(&step.method, &step.path);
    for (k, v) in &step.headers {
        r = r.header(k, v);
    }
    if step.close {
        r = r.header("Connection", "close");
    }
    if step.http10 {
        r = r.http10();
    }
    r.body = if !step.chunks.is_empty() {
        Body::Chunked(step.chunks.iter().map(|n| body_pattern(*n)).collect())
    } else if let Some(text) = &step.body {
        Body::Fixed(text.clone().into_bytes())
    } else if let Some(n) = step.body_size {
        Body::Fixed(body_pattern(n))
    } else {
        Body::None
    };
    r
}

/// The state of a running scenario.
struct Run<'a> {
    sc: &'a Scenario,
    proxy: RunningProxy,
    backends: HashMap<String, RunningBackend>,
    conns: HashMap<String, Conn>,
    websockets: HashMap<String, WsClient>,
    out: Outcome,
    progress: Option<Progress>,
    patience: Duration,
}

impl Run<'_> {
    fn report(&mut self, line: String) {
        if let Some(p) = &mut self.progress {
            p(&line);
        }
        self.out.report.push(line);
    }

    fn fail(&mut self, n: usize, step: &Step, what: String) {
        self.out.failures.push(format!("step {n} ({:?}): {what}", step.action));
    }

    /// The named connection, opened on first use; `None` names a connection of its own.
    fn conn(&mut self, name: Option<&str>) -> std::io::Result<Conn> {
        match name.and_then(|n| self.conns.remove(n)) {
            Some(c) => Ok(c),
            None => Conn::connect(self.proxy.addr(&self.frontend()), self.patience),
        }
    }

    /// Gives a named connection back (a connection of a step's own is closed).
    fn keep(&mut self, name: Option<&str>, c: Conn) {
        if let Some(n) = name {
            self.conns.insert(n.to_string(), c);
        }
    }

    /// The frontend the clients connect to: the first one with a listener.
    fn frontend(&self) -> String {
        self.proxy.frontends().first().cloned().unwrap_or_default()
    }

    fn check_response(&mut self, n: usize, step: &Step, r: &Response, conn: &mut Conn) {
        if let Some(want) = step.expect_status
            && r.status != want
        {
            self.fail(n, step, format!("expected status {want}, got {}", r.status));
        }
        if let Some(want) = step.expect_body_size
            && r.body.len() != want
        {
            self.fail(n, step, format!("expected a {want}-byte body, got {}", r.body.len()));
        }
        if let Some((k, v)) = &step.expect_header
            && r.header(k) != Some(v.as_str())
        {
            self.fail(n, step, format!("expected header {k}: {v}, got {:?}", r.header(k)));
        }
        if step.expect_close && !conn.is_closed_by_peer(self.patience).unwrap_or(false) {
            self.fail(n, step, "expected the proxy to close the connection".into());
        }
    }

    fn answer(&mut self, n: usize, step: &Step, label: String, res: std::io::Result<Response>, mut c: Conn) {
        match res {
            Ok(r) => {
                let served = r.header("x-served-by").map(|s| format!(" from {s}")).unwrap_or_default();
                self.report(format!("{label} -> {} {}, {} bytes{served}", r.status, r.reason, r.body.len()));
                self.check_response(n, step, &r, &mut c);
                self.keep(step.conn.as_deref(), c);
            }
            Err(e) => {
                self.report(format!("{label} -> no response ({e})"));
                if step.expect_status.is_some() {
                    self.fail(n, step, format!("no response: {e}"));
                } else if step.expect_close && !c.is_closed_by_peer(self.patience).unwrap_or(true) {
                    self.fail(n, step, "expected the proxy to close the connection".into());
                }
            }
        }
    }

    fn step(&mut self, n: usize, step: &Step) {
        let on = step.conn.as_deref().map_or("new connection".to_string(), |c| format!("connection {c}"));
        match step.action {
            Action::Request | Action::Send => {
                let req = request_of(step);
                let label = format!("{n}. {} {} ({on})", req.method, req.path);
                let mut c = match self.conn(step.conn.as_deref()) {
                    Ok(c) => c,
                    Err(e) => return self.fail(n, step, format!("cannot connect: {e}")),
                };
                if step.action == Action::Send {
                    match c.send(&req) {
                        Ok(()) => self.report(format!("{label}: sent")),
                        Err(e) => self.fail(n, step, format!("send: {e}")),
                    }
                    return self.keep(step.conn.as_deref(), c);
                }
                let res = c.request(&req);
                self.answer(n, step, label, res, c);
            }
            Action::Read => {
                let label = format!("{n}. read ({on})");
                let mut c = match self.conn(step.conn.as_deref()) {
                    Ok(c) => c,
                    Err(e) => return self.fail(n, step, format!("cannot connect: {e}")),
                };
                if step.expect_status.is_none() && step.expect_close {
                    let closed = c.is_closed_by_peer(self.patience).unwrap_or(false);
                    self.report(format!(
                        "{label} -> {}",
                        if closed { "closed by the proxy" } else { "still open" }
                    ));
                    if !closed {
                        self.fail(n, step, "expected the proxy to close the connection".into());
                    }
                    return;
                }
                let res = c.read_response(false);
                self.answer(n, step, label, res, c);
            }
            Action::Raw => {
                let bytes = step.bytes.clone().unwrap_or_default();
                let label = format!("{n}. {} raw bytes {:?} ({on})", bytes.len(), shorten(&bytes));
                let mut c = match self.conn(step.conn.as_deref()) {
                    Ok(c) => c,
                    Err(e) => return self.fail(n, step, format!("cannot connect: {e}")),
                };
                if let Err(e) = c.send_raw(bytes.as_bytes()) {
                    return self.fail(n, step, format!("send: {e}"));
                }
                if !step.read {
                    self.report(format!("{label}: sent"));
                    return self.keep(step.conn.as_deref(), c);
                }
                let res = c.read_response(false);
                self.answer(n, step, label, res, c);
            }
            Action::Slow => {
                let bytes = step.bytes.clone().unwrap_or_default();
                let chunk = step.chunk.unwrap_or(1).max(1);
                let pause = Duration::from_millis(step.pause_ms.unwrap_or(50));
                let mut c = match self.conn(step.conn.as_deref()) {
                    Ok(c) => c,
                    Err(e) => return self.fail(n, step, format!("cannot connect: {e}")),
                };
                match c.send_slowly(bytes.as_bytes(), chunk, pause) {
                    Ok(()) => self.report(format!(
                        "{n}. {} bytes {:?}, {chunk} at a time every {} ms ({on})",
                        bytes.len(),
                        shorten(&bytes),
                        pause.as_millis()
                    )),
                    Err(e) => self.fail(n, step, format!("send: {e}")),
                }
                self.keep(step.conn.as_deref(), c);
            }
            Action::Echo => {
                let bytes = step.bytes.clone().unwrap_or_default();
                let mut c = match self.conn(step.conn.as_deref()) {
                    Ok(c) => c,
                    Err(e) => return self.fail(n, step, format!("cannot connect: {e}")),
                };
                let got = c.send_raw(bytes.as_bytes()).and_then(|()| c.read_exact(bytes.len()));
                match got {
                    Ok(b) if b == bytes.as_bytes() => self.report(format!(
                        "{n}. {} bytes {:?} ({on}) -> echoed",
                        bytes.len(),
                        shorten(&bytes)
                    )),
                    Ok(b) => self.fail(n, step, format!("echo: got {:?}", String::from_utf8_lossy(&b))),
                    Err(e) => self.fail(n, step, format!("echo: {e}")),
                }
                self.keep(step.conn.as_deref(), c);
            }
            Action::Websocket => self.websocket(n, step, &on),
            Action::Close if step.conn.as_deref().is_some_and(|c| self.websockets.contains_key(c)) => {
                let ws = step.conn.as_deref().and_then(|c| self.websockets.remove(c));
                match ws.map(WsClient::close) {
                    Some(Ok(())) => self.report(format!("{n}. {on}: WebSocket closed")),
                    Some(Err(e)) => self.fail(n, step, format!("close: {e}")),
                    None => {}
                }
            }
            Action::Close | Action::Abort => {
                let Some(c) = step.conn.as_deref().and_then(|name| self.conns.remove(name)) else {
                    return self.fail(n, step, "no such connection".into());
                };
                if step.action == Action::Abort {
                    let _ = c.abort();
                    self.report(format!("{n}. {on}: reset (RST)"));
                } else {
                    drop(c);
                    self.report(format!("{n}. {on}: closed"));
                }
            }
            Action::Concurrent => {
                let clients = step.clients.unwrap_or(2);
                let each = step.requests.unwrap_or(1);
                let req = request_of(step);
                let results = run_concurrent(self.proxy.addr(&self.frontend()), clients, each, &req);
                let mut by_status: std::collections::BTreeMap<String, usize> = Default::default();
                for r in &results {
                    let k = match r {
                        Ok(r) => r.status.to_string(),
                        Err(e) => format!("error ({})", e.kind()),
                    };
                    *by_status.entry(k).or_default() += 1;
                }
                let summary: Vec<String> = by_status.iter().map(|(k, v)| format!("{v} x {k}")).collect();
                self.report(format!(
                    "{n}. {clients} clients x {each} {} {} -> {}",
                    req.method,
                    req.path,
                    summary.join(", ")
                ));
                if let Some(want) = step.expect_status {
                    let bad = results.iter().filter(|r| !matches!(r, Ok(r) if r.status == want)).count();
                    if bad > 0 {
                        self.fail(n, step, format!("{bad} answers were not {want}: {}", summary.join(", ")));
                    }
                }
            }
            Action::Backend => {
                let (Some(name), Some(up)) = (step.backend.as_deref(), step.up) else {
                    return self.fail(n, step, "needs `backend` and `up`".into());
                };
                let res = self.backends.get(name).map(|b| b.set_up(up));
                match res {
                    Some(Ok(())) => {
                        self.report(format!("{n}. backend {name} {}", if up { "up" } else { "down" }))
                    }
                    Some(Err(e)) => self.fail(n, step, format!("backend {name}: {e}")),
                    None => self.fail(n, step, format!("no backend {name}")),
                }
            }
            Action::WaitLog => {
                let pattern = step.pattern.clone().unwrap_or_default();
                let re = match Regex::new(&pattern) {
                    Ok(r) => r,
                    Err(e) => return self.fail(n, step, format!("bad pattern: {e}")),
                };
                let deadline = Instant::now() + self.patience;
                loop {
                    let (logs, seen) = self.proxy.logs_since(0);
                    if let Some(l) = logs.iter().find(|l| re.is_match(l)) {
                        let l = l.clone();
                        self.report(format!("{n}. waited for a log line /{pattern}/: {l}"));
                        break;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.fail(n, step, format!("no log line matched /{pattern}/"));
                        break;
                    }
                    self.proxy.wait_logs(seen + 1, left);
                }
            }
            Action::WaitRequests => {
                let (Some(name), Some(count)) = (step.backend.as_deref(), step.count) else {
                    return self.fail(n, step, "needs `backend` and `count`".into());
                };
                match self.backends.get(name).map(|b| b.wait_for_requests(count, self.patience)) {
                    Some(true) => self.report(format!("{n}. backend {name} received {count} request(s)")),
                    Some(false) => {
                        self.fail(n, step, format!("backend {name} did not receive {count} requests"))
                    }
                    None => self.fail(n, step, format!("no backend {name}")),
                }
            }
            Action::WaitListener => {
                let fe = step.frontend.clone().unwrap_or_else(|| self.frontend());
                let want = step.state.clone().unwrap_or_default();
                let fe2 = fe.clone();
                let reached = self.wait_for(
                    move |w| {
                        let px = w.proxies.iter().position(|p| p.name == fe2)?;
                        w.listeners.iter().find(|l| l.frontend.idx() == px).map(|l| format!("{:?}", l.state))
                    },
                    &want,
                );
                if reached {
                    self.report(format!("{n}. frontend {fe}'s listener is {want}"));
                } else {
                    self.fail(n, step, format!("frontend {fe}'s listener never reached {want}"));
                }
            }
            Action::Signal => {
                let name = step.signal.clone().unwrap_or_default();
                let sig = [libc::SIGTTOU, libc::SIGTTIN, libc::SIGUSR1]
                    .into_iter()
                    .find(|&s| signal_name(s) == name);
                match sig {
                    Some(sig) => {
                        self.proxy.control().send(Command::Signal(sig));
                        self.report(format!("{n}. signal {name}"));
                    }
                    None => self.fail(
                        n,
                        step,
                        format!("`signal` must be SIGTTOU, SIGTTIN or SIGUSR1, not {name:?}"),
                    ),
                }
            }
            Action::WaitServerSide => {
                // A named connection is opened first: its session is the one waited for.
                if step.conn.is_some() {
                    match self.conn(step.conn.as_deref()) {
                        Ok(c) => self.keep(step.conn.as_deref(), c),
                        Err(e) => return self.fail(n, step, format!("cannot connect: {e}")),
                    }
                }
                let want = step.state.clone().unwrap_or_default();
                let reached = self.wait_for(
                    |w| {
                        w.sessions
                            .iter()
                            .map(|(_, s)| s)
                            .max_by_key(|s| s.uniq_id)
                            .map(|s| s.si[1].state.to_string())
                    },
                    &want,
                );
                if reached {
                    self.report(format!("{n}. the session's server side is {want}"));
                } else {
                    self.fail(n, step, format!("the session's server side never reached {want}"));
                }
            }
        }
    }
}

impl Run<'_> {
    /// The `websocket` step: handshake on first use, then one echoed message, or a wait
    /// for the proxy to end the tunnel.
    fn websocket(&mut self, n: usize, step: &Step, on: &str) {
        let name = step.conn.clone().unwrap_or_default();
        let mut ws = match self.websockets.remove(&name) {
            Some(ws) => ws,
            None => match WsClient::connect(self.proxy.addr(&self.frontend()), &step.path, self.patience) {
                Ok(ws) => {
                    self.report(format!("{n}. WebSocket handshake for {} ({on}) -> 101", step.path));
                    ws
                }
                Err(e) => return self.fail(n, step, format!("WebSocket handshake: {e}")),
            },
        };
        if let Some(text) = &step.bytes {
            if let Some(ms) = step.pause_ms {
                // Traffic shaping: the message leaves in a later millisecond than the
                // switch, so the listing does not depend on how fast the client is.
                std::thread::sleep(Duration::from_millis(ms));
            }
            match ws.echo(text) {
                Ok(got) if &got == text => {
                    self.report(format!("{n}. message {:?} ({on}) -> echoed", shorten(text)))
                }
                Ok(got) => self.fail(n, step, format!("echo: got {got:?}")),
                Err(e) => self.fail(n, step, format!("echo: {e}")),
            }
        }
        if step.expect_close {
            match ws.closed_by_peer(self.patience) {
                Ok(true) => self.report(format!("{n}. {on}: the proxy ended the tunnel")),
                _ => self.fail(n, step, "expected the proxy to end the tunnel".into()),
            }
            return;
        }
        if step.conn.is_some() {
            self.websockets.insert(name, ws);
        }
    }

    /// Waits until `probe`, run on the proxy thread, returns `want`.
    fn wait_for(
        &self,
        probe: impl Fn(&mut Haproxy) -> Option<String> + Send + Clone + 'static,
        want: &str,
    ) -> bool {
        let deadline = Instant::now() + self.patience;
        loop {
            if self.proxy.query(probe.clone()).as_deref() == Some(want) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            // The loop's state is only readable from its thread: ask again shortly.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(37).collect::<String>())
    }
}

/// The listing of `sc.flow`'s sessions and `sc.flow_roots`'s loop spans from `tb`.
pub fn flow_listing(sc: &Scenario, tb: &TreeBuilder) -> Result<String, String> {
    let sess_of = |n: &Node| n.field("sess").and_then(|v| v.parse::<u32>().ok());
    let headers = sc.flow.len() > 1 || !sc.flow_roots.is_empty();
    let mut out = String::new();
    for id in &sc.flow {
        let tree = tb
            .roots_named(names::SESSION)
            .into_iter()
            .find(|n| sess_of(n) == Some(*id))
            .ok_or_else(|| format!("session {id} did not finish (no complete call flow)"))?;
        if headers {
            let _ = writeln!(out, "# session {id}");
        }
        out.push_str(&listing(tree, LISTING_FIELDS));
    }
    // These spans nest under `run_poll_loop` > `_do_poll` or `process_runnable_tasks`, or
    // in a session's tree (a session's end resumes a full listener): look through every
    // tree, and list what was found in the order it happened, whatever its name.
    let mut found: Vec<&Node> = Vec::new();
    for name in &sc.flow_roots {
        let before = found.len();
        for root in &tb.roots {
            root.find_all(name, &mut found);
        }
        if found.len() == before {
            return Err(format!("no `{name}` span was recorded"));
        }
    }
    found.sort_by_key(|n| n.start);
    for n in found {
        let _ = writeln!(out, "# {}", n.name);
        out.push_str(&listing(n, LISTING_FIELDS));
    }
    Ok(out)
}

/// Runs `sc`. `Err` when it could not run at all (a backend or the proxy did not start).
pub fn run(sc: &Scenario, opts: RunOptions) -> Result<Outcome, String> {
    let mut backends = HashMap::new();
    let mut env = Vec::new();
    for (var, def) in &sc.backends {
        let b = RunningBackend::start(backend_spec(def)).map_err(|e| format!("backend {var}: {e}"))?;
        env.push((var.as_str(), b.addr().to_string()));
        backends.insert(var.clone(), b);
    }
    let (sink, feed) = lossless();
    let proxy = RunningProxy::start_with(
        &sc.config,
        &env,
        StartOptions {
            capture: Some(sink),
            also: opts.also,
            observer: opts.observer,
            ready_within: opts.patience,
            ..Default::default()
        },
    )
    .map_err(|e| match e {
        StartError::Config(d) => format!("configuration: {}", d.alerts.join("; ")),
        StartError::Start(m) => m,
    })?;
    let mut config = sc.config.clone();
    for (var, addr) in &env {
        config = config.replace(&format!("${{{var}}}"), addr);
    }
    for (fe, addr) in proxy.frontend_addrs() {
        let _ = writeln!(config, "# frontend {fe} listens on {addr}");
    }
    let mut run = Run {
        sc,
        proxy,
        backends,
        conns: HashMap::new(),
        websockets: HashMap::new(),
        out: Outcome { config, ..Outcome::default() },
        progress: opts.progress,
        patience: opts.patience.unwrap_or(WAIT),
    };
    for (i, step) in sc.traffic.iter().enumerate() {
        run.step(i + 1, step);
    }
    run.conns.clear();
    run.websockets.clear();
    if !run.proxy.wait_idle(run.patience) {
        run.out.failures.push("the proxy did not become idle (sessions or pool objects left)".into());
    }
    let Run { sc, proxy, mut out, .. } = run;
    out.logs = proxy.logs();
    proxy.stop();
    check_logs(sc, &mut out);
    let mut tb = TreeBuilder::default();
    tb.extend(&feed.drain());
    match flow_listing(sc, &tb) {
        Ok(l) => out.listing = l,
        Err(e) => out.failures.push(e),
    }
    if let Some(golden) = opts.golden
        && !out.listing.is_empty()
        && golden != out.listing
    {
        out.failures
            .push(format!("the call flow differs from the golden listing:\n{}", diff(&golden, &out.listing)));
    }
    Ok(out)
}

fn check_logs(sc: &Scenario, out: &mut Outcome) {
    let traffic: Vec<&String> = out.logs.iter().filter(|l| is_traffic_line(l)).collect();
    if !sc.expect.logs.is_empty() && traffic.len() != sc.expect.logs.len() {
        out.failures.push(format!(
            "expected {} traffic log lines, got {}:\n  {}",
            sc.expect.logs.len(),
            traffic.len(),
            traffic.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  ")
        ));
    }
    for (i, (want, got)) in sc.expect.logs.iter().zip(&traffic).enumerate() {
        match Regex::new(want) {
            Ok(re) if re.is_match(got) => {}
            Ok(_) => out.failures.push(format!("log line {} does not match /{want}/: {got}", i + 1)),
            Err(e) => out.failures.push(format!("bad log pattern /{want}/: {e}")),
        }
    }
    for want in &sc.expect.log_contains {
        match Regex::new(want) {
            Ok(re) if out.logs.iter().any(|l| re.is_match(l)) => {}
            Ok(_) => out.failures.push(format!("no log line matches /{want}/")),
            Err(e) => out.failures.push(format!("bad log pattern /{want}/: {e}")),
        }
    }
}

/// A line diff good enough to show where two listings part.
pub fn diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let first = w.iter().zip(&g).position(|(a, b)| a != b).unwrap_or(w.len().min(g.len()));
    let mut out = format!("first difference at line {}:\n", first + 1);
    for l in w.iter().skip(first).take(6) {
        let _ = writeln!(out, "- {l}");
    }
    for l in g.iter().skip(first).take(6) {
        let _ = writeln!(out, "+ {l}");
    }
    out
}
