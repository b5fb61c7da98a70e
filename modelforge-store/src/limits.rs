//! Input rules every backend enforces before touching the database.
//!
//! Values are checked up front so a rejected call writes nothing and the caller gets a
//! [`StoreError::InvalidInput`] naming the field, instead of a database error.

use modelforge_core::{Page, Role, StoreError};

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
/// Most dimensions of a memory's embedding.
pub const EMBEDDING_MAX_DIMS: usize = 4096;
/// Largest session summary, in bytes (64 KiB): a summary stands in for many messages in
/// the context window, so it must stay far smaller than they are.
pub const SUMMARY_MAX_BYTES: usize = 64 << 10;
/// Longest session search text, in characters.
pub const SEARCH_MAX_CHARS: usize = 200;
/// Longest model name a session may choose, in characters: room for a Hub repository, a file
/// name and a quantization, as titles have.
pub const MODEL_MAX_CHARS: usize = 200;
/// Longest API key name, in characters.
pub const API_KEY_NAME_MAX_CHARS: usize = 100;

/// The most common passwords (lowercase, one a line, `#` comments), refused at registration
/// and password change whatever their case.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

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

/// At least 8 characters, at most 1 KiB, not one of the most common passwords. The password
/// itself never appears in the error.
pub(crate) fn check_password(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(invalid("password", format!("must be at least {PASSWORD_MIN_CHARS} characters long")));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(invalid("password", format!("must be at most {PASSWORD_MAX_BYTES} bytes long")));
    }
    if is_common_password(password) {
        return Err(invalid("password", "is one of the most commonly used passwords; choose another"));
    }
    Ok(())
}

/// Whether `password`, ignoring case, is on the embedded list of common passwords.
pub fn is_common_password(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON_PASSWORDS.lines().filter(|line| !line.starts_with('#')).any(|common| common == lower)
}

/// PostgreSQL cannot store NUL in text, so no backend accepts it: one behaviour everywhere.
fn check_no_nul(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(invalid(field, "must not contain NUL characters"));
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
    if !plausible || email.chars().any(char::is_control) {
        return Err(invalid("email", format!("{email:?} is not an email address")));
    }
    Ok(())
}

/// At most 200 characters. Empty is allowed: the first user message fills it in.
pub(crate) fn check_title(title: &str) -> Result<(), StoreError> {
    let chars = title.chars().count();
    if chars > TITLE_MAX_CHARS {
        return Err(invalid(
            "title",
            format!("must be at most {TITLE_MAX_CHARS} characters long, got {chars}"),
        ));
    }
    check_no_nul("title", title)
}

/// A title given by renaming: like [`check_title`], but not blank.
pub(crate) fn check_new_title(title: &str) -> Result<(), StoreError> {
    if title.trim().is_empty() {
        return Err(invalid("title", "must not be blank"));
    }
    check_title(title)
}

/// A session's model name: not blank, at most 200 characters. `None` (the server's default)
/// is always allowed.
pub(crate) fn check_model(model: Option<&str>) -> Result<(), StoreError> {
    let Some(model) = model else { return Ok(()) };
    let chars = model.chars().count();
    if model.trim().is_empty() || chars > MODEL_MAX_CHARS {
        return Err(invalid(
            "model",
            format!("must be 1 to {MODEL_MAX_CHARS} characters long and not blank, got {chars}"),
        ));
    }
    check_no_nul("model", model)
}

/// An API key's name: not blank, at most 100 characters, no control characters (it is shown
/// in lists, one line per key).
pub(crate) fn check_api_key_name(name: &str) -> Result<(), StoreError> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > API_KEY_NAME_MAX_CHARS {
        return Err(invalid(
            "name",
            format!("must be 1 to {API_KEY_NAME_MAX_CHARS} characters long and not blank, got {chars}"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "must not contain control characters"));
    }
    Ok(())
}

/// Session search text: not blank, at most 200 characters.
pub(crate) fn check_search(search: &str) -> Result<(), StoreError> {
    let chars = search.chars().count();
    if search.trim().is_empty() || chars > SEARCH_MAX_CHARS {
        return Err(invalid(
            "search",
            format!("must be 1 to {SEARCH_MAX_CHARS} characters long, got {chars}"),
        ));
    }
    check_no_nul("search", search)
}

/// A page of 1 to [`Page::MAX_LIMIT`] items, at an offset the databases can represent.
pub(crate) fn check_page(page: Page) -> Result<(), StoreError> {
    if page.limit == 0 || page.limit > Page::MAX_LIMIT {
        return Err(invalid("limit", format!("must be 1 to {}, got {}", Page::MAX_LIMIT, page.limit)));
    }
    if i64::try_from(page.offset).is_err() {
        return Err(invalid("offset", format!("{} is too large", page.offset)));
    }
    Ok(())
}

/// A confidence from 0 to 1.
pub(crate) fn check_confidence(confidence: f32) -> Result<(), StoreError> {
    if !(0.0..=1.0).contains(&confidence) {
        return Err(invalid("confidence", format!("must be from 0 to 1, got {confidence}")));
    }
    Ok(())
}

