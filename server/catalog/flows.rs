//! Flow documents (drafts) and their published versions.

use super::{CatalogError, violated_constraint};
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};

/// A stored flow.
#[derive(Debug, Clone, Serialize)]
pub struct FlowRecord {
    pub id: i64,
    pub name: String,
    pub rev: String,
    pub published_version: Option<i32>,
    /// The rev of the published version: the draft has nothing new to publish when it equals
    /// `rev`.
    pub published_rev: Option<String>,
    /// What the published version serves, for a person: `GET /api/todos/{id}`, or
    /// `function <name>`; `None` when nothing is published.
    pub live_route: Option<String>,
    pub document: Value,
    pub created_at: String,
    pub updated_at: String,
}

/// A flow in a list: what a person needs to find it.
#[derive(Debug, Clone, Serialize)]
pub struct FlowSummary {
    pub id: i64,
    pub name: String,
    pub rev: String,
    pub method: Option<String>,
    pub path: Option<String>,
    /// The draft's trigger kind (`schedule`, `table`, `job`), for flows without an endpoint.
    pub trigger: Option<String>,
    pub published_version: Option<i32>,
    pub published_rev: Option<String>,
    pub live_route: Option<String>,
    pub updated_at: String,
}

/// What a flow's published version serves, as a person reads it (a scalar subquery on `flows`).
macro_rules! live_route {
    () => {
        "SELECT CASE WHEN v.document ? 'endpoint' THEN (v.document #>> '{endpoint,method}') \
         || ' /api' || coalesce(g.base_path, '') || (v.document #>> '{endpoint,path}') \
         ELSE 'function ' || (v.document ->> 'name') END FROM sluice.flow_versions v \
         LEFT JOIN sluice.api_groups g ON g.name = coalesce(v.document #>> '{endpoint,group}', 'default') \
         WHERE v.flow_id = flows.id AND v.version = flows.published_version"
    };
}

const COLUMNS: &str = concat!(
    "id, name, rev, published_version, document, \
    (SELECT v.rev FROM sluice.flow_versions v WHERE v.flow_id = flows.id \
     AND v.version = flows.published_version) AS published_rev, \
    (",
    live_route!(),
    ") AS live_route, \
    to_jsonb(created_at) #>> '{}' AS created_at, to_jsonb(updated_at) #>> '{}' AS updated_at"
);

