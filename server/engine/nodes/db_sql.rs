//! `db.sql` at run time: parameters are bound as text (the statement casts them), and the
//! statement runs as role `sluice_app` inside the request's transaction ([`Cx::fetch_as_app`]).

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step, bind_text};
use crate::flow::expr::Template;
use crate::flow::plan::Statement;
use serde_json::{Map, Value};

pub async fn run(
    cx: &mut Cx<'_>,
    statement: &Statement,
    params: &[Template],
    ok: usize,
) -> Result<Step, RunError> {
    let mut binds = Vec::with_capacity(params.len());
    let mut seen = Map::new();
    for (name, t) in statement.names.iter().zip(params) {
        let v = cx.eval(t).await?;
        binds.push(bind_text(&v));
        seen.insert(name.clone(), v);
    }
    cx.note_input(|| Value::Object(seen));
    let rows = cx.fetch_as_app(binds).await?;
    Ok(Step::Next {
        port: "ok",
        to: ok,
        bind: Some(rows.unwrap_or_else(|| Value::Array(Vec::new()))),
    })
}
