//! The book (`book/`) and the walkthrough (`walkthrough/`): what the book shows must be
//! in the repository. Every `{{#include}}` of a chapter names a file that exists and is
//! not empty (and, for `file:anchor`, an anchor that exists in it); every walkthrough
//! step is included by a chapter and stops at a span of `trace::names`; every chapter is
//! listed in `SUMMARY.md`; relative links resolve; the lab configurations parse. An
//! included call-flow listing must be a scenario's, whose test (tests/it/scenarios.rs)
//! fails when the listing is stale.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use haflow::haproxy::cfgparse::readcfgfile;

/// The solutions of the book's code exercises (`book::solutions::*`).
#[path = "book_solutions.rs"]
mod solutions;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files under `dir`, recursively, sorted.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// One `{{#include path[:selector]}}` of a chapter.
#[derive(Debug)]
struct Include {
    chapter: PathBuf,
    path: String,
    selector: Option<String>,
}

/// The `{{#include ...}}` expressions of `text` (escaped ones, `\{{#include`, are not).
fn includes_of(chapter: &Path, text: &str) -> Vec<Include> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find("{{#include") {
        let at = offset + i;
        let escaped = at > 0 && text.as_bytes()[at - 1] == b'\\';
        let after = &rest[i + "{{#include".len()..];
        let end = after.find("}}").unwrap_or_else(|| panic!("unclosed include in {}", chapter.display()));
        let arg = after[..end].split_whitespace().next().unwrap_or("");
        if !escaped {
            let (path, selector) = match arg.split_once(':') {
                Some((p, s)) => (p.to_string(), Some(s.to_string())),
                None => (arg.to_string(), None),
            };
            out.push(Include { chapter: chapter.to_path_buf(), path, selector });
        }
        let consumed = i + "{{#include".len() + end + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    out
}

/// The span names declared in `src/trace/names.rs` (`pub const X: &str = "name";`).
fn span_names() -> BTreeSet<String> {
    read(&root().join("src/trace/names.rs"))
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("pub const ")?;
            let (_, value) = rest.split_once(": &str = \"")?;
            Some(value.strip_suffix("\";")?.to_string())
        })
        .collect()
}

/// The target of each inline Markdown link `[text](target)` outside code.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Drop inline code spans so that `a](b)` inside backticks is not a link.
        let mut plain = String::new();
        for (k, part) in line.split('`').enumerate() {
            if k % 2 == 0 {
                plain.push_str(part);
            }
        }
        let mut rest = plain.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_include_of_the_book_exists_and_is_not_empty() {
    let src = root().join("book/src");
    let chapters = markdown_files(&src);
    assert!(chapters.len() > 10, "the book has its chapters: {chapters:?}");
    let mut problems = Vec::new();
    let mut count = 0;
    for ch in &chapters {
        for inc in includes_of(ch, &read(ch)) {
            count += 1;
            let file = ch.parent().unwrap().join(&inc.path);
            let Ok(text) = fs::read_to_string(&file) else {
                problems.push(format!("{}: {} does not exist", inc.chapter.display(), inc.path));
                continue;
            };
            if text.trim().is_empty() {
                problems.push(format!("{}: {} is empty", inc.chapter.display(), inc.path));
                continue;
            }
            // A call-flow listing is only fresh if a scenario regenerates and checks it
            // (tests/it/scenarios.rs compares each scenario's run with its listing).
            if let Some(name) =
                inc.path.rsplit_once("scenarios/golden/").and_then(|(_, f)| f.strip_suffix(".txt"))
            {
                if !root().join("scenarios").join(format!("{name}.toml")).exists() {
                    problems.push(format!(
                        "{}: {} is no scenario's listing (no scenarios/{name}.toml checks it)",
                        inc.chapter.display(),
                        inc.path
                    ));
                }
                continue;
            }
            let Some(sel) = inc.selector.as_deref() else { continue };
            let is_range = sel.chars().all(|c| c.is_ascii_digit() || c == ':');
            if is_range {
                let first: usize = sel.split(':').next().and_then(|n| n.parse().ok()).unwrap_or(1);
                if first > text.lines().count() {
                    problems.push(format!("{}: {} has no line {first}", inc.chapter.display(), inc.path));
                }
                continue;
            }
            // An anchor: `// ANCHOR: name` ... `// ANCHOR_END: name`, with code in between.
            let lines: Vec<&str> = text.lines().collect();
            let is = |l: &str, tag: &str| {
                l.trim_end().strip_suffix(sel).is_some_and(|h| h.trim_end().ends_with(tag))
            };
            let start = lines.iter().position(|l| is(l, "ANCHOR:"));
            let end = lines.iter().position(|l| is(l, "ANCHOR_END:"));
            match (start, end) {
                (Some(s), Some(e)) if s < e => {
                    let body = lines[s + 1..e].iter().filter(|l| !l.contains("ANCHOR")).count();
                    if body == 0 {
                        problems.push(format!(
                            "{}: anchor {sel} in {} is empty",
                            inc.chapter.display(),
                            inc.path
                        ));
                    }
                }
                _ => problems.push(format!(
                    "{}: {} has no anchor {sel} (ANCHOR: {sel} ... ANCHOR_END: {sel})",
                    inc.chapter.display(),
                    inc.path
                )),
            }
        }
    }
    assert!(count > 20, "the chapters include the walkthrough, listings and code ({count} includes)");
    assert!(problems.is_empty(), "broken includes:\n{}", problems.join("\n"));
}

