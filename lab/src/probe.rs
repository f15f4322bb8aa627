//! Continuous probes for `lab apply`: a `ping -D -O -i 0.02` per probed path, its output in a
//! log, read back afterwards into which echo requests were answered and when each was sent,
//! so that losses can be laid against the stages of the plan.
//!
//! Timing comes from ping's own clock (`-D`, Unix time) and the stage boundaries from the
//! same clock, so the two line up. A request's send time is its reply's time less the round
//! trip; for an unanswered one, `-O` prints "no answer yet" when the next request goes out, a
//! packet interval later; requests with neither (a send error) are placed between their
//! neighbours. Pure apart from starting and stopping the processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Seconds between echo requests.
pub const INTERVAL: f64 = 0.02;

/// A running ping.
pub struct Probe {
    pub label: String,
    pub log: PathBuf,
    child: Child,
}

impl Probe {
    pub fn start(label: &str, namespace: &str, target: std::net::IpAddr, log: &Path) -> Result<Probe, String> {
        let file = std::fs::File::create(log).map_err(|error| format!("cannot create `{}`: {error}", log.display()))?;
        let errors = file.try_clone().map_err(|error| format!("cannot open `{}`: {error}", log.display()))?;
        let child = Command::new("nsenter")
            .arg(crate::enter(namespace))
            .args(["ping", "-D", "-O", "-n", "-i", "0.02", "-W", "1"])
            .arg(target.to_string())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(errors)
            .spawn()
            .map_err(|error| format!("cannot start ping in {namespace}: {error}"))?;
        Ok(Probe { label: label.to_string(), log: log.to_path_buf(), child })
    }

