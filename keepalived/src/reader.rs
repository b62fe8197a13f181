//! Reading keepalived's files into tokens, as `lib/parser.c`'s `read_line`
//! does: comments, `@id` lines, `$NAME=value` definitions, `include` with
//! glob patterns, quoted words, and `{` / `}` wherever they stand outside quotes.
//!
//! Invariants: every token carries the file and line it came from (the line
//! of the *including* file's `include` is not kept: an error inside an
//! included file names that file); includes nest at most [`MAX_INCLUDE_DEPTH`]
//! deep and a file that includes itself (directly or not) is refused, so a
//! bad tree of files ends with an error, never a loop. Every file is read
//! through [`read_config_file`] (a regular file, at most
//! [`MAX_CONFIG_FILE`] bytes), and all of them together are at most
//! [`MAX_CONFIG_FILE`] bytes too, so a FIFO or `/dev/zero` ends with an
//! error, never a hang or a huge allocation.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Error;

/// How deep `include` may nest (keepalived has no limit but the open files).
pub const MAX_INCLUDE_DEPTH: usize = 32;

/// Most bytes of one configuration file, and of a keepalived file with all
/// its includes: 256 MiB, above any configuration gatewayd can hold (65,536
/// real servers with an HTTP_GET block each take about 20 MiB, 60,000
/// services with 8 local addresses each about 27 MiB in a rules file) and
/// below what would strain the machine; the regular-file test is what
/// keeps a FIFO or `/dev/zero` out.
pub const MAX_CONFIG_FILE: u64 = 256 << 20;

/// The bytes of the configuration file at `path` (symlinks followed), at
/// most `max` of them. Only a regular file is read: a FIFO would block the
/// read forever and a device such as `/dev/zero` never ends, so anything
/// else is refused (opened without blocking, checked on what was opened);
/// so is a file above `max` bytes, and, read through a bound of `max` + 1
/// bytes, one that grows beyond `max` while it is read. gatewayd reads
/// every file it takes as configuration through this (`--config`, rules
/// files, keepalived files and their includes).
pub fn read_config_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    // O_NONBLOCK: opening a FIFO for reading does not wait for a writer
    // (a regular file ignores the flag).
    let file = std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    let t = meta.file_type();
    if !t.is_file() {
        let what = if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(Error::new(ErrorKind::InvalidInput, format!("not a regular file ({what})")));
    }
    let limit = || format!("above the limit of {}", size_text(max));
    if meta.len() > max {
        return Err(Error::new(ErrorKind::InvalidData, format!("{} bytes, {}", meta.len(), limit())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(Error::new(ErrorKind::InvalidData, format!("grew while read, {}", limit())));
    }
    Ok(bytes)
}

/// `n` bytes as a person writes them: `16 MiB`, `4 KiB`, `100 bytes`.
fn size_text(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// Where a word was read: a file and a line of it (counted from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<Path>,
    pub line: usize,
}

impl Pos {
    /// An error at this place.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error { file: self.file.to_path_buf(), line: self.line, message: message.into() }
    }
}

impl fmt::Display for Pos {
    /// keepalived's prefix: `file: Line 12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: Line {}", self.file.display(), self.line)
    }
}

/// One token of the stream: the words of a statement, or a brace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    Words(Vec<String>),
    Open,
    Close,
}

/// keepalived's config id when none is given: the host name up to its
/// first dot (`main.c`: "the default is the hostname", `get_local_name`).
/// `@ID line` is kept on this host only when `ID` is it, `@^ID line` when
/// it is not.
pub fn config_id() -> String {
    let name = nix::unistd::gethostname().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.split('.').next().unwrap_or_default().to_owned()
}

/// Reads `path` and everything it includes, in order.
pub fn read(path: &Path) -> Result<Vec<(Pos, Token)>, Error> {
    read_at_most(path, MAX_CONFIG_FILE)
}

/// [`read`], the files holding at most `max` bytes in all.
fn read_at_most(path: &Path, max: u64) -> Result<Vec<(Pos, Token)>, Error> {
    let mut r =
        Reader { defs: BTreeMap::new(), out: Vec::new(), stack: Vec::new(), id: config_id(), left: max, max };
    r.file(path, None)?;
    Ok(r.out)
}

