//! Health checks: servers go DOWN after `fall` failed checks and come back after `rise`
//! good ones, with HAProxy 2.6's log lines; traffic follows (down servers get none, backups
//! take over, queued sessions are handed to a server coming back); `option httpchk` and
//! `http-check expect status`; layer-4/layer-7 timeouts and invalid answers; check
//! connections and tasks never leak. Configurations are `mode tcp` so that traffic can be
//! asserted independently of the HTTP analysers.

use std::net::{SocketAddr, TcpStream};

use haflow::haproxy::fd::FdOwner;
use haflow::scenario::backends::HttpBehaviour;
use haflow::trace::capture::capture;
use haflow::trace::names;
use haflow::trace::tree::{Node, TreeBuilder};

use crate::util::*;

/// A TCP-mode frontend `fe` whose default backend is `be`, plus `sections`.
fn cfg(extra_defaults: &str, sections: &str) -> String {
    format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 200ms\n    timeout client 5s\n    timeout server 5s\n    timeout queue 5s\n{extra_defaults}\n\
         frontend fe\n    bind 127.0.0.1:0\n    default_backend be\n\
         {sections}\n"
    )
}

/// `check duration: 12ms` -> `check duration: Nms` (the duration varies from run to run).
fn masked(line: &str) -> String {
    const KEY: &str = "check duration: ";
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(KEY) {
        let (head, tail) = rest.split_at(i + KEY.len());
        out.push_str(head);
        out.push('N');
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// The duration in a `check duration: Nms` line.
fn duration_ms(line: &str) -> u64 {
    let tail = &line[line.find("check duration: ").expect("a duration") + 16..];
    tail[..tail.find("ms").unwrap()].parse().unwrap()
}

/// The check and state-change lines (not traffic) logged so far, masked.
fn check_lines(p: &RunningProxy) -> Vec<String> {
    p.logs()
        .iter()
        .filter(|l| l.starts_with("Health check") || l.starts_with("Server ") || l.starts_with("Backup "))
        .map(|l| masked(l))
        .chain(p.logs().iter().filter(|l| l.contains("has no server available")).cloned())
        .collect()
}

/// Waits for a log line starting with `prefix` and returns it.
fn wait_line(p: &RunningProxy, prefix: &str) -> String {
    wait_log(p, |l| l.starts_with(prefix))
}

/// One echo exchange through the proxy; the session ends (and is logged) when it returns.
fn echo_once(addr: SocketAddr) {
    let mut c = connect(addr);
    c.send_raw(b"ping").unwrap();
    assert_eq!(c.read_exact(4).unwrap(), b"ping");
}

/// Traffic log lines (`fe be/srv ...`), in order.
fn traffic(p: &RunningProxy) -> Vec<String> {
    p.logs().into_iter().filter(|l| l.contains(" fe be")).collect()
}

/// `n` echo sessions in a row; returns the server each one was logged with.
fn echo_sessions(p: &RunningProxy, n: usize) -> Vec<String> {
    let before = traffic(p).len();
    for _ in 0..n {
        echo_once(p.addr("fe"));
    }
    assert!(eventually(SOON, || traffic(p).len() >= before + n), "{n} sessions logged: {:#?}", p.logs());
    traffic(p)[before..].iter().map(|l| l.split_whitespace().nth(3).unwrap_or_default().to_string()).collect()
}

#[test]
fn a_refused_server_goes_down_after_fall_checks_and_up_after_rise_with_log_health_checks() {
    let s1 = backend(BackendSpec::Echo);
    let p = proxy(
        &cfg(
            "    option log-health-checks",
            "backend be\n    server s1 \"${S1}\" check inter 200ms rise 2 fall 2",
        ),
        &[("S1", a(s1.addr()))],
    );
    // `inter 200ms`, not 50ms: the check's whole budget is `inter`, and this test asserts
    // every line, so a CI machine stalling the proxy thread past it would add a Layer4
    // timeout line (CI saw one at 50ms).
    // The first check passes: the server, UP since start-up with health == rise, is now
    // fully up; later passes change nothing and are not logged.
    wait_line(&p, "Health check for server be/s1 succeeded");
    s1.set_up(false).unwrap();
    wait_line(&p, "backend be has no server available!");
    s1.set_up(true).unwrap();
    wait_line(&p, "Server be/s1 is UP");
    let refused = "reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms";
    // A check whose handshake the kernel completed just before the listener closed sees a
    // reset instead of a refusal: the same failure for the state machine.
    let lines: Vec<String> =
        check_lines(&p).iter().map(|l| l.replace("Connection reset by peer", "Connection refused")).collect();
    let passed = "reason: Layer4 check passed, check duration: Nms";
    assert_eq!(
        lines,
        [
            format!("Health check for server be/s1 succeeded, {passed}, status: 2/2 UP."),
            format!("Health check for server be/s1 failed, {refused}, status: 1/2 UP."),
            format!("Health check for server be/s1 failed, {refused}, status: 0/2 DOWN."),
            // With the option the state change has no reason part (it was just logged).
            "Server be/s1 is DOWN. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.".into(),
            format!("Health check for server be/s1 succeeded, {passed}, status: 1/2 DOWN."),
            format!("Health check for server be/s1 succeeded, {passed}, status: 2/2 UP."),
            "Server be/s1 is UP. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.".into(),
            "backend be has no server available!".into(),
        ]
    );
    let (down_trans, failed, status, be_down) = p.query(|w| {
        let be = w.find_proxy("be").unwrap();
        let s = &be.servers[0];
        (s.counters.down_trans, s.check.as_ref().unwrap().failed, s.status(), be.counters.down_trans)
    });
    assert_eq!((down_trans, failed, status.as_str(), be_down), (1, 2, "UP", 1));
    assert_idle(&p);
}

#[test]
fn a_down_server_gets_no_traffic_and_its_lines_match_haproxy() {
    let s1 = backend(BackendSpec::Echo);
    let p = proxy(
        &cfg("", "backend be\n    server s1 \"${S1}\" check inter 50ms rise 2 fall 2"),
        &[("S1", a(s1.addr()))],
    );
    assert_eq!(echo_sessions(&p, 1), ["be/s1"]);
    s1.set_up(false).unwrap();
    let down = wait_line(&p, "Server be/s1 is DOWN");
    assert_eq!(
        masked(&down),
        "Server be/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
    );
    wait_line(&p, "backend be has no server available!");
    // No server: the connection is closed at once, `<NOSRV>` with `SC` (as HAProxy 2.6).
    let before = traffic(&p).len();
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"ping").unwrap();
    assert!(c.is_closed_by_peer(SOON).unwrap());
    assert!(eventually(SOON, || traffic(&p).len() > before));
    let line = traffic(&p)[before].clone();
    assert!(line.contains(" fe be/<NOSRV> ") && tcplog_term(&line) == "SC", "{line}");
    s1.set_up(true).unwrap();
    let up = wait_line(&p, "Server be/s1 is UP");
    assert_eq!(
        masked(&up),
        "Server be/s1 is UP, reason: Layer4 check passed, check duration: Nms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."
    );
    assert_eq!(echo_sessions(&p, 1), ["be/s1"]);
    assert_idle(&p);
}

#[test]
fn traffic_avoids_a_down_server_and_comes_back_to_it_once_up() {
    let (s1, s2) = (backend(BackendSpec::Echo), backend(BackendSpec::Echo));
    let p = proxy(
        &cfg(
            "",
            "backend be\n    balance roundrobin\n\
             \x20   server s1 \"${S1}\" check inter 50ms rise 2 fall 2\n\
             \x20   server s2 \"${S2}\" check inter 50ms rise 2 fall 2",
        ),
        &[("S1", a(s1.addr())), ("S2", a(s2.addr()))],
    );
    let both = echo_sessions(&p, 4);
    assert!(both.contains(&"be/s1".into()) && both.contains(&"be/s2".into()), "{both:?}");
    s2.set_up(false).unwrap();
    let down = wait_line(&p, "Server be/s2 is DOWN");
    assert!(
        down.ends_with(
            ". 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
        ),
        "{down}"
    );
    let s1_conns = s1.connections();
    let only_s1 = echo_sessions(&p, 6);
    assert_eq!(only_s1, vec!["be/s1"; 6], "the DOWN server gets nothing");
    assert!(s1.connections() >= s1_conns + 6, "s1 took the six sessions");
    // No session tried s2 and failed over: every line is a clean end with no retry.
    for l in &traffic(&p)[traffic(&p).len() - 6..] {
        assert!(tcplog_term(l) == "--" && l.ends_with("/0 0/0"), "{l}");
    }
    assert!(!p.logs().iter().any(|l| l.contains("has no server available")), "s1 was still up");
    s2.set_up(true).unwrap();
    wait_line(&p, "Server be/s2 is UP");
    let again = echo_sessions(&p, 4);
    assert!(again.contains(&"be/s2".into()), "s2 takes traffic again: {again:?}");
    assert_idle(&p);
}

#[test]
fn backup_server_serves_only_while_every_active_server_is_down() {
    let (s1, b1) = (backend(BackendSpec::Echo), backend(BackendSpec::Echo));
    let p = proxy(
        &cfg(
            "",
            "backend be\n\
             \x20   server s1 \"${S1}\" check inter 50ms rise 1 fall 1\n\
             \x20   server b1 \"${B1}\" check inter 50ms rise 1 fall 1 backup",
        ),
        &[("S1", a(s1.addr())), ("B1", a(b1.addr()))],
    );
    assert_eq!(echo_sessions(&p, 3), vec!["be/s1"; 3], "the backup waits while s1 is up");
    s1.set_up(false).unwrap();
    let down = wait_line(&p, "Server be/s1 is DOWN");
    assert!(
        down.ends_with(". 0 active and 1 backup servers left. Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue."),
        "{down}"
    );
    assert_eq!(echo_sessions(&p, 3), vec!["be/b1"; 3], "the backup takes over");
    s1.set_up(true).unwrap();
    let up = wait_line(&p, "Server be/s1 is UP");
    assert!(
        up.ends_with(". 1 active and 1 backup servers online. 0 sessions requeued, 0 total in queue."),
        "{up}"
    );
    assert_eq!(echo_sessions(&p, 3), vec!["be/s1"; 3], "back to the active server");
    assert!(!p.logs().iter().any(|l| l.contains("has no server available")), "the backup was there");
    assert_idle(&p);
}

#[test]
fn a_server_coming_up_takes_the_sessions_queued_on_its_backend() {
    let (s1, s2) = (backend(BackendSpec::Echo), backend(BackendSpec::Echo));
    s2.set_up(false).unwrap();
    let p = proxy(
        &cfg(
            "",
            "backend be\n\
             \x20   server s1 \"${S1}\" maxconn 1 check inter 50ms rise 2 fall 2\n\
             \x20   server s2 \"${S2}\" maxconn 1 check inter 50ms rise 2 fall 2",
        ),
        &[("S1", a(s1.addr())), ("S2", a(s2.addr()))],
    );
    // Refused at its first check: DOWN at once (start-up health is `rise`).
    let down = wait_line(&p, "Server be/s2 is DOWN");
    assert!(down.contains(". 1 active and 0 backup servers left."), "{down}");
    // A holds s1's only slot; B finds every usable server full and waits in the backend queue.
    let mut ca = connect(p.addr("fe"));
    ca.send_raw(b"a").unwrap();
    assert_eq!(ca.read_exact(1).unwrap(), b"a");
    let mut cb = connect(p.addr("fe"));
    cb.send_raw(b"b").unwrap();
    assert!(
        eventually(SOON, || p.query(|w| w.find_proxy("be").unwrap().pendconns.len()) == 1),
        "B is queued"
    );
    s2.set_up(true).unwrap();
    let up = wait_line(&p, "Server be/s2 is UP");
    assert_eq!(
        masked(&up),
        "Server be/s2 is UP, reason: Layer4 check passed, check duration: Nms. 2 active and 0 backup servers online. 1 sessions requeued, 0 total in queue."
    );
    assert_eq!(cb.read_exact(1).unwrap(), b"b", "B was served by s2");
    drop((ca, cb));
    let lines = wait_logs_containing(&p, " fe be/", 2);
    assert!(lines.iter().any(|l| l.contains(" fe be/s2 ") && tcplog_term(l) == "--"), "{lines:#?}");
    assert_idle(&p);
}

#[test]
fn a_server_going_down_hands_its_queue_back_to_load_balancing_with_redispatch() {
    // `balance source` sends every client from 127.0.0.1 to the same server, even when it
    // is full: the second client waits in that server's own queue.
    let (s1, s2) = (backend(BackendSpec::Echo), backend(BackendSpec::Echo));
    let p = proxy(
        &cfg(
            "    option redispatch",
            "backend be\n    balance source\n\
             \x20   server s1 \"${S1}\" maxconn 1 check inter 50ms rise 2 fall 2\n\
             \x20   server s2 \"${S2}\" maxconn 1 check inter 50ms rise 2 fall 2",
        ),
        &[("S1", a(s1.addr())), ("S2", a(s2.addr()))],
    );
    let mut ca = connect(p.addr("fe"));
    ca.send_raw(b"a").unwrap();
    assert_eq!(ca.read_exact(1).unwrap(), b"a");
    let busy = p.query(|w| w.find_proxy("be").unwrap().servers.iter().position(|s| s.cur_sess == 1));
    let (name, busy_backend) = match busy {
        Some(0) => ("s1", &s1),
        Some(1) => ("s2", &s2),
        other => panic!("A is on one server: {other:?}"),
    };
    let mut cb = connect(p.addr("fe"));
    cb.send_raw(b"b").unwrap();
    assert!(
        eventually(SOON, || p
            .query(move |w| w.find_proxy("be").unwrap().servers[busy.unwrap()].pendconns.len())
            == 1),
        "B waits in {name}'s queue"
    );
    // The busy server stops accepting (A's connection stays open) and is marked DOWN: B
    // is requeued, goes back to load balancing and lands on the other server.
    busy_backend.set_up(false).unwrap();
    let down = wait_line(&p, &format!("Server be/{name} is DOWN"));
    assert!(
        down.ends_with(
            ". 1 active and 0 backup servers left. 1 sessions active, 1 requeued, 0 remaining in queue."
        ),
        "{down}"
    );
    assert_eq!(cb.read_exact(1).unwrap(), b"b", "B was served by the other server");
    ca.send_raw(b"c").unwrap();
    assert_eq!(ca.read_exact(1).unwrap(), b"c", "A's session on the DOWN server keeps going");
    drop((ca, cb));
    let lines = wait_logs_containing(&p, " fe be/", 2);
    let other = if name == "s1" { "s2" } else { "s1" };
    assert!(lines.iter().any(|l| l.contains(&format!(" fe be/{other} "))), "{lines:#?}");
    assert_idle(&p);
}

/// Waits for `n` log lines containing `pat`.
fn wait_logs_containing(p: &RunningProxy, pat: &str, n: usize) -> Vec<String> {
    let found = |p: &RunningProxy| p.logs().into_iter().filter(|l| l.contains(pat)).collect::<Vec<_>>();
    assert!(eventually(SOON, || found(p).len() >= n), "{n} lines with {pat:?}: {:#?}", p.logs());
    found(p)
}

#[test]
fn httpchk_sends_the_request_line_and_expects_the_configured_status() {
    let s1 = backend(BackendSpec::Http(HttpBehaviour {
        health_path: Some("/health".into()),
        ..HttpBehaviour::named("s1")
    }));
    let s2 = backend(BackendSpec::Http(HttpBehaviour { status: 500, ..HttpBehaviour::named("s2") }));
    let s3 = backend(BackendSpec::Http(HttpBehaviour {
        health_path: Some("/health".into()),
        ..HttpBehaviour::named("s3")
    }));
    let p = proxy(
        &cfg(
            "",
            "backend be\n    option httpchk GET /health\n    http-check expect status 200\n\
             \x20   server s1 \"${S1}\" check inter 50ms rise 2 fall 2\n\
             \x20   server s2 \"${S2}\" check inter 50ms rise 2 fall 2\n\
             backend be_strict\n    option httpchk GET /health\n    http-check expect status 201\n\
             \x20   server s3 \"${S3}\" check inter 50ms rise 2 fall 2",
        ),
        &[("S1", a(s1.addr())), ("S2", a(s2.addr())), ("S3", a(s3.addr()))],
    );
    let down = wait_line(&p, "Server be/s2 is DOWN");
    assert_eq!(
        masked(&down),
        "Server be/s2 is DOWN, reason: Layer7 wrong status, code: 500, info: \"Internal Server Error\", check duration: Nms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
    );
    // 200 is not the 201 that `http-check expect status 201` wants.
    let strict = wait_line(&p, "Server be_strict/s3 is DOWN");
    assert_eq!(
        masked(&strict),
        "Server be_strict/s3 is DOWN, reason: Layer7 wrong status, code: 200, info: \"OK\", check duration: Nms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
    );
    wait_line(&p, "backend be_strict has no server available!");
    // The check request is exactly `METH URI HTTP/1.0` and an empty line.
    assert!(s1.wait_for_requests(3, SOON));
    let req = &s1.requests()[0];
    assert_eq!(String::from_utf8_lossy(&req.raw_head), "GET /health HTTP/1.0\r\n\r\n");
    // s1 passes (200) and stays UP; traffic (HTTP bytes through a TCP proxy) only goes there.
    for _ in 0..4 {
        let mut c = connect(p.addr("fe"));
        c.send_raw(b"GET /x HTTP/1.0\r\n\r\n").unwrap();
        let out = String::from_utf8_lossy(&c.read_to_close().unwrap()).to_string();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.contains("X-Served-By: s1\r\n"), "{out}");
    }
    assert!(s2.requests().iter().all(|r| r.path == "/health"), "the DOWN server only saw checks");
    assert!(!p.logs().iter().any(|l| l.starts_with("Server be/s1")), "s1 never changed state");
    let (st, code) = p.query(|w| {
        let c = w.find_proxy("be").unwrap().servers[0].check.clone().unwrap();
        (c.status.to_string(), c.code)
    });
    assert_eq!((st.as_str(), code), ("L7OK", Some(200)));
    assert_idle(&p);
}

