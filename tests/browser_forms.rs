//! The inspector's purpose-built forms in a real headless Chromium against a real Sluice and
//! Postgres: `POST /books` built with forms only (input-schema builder, table picker, column
//! mapping, a variable picked for the response), run, published and called; the todo example's
//! mapping, filter and input schema round-trip through the forms and their JSON toggle
//! unchanged; the forms' readers and writers checked in the page; and the CORS form of an API
//! group. Each test ends with a screenshot in `target/screenshots/<test>.png`.

mod common;

use common::browser::Browser;
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

/// The middle of the element matching `css`, in viewport pixels.
async fn center(b: &Browser, css: &str) -> (i64, i64) {
    b.wait_for(css).await;
    let v = b
        .execute(
            "const e = document.querySelector(arguments[0]); e.scrollIntoView({block: 'nearest'});
             const r = e.getBoundingClientRect();
             return [Math.round(r.x + r.width / 2), Math.round(r.y + r.height / 2)];",
            json!([css]),
        )
        .await;
    (v[0].as_i64().unwrap_or(0), v[1].as_i64().unwrap_or(0))
}

/// Presses the mouse at `from`, moves in a few steps to `to`, releases.
async fn drag_points(b: &Browser, from: (i64, i64), to: (i64, i64)) {
    let steps = 6;
    let mut acts = vec![
        json!({"type": "pointerMove", "x": from.0, "y": from.1, "duration": 0}),
        json!({"type": "pointerDown", "button": 0}),
    ];
    for i in 1..=steps {
        acts.push(json!({"type": "pointerMove", "duration": 16,
            "x": from.0 + (to.0 - from.0) * i / steps, "y": from.1 + (to.1 - from.1) * i / steps}));
    }
    acts.push(json!({"type": "pointerUp", "button": 0}));
    b.perform(json!([{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": acts}]))
        .await;
}

async fn drag(b: &Browser, from_css: &str, to_css: &str) {
    let from = center(b, from_css).await;
    let to = center(b, to_css).await;
    drag_points(b, from, to).await;
}

async fn flow_by_name(app: &TestApp, name: &str) -> Value {
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    let id = list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == name)
        .and_then(|f| f["id"].as_i64())
        .unwrap_or_else(|| panic!("flow {name} exists: {list}"));
    let (_, flow) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    flow
}

/// Waits until the flow screen has no unsaved edits.
async fn saved(b: &Browser) {
    b.wait_until(
        "the draft is saved",
        "return document.querySelector('.fl-screen').dataset.dirty === 'false'",
    )
    .await;
}

/// From now on, remembers every `input` event in a text area or editable element of the
/// inspector: building with forms must never type into one (JSON or Rhai).
async fn watch_code_typing(b: &Browser) {
    b.execute(
        "window.__typedCode = [];
         document.addEventListener('input', (e) => {
           const t = e.target;
           if (t instanceof Element && t.closest('.fl-inspector') && (t.matches('textarea') || t.isContentEditable))
             window.__typedCode.push(t.getAttribute('aria-label') || t.className);
         }, true);",
        json!([]),
    )
    .await;
}

#[tokio::test]
async fn post_books_is_built_with_forms_only_then_run_published_and_called() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "books", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "pages", "type": "integer"},
        {"name": "author", "type": "text"},
        {"name": "published", "type": "boolean"}
    ]}))
    .await;
    let b = Browser::start("forms_post_books").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows", app.base)).await;
    b.wait_for_text(".fl-list", "No endpoints yet").await;

    // A new endpoint: name, method, path.
    b.execute(
        "[...document.querySelectorAll('.fl-list-head button')].find(x => x.textContent.includes('New endpoint')).click()",
        json!([]),
    )
    .await;
    b.fill("dialog[open] #fl-new-name", "create_book").await;
    b.choose("dialog[open] #fl-new-method", "POST").await;
    b.fill("dialog[open] #fl-new-path", "/books").await;
    b.click("dialog[open] button[type=submit]").await;
    b.wait_for(".fl-node[data-id=reply]").await;
    watch_code_typing(&b).await;

    // The body's input schema, field by field.
    let body = "[data-prop='input.body']";
    let row = |n: usize| format!("{body} .fm-fields > .fm-frow:nth-child({n})");
    b.wait_for(&format!("{body} .fm-form[data-view=form]"))
        .await;
    for (n, name) in ["title", "pages", "author", "published"].iter().enumerate() {
        b.click(&format!("{body} .fm-add-field")).await;
        b.fill(&format!("{} .fm-fname", row(n + 1)), name).await;
    }
    b.click(&format!("{} .fm-freq", row(1))).await;
    b.click(&format!("{} .fm-notblank", row(1))).await;
    b.choose(&format!("{} .fm-ftype", row(2)), "integer").await;
    b.fill(&format!("{} .fm-minimum", row(2)), "1").await;
    b.choose(&format!("{} .fm-ftype", row(4)), "boolean").await;
    let input = b
        .execute("return window.sluiceFlow.doc().input", json!([]))
        .await;
    assert_eq!(
        input,
        json!({"body": {"type": "object", "properties": {
            "title": {"type": "string", "minLength": 1, "pattern": "\\S"},
            "pages": {"type": "integer", "minimum": 1},
            "author": {"type": "string"},
            "published": {"type": "boolean"}
        }, "required": ["title"]}}),
        "the builder writes the JSON Schema"
    );

    b.screenshot_as("forms_input_schema").await;

    // An insert node: the table from the picker, each column from its request field.
    b.click(".fl-palette-item[data-type='db.insert']").await;
    b.wait_for(".fl-node[data-id=insert]").await;
    b.choose(".fl-inspector select.fm-table", "books").await;
    for col in ["title", "pages", "author", "published"] {
        let r = format!(".fl-inspector .fm-col-row[data-column={col}]");
        b.choose(&format!("{r} .fm-mode"), "request").await;
        let picked = b
            .execute(
                "return document.querySelector(arguments[0]).value",
                json!([format!("{r} .fm-field")]),
            )
            .await;
        assert_eq!(
            picked,
            json!(format!("body.{col}")),
            "the field named like the column is proposed"
        );
    }
    b.wait_gone(".fl-inspector .fm-warn:not(:empty)").await;
    b.screenshot_as("forms_mapping_grid").await;

    // Wire request → insert → reply on the canvas.
    let (x, y) = center(&b, ".fl-node[data-id=reply] .fl-node-head").await;
    drag_points(
        &b,
        center(&b, ".fl-node[data-id=insert] .fl-node-head").await,
        (x - 40, y + 150),
    )
    .await;
    drag(
        &b,
        ".fl-start .fl-out[data-port=entry]",
        ".fl-node[data-id=insert] .fl-node-head",
    )
    .await;
    drag(
        &b,
        ".fl-node[data-id=insert] .fl-out[data-port=ok]",
        ".fl-node[data-id=reply] .fl-node-head",
    )
    .await;
    let doc = b.execute("return window.sluiceFlow.doc()", json!([])).await;
    assert_eq!(doc["entry"], "insert", "{doc}");
    assert_eq!(doc["nodes"]["insert"]["next"]["ok"], "reply", "{doc}");

    // The response: 201 with the inserted row, picked as a variable.
    b.click(".fl-node[data-id=reply] .fl-id").await;
    b.fill(".fl-inspector [data-prop=status] input", "201")
        .await;
    b.choose(".fl-inspector [data-prop=body] .fm-mode", "variable")
        .await;
    b.choose(".fl-inspector [data-prop=body] .fm-var-pick", "insert")
        .await;

    b.click("#fl-save").await;
    saved(&b).await;
    let flow = flow_by_name(&app, "create_book").await;
    let d = &flow["document"];
    assert_eq!(d["nodes"]["insert"]["table"], "books", "{d}");
    assert_eq!(
        d["nodes"]["insert"]["values"],
        json!({
            "title": {"$rhai": "request.body.title"},
            "pages": {"$rhai": "request.body.pages"},
            "author": {"$rhai": "request.body.author"},
            "published": {"$rhai": "request.body.published"}
        }),
        "{d}"
    );
    assert_eq!(d["nodes"]["reply"]["status"], 201, "{d}");
    assert_eq!(
        d["nodes"]["reply"]["body"],
        json!({"$rhai": "insert"}),
        "{d}"
    );
    b.wait_until(
        "the server finds no problem",
        "return document.querySelector('.fl-screen').dataset.problems === '0'",
    )
    .await;

    // Run the draft (the run body is test input, not building).
    b.click("#fl-run-toggle").await;
    b.click("#fl-run-json-toggle").await;
    b.set_value(
        "#fl-run-body",
        r#"{"title": "Dune", "pages": 412, "author": "Frank Herbert", "published": true}"#,
    )
    .await;
    b.click("#fl-run").await;
    b.wait_for_text(".fl-run-result", "HTTP 201").await;
    let run = b
        .execute("return window.sluiceFlow.lastRun().response", json!([]))
        .await;
    assert_eq!(run["status"], 201, "{run}");
    assert_eq!(run["body"]["title"], "Dune", "{run}");
    assert_eq!(run["body"]["pages"], 412, "{run}");
    assert_eq!(run["body"]["published"], true, "{run}");
    assert!(run["body"]["id"].is_number(), "{run}");

    // Publish and call the live endpoint.
    b.click("#fl-publish").await;
    b.click("dialog[open] #fl-publish-confirm").await;
    b.wait_for_text(".fl-state", "published v1").await;
    let (status, row) = app
        .send(app.api(Method::POST, "/books").json(&json!({
            "title": "Solaris", "pages": 204, "author": "Stanisław Lem", "published": false
        })))
        .await;
    assert_eq!(status, 201, "{row}");
    assert_eq!(row["title"], "Solaris");
    assert_eq!(row["author"], "Stanisław Lem");
    assert_eq!(row["published"], false);
    let (status, err) = app
        .send(
            app.api(Method::POST, "/books")
                .json(&json!({"title": "   ", "pages": 10})),
        )
        .await;
    assert_eq!(status, 400, "a blank title is refused: {err}");
    assert_eq!(err["error"]["code"], "input.invalid", "{err}");
    let (status, err) = app
        .send(
            app.api(Method::POST, "/books")
                .json(&json!({"title": "Zero", "pages": 0})),
        )
        .await;
    assert_eq!(status, 400, "pages 0 is refused: {err}");
    let (_, rows) = app.send(app.admin(Method::GET, "/tables/books/rows")).await;
    let titles: Vec<&str> = rows["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["title"].as_str())
        .collect();
    assert_eq!(
        titles,
        vec!["Solaris"],
        "the run rolled back; the live call wrote: {rows}"
    );

    let typed = b.execute("return window.__typedCode", json!([])).await;
    assert_eq!(typed, json!([]), "no JSON or Rhai was typed while building");
    b.finish().await;
}

