//! The HTTP cache: `cache` sections, `http-request cache-use`, `http-response
//! cache-store`, the `Vary` handling of `process-vary on`, and `show cache`.
//!
//! Reproduces `cache.c` of HAProxy 2.6 (the cache appeared in 1.8; 1.5 had none), with the
//! cacheability checks of 2.6's `http_ana.c` (`http_check_request_for_cacheability`,
//! `http_check_response_for_cacheability`). The design is 2.6's, set in 1.5's session
//! model: `cache-store` keeps the response head as the rules left it and, as
//! `http_response_forward_body` moves the body, a copy of its data; the entry is usable
//! once the message is complete. `cache-use` looks the request up (by `Host` and URI, then
//! by the secondary key `Vary` asks for); on a hit the server side becomes an applet, as
//! 1.5.0 does for its stats page: `sess_prepare_conn_req` establishes it at once, and
//! `http_cache_io_handler` writes the stored response (with an `Age` header) into the
//! response buffer, where the usual response analysers and `http-response` rules see it.
//! `cache-use` and `cache-store` are `HttpAct` variants of `http_act.rs`, run in rule
//! order as 2.6 runs its `ACT_CUSTOM` actions (`parse_cache_rule` there, the existence of
//! the named cache checked by `check_config_validity` as 2.6's `cache_store_check`);
//! `res.cache_hit` and `res.cache_name` are defined here and listed in `sample.rs`'s
//! fetch table, as 2.6's cache.c registers them.
//!
//! Divergences: the primary key is the text `https://<host><uri>` itself rather than its
//! SHA-1 (`show cache` prints a CRC-32 of it as the hash); entries live in memory owned by
//! the process (no shared-memory blocks), counted in 1 kB blocks against `total-max-size`
//! and evicted oldest first; an entry enters the cache when its response is complete,
//! so two concurrent misses for one object both store it (the last one wins).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::haproxy::buffers::{BufFlags, Buffer};
use crate::haproxy::h1::Framing;
use crate::haproxy::h1::{Head, StartLine};
use crate::haproxy::haproxy::Haproxy;
use crate::haproxy::sample::{Arg, SmpCtx, SmpData};
use crate::haproxy::session::{Session, SnErr, SnFinst};
use crate::haproxy::stream_interface::{SiFlags, Side, stream_int_shutr};
use crate::ids::{CacheId, ProxyId};
use crate::trace::names;

/// The unit `total-max-size` is counted in (`CACHE_BLOCKSIZE`).
pub const CACHE_BLOCKSIZE: u64 = 1024;
/// `max-secondary-entries` when not set.
const DEFAULT_MAX_SECONDARY_ENTRY: u32 = 10;
/// The largest `Age` an entry may have (`CACHE_ENTRY_MAX_AGE`).
const CACHE_ENTRY_MAX_AGE: u64 = 2_147_483_648;
/// The most `Accept-Encoding` values considered (`ACCEPT_ENCODING_MAX_ENTRIES`).
const ACCEPT_ENCODING_MAX_ENTRIES: usize = 16;

/// `enum vary_header_bit`: the headers `Vary` may name.
pub const VARY_ACCEPT_ENCODING: u32 = 1 << 0;
/// `Vary: referer`.
pub const VARY_REFERER: u32 = 1 << 1;

/// `enum vary_encoding`: the content codings the `Accept-Encoding` bitmap knows.
mod enc {
    pub const GZIP: u32 = 1 << 0;
    pub const DEFLATE: u32 = 1 << 1;
    pub const BR: u32 = 1 << 2;
    pub const COMPRESS: u32 = 1 << 3;
    pub const AES128GCM: u32 = 1 << 4;
    pub const EXI: u32 = 1 << 5;
    pub const PACK200_GZIP: u32 = 1 << 6;
    pub const ZSTD: u32 = 1 << 7;
    pub const IDENTITY: u32 = 1 << 8;
    pub const STAR: u32 = 1 << 9;
    pub const OTHER: u32 = 1 << 10;
}

/// `HTTP_CACHE_SEC_KEY_LEN`: the `Accept-Encoding` bitmap, then the `Referer` CRC-32.
pub type SecondaryKey = [u8; 8];

bitflags::bitflags! {
    /// The cache bits of `txn->flags`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct TxCache: u8 {
        /// The response may be cached (`TX_CACHEABLE`).
        const TX_CACHEABLE = 0x01;
        /// It may be cached even with cookies (`TX_CACHE_COOK`).
        const TX_CACHE_COOK = 0x02;
        /// Neither look the cache up nor store (`TX_CACHE_IGNORE`).
        const TX_CACHE_IGNORE = 0x04;
        /// The secondary key could be built (`TX_CACHE_HAS_SEC_KEY`).
        const TX_CACHE_HAS_SEC_KEY = 0x08;
    }
}

/// One stored response (`struct cache_entry`).
#[derive(Debug, Clone)]
pub struct CacheEntry {
    /// Insertion number (eviction order, identity).
    id: u64,
    /// The primary key's hash as `show cache` prints it.
    pub hash: u32,
    /// The head as `cache-store` saw it, without `Age` and hop-by-hop headers.
    pub head: Head,
    /// The body's data (chunk framing removed).
    pub body: Vec<u8>,
    /// A chunked response's trailer lines (each ending in CRLF).
    pub trailers: Vec<u8>,
    /// The response was chunked: it is sent back chunked.
    pub chunked: bool,
    /// `latest_validation`: when it was stored (seconds since the epoch).
    pub latest_validation: u64,
    /// `expire`: when it stops being served.
    pub expire: u64,
    /// `age`: the origin's `Age` when it was stored.
    pub age: u64,
    /// `secondary_key`, when the response varies.
    pub secondary_key: SecondaryKey,
    /// `secondary_key_signature`: which `vary_information` headers the key holds.
    pub secondary_key_signature: u32,
    /// The `ETag` value, for `If-None-Match`.
    pub etag: Option<Vec<u8>>,
    /// `last_modified`: `Last-Modified`, else `Date`, else the storage time.
    pub last_modified: i64,
}

impl CacheEntry {
    /// Bytes the entry holds (its blocks, for `total-max-size` and `show cache`).
    pub fn size(&self) -> u64 {
        let head: usize = self.head.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        (head + self.body.len() + self.trailers.len() + 64) as u64
    }

    fn blocks(&self) -> u64 {
        self.size().div_ceil(CACHE_BLOCKSIZE)
    }
}

