//! Writing Calico resources as a Kubernetes tool does: `kubectl apply --server-side
//! --field-manager=calplan` of `projectcalico.org/v3` objects, through the Calico API server.
//!
//! - Only `projectcalico.org/v3` (and the Tigera operator's `operator.tigera.io/v1`
//!   `Installation`) is ever written; `crd.projectcalico.org/v1` is the API server's backing
//!   storage, and writing it directly bypasses Calico's validation and defaulting (calico#8435).
//!   Resource types are always named with their version and group (`ippools.v3.projectcalico.org`),
//!   so kubectl cannot resolve them to the CRDs.
//! - Before a stage writes anything, the whole stage goes through `--dry-run=server`: the API
//!   server validates and admits every object, and one refusal stops the stage unwritten.
//! - Each write compares the live object with the plan first, as every backend does; an update
//!   carries the live `resourceVersion`, so the API server refuses it if the object changed
//!   after the comparison, and only then may calplan take over the fields it changes from their
//!   previous manager (`--force-conflicts`): nothing anyone else changed is overwritten.

use calplan_calico::resources::{Resource, ResourceKind, ResourceSet};
use calplan_plan::diff;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// calplan's field manager in server-side apply.
pub const FIELD_MANAGER: &str = "calplan";

/// The groups calplan writes through kubectl; any other `apiVersion` is refused.
const WRITABLE_API_VERSIONS: [&str; 2] = ["projectcalico.org/v3", "operator.tigera.io/v1"];

/// A kind calplan writes through kubectl: a Calico resource, or the operator's Installation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KubeKind {
    Calico(ResourceKind),
    Installation,
}

impl KubeKind {
    pub fn from_kind(kind: &str) -> Option<KubeKind> {
        match kind {
            "Installation" => Some(KubeKind::Installation),
            other => ResourceKind::from_kind(other).map(KubeKind::Calico),
        }
    }

    /// `plural.version.group`: unambiguous, never the CRD group.
    pub fn resource_type(self) -> String {
        match self {
            KubeKind::Calico(kind) => format!("{}.v3.projectcalico.org", kind.plural()),
            KubeKind::Installation => "installations.v1.operator.tigera.io".to_string(),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            KubeKind::Calico(kind) => kind.as_str(),
            KubeKind::Installation => "Installation",
        }
    }
}

/// What a change needs once the live object has been compared with the plan.
pub enum Prepared {
    /// Already as the plan wants it.
    Done,
    /// Server-side apply of this object (with the live `resourceVersion` when it exists).
    Apply(Value),
    /// Delete this object.
    Delete(Value),
}

/// A comparable digest of an object of this kind: Calico resources as every backend compares
/// them, the Installation by its spec.
fn digest(kind: KubeKind, value: &Value) -> Result<String, String> {
    match kind {
        KubeKind::Calico(kind) => {
            let resource = Resource::from_json(kind, value.clone()).map_err(|error| format!("not a Calico {}: {error}", kind.as_str()))?;
            Ok(diff::digest(&resource))
        }
        KubeKind::Installation => Ok(calplan_plan::current::text_digest(&value["spec"].to_string())),
    }
}

