//! The stored login session of `airlock login`, and the API client the identity commands build
//! from it: one server, one principal, one short-lived API token refreshed before it runs out.
//!
//! The session lives at `$XDG_CONFIG_HOME/airlock/session.json` (`$HOME/.config/airlock/...`
//! when `XDG_CONFIG_HOME` is unset), in a directory of mode 0700 and a file of mode 0600: the
//! token in it acts as the principal until it expires. The password or API key is never stored.

use std::path::PathBuf;

use airlock_api::v1::{ApiToken, ErrorBody};
use airlock_model::Timestamp;
use anyhow::{Context, bail};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::trust::now;

/// The session file's name, inside the `airlock` configuration directory.
pub const SESSION_FILE: &str = "session.json";
/// A token with fewer than this many seconds left is refreshed before it is used.
pub const REFRESH_MARGIN_SECS: u64 = 5 * 60;
/// Seconds an API request may take before the command gives up.
const REQUEST_TIMEOUT_SECS: u64 = 60;

/// A logged-in session: which server, as whom, and the current API token.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// The server's base URL, without a trailing `/`.
    pub server: String,
    /// The principal the token acts as.
    pub principal: String,
    /// The API token (a bearer credential).
    pub token: String,
    /// When the token expires, RFC 3339.
    pub expires_at: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.server)
            .field("principal", &self.principal)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// `server` checked to be an `http(s)://` URL, without a trailing `/`.
pub fn normalize_server(server: &str) -> anyhow::Result<String> {
    let base = server.trim().trim_end_matches('/');
    if !base.starts_with("http://") && !base.starts_with("https://") {
        bail!("server `{base}` is not a URL; pass it as `https://host:port`");
    }
    Ok(base.to_owned())
}

/// The directory holding the session: `$XDG_CONFIG_HOME/airlock`, else `$HOME/.config/airlock`.
/// A relative `XDG_CONFIG_HOME` is ignored, as the XDG base directory specification says.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    let base = match xdg {
        Some(dir) => dir,
        None => match std::env::var_os("HOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
            Some(home) => home.join(".config"),
            None => bail!("cannot find a place for the session: set `XDG_CONFIG_HOME` or `HOME`"),
        },
    };
    Ok(base.join("airlock"))
}

/// The session file's path.
pub fn session_path() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join(SESSION_FILE))
}

impl Session {
    /// A session for the token the server just issued; it expires `expires_in` seconds from now
    /// by this machine's clock.
    pub fn from_reply(server: &str, reply: &ApiToken) -> Session {
        Session {
            server: server.to_owned(),
            principal: reply.principal.clone(),
            token: reply.token.clone(),
            expires_at: now().plus_millis(reply.expires_in.saturating_mul(1000)).to_rfc3339(),
        }
    }

