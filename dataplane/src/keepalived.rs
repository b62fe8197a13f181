//! A keepalived.conf as a source of services (`gatewayd --keepalived FILE`,
//! `[control] keepalived = FILE`), parsed by `gw-keepalived`.
//!
//! How it combines with the other sources: the `[[service]]` sections, the
//! rules file and the keepalived file may all be used at once; each service
//! has exactly one of them as its source. A virtual server of the keepalived
//! file that a section or the rules file also adds refuses the start (and a
//! reload), naming the keepalived line. At start the sections are applied
//! first, then the rules file, then the keepalived file, each through
//! [`crate::control::Control::handle`] as gwctl's requests are; on SIGHUP all
//! three are read again and [`crate::control::Control::sync`] applies only
//! the difference.

use std::collections::BTreeSet;
use std::path::Path;

use gw_keepalived::Loaded;
use gw_proto::{Request, ServiceKey};

use crate::config::ConfigError;

/// Reads and resolves the keepalived file at `path` (and its includes).
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    gw_keepalived::load(path).map_err(|e| ConfigError::Keepalived { path: path.into(), msg: e.to_string() })
}

/// Refuses a keepalived service that `other` (the sections' and the rules
/// file's requests) also adds.
pub fn check_overlap(other: &[Request], path: &Path, loaded: &Loaded) -> Result<(), ConfigError> {
    let mut added: BTreeSet<ServiceKey> = BTreeSet::new();
    let mut walk = vec![other];
    while let Some(reqs) = walk.pop() {
        for r in reqs {
            match r {
                Request::AddService { spec } => {
                    added.insert(spec.key);
                }
                Request::Restore { requests } => walk.push(requests),
                _ => {}
            }
        }
    }
    match loaded.services.iter().find(|s| added.contains(&s.spec.key)) {
        Some(s) => Err(ConfigError::Keepalived {
            path: path.into(),
            msg: format!(
                "({}) virtual server {} is also defined by a [[service]] section or the rules file; a service has one source",
                s.at, s.spec.key
            ),
        }),
        None => Ok(()),
    }
}

/// What a reload (SIGHUP) makes the running services equal to: the
/// `[[service]]` sections of `config`, the rules file `rules`, then the
/// services of the keepalived file `keepalived`.
pub fn reload_requests(
    config: &Path,
    rules: Option<&Path>,
    keepalived: Option<&Path>,
) -> Result<Vec<Request>, ConfigError> {
    let mut requests = crate::config::reload_requests(config, rules)?;
    if let Some(path) = keepalived {
        let loaded = load(path)?;
        check_overlap(&requests, path, &loaded)?;
        requests.extend(loaded.requests());
    }
    Ok(requests)
}

/// SIGHUP with health checks: [`reload_requests`]'s configuration, with
/// every checked real server in or out as its health says, applied with
/// [`crate::control::Control::sync_with_timeouts`] (the session timeouts
/// too: `[timeouts]`, then the rules' `--set`); the checkers follow the new file
/// (those of unchanged real servers keep their state). With the answer,
/// the configuration file's sections a reload does not apply, as this
/// reload read them ([`crate::config::Reload::restart`]).
pub fn reload(
    control: &crate::control::Control,
    health: &std::sync::Arc<crate::health::Health>,
    config: &Path,
    rules: Option<&Path>,
    keepalived: Option<&Path>,
) -> Result<(gw_proto::Response, toml::Table), ConfigError> {
    let crate::config::Reload { timeouts, requests, restart } = crate::config::reload_config(config, rules)?;
    let answer = match keepalived {
        Some(path) => {
            let loaded = load(path)?;
            check_overlap(&requests, path, &loaded)?;
            health.apply(requests, &loaded, |reqs| control.sync_with_timeouts(timeouts, reqs))
        }
        None => control.sync_with_timeouts(timeouts, requests),
    };
    Ok((answer, restart))
}
