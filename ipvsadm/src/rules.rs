//! Rules files: what `-R` reads and `-S` writes, and what gatewayd may load at start.
//!
//! A rules file is ipvsadm's: one command per line, written as on the command
//! line without the program name (`-A -t 198.18.0.100:80 -s wlc`). Each line goes
//! through the same two steps as a command line ([`crate::cli`], then
//! [`crate::resolve`]), so it is checked with the same messages. As ipvsadm's
//! `config_stream_read` does, words are split at blanks, tabs and carriage
//! returns (no quoting), a line without words is skipped, and the word `ipvsadm`
//! is dropped wherever it stands (so is `gwctl`). gwctl also skips everything
//! from a `#` to the end of the line: ipvsadm means to (its comment says so) but
//! its check looks at the wrong character, so a comment line there ends the
//! restore with "Try ... --help".
//!
//! Only changes may appear: `-A -E -D -C -a -e -d -Z --set --add-laddr
//! --del-laddr`. ipvsadm would also run a `-L` line; a rules file here is a
//! configuration, so a listing (or a nested `-R`) is refused.
//!
//! The whole file is checked before anything is sent: the first bad line is
//! reported with its number, and gatewayd sees nothing.
//!
//! Speed: clap needs some 60 µs for one line (it fills in a default for every
//! flag), too slow for 100,000 rules. But where clap puts a word that does not
//! start with `-` depends only on the words around it that do: it is the value
//! of the option before it or a positional, whatever it says. So lines are
//! parsed by *shape*: option words kept, every other word replaced by a numbered
//! marker. clap parses each shape once; a line of a known shape takes that
//! result with its own words put back in place of the markers. A file of
//! `-S` output has a handful of shapes, and parses in tens of milliseconds.
//! Errors are always reported from a parse of the real words.

use std::collections::HashMap;

use clap::{CommandFactory, FromArgMatches};
use gw_proto::Request;

use crate::cli::Cli;
use crate::error::{try_help, Failure};
use crate::services::PortNames;

/// Marks word `i` of a line's shape. A line may not hold a NUL, so no real word
/// can look like one (nor like [`crate::cli::BARE`], a lone NUL).
fn marker(i: usize) -> String {
    format!("\0{i}")
}

fn marker_index(s: &str) -> Option<usize> {
    s.strip_prefix('\0').filter(|d| !d.is_empty()).and_then(|d| d.parse().ok())
}

/// clap's parser with its results kept per line shape.
struct ShapeParser {
    command: clap::Command,
    /// Shape (option words kept, other words as a lone NUL, joined by newlines)
    /// to clap's result for that shape, with markers for the other words.
    shapes: HashMap<String, Cli>,
    key: String,
}

impl ShapeParser {
    fn new() -> ShapeParser {
        ShapeParser { command: Cli::command(), shapes: HashMap::new(), key: String::new() }
    }

    /// Parses `argv` (program name first) as clap would.
    fn parse(&mut self, argv: &[&str]) -> Result<Cli, clap::Error> {
        let is_word = |i: usize, w: &str| i > 0 && !w.starts_with('-');
        self.key.clear();
        for (i, w) in argv.iter().enumerate() {
            self.key.push_str(if is_word(i, w) { "\0" } else { w });
            self.key.push('\n');
        }
        let mut cli = match self.shapes.get(self.key.as_str()) {
            Some(cli) => cli.clone(),
            None => {
                let shape: Vec<String> = argv
                    .iter()
                    .enumerate()
                    .map(|(i, w)| if is_word(i, w) { marker(i) } else { (*w).to_owned() })
                    .collect();
                match self.clap(&shape) {
                    Ok(cli) => {
                        self.shapes.insert(self.key.clone(), cli.clone());
                        cli
                    }
                    // Messages may quote words: give the real line's.
                    Err(_) => return self.clap(argv),
                }
            }
        };
        for word in cli.words_mut() {
            if let Some(i) = marker_index(word) {
                *word = argv[i].to_owned();
            }
        }
        if let Some(i) = cli.socket.to_str().and_then(marker_index) {
            cli.socket = argv[i].into();
        }
        Ok(cli)
    }

