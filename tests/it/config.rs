//! Configuration: ALERTs and WARNINGs with file and line, as HAProxy prints them, and
//! the `check` command's answers.

use std::fmt::Write as _;
use std::process::Command;

use haflow::haproxy::cfgparse::readcfgfile;

use crate::util::{free_port, proxy};

fn parse(text: &str) -> Result<haflow::haproxy::cfgparse::Config, haflow::haproxy::cfgparse::Diag> {
    let dir = std::env::temp_dir().join(format!("haflow-cfgtest-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.cfg");
    std::fs::write(&path, text).unwrap();
    let r = readcfgfile(&[&path], &|k| if k == "PORT" { Some("8123".into()) } else { None });
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn alerts(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => vec![],
        Err(d) => d.alerts.iter().map(|a| a.replace(&*std::env::temp_dir().to_string_lossy(), "")).collect(),
    }
}

#[test]
fn unknown_keywords_are_alerts_naming_keyword_line_and_section() {
    let a = alerts("global\n    frobnicate 1\ndefaults\n    mode tcp\nbackend be\n    foobar x\n");
    assert!(a[0].ends_with("t.cfg:2] : unknown keyword 'frobnicate' in 'global' section"), "{a:?}");
    assert!(a[1].ends_with("t.cfg:6] : unknown keyword 'foobar' in 'backend' section"), "{a:?}");
    assert!(
        a.last().unwrap() == "Fatal errors found in configuration."
            || a.iter().any(|l| l.starts_with("Error(s) found"))
    );
}

#[test]
fn typos_get_haproxy_suggestions() {
    let a = alerts("global\n    maxcon 10\n");
    assert!(
        a[0].ends_with("unknown keyword 'maxcon' in 'global' section; did you mean 'maxconn' maybe ?"),
        "{a:?}"
    );
}

#[test]
fn bad_values_are_reported_with_haproxy_wording() {
    let cases = [
        ("frontend fe\n    bind 127.0.0.1:99999\n", ":2] : 'bind' : invalid port '99999'"),
        ("frontend fe\n    bind 127.0.0.1\n", ":2] : 'bind' : missing port specification in '127.0.0.1'"),
        ("defaults\n    timeout client 10x\n", ":2] : unexpected character 'x' in 'timeout client'"),
        (
            "defaults\n    timeout client 25d\n",
            ":2] : timer overflow in argument '25d' to 'timeout client' (maximum value is 2147483647 ms or ~24.8 days)",
        ),
        (
            "global\n    stats timeout 99999999999999999999\n",
            ":2] : timer overflow in argument '99999999999999999999' to 'stats timeout'",
        ),
        (
            "backend be\n    server s 127.0.0.1:1 check rise 4294967295\n",
            ":2] : 'server be/s' : 'rise' has to be > 0..",
        ),
        ("backend be\n    balance foobar\n", ":2] : balance only supports 'roundrobin'"),
        ("defaults\n    mode foo\n", ":2] : unknown proxy mode 'foo'."),
        ("defaults\n    option foo\n", ":2] : unknown option 'foo'."),
        (
            "frontend fe\n    bind \"127.0.0.1:${PORT}\"\n    bind \"127.0.0.1:${NOPE}\"\n",
            ":3] : 'bind' : missing port specification in '127.0.0.1:'",
        ),
    ];
    for (cfg, want) in cases {
        let a = alerts(cfg);
        assert!(a.iter().any(|l| l.contains(want)), "{cfg:?} should say {want:?}, got {a:?}");
    }
}

#[test]
fn missing_backend_names_are_fatal() {
    let a = alerts("frontend fe\n    bind :0\n    default_backend nosuch\n");
    assert!(
        a.contains(&"Proxy 'fe': unable to find required default_backend: 'nosuch'.".to_string()),
        "{a:?}"
    );
}

#[test]
fn valid_but_unimplemented_keywords_are_warnings_naming_them() {
    let cfg = parse(
        "global\n    nbthread 4\n    daemon\ndefaults\n    mode tcp\n    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\nlisten l\n    bind 127.0.0.1:0\n    rate-limit sessions 10\n    server s 127.0.0.1:1\n",
    )
    .expect("valid configuration");
    let w = cfg.warnings.join("\n");
    assert!(w.contains(":2] : haflow runs one event-loop thread; 'nbthread 4' is ignored"), "{w}");
    assert!(w.contains(":3] : 'daemon' is not implemented"), "{w}");
    assert!(w.contains(":11] : keyword 'rate-limit' in 'listen' section is not implemented"), "{w}");
}

#[test]
fn unterminated_quote_shows_the_position() {
    let a = alerts("frontend fe\n    http-request set-header X-Foo \"abc\n");
    assert!(
        a[0].contains(":2]: unmatched quote at position 35:\n  http-request set-header X-Foo \"abc\n"),
        "{a:?}"
    );
    assert!(a[0].ends_with("\n                                ^"), "the caret is under the quote: {a:?}");
}

fn haflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_haflow"))
}

