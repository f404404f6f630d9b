//! Prometheus metrics: requests by route and status, latency, bytes in and out, stored blobs.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The route label a handler leaves in the response's extensions.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    bytes_in: Counter,
    bytes_out: Counter,
    blobs: Gauge,
    blob_bytes: Gauge,
    quarantined: Counter,
}

/// The process's metrics, cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::with_logins(crate::caller::LoginCounters::default())
    }

    /// Metrics that also expose `logins`, the access service's counts of refused API keys and
    /// CI tokens (`airlock_api_key_failures_total`, `airlock_ci_token_failures_total`).
    pub fn with_logins(logins: crate::caller::LoginCounters) -> Metrics {
        let mut registry = Registry::with_prefix("airlock");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register("http_request_duration_seconds", "Request latency by route", latency.clone());
        let bytes_in = Counter::default();
        registry.register("http_received_bytes", "Request body bytes received", bytes_in.clone());
        let bytes_out = Counter::default();
        registry.register(
            "http_sent_bytes",
            "Response body bytes sent (by Content-Length; HEAD sends none)",
            bytes_out.clone(),
        );
        let blobs = Gauge::default();
        registry.register("blobs_stored", "Blobs stored (not quarantined)", blobs.clone());
        let blob_bytes = Gauge::default();
        registry.register("blob_stored_bytes", "Bytes of blobs stored (not quarantined)", blob_bytes.clone());
        let quarantined = Counter::default();
        registry.register("blobs_quarantined", "Blobs the scrubber found corrupt", quarantined.clone());
        registry.register(
            "api_key_failures",
            "Logins with a secret of an API key's form that matched no key in force (never backed off)",
            logins.api_key_failures,
        );
        registry.register(
            "ci_token_failures",
            "Logins with a CI token that was refused or mapped to no service account (never backed off)",
            logins.ci_token_failures,
        );
        Metrics(Arc::new(Inner { registry, requests, latency, bytes_in, bytes_out, blobs, blob_bytes, quarantined }))
    }

    pub fn bytes_received(&self, n: u64) {
        self.0.bytes_in.inc_by(n);
    }

    pub fn quarantined(&self) {
        self.0.quarantined.inc();
    }

    /// Sets the stored-blob gauges.
    pub fn set_stored(&self, count: u64, bytes: u64) {
        self.0.blobs.set(i64::try_from(count).unwrap_or(i64::MAX));
        self.0.blob_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }
}

/// Middleware recording every request.
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let head = request.method() == http::Method::HEAD;
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response.extensions().get::<RouteLabel>().map_or("other", |r| r.0);
    let status = response.status().as_u16();
    metrics.0.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    metrics.0.latency.get_or_create(&RouteLabels { route }).observe(started.elapsed().as_secs_f64());
    if let Some(len) = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|_| !head)
    {
        metrics.0.bytes_out.inc_by(len);
    }
    response
}
