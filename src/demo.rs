//! `haflow demo`: haflow in front of embedded backends, with steady mixed traffic, so
//! that the whole call flow can be watched within a minute of cloning.
//!
//! Three HTTP servers (health-checked, one of them slow) sit behind an HTTP frontend with
//! an ACL-switched API backend, a `deny` rule and a `return` rule. Client threads send
//! keep-alive and one-shot requests, some to paths the rules catch, now and then a
//! malformed request (400) or a client too slow to finish its request (408); every
//! 20 seconds one server goes down for 8 seconds, so its health checks take it out and
//! bring it back. When stdout is a terminal, the terminal UI shows it all (the
//! configuration as run is in its log pane); otherwise the configuration is printed, then
//! a summary every few seconds with the call flow of a recent session.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::haproxy::errors::print_message;
use crate::haproxy::haproxy::Observer;
use crate::scenario::backends::{BackendSpec, HttpBehaviour, RunningBackend};
use crate::scenario::client::{Conn, Request};
use crate::scenario::proxy::{RunningProxy, StartError, StartOptions};
use crate::trace::capture::{Capture, Sink, lossless};
use crate::trace::names;
use crate::trace::tree::{LISTING_FIELDS, TreeBuilder, timed_listing};
use crate::tui::snapshot::{LogKind, producer};
use crate::tui::state::Tone;
use crate::tui::{App, SNAPSHOT_INTERVAL_MS, has_terminal, watch};

/// The demo's configuration (`${S1}`... are the embedded servers' addresses).
pub const CONFIG: &str = r#"global
    log stdout format raw local0
    maxconn 200

defaults
    mode http
    log global
    option httplog
    option http-keep-alive
    option redispatch
    retries 2
    timeout connect 1s
    timeout client 10s
    timeout server 5s
    timeout http-request 2s

frontend web
    bind 127.0.0.1:0
    acl is_api path_beg /api
    http-request deny if { path_beg /admin }
    http-request return status 200 content-type text/plain string "pong" if { path /ping }
    use_backend api if is_api
    default_backend app

backend app
    balance roundrobin
    option httpchk GET /health
    server s1 "${S1}" check inter 500ms fall 2 rise 2
    server s2 "${S2}" check inter 500ms fall 2 rise 2
    server s3 "${S3}" check inter 500ms fall 2 rise 2

backend api
    balance leastconn
    server api1 "${API1}"
"#;

/// A running demo: the backends, the proxy and the traffic threads.
pub struct Demo {
    /// The proxy.
    pub proxy: RunningProxy,
    /// The configuration as run.
    pub config: String,
    backends: Vec<RunningBackend>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Demo {
    /// Starts the backends, the proxy (feeding `capture` and telling `observer`), and the
    /// traffic.
    pub fn start(capture: Option<Sink>, observer: Option<Box<dyn Observer>>) -> Result<Demo, String> {
        let http = |name: &str, delay_ms: u64| {
            BackendSpec::Http(HttpBehaviour {
                body_size: 512,
                delay_before_headers: (delay_ms > 0).then(|| Duration::from_millis(delay_ms)),
                health_path: Some("/health".into()),
                ..HttpBehaviour::named(name)
            })
        };
        let specs =
            [("S1", http("s1", 0)), ("S2", http("s2", 0)), ("S3", http("s3", 40)), ("API1", http("api1", 5))];
        let mut backends = Vec::new();
        let mut env = Vec::new();
        for (var, spec) in specs {
            let b = RunningBackend::start(spec).map_err(|e| format!("backend {var}: {e}"))?;
            env.push((var, b.addr().to_string()));
            backends.push(b);
        }
        let proxy =
            RunningProxy::start_with(CONFIG, &env, StartOptions { capture, observer, ..Default::default() })
                .map_err(|e| match e {
                    StartError::Config(d) => d.alerts.join("; "),
                    StartError::Start(m) => m,
                })?;
        let mut config = CONFIG.to_string();
        for (var, addr) in &env {
            config = config.replace(&format!("${{{var}}}"), addr);
        }
        config = config.replace("127.0.0.1:0", &proxy.addr("web").to_string());
        let stop = Arc::new(AtomicBool::new(false));
        let addr = proxy.addr("web");
        let mut threads = Vec::new();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(f).map_err(|e| e.to_string())
        };
        for (i, paths) in [["/", "/api/users", "/", "/ping"], ["/index.html", "/api/orders", "/admin", "/"]]
            .into_iter()
            .enumerate()
        {
            let stop = Arc::clone(&stop);
            threads.push(spawn(
                &format!("demo-keepalive-{i}"),
                Box::new(move || keep_alive_client(addr, &paths, &stop)),
            )?);
        }
        let s2 = Arc::clone(&stop);
        threads.push(spawn("demo-oneshot", Box::new(move || one_shot_client(addr, &s2)))?);
        let s3 = Arc::clone(&stop);
        threads.push(spawn("demo-misbehaving", Box::new(move || misbehaving_client(addr, &s3)))?);
        Ok(Demo { proxy, config, backends, stop, threads })
    }

