//! Finds requests whose length is ambiguous: both `Content-Length` and
//! `Transfer-Encoding`. The HTTP parser resolves them (chunked wins) and
//! drops `Content-Length` before a handler could see it; a proxy in front of
//! us may have resolved them the other way, which is how requests are
//! smuggled. So the bytes are watched as they are read: each request head is
//! looked at, and its body skipped by its framing to find the next head.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Marks a request refused for carrying both lengths.
#[derive(Debug, Clone, Copy)]
pub struct AmbiguousLength;

impl AmbiguousLength {
    pub const REASON: &'static str =
        "the request has both Content-Length and Transfer-Encoding: its length is ambiguous";
}

/// What a connection's watcher found, for the service answering its requests.
#[derive(Debug)]
pub struct Framing {
    /// The index of the first ambiguous request; the parser closes the
    /// connection after it, so later ones do not matter.
    ambiguous_from: AtomicU64,
    /// Requests handed to the service so far.
    served: AtomicU64,
}

impl Framing {
    /// The index of the request the service is handed now.
    pub fn next_request(&self) -> u64 {
        self.served.fetch_add(1, Ordering::Relaxed)
    }

    pub fn is_ambiguous(&self, request: u64) -> bool {
        request >= self.ambiguous_from.load(Ordering::Acquire)
    }
}

/// The most of a request head looked at; a longer one the parser refuses.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug)]
enum State {
    /// Reading a request head (up to its blank line).
    Head(Vec<u8>),
    /// Skipping a body of a known length.
    Length(u64),
    /// A chunk-size line.
    ChunkSize(Vec<u8>),
    /// Skipping a chunk's data, then its CRLF.
    ChunkData(u64),
    ChunkEnd(u8),
    /// Trailer lines after the last chunk, up to a blank line.
    Trailers(Vec<u8>),
    /// Nothing more to learn on this connection.
    Done,
}

/// An I/O stream whose incoming bytes are watched for ambiguous requests.
pub struct FramingWatch<S> {
    inner: S,
    state: State,
    heads: u64,
    found: Arc<Framing>,
}

impl<S> FramingWatch<S> {
    pub fn new(inner: S) -> (FramingWatch<S>, Arc<Framing>) {
        let found = Arc::new(Framing {
            ambiguous_from: AtomicU64::new(u64::MAX),
            served: AtomicU64::new(0),
        });
        let watch = FramingWatch {
            inner,
            state: State::Head(Vec::new()),
            heads: 0,
            found: found.clone(),
        };
        (watch, found)
    }

    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (used, next) = match &mut self.state {
                State::Done => return,
                State::Head(head) => match take_line_block(head, bytes, MAX_HEAD) {
                    Taken::More(used) => (used, None),
                    Taken::TooLong => (bytes.len(), Some(State::Done)),
                    Taken::Complete(used) => {
                        let next = self.head_complete();
                        (used, Some(next))
                    }
                },
                State::Length(left) => {
                    let used = (*left).min(bytes.len() as u64);
                    *left -= used;
                    let next = (*left == 0).then(|| State::Head(Vec::new()));
                    (used as usize, next)
                }
                State::ChunkSize(line) => match take_line(line, bytes) {
                    None => (bytes.len(), None),
                    Some(used) => {
                        let next = match chunk_size(line) {
                            Some(0) => State::Trailers(Vec::new()),
                            Some(size) => State::ChunkData(size),
                            None => State::Done,
                        };
                        (used, Some(next))
                    }
                },
                State::ChunkData(left) => {
                    let used = (*left).min(bytes.len() as u64);
                    *left -= used;
                    let next = (*left == 0).then_some(State::ChunkEnd(0));
                    (used as usize, next)
                }
                State::ChunkEnd(seen) => {
                    // The CRLF after a chunk's data.
                    *seen += 1;
                    let next = (*seen == 2).then(|| State::ChunkSize(Vec::new()));
                    (1, next)
                }
                State::Trailers(block) => match take_line_block(block, bytes, MAX_HEAD) {
                    Taken::More(used) => (used, None),
                    Taken::TooLong => (bytes.len(), Some(State::Done)),
                    Taken::Complete(used) => (used, Some(State::Head(Vec::new()))),
                },
            };
            bytes = &bytes[used..];
            if let Some(next) = next {
                self.state = next;
            }
        }
    }

    /// Judges the head just read; says how to find the next one.
    fn head_complete(&mut self) -> State {
        let State::Head(head) = &self.state else {
            return State::Done;
        };
        let head = String::from_utf8_lossy(head);
        let mut length = None;
        let mut chunked = false;
        let mut encoded = false;
        for line in head.split('\n').skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok().or(Some(u64::MAX));
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                encoded = true;
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            }
        }
        let index = self.heads;
        self.heads += 1;
        match (length, encoded) {
            (Some(_), true) => {
                self.found.ambiguous_from.store(index, Ordering::Release);
                State::Done
            }
            (_, true) if chunked => State::ChunkSize(Vec::new()),
            // Not chunked, or an unparsable length: the parser refuses it.
            (_, true) | (Some(u64::MAX), _) => State::Done,
            (Some(0) | None, false) => State::Head(Vec::new()),
            (Some(n), false) => State::Length(n),
        }
    }
}

