//! The `mlgate` binary: everything lives in the `api` crate.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::cli::main().await
}
