fn main() -> std::process::ExitCode {
    enate_bridge::cli::run()
}
