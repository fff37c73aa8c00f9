//! bihu-renew: bulk renewal of car-insurance leads against Bihu's renewal API.
//!
//! # Layout
//! - [`secret`]: the secret-key wrapper that never prints itself.
//! - [`sign`]: the renewal and login `secCode` signatures (pure).
//! - [`city`]: the Bihu city table and plate prefixes.
//! - [`lead`]: one row's vehicle columns into a typed [`lead::Lead`] or a rejection (pure).
//! - [`protocol`]: request bodies, answers, the quote URL (pure).

pub mod city;
pub mod lead;
pub mod protocol;
pub mod secret;
pub mod sign;