/// A listening socket whose accept queue is full: new SYNs are dropped, so a connect()
/// to it never completes (the peers are kept so the queue stays full).
fn unreachable_server() -> (socket2::Socket, Vec<TcpStream>, SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let f = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        f.set_nonblocking(true).unwrap();
        let _ = f.connect(&addr.into());
        fillers.push(TcpStream::from(f));
    }
    (s, fillers, addr)
}

#[test]
fn timeouts_and_invalid_answers_are_reported_like_haproxy() {
    let silent = backend(BackendSpec::BlackHole);
    let garbage = backend(BackendSpec::Http(HttpBehaviour { garbage: true, ..HttpBehaviour::named("g") }));
    let (_l, _fill, hole) = unreachable_server();
    let p = proxy(
        &cfg(
            "    timeout check 100ms",
            "backend be\n    server s1 \"${S1}\"\n\
             backend be_silent\n    option httpchk GET /health\n    server s1 \"${SILENT}\" check inter 50ms\n\
             backend be_garbage\n    option httpchk GET /health\n    server s1 \"${GARBAGE}\" check inter 50ms\n\
             backend be_blackhole\n    timeout connect 100ms\n    server s1 \"${HOLE}\" check inter 500ms",
        ),
        &[("S1", a(hole)), ("SILENT", a(silent.addr())), ("GARBAGE", a(garbage.addr())), ("HOLE", a(hole))],
    );
    let tail = ". 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    // Connected and asked, but no answer within `timeout check`.
    let l7 = wait_line(&p, "Server be_silent/s1 is DOWN");
    assert_eq!(
        masked(&l7),
        format!("Server be_silent/s1 is DOWN, reason: Layer7 timeout, check duration: Nms{tail}")
    );
    assert!((100..500).contains(&duration_ms(&l7)), "timeout check 100ms: {l7}");
    let rsp = wait_line(&p, "Server be_garbage/s1 is DOWN");
    assert_eq!(
        masked(&rsp),
        format!("Server be_garbage/s1 is DOWN, reason: Layer7 invalid response, check duration: Nms{tail}")
    );
    // Never connected: with `timeout check` set, connecting gets MIN(inter, timeout connect).
    let l4 = wait_line(&p, "Server be_blackhole/s1 is DOWN");
    assert_eq!(
        masked(&l4),
        format!("Server be_blackhole/s1 is DOWN, reason: Layer4 timeout, check duration: Nms{tail}")
    );
    assert!((100..500).contains(&duration_ms(&l4)), "timeout connect 100ms, not inter 500ms: {l4}");
    for be in ["be_silent", "be_garbage", "be_blackhole"] {
        wait_line(&p, &format!("backend {be} has no server available!"));
    }
    assert_idle(&p);
}

