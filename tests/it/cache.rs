//! The HTTP cache (`cache` sections, `http-request cache-use`, `http-response cache-store`,
//! `res.cache_hit`/`res.cache_name`, `show cache`): what is stored, what is served from
//! the cache and how a hit looks on the wire, in the log and in the counters; how the
//! rules are checked at startup; and, side by side, that HAProxy 2.6 answers and logs the
//! same hit and miss.

use crate::http_mode::term;
use crate::side_by_side::start_haproxy_with;
use crate::util::*;
use haflow::scenario::backends::body_pattern;
use haflow::scenario::client::{Request, Response};

/// A backend storing in and serving from cache `c1`, with the fetches in headers.
fn config(extra_global: &str) -> String {
    format!(
        r#"
global
    log stdout format raw local0
{extra_global}
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 3s
    timeout server 3s
frontend fe
    bind "127.0.0.1:${{PORT}}"
    default_backend be
backend be
    http-request cache-use c1
    http-response cache-store c1
    http-response set-header X-Cache-Hit %[res.cache_hit]
    http-response set-header X-Cache-Name %[res.cache_name]
    server s1 "${{S1}}"
cache c1
    total-max-size 4
    max-age 240
"#
    )
}

/// A server whose answers may be cached for a minute.
fn cacheable_backend() -> RunningBackend {
    backend(BackendSpec::Http(HttpBehaviour {
        headers: vec![
            ("Cache-Control".into(), "max-age=60".into()),
            ("Content-Type".into(), "text/plain".into()),
        ],
        body_size: 1000,
        ..HttpBehaviour::default()
    }))
}

/// Two GETs of `/a` on one kept-alive connection.
fn two_gets(addr: std::net::SocketAddr) -> Vec<Response> {
    let mut c = connect(addr);
    (0..2).map(|_| c.request(&Request::get("/a")).unwrap()).collect()
}

/// What must match HAProxy: status, headers (names lower-cased, in order), body (once
/// gunzipped: two deflate implementations need not give the same bytes).
fn observed(r: &Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = r.headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect();
    let mut body = Vec::new();
    if r.header("content-encoding") == Some("gzip") {
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut body).unwrap();
    } else {
        body = r.body.clone();
    }
    (r.status, headers, body)
}

/// The fields of an httplog line a cache hit or miss decides: backend/server, status and
/// termination state.
fn log_fields(line: &str) -> (String, String, String) {
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[3].to_string(), f[5].to_string(), term(line).to_string())
}

#[test]
fn a_second_get_comes_from_the_cache_with_age_and_is_logged_as_cache_like_haproxy() {
    let srv = cacheable_backend();
    let sock = tmpdir("cache-hit").join("stats.sock");
    let cfg = config(&format!("    stats socket {} level admin", sock.display()));
    let p = proxy(&cfg, &[("PORT", "0".into()), ("S1", a(srv.addr()))]);
    let got = two_gets(p.addr("fe"));
    let (miss, hit) = (&got[0], &got[1]);
    assert_eq!(
        (miss.status, miss.header("x-cache-hit"), miss.header("x-cache-name")),
        (200, Some("0"), Some(""))
    );
    assert_eq!(miss.header("age"), None, "a response from the server gets no Age");
    assert_eq!(
        (hit.status, hit.header("x-cache-hit"), hit.header("x-cache-name"), hit.header("age")),
        (200, Some("1"), Some("c1"), Some("0"))
    );
    assert_eq!(hit.header("content-length"), Some("1000"));
    assert!(hit.body == body_pattern(1000), "the cached body is the server's");
    assert_eq!(srv.requests().len(), 1, "the server saw only the miss");
    let logs: Vec<String> = {
        wait_log(&p, |l| l.contains("<CACHE>"));
        p.logs().into_iter().filter(|l| l.contains("\"GET /a HTTP/1.1\"")).collect()
    };
    assert_eq!(logs.len(), 2, "{logs:#?}");
    assert_eq!(log_fields(&logs[0]), ("be/s1".into(), "200".into(), "----".into()));
    assert_eq!(log_fields(&logs[1]), ("be/<CACHE>".into(), "200".into(), "LR--".into()));
    let be = p.query(|w| w.proxies.iter().find(|p| p.name == "be").unwrap().counters.clone());
    assert_eq!((be.cache_lookups, be.cache_hits), (2, 1));
    let show = cli(&sock, "show cache\n");
    let lines: Vec<&str> = show.lines().collect();
    assert!(lines[0].contains(": c1 (shctx:") && lines[0].ends_with("available blocks:4096)"), "{show}");
    assert!(
        lines[1].contains(" vary:0x0000000000000000 size:")
            && lines[1].contains(" blocks), refcount:0, expire:"),
        "{show}"
    );
    // max-age=60, less the seconds the test took.
    let expire: u64 = lines[1].rsplit("expire:").next().and_then(|e| e.trim().parse().ok()).unwrap_or(0);
    assert!((50..=60).contains(&expire), "{show}");
    assert_idle(&p);

    let hap_sock = tmpdir("cache-hit-haproxy").join("stats.sock");
    let hap_cfg = cfg.replace(&sock.display().to_string(), &hap_sock.display().to_string());
    let Some(hap) = start_haproxy_with(&hap_cfg, &[("S1", a(srv.addr()))]) else { return };
    let before = hap.logs.lock().unwrap().len();
    let theirs = two_gets(hap.addr);
    for (i, (ours, theirs)) in got.iter().zip(&theirs).enumerate() {
        assert_eq!(observed(ours), observed(theirs), "response {i} differs from HAProxy's");
    }
    let mut hap_logs = Vec::new();
    eventually(SOON, || {
        // Only the two requests' lines (the start-up probe may be logged late).
        hap_logs =
            hap.logs.lock().unwrap()[before..].iter().filter(|l| l.contains("GET /a")).cloned().collect();
        hap_logs.len() >= 2
    });
    let ours: Vec<_> = logs.iter().map(|l| log_fields(l)).collect();
    let theirs: Vec<_> = hap_logs.iter().map(|l| log_fields(l)).collect();
    assert_eq!(ours, theirs, "log lines: haproxy {hap_logs:#?}");
}

