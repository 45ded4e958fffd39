//! `respond`: ends the flow with a status, headers and a body: JSON by default, or a string
//! sent as `text/plain` or `text/html` (`content_type`).

use super::{NodeCx, NodeType};
use crate::flow::plan::{ContentType, Op};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const TYPE: NodeType = NodeType {
    name: "respond",
    ports: &[],
    binds: false,
    dynamic_ports: None,
    compile,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "ok_status")]
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Value,
    #[serde(default)]
    content_type: ContentType,
}

fn ok_status() -> u16 {
    200
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let body = cx.template(&cfg.body, "body")?;
    Some(Op::Respond {
        status: cfg.status,
        headers: cfg.headers.into_iter().collect(),
        body,
        content_type: cfg.content_type,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::problems;
    use crate::flow::plan::{ContentType, Op};
    use serde_json::json;

    fn doc(respond: serde_json::Value) -> serde_json::Value {
        json!({"format": "sluice.flow", "format_version": 1, "name": "t", "entry": "n",
               "nodes": {"n": respond}})
    }

    #[test]
    fn content_type_defaults_to_json_and_takes_text_or_html() {
        for (given, want) in [
            (None, ContentType::Json),
            (Some("text"), ContentType::Text),
            (Some("html"), ContentType::Html),
        ] {
            let mut node = json!({"type": "respond", "body": "hi"});
            if let Some(g) = given {
                node["content_type"] = json!(g);
            }
            let plan = crate::flow::compile(&doc(node), None).expect("compiles");
            assert!(
                matches!(plan.nodes[0].op, Op::Respond { content_type, .. } if content_type == want)
            );
        }
        assert_eq!(
            problems(&doc(json!({"type": "respond", "content_type": "xml"}))),
            [("flow.schema", "/nodes/n/content_type".to_string())]
        );
    }
}
