//! The `sluice` command line: `serve` (the default), `worker`, `validate`, `openapi`, `export`,
//! `plan` and `apply` (`import` is `apply`).

use crate::client::offline::{FLOW_FILE, collect};
use crate::config::{ClientArgs, Config, ServeArgs, TestArgs};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod flow_tests;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Self-hosted low-code API builder on Postgres"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing the serve settings buys nothing"
)]
enum Command {
    /// Run the server: editor at /_/, admin API at /_/api/v1, endpoints at /api (the default).
    Serve(ServeArgs),
    /// Run a worker-only instance: job workers (at least one), and /healthz, /readyz and
    /// /metrics on the listen address; no API and no editor. Same settings as serve.
    Worker(ServeArgs),
    /// Check flow files offline (format, graph, scopes, Rhai), against the table and API group
    /// files found beside them (tables, columns, access rules, colliding routes), and the flow
    /// tests files (*.tests.json); prints every problem.
    Validate {
        /// Flow files, or directories to search for *.flow.json files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also list every node that bypasses access rules, with its reason, and the rules of
        /// the table files found (docs/RULES.md).
        #[arg(long)]
        rules_report: bool,
    },
    /// Print the OpenAPI 3.1 document that the endpoints of the flow files would publish, from
    /// the files alone (no server): the flows checked against the table and API group files
    /// found in the directories.
    Openapi {
        /// Directories (or flow files) of a project.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Write the project of a running Sluice into DIR: table definitions, API groups, flows
    /// (canonical JSON), environment values and the names of secrets (docs/PROJECT.md).
    /// Project files in DIR that the project no longer has are removed.
    Export {
        dir: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show what applying the project files would change on a running Sluice; nothing is
    /// changed. Exits 1 when the files would be refused, with every problem.
    Plan {
        #[command(flatten)]
        files: ApplyArgs,
        /// Exit 2 (instead of 0) when applying would change something.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Apply the project files to a running Sluice in one transaction: all of it, or nothing
    /// when anything is refused (every problem is printed and the exit code is 1).
    #[command(alias = "import")]
    Apply {
        #[command(flatten)]
        files: ApplyArgs,
    },
    /// Run the flow tests (*.tests.json) of a project against a throwaway database: prints
    /// each case and `N passed, N failed`; exits 1 when a case fails (docs/TESTING.md).
    Test {
        /// Project directories (default: the current directory).
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// Rewrite each case's expected status and body with what the flow answered.
        #[arg(long)]
        update: bool,
        #[command(flatten)]
        db: TestArgs,
    },
}

#[derive(Debug, clap::Args)]
struct ApplyArgs {
    /// Project directories (searched recursively for *.table.json, *.group.json, *.flow.json,
    /// *.tests.json and env.json) or single files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Drop tables that are not in the files, and fields that a table file no longer has,
    /// with their data.
    #[arg(long)]
    allow_drop: bool,
    /// Delete flows and API groups that are not in the files.
    #[arg(long)]
    prune: bool,
    /// Publish every flow whose file differs from its published version.
    #[arg(long)]
    publish: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

/// Parses the command line and runs the chosen command.
pub fn run() -> ExitCode {
    let cli = Cli::parse_from(with_default_command(std::env::args_os().collect()));
    match cli.command {
        Command::Validate {
            paths,
            rules_report,
        } => validate(&paths, rules_report),
        Command::Openapi { paths } => match crate::client::offline::openapi(&paths) {
            Ok(doc) => {
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(problems) => {
                for p in problems {
                    eprintln!("{p}");
                }
                ExitCode::from(1)
            }
        },
        Command::Serve(args) => serve(args, false),
        Command::Worker(args) => serve(args, true),
        Command::Export { dir, client } => {
            let result = block_on(crate::client::export(&client, &dir));
            report(result.map(|n| println!("wrote {n} files to {}", dir.display())))
        }
        Command::Plan {
            files,
            detailed_exitcode,
        } => match plan_or_apply(&files, false) {
            Ok(changes) if changes && detailed_exitcode => ExitCode::from(2),
            Ok(_) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        Command::Apply { files } => match plan_or_apply(&files, true) {
            Ok(_) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        Command::Test { paths, update, db } => flow_tests::run(&paths, update, &db),
    }
}

/// Runs a plan or an apply and prints it; returns whether it changes (changed) anything.
fn plan_or_apply(args: &ApplyArgs, apply: bool) -> Result<bool, ExitCode> {
    let opts = crate::project::apply::Options {
        allow_drop: args.allow_drop,
        prune: args.prune,
        publish: args.publish,
    };
    let result = crate::client::read_files(&args.paths).and_then(|files| {
        block_on(crate::client::plan_or_apply(
            &args.client,
            files,
            opts,
            apply,
        ))
    });
    match result {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print_plan(&report);
            }
            Ok(report.changes())
        }
        Err(crate::client::ClientError::Refused(problems)) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!(
                "sluice: nothing was {}: {} problem(s)",
                if apply { "applied" } else { "planned" },
                problems.len()
            );
            Err(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("sluice: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn print_plan(report: &crate::project::apply::Report) {
    use crate::project::apply::{Action, Item};
    let line = |kind: &str, item: &Item| {
        let action = match item.action {
            Action::Create => "create",
            Action::Change => "change",
            Action::Unchanged => "unchanged",
            Action::Drop => "drop (with its rows)",
            Action::Delete => "delete",
            Action::Kept => "not in the files, kept",
        };
        let publish = if item.publish { ", publish" } else { "" };
        println!("{kind} {}: {action}{publish}", item.name);
        for d in &item.details {
            println!("    {d}");
        }
    };
    for t in &report.tables {
        line("table", t);
    }
    for g in &report.groups {
        line("group", g);
    }
    for f in &report.flows {
        line("flow", f);
    }
    for t in &report.tests {
        line("tests of", t);
    }
    let env = &report.env;
    for (names, what) in [
        (&env.added, "added"),
        (&env.differs, "differs on this instance, kept"),
        (
            &env.missing_secrets,
            "secret missing on this instance: set it there",
        ),
        (&env.not_in_files, "not in the files, kept"),
    ] {
        for n in names {
            println!("env {n}: {what}");
        }
    }
    let verdict = match (report.applied, report.changes()) {
        (true, _) => "applied",
        (false, true) => "the plan changes the project; nothing was changed yet",
        (false, false) => "nothing to change",
    };
    println!("{verdict}");
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("sluice: cannot start the async runtime: {e}");
            std::process::exit(1)
        }
    }
}

fn report(result: Result<(), crate::client::ClientError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `sluice` and `sluice --addr ...` mean `sluice serve ...`: the subcommand is inserted when
/// the first argument is not one, so serve settings are parsed (and checked) only for serve.
fn with_default_command(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let first = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let known = [
        "serve",
        "worker",
        "validate",
        "openapi",
        "export",
        "plan",
        "apply",
        "import",
        "test",
        "help",
        "-h",
        "--help",
        "-V",
        "--version",
    ];
    if !known.contains(&first) {
        args.insert(1.min(args.len()), "serve".into());
    }
    args
}

fn serve(args: ServeArgs, worker_only: bool) -> ExitCode {
    crate::telemetry::init();
    let config = match Config::from_args(args) {
        Ok(mut c) => {
            if worker_only {
                c.worker_only = true;
                c.jobs.workers = c.jobs.workers.max(1);
            }
            c
        }
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.spawn(exit_after_grace());
    let served = runtime.block_on(crate::startup::serve(config));
    // Blocking threads still running (a script or render near its deadline, a password hash)
    // are not waited for: dropping the runtime would wait for them.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How long after the shutdown grace period the cleanup (closing the pool, stopping a private
/// Postgres with a fast shutdown) may take before the process exits anyway.
pub const EXIT_MARGIN: Duration = Duration::from_secs(10);

/// Once a shutdown signal arrives, ends the process [`SHUTDOWN_GRACE`] + [`EXIT_MARGIN`] later
/// whatever still runs. A plain thread does it, so busy async workers cannot delay it; a
/// private Postgres left behind this way is stopped by the next start (`pg::cluster`).
///
/// [`SHUTDOWN_GRACE`]: crate::startup::SHUTDOWN_GRACE
async fn exit_after_grace() {
    let interrupt = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = interrupt => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = interrupt.await;
        }
    }
    let limit = crate::startup::SHUTDOWN_GRACE + EXIT_MARGIN;
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        tracing::error!(
            limit_s = limit.as_secs(),
            "shutdown did not finish in time; exiting"
        );
        std::process::exit(1);
    });
}

/// `sluice validate`: exit 0 when every file compiles, 1 when any has problems, 2 when a file
/// cannot be read or parsed.
fn validate(paths: &[PathBuf], rules_report: bool) -> ExitCode {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &[FLOW_FILE], &mut files);
    }
    if files.is_empty() {
        eprintln!("sluice validate: no flow files (*.flow.json) found");
        return ExitCode::from(2);
    }
    // Table and group files next to the flows: when there are table files, flows are checked
    // against them (tables, columns, access rules, a table trigger's table).
    let context = crate::client::offline::Context::read(paths);
    let tables = context.catalog();
    let mut worst = 0u8;
    for (file, why) in &context.broken {
        println!("{}: {why}", file.display());
        worst = worst.max(1);
    }
    let mut routes = Vec::new();
    let mut bypasses = Vec::new();
    let mut flow_names = std::collections::BTreeSet::new();
    // Token audiences: which flows issue each, and which endpoints accept each.
    let mut audiences = Audiences::default();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{}: cannot read: {e}", file.display());
                worst = worst.max(2);
                continue;
            }
        };
        let doc: serde_json::Value = match serde_json::from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{}: not JSON: {e}", file.display());
                worst = worst.max(2);
                continue;
            }
        };
        if rules_report {
            bypasses.extend(
                rule_bypasses(&doc).into_iter().map(|(node, ty, why)| {
                    format!("{}: node `{node}` ({ty}): {why}", file.display())
                }),
            );
        }
        let catalog =
            (!tables.is_empty()).then_some(&tables as &dyn crate::flow::node::TableCatalog);
        let compiled = crate::nodes::compile(&doc, catalog).and_then(|p| {
            let mut problems = Vec::new();
            if let Some(crate::flow::trigger::Trigger::Table(t)) = &p.trigger
                && !tables.is_empty()
            {
                crate::flow::trigger::check_table(t, &|name| tables.get(name), &mut problems);
            }
            if problems.is_empty() {
                Ok(p)
            } else {
                Err(problems)
            }
        });
        match compiled {
            Ok(plan) => {
                println!("{}: ok", file.display());
                audiences.read(&doc, &file);
                // Warnings are printed and leave the exit status alone.
                for w in &plan.warnings {
                    println!("{}: {w}", file.display());
                }
                flow_names.insert(plan.name.clone());
                if let Some(ep) = &plan.endpoint {
                    match context.group(ep.group_name()) {
                        Some((base, _)) => routes.push((ep.route_key_under(base), file.clone())),
                        // Without group files, a group is the server's business.
                        None if context.groups.is_empty() => {}
                        None => {
                            worst = worst.max(1);
                            println!(
                                "{}: error at /endpoint/group: API group `{}` has no file among the group files",
                                file.display(),
                                ep.group_name()
                            );
                        }
                    }
                }
                if plan.endpoint.as_ref().is_some_and(|e| !e.sandbox) {
                    println!(
                        "{}: warning at /endpoint/sandbox: not sandboxed; a script injected \
                         into its pages runs with the server's origin and can act as a \
                         signed-in editor",
                        file.display()
                    );
                }
            }
            Err(problems) => {
                worst = worst.max(1);
                for p in problems {
                    println!("{}: {p}", file.display());
                }
            }
        }
    }
    audiences.warn();
    for (route, files) in crate::client::offline::collisions(&routes) {
        worst = worst.max(1);
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        println!(
            "route {route} is served by more than one flow: {}",
            names.join(", ")
        );
    }
    // Flow tests beside the flows: their format, and a flow to test among the flow files.
    let mut tests = Vec::new();
    for p in paths.iter().filter(|p| p.is_dir()) {
        collect(p, &[crate::project::files::TESTS_FILE], &mut tests);
    }
    for file in tests {
        let parsed = std::fs::read_to_string(&file)
            .map_err(|e| vec![crate::base::Problem::new("", format!("cannot read: {e}"))])
            .and_then(|t| crate::project::flow_tests::parse(&t));
        match parsed {
            Ok(t) if flow_names.contains(&t.flow) => println!("{}: ok", file.display()),
            Ok(t) => {
                worst = worst.max(1);
                println!(
                    "{}: error at /flow: no flow named `{}` among the flow files",
                    file.display(),
                    t.flow
                );
            }
            Err(problems) => {
                worst = worst.max(1);
                for p in problems {
                    println!("{}: error at {}: {}", file.display(), p.pointer, p.message);
                }
            }
        }
    }
    // The access rules of the table files, checked against those files as a save would check
    // them. A table referencing one that is not among the files is left to the server.
    for (file, def) in &context.tables {
        let resolved = def
            .fields
            .iter()
            .filter_map(|f| f.table.as_ref())
            .all(|t| tables.contains_key(t.as_str()));
        if !resolved {
            continue;
        }
        for p in crate::tables::rules::check(def, &tables) {
            worst = worst.max(1);
            println!("{}: error at {}: {}", file.display(), p.pointer, p.message);
        }
    }
    if rules_report {
        print_rules_report(&tables, &bypasses);
    }
    ExitCode::from(worst)
}

