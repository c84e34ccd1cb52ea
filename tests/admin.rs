//! The admin socket layer on its own: a fake handler behind the real server, driven by
//! raw `UnixStream`s (as `socat`/`nc -U` would) and by `client::run` (as `ctl` does).

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use switchyard::admin::{client, AdminListener, Command, Handler, Line, Request};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, Barrier, Notify};
use tokio::task::JoinHandle;

const PATIENCE: Duration = Duration::from_secs(5);

/// `status`: two progress lines, a pause between, then OK with data.
/// `check`: ERR. `sessions`: returns without a final line. `reload`: panics.
/// `pause`: waits until a second `pause` is in flight, then OK.
/// `switchover`: a slow command that records when it finished.
struct Fake {
    calls: Mutex<Vec<String>>,
    finished: Arc<Notify>,
    finished_switchovers: Arc<Mutex<u32>>,
    pair: Arc<Barrier>,
}

impl Fake {
    fn new() -> Arc<Self> {
        Arc::new(Fake {
            calls: Mutex::default(),
            finished: Arc::default(),
            finished_switchovers: Arc::default(),
            pair: Arc::new(Barrier::new(2)),
        })
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Handler for Fake {
    fn handle(
        &self,
        request: Request,
        out: mpsc::Sender<Line>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.calls.lock().unwrap().push(request.to_string());
        let pair = self.pair.clone();
        let finished = self.finished.clone();
        let finished_switchovers = self.finished_switchovers.clone();
        Box::pin(async move {
            match request.command {
                Command::Status => {
                    let _ = out.send(Line::progress("line one")).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let _ = out.send(Line::progress("line two")).await;
                    let _ = out.send(Line::ok("done").with_data(json!({"n": 2}))).await;
                }
                Command::Check => {
                    let _ = out.send(Line::err("blue unreachable")).await;
                }
                Command::Sessions => {
                    let _ = out.send(Line::progress("about to forget")).await;
                }
                Command::Reload => panic!("fake handler panics on reload"),
                Command::Pause { .. } => {
                    pair.wait().await;
                    let _ = out.send(Line::ok("paused")).await;
                }
                Command::Switchover { .. } => {
                    let _ = out.send(Line::progress("phase 1")).await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let _ = out.send(Line::progress("phase 2")).await;
                    *finished_switchovers.lock().unwrap() += 1;
                    finished.notify_one();
                    let _ = out.send(Line::ok("switched")).await;
                }
                Command::Resume | Command::Help | Command::History => {
                    let _ = out.send(Line::ok("")).await;
                }
            }
        })
    }
}

/// A server on a socket in a fresh temp dir, stopped by `stop`.
struct Running {
    _dir: tempfile::TempDir,
    path: PathBuf,
    fake: Arc<Fake>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    start_at(dir, path).await
}

async fn start_at(dir: tempfile::TempDir, path: PathBuf) -> Running {
    let fake = Fake::new();
    let listener = AdminListener::bind(&path).await.unwrap();
    assert_eq!(listener.path(), path);
    let (stop, stopped) = oneshot::channel::<()>();
    let handler: Arc<dyn Handler> = fake.clone();
    let task = tokio::spawn(listener.serve(handler, async {
        let _ = stopped.await;
    }));
    Running {
        _dir: dir,
        path,
        fake,
        stop: Some(stop),
        task,
    }
}

impl Running {
    async fn stop(mut self) -> PathBuf {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
        self.path.clone()
    }

    /// What `socat - UNIX-CONNECT:path` prints for `line`.
    async fn raw(&self, line: &str) -> String {
        let mut stream = UnixStream::connect(&self.path).await.unwrap();
        stream.write_all(line.as_bytes()).await.unwrap();
        let mut reply = String::new();
        tokio::time::timeout(PATIENCE, stream.read_to_string(&mut reply))
            .await
            .expect("reply in time")
            .unwrap();
        reply
    }

    async fn ctl(&self, args: &str, json: bool) -> (Result<bool, client::ClientError>, String) {
        let args: Vec<String> = args.split_whitespace().map(String::from).collect();
        let mut out = Vec::new();
        let result = client::run(&self.path, &args, json, &mut out).await;
        (result, String::from_utf8(out).unwrap())
    }
}

fn json_lines(reply: &str) -> Vec<Value> {
    reply
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[tokio::test]
async fn text_reply_streams_progress_then_ok() {
    let server = start().await;
    assert_eq!(
        server.raw("status\n").await,
        "line one\nline two\nOK done\n"
    );
    assert_eq!(server.raw("check\n").await, "ERR blue unreachable\n");
    assert_eq!(server.fake.calls(), ["status", "check"]);
    server.stop().await;
}

#[tokio::test]
async fn json_reply_is_one_object_per_line() {
    let server = start().await;
    let lines = json_lines(&server.raw("--json status\n").await);
    assert_eq!(
        lines,
        [
            json!({"type": "progress", "message": "line one"}),
            json!({"type": "progress", "message": "line two"}),
            json!({"type": "ok", "message": "done", "n": 2}),
        ]
    );
    let lines = json_lines(&server.raw("check --json\n").await);
    assert_eq!(
        lines,
        [json!({"type": "err", "message": "blue unreachable"})]
    );
    server.stop().await;
}

#[tokio::test]
async fn parse_errors_are_one_err_line_and_skip_the_handler() {
    let server = start().await;
    let reply = server.raw("stauts\n").await;
    assert!(reply.starts_with("ERR unknown command `stauts`"), "{reply}");
    assert!(
        reply.contains("switchover") && reply.lines().count() == 1,
        "{reply}"
    );

    let reply = server.raw("pause --timeout 10\n").await;
    assert!(reply.starts_with("ERR `--timeout`"), "{reply}");

    let lines = json_lines(&server.raw("status --bogus 1 --json\n").await);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "err");
    assert!(lines[0]["message"].as_str().unwrap().contains("`--bogus`"));

    let reply = server.raw("\n").await;
    assert!(reply.starts_with("ERR empty command"), "{reply}");

    let reply = server.raw(&format!("{}\n", "a".repeat(5000))).await;
    assert!(
        reply.starts_with("ERR command line longer than 4096"),
        "{reply}"
    );

    assert!(server.fake.calls().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn help_is_answered_by_the_server() {
    let server = start().await;
    let reply = server.raw("help\n").await;
    for command in [
        "status",
        "sessions",
        "check",
        "switchover",
        "pause",
        "resume",
        "reload",
    ] {
        assert!(
            reply.lines().any(|l| l.starts_with(command)),
            "{command}: {reply}"
        );
    }
    assert_eq!(reply.lines().last(), Some("OK"));
    assert!(server.fake.calls().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn handler_without_result_or_panicking_gets_internal_err() {
    let server = start().await;
    assert_eq!(
        server.raw("sessions\n").await,
        "about to forget\nERR internal: no result\n"
    );
    assert_eq!(server.raw("reload\n").await, "ERR internal: no result\n");
    // The server is unharmed.
    assert_eq!(server.raw("check\n").await, "ERR blue unreachable\n");
    server.stop().await;
}

#[tokio::test]
async fn socket_is_0600_and_removed_on_shutdown() {
    let server = start().await;
    let meta = std::fs::symlink_metadata(&server.path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // Nothing left behind next to it but the socket.
    let entries: Vec<_> = std::fs::read_dir(server.path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["admin.sock"]);
    let path = server.stop().await;
    assert!(!path.exists(), "socket file left behind");
}

#[tokio::test]
async fn dropping_the_listener_removes_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    let listener = AdminListener::bind(&path).await.unwrap();
    assert!(path.exists());
    drop(listener);
    assert!(!path.exists());
}

#[tokio::test]
async fn stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    // A socket file whose process is gone: bound, then closed without unlinking.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = start_at(dir, path).await;
    assert_eq!(server.raw("check\n").await, "ERR blue unreachable\n");
    server.stop().await;
}

#[tokio::test]
async fn live_socket_or_other_file_is_refused() {
    let server = start().await;
    let err = AdminListener::bind(&server.path)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        err.to_string().contains("another process is listening"),
        "{err}"
    );
    // The live server still answers.
    assert_eq!(server.raw("check\n").await, "ERR blue unreachable\n");
    server.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    std::fs::write(&path, "precious").unwrap();
    let err = AdminListener::bind(&path).await.err().expect("refused");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[tokio::test]
async fn clients_are_served_concurrently() {
    let server = start().await;
    // Each `pause` waits for the other to be in flight: serialised handling would hang.
    let both = async { tokio::join!(server.raw("pause\n"), server.raw("pause --timeout 1s\n")) };
    let (a, b) = tokio::time::timeout(PATIENCE, both)
        .await
        .expect("both answered");
    assert_eq!((a.as_str(), b.as_str()), ("OK paused\n", "OK paused\n"));
    server.stop().await;
}

#[tokio::test]
async fn a_client_leaving_does_not_cancel_the_command() {
    let server = start().await;
    let stream = UnixStream::connect(&server.path).await.unwrap();
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(b"switchover\n").await.unwrap();
    let mut first = String::new();
    reader.read_line(&mut first).await.unwrap();
    assert_eq!(first, "phase 1\n");
    drop(reader); // ctl killed mid-switchover

    let finished = server.fake.finished.clone();
    tokio::time::timeout(PATIENCE, finished.notified())
        .await
        .expect("the switchover ran to completion");
    assert_eq!(*server.fake.finished_switchovers.lock().unwrap(), 1);
    // And the server keeps serving.
    assert_eq!(server.raw("check\n").await, "ERR blue unreachable\n");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_a_running_command_finish() {
    let server = start().await;
    let path = server.path.clone();
    let finished = server.fake.finished.clone();
    let mut stream = UnixStream::connect(&path).await.unwrap();
    stream.write_all(b"switchover\n").await.unwrap();
    let mut first = [0u8; 8];
    stream.read_exact(&mut first).await.unwrap();
    server.stop().await;
    assert!(!path.exists());
    let mut rest = String::new();
    stream.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "phase 2\nOK switched\n");
    tokio::time::timeout(PATIENCE, finished.notified())
        .await
        .unwrap();
}

#[tokio::test]
async fn socat_style_raw_use() {
    let server = start().await;
    // `printf status | socat - UNIX-CONNECT:…`: no newline, write side closed.
    let mut stream = UnixStream::connect(&server.path).await.unwrap();
    stream.write_all(b"status").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert_eq!(reply, "line one\nline two\nOK done\n");
    // CRLF from a telnet-minded client.
    assert_eq!(server.raw("check\r\n").await, "ERR blue unreachable\n");
    // A probe that connects and leaves gets nothing and harms nothing.
    drop(UnixStream::connect(&server.path).await.unwrap());
    assert_eq!(server.raw("check\n").await, "ERR blue unreachable\n");
    server.stop().await;
}

#[tokio::test]
async fn client_run_reports_ok_and_err() {
    let server = start().await;
    let (result, out) = server.ctl("status", false).await;
    assert!(result.unwrap());
    assert_eq!(out, "line one\nline two\nOK done\n");

    let (result, out) = server.ctl("check", false).await;
    assert!(!result.unwrap());
    assert_eq!(out, "ERR blue unreachable\n");

    let (result, out) = server.ctl("status", true).await;
    assert!(result.unwrap());
    assert_eq!(json_lines(&out).len(), 3);

    let (result, out) = server.ctl("check", true).await;
    assert!(!result.unwrap());
    assert_eq!(json_lines(&out)[0]["type"], "err");

    let (result, _) = server.ctl("bogus", false).await;
    assert!(!result.unwrap());
    let (result, _) = server
        .ctl("switchover --timeout 1s --drain-timeout 100ms", false)
        .await;
    assert!(result.unwrap());
    assert!(server
        .fake
        .calls()
        .contains(&"switchover --timeout 1000ms --drain-timeout 100ms".to_owned()));

    let (result, _) = server.ctl("sessions", false).await;
    assert!(!result.unwrap(), "no result is a failure");
    server.stop().await;
}

#[tokio::test]
async fn client_run_explains_a_missing_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sock");
    let mut out = Vec::new();
    let err = client::run(&path, &["status".into()], false, &mut out)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("is the proxy running?"), "{text}");
    assert!(text.contains("nobody.sock"), "{text}");
    assert!(matches!(err, client::ClientError::Connect { .. }));

    // A stale socket file refuses rather than being missing: same advice.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = client::run(&path, &["status".into()], false, &mut out)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is the proxy running?"), "{err}");

    let err = client::run(&path, &["status\nresume".into()], false, &mut out)
        .await
        .unwrap_err();
    assert!(matches!(err, client::ClientError::InvalidCommand(_)));
}
