//! `gatewise`: see `gatewise --help`.

use clap::Parser;

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
