//! Rate limiting of generated endpoints: request budgets per client address and per bearer
//! token, kept in this instance's memory (several instances each count on their own).
//!
//! Each budget is a generic cell rate algorithm (GCRA): one timestamp per key, a burst of up to
//! `requests`, refilled evenly over `window_secs`. A request passes only when every scope that
//! applies to it (the server's defaults, its API group, its endpoint) has room; a rejected
//! request consumes nothing. Keys are a scope id, a kind and a 16-byte client key: an address,
//! or the first half of the SHA-256 of a bearer token (never the token). Memory is bounded:
//! entries whose budget has fully refilled are equal to absent ones and are swept, and a full
//! shard evicts the entry closest to refilling.

use crate::flow::plan::{RateLimit, RateRule};
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;
/// How often a shard drops entries whose budget has refilled.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The rules of one scope, with a stable id so counters survive route reloads.
#[derive(Debug, Clone)]
pub struct Scope {
    id: u64,
    rules: RateLimit,
}

impl Scope {
    /// A scope named by its kind (`server`, `group`, `endpoint`) and name; the same name gets
    /// the same counters after a reload.
    pub fn new(kind: &str, name: &str, rules: RateLimit) -> Scope {
        let digest = Sha256::new()
            .chain_update(kind.as_bytes())
            .chain_update([0])
            .chain_update(name.as_bytes())
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Scope {
            id: u64::from_le_bytes(id),
            rules,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.per_ip.is_none() && self.rules.per_token.is_none()
    }

    fn needs_token(&self) -> bool {
        self.rules.per_token.is_some()
    }
}

/// Who is asking: the client address, and the hash of its bearer token if it sent one.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub ip: IpAddr,
    pub token: Option<[u8; 16]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    scope: u64,
    per_token: bool,
    client: [u8; 16],
}

struct Shard {
    /// Theoretical arrival time of each key, in nanoseconds since the limiter's epoch.
    tat: HashMap<Key, u64>,
    last_sweep: u64,
}

/// The limiter shared by every request of this instance.
pub struct Limiter {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    epoch: Instant,
    per_shard: usize,
}

