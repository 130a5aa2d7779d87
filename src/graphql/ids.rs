//! Opaque global ids: `base64url("<Type>:<uuid>")`. Clients must not parse them.

use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::AppError;

/// The types that have global ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tenant,
    User,
    Case,
    Detection,
    Subject,
    ApiToken,
    AuditEvent,
    Message,
    Webhook,
}

impl Kind {
    const fn prefix(self) -> &'static str {
        match self {
            Kind::Tenant => "Tenant",
            Kind::User => "User",
            Kind::Case => "Case",
            Kind::Detection => "Detection",
            Kind::Subject => "Subject",
            Kind::ApiToken => "ApiToken",
            Kind::AuditEvent => "AuditEvent",
            Kind::Message => "Message",
            Kind::Webhook => "Webhook",
        }
    }

    const ALL: [Kind; 9] = [
        Kind::Tenant,
        Kind::User,
        Kind::Case,
        Kind::Detection,
        Kind::Subject,
        Kind::ApiToken,
        Kind::AuditEvent,
        Kind::Message,
        Kind::Webhook,
    ];

    fn parse(prefix: &str) -> Option<Self> {
        Kind::ALL.into_iter().find(|kind| kind.prefix() == prefix)
    }
}

/// The global id of the object of `kind` with this uuid.
pub fn encode(kind: Kind, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{}", kind.prefix(), id)))
}

/// The type and uuid inside a global id, or `None` when it is not one of ours.
pub fn decode(id: &str) -> Option<(Kind, Uuid)> {
    if id.len() > 128 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(id.trim_end_matches('=')).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (prefix, uuid) = text.split_once(':')?;
    Some((Kind::parse(prefix)?, Uuid::parse_str(uuid).ok()?))
}

/// The uuid of a global id that must be of `kind`; anything else is `VALIDATION_FAILED` on `field`.
pub fn expect(kind: Kind, id: &str, field: &str) -> Result<Uuid, AppError> {
    match decode(id) {
        Some((found, uuid)) if found == kind => Ok(uuid),
        _ => Err(AppError::validation(field, format!("`{field}` is not a {} id", kind.prefix()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_round_trip_and_reject_foreign_text() {
        let uuid = Uuid::now_v7();
        let id = encode(Kind::User, uuid);
        assert_eq!(decode(&id), Some((Kind::User, uuid)));
        assert_eq!(decode("not an id"), None);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("Case:123")), None);
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode("Bogus:00000000-0000-0000-0000-000000000000")),
            None
        );
        assert!(expect(Kind::Tenant, &id, "tenantId").is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn config() -> ProptestConfig {
            ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) }
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_text_is_an_id_or_none(text in any::<String>()) {
                let decoded = decode(&text);
                let expected = expect(Kind::Case, &text, "id");
                prop_assert_eq!(expected.ok(), decoded.filter(|(k, _)| *k == Kind::Case).map(|(_, u)| u));
            }

            #[test]
            fn base64_of_any_bytes_is_an_id_only_when_it_spells_one(
                bytes in prop::collection::vec(any::<u8>(), 0..160),
                kind in prop::sample::select(Kind::ALL.to_vec()),
                uuid in any::<u128>(),
            ) {
                let text = URL_SAFE_NO_PAD.encode(&bytes);
                if let Some((kind, uuid)) = decode(&text) {
                    prop_assert_eq!(decode(&encode(kind, uuid)), Some((kind, uuid)));
                    let spelled = format!("{}:", kind.prefix());
                    prop_assert!(bytes.starts_with(spelled.as_bytes()));
                }
                let uuid = Uuid::from_u128(uuid);
                prop_assert_eq!(decode(&encode(kind, uuid)), Some((kind, uuid)));
                prop_assert!(expect(kind, &encode(kind, uuid), "id").is_ok());
            }
        }
    }
}
