//! An answer sent before the request body was read leaves the connection usable: the rest of
//! the body is read and discarded (at most [`DRAIN_MAX_BYTES`] within [`DRAIN_TIME`]), or the
//! answer says `Connection: close`. Without this, a refusal (401 on a chunked `PATCH`, 403 on a
//! manifest `PUT` into a gated stage) closed a keep-alive connection with unread data, and the
//! client saw a reset instead of the answer.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, Version, header};
use http_body::{Frame, SizeHint};

/// Most unread request body bytes read and discarded so the connection stays open.
pub const DRAIN_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Longest the answer waits for the unread rest of the request body.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The request body, shared between the handler and this layer.
struct Shared {
    body: Option<Body>,
    /// The handler asked for at least one frame.
    polled: bool,
    /// The body ended (or failed, which closes the connection anyway).
    ended: bool,
}

#[derive(Clone)]
struct Tracked(Arc<Mutex<Shared>>);

impl Tracked {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut shared = self.lock();
        shared.polled = true;
        let Some(body) = shared.body.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = Pin::new(body).poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            shared.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        let shared = self.lock();
        shared.ended || shared.body.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.lock().body.as_ref().map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

/// The layer: runs the handler over a tracked body, then drains what it left unread.
pub async fn layer(request: Request, next: Next) -> Response {
    // HTTP/2 ends an unread stream on its own, without touching the connection.
    if !matches!(request.version(), Version::HTTP_11 | Version::HTTP_10) || request.body().is_end_stream() {
        return next.run(request).await;
    }
    let expects_continue =
        request.headers().get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, body) = request.into_parts();
    let tracked = Tracked(Arc::new(Mutex::new(Shared { body: Some(body), polled: false, ended: false })));
    let mut response = next.run(Request::from_parts(parts, Body::new(tracked.clone()))).await;
    let rest = {
        let mut shared = tracked.lock();
        if shared.ended { None } else { Some((shared.body.take(), shared.polled)) }
    };
    let keep_open = match rest {
        None | Some((None, _)) => true,
        Some((Some(body), _)) if body.is_end_stream() => true,
        // The client waits for `100 Continue` before sending the body: it never comes, so
        // nothing is unread once this answer says the connection closes.
        Some((Some(_), false)) if expects_continue => false,
        Some((Some(body), _)) => drain(body).await,
    };
    if !keep_open {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads and discards `body`; true when it ended within the bounds.
async fn drain(mut body: Body) -> bool {
    if body.size_hint().lower() > DRAIN_MAX_BYTES {
        return false;
    }
    let read = async {
        let mut total = 0u64;
        loop {
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => return true,
                Some(Err(_)) => return false,
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        total = total.saturating_add(data.len() as u64);
                        if total > DRAIN_MAX_BYTES {
                            return false;
                        }
                    }
                }
            }
        }
    };
    tokio::time::timeout(DRAIN_TIME, read).await.unwrap_or(false)
}
