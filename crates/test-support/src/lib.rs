//! Test-only helpers: OCI fixture builders, an in-process app, and `spawn_app` on port 0.

pub mod conformance;
pub mod oci;
pub mod process;

use std::net::SocketAddr;
use std::path::Path;

use airlock_server::{App, Config, Server};
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A config for tests: defaults, a data directory under `dir`, port 0, no background scrub.
pub fn test_config(dir: &Path, extra_toml: &str) -> Config {
    let text = format!("listen = \"127.0.0.1:0\"\n{extra_toml}\n[scrub]\nenabled = false\n");
    let (mut config, unknown) = Config::from_toml(&text, "test").unwrap_or_else(|e| panic!("test config: {e}"));
    assert!(unknown.is_empty(), "unknown test config keys: {unknown:?}");
    config.data_dir = dir.join("data");
    config
}

/// An in-process app over a fresh data directory.
#[derive(Debug)]
pub struct TestApp {
    pub app: App,
    pub router: Router,
    pub dir: tempfile::TempDir,
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// The first OCI error code in the body.
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or("").to_owned()
    }
}

impl TestApp {
    /// A fresh app with default config plus `extra_toml`.
    pub async fn new(extra_toml: &str) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let app = App::open(test_config(dir.path(), extra_toml)).await.expect("app opens");
        app.announce_start().await.expect("start is logged");
        let router = app.router();
        TestApp { app, router, dir }
    }

    /// An app over an existing configuration (to reopen a data directory, say). The temp dir
    /// it holds is unrelated to `config.data_dir`.
    pub async fn with_config(config: Config) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let app = App::open(config).await.expect("app opens");
        app.announce_start().await.expect("start is logged");
        let router = app.router();
        TestApp { app, router, dir }
    }

    /// Sends one request through the router.
    pub async fn send(&self, method: Method, uri: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Body::from(body.into())).expect("request builds");
        self.send_request(request).await
    }

    /// Sends a prepared request.
    pub async fn send_request(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("router is infallible");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body reads").to_bytes();
        Reply { status: parts.status, headers: parts.headers, body }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, &[], Bytes::new()).await
    }

    /// Pushes a blob monolithically and asserts 201.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = oci::digest(bytes);
        let reply = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
                &[("content-length", &bytes.len().to_string())],
                Bytes::copy_from_slice(bytes),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "blob push: {:?}", reply.body);
        digest
    }

    /// Pushes an image's blobs and its manifest under `reference`, asserting success.
    pub async fn push_image(&self, repo: &str, image: &oci::Image, reference: &str) -> Reply {
        for blob in image.blobs() {
            self.push_blob(repo, blob).await;
        }
        let reply = self
            .send(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("content-type", image.media_type())],
                image.manifest.clone(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "manifest push: {:?}", reply.body);
        reply
    }
}

/// A server on a real socket, as `airlock serve` runs it.
#[derive(Debug)]
pub struct SpawnedApp {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SpawnedApp {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Starts a server on port 0 over a fresh data directory.
pub async fn spawn_app(extra_toml: &str) -> SpawnedApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::bind(test_config(dir.path(), extra_toml)).await.expect("server binds");
    let addr = server.local_addr().expect("bound address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server
            .run(async move {
                let _ = stopped.await;
            })
            .await;
    });
    SpawnedApp { addr, dir, stop: Some(stop), task: Some(task) }
}
