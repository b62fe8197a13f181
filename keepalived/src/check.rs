//! Health checkers of a `real_server`: `TCP_CHECK`, `HTTP_GET`, `SSL_GET`,
//! `UDP_CHECK` and `MISC_CHECK` with their keywords, as keepalived's
//! `check_api.c`, `check_tcp.c`, `check_http.c`, `check_udp.c` and
//! `check_misc.c` read them.
//!
//! They are parsed and validated here so that a checker in gatewayd can run
//! them; nothing in this crate runs them. Options left out are `None`: the
//! checker falls back to the real server's, then the virtual server's, then
//! keepalived's defaults ([`Checker::effective`]).

use std::net::IpAddr;
use std::time::Duration;

use crate::reader::Pos;
use crate::tree::Node;
use crate::values::{block, flag, hex_line, ip, leaf, no_block, number, number_at, port, timer, word};
use crate::{Error, Notice};

/// Options every checker takes (`install_checker_common_keywords`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckCommon {
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub fwmark: Option<u32>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
    pub delay_loop: Option<Duration>,
    pub alpha: Option<bool>,
    pub log_all_failures: bool,
}

/// One `url` block of `HTTP_GET` / `SSL_GET`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Url {
    pub path: String,
    /// MD5 of the body, 32 lowercase hex digits (`genhash` prints it).
    pub digest: Option<String>,
    /// Accepted status codes as inclusive ranges; empty = keepalived's default (200-299).
    pub status_code: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
    pub regex: Option<String>,
    pub regex_no_match: bool,
}

/// `HTTP_GET` / `SSL_GET`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpCheck {
    pub urls: Vec<Url>,
    pub virtualhost: Option<String>,
    /// `http_protocol`: `1.0`, `1.0C`, `1.1` or `0`.
    pub http_protocol: Option<String>,
    pub enable_sni: bool,
    pub sni_name: Option<String>,
    pub fast_recovery: bool,
    pub tls_compliant: bool,
}

/// `UDP_CHECK`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UdpCheck {
    pub payload: Option<Vec<u8>>,
    /// `require_reply [HEX]`: a reply is needed; with bytes, the reply's
    /// first bytes (as many as both have) must be them, and its length
    /// within `min_reply_length`..=`max_reply_length` (`check_udp_reply`).
    pub require_reply: Option<Vec<u8>>,
    /// The bits of `require_reply` that need not match (its `x` nibbles).
    pub reply_mask: Option<Vec<u8>>,
    pub min_reply_length: Option<u32>,
    pub max_reply_length: Option<u32>,
}

/// What `UDP_CHECK` sends without a `payload`: keepalived's `set_buf`
/// fills its 32-byte `UDP_BUFSIZE` buffer with this text, repeated.
pub const UDP_DEFAULT_PAYLOAD: &[u8; 32] = b"keepalived check - keepalived ch";

/// keepalived's `max_reply_length` unless set (`UINT8_MAX`).
pub const UDP_DEFAULT_MAX_REPLY: u32 = 255;

/// `MISC_CHECK`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MiscCheck {
    /// The command line, as written (keepalived runs it without a shell).
    pub path: String,
    pub timeout: Option<Duration>,
    /// The exit status sets the weight (keepalived's `misc_dynamic`).
    pub dynamic: bool,
    pub user: Option<(String, Option<String>)>,
    /// The uid and gid of `user`; `None`: gatewayd's own.
    pub run_as: Option<(u32, u32)>,
}

/// What a checker does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    Tcp,
    Http(HttpCheck),
    Ssl(HttpCheck),
    Udp(UdpCheck),
    Misc(MiscCheck),
}

impl CheckKind {
    /// The keyword that introduces it.
    pub fn keyword(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Http(_) => "HTTP_GET",
            CheckKind::Ssl(_) => "SSL_GET",
            CheckKind::Udp(_) => "UDP_CHECK",
            CheckKind::Misc(_) => "MISC_CHECK",
        }
    }
}

/// One checker block of a real server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checker {
    pub at: Pos,
    pub kind: CheckKind,
    pub common: CheckCommon,
}

