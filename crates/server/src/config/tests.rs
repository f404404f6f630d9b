//! The configuration's own tests: defaults, parsing, refusals and the digest.

use super::*;

#[test]
fn empty_file_gives_defaults() {
    let (config, unknown) = Config::from_toml("", "t").unwrap();
    assert!(unknown.is_empty());
    assert_eq!(config.listen.to_string(), "127.0.0.1:5000");
    assert_eq!(config.stages.describe(), "dev (pushable) -> staging -> prod");
    assert_eq!(config.limits.manifest.max_bytes, 4 * 1024 * 1024);
    assert_eq!(config.data_dir, PathBuf::from("./airlock-data"));
    assert_eq!(config.public_url, "http://127.0.0.1:5000");
    assert_eq!(config.log.origin, "127.0.0.1:5000/log");
}

#[test]
fn unknown_keys_are_reported() {
    let text = "listen = \"0.0.0.0:6000\"\nlisten_port = 1\n[limits]\npage_max = 10\nbogus = true\n";
    let (config, unknown) = Config::from_toml(text, "t").unwrap();
    assert_eq!(config.limits.page_max, 10);
    assert_eq!(unknown, vec!["listen_port".to_owned(), "limits.bogus".to_owned()]);
}

#[test]
fn bad_values_name_the_file_and_key() {
    let err = Config::from_toml("listen = \"nowhere\"", "airlock.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "config file `airlock.toml`: `listen` value `nowhere` is not an address like `127.0.0.1:5000`"
    );
    let err = Config::from_toml("[[stages]]\nname = \"Dev\"", "airlock.toml").unwrap_err();
    assert!(err.to_string().contains("stage name `Dev` is invalid"), "{err}");
    let err = Config::from_toml("[[stages]]\nname = \"a\"\n[[stages]]\nname = \"a\"", "airlock.toml").unwrap_err();
    assert!(err.to_string().contains("configured twice"), "{err}");
}

#[test]
fn subaddresses_fold_unless_turned_off() {
    let (config, unknown) = Config::from_toml("", "t").unwrap();
    assert!(config.access.fold_subaddress && unknown.is_empty());
    let (config, unknown) = Config::from_toml("[access]\nfold_subaddress = false\n", "t").unwrap();
    assert!(!config.access.fold_subaddress && unknown.is_empty());
}

#[test]
fn log_origin_follows_the_public_url() {
    let (config, _) = Config::from_toml("public_url = \"https://registry.example.com/\"", "t").unwrap();
    assert_eq!(config.log.origin, "registry.example.com/log");
    let (config, _) = Config::from_toml("[log]\norigin = \"audit.example.com/airlock\"", "t").unwrap();
    assert_eq!(config.log.origin, "audit.example.com/airlock");
}

#[test]
fn config_digest_changes_with_any_setting() {
    let (a, _) = Config::from_toml("", "t").unwrap();
    let (b, _) = Config::from_toml("[limits]\npage_max = 7", "t").unwrap();
    assert_eq!(a.digest(), Config::from_toml("", "t").unwrap().0.digest());
    assert_ne!(a.digest(), b.digest());
}

#[test]
fn trusted_proxies_are_ranges_of_addresses() {
    let (config, unknown) =
        Config::from_toml("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"]", "t")
            .unwrap();
    assert!(unknown.is_empty());
    let ranges: Vec<String> = config.trusted_proxies.ranges().iter().map(ToString::to_string).collect();
    assert_eq!(ranges, ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]);
    assert!(Config::from_toml("", "t").unwrap().0.trusted_proxies.ranges().is_empty(), "none by default");
    let err = Config::from_toml("[server]\ntrusted_proxies = [\"proxy.internal\"]", "airlock.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "config file `airlock.toml`: `server.trusted_proxies`: `proxy.internal` is not an address range like `10.0.0.0/8` or `2001:db8::/32`"
    );
    let err = Config::from_toml("[server]\ntrusted_proxies = [\"0.0.0.0/0\"]", "airlock.toml").unwrap_err();
    assert!(err.to_string().contains("trusts every address"), "{err}");
    let (a, _) = Config::from_toml("", "t").unwrap();
    let (b, _) = Config::from_toml("[server]\ntrusted_proxies = [\"10.0.0.0/8\"]", "t").unwrap();
    assert_ne!(a.digest(), b.digest(), "the trusted proxies are part of the logged config digest");
}

