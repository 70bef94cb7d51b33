//! TCP mode: bytes forwarded intact, half-close, timeouts, retries and redispatch, load
//! balancing, queueing and listener limits. Every test ends with the pools back to zero.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

use crate::util::*;

fn tcp_cfg(extra_defaults: &str, backend: &str) -> String {
    format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n{extra_defaults}\n\
         listen fe\n    bind 127.0.0.1:0\n{backend}\n"
    )
}

#[test]
fn bytes_are_forwarded_intact_both_ways_from_1_byte_to_10_mib() {
    let echo = backend(BackendSpec::Echo);
    let p = proxy(&tcp_cfg("", "    server s1 \"${S1}\""), &[("S1", a(echo.addr()))]);
    for size in [1usize, 1000, 16_384, 65_537, 10 * 1024 * 1024] {
        let data = pattern(size);
        let out = echo_through(p.addr("fe"), &data);
        assert_eq!(out.len(), size, "all {size} bytes came back");
        assert!(out == data, "the {size} bytes came back unchanged");
    }
    let logs = p.wait_logs(5, SOON);
    assert!(logs.iter().all(|l| tcplog_term(l) == "--"), "normal ends: {logs:#?}");
    assert!(logs.iter().any(|l| l.contains(" 10485760 --")), "bytes counted in the log: {logs:#?}");
    assert_idle(&p);
}

#[test]
fn client_half_close_reaches_the_server_and_its_answer_still_comes_back() {
    // The server reads until the client's FIN, then answers and closes.
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = srv.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = srv.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(format!("got {} bytes", got.len()).as_bytes()).unwrap();
        got
    });
    let p = proxy(&tcp_cfg("", "    server s1 \"${S1}\""), &[("S1", a(addr))]);
    let mut c = TcpStream::connect(p.addr("fe")).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    c.write_all(b"question").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "got 8 bytes");
    assert_eq!(t.join().unwrap(), b"question");
    assert_eq!(tcplog_term(&wait_log(&p, |l| l.contains("fe/s1"))), "--");
    assert_idle(&p);
}

#[test]
fn server_half_close_reaches_the_client_which_can_still_send() {
    // The server speaks first, shuts its write side, and keeps reading.
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = srv.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = srv.accept().unwrap();
        s.write_all(b"banner").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let p = proxy(&tcp_cfg("", "    server s1 \"${S1}\""), &[("S1", a(addr))]);
    let mut c = TcpStream::connect(p.addr("fe")).unwrap();
    c.set_read_timeout(Some(SOON)).unwrap();
    let mut banner = Vec::new();
    c.read_to_end(&mut banner).unwrap();
    assert_eq!(banner, b"banner", "the client sees the server's FIN after its data");
    c.write_all(b"late reply").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(t.join().unwrap(), b"late reply", "the client's bytes still reach the server");
    assert_eq!(tcplog_term(&wait_log(&p, |l| l.contains("fe/s1"))), "--");
    assert_idle(&p);
}

#[test]
fn client_timeout_closes_an_idle_session_with_cd() {
    let echo = backend(BackendSpec::Echo);
    let cfg = tcp_cfg("", "    timeout client 200ms\n    server s1 \"${S1}\"");
    let p = proxy(&cfg, &[("S1", a(echo.addr()))]);
    let mut c = connect(p.addr("fe"));
    assert!(c.is_closed_by_peer(SOON).unwrap(), "haflow closes the idle client");
    assert_eq!(tcplog_term(&wait_log(&p, |l| l.contains("fe/s1"))), "cD");
    assert_idle(&p);
}

#[test]
fn server_timeout_closes_a_silent_server_with_sd() {
    let hole = backend(BackendSpec::BlackHole);
    let cfg = tcp_cfg("", "    timeout server 200ms\n    server s1 \"${S1}\"");
    let p = proxy(&cfg, &[("S1", a(hole.addr()))]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"anyone?").unwrap();
    assert!(c.is_closed_by_peer(SOON).unwrap());
    assert_eq!(tcplog_term(&wait_log(&p, |l| l.contains("fe/s1"))), "sD");
    assert_idle(&p);
}

