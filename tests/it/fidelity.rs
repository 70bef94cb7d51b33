//! The behaviours the book teaches, pinned: the termination states of the log for each
//! kind of failure (`timeouts.md`, `server-side.md`), the abort counters of `show stat`,
//! the order in which the analysers run, and the transitions a stream interface may take.
//! A change that breaks one of these breaks a page of the course.

use haflow::haproxy::stream_interface::SiState;
use haflow::trace::capture::capture;
use haflow::trace::names;
use haflow::trace::tree::TreeBuilder;

use crate::http_mode::{http_cfg, status, term};
use crate::util::*;

/// One request on a new connection, then what the client does; the log line it leaves.
fn logged(p: &RunningProxy, bytes: &[u8], then: impl FnOnce(Conn)) -> String {
    let before = p.logs().len();
    let mut c = connect(p.addr("fe"));
    c.send_raw(bytes).unwrap();
    then(c);
    assert!(
        eventually(SOON, || p.logs().len() > before),
        "a log line for {:?}",
        String::from_utf8_lossy(bytes)
    );
    p.logs()[before].clone()
}

#[test]
fn each_failure_ends_with_the_termination_state_the_book_gives() {
    // 4 MiB so that a client can reset mid-body; the backend builds it before its head,
    // so `backend ok` waits 5 s for it, whatever the machine's load.
    let ok = backend(BackendSpec::Http(HttpBehaviour { body_size: 4 << 20, ..HttpBehaviour::named("ok") }));
    let refused = backend(BackendSpec::Refuse);
    let saturated = backend(BackendSpec::Saturated);
    let silent = backend(BackendSpec::BlackHole);
    let closes = ScriptedServer::start(b"", Then::Close);
    let invalid = ScriptedServer::start(b"HTTP/1.1 abc\r\n\r\n", Then::Stay);
    let cut = ScriptedServer::start(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial", Then::Reset);
    let sock = tmpdir("fidelity-terms").join("stats.sock");
    let cfg = http_cfg(
        &format!("    stats socket {}", sock.display()),
        "    retries 1\n    timeout connect 200ms\n    timeout server 300ms\n    timeout http-request 300ms\n    timeout queue 200ms",
        "frontend fe\n    bind 127.0.0.1:0\n    http-request deny if { path /deny }\n\
         \x20   http-request return status 200 content-type text/plain string ok if { path /return }\n\
         \x20   use_backend refused if { path /refused }\n    use_backend saturated if { path /saturated }\n\
         \x20   use_backend silent if { path /silent }\n    use_backend closes if { path /closes }\n\
         \x20   use_backend invalid if { path /invalid }\n    use_backend cut if { path /cut }\n\
         \x20   use_backend queued if { path_beg /queued }\n    default_backend ok\n\
         backend ok\n    timeout server 5s\n    server s1 \"${OK}\"\nbackend refused\n    server s1 \"${REFUSED}\"\n\
         backend saturated\n    server s1 \"${SATURATED}\"\nbackend silent\n    server s1 \"${SILENT}\"\n\
         backend closes\n    server s1 \"${CLOSES}\"\nbackend invalid\n    server s1 \"${INVALID}\"\n\
         backend cut\n    server s1 \"${CUT}\"\nbackend queued\n    server s1 \"${SILENT}\" maxconn 1\n",
    );
    let p = proxy(
        &cfg,
        &[
            ("OK", a(ok.addr())),
            ("REFUSED", a(refused.addr())),
            ("SATURATED", a(saturated.addr())),
            ("SILENT", a(silent.addr())),
            ("CLOSES", a(closes.addr())),
            ("INVALID", a(invalid.addr())),
            ("CUT", a(cut.addr())),
        ],
    );
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes();
    let answer = |mut c: Conn| {
        let _ = c.read_response(false);
    };
    let mut got = Vec::new();
    let mut check = |what: &str, line: String| got.push(format!("{what}: {} {}", status(&line), term(&line)));
    check("a normal end", logged(&p, &get("/"), answer));
    check("http-request deny", logged(&p, &get("/deny"), answer));
    check("http-request return", logged(&p, &get("/return"), answer));
    check("bad request syntax", logged(&p, b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", answer));
    check("timeout http-request", logged(&p, b"GET / HTTP/1.1\r\nHost: h\r\n", answer));
    check(
        "the client closes mid-head",
        logged(&p, b"GET / HTTP/1.1\r\nHost: h\r\n", |mut c| {
            let _ = c.shutdown_write();
            let _ = c.read_to_close();
        }),
    );
    check("connection refused", logged(&p, &get("/refused"), answer));
    check("timeout connect", logged(&p, &get("/saturated"), answer));
    // The first request holds the server's only slot; the second waits in its queue.
    let mut holder = connect(p.addr("fe"));
    holder.send_raw(&get("/queued/1")).unwrap();
    assert!(eventually(SOON, || silent.connections() >= 1));
    check("timeout queue", logged(&p, &get("/queued/2"), answer));
    drop(holder);
    // A queue timeout is a failed connection (`econ`); the server was full, so the session
    // waited in the backend's queue, and only the backend counts it.
    let stat = crate::soak::cli(&sock, "show stat");
    let econ: Vec<&str> = stat
        .lines()
        .filter(|l| l.starts_with("queued,"))
        .map(|l| l.split(',').nth(13).unwrap_or(""))
        .collect();
    assert_eq!(econ, ["0", "1"], "{stat}");
    check("the server closes before its head", logged(&p, &get("/closes"), answer));
    check("an invalid response", logged(&p, &get("/invalid"), answer));
    check("timeout server", logged(&p, &get("/silent"), answer));
    check("the server resets mid-body", logged(&p, &get("/cut"), answer));
    check(
        "the client resets mid-body",
        logged(&p, &get("/"), |mut c| {
            let _ = c.read_exact(1);
            let _ = c.abort();
        }),
    );
    assert_eq!(
        got,
        [
            "a normal end: 200 ----",
            "http-request deny: 403 PR--",
            "http-request return: 200 LR--",
            "bad request syntax: 400 PR--",
            "timeout http-request: 408 cR--",
            "the client closes mid-head: 400 CR--",
            "connection refused: 503 SC--",
            "timeout connect: 503 sC--",
            "timeout queue: 503 sQ--",
            "the server closes before its head: 502 SH--",
            "an invalid response: 502 PH--",
            "timeout server: 504 sH--",
            "the server resets mid-body: 200 SD--",
            "the client resets mid-body: 200 CD--",
        ]
    );
    assert_idle(&p);
}

#[test]
fn aborts_are_counted_on_the_backend_and_the_server_as_show_stat_shows() {
    let big = backend(BackendSpec::Http(HttpBehaviour { body_size: 4 << 20, ..HttpBehaviour::named("s1") }));
    let cut = ScriptedServer::start(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial", Then::Reset);
    let sock = tmpdir("fidelity-stats").join("stats.sock");
    let cfg = http_cfg(
        &format!("    stats socket {}", sock.display()),
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    use_backend cut if { path /cut }\n    default_backend big\n\
         backend big\n    server s1 \"${BIG}\"\nbackend cut\n    server s1 \"${CUT}\"\n",
    );
    let p = proxy(&cfg, &[("BIG", a(big.addr())), ("CUT", a(cut.addr()))]);
    logged(&p, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", |mut c| {
        let _ = c.read_exact(1);
        let _ = c.abort();
    });
    logged(&p, b"GET /cut HTTP/1.1\r\nHost: h\r\n\r\n", |mut c| {
        let _ = c.read_response(false);
    });
    let stat = crate::soak::cli(&sock, "show stat");
    let mut lines = stat.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").trim_start_matches("# ").split(',').collect();
    let col = |row: &str, name: &str| {
        let i = header.iter().position(|h| *h == name).expect("a show stat column");
        row.split(',').nth(i).unwrap_or("").to_string()
    };
    let rows: Vec<String> = lines
        .filter(|l| l.starts_with("big,") || l.starts_with("cut,"))
        .map(|l| {
            let name: Vec<&str> = l.splitn(3, ',').take(2).collect();
            format!(
                "{} cli_abrt={} srv_abrt={} eresp={}",
                name.join("/"),
                col(l, "cli_abrt"),
                col(l, "srv_abrt"),
                col(l, "eresp")
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "big/s1 cli_abrt=1 srv_abrt=0 eresp=0",
            "big/BACKEND cli_abrt=1 srv_abrt=0 eresp=0",
            "cut/s1 cli_abrt=0 srv_abrt=1 eresp=1",
            "cut/BACKEND cli_abrt=0 srv_abrt=1 eresp=1",
        ]
    );
    assert_idle(&p);
}

#[test]
fn the_analysers_run_in_haproxy_order() {
    let ok = backend(BackendSpec::Http(HttpBehaviour { body_size: 10, ..HttpBehaviour::named("s1") }));
    let (layer, cap) = capture(1 << 16);
    let cfg = http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n    server s1 \"${S1}\"\n",
    );
    let p = RunningProxy::start_with(
        &cfg,
        &[("S1", a(ok.addr()))],
        StartOptions { capture: Some(layer), ..Default::default() },
    )
    .expect("starts");
    logged(
        &p,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        |mut c| {
            let _ = c.read_response(false);
        },
    );
    assert_idle(&p);
    p.stop();
    let mut tb = TreeBuilder::default();
    tb.extend(&cap.drain());
    let session = tb.roots.iter().find(|r| r.name == names::SESSION).expect("a session tree");
    let mut order: Vec<String> = Vec::new();
    let mut walk = vec![session];
    while let Some(n) = walk.pop() {
        if let Some(an) = n.field("an")
            && order.last().is_none_or(|l| l != an)
            && !order.iter().any(|o| o == an)
        {
            order.push(an.to_string());
        }
        walk.extend(n.children.iter().rev());
    }
    assert_eq!(
        order,
        [
            "AN_REQ_WAIT_HTTP",
            "AN_REQ_HTTP_PROCESS_FE",
            "AN_REQ_SWITCHING_RULES",
            "AN_REQ_HTTP_PROCESS_BE",
            "AN_REQ_HTTP_INNER",
            "AN_REQ_HTTP_XFER_BODY",
            "AN_RES_WAIT_HTTP",
            "AN_RES_HTTP_PROCESS_BE",
            "AN_RES_HTTP_XFER_BODY",
        ]
    );
}

#[test]
fn a_stream_interface_takes_only_haproxys_transitions() {
    use SiState::*;
    let all = [
        SI_ST_INI, SI_ST_REQ, SI_ST_QUE, SI_ST_TAR, SI_ST_ASS, SI_ST_CON, SI_ST_CER, SI_ST_EST, SI_ST_DIS,
        SI_ST_CLO,
    ];
    let mut allowed = Vec::new();
    for from in all {
        let to: Vec<String> =
            all.iter().filter(|&&to| to != from && from.may_become(to)).map(|t| t.to_string()).collect();
        allowed.push(format!("{from} -> {}", to.join(" ")));
    }
    assert_eq!(
        allowed,
        [
            "SI_ST_INI -> SI_ST_REQ SI_ST_EST SI_ST_CLO",
            "SI_ST_REQ -> SI_ST_QUE SI_ST_ASS SI_ST_EST SI_ST_CLO",
            "SI_ST_QUE -> SI_ST_REQ SI_ST_ASS SI_ST_CLO",
            "SI_ST_TAR -> SI_ST_REQ SI_ST_ASS SI_ST_CLO",
            "SI_ST_ASS -> SI_ST_QUE SI_ST_CON SI_ST_CER SI_ST_CLO",
            "SI_ST_CON -> SI_ST_CER SI_ST_EST SI_ST_CLO",
            "SI_ST_CER -> SI_ST_REQ SI_ST_TAR SI_ST_ASS SI_ST_CLO",
            // Only an established connection closes in two steps.
            "SI_ST_EST -> SI_ST_INI SI_ST_DIS",
            "SI_ST_DIS -> SI_ST_CLO",
            // Keep-alive recycles the server side.
            "SI_ST_CLO -> SI_ST_INI",
        ]
    );
}