/// `struct cache`: a `cache` section and its entries.
#[derive(Debug, Default)]
pub struct Cache {
    /// `id`: the section's name.
    pub id: String,
    /// Where the section starts.
    pub conf: (String, usize),
    /// `max-age` in seconds (default 60).
    pub maxage: u64,
    /// `total-max-size`, in `CACHE_BLOCKSIZE` blocks.
    pub maxblocks: u64,
    /// `max-object-size` in bytes (default: a 256th of `total-max-size`).
    pub maxobjsz: u64,
    /// `max-secondary-entries` (default 10).
    pub max_secondary_entries: u32,
    /// `process-vary on`.
    pub vary_processing_enabled: bool,
    /// Entries by primary key, the duplicates of a varying response in insertion order.
    entries: HashMap<String, Vec<Arc<CacheEntry>>>,
    /// Insertion order, for eviction: (primary key, entry id).
    lru: VecDeque<(String, u64)>,
    /// Blocks in use.
    used_blocks: u64,
    next_id: u64,
}

impl Cache {
    /// A `cache NAME` section with 2.6's defaults.
    pub fn new(id: &str, file: &str, line: usize) -> Cache {
        Cache {
            id: id.to_string(),
            conf: (file.to_string(), line),
            maxage: 60,
            max_secondary_entries: DEFAULT_MAX_SECONDARY_ENTRY,
            ..Cache::default()
        }
    }

    /// Blocks that may be taken (`shctx->nbav`): as in 2.6, a stored entry's blocks
    /// count as available (they can be reclaimed) unless it is being sent.
    pub fn available_blocks(&self) -> u64 {
        let hot: u64 =
            self.entries.values().flatten().filter(|e| Arc::strong_count(e) > 1).map(|e| e.blocks()).sum();
        self.maxblocks.saturating_sub(hot)
    }

    /// The live entries, for `show cache`, in hash order (2.6 walks its tree by key).
    pub fn live_entries(&self, now: u64) -> Vec<Arc<CacheEntry>> {
        let mut v: Vec<_> = self.entries.values().flatten().filter(|e| e.expire > now).cloned().collect();
        v.sort_by_key(|e| (e.hash, e.id));
        v
    }

    /// cache.c:delete_entry(): drop the entry `id` of `key`.
    fn delete_entry(&mut self, key: &str, id: u64) {
        if let Some(list) = self.entries.get_mut(key)
            && let Some(pos) = list.iter().position(|e| e.id == id)
        {
            let e = list.remove(pos);
            self.used_blocks = self.used_blocks.saturating_sub(e.blocks());
            if list.is_empty() {
                self.entries.remove(key);
            }
        }
    }

    /// cache.c:entry_exist() and secondary_entry_exist(): the live entry for `key` (and,
    /// when it varies, `secondary`), dropping the expired ones met on the way.
    fn entry_exist(
        &mut self,
        key: &str,
        secondary: Option<&SecondaryKey>,
        now: u64,
    ) -> Option<Arc<CacheEntry>> {
        let expired: Vec<u64> =
            self.entries.get(key)?.iter().filter(|e| e.expire <= now).map(|e| e.id).collect();
        for id in expired {
            self.delete_entry(key, id);
        }
        let list = self.entries.get(key)?;
        match secondary {
            None => list.first().cloned(),
            Some(k) => list
                .iter()
                .find(|e| e.secondary_key_signature != 0 && secondary_key_cmp(&e.secondary_key, k))
                .cloned(),
        }
    }

    /// cache.c:insert_entry(): add `entry` under `key`, unless a varying object already
    /// has `max-secondary-entries` live versions; the oldest entries of the cache make
    /// room when `total-max-size` is reached (`shctx_row_reserve_hot`).
    fn insert_entry(&mut self, key: String, mut entry: CacheEntry, now: u64) -> bool {
        let blocks = entry.blocks();
        if blocks > self.maxblocks || entry.size() > self.maxobjsz {
            return false;
        }
        if entry.secondary_key_signature != 0
            && let Some(list) = self.entries.get(&key)
        {
            let expired: Vec<u64> = list.iter().filter(|e| e.expire <= now).map(|e| e.id).collect();
            for id in expired {
                self.delete_entry(&key, id);
            }
            if self.entries.get(&key).map_or(0, Vec::len) >= self.max_secondary_entries as usize {
                return false;
            }
        }
        while self.used_blocks + blocks > self.maxblocks {
            let Some((k, id)) = self.lru.pop_front() else { break };
            self.delete_entry(&k, id);
        }
        self.next_id += 1;
        entry.id = self.next_id;
        self.used_blocks += blocks;
        self.lru.push_back((key.clone(), entry.id));
        self.entries.entry(key).or_default().push(Arc::new(entry));
        true
    }
}

/// cache.c:cfg_parse_cache() in 2.6: one line of a `cache` section. `Ok(Some(w))` is a
/// warning to print.
pub fn cfg_parse_cache(cache: &mut Cache, args: &[String]) -> Result<Option<String>, String> {
    let kw = args[0].as_str();
    let arg = args.get(1).map(String::as_str).unwrap_or("");
    if args.len() > 2 {
        return Err(format!("'{kw}' cannot handle unexpected argument '{}'.", args[2]));
    }
    let number = |v: &str| v.parse::<u64>().ok();
    match kw {
        "total-max-size" => {
            let mb = number(arg).ok_or_else(|| format!("total-max-size wrong value '{arg}'"))?;
            if mb > u64::from(u32::MAX >> 20) {
                return Err(format!(
                    "\"total-max-size\" ({arg}) must not be greater than {}",
                    u32::MAX >> 20
                ));
            }
            cache.maxblocks = mb * 1024 * 1024 / CACHE_BLOCKSIZE;
            Ok(None)
        }
        "max-age" => {
            cache.maxage = number(arg).unwrap_or(0);
            Ok(arg.is_empty().then(|| format!("'{kw}' expects an age parameter in seconds.")))
        }
        "max-object-size" => {
            cache.maxobjsz = number(arg).ok_or_else(|| format!("max-object-size wrong value '{arg}'"))?;
            Ok(None)
        }
        "process-vary" => match arg {
            "on" => {
                cache.vary_processing_enabled = true;
                Ok(None)
            }
            "off" => {
                cache.vary_processing_enabled = false;
                Ok(None)
            }
            _ => Ok(Some(format!("'{kw}' expects \"on\" or \"off\" (enable or disable vary processing)."))),
        },
        "max-secondary-entries" => {
            cache.max_secondary_entries = number(arg)
                .filter(|&n| n > 0 && n <= u64::from(u32::MAX))
                .ok_or_else(|| format!("max-secondary-entries wrong value '{arg}'"))?
                as u32;
            Ok(None)
        }
        _ => Err(format!("unknown keyword '{kw}' in 'cache' section")),
    }
}

