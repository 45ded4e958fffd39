//! Warming the database side of what is served, so the first request after a start or a
//! publish is not slower than the next ones: connections opened before the server answers
//! ready, and every statement of the table-query layer prepared on each idle connection
//! before a new generation is swapped in (sqlx keeps prepared statements per connection, by
//! statement text).
//!
//! Only statements of the table-query layer are prepared here: their names are
//! schema-qualified and their parameters are all bound as text, exactly as the engine binds
//! them. A `db.sql` statement runs under another role and search path and is prepared by its
//! first request. Warming never waits for a busy connection and a failure only costs the
//! first request its prepare, so it is logged and otherwise ignored.

use crate::engine::Program;
use crate::engine::lane::Lane;
use sqlx::pool::PoolConnection;
use sqlx::{Executor, Postgres, Type};
use std::time::Duration;

/// Connections opened (and warmed) before the server answers ready, at most the pool's size.
pub const START_CONNECTIONS: u32 = 4;

/// How long opening one start connection may take before warming goes on without it.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// A statement to prepare: its text and how many parameters it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    text: String,
    params: usize,
}

/// The statements of `programs` that warming prepares (see the module comment), each once,
/// in the text that runs with result cap `cap` ([`crate::engine::sql::Prepared::text_capped`]).
pub(crate) fn statements<'a>(
    programs: impl IntoIterator<Item = &'a Program>,
    cap: usize,
) -> Vec<Statement> {
    let mut out: Vec<Statement> = Vec::new();
    for prepared in programs.into_iter().flat_map(|p| p.sql.iter().flatten()) {
        if prepared.on.is_none() {
            continue;
        }
        let text = prepared.text_capped(cap);
        if out.iter().any(|s| s.text == text) {
            continue;
        }
        out.push(Statement {
            params: parameter_count(&text),
            text: text.into_owned(),
        });
    }
    out
}

/// The highest `$n` of a statement of the table-query layer (whose text holds `$` only in
/// placeholders: identifiers are validated and literals are the layer's own).
fn parameter_count(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut highest = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if let Ok(n) = sql[i + 1..i + 1 + digits].parse::<usize>() {
                highest = highest.max(n);
            }
            i += digits;
        }
        i += 1;
    }
    highest
}

/// Prepares `statements` on the idle connections of `lane` and of its pool, and hands the
/// pool's to the lane, where the next requests find them without a round trip. With `open`
/// (the first load), first opens connections until `open` are warmed (or the pool is full),
/// so they exist before the first request. Otherwise it takes only connections nobody is
/// using and never waits, so requests keep theirs; a connection on its way back into the pool
/// meanwhile is warmed by its first request instead.
pub(crate) async fn warm(lane: &Lane, statements: &[Statement], open: u32) {
    let pool = lane.pool();
    let mut conns = lane.take_idle();
    while let Some(conn) = pool.try_acquire() {
        conns.push(conn);
    }
    let wanted = open.min(pool.options().get_max_connections()) as usize;
    let mut opened = Vec::new();
    while conns.len() + opened.len() < wanted {
        match tokio::time::timeout(OPEN_TIMEOUT, pool.acquire()).await {
            Ok(Ok(conn)) => opened.push(conn),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not open a connection to warm");
                break;
            }
            Err(_) => break,
        }
    }
    conns.append(&mut opened);
    let mut prepared = 0usize;
    for conn in &mut conns {
        prepared += prepare(conn, statements).await;
    }
    tracing::debug!(
        connections = conns.len(),
        statements = statements.len(),
        prepared,
        "warmed the database connections"
    );
    lane.put_idle(conns);
}

/// Prepares `statements` on one connection (a statement it has prepared already is found in
/// its cache without a round trip); returns how many it holds now.
async fn prepare(conn: &mut PoolConnection<Postgres>, statements: &[Statement]) -> usize {
    let text = <String as Type<Postgres>>::type_info();
    let mut prepared = 0;
    for s in statements {
        let types = vec![text.clone(); s.params];
        match (&mut **conn).prepare_with(&s.text, &types).await {
            Ok(_) => prepared += 1,
            Err(e) => {
                tracing::debug!(error = %e, statement = %s.text, "could not prepare a statement ahead");
            }
        }
    }
    prepared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_counted_by_their_highest_placeholder() {
        assert_eq!(parameter_count("SELECT 1"), 0);
        assert_eq!(
            parameter_count("SELECT $2::bigint, $10::text, $1::text WHERE x <= $3::bigint + 1"),
            10
        );
        assert_eq!(parameter_count("SELECT '$' || $1::text"), 1);
    }
}
