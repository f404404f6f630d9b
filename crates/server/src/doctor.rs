//! `airlock doctor`: the full checks of a data directory, each with what to do next. Run with
//! the server stopped; the server itself runs only the time-bounded quick check at start.

use std::time::Instant;

use airlock_store::{Check, CheckVerdict, SqliteStore};

use crate::app::{App, DATABASE_FILE};
use crate::config::Config;

/// One check's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
    /// What to do about a failed check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

const RESTORE: &str = "stop the server, move the data directory aside and restore it from the latest backup (docs/runbook.md, \"damaged store\"); then run `airlock doctor` again and `airlock audit verify` against the restarted server";

/// Runs every check over `config`'s data directory, reporting each as it finishes.
pub async fn doctor(config: Config, mut progress: impl FnMut(&Finding)) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut report = |finding: Finding, findings: &mut Vec<Finding>| {
        progress(&finding);
        findings.push(finding);
    };
    let path = config.data_dir.join(DATABASE_FILE);
    if !path.is_file() {
        report(
            Finding {
                check: "metadata database",
                ok: false,
                detail: format!("no database at `{}`", path.display()),
                next: Some(
                    "pass the server's data directory with `--data DIR` (or `data_dir` in the config)".to_owned(),
                ),
            },
            &mut findings,
        );
        return findings;
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let started = Instant::now();
    let database = match SqliteStore::open(&path).await {
        Ok(store) => {
            let verdict = store.check(Check::Full, None).await;
            store.close().await;
            let took = started.elapsed().as_secs_f64();
            match verdict {
                Ok(CheckVerdict::Healthy) => Finding {
                    check: "metadata database",
                    ok: true,
                    detail: format!("`PRAGMA integrity_check` passed ({} MiB in {took:.1} s)", size / (1024 * 1024)),
                    next: None,
                },
                Ok(CheckVerdict::Damaged(lines)) => Finding {
                    check: "metadata database",
                    ok: false,
                    detail: format!("`{}` is damaged: {}", path.display(), lines.join("; ")),
                    next: Some(RESTORE.to_owned()),
                },
                Ok(CheckVerdict::Unfinished) => Finding {
                    check: "metadata database",
                    ok: false,
                    detail: "the check stopped before it finished".to_owned(),
                    next: Some("run `airlock doctor` again".to_owned()),
                },
                Err(e) => Finding {
                    check: "metadata database",
                    ok: false,
                    detail: format!("cannot check `{}`: {e}", path.display()),
                    next: Some(RESTORE.to_owned()),
                },
            }
        }
        Err(e) => {
            Finding { check: "metadata database", ok: false, detail: e.to_string(), next: Some(RESTORE.to_owned()) }
        }
    };
    let healthy = database.ok;
    report(database, &mut findings);
    if !healthy {
        return findings;
    }
    // The checks a start runs: the log against its last signed checkpoint.
    let log = match App::open(config).await {
        Ok(app) => {
            let refused = app.state.registry.writes_refused().map(str::to_owned);
            app.close().await;
            match refused {
                None => Finding {
                    check: "transparency log",
                    ok: true,
                    detail: "the stored log reproduces its last signed checkpoint".to_owned(),
                    next: None,
                },
                Some(reason) => {
                    Finding { check: "transparency log", ok: false, detail: reason, next: Some(RESTORE.to_owned()) }
                }
            }
        }
        Err(e) => Finding {
            check: "transparency log",
            ok: false,
            detail: format!("the server would not start over this data directory: {e}"),
            next: Some("fix what the message names, then run `airlock doctor` again".to_owned()),
        },
    };
    report(log, &mut findings);
    findings
}
