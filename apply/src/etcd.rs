//! A small etcd v3 client over etcd's JSON gateway (`POST /v3/kv/range`, `/v3/kv/put`,
//! `/v3/kv/txn`, `/v3/kv/deleterange`; keys and values base64), for Calico's etcdv3 layout.
//!
//! Writes follow calicoctl's semantics (libcalico-go's `backend/etcdv3`), so a concurrent
//! change is detected, never overwritten: create is a transaction on `version == 0`, update
//! and delete on `mod_revision == <the revision read>`. A failed compare returns
//! [`EtcdError::Conflict`] with the key's current value, read in the same transaction.
//!
//! This is the edge: the only network code in calplan. It talks plain HTTP (no TLS) to one
//! endpoint, with a timeout on every request, names `HOST:PORT` in every error, and never
//! puts credentials in an address: `etcd://user:pass@…` is refused. What the keys mean is
//! `calplan_plan::current::etcd_layout`'s business, not this module's.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use calplan_plan::current::etcd_layout::{self, KeyValue, Snapshot};
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;

/// How long one request may take, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys per range request: Calico's clusters hold one key per block and per endpoint, so a
/// large one is read in pages rather than one answer of unbounded size.
const PAGE: u64 = 1000;

/// `etcd://HOST:PORT`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// A DNS name, an IPv4 address, or an IPv6 address (without brackets).
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') { write!(f, "[{}]:{}", self.host, self.port) } else { write!(f, "{}:{}", self.host, self.port) }
    }
}

impl Endpoint {
    /// Parses `etcd://HOST:PORT` (a trailing `/` is allowed). The port is required: etcd's
    /// client port differs between installs (2379 upstream, 6666 in some Calico manifests).
    pub fn parse(source: &str) -> Result<Endpoint, EtcdError> {
        let bad = |reason: &str| EtcdError::BadAddress { address: masked(source), reason: reason.to_string() };
        let Some(rest) = source.strip_prefix("etcd://") else {
            return Err(bad("expected `etcd://HOST:PORT`"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(bad("credentials do not belong in the address; calplan reads etcd without them"));
        }
        if rest.contains(['/', '?', '#']) {
            return Err(bad("expected only `HOST:PORT` after `etcd://`, no path or query"));
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let Some((host, port)) = bracketed.split_once("]:") else {
                return Err(bad("expected `[IPv6]:PORT`"));
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!("`{host}` is not an IPv6 address")));
            }
            (host, port)
        } else {
            let Some((host, port)) = rest.rsplit_once(':') else {
                return Err(bad("the port is missing: expected `etcd://HOST:PORT`"));
            };
            if host.contains(':') {
                return Err(bad("write an IPv6 address in brackets: `etcd://[::1]:2379`"));
            }
            if host.parse::<std::net::Ipv4Addr>().is_err() && !is_dns_name(host) {
                return Err(bad(&format!("`{host}` is not a host name or an IPv4 address")));
            }
            (host, port)
        };
        let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        let port = match port.parse::<u16>() {
            Ok(number) if number != 0 && digits => number,
            _ => return Err(bad(&format!("`{port}` is not a port (1–65535)"))),
        };
        Ok(Endpoint { host: host.to_string(), port })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{self}{path}")
    }
}

/// The address with any `user:password@` masked, so an error never repeats a secret.
fn masked(source: &str) -> String {
    match (source.find("://"), source.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &source[..scheme + 3], &source[at..])
        }
        _ => source.to_string(),
    }
}

/// A DNS host name: labels of letters, digits and hyphens, not starting or ending in one.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// `address` has any credentials in it masked.
    #[error("`{address}` is not an etcd address: {reason}")]
    BadAddress { address: String, reason: String },
    #[error("cannot reach etcd at {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("etcd at {endpoint} refused `{path}`: HTTP {status}: {message}")]
    Refused { endpoint: String, path: String, status: u16, message: String },
    #[error("etcd at {endpoint} sent an answer to `{path}` calplan cannot read: {message}")]
    Malformed { endpoint: String, path: String, message: String },
    /// A compare failed: someone else created, changed or deleted the key. `current` is the
    /// key as it is now (`None`: it does not exist).
    #[error("{}", conflict_message(endpoint, key, current.as_ref()))]
    Conflict { endpoint: String, key: String, current: Option<KeyValue> },
}

