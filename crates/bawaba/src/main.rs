//! The `bawaba` binary: parses the command line, loads the config, and hands off to the library
//! crates. Errors print as one line (with their causes) and exit with status 1.

mod attacks;
mod cli;
mod commands;
mod config;
mod gateway;
mod inspect;
mod memory;
mod output;
mod policy_files;
mod remote;
mod serve;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    // Logs go to standard error: human-readable, or one JSON object a line with
    // BAWABA_LOG_FORMAT=json (for journald/Loki/Elastic). BAWABA_LOG sets the filter.
    let filter = tracing_subscriber::EnvFilter::try_from_env("BAWABA_LOG").unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("BAWABA_LOG_FORMAT").as_deref() == Ok("json") {
        logs.json().init();
    } else {
        logs.init();
    }
    match commands::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(1);
        }
    }
}
