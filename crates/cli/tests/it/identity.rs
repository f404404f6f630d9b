//! Identity through the `airlock` binary against a live server: `login` and its stored session,
//! `whoami`, service accounts and their keys, users, roles and a grant that breaks separation of
//! duties; and `policy authz check` deciding requests offline.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};

use airlock_model::Timestamp;
use airlock_test_support::ADMIN_PASSWORD;
use airlock_test_support::process::{ServerProcess, request};
use base64::Engine as _;
use serde_json::Value;

use crate::{airlock, cmd, show};

fn run(config_home: &Path, args: &[&str]) -> Output {
    cmd(config_home, args).output().expect("airlock runs")
}

/// The JSON a successful command printed.
fn ok(output: Output) -> Value {
    assert!(output.status.success(), "{}", show(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", show(&output)))
}

/// The stderr of a command that failed with `code`.
fn fails(output: Output, code: i32) -> String {
    assert_eq!(output.status.code(), Some(code), "{}", show(&output));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn session_file(config_home: &Path) -> PathBuf {
    config_home.join("airlock/session.json")
}

fn read_session(config_home: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(session_file(config_home)).expect("session exists")).expect("session JSON")
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    Timestamp::from_millis(i64::try_from(ms).unwrap())
}

/// Moves the stored token's expiry to `at`, as if time had passed.
fn expire_session_at(config_home: &Path, at: Timestamp) {
    let mut session = read_session(config_home);
    session["expires_at"] = Value::from(at.to_rfc3339());
    std::fs::write(session_file(config_home), serde_json::to_vec(&session).unwrap()).unwrap();
}

/// Logs in as the administrator, the password in `AIRLOCK_PASSWORD`.
fn login_admin(config_home: &Path, url: &str) -> Value {
    ok(cmd(config_home, &["login", url, "--username", "admin", "--output", "json"])
        .env("AIRLOCK_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap())
}

/// The claims of a JWT, unverified.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The actions a registry token grants on repository `name`.
fn granted(token: &str, name: &str) -> Vec<String> {
    claims(token)["access"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "repository" && a["name"] == name)
        .flat_map(|a| a["actions"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn login_whoami_and_managing_principals_through_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("config");
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    let url = format!("http://{}", server.addr);

    // Log in; the session is private to its owner and holds no password.
    let login = login_admin(&home, &url);
    assert_eq!(login["principal"], "admin");
    assert_eq!(login["kind"], "user");
    assert!(login["roles"].as_array().unwrap().iter().any(|r| r == "access-admin"), "{login}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&session_file(&home)), 0o600);
        assert_eq!(mode(&home.join("airlock")), 0o700);
    }
    let stored = std::fs::read_to_string(session_file(&home)).unwrap();
    assert!(!stored.contains(ADMIN_PASSWORD), "the session must not hold the password");
    let session = read_session(&home);
    assert_eq!(session["server"], url.as_str());
    assert_eq!(session["principal"], "admin");

    let me = ok(run(&home, &["whoami", "--output", "json"]));
    assert_eq!(me["name"], "admin");
    assert_eq!(me["kind"], "user");
    assert_eq!(me["disabled"], false);
    let text = run(&home, &["whoami"]);
    assert!(String::from_utf8_lossy(&text.stdout).starts_with("admin (user) on http://"), "{}", show(&text));

    // A service account's key, printed once, gets a registry token for what `ci` may do.
    let created = run(&home, &["sa", "create", "ci-x", "--role", "ci", "--days", "7", "--output", "json"]);
    assert!(String::from_utf8_lossy(&created.stderr).contains("shown only this once"), "{}", show(&created));
    let created = ok(created);
    assert_eq!(created["principal"]["name"], "ci-x");
    let key = created["api_key"].as_str().expect("api key printed").to_owned();
    let basic = airlock_test_support::basic("ci-x", &key);
    let reply = request(
        server.addr,
        "GET",
        "/token?service=airlock&scope=repository:dev/app:pull,push&scope=repository:prod/app:pull,push",
        &[("authorization", &basic)],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let token: Value = serde_json::from_slice(&reply.body).unwrap();
    let token = token["token"].as_str().unwrap();
    let mut dev = granted(token, "dev/app");
    dev.sort();
    assert_eq!(dev, ["pull", "push"]);
    assert!(granted(token, "prod/app").is_empty(), "`ci` may not touch prod: {}", claims(token));

    // Rotating the key ends the old one.
    let rotated = ok(run(&home, &["sa", "rotate-key", "ci-x", "--output", "json"]));
    assert_ne!(rotated["api_key"], key.as_str());
    let old = request(server.addr, "GET", "/token?service=airlock", &[("authorization", &basic)], b"");
    assert_eq!(old.status, 401);
    let accounts = ok(run(&home, &["sa", "list", "--output", "json"]));
    assert!(accounts.as_array().unwrap().iter().any(|p| p["name"] == "ci-x"), "{accounts}");
    assert!(accounts.as_array().unwrap().iter().all(|p| p["kind"] == "service_account"), "{accounts}");

    // Separation of duties: a deployer cannot also be an access administrator.
    ok(run(&home, &["sa", "create", "d", "--role", "deployer", "--output", "json"]));
    let refused = fails(run(&home, &["role", "grant", "d", "access-admin"]), 1);
    assert!(refused.contains("cannot grant role `access-admin` to `d`"), "{refused}");
    assert!(refused.contains("breaks separation of duties"), "{refused}");
    assert_eq!(refused.trim().lines().count(), 1, "one line: {refused}");
    let granted_role = ok(run(&home, &["role", "grant", "d", "auditor", "--output", "json"]));
    assert_eq!(granted_role["roles"], serde_json::json!(["auditor", "deployer"]));
    let revoked = ok(run(&home, &["role", "revoke", "d", "auditor", "--output", "json"]));
    assert_eq!(revoked["roles"], serde_json::json!(["deployer"]));
    let roles = ok(run(&home, &["role", "list", "--output", "json"]));
    let names: Vec<&str> = roles.as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    for role in ["developer", "ci", "release-approver", "deployer", "access-admin", "auditor"] {
        assert!(names.contains(&role), "{role} missing from {names:?}");
    }

    // Users: `user add` prints a one-time enrollment token, never a password; the person
    // enrolls with it, choosing their password (from the environment or stdin), and gets their
    // second factor. A token works once.
    let alice = ok(run(
        &home,
        &["user", "add", "alice", "--role", "developer", "--email", "alice@example.com", "--output", "json"],
    ));
    assert!(alice.get("password").is_none(), "{alice}");
    let token = alice["enrollment_token"].as_str().expect("enrollment token").to_owned();
    let password = "alice's own password".to_owned();
    let enroll = |token: &str, password: &str| {
        cmd(&home, &["user", "enroll", token, "--server", &url, "--output", "json"])
            .env("AIRLOCK_PASSWORD", password)
            .output()
            .unwrap()
    };
    let enrolled = ok(enroll(&token, &password));
    assert_eq!(enrolled["principal"], "alice");
    assert!(enrolled["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/airlock:alice?"), "{enrolled}");
    let again = fails(enroll(&token, "another password"), 1);
    assert!(again.contains("enrollment token is invalid, spent or expired"), "{again}");
    let bob = ok(run(&home, &["user", "add", "bob", "--role", "auditor", "--output", "json"]));
    let mut child = cmd(
        &home,
        &["user", "enroll", bob["enrollment_token"].as_str().unwrap(), "--server", &url, "--password-stdin"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    child.stdin.take().unwrap().write_all(b"bob's chosen password\n").unwrap();
    let text = child.wait_with_output().unwrap();
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    assert!(String::from_utf8_lossy(&text.stdout).contains("enrolled `bob`"), "{text:?}");
    let users = ok(run(&home, &["user", "list", "--output", "json"]));
    let names: Vec<&str> = users.as_array().unwrap().iter().filter_map(|u| u["name"].as_str()).collect();
    assert!(names.contains(&"admin") && names.contains(&"alice") && names.contains(&"bob"), "{names:?}");
    assert!(!names.contains(&"ci-x"), "service accounts are not users: {names:?}");

    // Disabling a user ends their logins; enabling restores them.
    let alice_home = dir.path().join("alice");
    let as_alice = |home: &Path| {
        cmd(home, &["login", &url, "--username", "alice", "--output", "json"])
            .env("AIRLOCK_PASSWORD", &password)
            .output()
            .unwrap()
    };
    ok(as_alice(&alice_home));
    ok(run(&home, &["user", "disable", "alice", "--output", "json"]));
    let stale = fails(run(&alice_home, &["whoami"]), 1);
    assert!(stale.contains("airlock login"), "{stale}");
    fails(as_alice(&alice_home), 1);
    ok(run(&home, &["user", "enable", "alice", "--output", "json"]));
    assert_eq!(ok(as_alice(&alice_home))["principal"], "alice");
    // Alice is a developer, not an access administrator.
    let denied = fails(run(&alice_home, &["user", "list"]), 3);
    assert!(denied.contains("access-admin"), "{denied}");

    // Another server than the session's is refused before the token is sent anywhere.
    let other = fails(run(&home, &["whoami", "--server", "http://127.0.0.1:1"]), 1);
    assert!(other.contains("http://127.0.0.1:1") && other.contains(&url), "{other}");

    // A token close to its end is refreshed; an expired one asks for a new login.
    let before = read_session(&home)["token"].clone();
    expire_session_at(&home, now().plus_millis(60_000));
    ok(run(&home, &["whoami", "--output", "json"]));
    let after = read_session(&home);
    let expires = Timestamp::parse_rfc3339(after["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires > now().plus_millis(5 * 60_000), "refreshed token expires at {expires:?}");
    assert_ne!(after["token"], before, "the token was replaced");
    expire_session_at(&home, Timestamp::from_millis(now().as_millis() - 1000));
    let expired = fails(run(&home, &["whoami"]), 1);
    assert!(expired.contains(&format!("session expired; run `airlock login {url}` again")), "{expired}");
}

#[test]
fn a_wrong_password_fails_clearly_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("config");
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    let url = format!("http://{}", server.addr);

    let output = cmd(&home, &["login", &url, "--username", "admin"]).env("AIRLOCK_PASSWORD", "wrong").output().unwrap();
    let stderr = fails(output, 1);
    assert!(stderr.contains(&format!("cannot log in to `{url}` as `admin`")), "{stderr}");
    assert!(stderr.contains("invalid credentials"), "{stderr}");
    assert!(!session_file(&home).exists(), "a failed login stores no session");

    // The password on stdin works, and is never taken from the command line.
    let mut child = cmd(&home, &["login", &url, "--username", "admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{ADMIN_PASSWORD}\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", show(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("logged in to"), "{}", show(&output));
    let refused = run(&home, &["login", &url, "--username", "admin", "--password", ADMIN_PASSWORD]);
    assert_eq!(refused.status.code(), Some(2), "{}", show(&refused));
}

#[test]
fn commands_without_a_session_say_how_to_log_in() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["whoami"][..], &["user", "list"], &["sa", "list"], &["role", "list"]] {
        let stderr = fails(run(dir.path(), args), 1);
        assert!(stderr.contains("not logged in; run `airlock login URL` first"), "{args:?}: {stderr}");
    }
    let stderr = fails(run(dir.path(), &["login", "http://127.0.0.1:1", "--username", "admin"]), 1);
    assert!(stderr.contains("AIRLOCK_PASSWORD") && stderr.contains("--password-stdin"), "{stderr}");
}

/// Runs `airlock policy authz check ARGS` with the default configuration; returns its exit
/// status and stdout.
fn authz(args: &[&str]) -> (ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = cmd(dir.path(), &[&["policy", "authz", "check"][..], args].concat())
        .current_dir(dir.path())
        .output()
        .expect("airlock runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status, text)
}

/// Checks one offline decision: its exit code and a line its output must contain.
fn check(args: &str, code: i32, expect: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    let (status, text) = authz(&args);
    assert_eq!(status.code(), Some(code), "{args:?}: {text}");
    assert!(text.contains(expect), "{args:?}: expected `{expect}` in\n{text}");
}

#[test]
fn policy_authz_check_decides_offline() {
    const APPROVE: &str = "--role release-approver --action promote.approve --resource promotion:prod/app";
    check(&format!("--principal user:alice {APPROVE} --requester alice --mfa-fresh"), 3, "airlock.no-self-approval");
    check(&format!("--principal user:alice {APPROVE} --requester bob --mfa-fresh"), 0, "role.release-approver.1");
    check(
        &format!("--principal sa:bot {APPROVE} --requester bob --mfa-fresh"),
        3,
        "airlock.service-accounts-do-not-approve",
    );
    check(&format!("--principal user:alice {APPROVE} --requester bob"), 3, "airlock.approval-needs-fresh-mfa");
    check(
        &format!("--principal user:alice {APPROVE} --requester bob --pusher alice --mfa-fresh"),
        3,
        "airlock.no-approving-own-push",
    );
    check(
        "--principal user:dev --role developer --action push --resource repository:prod/app",
        3,
        "airlock.gated-stage-read-only",
    );
    check("--principal user:dev --role developer --action push --resource repository:dev/app", 0, "role.developer.0");
    check(
        "--principal user:dev --role deployer --action push --resource repository:dev/app",
        3,
        "no policy permits it",
    );
    check(
        "--principal user:ci --role ci --action promote.request --resource promotion:prod/app --requester ci --frozen",
        3,
        "airlock.frozen-stage",
    );
    check("--principal user:op --role operator --action freeze --resource stage:prod", 0, "role.operator.1");
    check("--principal user:aud --role auditor --action audit.read --resource log", 0, "ALLOW");
    // Roles held together against separation of duties deny whatever is asked, and say why.
    const JOINED: &str = "--principal user:x --role access-admin --role deployer --action audit.read --resource log";
    check(JOINED, 3, "forbidden by airlock.separation-of-duties");
    check(JOINED, 3, "`x` holds `access-admin` and `deployer` together, which separation of duties forbids");

    // Malformed requests exit 2 and list what is valid.
    check("--principal user:a --action approve --resource log", 2, "the actions are `pull`, `push`");
    check("--principal user:a --action pull --resource repo:dev/app", 2, "`repository:<stage>/<path>`, `stage:<name>`");
    check("--principal alice --action pull --resource repository:dev/app", 2, "`user:NAME` or `sa:NAME`");
    check("--principal user:a --action pull --resource repository:qa/app", 2, "stage `qa` is not configured");
    check("--principal user:a --action pull --resource log", 2, "action `pull` acts on a repository");
    check("--principal user:a --action promote.approve --resource promotion:prod/app", 2, "need `--requester ID`");

    // JSON output carries the decision and the determining policies.
    let (status, text) = authz(&[
        "--principal",
        "user:alice",
        "--role",
        "release-approver",
        "--action",
        "promote.approve",
        "--resource",
        "promotion:prod/app",
        "--requester",
        "alice",
        "--mfa-fresh",
        "--output",
        "json",
    ]);
    assert_eq!(status.code(), Some(3), "{text}");
    let decision: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(decision["decision"], "deny");
    assert_eq!(decision["reasons"], serde_json::json!(["airlock.no-self-approval"]));
    assert_eq!(decision["principal"]["kind"], "user");
}

#[test]
fn policy_authz_check_reads_the_configured_roles_stages_and_policies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("custom.cedar"),
        "@id(\"custom.no-pull-from-secret\")\nforbid (principal, action == Airlock::Action::\"pull\", resource is Airlock::Repository)\nwhen { resource.path like \"secret/*\" };\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("airlock.toml"),
        r#"
[[stages]]
name = "dev"
pushable = true

[[stages]]
name = "qa"
pushable = false

[access]
policies = "custom.cedar"

[access.roles.tester]
description = "pulls from qa"
permissions = [{ actions = ["pull"], stages = ["qa"], repositories = ["**"] }]
"#,
    )
    .unwrap();
    let config = dir.path().join("airlock.toml");
    let config = config.to_str().unwrap();
    let home = dir.path().join("config");
    let decide = |resource: &str| {
        cmd(
            &home,
            &[
                "policy",
                "authz",
                "check",
                "--config",
                config,
                "--principal",
                "user:t",
                "--role",
                "tester",
                "--action",
                "pull",
                "--resource",
                resource,
            ],
        )
        .current_dir(dir.path())
        .output()
        .unwrap()
    };
    let allowed = decide("repository:qa/app");
    assert_eq!(allowed.status.code(), Some(0), "{}", show(&allowed));
    let forbidden = decide("repository:qa/secret/app");
    assert_eq!(forbidden.status.code(), Some(3), "{}", show(&forbidden));
    assert!(String::from_utf8_lossy(&forbidden.stdout).contains("custom.no-pull-from-secret"), "{}", show(&forbidden));
    let unknown = decide("repository:prod/app");
    assert_eq!(unknown.status.code(), Some(2), "{}", show(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("the stages are dev (pushable) -> qa"),
        "{}",
        show(&unknown)
    );
}

#[test]
fn access_requests_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("config");
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    let url = format!("http://{}", server.addr);
    ok(cmd(&home, &["login", &url, "--username", "tester", "--output", "json"])
        .env("AIRLOCK_PASSWORD", &server.tester_key)
        .output()
        .unwrap());
    let asked = ok(run(
        &home,
        &["access", "request", "--role", "deployer", "--duration", "30m", "--reason", "rollout", "--output", "json"],
    ));
    assert_eq!(asked["status"], "pending");
    assert_eq!(asked["duration_secs"], 1800);
    let id = asked["id"].as_str().unwrap().to_owned();
    let listed = ok(run(&home, &["access", "list", "--output", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // Nobody approves their own request.
    let refused = fails(run(&home, &["access", "approve", &id]), 3);
    assert!(refused.contains("may not"), "{refused}");
    let revoked = ok(run(&home, &["access", "revoke", &id, "--output", "json"]));
    assert_eq!(revoked["status"], "revoked");
}

#[test]
fn roles_are_defined_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("config");
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    login_admin(&home, &format!("http://{}", server.addr));
    ok(run(
        &home,
        &[
            "role",
            "define",
            "payments-reader",
            "--description",
            "reads payments",
            "--permission",
            "pull:*:payments/**",
            "--output",
            "json",
        ],
    ));
    let roles = ok(run(&home, &["role", "list", "--output", "json"]));
    let names: Vec<&str> = roles.as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    assert!(names.contains(&"payments-reader") && names.contains(&"deployer"), "{names:?}");
    let refused = fails(run(&home, &["role", "define", "broken", "--permission", "fly:*:*"]), 1);
    assert!(refused.contains("fly"), "{refused}");
    let malformed = fails(run(&home, &["role", "define", "broken", "--permission", "pull"]), 1);
    assert!(malformed.contains("ACTIONS:STAGES:REPOSITORIES"), "{malformed}");
}

#[test]
fn policies_read_where_an_artifact_came_from() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("origin.cedar"),
        "@id(\"custom.approve-only-our-source\")\nforbid (principal, action == Airlock::Action::\"promote.approve\", resource)\nunless { context has origin_source && context.origin_source == \"github.com/acme/payments-api\" };\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("airlock.toml"), "[access]\npolicies = \"origin.cedar\"\n").unwrap();
    let home = dir.path().join("config");
    let decide = |origin: &[&str]| {
        let mut args = vec![
            "policy",
            "authz",
            "check",
            "--config",
            "airlock.toml",
            "--principal",
            "user:carol",
            "--role",
            "release-approver",
            "--action",
            "promote.approve",
            "--resource",
            "promotion:prod/payments/api",
            "--requester",
            "alice",
            "--mfa-fresh",
            "--output",
            "json",
        ];
        args.extend_from_slice(origin);
        cmd(&home, &args).current_dir(dir.path()).output().unwrap()
    };
    let ours = decide(&[
        "--origin-source",
        "github.com/acme/payments-api",
        "--origin-builder",
        "https://github.com/actions/runner",
    ]);
    assert_eq!(ours.status.code(), Some(0), "{}", show(&ours));
    let theirs = decide(&["--origin-source", "github.com/acme/payments-api-evil"]);
    assert_eq!(theirs.status.code(), Some(3), "{}", show(&theirs));
    assert!(String::from_utf8_lossy(&theirs.stdout).contains("custom.approve-only-our-source"), "{}", show(&theirs));
    let unknown = decide(&[]);
    assert_eq!(unknown.status.code(), Some(3), "no provenance, no approval: {}", show(&unknown));
}
