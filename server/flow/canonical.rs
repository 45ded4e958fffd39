//! Canonical JSON: the one byte form in which flows are exported and hashed. Keys are sorted
//! (serde_json's map is ordered), defaults are omitted, numbers are in plain notation as
//! Postgres prints them, two-space indent, trailing newline.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Removes values equal to the format's defaults so files stay short and diffs stay quiet.
pub fn strip_defaults(doc: &mut Value) {
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    if let Some(ep) = obj.get_mut("endpoint").and_then(Value::as_object_mut)
        && ep.get("auth").and_then(Value::as_str) == Some("public")
    {
        ep.remove("auth");
    }
    if let Some(ep) = obj.get_mut("endpoint").and_then(Value::as_object_mut)
        && ep.get("sandbox").and_then(Value::as_bool) == Some(true)
    {
        ep.remove("sandbox");
    }
    if let Some(settings) = obj.get_mut("settings").and_then(Value::as_object_mut)
        && settings.get("timeout_ms").and_then(Value::as_u64) == Some(10_000)
    {
        settings.remove("timeout_ms");
    }
    if obj
        .get("settings")
        .and_then(Value::as_object)
        .is_some_and(|s| s.is_empty())
    {
        obj.remove("settings");
    }
    if let Some(nodes) = obj.get_mut("nodes").and_then(Value::as_object_mut) {
        for node in nodes.values_mut().filter_map(Value::as_object_mut) {
            if node.get("v").and_then(Value::as_u64) == Some(1) {
                node.remove("v");
            }
            if node
                .get("next")
                .and_then(Value::as_object)
                .is_some_and(|n| n.is_empty())
            {
                node.remove("next");
            }
        }
    }
}

/// The canonical text of a document.
pub fn to_canonical_string(doc: &Value) -> String {
    let mut doc = doc.clone();
    // Numbers keep their digits (serde_json's `arbitrary_precision`), so `1e3` and the `1000`
    // that Postgres' jsonb gives back must hash alike (and `1e4` is the default timeout).
    crate::tables::decimal::normalize_numbers(&mut doc);
    strip_defaults(&mut doc);
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

/// Hash of the document's logic: the canonical form without `ui`, so moving a node on the
/// canvas does not change the rev.
pub fn rev(doc: &Value) -> String {
    let mut logic = doc.clone();
    if let Some(obj) = logic.as_object_mut() {
        obj.remove("ui");
    }
    let digest = Sha256::digest(to_canonical_string(&logic).as_bytes());
    digest.iter().take(10).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_sorts_keys_and_drops_defaults() {
        let doc = json!({"nodes": {"b": {"v": 1, "type": "respond"}}, "format": "sluice.flow",
                          "endpoint": {"path": "/x", "method": "GET", "auth": "public"}});
        assert_eq!(
            to_canonical_string(&doc),
            "{\n  \"endpoint\": {\n    \"method\": \"GET\",\n    \"path\": \"/x\"\n  },\n  \"format\": \"sluice.flow\",\n  \"nodes\": {\n    \"b\": {\n      \"type\": \"respond\"\n    }\n  }\n}\n"
        );
    }

    #[test]
    fn a_sandboxed_endpoint_says_nothing_and_an_opted_out_one_shows() {
        let on = json!({"endpoint": {"path": "/x", "method": "GET", "sandbox": true}});
        let plain = json!({"endpoint": {"path": "/x", "method": "GET"}});
        assert_eq!(to_canonical_string(&on), to_canonical_string(&plain));
        assert_eq!(rev(&on), rev(&plain));
        let off = json!({"endpoint": {"path": "/x", "method": "GET", "sandbox": false}});
        assert!(to_canonical_string(&off).contains("\"sandbox\": false"));
        assert_ne!(rev(&off), rev(&plain));
    }

    #[test]
    fn layout_changes_do_not_change_the_rev() {
        let a = json!({"name": "x", "ui": {"nodes": {"a": {"x": 1}}}});
        let b = json!({"name": "x", "ui": {"nodes": {"a": {"x": 99}}}});
        let c = json!({"name": "y"});
        assert_eq!(rev(&a), rev(&b));
        assert_ne!(rev(&a), rev(&c));
        assert_eq!(rev(&a).len(), 20);
    }

    #[test]
    fn numbers_hash_alike_however_they_are_spelled() {
        let a: Value =
            serde_json::from_str(r#"{"settings": {"timeout_ms": 1e4}, "n": [1.5e1, 0.10]}"#)
                .expect("json");
        let b: Value = serde_json::from_str(r#"{"n": [15, 0.10]}"#).expect("json");
        assert_eq!(rev(&a), rev(&b));
        assert_eq!(
            to_canonical_string(&a),
            "{\n  \"n\": [\n    15,\n    0.10\n  ]\n}\n"
        );
    }
}
