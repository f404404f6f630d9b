//! Project automation: `cargo xtask ci` runs every check CI runs; `cargo xtask tidy` checks the
//! layering rules of DESIGN.md and the file-header rule of STYLE.md.
//!
//! `tidy`'s rules: crate dependency edges; every `.rs` file starts with a `//!` line; no
//! statement updates or deletes the log's tables; no `json!` body in the server's `/api/v1`
//! handlers (`crates/server/src/api*`) outside `#[cfg(test)]` (a DTO in `crates/api` and a
//! conversion in `server::convert` instead); and no file under a crate's `src/` past
//! [`SOURCE_LINES_MAX`] lines unless one of its first [`LONG_FILE_REASON_LINES`] lines gives the
//! reason, as `//! tidy: long because <reason>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn main() -> std::process::ExitCode {
    match run_task() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_task() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = workspace_root();
    match task.as_str() {
        "ci" => ci(&root),
        "tidy" => tidy(&root),
        _ => bail!(
            "usage: cargo xtask <ci|tidy>\n  ci    fmt, clippy -D warnings, tests, docs -D warnings, tidy\n  tidy  crate dependency edges, `//!` file headers, append-only log tables, no `json!` in /api/v1 handlers, file lengths"
        ),
    }
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_owned).unwrap_or(manifest)
}

fn run(root: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root)
        .status()
        .with_context(|| format!("cannot run `{program}`"))?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

fn ci(root: &Path) -> anyhow::Result<()> {
    let mut phases = Vec::new();
    let mut timed = |name: &'static str, step: &dyn Fn() -> anyhow::Result<()>| -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let result = step();
        phases.push((name, started.elapsed()));
        result
    };
    timed("fmt", &|| run(root, "cargo", &["fmt", "--all", "--", "--check"], &[]))?;
    timed("tidy", &|| tidy(root))?;
    timed("clippy", &|| {
        run(root, "cargo", &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"], &[])
    })?;
    // The crash campaign runs on its own in `scripts/test` (`scripts/crash-campaign`).
    timed("test", &|| run(root, "cargo", &["test", "--workspace", "--locked", "--", "--skip", "crash_campaign"], &[]))?;
    timed("doc", &|| {
        run(root, "cargo", &["doc", "--workspace", "--no-deps", "--locked"], &[("RUSTDOCFLAGS", "-D warnings")])
    })?;
    // `scripts/test` prints these with its own phases at the end.
    for (name, took) in phases {
        println!("phase {name}: {} s", took.as_secs());
    }
    Ok(())
}

/// Which internal crates each crate may depend on (DESIGN.md, "Crates and the direction of
/// dependencies"). `airlock-test-support` is allowed as a dev-dependency anywhere.
fn allowed_edges() -> BTreeMap<&'static str, &'static [&'static str]> {
    let leaf: &'static [&'static str] = &["airlock-model"];
    BTreeMap::from([
        ("airlock-model", &[][..]),
        ("airlock-api", leaf),
        ("airlock-dsse", leaf),
        ("airlock-tlog", leaf),
        ("airlock-evidence", leaf),
        ("airlock-trust", &["airlock-model", "airlock-dsse"][..]),
        // `dsse`: a bundle's signature is a DSSE envelope over its manifest.
        ("airlock-policy", &["airlock-model", "airlock-evidence", "airlock-dsse"][..]),
        ("airlock-access", &["airlock-model"][..]),
        (
            "airlock-core",
            &[
                "airlock-model",
                "airlock-dsse",
                "airlock-tlog",
                "airlock-evidence",
                "airlock-trust",
                "airlock-policy",
                "airlock-access",
            ][..],
        ),
        // Backends implement core's ports and may use the spec leaves they store (the log's tree).
        ("airlock-store", &["airlock-core", "airlock-model", "airlock-tlog"][..]),
        ("airlock-blob", &["airlock-core", "airlock-model"][..]),
        (
            "airlock-server",
            &[
                "airlock-model",
                "airlock-dsse",
                "airlock-tlog",
                "airlock-evidence",
                "airlock-trust",
                "airlock-policy",
                "airlock-access",
                "airlock-core",
                "airlock-store",
                "airlock-blob",
                "airlock-api",
            ][..],
        ),
        // Also `trust`, `policy`, `evidence` and `access`: `airlock attestation verify`,
        // `policy test|eval|authz check` and `evidence show` work offline, without a server;
        // and `core`, whose release-record verifier `airlock verify` runs on the client.
        (
            "airlock-cli",
            &[
                "airlock-server",
                "airlock-core",
                "airlock-api",
                "airlock-model",
                "airlock-dsse",
                "airlock-tlog",
                "airlock-trust",
                "airlock-policy",
                "airlock-evidence",
                "airlock-access",
            ][..],
        ),
        (
            "airlock-test-support",
            &[
                "airlock-model",
                "airlock-core",
                "airlock-server",
                "airlock-api",
                "airlock-store",
                "airlock-blob",
                "airlock-dsse",
                "airlock-tlog",
                "airlock-access",
                "airlock-policy",
            ][..],
        ),
    ])
}

