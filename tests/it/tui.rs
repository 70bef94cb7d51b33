//! The terminal UI: every view rendered on ratatui's `TestBackend` (80x24 and 160x48) from
//! state built by real traffic through the proxy (span records from the capture layer,
//! snapshots from the UI's own producer, log lines), the keys that act on the proxy, a
//! scenario's outcome and the demo as the UI shows them, the walkthrough's screen built
//! from the real stops; then the real binary inside tmux: `run --tui`, `walkthrough`,
//! `demo` and `scenario run --tui`, driven by keys and read back with `capture-pane`.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use haflow::cli::scenario::show_outcome;
use haflow::demo::Demo;
use haflow::haproxy::checks::HchkStatus;
use haflow::scenario::catalog::find;
use haflow::scenario::client::Request;
use haflow::scenario::runner::{Outcome, RunOptions, run};
use haflow::trace::capture::{Capture, capture};
use haflow::tui::input::{Intent, WalkIntent};
use haflow::tui::snapshot::{Feed, producer};
use haflow::tui::state::{LaneEntry, State, Tone};
use haflow::tui::view::{self, ViewKind, proxies::PxRow};
use haflow::tui::walkthrough::{Phase, Walk, WalkEffect};
use haflow::tui::{App, Effect, send_maint};
use haflow::walkthrough::Resume;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

use crate::util::*;

const CFG: &str = "global\n    log stdout format raw local0\n\
defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
frontend fe\n    bind 127.0.0.1:0\n    default_backend be\n\
backend be\n    server s1 \"${S1}\"\n    server s2 \"${S2}\"\n";

/// An HTTP frontend in front of two servers, with a `deny` rule and a backend whose only
/// server refuses connections (503, `SC--`).
const HTTP_CFG: &str = "global\n    log stdout format raw local0\n\
defaults\n    mode http\n    log global\n    option httplog\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
frontend fe\n    bind 127.0.0.1:0\n    http-request deny if { path_beg /admin }\n    use_backend dead if { path_beg /none }\n    default_backend be\n\
backend be\n    server s1 \"${S1}\"\n    server s2 \"${S2}\"\n\
backend dead\n    retries 0\n    server gone \"${GONE}\"\n";

/// A proxy that served real traffic, and the UI's state built from what it published.
struct Fixture {
    app: App,
    feed: Feed,
    cap: Capture,
    start: Instant,
    /// Held open: the live session.
    held: Option<Conn>,
    proxy: RunningProxy,
    _backends: [RunningBackend; 2],
}

impl Fixture {
    /// The proxy of `cfg` in front of `backends` (`${S1}`, `${S2}`; `${GONE}`: a port
    /// nobody listens on), with the UI's capture and producer, and no traffic yet.
    fn start(cfg: &str, backends: [RunningBackend; 2]) -> Fixture {
        let (layer, cap) = capture(1 << 16);
        let (prod, feed) = producer(100);
        let gone = format!("127.0.0.1:{}", free_port());
        let proxy = RunningProxy::start_with(
            cfg,
            &[("S1", a(backends[0].addr())), ("S2", a(backends[1].addr())), ("GONE", gone)],
            StartOptions { capture: Some(layer), observer: Some(Box::new(prod)), ..Default::default() },
        )
        .expect("haflow starts");
        Fixture {
            app: App::default(),
            feed,
            cap,
            start: Instant::now(),
            held: None,
            proxy,
            _backends: backends,
        }
    }

    /// Three echo sessions that completed, and a fourth held open.
    fn new() -> Fixture {
        let mut f = Fixture::start(CFG, [backend(BackendSpec::Echo), backend(BackendSpec::Echo)]);
        for _ in 0..3 {
            f.echo_session();
        }
        f.proxy.wait_logs(3, SOON);
        let mut held = connect(f.proxy.addr("fe"));
        held.send_raw(b"ping").unwrap();
        assert_eq!(held.read_exact(4).unwrap(), b"ping");
        f.held = Some(held);
        f.pump_until("3 closed sessions with complete trees and one live session", |st| {
            let closed = (0..3).filter(|id| freed(st, *id)).count();
            let trees = (0..3).filter(|id| st.trace(*id).is_some_and(|t| t.end().is_some())).count();
            let live = st.sessions.get(&3).is_some_and(|e| !e.closed && e.snap.is_some());
            let counted = st.snap.as_ref().is_some_and(|s| s.totalconn == 4 && s.actconn == 1);
            closed == 3 && trees == 3 && live && counted
        });
        f
    }

    /// HTTP traffic, every session closed but the last: #0 a kept-alive connection with
    /// three requests (`/api/users`, `/api/orders`, `/`), #1 `/api/one`, #2 `/admin`
    /// (denied: 403, `PR--`), #3 `/none` (its server refuses: 503, `SC--`), and #4 held
    /// open after one request (`/held`).
    fn http() -> Fixture {
        let http = |name| backend(BackendSpec::Http(HttpBehaviour::named(name)));
        let mut f = Fixture::start(HTTP_CFG, [http("s1"), http("s2")]);
        let addr = f.proxy.addr("fe");
        let mut ka = connect(addr);
        for path in ["/api/users", "/api/orders", "/"] {
            assert_eq!(ka.request(&Request::get(path)).unwrap().status, 200);
        }
        drop(ka);
        f.proxy.wait_logs(3, SOON);
        for (path, status) in [("/api/one", 200), ("/admin", 403), ("/none", 503)] {
            assert_eq!(haflow::scenario::client::get(addr, path).unwrap().status, status, "{path}");
        }
        let mut held = connect(addr);
        assert_eq!(held.request(&Request::get("/held")).unwrap().status, 200);
        f.held = Some(held);
        f.proxy.wait_logs(7, SOON);
        f.pump_until("sessions #0..#3 closed with their requests, #4 live after one", |st| {
            let done = |id: u32, n: u32| st.sessions.get(&id).is_some_and(|e| e.txns_done == n);
            (0..4).all(|id| freed(st, id))
                && done(0, 3)
                && (1..4).all(|id| done(id, 1))
                && st.sessions.get(&4).is_some_and(|e| !e.closed && e.snap.is_some() && e.txns_done == 1)
        });
        f
    }

    fn echo_session(&self) {
        let mut c = connect(self.proxy.addr("fe"));
        c.send_raw(b"hello").unwrap();
        assert_eq!(c.read_exact(5).unwrap(), b"hello");
    }

    /// Asks for snapshots and folds everything published into the app's state until `cond`
    /// holds (no sleeping: each round waits for a snapshot the proxy sends).
    fn pump_until(&mut self, what: &str, cond: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + SOON;
        loop {
            self.feed.request();
            // A command wakes the loop up; the turn it runs in ends with a copy.
            self.proxy.query(|_| ());
            if let Ok(s) = self.feed.snapshots.recv_timeout(SOON) {
                self.app.state.apply_snapshot(s);
            }
            self.app.state.set_now(self.start.elapsed());
            haflow::tui::pump(&mut self.app.state, &self.feed, &self.cap);
            if cond(&self.app.state) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
        }
    }

    fn render(&mut self, w: u16, h: u16) -> Screen {
        self.app.sync();
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| self.app.hits = view::draw(f, self.app.shown(), &self.app.view)).unwrap();
        Screen(t.backend().buffer().clone())
    }
}

/// True once a snapshot reported session `id` freed.
fn freed(st: &State, id: u32) -> bool {
    st.sessions.get(&id).is_some_and(|e| e.closed && e.snap.as_ref().is_some_and(|s| s.end_ms.is_some()))
}

/// Traffic log lines (administrative messages left out).
fn traffic(p: &RunningProxy, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    eventually(SOON, || {
        out = p.logs().into_iter().filter(|l| l.starts_with("127.0.0.1:")).collect();
        out.len() >= n
    });
    out
}

/// A rendered screen.
struct Screen(Buffer);

impl Screen {
    fn lines(&self) -> Vec<String> {
        let w = self.0.area.width as usize;
        self.0.content.chunks(w).map(|row| row.iter().map(|c| c.symbol()).collect()).collect()
    }

    fn text(&self) -> String {
        self.lines().join("\n")
    }

    fn has(&self, s: &str) -> bool {
        self.text().contains(s)
    }

    /// The row holding `s`, and its index.
    fn row(&self, s: &str) -> (usize, String) {
        self.lines()
            .into_iter()
            .enumerate()
            .find(|(_, l)| l.contains(s))
            .unwrap_or_else(|| panic!("no row with {s:?} in\n{}", self.text()))
    }

    /// The whitespace-separated words of the row holding `s`.
    fn words(&self, s: &str) -> Vec<String> {
        self.row(s).1.split_whitespace().map(str::to_string).collect()
    }

    /// The cell at the first character of `s`.
    fn cell_at(&self, s: &str) -> &ratatui::buffer::Cell {
        self.cell_of(s, 0)
    }

    /// The cell `at` characters into the first occurrence of `s`.
    fn cell_of(&self, s: &str, at: usize) -> &ratatui::buffer::Cell {
        let (y, line) = self.row(s);
        let x = line[..line.find(s).unwrap()].chars().count() + at;
        &self.0[(x as u16, y as u16)]
    }

    fn assert_has(&self, items: &[&str]) {
        for s in items {
            assert!(self.has(s), "{s:?} missing from\n{}", self.text());
        }
    }
}

#[test]
fn header_shows_sessions_rates_queues_pools_and_dropped_records() {
    let mut f = Fixture::new();
    for (w, h) in [(80, 24), (160, 48)] {
        let s = f.render(w, h);
        let l = s.lines();
        for word in ["haflow", "up ", "sess 1/4", "conn/s", "req/s"] {
            assert!(l[0].contains(word), "{word:?} in the first header line: {}", l[0]);
        }
        // The session's task and `global_listener_queue_task`.
        let words: &[&str] = if w >= 120 {
            &["runq 0", "loops", "tasks 2", "pools", "fds", "dropped 0"]
        } else {
            &["runq 0", "tasks 2", "fds", "dropped 0"]
        };
        for word in words {
            assert!(l[1].contains(word), "{word:?} in the second header line: {}", l[1]);
        }
        assert_ne!(s.cell_at("dropped 0").bg, Color::Red, "no drop, no alarm");
    }
    // Records dropped by the capture layer turn the counter red.
    f.app.state.dropped_records = 7;
    let s = f.render(80, 24);
    assert_eq!(s.cell_at("dropped 7").bg, Color::Red);
    f.app.state.dropped_records = 0;
    // Behind a keeper: its policy, and the sessions it kept whole and sampled out.
    f.app.state.keep =
        Some(haflow::trace::keeper::KeepCounts { kept_whole: 12, sampled_out: 345, trimmed: 0 });
    let s = f.render(160, 48);
    assert!(
        s.lines()[1].contains(
            "keep failed + followed + sample, held at state level: 12 whole, 345 sampled out  dropped 0"
        ),
        "{}",
        s.lines()[1]
    );
    assert!(f.render(80, 24).lines()[1].contains("keep failed+followed+sample: 12 whole, 345 sampled out"));
    f.app.state.keep = None;

    // Space freezes the display; collection goes on underneath.
    assert_eq!(f.app.apply(Intent::Pause), None);
    f.echo_session();
    f.pump_until("the fifth session", |st| freed(st, 4));
    let s = f.render(80, 24);
    s.assert_has(&["PAUSED", "sess 1/4"]);
    assert!(!f.app.shown().sessions.contains_key(&4), "the frozen view does not move");
    f.app.apply(Intent::Pause);
    let s = f.render(80, 24);
    assert!(!s.has("PAUSED") && s.has("sess 1/5"), "unpaused, the view catches up:\n{}", s.text());
}

