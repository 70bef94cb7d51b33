//! HTTP vocabulary: status reasons and HAProxy's built-in error pages.
//!
//! Reproduces `http.c` (`http_err_msgs[]`, HAProxy 2.6 texts). HAProxy 2.6 produces its
//! answers in two places with two spellings, and haflow keeps both so a byte-for-byte
//! comparison with a real HAProxy passes: errors found while *parsing* a request (the H1
//! multiplexer in 2.6: 400, 408, 422) use Title-Case headers and close the connection;
//! errors produced by the *analysers* (403, 404, 429, 500, 502, 503, 504, `deny_status`)
//! use lower-case headers and leave an HTTP/1.1 connection open.

/// The reason phrase HAProxy prints for `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Unauthorized",
        408 => "Request Time-out",
        410 => "Gone",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Time-out",
        _ => "Unknown",
    }
}

/// The sentence of HAProxy's error page for `status`.
fn explanation(status: u16) -> &'static str {
    match status {
        200 => "Service ready.",
        400 => "Your browser sent an invalid request.",
        401 | 407 => "You need a valid user and password to access this content.",
        403 => "Request forbidden by administrative rules.",
        404 => "The resource could not be found.",
        405 => "A request was made of a resource using a request method not supported by that resource",
        408 => "Your browser didn't send a complete request in time.",
        410 => "The resource is no longer available and will not be available again.",
        413 => "The request entity exceeds the maximum allowed.",
        414 => "The URI provided was too long for the server to process.",
        421 => "Request sent to a non-authoritative server.",
        422 => "The server cannot process the contained instructions.",
        425 => "Your browser sent early data.",
        429 => "You have sent too many requests in a given amount of time.",
        431 => "Request Header Fields Too Large.",
        500 => "An internal server error occurred.",
        501 => "The server does not support the functionality required to fulfill the request.",
        502 => "The server returned an invalid or incomplete response.",
        503 => "No server is available to handle this request.",
        504 => "The server didn't respond in time.",
        _ => "",
    }
}

fn body(status: u16) -> String {
    format!("<html><body><h1>{status} {}</h1>\n{}\n</body></html>\n", reason(status), explanation(status))
}

/// The error page the request parser sends (HAProxy 2.6's H1 mux): Title-Case headers and,
/// except for 422, `Connection: close`. The connection is closed afterwards.
pub fn parser_error(status: u16) -> Vec<u8> {
    let b = body(status);
    let conn = if status == 422 { "" } else { "Connection: close\r\n" };
    format!(
        "HTTP/1.1 {status} {}\r\nContent-length: {}\r\nCache-Control: no-cache\r\n{conn}Content-Type: text/html\r\n\r\n{b}",
        reason(status),
        b.len()
    )
    .into_bytes()
}

/// The error page the analysers send (`http_reply`): lower-case headers, no `Connection`
/// header unless the connection will close (`close` adds `connection: close`).
pub fn analyser_error(status: u16, close: bool) -> Vec<u8> {
    let b = body(status);
    let conn = if close { "connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n{conn}\r\n{b}",
        reason(status),
        b.len()
    )
    .into_bytes()
}

/// An `http-request return` answer.
pub fn return_reply(status: u16, content_type: Option<&str>, body: &[u8], close: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\ncontent-length: {}\r\n", reason(status), body.len());
    if let Some(ct) = content_type {
        out.push_str(&format!("content-type: {ct}\r\n"));
    }
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut v = out.into_bytes();
    v.extend_from_slice(body);
    v
}

/// An `http-request redirect` answer (http_ana.c:http_apply_redirect_rule() in 2.6):
/// 302, 303 and 307 carry `cache-control: no-cache`, 301 and 308 do not; `cookie` is the
/// `set-cookie` value of `set-cookie`/`clear-cookie`.
pub fn redirect_reply(code: u16, location: &str, cookie: Option<&str>, close: bool) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 {code} {}\r\ncontent-length: 0\r\nlocation: {location}\r\n", reason(code));
    if matches!(code, 302 | 303 | 307) {
        out.push_str("cache-control: no-cache\r\n");
    }
    if let Some(c) = cookie {
        out.push_str(&format!("set-cookie: {c}\r\n"));
    }
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/haproxy-2.6/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn pages_match_haproxy_2_6_byte_for_byte() {
        assert_eq!(parser_error(400), fixture("err-400-bad-header-name.http"));
        assert_eq!(parser_error(408), fixture("err-408-no-data.http"));
        assert_eq!(parser_error(422), fixture("malformed-te-gzip-chunked.http"));
        for (st, f) in [
            (403, "err-403-deny.http"),
            (404, "err-404-deny-status.http"),
            (429, "err-429-deny-status.http"),
            (500, "err-500-deny-status.http"),
            (502, "err-502-server-close.http"),
            (503, "err-503-no-server.http"),
            (504, "err-504-server-timeout.http"),
        ] {
            assert_eq!(analyser_error(st, false), fixture(f), "{st}");
        }
        assert_eq!(
            return_reply(200, Some("text/plain"), b"ok", false),
            fixture("err-200-return-string.http")
        );
        assert_eq!(
            redirect_reply(302, "/p/redir-prefix?a=1", None, false),
            fixture("err-302-redirect-prefix.http")
        );
        assert_eq!(redirect_reply(301, "/x", None, false), fixture("err-301-redirect-location.http"));
        assert_eq!(
            redirect_reply(302, "https:///redir-scheme", None, true),
            fixture("err-302-redirect-scheme-http10.http")
        );
    }
}
