//! The stats socket and the HAProxy command line: real UNIX and TCP clients on the CLI
//! (answers byte for byte against HAProxy 2.6's captures, `show stat`'s CSV, levels, live
//! server changes, the same changes from the UI's keys, prompt mode, flooding), runtime traces, UDP syslog framing, and the
//! binary started the way test harnesses start `haproxy` (`-d -f FILE`, `fd@${NAME}`),
//! with hatop driving it in tmux.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use haflow::haproxy::stats::STAT_HEADER;
use haflow::scenario::backends::HttpBehaviour;
use haflow::scenario::client;

use crate::util::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/haproxy-2.6");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The same over TCP.
fn cli_tcp(addr: SocketAddr, input: &str) -> String {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(SOON)).unwrap();
    exchange(s, input, |s| s.shutdown(Shutdown::Write))
}

/// The server answering a `GET` (its `X-Served-By`).
fn served_by(addr: SocketAddr) -> String {
    let r = client::get(addr, "/").expect("a response");
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("X-Served-By").unwrap_or("").to_string()
}

fn http_cfg(sock_dir: &Path, tcp_cli: u16, extra_global: &str) -> String {
    format!(
        "global\n    stats socket {d}/admin.sock mode 600 level admin\n    stats socket {d}/user.sock mode 600 level user\n    stats socket ipv4@127.0.0.1:{tcp_cli} level operator\n    stats timeout 2s\n{extra_global}\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:0\n    default_backend be\n\
         backend be\n    balance roundrobin\n    server s1 \"${{S1}}\"\n    server s2 \"${{S2}}\"\n",
        d = sock_dir.display()
    )
}

struct Setup {
    p: RunningProxy,
    dir: PathBuf,
    admin: PathBuf,
    user: PathBuf,
    oper: SocketAddr,
    _s1: RunningBackend,
    _s2: RunningBackend,
}

