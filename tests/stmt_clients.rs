//! Prepared statements from C-library clients across switchovers: libmariadb (the C
//! program `tests/c/ps_loop.c`, compiled here with `cc`), PHP's mysqli
//! (`tests/php/ps_loop.php`) and mysql-connector-python's C extension
//! (`tests/py/ps_loop_cext.py`, libmysqlclient inside). Each prepares once and executes
//! in a loop; the first two bind once, so they send parameter types only with each
//! statement's first execution, and send a BLOB as long data before every insert; the
//! C program also runs a bulk (array) insert. Each client loops while four switchovers
//! run (blue → green → blue → green → blue), then must report no error and every row
//! read back as written, and the rows must be on the primary. A missing compiler,
//! libmariadb-dev, php-mysql or connector C extension fails the test
//! (scripts/install-deps.sh installs them).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::load::sql;
use support::Proxy;
use switchyard::testbed::{Flavor, Pair, APP_PASSWORD, APP_USER};

const SWITCHOVERS: usize = 4;
/// Traffic before each switchover and after the last.
const GAP: Duration = Duration::from_millis(1500);
/// The clients stop on their own after this (a hang guard).
const MAX_SECONDS: &str = "120";

fn source(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `program args…`, which must exist and succeed; its stdout.
fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (run scripts/install-deps.sh): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Compiles `tests/c/ps_loop.c` against libmariadb into `dir`.
fn compile_c(dir: &Path) -> PathBuf {
    let flags = tool("mariadb_config", &["--cflags", "--libs"]);
    let binary = dir.join("ps_loop");
    let mut args = vec![
        "-Wall".to_owned(),
        "-Werror".to_owned(),
        "-o".to_owned(),
        binary.display().to_string(),
        source("tests/c/ps_loop.c").display().to_string(),
    ];
    args.extend(flags.split_whitespace().map(str::to_owned));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tool("cc", &args);
    binary
}

/// Runs `client` (to which HOST PORT USER PASSWORD DB STOP_FILE MAX_SECONDS are
/// appended) through the proxy while the switchovers run; returns its stdout once it
/// stopped, after checking it exited 0.
fn through_switchovers(proxy: &Proxy, mut client: Command, dir: &Path) -> String {
    let stop = dir.join("stop");
    let (host, port) = proxy.addr.rsplit_once(':').expect("HOST:PORT");
    let program = format!("{client:?}");
    let child = client
        .args([host, port, APP_USER, APP_PASSWORD, "test"])
        .arg(&stop)
        .arg(MAX_SECONDS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let figures = support::switchovers(proxy, SWITCHOVERS, GAP);
    std::fs::write(&stop, b"").expect("write the stop file");
    let out = child.wait_with_output().expect("wait for the client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{program} failed ({}):\n{stdout}{stderr}\nproxy log:\n{}",
        out.status,
        proxy.log()
    );
    eprintln!("{program}: {}{}switchovers: {figures:#?}", stdout, stderr);
    format!("{stdout}{stderr}")
}

/// The number after `name=` in the client's report line.
fn count(output: &str, name: &str) -> u64 {
    output
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in the client's output:\n{output}"))
}

/// No error, no wrong value, rounds done on every side, and `table` on the primary
/// (blue, after an even number of switchovers) holds every row inserted.
fn check(pair: &Pair, output: &str, table: &str) -> u64 {
    assert_eq!(count(output, "errors"), 0, "client errors:\n{output}");
    assert_eq!(
        count(output, "mismatches"),
        0,
        "values read back:\n{output}"
    );
    let inserted = count(output, "inserted");
    assert!(
        inserted > SWITCHOVERS as u64,
        "too few rounds to span the switchovers:\n{output}"
    );
    assert_eq!(inserted, count(output, "rounds"), "{output}");
    assert_eq!(
        sql(&pair.blue, &format!("SELECT COUNT(*) FROM test.{table}")),
        inserted.to_string(),
        "rows of {table} on blue"
    );
    inserted
}

#[test]
fn libmariadb_binds_once_across_switchovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let binary = compile_c(dir.path());
    let pair = support::pair();
    let proxy = Proxy::start(&pair, "");
    let output = through_switchovers(&proxy, Command::new(&binary), dir.path());
    let rounds = check(&pair, &output, "ps_c");
    assert_eq!(count(&output, "bulk_rows"), 3 * rounds, "{output}");
    assert_eq!(
        sql(&pair.blue, "SELECT COUNT(*) FROM test.ps_bulk"),
        (3 * rounds).to_string(),
        "bulk rows on blue"
    );
}

for_each_flavor!(
    php_mysqli_binds_once_across_switchovers,
    mysql_connector_c_extension_across_switchovers,
);

fn php_mysqli_binds_once_across_switchovers(flavor: Flavor) {
    let dir = tempfile::tempdir().expect("temp dir");
    let modules = tool("php", &["-m"]);
    assert!(
        modules.lines().any(|m| m.trim() == "mysqli"),
        "PHP has no mysqli (install php-mysql: scripts/install-deps.sh); modules:\n{modules}"
    );
    let pair = support::pair_of(flavor);
    let proxy = Proxy::start(&pair, "");
    let mut php = Command::new("php");
    php.arg(source("tests/php/ps_loop.php"));
    let output = through_switchovers(&proxy, php, dir.path());
    check(&pair, &output, "ps_php");
}

fn mysql_connector_c_extension_across_switchovers(flavor: Flavor) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pair = support::pair_of(flavor);
    let proxy = Proxy::start(&pair, "");
    let mut python = Command::new(support::python());
    python.arg(source("tests/py/ps_loop_cext.py"));
    let output = through_switchovers(&proxy, python, dir.path());
    check(&pair, &output, "ps_cext");
}
