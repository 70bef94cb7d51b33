//! Maps: the `map*` converters, which look a sample up in a file of `key value` lines.
//!
//! Reproduces `map.c` of HAProxy 2.6 (maps appeared in 1.5.0). `map_beg(file[,default])`
//! reads the file once while the configuration is parsed, compiles its keys for the
//! method the keyword names (`pattern.rs`), and at run time replaces the sample by the
//! value of the first key that matches, cast to the keyword's output type, or by the
//! default when none matches (no default: the sample is dropped). Every converter naming
//! one file shares its lines, and the stats socket's map commands (below) change them
//! while haflow runs.

use std::fmt::Write as _;

use crate::haproxy::pattern::{
    PatMatch, PatRef, PatRefFlags, Pattern, pat_ref_elt_id, pattern_read_from_file, read,
};
use crate::haproxy::regex::{exp_replace, regex_exec_match2};
use crate::haproxy::sample::{Arg, SmpData, SmpType, smp_cast};

/// map.c:sample_load_map() in 2.6: the expression compiling the map file named by the
/// first argument for the keyword's method, shared with every other user of that file
/// (paths are relative to where haflow was started, as HAProxy's).
pub fn sample_load_map(a: &mut [Arg], method: PatMatch) -> Result<(), String> {
    let path = String::from_utf8_lossy(a[0].str()).into_owned();
    a[0] = Arg::Map(pattern_read_from_file(&path, method)?);
    Ok(())
}

/// map.c:sample_conv_map() in 2.6.
pub fn sample_conv_map(a: &[Arg], d: &mut SmpData, out: SmpType) -> bool {
    let Arg::Map(m) = &a[0] else { return false };
    let value = match read(m).pattern_exec_match(d) {
        Some(v) => v.unwrap_or_default().to_vec(),
        None => match &a[1] {
            Arg::Str(def) => def.clone(),
            _ => return false,
        },
    };
    match smp_cast(SmpData::Str(value), out) {
        Some(v) => {
            *d = v;
            true
        }
        None => false,
    }
}

/// map.c's `map_regm` in 2.6: the first key (a regex) that matches gives the value, in
/// which `\N` is replaced by the match's group N (a value `exp_replace` rejects fails the
/// converter, as in HAProxy).
pub fn sample_conv_map_regm(a: &[Arg], d: &mut SmpData) -> bool {
    let Arg::Map(m) = &a[0] else { return false };
    let Some(input) = smp_cast(d.clone(), SmpType::SMP_T_STR).and_then(SmpData::into_str) else {
        return false;
    };
    for (p, v) in &read(m).patterns {
        if let Pattern::Reg(re) = p
            && let Some(pmatch) = regex_exec_match2(re, &input, 0)
        {
            return match exp_replace(&input, v.as_deref().unwrap_or_default(), &pmatch) {
                Some(out) => {
                    *d = SmpData::Str(out);
                    true
                }
                None => false,
            };
        }
    }
    match &a[1] {
        Arg::Str(def) => {
            *d = SmpData::Str(def.clone());
            true
        }
        _ => false,
    }
}

// The CLI's map commands (`show map`, `add map`, `del map`, `set map`, `clear map`),
// here beside the converters as in 2.6's map.c; `dumpstats.rs` dispatches to them. They
// change the file's lines (`PatRef`) and every expression compiled from them, so every
// converter using the file sees the change at its next lookup. Versions (`@<ver>`,
// `prepare map`, `commit map`) are not reproduced: the current version is always 0, and
// `@0` names it.

/// The version every line belongs to (`ref->curr_gen`, `next_gen`): haflow has only one.
const CURR_GEN: u32 = 0;

/// `Unknown map identifier...`: the answer when no map file matches.
const UNKNOWN_MAP: &str = "Unknown map identifier. Please use #<id> or <file>.\n";