/// The timing a checker runs with once every level's defaults are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub delay_loop: Duration,
    pub connect_timeout: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub warmup: Duration,
}

/// keepalived's defaults (`check_data.c`, `check_api.c`), for a checker
/// whose kind has none of its own ([`Checker::effective`]: HTTP_GET and
/// SSL_GET retry after 3 s, MISC_CHECK does not retry, and the warmup is
/// the checker's `delay_loop`).
pub const DEFAULT_TIMING: Timing = Timing {
    delay_loop: Duration::from_secs(60),
    connect_timeout: Duration::from_secs(5),
    retry: 1,
    delay_before_retry: Duration::from_secs(1),
    warmup: Duration::ZERO,
};

/// The timing options a virtual or real server may set for its checkers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimingOverrides {
    pub delay_loop: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
}

impl Checker {
    /// The checker's timing: its own options, else the real server's, else
    /// the virtual server's, else keepalived's defaults, which depend on the
    /// kind (`check_api.c`'s `queue_checker`, `check_http.c`'s
    /// `http_get_handler`, `check_misc.c`; `check_data.c` takes the warmup
    /// from the checker's `delay_loop` when none is set). The warmup is the
    /// most a checker waits before its first check: a random part of it.
    pub fn effective(&self, rs: &TimingOverrides, vs: &TimingOverrides) -> Timing {
        let c = &self.common;
        let d = match self.kind {
            CheckKind::Http(_) | CheckKind::Ssl(_) => {
                Timing { delay_before_retry: Duration::from_secs(3), ..DEFAULT_TIMING }
            }
            CheckKind::Misc(_) => Timing { retry: 0, ..DEFAULT_TIMING },
            _ => DEFAULT_TIMING,
        };
        let delay_loop = c.delay_loop.or(rs.delay_loop).or(vs.delay_loop).unwrap_or(d.delay_loop);
        Timing {
            delay_loop,
            connect_timeout: c
                .connect_timeout
                .or(rs.connect_timeout)
                .or(vs.connect_timeout)
                .unwrap_or(d.connect_timeout),
            retry: c.retry.or(rs.retry).or(vs.retry).unwrap_or(d.retry),
            delay_before_retry: c
                .delay_before_retry
                .or(rs.delay_before_retry)
                .or(vs.delay_before_retry)
                .unwrap_or(d.delay_before_retry),
            warmup: c.warmup.or(rs.warmup).or(vs.warmup).unwrap_or(delay_loop),
        }
    }
}

/// Checkers keepalived has and gatewayd does not parse: skipped with a notice.
pub const OTHER_CHECKERS: [&str; 5] = ["SMTP_CHECK", "DNS_CHECK", "BFD_CHECK", "PING_CHECK", "FILE_CHECK"];