fn setup(extra_global: &str) -> Setup {
    let s1 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let s2 = backend(BackendSpec::Http(HttpBehaviour::named("s2")));
    let dir = tmpdir("cli");
    let port = free_port();
    let p = proxy(&http_cfg(&dir, port, extra_global), &[("S1", a(s1.addr())), ("S2", a(s2.addr()))]);
    Setup {
        p,
        admin: dir.join("admin.sock"),
        user: dir.join("user.sock"),
        oper: SocketAddr::from(([127, 0, 0, 1], port)),
        dir,
        _s1: s1,
        _s2: s2,
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn csv_rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn col(name: &str) -> usize {
    STAT_HEADER[2..].split(',').position(|c| c == name).unwrap()
}

#[test]
fn show_stat_has_haproxy_26_header_and_rows_over_unix_and_tcp() {
    let t = setup("");
    for _ in 0..4 {
        served_by(t.p.addr("fe"));
    }
    let fixture_header = fixture("show-stat-header.csv");
    for out in [cli(&t.admin, "show stat\n"), cli_tcp(t.oper, "show stat\n")] {
        assert_eq!(out.lines().next(), fixture_header.lines().next(), "the header is HAProxy 2.6's");
        assert!(out.ends_with(",\n\n"), "rows end with ',' and the answer with an empty line: {out:?}");
        let rows = csv_rows(&out);
        let names: Vec<_> = rows.iter().map(|r| format!("{},{}", r[0], r[1])).collect();
        assert_eq!(names, ["fe,FRONTEND", "be,s1", "be,s2", "be,BACKEND"]);
        for r in &rows {
            assert_eq!(r.len(), 129, "128 columns and the trailing comma: {r:?}");
        }
        let (fe, s1, s2, be) = (&rows[0], &rows[1], &rows[2], &rows[3]);
        assert_eq!(fe[col("stot")], "4");
        assert_eq!(fe[col("status")], "OPEN");
        assert_eq!(fe[col("type")], "0");
        assert_eq!(fe[col("mode")], "http");
        assert_eq!(fe[col("hrsp_2xx")], "4");
        assert_eq!(fe[col("qcur")], "", "a frontend has no queue");
        assert_eq!((s1[col("status")].as_str(), s2[col("status")].as_str()), ("no check", "no check"));
        assert_eq!((s1[col("stot")].as_str(), s2[col("stot")].as_str()), ("2", "2"), "round robin");
        assert_eq!(
            (s1[col("sid")].as_str(), s1[col("iid")].as_str(), s1[col("type")].as_str()),
            ("1", "3", "2")
        );
        assert_eq!(s1[col("slim")], "", "no maxconn, no limit");
        assert_eq!(s1[col("addr")], a(t._s1.addr()));
        assert_eq!(be[col("status")], "UP");
        assert_eq!((be[col("act")].as_str(), be[col("weight")].as_str()), ("2", "2"));
        assert_eq!(be[col("algo")], "roundrobin");
        assert_eq!(be[col("stot")], "4");
        // Bytes count for the backend and the server chosen after the request was read
        // (session_process_counters), so every level adds up.
        let n = |r: &Vec<String>, c: &str| r[col(c)].parse::<u64>().unwrap();
        for dir in ["bin", "bout"] {
            assert!(n(fe, dir) > 0, "{dir}");
            assert_eq!(n(be, dir), n(fe, dir), "{dir}: one backend gets all the frontend's traffic");
            assert_eq!(n(s1, dir) + n(s2, dir), n(be, dir), "{dir}: the servers share the backend's");
            assert!(n(s1, dir) > 0 && n(s2, dir) > 0, "{dir}");
        }
    }
    assert_idle(&t.p);
}

#[test]
fn answers_match_haproxy_byte_for_byte() {
    let t = setup("");
    let cases = [
        ("help\n", "cli-help.out"),
        ("\n", "cli-empty-line.out"),
        ("quit\n", "cli-quit.out"),
        ("disable server\n", "cli-disable-server-noargs.out"),
        ("get weight be/nosuch\n", "cli-get-weight-nosuch.out"),
        ("set weight be/nosuch 1\n", "cli-set-weight-nosuch.out"),
        ("set weight be/s1 abc\n", "cli-set-weight-abc.out"),
        ("set weight\n", "cli-set-weight-noargs.out"),
        ("set weight be/s1 300\n", "cli-set-weight-300.out"),
        ("set server be/s1 state bogus\n", "cli-set-server-state-bogus.out"),
        ("shutdown session 0xBAD\n", "cli-shutdown-session-bad.out"),
        ("show sess 0x1234\n", "cli-show-sess-badid.out"),
        ("get weight be/s1\\;x\n", "cli-escaped-semicolon.out"),
        ("show events buf0\n", "cli-show-events-buf0.out"),
        ("show events\n", "cli-show-events.out"),
        ("clear counters\n", "cli-clear-counters.out"),
        ("set weight be/s1 50\n", "cli-set-weight-50.out"),
        ("get weight be/s1\n", "cli-get-weight.out"),
        ("set weight be/s1 1\n", "cli-set-weight-restore.out"),
    ];
    for (input, file) in cases {
        assert_eq!(cli(&t.admin, input), fixture(file), "answer to {input:?}");
    }
    // The same help text on every level (HAProxy 2.6 lists every command).
    assert_eq!(cli(&t.user, "help\n"), fixture("cli-help-user-socket.out"));
    assert_eq!(cli_tcp(t.oper, "help\n"), fixture("cli-help-operator-socket.out"));
    // An unknown command: HAProxy's header, the closest commands, help/prompt/quit.
    let unknown = cli(&t.admin, "foo\n");
    let multi = fixture("cli-prompt-mode-multi.out");
    let start = multi.find("Unknown command").unwrap();
    let end = start + multi[start..].find("\n\n").unwrap() + 2;
    assert_eq!(unknown, &multi[start..end]);
    let two_words = cli(&t.admin, "foo bar\n");
    let want = fixture("cli-unknown-command.out");
    assert_eq!(two_words.lines().next(), want.lines().next());
    assert!(two_words.ends_with(&want[want.find("  help [<command>]").unwrap()..]), "{two_words}");
    assert_eq!(two_words.lines().count(), want.lines().count(), "5 suggestions: {two_words}");
}

#[test]
fn levels_are_enforced_with_haproxy_messages() {
    let t = setup("");
    let denied = "Permission denied\n\n";
    for (input, file) in [
        ("disable server be/s1\n", "cli-user-disable-server.out"),
        ("enable server be/s1\n", "cli-user-enable-server.out"),
        ("set server be/s1 state maint\n", "cli-user-set-server-state-maint.out"),
        ("set weight be/s1 50\n", "cli-user-set-weight.out"),
        ("clear counters\n", "cli-user-clear-counters.out"),
        ("clear counters all\n", "cli-user-clear-counters-all.out"),
        ("shutdown session 0xBAD\n", "cli-user-shutdown-session.out"),
        ("show sess\n", "cli-user-show-sess.out"),
    ] {
        assert_eq!(cli(&t.user, input), fixture(file), "user socket, {input:?}");
    }
    for input in ["show fd\n", "trace stream level user\n", "show events buf0\n", "operator\n"] {
        assert_eq!(cli(&t.user, input), denied, "user socket, {input:?}");
    }
    assert_eq!(cli(&t.user, "get weight be/s1\n"), "1 (initial 1)\n\n");
    assert!(cli(&t.user, "show info\n").starts_with("Name: haflow\nVersion: "));
    assert!(cli(&t.user, "show stat\n").starts_with(STAT_HEADER));
    for (input, file) in [
        ("disable server be/s1\n", "cli-operator-disable-server.out"),
        ("enable server be/s1\n", "cli-operator-enable-server.out"),
        ("set server be/s1 state maint\n", "cli-operator-set-server-state-maint.out"),
        ("set weight be/s1 50\n", "cli-operator-set-weight.out"),
        ("clear counters all\n", "cli-operator-clear-counters-all.out"),
        ("clear counters\n", "cli-operator-clear-counters.out"),
        ("shutdown session 0xBAD\n", "cli-operator-shutdown-session.out"),
    ] {
        assert_eq!(cli_tcp(t.oper, input), fixture(file), "operator socket, {input:?}");
    }
    assert!(cli_tcp(t.oper, "show sess\n").contains(" fe=GLOBAL "), "operators see sessions");
    // Lowering the level is one-way.
    assert_eq!(cli(&t.admin, "user;disable server be/s1;show cli level\n"), format!("\n{denied}user\n\n"));
    // Nothing a user did changed anything.
    let s1 = &csv_rows(&cli(&t.admin, "show stat\n"))[1];
    assert_eq!((s1[col("status")].as_str(), s1[col("weight")].as_str()), ("no check", "1"));
    // The UNIX sockets carry their `mode`.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&t.admin).unwrap().permissions().mode() & 0o777, 0o600);
    assert_idle(&t.p);
}

#[test]
fn disable_server_takes_effect_on_live_traffic() {
    let t = setup("");
    let fe = t.p.addr("fe");
    let seen: Vec<String> = (0..4).map(|_| served_by(fe)).collect();
    assert!(seen.contains(&"s1".to_string()) && seen.contains(&"s2".to_string()), "{seen:?}");
    assert_eq!(cli(&t.admin, "disable server be/s1\n"), fixture("cli-disable-server.out"));
    let seen: Vec<String> = (0..6).map(|_| served_by(fe)).collect();
    assert!(seen.iter().all(|s| s == "s2"), "s1 is in maintenance: {seen:?}");
    let out = cli(&t.admin, "show stat\n");
    let rows = csv_rows(&out);
    assert_eq!(rows[1][col("status")], "MAINT");
    assert_eq!((rows[3][col("act")].as_str(), rows[3][col("weight")].as_str()), ("1", "1"));
    let state = cli(&t.admin, "show servers state be\n");
    let s1_line = state.lines().nth(2).unwrap();
    let f: Vec<&str> = s1_line.split(' ').collect();
    assert_eq!((f[3], f[5], f[6]), ("s1", "0", "1"), "stopped, in forced maintenance: {s1_line}");
    let logs = wait_log(&t.p, |l| l.contains("going DOWN for maintenance"));
    assert_eq!(
        logs,
        "Server be/s1 is going DOWN for maintenance. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
    );
    assert_eq!(cli(&t.admin, "enable server be/s1\n"), "\n");
    let seen: Vec<String> = (0..4).map(|_| served_by(fe)).collect();
    assert!(seen.contains(&"s1".to_string()), "s1 is back: {seen:?}");
    // Drain: no new traffic, yet not down; weight 0 does the same.
    assert_eq!(cli(&t.admin, "set server be/s2 state drain\n"), "\n");
    assert!((0..4).all(|_| served_by(fe) == "s1"));
    assert_eq!(csv_rows(&cli(&t.admin, "show stat\n"))[2][col("status")], "DRAIN");
    assert_eq!(cli(&t.admin, "set server be/s2 state ready;set weight be/s1 0\n"), "\n\n");
    assert!((0..4).all(|_| served_by(fe) == "s2"));
    assert_eq!(cli(&t.admin, "get weight be/s1\n"), "0 (initial 1)\n\n");
    assert_eq!(cli(&t.admin, "set weight be/s1 100%\n"), "\n");
    assert_eq!(cli(&t.admin, "get weight be/s1\n"), "1 (initial 1)\n\n");
    for l in [
        "Server be/s1 is UP/READY (leaving forced maintenance).",
        "Server be/s2 enters drain state. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
        "Server be/s2 is UP (leaving forced drain).",
    ] {
        wait_log(&t.p, |x| x == l);
    }
    assert_idle(&t.p);
}

/// `show stat` with the columns that count time since a change (`lastchg`, `downtime`)
/// blanked: two proxies changed a few milliseconds apart may differ there only.
fn without_times(answer: &str) -> String {
    answer
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            for c in ["lastchg", "downtime"] {
                if !l.starts_with('#') && f.len() > col(c) {
                    f[col(c)] = "";
                }
            }
            f.join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_uis_d_and_e_keys_do_what_disable_and_enable_server_do() {
    use crossterm::event::{Event, KeyCode, KeyEvent};
    use haflow::tui::input::intent;
    use haflow::tui::view::{ViewKind, proxies::PxRow};
    use haflow::tui::{App, Effect, send_maint};

    let s1 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let s2 = backend(BackendSpec::Http(HttpBehaviour::named("s2")));
    let env = [("S1", a(s1.addr())), ("S2", a(s2.addr()))];
    // The same configuration twice: one proxy watched by the UI, one driven on its socket.
    let (ui_dir, cli_dir) = (tmpdir("ui-keys"), tmpdir("cli-keys"));
    let (prod, feed) = haflow::tui::snapshot::producer(100);
    let by_ui = RunningProxy::start_with(
        &http_cfg(&ui_dir, free_port(), ""),
        &env,
        StartOptions { observer: Some(Box::new(prod)), ..Default::default() },
    )
    .expect("haflow starts");
    let by_cli = proxy(&http_cfg(&cli_dir, free_port(), ""), &env);
    let mut app = App::default();
    feed.request();
    by_ui.query(|_| ());
    app.state.apply_snapshot(feed.snapshots.recv_timeout(SOON).expect("a snapshot"));
    app.apply(haflow::tui::input::Intent::Show(ViewKind::Proxies));
    let snap = app.state.snap.clone().unwrap();
    let rows = haflow::tui::view::proxies::rows(&snap);
    let row_of = |name: &str| {
        rows.iter()
            .position(|r| matches!(r, PxRow::Server(id) if snap.server(*id).unwrap().name == name))
            .unwrap_or_else(|| panic!("a row for {name}"))
    };
    // Presses `key` on the row of server `name`; the UI loop sends what the key asks for.
    let mut press = |name: &str, key: char| {
        app.view.proxies_sel = row_of(name);
        let i = intent(&Event::Key(KeyEvent::from(KeyCode::Char(key))), app.mode()).expect("a key intent");
        let Some(Effect::Maint(id, on)) = app.apply(i) else { panic!("{key} on a server row acts on it") };
        send_maint(&by_ui.control(), id, on);
    };
    let same_stats = |what: &str| {
        // Commands run in order on the proxy thread: the key's is done once `show stat` answers.
        let ui = without_times(&cli(&ui_dir.join("admin.sock"), "show stat\n"));
        let cli_ = without_times(&cli(&cli_dir.join("admin.sock"), "show stat\n"));
        assert_eq!(ui, cli_, "{what}: the UI and the CLI leave the same `show stat`");
        ui
    };

    // Both servers into maintenance: the backend loses its last one and goes down.
    press("s1", 'd');
    press("s2", 'd');
    assert_eq!(cli(&cli_dir.join("admin.sock"), "disable server be/s1;disable server be/s2\n"), "\n\n");
    let stat = same_stats("d");
    let rows = csv_rows(&stat);
    assert_eq!((rows[1][col("status")].as_str(), rows[2][col("status")].as_str()), ("MAINT", "MAINT"));
    assert_eq!((rows[3][col("status")].as_str(), rows[3][col("chkdown")].as_str()), ("DOWN", "1"));
    for p in [&by_ui, &by_cli] {
        wait_log(p, |l| l == "backend be has no server available!");
    }

    press("s1", 'e');
    press("s2", 'e');
    assert_eq!(cli(&cli_dir.join("admin.sock"), "enable server be/s1;enable server be/s2\n"), "\n\n");
    let stat = same_stats("e");
    assert_eq!(csv_rows(&stat)[3][col("status")], "UP");
    for p in [&by_ui, &by_cli] {
        wait_log(p, |l| l == "Server be/s2 is UP/READY (leaving forced maintenance).");
    }
    let _ = (std::fs::remove_dir_all(ui_dir), std::fs::remove_dir_all(cli_dir));
}

#[test]
fn prompt_mode_semicolons_and_pipelined_lines() {
    let t = setup("");
    assert_eq!(cli(&t.admin, "prompt\nshow cli level\nquit\n"), "\n> admin\n\n> ");
    assert_eq!(cli(&t.admin, "get weight be/s1;get weight be/s2\n"), "1 (initial 1)\n\n1 (initial 1)\n\n");
    assert_eq!(cli(&t.admin, "get weight be/s1 ; get weight be/s2\n"), "1 (initial 1)\n\n1 (initial 1)\n\n");
    assert_eq!(cli(&t.admin, "show cli level\r\nshow cli level\n"), "admin\n\nadmin\n\n");
    assert_eq!(cli(&t.admin, "show cli level"), "", "a line without its newline is not run");
    // Interactive: the connection stays open between commands.
    let mut s = UnixStream::connect(&t.admin).unwrap();
    s.set_read_timeout(Some(SOON)).unwrap();
    s.write_all(b"prompt\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut buf = [0u8; 3];
    r.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"\n> ");
    s.write_all(b"set timeout cli 30\nshow version\n").unwrap();
    let mut first = [0u8; 3];
    r.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"\n> ", "set timeout answers nothing");
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, format!("{}\n", env!("CARGO_PKG_VERSION")));
    s.write_all(b"quit\n").unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"\n> ");
    assert_idle(&t.p);
}

