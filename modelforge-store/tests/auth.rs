//! Registration, login and access tokens against a real SQLite file.
#![cfg(feature = "sqlite")]

mod common;

use std::time::Duration;

use common::{SECRET, TestStore, b64url, new_user, password_of, unix_now};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use modelforge_core::{Actor, NewUser, SessionStore, StoreError, UserRole};
use modelforge_store::{SqliteStore, StoreOptions};
use serde_json::json;

fn assert_invalid_token(store: &SqliteStore, token: &str) -> String {
    match store.verify_token(token) {
        Err(StoreError::InvalidToken { reason }) => reason,
        other => panic!("expected InvalidToken for {token}, got {other:?}"),
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
    })
}

#[test]
fn the_first_user_is_admin_and_later_ones_get_their_requested_role() {
    let t = TestStore::new();
    let first = t.store.create_user(&new_user("first", "password1")).unwrap();
    assert_eq!(first.role, UserRole::Admin, "the first user is an admin even when asking for user");
    let second = t.store.create_user(&new_user("second", "password2")).unwrap();
    assert_eq!(second.role, UserRole::User);
    assert_eq!(t.store.current_user(&second.actor()).unwrap().role, UserRole::User);
}

#[test]
fn usernames_are_unique_regardless_of_case() {
    let t = TestStore::new();
    t.register("Lina");
    let err = t.store.create_user(&new_user("lINA", "another password")).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(t.count_rows("users"), 1);
    // Login ignores case too, and the name keeps the spelling it was registered with.
    let user = t.store.login("LINA", &password_of("Lina")).unwrap();
    assert_eq!(user.username, "Lina");
}

#[test]
fn bad_usernames_passwords_and_emails_are_invalid_input() {
    let t = TestStore::new();
    let cases = [
        (new_user("ab", "long enough"), "username"),
        (new_user(&"x".repeat(33), "long enough"), "username"),
        (new_user("robert'); DROP TABLE users;--", "long enough"), "username"),
        (new_user("lina", "short"), "password"),
        (NewUser { email: Some("not-an-email".into()), ..new_user("lina", "long enough") }, "email"),
    ];
    for (user, expected) in cases {
        match t.store.create_user(&user) {
            Err(StoreError::InvalidInput { field, .. }) => assert_eq!(field, expected, "{user:?}"),
            other => panic!("expected InvalidInput for {user:?}, got {other:?}"),
        }
    }
    assert_eq!(t.count_rows("users"), 0, "rejected registrations write nothing");
}

