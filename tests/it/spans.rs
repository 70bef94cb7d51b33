//! Spans: the init and accept phases show up with HAProxy's function names, nested and
//! in the order the seed describes.

use haflow::trace::capture::capture;
use haflow::trace::names;
use haflow::trace::tree::TreeBuilder;

use crate::util::*;

#[test]
fn init_and_accept_spans_have_haproxy_names_in_order() {
    let echo = backend(BackendSpec::Echo);
    let (layer, cap) = capture(1 << 16);
    let cfg = "global\n    maxconn 100\n\
               defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
               listen fe\n    bind 127.0.0.1:0\n    server s1 \"${S1}\"\n";
    let p = RunningProxy::start_with(
        cfg,
        &[("S1", a(echo.addr()))],
        StartOptions { capture: Some(layer), ..Default::default() },
    )
    .expect("starts");
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"hi").unwrap();
    assert_eq!(c.read_exact(2).unwrap(), b"hi");
    drop(c);
    assert_idle(&p);
    p.stop();

    let records = cap.drain();
    let mut tb = TreeBuilder::default();
    tb.extend(&records);
    let root_names: Vec<&str> = tb.roots.iter().map(|r| r.name).collect();
    // Start-up: readcfgfile > cfg_parse_listen > str2listener > tcpv4_add_listener, then
    // check_config_validity, start_proxies > tcp_bind_listener, protocol_bind_all, protocol_enable_all > ... > enable_listener.
    let cfg_root = tb.roots.iter().find(|r| r.name == names::READCFGFILE).expect("readcfgfile span");
    let mut global = Vec::new();
    cfg_root.find_all(names::CFG_PARSE_GLOBAL, &mut global);
    assert_eq!(global.iter().map(|n| n.field("kw")).collect::<Vec<_>>(), [Some("maxconn")]);
    let mut lines = Vec::new();
    cfg_root.find_all(names::CFG_PARSE_LISTEN, &mut lines);
    let kws: Vec<&str> = lines.iter().map(|n| n.field("kw").or(n.field("section")).unwrap_or("?")).collect();
    assert_eq!(
        kws,
        ["mode", "timeout", "timeout", "timeout", "listen", "bind", "server"],
        "one call per line"
    );
    let bind = lines.iter().find(|n| n.field("kw") == Some("bind")).unwrap();
    assert_eq!(bind.names(), [names::CFG_PARSE_LISTEN, names::STR2LISTENER, names::TCPV4_ADD_LISTENER]);
    let pos = |n: &str| {
        root_names.iter().position(|x| *x == n).unwrap_or_else(|| panic!("no root {n}: {root_names:?}"))
    };
    assert!(pos(names::READCFGFILE) < pos(names::CHECK_CONFIG_VALIDITY));
    assert!(pos(names::CHECK_CONFIG_VALIDITY) < pos(names::START_PROXIES));
    assert!(pos(names::START_PROXIES) < pos(names::PROTOCOL_BIND_ALL));
    assert!(pos(names::PROTOCOL_BIND_ALL) < pos(names::PROTOCOL_ENABLE_ALL));
    // As in 1.5, main() binds the proxies' listeners through start_proxies (in its retry
    // loop); protocol_bind_all then finds nothing left to bind.
    let bind = &tb.roots[pos(names::START_PROXIES)];
    assert_eq!(bind.names(), [names::START_PROXIES, names::TCP_BIND_LISTENER]);
    assert_eq!(
        tb.roots[pos(names::PROTOCOL_BIND_ALL)].names(),
        [names::PROTOCOL_BIND_ALL, names::TCP_BIND_LISTENERS]
    );
    let l = bind.find(names::TCP_BIND_LISTENER).unwrap();
    assert_eq!((l.field("from"), l.field("to")), (Some("LI_ASSIGNED"), Some("LI_LISTEN")));
    let enable = &tb.roots[pos(names::PROTOCOL_ENABLE_ALL)];
    assert_eq!(
        enable.names(),
        [names::PROTOCOL_ENABLE_ALL, names::ENABLE_ALL_LISTENERS, names::ENABLE_LISTENER]
    );
    let e = enable.find(names::ENABLE_LISTENER).unwrap();
    assert_eq!((e.field("from"), e.field("to")), (Some("LI_LISTEN"), Some("LI_READY")));

    // One tree per session: session > stream_sock_accept > session_accept > frontend_accept ...
    let sessions = tb.roots_named(names::SESSION);
    assert_eq!(sessions.len(), 1, "one session, one tree");
    let s = sessions[0];
    let accept = &s.children[0];
    assert_eq!(accept.name, names::STREAM_SOCK_ACCEPT);
    let sa = &accept.children[0];
    assert_eq!(sa.name, names::SESSION_ACCEPT);
    let inner: Vec<&str> = sa.children.iter().map(|c| c.name).collect();
    let fa = inner
        .iter()
        .position(|n| *n == names::FRONTEND_ACCEPT)
        .expect("frontend_accept inside session_accept");
    assert!(inner[..fa].contains(&names::TASK_NEW) && inner[..fa].contains(&names::POOL_ALLOC2), "{inner:?}");
    assert_eq!(inner.last(), Some(&names::TASK_WAKEUP), "the task is woken last: {inner:?}");
    let all = s.names();
    let first = |n: &str| all.iter().position(|x| *x == n).unwrap_or_else(|| panic!("no {n} in {all:?}"));
    assert!(first(names::SESSION_ACCEPT) < first(names::PROCESS_SESSION));
    assert!(first(names::PROCESS_SESSION) < first(names::CONNECT_SERVER));
    assert!(first(names::CONNECT_SERVER) < first(names::TCP_CONNECT_SERVER));
    assert!(first(names::TCP_CONNECT_SERVER) < first(names::STREAM_SOCK_WRITE));
    assert_eq!(*all.last().unwrap(), names::POOL_FREE2, "session_free ends the tree: {all:?}");
    assert_eq!(cap.dropped(), 0);
}

