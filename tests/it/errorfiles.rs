//! `errorfile`, `errorfiles` and `http-errors` sections: the response HAProxy sends for an
//! error status comes from a file, the backend's first, then the frontend's; an empty file
//! closes the connection without an answer. The same config runs through HAProxy 2.6.

use crate::side_by_side::start_haproxy_with;
use crate::util::*;

/// The config, with its error files written in a fresh directory.
fn config() -> String {
    let dir = tmpdir("errorfiles");
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let f503 = file(
        "503.http",
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 8\r\nx-err: defaults\r\n\r\nsorry :(",
    );
    let f403 = file("403.http", "HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\nx-err: set\r\n\r\nno");
    let f400 = file(
        "400.http",
        "HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\nx-err: set\r\nconnection: close\r\n\r\nbad",
    );
    let f404 = file("404.http", "HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\nx-err: backend\r\n\r\nnope");
    format!(
        "global\n    log stdout format raw local0\n\
         http-errors set\n    errorfile 403 {f403}\n    errorfile 400 {f400}\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 2s\n    timeout server 2s\n    errorfile 503 {f503}\n\
         frontend fe\n    bind \"127.0.0.1:${{PORT}}\"\n    errorfiles set\n    errorfile 403 /dev/null\n\
         \x20   http-request deny if {{ path /deny }}\n    http-request deny deny_status 404 if {{ path /404 }}\n\
         \x20   use_backend nf if {{ path /nf }}\n    default_backend none\n\
         backend none\n\
         backend nf\n    errorfile 404 {f404}\n    http-request deny deny_status 404\n"
    )
}

/// What a client gets for `req`: the status and the `x-err` header and body, or `None`
/// when the connection closes without an answer.
fn answer(addr: std::net::SocketAddr, req: &[u8]) -> Option<(u16, String, String)> {
    let mut c = Conn::connect(addr, SOON).unwrap();
    c.send_raw(req).unwrap();
    c.read_response(false).ok().map(|r| (r.status, r.header("x-err").unwrap_or("-").to_string(), r.text()))
}

#[test]
fn error_pages_come_from_the_errorfiles_haproxy_would_use() {
    let cfg = config();
    let p = proxy(&cfg, &[("PORT", "0".into())]);
    let cases: [(&str, &[u8]); 5] = [
        ("no server: the defaults' 503", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("deny: the frontend's empty 403 closes", b"GET /deny HTTP/1.1\r\nHost: h\r\n\r\n"),
        (
            "a bad request: the parser's own 400, files or not (2.6's mux)",
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ),
        ("deny 404 in the frontend: no file, HAProxy's page", b"GET /404 HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("deny 404 in the backend: the backend's file", b"GET /nf HTTP/1.1\r\nHost: h\r\n\r\n"),
    ];
    let got: Vec<_> = cases.iter().map(|(_, req)| answer(p.addr("fe"), req)).collect();
    assert_eq!(
        got,
        [
            Some((503, "defaults".into(), "sorry :(".into())),
            None,
            Some((400, "-".into(), "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n".into())),
            Some((
                404,
                "-".into(),
                "<html><body><h1>404 Not Found</h1>\nThe resource could not be found.\n</body></html>\n"
                    .into()
            )),
            Some((404, "backend".into(), "nope".into())),
        ]
    );
    assert_idle(&p);
    let Some(hap) = start_haproxy_with(&cfg, &[]) else { return };
    for ((name, req), want) in cases.iter().zip(&got) {
        assert_eq!(&answer(hap.addr, req), want, "haproxy: {name}");
    }
}

#[test]
fn errorfiles_naming_an_unknown_section_is_an_alert() {
    let cfg = "defaults\n    mode http\nfrontend fe\n    bind 127.0.0.1:0\n    errorfiles nowhere\n";
    let Err(e) = RunningProxy::start_with(cfg, &[], StartOptions::default()) else { panic!("accepted") };
    let text = format!("{e:?}");
    assert!(text.contains(":5] : proxy 'fe': unable to find http-errors section 'nowhere'"), "{text}");
}
