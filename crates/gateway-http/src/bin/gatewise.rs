//! `gatewise`: see `gatewise --help`.

use clap::Parser;

// A gateway allocates small buffers on every request from several threads; glibc's malloc
// showed up as ~12% of CPU under load, mimalloc's thread-local heaps avoid most of it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = gateway_http::cli::Cli::parse();
    match gateway_http::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("gatewise: {e}");
            std::process::exit(2);
        }
    }
}
