//! HTTP compression: the `compression` keywords, the choice of an algorithm from the
//! request's `Accept-Encoding`, the checks on the response, and the compressing of its
//! body into chunks.
//!
//! Reproduces `compression.c` and the compression parts of `proto_http.c` (1.5.0, where
//! compression first shipped): `select_compression_request_header` picks an algorithm
//! when the request leaves (`http_process_request`), `select_compression_response_header`
//! decides whether this response is compressed (`http_wait_for_response`), and
//! `http_response_forward_body` then feeds the body through
//! `http_compression_buffer_init` / `_add_data` / `_end`, which replace the bytes taken
//! from the buffer's input by a chunk of compressed data in its output. The observable
//! rules (which statuses, the `ETag` and `Vary` headers, the header order) follow HAProxy
//! 2.6's `flt_http_comp.c`, whose names are used where 1.5 has no equivalent
//! (`set_compression_response_header`). Deflate is done by the `flate2` crate, at
//! `tune.comp.maxlevel` (1 by default, as in HAProxy).
//!
//! A proxy without `compression` pays nothing: `px.comp` is `None`, no request is
//! looked at, and `s.comp_ctx` stays empty. The context of a compressed response comes
//! from `pool_comp_ctx` and goes back there, with its deflate state, at the end of the
//! transaction.

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use crate::haproxy::buffers::Buffer;
use crate::haproxy::h1::Head;
use crate::haproxy::memory::Pool;
use crate::haproxy::session::Session;
use crate::trace::names;

/// One entry of `comp_algos[]` (compression.c, 2.6's list: 1.5's three plus
/// `raw-deflate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompAlgo {
    /// `identity`: the data pass unchanged, but the response is still re-chunked.
    Identity,
    /// `deflate`: zlib format (RFC 1950), announced as `deflate`.
    Deflate,
    /// `raw-deflate`: deflate without the zlib wrapper (RFC 1951), announced as `deflate`.
    RawDeflate,
    /// `gzip` (RFC 1952).
    Gzip,
}

impl CompAlgo {
    /// Every algorithm, in `comp_algos[]` order.
    pub const ALL: [CompAlgo; 4] =
        [CompAlgo::Identity, CompAlgo::Deflate, CompAlgo::RawDeflate, CompAlgo::Gzip];

    /// `cfg_name`: the name in the configuration.
    pub fn cfg_name(self) -> &'static str {
        match self {
            CompAlgo::Identity => "identity",
            CompAlgo::Deflate => "deflate",
            CompAlgo::RawDeflate => "raw-deflate",
            CompAlgo::Gzip => "gzip",
        }
    }

    /// `ua_name`: the token in `Accept-Encoding` and `Content-Encoding`.
    pub fn ua_name(self) -> &'static str {
        match self {
            CompAlgo::RawDeflate => "deflate",
            a => a.cfg_name(),
        }
    }
}

/// `struct comp`: a proxy's `compression` settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comp {
    /// `algos`, in configuration order (HAProxy prepends to a list and walks it from its
    /// head, so the last one configured is tried first: see `algos_tried`).
    pub algos: Vec<CompAlgo>,
    /// `types`: the `Content-Type` prefixes to compress (none: every type).
    pub types: Vec<String>,
    /// `offload`: remove `Accept-Encoding` from requests.
    pub offload: bool,
}

impl Comp {
    /// compression.c:comp_append_algo() in 1.5.0. Returns the algorithm appended, `None`
    /// for an unknown name.
    pub fn comp_append_algo(&mut self, name: &str) -> Option<CompAlgo> {
        let algo = CompAlgo::ALL.into_iter().find(|a| a.cfg_name() == name)?;
        self.algos.push(algo);
        Some(algo)
    }

    /// compression.c:comp_append_type() in 1.5.0.
    pub fn comp_append_type(&mut self, name: &str) {
        self.types.push(name.to_string());
    }