#[test]
fn access_conflicts_and_compatible_pairs_default_and_parse() {
    let (config, unknown) = Config::from_toml("", "t").unwrap();
    assert!(unknown.is_empty());
    assert_eq!(config.access.conflicts, airlock_access::authz::default_conflicts());
    assert_eq!(config.access.compatible, airlock_access::authz::default_compatible());
    let text = "[access]\nconflicts = [[\"key-admin\", \"*\"]]\ncompatible = [[\"key-admin\", \"auditor\"]]\n";
    let (config, unknown) = Config::from_toml(text, "t").unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    assert_eq!(config.access.conflicts, [("key-admin".to_owned(), "*".to_owned())]);
    assert_eq!(config.access.compatible, [("key-admin".to_owned(), "auditor".to_owned())]);
    let (config, _) = Config::from_toml("[access]\ncompatible = []\n", "t").unwrap();
    assert!(config.access.compatible.is_empty());
    assert_eq!(config.access.conflicts, airlock_access::authz::default_conflicts());
}

#[test]
fn stages_from_config() {
    let text = "[[stages]]\nname = \"build\"\npushable = true\n[[stages]]\nname = \"live\"\n";
    let (config, _) = Config::from_toml(text, "t").unwrap();
    assert_eq!(config.stages.describe(), "build (pushable) -> live");
}

#[test]
fn default_stages_carry_the_default_gates() {
    let (config, _) = Config::from_toml("", "t").unwrap();
    let names = |s: &str| config.stages.get(&StageName::parse(s).unwrap()).unwrap().gates().cloned();
    assert!(names("dev").is_none());
    let staging = names("staging").unwrap();
    let required: Vec<&str> = staging.attestations.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(required, ["provenance", "sbom", "vulnerability-scan"]);
    assert!(staging.approvals.is_none());
    let prod = names("prod").unwrap();
    assert_eq!(prod.from.as_str(), "staging");
    let rule = prod.approvals.unwrap();
    assert_eq!((rule.count, rule.role.as_str(), rule.mfa), (2, "release-approver", true));
}

#[test]
fn stage_gates_are_checked_with_precise_errors() {
    let stages =
        |extra: &str| format!("[[stages]]\nname = \"dev\"\npushable = true\n[[stages]]\nname = \"prod\"\n{extra}");
    for (extra, wanted) in [
        (
            "[[stages.attestations]]\nname = \"p\"\npredicate_types = []\n",
            "stage `prod`: attestation requirement `p` lists no `predicate_types`",
        ),
        ("[[stages.attestations]]\nname = \"p\"\npredicate_types = [\"x\"]\nthreshold = 0\n", "has `threshold = 0`"),
        (
            "[[stages.attestations]]\nname = \"p\"\npredicate_types = [\"x\"]\nsigners = [\"ci\"]\nthreshold = 2\n",
            "needs 2 signers but lists only 1",
        ),
        ("[stages.approvals]\ncount = 0\nrole = \"r\"\n", "`approvals.count` is 0"),
        ("[stages.approvals]\ncount = 1\nrole = \" \"\n", "`approvals.role` is empty"),
        ("from = \"prod\"\n", "is promoted from `prod`, which is not an earlier stage"),
        (
            "[[stages.windows]]\ndays = [\"mon\"]\nstart = \"09:00\"\nend = \"17:00\"\ntimezone = \"Mars/Olympus\"\n",
            "`windows`",
        ),
    ] {
        let err = Config::from_toml(&stages(extra), "airlock.toml").unwrap_err().to_string();
        assert!(err.contains(wanted), "{extra}: {err}");
        assert!(err.starts_with("config file `airlock.toml`"), "{err}");
    }
    let digest = |extra: &str| Config::from_toml(&stages(extra), "t").unwrap().0.digest();
    assert_ne!(digest(""), digest("freeze = true\n"), "the gates are part of the logged config digest");
}

