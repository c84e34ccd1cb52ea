//! What a finished switchover leaves behind, made from its [`Report`] alone (the one
//! source): its metrics, its history entry, and its trace (logged, and exported by
//! OTLP when configured). Also the switchover series every scrape shows from startup:
//! each result, phase and side at 0, the phase gauge, and the active side.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{counter, gauge, histogram};

use crate::switchover::history::{phase_durations, Entry};
use crate::switchover::orchestrator::{Report, SwitchResult};
use crate::switchover::phase::{Phase, ALL_PHASES};
use crate::switchover::Switchover;
use crate::telemetry::names;
use crate::telemetry::trace::{self, Export, SpanRecord, TraceRecord, Value};
use crate::topology::{Side, Topology};

/// Records `report`: metrics now, the history entry (durable when this returns), and
/// the trace, exported in the background.
pub async fn record(shared: &Switchover, report: &Report) {
    record_metrics(report);
    shared.history.push(Entry::from_report(report)).await;
    let telemetry = shared.topology.config.load().telemetry.clone();
    let export = Export {
        endpoint: telemetry.otlp_endpoint,
        service_name: telemetry.service_name,
    };
    drop(trace::emit(export, trace_of(report)));
}

fn record_metrics(report: &Report) {
    counter!(names::SWITCHOVERS, "result" => report.result.name()).increment(1);
    for (phase, ms) in phase_durations(report) {
        histogram!(names::SWITCHOVER_PHASE_DURATION, "phase" => phase.name()).record(ms / 1000.0);
    }
    gauge!(names::SWITCHOVER_LAST_PAUSE).set(report.pause_ms / 1000.0);
    let ended = report.started_unix_ms as f64 / 1000.0 + report.total_ms / 1000.0;
    gauge!(names::SWITCHOVER_LAST_TIMESTAMP).set(ended);
}

/// Sets the phase gauge: 1 for `now`, 0 for every other phase.
pub fn phase_gauge(now: Phase) {
    for phase in ALL_PHASES {
        gauge!(names::SWITCHOVER_PHASE, "phase" => phase.name()).set(if phase == now {
            1.0
        } else {
            0.0
        });
    }
}

/// Every switchover series at its starting value, and a scrape hook that reports the
/// active side for as long as `topology` lives.
pub fn register(topology: &Arc<Topology>) {
    for result in SwitchResult::ALL {
        counter!(names::SWITCHOVERS, "result" => result.name()).increment(0);
    }
    for phase in ALL_PHASES {
        // Registers the histogram's series without a sample.
        drop(histogram!(names::SWITCHOVER_PHASE_DURATION, "phase" => phase.name()));
    }
    phase_gauge(Phase::Idle);
    let weak: Weak<Topology> = Arc::downgrade(topology);
    let hook = move || match weak.upgrade() {
        Some(topology) => {
            let active = topology.target.load().side;
            for side in [Side::Blue, Side::Green] {
                gauge!(names::ACTIVE_SIDE, "side" => side.name()).set(if side == active {
                    1.0
                } else {
                    0.0
                });
            }
            true
        }
        None => false,
    };
    hook();
    crate::telemetry::on_scrape(hook);
}

/// The trace of `report`: a root span `switchover` and one span per phase, back to back
/// from its start.
pub fn trace_of(report: &Report) -> TraceRecord {
    let start = UNIX_EPOCH + Duration::from_millis(report.started_unix_ms);
    let at = |ms: f64| start + Duration::from_secs_f64(ms.max(0.0) / 1000.0);
    let mut children = Vec::new();
    let mut offset = 0.0;
    let phases = phase_durations(report);
    let failed_in = failing_phase(report);
    for (phase, ms) in &phases {
        let mut attributes = phase_attributes(report, *phase);
        let error = (Some(*phase) == failed_in).then(|| report.error.clone().unwrap_or_default());
        if let Some(why) = &error {
            attributes.push(("switchover.rollback_reason".into(), Value::Str(why.clone())));
        }
        children.push(SpanRecord {
            name: phase.name().to_string(),
            start: at(offset),
            end: at(offset + ms),
            attributes,
            error,
        });
        offset += ms;
    }
    TraceRecord {
        root: SpanRecord {
            name: "switchover".into(),
            start,
            end: at(report.total_ms),
            attributes: root_attributes(report),
            error: (report.result != SwitchResult::Ok)
                .then(|| report.error.clone().unwrap_or_default()),
        },
        children,
    }
}

/// The phase whose failure ended the switchover: the last one before the rollback,
/// or the precheck of a refusal; none when it succeeded.
fn failing_phase(report: &Report) -> Option<Phase> {
    match report.result {
        SwitchResult::Ok => None,
        SwitchResult::Refused => Some(Phase::Precheck),
        SwitchResult::RolledBack => match report.final_phase {
            Phase::RollingBack => report.phases.last().map(|(p, _)| *p),
            other => Some(other),
        },
    }
}

fn root_attributes(report: &Report) -> Vec<(String, Value)> {
    let mut a = vec![
        (
            "switchover.from".into(),
            Value::Str(report.from.name().into()),
        ),
        ("switchover.to".into(), Value::Str(report.to.name().into())),
        (
            "switchover.direction".into(),
            Value::Str(format!("{} → {}", report.from.name(), report.to.name())),
        ),
        (
            "switchover.result".into(),
            Value::Str(report.result.name().into()),
        ),
        ("switchover.pause_ms".into(), Value::Float(report.pause_ms)),
        ("switchover.total_ms".into(), Value::Float(report.total_ms)),
    ];
    a.extend(hold_attributes(report));
    if let Some(gtid) = &report.fence_gtid {
        a.push(("gtid.fence".into(), Value::Str(gtid.clone())));
    }
    if let Some(why) = &report.error {
        a.push(("switchover.rollback_reason".into(), Value::Str(why.clone())));
    }
    a
}

