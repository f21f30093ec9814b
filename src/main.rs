//! The `email-sessions` binary; the command line lives in the library (`cli`).

fn main() -> std::process::ExitCode {
    email_sessions::main()
}