    /// One step of the server flapping: every 20 s, s3 goes down for 8 s. Called often
    /// (every few tens of milliseconds) with the time since the start.
    pub fn flap(&self, elapsed: Duration) {
        let phase = elapsed.as_secs() % 20;
        let _ = self.backends[2].set_up(!(12..20).contains(&phase));
    }

    /// Stops the traffic, the proxy and the backends.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // The proxy first: a client waiting for an answer (the 408 only comes after
        // `timeout http-request`) sees its connection closed at once, and `q` is quick.
        self.proxy.stop();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Pauses between requests: the demo shows traffic, it does not load-test.
fn pace(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())));
    }
    !stop.load(Ordering::Relaxed)
}

/// Five requests per connection, then a new connection.
fn keep_alive_client(addr: std::net::SocketAddr, paths: &[&str], stop: &AtomicBool) {
    let mut n = 0usize;
    while pace(stop, Duration::from_millis(150)) {
        let Ok(mut c) = Conn::connect(addr, Duration::from_secs(5)) else { continue };
        for _ in 0..5 {
            let path = paths[n % paths.len()];
            n += 1;
            match c.request(&Request::get(path)) {
                Ok(r) if !r.closes_connection() => {}
                _ => break,
            }
            if !pace(stop, Duration::from_millis(100)) {
                return;
            }
        }
    }
}

/// One request per connection, with `Connection: close`.
fn one_shot_client(addr: std::net::SocketAddr, stop: &AtomicBool) {
    while pace(stop, Duration::from_millis(400)) {
        if let Ok(mut c) = Conn::connect(addr, Duration::from_secs(5)) {
            let _ = c.request(&Request::get("/").header("Connection", "close"));
        }
    }
}

/// Every few seconds: a malformed request (400) or a request never finished (408).
fn misbehaving_client(addr: std::net::SocketAddr, stop: &AtomicBool) {
    let mut slow = false;
    while pace(stop, Duration::from_secs(3)) {
        let Ok(mut c) = Conn::connect(addr, Duration::from_secs(5)) else { continue };
        if slow {
            // Half a request, then silence until `timeout http-request` answers 408.
            let _ = c.send_raw(b"GET /slow HTTP/1.1\r\nHost: demo\r\n");
            let _ = c.read_response(false);
        } else {
            let _ = c.send_raw(b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n");
            let _ = c.read_response(false);
        }
        slow = !slow;
    }
}

/// What the text summary counts between two prints.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<String, u64>,
}

/// The status and termination state of an httplog line.
fn status_of(line: &str) -> Option<(String, String)> {
    // `... fe be/srv Tq/Tw/Tc/Tr/Ta STATUS BYTES - - TERM ...`
    let parts: Vec<&str> = line.split_whitespace().collect();
    let i = parts.iter().position(|p| p.matches('/').count() == 4 && p.split('/').all(|x| !x.is_empty()))?;
    Some((parts.get(i + 1)?.to_string(), parts.get(i + 5)?.to_string()))
}

