//! The seam between the protocol and HTTP: post a JSON body to one of the API's two endpoints,
//! get back the status, `Retry-After` and the body.
//!
//! [`crate::api::client::Http`] is the implementation over reqwest; tests of the pipeline put
//! a fake behind the same trait, so that they need no socket and can run on a paused clock.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::api::body::CappedBody;

/// The API's two endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `unite/unitecheckrenewal`.
    Renewal,
    /// `unite/login`.
    Login,
}

/// An answer, read whole up to [`crate::api::body::ANSWER_BODY_LIMIT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// `Retry-After` in seconds, when the answer has one in that form.
    pub retry_after: Option<u64>,
    /// The body, or the note that it passed the cap (reading stopped there).
    pub body: CappedBody,
    /// The server's clock, as its `Date` header gave it.
    pub date: Option<SystemTime>,
}

/// What went wrong below HTTP: no answer was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Says where to: the host, and the proxy when there is one.
    #[error("could not connect to {0}")]
    Connect(String),
    #[error("connection broken: {0}")]
    Broken(String),
}

/// Sends one request and reads its answer (the body up to the cap), within the transport's own timeout.
pub trait Transport: Send + Sync + std::fmt::Debug {
    fn post(&self, endpoint: Endpoint, json: Bytes) -> BoxFuture<'_, Result<Reply, TransportError>>;
}
