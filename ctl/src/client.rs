//! gatewayd's unix socket: connect, send one framed request, read one response.
//!
//! Framing is gw_proto's (`write_frame`/`read_frame`). Every read and write has a
//! timeout, so a stuck daemon turns into an error instead of a hung gwctl.
//!
//! Decoding: `Response` is an internally tagged enum, for which serde first
//! copies the whole body into a generic tree to find the tag, then decodes that
//! tree: for a listing of 10,000 services with 10 real servers each (29 MB of
//! JSON) that takes five times as long as the decoding itself. [`Answer`]
//! reads the tag first, as gatewayd (serde_json) writes it, and decodes the two
//! answers that grow with the table, `services` and `conns`, straight from the
//! stream; any other answer, or one in another order, takes serde's way.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use gw_proto::{read_frame, write_frame, ConnInfo, FrameError, Request, Response, ServiceInfo};
use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, Visitor};
use serde_json::{Map, Value};

/// How long gwctl waits for gatewayd to take a request or to answer it.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Why an exchange with gatewayd failed after the connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("gatewayd did not answer within {} s", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("gatewayd closed the connection without answering")]
    Closed,
    #[error("bad answer from gatewayd: {0}")]
    Frame(FrameError),
}

/// A connection to gatewayd.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    timeout: Duration,
}

impl Client {
    /// Connects to the socket at `path`, with `timeout` on every read and write.
    pub fn connect(path: &Path, timeout: Duration) -> io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Client { stream, timeout })
    }

    /// Sends `req` and waits for its response.
    pub fn call(&mut self, req: &Request) -> Result<Response, ExchangeError> {
        write_frame(&mut self.stream, req).map_err(|e| self.classify(e))?;
        read_frame::<_, Answer>(&mut self.stream).map(|a| a.0).map_err(|e| self.classify(e))
    }

    fn classify(&self, e: FrameError) -> ExchangeError {
        match e {
            FrameError::Closed => ExchangeError::Closed,
            FrameError::Io(io)
                if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                ExchangeError::Timeout(self.timeout)
            }
            FrameError::Io(io)
                if matches!(
                    io.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                ExchangeError::Closed
            }
            other => ExchangeError::Frame(other),
        }
    }
}

/// A [`Response`], decoded without serde's copy of the whole body (see the module doc).
#[derive(Debug, PartialEq, Eq)]
pub struct Answer(pub Response);

impl<'de> Deserialize<'de> for Answer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Answer, D::Error> {
        d.deserialize_map(AnswerVisitor)
    }
}

struct AnswerVisitor;

impl<'de> Visitor<'de> for AnswerVisitor {
    type Value = Answer;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a gatewayd response")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Answer, A::Error> {
        let mut rest = Map::new();
        match map.next_key::<String>()? {
            Some(key) if key == "result" => {
                let tag: String = map.next_value()?;
                match tag.as_str() {
                    "services" => {
                        let mut size: Option<u64> = None;
                        let mut services: Option<Vec<ServiceInfo>> = None;
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                "conn_table_size" if size.is_none() => size = Some(map.next_value()?),
                                "services" if services.is_none() => services = Some(map.next_value()?),
                                _ => drop(rest.insert(key, map.next_value()?)),
                            }
                        }
                        match (size, services) {
                            (Some(conn_table_size), Some(services)) if rest.is_empty() => {
                                return Ok(Answer(Response::Services { conn_table_size, services }));
                            }
                            (size, services) => {
                                put(&mut rest, "conn_table_size", size)?;
                                put(&mut rest, "services", services)?;
                            }
                        }
                    }
                    "conns" => {
                        let mut conns: Option<Vec<ConnInfo>> = None;
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                "conns" if conns.is_none() => conns = Some(map.next_value()?),
                                _ => drop(rest.insert(key, map.next_value()?)),
                            }
                        }
                        match conns {
                            Some(conns) if rest.is_empty() => return Ok(Answer(Response::Conns { conns })),
                            conns => put(&mut rest, "conns", conns)?,
                        }
                    }
                    _ => {}
                }
                rest.insert("result".to_owned(), Value::String(tag));
            }
            Some(key) => drop(rest.insert(key, map.next_value()?)),
            None => {}
        }
        while let Some(key) = map.next_key::<String>()? {
            rest.insert(key, map.next_value()?);
        }
        serde_json::from_value(Value::Object(rest)).map(Answer).map_err(A::Error::custom)
    }
}

