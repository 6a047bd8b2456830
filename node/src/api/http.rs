//! A small HTTP/1.1 server and client for the local API: JSON bodies with `Content-Length`,
//! connections kept open for further requests unless the request says `Connection: close`
//! (or is HTTP/1.0), and an event stream that is a response without a length whose body is
//! newline-delimited JSON until either side closes.
//! Small on purpose: the API is loopback-only, and this keeps the binary free of a web
//! framework. `curl` speaks it.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Largest request head and body accepted.
pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_BODY: usize = 1024 * 1024;
/// A client that sends nothing for this long is dropped.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub bearer: Option<String>,
    pub body: Vec<u8>,
    /// Whether the client wants the connection kept for another request.
    pub keep_alive: bool,
}

impl Request {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad request: {0}")]
    Bad(String),
    #[error("timed out")]
    Timeout,
}

/// Reads one request head and body.
pub async fn read_request<R: AsyncRead + Unpin>(stream: R) -> Result<Request, HttpError> {
    next_request(&mut BufReader::new(stream))
        .await?
        .ok_or_else(|| HttpError::Bad("connection closed in the request head".into()))
}

/// Reads the next request of a connection; `None` if the client closed it before sending
/// one (done with a kept connection).
pub async fn next_request<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Result<Option<Request>, HttpError> {
    tokio::time::timeout(READ_TIMEOUT, read_request_inner(reader))
        .await
        .map_err(|_| HttpError::Timeout)?
}

async fn read_request_inner<R: AsyncRead + Unpin>(
    mut reader: &mut BufReader<R>,
) -> Result<Option<Request>, HttpError> {
    if reader.fill_buf().await?.is_empty() {
        return Ok(None);
    }
    let mut head_len = 0;
    let mut line = String::new();
    let mut read_line = async |line: &mut String| -> Result<(), HttpError> {
        line.clear();
        let n = (&mut reader)
            .take((MAX_HEAD - head_len.min(MAX_HEAD)) as u64 + 1)
            .read_line(line)
            .await?;
        head_len += n;
        if head_len > MAX_HEAD {
            return Err(HttpError::Bad("request head too large".into()));
        }
        if n == 0 {
            return Err(HttpError::Bad(
                "connection closed in the request head".into(),
            ));
        }
        Ok(())
    };
    read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(HttpError::Bad("malformed request line".into()));
    };
    let mut keep_alive = parts.next() != Some("HTTP/1.0");
    let method = method.to_string();
    let (path, query) = split_target(target);
    let mut content_length = 0usize;
    let mut bearer = None;
    loop {
        read_line(&mut line).await?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(HttpError::Bad(format!("malformed header line {l:?}")));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                content_length = value
                    .parse()
                    .map_err(|_| HttpError::Bad("bad Content-Length".into()))?;
            }
            "connection" => {
                keep_alive = !value.eq_ignore_ascii_case("close");
            }
            "authorization" => {
                bearer = value.strip_prefix("Bearer ").map(|t| t.trim().to_string());
            }
            "transfer-encoding" => {
                return Err(HttpError::Bad(
                    "chunked request bodies are not supported; send Content-Length".into(),
                ));
            }
            _ => {}
        }
    }
    if content_length > MAX_BODY {
        return Err(HttpError::Bad(format!(
            "body of {content_length} bytes, the limit is {MAX_BODY}"
        )));
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body).await?;
    Ok(Some(Request {
        method,
        path,
        query,
        bearer,
        body,
        keep_alive,
    }))
}

fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (percent_decode(path), query)
}

/// Decodes `%XX` escapes (and `+` as space in queries is not needed by our client).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Escapes a path segment for a URL.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Writes a whole JSON response and closes.
pub async fn write_json<W: AsyncWrite + Unpin>(
    stream: W,
    status: u16,
    body: &serde_json::Value,
) -> std::io::Result<()> {
    write_json_response(stream, status, body, false).await
}

/// Writes a whole JSON response; closes the connection unless `keep_alive`.
pub async fn write_json_response<W: AsyncWrite + Unpin>(
    mut stream: W,
    status: u16,
    body: &serde_json::Value,
    keep_alive: bool,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(body).expect("JSON values serialize");
    let connection = if keep_alive { "keep-alive" } else { "close" };
    // One write: head and body in one segment.
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    stream.write_all(&response).await?;
    if keep_alive {
        stream.flush().await
    } else {
        stream.shutdown().await
    }
}

/// Starts a stream response: its body is newline-delimited JSON until the connection closes.
pub async fn write_stream_head<W: AsyncWrite + Unpin>(stream: &mut W) -> std::io::Result<()> {
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        )
        .await?;
    stream.flush().await
}

