//! API groups (`sluice.api_groups`): a base path under `/api`, an on/off switch, CORS rules and
//! rate limits for the endpoints that name the group. Also the serving generation that tells
//! instances when to reload. Definitions are validated here, purely; the store functions that
//! belong to a larger change take the caller's transaction.

use super::CatalogError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};

pub use crate::base::DEFAULT_GROUP;

/// The methods an endpoint can have, which a CORS rule may allow.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A group as an editor writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    pub name: String,
    /// Prefix below `/api`, `""` or `/seg[/seg...]`.
    #[serde(default)]
    pub base_path: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Cross-origin rules; `None` sends no CORS headers at all.
    #[serde(default)]
    pub cors: Option<CorsDef>,
    /// Stored here and enforced by the rate limiter.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub description: String,
}

fn yes() -> bool {
    true
}

/// Cross-origin rules of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsDef {
    /// Exact origins (`https://app.example.com`), or `["*"]` for any.
    pub allowed_origins: Vec<String>,
    #[serde(default = "default_methods")]
    pub allowed_methods: Vec<String>,
    /// Request headers a browser may send (case-insensitive), or `["*"]` for any.
    #[serde(default = "default_headers")]
    pub allowed_headers: Vec<String>,
    /// Response headers scripts in the browser may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long a browser may cache a preflight answer.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u32,
}

fn default_methods() -> Vec<String> {
    METHODS.iter().map(|m| m.to_string()).collect()
}

fn default_headers() -> Vec<String> {
    vec!["content-type".into(), "authorization".into()]
}

fn default_max_age() -> u32 {
    600
}

/// Request limits of a group: the same shape and rules as a flow's `settings.rate_limit`.
pub use crate::base::RateLimit;

pub use crate::base::Problem;

fn problem(pointer: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem::new(pointer, message)
}

fn is_slug(s: &str) -> bool {
    let mut b = s.bytes();
    s.len() <= 63
        && b.next().is_some_and(|c| c.is_ascii_lowercase())
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

fn is_base_path(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 100
            && s.starts_with('/')
            && s[1..].split('/').all(|seg| {
                let mut b = seg.bytes();
                b.next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && b.all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c)
                    })
            }))
}

/// `scheme://host[:port]` in lowercase, as browsers send it in `Origin`.
fn is_origin(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    // An IPv6 host is bracketed; a port follows the last `:` outside the brackets.
    let after_host = rest.rfind(']').map_or(0, |i| i + 1);
    let (host, port) = match rest[after_host..].find(':') {
        Some(i) => (&rest[..after_host + i], Some(&rest[after_host + i + 1..])),
        None => (rest, None),
    };
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b".-[]:".contains(&c))
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()))
}

/// An HTTP header name (RFC 9110 token).
fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

impl GroupDef {
    /// Every problem with the definition, each with its JSON pointer.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if !is_slug(&self.name) {
            out.push(problem(
                "/name",
                "a group name is a slug: lowercase letters, digits and `_`, starting with a letter",
            ));
        }
        if !is_base_path(&self.base_path) {
            out.push(problem(
                "/base_path",
                "a base path is empty or `/segment[/segment...]` of lowercase letters, digits, `.`, `_` and `-`, without parameters or a trailing `/`",
            ));
        }
        if self.description.chars().count() > 2000 {
            out.push(problem("/description", "at most 2000 characters"));
        }
        if let Some(cors) = &self.cors {
            cors.check(&mut out);
        }
        if let Some(rl) = &self.rate_limit {
            for (key, limit) in [("per_ip", rl.per_ip), ("per_token", rl.per_token)] {
                if let Some(l) = limit {
                    if l.requests == 0 {
                        out.push(problem(format!("/rate_limit/{key}/requests"), "at least 1"));
                    }
                    if l.window_secs == 0 || l.window_secs > 86_400 {
                        out.push(problem(
                            format!("/rate_limit/{key}/window_secs"),
                            "between 1 and 86400 seconds",
                        ));
                    }
                }
            }
        }
        out
    }
}

