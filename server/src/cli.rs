//! The `mlgate` command line.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{
    Cli, Command, Config, DemoArgs, DriftThresholdArgs, KeysAction, LogFormat, MigrateAction,
    RollupsAction,
};
use crate::db::{Database, DbSettings};
use crate::identity::Role;
use crate::ops::{self, demo, verify};
use crate::{telemetry, Application};

/// Parses the command line and runs it.
pub async fn main() -> ExitCode {
    let cli = Cli::parse_checked();
    let otlp = match &cli.command {
        None => cli.serve.observability.otlp(),
        Some(Command::Serve(serve)) => serve.observability.otlp(),
        Some(_) => None,
    };
    // Kept until the command is done: dropping it sends the last spans.
    let _traces = match telemetry::init(cli.log_format, otlp.as_ref()) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("error: {}", one_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let log_format = cli.log_format;
    match run(cli, log_format).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_chain(&e));
            if lacks_schema(&e) {
                eprintln!("hint: this database has no mlgate schema yet; run `mlgate migrate up`");
            }
            ExitCode::FAILURE
        }
    }
}

pub async fn run(cli: Cli, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    let database = cli.database.clone();
    let connect = || async {
        let settings = DbSettings::new(&database.database_url, database.db_max_connections);
        // No retrying here: the operator is waiting; the cause is said at once.
        crate::app::connect(&settings, Duration::ZERO).await
    };
    match cli
        .command
        .unwrap_or_else(|| Command::Serve(Box::new(cli.serve)))
    {
        Command::Serve(serve) => {
            let config = Config {
                database: cli.database,
                serve: *serve,
                demo: DemoArgs::default(),
            };
            serve_until_stopped(config, log_format).await?;
        }
        Command::Config(_) => print!("{}", cli.effective),
        Command::Migrate { action } => {
            let db = connect().await?;
            match action {
                MigrateAction::Up => {
                    let pending = db.pending_migrations().await?;
                    if pending.is_empty() {
                        println!("nothing to apply: every migration is applied");
                    }
                    let bar = bar(pending.len() as u64, "migrations");
                    while let Some(name) = db.migrate_up_one().await? {
                        bar.suspend(|| println!("applied {name}"));
                        bar.inc(1);
                    }
                    bar.finish_and_clear();
                }
                MigrateAction::Down { steps, yes } => {
                    let question = format!(
                        "This rolls back the last {steps} migration(s) and drops what they created."
                    );
                    if !yes && !confirm(&question, "yes")? {
                        eprintln!("nothing rolled back");
                        return Ok(ExitCode::FAILURE);
                    }
                    let before = db.pending_migrations().await?;
                    db.migrate_down(steps).await?;
                    for name in db.pending_migrations().await? {
                        if !before.contains(&name) {
                            println!("rolled back {name}");
                        }
                    }
                }
                MigrateAction::Fresh { yes } => {
                    let question = "This drops every table of the database, with all its data, \
                                    and applies the migrations again.";
                    if !yes && !confirm(question, "yes")? {
                        eprintln!("nothing dropped");
                        return Ok(ExitCode::FAILURE);
                    }
                    db.migrate_fresh().await?;
                    println!("dropped everything and applied every migration");
                }
                MigrateAction::Status => {
                    for m in db.migration_status().await? {
                        println!(
                            "{} {}",
                            if m.applied { "applied" } else { "pending" },
                            m.name
                        );
                    }
                }
            }
        }
        Command::VerifySchema { deep } => {
            let db = connect().await?;
            let mut report = verify::verify(&db).await?;
            if deep && report.problems.is_empty() {
                verify::deep(&db, &mut report).await?;
            }
            print!("{}", report.render());
            if !report.problems.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Rollups {
            action: RollupsAction::Rebuild { tenant },
        } => {
            let db = connect().await?;
            let tenants = match tenant {
                Some(tenant) => vec![tenant],
                None => ops::keys::known_tenants(&db, i64::MAX as u64).await?,
            };
            for tenant in tenants {
                let bar = bar(0, "hours");
                bar.set_message(format!("rebuilding the rollups of {tenant}"));
                let hours = ops::rollups::rebuild(&db, &tenant, |p| match p {
                    ops::rollups::Progress::Hours(n) => bar.set_length(n),
                    ops::rollups::Progress::Done(n) => bar.inc(n),
                })
                .await?;
                bar.finish_and_clear();
                println!("{tenant}: {hours} hours rebuilt");
            }
        }
        Command::Demo(args) => {
            let db = connect().await?;
            db.migrate_up().await?;
            let bar = bar(0, "rows");
            let key_file = demo::key_file_for(&database.database_url);
            let summary = demo::seed(&db, &args, key_file.as_deref(), &bar).await?;
            bar.finish_and_clear();
            print!("{}", summary.render(None));
        }
        Command::Keys { action } => {
            let db = connect().await?;
            keys(&db, action).await?;
        }
        Command::DriftThresholds(args) => {
            let db = connect().await?;
            drift_thresholds(&db, args).await?;
        }
        Command::Cleanup { tenant, yes } => {
            let db = connect().await?;
            let question = format!("This deletes every row of tenant `{tenant}`.");
            if !yes && !confirm(&question, &tenant)? {
                eprintln!("nothing deleted");
                return Ok(ExitCode::FAILURE);
            }
            let spinner = indicatif::ProgressBar::new_spinner()
                .with_message(format!("deleting every row of tenant {tenant}"));
            spinner.enable_steady_tick(Duration::from_millis(120));
            let counts = ops::cleanup::cleanup(&db, &tenant).await;
            spinner.finish_and_clear();
            let counts = counts?;
            for (table, rows) in counts {
                println!("{table}: {rows} rows deleted");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve_until_stopped(config: Config, log_format: LogFormat) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    let url = format!("http://{}", app.local_addr());
    match (app.demo(), log_format) {
        (Some(summary), LogFormat::Pretty) => print!("{}", summary.render(Some(&url))),
        (None, LogFormat::Pretty) => {
            println!("mlgate listening on {url} (GraphQL at {url}/graphql)")
        }
        // A JSON log stream stays JSON: the address is in the "mlgate
        // ready" line; the demo keys go to standard error.
        (Some(summary), LogFormat::Json) => eprint!("{}", summary.render(Some(&url))),
        (None, LogFormat::Json) => {}
    }
    std::io::stdout().flush()?;
    app.run_until_stopped().await
}

async fn keys(db: &Database, action: KeysAction) -> anyhow::Result<()> {
    match action {
        KeysAction::Create {
            tenant,
            role,
            name,
            yes,
        } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            if !yes && !ops::keys::tenant_is_known(db, &tenant).await? {
                let known = ops::keys::known_tenants(db, 20).await?;
                let question = format!(
                    "Tenant `{tenant}` has no models and no keys yet (a typo?{}).",
                    if known.is_empty() {
                        String::new()
                    } else {
                        format!(" tenants with data: {}", known.join(", "))
                    }
                );
                if !confirm(&question, "yes")? {
                    anyhow::bail!("no key created");
                }
            }
            let key = ops::keys::create_for_tenant(db, &tenant, role, &name).await?;
            println!("id:     {}", key.info.id);
            println!("tenant: {}", key.info.tenant);
            println!("role:   {}", key.info.role);
            println!("key:    {}", key.secret);
            eprintln!("the key is shown only now; it is stored as a hash");
        }
        KeysAction::Revoke { id } => {
            if !ops::keys::revoke_any(db, id).await? {
                anyhow::bail!("no active key with id {id}");
            }
            println!("revoked {id}");
        }
        KeysAction::List { tenant } => {
            for key in ops::keys::list_for_tenant(db, &tenant).await? {
                println!(
                    "{}  {:<8} {:<14} {:<24} created {}{}",
                    key.id,
                    key.role,
                    key.prefix,
                    key.name,
                    key.created_at.format("%Y-%m-%d %H:%M"),
                    key.revoked_at
                        .map(|at| format!(", revoked {}", at.format("%Y-%m-%d %H:%M")))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

async fn drift_thresholds(db: &Database, args: DriftThresholdArgs) -> anyhow::Result<()> {
    use crate::domain::drift::Method;
    use crate::domain::Vocabulary;
    use crate::store::thresholds::Band;
    let given = [
        (Method::Psi, args.psi_warning, args.psi_critical),
        (Method::Ks, args.ks_warning, args.ks_critical),
        (
            Method::Wasserstein,
            args.wasserstein_warning,
            args.wasserstein_critical,
        ),
        (
            Method::JensenShannon,
            args.jensen_shannon_warning,
            args.jensen_shannon_critical,
        ),
        (
            Method::Hellinger,
            args.hellinger_warning,
            args.hellinger_critical,
        ),
    ];
    // clap makes each band's two flags come together.
    let changes: Vec<(Method, Band)> = given
        .into_iter()
        .filter_map(|(method, warning, critical)| {
            Some((
                method,
                Band {
                    warning: warning?,
                    critical: critical?,
                },
            ))
        })
        .collect();
    anyhow::ensure!(args.set || changes.is_empty(), "threshold flags need --set");
    anyhow::ensure!(
        !args.set || !changes.is_empty(),
        "--set needs at least one band (e.g. --psi-warning 0.1 --psi-critical 0.25)"
    );
    let current = ops::thresholds::set_or_show(db, &args.tenant, &changes).await?;
    println!("tenant:         {}", args.tenant);
    for method in Method::ALL.iter().copied() {
        let band = current.band(method);
        println!(
            "{:<15} warning {} critical {}",
            method.as_db(),
            band.warning,
            band.critical
        );
    }
    match current.updated_at {
        Some(at) => println!("set at {}", at.format("%Y-%m-%d %H:%M")),
        None => println!("(defaults: the tenant set none)"),
    }
    Ok(())
}

/// Asks the operator to confirm `question` by typing `expected`; refuses
/// when nobody can answer (no terminal): pass `--yes` instead.
fn confirm(question: &str, expected: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        eprintln!("{question}\nrefusing without a terminal to confirm on; pass --yes");
        return Ok(false);
    }
    eprint!("{question} Type `{expected}` to confirm: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == expected)
}

/// A progress bar on standard error for `len` `unit` (drawn only on a
/// terminal: piped output and logs get none).
fn bar(len: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {{msg:<12}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{eta}})"
        ))
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

/// The error and its causes, each said once: database errors repeat their
/// source in their own message, which `{:#}` would print twice.
fn one_chain(error: &anyhow::Error) -> String {
    let mut said = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if said.contains(&text) {
            continue;
        }
        if !said.is_empty() {
            said.push_str(": ");
        }
        said.push_str(&text);
    }
    said
}

/// Whether `error` says a table is missing (SQLite and PostgreSQL wording):
/// the database was never migrated.
fn lacks_schema(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}");
    text.contains("no such table") || (text.contains("relation") && text.contains("does not exist"))
}
