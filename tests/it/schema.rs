//! The published schemas and rule reference are generated; these tests fail when the
//! committed copies are stale (`UPDATE_GOLDEN=1` rewrites them).

use crate::golden;

#[test]
fn intent_schema_is_current() {
    let actual = calplan_syntax::schema::intent_schema_text();
    golden::assert_all(golden::check(&golden::root().join("schemas/intent.schema.json"), &actual).err().into_iter().collect());
}

#[test]
fn rule_reference_is_current() {
    let actual = calplan_validate::rules_reference();
    golden::assert_all(golden::check(&golden::root().join("docs/rules.md"), &actual).err().into_iter().collect());
}

#[test]
fn the_seed_intent_validates_against_the_published_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden::root().join("schemas/intent.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let text = std::fs::read_to_string(golden::root().join("testdata/seed-rr/intent.yaml")).unwrap();
    let root = calplan_syntax::yaml::parse(calplan_diagnostics::FileId(0), &text).unwrap().remove(0);
    let (value, _) = calplan_syntax::json::to_json(&root);
    let errors: Vec<String> = validator.iter_errors(&value).map(|error| error.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn plan_schema_is_current() {
    let actual = calplan_plan::plan::schema_text();
    golden::assert_all(golden::check(&golden::root().join("schemas/plan.schema.json"), &actual).err().into_iter().collect());
}

/// Every scenario's plan.json validates against the published plan schema.
#[test]
fn plans_validate_against_the_published_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden::root().join("schemas/plan.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let mut checked = 0;
    for dir in crate::scenarios::scenario_dirs() {
        let Ok(text) = std::fs::read_to_string(dir.join("plan.json")) else { continue };
        let plan: serde_json::Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = validator.iter_errors(&plan).map(|error| format!("{}: {error}", dir.display())).collect();
        assert!(errors.is_empty(), "{errors:?}");
        checked += 1;
    }
    assert!(checked > 0, "no plan.json found under testdata/");
}

fn calico_validator(kind: &str) -> jsonschema::Validator {
    let file = match kind {
        "IPPool" => "ippool",
        "BGPPeer" => "bgppeer",
        "BGPConfiguration" => "bgpconfiguration",
        "BGPFilter" => "bgpfilter",
        "Node" => "node",
        other => panic!("no schema for {other}"),
    };
    let path = golden::root().join(format!("schemas/calico/{file}.schema.json"));
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

/// Every Calico resource every valid scenario compiles to is accepted by the schemas written
/// from Calico's own CRD field definitions (`schemas/calico/`).
#[test]
fn compiled_calico_resources_validate_against_calicos_schemas() {
    let templates = calplan_targets::Templates::builtin();
    let mut checked_resources = 0;
    for dir in crate::scenarios::scenario_dirs() {
        let text = std::fs::read_to_string(dir.join("intent.yaml")).unwrap();
        let checked = calplan::pipeline::check("intent.yaml", text, None);
        let Some(analysis) = checked.valid() else { continue };
        let context = calplan_targets::Context { analysis, templates: &templates, node: None, sink: None };
        let selected = std::collections::BTreeSet::from(["calico".to_string()]);
        let output = calplan_targets::compile(&context, Some(&selected)).unwrap();
        for (_, artifact) in &output.artifacts {
            if artifact.path.ends_with("calico-node-env.yaml") {
                continue;
            }
            let documents = calplan_syntax::yaml::parse(calplan_diagnostics::FileId(0), &artifact.contents).unwrap();
            for document in documents {
                let (value, _) = calplan_syntax::json::to_json(&document);
                let kind = value["kind"].as_str().unwrap().to_string();
                let errors: Vec<String> = calico_validator(&kind)
                    .iter_errors(&value)
                    .map(|error| format!("{} {}: {error}", dir.display(), artifact.path))
                    .collect();
                assert!(errors.is_empty(), "{errors:#?}");
                checked_resources += 1;
            }
        }
    }
    assert!(checked_resources > 20, "only {checked_resources} resources checked");
}

/// The schemas are not vacuous: what Calico would refuse, they refuse.
#[test]
fn calicos_schemas_refuse_what_calico_refuses() {
    let bad = [
        (
            "IPPool",
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool", "metadata": {"name": "p"}, "spec": {"cidr": "10.0.0.0/16", "ipipMode": "Sometimes"}}),
        ),
        (
            "IPPool",
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool", "metadata": {"name": "p"}, "spec": {"cidr": "10.0.0.0/16", "bolockSize": 24}}),
        ),
        (
            "BGPPeer",
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "BGPPeer", "metadata": {"name": "Peer_A"}, "spec": {}}),
        ),
        (
            "BGPConfiguration",
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "BGPConfiguration", "metadata": {"name": "default"}, "spec": {"nodeToNodeMeshEnabled": "no"}}),
        ),
        (
            "Node",
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "Node", "metadata": {"name": "n"}, "spec": {"bgp": {"routeReflectorClusterID": "rr-1"}}}),
        ),
        (
            "BGPFilter",
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "BGPFilter", "metadata": {"name": "f"}, "spec": {"exportV4": [{"cidr": "10.0.0.0/8", "matchOperator": "In"}]}}),
        ),
        (
            "BGPFilter",
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "BGPFilter", "metadata": {"name": "f"}, "spec": {"importV6": [{"action": "Accept", "communities": ["65000:1"]}]}}),
        ),
    ];
    for (kind, value) in bad {
        assert!(!calico_validator(kind).is_valid(&value), "{value}");
    }
}
