//! Standard input and output as the MCP transport. MCP clients start a server with pipes on
//! both; a pipe is then read and written by the runtime's own reactor, instead of through
//! tokio's stdio, which hands every read and write to a helper thread (two thread hand-offs
//! per message, a sizeable part of a short `run_code` round trip). Anything else (a terminal,
//! a file) goes through tokio's stdio.

use std::os::fd::{FromRawFd, OwnedFd};

use tokio::net::unix::pipe;
use tokio_util::either::Either;

/// Standard input, as the transport reads it.
pub(crate) type Input = Either<pipe::Receiver, tokio::io::Stdin>;
/// Standard output, as the transport writes it.
pub(crate) type Output = Either<pipe::Sender, tokio::io::Stdout>;

/// Standard input and output for the MCP session. Call once: the pipes are taken over (and
/// set non-blocking), so nothing else may read standard input or write standard output.
pub(crate) fn transport() -> (Input, Output) {
    let input = owned(0)
        .and_then(|fd| pipe::Receiver::from_owned_fd(fd).ok())
        .map_or_else(|| Either::Right(tokio::io::stdin()), Either::Left);
    let output = owned(1)
        .and_then(|fd| pipe::Sender::from_owned_fd(fd).ok())
        .map_or_else(|| Either::Right(tokio::io::stdout()), Either::Left);
    (input, output)
}

/// A duplicate of descriptor `fd` (the original stays open for anything that writes to it
/// by number, such as a panic message).
fn owned(fd: i32) -> Option<OwnedFd> {
    // SAFETY: dup of a standard descriptor; the new descriptor is owned by nobody else.
    let copy = unsafe { libc::dup(fd) };
    // SAFETY: `copy` is a fresh descriptor this function owns.
    (copy >= 0).then(|| unsafe { OwnedFd::from_raw_fd(copy) })
}
