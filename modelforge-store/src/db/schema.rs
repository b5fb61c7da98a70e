//! The diesel schema, matching `migrations/sqlite/` and `migrations/postgres/` (the same
//! columns and SQL types on both).
//!
//! Ids are UUID strings; timestamps are integer microseconds since the Unix epoch (UTC).

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        username_key -> Text,
        password_hash -> Text,
        email -> Nullable<Text>,
        role -> Text,
        created_at -> BigInt,
        last_login -> Nullable<BigInt>,
        disabled -> Bool,
        failed_logins -> BigInt,
        locked_until -> Nullable<BigInt>,
        token_version -> BigInt,
        memory_enabled -> Bool,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        user_id -> Text,
        family_id -> Text,
        token_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        title -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        pinned -> Bool,
        archived -> Bool,
        message_count -> BigInt,
        last_message_at -> Nullable<BigInt>,
        last_message_preview -> Nullable<Text>,
        temporary -> Bool,
        model -> Nullable<Text>,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        session_id -> Text,
        role -> Text,
        content -> Text,
        created_at -> BigInt,
        token_count -> Nullable<BigInt>,
    }
}

diesel::table! {
    memories (id) {
        id -> Text,
        user_id -> Text,
        kind -> Text,
        content -> Text,
        source_session_id -> Nullable<Text>,
        created_at -> BigInt,
        confidence -> Float,
        updated_at -> BigInt,
        embedding -> Nullable<Binary>,
    }
}

diesel::table! {
    session_summaries (session_id) {
        session_id -> Text,
        through_message -> Text,
        content -> Text,
        covered_messages -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        prefix -> Text,
        key_hash -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(messages -> sessions (session_id));
diesel::joinable!(memories -> users (user_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(session_summaries -> sessions (session_id));
diesel::joinable!(session_summaries -> messages (through_message));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    refresh_tokens,
    sessions,
    messages,
    memories,
    session_summaries,
    api_keys,
    settings
);
