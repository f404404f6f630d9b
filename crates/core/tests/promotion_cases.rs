//! Gate scenarios as case files (`tests/cases/promotion/*.toml`), run against the promotion
//! engine itself: real ports (SQLite and the filesystem on a temporary directory) behind a
//! manual clock, with no HTTP and no Cedar in the way, so every refusal here is the engine's own.
//!
//! A case names its people, optionally its stages, and a list of steps; each step says what it
//! expects (a status, the findings of a denial, an error's words, the approvals counted).

use std::collections::BTreeMap;
use std::path::Path;

use airlock_core::audit::Actor;
use airlock_core::ports::Clock as _;
use airlock_core::promotion::control::RollbackTo;
use airlock_core::promotion::{Caller, PromoteRequest, PromotionView};
use airlock_dsse::{Algorithm, PrivateKey};
use airlock_model::{Digest, PrincipalId, PrincipalKind, Reference, RepoName, StageName, Tag, Timestamp};
use airlock_test_support::oci::Image;
use airlock_test_support::promotion as support;
use airlock_test_support::{ManualClock, TestApp};
use airlock_trust::{Pattern, Revocation, Root, SignerRule, sign_root};
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

/// 2026-11-26T05:00:00Z, a Thursday.
const START: i64 = 1_795_669_200_000;
const DAY: u64 = 86_400_000;
const REPO: &str = "dev/payments/api";

