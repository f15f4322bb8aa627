//! Plans people can review: the plan file that cannot say one thing and do another, grouped
//! plans on a generated 1,000-node cluster, the Markdown form rendered by a GitHub-flavoured
//! renderer in a real browser, base-branch diffs, the README's CI recipes run as written, and
//! the command-line conventions (completions, manual pages, colour, quiet).

use crate::cli::{calplan, calplan_with, text};
use crate::golden;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BASE: &str = "testdata/mesh-to-rr/mesh.yaml";
const HEAD: &str = "testdata/mesh-to-rr/intent.yaml";

fn saved_plan(directory: &Path) -> PathBuf {
    let path = directory.join("rr.plan");
    let output = calplan(&["plan", HEAD, "--current", BASE, "-o", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    path
}

/// Rewrites a plan file's digest to match its edited content, as a forger would.
fn redigest(text: &str) -> String {
    let mut document: serde_json::Value = serde_json::from_str(text).unwrap();
    document["digest"] = "".into();
    let digest = calplan_plan::current::text_digest(&serde_json::to_string(&document).unwrap());
    document["digest"] = format!("sha256:{digest}").into();
    serde_json::to_string_pretty(&document).unwrap()
}

fn refused(path: &Path) -> String {
    let show = calplan(&["show", path.to_str().unwrap()]);
    assert_eq!(show.status.code(), Some(1), "show accepted {}: {}", path.display(), text(&show.stdout));
    let state = path.with_extension("state");
    let apply = calplan(&["apply", path.to_str().unwrap(), "--state", state.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(1));
    assert_eq!(text(&apply.stderr), text(&show.stderr), "apply and show refuse alike");
    assert!(!state.exists(), "apply touched its state before refusing the plan");
    text(&show.stderr)
}

#[test]
fn a_plan_edited_after_review_is_refused_by_show_and_apply_saying_where() {
    let directory = tempfile::tempdir().unwrap();
    let path = saved_plan(directory.path());
    let original = std::fs::read_to_string(&path).unwrap();
    let edited = directory.path().join("edited.plan");
    let name = edited.display().to_string();

    // The reviewed diff left alone, what apply writes changed: the digest no longer matches.
    let evil = original.replacen("\"peerSelector\": \"route-reflector == 'true'\"", "\"peerSelector\": \"all()\"", 1);
    assert_ne!(evil, original);
    std::fs::write(&edited, &evil).unwrap();
    let line = evil.lines().position(|line| line.trim_start().starts_with("\"digest\"")).unwrap() + 1;
    let message = refused(&edited);
    assert!(message.starts_with(&format!("error: {name}:{line}:3: the plan was changed after calplan wrote it")), "{message}");

    // The same edit with the digest made to match: the stored diff is not what apply writes.
    std::fs::write(&edited, redigest(&evil)).unwrap();
    let message = refused(&edited);
    assert!(message.contains("its `diff` is not the diff of its `before` and `after`"), "{message}");

    // The summary the confirmation used to print, falsified.
    let mut document: serde_json::Value = serde_json::from_str(&original).unwrap();
    document["summary"]["add"] = 0.into();
    std::fs::write(&edited, redigest(&document.to_string())).unwrap();
    assert!(refused(&edited).contains("`summary` says"));

    // Structure: a duplicate stage, a cut-off file, a byte-order mark; each with its place.
    let duplicate = redigest(&original.replacen("\"number\": 2", "\"number\": 1", 1));
    std::fs::write(&edited, &duplicate).unwrap();
    let message = refused(&edited);
    assert!(message.contains("stage 1 appears twice (here stage 2 belongs)"), "{message}");
    assert!(message.starts_with(&format!("error: {name}:")), "{message}");
    std::fs::write(&edited, &original[..original.len() * 2 / 3]).unwrap();
    let message = refused(&edited);
    assert!(message.contains("the file ends before the plan does"), "{message}");
    std::fs::write(&edited, format!("\u{feff}{original}")).unwrap();
    assert!(refused(&edited).starts_with(&format!("error: {name}:1:1: the file starts with a byte-order mark")));

    // Untouched, it shows; what it shows is computed from the content apply writes.
    let show = calplan(&["show", path.to_str().unwrap()]);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show.stderr));
    assert!(text(&show.stdout).contains("+peerSelector: route-reflector == 'true'"));
}

/// `bench/gen_intent.py N --shape rack-groups --node-agent bird` (the benchmarks' generator,
/// in the shape of `bench/run.sh compare`, its nodes on BIRD 2 so that calplan loads their
/// rulesets) and the one-line change the benchmarks plan: zone b's pool stops masquerading.
fn generated_cluster(directory: &Path, nodes: usize) -> (PathBuf, PathBuf) {
    let output = Command::new("python3")
        .arg(golden::root().join("bench/gen_intent.py"))
        .args([nodes.to_string().as_str(), "--shape", "rack-groups", "--node-agent", "bird"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let base = directory.join(format!("cluster-{nodes}.yaml"));
    let head = directory.join(format!("nat-off-{nodes}.yaml"));
    let intent = text(&output.stdout);
    let changed = intent.replace("ipipMode: CrossSubnet, natOutgoing: true", "ipipMode: CrossSubnet, natOutgoing: false");
    assert_ne!(intent, changed);
    std::fs::write(&base, intent).unwrap();
    std::fs::write(&head, changed).unwrap();
    (base, head)
}

#[test]
fn a_one_line_change_on_1000_nodes_reads_in_a_screenful_and_fits_a_comment() {
    let directory = tempfile::tempdir().unwrap();
    let (base, head) = generated_cluster(directory.path(), 1000);
    let plan_file = directory.path().join("plan.json");
    let (base, head, plan_path) = (base.to_str().unwrap(), head.to_str().unwrap(), plan_file.to_str().unwrap());
    let human = calplan(&["plan", head, "--current", base, "-o", plan_path]);
    assert_eq!(human.status.code(), Some(0), "{}", text(&human.stderr));
    let human = text(&human.stdout).replace(directory.path().to_str().unwrap(), "TMP");
    assert!(human.lines().count() < 150, "{} lines", human.lines().count());
    assert!(human.contains("Plan: 0 to add, 2001 to change, 0 to destroy, 0 to replace."));
    let markdown = calplan(&["show", plan_path, "--format", "markdown"]);
    let markdown = text(&markdown.stdout).replace(directory.path().to_str().unwrap(), "TMP");
    assert!(markdown.len() < 60_000);
    // The JSON plan keeps every change, and the groups index them.
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let stage = &json["stages"][0];
    assert_eq!(stage["changes"].as_array().unwrap().len(), 2001);
    let grouped: usize = stage["groups"].as_array().unwrap().iter().map(|group| group["changes"].as_array().unwrap().len()).sum();
    assert_eq!(grouped, 2001);
    let failures: Vec<String> = [("nat-off-1000.plan.txt", human), ("nat-off-1000.plan.md", markdown)]
        .into_iter()
        .filter_map(|(name, actual)| golden::check(&golden::root().join("testdata/generated").join(name), &actual).err())
        .collect();
    golden::assert_all(failures);
}

#[test]
fn planning_against_a_base_intent_is_planning_against_its_compiled_directory() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("out");
    let compile = calplan(&["compile", BASE, "-o", out.to_str().unwrap()]);
    assert_eq!(compile.status.code(), Some(0), "{}", text(&compile.stderr));
    let against_directory = calplan(&["plan", HEAD, "--current", out.to_str().unwrap()]);
    let against_intent = calplan(&["plan", HEAD, "--current", BASE]);
    assert_eq!(against_intent.status.code(), Some(0), "{}", text(&against_intent.stderr));
    assert_eq!(text(&against_intent.stdout), text(&against_directory.stdout));
    assert!(text(&against_intent.stdout).contains("Stage 1: Pin routes"), "node files are planned too");
    let nothing = calplan(&["plan", BASE, "--current", BASE, "--detailed-exitcode"]);
    assert_eq!(nothing.status.code(), Some(0), "{}", text(&nothing.stdout));
    // A broken base is reported where it breaks, as a broken intent is.
    let broken = directory.path().join("broken.yaml");
    std::fs::write(&broken, std::fs::read_to_string(BASE).unwrap().replace("asNumber: 63400", "asNumber: -1")).unwrap();
    let output = calplan(&["plan", HEAD, "--current", broken.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("broken.yaml:"), "{}", text(&output.stderr));
}

/// Waits for a child with a deadline, killing it when the deadline passes.
fn finish(mut child: std::process::Child, deadline: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Headless Chromium from Debian's package, isolated in a profile of its own.
fn chromium(profile: &Path, args: &[&str]) -> Output {
    let child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium runs (.ci/setup installs it)");
    finish(child, Duration::from_secs(300))
}

/// The Markdown as GitHub renders it: GitHub-flavoured (tables, raw `<details>`), code fences
/// with their language on `<pre lang>`, in a page with a little of GitHub's style.
fn github_page(markdown: &str, open_first: bool) -> String {
    let mut options = comrak::Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    options.extension.tasklist = true;
    options.render.r#unsafe = true;
    options.render.github_pre_lang = true;
    let body = comrak::markdown_to_html(markdown, &options);
    let body = if open_first { body.replacen("<details>", "<details open>", 1) } else { body };
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><style>\
         body {{ font: 14px -apple-system, 'Segoe UI', sans-serif; margin: 24px; max-width: 1000px; color: #1f2328; }}\
         table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #d0d7de; padding: 6px 13px; vertical-align: top; }}\
         pre {{ background: #f6f8fa; padding: 12px; overflow: auto; font: 12px monospace; }}\
         code {{ background: #eff1f3; padding: 1px 4px; }} pre code {{ background: none; padding: 0; }}\
         details {{ border: 1px solid #d0d7de; margin: 8px 0; padding: 4px 8px; }}\
         </style></head><body>\n{body}</body></html>\n"
    )
}

#[test]
fn the_markdown_plan_renders_in_a_real_browser_needs_chromium() {
    let directory = tempfile::tempdir().unwrap();
    let output = calplan(&["plan", "testdata/seed-rr/intent.yaml", "--current", "testdata/seed-rr/current", "--format", "markdown"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let markdown = text(&output.stdout);
    assert!(markdown.len() < 60_000);
    let page = directory.path().join("plan.html");
    std::fs::write(&page, github_page(&markdown, true)).unwrap();
    let url = format!("file://{}", page.display());
    let dom = chromium(&directory.path().join("profile"), &["--dump-dom", &url]);
    assert!(dom.status.success(), "{}", text(&dom.stderr));
    let dom = text(&dom.stdout);
    // Three stages, each a collapsible block whose summary names it, holding its diffs.
    assert_eq!(dom.matches("<details").count(), 3, "{dom}");
    assert!(dom.contains("<summary><b>Stage 1: Pools and settings</b> — 1 change</summary>"), "{dom}");
    assert!(dom.contains("<summary><b>Stage 3: Old BGP peerings</b> — 2 changes, disruptive</summary>"), "{dom}");
    for block in dom.split("<details").skip(1) {
        let block = &block[..block.find("</details>").expect("a closed block")];
        assert!(block.contains("<pre lang=\"diff\"><code>"), "a stage without a diff block: {block}");
    }
    // The summary table, and no Markdown left unrendered.
    assert!(dom.contains("<th>Stage</th>") && dom.contains("<th>Disruptive</th>") && dom.contains("<th>Barrier</th>"), "{dom}");
    assert!(!dom.contains("```") && !dom.contains("**"), "{dom}");
    assert!(dom.contains("+peerSelector: route-reflector == 'true'"), "{dom}");

    // A plan too large for one comment: cut to fit, saying where the rest is.
    let large = large_plan(400, 300);
    let markdown = calplan_plan::markdown::markdown(&large, "`plan.json`");
    assert!(markdown.len() <= calplan_plan::markdown::LIMIT);
    std::fs::write(&page, github_page(&markdown, true)).unwrap();
    let dom = text(&chromium(&directory.path().join("profile"), &["--dump-dom", &url]).stdout);
    assert!(dom.contains("diff lines shown: the whole diff is in the JSON plan (<code>plan.json</code>)"), "{dom}");

    // A screenshot to look at: `target/review/plan-markdown.png`.
    let screenshots = golden::root().join("target/review");
    std::fs::create_dir_all(&screenshots).unwrap();
    let seed = calplan(&["plan", "testdata/seed-rr/intent.yaml", "--current", "testdata/seed-rr/current", "--format", "markdown"]);
    std::fs::write(&page, github_page(&text(&seed.stdout), true)).unwrap();
    let shot = screenshots.join("plan-markdown.png");
    let _ = std::fs::remove_file(&shot);
    let output =
        chromium(&directory.path().join("profile"), &[&format!("--screenshot={}", shot.display()), "--window-size=1100,1400", &url]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "an empty screenshot");
}

/// `nodes` changes of `lines` lines each, every node's its own.
fn large_plan(nodes: usize, lines: usize) -> calplan_plan::plan::Plan {
    use calplan_plan::plan::*;
    let changes = (0..nodes)
        .map(|n| Change {
            action: Action::Update,
            kind: "routes".into(),
            name: format!("n{n}"),
            target: Target::Node { node: format!("n{n}") },
            before: Some(Content::File { text: (0..lines).map(|line| format!("route {line} weight {n}\n")).collect() }),
            after: Some(Content::File { text: String::new() }),
            reason: None,
            informational: false,
        })
        .collect();
    Plan {
        intent: Fingerprint { name: "intent.yaml".into(), sha256: String::new() },
        current: Vec::new(),
        nodes: None,
        node_agent: calplan_model::NodeAgent::Bird,
        router_platforms: Default::default(),
        stages: vec![Stage {
            number: 1,
            title: "Routes".into(),
            reason: "every node's routes go".into(),
            disruption: None,
            changes,
            manual: Vec::new(),
            barrier: None,
            expected_status: Default::default(),
        }],
        notes: Vec::new(),
    }
}

/// Runs a recipe's shell commands as its CI would (bash, stop at the first failure).
fn shell(script: &str, directory: &Path, environment: &[(String, String)]) -> Output {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_calplan"));
    let path = format!("{}:{}", binary.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(directory)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .envs(environment.iter().map(|(key, value)| (key, value)))
        .output()
        .unwrap()
}

/// A repository like the recipes expect: `cluster/intent.yaml` on `main` (pushed to `origin`),
/// and a branch that changes it.
fn repository(directory: &Path, base: &str, head: &str) -> PathBuf {
    let git = |arguments: &[&str], at: &Path| {
        let output = Command::new("git")
            .args(["-c", "init.defaultBranch=main", "-c", "user.name=ci", "-c", "user.email=ci@example.com"])
            .args(arguments)
            .current_dir(at)
            .output()
            .unwrap();
        assert!(output.status.success(), "git {arguments:?}: {}", text(&output.stderr));
    };
    git(&["init", "-q", "--bare", "origin.git"], directory);
    let work = directory.join("work");
    std::fs::create_dir_all(work.join("cluster")).unwrap();
    git(&["init", "-q"], &work);
    git(&["remote", "add", "origin", directory.join("origin.git").to_str().unwrap()], &work);
    std::fs::copy(golden::root().join(base), work.join("cluster/intent.yaml")).unwrap();
    git(&["add", "."], &work);
    git(&["commit", "-qm", "base"], &work);
    git(&["push", "-q", "origin", "HEAD:main"], &work);
    git(&["fetch", "-q", "origin"], &work);
    git(&["checkout", "-qb", "change"], &work);
    std::fs::copy(golden::root().join(head), work.join("cluster/intent.yaml")).unwrap();
    git(&["commit", "-qam", "route reflectors"], &work);
    work
}

fn recipe(name: &str) -> String {
    let text = std::fs::read_to_string(golden::root().join(name)).unwrap();
    let readme = std::fs::read_to_string(golden::root().join("README.md")).unwrap();
    assert!(readme.contains(&text), "README.md does not show `{name}` as it is");
    text
}

fn yaml(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).unwrap()
}

#[test]
fn the_github_actions_recipe_runs_as_written() {
    let workflow = yaml(&recipe("docs/ci/github-actions.yml"));
    let directory = tempfile::tempdir().unwrap();
    let work = repository(directory.path(), BASE, HEAD);
    let outputs = directory.path().join("github-output");
    let runner_temp = directory.path().join("runner-temp");
    std::fs::create_dir_all(&runner_temp).unwrap();
    let mut ran = Vec::new();
    for step in workflow["jobs"]["plan"]["steps"].as_array().unwrap() {
        let Some(script) = step["run"].as_str() else { continue };
        // The runner has calplan on PATH already: the test's own build.
        if step["name"] == "Install calplan" {
            continue;
        }
        let mut environment: Vec<(String, String)> =
            vec![("GITHUB_OUTPUT".into(), outputs.display().to_string()), ("RUNNER_TEMP".into(), runner_temp.display().to_string())];
        for (key, value) in step["env"].as_object().into_iter().flatten() {
            let value = match value.as_str().unwrap() {
                "${{ github.base_ref }}" => "main".to_string(),
                other => panic!("a step environment this test does not know: {other}"),
            };
            environment.push((key.clone(), value));
        }
        let output = shell(script, &work, &environment);
        assert!(output.status.success(), "step `{}` failed: {}{}", step["name"], text(&output.stdout), text(&output.stderr));
        ran.push(step["name"].as_str().unwrap().to_string());
    }
    assert_eq!(ran, ["Check the intent", "Plan against the base branch"]);
    assert_eq!(std::fs::read_to_string(&outputs).unwrap(), "changes=true\n");
    // What the upload and comment steps take.
    for step in workflow["jobs"]["plan"]["steps"].as_array().unwrap() {
        if let Some(path) = step["with"]["path"].as_str() {
            assert!(work.join(path).is_file(), "`{path}` was not written");
        }
    }
    let comment = std::fs::read_to_string(work.join("plan.md")).unwrap();
    assert!(comment.len() < 65_536 && comment.contains("<details>"), "{comment}");
    let show = calplan(&["show", work.join("plan.json").to_str().unwrap()]);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show.stderr));
    // An intent with errors: the check step fails with annotations on the offending line.
    std::fs::copy(golden::root().join("testdata/invalid/unknown-field/intent.yaml"), work.join("cluster/intent.yaml")).unwrap();
    let check = workflow["jobs"]["plan"]["steps"].as_array().unwrap().iter().find(|step| step["name"] == "Check the intent").unwrap();
    let output = shell(check["run"].as_str().unwrap(), &work, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("::error file=cluster/intent.yaml,line="), "{}", text(&output.stdout));
}

#[test]
fn the_gitlab_recipe_runs_as_written() {
    let job = yaml(&recipe("docs/ci/gitlab-ci.yml"))["calplan"].clone();
    let directory = tempfile::tempdir().unwrap();
    let work = repository(directory.path(), BASE, HEAD);
    let script: Vec<&str> = job["script"].as_array().unwrap().iter().map(|line| line.as_str().unwrap()).collect();
    let environment = [("CI_MERGE_REQUEST_TARGET_BRANCH_NAME".to_string(), "main".to_string())];
    let output = shell(&script.join("\n"), &work, &environment);
    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
    for artifact in job["artifacts"]["paths"].as_array().unwrap() {
        assert!(work.join(artifact.as_str().unwrap()).is_file(), "{artifact} was not written");
    }
    let sarif: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(work.join("calplan.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
}

#[test]
fn the_pre_commit_hook_runs_as_written() {
    let hooks = yaml(&recipe(".pre-commit-hooks.yaml"));
    let hook = &hooks[0];
    assert_eq!(hook["pass_filenames"], false);
    let directory = tempfile::tempdir().unwrap();
    let work = repository(directory.path(), BASE, HEAD);
    // The README's configuration gives the intent as the hook's argument.
    let command = format!("{} cluster/intent.yaml", hook["entry"].as_str().unwrap());
    assert_eq!(shell(&command, &work, &[]).status.code(), Some(0));
    std::fs::copy(golden::root().join("testdata/invalid/unknown-field/intent.yaml"), work.join("cluster/intent.yaml")).unwrap();
    let output = shell(&command, &work, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("cluster/intent.yaml:"), "{}", text(&output.stderr));
}

/// Every manual page clap_mangen makes from the command line: `calplan.1`, and
/// `calplan-<subcommand>.1` for each subcommand.
fn manual_pages() -> Vec<(String, String)> {
    let mut command = calplan::cli::command();
    command.build();
    let render = |command: clap::Command| {
        let mut page = Vec::new();
        clap_mangen::Man::new(command).render(&mut page).unwrap();
        String::from_utf8(page).unwrap()
    };
    let mut pages = vec![("calplan.1".to_string(), render(command.clone()))];
    for subcommand in command.get_subcommands().filter(|subcommand| subcommand.get_name() != "help") {
        // clap names commands with `&'static str`s; a test may keep a few.
        let name: &'static str = format!("calplan-{}", subcommand.get_name()).leak();
        pages.push((format!("{name}.1"), render(subcommand.clone().name(name))));
    }
    pages
}

#[test]
fn manual_pages_are_current_and_man_renders_them() {
    let directory = golden::root().join("docs/man");
    let pages = manual_pages();
    let mut failures: Vec<String> = pages.iter().filter_map(|(name, page)| golden::check(&directory.join(name), page).err()).collect();
    for entry in std::fs::read_dir(&directory).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !pages.iter().any(|(page, _)| *page == name) {
            failures.push(format!("docs/man/{name}: no subcommand has this page any more"));
        }
    }
    golden::assert_all(failures);
    for (name, _) in &pages {
        let output =
            Command::new("man").arg("-l").arg(directory.join(name)).env("MANPAGER", "cat").env("MANWIDTH", "100").output().unwrap();
        let page = text(&output.stdout);
        assert!(output.status.success() && page.contains("NAME") && page.contains("SYNOPSIS"), "{name}: {page}");
    }
    let plan = Command::new("man").arg("-l").arg(directory.join("calplan-plan.1")).env("MANPAGER", "cat").output().unwrap();
    assert!(text(&plan.stdout).contains("--detailed-exitcode"));
}

#[test]
fn the_readme_installs_completions_and_manual_pages() {
    let readme = std::fs::read_to_string(golden::root().join("README.md")).unwrap();
    let block = readme.split("<!-- install -->").nth(1).expect("README.md marks its install commands with <!-- install -->");
    let commands: Vec<&str> = block
        .lines()
        .skip_while(|line| !line.starts_with("```sh"))
        .skip(1)
        .take_while(|line| !line.starts_with("```"))
        .filter(|line| !line.starts_with("cargo install"))
        .collect();
    assert!(commands.len() >= 3, "{commands:?}");
    let home = tempfile::tempdir().unwrap();
    let environment = [("HOME".to_string(), home.path().display().to_string())];
    let output = shell(&commands.join("\n"), &golden::root(), &environment);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // bash finds the completion where bash-completion looks, and it completes subcommands.
    let completion = home.path().join(".local/share/bash-completion/completions/calplan");
    let script = format!(
        "source {}; COMP_WORDS=(calplan pl); COMP_CWORD=1; _calplan calplan pl calplan; echo \"${{COMPREPLY[*]}}\"",
        completion.display()
    );
    assert_eq!(text(&shell(&script, home.path(), &[]).stdout).trim(), "plan");
    for shell_name in ["zsh", "fish"] {
        let output = calplan(&["completions", shell_name]);
        assert!(output.status.success() && text(&output.stdout).contains("completions"), "{shell_name}");
    }
    let man = Command::new("man")
        .args(["-M", &home.path().join(".local/share/man").display().to_string(), "calplan-plan"])
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    assert!(text(&man.stdout).contains("--detailed-exitcode"), "{}", text(&man.stderr));
}

#[test]
fn colour_follows_the_flag_and_no_color_and_quiet_keeps_standard_error_quiet() {
    let plan = ["plan", HEAD, "--current", BASE];
    let always = calplan_with(&[&plan[..], &["--color", "always"]].concat(), &[("NO_COLOR", "")]);
    assert!(text(&always.stdout).contains("\u{1b}["), "--color always colours a pipe");
    let auto = calplan_with(&plan, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!text(&auto.stdout).contains("\u{1b}["), "NO_COLOR wins in auto");
    let never = calplan_with(&[&plan[..], &["--color", "never"]].concat(), &[("CLICOLOR_FORCE", "1")]);
    assert!(!text(&never.stdout).contains("\u{1b}["));
    // Not a terminal: no spinner, only the plain lines; `-q`: nothing but the output.
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("out");
    let compile = calplan(&["compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap()]);
    let stderr = text(&compile.stderr);
    assert!(stderr.starts_with("wrote ") && stderr.ends_with(&format!(" artifacts to `{}`\n", out.display())), "{stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    let quiet = calplan(&["-q", "compile", "testdata/seed-rr/intent.yaml", "-o", out.to_str().unwrap()]);
    assert_eq!((quiet.status.code(), text(&quiet.stderr)), (Some(0), String::new()));
    let check = calplan(&["check", "testdata/seed-rr/intent.yaml", "--quiet"]);
    assert_eq!(text(&check.stderr), "");
    // On a terminal (util-linux's `script` gives the command one), the spinner shows; not under -q.
    let on_terminal = |arguments: &str| {
        let command = format!("{} {arguments}", env!("CARGO_BIN_EXE_calplan"));
        let output = Command::new("script").args(["-qec", &command, "/dev/null"]).current_dir(golden::root()).output().unwrap();
        text(&output.stdout)
    };
    let compile = format!("compile testdata/seed-rr/intent.yaml -o {}", out.display());
    assert!(on_terminal(&compile).contains("writing artifacts:"), "no progress on a terminal");
    assert!(!on_terminal(&format!("-q {compile}")).contains("writing artifacts:"));
    let saved = directory.path().join("p.json");
    let quiet_plan = calplan(&[&plan[..], &["-q", "-o", saved.to_str().unwrap()]].concat());
    assert_eq!(text(&quiet_plan.stderr), "");
    assert!(!text(&quiet_plan.stdout).is_empty());
}