/// What each phase's span carries.
fn phase_attributes(report: &Report, phase: Phase) -> Vec<(String, Value)> {
    let int = |n: usize| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let mut a: Vec<(String, Value)> = Vec::new();
    match phase {
        Phase::Precheck => {
            for check in &report.checks {
                a.push((format!("guardrail.{}", check.name), Value::Bool(check.ok)));
                if !check.ok {
                    a.push((
                        format!("guardrail.{}.reason", check.name),
                        Value::Str(check.reason.clone()),
                    ));
                }
            }
            a.push(("switchover.preopened".into(), int(report.preopened)));
        }
        Phase::Draining => a.push(("switchover.sessions".into(), int(report.sessions))),
        Phase::Fencing => {
            if let Some(gtid) = &report.fence_gtid {
                a.push(("gtid.fence".into(), Value::Str(gtid.clone())));
            }
        }
        Phase::CatchingUp => {
            if let Some(gtid) = &report.fence_gtid {
                a.push(("gtid.fence".into(), Value::Str(gtid.clone())));
            }
            if let Some(gtid) = &report.standby_reached_gtid {
                a.push(("gtid.standby_reached".into(), Value::Str(gtid.clone())));
            }
        }
        Phase::Retargeting => {
            a.push(("switchover.sessions_moved".into(), int(report.sessions)));
            a.push(("switchover.preopened".into(), int(report.preopened)));
        }
        _ => {}
    }
    if matches!(phase, Phase::Retargeting | Phase::RollingBack) {
        a.extend(hold_attributes(report));
    }
    a
}

/// The gate's statistics: on the root, and on the phase that opened the gate.
fn hold_attributes(report: &Report) -> [(String, Value); 2] {
    [
        (
            "switchover.held_commands".into(),
            Value::Int(i64::try_from(report.held_commands).unwrap_or(i64::MAX)),
        ),
        (
            "switchover.max_hold_ms".into(),
            Value::Float(report.max_hold_ms),
        ),
    ]
}

/// Unix time now, in seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switchover::guardrails::Check;
    use Phase::*;

    fn report(result: SwitchResult, phases: &[(Phase, f64)], last: Phase) -> Report {
        Report {
            from: Side::Blue,
            to: Side::Green,
            ok: result == SwitchResult::Ok,
            result,
            started_unix_ms: 1_000_000,
            checks: vec![Check {
                name: "reachable",
                ok: true,
                reason: String::new(),
            }],
            error: (result != SwitchResult::Ok).then(|| "green did not reach 0-1-9".into()),
            phases: phases.to_vec(),
            final_phase: last,
            fence_gtid: Some("0-1-9".into()),
            standby_reached_gtid: None,
            pause_ms: 5.0,
            max_hold_ms: 4.0,
            held_commands: 3,
            sessions: 2,
            preopened: 2,
            preopen_ms: 3.0,
            total_ms: 100.0,
            reverse_replication_ms: 0.0,
            reverse_replication_error: None,
        }
    }

    fn ms(t: SystemTime) -> f64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0 - 1_000_000.0
    }

    #[test]
    fn phases_are_back_to_back_and_the_last_lasts_until_the_end() {
        let r = report(
            SwitchResult::Ok,
            &[(Precheck, 10.0), (Draining, 5.0), (Fencing, 5.0)],
            Done,
        );
        let t = trace_of(&r);
        let spans: Vec<(&str, f64, f64)> = t
            .children
            .iter()
            .map(|s| (s.name.as_str(), ms(s.start), ms(s.end)))
            .collect();
        let rounded: Vec<(&str, i64, i64)> = spans
            .iter()
            .map(|(n, a, b)| (*n, a.round() as i64, b.round() as i64))
            .collect();
        assert_eq!(
            rounded,
            [
                ("precheck", 0, 10),
                ("draining", 10, 15),
                ("fencing", 15, 20),
                ("done", 20, 100)
            ]
        );
        assert_eq!(ms(t.root.end).round() as i64, 100);
        assert!(t.root.error.is_none() && t.children.iter().all(|s| s.error.is_none()));
        assert!(t.children[0]
            .attributes
            .contains(&("guardrail.reachable".into(), Value::Bool(true))));
    }

    #[test]
    fn the_failing_phase_carries_the_reason() {
        let r = report(
            SwitchResult::RolledBack,
            &[
                (Precheck, 1.0),
                (Draining, 1.0),
                (Fencing, 1.0),
                (CatchingUp, 1.0),
            ],
            RollingBack,
        );
        let t = trace_of(&r);
        let failed: Vec<&str> = t
            .children
            .iter()
            .filter(|s| s.error.is_some())
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(failed, ["catching_up"]);
        assert_eq!(
            t.children.last().map(|s| s.name.as_str()),
            Some("rolling_back")
        );
        assert!(t
            .root
            .error
            .as_deref()
            .is_some_and(|e| e.contains("did not reach")));
        let refused = trace_of(&report(SwitchResult::Refused, &[], Precheck));
        assert_eq!(refused.children.len(), 1);
        assert!(refused.children[0].error.is_some());
    }
}
