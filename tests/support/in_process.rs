//! The proxy in the test's own process, built from the library's layers as
//! `server::run` builds them, so a test holds the switchover state itself (subscribes
//! to its phases, reads the metrics its recorder got).

use std::path::Path;
use std::sync::Arc;

use switchyard::config::Config;
use switchyard::proxy::workers::Workers;
use switchyard::proxy::{listener, Proxy};
use switchyard::switchover::{recovery, Switchover};
use switchyard::testbed::{
    Pair, APP_PASSWORD, APP_USER, CONTROL_PASSWORD, CONTROL_USER, REPL_PASSWORD, REPL_USER,
};
use switchyard::topology::Topology;

/// A config for `pair` listening on `listen` with its journal at `state`, and `extra`
/// TOML (e.g. `[switchover]`) after the standard tables.
pub fn config_toml(pair: &Pair, listen: &str, state: &Path, extra: &str) -> String {
    format!(
        "[proxy]\nlisten = \"{listen}\"\nstate_file = \"{state}\"\n\
         [blue]\naddress = \"{blue}\"\n[green]\naddress = \"{green}\"\n\
         [control]\nuser = \"{CONTROL_USER}\"\npassword = \"{CONTROL_PASSWORD}\"\n\
         [replication]\nuser = \"{REPL_USER}\"\npassword = \"{REPL_PASSWORD}\"\n\
         [[users]]\nname = \"{APP_USER}\"\npassword = \"{APP_PASSWORD}\"\n\
         {extra}",
        state = state.display(),
        blue = pair.blue.addr(),
        green = pair.green.addr(),
    )
}

/// The proxy's layers, bottom-up, serving on `listen`.
pub async fn start_proxy(toml: &str, listen: &str) -> Arc<Switchover> {
    let config = Config::parse(toml).unwrap_or_else(|e| panic!("the test config: {e}\n{toml}"));
    let topology = Arc::new(Topology::new(config, None));
    let proxy = Arc::new(Proxy::new(topology).expect("the test's TLS files"));
    let shared = Arc::new(Switchover::new(proxy.clone()));
    recovery::recover(&shared).await;
    proxy.warm_up().await;
    let socket = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| panic!("bind {listen}: {e}"));
    let workers = Arc::new(Workers::start(2).expect("session threads"));
    tokio::spawn(listener::serve(
        socket,
        proxy,
        workers,
        std::future::pending(),
    ));
    shared
}
