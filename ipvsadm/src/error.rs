//! Why gwctl stops, with the exit status ipvsadm 1.31 gives in the same case.
//!
//! ipvsadm exits with 2 from `fail(2, ...)`: a bad command line, and IPVS that
//! cannot be initialised (here: gatewayd's socket cannot be reached). It returns
//! -1, i.e. status 255, when popt rejects an option, when no command is given
//! (`tryhelp_exit`), and when a change (`-A -E -D -C -a -e -d -Z`) fails. A
//! listing that fails calls `exit(1)`. gwctl keeps that split, so scripts written
//! for ipvsadm read the same statuses. A rules file (`-R`) that gwctl refuses
//! exits as its bad line would on the command line (2, or 255 for an unknown
//! option); one that gatewayd refuses exits 255, as ipvsadm -R does when a
//! change fails.

use crate::rules::RulesError;

/// A reason to stop, printed on stderr; [`Failure::exit_code`] gives the status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The command line is wrong (ipvsadm's `fail(2, ...)` messages). Exit 2.
    #[error("{0}")]
    Usage(String),
    /// No command was given. Exit 255. The caller, which knows the program
    /// name as typed, prints [`try_help`]'s text for it.
    #[error("Try `gwctl -h' or 'gwctl --help' for more information.")]
    TryHelp,
    /// A second command, or `-h`/`-v` after the first option. Exit 2. The
    /// caller, which has the words as typed, names the one ipvsadm names
    /// ([`crate::cli::invalid_option`]: "invalid option `-Z'").
    #[error("invalid option")]
    InvalidOption,
    /// clap refused an option it does not know or a missing value (popt's error). Exit 255.
    #[error("{0}")]
    BadOption(String),
    /// gatewayd's socket cannot be reached. Exit 2, as "Can't initialize ipvs".
    #[error("Can't initialize gatewayd: {socket}: {reason}\nAre you sure that gatewayd is running?")]
    Unreachable { socket: String, reason: String },
    /// A change was refused or could not be completed. Exit 255.
    #[error("{0}")]
    ChangeFailed(String),
    /// A listing was refused or could not be completed. Exit 1.
    #[error("{0}")]
    QueryFailed(String),
    /// A line of the rules read by `-R` is wrong; nothing was sent.
    #[error("{0}")]
    Rules(RulesError),
    /// `-s` names no scheduler gatewayd has. ipvsadm sends any name and the
    /// kernel's ENOENT fails the change (255); gwctl prints libipvs's text
    /// ([`Failure::ipvsadm_text`]), while gatewayd's config errors name the word.
    #[error("Scheduler not found: {0}")]
    NoScheduler(String),
}

impl Failure {
    /// The process exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) | Failure::InvalidOption | Failure::Unreachable { .. } => 2,
            Failure::TryHelp | Failure::BadOption(_) | Failure::ChangeFailed(_) | Failure::NoScheduler(_) => {
                255
            }
            Failure::QueryFailed(_) => 1,
            Failure::Rules(e) => e.exit_code(),
        }
    }

    /// What gwctl prints on stderr: ipvsadm's text for the same failure.
    pub fn ipvsadm_text(&self) -> String {
        match self {
            Failure::NoScheduler(_) => gw_proto::ErrorKind::NoScheduler.ipvsadm_text().to_owned(),
            Failure::Rules(e) => format!("line {}: {}", e.line, e.ipvsadm_message()),
            other => other.to_string(),
        }
    }
}

/// ipvsadm's `tryhelp_exit` (exit 255), with the program name as typed.
pub fn try_help(program: &str) -> Failure {
    Failure::BadOption(format!("Try `{program} -h' or '{program} --help' for more information."))
}

/// An OS error as `strerror` words it: std's text without the " (os error N)" suffix.
pub fn os_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_owned(),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_ipvsadm() {
        assert_eq!(Failure::Usage("illegal weight specified".into()).exit_code(), 2);
        assert_eq!(Failure::TryHelp.exit_code(), 255);
        assert_eq!(Failure::InvalidOption.exit_code(), 2);
        let t = try_help("/sbin/gwctl");
        assert_eq!(
            (t.ipvsadm_text().as_str(), t.exit_code()),
            ("Try `/sbin/gwctl -h' or '/sbin/gwctl --help' for more information.", 255)
        );
        assert_eq!(Failure::ChangeFailed("No such service".into()).exit_code(), 255);
        assert_eq!(Failure::QueryFailed("No such service".into()).exit_code(), 1);
        let u = Failure::Unreachable { socket: "/x".into(), reason: "No such file or directory".into() };
        assert_eq!(u.exit_code(), 2);
        assert_eq!(
            u.to_string(),
            "Can't initialize gatewayd: /x: No such file or directory\n\
             Are you sure that gatewayd is running?"
        );
    }

    #[test]
    fn os_error_suffix_is_dropped() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(os_text(&e), "No such file or directory");
        let e = std::io::Error::other("plain");
        assert_eq!(os_text(&e), "plain");
    }
}
