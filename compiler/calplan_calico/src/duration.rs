//! Go's `time.ParseDuration`, as Calico reads its durations (`maxRestartTime`,
//! `keepaliveTime`, `nodeMeshMaxRestartTime`): the same syntax and the same limit, a
//! `time.Duration` being a signed 64-bit count of nanoseconds.

/// Why Go would refuse a duration, or calplan does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoDurationError {
    /// Not Go's syntax: empty, a number without a unit (other than a bare `0`), an unknown unit.
    Invalid,
    /// Longer than `time.Duration` holds (2562047h47m16.854775807s): Go refuses it.
    OutOfRange,
    /// Go reads `-5s`, but no time Calico takes may be negative.
    Negative,
}

/// The longest `time.Duration`, in nanoseconds.
pub const MAX_GO_DURATION_NANOSECONDS: u64 = i64::MAX as u64;

/// Nanoseconds of a Go duration, following `time.ParseDuration` step by step:
/// `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units `ns`, `us` (`µs`, `μs`), `ms`, `s`, `m`, `h`.
pub fn parse_go_duration(text: &str) -> Result<u64, GoDurationError> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(GoDurationError::Invalid);
    }
    let limit = 1u128 << 63;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(GoDurationError::Invalid);
        }
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (whole, after) = rest.split_at(digits);
        rest = after;
        let mut fraction = "";
        if let Some(after_point) = rest.strip_prefix('.') {
            let digits = after_point.find(|c: char| !c.is_ascii_digit()).unwrap_or(after_point.len());
            (fraction, rest) = after_point.split_at(digits);
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(GoDurationError::Invalid);
        }
        let unit_length = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
        let (unit, after) = rest.split_at(unit_length);
        rest = after;
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(GoDurationError::Invalid),
        };
        // Go stops at 2^63 on the way; any part that large is out of range.
        let mut value: u128 = 0;
        for digit in whole.bytes() {
            value = value * 10 + u128::from(digit - b'0');
            if value > limit {
                return Err(GoDurationError::OutOfRange);
            }
        }
        value *= scale;
        if value > limit {
            return Err(GoDurationError::OutOfRange);
        }
        // The fraction, to the nanosecond (Go goes through a float; whole nanoseconds agree).
        let mut numerator: u128 = 0;
        let mut denominator: u128 = 1;
        for digit in fraction.bytes().take(30) {
            numerator = numerator * 10 + u128::from(digit - b'0');
            denominator *= 10;
        }
        value += numerator * scale / denominator;
        total += value;
        if total > limit {
            return Err(GoDurationError::OutOfRange);
        }
    }
    if total > u128::from(MAX_GO_DURATION_NANOSECONDS) && !(negative && total == limit) {
        return Err(GoDurationError::OutOfRange);
    }
    if negative && total > 0 {
        return Err(GoDurationError::Negative);
    }
    Ok(total as u64)
}

/// Whole seconds as confd writes them for BIRD's `graceful restart time`: rounded to the
/// nearest second.
pub fn seconds_as_confd_rounds(nanoseconds: u64) -> u64 {
    (nanoseconds + 500_000_000) / 1_000_000_000
}

/// Whole seconds of a Go duration; `None` where Go (or calplan, for a negative time) would
/// refuse the text.
pub fn duration_seconds(text: &str) -> Option<u64> {
    parse_go_duration(text).ok().map(seconds_as_confd_rounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_go() {
        assert_eq!(duration_seconds("120s"), Some(120));
        assert_eq!(duration_seconds("1m30s"), Some(90));
        assert_eq!(duration_seconds("1.5h"), Some(5400));
        assert_eq!(duration_seconds("0"), Some(0));
        assert_eq!(duration_seconds("+0"), Some(0));
        assert_eq!(duration_seconds(".5m"), Some(30));
        assert_eq!(duration_seconds("5.s"), Some(5));
        assert_eq!(duration_seconds("2\u{b5}s"), Some(0));
        assert_eq!(duration_seconds("120"), None);
        assert_eq!(duration_seconds("s"), None);
        assert_eq!(duration_seconds(".s"), None);
        assert_eq!(duration_seconds(""), None);
        assert_eq!(duration_seconds("1.2.3s"), None);
        assert_eq!(duration_seconds("5 s"), None);
        assert_eq!(duration_seconds("5d"), None);
    }

    #[test]
    fn fractions_round_as_confd_does() {
        assert_eq!(duration_seconds("1.5s"), Some(2));
        assert_eq!(duration_seconds("1400ms"), Some(1));
    }

    #[test]
    fn the_limit_is_go_durations() {
        assert_eq!(parse_go_duration("2562047h47m16.854775807s"), Ok(MAX_GO_DURATION_NANOSECONDS));
        assert_eq!(parse_go_duration("2562047h47m16.854775808s"), Err(GoDurationError::OutOfRange));
        assert_eq!(parse_go_duration("2562048h"), Err(GoDurationError::OutOfRange));
        assert_eq!(parse_go_duration("9223372036854775807ns"), Ok(MAX_GO_DURATION_NANOSECONDS));
        assert_eq!(parse_go_duration("9223372036854775808ns"), Err(GoDurationError::OutOfRange));
        assert_eq!(parse_go_duration("99999999999999999999999999h"), Err(GoDurationError::OutOfRange));
        assert_eq!(parse_go_duration("-5s"), Err(GoDurationError::Negative));
        assert_eq!(parse_go_duration("-0s"), Ok(0));
    }
}
