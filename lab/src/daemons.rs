//! The lab's processes: BIRD on every node, FRR for routers and peers, the listeners in the
//! pods and the outside host. They outlive `lab up` (it returns once the lab runs), so they are
//! started detached, in a process group of their own, with a pid file each under the lab's
//! directory; `down` ends them. Only programs named here, with argument vectors.

use crate::topology::{BgpInstance, Layout, NodeHost, Speaker};
use crate::{in_namespace, run};
use calplan_model::{NodeAgent, ownership};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest path a Unix socket can have (`sun_path`, less its terminating zero).
const SOCKET_PATH_MAX: usize = 107;

/// FRR's daemons.
const ZEBRA: &str = "/usr/lib/frr/zebra";
const BGPD: &str = "/usr/lib/frr/bgpd";
const STATICD: &str = "/usr/lib/frr/staticd";

pub fn check_socket_path(path: &Path) -> Result<(), String> {
    let length = path.as_os_str().len();
    if length > SOCKET_PATH_MAX {
        return Err(format!(
            "`{}` is {length} bytes, longer than a Unix socket path may be ({SOCKET_PATH_MAX}): give `--dir` a shorter path",
            path.display()
        ));
    }
    Ok(())
}

/// Starts `program` in a namespace, detached from this process: its own process group (a
/// Ctrl-C to `calplan` does not reach it), output appended to `log`, its pid written to
/// `pid_file`. For programs that stay in the foreground.
pub fn spawn_detached(namespace: &str, program: &str, args: &[&str], log: &Path, pid_file: &Path) -> Result<u32, String> {
    let mut command = Command::new("nsenter");
    command.arg(crate::enter(namespace)).arg(program).args(args);
    // `nsenter` execs the program, so the child's id is the program's own.
    spawn(command, &format!("`{program}` in {namespace}"), log, pid_file)
}

/// Starts `program` detached as [`spawn_detached`] does, in this machine's own network
/// namespace: the lab's etcd (on loopback, so that `calplan plan --current etcd://…` reaches
/// it) and its calico-node emulation. `down` ends such a process only while its command line
/// still names the lab's directory.
pub fn spawn_detached_here(program: &Path, args: &[&str], log: &Path, pid_file: &Path) -> Result<u32, String> {
    let mut command = Command::new(program);
    command.args(args);
    spawn(command, &format!("`{}`", program.display()), log, pid_file)
}

fn spawn(mut command: Command, what: &str, log: &Path, pid_file: &Path) -> Result<u32, String> {
    let open = || {
        std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(|error| format!("cannot open `{}`: {error}", log.display()))
    };
    let child = command
        .stdin(Stdio::null())
        .stdout(open()?)
        .stderr(open()?)
        .process_group(0)
        .spawn()
        .map_err(|error| format!("cannot start {what}: {error}"))?;
    let pid = child.id();
    calplan_apply::state::write_atomically(pid_file, format!("{pid}\n").as_bytes(), 0o644)?;
    Ok(pid)
}

/// A process's arguments.
pub fn arguments(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|byte| *byte == 0).filter(|part| !part.is_empty()).map(|part| String::from_utf8_lossy(part).into_owned()).collect()
}

/// Whether a process's arguments name `dir` or a path inside it: how the lab's processes in
/// this machine's own namespace (etcd, the calico-node emulation) are told from anyone else's.
pub fn names_directory(pid: u32, dir: &Path) -> bool {
    let dir = dir.display().to_string();
    let inside = format!("{}/", dir.trim_end_matches('/'));
    arguments(pid).iter().any(|argument| *argument == dir || argument.starts_with(&inside))
}

/// The pid a pid file names, if the file is there and readable.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub fn is_running(pid: u32) -> bool {
    // A zombie has exited; it only waits for its parent to collect it.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().to_string()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// Polls until `ready` holds, or fails with `what` after `within`.
