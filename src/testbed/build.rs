//! Where a server's programs live, which kind of server it is, and how to run them.
//!
//! A [`Build`] is either the system's MariaDB (programs on `PATH`) or a folder of
//! unpacked Debian packages made by `scripts/fetch-server.sh` (MariaDB or MySQL), whose
//! programs are run through the folder's own dynamic loader so that they use the
//! folder's libc and libraries, not the host's. Every path in a `Build` is absolute.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::run;
use super::TestbedError;

/// Which server a build runs: the two differ in how a data dir is initialised, in
/// their options and in their replication statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `mariadbd` and the `mariadb` client.
    MariaDb,
    /// `mysqld` and the `mysql` client.
    MySql,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::MariaDb => "MariaDB",
            Flavor::MySql => "MySQL",
        }
    }

    /// The replica status column this flavor calls `mariadb_name` (`SHOW SLAVE STATUS`
    /// says `Slave_…`/`Master_…`, MySQL's `SHOW REPLICA STATUS` `Replica_…`/`Source_…`).
    pub fn status_column(self, mariadb_name: &str) -> String {
        match self {
            Flavor::MariaDb => mariadb_name.to_owned(),
            Flavor::MySql => mariadb_name
                .replace("Slave", "Replica")
                .replace("Master", "Source"),
        }
    }
}

/// Where a server's binaries live and how to run them.
#[derive(Debug, Clone)]
pub struct Build {
    flavor: Flavor,
    /// `mariadbd` or `mysqld`.
    server: PathBuf,
    /// `mariadb` or `mysql`.
    client: PathBuf,
    layout: Layout,
}

#[derive(Debug, Clone)]
enum Layout {
    /// Installed packages; `install_db` is `mariadb-install-db`.
    System { install_db: PathBuf },
    /// Unpacked packages under `root`, run as `loader --library-path LIBS PROGRAM`.
    Dir {
        root: PathBuf,
        loader: PathBuf,
        library_path: String,
        share: PathBuf,
    },
}

