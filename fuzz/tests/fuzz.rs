//! The fuzzing supervisor, run by `cargo test`: workers (`calplan-fuzz work`) run mutated
//! inputs through `check` and the `--current` readers under a limit on their address space,
//! and every way a worker can fail on an input is caught from outside it:
//!
//! - killed by a signal: a stack overflow or a failed allocation aborts, a wild access faults;
//! - exited at all: a worker only stops when killed, so any exit is a panic (code 101) or an
//!   exit an input caused;
//! - one input running longer than [`PER_INPUT`]: a hang, or work out of all proportion.
//!
//! The input is kept under `target/tmp/fuzz-failures/` and a new worker goes on with the next
//! seed. The run takes `CALPLAN_FUZZ_SECONDS` per target (20 by default, so the suite stays
//! within a minute); `CALPLAN_FUZZ_SEED` starts it elsewhere than seed 1, for longer runs that
//! explore further. The same seed and time give about the same inputs: the run is
//! reproducible, and CI explores the same ground every time.

use calplan_fuzz::Target;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The address space a worker may take: the limits of `docs/limits.md` hold inputs to a
/// fraction of it, so an input that needs more is exhausting memory.
const MEMORY: u64 = 1 << 30;

/// The longest one input may take, on a debug build and two busy cores.
const PER_INPUT: Duration = Duration::from_secs(15);

fn budget() -> Duration {
    let seconds = std::env::var("CALPLAN_FUZZ_SECONDS").ok().and_then(|text| text.parse().ok()).unwrap_or(20);
    Duration::from_secs(seconds)
}

fn first_seed() -> u64 {
    std::env::var("CALPLAN_FUZZ_SEED").ok().and_then(|text| text.parse().ok()).unwrap_or(1)
}

struct Failure {
    what: String,
    kept: PathBuf,
    stderr: String,
}

struct Worker {
    child: Child,
    seed: u64,
}

fn start(target: Target, seed: u64, directory: &Path) -> Worker {
    let stdout = std::fs::File::create(directory.join(format!("stdout-{seed}"))).unwrap();
    let stderr = std::fs::File::create(directory.join("stderr")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_calplan-fuzz"))
        .args(["work", target.name(), &seed.to_string()])
        .arg(directory.join("input"))
        .arg(MEMORY.to_string())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("calplan-fuzz runs");
    Worker { child, seed }
}

/// Keeps the input a worker failed on, and says how it failed.
fn keep(target: Target, worker: &Worker, directory: &Path, what: String) -> Failure {
    let kept_directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    std::fs::create_dir_all(&kept_directory).unwrap();
    let kept = kept_directory.join(format!("{}-seed-{}", target.name(), worker.seed));
    let _ = std::fs::copy(directory.join("input"), &kept);
    let stderr = std::fs::read_to_string(directory.join("stderr")).unwrap_or_default();
    let stderr = stderr.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    Failure { what, kept, stderr }
}

/// Runs workers on `target` for `budget`; returns how many inputs ran and the failures.
fn supervise(target: Target, budget: Duration) -> (u64, Vec<Failure>) {
    let directory = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + budget;
    let mut failures = Vec::new();
    let mut seed = first_seed();
    let mut worker = start(target, seed, directory.path());
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(status) = worker.child.try_wait().unwrap() {
            let what = match std::os::unix::process::ExitStatusExt::signal(&status) {
                Some(signal) => format!("killed by signal {signal} (an abort: stack overflow or failed allocation, or a fault)"),
                None if status.code() == Some(101) => "panicked".to_string(),
                None => format!("exited with {status}"),
            };
            failures.push(keep(target, &worker, directory.path(), what));
        } else {
            let running_for = std::fs::metadata(directory.path().join("input"))
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| SystemTime::now().duration_since(modified).ok())
                .unwrap_or_default();
            if running_for > PER_INPUT {
                let _ = worker.child.kill();
                let _ = worker.child.wait();
                failures.push(keep(target, &worker, directory.path(), format!("ran one input for over {PER_INPUT:?}")));
            } else if Instant::now() < deadline {
                continue;
            } else {
                let _ = worker.child.kill();
                let _ = worker.child.wait();
                break;
            }
        }
        if Instant::now() >= deadline || failures.len() >= 5 {
            break;
        }
        seed += 1;
        let _ = std::fs::remove_file(directory.path().join("input"));
        worker = start(target, seed, directory.path());
    }
    let executions = (first_seed()..=seed)
        .filter_map(|seed| std::fs::read_to_string(directory.path().join(format!("stdout-{seed}"))).ok())
        .filter_map(|text| text.lines().last().and_then(|line| line.parse::<u64>().ok()))
        .sum();
    (executions, failures)
}

/// No input, however built, aborts `check` or a `--current` reader, hangs it, or takes more
/// memory than the limits allow.
#[test]
fn inputs_never_abort_hang_or_exhaust_memory() {
    let mut report = Vec::new();
    for target in Target::ALL {
        let (executions, failures) = supervise(target, budget());
        eprintln!("fuzz `{}`: {executions} inputs in {:?}, {} failures", target.name(), budget(), failures.len());
        for failure in failures {
            report.push(format!(
                "`{}` {} on {}; run it again with `cargo run -p calplan_fuzz -- one {} {}`\n{}",
                target.name(),
                failure.what,
                failure.kept.display(),
                target.name(),
                failure.kept.display(),
                failure.stderr
            ));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n\n"));
}
