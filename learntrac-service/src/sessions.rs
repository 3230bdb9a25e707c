//! Trac login cookies already checked, remembered for a few seconds: a request carrying
//! `trac_auth` then costs no `auth_cookie` query. A logout in Trac (its row deleted) takes
//! effect when the entry expires. Bounded: a full table drops what expired, then everything.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub struct Sessions {
    ttl: Duration,
    capacity: usize,
    /// Keyed by the cookie's SHA-256, so the table never holds a usable cookie.
    entries: Mutex<HashMap<[u8; 32], (Instant, String)>>,
}

impl Sessions {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Sessions {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The user of a cookie checked less than `ttl` ago.
    pub fn get(&self, cookie: &str) -> Option<String> {
        if self.ttl.is_zero() {
            return None;
        }
        let key = key(cookie);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key) {
            Some((at, user)) if at.elapsed() < self.ttl => Some(user.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers a cookie Trac's table vouched for (unknown cookies are never remembered).
    pub fn put(&self, cookie: &str, user: &str) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key(cookie), (Instant::now(), user.to_string()));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_for_the_ttl_only() {
        let s = Sessions::new(Duration::from_millis(50), 10);
        assert_eq!(s.get("c"), None);
        s.put("c", "alice");
        assert_eq!(s.get("c").as_deref(), Some("alice"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(s.get("c"), None, "expired");
    }

    #[test]
    fn stays_within_its_capacity() {
        let s = Sessions::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            s.put(&format!("cookie-{i}"), "bob");
            assert!(s.len() <= 3);
        }
        assert_eq!(s.get("cookie-9").as_deref(), Some("bob"));
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let s = Sessions::new(Duration::ZERO, 3);
        s.put("c", "alice");
        assert_eq!(s.get("c"), None);
    }
}