fn conflict_message(endpoint: &str, key: &str, current: Option<&KeyValue>) -> String {
    match current {
        Some(current) => format!(
            "`{key}` on etcd at {endpoint} changed since it was read: it is now at mod_revision {}; read the state again and plan anew",
            current.mod_revision
        ),
        None => format!("`{key}` on etcd at {endpoint} does not exist (any more); read the state again and plan anew"),
    }
}

/// What a range read returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// The store's revision the read was served at.
    pub revision: i64,
    pub pairs: Vec<KeyValue>,
}

pub struct Client {
    endpoint: Endpoint,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout))
            // etcd's own error answers carry the reason; read them rather than fail on status.
            .http_status_as_error(false)
            // Loopback etcd must never be reached through an `HTTP_PROXY` from the environment.
            .proxy(None)
            .build()
            .new_agent();
        Client { endpoint, agent }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn call(&self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let endpoint = self.endpoint.to_string();
        let unreachable = |error: ureq::Error| EtcdError::Unreachable { endpoint: endpoint.clone(), message: describe(&error) };
        let mut response = self
            .agent
            .post(self.endpoint.url(path))
            .header("content-type", "application/json")
            .send(body.to_string())
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(256 * 1024 * 1024).read_to_string().map_err(unreachable)?;
        let malformed = |message: String| EtcdError::Malformed { endpoint: endpoint.clone(), path: path.to_string(), message };
        let value: Value = serde_json::from_str(&text).map_err(|error| malformed(format!("{error}: {}", excerpt(&text))))?;
        if !(200..300).contains(&status) {
            let message = value.get("message").or_else(|| value.get("error")).and_then(Value::as_str).unwrap_or("no reason given");
            return Err(EtcdError::Refused { endpoint, path: path.to_string(), status, message: message.to_string() });
        }
        Ok(value)
    }

    /// Whether etcd answers and has a leader (`GET /health`).
    pub fn health(&self) -> Result<(), EtcdError> {
        let endpoint = self.endpoint.to_string();
        let unreachable = |error: ureq::Error| EtcdError::Unreachable { endpoint: endpoint.clone(), message: describe(&error) };
        let mut response = self.agent.get(self.endpoint.url("/health")).call().map_err(unreachable)?;
        let text = response.body_mut().read_to_string().map_err(unreachable)?;
        let healthy = serde_json::from_str::<Value>(&text).ok().and_then(|value| value.get("health").cloned());
        match healthy {
            Some(Value::String(health)) if health == "true" => Ok(()),
            _ => Err(EtcdError::Unreachable { endpoint, message: format!("not healthy: {}", excerpt(&text)) }),
        }
    }

    /// Every key under `prefix`, at `revision` (the latest when `None`), in key order.
    pub fn range_prefix(&self, prefix: &str, revision: Option<i64>) -> Result<Range, EtcdError> {
        let end = prefix_end(prefix.as_bytes());
        let mut start = prefix.as_bytes().to_vec();
        let mut pairs = Vec::new();
        let mut read_at = revision;
        loop {
            let mut body = json!({
                "key": BASE64_STANDARD.encode(&start),
                "range_end": BASE64_STANDARD.encode(&end),
                "limit": PAGE.to_string(),
            });
            if let Some(revision) = read_at {
                body["revision"] = Value::from(revision.to_string());
            }
            let answer = self.call("/v3/kv/range", &body)?;
            let header_revision = int(&answer["header"]["revision"]);
            // Later pages are read at the first page's revision, so the pages agree.
            let revision = *read_at.get_or_insert(header_revision);
            let page = self.key_values(&answer["kvs"], "/v3/kv/range")?;
            let more = answer.get("more").and_then(Value::as_bool).unwrap_or(false);
            if let Some(last) = page.last() {
                start = last.key.as_bytes().to_vec();
                start.push(0);
            }
            let empty = page.is_empty();
            pairs.extend(page);
            if !more || empty {
                return Ok(Range { revision, pairs });
            }
        }
    }

    /// One key, if it exists.
    pub fn get(&self, key: &str) -> Result<Option<KeyValue>, EtcdError> {
        let answer = self.call("/v3/kv/range", &json!({ "key": BASE64_STANDARD.encode(key) }))?;
        Ok(self.key_values(&answer["kvs"], "/v3/kv/range")?.into_iter().next())
    }

    /// Writes a key unconditionally and returns the new revision. calicoctl never does this
    /// for resources (it is what Felix does for its status reports); use [`Client::create`]
    /// and [`Client::update`] for anything another writer may touch.
    pub fn put(&self, key: &str, value: &[u8]) -> Result<i64, EtcdError> {
        let answer = self.call("/v3/kv/put", &json!({ "key": BASE64_STANDARD.encode(key), "value": BASE64_STANDARD.encode(value) }))?;
        Ok(int(&answer["header"]["revision"]))
    }

    /// Deletes every key under `prefix` unconditionally; returns how many went.
    pub fn delete_prefix(&self, prefix: &str) -> Result<i64, EtcdError> {
        let body = json!({ "key": BASE64_STANDARD.encode(prefix), "range_end": BASE64_STANDARD.encode(prefix_end(prefix.as_bytes())) });
        let answer = self.call("/v3/kv/deleterange", &body)?;
        Ok(int(&answer["deleted"]))
    }

    /// Creates a key that must not exist (`version == 0`), as calicoctl `create` does.
    /// Returns the revision of the write.
    pub fn create(&self, key: &str, value: &[u8]) -> Result<i64, EtcdError> {
        let compare = json!({ "key": BASE64_STANDARD.encode(key), "result": "EQUAL", "target": "VERSION", "version": "0" });
        self.transaction(
            key,
            compare,
            json!({ "request_put": { "key": BASE64_STANDARD.encode(key), "value": BASE64_STANDARD.encode(value) } }),
        )
    }

    /// Replaces a key only if it is still at `mod_revision`, as calicoctl `replace` and
    /// `apply` do with a resource's `resourceVersion`.
    pub fn update(&self, key: &str, value: &[u8], mod_revision: i64) -> Result<i64, EtcdError> {
        let compare =
            json!({ "key": BASE64_STANDARD.encode(key), "result": "EQUAL", "target": "MOD", "mod_revision": mod_revision.to_string() });
        self.transaction(
            key,
            compare,
            json!({ "request_put": { "key": BASE64_STANDARD.encode(key), "value": BASE64_STANDARD.encode(value) } }),
        )
    }

    /// Deletes a key only if it is still at `mod_revision`.
    pub fn delete(&self, key: &str, mod_revision: i64) -> Result<i64, EtcdError> {
        let compare =
            json!({ "key": BASE64_STANDARD.encode(key), "result": "EQUAL", "target": "MOD", "mod_revision": mod_revision.to_string() });
        self.transaction(key, compare, json!({ "request_delete_range": { "key": BASE64_STANDARD.encode(key) } }))
    }

    /// `If(compare) Then(success) Else(Get key)`: the else branch reads the key, so a conflict
    /// carries the value that won, from the same revision as the failed compare.
    fn transaction(&self, key: &str, compare: Value, success: Value) -> Result<i64, EtcdError> {
        let body = json!({
            "compare": [compare],
            "success": [success],
            "failure": [{ "request_range": { "key": BASE64_STANDARD.encode(key) } }],
        });
        let answer = self.call("/v3/kv/txn", &body)?;
        if answer.get("succeeded").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(int(&answer["header"]["revision"]));
        }
        let current = answer["responses"]
            .as_array()
            .and_then(|responses| responses.first())
            .map(|response| self.key_values(&response["response_range"]["kvs"], "/v3/kv/txn"))
            .transpose()?
            .and_then(|pairs| pairs.into_iter().next());
        Err(EtcdError::Conflict { endpoint: self.endpoint.to_string(), key: key.to_string(), current })
    }

    fn key_values(&self, kvs: &Value, path: &str) -> Result<Vec<KeyValue>, EtcdError> {
        let malformed = |message: String| EtcdError::Malformed { endpoint: self.endpoint.to_string(), path: path.to_string(), message };
        let Some(items) = kvs.as_array() else {
            // The gateway leaves out empty fields: no `kvs` is no keys.
            return if kvs.is_null() { Ok(Vec::new()) } else { Err(malformed("`kvs` is not a list".into())) };
        };
        items
            .iter()
            .map(|item| {
                let decode = |field: &str| match item.get(field).and_then(Value::as_str) {
                    Some(text) => BASE64_STANDARD.decode(text).map_err(|error| malformed(format!("`{field}` is not base64: {error}"))),
                    None => Ok(Vec::new()),
                };
                let key = String::from_utf8(decode("key")?).map_err(|_| malformed("a key is not UTF-8".into()))?;
                Ok(KeyValue {
                    key,
                    value: decode("value")?,
                    create_revision: int(&item["create_revision"]),
                    mod_revision: int(&item["mod_revision"]),
                })
            })
            .collect()
    }

    /// Calico's keys (the resources calplan plans, the endpoints, and IPAM), all read at one
    /// revision so they describe one moment of the cluster.
    pub fn calico_snapshot(&self) -> Result<Snapshot, EtcdError> {
        let mut revision = None;
        let mut pairs = Vec::new();
        let prefixes = etcd_layout::RESOURCE_PLURALS
            .iter()
            .map(|plural| format!("{}{plural}/", etcd_layout::RESOURCE_PREFIX))
            .chain(std::iter::once(etcd_layout::IPAM_PREFIX.to_string()));
        for prefix in prefixes {
            let range = self.range_prefix(&prefix, revision)?;
            revision.get_or_insert(range.revision);
            pairs.extend(range.pairs);
        }
        Ok(Snapshot::new(revision.unwrap_or(0), pairs))
    }
}