impl Limiter {
    /// A limiter holding at most about `max_keys` keys.
    pub fn new(max_keys: usize) -> Limiter {
        Limiter {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        tat: HashMap::new(),
                        last_sweep: 0,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            epoch: Instant::now(),
            per_shard: (max_keys / SHARDS).max(1),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn shard(&self, key: &Key) -> &Mutex<Shard> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// Admits a request under every scope, or says how long to wait.
    pub fn check(&self, scopes: &[Scope], client: &Client) -> Result<(), Duration> {
        self.check_at(scopes, client, self.now())
    }

    fn check_at(&self, scopes: &[Scope], client: &Client, now: u64) -> Result<(), Duration> {
        let ip = address_key(client.ip);
        let keys = scopes.iter().flat_map(|s| {
            let by_ip = s.rules.per_ip.map(|r| {
                (
                    Key {
                        scope: s.id,
                        per_token: false,
                        client: ip,
                    },
                    r,
                )
            });
            let by_token = s.rules.per_token.zip(client.token).map(|(r, t)| {
                (
                    Key {
                        scope: s.id,
                        per_token: true,
                        client: t,
                    },
                    r,
                )
            });
            by_ip.into_iter().chain(by_token)
        });
        // First look, then take: a request refused by one scope uses no budget of another.
        let mut wait = 0u64;
        for (key, rule) in keys.clone() {
            let stored = self.lock(&key).tat.get(&key).copied().unwrap_or(0);
            if let Err(w) = gcra(stored, now, rule) {
                wait = wait.max(w);
            }
        }
        if wait > 0 {
            return Err(Duration::from_nanos(wait));
        }
        for (key, rule) in keys {
            let mut shard = self.lock(&key);
            let stored = shard.tat.get(&key).copied().unwrap_or(0);
            // Another request may have taken the room in between; the overshoot is at most
            // the number of concurrent requests, which is fine for a limit of this kind.
            let next = gcra(stored, now, rule).unwrap_or_else(|_| stored.max(now));
            self.store(&mut shard, key, next, now);
        }
        Ok(())
    }

    fn lock(&self, key: &Key) -> std::sync::MutexGuard<'_, Shard> {
        self.shard(key)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn store(&self, shard: &mut Shard, key: Key, tat: u64, now: u64) {
        if now.saturating_sub(shard.last_sweep) > SWEEP_EVERY.as_nanos() as u64 {
            shard.tat.retain(|_, t| *t > now);
            shard.last_sweep = now;
        }
        if !shard.tat.contains_key(&key) && shard.tat.len() >= self.per_shard {
            shard.tat.retain(|_, t| *t > now);
            if shard.tat.len() >= self.per_shard
                && let Some(oldest) = shard.tat.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k)
            {
                shard.tat.remove(&oldest);
            }
        }
        shard.tat.insert(key, tat);
    }

    /// Keys held now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.tat.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key of an address. IPv6 clients are counted per /64 network: one host usually holds a
/// whole /64, and could otherwise get a fresh budget with every address in it.
fn address_key(ip: IpAddr) -> [u8; 16] {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => {
            let mut key = v6.octets();
            key[8..].fill(0);
            key
        }
    }
}

/// One step of GCRA: the new theoretical arrival time, or the nanoseconds to wait.
fn gcra(stored: u64, now: u64, rule: RateRule) -> Result<u64, u64> {
    let window = u64::from(rule.window_secs) * 1_000_000_000;
    let interval = window / u64::from(rule.requests.max(1));
    let tolerance = window - interval;
    let tat = stored.max(now);
    let ahead = tat - now;
    if ahead > tolerance {
        Err(ahead - tolerance)
    } else {
        Ok(tat + interval)
    }
}

/// Whole seconds to put in `Retry-After`: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Whether any scope needs the token hash.
pub fn needs_token(scopes: &[Scope]) -> bool {
    scopes.iter().any(|s| s.needs_token())
}

/// The first half of the SHA-256 of the bearer token in `Authorization`, if there is one.
pub fn token_key(authorization: Option<&str>) -> Option<[u8; 16]> {
    let token = authorization?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())?;
    let digest = Sha256::digest(token.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    Some(key)
}

/// The client address: the socket peer, unless the peer is a trusted proxy; then the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: Option<SocketAddr>, forwarded: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let peer = peer
        .map(|p| p.ip().to_canonical())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(list) = forwarded else {
        return peer;
    };
    let mut client = peer;
    for entry in list.rsplit(',') {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(&client) {
                    break;
                }
            }
            // A malformed entry was written by someone we do not trust: stop at the last
            // address a trusted proxy vouched for.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn rule(requests: u32, window_secs: u32) -> RateRule {
        RateRule {
            requests,
            window_secs,
        }
    }

    fn per_ip(requests: u32, window_secs: u32) -> Scope {
        Scope::new(
            "endpoint",
            "e",
            RateLimit {
                per_ip: Some(rule(requests, window_secs)),
                per_token: None,
            },
        )
    }

    fn client(last: u8) -> Client {
        Client {
            ip: IpAddr::from([10, 0, 0, last]),
            token: None,
        }
    }

    #[test]
    fn a_burst_of_the_budget_passes_then_waits_for_one_interval() {
        let l = Limiter::new(1000);
        let s = per_ip(3, 60);
        for _ in 0..3 {
            assert_eq!(
                l.check_at(std::slice::from_ref(&s), &client(1), 5 * S),
                Ok(())
            );
        }
        assert_eq!(
            l.check_at(std::slice::from_ref(&s), &client(1), 5 * S),
            Err(Duration::from_secs(20))
        );
        assert_eq!(
            l.check_at(std::slice::from_ref(&s), &client(2), 5 * S),
            Ok(()),
            "other ip"
        );
        assert_eq!(
            l.check_at(std::slice::from_ref(&s), &client(1), 25 * S),
            Ok(()),
            "refilled one"
        );
        assert!(
            l.check_at(std::slice::from_ref(&s), &client(1), 25 * S)
                .is_err()
        );
    }

    #[test]
    fn a_request_refused_by_one_scope_uses_no_budget_of_another() {
        let l = Limiter::new(1000);
        let wide = Scope::new(
            "server",
            "",
            RateLimit {
                per_ip: Some(rule(2, 60)),
                per_token: None,
            },
        );
        let narrow = per_ip(1, 60);
        assert_eq!(
            l.check_at(&[wide.clone(), narrow.clone()], &client(1), S),
            Ok(())
        );
        assert!(
            l.check_at(&[wide.clone(), narrow.clone()], &client(1), S)
                .is_err()
        );
        // The wide scope still has its second request.
        assert_eq!(
            l.check_at(std::slice::from_ref(&wide), &client(1), S),
            Ok(())
        );
        assert!(
            l.check_at(std::slice::from_ref(&wide), &client(1), S)
                .is_err()
        );
    }

    #[test]
    fn tokens_are_counted_apart_from_addresses() {
        let l = Limiter::new(1000);
        let s = Scope::new(
            "endpoint",
            "e",
            RateLimit {
                per_ip: None,
                per_token: Some(rule(1, 10)),
            },
        );
        let a = Client {
            ip: IpAddr::from([10, 0, 0, 1]),
            token: token_key(Some("Bearer aaa")),
        };
        let b = Client {
            token: token_key(Some("bearer bbb")),
            ..a
        };
        assert_eq!(l.check_at(std::slice::from_ref(&s), &a, S), Ok(()));
        assert!(l.check_at(std::slice::from_ref(&s), &a, S).is_err());
        assert_eq!(l.check_at(std::slice::from_ref(&s), &b, S), Ok(()));
        // No token: the per-token rule does not apply.
        assert_eq!(l.check_at(std::slice::from_ref(&s), &client(1), S), Ok(()));
        assert_eq!(l.check_at(std::slice::from_ref(&s), &client(1), S), Ok(()));
    }

    #[test]
    fn memory_stays_bounded_by_sweeping_and_evicting() {
        let l = Limiter::new(SHARDS * 4);
        let s = per_ip(1, 10);
        for i in 0..=255u8 {
            let _ = l.check_at(std::slice::from_ref(&s), &client(i), S);
        }
        assert!(l.len() <= SHARDS * 4, "{}", l.len());
        // Once every budget has refilled, entries are swept on the next writes.
        for i in 0..=255u8 {
            let _ = l.check_at(std::slice::from_ref(&s), &client(i), 100 * S);
        }
        assert!(l.len() <= SHARDS * 4);
    }

    #[test]
    fn ipv6_clients_share_the_budget_of_their_64_network() {
        let l = Limiter::new(1000);
        let s = per_ip(1, 60);
        let host = |ip: &str| Client {
            ip: ip.parse().expect("ip"),
            token: None,
        };
        assert_eq!(
            l.check_at(std::slice::from_ref(&s), &host("2001:db8:1:2::1"), S),
            Ok(())
        );
        assert!(
            l.check_at(std::slice::from_ref(&s), &host("2001:db8:1:2::ffff"), S)
                .is_err()
        );
        assert_eq!(
            l.check_at(std::slice::from_ref(&s), &host("2001:db8:1:3::1"), S),
            Ok(())
        );
        // An IPv4 address, however written, is one client.
        assert_eq!(
            l.check_at(std::slice::from_ref(&s), &host("192.0.2.1"), S),
            Ok(())
        );
        assert!(
            l.check_at(std::slice::from_ref(&s), &host("::ffff:192.0.2.1"), S)
                .is_err()
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(20)), 20);
        assert_eq!(retry_after_secs(Duration::from_millis(20_001)), 21);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let proxy = Some(SocketAddr::from(([10, 1, 1, 1], 5000)));
        let stranger = Some(SocketAddr::from(([203, 0, 113, 9], 5000)));
        let xff = Some("198.51.100.7, 10.2.2.2");
        assert_eq!(
            client_ip(proxy, xff, &trusted),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            client_ip(stranger, xff, &trusted),
            "203.0.113.9".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            client_ip(proxy, Some("1.1.1.1, 198.51.100.7"), &trusted),
            "198.51.100.7".parse::<IpAddr>().expect("ip"),
            "only the rightmost untrusted entry counts; the client wrote the rest"
        );
        assert_eq!(
            client_ip(proxy, Some("garbage"), &trusted),
            "10.1.1.1".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            client_ip(proxy, None, &[]),
            "10.1.1.1".parse::<IpAddr>().expect("ip")
        );
    }
}
