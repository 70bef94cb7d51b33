//! The solutions of the book's code exercises, compiled and tested here so that a folded
//! solution cannot be wrong. Each one is included by its chapter between `ANCHOR` marks;
//! each test checks the rule against the cases the chapter names (HAProxy 1.5-dev8's
//! behaviour, `src/task.c`, `src/session.c`).

use haflow::haproxy::stream_interface::SiState;

// ANCHOR: max_processed
/// task.c:process_runnable_tasks() in 1.5-dev8: how many tasks one call runs. At most
/// 200, so that the poller is not starved; and when niced tasks are queued, a quarter of
/// the queue (rounded up), so that the others' turn comes back sooner.
fn max_processed(run_queue: usize, niced_tasks: usize) -> usize {
    let max = run_queue.min(200);
    if niced_tasks > 0 { max.div_ceil(4) } else { max }
}
// ANCHOR_END: max_processed

#[test]
fn max_processed_follows_the_1_5_dev8_rule() {
    assert_eq!(max_processed(0, 0), 0);
    assert_eq!(max_processed(7, 0), 7);
    assert_eq!(max_processed(5000, 0), 200);
    assert_eq!(max_processed(7, 1), 2, "(7 + 3) / 4");
    assert_eq!(max_processed(5000, 3), 50, "a quarter of the 200 cap");
    assert_eq!(max_processed(1, 1), 1, "a niced task still runs");
}

// ANCHOR: fin_state
/// session.c:sess_set_term_flags() in 1.5-dev8: where the session stood when it ended
/// (the second letter of the termination state), when no analyser said it already.
fn fin_state(si1: SiState, si1_prev: SiState) -> char {
    use SiState::*;
    if si1 < SI_ST_REQ {
        'R' // no server connection was even wanted: the request was not complete
    } else if si1 == SI_ST_QUE {
        'Q'
    } else if si1 < SI_ST_EST {
        'C'
    } else if si1 == SI_ST_EST || si1_prev == SI_ST_EST {
        'D'
    } else {
        'L'
    }
}
// ANCHOR_END: fin_state

#[test]
fn fin_state_follows_sess_set_term_flags() {
    use SiState::*;
    assert_eq!(fin_state(SI_ST_INI, SI_ST_INI), 'R');
    assert_eq!(fin_state(SI_ST_QUE, SI_ST_REQ), 'Q');
    assert_eq!(fin_state(SI_ST_TAR, SI_ST_CER), 'C');
    assert_eq!(fin_state(SI_ST_CON, SI_ST_ASS), 'C');
    assert_eq!(fin_state(SI_ST_EST, SI_ST_EST), 'D');
    assert_eq!(fin_state(SI_ST_CLO, SI_ST_EST), 'D', "closed in this very run, from EST");
    assert_eq!(fin_state(SI_ST_CLO, SI_ST_CLO), 'L');
}

// ANCHOR: turn_around
/// session.c:sess_update_st_cer() in 1.5.0: after a failed connect, does the retry wait
/// in `SI_ST_TAR` first? Only when the socket reported the error (a refusal, not a
/// timeout), and not when the session is redispatched under round robin with more than
/// one active server (any other server will do, and a new one has not failed yet).
fn turn_around(async_error: bool, next: SiState, round_robin: bool, active_servers: usize) -> bool {
    async_error && (next == SiState::SI_ST_ASS || !round_robin || active_servers <= 1)
}
// ANCHOR_END: turn_around

#[test]
fn turn_around_follows_1_5_0() {
    use SiState::*;
    // connect-refused-redispatch: leastconn, a refusal: both retries wait.
    assert!(turn_around(true, SI_ST_ASS, false, 2));
    assert!(turn_around(true, SI_ST_REQ, false, 2));
    // connect-timeout-redispatch: a timeout never waits.
    assert!(!turn_around(false, SI_ST_ASS, false, 2));
    // Round robin with two active servers: a redispatch goes at once...
    assert!(!turn_around(true, SI_ST_REQ, true, 2));
    // ...but not with one server left, nor when retrying the same server.
    assert!(turn_around(true, SI_ST_REQ, true, 1));
    assert!(turn_around(true, SI_ST_ASS, true, 2));
}
