//! Identifiers: chats, messages and events are UUIDv7; users are token subjects.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is not a UUID at all.
    #[error("not a UUID")]
    NotAUuid,
    /// The text is a UUID, but not a version 7 one.
    #[error("not a UUIDv7")]
    NotV7,
}

/// The text form of an id: the hyphenated UUID (`8-4-4-4-12` hex digits), in either
/// case. The other forms a UUID parser reads (`urn:uuid:…`, `{…}`, 32 digits without
/// hyphens) are not ids of this service.
fn parse_v7(s: &str) -> Result<Uuid, IdError> {
    let id = parse_hyphenated(s)?;
    if id.get_version_num() != 7 {
        return Err(IdError::NotV7);
    }
    Ok(id)
}

/// A hyphenated UUID of any version.
fn parse_hyphenated(s: &str) -> Result<Uuid, IdError> {
    let hyphenated = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if !hyphenated {
        return Err(IdError::NotAUuid);
    }
    Uuid::try_parse(s).map_err(|_| IdError::NotAUuid)
}

macro_rules! uuid_v7_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        /// Deserializes through [`Self::parse`]: a document cannot carry an id the
        /// service would refuse in a path or a query.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            /// A new, time-ordered identifier.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the text form: a hyphenated UUIDv7 in either case (it prints in
            /// lowercase).
            pub fn parse(s: &str) -> Result<Self, IdError> {
                parse_v7(s).map(Self)
            }

            /// Wraps a UUID read back from trusted storage.
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_v7_id!(
    /// Identifies a chat (UUIDv7).
    ChatId
);
impl ChatId {
    /// Deserializes an event's subject: a chat's id (UUIDv7), or the version 8 key
    /// [`crate::model::Event::user_key`] of a user's own events.
    pub(crate) fn deserialize_subject<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let id = parse_hyphenated(&s).map_err(serde::de::Error::custom)?;
        match id.get_version_num() {
            7 | 8 => Ok(Self(id)),
            _ => Err(serde::de::Error::custom(IdError::NotV7)),
        }
    }
}

uuid_v7_id!(
    /// Identifies a message (UUIDv7).
    MessageId
);
uuid_v7_id!(
    /// Identifies an event; consumers drop duplicates by it (UUIDv7).
    EventId
);

/// The user a request acts for: the `sub` claim of the caller's token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl TryFrom<String> for UserId {
    type Error = UserIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<UserId> for String {
    fn from(u: UserId) -> Self {
        u.0
    }
}

/// Why a user id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    /// The subject is empty or only white space.
    #[error("the subject is empty")]
    Empty,
    /// The subject is longer than [`UserId::MAX_LEN`] bytes.
    #[error("the subject is longer than {} bytes", UserId::MAX_LEN)]
    TooLong,
    /// The subject contains a control character.
    #[error("the subject contains a control character")]
    ControlCharacter,
}

impl UserId {
    /// Longest subject accepted, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Parses a token subject.
    pub fn parse(s: &str) -> Result<Self, UserIdError> {
        if s.trim().is_empty() {
            return Err(UserIdError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(UserIdError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(UserIdError::ControlCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_v7_and_round_trip() {
        let id = ChatId::new();
        assert_eq!(id.as_uuid().get_version_num(), 7);
        assert_eq!(ChatId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn garbage_is_not_an_id() {
        assert_eq!(MessageId::parse("nope"), Err(IdError::NotAUuid));
        assert_eq!(MessageId::parse(""), Err(IdError::NotAUuid));
    }

    #[test]
    fn other_uuid_versions_are_refused() {
        assert_eq!(
            ChatId::parse("67e55044-10b1-426f-9247-bb680e5fe0c8"),
            Err(IdError::NotV7)
        );
    }

    #[test]
    fn ids_are_hyphenated_uuids_in_either_case() {
        let id = ChatId::new();
        let u = id.as_uuid();
        let upper = id.to_string().to_uppercase();
        assert_eq!(ChatId::parse(&upper), Ok(id));
        assert_eq!(id.to_string(), id.to_string().to_lowercase());
        for other in [
            u.urn().to_string(),
            u.braced().to_string(),
            u.simple().to_string(),
            format!("{id}0"),
            format!(" {id}"),
            id.to_string().replacen('-', "+", 1),
        ] {
            assert_eq!(ChatId::parse(&other), Err(IdError::NotAUuid), "{other}");
        }
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = MessageId::new();
        let b = MessageId::new();
        assert!(a < b);
    }

    #[test]
    fn ids_deserialize_only_through_parse() {
        let id = MessageId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<MessageId>(&json).unwrap(), id);
        let upper = json.to_uppercase();
        assert_eq!(serde_json::from_str::<MessageId>(&upper).unwrap(), id);
        for bad in [
            "\"67e55044-10b1-426f-9247-bb680e5fe0c8\"",
            "\"nope\"",
            &format!("\"{}\"", id.as_uuid().simple()),
            "7",
        ] {
            assert!(serde_json::from_str::<ChatId>(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::from_str::<UserId>("\"alice\"")
                .unwrap()
                .as_str(),
            "alice"
        );
        for bad in ["\"\"", "\"a\\nb\""] {
            assert!(serde_json::from_str::<UserId>(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&UserId::parse("bob").unwrap()).unwrap(),
            "\"bob\""
        );
    }

    #[test]
    fn user_id_rules() {
        assert_eq!(UserId::parse("  "), Err(UserIdError::Empty));
        assert_eq!(UserId::parse(&"a".repeat(256)), Err(UserIdError::TooLong));
        assert_eq!(UserId::parse("a\nb"), Err(UserIdError::ControlCharacter));
        assert_eq!(
            UserId::parse("alice").map(|u| u.to_string()),
            Ok("alice".into())
        );
    }
}
