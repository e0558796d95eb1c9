//! The pipe protocol between the server and a sandbox worker: each message is one JSON header
//! line, followed by `len` bytes of payload when the header has one (a tool result's JSON text
//! travels as it is, never re-escaped, and reaches QuickJS's own JSON parser whole).

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

/// A message's header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Header {
    /// Server → worker: run this program. Payload: the JSON `{program, state}`.
    Run {
        /// The run's limits.
        limits: WireLimits,
        /// The function paths `tools` offers.
        functions: Vec<String>,
        /// Payload length.
        len: usize,
    },
    /// Server → worker: a tool call's outcome. Payload: the result's JSON text when `ok`;
    /// for a list (`items`), each item's JSON text on a line of its own.
    Result {
        /// The call.
        id: u64,
        /// Whether it succeeded.
        ok: bool,
        /// The payload is a list, one item per line.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        items: bool,
        /// The error code when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// The error message when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Payload length.
        len: usize,
    },
    /// Server → worker: leading items of a list result, ahead of its `result`. Payload: each
    /// item's JSON text on a line of its own.
    Items {
        /// The call.
        id: u64,
        /// Payload length.
        len: usize,
    },
    /// Server → worker: the answer to `search` or `describe`. Payload: the answer (JSON text
    /// for search, the declaration for describe; empty for none).
    Answer {
        /// The question.
        id: u64,
        /// Whether there is an answer (describe of an unknown path has none).
        found: bool,
        /// Payload length.
        len: usize,
    },
    /// Server → worker: stop the program (the client cancelled).
    Cancel,
    /// Worker → server: call a function. Payload: the arguments' JSON text.
    Call {
        /// The call's id.
        id: u64,
        /// The function's path.
        path: String,
        /// Payload length.
        len: usize,
    },
    /// Worker → server: `tools.search`.
    Search {
        /// The question's id.
        id: u64,
        /// The query.
        query: String,
        /// Most results.
        limit: usize,
    },
    /// Worker → server: `tools.describe`.
    Describe {
        /// The question's id.
        id: u64,
        /// The path or kind.
        path: String,
    },
    /// Worker → server: calls made so far and time spent.
    Progress {
        /// Calls made.
        calls: usize,
        /// Milliseconds since the run started.
        ms: u64,
    },
    /// Worker → server: the run ended. Payload: the JSON `{output, state}`.
    Done {
        /// Payload length.
        len: usize,
    },
}

/// A list's items as one payload: one item per line (compact JSON has no raw newline).
pub(crate) fn join_items(items: &[String]) -> Vec<u8> {
    items.join("\n").into_bytes()
}

/// The items of a [`join_items`] payload.
pub(crate) fn split_items(text: &str) -> Vec<String> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').map(str::to_string).collect()
    }
}

impl Header {
    fn payload_len(&self) -> usize {
        match self {
            Header::Run { len, .. }
            | Header::Result { len, .. }
            | Header::Items { len, .. }
            | Header::Answer { len, .. }
            | Header::Call { len, .. }
            | Header::Done { len } => *len,
            _ => 0,
        }
    }
}

/// The limits as they cross the pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireLimits {
    /// Wall clock, in ms.
    pub wall_ms: u64,
    /// Heap, in bytes.
    pub memory: usize,
    /// Stack, in bytes.
    pub stack: usize,
    /// Tool calls.
    pub calls: usize,
    /// Calls in flight.
    pub in_flight: usize,
    /// Characters of console output kept.
    pub output: usize,
}

impl From<&crate::Limits> for WireLimits {
    fn from(l: &crate::Limits) -> WireLimits {
        WireLimits {
            wall_ms: l.wall.as_millis() as u64,
            memory: l.memory,
            stack: l.stack,
            calls: l.calls,
            in_flight: l.in_flight,
            output: l.output,
        }
    }
}

impl From<WireLimits> for crate::Limits {
    fn from(l: WireLimits) -> crate::Limits {
        crate::Limits {
            wall: std::time::Duration::from_millis(l.wall_ms),
            memory: l.memory,
            stack: l.stack,
            calls: l.calls,
            in_flight: l.in_flight,
            output: l.output,
        }
    }
}

/// The most a header line may hold (a program is in the `run` payload, not the header).
const MAX_HEADER: usize = 1024 * 1024;

/// The most a payload may hold.
pub const MAX_PAYLOAD: usize = 512 * 1024 * 1024;

/// Parses a header line and checks its payload's length against the cap.
fn header(line: &[u8]) -> std::io::Result<(Header, usize)> {
    let header: Header = serde_json::from_slice(line)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let len = header.payload_len();
    if len > MAX_PAYLOAD {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a payload of {len} bytes is over the {MAX_PAYLOAD}-byte cap"),
        ));
    }
    Ok((header, len))
}

/// Writes one message.
pub fn write(out: &mut impl Write, header: &Header, payload: &[u8]) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(header).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.write_all(payload)?;
    out.flush()
}

/// Reads one message; `None` at the end of the stream.
pub fn read(input: &mut impl BufRead) -> std::io::Result<Option<(Header, Vec<u8>)>> {
    let mut line = Vec::new();
    let n = std::io::Read::take(&mut *input, MAX_HEADER as u64).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    let (header, len) = header(&line)?;
    let mut payload = vec![0; len];
    input.read_exact(&mut payload)?;
    Ok(Some((header, payload)))
}

/// The async counterparts, for the server's side.
pub mod nonblocking {
    use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    use super::{Header, MAX_HEADER};

    /// Writes one message.
    pub async fn write(
        out: &mut (impl AsyncWrite + Unpin),
        header: &Header,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(header).map_err(std::io::Error::other)?;
        line.push(b'\n');
        out.write_all(&line).await?;
        out.write_all(payload).await?;
        out.flush().await
    }

    /// Reads one message; `None` at the end of the stream.
    pub async fn read(
        input: &mut (impl AsyncBufRead + Unpin),
    ) -> std::io::Result<Option<(Header, Vec<u8>)>> {
        let mut line = Vec::new();
        let n = (&mut *input)
            .take(MAX_HEADER as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        let (header, len) = super::header(&line)?;
        let mut payload = vec![0; len];
        input.read_exact(&mut payload).await?;
        Ok(Some((header, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let mut buf = Vec::new();
        let h = Header::Call {
            id: 7,
            path: "kubernetes.list".into(),
            len: 15,
        };
        write(&mut buf, &h, br#"{"kind":"Pod"} "#).unwrap();
        write(&mut buf, &Header::Cancel, b"").unwrap();
        let mut input = std::io::Cursor::new(buf);
        let (got, payload) = read(&mut input).unwrap().unwrap();
        assert_eq!(got, h);
        assert_eq!(payload, br#"{"kind":"Pod"} "#);
        assert_eq!(read(&mut input).unwrap().unwrap().0, Header::Cancel);
        assert!(read(&mut input).unwrap().is_none());
    }
}
