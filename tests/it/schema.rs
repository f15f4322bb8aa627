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
