//! Integration tests of `d1-export` against wiremock (stateful responders)
//! and a raw TCP server for download faults.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
#![allow(clippy::cast_possible_truncation, clippy::missing_panics_doc)]

mod api;
mod backed;
mod bucket_lock;
mod download;
mod export;
mod simulator;
mod support;
mod time_travel;