/// map.c:pat_ref_lookup_ref() in 2.6: `#<id>` or a file name, among the files a map
/// uses; the index in `refs`. The id is read as strtol() does, so a bare `#` is `#0`.
fn pat_ref_lookup_ref(refs: &[PatRef], reference: &str) -> Option<usize> {
    let found = match reference.strip_prefix('#') {
        Some(id) => {
            let id: i32 = if id.is_empty() { 0 } else { id.parse().ok()? };
            refs.iter().position(|r| r.unique_id == id)
        }
        None => refs.iter().position(|r| r.reference == reference),
    }?;
    refs[found].flags.contains(PatRefFlags::PAT_REF_MAP).then_some(found)
}

/// An optional `@<ver>` before the map's name (standard.c:str2uic(): the leading digits,
/// 0 without any): the version, and the arguments after it.
fn take_version<'a, 'b>(args: &'a [&'b str]) -> (Option<u32>, &'a [&'b str]) {
    match args.first().and_then(|a| a.strip_prefix('@')) {
        Some(v) => {
            let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
            (Some(v[..digits].parse().unwrap_or(0)), &args[1..])
        }
        None => (None, args),
    }
}

/// A line's name as `del map`/`set map` take it: `#0x...`, its address in hex (`None`:
/// not that form; `Some(None)`: malformed). Read as strtoul() does: hex digits only, and
/// too many of them name the highest address (no line) rather than a malformed one.
fn elt_id_arg(arg: &str) -> Option<Option<usize>> {
    let hex = arg.strip_prefix("#0x")?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(None);
    }
    Some(Some(usize::from_str_radix(hex, 16).unwrap_or(usize::MAX)))
}

/// map.c:cli_io_handler_pats_list() in 2.6: `show map` without a name, one line per map
/// file.
pub fn cli_io_handler_pats_list(refs: &[PatRef]) -> String {
    let mut out = String::from("# id (file) description\n");
    for r in refs.iter().filter(|r| r.flags.contains(PatRefFlags::PAT_REF_MAP)) {
        let _ = writeln!(
            out,
            "{} ({}) {}. curr_ver={CURR_GEN} next_ver={CURR_GEN} entry_cnt={}",
            r.unique_id, r.reference, r.display, r.entry_cnt
        );
    }
    out
}

/// map.c:cli_parse_show_map() in 2.6, given a map: `Ok(Some(index))` to dump that map's
/// lines with `cli_io_handler_pat_list`, `Ok(None)` for a version that has no line.
pub fn cli_parse_show_map(refs: &[PatRef], args: &[&str]) -> Result<Option<usize>, String> {
    let (ver, args) = take_version(args);
    let Some(r) = args.first().and_then(|name| pat_ref_lookup_ref(refs, name)) else {
        return Err(UNKNOWN_MAP.into());
    };
    Ok((ver.unwrap_or(CURR_GEN) == CURR_GEN).then_some(r))
}

/// map.c:cli_io_handler_pat_list() in 2.6: `show map <map>`, one line per entry, `0x<id>
/// <key> <value>`, from line `next` on while `out` holds less than `room` bytes; true
/// once every line is out. Divergence: the cursor is an index, where HAProxy's follows
/// the line it stopped at; a `del map` while a dump waits for its client may make it skip
/// or repeat one line.
pub fn cli_io_handler_pat_list(
    refs: &[PatRef],
    r: usize,
    next: &mut usize,
    out: &mut String,
    room: usize,
) -> bool {
    let Some(r) = refs.get(r) else { return true };
    while let Some(elt) = r.head.get(*next) {
        if out.len() >= room {
            return false;
        }
        let _ = write!(out, "{:#x} {}", pat_ref_elt_id(elt), String::from_utf8_lossy(&elt.pattern));
        if let Some(v) = &elt.sample {
            let _ = write!(out, " {}", String::from_utf8_lossy(v));
        }
        out.push('\n');
        *next += 1;
    }
    true
}