/// Toggles the JSON view of the form in the field `prop` of the inspector on and off again.
async fn json_and_back(b: &Browser, prop: &str) {
    let form = format!(".fl-inspector [data-prop='{prop}'] .fm-form");
    b.wait_for(&format!("{form}[data-view=form]")).await;
    b.click(&format!("{form} .fm-json-toggle")).await;
    b.wait_for(&format!("{form}[data-view=json] textarea"))
        .await;
    b.click(&format!("{form} .fm-json-toggle")).await;
    b.wait_for(&format!("{form}[data-view=form]")).await;
}

#[tokio::test]
async fn todo_mapping_filter_and_input_schema_round_trip_through_forms_and_json_unchanged() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    // The list endpoint with the documented filter: nested groups, optional request fields.
    let mut list = flow_by_name(&app, "list_todos").await;
    let list_id = list["id"].as_i64().expect("id");
    let mut doc = list["document"].clone();
    doc["nodes"]["load"]["filter"] = json!({"and": [
        {"field": "done", "op": "eq", "value": {"$rhai": "if \"done\" in request.query { request.query.done } else { () }"}},
        {"or": [
            {"field": "title", "op": "contains", "value": {"$rhai": "request.query.q"}},
            {"field": "priority", "op": "ge", "value": 3}
        ]}
    ]});
    doc["nodes"]["load"]["select"] = json!(["id", "title", "priority"]);
    doc["input"]["query"]["properties"]["q"] = json!({"type": "string"});
    doc["input"]["query"]["properties"]["done"] = json!({"type": "boolean"});
    let (status, body) = app
        .send(
            app.admin(Method::PUT, &format!("/flows/{list_id}"))
                .header(
                    "if-match",
                    format!("\"{}\"", list["rev"].as_str().unwrap_or_default()),
                )
                .json(&doc),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    list = flow_by_name(&app, "list_todos").await;
    let create = flow_by_name(&app, "create_todo").await;
    let b = Browser::start("forms_round_trip").await;
    b.sign_in(&app.base).await;

    // The filter, order and selection of the list endpoint.
    b.goto(&format!("{}/_/#/flows/{list_id}", app.base)).await;
    b.wait_for(".fl-node[data-id=load]").await;
    json_and_back(&b, "input.query").await;
    b.click(".fl-node[data-id=load] .fl-id").await;
    let f = ".fl-inspector [data-prop=filter]";
    b.wait_for(&format!("{f} .fm-subgroup .fm-cond[data-field=priority]"))
        .await;
    let modes = b
        .execute(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.dataset.mode)",
            json!([format!("{f} .fm-cond .fm-source")]),
        )
        .await;
    assert_eq!(
        modes,
        json!(["request", "request", "literal"]),
        "each value read into its mode"
    );
    let optional = b
        .execute(
            "return document.querySelector(arguments[0]).checked",
            json!([format!("{f} .fm-cond[data-field=done] .fm-optional")]),
        )
        .await;
    assert_eq!(
        optional, true,
        "the CRUD form of an optional field reads back as 'only when sent'"
    );
    let ops = b
        .execute(
            "return [...document.querySelector(arguments[0]).options].map(o => o.value)",
            json!([format!("{f} .fm-cond[data-field=done] .fm-cond-op")]),
        )
        .await;
    assert!(
        !ops.as_array()
            .is_some_and(|o| o.contains(&json!("contains"))),
        "no text operators on a boolean: {ops}"
    );
    json_and_back(&b, "filter").await;
    json_and_back(&b, "order_by").await;
    json_and_back(&b, "select").await;
    json_and_back(&b, "where").await;
    // The response body {"items": todos} is a name → value row, the value a variable.
    b.click(".fl-node[data-id=reply] .fl-id").await;
    let body = ".fl-inspector [data-prop=body]";
    b.wait_for(&format!("{body} .fm-source[data-mode=object] .fm-map-row[data-key=items] .fm-source[data-mode=variable]"))
        .await;
    b.click(".fl-node[data-id=load] .fl-id").await;
    b.wait_for(&format!("{f} .fm-cond[data-field=done]")).await;

    // Switching "only when sent" off and on again writes the same expression back.
    b.click(&format!("{f} .fm-cond[data-field=done] .fm-optional"))
        .await;
    b.click(&format!("{f} .fm-cond[data-field=done] .fm-optional"))
        .await;
    b.click("#fl-save").await;
    saved(&b).await;
    let after = flow_by_name(&app, "list_todos").await;
    assert_eq!(
        after["document"]["nodes"], list["document"]["nodes"],
        "the nodes are unchanged"
    );
    assert_eq!(
        after["document"]["input"], list["document"]["input"],
        "the input is unchanged"
    );
    b.screenshot_as("forms_filter_builder").await;

    // The mapping of the create endpoint.
    let create_id = create["id"].as_i64().expect("id");
    b.goto(&format!("{}/_/#/flows/{create_id}", app.base)).await;
    b.wait_for(".fl-node[data-id=insert]").await;
    json_and_back(&b, "input.body").await;
    b.click(".fl-node[data-id=insert] .fl-id").await;
    let m = ".fl-inspector [data-prop=values]";
    b.wait_for(&format!("{m} .fm-col-row[data-column=due_at]"))
        .await;
    let modes = b
        .execute(
            "return Object.fromEntries([...document.querySelectorAll(arguments[0])].map(r => [r.dataset.column, r.querySelector('.fm-source').dataset.mode]))",
            json!([format!("{m} .fm-col-row")]),
        )
        .await;
    assert_eq!(
        modes,
        json!({"title": "variable", "done": "request", "priority": "request", "due_at": "request"}),
        "input.title is a variable, the optional fields are request fields"
    );
    let otherwise = b
        .execute(
            "return Object.fromEntries([...document.querySelectorAll(arguments[0])].map(r => [r.dataset.column, r.querySelector('.fm-fallback-kind').value]))",
            json!([format!("{m} .fm-col-row:not([data-column=title])")]),
        )
        .await;
    assert_eq!(
        otherwise,
        json!({"done": "value", "priority": "value", "due_at": "none"}),
        "the fallbacks false, 0 and () read back as values and no value"
    );
    json_and_back(&b, "values").await;
    b.click(&format!(
        "{m} .fm-col-row[data-column=priority] .fm-optional"
    ))
    .await;
    b.click(&format!(
        "{m} .fm-col-row[data-column=priority] .fm-optional"
    ))
    .await;
    b.click("#fl-save").await;
    saved(&b).await;
    let after = flow_by_name(&app, "create_todo").await;
    assert_eq!(
        after["document"]["nodes"], create["document"]["nodes"],
        "the nodes are unchanged"
    );
    assert_eq!(
        after["document"]["input"], create["document"]["input"],
        "the input is unchanged"
    );

    // A typed fallback is written as a Rhai literal in the same form.
    b.set_value(
        &format!("{m} .fm-col-row[data-column=priority] .fm-fallback-body input"),
        "2",
    )
    .await;
    let priority = b
        .execute(
            "return window.sluiceFlow.doc().nodes.insert.values.priority",
            json!([]),
        )
        .await;
    assert_eq!(
        priority,
        json!({"$rhai": "if \"priority\" in request.body { request.body.priority } else { 2 }"})
    );

    // A required column without a default and without a value is flagged in its row.
    b.choose(
        &format!("{m} .fm-col-row[data-column=title] .fm-mode"),
        "unset",
    )
    .await;
    b.wait_for_text(
        &format!("{m} .fm-col-row[data-column=title] .fm-warn"),
        "required",
    )
    .await;
    b.screenshot().await;
    b.finish().await;
}

