//! The bytes the benchmark runs on: server answers captured once from a real MariaDB
//! (kept gzipped in `benches/data/`), and the SQL texts the statement scan reads.
//!
//! A capture file is a gzipped list of records: name (u8 length + bytes), the backend
//! connection's capabilities and MariaDB capabilities (u32 LE each), then the answer's
//! wire bytes exactly as the server sent them (u32 LE length + bytes).

use std::io::{Read, Write};
use std::path::PathBuf;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// Where the capture lives in the source tree.
pub fn capture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/data/mariadb-answers.bin.gz")
}

/// One server answer as the relay reads it from the backend connection.
pub struct Answer {
    pub name: String,
    pub caps: u32,
    pub mariadb_caps: u32,
    pub wire: Vec<u8>,
}

pub fn write(answers: &[Answer]) -> Result<(), String> {
    let mut raw = Vec::new();
    for a in answers {
        raw.push(a.name.len() as u8);
        raw.extend_from_slice(a.name.as_bytes());
        raw.extend_from_slice(&a.caps.to_le_bytes());
        raw.extend_from_slice(&a.mariadb_caps.to_le_bytes());
        raw.extend_from_slice(&(a.wire.len() as u32).to_le_bytes());
        raw.extend_from_slice(&a.wire);
    }
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
    let path = capture_path();
    let packed = gz
        .write_all(&raw)
        .and_then(|()| gz.finish())
        .map_err(|e| format!("compressing the capture: {e}"))?;
    std::fs::write(&path, packed).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn read() -> Result<Vec<Answer>, String> {
    let path = capture_path();
    let packed = std::fs::read(&path)
        .map_err(|e| format!("{}: {e} (make it with HOT_PATH_CAPTURE=1)", path.display()))?;
    let mut raw = Vec::new();
    GzDecoder::new(&packed[..])
        .read_to_end(&mut raw)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rest = &raw[..];
    let mut answers = Vec::new();
    while !rest.is_empty() {
        let answer = record(&mut rest).ok_or_else(|| format!("{}: truncated", path.display()))?;
        answers.push(answer);
    }
    Ok(answers)
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
    *rest = tail;
    Some(head)
}

fn u32_le(rest: &mut &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(take(rest, 4)?.try_into().ok()?))
}

fn record(rest: &mut &[u8]) -> Option<Answer> {
    let name_len = *take(rest, 1)?.first()? as usize;
    let name = String::from_utf8(take(rest, name_len)?.to_vec()).ok()?;
    let caps = u32_le(rest)?;
    let mariadb_caps = u32_le(rest)?;
    let len = u32_le(rest)? as usize;
    let wire = take(rest, len)?.to_vec();
    Some(Answer {
        name,
        caps,
        mariadb_caps,
        wire,
    })
}

/// sysbench's table: `id`, `k`, and two strings of 11-digit groups.
pub const CREATE_TABLE: &str = "CREATE TABLE sbtest1 (id INT NOT NULL AUTO_INCREMENT, \
k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', \
PRIMARY KEY (id), KEY k_1 (k)) ENGINE=InnoDB";

/// A deterministic stand-in for sysbench's random values.
pub struct Values(u64);

impl Values {
    pub fn new() -> Values {
        Values(0x9E37_79B9_7F4A_7C15)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: enough spread for digits that look random.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `groups` groups of 11 digits joined by '-', like sysbench's `c` and `pad`.
    fn digits(&mut self, groups: usize) -> String {
        let mut s = String::with_capacity(groups * 12);
        for g in 0..groups {
            if g > 0 {
                s.push('-');
            }
            s.push_str(&format!("{:011}", self.next() % 100_000_000_000));
        }
        s
    }

    /// One `(id, k, 'c', 'pad')` tuple of an INSERT.
    pub fn row(&mut self, id: u32) -> String {
        let k = self.next() % 1_000_000;
        let c = self.digits(10);
        let pad = self.digits(5);
        format!("({id}, {k}, '{c}', '{pad}')")
    }
}

/// An INSERT of sysbench rows from id `first`, adding rows until `enough(length, rows)`.
pub fn insert(values: &mut Values, first: u32, enough: impl Fn(usize, u32) -> bool) -> String {
    let mut sql = String::from("INSERT INTO sbtest1 (id, k, c, pad) VALUES ");
    let mut rows = 0;
    while !enough(sql.len(), rows) {
        if rows > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&values.row(first + rows));
        rows += 1;
    }
    sql
}

/// The statements the scan benchmarks read: name and text.
pub fn statements() -> Vec<(&'static str, String)> {
    let commented = "/* app:checkout, request 5f2c-77 */ UPDATE orders SET note = 'customer said: \
\"leave it at the door; -- thanks\"', status = 'shipped', updated_at = NOW() \
-- the courier's note may hold quotes\nWHERE id = 42 AND shop_id IN (7, 9) \
/* LOCK TABLES, GET_LOCK and @vars inside comments or strings change nothing */ \
AND tag <> 'GET_LOCK(@x)'";
    vec![
        (
            "point_select",
            "SELECT c FROM sbtest1 WHERE id=4711".to_owned(),
        ),
        (
            "insert_10k",
            insert(&mut Values::new(), 1, |len, _| len >= 10 * 1024),
        ),
        ("comments_strings", commented.to_owned()),
    ]
}