/// map.c:cli_parse_add_map() in 2.6: `add map [@<ver>] <map> <key> <value>`, or `add map
/// [@<ver>] <map> <<` followed by `key value` lines and an empty line (the payload). The
/// answer: empty, or what went wrong (lines added before a failing one stay).
pub fn cli_parse_add_map(refs: &mut [PatRef], args: &[&str], payload: Option<&str>) -> String {
    let (ver, args) = take_version(args);
    let usage = "'add map' expects three parameters (map identifier, key and value) or one parameter (map identifier) and a payload\n";
    let (name, kv) = match (payload, args) {
        (None, [name, key, value, ..]) => (*name, Some((*key, *value))),
        (Some(_), [name, ..]) => (*name, None),
        _ => return usage.into(),
    };
    let Some(r) = pat_ref_lookup_ref(refs, name) else { return UNKNOWN_MAP.into() };
    if ver.is_some_and(|g| g > CURR_GEN) {
        return "Version number in the future, please use 'prepare map' before.\n".into();
    }
    let r = &mut refs[r];
    let load = |r: &mut PatRef, key: &str, value: &str| match r
        .pat_ref_load(key.as_bytes(), Some(value.as_bytes()))
    {
        Ok(()) => None,
        Err(e) => Some(format!("{e}.\n")),
    };
    if let Some((key, value)) = kv {
        return load(r, key, value).unwrap_or_default();
    }
    let mut rest = payload.unwrap_or_default();
    while !rest.is_empty() {
        // One `key value` per line: the key ends at the first blank, the value at the end
        // of the line.
        let Some(k) = rest.find([' ', '\t']) else {
            return format!("Missing value for key '{rest}'.\n");
        };
        let key = &rest[..k];
        let after = rest[k + 1..].trim_start_matches([' ', '\t']);
        let v = after.find('\n').unwrap_or(after.len());
        rest = after.get(v + 1..).unwrap_or_default();
        if let Some(e) = load(r, key, &after[..v]) {
            return e;
        }
    }
    String::new()
}

/// map.c:cli_parse_del_map() in 2.6: `del map <map> <key>` removes every entry with that
/// key, `del map <map> #0x<id>` the entry `show map` names so.
pub fn cli_parse_del_map(refs: &mut [PatRef], args: &[&str]) -> String {
    let [name, key, ..] = args else {
        return "This command expects two parameters: map identifier and key.\n".into();
    };
    let Some(r) = pat_ref_lookup_ref(refs, name) else { return UNKNOWN_MAP.into() };
    let found = match elt_id_arg(key) {
        Some(None) => return "Malformed identifier. Please use #<id> or <file>.\n".into(),
        Some(Some(id)) => refs[r].pat_ref_delete_by_id(id),
        None => refs[r].pat_ref_delete(key.as_bytes()),
    };
    if found { String::new() } else { "Key not found.\n".into() }
}

/// map.c:cli_parse_set_map() in 2.6: `set map <map> <key>|#0x<id> <value>` changes the
/// value of every entry with that key, or of that entry.
pub fn cli_parse_set_map(refs: &mut [PatRef], args: &[&str]) -> String {
    let [name, key, value, ..] = args else {
        return "'set map' expects three parameters: map identifier, key and value.\n".into();
    };
    let Some(r) = pat_ref_lookup_ref(refs, name) else { return UNKNOWN_MAP.into() };
    let set = match elt_id_arg(key) {
        Some(None) => return "Malformed identifier. Please use #<id> or <file>.\n".into(),
        Some(Some(id)) => refs[r].pat_ref_set_by_id(id, value.as_bytes()),
        None => refs[r].pat_ref_set(key.as_bytes(), value.as_bytes()),
    };
    match set {
        Ok(()) => String::new(),
        Err(e) => format!("{e}.\n"),
    }
}

/// map.c:cli_parse_clear_map() and cli_io_handler_clear_map() in 2.6: `clear map
/// [@<ver>] <map>` removes every entry (of that version).
pub fn cli_parse_clear_map(refs: &mut [PatRef], args: &[&str]) -> String {
    let (ver, args) = take_version(args);
    let Some(name) = args.first() else { return "Missing map identifier.\n".into() };
    let Some(r) = pat_ref_lookup_ref(refs, name) else { return UNKNOWN_MAP.into() };
    if ver.unwrap_or(CURR_GEN) == CURR_GEN {
        refs[r].pat_ref_purge();
    }
    String::new()
}
