//! Exact decimal numbers as text. Sluice never turns a decimal into a float on its way between
//! a request and Postgres: JSON numbers keep their digits (serde_json's `arbitrary_precision`),
//! and this module checks a number's text against a decimal field and writes it in plain
//! notation, the way Postgres' `numeric` prints it. Pure: no sqlx, no IO.
//!
//! A decimal field without `precision` holds at most [`MAX_INT_DIGITS`] digits before the point
//! and [`MAX_SCALE`] after it: without a bound, `1e131071` (eight bytes of JSON) would become a
//! 131,072-digit value in every read, and a value beyond the range of a double
//! (`1.7976931348623157e308` has 309 digits) breaks most JSON clients. A field with `precision`
//! and `scale` takes `precision - scale` digits before the point; Postgres rounds the fraction
//! to `scale` digits.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// Digits before the decimal point of a decimal field without `precision`.
pub const MAX_INT_DIGITS: u32 = 38;
/// Digits after the decimal point of a decimal field without `precision`.
pub const MAX_SCALE: u32 = 38;
/// Digits after the point Postgres keeps at most (`NUMERIC_MAX_DISPLAY_SCALE`); beyond it a
/// value is refused rather than expanded.
const PG_MAX_SCALE: i64 = 1000;

/// A decimal number as written: its digits (leading zeros removed), how many of them are after
/// the point (`scale`, negative when the number ends in zeros given by an exponent), and its sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    negative: bool,
    digits: String,
    scale: i64,
}

impl Decimal {
    /// Reads `[+-]digits[.digits][(e|E)[+-]digits]` (also `.5` and `5.`, as Postgres does).
    /// `None` for anything else: `NaN`, `Infinity`, hex, empty text, an exponent beyond i32.
    pub fn parse(s: &str) -> Option<Decimal> {
        let (negative, body) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
            return None;
        }
        let exp: i64 = match exponent {
            None => 0,
            Some(e) => {
                let t = e.strip_prefix('+').unwrap_or(e);
                let unsigned = t.strip_prefix('-').unwrap_or(t);
                if unsigned.is_empty() || !all_digits(unsigned) {
                    return None;
                }
                t.parse::<i32>().ok()?.into()
            }
        };
        let mut digits = format!("{int}{frac}");
        let leading = digits.len() - digits.trim_start_matches('0').len();
        digits.drain(..leading);
        Some(Decimal {
            negative,
            digits,
            scale: frac.len() as i64 - exp,
        })
    }

    /// Digits before the decimal point, without leading zeros.
    pub fn int_digits(&self) -> i64 {
        (self.digits.len() as i64 - self.scale).max(0)
    }

    /// Digits after the decimal point as Postgres keeps them (trailing zeros included).
    pub fn scale(&self) -> i64 {
        self.scale.max(0)
    }

    /// Plain notation as Postgres' `numeric` prints it: no exponent, no leading zeros, the
    /// fraction digits as written, `0` without a sign. Only for numbers whose size was checked
    /// (the text has `int_digits + scale` digits).
    pub fn plain(&self) -> String {
        let mut out = String::new();
        let zero = self.digits.is_empty();
        if self.negative && !zero {
            out.push('-');
        }
        let len = self.digits.len() as i64;
        if self.scale <= 0 {
            out.push_str(if zero { "0" } else { &self.digits });
            if !zero {
                out.extend(std::iter::repeat_n('0', (-self.scale) as usize));
            }
            return out;
        }
        let scale = self.scale as usize;
        if len > self.scale {
            let (int, frac) = self.digits.split_at(len as usize - scale);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', scale - len as usize));
            out.push_str(&self.digits);
        }
        out
    }

    /// The same number with the fraction's trailing zeros dropped (`1.50` → `1.5`).
    fn trimmed(&self) -> (bool, &str, i64) {
        let t = self.digits.trim_end_matches('0');
        let scale = self.scale - (self.digits.len() - t.len()) as i64;
        (
            self.negative && !t.is_empty(),
            t,
            if t.is_empty() { 0 } else { scale },
        )
    }
}

/// Checks a number's text for a decimal field and returns the text to bind: plain notation,
/// exactly the number given. `precision`/`scale` are the field's; without them the limits of
/// this module apply. The error is the message for the user.
pub fn check(s: &str, precision: Option<u32>, scale: Option<u32>) -> Result<String, String> {
    let Some(d) = Decimal::parse(s.trim()) else {
        return Err("expected a number".into());
    };
    let max_int = match precision {
        Some(p) => p.saturating_sub(scale.unwrap_or(0)),
        None => MAX_INT_DIGITS,
    };
    if d.int_digits() > max_int as i64 {
        return Err(format!(
            "expected at most {max_int} digits before the decimal point"
        ));
    }
    match precision {
        None if d.scale() > MAX_SCALE as i64 => Err(format!(
            "expected at most {MAX_SCALE} digits after the decimal point"
        )),
        // Postgres rounds to the field's scale, but refuses to read more than this.
        Some(_) if d.scale() > PG_MAX_SCALE => Err(format!(
            "expected at most {PG_MAX_SCALE} digits after the decimal point"
        )),
        _ => Ok(d.plain()),
    }
}