    /// The algorithms in the order HAProxy's list holds them: last configured first.
    fn algos_tried(&self) -> impl Iterator<Item = CompAlgo> + '_ {
        self.algos.iter().rev().copied()
    }

    /// The types in HAProxy's list order (last configured first).
    fn types_tried(&self) -> impl Iterator<Item = &str> {
        self.types.iter().rev().map(String::as_str)
    }
}

/// What a `compression` line said, for the parser: its warning, if any.
pub type CompParsed = Option<String>;

/// flt_http_comp.c:parse_compression_options() in 2.6: one `compression` line (the words
/// after the keyword). `in_defaults` says whether it is a `defaults` section, where
/// `offload` is ignored with a warning.
pub fn parse_compression_options(
    comp: &mut Comp,
    args: &[String],
    in_defaults: bool,
) -> Result<CompParsed, String> {
    match args.first().map(String::as_str) {
        Some("algo") => {
            if args.len() < 2 {
                return Err("'compression' expects <algorithm>.".into());
            }
            for a in &args[1..] {
                comp.comp_append_algo(a)
                    .ok_or_else(|| format!("'compression' : '{a}' is not a supported algorithm."))?;
            }
            Ok(None)
        }
        Some("offload") => {
            if in_defaults {
                return Ok(Some("'compression' : 'offload' ignored in 'defaults' section.".into()));
            }
            comp.offload = true;
            Ok(None)
        }
        Some("type") => {
            if args.len() < 2 {
                return Err("'compression' expects <type>.".into());
            }
            for t in &args[1..] {
                comp.comp_append_type(t);
            }
            Ok(None)
        }
        _ => Err("'compression' expects 'algo', 'type' or 'offload'".into()),
    }
}

// ---------------------------------------------------------------------------------------
// Choosing: the request, then the response

/// `http_find_header2()` without `full`: the comma-separated values of header `name`,
/// trimmed, a quoted string keeping its commas.
fn header_values<'a>(head: &'a Head, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    head.values(name)
        .flat_map(|v| crate::haproxy::sample::split_values(v).into_iter().filter(|p| !p.is_empty()))
}

/// standard.c:word_match() in 1.5.0: `sample` is `word` (case-insensitive), possibly
/// followed by blanks.
fn word_match(sample: &[u8], word: &str) -> bool {
    sample.len() >= word.len()
        && sample[..word.len()].eq_ignore_ascii_case(word.as_bytes())
        && sample[word.len()..].iter().all(|&c| c == b' ' || c == b'\t')
}

/// proto_http.c:parse_qvalue() in 1.5.0: a q-value in thousandths (`0.750` is 750),
/// 1000 at most; whatever is not a digit ends it.
fn parse_qvalue(q: &[u8]) -> u32 {
    let d = |i: usize| q.get(i).filter(|c| c.is_ascii_digit()).map(|c| u32::from(c - b'0'));
    let Some(units) = d(0) else { return 1000 };
    let mut v = units * 1000;
    if q.get(1) == Some(&b'.') {
        for (i, w) in [(2, 100), (3, 10), (4, 1)] {
            match d(i) {
                Some(x) => v += x * w,
                None => break,
            }
        }
    }
    v.min(1000)
}

/// `HTTP_IS_TOKEN`.
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// The q-value of one `Accept-Encoding` element (`gzip;q=0.5`): 1000 without `q=`.
fn element_qvalue(rest: &[u8]) -> u32 {
    for param in rest.split(|&c| c == b';').skip(1) {
        let p = param.trim_ascii_start();
        if let Some(q) = p.strip_prefix(b"q=") {
            return parse_qvalue(q);
        }
    }
    1000
}

/// The `User-Agent` test HAProxy keeps from 2012: `Mozilla/4` browsers get no
/// compression, unless they are MSIE 6 with XP SP2, or MSIE 7 and later.
fn buggy_user_agent(ua: &[u8]) -> bool {
    ua.len() >= 9
        && ua.starts_with(b"Mozilla/4")
        && (ua.len() < 31
            || &ua[25..30] != b"MSIE "
            || ua[30] < b'6'
            || (ua[30] == b'6' && (ua.len() < 54 || &ua[51..54] != b"SV1")))
}

