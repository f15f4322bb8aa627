//! Network namespaces for the lab and the tests that run real daemons: named namespaces, links
//! between them, addresses, and processes run inside them.
//!
//! Everything goes through `ip` with argument vectors, never a shell string, and every name
//! that reaches `ip` is a validated [`NamespaceName`] or [`InterfaceName`], after an explicit
//! `name` or `dev` keyword (`ip` reads a bare `a` or `br` as an abbreviated keyword). What this module
//! creates is owned by a guard ([`Namespace`], [`Daemon`]) that removes it when dropped, so a
//! failing test or lab leaves nothing behind. It must not touch the host's own network
//! namespace: links are created inside namespaces (`ip -n`), and the only host-level objects
//! are the namespace names themselves. Callers own the order of teardown: drop daemons
//! before the namespaces they run in.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Why a namespace operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("`{name}` is not a valid {what} name: {reason}")]
    InvalidName { what: &'static str, name: String, reason: &'static str },
    #[error("`/{prefix_len}` is not a prefix length for `{address}`")]
    InvalidPrefix { address: IpAddr, prefix_len: u8 },
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
}

/// A network namespace name: 1 to 48 of `a-z`, `0-9` and `-`, starting with a letter or digit,
/// so that it is a safe file name under `/run/netns` and a safe argument.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamespaceName(String);

