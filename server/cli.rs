//! The `sluice` command line: `serve` (the default), `worker`, `validate`, `openapi`, `export`
//! and `import`.

use crate::client::offline::{FLOW_FILE, GROUP_FILE, collect};
use crate::config::{ClientArgs, Config, ServeArgs};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    /// files found beside them (tables, columns, access rules, colliding routes); prints every
    /// problem.
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
    /// Write every flow (canonical JSON), table definition and API group of a running Sluice
    /// into DIR.
    Export {
        dir: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create or replace API groups and flows from files. Every file is checked offline first
    /// and nothing is sent if any has a problem; then the files are sent one by one, and a
    /// refusal by the server stops the import at that file: the files before it stay imported
    /// and are listed.
    Import {
        /// Flow and group files, or directories to search for *.flow.json and *.group.json files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Publish each imported flow.
        #[arg(long)]
        publish: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
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
        Command::Import {
            paths,
            publish,
            client,
        } => {
            let mut files = Vec::new();
            for p in &paths {
                collect(p, &[FLOW_FILE, GROUP_FILE], &mut files);
            }
            let result = block_on(crate::client::import(&client, &files, publish));
            let print = |done: &[crate::client::Imported]| {
                for d in done {
                    println!(
                        "{}: {} {}{}",
                        d.file.display(),
                        d.action,
                        d.name,
                        if d.published { " and published" } else { "" }
                    );
                }
            };
            if let Err(crate::client::ClientError::Partial { done, .. }) = &result {
                print(done);
            }
            report(result.map(|done| print(&done)))
        }
    }
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
        "import",
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
    for (route, files) in crate::client::offline::collisions(&routes) {
        worst = worst.max(1);
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        println!(
            "route {route} is served by more than one flow: {}",
            names.join(", ")
        );
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
