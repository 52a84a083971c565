//! `d1-bench-server` as a library: the synthetic data's vocabulary, shared with
//! `bench/online` (the binary in `main.rs` generates dumps and serves D1's export API).

pub mod vocab;
