//! A small blocking HTTP/1.1 client: the [`Transport`] that carries the console's REST requests
//! (and the zerotier-one style service requests) to `ztd` on loopback.
//!
//! One connection per request with `Connection: close`: the daemon is local, requests are few,
//! and reading to end-of-stream avoids keeping connection state between commands.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use zt_console::{BackendError, RestRequest, RestResponse, Transport};

/// Time allowed to open the connection; the daemon is local, so a slow connect means trouble.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for the reply. RouterOS cuts a REST request after 60 s, zerotier-cli waits as
/// long; enabling an instance may first generate its identity (a memory-hard hash).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Replies larger than this are refused rather than buffered without bound.
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// Where the daemon's API is and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    /// As the user gave it (`127.0.0.1:9993`, `localhost:9993`), for messages and `Host:`.
    address: String,
    token: String,
}

impl HttpTransport {
    pub fn new(address: impl Into<String>, token: impl Into<String>) -> Self {
        HttpTransport {
            address: address.into(),
            token: token.into(),
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// A failure before any reply: the daemon is not reachable at this address.
    fn unreachable(&self, reason: &str) -> BackendError {
        BackendError {
            status: 0,
            message: format!("cannot reach ztd at {}: {reason}", self.address),
            detail: None,
        }
    }

    fn connect(&self) -> Result<TcpStream, BackendError> {
        let addresses: Vec<SocketAddr> = self
            .address
            .to_socket_addrs()
            .map_err(|e| self.unreachable(&e.to_string()))?
            .collect();
        let mut last_error = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
                Ok(stream) => return Ok(stream),
                Err(e) => last_error = Some(e),
            }
        }
        Err(match last_error {
            Some(e) => self.unreachable(&io_reason(&e)),
            None => self.unreachable("the address resolves to nothing"),
        })
    }
}

/// The short, lower-case reason RouterOS-style messages use (`connection refused`).
fn io_reason(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timed out".into(),
        ErrorKind::ConnectionReset => "connection reset".into(),
        ErrorKind::UnexpectedEof => "connection closed before the reply ended".into(),
        _ => super::io_text(error).to_lowercase(),
    }
}

/// Percent-encode what may not appear in a URL path (item names can hold spaces).
fn encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        let allowed = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte);
        if allowed {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

impl Transport for HttpTransport {
    fn send(&mut self, request: &RestRequest) -> Result<RestResponse, BackendError> {
        let body = request
            .body
            .as_ref()
            .map(|json| json.to_string())
            .unwrap_or_default();
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nX-ZT1-Auth: {}\r\nAccept: application/json\r\nConnection: close\r\n",
            request.method,
            encode_path(&request.path),
            self.address,
            self.token
        );
        if request.body.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));

        let mut stream = self.connect()?;
        let lost = |e: std::io::Error| self.unreachable(&io_reason(&e));
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(REPLY_TIMEOUT)))
            .map_err(lost)?;
        stream.write_all(head.as_bytes()).map_err(lost)?;
        stream.write_all(body.as_bytes()).map_err(lost)?;
        stream.flush().map_err(lost)?;

        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_REPLY_BYTES as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(lost)?;
        if raw.len() > MAX_REPLY_BYTES {
            return Err(self.unreachable("the reply is too large"));
        }
        parse_response(&raw).map_err(|what| self.unreachable(&format!("bad HTTP reply: {what}")))
    }
}

/// Parse a complete HTTP/1.1 response read to end of stream: status line, headers, and a body
/// framed by `Content-Length`, `Transfer-Encoding: chunked`, or the end of the stream.
pub fn parse_response(raw: &[u8]) -> Result<RestResponse, &'static str> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "headers are not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("no status line")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err("not HTTP/1.x");
    }
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .filter(|code| (100..=999).contains(code))
        .ok_or("bad status code")?;
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err("malformed header");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.parse().map_err(|_| "bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    let rest = &raw[head_end + 4..];
    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some(length) = content_length {
        rest.get(..length)
            .ok_or("body shorter than Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    let body = String::from_utf8(body).map_err(|_| "body is not UTF-8")?;
    Ok(RestResponse { status, body })
}

fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("unterminated chunk size")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        body.extend_from_slice(chunk);
        data = data
            .get(size..)
            .and_then(|d| d.strip_prefix(b"\r\n"))
            .ok_or("chunk not followed by CRLF")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_framed_by_length_chunks_or_end_of_stream() {
        let by_length =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n[]";
        assert_eq!(
            parse_response(by_length),
            Ok(RestResponse {
                status: 200,
                body: "[]".into()
            })
        );
        let chunked = b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked),
            Ok(RestResponse {
                status: 400,
                body: "{\"a\":1}".into()
            })
        );
        let to_end = b"HTTP/1.0 204 No Content\r\n\r\n";
        assert_eq!(parse_response(to_end).map(|r| r.status), Ok(204));
    }

    #[test]
    fn malformed_responses_are_errors_not_panics() {
        for raw in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(
                parse_response(raw).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn every_truncation_of_a_reply_parses_or_fails_cleanly() {
        let full = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n[\"\xc3\xbc\"]\r\n0\r\n\r\n";
        assert_eq!(parse_response(full).unwrap().body, "[\"\u{fc}\"]");
        // The body is whole once the last-chunk line `0\r\n` is in; the empty trailer after
        // it adds nothing, so only cuts before that must fail.
        let body_complete = full.len() - 2;
        for end in 0..body_complete {
            // Whatever the cut, an error, never a panic or a shortened body.
            if let Ok(response) = parse_response(&full[..end]) {
                panic!("truncated at {end} yet parsed: {response:?}");
            }
        }
    }

    #[test]
    fn paths_are_percent_encoded_except_url_safe_characters() {
        assert_eq!(encode_path("/rest/zerotier/*1"), "/rest/zerotier/*1");
        assert_eq!(encode_path("/rest/a b/ü"), "/rest/a%20b/%C3%BC");
    }

    #[test]
    fn a_closed_port_reads_as_daemon_not_running() {
        // Bind then drop a listener: the port is free and (almost surely) closed for the call.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        let mut transport = HttpTransport::new(address.clone(), "token");
        let error = transport
            .send(&RestRequest {
                method: "GET",
                path: "/rest/zerotier".into(),
                body: None,
            })
            .unwrap_err();
        assert_eq!(error.status, 0);
        assert_eq!(
            error.message,
            format!("cannot reach ztd at {address}: connection refused")
        );
    }
}
