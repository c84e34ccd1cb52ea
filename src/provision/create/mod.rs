//! `switchyard create`: make green from blue — validate both sides, copy everything at
//! one consistent point over several connections, start replication from exactly that
//! point, and wait until green has caught up.
//!
//! The steps, in order: prerequisites (`validate`); green's state (empty, or carrying
//! the mark of an unfinished run, or `--force`); the mark (`marker`); blue's catalog
//! (`catalog`); databases, tables without their secondary indexes, routines, views,
//! accounts and grants (`objects`, `ddl`); the data at one snapshot (`copy`,
//! `values`), each table's indexes once its data is in; triggers and events (disabled
//! on the replica); a schema comparison of both sides; replication from the
//! snapshot's position; the mark removed; green read-only; caught up.
//!
//! Every write to green goes through sessions with `sql_log_bin = 0`: green's binary
//! log holds nothing of its own afterwards, only what it replicates, so its GTID
//! history is blue's and a switchover finds no errant transaction.

mod catalog;
mod copy;
mod ddl;
mod error;
mod marker;
mod objects;
mod progress;
mod validate;
mod values;

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, ControlConfig};
use crate::control::{Control, Flavor};

use super::chunks::ident;
use super::position::text;
use super::schema;
pub use error::CreateError;
pub use marker::MARKER_SCHEMA;
use progress::Progress;

/// The session of every connection that writes to green: nothing reaches green's
/// binary log; no foreign-key or unique checks while loading (blue's data satisfied
/// them); TIMESTAMPs in UTC as they were read; a zero in an AUTO_INCREMENT column
/// stays zero; zero dates, invalid dates and an ENUM's empty error value — whatever blue
/// could store — are taken as they come (not strict: each such value is a warning,
/// counted and shown, never an error).
pub(crate) const GREEN_SESSION: [&str; 3] = [
    "SET SESSION sql_log_bin = 0",
    "SET SESSION foreign_key_checks = 0, unique_checks = 0, time_zone = '+00:00', \
     sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
    "SET NAMES utf8mb4",
];

/// How long green's replication threads may take to start.
const REPLICATION_START: Duration = Duration::from_secs(60);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars on a terminal, plain lines otherwise.
    Auto,
    /// Per-table bars (`indicatif`).
    Bars,
    /// A plain line every few seconds.
    Plain,
    /// Nothing but the final summary.
    Quiet,
}

/// What to create and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Copy workers, each with its own connection to blue and to green.
    pub threads: usize,
    /// About this many rows per chunk.
    pub chunk_rows: u64,
    /// Write into a green that already holds user data: drop blue's databases there.
    pub force: bool,
    pub progress: ProgressMode,
    /// Bound of each statement and of the wait for green to catch up.
    pub timeout: Duration,
    /// How long the brief global read lock on blue may wait for running statements.
    pub lock_wait_timeout: Duration,
}

/// What a finished `create` did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Blue's GTID position the copy was taken at.
    pub position: String,
    pub databases: usize,
    pub tables: usize,
    pub rows: u64,
    pub bytes: u64,
    pub views: usize,
    pub routines: usize,
    pub triggers: usize,
    pub events: usize,
    pub users: usize,
    /// Warnings green gave while loading rows.
    pub warnings: u64,
    pub seconds: f64,
}

/// Create green from blue as `config` names them. Stops early, leaving green marked
/// incomplete, when `shutdown` completes.
pub async fn run(
    config: &Config,
    options: &Options,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, CreateError> {
    let control = config
        .control
        .as_ref()
        .ok_or_else(|| CreateError::Config("[control] is required".into()))?;
    let green_address = &config
        .green
        .as_ref()
        .ok_or_else(|| CreateError::Config("[green] is required".into()))?
        .address;
    let progress = Progress::new(options.progress);
    let mut run = Run {
        config,
        control,
        options,
        blue: Control::connect_with(config, control, &config.blue.address, options.timeout).await?,
        green: Control::connect_with(config, control, green_address, options.timeout).await?,
        progress: Arc::clone(&progress),
        marked: false,
        summary: Summary::default(),
    };
    let result = tokio::select! {
        r = run.steps() => r,
        () = shutdown => Err(CreateError::Interrupted),
    };
    if result.is_err() && run.marked {
        progress.say(&format!(
            "green is left marked incomplete (database {MARKER_SCHEMA}); \
             `switchyard create` removes what this run made and starts again"
        ));
    }
    result
}

/// One `create`, step by step.
struct Run<'a> {
    config: &'a Config,
    control: &'a ControlConfig,
    options: &'a Options,
    blue: Control,
    green: Control,
    progress: Arc<Progress>,
    /// Whether green carries the mark of this run.
    marked: bool,
    summary: Summary,
}

