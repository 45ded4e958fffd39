//! The one password hasher of the process: every argon2 hash and check (editor logins, the
//! `auth.*_password` nodes, password fields written through flows, the rows API and CSV
//! imports) runs here, on a fixed pool of threads, one per core. Each thread owns one argon2
//! memory area that it reuses while jobs are waiting for it, so resident memory is bounded by
//! construction (threads × 19 MiB with the default parameters) and never grows with the load.
//! A thread frees its area as soon as no job is waiting, so password work holds memory only
//! while it runs: a lone sign-in takes 19 MiB for the length of its hash, a server that is not
//! signing anyone in holds none (a freed area goes back to the system: the allocator returns
//! allocations that large at once).
//!
//! Jobs wait in a bounded queue. A job not started within [`QUEUE_TIMEOUT`] (or refused by a
//! full queue) fails with [`HashError::Busy`], which the edge answers 503 `server.busy`; a job
//! whose caller has gone away or given up is skipped, not computed.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, LazyLock, Mutex, TryLockError};
use std::time::Duration;
use tokio::sync::oneshot;

/// Longest password accepted anywhere, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest wait for a free hashing thread.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// How many hashing threads hold a work area now (for the tests: none once the work is done).
static HELD_AREAS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Jobs that may wait per thread; more are refused at once.
const QUEUE_PER_THREAD: usize = 32;
/// Largest argon2 memory cost a stored hash may ask for, in KiB (1 KiB blocks). Sluice writes
/// 19 MiB hashes; this leaves room for imported hashes of stronger parameters.
const MAX_M_COST: u32 = 64 * 1024;

/// Why a job produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("every password hashing thread is busy")]
    Busy,
    #[error("{0}")]
    Failed(String),
}

enum Work {
    Hash(String),
    Verify(String, String),
}

enum Outcome {
    Hashed(Result<String, String>),
    Verified(bool),
}

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const ABANDONED: u8 = 2;

struct Job {
    work: Work,
    state: Arc<AtomicU8>,
    reply: oneshot::Sender<Outcome>,
}

struct Pool {
    queue: SyncSender<Job>,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 16);
    let (queue, rx) = std::sync::mpsc::sync_channel(threads * QUEUE_PER_THREAD);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..threads {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("sluice-hash-{i}"))
            .spawn(move || worker(&rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password hashing thread");
        }
    }
    Pool { queue }
});

/// Takes jobs until the process ends, with one memory area kept while jobs are waiting and
/// freed as soon as none is. The receiver is shared: while one thread waits in `recv` it holds
/// the lock, so a thread that cannot take the lock at once knows no job is waiting for it.
fn worker(rx: &Mutex<Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let guard = match rx.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let waiting = match guard.as_ref().map(|g| g.try_recv()) {
            Some(Ok(job)) => Some(job),
            Some(Err(TryRecvError::Disconnected)) => return,
            Some(Err(TryRecvError::Empty)) | None => None,
        };
        let job = match waiting {
            Some(job) => job,
            None => {
                if !memory.is_empty() {
                    memory = Vec::new();
                    HELD_AREAS.fetch_sub(1, Ordering::AcqRel);
                }
                let guard = guard.unwrap_or_else(|| rx.lock().unwrap_or_else(|e| e.into_inner()));
                match guard.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            }
        };
        if job.reply.is_closed()
            || job
                .state
                .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            continue;
        }
        let had_area = !memory.is_empty();
        let outcome = match job.work {
            Work::Hash(password) => Outcome::Hashed(hash_with(&mut memory, &password)),
            Work::Verify(password, hash) => {
                Outcome::Verified(verify_with(&mut memory, &password, &hash))
            }
        };
        if !had_area && !memory.is_empty() {
            HELD_AREAS.fetch_add(1, Ordering::AcqRel);
        }
        let _ = job.reply.send(outcome);
    }
}

/// Hashes `password` with argon2id and Sluice's parameters (the crate's defaults).
pub async fn hash(password: String) -> Result<String, HashError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(HashError::Failed(format!(
            "a password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    match submit(Work::Hash(password)).await? {
        Outcome::Hashed(r) => r.map_err(HashError::Failed),
        Outcome::Verified(_) => Err(HashError::Failed("unexpected outcome".into())),
    }
}

/// Checks `password` against a PHC hash string. A malformed hash is `false` after the same
/// work as a real check, so timing does not tell them apart; an overlong password is `false`.
pub async fn verify(password: String, hash: String) -> Result<bool, HashError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    match submit(Work::Verify(password, hash)).await? {
        Outcome::Verified(ok) => Ok(ok),
        Outcome::Hashed(_) => Err(HashError::Failed("unexpected outcome".into())),
    }
}