/// The kinds of session the text demo shows the call flow of, in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    KeepAlive,
    Denied,
    Timeout,
    ServerDown,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::KeepAlive, Kind::Denied, Kind::Timeout, Kind::ServerDown];

    /// What a listing of this kind shows.
    fn what(self) -> &'static str {
        match self {
            Kind::KeepAlive => "a keep-alive run: several requests on one connection",
            Kind::Denied => "a 403: `http-request deny` answered, the server never saw it",
            Kind::Timeout => "a 408: the client never finished its request (timeout http-request)",
            Kind::ServerDown => "a server down: the connect failed (sess_update_st_cer), then a retry",
        }
    }

    /// The kind of a finished session's tree, if it is one the demo shows.
    fn of(s: &crate::trace::tree::Node) -> Option<Kind> {
        fn status(n: &crate::trace::tree::Node, code: &str) -> bool {
            n.field("status") == Some(code) || n.children.iter().any(|c| status(c, code))
        }
        let status = |code: &str| status(s, code);
        if status("408") {
            Some(Kind::Timeout)
        } else if status("403") {
            Some(Kind::Denied)
        } else if s.find(names::SESS_UPDATE_ST_CER).is_some() || status("503") {
            Some(Kind::ServerDown)
        } else {
            let mut ends = Vec::new();
            s.find_all(names::HTTP_END_TXN_CLEAN_SESSION, &mut ends);
            (ends.len() >= 2).then_some(Kind::KeepAlive)
        }
    }
}

/// `haflow demo` without a terminal: a summary every `every`, with the call flow of a
/// recent session every fourth time (a keep-alive run, a 403, a 408, a server down, in
/// turn, each line with its span's duration), until `duration` (or forever, or until
/// stdout is closed).
pub fn run_text(duration: Option<Duration>, every: Duration, out: &mut impl Write) -> Result<(), String> {
    let (sink, feed) = lossless();
    let demo = Demo::start(Some(sink), None)?;
    let res = text_rounds(&demo, &feed, duration, every, out);
    demo.stop();
    match res {
        // The reader went away (`haflow demo | head`): the demo ends there.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.to_string()),
        Ok(()) => Ok(()),
    }
}

