//! Maps at run time: a map file read once and shared by every converter naming it, and the
//! stats socket's `show map`, `add map` (with a payload), `set map`, `del map` and
//! `clear map` changing what those converters find, with HAProxy 2.6's answers (checked
//! against `haproxy` 2.6.12 with the same configuration and commands). Each test asserts
//! the CLI's bytes and the responses of real requests, and ends with the proxy idle.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use haflow::scenario::client;
use haflow::scenario::proxy::RunningProxy;

use crate::util::*;

/// A proxy whose frontend answers each request with what two converters (`map_str` and
/// `map_beg`, one file) and a third on another file find for the path.
struct Maps {
    p: RunningProxy,
    dir: PathBuf,
    sock: PathBuf,
    /// The file both `map_str` and `map_beg` use.
    paths: String,
}

impl Drop for Maps {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start() -> Maps {
    let dir = tmpdir("maps");
    let paths = dir.join("paths.map");
    std::fs::write(&paths, "# path  target\n/old /new\n\n/api   backend-api\n/old/x second-old\n").unwrap();
    std::fs::write(dir.join("other.map"), "/other yes\n").unwrap();
    let (d, m) = (dir.display(), paths.display());
    let cfg = format!(
        "global\n    stats socket {d}/admin.sock mode 600 level admin\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:0\n\
         \x20   http-request return status 200 content-type text/plain lf-string \"str=%[path,map_str({m},none)] beg=%[path,map_beg({m},none)] other=%[path,map_str({d}/other.map,none)]\"\n"
    );
    let p = proxy(&cfg, &[]);
    Maps { p, sock: dir.join("admin.sock"), paths: paths.display().to_string(), dir }
}

/// What the converters found for `path`.
fn lookup(fe: SocketAddr, path: &str) -> String {
    let r = client::get(fe, path).expect("a response");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// `show map <file>`'s lines with each entry's `0x...` id replaced by `ID`, after checking
/// that the ids are hexadecimal addresses.
fn entries(sock: &Path, map: &str) -> Vec<String> {
    let out = cli(sock, &format!("show map {map}\n"));
    assert!(out.ends_with("\n\n") || out == "\n", "an answer ends with an empty line: {out:?}");
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (id, rest) = l.split_once(' ').unwrap_or_else(|| panic!("an id and an entry: {l:?}"));
            let hex = id.strip_prefix("0x").unwrap_or_else(|| panic!("a 0x id: {l:?}"));
            assert!(hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{l:?}");
            format!("ID {rest}")
        })
        .collect()
}

#[test]
fn show_map_lists_a_file_shared_by_two_converters_once_with_its_entries_in_file_order() {
    let t = start();
    let all = cli(&t.sock, "show map\n");
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines[0], "# id (file) description");
    assert_eq!(lines.len(), 4, "a header, one line per file, the empty line: {all:?}");
    let shared = lines[1];
    assert!(
        shared.starts_with(&format!("0 ({0}) pattern loaded from file '{0}' used by map at file '", t.paths))
    );
    assert!(shared.contains(" line 10, by map at file '"), "both users, by their line: {shared}");
    // 2.6 counts one entry per pattern compiled, here 3 lines in 2 expressions.
    assert!(shared.ends_with(" line 10. curr_ver=0 next_ver=0 entry_cnt=6"), "{shared}");
    assert!(lines[2].starts_with("1 ("), "{}", lines[2]);
    assert!(lines[2].ends_with("entry_cnt=1"), "{}", lines[2]);
    let expected = ["ID /old /new", "ID /api backend-api", "ID /old/x second-old"];
    assert_eq!(entries(&t.sock, &t.paths), expected);
    assert_eq!(entries(&t.sock, "#0"), expected, "a map is also named by its id");
    assert_eq!(entries(&t.sock, "@0 #0"), expected, "version 0 is the current one");
    assert_eq!(cli(&t.sock, "show map @1 #0\n"), "\n", "no other version has entries");
    for unknown in ["/nope.map", "#7", "#x"] {
        assert_eq!(
            cli(&t.sock, &format!("show map {unknown}\n")),
            "Unknown map identifier. Please use #<id> or <file>.\n\n"
        );
    }
    assert_eq!(lookup(t.p.addr("fe"), "/old/x"), "str=second-old beg=/new other=none");
    assert_idle(&t.p);
}

