//! Data verification: blue and green compared table by table in checksummed key-range chunks taken at the same GTID position on both.
//!
//! Per round (one table, or part of a big one): green's applier stops, blue opens a
//! read-only consistent snapshot and reads its GTID position, green applies up to
//! exactly that position and stops ([`position`](super::position)); chunks of about
//! `chunk_rows` rows are found by walking the primary key inside blue's snapshot and
//! checksummed with the same statement on both sides; then green replicates normally
//! again — on every path, errors and interruption included. Nothing is written on blue.

use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

use mysql_async::Row;

use crate::config::Config;
use crate::control::{Control, ControlError};

use super::chunks::{Key, Table};
use super::position::{self, text, Reached};
use super::report::{ChunkDiff, Reporter, Sum, Summary, TableOutcome};
use super::tables;
pub use super::verify_error::VerifyError;

/// How long one round may keep green stopped before it lets green catch up again
/// (checked between chunks).
const ROUND_BUDGET: Duration = Duration::from_secs(2);
/// Rounds retried when green turned out past blue's snapshot position.
const PAST_RETRIES: u32 = 5;
/// Server errors that mean green lacks the table or a column of it: a difference.
const MISSING_ON_GREEN: [u16; 2] = [1146, 1054];

/// What to verify and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// About this many rows per chunk.
    pub chunk_rows: u64,
    /// Only these tables (`schema.table`); all when empty.
    pub tables: Vec<String>,
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Bound of each statement and of each wait for green.
    pub timeout: Duration,
}

/// Verify blue against green as `config` names them; the report goes to `out`. Stops
/// early (green restarted first) when `shutdown` completes.
pub async fn run<W: Write>(
    config: &Config,
    options: &Options,
    out: W,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, VerifyError> {
    let control = config
        .control
        .as_ref()
        .ok_or_else(|| VerifyError::Config("[control] is required".into()))?;
    let green_config = config
        .green
        .as_ref()
        .ok_or_else(|| VerifyError::Config("[green] is required".into()))?;
    let mut blue =
        Control::connect_with(config, control, &config.blue.address, options.timeout).await?;
    let mut green =
        Control::connect_with(config, control, &green_config.address, options.timeout).await?;
    for side in [&mut blue, &mut green] {
        // TIMESTAMP values are shown in the session's zone: the same zone on both.
        side.query_drop("SET SESSION time_zone = '+00:00'").await?;
    }
    if blue.flavor() != green.flavor() {
        return Err(VerifyError::Config(format!(
            "blue is {} and green is {}: verification needs one flavor",
            blue.flavor().name(),
            green.flavor().name()
        )));
    }
    match green.replica_status().await? {
        Some(status) if status.is_running() => {}
        Some(_) => {
            return Err(VerifyError::Green(
                "replication is not running; start it before verifying".into(),
            ))
        }
        None => return Err(VerifyError::Green("green is no replica".into())),
    }
    let tables = tables::list(&mut blue, &options.tables).await?;
    for wanted in &options.tables {
        if !tables.iter().any(|t| &t.display_name() == wanted) {
            return Err(VerifyError::Config(format!(
                "--tables: no base table {wanted} on blue"
            )));
        }
    }
    let mut reporter = Reporter {
        out,
        json: options.json,
    };
    reporter.start(
        blue.address(),
        green.address(),
        tables.len(),
        options.chunk_rows,
    )?;
    let started = Instant::now();
    let mut sides = Sides {
        blue,
        green,
        options,
    };
    let mut summary = Summary::default();
    tokio::pin!(shutdown);
    for table in &tables {
        let table_started = Instant::now();
        let outcome = if table.key.is_empty() {
            TableOutcome::NotVerified("no primary key".into())
        } else {
            sides
                .table(table, &mut reporter, &mut summary, &mut shutdown)
                .await?
        };
        match &outcome {
            TableOutcome::Equal { chunks, rows } => {
                summary.equal += 1;
                summary.chunks += chunks;
                summary.rows += rows;
            }
            TableOutcome::Differs { chunks, rows, .. } => {
                summary.differ += 1;
                summary.chunks += chunks;
                summary.rows += rows;
            }
            TableOutcome::Missing(_) => summary.differ += 1,
            TableOutcome::NotVerified(_) => summary.not_verified += 1,
        }
        reporter.table(
            &table.display_name(),
            &outcome,
            table_started.elapsed().as_secs_f64(),
        )?;
    }
    reporter.summary(&summary, started.elapsed().as_secs_f64())?;
    sides.blue.disconnect().await;
    sides.green.disconnect().await;
    Ok(summary)
}

/// Blue and green's control connections, for one run.
struct Sides<'a> {
    blue: Control,
    green: Control,
    options: &'a Options,
}