fn tidy(root: &Path) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    check_edges(root, &mut problems)?;
    check_headers(root, &mut problems)?;
    check_log_append_only(root, &mut problems)?;
    check_file_lengths(root, &mut problems)?;
    check_api_json(root, &mut problems)?;
    check_cli_json_lookups(root, &mut problems)?;
    if problems.is_empty() {
        eprintln!("tidy: ok");
        return Ok(());
    }
    for p in &problems {
        eprintln!("tidy: {p}");
    }
    bail!("tidy found {} problem(s)", problems.len())
}

fn check_edges(root: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let edges = allowed_edges();
    let crates = root.join("crates");
    for entry in std::fs::read_dir(&crates).context("cannot list crates/")? {
        let manifest_path = entry?.path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("cannot read `{}`", manifest_path.display()))?;
        let manifest: toml::Table =
            text.parse().with_context(|| format!("`{}` is not TOML", manifest_path.display()))?;
        let name =
            manifest.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str()).unwrap_or_default().to_owned();
        let Some(allowed) = edges.get(name.as_str()) else {
            problems
                .push(format!("crate `{name}` has no entry in xtask's allowed dependency edges; add it per DESIGN.md"));
            continue;
        };
        for (section, dev) in [("dependencies", false), ("build-dependencies", false), ("dev-dependencies", true)] {
            let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) else { continue };
            for dep in deps.keys().filter(|d| d.starts_with("airlock-")) {
                let ok = allowed.contains(&dep.as_str()) || (dev && dep == "airlock-test-support");
                if !ok {
                    problems.push(format!(
                        "`{name}` depends on `{dep}` ({section}), which DESIGN.md's layering does not allow"
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_headers(root: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "fuzz/fuzz_targets"] {
        collect_files(&root.join(dir), &mut files, &|name| name.ends_with(".rs"))?;
    }
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read `{}`", file.display()))?;
        if !text.starts_with("//!") {
            let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
            problems.push(format!("`{shown}` does not start with a `//!` line saying what it is for"));
        }
    }
    Ok(())
}

/// Most lines a source file under a crate's `src/` may have: past it, a file holds more than one
/// concern and is split, unless it says why not.
const SOURCE_LINES_MAX: usize = 800;

/// The marker of a long file's reason, followed by the reason on the same line.
const LONG_FILE_MARKER: &str = "//! tidy: long because ";

/// How many lines from the top the marker may stand on.
const LONG_FILE_REASON_LINES: usize = 10;

/// No file under `crates/*/src` is longer than [`SOURCE_LINES_MAX`] lines unless its first lines
/// carry a one-line reason ([`LONG_FILE_MARKER`]).
fn check_file_lengths(root: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let mut files = Vec::new();
    collect_files(&root.join("crates"), &mut files, &|name| name.ends_with(".rs"))?;
    for file in files.iter().filter(|f| f.components().any(|c| c.as_os_str() == "src")) {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read `{}`", file.display()))?;
        let shown = file.strip_prefix(root).unwrap_or(file).display().to_string();
        if let Some(problem) = file_length_problem(&shown, &text) {
            problems.push(problem);
        }
    }
    Ok(())
}

fn file_length_problem(shown: &str, text: &str) -> Option<String> {
    let lines = text.lines().count();
    if lines <= SOURCE_LINES_MAX {
        return None;
    }
    let reasoned = text
        .lines()
        .take(LONG_FILE_REASON_LINES)
        .filter_map(|l| l.strip_prefix(LONG_FILE_MARKER))
        .any(|reason| !reason.trim().is_empty());
    (!reasoned).then(|| {
        format!(
            "`{shown}` has {lines} lines, over {SOURCE_LINES_MAX}: split it by concern, or give the reason in its first {LONG_FILE_REASON_LINES} lines as `{LONG_FILE_MARKER}<reason>`"
        )
    })
}

/// `/api/v1` bodies are DTOs (`crates/api`) built in `server::convert`, never `json!` in a
/// handler: no `json!` in `crates/server/src/api*` outside `#[cfg(test)]` items.
fn check_api_json(root: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let src = root.join("crates/server/src");
    let Ok(entries) = std::fs::read_dir(&src) else { return Ok(()) };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !name.starts_with("api") {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, &mut files, &|n| n.ends_with(".rs"))?;
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read `{}`", file.display()))?;
        let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        for line in json_outside_tests(&text) {
            problems.push(format!(
                "`{shown}:{line}` builds a body with `json!`: add a DTO to `crates/api` and convert to it in `server::convert`"
            ));
        }
    }
    Ok(())
}

/// The 1-based lines holding `json!` outside the items `#[cfg(test)]` marks (the braces of the
/// item that follows the attribute).
fn json_outside_tests(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    // Depth at which a test item opened, while inside one.
    let mut test_depth: Option<usize> = None;
    let mut pending_test = false;
    let mut depth = 0usize;
    for (index, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        if line.trim() == "#[cfg(test)]" {
            pending_test = true;
            continue;
        }
        if test_depth.is_none() && !pending_test && code.contains("json!") {
            found.push(index + 1);
        }
        for c in code.chars() {
            match c {
                '{' => {
                    if pending_test && test_depth.is_none() {
                        test_depth = Some(depth);
                        pending_test = false;
                    }
                    depth += 1;
                }
                '}' => {
                    depth = depth.saturating_sub(1);
                    if test_depth == Some(depth) {
                        test_depth = None;
                    }
                }
                ';' if pending_test && test_depth.is_none() => pending_test = false,
                _ => {}
            }
        }
    }
    found
}

/// The transparency log's tables are append-only (DESIGN.md, STYLE.md 18): no statement in the
/// code or the migrations of any backend may update, delete or truncate their rows, or switch
/// off the triggers that refuse it. Those triggers mention the statements only as
/// `BEFORE UPDATE ON` / `BEFORE UPDATE OR DELETE OR TRUNCATE ON`, which this check allows.
fn check_log_append_only(root: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let mut files = Vec::new();
    collect_files(&root.join("crates"), &mut files, &|name| name.ends_with(".rs") || name.ends_with(".sql"))?;
    for file in files {
        let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        // The tests that play an attacker tamper with the log on purpose.
        if shown.contains("/tests/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read `{shown}`"))?;
        for statement in log_rewrites(&text) {
            problems.push(format!("`{shown}` contains `{statement}`: the transparency log is append-only"));
        }
    }
    Ok(())
}

