//! The `haflow` binary: everything is in the library; see `cli`.

fn main() -> std::process::ExitCode {
    haflow::cli::main()
}
