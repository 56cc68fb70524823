//! `mlgate-bench`: measures mlgate on a PostgreSQL database and prints the
//! tables of BENCHMARKS.md (`src/main.rs` is the command; `tests/bench.rs`
//! of the workspace runs it small). Every scenario checks what it measures (answers
//! without errors and equal to the SQL floor's, row counts, every alert
//! delivered once) and exits non-zero when a check fails.
//!
//! ```sh
//! cargo build --release -p mlgate -p mlgate-bench
//! target/release/mlgate-bench --database-url postgres://postgres@127.0.0.1:5432/mlgate_bench --reset
//! ```

mod args;
mod common;
mod dashboard;
mod fanout;
mod idle;
mod ingest;
mod light;
mod load;
mod noisy;
mod postgraphile;
mod process;
mod reads;
mod scale;
mod seed;
mod stats;

pub use args::Args;
use dashboard::dashboard;
use fanout::fan_out;
use idle::idle;
use ingest::ingest;
use light::light;
use noisy::noisy_neighbour;
use postgraphile::versus_postgraphile;
use reads::reads;
use scale::scale;
use seed::load;

/// Runs the scenarios `args` asks for, handing each finished Markdown
/// section to `emit` (the run can take minutes).
pub async fn run(args: &Args, mut emit: impl FnMut(String)) -> anyhow::Result<()> {
    let wants = |name: &str| args.scenarios.iter().any(|s| s == name);
    emit(format!(
        "# mlgate benchmark run\n\n{} · {} cores\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
    ));
    if args.reset {
        emit(load(args).await?);
    }
    let tenants = server::ops::demo::tenant_names(args.tenants);
    if wants("reads") {
        emit(reads(args, &tenants[0]).await?);
    }
    if wants("postgraphile") {
        emit(versus_postgraphile(args, &tenants[0]).await?);
    }
    if wants("light") {
        emit(light(args, &tenants[0]).await?);
    }
    if wants("scale") {
        emit(scale(args).await?);
    }
    if wants("dashboard") {
        emit(dashboard(args, &tenants).await?);
    }
    if wants("ingest") {
        emit(ingest(args, &tenants).await?);
    }
    if wants("fanout") {
        emit(fan_out(args, &tenants).await?);
    }
    if wants("noisy") {
        emit(noisy_neighbour(args, &tenants).await?);
    }
    if wants("idle") {
        emit(idle(args).await?);
    }
    Ok(())
}