/// Reads `text` as if it were the file `name` (includes are relative to its
/// directory), for tests and fuzzing.
pub fn read_str(name: &Path, text: &str) -> Result<Vec<(Pos, Token)>, Error> {
    let mut r = Reader {
        defs: BTreeMap::new(),
        out: Vec::new(),
        stack: Vec::new(),
        id: config_id(),
        left: MAX_CONFIG_FILE,
        max: MAX_CONFIG_FILE,
    };
    r.text(Arc::from(name), text)?;
    Ok(r.out)
}

struct Reader {
    /// `$NAME=value` definitions seen so far.
    defs: BTreeMap<String, String>,
    out: Vec<(Pos, Token)>,
    /// Files being read (canonical paths), to refuse include cycles.
    stack: Vec<PathBuf>,
    /// keepalived's config id ([`config_id`]).
    id: String,
    /// Bytes the files still to be read may hold together (of
    /// [`MAX_CONFIG_FILE`]): a glob that matches many large files ends
    /// with an error too.
    left: u64,
    /// What `left` started at.
    max: u64,
}

impl Reader {
    fn file(&mut self, path: &Path, from: Option<&Pos>) -> Result<(), Error> {
        let fail = |message: String| match from {
            Some(at) => at.error(message),
            None => Error { file: path.to_path_buf(), line: 0, message },
        };
        let bytes = read_config_file(path, self.left).map_err(|e| {
            let size = e.kind() == std::io::ErrorKind::InvalidData;
            let together = if size && self.left < self.max {
                format!(" (with the files read before it: at most {} in all)", size_text(self.max))
            } else {
                String::new()
            };
            fail(format!("Unable to read configuration file {}: {e}{together}", path.display()))
        })?;
        self.left -= bytes.len() as u64;
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.stack.contains(&canon) {
            return Err(fail(format!("{} includes itself", path.display())));
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(fail(format!("includes nest more than {MAX_INCLUDE_DEPTH} deep")));
        }
        let text =
            String::from_utf8(bytes).map_err(|_| fail(format!("{} is not UTF-8 text", path.display())))?;
        self.stack.push(canon);
        let r = self.text(Arc::from(path), &text);
        self.stack.pop();
        r
    }

