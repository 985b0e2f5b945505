//! Times and rates written with their units, as the experiment files, `kmsim bench` and
//! `kmsim chaos` take them: `500ms`, `10s`, `2m`, `1h` (a bare number is seconds), and
//! `200/s` (a bare number is calls per second).

use std::fmt;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Parses a duration with its unit: `ms`, `s` (or none), `m`, `h`, `d`; decimals allowed
/// (`1.5s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration; use e.g. 10s, 500ms, 2m"))?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{s}'; use ms, s, m, h or d"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("'{s}' is out of range"))
}

/// Parses a signed duration in whole milliseconds: [`parse_duration`] after an optional `+`
/// or `-` (`-2h`, `+3d`), within ±ten years.
pub fn parse_signed_ms(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    let d = parse_duration(rest)?;
    if d > Duration::from_secs(TEN_YEARS_S) {
        return Err(format!("'{s}' is beyond ten years"));
    }
    Ok(sign * d.as_millis() as i64)
}

/// Parses a drift rate, a signed duration gained per unit of real time (`1h/s`, `-30m/m`),
/// in milliseconds per real second.
pub fn parse_drift(s: &str) -> Result<i64, String> {
    let usage = || format!("'{s}' is not a drift; use e.g. 1h/s, 10m/m, -2d/h");
    let (amount, per) = s.trim().rsplit_once('/').ok_or_else(usage)?;
    let per_s = match per.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(usage()),
    };
    Ok(parse_signed_ms(amount)? / per_s)
}

/// Ten 366-day years, in seconds: the bound of a signed duration.
const TEN_YEARS_S: u64 = 10 * 366 * 86_400;

/// Writes a duration the way [`parse_duration`] reads it back (`1500ms`, `20s`).
pub fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A duration in a file: a string with its unit (`"10s"`), read by [`parse_duration`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Span).map_err(de::Error::custom)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// Parses a rate: calls per second, a whole number of at least 1, `/s` may follow.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t).trim();
    match t.parse::<u64>() {
        Ok(r) if r > 0 => Ok(r),
        _ => Err(format!(
            "'{s}' is not a rate; use calls per second, e.g. 200/s"
        )),
    }
}

/// A rate in a file: `"200/s"`, read by [`parse_rate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate(pub u64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        let s = String::deserialize(d)?;
        parse_rate(&s).map(Rate).map_err(de::Error::custom)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}/s", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_read_their_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1e400s").is_err());
    }

    #[test]
    fn signed_durations_and_drifts_read_their_units() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_signed_ms("-2h"), Ok(-7_200_000));
        assert_eq!(parse_signed_ms("+3d"), Ok(3 * 86_400_000));
        assert_eq!(parse_signed_ms("500ms"), Ok(500));
        assert!(parse_signed_ms("--1s").is_err());
        assert!(parse_signed_ms("4000d").is_err(), "beyond ten years");
        assert_eq!(parse_drift("1h/s"), Ok(3_600_000));
        assert_eq!(parse_drift("-1d/m"), Ok(-1_440_000));
        assert!(parse_drift("1h").is_err());
        assert!(parse_drift("1h/d").is_err());
    }

    #[test]
    fn rates_read_their_units() {
        assert_eq!(parse_rate("200/s"), Ok(200));
        assert_eq!(parse_rate("7"), Ok(7));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
    }

    proptest! {
        #[test]
        fn a_written_duration_reads_back(ms in 0u64..10_000_000) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn parsing_any_text_never_panics(s in "\\PC{0,20}") {
            let _ = parse_duration(&s);
            let _ = parse_rate(&s);
            let _ = parse_signed_ms(&s);
            let _ = parse_drift(&s);
        }

        #[test]
        fn a_signed_duration_reads_back(ms in -864_000_000i64..864_000_000) {
            let d = format_duration(Duration::from_millis(ms.unsigned_abs()));
            let text = if ms < 0 { format!("-{d}") } else { d };
            prop_assert_eq!(parse_signed_ms(&text), Ok(ms));
        }
    }
}
