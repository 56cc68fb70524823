//! The `mlgate` binary: everything lives in the `server` crate.

/// mimalloc instead of the system allocator: a GraphQL answer, a batch's
/// variables and a bulk load's lines are many small allocations, and
/// glibc's malloc and free were about 40 % of a `recordPredictions`
/// profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::cli::main().await
}
