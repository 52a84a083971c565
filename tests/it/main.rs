//! End-to-end tests across the crates, through the `d1-backup` facade: the seed deployment
//! backed up from the D1 simulator into a real S3-protocol server that enforces R2's rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::format_push_string,
    clippy::too_many_lines,
    missing_docs
)]

mod examples;
mod seed;