/// The stages when a case names none: staging needs provenance signed by `ci`, prod two
/// release approvers with an hour to live.
const STAGES: &str = r#"
[[stages]]
name = "dev"
pushable = true
[[stages]]
name = "staging"
[[stages.attestations]]
name = "provenance"
predicate_types = ["https://slsa.dev/provenance/*"]
signers = ["ci"]
[[stages]]
name = "prod"
[stages.approvals]
count = 2
role = "release-approver"
ttl_secs = 3600
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    stages: Option<String>,
    #[serde(default)]
    users: Vec<User>,
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct User {
    name: String,
    roles: Vec<String>,
    email: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Step {
    action: String,
    /// Who acts; `tester` (the service account that pushes) by default.
    #[serde(rename = "as")]
    actor: Option<String>,
    image: Option<String>,
    tag: Option<String>,
    from: Option<String>,
    to: Option<String>,
    trigger: Option<String>,
    critical: Vec<String>,
    promotion: Option<String>,
    save: Option<String>,
    break_glass: bool,
    /// Whether the approver's second factor is fresh (default true).
    mfa: Option<bool>,
    secs: Option<u64>,
    user: Option<String>,
    role: Option<String>,
    stage: Option<String>,
    reason: Option<String>,
    // What is expected.
    expect: Option<String>,
    findings: Option<Vec<String>>,
    error: Option<String>,
    counted: Option<Vec<String>>,
}

struct Run {
    app: TestApp,
    clock: ManualClock,
    ci: PrivateKey,
    root_key: PrivateKey,
    root_version: u64,
    images: BTreeMap<String, Image>,
    saved: BTreeMap<String, String>,
    _policy: tempfile::TempDir,
}

impl Run {
    async fn new(case: &Case) -> Run {
        let policy = tempfile::tempdir().unwrap();
        std::fs::write(policy.path().join("policy.rego"), support::DENY_CRITICAL_POLICY).unwrap();
        let config =
            format!("[policy]\nbundle = \"{}\"\n{}", policy.path().display(), case.stages.as_deref().unwrap_or(STAGES));
        let clock = ManualClock::at(START);
        let app = TestApp::with_clock(&config, clock.clone()).await;
        let root_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let ci = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let mut run = Run {
            app,
            clock,
            ci,
            root_key,
            root_version: 0,
            images: BTreeMap::new(),
            saved: BTreeMap::new(),
            _policy: policy,
        };
        run.apply_root(&[]).await;
        for user in &case.users {
            let id = PrincipalId::parse(&user.name).unwrap();
            run.app
                .app
                .state
                .auth
                .create_user(
                    &Actor::system(),
                    &id,
                    &user.roles,
                    format!("{}-password", user.name),
                    user.email.as_deref(),
                )
                .await
                .unwrap();
        }
        run
    }

    /// Applies the next trust root version: `ci` signs everything, everywhere; `revoked` keys
    /// are revoked, and a fresh `ci` key replaces a revoked one.
    async fn apply_root(&mut self, revoked: &[&PrivateKey]) {
        self.root_version += 1;
        let start = Timestamp::from_millis(START);
        let mut keys = BTreeMap::new();
        for k in [&self.root_key, &self.ci].into_iter().chain(revoked.iter().copied()) {
            keys.insert(k.public_key().keyid().clone(), k.public_key().clone());
        }
        let root = Root {
            version: self.root_version,
            expires: start.plus_millis(365 * DAY),
            keys,
            root_keyids: vec![self.root_key.public_key().keyid().clone()],
            root_threshold: 1,
            signers: vec![SignerRule {
                name: "ci".to_owned(),
                keyids: vec![self.ci.public_key().keyid().clone()],
                predicate_types: vec![Pattern::parse("https://**").unwrap()],
                repositories: vec![Pattern::parse("**").unwrap()],
                not_before: start,
                not_after: start.plus_millis(300 * DAY),
            }],
            thresholds: Vec::new(),
            revoked: revoked
                .iter()
                .map(|k| Revocation {
                    keyid: k.public_key().keyid().clone(),
                    revoked_at: self.clock.now(),
                    reason: "compromised".to_owned(),
                })
                .collect(),
            policy: None,
        };
        let document = sign_root(&root, &[&self.root_key]).unwrap();
        let applied = self.app.put_root(document).await;
        assert_eq!(applied.status, StatusCode::OK, "{:?}", applied.body);
    }

    fn caller(&self, name: &str, mfa: bool) -> Caller {
        let kind =
            if name == airlock_test_support::TESTER { PrincipalKind::ServiceAccount } else { PrincipalKind::User };
        let principal = PrincipalId::parse(name).unwrap();
        Caller { actor: Actor::authenticated(&principal, "case"), principal, kind, mfa_fresh: mfa }
    }

    fn image(&self, name: &str) -> &Image {
        self.images.get(name).unwrap_or_else(|| panic!("image `{name}` was never pushed"))
    }

    async fn attest(&self, subject: &Image, predicate_type: &str, predicate: Value) {
        support::attest(&self.app, REPO, subject, predicate_type, &predicate, &self.ci).await;
    }

    fn promoter(&self) -> &airlock_core::promotion::Promoter {
        &self.app.app.state.promoter
    }

    async fn step(&mut self, step: &Step) -> Result<Option<PromotionView>, String> {
        let who = step.actor.as_deref().unwrap_or(airlock_test_support::TESTER);
        let caller = self.caller(who, step.mfa.unwrap_or(true));
        let saved = |run: &Run| -> String {
            let name = step.promotion.as_deref().expect("`promotion` names a saved promotion");
            run.saved.get(name).cloned().unwrap_or_else(|| panic!("no saved promotion `{name}`"))
        };
        let err = |e: airlock_core::promotion::PromotionError| e.to_string();
        match step.action.as_str() {
            "push" => {
                let name = step.image.clone().expect("`image`");
                let image = Image::new(&[("app", name.as_bytes())]);
                let reply = self.app.push_image(REPO, &image, step.tag.as_deref().unwrap_or("latest")).await;
                assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
                self.images.insert(name, image);
                Ok(None)
            }
            "provenance" => {
                let image = self.image(step.image.as_deref().expect("`image`")).clone();
                let predicate = support::provenance(&image, step.trigger.as_deref().unwrap_or("ci-bot"));
                self.attest(&image, support::PROVENANCE, predicate).await;
                Ok(None)
            }
            "scan" => {
                let image = self.image(step.image.as_deref().expect("`image`")).clone();
                let critical: Vec<&str> = step.critical.iter().map(String::as_str).collect();
                let predicate = support::scan(&critical);
                self.attest(&image, support::SCAN, predicate).await;
                Ok(None)
            }
            "promote" => {
                let image = self.image(step.image.as_deref().expect("`image`"));
                let from = StageName::parse(step.from.as_deref().unwrap_or("dev")).unwrap();
                let source = RepoName::parse(REPO).unwrap().in_stage(&from);
                let request = PromoteRequest {
                    source,
                    reference: Reference::Digest(Digest::parse(&image.digest()).unwrap()),
                    target: StageName::parse(step.to.as_deref().expect("`to`")).unwrap(),
                    tag: step.tag.as_deref().map(|t| Tag::parse(t).unwrap()),
                    reason: step.reason.clone().unwrap_or_else(|| "release".to_owned()),
                    break_glass: step.break_glass,
                };
                let view = self.promoter().request(&caller, &request).await.map_err(err)?;
                if let Some(name) = &step.save {
                    self.saved.insert(name.clone(), view.record.id.clone());
                }
                Ok(Some(view))
            }
            "approve" => {
                let id = saved(self);
                self.promoter().approve(&caller, &id, "ok").await.map(Some).map_err(err)
            }
            "reject" => {
                let id = saved(self);
                let reason = step.reason.as_deref().unwrap_or("no");
                self.promoter().reject(&caller, &id, reason).await.map(Some).map_err(err)
            }
            "advance" => {
                self.clock.advance(i64::try_from(step.secs.expect("`secs`") * 1000).unwrap());
                Ok(None)
            }
            "revoke-role" => {
                let user = PrincipalId::parse(step.user.as_deref().expect("`user`")).unwrap();
                let role = step.role.clone().expect("`role`");
                let change = airlock_core::ports::PrincipalChange::RevokeRole { role };
                self.app.app.state.auth.change(&Actor::system(), &user, change).await.unwrap().unwrap();
                Ok(None)
            }
            "revoke-ci-key" => {
                let old = std::mem::replace(&mut self.ci, PrivateKey::generate(Algorithm::Ed25519).unwrap());
                self.apply_root(&[&old]).await;
                Ok(None)
            }
            "freeze" => {
                let stage = StageName::parse(step.stage.as_deref().expect("`stage`")).unwrap();
                self.promoter()
                    .freeze(&caller, &stage, step.reason.as_deref().unwrap_or("incident"))
                    .await
                    .map_err(err)?;
                Ok(None)
            }
            "unfreeze" => {
                let stage = StageName::parse(step.stage.as_deref().expect("`stage`")).unwrap();
                self.promoter().unfreeze(&caller, &stage).await.map_err(err)?;
                Ok(None)
            }
            "rollback" => {
                let repo = RepoName::parse("prod/payments/api").unwrap();
                let tag = Tag::parse(step.tag.as_deref().expect("`tag`")).unwrap();
                let to = match step.image.as_deref() {
                    None => RollbackTo::Previous,
                    Some(name) => RollbackTo::Digest(Digest::parse(&self.image(name).digest()).unwrap()),
                };
                self.promoter().rollback(&caller, &repo, &tag, &to, "case").await.map_err(err)?;
                Ok(None)
            }
            other => panic!("unknown action `{other}`"),
        }
    }
}

fn findings_of(view: &PromotionView) -> Vec<String> {
    view.report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["rule"].as_str().map(str::to_owned))
        .collect()
}

