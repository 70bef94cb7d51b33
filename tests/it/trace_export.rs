//! Chrome/Perfetto export: the real binary runs with `--trace`, real requests go through
//! it, and the JSON it leaves is checked: a valid trace (`{"traceEvents": [...]}`), every begin has its end, spans
//! nest, each session's spans follow HAProxy's call flow with the fields a learner needs;
//! and the file is complete after SIGTERM, SIGINT and a normal (soft-stop) exit.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use haflow::scenario::client::Request;
use serde_json::Value;

use crate::util::*;

struct Run {
    child: Child,
    port: u16,
    trace: PathBuf,
    dir: PathBuf,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(cfg: &str, env: &[(&str, String)], extra: &[&str]) -> Run {
    spawn(cfg, env, None, extra, Stdio::null())
}

/// Starts haflow on `cfg` with `--trace` to `trace` (the run's own `trace.json` by default).
fn spawn(cfg: &str, env: &[(&str, String)], trace: Option<&Path>, extra: &[&str], stderr: Stdio) -> Run {
    let dir = tmpdir("trace");
    let cfg_path = dir.join("haflow.cfg");
    // The pidfile is written once the listeners are bound: it says "ready" without a probe
    // connection (which would be traced as a session of its own).
    std::fs::write(&cfg_path, format!("global\n    pidfile \"${{PIDFILE}}\"\n{cfg}")).unwrap();
    let pidfile = dir.join("haflow.pid");
    let trace = trace.map_or_else(|| dir.join("trace.json"), Path::to_path_buf);
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haflow"));
    cmd.args(["run", "-f"]).arg(&cfg_path).arg("--trace").arg(&trace).args(extra);
    cmd.env("PORT", port.to_string()).env("PIDFILE", &pidfile).stdout(Stdio::null()).stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    assert!(eventually(SOON, || pidfile.exists()), "haflow started");
    Run { child, port, trace, dir }
}

fn signal(run: &mut Run, sig: &str) {
    let st = Command::new("kill").args([sig, &run.child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let status = run.child.wait().unwrap();
    assert!(status.success() || status.code().is_some(), "exited: {status:?}");
}

fn load(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut o)) if o.get("traceEvents").is_some_and(Value::is_array) => {
            match o.remove("traceEvents") {
                Some(Value::Array(v)) => v,
                _ => unreachable!("checked above"),
            }
        }
        other => panic!(
            "the trace is not {{\"traceEvents\": [...]}} ({other:?}): ...{}",
            &text[text.len().saturating_sub(200)..]
        ),
    }
}

/// Async begin/end events grouped by track (the root span's id), checked as a stack.
fn tracks(events: &[Value]) -> HashMap<u64, Vec<Value>> {
    let mut by_id: HashMap<u64, Vec<Value>> = HashMap::new();
    for e in events {
        if let (Some(ph), Some(id)) = (e["ph"].as_str(), e["id"].as_u64())
            && (ph == "b" || ph == "e")
        {
            by_id.entry(id).or_default().push(e.clone());
        }
    }
    for (id, evs) in &by_id {
        let mut stack: Vec<&str> = Vec::new();
        for e in evs {
            let name = e["name"].as_str().unwrap();
            if e["ph"] == "b" {
                stack.push(name);
            } else {
                assert_eq!(stack.pop(), Some(name), "track {id}: '{name}' ends out of order");
            }
        }
        assert!(stack.is_empty(), "track {id}: spans never ended: {stack:?}");
    }
    by_id
}

/// The session tracks, each as its list of begin events.
fn sessions(by_id: &HashMap<u64, Vec<Value>>) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = by_id
        .values()
        .filter(|evs| evs.first().is_some_and(|e| e["name"] == "session"))
        .map(|evs| evs.iter().filter(|e| e["ph"] == "b").cloned().collect())
        .collect();
    out.sort_by(|a, b| a[0]["ts"].as_f64().partial_cmp(&b[0]["ts"].as_f64()).unwrap());
    out
}

/// Asserts `want` appears in `begins` as a subsequence (each after the previous).
fn assert_flow(begins: &[Value], want: &[&str]) {
    let names: Vec<&str> = begins.iter().map(|e| e["name"].as_str().unwrap()).collect();
    let mut pos = 0;
    for w in want {
        match names[pos..].iter().position(|n| n == w) {
            Some(p) => pos += p + 1,
            None => panic!("'{w}' missing (or out of order) after position {pos} in {names:?}"),
        }
    }
}

fn arg<'a>(begins: &'a [Value], name: &str, field: &str) -> Option<&'a Value> {
    begins.iter().find(|e| e["name"] == name).and_then(|e| e["args"].get(field))
}

