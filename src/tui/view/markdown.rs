//! Markdown for the terminal: the walkthrough's step texts (`walkthrough/NN-*.md`) as
//! styled lines wrapped to a pane's width.
//!
//! The steps use a small part of Markdown, and this renders exactly that part: `#`
//! headings, `- ` bullet items (with continuation lines), paragraphs whose source lines
//! are joined and re-wrapped, `` `code` `` spans (HAProxy's function and state names,
//! highlighted), `**bold**`, and fenced code blocks kept verbatim. Wrapping is done here
//! rather than by ratatui's `Paragraph`, so that the caller knows how many lines a text
//! takes (to scroll it) and so that continuation lines of a bullet stay indented.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// How an atom joins the atom before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// After a space; the line may break there.
    Space,
    /// Directly, and the line may not break there (`` `code` `` followed by `,`).
    Glued,
    /// Directly, but the line may break there (after a `|` in a list of flags).
    Break,
}

/// A piece of text in one style.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    /// The text (no spaces at its ends).
    pub text: String,
    /// Its style.
    pub style: Style,
    /// How it joins the atom before it.
    pub join: Join,
}

impl Atom {
    /// An atom.
    pub fn new(text: impl Into<String>, style: Style, join: Join) -> Atom {
        Atom { text: text.into(), style, join }
    }
}

/// The style of `` `code` `` spans.
pub fn code_style() -> Style {
    Style::default().fg(Color::Cyan)
}

fn width(s: &str) -> usize {
    Span::raw(s).width()
}

