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
//! | `status` | read-only | active side and address, switchover phase, sessions by state (idle, in transaction, held, pinned), the standby's replication (threads, lag, GTID, error), the last switchover with per-phase durations; then `OK <side> is active` |
//! | `sessions` | read-only | one line per client session (id, user, client, schema, state, pin, age), then `OK <n> sessions` |
//! | `check` | read-only; probes both backends | one `pass`/`FAIL <check>: <reason>` line per guardrail, then `OK ready: …` or `ERR switchover would be refused: <checks>` |
//! | `switchover [--timeout D] [--drain-timeout D]` | moves traffic to the standby | one line per phase as it happens (precheck, draining, fencing, catching_up, promoting, retargeting, done), then `OK switched …` with the pause and per-phase durations, or `ERR` naming the phase that failed and confirming traffic continues on the old primary |
//! | `pause [--timeout D]` | holds new commands at transaction boundaries and waits (up to D, default the drain timeout) until no transaction is open | `OK paused` once drained; stays paused until `resume`; `ERR` (and released) if transactions stay open |
//! | `resume` | releases a pause | `OK resumed`, or `ERR not paused` |
//! | `reload` | re-reads the config file (users, timeouts, policies) | `OK reloaded`, or `ERR` saying which key is wrong or needs a restart; the old config stays in force |
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
pub mod handler;
pub mod reply;
pub mod server;

pub use client::ClientError;
pub use command::{parse, Command, Request, HELP};
pub use reply::{Kind, Line};
pub use server::{serve, AdminListener, Handler, MAX_LINE};
