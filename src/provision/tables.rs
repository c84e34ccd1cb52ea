//! The tables to verify, read from blue's `information_schema`: every base table of the
//! user schemas, its columns in order and its primary key.

use std::collections::BTreeMap;

use crate::control::{Control, ControlError};

use super::chunks::{Column, Table};
use super::position::text;

/// Schemas that belong to the server, never verified.
const SYSTEM_SCHEMAS: &str = "'mysql', 'sys', 'information_schema', 'performance_schema'";

/// A table being read, with its key columns and their positions in the key.
type Pending = (Table, Vec<(u64, Column)>);

/// Every base table of blue's user schemas (or only `only`, `schema.table` names),
/// sorted by name. Tables without a primary key come back with an empty `key`.
pub async fn list(blue: &mut Control, only: &[String]) -> Result<Vec<Table>, ControlError> {
    let sql = format!(
        "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, LOWER(c.DATA_TYPE), \
                IFNULL(s.SEQ_IN_INDEX, 0) \
         FROM information_schema.COLUMNS c \
         JOIN information_schema.TABLES t \
           ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
         LEFT JOIN information_schema.STATISTICS s \
           ON s.TABLE_SCHEMA = c.TABLE_SCHEMA AND s.TABLE_NAME = c.TABLE_NAME \
          AND s.COLUMN_NAME = c.COLUMN_NAME AND s.INDEX_NAME = 'PRIMARY' \
         WHERE t.TABLE_TYPE = 'BASE TABLE' AND c.TABLE_SCHEMA NOT IN ({SYSTEM_SCHEMAS}) \
         ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
    );
    let rows = blue.query_rows("list tables", &sql).await?;
    let mut tables: BTreeMap<(String, String), Pending> = BTreeMap::new();
    for row in &rows {
        let (Some(schema), Some(name), Some(column), Some(data_type)) =
            (text(row, 0), text(row, 1), text(row, 2), text(row, 3))
        else {
            continue;
        };
        let seq: u64 = text(row, 4).and_then(|s| s.parse().ok()).unwrap_or(0);
        let entry = tables
            .entry((schema.clone(), name.clone()))
            .or_insert_with(|| {
                (
                    Table {
                        schema,
                        name,
                        columns: Vec::new(),
                        key: Vec::new(),
                    },
                    Vec::new(),
                )
            });
        let column = Column {
            name: column,
            data_type,
        };
        if seq > 0 {
            entry.1.push((seq, column.clone()));
        }
        entry.0.columns.push(column);
    }
    Ok(tables
        .into_values()
        .map(|(mut table, mut key)| {
            key.sort_by_key(|(seq, _)| *seq);
            table.key = key.into_iter().map(|(_, c)| c).collect();
            table
        })
        .filter(|t| only.is_empty() || only.contains(&t.display_name()))
        .collect())
}