#[tokio::test]
async fn form_readers_and_writers_follow_the_flow_format() {
    let app = spawn_app().await;
    let b = Browser::start("forms_units").await;
    b.sign_in(&app.base).await;
    let r = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             Promise.all([import('/_/js/flows/forms/source.js'), import('/_/js/flows/forms/filter.js'),
                          import('/_/js/flows/forms/inputschema.js'), import('/_/js/flows/forms/names.js'),
                          import('/_/js/flows/forms/cors.js')])
               .then(([s, f, i, n, c]) => {
                 const col = {name: 'done', type: 'boolean', required: true, hasDefault: true, system: false};
                 const rd = (v, c) => s.readSource(v, c);
                 const back = (v, c) => JSON.stringify(s.writeSource(s.readSource(v, c))) === JSON.stringify(v);
                 const opt = {$rhai: 'if \"done\" in request.body { request.body.done } else { false }'};
                 done({
                   request: rd({$rhai: 'request.body.title'}).kind,
                   optional: rd(opt, col),
                   optionalBack: back(opt, col),
                   variable: rd({$rhai: 'user.id'}).kind,
                   keyword: rd({$rhai: 'true'}).kind,
                   expression: rd({$rhai: 'request.body.a + 1'}).kind,
                   literal: rd(true, col).kind,
                   wrongLiteral: rd('yes', col).kind,
                   object: rd({a: 1}, col).kind,
                   unset: rd(undefined, col).kind,
                   listFits: s.literalFits([1, 2], {type: 'list'}),
                   opsJson: f.opsFor('json'), opsText: f.opsFor('text'), opsPassword: f.opsFor('password'),
                   deep: f.filterProblem({and: [{or: [{and: [{or: [{and: []}]}]}]}]}),
                   fine: f.filterProblem({and: [{field: 'a', op: 'eq', value: 1}]}),
                   odd: f.filterProblem({field: 'a', op: 'eq', value: 1, x: 2}),
                   schemaOk: i.schemaProblem({type: 'object', properties: {t: {type: 'string', minLength: 1, pattern: '\\\\S', format: 'email'}}, required: ['t'], additionalProperties: false}),
                   schemaPattern: i.schemaProblem({type: 'object', properties: {t: {type: 'string', pattern: '^a'}}}),
                   schemaOneOf: i.schemaProblem({oneOf: []}),
                   fields: n.requestFields({endpoint: {path: '/a/{id}'}, input: {body: {properties: {x: {type: 'string'}}}}}).map(x => x.path),
                   vars: n.variables({nodes: {a: {as: 'one', next: {ok: 'b'}}, b: {as: 'two', next: {ok: 'c'}}, c: {}, d: {as: 'other'}}}, 'c'),
                   cols: n.columnsOf([{name: 't', id_type: 'uuid', fields: [{name: 'x', type: 'text', default: 'a'}]}], 't').map(c => [c.name, c.type, c.hasDefault]),
                   group: c.groupProblem({name: 'a', cors: {allowed_origins: ['*'], extra: 1}}),
                 });
               }).catch(e => done({error: String(e)}));",
            json!([]),
        )
        .await;
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["request"], "request");
    assert_eq!(
        r["optional"],
        json!({"kind": "request", "part": "body", "name": "done", "optional": true, "fallback": "false"})
    );
    assert_eq!(
        r["optionalBack"], true,
        "the optional form is written back exactly"
    );
    assert_eq!(r["variable"], "variable");
    assert_eq!(r["keyword"], "expression", "`true` is not a variable");
    assert_eq!(r["expression"], "expression");
    assert_eq!(r["literal"], "literal");
    assert_eq!(
        r["wrongLiteral"], "expression",
        "a text is not a boolean column's literal"
    );
    assert_eq!(r["object"], "expression");
    assert_eq!(r["unset"], "unset");
    assert_eq!(r["listFits"], true);
    assert_eq!(r["opsJson"], json!(["eq", "ne", "in", "is_null"]));
    assert_eq!(
        r["opsText"],
        json!([
            "eq",
            "ne",
            "lt",
            "le",
            "gt",
            "ge",
            "in",
            "contains",
            "starts_with",
            "is_null"
        ])
    );
    assert_eq!(r["opsPassword"], json!([]));
    assert!(
        r["deep"].as_str().is_some_and(|m| m.contains("4 deep")),
        "{r}"
    );
    assert_eq!(r["fine"], Value::Null);
    assert!(r["odd"].is_string(), "{r}");
    assert_eq!(r["schemaOk"], Value::Null, "{r}");
    assert!(
        r["schemaPattern"]
            .as_str()
            .is_some_and(|m| m.contains("pattern")),
        "{r}"
    );
    assert!(
        r["schemaOneOf"]
            .as_str()
            .is_some_and(|m| m.contains("oneOf")),
        "{r}"
    );
    assert_eq!(r["fields"], json!(["request.body.x", "request.params.id"]));
    assert_eq!(
        r["vars"],
        json!([
            "one",
            "two",
            "request.body",
            "request.query",
            "request.params",
            "auth"
        ]),
        "only the variables bound before c"
    );
    assert_eq!(
        r["cols"],
        json!([
            ["id", "uuid", true],
            ["created_at", "timestamp", true],
            ["updated_at", "timestamp", true],
            ["x", "text", true]
        ])
    );
    assert!(
        r["group"].as_str().is_some_and(|m| m.contains("extra")),
        "{r}"
    );

    // Every x-widget hint the node schemas use is a widget the editor has.
    let unknown = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             Promise.all([import('/_/js/flows/widgets.js'), import('/_/js/api.js')])
               .then(([w, a]) => a.api('GET', '/node-types').then(r => {
                 const bad = [];
                 const walk = (s, at) => {
                   if (!s || typeof s !== 'object') return;
                   if (typeof s['x-widget'] === 'string' && !Object.hasOwn(w.WIDGETS, s['x-widget'])) bad.push(`${at}: ${s['x-widget']}`);
                   for (const [k, v] of Object.entries(s)) walk(v, `${at}/${k}`);
                 };
                 const used = new Set();
                 for (const t of r.body.node_types) {
                   walk(t.schema, t.type);
                   for (const p of Object.values(t.schema.properties || {})) if (p['x-widget']) used.add(p['x-widget']);
                 }
                 done({bad, used: [...used].sort()});
               })).catch(e => done({error: String(e)}));",
            json!([]),
        )
        .await;
    assert_eq!(unknown["bad"], json!([]), "{unknown}");
    for hint in [
        "table",
        "columns",
        "filter",
        "order-by",
        "column-list",
        "client-sort",
        "value",
    ] {
        assert!(
            unknown["used"]
                .as_array()
                .is_some_and(|u| u.contains(&json!(hint))),
            "the node schemas use {hint}: {unknown}"
        );
    }
    b.finish().await;
}