/// Puts a field already decoded back as JSON, for serde's way.
fn put<T: serde::Serialize, E: serde::de::Error>(
    rest: &mut Map<String, Value>,
    key: &str,
    v: Option<T>,
) -> Result<(), E> {
    if let Some(v) = v {
        rest.insert(key.to_owned(), serde_json::to_value(v).map_err(E::custom)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use gw_proto::{
        Counter, DestInfo, DestSpec, ErrorKind, ForwardMode, PortCounters, Protocol, Scheduler, ServiceKey,
        ServiceSpec, TimeoutSet, WorkerCounters,
    };

    use super::*;

    fn key() -> ServiceKey {
        ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100).into(), port: 80 }
    }

    fn every_answer() -> Vec<Response> {
        let dest = DestInfo {
            spec: DestSpec::new(Ipv4Addr::new(198, 18, 1, 2), 80, ForwardMode::FullNat, 1),
            active_conns: 1,
            inactive_conns: 2,
            persist_conns: 3,
            stats: Default::default(),
            rates: Default::default(),
        };
        let conn = ConnInfo {
            worker: 1,
            proto: Protocol::Udp,
            state: "UDP".into(),
            expires_ms: 5,
            client: (Ipv4Addr::new(1, 2, 3, 4).into(), 5),
            vip: (Ipv4Addr::new(198, 18, 0, 100).into(), 53),
            local: (Ipv4Addr::new(1, 2, 3, 4).into(), 5),
            dest: (Ipv4Addr::new(198, 18, 1, 2).into(), 53),
            mode: ForwardMode::Masq,
            template: false,
        };
        vec![
            Response::Ok,
            Response::error(ErrorKind::NoService, "rule 3: x"),
            Response::Services {
                conn_table_size: 7,
                services: vec![ServiceInfo {
                    spec: ServiceSpec::new(key(), Scheduler::Mh),
                    dests: vec![dest],
                    laddrs: vec![Ipv4Addr::new(198, 18, 2, 1).into()],
                    stats: Default::default(),
                    rates: Default::default(),
                    health: vec![],
                }],
            },
            Response::Services { conn_table_size: 0, services: vec![] },
            Response::Laddrs { entries: vec![(key(), vec![Ipv4Addr::new(198, 18, 2, 1).into()])] },
            Response::Counters {
                workers: vec![WorkerCounters {
                    worker: 0,
                    lcore: 1,
                    counters: vec![Counter { name: "rx".into(), value: 2 }],
                }],
                ports: vec![PortCounters {
                    name: "outside".into(),
                    port: 0,
                    counters: vec![Counter { name: "imissed".into(), value: 3 }],
                }],
            },
            Response::Timeouts { timeouts: TimeoutSet { tcp: 1, tcpfin: 2, udp: 3 } },
            Response::Conns { conns: vec![conn] },
            Response::Conns { conns: vec![] },
        ]
    }

    #[test]
    fn every_answer_decodes_as_serde_decodes_it() {
        for resp in every_answer() {
            let text = serde_json::to_string(&resp).unwrap();
            let Answer(back) = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(back, resp, "{text}");
        }
    }

    #[test]
    fn other_orders_and_fields_take_serdes_way() {
        let text = r#"{"services":[],"conn_table_size":3,"result":"services"}"#;
        let Answer(back) = serde_json::from_str(text).unwrap();
        assert_eq!(back, Response::Services { conn_table_size: 3, services: vec![] });
        let text = r#"{"result":"services","conn_table_size":3,"services":[],"future":1}"#;
        let Answer(back) = serde_json::from_str(text).unwrap();
        assert_eq!(back, Response::Services { conn_table_size: 3, services: vec![] });
        let text = r#"{"result":"conns","future":true,"conns":[]}"#;
        let Answer(back) = serde_json::from_str(text).unwrap();
        assert_eq!(back, Response::Conns { conns: vec![] });
        for bad in [r#"{"result":"services","conn_table_size":3}"#, r#"{"result":"nope"}"#, r#"[1]"#, "{}"] {
            assert!(serde_json::from_str::<Answer>(bad).is_err(), "{bad}");
        }
    }
}
