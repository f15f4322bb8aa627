//! A small etcd v3 client over etcd's JSON gateway (`POST /v3/kv/range`, `/v3/kv/put`,
//! `/v3/kv/txn`, `/v3/kv/deleterange`; keys and values base64), for Calico's etcdv3 layout.
//!
//! Writes follow calicoctl's semantics (libcalico-go's `backend/etcdv3`), so a concurrent
//! change is detected, never overwritten: create is a transaction on `version == 0`, update
//! and delete on `mod_revision == <the revision read>`. A failed compare returns
//! [`EtcdError::Conflict`] with the key's current value, read in the same transaction.
//!
//! It speaks to etcd as production runs it: `etcds://` is TLS with the server's certificate
//! verified against the given CA (or the system's roots) and, where etcd asks for one, a client
//! certificate; several endpoints are tried in order, the next one only when the current one
//! cannot be connected to (a request that reached etcd is never sent twice); user and password
//! are exchanged for a token through etcd's auth API (`/v3/auth/authenticate`). Where the
//! addresses, certificates and credentials come from (calicoctl's configuration) is
//! [`crate::calicoctl_config`]'s business.
//!
//! This is the edge: the only network code in calplan. Every request has a timeout, every
//! error names `HOST:PORT`, and credentials appear in no address, no error and no log:
//! `etcd://user:pass@…` is refused, the password and the token are never formatted. It trusts
//! an endpoint no further than it must: a redirect is refused, not followed (the next hop could
//! be anything); an answer without etcd's response header (`header.cluster_id`,
//! `header.revision`) is not etcd, and is refused rather than read as an empty datastore, whose
//! plan would recreate everything; and an error repeats at most etcd's own reason, shortened
//! and without control characters, never a body another server sent.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use calplan_plan::current::etcd_layout::{self, KeyValue, Snapshot};
use serde_json::{Value, json};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long one request may take, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys per range request: Calico's clusters hold one key per block and per endpoint, so a
/// large one is read in pages rather than one answer of unbounded size.
const PAGE: u64 = 1000;

/// Where the system's root certificates are, for `etcds://` without a CA of its own (Go's
/// `crypto/x509`, which calicoctl uses, looks in the same places).
const SYSTEM_ROOTS: [&str; 3] = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem"];

/// One etcd member's client address, validated.
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
    /// Parses `etcd://HOST:PORT` (a trailing `/` is allowed), one endpoint in plain HTTP.
    pub fn parse(source: &str) -> Result<Endpoint, EtcdError> {
        let address = Address::parse(source)?;
        match (address.tls, address.endpoints.as_slice()) {
            (false, [endpoint]) => Ok(endpoint.clone()),
            _ => Err(EtcdError::BadAddress { address: masked(source), reason: "expected one `etcd://HOST:PORT`".into() }),
        }
    }

    /// `HOST:PORT`: the port is required, as etcd's client port differs between installs
    /// (2379 upstream, 6666 in some Calico manifests).
    fn parse_host_port(text: &str, whole: &str) -> Result<Endpoint, EtcdError> {
        let bad = |reason: &str| EtcdError::BadAddress { address: masked(whole), reason: reason.to_string() };
        let text = text.strip_suffix('/').unwrap_or(text);
        if text.contains('@') {
            return Err(bad("credentials do not belong in the address; give them in calicoctl's configuration"));
        }
        if text.contains(['/', '?', '#']) {
            return Err(bad("expected only `HOST:PORT`, no path or query"));
        }
        let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
            let Some((host, port)) = bracketed.split_once("]:") else {
                return Err(bad("expected `[IPv6]:PORT`"));
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!("`{host}` is not an IPv6 address")));
            }
            (host, port)
        } else {
            let Some((host, port)) = text.rsplit_once(':') else {
                return Err(bad(&format!("the port is missing from `{text}`: expected `HOST:PORT`")));
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
}

/// `etcd://HOST:PORT[,HOST:PORT…]` (plain HTTP) or `etcds://…` (TLS): the members to try, in
/// order. Displayed in that canonical form, which is how plans name the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub tls: bool,
    pub endpoints: Vec<Endpoint>,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoints: Vec<String> = self.endpoints.iter().map(Endpoint::to_string).collect();
        write!(f, "{}://{}", if self.tls { "etcds" } else { "etcd" }, endpoints.join(","))
    }
}