#[test]
fn check_command_prints_alerts_to_stderr_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("haflow-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.cfg");
    std::fs::write(&bad, "global\n    frobnicate\n").unwrap();
    let out = haflow().args(["check", "-f"]).arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    let want = format!(
        ") : config : parsing [{}:2] : unknown keyword 'frobnicate' in 'global' section",
        bad.display()
    );
    assert!(err.lines().any(|l| l.starts_with("[ALERT]    (") && l.ends_with(&want)), "{err}");
    assert!(err.contains("Fatal errors found in configuration."), "{err}");

    let good = dir.join("good.cfg");
    std::fs::write(&good, "defaults\n    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\nlisten l\n    bind 127.0.0.1:0\n    server s 127.0.0.1:1\n").unwrap();
    let out = haflow().args(["check", "-f"]).arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Configuration file is valid\n");
    let _ = std::fs::remove_dir_all(&dir);
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/haproxy-2.6");

/// Output of HAProxy or haflow made comparable: no NOTICE lines (version, executable), the
/// PID masked, the file named as HAProxy saw it (the fixtures were captured as `NAME.cfg`).
fn comparable(out: &[u8], name: &str) -> String {
    let pid = regex::Regex::new(r"^(\[[A-Z]+\] +)\(\d+\)").unwrap();
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.starts_with("[NOTICE]"))
        .map(|l| pid.replace(l, "$1(PID)").replace(&format!("cfg-{name}.cfg"), &format!("{name}.cfg")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs haflow as HAProxy was run for fixture `cfg-NAME` and compares stdout and stderr.
fn same_as_haproxy(name: &str, flags: &[&str]) -> std::process::Output {
    let out = haflow()
        .args(flags)
        .args(["-f", &format!("cfg-{name}.cfg")])
        .current_dir(FIXTURES)
        .env_remove("UNSET")
        .output()
        .unwrap();
    for (what, got) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let want = std::fs::read(format!("{FIXTURES}/cfg-{name}.{what}")).unwrap();
        assert_eq!(comparable(got, name), comparable(&want, name), "{what} of {name}");
    }
    out
}

#[test]
fn zero_check_intervals_and_counts_are_refused_as_by_haproxy() {
    for name in ["check-inter-0", "check-fastinter-0", "check-downinter-0", "check-rise-0", "check-fall-0"] {
        assert_eq!(same_as_haproxy(name, &["-c"]).status.code(), Some(1), "{name}");
    }
    let a = alerts("backend be\n    server s 127.0.0.1:1 check inter 25d\n");
    assert!(
        a[0].ends_with(":2] : 'server be/s' : timer overflow in argument <25d> to <inter> of server s, maximum value is 2147483647 ms (~24.8 days).."),
        "{a:?}"
    );
    let a = alerts("backend be\n    server s 127.0.0.1:1 check fall -1\n");
    assert!(a[0].ends_with(":2] : 'server be/s' : 'fall' has to be > 0.."), "{a:?}");
    let a = alerts("backend be\n    server s 127.0.0.1:1 weight 300\n");
    assert!(
        a[0].ends_with(":2] : 'server be/s' : weight of server s is not within 0 and 256 (300).."),
        "{a:?}"
    );
}

#[test]
fn unset_variables_in_bind_addresses_behave_as_in_haproxy() {
    for (name, code) in [
        ("bind-unset-env-quoted", 0),
        ("bind-unset-env-unquoted", 0),
        ("bind-unset-env-empty", 1),
        ("bind-unset-env-empty-unquoted", 1),
    ] {
        assert_eq!(same_as_haproxy(name, &["-c"]).status.code(), Some(code), "{name}");
    }
    // Unquoted, the address is expanded all the same (the test environment has PORT=8123).
    let cfg = parse("frontend fe\n    bind 127.0.0.1:${PORT}\n").expect("valid");
    assert_eq!(cfg.listeners[0].addr.to_string(), "127.0.0.1:8123");
}

#[test]
fn a_failed_stats_socket_names_its_line() {
    let out = same_as_haproxy("run-stats-socket-nodir", &["-db"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn too_many_words_and_long_lines_as_in_haproxy() {
    assert_eq!(same_as_haproxy("too-many-words", &["-c"]).status.code(), Some(1));
    // No limit on a line's length: a 1 MB value is fine, a 1 MB unknown keyword is reported
    // whole (comparing it with every keyword once made this take 7 s).
    let big = "a".repeat(1 << 20);
    let cfg = format!("frontend fe\n    bind :0\n    http-request set-header X-Foo {big}\n");
    assert!(parse(&cfg).is_ok());
    let a = alerts(&format!("frontend fe\n    {big}\n"));
    assert!(a[0].ends_with(&format!(":2] : unknown keyword '{big}' in 'frontend' section")));
}

#[test]
fn twenty_thousand_acls_parse_in_linear_time() {
    // Each rule used to copy every ACL declared before it: about 20,000 x 10,000 ACL copies
    // here (a minute in a release build); an index makes it one lookup per name.
    let mut cfg = String::from("frontend fe\n    bind :0\n");
    for i in 0..20_000 {
        let _ = writeln!(cfg, "    acl a{i} path /p{i}\n    http-request deny if a{i}");
    }
    let cfg = parse(&cfg).expect("valid");
    assert_eq!(cfg.proxies[0].http_req_rules.len(), 20_000);
    assert_eq!(cfg.proxies[0].acls.find_acl_by_name("a19999"), Some(19_999));
}

#[test]
fn tune_keywords_that_only_size_resources_are_accepted_silently() {
    let cfg =
        parse("global\n    tune.idle-pool.shared on\n    tune.zlib.memlevel 8\n    tune.ssl.cachesize 0\n")
            .expect("accepted");
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    let a = alerts("global\n    tune.zlib.memlevel\n");
    assert!(a.iter().any(|l| l.contains(":2] : 'tune.zlib.memlevel' expects an argument.")), "{a:?}");
}

#[test]
fn a_disabled_frontend_does_not_listen() {
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:0\n    http-request return status 200\n\
         frontend off\n    disabled\n    bind 127.0.0.1:{port}\n    http-request return status 200\n"
    );
    let p = proxy(&cfg, &[]);
    let refused = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.kind());
    assert_eq!(refused.err(), Some(std::io::ErrorKind::ConnectionRefused), "nothing listens for 'off'");
    let states = p.query(|w| {
        let off = w.find_proxy("off").map(|px| (px.state, px.listeners.clone()));
        off.map(|(st, ls)| (st, ls.iter().map(|l| w.listeners[l.idx()].state).collect::<Vec<_>>()))
    });
    use haflow::haproxy::listener::ListenerState::LI_INIT;
    use haflow::haproxy::proxy::ProxyState::PR_STSTOPPED;
    assert_eq!(states, Some((PR_STSTOPPED, vec![LI_INIT])), "stop_proxy deleted its listener");
    assert_eq!(haflow::scenario::client::get(p.addr("fe"), "/").unwrap().status, 200);
}

#[test]
fn tcp_rules_are_checked_where_haproxy_checks_them() {
    let a = alerts(
        "defaults base\n    mode tcp\n    tcp-request content reject if { req.len gt 9 }\n\
         frontend fe from base\n    bind 127.0.0.1:0\n    default_backend be\n\
         backend be from base\n    tcp-request connection accept\n    tcp-response content frob\n",
    );
    assert!(
        a[0].contains(":7]: frontends and backends cannot inherit from the same defaults section if it defines TCP/HTTP rules (defaults section at ")
            && a[0].ends_with("/t.cfg:1)."),
        "{a:?}"
    );
    assert!(
        a[1].ends_with(":8] : tcp-request connection is not allowed because backend 'be' is not a frontend"),
        "{a:?}"
    );
    assert!(a[2].contains(":9] : 'tcp-response content' expects 'accept', 'close', 'reject'"), "{a:?}");
    let a = alerts("defaults\n    tcp-request inspect-delay 1s\n");
    assert!(
        a[0].ends_with(":2] : tcp-request inspect-delay is not allowed in anonymous 'defaults' sections"),
        "{a:?}"
    );
}

#[test]
fn bind_proto_must_serve_the_frontends_mode_as_in_haproxy() {
    let one = |text: &str| alerts(text).join("\n");
    assert!(one("frontend f\n    mode http\n    bind 127.0.0.1:0 proto h1\n").is_empty());
    assert!(one("frontend f\n    mode tcp\n    bind 127.0.0.1:0 proto none\n").is_empty());
    assert!(
        one("frontend f\n    mode tcp\n    bind 127.0.0.1:0 proto h1\n")
            .contains("frontend 'f' : MUX protocol 'h1' is not usable for 'bind 127.0.0.1:0' at ["),
    );
    assert!(
        one("frontend f\n    mode http\n    bind 127.0.0.1:0 proto none\n")
            .contains("MUX protocol 'none' is not usable")
    );
    assert!(
        one("frontend f\n    mode http\n    bind 127.0.0.1:0 proto h2\n")
            .contains("'proto h2' is not implemented by haflow")
    );
    assert!(
        one("frontend f\n    bind 127.0.0.1:0 proto zz\n").contains("'proto' :  unknown MUX protocol 'zz'")
    );
}

#[test]
fn a_tcp_frontend_may_use_an_http_backend_but_not_the_reverse() {
    let tcp_to_http =
        "frontend f\n    mode tcp\n    bind 127.0.0.1:0\n    default_backend b\nbackend b\n    mode http\n";
    assert!(alerts(tcp_to_http).is_empty(), "{:?}", alerts(tcp_to_http));
    let http_to_tcp =
        "frontend f\n    mode http\n    bind 127.0.0.1:0\n    default_backend b\nbackend b\n    mode tcp\n";
    assert!(!alerts(http_to_tcp).is_empty());
}
