//! Reaching nodes and routers: running a command and writing a file on a host, locally, in a
//! network namespace, over OpenSSH with host keys checked, or with `kubectl exec` in the node's
//! calico-node pod.
//!
//! Commands are argument vectors, never strings. Over SSH the remote side needs one command
//! line, so every argument is single-quoted after it has been checked to be a validated name,
//! an address, a path calplan built, or a fixed word; nothing is concatenated unquoted.
//! `kubectl exec` passes the vector as it is (no shell), after the pod and namespace names
//! kubectl itself reported have been checked to be plain names.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Where SSH keeps its shared connections while an apply runs (see [`share_ssh_connections`]).
static SSH_CONTROL_DIRECTORY: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Writes standard input to `$4` through `$3`, mode `$2`, making directory `$1` first
/// (with the usual permissions: a daemon running as another user may need to read it).
const REMOTE_WRITE: &str = r#"mkdir -p -- "$1" && rm -f -- "$3" && (umask 077 && cat > "$3") && chmod -- "$2" "$3" && mv -f -- "$3" "$4""#;

/// Unix socket paths are limited to 108 bytes; ssh's `%C` adds a 40-character hash.
const SOCKET_PATH_ROOM: usize = 108 - 42;

/// From now on, ssh commands to the same destination share one connection (OpenSSH's
/// `ControlMaster`), whose sockets live in `directory` (made mode 0700): an apply runs dozens
/// of commands per host, and without sharing each pays a full handshake. The masters exit a
/// minute after their last use even if calplan dies; [`close_ssh_connections`] ends them at
/// once. A directory whose path is too long for a socket leaves sharing off.
pub fn share_ssh_connections(directory: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let io = |error: std::io::Error| format!("cannot make `{}` for ssh's shared connections: {error}", directory.display());
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(directory).map_err(io)?;
    std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    let directory = std::fs::canonicalize(directory).map_err(io)?;
    let usable = directory.to_str().is_some_and(|text| text.len() <= SOCKET_PATH_ROOM && check_path(text).is_ok());
    *SSH_CONTROL_DIRECTORY.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = usable.then_some(directory);
    Ok(())
}

