//! Flow tests as files (`<flow>.tests.json`, format `sluice.test` version 1, docs/TESTING.md):
//! the format, read against its published JSON Schema (`flows/schema/test.v1.schema.json`),
//! its canonical form, and the matcher that compares what a case expects with what happened
//! (a JSON subset, with `$type`, `$any` and `$regex`). Pure: `sluice test` runs the cases.

use crate::engine::replay::Canned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

pub const SCHEMA: &str = include_str!("../../flows/schema/test.v1.schema.json");
pub const FORMAT: &str = "sluice.test";

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(SCHEMA).expect("embedded schema is JSON");
    jsonschema::validator_for(&schema).expect("embedded schema compiles")
});

/// A tests file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestsFile {
    pub format: String,
    pub format_version: u32,
    /// The flow under test, by name.
    pub flow: String,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default, skip_serializing_if = "Given::is_empty")]
    pub given: Given,
    pub when: When,
    pub then: Then,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Given {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rows: BTreeMap<String, Vec<Map<String, Value>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<Canned>,
}

impl Given {
    fn is_empty(&self) -> bool {
        self == &Given::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub claims: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub query: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub headers: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub body: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Then {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Response headers (names in any case), each matched as the body's values are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rows: BTreeMap<String, Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<ExpectedJob>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedJob {
    pub flow: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
}

/// Reads a tests file: every problem against the schema (with its JSON pointer), or the file.
pub fn parse(text: &str) -> Result<TestsFile, Vec<crate::base::Problem>> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| vec![crate::base::Problem::new("", format!("not JSON: {e}"))])?;
    let problems: Vec<_> = VALIDATOR
        .iter_errors(&doc)
        .map(|e| crate::base::Problem::new(e.instance_path().as_str(), e.to_string()))
        .collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    let file: TestsFile = serde_json::from_value(doc)
        .map_err(|e| vec![crate::base::Problem::new("", e.to_string())])?;
    let mut problems = Vec::new();
    for (i, case) in file.cases.iter().enumerate() {
        if file.cases[..i].iter().any(|c| c.name == case.name) {
            problems.push(crate::base::Problem::new(
                format!("/cases/{i}/name"),
                format!("two cases are named `{}`", case.name),
            ));
        }
        if let Some(now) = &case.given.now
            && crate::tables::formats::parse_timestamp(now).is_none()
        {
            problems.push(crate::base::Problem::new(
                format!("/cases/{i}/given/now"),
                format!("`{now}` is not a timestamp"),
            ));
        }
        let mut found = Vec::new();
        if let Some(body) = &case.then.body {
            check_matchers(body, &format!("/cases/{i}/then/body"), &mut found);
        }
        problems.extend(found);
    }
    if problems.is_empty() {
        Ok(file)
    } else {
        Err(problems)
    }
}

/// The canonical text of a tests file: pretty JSON in the field order above, ending in a
/// newline (what `sluice test --update` and the editor write).
pub fn canonical(file: &TestsFile) -> String {
    let mut text = serde_json::to_string_pretty(file).unwrap_or_default();
    text.push('\n');
    text
}

const TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "object", "array", "null",
];

/// An object whose keys all start with `$` is a matcher.
fn matcher(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
        .filter(|o| !o.is_empty() && o.keys().all(|k| k.starts_with('$')))
}