/// The nodes of a flow document (nested bodies included) that bypass access rules: id, type
/// and the written reason.
fn rule_bypasses(doc: &serde_json::Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let Some(nodes) = doc.get("nodes").and_then(serde_json::Value::as_object) else {
        return out;
    };
    for (id, node) in nodes {
        if let Some(why) = node
            .pointer("/rules/bypass")
            .and_then(serde_json::Value::as_str)
        {
            let ty = node
                .get("type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?");
            out.push((id.clone(), ty.to_string(), why.to_string()));
        }
        if let Some(body) = node.get("body") {
            out.extend(rule_bypasses(body));
        }
    }
    out
}

/// `sluice validate --rules-report`: the tables' rules, then every bypass.
fn print_rules_report(tables: &crate::tables::def::Tables, bypasses: &[String]) {
    println!("== access rules");
    let mut any = false;
    for (name, def) in tables {
        let Some(rules) = &def.rules else { continue };
        any = true;
        let mut actions: Vec<&str> = crate::tables::def::RULE_ACTIONS
            .iter()
            .copied()
            .filter(|a| rules.get(a).is_some())
            .collect();
        if rules.create.is_some() {
            actions.insert(0, "create");
        }
        println!("table `{name}`: rules on {}", actions.join(", "));
    }
    if !any {
        println!("no table file (*.table.json) with rules");
    }
    println!("== nodes that bypass access rules: {}", bypasses.len());
    for b in bypasses {
        println!("{b}");
    }
}

