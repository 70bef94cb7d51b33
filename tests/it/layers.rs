//! The layers of `src/` (the picture in `src/lib.rs`): each top-level module names only
//! the modules below it, so that the proxy core never depends on what watches it. Read
//! from the source text: every `crate::NAME` path in a module's files.

use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules, top layer first, with what each may name. The four features under
/// `cli` are ordered among themselves (`demo` > `tui` > `walkthrough` > `scenario`), so
/// that no two of them depend on each other.
const LAYERS: &[(&str, &[&str])] = &[
    ("cli", &["demo", "tui", "walkthrough", "scenario", "haproxy", "trace", "ids"]),
    ("demo", &["tui", "walkthrough", "scenario", "haproxy", "trace", "ids"]),
    ("tui", &["walkthrough", "scenario", "haproxy", "trace", "ids"]),
    ("walkthrough", &["scenario", "haproxy", "trace", "ids"]),
    ("scenario", &["haproxy", "trace", "ids"]),
    ("haproxy", &["trace", "ids"]),
    ("trace", &["ids"]),
    ("ids", &[]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `.rs` files of top-level module `m` (`src/m.rs` and everything under `src/m/`).
fn files_of(m: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let file = src().join(format!("{m}.rs"));
    if file.is_file() {
        out.push(file);
    }
    let mut dirs = vec![src().join(m)];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}

/// The top-level modules a file names through `crate::NAME`, with the line.
fn named(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            assert!(
                !name.is_empty(),
                "line {}: `crate::{{...}}` hides what it names: spell each path",
                n + 1
            );
            out.push((name, n + 1));
        }
    }
    out
}

#[test]
fn every_module_names_only_the_layers_below_it() {
    let mut broken = Vec::new();
    for (m, allowed) in LAYERS {
        let files = files_of(m);
        assert!(!files.is_empty(), "no source for module `{m}`");
        for f in files {
            let text = fs::read_to_string(&f).unwrap();
            for (name, line) in named(&text) {
                if name != *m && !allowed.contains(&name.as_str()) {
                    broken.push(format!("{}:{line} names crate::{name}", f.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken (see src/lib.rs):\n{}", broken.join("\n"));
}

#[test]
fn the_layer_list_covers_every_module_of_the_crate() {
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    let declared: Vec<&str> =
        lib.lines().filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';')).collect();
    let mut listed: Vec<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    listed.sort_unstable();
    let mut declared_sorted = declared.clone();
    declared_sorted.sort_unstable();
    assert_eq!(declared_sorted, listed, "a module of src/lib.rs has no layer here");
}

/// The `expect`/`unwrap` calls the proxy core may keep, by file and the text of the
/// call's line, each with why neither network input nor analyser order can reach it.
const MAY_PANIC: &[(&str, &str, &str)] = &[
    (
        "acl.rs",
        r#"suites.last_mut().expect("never empty")"#,
        "configuration parsing; the list of suites starts with one and only grows",
    ),
    ("buffers.rs", r#"expect("storage was just allocated")"#, "the line before allocates the storage"),
    (
        "session.rs",
        r#"l.handler.expect("check_config_validity sets l->handler")"#,
        "start-up sets every listener's handler before any accept",
    ),
    (
        "session.rs",
        r#"w.sessions.take(sid.idx()).expect("just inserted")"#,
        "the session was inserted on the line before, on the only thread",
    ),
    (
        "stream_sock.rs",
        r#".accept.expect("check_config_validity sets l->accept")"#,
        "start-up sets every listener's accept before it is enabled",
    ),
];

#[test]
fn the_proxy_core_does_not_panic_on_what_the_network_sends() {
    let mut found = Vec::new();
    for f in files_of("haproxy") {
        let text = fs::read_to_string(&f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        // Unit tests, at the end of the file, may unwrap.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let line_code = line.split("//").next().unwrap_or("");
            if !(line_code.contains(".expect(") || line_code.contains(".unwrap()")) {
                continue;
            }
            if !MAY_PANIC.iter().any(|(file, call, _)| *file == name && line_code.contains(call)) {
                found.push(format!("src/haproxy/{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "expect/unwrap in the proxy core; handle the case, or prove it impossible in MAY_PANIC:\n{}",
        found.join("\n")
    );
}
