//! Passwords out of the config file: a config that holds passwords in clear and is
//! readable by others is warned about at start and at each reload (not once it is
//! `chmod 600`); with `[control]` from `password_file`, `[replication]` from
//! `password_env` and the application account from a file, the proxy still reads the
//! standby's state and a switchover sets up the way back with the replication account.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::load::{app_conn, server_id, wait_following};
use support::Proxy;
use switchyard::testbed::{APP_PASSWORD, CONTROL_PASSWORD, REPL_PASSWORD};

const WARNING: &str = "holds a password in clear and is readable by its group or others";

fn warnings(proxy: &Proxy) -> usize {
    proxy
        .log()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(WARNING))
        .count()
}

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_is_warned_about_and_passwords_come_from_files_and_the_environment() {
    let pair = support::pair();
    let mut proxy = Proxy::builder(&pair)
        .env("SWITCHYARD_TEST_REPL_PASSWORD", REPL_PASSWORD)
        .start();
    // Whatever the umask gave the file: readable by others from the next start on.
    let before = warnings(&proxy);
    chmod(&proxy.config_path, 0o644);
    proxy.restart();
    let path = proxy.config_path.display().to_string();
    assert_eq!(warnings(&proxy), before + 1, "{}", proxy.log());
    let (ok, out) = proxy.ctl_async(&["reload"]).await;
    assert!(ok, "{out}");
    let seen = warnings(&proxy);
    assert_eq!(seen, before + 2, "{}", proxy.log());
    let line = proxy
        .log()
        .lines()
        .rfind(|l| l.contains(WARNING))
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.contains(&path) && line.contains(&format!("chmod 600 {path}")),
        "{line}"
    );

    // Private: no warning at the next reload.
    chmod(&proxy.config_path, 0o600);
    let (ok, out) = proxy.ctl_async(&["reload"]).await;
    assert!(ok, "{out}");
    assert_eq!(warnings(&proxy), seen, "{}", proxy.log());

    // No password in clear any more: readable again, and no warning either.
    let dir = tempfile::tempdir().expect("temp dir");
    let control_file = dir.path().join("control.pw");
    let app_file = dir.path().join("app.pw");
    std::fs::write(&control_file, format!("{CONTROL_PASSWORD}\n")).expect("write");
    std::fs::write(&app_file, APP_PASSWORD).expect("write");
    let original = std::fs::read_to_string(&proxy.config_path).expect("read config");
    let changed = original
        .replace(
            &format!("password = \"{CONTROL_PASSWORD}\""),
            &format!("password_file = \"{}\"", control_file.display()),
        )
        .replace(
            &format!("password = \"{REPL_PASSWORD}\""),
            "password_env = \"SWITCHYARD_TEST_REPL_PASSWORD\"",
        )
        .replace(
            &format!("password = \"{APP_PASSWORD}\""),
            &format!("password_file = \"{}\"", app_file.display()),
        );
    assert!(!changed.contains("password = "), "{changed}");
    std::fs::write(&proxy.config_path, changed).expect("write config");
    chmod(&proxy.config_path, 0o644);
    let (ok, out) = proxy.ctl_async(&["reload"]).await;
    assert!(ok, "{out}");
    assert_eq!(warnings(&proxy), seen, "{}", proxy.log());

    // The control account (from its file) reads the standby.
    let (ok, status) = proxy.ctl_async(&["status"]).await;
    assert!(ok, "{status}");
    assert!(
        status.contains("standby green") && status.contains("IO running, SQL running"),
        "{status}"
    );
    // The application account (from its file) logs in; the replication account
    // (from the environment) makes blue follow green after a switchover.
    let mut session = app_conn(&proxy.addr).await;
    assert_eq!(server_id(&mut session).await, 1);
    let (ok, out) = proxy.ctl_async(&["switchover"]).await;
    assert!(ok, "switchover:\n{out}\nproxy log:\n{}", proxy.log());
    wait_following("secrets", &pair.blue, &pair.green);
    assert_eq!(server_id(&mut session).await, 2);
}
