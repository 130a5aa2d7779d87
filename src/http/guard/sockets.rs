//! The WebSockets each token holds open on this server, capped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

/// Open sockets by token id (only tokens with a socket open are held).
pub struct Sockets {
    /// Most sockets a token may hold; 0: no cap.
    max: usize,
    open: Mutex<HashMap<Uuid, usize>>,
}

/// One open socket of a token, counted until dropped.
pub struct Slot {
    sockets: Arc<Sockets>,
    token: Uuid,
}

impl Sockets {
    pub fn new(max: usize) -> Self {
        Sockets { max, open: Mutex::default() }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, usize>> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for one more socket of `token`, unless it holds its most already.
    pub fn take(self: &Arc<Self>, token: Uuid) -> Option<Slot> {
        let mut open = self.open();
        let count = open.entry(token).or_insert(0);
        if self.max > 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot { sockets: self.clone(), token })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.sockets.open();
        if let Some(count) = open.get_mut(&self.token) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.token);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_at_most_its_cap_and_a_closed_socket_frees_a_slot() {
        let sockets = Arc::new(Sockets::new(2));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = sockets.take(a).expect("first");
        let _second = sockets.take(a).expect("second");
        assert!(sockets.take(a).is_none(), "the third is over the cap");
        assert!(sockets.take(b).is_some(), "another token has its own");
        drop(first);
        assert!(sockets.take(a).is_some(), "a closed socket frees its slot");
    }

    #[test]
    fn tokens_without_sockets_are_not_held() {
        let sockets = Arc::new(Sockets::new(0));
        let slots: Vec<_> = (0..50).map(|_| sockets.take(Uuid::new_v4())).collect();
        assert!(slots.iter().all(Option::is_some), "0: no cap");
        assert_eq!(sockets.open().len(), 50);
        drop(slots);
        assert!(sockets.open().is_empty());
    }
}
