//! Order and cursors of the table-query layer: the data API's sort (one column, then `id`) with
//! its keyset condition, and the one cursor encoding (hex of JSON) for the data API's cursors and
//! node pages' keysets. Pure.

use super::{Column, OrderKey, Params, TableDef};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The order of a list: one column, then `id` in the same direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub column: Column,
    pub desc: bool,
}

impl Sort {
    /// `title` or `-title`, as requests and cursors write it.
    pub fn spec(&self) -> String {
        format!("{}{}", if self.desc { "-" } else { "" }, self.column.ident)
    }

    pub fn is_id(&self) -> bool {
        self.column.ident.as_str() == "id"
    }

    /// `ORDER BY` terms on row `t`. NULLs are placed where Postgres puts them by default (last
    /// ascending, first descending), written out because the keyset condition relies on it.
    pub fn order_by(&self) -> String {
        let (dir, nulls) = if self.desc {
            ("DESC", "NULLS FIRST")
        } else {
            ("ASC", "NULLS LAST")
        };
        if self.is_id() {
            format!("t.\"id\" {dir}")
        } else {
            format!(
                "t.{} {dir} {nulls}, t.\"id\" {dir}",
                self.column.ident.quoted()
            )
        }
    }

    /// The condition that selects the rows after the row with sort value `key` (`None` is
    /// NULL) and id `id`, in this order.
    pub fn after<S>(&self, key: Option<S>, id: S, id_cast: &str, params: &mut Params<S>) -> String {
        let (cmp, idc) = (if self.desc { "<" } else { ">" }, "t.\"id\"");
        if self.is_id() {
            let p = params.add(id, id_cast);
            return format!("{idc} {cmp} {p}");
        }
        let col = format!("t.{}", self.column.ident.quoted());
        let cast = self.column.cast;
        match (key, self.column.not_null, self.desc) {
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

/// Where a data API page ended: the sort it was made with, the sort column's value of its
/// last row as Postgres prints it (`None` is NULL), and that row's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub sort: String,
    pub key: Option<String>,
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
