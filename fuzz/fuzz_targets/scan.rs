//! The statement scan on arbitrary bytes, and on the same input made valid UTF-8 (what
//! most clients send): no entry point panics, and the byte range `kill_target`
//! reports lies inside the statement and holds the number it returns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::proxy::scan::{handler, kill_target, scan, sql_prepare, table_names};

fn check(sql: &[u8]) {
    let effects = scan(sql);
    let _ = effects.acquisitions();
    let _ = sql_prepare(sql);
    let _ = handler(sql);
    if let Some(names) = table_names(sql) {
        assert!(!names.is_empty());
    }
    if let Some((start, end, id)) = kill_target(sql) {
        let digits = sql
            .get(start..end)
            .expect("KILL target range inside the text");
        assert_eq!(
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok()),
            Some(id)
        );
        assert!(effects.kill);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if std::str::from_utf8(data).is_err() {
        check(String::from_utf8_lossy(data).as_bytes());
    }
});
