//! Schedule math, PURE: when a `schedule` trigger fires, and what to do at an instant `now`
//! with the occurrences that are due (docs/FLOW-FORMAT.md, "Triggers: schedules"). No clock and
//! no IO here: `now` is an argument, so every rule is tested with frozen instants.
//!
//! Occurrences are wall-clock times: croner matches the expression against the local time of
//! the schedule's zone (read as if it had no DST), and each matching local time becomes ONE
//! instant:
//! - a local time that happens twice (fall back) runs at its first instant, never twice;
//! - a local time that does not exist (spring forward) runs once at the first instant after the
//!   gap (02:30 in Europe/Paris on the last Sunday of March runs at 03:00 CEST); several
//!   missing local times (`*/15` at 02:00, 02:15, ...) all land on that instant and run once.
//!
//! Croner has its own DST rules, which differ between "fixed-time" and "interval" expressions
//! (an interval expression skips the gap and may run both passes of a repeated hour); reading
//! the local time here makes one rule for every expression.

use crate::flow::trigger::{CatchUp, Schedule};
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// An occurrence at most this old when it is found is on time: it runs whatever `catch_up`
/// says. Older ones were missed (no instance ran at their time) and follow `catch_up`.
pub const ON_TIME_MS: i64 = 10_000;

/// At most this many occurrences are looked at in one call to [`due`]: a long downtime of a
/// frequent schedule is worked off over several ticks instead of one unbounded one.
pub const SCAN_MAX: usize = 10_000;

/// How far a search for the next matching local time may go (croner searches up to years).
const GAP_SEARCH_MAX_S: i64 = 86_400;

/// Why an occurrence did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// No instance ran at its time, and `catch_up` does not run it.
    Missed,
    /// Found more than `max_lateness_ms` after its time.
    TooLate,
    /// A run of the flow was not finished (`overlap: skip`).
    Overlap,
}

impl SkipReason {
    /// As stored in `sluice.schedule_skips.reason` and shown by the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Missed => "missed",
            SkipReason::TooLate => "too_late",
            SkipReason::Overlap => "overlap",
        }
    }
}

/// Consecutive occurrences skipped for one reason (one record, so a long downtime of a
/// frequent schedule is a few rows, not thousands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub count: u64,
    pub reason: SkipReason,
}

/// What to do with the occurrences due at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The occurrences to enqueue, oldest first.
    pub run: Vec<DateTime<Utc>>,
    /// The occurrences not run, oldest first.
    pub skipped: Vec<Skipped>,
    /// The schedule's next fire time after these (`None`: the expression never matches again).
    pub next: Option<DateTime<Utc>>,
}

/// The first occurrence strictly after `after`.
pub fn next_after(cron: &croner::Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Occurrences are whole seconds; croner would carry a fraction of `after` into its answer.
    let mut cursor = after.with_timezone(&tz).naive_local();
    cursor -= Duration::nanoseconds(i64::from(cursor.and_utc().timestamp_subsec_nanos()));
    // A local time of the second pass of a repeated hour maps to its first pass, which is not
    // after `after`: such candidates are passed over (at most an hour of them).
    loop {
        let local = next_local(cron, cursor)?;
        let at = instant(tz, local)?;
        if at > after {
            return Some(at);
        }
        cursor = local;
    }
}

/// The next `count` occurrences after `after`, in the schedule's zone (the editor's preview).
pub fn upcoming(
    cron: &croner::Cron,
    tz: Tz,
    after: DateTime<Utc>,
    count: usize,
) -> Vec<DateTime<Tz>> {
    let mut out = Vec::with_capacity(count);
    let mut at = after;
    while out.len() < count {
        match next_after(cron, tz, at) {
            Some(next) => {
                out.push(next.with_timezone(&tz));
                at = next;
            }
            None => break,
        }
    }
    out
}

/// The next local time after `cursor` that matches, read as a clock without DST.
fn next_local(cron: &croner::Cron, cursor: NaiveDateTime) -> Option<NaiveDateTime> {
    let as_utc = Utc.from_utc_datetime(&cursor);
    cron.find_next_occurrence(&as_utc, false)
        .ok()
        .map(|t| t.naive_utc())
}

/// The instant of local time `local` in `tz`: the first of two, or the end of a gap.
fn instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        chrono::LocalResult::None => {
            // The last local second before the gap, read with the offset in force then; the
            // instant one second later is the first one after the gap.
            let mut before = local;
            for _ in 0..GAP_SEARCH_MAX_S {
                before -= Duration::seconds(1);
                if let Some(t) = tz.from_local_datetime(&before).latest() {
                    return Some(t.with_timezone(&Utc) + Duration::seconds(1));
                }
            }
            None
        }
    }
}