    /// Reads the stored session.
    pub fn load() -> anyhow::Result<Session> {
        let path = session_path()?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("not logged in; run `airlock login URL` first")
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read the session `{}`", path.display())),
        };
        serde_json::from_slice(&bytes)
            .with_context(|| format!("the session `{}` is damaged; run `airlock login URL` again", path.display()))
    }

    /// Writes the session atomically, readable by its owner only, and returns its path.
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let dir = config_dir()?;
        create_private_dir(&dir)?;
        let path = dir.join(SESSION_FILE);
        let temporary = dir.join(format!("{SESSION_FILE}.{}.tmp", std::process::id()));
        let bytes = serde_json::to_vec_pretty(self)?;
        write_private(&temporary, &bytes)?;
        if let Err(e) = std::fs::rename(&temporary, &path) {
            let _ = std::fs::remove_file(&temporary);
            return Err(e).with_context(|| format!("cannot write the session `{}`", path.display()));
        }
        Ok(path)
    }

    /// When the token expires; `None` if the stored time does not parse.
    pub fn expires(&self) -> Option<Timestamp> {
        Timestamp::parse_rfc3339(&self.expires_at)
    }

    /// The error for a session the server no longer accepts.
    fn expired(&self) -> anyhow::Error {
        anyhow::anyhow!("session expired; run `airlock login {}` again", self.server)
    }

    /// Replaces the token by a fresh one from `/api/v1/auth/refresh` when fewer than
    /// [`REFRESH_MARGIN_SECS`] remain, and stores it. Fails when the token already expired or
    /// the server refuses it.
    pub async fn refresh_if_due(&mut self) -> anyhow::Result<()> {
        let Some(expires) = self.expires() else { return Err(self.expired()) };
        let now = now();
        if expires <= now {
            return Err(self.expired());
        }
        if expires.millis_since(now) >= REFRESH_MARGIN_SECS.saturating_mul(1000) {
            return Ok(());
        }
        let url = format!("{}/api/v1/auth/refresh", self.server);
        let response = http_client(Some(&self.token))?
            .post(&url)
            .send()
            .await
            .with_context(|| format!("cannot reach `{url}`; is the server running?"))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(self.expired());
        }
        let context = "cannot refresh the session";
        let reply: ApiToken = parse(&check(response, context).await?, context)?.body;
        if reply.principal != self.principal {
            bail!(
                "the server refreshed the session of `{}` as `{}`; run `airlock login {}` again",
                self.principal,
                reply.principal,
                self.server
            );
        }
        *self = Session::from_reply(&self.server, &reply);
        self.save()?;
        Ok(())
    }

    /// A client sending this session's token to `server_flag` (or the session's server) and the
    /// server's base URL. The token is refreshed first when fewer than [`REFRESH_MARGIN_SECS`]
    /// remain; an explicit server other than the session's is refused rather than sent the
    /// token.
    pub async fn api_client(&mut self, server_flag: Option<&str>) -> anyhow::Result<(reqwest::Client, String)> {
        if let Some(flag) = server_flag {
            let flag = normalize_server(flag)?;
            if flag != self.server {
                bail!(
                    "`--server` is `{flag}` but the session is for `{}`; run `airlock login {flag}` or drop `--server`",
                    self.server
                );
            }
        }
        self.refresh_if_due().await?;
        Ok((http_client(Some(&self.token))?, self.server.clone()))
    }
}

/// Creates `dir` (and its parents) with mode 0700 for the directories it creates.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("cannot create `{}`", dir.display()))
}

/// Writes `bytes` to a new file of mode 0600, replacing a stale one.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create `{}`", path.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write `{}`", path.display()))?;
    file.sync_all().with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// An HTTP client with a timeout, sending `token` as a bearer credential when given.
pub fn http_client(token: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {token}")).context("the session token is not a header value")?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(std::time::Duration::from_secs(REQUEST_TIMEOUT_SECS))
        .build()
        .context("cannot build the HTTP client")
}

/// The body of a successful response, or an error `{context}: {message}; {remediation}` from
/// the server's `{"error": {...}}`.
pub async fn check(response: reqwest::Response, context: &str) -> anyhow::Result<Vec<u8>> {
    let status = response.status();
    let bytes = response.bytes().await.with_context(|| format!("{context}: the response was cut off"))?;
    if status.is_success() {
        return Ok(bytes.to_vec());
    }
    let error = serde_json::from_slice::<ErrorBody>(&bytes).ok().map(|b| b.error);
    let mut line = match &error {
        Some(error) => format!("{context}: {}", error.message),
        None => format!("{context}: the server answered {status}"),
    };
    if let Some(remediation) = error.and_then(|e| e.remediation).filter(|r| !line.contains(r.as_str())) {
        line.push_str("; ");
        line.push_str(&remediation);
    }
    let line = line.replace(['\n', '\r'], " ");
    // Authorization and the rules said no (403, 422): the command exits 3, as a denial.
    if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
        return Err(Refused(line).into());
    }
    bail!("{line}")
}

/// A response body read as its DTO, beside the JSON exactly as the server sent it, which
/// `--output json` prints.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    pub body: T,
    pub raw: Value,
}