#[test]
fn flooding_clients_are_cut_off_and_the_proxy_keeps_serving() {
    let t = setup("");
    let clients = |p: &RunningProxy| p.query(|w| w.cli.conns.len());
    // An endless line: cut off once it exceeds a buffer.
    let mut s = UnixStream::connect(&t.admin).unwrap();
    s.set_write_timeout(Some(SOON)).unwrap();
    let junk = vec![b'a'; 64 * 1024];
    let err = (0..256).find_map(|_| s.write_all(&junk).err()).expect("the proxy stops taking the line");
    assert!(
        matches!(err.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset),
        "closed by the proxy, not merely blocked: {err}"
    );
    let mut out = Vec::new();
    s.set_read_timeout(Some(SOON)).unwrap();
    let _ = s.read_to_end(&mut out);
    assert!(out.is_empty(), "no answer to a line that never ends");
    // Commands sent without ever reading the answers: the proxy stops reading, the
    // client's writes block, and `stats timeout` (2s here) closes the connection.
    let mut s = UnixStream::connect(&t.admin).unwrap();
    s.write_all(b"prompt\n").unwrap();
    s.set_write_timeout(Some(Duration::from_millis(100))).unwrap();
    let cmd = b"show stat\n".repeat(1000);
    let started = Instant::now();
    let blocked = loop {
        if let Err(e) = s.write_all(&cmd) {
            break matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
        }
        assert!(started.elapsed() < SOON, "the proxy kept reading a client that does not read");
    };
    assert!(blocked, "the client's writes block: the proxy stopped reading it");
    assert_eq!(clients(&t.p), 1);
    assert!(eventually(Duration::from_secs(10), || clients(&t.p) == 0), "cut off by the stats timeout");
    drop(s);
    // Meanwhile and after, everyone else is served.
    assert_eq!(served_by(t.p.addr("fe")).len(), 2);
    assert_eq!(cli(&t.admin, "show cli level\n"), "admin\n\n");
    assert_idle(&t.p);
}

/// A stats socket at `level user`, an HTTP frontend in front of one server, and a backend
/// of `n` servers (nothing listens on them; no checks) whose `show stat` is long.
struct ManyServers {
    p: RunningProxy,
    user: PathBuf,
    dir: PathBuf,
    _s1: RunningBackend,
}

impl Drop for ManyServers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn many_servers(n: usize) -> ManyServers {
    let s1 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let dir = tmpdir("many");
    let user = dir.join("user.sock");
    let mut cfg = format!(
        "global\n    stats socket {} level user\n    stats timeout 30s\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:0\n    default_backend be\n\
         backend be\n    server s1 \"${{S1}}\"\n\
         backend many\n",
        user.display()
    );
    for i in 0..n {
        let _ = writeln!(cfg, "    server m{i} 127.0.0.1:{}", 1 + i % 1000);
    }
    let p = proxy(&cfg, &[("S1", a(s1.addr()))]);
    ManyServers { p, user, dir, _s1: s1 }
}

/// The CSV rows of `show stat` answers with the `lastchg` column (seconds since the last
/// state change, which ticks while a long answer is read) blanked.
fn without_lastchg(answer: &str) -> String {
    answer
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            if !l.starts_with('#') && f.len() > col("lastchg") {
                f[col("lastchg")] = "";
            }
            f.join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The stats socket client in slot order (there is one in these tests), with what it holds.
fn cli_client(p: &RunningProxy) -> Option<(haflow::haproxy::dumpstats::CliState, u64, usize, bool)> {
    p.query(|w| {
        let (_, a) = w.cli.conns.iter().next()?;
        Some((a.st0, a.calls, a.buffered_bytes(), w.fdtab.send_ready(a.fd)))
    })
}

#[test]
fn a_client_that_does_not_read_costs_two_buffers_and_freezes_nothing() {
    const SERVERS: usize = 2000;
    const ANSWERS: usize = 40;
    let t = many_servers(SERVERS);
    let bufsize = t.p.query(|w| w.global.tune.bufsize);
    // HAProxy's own filter keeps the HTTP traffic below out of the answers.
    let cmd = "show stat many -1 -1;";
    let mut s = UnixStream::connect(&t.user).unwrap();
    s.write_all(cmd.repeat(ANSWERS).as_bytes()).unwrap();
    s.write_all(b"\n").unwrap();
    // The first answer (~400 KB) fills the kernel's socket buffers: the proxy must stop
    // producing it until the client reads, and parse nothing more meanwhile.
    let blocked = eventually(SOON, || {
        cli_client(&t.p)
            .is_some_and(|(st, _, _, ready)| st == haflow::haproxy::dumpstats::CliState::Output && !ready)
    });
    assert!(blocked, "the answer waits for the client: {:?}", cli_client(&t.p));
    let (_, calls, held, _) = cli_client(&t.p).unwrap();
    assert_eq!(calls, 1, "the other commands wait, unparsed");
    // The input buffer (one buffer) and the output buffer (one buffer and a row, so its
    // storage may double).
    assert!(held <= 4 * bufsize, "{held} bytes held for one client (bufsize {bufsize})");
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(served_by(t.p.addr("fe")), "s1");
        assert!(started.elapsed() < Duration::from_secs(1), "HTTP waited {:?}", started.elapsed());
    }
    assert!(cli_client(&t.p).unwrap().2 <= 4 * bufsize);
    // Now the client reads everything, while HTTP keeps being served.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        s.read_to_string(&mut out).map(|_| out)
    });
    let mut slowest = Duration::ZERO;
    while !reader.is_finished() {
        let started = Instant::now();
        assert_eq!(served_by(t.p.addr("fe")), "s1");
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest < Duration::from_secs(1), "an HTTP request waited {slowest:?} behind the CLI");
    let out = reader.join().unwrap().expect("the whole answer arrives, then the proxy closes");
    let one = without_lastchg(&cli(&t.user, "show stat many -1 -1\n"));
    assert_eq!(one.lines().count(), 1 + SERVERS + 1, "header, servers, BACKEND");
    let answers: Vec<&str> = out.split_inclusive("\n\n").collect();
    assert_eq!(answers.len(), ANSWERS);
    for (i, ans) in answers.iter().enumerate() {
        let ans = without_lastchg(ans);
        let diff = ans.lines().zip(one.lines()).find(|(a, b)| a != b);
        assert!(ans == one, "answer {i} differs from a lone `show stat`: {diff:?}");
    }
    assert!(eventually(SOON, || cli_client(&t.p).is_none()), "the client is released");
    // The other long dumps resume the same way.
    let state = cli(&t.user, "show servers state many\n");
    assert_eq!(state.lines().count(), 2 + SERVERS + 1, "version, header, servers, empty line");
    let last = state.lines().nth(2 + SERVERS - 1).unwrap();
    let uuid = t.p.query(|w| w.find_proxy("many").map(|p| p.uuid));
    assert!(last.starts_with(&format!("{} many {SERVERS} m{} ", uuid.unwrap(), SERVERS - 1)), "{last}");
    assert_eq!(cli(&t.user, "show backend\n"), "# name\nbe\nmany\n\n");
    assert_idle(&t.p);
}