/// Where the walk of a table's key has got to.
struct Walk {
    /// The last key of the last chunk done; `None` before the first.
    lower: Option<Key>,
    done: bool,
    chunks: u64,
    rows: u64,
    diffs: Vec<ChunkDiff>,
}

impl Sides<'_> {
    /// Verify one table with a primary key, in as many rounds as it takes.
    async fn table<W: Write, S: Future<Output = ()>>(
        &mut self,
        table: &Table,
        reporter: &mut Reporter<W>,
        summary: &mut Summary,
        shutdown: &mut std::pin::Pin<&mut S>,
    ) -> Result<TableOutcome, VerifyError> {
        let mut walk = Walk {
            lower: None,
            done: false,
            chunks: 0,
            rows: 0,
            diffs: Vec::new(),
        };
        while !walk.done {
            summary.rounds += 1;
            let found = walk.diffs.len();
            if let Err(e) = self.guarded_round(table, &mut walk, shutdown).await {
                return match missing_on_green(&e, self.green.address()) {
                    Some(why) => Ok(TableOutcome::Missing(why)),
                    None => Err(e),
                };
            }
            for diff in &walk.diffs[found..] {
                reporter.chunk(&table.display_name(), diff)?;
            }
        }
        Ok(if walk.diffs.is_empty() {
            TableOutcome::Equal {
                chunks: walk.chunks,
                rows: walk.rows,
            }
        } else {
            TableOutcome::Differs {
                chunks: walk.chunks,
                rows: walk.rows,
                diffs: walk.diffs,
            }
        })
    }

    /// One round with green paused, and green's replication restarted afterwards
    /// whatever happened — also when `shutdown` cut the round short.
    async fn guarded_round<S: Future<Output = ()>>(
        &mut self,
        table: &Table,
        walk: &mut Walk,
        shutdown: &mut std::pin::Pin<&mut S>,
    ) -> Result<(), VerifyError> {
        let result = tokio::select! {
            result = self.round(table, walk) => result,
            () = shutdown.as_mut() => {
                // A statement may have been cut off mid-way on either connection.
                self.green.forget_connection();
                self.blue.forget_connection();
                Err(VerifyError::Interrupted)
            }
        };
        let ended = position::end_snapshot(&mut self.blue).await;
        let resumed = position::resume_green(&mut self.green).await;
        if let Err(e) = &resumed {
            tracing::error!(error = %e, "cannot restart replication on green");
        }
        result?;
        resumed?;
        ended?;
        Ok(())
    }

    /// Pause green at a fresh snapshot position of blue, then checksum chunks until
    /// the table ends or the round's budget is spent.
    async fn round(&mut self, table: &Table, walk: &mut Walk) -> Result<(), VerifyError> {
        self.same_position().await?;
        let started = Instant::now();
        while !walk.done && started.elapsed() < ROUND_BUDGET {
            self.chunk(table, walk).await?;
        }
        Ok(())
    }

    /// Green stopped exactly at the GTID position of a snapshot open on blue.
    async fn same_position(&mut self) -> Result<String, VerifyError> {
        for _ in 0..PAST_RETRIES {
            position::pause_green(&mut self.green).await?;
            let pos = position::snapshot(&mut self.blue).await?;
            match position::run_green_until(&mut self.green, &pos, self.options.timeout).await? {
                Reached::Exactly => {
                    tracing::debug!(%pos, "blue's snapshot and green at one position");
                    return Ok(pos);
                }
                Reached::Past(extra) => {
                    tracing::warn!(%pos, %extra, "green is past blue's snapshot; taking a new one");
                    position::end_snapshot(&mut self.blue).await?;
                    position::resume_green(&mut self.green).await?;
                }
            }
        }
        Err(VerifyError::Green(format!(
            "green was past blue's snapshot position {PAST_RETRIES} times: does green hold \
             transactions of its own?"
        )))
    }

    /// The next chunk: its bounds from blue's snapshot, its sums on both sides.
    async fn chunk(&mut self, table: &Table, walk: &mut Walk) -> Result<(), VerifyError> {
        let lower = walk.lower.clone();
        let first = self.key_at(table, lower.as_ref(), 0).await?;
        let upper = match &first {
            None => None,
            Some(_) => {
                self.key_at(
                    table,
                    lower.as_ref(),
                    self.options.chunk_rows.saturating_sub(1),
                )
                .await?
            }
        };
        let sql = table.checksum_sql(lower.as_ref(), upper.as_ref());
        let blue =
            sum(&self.blue.query_rows("checksum on blue", &sql).await?).ok_or_else(|| {
                VerifyError::Blue(format!("checksum of {} unreadable", table.display_name()))
            })?;
        let green =
            sum(&self.green.query_rows("checksum on green", &sql).await?).ok_or_else(|| {
                VerifyError::Green(format!("checksum of {} unreadable", table.display_name()))
            })?;
        walk.chunks += 1;
        walk.rows += blue.rows;
        if blue != green {
            walk.diffs.push(ChunkDiff {
                range: show_range(table, lower.as_ref(), first.as_ref(), upper.as_ref()),
                blue,
                green,
            });
        }
        walk.done = upper.is_none();
        walk.lower = upper;
        Ok(())
    }

    /// The key `offset` rows after `lower` in blue's snapshot.
    async fn key_at(
        &mut self,
        table: &Table,
        lower: Option<&Key>,
        offset: u64,
    ) -> Result<Option<Key>, ControlError> {
        let rows = self
            .blue
            .query_rows("walk the primary key", &table.key_at_sql(lower, offset))
            .await?;
        Ok(rows.first().map(|row| {
            (0..table.key.len())
                .map(|i| match row.as_ref(i) {
                    Some(mysql_async::Value::Bytes(b)) => b.clone(),
                    _ => text(row, i).unwrap_or_default().into_bytes(),
                })
                .collect()
        }))
    }
}

