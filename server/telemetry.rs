//! Logging setup: `tracing` to stderr, filtered by `RUST_LOG` (default `info`). Log lines carry
//! fields (request id, flow, node, duration), never secrets, tokens or row contents.

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