#[tokio::test]
async fn an_api_group_and_its_cors_rules_are_set_with_the_form() {
    let app = spawn_app().await;
    let b = Browser::start("forms_cors").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/settings", app.base)).await;
    b.wait_for_text("#cors-list", "default").await;
    b.click("#add-group").await;
    b.fill("dialog[open] input[data-key=name]", "shop").await;
    b.fill("dialog[open] input[data-key=base_path]", "/shop/v1")
        .await;
    b.click("dialog[open] #cors-on").await;
    b.click("dialog[open] #cors-add-origin").await;
    b.fill("dialog[open] .cors-origin", "https://shop.example.com")
        .await;
    b.click("dialog[open] input[data-method=DELETE]").await;
    b.click("dialog[open] #cors-credentials").await;
    b.screenshot_as("forms_cors_dialog").await;
    b.click("dialog[open] button[type=submit]").await;
    b.wait_gone("dialog[open]").await;
    b.wait_for_text("#cors-list li[data-name=shop]", "https://shop.example.com")
        .await;
    let (status, g) = app.send(app.admin(Method::GET, "/groups/shop")).await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(g["base_path"], "/shop/v1");
    assert_eq!(
        g["cors"]["allowed_origins"],
        json!(["https://shop.example.com"])
    );
    assert_eq!(
        g["cors"]["allowed_methods"],
        json!(["GET", "POST", "PUT", "PATCH"])
    );
    assert_eq!(g["cors"]["allow_credentials"], true);

    // Editing again shows the same rules; the JSON toggle shows the group and round-trips.
    // (The "Group saved" toast may cover the button: click it from the page.)
    b.execute(
        "document.querySelector('#cors-list li[data-name=shop] button').click()",
        json!([]),
    )
    .await;
    b.wait_for("dialog[open] .cors-origin").await;
    let unticked = b
        .execute(
            "return document.querySelector('dialog[open] input[data-method=DELETE]').checked",
            json!([]),
        )
        .await;
    assert_eq!(unticked, false);
    b.click("dialog[open] .fm-json-toggle").await;
    let text = b
        .execute(
            "return JSON.parse(document.querySelector('dialog[open] textarea[name=group]').value)",
            json!([]),
        )
        .await;
    assert_eq!(
        text["cors"]["allowed_origins"],
        json!(["https://shop.example.com"])
    );
    b.click("dialog[open] .fm-json-toggle").await;
    b.wait_for("dialog[open] .cors-origin").await;
    b.click("dialog[open] button[type=submit]").await;
    b.wait_gone("dialog[open]").await;
    let (_, again) = app.send(app.admin(Method::GET, "/groups/shop")).await;
    assert_eq!(again["cors"], g["cors"], "saving unchanged keeps the rules");
    b.finish().await;
}