/// `(nbfd, fds owned by checks, checks with a connection in progress)`.
fn fd_census(p: &RunningProxy) -> (usize, usize, usize) {
    p.query(|w| {
        let check_fds = w.fdtab.iter().filter(|(_, e)| matches!(e.owner, FdOwner::Check(_))).count();
        let in_progress = w
            .proxies
            .iter()
            .flat_map(|p| &p.servers)
            .filter(|s| s.check.as_ref().is_some_and(|c| c.conn.is_some()))
            .count();
        (w.fdtab.nbfd, check_fds, in_progress)
    })
}

#[test]
fn check_connections_and_tasks_do_not_leak() {
    let up = backend(BackendSpec::Http(HttpBehaviour {
        health_path: Some("/health".into()),
        ..HttpBehaviour::named("up")
    }));
    let refused = backend(BackendSpec::Refuse);
    let garbage = backend(BackendSpec::Http(HttpBehaviour { garbage: true, ..HttpBehaviour::named("g") }));
    let echo = backend(BackendSpec::Echo);
    let p = proxy(
        &cfg(
            "",
            "backend be\n    option httpchk GET /health\n\
             \x20   server up \"${UP}\" check inter 20ms\n\
             \x20   server refused \"${REFUSED}\" check inter 20ms\n\
             \x20   server garbage \"${GARBAGE}\" check inter 20ms\n\
             backend be_tcp\n    server echo \"${ECHO}\" check inter 20ms",
        ),
        &[
            ("UP", a(up.addr())),
            ("REFUSED", a(refused.addr())),
            ("GARBAGE", a(garbage.addr())),
            ("ECHO", a(echo.addr())),
        ],
    );
    let (nbfd0, check0, _) = fd_census(&p);
    let baseline = nbfd0 - check0; // the listener (and anything else that is not a check)
    assert!(up.wait_for_requests(25, SOON) && garbage.wait_for_requests(25, SOON), "checks run");
    assert!(echo.wait_for_connections(25, SOON));
    // Sampled while checks come and go: every check fd belongs to a check in progress, at
    // most one per server, and nothing else appears or disappears.
    for _ in 0..50 {
        let (nbfd, check_fds, in_progress) = fd_census(&p);
        assert_eq!(check_fds, in_progress, "no orphan check fd");
        assert!(in_progress <= 4);
        assert_eq!(nbfd - check_fds, baseline, "no other fd comes or goes");
    }
    // One task per checked server and `global_listener_queue_task`, no session: the pools
    // are idle.
    assert_eq!(p.query(|w| w.sched.pool_stats().used), 4 + 1);
    assert_idle(&p);
    // What a stop does: every check connection and task is freed (the process's own
    // `global_listener_queue_task` remains).
    let (nbfd, tasks, nb_tasks) = p.query(|w| {
        haflow::haproxy::checks::stop_checks(w);
        (w.fdtab.nbfd, w.sched.pool_stats().used, w.sched.nb_tasks())
    });
    assert_eq!((nbfd, tasks, nb_tasks), (baseline, 1, 1));
}

