//! TLS for the integration tests: a CA made by the test itself (rcgen), server and
//! client certificates it issues, written to a temp dir (keys 0600), the proxy's
//! `[tls]` and `[blue]`/`[green]` `tls…` keys, a TLS pair, and the command-line
//! clients over verified TLS.
//!
//! Every server certificate names `localhost` and `127.0.0.1` (DNS and IP SAN), so
//! clients verify both the proxy and the servers by address. Each certificate gets a
//! serial of its own, which a test reads back from what a client saw.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest, Sha256};
use switchyard::testbed::{Flavor, Pair, ServerTls};

use super::{client_command, pair_options, ProxyBuilder};

/// The names every server certificate is issued for.
pub const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// One issued certificate: its files and what identifies it.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub serial: u64,
    /// SHA-256 of the DER certificate, lowercase hex (what `getpeercert(True)` hashes to).
    pub fingerprint: String,
}

/// A CA of the test's own, and the folder its files go to (removed on drop).
pub struct TestCa {
    /// The CA certificate (PEM), for `ssl_ca`, `tls_ca` and the clients.
    pub ca: PathBuf,
    cert: Certificate,
    key: KeyPair,
    next_serial: AtomicU64,
    dir: tempfile::TempDir,
}

impl TestCa {
    /// A new CA named `name` (its common name), in a fresh temp dir.
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::Builder::new()
            .prefix("switchyard-tls-")
            .tempdir()
            .expect("temp dir for the certificates");
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(SerialNumber::from(1u64));
        validity(&mut params);
        let cert = params.self_signed(&key).expect("self-sign the CA");
        let ca = dir.path().join("ca.pem");
        write_file(&ca, cert.pem().as_bytes(), 0o644);
        TestCa {
            ca,
            cert,
            key,
            next_serial: AtomicU64::new(2),
            dir,
        }
    }

    /// The folder the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A server certificate for [`SERVER_NAMES`], as `FILE.pem` and `FILE.key`.
    pub fn server(&self, file: &str) -> Issued {
        self.issue(
            file,
            &SERVER_NAMES,
            ExtendedKeyUsagePurpose::ServerAuth,
            &self.dir.path().join(format!("{file}.pem")),
            &self.dir.path().join(format!("{file}.key")),
        )
    }

    /// A client certificate with common name `name`, as `FILE.pem` and `FILE.key`.
    pub fn client(&self, file: &str, name: &str) -> Issued {
        self.issue(
            name,
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
            &self.dir.path().join(format!("{file}.pem")),
            &self.dir.path().join(format!("{file}.key")),
        )
    }

    /// A new key and server certificate written over `old`'s files, each replaced
    /// whole by a rename (a reader sees the old file or the new one, never half).
    pub fn reissue_server(&self, old: &Issued) -> Issued {
        let staged = self.server("staged");
        fs::rename(&staged.cert, &old.cert).expect("replace the certificate");
        fs::rename(&staged.key, &old.key).expect("replace the key");
        Issued {
            cert: old.cert.clone(),
            key: old.key.clone(),
            ..staged
        }
    }

    /// The options a pair's servers start with: `server`'s files, verified with this CA.
    pub fn server_tls(&self, server: &Issued, require_secure_transport: bool) -> ServerTls {
        ServerTls {
            ca: self.ca.clone(),
            cert: server.cert.clone(),
            key: server.key.clone(),
            require_secure_transport,
        }
    }

    fn issue(
        &self,
        common_name: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
        cert_path: &Path,
        key_path: &Path,
    ) -> Issued {
        let key = KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("certificate params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        params.serial_number = Some(SerialNumber::from(serial));
        validity(&mut params);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign the certificate");
        write_file(cert_path, cert.pem().as_bytes(), 0o644);
        write_file(key_path, key.serialize_pem().as_bytes(), 0o600);
        Issued {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
            serial,
            fingerprint: hex::encode(Sha256::digest(cert.der())),
        }
    }
}