#[tokio::test]
async fn path_parameters_settings_sort_columns_and_column_lists_are_edited_with_forms() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let list = flow_by_name(&app, "list_todos").await;
    let id = list["id"].as_i64().expect("id");
    let b = Browser::start("forms_params_sort_select").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for(".fl-node[data-id=load]").await;

    // A new path parameter gets a row of its own, written once its type is picked.
    let params = ".fl-inspector [data-prop='input.params']";
    b.execute(
        "const p = [...document.querySelectorAll('.fl-inspector .fl-field')].find(f => f.textContent.startsWith('Path')).querySelector('input');
         p.focus(); p.value = '/todos/{list}';
         p.dispatchEvent(new Event('input', {bubbles: true})); p.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([]),
    )
    .await;
    b.wait_for(&format!("{params} .fm-frow.is-ghost[data-field=list]"))
        .await;
    let input = b
        .execute(
            "return window.sluiceFlow.doc().input.params ?? null",
            json!([]),
        )
        .await;
    assert_eq!(
        input,
        Value::Null,
        "a row that is not edited is not written"
    );
    b.choose(
        &format!("{params} .fm-frow[data-field=list] .fm-ftype"),
        "integer",
    )
    .await;
    b.fill(
        &format!("{params} .fm-frow[data-field=list] .fm-minimum"),
        "1",
    )
    .await;
    let input = b
        .execute("return window.sluiceFlow.doc().input.params", json!([]))
        .await;
    assert_eq!(
        input,
        json!({"type": "object", "properties": {"list": {"type": "integer", "minimum": 1}}})
    );

    // The endpoint's settings: a timeout and a rate limit per client address.
    let settings = ".fl-inspector [data-prop=settings]";
    b.fill(&format!("{settings} .fm-timeout_ms"), "5000").await;
    b.fill(&format!("{settings} [data-per=per_ip] .fm-requests"), "60")
        .await;
    b.fill(
        &format!("{settings} [data-per=per_ip] .fm-window_secs"),
        "30",
    )
    .await;
    b.fill(
        &format!("{settings} [data-per=per_token] .fm-requests"),
        "9",
    )
    .await;
    b.set_value(&format!("{settings} [data-per=per_token] .fm-requests"), "")
        .await;
    let st = b
        .execute("return window.sluiceFlow.doc().settings", json!([]))
        .await;
    assert_eq!(
        st,
        json!({"timeout_ms": 5000, "rate_limit": {"per_ip": {"requests": 60, "window_secs": 30}}}),
        "an emptied budget is removed"
    );

    // Sort columns and the column selection of the query.
    b.click(".fl-node[data-id=load] .fl-id").await;
    let order = ".fl-inspector [data-prop=order_by]";
    b.click(&format!("{order} .fm-add")).await;
    b.choose(
        &format!("{order} .fm-order-row:nth-child(2) .fm-order-col"),
        "title",
    )
    .await;
    b.choose(
        &format!("{order} .fm-order-row:nth-child(2) .fm-order-dir"),
        "desc",
    )
    .await;
    let sel = ".fl-inspector [data-prop=select]";
    b.click(&format!("{sel} input[data-column=title]")).await;
    b.click(&format!("{sel} input[data-column=id]")).await;
    let node = b
        .execute("return window.sluiceFlow.doc().nodes.load", json!([]))
        .await;
    assert_eq!(
        node["order_by"],
        json!([{"column": "priority", "desc": true}, {"column": "title", "desc": true}])
    );
    assert_eq!(
        node["select"],
        json!(["id", "title"]),
        "in the table's order"
    );
    // The client sort: the example allows four columns; one more is ticked, one unticked.
    let sort = ".fl-inspector [data-prop=sort]";
    b.click(&format!("{sort} input[data-sort-column=id]")).await;
    b.click(&format!("{sort} input[data-sort-column=due_at]"))
        .await;
    let node_sort = b
        .execute("return window.sluiceFlow.doc().nodes.load.sort", json!([]))
        .await;
    assert_eq!(
        node_sort["allow"],
        json!(["id", "created_at", "title", "priority"]),
        "in the table's order: {node_sort}"
    );
    assert_eq!(
        node_sort["value"],
        json!({"$rhai": "if \"sort\" in request.query { request.query.sort } else { () }"})
    );
    let include = b
        .execute(
            "return [...document.querySelectorAll('.fl-inspector [data-prop=include] input[type=checkbox]')].length",
            json!([]),
        )
        .await;
    assert_eq!(include, 0, "todos has no reference columns to include");
    b.click("#fl-save").await;
    saved(&b).await;
    let after = flow_by_name(&app, "list_todos").await;
    assert_eq!(
        after["document"]["nodes"]["load"]["select"],
        json!(["id", "title"])
    );
    assert_eq!(after["document"]["endpoint"]["path"], "/todos/{list}");
    assert_eq!(after["document"]["nodes"]["load"]["sort"], node_sort);
    assert_eq!(
        after["document"]["settings"], st,
        "the server takes the settings"
    );
    b.finish().await;
}

