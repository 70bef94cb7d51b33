//! What one span costs, in nanoseconds, with each output: nobody listening, a full capture
//! feed, a capture feed, the UI's feed (through its keeper), and the trace file. Run with `cargo bench --bench spans`; add
//! `--features nospans` for the compiled-out baseline.
//!
//! Each measurement creates, enters and closes a DEBUG span with the fields a typical
//! haflow span carries (a session id, an fd, a byte count, a side name), as
//! `stream_sock_read` does, a million times on one thread (the best of five rounds of
//! 200,000). Each case runs in a process of
//! its own with its subscriber installed process-wide, as `haflow` installs it: a scoped
//! dispatcher (`with_default`) costs a reference count per span that the proxy never pays.

use std::hint::black_box;
use std::time::Instant;

use haflow::trace::capture::{capture, kept, lossless, recycle};
use haflow::trace::chrome::start_writer;
use haflow::trace::export::{TraceLevel, TraceStyle};
use haflow::trace::names;
use haflow::trace::subscriber::{FlowSubscriber, Route, flush_thread, install_global};
use tracing::Level;

const N: u32 = 1_000_000;

/// The cases, by the name the child process receives in `SPANS_CASE`.
const CASES: &[(&str, &str)] = &[
    ("none", "no subscriber"),
    ("off", "subscriber, recording off"),
    ("full", "feed full, records skipped"),
    ("capture", "capture feed"),
    ("ui", "the UI's feed (kept)"),
    ("local", "capture, read on one thread"),
    ("file", "trace file"),
];

fn one_span(i: u32) {
    let span = tracing::debug_span!(names::STREAM_SOCK_READ, sess = i, fd = 7, bytes = 1024u64, side = "cli");
    let _g = span.enter();
    black_box(&span);
}

fn measure(label: &str) {
    measure_with(label, flush_thread)
}

/// `measure`, calling `turn` where the proxy loop ends a turn.
fn measure_with(label: &str, mut turn: impl FnMut()) {
    for i in 0..10_000 {
        one_span(i);
    }
    // The best of five rounds: this machine's neighbours slow some rounds down, never
    // speed one up.
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for i in 0..N / 5 {
            one_span(i);
            if i % 256 == 0 {
                // The proxy loop sends its records once per turn.
                turn();
            }
        }
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(N / 5));
    }
    let ns = best;
    println!("{label:<28} {ns:>8.1} ns/span");
}

fn install(routes: Vec<Route>, stderr: Option<Level>) {
    assert!(install_global(FlowSubscriber::new(routes, false, stderr)), "one subscriber per process");
}

fn run_case(case: &str, label: &str) {
    match case {
        "none" => {
            measure(if cfg!(feature = "nospans") { "compiled out (nospans)" } else { label });
        }
        // Dispatch alone: a subscriber that records nothing.
        "off" => {
            install(Vec::new(), Some(Level::ERROR));
            measure(label);
        }
        // A feed whose consumer is behind (full): records are not built, only counted.
        "full" => {
            let (sink, _idle) = capture(1);
            install(vec![Route { sink, max: Level::TRACE }], None);
            measure(label);
        }
        "capture" | "ui" => {
            // Room for what the proxy makes between two polls of the consumer.
            let (sink, cap) = if case == "ui" { kept(1 << 20) } else { capture(1 << 20) };
            let consumer = std::thread::spawn(move || {
                let mut n = 0u64;
                while let Some(batch) = cap.recv_batch() {
                    if batch.is_empty() {
                        break;
                    }
                    n += batch.len() as u64;
                    recycle(batch);
                }
                (n, cap.dropped())
            });
            install(vec![Route { sink: sink.clone(), max: Level::TRACE }], None);
            measure(label);
            flush_thread();
            sink.finish();
            let (received, dropped) = consumer.join().expect("consumer");
            println!("{:<28} {received} records received, {dropped} dropped", "");
        }
        // The producer's own cost, without a second thread's cache traffic or scheduling.
        "local" => {
            let (sink, cap) = capture(1 << 20);
            install(vec![Route { sink, max: Level::TRACE }], None);
            measure_with(label, || {
                flush_thread();
                while let Some(batch) = cap.try_recv_batch() {
                    recycle(batch);
                }
            });
        }
        "file" => {
            let path = std::env::temp_dir().join(format!("haflow-bench-spans-{}.json", std::process::id()));
            let (sink, feed) = lossless();
            let guard = start_writer(
                std::fs::File::create(&path).expect("trace file"),
                feed,
                sink.clone(),
                TraceStyle::Session,
                TraceLevel::State,
                None,
            );
            install(vec![Route { sink, max: Level::DEBUG }], None);
            let t = Instant::now();
            measure(label);
            drop(guard);
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            println!(
                "{:<28} {:.1} ns/span until the file was complete, {} bytes/span",
                "",
                t.elapsed().as_nanos() as f64 / f64::from(N + 10_000),
                bytes / u64::from(N + 10_000)
            );
            let _ = std::fs::remove_file(&path);
        }
        other => panic!("unknown case {other}"),
    }
}

fn main() {
    if let Ok(case) = std::env::var("SPANS_CASE") {
        let label = CASES.iter().find(|(c, _)| *c == case).map_or("?", |(_, l)| l);
        run_case(&case, label);
        return;
    }
    let me = std::env::current_exe().expect("the bench's own path");
    let only = std::env::var("SPANS_ONLY").ok();
    for (case, _) in CASES {
        if cfg!(feature = "nospans") && *case != "none" {
            continue;
        }
        if only.as_deref().is_some_and(|o| !o.split(',').any(|c| c == *case)) {
            continue;
        }
        let status = std::process::Command::new(&me).env("SPANS_CASE", case).status().expect("run a case");
        assert!(status.success(), "case {case} failed");
    }
}
