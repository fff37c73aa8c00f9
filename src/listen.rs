//! The HTTP listener the sandbox and the service share: hyper's HTTP/1 server under a cap on
//! connections, with a header-read timeout and a request-body idle timeout, stopping
//! gracefully when its shutdown future completes.
//!
//! `axum::serve` has none of these knobs: a client that opens connections and sends nothing
//! (slowloris) held them for ever, and enough of them ran the process out of file descriptors.
//! Here a permit of a [`Semaphore`] is taken before each `accept`, so beyond
//! [`Limits::max_connections`] new connections wait in the kernel's accept queue (refused once
//! it is full) while the ones held are served; each closed connection frees a permit. hyper's
//! own `header_read_timeout` closes a connection that does not send a request head in time,
//! and tower-http's `RequestBodyTimeout` ends a request whose body stalls. Imports nothing of
//! the crate: `sandbox` and `serve` both stand on it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How much a server lets its clients hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once. Beyond it, new connections wait in the kernel's accept
    /// queue (and are refused when that is full) until a held one closes.
    pub max_connections: usize,
    /// How long a connection may take to send a request's head, counted from when the server
    /// starts waiting for one: a connection that sends nothing, one that trickles its head
    /// (slowloris) and a keep-alive connection idle between requests are all closed after it.
    pub header_read_timeout: Duration,
    /// The longest pause allowed inside a request body; a body that stalls longer ends its
    /// request with an error answer, and the connection closes.
    pub idle_timeout: Duration,
}

impl Limits {
    /// Far below the usual 1,024 file descriptors a process may hold, far above what a run's
    /// `--concurrency` or a back office's browsers and cron jobs open.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
    /// nginx's `client_header_timeout` is 60 s; a client on loopback or a LAN needs far less.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: Limits::DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Limits::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Limits::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// After a failed `accept` (out of file descriptors, a handshake aborted), the pause before
/// the next: long enough for connections to close, short enough that nobody notices.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting, lets the requests in progress finish (idle connections close at once) and
/// returns. Each request carries its peer's address as [`ConnectInfo<SocketAddr>`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.idle_timeout));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (permit, stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let service = router.clone().map_request(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        connections.spawn(serve_connection(
            stream,
            TowerToHyperService::new(service),
            limits,
            stop.clone(),
            permit,
        ));
    }
    stop.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}

/// The next connection, once a slot is free. A failed `accept` ends that attempt, never the
/// server.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> (OwnedSemaphorePermit, TcpStream, SocketAddr) {
    let permit = Arc::clone(slots)
        .acquire_owned()
        .await
        .expect("the connection semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => return (permit, stream, peer),
            Err(error) => {
                tracing::warn!("cannot accept a connection: {error}");
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// Serves one connection until it closes, or until `stop`, when hyper finishes the request in
/// progress and closes; the slot (`_permit`) is freed with it.
async fn serve_connection<S>(
    stream: TcpStream,
    service: S,
    limits: Limits,
    stop: CancellationToken,
    _permit: OwnedSemaphorePermit,
) where
    S: hyper::service::Service<Request<Incoming>, Response = axum::response::Response> + Send,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut stopping = false;
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            () = stop.cancelled(), if !stopping => {
                connection.as_mut().graceful_shutdown();
                stopping = true;
            }
        }
    };
    if let Err(error) = result {
        // A client that times out or goes away is routine for a server.
        tracing::debug!("connection ended: {error}");
    }
}
