//! Accepts client connections: a permit from the connection cap first (beyond it the
//! client gets ER_CON_COUNT_ERROR instead of a greeting), then one task per session on
//! the next session thread ([`Workers`]).
//! Accept errors (e.g. out of file descriptors) back off instead of spinning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::protocol::codec::write_packet;
use crate::proxy::errors::reply;
use crate::proxy::workers::Workers;
use crate::proxy::{metrics, session, Proxy};

pub async fn serve(
    listener: TcpListener,
    shared: Arc<Proxy>,
    workers: Arc<Workers>,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(
        shared.topology.config.load().proxy.max_client_connections,
    ));
    metrics::register_scrape_hook(&shared);
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => return,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => {
                metrics::accepted();
                backoff = Duration::from_millis(5);
                a
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: max_client_connections reached");
            metrics::refused("max_connections");
            tokio::spawn(async move {
                let mut out = bytes::BytesMut::new();
                write_packet(&mut out, 0, &reply::too_many_connections());
                let _ = stream.write_all(&out).await;
                let _ = stream.shutdown().await;
            });
            continue;
        };
        // The socket moves to the session thread's own reactor.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%peer, "accepted connection lost: {e}");
                continue;
            }
        };
        let shared = shared.clone();
        let id = shared.next_session_id();
        workers.spawn(async move {
            match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => session::run(shared, stream, peer, id).await,
                Err(e) => tracing::warn!(%peer, "accepted connection lost: {e}"),
            }
            drop(permit);
        });
    }
}