/// The statements in `text` that would rewrite a log table, lowercased with single spaces.
fn log_rewrites(text: &str) -> Vec<String> {
    let flat = text.to_ascii_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let mut found = Vec::new();
    for table in ["log_leaves", "log_nodes", "log_checkpoints"] {
        for statement in [
            format!("update {table}"),
            format!("delete from {table}"),
            format!("replace into {table}"),
            format!("truncate {table}"),
            format!("truncate table {table}"),
            format!("alter table {table} disable trigger"),
        ] {
            if flat.contains(&statement) {
                found.push(statement);
            }
        }
    }
    found
}

/// The comment that says why a `["field"]` lookup in a CLI command is not a DTO read: on the
/// line before a function (its doc comment and attributes may follow), it covers the function;
/// on the line before a statement, or at the end of a line, it covers that line.
const JSON_LOOKUP_MARKER: &str = "// tidy(json-lookup):";

/// The CLI reads every `/api/v1` answer into its DTO in `crates/api` (STYLE.md 4), so a
/// `["field"]` lookup in `crates/cli/src/commands/` is refused outside the tests, unless a
/// [`JSON_LOOKUP_MARKER`] with a reason covers it (JSON the CLI owns, such as a trust root being
/// built).
fn check_cli_json_lookups(root: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let mut files = Vec::new();
    collect_files(&root.join("crates/cli/src/commands"), &mut files, &|name| name.ends_with(".rs"))?;
    files.sort();
    for file in files {
        let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read `{shown}`"))?;
        for number in json_lookups(&text) {
            problems.push(format!(
                "`{shown}:{number}` reads JSON with `[\"field\"]`: deserialize the answer into its `airlock_api::v1` DTO, or say why not with `{JSON_LOOKUP_MARKER} <reason>` on the line before"
            ));
        }
    }
    Ok(())
}

/// The numbers (from 1) of the lines of `text` with a `["` lookup no marker covers, up to the
/// tests (`#[cfg(test)]`).
fn json_lookups(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    // The line that closes the function a marker covers.
    let mut covered_until: Option<String> = None;
    let mut marked = false;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if let Some(close) = &covered_until {
            if line == close {
                covered_until = None;
            }
            continue;
        }
        if let Some(reason) = trimmed.strip_prefix(JSON_LOOKUP_MARKER) {
            marked = !reason.trim().is_empty();
            continue;
        }
        if marked {
            if trimmed.starts_with("///") || trimmed.starts_with("#[") {
                continue;
            }
            marked = false;
            let head = trimmed.split('(').next().unwrap_or_default();
            if head.split_whitespace().any(|word| word == "fn") && !trimmed.ends_with('}') {
                let indent = line.get(..line.len().saturating_sub(trimmed.len())).unwrap_or_default();
                covered_until = Some(format!("{indent}}}"));
            }
            continue;
        }
        let code = trimmed.split(JSON_LOOKUP_MARKER).next().unwrap_or_default();
        let explained = code.len() < trimmed.len()
            && trimmed.get(code.len() + JSON_LOOKUP_MARKER.len()..).is_some_and(|r| !r.trim().is_empty());
        if !trimmed.starts_with("//") && !explained && has_lookup(code) {
            found.push(index + 1);
        }
    }
    found
}

