//! Client addresses for the backends: with `proxy_protocol = true` a server sees each
//! session's connection as coming from the application's address (the PROXY protocol
//! header that `upstream::connect` sends), so its grants by host and its process list
//! work as without the proxy. Here: the start-up check that such a server can read
//! the header at all.

use crate::protocol::constants::CLIENT_MYSQL;
use crate::proxy::upstream::{self, ConnectError};
use crate::proxy::Proxy;

impl Proxy {
    /// Refuses `proxy_protocol = true` for a server whose greeting says MySQL (it
    /// has no PROXY protocol support and would take the header for a broken login).
    /// A server not reachable yet is checked at each session login instead.
    pub async fn check_proxy_protocol(&self) -> Result<(), ConnectError> {
        let config = self.topology.config.load_full();
        let timeout = config.proxy.connect_timeout.0;
        let sides = std::iter::once(&config.blue).chain(config.green.as_ref());
        for backend in sides.filter(|b| b.proxy_protocol) {
            // The greeting probe sends no header: MariaDB accepts a connection
            // without one from a proxy_protocol_networks address as a plain one.
            match upstream::probe_greeting(&backend.address, timeout).await {
                Ok(info) if info.capabilities & CLIENT_MYSQL != 0 => {
                    return Err(ConnectError::ProxyProtocolOnMysql {
                        address: backend.address.clone(),
                    })
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    "cannot check that {} reads PROXY protocol headers: {e}",
                    backend.address
                ),
            }
        }
        Ok(())
    }
}
