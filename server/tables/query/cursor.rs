//! Order and cursors of the table-query layer: the data API's sort (several columns, then `id`) with
//! its keyset condition, and the one cursor encoding (hex of JSON) for the data API's cursors and
//! node pages' keysets. Pure.

use super::{OrderKey, Params, TableDef};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The order of a list: up to [`MAX_SORT_KEYS`] columns, then `id` in the direction of the last
/// key (a key on `id` itself can only come last: `id` is unique, nothing after it orders).
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    /// Never empty.
    pub keys: Vec<OrderKey>,
}

/// The most keys a data API sort may have.
pub const MAX_SORT_KEYS: usize = 8;

impl Sort {
    /// `-priority,title`, as requests and cursors write it.
    pub fn spec(&self) -> String {
        self.keys
            .iter()
            .map(|k| format!("{}{}", if k.desc { "-" } else { "" }, k.column.ident))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The keys before the final `id`: the ones whose values a cursor carries.
    pub fn value_keys(&self) -> &[OrderKey] {
        match self.keys.split_last() {
            Some((last, rest)) if last.column.ident.as_str() == "id" => rest,
            _ => &self.keys,
        }
    }

    /// The direction of the final `id`.
    fn id_desc(&self) -> bool {
        self.keys.last().is_some_and(|k| k.desc)
    }

    /// `ORDER BY` terms on row `t`. NULLs are placed where Postgres puts them by default (last
    /// ascending, first descending), written out because the keyset condition relies on it.
    pub fn order_by(&self) -> String {
        let dir = |desc: bool| if desc { "DESC" } else { "ASC" };
        self.value_keys()
            .iter()
            .map(|k| {
                let nulls = if k.desc { "NULLS FIRST" } else { "NULLS LAST" };
                format!("t.{} {} {nulls}", k.column.ident.quoted(), dir(k.desc))
            })
            .chain(std::iter::once(format!("t.\"id\" {}", dir(self.id_desc()))))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The values a page's row is ordered by, as one JSON array of texts (`sort_keys`).
    pub fn key_values(&self) -> String {
        let cols: Vec<String> = self
            .value_keys()
            .iter()
            .map(|k| format!("t.{}::text", k.column.ident.quoted()))
            .collect();
        format!("json_build_array({})", cols.join(", "))
    }

    /// The condition that selects the rows after the row with sort values `keys` (one per
    /// [`Sort::value_keys`], `None` is NULL) and id `id`, in this order.
    pub fn after<S>(
        &self,
        keys: Vec<Option<S>>,
        id: S,
        id_cast: &str,
        params: &mut Params<S>,
    ) -> String {
        let value_keys = self.value_keys();
        let idc = "t.\"id\"";
        let id_cmp = if self.id_desc() { "<" } else { ">" };
        if value_keys.is_empty() {
            let p = params.add(id, id_cast);
            return format!("{idc} {id_cmp} {p}");
        }
        let mut keys = keys;
        if let [only] = value_keys
            && keys.len() == 1
            && only.desc == self.id_desc()
        {
            return single_after(only, keys.pop().flatten(), id, id_cast, params);
        }
        // Several keys: the row is after the cursor when it is equal on the keys before some
        // key and after it on that key, or equal on all of them and after it on `id`. A NULL
        // cursor value is compared with IS NULL, never bound.
        let marks: Vec<Option<String>> = keys
            .into_iter()
            .zip(value_keys)
            .map(|(v, k)| v.map(|v| params.add(v, k.column.cast)))
            .collect();
        let pid = params.add(id, id_cast);
        let col = |k: &OrderKey| format!("t.{}", k.column.ident.quoted());
        let equal = |k: &OrderKey, m: &Option<String>| match m {
            Some(m) => format!("{} = {m}", col(k)),
            None => format!("{} IS NULL", col(k)),
        };
        let mut alternatives = Vec::new();
        for i in 0..=value_keys.len() {
            let mut terms: Vec<String> = value_keys[..i]
                .iter()
                .zip(&marks)
                .map(|(k, m)| equal(k, m))
                .collect();
            let last = match value_keys.get(i) {
                None => Some(format!("{idc} {id_cmp} {pid}")),
                Some(k) => {
                    let c = col(k);
                    match (&marks[i], k.desc) {
                        // Ascending, NULLs come last: after a value are greater values and NULLs.
                        (Some(m), false) if k.column.not_null => Some(format!("{c} > {m}")),
                        (Some(m), false) => Some(format!("({c} > {m} OR {c} IS NULL)")),
                        // Nothing comes after NULL ascending.
                        (None, false) => None,
                        // Descending, NULLs came first and are behind us.
                        (Some(m), true) => Some(format!("{c} < {m}")),
                        (None, true) => Some(format!("{c} IS NOT NULL")),
                    }
                }
            };
            if let Some(last) = last {
                terms.push(last);
                alternatives.push(if terms.len() == 1 {
                    terms.concat()
                } else {
                    format!("({})", terms.join(" AND "))
                });
            }
        }
        if alternatives.len() == 1 {
            alternatives.concat()
        } else {
            format!("({})", alternatives.join(" OR "))
        }
    }
}

/// The keyset condition of a sort by one column, then `id` in the same direction: a row
/// comparison where NULLs allow it, which an index on `(column, id)` serves.
fn single_after<S>(
    key: &OrderKey,
    value: Option<S>,
    id: S,
    id_cast: &str,
    params: &mut Params<S>,
) -> String {
    let (cmp, idc) = (if key.desc { "<" } else { ">" }, "t.\"id\"");
    let col = format!("t.{}", key.column.ident.quoted());
    let cast = key.column.cast;
    match (value, key.column.not_null, key.desc) {
        (Some(k), true, _) | (Some(k), false, true) => {
            let pk = params.add(k, cast);
            let pi = params.add(id, id_cast);
            // Descending, NULLs came first and are behind us; the row comparison is NULL
            // (not true) for them.
            format!("({col}, {idc}) {cmp} ({pk}, {pi})")
        }
        (Some(k), false, false) => {
            let pk = params.add(k, cast);
            let pi = params.add(id, id_cast);
            format!("(({col}, {idc}) > ({pk}, {pi}) OR {col} IS NULL)")
        }
        (None, _, false) => {
            let pi = params.add(id, id_cast);
            format!("({col} IS NULL AND {idc} > {pi})")
        }
        (None, _, true) => {
            let pi = params.add(id, id_cast);
            format!("(({col} IS NULL AND {idc} < {pi}) OR {col} IS NOT NULL)")
        }
    }
}

/// One key of a written sort (`-priority`): the name and whether it is descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortTerm<'a> {
    pub name: &'a str,
    pub desc: bool,
}

/// Why a written sort was refused before its names were looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SortSyntax {
    #[error("sort by at most {max} fields, not {given}")]
    TooMany { max: usize, given: usize },
    #[error("sort `{0}` has an empty key; write fields separated by commas, `-` for descending")]
    EmptyKey(String),
    #[error("sort names `{0}` twice")]
    Twice(String),
}

