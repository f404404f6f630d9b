//! Gate scenarios as case files (`tests/cases/promotion/*.toml`), run against the promotion
//! engine itself: real ports (SQLite and the filesystem on a temporary directory) behind a
//! manual clock, with no server, no HTTP and no Cedar in the way, so every refusal here is the
//! engine's own.
//!
//! A case names its people, optionally its stages, and a list of steps; each step says what it
//! expects (a status, the findings of a denial, an error's words, the approvals counted).

use std::collections::BTreeMap;
use std::path::Path;

use airlock_core::RegistryError;
use airlock_core::audit::Actor;
use airlock_core::ports::Clock as _;
use airlock_core::promotion::control::RollbackTo;
use airlock_core::promotion::{Caller, PromoteRequest, PromotionView};
use airlock_dsse::{Algorithm, PrivateKey};
use airlock_model::{Digest, PrincipalId, PrincipalKind, Reference, RepoName, StageName, Tag, Timestamp};
use airlock_test_support::ManualClock;
use airlock_test_support::engine::{Engine, PUSHER, actor};
use airlock_test_support::oci::{Image, OCI_MANIFEST};
use airlock_test_support::promotion as support;
use airlock_trust::{Pattern, RepoPattern, Revocation, Root, SignerRule, sign_root};
use serde::Deserialize;
use serde_json::Value;

/// The cases test the engine's own rules: access is granted (Cedar is the server's tests').
struct Granted;

#[async_trait::async_trait]
impl airlock_core::promotion::AccessCheck for Granted {
    fn reads_origin(&self) -> bool {
        false
    }

    async fn check(
        &self,
        _origin: Option<airlock_core::promotion::Origin>,
    ) -> Result<(), airlock_core::promotion::PromotionError> {
        Ok(())
    }
}

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
    /// More `airlock.toml`, such as a `[limits]` table.
    config: Option<String>,
    /// The trust root's signer rules; by default one, `ci`, signing everything everywhere.
    #[serde(default)]
    signers: Vec<SignerSpec>,
    #[serde(default)]
    users: Vec<User>,
    steps: Vec<Step>,
}

/// A signer rule of the case's trust root, over the named key (keys are made per run by name).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerSpec {
    name: String,
    key: String,
    predicate_types: Vec<String>,
    #[serde(default = "everywhere")]
    repositories: Vec<String>,
}

fn everywhere() -> Vec<String> {
    vec!["**".to_owned()]
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
    /// Who acts; `tester` (the service account that pushes) by default. A user who pushes
    /// pushes the manifest with their own token.
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
    /// Words that one of the findings' messages must contain.
    message: Option<String>,
    user: Option<String>,
    role: Option<String>,
    stage: Option<String>,
    reason: Option<String>,
    /// The key that signs an attestation (`ci` by default), by name.
    key: Option<String>,
    predicate_type: Option<String>,
    /// A predicate in `tests/data/vex/<fixture>.json`; `{digest}` reads as the image's digest.
    fixture: Option<String>,
    // What is expected.
    expect: Option<String>,
    findings: Option<Vec<String>>,
    error: Option<String>,
    counted: Option<Vec<String>>,
}