impl Address {
    /// Parses calplan's own form, `etcd://` or `etcds://` and one or more `HOST:PORT`.
    pub fn parse(source: &str) -> Result<Address, EtcdError> {
        let bad = |reason: &str| EtcdError::BadAddress { address: masked(source), reason: reason.to_string() };
        let (tls, rest) = if let Some(rest) = source.strip_prefix("etcds://") {
            (true, rest)
        } else if let Some(rest) = source.strip_prefix("etcd://") {
            (false, rest)
        } else {
            return Err(bad("expected `etcd://HOST:PORT` or `etcds://HOST:PORT[,HOST:PORT…]`"));
        };
        let endpoints = rest.split(',').map(|part| Endpoint::parse_host_port(part.trim(), source)).collect::<Result<Vec<_>, _>>()?;
        Address::new(tls, endpoints).map_err(|reason| bad(&reason))
    }

    /// Parses calicoctl's `etcdEndpoints` / `ETCD_ENDPOINTS`: URLs separated by commas, all
    /// `http://` or all `https://`.
    pub fn parse_calicoctl(list: &str) -> Result<Address, EtcdError> {
        let bad = |reason: &str| EtcdError::BadAddress { address: masked(list), reason: reason.to_string() };
        let mut tls = None;
        let mut endpoints = Vec::new();
        for url in list.split(',').map(str::trim).filter(|url| !url.is_empty()) {
            let (secure, rest) = if let Some(rest) = url.strip_prefix("https://") {
                (true, rest)
            } else if let Some(rest) = url.strip_prefix("http://") {
                (false, rest)
            } else {
                return Err(bad(&format!("`{}` does not start with `http://` or `https://`", masked(url))));
            };
            if *tls.get_or_insert(secure) != secure {
                return Err(bad("the endpoints mix `http://` and `https://`"));
            }
            endpoints.push(Endpoint::parse_host_port(rest, list)?);
        }
        Address::new(tls.unwrap_or(false), endpoints).map_err(|reason| bad(&reason))
    }

    fn new(tls: bool, endpoints: Vec<Endpoint>) -> Result<Address, String> {
        if endpoints.is_empty() {
            return Err("no endpoint given".into());
        }
        if let Some(twice) = endpoints.iter().enumerate().find(|(index, endpoint)| endpoints[..*index].contains(endpoint)) {
            return Err(format!("`{}` is given twice", twice.1));
        }
        Ok(Address { tls, endpoints })
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

/// PEM text and where it came from (a file's path, or a field of calicoctl's configuration),
/// for messages.
#[derive(Clone)]
pub struct Pem {
    pub origin: String,
    pub text: Vec<u8>,
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A private key's text is never printed, not even in a debug dump.
        write!(f, "Pem({})", self.origin)
    }
}

/// A user and password for etcd's auth API; the password is never formatted.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: String, password: String) -> Credentials {
        Credentials { username, password }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, password redacted)", self.username)
    }
}

/// What an `etcds://` connection needs beyond the addresses, and the credentials either kind
/// may use.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// The CA that signed etcd's server certificates; the system's roots when absent.
    pub ca: Option<Pem>,
    /// The client certificate (chain) and its key, for etcd's `--client-cert-auth`.
    pub cert: Option<Pem>,
    pub key: Option<Pem>,
    pub credentials: Option<Credentials>,
}

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// `address` has any credentials in it masked.
    #[error("`{address}` is not an etcd address: {reason}")]
    BadAddress { address: String, reason: String },
    /// A certificate, key or CA cannot be used; `origin` names the file or field.
    #[error("cannot use {origin} for etcd: {reason}")]
    BadTls { origin: String, reason: String },
    #[error("cannot reach etcd at {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    /// The TLS handshake failed: the message says which side refused and why.
    #[error("TLS with etcd at {endpoint} failed: {message}")]
    Tls { endpoint: String, message: String },
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
    address: Address,
    agent: ureq::Agent,
    /// The endpoint that answered last: requests start there.
    active: AtomicUsize,
    credentials: Option<Credentials>,
    /// Whether a client certificate is offered, for what a closed TLS connection likely means.
    client_certificate: bool,
    /// etcd's auth token, once authenticated; renewed when etcd says it expired.
    token: Mutex<Option<String>>,
}

/// Why one endpoint could not serve a request.
enum Failure {
    /// The connection could not be made: the request never reached etcd, so the next
    /// endpoint may be asked.
    Connect(EtcdError),
    /// Anything else: final, as the request may have reached etcd.
    Final(EtcdError),
}