fn check_matchers(v: &Value, at: &str, out: &mut Vec<crate::base::Problem>) {
    if let Some(m) = matcher(v) {
        for (k, arg) in m {
            let ok = match k.as_str() {
                "$type" => arg.as_str().is_some_and(|t| TYPES.contains(&t)),
                "$any" => arg == &Value::Bool(true),
                "$regex" => arg.as_str().is_some_and(|r| regex::Regex::new(r).is_ok()),
                _ => false,
            };
            if !ok {
                out.push(crate::base::Problem::new(
                    format!("{at}/{k}"),
                    "a matcher is {\"$type\": one of string, number, integer, boolean, object, array, null}, {\"$any\": true} or {\"$regex\": a valid regular expression}",
                ));
            }
        }
        return;
    }
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                check_matchers(x, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                check_matchers(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Compares `actual` with `expected`: objects as subsets (every expected key present and
/// matching, more keys allowed), arrays element by element with the same length, numbers by
/// value, matchers by what they say. Each difference is one line with its JSON pointer.
pub fn compare(expected: &Value, actual: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(m) = matcher(expected) {
        for (k, arg) in m {
            let ok = match k.as_str() {
                "$any" => true,
                "$type" => {
                    kind(actual) == arg.as_str().unwrap_or_default()
                        || (arg == "number" && actual.is_number())
                }
                "$regex" => match (arg.as_str().map(regex::Regex::new), actual.as_str()) {
                    (Some(Ok(re)), Some(text)) => re.is_match(text),
                    _ => false,
                },
                _ => false,
            };
            if !ok {
                out.push(format!(
                    "{}: expected {k} {arg}, got {}",
                    shown(at),
                    brief(actual)
                ));
            }
        }
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let path = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match a.get(k) {
                    Some(av) => compare(ev, av, &path, out),
                    None => out.push(format!(
                        "{}: missing (expected {})",
                        shown(&path),
                        brief(ev)
                    )),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{}: expected {} items, got {}",
                    shown(at),
                    e.len(),
                    a.len()
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                compare(ev, av, &format!("{at}/{i}"), out);
            }
        }
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => {}
        (e, a) if e == a => {}
        (e, a) => out.push(format!(
            "{}: expected {}, got {}",
            shown(at),
            brief(e),
            brief(a)
        )),
    }
}

/// What `sluice test --update` writes as the expected value: `actual`, keeping the shape of
/// `old` where it still fits. A matcher that `actual` satisfies stays; an object that shares
/// keys with `actual` keeps to the keys it had (a subset stays a subset, so a value the case
/// never looked at, such as a timestamp, does not enter it); arrays of the same length are
/// updated item by item. Anything else becomes `actual`.
pub fn updated(old: &Value, actual: &Value) -> Value {
    if matcher(old).is_some() {
        let mut found = Vec::new();
        compare(old, actual, "", &mut found);
        return if found.is_empty() {
            old.clone()
        } else {
            actual.clone()
        };
    }
    match (old, actual) {
        (Value::Object(o), Value::Object(a)) if o.keys().any(|k| a.contains_key(k)) => {
            Value::Object(
                o.iter()
                    .filter_map(|(k, ov)| a.get(k).map(|av| (k.clone(), updated(ov, av))))
                    .collect(),
            )
        }
        (Value::Array(o), Value::Array(a)) if o.len() == a.len() => {
            Value::Array(o.iter().zip(a).map(|(ov, av)| updated(ov, av)).collect())
        }
        _ => actual.clone(),
    }
}

fn shown(at: &str) -> &str {
    if at.is_empty() { "/" } else { at }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value in a message: its JSON, cut at 120 characters.
fn brief(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn diff(expected: Value, actual: Value) -> Vec<String> {
        let mut out = Vec::new();
        compare(&expected, &actual, "", &mut out);
        out
    }

    #[test]
    fn objects_match_as_subsets_and_arrays_by_length() {
        assert!(diff(json!({"a": 1}), json!({"a": 1.0, "b": 2})).is_empty());
        assert_eq!(
            diff(json!({"a": 1, "c": 3}), json!({"a": 2})),
            vec!["/a: expected 1, got 2", "/c: missing (expected 3)"]
        );
        assert_eq!(
            diff(json!([1, 2]), json!([1])),
            vec!["/: expected 2 items, got 1"]
        );
        assert_eq!(
            diff(json!({"a/b": [true]}), json!({"a/b": [false]})),
            vec!["/a~1b/0: expected true, got false"]
        );
    }

    #[test]
    fn an_update_keeps_matchers_that_still_hold_and_the_keys_a_case_looked_at() {
        let old = json!({"id": {"$type": "integer"}, "title": "old", "tags": ["a"]});
        let actual = json!({"id": 4, "title": "new", "tags": ["b"], "created_at": "2026-01-01"});
        assert_eq!(
            updated(&old, &actual),
            json!({"id": {"$type": "integer"}, "title": "new", "tags": ["b"]})
        );
        assert_eq!(
            updated(&json!({"error": 1}), &json!({"items": []})),
            json!({"items": []})
        );
        assert_eq!(updated(&json!({"$type": "string"}), &json!(3)), json!(3));
    }

    #[test]
    fn matchers_say_what_kind_of_value_is_expected() {
        let expected = json!({"id": {"$type": "integer"}, "at": {"$regex": "^2026-"},
                              "x": {"$any": true}, "n": {"$type": "number"}});
        assert!(
            diff(
                expected.clone(),
                json!({"id": 3, "at": "2026-01-01", "x": null, "n": 4})
            )
            .is_empty()
        );
        let found = diff(expected, json!({"id": "3", "at": "2025", "n": 1.5}));
        assert_eq!(
            found,
            vec![
                "/at: expected $regex \"^2026-\", got \"2025\"",
                "/id: expected $type \"integer\", got \"3\"",
                "/x: missing (expected {\"$any\":true})",
            ]
        );
    }

    #[test]
    fn files_are_checked_against_the_schema_and_read_back_canonically() {
        let text = r#"{"format": "sluice.test", "format_version": 1, "flow": "f",
            "cases": [{"name": "a", "when": {"method": "GET", "path": "/x"},
                       "then": {"status": 200, "body": {"n": {"$type": "integer"}}}}]}"#;
        let file = parse(text).expect("valid");
        let again = parse(&canonical(&file)).expect("canonical form reads back");
        assert_eq!(file, again);
        assert_eq!(canonical(&again), canonical(&file));

        let bad = r#"{"format": "sluice.test", "format_version": 1, "flow": "f",
            "cases": [{"name": "a", "when": {}, "then": {"body": {"$type": "float"}}},
                      {"name": "a", "when": {}, "then": {}, "extra": 1}]}"#;
        let problems = parse(bad).expect_err("invalid");
        assert!(
            problems.iter().any(|p| p.pointer == "/cases/1"),
            "{problems:?}"
        );
        let bad = r#"{"format": "sluice.test", "format_version": 1, "flow": "f",
            "cases": [{"name": "a", "when": {}, "then": {"body": {"$type": "float"}}},
                      {"name": "a", "when": {}, "then": {}}]}"#;
        let problems = parse(bad).expect_err("invalid");
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert!(pointers.contains(&"/cases/1/name"), "{pointers:?}");
        assert!(
            pointers.contains(&"/cases/0/then/body/$type"),
            "{pointers:?}"
        );
    }
}
