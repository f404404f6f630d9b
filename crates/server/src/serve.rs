//! The accept loop: HTTP/1.1 and HTTP/2 connections with a header read timeout
//! (`server.header_read_timeout_secs`), a cap on open connections per TCP peer address
//! (`server.connections_per_client`), a lingering close so an answer is not lost to a reset, and
//! graceful shutdown that drains open requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::config::ConnectionLimits;
use crate::error::RETRY_AFTER_UNAVAILABLE_SECS;

/// Most bytes read and discarded from a connection after the server closed its side, so the
/// client reads the last answer instead of a reset.
pub const LINGER_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Longest a closed connection lingers, reading what the client still sends.
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// Open connections per TCP peer address. The count is of the socket peer, never of an address
/// a request names: `server.trusted_proxies` decides who the client of a request is, not whose
/// connection this is.
#[derive(Debug, Default)]
struct Counts(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`Counts`], given back when the connection is gone.
#[derive(Debug)]
struct Slot {
    counts: Arc<Counts>,
    ip: IpAddr,
}

impl Counts {
    /// Counts a new connection from `ip`; returns the slot and how many were open before it.
    fn take(self: &Arc<Self>, ip: IpAddr) -> (Slot, usize) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = map.entry(ip).or_insert(0);
        let before = *count;
        *count = count.saturating_add(1);
        (Slot { counts: self.clone(), ip }, before)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.counts.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets every
/// open request finish and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let counts = Arc::new(Counts::default());
    // Connections watch `stop` for the shutdown; each holds a `done` receiver until it ends.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (slot, open) = counts.take(peer.ip());
        if open >= limits.per_client.saturating_mul(2) {
            // Far over the cap: not even an answer.
            tracing::debug!(client = %peer.ip(), open, "connection dropped: far too many open from this address");
            continue;
        }
        let over = open >= limits.per_client;
        if over {
            tracing::debug!(client = %peer.ip(), open, cap = limits.per_client, "connection refused with 503: too many open from this address");
        }
        tokio::spawn(connection(stream, peer, slot, router.clone(), limits, over, stop_rx.clone(), done_rx.clone()));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// A failed `accept`: a connection that died before it was accepted is nothing; anything else
/// (out of file descriptors) is logged and retried after a pause, as hyper's examples do.
async fn accept_error(e: io::Error) {
    use io::ErrorKind as K;
    if matches!(e.kind(), K::ConnectionAborted | K::ConnectionReset | K::ConnectionRefused) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[expect(clippy::too_many_arguments, reason = "one connection's whole context, called from one place")]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    router: Router,
    limits: ConnectionLimits,
    over_cap: bool,
    mut stop: watch::Receiver<bool>,
    done: watch::Receiver<()>,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Linger { stream: Some(stream), slot: Some(slot) });
    // A connection must deliver its first request head within the header read timeout, whatever
    // the protocol: this also bounds the protocol sniffing and an HTTP/2 preface sent slowly.
    let started = Arc::new(AtomicBool::new(false));
    let seen = started.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        seen.store(true, Ordering::Relaxed);
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            if over_cap {
                return Ok::<_, Infallible>(too_many_connections(&request, limits.per_client));
            }
            router.oneshot(request).await
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(!over_cap);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout.saturating_mul(2))
        .keep_alive_timeout(limits.header_read_timeout);
    let mut conn = pin!(builder.serve_connection(io, service));
    let first_request = tokio::time::sleep(limits.header_read_timeout);
    let mut first_request = pin!(first_request);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(client = %peer.ip(), error = %e, "connection ended with an error");
                }
                break;
            }
            () = &mut first_request, if !started.load(Ordering::Relaxed) => {
                tracing::debug!(client = %peer.ip(), "connection closed: no request head within the header read timeout");
                break;
            }
            _ = stop.changed(), if !stopping => {
                // Shutdown (or the accept loop gone): finish the request in flight, then close.
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    drop(done);
}

/// The answer on a connection over `server.connections_per_client`: 503 with `Retry-After`, in
/// the error shape of the API asked, and the connection closes.
fn too_many_connections<B>(request: &http::Request<B>, cap: usize) -> Response {
    let message = format!(
        "this address has {cap} connections open, the most one client may (config key `server.connections_per_client`)"
    );
    let remediation = "reuse open connections (keep-alive) or close some, then retry";
    let mut response = if request.uri().path().starts_with("/v2") {
        let body = airlock_api::oci::ErrorBody {
            errors: vec![airlock_api::oci::ErrorEntry {
                code: crate::error::ApiCode::Unavailable.as_str().to_owned(),
                message: format!("{message}; {remediation}"),
                detail: serde_json::Value::Null,
            }],
        };
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    } else {
        let body = airlock_api::v1::ErrorBody {
            error: airlock_api::v1::ApiError {
                code: crate::error::ApiCode::Unavailable.as_str().to_owned(),
                message,
                remediation: Some(remediation.to_owned()),
                doc: None,
            },
        };
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_UNAVAILABLE_SECS));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A TCP stream that, when the server is done with it, closes its sending side and then reads
/// and discards what the client still sends (at most [`LINGER_MAX_BYTES`] for [`LINGER_TIME`])
/// before closing: closing a socket with unread data sends a reset, which can destroy the
/// answer before the client reads it. Holds the connection's [`Slot`] until then.
struct Linger {
    stream: Option<TcpStream>,
    slot: Option<Slot>,
}

impl Linger {
    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.stream.as_mut().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl AsyncRead for Linger {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Linger {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => Pin::new(stream).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for Linger {
    fn drop(&mut self) {
        let (Some(stream), slot) = (self.stream.take(), self.slot.take()) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, slot));
        }
    }
}

async fn linger(mut stream: TcpStream, slot: Option<Slot>) {
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut read = 0usize;
        while read < LINGER_MAX_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read = read.saturating_add(n),
            }
        }
    })
    .await;
    drop(slot);
}