/// The end of a prefix range: the prefix with its last byte incremented (etcd's `WithPrefix`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff: to the end of the key space.
    vec![0]
}

/// The gateway writes int64 fields as strings and leaves out zeros.
fn int(value: &Value) -> i64 {
    match value {
        Value::String(text) => text.parse().unwrap_or(0),
        Value::Number(number) => number.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Timeout(which) => format!("timed out ({which})"),
        ureq::Error::Io(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is etcd listening there?)".into()
        }
        ureq::Error::HostNotFound => "the host name does not resolve".into(),
        other => other.to_string(),
    }
}

fn excerpt(text: &str) -> String {
    let mut excerpt: String = text.chars().take(200).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_validated() {
        let ok = |text: &str| Endpoint::parse(text).unwrap().to_string();
        assert_eq!(ok("etcd://127.0.0.1:2379"), "127.0.0.1:2379");
        assert_eq!(ok("etcd://etcd-0.calico.svc:6666/"), "etcd-0.calico.svc:6666");
        assert_eq!(ok("etcd://[::1]:2379"), "[::1]:2379");
        for bad in [
            "etcd://127.0.0.1",
            "etcd://127.0.0.1:0",
            "etcd://127.0.0.1:65536",
            "etcd://127.0.0.1:+80",
            "etcd://root:secret@127.0.0.1:2379",
            "etcd://127.0.0.1:2379/calico",
            "etcd://-bad-.host:2379",
            "etcd://::1:2379",
            "etcd://[nonsense]:2379",
            "etcd://a b:2379",
            "https://127.0.0.1:2379",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        let error = Endpoint::parse("etcd://root:secret@127.0.0.1:2379").unwrap_err().to_string();
        assert!(error.contains("credentials"), "{error}");
        assert!(!error.contains("secret"), "the password is not repeated: {error}");
    }

    #[test]
    fn prefix_ends_increment_the_last_byte() {
        assert_eq!(prefix_end(b"/calico/"), b"/calico0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }
}