#[test]
fn every_walkthrough_step_is_in_the_book_and_stops_at_a_known_span() {
    let wt = root().join("walkthrough");
    let src = root().join("book/src");
    let included: BTreeSet<PathBuf> = markdown_files(&src)
        .iter()
        .flat_map(|ch| {
            includes_of(ch, &read(ch))
                .into_iter()
                .filter_map(|inc| ch.parent().unwrap().join(&inc.path).canonicalize().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    let names = span_names();
    assert!(names.contains("session_accept"), "names.rs parsed: {names:?}");
    let index = read(&wt.join("README.md"));
    let steps: Vec<PathBuf> = markdown_files(&wt).into_iter().filter(|p| !p.ends_with("README.md")).collect();
    assert!(steps.len() >= 14, "the walkthrough has its steps: {steps:?}");
    let embedded: Vec<&str> = haflow::walkthrough::FILES.iter().map(|(f, _)| *f).collect();
    let on_disk: Vec<String> =
        steps.iter().map(|p| p.file_name().unwrap().to_string_lossy().to_string()).collect();
    assert_eq!(embedded, on_disk, "src/walkthrough.rs embeds every step file, in order");
    let mut problems = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let file = step.file_name().unwrap().to_string_lossy().to_string();
        let text = read(step);
        if !file.starts_with(&format!("{:02}-", n + 1)) {
            problems.push(format!("{file}: steps are numbered 01-, 02-... in order"));
        }
        if !included.contains(&step.canonicalize().unwrap()) {
            problems.push(format!("{file}: no chapter of book/src includes it"));
        }
        if !index.contains(&format!("`{file}`")) {
            problems.push(format!("{file}: not listed in walkthrough/README.md"));
        }
        if !text.starts_with("## Step ") {
            problems.push(format!("{file}: the first line is the step's title (`## Step N: ...`)"));
        }
        let stop = text.lines().find_map(|l| l.strip_prefix("- Stops at: `")?.strip_suffix('`'));
        match stop.map(|s| (s, haflow::walkthrough::parse_stop(s))) {
            Some((_, Some((span, _)))) if names.contains(&span) => {}
            Some((stop, _)) => problems.push(format!(
                "{file}: `Stops at: {stop}` is not a span of src/trace/names.rs (with an optional {{field=value}})"
            )),
            None => problems.push(format!("{file}: no `- Stops at: `span`` line")),
        }
        for key in ["- Article: ", "- HAProxy", "- haflow: "] {
            if !text.lines().any(|l| l.starts_with(key)) {
                problems.push(format!("{file}: no `{key}` line"));
            }
        }
        // The steps are included into chapters and printed by `haflow walkthrough`:
        // a relative link would break in one place or the other.
        if !link_targets(&text).is_empty() {
            problems.push(format!("{file}: no Markdown links in a step (name files in `code`)"));
        }
    }
    assert!(problems.is_empty(), "walkthrough problems:\n{}", problems.join("\n"));
}

#[test]
fn every_chapter_is_in_the_summary_and_every_relative_link_resolves() {
    let src = root().join("book/src");
    let summary = read(&src.join("SUMMARY.md"));
    let mut problems = Vec::new();
    for ch in markdown_files(&src) {
        let rel = ch.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        if rel != "SUMMARY.md" && !summary.contains(&format!("]({rel})")) {
            problems.push(format!("{rel}: not listed in SUMMARY.md"));
        }
        for target in link_targets(&read(&ch)) {
            if target.contains("://") || target.starts_with("mailto:") || target.starts_with('#') {
                continue;
            }
            let path = target.split('#').next().unwrap();
            if !ch.parent().unwrap().join(path).exists() {
                problems.push(format!("{rel}: link to {target} does not resolve"));
            }
        }
    }
    assert!(problems.is_empty(), "book problems:\n{}", problems.join("\n"));
}

#[test]
fn the_lab_configurations_of_the_book_are_valid() {
    let labs = root().join("book/labs");
    let mut cfgs: Vec<PathBuf> = fs::read_dir(&labs)
        .expect("book/labs exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cfg"))
        .collect();
    cfgs.sort();
    assert!(!cfgs.is_empty());
    for cfg in cfgs {
        match readcfgfile(&[&cfg], &|_| None) {
            Ok(c) => assert!(c.warnings.is_empty(), "{}: warnings {:?}", cfg.display(), c.warnings),
            Err(d) => panic!("{}: {:?}", cfg.display(), d.alerts),
        }
    }
}

/// The chapters of `SUMMARY.md`, in reading order (their paths under `book/src`).
fn reading_order() -> Vec<String> {
    let summary = read(&root().join("book/src/SUMMARY.md"));
    summary
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("](")?;
            Some(rest.split_once(')')?.0.to_string())
        })
        .collect()
}