const HTTP_CFG: &str = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
    frontend fe\n    bind \"127.0.0.1:${PORT}\"\n    use_backend none if { path /none }\n    use_backend hole if { path /pending }\n\
    default_backend be\nbackend be\n    server s1 \"${S1}\"\nbackend none\nbackend hole\n    server h \"${HOLE}\"\n";

#[test]
fn http_sessions_follow_haproxys_call_flow_and_the_file_survives_sigterm() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let hole = backend(BackendSpec::BlackHole);
    let mut run = start(HTTP_CFG, &[("S1", a(b.addr())), ("HOLE", a(hole.addr()))], &[]);
    let addr = format!("127.0.0.1:{}", run.port).parse().unwrap();
    // Keep-alive GET twice, a chunked POST, a 503, a malformed request.
    let mut c = Conn::connect(addr, SOON).unwrap();
    assert_eq!(c.request(&Request::get("/one")).unwrap().status, 200);
    assert_eq!(c.request(&Request::get("/two")).unwrap().status, 200);
    assert_eq!(
        c.request(&Request::post_chunked("/post", vec![b"ab".to_vec(), b"cd".to_vec()])).unwrap().status,
        200
    );
    assert_eq!(c.request(&Request::get("/none")).unwrap().status, 503);
    drop(c);
    let mut bad = Conn::connect(addr, SOON).unwrap();
    bad.send_raw(b"GET\r\n\r\n").unwrap();
    assert!(bad.read_to_close().unwrap().starts_with(b"HTTP/1.1 400"));
    // One session still open when SIGTERM arrives (its server never answers): its spans
    // must still be closed.
    let mut open = Conn::connect(addr, SOON).unwrap();
    open.send_raw(b"GET /pending HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(hole.wait_for_connections(1, SOON), "the pending session reached its server");
    signal(&mut run, "-TERM");

    let events = load(&run.trace);
    let by_id = tracks(&events);
    let sess = sessions(&by_id);
    assert!(sess.len() >= 3, "one track per session: {}", sess.len());
    let ka = &sess[0];
    assert_flow(
        ka,
        &[
            "session",
            "stream_sock_accept",
            "session_accept",
            "frontend_accept",
            "process_session",
            "http_wait_for_request",
            "http_process_req_common",
            "process_switching_rules",
            "http_process_request",
            "sess_prepare_conn_req",
            "assign_server",
            "connect_server",
            "tcp_connect_server",
            "stream_sock_write",
            "stream_sock_read",
            "http_wait_for_response",
            "http_process_res_common",
            "http_end_txn_clean_session",
            // The second request reuses the server connection...
            "http_wait_for_request",
            "http_end_txn_clean_session",
            // ...the chunked POST streams its body...
            "http_request_forward_body",
            "http_end_txn_clean_session",
            // ...and the 503 comes from the connect path.
            "sess_prepare_conn_req",
            "http_end_txn_clean_session",
            "session_free",
        ],
    );
    assert!(arg(ka, "session", "src").is_some() && arg(ka, "session", "fe") == Some(&Value::from("fe")));
    assert!(arg(ka, "process_session", "woken").is_some(), "wake-up reason");
    assert!(arg(ka, "stream_sock_read", "fd").is_some() && arg(ka, "stream_sock_read", "bytes").is_some());
    assert_eq!(arg(ka, "tcp_connect_server", "addr"), Some(&Value::from(a(b.addr()))));
    assert_eq!(arg(ka, "process_session", "si1_from"), Some(&Value::from("SI_ST_INI")));
    let ends: Vec<&Value> =
        by_id.values().flatten().filter(|e| e["ph"] == "e" && e["name"] == "assign_server").collect();
    assert!(ends.iter().any(|e| e["args"]["server"] == "s1"), "the chosen server is recorded");
    // Numbers are JSON numbers; states and names are strings.
    let statuses: Vec<&Value> = by_id
        .values()
        .flatten()
        .filter(|e| e["name"] == "http_wait_for_response" && e["ph"] == "e")
        .map(|e| &e["args"]["status"])
        .collect();
    assert!(statuses.contains(&&Value::from(200)), "{statuses:?}");
    let frees: Vec<String> = by_id
        .values()
        .flatten()
        .filter(|e| e["name"] == "session_free")
        .filter_map(|e| e["args"]["term"].as_str().map(String::from))
        .collect();
    assert!(frees.iter().any(|t| t == "PR"), "the malformed request's termination state: {frees:?}");
    let bad_track = sess
        .iter()
        .find(|t| t.iter().any(|e| e["name"] == "http_wait_for_request" && e["args"]["bytes"] == 7));
    assert!(bad_track.is_some(), "the malformed request has its own track");
}