fn text_rounds(
    demo: &Demo,
    feed: &Capture,
    duration: Option<Duration>,
    every: Duration,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(out, "haflow demo: the configuration, with the embedded servers' addresses:\n")?;
    writeln!(out, "{}", demo.config)?;
    let started = Instant::now();
    let mut seen_logs = 0;
    let mut tally = Tally::default();
    // The loop's spans are children of `run_poll_loop`, which never closes: keep few.
    let mut tb = TreeBuilder::with_child_limit(64);
    // The latest finished session of each kind, and the kind to show next.
    let mut latest: BTreeMap<usize, crate::trace::tree::Node> = BTreeMap::new();
    let mut next_kind = 0;
    let mut round = 0u64;
    loop {
        let next = started + every.saturating_mul(u32::try_from(round + 1).unwrap_or(u32::MAX));
        while Instant::now() < next {
            demo.flap(started.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        }
        round += 1;
        let (logs, total) = demo.proxy.logs_since(seen_logs);
        for l in &logs {
            if let Some((status, term)) = status_of(l) {
                *tally.statuses.entry(format!("{status} {term}")).or_default() += 1;
            }
        }
        let state_lines: Vec<&String> =
            logs.iter().filter(|l| l.starts_with("Server ") || l.contains(" is DOWN")).collect();
        seen_logs = total;
        let (sessions, servers) = demo.proxy.query(|w| {
            let servers: Vec<String> = w
                .proxies
                .iter()
                .flat_map(|p| p.servers.iter().map(|s| format!("{}/{} {}", p.name, s.name, s.status())))
                .collect();
            (w.sessions.len(), servers)
        });
        writeln!(
            out,
            "--- {:>4}s: {sessions} sessions open; servers: {}",
            started.elapsed().as_secs(),
            servers.join(", ")
        )?;
        let counts: Vec<String> = tally.statuses.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        writeln!(out, "    responses (status termination-state) so far: {}", counts.join(", "))?;
        for l in state_lines {
            writeln!(out, "    {l}")?;
        }
        absorb(feed, &mut tb);
        writeln!(
            out,
            "    memory: {} spans held for call flows ({} dropped), {} log lines dropped",
            tb.held(),
            tb.dropped,
            demo.proxy.logs_dropped()
        )?;
        for s in tb.roots.drain(..).filter(|n| n.name == names::SESSION) {
            if let Some(k) = Kind::of(&s) {
                latest.insert(Kind::ALL.iter().position(|x| *x == k).unwrap_or(0), s);
            }
        }
        // Every fourth round, the next kind that has a session to show.
        if round % 4 == 1
            && let Some(k) = (0..Kind::ALL.len())
                .map(|i| (next_kind + i) % Kind::ALL.len())
                .find(|k| latest.contains_key(k))
            && let Some(s) = latest.remove(&k)
        {
            next_kind = k + 1;
            writeln!(
                out,
                "    call flow of session {}, {} (each span's duration in brackets):",
                s.field("sess").unwrap_or("?"),
                Kind::ALL[k].what()
            )?;
            for l in timed_listing(&s, LISTING_FIELDS).lines() {
                writeln!(out, "      {l}")?;
            }
        }
        out.flush()?;
        if duration.is_some_and(|d| started.elapsed() >= d) {
            return Ok(());
        }
    }
}

fn absorb(feed: &Capture, tb: &mut TreeBuilder) {
    for r in feed.try_iter() {
        tb.push(&r);
    }
}

/// `haflow demo`: the terminal UI on the demo when stdout is a terminal, until `q`,
/// Ctrl-C or `duration`; otherwise `run_text` with a summary every `every`.
pub fn main(duration: Option<Duration>, every: Duration) -> ExitCode {
    let res =
        if has_terminal() { run_tui(duration) } else { run_text(duration, every, &mut std::io::stdout()) };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_message("ALERT", &format!("demo: {e}"));
            ExitCode::from(1)
        }
    }
}

/// The demo watched by the terminal UI until `q`, Ctrl-C, a signal or `duration`.
fn run_tui(duration: Option<Duration>) -> Result<(), String> {
    let (sink, capture) = crate::tui::ui_capture();
    let (prod, feed) = producer(SNAPSHOT_INTERVAL_MS);
    let demo = Demo::start(Some(sink), Some(Box::new(prod)))?;
    let mut app = App::default();
    for w in &demo.proxy.warnings {
        app.state.push_log(LogKind::Ui, format!("[WARNING] config : {w}"));
    }
    app.state.push_log(
        LogKind::Ui,
        "haflow demo: the configuration, with the embedded servers' addresses:".into(),
    );
    for l in demo.config.lines().filter(|l| !l.trim().is_empty()) {
        app.state.push_log(LogKind::Ui, format!("  {l}"));
    }
    let until = duration.map_or(String::new(), |d| format!(" (stops after {} s)", d.as_secs()));
    app.set_status(
        format!(
            "demo{until}: clients -> web on {} -> app (s1, s2, s3: slow, down 8 s in every 20) or api; a 400 or a 408 every 3 s",
            demo.proxy.addr("web")
        ),
        Tone::Info,
    );
    let started = Instant::now();
    let control = demo.proxy.control();
    let res = watch(&mut app, &feed, &capture, Some(&control), |_| {
        demo.flap(started.elapsed());
        duration.is_some_and(|d| started.elapsed() >= d)
    });
    demo.stop();
    res.map_err(|e| format!("terminal error: {e}"))
}
