//! Registration, login, lockout, access and refresh tokens.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use modelforge_core::{Actor, NewUser, SessionStore, StoreError, UserId, UserRole};
use modelforge_store::{LockoutPolicy, StoreOptions};
use serde_json::json;

use crate::common::{Factory, SECRET, b64url, new_user, options, password_of, unix_now};

fn invalid_token_reason(store: &dyn SessionStore, token: &str) -> String {
    match store.verify_token(token) {
        Err(StoreError::InvalidToken { reason }) => reason,
        other => panic!("expected InvalidToken for {token}, got {other:?}"),
    }
}

fn refresh_refusal(store: &dyn SessionStore, token: &str) -> String {
    match store.refresh(token) {
        Err(StoreError::InvalidToken { reason }) => reason,
        other => panic!("expected the refresh to be refused, got {other:?}"),
    }
}

/// A token with arbitrary claims, signed with `secret` using `alg`.
fn craft(secret: &[u8], alg: Algorithm, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn claims(actor: &Actor, exp: u64) -> serde_json::Value {
    json!({
        "sub": actor.user_id.to_string(),
        "role": actor.role.as_str(),
        "iat": unix_now() - 60,
        "exp": exp,
        "iss": "modelforge",
        "aud": "modelforge",
        "ver": 0,
    })
}

pub fn the_first_user_is_admin_and_later_ones_cannot_claim_admin(new_store: Factory) {
    let t = new_store();
    let first = t.store.create_user(&new_user("first", "first password")).unwrap();
    assert_eq!(first.role, UserRole::Admin, "the first user is an admin even when asking for user");
    let second = t.store.create_user(&new_user("second", "second password")).unwrap();
    assert_eq!(second.role, UserRole::User);
    let claim = NewUser { role: UserRole::Admin, ..new_user("third", "third password") };
    assert!(matches!(t.store.create_user(&claim), Err(StoreError::PermissionDenied { .. })));
    assert_eq!(t.count_rows("users"), 2);
}

pub fn usernames_are_unique_regardless_of_case(new_store: Factory) {
    let t = new_store();
    t.register("Lina");
    let err = t.store.create_user(&new_user("lINA", "another password")).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(t.count_rows("users"), 1);
    // Login ignores case too, and the name keeps the spelling it was registered with.
    let user = t.store.login("LINA", &password_of("Lina")).unwrap();
    assert_eq!(user.username, "Lina");
}

pub fn bad_usernames_passwords_and_emails_are_invalid_input(new_store: Factory) {
    let t = new_store();
    let cases = [
        (new_user("ab", "long enough"), "username"),
        (new_user(&"x".repeat(33), "long enough"), "username"),
        (new_user("robert'); DROP TABLE users;--", "long enough"), "username"),
        (new_user("lina", "short"), "password"),
        (new_user("lina", "password1"), "password"),
        (new_user("lina", "IloveYou"), "password"),
        (NewUser { email: Some("not-an-email".into()), ..new_user("lina", "long enough") }, "email"),
        (NewUser { email: Some("a\0b@example.org".into()), ..new_user("lina", "long enough") }, "email"),
        (
            NewUser {
                email: Some(format!("{}@example.org", "e".repeat(250))),
                ..new_user("lina", "long enough")
            },
            "email",
        ),
    ];
    for (user, expected) in cases {
        match t.store.create_user(&user) {
            Err(StoreError::InvalidInput { field, reason }) => {
                assert_eq!(field, expected, "{user:?}");
                assert!(!reason.contains(&user.password), "the password is never echoed: {reason}");
            }
            other => panic!("expected InvalidInput for {user:?}, got {other:?}"),
        }
    }
    assert_eq!(t.count_rows("users"), 0, "rejected registrations write nothing");
    let with_email = NewUser { email: Some("lina@example.org".into()), ..new_user("lina", "long enough") };
    assert_eq!(t.store.create_user(&with_email).unwrap().email.as_deref(), Some("lina@example.org"));
}

pub fn wrong_password_and_unknown_user_give_the_same_error(new_store: Factory) {
    let t = new_store();
    t.register("lina");
    let wrong = t.store.login("lina", "not the password").unwrap_err();
    let unknown = t.store.login("nobody", "not the password").unwrap_err();
    assert!(matches!(wrong, StoreError::InvalidCredentials), "{wrong:?}");
    assert!(matches!(unknown, StoreError::InvalidCredentials), "{unknown:?}");
    assert_eq!(wrong.to_string(), unknown.to_string());
    let empty = t.store.login("lina", "").unwrap_err();
    assert!(matches!(empty, StoreError::InvalidCredentials), "{empty:?}");
}

/// Unknown usernames must cost an argon2 verification too, or response times reveal which
/// names exist. Without the dummy verification the unknown-user path is a single indexed
/// query, orders of magnitude faster. Both paths are compared with one argon2id verification
/// at the store's parameters measured here, not with each other: a wrong password also records
/// the failed attempt, and a database commit's latency (an fsync on a busy PostgreSQL) would
/// make a direct comparison flaky without saying anything about the hashing.
pub fn unknown_users_take_about_as_long_as_wrong_passwords(new_store: Factory) {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
    let t = new_store();
    t.register("lina");
    let fastest = |f: &dyn Fn()| {
        // Three tries each: the account locks after five failed logins.
        (0..3)
            .map(|_| {
                let start = std::time::Instant::now();
                f();
                start.elapsed()
            })
            .min()
            .unwrap()
    };
    let params = argon2::Params::new(19_456, 2, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
    let hash = argon.hash_password(b"reference", &salt).unwrap();
    let verification = || fastest(&|| assert!(argon.verify_password(b"other", &hash).is_err()));
    // The reference is measured before, between and after the logins, and its fastest kept: one
    // burst of the other tests' work must not inflate it (a CI run measured 140 ms as the
    // fastest of three verifications in a row, then 17 ms for an unknown user's login).
    let mut one_verification = verification();
    let wrong_password = fastest(&|| assert!(t.store.login("lina", "wrong password").is_err()));
    one_verification = one_verification.min(verification());
    let unknown_user = fastest(&|| assert!(t.store.login("nobody", "wrong password").is_err()));
    one_verification = one_verification.min(verification());
    // A quarter, not a half: other tests run on the same two cores at the same time, and the
    // path this guards against (no verification at all) is a hundred times faster.
    for (path, took) in [("unknown user", unknown_user), ("wrong password", wrong_password)] {
        assert!(
            took * 4 >= one_verification,
            "{path} took {took:?}, less than a quarter of one argon2 verification ({one_verification:?})"
        );
    }
}

pub fn login_records_the_time_and_never_returns_the_hash(new_store: Factory) {
    let t = new_store();
    let (registered, actor) = t.register("lina");
    assert_eq!(registered.last_login, None);
    let user = t.store.login("lina", &password_of("lina")).unwrap();
    let last_login = user.last_login.expect("login sets last_login");
    assert!(last_login >= registered.created_at);
    assert_eq!(t.store.current_user(&actor).unwrap().last_login, Some(last_login));
    assert!(!format!("{user:?}").contains("argon2"), "the hash never leaves the store");
}

pub fn five_failures_lock_the_account_with_growing_waits(new_store: Factory) {
    let t = new_store();
    t.register("lina");
    let mut quick = options();
    quick.lockout = LockoutPolicy {
        max_failures: 5,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
    };
    let store = t.reopen(quick);
    for _ in 0..4 {
        assert!(matches!(store.login("lina", "wrong password"), Err(StoreError::InvalidCredentials)));
    }
    let locked = store.login("lina", "wrong password").unwrap_err();
    match &locked {
        StoreError::AccountLocked { failed_attempts: 5, retry_after_secs: 1, .. } => {}
        other => panic!("expected a 1 s lock after 5 failures, got {other:?}"),
    }
    assert!(locked.to_string().contains("try again in 1 s"), "{locked}");
    // While locked even the right password is refused, without being checked.
    assert!(matches!(store.login("lina", &password_of("lina")), Err(StoreError::AccountLocked { .. })));

    std::thread::sleep(Duration::from_millis(1100));
    match store.login("lina", "wrong again") {
        Err(StoreError::AccountLocked { failed_attempts: 6, retry_after_secs: 2, .. }) => {}
        other => panic!("expected the wait to double, got {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(2100));
    store.login("lina", &password_of("lina")).expect("the right password works once the wait is over");
    assert!(
        matches!(store.login("lina", "wrong password"), Err(StoreError::InvalidCredentials)),
        "a successful login resets the count"
    );
}

pub fn issued_tokens_verify_to_the_same_actor(new_store: Factory) {
    let t = new_store();
    let (_, actor) = t.register("lina");
    let token = t.store.issue_token(&actor).unwrap();
    assert_eq!(t.store.verify_token(&token).unwrap(), actor);
    // The role comes from the store, not from what the caller claims.
    let claimed_admin = Actor { role: UserRole::Admin, ..actor };
    let (_, second) = t.register("second");
    let token = t.store.issue_token(&Actor { role: UserRole::Admin, ..second }).unwrap();
    assert_eq!(t.store.verify_token(&token).unwrap().role, UserRole::User);
    assert_eq!(claimed_admin.user_id, actor.user_id);
}

pub fn tampered_tokens_are_rejected(new_store: Factory) {
    let t = new_store();
    let (_, admin) = t.register("admin");
    let (_, user) = t.register("lina");
    let token = t.store.issue_token(&user).unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();

    // One character of the signature flipped (the first: every bit of it is significant).
    let mut sig = signature.to_owned();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    sig.replace_range(0..1, flipped);
    let reason = invalid_token_reason(t.store.as_ref(), &format!("{signed}.{sig}"));
    assert!(reason.contains("signature"), "{reason}");

    // The payload swapped for one claiming to be the admin, original signature kept.
    let header = signed.split('.').next().unwrap();
    let forged = b64url(claims(&admin, unix_now() + 3600).to_string().as_bytes());
    invalid_token_reason(t.store.as_ref(), &format!("{header}.{forged}.{signature}"));
    invalid_token_reason(t.store.as_ref(), signed);
    invalid_token_reason(t.store.as_ref(), "garbage");
}

pub fn expired_tokens_are_rejected(new_store: Factory) {
    let t = new_store();
    let (_, actor) = t.register("lina");
    let past = craft(SECRET, Algorithm::HS256, &claims(&actor, unix_now() - 1));
    assert!(invalid_token_reason(t.store.as_ref(), &past).contains("expired"));

    let mut zero = options();
    zero.access_token_ttl = Duration::ZERO;
    let short_lived = t.reopen(zero);
    let token = short_lived.issue_token(&actor).unwrap();
    assert!(invalid_token_reason(short_lived.as_ref(), &token).contains("expired"));

    // The same secret and claims with a future expiry do verify: the rejections above are
    // about time, not about crafting.
    let future = craft(SECRET, Algorithm::HS256, &claims(&actor, unix_now() + 60));
    assert_eq!(t.store.verify_token(&future).unwrap(), actor);
}

pub fn unsigned_and_other_algorithm_tokens_are_rejected(new_store: Factory) {
    let t = new_store();
    let (_, actor) = t.register("lina");
    let payload = b64url(claims(&actor, unix_now() + 3600).to_string().as_bytes());
    for alg in ["none", "None", "NONE"] {
        let header = b64url(json!({ "alg": alg, "typ": "JWT" }).to_string().as_bytes());
        invalid_token_reason(t.store.as_ref(), &format!("{header}.{payload}."));
    }
    let hs512 = craft(SECRET, Algorithm::HS512, &claims(&actor, unix_now() + 3600));
    assert!(invalid_token_reason(t.store.as_ref(), &hs512).contains("algorithm"));
}

pub fn tokens_from_another_secret_issuer_or_audience_are_rejected(new_store: Factory) {
    let t = new_store();
    let (_, actor) = t.register("lina");
    let foreign = t.reopen(StoreOptions::with_secret(vec![9; 32])).issue_token(&actor).unwrap();
    assert!(invalid_token_reason(t.store.as_ref(), &foreign).contains("signature"));

    let mut wrong_issuer = claims(&actor, unix_now() + 3600);
    wrong_issuer["iss"] = json!("someone-else");
    invalid_token_reason(t.store.as_ref(), &craft(SECRET, Algorithm::HS256, &wrong_issuer));
    let mut wrong_audience = claims(&actor, unix_now() + 3600);
    wrong_audience["aud"] = json!("another-api");
    invalid_token_reason(t.store.as_ref(), &craft(SECRET, Algorithm::HS256, &wrong_audience));
    for claim in ["exp", "sub", "role", "iat", "ver"] {
        let mut missing = claims(&actor, unix_now() + 3600);
        missing.as_object_mut().unwrap().remove(claim);
        invalid_token_reason(t.store.as_ref(), &craft(SECRET, Algorithm::HS256, &missing));
    }
}

pub fn a_valid_token_for_a_user_of_another_store_is_rejected(new_store: Factory) {
    let t = new_store();
    let stranger = Actor { user_id: UserId::new(), role: UserRole::Admin };
    let token = craft(SECRET, Algorithm::HS256, &claims(&stranger, unix_now() + 3600));
    assert!(invalid_token_reason(t.store.as_ref(), &token).contains("no longer exists"));
}

pub fn refresh_tokens_rotate_and_reuse_revokes_the_family(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let first = t.store.issue_tokens(&lina).unwrap();
    let other_login = t.store.issue_tokens(&lina).unwrap();
    assert!(!format!("{first:?}").contains(&first.refresh_token), "Debug hides tokens");
    assert_eq!(t.count(&format!("refresh_tokens WHERE token_hash = '{}'", first.refresh_token)), 0);
    assert_eq!(t.count("refresh_tokens"), 2, "only hashes are stored");
    let ttl = first.access_expires_at - chrono::Utc::now();
    assert!((14 * 60..=15 * 60).contains(&ttl.num_seconds()), "{ttl}");
    assert!(first.refresh_expires_at - chrono::Utc::now() > chrono::Duration::days(29));

    let second = t.store.refresh(&first.refresh_token).unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(t.store.verify_token(&second.access_token).unwrap(), lina);
    let third = t.store.refresh(&second.refresh_token).unwrap();

    // The first token again: a copy is in someone's hands, so the whole family goes.
    assert!(refresh_refusal(t.store.as_ref(), &first.refresh_token).contains("already used"));
    assert!(refresh_refusal(t.store.as_ref(), &third.refresh_token).contains("revoked"));
    // Another login's family is untouched.
    t.store.refresh(&other_login.refresh_token).unwrap();
    assert!(refresh_refusal(t.store.as_ref(), "mfr_not-a-token").contains("unknown"));
    assert!(refresh_refusal(t.store.as_ref(), &"x".repeat(10_000)).contains("too long"));
}

pub fn logout_revokes_the_refresh_token(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let pair = t.store.issue_tokens(&lina).unwrap();
    let rotated = t.store.refresh(&pair.refresh_token).unwrap();
    t.store.logout(&rotated.refresh_token).unwrap();
    assert!(refresh_refusal(t.store.as_ref(), &rotated.refresh_token).contains("revoked"));
    assert!(matches!(t.store.logout("mfr_unknown"), Err(StoreError::InvalidToken { .. })));
}

pub fn expired_refresh_tokens_are_refused(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let mut instant = options();
    instant.refresh_token_ttl = Duration::ZERO;
    let store = t.reopen(instant);
    let pair = store.issue_tokens(&lina).unwrap();
    assert!(refresh_refusal(store.as_ref(), &pair.refresh_token).contains("expired"));
}

pub fn changing_the_password_revokes_every_token(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let pair = t.store.issue_tokens(&lina).unwrap();
    let wrong = t.store.change_password(&lina, "not my password", "a new passphrase");
    assert!(matches!(wrong, Err(StoreError::InvalidCredentials)), "{wrong:?}");
    let common = t.store.change_password(&lina, &password_of("lina"), "sunshine");
    assert!(matches!(common, Err(StoreError::InvalidInput { field: "password", .. })), "{common:?}");
    t.store.verify_token(&pair.access_token).expect("failed changes revoke nothing");

    t.store.change_password(&lina, &password_of("lina"), "a new passphrase").unwrap();
    assert!(invalid_token_reason(t.store.as_ref(), &pair.access_token).contains("revoked"));
    assert!(refresh_refusal(t.store.as_ref(), &pair.refresh_token).contains("revoked"));
    assert!(matches!(t.store.login("lina", &password_of("lina")), Err(StoreError::InvalidCredentials)));
    let user = t.store.login("lina", "a new passphrase").unwrap();
    let fresh = t.store.issue_token(&user.actor()).unwrap();
    assert_eq!(t.store.verify_token(&fresh).unwrap(), lina);
}

pub fn disabled_users_cannot_log_in_refresh_or_use_tokens(new_store: Factory) {
    let t = new_store();
    let (_, admin) = t.register("admin");
    let (_, lina) = t.register("lina");
    let pair = t.store.issue_tokens(&lina).unwrap();
    let disabled = t.store.set_user_disabled(&admin, lina.user_id, true).unwrap();
    assert!(disabled.disabled);

    assert!(invalid_token_reason(t.store.as_ref(), &pair.access_token).contains("disabled"));
    assert!(matches!(t.store.refresh(&pair.refresh_token), Err(StoreError::InvalidToken { .. })));
    let login = t.store.login("lina", &password_of("lina")).unwrap_err();
    assert!(matches!(login, StoreError::AccountDisabled { .. }), "{login:?}");
    assert!(
        matches!(t.store.login("lina", "wrong password"), Err(StoreError::InvalidCredentials)),
        "a guesser learns nothing"
    );
    assert!(matches!(t.store.issue_tokens(&lina), Err(StoreError::PermissionDenied { .. })));

    t.store.set_user_disabled(&admin, lina.user_id, false).unwrap();
    t.store.login("lina", &password_of("lina")).unwrap();
}

pub fn only_admins_administer_and_the_last_admin_stays(new_store: Factory) {
    let t = new_store();
    let (_, admin) = t.register("admin");
    let (_, lina) = t.register("lina");
    let (_, bob) = t.register("bob");
    let page = modelforge_core::Page::default();
    let forged = Actor { role: UserRole::Admin, ..lina };
    for actor in [lina, forged] {
        assert!(matches!(t.store.list_users(&actor, page), Err(StoreError::PermissionDenied { .. })));
        assert!(matches!(
            t.store.set_user_role(&actor, lina.user_id, UserRole::Admin),
            Err(StoreError::PermissionDenied { .. })
        ));
        assert!(matches!(
            t.store.set_user_disabled(&actor, bob.user_id, true),
            Err(StoreError::PermissionDenied { .. })
        ));
        assert!(matches!(t.store.delete_user(&actor, bob.user_id), Err(StoreError::PermissionDenied { .. })));
        assert!(matches!(
            t.store.revoke_tokens(&actor, bob.user_id),
            Err(StoreError::PermissionDenied { .. })
        ));
    }
    assert_eq!(t.store.current_user(&lina).unwrap().role, UserRole::User, "nothing changed");
    assert_eq!(t.count_rows("users"), 3);

    let names: Vec<String> =
        t.store.list_users(&admin, page).unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["admin", "lina", "bob"]);
    assert_eq!(
        t.store.list_users(&admin, modelforge_core::Page { offset: 1, limit: 1 }).unwrap()[0].username,
        "lina"
    );

    for refused in [
        t.store.set_user_role(&admin, admin.user_id, UserRole::User).map(drop),
        t.store.set_user_disabled(&admin, admin.user_id, true).map(drop),
        t.store.delete_user(&admin, admin.user_id),
    ] {
        assert!(
            matches!(refused, Err(StoreError::PermissionDenied { ref action }) if action.contains("last")),
            "{refused:?}"
        );
    }
    let promoted = t.store.set_user_role(&admin, lina.user_id, UserRole::Admin).unwrap();
    assert_eq!(promoted.role, UserRole::Admin);
    let token = t.store.issue_token(&lina).unwrap();
    assert_eq!(t.store.verify_token(&token).unwrap().role, UserRole::Admin);
    t.store.set_user_role(&lina, admin.user_id, UserRole::User).unwrap();
    t.store.delete_user(&lina, bob.user_id).unwrap();
    assert_eq!(t.count_rows("users"), 2);
    assert!(matches!(
        t.store.delete_user(&lina, bob.user_id),
        Err(StoreError::NotFound { what: "user", .. })
    ));
}

pub fn admins_revoke_other_users_tokens(new_store: Factory) {
    let t = new_store();
    let (_, admin) = t.register("admin");
    let (_, lina) = t.register("lina");
    let pair = t.store.issue_tokens(&lina).unwrap();
    t.store.revoke_tokens(&admin, lina.user_id).unwrap();
    assert!(invalid_token_reason(t.store.as_ref(), &pair.access_token).contains("revoked"));
    assert!(refresh_refusal(t.store.as_ref(), &pair.refresh_token).contains("revoked"));
    let fresh = t.store.issue_tokens(&lina).unwrap();
    assert_eq!(t.store.verify_token(&fresh.access_token).unwrap(), lina);
}
