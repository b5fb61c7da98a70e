//! Input rules every backend enforces before touching the database.
//!
//! Values are checked up front so a rejected call writes nothing and the caller gets a
//! [`StoreError::InvalidInput`] naming the field, instead of a database error.

use modelforge_core::StoreError;

/// Shortest username, in characters.
pub const USERNAME_MIN_CHARS: usize = 3;
/// Longest username, in characters.
pub const USERNAME_MAX_CHARS: usize = 32;
/// Shortest password, in characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest password, in bytes: bounds the work one login attempt can cause.
pub const PASSWORD_MAX_BYTES: usize = 1024;
/// Longest email address, in bytes (RFC 5321 path limit).
pub const EMAIL_MAX_BYTES: usize = 254;
/// Longest session title, in characters.
pub const TITLE_MAX_CHARS: usize = 200;
/// Largest message content, in bytes (1 MiB).
pub const MESSAGE_MAX_BYTES: usize = 1 << 20;
/// Largest memory content, in bytes (4 KiB).
pub const MEMORY_MAX_BYTES: usize = 4 << 10;

fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidInput { field, reason: reason.into() }
}

/// 3–32 characters of `A-Z a-z 0-9 _ . -`.
pub(crate) fn check_username(username: &str) -> Result<(), StoreError> {
    let chars = username.chars().count();
    if !(USERNAME_MIN_CHARS..=USERNAME_MAX_CHARS).contains(&chars) {
        return Err(invalid(
            "username",
            format!("must be {USERNAME_MIN_CHARS} to {USERNAME_MAX_CHARS} characters long, got {chars}"),
        ));
    }
    if let Some(bad) = username.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(invalid(
            "username",
            format!("may contain only letters A-Z, digits, `_`, `.` and `-`, not {bad:?}"),
        ));
    }
    Ok(())
}

/// At least 8 characters, at most 1 KiB. The password itself never appears in the error.
pub(crate) fn check_password(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(invalid("password", format!("must be at least {PASSWORD_MIN_CHARS} characters long")));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(invalid("password", format!("must be at most {PASSWORD_MAX_BYTES} bytes long")));
    }
    Ok(())
}

/// A plausible address: one `@` with text on both sides, no whitespace, bounded length.
pub(crate) fn check_email(email: Option<&str>) -> Result<(), StoreError> {
    let Some(email) = email else { return Ok(()) };
    if email.len() > EMAIL_MAX_BYTES {
        return Err(invalid("email", format!("must be at most {EMAIL_MAX_BYTES} bytes long")));
    }
    let plausible = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'))
        && !email.chars().any(char::is_whitespace);
    if !plausible {
        return Err(invalid("email", format!("`{email}` is not an email address")));
    }
    Ok(())
}

/// At most 200 characters.
pub(crate) fn check_title(title: &str) -> Result<(), StoreError> {
    let chars = title.chars().count();
    if chars > TITLE_MAX_CHARS {
        return Err(invalid(
            "title",
            format!("must be at most {TITLE_MAX_CHARS} characters long, got {chars}"),
        ));
    }
    Ok(())
}

/// At most 1 MiB. Empty content is allowed: a model may legitimately reply with nothing.
pub(crate) fn check_message(content: &str) -> Result<(), StoreError> {
    if content.len() > MESSAGE_MAX_BYTES {
        return Err(invalid(
            "message content",
            format!("must be at most {MESSAGE_MAX_BYTES} bytes, got {}", content.len()),
        ));
    }
    Ok(())
}

/// Not blank, at most 4 KiB.
pub(crate) fn check_memory(content: &str) -> Result<(), StoreError> {
    if content.trim().is_empty() {
        return Err(invalid("memory content", "must not be empty"));
    }
    if content.len() > MEMORY_MAX_BYTES {
        return Err(invalid(
            "memory content",
            format!("must be at most {MEMORY_MAX_BYTES} bytes, got {}", content.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<(), StoreError>) -> &'static str {
        match result {
            Err(StoreError::InvalidInput { field, .. }) => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn usernames() {
        for ok in ["abc", "Lina_99", "a.b-c", &"x".repeat(32)] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", &"x".repeat(33), "with space", "emoji😀", "semi;colon", "ünï"] {
            assert_eq!(field_of(check_username(bad)), "username", "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(check_password("12345678").is_ok());
        assert!(check_password("pässwörd").is_ok(), "counted in characters, not bytes");
        assert_eq!(field_of(check_password("1234567")), "password");
        assert_eq!(field_of(check_password(&"x".repeat(PASSWORD_MAX_BYTES + 1))), "password");
        let err = check_password("short").unwrap_err().to_string();
        assert!(!err.contains("short"), "the password must not be echoed: {err}");
    }

    #[test]
    fn emails() {
        assert!(check_email(None).is_ok());
        assert!(check_email(Some("lina@example.org")).is_ok());
        for bad in ["", "lina", "@example.org", "lina@", "a@b@c", "li na@example.org"] {
            assert_eq!(field_of(check_email(Some(bad))), "email", "{bad}");
        }
    }

    #[test]
    fn content_limits() {
        assert!(check_title(&"é".repeat(TITLE_MAX_CHARS)).is_ok());
        assert_eq!(field_of(check_title(&"t".repeat(TITLE_MAX_CHARS + 1))), "title");
        assert!(check_message("").is_ok());
        assert!(check_message(&"m".repeat(MESSAGE_MAX_BYTES)).is_ok());
        assert_eq!(field_of(check_message(&"m".repeat(MESSAGE_MAX_BYTES + 1))), "message content");
        assert_eq!(field_of(check_memory("  ")), "memory content");
        assert!(check_memory(&"m".repeat(MEMORY_MAX_BYTES)).is_ok());
        assert_eq!(field_of(check_memory(&"m".repeat(MEMORY_MAX_BYTES + 1))), "memory content");
    }
}