/// Every node named `name` in the trees, depth first.
fn all_named<'a>(nodes: &'a [Node], name: &str, out: &mut Vec<&'a Node>) {
    for n in nodes {
        if n.name == name {
            out.push(n);
        }
        all_named(&n.children, name, out);
    }
}

#[test]
fn check_spans_carry_server_result_and_health() {
    let refused = backend(BackendSpec::Refuse);
    let (layer, cap) = capture(1 << 16);
    let p = RunningProxy::start_with(
        &cfg("", "backend be\n    server s1 \"${S1}\" check inter 50ms rise 2 fall 2"),
        &[("S1", a(refused.addr()))],
        StartOptions { capture: Some(layer), ..Default::default() },
    )
    .expect("starts");
    wait_line(&p, "Server be/s1 is DOWN");
    p.stop();
    let mut tb = TreeBuilder::default();
    tb.extend(&cap.drain());
    let mut starts = Vec::new();
    all_named(&tb.roots, names::START_CHECKS, &mut starts);
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].field("checks"), Some("1"));
    let mut chks = Vec::new();
    all_named(&tb.roots, names::PROCESS_CHK, &mut chks);
    let first_failure = chks
        .iter()
        .find(|n| n.field("result") == Some("L4CON"))
        .unwrap_or_else(|| panic!("a process_chk span with L4CON among {chks:#?}"));
    assert_eq!(first_failure.field("server"), Some("be/s1"));
    assert_eq!(first_failure.field("health"), Some("0"));
    let down = first_failure.find(names::SET_SERVER_DOWN).expect("set_server_down inside process_chk");
    assert_eq!(down.field("server"), Some("be/s1"));
}
