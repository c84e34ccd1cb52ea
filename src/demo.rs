//! `switchyard demo`: a local blue/green MariaDB pair (from the machine's own MariaDB
//! binaries) with the proxy in front, for trying switchyard in a minute. Everything
//! lives in one folder and stops when the command does.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::config::Config;
use crate::testbed::{free_port, Pair, PairOptions, TestbedError, APP_PASSWORD, APP_USER};

/// What the demo's load saw across the switchover.
struct LoadResult {
    acked: u64,
    errors: u64,
    longest_ms: f64,
    server_id_after: u32,
}

/// Four writers insert through the proxy while a switchover runs; counts what they saw.
async fn live_switchover(port: u16, socket: &std::path::Path) -> Result<LoadResult, DemoError> {
    use mysql_async::prelude::Queryable;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some("app"))
        .prefer_socket(false);
    let check = |e: mysql_async::Error| DemoError::Check(e.to_string());
    let mut setup = mysql_async::Conn::new(opts.clone()).await.map_err(check)?;
    setup
        .query_drop("CREATE TABLE IF NOT EXISTS demo_load (id BIGINT AUTO_INCREMENT PRIMARY KEY, writer INT, at TIMESTAMP(6) DEFAULT NOW(6))")
        .await
        .map_err(check)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut conn = mysql_async::Conn::new(opts.clone()).await.map_err(check)?;
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let (mut acked, mut errors, mut longest) = (0u64, 0u64, Duration::ZERO);
            while !stop.load(Ordering::Relaxed) {
                let start = std::time::Instant::now();
                match conn
                    .exec_drop("INSERT INTO demo_load (writer) VALUES (?)", (w,))
                    .await
                {
                    Ok(()) => acked += 1,
                    Err(e) => {
                        errors += 1;
                        eprintln!("writer {w}: {e}");
                    }
                }
                longest = longest.max(start.elapsed());
            }
            let server: Option<u32> = conn.query_first("SELECT @@server_id").await.ok().flatten();
            (acked, errors, longest, server.unwrap_or(0))
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut stdout = std::io::stdout();
    let ok = crate::admin::client::run(socket, &["switchover".to_string()], false, &mut stdout)
        .await
        .map_err(|e| DemoError::Check(e.to_string()))?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut result = LoadResult {
        acked: 0,
        errors: 0,
        longest_ms: 0.0,
        server_id_after: 0,
    };
    for w in writers {
        let (acked, errors, longest, server) =
            w.await.map_err(|e| DemoError::Check(e.to_string()))?;
        result.acked += acked;
        result.errors += errors;
        result.longest_ms = result.longest_ms.max(longest.as_secs_f64() * 1000.0);
        result.server_id_after = server;
    }
    if !ok {
        return Err(DemoError::Check("the switchover did not succeed".into()));
    }
    Ok(result)
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("starting the MariaDB pair: {0}")]
    Testbed(#[from] TestbedError),
    #[error("demo config: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("demo check failed: {0}")]
    Check(String),
}

pub struct DemoOptions {
    /// Folder for the servers' files; a temp dir when `None`.
    pub dir: Option<PathBuf>,
    /// Port the proxy listens on.
    pub port: u16,
    /// Stop after the checks instead of serving until Ctrl-C.
    pub exit: bool,
    /// Leave out the live switchover (blue stays the primary).
    pub no_switchover: bool,
}

/// The demo's config text, for a pair and a proxy port.
pub fn demo_config(pair: &Pair, port: u16) -> String {
    let dir = pair.dir().display();
    format!(
        r#"[proxy]
listen = "127.0.0.1:{port}"
admin_socket = "{dir}/admin.sock"
state_file = "{dir}/state.json"

[blue]
address = "{blue}"

[green]
address = "{green}"

[control]
user = "{cu}"
password = "{cp}"

[replication]
user = "{ru}"
password = "{rp}"

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"
"#,
        blue = pair.blue.addr(),
        green = pair.green.addr(),
        cu = crate::testbed::CONTROL_USER,
        cp = crate::testbed::CONTROL_PASSWORD,
        ru = crate::testbed::REPL_USER,
        rp = crate::testbed::REPL_PASSWORD,
    )
}