/// The walkthrough steps (their numbers) that `text` includes.
fn steps_included(text: &str, chapter: &Path) -> BTreeSet<usize> {
    includes_of(chapter, text)
        .iter()
        .filter_map(|inc| {
            let file = inc.path.rsplit_once("walkthrough/")?.1;
            file.get(..2)?.parse().ok()
        })
        .collect()
}

/// The step numbers `text` refers to: "step 5", "steps 1 to 4", "steps 10 and 11",
/// "step 6's"; a step's own title (`## Step N:`) is not a reference.
fn step_mentions(text: &str) -> Vec<usize> {
    let re = regex::Regex::new(r"(?i)\bsteps? (\d+)(?:(?: to |, | and | or )(\d+))?").unwrap();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with("## Step ")) {
        for c in re.captures_iter(line) {
            let first: usize = c[1].parse().unwrap();
            let last: usize = c.get(2).map_or(first, |m| m.as_str().parse().unwrap());
            out.extend(first..=last.max(first));
        }
    }
    out
}

/// The book follows one connection in causal order, and so does the walkthrough: no
/// chapter (nor a step it includes) names a walkthrough step that the reader has not met
/// yet, in this chapter or an earlier one.
#[test]
fn no_chapter_refers_to_a_walkthrough_step_the_reader_has_not_met() {
    let src = root().join("book/src");
    let mut met: BTreeSet<usize> = BTreeSet::new();
    let mut problems = Vec::new();
    for rel in reading_order() {
        let ch = src.join(&rel);
        let text = read(&ch);
        met.extend(steps_included(&text, &ch));
        let mut texts = vec![(rel.clone(), text.clone())];
        for inc in includes_of(&ch, &text) {
            if inc.path.contains("walkthrough/") {
                texts.push((inc.path.clone(), read(&ch.parent().unwrap().join(&inc.path))));
            }
        }
        for (name, t) in texts {
            for n in step_mentions(&t) {
                if !met.contains(&n) {
                    problems.push(format!("{rel} (in {name}): step {n} is named before the reader meets it"));
                }
            }
        }
    }
    assert!(met.len() >= 14, "every step is met: {met:?}");
    // The steps are met in their own order.
    let mut order = Vec::new();
    for rel in reading_order() {
        let ch = src.join(&rel);
        order.extend(steps_included(&read(&ch), &ch));
    }
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "the chapters include the walkthrough's steps in order");
    assert!(problems.is_empty(), "forward references:\n{}", problems.join("\n"));
}

/// Every chapter between the start-up and the reference parts opens with its idea, has a
/// side note (the article's section, the walkthrough step) near its top, and ends with a
/// `## Versions` box.
#[test]
fn every_chapter_has_a_side_note_and_ends_with_its_versions_box() {
    let summary = read(&root().join("book/src/SUMMARY.md"));
    let part = |title: &str| summary.find(title).unwrap_or_else(|| panic!("SUMMARY.md has {title}"));
    let (from, to) = (part("# Start-up"), part("# Today"));
    let mut problems = Vec::new();
    for l in summary[from..to].lines() {
        let Some((_, rest)) = l.split_once("](") else { continue };
        let rel = rest.split_once(')').unwrap().0;
        let text = read(&root().join("book/src").join(rel));
        let first_para = text.lines().skip(1).find(|l| !l.trim().is_empty()).unwrap_or("");
        if first_para.starts_with("{{#include") || first_para.starts_with("*Side note") {
            problems.push(format!("{rel}: opens with a step or a note, not with its idea"));
        }
        let head = text.lines().take(30).collect::<Vec<_>>().join("\n");
        if !head.contains("*Side note:") {
            problems.push(format!("{rel}: no `*Side note: ...*` in its first 30 lines"));
        }
        if text.lines().rfind(|l| l.starts_with("## ")) != Some("## Versions") {
            problems.push(format!("{rel}: its last section is not `## Versions`"));
        }
    }
    assert!(problems.is_empty(), "chapter structure:\n{}", problems.join("\n"));
}

