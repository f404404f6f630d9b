//! Talking to a server as a principal: credentials from the environment, and registry tokens
//! from its `/token` endpoint (Docker token authentication).

use anyhow::{Context, bail};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

/// Environment variable naming the principal (a user or a service account).
pub const USERNAME_ENV: &str = "AIRLOCK_USERNAME";
/// Environment variable holding its password or API key. Secrets never go on the command line,
/// where other users of the machine can read them.
pub const PASSWORD_ENV: &str = "AIRLOCK_PASSWORD";

/// A principal's name and secret (password or API key).
#[derive(Clone)]
pub struct Credentials {
    pub name: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Credentials {
    /// From `AIRLOCK_USERNAME` and `AIRLOCK_PASSWORD`.
    pub fn from_env() -> anyhow::Result<Credentials> {
        match (std::env::var(USERNAME_ENV), std::env::var(PASSWORD_ENV)) {
            (Ok(name), Ok(secret)) if !name.is_empty() && !secret.is_empty() => Ok(Credentials { name, secret }),
            _ => bail!(
                "no credentials: set `{USERNAME_ENV}` to a user or service account and `{PASSWORD_ENV}` to its password or API key"
            ),
        }
    }
}

/// An HTTP client that sends a registry token for `scopes` with every request.
pub async fn registry_client(
    server: &str,
    credentials: &Credentials,
    scopes: &[String],
) -> anyhow::Result<reqwest::Client> {
    let base = server.trim_end_matches('/');
    let query: Vec<(&str, &str)> =
        std::iter::once(("service", "airlock")).chain(scopes.iter().map(|s| ("scope", s.as_str()))).collect();
    let url = format!("{base}/token");
    let response = reqwest::Client::new()
        .get(&url)
        .query(&query)
        .basic_auth(&credentials.name, Some(&credentials.secret))
        .send()
        .await
        .with_context(|| format!("cannot reach `{url}`"))?;
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if !status.is_success() {
        let message = oci_error(&body).unwrap_or_else(|| "no detail".to_owned());
        bail!("`{url}` refused the credentials of `{}` ({status}): {message}", credentials.name);
    }
    let token = serde_json::from_slice::<RegistryToken>(&body)
        .ok()
        .map(|t| t.token)
        .context("the token endpoint returned no token")?;
    let mut headers = HeaderMap::new();
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).context("the token is not a header value")?;
    value.set_sensitive(true);
    headers.insert(AUTHORIZATION, value);
    Ok(reqwest::Client::builder().default_headers(headers).build()?)
}

/// The answer of the `/token` endpoint (Docker token authentication): the part a client uses.
#[derive(serde::Deserialize)]
struct RegistryToken {
    token: String,
}

/// The first message of an OCI error body (`{"errors": [...]}`), if the body is one.
pub fn oci_error(body: &[u8]) -> Option<String> {
    let body: airlock_api::oci::ErrorBody = serde_json::from_slice(body).ok()?;
    body.errors.into_iter().next().map(|e| e.message)
}