pub fn wait_until(within: Duration, what: &str, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{what} after {}s", within.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// BIRD's control socket on a node: BIRD 2's beside calplan's files, or calico-node's IPv4
/// daemon's at `var/run/calico/bird.ctl` in the node's directory.
pub fn bird_socket(layout: &Layout, node: &NodeHost) -> PathBuf {
    match layout.node_agent {
        NodeAgent::Bird => node.root.join("bird.ctl"),
        NodeAgent::CalicoNode => calico_path(node, ownership::bird_sockets(NodeAgent::CalicoNode).0),
    }
}

/// calico-node's IPv6 daemon's socket, `var/run/calico/bird6.ctl` in the node's directory.
pub fn bird6_socket(node: &NodeHost) -> PathBuf {
    calico_path(node, ownership::bird_sockets(NodeAgent::CalicoNode).1.unwrap_or("/var/run/calico/bird6.ctl"))
}

/// A path of calico-node's on a real host, placed in the node's directory.
pub fn calico_path(node: &NodeHost, absolute: &str) -> PathBuf {
    node.dir.join(absolute.trim_start_matches('/'))
}

/// Where confd's render for a node lives: BIRD's configuration for IPv4 (`ipv6 == false`) or
/// IPv6, in the node's directory as calico-node keeps it.
pub fn render_path(node: &NodeHost, ipv6: bool) -> PathBuf {
    let (ipv4_path, ipv6_path) = ownership::confd_renders(NodeAgent::CalicoNode).expect("calico-node has renders");
    calico_path(node, if ipv6 { ipv6_path } else { ipv4_path })
}

/// What the node's BIRD 1.6 runs: confd's render with the fork-only statement neutralised
/// (`calico_node::without_krt_tunnel`), beside confd's file rather than in its place, so that
/// confd's folder holds exactly what confd writes.
pub fn running_path(node: &NodeHost, ipv6: bool) -> PathBuf {
    node.dir.join(if ipv6 { "bird6-running.cfg" } else { "bird-running.cfg" })
}

/// Whether calico-node runs `bird6` on the node: when the node has an IPv6 address.
pub fn runs_bird6(node: &NodeHost) -> bool {
    node.link.addresses.iter().any(|address| address.addr().is_ipv6())
}

/// Debian's BIRD 1.6, unpacked beside BIRD 2 (the packages conflict): a folder with `bird`,
/// `bird6` and `birdc`. `CALPLAN_BIRD16` names its `bird`; else the lab looks in
/// `target/bird16/usr/sbin` beside calplan's binary and in the working directory.
pub fn find_bird16() -> Option<PathBuf> {
    let usable = |bird: PathBuf| bird.is_file().then(|| bird.parent().map(Path::to_path_buf)).flatten();
    if let Some(bird) = std::env::var_os("CALPLAN_BIRD16") {
        return usable(PathBuf::from(bird));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/calplan (or target/<profile>/deps/… for tests) → target/bird16.
        for ancestor in exe.ancestors().skip(1).take(3) {
            candidates.push(ancestor.join("bird16/usr/sbin/bird"));
        }
    }
    candidates.push(PathBuf::from("target/bird16/usr/sbin/bird"));
    candidates.into_iter().find_map(|candidate| usable(std::fs::canonicalize(&candidate).unwrap_or(candidate)))
}

/// The BIRD 1.6 folder the lab recorded.
fn bird16_dir(layout: &Layout) -> Result<&Path, String> {
    layout.bird16.as_deref().ok_or_else(|| "the lab has no BIRD 1.6 (it was not brought up in calico-node mode)".to_string())
}

/// BIRD 1.6's client, which stands in for calico-node's `birdcl` (Debian ships `birdc`, which
/// speaks the same protocol on the same socket).
pub fn bird16_client(layout: &Layout) -> Result<PathBuf, String> {
    Ok(bird16_dir(layout)?.join("birdc"))
}

/// calico-node's BIRD on a node, as its runit services start it: `bird -R -s
/// /var/run/calico/bird.ctl -d -c /etc/calico/confd/config/bird.cfg` (and `bird6` on its own
/// socket and file for a node with IPv6), all paths in the node's directory, the file being
/// [`running_path`]'s copy of confd's. Until confd's first render it holds a bootstrap
/// configuration that only watches interfaces.
pub fn start_bird16(layout: &Layout, node: &NodeHost) -> Result<(), String> {
    let dir = bird16_dir(layout)?;
    let families: &[bool] = if runs_bird6(node) { &[false, true] } else { &[false] };
    for &ipv6 in families {
        let (program, socket, name) =
            if ipv6 { ("bird6", bird6_socket(node), "bird6") } else { ("bird", bird_socket(layout, node), "bird") };
        let config = running_path(node, ipv6);
        for directory in [render_path(node, ipv6).parent(), config.parent(), socket.parent()].into_iter().flatten() {
            std::fs::create_dir_all(directory).map_err(|error| format!("cannot create `{}`: {error}", directory.display()))?;
        }
        let bootstrap = format!(
            "# The lab's bootstrap configuration: its confd emulation replaces it with the node's render.\nrouter id {};\nprotocol device {{\n  scan time 2;\n}}\n",
            node.router_id
        );
        std::fs::write(&config, bootstrap).map_err(|error| format!("cannot write `{}`: {error}", config.display()))?;
        check_socket_path(&socket)?;
        let program = dir.join(program);
        let (config_text, socket_text) = (config.display().to_string(), socket.display().to_string());
        let program_text = program.display().to_string();
        spawn_detached(
            &node.namespace,
            &program_text,
            &["-R", "-s", &socket_text, "-d", "-c", &config_text],
            &node.dir.join(format!("{name}.log")),
            &node.dir.join(format!("{name}.pid")),
        )?;
        wait_until(Duration::from_secs(10), &format!("{name} on `{}` has not opened its socket", node.name), || socket.exists())?;
    }
    Ok(())
}

/// BIRD on a node, on a configuration that only watches interfaces: the executor loads the
/// compiled `bird.cfg` into it with `birdc configure`, as apply does on a real node.
pub fn start_bird(layout: &Layout, node: &NodeHost) -> Result<(), String> {
    std::fs::create_dir_all(&node.root).map_err(|error| format!("cannot create `{}`: {error}", node.root.display()))?;
    let config = node.root.join("bird.cfg");
    let bootstrap = format!(
        "# The lab's bootstrap configuration: calplan's apply replaces it with the compiled bird.cfg.\nrouter id {};\nprotocol device {{\n  scan time 2;\n}}\n",
        node.router_id
    );
    std::fs::write(&config, bootstrap).map_err(|error| format!("cannot write `{}`: {error}", config.display()))?;
    let socket = bird_socket(layout, node);
    check_socket_path(&socket)?;
    let pid = node.root.join("bird.pid");
    let (config, socket_text, pid_text) = (config.display().to_string(), socket.display().to_string(), pid.display().to_string());
    // Without `-f` BIRD daemonizes once it has read its configuration and writes its pid file.
    in_namespace(&node.namespace, "bird", &["-c", &config, "-s", &socket_text, "-P", &pid_text], None)?;
    wait_until(Duration::from_secs(10), &format!("BIRD on `{}` has not opened its socket", node.name), || socket.exists())
}

/// `birdc` against a node's BIRD: BIRD 2's, or in calico-node mode BIRD 1.6's IPv4 daemon,
/// and its IPv6 daemon too where it runs one (the two answers one after the other).
pub fn birdc(layout: &Layout, node: &NodeHost, args: &[&str]) -> Result<String, String> {
    let (client, mut sockets) = match layout.node_agent {
        NodeAgent::Bird => (PathBuf::from("birdc"), vec![bird_socket(layout, node)]),
        NodeAgent::CalicoNode => (bird16_client(layout)?, vec![bird_socket(layout, node)]),
    };
    if layout.node_agent == NodeAgent::CalicoNode && runs_bird6(node) {
        sockets.push(bird6_socket(node));
    }
    let mut out = String::new();
    for socket in sockets {
        let socket = socket.display().to_string();
        let mut all = vec!["-s", socket.as_str()];
        all.extend_from_slice(args);
        out.push_str(&run(&client.display().to_string(), &all, None)?);
    }
    Ok(out)
}

/// FRR for one speaker: zebra where it must program the kernel (a router), then a `bgpd` per
/// local address; each on its own directory, config, pid file, log and vty socket.
/// `configs[i]` is instance `i`'s configuration (`None`: an empty one, for apply to load).
pub fn start_frr(speaker: &Speaker, configs: &[Option<String>]) -> Result<(), String> {
    std::fs::create_dir_all(&speaker.root).map_err(|error| format!("cannot create `{}`: {error}", speaker.root.display()))?;
    for (instance, config) in speaker.instances.iter().zip(configs) {
        prepare_instance(instance, config.as_deref())?;
    }
    if speaker.router {
        // One zebra and one bgpd share the first instance's directory (a router has one address).
        let Some(instance) = speaker.instances.first() else { return Ok(()) };
        let dir = instance.dir.display().to_string();
        let zserv = instance.dir.join("zserv.api");
        check_socket_path(&zserv)?;
        let zserv = zserv.display().to_string();
        // zebra drops to FRR's user, which must be a member of its vty group: it needs a
        // directory it may write (the path space's, in FRR's run directory).
        run("chown", &["-R", "frr:frr", &dir], None)?;
        start_zserv_daemon(speaker, instance, ZEBRA, "zebra", "! zebra: interfaces and routes come from the kernel\n", &zserv)?;
        wait_until(Duration::from_secs(10), &format!("zebra for `{}` has not opened its socket", speaker.name), || {
            instance.dir.join("zserv.api").exists()
        })?;
        start_zserv_daemon(speaker, instance, STATICD, "staticd", "! staticd: static routes from frr.conf\n", &zserv)?;
        start_bgpd(speaker, instance, &["-z", &zserv])?;
    } else {
        for instance in &speaker.instances {
            let local = instance.local.to_string();
            let port = instance.port.to_string();
            // No zebra: a peer only has to hear what the cluster announces. `-l` keeps each
            // bgpd to its own address, so two of them can peer with the same node.
            start_bgpd(speaker, instance, &["-Z", "-l", &local, "-p", &port])?;
        }
    }
    Ok(())
}

fn prepare_instance(instance: &BgpInstance, config: Option<&str>) -> Result<(), String> {
    std::fs::create_dir_all(&instance.dir).map_err(|error| format!("cannot create `{}`: {error}", instance.dir.display()))?;
    check_socket_path(&instance.dir.join("staticd.vty"))?;
    let path = instance.dir.join("bgpd.conf");
    std::fs::write(&path, config.unwrap_or("! bgpd: apply loads frr.conf\n"))
        .map_err(|error| format!("cannot write `{}`: {error}", path.display()))
}

/// A daemon of the zserv socket (zebra itself, or staticd) in the instance's directory, as
/// FRR's user: `name.conf` holds `config` (the real configuration arrives through `frr.conf`
/// and vtysh), with `name.pid` and `name.log` beside it.
fn start_zserv_daemon(
    speaker: &Speaker,
    instance: &BgpInstance,
    program: &str,
    name: &str,
    config: &str,
    zserv: &str,
) -> Result<(), String> {
    let dir = instance.dir.display().to_string();
    let path = instance.dir.join(format!("{name}.conf"));
    std::fs::write(&path, config).map_err(|error| format!("cannot write `{}`: {error}", path.display()))?;
    let (config, pid, log) = (path.display().to_string(), format!("{dir}/{name}.pid"), format!("file:{dir}/{name}.log"));
    let args = ["-d", "-u", "frr", "-g", "frr", "-f", &config, "-i", &pid, "-z", zserv, "--vty_socket", &dir, "-P", "0", "--log", &log];
    in_namespace(&speaker.namespace, program, &args, None).map(drop)
}

fn start_bgpd(speaker: &Speaker, instance: &BgpInstance, extra: &[&str]) -> Result<(), String> {
    let dir = instance.dir.display().to_string();
    let (config, pid, log) = (format!("{dir}/bgpd.conf"), format!("{dir}/bgpd.pid"), format!("file:{dir}/bgpd.log"));
    let mut args =
        vec!["-d", "-S", "-f", config.as_str(), "-i", pid.as_str(), "--vty_socket", dir.as_str(), "-P", "0", "--log", log.as_str()];
    args.extend_from_slice(extra);
    in_namespace(&speaker.namespace, BGPD, &args, None)?;
    wait_until(Duration::from_secs(10), &format!("bgpd for `{}` on {} has not opened its vty socket", speaker.name, instance.local), || {
        instance.dir.join("bgpd.vty").exists()
    })
}

/// `vtysh` against one instance's daemons.
pub fn vtysh(speaker: &Speaker, instance: &BgpInstance, command: &str) -> Result<String, String> {
    let dir = instance.dir.display().to_string();
    in_namespace(&speaker.namespace, "vtysh", &["--vty_socket", &dir, "-c", command], None)
}

/// A TCP listener in a namespace: `ncat --keep-open`, answering each connection with the
/// address it came from (so the outside host can say what source it saw).
pub fn start_listener(layout: &Layout, namespace: &str, address: &str, port: u16, name: &str) -> Result<u32, String> {
    let dir = layout.dir.join("listeners");
    std::fs::create_dir_all(&dir).map_err(|error| format!("cannot create `{}`: {error}", dir.display()))?;
    let port = port.to_string();
    spawn_detached(
        namespace,
        "ncat",
        &["--listen", "--keep-open", address, &port, "--sh-exec", "echo $NCAT_REMOTE_ADDR"],
        &dir.join(format!("{name}.log")),
        &dir.join(format!("{name}.pid")),
    )
}

/// Every pid file under the lab's directory.
pub fn pid_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "pid") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