/// cache.c:cfg_post_parse_section_cache() in 2.6: a section is complete: its size is
/// required, and `max-object-size` defaults to a 256th of it and may not pass half.
pub fn cfg_post_parse_section_cache(cache: &mut Cache) -> Result<(), String> {
    if cache.maxblocks == 0 {
        return Err(format!("Size not specified for cache '{}'", cache.id));
    }
    let total = cache.maxblocks * CACHE_BLOCKSIZE;
    if cache.maxobjsz == 0 {
        cache.maxobjsz = total >> 8;
    } else if cache.maxobjsz > total / 2 {
        return Err(format!(
            "\"max-object-size\" is limited to an half of \"total-max-size\" => {}",
            total / 2
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Header helpers

/// The comma-separated values of `name` (`http_find_header(..., 0)`), trimmed; empty
/// values are kept (an empty `Accept-Encoding` means something).
fn values<'a>(head: &'a Head, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    head.values(name).flat_map(|v| v.split(|&c| c == b',').map(<[u8]>::trim_ascii))
}

/// `istmatchi`: `v` starts with `p`, case-insensitively.
fn starts_with_ci(v: &[u8], p: &str) -> bool {
    v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p.as_bytes())
}

/// The CRC-32 HAProxy's `hash_crc32` computes.
fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// http.c:parse_http_date() in 2.6, with `my_timegm`: an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) or
/// asctime (`Sun Nov  6 08:49:37 1994`) date, in seconds since the epoch.
pub fn parse_http_date(v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let month = |m: &str| crate::haproxy::log::MONTHS.iter().position(|x| *x == m).map(|i| i as i64 + 1);
    let hms = |t: &str| -> Option<i64> {
        let mut it = t.split(':').map(|x| x.parse::<i64>().ok().filter(|_| x.len() == 2));
        let (h, m, s) = (it.next()??, it.next()??, it.next()??);
        (h < 24 && m < 60 && s < 61 && it.next().is_none()).then_some(h * 3600 + m * 60 + s)
    };
    let w: Vec<&str> = s.split_ascii_whitespace().collect();
    let (y, m, d, t) = if let Some(rest) = s.split_once(", ").map(|(_, r)| r) {
        let parts: Vec<&str> = rest.split_ascii_whitespace().collect();
        match parts.as_slice() {
            [d, mo, y, t, "GMT"] if d.len() == 2 && y.len() == 4 => {
                (y.parse().ok()?, month(mo)?, d.parse().ok()?, hms(t)?)
            }
            [dmy, t, "GMT"] => {
                let mut it = dmy.split('-');
                let (d, mo, y) = (it.next()?, it.next()?, it.next()?);
                let y: i64 = y.parse().ok().filter(|_| y.len() == 2)?;
                (if y < 70 { 2000 + y } else { 1900 + y }, month(mo)?, d.parse().ok()?, hms(t)?)
            }
            _ => return None,
        }
    } else {
        match w.as_slice() {
            [_, mo, d, t, y] if y.len() == 4 => (y.parse().ok()?, month(mo)?, d.parse().ok()?, hms(t)?),
            _ => return None,
        }
    };
    if !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + t)
}

// ---------------------------------------------------------------------------------------
// Vary

/// cache.c:parse_encoding_value() in 2.6: the bit of a content coding (`gzip`,
/// `br;q=0.5`...) and whether its weight is null; `Err` for an unknown coding. A value
/// whose first letter is a known coding's but that is no coding weighs nothing (as in
/// 2.6).
fn parse_encoding_value(v: &[u8]) -> Result<(u32, bool), ()> {
    if v.is_empty() {
        return Err(());
    }
    let names: &[(&str, u32)] = match v[0] {
        b'a' => &[("aes128gcm", enc::AES128GCM)],
        b'b' => &[("br", enc::BR)],
        b'c' => &[("compress", enc::COMPRESS)],
        b'd' => &[("deflate", enc::DEFLATE)],
        b'e' => &[("exi", enc::EXI)],
        b'g' => &[("gzip", enc::GZIP)],
        b'i' => &[("identity", enc::IDENTITY)],
        b'p' => &[("pack200-gzip", enc::PACK200_GZIP)],
        b'x' => &[("x-gzip", enc::GZIP), ("x-compress", enc::COMPRESS)],
        b'z' => &[("zstd", enc::ZSTD)],
        b'*' => &[("*", enc::STAR)],
        _ => return Err(()),
    };
    let Some((rest, bit)) = names.iter().find_map(|(n, b)| v.strip_prefix(n.as_bytes()).map(|r| (r, *b)))
    else {
        return Ok((0, false));
    };
    let rest = rest.trim_ascii_start();
    if rest.is_empty() {
        return Ok((bit, false));
    }
    if rest[0] != b';' {
        return Err(());
    }
    Ok((bit, rest[1..].trim_ascii_start() == b"q=0"))
}

/// cache.c:accept_encoding_normalizer() in 2.6: the bitmap of the codings the request
/// accepts (identity unless refused, all of them without the header or with `*`); `None`
/// past 16 values.
fn accept_encoding_normalizer(head: &Head) -> Option<u32> {
    let mut bitmap = enc::IDENTITY;
    let mut rejected = u32::MAX;
    let mut count = 0;
    for v in values(head, "accept-encoding") {
        if count >= ACCEPT_ENCODING_MAX_ENTRIES {
            break;
        }
        count += 1;
        if v.is_empty() {
            continue;
        }
        match parse_encoding_value(&v.to_ascii_lowercase()) {
            Ok((bit, true)) => rejected &= !bit,
            Ok((bit, false)) => bitmap |= bit,
            Err(()) => bitmap |= enc::OTHER,
        }
    }
    if bitmap & enc::STAR != 0 {
        bitmap = u32::MAX;
    }
    bitmap &= rejected;
    if count == 0 {
        bitmap = u32::MAX;
    }
    (count < ACCEPT_ENCODING_MAX_ENTRIES).then_some(bitmap)
}

/// cache.c:http_request_build_secondary_key() in 2.6: the parts of the secondary key
/// `signature` names (the others zero); `None` when the request cannot have one.
fn http_request_build_secondary_key(head: &Head, signature: u32) -> Option<SecondaryKey> {
    let mut key = [0u8; 8];
    if signature & VARY_ACCEPT_ENCODING != 0 {
        key[..4].copy_from_slice(&accept_encoding_normalizer(head)?.to_le_bytes());
    }
    if signature & VARY_REFERER != 0
        && let Some(r) = head.value("referer")
    {
        key[4..].copy_from_slice(&crc32(r).to_le_bytes());
    }
    Some(key)
}

/// cache.c:http_request_reduce_secondary_key() in 2.6: keep the parts `signature` names.
fn http_request_reduce_secondary_key(signature: u32, key: &mut SecondaryKey) {
    if signature & VARY_ACCEPT_ENCODING == 0 {
        key[..4].fill(0);
    }
    if signature & VARY_REFERER == 0 {
        key[4..].fill(0);
    }
}

/// cache.c:secondary_key_cmp() with accept_encoding_bitmap_cmp() in 2.6: the stored
/// response's codings must all be accepted (and known), the rest must be equal.
fn secondary_key_cmp(stored: &SecondaryKey, request: &SecondaryKey) -> bool {
    let word = |k: &SecondaryKey| u32::from_le_bytes([k[0], k[1], k[2], k[3]]);
    let (r, n) = (word(stored), word(request));
    r & enc::OTHER == 0 && r & n == r && stored[4..] == request[4..]
}

/// cache.c:http_check_vary_header() in 2.6: the signature of the headers `Vary` names,
/// `None` when it names one the cache cannot vary on.
fn http_check_vary_header(head: &Head) -> Option<u32> {
    let mut sig = 0;
    for v in values(head, "vary") {
        if v.eq_ignore_ascii_case(b"accept-encoding") {
            sig |= VARY_ACCEPT_ENCODING;
        } else if v.eq_ignore_ascii_case(b"referer") {
            sig |= VARY_REFERER;
        } else {
            return None;
        }
    }
    Some(sig)
}

/// cache.c:set_secondary_key_encoding() in 2.6: the stored key's bitmap becomes the
/// response's own coding (identity when none); `Err` for an unknown one.
fn set_secondary_key_encoding(head: &Head, key: &mut SecondaryKey) -> Result<(), ()> {
    let mut bitmap = 0;
    for v in values(head, "content-encoding") {
        bitmap |= parse_encoding_value(v)?.0;
    }
    if bitmap == 0 {
        bitmap = enc::IDENTITY;
    }
    key[..4].copy_from_slice(&bitmap.to_le_bytes());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The transaction's cache state

/// The cache a `cache-use`/`cache-store` rule names (`struct cache_flt_conf`'s name),
/// resolved to its section by `check_config_validity` once every section is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheRef {
    /// The name as written.
    pub name: String,
    /// The section (`None` until resolved).
    pub id: Option<CacheId>,
}

/// A response being stored (`struct cache_st` and the entry it fills).
#[derive(Debug, Clone)]
pub struct PendingEntry {
    /// The cache being filled.
    pub cache: CacheId,
    /// The entry, filled as the body passes.
    pub entry: CacheEntry,
    /// `max-object-size` of that cache.
    maxobjsz: u64,
}

impl PendingEntry {
    /// Keeps a copy of body data on their way to the client; `false` once the object
    /// grew past `max-object-size` (the caller then stops storing).
    pub fn add_data(&mut self, data: &[u8]) -> bool {
        self.entry.body.extend_from_slice(data);
        self.entry.size() <= self.maxobjsz
    }

    /// Keeps the trailers of a chunked response (their lines, without the empty one).
    pub fn add_trailers(&mut self, lines: &[u8]) {
        self.entry.trailers.extend_from_slice(lines);
    }
}

/// The cache part of `struct http_txn` (`cache_hash`, `cache_secondary_hash`, the
/// `TX_CACHE*` flags), allocated by the first `cache-use` of a transaction.
#[derive(Debug, Default, Clone)]
pub struct CacheTxn {
    /// `TX_CACHE*`.
    pub flags: TxCache,
    /// The primary key (`https://<host><uri>`).
    pub key: String,
    /// `cache_secondary_hash`.
    pub secondary: SecondaryKey,
    /// A response being stored.
    pub store: Option<PendingEntry>,
    /// The request is a GET (the only method whose responses are stored).
    pub get: bool,
    /// The method is unsafe (POST, PUT, DELETE...): success invalidates the entry.
    pub unsafe_method: bool,
}

/// The seconds since the epoch for `date`.
pub fn unix_secs(date: std::time::SystemTime) -> u64 {
    date.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// http_ana.c:http_check_request_for_cacheability() in 2.6: `Authorization` keeps the
/// request away from the cache, `Cache-Control: no-cache` (or `max-age`, `max-stale`,
/// `min-fresh`, or `Pragma: no-cache` alone) skips the lookup, `no-store` the storage.
fn http_check_request_for_cacheability(head: &Head, flags: &mut TxCache) {
    if (*flags & (TxCache::TX_CACHEABLE | TxCache::TX_CACHE_IGNORE)) == TxCache::TX_CACHE_IGNORE {
        return;
    }
    let pragma = head.value("pragma").is_some_and(|v| v.eq_ignore_ascii_case(b"no-cache"));
    if head.value("authorization").is_some() {
        flags.remove(TxCache::TX_CACHEABLE | TxCache::TX_CACHE_COOK);
        flags.insert(TxCache::TX_CACHE_IGNORE);
    }
    let mut cc_found = false;
    for v in values(head, "cache-control") {
        cc_found = true;
        if ["max-age", "no-cache", "max-stale", "min-fresh"].iter().any(|p| starts_with_ci(v, p)) {
            flags.insert(TxCache::TX_CACHE_IGNORE);
        } else if starts_with_ci(v, "no-store") {
            flags.remove(TxCache::TX_CACHEABLE | TxCache::TX_CACHE_COOK);
        }
    }
    if !cc_found && pragma {
        flags.insert(TxCache::TX_CACHE_IGNORE);
    }
}

/// http_ana.c:http_check_response_for_cacheability() in 2.6: `private`, `no-cache`,
/// `no-store`, a null age or `Pragma: no-cache` forbid storing; a response with neither
/// an expiry (`max-age`, `s-maxage`, `Expires`) nor a validator (`ETag`,
/// `Last-Modified`) is not stored either.
fn http_check_response_for_cacheability(head: &Head, status: u16, flags: &mut TxCache) {
    if status < 200 {
        flags.remove(TxCache::TX_CACHEABLE | TxCache::TX_CACHE_COOK);
        return;
    }
    if head.value("pragma").is_some_and(|v| v.eq_ignore_ascii_case(b"no-cache")) {
        flags.remove(TxCache::TX_CACHEABLE | TxCache::TX_CACHE_COOK);
        return;
    }
    let mut fresh = false;
    for v in values(head, "cache-control") {
        let is = |x: &str| v.eq_ignore_ascii_case(x.as_bytes());
        if is("public") {
            flags.insert(TxCache::TX_CACHEABLE | TxCache::TX_CACHE_COOK);
        } else if is("private") || is("no-cache") || is("no-store") || is("max-age=0") || is("s-maxage=0") {
            flags.remove(TxCache::TX_CACHEABLE | TxCache::TX_CACHE_COOK);
        } else if starts_with_ci(v, "no-cache=\"set-cookie") {
            flags.remove(TxCache::TX_CACHE_COOK);
        } else if starts_with_ci(v, "s-maxage") || starts_with_ci(v, "max-age") {
            fresh = true;
        }
    }
    if !fresh {
        fresh = head.value("expires").is_some();
    }
    let validator = head.value("etag").is_some() || head.value("last-modified").is_some();
    if !fresh && !validator {
        flags.insert(TxCache::TX_CACHE_IGNORE);
    }
}

/// cache.c:directive_value() in 2.6: the value of `word=value` in a `Cache-Control`
/// element.
fn directive_value<'a>(v: &'a [u8], word: &str) -> Option<&'a [u8]> {
    let rest = v.get(word.len()..).filter(|_| starts_with_ci(v, word))?;
    rest.strip_prefix(b"=")
}

