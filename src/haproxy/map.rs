//! Maps: the `map*` converters, which look a sample up in a file of `key value` lines.
//!
//! Reproduces `map.c` of HAProxy 2.6 (maps appeared in 1.5.0). `map_beg(file[,default])`
//! reads the file once while the configuration is parsed, compiles its keys for the
//! method the keyword names (`pattern.rs`), and at run time replaces the sample by the
//! value of the first key that matches, cast to the keyword's output type, or by the
//! default when none matches (no default: the sample is dropped).

use std::sync::Arc;

use crate::haproxy::pattern::{PatExpr, PatMatch, pattern_read_from_file};
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
