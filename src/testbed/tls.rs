//! TLS for a pair's servers: the `ssl_ca`/`ssl_cert`/`ssl_key` options (and
//! `require_secure_transport`) each server starts with, and the replication options
//! green then needs to reach blue over TLS with blue's certificate verified.
//!
//! The files are the caller's (tests make their own CA); the testbed only passes
//! their paths on, so both servers use one certificate, issued for `127.0.0.1`.

use std::path::PathBuf;

use super::Flavor;

/// The certificate files a pair's servers use, and whether they refuse plaintext.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The CA bundle clients (green's replication among them) verify the server with.
    pub ca: PathBuf,
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// `require_secure_transport=ON`: TCP logins without TLS are refused.
    pub require_secure_transport: bool,
}

impl ServerTls {
    /// The server options, the same for MariaDB and MySQL.
    pub(crate) fn server_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--ssl-ca={}", self.ca.display()),
            format!("--ssl-cert={}", self.cert.display()),
            format!("--ssl-key={}", self.key.display()),
        ];
        if self.require_secure_transport {
            args.push("--require-secure-transport=ON".to_owned());
        }
        args
    }

    /// The `CHANGE MASTER TO` / `CHANGE REPLICATION SOURCE TO` options for a replica
    /// that reaches its primary over TLS, verifying the primary's certificate.
    pub(crate) fn replication_options(&self, flavor: Flavor) -> String {
        let prefix = match flavor {
            Flavor::MariaDb => "MASTER",
            Flavor::MySql => "SOURCE",
        };
        let ca = self.ca.display().to_string().replace('\'', "''");
        format!("{prefix}_SSL=1, {prefix}_SSL_CA='{ca}', {prefix}_SSL_VERIFY_SERVER_CERT=1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(require: bool) -> ServerTls {
        ServerTls {
            ca: PathBuf::from("/c/ca.pem"),
            cert: PathBuf::from("/c/server.pem"),
            key: PathBuf::from("/c/server.key"),
            require_secure_transport: require,
        }
    }

    #[test]
    fn server_args_name_the_files_and_require_only_when_asked() {
        assert_eq!(
            tls(false).server_args(),
            [
                "--ssl-ca=/c/ca.pem",
                "--ssl-cert=/c/server.pem",
                "--ssl-key=/c/server.key"
            ]
        );
        assert_eq!(
            tls(true).server_args().last().map(String::as_str),
            Some("--require-secure-transport=ON")
        );
    }

    #[test]
    fn replication_options_per_flavor() {
        assert_eq!(
            tls(false).replication_options(Flavor::MariaDb),
            "MASTER_SSL=1, MASTER_SSL_CA='/c/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1"
        );
        assert_eq!(
            tls(false).replication_options(Flavor::MySql),
            "SOURCE_SSL=1, SOURCE_SSL_CA='/c/ca.pem', SOURCE_SSL_VERIFY_SERVER_CERT=1"
        );
    }
}
