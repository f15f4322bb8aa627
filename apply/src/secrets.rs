//! BGP passwords for the hosts a plan configures, from `--secrets DIR`, laid out as Kubernetes
//! mounts a Secret (`DIR/<secret>/<key>`). Plans and the state name passwords only by their
//! Secret and key; the values are read here, for the hosts that need them, and go nowhere but
//! to those hosts' password files (mode 0600).

use calplan_calico::resources::SecretKeyRef;
use calplan_plan::plan::{Content, Plan, Target};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `bird-secrets.conf` per node, from `--secrets DIR`, for nodes whose BIRD needs passwords:
/// every Secret key any of the node's `bird.cfg` versions in the plan names (a node may get a
/// new `bird.cfg` in several stages, and each must find its passwords defined).
pub fn for_plan(plan: &Plan, directory: Option<&Path>) -> Result<BTreeMap<String, String>, String> {
    // Nodes name their passwords in comments of `bird.cfg`, routers running FRR in placeholders
    // of `frr.conf`; a host's file may name different ones from one stage to the next.
    let mut named: BTreeMap<(&str, &str), BTreeSet<(String, String)>> = BTreeMap::new();
    for change in plan.changes() {
        let Some(Content::File { text }) = &change.after else { continue };
        let (host, references) = match (&change.target, change.kind.as_str()) {
            (Target::Node { node }, "bird.cfg") => (node, calplan_targets::bird::password_references(text)),
            (Target::Router { router }, "frr.conf") => (router, calplan_targets::routers::frr_password_references(text)),
            _ => continue,
        };
        named.entry((change.kind.as_str(), host.as_str())).or_default().extend(references);
    }
    let mut secrets = BTreeMap::new();
    for ((file, host), references) in named.into_iter().filter(|(_, references)| !references.is_empty()) {
        let passwords = read_passwords(directory, host, file, references)?;
        let text = match file {
            "bird.cfg" => calplan_targets::bird::secrets_file(&passwords).map_err(|error| error.to_string())?,
            _ => calplan_targets::routers::frr_secrets_file(&passwords),
        };
        secrets.insert(host.to_string(), text);
    }
    Ok(secrets)
}

/// The values of the Secrets `host`'s `file` names, from `DIR/<secret>/<key>`.
fn read_passwords(
    directory: Option<&Path>,
    host: &str,
    file: &str,
    references: BTreeSet<(String, String)>,
) -> Result<BTreeMap<SecretKeyRef, String>, String> {
    let Some(directory) = directory else {
        return Err(format!("`{host}`'s {file} needs BGP passwords: give `--secrets DIR` (DIR/<secret>/<key>)"));
    };
    references
        .into_iter()
        .map(|(name, key)| {
            // The names come from the plan, a file anyone could edit: they must be what
            // Kubernetes allows for a Secret and its keys, so that they stay inside DIR.
            if !is_secret_word(&name) || !is_secret_word(&key) {
                return Err(format!("`{host}`'s {file} names the Secret `{name}`, key `{key}`, which is not a Secret's name and key"));
            }
            let path = directory.join(&name).join(&key);
            let value = read_regular(&path).map_err(|error| format!("cannot read the password `{}`: {error}", path.display()))?;
            Ok((SecretKeyRef { name, key, optional: None }, value.trim_end_matches('\n').to_string()))
        })
        .collect()
}

/// The largest password file read: a BGP password is a short string, and a file past this
/// size is not one.
const MAX_PASSWORD_BYTES: u64 = 64 << 10;

/// A regular file only (Kubernetes mounts a Secret's keys as links to regular files), opened
/// without waiting: apply holds its lock while it reads, and must not wait on a FIFO. The type
/// is checked on the open file, so nothing can be swapped in between.
fn read_regular(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PASSWORD_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PASSWORD_BYTES {
        return Err(std::io::Error::other(format!("more than the {} KiB a password file may hold", MAX_PASSWORD_BYTES >> 10)));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::other("it is not UTF-8 text"))
}

/// A Secret's name or key as Kubernetes allows them (letters, digits, `-`, `_`, `.`), and not
/// `.` or `..`.
fn is_secret_word(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text != "."
        && text != ".."
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_words_stay_inside_the_directory() {
        assert!(is_secret_word("bgp-secrets") && is_secret_word("mesh.password_1"));
        for bad in ["", ".", "..", "a/b", "../x", "x y"] {
            assert!(!is_secret_word(bad), "{bad:?}");
        }
    }
}