/// The alerts of a config, with the file's directory dropped.
fn alerts(text: &str) -> Vec<String> {
    let path = tmpdir("cachecfg").join("t.cfg");
    std::fs::write(&path, text).unwrap();
    let dir = format!("{}/", path.parent().unwrap().display());
    let mut cfg = match haflow::haproxy::cfgparse::readcfgfile(&[&path], &|_| None) {
        Ok(cfg) => cfg,
        Err(d) => return d.alerts.into_iter().map(|l| l.replace(&dir, "")).collect(),
    };
    match haflow::haproxy::cfgparse::check_config_validity(&mut cfg) {
        Ok(()) => Vec::new(),
        Err(d) => d.alerts,
    }
}

#[test]
fn cache_rules_are_checked_as_haproxy_checks_them() {
    let cfg = |rules: &str| {
        format!(
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
             backend be\n{rules}\n    server s1 127.0.0.1:1\ncache c1\n    total-max-size 1\n"
        )
    };
    assert_eq!(
        alerts(&cfg("    http-request cache-use c1\n    http-response cache-store c1")),
        Vec::<String>::new()
    );
    assert_eq!(
        alerts(&cfg("    http-request cache-use nope\n    http-response cache-store nope"))[0],
        "config: backend 'be': unable to find the cache 'nope' referenced by the filter 'cache'."
    );
    assert_eq!(
        alerts(&cfg("    http-request cache-use nope\n    http-response cache-store nope"))
            .iter()
            .filter(|l| l.contains("nope"))
            .count(),
        1,
        "one filter per cache name, so one alert"
    );
    let missing = alerts(&cfg("    http-request cache-use if TRUE"));
    assert!(missing[0].contains("expects a cache name"), "{missing:?}");
    let wrong_list = alerts(&cfg("    http-request cache-store c1"));
    assert!(wrong_list[0].contains("unknown action 'cache-store'"), "{wrong_list:?}");
    let extra = alerts(&cfg("    http-response cache-store c1 now"));
    assert!(extra[0].contains("unexpected argument 'now'"), "{extra:?}");
    // Filters: a compression filter declared before the cache's is refused; an explicit
    // `filter cache` replaces the implicit one of the rules, at its own place.
    assert_eq!(
        alerts(&cfg("    filter compression\n    http-response cache-store c1")),
        [
            "config: backend 'be': unable to enable the compression filter before the cache 'c1'.",
            "Fatal errors found in configuration."
        ]
    );
    assert_eq!(alerts(&cfg("    http-request cache-use c1\n    filter compression")), Vec::<String>::new());
    assert_eq!(
        alerts(&cfg("    filter cache c1\n    filter compression\n    http-response cache-store c1")),
        Vec::<String>::new()
    );
    assert_eq!(
        alerts(&cfg("    filter cache c1\n    filter cache c1"))[0],
        "parsing [t.cfg:8] : 'filter' : 'be: multiple explicit declarations of the cache filter 'c1''"
    );
    assert_eq!(
        alerts(&cfg("    filter cache"))[0],
        "parsing [t.cfg:7] : 'filter' : 'cache : expects a <name> argument'"
    );
    let dup = alerts(&format!("{}cache c1\n    total-max-size 1\n", cfg("")));
    assert!(dup[0].contains("Duplicate cache name 'c1'."), "{dup:?}");
}

