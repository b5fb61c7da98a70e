//! Identifier newtypes.
//!
//! Ids are UUIDv7: several servers sharing one PostgreSQL database can mint them without
//! coordination, and they sort by creation time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| InvalidId { kind: stringify!($name), input: s.to_owned() })
            }
        }
    };
}

id_type!(
    /// Identifies a user account.
    UserId
);
id_type!(
    /// Identifies a chat session.
    SessionId
);
id_type!(
    /// Identifies one message of a session.
    MessageId
);
id_type!(
    /// Identifies one memory of a user's knowledge base.
    MemoryId
);
id_type!(
    /// Identifies one API key of a user (not the key itself, which is secret).
    ApiKeyId
);

/// A string that is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {kind} (expected a UUID)")]
pub struct InvalidId {
    /// The id type that was expected.
    pub kind: &'static str,
    /// The text that failed to parse.
    pub input: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings_and_sort_by_time() {
        let a = SessionId::new();
        let b = SessionId::new();
        assert!(a < b, "UUIDv7 ids sort by creation time");
        let parsed: SessionId = a.to_string().parse().unwrap();
        assert_eq!(parsed, a);
    }

    #[test]
    fn a_bad_id_names_its_kind() {
        let err = "not-a-uuid".parse::<UserId>().unwrap_err();
        assert_eq!(err.kind, "UserId");
        assert!(err.to_string().contains("not-a-uuid"));
    }
}