impl NamespaceName {
    pub fn new(name: impl Into<String>) -> Result<NamespaceName, NetnsError> {
        let name = name.into();
        let invalid = |reason| NetnsError::InvalidName { what: "namespace", name: name.clone(), reason };
        if name.is_empty() || name.len() > 48 {
            return Err(invalid("it must be 1 to 48 characters"));
        }
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(invalid("it may hold only lowercase letters, digits and `-`"));
        }
        if name.starts_with('-') {
            return Err(invalid("it must start with a letter or digit"));
        }
        Ok(NamespaceName(name))
    }

    /// This name with `-suffix` appended, validated.
    pub fn join(&self, suffix: &str) -> Result<NamespaceName, NetnsError> {
        NamespaceName::new(format!("{}-{suffix}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NamespaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<OsStr> for NamespaceName {
    fn as_ref(&self) -> &OsStr {
        OsStr::new(&self.0)
    }
}

/// A network interface name as the kernel accepts it: 1 to 15 bytes of letters, digits, `.`,
/// `_` and `-`, not starting with `-` or `.` (so it is never an option or a path element).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceName(String);

impl InterfaceName {
    pub fn new(name: impl Into<String>) -> Result<InterfaceName, NetnsError> {
        let name = name.into();
        let invalid = |reason| NetnsError::InvalidName { what: "interface", name: name.clone(), reason };
        if name.is_empty() || name.len() > 15 {
            return Err(invalid("it must be 1 to 15 bytes"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return Err(invalid("it may hold only letters, digits, `.`, `_` and `-`"));
        }
        if name.starts_with(['-', '.']) {
            return Err(invalid("it must not start with `-` or `.`"));
        }
        Ok(InterfaceName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<OsStr> for InterfaceName {
    fn as_ref(&self) -> &OsStr {
        OsStr::new(&self.0)
    }
}

/// A name prefix no other run on this host uses: `tag`, this process's id, a counter, and a
/// few bits of the clock so that a run which crashed with the same process id long ago (and
/// left its namespaces behind) does not collide either.
pub fn unique_prefix(tag: &str) -> Result<NamespaceName, NetnsError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.subsec_micros() & 0xfff);
    NamespaceName::new(format!("{tag}{:x}{clock:03x}x{count}", std::process::id()))
}

/// Runs a command to completion; its standard output on success, a [`NetnsError`] naming the
/// whole command otherwise.
fn run(mut command: Command) -> Result<String, NetnsError> {
    let describe = |command: &Command| {
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|part| part.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NetnsError::Spawn { program: command.get_program().to_string_lossy().into_owned(), source })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(NetnsError::Failed {
            command: describe(&command),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// As [`run`], with `input` written to the command's standard input. The input is written
/// from a thread of its own, so that a command that prints much before it has read all its
/// input cannot deadlock against this process.
fn run_fed(mut command: Command, input: &[u8]) -> Result<String, NetnsError> {
    use std::io::Write;
    let program = command.get_program().to_string_lossy().into_owned();
    let described = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NetnsError::Spawn { program: program.clone(), source })?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    // A command that exits without reading everything closes the pipe: its exit status says
    // what went wrong, so a failed write is not an error of its own.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().map_err(|source| NetnsError::Spawn { program, source })?;
    let _ = writer.join();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(NetnsError::Failed {
            command: described,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// `ip ARGS...`.
fn ip<I, S>(args: I) -> Result<String, NetnsError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new("ip");
    command.args(args);
    run(command)
}

/// A network namespace this process created; deleted when dropped.
#[derive(Debug)]
pub struct Namespace {
    name: NamespaceName,
}

impl Namespace {
    /// Creates the namespace and brings its loopback up.
    pub fn create(name: NamespaceName) -> Result<Namespace, NetnsError> {
        ip([OsStr::new("netns"), OsStr::new("add"), name.as_ref()])?;
        let namespace = Namespace { name };
        namespace.ip(["link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    pub fn name(&self) -> &NamespaceName {
        &self.name
    }

    /// `ip -n NAME ARGS...`, its standard output.
    pub fn ip<I, S>(&self, args: I) -> Result<String, NetnsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<OsString> = vec!["-n".into(), self.name.as_ref().to_owned()];
        all.extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        ip(all)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`, which execs the
    /// program itself, so the child's id is the program's).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.arg("netns").arg("exec").arg(&self.name).arg(program);
        command
    }

    /// Runs a command inside the namespace to completion; its standard output.
    pub fn run<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> Result<String, NetnsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command(program);
        command.args(args);
        run(command)
    }

    /// Runs a command inside the namespace to completion with `input` on its standard input
    /// (`nft -f -`, `iptables-restore`); its standard output.
    pub fn run_with_input<I, S>(&self, program: impl AsRef<OsStr>, args: I, input: &[u8]) -> Result<String, NetnsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command(program);
        command.args(args);
        run_fed(command, input)
    }

    /// Starts a long-running program inside the namespace, its output appended to `log`.
    pub fn spawn<I, S>(&self, program: impl AsRef<OsStr>, args: I, log: &Path) -> Result<Daemon, NetnsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program_name = program.as_ref().to_string_lossy().into_owned();
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|source| NetnsError::Spawn { program: program_name.clone(), source })
        };
        let mut command = self.command(&program);
        command.args(args).stdin(Stdio::null()).stdout(open()?).stderr(open()?);
        let child = command.spawn().map_err(|source| NetnsError::Spawn { program: program_name.clone(), source })?;
        Ok(Daemon { child, description: format!("{program_name} in {}", self.name) })
    }

    pub fn add_bridge(&self, name: &InterfaceName) -> Result<(), NetnsError> {
        self.ip([OsStr::new("link"), OsStr::new("add"), OsStr::new("name"), name.as_ref(), OsStr::new("type"), OsStr::new("bridge")])?;
        Ok(())
    }

    pub fn set_up(&self, name: &InterfaceName) -> Result<(), NetnsError> {
        self.ip([OsStr::new("link"), OsStr::new("set"), OsStr::new("dev"), name.as_ref(), OsStr::new("up")])?;
        Ok(())
    }

    /// Attaches an interface to a bridge in the same namespace.
    pub fn set_master(&self, name: &InterfaceName, bridge: &InterfaceName) -> Result<(), NetnsError> {
        self.ip([OsStr::new("link"), OsStr::new("set"), OsStr::new("dev"), name.as_ref(), OsStr::new("master"), bridge.as_ref()])?;
        Ok(())
    }

    /// Adds `address/prefix_len`; IPv6 addresses skip duplicate address detection, which
    /// would otherwise leave them tentative (unusable) for a while in a fresh namespace.
    pub fn add_address(&self, name: &InterfaceName, address: IpAddr, prefix_len: u8) -> Result<(), NetnsError> {
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(NetnsError::InvalidPrefix { address, prefix_len });
        }
        let cidr = format!("{address}/{prefix_len}");
        let mut args: Vec<&OsStr> = vec![OsStr::new("address"), OsStr::new("add"), OsStr::new(&cidr), OsStr::new("dev"), name.as_ref()];
        if address.is_ipv6() {
            args.push(OsStr::new("nodad"));
        }
        self.ip(args)?;
        Ok(())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace removes its interfaces, and the far ends of its veth pairs.
        let _ = ip([OsStr::new("netns"), OsStr::new("delete"), self.name.as_ref()]);
    }
}

/// A veth pair: `a_name` in namespace `a`, `b_name` in namespace `b`, both down. `a` and `b`
/// may be the same namespace, which gives a device with carrier that needs no kernel module
/// beyond veth (a stand-in for `tunl0` or `vxlan.calico` where those modules are missing).
pub fn veth(a: &Namespace, a_name: &InterfaceName, b: &Namespace, b_name: &InterfaceName) -> Result<(), NetnsError> {
    a.ip([
        OsStr::new("link"),
        OsStr::new("add"),
        OsStr::new("name"),
        a_name.as_ref(),
        OsStr::new("type"),
        OsStr::new("veth"),
        OsStr::new("peer"),
        OsStr::new("name"),
        b_name.as_ref(),
        OsStr::new("netns"),
        b.name().as_ref(),
    ])?;
    Ok(())
}

/// A process started in a namespace; killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    description: String,
}

impl Daemon {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running; `Err` with its exit status once it has stopped.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited ({status})", self.description)),
            Err(error) => Err(format!("{}: {error}", self.description)),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Only this child, by its own handle: never a search by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_before_they_reach_ip() {
        assert!(NamespaceName::new("cpl1a-n0").is_ok());
        for bad in ["", "-x", "A", "a b", "a/b", "a;rm", &"x".repeat(49)] {
            assert!(NamespaceName::new(bad).is_err(), "{bad:?}");
        }
        assert!(InterfaceName::new("vxlan-v6.calico").is_ok());
        for bad in ["", "-o", ".", "..", "eth 0", "a/b", "sixteen-bytes-xx", "tunl0;"] {
            assert!(InterfaceName::new(bad).is_err(), "{bad:?}");
        }
        let first = unique_prefix("t").unwrap();
        assert_ne!(first, unique_prefix("t").unwrap());
        assert!(first.join("sw").is_ok());
    }
}
