//! gatewayd's unix socket: connect, send one framed request, read one response.
//!
//! Framing is gw_proto's (`write_frame`/`read_frame`). Every read and write has a
//! timeout, so a stuck daemon turns into an error instead of a hung gwctl.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use gw_proto::{read_frame, write_frame, FrameError, Request, Response};

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
        read_frame(&mut self.stream).map_err(|e| self.classify(e))
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