struct Run {
    engine: Engine,
    clock: ManualClock,
    ci: PrivateKey,
    /// Keys other than `ci`, by name, made when first named.
    keys: BTreeMap<String, PrivateKey>,
    signers: Vec<SignerSpec>,
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
        let config = format!(
            "{}\n[policy]\nbundle = \"{}\"\n{}",
            case.config.as_deref().unwrap_or_default(),
            policy.path().display(),
            case.stages.as_deref().unwrap_or(STAGES)
        );
        let clock = ManualClock::at(START);
        let engine = Engine::open(&config, clock.clone()).await;
        let root_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let ci = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let mut run = Run {
            engine,
            clock,
            ci,
            keys: BTreeMap::new(),
            signers: case.signers.clone(),
            root_key,
            root_version: 0,
            images: BTreeMap::new(),
            saved: BTreeMap::new(),
            _policy: policy,
        };
        run.apply_root(&[]).await;
        // Users as an operator's setup leaves them; accounts without an e-mail are rows from
        // before approvers needed one.
        for user in &case.users {
            run.engine.add_principal(&user.name, PrincipalKind::User, &user.roles, user.email.as_deref()).await;
        }
        run
    }

    /// Makes the key named `name` unless it exists (`ci` always does).
    fn make_key(&mut self, name: &str) {
        if name != "ci" {
            self.keys.entry(name.to_owned()).or_insert_with(|| PrivateKey::generate(Algorithm::Ed25519).unwrap());
        }
    }

    /// The key named `name`, made with [`Run::make_key`].
    fn key(&self, name: &str) -> &PrivateKey {
        if name == "ci" { &self.ci } else { self.keys.get(name).unwrap_or_else(|| panic!("no key `{name}`")) }
    }

    /// Applies the next trust root version: the case's signer rules, or by default `ci` signing
    /// everything, everywhere; `revoked` keys are revoked, and a fresh `ci` key replaces a revoked
    /// one.
    async fn apply_root(&mut self, revoked: &[&PrivateKey]) {
        self.root_version += 1;
        let start = Timestamp::from_millis(START);
        let specs = if self.signers.is_empty() {
            vec![SignerSpec {
                name: "ci".to_owned(),
                key: "ci".to_owned(),
                predicate_types: vec!["https://**".to_owned()],
                repositories: everywhere(),
            }]
        } else {
            self.signers.clone()
        };
        let mut keys = BTreeMap::new();
        for k in [&self.root_key].into_iter().chain(revoked.iter().copied()) {
            keys.insert(k.public_key().keyid().clone(), k.public_key().clone());
        }
        let mut signers = Vec::new();
        for spec in &specs {
            self.make_key(&spec.key);
            let key = self.key(&spec.key);
            keys.insert(key.public_key().keyid().clone(), key.public_key().clone());
            signers.push(SignerRule {
                name: spec.name.clone(),
                keyids: vec![key.public_key().keyid().clone()],
                predicate_types: spec.predicate_types.iter().map(|p| Pattern::parse(p).unwrap()).collect(),
                repositories: spec.repositories.iter().map(|p| RepoPattern::parse(p).unwrap()).collect(),
                not_before: start,
                not_after: start.plus_millis(300 * DAY),
            });
        }
        let root = Root {
            version: self.root_version,
            expires: start.plus_millis(365 * DAY),
            keys,
            root_keyids: vec![self.root_key.public_key().keyid().clone()],
            root_threshold: 1,
            signers,
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
        let key_admin = PrincipalId::parse("key-keeper").unwrap();
        let applier = Actor::authenticated(&key_admin, PrincipalKind::ServiceAccount, "case");
        let applied = self.engine.put_root(&applier, document.into()).await;
        assert!(applied.is_ok(), "trust root refused: {applied:?}");
    }

    fn caller(&self, name: &str, mfa: bool) -> Caller {
        let kind = if name == PUSHER { PrincipalKind::ServiceAccount } else { PrincipalKind::User };
        let principal = PrincipalId::parse(name).unwrap();
        Caller { actor: Actor::authenticated(&principal, kind, "case"), principal, kind, mfa_fresh: mfa }
    }

    fn image(&self, name: &str) -> &Image {
        self.images.get(name).unwrap_or_else(|| panic!("image `{name}` was never pushed"))
    }

    async fn attest(&mut self, subject: &Image, predicate_type: &str, predicate: Value, key: Option<&str>) {
        let name = key.unwrap_or("ci");
        self.make_key(name);
        let pushed = self.push_attestation(subject, predicate_type, &predicate, name).await;
        assert!(pushed.is_ok(), "attestation refused: {pushed:?}");
    }

    /// Pushes `image` under `tag` as `user`, so `user` is its pusher (the blobs go first, as the
    /// tester).
    async fn push_as(&self, user: &str, image: &Image, tag: &str) -> Result<(), RegistryError> {
        let repo = RepoName::parse(REPO).unwrap();
        for blob in image.blobs() {
            self.engine.push_blob(&actor(PUSHER), &repo, blob).await?;
        }
        let reference = Reference::parse(tag).unwrap();
        self.engine.push_manifest(&actor(user), &repo, &reference, image.media_type(), image.manifest.clone()).await?;
        Ok(())
    }

    /// Signs `predicate` about `subject` with the key `key` and pushes it as a referrer, as the
    /// tester.
    async fn push_attestation(
        &self,
        subject: &Image,
        predicate_type: &str,
        predicate: &Value,
        key: &str,
    ) -> Result<(), RegistryError> {
        let signed = support::attestation(REPO, subject, predicate_type, predicate, self.key(key));
        let (repo, tester) = (RepoName::parse(REPO).unwrap(), actor(PUSHER));
        self.engine.push_blob(&tester, &repo, &signed.config).await?;
        self.engine.push_blob(&tester, &repo, &signed.envelope).await?;
        let reference = Reference::Digest(Digest::parse(&signed.digest).unwrap());
        self.engine.push_manifest(&tester, &repo, &reference, OCI_MANIFEST, signed.manifest.into()).await?;
        Ok(())
    }

    fn promoter(&self) -> &airlock_core::promotion::Promoter {
        &self.engine.promoter
    }

    async fn step(&mut self, step: &Step) -> Result<Option<PromotionView>, String> {
        let who = step.actor.as_deref().unwrap_or(PUSHER);
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
                let tag = step.tag.as_deref().unwrap_or("latest");
                let pushed = self.push_as(step.actor.as_deref().unwrap_or(PUSHER), &image, tag).await;
                assert!(pushed.is_ok(), "push refused: {pushed:?}");
                self.images.insert(name, image);
                Ok(None)
            }
            "provenance" => {
                let image = self.image(step.image.as_deref().expect("`image`")).clone();
                let predicate = support::provenance(&image, step.trigger.as_deref().unwrap_or("ci-bot"));
                self.attest(&image, support::PROVENANCE, predicate, step.key.as_deref()).await;
                Ok(None)
            }
            "scan" => {
                let image = self.image(step.image.as_deref().expect("`image`")).clone();
                let critical: Vec<&str> = step.critical.iter().map(String::as_str).collect();
                let predicate = scan(&critical);
                self.attest(&image, support::SCAN, predicate, step.key.as_deref()).await;
                Ok(None)
            }
            "attest" => {
                let image = self.image(step.image.as_deref().expect("`image`")).clone();
                let fixture = step.fixture.as_deref().expect("`fixture`");
                let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/vex/{fixture}.json"));
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let predicate = serde_json::from_str(&text.replace("{digest}", &image.digest())).unwrap();
                let predicate_type = step.predicate_type.as_deref().expect("`predicate_type`");
                self.attest(&image, predicate_type, predicate, step.key.as_deref()).await;
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
                let view = self.promoter().request(&caller, &Granted, &request).await.map_err(err)?;
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
                self.engine.identity.apply(&Actor::system(), &user, change).await.unwrap().unwrap();
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

/// The package every scan finds its vulnerabilities in.
const OPENSSL: &str = "pkg:apk/alpine/openssl@3.0.1";

/// A Trivy scan in cosign's predicate finding each of `critical` in openssl, named by its purl.
fn scan(critical: &[&str]) -> Value {
    let mut predicate = support::scan(critical);
    for v in predicate["scanner"]["result"]["Results"][0]["Vulnerabilities"].as_array_mut().into_iter().flatten() {
        v["PkgIdentifier"] = serde_json::json!({"PURL": OPENSSL});
    }
    predicate
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
    run_text(&name, &std::fs::read_to_string(path).unwrap()).await;
}

/// Runs the case `text` (named `name` in messages) and returns the run, for further checks.
async fn run_text(name: &str, text: &str) -> Run {
    let case: Case = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
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
        if let Some(words) = &step.message {
            let said = view.report["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["message"].as_str().is_some_and(|m| m.contains(words.as_str())));
            assert!(said, "{at}: no finding says `{words}`: {}", view.report);
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
    run
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

// ---- attacks of issue 17 --------------------------------------------------------------------

/// Dev and a staging stage with no gate but the policy (which denies critical vulnerabilities).
const OPEN_STAGING: &str = r#"stages = """
[[stages]]
name = "dev"
pushable = true
[[stages]]
name = "staging"
"""
"#;

/// `ci` signs provenance and SBOMs, `scanner` scans; nobody may sign VEX.
const CI_AND_SCANNER: &str = r#"
[[signers]]
name = "ci"
key = "ci"
predicate_types = ["https://slsa.dev/provenance/*", "https://cyclonedx.org/bom", "https://cyclonedx.org/bom/*"]

[[signers]]
name = "scanner"
key = "scanner"
predicate_types = ["https://cosign.sigstore.dev/attestation/vuln/v1"]
"#;

impl Run {
    /// The policy input for promoting image `name` from dev to `to`.
    async fn input(&self, name: &str, to: &str) -> Value {
        let repo = RepoName::parse(REPO).unwrap();
        let digest = Digest::parse(&self.image(name).digest()).unwrap();
        let requester = airlock_core::policy_input::Requester { principal: "tester".into(), kind: "service".into() };
        let input = self.engine.registry.policy_input(&repo, &digest, &StageName::parse(to).unwrap(), &requester).await;
        serde_json::to_value(input.unwrap()).unwrap()
    }

    /// Signs `predicate` with the key `key` and pushes it as a referrer of image `name`; returns
    /// what the registry said.
    async fn try_attest(
        &mut self,
        name: &str,
        predicate_type: &str,
        predicate: &Value,
        key: &str,
    ) -> Result<(), RegistryError> {
        self.make_key(key);
        let subject = self.image(name).clone();
        self.push_attestation(&subject, predicate_type, predicate, key).await
    }
}

/// A predicate nested `depth` levels deep: an object holding arrays.
fn nested(depth: usize) -> Value {
    let arrays = depth - 1;
    let text = format!("{{\"deep\": {}{}}}", "[".repeat(arrays), "]".repeat(arrays));
    serde_json::from_str(&text).unwrap()
}

/// Issue 17: a CycloneDX SBOM signed by `ci`, which may sign SBOMs but not VEX, carried
/// `analysis.state: not_affected` for the scanner's critical CVE and removed it; the promotion to
/// prod then passed the policy. Now the analysis is listed in `vex_ignored` and changes nothing.
#[tokio::test]
async fn ci_key_cannot_cancel_the_scanners_critical_cve() {
    let case = format!(
        r#"description = "the ci key's SBOM analysis does not suppress the scanner's finding"
stages = """
[[stages]]
name = "dev"
pushable = true
[[stages]]
name = "prod"
"""
{CI_AND_SCANNER}
[[steps]]
action = "push"
image = "a"

[[steps]]
action = "scan"
image = "a"
key = "scanner"
critical = ["CVE-2026-0001"]

[[steps]]
action = "attest"
image = "a"
key = "ci"
predicate_type = "https://cyclonedx.org/bom"
fixture = "vex-in-sbom-from-sbom-signer"

[[steps]]
action = "promote"
image = "a"
to = "prod"
expect = "denied"
findings = ["no-critical"]
"#
    );
    let run = run_text("ci_key_cannot_cancel_the_scanners_critical_cve", &case).await;
    let input = run.input("a", "prod").await;
    assert_eq!(input["vex_applied"], serde_json::json!([]), "{input:#}");
    let ignored = input["vex_ignored"].as_array().unwrap();
    assert_eq!(ignored.len(), 1, "{input:#}");
    assert_eq!(ignored[0]["vulnerability"], "CVE-2026-0001");
    assert_eq!(ignored[0]["reason"], "signer-not-allowed-vex");
    assert_eq!(ignored[0]["signers"], serde_json::json!(["ci"]));
    let critical = input["evidence"]["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["id"] == "CVE-2026-0001" && v["severity"] == "critical")
        .count();
    assert_eq!(critical, 1, "{input:#}");
    // The merged evidence lists only statements that may suppress.
    assert_eq!(input["evidence"]["vex"], serde_json::json!([]), "{input:#}");
}

/// Issue 17: a stage threshold counted signer names, so one key listed under two signer names
/// met `threshold = 2` alone. Thresholds count distinct keys, as the trust root's do.
#[tokio::test]
async fn one_key_under_two_signer_names_counts_once() {
    let case = r#"description = "one key under two signer names is one key toward a stage threshold"
stages = """
[[stages]]
name = "dev"
pushable = true
[[stages]]
name = "staging"
[[stages.attestations]]
name = "provenance"
predicate_types = ["https://slsa.dev/provenance/*"]
signers = ["ci", "release"]
threshold = 2
"""

[[signers]]
name = "ci"
key = "ci"
predicate_types = ["https://slsa.dev/provenance/*"]

[[signers]]
name = "release"
key = "ci"
predicate_types = ["https://slsa.dev/provenance/*"]

[[signers]]
name = "release-2"
key = "release"
predicate_types = ["https://slsa.dev/provenance/*"]

[[steps]]
action = "push"
image = "a"

[[steps]]
action = "provenance"
image = "a"

[[steps]]
action = "promote"
image = "a"
to = "staging"
expect = "denied"
findings = ["provenance"]
"#;
    let mut run = run_text("one_key_under_two_signer_names_counts_once", case).await;
    // A second key, of another signer the stage names, makes two.
    let image = run.image("a").clone();
    let predicate = support::provenance(&image, "ci-bot");
    run.signers.iter_mut().filter(|s| s.name == "release-2").for_each(|s| s.name = "release".to_owned());
    run.signers.retain(|s| !(s.name == "release" && s.key == "ci"));
    run.apply_root(&[]).await;
    let pushed = run.try_attest("a", support::PROVENANCE, &predicate, "release").await;
    assert!(pushed.is_ok(), "attestation refused: {pushed:?}");
    let promote =
        Step { action: "promote".into(), image: Some("a".into()), to: Some("staging".into()), ..Step::default() };
    let view = run.step(&promote).await.unwrap().unwrap();
    assert_eq!(view.record.status.as_str(), "promoted", "{}", view.report);
}

/// Issue 17: anyone who may push attached an unverifiable attestation nested 58 deep, and every
/// promotion of the digest denied with `input-too-deep`. Untrusted predicates never reach the
/// policy now.
#[tokio::test]
async fn untrusted_deep_attestation_does_not_deny_promotion() {
    let case = format!(
        r#"description = "an untrusted deep attestation does not reach the policy"
{OPEN_STAGING}
[[steps]]
action = "push"
image = "a"
"#
    );
    let mut run = run_text("untrusted_deep_attestation_does_not_deny_promotion", &case).await;
    let pushed = run.try_attest("a", "https://example.com/deep/v1", &nested(58), "outsider").await;
    assert!(pushed.is_ok(), "attestation refused: {pushed:?}");
    let promote =
        Step { action: "promote".into(), image: Some("a".into()), to: Some("staging".into()), ..Step::default() };
    let view = run.step(&promote).await.unwrap().unwrap();
    assert_eq!(view.record.status.as_str(), "promoted", "{}", view.report);
    let input = run.input("a", "staging").await;
    let listed = input["attestations"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{input:#}");
    assert_eq!(listed[0]["trusted"], false);
    assert_eq!(listed[0]["predicate_type"], "https://example.com/deep/v1");
    assert!(listed[0].get("predicate").is_none() && listed[0].get("evidence").is_none(), "{input:#}");
    assert_eq!(listed[0]["keyids"], serde_json::json!([]));
    assert_eq!(listed[0]["keyid_hints"], serde_json::json!([run.key("outsider").public_key().keyid().as_str()]));
    assert!(!listed[0]["reasons"].as_array().unwrap().is_empty());

    // However many are attached, the input lists a bounded number and counts the rest.
    let max = airlock_core::policy_input::UNTRUSTED_LISTED_MAX;
    for i in 1..max + 3 {
        let pushed =
            run.try_attest("a", "https://example.com/noise/v1", &serde_json::json!({"n": i}), "outsider").await;
        assert!(pushed.is_ok(), "attestation refused: {pushed:?}");
    }
    let input = run.input("a", "staging").await;
    assert_eq!(input["attestations"].as_array().unwrap().len(), max, "{input:#}");
    assert_eq!(input["untrusted_omitted"], 3);
}

/// Issue 17: 20 MB of unverifiable attestations made every promotion of the digest deny with
/// `input-too-large`. Attestations per artifact are bounded at ingest, in count and bytes.
#[tokio::test]
async fn untrusted_attestation_flood_is_bounded_at_ingest() {
    let case = format!(
        r#"description = "attestations per artifact are bounded at ingest"
config = """
[limits]
attestations_per_artifact = 3
attestation_bytes_per_artifact = 8192
"""
{OPEN_STAGING}
[[steps]]
action = "push"
image = "a"

[[steps]]
action = "push"
image = "b"
"#
    );
    let mut run = run_text("untrusted_attestation_flood_is_bounded_at_ingest", &case).await;
    for i in 0..3 {
        let pushed =
            run.try_attest("a", "https://example.com/noise/v1", &serde_json::json!({"n": i}), "outsider").await;
        assert!(pushed.is_ok(), "attestation refused: {pushed:?}");
    }
    // Refused as the server's error table answers with `DENIED`.
    let refused = run.try_attest("a", "https://example.com/noise/v1", &serde_json::json!({"n": 3}), "outsider").await;
    let Err(e @ RegistryError::TooManyAttestations { .. }) = refused else { panic!("not refused: {refused:?}") };
    assert!(e.to_string().contains("limits.attestations_per_artifact"), "{e}");
    // Bytes: one envelope of about 6 KiB fits, a second does not.
    let big = serde_json::json!({"padding": "x".repeat(4000)});
    let pushed = run.try_attest("b", "https://example.com/noise/v1", &big, "outsider").await;
    assert!(pushed.is_ok(), "attestation refused: {pushed:?}");
    let refused = run.try_attest("b", "https://example.com/noise/v1", &big, "outsider").await;
    let Err(e @ RegistryError::AttestationsTooLarge { .. }) = refused else { panic!("not refused: {refused:?}") };
    assert!(e.to_string().contains("limits.attestation_bytes_per_artifact"), "{e}");
    // What was refused was never stored: the promotion still sees three.
    let input = run.input("a", "staging").await;
    assert_eq!(input["attestations"].as_array().unwrap().len(), 3, "{input:#}");
}

/// Attestation readings and signature checks are kept between decisions (`airlock_core::verified`);
/// nothing kept may outlive the trust root, the clock or the repository it was decided for.
mod kept_verdicts {
    use super::*;

    const PUSHED: &str = r#"description = "an image with provenance signed by ci"
[[steps]]
action = "push"
image = "a"

[[steps]]
action = "provenance"
image = "a"
"#;

    /// The one attestation of image `a` in the policy input: whether it is trusted, and why not.
    async fn verdict(run: &Run) -> (bool, String) {
        let input = run.input("a", "staging").await;
        let attestations = input["attestations"].as_array().unwrap();
        assert_eq!(attestations.len(), 1, "{input:#}");
        (attestations[0]["trusted"].as_bool().unwrap(), attestations[0]["reasons"].to_string())
    }

    /// Decides twice, so the second decision reads what the first kept.
    async fn trusted_warm(run: &Run) {
        assert!(verdict(run).await.0);
        assert!(verdict(run).await.0);
        assert!(run.engine.registry.verified().usage().signed >= 1, "the check is kept");
    }

    #[tokio::test]
    async fn a_key_revoked_by_a_new_root_stops_counting_at_the_very_next_decision() {
        let mut run = run_text("revoked_with_a_warm_cache", PUSHED).await;
        trusted_warm(&run).await;
        let revoke = Step { action: "revoke-ci-key".into(), ..Step::default() };
        run.step(&revoke).await.unwrap();
        let (trusted, reasons) = verdict(&run).await;
        assert!(!trusted, "{reasons}");
        assert!(reasons.contains("revoked"), "{reasons}");
    }

    #[tokio::test]
    async fn a_signer_rule_narrowed_to_another_repository_stops_counting_at_once() {
        let mut run = run_text("narrowed_with_a_warm_cache", PUSHED).await;
        trusted_warm(&run).await;
        // The same keys, the same signer, one rule narrower: another root content.
        run.signers = vec![SignerSpec {
            name: "ci".to_owned(),
            key: "ci".to_owned(),
            predicate_types: vec!["https://**".to_owned()],
            repositories: vec!["dev/other/**".to_owned()],
        }];
        run.apply_root(&[]).await;
        let (trusted, reasons) = verdict(&run).await;
        assert!(!trusted, "{reasons}");
        assert!(reasons.contains("may not sign for repository"), "{reasons}");
        // Widened again: trusted again, from a root of yet another content.
        run.signers[0].repositories = everywhere();
        run.apply_root(&[]).await;
        assert!(verdict(&run).await.0);
    }

    #[tokio::test]
    async fn a_signer_whose_rule_expired_stops_counting_when_the_clock_passes_it() {
        let run = run_text("expired_with_a_warm_cache", PUSHED).await;
        trusted_warm(&run).await;
        // The rules end 300 days after the start; the root 365 days after.
        run.clock.advance(i64::try_from(299 * DAY).unwrap());
        assert!(verdict(&run).await.0);
        run.clock.advance(i64::try_from(2 * DAY).unwrap());
        let (trusted, reasons) = verdict(&run).await;
        assert!(!trusted, "{reasons}");
        assert!(reasons.contains("signer `ci` expired"), "{reasons}");
        // And the root itself, warm or not.
        run.clock.advance(i64::try_from(70 * DAY).unwrap());
        let (trusted, reasons) = verdict(&run).await;
        assert!(!trusted && reasons.contains("trust root version 1 expired"), "{reasons}");
    }

    #[tokio::test]
    async fn many_attestations_past_the_bound_are_each_still_verified() {
        let mut run = run_text("many_attestations_past_the_bound", PUSHED).await;
        let limits = airlock_core::verified::CacheLimits { entries: 3, bytes: 1 << 20 };
        run.engine.registry = run.engine.registry.clone().with_verified_limits(limits);
        let image = run.image("a").clone();
        for n in 0..11 {
            let predicate = support::provenance(&image, &format!("ci-bot-{n}"));
            run.try_attest("a", support::PROVENANCE, &predicate, "ci").await.unwrap();
        }
        let unsigned = run.try_attest("a", support::PROVENANCE, &support::provenance(&image, "x"), "outsider").await;
        assert!(unsigned.is_ok(), "{unsigned:?}");
        for _ in 0..3 {
            let input = run.input("a", "staging").await;
            let attestations = input["attestations"].as_array().unwrap();
            assert_eq!(attestations.len(), 13, "{input:#}");
            let trusted = attestations.iter().filter(|a| a["trusted"] == true).count();
            assert_eq!(trusted, 12, "every signed one, whatever was kept");
            let usage = run.engine.registry.verified().usage();
            assert!(usage.readings <= 3 && usage.signed <= 3, "{usage:?}");
        }
    }
}