#[test]
fn tcp_sessions_and_loop_style_traces_are_valid_after_sigint_and_soft_stop() {
    let echo = backend(BackendSpec::Echo);
    let cfg = "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
               listen fe\n    bind \"127.0.0.1:${PORT}\"\n    server s1 \"${S1}\"\n";
    for (style, sig) in [("session", "-INT"), ("loop", "-USR1")] {
        let mut run =
            start(cfg, &[("S1", a(echo.addr()))], &["--trace-style", style, "--trace-level", "developer"]);
        let addr = format!("127.0.0.1:{}", run.port).parse().unwrap();
        let mut c = Conn::connect(addr, SOON).unwrap();
        c.send_raw(b"ping").unwrap();
        assert_eq!(c.read_exact(4).unwrap(), b"ping");
        drop(c);
        signal(&mut run, sig);
        let events = load(&run.trace);
        if style == "session" {
            let sess = sessions(&tracks(&events));
            assert_eq!(sess.len(), 1);
            assert_flow(
                &sess[0],
                &[
                    "session",
                    "stream_sock_accept",
                    "session_accept",
                    "process_session",
                    "process_switching_rules",
                    "connect_server",
                    "tcp_connect_server",
                    "stream_sock_read",
                    "stream_sock_write",
                    "session_free",
                ],
            );
            assert!(
                !sess[0].iter().any(|e| e["name"].as_str().unwrap().starts_with("http_")),
                "no HTTP analysers in TCP mode"
            );
        } else {
            // Threaded style: B/E pairs on the loop thread, loop spans included.
            let mut stack = Vec::new();
            for e in &events {
                match e["ph"].as_str() {
                    Some("B") => stack.push(e["name"].as_str().unwrap().to_string()),
                    Some("E") => assert_eq!(stack.pop().as_deref(), e["name"].as_str(), "nesting"),
                    _ => {}
                }
            }
            assert!(stack.is_empty(), "unterminated: {stack:?}");
            let names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
            for n in ["_do_poll", "process_runnable_tasks", "stream_sock_accept", "process_session"] {
                assert!(names.contains(&n), "{n} in the loop timeline");
            }
        }
    }
}

#[test]
fn level_and_filter_keep_a_busy_trace_readable() {
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let hole = backend(BackendSpec::BlackHole);
    let env = [("S1", a(b.addr())), ("HOLE", a(hole.addr()))];
    // With the capture feed on too, the subscriber records every level and the file's
    // writer leaves out what is above its own: `session_free`, under an unwritten
    // `process_session`, must still land on its session's track.
    for capture in [false, true] {
        let mut args = vec!["--trace-level", "user", "--trace-filter", "sess=1"];
        if capture {
            args.push("--trace-capture");
        }
        let mut run = start(HTTP_CFG, &env, &args);
        let addr = format!("127.0.0.1:{}", run.port).parse().unwrap();
        for _ in 0..3 {
            assert_eq!(haflow::scenario::client::get(addr, "/").unwrap().status, 200);
        }
        signal(&mut run, "-TERM");
        let events = load(&run.trace);
        let sess = sessions(&tracks(&events));
        assert_eq!(sess.len(), 1, "capture={capture}: only session 1 is kept");
        assert_eq!(sess[0][0]["args"]["sess"], 1);
        let names: Vec<&str> = sess[0].iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"session_accept") && names.contains(&"frontend_accept"), "{names:?}");
        assert_eq!(
            names.last(),
            Some(&"session_free"),
            "capture={capture}: the session's end is on its track"
        );
        assert!(!names.contains(&"process_session"), "user level leaves out the analysers: {names:?}");
        assert!(
            !events.iter().any(|e| e["name"] == "readcfgfile"),
            "no start-up spans under a session filter"
        );
    }
}

#[test]
fn a_trace_file_that_cannot_be_written_is_reported_on_exit() {
    // /dev/full takes the open and refuses every write (ENOSPC), as a full disk does.
    let b = backend(BackendSpec::Http(HttpBehaviour::named("s1")));
    let hole = backend(BackendSpec::BlackHole);
    let env = [("S1", a(b.addr())), ("HOLE", a(hole.addr()))];
    let mut run = spawn(HTTP_CFG, &env, Some(Path::new("/dev/full")), &[], Stdio::piped());
    let addr = format!("127.0.0.1:{}", run.port).parse().unwrap();
    assert_eq!(haflow::scenario::client::get(addr, "/").unwrap().status, 200, "the proxy still serves");
    let mut stderr = run.child.stderr.take().unwrap();
    signal(&mut run, "-TERM");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
    assert!(
        text.contains("haflow: the trace file is incomplete: writing it failed: No space left on device"),
        "stderr: {text}"
    );
}

