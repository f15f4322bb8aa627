//! Artifacts and the manifest that lists them.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One file of compiled output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// Relative to the output directory, `/`-separated.
    pub path: String,
    pub contents: String,
    /// The intent element it came from, such as `spec.nodes[cs1-k8s-m1]`.
    pub source: String,
    /// Holds a secret: written with mode 0600 and never printed.
    pub secret: bool,
    /// The digest, once computed (kept when the contents have been written out and dropped).
    digest: Option<String>,
    /// The contents went to a sink and were dropped.
    handed_over: bool,
}

impl Artifact {
    pub fn new(path: impl Into<String>, contents: String, source: impl Into<String>) -> Artifact {
        Artifact { path: path.into(), contents, source: source.into(), secret: false, digest: None, handed_over: false }
    }

    pub fn sha256(&self) -> String {
        self.digest.clone().unwrap_or_else(|| hex(&Sha256::digest(self.contents.as_bytes())))
    }

    /// The artifact once its contents have gone to a sink: its digest and metadata only.
    pub fn handed_over(mut self) -> Artifact {
        self.digest = Some(self.sha256());
        self.contents = String::new();
        self.handed_over = true;
        self
    }

    /// The artifact with its digest computed once, for [`Artifact::sha256`] to return.
    pub fn with_digest(mut self) -> Artifact {
        self.digest = Some(self.sha256());
        self
    }

    pub fn is_handed_over(&self) -> bool {
        self.handed_over
    }

    /// Hex of a digest.
    pub fn hex_digest(bytes: &[u8]) -> String {
        hex(bytes)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ManifestEntry {
    pub path: String,
    pub sha256: String,
    pub target: &'static str,
    pub source: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// `manifest.json`: every artifact with its digest and origin. No timestamps, sorted by path.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Manifest {
    pub generator: &'static str,
    pub artifacts: Vec<ManifestEntry>,
}

/// Everything a compile produced, sorted by path.
#[derive(Clone, Debug)]
pub struct Output {
    pub artifacts: Vec<(&'static str, Artifact)>,
}

impl Output {
    pub fn new(rendered: Vec<(&'static str, Vec<Artifact>)>) -> Output {
        let mut artifacts: Vec<(&'static str, Artifact)> =
            rendered.into_iter().flat_map(|(target, artifacts)| artifacts.into_iter().map(move |a| (target, a))).collect();
        artifacts.sort_by(|a, b| a.1.path.cmp(&b.1.path));
        Output { artifacts }
    }

    pub fn manifest(&self) -> Manifest {
        Manifest {
            generator: "calplan",
            artifacts: self
                .artifacts
                .iter()
                .map(|(target, artifact)| ManifestEntry {
                    path: artifact.path.clone(),
                    sha256: artifact.sha256(),
                    target,
                    source: artifact.source.clone(),
                    secret: artifact.secret,
                })
                .collect(),
        }
    }

    pub fn manifest_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.manifest()).expect("manifest serializes");
        text.push('\n');
        text
    }

    pub fn get(&self, path: &str) -> Option<&Artifact> {
        self.artifacts.iter().map(|(_, artifact)| artifact).find(|artifact| artifact.path == path)
    }
}
