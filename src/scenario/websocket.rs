//! WebSocket ends for scenarios and tests: an echo server to put behind the proxy and a
//! client to put in front of it. Both are `tungstenite` over a plain blocking
//! `TcpStream`, so a round trip through haflow's tunnel is a real WebSocket conversation
//! (handshake keys, masked frames, close handshake), not bytes that merely look like one.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

/// Turns a WebSocket error into an I/O error for callers that only report it.
fn to_io(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        e => io::Error::other(e.to_string()),
    }
}

/// Serves one backend connection: the WebSocket handshake, then every text or binary
/// message is sent back as it came, until the client closes.
pub fn serve(stream: TcpStream) -> io::Result<()> {
    let mut ws = tungstenite::accept(stream).map_err(|e| io::Error::other(e.to_string()))?;
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m).map_err(to_io)?,
            // Pings are answered and a close is acknowledged by tungstenite itself.
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return Ok(()),
            Err(e) => return Err(to_io(e)),
        }
    }
}

/// A WebSocket client connection.
pub struct WsClient {
    ws: WebSocket<TcpStream>,
}

impl WsClient {
    /// Connects to `addr` and performs the handshake for `path`; the server's answer must
    /// be `101 Switching Protocols`.
    pub fn connect(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<WsClient> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let url = format!("ws://{addr}{path}");
        let (ws, _) = tungstenite::client::client(url.as_str(), stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => to_io(e),
            tungstenite::HandshakeError::Interrupted(_) => io::Error::other("handshake interrupted"),
        })?;
        Ok(WsClient { ws })
    }

    /// Sends `text` as one message and returns the next text message received.
    pub fn echo(&mut self, text: &str) -> io::Result<String> {
        self.ws.send(Message::text(text)).map_err(to_io)?;
        loop {
            match self.ws.read().map_err(to_io)? {
                Message::Text(t) => return Ok(t.to_string()),
                Message::Binary(b) => return Ok(String::from_utf8_lossy(&b).into_owned()),
                _ => {}
            }
        }
    }

    /// Waits up to `timeout` for the other side to end the connection (a close frame, a
    /// FIN or a reset); true when it did.
    pub fn closed_by_peer(&mut self, timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            self.ws.get_ref().set_read_timeout(Some(left))?;
            match self.ws.read() {
                Ok(Message::Close(_)) => return Ok(true),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                {
                    return Ok(false);
                }
                // EOF without a close frame, a reset: the proxy ended the tunnel.
                Err(_) => return Ok(true),
            }
        }
    }

    /// Starts the close handshake and waits for the server's answer.
    pub fn close(mut self) -> io::Result<()> {
        self.ws.close(None).map_err(to_io)?;
        loop {
            match self.ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(());
                }
                Err(e) => return Err(to_io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::backends::{BackendSpec, RunningBackend};

    #[test]
    fn the_echo_backend_answers_each_message_and_the_close() {
        let b = RunningBackend::start(BackendSpec::WebSocket).unwrap();
        let mut c = WsClient::connect(b.addr(), "/chat", Duration::from_secs(5)).unwrap();
        assert_eq!(c.echo("hello").unwrap(), "hello");
        assert_eq!(c.echo("again").unwrap(), "again");
        c.close().unwrap();
    }
}