impl CorsDef {
    fn check(&self, out: &mut Vec<Problem>) {
        let any = self.allowed_origins.iter().any(|o| o == "*");
        if any && self.allowed_origins.len() > 1 {
            out.push(problem(
                "/cors/allowed_origins",
                "`*` stands alone: any origin, or a list of exact origins",
            ));
        }
        if any && self.allow_credentials {
            out.push(problem(
                "/cors/allow_credentials",
                "credentials cannot be allowed for any origin (`*`); list the origins",
            ));
        }
        for (i, o) in self.allowed_origins.iter().enumerate() {
            if o != "*" && !is_origin(o) {
                out.push(problem(
                    format!("/cors/allowed_origins/{i}"),
                    format!("`{o}` is not an origin like https://app.example.com (lowercase, no path, no trailing `/`)"),
                ));
            }
        }
        for (i, m) in self.allowed_methods.iter().enumerate() {
            if !METHODS.contains(&m.as_str()) {
                out.push(problem(
                    format!("/cors/allowed_methods/{i}"),
                    format!("`{m}` is not one of {}", METHODS.join(", ")),
                ));
            }
        }
        for (key, list) in [
            ("allowed_headers", &self.allowed_headers),
            ("expose_headers", &self.expose_headers),
        ] {
            for (i, h) in list.iter().enumerate() {
                if !(is_header_name(h) || (key == "allowed_headers" && h == "*")) {
                    out.push(problem(
                        format!("/cors/{key}/{i}"),
                        format!("`{h}` is not a header name"),
                    ));
                }
            }
        }
        if self.max_age_secs > 86_400 {
            out.push(problem("/cors/max_age_secs", "at most 86400 seconds"));
        }
    }
}

/// A stored group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRecord {
    #[serde(flatten)]
    pub def: GroupDef,
    pub version: i32,
    pub created_at: String,
    pub updated_at: String,
}

/// Errors of the group store.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("the group definition is invalid")]
    Invalid(Vec<Problem>),
    #[error("no API group named `{0}`")]
    NotFound(String),
    #[error("an API group named `{0}` already exists")]
    NameTaken(String),
    #[error("another API group already has the base path `{0}`")]
    BasePathTaken(String),
    #[error("the group changed since version {expected}; its current version is {current}")]
    Stale { expected: i32, current: i32 },
    #[error("published flows use this group: {}; unpublish them or move them to another group first", .0.join(", "))]
    InUse(Vec<String>),
    #[error(
        "the group `default` serves endpoints that name no group; it can be changed but not deleted"
    )]
    IsDefault,
    #[error("under the new base path, {0} would be served twice")]
    RouteTaken(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

const COLUMNS: &str = "name, base_path, enabled, cors, rate_limit, description, version, \
    to_jsonb(created_at) #>> '{}' AS created_at, to_jsonb(updated_at) #>> '{}' AS updated_at";

fn record(row: PgRow) -> Result<GroupRecord, sqlx::Error> {
    let json = |col: &str| -> Result<Option<Value>, sqlx::Error> {
        Ok(row
            .try_get::<Option<sqlx::types::Json<Value>>, _>(col)?
            .map(|j| j.0))
    };
    let decode = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
    Ok(GroupRecord {
        def: GroupDef {
            name: row.try_get("name")?,
            base_path: row.try_get("base_path")?,
            enabled: row.try_get("enabled")?,
            cors: json("cors")?
                .map(serde_json::from_value)
                .transpose()
                .map_err(decode)?,
            rate_limit: json("rate_limit")?
                .map(serde_json::from_value)
                .transpose()
                .map_err(decode)?,
            description: row.try_get("description")?,
        },
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn constraint_error(e: sqlx::Error, def: &GroupDef) -> GroupError {
    match super::violated_constraint(&e) {
        Some("api_groups_pkey") => GroupError::NameTaken(def.name.clone()),
        Some("api_groups_base_path_key") => GroupError::BasePathTaken(def.base_path.clone()),
        _ => GroupError::Db(e),
    }
}

/// Every group, by name.
pub async fn all(pool: &PgPool) -> Result<Vec<GroupRecord>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    all_on(&mut conn).await
}

/// [`all`] on the caller's connection or transaction.
pub async fn all_on(conn: &mut sqlx::PgConnection) -> Result<Vec<GroupRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM sluice.api_groups ORDER BY name");
    sqlx::query(&sql)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(record)
        .collect()
}

pub async fn get(pool: &PgPool, name: &str) -> Result<GroupRecord, GroupError> {
    let sql = format!("SELECT {COLUMNS} FROM sluice.api_groups WHERE name = $1");
    let row = sqlx::query(&sql)
        .bind(name)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| GroupError::NotFound(name.to_string()))?;
    Ok(record(row)?)
}

fn checked(def: &GroupDef) -> Result<(), GroupError> {
    let problems = def.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(GroupError::Invalid(problems))
    }
}

fn json_or_null<T: Serialize>(v: &Option<T>) -> Option<sqlx::types::Json<Value>> {
    v.as_ref()
        .map(|v| sqlx::types::Json(serde_json::to_value(v).unwrap_or(Value::Null)))
}

