//! Stick tables: `track-sc*` counters and the fetches that read them (rate limiting),
//! `stick on` persistence, `show table` / `clear table` / `set table` on the stats
//! socket, expiry giving entries back to the pool, configuration errors; and the
//! persistence cookie (`cookie NAME insert indirect nocache`, `cookie NAME rewrite`);
//! `use-server` rules and `track`, and `del server` refusing the servers they name.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc::{Receiver, channel};

use haflow::scenario::client::{self, Request};

use crate::util::*;

fn rate_cfg(dir: &Path, expire: &str) -> String {
    format!(
        "global\n    stats socket {d}/admin.sock mode 600 level admin\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:0\n\
         \x20   stick-table type ip size 100 expire {expire} store conn_cnt,conn_cur,http_req_cnt,http_req_rate(10s),gpc0\n\
         \x20   http-request track-sc0 src\n\
         \x20   http-request sc-inc-gpc0(0) if {{ path /mark }}\n\
         \x20   http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt 3 }}\n\
         \x20   http-request return status 200 content-type text/plain lf-string \"req=%[sc0_http_req_cnt] gpc0=%[sc0_get_gpc0] in=%[src,in_table(fe)]\"\n",
        d = dir.display()
    )
}

/// `show table` without the entry's address and the remaining expiry time.
fn masked(out: &str) -> String {
    out.lines()
        .map(|l| {
            let l = match l.split_once(": key=") {
                Some((_, rest)) => format!("PTR: key={rest}"),
                None => l.to_string(),
            };
            l.split(' ')
                .map(|w| if w.starts_with("exp=") { "exp=X" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn track_sc0_counts_requests_and_the_rate_limit_denies_the_fourth() {
    let dir = tmpdir("stick-rate");
    let p = proxy(&rate_cfg(&dir, "60s"), &[]);
    let fe = p.addr("fe");
    let mut statuses = Vec::new();
    let mut bodies = Vec::new();
    for path in ["/", "/mark", "/", "/"] {
        let r = client::get(fe, path).expect("a response");
        statuses.push(r.status);
        bodies.push(r.text());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(bodies[..3], ["req=1 gpc0=0 in=1", "req=2 gpc0=1 in=1", "req=3 gpc0=1 in=1"]);
    let sock = dir.join("admin.sock");
    let out = cli(&sock, "show table fe\n");
    assert_eq!(
        masked(&out),
        "# table: fe, type: ip, size:100, used:1\n\
         PTR: key=127.0.0.1 use=0 exp=X gpc0=1 conn_cnt=4 conn_cur=0 http_req_cnt=4 http_req_rate(10000)=4\n",
        "{out}"
    );
    // Listing every table, and a filter that matches nothing.
    assert_eq!(cli(&sock, "show table\n"), "# table: fe, type: ip, size:100, used:1\n\n");
    assert_eq!(cli(&sock, "show table fe data.gpc0 gt 5\n"), "# table: fe, type: ip, size:100, used:1\n\n");
    assert_eq!(cli(&sock, "show table fe data.foo gt 5\n"), "Filter entry #1: Unknown data type\n\n");
    assert_eq!(cli(&sock, "show table nope\n"), "No such table\n\n");
    // `set table` changes an entry, `clear table` removes it.
    assert_eq!(cli(&sock, "set table fe key 127.0.0.1 data.gpc0 7\n"), "\n");
    assert!(cli(&sock, "show table fe key 127.0.0.1\n").contains(" gpc0=7 "));
    assert_eq!(cli(&sock, "clear table fe key 127.0.0.1\n"), "\n");
    assert_eq!(cli(&sock, "show table fe\n"), "# table: fe, type: ip, size:100, used:0\n\n");
    // A new entry: the client is under the limit again.
    assert_eq!(client::get(fe, "/").expect("a response").status, 200);
    assert_eq!(cli(&sock, "clear table fe\n"), "\n");
    assert_idle(&p);
}

#[test]
fn expired_entries_go_back_to_the_sticktables_pool() {
    let dir = tmpdir("stick-exp");
    let p = proxy(&rate_cfg(&dir, "200ms"), &[]);
    assert_eq!(client::get(p.addr("fe"), "/").expect("a response").status, 200);
    let used = || {
        p.query(|w| {
            w.pool_stats().into_iter().find(|s| s.name == "sticktables").map(|s| (s.used, s.allocated))
        })
    };
    assert_eq!(used(), Some((1, 1)), "the entry lives on after the session");
    assert!(eventually(SOON, || used() == Some((0, 1))), "expiry frees the entry: {:?}", used());
    assert!(cli(&dir.join("admin.sock"), "show pools\n").contains("sticktables"));
    assert_idle(&p);
}

#[test]
fn stick_on_src_keeps_a_client_on_the_server_it_first_got() {
    let s1 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let s2 = backend(BackendSpec::Http(HttpBehaviour::named("s2")));
    let cfg = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
               frontend fe\n    bind 127.0.0.1:0\n    default_backend be\n\
               backend be\n    balance roundrobin\n    stick-table type ip size 10 expire 1m\n    stick on src\n\
               \x20   server s1 \"${S1}\"\n    server s2 \"${S2}\"\n";
    let p = proxy(cfg, &[("S1", a(s1.addr())), ("S2", a(s2.addr()))]);
    let served: Vec<String> = (0..4)
        .map(|_| {
            client::get(p.addr("fe"), "/")
                .expect("a response")
                .header("X-Served-By")
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(served, ["s1", "s1", "s1", "s1"], "round robin alone would alternate");
    let out = p.query(|w| {
        let t = w.proxies.iter().find_map(|p| p.table.as_ref()).expect("a table");
        t.keys().iter().map(|k| t.stktable_lookup_key(k, |ts| ts.data[0].n)).collect::<Vec<_>>()
    });
    assert_eq!(out, [Some(1)], "the entry stores s1's id");
    // The entry outlives the sessions until it expires; cleared, nothing is left.
    let cleared = p.query(|w| {
        use haflow::haproxy::stick_table::{StkCliAct, cli_parse_table_req};
        cli_parse_table_req(w, StkCliAct::Clear, &["be"], true)
    });
    assert_eq!(cleared, "");
    assert_idle(&p);
}

#[test]
fn a_missing_table_or_a_bad_store_option_is_refused() {
    for (cfg, want) in [
        (
            "frontend fe\n    mode http\n    bind 127.0.0.1:0\n    http-request track-sc0 src table nope\n",
            "unable to find table 'nope'",
        ),
        (
            "frontend fe\n    mode http\n    bind 127.0.0.1:0\n    http-request deny if { src,table_gpc0(nope) gt 1 }\n",
            "unable to find table 'nope'",
        ),
        (
            "frontend fe\n    bind 127.0.0.1:0\n    stick-table type ip size 1 store conn_rate\n",
            "missing argument to store option 'conn_rate'",
        ),
        ("frontend fe\n    bind 127.0.0.1:0\n    stick-table type foo size 1\n", "unknown type 'foo'"),
        ("backend be\n    cookie S insert rewrite\n", "incompatible"),
    ] {
        let err = match haflow::scenario::proxy::RunningProxy::start(cfg, &[]) {
            Ok(_) => panic!("accepted: {cfg}"),
            Err(e) => format!("{e:?}"),
        };
        assert!(err.contains(want), "{cfg}: {err}");
    }
}

/// A server that answers `200` with `extra` headers and reports each request head it read.
/// Each connection has its own thread: the proxy keeps idle ones open for reuse.
fn recording_server(extra: &'static str) -> (std::net::SocketAddr, Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(c.try_clone().unwrap());
                loop {
                    let mut head = String::new();
                    let mut line = String::new();
                    while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                        head.push_str(&line);
                        line.clear();
                    }
                    if head.is_empty() || tx.send(head).is_err() {
                        break;
                    }
                    let resp = format!("HTTP/1.1 200 OK\r\n{extra}Content-Length: 0\r\n\r\n");
                    if c.write_all(resp.as_bytes()).is_err() {
                        break;
                    }
                }
                let _ = c.read(&mut [0u8; 1]);
            });
        }
    });
    (addr, rx)
}

#[test]
fn cookie_insert_indirect_sends_to_the_named_server_and_hides_the_cookie() {
    let (s1, rx1) = recording_server("");
    let (s2, rx2) = recording_server("");
    let cfg = "global\n    log stdout format raw local0\n\
               defaults\n    mode http\n    option httplog\n    log global\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
               frontend fe\n    bind 127.0.0.1:0\n    default_backend be\n\
               backend be\n    cookie SRV insert indirect nocache\n\
               \x20   server s1 \"${S1}\" cookie one\n    server s2 \"${S2}\" cookie two\n";
    let p = proxy(cfg, &[("S1", a(s1)), ("S2", a(s2))]);
    let fe = p.addr("fe");
    let ask = |cookie: Option<&str>| {
        let mut req = Request::get("/");
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        let mut c = connect(fe);
        c.request(&req).expect("a response")
    };
    // No cookie: the first server, and a cookie naming it. The response says nothing of
    // its freshness, so no cache would keep it: no `Cache-control: private` (HAProxy 2.6).
    let r = ask(None);
    assert_eq!(r.header("Set-Cookie"), Some("SRV=one; path=/"));
    assert_eq!(r.header("Cache-control"), None);
    assert!(rx1.recv_timeout(SOON).is_ok());
    // The cookie names s2: s2 gets the request, without the cookie but with the others.
    let r = ask(Some("a=1; SRV=two; b=2"));
    assert_eq!(r.header("Set-Cookie"), None, "the client already has the right cookie");
    let head = rx2.recv_timeout(SOON).expect("s2 got the request");
    assert!(head.to_ascii_lowercase().contains("cookie: a=1; b=2\r\n"), "{head}");
    // An unknown value: a server by load balancing, and a fresh cookie.
    let r = ask(Some("SRV=zzz"));
    assert!(r.header("Set-Cookie").is_some_and(|c| c.starts_with("SRV=")));
    let head = rx1.recv_timeout(SOON).or_else(|_| rx2.recv_timeout(SOON)).expect("a server got it");
    assert!(!head.to_ascii_lowercase().contains("cookie:"), "a cookie left alone is gone: {head}");
    let logs = p.wait_logs(3, SOON);
    let flags: Vec<&str> = logs.iter().filter_map(|l| l.split_whitespace().nth(9)).collect();
    assert_eq!(flags, ["--NI", "--VN", "--II"], "{logs:#?}");
    assert_idle(&p);
}

#[test]
fn cookie_rewrite_replaces_the_value_the_server_sets() {
    let (s1, _rx) = recording_server("Set-Cookie: JS=app; path=/\r\n");
    let cfg = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
               frontend fe\n    bind 127.0.0.1:0\n    default_backend be\n\
               backend be\n    cookie JS rewrite\n    server s1 \"${S1}\" cookie one\n";
    let p = proxy(cfg, &[("S1", a(s1))]);
    let r = client::get(p.addr("fe"), "/").expect("a response");
    assert_eq!(r.header("Set-Cookie"), Some("JS=one; path=/"));
    assert_idle(&p);
}

#[test]
fn tcp_request_connection_tracking_counts_every_request_of_the_connection() {
    let s1 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let cfg = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
               frontend fe\n    bind 127.0.0.1:0\n\
               \x20   stick-table type ip size 10 expire 1m store conn_cnt,http_req_cnt,http_req_rate(10s)\n\
               \x20   tcp-request connection track-sc0 src\n\
               \x20   http-request deny deny_status 429 if { sc_http_req_rate(0) gt 2 }\n\
               \x20   default_backend be\n\
               backend be\n    server s1 \"${S1}\"\n";
    let p = proxy(cfg, &[("S1", a(s1.addr()))]);
    let mut c = connect(p.addr("fe"));
    let statuses: Vec<u16> =
        (0..3).map(|_| c.request(&Request::get("/")).expect("a response").status).collect();
    assert_eq!(statuses, [200, 200, 429], "one connection, three requests");
    drop(c);
    let row = p.query(|w| {
        let t = w.proxies.iter().find_map(|p| p.table.as_ref()).expect("a table");
        let now = w.clock.now_ms;
        t.keys()
            .iter()
            .filter_map(|k| t.stktable_lookup_key(k, |ts| t.table_dump_entry_to_buffer(ts, now)))
            .collect::<String>()
    });
    assert!(row.contains(" conn_cnt=1 http_req_cnt=3 http_req_rate(10000)=3"), "{row}");
    // Once the connection is gone nothing holds the entry: `clear table` removes it.
    let cleared = eventually(SOON, || {
        p.query(|w| {
            use haflow::haproxy::stick_table::{StkCliAct, cli_parse_table_req};
            cli_parse_table_req(w, StkCliAct::Clear, &["fe"], true);
            w.proxies.iter().all(|p| p.table.as_ref().is_none_or(|t| t.current() == 0))
        })
    });
    assert!(cleared, "the entry is released with the connection");
    assert_idle(&p);
}

/// An HTTP frontend `fe` to backend `be`, an admin socket at `dir/admin.sock`, then `rest`
/// (more frontend lines, and the backend).
fn admin_cfg(dir: &Path, rest: &str) -> String {
    format!(
        "global\n    stats socket {}/admin.sock level admin\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:0\n    default_backend be\n{rest}",
        dir.display()
    )
}

#[test]
fn use_server_sends_matching_requests_to_the_named_server_and_del_server_refuses_it() {
    let s1 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let s2 = backend(BackendSpec::Http(HttpBehaviour::named("s2")));
    let dir = tmpdir("usesrv");
    let cfg = admin_cfg(
        &dir,
        "    http-response set-header X-Srv %[srv_conn(be/s1)],%[srv_queue(be/s1)],%[srv_is_up(be/s2)]\n\
         backend be\n    balance roundrobin\n    use-server s2 if { path_beg /two }\n\
         \x20   server s1 \"${S1}\"\n    server s2 \"${S2}\"\n    server s3 \"${S1}\"\n",
    );
    let p = proxy(&cfg, &[("S1", a(s1.addr())), ("S2", a(s2.addr()))]);
    let get = |path: &str| {
        let r = client::get(p.addr("fe"), path).expect("a response");
        (r.header("X-Served-By").unwrap_or("").to_string(), r.header("X-Srv").unwrap_or("").to_string())
    };
    let two: Vec<(String, String)> = (0..3).map(|_| get("/two")).collect();
    assert!(two.iter().all(|(s, _)| s == "s2"), "use-server bypasses round robin: {two:?}");
    assert_eq!(two[0].1, "0,0,1", "no connection on s1, none queued, s2 up");
    let (by, srv) = get("/");
    assert_eq!((by.as_str(), srv.as_str()), ("s1", "1,0,1"), "the balancer's first pick, its own connection");
    // A rule whose server is down falls through to the load balancer.
    let admin = dir.join("admin.sock");
    assert_eq!(cli(&admin, "disable server be/s2\n"), "\n");
    let (by, srv) = get("/two");
    assert_ne!(by, "s2");
    assert!(srv.ends_with(",0"), "srv_is_up(be/s2) is false in maintenance: {srv}");
    // Servers the configuration points at stay; the others go once in maintenance.
    let refused =
        "This server cannot be removed at runtime due to other configuration elements pointing to it.\n";
    assert_eq!(cli(&admin, "del server be/s1\n"), refused, "named by srv_conn()");
    assert_eq!(cli(&admin, "del server be/s2\n"), refused, "named by use-server");
    assert_eq!(cli(&admin, "disable server be/s3;del server be/s3\n"), "\nServer deleted.\n");
    assert_idle(&p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tracking_server_follows_the_server_it_tracks() {
    let s1 = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let dir = tmpdir("track");
    let cfg = admin_cfg(
        &dir,
        "backend be\n    server s1 \"${S1}\" check inter 1h\n    server s2 \"${S1}\" track s1\n",
    );
    let p = proxy(&cfg, &[("S1", a(s1.addr()))]);
    let admin = dir.join("admin.sock");
    let maint = |s: &'static str| {
        p.query(move |w| {
            w.find_proxy("be").and_then(|b| b.servers.iter().find(|v| v.name == s)).map(|v| v.status())
        })
    };
    assert_eq!(cli(&admin, "disable server be/s1\n"), "\n");
    assert_eq!((maint("s1").as_deref(), maint("s2").as_deref()), (Some("MAINT"), Some("MAINT")));
    assert_eq!(cli(&admin, "enable server be/s1\n"), "\n");
    assert_ne!(maint("s2").as_deref(), Some("MAINT"), "s2 leaves maintenance with s1");
    assert_eq!(
        cli(&admin, "del server be/s1\n"),
        "This server cannot be removed at runtime due to other configuration elements pointing to it.\n"
    );
    assert_idle(&p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn server_references_that_find_nothing_are_refused() {
    for (cfg, want) in [
        (
            "backend be\n    use-server nope if TRUE\n    server s1 127.0.0.1:1\n",
            "unable to find server 'nope' referenced in a 'use-server' rule",
        ),
        (
            "backend be\n    use-server s1\n    server s1 127.0.0.1:1\n",
            "'use-server' requires either 'if' or 'unless'",
        ),
        (
            "frontend fe\n    mode http\n    bind 127.0.0.1:0\n    http-request deny if { srv_conn(be/nope) gt 1 }\nbackend be\n    server s1 127.0.0.1:1\n",
            "unable to find server 'nope' in proxy 'be'",
        ),
        (
            "backend be\n    server s1 127.0.0.1:1\n    server s2 127.0.0.1:1 track s1\n",
            "does not have any check nor agent enabled",
        ),
        (
            "backend be\n    server s1 127.0.0.1:1 check\n    server s2 127.0.0.1:1 track nope/s1\n",
            "unable to find required proxy 'nope' for tracking",
        ),
        (
            "backend be\n    server s2 127.0.0.1:1 track s1 check\n",
            "unable to enable checks and tracking at the same time",
        ),
    ] {
        let err = match haflow::scenario::proxy::RunningProxy::start(cfg, &[]) {
            Ok(_) => panic!("accepted: {cfg}"),
            Err(e) => format!("{e:?}"),
        };
        assert!(err.contains(want), "{cfg}: {err}");
    }
}
