//! Identity scenarios as case files (`tests/cases/identity/*.toml`), run against
//! `core::identity` itself over a real SQLite store and a manual clock, with no HTTP and no
//! server: every refusal here is identity's own (or Cedar's, which identity decides with).
//!
//! A case lists steps; each names who acts (`as`, whose roles in force and fresh second factor
//! make the request's principal), what they do, and what they expect: `done`, `pending` (a
//! second access admin must approve), `first` (the first of two approvals), or
//! `refused: <words of the error>`. `save` keeps a pending change's id or an enrollment token
//! under a name later steps use.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use airlock_access::authz::AuthzContext;
use airlock_core::audit::Actor;
use airlock_core::identity::{Acting, Identity, IdentityError, Outcome};
use airlock_core::ports::{Clock as _, LogObserver, MetadataStore, PrincipalChange};
use airlock_model::PrincipalId;
use airlock_test_support::ManualClock;
use serde::Deserialize;

/// 2026-11-26T05:00:00Z.
const START: i64 = 1_795_669_200_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    /// Whether `admin` has enrolled a second factor before the first step (default true).
    #[serde(default = "yes")]
    admin_enrolled: bool,
    steps: Vec<Step>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(rename = "as", default = "admin")]
    actor: String,
    action: String,
    name: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    role: Option<String>,
    email: Option<String>,
    /// A saved id or token.
    saved: Option<String>,
    secs: Option<u64>,
    save: Option<String>,
    expect: Option<String>,
}

fn admin() -> String {
    "admin".to_owned()
}

#[derive(Debug)]
struct Quiet;

impl LogObserver for Quiet {
    fn appended(&self) {}
}

struct Run {
    identity: Identity,
    store: Arc<dyn MetadataStore>,
    clock: ManualClock,
    saved: BTreeMap<String, String>,
}

/// What a step came to: a pending change's id, a secret, or nothing worth keeping.
enum Came {
    Done(Option<String>),
    Pending(String),
    First(String),
}

impl Run {
    async fn open(dir: &Path, admin_enrolled: bool) -> Run {
        let store = airlock_test_support::sqlite_store(dir).await;
        let clock = ManualClock::at(START);
        let config = airlock_test_support::engine::identity_config();
        let identity =
            Identity::new(store.clone(), Arc::new(Quiet), Arc::new(clock.clone()), None, config).expect("identity");
        let admin = PrincipalId::parse("admin").unwrap();
        assert!(identity.bootstrap(&admin, &["access-admin".to_owned()], "$argon2id$test".to_owned()).await.unwrap());
        if admin_enrolled {
            let change = PrincipalChange::SetTotp { secret: Some("00".repeat(20)) };
            identity.apply(&Actor::system(), &admin, change).await.unwrap().unwrap();
        }
        Run { identity, store, clock, saved: BTreeMap::new() }
    }

    /// `name` acting now, with its roles in force and a second factor proved just now.
    async fn acting(&self, name: &str) -> Acting {
        let id = PrincipalId::parse(name).unwrap();
        let record = self.store.principal(&id).await.unwrap().unwrap_or_else(|| panic!("no principal `{name}`"));
        let (record, _) = self.identity.in_force(record).await.unwrap();
        let now = self.clock.now().as_millis() / 1000;
        Acting {
            actor: Actor::authenticated(&record.id, record.kind, "case"),
            id: record.id,
            kind: record.kind,
            roles: record.roles,
            context: AuthzContext {
                now,
                source_ip: "127.0.0.1".to_owned(),
                mfa_fresh: true,
                stage_frozen: false,
                incident_mode: false,
                origin: None,
            },
        }
    }

    fn saved(&self, step: &Step) -> String {
        let key = step.saved.as_deref().expect("the step names `saved`");
        self.saved.get(key).unwrap_or_else(|| panic!("nothing saved as `{key}`")).clone()
    }

