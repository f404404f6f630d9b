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
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let message = body["errors"][0]["message"].as_str().unwrap_or("no detail");
        bail!("`{url}` refused the credentials of `{}` ({status}): {message}", credentials.name);
    }
    let token = body["token"].as_str().context("the token endpoint returned no token")?;
    let mut headers = HeaderMap::new();
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).context("the token is not a header value")?;
    value.set_sensitive(true);
    headers.insert(AUTHORIZATION, value);
    Ok(reqwest::Client::builder().default_headers(headers).build()?)
}
