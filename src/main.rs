//! The `email-sessions` binary; the command line lives in the library (`cli`).

/// A request makes many small, short-lived allocations across worker threads: mimalloc's
/// thread-local free lists serve them for less than glibc's malloc did (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    email_sessions::main()
}
