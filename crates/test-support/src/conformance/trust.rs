//! Trust root versions and the attestations recorded with their manifests.

use super::*;

pub async fn trust_roots_keep_every_version(store: &dyn MetadataStore) {
    assert_eq!(store.latest_root().await.unwrap(), None);
    let event = |v: u64| {
        Event::allowed(EventKind::TrustRootUpdate, &actor(), at(1), Subject::default())
            .with_detail("version", serde_json::Value::from(v))
    };
    let before = store.log_size().await.unwrap();
    for v in [1u64, 2] {
        let root = StoredRoot { version: v, document: Bytes::from(format!("root {v}")) };
        assert!(store.put_root(&root, &event(v), at(1)).await.unwrap());
    }
    let again = StoredRoot { version: 2, document: Bytes::from_static(b"another root 2") };
    assert!(!store.put_root(&again, &event(2), at(1)).await.unwrap(), "a version is stored once");
    assert_eq!(store.log_size().await.unwrap(), before + 2, "each stored version is logged, the refused one is not");
    assert_eq!(store.latest_root().await.unwrap().unwrap().document.as_ref(), b"root 2");
    assert_eq!(store.root_version(1).await.unwrap().unwrap().document.as_ref(), b"root 1");
    assert_eq!(store.root_version(3).await.unwrap(), None);
}

pub async fn attestations_are_recorded_with_their_manifest(store: &dyn MetadataStore) {
    let r = repo("dev/a");
    let subject = Digest::of(b"the artifact");
    let verdict =
        Verdict { trusted: false, signers: vec![], reasons: vec!["no trust root".to_owned()], root_version: 0 };
    let mut m = manifest("attestation", &[], Some(&subject), Some("application/vnd.in-toto+json"));
    m.attestation = Some(NewAttestation {
        subject: subject.clone(),
        predicate_type: "https://slsa.dev/provenance/v1".to_owned(),
        envelope: Bytes::from_static(b"{\"payloadType\":\"x\"}"),
        verdict: verdict.clone(),
    });
    let before = store.log_size().await.unwrap();
    stored(store.put_manifest(&r, &m, None, &actor(), at(5)).await.unwrap());
    let logged = events(store, before).await;
    assert_eq!(kinds(&logged), ["registry.manifest.push", "trust.attestation.ingest"]);
    assert_eq!(logged[1]["outcome"]["decision"], "denied", "an untrusted attestation is logged as denied");
    assert_eq!(logged[1]["details"]["referrer"], serde_json::json!(m.digest.as_str()));
    let found = store.attestations(&r, &subject).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].manifest, m.digest);
    assert_eq!(found[0].verdict, verdict);
    assert_eq!(found[0].envelope.as_ref(), b"{\"payloadType\":\"x\"}");
    assert!(store.attestations(&repo("dev/b"), &subject).await.unwrap().is_empty());
    assert!(store.delete_manifest(&r, &m.digest, &actor(), at(6)).await.unwrap());
    assert!(store.attestations(&r, &subject).await.unwrap().is_empty(), "deleting the referrer drops its attestation");
}

pub async fn cached_state_versions_rise_with_roots_and_roles(store: &dyn MetadataStore) {
    use futures::StreamExt as _;
    let mut hints = store.watch_cached_state().await.unwrap();
    let start = store.cached_state_version().await.unwrap();
    assert_eq!(store.cached_state_version().await.unwrap(), start, "reading changes nothing");
    let root = StoredRoot { version: 1, document: Bytes::from_static(b"{\"signed\":{}}") };
    assert!(store.put_root(&root, &event(EventKind::TrustRootBootstrap), at(1)).await.unwrap());
    let after_root = store.cached_state_version().await.unwrap();
    assert!(after_root > start, "a trust root raises the version: {start} -> {after_root}");
    if let Some(hints) = hints.as_mut() {
        let hint = tokio::time::timeout(std::time::Duration::from_secs(10), hints.next()).await;
        assert_eq!(hint.expect("a hint arrives after a change commits"), Some(()));
    }
    assert!(!store.put_root(&root, &event(EventKind::TrustRootUpdate), at(2)).await.unwrap());
    assert_eq!(store.cached_state_version().await.unwrap(), after_root, "a refused change raises nothing");
    assert!(store.define_role("auditor", "{}", &event(EventKind::RoleDefine)).await.unwrap());
    let after_role = store.cached_state_version().await.unwrap();
    assert!(after_role > after_root, "a role raises the version");
    assert!(!store.define_role("auditor", "{}", &event(EventKind::RoleDefine)).await.unwrap());
    assert_eq!(store.cached_state_version().await.unwrap(), after_role);
    // What servers do not cache leaves the version alone.
    store.append_events(&[event(EventKind::LoginFailed)]).await.unwrap();
    assert_eq!(store.cached_state_version().await.unwrap(), after_role);

    // The version read with a principal is the version, and the principal is as
    // `principal_granted` reads it, known or not.
    let carol = PrincipalId::parse("carol").unwrap();
    assert_eq!(store.cached_state_with_principal(&carol).await.unwrap(), (after_role, None), "an unknown principal");
    let record = PrincipalRecord::new(&carol, PrincipalKind::User, &["developer".to_owned()], at(3));
    assert!(store.create_principal(&record, &event(EventKind::PrincipalCreate)).await.unwrap());
    let (version, found) = store.cached_state_with_principal(&carol).await.unwrap();
    assert_eq!(version, store.cached_state_version().await.unwrap());
    assert_eq!(found, store.principal_granted(&carol).await.unwrap());
    assert_eq!(found.map(|(p, granted)| (p.roles, granted)), Some((vec!["developer".to_owned()], false)));
    assert!(store.define_role("reviewer", "{}", &event(EventKind::RoleDefine)).await.unwrap());
    let (raised, _) = store.cached_state_with_principal(&carol).await.unwrap();
    assert!(raised > version, "the version read with a principal rises as the version does: {version} -> {raised}");
    // Many at once naming principals that do not exist (forged tokens) are each answered: none
    // holds a connection while it waits for another.
    let strangers: Vec<PrincipalId> = (0..32).map(|i| PrincipalId::parse(&format!("stranger{i}")).unwrap()).collect();
    let reads = futures::future::join_all(strangers.iter().map(|id| store.cached_state_with_principal(id)));
    let answers = tokio::time::timeout(std::time::Duration::from_secs(20), reads)
        .await
        .expect("32 reads of unknown principals at once are answered");
    assert!(answers.into_iter().all(|a| a.unwrap() == (raised, None)));
}