#[test]
fn a_client_that_leaves_mid_answer_is_released() {
    let t = many_servers(2000);
    let baseline = t.p.query(|w| (w.fdtab.nbfd, w.sched.iter().count()));
    for read_first in [0usize, 100_000] {
        let mut s = UnixStream::connect(&t.user).unwrap();
        s.write_all(format!("{}\n", "show stat;".repeat(100)).as_bytes()).unwrap();
        let mut got = vec![0u8; read_first];
        s.read_exact(&mut got).unwrap();
        assert!(
            eventually(SOON, || cli_client(&t.p).is_some_and(|c| !c.3)),
            "the proxy waits for the client to read"
        );
        drop(s);
        assert!(eventually(SOON, || cli_client(&t.p).is_none()), "released after reading {read_first} bytes");
        assert_eq!(
            t.p.query(|w| (w.fdtab.nbfd, w.sched.iter().count())),
            baseline,
            "its fd and task are gone"
        );
    }
    assert_eq!(cli(&t.user, "show cli level\n"), "user\n\n");
    assert_idle(&t.p);
}

/// A TCP `listen` proxy in front of an echo server, with tcplog lines and an admin-level
/// stats socket; its directory goes when it is dropped.
struct EchoCli {
    p: RunningProxy,
    sock: PathBuf,
    dir: PathBuf,
    _echo: RunningBackend,
}

impl Drop for EchoCli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn echo_behind_admin_socket(tag: &str) -> EchoCli {
    let echo = backend(BackendSpec::Echo);
    let dir = tmpdir(tag);
    let sock = dir.join("admin.sock");
    let cfg = format!(
        "global\n    log stdout format raw local0\n    stats socket {} level admin\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen tcp_echo\n    bind 127.0.0.1:0\n    server s1 \"${{S1}}\"\n",
        sock.display()
    );
    let p = proxy(&cfg, &[("S1", a(echo.addr()))]);
    EchoCli { p, sock, dir, _echo: echo }
}

#[test]
fn show_sess_lists_live_sessions_and_shutdown_session_kills_one() {
    let t = echo_behind_admin_socket("sess");
    let (p, sock) = (&t.p, &t.sock);
    let mut c = TcpStream::connect(p.addr("tcp_echo")).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    c.write_all(b"hello\n").unwrap();
    let mut back = [0u8; 6];
    c.read_exact(&mut back).unwrap();
    let out = cli(sock, "show sess\n");
    let line = out.lines().find(|l| l.contains("fe=tcp_echo")).unwrap_or_else(|| panic!("{out}"));
    for part in ["proto=tcpv4", "be=tcp_echo", "srv=s1", "s0=[7,", "s1=[7,", "rq[f=", "rp[f=", "an=00h"] {
        assert!(line.contains(part), "{part} in {line}");
    }
    let timer = regex::Regex::new(r",rx=[0-9]s,").unwrap();
    assert!(timer.is_match(line), "the client timeout is armed: {line}");
    assert!(
        out.lines().any(|l| l.contains("proto=unix_stream src=unix:1 fe=GLOBAL be=<NONE> srv=<none>")),
        "{out}"
    );
    let id = line.split(':').next().unwrap();
    let full = cli(sock, &format!("show sess {id}\n"));
    assert!(full.starts_with(&format!("{id}: [")), "{full}");
    for part in
        ["frontend=tcp_echo (id=2 mode=tcp)", "server=s1 (id=1)", "si[0]=", "(state=EST", "req=", "res="]
    {
        assert!(full.contains(part), "{part} in {full}");
    }
    assert_eq!(cli(sock, &format!("shutdown session {id}\n")), fixture("cli-shutdown-session-valid.out"));
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    let log = wait_log(p, |l| l.contains("tcp_echo/s1"));
    assert_eq!(tcplog_term(&log), "KD", "killed by an administrator during data: {log}");
    assert_idle(p);
}

#[test]
fn runtime_traces_fill_buf0_and_lock_on_one_session() {
    let t = echo_behind_admin_socket("trace");
    let (p, sock) = (&t.p, &t.sock);
    let echo_once = || {
        let mut c = TcpStream::connect(p.addr("tcp_echo")).unwrap();
        c.set_read_timeout(Some(SOON)).unwrap();
        c.write_all(b"ping\n").unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).unwrap();
    };
    assert_eq!(
        cli(sock, "show trace\n").lines().next().unwrap(),
        fixture("cli-show-trace.out").lines().next().unwrap()
    );
    assert!(cli(sock, "show trace\n").contains(" [.] stream     -> none [drp 0]"));
    echo_once();
    assert_eq!(cli(sock, "show events buf0\n"), "\n", "nothing traced while traces are off");
    let setup = "trace session sink buf0;trace session level developer;trace session start now;trace stream sink buf0;trace stream level proto;trace stream lock session;trace stream start now\n";
    assert_eq!(cli(sock, setup), "\n".repeat(7));
    assert!(cli(sock, "show trace\n").contains(" [R] stream     -> buf0 [drp 0]  ["));
    echo_once();
    echo_once();
    let events = cli(sock, "show events buf0\n");
    let lines: Vec<&str> = events.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines.iter().all(|l| l.starts_with("<0>20") && l.contains(" [00|")), "{events}");
    let accepts: Vec<&&str> =
        lines.iter().filter(|l| l.contains("|session|1|") && l.contains("session_accept: ")).collect();
    assert_eq!(accepts.len(), 2, "both sessions' accepts (session is not locked): {events}");
    let stream_sess: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter(|l| l.contains("|stream|"))
        .filter_map(|l| l.split("sess=").nth(1))
        .map(|r| r.split(' ').next().unwrap())
        .collect();
    assert_eq!(stream_sess.len(), 1, "stream is locked on the first session: {events}");
    assert!(lines.iter().any(|l| l.contains("|stream|2|") && l.contains("stream_sock_read")), "{events}");
    assert!(
        cli(sock, "trace stream lock\n")
            .contains("  * session    : lock on the session that started the trace\n")
    );
    assert_eq!(cli(sock, "trace 0\n"), "All traces now stopped\n\n");
    assert!(!cli(sock, "show trace\n").contains("[R]"));
    let before = cli(sock, "show events buf0\n");
    echo_once();
    assert_eq!(cli(sock, "show events buf0\n"), before, "stopped traces record nothing");
    assert_idle(p);
}