#[tokio::test]
async fn a_filter_is_built_from_conditions_and_nested_groups() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let list = flow_by_name(&app, "list_todos").await;
    let id = list["id"].as_i64().expect("id");
    let b = Browser::start("forms_filter_build").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.click(".fl-node[data-id=load] .fl-id").await;
    let f = ".fl-inspector [data-prop=filter]";
    b.wait_for_text(f, "No conditions").await;
    let filter = || async {
        b.execute(
            "return window.sluiceFlow.doc().nodes.load.filter ?? null",
            json!([]),
        )
        .await
    };

    // One condition is written as a bare condition.
    b.click(&format!("{f} .fm-group-actions .fm-add")).await;
    b.choose(&format!("{f} .fm-cond-op"), "contains").await;
    b.fill(&format!("{f} .fm-cond .fm-literal"), "milk").await;
    assert_eq!(
        filter().await,
        json!({"field": "title", "op": "contains", "value": "milk"})
    );

    // A nested group: its condition's operator list and value follow the column.
    let root_actions = format!("{f} .fm-filter > .fm-group > .fm-group-actions");
    b.click(&format!("{root_actions} .fm-add:nth-child(2)"))
        .await;
    let sub = format!("{f} .fm-subgroup");
    b.choose(&format!("{sub} .fm-cond-field"), "priority").await;
    let ops = b
        .execute(
            "return [...document.querySelector(arguments[0]).options].map(o => o.value)",
            json!([format!("{sub} .fm-cond-op")]),
        )
        .await;
    assert!(
        !ops.as_array()
            .is_some_and(|o| o.contains(&json!("contains"))),
        "no text operators on an integer: {ops}"
    );
    b.choose(&format!("{sub} .fm-cond-op"), "ge").await;
    b.fill(&format!("{sub} .fm-cond .fm-literal"), "3").await;
    b.click(&format!("{sub} .fm-group-actions .fm-add")).await;
    b.choose(
        &format!("{sub} .fm-cond:nth-child(2) .fm-cond-field"),
        "done",
    )
    .await;
    b.choose(
        &format!("{sub} .fm-cond:nth-child(2) .fm-cond-op"),
        "is_null",
    )
    .await;
    assert_eq!(
        filter().await,
        json!({"and": [
            {"field": "title", "op": "contains", "value": "milk"},
            {"or": [
                {"field": "priority", "op": "ge", "value": 3},
                {"field": "done", "op": "is_null", "value": true}
            ]}
        ]})
    );

    // The server accepts it; removing every condition removes the filter.
    b.click("#fl-save").await;
    saved(&b).await;
    let after = flow_by_name(&app, "list_todos").await;
    assert_eq!(after["document"]["nodes"]["load"]["filter"], filter().await);
    b.screenshot_as("forms_filter_nested").await;
    // Delete pressed on a form's button does not delete the selected node.
    b.execute(
        "document.querySelector(arguments[0]).focus()",
        json!([format!("{sub} .fm-group-actions .fm-add")]),
    )
    .await;
    b.press("\u{E017}").await;
    assert!(
        b.try_find(".fl-node[data-id=load]").await.is_some(),
        "the node is still there"
    );
    b.click(&format!("{sub} .fm-group-head .fm-remove")).await;
    b.click(&format!("{f} .fm-cond .fm-remove")).await;
    assert_eq!(filter().await, Value::Null);
    b.finish().await;
}

