fn main() -> std::process::ExitCode {
    wasmbuild::startup::mark(wasmbuild::startup::MAIN);
    let status = wasmbuild::cli::main();
    wasmbuild::startup::mark("done");
    status
}
