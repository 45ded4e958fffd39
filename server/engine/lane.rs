//! The connections flows run their statements on: a lane of the sqlx pool that hands a
//! connection from one request to the next directly. sqlx pings Postgres each time a
//! connection goes back into its pool (a round trip per request, on both sides of a loaded
//! machine); a connection given back to the lane is kept as it is, so a busy server talks to
//! Postgres only for its statements.
//!
//! The lane holds at most `size` connections of the pool (a permit each while in use), leaving
//! the rest of the pool to the editor, the catalog and the sessions; a connection idle in the
//! lane for [`KEEP_IDLE`] goes back to the pool, so a quiet lane holds nothing. A connection
//! that failed with anything but a database error is closed instead of given back. Knows
//! sqlx and tokio only.

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a connection stays in the lane without being used before it goes back to the pool.
pub const KEEP_IDLE: Duration = Duration::from_secs(1);

/// How long a connection stays in the lane at all before it goes back to the pool once (where
/// sqlx applies its own age limit and checks).
const KEEP_AT_MOST: Duration = Duration::from_secs(10 * 60);

/// How long a flow waits for a connection, like the pool's own acquire timeout.
const TAKE_TIMEOUT: Duration = Duration::from_secs(5);

struct Idle {
    conn: PoolConnection<Postgres>,
    /// When the lane took it from the pool.
    taken: Instant,
    /// When it was last given back.
    since: Instant,
}

/// See the module comment.
pub struct Lane {
    pool: PgPool,
    /// The most connections the lane holds.
    size: usize,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
}

impl Lane {
    /// A lane of `pool` with room for all of the pool's connections but a quarter of them
    /// (at least one) kept for everything else. Starts the task that gives idle connections
    /// back to the pool; it ends with the lane.
    pub fn for_pool(pool: PgPool) -> Arc<Lane> {
        let max = pool.options().get_max_connections() as usize;
        let size = max.saturating_sub((max / 4).max(1)).max(1);
        Lane::new(pool, size)
    }

    /// A lane of at most `size` connections of `pool`.
    pub fn new(pool: PgPool, size: usize) -> Arc<Lane> {
        let lane = Arc::new(Lane {
            pool,
            size,
            permits: Arc::new(Semaphore::new(size)),
            idle: Mutex::new(Vec::with_capacity(size)),
        });
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(give_back_idle(Arc::downgrade(&lane)));
        }
        lane
    }

    /// The pool the lane takes its connections from.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A connection for one statement or one transaction: the one given back last, else one
    /// of the pool.
    pub async fn take(self: &Arc<Self>) -> Result<LaneConn, sqlx::Error> {
        let permit = tokio::time::timeout(TAKE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let reused = self.lock().pop();
        let (conn, taken) = match reused {
            Some(idle) if idle.since.elapsed() < KEEP_IDLE => (idle.conn, idle.taken),
            // Idle too long to trust without the pool's check: back to the pool first.
            stale => {
                drop(stale);
                (self.pool.acquire().await?, Instant::now())
            }
        };
        Ok(LaneConn {
            conn: Some(conn),
            taken,
            broken: false,
            lane: self.clone(),
            _permit: permit,
        })
    }

    /// Takes every idle connection out of the lane (to prepare statements on them); give
    /// them back with [`Lane::put_idle`]. Meanwhile requests take connections from the pool.
    pub fn take_idle(&self) -> Vec<PoolConnection<Postgres>> {
        let idle = std::mem::take(&mut *self.lock());
        idle.into_iter().map(|i| i.conn).collect()
    }

    /// Makes connections of the pool idle connections of the lane, as many as it has room for
    /// next to those it holds; the rest go back to the pool.
    pub fn put_idle(&self, conns: Vec<PoolConnection<Postgres>>) {
        let now = Instant::now();
        let in_use = self.size.saturating_sub(self.permits.available_permits());
        let room = self.size.saturating_sub(self.lock().len() + in_use);
        let mut conns = conns.into_iter();
        let kept: Vec<Idle> = conns
            .by_ref()
            .take(room)
            .map(|conn| Idle {
                conn,
                taken: now,
                since: now,
            })
            .collect();
        self.lock().extend(kept);
        drop(conns.collect::<Vec<_>>());
    }

    /// Gives every idle connection back to the pool (to let the pool close them).
    pub fn release_idle(&self) {
        let idle = std::mem::take(&mut *self.lock());
        drop(idle);
    }

    fn give_back(&self, conn: PoolConnection<Postgres>, taken: Instant) {
        if taken.elapsed() >= KEEP_AT_MOST {
            return;
        }
        let now = Instant::now();
        self.lock().push(Idle {
            conn,
            taken,
            since: now,
        });
    }

    /// Gives connections idle for [`KEEP_IDLE`] back to the pool (the oldest are first).
    fn drop_stale(&self) {
        let stale: Vec<Idle> = {
            let mut idle = self.lock();
            let keep_from = idle
                .iter()
                .position(|i| i.since.elapsed() < KEEP_IDLE)
                .unwrap_or(idle.len());
            idle.drain(..keep_from).collect()
        };
        drop(stale);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every [`KEEP_IDLE`], gives the lane's stale connections back to the pool, until the lane
/// is gone.
async fn give_back_idle(lane: Weak<Lane>) {
    let mut tick = tokio::time::interval(KEEP_IDLE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match lane.upgrade() {
            Some(lane) => lane.drop_stale(),
            None => return,
        }
    }
}

/// A connection taken from the [`Lane`]; given back when dropped, or closed when
/// a statement on it did not settle cleanly ([`LaneConn::start`]).
pub struct LaneConn {
    conn: Option<PoolConnection<Postgres>>,
    taken: Instant,
    broken: bool,
    lane: Arc<Lane>,
    _permit: OwnedSemaphorePermit,
}

impl LaneConn {
    /// Call before awaiting a statement: until [`LaneConn::settle`] sees its outcome, the
    /// connection counts as broken, so one dropped mid-statement (a request cut off at its
    /// deadline) is closed rather than handed to the next request with a statement running.
    pub fn start(&mut self) {
        self.broken = true;
    }

    /// Whether the connection will be closed rather than given back.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Notes the outcome of a statement: after anything but a database error (a lost
    /// connection, a protocol error) the connection stays broken and is closed instead of
    /// given back.
    pub fn settle<T>(&mut self, result: &Result<T, sqlx::Error>) {
        self.broken = matches!(result, Err(e) if !matches!(e, sqlx::Error::Database(_)));
    }
}

impl Deref for LaneConn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        // Present until dropped.
        self.conn.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for LaneConn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for LaneConn {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            if self.broken {
                conn.close_on_drop();
            } else {
                self.lane.give_back(conn, self.taken);
            }
        }
    }
}