/// The leading decimal number of `v` (an optional quote first), as `strtol` reads it.
fn leading_number(v: &[u8]) -> Option<i64> {
    let v = v.strip_prefix(b"\"").unwrap_or(v);
    let digits = v.iter().take_while(|c| c.is_ascii_digit()).count();
    std::str::from_utf8(&v[..digits]).ok()?.parse().ok()
}

/// cache.c:http_calc_maxage() in 2.6: how long the response may be served (at most the
/// cache's `max-age`), and its own announced age limit: `s-maxage`, then `max-age`, then
/// `Expires` (a past or invalid date: 0). `None` for a malformed directive.
fn http_calc_maxage(head: &Head, cache_maxage: u64, now: u64) -> Option<(u64, u64)> {
    let (mut smaxage, mut maxage) = (None, None);
    for v in values(head, "cache-control") {
        if let Some(x) = directive_value(v, "s-maxage") {
            smaxage = Some(leading_number(x)?);
        }
        if let Some(x) = directive_value(v, "max-age") {
            maxage = Some(leading_number(x)?);
        }
    }
    let mut expires = None;
    if maxage.is_none()
        && smaxage.is_none()
        && let Some(e) = head.value("expires")
    {
        expires = Some(match parse_http_date(e) {
            Some(t) if t >= now as i64 => t as u64 - now,
            _ => 0,
        });
    }
    let own = match (smaxage, maxage, expires) {
        (Some(s), _, _) if s > 0 => s as u64,
        (_, Some(m), _) if m > 0 => m as u64,
        (_, _, Some(e)) => e,
        _ => return Some((cache_maxage, 0)),
    };
    Some((own.min(cache_maxage), own))
}

