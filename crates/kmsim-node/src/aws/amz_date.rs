//! The SigV4 date formats (`20261201T100000Z`, `20261201`) to and from seconds since the epoch,
//! in UTC. The calendar is the `time` crate's; this module only fixes the format strictly
//! (exactly 16 ASCII characters, no sign, no separators).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// `yyyyMMdd'T'HHmmss'Z'`, for formatting.
const AMZ_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

/// Parses an `X-Amz-Date` value (`yyyyMMdd'T'HHmmss'Z'`, ISO 8601 basic format, UTC) into seconds
/// since the epoch; `None` for anything else, including impossible dates.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u16> {
        let part = &b[r];
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let date = Date::from_calendar_date(
        i32::from(num(0..4)?),
        Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?,
        u8::try_from(num(6..8)?).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Formats seconds since the epoch as an `X-Amz-Date` value (`20261201T100000Z`); a time
/// outside years 0–9999 (no valid date anyway) comes out as `@<secs>`.
pub fn format_amz_date(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .filter(|t| (0..=9999).contains(&t.year()))
        .and_then(|t| t.format(AMZ_DATE).ok())
        .unwrap_or_else(|| format!("@{secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The calendar arithmetic this module used before the `time` crate (H. Hinnant's
    /// days-from-civil and civil-from-days), kept as the oracle of the property tests.
    mod before {
        pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
            let y = if m <= 2 { y - 1 } else { y };
            let era = y.div_euclid(400);
            let yoe = y - era * 400;
            let mp = (m + 9) % 12;
            let doy = (153 * mp + 2) / 5 + d - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            era * 146_097 + doe - 719_468
        }

        pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
            let z = z + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z - era * 146_097;
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            let y = yoe + era * 400;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let d = doy - (153 * mp + 2) / 5 + 1;
            let m = if mp < 10 { mp + 3 } else { mp - 9 };
            (if m <= 2 { y + 1 } else { y }, m, d)
        }

        pub fn format(secs: i64) -> String {
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let rem = secs.rem_euclid(86_400);
            format!(
                "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60
            )
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(format_amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(parse_amz_date("20240229T235959Z"), Some(1_709_251_199));
        assert_eq!(parse_amz_date("00000101T000000Z"), Some(-62_167_219_200));
        assert_eq!(format_amz_date(-62_167_219_200), "00000101T000000Z");
        assert_eq!(format_amz_date(253_402_300_800), "@253402300800");
        for bad in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "2015083T0123600Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20230229T000000Z",
            "20150830T246000Z",
            "20150830T126000Z",
            "20150830T123660Z",
            "20150800T123600Z",
            "2015-08-30T12:3Z",
            "+0150830T123600Z",
            "２０15083T123600Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn format_and_parse_round_trip(secs in 0i64..=253_402_300_799) {
            prop_assert_eq!(parse_amz_date(&format_amz_date(secs)), Some(secs));
        }

        /// Every time of years 0–9999 formats as the hand-written calendar did.
        #[test]
        fn formats_as_before(secs in -62_167_219_200i64..=253_402_300_799) {
            prop_assert_eq!(format_amz_date(secs), before::format(secs));
        }

        /// Every date the old parser accepted (valid day of its month) parses to the same
        /// second; days past the month's end are refused.
        #[test]
        fn parses_as_before(
            y in 0i64..=9999, m in 1i64..=12, d in 1i64..=31,
            h in 0i64..=23, min in 0i64..=59, s in 0i64..=59,
        ) {
            let text = format!("{y:04}{m:02}{d:02}T{h:02}{min:02}{s:02}Z");
            let days = before::days_from_civil(y, m, d);
            let valid = before::civil_from_days(days) == (y, m, d);
            let expected = valid.then(|| days * 86_400 + h * 3600 + min * 60 + s);
            prop_assert_eq!(parse_amz_date(&text), expected);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = parse_amz_date(&s);
        }
    }
}
