//! The initialised data directory that every server of a build is copied from.
//!
//! Initialising a data dir takes seconds, so it happens once per build version (and
//! [`TEMPLATE_REVISION`]) and is cached in `target/testbed-cache/<version>-r<rev>/data`.
//! Several test processes may ask at once (cargo-nextest runs each test in its own
//! process): creation holds an exclusive lock on `<version>-r<rev>.lock`, builds in a
//! private staging dir and renames it into place, so a template that exists is
//! complete. A template holds the accounts and databases of `accounts_sql` and no
//! binary log, so a pair's servers start with empty, identical GTID state. A MySQL
//! template has no `auto.cnf`: each copy makes its own `server_uuid` at first start
//! (a replica refuses a source with its own UUID).

use std::env;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::build::{version_number, Initialiser};
use super::process::{run, run_with_stdin};
use super::server::MYSQL_ARGS;
use super::{
    Build, Flavor, Server, TestbedError, APP_PASSWORD, APP_USER, CONTROL_PASSWORD, CONTROL_USER,
    REPL_PASSWORD, REPL_USER,
};

/// Bump when the template's contents change, so stale caches are not reused.
const TEMPLATE_REVISION: u32 = 2;

/// The databases the `app` user may use.
pub const APP_DATABASES: [&str; 3] = ["test", "sbtest", "app"];

/// The data dir to copy for `build`, created if it does not exist yet.
pub(crate) fn template(build: &Build) -> Result<PathBuf, TestbedError> {
    let version = build.version()?;
    let key = format!("{}-r{TEMPLATE_REVISION}", sanitise(&version));
    let root = cache_root();
    let done = root.join(&key);
    let data = done.join("data");
    if done.join("READY").is_file() {
        return Ok(data);
    }
    fs::create_dir_all(&root).map_err(TestbedError::io(format!(
        "cannot create {}",
        root.display()
    )))?;
    let lock_path = root.join(format!("{key}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(TestbedError::io(format!(
            "cannot open {}",
            lock_path.display()
        )))?;
    lock.lock().map_err(TestbedError::io(format!(
        "cannot lock {}",
        lock_path.display()
    )))?;
    // Another process may have finished while we waited for the lock.
    if done.join("READY").is_file() {
        return Ok(data);
    }
    // Holding the lock, anything left for this key is debris of a process that died.
    let _ = fs::remove_dir_all(&done);
    remove_staging_dirs(&root, &key);
    let staging = root.join(format!("{key}.staging-{}", std::process::id()));
    tracing::info!(%version, dir = %done.display(), "initialising a data dir template");
    let built = create(build, &version, &staging).and_then(|()| {
        fs::write(staging.join("READY"), &version)
            .map_err(TestbedError::io("cannot mark the template ready"))?;
        fs::rename(&staging, &done).map_err(TestbedError::io(format!(
            "cannot rename {} to {}",
            staging.display(),
            done.display()
        )))
    });
    if built.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    built.map(|()| data)
}