/// cache.c:get_last_modified_time() in 2.6: `Last-Modified`, else `Date`, else now.
fn get_last_modified_time(head: &Head, now: u64) -> i64 {
    ["last-modified", "date"]
        .iter()
        .find_map(|h| head.value(h).and_then(parse_http_date))
        .unwrap_or(now as i64)
}

/// cache.c:sha1_hosturi() in 2.6: the primary key, `https://` + `Host` + the URI for an
/// origin-form URI, the URI itself when it is absolute. `None` without a URI or `Host`.
fn sha1_hosturi(head: &Head) -> Option<String> {
    let StartLine::Request { uri, .. } = &head.start else { return None };
    if uri.is_empty() {
        return None;
    }
    if uri.contains("://") {
        return Some(uri.clone());
    }
    let host = head.value("host")?;
    Some(format!("https://{}{uri}", String::from_utf8_lossy(host)))
}

/// What `cache-use` found.
#[derive(Debug)]
pub enum CacheLookup {
    /// Nothing to serve: the request goes on to the server.
    Miss,
    /// No lookup was made (not cacheable, no key).
    Skipped,
    /// This entry answers the request.
    Hit(Arc<CacheEntry>),
}

/// The lookup part of cache.c:http_action_req_cache_use() in 2.6: compute the
/// transaction's keys and look the request up in `cache`. HTTP/1.0 requests and methods
/// other than GET and HEAD are not looked up, but still get their key (a successful POST
/// must invalidate the entry). `txn` is created here.
fn cache_lookup(
    cache: &mut Cache,
    head: &Head,
    http11: bool,
    txn: &mut Option<Box<CacheTxn>>,
    now: u64,
) -> CacheLookup {
    let method = match &head.start {
        StartLine::Request { method, .. } => method.as_str(),
        StartLine::Response { .. } => "",
    };
    let t = txn.get_or_insert_with(|| {
        let safe = ["GET", "HEAD", "OPTIONS", "TRACE"].contains(&method);
        let flags = if safe { TxCache::TX_CACHEABLE | TxCache::TX_CACHE_COOK } else { TxCache::empty() };
        Box::new(CacheTxn { flags, get: method == "GET", unsafe_method: !safe, ..CacheTxn::default() })
    });
    if !http11 || !matches!(method, "GET" | "HEAD") {
        t.flags.insert(TxCache::TX_CACHE_IGNORE);
    }
    http_check_request_for_cacheability(head, &mut t.flags);
    let Some(key) = sha1_hosturi(head) else { return CacheLookup::Skipped };
    t.key = key;
    if t.flags.contains(TxCache::TX_CACHE_IGNORE) {
        return CacheLookup::Skipped;
    }
    let first = cache.entry_exist(&t.key, None, now);
    match first {
        Some(e) if e.secondary_key_signature == 0 => return CacheLookup::Hit(e),
        Some(e) => {
            if let Some(k) = http_request_build_secondary_key(head, e.secondary_key_signature)
                && let Some(hit) = cache.entry_exist(&t.key, Some(&k), now)
            {
                return CacheLookup::Hit(hit);
            }
        }
        None => {}
    }
    if cache.vary_processing_enabled {
        // The response will say which headers it varies on: prepare every part.
        match http_request_build_secondary_key(head, u32::MAX) {
            Some(k) => {
                t.secondary = k;
                t.flags.insert(TxCache::TX_CACHE_HAS_SEC_KEY);
            }
            None => t.flags.remove(TxCache::TX_CACHE_HAS_SEC_KEY),
        }
    }
    CacheLookup::Miss
}

/// What the response facts `cache-store` needs.
#[derive(Clone, Copy, Debug)]
struct StoreFacts {
    /// The request was HTTP/1.1.
    req_http11: bool,
    /// The response's status.
    status: u16,
    /// The response is compressed by a filter that comes before this cache's (2.6's
    /// cache_store_post_analyze(): the frontend's compression and a backend's cache); the
    /// cache then stays out of it. A cache coming first keeps the server's response.
    compressed_before: bool,
    /// The response's Content-Length, if it has one.
    content_length: Option<u64>,
    /// The response is chunked.
    chunked: bool,
    /// `tune.bufsize - tune.maxrewrite`: larger heads are not stored.
    max_head: usize,
    /// Seconds since the epoch.
    now: u64,
}

