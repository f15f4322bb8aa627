fn main() -> std::process::ExitCode {
    calplan::cli::run(std::env::args_os())
}
