//! calicoctl's own configuration, read as calicoctl reads it, so that an operator's existing
//! setup reaches etcd unchanged: `--calico-config FILE` (a `CalicoAPIConfig`, calicoctl's
//! `--config`), else `/etc/calico/calicoctl.cfg` when it exists, else the environment
//! (`ETCD_ENDPOINTS`, `ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`, `ETCD_KEY_FILE`, `ETCD_USERNAME`,
//! `ETCD_PASSWORD`, `DATASTORE_TYPE`, each also with calicoctl's `CALICO_` prefix, which wins).
//! Field and variable names follow libcalico-go's `apiconfig`.
//!
//! It answers one question: given a source (`etcd`, meaning the etcd the configuration names,
//! or an explicit `etcd://…`/`etcds://…`), which endpoints, certificates and credentials to use.
//! Files are read only when TLS needs them; the password is never formatted.

use crate::etcd::{Address, Client, Credentials, EtcdError, Pem, Security};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// calicoctl's default configuration file.
pub const DEFAULT_PATH: &str = "/etc/calico/calicoctl.cfg";

/// The word that names the etcd calicoctl's configuration points at, as a `--current` source
/// or a `--calico` backend.
pub const CONFIGURED_ETCD: &str = "etcd";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatastoreType {
    Etcdv3,
    Kubernetes,
}

/// What calicoctl's configuration says about etcd. Its `Debug` leaves the password out.
#[derive(Clone)]
pub struct CalicoctlConfig {
    /// Where it was read from, for messages: "`FILE`" or "the environment".
    pub origin: String,
    pub datastore: DatastoreType,
    endpoints: Option<String>,
    discovery_srv: Option<String>,
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    ca_inline: Option<String>,
    cert_inline: Option<String>,
    key_inline: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for CalicoctlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalicoctlConfig")
            .field("origin", &self.origin)
            .field("datastore", &self.datastore)
            .field("endpoints", &self.endpoints)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "redacted"))
            .finish_non_exhaustive()
    }
}

/// `CalicoAPIConfig` as calicoctl reads it (strictly: an unknown field is an error).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileConfig {
    api_version: Option<String>,
    kind: Option<String>,
    #[allow(dead_code)]
    metadata: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    spec: FileSpec,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileSpec {
    datastore_type: Option<String>,
    etcd_endpoints: Option<String>,
    etcd_discovery_srv: Option<String>,
    etcd_username: Option<String>,
    etcd_password: Option<String>,
    etcd_key_file: Option<String>,
    etcd_cert_file: Option<String>,
    #[serde(rename = "etcdCACertFile")]
    etcd_ca_cert_file: Option<String>,
    etcd_key: Option<String>,
    etcd_cert: Option<String>,
    #[serde(rename = "etcdCACert")]
    etcd_ca_cert: Option<String>,
    // The Kubernetes datastore's fields: accepted, as calicoctl accepts them, and unused.
    #[allow(dead_code)]
    kubeconfig: Option<serde::de::IgnoredAny>,
    #[serde(rename = "k8sAPIEndpoint")]
    #[allow(dead_code)]
    k8s_api_endpoint: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    k8s_key_file: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    k8s_cert_file: Option<serde::de::IgnoredAny>,
    #[serde(rename = "k8sCAFile")]
    #[allow(dead_code)]
    k8s_ca_file: Option<serde::de::IgnoredAny>,
    #[serde(rename = "k8sAPIToken")]
    #[allow(dead_code)]
    k8s_api_token: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    k8s_insecure_skip_tls_verify: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    k8s_disable_node_poll: Option<serde::de::IgnoredAny>,
    #[serde(rename = "usePodCIDR")]
    #[allow(dead_code)]
    use_pod_cidr: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    kubeconfig_inline: Option<serde::de::IgnoredAny>,
    #[serde(rename = "k8sClientQPS")]
    #[allow(dead_code)]
    k8s_client_qps: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    k8s_current_context: Option<serde::de::IgnoredAny>,
}

/// Reads calicoctl's configuration as calicoctl does: the named file (which must exist), else
/// the default file when it exists, else the environment.
pub fn load(explicit: Option<&Path>) -> Result<CalicoctlConfig, String> {
    let path = match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_PATH)).filter(|path| path.exists()),
    };
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|error| format!("cannot read calicoctl's configuration `{}`: {error}", path.display()))?;
            from_file_text(&path.display().to_string(), &text)
        }
        None => Ok(from_environment(|name| std::env::var(name).ok())),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

