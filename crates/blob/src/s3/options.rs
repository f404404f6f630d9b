//! Where an S3 blob store lives and how to reach it: the `s3://BUCKET/PREFIX` URL, parsed once,
//! and the connection options.

use std::fmt;

/// Where the store lives: `s3://BUCKET/PREFIX`, the prefix optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    bucket: String,
    prefix: String,
}

/// A blob store URL that is not `s3://BUCKET/PREFIX`.
#[derive(Debug, thiserror::Error)]
#[error("blob store URL `{input}` {problem}; write it as `s3://BUCKET` or `s3://BUCKET/PREFIX`")]
pub struct S3UrlError {
    input: String,
    problem: &'static str,
}

impl S3Url {
    /// Parses `s3://BUCKET/PREFIX`. The bucket follows S3's naming rules; the prefix is
    /// `/`-separated segments of letters, digits, `-`, `_` and `.` (a trailing `/` is ignored).
    pub fn parse(input: &str) -> Result<S3Url, S3UrlError> {
        let fail = |problem| S3UrlError { input: airlock_model::echo::echo(input), problem };
        let rest = input.strip_prefix("s3://").ok_or_else(|| fail("does not start with `s3://`"))?;
        if rest.contains(['?', '#']) {
            return Err(fail("has a query or fragment"));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(fail(
                "names no valid bucket (3 to 63 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit)",
            ));
        }
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        };
        if !prefix.is_empty() && !prefix.split('/').all(segment_ok) {
            return Err(fail(
                "has a prefix with an empty, `.` or `..` segment, or characters other than letters, digits, `-`, `_`, `.`",
            ));
        }
        Ok(S3Url { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, without leading or trailing `/`; empty for the bucket's root.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

impl std::str::FromStr for S3Url {
    type Err = S3UrlError;

    fn from_str(input: &str) -> Result<S3Url, S3UrlError> {
        S3Url::parse(input)
    }
}

/// Static keys, for services outside the AWS credential chain and for tests.
#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// How to reach the bucket. Everything unset here comes from the environment (`AWS_REGION`,
/// `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, …) or, for credentials, the AWS chain (web identity,
/// container, instance metadata); what is set here wins over the environment.
#[derive(Debug, Clone)]
pub struct S3Options {
    pub url: S3Url,
    /// The service's URL, for S3-compatible services (`http://127.0.0.1:8333`); `None` for AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Allows an `http://` endpoint. Always applies, whatever `AWS_ALLOW_HTTP` says.
    pub allow_http: bool,
    /// Static keys; `None` takes them from the environment or the AWS chain. A session token the
    /// environment sets (`AWS_SESSION_TOKEN`) is sent with them.
    pub credentials: Option<S3Credentials>,
}

impl S3Options {
    /// Options for `url` with everything else from the environment.
    pub fn new(url: S3Url) -> S3Options {
        S3Options { url, endpoint: None, region: None, allow_http: false, credentials: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: &str) {
        let actual = match S3Url::parse(input) {
            Ok(url) => format!("ok {url} bucket={} prefix={}", url.bucket(), url.prefix()),
            Err(e) => format!("err {e}"),
        };
        assert_eq!(actual, expect, "{input}");
    }

    #[test]
    fn urls() {
        check("s3://airlock", "ok s3://airlock bucket=airlock prefix=");
        check("s3://airlock/", "ok s3://airlock bucket=airlock prefix=");
        check("s3://airlock/prod/blobs/", "ok s3://airlock/prod/blobs bucket=airlock prefix=prod/blobs");
        check("s3://my.bucket-1/a_b.c", "ok s3://my.bucket-1/a_b.c bucket=my.bucket-1 prefix=a_b.c");
        check(
            "https://airlock/prefix",
            "err blob store URL `https://airlock/prefix` does not start with `s3://`; write it as `s3://BUCKET` or `s3://BUCKET/PREFIX`",
        );
        let bad_bucket = "names no valid bucket (3 to 63 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit)";
        for input in ["s3://", "s3://ab", "s3://Airlock", "s3://-airlock", "s3://air_lock", "s3:///prefix"] {
            check(
                input,
                &format!(
                    "err blob store URL `{input}` {bad_bucket}; write it as `s3://BUCKET` or `s3://BUCKET/PREFIX`"
                ),
            );
        }
        for input in ["s3://airlock//x", "s3://airlock/a/../b", "s3://airlock/a b", "s3://airlock/./a"] {
            let actual = S3Url::parse(input).unwrap_err().to_string();
            assert!(actual.contains("has a prefix with an empty"), "{input}: {actual}");
        }
        check(
            "s3://airlock/x?versionId=1",
            "err blob store URL `s3://airlock/x?versionId=1` has a query or fragment; write it as `s3://BUCKET` or `s3://BUCKET/PREFIX`",
        );
        check(
            "s3://airlock/\u{1b}[31m",
            "err blob store URL `s3://airlock/\\u{1b}[31m` has a prefix with an empty, `.` or `..` segment, or characters other than letters, digits, `-`, `_`, `.`; write it as `s3://BUCKET` or `s3://BUCKET/PREFIX`",
        );
    }
}