/// Runs the demo; returns when Ctrl-C is pressed (or at once with `exit`).
pub fn run(opts: DemoOptions) -> Result<(), DemoError> {
    eprintln!("starting a MariaDB blue/green pair (blue writable, green its GTID replica)…");
    let pair = Pair::start(PairOptions {
        dir: opts.dir,
        ..PairOptions::system()?
    })?;
    let port = if opts.port == 0 {
        free_port()
    } else {
        opts.port
    };
    let text = demo_config(&pair, port);
    let config_path = pair.dir().join("switchyard.toml");
    std::fs::write(&config_path, &text)?;
    let config = Config::parse(&text)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let proxy = runtime.spawn(crate::server::run(
        config,
        Some(config_path.clone()),
        async {
            let _ = stop_rx.await;
        },
    ));
    std::thread::sleep(Duration::from_millis(300));

    println!("blue  : {} (server_id 1)", pair.blue.addr());
    println!(
        "green : {} (server_id 2, read-only replica of blue)",
        pair.green.addr()
    );
    println!(
        "proxy : 127.0.0.1:{port}   config: {}",
        config_path.display()
    );
    let sql = "CREATE TABLE IF NOT EXISTS demo (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT); \
               INSERT INTO demo (note) VALUES ('written through switchyard'); \
               SELECT @@server_id AS server, COUNT(*) AS rows_in_demo FROM demo";
    let out = Command::new("mariadb")
        .args(["--protocol=TCP", "-h", "127.0.0.1", "-P", &port.to_string()])
        .args([
            "-u",
            APP_USER,
            &format!("-p{APP_PASSWORD}"),
            "--skip-ssl",
            "-t",
            "app",
            "-e",
            sql,
        ])
        .output()?;
    if !out.status.success() {
        return Err(DemoError::Check(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    println!(
        "\nthrough the proxy:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    pair.wait_green_caught_up(Duration::from_secs(10))?;
    let on_green = pair.green.sql("SELECT COUNT(*) FROM app.demo")?;
    println!(
        "green has replicated {} row(s) of app.demo",
        on_green.trim()
    );
    let socket = pair.dir().join("admin.sock");
    if !opts.no_switchover {
        println!("\nlive switchover under load: 4 sessions writing through the proxy, then `switchyard ctl switchover`");
        let load = runtime.block_on(live_switchover(port, &socket))?;
        pair.wait_green_caught_up(Duration::from_millis(100)).ok();
        let on_green = pair.green.sql("SELECT COUNT(*) FROM app.demo_load")?;
        println!(
            "writes acknowledged: {}   client errors: {}   longest statement: {:.1} ms   rows on green: {}   server now: {}",
            load.acked,
            load.errors,
            load.longest_ms,
            on_green.trim(),
            load.server_id_after
        );
        if load.errors > 0 || on_green.trim() != load.acked.to_string() {
            return Err(DemoError::Check(format!(
                "{} errors; {} acknowledged, {} on green",
                load.errors,
                load.acked,
                on_green.trim()
            )));
        }
    }
    println!(
        "admin: {} ctl --socket {} status",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "switchyard".into()),
        socket.display()
    );
    println!(
        "\nconnect with:\n  mariadb --protocol=TCP -h 127.0.0.1 -P {port} -u {APP_USER} -p{APP_PASSWORD} --skip-ssl app"
    );
    if !opts.exit {
        println!("\nCtrl-C stops the proxy and both servers.");
        runtime.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    }
    let _ = stop_tx.send(());
    let _ = runtime.block_on(proxy);
    drop(pair);
    Ok(())
}
