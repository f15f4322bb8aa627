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
            let value =
                std::fs::read_to_string(&path).map_err(|error| format!("cannot read the password `{}`: {error}", path.display()))?;
            Ok((SecretKeyRef { name, key, optional: None }, value.trim_end_matches('\n').to_string()))
        })
        .collect()
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