/// The decision part of cache.c:http_action_store_cache() in 2.6: whether this response
/// is stored in `cache` (index `idx`) and, if so, keep its head and start the entry; its
/// body follows through `PendingEntry::add_data`. A successful unsafe request drops the
/// entry of its URI. `head` loses its `Age` header when stored, as in 2.6.
fn store_decision(cache: &mut Cache, idx: CacheId, head: &mut Head, f: StoreFacts, txn: &mut CacheTxn) {
    if !f.req_http11 {
        return;
    }
    if !txn.get {
        if txn.unsafe_method && (200..400).contains(&f.status) && !txn.key.is_empty() {
            let ids: Vec<u64> =
                cache.entries.get(&txn.key).map(|l| l.iter().map(|e| e.id).collect()).unwrap_or_default();
            for id in ids {
                let key = txn.key.clone();
                cache.delete_entry(&key, id);
            }
        }
        return;
    }
    if txn.key.is_empty() || f.status != 200 || f.compressed_before {
        return;
    }
    let head_size: usize = head.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>() + 32;
    if f.content_length.is_some_and(|cl| cl + head_size as u64 > cache.maxobjsz) {
        return;
    }
    let mut signature = 0;
    if cache.vary_processing_enabled {
        let Some(sig) = http_check_vary_header(head) else { return };
        signature = sig;
        if signature != 0 {
            if !txn.flags.contains(TxCache::TX_CACHE_HAS_SEC_KEY) {
                return;
            }
            http_request_reduce_secondary_key(signature, &mut txn.secondary);
        }
    } else if head.value("vary").is_some() {
        return;
    }
    http_check_response_for_cacheability(head, f.status, &mut txn.flags);
    if !txn.flags.contains(TxCache::TX_CACHEABLE | TxCache::TX_CACHE_COOK)
        || txn.flags.contains(TxCache::TX_CACHE_IGNORE)
    {
        return;
    }
    let Some((effective_maxage, true_maxage)) = http_calc_maxage(head, cache.maxage, f.now) else { return };
    let mut age = 0;
    if let Some(a) = head.value("age") {
        match std::str::from_utf8(a).ok().and_then(|a| a.trim().parse::<u64>().ok()) {
            Some(a) if a > 0 => {
                age = a.min(CACHE_ENTRY_MAX_AGE);
                if age > true_maxage {
                    return;
                }
            }
            _ => return,
        }
        head.remove("age");
    }
    if head_size > f.max_head {
        return;
    }
    let mut secondary_key = if signature != 0 { txn.secondary } else { [0; 8] };
    if signature != 0 && set_secondary_key_encoding(head, &mut secondary_key).is_err() {
        return;
    }
    let mut stored = head.clone();
    for h in ["connection", "proxy-connection", "keep-alive"] {
        stored.remove(h);
    }
    txn.store = Some(PendingEntry {
        cache: idx,
        maxobjsz: cache.maxobjsz,
        entry: CacheEntry {
            id: 0,
            hash: crc32(txn.key.as_bytes()),
            etag: head.value("etag").map(<[u8]>::to_vec),
            last_modified: get_last_modified_time(head, f.now),
            head: stored,
            body: Vec::new(),
            trailers: Vec::new(),
            chunked: f.chunked,
            latest_validation: f.now,
            expire: f.now + effective_maxage,
            age,
            secondary_key,
            secondary_key_signature: signature,
        },
    });
}

/// cache.c:cache_store_http_end() in 2.6: the whole response went through, the entry
/// becomes usable. An entry of the same key (and secondary key) is replaced.
fn cache_store_http_end(cache: &mut Cache, txn: &mut CacheTxn, now: u64) -> bool {
    let Some(p) = txn.store.take() else { return false };
    let old =
        cache.entry_exist(&txn.key, (p.entry.secondary_key_signature != 0).then_some(&txn.secondary), now);
    if let Some(old) = old {
        let key = txn.key.clone();
        cache.delete_entry(&key, old.id);
    }
    cache.insert_entry(txn.key.clone(), p.entry, now)
}

/// cache.c:http_action_req_cache_use() in 2.6 (`http-request cache-use NAME`, run for
/// proxy `px`): look the request up; on a hit, the server side becomes the cache applet
/// (`s->target = &http_cache_applet`), which `sess_prepare_conn_req` establishes at once.
pub fn http_action_req_cache_use(w: &mut Haproxy, s: &mut Session, px: ProxyId, idx: CacheId) {
    if idx.idx() >= w.caches.len() || s.si[1].appctx.is_some() {
        // An earlier cache-use already answers this request.
        return;
    }
    let Some(head) = s.txn.req.head.as_ref() else { return };
    let span = tracing::debug_span!(
        names::HTTP_ACTION_REQ_CACHE_USE,
        sess = s.uniq_id,
        cache = w.caches[idx.idx()].id.as_str(),
        hit = tracing::field::Empty
    );
    let _g = span.enter();
    let now = unix_secs(w.clock.date);
    let lookup = cache_lookup(&mut w.caches[idx.idx()], head, !s.txn.cli_http10, &mut s.txn.cache, now);
    let counters = &mut w.proxies[px.idx()].counters;
    match lookup {
        CacheLookup::Skipped => {}
        CacheLookup::Miss => {
            counters.cache_lookups += 1;
            span.record("hit", false);
        }
        CacheLookup::Hit(entry) => {
            counters.cache_lookups += 1;
            counters.cache_hits += 1;
            span.record("hit", true);
            let head_request = matches!(&head.start, StartLine::Request { method, .. } if method == "HEAD");
            s.si[1].appctx = Some(Box::new(CacheAppCtx::new(entry, idx, head, head_request)));
            // Answered locally, as the request was read (`LR--` in the log).
            s.set_err(SnErr::SN_ERR_LOCAL);
            s.set_finst(SnFinst::SN_FINST_R);
        }
    }
}

/// cache.c:http_action_store_cache() in 2.6 (`http-response cache-store NAME`): `head`
/// is the response head as the rules left it at this point; a response the cache takes
/// gets its body copied by `http_response_forward_body`. Nothing happens without an
/// earlier `cache-use` (no key), nor for a response that came from the cache. `px` is
/// the proxy whose rule this is.
pub fn http_action_store_cache(w: &mut Haproxy, s: &mut Session, px: ProxyId, idx: CacheId, mut head: Head) {
    if idx.idx() >= w.caches.len() || s.si[1].appctx.is_some() {
        return;
    }
    // Nothing without an earlier cache-use (no key); an earlier cache-store keeps it.
    let Some(txn) = s.txn.cache.as_deref_mut().filter(|t| t.store.is_none()) else { return };
    let name = w.caches[idx.idx()].id.as_str();
    let _sp = tracing::debug_span!(names::HTTP_ACTION_STORE_CACHE, sess = s.uniq_id, cache = name).entered();
    let facts = StoreFacts {
        req_http11: !s.txn.cli_http10,
        status: s.txn.status.unwrap_or(0),
        compressed_before: s.comp_ctx.is_some()
            && px == s.be
            && s.be != s.fe
            && w.proxies[s.fe.idx()].comp.is_some(),
        content_length: match s.txn.rsp.framing {
            Some(Framing::Length(n)) => Some(n),
            _ => None,
        },
        chunked: s.txn.rsp.framing == Some(Framing::Chunked),
        max_head: s.rep.size.saturating_sub(s.rep.maxrewrite),
        now: unix_secs(w.clock.date),
    };
    let had_age = head.value("age").is_some();
    store_decision(&mut w.caches[idx.idx()], idx, &mut head, facts, txn);
    if had_age
        && txn.store.is_some()
        && let Some(live) = s.txn.rsp.head.as_mut()
    {
        // 2.6 removes `Age` from the message itself: the client does not see it either.
        live.remove("age");
    }
}