#[test]
fn a_condition_decides_which_requests_use_the_cache() {
    let srv = cacheable_backend();
    let cfg = config("").replace(
        "    http-request cache-use c1\n",
        "    http-request cache-use c1 if { path_beg /cached }\n",
    );
    let p = proxy(&cfg, &[("PORT", "0".into()), ("S1", a(srv.addr()))]);
    let mut c = connect(p.addr("fe"));
    let hits: Vec<Option<String>> = ["/cached", "/cached", "/other", "/other"]
        .iter()
        .map(|path| c.request(&Request::get(path)).unwrap().header("x-cache-hit").map(String::from))
        .collect();
    let want: Vec<Option<String>> = ["0", "1", "0", "0"].iter().map(|h| Some(h.to_string())).collect();
    assert_eq!(hits, want, "/other never looks the cache up, so it is never stored");
    assert_eq!(srv.requests().len(), 3);
    drop(c);
    assert_idle(&p);
}

#[test]
fn a_request_to_another_backend_leaves_the_server_connection_for_a_later_one() {
    let (s1, s2) = (cacheable_backend(), cacheable_backend());
    let cfg = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 3s\n    timeout server 3s\n\
               frontend fe\n    bind \"127.0.0.1:${PORT}\"\n    use_backend b2 if { path_beg /two }\n    default_backend b1\n\
               backend b1\n    server s1 \"${S1}\"\nbackend b2\n    server s2 \"${S2}\"\n";
    let p = proxy(cfg, &[("PORT", "0".into()), ("S1", a(s1.addr())), ("S2", a(s2.addr()))]);
    let mut c = connect(p.addr("fe"));
    for path in ["/", "/two", "/", "/two", "/"] {
        assert_eq!(c.request(&Request::get(path)).unwrap().status, 200, "{path}");
    }
    assert_eq!((s1.requests().len(), s2.requests().len()), (3, 2));
    assert_eq!(
        (s1.connections(), s2.connections()),
        (1, 1),
        "each server connection was reused (2.6's srv_list)"
    );
    drop(c);
    assert_idle(&p);
}

#[test]
fn a_hit_shows_the_lookup_and_the_cache_applet_in_the_sessions_call_flow() {
    use haflow::trace::{capture::capture, names, tree::TreeBuilder};
    let srv = cacheable_backend();
    let (layer, cap) = capture(1 << 16);
    let p = RunningProxy::start_with(
        &config(""),
        &[("PORT", "0".into()), ("S1", a(srv.addr()))],
        StartOptions { capture: Some(layer), ..Default::default() },
    )
    .expect("starts");
    two_gets(p.addr("fe"));
    assert_idle(&p);
    p.stop();
    let mut tb = TreeBuilder::default();
    tb.extend(&cap.drain());
    let mut lookups = Vec::new();
    let mut stores = Vec::new();
    let mut applet = Vec::new();
    for r in &tb.roots {
        r.find_all(names::HTTP_ACTION_REQ_CACHE_USE, &mut lookups);
        r.find_all(names::HTTP_ACTION_STORE_CACHE, &mut stores);
        r.find_all(names::HTTP_CACHE_IO_HANDLER, &mut applet);
    }
    let hits: Vec<Option<&str>> = lookups.iter().map(|n| n.field("hit")).collect();
    assert_eq!(hits, [Some("false"), Some("true")], "a miss, then a hit");
    assert!(lookups.iter().all(|n| n.field("cache") == Some("c1")));
    assert_eq!(stores.len(), 1, "only the server's response goes through cache-store");
    assert!(!applet.is_empty(), "the cache applet answered the hit");
}

