//! Logging setup, and the metrics (`metrics.rs`).

pub mod metrics;

use tracing_subscriber::filter::Directive;
use tracing_subscriber::EnvFilter;

/// Targets capped at `info` whatever `RUST_LOG` says: at `trace` the
/// WebSocket library logs every frame it reads and writes, which carry
/// `connection_init` credentials and newly created API key secrets.
const CAPPED: [&str; 2] = ["tungstenite=info", "tokio_tungstenite=info"];

/// The filter: `RUST_LOG`, or `info` with quiet database drivers, and the
/// caps above in any case.
pub fn filter(from_env: Option<&str>) -> EnvFilter {
    let mut filter = from_env
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    for capped in CAPPED {
        filter = filter.add_directive(capped.parse::<Directive>().expect("a valid directive"));
    }
    filter
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Installs the global subscriber; `RUST_LOG` overrides the default `info` level.
/// Colours only on a terminal: a file or a log collector gets no escapes.
/// Safe to call more than once (later calls do nothing).
pub fn init(format: LogFormat) {
    use std::io::IsTerminal;
    let from_env = std::env::var("RUST_LOG").ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(from_env.as_deref()))
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_frames_are_never_traced() {
        for env in [Some("trace"), Some("tungstenite=trace,trace"), None] {
            let rendered = filter(env).to_string();
            assert!(rendered.contains("tungstenite=info"), "{rendered}");
            assert!(!rendered.contains("tungstenite=trace"), "{rendered}");
        }
    }
}