#[test]
fn add_set_del_and_clear_map_change_what_every_converter_of_the_file_finds() {
    let t = start();
    let fe = t.p.addr("fe");
    assert_eq!(lookup(fe, "/new"), "str=none beg=none other=none");

    assert_eq!(cli(&t.sock, &format!("add map {} /new added\n", t.paths)), "\n");
    assert_eq!(lookup(fe, "/new"), "str=added beg=added other=none", "both converters see it");

    assert_eq!(cli(&t.sock, &format!("set map {} /new changed\n", t.paths)), "\n");
    assert_eq!(lookup(fe, "/new/page"), "str=none beg=changed other=none");

    // `del map <key>` removes every entry with that key; the other file is untouched.
    assert_eq!(cli(&t.sock, &format!("add map {} /new again\n", t.paths)), "\n");
    assert_eq!(cli(&t.sock, &format!("del map {} /new\n", t.paths)), "\n");
    assert_eq!(lookup(fe, "/new"), "str=none beg=none other=none");
    assert_eq!(cli(&t.sock, &format!("del map {} /new\n", t.paths)), "Key not found.\n\n");
    assert_eq!(lookup(fe, "/other"), "str=none beg=none other=yes");

    // An entry named by the id `show map` prints.
    let out = cli(&t.sock, &format!("show map {}\n", t.paths));
    let id = out.lines().find(|l| l.ends_with(" /old /new")).and_then(|l| l.split(' ').next()).unwrap();
    assert_eq!(cli(&t.sock, &format!("set map {} #{id} by-id\n", t.paths)), "\n");
    assert_eq!(lookup(fe, "/old"), "str=by-id beg=by-id other=none");
    assert_eq!(cli(&t.sock, &format!("del map {} #{id}\n", t.paths)), "\n");
    assert_eq!(cli(&t.sock, &format!("del map {} #{id}\n", t.paths)), "Key not found.\n\n");
    assert_eq!(lookup(fe, "/old"), "str=none beg=none other=none");
    assert_eq!(entries(&t.sock, &t.paths), ["ID /api backend-api", "ID /old/x second-old"]);

    assert_eq!(cli(&t.sock, &format!("clear map {}\n", t.paths)), "\n");
    assert_eq!(cli(&t.sock, &format!("show map {}\n", t.paths)), "\n");
    assert_eq!(lookup(fe, "/api"), "str=none beg=none other=none");
    let all = cli(&t.sock, "show map\n");
    // 2.6 counts 2 per line added (one per expression) and takes 1 per line deleted:
    // 6 + 2 + 2 - 2 - 1 - 2.
    assert!(all.lines().nth(1).unwrap().ends_with("entry_cnt=5"), "{all}");
    assert_idle(&t.p);
}

