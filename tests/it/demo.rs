//! The demo without a terminal: the configuration, then summaries of real mixed traffic
//! (the statuses the rules and the misbehaving client provoke) and call-flow listings.

use std::time::Duration;

#[test]
fn the_text_demo_prints_the_config_summaries_and_a_call_flow() {
    let mut out = Vec::new();
    haflow::demo::run_text(Some(Duration::from_secs(4)), Duration::from_secs(1), &mut out)
        .expect("the demo runs");
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("frontend web") && !text.contains("${S1}"),
        "the config, addresses filled in:\n{text}"
    );
    let summaries = text.lines().filter(|l| l.starts_with("--- ")).count();
    assert!(summaries >= 4, "a summary every second:\n{text}");
    assert!(text.contains("app/s1 UP"), "servers and their state:\n{text}");
    for want in ["200 ----", "403 PR--", "400 PR--"] {
        assert!(text.contains(want), "{want} among the responses:\n{text}");
    }
    assert!(
        text.contains("call flow of session") && text.contains("process_session {"),
        "a listing:\n{text}"
    );
    println!("{text}");
}

/// The demo as a new user runs it, without a terminal, for a minute: after a warm-up of
/// 10 s its memory, its fds and what it holds of the capture stay flat.
#[test]
fn the_demo_runs_for_a_minute_with_flat_memory_fds_and_capture() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_haflow"))
        .args(["demo", "--duration", "60", "--every", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.stdout.take().unwrap();
    let mut samples = Vec::new();
    let mut held = Vec::new();
    let started = std::time::Instant::now();
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        // One sample per summary, taken as the demo prints it (every 2 s).
        if line.starts_with("--- ") {
            samples.push((started.elapsed(), crate::soak::sample(pid)));
        }
        if let Some(rest) = line.trim().strip_prefix("memory: ") {
            let n: usize = rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
            held.push((started.elapsed(), n));
        }
    }
    assert!(child.wait().unwrap().success());
    let table: Vec<String> = samples
        .iter()
        .map(|(t, s)| format!("{:>3}s rss {} kB fds {}", t.as_secs(), s.rss_kb, s.fds))
        .collect();
    let table = table.join("\n");
    assert!(samples.len() >= 25, "a summary every 2 s for 60 s:\n{table}");
    let window = |from: u64, to: u64| {
        let mut v: Vec<u64> = samples
            .iter()
            .filter(|(t, _)| (from..to).contains(&t.as_secs()))
            .map(|(_, s)| s.rss_kb)
            .collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (early, late) = (window(10, 20), window(50, 61));
    // Bounded stores (the log and request rings) still fill in the first minute: a few
    // hundred kB. What this catches is growth with the traffic: the first wave's demo was
    // at 1.2 GB after 10 s.
    assert!(late * 100 <= early * 115, "RSS grows: {early} -> {late} kB\n{table}");
    let fds: Vec<usize> = samples.iter().filter(|(t, _)| t.as_secs() >= 10).map(|(_, s)| s.fds).collect();
    assert!(fds.iter().all(|&n| n <= 64), "fds stay few:\n{table}");
    let most = held.iter().filter(|(t, _)| t.as_secs() >= 10).map(|(_, n)| *n).max().unwrap_or(usize::MAX);
    assert!(most <= 2_000, "spans held for call flows stay bounded: {held:?}");
}
