//! The demo without a terminal: the configuration, then summaries of real mixed traffic
//! (the statuses the rules and the misbehaving client provoke) and call-flow listings.

use std::time::Duration;

#[test]
fn the_text_demo_prints_the_config_summaries_and_a_different_kind_of_call_flow_each_time() {
    let mut out = Vec::new();
    haflow::demo::run_text(Some(Duration::from_secs(6)), Duration::from_secs(1), &mut out)
        .expect("the demo runs");
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("frontend web") && !text.contains("${S1}"),
        "the config, addresses filled in:\n{text}"
    );
    let summaries = text.lines().filter(|l| l.starts_with("--- ")).count();
    assert!(summaries >= 6, "a summary every second:\n{text}");
    assert!(text.contains("app/s1 UP"), "servers and their state:\n{text}");
    for want in ["200 ----", "403 PR--", "400 PR--"] {
        assert!(text.contains(want), "{want} among the responses:\n{text}");
    }
    // Rounds 1 and 5 list a session: a keep-alive run first, then another kind.
    let heads: Vec<&str> = text.lines().filter(|l| l.contains("call flow of session")).collect();
    assert_eq!(heads.len(), 2, "{text}");
    assert!(heads[0].contains("a keep-alive run"), "{heads:?}");
    assert!(heads[1].contains("a 403"), "the next listing shows another kind: {heads:?}");
    // Each span with its duration: `process_session {...} [12us]`.
    let timed = text.lines().filter(|l| l.trim_start().starts_with("process_session {")).collect::<Vec<_>>();
    assert!(!timed.is_empty(), "{text}");
    for l in &timed {
        let d = l.rsplit_once(" [").map(|(_, d)| d.trim_end_matches(']')).unwrap_or("");
        assert!(["ns", "us", "ms", "s"].iter().any(|u| d.ends_with(u)), "a duration ends the line: {l}");
    }
    println!("{text}");
}

/// A command whose reader goes away after one line (`haflow scenario list | head -1`)
/// ends quietly: no panic on the broken pipe, exit status 0.
#[test]
fn commands_whose_reader_goes_away_end_without_a_panic() {
    use std::io::{BufRead, BufReader};
    for args in [
        &["scenario", "list"][..],
        &["--help"],
        &["-vv"],
        &["walkthrough", "--print"],
        &["scenario", "run", "basic-get", "--flow"],
        &["demo", "--duration", "3", "--every", "1"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_haflow"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        // The read end is closed here: what the command writes next meets a broken pipe.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!first.is_empty(), "{args:?} printed nothing");
        assert!(out.status.success() && !err.contains("panicked"), "{args:?}: {:?}\n{err}", out.status);
    }
}

/// `haflow --help` shows HAProxy's command line beside the subcommands.
#[test]
fn help_shows_the_haproxy_style_command_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_haflow")).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for want in
        ["haflow -f haproxy.cfg", " -db ", "haflow -c -f", "-sf PID", "haflow replay FILE.json", "demo"]
    {
        assert!(help.contains(want), "{want} in --help:\n{help}");
    }
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
