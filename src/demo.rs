//! `switchyard demo`: a local blue/green MariaDB pair (from the machine's own MariaDB
//! binaries) with the proxy in front, for trying switchyard in a minute. Everything
//! lives in one folder and stops when the command does.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::config::Config;
use crate::testbed::{free_port, Pair, PairOptions, TestbedError, APP_PASSWORD, APP_USER};

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
    let proxy = runtime.spawn(crate::proxy::run(
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