/// `[id 10001 .. 20000]`: the chunk's first and last key on blue; open ends say so.
fn show_range(
    table: &Table,
    lower: Option<&Key>,
    first: Option<&Key>,
    upper: Option<&Key>,
) -> String {
    let columns = table.show_key_columns();
    let from = match (first, lower) {
        (Some(first), _) => table.show_key(first),
        (None, Some(lower)) => format!("after {}", table.show_key(lower)),
        (None, None) => "start".to_owned(),
    };
    let to = upper.map_or_else(|| "end".to_owned(), |u| table.show_key(u));
    format!("[{columns} {from} .. {to}]")
}

/// Count and checksum from the checksum statement's one row.
fn sum(rows: &[Row]) -> Option<Sum> {
    let row = rows.first()?;
    let number = |i: usize| text(row, i)?.parse::<u64>().ok();
    Some(Sum {
        rows: number(0)?,
        checksum: (number(1)?, number(2)?),
    })
}

/// Why green cannot be compared, when `e` is green (at `green`) lacking the table or
/// one of its columns: a difference, not an error.
fn missing_on_green(e: &VerifyError, green: &str) -> Option<String> {
    let VerifyError::Control(ControlError::Sql {
        address,
        source: mysql_async::Error::Server(server),
        ..
    }) = e
    else {
        return None;
    };
    (address == green && MISSING_ON_GREEN.contains(&server.code)).then(|| {
        format!(
            "green cannot read it (ERROR {}: {})",
            server.code, server.message
        )
    })
}
