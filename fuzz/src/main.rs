//! `calplan-fuzz`: the worker the fuzzing supervisor runs (`tests/fuzz.rs`), and the way to run
//! one kept input again.
//!
//! ```text
//! calplan-fuzz work TARGET SEED INPUT-FILE MEMORY-BYTES   mutate and run inputs until killed,
//!                                                         each written to INPUT-FILE first
//! calplan-fuzz one TARGET FILE                            run one input
//! ```

use calplan_fuzz::{Random, Target, limit_memory, mutate, run, seed_files};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = |name: &str| Target::parse(name).unwrap_or_else(|| panic!("unknown target `{name}`: `check` or `current`"));
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["work", name, seed, input_file, memory] => {
            let target = target(name);
            let memory: u64 = memory.parse().expect("MEMORY-BYTES is a number");
            limit_memory(memory).expect("setrlimit");
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the repository");
            let seeds: Vec<Vec<u8>> = seed_files(root, target).iter().map(|path| std::fs::read(path).expect("a seed file")).collect();
            assert!(!seeds.is_empty(), "no seed files for `{name}`");
            let mut random = Random::new(seed.parse().expect("SEED is a number"));
            let mut count: u64 = 0;
            loop {
                let input = mutate(&mut random, &seeds);
                // Written whole before it runs, so whatever kills this process leaves it behind.
                let mut file = std::fs::File::create(input_file).expect("the input file");
                file.write_all(&input).expect("the input file");
                drop(file);
                run(target, &input);
                count += 1;
                // The supervisor reads the count from standard output to report throughput.
                if count.is_multiple_of(8) {
                    println!("{count}");
                }
            }
        }
        ["one", name, file] => {
            let input = std::fs::read(file).expect("the input file");
            run(target(name), &input);
            eprintln!("`{file}` ran through `{name}` without failing");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: calplan-fuzz work TARGET SEED INPUT-FILE MEMORY-BYTES | calplan-fuzz one TARGET FILE");
            ExitCode::from(2)
        }
    }
}