fn record(row: PgRow) -> Result<FlowRecord, sqlx::Error> {
    Ok(FlowRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        rev: row.try_get("rev")?,
        published_version: row.try_get("published_version")?,
        published_rev: row.try_get("published_rev")?,
        live_route: row.try_get("live_route")?,
        document: row.try_get::<sqlx::types::Json<Value>, _>("document")?.0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn name_taken(e: sqlx::Error, name: &str) -> CatalogError {
    if violated_constraint(&e) == Some("flows_name_key") {
        CatalogError::NameTaken(name.to_string())
    } else {
        CatalogError::Db(e)
    }
}

pub async fn insert(
    pool: &PgPool,
    name: &str,
    document: &Value,
    rev: &str,
) -> Result<FlowRecord, CatalogError> {
    let mut tx = pool.begin().await?;
    let record = insert_in(&mut tx, name, document, rev).await?;
    tx.commit().await?;
    Ok(record)
}

/// Inserts a draft inside the caller's transaction.
pub async fn insert_in(
    tx: &mut Transaction<'_, Postgres>,
    name: &str,
    document: &Value,
    rev: &str,
) -> Result<FlowRecord, CatalogError> {
    let sql = format!(
        "INSERT INTO sluice.flows (name, document, rev) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(name)
        .bind(sqlx::types::Json(document))
        .bind(rev)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| name_taken(e, name))?;
    Ok(record(row)?)
}

pub async fn get(pool: &PgPool, id: i64) -> Result<FlowRecord, CatalogError> {
    let sql = format!("SELECT {COLUMNS} FROM sluice.flows WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(CatalogError::NotFound)?;
    Ok(record(row)?)
}

/// The flow named `name`, locked for the caller's transaction, if there is one.
pub async fn find_by_name_in(
    tx: &mut Transaction<'_, Postgres>,
    name: &str,
) -> Result<Option<FlowRecord>, CatalogError> {
    let sql = format!("SELECT {COLUMNS} FROM sluice.flows WHERE name = $1 FOR UPDATE");
    let row = sqlx::query(&sql)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(record).transpose()?)
}

pub async fn list(pool: &PgPool) -> Result<Vec<FlowSummary>, CatalogError> {
    let rows = sqlx::query(concat!(
        "SELECT id, name, rev, published_version, document #>> '{endpoint,method}' AS method, \
         document #>> '{endpoint,path}' AS path, document #>> '{trigger,kind}' AS trigger, \
         to_jsonb(updated_at) #>> '{}' AS updated_at, \
         (SELECT v.rev FROM sluice.flow_versions v WHERE v.flow_id = flows.id \
          AND v.version = flows.published_version) AS published_rev, \
         (",
        live_route!(),
        ") AS live_route FROM sluice.flows ORDER BY name",
    ))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(FlowSummary {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                rev: r.try_get("rev")?,
                method: r.try_get("method")?,
                path: r.try_get("path")?,
                trigger: r.try_get("trigger")?,
                published_version: r.try_get("published_version")?,
                published_rev: r.try_get("published_rev")?,
                live_route: r.try_get("live_route")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(CatalogError::Db)
}

/// A saved draft, and the other flows' drafts whose `call` nodes followed a rename.
#[derive(Debug, Clone)]
pub struct Saved {
    pub record: FlowRecord,
    /// Names of other flows whose drafts were rewritten to call the new name.
    pub rewritten_callers: Vec<String>,
}

/// Replaces the draft if its rev is still `expected`; a stale rev changes nothing.
///
/// A new `name` is a rename, and flows call functions by name: when other flows' *published*
/// versions call the old name (the draft's or the published version's), the rename is refused
/// with [`CatalogError::FunctionInUse`] naming them (the function's next publish would take
/// their callee away); otherwise the `call` nodes of other flows' drafts that name it are
/// rewritten to the new name in the same transaction.
pub async fn update(
    pool: &PgPool,
    id: i64,
    expected: &str,
    name: &str,
    document: &Value,
    rev: &str,
) -> Result<Saved, CatalogError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT f.name, f.rev, v.document ->> 'name' AS published_name FROM sluice.flows f \
         LEFT JOIN sluice.flow_versions v ON v.flow_id = f.id AND v.version = f.published_version \
         WHERE f.id = $1 FOR UPDATE OF f",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(CatalogError::NotFound)?;
    let current: String = row.try_get("rev")?;
    if current != expected {
        return Err(CatalogError::Stale {
            expected: expected.to_string(),
            current,
        });
    }
    let old: String = row.try_get("name")?;
    let published_name: Option<String> = row.try_get("published_name")?;
    let mut rewritten_callers = Vec::new();
    if old != name {
        let mut gone = vec![old.clone()];
        gone.extend(published_name.filter(|p| p != name && p != &old));
        let mut callers = Vec::new();
        for n in &gone {
            callers.extend(published_callers(&mut tx, n, id).await?);
        }
        if !callers.is_empty() {
            callers.sort();
            callers.dedup();
            return Err(CatalogError::FunctionInUse {
                name: old,
                by: callers,
            });
        }
        rewritten_callers = rewrite_draft_calls(&mut tx, &old, name, id).await?;
    }
    let sql = format!(
        "UPDATE sluice.flows SET name = $2, document = $3, rev = $4 WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(name)
        .bind(sqlx::types::Json(document))
        .bind(rev)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| name_taken(e, name))?;
    let record = record(row)?;
    tx.commit().await?;
    Ok(Saved {
        record,
        rewritten_callers,
    })
}

/// Names of the flows other than `except` whose published version has a `call` of `function`.
pub async fn published_callers(
    tx: &mut Transaction<'_, Postgres>,
    function: &str,
    except: i64,
) -> Result<Vec<String>, CatalogError> {
    Ok(sqlx::query_scalar(
        "SELECT f.name FROM sluice.flows f \
         JOIN sluice.flow_versions v ON v.flow_id = f.id AND v.version = f.published_version \
         WHERE f.id <> $2 AND EXISTS (SELECT 1 FROM jsonb_each(v.document -> 'nodes') n \
           WHERE n.value ->> 'type' = 'call' AND n.value ->> 'flow' = $1) ORDER BY f.name",
    )
    .bind(function)
    .bind(except)
    .fetch_all(&mut **tx)
    .await?)
}

/// Rewrites the `call` nodes naming `from` in the drafts of flows other than `except` to name
/// `to` (a new rev each); returns the names of the flows rewritten.
async fn rewrite_draft_calls(
    tx: &mut Transaction<'_, Postgres>,
    from: &str,
    to: &str,
    except: i64,
) -> Result<Vec<String>, CatalogError> {
    let rows: Vec<(i64, String, sqlx::types::Json<Value>)> = sqlx::query_as(
        "SELECT id, name, document FROM sluice.flows WHERE id <> $2 \
         AND EXISTS (SELECT 1 FROM jsonb_each(document -> 'nodes') n \
           WHERE n.value ->> 'type' = 'call' AND n.value ->> 'flow' = $1) ORDER BY name FOR UPDATE",
    )
    .bind(from)
    .bind(except)
    .fetch_all(&mut **tx)
    .await?;
    let mut names = Vec::with_capacity(rows.len());
    for (caller, caller_name, doc) in rows {
        let doc = rename_calls(&doc.0, from, to);
        replace_draft_in(tx, caller, &doc, &crate::flow::canonical::rev(&doc)).await?;
        names.push(caller_name);
    }
    Ok(names)
}

/// A copy of `doc` whose `call` nodes name `to` where they named `from`.
pub fn rename_calls(doc: &Value, from: &str, to: &str) -> Value {
    let mut out = doc.clone();
    for node in out
        .get_mut("nodes")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|m| m.values_mut())
    {
        if node.get("type").and_then(Value::as_str) == Some("call")
            && node.get("flow").and_then(Value::as_str) == Some(from)
        {
            node["flow"] = Value::String(to.to_string());
        }
    }
    out
}

/// Replaces the draft of flow `id` whatever its rev, inside the caller's transaction (a table
/// change rewriting the flows that read a renamed field).
pub async fn replace_draft_in(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    document: &Value,
    rev: &str,
) -> Result<(), CatalogError> {
    sqlx::query("UPDATE sluice.flows SET document = $2, rev = $3 WHERE id = $1")
        .bind(id)
        .bind(sqlx::types::Json(document))
        .bind(rev)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes a flow with its versions; a published one stops being served. Refused with
/// [`CatalogError::FunctionInUse`] while other flows' published versions call it by name.
pub async fn delete(pool: &PgPool, id: i64) -> Result<(), CatalogError> {
    let mut tx = pool.begin().await?;
    let name: String = sqlx::query_scalar("SELECT name FROM sluice.flows WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(CatalogError::NotFound)?;
    let callers = published_callers(&mut tx, &name, id).await?;
    if !callers.is_empty() {
        return Err(CatalogError::FunctionInUse { name, by: callers });
    }
    sqlx::query("DELETE FROM sluice.flows WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A free name for a copy of flow `name`: `<name>_copy`, then `<name>_copy_2`, … (kept within
/// the 63 characters of a flow name).
pub fn copy_name(name: &str, taken: &dyn Fn(&str) -> bool) -> String {
    (1..)
        .map(|n| {
            let suffix = if n == 1 {
                "_copy".to_string()
            } else {
                format!("_copy_{n}")
            };
            let keep = 63usize.saturating_sub(suffix.len()).min(name.len());
            format!("{}{suffix}", &name[..keep])
        })
        .find(|candidate| !taken(candidate))
        .unwrap_or_default()
}

/// A path for a copy of an endpoint at `path` that `taken` does not know: the last literal
/// segment gets `-copy` (then `-copy-2`, …): `/todos/{id}` becomes `/todos-copy/{id}`.
pub fn copy_path(path: &str, taken: &dyn Fn(&str) -> bool) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let literal = segments.iter().rposition(|s| !s.starts_with('{'));
    (1..)
        .map(|n| {
            let suffix = if n == 1 {
                "copy".to_string()
            } else {
                format!("copy-{n}")
            };
            let mut parts: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
            match literal {
                Some(i) => parts[i] = format!("{}-{suffix}", parts[i]),
                None => parts.insert(0, suffix),
            }
            format!("/{}", parts.join("/"))
        })
        .find(|candidate| !taken(candidate))
        .unwrap_or_default()
}

/// The shape of a route for collision checks: method, group and path with parameter names
/// erased (`GET default /todos/{}`).
pub fn route_shape(method: &str, group: Option<&str>, path: &str) -> String {
    let shape: Vec<&str> = path
        .split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect();
    format!(
        "{method} {} {}",
        group.unwrap_or("default"),
        shape.join("/")
    )
}

/// The routes of every flow's draft and published version, as [`route_shape`]s, without
/// flow `except`.
pub async fn route_shapes(pool: &PgPool, except: i64) -> Result<Vec<String>, CatalogError> {
    let rows: Vec<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT d -> 'endpoint' ->> 'method', d -> 'endpoint' ->> 'group', d -> 'endpoint' ->> 'path' \
         FROM (SELECT f.document AS d FROM sluice.flows f WHERE f.id <> $1 \
               UNION ALL SELECT v.document FROM sluice.flows f JOIN sluice.flow_versions v \
               ON v.flow_id = f.id AND v.version = f.published_version WHERE f.id <> $1) docs \
         WHERE d ? 'endpoint'",
    )
    .bind(except)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(m, g, p)| Some(route_shape(&m?, g.as_deref(), &p?)))
        .collect())
}

/// Every flow name in use.
pub async fn names(pool: &PgPool) -> Result<Vec<String>, CatalogError> {
    Ok(sqlx::query_scalar("SELECT name FROM sluice.flows")
        .fetch_all(pool)
        .await?)
}

/// What a publish did: the version now live, and whether it was already live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub version: i32,
    /// The draft was the live version already (same rev): no version was added.
    pub unchanged: bool,
}

/// Records the draft `document` (at `rev`) as the next published version, with an optional
/// note, and makes it live. The rev check makes a publish of an outdated view fail instead of
/// publishing something else. A draft whose rev is the live version's adds no version: the
/// answer is that version, `unchanged`. A function renamed since its live version is refused
/// ([`CatalogError::FunctionInUse`]) while live flows call its live name.
pub async fn publish(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    expected_rev: &str,
    route_key: &str,
    user_id: i64,
    note: Option<&str>,
) -> Result<Published, CatalogError> {
    let row = sqlx::query(
        "SELECT f.rev, f.document ->> 'name' AS name, v.version AS live_version, v.rev AS live_rev, \
         v.document ->> 'name' AS live_name FROM sluice.flows f \
         LEFT JOIN sluice.flow_versions v ON v.flow_id = f.id AND v.version = f.published_version \
         WHERE f.id = $1 FOR UPDATE OF f",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(CatalogError::NotFound)?;
    let current: String = row.try_get("rev")?;
    if current != expected_rev {
        return Err(CatalogError::Stale {
            expected: expected_rev.to_string(),
            current,
        });
    }
    // A function published under another name: live flows that still call that name would
    // lose their callee (a rename checks this when saved; a caller may have been published
    // since).
    let name: Option<String> = row.try_get("name")?;
    if let Some(live_name) = row.try_get::<Option<String>, _>("live_name")?
        && Some(&live_name) != name.as_ref()
    {
        let callers = published_callers(tx, &live_name, id).await?;
        if !callers.is_empty() {
            return Err(CatalogError::FunctionInUse {
                name: live_name,
                by: callers,
            });
        }
    }
    let live_rev: Option<String> = row.try_get("live_rev")?;
    if let (Some(version), Some(live)) = (row.try_get::<Option<i32>, _>("live_version")?, live_rev)
        && live == current
    {
        return Ok(Published {
            version,
            unchanged: true,
        });
    }
    let version: i32 = sqlx::query_scalar(
        "INSERT INTO sluice.flow_versions (flow_id, version, document, rev, published_by, note) \
         SELECT $1, coalesce(max(version), 0) + 1, f.document, f.rev, $2, $3 \
         FROM sluice.flows f LEFT JOIN sluice.flow_versions v ON v.flow_id = f.id \
         WHERE f.id = $1 GROUP BY f.document, f.rev RETURNING version",
    )
    .bind(id)
    .bind(user_id)
    .bind(note)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE sluice.flows SET published_version = $2, published_route = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(version)
    .bind(route_key)
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if violated_constraint(&e) == Some("flows_published_route_key") {
            CatalogError::RouteTaken(route_key.to_string())
        } else {
            CatalogError::Db(e)
        }
    })?;
    Ok(Published {
        version,
        unchanged: false,
    })
}