/// proto_http.c:select_compression_request_header() in 1.5.0: the algorithm to use for
/// this request's response, from its `Accept-Encoding` (the highest q-value wins, `*`
/// takes the first algorithm of the list; `identity` needs no header). With
/// `compression offload`, `Accept-Encoding` is removed so the server sends plain data.
/// `be` is the backend's settings, `fe` the frontend's; the backend's win.
/// Divergence: the `Mozilla/4` test reads `SV1` at offset 51 of the value, as 2.6
/// does; 1.5.0 read it from the start of the header line.
pub fn select_compression_request_header(
    head: &mut Head,
    be: Option<&Comp>,
    fe: Option<&Comp>,
) -> Option<CompAlgo> {
    if head.value("user-agent").is_some_and(buggy_user_agent) {
        return None;
    }
    let algos = be.filter(|c| !c.algos.is_empty()).or(fe.filter(|c| !c.algos.is_empty()))?;
    let mut best: Option<(CompAlgo, u32)> = None;
    for elem in header_values(head, "accept-encoding") {
        let toklen = elem.iter().take_while(|&&c| is_token(c)).count();
        let q = element_qvalue(&elem[toklen..]);
        if q <= best.map_or(0, |(_, q)| q) {
            continue;
        }
        if let Some(a) =
            algos.algos_tried().find(|a| elem[0] == b'*' || word_match(&elem[..toklen], a.ua_name()))
        {
            best = Some((a, q));
        }
    }
    if let Some((algo, _)) = best {
        if be.is_some_and(|c| c.offload) || fe.is_some_and(|c| c.offload) {
            head.remove("accept-encoding");
        }
        return Some(algo);
    }
    // identity is implicit: it does not require the header.
    algos.algos_tried().find(|a| *a == CompAlgo::Identity)
}

/// What the response checks need to know of the transaction.
#[derive(Clone, Copy, Debug)]
pub struct RspFacts {
    /// The request was HTTP/1.1 (`HTTP_MSGF_VER_11` on `txn->req`).
    pub req_http11: bool,
    /// The request was a `HEAD`.
    pub head_request: bool,
    /// The response's status.
    pub status: u16,
    /// The response has a body of known length (Content-Length above 0, or chunked):
    /// `HTTP_MSGF_XFER_LEN` without `HTTP_MSGF_BODYLESS`.
    pub has_sized_body: bool,
}

/// http.c:http_get_etag_type() in 2.6: a strong (`"x"`) or weak (`W/"x"`) ETag, or
/// `None` when malformed.
fn etag_is_strong(v: &[u8]) -> Option<bool> {
    if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
        Some(true)
    } else if v.len() >= 4 && v.starts_with(b"W/\"") && v[v.len() - 1] == b'"' {
        Some(false)
    } else {
        None
    }
}

/// Why a response is not compressed (the span records it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoCompReason {
    /// HTTP/1.0 on either side.
    Http10,
    /// A `HEAD` request.
    HeadRequest,
    /// Status other than 200, 201, 202 or 203.
    Status,
    /// No body, or one of unknown length.
    NoSizedBody,
    /// `Content-Encoding` present: already encoded.
    Encoded,
    /// `Cache-Control: no-transform`.
    NoTransform,
    /// A malformed `ETag`, or several.
    Etag,
    /// `multipart/*`, or a type `compression type` does not list.
    ContentType,
}

impl NoCompReason {
    /// A short word for spans.
    pub fn as_str(self) -> &'static str {
        match self {
            NoCompReason::Http10 => "http/1.0",
            NoCompReason::HeadRequest => "HEAD",
            NoCompReason::Status => "status",
            NoCompReason::NoSizedBody => "no body length",
            NoCompReason::Encoded => "content-encoding",
            NoCompReason::NoTransform => "no-transform",
            NoCompReason::Etag => "etag",
            NoCompReason::ContentType => "content-type",
        }
    }
}