/// How a data directory is initialised for a build.
pub(crate) enum Initialiser<'a> {
    /// Run `mariadb-install-db` at this path.
    InstallDb(&'a Path),
    /// Feed the system-table scripts in `share` to `mariadbd --bootstrap`.
    Bootstrap { share: &'a Path },
    /// `mysqld --initialize-insecure` (root@localhost without a password).
    Initialize,
}

const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"];

impl Build {
    /// The MariaDB installed on this machine: `mariadbd`, `mariadb-install-db` and
    /// `mariadb` found on `PATH` or in `/usr/sbin`, `/usr/bin`.
    pub fn system() -> Result<Build, TestbedError> {
        Ok(Build {
            flavor: Flavor::MariaDb,
            server: find_program("mariadbd")?,
            client: find_program("mariadb")?,
            layout: Layout::System {
                install_db: find_program("mariadb-install-db")?,
            },
        })
    }

    /// A folder made by `scripts/fetch-server.sh`: Debian packages unpacked with
    /// `dpkg-deb -x`, including libc6 and the shared libraries the programs need.
    /// A folder with `mariadbd` is MariaDB; one with only `mysqld` is MySQL.
    pub fn from_dir(root: &Path) -> Result<Build, TestbedError> {
        let bad = |reason: String| TestbedError::BadBuildDir {
            dir: root.to_path_buf(),
            reason,
        };
        let root = root
            .canonicalize()
            .map_err(|e| bad(format!("cannot resolve it: {e}")))?;
        let first_file = |candidates: &[&str]| {
            candidates
                .iter()
                .map(|c| root.join(c))
                .find(|p| p.is_file())
        };
        let (flavor, server) = match first_file(&["usr/sbin/mariadbd", "usr/bin/mariadbd"]) {
            Some(server) => (Flavor::MariaDb, server),
            None => first_file(&["usr/sbin/mysqld"])
                .map(|server| (Flavor::MySql, server))
                .ok_or_else(|| bad("no usr/sbin/mariadbd or usr/sbin/mysqld".into()))?,
        };
        let client = match flavor {
            Flavor::MariaDb => "usr/bin/mariadb",
            Flavor::MySql => "usr/bin/mysql",
        };
        let client = first_file(&[client]).ok_or_else(|| bad(format!("no {client}")))?;
        let loader = first_file(&[
            "lib64/ld-linux-x86-64.so.2",
            "usr/lib64/ld-linux-x86-64.so.2",
            "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        ])
        .ok_or_else(|| bad("no ld-linux-x86-64.so.2 (libc6 not unpacked)".into()))?;
        let share = ["usr/share/mariadb", "usr/share/mysql"]
            .iter()
            .map(|c| root.join(c))
            .find(|p| p.join("charsets").is_dir())
            .ok_or_else(|| {
                bad("no usr/share/mariadb/charsets or usr/share/mysql/charsets".into())
            })?;
        let library_path = [
            "usr/lib/x86_64-linux-gnu",
            "lib/x86_64-linux-gnu",
            "usr/lib",
            "lib",
        ]
        .iter()
        .map(|d| root.join(d))
        .filter(|p| p.is_dir())
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
        Ok(Build {
            flavor,
            server,
            client,
            layout: Layout::Dir {
                root,
                loader,
                library_path,
                share,
            },
        })
    }

    /// `Some(Build::from_dir(value))` when the environment variable `var` is set and
    /// not empty, `None` otherwise.
    pub fn from_env(var: &str) -> Result<Option<Build>, TestbedError> {
        match env::var_os(var) {
            Some(value) if !value.is_empty() => Build::from_dir(Path::new(&value)).map(Some),
            _ => Ok(None),
        }
    }

    /// MariaDB or MySQL.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The server's version string, e.g. `10.11.6-MariaDB-0+deb12u1` or `9.7.4-2`.
    pub fn version(&self) -> Result<String, TestbedError> {
        let mut cmd = self.server();
        cmd.args(["--no-defaults", "--version"]);
        let out = run(&mut cmd, "the server's --version")?;
        // "mariadbd  Ver 10.11.6-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (...)",
        // "mysqld  Ver 9.7.4-2 for Linux on x86_64 ((Debian))"
        let mut words = out.split_whitespace();
        words
            .find(|w| *w == "Ver")
            .and_then(|_| words.next())
            .map(str::to_owned)
            .ok_or_else(|| TestbedError::UnexpectedOutput {
                command: "the server's --version".into(),
                output: out.clone(),
            })
    }

    /// A command that runs the server program (`mariadbd` or `mysqld`).
    pub fn server(&self) -> Command {
        self.command(&self.server)
    }

    /// A command that runs the build's client (`mariadb` or `mysql`), with
    /// `--no-defaults` already given (it must come first).
    pub fn client(&self) -> Command {
        let mut cmd = self.command(&self.client);
        cmd.arg("--no-defaults");
        if let Layout::Dir { root, .. } = &self.layout {
            let plugins = root.join("usr/lib/x86_64-linux-gnu/libmariadb3/plugin");
            if plugins.is_dir() {
                cmd.arg(format!("--plugin-dir={}", plugins.display()));
            }
        }
        cmd
    }

    /// Server options that point a folder build at its own share and plugin files
    /// (the compiled-in defaults are the host's `/usr/...`). Empty for the system.
    pub fn server_path_args(&self) -> Vec<String> {
        match &self.layout {
            Layout::System { .. } => Vec::new(),
            Layout::Dir { root, share, .. } => vec![
                format!("--basedir={}", root.join("usr").display()),
                format!("--lc-messages-dir={}", share.display()),
                format!("--character-sets-dir={}", share.join("charsets").display()),
                format!(
                    "--plugin-dir={}",
                    root.join("usr/lib/mysql/plugin").display()
                ),
            ],
        }
    }

    pub(crate) fn initialiser(&self) -> Initialiser<'_> {
        match &self.layout {
            Layout::System { install_db } => Initialiser::InstallDb(install_db),
            Layout::Dir { .. } if self.flavor == Flavor::MySql => Initialiser::Initialize,
            Layout::Dir { share, .. } => Initialiser::Bootstrap { share },
        }
    }

    fn command(&self, program: &Path) -> Command {
        match &self.layout {
            Layout::System { .. } => Command::new(program),
            Layout::Dir {
                loader,
                library_path,
                ..
            } => {
                let mut cmd = Command::new(loader);
                cmd.arg("--library-path").arg(library_path).arg(program);
                cmd
            }
        }
    }
}

/// `(major, minor)` of a version string such as `11.8.3-MariaDB-...`.
pub fn version_number(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn find_program(name: &'static str) -> Result<PathBuf, TestbedError> {
    let path_dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    let dirs = path_dirs
        .iter()
        .cloned()
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(TestbedError::BinaryNotFound {
        program: name,
        searched: format!("PATH and {}", SYSTEM_DIRS.join(", ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_numbers() {
        assert_eq!(version_number("10.11.6-MariaDB-0+deb12u1"), Some((10, 11)));
        assert_eq!(version_number("11.8.3-MariaDB-0+deb13u1"), Some((11, 8)));
        assert_eq!(version_number("9.7.4-2"), Some((9, 7)));
        assert_eq!(version_number("garbage"), None);
    }

    #[test]
    fn mysql_names_its_status_columns() {
        assert_eq!(
            Flavor::MySql.status_column("Slave_IO_Running"),
            "Replica_IO_Running"
        );
        assert_eq!(Flavor::MySql.status_column("Master_Port"), "Source_Port");
        assert_eq!(
            Flavor::MySql.status_column("Last_SQL_Errno"),
            "Last_SQL_Errno"
        );
        assert_eq!(Flavor::MariaDb.status_column("Master_Port"), "Master_Port");
    }

    #[test]
    fn missing_dir_is_a_bad_build_dir() {
        let err = Build::from_dir(Path::new("/nonexistent/switchyard")).unwrap_err();
        assert!(matches!(err, TestbedError::BadBuildDir { .. }), "{err}");
        assert!(err.to_string().contains("fetch-server.sh"));
    }
}