#[test]
fn show_events_w_streams_new_events_until_a_key_is_pressed() {
    let t = echo_behind_admin_socket("watch");
    let (p, sock) = (&t.p, &t.sock);
    assert_eq!(cli(sock, "trace session sink buf0;trace session start now\n"), "\n\n");
    let mut w = UnixStream::connect(sock).unwrap();
    w.set_read_timeout(Some(SOON)).unwrap();
    w.write_all(b"show events buf0 -w -n\n").unwrap();
    let (tx, rx) = channel();
    let mut r = BufReader::new(w.try_clone().unwrap());
    std::thread::spawn(move || {
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            let _ = tx.send(std::mem::take(&mut line));
        }
    });
    let watching =
        || p.query(|w| w.cli.conns.iter().any(|(_, a)| a.st0 == haflow::haproxy::dumpstats::CliState::Watch));
    assert!(eventually(SOON, watching), "the client is watching");
    let mut c = TcpStream::connect(p.addr("tcp_echo")).unwrap();
    c.write_all(b"x").unwrap();
    let got = rx.recv_timeout(SOON).expect("a live event arrives");
    assert!(got.contains("|session|1|") && got.contains("session"), "{got}");
    drop(c);
    w.write_all(b"\n").unwrap();
    w.shutdown(Shutdown::Write).unwrap();
    assert!(
        eventually(SOON, || matches!(rx.try_recv(), Err(std::sync::mpsc::TryRecvError::Disconnected))),
        "the watcher stops on a key"
    );
    assert_eq!(cli(sock, "trace 0\n"), "All traces now stopped\n\n");
    assert_idle(p);
}

#[test]
fn pools_activity_tasks_fd_and_info_answer() {
    let t = setup("");
    served_by(t.p.addr("fe"));
    let pools = cli(&t.admin, "show pools\n");
    assert!(pools.starts_with("Dumping pools usage. Use SIGQUIT to flush them.\n  - Pool "), "{pools}");
    assert!(
        pools.contains("  - Pool session (") && pools.contains("  - Pool buffer (16384 bytes) : "),
        "{pools}"
    );
    assert!(pools.lines().any(|l| l.starts_with("Total: 3 pools, ")), "{pools}");
    let act = cli(&t.admin, "show activity\n");
    assert!(act.starts_with("thread_id: 1 (1..1)\ndate_now: "), "{act}");
    assert!(act.contains("\nloops: ") && act.contains("\naccepted: 1\n"), "{act}");
    assert!(cli(&t.admin, "show tasks\n").starts_with("Running tasks: "));
    let fd = cli(&t.admin, "show fd\n");
    assert!(fd.contains("iocb=stream_sock_accept l.st=LI_READY fe=fe"), "{fd}");
    assert!(fd.contains("iocb=cli_accept fe=GLOBAL"), "{fd}");
    let info = cli(&t.admin, "show info\n");
    let keys: Vec<&str> = info.lines().filter_map(|l| l.split_once(": ").map(|(k, _)| k)).collect();
    let want: Vec<String> = fixture("cli-show-info.out")
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(k, _)| k.to_string()))
        .collect();
    assert_eq!(keys, want, "HAProxy 2.6's keys in HAProxy 2.6's order");
    assert!(info.contains("\nCumConns: 1\n") && info.contains("\nNbthread: 1\n"), "{info}");
    assert_eq!(cli(&t.admin, "show backend\n"), "# name\nbe\n\n");
    assert_eq!(cli(&t.admin, "show ssl cert\n"), "'show ssl cert' is not implemented by haflow.\n\n");
    assert_idle(&t.p);
}

#[test]
fn udp_syslog_datagrams_have_haproxy_framing() {
    let recv = || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(SOON)).unwrap();
        s
    };
    let (d3164, d5424, draw) = (recv(), recv(), recv());
    let echo = backend(BackendSpec::Echo);
    let cfg = format!(
        "global\n    log {} local0\n    log {} format rfc5424 local0\n    log {} len 100 format raw local0\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen a-rather-long-proxy-name-to-make-the-line-longer-than-one-hundred-bytes\n    bind 127.0.0.1:0\n    server s1 \"${{S1}}\"\n",
        d3164.local_addr().unwrap(),
        d5424.local_addr().unwrap(),
        draw.local_addr().unwrap()
    );
    let p = proxy(&cfg, &[("S1", a(echo.addr()))]);
    let mut c = TcpStream::connect(p.addrs[0].1).unwrap();
    c.write_all(b"hi").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut sink = Vec::new();
    let _ = c.read_to_end(&mut sink);
    let dgram = |s: &UdpSocket| {
        let mut b = vec![0u8; 2048];
        let n = s.recv(&mut b).expect("a datagram");
        String::from_utf8(b[..n].to_vec()).unwrap()
    };
    let (g3164, g5424, graw) = (dgram(&d3164), dgram(&d5424), dgram(&draw));
    let pid = std::process::id();
    let rfc3164 = regex::Regex::new(
        r"^<134>[A-Z][a-z]{2} [ 123][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] haproxy\[([0-9]+)\]: (.*)\n$",
    )
    .unwrap();
    let rfc5424 =
        regex::Regex::new(r"^<134>1 [0-9]{4}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]{6}[+-][0-9][0-9]:[0-9][0-9] - haproxy ([0-9]+) - - (.*)\n$").unwrap();
    // HAProxy's captures have the same shape.
    assert!(rfc3164.is_match(&fixture("syslog-rfc3164-default-1.dgram")));
    assert!(rfc5424.is_match(&fixture("syslog-rfc5424-1.dgram")));
    let m = rfc3164.captures(&g3164).unwrap_or_else(|| panic!("{g3164:?}"));
    assert_eq!(m[1].parse::<u32>().unwrap(), pid);
    let msg = m[2].to_string();
    assert!(msg.contains(" a-rather-long-proxy-name") && msg.ends_with(" 0/0"), "a tcplog line: {msg}");
    let m = rfc5424.captures(&g5424).unwrap_or_else(|| panic!("{g5424:?}"));
    assert_eq!((m[1].parse::<u32>().unwrap(), &m[2]), (pid, msg.as_str()));
    let fixture_raw = fixture("syslog-raw-len100-1.dgram");
    assert_eq!((graw.len(), fixture_raw.len()), (101, 101), "len 100: 100 bytes and a newline");
    assert_eq!(graw, format!("{}\n", &msg[..100]));
    assert_idle(&p);
}

/// A child process killed when the test ends, even by a failed assertion.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Starts the real binary with inherited listening sockets, as vtest starts haproxy:
/// `fd@${NAME}` in the configuration, `NAME=<fd>` in the environment.
fn spawn_with_fds(args: &[&str], fds: &[(&str, i32)], dir: &Path) -> Spawned {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haflow"));
    cmd.args(args).current_dir(dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, fd) in fds {
        cmd.env(name, fd.to_string());
    }
    let keep: Vec<i32> = fds.iter().map(|(_, fd)| *fd).collect();
    // SAFETY: the closure runs in the child between fork and exec and only calls fcntl(),
    // which is async-signal-safe; it clears FD_CLOEXEC so the listening sockets survive exec.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Spawned(cmd.spawn().expect("haflow starts"))
}

