//! API keys: long-lived bearer keys for clients that cannot refresh an access token. Shown
//! once, stored as a hash, scoped to their owner, and ended by revocation, by revoking every
//! token of the user, or with the user; a password change leaves them alone.

use modelforge_core::{ApiKey, ApiKeyId, UserRole};
use modelforge_store::limits::API_KEY_NAME_MAX_CHARS;
use sha2::{Digest, Sha256};

use crate::common::{
    Factory, assert_denied, assert_invalid, assert_invalid_token, assert_not_found, options, password_of,
};

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn api_keys_verify_to_their_owner_with_the_current_role(new_store: Factory) {
    let t = new_store();
    let (_, admin) = t.register("admin");
    let (_, lina) = t.register("lina");
    let created = t.store.create_api_key(&lina, "laptop editor").unwrap();
    let (key, secret) = (&created.api_key, created.secret.as_str());
    assert!(secret.starts_with(ApiKey::KEY_PREFIX) && secret.len() >= ApiKey::KEY_PREFIX.len() + 32);
    assert!(secret.starts_with(&key.prefix) && key.prefix.len() < secret.len() / 2, "{}", key.prefix);
    assert_eq!((key.user_id, key.name.as_str(), key.last_used_at), (lina.user_id, "laptop editor", None));
    assert!(!format!("{created:?}").contains(&secret[key.prefix.len()..]), "Debug hides the secret");

    // The database holds the key's hash, never the key.
    assert_eq!(t.count(&format!("api_keys WHERE key_hash = '{}'", sha256_hex(secret))), 1);
    let anywhere =
        format!("api_keys WHERE key_hash = '{secret}' OR name = '{secret}' OR prefix = '{secret}'");
    assert_eq!(t.count(&anywhere), 0);
    assert_eq!(t.store.list_api_keys(&lina).unwrap(), vec![key.clone()]);

    assert_eq!(t.store.verify_api_key(secret).unwrap(), lina);
    // A role change applies to keys already made.
    t.store.set_user_role(&admin, lina.user_id, UserRole::Admin).unwrap();
    assert_eq!(t.store.verify_api_key(secret).unwrap().role, UserRole::Admin);

    // Each key is distinct and listed with its owner only, oldest first.
    let second = t.store.create_api_key(&lina, "ci").unwrap();
    assert_ne!(second.secret, secret);
    assert_eq!(t.store.verify_api_key(&second.secret).unwrap().user_id, lina.user_id);
    let names: Vec<String> = t.store.list_api_keys(&lina).unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["laptop editor", "ci"]);
    assert!(t.store.list_api_keys(&admin).unwrap().is_empty());
    assert_eq!(t.reopen(options()).verify_api_key(secret).unwrap().user_id, lina.user_id, "keys are stored");
}

pub fn a_keys_last_use_is_recorded_at_most_once_a_minute(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let created = t.store.create_api_key(&lina, "editor").unwrap();
    let last_use = || t.store.list_api_keys(&lina).unwrap()[0].last_used_at;
    assert_eq!(last_use(), None);
    t.store.verify_api_key(&created.secret).unwrap();
    let first = last_use().expect("the use is recorded");
    assert!(first >= created.api_key.created_at);
    std::thread::sleep(std::time::Duration::from_millis(2));
    t.store.verify_api_key(&created.secret).unwrap();
    assert_eq!(last_use(), Some(first), "not written again within the minute");

    // Once the recorded use is older than a minute, the next use is written.
    t.execute("UPDATE api_keys SET last_used_at = last_used_at - 120000000");
    let moved = last_use().unwrap();
    t.store.verify_api_key(&created.secret).unwrap();
    assert!(last_use().unwrap() > moved);
}

pub fn unknown_revoked_and_malformed_keys_are_invalid_tokens(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let revoked = t.store.create_api_key(&lina, "old").unwrap();
    let live = t.store.create_api_key(&lina, "live").unwrap();
    t.store.revoke_api_key(&lina, revoked.api_key.id).unwrap();
    assert_invalid_token(t.store.verify_api_key(&revoked.secret));
    assert_not_found(t.store.revoke_api_key(&lina, revoked.api_key.id), "api key");

    let secret = live.secret.as_str();
    let tokens = t.store.issue_tokens(&lina).unwrap();
    let bad = [
        String::new(),
        ApiKey::KEY_PREFIX.to_owned(),
        format!("{}{}", ApiKey::KEY_PREFIX, "0".repeat(64)),
        secret[ApiKey::KEY_PREFIX.len()..].to_owned(),
        format!("{secret}x"),
        secret[..secret.len() - 1].to_owned(),
        secret.to_uppercase(),
        format!("Bearer {secret}"),
        format!(" {secret}"),
        format!("{}{}", ApiKey::KEY_PREFIX, "a".repeat(100_000)),
        sha256_hex(secret),
        tokens.access_token,
        tokens.refresh_token,
        "'; DELETE FROM api_keys; --".to_owned(),
    ];
    for key in &bad {
        assert_invalid_token(t.store.verify_api_key(key));
    }
    assert_eq!(t.store.verify_api_key(secret).unwrap(), lina, "the live key still works");
    assert_eq!(t.count_rows("api_keys"), 1);
}

