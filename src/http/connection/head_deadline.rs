//! A deadline on every request head of a connection, the second and later on a keep-alive
//! connection included. actix-http times out only the first head: after one complete request, a
//! client sending one byte of the next head and going silent would hold its connection (and a
//! file descriptor) forever.
//!
//! The wrapper watches the bytes going by: the first byte read after a response was written (or
//! on a fresh connection) starts a head, and an empty line after some content ends it; a head
//! still open at the deadline fails the read with `TimedOut`, which closes the connection. A
//! body is not timed here (`server.body_read_timeout_ms` bounds it where it is read); a client
//! that never reads its response is bounded by the kernel's send buffer and actix's keep-alive.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where the connection is in its request/response exchange, as far as the bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request: no deadline (actix's keep-alive timer closes an idle connection).
    BetweenRequests,
    /// Part of a head has arrived.
    InHead(HeadScan),
    /// The head is complete; the request is being read or served.
    Served,
}

/// Finds the end of a head: an empty line (CRLF or bare LF) after some content, so blank lines
/// before a request line cannot end it early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct HeadScan {
    seen_content: bool,
    at_line_start: bool,
}

impl HeadScan {
    /// Scans `bytes`; how many of them belong to the head, once it is complete.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        for (index, &byte) in bytes.iter().enumerate() {
            match byte {
                b'\n' if self.seen_content && self.at_line_start => return Some(index + 1),
                b'\n' => self.at_line_start = true,
                b'\r' => {}
                _ => {
                    self.seen_content = true;
                    self.at_line_start = false;
                }
            }
        }
        None
    }
}

/// `io`, whose request heads must each arrive within `timeout` of their first byte, holding
/// `held` (the connection's place among the bounds) for as long as it lives.
pub struct HeadDeadline<IO, H> {
    io: IO,
    timeout: Duration,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    _held: H,
}

impl<IO, H> HeadDeadline<IO, H> {
    pub(super) fn new(io: IO, timeout: Duration, held: H) -> HeadDeadline<IO, H> {
        HeadDeadline {
            io,
            timeout,
            phase: Phase::BetweenRequests,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            _held: held,
        }
    }

    /// Follows the phase through `read`, bytes just read.
    fn observe_read(&mut self, read: &[u8]) {
        if read.is_empty() {
            return;
        }
        if self.phase == Phase::BetweenRequests {
            self.phase = Phase::InHead(HeadScan::default());
            self.deadline.as_mut().reset(Instant::now() + self.timeout);
        }
        // What follows the head's end is its body or a pipelined request: not timed here.
        if let Phase::InHead(scan) = &mut self.phase
            && scan.feed(read).is_some()
        {
            self.phase = Phase::Served;
        }
    }

    /// Follows the phase through `written`, bytes just written.
    fn observe_write(&mut self, written: &[u8]) {
        // An interim `100 Continue` asks for the body: the request is still being served.
        if !written.is_empty() && !written.starts_with(b"HTTP/1.1 100 ") {
            self.phase = Phase::BetweenRequests;
        }
    }
}

impl<IO: AsyncRead + Unpin, H: Unpin> AsyncRead for HeadDeadline<IO, H> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Polled before the read, so the deadline's timer wakes this connection when it passes.
        if matches!(this.phase, Phase::InHead(_)) && this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request head did not arrive within server.request_head_timeout_ms",
            )));
        }
        let filled_before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        this.observe_read(&buf.filled()[filled_before..]);
        if matches!(this.phase, Phase::InHead(_)) {
            // A head just started: register the fresh deadline's timer too.
            let _ = this.deadline.as_mut().poll(cx);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin, H: Unpin> AsyncWrite for HeadDeadline<IO, H> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.observe_write(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        if written > 0
            && let Some(first) = bufs.iter().find(|buf| !buf.is_empty())
        {
            this.observe_write(&first[..written.min(first.len())]);
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_ends_at_the_first_empty_line_after_content() {
        let mut scan = HeadScan::default();
        assert_eq!(scan.feed(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r"), None);
        assert_eq!(scan.feed(b"\n\r\nbody"), Some(3));
        let mut bare = HeadScan::default();
        assert_eq!(bare.feed(b"GET / HTTP/1.1\nHost: x\n\n"), Some(24));
    }

    #[tokio::test]
    async fn a_write_ends_the_request_unless_it_is_a_100_continue() {
        let mut connection = HeadDeadline::new((), Duration::from_secs(5), ());
        connection.observe_read(b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(connection.phase, Phase::Served);
        connection.observe_write(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(connection.phase, Phase::Served);
        connection.observe_write(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(connection.phase, Phase::BetweenRequests);
        connection.observe_read(b"G");
        assert!(matches!(connection.phase, Phase::InHead(_)));
    }
}
