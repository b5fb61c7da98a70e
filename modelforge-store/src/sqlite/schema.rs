//! The diesel schema, matching `migrations/sqlite/`.
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
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        title -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        session_id -> Text,
        role -> Text,
        content -> Text,
        created_at -> BigInt,
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
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(messages -> sessions (session_id));
diesel::joinable!(memories -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(users, sessions, messages, memories);
