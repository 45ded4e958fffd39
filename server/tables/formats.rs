//! Pure checks of formatted text that both field types and values need: dates, timestamps,
//! UUIDs and email addresses, exactly as Postgres and the email check constraint read them.

/// `YYYY-MM-DD` with a real month and day.
pub fn parse_date(s: &str) -> Option<(i32, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (y, m, d) = (num(0..4)? as i32, num(5..7)?, num(8..10)?);
    if y == 0 {
        // Postgres has no year 0 (1 BC is written with "BC").
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days).contains(&d).then_some((y, m, d))
}

/// An ISO 8601 / RFC 3339 timestamp: a date, optionally `T` or space, `HH:MM[:SS[.fraction]]`,
/// and an optional `Z` or `±HH[:MM]` offset.
pub fn parse_timestamp(s: &str) -> Option<()> {
    parse_date(s.get(..10)?)?;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(());
    }
    let rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix('t'))
        .or_else(|| rest.strip_prefix(' '))?;
    let two = |p: &str, max: u32| p.len() == 2 && p.parse::<u32>().is_ok_and(|n| n <= max);
    let (hh, rest) = (rest.get(..2)?, rest.get(2..)?);
    let rest = rest.strip_prefix(':')?;
    let (mm, mut rest) = (rest.get(..2)?, rest.get(2..)?);
    if !two(hh, 23) || !two(mm, 59) {
        return None;
    }
    if let Some(r) = rest.strip_prefix(':') {
        let ss = r.get(..2)?;
        if !two(ss, 60) {
            return None;
        }
        rest = &r[2..];
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 || n > 9 {
                return None;
            }
            rest = &r[n..];
        }
    }
    match rest {
        "" | "Z" | "z" => Some(()),
        off => {
            let sign = off.get(..1)?;
            let body = off.get(1..)?;
            let (h, m) = match body.len() {
                2 => (body, "00"),
                4 => (body.get(..2)?, body.get(2..)?),
                5 if body.as_bytes()[2] == b':' => (body.get(..2)?, body.get(3..)?),
                _ => return None,
            };
            ((sign == "+" || sign == "-") && two(h, 15) && two(m, 59)).then_some(())
        }
    }
}

/// `8-4-4-4-12` hex digits (or 32 hex digits), as Postgres reads them.
pub fn is_uuid(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [a] => hex(a, 32),
        [a, b, c, d, e] => hex(a, 8) && hex(b, 4) && hex(c, 4) && hex(d, 4) && hex(e, 12),
        _ => false,
    }
}

/// Whether text looks like an email address (same rule as [`super::types::EMAIL_PATTERN`]).
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let clean = |p: &str| !p.is_empty() && !p.contains('@') && !p.chars().any(char::is_whitespace);
    clean(local)
        && clean(domain)
        && domain
            .rsplit_once('.')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
}
