//! When a serving command stops: on SIGTERM, Ctrl-C (SIGINT) or its terminal closing (SIGHUP),
//! cleanly, where the default actions would kill it with its temporary files in place.

/// A future that completes on the first stop signal. The handlers are installed now, inside the
/// runtime's context, so a signal that comes before the future is awaited is kept too.
pub fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::hangup())?,
        )
    };
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = signals.0.recv() => {}
            _ = signals.1.recv() => {}
            _ = signals.2.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}