/// The response went through whole: a response being stored enters its cache.
pub fn cache_store_done(w: &mut Haproxy, s: &mut Session) {
    let Some(txn) = s.txn.cache.as_deref_mut() else { return };
    let Some(idx) = txn.store.as_ref().map(|p| p.cache) else { return };
    let now = unix_secs(w.clock.date);
    if let Some(cache) = w.caches.get_mut(idx.idx()) {
        cache_store_http_end(cache, txn, now);
    }
}

/// cache.c:smp_fetch_res_cache_hit() in 2.6 (`res.cache_hit`): true when the response
/// comes from the cache (the server side is the cache applet).
pub fn smp_fetch_res_cache_hit(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((_, s)) = c.strm {
        out.push(SmpData::Bool(s.si[1].appctx.is_some()));
    }
}

/// cache.c:smp_fetch_res_cache_name() in 2.6 (`res.cache_name`): the name of the cache
/// the response comes from; no sample when it does not come from a cache.
pub fn smp_fetch_res_cache_name(_: &[Arg], c: &SmpCtx, out: &mut Vec<SmpData>) {
    if let Some((w, s)) = c.strm
        && let Some(cache) = s.si[1].appctx.as_ref().and_then(|a| w.caches.get(a.cache.idx()))
    {
        out.push(SmpData::Str(cache.id.as_bytes().to_vec()));
    }
}

// ---------------------------------------------------------------------------------------
// Serving: the cache applet

/// `appctx->st0` of the cache applet.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HtxCacheState {
    /// Nothing sent yet (`HTX_CACHE_INIT`).
    HTX_CACHE_INIT,
    /// Sending (`HTX_CACHE_HEADER`/`_DATA`, one state here: the bytes are a stream).
    HTX_CACHE_DATA,
    /// Everything sent (`HTX_CACHE_END`).
    HTX_CACHE_END,
}

/// `struct cache_appctx`: the cache applet serving one entry as the server side.
#[derive(Debug, Clone)]
pub struct CacheAppCtx {
    /// The entry (kept alive while it is sent, even if evicted meanwhile).
    pub entry: Arc<CacheEntry>,
    /// The cache (`res.cache_name`).
    pub cache: CacheId,
    /// `st0`.
    pub st: HtxCacheState,
    /// `send_notmodified`: a `304 Not Modified` instead of the entry.
    pub send_notmodified: bool,
    /// The head (with `Age`) and, for a chunked entry, the first chunk's size line.
    prefix: Vec<u8>,
    /// What follows the body of a chunked entry: its end, the last chunk, trailers.
    suffix: Vec<u8>,
    /// Bytes of prefix, body and suffix written so far.
    sent: usize,
    /// The body is sent (not for `HEAD` nor a 304).
    with_body: bool,
    /// The idle server connection kept alive by the previous transaction, set aside
    /// while the applet stands for the server, and given back at the end.
    pub idle_fd: Option<crate::ids::Fd>,
}

/// http.c:http_compare_etags() in 2.6 (weak comparison): equal once `W/` is dropped.
fn etags_match(a: &[u8], b: &[u8]) -> bool {
    let strip = |e: &[u8]| e.strip_prefix(b"W/").unwrap_or(e).to_vec();
    strip(a.trim_ascii()) == strip(b.trim_ascii())
}

/// cache.c:should_send_notmodified_response() in 2.6: `If-None-Match` matching the
/// entry's `ETag` (or `*`), else `If-Modified-Since` no earlier than its date.
fn should_send_notmodified_response(req: &Head, entry: &CacheEntry) -> bool {
    let mut found = false;
    for v in values(req, "if-none-match") {
        found = true;
        if v == b"*" {
            return true;
        }
        if let Some(e) = &entry.etag
            && etags_match(e, v)
        {
            return true;
        }
    }
    if found {
        return false;
    }
    req.value("if-modified-since").and_then(parse_http_date).is_some_and(|ims| entry.last_modified <= ims)
}

impl CacheAppCtx {
    /// The applet for `entry` of cache `cache`, answering `req` (`HEAD`, conditional).
    pub fn new(entry: Arc<CacheEntry>, cache: CacheId, req: &Head, head_request: bool) -> CacheAppCtx {
        let send_notmodified = should_send_notmodified_response(req, &entry);
        CacheAppCtx {
            with_body: !head_request && !send_notmodified,
            entry,
            cache,
            st: HtxCacheState::HTX_CACHE_INIT,
            send_notmodified,
            prefix: Vec::new(),
            suffix: Vec::new(),
            sent: 0,
            idle_fd: None,
        }
    }

    /// Builds what surrounds the body: the stored head with `Age` (and the 304 status
    /// line), and the chunk framing of a chunked entry.
    fn prepare(&mut self, now: u64) {
        let e = &self.entry;
        let mut head = e.head.clone();
        let age = (now.saturating_sub(e.latest_validation) + e.age).min(CACHE_ENTRY_MAX_AGE);
        head.add("age", age.to_string());
        if self.send_notmodified
            && let StartLine::Response { status, reason, .. } = &mut head.start
        {
            *status = 304;
            *reason = "Not Modified".into();
        }
        self.prefix = head.to_bytes();
        if self.with_body && e.chunked {
            if !e.body.is_empty() {
                self.prefix.extend_from_slice(format!("{:x}\r\n", e.body.len()).as_bytes());
                self.suffix.extend_from_slice(b"\r\n");
            }
            self.suffix.extend_from_slice(b"0\r\n");
            self.suffix.extend_from_slice(&e.trailers);
            self.suffix.extend_from_slice(b"\r\n");
        }
    }

    /// The bytes from `at` on, in at most three slices.
    fn remaining(&self, at: usize) -> [&[u8]; 3] {
        let body: &[u8] = if self.with_body { &self.entry.body } else { &[] };
        let mut at = at;
        let mut out: [&[u8]; 3] = [&[], &[], &[]];
        for (i, part) in [&self.prefix[..], body, &self.suffix[..]].into_iter().enumerate() {
            let skip = at.min(part.len());
            out[i] = &part[skip..];
            at -= skip;
        }
        out
    }
}

