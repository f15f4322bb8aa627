//! `lab down`: removes everything a lab made — its processes, its namespaces (and with them
//! every link, bridge and route inside), the routers' FRR path spaces, its directory — and nothing
//! else, also after a crashed `up` that left only part of it.
//!
//! What belongs to the lab is found, not remembered: namespaces by the lab's prefix, processes
//! by `ip netns pids` in those namespaces. A pid file only ever names a process to end when
//! that process still runs inside one of the lab's namespaces, or — the etcd and the
//! calico-node emulation of a calico-node lab, which run in this machine's namespace — when its
//! arguments still name the lab's directory (a stale pid file may name someone else's process
//! by now). The etcd's data goes with the directory. The directory is removed only when it holds the lab's
//! `lab.json`, or is empty.

use crate::{LAYOUT_FILE, daemons, ip_batch, run, topology, up};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Removed {
    pub processes: usize,
    pub namespaces: usize,
    pub directory: bool,
}

/// The network namespace a process is in, as `ip netns identify` names it.
pub(crate) fn namespace_of(pid: u32) -> Option<String> {
    run("ip", &["netns", "identify", &pid.to_string()], None).ok().map(|name| name.trim().to_string()).filter(|name| !name.is_empty())
}

pub fn down(prefix: &str, dir: &Path) -> Result<Removed, String> {
    let mut removed = Removed::default();
    let namespaces = up::existing_namespaces(prefix)?;
    let owned: BTreeSet<&str> = namespaces.iter().map(String::as_str).collect();
    let mut pids: BTreeSet<u32> = BTreeSet::new();
    for namespace in &namespaces {
        let listing = run("ip", &["netns", "pids", namespace], None).unwrap_or_default();
        pids.extend(listing.lines().filter_map(|line| line.trim().parse::<u32>().ok()));
    }
    for file in daemons::pid_files(dir) {
        // The lab's etcd and calico-node emulation run in this machine's namespace: theirs
        // only while their arguments still name the lab's directory.
        if let Some(pid) = daemons::read_pid(&file)
            && daemons::is_running(pid)
            && (namespace_of(pid).is_some_and(|namespace| owned.contains(namespace.as_str())) || daemons::names_directory(pid, dir))
        {
            pids.insert(pid);
        }
    }
    pids.retain(|pid| *pid != std::process::id());
    for pid in &pids {
        let _ = run("kill", &["-TERM", &pid.to_string()], None);
    }
    let gone = daemons::wait_until(Duration::from_secs(5), "processes still running", || pids.iter().all(|pid| !daemons::is_running(*pid)));
    if gone.is_err() {
        for pid in pids.iter().filter(|pid| daemons::is_running(**pid)) {
            let _ = run("kill", &["-KILL", &pid.to_string()], None);
        }
        daemons::wait_until(Duration::from_secs(5), "processes survive SIGKILL", || pids.iter().all(|pid| !daemons::is_running(*pid)))?;
    }
    removed.processes = pids.len();
    let deletes: Vec<String> = namespaces.iter().map(|namespace| format!("netns delete {namespace}")).collect();
    ip_batch(None, &deletes)?;
    removed.namespaces = namespaces.len();
    // The routers' FRR path spaces carry the prefix too.
    if let Ok(entries) = std::fs::read_dir(topology::FRR_RUN_DIR) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&format!("{prefix}-")) {
                std::fs::remove_dir_all(entry.path()).map_err(|error| format!("cannot remove `{}`: {error}", entry.path().display()))?;
            }
        }
    }
    if dir.join(LAYOUT_FILE).is_file() || dir.read_dir().is_ok_and(|mut entries| entries.next().is_none()) {
        std::fs::remove_dir_all(dir).map_err(|error| format!("cannot remove `{}`: {error}", dir.display()))?;
        removed.directory = true;
    }
    Ok(removed)
}