impl Client {
    /// Plain HTTP to one endpoint, without credentials.
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Client {
        let address = Address { tls: false, endpoints: vec![endpoint] };
        Client::connect(address, &Security::default(), timeout).expect("plain HTTP needs no certificates")
    }

    /// A client for these members, with TLS (for `etcds://`) and credentials as `security`
    /// says. Certificates and keys are checked here, before any request.
    pub fn connect(address: Address, security: &Security, timeout: Duration) -> Result<Client, EtcdError> {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout))
            // etcd's own error answers carry the reason; read them rather than fail on status.
            .http_status_as_error(false)
            // etcd never redirects; an answer that does is not etcd's.
            .max_redirects(0)
            // etcd must never be reached through an `HTTP_PROXY` from the environment.
            .proxy(None);
        if address.tls {
            config = config.tls_config(tls_config(security)?).https_only(true);
        }
        Ok(Client {
            address,
            agent: config.build().new_agent(),
            active: AtomicUsize::new(0),
            credentials: security.credentials.clone(),
            client_certificate: security.cert.is_some(),
            token: Mutex::new(None),
        })
    }

    /// The endpoint that answered last (the first until one fails).
    pub fn endpoint(&self) -> &Endpoint {
        &self.address.endpoints[self.active.load(Ordering::Relaxed) % self.address.endpoints.len()]
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    fn url(&self, endpoint: &Endpoint, path: &str) -> String {
        format!("{}://{endpoint}{path}", if self.address.tls { "https" } else { "http" })
    }

    /// Sends a request to the active endpoint, moving on to the next ones while connections
    /// fail; the first that answers becomes the active one.
    fn with_failover<T>(&self, mut attempt: impl FnMut(&Endpoint) -> Result<T, Failure>) -> Result<T, EtcdError> {
        let count = self.address.endpoints.len();
        let first = self.active.load(Ordering::Relaxed) % count;
        let mut failures = Vec::new();
        for offset in 0..count {
            let index = (first + offset) % count;
            match attempt(&self.address.endpoints[index]) {
                Ok(value) => {
                    self.active.store(index, Ordering::Relaxed);
                    return Ok(value);
                }
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::Connect(error)) => failures.push(error),
            }
        }
        if failures.len() == 1 {
            return Err(failures.remove(0));
        }
        let each: Vec<String> = failures
            .iter()
            .map(|failure| match failure {
                EtcdError::Unreachable { endpoint, message } => format!("{endpoint}: {message}"),
                other => other.to_string(),
            })
            .collect();
        Err(EtcdError::Unreachable { endpoint: format!("any of its {count} endpoints"), message: each.join("; ") })
    }

    /// One POST to one endpoint: the status and the body as JSON.
    fn post(&self, endpoint: &Endpoint, path: &str, body: &Value, token: Option<&str>) -> Result<(u16, Value), Failure> {
        let name = endpoint.to_string();
        let mut request = self.agent.post(self.url(endpoint, path)).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let mut response = request.send(body.to_string()).map_err(|error| self.classify(&name, error))?;
        let status = response.status().as_u16();
        let malformed = |message: String| EtcdError::Malformed { endpoint: name.clone(), path: path.to_string(), message };
        if (300..400).contains(&status) {
            return Err(Failure::Final(malformed(format!(
                "HTTP {status}, a redirect: calplan does not follow redirects from an etcd endpoint; give etcd's own address"
            ))));
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_string()
            .map_err(|error| Failure::Final(self.transport_error(&name, error)))?;
        let value: Value = serde_json::from_str(&text).map_err(|_| {
            Failure::Final(malformed(format!("HTTP {status} with {} bytes that are not JSON: not etcd's JSON gateway", text.len())))
        })?;
        Ok((status, value))
    }

    /// etcd's auth token for this endpoint's cluster, asking for one when there is none.
    fn token(&self, endpoint: &Endpoint, renew: bool) -> Result<Option<String>, Failure> {
        let Some(credentials) = &self.credentials else { return Ok(None) };
        let mut token = self.token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if renew {
            *token = None;
        }
        if let Some(token) = token.as_ref() {
            return Ok(Some(token.clone()));
        }
        let body = json!({ "name": credentials.username, "password": credentials.password });
        let (status, answer) = self.post(endpoint, "/v3/auth/authenticate", &body, None)?;
        if !(200..300).contains(&status) {
            let reason = etcd_message(&answer);
            return Err(Failure::Final(EtcdError::Refused {
                endpoint: endpoint.to_string(),
                path: "/v3/auth/authenticate".into(),
                status,
                message: format!("etcd did not accept the user `{}` and its password: {reason}", credentials.username),
            }));
        }
        let Some(issued) = answer.get("token").and_then(Value::as_str).filter(|token| !token.is_empty()) else {
            return Err(Failure::Final(EtcdError::Malformed {
                endpoint: endpoint.to_string(),
                path: "/v3/auth/authenticate".into(),
                message: "no token in the answer (is authentication enabled on etcd?)".into(),
            }));
        };
        *token = Some(issued.to_string());
        Ok(token.clone())
    }

    fn call(&self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        self.with_failover(|endpoint| {
            let mut renewed = false;
            loop {
                let token = self.token(endpoint, false)?;
                let (status, value) = self.post(endpoint, path, body, token.as_deref())?;
                if (200..300).contains(&status) {
                    return etcd_answer(endpoint, path, value);
                }
                let message = etcd_message(&value);
                // A token expires (five minutes by default with simple tokens): ask once more.
                if token.is_some() && !renewed && status == 401 && message.contains("token") {
                    self.token(endpoint, true)?;
                    renewed = true;
                    continue;
                }
                let message = match (status, &self.credentials) {
                    (400 | 401 | 403, None) if message.contains("user name") || message.contains("token") => format!(
                        "{message} (etcd has authentication on: give `ETCD_USERNAME`/`ETCD_PASSWORD` or \
                         `etcdUsername`/`etcdPassword` in calicoctl's configuration)"
                    ),
                    _ => message,
                };
                return Err(Failure::Final(EtcdError::Refused { endpoint: endpoint.to_string(), path: path.to_string(), status, message }));
            }
        })
    }

    /// Sorts a failed request: could it not connect (the next endpoint may be tried), or is it final?
    fn classify(&self, endpoint: &str, error: ureq::Error) -> Failure {
        let connect = match &error {
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed => true,
            ureq::Error::Io(io) => matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
                    | std::io::ErrorKind::AddrNotAvailable
            ),
            _ => false,
        };
        let error = self.transport_error(endpoint, error);
        if connect { Failure::Connect(error) } else { Failure::Final(error) }
    }

    /// A transport error in words: TLS failures say which side refused and what to check.
    fn transport_error(&self, endpoint: &str, error: ureq::Error) -> EtcdError {
        let tls = |message: String| EtcdError::Tls { endpoint: endpoint.to_string(), message };
        match error {
            ureq::Error::Rustls(error) => tls(describe_tls(&error)),
            ureq::Error::Io(io) if io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).is_some() => {
                let inner = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).expect("checked above");
                tls(describe_tls(inner))
            }
            ureq::Error::Timeout(which) => {
                EtcdError::Unreachable { endpoint: endpoint.to_string(), message: format!("timed out ({which})") }
            }
            ureq::Error::Io(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                EtcdError::Unreachable { endpoint: endpoint.to_string(), message: "connection refused (is etcd listening there?)".into() }
            }
            ureq::Error::HostNotFound => {
                EtcdError::Unreachable { endpoint: endpoint.to_string(), message: "the host name does not resolve".into() }
            }
            // TLS 1.3 finishes the client's side of the handshake before the server judges the
            // client's certificate: a refusal shows as the connection closing on the request.
            ureq::Error::Io(error)
                if self.address.tls
                    && matches!(
                        error.kind(),
                        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                    ) =>
            {
                tls(if self.client_certificate {
                    format!(
                        "etcd closed the connection during TLS ({error}): it does not accept calplan's client certificate; check that \
                         the CA etcd trusts (`--trusted-ca-file`) signed `ETCD_CERT_FILE` / `etcdCertFile`"
                    )
                } else {
                    format!(
                        "etcd closed the connection during TLS ({error}): it requires a client certificate its CA signed; give \
                         `ETCD_CERT_FILE` and `ETCD_KEY_FILE` (or `etcdCertFile`/`etcdKeyFile` in calicoctl's configuration)"
                    )
                })
            }
            // Plain HTTP to a TLS port: etcd answers with a TLS alert, a 400, or (under load) a
            // reset connection.
            ureq::Error::Io(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::InvalidData
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                EtcdError::Unreachable {
                    endpoint: endpoint.to_string(),
                    message: format!("{error} (if etcd serves TLS there, the address is `etcds://…`)"),
                }
            }
            other => EtcdError::Unreachable { endpoint: endpoint.to_string(), message: other.to_string() },
        }
    }

    /// Whether etcd answers and has a leader (`GET /health`).
    pub fn health(&self) -> Result<(), EtcdError> {
        self.with_failover(|endpoint| {
            let name = endpoint.to_string();
            let mut response = self.agent.get(self.url(endpoint, "/health")).call().map_err(|error| self.classify(&name, error))?;
            let text = response.body_mut().read_to_string().map_err(|error| Failure::Final(self.transport_error(&name, error)))?;
            let healthy = serde_json::from_str::<Value>(&text).ok().and_then(|value| value.get("health").cloned());
            match healthy {
                Some(Value::String(health)) if health == "true" => Ok(()),
                Some(_) => Err(Failure::Final(EtcdError::Unreachable {
                    endpoint: name,
                    message: "not healthy: `/health` does not say `true`".into(),
                })),
                None => {
                    Err(Failure::Final(EtcdError::Unreachable { endpoint: name, message: "`/health` did not answer as etcd does".into() }))
                }
            }
        })
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
        Err(EtcdError::Conflict { endpoint: self.endpoint().to_string(), key: key.to_string(), current })
    }

    fn key_values(&self, kvs: &Value, path: &str) -> Result<Vec<KeyValue>, EtcdError> {
        let malformed = |message: String| EtcdError::Malformed { endpoint: self.endpoint().to_string(), path: path.to_string(), message };
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

/// The reason etcd gave in an error answer.
/// etcd's reason for refusing a request, as calplan repeats it: without control characters (a
/// terminal would act on them) and at most 200 characters, since the answer may not be etcd's.
fn etcd_message(value: &Value) -> String {
    let message = value.get("message").or_else(|| value.get("error")).and_then(Value::as_str).unwrap_or("no reason given");
    let kept: String = message.chars().filter(|c| !c.is_control()).collect();
    match kept.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &kept[..end]),
        None => kept,
    }
}

