//! The writers' acknowledged ids against a server's table: lost (acknowledged, not
//! there), duplicated (there more than once) and unacknowledged extras (there, but the
//! writer got an error — allowed, counted for the record).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

#[derive(Default)]
pub struct Audit {
    pub rows: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub unacked_extra: usize,
}

impl Audit {
    pub fn text(&self) -> String {
        format!(
            "{} rows, {} lost, {} duplicated, {} unacknowledged extra",
            self.rows, self.lost, self.duplicated, self.unacked_extra
        )
    }
}

async fn connect(addr: &str) -> Result<Conn, String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("bad address {addr}"))?;
    let port: u16 = port.parse().map_err(|_| format!("bad address {addr}"))?;
    let opts = OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port)
        .user(Some(switchyard::testbed::APP_USER))
        .pass(Some(switchyard::testbed::APP_PASSWORD))
        .db_name(Some("app"))
        .prefer_socket(false);
    Conn::new(opts).await.map_err(|e| format!("{addr}: {e}"))
}

/// Every id in `pause_writes` on the server at `addr` with its count.
async fn ids(addr: &str) -> Result<HashMap<u64, usize>, String> {
    let mut c = connect(addr).await?;
    let rows: Vec<(u64, u64)> = c
        .query("SELECT id, COUNT(*) FROM pause_writes GROUP BY id")
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let _ = c.disconnect().await;
    Ok(rows.into_iter().map(|(id, n)| (id, n as usize)).collect())
}

/// Audits `acked` against the server at `addr`.
pub async fn audit(addr: &str, acked: &HashSet<u64>) -> Result<Audit, String> {
    let table = ids(addr).await?;
    Ok(Audit {
        rows: table.values().sum(),
        lost: acked.iter().filter(|id| !table.contains_key(id)).count(),
        duplicated: table.values().filter(|&&n| n > 1).count(),
        unacked_extra: table.keys().filter(|id| !acked.contains(id)).count(),
    })
}

/// Waits (up to `limit`) until the replica at `addr` has as many rows as `rows`.
pub async fn caught_up(addr: &str, rows: usize, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let mut c = connect(addr).await?;
        let n: Option<u64> = c
            .query_first("SELECT COUNT(*) FROM pause_writes")
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let _ = c.disconnect().await;
        if n.unwrap_or(0) as usize >= rows {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{addr} has {} of {rows} rows after {limit:?}",
                n.unwrap_or(0)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
