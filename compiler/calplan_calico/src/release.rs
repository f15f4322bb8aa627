//! The Calico releases calplan renders for, what each one changed in confd's behaviour, and
//! the release that introduced each field of Calico's BGP API.
//!
//! confd's templates (`confd/etc/calico/confd/templates/`) and its peering code
//! (`confd/pkg/backends/calico/client.go`) differ between releases in a handful of places;
//! each difference is one method here, named for the behaviour and documented with the
//! release that brought it, so the renderers ask a question rather than compare numbers.
//! The fields table follows `api/pkg/apis/projectcalico/v3/*.go` at each release's tag.

use std::fmt;

/// A Calico minor release calplan renders for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Release {
    V3_28,
    V3_29,
    V3_30,
    V3_31,
}

/// A `major.minor` Calico version, for releases calplan may not render for (a field's
/// introduction, a version written in an intent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Version {
    /// `3.30`, `3.30.7`, `v3.30.7` or `v3.30.0-0.dev`: the major and minor numbers.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim().strip_prefix('v').unwrap_or(text.trim());
        let mut parts = text.split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Version { major, minor })
    }
}

impl Release {
    /// Every release calplan renders for, oldest first.
    pub const ALL: [Release; 4] = [Release::V3_28, Release::V3_29, Release::V3_30, Release::V3_31];
    /// The release an intent without `calicoVersion` follows.
    pub const DEFAULT: Release = Release::V3_30;

    pub fn version(self) -> Version {
        let minor = match self {
            Release::V3_28 => 28,
            Release::V3_29 => 29,
            Release::V3_30 => 30,
            Release::V3_31 => 31,
        };
        Version { major: 3, minor }
    }

    /// The release a version belongs to, if calplan renders for it.
    pub fn of(version: Version) -> Option<Release> {
        Release::ALL.into_iter().find(|release| release.version() == version)
    }

    /// Parses `3.30`, `3.30.7` or `v3.30.7`.
    pub fn parse(text: &str) -> Option<Release> {
        Version::parse(text).and_then(Release::of)
    }

    /// `3.30`, as an intent writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Release::V3_28 => "3.28",
            Release::V3_29 => "3.29",
            Release::V3_30 => "3.30",
            Release::V3_31 => "3.31",
        }
    }

    /// The supported releases, for messages: `3.28, 3.29, 3.30 and 3.31`.
    pub fn supported_list() -> String {
        let names: Vec<&str> = Release::ALL.iter().map(|release| release.as_str()).collect();
        let (last, rest) = names.split_last().expect("releases");
        format!("{} and {last}", rest.join(", "))
    }

    /// 3.30: BGPPeers with a `localWorkloadSelector` (the `Local_Workload_` sections of the
    /// templates, `# Skipping local bgp peer`) and `passive_mode`.
    pub fn local_workload_peers(self) -> bool {
        self >= Release::V3_30
    }

    /// 3.30: the templates render `next hop self` / `next hop keep` from a BGPPeer's
    /// `nextHopMode`, and `keepOriginalNextHop` reaches peerings made from a `peerSelector`
    /// (`nodeAsBGPPeers`), not only those to a `peerIP`.
    pub fn next_hop_mode(self) -> bool {
        self >= Release::V3_30
    }

    /// 3.30: `reversePeering: Manual` turns off the automatic reverse peering.
    pub fn reverse_peering(self) -> bool {
        self >= Release::V3_30
    }

    /// 3.31: a BGPPeer's `localASNumber` renders `local as N` in its session and is the AS
    /// that decides whether the peer is internal (`calico_export_to_bgp_peers(true)`, `rr
    /// client`, `next hop keep`).
    pub fn local_as(self) -> bool {
        self >= Release::V3_31
    }

    /// 3.31: `serviceLoadBalancerAggregation: Disabled` stops advertising the LoadBalancer
    /// ranges as a whole.
    pub fn service_load_balancer_aggregation(self) -> bool {
        self >= Release::V3_31
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of Calico's BGP API that appeared after 3.28, with the release that introduced
/// each (`api/pkg/apis/projectcalico/v3/*.go` at each tag; `nextHopMode` and `reversePeering`
/// came in 3.30 point releases and count as 3.30). `kind` is the resource, `field` the path
/// below `spec`.
pub const INTRODUCED: &[(&str, &str, Version)] = &[
    ("BGPFilter", "prefixLength", Version { major: 3, minor: 29 }),
    ("BGPPeer", "localWorkloadSelector", Version { major: 3, minor: 30 }),
    ("BGPPeer", "nextHopMode", Version { major: 3, minor: 30 }),
    ("BGPPeer", "reversePeering", Version { major: 3, minor: 30 }),
    ("BGPConfiguration", "localWorkloadPeeringIPV4", Version { major: 3, minor: 30 }),
    ("BGPConfiguration", "localWorkloadPeeringIPV6", Version { major: 3, minor: 30 }),
    ("IPPool", "assignmentMode", Version { major: 3, minor: 30 }),
    ("IPPool", "allowedUses: LoadBalancer", Version { major: 3, minor: 30 }),
    ("BGPPeer", "localASNumber", Version { major: 3, minor: 31 }),
    ("BGPConfiguration", "serviceLoadBalancerAggregation", Version { major: 3, minor: 31 }),
    ("IPPool", "namespaceSelector", Version { major: 3, minor: 31 }),
    ("BGPPeer", "keepaliveTime", Version { major: 3, minor: 32 }),
];

/// The release that introduced a field, if it came after 3.28.
pub fn introduced(kind: &str, field: &str) -> Option<Version> {
    INTRODUCED.iter().find(|(k, f, _)| *k == kind && *f == field).map(|(_, _, version)| *version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_written_and_as_calico_reports_them() {
        assert_eq!(Release::parse("3.30"), Some(Release::V3_30));
        assert_eq!(Release::parse("v3.31.7"), Some(Release::V3_31));
        assert_eq!(Release::parse("3.28.5"), Some(Release::V3_28));
        assert_eq!(Release::parse("v3.32.0-0.dev"), None);
        assert_eq!(Version::parse("v3.32.0-0.dev"), Some(Version { major: 3, minor: 32 }));
        assert_eq!(Release::parse("3.3"), None, "YAML's reading of an unquoted 3.30");
        assert_eq!(Release::parse("three"), None);
        assert_eq!(Release::supported_list(), "3.28, 3.29, 3.30 and 3.31");
    }

    #[test]
    fn fields_belong_to_the_releases_that_introduced_them() {
        assert_eq!(introduced("BGPPeer", "localASNumber"), Some(Release::V3_31.version()));
        assert_eq!(introduced("BGPFilter", "prefixLength"), Some(Release::V3_29.version()));
        assert_eq!(introduced("BGPPeer", "peerIP"), None, "in every release calplan renders for");
        assert!(introduced("BGPPeer", "keepaliveTime").is_some_and(|version| Release::of(version).is_none()));
        assert!(Release::V3_31 > Release::V3_28 && Release::V3_31.local_as() && !Release::V3_30.local_as());
    }
}