/// `book/listings/excerpts.toml`: the part of a golden listing each chapter shows.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExcerptFile {
    excerpt: Vec<Excerpt>,
}

/// One excerpt: `book/listings/NAME.txt`, made from `scenarios/golden/LISTING.txt`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Excerpt {
    name: String,
    listing: String,
    /// `[first, last]` lines, each given by the start of its text (indentation left
    /// out); each range is looked for after the previous one, `last` from `first` on.
    ranges: Vec<(String, String)>,
    /// Lines (by the start of their text) that are this chapter's spans: marked `»`.
    #[serde(default)]
    mark: Vec<String>,
    /// `[line, note]`: a line of annotation under the first line, after the previous
    /// note's, whose text starts with `line`.
    #[serde(default)]
    notes: Vec<(String, String)>,
}

/// Renders `ex` from the golden listing's text, or says why it cannot.
fn render_excerpt(ex: &Excerpt, golden: &str) -> Result<String, String> {
    let lines: Vec<&str> = golden.lines().collect();
    let starts = |i: usize, p: &str| lines[i].trim_start().starts_with(p);
    let mut spans = Vec::new();
    let mut at = 0;
    for (first, last) in &ex.ranges {
        let a = (at..lines.len())
            .find(|&i| starts(i, first))
            .ok_or(format!("no line `{first}` after line {at}"))?;
        let b =
            (a..lines.len()).find(|&i| starts(i, last)).ok_or(format!("no line `{last}` after `{first}`"))?;
        spans.push((a, b));
        at = b + 1;
    }
    let mut notes: Vec<(usize, &str)> = Vec::new();
    let mut from = spans.first().map_or(0, |s| s.0);
    for (line, note) in &ex.notes {
        let i = spans
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .find(|&i| i >= from && starts(i, line))
            .ok_or(format!("note: no line `{line}` in the excerpt (after line {})", from + 1))?;
        notes.push((i, note));
        from = i + 1;
    }
    for m in &ex.mark {
        if !spans.iter().flat_map(|&(a, b)| a..=b).any(|i| starts(i, m)) {
            return Err(format!("mark: no line `{m}` in the excerpt"));
        }
    }
    let where_ = spans
        .iter()
        .map(|(a, b)| if a == b { format!("{}", a + 1) } else { format!("{}-{}", a + 1, b + 1) })
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = format!("# scenarios/golden/{}.txt, lines {where_}", ex.listing);
    if !ex.mark.is_empty() {
        out.push_str("; » marks this chapter's spans");
    }
    out.push('\n');
    for (k, &(a, b)) in spans.iter().enumerate() {
        if k > 0 {
            out.push_str("  ⋮\n");
        }
        for (i, line) in lines.iter().enumerate().take(b + 1).skip(a) {
            let marked = ex.mark.iter().any(|m| line.trim_start().starts_with(m.as_str()));
            out.push_str(if marked { "» " } else { "  " });
            out.push_str(line);
            out.push('\n');
            for (_, note) in notes.iter().filter(|(n, _)| *n == i) {
                let indent = line.len() - line.trim_start().len();
                out.push_str(&format!("  {}  ↑ {note}\n", " ".repeat(indent)));
            }
        }
    }
    Ok(out)
}

/// The listing excerpts the chapters include (`book/listings/*.txt`) are generated from
/// the golden listings by `book/listings/excerpts.toml`: a golden listing that changes
/// makes this test fail until the excerpts are regenerated (`HAFLOW_BLESS=1`), and a
/// spec whose lines are gone from its listing fails too. basic-get's full listing is
/// included once (in how-to-use.md); every other chapter shows excerpts.
#[test]
fn listing_excerpts_are_generated_from_the_golden_listings() {
    let dir = root().join("book/listings");
    let spec: ExcerptFile =
        toml::from_str(&read(&dir.join("excerpts.toml"))).unwrap_or_else(|e| panic!("excerpts.toml: {e}"));
    let bless = std::env::var_os("HAFLOW_BLESS").is_some();
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for ex in &spec.excerpt {
        assert!(names.insert(ex.name.clone()), "two excerpts are called {}", ex.name);
        let golden = read(&root().join("scenarios/golden").join(format!("{}.txt", ex.listing)));
        let text = match render_excerpt(ex, &golden) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{} (from {}): {e}", ex.name, ex.listing));
                continue;
            }
        };
        let file = dir.join(format!("{}.txt", ex.name));
        if bless {
            fs::write(&file, &text).unwrap();
        } else if fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            problems.push(format!(
                "{}: stale, regenerate with HAFLOW_BLESS=1 cargo test --test it book::",
                file.display()
            ));
        }
    }
    // Every excerpt file has a spec, and some chapter includes it.
    let src = root().join("book/src");
    let all_text: String = markdown_files(&src).iter().map(|p| read(p)).collect();
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let Some(name) = p.file_name().unwrap().to_str().unwrap().strip_suffix(".txt").map(str::to_string)
        else {
            continue;
        };
        if !names.contains(&name) {
            problems.push(format!("book/listings/{name}.txt: no excerpt in excerpts.toml makes it"));
        }
        if !all_text.contains(&format!("../listings/{name}.txt")) {
            problems.push(format!("book/listings/{name}.txt: no chapter includes it"));
        }
    }
    // Whole golden listings: basic-get's, once, in how-to-use.md.
    for ch in markdown_files(&src) {
        let rel = ch.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        for inc in includes_of(&ch, &read(&ch)) {
            if inc.path.contains("scenarios/golden/")
                && !(rel == "how-to-use.md" && inc.path.ends_with("basic-get.txt"))
            {
                problems.push(format!("{rel}: includes the whole {}: include an excerpt", inc.path));
            }
        }
    }
    assert!(problems.is_empty(), "listing excerpts:\n{}", problems.join("\n"));
}