/// A `CalicoAPIConfig` file's text (YAML or JSON).
pub fn from_file_text(name: &str, text: &str) -> Result<CalicoctlConfig, String> {
    let file: FileConfig =
        serde_saphyr::from_str(text).map_err(|error| format!("calicoctl's configuration `{name}` cannot be read: {error}"))?;
    let problem = |what: String| Err(format!("calicoctl's configuration `{name}`: {what}"));
    match file.api_version.as_deref() {
        Some("projectcalico.org/v3") => {}
        other => return problem(format!("expected `apiVersion: projectcalico.org/v3`, found `{}`", other.unwrap_or(""))),
    }
    match file.kind.as_deref() {
        Some("CalicoAPIConfig") => {}
        other => return problem(format!("expected `kind: CalicoAPIConfig`, found `{}`", other.unwrap_or(""))),
    }
    let spec = file.spec;
    let config = CalicoctlConfig {
        origin: format!("`{name}`"),
        datastore: DatastoreType::Kubernetes,
        endpoints: non_empty(spec.etcd_endpoints),
        discovery_srv: non_empty(spec.etcd_discovery_srv),
        ca_file: non_empty(spec.etcd_ca_cert_file),
        cert_file: non_empty(spec.etcd_cert_file),
        key_file: non_empty(spec.etcd_key_file),
        ca_inline: non_empty(spec.etcd_ca_cert),
        cert_inline: non_empty(spec.etcd_cert),
        key_inline: non_empty(spec.etcd_key),
        username: non_empty(spec.etcd_username),
        password: non_empty(spec.etcd_password),
    };
    config.with_datastore(non_empty(spec.datastore_type).as_deref()).or_else(problem)
}

/// calicoctl's environment: each variable with the `CALICO_` prefix first, then without.
pub fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> CalicoctlConfig {
    let get = |name: &str| non_empty(lookup(&format!("CALICO_{name}"))).or_else(|| non_empty(lookup(name)));
    let config = CalicoctlConfig {
        origin: "the environment".into(),
        datastore: DatastoreType::Kubernetes,
        endpoints: get("ETCD_ENDPOINTS"),
        discovery_srv: get("ETCD_DISCOVERY_SRV"),
        ca_file: get("ETCD_CA_CERT_FILE"),
        cert_file: get("ETCD_CERT_FILE"),
        key_file: get("ETCD_KEY_FILE"),
        ca_inline: None,
        cert_inline: None,
        key_inline: None,
        username: get("ETCD_USERNAME"),
        password: get("ETCD_PASSWORD"),
    };
    let datastore = get("DATASTORE_TYPE");
    // An unknown type is reported when etcd is asked for, naming the variable.
    config.clone().with_datastore(datastore.as_deref()).unwrap_or(config)
}

impl CalicoctlConfig {
    /// calicoctl's default: etcdv3 when endpoints are given, else kubernetes.
    fn with_datastore(mut self, datastore: Option<&str>) -> Result<CalicoctlConfig, String> {
        self.datastore = match datastore {
            Some("etcdv3") => DatastoreType::Etcdv3,
            Some("kubernetes") => DatastoreType::Kubernetes,
            Some(other) => return Err(format!("`datastoreType: {other}` is neither `etcdv3` nor `kubernetes`")),
            None if self.endpoints.is_some() || self.discovery_srv.is_some() => DatastoreType::Etcdv3,
            None => DatastoreType::Kubernetes,
        };
        Ok(self)
    }

    /// Which etcd `source` means, and how to reach it: `etcd` is the etcd this configuration
    /// names; an explicit address names its own endpoints and takes certificates and
    /// credentials from here.
    pub fn resolve(&self, source: &str) -> Result<(Address, Security), String> {
        let address = if source == CONFIGURED_ETCD {
            if self.discovery_srv.is_some() && self.endpoints.is_none() {
                return Err(format!(
                    "calicoctl's configuration ({}) finds etcd through DNS SRV discovery, which calplan does not do: \
                     give the endpoints as `etcds://HOST:PORT[,HOST:PORT…]`",
                    self.origin
                ));
            }
            let Some(endpoints) = &self.endpoints else {
                return Err(format!(
                    "`{CONFIGURED_ETCD}` means the etcd calicoctl's configuration names, but {} names none: set \
                     `ETCD_ENDPOINTS`, give `--calico-config FILE`, or write the address (`etcds://HOST:PORT[,HOST:PORT…]`)",
                    self.origin
                ));
            };
            if self.datastore != DatastoreType::Etcdv3 {
                return Err(format!("calicoctl's configuration ({}) is for the Kubernetes datastore, not etcd", self.origin));
            }
            Address::parse_calicoctl(endpoints).map_err(|error| format!("{error} (in {})", self.origin))?
        } else {
            Address::parse(source).map_err(|error| error.to_string())?
        };
        let mut security = Security::default();
        if let (Some(username), Some(password)) = (&self.username, &self.password) {
            // Both or nothing, as calicoctl: a user without a password is not sent.
            security.credentials = Some(Credentials::new(username.clone(), password.clone()));
        }
        if address.tls {
            if (self.ca_inline.is_some() || self.cert_inline.is_some() || self.key_inline.is_some())
                && (self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some())
            {
                return Err(format!(
                    "calicoctl's configuration ({}) gives certificates both inline and as files; calicoctl refuses that too",
                    self.origin
                ));
            }
            security.ca = self.pem(self.ca_file.as_deref(), self.ca_inline.as_deref(), "etcdCACert")?;
            security.cert = self.pem(self.cert_file.as_deref(), self.cert_inline.as_deref(), "etcdCert")?;
            security.key = self.pem(self.key_file.as_deref(), self.key_inline.as_deref(), "etcdKey")?;
        }
        Ok((address, security))
    }

