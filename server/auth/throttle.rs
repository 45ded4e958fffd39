//! Failed logins, throttled per client address and per account with growing delays: editor
//! logins (admin API and editor session) and end-user `auth.verify_password` checks alike.
//!
//! Each key (an address or an account, within a realm: `editor` or `app`) may fail a few times
//! for free ([`FREE_PER_ACCOUNT`], [`FREE_PER_ADDRESS`]: an address may carry many people);
//! every further failure blocks the key for a delay that doubles, from 1 s up to
//! [`MAX_DELAY`]. A blocked attempt is refused before any hashing (429 `auth.throttled` with
//! `Retry-After`). A success clears its account's failures, not its address's; failures are
//! forgotten [`FORGET_AFTER`] after the last one. The table is bounded: when full, forgotten
//! and then the least recently failed unblocked keys are dropped first.
//!
//! The HTTP edge puts the caller (its client address and the server's table) in [`CALLER`] for
//! every request, so the login functions and the engine's node find it without plumbing;
//! outside a request (the CLI, the first admin) nothing is throttled.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures of one account before delays start.
pub const FREE_PER_ACCOUNT: u32 = 5;
/// Failures of one client address before delays start.
pub const FREE_PER_ADDRESS: u32 = 20;
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Failures are forgotten this long after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Most keys remembered.
const MAX_KEYS: usize = 100_000;

tokio::task_local! {
    /// Who is making the request being served, set by the HTTP edge.
    pub static CALLER: Caller;
}

/// The client of a request and the table its failures count in.
#[derive(Clone)]
pub struct Caller {
    pub ip: Option<IpAddr>,
    pub logins: Arc<Logins>,
}

/// The failure table of one server.
pub struct Logins {
    keys: Mutex<HashMap<String, Failures>>,
    max_keys: usize,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

impl Default for Logins {
    fn default() -> Logins {
        Logins::with_capacity(MAX_KEYS)
    }
}

impl Logins {
    fn with_capacity(max_keys: usize) -> Logins {
        Logins {
            keys: Mutex::new(HashMap::new()),
            max_keys: max_keys.max(2),
        }
    }

    /// The longest wait any of `keys` still has to sit out, if any.
    fn blocked(&self, keys: &[(String, u32)], now: Instant) -> Option<Duration> {
        let table = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|(k, _)| table.get(k))
            .filter(|f| f.blocked_until > now)
            .map(|f| f.blocked_until - now)
            .max()
    }

    fn failed(&self, keys: &[(String, u32)], now: Instant) {
        let mut table = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        for (key, free) in keys {
            if !table.contains_key(key) && table.len() >= self.max_keys {
                evict(&mut table, now);
            }
            let f = table.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
                blocked_until: now,
            });
            if now.duration_since(f.last) > FORGET_AFTER {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
            if f.count > *free {
                let doublings = (f.count - free - 1).min(20);
                let delay = Duration::from_secs(1u64 << doublings).min(MAX_DELAY);
                f.blocked_until = f.blocked_until.max(now + delay);
            }
        }
    }

    fn succeeded(&self, key: &str) {
        let mut table = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        table.remove(key);
    }
}

/// Drops forgotten keys, then (if that freed less than a tenth) the least recently failed keys,
/// unblocked ones first, so an attacker cannot easily flush a blocked account by inventing
/// names, and the table never outgrows its bound.
fn evict(table: &mut HashMap<String, Failures>, now: Instant) {
    let target = table.len() - table.len() / 10;
    table.retain(|_, f| now.duration_since(f.last) <= FORGET_AFTER);
    if table.len() <= target {
        return;
    }
    let mut order: Vec<(bool, Instant, String)> = table
        .iter()
        .map(|(k, f)| (f.blocked_until > now, f.last, k.clone()))
        .collect();
    order.sort();
    let excess = table.len() - target;
    for (_, _, k) in order.into_iter().take(excess) {
        table.remove(&k);
    }
}

/// A login attempt let through; report how it went.
pub struct Attempt {
    caller: Option<Caller>,
    keys: Vec<(String, u32)>,
    account: Option<String>,
}

/// Starts a login attempt of `account` (an email or other identifier, when known) in `realm`,
/// or says how long the caller must wait first.
pub fn attempt(realm: &str, account: Option<&str>) -> Result<Attempt, Duration> {
    let caller = CALLER.try_with(Clone::clone).ok();
    let account = account
        .map(|a| a.trim().to_lowercase())
        .filter(|a| !a.is_empty())
        .map(|a| format!("{realm}|account|{a}"));
    let mut keys: Vec<(String, u32)> = Vec::new();
    if let Some(ip) = caller.as_ref().and_then(|c| c.ip) {
        keys.push((format!("{realm}|address|{ip}"), FREE_PER_ADDRESS));
    }
    if let Some(a) = &account {
        keys.push((a.clone(), FREE_PER_ACCOUNT));
    }
    if let Some(c) = &caller
        && let Some(wait) = c.logins.blocked(&keys, Instant::now())
    {
        return Err(wait);
    }
    Ok(Attempt {
        caller,
        keys,
        account,
    })
}

impl Attempt {
    /// Counts a failure, or clears the account's failures after a success.
    pub fn finish(self, ok: bool) {
        let Some(c) = &self.caller else { return };
        if ok {
            if let Some(a) = &self.account {
                c.logins.succeeded(a);
            }
        } else {
            c.logins.failed(&self.keys, Instant::now());
        }
    }
}

/// Whole seconds to announce in `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<(String, u32)> {
        vec![("editor|account|a@b.c".into(), 2)]
    }

    #[test]
    fn failures_beyond_the_free_ones_block_for_doubling_delays() {
        let logins = Logins::default();
        let t0 = Instant::now();
        logins.failed(&keys(), t0);
        logins.failed(&keys(), t0);
        assert_eq!(logins.blocked(&keys(), t0), None, "two free failures");
        logins.failed(&keys(), t0);
        assert_eq!(logins.blocked(&keys(), t0), Some(Duration::from_secs(1)));
        logins.failed(&keys(), t0);
        assert_eq!(logins.blocked(&keys(), t0), Some(Duration::from_secs(2)));
        for _ in 0..40 {
            logins.failed(&keys(), t0);
        }
        assert_eq!(logins.blocked(&keys(), t0), Some(MAX_DELAY));
        logins.succeeded(&keys()[0].0);
        assert_eq!(logins.blocked(&keys(), t0), None);
    }

    #[test]
    fn a_full_table_keeps_its_blocked_keys() {
        let logins = Logins::with_capacity(10);
        let t0 = Instant::now();
        for _ in 0..4 {
            logins.failed(&keys(), t0);
        }
        for i in 0..100 {
            logins.failed(&[(format!("editor|account|{i}"), 2)], t0);
        }
        assert!(logins.blocked(&keys(), t0).is_some());
        assert!(logins.keys.lock().expect("lock").len() <= 10);
    }
}