/// `book/glossary.toml`: what the glossary needs that the code cannot say.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GlossarySpec {
    paths: std::collections::BTreeMap<String, String>,
    family: Vec<GlossaryFamily>,
    elsewhere: std::collections::BTreeMap<String, String>,
    meaning: std::collections::BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GlossaryFamily {
    title: String,
    source: String,
    block: String,
    haproxy: String,
    about: String,
}

/// One entry: a name, its value, its doc comment.
struct Entry {
    name: String,
    value: String,
    doc: String,
}

/// The constants of `block` in `source`: `const NAME = 0x..;` (bitflags) or `NAME [= n],`
/// (an enum, valued by rank), each with the `///` lines above it.
fn entries_of(source: &str, block: &str) -> Vec<Entry> {
    let text = read(&root().join(source));
    let lines: Vec<&str> = text.lines().collect();
    let start =
        lines.iter().position(|l| l.contains(block)).unwrap_or_else(|| panic!("{source}: no `{block}`"));
    let (konst, variant) = (
        regex::Regex::new(r"^const (\w+)\s*=\s*(0x[0-9a-fA-F]+);").unwrap(),
        regex::Regex::new(r"^([A-Z][A-Z0-9_]+)(?:\s*=\s*(\d+))?,").unwrap(),
    );
    let (mut out, mut doc, mut rank) = (Vec::new(), Vec::new(), 0usize);
    for l in &lines[start + 1..] {
        let t = l.trim();
        if t.starts_with('}') {
            break;
        }
        if let Some(d) = t.strip_prefix("///") {
            doc.push(d.trim().to_string());
            continue;
        }
        if let Some(c) = konst.captures(t) {
            out.push(Entry { name: c[1].into(), value: format!("`{}`", &c[2]), doc: doc.join(" ") });
        } else if let Some(c) = variant.captures(t) {
            if let Some(n) = c.get(2) {
                rank = n.as_str().parse().unwrap();
            }
            out.push(Entry { name: c[1].into(), value: rank.to_string(), doc: doc.join(" ") });
            rank += 1;
        }
        if !t.starts_with("#[") {
            doc.clear();
        }
    }
    assert!(!out.is_empty(), "{source}: `{block}` has no entries");
    out
}

/// The span names of `src/trace/names.rs` with their constant and doc comment.
fn span_entries() -> Vec<(String, Entry)> {
    let re = regex::Regex::new(r#"^pub const (\w+): &str = "([^"]+)";"#).unwrap();
    let mut out = Vec::new();
    let mut doc = Vec::new();
    for l in read(&root().join("src/trace/names.rs")).lines() {
        let t = l.trim();
        if let Some(d) = t.strip_prefix("///") {
            doc.push(d.trim().to_string());
            continue;
        }
        if let Some(c) = re.captures(t) {
            out.push((
                c[1].to_string(),
                Entry { name: c[2].into(), value: String::new(), doc: doc.join(" ") },
            ));
        }
        doc.clear();
    }
    out
}

/// The inline code spans of a chapter and of the walkthrough steps it includes.
fn code_spans(chapter: &Path) -> Vec<String> {
    let text = read(chapter);
    let mut all = text.clone();
    for inc in includes_of(chapter, &text) {
        if inc.path.contains("walkthrough/") {
            all.push_str(&read(&chapter.parent().unwrap().join(&inc.path)));
        }
    }
    let mut out = Vec::new();
    let mut in_fence = false;
    for line in all.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            out.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
        }
    }
    out
}

