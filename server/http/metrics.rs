//! `/metrics` in the Prometheus text format, hand-rolled on atomics. Each endpoint's counters
//! live in a slot found once, when the route table is built, and kept by flow name and method
//! across reloads, so a request only increments atomics.

use crate::catalog::request_log::LogStats;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Distinct error codes counted per endpoint; further codes are counted as `other`.
const MAX_CODES: usize = 64;

/// Counters of one endpoint.
#[derive(Debug)]
pub struct EndpointMetrics {
    flow: String,
    method: &'static str,
    /// Responses by status class, 1xx to 5xx.
    classes: [AtomicU64; 5],
    /// Requests per latency bucket (not cumulative; the last slot is past every bound).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
    rate_limited: AtomicU64,
    errors: Mutex<Vec<(String, u64)>>,
}

impl EndpointMetrics {
    fn new(flow: &str, method: &'static str) -> EndpointMetrics {
        EndpointMetrics {
            flow: flow.to_string(),
            method,
            classes: Default::default(),
            buckets: Default::default(),
            sum_us: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
        }
    }

    pub fn flow(&self) -> &str {
        &self.flow
    }

    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Counts one answered request.
    pub fn observe(&self, status: u16, took: Duration, code: Option<&str>) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        if let Some(code) = code {
            let mut errors = self
                .errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(e) = errors.iter_mut().find(|(c, _)| c == code) {
                e.1 += 1;
            } else if errors.len() < MAX_CODES {
                errors.push((code.to_string(), 1));
            } else if let Some(e) = errors.iter_mut().find(|(c, _)| c == "other") {
                e.1 += 1;
            } else {
                errors.push(("other".into(), 1));
            }
        }
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every counter of this instance.
#[derive(Default)]
pub struct Metrics {
    endpoints: Mutex<BTreeMap<(String, &'static str), Arc<EndpointMetrics>>>,
    /// Requests to `/api/...` that matched no endpoint, by status class.
    unmatched: [AtomicU64; 5],
    /// Requests refused because too many were in flight.
    pub busy: AtomicU64,
    /// What this instance's scheduler fired and skipped (`crate::events::scheduler`).
    pub schedules: Arc<crate::events::scheduler::ScheduleStats>,
}

/// Connection pool figures at the time of a scrape.
pub struct PoolUse {
    pub size: u32,
    pub idle: usize,
    pub max: u32,
}

impl Metrics {
    /// The slot of an endpoint; the same one for the same flow and method after a reload.
    pub fn endpoint(&self, flow: &str, method: &'static str) -> Arc<EndpointMetrics> {
        let mut map = self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry((flow.to_string(), method))
            .or_insert_with(|| Arc::new(EndpointMetrics::new(flow, method)))
            .clone()
    }

    pub fn unmatched(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.unmatched[class].fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition format, version 0.0.4.
    pub fn render(
        &self,
        pool: &PoolUse,
        log: &LogStats,
        in_flight: Option<(usize, usize)>,
    ) -> String {
        let endpoints: Vec<Arc<EndpointMetrics>> = self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut out = String::with_capacity(1024 + endpoints.len() * 2048);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let class_name = ["1xx", "2xx", "3xx", "4xx", "5xx"];

        head(
            &mut out,
            "sluice_http_requests_total",
            "counter",
            "Requests answered by generated endpoints, by flow, method and status class.",
        );
        for e in &endpoints {
            for (i, c) in e.classes.iter().enumerate() {
                let n = load(c);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "sluice_http_requests_total{{flow=\"{}\",method=\"{}\",status=\"{}\"}} {n}",
                        esc(&e.flow),
                        e.method,
                        class_name[i]
                    );
                }
            }
        }

        head(
            &mut out,
            "sluice_http_request_duration_seconds",
            "histogram",
            "Time from routing to response of generated endpoints.",
        );
        for e in &endpoints {
            let flow = esc(&e.flow);
            let mut cumulative = 0;
            for (i, b) in e.buckets.iter().enumerate() {
                cumulative += load(b);
                let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "sluice_http_request_duration_seconds_bucket{{flow=\"{flow}\",method=\"{}\",le=\"{le}\"}} {cumulative}",
                    e.method
                );
            }
            let _ = writeln!(
                out,
                "sluice_http_request_duration_seconds_sum{{flow=\"{flow}\",method=\"{}\"}} {}",
                e.method,
                load(&e.sum_us) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "sluice_http_request_duration_seconds_count{{flow=\"{flow}\",method=\"{}\"}} {cumulative}",
                e.method
            );
        }

