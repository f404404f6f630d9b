//! Login state: failures counted per key and forgotten, spent one-time-code steps.

use super::*;

pub async fn login_failures_count_and_are_forgotten(store: &dyn MetadataStore) {
    let pair = "password alice 192.0.2.1".to_owned();
    let client = "client 192.0.2.1".to_owned();
    let keys = [pair.clone(), client.clone()];
    assert_eq!(store.login_failures(&keys).await.unwrap(), [None, None]);
    let forget = Timestamp::from_millis(0);
    assert_eq!(store.count_login_failures(&keys, at(1), forget).await.unwrap(), [1, 1]);
    assert_eq!(store.count_login_failures(&keys, at(2), forget).await.unwrap(), [2, 2]);
    assert_eq!(store.count_login_failures(std::slice::from_ref(&client), at(3), forget).await.unwrap(), [3]);
    assert_eq!(
        store.login_failures(&keys).await.unwrap(),
        [Some(LoginFailures { failures: 2, last: at(2) }), Some(LoginFailures { failures: 3, last: at(3) })]
    );
    // Racing failures each count.
    let (first, second) = tokio::join!(
        store.count_login_failures(std::slice::from_ref(&pair), at(4), forget),
        store.count_login_failures(std::slice::from_ref(&pair), at(4), forget),
    );
    let mut counts = [first.unwrap()[0], second.unwrap()[0]];
    counts.sort_unstable();
    assert_eq!(counts, [3, 4]);
    // A count whose last failure is old enough starts over.
    assert_eq!(store.count_login_failures(std::slice::from_ref(&pair), at(10), at(4)).await.unwrap(), [1]);
    // The owner's success clears only its own key.
    store.clear_login_failures(&pair).await.unwrap();
    store.clear_login_failures("never failed").await.unwrap();
    assert_eq!(store.login_failures(&keys).await.unwrap(), [None, Some(LoginFailures { failures: 3, last: at(3) })]);
    // The sweep forgets keys quiet since before its bound, and only those.
    assert_eq!(store.count_login_failures(std::slice::from_ref(&pair), at(20), forget).await.unwrap(), [1]);
    assert_eq!(store.forget_login_failures(at(3)).await.unwrap(), 0, "the bound is exclusive");
    assert_eq!(store.forget_login_failures(at(4)).await.unwrap(), 1);
    assert_eq!(store.login_failures(&keys).await.unwrap(), [Some(LoginFailures { failures: 1, last: at(20) }), None]);
    // Keys are compared exactly, whatever they hold.
    let odd = ["password Alice 192.0.2.1".to_owned(), "password alice ::1".to_owned(), "x".repeat(300)];
    assert_eq!(store.count_login_failures(&odd, at(21), forget).await.unwrap(), [1, 1, 1]);
    assert_eq!(store.login_failures(std::slice::from_ref(&pair)).await.unwrap()[0].unwrap().failures, 1);
}

pub async fn totp_steps_are_spent_once(store: &dyn MetadataStore) {
    let alice = PrincipalId::parse("alice").unwrap();
    let bob = PrincipalId::parse("bob").unwrap();
    let spend = |who: &PrincipalId, factor: &str, step: u64| {
        let (who, factor) = (who.clone(), factor.to_owned());
        async move { store.spend_totp_step(&who, &factor, step).await.unwrap() }
    };
    assert!(spend(&alice, "f1", 100).await, "a first step is spent");
    assert!(!spend(&alice, "f1", 100).await, "the same step again is refused");
    assert!(!spend(&alice, "f1", 99).await, "an earlier step is refused");
    assert!(spend(&bob, "f1", 100).await, "steps are per principal");
    assert!(spend(&alice, "f1", 101).await, "a later step is spent");
    for step in [102u64, 103, 104] {
        let (first, second) = tokio::join!(spend(&alice, "f1", step), spend(&alice, "f1", step));
        assert_eq!([first, second].iter().filter(|won| **won).count(), 1, "step {step}");
    }
    // A new second factor's codes start afresh; the old factor's are then refused.
    assert!(spend(&alice, "f2", 104).await, "a new factor spends even a step the old one spent");
    assert!(!spend(&alice, "f2", 104).await);
    assert!(!spend(&alice, "f2", 103).await);
    let (first, second) = tokio::join!(spend(&alice, "f3", 50), spend(&alice, "f3", 50));
    assert_eq!([first, second].iter().filter(|won| **won).count(), 1, "a new factor's first step races once");
    assert!(spend(&alice, "f3", u64::MAX >> 2).await);
    assert!(!spend(&alice, "f3", 105).await);
}