/// A successful answer, if it is etcd's: every answer of etcd's v3 API carries a header with
/// the cluster's ID and the store's revision (the gateway writes 64-bit numbers as decimal
/// strings; a cluster ID is a u64). Without it the server is something else, and reading its
/// `{}` as a datastore without keys would plan to recreate every resource.
fn etcd_answer(endpoint: &Endpoint, path: &str, value: Value) -> Result<Value, Failure> {
    let header = &value["header"];
    let cluster_id = match &header["cluster_id"] {
        Value::String(text) => text.parse::<u64>().unwrap_or(0),
        Value::Number(number) => number.as_u64().unwrap_or(0),
        _ => 0,
    };
    if cluster_id == 0 || int(&header["revision"]) == 0 {
        return Err(Failure::Final(EtcdError::Malformed {
            endpoint: endpoint.to_string(),
            path: path.to_string(),
            message: "the answer has no etcd response header (`header.cluster_id` and `header.revision`): this is not etcd's v3 API, \
                      and calplan will not read it as an empty datastore"
                .into(),
        }));
    }
    Ok(value)
}

/// rustls's verdict in an operator's words.
fn describe_tls(error: &rustls::Error) -> String {
    use rustls::{AlertDescription, CertificateError};
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => format!(
            "etcd's server certificate is not signed by the CA calplan was given ({error}); check `ETCD_CA_CERT_FILE` / `etcdCACertFile`"
        ),
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }) => {
            format!("etcd's server certificate does not name the host calplan connected to ({error})")
        }
        rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            format!("etcd's server certificate has expired ({error})")
        }
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired | AlertDescription::BadCertificate | AlertDescription::HandshakeFailure,
        ) => format!(
            "etcd refused the connection: it requires a client certificate its CA signed ({error}); give `ETCD_CERT_FILE` and \
             `ETCD_KEY_FILE` (or `etcdCertFile`/`etcdKeyFile` in calicoctl's configuration)"
        ),
        rustls::Error::AlertReceived(AlertDescription::UnknownCA) => format!(
            "etcd does not trust calplan's client certificate: its CA did not sign it ({error}); check `ETCD_CERT_FILE` / `etcdCertFile`"
        ),
        other => other.to_string(),
    }
}