#[tokio::test]
async fn matching_request_fields_are_mapped_in_one_click_and_headers_function_and_validate_schema_are_picked()
 {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "books", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "pages", "type": "integer"}
    ]}))
    .await;
    let (status, created) = app
        .send(app.admin(Method::POST, "/flows").json(&json!({
            "format": "sluice.flow", "format_version": 1, "name": "add_book",
            "endpoint": {"method": "POST", "path": "/books"},
            "input": {"body": {"type": "object", "properties": {
                "title": {"type": "string"}, "pages": {"type": "integer"}, "note": {"type": "string"}
            }}},
            "entry": "insert",
            "nodes": {
                "insert": {"type": "db.insert", "as": "book", "table": "books", "values": {"title": {"$rhai": "request.body.title"}}, "next": {"ok": "reply"}},
                "reply": {"type": "respond", "status": 201, "body": {"$rhai": "book"}}
            }
        })))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    let b = Browser::start("forms_map_and_validate").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.click(".fl-node[data-id=insert] .fl-id").await;
    b.wait_for_text(".fl-inspector .fm-map-request", "Map 1 matching")
        .await;
    b.click(".fl-inspector .fm-map-request").await;
    b.wait_for(".fl-inspector .fm-col-row[data-column=pages] .fm-source[data-mode=request]")
        .await;
    let values = b
        .execute(
            "return window.sluiceFlow.doc().nodes.insert.values",
            json!([]),
        )
        .await;
    assert_eq!(
        values,
        json!({"title": {"$rhai": "request.body.title"}, "pages": {"$rhai": "request.body.pages"}})
    );
    assert!(
        b.try_find(".fl-inspector .fm-map-request").await.is_none(),
        "nothing is left to map"
    );

    // Response headers are name → value rows: a text here (an expression is another source).
    b.click(".fl-node[data-id=reply] .fl-id").await;
    let headers = ".fl-inspector [data-prop=headers]";
    b.click(&format!("{headers} .fm-add")).await;
    b.fill(&format!("{headers} .fm-map-key"), "x-source").await;
    b.choose(&format!("{headers} .fm-map-row .fm-mode"), "literal")
        .await;
    b.fill(&format!("{headers} .fm-map-row input.fm-literal"), "forms")
        .await;
    let reply = b
        .execute(
            "return window.sluiceFlow.doc().nodes.reply.headers",
            json!([]),
        )
        .await;
    assert_eq!(reply, json!({"x-source": "forms"}));

    // The body as an object: a name and a value of its own type, no JSON.
    let body = ".fl-inspector [data-prop=body]";
    b.choose(&format!("{body} .fm-mode"), "object").await;
    b.click(&format!("{body} .fm-add")).await;
    b.fill(&format!("{body} .fm-map-key"), "saved").await;
    b.choose(&format!("{body} .fm-map-row .fm-literal-type"), "boolean")
        .await;
    b.click(&format!(
        "{body} .fm-map-row input[type=checkbox].fm-literal"
    ))
    .await;
    b.click(&format!("{body} .fm-add")).await;
    b.fill(
        &format!("{body} .fm-map-row:nth-child(2) .fm-map-key"),
        "pages",
    )
    .await;
    b.choose(
        &format!("{body} .fm-map-row:nth-child(2) .fm-literal-type"),
        "decimal",
    )
    .await;
    b.fill(
        &format!("{body} .fm-map-row:nth-child(2) input.fm-literal"),
        "12",
    )
    .await;
    let reply = b
        .execute("return window.sluiceFlow.doc().nodes.reply.body", json!([]))
        .await;
    assert_eq!(reply, json!({"saved": true, "pages": 12}));

    // A call node picks its function from the flows without an endpoint.
    let (status, body) = app
        .send(app.admin(Method::POST, "/flows").json(&json!({
            "format": "sluice.flow", "format_version": 1, "name": "shout",
            "entry": "out", "nodes": {"out": {"type": "respond", "body": {"$rhai": "request.body"}}}
        })))
        .await;
    assert_eq!(status, 201, "{body}");
    b.click(".fl-palette-item[data-type=call]").await;
    b.wait_for(".fl-node[data-id=call]").await;
    b.wait_until(
        "the function picker lists shout",
        "return [...document.querySelectorAll('.fl-inspector select.fm-function option')].some(o => o.value === 'shout')",
    )
    .await;
    let listed = b
        .execute(
            "return [...document.querySelectorAll('.fl-inspector select.fm-function option')].map(o => o.value)",
            json!([]),
        )
        .await;
    assert!(
        !listed
            .as_array()
            .is_some_and(|l| l.contains(&json!("add_book"))),
        "endpoints are not functions: {listed}"
    );
    b.choose(".fl-inspector select.fm-function", "shout").await;
    let call = b
        .execute("return window.sluiceFlow.doc().nodes.call.flow", json!([]))
        .await;
    assert_eq!(call, "shout");

    // A validate node's schema is built like an input schema.
    b.click(".fl-palette-item[data-type=validate]").await;
    b.wait_for(".fl-node[data-id=validate]").await;
    let schema = ".fl-inspector [data-prop=schema]";
    b.click(&format!("{schema} .fm-add-field")).await;
    b.fill(&format!("{schema} .fm-frow .fm-fname"), "note")
        .await;
    b.click(&format!("{schema} .fm-frow .fm-freq")).await;
    let doc = b
        .execute(
            "return window.sluiceFlow.doc().nodes.validate.schema",
            json!([]),
        )
        .await;
    assert_eq!(
        doc,
        json!({"type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]})
    );
    b.finish().await;
}

#[tokio::test]
async fn every_form_shows_the_generated_crud_flows_and_the_examples_without_falling_back_to_json() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "notes", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "body", "type": "text"},
        {"name": "pinned", "type": "boolean", "required": true, "default": false},
        {"name": "due", "type": "timestamp"},
        {"name": "kind", "type": "enum", "values": ["a", "b"]}
    ]}))
    .await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/notes/crud")
                .json(&json!({"auth": "public"})),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    let flows: Vec<(i64, String)> = list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["id"].as_i64()?, f["name"].as_str()?.to_string())))
        .collect();
    assert_eq!(flows.len(), 5, "{list}");
    // The shipped examples too.
    app.load_todo_example().await;
    app.load_auth_example().await;
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    let flows: Vec<(i64, String)> = list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["id"].as_i64()?, f["name"].as_str()?.to_string())))
        .collect();
    let b = Browser::start("forms_crud_flows").await;
    b.sign_in(&app.base).await;
    for (id, name) in &flows {
        b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
        b.wait_for(".fl-node").await;
        b.wait_for(".fl-inspector .fm-form").await;
        let nodes = b
            .execute(
                "return Object.keys(window.sluiceFlow.doc().nodes)",
                json!([]),
            )
            .await;
        // The endpoint settings, then every node: no form shows its value as JSON.
        let mut views = vec![];
        for node in std::iter::once(None).chain(
            nodes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str())
                .map(Some),
        ) {
            if let Some(n) = node {
                b.execute("window.sluiceFlow.state.select([arguments[0]])", json!([n]))
                    .await;
                b.wait_for(".fl-inspector .fl-type-chip").await;
            }
            let json_views = b
                .execute(
                    "return [...document.querySelectorAll('.fl-inspector .fm-form[data-view=json]')]
                       .map(f => f.closest('[data-prop]')?.dataset.prop + ': ' + f.querySelector('.fm-note').textContent)",
                    json!([]),
                )
                .await;
            views.push((node.unwrap_or("(endpoint)").to_string(), json_views));
        }
        for (node, v) in views {
            assert_eq!(v, json!([]), "{name} {node}: forms fell back to JSON");
        }
    }

    // "may be null" reads and writes the generated `anyOf` form back exactly.
    let (id, _) = flows
        .iter()
        .find(|(_, n)| n == "notes_create")
        .expect("notes_create");
    let created = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await
        .1;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    let row = ".fl-inspector [data-prop='input.body'] .fm-frow[data-field=due]";
    b.wait_for(&format!("{row} .fm-nullable:checked")).await;
    let ty = b
        .execute(
            "return document.querySelector(arguments[0]).value",
            json!([format!("{row} .fm-ftype")]),
        )
        .await;
    assert_eq!(ty, "string");
    b.click(&format!("{row} .fm-nullable")).await;
    let off = b
        .execute(
            "return window.sluiceFlow.doc().input.body.properties.due",
            json!([]),
        )
        .await;
    assert_eq!(off, json!({"type": "string", "format": "date-time"}));
    b.click(&format!("{row} .fm-nullable")).await;
    let input = b
        .execute("return window.sluiceFlow.doc().input", json!([]))
        .await;
    assert_eq!(input, created["document"]["input"]);
    b.finish().await;
}

