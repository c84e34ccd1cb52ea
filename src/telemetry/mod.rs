//! Telemetry: the metrics every layer records into, the readiness the health
//! endpoints report, and the traces of switchovers. It names no other module of the
//! crate, so any layer may record into it (`tests/layers.rs`: layer 0).
//!
//! [`names`] is the catalogue: each metric's name, type, labels and help text, said
//! once. The README's metrics table, the Grafana dashboard and the alert rules use
//! these names; a test checks them against a live scrape.

pub mod endpoint;
pub mod hot;
pub mod names;
pub mod recorder;
pub mod trace;

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

/// Why the proxy is not ready (`/readyz` answers 503 with it), or `None` when it is.
static NOT_READY: OnceLock<ArcSwap<Option<String>>> = OnceLock::new();

fn not_ready() -> &'static ArcSwap<Option<String>> {
    NOT_READY.get_or_init(|| {
        ArcSwap::from_pointee(Some(
            "starting: the active side has not been checked yet".into(),
        ))
    })
}

/// Records whether the proxy is ready to serve: `Err(reason)` when it is not.
pub fn set_readiness(ready: Result<(), String>) {
    not_ready().store(Arc::new(ready.err()));
}

/// `Ok` when ready, else the one-line reason.
pub fn readiness() -> Result<(), String> {
    match not_ready().load().as_ref() {
        None => Ok(()),
        Some(why) => Err(why.clone()),
    }
}

/// A function run before each scrape to set gauges from live state; it returns false
/// once what it reads is gone (a stopped proxy), and is then dropped.
type ScrapeHook = Box<dyn Fn() -> bool + Send + Sync>;

static SCRAPE_HOOKS: std::sync::Mutex<Vec<ScrapeHook>> = std::sync::Mutex::new(Vec::new());

/// Runs `hook` before every scrape, until it returns false.
pub fn on_scrape(hook: impl Fn() -> bool + Send + Sync + 'static) {
    hooks().push(Box::new(hook));
}

/// Runs the scrape hooks, dropping those whose state is gone.
pub fn run_scrape_hooks() {
    hooks().retain(|hook| hook());
}

fn hooks() -> std::sync::MutexGuard<'static, Vec<ScrapeHook>> {
    SCRAPE_HOOKS.lock().unwrap_or_else(|e| e.into_inner())
}