        head(
            &mut out,
            "sluice_http_errors_total",
            "counter",
            "Error answers (status 400 and up) of generated endpoints, by error code.",
        );
        for e in &endpoints {
            let errors = e
                .errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            for (code, n) in errors {
                let _ = writeln!(
                    out,
                    "sluice_http_errors_total{{flow=\"{}\",method=\"{}\",code=\"{}\"}} {n}",
                    esc(&e.flow),
                    e.method,
                    esc(&code)
                );
            }
        }

        head(
            &mut out,
            "sluice_rate_limit_rejections_total",
            "counter",
            "Requests refused with 429 by a rate limit.",
        );
        for e in &endpoints {
            let n = load(&e.rate_limited);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "sluice_rate_limit_rejections_total{{flow=\"{}\",method=\"{}\"}} {n}",
                    esc(&e.flow),
                    e.method
                );
            }
        }

        head(
            &mut out,
            "sluice_http_unmatched_requests_total",
            "counter",
            "Requests under /api that matched no endpoint (404, 405), by status class.",
        );
        for (i, c) in self.unmatched.iter().enumerate() {
            let n = load(c);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "sluice_http_unmatched_requests_total{{status=\"{}\"}} {n}",
                    class_name[i]
                );
            }
        }

        head(
            &mut out,
            "sluice_http_busy_rejections_total",
            "counter",
            "Requests refused with 503 because too many were in flight.",
        );
        let _ = writeln!(
            out,
            "sluice_http_busy_rejections_total {}",
            load(&self.busy)
        );
        if let Some((used, max)) = in_flight {
            head(
                &mut out,
                "sluice_http_in_flight",
                "gauge",
                "Generated-endpoint requests being served now.",
            );
            let _ = writeln!(out, "sluice_http_in_flight {used}");
            head(
                &mut out,
                "sluice_http_in_flight_max",
                "gauge",
                "Most generated-endpoint requests served at once.",
            );
            let _ = writeln!(out, "sluice_http_in_flight_max {max}");
        }

        head(
            &mut out,
            "sluice_db_pool_connections",
            "gauge",
            "Open database connections of this instance, by state.",
        );
        let idle = pool.idle.min(pool.size as usize);
        let _ = writeln!(out, "sluice_db_pool_connections{{state=\"idle\"}} {idle}");
        let _ = writeln!(
            out,
            "sluice_db_pool_connections{{state=\"in_use\"}} {}",
            pool.size as usize - idle
        );
        head(
            &mut out,
            "sluice_db_pool_size",
            "gauge",
            "Open database connections of this instance.",
        );
        let _ = writeln!(out, "sluice_db_pool_size {}", pool.size);
        head(
            &mut out,
            "sluice_db_pool_max_connections",
            "gauge",
            "Most database connections this instance opens.",
        );
        let _ = writeln!(out, "sluice_db_pool_max_connections {}", pool.max);

        head(
            &mut out,
            "sluice_request_log_written_total",
            "counter",
            "Request log rows written.",
        );
        let _ = writeln!(
            out,
            "sluice_request_log_written_total {}",
            load(&log.written)
        );
        head(
            &mut out,
            "sluice_request_log_dropped_total",
            "counter",
            "Request log entries dropped because the write queue was full.",
        );
        let _ = writeln!(
            out,
            "sluice_request_log_dropped_total {}",
            load(&log.dropped)
        );
        head(
            &mut out,
            "sluice_request_log_failed_total",
            "counter",
            "Request log entries lost to a failed database write.",
        );
        let _ = writeln!(out, "sluice_request_log_failed_total {}", load(&log.failed));
        self.render_schedules(&mut out);
        out
    }

    /// Per scheduled flow: occurrences enqueued and skipped by this instance, and the lateness
    /// of the last one it enqueued.
    fn render_schedules(&self, out: &mut String) {
        let flows = self.schedules.snapshot();
        type Family = (
            &'static str,
            &'static str,
            &'static str,
            fn(&crate::events::scheduler::FlowStats) -> f64,
        );
        let metrics: [Family; 3] = [
            (
                "sluice_schedule_fired_total",
                "counter",
                "Schedule occurrences this instance enqueued as jobs, by flow.",
                |f| f.fired as f64,
            ),
            (
                "sluice_schedule_skipped_total",
                "counter",
                "Schedule occurrences this instance recorded as skipped (missed, too late, overlap), by flow.",
                |f| f.skipped as f64,
            ),
            (
                "sluice_schedule_lateness_seconds",
                "gauge",
                "Seconds between the last occurrence this instance enqueued and its enqueue, by flow.",
                |f| f.lateness_s,
            ),
        ];
        for (name, kind, help, value) in metrics {
            head(out, name, kind, help);
            for (flow, f) in &flows {
                let _ = writeln!(out, "{name}{{flow=\"{}\"}} {}", esc(flow), value(f));
            }
        }
    }
}