/// Wraps `atoms` into lines at most `max` cells wide: the first line starts with `first`
/// (a bullet, say), the next ones with `indent` spaces. Breaks go at spaces and `Break`
/// joins; a word wider than a whole line is cut.
pub fn wrap(atoms: &[Atom], max: usize, first: Span<'static>, indent: usize) -> Vec<Line<'static>> {
    // Words: runs of atoms glued together.
    let mut words: Vec<&[Atom]> = Vec::new();
    let mut from = 0;
    for i in 1..=atoms.len() {
        if i == atoms.len() || atoms[i].join != Join::Glued {
            if from < i {
                words.push(&atoms[from..i]);
            }
            from = i;
        }
    }
    let max = max.max(indent + 1);
    let mut out = Vec::new();
    let mut cur_w = first.width();
    let mut cur: Vec<Span<'static>> = vec![first];
    let mut empty = true;
    let new_line = |cur: &mut Vec<Span<'static>>, cur_w: &mut usize, out: &mut Vec<Line<'static>>| {
        out.push(Line::from(std::mem::take(cur)));
        cur.push(Span::raw(" ".repeat(indent)));
        *cur_w = indent;
    };
    for word in words {
        let ww: usize = word.iter().map(|a| width(&a.text)).sum();
        let space = usize::from(word[0].join == Join::Space && !empty);
        if !empty && cur_w + space + ww > max {
            new_line(&mut cur, &mut cur_w, &mut out);
        } else if space == 1 {
            cur.push(Span::raw(" "));
            cur_w += 1;
        }
        if cur_w + ww <= max {
            cur.extend(word.iter().map(|a| Span::styled(a.text.clone(), a.style)));
            cur_w += ww;
        } else {
            // Wider than a line: cut it wherever the line is full.
            for a in word {
                let mut piece = String::new();
                for c in a.text.chars() {
                    let cw = width(c.encode_utf8(&mut [0; 4]));
                    if cur_w + cw > max {
                        cur.push(Span::styled(std::mem::take(&mut piece), a.style));
                        new_line(&mut cur, &mut cur_w, &mut out);
                    }
                    piece.push(c);
                    cur_w += cw;
                }
                cur.push(Span::styled(piece, a.style));
            }
        }
        empty = false;
    }
    out.push(Line::from(cur));
    out
}

/// The atoms of one paragraph of Markdown text: words, with `` `code` `` and `**bold**`
/// styled over `base`.
pub fn inline(text: &str, base: Style) -> Vec<Atom> {
    let mut atoms = Vec::new();
    let mut word = String::new();
    let (mut code, mut bold, mut spaced) = (false, false, false);
    let style = |code: bool, bold: bool| {
        let s = if code { base.patch(code_style()) } else { base };
        if bold { s.add_modifier(Modifier::BOLD) } else { s }
    };
    let mut flush = |word: &mut String, spaced: &mut bool, st: Style| {
        if !word.is_empty() {
            let join = if *spaced { Join::Space } else { Join::Glued };
            atoms.push(Atom::new(std::mem::take(word), st, join));
            *spaced = false;
        }
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '`' {
            flush(&mut word, &mut spaced, style(code, bold));
            code = !code;
        } else if !code && c == '*' && chars.peek() == Some(&'*') {
            chars.next();
            flush(&mut word, &mut spaced, style(code, bold));
            bold = !bold;
        } else if c.is_whitespace() {
            flush(&mut word, &mut spaced, style(code, bold));
            spaced = true;
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut spaced, style(code, bold));
    atoms
}

/// A block being gathered from source lines.
enum Block {
    Paragraph(String),
    Item(String),
}

fn push_text(b: &mut String, line: &str) {
    if !b.is_empty() {
        b.push(' ');
    }
    b.push_str(line.trim());
}

fn flush_block(block: &mut Option<Block>, max: usize, out: &mut Vec<Line<'static>>) {
    match block.take() {
        Some(Block::Paragraph(t)) => out.extend(wrap(&inline(&t, Style::default()), max, Span::raw(""), 0)),
        Some(Block::Item(t)) => {
            // `- Stops at: ...`: the label before the colon reads as one.
            let mut atoms = Vec::new();
            let rest = match t.split_once(": ") {
                Some((label, rest)) if label.len() <= 24 && !label.contains('`') => {
                    atoms.extend(inline(&format!("{label}:"), Style::default().add_modifier(Modifier::BOLD)));
                    rest
                }
                _ => t.as_str(),
            };
            let mut more = inline(rest, Style::default());
            if !atoms.is_empty()
                && let Some(a) = more.first_mut()
            {
                a.join = Join::Space;
            }
            atoms.extend(more);
            out.extend(wrap(&atoms, max, Span::styled("• ", Style::default().fg(Color::Yellow)), 2));
        }
        None => {}
    }
}

/// `md` as lines at most `max` cells wide.
pub fn render(md: &str, max: usize) -> Vec<Line<'static>> {
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut block: Option<Block> = None;
    let mut fenced = false;
    let blank = |out: &mut Vec<Line<'static>>| {
        if out.last().is_some_and(|l| l.width() > 0) {
            out.push(Line::default());
        }
    };
    for line in md.lines() {
        if fenced {
            if line.trim_start().starts_with("```") {
                fenced = false;
            } else {
                // Code keeps its layout; what is too wide is cut by the pane.
                out.push(Line::styled(format!("  {line}"), code_style()));
            }
            continue;
        }
        let t = line.trim();
        if t.starts_with("```") {
            flush_block(&mut block, max, &mut out);
            fenced = true;
        } else if t.is_empty() {
            flush_block(&mut block, max, &mut out);
            blank(&mut out);
        } else if let Some(h) = t.strip_prefix('#') {
            flush_block(&mut block, max, &mut out);
            let style = Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD);
            out.extend(wrap(&inline(h.trim_start_matches('#').trim(), style), max, Span::raw(""), 0));
        } else if let Some(item) = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")) {
            flush_block(&mut block, max, &mut out);
            block = Some(Block::Item(item.trim().to_string()));
        } else {
            // A line that follows a paragraph or an item continues it.
            match &mut block {
                Some(Block::Paragraph(b)) | Some(Block::Item(b)) => push_text(b, t),
                None => block = Some(Block::Paragraph(t.to_string())),
            }
        }
    }
    flush_block(&mut block, max, &mut out);
    while out.last().is_some_and(|l| l.width() == 0) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect()).collect()
    }

    #[test]
    fn paragraphs_are_joined_and_rewrapped_and_code_is_highlighted() {
        let md = "## Step 9: choosing a server\n\nThe server side is `si[1]`, born\n`SI_ST_INI`. When the\nrequest **arrives**, it moves.\n";
        let lines = render(md, 24);
        assert_eq!(
            text(&lines),
            [
                "Step 9: choosing a",
                "server",
                "",
                "The server side is",
                "si[1], born SI_ST_INI.",
                "When the request",
                "arrives, it moves."
            ]
            .map(String::from)
        );
        let code = lines[4].spans.iter().find(|s| s.content == "si[1]").unwrap();
        assert_eq!(code.style.fg, Some(Color::Cyan));
        // `SI_ST_INI` and its full stop stay together.
        assert!(text(&lines)[4].ends_with("SI_ST_INI."));
        let bold = lines[6].spans.iter().find(|s| s.content == "arrives").unwrap();
        assert!(bold.style.add_modifier.contains(Modifier::BOLD));
        let heading = lines[0].spans.iter().find(|s| s.content == "Step").unwrap();
        assert!(heading.style.add_modifier.contains(Modifier::BOLD), "the heading is bold");
    }

    #[test]
    fn bullets_get_a_bold_label_and_indented_continuation_lines() {
        let md = "- Stops at: `tcp_connect_server`\n- HAProxy (1.5-dev8): `src/session.c`: `sess_prepare_conn_req()`,\n  `sess_update_stream_int()`\n";
        let lines = render(md, 30);
        assert_eq!(
            text(&lines),
            [
                "• Stops at: tcp_connect_server",
                "• HAProxy (1.5-dev8):",
                "  src/session.c:",
                "  sess_prepare_conn_req(),",
                "  sess_update_stream_int()"
            ]
            .map(String::from)
        );
        assert!(lines[0].spans[1].style.add_modifier.contains(Modifier::BOLD), "{:?}", lines[0]);
    }

    #[test]
    fn words_wider_than_a_line_are_cut_and_breaks_may_follow_a_bar() {
        let atoms = vec![
            Atom::new("flags", Style::default(), Join::Space),
            Atom::new("BF_READ_NULL|", Style::default(), Join::Space),
            Atom::new("BF_SHUTR", Style::default(), Join::Break),
        ];
        assert_eq!(text(&wrap(&atoms, 21, Span::raw("  "), 4)), ["  flags BF_READ_NULL|", "    BF_SHUTR"]);
        let long = [Atom::new("abcdefghij", Style::default(), Join::Space)];
        assert_eq!(text(&wrap(&long, 4, Span::raw(""), 0)), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn fenced_code_is_kept_verbatim() {
        let lines = render("text\n\n```\n  a   b\n```\nafter\n", 40);
        assert_eq!(text(&lines), ["text", "", "    a   b", "after"]);
        assert_eq!(lines[2].style.fg, Some(Color::Cyan));
    }
}