/// The keys of a written sort, `-priority,title`: at most `max` names separated by commas,
/// each ascending or (`-`) descending, each named once. The one reader of the syntax, for the
/// data API's `sort` and a `db.query`'s client sort; what the names may be is the caller's.
pub fn sort_terms(spec: &str, max: usize) -> Result<Vec<SortTerm<'_>>, SortSyntax> {
    let parts: Vec<&str> = spec.split(',').collect();
    if parts.len() > max {
        return Err(SortSyntax::TooMany {
            max,
            given: parts.len(),
        });
    }
    let mut terms: Vec<SortTerm<'_>> = Vec::with_capacity(parts.len());
    for part in parts {
        let part = part.trim();
        let (desc, name) = match part.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, part),
        };
        if name.is_empty() {
            return Err(SortSyntax::EmptyKey(spec.to_string()));
        }
        if terms.iter().any(|t| t.name == name) {
            return Err(SortSyntax::Twice(name.to_string()));
        }
        terms.push(SortTerm { name, desc });
    }
    Ok(terms)
}

/// The one cursor encoding: hex of a JSON payload. Opaque to clients, and it survives a URL
/// unchanged.
pub fn encode_cursor<T: Serialize>(payload: &T) -> String {
    let text = serde_json::to_string(payload).unwrap_or_default();
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The payload of a cursor made by [`encode_cursor`]; `None` for anything else.
pub fn decode_cursor<T: DeserializeOwned>(s: &str) -> Option<T> {
    if !s.len().is_multiple_of(2) || s.len() > 200_000 {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where a data API page ended: the sort it was made with, the values of its last row in the
/// sort's columns before `id` as Postgres prints them (`None` is NULL), and that row's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub sort: String,
    pub keys: Vec<Option<String>>,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        encode_cursor(self)
    }

    /// `None` for anything [`Cursor::encode`] did not make.
    pub fn decode(s: &str) -> Option<Cursor> {
        decode_cursor(s)
    }
}

/// Where a [`JsonSelect`] page ended: the keys of its last row (the order keys, then the id, as
/// Postgres prints them), under the fingerprint of the query ([`fingerprint`]) so a cursor of
/// another query or order is refused instead of silently starting somewhere else. Encoded as
/// `[fingerprint, key…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyset {
    pub fingerprint: String,
    pub keys: Vec<Option<String>>,
}

/// Why a [`Keyset`] cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadKeyset {
    #[error("is not one this endpoint returned")]
    Foreign,
    #[error("belongs to another query or ordering")]
    OtherQuery,
}

impl Keyset {
    pub fn encode(&self) -> String {
        let mut all = vec![serde_json::Value::String(self.fingerprint.clone())];
        all.extend(self.keys.iter().map(|k| match k {
            Some(s) => serde_json::Value::String(s.clone()),
            None => serde_json::Value::Null,
        }));
        encode_cursor(&all)
    }

    /// The keys of `s` for a query with `fingerprint` and `keys` keys (the last is the id,
    /// never NULL).
    pub fn decode(s: &str, fingerprint: &str, keys: usize) -> Result<Keyset, BadKeyset> {
        let items: Vec<serde_json::Value> = decode_cursor(s).ok_or(BadKeyset::Foreign)?;
        let Some((first, rest)) = items.split_first() else {
            return Err(BadKeyset::Foreign);
        };
        if first.as_str() != Some(fingerprint) {
            return Err(BadKeyset::OtherQuery);
        }
        if rest.len() != keys || !rest.last().is_some_and(serde_json::Value::is_string) {
            return Err(BadKeyset::Foreign);
        }
        let keys = rest
            .iter()
            .map(|k| match k {
                serde_json::Value::Null => Ok(None),
                serde_json::Value::String(s) => Ok(Some(s.clone())),
                _ => Err(BadKeyset::Foreign),
            })
            .collect::<Result<_, _>>()?;
        Ok(Keyset {
            fingerprint: fingerprint.to_string(),
            keys,
        })
    }
}

/// The fingerprint of a [`JsonSelect`] page's cursors: the table and its order keys, then `id`
/// (`todos:priority desc,title,id`).
pub fn fingerprint(def: &TableDef, order: &[OrderKey]) -> String {
    let keys: Vec<String> = order
        .iter()
        .map(|k| format!("{}{}", k.column.ident, if k.desc { " desc" } else { "" }))
        .chain(std::iter::once("id".to_string()))
        .collect();
    format!("{}:{}", def.name, keys.join(","))
}
