//! Maps: the `map*` converters, which look a sample up in a file of `key value` lines.
//!
//! Reproduces `map.c` of HAProxy 2.6 (maps appeared in 1.5.0). `map_beg(file[,default])`
//! reads the file once while the configuration is parsed, compiles its keys for the
//! method the keyword names (`pattern.rs`), and at run time replaces the sample by the
//! value of the first key that matches, cast to the keyword's output type, or by the
//! default when none matches (no default: the sample is dropped).

use std::sync::Arc;

use crate::haproxy::pattern::{PatExpr, PatMatch, Pattern, pattern_read_from_file};
use crate::haproxy::regex::{exp_replace, regex_exec_match2};
use crate::haproxy::sample::{Arg, SmpData, SmpType, smp_cast};

/// map.c:sample_load_map() in 2.6: reads and compiles the map file named by the first
/// argument (paths are relative to where haflow was started, as HAProxy's).
pub fn sample_load_map(a: &mut [Arg], method: PatMatch) -> Result<(), String> {
    let path = String::from_utf8_lossy(a[0].str()).into_owned();
    let r = pattern_read_from_file(&path, true)?;
    let mut e = PatExpr::new(method, false);
    e.add_ref(&r)?;
    a[0] = Arg::Map(Arc::new(e));
    Ok(())
}

/// map.c:sample_conv_map() in 2.6.
pub fn sample_conv_map(a: &[Arg], d: &mut SmpData, out: SmpType) -> bool {
    let Arg::Map(m) = &a[0] else { return false };
    let value = match m.pattern_exec_match(d) {
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
    for (p, v) in &m.patterns {
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
