//! The `casefile` command: parse the command line, then hand over to the library.

use std::process::ExitCode;

use clap::Parser;

/// Measured on the case page under load: glibc's malloc/free took about 30% of the
/// server's CPU; mimalloc serves the same allocations from per-thread pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // No transparent huge pages for this process (nor the embedded PostgreSQL it starts,
    // which inherits the flag): mimalloc asks for them on its arenas, and then frees
    // memory in 4 KiB pages inside 2 MiB ones the kernel keeps whole or collapses again.
    // Measured under the soak's mixed load: RSS rose from 70 to 111 MiB in 12 minutes
    // with them and stayed near 45 MiB without (glibc's malloc: 54 MiB; the live heap
    // peaked at 7 MiB). A kernel without the call keeps its default.
    let _ = nix::sys::prctl::set_thp_disable(true);
    let cli = casefile::cli::Cli::parse();
    casefile::telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(casefile::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