/// proto_http.c:select_compression_response_header() in 1.5.0: whether the response
/// chosen for compression at request time is compressed. The tests are 2.6's (1.5.0
/// compressed status 200 only, and had no `HEAD` and `ETag` tests).
pub fn select_compression_response_header(
    head: &Head,
    facts: RspFacts,
    be: Option<&Comp>,
    fe: Option<&Comp>,
) -> Result<(), NoCompReason> {
    if !facts.req_http11 || head.minor() == 0 {
        return Err(NoCompReason::Http10);
    }
    if facts.head_request {
        return Err(NoCompReason::HeadRequest);
    }
    if !(200..=203).contains(&facts.status) {
        return Err(NoCompReason::Status);
    }
    if !facts.has_sized_body {
        return Err(NoCompReason::NoSizedBody);
    }
    if head.value("content-encoding").is_some() {
        return Err(NoCompReason::Encoded);
    }
    if header_values(head, "cache-control").any(|v| word_match(v, "no-transform")) {
        return Err(NoCompReason::NoTransform);
    }
    let mut etags = head.values("etag");
    if let Some(e) = etags.next()
        && (etag_is_strong(e).is_none() || etags.next().is_some())
    {
        return Err(NoCompReason::Etag);
    }
    let types = be.filter(|c| !c.types.is_empty()).or(fe.filter(|c| !c.types.is_empty()));
    match head.value("content-type") {
        Some(ct) => {
            if ct.len() >= 9 && ct[..9].eq_ignore_ascii_case(b"multipart") {
                return Err(NoCompReason::ContentType);
            }
            if let Some(c) = types
                && !c
                    .types_tried()
                    .any(|t| ct.len() >= t.len() && ct[..t.len()].eq_ignore_ascii_case(t.as_bytes()))
            {
                return Err(NoCompReason::ContentType);
            }
        }
        None if types.is_some() => return Err(NoCompReason::ContentType),
        None => {}
    }
    Ok(())
}

/// flt_http_comp.c:set_compression_response_header() in 2.6: the response announces
/// its new encoding: `Transfer-Encoding: chunked` instead of `Content-Length`, a strong
/// `ETag` made weak, `Vary: Accept-Encoding`, then `Content-Encoding` (not for identity),
/// in 2.6.12's order.
pub fn set_compression_response_header(head: &mut Head, algo: CompAlgo, chunked: bool) {
    if !chunked {
        head.add("transfer-encoding", "chunked");
    }
    head.remove("content-length");
    if let Some((_, v)) = head.headers.iter_mut().find(|(n, _)| n == "etag")
        && v.first() == Some(&b'"')
    {
        v.splice(0..0, *b"W/");
    }
    head.add("vary", "Accept-Encoding");
    if algo != CompAlgo::Identity {
        head.add("content-encoding", algo.ua_name());
    }
}

// ---------------------------------------------------------------------------------------
// Compressing

/// A deflate stream and the settings it was made with (kept across transactions).
#[derive(Debug)]
struct DeflateStream {
    zlib_header: bool,
    level: u32,
    strm: Compress,
}

/// How a call to `http_compression_buffer_end` ends the chunk it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompEnd {
    /// More data will come: a sync flush, the data chunk alone.
    More,
    /// The data ended and the server's trailers follow: the last chunk `0\r\n`, without
    /// the empty line the trailers bring.
    Trailers,
    /// The message ends here: the last chunk and the empty line, `0\r\n\r\n`.
    Done,
}