async fn run_case(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let case: Case = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!case.description.is_empty(), "{name}: say what the case shows");
    let mut run = Run::new(&case).await;
    for (i, step) in case.steps.iter().enumerate() {
        let at = format!("{name} step {} ({})", i + 1, step.action);
        let outcome = run.step(step).await;
        match (&outcome, &step.error) {
            (Err(e), Some(words)) => assert!(e.contains(words.as_str()), "{at}: error `{e}` lacks `{words}`"),
            (Err(e), None) => panic!("{at}: unexpected error: {e}"),
            (Ok(_), Some(words)) => panic!("{at}: expected an error with `{words}`, got {outcome:?}"),
            (Ok(_), None) => {}
        }
        let Ok(Some(view)) = outcome else { continue };
        if let Some(status) = &step.expect {
            assert_eq!(view.record.status.as_str(), status, "{at}: {}", view.report);
        }
        if let Some(findings) = &step.findings {
            assert_eq!(&findings_of(&view), findings, "{at}: {}", view.report);
        }
        if let Some(counted) = &step.counted {
            let got: Vec<String> = view.report["approvals"]["counted"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
            assert_eq!(&got, counted, "{at}: {}", view.report);
        }
    }
}

#[tokio::test]
async fn promotion_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/promotion");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    assert!(paths.len() >= 8, "the case files are missing from {}", dir.display());
    for path in paths {
        run_case(&path).await;
    }
}
