//! The gwctl binary: see the library crate for the work.

use std::io;
use std::process::ExitCode;

fn main() -> ExitCode {
    let code = gwctl::run(std::env::args_os(), &mut io::stdout().lock(), &mut io::stderr().lock());
    ExitCode::from(code)
}