impl Run<'_> {
    async fn steps(&mut self) -> Result<Summary, CreateError> {
        let started = Instant::now();
        let (blue_at, green_at) = (
            self.blue.address().to_owned(),
            self.green.address().to_owned(),
        );
        self.progress.say(&format!(
            "checking blue ({blue_at}, {}) and green ({green_at}, {})",
            self.blue.version().await?,
            self.green.version().await?
        ));
        let unfinished = marker::present(&mut self.green).await?;
        let occupied = if unfinished {
            Vec::new()
        } else {
            self.occupied().await?
        };
        if !occupied.is_empty() && !self.options.force {
            return Err(CreateError::NotEmpty(format!(
                "{}; nothing was written. Give it an empty server, or pass --force to drop \
                 blue's databases on green and reset its replication, binary log and GTID state",
                occupied.join(" and ")
            )));
        }
        let mut problems = validate::check(
            self.config,
            self.control,
            &mut self.blue,
            &mut self.green,
            unfinished || self.options.force,
        )
        .await?;
        if let Err(space) = validate::free_space(&mut self.blue, &mut self.green).await? {
            problems.push(space);
        }
        if !problems.is_empty() {
            return Err(CreateError::Prerequisites(problems));
        }
        self.blue
            .query_drop("SET SESSION sql_mode = '', time_zone = '+00:00'")
            .await?;
        if self.blue.flavor() == Flavor::MySql {
            // Password hashes as hex: caching_sha2 hashes are not text.
            self.blue
                .query_drop("SET SESSION print_identified_with_as_hex = ON")
                .await?;
        }
        for setup in GREEN_SESSION {
            self.green.query_drop(setup).await?;
        }
        let catalog = catalog::read(&mut self.blue).await?;
        self.prepare_green(&catalog, unfinished, &occupied).await?;
        self.green
            .set_read_only(false, self.options.timeout)
            .await?;
        marker::begin(&mut self.green, &blue_at).await?;
        self.marked = true;

        let (rows, bytes) = catalog.totals();
        self.progress.say(&format!(
            "blue holds {} databases, {} tables (~{rows} rows, ~{} MiB), {} views, {} routines, \
             {} triggers, {} events, {} accounts",
            catalog.databases.len(),
            catalog.tables.len(),
            bytes >> 20,
            catalog.views.len(),
            catalog.routines.len(),
            catalog.triggers.len(),
            catalog.events.len(),
            catalog.accounts.len()
        ));
        let outside: Vec<String> = catalog
            .tables
            .iter()
            .filter(|t| !t.engine.eq_ignore_ascii_case("InnoDB"))
            .map(|t| format!("{} ({})", t.table.display_name(), t.engine))
            .collect();
        if !outside.is_empty() {
            self.progress.say(&format!(
                "note: a consistent snapshot covers InnoDB tables only; these are copied as \
                 they are when read, so writes to them during the copy may be missed or doubled: {}",
                outside.join(", ")
            ));
        }
        let s = &mut self.summary;
        let accounts = objects::accounts(&mut self.blue, &mut self.green, &catalog).await?;
        s.users = accounts.len();
        s.databases = objects::databases(&mut self.green, &catalog).await?;
        let indexes = objects::tables(&mut self.blue, &mut self.green, &catalog).await?;
        s.tables = catalog.tables.len();
        s.routines = objects::routines(&mut self.blue, &mut self.green, &catalog).await?;
        s.views =
            objects::views_and_grants(&mut self.blue, &mut self.green, &catalog, &accounts).await?;
        self.progress.say(&format!(
            "made {} accounts, {} databases, {} tables, {} routines and {} views on green",
            s.users, s.databases, s.tables, s.routines, s.views
        ));

        self.copy_data(&catalog, indexes).await?;

        let s = &mut self.summary;
        s.triggers = objects::triggers(&mut self.blue, &mut self.green, &catalog).await?;
        s.events = objects::events(&mut self.blue, &mut self.green, &catalog).await?;
        self.progress.say(&format!(
            "made {} triggers and {} events (disabled on green)",
            s.triggers, s.events
        ));
        self.compare_schemas().await?;
        self.replicate().await?;
        self.summary.seconds = started.elapsed().as_secs_f64();
        Ok(self.summary.clone())
    }

    /// Why green is not an empty server: the tables it holds, its being a replica.
    async fn occupied(&mut self) -> Result<Vec<String>, CreateError> {
        let rows = self
            .green
            .query_rows(
                "green's tables",
                "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema') \
                 ORDER BY 1 LIMIT 6",
            )
            .await?;
        let tables: Vec<String> = rows.iter().filter_map(|r| text(r, 0)).collect();
        let mut reasons = Vec::new();
        if !tables.is_empty() {
            let more = if tables.len() > 5 { ", …" } else { "" };
            let shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
            reasons.push(format!("it holds tables ({}{more})", shown.join(", ")));
        }
        if let Some(status) = self.green.replica_status().await? {
            reasons.push(format!(
                "it is a replica of {}:{}",
                status.master_host, status.master_port
            ));
        }
        Ok(reasons)
    }

    /// Clear the way on green: the leftovers of an unfinished run go; with `--force`,
    /// blue's databases there, its replication settings, binary log and GTID state.
    async fn prepare_green(
        &mut self,
        catalog: &catalog::Catalog,
        unfinished: bool,
        occupied: &[String],
    ) -> Result<(), CreateError> {
        if !unfinished && !self.options.force {
            return Ok(());
        }
        self.green.stop_replication().await?;
        self.green
            .set_read_only(false, self.options.timeout)
            .await?;
        self.reset_green_binlog().await?;
        if unfinished {
            let removed = marker::clean_up(&mut self.green).await?;
            self.progress.say(&format!(
                "green carries the mark of an unfinished create: removed the {} databases and \
                 accounts it made",
                removed.len()
            ));
        }
        if self.options.force {
            if !occupied.is_empty() {
                self.progress.say(&format!(
                    "--force: {}; dropping blue's databases there",
                    occupied.join(" and ")
                ));
            }
            for db in &catalog.databases {
                self.green
                    .query_drop(&format!("DROP DATABASE IF EXISTS {}", ident(&db.name)))
                    .await?;
            }
        }
        Ok(())
    }

    /// Forget green's binary log and GTID history: the data they describe is replaced.
    async fn reset_green_binlog(&mut self) -> Result<(), CreateError> {
        match self.green.flavor() {
            Flavor::MariaDb => {
                self.green.query_drop("RESET MASTER").await?;
                self.green
                    .query_drop("SET GLOBAL gtid_slave_pos = ''")
                    .await?;
            }
            Flavor::MySql => self.green.query_drop("RESET BINARY LOGS AND GTIDS").await?,
        }
        Ok(())
    }

    /// The rows, at one snapshot, with progress.
    async fn copy_data(
        &mut self,
        catalog: &catalog::Catalog,
        indexes: Vec<Option<String>>,
    ) -> Result<(), CreateError> {
        let packet = self
            .green
            .query_rows("max_allowed_packet", "SELECT @@GLOBAL.max_allowed_packet")
            .await?
            .first()
            .and_then(|r| text(r, 0))
            .and_then(|v| v.parse().ok())
            .unwrap_or(16 << 20);
        let local_infile = self
            .green
            .query_rows("local_infile", "SELECT @@GLOBAL.local_infile")
            .await?
            .first()
            .and_then(|r| text(r, 0))
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("ON"));
        let autoinc_lock_mode: u8 = self
            .green
            .query_rows(
                "innodb_autoinc_lock_mode",
                "SELECT @@GLOBAL.innodb_autoinc_lock_mode",
            )
            .await?
            .first()
            .and_then(|r| text(r, 0))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let loader = if local_infile {
            copy::Loader::LoadData
        } else {
            copy::Loader::Insert
        };
        let snapshot = copy::snapshot(
            self.config,
            self.control,
            &mut self.blue,
            self.options.threads,
            self.options.lock_wait_timeout,
        )
        .await?;
        self.summary.position = snapshot.position.clone();
        self.progress.say(&format!(
            "snapshot at blue's GTID position {} (blue's commits waited {:.1} ms); copying with {} workers \
             by {}",
            display_position(&snapshot.position),
            snapshot.lock_held.as_secs_f64() * 1000.0,
            snapshot.readers.len(),
            match loader {
                copy::Loader::LoadData | copy::Loader::LoadDataAlone => "LOAD DATA LOCAL",
                copy::Loader::Insert => "multi-row INSERTs (green's local_infile is off)",
            }
        ));
        self.progress.tables(catalog);
        let stop = Arc::new(AtomicBool::new(false));
        let shown = tokio::spawn(Arc::clone(&self.progress).show(Arc::clone(&stop)));
        let copied = copy::copy(
            self.config,
            self.control,
            self.green.address(),
            snapshot,
            Arc::new(catalog.tables.clone()),
            indexes,
            self.options.chunk_rows,
            packet,
            loader,
            autoinc_lock_mode,
            Arc::clone(&self.progress),
        )
        .await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = shown.await;
        copied?;
        (self.summary.rows, self.summary.bytes) = self.progress.copied();
        for (table, count, first) in self.progress.warnings() {
            self.summary.warnings += count;
            self.progress.say(&format!(
                "note: green gave {count} warning(s) loading {table}, the first: {first} — a \
                 value blue holds that green takes only with a warning (an ENUM's empty error \
                 value, a zero date); `switchyard verify` compares the result"
            ));
        }
        Ok(())
    }

    /// Green's schema must now be blue's: a difference means DDL ran on blue during the
    /// copy (or green rewrote something), which replication would trip over.
    async fn compare_schemas(&mut self) -> Result<(), CreateError> {
        let report = schema::diff(&mut self.blue, &mut self.green)
            .await
            .map_err(|e| CreateError::Green(format!("comparing the schemas: {e}")))?;
        let differences: Vec<_> = report
            .differences
            .iter()
            .filter(|d| d.schema != MARKER_SCHEMA)
            .collect();
        if differences.is_empty() {
            self.progress.say("green's schema is blue's");
            return Ok(());
        }
        let lines: Vec<String> = differences.iter().map(|d| d.to_string()).collect();
        if differences
            .iter()
            .any(|d| d.verdict == super::schema_diff::Verdict::Incompatible)
        {
            return Err(CreateError::Green(format!(
                "after the copy green's schema differs from blue's (did DDL run on blue meanwhile?):\n  {}",
                lines.join("\n  ")
            )));
        }
        self.progress.say(&format!(
            "green's schema differs from blue's in ways replication can live with:\n  {}",
            lines.join("\n  ")
        ));
        Ok(())
    }

    /// Green replicates from the snapshot's position, the mark goes, green becomes
    /// read-only and catches up.
    async fn replicate(&mut self) -> Result<(), CreateError> {
        let position = self.summary.position.clone();
        let set = match self.green.flavor() {
            Flavor::MariaDb => format!(
                "SET GLOBAL gtid_slave_pos = '{}'",
                position.replace('\'', "")
            ),
            Flavor::MySql => format!("SET GLOBAL gtid_purged = '{}'", position.replace('\'', "")),
        };
        if !position.trim().is_empty() {
            self.green.query_drop(&set).await?;
        }
        let blue = self.config.blue.address.clone();
        let repl = self.config.replication.as_ref().unwrap_or(self.control);
        self.green
            .replicate_from(
                &blue,
                &repl.user,
                repl.password(),
                self.config.source_tls(&blue).as_ref(),
            )
            .await?;
        self.green.wait_replicating(REPLICATION_START).await?;
        marker::finish(&mut self.green).await?;
        self.marked = false;
        self.green.set_read_only(true, self.options.timeout).await?;
        let now = self.blue.gtid_position().await?;
        self.progress.say(&format!(
            "green replicates from blue; waiting until it has applied {}",
            display_position(&now)
        ));
        if !now.trim().is_empty()
            && !self
                .green
                .wait_for_gtids(&now, self.options.timeout)
                .await?
        {
            return Err(CreateError::Green(format!(
                "green replicates but did not reach blue's position {now} within {:?}",
                self.options.timeout
            )));
        }
        Ok(())
    }
}

/// A position for people: `(empty)` for none.
fn display_position(position: &str) -> String {
    if position.trim().is_empty() {
        "(empty)".into()
    } else {
        position.to_owned()
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = if self.seconds > 0.0 {
            self.rows as f64 / self.seconds
        } else {
            0.0
        };
        write!(
            f,
            "created green at blue's GTID position {}: {} databases, {} tables, {} rows ({} bytes), \
             {} views, {} routines, {} triggers, {} events (disabled on green), {} accounts \
             in {:.1} s ({:.0} rows/s), {} warnings; green replicates from blue and has caught up",
            self.position,
            self.databases,
            self.tables,
            self.rows,
            self.bytes,
            self.views,
            self.routines,
            self.triggers,
            self.events,
            self.users,
            self.seconds,
            rate,
            self.warnings
        )
    }
}
