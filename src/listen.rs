//! The HTTP listener the sandbox and the service share: `axum::serve` on a listener that caps
//! connections and closes those that do not send a request head in time, with a request-body
//! idle timeout, stopping gracefully when its shutdown future completes.
//!
//! `axum::serve` on a bare `TcpListener` has none of these knobs: a client that opens
//! connections and sends nothing (slowloris) held them for ever, and enough of them ran the
//! process out of file descriptors. Here [`Capped`] takes a permit of a [`Semaphore`] before
//! each `accept`, so beyond [`Limits::max_connections`] new connections wait in the kernel's
//! accept queue (refused once it is full) while the ones held are served; the permit goes
//! with the connection's [`Guarded`] stream, so each closed connection frees one. [`Guarded`]
//! also keeps the header-read deadline that hyper would keep if axum let it be set (see
//! [`HeadClock`]), and tower-http's `RequestBodyTimeout` ends a request whose body stalls.
//! Imports nothing of the crate: `sandbox` and `serve` both stand on it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::serve::{Listener, ListenerExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
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

/// Serves `router` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting, lets the requests in progress finish (idle connections close at once) and
/// returns. Each request carries its peer's address as
/// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.idle_timeout));
    let listener = Capped {
        listener,
        slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        header_read_timeout: limits.header_read_timeout,
    }
    // `tap_io` is what gives a listener other than `TcpListener` its `ConnectInfo`.
    .tap_io(|_: &mut Guarded| {});
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// A `TcpListener` that accepts a connection only once one of its slots is free.
struct Capped {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    header_read_timeout: Duration,
}

/// After a failed `accept` (out of file descriptors, a handshake aborted), the pause before
/// the next: long enough for connections to close, short enough that nobody notices.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

impl Listener for Capped {
    type Io = Guarded;
    type Addr = SocketAddr;

    /// The next connection, once a slot is free. A failed `accept` ends that attempt, never
    /// the server.
    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    let guarded = Guarded {
                        stream,
                        clock: HeadClock::default(),
                        timeout: self.header_read_timeout,
                        deadline: Box::pin(tokio::time::sleep(self.header_read_timeout)),
                        _slot: slot,
                    };
                    return (guarded, peer);
                }
                Err(error) => {
                    tracing::warn!("cannot accept a connection: {error}");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Whether a connection is waiting for a request head, as its bytes tell: from its start and
/// from each answer the server writes, until a blank line ends a head that has some text.
/// While it waits, the head must come before a deadline; once a head is in, the body and the
/// handler are the server's business (the body's own idle timeout), until the server answers.
/// An interim answer (`100 Continue`, before a body is sent) is no answer: the head is in.
/// Heads that come together (pipelining, which browsers do not do) count as one: the next is
/// already read, and the wait for it counts from the answer before it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct HeadClock {
    /// A head is in and not yet answered.
    head_in: bool,
    /// The head being read has had some text, and its last line break was followed only by
    /// `\r` since (the next `\n` ends the head: `\r\n\r\n`, or the bare `\n\n` hyper takes).
    has_text: bool,
    at_line_start: bool,
}

impl HeadClock {
    fn waiting(&self) -> bool {
        !self.head_in
    }

    /// Bytes read from the client.
    fn read(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.head_in {
                return;
            }
            match byte {
                b'\n' if self.has_text && self.at_line_start => self.head_in = true,
                b'\n' => self.at_line_start = self.has_text,
                b'\r' => {}
                _ => {
                    self.has_text = true;
                    self.at_line_start = false;
                }
            }
        }
    }

    /// Bytes written to the client: the start of an answer (or more of one) ends the wait
    /// for the head, and starts the wait for the next.
    fn wrote(&mut self, bytes: &[u8]) {
        let interim = self.head_in && (bytes.starts_with(b"HTTP/1.1 1") || bytes.starts_with(b"HTTP/1.0 1"));
        if !interim {
            *self = HeadClock::default();
        }
    }
}

/// An accepted connection: its slot of the cap, freed when it drops, and the deadline of the
/// request head it is waiting for, pushed back by each write of an answer (a long download or
/// an event stream is not a client that sends nothing).
struct Guarded {
    stream: TcpStream,
    clock: HeadClock,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl Guarded {
    /// After a write: the head of the next request is due `timeout` from now. The deadline is
    /// polled here, so that it wakes this connection's task when it passes: hyper may not
    /// read again before then (it waits on the socket, which a silent client never wakes).
    fn restart_deadline(&mut self, cx: &mut Context<'_>) {
        self.deadline.as_mut().reset(Instant::now() + self.timeout);
        if self.clock.waiting() {
            let _ = self.deadline.as_mut().poll(cx);
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.clock.read(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending if this.clock.waiting() && this.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request head within the header-read timeout",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.stream).poll_write(cx, buf))?;
        if written > 0 {
            this.clock.wrote(&buf[..written]);
            this.restart_deadline(cx);
        }
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.stream).poll_write_vectored(cx, bufs))?;
        if written > 0 {
            let first = bufs
                .iter()
                .find(|buf| !buf.is_empty())
                .map_or(&[][..], |buf| &buf[..]);
            this.clock.wrote(&first[..first.len().min(written)]);
            this.restart_deadline(cx);
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(reads: &[&[u8]]) -> HeadClock {
        let mut clock = HeadClock::default();
        for bytes in reads {
            clock.read(bytes);
        }
        clock
    }

    #[test]
    fn a_head_is_in_at_its_blank_line_however_it_is_cut() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(!after(&[head]).waiting());
        for cut in 1..head.len() {
            let (start, end) = head.split_at(cut);
            assert!(after(&[start]).waiting(), "{cut}");
            assert!(!after(&[start, end]).waiting(), "{cut}");
        }
        assert!(!after(&[b"GET / HTTP/1.1\nHost: x\n\n"]).waiting());
    }

    #[test]
    fn headers_still_coming_and_blank_lines_alone_are_no_head() {
        assert!(after(&[b"POST / HTTP/1.1\r\nHost: x\r\n", b"X-1: a\r\n", b"X-2: b\r\n"]).waiting());
        assert!(after(&[b"\r\n\r\n\n\n\r\n"]).waiting());
        assert!(after(&[b"GET / HTTP/1.1\r\nHost: x\r\r\n"]).waiting());
        assert!(after(&[]).waiting());
    }

    #[test]
    fn an_answer_starts_the_wait_for_the_next_head_and_an_interim_one_does_not() {
        let mut clock = after(&[b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"]);
        clock.wrote(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert!(!clock.waiting());
        // The body may hold blank lines (a multipart form does): it is no head.
        clock.read(b"--b\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n");
        assert!(!clock.waiting());
        clock.wrote(b"HTTP/1.1 200 OK\r\n");
        assert!(clock.waiting());
        // More of the answer: still waiting, afresh.
        clock.wrote(b"body");
        assert_eq!(clock, HeadClock::default());
        clock.read(b"GET /2 HTTP/1.1\r\n\r\n");
        assert!(!clock.waiting());
    }
}