/// The timing keyword `n` sets in `t`; false when `n` is no timing keyword.
pub fn timing_keyword(n: &Node, t: &mut TimingOverrides) -> Result<bool, Error> {
    match n.keyword() {
        "delay_loop" => t.delay_loop = Some(timer(n, 1, Duration::from_micros(1)).and_then(|d| one(n, d))?),
        "connect_timeout" => {
            t.connect_timeout = Some(timer(n, 1, Duration::from_micros(1)).and_then(|d| one(n, d))?)
        }
        "delay_before_retry" => {
            t.delay_before_retry = Some(timer(n, 1, Duration::ZERO).and_then(|d| one(n, d))?)
        }
        "warmup" => t.warmup = Some(timer(n, 1, Duration::ZERO).and_then(|d| one(n, d))?),
        "retry" => {
            leaf(n, 1)?;
            t.retry = Some(number_at(n, 1, 1, u64::from(u32::MAX), "retry value")? as u32)
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn one<T>(n: &Node, v: T) -> Result<T, Error> {
    leaf(n, 1)?;
    Ok(v)
}

/// Parses the checker block `n` (its keyword is one of [`CheckKind::keyword`]).
/// A keyword the checker does not know is noted and ignored, as keepalived
/// does (files often carry keywords of other versions, e.g. `nb_sock_retry`).
/// `None`: a `MISC_CHECK` whose `user` or group does not exist, removed
/// with keepalived's notice.
pub fn parse(n: &Node, notices: &mut Vec<Notice>) -> Result<Option<Checker>, Error> {
    leaf_words(n)?;
    let mut kind = match n.keyword() {
        "TCP_CHECK" => CheckKind::Tcp,
        "HTTP_GET" => CheckKind::Http(HttpCheck::default()),
        "SSL_GET" => CheckKind::Ssl(HttpCheck::default()),
        "UDP_CHECK" => CheckKind::Udp(UdpCheck::default()),
        "MISC_CHECK" => CheckKind::Misc(MiscCheck::default()),
        k => return Err(n.at.error(format!("Unknown keyword '{k}'"))),
    };
    let mut common = CheckCommon::default();
    for s in block(n)? {
        if common_keyword(s, &mut common, !matches!(kind, CheckKind::Misc(_)))? {
            continue;
        }
        let known = match &mut kind {
            CheckKind::Http(h) | CheckKind::Ssl(h) => http_keyword(s, h, &mut common, notices)?,
            CheckKind::Udp(u) => udp_keyword(s, u)?,
            CheckKind::Misc(m) => misc_keyword(s, m, notices)?,
            CheckKind::Tcp => false,
        };
        if !known {
            notices.push(unknown(s)?);
        }
    }
    match &kind {
        CheckKind::Http(h) | CheckKind::Ssl(h) if h.urls.is_empty() => {
            return Err(n.at.error(format!("{} checker has no urls specified", n.keyword())))
        }
        CheckKind::Misc(m) if m.path.is_empty() => {
            return Err(n.at.error("MISC_CHECK has no misc_path"));
        }
        // What keepalived cannot split leaves the checker without a script.
        CheckKind::Misc(m) => {
            let why = match crate::values::parse_command(&m.path) {
                Ok(words) if words.is_empty() => Some("no word".to_owned()),
                Ok(_) => None,
                Err(e) => Some(e),
            };
            if let Some(why) = why {
                return Err(n.at.error(format!("MISC_CHECK has no misc_path it can run: {why}")));
            }
            if m.user.is_some() && m.run_as.is_none() {
                let path = crate::values::cmd_str(&m.path);
                let msg = format!("Failed to set uid/gid for misc checker script {path} - removing");
                notices.push(Notice::new(&n.at, msg));
                return Ok(None);
            }
        }
        CheckKind::Udp(u) => {
            if let (Some(lo), Some(hi)) = (u.min_reply_length, u.max_reply_length) {
                if lo > hi {
                    return Err(n.at.error("UDP_CHECK min_reply_length is above max_reply_length"));
                }
            }
        }
        _ => {}
    }
    Ok(Some(Checker { at: n.at.clone(), kind, common }))
}

fn leaf_words(n: &Node) -> Result<(), Error> {
    if n.words.len() > 1 {
        return Err(n.at.error(format!("'{}': unexpected '{}'", n.keyword(), n.words[1])));
    }
    Ok(())
}

/// keepalived's warning for a keyword it does not know in a block; an error
/// for one with a block of its own, whose structure keepalived does not
/// keep: it reports the `{` as unexpected, reads the block's lines as the
/// enclosing block's and its `}` as the end of the enclosing block, so what
/// follows lands a level up (a `real_server` after it is lost).
pub(crate) fn unknown(n: &Node) -> Result<Notice, Error> {
    if n.block.is_some() {
        return Err(n.at.error(format!(
            "Unknown keyword '{}' opens a block: keepalived reads its lines as the enclosing block's and ends that block at its '}}'",
            n.keyword()
        )));
    }
    Ok(Notice::new(&n.at, format!("Unknown keyword '{}' - ignored", n.keyword())))
}

fn common_keyword(n: &Node, c: &mut CheckCommon, connection: bool) -> Result<bool, Error> {
    if !connection && n.keyword() == "connect_timeout" {
        return Ok(false);
    }
    if n.keyword() == "retry" {
        // A checker may say 0 (`check_api.c`); a server's retry starts at 1.
        leaf(n, 1)?;
        c.retry = Some(number_at(n, 1, 0, u64::from(u32::MAX), "retry value")? as u32);
        return Ok(true);
    }
    let mut t = TimingOverrides::default();
    if timing_keyword(n, &mut t)? {
        c.retry = t.retry.or(c.retry);
        c.delay_loop = t.delay_loop.or(c.delay_loop);
        c.connect_timeout = t.connect_timeout.or(c.connect_timeout);
        c.delay_before_retry = t.delay_before_retry.or(c.delay_before_retry);
        c.warmup = t.warmup.or(c.warmup);
        return Ok(true);
    }
    match n.keyword() {
        "alpha" => c.alpha = Some(flag(n)?),
        "log_all_failures" => c.log_all_failures = flag(n)?,
        "connect_ip" if connection => {
            leaf(n, 1)?;
            c.connect_ip = Some(ip(n, word(n, 1)?, "connect_ip")?)
        }
        "connect_port" if connection => {
            leaf(n, 1)?;
            c.connect_port = Some(port(n, word(n, 1)?, "connect_port")?)
        }
        "bindto" if connection => {
            leaf(n, 1)?;
            c.bindto = Some(ip(n, word(n, 1)?, "bindto")?)
        }
        "bind_port" if connection => {
            leaf(n, 1)?;
            c.bind_port = Some(port(n, word(n, 1)?, "bind_port")?)
        }
        "bind_if" if connection => {
            leaf(n, 1)?;
            c.bind_if = Some(word(n, 1)?.to_owned())
        }
        "fwmark" if connection => {
            leaf(n, 1)?;
            c.fwmark = Some(number_at(n, 1, 0, u64::from(u32::MAX), "fwmark")? as u32)
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn string(n: &Node) -> Result<String, Error> {
    leaf(n, 1)?;
    Ok(word(n, 1)?.to_owned())
}

/// `HTTP_GET`'s and `SSL_GET`'s own keywords. `nb_get_retry` is theirs
/// alone (`check_http.c`): the deprecated `retry`, 0 allowed. In any other
/// checker, and at the virtual and real server's level, keepalived does not
/// know it (`Unknown keyword ... - ignored`), so a `TCP_CHECK` with
/// `nb_get_retry 3` pasted in retries once, as keepalived's does.
fn http_keyword(
    n: &Node,
    h: &mut HttpCheck,
    c: &mut CheckCommon,
    notices: &mut Vec<Notice>,
) -> Result<bool, Error> {
    match n.keyword() {
        "nb_get_retry" => {
            leaf(n, 1)?;
            notices.push(Notice::new(&n.at, "nb_get_retry is deprecated - please use 'retry'"));
            c.retry = Some(number_at(n, 1, 0, u64::from(u32::MAX), "nb_get_retry value")? as u32)
        }
        "virtualhost" => h.virtualhost = Some(string(n)?),
        "http_protocol" => {
            let p = string(n)?;
            if !["0", "1.0", "1.0C", "1.0c", "1.1"].contains(&p.as_str()) {
                return Err(n.at.error(format!("Invalid http_protocol {p}")));
            }
            h.http_protocol = Some(p)
        }
        "enable_sni" => h.enable_sni = flag(n)?,
        // keepalived's `sni_name_handler`: a name (or none: the default
        // one) and SNI on; a later `enable_sni off` turns it off again.
        "sni_name" => {
            leaf(n, 1)?;
            if let Some(name) = n.words.get(1) {
                h.sni_name = Some(name.clone());
            }
            h.enable_sni = true
        }
        "fast_recovery" => h.fast_recovery = flag(n)?,
        "tls_compliant" => h.tls_compliant = flag(n)?,
        "url" => {
            leaf_words(n)?;
            let mut u = Url::default();
            for s in block(n)? {
                if !url_keyword(s, &mut u, h, notices)? {
                    notices.push(unknown(s)?);
                }
            }
            if u.path.is_empty() {
                return Err(n.at.error("HTTP/SSL_GET checker url has no path"));
            }
            h.urls.push(u);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn url_keyword(n: &Node, u: &mut Url, h: &mut HttpCheck, notices: &mut Vec<Notice>) -> Result<bool, Error> {
    match n.keyword() {
        "path" => u.path = string(n)?,
        "digest" => {
            let d = string(n)?.to_ascii_lowercase();
            if d.len() != 32 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(n.at.error(format!("digest '{d}' is not 32 hex digits (an MD5)")));
            }
            u.digest = Some(d)
        }
        "status_code" => {
            // No code at all leaves the default (200-299), as keepalived's
            // `status_code_handler`, whose loop then sets nothing.
            no_block(n)?;
            for s in &n.words[1..] {
                let (lo, hi) = s.split_once('-').unwrap_or((s, s));
                match (number(lo, 100, 599), number(hi, 100, 599)) {
                    (Some(lo), Some(hi)) if lo <= hi => u.status_code.push((lo as u16, hi as u16)),
                    _ => return Err(n.at.error(format!("Invalid HTTP_GET status code '{s}'"))),
                }
            }
        }
        "virtualhost" => u.virtualhost = Some(string(n)?),
        "regex" => {
            u.regex = Some(string(n)?);
            let m = "regex: not run by gatewayd (the status code and digest are checked) - ignored";
            notices.push(Notice::new(&n.at, m));
        }
        "regex_no_match" => u.regex_no_match = flag(n)?,
        "regex_options" | "regex_min_offset" | "regex_max_offset" | "regex_stack" => {
            leaf(n, 8)?;
        }
        "tls_compliant" => h.tls_compliant = flag(n)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn udp_keyword(n: &Node, u: &mut UdpCheck) -> Result<bool, Error> {
    match n.keyword() {
        "payload" => {
            no_block(n)?;
            word(n, 1)?;
            u.payload = Some(hex_line(n, false, "payload")?.0)
        }
        "require_reply" => {
            no_block(n)?;
            (u.require_reply, u.reply_mask) = match n.words.len() {
                1 => (Some(vec![]), None),
                _ => {
                    let (bytes, mask) = hex_line(n, true, "reply")?;
                    (Some(bytes), mask)
                }
            }
        }
        "min_reply_length" => {
            leaf(n, 1)?;
            u.min_reply_length = Some(number_at(n, 1, 0, 65535, "min_reply_length")? as u32)
        }
        "max_reply_length" => {
            leaf(n, 1)?;
            u.max_reply_length = Some(number_at(n, 1, 0, 65535, "max_reply_length")? as u32)
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn misc_keyword(n: &Node, m: &mut MiscCheck, notices: &mut Vec<Notice>) -> Result<bool, Error> {
    match n.keyword() {
        "misc_path" => {
            no_block(n)?;
            // keepalived's `set_script_params_array` runs word 1 alone (the
            // command and its arguments quoted as one); more words are not
            // part of it.
            m.path = word(n, 1)?.to_owned();
            if let Some(rest) = n.words.get(2..).filter(|r| !r.is_empty()) {
                let msg = format!(
                    "misc_path: '{}' is not part of the command (quote the command with its arguments) - ignored",
                    rest.join(" ")
                );
                notices.push(Notice::new(&n.at, msg));
            }
        }
        "misc_timeout" => {
            // Whole seconds, 0 for the default (the virtual server's
            // `delay_loop`), as `misc_timeout_handler` reads it; like its
            // `strtoul`, `1.5` is noted and read as 1.
            leaf(n, 1)?;
            let w = word(n, 1)?;
            let digits = w.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(n.at.error(format!("Invalid misc_timeout value '{w}'")));
            }
            if digits < w.len() {
                notices.push(Notice::new(&n.at, format!("WARNING - invalid number '{w}'")));
            }
            let t = number(&w[..digits], 0, u64::from(u32::MAX) / 1_000_000)
                .ok_or_else(|| n.at.error(format!("Invalid misc_timeout value '{w}'")))?;
            m.timeout = (t > 0).then(|| Duration::from_secs(t))
        }
        "misc_dynamic" => m.dynamic = flag(n)?,
        "user" => {
            leaf(n, 2)?;
            let (user, group) = (word(n, 1)?.to_owned(), n.words.get(2).cloned());
            m.run_as = crate::values::run_as(&user, group.as_deref());
            m.user = Some((user, group));
        }
        _ => return Ok(false),
    }
    Ok(true)
}