/// The published version of every published flow: `(flow id, document)`.
pub async fn published(pool: &PgPool) -> Result<Vec<(i64, Value)>, CatalogError> {
    let rows = sqlx::query(
        "SELECT f.id, v.document FROM sluice.flows f \
         JOIN sluice.flow_versions v ON v.flow_id = f.id AND v.version = f.published_version ORDER BY f.id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get::<sqlx::types::Json<Value>, _>("document")?.0,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(CatalogError::Db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_copy_gets_the_first_free_name_and_path() {
        let names = ["todos_list", "todos_list_copy"];
        let taken = |n: &str| names.contains(&n);
        assert_eq!(copy_name("todos_list", &taken), "todos_list_copy_2");
        assert_eq!(copy_name("other", &taken), "other_copy");
        assert_eq!(copy_name(&"a".repeat(63), &taken).len(), 63);
        let paths = ["/todos-copy/{id}"];
        let taken = |p: &str| paths.contains(&p);
        assert_eq!(copy_path("/todos/{id}", &taken), "/todos-copy-2/{id}");
        assert_eq!(copy_path("/todos", &taken), "/todos-copy");
        assert_eq!(copy_path("/{id}", &taken), "/copy/{id}");
    }

    #[test]
    fn routes_collide_whatever_their_parameter_names() {
        assert_eq!(
            route_shape("GET", None, "/a/{x}"),
            route_shape("GET", Some("default"), "/a/{y}")
        );
        assert_ne!(
            route_shape("GET", None, "/a/{x}"),
            route_shape("GET", Some("v2"), "/a/{x}")
        );
    }

    #[test]
    fn a_rename_follows_only_call_nodes_naming_the_function() {
        let doc = json!({"nodes": {
            "c": {"type": "call", "flow": "price", "next": {"ok": "d"}},
            "d": {"type": "call", "flow": "tax"},
            "e": {"type": "respond", "flow": "price"}
        }});
        let out = rename_calls(&doc, "price", "price_v2");
        assert_eq!(out["nodes"]["c"]["flow"], "price_v2");
        assert_eq!(out["nodes"]["d"]["flow"], "tax");
        assert_eq!(out["nodes"]["e"]["flow"], "price");
    }
}