/// Valid from a day before the tests to well after them (clocks of CI machines).
fn validity(params: &mut CertificateParams) {
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
}

/// Write `bytes` to a new `path` created with `mode` (keys never readable by others).
fn write_file(path: &Path, bytes: &[u8], mode: u32) {
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    file.write_all(bytes)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A pair of `flavor` (the builds [`pair_of`](super::pair_of) starts) whose servers
/// use `tls`, green replicating over TLS.
pub fn tls_pair_of(flavor: Flavor, tls: ServerTls) -> Pair {
    Pair::start_tls(pair_options(flavor), tls)
        .unwrap_or_else(|e| panic!("cannot start the {} pair with TLS: {e}", flavor.name()))
}

/// mysql_async's TLS options trusting only `ca` (hostname checked).
pub fn ssl_opts(ca: &Path) -> mysql_async::SslOpts {
    mysql_async::SslOpts::default()
        .with_root_certs(vec![ca.to_path_buf().into()])
        .with_disable_built_in_roots(true)
}

/// A TOML string value.
fn toml_str(path: &Path) -> String {
    format!("\"{}\"", path.display())
}

impl ProxyBuilder<'_> {
    /// `[tls]` with `cert`'s files, plus `extra` keys (TOML lines) in that table.
    pub fn client_tls(self, cert: &Issued, extra: &str) -> Self {
        self.toml(&format!(
            "[tls]\ncert = {}\nkey = {}\n{extra}",
            toml_str(&cert.cert),
            toml_str(&cert.key)
        ))
    }

    /// `tls = true` and `tls_ca` for both backends (verification on, by default).
    pub fn backend_tls(self, ca: &Path) -> Self {
        self.backend_key("tls", "true")
            .backend_key("tls_ca", &toml_str(ca))
    }
}

/// What a command-line client printed and how it ended.
pub struct CliRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for CliRun {
    fn from(out: Output) -> CliRun {
        CliRun {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The command-line client of `flavor` (`mariadb`, or MySQL's `mysql`) logging in
/// to `addr` as `user` over TLS verified with `ca` (certificate chain and name:
/// `--ssl --ssl-ca --ssl-verify-server-cert`, `--ssl-mode=VERIFY_IDENTITY`), then `args`.
pub fn tls_cli(
    flavor: Flavor,
    addr: &str,
    user: &str,
    password: &str,
    ca: &Path,
    args: &[&str],
) -> CliRun {
    let ca = format!("--ssl-ca={}", ca.display());
    let tls: Vec<&str> = match flavor {
        Flavor::MariaDb => vec!["--ssl", &ca, "--ssl-verify-server-cert"],
        Flavor::MySql => vec!["--ssl-mode=VERIFY_IDENTITY", &ca],
    };
    cli_with(flavor, addr, user, password, &tls, args)
}

/// The client of `flavor` with `tls` options (none: the client's defaults), then `args`.
pub fn cli_with(
    flavor: Flavor,
    addr: &str,
    user: &str,
    password: &str,
    tls: &[&str],
    args: &[&str],
) -> CliRun {
    let mut cmd = client_command(flavor, addr, user, password, tls);
    cmd.args(args).stdin(Stdio::null());
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run the {} client: {e}", flavor.name()))
        .into()
}

/// The client arguments that print its `status` (`\\s`): MySQL's client runs its
/// own commands given with `-e` only with `--commands`.
pub fn status_args(flavor: Flavor) -> &'static [&'static str] {
    match flavor {
        Flavor::MariaDb => &["-e", "\\s"],
        Flavor::MySql => &["--commands", "-e", "\\s"],
    }
}

/// The cipher a client's `status` (`\s`) output says its connection uses, if any
/// (`SSL: Cipher in use is TLS_AES_256_GCM_SHA384`; `SSL: Not in use` gives `None`).
pub fn status_cipher(status: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("SSL:"))
        .and_then(|rest| rest.trim().strip_prefix("Cipher in use is "))
        .map(|c| c.split_whitespace().next().unwrap_or_default().to_owned())
}
