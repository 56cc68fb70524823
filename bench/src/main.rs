use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = mlgate_bench::Args::parse();
    mlgate_bench::run(&args, |section| print!("{section}")).await
}