/// 1 to 4096 finite values.
pub(crate) fn check_embedding(embedding: &[f32]) -> Result<(), StoreError> {
    if embedding.is_empty() || embedding.len() > EMBEDDING_MAX_DIMS {
        return Err(invalid(
            "embedding",
            format!("must have 1 to {EMBEDDING_MAX_DIMS} dimensions, got {}", embedding.len()),
        ));
    }
    if let Some(index) = embedding.iter().position(|v| !v.is_finite()) {
        return Err(invalid("embedding", format!("value {index} is not a finite number")));
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
    check_no_nul("message content", content)
}

/// System, user or assistant: a stored conversation holds no tool results (they belong to
/// one OpenAI-compatible request), so the stored roles stay the three every version reads.
pub(crate) fn check_message_role(role: Role) -> Result<(), StoreError> {
    match role {
        Role::System | Role::User | Role::Assistant => Ok(()),
        Role::Tool => {
            Err(invalid("message role", "tool messages are not stored (system, user or assistant)"))
        }
    }
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
    check_no_nul("memory content", content)
}

/// Not blank, at most 64 KiB.
pub(crate) fn check_summary(content: &str) -> Result<(), StoreError> {
    if content.trim().is_empty() {
        return Err(invalid("summary content", "must not be empty"));
    }
    if content.len() > SUMMARY_MAX_BYTES {
        return Err(invalid(
            "summary content",
            format!("must be at most {SUMMARY_MAX_BYTES} bytes, got {}", content.len()),
        ));
    }
    check_no_nul("summary content", content)
}

/// At least the one message the summary runs through, and a count the databases can hold.
pub(crate) fn check_covered_messages(covered: u64) -> Result<i64, StoreError> {
    match i64::try_from(covered) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(invalid("covered_messages", format!("must be from 1 to {}, got {covered}", i64::MAX))),
    }
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
        assert!(check_password("correct horse").is_ok());
        assert!(check_password("pässwörd").is_ok(), "counted in characters, not bytes");
        for common in ["12345678", "password1", "PassWord1", "iloveyou", "qwertyuiop"] {
            assert_eq!(field_of(check_password(common)), "password", "{common}");
        }
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
        assert_eq!(field_of(check_message("a\0b")), "message content");
        assert!(check_message_role(Role::Assistant).is_ok());
        assert_eq!(field_of(check_message_role(Role::Tool)), "message role");
        assert_eq!(field_of(check_new_title("  ")), "title");
        assert!(check_title("").is_ok());
        assert!(check_summary(&"s".repeat(SUMMARY_MAX_BYTES)).is_ok());
        for bad in [" \n ".to_owned(), "s".repeat(SUMMARY_MAX_BYTES + 1), "a\0b".to_owned()] {
            assert_eq!(field_of(check_summary(&bad)), "summary content");
        }
        assert_eq!(check_covered_messages(1).unwrap(), 1);
        for bad in [0, u64::MAX] {
            assert_eq!(field_of(check_covered_messages(bad).map(drop)), "covered_messages");
        }
    }

    #[test]
    fn models_and_api_key_names() {
        assert!(check_model(None).is_ok());
        assert!(check_model(Some("bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M")).is_ok());
        assert!(check_model(Some(&"é".repeat(MODEL_MAX_CHARS))).is_ok());
        for bad in ["", "  ", "a\0b", &"m".repeat(MODEL_MAX_CHARS + 1)] {
            assert_eq!(field_of(check_model(Some(bad))), "model", "{bad:?}");
        }
        assert!(check_api_key_name("laptop editor").is_ok());
        assert!(check_api_key_name(&"n".repeat(API_KEY_NAME_MAX_CHARS)).is_ok());
        for bad in ["", " \t ", "two\nlines", "a\0b", &"n".repeat(API_KEY_NAME_MAX_CHARS + 1)] {
            assert_eq!(field_of(check_api_key_name(bad)), "name", "{bad:?}");
        }
    }

    #[test]
    fn the_common_password_list_is_embedded() {
        let listed = COMMON_PASSWORDS.lines().filter(|l| !l.starts_with('#')).count();
        assert!(listed >= 500, "{listed}");
        assert!(is_common_password("Trustno1"));
        assert!(!is_common_password("correct horse battery staple"));
    }

    #[test]
    fn pages_confidences_and_embeddings() {
        assert!(check_page(Page::default()).is_ok());
        assert_eq!(field_of(check_page(Page::first(0))), "limit");
        assert_eq!(field_of(check_page(Page::first(Page::MAX_LIMIT + 1))), "limit");
        assert_eq!(field_of(check_page(Page { offset: u64::MAX, limit: 1 })), "offset");
        assert!(check_confidence(0.5).is_ok());
        assert_eq!(field_of(check_confidence(f32::NAN)), "confidence");
        assert_eq!(field_of(check_confidence(1.5)), "confidence");
        assert!(check_embedding(&[0.1, -2.0]).is_ok());
        assert_eq!(field_of(check_embedding(&[])), "embedding");
        assert_eq!(field_of(check_embedding(&[f32::INFINITY])), "embedding");
    }
}