/// Whether two numbers' texts are the same number (`1`, `1.0` and `1e0` are).
pub fn same_number(a: &str, b: &str) -> bool {
    match (Decimal::parse(a), Decimal::parse(b)) {
        (Some(x), Some(y)) => x.trimmed() == y.trimmed(),
        _ => a == b,
    }
}

/// Whether two JSON values are equal, numbers compared by value rather than by their text.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(&x.to_string(), &y.to_string()),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Numbers in their plain form ([`Decimal::plain`]), so that a document's hash does not depend
/// on how its numbers were spelled (`1e3`, or the `1000` Postgres' jsonb gives back). Numbers
/// too large to expand stay as written.
pub fn normalize_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            let text = n.to_string();
            if let Some(d) = Decimal::parse(&text)
                && d.int_digits() + d.scale() <= 2 * PG_MAX_SCALE
            {
                let plain = d.plain();
                if plain != text
                    && let Ok(m) = plain.parse::<serde_json::Number>()
                {
                    *n = m;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_numbers),
        Value::Object(map) => map.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

/// A JSON value serialized with its numbers as `i64`, `u64` or `f64`, for serializers other
/// than serde_json's (Tera, MessagePack): serde_json's exact numbers reach those as a private
/// one-field struct that they would show as an object. Digits beyond a double are lost there,
/// as in Rhai.
pub struct Plain<'a>(pub &'a Value);

impl Serialize for Plain<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => s.serialize_i64(i),
                (_, Some(u), _) => s.serialize_u64(u),
                (_, _, Some(f)) => s.serialize_f64(f),
                // Beyond a double: the digits as text rather than a wrong number.
                _ => s.serialize_str(&n.to_string()),
            },
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(&Plain(i))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(k, &Plain(v))?;
                }
                m.end()
            }
            other => other.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_written_plainly_as_postgres_prints_numeric() {
        for (given, plain) in [
            ("0", "0"),
            ("-0.0", "0.0"),
            ("007", "7"),
            ("1.50", "1.50"),
            ("1e3", "1000"),
            ("1.50e1", "15.0"),
            ("1.5E-2", "0.015"),
            ("+.5", "0.5"),
            ("5.", "5"),
            (
                "-12345678901234567890.123456789012",
                "-12345678901234567890.123456789012",
            ),
        ] {
            assert_eq!(
                Decimal::parse(given).map(|d| d.plain()).as_deref(),
                Some(plain),
                "{given}"
            );
        }
        for bad in [
            "",
            "-",
            ".",
            "e5",
            "1e",
            "1e+",
            "NaN",
            "Infinity",
            "0x10",
            "1.2.3",
            "1e99999999999",
            " 1",
        ] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn decimal_fields_refuse_what_they_cannot_hold() {
        assert_eq!(
            check("1.7976931348623157e308", None, None),
            Err("expected at most 38 digits before the decimal point".into())
        );
        assert!(check("1e400", None, None).is_err());
        assert!(check("1e-39", None, None).is_err());
        assert!(check("-1e-1000000", Some(10), Some(2)).is_err());
        assert_eq!(
            check("123456789012345678901234567890.12345678", None, None).as_deref(),
            Ok("123456789012345678901234567890.12345678")
        );
        assert_eq!(check("1e37", None, None).map(|s| s.len()), Ok(38));
        assert_eq!(check("123.456", Some(5), Some(2)).as_deref(), Ok("123.456"));
        assert!(check("1234.5", Some(5), Some(2)).is_err());
        assert!(check("12a", None, None).is_err());
        assert_eq!(check(" 42 ", None, None).as_deref(), Ok("42"));
    }

    #[test]
    fn equality_is_by_value_and_plain_serialization_keeps_numbers_numbers() {
        assert!(json_eq(&json!({"a": [1, 2.5]}), &json!({"a": [1.0, 2.50]})));
        assert!(!json_eq(&json!(1), &json!(1.01)));
        assert!(same_number("1e3", "1000.000"));
        let v: Value = serde_json::from_str(r#"{"n": 12345678901234567890123, "i": -3, "f": 0.5}"#)
            .expect("json");
        let text = serde_json::to_string(&Plain(&v)).expect("serializes");
        assert_eq!(text, r#"{"f":0.5,"i":-3,"n":1.2345678901234568e+22}"#);
        let mut doc: Value = serde_json::from_str(r#"{"a": 1e3, "b": [1.50, -0]}"#).expect("json");
        normalize_numbers(&mut doc);
        assert_eq!(doc.to_string(), r#"{"a":1000,"b":[1.50,0]}"#);
    }
}
