//! The quickstart continues by hand: after `airlock demo`, `airlock serve` on the same data
//! directory serves the demo's policy and keys, and every command the demo prints to try by
//! hand succeeds there, as printed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::{airlock, cmd, run, show};

/// A server process, stopped when the test ends, passed or not.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `airlock serve` over `data`, started in `cwd` with no configuration flag, as a newcomer runs
/// it; returns the process and its URL.
fn serve(data: &Path, cwd: &Path) -> (Serving, String) {
    let mut child = Command::new(airlock())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .env_remove("AIRLOCK_CONFIG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.strip_prefix("airlock listening on ").unwrap_or_else(|| panic!("{first}")).trim().to_owned();
    let mut report = Vec::new();
    for line in lines.by_ref().take(2) {
        report.push(line.unwrap());
    }
    assert!(report[1].contains("airlock.toml"), "serve names the settings it read: {report:?}");
    std::thread::spawn(move || for _ in lines {});
    (Serving(child), url)
}

/// The code a base32 secret's authenticator shows next (accepted within the allowed drift):
/// the demo itself logged each person in with the current one moments ago, and a code logs in
/// once. A person typing these commands reads a later code anyway.
fn code(secret: &str) -> String {
    let secret = airlock_test_support::promotion::base32_decode(secret);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    airlock_access::totp::code_at(&secret, now + 30)
}

#[test]
fn the_commands_the_demo_prints_work_against_serve_on_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let home = dir.path().join("home");
    let out =
        run(Command::new(airlock()).args(["demo", "--output", "json", "--data"]).arg(&data).env("RUST_LOG", "warn"));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = report["summary"]["text"].as_str().unwrap();
    let people: BTreeMap<String, Value> =
        serde_json::from_slice(&std::fs::read(data.join("demo-keys/people.json")).unwrap()).unwrap();
    let (_server, url) = serve(&data, dir.path());

    let commands: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("  ")).collect();
    assert!(commands.len() >= 9, "{text}");
    let mut id = String::new();
    let mut statuses = Vec::new();
    for printed in commands {
        // What a person types: placeholders filled in, the comment left out, JSON asked for.
        let mut line = printed.split(" # ").next().unwrap().trim().replace("http://127.0.0.1:5000", &url);
        for (name, person) in &people {
            if let Some(password) = person["password"].as_str() {
                line = line.replace(&format!("<{name}'s password>"), password);
            }
            line = line.replace(&format!("<{name}'s code>"), &code(person["totp_secret"].as_str().unwrap()));
        }
        line = line.replace("<id>", &id);
        assert!(!line.contains('<'), "a placeholder the test cannot fill: {line}");
        let mut words = line.split_whitespace().peekable();
        let mut env = Vec::new();
        while let Some((key, value)) = words.peek().and_then(|w| w.split_once('=')) {
            env.push((key.to_owned(), value.to_owned()));
            words.next();
        }
        assert_eq!(words.next(), Some("airlock"), "{line}");
        let mut args: Vec<&str> = words.collect();
        args.extend(["--output", "json"]);
        // The printed commands assume `serve`'s default address; this one listens elsewhere.
        let output = cmd(&home, &args).env("AIRLOCK_SERVER", &url).envs(env).output().unwrap();
        assert!(output.status.success(), "`{printed}` failed: {}", show(&output));
        let json: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        if args.first() == Some(&"promote") {
            id = json["id"].as_str().unwrap_or_else(|| panic!("{}", show(&output))).to_owned();
        }
        if let Some(status) = json["status"].as_str() {
            statuses.push(format!("{} {status}", args[0]));
        }
    }
    // The by-hand promotion waited for two approvals and was promoted by the second.
    assert_eq!(statuses, ["promote pending", "approve pending", "approve promoted"], "{statuses:?}");
}