/// The job queue's gauges, read from the tables when scraped (`crate::queue::admin::stats`).
pub fn render_jobs(out: &mut String, s: &crate::queue::admin::Stats) {
    head(
        out,
        "sluice_jobs",
        "gauge",
        "Jobs in the queue, by state (finished jobs until they are pruned).",
    );
    for (state, n) in &s.states {
        let _ = writeln!(out, "sluice_jobs{{state=\"{state}\"}} {n}");
    }
    head(
        out,
        "sluice_jobs_oldest_available_seconds",
        "gauge",
        "How long the oldest job ready to run has waited (0 when none waits).",
    );
    let _ = writeln!(
        out,
        "sluice_jobs_oldest_available_seconds {}",
        s.oldest_available_secs
    );
    head(
        out,
        "sluice_job_attempts",
        "gauge",
        "Attempts of the jobs kept, by flow.",
    );
    for (flow, attempts, _) in &s.flows {
        let _ = writeln!(
            out,
            "sluice_job_attempts{{flow=\"{}\"}} {attempts}",
            esc(flow)
        );
    }
    head(
        out,
        "sluice_job_failed_attempts",
        "gauge",
        "Attempts of the jobs kept that failed, timed out or were rescued, by flow.",
    );
    for (flow, _, failed) in &s.flows {
        let _ = writeln!(
            out,
            "sluice_job_failed_attempts{{flow=\"{}\"}} {failed}",
            esc(flow)
        );
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value: backslash, double quote and newline.
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\\', '"', '\n']) {
        return s.into();
    }
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_survives_a_reload_and_counts_into_the_right_bucket() {
        let m = Metrics::default();
        let a = m.endpoint("list", "GET");
        a.observe(200, Duration::from_millis(3), None);
        a.observe(404, Duration::from_millis(30), Some("todo.missing"));
        assert!(Arc::ptr_eq(&a, &m.endpoint("list", "GET")));
        let text = m.render(
            &PoolUse {
                size: 3,
                idle: 1,
                max: 8,
            },
            &LogStats::default(),
            Some((0, 10)),
        );
        for line in [
            "sluice_http_requests_total{flow=\"list\",method=\"GET\",status=\"2xx\"} 1",
            "sluice_http_requests_total{flow=\"list\",method=\"GET\",status=\"4xx\"} 1",
            "sluice_http_request_duration_seconds_bucket{flow=\"list\",method=\"GET\",le=\"0.0025\"} 0",
            "sluice_http_request_duration_seconds_bucket{flow=\"list\",method=\"GET\",le=\"0.005\"} 1",
            "sluice_http_request_duration_seconds_bucket{flow=\"list\",method=\"GET\",le=\"0.05\"} 2",
            "sluice_http_request_duration_seconds_bucket{flow=\"list\",method=\"GET\",le=\"+Inf\"} 2",
            "sluice_http_request_duration_seconds_count{flow=\"list\",method=\"GET\"} 2",
            "sluice_http_errors_total{flow=\"list\",method=\"GET\",code=\"todo.missing\"} 1",
            "sluice_db_pool_connections{state=\"in_use\"} 2",
            "sluice_db_pool_max_connections 8",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