#[test]
fn proxies_view_shows_every_frontend_backend_and_server_with_counters() {
    let mut f = Fixture::new();
    f.app.apply(Intent::Show(ViewKind::Proxies));
    let s = f.render(80, 24);
    s.assert_has(&["NAME", "STATUS", "CUR", "TOTAL", "BIN", "BOUT", "CHECK"]);
    // fe: 1 current, 4 in total, 3x5 bytes each way from the closed sessions, plus the
    // live one's 4 once its task has run: as in HAProxy, bytes the read callback
    // fast-forwards are credited by session_process_counters at the end of the next
    // process_session, which an echo does not always need.
    let fe = s.words("fe/FRONTEND");
    assert_eq!(fe[1], "OPEN", "{fe:?}");
    let (bin, bout) = (fe[fe.len() - 3].as_str(), fe[fe.len() - 2].as_str());
    assert!(fe.contains(&"4".into()), "{fe:?}");
    assert!(matches!(bin, "15" | "19") && matches!(bout, "15" | "19"), "BIN {bin} BOUT {bout}: {fe:?}");
    // Round robin: s1 got sessions #0 and #2, s2 got #1 and the live #3.
    let s1 = s.words("be/s1");
    assert_eq!((s1[1].as_str(), s1.last().unwrap().as_str()), ("UP", "check"), "{s1:?}");
    assert!(s1.contains(&"2".into()) && s1.contains(&"10".into()), "2 sessions, 10 bytes: {s1:?}");
    let be = s.words("be/BACKEND");
    assert_eq!(be[1], "UP");
    // The panel under the table has what the narrow table leaves out: response classes,
    // and for a frontend its listener as bound, with its state.
    s.assert_has(&["2xx 0", "3xx 0", "4xx 0", "5xx 0"]);
    let bind = format!("bind {} LI_READY 1/", f.proxy.addr("fe"));
    assert!(s.has(&bind), "{bind:?} in\n{}", s.text());

    let s = f.render(160, 48);
    s.assert_has(&["W", "MAX", "LIM", "QCUR", "QMAX", "REQ", "2XX", "3XX", "4XX", "5XX"]);
    let s2 = s.words("be/s2");
    assert_eq!(s2[1], "UP");
    assert!(s2.contains(&"no".into()) && s2.contains(&"check".into()), "{s2:?}");
    assert!(s.words("fe/FRONTEND").contains(&"4".into()));
}

#[test]
fn disabling_a_server_from_the_ui_puts_it_in_maint_and_the_proxy_obeys() {
    let mut f = Fixture::new();
    f.app.apply(Intent::Show(ViewKind::Proxies));
    let rows = view::proxies::rows(f.app.state.snap.as_ref().unwrap());
    let snap = f.app.state.snap.clone().unwrap();
    let s1 = rows
        .iter()
        .position(|r| matches!(r, PxRow::Server(id) if snap.server(*id).unwrap().name == "s1"))
        .expect("a row for s1");
    // `d` on a frontend row does nothing but say so.
    assert_eq!(f.app.apply(Intent::Disable), None);
    assert!(f.render(80, 24).has("select a server row"));
    f.app.view.proxies_sel = s1;
    let Some(Effect::Maint(id, true)) = f.app.apply(Intent::Disable) else {
        panic!("d on a server row disables it")
    };
    send_maint(&f.proxy.control(), id, true);
    f.pump_until("s1 in maintenance", |st| st.snap.as_ref().unwrap().server(id).unwrap().maint());
    let s = f.render(80, 24);
    assert_eq!(s.words("be/s1")[1], "MAINT");
    assert_eq!(s.cell_at("MAINT").fg, Color::Yellow);
    assert!(
        f.app.state.logs.iter().any(|l| l.text.starts_with("Server be/s1 is going DOWN for maintenance.")),
        "HAProxy's message reaches the log pane: {:?}",
        f.app.state.logs
    );
    // The load balancer obeys: new sessions all go to s2.
    f.echo_session();
    f.echo_session();
    let logs = traffic(&f.proxy, 5);
    assert!(logs[3..].iter().all(|l| l.contains(" fe be/s2 ")), "{logs:#?}");

    let Some(Effect::Maint(_, false)) = f.app.apply(Intent::Enable) else { panic!("e enables") };
    send_maint(&f.proxy.control(), id, false);
    f.pump_until("s1 back", |st| !st.snap.as_ref().unwrap().server(id).unwrap().maint());
    assert_eq!(f.render(80, 24).words("be/s1")[1], "UP");
    f.echo_session();
    let logs = traffic(&f.proxy, 6);
    assert!(logs[5].contains(" fe be/s1 "), "s1 takes traffic again: {logs:#?}");
}

/// `backend/server` of a traffic log line (its fourth word).
fn log_be_srv(line: &str) -> &str {
    line.split_whitespace().nth(3).unwrap_or("")
}

/// Session ids of the table's rows, top to bottom (rows start with `#id`).
fn row_ids(s: &Screen) -> Vec<String> {
    s.lines()
        .iter()
        .filter_map(|l| l.split_whitespace().next().filter(|w| w.starts_with('#')).map(str::to_string))
        .filter(|w| w[1..].parse::<u32>().is_ok())
        .collect()
}

impl Fixture {
    /// Types `/text` Enter.
    fn filter(&mut self, text: &str) {
        self.app.apply(Intent::Back);
        self.app.apply(Intent::FilterStart);
        for c in text.chars() {
            self.app.apply(Intent::FilterChar(c));
        }
        self.app.apply(Intent::FilterDone);
    }
}

#[test]
fn sessions_list_shows_each_sessions_request_status_term_and_server_even_once_closed() {
    let mut f = Fixture::http();
    let logs = traffic(&f.proxy, 7);
    for (w, h) in [(80, 24), (160, 48)] {
        let s = f.render(w, h);
        s.assert_has(&["ID", "REQUEST", "ST", "TERM", "BE/SRV", "REQS", "AGE", "IN", "OUT", "4 closed"]);
        assert!(!s.has("RQ.AN") && !s.has("407060h"), "no hex analyser columns:\n{}", s.text());
        // The kept-alive connection, closed: its last request, and the server its log names.
        let ka = s.words("#0");
        let be_srv = log_be_srv(&logs[2]);
        assert!(be_srv.starts_with("be/s"), "{logs:#?}");
        let want = ["#0", "fe", "GET", "/", "200", "----", be_srv, "3"];
        assert_eq!(&ka[..8], want, "at {w}x{h}: {ka:?}\n{}", s.text());
        let one = s.words("#1");
        assert_eq!(&one[..8], ["#1", "fe", "GET", "/api/one", "200", "----", log_be_srv(&logs[3]), "1"]);
        let denied = s.words("#2");
        assert_eq!(&denied[2..8], ["GET", "/admin", "403", "PR--", log_be_srv(&logs[4]), "1"], "{denied:?}");
        assert_eq!(s.cell_of("PR--", 0).fg, Color::Red, "a failed termination stands out");
        let refused = s.words("#3");
        assert_eq!(&refused[2..8], ["GET", "/none", "503", "SC--", "dead/gone", "1"], "{refused:?}");
        let held = s.words("#4");
        assert_eq!(&held[..8], ["#4", "fe", "GET", "/held", "200", "----", log_be_srv(&logs[6]), "1"]);
        assert!(!s.cell_at("#4").modifier.contains(Modifier::DIM), "live");
        // Bytes: the three responses of #0, as its log lines count them.
        let out: u64 =
            logs[..3].iter().map(|l| l.split_whitespace().nth(6).unwrap().parse::<u64>().unwrap()).sum();
        assert!(ka.contains(&out.to_string()), "{out} bytes out in {ka:?}");
        // Sized to the content: no wide blank column between the server and the count.
        let head = s.row("BE/SRV").1;
        let gap = head.find("REQS").unwrap() - head.find("BE/SRV").unwrap();
        assert!(gap <= "dead/<NOSRV>".len() + 2, "BE/SRV is {gap} wide at {w} columns:\n{head}");
    }
    let s = f.render(160, 48);
    assert!(s.has("SI0/SI1") && s.words("#4").iter().any(|w| w.starts_with("EST/")), "{}", s.text());
    // The log line of the selected session's request sits under the list.
    f.app.view.follow = false;
    f.app.view.sess_sel = Some(1);
    let s = f.render(160, 48);
    assert!(s.row("log: ").1.contains("\"GET /api/one HTTP/1.1\""), "{}", s.text());

    // Filters: plain text in the path, and field forms; the title counts the matches.
    f.filter("/api");
    let s = f.render(80, 24);
    assert_eq!(row_ids(&s), ["#1", "#0"], "{}", s.text());
    assert!(s.has("filter '/api': 2 of 5 match"), "{}", s.text());
    assert!(s.words("#0").contains(&"/api/orders".to_string()), "the row shows the request that matched");
    for (filter, ids) in [
        ("status:4xx", &["#2"][..]),
        ("status:5xx", &["#3"]),
        ("status:200 closed", &["#1", "#0"]),
        ("term:PR", &["#2"]),
        ("term:pr", &[]),
        ("term:SC", &["#3"]),
        ("srv:gone", &["#3"]),
        ("src:127.0.0.1", &["#4", "#3", "#2", "#1", "#0"]),
        ("src:10.", &[]),
        ("admin", &["#2"]),
        ("held", &["#4"]),
        ("#3", &["#3"]),
    ] {
        f.filter(filter);
        let s = f.render(80, 24);
        assert_eq!(row_ids(&s), ids, "filter {filter}:\n{}", s.text());
        assert!(s.has(&format!("{} of 5 match", ids.len())), "filter {filter}:\n{}", s.text());
    }
    let srv = log_be_srv(&logs[0]).trim_start_matches("be/").to_string();
    f.filter(&format!("srv:{srv}"));
    assert!(row_ids(&f.render(80, 24)).contains(&"#0".to_string()));
    f.app.apply(Intent::Back);
    assert_eq!(f.app.view.filter, "", "Esc clears the filter");
}

#[test]
fn under_a_filter_follow_mode_selects_and_opens_the_newest_session_the_filter_shows() {
    let mut f = Fixture::http();
    f.app.view.follow = true;
    f.filter("/api");
    let s = f.render(80, 24);
    // #4 (live, `/held`) is the newest session; the newest /api one is #1.
    assert!(s.cell_at("#1 ").modifier.contains(Modifier::REVERSED), "{}", s.text());
    assert!(s.has("selected #1 "), "{}", s.text());
    f.app.apply(Intent::Open);
    assert_eq!(f.app.view.detail, Some(1), "Enter opens the row drawn selected");
    f.render(80, 24).assert_has(&["session #1 closed"]);
    // A filter nothing matches: nothing selected, Enter opens nothing.
    f.app.apply(Intent::Back);
    f.filter("/nothing-like-this");
    f.render(80, 24);
    f.app.apply(Intent::Open);
    assert_eq!(f.app.view.view, ViewKind::Sessions);
}