/// cache.c:http_cache_io_handler() in 2.6, called as 1.5.0's `si_applet_call`: write what
/// fits of the entry into the response buffer, as if a server had sent it; eat the
/// request; shut the read side once everything is written. Returns true when it did
/// something (the session must run again to analyse it).
pub fn http_cache_io_handler(
    s: &mut Session,
    pool: &mut crate::haproxy::memory::Pool<crate::haproxy::buffers::Chunk>,
    now: u64,
) -> bool {
    let _sp = tracing::debug_span!(names::HTTP_CACHE_IO_HANDLER, sess = s.uniq_id).entered();
    let Some(ctx) = s.si[1].appctx.as_deref_mut() else { return false };
    let rep: &mut Buffer = &mut s.rep;
    if rep.flags.intersects(BufFlags::BF_SHUTW | BufFlags::BF_SHUTR | BufFlags::BF_SHUTW_NOW) {
        ctx.st = HtxCacheState::HTX_CACHE_END;
    }
    // The request goes nowhere: eat it.
    let o = s.req.o();
    s.req.bo_skip(o);
    if ctx.st == HtxCacheState::HTX_CACHE_END {
        return o > 0;
    }
    if ctx.st == HtxCacheState::HTX_CACHE_INIT {
        ctx.prepare(now);
        ctx.st = HtxCacheState::HTX_CACHE_DATA;
    }
    if !rep.b_alloc(pool) {
        return o > 0;
    }
    let mut written = 0;
    loop {
        let parts = ctx.remaining(ctx.sent);
        let Some(src) = parts.iter().find(|p| !p.is_empty()) else { break };
        let space = rep.recv_space();
        if space.is_empty() {
            break;
        }
        let n = space.len().min(src.len());
        space[..n].copy_from_slice(&src[..n]);
        rep.commit_recv(n);
        ctx.sent += n;
        written += n;
    }
    let done = ctx.remaining(ctx.sent).iter().all(|p| p.is_empty());
    if written > 0 {
        rep.flags.insert(BufFlags::BF_READ_PARTIAL);
    }
    if done {
        ctx.st = HtxCacheState::HTX_CACHE_END;
        s.rep.flags.insert(BufFlags::BF_READ_NULL);
        stream_int_shutr(s, Side::Srv);
    } else {
        s.si[1].flags.insert(SiFlags::SI_FL_WAIT_ROOM);
    }
    written > 0 || done || o > 0
}

/// cache.c:cli_io_handler_show_cache() in 2.6: `show cache`, each cache then each live
/// entry (addresses are haflow's).
pub fn cli_io_handler_show_cache(caches: &[Cache], now: u64) -> String {
    let mut out = String::new();
    for c in caches {
        let avail = c.available_blocks();
        out.push_str(&format!("{:p}: {} (shctx:{:p}, available blocks:{avail})\n", c, c.id, &c.entries));
        for e in c.live_entries(now) {
            let vary: String = e.secondary_key.iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!(
                "{:p} hash:{} vary:0x{vary} size:{} ({} blocks), refcount:{}, expire:{}\n",
                Arc::as_ptr(&e),
                e.hash,
                e.size(),
                e.blocks(),
                Arc::strong_count(&e) - 2,
                e.expire as i64 - now as i64
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Head {
        Head {
            start: StartLine::Request { method: "GET".into(), uri: "/x".into(), version: "HTTP/1.1".into() },
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect(),
        }
    }

    fn bitmap(ae: &[&str]) -> Option<u32> {
        let h: Vec<(&str, &str)> = ae.iter().map(|v| ("accept-encoding", *v)).collect();
        accept_encoding_normalizer(&req(&h))
    }

    #[test]
    fn accept_encoding_becomes_2_6s_bitmap() {
        assert_eq!(bitmap(&[]), Some(u32::MAX), "no header: anything goes");
        assert_eq!(bitmap(&[""]), Some(enc::IDENTITY), "an empty header: identity only");
        assert_eq!(bitmap(&["gzip"]), Some(enc::IDENTITY | enc::GZIP));
        assert_eq!(bitmap(&["GZIP  ; q=0.8"]), Some(enc::IDENTITY | enc::GZIP));
        assert_eq!(bitmap(&["deflate;q=0.8, gzip;q=0"]), Some(enc::IDENTITY | enc::DEFLATE));
        assert_eq!(bitmap(&["first_value"]), Some(enc::IDENTITY | enc::OTHER));
        assert_eq!(bitmap(&["deflate, identity;q=0"]), Some(enc::DEFLATE));
        assert_eq!(bitmap(&["gzip;q=0, deflate,*;q=0"]), Some(enc::IDENTITY | enc::DEFLATE));
        assert_eq!(bitmap(&["gzip;q=0, deflate,*"]), Some(!enc::GZIP));
        let many: Vec<String> = (1..=17).map(|i| format!("a{i}")).collect();
        assert_eq!(bitmap(&[&many.join(",")]), None, "16 values at most");
    }

    #[test]
    fn a_stored_coding_must_be_accepted() {
        let key = |bits: u32| {
            let mut k = [0; 8];
            k[..4].copy_from_slice(&bits.to_le_bytes());
            k
        };
        assert!(secondary_key_cmp(&key(enc::GZIP), &key(enc::GZIP | enc::IDENTITY)));
        assert!(!secondary_key_cmp(&key(enc::GZIP), &key(enc::IDENTITY | enc::OTHER)));
        assert!(!secondary_key_cmp(&key(enc::OTHER), &key(u32::MAX)));
    }

    #[test]
    fn http_dates_in_the_three_formats() {
        let t = 784_111_777;
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), Some(t));
        assert_eq!(parse_http_date(b"yesterday"), None);
    }

    #[test]
    fn max_age_comes_from_s_maxage_max_age_then_expires() {
        let h = |v: &[(&str, &str)]| req(v);
        assert_eq!(http_calc_maxage(&h(&[("cache-control", "max-age=5")]), 20, 0), Some((5, 5)));
        assert_eq!(
            http_calc_maxage(&h(&[("cache-control", "s-maxage=50, max-age=5")]), 20, 0),
            Some((20, 50))
        );
        assert_eq!(http_calc_maxage(&h(&[("cache-control", "max-age=abc")]), 20, 0), None);
        let now = 784_111_777;
        let e = h(&[("expires", "Sun, 06 Nov 1994 08:49:42 GMT")]);
        assert_eq!(http_calc_maxage(&e, 20, now as u64), Some((5, 5)));
        assert_eq!(http_calc_maxage(&h(&[("expires", "junk")]), 20, 0), Some((0, 0)));
        assert_eq!(http_calc_maxage(&h(&[]), 20, 0), Some((20, 0)));
    }

    #[test]
    fn the_oldest_entries_make_room() {
        let mut c = Cache::new("c", "f", 1);
        c.maxblocks = 3;
        c.maxobjsz = 3000;
        let entry = |n: usize| CacheEntry {
            id: 0,
            hash: 0,
            head: req(&[]),
            body: vec![b'x'; n],
            trailers: Vec::new(),
            chunked: false,
            latest_validation: 0,
            expire: 100,
            age: 0,
            secondary_key: [0; 8],
            secondary_key_signature: 0,
            etag: None,
            last_modified: 0,
        };
        assert!(c.insert_entry("a".into(), entry(1500), 0));
        assert!(c.insert_entry("b".into(), entry(500), 0));
        assert!(c.insert_entry("c".into(), entry(1000), 0));
        assert!(c.entry_exist("a", None, 0).is_none(), "evicted");
        assert!(c.entry_exist("b", None, 0).is_some());
        assert!(c.entry_exist("c", None, 50).is_some());
        assert!(c.entry_exist("c", None, 100).is_none(), "expired");
        assert!(!c.insert_entry("d".into(), entry(3500), 0), "larger than max-object-size");
    }
}
