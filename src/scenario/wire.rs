//! What the embedded peers read the same way on both sides of the proxy: lines, exact byte
//! counts, chunked bodies (RFC 9112 section 7.1) and their trailers, from a blocking socket
//! with the bytes received but not consumed yet.
//!
//! `backends` (the server side) and `client` (the client side) each parse their own heads
//! (a request's, a response's) and decide the framing, with the header look-ups here;
//! from there on they read through `Wire`, so a chunked body is read by one piece of code
//! whichever way it travels.

use std::io::{self, Read};
use std::net::TcpStream;

/// Largest message head (start line and header fields) either peer accepts.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields parsed in one head (and most trailer fields).
pub const MAX_HEADERS: usize = 100;
/// Largest body either peer accepts.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Header (or trailer) fields in order, names as sent.
pub type Fields = Vec<(String, String)>;

/// One side of a connection, buffered: bytes after one message are the start of the next
/// (what makes pipelining and keep-alive work).
pub trait Wire {
    /// The socket, and the bytes read from it that are not consumed yet.
    fn parts(&mut self) -> (&mut TcpStream, &mut Vec<u8>);

    /// Removes and returns the first `n` buffered bytes (the client also keeps them as the
    /// response's raw bytes).
    fn consume(&mut self, n: usize) -> Vec<u8> {
        self.parts().1.drain(..n).collect()
    }

    /// Told when a read returns 0: the peer closed its side.
    fn peer_closed(&mut self) {}

    /// Reads once from the socket into the buffer. `Ok(0)` means the peer closed its side.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let (stream, buf) = self.parts();
        let n = loop {
            match stream.read(&mut chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        if n == 0 {
            self.peer_closed();
        }
        Ok(n)
    }

    /// Consumes exactly `n` bytes, reading more as needed.
    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        if n > MAX_BODY {
            return Err(invalid("body larger than 64 MiB"));
        }
        while self.parts().1.len() < n {
            if self.fill()? == 0 {
                let had = self.parts().1.len();
                return Err(eof(&format!("connection closed after {had} of {n} body bytes")));
            }
        }
        Ok(self.consume(n))
    }

    /// Consumes one line and returns it without its CRLF (or bare LF).
    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            let buf = self.parts().1;
            if let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let mut line = self.consume(end + 1);
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if buf.len() > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            if self.fill()? == 0 {
                return Err(eof("connection closed in the middle of a line"));
            }
        }
    }

    /// Consumes a chunked body and its trailers; returns both.
    fn read_chunked(&mut self) -> io::Result<(Vec<u8>, Fields)> {
        let mut body = Vec::new();
        loop {
            let (used, size) = loop {
                let buf = self.parts().1;
                match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete(found)) => break found,
                    Ok(httparse::Status::Partial) => {}
                    Err(_) => return Err(invalid("invalid chunk size line")),
                }
                if buf.len() > MAX_HEAD {
                    return Err(invalid("chunk size line too long"));
                }
                if self.fill()? == 0 {
                    return Err(eof("connection closed in a chunk size line"));
                }
            };
            self.consume(used);
            if size == 0 {
                let trailers = self.read_trailers()?;
                return Ok((body, trailers));
            }
            let size = usize::try_from(size)
                .ok()
                .filter(|size| body.len().saturating_add(*size) <= MAX_BODY)
                .ok_or_else(|| invalid("chunked body larger than 64 MiB"))?;
            body.extend_from_slice(&self.take(size)?);
            if !self.read_line()?.is_empty() {
                return Err(invalid("chunk data not followed by CRLF"));
            }
        }
    }

    /// Consumes trailer fields up to the empty line that ends a chunked body.
    fn read_trailers(&mut self) -> io::Result<Fields> {
        let mut trailers = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                return Ok(trailers);
            }
            if trailers.len() == MAX_HEADERS {
                return Err(invalid("too many trailer fields"));
            }
            trailers.push(split_field(&line).ok_or_else(|| invalid("trailer field without ':'"))?);
        }
    }
}

/// The first header field called `name` (case-insensitive).
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(field, _)| field.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
}

/// Whether any `name` field lists `token` among its comma-separated values (case-insensitive).
pub fn header_has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(field, _)| field.eq_ignore_ascii_case(name))
        .flat_map(|(_, value)| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// Splits a `name: value` line into trimmed strings.
pub fn split_field(line: &[u8]) -> Option<(String, String)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
    let value = String::from_utf8_lossy(&line[colon + 1..]).trim().to_string();
    Some((name, value))
}

/// An `InvalidData` error: the peer sent something that is not valid HTTP.
pub fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// An `UnexpectedEof` error: the peer closed before a message was complete.
pub fn eof(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what.to_string())
}
