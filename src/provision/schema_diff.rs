//! Two [`Schema`] values compared, blue → green, each difference classified: green is
//! what row-based replication from blue writes into, and what the application uses
//! after a switchover. Row-based replication matches columns by position and
//! converts a type only to a wider one (with `ALL_NON_LOSSY`). Pure.

use serde::Serialize;

use super::column_type::{compare, TypeChange};
use super::schema::{Column, Schema, Table, PRIMARY};

/// Whether replication from blue (and the application) keeps working on green.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Compatible,
    Incompatible,
}

/// One difference between blue and green.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub schema: String,
    pub table: String,
    pub column: Option<String>,
    /// What changed, blue → green.
    pub change: String,
    pub verdict: Verdict,
    /// Why the verdict.
    pub why: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = match self.verdict {
            Verdict::Compatible => "compatible",
            Verdict::Incompatible => "INCOMPATIBLE",
        };
        write!(f, "{verdict}: {}.{}", self.schema, self.table)?;
        if let Some(column) = &self.column {
            write!(f, ".{column}")?;
        }
        write!(f, ": {} — {}", self.change, self.why)
    }
}

/// Green's type-conversion setting, which widened columns need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversions {
    /// `slave_type_conversions` (MariaDB) or `replica_type_conversions` (MySQL).
    pub variable: &'static str,
    /// Its value as the server reports it.
    pub value: String,
    /// Whether it includes `ALL_NON_LOSSY`.
    pub non_lossy: bool,
}

use Verdict::{Compatible, Incompatible};

/// Every difference blue → green, tables in name order.
pub fn classify(blue: &Schema, green: &Schema, conversions: &Conversions) -> Vec<Difference> {
    let mut out = Vec::new();
    for ((db, name), b) in &blue.tables {
        let mut at = At {
            schema: db,
            table: name,
            out: &mut out,
        };
        match green.tables.get(&(db.clone(), name.clone())) {
            None if b.view => at.push(
                None,
                "view missing on green",
                Incompatible,
                "queries on it fail on green after the switchover",
            ),
            None => at.push(
                None,
                "table missing on green",
                Incompatible,
                "replicated rows have no table to go into",
            ),
            Some(g) if g.view != b.view => at.push(
                None,
                if b.view {
                    "a view on blue is a table on green"
                } else {
                    "a table on blue is a view on green"
                },
                Incompatible,
                "replication writes rows only into base tables",
            ),
            Some(_) if b.view => {}
            Some(g) => {
                columns(&mut at, b, g, conversions);
                indexes(&mut at, b, g);
            }
        }
    }
    for (db, name) in green.tables.keys() {
        if !blue.tables.contains_key(&(db.clone(), name.clone())) {
            At {
                schema: db,
                table: name,
                out: &mut out,
            }
            .push(
                None,
                "only on green",
                Compatible,
                "replication from blue writes nothing into it",
            );
        }
    }
    out
}

/// Where differences are being found, and where they go.
struct At<'a> {
    schema: &'a str,
    table: &'a str,
    out: &'a mut Vec<Difference>,
}

impl At<'_> {
    fn push(
        &mut self,
        column: Option<&str>,
        change: impl Into<String>,
        verdict: Verdict,
        why: impl Into<String>,
    ) {
        self.out.push(Difference {
            schema: self.schema.to_owned(),
            table: self.table.to_owned(),
            column: column.map(str::to_owned),
            change: change.into(),
            verdict,
            why: why.into(),
        });
    }
}

/// Columns compared by position, as row-based replication matches them.
fn columns(at: &mut At, blue: &Table, green: &Table, conversions: &Conversions) {
    for (i, b) in blue.columns.iter().enumerate() {
        let position = i + 1;
        match green.columns.get(i) {
            Some(g) if g.name == b.name => column(at, b, g, conversions),
            Some(g) => {
                let moved = green.columns.iter().position(|c| c.name == b.name);
                let in_blue = blue.columns.iter().any(|c| c.name == g.name);
                let change = match (moved, in_blue) {
                    (Some(to), _) => format!("moved from position {position} to {}", to + 1),
                    (None, false) => {
                        format!("dropped or renamed on green ({} in its place)", g.name)
                    }
                    (None, true) => "dropped on green".to_owned(),
                };
                at.push(
                    Some(&b.name),
                    change,
                    Incompatible,
                    format!("row-based replication matches columns by position: blue's column {position} would land in green's {}", g.name),
                );
            }
            None => {
                let change = if green.columns.iter().any(|c| c.name == b.name) {
                    "moved on green"
                } else {
                    "dropped on green"
                };
                at.push(
                    Some(&b.name),
                    change,
                    Incompatible,
                    format!(
                        "green has {} column(s), blue {}: replicated rows do not fit",
                        green.columns.len(),
                        blue.columns.len()
                    ),
                );
            }
        }
    }
    for g in green.columns.iter().skip(blue.columns.len()) {
        if blue.columns.iter().any(|c| c.name == g.name) {
            continue; // Reported above as moved.
        }
        if g.nullable || g.default.is_some() || g.generated {
            at.push(
                Some(&g.name),
                "added at the end on green",
                Compatible,
                "replication fills it with its default",
            );
        } else {
            at.push(
                Some(&g.name),
                "added at the end on green, NOT NULL without a default",
                Incompatible,
                "the application's inserts that leave it out fail on green after the switchover",
            );
        }
    }
}