/// The glossary (`book/src/glossary.md`) is generated from the code: every span name of
/// `trace::names` and every state and flag haflow models, with its value, its meaning
/// (the doc comment), the chapters that name it, haflow's file and HAProxy's. It fails
/// when the page differs from what the code gives (`HAFLOW_BLESS=1` regenerates it).
#[test]
fn glossary_is_generated_from_the_code() {
    let spec: GlossarySpec = toml::from_str(&read(&root().join("book/glossary.toml")))
        .unwrap_or_else(|e| panic!("book/glossary.toml: {e}"));
    let src = root().join("book/src");
    // The chapters in reading order, with their titles, and the code spans of each.
    let summary = read(&src.join("SUMMARY.md"));
    let chapters: Vec<(String, String, Vec<String>)> = summary
        .lines()
        .filter_map(|l| {
            let (title, rest) = l.split_once("](")?;
            let title = title.rsplit_once('[')?.1.to_string();
            let rel = rest.split_once(')')?.0.to_string();
            (rel != "glossary.md").then(|| {
                let spans = code_spans(&src.join(&rel));
                (rel, title, spans)
            })
        })
        .collect();
    let used_in = |name: &str| -> String {
        let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let hits: Vec<String> = chapters
            .iter()
            .filter(|(_, _, spans)| {
                spans.iter().any(|s| s.strip_prefix(name).is_some_and(|rest| !rest.starts_with(is_ident)))
            })
            .map(|(rel, title, _)| format!("[{}]({rel})", title.replace('`', "")))
            .collect();
        if hits.is_empty() { "—".into() } else { hits.join(", ") }
    };
    let esc = |s: &str| s.replace('|', "\\|");
    let mut problems = Vec::new();
    let mut out = String::from(
        "# Glossary and index\n\n\
         <!-- Generated by tests/it/book.rs (glossary_is_generated_from_the_code) from the code and\n\
         book/glossary.toml. Do not edit: HAFLOW_BLESS=1 cargo test --test it book::glossary -->\n\n\
         Every span name of haflow's traces and every state and flag haflow models, with its\n\
         value, its meaning (the doc comment in haflow's code), the chapters that name it, the\n\
         haflow file that defines or opens it, and where HAProxy has it (tag and file). This\n\
         page is generated from the code by a test, so it cannot go stale.\n",
    );
    // Span names.
    out.push_str(
        "\n## Span names\n\nOne span per call of the HAProxy function of the same name \
         (`src/trace/names.rs`).\n\n| name | HAProxy function | chapters | haflow | HAProxy |\n|---|---|---|---|---|\n",
    );
    let file_re = regex::Regex::new(r"^([a-z_0-9]+\.[ch]):([a-z_0-9]+)\(\)").unwrap();
    let rs_files: Vec<(String, String)> = {
        let mut v = Vec::new();
        let mut stack = vec![root().join("src")];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("trace/names.rs") {
                    v.push((p.strip_prefix(root()).unwrap().to_string_lossy().to_string(), read(&p)));
                }
            }
        }
        v.sort();
        v
    };
    for (konst, e) in span_entries() {
        let haproxy = match (spec.elsewhere.get(&e.name), file_re.captures(&e.doc)) {
            (Some(w), _) => w.clone(),
            (None, Some(c)) => {
                let tag = if e.doc.contains(" in 1.5.0") {
                    "v1.5.0"
                } else if e.doc.contains(" in 2.6") {
                    "v2.6.0"
                } else {
                    "v1.5-dev8"
                };
                let path = spec.paths.get(&c[1]).cloned().unwrap_or_else(|| format!("src/{}", &c[1]));
                format!("{tag}:{path}")
            }
            (None, None) => {
                problems.push(format!("span {}: its doc comment names no `file.c:function()`", e.name));
                continue;
            }
        };
        let pat = regex::Regex::new(&format!(r"names::{konst}\b")).unwrap();
        let haflow: Vec<String> = rs_files
            .iter()
            .filter(|(p, t)| p.starts_with("src/haproxy/") && pat.is_match(t))
            .map(|(p, _)| format!("`{p}`"))
            .collect();
        let haflow = if haflow.is_empty() { "—".to_string() } else { haflow.join(", ") };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            e.name,
            esc(&e.doc),
            used_in(&e.name),
            haflow,
            haproxy
        ));
    }
    // States and flags.
    for fam in &spec.family {
        out.push_str(&format!(
            "\n## {}\n\n{} haflow: `{}`; HAProxy: {}.\n\n| name | value | meaning | chapters | HAProxy |\n|---|---|---|---|---|\n",
            fam.title, fam.about, fam.source, fam.haproxy
        ));
        for e in entries_of(&fam.source, &fam.block) {
            let meaning = spec.meaning.get(&e.name).cloned().unwrap_or(e.doc.clone());
            if meaning.is_empty() {
                problems.push(format!("{}: {} has no doc comment", fam.source, e.name));
            }
            let haproxy = spec.elsewhere.get(&e.name).cloned().unwrap_or_else(|| fam.haproxy.clone());
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                e.name,
                e.value,
                esc(&meaning),
                used_in(&e.name),
                haproxy
            ));
        }
    }
    // Every override names something the code has.
    for name in spec.elsewhere.keys().chain(spec.meaning.keys()) {
        if !out.contains(&format!("| `{name}` |")) {
            problems.push(format!("book/glossary.toml names {name}, which the code does not have"));
        }
    }
    assert!(problems.is_empty(), "glossary:\n{}", problems.join("\n"));
    let page = src.join("glossary.md");
    if std::env::var_os("HAFLOW_BLESS").is_some() {
        fs::write(&page, &out).unwrap();
    } else {
        assert!(
            fs::read_to_string(&page).ok().as_deref() == Some(out.as_str()),
            "book/src/glossary.md differs from what the code gives: HAFLOW_BLESS=1 cargo test --test it book::glossary"
        );
    }
    // Every span name is in it.
    for name in span_names() {
        assert!(out.contains(&format!("| `{name}` |")), "the glossary lists {name}");
    }
}