#[test]
fn a_cache_before_compression_keeps_the_servers_response_and_each_hit_is_compressed_again() {
    let srv = cacheable_backend();
    // The cache and the compression of one backend: the cache's filter comes first.
    let cfg = config("").replace(
        "    http-request cache-use c1\n",
        "    compression algo gzip\n    compression type text/plain\n    http-request cache-use c1\n",
    );
    let reqs = [
        Request::get("/a").header("Accept-Encoding", "gzip"),
        Request::get("/a").header("Accept-Encoding", "gzip"),
        Request::get("/a"),
    ];
    let run = |addr| -> Vec<Response> {
        let mut c = connect(addr);
        reqs.iter().map(|r| c.request(r).unwrap()).collect()
    };
    let p = proxy(&cfg, &[("PORT", "0".into()), ("S1", a(srv.addr()))]);
    let got = run(p.addr("fe"));
    let seen: Vec<_> = got
        .iter()
        .map(|r| (r.header("x-cache-hit"), r.header("content-encoding"), r.header("age")))
        .collect();
    assert_eq!(
        seen,
        [(Some("0"), Some("gzip"), None), (Some("1"), Some("gzip"), Some("0")), (Some("1"), None, Some("0"))],
        "stored uncompressed, compressed again for the client that asks"
    );
    assert!(got[2].body == body_pattern(1000), "the cache holds the server's body");
    assert_eq!(srv.requests().len(), 1);
    assert_idle(&p);

    // The frontend's compression comes before the backend's cache: what it compresses
    // is not stored (2.6's cache_store_post_analyze); the uncompressed answer is.
    let srv2 = cacheable_backend();
    let fe_cfg = config("").replace(
        "    default_backend be\n",
        "    compression algo gzip\n    compression type text/plain\n    default_backend be\n",
    );
    let p2 = proxy(&fe_cfg, &[("PORT", "0".into()), ("S1", a(srv2.addr()))]);
    let got2 = run(p2.addr("fe"));
    let hits: Vec<_> = got2.iter().map(|r| (r.header("x-cache-hit"), r.header("content-encoding"))).collect();
    assert_eq!(hits, [(Some("0"), Some("gzip")), (Some("0"), Some("gzip")), (Some("0"), None)]);
    assert_eq!(srv2.requests().len(), 3);
    assert_idle(&p2);

    let Some(hap) = start_haproxy_with(&cfg, &[("S1", a(srv.addr()))]) else { return };
    let theirs = run(hap.addr);
    for (i, (ours, theirs)) in got.iter().zip(&theirs).enumerate() {
        assert_eq!(observed(ours), observed(theirs), "response {i} differs from HAProxy's");
    }
    let Some(hap2) = start_haproxy_with(&fe_cfg, &[("S1", a(srv2.addr()))]) else { return };
    let theirs2 = run(hap2.addr);
    for (i, (ours, theirs)) in got2.iter().zip(&theirs2).enumerate() {
        assert_eq!(
            observed(ours),
            observed(theirs),
            "frontend compression: response {i} differs from HAProxy's"
        );
    }
}

#[test]
fn the_cache_fetches_and_the_cache_server_name_reach_a_log_format_like_haproxys() {
    let srv = cacheable_backend();
    let cfg = config("").replace(
        "    option httplog\n",
        "    log-format \"%b/%s %ST %[res.cache_hit] %[res.cache_name] %{+Q}r\"\n",
    );
    let run = |addr, logs: &dyn Fn() -> Vec<String>| -> Vec<String> {
        let before = logs().len();
        two_gets(addr);
        let mut got = Vec::new();
        eventually(SOON, || {
            got = logs().into_iter().skip(before).filter(|l| l.contains("GET /a")).collect();
            got.len() >= 2
        });
        got
    };
    let p = proxy(&cfg, &[("PORT", "0".into()), ("S1", a(srv.addr()))]);
    let ours = run(p.addr("fe"), &|| p.logs());
    assert_eq!(ours, ["be/s1 200 0 - \"GET /a HTTP/1.1\"", "be/<CACHE> 200 1 c1 \"GET /a HTTP/1.1\""]);
    assert_idle(&p);
    let Some(hap) = start_haproxy_with(&cfg, &[("S1", a(srv.addr()))]) else { return };
    let theirs = run(hap.addr, &|| hap.logs.lock().unwrap().clone());
    assert_eq!(ours, theirs);
}