    fn clap<S: AsRef<str>>(&mut self, argv: &[S]) -> Result<Cli, clap::Error> {
        let mut matches = self.command.try_get_matches_from_mut(argv.iter().map(|s| s.as_ref()))?;
        Cli::from_arg_matches_mut(&mut matches)
    }
}

/// Why a rules file was refused: the line (counted from 1) and ipvsadm's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RulesError {
    pub line: usize,
    pub message: String,
    code: u8,
    /// ipvsadm's text where it differs from `message` (see `Failure::ipvsadm_text`).
    ipvsadm: Option<String>,
}

impl RulesError {
    /// The message as ipvsadm words it, for gwctl's stderr.
    pub fn ipvsadm_message(&self) -> &str {
        self.ipvsadm.as_deref().unwrap_or(&self.message)
    }

    /// The exit status gwctl gives for it: 2 for a bad value or combination, 255
    /// for an unknown option or a line without a command (ipvsadm's split).
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

/// popt's word for a clap refusal of the first option of a line.
fn popt_why(e: &clap::Error) -> &'static str {
    match e.kind() {
        clap::error::ErrorKind::UnknownArgument => "unknown option",
        _ => "missing argument",
    }
}

/// One change of a rules file, with the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub line: usize,
    pub request: Request,
}

/// Parses a rules file into the requests it stands for, in order, looking port
/// names up in `/etc/services`. This is what `gwctl -R` sends as one
/// `Request::Restore`, and what gatewayd can apply at start.
pub fn parse_rules(text: &str) -> Result<Vec<Request>, RulesError> {
    Ok(parse_rule_lines(text, &PortNames::system())?.into_iter().map(|r| r.request).collect())
}

/// [`parse_rules`], keeping each request's line, with the port names in `names`.
pub fn parse_rule_lines(text: &str, names: &PortNames) -> Result<Vec<Rule>, RulesError> {
    parse_rule_lines_as(text, names, "gwctl")
}

