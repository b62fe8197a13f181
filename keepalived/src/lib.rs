//! keepalived.conf as gatewayd runs it.
//!
//! gatewayd reads keepalived's configuration files as they are: the
//! `virtual_server` blocks (and `virtual_server_group`, DPVS's
//! `local_address_group` for FNAT) become the same control requests gwctl
//! sends (`AddService`, `AddDest`, `AddLaddr`), so a file applies through the
//! one control path. The grammar is keepalived's own (`lib/parser.c`):
//! comments from `#` or `!`, quoted words, `{` / `}` anywhere outside quotes,
//! `include` with glob patterns relative to the including file, `@id` lines
//! and `$NAME=value` definitions.
//!
//! Three steps, each in its own module: [`reader`] turns files into tokens
//! with their file and line, [`tree`] nests them into blocks, [`model`]
//! checks every keyword and value into typed structs (health checkers in
//! [`check`]), and [`requests`] resolves them to services with keepalived's
//! defaults. Anything wrong refuses the whole file with keepalived's
//! `(file: Line N) message`; blocks and keywords gatewayd does not run
//! (`vrrp_instance`, `global_defs`, `smtp_alert`, ...) are skipped with a
//! [`Notice`] naming their line.
//!
//! Health checkers (`TCP_CHECK`, `HTTP_GET`, `SSL_GET`, `UDP_CHECK`,
//! `MISC_CHECK`), `sorry_server`, `quorum`, `alpha`/`omega` and
//! `inhibit_on_failure` are parsed and validated and kept in the model for a
//! checker to run; this crate runs nothing, and the services it yields have
//! every real server in, with its configured weight.

#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use gw_proto::Request;

pub mod check;
pub mod model;
pub mod reader;
pub mod requests;
pub mod tree;
pub mod values;

pub use crate::model::Conf;
pub use crate::requests::Service;

/// Why a file was refused: keepalived's `(file: Line N) message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    pub file: PathBuf,
    /// The line, counted from 1; 0 when the file itself cannot be read.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "({}) {}", self.file.display(), self.message),
            l => write!(f, "({}: Line {l}) {}", self.file.display(), self.message),
        }
    }
}

/// Something skipped or defaulted, worth one line in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl Notice {
    pub(crate) fn new(at: &reader::Pos, message: impl Into<String>) -> Notice {
        Notice { file: at.file.to_path_buf(), line: at.line, message: message.into() }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}: Line {}) {}", self.file.display(), self.line, self.message)
    }
}

/// A configuration read and resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub conf: Conf,
    pub services: Vec<Service>,
    /// What was skipped (in file order), then what was defaulted.
    pub notices: Vec<Notice>,
}

impl Loaded {
    /// The requests that create every service, in file order.
    pub fn requests(&self) -> Vec<Request> {
        self.services.iter().flat_map(Service::requests).collect()
    }
}

/// Reads, checks and resolves the configuration at `path` and its includes.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    resolve(tree::build(reader::read(path)?)?)
}

/// [`load`] for text standing for the file `name` (includes are taken
/// relative to `name`'s directory).
pub fn parse_str(name: &Path, text: &str) -> Result<Loaded, Error> {
    resolve(tree::build(reader::read_str(name, text)?)?)
}

fn resolve(nodes: Vec<tree::Node>) -> Result<Loaded, Error> {
    let mut conf = model::parse(&nodes)?;
    let mut notices = std::mem::take(&mut conf.notices);
    requests::validate(&mut conf, &mut notices);
    let services = requests::services(&conf, &mut notices)?;
    Ok(Loaded { conf, services, notices })
}
