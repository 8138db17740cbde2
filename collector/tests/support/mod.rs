//! Helpers shared by the integration tests.

pub mod certs;
pub mod collector;
pub mod hook;
pub mod otlp;
pub mod smtp;