/// [`parse_rule_lines`] for `PROGRAM -R`: a line without a command says
/// "Try `PROGRAM -h' ...", as ipvsadm names its argv[0] there too.
pub fn parse_rule_lines_as(text: &str, names: &PortNames, program: &str) -> Result<Vec<Rule>, RulesError> {
    let mut parser = ShapeParser::new();
    let mut rules = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let err = |message: String, code: u8| RulesError { line, message, code, ipvsadm: None };
        let content = raw.split_once('#').map_or(raw, |(before, _)| before);
        if content.contains('\0') {
            return Err(err("a NUL byte in the line".to_owned(), 2));
        }
        let words =
            content.split([' ', '\t', '\r']).filter(|w| !w.is_empty() && *w != "ipvsadm" && *w != "gwctl");
        let argv: Vec<&str> = std::iter::once("gwctl").chain(words).collect();
        if argv.len() == 1 {
            continue;
        }
        let cli = parser.parse(&argv).map_err(|e| {
            let words = &argv[1..];
            let first = words.first().copied().unwrap_or("");
            let message =
                crate::cli::popt_message(&e, words).unwrap_or_else(|| format!("{first}: {}", popt_why(&e)));
            err(message, 255)
        })?;
        // A line clap left bare (`--` alone) has no command: popt stops at `--`.
        let resolved =
            if cli.is_bare() { Err(Failure::TryHelp) } else { crate::resolve::resolve_with(&cli, names) };
        let inv = resolved.map_err(|f| {
            let f = match f {
                Failure::TryHelp => try_help(program),
                Failure::InvalidOption => crate::cli::invalid_option(&argv[1..]),
                f => f,
            };
            let mut e = err(f.to_string(), f.exit_code());
            e.ipvsadm = Some(f.ipvsadm_text()).filter(|t| *t != e.message);
            e
        })?;
        if !inv.command.is_rule() {
            return Err(err(
                format!(
                    "the '{}' command cannot be restored: a rules file holds changes",
                    inv.command.name()
                ),
                2,
            ));
        }
        rules.push(Rule { line, request: inv.request });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use gw_proto::{DestSpec, ForwardMode, Protocol, Scheduler, ServiceKey, ServiceSpec, TimeoutSet};

    use super::*;

    fn parse(text: &str) -> Result<Vec<Request>, RulesError> {
        Ok(parse_rule_lines(text, &PortNames::builtin())?.into_iter().map(|r| r.request).collect())
    }

    fn key(port: u16) -> ServiceKey {
        ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100).into(), port }
    }

    #[test]
    #[rustfmt::skip]
    fn lines_are_commands_without_the_program_name() {
        let text = concat!(
            "-A -t 198.18.0.100:80 -s rr\n",
            "\n",
            "   \t \r\n",
            "# a comment line\n",
            "-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -b -w 3   # trailing comment\r\n",
            "ipvsadm -a -t 198.18.0.100:80 -r 198.18.1.3 -m\n",
            "gwctl --add-laddr -z 198.18.2.1 -t 198.18.0.100:80\n",
            "--set 900 120 300\n",
            "-Z\n",
            "-C",
        );
        let rip = |last| Ipv4Addr::new(198, 18, 1, last);
        assert_eq!(parse(text).unwrap(), vec![
            Request::AddService { spec: ServiceSpec::new(key(80), Scheduler::Rr) },
            Request::AddDest { service: key(80), dest: DestSpec::new(rip(2), 8080, ForwardMode::FullNat, 3) },
            Request::AddDest { service: key(80), dest: DestSpec::new(rip(3), 80, ForwardMode::Masq, 1) },
            Request::AddLaddr { service: key(80), addr: Ipv4Addr::new(198, 18, 2, 1).into() },
            Request::SetTimeouts { timeouts: TimeoutSet { tcp: 900, tcpfin: 120, udp: 300 } },
            Request::Zero { service: None },
            Request::Clear,
        ]);
        let lines: Vec<usize> = parse_rule_lines(text, &PortNames::builtin()).unwrap().iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 5, 6, 7, 8, 9, 10]);
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("\n\n# nothing\n").unwrap(), vec![]);
    }

    #[test]
    fn an_error_names_its_line() {
        let text = "-A -t 198.18.0.100:80\n\n-a -t 198.18.0.100:80 -r 198.18.1.2 -w 70000\n";
        let e = parse(text).unwrap_err();
        assert_eq!((e.line, e.message.as_str(), e.exit_code()), (3, "illegal weight specified", 2));
        assert_eq!(e.to_string(), "line 3: illegal weight specified");

        let e = parse("-A -t 198.18.0.100:80 --bogus\n").unwrap_err();
        assert_eq!((e.line, e.exit_code()), (1, 255));
        assert_eq!(e.message, "--bogus: unknown option");

        let e = parse("-C\n-n\n").unwrap_err();
        assert_eq!((e.line, e.exit_code()), (2, 255));
        assert_eq!(e.message, "Try `gwctl -h' or 'gwctl --help' for more information.");

        let e = parse("-C\n-C\n-A -f 3\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.starts_with("fwmark services"), "{}", e.message);
    }

    /// Each line is read as ipvsadm's process_options reads a command line:
    /// popt's values, "invalid option `WORD'", `--` before any command.
    #[test]
    fn a_line_gets_the_command_lines_messages() {
        let e = parse("-A -t 198.18.0.100:80\n-a -t 198.18.0.100:80 -r -w 2\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str(), e.exit_code()),
            (2, "illegal real server address[:port] specified", 2)
        );
        let e = parse("-C\n-a -t 198.18.0.100:80 -r 198.18.1.2 -x -y 5\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str(), e.exit_code()), (2, "illegal u_threshold specified", 2));
        let e = parse("-A -t 198.18.0.100:80\n-A -t 198.18.0.100:80 -E\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str(), e.exit_code()), (2, "invalid option `-E'", 2));
        let e = parse("-C -lZ\n").unwrap_err();
        assert_eq!(e.message, "invalid option `-lZ'");
        let e = parse("-C\n--\n").unwrap_err();
        assert_eq!((e.line, e.exit_code()), (2, 255));
        assert_eq!(e.message, "Try `gwctl -h' or 'gwctl --help' for more information.");
        // The program as typed, as ipvsadm passes its argv[0] to each line.
        let e = parse_rule_lines_as("-C\n-n\n", &PortNames::builtin(), "/usr/sbin/gwctl").unwrap_err();
        assert_eq!((e.line, e.exit_code()), (2, 255));
        assert_eq!(
            e.to_string(),
            "line 2: Try `/usr/sbin/gwctl -h' or '/usr/sbin/gwctl --help' for more information."
        );
    }

    /// clap's own parse of `argv`, for comparison.
    fn direct(argv: &[&str]) -> String {
        use clap::Parser;
        format!("{:?}", Cli::try_parse_from(argv).expect("parses"))
    }

    #[test]
    fn a_parse_by_shape_is_claps_parse() {
        let mut p = ShapeParser::new();
        // Every option with a value, alone; each twice so that the second comes from the cache.
        let mut cmd = Cli::command();
        cmd.build();
        for arg in cmd.get_arguments().filter(|a| a.get_action().takes_values() && !a.is_positional()) {
            let opt = match (arg.get_long(), arg.get_short()) {
                (Some(l), _) => format!("--{l}"),
                (None, Some(c)) => format!("-{c}"),
                (None, None) => unreachable!(),
            };
            for value in ["first", "second"] {
                let argv = ["gwctl", opt.as_str(), value, "stray"];
                assert_eq!(format!("{:?}", p.parse(&argv).unwrap()), direct(&argv), "{argv:?}");
            }
        }
        // Whole lines of one shape with different words, and shapes with optional values.
        let lines: [&[&str]; 10] = [
            &["gwctl", "-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8:81", "-b", "-w", "3", "-x", "9"],
            &["gwctl", "-a", "-t", "1.2.3.4:80", "-r", "-w", "3", "-x", "9"],
            &["gwctl", "-A", "-t", "1.2.3.4:80", "-s", "-p", "60"],
            &["gwctl", "-a", "-t", "9.9.9.9:8", "-r", "7.7.7.7", "-b", "-w", "0", "-x", "1"],
            &["gwctl", "-A", "-u", "1.2.3.4:53", "-s", "sh", "-p", "-b", "sh-port", "-o"],
            &["gwctl", "-A", "-u", "1.2.3.4:53", "-s", "sh", "-p", "60", "-b", "sh-port", "-o"],
            &["gwctl", "-A", "-u", "4.3.2.1:53", "-s", "mh", "-p", "70", "-b", "mh-port", "-o"],
            &["gwctl", "--set", "1", "2", "3"],
            &["gwctl", "--set", "4", "5", "6", "7"],
            &["gwctl", "-At", "1.1.1.1:80", "--persistent=5", "-M", "/24", "--socket", "/tmp/s"],
        ];
        for argv in lines {
            assert_eq!(format!("{:?}", p.parse(argv).unwrap()), direct(argv), "{argv:?}");
        }
    }

    #[test]
    fn only_changes_may_be_restored() {
        for (text, name) in [
            ("-L -n", "list"),
            ("-S", "save"),
            ("-R", "restore"),
            ("--get-laddr", "get-laddr"),
            ("--counters", "counters"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(
                e.message,
                format!("the '{name}' command cannot be restored: a rules file holds changes")
            );
            assert_eq!((e.line, e.exit_code()), (1, 2));
        }
        assert_eq!(parse("-C\n-h\n").unwrap_err().message, "invalid option `-h'");
        let e = parse("-a -t 198.18.0.100:80 -r 198.18.1.2 -x 5\x00\n").unwrap_err();
        assert_eq!(e.message, "a NUL byte in the line");
    }
}