#[test]
fn sessions_view_lists_live_and_closed_sessions_like_show_sess() {
    let mut f = Fixture::new();
    assert_eq!(f.app.view.view, ViewKind::Sessions, "the UI opens on the sessions");
    let s = f.render(80, 24);
    s.assert_has(&["1 live, 3 closed", "ID", "REQUEST", "BE/SRV", "REQS", "AGE", "IN", "OUT"]);
    // TCP mode: no request line; a live session's transaction is under way (no status,
    // no termination state yet).
    let live = s.words("#3");
    assert_eq!(&live[..7], ["#3", "fe", "tcp", "-", "-", "be/s2", "1"], "{live:?}");
    for (id, srv) in [("#0", "be/s1"), ("#1", "be/s2"), ("#2", "be/s1")] {
        let w = s.words(id);
        assert_eq!(&w[..7], [id, "fe", "tcp", "-", "--", srv, "1"], "closed, with its server: {w:?}");
        assert!(s.cell_at(id).modifier.contains(Modifier::DIM), "closed sessions are dimmed");
    }
    assert!(!s.cell_at("#3").modifier.contains(Modifier::DIM));
    // Follow mode selects the newest; the table's first row is the newest (ID descending).
    assert_eq!(f.app.view.sess_sel, Some(3));
    assert!(s.cell_at("#3").modifier.contains(Modifier::REVERSED), "the selected row is highlighted");
    let s = f.render(160, 48);
    let live = s.words("#3");
    assert_eq!((&live[..7], live.last().unwrap().as_str()), (&live[..7], "EST/EST"), "{live:?}");

    // Sort by ID ascending, then by backend/server.
    f.app.apply(Intent::SortInvert);
    let order = |s: &Screen| -> Vec<String> {
        // Table rows start with `#id`; the decoded-buffers line under the table says `#id req`.
        s.lines()
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|w| w.first().is_some_and(|w| w.starts_with('#')) && w.get(1) != Some(&"req"))
            .map(|w| w[0].to_string())
            .collect()
    };
    assert_eq!(order(&f.render(80, 24))[..4], ["#0", "#1", "#2", "#3"]);
    f.app.apply(Intent::SortNext);
    f.app.apply(Intent::SortNext);
    let s = f.render(80, 24);
    assert!(s.has("REQUEST▲"), "the sort column is marked");
    f.app.apply(Intent::SortNext);
    f.app.apply(Intent::SortNext);
    f.app.apply(Intent::SortNext);
    let s = f.render(80, 24);
    assert!(s.has("BE/SRV▲"), "the sort column is marked");
    assert_eq!(order(&s)[..4], ["#0", "#2", "#1", "#3"], "be/s1 first");

    // Filter: `/` then text; Esc clears.
    f.app.apply(Intent::FilterStart);
    for c in "be/s2".chars() {
        f.app.apply(Intent::FilterChar(c));
    }
    f.app.apply(Intent::FilterDone);
    let s = f.render(80, 24);
    assert_eq!(order(&s), ["#1", "#3"], "{}", s.text());
    assert!(s.has("filter 'be/s2': 2 of 4 match"));
    f.app.apply(Intent::Back);
    f.app.apply(Intent::FilterStart);
    for c in "live".chars() {
        f.app.apply(Intent::FilterChar(c));
    }
    f.app.apply(Intent::FilterDone);
    assert_eq!(order(&f.render(80, 24)), ["#3"]);
    f.app.apply(Intent::Back);

    // Follow: a new session takes the selection.
    f.echo_session();
    f.pump_until("session #4", |st| freed(st, 4));
    f.render(80, 24);
    assert_eq!(f.app.view.sess_sel, Some(4));
    // Moving the selection leaves follow mode.
    f.app.apply(Intent::SortInvert);
    f.app.apply(Intent::Down);
    assert!(!f.app.view.follow);

    // A tall terminal shows the selected session's detail under the list.
    f.app.view.sess_sel = Some(0);
    let s = f.render(160, 48);
    s.assert_has(&["session #0 closed", "stream_sock_accept", "session_accept", "process_session"]);
}

#[test]
fn detail_view_groups_a_kept_alive_sessions_spans_by_request_and_folds_zooms_and_searches() {
    let mut f = Fixture::http();
    let logs = traffic(&f.proxy, 3);
    f.app.view.follow = false;
    f.app.view.sess_sel = Some(0);
    f.app.apply(Intent::Open);
    for (w, h) in [(80, 24), (160, 48)] {
        let s = f.render(w, h);
        s.assert_has(&["session #0 closed", "requests 3", "term ----"]);
        // One header per request, the earlier ones folded, with what the log says.
        for (n, path) in [(1, "/api/users"), (2, "/api/orders"), (3, "/")] {
            let head = s.row(&format!("request {n}/3")).1;
            assert!(
                head.contains(&format!("request {n}/3 200 ----")) && head.contains(&format!(" GET {path} ")),
                "{head}"
            );
            let be_srv = log_be_srv(&logs[n - 1]);
            assert!(w < 160 || head.contains(be_srv), "{head}");
            assert_eq!(
                head.trim_start().starts_with('▸'),
                n < 3,
                "only the last request is unfolded: {head}"
            );
        }
        assert_eq!(s.lines().iter().filter(|l| l.contains("  log: 127.0.0.1:")).count(), 3, "{}", s.text());
    }
    f.app.apply(Intent::Bottom);
    f.render(160, 48).assert_has(&["after the last request", "session_free"]);
    f.app.apply(Intent::Top);
    let s = f.render(160, 48);
    for l in &logs[..3] {
        assert!(s.has(&l[..100.min(l.len())]), "the log line of each request beside it: {l}\n{}", s.text());
    }

    // n/p go from request to request; Enter unfolds.
    f.app.apply(Intent::NextRequest);
    f.app.apply(Intent::NextRequest);
    let s = f.render(160, 48);
    assert!(s.cell_of("request 2/3", 0).modifier.contains(Modifier::REVERSED), "{}", s.text());
    assert!(!s.has("request=GET /api/orders"), "folded");
    f.app.apply(Intent::Open);
    // A window tall enough for the whole unfolded request, down to the span that ends it (with the
    // http-request rules of the fixture's frontend, request 2 alone is taller than 48 rows).
    let s = f.render(160, 120);
    assert!(s.row("request 2/3").1.trim_start().starts_with('▾'));
    s.assert_has(&["request=GET /api/orders", "http_req_get_intercept_rule", "http_end_txn_clean_session"]);
    assert!(
        s.row("request 2/3").0 < s.row("http_end_txn_clean_session").0
            && s.row("http_end_txn_clean_session").0 < s.row("request 3/3").0,
        "{}",
        s.text()
    );
    f.app.apply(Intent::PrevRequest);
    assert!(f.render(160, 48).cell_of("request 1/3", 0).modifier.contains(Modifier::REVERSED));
    f.app.apply(Intent::NextRequest);

    // z: the timeline spans request 2 alone; spans of other requests point off it.
    f.app.apply(Intent::Zoom);
    let s = f.render(160, 48);
    assert!(s.has("TIMELINE request 2"), "{}", s.text());
    let header = s.row("request 2/3").1;
    assert!(header.contains(&"█".repeat(30)), "the request fills the zoomed timeline: {header}");
    let earlier = s.row("request 1/3").1;
    // (It ends in the process_session where request 2's wait begins: one cell at most.)
    assert!(earlier.matches('█').count() <= 1, "request 1 is before it: {earlier}");
    f.app.apply(Intent::Zoom);
    assert!(!f.render(160, 48).has("TIMELINE request"), "z again: the whole session");

    // Left folds a span's subtree, then goes to its caller.
    let selected = |s: &Screen| -> String {
        let y = (0..s.0.area.height).find(|&y| s.0[(0, y)].modifier.contains(Modifier::REVERSED));
        y.map(|y| s.lines()[y as usize].clone()).unwrap_or_default()
    };
    for _ in 0..100 {
        let row = selected(&f.render(160, 48));
        if row.contains("▾process_session") {
            break;
        }
        f.app.apply(Intent::Down);
    }
    assert!(selected(&f.render(160, 48)).contains("▾process_session"), "a process_session of request 2");
    let next_line = |s: &Screen| {
        let y = (0..s.0.area.height).find(|&y| s.0[(0, y)].modifier.contains(Modifier::REVERSED)).unwrap();
        s.lines()[y as usize + 1].clone()
    };
    assert!(next_line(&f.render(160, 48)).contains("http_wait_for_request"));
    f.app.apply(Intent::SortPrev);
    let s = f.render(160, 48);
    assert!(selected(&s).contains("▸process_session"), "{}", s.text());
    assert!(!next_line(&s).contains("http_wait_for_request"), "its children are hidden:\n{}", s.text());
    f.app.apply(Intent::SortPrev);
    let s = f.render(160, 48);
    assert!(
        s.cell_of("request 2/3", 0).modifier.contains(Modifier::REVERSED),
        "left again: up to the request"
    );
    f.app.apply(Intent::SortNext);

    // / searches span names and fields: the matches and their callers stay.
    f.app.apply(Intent::FilterStart);
    assert_eq!(f.app.view.view, ViewKind::Detail, "/ in the detail view searches it");
    for c in "connect_server".chars() {
        f.app.apply(Intent::FilterChar(c));
    }
    f.app.apply(Intent::FilterDone);
    let s = f.render(160, 48);
    // connect_server once per request, and tcp_connect_server under it unless an idle
    // server connection was reused (`reused=true`).
    let reused = s.text().matches("reused=true").count();
    assert!(s.has(&format!("search 'connect_server': {} spans", 6 - reused)), "{}", s.text());
    assert!(!s.has("http_wait_for_request") && !s.has("stream_sock_read"), "{}", s.text());
    assert_eq!(s.text().matches("sess_update_stream_int").count(), 3, "callers stay: {}", s.text());
    assert_eq!(s.cell_of("▾connect_server", 1).fg, Color::Yellow, "matches stand out");
    f.app.apply(Intent::Back);
    assert!(
        f.app.view.dv.search.is_empty() && f.app.view.view == ViewKind::Detail,
        "Esc clears the search first"
    );
    f.app.apply(Intent::Back);
    assert_eq!(f.app.view.view, ViewKind::Sessions);
}

#[test]
fn detail_view_shows_the_span_waterfall_the_buffers_and_the_log_line() {
    let mut f = Fixture::new();
    f.app.view.follow = false;
    f.app.view.sess_sel = Some(0);
    f.app.apply(Intent::Open);
    assert_eq!((f.app.view.view, f.app.view.detail), (ViewKind::Detail, Some(0)));
    let s = f.render(80, 24);
    s.assert_has(&[
        "session #0 closed",
        "be/s1",
        "term --",
        "req [",
        "rep [",
        "SPAN",
        "START ms",
        "DURATION",
        "session ",
        "stream_sock_accept",
        "session_accept",
        "pool_alloc2",
        "task_new",
        "frontend_accept",
        "task_wakeup",
        "process_session",
    ]);
    // The log line, once the session ended: tcplog with its backend/server.
    let log = s.row("log: ").1;
    assert!(log.contains(" fe be/s1 ") && log.contains(" --"), "{log}");

    // The whole call flow, on a tall terminal, scrolled to the end.
    let s = f.render(160, 48);
    s.assert_has(&[
        "sess_prepare_conn_req",
        "assign_server",
        "connect_server",
        "tcp_connect_server",
        "sess_establish",
        "stream_sock_read",
        "stream_sock_write",
    ]);
    f.app.apply(Intent::Bottom);
    let s = f.render(160, 48);
    s.assert_has(&["stream_sock_shutr", "session_free", "pool_free2", "task_free"]);
    assert!(
        s.lines().iter().any(|l| l.contains("pool_free2") && l.contains("pool=session")),
        "session_free gives the session back to its pool:\n{}",
        s.text()
    );

    // The live session: open spans, stream interfaces established.
    f.app.apply(Intent::Back);
    assert_eq!(f.app.view.view, ViewKind::Sessions);
    f.app.view.sess_sel = Some(3);
    f.app.apply(Intent::Open);
    let s = f.render(160, 48);
    s.assert_has(&["session #3 live", "SI_ST_EST", "task ", "open", "log: emitted when the request ends"]);
}