/// `struct comp_ctx`, with the part of the temporary buffer (`tmpbuf`) that outlives an
/// analyser pass: one compressed response.
#[derive(Debug)]
pub struct CompCtx {
    /// The algorithm (`s->comp_algo`).
    pub algo: CompAlgo,
    /// The deflate state (none for identity; kept in the pool for the next response).
    deflate: Option<DeflateStream>,
    /// The CRC-32 and length of the data, for the gzip trailer.
    crc: Crc,
    /// The gzip header is written.
    header_done: bool,
    /// Bytes given to the compressor since the last flush (a flush of nothing is skipped).
    pending: bool,
    /// Compressed bytes of this pass, not framed into a chunk yet.
    zbuf: Vec<u8>,
    /// Chunks ready for the client that did not fit in the buffer yet.
    out: Vec<u8>,
    /// The last chunk was written: only `out` remains to be sent.
    pub finished: bool,
    /// Body bytes taken in (`comp_in`).
    pub bytes_in: u64,
    /// Bytes put out, chunk framing included (`comp_out`).
    pub bytes_out: u64,
}

impl CompCtx {
    fn new(algo: CompAlgo) -> CompCtx {
        CompCtx {
            algo,
            deflate: None,
            crc: Crc::new(),
            header_done: false,
            pending: false,
            zbuf: Vec::new(),
            out: Vec::new(),
            finished: false,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// compression.c:deflate_init() / gzip_init() / identity_init() in 1.5.0: ready for a
    /// new response at `level`, reusing the deflate state when its settings match.
    fn init(&mut self, algo: CompAlgo, level: u32) {
        self.algo = algo;
        self.crc.reset();
        self.header_done = false;
        self.pending = false;
        self.zbuf.clear();
        self.out.clear();
        self.finished = false;
        self.bytes_in = 0;
        self.bytes_out = 0;
        let zlib_header = match algo {
            CompAlgo::Identity => return,
            CompAlgo::Deflate => true,
            CompAlgo::RawDeflate | CompAlgo::Gzip => false,
        };
        match &mut self.deflate {
            Some(d) if d.zlib_header == zlib_header && d.level == level => d.strm.reset(),
            d => {
                *d = Some(DeflateStream {
                    zlib_header,
                    level,
                    strm: Compress::new(Compression::new(level), zlib_header),
                })
            }
        }
    }

    /// The gzip header HAProxy's zlib writes: no name, no date, `XFL` 4 at level 1, 2 at
    /// 9, `OS` 3 (Unix).
    fn gzip_header(level: u32) -> [u8; 10] {
        let xfl = match level {
            1 => 4,
            9 => 2,
            _ => 0,
        };
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]
    }

    /// Runs the deflate stream over `data` (or flushes it), appending to `zbuf`.
    fn deflate(&mut self, data: &[u8], flush: FlushCompress) -> Result<(), flate2::CompressError> {
        let Some(d) = self.deflate.as_mut() else { return Ok(()) };
        let start_in = d.strm.total_in();
        loop {
            self.zbuf.reserve(data.len() / 2 + 64);
            let done_in = (d.strm.total_in() - start_in) as usize;
            let before_out = d.strm.total_out();
            let status = d.strm.compress_vec(&data[done_in..], &mut self.zbuf, flush)?;
            let all_in = (d.strm.total_in() - start_in) as usize == data.len();
            let room_left = self.zbuf.len() < self.zbuf.capacity();
            match flush {
                FlushCompress::Finish if status == Status::StreamEnd => return Ok(()),
                FlushCompress::Finish => {}
                _ if all_in && room_left => return Ok(()),
                _ => {}
            }
            if status == Status::BufError && d.strm.total_out() == before_out && all_in && room_left {
                return Ok(());
            }
        }
    }

    /// compression.c:deflate_add_data() / identity_add_data() in 1.5.0: compress `data`
    /// into `zbuf`.
    fn add_data(&mut self, data: &[u8]) -> Result<(), flate2::CompressError> {
        if data.is_empty() {
            return Ok(());
        }
        self.pending = true;
        match self.algo {
            CompAlgo::Identity => {
                self.zbuf.extend_from_slice(data);
                Ok(())
            }
            CompAlgo::Gzip => {
                if !self.header_done {
                    let level = self.deflate.as_ref().map_or(1, |d| d.level);
                    self.zbuf.extend_from_slice(&Self::gzip_header(level));
                    self.header_done = true;
                }
                self.crc.update(data);
                self.deflate(data, FlushCompress::None)
            }
            CompAlgo::Deflate | CompAlgo::RawDeflate => self.deflate(data, FlushCompress::None),
        }
    }

    /// compression.c:deflate_flush() in 1.5.0: `Z_SYNC_FLUSH` at the end of a buffer,
    /// `Z_FINISH` (and the gzip trailer) at the end of the data.
    fn flush(&mut self, finish: bool) -> Result<(), flate2::CompressError> {
        if self.algo == CompAlgo::Identity {
            return Ok(());
        }
        if finish {
            if self.algo == CompAlgo::Gzip && !self.header_done {
                let level = self.deflate.as_ref().map_or(1, |d| d.level);
                self.zbuf.extend_from_slice(&Self::gzip_header(level));
                self.header_done = true;
            }
            self.deflate(&[], FlushCompress::Finish)?;
            if self.algo == CompAlgo::Gzip {
                self.zbuf.extend_from_slice(&self.crc.sum().to_le_bytes());
                self.zbuf.extend_from_slice(&self.crc.amount().to_le_bytes());
            }
        } else if self.pending {
            self.deflate(&[], FlushCompress::Sync)?;
        }
        self.pending = false;
        Ok(())
    }

    /// Moves as many waiting chunk bytes as fit into the buffer's output.
    fn push_out(&mut self, buf: &mut Buffer) -> usize {
        let room = buf.size.saturating_sub(buf.len());
        let k = room.min(self.out.len());
        if k > 0 && buf.replace_input(0, 0, &self.out[..k]) {
            buf.b_adv(k);
            self.out.drain(..k);
            return k;
        }
        0
    }

    /// True while chunks wait for room in the buffer.
    pub fn has_pending_output(&self) -> bool {
        !self.out.is_empty()
    }
}

/// `pool_comp_ctx` (compression.c in 1.5.0): the contexts of compressed responses.
pub type CompCtxPool = Pool<CompCtx>;

/// A context for a response compressed with `algo` at `level`, from the pool.
pub fn comp_ctx_alloc(pool: &mut CompCtxPool, algo: CompAlgo, level: u32) -> Option<Box<CompCtx>> {
    let mut ctx = pool.pool_alloc2_with(|| CompCtx::new(algo), |_| {})?;
    ctx.init(algo, level);
    Some(ctx)
}

/// compression.c:deflate_end() in 1.5.0, as `http_reset_txn()` and `session_free()`
/// call it: the context goes back to `pool_comp_ctx`, and the algorithm is forgotten.
pub fn comp_ctx_free(pool: &mut CompCtxPool, s: &mut Session) {
    s.comp_algo = None;
    if let Some(ctx) = s.comp_ctx.take() {
        let _p = tracing::trace_span!(names::POOL_FREE2, pool = "comp_ctx").entered();
        pool.pool_free2(ctx);
    }
}

/// compression.c:http_compression_buffer_init() in 1.5.0: before data are taken from the
/// buffer, the chunks of the previous pass that did not fit go out. Returns `false`
/// while some are still waiting (the analyser then waits for the client to read).
pub fn http_compression_buffer_init(ctx: &mut CompCtx, buf: &mut Buffer) -> bool {
    ctx.push_out(buf);
    ctx.out.len() < buf.size
}

/// compression.c:http_compression_buffer_add_data() in 1.5.0: compress up to
/// `chunk_len` (`msg->chunk_len`: what is left of the current block) bytes from the
/// start of the buffer's input, and remove them from it. Returns how many were taken.
pub fn http_compression_buffer_add_data(
    ctx: &mut CompCtx,
    buf: &mut Buffer,
    chunk_len: &mut u64,
) -> Result<usize, flate2::CompressError> {
    let n = (buf.i() as u64).min(*chunk_len) as usize;
    if n == 0 {
        return Ok(0);
    }
    ctx.add_data(&buf.input()[..n])?;
    buf.bi_skip(n);
    *chunk_len -= n as u64;
    ctx.bytes_in += n as u64;
    Ok(n)
}

/// Appends `size` in hex and CRLF (`http_emit_chunk_size`, without 1.5.0's padding to
/// six digits: HAProxy 2.6 writes the shortest form).
fn emit_chunk_size(out: &mut Vec<u8>, size: usize) {
    out.extend_from_slice(format!("{size:x}\r\n").as_bytes());
}

/// compression.c:http_compression_buffer_end() in 1.5.0: flush the compressor, frame
/// what it produced as one chunk (with the last chunk when the data end), and put it in
/// the buffer's output ahead of the input still to be read. Returns the bytes emitted.
pub fn http_compression_buffer_end(
    ctx: &mut CompCtx,
    buf: &mut Buffer,
    end: CompEnd,
) -> Result<usize, flate2::CompressError> {
    if !ctx.finished {
        let _sp = tracing::debug_span!(
            names::HTTP_COMPRESSION_BUFFER_END,
            algo = ctx.algo.cfg_name(),
            end = ?end,
            bytes_in = ctx.bytes_in
        )
        .entered();
        ctx.flush(end != CompEnd::More)?;
        let mut framed = std::mem::take(&mut ctx.out);
        if !ctx.zbuf.is_empty() {
            emit_chunk_size(&mut framed, ctx.zbuf.len());
            framed.extend_from_slice(&ctx.zbuf);
            framed.extend_from_slice(b"\r\n");
            ctx.zbuf.clear();
        }
        match end {
            CompEnd::More => {}
            CompEnd::Trailers => framed.extend_from_slice(b"0\r\n"),
            CompEnd::Done => framed.extend_from_slice(b"0\r\n\r\n"),
        }
        ctx.finished = end != CompEnd::More;
        ctx.bytes_out += (framed.len() - ctx.out.len()) as u64;
        ctx.out = framed;
    }
    Ok(ctx.push_out(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::h1::StartLine;

    fn req(headers: &[(&str, &str)]) -> Head {
        Head {
            start: StartLine::Request { method: "GET".into(), uri: "/".into(), version: "HTTP/1.1".into() },
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect(),
        }
    }

    fn comp(algos: &[&str]) -> Comp {
        let mut c = Comp::default();
        for a in algos {
            c.comp_append_algo(a).unwrap();
        }
        c
    }

    #[test]
    fn the_highest_q_value_wins_and_star_takes_the_last_configured() {
        let c = comp(&["gzip", "deflate"]);
        let pick = |ae: &str| {
            select_compression_request_header(&mut req(&[("accept-encoding", ae)]), Some(&c), None)
        };
        assert_eq!(pick("*;q=0, gzip;q=0.750, deflate;q=0.500"), Some(CompAlgo::Gzip));
        assert_eq!(pick("*;q=0, gzip;q=0.500, deflate;q=0.750"), Some(CompAlgo::Deflate));
        assert_eq!(pick("*"), Some(CompAlgo::Deflate), "HAProxy's list holds the last configured first");
        assert_eq!(pick("GZIP"), Some(CompAlgo::Gzip));
        assert_eq!(pick("br, gzip;q=0"), None);
        assert_eq!(pick("invalid"), None);
    }

    #[test]
    fn identity_needs_no_header_and_offload_removes_it() {
        let c = comp(&["identity"]);
        assert_eq!(
            select_compression_request_header(&mut req(&[]), Some(&c), None),
            Some(CompAlgo::Identity)
        );
        let mut c = comp(&["gzip"]);
        c.offload = true;
        let mut h = req(&[("accept-encoding", "gzip"), ("x", "1")]);
        assert_eq!(select_compression_request_header(&mut h, None, Some(&c)), Some(CompAlgo::Gzip));
        assert_eq!(h.value("accept-encoding"), None);
        assert_eq!(h.value("x"), Some(&b"1"[..]));
    }

    #[test]
    fn old_mozilla_4_agents_get_nothing_but_msie_7_does() {
        let c = comp(&["gzip"]);
        let pick = |ua: &str| {
            select_compression_request_header(
                &mut req(&[("user-agent", ua), ("accept-encoding", "gzip")]),
                Some(&c),
                None,
            )
        };
        assert_eq!(pick("Mozilla/4"), None);
        assert_eq!(pick("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)"), Some(CompAlgo::Gzip));
        assert_eq!(pick("Mozilla/5.0"), Some(CompAlgo::Gzip));
    }

    #[test]
    fn q_values_parse_like_haproxy() {
        assert_eq!(parse_qvalue(b"0"), 0);
        assert_eq!(parse_qvalue(b"0.750"), 750);
        assert_eq!(parse_qvalue(b"0.5"), 500);
        assert_eq!(parse_qvalue(b"1"), 1000);
        assert_eq!(parse_qvalue(b"2.5"), 1000);
        assert_eq!(parse_qvalue(b"x"), 1000);
    }

    #[test]
    fn etags_are_checked_and_made_weak() {
        assert_eq!(etag_is_strong(b"\"123\""), Some(true));
        assert_eq!(etag_is_strong(b"W/\"\""), Some(false));
        assert_eq!(etag_is_strong(b"\"\""), Some(true));
        for bad in [&b"\"invalid"[..], b"invalid\"", b"invalid", b"W/\"invalid", b"W/invalid\"", b"W/invalid"]
        {
            assert_eq!(etag_is_strong(bad), None);
        }
        let mut h = req(&[("etag", "\"W/789\""), ("content-length", "100")]);
        set_compression_response_header(&mut h, CompAlgo::Gzip, false);
        assert_eq!(
            h.headers,
            [
                ("etag".to_string(), b"W/\"W/789\"".to_vec()),
                ("transfer-encoding".to_string(), b"chunked".to_vec()),
                ("vary".to_string(), b"Accept-Encoding".to_vec()),
                ("content-encoding".to_string(), b"gzip".to_vec()),
            ]
        );
    }

    #[test]
    fn a_gzip_stream_in_several_passes_decodes_to_the_input() {
        use std::io::Read;
        let mut pool = CompCtxPool::create_pool("comp_ctx", 0);
        let mut ctx = comp_ctx_alloc(&mut pool, CompAlgo::Gzip, 1).unwrap();
        let mut buf = Buffer::new(1024, 0);
        let mut bpool = Pool::create_pool("buffer", 1024);
        assert!(buf.b_alloc(&mut bpool));
        let body: Vec<u8> = (0..3000u32).map(|i| (i % 7) as u8 + b'a').collect();
        let mut chunk_len = body.len() as u64;
        let mut wire = Vec::new();
        let mut fed = 0;
        while !ctx.finished || ctx.has_pending_output() {
            let space = buf.recv_space();
            let n = space.len().min(body.len() - fed);
            space[..n].copy_from_slice(&body[fed..fed + n]);
            buf.commit_recv(n);
            fed += n;
            http_compression_buffer_init(&mut ctx, &mut buf);
            http_compression_buffer_add_data(&mut ctx, &mut buf, &mut chunk_len).unwrap();
            let end = if chunk_len == 0 { CompEnd::Done } else { CompEnd::More };
            http_compression_buffer_end(&mut ctx, &mut buf, end).unwrap();
            wire.extend_from_slice(buf.output());
            let o = buf.o();
            buf.bo_skip(o);
        }
        // De-chunk, then gunzip.
        let mut gz = Vec::new();
        let mut rest = &wire[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
            rest = &rest[eol + 2..];
            if size == 0 {
                assert_eq!(rest, b"\r\n");
                break;
            }
            gz.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, body);
        assert_eq!(ctx.bytes_in, 3000);
        pool.pool_free2(ctx);
        assert_eq!(pool.used(), 0);
    }
}
