//! Server connection reuse: `http-reuse never|safe|aggressive|always` drawing on the
//! servers' idle lists (2.6's design over 1.5's keep-alive), `pool-max-conn`,
//! `pool-purge-delay`, and the private connections of `dispatch` and `option transparent`.
//! Each test ends with the proxy idle: no session, no session fd, no fd in CLOSE-WAIT; the
//! connections left are the servers' idle ones, and the purge closes those too.

use crate::side_by_side::start_haproxy_with;
use crate::util::*;

const CFG: &str = r#"
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 2s
frontend fe
    bind "127.0.0.1:${PORT}"
    default_backend be
backend be
    http-reuse "${MODE}"
    server s1 "${S1}"
"#;

/// One client connection sending `n` requests, then closing.
fn client(addr: std::net::SocketAddr, n: usize) {
    let mut c = Conn::connect(addr, SOON).unwrap();
    for _ in 0..n {
        c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(c.read_response(false).unwrap().status, 200);
    }
}

/// The connections `b` accepted while clients A (one request), B (two) and C (one) came
/// one after the other through `addr`; `settle` runs after each client.
fn connections_for_a_b_c(addr: std::net::SocketAddr, b: &RunningBackend, settle: &dyn Fn()) -> usize {
    let before = b.connections();
    for n in [1, 2, 1] {
        client(addr, n);
        settle();
    }
    b.connections() - before
}

/// Idle connections in the servers' lists of `p`.
fn idle_conns(p: &RunningProxy) -> usize {
    p.query(|w| w.proxies.iter().flat_map(|px| &px.servers).map(|s| s.curr_idle_conns()).sum())
}

#[test]
fn each_reuse_mode_takes_the_idle_connections_haproxy_takes() {
    // A's connection carried one request (idle list). B's first request is a first one:
    // only `always` may take it; `safe` and `aggressive` open another, which the server
    // does not need once A's is idle, so it is closed. B's second request takes A's
    // connection, now known to survive (safe list): C's first request may take it in
    // `aggressive` and `always`. `never` keeps each connection to its client.
    for (mode, want) in [("never", 3), ("safe", 3), ("aggressive", 2), ("always", 1)] {
        let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
        let env = [("S1", a(b.addr())), ("MODE", mode.to_string()), ("PORT", "0".into())];
        let p = proxy(CFG, &env);
        // Each client's end is seen by the proxy before the next one comes.
        let settle = || assert!(eventually(SOON, || p.query(|w| w.sessions.is_empty())));
        assert_eq!(connections_for_a_b_c(p.addr("fe"), &b, &settle), want, "haflow, http-reuse {mode}");
        assert_idle(&p);
        assert_eq!(idle_conns(&p), usize::from(mode != "never"), "{mode}: one idle connection left");

        let b2 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
        let Some(hap) = start_haproxy_with(CFG, &[("S1", a(b2.addr())), ("MODE", mode.to_string())]) else {
            continue;
        };
        // HAProxy's end of a client is not observable from here: give it the time a
        // loopback round trip takes to see the close (the next client's connect).
        let settle = || {
            let _ = std::net::TcpStream::connect(hap.addr);
        };
        assert_eq!(connections_for_a_b_c(hap.addr, &b2, &settle), want, "haproxy, http-reuse {mode}");
    }
}

#[test]
fn pool_max_conn_bounds_the_idle_list_and_the_purge_empties_it() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let cfg = CFG.replace("server s1 \"${S1}\"", "server s1 \"${S1}\" pool-max-conn 1 pool-purge-delay 50ms");
    let p = proxy(&cfg, &[("S1", a(b.addr())), ("MODE", "always".into()), ("PORT", "0".into())]);
    // Two clients at once: two connections; once both are done, only one stays idle.
    let mut c1 = connect(p.addr("fe"));
    let mut c2 = connect(p.addr("fe"));
    for c in [&mut c1, &mut c2] {
        c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    }
    for c in [&mut c1, &mut c2] {
        assert_eq!(c.read_response(false).unwrap().status, 200);
    }
    drop((c1, c2));
    assert!(eventually(SOON, || p.query(|w| w.sessions.is_empty())));
    assert_eq!(b.connections(), 2);
    assert_eq!(idle_conns(&p), 1, "pool-max-conn 1");
    assert_idle(&p);
    // Nothing uses it: the purge closes it, a few periods later.
    assert!(eventually(SOON, || idle_conns(&p) == 0), "the purge closes the idle connection");
    assert!(eventually(SOON, || p.query(|w| w.fdtab.iter().count()) == p.query(|w| w.listeners.len())));
    assert_idle(&p);
}

#[test]
fn an_idle_connection_the_server_closes_leaves_the_list() {
    // The server answers keep-alive, then closes: the proxy sees it and drops the fd (no
    // CLOSE-WAIT left behind), and the next request opens a new connection.
    let s = ScriptedServer::start(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", Then::Close);
    let p = proxy(CFG, &[("S1", a(s.addr())), ("MODE", "always".into()), ("PORT", "0".into())]);
    client(p.addr("fe"), 1);
    assert!(eventually(SOON, || s.closed() == 1));
    assert!(eventually(SOON, || idle_conns(&p) == 0), "the closed connection left the idle list");
    assert_idle(&p);
    client(p.addr("fe"), 1);
    assert_idle(&p);
}

#[test]
fn dispatch_and_transparent_connections_stay_private_to_their_client() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let port = b.addr().port();
    let dispatch = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 2s\n    timeout server 2s\n\
         listen fe\n    bind 127.0.0.1:0\n    http-reuse always\n    dispatch {}\n",
        b.addr()
    );
    // `option transparent`: the connection goes where the client was going, here changed
    // by `set-dst-port`.
    let transparent = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 2s\n    timeout server 2s\n\
         listen fe\n    bind 127.0.0.1:0\n    http-reuse always\n    option transparent\n\
         \x20   http-request set-dst-port int({port})\n"
    );
    for cfg in [dispatch, transparent] {
        let p = proxy(&cfg, &[]);
        let before = b.connections();
        // Two clients, two requests each: one connection each, never shared.
        client(p.addr("fe"), 2);
        assert!(eventually(SOON, || p.query(|w| w.sessions.is_empty())));
        client(p.addr("fe"), 2);
        assert_eq!(b.connections() - before, 2, "{cfg}");
        assert_eq!(idle_conns(&p), 0);
        assert_idle(&p);
    }
}