#[test]
fn event_loop_view_shows_what_each_turn_of_run_poll_loop_did() {
    let mut f = Fixture::new();
    f.app.apply(Intent::Show(ViewKind::EventLoop));
    let s = f.render(80, 24);
    s.assert_has(&[
        "loops/s",
        "events/s",
        "tasks/s",
        "run queue",
        "timers",
        "pools (used/allocated)",
        "buffer",
        "wake_expired_tasks",
        "process_runnable_tasks",
        "_do_poll",
    ]);
    // The lane: turns that accepted, read and ran sessions.
    let lane: Vec<String> = f
        .app
        .state
        .lane
        .iter()
        .map(|e| view::event_loop::entry_line(e).spans.iter().map(|s| s.content.as_ref()).collect())
        .collect();
    assert!(lane.iter().any(|l| l.contains("stream_sock_accept#3")), "{lane:#?}");
    assert!(lane.iter().any(|l| l.contains("tasks 1: process_session#3")), "{lane:#?}");
    assert!(lane.iter().any(|l| l.contains("stream_sock_read#0/cli")), "{lane:#?}");
    assert!(lane.iter().any(|l| l.contains("session_free#0")), "{lane:#?}");
    assert!(f.app.state.lane.iter().any(|e| matches!(e, LaneEntry::Root { name: "readcfgfile", .. })));
    // Scrolled to the oldest: start-up shows first.
    f.render(80, 24);
    f.app.apply(Intent::Top);
    let s = f.render(80, 24);
    s.assert_has(&[
        "readcfgfile",
        "check_config_validity",
        "protocol_bind_all",
        "protocol_enable_all",
        "newer lines below",
    ]);
    f.app.apply(Intent::Follow);
    let s = f.render(80, 24);
    assert!(!s.has("newer lines below") && !s.has("readcfgfile"), "{}", s.text());
    assert!(f.app.state.turns_seen > 0);
}

#[test]
fn logs_view_and_help_overlay() {
    let mut f = Fixture::http();
    let logs = traffic(&f.proxy, 7);
    f.app.apply(Intent::Show(ViewKind::Logs));
    let s = f.render(80, 24);
    assert_eq!(
        s.lines().iter().filter(|l| l.contains(" log 127.0.0.1:") && l.contains(" fe be/s")).count(),
        5,
        "{}",
        s.text()
    );
    // At 80 columns an httplog line ends past the edge: right scrolls it sideways until
    // its status and request show, left brings it back; the time and kind stay.
    let denied = logs.iter().find(|l| l.contains("/admin")).unwrap();
    let tail = &denied[denied.find(" 403 ").unwrap()..];
    assert!(!s.has("\"GET /admin HTTP/1.1\""), "cut at 80 columns:\n{}", s.text());
    for _ in 0..10 {
        if f.render(80, 24).has("\"GET /admin HTTP/1.1\"") {
            break;
        }
        f.app.apply(Intent::SortNext);
    }
    let s = f.render(80, 24);
    let row = s.lines().into_iter().find(|l| l.contains("GET /admin")).expect("scrolled into view");
    assert!(row.contains(" log «") && row.contains(" 403 "), "{row}\n{tail}");
    while f.app.view.log_x > 0 {
        f.app.apply(Intent::SortPrev);
    }
    assert!(!f.render(80, 24).has("«"), "back to the start of the lines");

    f.app.apply(Intent::Help);
    for (w, h) in [(80, 24), (160, 48)] {
        let s = f.render(w, h);
        s.assert_has(&[
            "haflow keys",
            "next / previous view",
            "pause the display",
            "disable the selected server",
        ]);
    }
    f.render(160, 48).assert_has(&["q / Ctrl-C"]);
    // The legend: termination-state letters, SI_ST_* and BF_* words. At 80x24 it is below
    // the keys: j scrolls to it.
    let legend = ["Termination state", "P the proxy", "SI_ST_*", "EST: established", "BF_*", "SHUTR/SHUTW"];
    f.render(160, 48).assert_has(&legend);
    assert!(!f.render(80, 24).has("EST: established"));
    for _ in 0..60 {
        f.app.apply(Intent::Down);
    }
    let s = f.render(80, 24);
    s.assert_has(&["EST: established", "SHUTR/SHUTW"]);
    assert!(!s.has("next / previous view"), "scrolled past the keys");
    f.app.apply(Intent::Help);
    assert!(!f.render(80, 24).has("haflow keys"));
}

#[test]
fn mouse_clicks_pick_tabs_and_rows() {
    let mut f = Fixture::new();
    f.render(80, 24);
    let (x0, _, _) = *f.app.hits.tabs.iter().find(|t| t.2 == ViewKind::Proxies).unwrap();
    f.app.apply(Intent::Click { x: x0 + 1, y: f.app.hits.tabs_y });
    assert_eq!(f.app.view.view, ViewKind::Proxies);
    f.render(80, 24);
    let list = f.app.hits.list.unwrap();
    f.app.apply(Intent::Click { x: 2, y: list.area.y + 1 });
    assert_eq!(f.app.view.proxies_sel, 1);
    // Sessions: a click selects, a second click opens.
    f.app.apply(Intent::Show(ViewKind::Sessions));
    f.render(80, 24);
    let list = f.app.hits.list.unwrap();
    f.app.apply(Intent::Click { x: 2, y: list.area.y + 2 });
    let picked = f.app.view.sess_sel;
    assert_eq!(picked, Some(1), "third row from the top, newest first");
    f.render(80, 24);
    f.app.apply(Intent::Click { x: 2, y: list.area.y + 2 });
    assert_eq!((f.app.view.view, f.app.view.detail), (ViewKind::Detail, picked));
}

// ---- a scenario, the demo and the walkthrough, as the UI shows them --------------------

/// Folds what `feed` and `cap` carry into `app` until `cond` holds (each round waits for
/// a snapshot, or briefly for records once the proxy has stopped sending them).
fn pump_app_until(app: &mut App, feed: &Feed, cap: &Capture, what: &str, mut cond: impl FnMut(&App) -> bool) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(20);
    loop {
        if let Ok(s) = feed.snapshots.recv_timeout(Duration::from_millis(20)) {
            app.state.apply_snapshot(s);
        }
        app.state.set_now(start.elapsed());
        haflow::tui::pump(&mut app.state, feed, cap);
        if cond(app) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

fn render_app(app: &mut App, w: u16, h: u16) -> Screen {
    app.sync();
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.hits = view::draw(f, app.shown(), &app.view)).unwrap();
    Screen(t.backend().buffer().clone())
}

#[test]
fn a_scenario_watched_by_the_ui_shows_its_session_then_its_outcome() {
    let sc = find("basic-get").unwrap().scenario().unwrap();
    let (sink, cap) = capture(1 << 16);
    let (prod, feed) = producer(100);
    // The UI folds data in while the scenario runs, as `scenario run --tui` does.
    let driver = std::thread::spawn(move || {
        run(&sc, RunOptions { observer: Some(Box::new(prod)), also: Some(sink), ..RunOptions::default() })
    });
    let mut app = App::default();
    app.set_status("scenario basic-get: A basic GET - running its traffic...", Tone::Info);
    pump_app_until(&mut app, &feed, &cap, "the proxy's last snapshot", |app| {
        app.state.snap.as_ref().is_some_and(|s| s.stopped)
    });
    let res = driver.join().unwrap();
    assert!(res.as_ref().is_ok_and(|o| o.passed()), "{res:?}");
    pump_app_until(&mut app, &feed, &cap, "session #0's whole tree", |app| {
        app.state.trace(0).is_some_and(|t| t.end().is_some())
    });

    let s = render_app(&mut app, 80, 24);
    s.assert_has(&["running its traffic", "STOPPED", "#0"]);
    assert_eq!(s.cell_at("running its traffic").bg, Color::Cyan);
    show_outcome(&mut app, "basic-get", &res);
    for (w, h) in [(80, 24), (160, 48)] {
        let s = render_app(&mut app, w, h);
        s.assert_has(&["scenario basic-get: all expectations met", "STOPPED"]);
        assert_eq!(s.cell_at("scenario basic-get").bg, Color::Green);
        // The last copy of the proxy: the session freed, both sides closed.
        let row = s.words("#0");
        assert_eq!(&row[..8], ["#0", "fe", "GET", "/", "200", "----", "be/s1", "1"], "{row:?}");
    }
    app.apply(Intent::Open);
    app.apply(Intent::Bottom);
    let s = render_app(&mut app, 160, 48);
    s.assert_has(&["session #0 closed", "http_wait_for_response", "session_free", "pool_free2"]);
    app.apply(Intent::Show(ViewKind::Logs));
    let s = render_app(&mut app, 160, 48);
    s.assert_has(&[" fe be/s1 ", "\"GET / HTTP/1.1\"", "ui  all expectations met"]);
    // A scenario runs as written: `d` says why it does nothing.
    app.control_off = Some("d/e are off: a scenario runs as written".into());
    app.apply(Intent::Show(ViewKind::Proxies));
    assert_eq!(app.apply(Intent::Disable), None);
    assert!(render_app(&mut app, 80, 24).has("d/e are off"));

    // Expectations not met: red, the first one on the status line, all of them in the log.
    let failed = Outcome {
        failures: vec![
            "step 1 (Request): expected status 404, got 200".into(),
            "log line 1 does not match".into(),
        ],
        ..Outcome::default()
    };
    show_outcome(&mut app, "basic-get", &Ok(failed));
    app.apply(Intent::Show(ViewKind::Logs));
    let s = render_app(&mut app, 160, 48);
    let status = "scenario basic-get: 2 expectation(s) not met (5 Logs lists them): step 1 (Request): expected status 404, got 200";
    s.assert_has(&[status, "- step 1 (Request): expected status 404", "- log line 1 does not match"]);
    assert_eq!(s.cell_at("scenario basic-get: 2").bg, Color::Red);
    // Paused, the verdict still shows.
    app.apply(Intent::Pause);
    show_outcome(&mut app, "basic-get", &Err("backend S1: address in use".into()));
    let s = render_app(&mut app, 80, 24);
    s.assert_has(&["PAUSED", "scenario basic-get could not run: backend S1"]);
    assert_eq!(s.cell_at("scenario basic-get could").bg, Color::Red);
}

#[test]
fn the_demo_watched_by_the_ui_shows_its_servers_counters_and_call_flows() {
    let (sink, cap) = capture(1 << 16);
    let (prod, feed) = producer(100);
    let demo = Demo::start(Some(sink), Some(Box::new(prod))).expect("the demo starts");
    let mut app = App::default();
    pump_app_until(&mut app, &feed, &cap, "health checks, and requests through both backends", |app| {
        let Some(snap) = &app.state.snap else { return false };
        let checked = snap
            .proxies
            .iter()
            .flat_map(|p| &p.servers)
            .filter(|s| s.check.as_ref().is_some_and(|c| c.status == HchkStatus::HCHK_STATUS_L7OKD))
            .count()
            == 3;
        let served = snap
            .proxies
            .iter()
            .filter(|p| p.name == "app" || p.name == "api")
            .all(|p| p.counters.cum_sess > 0);
        let flows = app
            .state
            .traces
            .values()
            .any(|t| t.end().is_some() && t.nodes.iter().any(|n| n.name == "http_wait_for_response"));
        checked && served && flows
    });
    demo.stop();
    app.apply(Intent::Show(ViewKind::Proxies));
    let s = render_app(&mut app, 160, 48);
    s.assert_has(&["web/FRONTEND", "app/s1", "app/s2", "app/s3", "app/BACKEND", "api/api1", "L7OK"]);
    let fe = s.words("web/FRONTEND");
    assert_eq!(fe[1], "OPEN");
    // NAME STATUS W CUR MAX LIM QCUR QMAX TOTAL
    let total: u64 = fe[8].parse().unwrap_or_else(|_| panic!("a TOTAL column: {fe:?}"));
    assert!(total > 0, "{fe:?}");
    // A session served by the app backend, opened: its call flow by HAProxy's names.
    let id = app
        .state
        .traces
        .values()
        .filter(|t| t.end().is_some() && t.nodes.iter().any(|n| n.name == "http_wait_for_response"))
        .map(|t| t.uniq_id)
        .max()
        .unwrap();
    app.apply(Intent::Show(ViewKind::Sessions));
    app.view.follow = false;
    app.view.sess_sel = Some(id);
    app.apply(Intent::Open);
    let s = render_app(&mut app, 160, 48);
    s.assert_has(&[
        &format!("session #{id} closed"),
        "web",
        "process_session",
        "http_wait_for_request",
        "connect_server",
    ]);
}