fn remove_staging_dirs(root: &Path, key: &str) {
    let prefix = format!("{key}.staging-");
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Copy the template into `dest` (which must not exist).
pub(crate) fn copy_into(template: &Path, dest: &Path) -> Result<(), TestbedError> {
    let mut cmd = std::process::Command::new("cp");
    cmd.arg("-a").arg("--reflink=auto").arg(template).arg(dest);
    run(
        &mut cmd,
        &format!("cp -a {} {}", template.display(), dest.display()),
    )
    .map(drop)
}

/// Make a template in `staging`:
/// 1. initialise `staging/data`;
/// 2. start it once, without a binary log;
/// 3. create the accounts and databases;
/// 4. shut down cleanly.
fn create(build: &Build, version: &str, staging: &Path) -> Result<(), TestbedError> {
    let data = staging.join("data");
    fs::create_dir_all(&data).map_err(TestbedError::io(format!(
        "cannot create {}",
        data.display()
    )))?;
    match build.initialiser() {
        Initialiser::InstallDb(install_db) => {
            let mut cmd = std::process::Command::new(install_db);
            cmd.arg("--no-defaults")
                .arg("--user=root")
                .arg(format!("--datadir={}", data.display()))
                .arg("--auth-root-authentication-method=socket")
                .arg("--skip-test-db")
                // Skips the host-name lookup, which fails on machines whose own name
                // does not resolve (containers).
                .arg("--force");
            run(&mut cmd, "mariadb-install-db")?;
        }
        Initialiser::Bootstrap { share } => bootstrap(build, version, share, &data)?,
        Initialiser::Initialize => initialize(build, staging, &data)?,
    }
    let mut server = Server::new("template", 1, build.clone(), staging, data.clone(), false);
    server.spawn()?;
    server.wait_ready_retrying_port()?;
    server.sql(&accounts_sql(build.flavor()))?;
    server.stop();
    if build.flavor() == Flavor::MySql {
        fs::remove_file(data.join("auto.cnf"))
            .map_err(TestbedError::io("cannot remove the template's auto.cnf"))?;
    }
    Ok(())
}

/// `mysqld --initialize-insecure`: the system tables, and root@localhost without a
/// password (the testbed reaches root over the unix socket only). `data` must be empty.
fn initialize(build: &Build, staging: &Path, data: &Path) -> Result<(), TestbedError> {
    let log = staging.join("initialize.log");
    let mut cmd = build.server();
    cmd.args([
        "--no-defaults",
        "--initialize-insecure",
        "--user=root",
        &format!("--datadir={}", data.display()),
        &format!("--log-error={}", log.display()),
    ])
    .args(MYSQL_ARGS)
    .args(build.server_path_args());
    run(&mut cmd, "mysqld --initialize-insecure").map_err(|e| match e {
        TestbedError::CommandFailed {
            command,
            status,
            stderr,
        } => TestbedError::CommandFailed {
            command,
            status,
            stderr: format!("{stderr}\n{}", super::process::log_tail(&log, 20)),
        },
        other => other,
    })?;
    Ok(())
}

/// What `mariadb-install-db` does, for builds whose programs cannot be run directly:
/// the system-table scripts piped into `mariadbd --bootstrap`.
fn bootstrap(build: &Build, version: &str, share: &Path, data: &Path) -> Result<(), TestbedError> {
    // 11.x names its scripts mariadb_*.sql, 10.x mysql_*.sql.
    let prefix = if share.join("mariadb_system_tables.sql").is_file() {
        "mariadb_"
    } else {
        "mysql_"
    };
    let scripts = [
        format!("{prefix}system_tables.sql"),
        format!("{prefix}performance_tables.sql"),
        format!("{prefix}system_tables_data.sql"),
        "fill_help_tables.sql".to_owned(),
        "maria_add_gis_sp_bootstrap.sql".to_owned(),
        format!("{prefix}sys_schema.sql"),
    ];
    let mut sql = String::from(
        "create database if not exists mysql;\nuse mysql;\nSET @auth_root_socket='root';\n",
    );
    for script in &scripts {
        let path = share.join(script);
        let text = fs::read_to_string(&path).map_err(|e| TestbedError::BadBuildDir {
            dir: share.to_path_buf(),
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        sql.push_str(&text);
        sql.push('\n');
    }
    let mut cmd = build.server();
    cmd.args([
        "--no-defaults",
        "--bootstrap",
        "--user=root",
        &format!("--datadir={}", data.display()),
        "--log-warnings=0",
        "--enforce-storage-engine=",
        "--max-allowed-packet=8M",
        "--net-buffer-length=16K",
    ])
    .args(build.server_path_args());
    run_with_stdin(cmd, &sql, "mariadbd --bootstrap")?;
    // As mariadb-install-db does, so the server does not ask for an upgrade.
    let info = match version_number(version) {
        Some((major, _)) if major >= 11 => "mariadb_upgrade_info",
        _ => "mysql_upgrade_info",
    };
    let short = version
        .find("-MariaDB")
        .map_or(version, |end| &version[..end + 8]);
    fs::write(data.join(info), short)
        .map_err(TestbedError::io("cannot write the upgrade info file"))
}

/// The accounts and databases every server starts with: MariaDB's accounts use
/// `mysql_native_password`, MySQL's `caching_sha2_password` (MySQL 9 has no other).
/// `ALL PRIVILEGES ON *.*` includes, on MySQL, every dynamic privilege the control
/// plane needs (`SYSTEM_VARIABLES_ADMIN`, `REPLICATION_SLAVE_ADMIN`,
/// `CONNECTION_ADMIN`, …).
fn accounts_sql(flavor: Flavor) -> String {
    let user = |name: &str, host: &str, password: &str| {
        match flavor {
        Flavor::MariaDb => format!(
            "CREATE USER '{name}'@'{host}' IDENTIFIED VIA mysql_native_password USING PASSWORD('{password}');\n"
        ),
        Flavor::MySql => format!(
            "CREATE USER '{name}'@'{host}' IDENTIFIED WITH caching_sha2_password BY '{password}';\n"
        ),
    }
    };
    let mut sql = match flavor {
        // Anonymous users, and entries for this machine's host name, which
        // --skip-name-resolve ignores with a warning at every start.
        Flavor::MariaDb => String::from(
            "DELETE FROM mysql.global_priv WHERE User = '';\n\
             DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';\n\
             FLUSH PRIVILEGES;\n",
        ),
        // --initialize-insecure makes neither.
        Flavor::MySql => String::new(),
    };
    for host in ["%", "localhost"] {
        sql += &user(CONTROL_USER, host, CONTROL_PASSWORD);
        sql += &format!(
            "GRANT ALL PRIVILEGES ON *.* TO '{CONTROL_USER}'@'{host}' WITH GRANT OPTION;\n"
        );
    }
    sql += &user(REPL_USER, "%", REPL_PASSWORD);
    sql += &format!("GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'%';\n");
    for host in ["%", "localhost"] {
        sql += &user(APP_USER, host, APP_PASSWORD);
    }
    for db in APP_DATABASES {
        sql += &format!("CREATE DATABASE `{db}`;\n");
        for host in ["%", "localhost"] {
            sql += &format!("GRANT ALL PRIVILEGES ON `{db}`.* TO '{APP_USER}'@'{host}';\n");
        }
    }
    sql
}

/// Where templates are cached: `testbed-cache` in cargo's target dir when we can find
/// it (`CARGO_TARGET_DIR`, else the directory above the running executable that holds
/// cargo's `CACHEDIR.TAG`), else in the system temp dir.
fn cache_root() -> PathBuf {
    target_dir()
        .map(|t| t.join("testbed-cache"))
        .unwrap_or_else(|| env::temp_dir().join("switchyard-testbed-cache"))
}

fn target_dir() -> Option<PathBuf> {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        if let Ok(dir) = PathBuf::from(dir).canonicalize() {
            return Some(dir);
        }
    }
    let exe = env::current_exe().ok()?;
    let found = exe
        .ancestors()
        .skip(1)
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .or_else(|| {
            exe.ancestors()
                .find(|d| d.file_name().is_some_and(|n| n == "target"))
        });
    found.map(Path::to_path_buf)
}

/// A version string as a directory name.
fn sanitise(version: &str) -> String {
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitises_versions() {
        assert_eq!(
            sanitise("10.11.6-MariaDB-0+deb12u1"),
            "10.11.6-MariaDB-0_deb12u1"
        );
        assert_eq!(sanitise("a/b c"), "a_b_c");
    }

    #[test]
    fn accounts_cover_every_role() {
        let mysql = accounts_sql(Flavor::MySql);
        assert!(mysql.contains("'app'@'%' IDENTIFIED WITH caching_sha2_password"));
        assert!(!mysql.contains("global_priv") && !mysql.contains("native"));
        let sql = accounts_sql(Flavor::MariaDb);
        assert!(sql.contains("'switchyard'@'%'") && sql.contains("'switchyard'@'localhost'"));
        assert!(sql.contains("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'"));
        assert!(sql.contains("GRANT ALL PRIVILEGES ON `sbtest`.* TO 'app'@'localhost'"));
    }
}
