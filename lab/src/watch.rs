//! Watching the lab's etcd as confd and Felix do: etcd's watch API through its JSON gateway
//! (`POST /v3/watch`, a stream of JSON messages on one long-lived response), on every key
//! under `/calico/`. Each message that carries events sends its revision down a channel; the
//! calico-node emulation reads the datastore again at that revision or later. A broken stream
//! is opened again from the revision after the last one seen, so no change is missed.
//!
//! Only ever the lab's own etcd on loopback, in plain HTTP: apply's client
//! (`calplan_apply::etcd`) does every read and write; this is the one streaming call it lacks.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde_json::{Value, json};
use std::io::Read;
use std::sync::mpsc::Sender;
use std::time::Duration;

/// The keys a calico-node watches: everything Calico keeps.
pub const PREFIX: &str = "/calico/";

/// The end of the `/calico/` range (the prefix with its last byte incremented).
fn prefix_end() -> String {
    "/calico0".to_string()
}

/// Watches from `start_revision` on, for ever: every revision that changed a key under
/// [`PREFIX`] is sent on `changes`. Returns when the receiver is gone.
pub fn watch(port: u16, start_revision: i64, changes: Sender<i64>) {
    let agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent();
    let mut next = start_revision;
    loop {
        let body = json!({
            "create_request": {
                "key": BASE64_STANDARD.encode(PREFIX),
                "range_end": BASE64_STANDARD.encode(prefix_end()),
                "start_revision": next.to_string(),
            }
        });
        let response =
            agent.post(format!("http://127.0.0.1:{port}/v3/watch")).header("content-type", "application/json").send(body.to_string());
        match response {
            Ok(response) if response.status().is_success() => {
                let reader = response.into_body().into_reader();
                if !read_stream(reader, &mut next, &changes) {
                    return;
                }
            }
            Ok(response) => eprintln!("calico-node: etcd refused the watch: HTTP {}", response.status()),
            Err(error) => eprintln!("calico-node: cannot watch etcd: {error}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads one watch stream until it ends; `false` when the receiver is gone.
fn read_stream(reader: impl Read, next: &mut i64, changes: &Sender<i64>) -> bool {
    for message in serde_json::Deserializer::from_reader(reader).into_iter::<Value>() {
        let Ok(message) = message else { return true };
        let result = &message["result"];
        if result.get("canceled").and_then(Value::as_bool) == Some(true) {
            // Compacted past `next` (never in the lab, which does not compact): start over from now.
            eprintln!("calico-node: etcd cancelled the watch: {}", result["cancel_reason"]);
            *next = 0;
            return true;
        }
        let Some(events) = result.get("events").and_then(Value::as_array) else { continue };
        let revision =
            events.iter().filter_map(|event| int(&event["kv"]["mod_revision"])).max().or_else(|| int(&result["header"]["revision"]));
        if let Some(revision) = revision {
            *next = revision + 1;
            if changes.send(revision).is_err() {
                return false;
            }
        }
    }
    true
}

/// The gateway writes int64 fields as strings.
fn int(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_sends_each_revision_that_changed_keys() {
        let stream = br#"{"result":{"header":{"revision":"7"},"created":true}}
{"result":{"header":{"revision":"9"},"events":[{"kv":{"key":"L2NhbGljbw==","mod_revision":"8"}},{"kv":{"mod_revision":"9"}}]}}
{"result":{"header":{"revision":"12"},"events":[{"type":"DELETE","kv":{"mod_revision":"12"}}]}}
"#;
        let (sender, receiver) = std::sync::mpsc::channel();
        let mut next = 1;
        assert!(read_stream(&stream[..], &mut next, &sender));
        assert_eq!(receiver.try_iter().collect::<Vec<_>>(), [9, 12]);
        assert_eq!(next, 13);
    }
}
