//! Stopping a long-running tool (the bridge, the proxy) on SIGINT or SIGTERM.

/// Returns on SIGINT or SIGTERM.
pub async fn stop_requested() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
