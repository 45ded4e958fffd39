//! Filter conditions evaluated in memory, over a row as Postgres writes it in JSON (`to_jsonb`):
//! what a table trigger's `when` and an access rule's in-memory predicate use, so both mean what
//! the same condition means in SQL. Pure.

use super::query::FilterOp;
use serde_json::Value;
use std::cmp::Ordering;

/// Whether a field with value `field` satisfies `op value`. A NULL field satisfies only
/// `ne` (SQL's `IS DISTINCT FROM`) and `is_null: true`. `contains`/`starts_with` take the
/// value as written (not a LIKE pattern).
pub fn holds(field: &Value, op: FilterOp, value: &Value) -> bool {
    match op {
        FilterOp::Eq => same(field, value),
        FilterOp::Ne => !same(field, value),
        FilterOp::Lt => compare(field, value) == Some(Ordering::Less),
        FilterOp::Le => matches!(
            compare(field, value),
            Some(Ordering::Less | Ordering::Equal)
        ),
        FilterOp::Gt => compare(field, value) == Some(Ordering::Greater),
        FilterOp::Ge => matches!(
            compare(field, value),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        FilterOp::In => value
            .as_array()
            .is_some_and(|vs| vs.iter().any(|v| same(field, v))),
        FilterOp::Contains => match (field.as_str(), value.as_str()) {
            (Some(f), Some(v)) => f.to_lowercase().contains(&v.to_lowercase()),
            _ => false,
        },
        FilterOp::StartsWith => match (field.as_str(), value.as_str()) {
            (Some(f), Some(v)) => f.starts_with(v),
            _ => false,
        },
        FilterOp::IsNull => value.as_bool() == Some(field.is_null()),
    }
}

/// A number, or text that reads as one (decimals may be written as text).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A timestamp with its offset.
fn instant(v: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
}

/// Orders a field against a value: numbers as numbers, timestamps as instants, other text as
/// text. A NULL field, or values of different kinds, are not ordered.
fn compare(field: &Value, value: &Value) -> Option<Ordering> {
    if field.is_null() {
        return None;
    }
    if field.is_number() || value.is_number() {
        return number(field)?.partial_cmp(&number(value)?);
    }
    if let (Some(a), Some(b)) = (instant(field), instant(value)) {
        return Some(a.cmp(&b));
    }
    match (field, value) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn same(field: &Value, value: &Value) -> bool {
    if field.is_null() {
        return false;
    }
    match (field, value) {
        (Value::String(a), Value::String(b)) if a == b => true,
        (Value::Object(_) | Value::Array(_), _) => field == value,
        _ => compare(field, value) == Some(Ordering::Equal),
    }
}