async fn submit(work: Work) -> Result<Outcome, HashError> {
    let state = Arc::new(AtomicU8::new(QUEUED));
    let (reply, mut answer) = oneshot::channel();
    let job = Job {
        work,
        state: state.clone(),
        reply,
    };
    match POOL.queue.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(HashError::Busy),
        Err(TrySendError::Disconnected(_)) => {
            return Err(HashError::Failed("no password hashing thread".into()));
        }
    }
    let lost = || HashError::Failed("the password hashing thread stopped".into());
    tokio::select! {
        r = &mut answer => r.map_err(|_| lost()),
        () = tokio::time::sleep(QUEUE_TIMEOUT) => {
            // Give up only if no thread has started it; a started job finishes soon.
            if state
                .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                Err(HashError::Busy)
            } else {
                answer.await.map_err(|_| lost())
            }
        }
    }
}

/// `memory` grown (never shrunk) to `blocks`, as a slice of exactly that many.
fn area(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    &mut memory[..blocks]
}

fn hash_with(memory: &mut Vec<Block>, password: &str) -> Result<String, String> {
    let params = Params::default();
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            area(memory, params.block_count()),
        )
        .map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(Salt::from(&salt)),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

fn verify_with(memory: &mut Vec<Block>, password: &str, hash: &str) -> bool {
    match check(memory, password, hash) {
        Some(ok) => ok,
        None => {
            // The same work as a real check of a Sluice hash, then false.
            let params = Params::default();
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            let blocks = params.block_count();
            let _ = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    b"sluice-dummy-salt",
                    &mut out,
                    area(memory, blocks),
                );
            false
        }
    }
}

/// `None` when `hash` is not an argon2 hash this pool can check.
fn check(memory: &mut Vec<Block>, password: &str, hash: &str) -> Option<bool> {
    let parsed = PasswordHash::new(hash).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .ok()?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).ok()?;
    if params.m_cost() > MAX_M_COST {
        tracing::warn!(
            m_cost = params.m_cost(),
            "a stored password hash asks for more memory than Sluice allows; refused"
        );
        return None;
    }
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, area(memory, blocks))
        .ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(&out).ok()? == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn no_work_area_stays_held_once_the_hashing_is_done() {
        let h = hash("correct horse".into()).await.expect("hashed");
        assert!(verify("correct horse".into(), h).await.expect("checked"));
        // Other tests of this process may be hashing too: wait (boundedly) for quiet.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while HELD_AREAS.load(Ordering::Acquire) != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "a hashing thread still holds its 19 MiB area with no job waiting"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn hashes_are_standard_argon2id_and_check_both_ways() {
        let h = hash("correct horse".into()).await.expect("hashed");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        // The argon2 crate's own verifier agrees.
        let parsed = PasswordHash::new(&h).expect("parses");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert_eq!(verify("correct horse".into(), h.clone()).await, Ok(true));
        assert_eq!(verify("wrong".into(), h).await, Ok(false));
        assert_eq!(verify("x".into(), "not a hash".into()).await, Ok(false));
        assert_eq!(verify("x".repeat(2000), h_long()).await, Ok(false));
        assert!(matches!(
            hash("x".repeat(MAX_PASSWORD_BYTES + 1)).await,
            Err(HashError::Failed(_))
        ));
    }

    /// A valid hash whose password is 2000 bytes long (the pool refuses to make one).
    fn h_long() -> String {
        let mut memory = Vec::new();
        hash_with(&mut memory, &"x".repeat(2000)).expect("hashed")
    }

    #[test]
    fn hashes_of_other_argon2_parameters_are_checked_too() {
        use argon2::PasswordHasher;
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let params = Params::new(8 * 1024, 3, 2, Some(24)).expect("params");
        let h = Argon2::new(Algorithm::Argon2i, Version::V0x10, params)
            .hash_password(b"pw", &salt)
            .expect("hash")
            .to_string();
        let mut memory = Vec::new();
        assert!(verify_with(&mut memory, "pw", &h));
        assert!(!verify_with(&mut memory, "pX", &h));
    }
}