/// Reads a successful response body as the DTO `T`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], context: &str) -> anyhow::Result<Reply<T>> {
    let shape = || {
        format!(
            "{context}: the server's answer is not in the expected shape; check that the CLI and the server are the same version"
        )
    };
    let raw: Value = serde_json::from_slice(bytes).with_context(shape)?;
    let body = T::deserialize(&raw).with_context(shape)?;
    Ok(Reply { body, raw })
}

/// The server refused a request on its rules or its authorization; the binary exits 3.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The identity API over the stored session.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    session: Session,
}

impl Api {
    /// The API of `server_flag` (or the session's server); see [`Session::api_client`].
    pub async fn connect(server_flag: Option<&str>) -> anyhow::Result<Api> {
        let mut session = Session::load()?;
        let (http, _) = session.api_client(server_flag).await?;
        Ok(Api { http, session })
    }

    /// The session the API acts in.
    pub fn session(&self) -> &Session {
        &self.session
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
        context: &str,
    ) -> anyhow::Result<Reply<T>> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach `{}{path}`; is the server running?", self.session.server))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            // A change to the principal (a role, a disable) raises its epoch, which ends every
            // token issued before.
            let reason = check(response, "the server refused the session token").await.err();
            bail!(
                "{}; the session of `{}` is no longer valid; run `airlock login {}` again",
                reason.map_or_else(|| "the server refused the session token".to_owned(), |e| format!("{e:#}")),
                self.session.principal,
                self.session.server
            );
        }
        parse(&check(response, context).await?, context)
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, context: &str) -> anyhow::Result<Reply<T>> {
        self.send(self.http.get(format!("{}{path}", self.session.server)), path, context).await
    }

    /// `POST path` with `body` as JSON.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        context: &str,
    ) -> anyhow::Result<Reply<T>> {
        let request = self.http.post(format!("{}{path}", self.session.server)).json(body);
        self.send(request, path, context).await
    }

    /// `POST path` with no body.
    pub async fn post_empty<T: DeserializeOwned>(&self, path: &str, context: &str) -> anyhow::Result<Reply<T>> {
        self.send(self.http.post(format!("{}{path}", self.session.server)), path, context).await
    }

    /// `PUT path` with `body` as `content_type`, sent as it is.
    pub async fn put_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        context: &str,
    ) -> anyhow::Result<Reply<T>> {
        let request = self
            .http
            .put(format!("{}{path}", self.session.server))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.send(request, path, context).await
    }

    /// `DELETE path`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str, context: &str) -> anyhow::Result<Reply<T>> {
        self.send(self.http.delete(format!("{}{path}", self.session.server)), path, context).await
    }
}

/// Reads one line (a password) from stdin, without its line ending.
pub fn read_secret_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("cannot read the password from stdin")?;
    let secret = line.trim_end_matches(['\n', '\r']).to_owned();
    if secret.is_empty() {
        bail!("stdin held no password; pipe it in, for example `airlock login URL --password-stdin < file`");
    }
    Ok(secret)
}

/// A comma-separated list for text output, `-` when empty.
pub fn join_or_dash(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let joined: Vec<String> = items.into_iter().map(|s| s.as_ref().to_owned()).collect();
    if joined.is_empty() { "-".to_owned() } else { joined.join(", ") }
}

/// A principal name typed by the user, checked before it becomes a URL path segment.
pub fn principal_name(name: &str) -> anyhow::Result<airlock_model::PrincipalId> {
    airlock_model::PrincipalId::parse(name).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A role name typed by the user, checked before it becomes a URL path segment.
pub fn role_name(name: &str) -> anyhow::Result<&str> {
    if !airlock_access::authz::is_role_name(name) {
        bail!(
            "role name `{}` is invalid: use 1 to 64 lowercase letters, digits and `-`, starting with a letter; `airlock role list` shows the roles",
            airlock_model::echo::echo(name)
        );
    }
    Ok(name)
}
