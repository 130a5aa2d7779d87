//! The cursor of a live event: opaque to clients, naming the tenant, the sequence and the
//! start of the event's hash, so a cursor of another tenant or a made-up one is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::models::events::Event;
use crate::models::ids::TenantId;

const PREFIX: &str = "ev1";
/// How many hex digits of the event's hash a cursor carries.
const HASH_DIGITS: usize = 16;

/// A position in a tenant's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor {
    pub tenant: TenantId,
    pub sequence: i64,
    /// The first hex digits of the event's hash.
    pub hash: String,
}

impl EventCursor {
    /// The cursor of `event`.
    pub fn of(event: &Event) -> Self {
        let hash = event.hash.chars().take(HASH_DIGITS).collect();
        Self { tenant: event.tenant_id, sequence: event.sequence, hash }
    }

    /// `base64url("ev1:<tenant>:<sequence>:<hash digits>")`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD
            .encode(format!("{PREFIX}:{}:{}:{}", self.tenant.0, self.sequence, self.hash))
    }

    /// The cursor in `text`, or `None` when it is not one.
    pub fn decode(text: &str) -> Option<Self> {
        if text.len() > 256 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.split(':');
        if parts.next()? != PREFIX {
            return None;
        }
        let tenant = TenantId(Uuid::parse_str(parts.next()?).ok()?);
        let sequence: i64 = parts.next()?.parse().ok()?;
        let hash = parts.next()?.to_owned();
        let well_formed = sequence >= 1
            && hash.len() == HASH_DIGITS
            && hash.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        (well_formed && parts.next().is_none()).then_some(Self { tenant, sequence, hash })
    }

    /// Whether this cursor names `event` (same tenant, sequence and hash).
    pub fn names(&self, event: &Event) -> bool {
        *self == Self::of(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = EventCursor {
            tenant: TenantId(Uuid::now_v7()),
            sequence: 7,
            hash: "0123456789abcdef".into(),
        };
        assert_eq!(EventCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(EventCursor::decode("garbage"), None);
        assert_eq!(EventCursor::decode(&URL_SAFE_NO_PAD.encode("ev1:x:1:0123456789abcdef")), None);
    }
}
