//! Span trees rebuilt from capture records: one tree per session, printable as the
//! call-flow listing the book, the walkthrough and the golden-file tests show.

use std::collections::HashMap;
use std::time::Duration;

use crate::trace::capture::{Field2, Record};

/// One span in a rebuilt tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The HAProxy function name.
    pub name: &'static str,
    /// Fields at creation, then updates appended in order.
    pub fields: Vec<Field2>,
    /// Creation time.
    pub start: Duration,
    /// Close time, once closed.
    pub end: Option<Duration>,
    /// Children in creation order.
    pub children: Vec<Node>,
}

impl Node {
    /// The last value recorded for `field`.
    pub fn field(&self, field: &str) -> Option<&str> {
        self.fields.iter().rev().find(|(k, _)| *k == field).map(|(_, v)| v.as_str())
    }

    /// Every span name in the tree, depth-first (pre-order).
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = vec![self.name];
        for c in &self.children {
            out.extend(c.names());
        }
        out
    }

    /// The first span named `name` in this tree (pre-order).
    pub fn find(&self, name: &str) -> Option<&Node> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// Every span named `name` in this tree, in pre-order; a match's own subtree is not
    /// searched (its listing already shows it).
    pub fn find_all<'a>(&'a self, name: &str, out: &mut Vec<&'a Node>) {
        if self.name == name {
            out.push(self);
            return;
        }
        for c in &self.children {
            c.find_all(name, out);
        }
    }
}

/// Builds trees from records. Spans whose parent is unknown become roots.
#[derive(Debug, Default)]
pub struct TreeBuilder {
    open: HashMap<u64, (Option<u64>, Node)>,
    /// Children closed before their parent, kept until the parent closes.
    pending: HashMap<u64, Vec<Node>>,
    /// At most this many closed children kept per open span (`None`: all). A span that
    /// lives as long as the process (`run_poll_loop`) would otherwise collect every loop
    /// turn for ever.
    child_limit: Option<usize>,
    /// Closed children dropped to keep within `child_limit`, oldest first.
    pub dropped: u64,
    /// Completed roots, in close order.
    pub roots: Vec<Node>,
}

impl TreeBuilder {
    /// A builder that keeps at most `limit` closed children per open span, for a feed that
    /// never ends (the demo); the oldest go first, counted in `dropped`.
    pub fn with_child_limit(limit: usize) -> TreeBuilder {
        TreeBuilder { child_limit: Some(limit), ..TreeBuilder::default() }
    }

    /// Feeds one record.
    pub fn push(&mut self, r: &Record) {
        match r {
            Record::New { id, parent, name, fields, at, .. } => {
                let node = Node { name, fields: fields.clone(), start: *at, end: None, children: Vec::new() };
                self.open.insert(*id, (*parent, node));
            }
            Record::Update { id, fields } => {
                if let Some((_, n)) = self.open.get_mut(id) {
                    n.fields.extend(fields.iter().cloned());
                }
            }
            Record::Close { id, at } => {
                let Some((parent, mut node)) = self.open.remove(id) else { return };
                node.end = Some(*at);
                if let Some(mut kids) = self.pending.remove(id) {
                    kids.sort_by_key(|k| k.start);
                    node.children = kids;
                }
                match parent.filter(|p| self.open.contains_key(p)) {
                    Some(p) => {
                        let kids = self.pending.entry(p).or_default();
                        kids.push(node);
                        if let Some(limit) = self.child_limit
                            && kids.len() > limit
                        {
                            let excess = kids.len() - limit;
                            kids.drain(..excess);
                            self.dropped += excess as u64;
                        }
                    }
                    None => self.roots.push(node),
                }
            }
            Record::Event { .. } => {}
        }
    }

    /// Spans held while they wait for their parent or their own close: what this builder
    /// costs in memory, besides the finished roots.
    pub fn held(&self) -> usize {
        fn count(n: &Node) -> usize {
            1 + n.children.iter().map(count).sum::<usize>()
        }
        self.open.len() + self.pending.values().flatten().map(count).sum::<usize>()
    }

    /// Feeds many records.
    pub fn extend<'a>(&mut self, rs: impl IntoIterator<Item = &'a Record>) {
        for r in rs {
            self.push(r);
        }
    }

    /// Completed roots named `name` (e.g. every finished `session`).
    pub fn roots_named(&self, name: &str) -> Vec<&Node> {
        self.roots.iter().filter(|n| n.name == name).collect()
    }
}