/// A listening socket whose accept queue is full: new SYNs are dropped, so connecting to
/// it times out (the kernel never completes the handshake).
fn unreachable_server() -> (socket2::Socket, Vec<TcpStream>, std::net::SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
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
fn connect_timeout_retries_then_closes_with_sc() {
    let (_l, _fill, addr) = unreachable_server();
    let cfg = tcp_cfg("    timeout connect 100ms\n    retries 2", "    server s1 \"${S1}\"");
    let p = proxy(&cfg, &[("S1", a(addr))]);
    let mut c = connect(p.addr("fe"));
    assert!(c.is_closed_by_peer(SOON).unwrap(), "the client is closed after the last retry");
    let line = wait_log(&p, |l| l.contains("fe/s1"));
    assert_eq!(tcplog_term(&line), "sC", "{line}");
    assert!(line.contains("/-1/"), "no connect time: {line}");
    assert!(line.contains(" 1/1/0/0/2 "), "two retries counted: {line}");
    assert_idle(&p);
}

#[test]
fn refused_server_is_retried_then_redispatched_to_another_server() {
    let refused = backend(BackendSpec::Refuse);
    let echo = backend(BackendSpec::Echo);
    let cfg = tcp_cfg(
        "    timeout connect 100ms\n    retries 2\n    option redispatch",
        "    balance first\n    server bad \"${BAD}\"\n    server good \"${GOOD}\"",
    );
    let p = proxy(&cfg, &[("BAD", a(refused.addr())), ("GOOD", a(echo.addr()))]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"ping").unwrap();
    assert_eq!(c.read_exact(4).unwrap(), b"ping", "the last retry went to the good server");
    drop(c);
    let line = wait_log(&p, |l| l.contains("fe/good"));
    assert_eq!(tcplog_term(&line), "--", "{line}");
    assert!(line.contains("/+2 "), "two retries, redispatched: {line}");
    let tw: u64 = line.split_whitespace().nth(4).and_then(|t| t.split('/').next()?.parse().ok()).unwrap();
    assert!(tw >= 200, "Tw runs until the redispatched assignment (two 100 ms turn-arounds): {line}");
    let (retries, redisp, failed) = p.query(|w| {
        let be = w.find_proxy("fe").unwrap();
        (be.counters.retries, be.counters.redispatches, be.servers[0].counters.failed_conns)
    });
    assert_eq!((retries, redisp, failed), (1, 1, 0), "one retry on 'bad', then one redispatch");
    assert_idle(&p);
}

#[test]
fn round_robin_redispatches_at_the_first_failure() {
    // 1.5.0 and HAProxy 2.6: under round robin with another active server, a
    // non-persistent session does not insist on the server that failed.
    let refused = backend(BackendSpec::Refuse);
    let echo = backend(BackendSpec::Echo);
    let cfg = tcp_cfg(
        "    timeout connect 100ms\n    retries 2\n    option redispatch",
        "    balance roundrobin\n    server bad \"${BAD}\"\n    server good \"${GOOD}\"",
    );
    let p = proxy(&cfg, &[("BAD", a(refused.addr())), ("GOOD", a(echo.addr()))]);
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"ping").unwrap();
    assert_eq!(c.read_exact(4).unwrap(), b"ping", "the first retry went to the good server");
    drop(c);
    let line = wait_log(&p, |l| l.contains("fe/good"));
    assert_eq!(tcplog_term(&line), "--", "{line}");
    assert!(line.contains("/+1 "), "one retry, redispatched: {line}");
    let (retries, redisp) = p.query(|w| {
        let be = w.find_proxy("fe").unwrap();
        (be.counters.retries, be.counters.redispatches)
    });
    assert_eq!((retries, redisp), (0, 1), "no retry on 'bad', one redispatch");
    assert_idle(&p);
}