/// Runs kubectl with these arguments; its standard output, or its error in words.
fn run(program: &str, args: &[String]) -> Result<String, String> {
    let output = Command::new(program).args(args).output().map_err(|error| format!("cannot run `{program}`: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("`{program} {}` failed: {}", args.join(" "), stderr.trim()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The live object, if it exists.
pub fn live(program: &str, kind: KubeKind, name: &str) -> Result<Option<Value>, String> {
    let args = vec!["get".to_string(), kind.resource_type(), name.to_string(), "-o".into(), "json".into(), "--ignore-not-found".into()];
    let text = run(program, &args)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| format!("`{program} get {} {name}` printed no JSON object: {error}", kind.resource_type()))
}

/// Every live Calico resource calplan plans (IPPool, BGPConfiguration, Node, BGPFilter,
/// BGPPeer), with their `resourceVersion`s.
pub fn live_resources(program: &str) -> Result<ResourceSet, String> {
    let types: Vec<String> = ResourceKind::ALL.iter().map(|kind| KubeKind::Calico(*kind).resource_type()).collect();
    let text = run(program, &["get".into(), types.join(","), "-o".into(), "json".into()])?;
    let list: Value = serde_json::from_str(&text).map_err(|error| format!("`{program} get` printed no JSON: {error}"))?;
    let mut set = ResourceSet::default();
    for item in list["items"].as_array().into_iter().flatten() {
        let Some(kind) = item["kind"].as_str().and_then(ResourceKind::from_kind) else { continue };
        let resource = Resource::from_json(kind, item.clone())
            .map_err(|error| format!("`{program} get` printed a {} calplan cannot read: {error}", kind.as_str()))?;
        set.insert(resource);
    }
    Ok(set)
}

/// Compares the live object with the plan's `from` and `to`, as every backend does, and says
/// what to send.
pub fn prepare(program: &str, kind: KubeKind, name: &str, from: Option<&Value>, to: Option<&Value>) -> Result<Prepared, String> {
    let live = live(program, kind, name)?;
    let of = |value: Option<&Value>| value.map(|value| digest(kind, value)).transpose();
    let (live_digest, from_digest, to_digest) = (of(live.as_ref())?, of(from)?, of(to)?);
    if live_digest == to_digest {
        return Ok(Prepared::Done);
    }
    if live_digest != from_digest {
        let what = match (&live, from) {
            (None, _) => "was deleted",
            (Some(_), None) => "was created by someone else",
            (Some(_), Some(_)) => "was changed by someone else",
        };
        return Err(format!("{} `{name}` {what} since the plan was made; calplan leaves it as it is: plan again", kind.as_str()));
    }
    match (to, live) {
        (Some(wanted), live) => {
            let mut object = wanted.clone();
            object["metadata"] = Value::Object(serde_json::Map::new());
            object["metadata"]["name"] = Value::from(name);
            for field in ["labels", "annotations"] {
                if let Some(value) = wanted["metadata"].get(field) {
                    object["metadata"][field] = value.clone();
                }
            }
            if let Some(version) = live.as_ref().and_then(|live| live["metadata"]["resourceVersion"].as_str()) {
                object["metadata"]["resourceVersion"] = Value::from(version);
            }
            Ok(Prepared::Apply(object))
        }
        (None, Some(live)) => {
            let mut object = serde_json::json!({ "apiVersion": live["apiVersion"], "kind": live["kind"], "metadata": { "name": name } });
            if let Some(version) = live["metadata"]["resourceVersion"].as_str() {
                object["metadata"]["resourceVersion"] = Value::from(version);
            }
            Ok(Prepared::Delete(object))
        }
        (None, None) => Ok(Prepared::Done),
    }
}

/// Writes objects as JSON files kubectl takes with `-f`, refusing any group calplan must not write.
fn manifests(directory: &Path, objects: &[Value]) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        let api_version = object["apiVersion"].as_str().unwrap_or("");
        if !WRITABLE_API_VERSIONS.contains(&api_version) {
            return Err(format!(
                "calplan writes only `projectcalico.org/v3` through kubectl, never `{api_version}` (`crd.projectcalico.org/v1` is \
                 the Calico API server's storage, not an API)"
            ));
        }
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let kind = object["kind"].as_str().unwrap_or("").to_lowercase();
        let path = directory.join(format!("{index:03}-{kind}-{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(object).expect("objects serialize"))
            .map_err(|error| format!("cannot write `{}`: {error}", path.display()))?;
        args.push("-f".to_string());
        args.push(path.display().to_string());
    }
    Ok(args)
}

/// `kubectl apply --server-side` of these objects, or `kubectl delete` of those, for real or
/// as a server-side dry run.
pub fn send(program: &str, applies: &[Value], deletes: &[Value], dry_run: bool) -> Result<(), String> {
    let directory = tempfile::tempdir().map_err(|error| format!("cannot make a temporary directory: {error}"))?;
    if !applies.is_empty() {
        let mut args: Vec<String> = vec!["apply".into(), "--server-side".into(), format!("--field-manager={FIELD_MANAGER}")];
        // An update carries the live resourceVersion (see the module's notes): only then does
        // calplan take over the fields it changes.
        if applies.iter().any(|object| object["metadata"].get("resourceVersion").is_some()) {
            args.push("--force-conflicts".into());
        }
        if dry_run {
            args.push("--dry-run=server".into());
        }
        args.extend(manifests(directory.path(), applies)?);
        run(program, &args)?;
    }
    if !deletes.is_empty() {
        let mut args: Vec<String> = vec!["delete".into()];
        if dry_run {
            args.push("--dry-run=server".into());
        }
        args.extend(manifests(&directory.path().join(""), deletes)?);
        run(program, &args)?;
    }
    Ok(())
}