#[test]
fn wrong_password_and_unknown_user_give_the_same_error() {
    let t = TestStore::new();
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
/// query, orders of magnitude faster; the bound below is loose enough for a busy machine.
#[test]
fn unknown_users_take_about_as_long_as_wrong_passwords() {
    let t = TestStore::new();
    t.register("lina");
    let fastest = |username: &str| {
        (0..3)
            .map(|_| {
                let start = std::time::Instant::now();
                assert!(t.store.login(username, "wrong password").is_err());
                start.elapsed()
            })
            .min()
            .unwrap()
    };
    let wrong_password = fastest("lina");
    let unknown_user = fastest("nobody");
    assert!(
        unknown_user * 3 >= wrong_password,
        "unknown user {unknown_user:?} vs wrong password {wrong_password:?}"
    );
}

#[test]
fn login_records_the_time_and_never_returns_the_hash() {
    let t = TestStore::new();
    let (registered, actor) = t.register("lina");
    assert_eq!(registered.last_login, None);
    let user = t.store.login("lina", &password_of("lina")).unwrap();
    let last_login = user.last_login.expect("login sets last_login");
    assert!(last_login >= registered.created_at);
    assert_eq!(t.store.current_user(&actor).unwrap().last_login, Some(last_login));
    assert!(!format!("{user:?}").contains("argon2"), "the hash never leaves the store");
}

#[test]
fn issued_tokens_verify_to_the_same_actor() {
    let t = TestStore::new();
    let (_, actor) = t.register("lina");
    let token = t.store.issue_token(&actor).unwrap();
    assert_eq!(t.store.verify_token(&token).unwrap(), actor);
}

#[test]
fn tampered_tokens_are_rejected() {
    let t = TestStore::new();
    let (_, admin) = t.register("admin");
    let (_, user) = t.register("lina");
    let token = t.store.issue_token(&user).unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();

    // One character of the signature flipped. The first character is used because every bit of
    // it is significant (the last one may carry padding bits that decoders ignore).
    let mut sig = signature.to_owned();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    sig.replace_range(0..1, flipped);
    let reason = assert_invalid_token(&t.store, &format!("{signed}.{sig}"));
    assert!(reason.contains("signature"), "{reason}");

    // The payload swapped for one claiming to be the admin, original signature kept.
    let header = signed.split('.').next().unwrap();
    let forged = b64url(claims(&admin, unix_now() + 3600).to_string().as_bytes());
    assert_invalid_token(&t.store, &format!("{header}.{forged}.{signature}"));

    // Truncated and garbage tokens.
    assert_invalid_token(&t.store, signed);
    assert_invalid_token(&t.store, "garbage");
}

#[test]
fn expired_tokens_are_rejected() {
    let t = TestStore::new();
    let (_, actor) = t.register("lina");

    let past = craft(SECRET, Algorithm::HS256, &claims(&actor, unix_now() - 1));
    let reason = assert_invalid_token(&t.store, &past);
    assert!(reason.contains("expired"), "{reason}");

    // A store whose tokens live zero seconds issues tokens that are already expired.
    let mut options = StoreOptions::with_secret(SECRET.to_vec());
    options.access_token_ttl = Duration::ZERO;
    let short_lived = SqliteStore::open(&t.db_path(), options).unwrap();
    let token = short_lived.issue_token(&actor).unwrap();
    let reason = assert_invalid_token(&short_lived, &token);
    assert!(reason.contains("expired"), "{reason}");

    // The same secret and claims with a future expiry do verify: the rejections above are
    // about time, not about crafting.
    let future = craft(SECRET, Algorithm::HS256, &claims(&actor, unix_now() + 60));
    assert_eq!(t.store.verify_token(&future).unwrap(), actor);
}

#[test]
fn unsigned_and_other_algorithm_tokens_are_rejected() {
    let t = TestStore::new();
    let (_, actor) = t.register("lina");
    let payload = b64url(claims(&actor, unix_now() + 3600).to_string().as_bytes());
    for alg in ["none", "None", "NONE"] {
        let header = b64url(json!({ "alg": alg, "typ": "JWT" }).to_string().as_bytes());
        assert_invalid_token(&t.store, &format!("{header}.{payload}."));
    }
    let hs512 = craft(SECRET, Algorithm::HS512, &claims(&actor, unix_now() + 3600));
    let reason = assert_invalid_token(&t.store, &hs512);
    assert!(reason.contains("algorithm"), "{reason}");
}

#[test]
fn tokens_from_another_secret_issuer_or_audience_are_rejected() {
    let t = TestStore::new();
    let (_, actor) = t.register("lina");

    let other_dir = tempfile::tempdir().unwrap();
    let other = SqliteStore::open(&other_dir.path().join("other.db"), StoreOptions::with_secret(vec![9; 32]))
        .unwrap();
    let foreign = other.issue_token(&actor).unwrap();
    let reason = assert_invalid_token(&t.store, &foreign);
    assert!(reason.contains("signature"), "{reason}");

    let mut wrong_issuer = claims(&actor, unix_now() + 3600);
    wrong_issuer["iss"] = json!("someone-else");
    assert_invalid_token(&t.store, &craft(SECRET, Algorithm::HS256, &wrong_issuer));

    let mut wrong_audience = claims(&actor, unix_now() + 3600);
    wrong_audience["aud"] = json!("another-api");
    assert_invalid_token(&t.store, &craft(SECRET, Algorithm::HS256, &wrong_audience));

    let mut no_expiry = claims(&actor, 0);
    no_expiry.as_object_mut().unwrap().remove("exp");
    assert_invalid_token(&t.store, &craft(SECRET, Algorithm::HS256, &no_expiry));
}

#[test]
fn a_valid_token_for_a_user_of_another_store_is_rejected() {
    let t = TestStore::new();
    let stranger = Actor { user_id: modelforge_core::UserId::new(), role: UserRole::Admin };
    let token = craft(SECRET, Algorithm::HS256, &claims(&stranger, unix_now() + 3600));
    let reason = assert_invalid_token(&t.store, &token);
    assert!(reason.contains("no longer exists"), "{reason}");
}

#[test]
fn a_short_secret_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    for secret in [Vec::new(), vec![1; 31]] {
        let err = SqliteStore::open(&dir.path().join("x.db"), StoreOptions::with_secret(secret)).unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { field: "jwt_secret", .. }), "{err:?}");
    }
}

#[test]
fn b64url_matches_known_vectors() {
    assert_eq!(b64url(b""), "");
    assert_eq!(b64url(b"f"), "Zg");
    assert_eq!(b64url(b"fo"), "Zm8");
    assert_eq!(b64url(b"foo"), "Zm9v");
    assert_eq!(b64url(b"foob"), "Zm9vYg");
    assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
}
