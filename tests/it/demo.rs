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