/// Whether `code` indexes a value with a string: `["` right after a name, `]` or `)`, which an
/// array literal (`= ["a"]`, `&["a"]`, `(["a"])`) never is.
fn has_lookup(code: &str) -> bool {
    code.match_indices("[\"").any(|(at, _)| {
        code.get(..at)
            .and_then(|before| before.chars().next_back())
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ']' || c == ')')
    })
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>, keep: &dyn Fn(&str) -> bool) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if name != "target" {
                collect_files(&path, out, keep)?;
            }
        } else if keep(name) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_rewrites_are_found_in_either_backend_sql() {
        let triggers = "CREATE TRIGGER t BEFORE UPDATE OR DELETE OR TRUNCATE ON log_leaves\n\
                        FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();\n\
                        CREATE TRIGGER u BEFORE UPDATE ON log_nodes BEGIN SELECT 1; END;";
        assert!(log_rewrites(triggers).is_empty());
        let cases = [
            ("UPDATE  log_nodes SET hash = $1", "update log_nodes"),
            ("DELETE FROM\n log_checkpoints", "delete from log_checkpoints"),
            ("TRUNCATE log_leaves", "truncate log_leaves"),
            ("truncate table log_nodes", "truncate table log_nodes"),
            ("ALTER TABLE log_leaves DISABLE TRIGGER ALL", "alter table log_leaves disable trigger"),
        ];
        for (sql, found) in cases {
            assert_eq!(log_rewrites(sql), [found], "{sql}");
        }
    }

    #[test]
    fn json_is_refused_outside_test_items_only() {
        let text = "//! x\nfn a() { json!({}) }\n#[cfg(test)]\nmod tests {\n    fn b() { json!({}) }\n}\nfn c() {\n    let v = json!(1);\n}\n// json! in a comment\n";
        assert_eq!(json_outside_tests(text), vec![2, 8]);
    }

    #[test]
    fn a_long_file_needs_its_reason_on_top() {
        let long = "fn f() {}\n".repeat(SOURCE_LINES_MAX + 1);
        assert!(file_length_problem("a.rs", &long).is_some());
        let reasoned = format!("//! What it is.\n{LONG_FILE_MARKER}one table of every code\n{long}");
        assert_eq!(file_length_problem("a.rs", &reasoned), None);
        let empty = format!("{LONG_FILE_MARKER}\n{long}");
        assert!(file_length_problem("a.rs", &empty).is_some());
        let buried = format!("{}{LONG_FILE_MARKER}a reason\n{long}", "//! x\n".repeat(LONG_FILE_REASON_LINES));
        assert!(file_length_problem("a.rs", &buried).is_some());
        assert_eq!(file_length_problem("a.rs", "fn f() {}\n"), None);
    }

    fn check(text: &str, expect: &[usize]) {
        assert_eq!(json_lookups(text), expect, "{text}");
    }

    #[test]
    fn json_lookups_are_found_unless_a_reason_covers_them() {
        check("let m = body[\"error\"][\"message\"];", &[1]);
        check("let s = v.get(0)[\"a\"];\nlet t = x[0][\"b\"];", &[1, 2]);
        check("const A: [&str; 2] = [\"a\", \"b\"];\nf(&[\"c\"]);\nlet j = json!([\"d\"]);", &[]);
        check("// a comment about v[\"a\"]\n/// docs about v[\"a\"]", &[]);
        check("let a = v[\"a\"]; // tidy(json-lookup): a file the command writes", &[]);
        check("let a = v[\"a\"]; // tidy(json-lookup):", &[1]);
        check("// tidy(json-lookup): a file the command writes\nlet a = v[\"a\"];\nlet b = v[\"b\"];", &[3]);
        check("// tidy(json-lookup):\nlet a = v[\"a\"];", &[2]);
        check(
            "// tidy(json-lookup): a root being built\n/// Docs.\nfn edit(v: &mut Value) {\n    v[\"a\"] = 1;\n}\nfn next() { v[\"b\"] }",
            &[6],
        );
        check("fn f() {}\n#[cfg(test)]\nmod tests { v[\"a\"] }", &[]);
    }
}