pub async fn insert(pool: &PgPool, def: &GroupDef) -> Result<GroupRecord, GroupError> {
    let mut tx = pool.begin().await?;
    let rec = insert_in(&mut tx, def).await?;
    tx.commit().await?;
    Ok(rec)
}

/// [`insert`] inside the caller's transaction (a project apply).
pub async fn insert_in(
    tx: &mut Transaction<'_, Postgres>,
    def: &GroupDef,
) -> Result<GroupRecord, GroupError> {
    checked(def)?;
    let sql = format!(
        "INSERT INTO sluice.api_groups (name, base_path, enabled, cors, rate_limit, description) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&def.name)
        .bind(&def.base_path)
        .bind(def.enabled)
        .bind(json_or_null(&def.cors))
        .bind(json_or_null(&def.rate_limit))
        .bind(&def.description)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| constraint_error(e, def))?;
    Ok(record(row)?)
}

/// Published flows served by `group`: `(id, name, published route)`.
async fn published_in(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT f.id, f.name, f.published_route FROM sluice.flows f \
         JOIN sluice.flow_versions v ON v.flow_id = f.id AND v.version = f.published_version \
         WHERE v.document ? 'endpoint' AND f.published_route IS NOT NULL \
         AND coalesce(v.document #>> '{endpoint,group}', $2) = $1 ORDER BY f.name",
    )
    .bind(group)
    .bind(DEFAULT_GROUP)
    .fetch_all(&mut **tx)
    .await
}

/// Replaces a group's definition (its name stays) if its version is still `expected` (when
/// given). A new base path moves the published routes of the group's flows along, refused if
/// one would then collide with another route.
pub async fn update(
    pool: &PgPool,
    def: &GroupDef,
    expected: Option<i32>,
) -> Result<GroupRecord, GroupError> {
    let mut tx = pool.begin().await?;
    let rec = update_in(&mut tx, def, expected).await?;
    tx.commit().await?;
    Ok(rec)
}

/// [`update`] inside the caller's transaction (a project apply).
pub async fn update_in(
    tx: &mut Transaction<'_, Postgres>,
    def: &GroupDef,
    expected: Option<i32>,
) -> Result<GroupRecord, GroupError> {
    checked(def)?;
    let current: Option<(i32, String)> = sqlx::query_as(
        "SELECT version, base_path FROM sluice.api_groups WHERE name = $1 FOR UPDATE",
    )
    .bind(&def.name)
    .fetch_optional(&mut **tx)
    .await?;
    let (version, old_base) = current.ok_or_else(|| GroupError::NotFound(def.name.clone()))?;
    if let Some(expected) = expected
        && expected != version
    {
        return Err(GroupError::Stale {
            expected,
            current: version,
        });
    }
    let sql = format!(
        "UPDATE sluice.api_groups SET base_path = $2, enabled = $3, cors = $4, rate_limit = $5, \
         description = $6, version = version + 1 WHERE name = $1 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&def.name)
        .bind(&def.base_path)
        .bind(def.enabled)
        .bind(json_or_null(&def.cors))
        .bind(json_or_null(&def.rate_limit))
        .bind(&def.description)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| constraint_error(e, def))?;
    let rec = record(row)?;
    if old_base != def.base_path {
        move_routes(tx, &def.name, &old_base, &def.base_path).await?;
    }
    Ok(rec)
}

