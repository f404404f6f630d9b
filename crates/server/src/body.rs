//! Request bodies as byte streams that give up on clients who stall or drip.

use std::io;
use std::time::Instant;

use airlock_core::ports::ByteStream;
use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;

use crate::config::BodyLimits;
use crate::metrics::Metrics;

struct State {
    inner: axum::body::BodyDataStream,
    received: u64,
    started: Instant,
    done: bool,
}

/// Wraps `body`: each chunk must arrive within the idle timeout, and after the grace period the
/// average rate must stay above the configured minimum. Received bytes are counted in metrics.
pub fn guarded(body: Body, limits: BodyLimits, metrics: Metrics) -> ByteStream {
    let state = State { inner: body.into_data_stream(), received: 0, started: Instant::now(), done: false };
    Box::pin(futures::stream::unfold(state, move |mut s| {
        let metrics = metrics.clone();
        async move {
            if s.done {
                return None;
            }
            let next = tokio::time::timeout(limits.idle_timeout, s.inner.next()).await;
            let item: Result<Bytes, io::Error> = match next {
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no body bytes arrived for {} s", limits.idle_timeout.as_secs()),
                )),
                Ok(None) => return None,
                Ok(Some(Err(e))) => Err(io::Error::other(e)),
                Ok(Some(Ok(chunk))) => {
                    s.received = s.received.saturating_add(chunk.len() as u64);
                    metrics.bytes_received(chunk.len() as u64);
                    let elapsed = s.started.elapsed();
                    let floor = limits.min_bytes_per_sec.saturating_mul(elapsed.as_secs());
                    if elapsed > limits.rate_grace && s.received < floor {
                        Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "body arrived slower than {} bytes/s (config key `limits.body_min_bytes_per_sec`)",
                                limits.min_bytes_per_sec
                            ),
                        ))
                    } else {
                        Ok(chunk)
                    }
                }
            };
            s.done = item.is_err();
            Some((item, s))
        }
    }))
}

/// Reads a whole body of at most `max` bytes; `Ok(None)` when it is larger.
pub async fn collect(mut body: ByteStream, max: usize) -> Result<Option<Bytes>, io::Error> {
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len().saturating_add(chunk.len()) > max {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out.freeze()))
}
