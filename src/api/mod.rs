//! Talking to Bihu: the secret that never prints, the `secCode` signatures, the request and
//! answer types with the quote URL, the transport seam, and the HTTP client behind them.
//!
//! May import `leads` (a request is built from a validated lead) and nothing above it.

pub mod answer;
pub mod body;
pub mod client;
pub mod protocol;
pub mod quote;
pub mod secret;
pub mod sign;
pub mod transport;
