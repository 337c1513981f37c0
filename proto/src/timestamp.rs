//! `google.protobuf.Timestamp` with protojson's JSON form.
//!
//! Go's protojson prints UTC as `2006-01-02T15:04:05Z`, adding the
//! fraction with 3, 6 or 9 digits (trailing zeros dropped in groups of 3).
//! We print exactly that, and parse RFC 3339 with `Z` or a `±hh:mm` offset.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds and nanoseconds since the Unix epoch (wire-identical to
/// `google.protobuf.Timestamp`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        SystemTime::now().into()
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: d.subsec_nanos() as i32,
            },
            Err(e) => {
                let d = e.duration();
                let mut seconds = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                let mut nanos = d.subsec_nanos() as i32;
                if nanos > 0 {
                    seconds -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                Timestamp { seconds, nanos }
            }
        }
    }
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) -> days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Normalize nanos into [0, 1e9).
        let extra = i64::from(self.nanos).div_euclid(1_000_000_000);
        let nanos = i64::from(self.nanos).rem_euclid(1_000_000_000);
        let secs = self.seconds.saturating_add(extra);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, mo, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )?;
        if nanos != 0 {
            if nanos % 1_000_000 == 0 {
                write!(f, ".{:03}", nanos / 1_000_000)?;
            } else if nanos % 1_000 == 0 {
                write!(f, ".{:06}", nanos / 1_000)?;
            } else {
                write!(f, ".{nanos:09}")?;
            }
        }
        f.write_str("Z")
    }
}

/// A string that is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {0:?}")]
pub struct TimestampParseError(String);

fn num(s: &str, from: usize, len: usize) -> Option<i64> {
    let part = s.get(from..from + len)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TimestampParseError(s.to_string());
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't')
            || b[13] != b':' || b[16] != b':'
        {
            return Err(err());
        }
        let year = num(s, 0, 4).ok_or_else(err)?;
        let month = num(s, 5, 2).ok_or_else(err)? as u32;
        let day = num(s, 8, 2).ok_or_else(err)? as u32;
        let hour = num(s, 11, 2).ok_or_else(err)?;
        let min = num(s, 14, 2).ok_or_else(err)?;
        let sec = num(s, 17, 2).ok_or_else(err)?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 59 {
            return Err(err());
        }
        let mut pos = 19;
        let mut nanos: i64 = 0;
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            let digits = &s[start..pos];
            if digits.is_empty() || digits.len() > 9 {
                return Err(err());
            }
            nanos = digits.parse::<i64>().map_err(|_| err())? * 10_i64.pow(9 - digits.len() as u32);
        }
        let offset = match &s[pos..] {
            "Z" | "z" => 0,
            rest if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
                let h = num(rest, 1, 2).ok_or_else(err)?;
                let m = num(rest, 4, 2).ok_or_else(err)?;
                let sign = if rest.starts_with('-') { -1 } else { 1 };
                sign * (h * 3600 + m * 60)
            }
            _ => return Err(err()),
        };
        let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset;
        Ok(Timestamp { seconds, nanos: nanos as i32 })
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_protojson() {
        let cases = [
            (Timestamp { seconds: 1_666_062_978, nanos: 273_546_829 }, "2022-10-18T03:16:18.273546829Z"),
            (Timestamp { seconds: 1_666_062_978, nanos: 273_546_000 }, "2022-10-18T03:16:18.273546Z"),
            (Timestamp { seconds: 1_666_062_978, nanos: 270_000_000 }, "2022-10-18T03:16:18.270Z"),
            (Timestamp { seconds: 1_666_062_978, nanos: 0 }, "2022-10-18T03:16:18Z"),
            (Timestamp { seconds: 0, nanos: 1 }, "1970-01-01T00:00:00.000000001Z"),
            (Timestamp { seconds: -1, nanos: 0 }, "1969-12-31T23:59:59Z"),
            (Timestamp { seconds: 951_782_400, nanos: 0 }, "2000-02-29T00:00:00Z"),
        ];
        for (ts, text) in cases {
            assert_eq!(ts.to_string(), text);
            assert_eq!(text.parse::<Timestamp>().unwrap(), ts, "{text}");
        }
    }

    #[test]
    fn parses_offsets_and_rejects_garbage() {
        let t: Timestamp = "2022-10-18T05:16:18.5+02:00".parse().unwrap();
        assert_eq!(t, Timestamp { seconds: 1_666_062_978, nanos: 500_000_000 });
        for bad in ["", "2022-10-18", "2022-13-18T03:16:18Z", "2022-10-18T03:16:18", "2022-10-18T03:16:18.Z",
            "2022-10-18T03:16:18.1234567890Z", "2022-10-18T03:16:18+0200", "２０２２-10-18T03:16:18Z"] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn never_panics_on_extreme_values() {
        let _ = Timestamp { seconds: i64::MAX, nanos: i32::MAX }.to_string();
        let _ = Timestamp { seconds: i64::MIN, nanos: i32::MIN }.to_string();
    }
}
