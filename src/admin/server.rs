//! The admin socket server: binds a Unix socket, reads one command line per
//! connection, hands it to a [`Handler`] and streams the handler's [`Line`]s back.
//!
//! Invariants:
//! - The socket file is mode 0600 from the moment it appears at its path (it is bound
//!   in a private 0700 directory, chmodded, then hard-linked into place), and removed
//!   when [`AdminListener::serve`] returns or the listener is dropped — but only if the
//!   file there is still ours.
//! - A stale socket file is replaced only if nobody answers on it; a live one is an
//!   error, so two proxies cannot fight over one socket.
//! - **A handler runs to completion whatever the client does.** It is spawned as its
//!   own task; a client that disconnects (ctl killed, Ctrl-C, ssh dropped) only stops
//!   the output, never the command. A switchover is never left half done because its
//!   observer went away. Handlers should therefore ignore `send` errors.
//! - A slow client never slows a handler: lines are drained from the handler's channel
//!   at once and queued for the client, whose writes have a timeout.
//! - A slow or silent client never delays another: every connection is served by its
//!   own task, its command line must arrive within [`READ_TIMEOUT`], and past
//!   [`MAX_CLIENTS`] open connections a newcomer gets `ERR` at once instead of waiting
//!   in the listen backlog behind the others.
//! - Every reply ends with exactly one `OK`/`ERR` line; a handler that ends without one
//!   (or panics) yields `ERR internal: no result`.

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, Semaphore};

use super::command::{parse, Command, Request, HELP};
use super::reply::Line;

/// Longest command line accepted, in bytes (without the `\n`).
pub const MAX_LINE: usize = 4096;
/// How long a client may take to send its command line.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one reply line may take to reach a client before it is given up on.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Admin connections open at once (reading their command or running it); the next
/// one is answered `ERR` at once rather than left waiting behind them.
pub const MAX_CLIENTS: usize = 128;
/// Lines a handler may have in flight before `send` waits (it is drained at once).
const CHANNEL_CAPACITY: usize = 64;
/// How long to wait for an answer when probing an existing socket file.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Executes admin commands. The server answers `help` itself and calls the handler for
/// every other command.
pub trait Handler: Send + Sync + 'static {
    /// Runs `request`, sending zero or more progress lines then exactly one `Ok`/`Err`
    /// line on `out`. The returned future is spawned and runs to completion even if
    /// the client disconnects; `send` errors only mean nobody is listening any more.
    fn handle(
        &self,
        request: Request,
        out: mpsc::Sender<Line>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// Binds `path` and serves until `shutdown` resolves, then removes the socket file.
/// Commands already running when `shutdown` resolves are left to finish.
pub async fn serve(
    path: &Path,
    handler: Arc<dyn Handler>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    AdminListener::bind(path)
        .await?
        .serve(handler, shutdown)
        .await
}

/// A bound admin socket. Binding separately from serving lets the proxy fail at
/// startup, before taking traffic, when the socket cannot be created.
pub struct AdminListener {
    listener: UnixListener,
    guard: SocketFile,
}

impl AdminListener {
    /// Creates the socket at `path` (mode 0600), replacing a stale one.
    pub async fn bind(path: &Path) -> io::Result<Self> {
        clear_stale(path).await?;
        let (listener, guard) = bind_private(path)?;
        Ok(AdminListener { listener, guard })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.guard.path
    }

    /// Accepts clients, one task each, until `shutdown` resolves.
    pub async fn serve(
        self,
        handler: Arc<dyn Handler>,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        tracing::info!(socket = %self.path().display(), "admin socket listening");
        let limit = Arc::new(Semaphore::new(MAX_CLIENTS));
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                _ = &mut shutdown => break,
                stream = accept(&self.listener) => stream,
            };
            // Accepted before a permit is sought, and each connection in its own task:
            // a client slow to send its command (bounded by READ_TIMEOUT) never keeps
            // another waiting, in the backlog or behind it. At the cap the newcomer is
            // told so at once.
            let handler = handler.clone();
            match limit.clone().try_acquire_owned() {
                Ok(permit) => tokio::spawn(async move {
                    serve_client(stream, handler).await;
                    drop(permit);
                }),
                Err(_) => tokio::spawn(async move {
                    let (read, write) = stream.into_split();
                    let e = format!("too many admin connections ({MAX_CLIENTS} open); try again");
                    reject(read, write, e, false).await;
                }),
            };
        }
        tracing::info!(socket = %self.path().display(), "admin socket closed");
        Ok(()) // `self.guard` drops here and removes the file.
    }
}

