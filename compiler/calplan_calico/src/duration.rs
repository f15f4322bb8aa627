//! Go's `time.ParseDuration` syntax, as Calico's durations (`maxRestartTime`,
//! `nodeMeshMaxRestartTime`) are written.

/// Whole seconds of a Go duration, rounded as confd rounds them for BIRD's
/// `graceful restart time`. `None` where Go would refuse the text: empty, a unit missing
/// (only a bare `0` may go without), or an unknown unit.
pub fn duration_seconds(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    if text.is_empty() {
        return None;
    }
    let mut seconds = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        seconds += number * scale;
        rest = &rest[unit_end..];
    }
    Some(seconds.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::duration_seconds;

    #[test]
    fn durations_follow_go() {
        assert_eq!(duration_seconds("120s"), Some(120));
        assert_eq!(duration_seconds("1m30s"), Some(90));
        assert_eq!(duration_seconds("1.5h"), Some(5400));
        assert_eq!(duration_seconds("0"), Some(0));
        assert_eq!(duration_seconds("120"), None);
        assert_eq!(duration_seconds("s"), None);
        assert_eq!(duration_seconds(""), None);
    }

    #[test]
    fn fractions_round_as_confd_does() {
        assert_eq!(duration_seconds("1.5s"), Some(2));
        assert_eq!(duration_seconds("1400ms"), Some(1));
    }
}