#[test]
fn refused_server_without_redispatch_gives_sc() {
    let refused = backend(BackendSpec::Refuse);
    let cfg = tcp_cfg("    timeout connect 100ms\n    retries 1", "    server s1 \"${S1}\"");
    let p = proxy(&cfg, &[("S1", a(refused.addr()))]);
    let mut c = connect(p.addr("fe"));
    assert!(c.is_closed_by_peer(SOON).unwrap());
    let line = wait_log(&p, |l| l.contains("fe/s1"));
    assert_eq!(tcplog_term(&line), "SC", "{line}");
    assert!(line.contains(" 1/1/0/0/1 "), "one retry: {line}");
    assert_idle(&p);
}

fn lb_cfg(balance: &str, servers: &str) -> String {
    tcp_cfg("", &format!("    balance {balance}\n{servers}"))
}

fn three_echoes() -> (Vec<RunningBackend>, Vec<(&'static str, String)>, String) {
    let bs: Vec<_> = (0..3).map(|_| backend(BackendSpec::Echo)).collect();
    let env = vec![("S1", a(bs[0].addr())), ("S2", a(bs[1].addr())), ("S3", a(bs[2].addr()))];
    let servers = "    server s1 \"${S1}\"\n    server s2 \"${S2}\"\n    server s3 \"${S3}\"".to_string();
    (bs, env, servers)
}

fn roundtrip(addr: std::net::SocketAddr) {
    let mut c = connect(addr);
    c.send_raw(b"x").unwrap();
    assert_eq!(c.read_exact(1).unwrap(), b"x");
}

#[test]
fn roundrobin_spreads_connections_evenly() {
    let (bs, env, servers) = three_echoes();
    let p = proxy(&lb_cfg("roundrobin", &servers), &env);
    for _ in 0..6 {
        roundtrip(p.addr("fe"));
    }
    assert!(eventually(SOON, || bs.iter().map(|b| b.connections()).sum::<usize>() == 6));
    assert_eq!(bs.iter().map(|b| b.connections()).collect::<Vec<_>>(), [2, 2, 2]);
    assert_idle(&p);
}

#[test]
fn leastconn_prefers_the_server_with_fewest_connections() {
    let (bs, env, servers) = three_echoes();
    let p = proxy(&lb_cfg("leastconn", &servers), &env);
    // Two long connections take two servers; the next short ones all go to the third.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect(p.addr("fe"));
        c.send_raw(b"x").unwrap();
        assert_eq!(c.read_exact(1).unwrap(), b"x");
        held.push(c);
    }
    for _ in 0..3 {
        roundtrip(p.addr("fe"));
        // Let the session end before the next one arrives, so counts are settled.
        assert!(eventually(SOON, || p.query(|w| w.sessions.len()) == 2));
    }
    assert!(eventually(SOON, || bs.iter().map(|b| b.connections()).sum::<usize>() == 5));
    let mut counts: Vec<_> = bs.iter().map(|b| b.connections()).collect();
    counts.sort();
    assert_eq!(counts, [1, 1, 3], "the idle server took every short connection");
    drop(held);
    assert_idle(&p);
}

#[test]
fn source_hashing_keeps_a_client_on_one_server() {
    let (bs, env, servers) = three_echoes();
    let p = proxy(&lb_cfg("source", &servers), &env);
    for _ in 0..6 {
        roundtrip(p.addr("fe"));
    }
    assert!(eventually(SOON, || bs.iter().map(|b| b.connections()).sum::<usize>() == 6));
    let counts: Vec<_> = bs.iter().map(|b| b.connections()).collect();
    assert!(counts.contains(&6), "all six connections from 127.0.0.1 went to one server: {counts:?}");
    assert_idle(&p);
}

#[test]
fn first_fills_a_server_up_to_maxconn_before_using_the_next() {
    let (bs, env, _) = three_echoes();
    let servers = "    server s1 \"${S1}\" maxconn 2\n    server s2 \"${S2}\" maxconn 2\n    server s3 \"${S3}\" maxconn 2";
    let p = proxy(&lb_cfg("first", servers), &env);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect(p.addr("fe"));
        c.send_raw(b"x").unwrap();
        assert_eq!(c.read_exact(1).unwrap(), b"x");
        held.push(c);
    }
    assert_eq!(bs.iter().map(|b| b.connections()).collect::<Vec<_>>(), [2, 1, 0]);
    drop(held);
    assert_idle(&p);
}