/// The session tree of one `GET` through a fresh proxy to a backend answering a
/// `len`-byte body, framed as `chunked` says.
fn one_download(len: usize, chunked: bool) -> haflow::trace::tree::Node {
    let srv =
        backend(BackendSpec::Http(HttpBehaviour { body_size: len, chunked, ..HttpBehaviour::named("s1") }));
    let (layer, cap) = capture(1 << 16);
    let cfg = crate::http_mode::http_cfg(
        "",
        "",
        "frontend fe\n    bind 127.0.0.1:0\n    default_backend be\nbackend be\n    server s1 \"${S1}\"",
    );
    let p = RunningProxy::start_with(
        &cfg,
        &[("S1", a(srv.addr()))],
        StartOptions { capture: Some(layer), ..Default::default() },
    )
    .expect("starts");
    let mut c = connect(p.addr("fe"));
    c.send_raw(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(c.read_response(false).unwrap().body.len(), len);
    drop(c);
    assert_idle(&p);
    p.stop();
    let mut tb = TreeBuilder::default();
    tb.extend(&cap.drain());
    tb.roots.into_iter().find(|r| r.name == names::SESSION).expect("a session tree")
}

/// How many direct children of `root` are named `name` (and, when given, have `side`).
fn count(root: &haflow::trace::tree::Node, name: &str, side: Option<&str>) -> usize {
    root.children.iter().filter(|n| n.name == name && (side.is_none() || n.field("side") == side)).count()
}

#[test]
fn a_body_of_known_length_wakes_the_session_only_when_to_forward_reaches_zero() {
    let s = one_download(64 << 10, false);
    let (runs, reads) =
        (count(&s, names::PROCESS_SESSION, None), count(&s, names::STREAM_SOCK_READ, Some("srv")));
    assert!(reads >= 4, "a 64 KiB body takes several 16 KiB reads: {reads}");
    // Accept, the request, the connect, the response head, the end of the body: the
    // reads in between forward on their own.
    assert!(
        runs <= 6,
        "{runs} process_session runs for {reads} server reads:\n{}",
        haflow::trace::tree::listing(&s, haflow::trace::tree::LISTING_FIELDS)
    );
}
