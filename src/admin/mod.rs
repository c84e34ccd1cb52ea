//! The admin socket: how an operator (or a script) talks to a running proxy.
//!
//! The proxy listens on the Unix socket `[proxy] admin_socket`, mode 0600, removed on
//! exit. A client connects, writes **one command line** ending in `\n`, and reads
//! lines until the proxy closes the connection: zero or more progress lines, then one
//! final line that starts with `OK` or `ERR`. Adding `--json` anywhere on the command
//! line turns every reply line into one JSON object,
//! `{"type":"progress"|"ok"|"err","message":"…", …fields}`. `switchyard ctl` is the
//! client and exits 0 on `OK`, non-zero on `ERR`; `socat - UNIX-CONNECT:PATH` and
//! `nc -U PATH` work as well.
//!
//! # Commands
//!
//! | command | what it does | output |
//! |---|---|---|
//! | `status` | read-only | the active backend, the switchover phase and session counts, then `OK` |
//! | `sessions` | read-only | one progress line per client session (id, user, backend, state), then `OK <n> sessions` |
//! | `check` | read-only; probes both backends | one line per check (reachable, replication caught up, …), then `OK ready` or `ERR <what blocks a switchover>` |
//! | `switchover [--timeout D] [--drain-timeout D]` | moves traffic to the standby | one progress line per phase as it happens (pause, drain, catch up, flip, resume), then `OK` naming the new active backend, or `ERR` naming the phase that failed and confirming traffic resumed on the old one |
//! | `pause [--timeout D]` | holds new statements at a statement boundary | `OK paused` once held; resumes by itself after the timeout |
//! | `resume` | releases a pause | `OK resumed` |
//! | `reload` | re-reads the config file | one line per change applied, then `OK`, or `ERR` saying which key is wrong |
//! | `help` | answered by the server itself | one line per command, then `OK` |
//!
//! `D` is a duration such as `500ms`, `30s` or `2m`; without it the config's value
//! applies. A command that cannot be parsed gets a single `ERR` line naming the word
//! at fault and listing the valid commands.
//!
//! A command runs to completion even if its client disconnects: killing `ctl` in the
//! middle of a switchover stops the output, never the switchover.
//!
//! # Modules
//! - [`command`]: the command language, [`parse`] and [`HELP`].
//! - [`reply`]: the [`Line`]s a handler emits, rendered as text or JSON.
//! - [`server`]: the socket, [`serve`] and the [`Handler`] trait the proxy implements.
//! - [`client`]: [`client::run`], the body of `switchyard ctl`.

pub mod client;
pub mod command;
pub mod reply;
pub mod server;

pub use client::ClientError;
pub use command::{parse, Command, Request, HELP};
pub use reply::{Kind, Line};
pub use server::{serve, AdminListener, Handler, MAX_LINE};
