//! Messages on stderr with HAProxy's prefix: `[ALERT]    (1234) : ...`.
//!
//! Reproduces `errors.c` (HAProxy 2.6), where `ha_alert`, `ha_warning` and `ha_notice`
//! print through one function. It names nothing else in haflow, so every layer (the
//! command line, the demo, the scenarios, the terminal UI) prints the same way.

/// errors.c:print_message() in 2.6: `label` in brackets padded to ten columns, the pid,
/// then `msg`, on stderr.
/// Divergence: no startup-log ring nor "parsing `[file:line]`" context; callers put the
/// context in `msg`, as `readcfgfile`'s ALERTs already carry it.
pub fn print_message(label: &str, msg: &str) {
    // One write for the whole line: stderr is unbuffered, and `eprintln!` with arguments
    // writes each piece on its own, which a reader of the pipe (VTest) sees as many lines.
    let line = format!("{:<11}({}) : {}\n", format!("[{label}]"), std::process::id(), msg);
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}
