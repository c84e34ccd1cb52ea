//! What verification prints: a line per table as it finishes, a line per differing
//! chunk, a summary; as text or as one JSON object per line.

use std::io::Write;

use serde_json::json;

/// One side's answer for a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sum {
    pub rows: u64,
    /// The 128-bit checksum, as two 64-bit halves.
    pub checksum: (u64, u64),
}

impl Sum {
    pub fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.checksum.0, self.checksum.1)
    }
}

/// A chunk whose sums differ, with its key range as people read it.
#[derive(Debug, Clone)]
pub struct ChunkDiff {
    /// `[id 10001 .. 20000]`.
    pub range: String,
    pub blue: Sum,
    pub green: Sum,
}

/// How one table came out.
#[derive(Debug, Clone)]
pub enum TableOutcome {
    Equal {
        chunks: u64,
        rows: u64,
    },
    Differs {
        chunks: u64,
        rows: u64,
        diffs: Vec<ChunkDiff>,
    },
    /// The table cannot be compared (missing on green, columns green lacks).
    Missing(String),
    /// No primary key to chunk by.
    NotVerified(String),
}

/// Counts for the summary.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub equal: u64,
    pub differ: u64,
    pub not_verified: u64,
    pub chunks: u64,
    pub rows: u64,
    /// Rounds: times green was stopped at a snapshot position of blue.
    pub rounds: u64,
}

impl Summary {
    pub fn all_equal(&self) -> bool {
        self.differ == 0
    }
}

/// Writes the report to `out`, as text or JSON lines.
pub struct Reporter<W: Write> {
    pub out: W,
    pub json: bool,
}

impl<W: Write> Reporter<W> {
    pub fn start(
        &mut self,
        blue: &str,
        green: &str,
        tables: usize,
        chunk_rows: u64,
    ) -> std::io::Result<()> {
        if self.json {
            self.line(&json!({"event": "start", "blue": blue, "green": green, "tables": tables, "chunk_rows": chunk_rows}))
        } else {
            writeln!(
                self.out,
                "verifying {tables} tables: blue {blue} against green {green}, chunks of about {chunk_rows} rows"
            )
        }
    }

    /// A differing chunk, as soon as it is found.
    pub fn chunk(&mut self, table: &str, diff: &ChunkDiff) -> std::io::Result<()> {
        if self.json {
            self.line(&json!({
                "event": "chunk_differs", "table": table, "range": diff.range,
                "blue": {"rows": diff.blue.rows, "checksum": diff.blue.hex()},
                "green": {"rows": diff.green.rows, "checksum": diff.green.hex()},
            }))
        } else {
            writeln!(
                self.out,
                "{table}: chunk {}: blue {} rows checksum {}, green {} rows checksum {}",
                diff.range,
                diff.blue.rows,
                diff.blue.hex(),
                diff.green.rows,
                diff.green.hex()
            )
        }
    }

    pub fn table(
        &mut self,
        table: &str,
        outcome: &TableOutcome,
        seconds: f64,
    ) -> std::io::Result<()> {
        if self.json {
            let value = match outcome {
                TableOutcome::Equal { chunks, rows } => {
                    json!({"status": "ok", "chunks": chunks, "rows": rows})
                }
                TableOutcome::Differs {
                    chunks,
                    rows,
                    diffs,
                } => {
                    json!({"status": "differs", "chunks": chunks, "rows": rows, "differing_chunks": diffs.len()})
                }
                TableOutcome::Missing(why) => json!({"status": "differs", "reason": why}),
                TableOutcome::NotVerified(why) => json!({"status": "not_verified", "reason": why}),
            };
            let mut value = value;
            value["event"] = json!("table");
            value["table"] = json!(table);
            value["seconds"] = json!((seconds * 1000.0).round() / 1000.0);
            self.line(&value)
        } else {
            match outcome {
                TableOutcome::Equal { chunks, rows } => writeln!(
                    self.out,
                    "{table}: ok ({rows} rows in {chunks} chunks, {seconds:.1} s)"
                ),
                TableOutcome::Differs { chunks, rows, diffs } => writeln!(
                    self.out,
                    "{table}: DIFFERS in {} of {chunks} chunks ({rows} rows on blue, {seconds:.1} s)",
                    diffs.len()
                ),
                TableOutcome::Missing(why) => writeln!(self.out, "{table}: DIFFERS: {why}"),
                TableOutcome::NotVerified(why) => {
                    writeln!(self.out, "{table}: not verified: {why}")
                }
            }
        }
    }

    pub fn summary(&mut self, s: &Summary, seconds: f64) -> std::io::Result<()> {
        if self.json {
            self.line(&json!({
                "event": "summary", "equal": s.all_equal(), "tables_ok": s.equal,
                "tables_differ": s.differ, "tables_not_verified": s.not_verified,
                "chunks": s.chunks, "rows": s.rows, "rounds": s.rounds,
                "seconds": (seconds * 1000.0).round() / 1000.0,
            }))
        } else {
            writeln!(
                self.out,
                "{}: {} tables ok, {} differ, {} not verified; {} rows in {} chunks, {} stops of green, {seconds:.1} s",
                if s.all_equal() { "EQUAL" } else { "DIFFERENT" },
                s.equal,
                s.differ,
                s.not_verified,
                s.rows,
                s.chunks,
                s.rounds
            )
        }
    }

    fn line(&mut self, value: &serde_json::Value) -> std::io::Result<()> {
        writeln!(self.out, "{value}")?;
        self.out.flush()
    }
}
