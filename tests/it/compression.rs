//! HTTP compression (`compression algo|type|offload`): which responses are compressed, the
//! headers that say so, chunked output whose decompressed body is the server's, over
//! several buffer passes and kept-alive connections, with the context pool back to idle.
//! The same config runs through HAProxy 2.6: statuses, headers and decompressed bodies
//! must match.

use std::io::Read as _;

use crate::side_by_side::start_haproxy_with;
use crate::util::*;
use haflow::scenario::backends::body_pattern;
use haflow::scenario::client::{Request, Response};

/// `be_text` compresses text/plain with gzip (or deflate when preferred), `be_big` gzips a
/// large chunked body through 4 kB buffers, `be_id` re-chunks with identity, `be_off`
/// offloads.
fn config() -> &'static str {
    r#"
global
    tune.bufsize 4096
defaults
    mode http
    timeout connect 1s
    timeout client 3s
    timeout server 3s
    compression type text/plain
frontend fe
    bind "127.0.0.1:${PORT}"
    use_backend be_big if { path_beg /big }
    use_backend be_id if { path_beg /id }
    use_backend be_off if { path_beg /off }
    use_backend be_html if { path_beg /html }
    default_backend be_text
backend be_text
    compression algo gzip deflate
    server s1 "${TEXT}"
backend be_html
    compression algo gzip
    server s1 "${HTML}"
backend be_big
    compression algo gzip
    server s1 "${BIG}"
backend be_id
    compression algo identity
    compression type text/plain
    server s1 "${BIG}"
backend be_off
    compression algo gzip
    compression offload
    server s1 "${TEXT}"
"#
}

/// The backends: text/plain with a strong ETag; text/html; a 200 kB chunked text body.
fn backends() -> (RunningBackend, RunningBackend, RunningBackend) {
    let text = backend(BackendSpec::Http(HttpBehaviour {
        headers: vec![("Content-Type".into(), "text/plain".into()), ("ETag".into(), "\"v1\"".into())],
        body_size: 1000,
        ..HttpBehaviour::default()
    }));
    let html = backend(BackendSpec::Http(HttpBehaviour {
        headers: vec![("Content-Type".into(), "text/html".into())],
        body_size: 1000,
        ..HttpBehaviour::default()
    }));
    let big = backend(BackendSpec::Http(HttpBehaviour {
        headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
        body_size: 200_000,
        chunked: true,
        chunk_size: 3000,
        ..HttpBehaviour::default()
    }));
    (text, html, big)
}

fn env(text: &RunningBackend, html: &RunningBackend, big: &RunningBackend) -> Vec<(&'static str, String)> {
    vec![("TEXT", a(text.addr())), ("HTML", a(html.addr())), ("BIG", a(big.addr()))]
}

/// The body as the client reads it once decoded per `Content-Encoding`.
fn decoded(r: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    match r.header("content-encoding") {
        Some("gzip") => flate2::read::GzDecoder::new(&r.body[..]).read_to_end(&mut out).unwrap(),
        Some("deflate") => flate2::read::ZlibDecoder::new(&r.body[..]).read_to_end(&mut out).unwrap(),
        _ => return r.body.clone(),
    };
    out
}

/// What must match HAProxy: status, headers (names lower-cased, in order) and the
/// decoded body.
fn observed(r: &Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = r.headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect();
    (r.status, headers, decoded(r))
}

/// The requests both proxies get, on one kept-alive connection.
fn requests() -> Vec<Request> {
    vec![
        Request::get("/").header("Accept-Encoding", "gzip"),
        Request::get("/").header("Accept-Encoding", "*;q=0, gzip;q=0.5, deflate;q=0.75"),
        Request::get("/").header("Accept-Encoding", "br"),
        Request::get("/"),
        Request::head("/").header("Accept-Encoding", "gzip"),
        Request::get("/html").header("Accept-Encoding", "gzip"),
        Request::get("/").header("Accept-Encoding", "gzip").header("User-Agent", "Mozilla/4.0"),
        Request::get("/big").header("Accept-Encoding", "gzip"),
        Request::get("/id"),
        Request::get("/off").header("Accept-Encoding", "gzip"),
    ]
}

fn run(addr: std::net::SocketAddr) -> Vec<Response> {
    let mut c = connect(addr);
    requests()
        .iter()
        .map(|req| {
            c.send(req).unwrap();
            c.read_response(req.is_head()).unwrap()
        })
        .collect()
}