#[test]
fn connection_and_api_body_limits_have_defaults_and_keys() {
    let (config, unknown) = Config::from_toml("", "t").unwrap();
    assert!(unknown.is_empty());
    assert_eq!(config.connections.header_read_timeout, Duration::from_secs(HEADER_READ_TIMEOUT_SECS));
    assert_eq!(config.connections.per_client, CONNECTIONS_PER_CLIENT);
    assert_eq!(config.body.api_max_bytes, API_BODY_MAX_BYTES);
    assert_eq!(config.body.definition_max_bytes, API_DEFINITION_MAX_BYTES);
    assert_eq!(config.body.trust_root_max_bytes, TRUST_ROOT_MAX_BYTES);
    let text = "[server]\nheader_read_timeout_secs = 0\nconnections_per_client = 3\n[limits]\napi_body_max_bytes = 100\napi_definition_max_bytes = 200\ntrust_root_max_bytes = 300\n";
    let (set, unknown) = Config::from_toml(text, "t").unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    // A zero timeout would close every connection at once; it is one second at least.
    assert_eq!(set.connections.header_read_timeout, Duration::from_secs(1));
    assert_eq!(set.connections.per_client, 3);
    assert_eq!((set.body.api_max_bytes, set.body.definition_max_bytes, set.body.trust_root_max_bytes), (100, 200, 300));
    assert_ne!(config.digest(), set.digest(), "the new keys are part of the effective config");
}

#[test]
fn rate_limits_and_refusal_windows_have_defaults_and_keys() {
    let (config, unknown) = Config::from_toml("", "t").unwrap();
    assert!(unknown.is_empty());
    assert_eq!(
        config.rate_limits,
        RateLimits {
            anonymous_per_minute: ANONYMOUS_PER_MINUTE,
            anonymous_burst: ANONYMOUS_BURST,
            principal_per_minute: PRINCIPAL_PER_MINUTE,
            principal_burst: PRINCIPAL_BURST,
        }
    );
    assert_eq!(config.log.refusals, RefusalLimits { window_secs: REFUSAL_WINDOW_SECS, keys_max: REFUSAL_KEYS_MAX });
    let text = "[rate_limits]\nanonymous_per_minute = 30\nanonymous_burst = 0\nprincipal_per_minute = 600\nprincipal_burst = 50\n[log]\nrefusal_window_secs = 5\nrefusal_keys_max = 10\n";
    let (config, unknown) = Config::from_toml(text, "t").unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    assert_eq!(
        config.rate_limits,
        RateLimits { anonymous_per_minute: 30, anonymous_burst: 1, principal_per_minute: 600, principal_burst: 50 },
        "a bucket holds at least one request"
    );
    assert_eq!(config.log.refusals, RefusalLimits { window_secs: 5, keys_max: 10 });
    let (default, _) = Config::from_toml("", "t").unwrap();
    assert_ne!(default.digest(), config.digest(), "the limits are part of the effective configuration");
    let (window_only, _) = Config::from_toml("[log]\nrefusal_window_secs = 5\n", "t").unwrap();
    assert_ne!(default.digest(), window_only.digest());
}

#[test]
fn the_store_and_blobs_default_to_the_data_directory_and_take_urls() {
    let (config, unknown) = Config::from_toml("", "t").unwrap();
    assert!(unknown.is_empty());
    assert_eq!((config.store.url.as_deref(), config.blobs.url.as_deref()), (None, None));
    assert_eq!(config.store.pool_max, 16);
    let text = "[store]\nurl = \"postgres://airlock:s3cret@db.internal:5432/airlock?sslmode=verify-full\"\npool_max = 4\n\
                statement_timeout_ms = 5000\n[blobs]\nurl = \"s3://artifacts/airlock\"\nendpoint = \"http://127.0.0.1:8333\"\n\
                region = \"eu-west-1\"\nallow_http = true\n";
    let (config, unknown) = Config::from_toml(text, "t").unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    assert_eq!(config.store.pool_max, 4);
    assert_eq!(config.store.statement_timeout, Duration::from_secs(5));
    assert_eq!(config.blobs.url.as_deref(), Some("s3://artifacts/airlock"));
    assert!(config.blobs.allow_http);
    let shown = format!("{:?}", config.store);
    assert!(!shown.contains("s3cret") && shown.contains("airlock:***@db.internal:5432/airlock"), "{shown}");
}

#[test]
fn store_and_blob_urls_of_another_kind_are_refused_without_their_password() {
    let err = Config::from_toml("[store]\nurl = \"mysql://root:hunter2@db/airlock\"", "airlock.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "config file `airlock.toml`: `store.url` `mysql://root:***@db/airlock` is not a `postgres://` URL; leave it out to keep SQLite in the data directory"
    );
    let err = Config::from_toml("[blobs]\nurl = \"/srv/blobs\"", "airlock.toml").unwrap_err();
    assert!(err.to_string().contains("`/srv/blobs` does not start with `s3://`"), "{err}");
    assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(redact_password("postgres://u:p@ss@h/db?x=1"), "postgres://u:***@h/db?x=1");
}