#[test]
fn add_map_takes_key_value_lines_after_a_double_chevron_until_an_empty_line() {
    let t = start();
    let fe = t.p.addr("fe");
    let out = cli(&t.sock, "clear map #0\nadd map #0 <<\n/a one\n/b   two words\r\n\nshow map #0\n");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["", ""], "clear and add each answer an empty line: {out:?}");
    assert!(lines[2].ends_with(" /a one") && lines[3].ends_with(" /b two words"), "{out:?}");
    assert_eq!(lines[4..], [""], "then the answer's empty line: {out:?}");
    assert_eq!(lookup(fe, "/b"), "str=two words beg=two words other=none");

    // The payload may come in several writes, with an interactive client.
    let mut s = std::os::unix::net::UnixStream::connect(&t.sock).unwrap();
    s.set_read_timeout(Some(SOON)).unwrap();
    let mut prompt_then = |send: &str, expect: &str| {
        use std::io::{Read, Write};
        s.write_all(send.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.ends_with(expect.as_bytes()) {
            let n = s.read(&mut buf).expect("an answer");
            assert!(n > 0, "the CLI closed: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    };
    assert_eq!(prompt_then("prompt\n", "> "), "\n> ");
    assert_eq!(prompt_then("add map #0 <<\n/c three\n", "+ + "), "+ + ", "each open line asks for more");
    assert_eq!(prompt_then("/d four\n\n", "\n> "), "+ \n> ", "one answer once the payload ends");
    drop(s);
    assert_eq!(lookup(fe, "/d"), "str=four beg=four other=none");

    // A line without a value stops the payload there; lines before it stay.
    let out = cli(&t.sock, "add map #0 <<\n/e five\n/f\n\n");
    assert_eq!(out, "Missing value for key '/f'.\n\n");
    assert_eq!(lookup(fe, "/e"), "str=five beg=five other=none");
    assert_idle(&t.p);
}

#[test]
fn map_commands_answer_bad_arguments_as_haproxy_26() {
    let t = start();
    let m = &t.paths;
    let cases = [
        (
            format!("add map {m}"),
            "'add map' expects three parameters (map identifier, key and value) or one parameter (map identifier) and a payload\n",
        ),
        (
            format!("add map {m} only-key"),
            "'add map' expects three parameters (map identifier, key and value) or one parameter (map identifier) and a payload\n",
        ),
        (format!("add map @1 {m} k v"), "Version number in the future, please use 'prepare map' before.\n"),
        ("add map /nope.map k v".to_string(), "Unknown map identifier. Please use #<id> or <file>.\n"),
        (format!("del map {m}"), "This command expects two parameters: map identifier and key.\n"),
        (format!("del map {m} #0xzz"), "Malformed identifier. Please use #<id> or <file>.\n"),
        (format!("set map {m} /old"), "'set map' expects three parameters: map identifier, key and value.\n"),
        (format!("set map {m} /nope v"), "entry not found.\n"),
        (format!("set map {m} #0x10 v"), "key or pattern not found.\n"),
        ("clear map".to_string(), "Missing map identifier.\n"),
        ("clear map /nope.map".to_string(), "Unknown map identifier. Please use #<id> or <file>.\n"),
    ];
    for (cmd, answer) in &cases {
        assert_eq!(cli(&t.sock, &format!("{cmd}\n")), format!("{answer}\n"), "{cmd}");
    }
    assert_eq!(entries(&t.sock, m).len(), 3, "nothing changed");
    assert_idle(&t.p);
}

#[test]
fn map_and_entry_ids_are_read_as_haproxy_26_reads_them() {
    let t = start();
    let fe = t.p.addr("fe");
    // strtol(): a bare `#` is map 0, a sign is allowed.
    assert_eq!(cli(&t.sock, "add map # /hash bare\n"), "\n");
    assert_eq!(cli(&t.sock, "add map #+0 /plus signed\n"), "\n");
    assert_eq!(lookup(fe, "/hash"), "str=bare beg=bare other=none");
    assert_eq!(lookup(fe, "/plus"), "str=signed beg=signed other=none");
    // strtoul(): hex digits only; too many of them name no entry but are well formed.
    let malformed = "Malformed identifier. Please use #<id> or <file>.\n\n";
    for id in ["#0x", "#0x+10", "#0xg"] {
        assert_eq!(cli(&t.sock, &format!("del map #0 {id}\n")), malformed, "{id}");
        assert_eq!(cli(&t.sock, &format!("set map #0 {id} v\n")), malformed, "{id}");
    }
    let huge = "#0xFFFFFFFFFFFFFFFFFFFFFF";
    assert_eq!(cli(&t.sock, &format!("del map #0 {huge}\n")), "Key not found.\n\n");
    assert_eq!(cli(&t.sock, &format!("set map #0 {huge} v\n")), "key or pattern not found.\n\n");
    assert_eq!(entries(&t.sock, "#0").len(), 5, "only the two adds changed the map");
    assert_idle(&t.p);
}

#[test]
fn a_payload_without_its_empty_line_or_bigger_than_a_buffer_adds_nothing() {
    use std::io::{Read, Write};
    let t = start();
    // The client leaves before the empty line: the command never runs.
    assert_eq!(cli(&t.sock, "add map #0 <<\n/cut short\n"), "");
    // More than `tune.bufsize` (16384) of payload: cut off without an answer, as 2.6 does.
    let mut s = std::os::unix::net::UnixStream::connect(&t.sock).unwrap();
    s.set_read_timeout(Some(SOON)).unwrap();
    let lines: String = (0..3000).map(|i| format!("/k{i:05} v\n")).collect();
    // The CLI may close before reading all of it: a failed write is part of the outcome.
    let _ = s.write_all(format!("add map #0 <<\n{lines}\nshow info\n").as_bytes());
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert_eq!(out, b"", "no answer to a command too big for the buffer");
    assert_eq!(entries(&t.sock, "#0").len(), 3, "nothing added");
    assert_idle(&t.p);
}

#[test]
fn add_map_answers_an_invalid_regex_of_a_map_reg_file_as_haproxy_26() {
    let dir = tmpdir("maps-reg");
    let re = dir.join("re.map");
    std::fs::write(&re, "^/r(.*) r\n").unwrap();
    let (d, m) = (dir.display(), re.display());
    let cfg = format!(
        "global\n    stats socket {d}/admin.sock mode 600 level admin\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:0\n\
         \x20   http-request return status 200 content-type text/plain lf-string \"re=%[path,map_reg({m},none)]\"\n"
    );
    let p = proxy(&cfg, &[]);
    let sock = dir.join("admin.sock");
    assert_eq!(
        cli(&sock, "add map #0 (abc y\n"),
        "regex '(abc' is invalid (error=missing closing parenthesis, erroffset=4).\n\n"
    );
    let out = cli(&sock, "add map #0 <<\n^/s s\n(abc y\n^/t t\n\n");
    assert_eq!(out, "regex '(abc' is invalid (error=missing closing parenthesis, erroffset=4).\n\n");
    assert_eq!(entries(&sock, "#0"), ["ID ^/r(.*) r", "ID ^/s s"], "the lines before the bad one stay");
    let r = client::get(p.addr("fe"), "/s").expect("a response");
    assert_eq!(r.text(), "re=s");
    assert_idle(&p);
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}
