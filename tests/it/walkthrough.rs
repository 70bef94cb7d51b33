//! The walkthrough in step mode: `haflow walkthrough --print` stops at every step, in
//! order, at the step's span, and shows the proxy's state as it was at that moment.

use std::process::Command;

use haflow::walkthrough::steps;

/// The output of `haflow walkthrough --print`, one block per step.
fn print_blocks() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_haflow")).args(["walkthrough", "--print"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "exit {:?}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    text.split("==== step ").skip(1).map(str::to_string).collect()
}

/// The state lines of a block: what follows `stopped in:`.
fn state(block: &str) -> &str {
    block.split_once("\nstopped in: ").map_or("", |(_, s)| s)
}

#[test]
fn print_stops_at_every_step_in_order_with_the_state_of_that_moment() {
    let steps = steps().unwrap();
    let blocks = print_blocks();
    assert_eq!(blocks.len(), steps.len(), "one block per step");
    for (step, block) in steps.iter().zip(&blocks) {
        assert!(
            block.starts_with(&format!("{}/{}: {} ====", step.number, steps.len(), step.title)),
            "step {} in order: {}",
            step.number,
            block.lines().next().unwrap_or("")
        );
        let st = state(block);
        assert!(st.starts_with(&step.span), "step {} stopped in {}: {st:.80}", step.number, step.span);
        // The span where it stopped is the innermost of the stack.
        let stack: Vec<&str> = st
            .lines()
            .skip_while(|l| !l.starts_with("span stack"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .collect();
        let innermost = stack.last().unwrap_or(&"").trim_start();
        assert!(
            innermost.starts_with(&step.span),
            "step {}: the stack ends with the step's span: {stack:?}",
            step.number
        );
        assert!(stack.first().is_some_and(|l| !l.starts_with("    ")), "outermost first: {stack:?}");
    }
    let at = |n: usize| state(&blocks[n - 1]);
    // Start-up: the listener goes LI_INIT -> LI_ASSIGNED -> LI_LISTEN -> LI_READY.
    assert!(at(1).contains("127.0.0.1:0 LI_INIT"), "{}", at(1));
    assert!(at(2).contains("fe 127.0.0.1:0 LI_ASSIGNED") && at(2).contains("accept=-"), "{}", at(2));
    assert!(
        at(3).contains("accept=session_accept handler=process_session"),
        "check_config_validity wired it: {}",
        at(3)
    );
    assert!(at(4).contains("LI_LISTEN") && !at(4).contains("fd=-"), "bound before enabled: {}", at(4));
    assert!(!at(4).contains("127.0.0.1:0 "), "once bound, the listener shows the port it got: {}", at(4));
    // The session: the client side is established at accept, the server side not yet.
    assert!(at(5).contains("si[0] SI_ST_EST") && at(5).contains("si[1] SI_ST_INI"), "{}", at(5));
    assert!(
        at(6).contains("side=cli") && at(6).contains(r#"input  "GET / HTTP/1.1\r\n"#),
        "the request was read: {}",
        at(6)
    );
    assert!(at(7).contains("woken=TASK_RUNNING|TASK_WOKEN_IO"), "woken by the read: {}", at(7));
    assert!(at(8).contains("AN_REQ_WAIT_HTTP"), "{}", at(8));
    assert!(at(9).contains("si[1] SI_ST_ASS"), "a server is assigned when it connects: {}", at(9));
    assert!(
        at(10).contains("side=srv") && at(10).contains("si[1] SI_ST_CON"),
        "the request goes out: {}",
        at(10)
    );
    assert!(at(11).contains("server=s1"), "{}", at(11));
    assert!(at(12).contains(r#"input  "HTTP/1.1 200 OK\r\n"#), "the response is in rep: {}", at(12));
    assert!(at(13).contains("status=200"), "{}", at(13));
    assert!(at(14).contains("si[0] SI_ST_CLO"), "both sides closed: {}", at(14));
}
