//! Startup wiring: builds the layers bottom-up (topology → proxy → switchover → admin),
//! recovers the active side, binds the listener and the admin socket, re-reads the
//! config on SIGHUP, and on shutdown drains before the process exits.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::admin::handler::{reload_config, Admin};
use crate::admin::server::AdminListener;
use crate::config::Config;
use crate::proxy::workers::Workers;
use crate::proxy::{listener, Proxy};
use crate::switchover::{health, recovery, Switchover};
use crate::topology::Topology;

/// SIGHUP re-reads the config, like the admin `reload`.
fn spawn_reload_on_sighup(shared: Arc<Switchover>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match reload_config(&shared) {
                Ok(msg) => tracing::info!("SIGHUP: {msg}"),
                Err(msg) => tracing::error!("SIGHUP: {msg}"),
            }
        }
    });
}

/// After the shutdown signal (the listener is closed): a running switchover finishes,
/// then the gate closes so that no new transaction starts, and open transactions get
/// what is left of `[proxy] shutdown_timeout` to end. Sessions are closed when this
/// returns (the runtime drops their tasks).
async fn drain_for_shutdown(shared: &Switchover) {
    let timeout = shared.topology.config.load().proxy.shutdown_timeout.0;
    let deadline = tokio::time::Instant::now() + timeout;
    if tokio::time::timeout(timeout, shared.switch.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!(
            "shutting down during a switchover; the next start finishes it or rolls it back"
        );
        return;
    }
    let _closed = shared.proxy.gate.close();
    let busy = shared.proxy.gate.busy();
    if busy > 0 {
        tracing::info!("waiting up to {timeout:?} for {busy} open transaction(s) to end");
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if !shared.proxy.gate.wait_drained(left).await {
        tracing::warn!(
            "closing {} session(s) still inside a transaction",
            shared.proxy.gate.busy()
        );
    }
}

/// Binds `[proxy] listen` (and the admin socket, if configured), recovers the active
/// side from the state file and the servers, and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    config_path: Option<std::path::PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(&config.proxy.listen).await?;
    tracing::info!("listening on {}", listener.local_addr()?);
    crate::telemetry::endpoint::start(config.proxy.metrics_listen.as_deref()).await?;
    let admin = match &config.proxy.admin_socket {
        Some(path) => Some(AdminListener::bind(path).await?),
        None => None,
    };
    let topology = Arc::new(Topology::new(config, config_path));
    let proxy = Arc::new(Proxy::new(topology).map_err(std::io::Error::other)?);
    let shared = Arc::new(Switchover::new(proxy.clone()));
    recovery::recover(&shared).await;
    proxy.warm_up().await;
    proxy
        .check_proxy_protocol()
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let stop = tokio_util::sync::CancellationToken::new();
    if let Some(admin) = admin {
        let handler = Arc::new(Admin {
            shared: shared.clone(),
        });
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = admin.serve(handler, stop.cancelled_owned()).await {
                tracing::error!("admin socket: {e}");
            }
        });
    }
    spawn_reload_on_sighup(shared.clone());
    health::spawn(&shared);
    let threads = shared.topology.config.load().proxy.session_threads();
    let workers = Arc::new(Workers::start(threads)?);
    tracing::info!("{threads} session thread(s)");
    listener::serve(listener, proxy, workers.clone(), shutdown).await;
    drain_for_shutdown(&shared).await;
    drop(workers);
    stop.cancel();
    // Let the admin task remove its socket file.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    Ok(())
}