#[tokio::test]
async fn includes_of_referenced_rows_and_of_rows_that_reference_the_row_are_picked_with_forms() {
    let app = spawn_app().await;
    for def in [
        json!({"name": "authors", "fields": [{"name": "name", "type": "text"}]}),
        json!({"name": "books", "fields": [
            {"name": "title", "type": "text"},
            {"name": "author", "type": "reference", "table": "authors"}]}),
        json!({"name": "readers", "fields": [{"name": "name", "type": "text"}]}),
        json!({"name": "reviews", "fields": [
            {"name": "book", "type": "reference", "table": "books", "indexed": true},
            {"name": "reader", "type": "reference", "table": "readers"},
            {"name": "rating", "type": "integer"}]}),
    ] {
        app.create_table(&def).await;
    }
    let id = app
        .publish(&json!({
            "format": "sluice.flow", "format_version": 1, "name": "book",
            "endpoint": {"method": "GET", "path": "/books/{id}", "auth": "public"},
            "entry": "load",
            "nodes": {
                "load": {"type": "db.get", "table": "books", "as": "book", "id": {"$rhai": "request.params.id"},
                         "next": {"found": "reply"}},
                "reply": {"type": "respond", "body": {"$rhai": "book"}}
            }
        }))
        .await;
    let b = Browser::start("forms_include").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for(".fl-node[data-id=load]").await;
    watch_code_typing(&b).await;
    b.click(".fl-node[data-id=load] .fl-id").await;
    let inc = ".fl-inspector [data-prop=include]";
    b.click(&format!("{inc} input[data-column=author]")).await;
    b.click(&format!("{inc} .fm-inc-add")).await;
    b.wait_for(&format!("{inc} .fm-inc-many")).await;
    b.choose(&format!("{inc} .fm-inc-many .fm-inc-order"), "-rating")
        .await;
    b.fill(&format!("{inc} .fm-inc-many .fm-inc-limit"), "3")
        .await;
    b.fill(&format!("{inc} .fm-inc-many .fm-inc-as"), "top_reviews")
        .await;
    b.click(&format!("{inc} .fm-inc-many input[data-with=reader]"))
        .await;
    let include = b
        .execute(
            "return window.sluiceFlow.doc().nodes.load.include",
            json!([]),
        )
        .await;
    assert_eq!(
        include,
        json!(["author", {"table": "reviews", "by": "book", "order_by": [{"column": "rating", "desc": true}],
                          "limit": 3, "as": "top_reviews", "include": ["reader"]}])
    );
    b.click("#fl-save").await;
    saved(&b).await;
    let typed = b.execute("return window.__typedCode", json!([])).await;
    assert_eq!(typed, json!([]), "built without typing JSON or Rhai");
    let after = flow_by_name(&app, "book").await;
    assert_eq!(after["document"]["nodes"]["load"]["include"], include);
    b.finish().await;
}

#[tokio::test]
async fn an_aggregate_is_grouped_named_and_ordered_with_forms_then_published_and_called() {
    let app = spawn_app().await;
    app.create_table(&common::example("todo/todos.table.json"))
        .await;
    sqlx::query(
        "INSERT INTO app.todos (title, done, priority) VALUES
           ('a', false, 1), ('b', false, 5), ('c', true, 3), ('d', true, 2), ('e', true, NULL)",
    )
    .execute(&app.db)
    .await
    .expect("todos");
    let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "todo_stats",
        "endpoint": {"method": "GET", "path": "/todo_stats"}, "entry": "stats", "nodes": {
            "stats": {"type": "db.aggregate", "table": "todos", "as": "stats",
                      "aggregates": {"count": {"fn": "count"}}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "stats"}}}});
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(&doc)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let b = Browser::start("forms_aggregate").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.click(".fl-node[data-id=stats] .fl-id").await;
    watch_code_typing(&b).await;

    // Group by `done`: json and password columns are not offered.
    let groups = ".fl-inspector [data-prop=group_by]";
    b.click(&format!("{groups} input[data-column=done]")).await;
    // A second aggregate: the largest priority, named `top`; sum offers numbers only.
    let aggs = ".fl-inspector [data-prop=aggregates]";
    b.click(&format!("{aggs} .fm-add-agg")).await;
    let row = format!("{aggs} .fm-agg-row:nth-child(2)");
    b.fill(&format!("{row} .fm-agg-name"), "top").await;
    b.choose(&format!("{row} .fm-agg-fn"), "sum").await;
    let offered = b
        .execute(
            "return [...document.querySelectorAll(arguments[0])].map(o => o.value)",
            json!([format!("{row} .fm-agg-col option")]),
        )
        .await;
    assert_eq!(offered, json!(["id", "priority"]), "sum takes numbers only");
    b.choose(&format!("{row} .fm-agg-fn"), "max").await;
    b.choose(&format!("{row} .fm-agg-col"), "priority").await;
    // Ordered by the aggregate, largest first.
    let order = ".fl-inspector [data-prop=order_by]";
    b.click(&format!("{order} .fm-add")).await;
    b.choose(&format!("{order} .fm-order-row .fm-order-col"), "top")
        .await;
    b.choose(&format!("{order} .fm-order-row .fm-order-dir"), "desc")
        .await;
    let node = b
        .execute("return window.sluiceFlow.doc().nodes.stats", json!([]))
        .await;
    assert_eq!(node["group_by"], json!(["done"]));
    assert_eq!(
        node["aggregates"],
        json!({"count": {"fn": "count"}, "top": {"fn": "max", "column": "priority"}})
    );
    assert_eq!(node["order_by"], json!([{"key": "top", "desc": true}]));
    let typed = b.execute("return window.__typedCode", json!([])).await;
    assert_eq!(typed, json!([]), "no JSON or Rhai was typed");
    b.click("#fl-save").await;
    saved(&b).await;
    b.screenshot().await;

    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, out) = app.send(app.api(Method::GET, "/todo_stats")).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out,
        json!([{"done": false, "count": 2, "top": 5}, {"done": true, "count": 3, "top": 3}])
    );
    b.finish().await;
}
