//! Accepts API connections, checks the token, and hands each route to the daemon's core.

use std::net::SocketAddr;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::http::{self, HttpError};
use super::routes::{self, Route};
use super::views::EventView;
use super::{ApiError, ApiResult};

/// One API call for the core, with where its answer goes.
#[derive(Debug)]
pub struct ApiCall {
    pub route: Route,
    pub reply: oneshot::Sender<ApiResult>,
}

/// Serves until the listener fails or the core goes away.
pub async fn serve(
    listener: TcpListener,
    token: String,
    calls: mpsc::Sender<ApiCall>,
    events: broadcast::Sender<EventView>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "api accept failed");
                continue;
            }
        };
        if !peer.ip().is_loopback() {
            continue;
        }
        let (token, calls, events) = (token.clone(), calls.clone(), events.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer, &token, calls, events).await {
                tracing::debug!(%peer, error = %e, "api connection ended");
            }
        });
    }
}

/// Serves the requests of one connection, one after another, until the client closes it,
/// asks to close it, goes quiet for [`http::READ_TIMEOUT`], or opens the event stream.
/// A client making many calls (a chat, a benchmark) saves a TCP handshake per call.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    token: &str,
    calls: mpsc::Sender<ApiCall>,
    events: broadcast::Sender<EventView>,
) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut served = 0u64;
    loop {
        let request = match http::next_request(&mut stream).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            // A kept connection left idle: closed without a word.
            Err(HttpError::Timeout) if served > 0 => return Ok(()),
            Err(HttpError::Io(e)) => return Err(e),
            Err(e) => {
                let e = ApiError::bad(e.to_string());
                return reply(stream.get_mut(), Err(e), false).await;
            }
        };
        served += 1;
        let keep_alive = request.keep_alive;
        if !token_matches(request.bearer.as_deref(), token) {
            let e = ApiError {
                status: 401,
                message: "missing or wrong API token (see api.token in the data dir)".into(),
            };
            return reply(stream.get_mut(), Err(e), false).await;
        }
        let result = match routes::parse(&request) {
            Ok(Route::Events) => {
                tracing::debug!(%peer, "api event stream");
                return stream_events(stream.into_inner(), events.subscribe()).await;
            }
            Ok(route) => {
                tracing::debug!(%peer, ?route, "api call");
                call_core(&calls, route).await
            }
            Err(e) => Err(e),
        };
        reply(stream.get_mut(), result, keep_alive).await?;
        if !keep_alive {
            return Ok(());
        }
    }
}

/// Hands a route to the core and waits for its answer.
async fn call_core(calls: &mpsc::Sender<ApiCall>, route: Route) -> ApiResult {
    let shutting_down = || ApiError {
        status: 503,
        message: "the node is shutting down".into(),
    };
    let (tx, rx) = oneshot::channel();
    if calls.send(ApiCall { route, reply: tx }).await.is_err() {
        return Err(shutting_down());
    }
    rx.await.unwrap_or_else(|_| Err(shutting_down()))
}

/// Compares in constant time, so the token cannot be guessed byte by byte from timing.
fn token_matches(given: Option<&str>, token: &str) -> bool {
    let Some(given) = given else { return false };
    if given.len() != token.len() {
        return false;
    }
    given
        .bytes()
        .zip(token.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

async fn reply(stream: &mut TcpStream, result: ApiResult, keep_alive: bool) -> std::io::Result<()> {
    match result {
        Ok(value) => http::write_json_response(stream, 200, &value, keep_alive).await,
        Err(e) => {
            let body = serde_json::json!({ "error": e.message });
            http::write_json_response(stream, e.status, &body, keep_alive).await
        }
    }
}

async fn stream_events(
    mut stream: TcpStream,
    mut events: broadcast::Receiver<EventView>,
) -> std::io::Result<()> {
    http::write_stream_head(&mut stream).await?;
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                let line = serde_json::json!({ "type": "lagged", "missed": n });
                stream.write_all(format!("{line}\n").as_bytes()).await?;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        let mut line = serde_json::to_vec(&event).expect("events serialize");
        line.push(b'\n');
        stream.write_all(&line).await?;
        stream.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_exactly() {
        assert!(token_matches(Some("abc"), "abc"));
        assert!(!token_matches(Some("abd"), "abc"));
        assert!(!token_matches(Some("ab"), "abc"));
        assert!(!token_matches(None, "abc"));
    }
}