/// `book/exercises.toml`: predict-then-run exercises, each one change to a scenario.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExerciseFile {
    exercise: Vec<Exercise>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Exercise {
    id: String,
    chapter: String,
    /// The scenario it changes (`scenarios/BASE.toml`).
    base: String,
    /// `[old, new]` text replacements in the scenario file; each `old` must occur once.
    change: Vec<(String, String)>,
    /// Traffic expectations to keep (`expect_close`: a step that waits for the proxy to
    /// close); the others are removed.
    #[serde(default)]
    keep: Vec<String>,
    /// What haflow prints for it (its report, logs and listing): each text must be in
    /// the output, and in the chapter's folded answer; `!text` must not be in the output;
    /// `N×text` must be in it exactly N times.
    expect: Vec<String>,
}

/// The scenario file of exercise `ex`: its base with the change applied, its own name,
/// and no expectations (the reader predicts them; the test checks the answer).
fn exercise_toml(ex: &Exercise) -> Result<String, String> {
    let base = read(&root().join("scenarios").join(format!("{}.toml", ex.base)));
    let mut s = base.clone();
    for (old, new) in &ex.change {
        match s.matches(old.as_str()).count() {
            1 => s = s.replacen(old.as_str(), new, 1),
            n => return Err(format!("`{old}` occurs {n} times in scenarios/{}.toml", ex.base)),
        }
    }
    // Its own name; the base's description and expectations go.
    let mut out = String::new();
    let mut skip_about = false;
    let mut in_expect = false;
    for line in s.lines() {
        if skip_about {
            skip_about = !line.ends_with("\"\"\"");
            continue;
        }
        if line.starts_with("name = ") && !out.contains("\nname = ") && !out.starts_with("name = ") {
            out.push_str(&format!("name = \"{}\"\n", ex.id));
            continue;
        }
        if line.starts_with("about = \"\"\"") {
            skip_about = true;
            out.push_str(&format!(
                "about = \"Exercise {} of book/src/{}: predict, then run.\"\n",
                ex.id, ex.chapter
            ));
            continue;
        }
        if line.starts_with('[') {
            in_expect = line == "[expect]";
        }
        if in_expect || (line.starts_with("expect_") && !ex.keep.iter().any(|k| line.starts_with(k.as_str())))
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    let changes: Vec<String> = ex
        .change
        .iter()
        .map(|(o, n)| {
            // One comment line per change: the lines of a text joined by " ⏎ ".
            let flat = |t: &str| t.trim().lines().map(str::trim).collect::<Vec<_>>().join(" ⏎ ");
            match (flat(o), flat(n)) {
                (o, n) if n.is_empty() => format!("#   removed `{o}`"),
                (o, n) => format!("#   `{o}` -> `{n}`"),
            }
        })
        .collect();
    Ok(format!(
        "# Exercise {} (book/src/{}), generated by tests/it/book.rs from scenarios/{}.toml\n\
         # (do not edit; HAFLOW_BLESS=1 cargo test --test it book::exercise regenerates it).\n\
         # The change:\n{}\n{}",
        ex.id,
        ex.chapter,
        ex.base,
        changes.join("\n"),
        out.trim_end().to_string() + "\n"
    ))
}

fn exercises() -> Vec<Exercise> {
    let spec: ExerciseFile = toml::from_str(&read(&root().join("book/exercises.toml")))
        .unwrap_or_else(|e| panic!("book/exercises.toml: {e}"));
    spec.exercise
}

/// The text `!x` and `N×x` expectations are about.
fn expect_text(e: &str) -> &str {
    if let Some(t) = e.strip_prefix('!') {
        return t;
    }
    match e.split_once('×') {
        Some((n, t)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => t,
        _ => e,
    }
}

/// Every exercise's scenario file is generated from its base (`book/exercises/ID.toml`),
/// its chapter has its folded answer (`<!-- exercise: ID -->` inside `<details>`), the
/// answer says what the exercise expects, and every chapter from the start-up to the end of
/// the connection has at least two exercises. (Running them is the next test.)
#[test]
fn exercises_are_generated_and_answered_in_their_chapters() {
    let dir = root().join("book/exercises");
    let bless = std::env::var_os("HAFLOW_BLESS").is_some();
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for ex in exercises() {
        assert!(ids.insert(ex.id.clone()), "two exercises are called {}", ex.id);
        match exercise_toml(&ex) {
            Ok(text) => {
                if let Err(e) = haflow::scenario::spec::Scenario::parse(&text) {
                    problems.push(format!("{}: the generated scenario does not parse: {e}", ex.id));
                }
                let file = dir.join(format!("{}.toml", ex.id));
                if bless {
                    fs::create_dir_all(&dir).unwrap();
                    fs::write(&file, &text).unwrap();
                } else if fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
                    problems.push(format!("{}: stale, regenerate with HAFLOW_BLESS=1", file.display()));
                }
            }
            Err(e) => problems.push(format!("{}: {e}", ex.id)),
        }
        let chapter = read(&root().join("book/src").join(&ex.chapter));
        let marker = format!("<!-- exercise: {} -->", ex.id);
        let Some(at) = chapter.find(&marker) else {
            problems.push(format!("{}: no `{marker}` in {}", ex.id, ex.chapter));
            continue;
        };
        let (before, after) = chapter.split_at(at);
        let answer = &after[..after.find("</details>").unwrap_or(0)];
        if before.rfind("<details>").is_none_or(|d| before[d..].contains("</details>")) || answer.is_empty() {
            problems.push(format!("{}: the marker is not inside a folded answer", ex.id));
        }
        if !chapter.contains(&format!("book/exercises/{}.toml", ex.id)) {
            problems.push(format!("{}: {} does not show the command that runs it", ex.id, ex.chapter));
        }
        for e in ex.expect.iter().filter(|e| !e.starts_with('!')) {
            if !answer.contains(expect_text(e)) {
                problems.push(format!("{}: the answer does not say `{}`", ex.id, expect_text(e)));
            }
        }
    }
    // No stray files.
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            if !name.strip_suffix(".toml").is_some_and(|n| ids.contains(n)) {
                problems.push(format!("book/exercises/{name}: no exercise in book/exercises.toml makes it"));
            }
        }
    }
    // At least two per chapter: every page from the map to the Perfetto chapter (the
    // how-to, the prerequisites and the glossary are not chapters).
    let summary = read(&root().join("book/src/SUMMARY.md"));
    let (from, to) = (summary.find("# The map").unwrap(), summary.find("# Reference").unwrap());
    let per_chapter = exercises().into_iter().fold(std::collections::BTreeMap::new(), |mut m, e| {
        *m.entry(e.chapter).or_insert(0) += 1;
        m
    });
    for l in summary[from..to].lines() {
        let Some((_, rest)) = l.split_once("](") else { continue };
        let rel = rest.split_once(')').unwrap().0;
        if per_chapter.get(rel).copied().unwrap_or(0) < 2 {
            problems.push(format!("{rel}: fewer than two exercises"));
        }
    }
    assert!(problems.is_empty(), "exercises:\n{}", problems.join("\n"));
}

