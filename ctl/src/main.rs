//! The gwctl binary: see the library crate for the work.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    // One buffered writer: a listing of 100,000 lines leaves in a few large writes.
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let code = gwctl::run(std::env::args_os(), &mut out, &mut io::stderr().lock());
    let _ = out.flush();
    ExitCode::from(code)
}