/// A scenario run with the UI's feeds, and the UI's state once session #0's tree is whole.
fn scenario_in_ui(name: &str) -> (App, Outcome) {
    let sc = find(name).unwrap().scenario().unwrap();
    let (sink, cap) = capture(1 << 16);
    let (prod, feed) = producer(100);
    let driver = std::thread::spawn(move || {
        run(&sc, RunOptions { observer: Some(Box::new(prod)), also: Some(sink), ..RunOptions::default() })
    });
    let mut app = App::default();
    pump_app_until(&mut app, &feed, &cap, "the proxy's last snapshot", |app| {
        app.state.snap.as_ref().is_some_and(|s| s.stopped)
    });
    let out = driver.join().unwrap().expect("the scenario runs");
    assert!(out.passed(), "{:?}", out.failures);
    pump_app_until(&mut app, &feed, &cap, "session #0's whole tree", |app| {
        app.state.trace(0).is_some_and(|t| t.end().is_some())
    });
    (app, out)
}

/// A fresh directory for exported files.
fn export_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("haflow-export-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The trace and listing paths an export's box shows.
fn exported(s: &Screen) -> (std::path::PathBuf, std::path::PathBuf) {
    let path = |label: &str| {
        let (_, row) = s.row(label);
        let at = row.find(label).unwrap() + label.len();
        std::path::PathBuf::from(row[at..].split('│').next().unwrap().trim())
    };
    (path("trace:"), path("listing:"))
}

/// The `b`/`e` events of a Chrome trace file.
fn span_events(path: &std::path::Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON");
    v["traceEvents"]
        .as_array()
        .expect("traceEvents")
        .iter()
        .filter(|e| e["ph"] == "b" || e["ph"] == "e")
        .cloned()
        .collect()
}

#[test]
fn x_writes_the_session_as_a_perfetto_trace_and_the_listing_scenario_run_flow_prints() {
    let (mut app, out) = scenario_in_ui("keep-alive");
    let dir = export_dir("x");
    app.export_dir = dir.clone();
    app.view.follow = false;
    app.view.sess_sel = Some(0);
    app.apply(Intent::Open);
    assert_eq!(app.apply(Intent::Export), None);
    for (w, h) in [(80, 24), (160, 48)] {
        let s = render_app(&mut app, w, h);
        s.assert_has(&["exported session #0", "trace:", "listing:", "any key closes"]);
    }
    let (json, flow) = exported(&render_app(&mut app, 160, 48));
    assert!(json.starts_with(&dir) && json.extension().unwrap() == "json", "{json:?}");
    // The listing: the requests' log lines, then exactly what `scenario run --flow` prints.
    let text = std::fs::read_to_string(&flow).unwrap();
    let tree: String = text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    assert_eq!(tree, out.listing, "the exported listing is the scenario's");
    assert_eq!(text.lines().filter(|l| l.starts_with("# log: ")).count(), 3, "{text}");
    assert!(text.contains("\"GET /two HTTP/1.1\""), "{text}");
    // The trace: that session's spans and nothing else, one track, begin and end paired.
    let events = span_events(&json);
    let names: Vec<&str> =
        events.iter().filter(|e| e["ph"] == "b").map(|e| e["name"].as_str().unwrap()).collect();
    let listed: Vec<&str> = out.listing.lines().map(|l| l.trim().split(' ').next().unwrap()).collect();
    assert_eq!(names, listed, "one slice per span of the call flow, in order");
    assert_eq!(events.iter().filter(|e| e["ph"] == "e").count(), names.len());
    let root = &events[0]["id"];
    assert!(events.iter().all(|e| e["id"] == *root), "one session, one track");
    assert_eq!(events[0]["args"]["sess"], 0);
    // Typed as `--trace` types them: numbers as numbers, HAProxy's names as text.
    let accept = events.iter().find(|e| e["name"] == "stream_sock_accept" && e["ph"] == "b").unwrap();
    assert!(accept["args"]["cfd"].is_u64(), "{accept}");
    let waits: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| {
            e["name"] == "http_wait_for_request" && e["ph"] == "e" && e["args"]["request"].is_string()
        })
        .collect();
    assert_eq!(waits.len(), 3);
    assert_eq!(waits[1]["args"]["request"], "GET /two HTTP/1.1");
    // Any key closes the box; a second export does not overwrite the first.
    app.apply(Intent::Down);
    assert!(!render_app(&mut app, 80, 24).has("any key closes"));
    app.apply(Intent::Export);
    let (json2, flow2) = exported(&render_app(&mut app, 160, 48));
    assert!(json2 != json && flow2 != flow && json.exists() && json2.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn w_writes_every_session_the_filter_matches() {
    let mut f = Fixture::http();
    let dir = export_dir("w");
    f.app.export_dir = dir.clone();
    f.filter("/api");
    assert_eq!(f.app.apply(Intent::ExportAll), None);
    let s = f.render(160, 48);
    s.assert_has(&["exported 2 sessions matching '/api'"]);
    let (json, flow) = exported(&s);
    let events = span_events(&json);
    let mut roots: Vec<u64> = events
        .iter()
        .filter(|e| e["name"] == "session" && e["ph"] == "b")
        .map(|e| e["args"]["sess"].as_u64().unwrap())
        .collect();
    roots.sort_unstable();
    assert_eq!(roots, [0, 1], "the two /api sessions, no other");
    let tracks: std::collections::HashSet<String> = events.iter().map(|e| e["id"].to_string()).collect();
    assert_eq!(tracks.len(), 2, "one track per session");
    let text = std::fs::read_to_string(&flow).unwrap();
    assert!(
        text.contains("# session 0\n") && text.contains("# session 1\n") && !text.contains("# session 2"),
        "{text}"
    );
    // Outside the sessions list, w says where it works.
    f.app.apply(Intent::Down);
    f.app.apply(Intent::Show(ViewKind::Logs));
    f.app.apply(Intent::ExportAll);
    assert!(f.render(80, 24).has("w every session the filter matches"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rows of a table a screen shows, from the row starting with `#id`, minus the age
/// column's value (a replay measures ages on the trace's clock).
fn session_row(s: &Screen, id: &str) -> Vec<String> {
    s.words(id).into_iter().filter(|w| !w.ends_with("ms") && !w.ends_with('s')).collect()
}

#[test]
fn replay_of_an_exported_trace_shows_the_same_sessions_detail_and_loop_with_time_moving() {
    use haflow::tui::Source;
    use haflow::tui::replay::{Replay, app_for};
    let mut f = Fixture::http();
    let dir = export_dir("replay");
    f.app.export_dir = dir.clone();
    f.app.apply(Intent::ExportAll);
    let (json, _) = exported(&f.render(160, 48));
    f.app.apply(Intent::Back);
    let live = f.render(160, 48);
    f.app.view.follow = false;
    f.app.view.sess_sel = Some(0);
    f.app.apply(Intent::Open);
    let live_detail = f.render(160, 48);

    let rec = haflow::trace::replay::load(&json).expect("the export reads back");
    assert!(!rec.has_loop_spans);
    let mut replay = Replay::new(rec, "t.json", 1.0);
    let mut app = app_for(&replay);
    // At the start: nothing yet; `.` plays up to the first span (session #0's root).
    app.apply(Intent::Step);
    assert!(replay.pump(&mut app));
    assert_eq!(app.state.sessions.keys().copied().collect::<Vec<_>>(), [0]);
    let s = render_app(&mut app, 80, 24);
    s.assert_has(&["haflow replay t.json", "PAUSED", "1 open, 1 seen"]);
    // Paused, the clock stays.
    let at = replay.at();
    replay.pump(&mut app);
    assert_eq!(replay.at(), at);
    // A minute on: the end, every session closed, the rows the live UI showed.
    app.apply(Intent::Seek(60));
    replay.pump(&mut app);
    assert!(replay.done());
    for (w, h) in [(80, 24), (160, 48)] {
        let s = render_app(&mut app, w, h);
        s.assert_has(&["END", "0 open, 5 seen"]);
        for id in ["#0", "#1", "#2", "#3"] {
            let live_row = session_row(&live, id);
            let row = session_row(&s, id);
            // The replayed row as the live one, save the columns a narrow screen leaves out.
            assert_eq!(&row[..8], &live_row[..8], "{id} at {w}x{h}:\n{}", s.text());
        }
    }
    // The detail: the same requests, grouped the same way, the same call flow.
    app.view.follow = false;
    app.view.sess_sel = Some(0);
    app.apply(Intent::Open);
    let s = render_app(&mut app, 160, 48);
    for n in 1..=3 {
        let head =
            |s: &Screen| s.row(&format!("request {n}/3")).1.split("  ").next().unwrap().trim().to_string();
        assert_eq!(head(&s), head(&live_detail), "{}", s.text());
    }
    // The waterfall, from its header down: span names (with their fold marks) in order.
    let spans = |s: &Screen| -> Vec<String> {
        s.lines()
            .iter()
            .skip_while(|l| !l.starts_with("SPAN "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    };
    assert_eq!(spans(&s), spans(&live_detail), "{}\n{}", s.text(), live_detail.text());
    // The event loop: turns rebuilt from the sessions' calls.
    app.apply(Intent::Show(ViewKind::EventLoop));
    let s = render_app(&mut app, 160, 48);
    s.assert_has(&["turns rebuilt from the sessions' calls", "stream_sock_accept#0", "process_session#3"]);
    // Back 5 s: the start again.
    app.apply(Intent::Seek(-5));
    replay.pump(&mut app);
    assert!(replay.at().is_zero());
    assert_eq!(app.state.sessions.keys().copied().collect::<Vec<_>>(), [0], "only the first span, open");
    assert!(!app.state.sessions[&0].closed);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTP frontend for the load test: a `deny` rule (403, `PR--`), a backend whose server
/// refuses (503, `SC--`), one whose server cuts its answers (502 `SH--` or `SD--`), and a
/// good one.
const LOAD_CFG: &str = "global\n    log stdout format raw local0\n    maxconn 2000\n\
defaults\n    mode http\n    log global\n    option httplog\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
frontend fe\n    bind 127.0.0.1:0\n    http-request deny if { path_beg /admin }\n    use_backend dead if { path_beg /none }\n    use_backend cut if { path_beg /cut }\n    default_backend be\n\
backend be\n    server s1 \"${S1}\"\n    server s2 \"${S2}\"\n\
backend dead\n    retries 0\n    server gone \"${GONE}\"\n\
backend cut\n    server c1 \"${CUT}\"\n";

/// The UI under full-speed load (keep-alive and one-shot clients, from several threads),
/// folding records at its own pace behind its keeper, with failures injected: it falls
/// behind and samples sessions out, yet every session whose log line has a termination
/// state other than `----` reaches it whole: its root and `session_free` with that state,
/// every span ended, nothing elided.
#[test]
fn under_load_every_failed_session_reaches_the_ui_whole() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let http = |name| backend(BackendSpec::Http(HttpBehaviour::named(name)));
    let cut = backend(BackendSpec::Http(HttpBehaviour {
        close_mid_body: true,
        body_size: 4096,
        ..HttpBehaviour::named("cut")
    }));
    let (s1, s2) = (http("s1"), http("s2"));
    let (sink, cap) = haflow::tui::ui_capture();
    let (prod, feed) = producer(100);
    let proxy = RunningProxy::start_with(
        LOAD_CFG,
        &[
            ("S1", a(s1.addr())),
            ("S2", a(s2.addr())),
            ("GONE", format!("127.0.0.1:{}", free_port())),
            ("CUT", a(cut.addr())),
        ],
        StartOptions { capture: Some(sink), observer: Some(Box::new(prod)), ..Default::default() },
    )
    .expect("haflow starts");
    let addr = proxy.addr("fe");
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for i in 0..8 {
        let stop = Arc::clone(&stop);
        load.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut c) = Conn::connect(addr, SOON) else { continue };
                // Half the threads keep their connection, half close after each request.
                let req = if i % 2 == 0 {
                    Request::get("/")
                } else {
                    Request::get("/").header("Connection", "close")
                };
                while !stop.load(Ordering::Relaxed) {
                    match c.request(&req) {
                        Ok(r) if !r.closes_connection() => {}
                        _ => break,
                    }
                }
            }
        }));
    }
    // The failures, each on a connection of its own, by client port: what the log says.
    let injector = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut made: Vec<(u16, &'static str)> = Vec::new();
            let mut n = 0usize;
            // Fewer than the UI keeps closed (`MAX_CLOSED`), or the oldest failures would go.
            while !stop.load(Ordering::Relaxed) && made.len() < haflow::tui::state::MAX_CLOSED * 3 / 4 {
                std::thread::sleep(Duration::from_millis(30));
                let Ok(mut c) = Conn::connect(addr, SOON) else { continue };
                let port = c.local_addr().map(|a| a.port()).unwrap_or(0);
                let kind = ["deny", "dead", "bad", "cut"][n % 4];
                n += 1;
                let _ = match kind {
                    "deny" => c.request(&Request::get("/admin")).map(|_| ()),
                    "dead" => c.request(&Request::get("/none")).map(|_| ()),
                    "bad" => c
                        .send_raw(b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n")
                        .and_then(|_| c.read_response(false).map(|_| ())),
                    _ => c.request(&Request::get("/cut")).map(|_| ()),
                };
                made.push((port, kind));
            }
            made
        })
    };
    // The UI: a turn every 20 ms, at most its usual 1,000 records a turn (slower than a
    // real one, so that a debug build's proxy outruns it too).
    let mut st = State::default();
    let started = Instant::now();
    let ui_turn = |st: &mut State| {
        std::thread::sleep(Duration::from_millis(20));
        st.set_now(started.elapsed());
        haflow::tui::pump(st, &feed, &cap)
    };
    let keep = cap.keeping().expect("the UI's feed has a keeper").clone();
    // At least 3 s, and until the UI has fallen behind far enough for the keeper to sample
    // sessions out (on a loaded machine the proxy takes longer to outrun the UI).
    let behind = |keep: &haflow::trace::keeper::KeepShared| keep.counts().sampled_out >= 20;
    while started.elapsed() < Duration::from_secs(3)
        || (!behind(&keep) && started.elapsed() < Duration::from_secs(30))
    {
        ui_turn(&mut st);
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let made = injector.join().unwrap();
    // Until everything the keeper passed on is folded in.
    let mut last = (keep.counts(), Instant::now());
    loop {
        let moved = ui_turn(&mut st);
        if moved || keep.counts() != last.0 {
            last = (keep.counts(), Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(500) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the UI never caught up: {:?}", keep.counts());
    }
    let c = keep.counts();
    println!("{} failures injected; keeper: {c:?}; dropped before it: {}", made.len(), st.dropped_records);
    assert!(made.len() >= 40, "{}", made.len());
    assert!(c.sampled_out >= 20, "the UI fell behind and sessions were sampled out: {c:?}");
    assert_eq!(st.dropped_records, 0, "the keeper kept up with the proxy");
    assert_eq!(st.keep, Some(c), "the header's counts");
    for (port, kind) in made {
        let src = format!("127.0.0.1:{port}");
        let e = st
            .sessions
            .values()
            .find(|e| e.src().as_deref() == Some(src.as_str()))
            .unwrap_or_else(|| panic!("the {kind} session from {src} is in the UI"));
        let t = st.trace(e.uniq_id).unwrap_or_else(|| panic!("{kind} #{}: its spans", e.uniq_id));
        assert!(st.failed(e), "{kind} #{} failed, as its spans say", e.uniq_id);
        assert!(
            t.nodes.iter().any(|n| n.name == haflow::trace::names::SESSION_FREE),
            "{kind} #{}: to its end",
            e.uniq_id
        );
        assert_eq!(
            t.nodes[1].name,
            haflow::trace::names::STREAM_SOCK_ACCEPT,
            "{kind} #{}: from its accept",
            e.uniq_id
        );
        assert!(
            t.elided == 0 && t.nodes.iter().all(|n| n.end.is_some()),
            "{kind} #{}: every span ended",
            e.uniq_id
        );
        assert!(
            t.nodes.windows(2).all(|w| w[1].depth <= w[0].depth + 1),
            "{kind} #{}: no span without its caller",
            e.uniq_id
        );
    }
}

/// A rendered walkthrough screen.
fn render_walk(walk: &mut Walk, w: u16, h: u16) -> Screen {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| walk.hits = haflow::tui::view::walkthrough::draw(f, walk)).unwrap();
    Screen(t.backend().buffer().clone())
}

#[test]
fn the_walkthrough_screen_shows_each_step_and_the_state_the_proxy_stopped_in() {
    let wt = haflow::walkthrough::start().expect("the walkthrough starts");
    let mut walk = Walk::new(wt.steps.clone());
    let s = render_walk(&mut walk, 160, 48);
    s.assert_has(&[
        "haflow walkthrough",
        "starting",
        "Starting the walkthrough's scenario",
        "n/space next step",
    ]);
    // What each of the first six stops must show, besides the step's title and span.
    let states: [&[&str]; 6] = [
        &["readcfgfile", "str2listener", "LI_INIT"],
        &["check_config_validity {proxies=2, listeners=1}", "LI_ASSIGNED"],
        &["protocol_bind_all", "tcp_bind_listeners", "LI_ASSIGNED"],
        &["protocol_enable_all", "enable_all_listeners", "LI_LISTEN"],
        &["stream_sock_accept", "session_accept", "SI_ST_EST", "SI_ST_INI", "LI_READY", "nbconn=1/"],
        &[
            "_do_poll",
            "SI_ST_EST",
            "BF_READ_PARTIAL|",
            "AN_REQ_WAIT_HTTP|",
            r#""GET / HTTP/1.1\r\nHost: localhost\r\n\r\n""#,
        ],
    ];
    for (i, want) in states.iter().enumerate() {
        let stop = wt.stops.recv_timeout(SOON).expect("the next stop");
        assert_eq!(stop.index, i);
        walk.on_stop(stop);
        let step = &wt.steps[i];
        let s = render_walk(&mut walk, 160, 48);
        s.assert_has(&[
            &format!("step {}/14: {}", i + 1, step.title),
            &format!("proxy paused in {}", step.span),
            &format!("stopped in: {}", step.span),
            &format!("walkthrough/{}", step.file),
        ]);
        s.assert_has(want);
        // The Markdown is rendered: a bullet with its label, code without backticks.
        s.assert_has(&[&format!("• Stops at: {}", step.span)]);
        assert!(!s.has("`"), "backticks are markup:\n{}", s.text());
        assert_eq!(s.cell_at("• Stops at").fg, Color::Yellow);
        if i == 5 {
            assert_eq!(s.cell_of("si[0] SI_ST_EST", 6).fg, Color::Green, "states stand out");
            assert_eq!(s.cell_of("analysers AN_REQ_WAIT_HTTP|", 10).fg, Color::Magenta, "so do analysers");
            // A small terminal: both panes scroll, and say where they are.
            let s = render_walk(&mut walk, 80, 24);
            s.assert_has(&["step 6/14: a read event", "lines 1-20 of", "↓"]);
            assert!(!s.has("LI_READY"), "the listeners are below the fold:\n{}", s.text());
            walk.apply(WalkIntent::SwitchPane);
            walk.apply(WalkIntent::Bottom);
            let s = render_walk(&mut walk, 80, 24);
            s.assert_has(&["LI_READY", "rep (server -> client)"]);
            walk.apply(WalkIntent::Top);
            walk.apply(WalkIntent::SwitchPane);
            walk.apply(WalkIntent::PageDown);
            assert_eq!(walk.text_scroll, 19, "a page is the pane's height less one line");
            assert!(!render_walk(&mut walk, 80, 24).has("Step 6: a read event"));
        }
        assert_eq!(walk.apply(WalkIntent::Next), Some(WalkEffect::Resume(Resume::Next)));
        assert_eq!(walk.phase, Phase::Running);
        assert!(render_walk(&mut walk, 160, 48).has(&format!("running to step {}", i + 2)));
        // Another `n` while the proxy runs is not an answer.
        assert_eq!(walk.apply(WalkIntent::Next), None);
        wt.resume.send(Resume::Next).unwrap();
    }
    // Step 7 arrives; `c` lets the session run to its end without stopping.
    walk.on_stop(wt.stops.recv_timeout(SOON).expect("step 7"));
    assert_eq!(walk.apply(WalkIntent::Continue), Some(WalkEffect::Resume(Resume::Continue)));
    wt.resume.send(Resume::Continue).unwrap();
    assert!(render_walk(&mut walk, 160, 48).has("running to the end"));
    walk.on_end(wt.driver.join().unwrap());
    let s = render_walk(&mut walk, 160, 48);
    s.assert_has(&[
        "The walkthrough is done",
        "You stopped at 7 of the 14 steps, then let the session run to its end (c).",
        "• 14. the end of a session (session_free)",
        "done: all expectations met",
        "the walkthrough's scenario: all expectations met",
        "1. GET / (connection c1) -> 200 OK",
        " fe be/s1 ",
    ]);
    assert_eq!(s.cell_at("done: all expectations met").bg, Color::Green);
    assert_eq!(walk.apply(WalkIntent::Next), None);
    assert!(render_walk(&mut walk, 80, 24).has("the walkthrough is done: b starts it again"));
    assert_eq!(walk.apply(WalkIntent::Restart), Some(WalkEffect::Restart));
    assert_eq!(walk.apply(WalkIntent::Quit), Some(WalkEffect::Quit));
}

// ---- commands without a terminal ------------------------------------------------------

#[test]
fn without_a_terminal_the_walkthrough_points_to_print_and_the_demo_prints_summaries() {
    let haflow = env!("CARGO_BIN_EXE_haflow");
    let out = Command::new(haflow).arg("walkthrough").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs a terminal") && err.contains("haflow walkthrough --print"), "{err}");

    let out = Command::new(haflow).args(["scenario", "run", "basic-get", "--tui"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tui needs a terminal"));

    let out = Command::new(haflow).args(["demo", "--duration", "2", "--every", "1"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("haflow demo: the configuration"), "{text}");
    assert!(text.contains("frontend web") && text.contains("server s1 \"127.0.0.1:"), "{text}");
    let summaries: Vec<&str> = text.lines().filter(|l| l.starts_with("--- ")).collect();
    assert_eq!(summaries.len(), 2, "one summary a second for two seconds:\n{text}");
    assert!(summaries[1].contains("app/s1 UP"), "{text}");
    assert!(text.contains("responses (status termination-state) so far: 200 ----"), "{text}");
    assert!(text.contains("call flow of session"), "{text}");
}

// ---- the real binary in tmux ----------------------------------------------------------

/// How long the real binary in tmux gets to show something (generous: a loaded 2-core
/// machine runs the other tests at the same time; only a failure waits that long).
const TMUX_PATIENCE: Duration = Duration::from_secs(20);

/// A tmux server of our own (its own socket, in the test's directory) running one
/// command in a pane; killed, and its directory removed, when dropped.
struct Tmux {
    dir: std::path::PathBuf,
    sock: std::path::PathBuf,
}

impl Tmux {
    /// Runs the shell command line `command` in a `w`x`h` pane. After it, the pane shows
    /// `haflow-exit=CODE`, then the terminal's modes as the shell sees them, and stays open
    /// for `capture-pane`.
    fn start(tag: &str, w: u16, h: u16, command: &str) -> Tmux {
        let dir = std::env::temp_dir().join(format!("haflow-tui-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tmux = Tmux { sock: dir.join("tmux.sock"), dir };
        let script = format!(
            "{command}; echo haflow-exit=$?; stty -a | tr ';' '\\n' | grep -ow -e '-\\?icanon' -e '-\\?echo'; exec cat"
        );
        let out = tmux.cmd(&[
            "-u",
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "ui",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            &script,
        ]);
        assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
        tmux
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").arg("-S").arg(&self.sock).args(args).output().expect("tmux runs")
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "ui"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "ui"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    /// Types `text` as it is (no key names).
    fn type_text(&self, text: &str) {
        assert!(self.cmd(&["send-keys", "-t", "ui", "-l", text]).status.success());
    }

    fn display(&self, fmt: &str) -> String {
        String::from_utf8_lossy(&self.cmd(&["display-message", "-p", "-t", "ui", fmt]).stdout)
            .trim()
            .to_string()
    }

    /// Polls the pane until `cond` holds; panics with the last screen after `TMUX_PATIENCE`.
    fn wait(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let ok = eventually(TMUX_PATIENCE, || {
            last = self.capture();
            cond(&last)
        });
        assert!(ok, "timed out waiting for {what}; screen:\n{last}");
        last
    }

    /// Polls the pane until it shows every one of `items`.
    fn wait_for(&self, what: &str, items: &[&str]) -> String {
        self.wait(what, |s| items.iter().all(|i| s.contains(i)))
    }

    /// Waits for the command to end and checks its exit code, and that the terminal was
    /// given back: canonical mode and echo on, main screen, no mouse capture, cursor shown.
    fn assert_exit_and_restored(&self, code: i32) {
        let screen = self.wait("the command to exit", |s| s.contains("haflow-exit="));
        assert!(screen.contains(&format!("haflow-exit={code}\n")), "exit code {code}:\n{screen}");
        let after = self.wait("the terminal modes", |s| s.contains("echo"));
        assert!(after.lines().any(|l| l.trim() == "icanon"), "canonical mode is back:\n{after}");
        assert!(!after.contains("-icanon") && !after.contains("-echo"), "raw mode is off:\n{after}");
        assert_eq!(self.display("#{alternate_on}"), "0", "the alternate screen was left");
        assert_eq!(self.display("#{mouse_any_flag}"), "0", "mouse capture is off");
        assert_eq!(self.display("#{cursor_flag}"), "1", "the cursor is visible");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `haflow run -f CFG --tui` in a `w`x`h` tmux pane, sends HTTP requests through it,
/// checks the sessions, the call flow and the counters on screen, then stops it with `q`
/// (or SIGTERM when `sigterm`) and checks the terminal is given back and the exit code is 0.
fn tui_in_tmux(w: u16, h: u16, sigterm: bool) {
    let s1 = backend(BackendSpec::Http(haflow::scenario::backends::HttpBehaviour::named("s1")));
    let s2 = backend(BackendSpec::Http(haflow::scenario::backends::HttpBehaviour::named("s2")));
    let dir = std::env::temp_dir().join(format!("haflow-tui-{}-run-{w}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let pidfile = dir.join("haflow.pid");
    // TODO(http): `mode tcp` forwards the HTTP requests as bytes until HTTP mode lands;
    // then switch to `mode http` + `option httplog` and assert the 2xx counters and req/s.
    let cfg = format!(
        "global\n    log stdout format raw local0\n    pidfile {}\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s1 {}\n    server s2 {}\n",
        pidfile.display(),
        s1.addr(),
        s2.addr()
    );
    let cfg_path = dir.join("haflow.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let tmux = Tmux::start(
        &format!("run-{w}-tmux"),
        w,
        h,
        &format!("{} run -f {} --tui", env!("CARGO_BIN_EXE_haflow"), cfg_path.display()),
    );
    tmux.wait("the UI", |s| s.contains("haflow up") && s.contains("Sessions"));
    assert_eq!(tmux.display("#{alternate_on}"), "1", "the UI runs on the alternate screen");

    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..3 {
        let r = haflow::scenario::client::get(addr, "/").expect("HTTP through haflow");
        assert_eq!(r.status, 200);
    }
    // Sessions view: three sessions, closed, on both servers.
    let screen = tmux.wait("three sessions", |s| {
        ["#0", "#1", "#2"].iter().all(|id| s.contains(id)) && s.contains("3 closed")
    });
    assert!(screen.contains("be/s1") && screen.contains("be/s2") && screen.contains("CLO"), "{screen}");
    // Enter opens the newest (follow mode): the call flow, by HAProxy's names.
    tmux.keys(&["Enter"]);
    tmux.wait("the call flow of session #2", |s| {
        s.contains("session #2 closed")
            && ["stream_sock_accept", "session_accept", "frontend_accept", "process_session", "assign_server"]
                .iter()
                .all(|n| s.contains(n))
    });
    // Proxies view: the counters.
    tmux.keys(&["1"]);
    let screen = tmux.wait("the frontend's counters", |s| {
        s.lines().any(|l| l.contains("fe/FRONTEND") && l.split_whitespace().any(|w| w == "3"))
    });
    for row in ["be/s1", "be/s2", "be/BACKEND"] {
        assert!(screen.contains(row), "{row} in\n{screen}");
    }
    assert!(!screen.contains(" fe be/s"), "log lines stay off the screen (log pane only):\n{screen}");
    if h < 40 {
        // A resize redraws at the new size: a wider table gains the response-class columns.
        assert!(!screen.contains("2XX"), "{screen}");
        assert!(tmux.cmd(&["resize-window", "-t", "ui", "-x", "100", "-y", "30"]).status.success());
        tmux.wait("the wider proxies table", |s| s.lines().any(|l| l.contains("NAME") && l.contains("2XX")));
    } else {
        tmux.keys(&["4"]);
        tmux.wait("the event loop lane", |s| {
            s.contains("process_session#") && s.contains("stream_sock_accept#")
        });
    }

    if sigterm {
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    } else {
        tmux.keys(&["q"]);
    }
    tmux.assert_exit_and_restored(0);
    drop(tmux);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_real_binary_runs_the_tui_in_tmux_and_gives_the_terminal_back() {
    if !have_tool("tmux") {
        return;
    }
    tui_in_tmux(80, 24, false);
    tui_in_tmux(160, 48, true);
}

#[test]
fn the_walkthrough_in_tmux_goes_through_every_step_restarts_and_quits() {
    if !have_tool("tmux") {
        return;
    }
    let steps = haflow::walkthrough::steps().unwrap();
    let tmux = Tmux::start("walkthrough", 160, 48, &format!("{} walkthrough", env!("CARGO_BIN_EXE_haflow")));
    let at_step = |n: usize, extra: &[&str]| {
        let step = &steps[n - 1];
        let header = format!("step {n}/{}: {}", steps.len(), step.title);
        let stopped = format!("stopped in: {}", step.span);
        let mut items = vec![header.as_str(), stopped.as_str()];
        items.extend_from_slice(extra);
        tmux.wait_for(&format!("step {n}"), &items)
    };
    at_step(1, &["LI_INIT", "n/space next step"]);
    assert_eq!(tmux.display("#{alternate_on}"), "1", "the screen is the walkthrough's");
    tmux.keys(&["n"]);
    at_step(2, &[]);
    // `b`: the run is let go, and a new one stops at step 1 again.
    tmux.keys(&["b"]);
    at_step(1, &["LI_INIT"]);
    for n in 2..=steps.len() {
        // Space does what `n` does.
        tmux.keys(&[if n % 2 == 0 { "n" } else { "Space" }]);
        let state: &[&str] = match n {
            4 => &["LI_LISTEN"],
            5 => &["LI_READY", "SI_ST_EST", "SI_ST_INI"],
            6 => &["si[0] SI_ST_EST", "AN_REQ_WAIT_HTTP"],
            9 => &["si[1] SI_ST_ASS", "output \"GET / HTTP/1.1"],
            14 => &["SI_ST_CLO"],
            _ => &[],
        };
        at_step(n, state);
    }
    tmux.keys(&["n"]);
    tmux.wait_for(
        "the end of the walkthrough",
        &["The walkthrough is done", "You stopped at 14 of the 14 steps", "all expectations met"],
    );
    tmux.keys(&["q"]);
    tmux.assert_exit_and_restored(0);
}

#[test]
fn the_demo_in_tmux_shows_sessions_call_flows_servers_and_counters() {
    if !have_tool("tmux") {
        return;
    }
    let haflow = env!("CARGO_BIN_EXE_haflow");
    let tmux = Tmux::start("demo", 160, 48, &format!("{haflow} demo"));
    // Nothing printed before the UI: its first screen is the sessions view.
    tmux.wait_for("the UI", &["haflow up", "2 Sessions", "demo: clients -> web on 127.0.0.1:"]);
    tmux.wait_for(
        "sessions and their call flow",
        &["web", "app/s", "process_session", "http_wait_for_request"],
    );
    tmux.keys(&["1"]);
    tmux.wait("the servers and their counters", |s| {
        ["web/FRONTEND", "app/s1", "app/s2", "app/s3", "app/BACKEND", "api/api1", "L7OK"]
            .iter()
            .all(|r| s.contains(r))
            && s.lines().any(|l| {
                l.starts_with("web/FRONTEND") && l.split_whitespace().nth(8).is_some_and(|t| t != "0")
            })
    });
    tmux.keys(&["q"]);
    tmux.assert_exit_and_restored(0);
    drop(tmux);

    // `--duration`: it leaves on its own.
    let started = Instant::now();
    let tmux = Tmux::start("demo-duration", 80, 24, &format!("{haflow} demo --duration 5"));
    tmux.wait_for("the UI", &["haflow up", "demo (stops after 5 s)"]);
    tmux.assert_exit_and_restored(0);
    assert!(started.elapsed() >= Duration::from_secs(5), "not before its time");
}

#[test]
fn a_scenario_in_tmux_shows_its_outcome_and_its_exit_status() {
    if !have_tool("tmux") {
        return;
    }
    let haflow = env!("CARGO_BIN_EXE_haflow");
    let tmux = Tmux::start("scenario", 160, 48, &format!("{haflow} scenario run basic-get --tui"));
    tmux.wait_for(
        "the outcome",
        &["scenario basic-get: all expectations met", "STOPPED", "#0", "be/s1", "http_wait_for_request"],
    );
    tmux.keys(&["5"]);
    tmux.wait_for("the report in the log pane", &["1. GET / (new connection) -> 200 OK", " fe be/s1 "]);
    tmux.keys(&["q"]);
    tmux.assert_exit_and_restored(0);
    assert!(tmux.capture().contains("all expectations met"), "the verdict is printed after the UI too");
    drop(tmux);

    // Expectations not met: shown, then exit status 1.
    let dir = std::env::temp_dir().join(format!("haflow-tui-{}-bad-scenario", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad-get.toml");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/basic-get.toml"),
    )
    .unwrap()
    .replace("name = \"basic-get\"", "name = \"bad-get\"")
    .replace("expect_status = 200", "expect_status = 404");
    std::fs::write(&file, text).unwrap();
    let tmux =
        Tmux::start("scenario-bad", 120, 30, &format!("{haflow} scenario run {} --tui", file.display()));
    tmux.wait_for(
        "the failure",
        &["scenario bad-get: 1 expectation(s) not met", "expected status 404, got 200"],
    );
    tmux.keys(&["q"]);
    tmux.assert_exit_and_restored(1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A terminal that goes away (its window closed, here its tmux server killed) ends the
/// UI's process: it must not stay behind reading a closed terminal.
#[test]
fn the_ui_ends_when_its_terminal_goes_away() {
    if !have_tool("tmux") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("haflow-tui-{}-hangup", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("haflow.pid");
    let cfg = format!(
        "global\n    pidfile {}\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{}\n",
        pidfile.display(),
        free_port()
    );
    let cfg_path = dir.join("haflow.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let tmux = Tmux::start(
        "hangup-tmux",
        80,
        24,
        &format!("{} run -f {} --tui", env!("CARGO_BIN_EXE_haflow"), cfg_path.display()),
    );
    tmux.wait("the UI", |s| s.contains("haflow up"));
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
    // `kill -0` probes; its complaint once the process is gone is not the suite's output.
    let alive = || {
        Command::new("kill")
            .args(["-0", &pid])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(alive());
    drop(tmux);
    assert!(eventually(TMUX_PATIENCE, || !alive()), "haflow {pid} outlived its terminal");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sessions table of a screen: for each row, its cells under the header's titles
/// (`ID`, `REQUEST`, `ST`, `TERM`, `BE/SRV`, `REQS`), whatever the terminal's width.
fn sessions_table(screen: &str) -> Vec<std::collections::HashMap<&'static str, String>> {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let Some(hi) = lines.iter().position(|l| {
        let l: String = l.iter().collect();
        l.contains(" ID") && l.contains("REQUEST") && l.contains("BE/SRV")
    }) else {
        return Vec::new();
    };
    let header = &lines[hi];
    let at = |title: &str| -> usize {
        let t: Vec<char> = title.chars().collect();
        let p = (0..header.len()).find(|&i| header[i..].starts_with(&t));
        p.unwrap_or_else(|| panic!("no {title} in the header:\n{screen}"))
    };
    let (request, st, term, srv, reqs) =
        (at("REQUEST"), at(" ST ") + 3, at("TERM"), at("BE/SRV"), at("REQS") + 4);
    let cell = |row: &[char], from: usize, to: usize| -> String {
        row[from.min(row.len())..to.min(row.len())].iter().collect::<String>().trim().to_string()
    };
    let word_at =
        |row: &[char], from: usize| cell(row, from, row.len()).split(' ').next().unwrap_or("").to_string();
    lines[hi + 1..]
        .iter()
        .take_while(|row| {
            let t: String = row.iter().collect();
            t.trim_start().starts_with('#') && t.trim_start()[1..].starts_with(|c: char| c.is_ascii_digit())
        })
        .map(|row| {
            let id: String =
                row.iter().collect::<String>().split_whitespace().next().unwrap_or("").to_string();
            std::collections::HashMap::from([
                ("ID", id),
                ("REQUEST", cell(row, request, st - 3)),
                ("ST", cell(row, st - 3, st)),
                ("TERM", word_at(row, term)),
                ("BE/SRV", word_at(row, srv)),
                ("REQS", cell(row, srv, reqs).rsplit(' ').next().unwrap_or("").to_string()),
            ])
        })
        .collect()
}

/// The detail view's waterfall as drawn: each span row's name (with its fold mark),
/// start and duration, from the `SPAN` header to the status lines under it.
fn waterfall(screen: &str) -> Vec<String> {
    screen
        .lines()
        .skip_while(|l| !l.starts_with("SPAN "))
        .skip(1)
        .take_while(|l| !l.starts_with("request ") && !l.starts_with("session:") && !l.starts_with("jk "))
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .collect()
}

/// Waits for the detail view of session `n` with `reqs` requests, drawn whole (the
/// waterfall filled in and the detail's key line at the bottom, not a frame half drawn).
fn wait_detail(tmux: &Tmux, what: &str, n: &str, reqs: usize) -> String {
    let (head, count) = (format!("session #{n} closed"), format!("requests {reqs}"));
    tmux.wait(what, |s| {
        s.contains(&head)
            && s.contains(&count)
            && s.lines().any(|l| l.starts_with("jk move  n/p request"))
            && waterfall(s).iter().filter(|l| !l.is_empty()).count() >= 10
    })
}

/// Replaces the sessions filter with `text` (`/`, erase what is there, type, Enter).
fn set_filter(tmux: &Tmux, old: &str, text: &str) {
    tmux.keys(&["/"]);
    for _ in 0..old.chars().count() {
        tmux.keys(&["BSpace"]);
    }
    tmux.type_text(text);
    tmux.keys(&["Enter"]);
}

/// The end-to-end check of the issue-17 workflow on the real binary in a `w`x`h` tmux
/// pane, against a running demo: the filter finds `/api` requests and 4xx answers, a
/// closed keep-alive session keeps its server and request count, `x` exports exactly that
/// session, and `haflow replay` of the file shows it again with the same call flow.
fn demo_find_export_replay_in_tmux(w: u16, h: u16) {
    let haflow = env!("CARGO_BIN_EXE_haflow");
    let dir = export_dir(&format!("tmux-{w}"));
    std::fs::create_dir_all(&dir).unwrap();
    let tmux = Tmux::start(&format!("e2e-{w}"), w, h, &format!("cd {} && {haflow} demo", dir.display()));
    tmux.wait_for("the UI", &["haflow up", "2 Sessions"]);
    tmux.keys(&["2"]);

    // `/api`: only /api requests, at least one.
    set_filter(&tmux, "", "/api");
    let screen =
        tmux.wait("the /api sessions", |s| s.contains("filter '/api':") && !sessions_table(s).is_empty());
    for row in sessions_table(&screen) {
        assert!(row["REQUEST"].contains("/api"), "{row:?} under '/api' at {w}x{h}:\n{screen}");
    }

    // `status:4xx`: only 4xx answers (the demo's denied /admin and bad requests).
    set_filter(&tmux, "/api", "status:4xx");
    let screen = tmux
        .wait("the 4xx sessions", |s| s.contains("filter 'status:4xx':") && !sessions_table(s).is_empty());
    for row in sessions_table(&screen) {
        assert!(
            row["ST"].starts_with('4') && row["ST"].len() == 3,
            "{row:?} under 'status:4xx' at {w}x{h}:\n{screen}"
        );
    }

    // A keep-alive session seen live, then closed: its server and request count stay.
    set_filter(&tmux, "status:4xx", "live");
    let keep_alive =
        |r: &std::collections::HashMap<&str, String>| r["REQS"].parse::<u32>().is_ok_and(|n| n >= 2);
    let screen = tmux.wait("a live keep-alive session", |s| {
        s.contains("filter 'live':") && sessions_table(s).iter().any(keep_alive)
    });
    let live = sessions_table(&screen).into_iter().find(keep_alive).unwrap();
    let id = live["ID"].clone();
    let filter = format!("closed {id}");
    set_filter(&tmux, "live", &filter);
    let screen = tmux.wait("the session closed", |s| {
        s.contains(&format!("filter '{filter}': 1 of")) && sessions_table(s).len() == 1
    });
    let row = sessions_table(&screen).remove(0);
    let reqs = row["REQS"].parse::<usize>().unwrap();
    assert!(reqs >= live["REQS"].parse().unwrap(), "{live:?} then {row:?}");
    assert!(row["TERM"] != "-" && row["ST"] != "-", "{row:?}:\n{screen}");
    // Its detail: as many requests as the row says, each logged on the row's server.
    tmux.keys(&["Enter"]);
    let n = id.trim_start_matches('#');
    let detail = wait_detail(&tmux, "its detail", n, reqs);
    let live_flow = waterfall(&detail);
    // The line under the waterfall: the selected line's log (the session's: its last).
    let footer_log = |s: &str| s.lines().rev().find(|l| l.starts_with("log: ")).map(str::to_string);
    let live_log = footer_log(&detail);
    assert!(live_log.as_deref().is_some_and(|l| l.contains(&format!(" {} ", row["BE/SRV"]))), "{detail}");
    assert!(live_flow.iter().any(|l| l.contains("session")) && live_flow.len() > 3, "{detail}");

    // `x`: the session as a trace file, whose path the screen shows.
    tmux.keys(&["x"]);
    tmux.wait_for("the export", &[&format!("exported session #{n}"), "trace:", "listing:"]);
    let json = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.starts_with(&format!("haflow-session-{n}-")) && name.ends_with(".json")
        })
        .expect("x wrote a .json file in the current directory");
    let events = span_events(&json);
    let begins: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "b").collect();
    assert_eq!(events.len(), 2 * begins.len(), "every span begins and ends");
    assert!(events.iter().all(|e| e["id"] == events[0]["id"]), "one session, one track");
    assert_eq!(
        (begins[0]["name"].as_str(), begins[0]["args"]["sess"].as_u64()),
        (Some("session"), n.parse().ok())
    );
    for e in &events {
        let sess = &e["args"]["sess"];
        assert!(sess.is_null() || sess.as_u64() == n.parse().ok(), "only session {n}'s spans: {e}");
    }
    let requests = begins.iter().filter(|e| e["name"] == "http_wait_for_request").count();
    assert!(requests >= reqs, "every request's spans are there");
    let logs: Vec<&str> = events.iter().filter_map(|e| e["args"]["log"].as_str()).collect();
    assert_eq!(logs.len(), reqs, "each request's log line: {logs:?}");
    // The row's server is the one the last request was logged with (none: `<NOSRV>`).
    let last = logs.last().unwrap();
    assert!(last.contains(&format!(" {} ", row["BE/SRV"])), "{row:?}, last logged: {last}");
    tmux.keys(&["Down"]);
    tmux.keys(&["q"]);
    tmux.assert_exit_and_restored(0);
    drop(tmux);

    // `haflow replay`: the same session, the same call flow.
    let tmux = Tmux::start(
        &format!("replay-{w}"),
        w,
        h,
        &format!("{haflow} replay --speed 1000 {}", json.display()),
    );
    let screen = tmux.wait("the replayed session", |s| {
        s.contains("0 open, 1 seen") && sessions_table(s).iter().any(|r| r["ID"] == id)
    });
    let replayed = sessions_table(&screen).into_iter().find(|r| r["ID"] == id).unwrap();
    for col in ["REQUEST", "ST", "TERM", "BE/SRV", "REQS"] {
        assert_eq!(replayed[col], row[col], "{col} of {id} replayed:\n{screen}");
    }
    tmux.keys(&["Enter"]);
    let detail = wait_detail(&tmux, "the replayed detail", n, reqs);
    // (The live screen has a line less for the waterfall: the demo's own status line.)
    let replayed_flow = waterfall(&detail);
    let n = live_flow.len().min(replayed_flow.len());
    assert!(n >= 10, "{detail}");
    assert_eq!(replayed_flow[..n], live_flow[..n], "the same call flow:\n{detail}");
    assert_eq!(footer_log(&detail), live_log, "the same last log line:\n{detail}");
    tmux.keys(&["q"]);
    tmux.assert_exit_and_restored(0);
    drop(tmux);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn in_tmux_the_demo_finds_api_and_4xx_requests_keeps_closed_sessions_exports_one_and_replays_it() {
    if !have_tool("tmux") {
        return;
    }
    demo_find_export_replay_in_tmux(80, 24);
    demo_find_export_replay_in_tmux(160, 48);
}
