//! The accept loop. Written on hyper directly rather than `axum::serve`,
//! which exposes none of what keeps slow or idle clients from holding the
//! server: here a client has `header_timeout` to send each request's
//! headers (hyper starts that timer whenever it waits for a request, so it
//! also closes idle keep-alive connections), at most `max_connections`
//! connections are open at once (WebSockets included, counted until they
//! close; beyond, new connections wait in the kernel's backlog), and each
//! request learns its client's address for the refused-credential throttle.
//! HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which a reverse
//! proxy in front terminates, and h2c would need timeouts of its own.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use super::HttpSettings;
use crate::telemetry::metrics::{metrics, Held, Metrics};

/// The client's address, as a request extension.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub IpAddr);

/// File descriptors kept for everything but client connections (database
/// pools, the listener, logs, the playground's files).
const RESERVED_DESCRIPTORS: u64 = 64;

/// The connection cap, lowered to what the file-descriptor limit allows.
pub fn connection_cap(configured: usize) -> usize {
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _)) => {
            let usable = soft.saturating_sub(RESERVED_DESCRIPTORS).max(1);
            configured.min(usize::try_from(usable).unwrap_or(usize::MAX))
        }
        Err(_) => configured,
    }
}

/// Serves `router` on `listener` until `stop` completes. Then it stops
/// accepting, tells WebSocket connections to close (`shutdown`: they send
/// 1001 "going away"), lets in-flight requests finish, and waits for every
/// connection to end, all within `settings.shutdown_grace`; what is still
/// running then is dropped with the process.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: HttpSettings,
    shutdown: Shutdown,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cap = connection_cap(settings.max_connections);
    if cap < settings.max_connections {
        tracing::info!(
            configured = settings.max_connections,
            cap,
            "connection cap lowered to the file-descriptor limit"
        );
    }
    let slots = Arc::new(Semaphore::new(cap));
    let graceful = GracefulShutdown::new();
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, or a connection reset before accept:
                    // pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        tracing::trace!(client = %peer, "connection accepted");
        let _ = stream.set_nodelay(true);
        // Every request carries its client's address.
        let router = router.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ClientAddress(peer.ip()));
                router.clone().oneshot(request.map(axum::body::Body::new))
            },
        ));
        let connection = http
            .serve_connection_with_upgrades(
                TokioIo::new(Counted {
                    stream,
                    _slot: permit,
                    _gauge: settings
                        .counted
                        .then(|| Metrics::hold(&metrics().http_connections)),
                }),
                service,
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    shutdown.begin();
    let finished = async {
        graceful.shutdown().await;
        // WebSockets (upgraded, so not the graceful watcher's) hold their
        // connection slot until they have closed.
        let _all = slots.acquire_many(cap as u32).await;
    };
    if tokio::time::timeout(settings.shutdown_grace, finished)
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = settings.shutdown_grace.as_secs(),
            "connections still open at the end of the shutdown grace period; closing them"
        );
    }
    Ok(())
}

/// Tells long-lived connections (WebSockets) that the server is stopping.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            sender: std::sync::Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

impl Shutdown {
    fn begin(&self) {
        self.sender.send_replace(true);
    }

    /// Completes once the server is stopping.
    pub async fn begun(&self) {
        let mut receiver = self.sender.subscribe();
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }
}

/// A client connection holding one of the server's connection slots until
/// it closes, also after an upgrade to WebSocket.
struct Counted {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    _gauge: Option<Held>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
