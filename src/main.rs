fn main() {
    wasmbuild::startup::mark(wasmbuild::startup::MAIN);
    let status = wasmbuild::cli::main();
    wasmbuild::startup::mark("done");
    wasmbuild::exit::exit(status)
}