/// The token audiences of the flows `sluice validate` checked together: an endpoint that
/// accepts an audience no flow issues (nothing can call it), or a flow that issues one no
/// endpoint accepts (its tokens open nothing), is a warning. `api`, the default, is left out.
#[derive(Default)]
struct Audiences {
    /// audience -> (file, pointer) of each `auth.issue_token` that issues it
    issued: std::collections::BTreeMap<String, Vec<(String, String)>>,
    /// audience -> file of each endpoint that accepts it
    accepted: std::collections::BTreeMap<String, Vec<String>>,
}

impl Audiences {
    fn read(&mut self, doc: &serde_json::Value, file: &std::path::Path) {
        let name = file.display().to_string();
        if let Some(a) = doc.pointer("/endpoint/audience").and_then(|v| v.as_str()) {
            self.accepted
                .entry(a.to_string())
                .or_default()
                .push(name.clone());
        }
        let mut stack = vec![("/nodes".to_string(), doc.get("nodes"))];
        while let Some((at, Some(serde_json::Value::Object(nodes)))) = stack.pop() {
            for (id, node) in nodes {
                let here = format!("{at}/{}", crate::flow::diag::seg(id));
                if node.get("type").and_then(|t| t.as_str()) == Some("auth.issue_token")
                    && let Some(a) = node.get("audience").and_then(|v| v.as_str())
                {
                    let entry = self.issued.entry(a.to_string()).or_default();
                    entry.push((name.clone(), format!("{here}/audience")));
                }
                stack.push((format!("{here}/body/nodes"), node.pointer("/body/nodes")));
            }
        }
    }

    fn warn(&self) {
        for (audience, files) in &self.accepted {
            if audience != crate::base::DEFAULT_AUDIENCE && !self.issued.contains_key(audience) {
                for f in files {
                    println!(
                        "{f}: warning at /endpoint/audience: no flow checked here issues tokens of audience `{audience}`"
                    );
                }
            }
        }
        for (audience, places) in &self.issued {
            if audience != crate::base::DEFAULT_AUDIENCE && !self.accepted.contains_key(audience) {
                for (f, at) in places {
                    println!(
                        "{f}: warning at {at}: no endpoint checked here accepts tokens of audience `{audience}`"
                    );
                }
            }
        }
    }
}