/// One column present on both sides at the same position.
fn column(at: &mut At, b: &Column, g: &Column, conversions: &Conversions) {
    let name = Some(b.name.as_str());
    let change = |what: &str, from: &dyn std::fmt::Debug, to: &dyn std::fmt::Debug| {
        format!("{what} {from:?} → {to:?}")
    };
    match compare(&b.column_type, &g.column_type) {
        TypeChange::Same => {}
        TypeChange::Wider if conversions.non_lossy => at.push(
            name,
            change("type", &b.column_type, &g.column_type),
            Compatible,
            format!("wider: replication converts it ({} includes ALL_NON_LOSSY)", conversions.variable),
        ),
        TypeChange::Wider => at.push(
            name,
            change("type", &b.column_type, &g.column_type),
            Incompatible,
            format!(
                "wider, but replication converts it only with ALL_NON_LOSSY in {} on green (now {:?}): SET GLOBAL {} = 'ALL_NON_LOSSY'",
                conversions.variable, conversions.value, conversions.variable
            ),
        ),
        TypeChange::Lossy => at.push(
            name,
            change("type", &b.column_type, &g.column_type),
            Incompatible,
            "narrower or another kind: replicated values are cut or refused",
        ),
    }
    let generated = if g.generated {
        "generated on green only"
    } else {
        "generated on blue only"
    };
    // (differs, what changed, verdict, why), in the order they are reported.
    let attributes = [
        (
            b.nullable && !g.nullable,
            "NULL → NOT NULL".to_owned(),
            Incompatible,
            "replicated NULLs are refused",
        ),
        (
            !b.nullable && g.nullable,
            "NOT NULL → NULL".to_owned(),
            Compatible,
            "every value from blue fits",
        ),
        (
            b.charset != g.charset,
            change("charset", &b.charset, &g.charset),
            Incompatible,
            "replication does not convert between character sets",
        ),
        (
            b.charset == g.charset && b.collation != g.collation,
            change("collation", &b.collation, &g.collation),
            Compatible,
            "the same bytes, ordered differently",
        ),
        (
            b.generated != g.generated,
            generated.to_owned(),
            Incompatible,
            "replicated rows and computed values disagree",
        ),
        (
            b.default != g.default,
            change("default", &b.default, &g.default),
            Compatible,
            "replicated rows carry their values",
        ),
        (
            b.comment != g.comment,
            "comment changed".to_owned(),
            Compatible,
            "comments do not touch rows",
        ),
    ];
    for (differs, what, verdict, why) in attributes {
        if differs {
            at.push(name, what, verdict, why);
        }
    }
}

/// Primary keys must match; other indexes may come and go.
fn indexes(at: &mut At, blue: &Table, green: &Table) {
    let (bp, gp) = (blue.indexes.get(PRIMARY), green.indexes.get(PRIMARY));
    if bp != gp {
        let cols =
            |i: Option<&super::schema::Index>| i.map_or("none".to_owned(), |i| i.columns.join(","));
        at.push(
            None,
            format!("primary key ({}) → ({})", cols(bp), cols(gp)),
            Incompatible,
            "replication finds rows to update and delete by it",
        );
    }
    for (name, b) in blue.indexes.iter().filter(|(n, _)| *n != PRIMARY) {
        match green.indexes.get(name) {
            None => at.push(
                None,
                format!("index {name} dropped on green"),
                Compatible,
                "indexes do not change rows",
            ),
            Some(g) if g != b => at.push(
                None,
                format!("index {name} changed on green"),
                Compatible,
                "indexes do not change rows",
            ),
            Some(_) => {}
        }
    }
    for (name, g) in green.indexes.iter().filter(|(n, _)| *n != PRIMARY) {
        if !blue.indexes.contains_key(name) {
            let why = if g.unique {
                "indexes do not change rows (a unique one refuses duplicates blue may write)"
            } else {
                "indexes do not change rows"
            };
            at.push(
                None,
                format!("index {name} added on green"),
                Compatible,
                why,
            );
        }
    }
}

#[cfg(test)]
#[path = "schema_diff_tests.rs"]
mod tests;