/// Ends the shared connections [`share_ssh_connections`] opened, and stops sharing.
pub fn close_ssh_connections() {
    let Some(directory) = SSH_CONTROL_DIRECTORY.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() else { return };
    for entry in std::fs::read_dir(&directory).into_iter().flatten().flatten() {
        // `-O exit` talks to the master through its socket; the destination is a placeholder
        // ssh requires and does not use.
        let _ = Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o"])
            .arg(format!("ControlPath={}", entry.path().display()))
            .args(["-O", "exit", "calplan-shared-connection"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// How one host is reached and laid out.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostSettings {
    /// SSH destination address; default the host's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// SSH private key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// SSH `known_hosts` file holding the host's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
    /// A network namespace on the host to run in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// Where calplan keeps the host's files; default `/etc/calplan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// BIRD's control socket; default `/run/bird/bird.ctl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bird_socket: Option<String>,
    /// Where calico-node's confd writes its render, for `verify`; default
    /// `/etc/calico/confd/config`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confd_config: Option<String>,
    /// `nft` (default) or `iptables`: which ruleset to load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<String>,
    /// FRR's path space (`-N`), for routers running FRR in a namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frr_pathspace: Option<String>,
    /// A router's platform (`linux`, `frr`, `ios`, `junos`): which of its files is loaded.
    /// `calplan apply` takes it from the intent the plan was made from; set here, it wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// BIRD's IPv6 control socket where BIRD runs one daemon per family (calico-node's
    /// `bird6`); default `/var/run/calico/bird6.ctl` on calico-node nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bird6_socket: Option<String>,
    /// The BIRD client that reads sessions: default `birdcl` on calico-node nodes (what
    /// calico-node ships), `birdc` on BIRD 2 hosts. A program name or an absolute path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bird_client: Option<String>,
    /// The namespace of the calico-node pods, for `--transport kubectl` (and `--observe
    /// node-status`): default `calico-system` (operator installs), else `kube-system`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calico_namespace: Option<String>,
    /// This host is the machine calplan runs on: the only hosts `--transport local` acts on.
    /// Allowed per host only, never in `defaults`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub this_machine: Option<bool>,
}

impl HostSettings {
    fn over(&self, defaults: &HostSettings) -> HostSettings {
        HostSettings {
            address: self.address.clone().or_else(|| defaults.address.clone()),
            user: self.user.clone().or_else(|| defaults.user.clone()),
            port: self.port.or(defaults.port),
            identity: self.identity.clone().or_else(|| defaults.identity.clone()),
            known_hosts: self.known_hosts.clone().or_else(|| defaults.known_hosts.clone()),
            netns: self.netns.clone().or_else(|| defaults.netns.clone()),
            root: self.root.clone().or_else(|| defaults.root.clone()),
            bird_socket: self.bird_socket.clone().or_else(|| defaults.bird_socket.clone()),
            confd_config: self.confd_config.clone().or_else(|| defaults.confd_config.clone()),
            firewall: self.firewall.clone().or_else(|| defaults.firewall.clone()),
            frr_pathspace: self.frr_pathspace.clone().or_else(|| defaults.frr_pathspace.clone()),
            platform: self.platform.clone().or_else(|| defaults.platform.clone()),
            bird6_socket: self.bird6_socket.clone().or_else(|| defaults.bird6_socket.clone()),
            bird_client: self.bird_client.clone().or_else(|| defaults.bird_client.clone()),
            calico_namespace: self.calico_namespace.clone().or_else(|| defaults.calico_namespace.clone()),
            this_machine: self.this_machine,
        }
    }
}

/// `--inventory FILE`: how to reach each host, with defaults.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Inventory {
    #[serde(default)]
    pub defaults: HostSettings,
    #[serde(default)]
    pub hosts: BTreeMap<String, HostSettings>,
}

impl Inventory {
    pub fn read(path: &Path) -> Result<Inventory, String> {
        let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read inventory `{}`: {error}", path.display()))?;
        let inventory: Inventory = serde_saphyr::from_str(&text).map_err(|error| format!("inventory `{}`: {error}", path.display()))?;
        for (name, settings) in std::iter::once((&"defaults".to_string(), &inventory.defaults)).chain(&inventory.hosts) {
            // A host's name is an SSH destination when it has no address, and names it in
            // messages: a plain word only.
            if !is_safe_word(name) || name.starts_with('-') {
                return Err(format!(
                    "inventory `{}`: the host name `{name}` holds characters calplan will not pass to a shell",
                    path.display()
                ));
            }
            check_settings(name, settings).map_err(|error| format!("inventory `{}`: {error}", path.display()))?;
        }
        if inventory.defaults.this_machine.is_some() {
            return Err(format!(
                "inventory `{}`: `thisMachine` names one host as the machine calplan runs on; it cannot be a default for all",
                path.display()
            ));
        }
        Ok(inventory)
    }

    pub fn host(&self, name: &str) -> Host {
        let settings = self.hosts.get(name).cloned().unwrap_or_default().over(&self.defaults);
        Host { name: name.to_string(), settings }
    }
}

fn check_settings(name: &str, settings: &HostSettings) -> Result<(), String> {
    let word = |value: &Option<String>, what: &str| match value {
        Some(text) if !is_safe_word(text) => Err(format!("{name}: `{what}` `{text}` holds characters calplan will not pass to a shell")),
        _ => Ok(()),
    };
    word(&settings.address, "address")?;
    word(&settings.user, "user")?;
    word(&settings.netns, "netns")?;
    word(&settings.frr_pathspace, "frrPathspace")?;
    word(&settings.calico_namespace, "calicoNamespace")?;
    // The BIRD client is a program name found on the host's `PATH`, or an absolute path.
    let client_path = settings.bird_client.clone().filter(|client| client.starts_with('/'));
    word(&settings.bird_client.clone().filter(|client| !client.starts_with('/')), "birdClient")?;
    for (value, what) in [
        (&settings.root, "root"),
        (&settings.bird_socket, "birdSocket"),
        (&settings.bird6_socket, "bird6Socket"),
        (&client_path, "birdClient"),
        (&settings.confd_config, "confdConfig"),
        (&settings.identity, "identity"),
        (&settings.known_hosts, "knownHosts"),
    ] {
        if let Some(path) = value
            && (!path.starts_with('/') || !path.split('/').all(|part| part.is_empty() || is_safe_word(part)))
        {
            return Err(format!("{name}: `{what}` must be an absolute path of plain names, not `{path}`"));
        }
    }
    if let Some(firewall) = &settings.firewall
        && firewall != "nft"
        && firewall != "iptables"
    {
        return Err(format!("{name}: `firewall` is `nft` or `iptables`, not `{firewall}`"));
    }
    if let Some(platform) = &settings.platform
        && !matches!(platform.as_str(), "linux" | "frr" | "ios" | "junos")
    {
        return Err(format!("{name}: `platform` is `linux`, `frr`, `ios` or `junos`, not `{platform}`"));
    }
    for (value, what) in [
        (&settings.address, "address"),
        (&settings.user, "user"),
        (&settings.netns, "netns"),
        (&settings.calico_namespace, "calicoNamespace"),
        (&settings.bird_client, "birdClient"),
    ] {
        if value.as_deref().is_some_and(|text| text.starts_with('-')) {
            return Err(format!("{name}: `{what}` must not start with `-`"));
        }
    }
    Ok(())
}

/// Letters, digits and `.-_:@` only: DNS names, addresses, user and namespace names.
pub fn is_safe_word(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-:@".contains(&b))
}

/// A host, resolved against the inventory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub settings: HostSettings,
}

impl Host {
    pub fn root(&self) -> String {
        self.settings.root.clone().unwrap_or_else(|| "/etc/calplan".into())
    }

    pub fn path(&self, file: &str) -> String {
        format!("{}/{file}", self.root())
    }

    pub fn bird_socket(&self) -> String {
        self.settings.bird_socket.clone().unwrap_or_else(|| "/run/bird/bird.ctl".into())
    }

    pub fn firewall(&self) -> &str {
        self.settings.firewall.as_deref().unwrap_or("nft")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    Local,
    Ssh,
    Netns,
    Kubectl,
}

impl crate::Named for TransportKind {
    const ALL: &'static [TransportKind] = &[TransportKind::Local, TransportKind::Ssh, TransportKind::Netns, TransportKind::Kubectl];

    fn name(self) -> &'static str {
        match self {
            TransportKind::Local => "local",
            TransportKind::Ssh => "ssh",
            TransportKind::Netns => "netns",
            TransportKind::Kubectl => "kubectl",
        }
    }
}

/// What a command printed and how it ended.
#[derive(Clone, Debug)]
pub struct CommandOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

pub struct Transport {
    pub kind: TransportKind,
    /// The calico-node pods, found once per namespace (`--transport kubectl`).
    pods: Mutex<BTreeMap<String, Pods>>,
    /// Held while pods are listed, so that hosts worked on at once list them once.
    listing: Mutex<()>,
}

/// The calico-node pods of one namespace, by the node each runs on.
#[derive(Clone, Debug, Default)]
struct Pods {
    by_node: BTreeMap<String, String>,
}

/// The label and container of Calico's DaemonSet, in both kinds of installation.
pub const CALICO_NODE_LABEL: &str = "k8s-app=calico-node";
pub const CALICO_NODE_CONTAINER: &str = "calico-node";
/// Where calico-node runs: the Tigera operator's namespace first, then the manifests'.
pub const CALICO_NAMESPACES: [&str; 2] = ["calico-system", "kube-system"];

/// The `kubectl` program: `CALPLAN_KUBECTL` when set (tests point it at a stand-in), else
/// `kubectl` from `PATH`, with the user's own kubeconfig and context.
pub fn kubectl_program() -> String {
    std::env::var("CALPLAN_KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

impl Transport {
    pub fn new(kind: TransportKind) -> Transport {
        Transport { kind, pods: Mutex::new(BTreeMap::new()), listing: Mutex::new(()) }
    }

    /// How a host is reached, for messages.
    pub fn describe(&self, host: &Host) -> String {
        match self.kind {
            TransportKind::Local => format!("`{}` (this machine)", host.name),
            TransportKind::Netns => format!("`{}` (namespace {})", host.name, host.settings.netns.as_deref().unwrap_or("?")),
            TransportKind::Ssh => format!("`{}` (ssh {})", host.name, self.destination(host)),
            TransportKind::Kubectl => {
                let cached = self.cached_pod(host);
                match cached {
                    Some((namespace, pod)) => format!("`{}` (pod {namespace}/{pod})", host.name),
                    None => format!("`{}` (its calico-node pod)", host.name),
                }
            }
        }
    }

    /// Whether files live on the far side of a command (ssh, kubectl) rather than here.
    fn remote_files(&self) -> bool {
        matches!(self.kind, TransportKind::Ssh | TransportKind::Kubectl)
    }

    fn cached_pod(&self, host: &Host) -> Option<(String, String)> {
        let pods = self.pods.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let namespaces: Vec<&str> = match &host.settings.calico_namespace {
            Some(namespace) => vec![namespace.as_str()],
            None => CALICO_NAMESPACES.to_vec(),
        };
        namespaces.into_iter().find_map(|namespace| {
            pods.get(namespace).and_then(|found| found.by_node.get(&host.name)).map(|pod| (namespace.to_string(), pod.clone()))
        })
    }

    /// Lists the calico-node pods of a namespace (`kubectl get pods -l k8s-app=calico-node`).
    fn list_pods(&self, namespace: &str) -> Result<Pods, String> {
        let program = kubectl_program();
        let output = Command::new(&program)
            .args(["get", "pods", "--namespace", namespace, "--selector", CALICO_NODE_LABEL, "--output", "json"])
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("cannot run `{program}`: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "`{program} get pods --namespace {namespace} --selector {CALICO_NODE_LABEL}` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let list: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| format!("`{program} get pods --output json` printed what calplan cannot read: {error}"))?;
        let mut pods = Pods::default();
        for item in list["items"].as_array().into_iter().flatten() {
            let (Some(name), Some(node)) = (item["metadata"]["name"].as_str(), item["spec"]["nodeName"].as_str()) else { continue };
            // A pod being replaced and its successor may both be listed: the running one wins.
            let running = item["status"]["phase"].as_str() == Some("Running");
            if !is_safe_word(name) || name.starts_with('-') {
                return Err(format!("kubectl reports a calico-node pod named `{name}`, which calplan will not pass on"));
            }
            if running || !pods.by_node.contains_key(node) {
                pods.by_node.insert(node.to_string(), name.to_string());
            }
        }
        Ok(pods)
    }

    /// The namespace and name of the calico-node pod on the host's node (`spec.nodeName`):
    /// the pods of a namespace are listed once per apply, and again when a node's pod is not
    /// among them (it may have been replaced since).
    fn pod(&self, host: &Host) -> Result<(String, String), String> {
        if let Some(found) = self.cached_pod(host) {
            return Ok(found);
        }
        let _listing = self.listing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Another host's lookup may have listed them while this one waited.
        if let Some(found) = self.cached_pod(host) {
            return Ok(found);
        }
        let namespaces: Vec<&str> = match &host.settings.calico_namespace {
            Some(namespace) => vec![namespace.as_str()],
            None => CALICO_NAMESPACES.to_vec(),
        };
        let mut looked = Vec::new();
        for namespace in &namespaces {
            let pods = self.list_pods(namespace)?;
            let found = pods.by_node.get(&host.name).cloned();
            let empty = pods.by_node.is_empty();
            self.pods.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(namespace.to_string(), pods);
            if let Some(pod) = found {
                return Ok((namespace.to_string(), pod));
            }
            looked.push(if empty {
                format!("no calico-node pod in `{namespace}`")
            } else {
                format!("none of the calico-node pods in `{namespace}` runs on it")
            });
        }
        Err(format!(
            "`{}`: no calico-node pod (label {CALICO_NODE_LABEL}) has `spec.nodeName: {}`: {}; name the namespace with \
             `calicoNamespace` in the inventory if calico-node runs elsewhere",
            host.name,
            host.name,
            looked.join(", ")
        ))
    }

    /// `[user@]address`, checked again here: it is the one word ssh itself interprets.
    fn checked_destination(&self, host: &Host) -> Result<String, String> {
        let address = host.settings.address.clone().unwrap_or_else(|| host.name.clone());
        let words = [Some(&address), host.settings.user.as_ref()];
        if words.into_iter().flatten().any(|word| !is_safe_word(word) || word.starts_with('-')) {
            return Err(format!(
                "refusing to reach `{}` over ssh: its address or user holds characters calplan will not pass on",
                host.name
            ));
        }
        Ok(self.destination(host))
    }

    fn destination(&self, host: &Host) -> String {
        let address = host.settings.address.clone().unwrap_or_else(|| host.name.clone());
        match &host.settings.user {
            Some(user) => format!("{user}@{address}"),
            None => address,
        }
    }

    /// The argument vector that runs `argv` on the host (`stdin`: whether it will be fed).
    fn command(&self, host: &Host, argv: &[String], stdin: bool) -> Result<Vec<String>, String> {
        if self.kind == TransportKind::Kubectl {
            let (namespace, pod) = self.pod(host)?;
            let mut command = vec![kubectl_program(), "exec".into(), "--namespace".into(), namespace, pod];
            command.extend(["--container".into(), CALICO_NODE_CONTAINER.into()]);
            if stdin {
                command.push("--stdin".into());
            }
            command.push("--".into());
            command.extend(argv.iter().cloned());
            return Ok(command);
        }
        let mut inner: Vec<String> = Vec::new();
        if let Some(namespace) = &host.settings.netns {
            inner.extend(["ip".into(), "netns".into(), "exec".into(), namespace.clone()]);
        } else if self.kind == TransportKind::Netns {
            return Err(format!("`{}` has no namespace: give it `netns` in the inventory", host.name));
        }
        inner.extend(argv.iter().cloned());
        if self.kind != TransportKind::Ssh {
            return Ok(inner);
        }
        let mut command: Vec<String> =
            vec!["ssh".into(), "-o".into(), "BatchMode=yes".into(), "-o".into(), "StrictHostKeyChecking=yes".into()];
        if let Some(directory) = SSH_CONTROL_DIRECTORY.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).as_ref() {
            command.extend(["-o".into(), "ControlMaster=auto".into(), "-o".into(), format!("ControlPath={}/%C", directory.display())]);
            command.extend(["-o".into(), "ControlPersist=60".into()]);
        }
        if let Some(known_hosts) = &host.settings.known_hosts {
            command.extend(["-o".into(), format!("UserKnownHostsFile={known_hosts}")]);
        }
        if let Some(identity) = &host.settings.identity {
            command.extend(["-i".into(), identity.clone(), "-o".into(), "IdentitiesOnly=yes".into()]);
        }
        if let Some(port) = host.settings.port {
            command.extend(["-p".into(), port.to_string()]);
        }
        command.push("--".into());
        command.push(self.checked_destination(host)?);
        command.push(inner.iter().map(|argument| shell_quote(argument)).collect::<Vec<_>>().join(" "));
        Ok(command)
    }

    /// Runs a command on the host, feeding `stdin`.
    pub fn run(&self, host: &Host, argv: &[&str], stdin: Option<&[u8]>) -> Result<CommandOutput, String> {
        let argv: Vec<String> = argv.iter().map(|argument| argument.to_string()).collect();
        let command = self.command(host, &argv, stdin.is_some())?;
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot run `{}` for {}: {error}", command[0], self.describe(host)))?;
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(input).map_err(|error| format!("cannot feed `{}` on {}: {error}", argv[0], self.describe(host)))?;
        }
        let output = child.wait_with_output().map_err(|error| format!("`{}` on {} failed: {error}", argv[0], self.describe(host)))?;
        Ok(CommandOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Runs a command and fails with its error output when it fails.
    pub fn check(&self, host: &Host, argv: &[&str], stdin: Option<&[u8]>) -> Result<String, String> {
        let output = self.run(host, argv, stdin)?;
        if output.success {
            Ok(output.stdout)
        } else {
            let detail = if output.stderr.trim().is_empty() { output.stdout.trim() } else { output.stderr.trim() };
            Err(format!("`{}` failed on {}: {detail}", argv.join(" "), self.describe(host)))
        }
    }

    /// Writes a file on the host through a temporary name and a rename.
    pub fn write_file(&self, host: &Host, path: &str, contents: &[u8], mode: u32) -> Result<(), String> {
        check_path(path)?;
        if !self.remote_files() {
            return crate::state::write_atomically(&PathBuf::from(path), contents, mode);
        }
        let directory = path.rsplit_once('/').map_or("/", |(directory, _)| directory);
        let temporary = format!("{path}.calplan-new");
        let mode = format!("{mode:o}");
        // One round trip: a constant script, with the checked words as its positional
        // arguments (quoted like every other word), so nothing is spliced into shell syntax.
        // The file is created under umask 077 and only then given its mode, so a secret is
        // never readable by others, not even for a moment; `cat` prints nothing an error
        // message could carry.
        self.check(host, &["sh", "-c", REMOTE_WRITE, "sh", directory, &mode, &temporary, path], Some(contents))?;
        Ok(())
    }

    /// A file's contents, or `None` when it does not exist.
    pub fn read_file(&self, host: &Host, path: &str) -> Result<Option<String>, String> {
        check_path(path)?;
        if !self.remote_files() {
            return match std::fs::read_to_string(path) {
                Ok(text) => Ok(Some(text)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(format!("cannot read `{path}`: {error}")),
            };
        }
        let output = self.run(host, &["cat", path], None)?;
        Ok(output.success.then_some(output.stdout))
    }

    pub fn remove_file(&self, host: &Host, path: &str) -> Result<(), String> {
        check_path(path)?;
        if !self.remote_files() {
            return match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(error) => Err(format!("cannot remove `{path}`: {error}")),
            };
        }
        self.check(host, &["rm", "-f", path], None).map(|_| ())
    }
}

fn check_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') && !path.contains("..") && path.split('/').all(|part| part.is_empty() || is_safe_word(part)) {
        Ok(())
    } else {
        Err(format!("refusing the path `{path}`: calplan only writes absolute paths of plain names"))
    }
}

/// POSIX shell single-quoting.
pub fn shell_quote(argument: &str) -> String {
    format!("'{}'", argument.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_commands_are_quoted_word_by_word() {
        let transport = Transport::new(TransportKind::Ssh);
        let host = Host {
            name: "n1".into(),
            settings: HostSettings {
                address: Some("127.0.0.1".into()),
                port: Some(2222),
                netns: Some("lab-0".into()),
                ..HostSettings::default()
            },
        };
        let command = transport.command(&host, &["birdc".into(), "show protocols; rm -rf /".into()], false).unwrap();
        assert_eq!(command.last().unwrap(), "'ip' 'netns' 'exec' 'lab-0' 'birdc' 'show protocols; rm -rf /'");
        assert!(command.contains(&"StrictHostKeyChecking=yes".to_string()));
    }

    #[test]
    fn this_machine_is_said_of_one_host_never_of_all() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("inventory.yaml");
        std::fs::write(&file, "defaults: {thisMachine: true}\n").unwrap();
        let error = Inventory::read(&file).unwrap_err();
        assert!(error.contains("cannot be a default for all"), "{error}");
        std::fs::write(&file, "defaults: {user: root}\nhosts:\n  n1: {thisMachine: true}\n").unwrap();
        let inventory = Inventory::read(&file).unwrap();
        assert_eq!(inventory.host("n1").settings.this_machine, Some(true));
        assert_eq!(inventory.host("n2").settings.this_machine, None);
    }

    #[test]
    fn unsafe_inventory_values_are_refused() {
        let settings = HostSettings { address: Some("host; reboot".into()), ..HostSettings::default() };
        assert!(check_settings("n1", &settings).is_err());
        let settings = HostSettings { user: Some("-oProxyCommand=reboot".into()), ..HostSettings::default() };
        assert!(check_settings("n1", &settings).is_err());
        let settings = HostSettings { platform: Some("cisco".into()), ..HostSettings::default() };
        assert!(check_settings("r1", &settings).is_err());
        assert!(check_path("/etc/calplan/../shadow").is_err());
        assert!(check_path("/etc/calplan/bird.cfg").is_ok());
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