/// A response the client read.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends one request and reads the whole response (until the server closes).
pub async fn call(
    addr: std::net::SocketAddr,
    netns: Option<&std::path::Path>,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> std::io::Result<Response> {
    let mut stream = open(addr, netns, token, method, path, body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse_response(&raw)
}

/// Sends a request and returns the stream positioned after the response head, for streams.
pub async fn open(
    addr: std::net::SocketAddr,
    netns: Option<&std::path::Path>,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> std::io::Result<BufReader<tokio::net::TcpStream>> {
    let mut stream = match netns {
        None => tokio::net::TcpStream::connect(addr).await?,
        Some(ns) => connect_in_netns(addr, ns.to_path_buf()).await?,
    };
    let request = request_bytes(addr, token, method, path, body, true);
    stream.write_all(&request).await?;
    Ok(BufReader::new(stream))
}

/// A whole request, head and JSON body; with `close`, asking the server to close the
/// connection after answering.
fn request_bytes(
    host: std::net::SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    close: bool,
) -> Vec<u8> {
    let body = body
        .map(|b| serde_json::to_vec(b).expect("JSON values serialize"))
        .unwrap_or_default();
    let connection = if close { "Connection: close\r\n" } else { "" };
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{connection}\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// Connects to the API, from inside network namespace `netns` if given.
pub async fn connect(
    addr: std::net::SocketAddr,
    netns: Option<&std::path::Path>,
) -> std::io::Result<BufReader<tokio::net::TcpStream>> {
    let stream = match netns {
        None => tokio::net::TcpStream::connect(addr).await?,
        Some(ns) => connect_in_netns(addr, ns.to_path_buf()).await?,
    };
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// Sends one request on a connection that may be kept for more, and reads the response by
/// its `Content-Length`. Returns it and whether the server keeps the connection open. A
/// connection the server had already closed fails with `UnexpectedEof` before any byte of
/// a response.
pub async fn exchange(
    conn: &mut BufReader<tokio::net::TcpStream>,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> std::io::Result<(Response, bool)> {
    let host = conn.get_ref().peer_addr()?;
    let request = request_bytes(host, token, method, path, body, false);
    conn.get_mut().write_all(&request).await.map_err(stale)?;
    let mut line = String::new();
    match conn.read_line(&mut line).await {
        Ok(0) => return Err(stale(std::io::ErrorKind::UnexpectedEof.into())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Err(stale(e)),
        Err(e) => return Err(e),
    }
    let status = status_of(&line)?;
    let (length, mut keep) = read_response_headers(conn).await?;
    let mut body = Vec::new();
    match length {
        Some(n) if n <= MAX_BODY * 16 => {
            body.resize(n, 0);
            conn.read_exact(&mut body).await?;
        }
        Some(n) => return Err(std::io::Error::other(format!("response of {n} bytes"))),
        None => {
            conn.read_to_end(&mut body).await?;
            keep = false;
        }
    }
    Ok((Response { status, body }, keep))
}

/// The error of a call on a kept connection that the server had closed before reading the
/// call: nothing of it was done, so it may be made again on a new connection.
#[derive(Debug, thiserror::Error)]
#[error("the API had closed this kept connection ({0})")]
pub struct StaleConnection(std::io::ErrorKind);

fn stale(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), StaleConnection(e.kind()))
}

/// Whether `e` is a [`StaleConnection`].
pub fn is_stale(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<StaleConnection>())
}

/// Connects from inside a network namespace: a thread enters it (a socket stays in the
/// namespace it was made in), connects, and hands the socket back.
async fn connect_in_netns(
    addr: std::net::SocketAddr,
    ns: std::path::PathBuf,
) -> std::io::Result<tokio::net::TcpStream> {
    let std_stream = tokio::task::spawn_blocking(move || {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(&ns)?;
        // SAFETY: setns on a valid namespace fd changes only this (blocking-pool) thread's
        // network namespace; the thread is dedicated to this call and exits the namespace
        // when it ends below.
        let own = std::fs::File::open("/proc/thread-self/ns/net")?;
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let result = std::net::TcpStream::connect(addr);
        // Back to where the thread was, so the pool thread is reusable.
        if unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        result
    })
    .await
    .map_err(std::io::Error::other)??;
    std_stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(std_stream)
}

/// Reads the status line and headers of a streamed response; returns the status.
pub async fn read_response_head(
    reader: &mut BufReader<tokio::net::TcpStream>,
) -> std::io::Result<u16> {
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status = status_of(&line)?;
    read_response_headers(reader).await?;
    Ok(status)
}

/// Reads a response's headers up to the blank line: its `Content-Length`, if any, and
/// whether the server keeps the connection open.
async fn read_response_headers(
    reader: &mut BufReader<tokio::net::TcpStream>,
) -> std::io::Result<(Option<usize>, bool)> {
    let (mut length, mut keep) = (None, true);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other("incomplete HTTP response head"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok((length, keep));
        }
        if let Some((name, value)) = l.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse::<usize>().ok(),
                "connection" => keep = !value.trim().eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
}

fn status_of(line: &str) -> std::io::Result<u16> {
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {line:?}")))
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("incomplete HTTP response"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = status_of(head.lines().next().unwrap_or(""))?;
    Ok(Response {
        status,
        body: raw[split + 4..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_is_parsed_with_its_query_and_token() {
        let raw = b"POST /v1/groups/a%20b/messages?from=3 HTTP/1.1\r\nAuthorization: Bearer tok\r\nContent-Length: 2\r\n\r\n{}";
        let req = read_request(&raw[..]).await.unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/v1/groups/a b/messages");
        assert_eq!(req.query("from"), Some("3"));
        assert_eq!(req.bearer.as_deref(), Some("tok"));
        assert_eq!(req.body, b"{}");
    }

    #[tokio::test]
    async fn oversized_and_truncated_requests_are_errors() {
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(matches!(
            read_request(big.as_bytes()).await,
            Err(HttpError::Bad(_))
        ));
        let long_head = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD + 10));
        assert!(read_request(long_head.as_bytes()).await.is_err());
        assert!(
            read_request(&b"GET / HTTP/1.1\r\nHost: x"[..])
                .await
                .is_err()
        );
        assert!(
            read_request(&b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n{}"[..])
                .await
                .is_err()
        );
    }

    #[test]
    fn percent_coding_round_trips() {
        for s in ["plain", "with space", "ümlaut/slash?&"] {
            assert_eq!(percent_decode(&percent_encode(s)), s);
        }
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
