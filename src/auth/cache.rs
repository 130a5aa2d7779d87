//! The viewers of recently seen tokens, kept for at most [`LIFETIME`] so that a request
//! does not look its token up again. A revocation, deactivation or role change takes
//! effect on every server within that second (at once on the server that made it: the
//! domain operation drops the user's entries there). Bounded: at most [`CAPACITY`]
//! tokens; when full, expired entries go, and if none had, all of them.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::Viewer;
use crate::models::ids::{TokenId, UserId};

/// How long a looked-up token is trusted without asking the database again.
pub const LIFETIME: Duration = Duration::from_secs(1);

/// Most tokens kept.
pub const CAPACITY: usize = 10_000;

struct Entry {
    viewer: Viewer,
    /// The token's own expiry, checked on every hit.
    expires_at: Option<DateTime<Utc>>,
    stored: Instant,
}

/// Viewers by token hash (SHA-256 of the secret; the secret itself is never kept).
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<Vec<u8>, Entry>>,
}

/// The process's cache (tokens are unique across databases: a hash names one token).
pub fn shared() -> &'static TokenCache {
    static CACHE: LazyLock<TokenCache> = LazyLock::new(TokenCache::default);
    &CACHE
}

impl TokenCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Entry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The viewer of the token with this hash when it was stored less than [`LIFETIME`]
    /// before `at` and the token has not expired by `now`.
    pub fn get(&self, hash: &[u8], at: Instant, now: DateTime<Utc>) -> Option<Viewer> {
        let mut entries = self.entries();
        let entry = entries.get(hash)?;
        let fresh = at.saturating_duration_since(entry.stored) < LIFETIME;
        if fresh && entry.expires_at.is_none_or(|expiry| expiry > now) {
            return Some(entry.viewer);
        }
        entries.remove(hash);
        None
    }

    /// Keeps the viewer of a token found active at `stored`.
    pub fn put(
        &self,
        hash: Vec<u8>,
        viewer: Viewer,
        expires_at: Option<DateTime<Utc>>,
        stored: Instant,
    ) {
        let mut entries = self.entries();
        if entries.len() >= CAPACITY && !entries.contains_key(&hash) {
            entries.retain(|_, e| stored.saturating_duration_since(e.stored) < LIFETIME);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(hash, Entry { viewer, expires_at, stored });
    }

    /// Drops the entries of a user (deactivated, or its role changed).
    pub fn forget_user(&self, user: UserId) {
        self.entries().retain(|_, e| e.viewer.user_id != user);
    }

    /// Drops the entry of a token (revoked).
    pub fn forget_token(&self, token: TokenId) {
        self.entries().retain(|_, e| e.viewer.token_id != token);
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ids::TenantId;
    use crate::models::users::Role;

    fn viewer() -> Viewer {
        Viewer {
            user_id: UserId(uuid::Uuid::new_v4()),
            tenant_id: TenantId(uuid::Uuid::new_v4()),
            role: Role::Analyst,
            token_id: TokenId(uuid::Uuid::new_v4()),
            request_id: None,
            client_address: None,
        }
    }

    #[test]
    fn an_entry_is_trusted_for_less_than_a_second_then_looked_up_again() {
        let cache = TokenCache::default();
        let start = Instant::now();
        let now = Utc::now();
        let v = viewer();
        cache.put(vec![1], v, None, start);
        assert_eq!(cache.get(&[1], start, now), Some(v));
        assert_eq!(cache.get(&[1], start + Duration::from_millis(999), now), Some(v));
        assert_eq!(cache.get(&[1], start + LIFETIME, now), None);
        assert!(cache.is_empty(), "an expired entry is dropped when met");
        assert_eq!(cache.get(&[2], start, now), None);
    }

    #[test]
    fn a_token_past_its_own_expiry_is_not_served_from_the_cache() {
        let cache = TokenCache::default();
        let start = Instant::now();
        let now = Utc::now();
        cache.put(vec![1], viewer(), Some(now + chrono::Duration::milliseconds(100)), start);
        assert!(cache.get(&[1], start, now).is_some());
        assert_eq!(cache.get(&[1], start, now + chrono::Duration::milliseconds(100)), None);
    }

    #[test]
    fn forgetting_a_user_or_a_token_drops_its_entries_at_once() {
        let cache = TokenCache::default();
        let start = Instant::now();
        let (a, b) = (viewer(), viewer());
        cache.put(vec![1], a, None, start);
        cache.put(vec![2], b, None, start);
        cache.forget_user(a.user_id);
        assert_eq!(cache.get(&[1], start, Utc::now()), None);
        assert_eq!(cache.get(&[2], start, Utc::now()), Some(b));
        cache.forget_token(b.token_id);
        assert_eq!(cache.get(&[2], start, Utc::now()), None);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = TokenCache::default();
        let start = Instant::now();
        for i in 0..(CAPACITY + 5) {
            cache.put(i.to_le_bytes().to_vec(), viewer(), None, start);
            assert!(cache.len() <= CAPACITY);
        }
        // Stale entries make room first.
        let later = start + LIFETIME;
        cache.put(vec![9, 9], viewer(), None, later);
        assert_eq!(cache.len(), 1);
    }
}
