fn main() -> std::process::ExitCode {
    wasmbuild::cli::main()
}
