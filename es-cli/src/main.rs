//! The `es` operator command line; see `es --help`.

fn main() -> std::process::ExitCode {
    es_cli::main()
}
