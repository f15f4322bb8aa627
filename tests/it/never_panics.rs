//! Property tests: no input makes `check` panic, and it is deterministic.

use calplan::pipeline;
use proptest::prelude::*;

fn render(text: &str) -> String {
    let checked = pipeline::check("intent.yaml", text.to_string(), None);
    let diagnostics = checked.diagnostics.clone().into_sorted();
    calplan_diagnostics::render::json(&diagnostics, &checked.allowed, &checked.sources)
}

/// YAML-ish text built from the intent's own vocabulary, so generated inputs get past the
/// parser and reach the model and the rules.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "apiVersion: calplan/v1\n",
        "kind: ClusterIntent\n",
        "metadata: {name: x}\n",
        "spec:\n",
        "  pools:\n",
        "    - {name: p, cidr: 10.0.0.0/16, blockSize: 26}\n",
        "    - {name: q, cidr: 10.0.0.0/8}\n",
        "  nodes:\n",
        "    - {name: a, ipv4Address: 10.1.0.1/24}\n",
        "    - {name: b, ipv4Address: 10.1.0.2/24, labels: {x: y}}\n",
        "  bgp:\n",
        "    nodeToNodeMesh: false\n",
        "    routeReflectors: [{clusterID: 1.0.0.1, nodes: [a]}]\n",
        "    peers: [{name: p1, peerSelector: has(x), nodeSelector: '!has(x)'}]\n",
        "    asNumber: 1.10\n",
        "  routers: [{name: r, platform: linux, address: 10.1.0.3/24, staticRoutes: [{destination: pools, via: [a]}]}]\n",
        "!tag x\n",
        "- [\n",
        "  ",
        "\t",
        "{",
        "}",
        ":",
        "'",
        "\"",
        "&a ",
        "*a\n",
        "---\n",
        "\u{e9}",
        "0x",
        "~\n",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = render(&text);
    }

    #[test]
    fn arbitrary_yamlish_never_panics_and_is_deterministic(text in yamlish()) {
        prop_assert_eq!(render(&text), render(&text));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = render(&text);
    }
}
