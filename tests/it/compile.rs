//! `calplan compile`: the output directory as a whole, filters, template overrides, and what
//! happens to an existing directory when a compile fails.

use crate::cli::calplan;
use crate::cli::text;
use std::path::Path;

fn files(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_output_has_every_target_and_a_manifest_of_digests() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("out");
    let output = calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let listed = files(&out);
    for expected in [
        "calico/ippools.yaml",
        "calico/bgppeers.yaml",
        "calico/calico-node-env.yaml",
        "nodes/cs1-k8s-n1.zpepc.com.cn/bird.cfg",
        "nodes/cs1-k8s-n1.zpepc.com.cn/bird-calico.cfg",
        "nodes/cs1-k8s-n1.zpepc.com.cn/routes",
        "manifest.json",
    ] {
        assert!(listed.iter().any(|path| path == expected), "{expected} missing: {listed:?}");
    }
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let entries = manifest["artifacts"].as_array().unwrap();
    assert_eq!(entries.len() + 1, listed.len(), "every file but the manifest is listed");
    for entry in entries {
        let path = out.join(entry["path"].as_str().unwrap());
        let digest = calplan_plan::current::text_digest(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(entry["sha256"].as_str().unwrap(), digest, "{}", path.display());
        assert!(entry["source"].as_str().is_some_and(|source| source.starts_with("spec")), "{entry}");
    }
    // Same input, same bytes.
    let again = directory.path().join("again");
    assert_eq!(calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", again.to_str().unwrap()]).status.code(), Some(0));
    for path in &listed {
        assert_eq!(std::fs::read(out.join(path)).unwrap(), std::fs::read(again.join(path)).unwrap(), "{path}");
    }
}

#[test]
fn target_and_node_filters() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("out");
    let node = "cs1-k8s-m1.zpepc.com.cn";
    let output =
        calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap(), "--target", "bird,routes", "--node", node]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(files(&out), ["manifest.json".to_string(), format!("nodes/{node}/bird.cfg"), format!("nodes/{node}/routes")]);
    let output = calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap(), "--target", "birdd"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("unknown target `birdd`"));
    let output = calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap(), "--node", "cs9"]);
    assert!(text(&output.stderr).contains("no node named `cs9`"));
}

#[test]
fn templates_are_overridden_by_file_name() {
    let directory = tempfile::tempdir().unwrap();
    let templates = directory.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(templates.join("bird.cfg.j2"), "# site template for {{ node }}\n").unwrap();
    let out = directory.path().join("out");
    let output = calplan(&[
        "compile",
        "testdata/seed-rr/intent.yaml",
        "-o",
        out.to_str().unwrap(),
        "--target",
        "bird",
        "--templates",
        templates.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let bird = std::fs::read_to_string(out.join("nodes/cs1-k8s-m2.zpepc.com.cn/bird.cfg")).unwrap();
    assert_eq!(bird, "# site template for cs1-k8s-m2.zpepc.com.cn\n");
    std::fs::write(templates.join("bird.conf.j2"), "x").unwrap();
    let output =
        calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap(), "--templates", templates.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("`bird.conf.j2` overrides no template"), "{}", text(&output.stderr));
}

/// A compile that fails leaves the previous output as it was, and a directory that is not
/// calplan's is never replaced.
#[test]
fn a_failed_compile_leaves_the_old_output_and_foreign_directories_alone() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("out");
    assert_eq!(calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap()]).status.code(), Some(0));
    let before = files(&out);
    let templates = directory.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(templates.join("bird.cfg.j2"), "{{ no_such_variable }}\n").unwrap();
    let output =
        calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap(), "--templates", templates.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert_eq!(files(&out), before, "the old output is untouched");
    let leftovers: Vec<_> = std::fs::read_dir(directory.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no staging directory left behind: {leftovers:?}");
    let foreign = directory.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let output = calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", foreign.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("it has no `manifest.json`, so calplan did not write it"), "{}", text(&output.stderr));
    assert_eq!(std::fs::read_to_string(foreign.join("notes.txt")).unwrap(), "mine");
    let output =
        calplan(&["compile", "testdata/invalid/unknown-field/intent.yaml", "-o", directory.path().join("never").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!directory.path().join("never").exists(), "an invalid intent writes nothing");
}

/// `calplan compile INTENT -o DIR` run in `cwd`.
fn compile_in(cwd: &Path, intent: &str, out: &str) -> std::process::Output {
    let intent = crate::golden::root().join(intent);
    std::process::Command::new(env!("CARGO_BIN_EXE_calplan"))
        .args(["compile", intent.to_str().unwrap(), "-o", out])
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Every entry of a directory, hidden ones included.
fn entries(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(directory).unwrap().map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A directory holding a `manifest.json` used to be replaced whatever else it held (a web
/// project's manifest, a `.git`): only what calplan wrote and its manifest lists is replaced,
/// and a refusal names what would have been lost.
#[test]
fn only_a_directory_calplan_wrote_is_replaced() {
    let directory = tempfile::tempdir().unwrap();
    let web = directory.path().join("web");
    std::fs::create_dir(&web).unwrap();
    std::fs::write(web.join("manifest.json"), r#"{"name": "shop", "icons": []}"#).unwrap();
    std::fs::write(web.join("index.html"), "<html>").unwrap();
    let output = calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", web.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("its `manifest.json` is not one calplan wrote") && stderr.contains("would delete `index.html`, `manifest.json`"),
        "{stderr}"
    );
    assert_eq!(entries(&web), ["index.html", "manifest.json"]);

    let out = directory.path().join("out");
    assert_eq!(calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap()]).status.code(), Some(0));
    std::fs::write(out.join("nodes/notes.txt"), "mine").unwrap();
    std::fs::create_dir(out.join(".git")).unwrap();
    std::os::unix::fs::symlink("/", out.join("calico/root")).unwrap();
    let output = calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("its manifest does not list, and replacing it would delete `.git/`, `calico/root`, `nodes/notes.txt`"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(out.join("nodes/notes.txt")).unwrap(), "mine");

    let file = directory.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let output = calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", file.to_str().unwrap()]);
    assert!(text(&output.stderr).contains("is a file, not a directory"), "{}", text(&output.stderr));
    let output = calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", "/"]);
    assert!(text(&output.stderr).contains("will not replace `/`: it has no `manifest.json`"), "{}", text(&output.stderr));
}

/// `-o .` failed with "Device or resource busy" and left its staging directory beside the
/// target. Now the directory itself is never renamed: `.` works when calplan wrote it, a link
/// to an output directory is written through, and nothing is left behind.
#[test]
fn compile_into_the_current_directory_or_through_a_link() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for _ in 0..2 {
        let output = compile_in(&out, "testdata/seed-rr/intent.yaml", ".");
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        assert_eq!(entries(&out), ["calico", "manifest.json", "nodes", "routers"]);
        assert_eq!(entries(directory.path()), ["out"], "nothing beside the output");
    }
    std::fs::write(directory.path().join("intent.yaml"), "x").unwrap();
    let output = compile_in(directory.path(), "testdata/seed-rr/intent.yaml", ".");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("would delete `intent.yaml`, `out/`"), "{}", text(&output.stderr));

    let link = directory.path().join("link");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    let output = calplan(&["compile", "testdata/mesh-ipip/intent.yaml", "-o", link.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
    assert_eq!(entries(&out), ["calico", "manifest.json", "nodes", "routers"]);
    let loaded = calplan::current::load(&[out.display().to_string()]).unwrap();
    assert!(loaded.diagnostics.is_empty(), "the new output reads back whole: {:?}", loaded.diagnostics);
}
