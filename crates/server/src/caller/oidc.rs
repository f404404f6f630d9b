//! CI providers' keys: the JWKS of each configured OIDC issuer, refreshed from its URL.

use super::{CallerService, CallerStartError};
use crate::config::AccessConfig;

/// The configured issuers: keys from a file now, or none until the first fetch from a URL.
pub(super) fn issuers(config: &AccessConfig) -> Result<Vec<airlock_access::token::oidc::OidcIssuer>, CallerStartError> {
    let mut oidc = Vec::with_capacity(config.oidc.len());
    for provider in &config.oidc {
        let (source, bytes) = match (&provider.jwks, &provider.jwks_url) {
            (Some(path), _) => {
                let source = path.display().to_string();
                let bytes = std::fs::read(path).map_err(|e| CallerStartError::Oidc {
                    issuer: provider.issuer.clone(),
                    path: source.clone(),
                    reason: e.to_string(),
                })?;
                (source, bytes)
            }
            // Until the first fetch succeeds the issuer has no keys: its tokens are refused.
            (None, Some(url)) => (url.clone(), br#"{"keys":[]}"#.to_vec()),
            (None, None) => (String::new(), br#"{"keys":[]}"#.to_vec()),
        };
        let issuer =
            airlock_access::token::oidc::OidcIssuer::new(&provider.issuer, &provider.audience, &bytes).map_err(
                |e| CallerStartError::Oidc { issuer: provider.issuer.clone(), path: source, reason: e.to_string() },
            )?;
        oidc.push(issuer);
    }
    Ok(oidc)
}

impl CallerService {
    /// Fetches the JWKS of every CI provider configured by URL and puts the keys in force; a
    /// provider whose fetch fails keeps the keys it had. Returns the failures, one line each.
    pub async fn refresh_jwks(&self) -> Vec<String> {
        let mut failures = Vec::new();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = match reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build() {
            Ok(client) => client,
            Err(e) => return vec![format!("cannot build an http client: {e}")],
        };
        for provider in &self.config.oidc {
            let Some(url) = &provider.jwks_url else { continue };
            let fetched = async {
                let response = client.get(url).send().await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("answered {}", response.status()));
                }
                // Read at most one byte past the JWKS limit, whatever the server sends.
                let mut response = response;
                let mut bytes = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > airlock_access::token::oidc::MAX_JWKS_BYTES {
                        return Err(format!(
                            "the document is over {} bytes",
                            airlock_access::token::oidc::MAX_JWKS_BYTES
                        ));
                    }
                }
                airlock_access::token::oidc::OidcIssuer::new(&provider.issuer, &provider.audience, &bytes)
                    .map_err(|e| e.to_string())
            }
            .await;
            match fetched {
                Ok(issuer) => {
                    let mut issuers = self.oidc.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(slot) = issuers.iter_mut().find(|i| i.issuer() == provider.issuer) {
                        *slot = issuer;
                    }
                }
                Err(reason) => failures.push(format!("jwks of `{}` from `{url}`: {reason}", provider.issuer)),
            }
        }
        failures
    }

    /// Seconds between JWKS fetches, when any provider is configured by URL.
    pub fn jwks_refresh(&self) -> Option<std::time::Duration> {
        self.config
            .oidc
            .iter()
            .any(|p| p.jwks_url.is_some())
            .then(|| std::time::Duration::from_secs(self.config.jwks_refresh_secs))
    }
}
