//! ipvsadm 1.31's grammar, as gwctl speaks it and gatewayd loads it.
//!
//! One parser for both sides: `gwctl` turns its command line into a
//! [`gw_proto::Request`] here, and `gatewayd` reads rules files (`gwctl -S`
//! output, `[control] rules`, the TOML `[[service]]` sections) with the same
//! code, so a line means the same thing wherever it is written.
//!
//! Parsing is two steps (ripgrep's shape): [`cli`] reads the raw arguments
//! with clap, then [`resolve`] checks them as ipvsadm's `process_options` does
//! and builds one validated [`resolve::Invocation`], or a [`error::Failure`]
//! with ipvsadm's message and exit status. [`rules`] runs whole rules files
//! through both steps; [`values`] parses option values and [`services`] looks
//! up port names. Nothing here does I/O but reading `/etc/services`
//! ([`services::PortNames::system`]).

pub mod cli;
pub mod error;
pub mod resolve;
pub mod rules;
pub mod services;
pub mod usage;
pub mod values;

pub use crate::rules::{parse_rule_lines, parse_rule_lines_as, parse_rules, Rule, RulesError};