enum Taken {
    /// All of these bytes belong to the block, which goes on.
    More(usize),
    /// The block ended after this many bytes.
    Complete(usize),
    TooLong,
}

/// Adds bytes to a block of lines that ends with an empty line; blank
/// lines before a head (allowed between requests) are skipped.
fn take_line_block(block: &mut Vec<u8>, bytes: &[u8], max: usize) -> Taken {
    for (i, &b) in bytes.iter().enumerate() {
        if block.is_empty() && (b == b'\r' || b == b'\n') {
            continue;
        }
        block.push(b);
        if block.ends_with(b"\n\n") || block.ends_with(b"\r\n\r\n") {
            return Taken::Complete(i + 1);
        }
        if block.len() > max {
            return Taken::TooLong;
        }
    }
    Taken::More(bytes.len())
}

/// Adds bytes to one line; the bytes used once it ends.
fn take_line(line: &mut Vec<u8>, bytes: &[u8]) -> Option<usize> {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => {
            line.extend_from_slice(&bytes[..end]);
            Some(end + 1)
        }
        None => {
            if line.len() < 1024 {
                line.extend_from_slice(bytes);
            }
            None
        }
    }
}

fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = std::str::from_utf8(line).ok()?;
    let size = line.split(';').next()?.trim();
    u64::from_str_radix(size, 16).ok()
}

impl<S: AsyncRead + Unpin> AsyncRead for FramingWatch<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let this = &mut *self;
            this.observe(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FramingWatch<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which of the requests in `stream`, fed in pieces of `step` bytes, are ambiguous.
    fn ambiguous_from(stream: &[u8], step: usize) -> u64 {
        let (mut watch, found) = FramingWatch::new(());
        for piece in stream.chunks(step) {
            watch.observe(piece);
        }
        found.ambiguous_from.load(Ordering::Acquire)
    }

    #[test]
    fn finds_the_request_with_both_lengths_after_others_on_the_connection() {
        let stream = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
            POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nTrailer: t\r\n\r\n\
            \r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /d HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
        for step in [1, 2, 7, stream.len()] {
            assert_eq!(ambiguous_from(stream, step), 3, "in pieces of {step}");
        }
    }

    #[test]
    fn either_length_alone_is_fine() {
        let stream = b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}\
            POST /b HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n\
            GET / HTTP/1.1\r\n\r\n";
        assert_eq!(ambiguous_from(stream, 3), u64::MAX);
        // Either order of the two headers.
        let both = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(ambiguous_from(both, 1), 0);
    }
}
