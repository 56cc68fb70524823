//! Logging setup, and the metrics (`metrics.rs`).

pub mod metrics;
pub mod traces;

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
/// With `otlp`, spans are also exported as OpenTelemetry traces; keep the
/// returned guard alive while serving (dropping it sends what is left).
/// Safe to call more than once (later calls do nothing).
pub fn init(
    format: LogFormat,
    otlp: Option<&traces::OtlpSettings>,
) -> anyhow::Result<Option<traces::Traces>> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let from_env = std::env::var("RUST_LOG").ok();
    let ansi = std::io::stdout().is_terminal();
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_ansi(ansi).boxed(),
    }
    .with_filter(filter(from_env.as_deref()));
    let (guard, spans) = match otlp {
        Some(settings) => {
            let (guard, tracer) = traces::provider(settings)?;
            // Spans of mlgate itself; the drivers' own are noise here.
            let spans = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(EnvFilter::new("server=info"));
            (Some(guard), Some(spans))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init();
    Ok(guard)
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
