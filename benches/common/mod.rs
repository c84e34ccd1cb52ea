//! What the benchmarks under `benches/` share: a bed of real servers with the proxy (and
//! HAProxy) in front, the accounting of a process's CPU, context switches and memory,
//! small statistics, a description of the machine, and the report (markdown + SVG)
//! every benchmark writes under `target/bench/`.
//!
//! Each benchmark is a `harness = false` target (`cargo bench --bench NAME`), built
//! with the release profile; it includes this module with `mod common;` and uses what
//! it needs.
#![allow(dead_code)]

pub mod bed;
pub mod machine;
pub mod proc_stats;
pub mod report;
pub mod stats;
pub mod svg;

/// A tool the benchmark runs must be on PATH; otherwise a clear error naming how to
/// install it (never a silent skip).
pub fn require_tool(tool: &str, package: &str) -> Result<(), String> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(format!(
            "`{tool}` is not installed: `apt-get install {package}` (or run scripts/install-deps.sh as root)"
        ))
    }
}

/// Print the error and exit 1: what a benchmark's `main` does when it cannot go on.
pub fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