    fn text(&mut self, file: Arc<Path>, text: &str) -> Result<(), Error> {
        for (i, raw) in text.split('\n').enumerate() {
            let at = Pos { file: file.clone(), line: i + 1 };
            let raw = raw.trim_end_matches('\r');
            if raw.contains('\0') {
                return Err(at.error("configuration appears to have embedded NULs"));
            }
            let mut line = decomment(raw).map_err(|m| at.error(m))?;
            if line.is_empty() {
                continue;
            }
            // `@id line` is kept only on the system whose config id is `id`,
            // `@^id line` only on the others.
            if let Some(rest) = line.strip_prefix('@') {
                let (rev, rest) = match rest.strip_prefix('^') {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                match rest.find([' ', '\t']) {
                    Some(end) if (rest[..end] == *self.id) != rev => {
                        line = rest[end..].trim_start().to_owned()
                    }
                    _ => continue,
                }
            }
            if line.starts_with('$') {
                if let Some((name, value)) = definition(&line) {
                    if value.ends_with('\\') {
                        return Err(at.error("multi-line definitions are not supported by gatewayd"));
                    }
                    self.defs.insert(name.to_owned(), value.to_owned());
                    continue;
                }
            }
            if line.starts_with("~SEQ") || line.starts_with("~LST") {
                return Err(at.error(format!("{} is not supported by gatewayd", &line[..4])));
            }
            if !self.defs.is_empty() && line.contains('$') {
                line = decomment(&self.substitute(&line)).map_err(|m| at.error(m))?;
                if line.is_empty() {
                    continue;
                }
            }
            if let Some(pattern) = include_pattern(&line) {
                self.include(&at, pattern)?;
                continue;
            }
            tokens(&line, |t| self.out.push((at.clone(), t))).map_err(|m| at.error(m))?;
        }
        Ok(())
    }

    /// `$NAME` and `${NAME}` replaced by their definitions; unknown names stay.
    fn substitute(&self, line: &str) -> String {
        let mut out = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, len) = match after.strip_prefix('{') {
                Some(b) => match b.find('}') {
                    Some(end) => (&b[..end], end + 2),
                    None => ("", 0),
                },
                None => {
                    let end =
                        after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                    (&after[..end], end)
                }
            };
            match self.defs.get(name) {
                Some(v) if !name.is_empty() => {
                    out.push_str(v);
                    rest = &after[len..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// `include PATTERN`: every file the pattern matches, in glob(3)'s sorted
    /// order, a relative pattern taken from the including file's directory
    /// (keepalived changes to that directory while it reads a file).
    fn include(&mut self, at: &Pos, pattern: &str) -> Result<(), Error> {
        let dir = at.file.parent().unwrap_or(Path::new(""));
        let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { dir.join(pattern) };
        let full_s = full.to_str().ok_or_else(|| at.error("include path is not UTF-8"))?;
        let opts = glob::MatchOptions { require_literal_leading_dot: true, ..Default::default() };
        let paths = glob::glob_with(full_s, opts)
            .map_err(|e| at.error(format!("Error reading config file(s): bad pattern '{pattern}': {e}")))?;
        let mut matched = 0;
        for p in paths {
            let p = p.map_err(|e| at.error(format!("Error reading config file(s) '{pattern}': {e}")))?;
            if p.is_dir() {
                continue;
            }
            matched += 1;
            self.file(&p, Some(at))?;
        }
        if matched == 0 && !has_wildcards(pattern) {
            return Err(at.error(format!("Config files missing '{pattern}'.")));
        }
        Ok(())
    }
}

fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The pattern of an `include` line (also keepalived's `includer`,
/// `includem`, `includew`, `includeb`, `includea`, which differ only in how
/// loudly a missing file is reported).
fn include_pattern(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("include")?;
    let rest = match rest.chars().next()? {
        ' ' | '\t' => rest,
        c if "rmwba".contains(c) && rest[1..].starts_with([' ', '\t']) => &rest[1..],
        _ => return None,
    };
    Some(rest.trim())
}

/// `$NAME=value` (keepalived's `check_definition`): the name and the value.
fn definition(line: &str) -> Option<(&str, &str)> {
    let body = &line[1..];
    let end = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    if end == 0 {
        return None;
    }
    let value = body[end..].trim_start().strip_prefix('=')?;
    Some((&body[..end], value.trim()))
}

/// keepalived's `decomment`: drops leading and trailing blanks and all from
/// a `#` or `!` outside double quotes; `\#` and `\!` there stand for the
/// character. A backslash protects the character after it (kept, with the
/// backslash), so `\"` neither opens nor closes a quote.
pub(crate) fn decomment(line: &str) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut quote = false;
    let mut chars = line.trim_start_matches([' ', '\t']).chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quote = !quote;
                out.push(c);
            }
            '\\' if !quote && matches!(chars.peek(), Some('#' | '!')) => {
                out.push(chars.next().unwrap_or('#'))
            }
            '\\' => {
                out.push(c);
                out.extend(chars.next());
            }
            '#' | '!' if !quote => break,
            _ => out.push(c),
        }
    }
    if quote {
        return Err(format!("Unterminated quote '{}'", line.trim()));
    }
    Ok(out.trim_end_matches([' ', '\t']).to_owned())
}

/// The keywords whose line keepalived reads a second time, quotes and
/// backslashes respected (`alloc_strvec_quoted`): the scripts
/// (`notify_script_init`) and `misc_path` (`install_keyword_quoted`).
const SCRIPT_KEYWORDS: [&str; 5] = ["notify_up", "notify_down", "quorum_up", "quorum_down", "misc_path"];

/// Splits a decommented line into words and braces. A word that starts with
/// `"` runs to the next `"` (quotes dropped, blanks and braces kept); any
/// other word ends at a blank, a quote or a brace outside quotes.
///
/// A script's line (without braces) is split as keepalived's
/// `alloc_strvec_quoted` splits it: single or double quotes group, and a
/// backslash protects the next character (both kept, for the script's own
/// split, [`crate::values::parse_command`]): `notify_up "/bin/logger
/// \"a b\""` has the command `/bin/logger \"a b\"`. A line that reading
/// refuses keeps its command whole, for the script's split to refuse it
/// with keepalived's notice.
fn tokens(line: &str, mut emit: impl FnMut(Token)) -> Result<(), String> {
    let keyword = line.split([' ', '\t']).next().unwrap_or("");
    if SCRIPT_KEYWORDS.contains(&keyword) && !line.contains(['{', '}']) {
        let words = crate::values::split_quoted(line, false).unwrap_or_else(|_| {
            let rest = line[keyword.len()..].trim_matches([' ', '\t']);
            vec![keyword.to_owned(), rest.to_owned()]
        });
        emit(Token::Words(words));
        return Ok(());
    }
    let mut words: Vec<String> = Vec::new();
    let flush = |words: &mut Vec<String>, emit: &mut dyn FnMut(Token)| {
        if !words.is_empty() {
            emit(Token::Words(std::mem::take(words)));
        }
    };
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\r', '\x0b', '\x0c']);
        let Some(c) = rest.chars().next() else { break };
        match c {
            '{' | '}' => {
                flush(&mut words, &mut emit);
                emit(if c == '{' { Token::Open } else { Token::Close });
                rest = &rest[1..];
            }
            '"' => {
                let body = &rest[1..];
                let end = body.find('"').ok_or_else(|| format!("Unmatched quote: '{line}'"))?;
                words.push(body[..end].to_owned());
                rest = &body[end + 1..];
            }
            _ => {
                let end = rest.find([' ', '\t', '\r', '\x0b', '\x0c', '"', '{', '}']).unwrap_or(rest.len());
                words.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    flush(&mut words, &mut emit);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<(usize, Token)> {
        read_str(Path::new("/k/keepalived.conf"), text)
            .unwrap()
            .into_iter()
            .map(|(p, t)| (p.line, t))
            .collect()
    }

    fn w(words: &[&str]) -> Token {
        Token::Words(words.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn comments_quotes_and_braces_split_as_keepalived_does() {
        let text = concat!(
            "! Configuration File for keepalived\n",
            "# another comment\n",
            "virtual_server 10.0.0.1 80 {   # the web\n",
            "  misc_path \"/bin/check {x} # not a comment\"\n",
            "  a\\#b c!d\n",
            "  real_server 10.0.0.2 80 { weight 2 }\n",
            "}\n",
            "\n",
            "  {\n",
        );
        assert_eq!(
            toks(text),
            vec![
                (3, w(&["virtual_server", "10.0.0.1", "80"])),
                (3, Token::Open),
                (4, w(&["misc_path", "/bin/check {x} # not a comment"])),
                (5, w(&["a#b", "c"])),
                (6, w(&["real_server", "10.0.0.2", "80"])),
                (6, Token::Open),
                (6, w(&["weight", "2"])),
                (6, Token::Close),
                (7, Token::Close),
                (9, Token::Open),
            ]
        );
        assert_eq!(toks("a b\"c d\"e\n"), vec![(1, w(&["a", "b", "c d", "e"]))]);
    }

    #[test]
    fn an_unterminated_quote_names_its_line() {
        let e = read_str(Path::new("k.conf"), "a\nb \"c\n").unwrap_err();
        assert_eq!(e.to_string(), "(k.conf: Line 2) Unterminated quote 'b \"c'");
        let e = read_str(Path::new("k.conf"), "a\0b\n").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn conditional_lines_and_definitions() {
        let id = config_id();
        let text = format!(
            "@gw-other-host lb_algo rr\n@^gw-other-host lb_algo wrr\n@{id} lb_algo lc\n@^{id} lb_algo sh\n\
             $VIP=10.0.0.1\n$PORT = 80\nvirtual_server $VIP ${{PORT}} $UNKNOWN\n"
        );
        assert_eq!(
            toks(&text),
            vec![
                (2, w(&["lb_algo", "wrr"])),
                (3, w(&["lb_algo", "lc"])),
                (7, w(&["virtual_server", "10.0.0.1", "80", "$UNKNOWN"]))
            ]
        );
        let e = read_str(Path::new("k.conf"), "~SEQ(i, 1, 3)\n").unwrap_err();
        assert_eq!(e.message, "~SEQ is not supported by gatewayd");
    }

    #[test]
    fn includes_are_globs_relative_to_the_including_file() {
        let dir = std::env::temp_dir().join(format!("gw-ka-reader-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf.d/sub")).unwrap();
        std::fs::write(
            dir.join("main.conf"),
            "first\ninclude conf.d/*.conf\nincluder conf.d/none-*.conf\nlast\n",
        )
        .unwrap();
        std::fs::write(dir.join("conf.d/b.conf"), "b\n").unwrap();
        std::fs::write(dir.join("conf.d/a.conf"), "# a\na\ninclude sub/x\n").unwrap();
        std::fs::write(dir.join("conf.d/.hidden.conf"), "hidden\n").unwrap();
        std::fs::write(dir.join("conf.d/sub/x"), "x\n").unwrap();
        let got: Vec<(String, usize, Token)> = read(&dir.join("main.conf"))
            .unwrap()
            .into_iter()
            .map(|(p, t)| (p.file.strip_prefix(&dir).unwrap().display().to_string(), p.line, t))
            .collect();
        let at = |f: &str, l, word: &str| (f.to_owned(), l, w(&[word]));
        assert_eq!(
            got,
            vec![
                at("main.conf", 1, "first"),
                at("conf.d/a.conf", 2, "a"),
                at("conf.d/sub/x", 1, "x"),
                at("conf.d/b.conf", 1, "b"),
                at("main.conf", 4, "last"),
            ]
        );
        // A named file that is missing is refused; so is a cycle.
        std::fs::write(dir.join("main.conf"), "include missing.conf\n").unwrap();
        let e = read(&dir.join("main.conf")).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (1, "Config files missing 'missing.conf'."));
        std::fs::write(dir.join("main.conf"), "include conf.d/loop\n").unwrap();
        std::fs::write(dir.join("conf.d/loop"), "\ninclude ../main.conf\n").unwrap();
        let e = read(&dir.join("main.conf")).unwrap_err();
        assert_eq!((e.file, e.line), (dir.join("conf.d/loop"), 2));
        assert!(e.message.ends_with("includes itself"), "{}", e.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = std::env::temp_dir().join(format!("gw-ka-bounded-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        // A FIFO without a writer, a device that never ends and a directory:
        // refused at once, not read (the FIFO would block forever, /dev/zero
        // would fill the memory).
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (dir.as_path(), "a directory"),
        ] {
            let e = read(path).unwrap_err();
            let want =
                format!("Unable to read configuration file {}: not a regular file ({what})", path.display());
            assert_eq!(e.message, want);
            // And as an include, named at the include line (an include
            // skips directories, as keepalived's does).
            if what == "a directory" {
                continue;
            }
            std::fs::write(dir.join("main.conf"), format!("a\ninclude {}\n", path.display())).unwrap();
            let e = read(&dir.join("main.conf")).unwrap_err();
            assert_eq!((e.line, e.message.as_str()), (2, want.as_str()));
        }
        // Above the limit (a sparse file: nothing is written or read).
        let big = dir.join("big.conf");
        std::fs::File::create(&big).unwrap().set_len(MAX_CONFIG_FILE + 1).unwrap();
        let e = read(&big).unwrap_err();
        assert!(e.message.ends_with(": 268435457 bytes, above the limit of 256 MiB"), "{}", e.message);
        std::fs::File::create(&big).unwrap().set_len(100).unwrap();
        let e = read_config_file(&big, 99).unwrap_err();
        assert_eq!(e.to_string(), "100 bytes, above the limit of 99 bytes");
        assert_eq!(read_config_file(&big, 100).unwrap().len(), 100);
        // Files that fit one by one but not together (under a 1 MiB bound
        // here, the same code as MAX_CONFIG_FILE's).
        let line = format!("# {}\n", "x".repeat(62));
        let part = line.repeat(((1 << 20) / 2 + 1024) / line.len());
        std::fs::write(dir.join("a.part"), &part).unwrap();
        std::fs::write(dir.join("b.part"), &part).unwrap();
        std::fs::write(dir.join("main.conf"), "include *.part\n").unwrap();
        let e = read_at_most(&dir.join("main.conf"), 1 << 20).unwrap_err();
        assert!(
            e.message
                .starts_with(&format!("Unable to read configuration file {}", dir.join("b.part").display())),
            "{}",
            e.message
        );
        assert!(
            e.message.ends_with("(with the files read before it: at most 1 MiB in all)"),
            "{}",
            e.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