fn lines_of(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &Receiver<String>, seen: &mut Vec<String>, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + SOON;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                seen.push(l.clone());
                if pred(&l) {
                    return l;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no matching line; saw {seen:#?}");
}

#[test]
fn harness_starts_haflow_like_haproxy_with_inherited_listeners() {
    use std::os::fd::AsRawFd;
    let echo = backend(BackendSpec::Echo);
    let dir = tmpdir("harness");
    // What vtest does: listen on 127.0.0.1:0 itself, hand the fds over.
    let fe_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let cli_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (fe_addr, cli_addr) = (fe_listener.local_addr().unwrap(), cli_listener.local_addr().unwrap());
    std::fs::write(
        dir.join("cfg"),
        format!(
            "global\n    stats socket \"{}/stats.sock\" level admin mode 600\n    stats socket \"fd@${{cli}}\" level admin\n\
             global\n    log stdout format raw local0\n\
             defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect \"${{HAPROXY_TEST_TIMEOUT-5s}}\"\n    timeout client 5s\n    timeout server 5s\n\
             listen fe1\n    bind \"fd@${{fe1}}\"\n    server s1 {}\n",
            dir.display(),
            echo.addr()
        ),
    )
    .unwrap();
    let mut child = spawn_with_fds(
        &["-d", "-dM", "-dI", "-dW", "-f", "cfg"],
        &[("fe1", fe_listener.as_raw_fd()), ("cli", cli_listener.as_raw_fd())],
        &dir,
    );
    // The child owns its copies; ours must not accept anything.
    drop(fe_listener);
    drop(cli_listener);
    let out = lines_of(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    wait_line(&out, &mut seen, |l| l == "Using epoll() as the polling mechanism.");
    let mut c = TcpStream::connect(fe_addr).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    c.write_all(b"hello\n").unwrap();
    let mut back = [0u8; 6];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello\n");
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    let accept = wait_line(&out, &mut seen, |l| l.contains(":fe1.accept("));
    let re = regex::Regex::new(r"^([0-9a-f]{8}):fe1\.accept\(([0-9a-f]{4})\)=([0-9a-f]{4}) from \[127\.0\.0\.1:[0-9]+\] ALPN=<none>$").unwrap();
    let m = re.captures(&accept).unwrap_or_else(|| panic!("{accept}"));
    let id = m[1].to_string();
    wait_line(&out, &mut seen, |l| l.starts_with(&format!("{id}:fe1.closed[")));
    let log = wait_line(&out, &mut seen, |l| l.contains(" fe1 fe1/s1 "));
    assert_eq!(tcplog_term(&log), "--");
    // The inherited stats socket answers like vtest's `haproxy h1 -cli`.
    let stat = cli_tcp(cli_addr, "show stat\n");
    assert!(stat.starts_with(STAT_HEADER) && stat.contains("\nfe1,FRONTEND,"), "{stat}");
    assert_eq!(cli(&dir.join("stats.sock"), "show cli level\n"), "admin\n\n");
    // CLI connections are sessions of GLOBAL in the debug output too.
    wait_line(&out, &mut seen, |l| l.contains(":GLOBAL.accept(") && l.ends_with("ALPN=<none>"));
    // vtest ends with SIGINT; exit status 0.
    // SAFETY: kill() with a pid we spawned and a valid signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = wait_child(&mut child);
    assert_eq!(status.code(), Some(0), "{status:?}");
    let _ = std::fs::remove_dir_all(dir);
}

fn wait_child(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + SOON;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("haflow did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigusr1_soft_stop_lets_sessions_finish_then_exits() {
    use std::os::fd::AsRawFd;
    let echo = backend(BackendSpec::Echo);
    let dir = tmpdir("softstop");
    let fe_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fe_addr = fe_listener.local_addr().unwrap();
    std::fs::write(
        dir.join("cfg"),
        format!(
            "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             listen fe1\n    bind \"fd@${{fe1}}\"\n    server s1 {}\n",
            echo.addr()
        ),
    )
    .unwrap();
    let mut child =
        spawn_with_fds(&["-db", "-q", "-f", "cfg", "-p", "pid"], &[("fe1", fe_listener.as_raw_fd())], &dir);
    drop(fe_listener);
    let mut c = TcpStream::connect(fe_addr).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    c.write_all(b"a").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    assert!(eventually(SOON, || std::fs::read_to_string(dir.join("pid"))
        .is_ok_and(|p| p.trim() == child.id().to_string())));
    // SAFETY: kill() with a pid we spawned and a valid signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) }, 0);
    assert!(eventually(SOON, || TcpStream::connect(fe_addr).is_err()), "no longer listening");
    c.write_all(b"b").unwrap();
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"b", "the running session still works");
    assert!(child.try_wait().unwrap().is_none(), "still running while a session is open");
    drop(c);
    assert_eq!(wait_child(&mut child).code(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_mode_exit_codes_and_version_match_haproxy() {
    let tsv = fixture("cfg-exitcodes.tsv");
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (name, flags, code) = (f[0], f[1], f[2].parse::<i32>().unwrap());
        let mut args: Vec<&str> = flags.split(' ').collect();
        let file = format!("cfg-{name}.cfg");
        args.extend(["-f", &file]);
        let out =
            Command::new(env!("CARGO_BIN_EXE_haflow")).args(&args).current_dir(FIXTURES).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "haflow {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if flags.contains("-q") {
            assert!(out.stdout.is_empty() && out.stderr.is_empty(), "-q is silent for {name}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_haflow"))
        .args(["-c", "-f", "cfg-valid.cfg"])
        .current_dir(FIXTURES)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), fixture("cfg-valid.stdout"));
    for flag in ["-v", "-vv"] {
        let out = Command::new(env!("CARGO_BIN_EXE_haflow")).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("haflow version "), "{text}");
        assert!(lines[1].starts_with("Status: ") && lines[2].starts_with("Known bugs: "), "{text}");
        assert!(lines[3].starts_with("Running on: Linux "), "{text}");
        assert_eq!(lines.len() > 4, flag == "-vv", "{text}");
    }
    let out =
        Command::new(env!("CARGO_BIN_EXE_haflow")).args(["-cc", "version_atleast(2.5)"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = Command::new(env!("CARGO_BIN_EXE_haflow")).args(["-cc", "feature(THREAD)"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(env!("CARGO_BIN_EXE_haflow")).arg("-Z").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage : haflow"));
}

#[test]
fn hatop_in_tmux_shows_haflow_frontends_and_servers() {
    if !have_tool("tmux") || !have_tool("hatop") {
        return;
    }
    let a1 = backend(BackendSpec::Http(HttpBehaviour::named("app1")));
    let a2 = backend(BackendSpec::Http(HttpBehaviour::named("app2")));
    let dir = tmpdir("hatop");
    let sock = dir.join("admin.sock");
    let cfg = format!(
        "global\n    stats socket {} level admin\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend web_front\n    bind 127.0.0.1:0\n    default_backend app_back\n\
         backend app_back\n    server app1 \"${{A1}}\"\n    server app2 \"${{A2}}\"\n",
        sock.display()
    );
    let p = proxy(&cfg, &[("A1", a(a1.addr())), ("A2", a(a2.addr()))]);
    served_by(p.addr("web_front"));
    let server = format!("haflow-test-{}", std::process::id());
    let tmux =
        |args: &[&str]| Command::new("tmux").arg("-L").arg(&server).args(args).output().expect("tmux runs");
    let cmd = format!("hatop -s {}", sock.display());
    let started = tmux(&["new-session", "-d", "-s", "hatop", "-x", "200", "-y", "50", &cmd]);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let mut screen = String::new();
    let shown = eventually(Duration::from_secs(15), || {
        screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "hatop"]).stdout).into_owned();
        ["web_front", "app_back", "app1", "app2"].iter().all(|n| screen.contains(n))
    });
    let _ = tmux(&["send-keys", "-t", "hatop", "q"]);
    let _ = tmux(&["kill-server"]);
    assert!(shown, "hatop shows haflow's proxies and servers; screen:\n{screen}");
    assert!(screen.contains("haflow"), "hatop names the software it talks to:\n{screen}");
    let _ = std::fs::remove_dir_all(dir);
    assert_idle(&p);
}

#[test]
fn bind_takes_unix_paths_and_comma_separated_addresses() {
    let echo = backend(BackendSpec::Echo);
    let dir = tmpdir("bind");
    let (p1, p2) = (free_port(), free_port());
    let path = dir.join("fe.sock");
    let cfg = format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen multi\n    bind unix@{},127.0.0.1:{p1},127.0.0.1:{p2}\n    server s1 \"${{S1}}\"\n",
        path.display()
    );
    let p = proxy(&cfg, &[("S1", a(echo.addr()))]);
    let mut u = UnixStream::connect(&path).expect("the UNIX listener accepts");
    u.set_read_timeout(Some(SOON)).unwrap();
    u.write_all(b"over unix\n").unwrap();
    let mut back = [0u8; 10];
    u.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"over unix\n");
    drop(u);
    for port in [p1, p2] {
        let mut t = TcpStream::connect(("127.0.0.1", port)).unwrap();
        t.set_read_timeout(Some(SOON)).unwrap();
        t.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        t.read_exact(&mut b).unwrap();
    }
    let unix_log = wait_log(&p, |l| l.starts_with("unix:"));
    assert!(unix_log.contains(" multi multi/s1 "), "{unix_log}");
    assert_idle(&p);
    p.stop();
    assert!(!path.exists(), "the socket file goes with the listener");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn garbage_on_the_stats_socket_changes_nothing_and_breaks_nothing() {
    let t = setup("");
    let before = cli(&t.admin, "show servers state\n");
    let many_args = format!("help {}\n", "x ".repeat(200));
    let many_cmds = format!("{}\n", "a;".repeat(500));
    let nasty: Vec<Vec<u8>> = vec![
        b"\0\0\0\n".to_vec(),
        b"\xff\xfe\xfd show info\n".to_vec(),
        b"show stat -1 -1 -1 -1 -1\n".to_vec(),
        b"show stat 99999999999999999999 1 1\n".to_vec(),
        b"set weight be/s1 99999999999999999999%\n".to_vec(),
        b"set weight be/s1 -5\n".to_vec(),
        b"set weight /\n".to_vec(),
        b"show sess 0xffffffffffffffffffffffff\n".to_vec(),
        b"shutdown session -1\n".to_vec(),
        b"trace stream event +nope +any -none\n".to_vec(),
        b"trace stream lock session 1 2 3\n".to_vec(),
        b"trace 0 0 0\n".to_vec(),
        b"show fd abc\n".to_vec(),
        b"set server be/s1 weight\n".to_vec(),
        b"set server /s1 state ready\n".to_vec(),
        b"set timeout cli 99999999999999999999d\n".to_vec(),
        b"show events buf0 -w -n -w\n".to_vec(),
        many_args.into_bytes(),
        many_cmds.into_bytes(),
        b"\\;\\;;;\\\n".to_vec(),
    ];
    for input in &nasty {
        let mut s = UnixStream::connect(&t.admin).unwrap();
        s.set_read_timeout(Some(SOON)).unwrap();
        s.write_all(input).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
    }
    // Timeouts beyond HAProxy's 32-bit millisecond timers are refused, not wrapped.
    for v in ["99999999999999999999d", "25d", "2147484"] {
        assert_eq!(cli(&t.admin, &format!("set timeout cli {v}\n")), "Invalid timeout value.\n\n", "{v}");
    }
    // The user socket cannot change anything either, whatever it sends.
    for input in
        ["set server be/s1 state maint\n", "set weight be/s2 0\n", "shutdown sessions server be/s1\n"]
    {
        assert_eq!(cli(&t.user, input), "Permission denied\n\n");
    }
    assert_eq!(cli(&t.admin, "set weight be/s1 1;trace 0\n"), "\nAll traces now stopped\n\n");
    // Everything but the time since the last change is as before.
    let state = |s: &str| -> Vec<String> {
        s.lines()
            .skip(2)
            .map(|l| l.split(' ').enumerate().filter(|(i, _)| *i != 9).map(|(_, f)| f).collect())
            .collect()
    };
    assert_eq!(state(&cli(&t.admin, "show servers state\n")), state(&before));
    assert_eq!(served_by(t.p.addr("fe")).len(), 2, "the proxy still proxies");
    assert_idle(&t.p);
}

/// Tasks, fds and servers of backend `be` (slots, names), to prove what `del server` frees.
fn footprint(p: &RunningProxy) -> (usize, usize, usize, Vec<String>) {
    p.query(|w| {
        let be = w.find_proxy("be").expect("backend be");
        (
            w.sched.nb_tasks(),
            w.fdtab.iter().count(),
            be.servers.slots(),
            be.servers.iter().map(|s| s.name.clone()).collect(),
        )
    })
}

#[test]
fn add_server_and_del_server_follow_haproxy_and_free_everything() {
    let t = setup("");
    let fe = t.p.addr("fe");
    let s3 = backend(BackendSpec::Http(HttpBehaviour::named("s3")));
    let before = footprint(&t.p);
    // HAProxy 2.6's refusals, word for word.
    assert_eq!(cli(&t.admin, "add server nope/s3 127.0.0.1:1\n"), "No such backend.\n");
    assert_eq!(
        cli(&t.admin, "add server be/s3\n"),
        "'server' expects <name> and <addr>[:<port>] as arguments.\n\n"
    );
    assert_eq!(
        cli(&t.admin, "add server be/s1 127.0.0.1:1\n"),
        "Already exists a server with the same name in backend.\n\n"
    );
    assert_eq!(
        cli(&t.admin, "add server be/s3 127.0.0.1:1 cookie c3\n"),
        "'cookie' option is not accepted for dynamic server\n\n"
    );
    assert_eq!(cli(&t.user, "add server be/s3 127.0.0.1:1\n"), "Permission denied\n\n");
    assert_eq!(footprint(&t.p), before, "a refused server leaves nothing behind");
    // A new server starts in maintenance, its check configured but disabled.
    let add = format!("add server be/s3 {} check inter 100ms rise 1 fall 1 weight 2\n", s3.addr());
    assert_eq!(cli(&t.admin, &add), "New server registered.\n\n");
    let state = cli(&t.admin, "show servers state be\n");
    let s3_line = state.lines().find(|l| l.contains(" s3 ")).expect("s3 in show servers state");
    let f: Vec<&str> = s3_line.split(' ').collect();
    assert_eq!(
        (f[2], f[5], f[6], f[7], f[8]),
        ("3", "0", "1", "2", "2"),
        "id 3, stopped, maint, weight 2: {s3_line}"
    );
    assert!((0..4).all(|_| served_by(fe) != "s3"), "in maintenance, s3 takes nothing");
    assert_eq!(cli(&t.admin, "enable server be/s3\n"), "\n");
    assert_eq!(cli(&t.admin, "enable health be/s3\n"), "\n");
    let seen: Vec<String> = (0..8).map(|_| served_by(fe)).collect();
    assert_eq!(seen.iter().filter(|s| *s == "s3").count(), 4, "weight 2 of 4: {seen:?}");
    let checked = eventually(SOON, || {
        csv_rows(&cli(&t.admin, "show stat\n"))
            .iter()
            .any(|r| r[1] == "s3" && r[col("check_status")] == "L4OK")
    });
    assert!(checked, "s3's check runs once enabled");
    // Deletion: only in maintenance, then everything goes (check task, stats, slot).
    assert_eq!(cli(&t.admin, "del server be/s3\n"), "Only servers in maintenance mode can be deleted.\n");
    assert_eq!(cli(&t.admin, "del server be/nope\n"), "No such server.\n");
    assert_eq!(cli(&t.admin, "disable server be/s3;del server be/s3\n"), "\nServer deleted.\n");
    assert_eq!(footprint(&t.p), before, "tasks, fds and server slots are back to what they were");
    assert!((0..4).all(|_| served_by(fe) != "s3"));
    let rows = csv_rows(&cli(&t.admin, "show stat\n"));
    assert!(rows.iter().all(|r| r[1] != "s3"), "s3 is gone from show stat");
    // A deleted server's name and id are free again; deleting a configured server works too.
    assert_eq!(cli(&t.admin, &add), "New server registered.\n\n");
    assert_eq!(cli(&t.admin, "disable server be/s1;del server be/s1\n"), "\nServer deleted.\n");
    let rows = csv_rows(&cli(&t.admin, "show stat\n"));
    let names: Vec<(&str, &str)> = rows.iter().map(|r| (r[1].as_str(), r[col("sid")].as_str())).collect();
    assert_eq!(names, [("FRONTEND", "0"), ("s2", "2"), ("s3", "3"), ("BACKEND", "0")]);
    assert!((0..4).all(|_| served_by(fe) == "s2"), "s1 deleted, s3 in maintenance");
    assert_idle(&t.p);
}

#[test]
fn dynamic_servers_need_a_dynamic_algorithm_and_a_usable_mux() {
    let dir = tmpdir("addsrv");
    let cfg = format!(
        "global\n    stats socket {d}/admin.sock mode 600 level admin\n\
         defaults\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         backend st\n    mode http\n    balance static-rr\n\
         backend tcp\n    mode tcp\n\
         backend http\n    mode http\n    balance leastconn\n",
        d = dir.display()
    );
    let p = proxy(&cfg, &[]);
    let sock = dir.join("admin.sock");
    assert_eq!(
        cli(&sock, "add server st/a 127.0.0.1:1\n"),
        "Backend must use a dynamic load balancing to support dynamic servers.\n"
    );
    assert_eq!(
        cli(&sock, "add server tcp/a 127.0.0.1:1 proto h2\n"),
        "MUX protocol is not usable for server.\n\n"
    );
    assert_eq!(cli(&sock, "add server http/a 127.0.0.1:1 proto h1\n"), "New server registered.\n\n");
    assert_eq!(cli(&sock, "set server http/a fqdn\n"), "set server <b>/<s> fqdn requires a FQDN.\n\n");
    assert_eq!(
        cli(&sock, "set server http/a fqdn example.com\n"),
        "set server <b>/<s> fqdn failed because no resolution is configured.\n\n"
    );
    assert_eq!(
        cli(&sock, "enable health http/a\n"),
        "Health check was not configured on this server, cannot enable.\n\n"
    );
    assert_eq!(
        cli(&sock, "enable agent http/a\n"),
        "Agent was not configured on this server, cannot enable.\n\n"
    );
    assert_idle(&p);
}

/// The head of a response as received.
fn head_text(r: &client::Response) -> String {
    let raw = String::from_utf8_lossy(&r.raw);
    raw.find("\r\n\r\n").map_or(raw.to_string(), |i| raw[..i + 4].to_string())
}

/// A request for the statistics page on `addr`, answered whole (chunks decoded).
fn stats_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut c = connect(addr);
    c.send_raw(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes()).unwrap();
    let r = c.read_response(false).expect("a response");
    let head = head_text(&r);
    (r.status, head, String::from_utf8_lossy(&r.body).into_owned())
}

const STATS_PAGE_CFG: &str = "global\n    stats socket \"${SOCK}\" mode 600 level admin\n\
     defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
     frontend fe\n    bind 127.0.0.1:0\n    stats enable\n    stats uri /stats\n    stats refresh 7s\n    stats admin if { src 127.0.0.1 }\n    default_backend be\n\
     backend be\n    server s1 127.0.0.1:1\n    server s2 127.0.0.1:1\n\
     backend other\n    server o1 127.0.0.1:1\n";

#[test]
fn the_stats_page_serves_csv_and_html_and_applies_admin_posts() {
    let dir = tmpdir("webstats");
    let sock = dir.join("admin.sock");
    let p = proxy(STATS_PAGE_CFG, &[("SOCK", sock.display().to_string())]);
    let fe = p.addr("fe");
    let (status, head, body) = stats_get(fe, "/stats;csv;norefresh");
    assert_eq!(status, 200);
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\ncache-control: no-cache\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let names: Vec<String> =
        body.lines().skip(1).map(|l| l.split(',').take(2).collect::<Vec<_>>().join("/")).collect();
    assert_eq!(body.lines().next(), Some(STAT_HEADER));
    assert_eq!(names, ["fe/FRONTEND", "be/s1", "be/s2", "be/BACKEND", "other/o1", "other/BACKEND"]);
    // `scope=` keeps the proxies whose name holds it; `Refresh` follows `stats refresh`.
    let (_, head, body) = stats_get(fe, "/stats;csv?scope=oth");
    assert!(head.contains("refresh: 7\r\n"), "{head}");
    assert_eq!(
        body.lines().skip(1).map(|l| l.split(',').nth(1).unwrap_or("")).collect::<Vec<_>>(),
        ["o1", "BACKEND"]
    );
    let (status, head, html) = stats_get(fe, "/stats");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html\r\n"), "{head}");
    assert!(html.contains("<table border=1 id=\"be\">") && html.ends_with("</body></html>\n"), "{html}");
    assert!(html.contains("<input type=\"checkbox\" name=\"s\" value=\"s2\">"), "admin rows have checkboxes");
    // The form: servers, an action, the backend by id; answered with a 303 to the page.
    let be_uuid = p.query(|w| w.find_proxy("be").map(|b| b.uuid)).expect("be");
    let form = format!("s=s1&s=s2&action=maint&b=%23{be_uuid}");
    let mut c = connect(fe);
    let post =
        format!("POST /stats?scope=b HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{form}", form.len());
    c.send_raw(post.as_bytes()).unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(
        head_text(&r),
        "HTTP/1.1 303 See Other\r\ncache-control: no-cache\r\ncontent-type: text/plain\r\ncontent-length: 0\r\nlocation: /stats;st=DONE&scope=b\r\n\r\n"
    );
    // The connection stays usable: the page again, on the same connection.
    c.send_raw(b"GET /stats;csv HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let r = c.read_response(false).unwrap();
    let body = String::from_utf8_lossy(&r.body).into_owned();
    let status_of = |name: &str| {
        body.lines()
            .find(|l| l.starts_with(&format!("be,{name},")))
            .map(|l| l.split(',').nth(17).unwrap_or("").to_string())
    };
    assert_eq!((status_of("s1").as_deref(), status_of("s2").as_deref()), (Some("MAINT"), Some("MAINT")));
    // Unknown servers make the outcome partial; an unknown backend is an error.
    let form = "s=s1&s=nope&action=ready&b=be";
    c.send_raw(
        format!("POST /stats HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{form}", form.len()).as_bytes(),
    )
    .unwrap();
    assert!(head_text(&c.read_response(false).unwrap()).contains("location: /stats;st=PART\r\n"));
    let form = "s=s1&action=ready&b=nope";
    c.send_raw(
        format!("POST /stats HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{form}", form.len()).as_bytes(),
    )
    .unwrap();
    assert!(head_text(&c.read_response(false).unwrap()).contains("location: /stats;st=ERRP\r\n"));
    let stat = cli(&sock, "show stat\n");
    let rows = csv_rows(&stat);
    assert_eq!(rows.iter().find(|r| r[1] == "s1").map(|r| r[col("status")].as_str()), Some("no check"));
    drop(c);
    assert_idle(&p);
}

#[test]
fn a_stats_page_larger_than_the_buffer_is_streamed_whole_and_then_keeps_alive() {
    let mut cfg = String::from(
        "global\n    tune.bufsize 4096\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen li\n    bind 127.0.0.1:0\n    stats enable\n",
    );
    for i in 0..200 {
        let _ = writeln!(cfg, "    server s{i} 127.0.0.1:1");
    }
    let p = proxy(&cfg, &[]);
    let addr = p.addr("li");
    let mut c = connect(addr);
    // Two pipelined requests: the second answer must wait for the whole first page.
    c.send_raw(b"GET /haproxy?stats;csv HTTP/1.1\r\nHost: h\r\n\r\nGET /haproxy?stats;csv;up HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let first = c.read_response(false).unwrap();
    let body = String::from_utf8_lossy(&first.body).into_owned();
    assert!(body.len() > 4 * 4096, "{} bytes", body.len());
    assert_eq!(body.lines().count(), 1 + 1 + 200 + 1, "header, FRONTEND, 200 servers, BACKEND");
    let second = c.read_response(false).unwrap();
    assert_eq!(second.status, 200);
    assert_eq!(String::from_utf8_lossy(&second.body).lines().count(), 1 + 1 + 200 + 1);
    let (status, _, html) = stats_get(addr, "/haproxy?stats");
    assert_eq!(status, 200);
    assert_eq!(html.matches("<tr><td>s").count(), 200, "every server row of the HTML page");
    drop(c);
    assert_idle(&p);
}