/// Rewrites `METHOD <old base><path>` to `METHOD <new base><path>` for the group's published
/// flows. Cleared first, so routes moving within the group cannot collide with each other's
/// old values; the unique constraint then refuses a collision with another group.
async fn move_routes(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    old_base: &str,
    new_base: &str,
) -> Result<(), GroupError> {
    let flows = published_in(tx, group).await?;
    let mut moved = Vec::new();
    for (id, _, route) in &flows {
        let Some((method, path)) = route.split_once(' ') else {
            continue;
        };
        let rest = path.strip_prefix(old_base).unwrap_or(path);
        moved.push((*id, format!("{method} {new_base}{rest}")));
        sqlx::query("UPDATE sluice.flows SET published_route = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    for (id, route) in moved {
        sqlx::query("UPDATE sluice.flows SET published_route = $2 WHERE id = $1")
            .bind(id)
            .bind(&route)
            .execute(&mut **tx)
            .await
            .map_err(|e| {
                if super::violated_constraint(&e) == Some("flows_published_route_key") {
                    GroupError::RouteTaken(route.clone())
                } else {
                    GroupError::Db(e)
                }
            })?;
    }
    Ok(())
}

/// Deletes a group that no published flow uses. `default` cannot be deleted.
pub async fn delete(pool: &PgPool, name: &str, expected: Option<i32>) -> Result<(), GroupError> {
    let mut tx = pool.begin().await?;
    delete_in(&mut tx, name, expected).await?;
    tx.commit().await?;
    Ok(())
}

/// [`delete`] inside the caller's transaction (a project apply).
pub async fn delete_in(
    tx: &mut Transaction<'_, Postgres>,
    name: &str,
    expected: Option<i32>,
) -> Result<(), GroupError> {
    if name == DEFAULT_GROUP {
        return Err(GroupError::IsDefault);
    }
    let version: Option<i32> =
        sqlx::query_scalar("SELECT version FROM sluice.api_groups WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
    let version = version.ok_or_else(|| GroupError::NotFound(name.to_string()))?;
    if let Some(expected) = expected
        && expected != version
    {
        return Err(GroupError::Stale {
            expected,
            current: version,
        });
    }
    let users = published_in(tx, name).await?;
    if !users.is_empty() {
        return Err(GroupError::InUse(
            users.into_iter().map(|(_, n, _)| n).collect(),
        ));
    }
    sqlx::query("DELETE FROM sluice.api_groups WHERE name = $1")
        .bind(name)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The `published_route` key of a plan about to be published, with the base path it is served
/// under: `METHOD <base path><path>` for an endpoint (its group must exist; the row is locked so
/// the group cannot be deleted or moved before the publish commits), `function <name>` for a
/// function.
pub async fn published_route<O>(
    tx: &mut Transaction<'_, Postgres>,
    plan: &crate::flow::Plan<O>,
) -> Result<(String, String), CatalogError> {
    let Some(ep) = &plan.endpoint else {
        return Ok((format!("function {}", plan.name), String::new()));
    };
    let base: Option<String> =
        sqlx::query_scalar("SELECT base_path FROM sluice.api_groups WHERE name = $1 FOR SHARE")
            .bind(ep.group_name())
            .fetch_optional(&mut **tx)
            .await?;
    let base = base.ok_or_else(|| CatalogError::UnknownGroup(ep.group_name().to_string()))?;
    Ok((ep.route_key_under(&base), base))
}

/// The current serving generation (see migration 0008).
pub async fn generation(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT generation FROM sluice.serving")
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(v: Value) -> GroupDef {
        serde_json::from_value(v).expect("decodes")
    }

    #[test]
    fn a_minimal_group_is_valid_and_enabled() {
        let g = def(serde_json::json!({"name": "public_v1", "base_path": "/v1"}));
        assert!(g.enabled);
        assert_eq!(g.problems(), vec![]);
    }

    #[test]
    fn every_problem_of_a_group_is_reported_with_its_pointer() {
        let g = def(serde_json::json!({
            "name": "Bad Name", "base_path": "/v1/",
            "cors": {"allowed_origins": ["*", "https://A.com/x"], "allowed_methods": ["GET", "TRACE"],
                     "allowed_headers": ["x ok"], "allow_credentials": true, "max_age_secs": 100000},
            "rate_limit": {"per_ip": {"requests": 0, "window_secs": 0}}
        }));
        let pointers: Vec<String> = g.problems().into_iter().map(|p| p.pointer).collect();
        assert_eq!(
            pointers,
            [
                "/name",
                "/base_path",
                "/cors/allowed_origins",
                "/cors/allow_credentials",
                "/cors/allowed_origins/1",
                "/cors/allowed_methods/1",
                "/cors/allowed_headers/0",
                "/cors/max_age_secs",
                "/rate_limit/per_ip/requests",
                "/rate_limit/per_ip/window_secs",
            ]
        );
    }

    #[test]
    fn origins_are_scheme_host_and_optional_port() {
        for ok in [
            "https://app.example.com",
            "http://localhost:5173",
            "http://[::1]:8080",
            "http://[::1]",
        ] {
            assert!(is_origin(ok), "{ok}");
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "ftp://x",
            "https://x:",
            "https://x:123456",
            "null",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }

    #[test]
    fn base_paths_are_empty_or_literal_segments() {
        for ok in ["", "/v1", "/shop/v2.1", "/a-b/c_d"] {
            assert!(is_base_path(ok), "{ok}");
        }
        for bad in ["/", "v1", "/v1/", "/{x}", "/V1", "//a"] {
            assert!(!is_base_path(bad), "{bad}");
        }
    }
}