/// ureq's TLS settings for `security`: rustls on ring, the given CA or the system's roots,
/// the client certificate and key when given. Each file is checked here, and named when bad.
fn tls_config(security: &Security) -> Result<ureq::tls::TlsConfig, EtcdError> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig, TlsProvider};
    let bad = |pem: &Pem, reason: String| EtcdError::BadTls { origin: pem.origin.clone(), reason };
    let certificates = |pem: &Pem| -> Result<Vec<Certificate<'static>>, EtcdError> {
        let mut found = Vec::new();
        for item in ureq::tls::parse_pem(&pem.text) {
            match item {
                Ok(PemItem::Certificate(certificate)) => found.push(certificate),
                Ok(_) => {}
                Err(error) => return Err(bad(pem, format!("not PEM: {error}"))),
            }
        }
        if found.is_empty() {
            return Err(bad(pem, "holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".into()));
        }
        Ok(found)
    };
    let client = match (&security.cert, &security.key) {
        (None, None) => None,
        (Some(cert), None) => return Err(bad(cert, "a client certificate needs its key (`ETCD_KEY_FILE` or `etcdKeyFile`)".into())),
        (None, Some(key)) => return Err(bad(key, "a client key needs its certificate (`ETCD_CERT_FILE` or `etcdCertFile`)".into())),
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            // Never echo the key's text: the parser's error is enough.
            let private =
                PrivateKey::from_pem(&key.text).map_err(|_| bad(key, "holds no PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)".into()))?;
            Some(ClientCert::new_with_certs(&chain, private))
        }
    };
    let roots = match &security.ca {
        Some(ca) => certificates(ca)?,
        None => {
            let Some((path, text)) = SYSTEM_ROOTS.iter().find_map(|path| std::fs::read(path).ok().map(|text| (*path, text))) else {
                return Err(EtcdError::BadTls {
                    origin: "the system's root certificates".into(),
                    reason: "none found; give the CA that signed etcd's certificate (`ETCD_CA_CERT_FILE` or `etcdCACertFile`)".into(),
                });
            };
            certificates(&Pem { origin: format!("`{path}`"), text })?
        }
    };
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::new_with_certs(&roots))
        .client_cert(client)
        .build())
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
    fn several_endpoints_and_tls_are_written_as_calicoctl_writes_them() {
        let address = Address::parse("etcds://10.0.0.1:2379, etcd-1.example:2379,[fd00::1]:2379").unwrap();
        assert!(address.tls);
        assert_eq!(address.to_string(), "etcds://10.0.0.1:2379,etcd-1.example:2379,[fd00::1]:2379");
        assert_eq!(Address::parse(&address.to_string()).unwrap(), address, "the canonical form reads back");
        let calicoctl = Address::parse_calicoctl("https://10.0.0.1:2379,https://10.0.0.2:2379/").unwrap();
        assert_eq!(calicoctl.to_string(), "etcds://10.0.0.1:2379,10.0.0.2:2379");
        assert!(!Address::parse_calicoctl("http://127.0.0.1:2379").unwrap().tls);
        for bad in ["http://a:1,https://b:2", "10.0.0.1:2379", "https://user:pw@a:1", ""] {
            let error = Address::parse_calicoctl(bad).unwrap_err().to_string();
            assert!(!error.contains("pw"), "{error}");
        }
        for bad in ["etcds://", "etcds://a:1,a:1", "etcds://a:1,,b:2", "etcds://a"] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
        assert!(Endpoint::parse("etcds://a:1").is_err(), "one plain endpoint only");
    }

    #[test]
    fn secrets_are_not_formatted() {
        let credentials = Credentials::new("calico".into(), "hunter2".into());
        assert!(!format!("{credentials:?}").contains("hunter2"));
        let key = Pem { origin: "`key.pem`".into(), text: b"-----BEGIN PRIVATE KEY-----\nsecret".to_vec() };
        assert!(!format!("{key:?}").contains("secret"));
        let security = Security { key: Some(key.clone()), cert: None, ..Security::default() };
        let error = tls_config(&security).unwrap_err().to_string();
        assert!(error.contains("key.pem") && !error.contains("secret"), "{error}");
    }

    #[test]
    fn prefix_ends_increment_the_last_byte() {
        assert_eq!(prefix_end(b"/calico/"), b"/calico0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }
}