/// What to do at `now` with schedule `s` whose next fire time is `next_fire_at` (an
/// occurrence): `None` while it is not due. Every occurrence from `next_fire_at` to `now` is
/// either run or skipped, none silently:
/// - older than `max_lateness_ms`: skipped, too late, whatever `catch_up` says;
/// - on time (at most [`ON_TIME_MS`] old): run;
/// - missed (older): `skip` skips them all, `latest` runs the most recent one, `all` runs the
///   `catch_up_max` most recent ones; the others are skipped as missed.
///
/// At most [`SCAN_MAX`] occurrences are looked at; the rest are decided at the next call.
pub fn due(s: &Schedule, next_fire_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Due> {
    if next_fire_at > now {
        return None;
    }
    let mut found = vec![next_fire_at];
    let mut after = None;
    while found.len() < SCAN_MAX {
        let last = *found.last()?;
        match next_after(&s.parsed, s.timezone, last) {
            Some(t) if t <= now => found.push(t),
            other => {
                after = Some(other);
                break;
            }
        }
    }
    let (decide, next) = match after {
        Some(next) => (found.len(), next),
        None => {
            // The scan stopped early. An occurrence followed by more than `catch_up_max` later
            // ones, and by more than the on-time ones (one a second at most), is skipped
            // whatever the rest holds: only those are decided now.
            let keep = s.catch_up_max as usize + (ON_TIME_MS / 1000) as usize + 2;
            let decide = found.len().saturating_sub(keep).max(1);
            (decide, Some(found[decide]))
        }
    };
    let found = &found[..decide];
    let late = |t: &DateTime<Utc>| (now - *t).num_milliseconds();
    let missed: Vec<usize> = (0..found.len())
        .filter(|&i| {
            let l = late(&found[i]);
            l > ON_TIME_MS && l <= s.max_lateness_ms as i64
        })
        .collect();
    let complete = after.is_some();
    // Of a partial scan, none is among the most recent missed (see above).
    let catch_up: &[usize] = match s.catch_up {
        _ if !complete => &[],
        CatchUp::Skip => &[],
        CatchUp::Latest => &missed[missed.len().saturating_sub(1)..],
        CatchUp::All => &missed[missed.len().saturating_sub(s.catch_up_max as usize)..],
    };
    let mut out = Due {
        run: Vec::new(),
        skipped: Vec::new(),
        next,
    };
    for (i, t) in found.iter().enumerate() {
        let l = late(t);
        let reason = if l > s.max_lateness_ms as i64 {
            Some(SkipReason::TooLate)
        } else if (l <= ON_TIME_MS && complete) || catch_up.contains(&i) {
            None
        } else {
            Some(SkipReason::Missed)
        };
        match reason {
            None => out.run.push(*t),
            Some(reason) => skip(&mut out.skipped, *t, reason),
        }
    }
    Some(out)
}

/// Adds `t` to the last record when it has the same reason, else starts one.
fn skip(skipped: &mut Vec<Skipped>, t: DateTime<Utc>, reason: SkipReason) {
    if let Some(last) = skipped.last_mut()
        && last.reason == reason
    {
        last.last = t;
        last.count += 1;
        return;
    }
    skipped.push(Skipped {
        first: t,
        last: t,
        count: 1,
        reason,
    });
}

/// The concurrency a worker gives the jobs of a schedule: `overlap: queue` runs them one after
/// another (limit 1 per flow, whatever `settings.concurrency` says); `None`: the flow's own
/// settings apply.
pub fn queued_limit(s: &Schedule) -> Option<u32> {
    (s.overlap == crate::flow::trigger::Overlap::Queue).then_some(1)
}

/// The unique key of an occurrence's job: one job per occurrence across every instance.
pub fn unique_key(flow: &str, occurrence: DateTime<Utc>) -> String {
    format!("schedule:{flow}:{}", rfc3339(occurrence))
}

/// An instant as RFC 3339 in UTC with seconds (`2026-03-29T01:00:00Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::trigger::{Overlap, parse_cron, parse_timezone};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("an RFC 3339 time")
            .with_timezone(&Utc)
    }

    fn sched(cron: &str, tz: &str, catch_up: CatchUp) -> Schedule {
        Schedule {
            cron: cron.into(),
            parsed: parse_cron(cron).expect("a cron"),
            timezone: parse_timezone(tz).expect("a zone"),
            catch_up,
            catch_up_max: 3,
            max_lateness_ms: 3_600_000,
            overlap: Overlap::Skip,
        }
    }

    /// The next `n` occurrences after `from`, as RFC 3339 with the zone's offset.
    fn next_n(cron: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
        let s = sched(cron, tz, CatchUp::Latest);
        upcoming(&s.parsed, s.timezone, at(from), n)
            .iter()
            .map(|t| t.to_rfc3339())
            .collect()
    }

    #[test]
    fn a_daily_time_fires_each_day_in_its_zone() {
        assert_eq!(
            next_n("0 8 * * *", "Europe/Paris", "2026-01-10T07:00:00Z", 2),
            ["2026-01-11T08:00:00+01:00", "2026-01-12T08:00:00+01:00"]
        );
        assert_eq!(
            next_n("0 8 * * *", "Europe/Paris", "2026-01-10T06:59:59Z", 1),
            ["2026-01-10T08:00:00+01:00"]
        );
    }

    #[test]
    fn the_next_occurrence_is_strictly_after_the_instant() {
        let s = sched("*/5 * * * * *", "UTC", CatchUp::Latest);
        let t = at("2026-01-01T00:00:05Z");
        assert_eq!(
            next_after(&s.parsed, s.timezone, t),
            Some(at("2026-01-01T00:00:10Z"))
        );
    }

    #[test]
    fn spring_forward_paris_a_missing_time_runs_once_after_the_gap() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
        assert_eq!(
            next_n("30 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", 3),
            [
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00",
                "2026-03-31T02:30:00+02:00"
            ]
        );
    }

    #[test]
    fn spring_forward_new_york_every_quarter_hour_of_the_gap_runs_once() {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT.
        assert_eq!(
            next_n(
                "*/15 * * * *",
                "America/New_York",
                "2026-03-08T06:40:00Z",
                4
            ),
            [
                "2026-03-08T01:45:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-08T03:15:00-04:00",
                "2026-03-08T03:30:00-04:00"
            ]
        );
    }

    #[test]
    fn fall_back_paris_a_repeated_time_runs_once_the_first() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        assert_eq!(
            next_n("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
        );
    }

    #[test]
    fn fall_back_new_york_an_interval_does_not_repeat_the_hour() {
        // 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:00-01:59 happens twice.
        assert_eq!(
            next_n(
                "*/30 * * * *",
                "America/New_York",
                "2026-11-01T04:45:00Z",
                4
            ),
            [
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T02:30:00-05:00"
            ]
        );
        // From inside the second pass, the next one is after it, not a repeat.
        assert_eq!(
            next_n("30 1 * * *", "America/New_York", "2026-11-01T06:10:00Z", 1),
            ["2026-11-02T01:30:00-05:00"]
        );
    }

    #[test]
    fn occurrences_are_whole_seconds_whatever_the_instant_after() {
        let s = sched("* * * * * *", "Europe/Paris", CatchUp::Latest);
        let t = at("2026-01-01T00:00:05.093229Z");
        assert_eq!(
            next_after(&s.parsed, s.timezone, t),
            Some(at("2026-01-01T00:00:06Z"))
        );
    }

    #[test]
    fn an_expression_that_never_matches_has_no_next_occurrence() {
        let s = sched("0 0 30 2 *", "Europe/Paris", CatchUp::Latest);
        assert_eq!(
            next_after(&s.parsed, s.timezone, at("2026-01-01T00:00:00Z")),
            None
        );
        assert!(upcoming(&s.parsed, s.timezone, at("2026-01-01T00:00:00Z"), 5).is_empty());
    }

    #[test]
    fn not_due_before_its_time() {
        let s = sched("0 * * * *", "UTC", CatchUp::All);
        assert_eq!(
            due(&s, at("2026-01-01T10:00:00Z"), at("2026-01-01T09:59:59Z")),
            None
        );
    }

    #[test]
    fn an_occurrence_on_time_runs_whatever_catch_up_says() {
        for c in [CatchUp::Skip, CatchUp::Latest, CatchUp::All] {
            let s = sched("0 * * * *", "UTC", c);
            let d = due(&s, at("2026-01-01T10:00:00Z"), at("2026-01-01T10:00:02Z")).expect("due");
            assert_eq!(d.run, [at("2026-01-01T10:00:00Z")]);
            assert!(d.skipped.is_empty());
            assert_eq!(d.next, Some(at("2026-01-01T11:00:00Z")));
        }
    }

    fn missed(first: &str, last: &str, count: u64) -> Skipped {
        Skipped {
            first: at(first),
            last: at(last),
            count,
            reason: SkipReason::Missed,
        }
    }

    #[test]
    fn after_downtime_skip_runs_none_of_the_missed() {
        let s = sched("*/10 * * * *", "UTC", CatchUp::Skip);
        let d = due(&s, at("2026-01-01T10:00:00Z"), at("2026-01-01T10:45:00Z")).expect("due");
        assert!(d.run.is_empty());
        assert_eq!(
            d.skipped,
            [missed("2026-01-01T10:00:00Z", "2026-01-01T10:40:00Z", 5)]
        );
        assert_eq!(d.next, Some(at("2026-01-01T10:50:00Z")));
    }

    #[test]
    fn after_downtime_latest_runs_the_most_recent_missed() {
        let s = sched("*/10 * * * *", "UTC", CatchUp::Latest);
        let d = due(&s, at("2026-01-01T10:00:00Z"), at("2026-01-01T10:45:00Z")).expect("due");
        assert_eq!(d.run, [at("2026-01-01T10:40:00Z")]);
        assert_eq!(
            d.skipped,
            [missed("2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z", 4)]
        );
    }

    #[test]
    fn after_downtime_all_runs_at_most_catch_up_max_the_most_recent() {
        let s = sched("*/10 * * * *", "UTC", CatchUp::All);
        let d = due(&s, at("2026-01-01T10:00:00Z"), at("2026-01-01T10:45:00Z")).expect("due");
        assert_eq!(
            d.run,
            [
                at("2026-01-01T10:20:00Z"),
                at("2026-01-01T10:30:00Z"),
                at("2026-01-01T10:40:00Z")
            ]
        );
        assert_eq!(
            d.skipped,
            [missed("2026-01-01T10:00:00Z", "2026-01-01T10:10:00Z", 2)]
        );
    }

    #[test]
    fn too_late_wins_over_catch_up() {
        let mut s = sched("*/10 * * * *", "UTC", CatchUp::All);
        s.max_lateness_ms = 25 * 60_000;
        let d = due(&s, at("2026-01-01T10:00:00Z"), at("2026-01-01T10:45:00Z")).expect("due");
        assert_eq!(
            d.run,
            [
                at("2026-01-01T10:20:00Z"),
                at("2026-01-01T10:30:00Z"),
                at("2026-01-01T10:40:00Z")
            ]
        );
        assert_eq!(
            d.skipped,
            [Skipped {
                first: at("2026-01-01T10:00:00Z"),
                last: at("2026-01-01T10:10:00Z"),
                count: 2,
                reason: SkipReason::TooLate
            }]
        );
        s.max_lateness_ms = 1000;
        let d = due(&s, at("2026-01-01T10:40:00Z"), at("2026-01-01T10:40:02Z")).expect("due");
        assert!(d.run.is_empty());
        assert_eq!(d.skipped[0].reason, SkipReason::TooLate);
    }

    #[test]
    fn a_long_downtime_is_worked_off_in_bounded_steps_and_none_is_lost() {
        let s = sched("* * * * * *", "UTC", CatchUp::All);
        let start = at("2026-01-01T00:00:00Z");
        let now = at("2026-01-01T06:00:00Z"); // 21,600 occurrences due
        let mut next = Some(start);
        let (mut runs, mut skipped, mut steps) = (Vec::new(), 0u64, 0);
        while let Some(d) = next.and_then(|n| due(&s, n, now)) {
            steps += 1;
            runs.extend(d.run);
            skipped += d.skipped.iter().map(|k| k.count).sum::<u64>();
            next = d.next;
        }
        assert!(steps > 1, "more than one step: {steps}");
        assert_eq!(next, Some(at("2026-01-01T06:00:01Z")));
        // The 3 most recent missed ones plus the on-time ones (the last 10 s and now).
        assert_eq!(runs.len(), 3 + 11, "{runs:?}");
        assert_eq!(runs.first(), Some(&at("2026-01-01T05:59:47Z")));
        assert_eq!(runs.len() as u64 + skipped, 21_601);
    }

    #[test]
    fn unique_keys_name_the_flow_and_the_utc_occurrence() {
        assert_eq!(
            unique_key("nightly", at("2026-03-29T03:00:00+02:00")),
            "schedule:nightly:2026-03-29T01:00:00Z"
        );
    }

    #[test]
    fn overlap_queue_runs_one_at_a_time() {
        let mut s = sched("0 * * * *", "UTC", CatchUp::Skip);
        assert_eq!(queued_limit(&s), None);
        s.overlap = Overlap::Queue;
        assert_eq!(queued_limit(&s), Some(1));
    }
}