/// Fields shown in call-flow listings: the state changes, not what varies from run to run
/// (fds, byte counts, ids, addresses).
pub const LISTING_FIELDS: &[&str] = &[
    "an", "woken", "si1_from", "si1_to", "from", "to", "status", "action", "backend", "server", "term",
    "keep_srv", "reason", "pool", "side", "request", "algo", "skip", "end",
];

/// The call-flow listing of a tree: one line per span, indented by depth, with the fields
/// named in `keep` (others are left out so listings stay stable from run to run).
pub fn listing(root: &Node, keep: &[&str]) -> String {
    write_listing(root, keep, false)
}

/// The listing with each span's duration at the end of its line (`[12us]`; `[open]` for
/// a span not closed): for reading one run, not for comparing runs.
pub fn timed_listing(root: &Node, keep: &[&str]) -> String {
    write_listing(root, keep, true)
}

fn write_listing(root: &Node, keep: &[&str], timed: bool) -> String {
    fn walk(n: &Node, depth: usize, keep: &[&str], timed: bool, out: &mut String) {
        out.push_str(&"  ".repeat(depth));
        out.push_str(n.name);
        let mut shown: Vec<(&str, &str)> = Vec::new();
        for (k, v) in &n.fields {
            if keep.contains(k) {
                match shown.iter_mut().find(|(sk, _)| sk == k) {
                    Some(e) => e.1 = v,
                    None => shown.push((k, v)),
                }
            }
        }
        if !shown.is_empty() {
            out.push_str(" {");
            out.push_str(&shown.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "));
            out.push('}');
        }
        if timed {
            match n.end {
                Some(end) => out.push_str(&format!(" [{}]", duration(end.saturating_sub(n.start)))),
                None => out.push_str(" [open]"),
            }
        }
        out.push('\n');
        for c in &n.children {
            walk(c, depth + 1, keep, timed, out);
        }
    }
    let mut out = String::new();
    walk(root, 0, keep, timed, &mut out);
    out
}

/// A span's duration, short: `850ns`, `12us`, `1.25ms`, `2.50s`.
pub fn duration(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0..1000 => format!("{ns}ns"),
        1000..1_000_000 => format!("{}us", ns / 1000),
        1_000_000..1_000_000_000 => format!("{:.2}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &'static str, start: u64, children: Vec<Node>) -> Node {
        Node { name, fields: Vec::new(), start: Duration::from_millis(start), end: None, children }
    }

    fn new(id: u64, parent: Option<u64>, name: &'static str) -> Record {
        Record::New { id, parent, name, level: tracing::Level::DEBUG, fields: Vec::new(), at: Duration::ZERO }
    }

    fn close(id: u64) -> Record {
        Record::Close { id, at: Duration::ZERO }
    }

    #[test]
    fn a_span_that_never_closes_keeps_only_its_latest_children() {
        let mut tb = TreeBuilder::with_child_limit(3);
        tb.push(&new(1, None, "run_poll_loop"));
        for id in 2..12 {
            tb.push(&new(id, Some(1), "_do_poll"));
            tb.push(&close(id));
        }
        assert_eq!(tb.dropped, 7);
        tb.push(&close(1));
        let kept: Vec<Duration> = tb.roots[0].children.iter().map(|c| c.start).collect();
        assert_eq!(kept.len(), 3, "the latest three turns");
        let unbounded = {
            let mut tb = TreeBuilder::default();
            tb.push(&new(1, None, "run_poll_loop"));
            for id in 2..12 {
                tb.push(&new(id, Some(1), "_do_poll"));
                tb.push(&close(id));
            }
            tb.push(&close(1));
            tb.roots[0].children.len()
        };
        assert_eq!(unbounded, 10, "listings of finite runs keep everything");
    }

    #[test]
    fn find_all_collects_nested_matches_in_pre_order_without_entering_them() {
        let tree = node(
            "run_poll_loop",
            0,
            vec![
                node("_do_poll", 1, vec![node("listener_full", 2, vec![node("listener_full", 3, vec![])])]),
                node("process_runnable_tasks", 4, vec![node("resume_listener", 5, vec![])]),
                node("_do_poll", 6, vec![node("listener_full", 7, vec![])]),
            ],
        );
        let mut found = Vec::new();
        tree.find_all("listener_full", &mut found);
        let starts: Vec<u128> = found.iter().map(|n| n.start.as_millis()).collect();
        assert_eq!(starts, [2, 7], "two matches, the nested one is part of the first's listing");
        let mut none = Vec::new();
        tree.find_all("session", &mut none);
        assert!(none.is_empty());
    }
}