#[test]
fn responses_are_compressed_exactly_when_haproxy_would_and_decode_to_the_servers_body() {
    let (text, html, big) = backends();
    let p = proxy(config(), &[env(&text, &html, &big), vec![("PORT", "0".into())]].concat());
    let got = run(p.addr("fe"));
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    };
    let gz_text = h(&[
        ("content-type", "text/plain"),
        ("etag", "W/\"v1\""),
        ("transfer-encoding", "chunked"),
        ("vary", "Accept-Encoding"),
        ("content-encoding", "gzip"),
    ]);
    let plain_text = h(&[("content-type", "text/plain"), ("etag", "\"v1\""), ("content-length", "1000")]);
    let want = [
        ("gzip asked", gz_text.clone(), body_pattern(1000)),
        (
            "deflate preferred",
            h(&[
                ("content-type", "text/plain"),
                ("etag", "W/\"v1\""),
                ("transfer-encoding", "chunked"),
                ("vary", "Accept-Encoding"),
                ("content-encoding", "deflate"),
            ]),
            body_pattern(1000),
        ),
        ("an unknown coding", plain_text.clone(), body_pattern(1000)),
        ("no Accept-Encoding", plain_text.clone(), body_pattern(1000)),
        ("HEAD", plain_text.clone(), Vec::new()),
        (
            "a type not listed",
            h(&[("content-type", "text/html"), ("content-length", "1000")]),
            body_pattern(1000),
        ),
        ("an old Mozilla/4", plain_text.clone(), body_pattern(1000)),
        (
            "a chunked body through several buffers",
            h(&[
                ("content-type", "text/plain; charset=utf-8"),
                ("transfer-encoding", "chunked"),
                ("vary", "Accept-Encoding"),
                ("content-encoding", "gzip"),
            ]),
            body_pattern(200_000),
        ),
        (
            "identity: re-chunked, no Content-Encoding",
            h(&[
                ("content-type", "text/plain; charset=utf-8"),
                ("transfer-encoding", "chunked"),
                ("vary", "Accept-Encoding"),
            ]),
            body_pattern(200_000),
        ),
        ("offload", gz_text, body_pattern(1000)),
    ];
    for (r, (name, headers, body)) in got.iter().zip(&want) {
        let (status, got_headers, got_body) = observed(r);
        assert_eq!((status, &got_headers), (200, headers), "{name}");
        assert!(got_body == *body, "{name}: the decoded body is the server's");
    }
    // The compressed 1000 bytes came as one chunk, then the last chunk.
    let raw = String::from_utf8_lossy(&got[0].raw).into_owned();
    let body_start = raw.find("\r\n\r\n").unwrap() + 4;
    let size_line = &raw[body_start..raw[body_start..].find("\r\n").unwrap() + body_start];
    let size = usize::from_str_radix(size_line, 16).unwrap();
    assert_eq!(&got[0].raw[got[0].raw.len() - 7..], b"\r\n0\r\n\r\n");
    assert_eq!(got[0].raw.len(), body_start + size_line.len() + 2 + size + 7, "one data chunk: {raw:?}");
    // Offload: the server never saw Accept-Encoding; without it, it did.
    let seen = text.requests();
    assert_eq!(seen.last().unwrap().header("accept-encoding"), None, "offload removes the header");
    assert_eq!(seen[0].header("accept-encoding"), Some("gzip"));
    // Counters: 4 compressed responses (gzip, deflate, big, offload) and identity's bypass.
    let (fe, be_text) = p.query(|w| {
        let c = |n: &str| w.proxies.iter().find(|p| p.name == n).unwrap().counters.clone();
        (c("fe"), c("be_text"))
    });
    assert_eq!((fe.comp_rsp, be_text.comp_rsp), (5, 2));
    assert_eq!(fe.comp_byp, 200_000);
    assert_eq!(fe.comp_in, 1000 * 3 + 200_000);
    assert!(fe.comp_out > 0 && fe.comp_out < fe.comp_in / 10, "{fe:?}");
    assert_idle(&p);

    let Some(hap) = start_haproxy_with(config(), &env(&text, &html, &big)) else { return };
    let theirs = run(hap.addr);
    for ((ours, theirs), (name, ..)) in got.iter().zip(&theirs).zip(&want) {
        assert_eq!(observed(ours), observed(theirs), "haproxy: {name}");
    }
}

#[test]
fn a_config_without_compression_never_touches_accept_encoding_nor_the_pool() {
    let (text, _html, _big) = backends();
    let cfg = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 3s\n    timeout server 3s\n\
               frontend fe\n    bind \"127.0.0.1:${PORT}\"\n    default_backend be\n\
               backend be\n    server s1 \"${TEXT}\"\n";
    let p = proxy(cfg, &[("PORT", "0".into()), ("TEXT", a(text.addr()))]);
    let mut c = connect(p.addr("fe"));
    let r = c.request(&Request::get("/").header("Accept-Encoding", "gzip")).unwrap();
    assert_eq!(
        (r.status, r.header("content-length"), r.header("content-encoding")),
        (200, Some("1000"), None)
    );
    assert_eq!(text.requests()[0].header("accept-encoding"), Some("gzip"));
    let comp_ctx = p.query(|w| w.pool_comp_ctx.stats().allocated);
    assert_eq!(comp_ctx, 0, "no compression context was ever allocated");
    drop(c);
    assert_idle(&p);
}

/// The alerts (`Err`) or warnings (`Ok`) of a config, with the file's directory dropped.
fn diagnostics(text: &str) -> Result<Vec<String>, Vec<String>> {
    let path = tmpdir("compcfg").join("t.cfg");
    std::fs::write(&path, text).unwrap();
    let strip = |v: Vec<String>| -> Vec<String> {
        let dir = path.parent().unwrap().display().to_string();
        v.into_iter().map(|l| l.replace(&format!("{dir}/"), "")).collect()
    };
    match haflow::haproxy::cfgparse::readcfgfile(&[&path], &|_| None) {
        Ok(cfg) => Ok(strip(cfg.warnings)),
        Err(d) => Err(strip(d.alerts)),
    }
}

#[test]
fn bad_compression_lines_are_alerts_and_offload_in_defaults_a_warning() {
    let check = |line: &str| diagnostics(&format!("defaults\n    mode http\n{line}\n"));
    assert_eq!(
        check("    compression algo gzip br").unwrap_err()[0],
        "parsing [t.cfg:3] : 'compression' : 'br' is not a supported algorithm."
    );
    assert_eq!(
        check("    compression").unwrap_err()[0],
        "parsing [t.cfg:3] : 'compression' expects 'algo', 'type' or 'offload'"
    );
    assert_eq!(
        check("    compression offload").unwrap(),
        ["parsing [t.cfg:3] : 'compression' : 'offload' ignored in 'defaults' section."]
    );
    assert_eq!(
        check("global\n    tune.comp.maxlevel 10").unwrap_err()[0],
        "parsing [t.cfg:4] : 'tune.comp.maxlevel' expects a numeric value between 1 and 9."
    );
}
