//! What one span costs, in nanoseconds, with each output: nobody listening, a full capture
//! feed, the capture feed (the UI's), and the trace file. Run with `cargo bench --bench spans`; add
//! `--features nospans` for the compiled-out baseline.
//!
//! Each measurement creates, enters and closes a DEBUG span with the fields a typical
//! haflow span carries (a session id, an fd, a byte count, a display value), as
//! `stream_sock_read` does, a million times on one thread.

use std::hint::black_box;
use std::time::Instant;

use haflow::trace::capture::{capture, lossless, recycle};
use haflow::trace::chrome::start_writer;
use haflow::trace::export::{TraceLevel, TraceStyle};
use haflow::trace::names;
use haflow::trace::subscriber::{FlowSubscriber, Route};
use tracing::Level;

const N: u32 = 1_000_000;

fn one_span(i: u32) {
    let span =
        tracing::debug_span!(names::STREAM_SOCK_READ, sess = i, fd = 7, bytes = 1024u64, side = %"cli");
    let _g = span.enter();
    black_box(&span);
}

fn measure(label: &str) {
    for i in 0..10_000 {
        one_span(i);
    }
    let t = Instant::now();
    for i in 0..N {
        one_span(i);
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(N);
    println!("{label:<28} {ns:>8.1} ns/span");
}

fn main() {
    measure(if cfg!(feature = "nospans") { "compiled out (nospans)" } else { "no subscriber" });

    // Dispatch alone: a subscriber that records nothing.
    tracing::subscriber::with_default(FlowSubscriber::new(Vec::new(), false, Some(Level::ERROR)), || {
        measure("subscriber, recording off")
    });
    // A feed whose consumer is behind (full): records are not built, only counted.
    let (sink, _idle) = capture(1);
    let sub = FlowSubscriber::new(vec![Route { sink, max: Level::TRACE }], false, None);
    tracing::subscriber::with_default(sub, || measure("feed full, records skipped"));
    if std::env::var_os("SPANS_PRODUCER_ONLY").is_some() {
        return;
    }

    let (sink, cap) = capture(1 << 16);
    let consumer = std::thread::spawn(move || {
        let mut n = 0u64;
        while let Some(batch) = cap.recv_batch() {
            n += batch.len() as u64;
            recycle(batch);
        }
        (n, cap.dropped())
    });
    let sub = FlowSubscriber::new(vec![Route { sink, max: Level::TRACE }], false, None);
    tracing::subscriber::with_default(sub, || measure("capture feed"));
    let (received, dropped) = consumer.join().expect("consumer");
    println!("{:<28} {received} records received, {dropped} dropped", "");

    let path = std::env::temp_dir().join("haflow-bench-spans.json");
    let (sink, feed) = lossless();
    let guard = start_writer(
        std::fs::File::create(&path).expect("trace file"),
        feed,
        sink.clone(),
        TraceStyle::Session,
        TraceLevel::State,
        None,
    );
    let sub = FlowSubscriber::new(vec![Route { sink, max: Level::DEBUG }], false, None);
    tracing::subscriber::with_default(sub, || measure("trace file"));
    drop(guard);
    let _ = std::fs::remove_file(&path);
}