/// Accepts the next client, backing off on errors (e.g. out of file descriptors).
async fn accept(listener: &UnixListener) -> UnixStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return stream,
            Err(e) => {
                tracing::warn!(error = %e, "admin socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Removes a socket file nobody answers on; refuses to touch a live socket or any
/// other kind of file.
async fn clear_stale(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(context(e, path, "cannot inspect")),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "admin socket {}: a file that is not a socket is in the way; not removing it",
                path.display()
            ),
        ));
    }
    match tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(path)).await {
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(socket = %path.display(), "removing stale admin socket");
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(context(e, path, "cannot remove stale"))
                }
                _ => Ok(()),
            }
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Ok(Err(e)) => Err(context(e, path, "cannot probe existing")),
        // Connected, or so busy that connecting hangs: someone is serving there.
        Ok(Ok(_)) | Err(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "admin socket {}: another process is listening on it (is another switchyard running?)",
                path.display()
            ),
        )),
    }
}

/// Binds inside a fresh 0700 directory next to `path`, sets 0600, then hard-links the
/// socket to `path`: nobody can connect before the mode is set, and an existing file
/// at `path` is never overwritten.
fn bind_private(path: &Path) -> io::Result<(UnixListener, SocketFile)> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = parent.join(format!(
        ".switchyard-admin.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    // A leftover from a crashed process that had our pid: ours to clean.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| context(e, path, "cannot create a private directory next to"))?;
    let result = (|| {
        let private = dir.join("s");
        let listener = UnixListener::bind(&private).map_err(|e| context(e, path, "cannot bind"))?;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| context(e, path, "cannot set mode 0600 on"))?;
        std::fs::hard_link(&private, path).map_err(|e| context(e, path, "cannot create"))?;
        let meta =
            std::fs::symlink_metadata(path).map_err(|e| context(e, path, "cannot inspect"))?;
        let guard = SocketFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        };
        Ok((listener, guard))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn context(e: io::Error, path: &Path, what: &str) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("{what} admin socket {}: {e}", path.display()),
    )
}

/// Removes the socket file on drop, if the file at the path is still the one we made.
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(socket = %self.path.display(), error = %e, "cannot remove admin socket");
                }
            }
            _ => {} // Gone already, or replaced by someone else's.
        }
    }
}