    /// A connected client for `source`.
    pub fn client(&self, source: &str, timeout: Duration) -> Result<Client, String> {
        let (address, security) = self.resolve(source)?;
        Client::connect(address, &security, timeout).map_err(|error: EtcdError| error.to_string())
    }

    fn pem(&self, file: Option<&str>, inline: Option<&str>, field: &str) -> Result<Option<Pem>, String> {
        if let Some(text) = inline {
            return Ok(Some(Pem { origin: format!("`{field}` in {}", self.origin), text: text.as_bytes().to_vec() }));
        }
        let Some(path) = file else { return Ok(None) };
        let text = std::fs::read(path).map_err(|error| format!("cannot read `{path}` (named by {}): {error}", self.origin))?;
        Ok(Some(Pem { origin: format!("`{path}`"), text }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calicoctl_file_gives_endpoints_certificates_and_credentials() {
        let text = "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  datastoreType: etcdv3\n  \
                    etcdEndpoints: https://10.0.0.1:2379,https://10.0.0.2:2379\n  etcdUsername: calico\n  etcdPassword: s3cret\n  \
                    etcdCACert: |\n    -----BEGIN CERTIFICATE-----\n";
        let config = from_file_text("calicoctl.cfg", text).unwrap();
        let (address, security) = config.resolve(CONFIGURED_ETCD).unwrap();
        assert_eq!(address.to_string(), "etcds://10.0.0.1:2379,10.0.0.2:2379");
        assert!(security.ca.unwrap().origin.contains("etcdCACert"));
        assert_eq!(security.credentials.as_ref().unwrap().username, "calico");
        assert!(!format!("{config:?}").contains("s3cret"), "{config:?}");
        // An explicit address wins over the file's endpoints and keeps its credentials.
        let (address, security) = config.resolve("etcd://127.0.0.1:2379").unwrap();
        assert_eq!(address.to_string(), "etcd://127.0.0.1:2379");
        assert!(security.credentials.is_some() && security.ca.is_none());
    }

    #[test]
    fn calicoctl_refuses_what_calplan_refuses() {
        for (text, expected) in [
            ("apiVersion: v1\nkind: CalicoAPIConfig\n", "apiVersion"),
            ("apiVersion: projectcalico.org/v3\nkind: Config\n", "kind"),
            ("apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  etcdEndpoint: http://a:1\n", "etcdEndpoint"),
            ("apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  datastoreType: consul\n", "consul"),
        ] {
            let error = from_file_text("c.cfg", text).unwrap_err();
            assert!(error.contains(expected) && error.contains("c.cfg"), "{error}");
        }
        let kubernetes = from_file_text("k.cfg", "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec: {}\n").unwrap();
        assert_eq!(kubernetes.datastore, DatastoreType::Kubernetes);
        assert!(kubernetes.resolve(CONFIGURED_ETCD).unwrap_err().contains("names none"));
    }

    #[test]
    fn the_environment_is_read_with_and_without_calicoctl_prefix() {
        let environment = |name: &str| match name {
            "CALICO_ETCD_ENDPOINTS" => Some("https://10.0.0.9:2379".to_string()),
            "ETCD_ENDPOINTS" => Some("https://10.0.0.1:2379".to_string()),
            "ETCD_CA_CERT_FILE" => Some("/nonexistent/ca.pem".to_string()),
            "ETCD_USERNAME" => Some("calico".to_string()),
            _ => None,
        };
        let config = from_environment(environment);
        assert_eq!(config.datastore, DatastoreType::Etcdv3);
        let error = config.resolve(CONFIGURED_ETCD).unwrap_err();
        assert!(error.contains("/nonexistent/ca.pem") && error.contains("the environment"), "{error}");
        let (address, security) = config.resolve("etcd://127.0.0.1:1").unwrap();
        assert_eq!(address.to_string(), "etcd://127.0.0.1:1", "plain HTTP reads no certificate");
        assert!(security.credentials.is_none(), "a user without a password is not sent");
        let prefixed = config.endpoints.unwrap();
        assert_eq!(prefixed, "https://10.0.0.9:2379", "CALICO_ wins");
    }
}