    /// Whether it has had an answer yet.
    pub fn answered(&self) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|text| text.contains("bytes from"))
    }

    /// The probe's timeline so far.
    pub fn series(&self) -> Series {
        Series::parse(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Interrupts ping (so it prints its summary) and waits for it, killing it if it lingers.
    pub fn stop(mut self) -> Series {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if std::time::Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        self.series()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // A probe left running by an error path: only this child, by its own handle.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One echo request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Request {
    pub sequence: u64,
    /// When it was sent, Unix seconds.
    pub sent: f64,
    pub answered: bool,
}

/// A probe's requests in sequence order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub requests: Vec<Request>,
}

impl Series {
    pub fn parse(text: &str) -> Series {
        // sequence → (known send time, answered)
        let mut known: BTreeMap<u64, (Option<f64>, bool)> = BTreeMap::new();
        let mut last_raw: Option<u64> = None;
        let mut wraps = 0u64;
        let mut transmitted: Option<u64> = None;
        for line in text.lines() {
            if let Some(count) = line.split(" packets transmitted").next().filter(|_| line.contains(" packets transmitted")) {
                transmitted = count.trim().parse().ok();
                continue;
            }
            let Some(raw) = field(line, "icmp_seq=").and_then(|value| value.parse::<u64>().ok()) else { continue };
            // ping counts in 16 bits.
            if last_raw.is_some_and(|last| raw + 30_000 < last) {
                wraps += 1;
            }
            last_raw = Some(raw);
            let sequence = raw + wraps * 65_536;
            let stamp = line.strip_prefix('[').and_then(|rest| rest.split(']').next()).and_then(|value| value.parse::<f64>().ok());
            let entry = known.entry(sequence).or_insert((None, false));
            if line.contains("bytes from") {
                if line.contains("DUP!") {
                    continue;
                }
                let round_trip = field(line, "time=").and_then(|value| value.parse::<f64>().ok()).unwrap_or(0.0) / 1000.0;
                entry.1 = true;
                if let Some(stamp) = stamp {
                    entry.0 = Some(stamp - round_trip);
                }
            } else if line.contains("no answer yet") {
                if entry.0.is_none() {
                    entry.0 = stamp.map(|stamp| stamp - INTERVAL);
                }
            } else if entry.0.is_none() {
                // An ICMP error (destination unreachable): it came back at about the send time.
                entry.0 = stamp;
            }
        }
        let last = known.keys().next_back().copied().unwrap_or(0).max(transmitted.unwrap_or(0));
        let first = known.keys().next().copied().unwrap_or(1).min(1);
        let anchors: Vec<(u64, f64)> = known.iter().filter_map(|(sequence, (sent, _))| sent.map(|sent| (*sequence, sent))).collect();
        let mut requests = Vec::new();
        for sequence in first.max(1)..=last {
            let answered = known.get(&sequence).is_some_and(|(_, answered)| *answered);
            let sent = known.get(&sequence).and_then(|(sent, _)| *sent).or_else(|| interpolate(&anchors, sequence));
            if let Some(sent) = sent {
                requests.push(Request { sequence, sent, answered });
            }
        }
        Series { requests }
    }

    /// Requests sent in `[start, end)` and how many went unanswered, and the longest run of
    /// unanswered ones, in requests.
    pub fn loss_between(&self, start: f64, end: f64) -> (usize, usize, usize) {
        let (mut sent, mut lost, mut run, mut longest) = (0, 0, 0, 0);
        for request in self.requests.iter().filter(|request| request.sent >= start && request.sent < end) {
            sent += 1;
            if request.answered {
                run = 0;
            } else {
                lost += 1;
                run += 1;
                longest = longest.max(run);
            }
        }
        (sent, lost, longest)
    }

    /// Whether every request sent in the last `window` seconds before `now` was answered (a
    /// request younger than ping's one-second wait may still be answered, so it is left out).
    pub fn healthy_until(&self, now: f64, window: f64) -> bool {
        let recent: Vec<&Request> =
            self.requests.iter().filter(|request| request.sent >= now - window - 1.0 && request.sent < now - 1.0).collect();
        !recent.is_empty() && recent.iter().all(|request| request.answered)
    }
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(key)? + key.len();
    line[start..].split_whitespace().next()
}

/// A send time for a request between two known ones (or beyond the last, at the interval).
fn interpolate(anchors: &[(u64, f64)], sequence: u64) -> Option<f64> {
    let after = anchors.partition_point(|(known, _)| *known < sequence);
    match (after.checked_sub(1).map(|index| anchors[index]), anchors.get(after)) {
        (Some((a, ta)), Some((b, tb))) => Some(ta + (tb - ta) * (sequence - a) as f64 / (b - a) as f64),
        (Some((a, ta)), None) => Some(ta + (sequence - a) as f64 * INTERVAL),
        (None, Some((b, tb))) => Some(tb - (b - sequence) as f64 * INTERVAL),
        (None, None) => None,
    }
}

/// Now, on ping's clock.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "PING 192.168.1.1 (192.168.1.1) 56(84) bytes of data.
[100.000] 64 bytes from 192.168.1.1: icmp_seq=1 ttl=63 time=0.100 ms
[100.020] 64 bytes from 192.168.1.1: icmp_seq=2 ttl=63 time=0.100 ms
[100.060] no answer yet for icmp_seq=3
ping: sendmsg: Network is unreachable
[100.100] no answer yet for icmp_seq=5
[100.120] 64 bytes from 192.168.1.1: icmp_seq=6 ttl=63 time=0.100 ms

--- 192.168.1.1 ping statistics ---
7 packets transmitted, 3 received, 57.1429% packet loss, time 120ms
";

    #[test]
    fn unanswered_requests_are_placed_in_time() {
        let series = Series::parse(LOG);
        let sequences: Vec<(u64, bool)> = series.requests.iter().map(|request| (request.sequence, request.answered)).collect();
        assert_eq!(sequences, [(1, true), (2, true), (3, false), (4, false), (5, false), (6, true), (7, false)]);
        let fourth = series.requests[3].sent;
        assert!((fourth - 100.06).abs() < 0.001, "{fourth}");
        assert_eq!(series.loss_between(100.03, 100.1), (3, 3, 3));
        assert_eq!(series.loss_between(99.0, 100.03), (2, 0, 0));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let log = "[1.0] 64 bytes from x: icmp_seq=65535 ttl=1 time=0 ms\n[1.02] 64 bytes from x: icmp_seq=0 ttl=1 time=0 ms\n";
        let series = Series::parse(log);
        assert_eq!(series.requests.last().map(|request| request.sequence), Some(65_536));
        assert!(
            series.requests.iter().filter(|request| request.sequence > 1 && request.sequence < 65_535).all(|request| !request.answered)
        );
    }
}