pub fn revoking_every_token_ends_api_keys_but_a_new_password_does_not(new_store: Factory) {
    let t = new_store();
    let (_, admin) = t.register("admin");
    let (_, lina) = t.register("lina");
    let (_, bob) = t.register("bob");
    let key = t.store.create_api_key(&lina, "editor").unwrap();

    t.store.change_password(&lina, &password_of("lina"), "a brand new password").unwrap();
    assert_eq!(t.store.verify_api_key(&key.secret).unwrap(), lina, "scripts survive a new password");
    assert_eq!(t.store.list_api_keys(&lina).unwrap().len(), 1);

    // Another user may not end them.
    assert_denied(t.store.revoke_tokens(&bob, lina.user_id));
    assert_eq!(t.store.verify_api_key(&key.secret).unwrap(), lina);

    t.store.revoke_tokens(&lina, lina.user_id).unwrap();
    assert_invalid_token(t.store.verify_api_key(&key.secret));
    assert!(t.store.list_api_keys(&lina).unwrap().is_empty());

    let bobs = t.store.create_api_key(&bob, "bob's").unwrap();
    let again = t.store.create_api_key(&lina, "again").unwrap();
    t.store.revoke_tokens(&admin, lina.user_id).unwrap();
    assert_invalid_token(t.store.verify_api_key(&again.secret));
    assert_eq!(t.store.verify_api_key(&bobs.secret).unwrap(), bob, "other users keep theirs");
}

pub fn disabled_users_keys_stop_verifying_until_enabled(new_store: Factory) {
    let t = new_store();
    let (_, admin) = t.register("admin");
    let (_, lina) = t.register("lina");
    let key = t.store.create_api_key(&lina, "editor").unwrap();
    t.store.set_user_disabled(&admin, lina.user_id, true).unwrap();
    assert_invalid_token(t.store.verify_api_key(&key.secret));
    assert_denied(t.store.create_api_key(&lina, "another"));
    assert_eq!(t.count_rows("api_keys"), 1);
    t.store.set_user_disabled(&admin, lina.user_id, false).unwrap();
    assert_eq!(t.store.verify_api_key(&key.secret).unwrap(), lina);
}

pub fn another_users_key_is_not_found_like_a_missing_one(new_store: Factory) {
    let t = new_store();
    // Alice is the first user, so an admin: not even an admin revokes one key of another user
    // by id (`revoke_tokens` ends them all).
    let (_, alice) = t.register("alice");
    let (_, bob) = t.register("bob");
    let bobs = t.store.create_api_key(&bob, "bob's").unwrap();
    let missing = ApiKeyId::new();
    for id in [bobs.api_key.id, missing] {
        assert_not_found(t.store.revoke_api_key(&alice, id), "api key");
    }
    let text = |id: ApiKeyId| {
        let err = t.store.revoke_api_key(&alice, id).unwrap_err().to_string();
        err.replace(&id.to_string(), "ID")
    };
    assert_eq!(text(bobs.api_key.id), text(missing));
    assert!(t.store.list_api_keys(&alice).unwrap().is_empty());
    assert_eq!(t.store.list_api_keys(&bob).unwrap(), vec![bobs.api_key.clone()]);
    assert_eq!(t.store.verify_api_key(&bobs.secret).unwrap(), bob);
}

pub fn api_key_names_are_checked(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let too_long = "n".repeat(API_KEY_NAME_MAX_CHARS + 1);
    for bad in ["", "   ", "\t", "two\nlines", "a\0b", too_long.as_str()] {
        assert_invalid(t.store.create_api_key(&lina, bad), "name");
    }
    assert_eq!(t.count_rows("api_keys"), 0, "nothing was stored");

    let longest = "é".repeat(API_KEY_NAME_MAX_CHARS);
    assert_eq!(t.store.create_api_key(&lina, &longest).unwrap().api_key.name, longest);
    let nasty = "'; DROP TABLE api_keys; -- \" \\ %_ 你好 🎉";
    t.store.create_api_key(&lina, nasty).unwrap();
    let names: Vec<String> = t.store.list_api_keys(&lina).unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, [longest.as_str(), nasty]);
}

pub fn deleting_an_account_deletes_its_keys(new_store: Factory) {
    let t = new_store();
    let (_, admin) = t.register("admin");
    let (_, lina) = t.register("lina");
    let admins = t.store.create_api_key(&admin, "admin's").unwrap();
    let linas = t.store.create_api_key(&lina, "lina's").unwrap();
    t.store.delete_user(&admin, lina.user_id).unwrap();
    assert_eq!(t.count_rows("api_keys"), 1);
    assert_invalid_token(t.store.verify_api_key(&linas.secret));
    assert_eq!(t.store.verify_api_key(&admins.secret).unwrap(), admin);
    assert_not_found(t.store.create_api_key(&lina, "ghost"), "user");
}
