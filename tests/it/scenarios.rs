//! Scenarios: every shipped scenario runs against the real proxy and meets its
//! expectations (statuses, bytes, log lines, pools back to zero), and its call flow
//! matches the golden listing the book includes, run after run. `HAFLOW_BLESS=1 cargo test scenarios`
//! rewrites the listings of scenarios that otherwise pass; review the diff.

use std::path::{Path, PathBuf};

use haflow::scenario::catalog::{SCENARIOS, find};
use haflow::scenario::runner::{Outcome, RunOptions, run};

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/golden").join(format!("{name}.txt"))
}

/// Runs the shipped scenario `name` against its golden listing on disk.
fn check(name: &str) -> Outcome {
    let entry = find(name).unwrap_or_else(|| panic!("{name} is not in the catalog"));
    let sc = entry.scenario().unwrap();
    assert_eq!(sc.name, name, "the file's name field matches its file name");
    let bless = std::env::var_os("HAFLOW_BLESS").is_some();
    let golden = if bless { None } else { std::fs::read_to_string(golden_path(name)).ok() };
    let out = run(&sc, RunOptions { golden, ..RunOptions::default() }).expect("the scenario runs");
    assert!(
        out.passed(),
        "scenario {name}:\n{}\n\nfailures:\n- {}\n\nlogs:\n{}",
        out.report.join("\n"),
        out.failures.join("\n- "),
        out.logs.join("\n")
    );
    if bless {
        std::fs::write(golden_path(name), &out.listing).unwrap();
    }
    out
}

/// Runs `name` twice more: its call flow must not depend on timing.
fn check_stable(name: &str) {
    let first = check(name).listing;
    for _ in 0..2 {
        assert_eq!(check(name).listing, first, "{name}: the call flow changed from one run to the next");
    }
}

macro_rules! scenario_tests {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check_stable($name);
            }
        )*

        /// Every scenario file is in the catalog, has a test here, and a golden listing.
        #[test]
        fn every_scenario_file_is_shipped_tested_and_has_a_listing() {
            let tested = [$($name),*];
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|f| f.strip_suffix(".toml").map(str::to_string))
                .collect();
            files.sort();
            let mut shipped: Vec<String> = SCENARIOS.iter().map(|e| e.name.to_string()).collect();
            shipped.sort();
            assert_eq!(files, shipped, "scenarios/*.toml and the catalog (src/scenario/catalog.rs)");
            for f in &files {
                assert!(tested.contains(&f.as_str()), "{f} has no test in tests/it/scenarios.rs");
                let golden = std::fs::read_to_string(golden_path(f)).unwrap_or_default();
                assert!(golden.lines().count() > 3, "{f}: the golden listing is missing");
            }
        }
    };
}

scenario_tests! {
    startup => "startup",
    basic_get => "basic-get",
    keep_alive => "keep-alive",
    websocket => "websocket",
    connection_close => "connection-close",
    post_chunked => "post-chunked",
    round_robin => "round-robin",
    acl_switching => "acl-switching",
    deny_and_return => "deny-and-return",
    rate_limit => "rate-limit",
    server_down_checks => "server-down-checks",
    connect_refused_redispatch => "connect-refused-redispatch",
    connect_timeout_redispatch => "connect-timeout-redispatch",
    server_timeout_504 => "server-timeout-504",
    malformed_400 => "malformed-400",
    slow_client_408 => "slow-client-408",
    server_maxconn_queue => "server-maxconn-queue",
    frontend_maxconn => "frontend-maxconn",
    global_maxconn => "global-maxconn",
    reload => "reload",
    tcp_mode => "tcp-mode",
    client_reset => "client-reset",
    server_close_mid_body => "server-close-mid-body",
    large_body_small_buffer => "large-body-small-buffer",
    proxy_protocol => "proxy-protocol",
    compression => "compression",
    walkthrough => "walkthrough",
}
