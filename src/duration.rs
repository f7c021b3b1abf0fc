//! Durations as people write them (`90s`, `10m`, `1h30m`, `7d`, or plain seconds) and as
//! kubectl shows ages (`5m3s`, `3d4h`, `2y30d`).
//!
//! The server's flags, the client's `--timeout` and a token's `expires_in` all read durations
//! with [`parse`]; [`format`] writes one back as [`parse`] reads it (the defaults `--help`
//! shows); [`human_duration`] rounds as kubectl does, for the age and duration columns of tables.

use std::time::Duration;

/// The units people write, largest first, in seconds.
const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3600), ('m', 60), ('s', 1)];

/// A duration as people write it: `90` or `90s`, `10m`, `2h`, `1d`, or several at once (`1h30m`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration such as 90s, 10m, 1h30m or 1d");
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for character in text.chars() {
        if character.is_ascii_digit() {
            number.push(character);
            continue;
        }
        let (_, unit) = UNITS
            .into_iter()
            .find(|(suffix, _)| *suffix == character)
            .ok_or_else(invalid)?;
        let amount: u64 = number.parse().map_err(|_| invalid())?;
        number.clear();
        total = amount
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(invalid)?;
    }
    if !number.is_empty() || text.is_empty() {
        return Err(invalid());
    }
    Ok(Duration::from_secs(total))
}

/// `duration` (whole seconds) in the largest units that write it exactly, as [`parse`] reads it
/// back: `10m`, `7d`, `1h30m`, `0s`.
pub fn format(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    if seconds == 0 {
        return "0s".into();
    }
    let mut text = String::new();
    for (suffix, unit) in UNITS {
        if seconds >= unit {
            text.push_str(&(seconds / unit).to_string());
            text.push(suffix);
            seconds %= unit;
        }
    }
    text
}

/// kubectl's short human duration: `45s`, `5m3s`, `15m`, `2h5m`, `30h`, `3d4h`, `40d`, `2y30d`.
pub fn human_duration(duration: jiff::SignedDuration) -> String {
    let seconds = duration.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    let seconds = seconds.max(0);
    let (minutes, hours) = (seconds / 60, seconds / 3600);
    let days = hours / 24;
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else if days < 365 * 2 {
        format!("{days}d")
    } else if days < 365 * 8 {
        match days % 365 {
            0 => format!("{}y", days / 365),
            d => format!("{}y{d}d", days / 365),
        }
    } else {
        format!("{}y", days / 365)
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    #[test]
    fn durations_are_read_as_people_write_them() {
        let cases = [
            ("90", 90),
            ("45", 45),
            ("90s", 90),
            ("10m", 600),
            ("1h30m", 5400),
            ("2h", 7200),
            ("1d", 86_400),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse(text), Ok(Duration::from_secs(seconds)), "{text}");
        }
        for text in ["", "m", "10x", "5m3", "10m5", "-1s", "1.5h"] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_written_duration_is_read_back_as_the_same() {
        let cases = [
            (0, "0s"),
            (5, "5s"),
            (600, "10m"),
            (5400, "1h30m"),
            (7 * 86_400, "7d"),
            (86_400 + 61, "1d1m1s"),
        ];
        for (seconds, text) in cases {
            let duration = Duration::from_secs(seconds);

            assert_eq!(format(duration), text);
            assert_eq!(parse(&format(duration)), Ok(duration), "{text}");
        }
    }

    #[test]
    fn durations_read_like_kubectl() {
        let cases = [
            (-5, "<invalid>"),
            (0, "0s"),
            (45, "45s"),
            (119, "119s"),
            (303, "5m3s"),
            (300, "5m"),
            (900, "15m"),
            (2 * 3600 + 5 * 60, "125m"),
            (4 * 3600 + 5 * 60, "4h5m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (40 * 86400, "40d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
            (10 * 365 * 86400, "10y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(SignedDuration::from_secs(seconds)), expected);
        }
    }
}