/// A field's value as text, whichever writer wrote it: haflow's writes numbers as numbers
/// and HAProxy's states and flags by name; tracing-chrome writes every value through
/// `Debug` (text quoted, states and flags as their coded numbers, named here as haflow's
/// writer names them).
fn field_text(v: &Value) -> String {
    match v {
        Value::String(s) if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') => {
            serde_json::from_str::<String>(s).unwrap_or_else(|_| s.clone())
        }
        Value::String(s) => match s.parse::<u64>().ok().and_then(haflow::trace::fields::decode) {
            Some((code, bits)) => {
                let mut named = String::new();
                code.write(bits, &mut named).unwrap();
                named
            }
            None => s.clone(),
        },
        other => other.to_string(),
    }
}

/// The span trees of a trace file, one per track, each as lines `depth name {fields}`
/// in the order the spans began: the fields a span was created with, then (after `|`)
/// every field it ended with. Tracks are sorted (the two writers number them apart).
fn span_trees(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let events: Vec<Value> = match serde_json::from_str::<Value>(&text).expect("the trace parses") {
        Value::Array(v) => v,
        Value::Object(mut o) => match o.remove("traceEvents") {
            Some(Value::Array(v)) => v,
            other => panic!("traceEvents: {other:?}"),
        },
        other => panic!("not a trace: {other:?}"),
    };
    let fields = |args: &Value| -> std::collections::BTreeMap<String, String> {
        args.as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), field_text(v))).collect())
            .unwrap_or_default()
    };
    // Per track: the spans (depth, name, created with, ended with) and the open ones.
    type Span = (
        usize,
        String,
        std::collections::BTreeMap<String, String>,
        std::collections::BTreeMap<String, String>,
    );
    let mut tracks: Vec<(u64, Vec<Span>, Vec<usize>)> = Vec::new();
    for e in &events {
        let (Some(ph), Some(id)) = (e["ph"].as_str(), e["id"].as_u64()) else { continue };
        let at = match tracks.iter().position(|t| t.0 == id) {
            Some(i) => i,
            None => {
                tracks.push((id, Vec::new(), Vec::new()));
                tracks.len() - 1
            }
        };
        let (_, spans, open) = &mut tracks[at];
        let name = e["name"].as_str().unwrap().to_string();
        match ph {
            "b" => {
                let f = fields(&e["args"]);
                spans.push((open.len(), name, f.clone(), f));
                open.push(spans.len() - 1);
            }
            "e" => {
                let i = open.pop().unwrap_or_else(|| panic!("{}: '{name}' ends, none open", path.display()));
                assert_eq!(spans[i].1, name, "{}: ends out of order", path.display());
                // haflow's writer puts the fields recorded later on the end; tracing-chrome
                // every field the span has by then.
                spans[i].3.extend(fields(&e["args"]));
            }
            _ => {}
        }
    }
    let mut out: Vec<String> = tracks
        .into_iter()
        .map(|(_, spans, _)| {
            spans
                .iter()
                .map(|(depth, name, created, ended)| {
                    format!("{}{name} {created:?} | {ended:?}\n", "  ".repeat(*depth))
                })
                .collect()
        })
        .collect();
    out.sort();
    out
}

/// tracing-chrome, through tracing-subscriber's registry, checks haflow's own writer: the
/// same scenarios recorded by both writers at once (`--trace-writer both`) give the same
/// span trees, with the same names, nesting and fields, at every trace level.
#[test]
fn haflows_trace_writer_and_tracing_chrome_write_the_same_span_trees() {
    haflow::haproxy::flags::register_names();
    let dir = std::env::temp_dir().join(format!("haflow-writers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenarios =
        ["keep-alive", "deny-and-return", "connect-refused-redispatch", "malformed-400", "tcp-mode"];
    for (name, level) in scenarios.iter().zip(["developer", "state", "developer", "proto", "user"]) {
        let ours = dir.join(format!("{name}.json"));
        let out = Command::new(env!("CARGO_BIN_EXE_haflow"))
            .args(["scenario", "run", name, "--trace-writer", "both", "--trace-level", level, "--trace"])
            .arg(&ours)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let theirs = haflow::trace::export::reference_path(&ours);
        let (a, b) = (span_trees(&ours), span_trees(&theirs));
        assert!(a.iter().any(|t| t.starts_with("session ")), "{name}: sessions recorded: {a:?}");
        assert_eq!(a.len(), b.len(), "{name} at {level}: as many tracks");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{name} at {level}: haflow's tree, then tracing-chrome's");
        }
    }
    // Only haflow's writer filters sessions: asked of tracing-chrome, it is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_haflow"))
        .args([
            "scenario",
            "run",
            "basic-get",
            "--trace-writer",
            "tracing-chrome",
            "--trace-filter",
            "sess=0",
        ])
        .arg("--trace")
        .arg(dir.join("refused.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--trace-filter is applied by haflow's trace writer only")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