#[test]
fn server_maxconn_queues_then_serves_when_a_slot_frees() {
    let echo = backend(BackendSpec::Echo);
    let cfg = tcp_cfg("    timeout queue 5s", "    server s1 \"${S1}\" maxconn 1");
    let p = proxy(&cfg, &[("S1", a(echo.addr()))]);
    let mut first = connect(p.addr("fe"));
    first.send_raw(b"1").unwrap();
    assert_eq!(first.read_exact(1).unwrap(), b"1");
    let mut second = connect(p.addr("fe"));
    second.send_raw(b"2").unwrap();
    // Every server is full, so the session waits in the backend's queue (as HAProxy).
    assert!(
        eventually(SOON, || p.query(|w| w.find_proxy("fe").unwrap().pendconns.len()) == 1),
        "the second session waits in the queue"
    );
    assert_eq!(echo.connections(), 1, "the server never sees more than maxconn connections");
    drop(first);
    assert_eq!(second.read_exact(1).unwrap(), b"2", "the queued session is served once the slot frees");
    drop(second);
    let logs = p.wait_logs(2, SOON);
    assert!(logs.iter().all(|l| tcplog_term(l) == "--"), "{logs:#?}");
    assert_idle(&p);
}

#[test]
fn queue_timeout_gives_sq() {
    let echo = backend(BackendSpec::Echo);
    let cfg = tcp_cfg("    timeout queue 150ms", "    server s1 \"${S1}\" maxconn 1");
    let p = proxy(&cfg, &[("S1", a(echo.addr()))]);
    let mut first = connect(p.addr("fe"));
    first.send_raw(b"1").unwrap();
    assert_eq!(first.read_exact(1).unwrap(), b"1");
    let mut second = connect(p.addr("fe"));
    assert!(second.is_closed_by_peer(SOON).unwrap(), "the queued client is closed at queue timeout");
    let line = wait_log(&p, |l| tcplog_term(l) == "sQ");
    let timers: Vec<i64> =
        line.split_whitespace().nth(4).unwrap().split('/').map(|t| t.parse().unwrap()).collect();
    assert!(line.contains("fe/<NOSRV> "), "{line}");
    assert!(timers[0] >= 150 && timers[1] == -1, "queued for the timeout, never connected: {line}");
    assert!(line.ends_with(" 0/1"), "it was the backend's queue: {line}");
    drop(first);
    assert_idle(&p);
}

#[test]
fn frontend_maxconn_makes_the_listener_full_then_resumes() {
    use haflow::haproxy::listener::ListenerState;
    let echo = backend(BackendSpec::Echo);
    let cfg = tcp_cfg("", "    maxconn 1\n    server s1 \"${S1}\"");
    let p = proxy(&cfg, &[("S1", a(echo.addr()))]);
    let state = |p: &RunningProxy| p.query(|w| w.listeners[0].state);
    let mut first = connect(p.addr("fe"));
    first.send_raw(b"1").unwrap();
    assert_eq!(first.read_exact(1).unwrap(), b"1");
    assert!(
        eventually(SOON, || matches!(state(&p), ListenerState::LI_FULL | ListenerState::LI_LIMITED)),
        "at maxconn the listener stops accepting: {:?}",
        state(&p)
    );
    // The kernel completes the handshake (backlog) but haflow does not accept it yet.
    let mut second = connect(p.addr("fe"));
    second.send_raw(b"2").unwrap();
    assert_eq!(p.query(|w| w.sessions.len()), 1, "the second connection waits in the backlog");
    drop(first);
    assert_eq!(second.read_exact(1).unwrap(), b"2", "accepted and served once the first ended");
    assert!(eventually(SOON, || state(&p) == ListenerState::LI_READY || p.query(|w| w.sessions.len()) == 1));
    drop(second);
    assert!(eventually(SOON, || state(&p) == ListenerState::LI_READY), "the listener resumes");
    assert_idle(&p);
}
