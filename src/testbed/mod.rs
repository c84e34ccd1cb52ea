//! Starts a local MariaDB or MySQL blue/green pair for the integration tests and the
//! demo.
//!
//! Synchronous and std-only: servers are child processes (`mariadbd`, `mysqld`) driven
//! through their build's command-line client over their unix sockets.
//!
//! - [`Build`]: which server to run ([`Flavor`]), the system's MariaDB or an unpacked
//!   folder (`scripts/fetch-server.sh`).
//! - [`Pair::start`]: blue (writable, server id 1) and green (a read-only GTID
//!   replica of blue, server id 2), each on a free port of 127.0.0.1, in a temp dir,
//!   from a data-dir template made once per build version and cached under
//!   `target/testbed-cache/`.
//! - [`Pair::start_tls`]: the same with TLS on both servers ([`ServerTls`]) and green
//!   replicating over TLS.
//! - [`Server`]: one process; `sql` as root, `stop`/`start`/`kill`.
//!
//! Every server has the accounts [`CONTROL_USER`] (all privileges, the proxy's
//! control plane), [`APP_USER`] (all privileges on the databases `test`, `sbtest`
//! and `app`) and [`REPL_USER`] (replication), all `mysql_native_password` on
//! MariaDB and `caching_sha2_password` on MySQL.
//! Never port 3306, never a shared server: everything the testbed starts, it stops.

mod batch;
mod build;
mod error;
mod pair;
mod process;
mod server;
mod template;
mod tls;

use std::net::TcpListener;

pub use batch::Row;
pub use build::{version_number, Build, Flavor};
pub use error::TestbedError;
pub use pair::{Pair, PairOptions};
pub use server::{Server, START_TIMEOUT, STOP_TIMEOUT};
pub use template::APP_DATABASES;
pub use tls::ServerTls;

/// The proxy's control-plane account (all privileges, with grant option).
pub const CONTROL_USER: &str = "switchyard";
pub const CONTROL_PASSWORD: &str = "switchyard-control";
/// The application's account (all privileges on `test`, `sbtest`, `app`).
pub const APP_USER: &str = "app";
pub const APP_PASSWORD: &str = "app-secret";
/// The account green replicates with (`REPLICATION SLAVE`).
pub const REPL_USER: &str = "repl";
pub const REPL_PASSWORD: &str = "repl-secret";

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then
/// released). Whoever binds it must cope with losing a race for it.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port());
        match port {
            Ok(port) if port != 3306 => return port,
            Ok(_) => continue,
            // Binding port 0 on loopback fails only when the machine is out of ports.
            Err(e) => panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        assert_ne!(port, 3306);
        TcpListener::bind(("127.0.0.1", port)).expect("port is free");
    }
}