#[test]
fn reuse_settings_are_checked_like_haproxy() {
    let bad = [
        (
            "backend be\n    http-reuse sometimes\n",
            "'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'",
        ),
        ("backend be\n    server s1 127.0.0.1:1 pool-max-conn -2\n", "'pool-max-conn' must be >= -1"),
        ("backend be\n    dispatch 127.0.0.1\n", "'dispatch' : missing port number"),
        ("defaults\n    dispatch 127.0.0.1:80\n", "'dispatch' not allowed in 'defaults' section."),
        (
            "backend be\n    balance roundrobin\n    option transparent\n",
            "backend 'be' cannot use both transparent and balance mode.",
        ),
        (
            "backend be\n    server s1 127.0.0.1:1 send-proxy-v2 proxy-v2-options crc32c,tls\n",
            "'tls' : proxy v2 option not implemented",
        ),
    ];
    for (cfg, msg) in bad {
        let text = format!("defaults\n    mode http\n{cfg}");
        match haflow::scenario::proxy::RunningProxy::start(&text, &[]) {
            Ok(_) => panic!("accepted: {cfg}"),
            Err(e) => assert!(format!("{e:?}").contains(msg), "{cfg}: {e:?}"),
        }
    }
}

#[test]
fn many_clients_share_few_server_connections_and_leave_nothing_behind() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let cfg = CFG.replace("server s1 \"${S1}\"", "server s1 \"${S1}\" pool-purge-delay 30ms");
    let p = proxy(&cfg, &[("S1", a(b.addr())), ("MODE", "always".into()), ("PORT", "0".into())]);
    let addr = p.addr("fe");
    let clients: Vec<_> = (0..16).map(|_| std::thread::spawn(move || client(addr, 10))).collect();
    for c in clients {
        c.join().unwrap();
    }
    assert!(eventually(SOON, || p.query(|w| w.sessions.is_empty())));
    // Every request went over a new or a reused connection, and most over a reused one
    // (how many are opened depends on how the clients interleave: a connection the idle
    // list refuses is closed, and a later request may open another).
    let (connect, reuse) = p.query(|w| {
        let s = &w.proxies.iter().find(|px| px.name == "be").unwrap().servers[0];
        (s.counters.connect, s.counters.reuse)
    });
    assert_eq!(connect + reuse, 160);
    assert_eq!(connect as usize, b.connections());
    assert!(reuse > connect, "{connect} connections opened, {reuse} reused");
    assert_idle(&p);
    // Then the purge closes the idle ones: only the listener's fd is left.
    assert!(eventually(SOON, || idle_conns(&p) == 0));
    assert!(eventually(SOON, || p.query(|w| w.fdtab.iter().count()) == p.query(|w| w.listeners.len())));
    assert_idle(&p);
}

#[test]
fn a_connection_the_server_authenticates_stays_with_its_client() {
    // NTLM authenticates the connection: once the server asked for it, no other client
    // may be sent over that connection, even with `http-reuse always` (2.6), and the
    // client's next request goes back to that server (`SESS_FL_PREFER_LAST`).
    let ntlm = HttpBehaviour {
        status: 401,
        headers: vec![("WWW-Authenticate".into(), "NTLM".into())],
        ..HttpBehaviour::named("s1")
    };
    let s1 = backend(BackendSpec::Http(ntlm));
    let s2 = backend(BackendSpec::Http(HttpBehaviour::named("s2")));
    let cfg = CFG.replace("server s1 \"${S1}\"", "server s1 \"${S1}\"\n    server s2 \"${S2}\"");
    let p = proxy(
        &cfg,
        &[("S1", a(s1.addr())), ("S2", a(s2.addr())), ("MODE", "always".into()), ("PORT", "0".into())],
    );
    let get = |c: &mut Conn| {
        c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        c.read_response(false).unwrap().status
    };
    let mut a1 = connect(p.addr("fe"));
    // Round robin starts with s1: 401 NTLM. The next requests stay on s1.
    assert_eq!([get(&mut a1), get(&mut a1), get(&mut a1)], [401, 401, 401]);
    assert_eq!(s1.connections(), 1);
    // Another client goes on with round robin (s2, then s1), and never gets A's
    // connection: s1 needs a second one.
    let mut b1 = connect(p.addr("fe"));
    assert_eq!([get(&mut b1), get(&mut b1)], [200, 401]);
    assert_eq!((s1.requests().len(), s2.requests().len()), (4, 1));
    assert_eq!(s1.connections(), 2, "B was not sent over A's connection");
    drop((a1, b1));
    assert!(eventually(SOON, || p.query(|w| w.sessions.is_empty())));
    assert_eq!(idle_conns(&p), usize::from(s2.connections() > 0), "only s2's connection may be shared");
    assert_idle(&p);
}