    async fn step(&mut self, step: &Step) -> Result<Came, IdentityError> {
        let acting = self.acting(&step.actor).await;
        let identity = self.identity.clone();
        let id = || PrincipalId::parse(step.name.as_deref().expect("the step names `name`")).unwrap();
        let role = || step.role.clone().expect("the step names `role`");
        let outcome = |o: Outcome| match o {
            Outcome::Done(_) => Came::Done(None),
            Outcome::Pending(g) => Came::Pending(g.id),
        };
        Ok(match step.action.as_str() {
            "create_user" => {
                let created = identity.create_user(&acting, &id(), &step.roles, step.email.as_deref()).await?;
                match created.pending.first() {
                    Some(grant) => Came::Pending(grant.id.clone()),
                    None => Came::Done(Some(created.secret)),
                }
            }
            "create_service_account" => {
                let created = identity.create_service_account(&acting, &id(), &step.roles, None).await?;
                match created.pending.first() {
                    Some(grant) => Came::Pending(grant.id.clone()),
                    None => Came::Done(Some(created.secret)),
                }
            }
            "bind" => {
                outcome(identity.manage(&acting, &id(), &role(), PrincipalChange::GrantRole { role: role() }).await?)
            }
            "unbind" => {
                outcome(identity.manage(&acting, &id(), &role(), PrincipalChange::RevokeRole { role: role() }).await?)
            }
            "disable" => outcome(identity.manage(&acting, &id(), "*", PrincipalChange::Disable).await?),
            "reset" => match identity.reset(&acting, &id(), "lost").await? {
                (_, Some((token, _))) => Came::Done(Some(token)),
                (o, None) => outcome(o),
            },
            "rotate_key" => match identity.rotate_key(&acting, &id(), None).await? {
                (_, Some((key, _))) => Came::Done(Some(key)),
                (o, None) => outcome(o),
            },
            "request" => {
                let grant = identity.request_grant(&acting, &role(), step.secs.unwrap_or(1800), "case").await?;
                Came::Pending(grant.id)
            }
            "approve" => {
                let approved = identity.approve_grant(&acting, &self.saved(step)).await?;
                match approved.grant.status {
                    airlock_core::ports::GrantStatus::Pending => Came::First(approved.grant.id),
                    _ => Came::Done(approved.enrollment.or(approved.api_key).map(|(s, _)| s)),
                }
            }
            "enroll" => {
                identity.enroll(&self.saved(step), "$argon2id$case".to_owned(), "11".repeat(20)).await?;
                Came::Done(None)
            }
            "advance" => {
                self.clock.advance(i64::try_from(step.secs.expect("`secs`")).unwrap() * 1000);
                Came::Done(None)
            }
            "roles" => {
                let record = self.store.principal(&id()).await.unwrap().expect("principal");
                let (record, _) = self.identity.in_force(record).await.unwrap();
                assert_eq!(record.roles, step.roles, "roles in force of `{}`", record.id);
                Came::Done(None)
            }
            other => panic!("unknown action `{other}`"),
        })
    }
}

async fn run_case(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let case: Case = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::open(dir.path(), case.admin_enrolled).await;
    for (i, step) in case.steps.iter().enumerate() {
        let at = format!("{} step {} ({}: {})", path.display(), i + 1, step.action, case.description);
        let came = run.step(step).await;
        let expect = step.expect.as_deref().unwrap_or("done");
        match (came, expect) {
            (Ok(Came::Done(secret)), "done") => {
                if let (Some(key), Some(secret)) = (&step.save, secret) {
                    run.saved.insert(key.clone(), secret);
                }
            }
            (Ok(Came::Pending(grant)), "pending") | (Ok(Came::First(grant)), "first") => {
                if let Some(key) = &step.save {
                    run.saved.insert(key.clone(), grant);
                }
            }
            (Err(e), expect) if expect.starts_with("refused: ") => {
                let words = expect.trim_start_matches("refused: ");
                assert!(e.to_string().contains(words), "{at}: refused with `{e}`, expected `{words}`");
            }
            (Err(e), _) => panic!("{at}: refused with `{e}`, expected {expect}"),
            (Ok(Came::Done(_)), _) => panic!("{at}: done, expected {expect}"),
            (Ok(Came::Pending(_)), _) => panic!("{at}: pending, expected {expect}"),
            (Ok(Came::First(_)), _) => panic!("{at}: first of two approvals, expected {expect}"),
        }
    }
}

#[tokio::test]
async fn identity_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/identity");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    assert!(paths.len() >= 6, "the identity cases are missing from {}", dir.display());
    for path in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        run_case(path).await;
    }
}