/// Each exercise, run: what haflow prints (the clients' report, the log lines and the
/// call-flow listing) is what its folded answer says.
#[test]
fn exercise_answers_are_what_haflow_prints() {
    let all = exercises();
    let problems = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(ex) = all.get(i) else { break };
                    let sc = haflow::scenario::spec::Scenario::parse(&exercise_toml(ex).unwrap()).unwrap();
                    let out = match haflow::scenario::runner::run(
                        &sc,
                        haflow::scenario::runner::RunOptions::default(),
                    ) {
                        Ok(o) => o,
                        Err(e) => {
                            problems.lock().unwrap().push(format!("{}: does not run: {e}", ex.id));
                            continue;
                        }
                    };
                    let text = format!("{}\n{}\n{}", out.report.join("\n"), out.logs.join("\n"), out.listing);
                    for e in &ex.expect {
                        let t = expect_text(e);
                        let n = text.matches(t).count();
                        let ok = if e.starts_with('!') {
                            n == 0
                        } else if t.len() != e.len() {
                            e.split_once('×').unwrap().0.parse::<usize>().unwrap() == n
                        } else {
                            n > 0
                        };
                        if !ok {
                            problems
                                .lock()
                                .unwrap()
                                .push(format!("{}: `{e}` does not hold ({n} found) in:\n{text}", ex.id));
                        }
                    }
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(problems.is_empty(), "exercises:\n{}", problems.join("\n\n"));
}