/// One connection: read the command line, answer, close.
async fn serve_client(stream: UnixStream, handler: Arc<dyn Handler>) {
    let (mut read, mut write) = stream.into_split();
    let line = match tokio::time::timeout(READ_TIMEOUT, read_request(&mut read)).await {
        Ok(Ok(Some(line))) => line,
        Ok(Ok(None)) => return, // Connected and left without a word (e.g. a probe).
        Ok(Err(e)) => return reject(read, write, e, false).await,
        Err(_) => {
            let e = format!("no command received within {}s", READ_TIMEOUT.as_secs());
            return reject(read, write, e, false).await;
        }
    };
    let request = match parse(&line) {
        Ok(request) => request,
        Err(e) => {
            let json = line.split_whitespace().any(|w| w == "--json");
            return reject(read, write, e, json).await;
        }
    };
    if request.command.changes_state() {
        tracing::info!(command = %request, "admin command");
    } else {
        tracing::debug!(command = %request, "admin command");
    }
    let json = request.json;
    if request.command == Command::Help {
        for line in [Line::progress(HELP), Line::ok("")] {
            if write_line(&mut write, &line, json).await.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
        return;
    }
    let mut lines = run_handler(handler.as_ref(), request);
    while let Some(line) = lines.recv().await {
        if let Err(e) = write_line(&mut write, &line, json).await {
            // Dropping `lines` makes the handler's further sends fail fast; the
            // handler itself carries on.
            tracing::debug!(error = %e, "admin client went away; the command continues");
            return;
        }
    }
    let _ = write.shutdown().await;
}

/// Answers `ERR message`, then discards what the client is still sending (bounded in
/// bytes and time): closing a Unix socket with unread input resets it, and the client
/// would lose the very line that explains the problem.
async fn reject(
    mut read: impl AsyncRead + Unpin,
    mut write: impl AsyncWrite + Unpin,
    message: String,
    json: bool,
) {
    if write_line(&mut write, &Line::err(message), json)
        .await
        .is_err()
    {
        return;
    }
    let _ = write.shutdown().await;
    let drain = async {
        let mut rest = (&mut read).take(1 << 20);
        tokio::io::copy(&mut rest, &mut tokio::io::sink()).await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// Spawns the handler and a forwarder that drains its channel as fast as it fills,
/// so the handler never waits on the client. The returned queue ends after the final
/// line, with `ERR internal: no result` supplied if the handler gave none.
fn run_handler(handler: &dyn Handler, request: Request) -> mpsc::UnboundedReceiver<Line> {
    let (out, mut from_handler) = mpsc::channel(CHANNEL_CAPACITY);
    let (queue, to_client) = mpsc::unbounded_channel();
    tokio::spawn(handler.handle(request, out));
    tokio::spawn(async move {
        while let Some(line) = from_handler.recv().await {
            let last = line.kind.is_final();
            if queue.send(line).is_err() || last {
                return;
            }
        }
        let _ = queue.send(Line::err("internal: no result"));
    });
    to_client
}

async fn write_line(
    write: &mut (impl AsyncWrite + Unpin),
    line: &Line,
    json: bool,
) -> io::Result<()> {
    let text = line.render(json);
    let io = async {
        write.write_all(text.as_bytes()).await?;
        write.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, io).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "admin client not reading",
        )),
    }
}

/// Reads one command line of at most [`MAX_LINE`] bytes. `Ok(None)`: the client
/// closed without sending anything. A last line without `\n` before EOF counts.
async fn read_request(read: &mut (impl AsyncRead + Unpin)) -> Result<Option<String>, String> {
    let mut buf = Vec::with_capacity(128);
    let mut limited = BufReader::new(read.take(MAX_LINE as u64 + 1));
    limited
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| format!("reading the command: {e}"))?;
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if buf.len() > MAX_LINE {
        return Err(format!("command line longer than {MAX_LINE} bytes"));
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| "command line is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(mut bytes: &[u8]) -> Result<Option<String>, String> {
        read_request(&mut bytes).await
    }

    #[tokio::test]
    async fn request_lines() {
        assert_eq!(read(b"status\n").await, Ok(Some("status".into())));
        assert_eq!(
            read(b"status\r\nignored\n").await,
            Ok(Some("status".into()))
        );
        assert_eq!(read(b"status").await, Ok(Some("status".into())));
        assert_eq!(read(b"\n").await, Ok(Some(String::new())));
        assert_eq!(read(b"").await, Ok(None));
        assert!(read(b"\xff\n").await.unwrap_err().contains("UTF-8"));
    }

    #[tokio::test]
    async fn request_line_bound() {
        let mut exact = vec![b'a'; MAX_LINE];
        assert_eq!(read(&exact).await.unwrap().unwrap().len(), MAX_LINE);
        exact.push(b'\n');
        assert_eq!(read(&exact).await.unwrap().unwrap().len(), MAX_LINE);
        let long = vec![b'a'; MAX_LINE * 4];
        assert!(read(&long).await.unwrap_err().contains("longer than"));
    }
}
