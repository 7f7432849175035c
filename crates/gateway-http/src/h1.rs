//! Upstream HTTP/1.1 connections, driven by the request that uses them.
//!
//! Why not hyper's client connection: hyper drives each connection in a task of its own
//! and hands it requests and answers through channels. Sending a request that way (a task
//! wake-up each way, a dispatch state machine) took 18.8k of a pass-through request's
//! 70.3k instructions (callgrind, `benches/load/instructions.sh`); this takes 10.4k. And
//! every hyper connection held about 25 KB of fixed buffers (8 KB for the request head, at
//! least 8 KB to read into, a channel block) for as long as it lived: an idle stream cost
//! the gateway 48.1 KB, and costs 28.5 KB now (`benches/load/memory.sh`). Here the
//! request's own future writes the request and reads the answer: no task, no channel, and
//! nothing buffered while the connection waits (reads go through a buffer on the stack,
//! and only what arrived is kept).
//!
//! With no task watching an idle connection, [`Connection::is_closed`] looks at its socket
//! before it is reused (one `recv` with `MSG_PEEK` a request): a Python caller's runtime
//! runs only inside its calls, so an upstream's keep-alive timeout that closed the
//! connection between two calls is otherwise found only by the next request failing.
//!
//! What it speaks: one request at a time per connection; answers framed by
//! `content-length`, chunked, or the connection closing, and none for HEAD, 1xx, 204 and
//! 304; keep-alive unless the answer says `connection: close` or is HTTP/1.0 (we never
//! offer 1.0). A connection is reused only when its answer was read to the end with
//! nothing after it. The upstream may be a caller's custom host, so what it sends is
//! bounded: an answer head to 64 KiB and 100 headers, a chunk-size line to 4 KiB, the
//! trailers to 64 KiB. Bodies are not bounded here: a stream may be long, and the engine
//! bounds what it collects.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the connector opens: TCP, perhaps under TLS.
pub(crate) type Socket = MaybeHttpsStream<TokioIo<TcpStream>>;

/// Longest answer head (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in an answer head (as hyper's default).
const MAX_HEADERS: usize = 100;
/// Longest chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Most bytes of trailers after a chunked body.
const MAX_TRAILERS: usize = 64 * 1024;
/// Bytes asked of the socket per read: a TLS record's worth.
const READ_SIZE: usize = 16 * 1024;
/// A body up to this size goes out in the same write as the head (one syscall); a larger
/// one is written after it rather than copied.
const COALESCE: usize = 64 * 1024;

/// An open connection, idle or lent to one request.
pub(crate) struct Connection {
    /// Boxed: a TLS session is a kilobyte, and a connection moves between the pool and
    /// the futures and bodies that use it.
    io: Box<TokioIo<Socket>>,
}

/// A request's head: the body's length is the body's own, and `content-length`,
/// `transfer-encoding` and `connection` in `headers` are ignored (the connection sets them).
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a Method,
    /// Origin form: `/v1/chat/completions?x=1`.
    pub(crate) target: &'a str,
    /// The `Host` header, unless `headers` has one.
    pub(crate) host: Option<&'a HeaderValue>,
    pub(crate) headers: &'a HeaderMap,
}

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum SendFailure {
    /// Writing the request failed (the upstream had closed the connection): at most a part
    /// of it arrived, which no server acts on, so it can go again on another connection.
    Unwritten(io::Error),
    /// After the request was written, while its answer was read.
    Failed(io::Error),
}

/// An answer whose head has arrived.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
}

impl Connection {
    pub(crate) fn new(socket: Socket) -> Self {
        Self { io: Box::new(TokioIo::new(socket)) }
    }

    /// Whether this idle connection can no longer carry a request: the upstream closed it,
    /// sent something unasked, or the runtime that drives its socket has gone. One syscall
    /// (a peek), as a connection is about to be reused.
    pub(crate) fn is_closed(&mut self) -> bool {
        if self.seen_closed() {
            return true;
        }
        // A close that arrived since the runtime last polled its sockets shows only on the
        // socket itself. (Under TLS, bytes here could be a session ticket; a new connection
        // costs less than guessing.)
        let tcp = match self.io.inner() {
            MaybeHttpsStream::Http(tcp) => tcp.inner(),
            MaybeHttpsStream::Https(tls) => tls.inner().get_ref().0.inner().inner(),
        };
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        !matches!(socket2::SockRef::from(tcp).peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Whether the runtime has seen this idle connection closed (or has gone itself): from
    /// the readiness tokio keeps, without a syscall unless something arrived. For sweeping
    /// many connections at once, where a syscall each would let a flood of custom hosts
    /// buy a lot of work.
    pub(crate) fn seen_closed(&mut self) -> bool {
        let mut scratch = [MaybeUninit::<u8>::uninit(); 64];
        let mut unread = ReadBuf::uninit(&mut scratch);
        // Ready: the end, bytes nobody asked for, or an error.
        Pin::new(&mut *self.io).poll_read(&mut Context::from_waker(Waker::noop()), &mut unread).is_ready()
    }

    /// Write the request and read its answer's head. The body is read from the answer.
    pub(crate) async fn send(mut self, head: &RequestHead<'_>, body: &[u8]) -> Result<Answer, SendFailure> {
        let mut out = encode_head(head, body.len());
        let mut rest = body;
        if body.len() <= COALESCE {
            out.extend_from_slice(body);
            rest = &[];
        }
        let mut buffer = BytesMut::new();
        let mut writing = Writing { parts: [&out, rest], answer_side_open: true };
        let written = std::future::poll_fn(|cx| writing.poll(&mut self.io, cx, &mut buffer, head.method)).await;
        // Answered before the request was all written: the connection is not reused.
        let answered_early = match written {
            Ok(Written::All) => false,
            Ok(Written::AnsweredEarly) => true,
            Err(e) => return Err(SendFailure::Unwritten(e)),
        };
        loop {
            if let Some((answer, length)) = parse_head(&buffer, head.method).map_err(SendFailure::Failed)? {
                buffer.advance(length);
                match answer {
                    ParsedHead::Interim => continue,
                    ParsedHead::Final { status, headers, framing, keep_alive } => {
                        let keep_alive = keep_alive && !answered_early;
                        let body = Body { connection: Some(self), buffer, framing, keep_alive };
                        return Ok(Answer { status, headers, body });
                    }
                }
            }
            if buffer.len() >= MAX_HEAD {
                return Err(SendFailure::Failed(invalid("the upstream's answer head is over 64 KiB")));
            }
            let read = std::future::poll_fn(|cx| poll_read_some(&mut self.io, cx, &mut buffer)).await;
            match read {
                Ok(0) => {
                    return Err(SendFailure::Failed(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upstream closed the connection before it answered",
                    )));
                }
                Ok(_) => {}
                Err(e) => return Err(SendFailure::Failed(e)),
            }
        }
    }
}

/// A request being written: what is left of its head and body, in order.
struct Writing<'a> {
    parts: [&'a [u8]; 2],
    /// Whether the upstream may still answer (it has not closed its side).
    answer_side_open: bool,
}

/// How writing a request ended.
enum Written {
    All,
    /// The upstream answered first (a 401 or 413 before it read a large body, say): the
    /// answer's head, or part of it, is in the buffer.
    AnsweredEarly,
}

impl Writing<'_> {
    /// Write on, taking in whatever the upstream sends meanwhile: an upstream may answer
    /// and close without reading a large body, and that answer is the caller's to see,
    /// not a broken pipe. Answer bytes are looked for before each write, so an answer
    /// that arrived with the close is read before the write fails on it.
    fn poll(
        &mut self,
        io: &mut TokioIo<Socket>,
        cx: &mut Context<'_>,
        buffer: &mut BytesMut,
        method: &Method,
    ) -> Poll<io::Result<Written>> {
        loop {
            if self.answer_side_open {
                match poll_read_some(io, cx, buffer) {
                    Poll::Ready(Ok(0) | Err(_)) => self.answer_side_open = false,
                    Poll::Ready(Ok(_)) => match parse_head(buffer, method) {
                        Ok(Some((ParsedHead::Interim, length))) => {
                            buffer.advance(length);
                            continue;
                        }
                        // Incomplete: read on.
                        Ok(None) if buffer.len() < MAX_HEAD => continue,
                        // An answer, or one the head loop will refuse.
                        _ => return Poll::Ready(Ok(Written::AnsweredEarly)),
                    },
                    Poll::Pending => {}
                }
            }
            let unwritten = self.parts.iter().any(|part| !part.is_empty());
            if !self.answer_side_open && unwritten && buffer.is_empty() {
                // The upstream closed its side before the request was all written: none
                // of it was acted on, so it counts as not written (a reused connection is
                // then tried once more on a new one).
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the upstream closed the connection before the request was written",
                )));
            }
            let Some(part) = self.parts.iter_mut().find(|part| !part.is_empty()) else {
                return Pin::new(&mut *io).poll_flush(cx).map_ok(|()| Written::All);
            };
            match ready!(Pin::new(&mut *io).poll_write(cx, part)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(written) => *part = &part[written..],
                Err(e) if buffer.is_empty() => return Poll::Ready(Err(e)),
                // Some of an answer came before the write failed: the head loop reads on.
                Err(_) => return Poll::Ready(Ok(Written::AnsweredEarly)),
            }
        }
    }
}

/// An answer's body, read from its connection as it is pulled.
pub(crate) struct Body {
    /// `None` once the connection is closed or has failed; at the end of the body it is
    /// kept only if it can carry another request.
    connection: Option<Connection>,
    /// Read but not yet handed out.
    buffer: BytesMut,
    framing: Framing,
    keep_alive: bool,
}

impl Body {
    /// After the body has ended: its connection, if it can carry another request.
    pub(crate) fn reusable(&mut self) -> Option<Connection> {
        if matches!(self.framing, Framing::Ended) { self.connection.take() } else { None }
    }

    fn end(&mut self) {
        self.framing = Framing::Ended;
        if !self.keep_alive || !self.buffer.is_empty() {
            self.connection = None;
        }
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<io::Result<Bytes>>> {
        self.framing = Framing::Ended;
        self.connection = None;
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for Body {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match decode(&mut this.framing, &mut this.buffer) {
                Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(Decoded::End) => {
                    if !matches!(this.framing, Framing::Ended) {
                        this.end();
                    }
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
                Err(e) => return this.fail(e),
            }
            let Some(connection) = this.connection.as_mut() else { return Poll::Ready(None) };
            match ready!(poll_read_some(&mut connection.io, cx, &mut this.buffer)) {
                Ok(0) if matches!(this.framing, Framing::UntilClose) => {
                    this.framing = Framing::Ended;
                    this.connection = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upstream closed the connection before the answer was complete",
                    );
                    return this.fail(e);
                }
                Ok(_) => {}
                Err(e) => return this.fail(e),
            }
        }
    }
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunk),
    /// It ends when the upstream closes the connection.
    UntilClose,
    /// The body has ended (or failed).
    Ended,
}

/// Where a chunked body's reading is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of the chunk are left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one; this many bytes seen.
    Trailers(usize),
}

#[derive(Debug, PartialEq, Eq)]
enum Decoded {
    Data(Bytes),
    End,
    NeedMore,
}

/// The next piece of the body from `buffer`.
fn decode(framing: &mut Framing, buffer: &mut BytesMut) -> io::Result<Decoded> {
    match framing {
        Framing::Ended | Framing::Length(0) => Ok(Decoded::End),
        Framing::Length(_) | Framing::UntilClose if buffer.is_empty() => Ok(Decoded::NeedMore),
        Framing::Length(left) => {
            let take = usize::try_from(*left).map_or(buffer.len(), |left| left.min(buffer.len()));
            *left -= take as u64;
            Ok(Decoded::Data(buffer.split_to(take).freeze()))
        }
        Framing::UntilClose => Ok(Decoded::Data(buffer.split().freeze())),
        Framing::Chunked(chunk) => decode_chunked(chunk, buffer),
    }
}

fn decode_chunked(chunk: &mut Chunk, buffer: &mut BytesMut) -> io::Result<Decoded> {
    loop {
        match chunk {
            Chunk::Size => {
                let Some(end) = buffer.iter().position(|&b| b == b'\n') else {
                    if buffer.len() > MAX_CHUNK_LINE {
                        return Err(invalid("a chunk-size line from the upstream is over 4 KiB"));
                    }
                    return Ok(Decoded::NeedMore);
                };
                if end > MAX_CHUNK_LINE {
                    return Err(invalid("a chunk-size line from the upstream is over 4 KiB"));
                }
                let size =
                    chunk_size(&buffer[..end]).ok_or_else(|| invalid("an invalid chunk size from the upstream"))?;
                buffer.advance(end + 1);
                *chunk = if size == 0 { Chunk::Trailers(0) } else { Chunk::Data(size) };
            }
            Chunk::Data(left) => {
                if buffer.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let take = usize::try_from(*left).map_or(buffer.len(), |left| left.min(buffer.len()));
                *left -= take as u64;
                if *left == 0 {
                    *chunk = Chunk::DataEnd;
                }
                return Ok(Decoded::Data(buffer.split_to(take).freeze()));
            }
            Chunk::DataEnd => match buffer.first() {
                None => return Ok(Decoded::NeedMore),
                Some(b'\n') => {
                    buffer.advance(1);
                    *chunk = Chunk::Size;
                }
                Some(b'\r') => match buffer.get(1) {
                    None => return Ok(Decoded::NeedMore),
                    Some(b'\n') => {
                        buffer.advance(2);
                        *chunk = Chunk::Size;
                    }
                    Some(_) => return Err(invalid("no CRLF after a chunk from the upstream")),
                },
                Some(_) => return Err(invalid("no CRLF after a chunk from the upstream")),
            },
            Chunk::Trailers(seen) => {
                let Some(end) = buffer.iter().position(|&b| b == b'\n') else {
                    if *seen + buffer.len() > MAX_TRAILERS {
                        return Err(invalid("the upstream's trailers are over 64 KiB"));
                    }
                    return Ok(Decoded::NeedMore);
                };
                *seen += end + 1;
                if *seen > MAX_TRAILERS {
                    return Err(invalid("the upstream's trailers are over 64 KiB"));
                }
                let empty = buffer[..end].strip_suffix(b"\r").unwrap_or(&buffer[..end]).is_empty();
                buffer.advance(end + 1);
                if empty {
                    return Ok(Decoded::End);
                }
            }
        }
    }
}

/// A chunk-size line's size (hex digits, then perhaps whitespace or `;extensions`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 || !matches!(line.get(digits), None | Some(b';' | b' ' | b'\t')) {
        return None;
    }
    line[..digits].iter().try_fold(0u64, |size, &digit| {
        let value = char::from(digit).to_digit(16)?;
        Some(size << 4 | u64::from(value))
    })
}

/// An answer head, parsed.
#[derive(Debug)]
enum ParsedHead {
    /// 100 Continue, 102, 103: another head follows.
    Interim,
    Final {
        status: StatusCode,
        headers: HeaderMap,
        framing: Framing,
        keep_alive: bool,
    },
}

/// The answer head at the start of `buffer` and its length, or `None` if it has not all
/// arrived yet.
fn parse_head(buffer: &[u8], method: &Method) -> io::Result<Option<(ParsedHead, usize)>> {
    if buffer.is_empty() {
        return Ok(None);
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let length = match response.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(format!("an invalid answer head from the upstream: {e}"))),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| invalid("an invalid status code from the upstream"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(invalid("the upstream switched protocols unasked"));
    }
    if status.is_informational() {
        return Ok(Some((ParsedHead::Interim, length)));
    }
    let mut keep_alive = response.version == Some(1);
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    let mut chunked = None;
    let mut content_length = None;
    for header in response.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| invalid("an invalid header name from the upstream"))?;
        let value =
            HeaderValue::from_bytes(header.value).map_err(|_| invalid("an invalid header value from the upstream"))?;
        if name == CONNECTION && tokens(header.value).any(|t| t.eq_ignore_ascii_case(b"close")) {
            keep_alive = false;
        } else if name == TRANSFER_ENCODING {
            // The last coding decides (the header may come more than once).
            chunked = Some(tokens(header.value).last().is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")));
        } else if name == CONTENT_LENGTH {
            for token in tokens(header.value) {
                let parsed = std::str::from_utf8(token)
                    .ok()
                    .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(|| invalid("an invalid content-length from the upstream"))?;
                if content_length.is_some_and(|seen| seen != parsed) {
                    return Err(invalid("conflicting content-lengths from the upstream"));
                }
                content_length = Some(parsed);
            }
        }
        headers.append(name, value);
    }
    let bodiless = *method == Method::HEAD || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = match (bodiless, chunked, content_length) {
        (true, _, _) => Framing::Length(0),
        (false, Some(true), length) => {
            // Both framings: chunked wins, and the connection is not to be trusted again.
            keep_alive &= length.is_none();
            Framing::Chunked(Chunk::Size)
        }
        (false, Some(false), _) | (false, None, None) => {
            keep_alive = false;
            Framing::UntilClose
        }
        (false, None, Some(length)) => Framing::Length(length),
    };
    Ok(Some((ParsedHead::Final { status, headers, framing, keep_alive }, length)))
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty())
}

/// The request line and headers, with the body's length.
fn encode_head(head: &RequestHead<'_>, body_length: usize) -> Vec<u8> {
    let headers_size: usize = head.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    let mut out = Vec::with_capacity(64 + head.target.len() + headers_size + body_length.min(COALESCE));
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = head.host
        && !head.headers.contains_key(HOST)
    {
        header_line(&mut out, b"host", host.as_bytes());
    }
    for (name, value) in head.headers {
        if name != CONTENT_LENGTH && name != TRANSFER_ENCODING && name != CONNECTION {
            header_line(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if body_length > 0 || !matches!(*head.method, Method::GET | Method::HEAD) {
        header_line(&mut out, b"content-length", itoa::Buffer::new().format(body_length).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn header_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Read what the socket has (up to `READ_SIZE`) onto the end of `buffer`; 0 at the end.
/// Through the stack, so that a connection waiting for its upstream holds no buffer.
fn poll_read_some(io: &mut TokioIo<Socket>, cx: &mut Context<'_>, buffer: &mut BytesMut) -> Poll<io::Result<usize>> {
    let mut scratch = [MaybeUninit::<u8>::uninit(); READ_SIZE];
    let mut read = ReadBuf::uninit(&mut scratch);
    ready!(Pin::new(io).poll_read(cx, &mut read))?;
    let filled = read.filled();
    if buffer.is_empty() {
        // A fresh allocation of what arrived, not the last one's leftover capacity (which
        // a chunk handed out still shares).
        *buffer = BytesMut::from(filled);
    } else {
        buffer.extend_from_slice(filled);
    }
    Poll::Ready(Ok(filled.len()))
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn head(text: &str, method: &Method) -> (StatusCode, HeaderMap, Framing, bool, usize) {
        match parse_head(text.as_bytes(), method) {
            Ok(Some((ParsedHead::Final { status, headers, framing, keep_alive }, length))) => {
                (status, headers, framing, keep_alive, length)
            }
            other => panic!("{other:?}"),
        }
    }

    fn body(framing: Framing, wire: &[&[u8]]) -> io::Result<(Vec<u8>, BytesMut)> {
        let mut framing = framing;
        let mut buffer = BytesMut::new();
        let mut out = Vec::new();
        for (i, piece) in wire.iter().enumerate() {
            buffer.extend_from_slice(piece);
            loop {
                match decode(&mut framing, &mut buffer)? {
                    Decoded::Data(data) => out.extend_from_slice(&data),
                    Decoded::End => {
                        wire[i + 1..].iter().for_each(|rest| buffer.extend_from_slice(rest));
                        return Ok((out, buffer));
                    }
                    Decoded::NeedMore => break,
                }
            }
        }
        Err(io::Error::new(io::ErrorKind::UnexpectedEof, "unfinished"))
    }

    #[test]
    fn a_content_length_answer_is_kept_alive() {
        let (status, headers, framing, keep_alive, length) =
            head("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 2\r\n\r\n{}", &Method::POST);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(framing, Framing::Length(2));
        assert!(keep_alive);
        assert_eq!(length, 70, "the head ends before the body");
    }

    #[test]
    fn framing_follows_the_rules_of_rfc_9112() {
        let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n";
        assert_eq!(head(chunked, &Method::POST).2, Framing::Chunked(Chunk::Size));
        assert!(head(chunked, &Method::POST).3);
        let both = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n";
        assert_eq!(head(both, &Method::POST).2, Framing::Chunked(Chunk::Size));
        assert!(!head(both, &Method::POST).3, "chunked with a length: not reused");
        let not_chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n";
        assert_eq!(head(not_chunked, &Method::POST).2, Framing::UntilClose);
        let neither = "HTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(head(neither, &Method::POST).2, Framing::UntilClose);
        assert!(!head(neither, &Method::POST).3);
        assert_eq!(head("HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", &Method::HEAD).2, Framing::Length(0));
        assert_eq!(head("HTTP/1.1 204 No Content\r\n\r\n", &Method::POST).2, Framing::Length(0));
        assert_eq!(head("HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n", &Method::GET).2, Framing::Length(0));
        assert!(!head("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n", &Method::GET).3);
        assert!(!head("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", &Method::GET).3);
        assert_eq!(head("HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n", &Method::GET).2, Framing::Length(3));
    }

    #[test]
    fn interim_answers_are_skipped_and_a_partial_head_waits() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n";
        assert!(matches!(parse_head(wire, &Method::POST), Ok(Some((ParsedHead::Interim, 25)))));
        assert!(matches!(parse_head(&wire[25..], &Method::POST), Ok(None)));
    }

    #[test]
    fn a_hostile_head_is_an_error_not_a_guess() {
        for wire in [
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: +3\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "NOT HTTP\r\n\r\n",
        ] {
            let error = parse_head(wire.as_bytes(), &Method::POST).expect_err(wire);
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{wire}");
        }
        let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", "x: y\r\n".repeat(MAX_HEADERS + 1));
        assert!(parse_head(many.as_bytes(), &Method::POST).is_err());
    }

    #[test]
    fn a_chunked_body_is_decoded_however_it_is_split() {
        let wire: &[u8] = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\ntrailer: x\r\n\r\nNEXT";
        for split in 0..wire.len() {
            let (out, rest) = body(Framing::Chunked(Chunk::Size), &[&wire[..split], &wire[split..]]).unwrap();
            assert_eq!(out, b"hello world", "split at {split}");
            assert_eq!(&rest[..], b"NEXT", "split at {split}");
        }
        let (out, _) = body(Framing::Chunked(Chunk::Size), &[b"A\nabcdefghij\n0\n\n"]).unwrap();
        assert_eq!(out, b"abcdefghij", "bare LF line ends");
    }

    #[test]
    fn a_hostile_chunked_body_is_an_error() {
        for wire in [&b"zz\r\n"[..], b"5x\r\nhello\r\n", b"11111111111111111\r\n", b"5\r\nhelloXX0\r\n\r\n"] {
            assert!(body(Framing::Chunked(Chunk::Size), &[wire]).is_err(), "{wire:?}");
        }
        let long_line = vec![b'1'; MAX_CHUNK_LINE + 1];
        let error = body(Framing::Chunked(Chunk::Size), &[&long_line]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let trailers = [&b"0\r\n"[..], &vec![b'x'; MAX_TRAILERS + 1]];
        assert_eq!(body(Framing::Chunked(Chunk::Size), &trailers).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_length_body_stops_at_its_length() {
        let (out, rest) = body(Framing::Length(5), &[b"hel", b"loEXTRA"]).unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(&rest[..], b"EXTRA");
    }

    #[test]
    fn the_head_sets_its_own_framing_and_host() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer k"));
        headers.insert("content-length", HeaderValue::from_static("999"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("connection", HeaderValue::from_static("close"));
        let host = HeaderValue::from_static("api.example:8080");
        let request = RequestHead { method: &Method::POST, target: "/v1/x?y=1", host: Some(&host), headers: &headers };
        assert_eq!(
            String::from_utf8(encode_head(&request, 2)).unwrap(),
            "POST /v1/x?y=1 HTTP/1.1\r\nhost: api.example:8080\r\nauthorization: Bearer k\r\ncontent-length: 2\r\n\r\n"
        );
        headers.insert("host", HeaderValue::from_static("own"));
        let get = RequestHead { method: &Method::GET, target: "/", host: Some(&host), headers: &headers };
        assert_eq!(
            String::from_utf8(encode_head(&get, 0)).unwrap(),
            "GET / HTTP/1.1\r\nauthorization: Bearer k\r\nhost: own\r\n\r\n"
        );
    }

    /// An HTTP/1.1 upstream over TLS on loopback, on a thread and runtime of its own, that
    /// answers `answers` requests on its one connection, then ends the session
    /// (`close_notify`), closes it and says so on the channel.
    fn tls_upstream(answers: usize) -> (u16, std::sync::mpsc::Receiver<()>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_slice(include_bytes!("testdata/loopback-cert.pem")).unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/loopback-key.pem")).unwrap();
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (closed, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let (tcp, _) = listener.accept().await.unwrap();
                let mut tls = BufReader::new(acceptor.accept(tcp).await.unwrap());
                for _ in 0..answers {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        tls.read_line(&mut line).await.unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(value) = line.strip_prefix("content-length: ") {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    tls.read_exact(&mut body).await.unwrap();
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\n\r\n");
                    tls.get_mut().write_all(&[head.as_bytes(), &body].concat()).await.unwrap();
                }
                tls.get_mut().shutdown().await.unwrap();
            });
            closed.send(()).unwrap();
        });
        (port, done)
    }

    async fn tls_connection(port: u16) -> Connection {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(include_bytes!("testdata/loopback-cert.pem")).unwrap()).unwrap();
        let config = tokio_rustls::rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, TokioIo::new(TokioIo::new(tcp)))
            .await
            .unwrap();
        Connection::new(MaybeHttpsStream::Https(TokioIo::new(tls)))
    }

    async fn exchange(connection: Connection, body: &[u8]) -> (Vec<u8>, Option<Connection>) {
        use futures::StreamExt;
        let headers = HeaderMap::new();
        let head = RequestHead { method: &Method::POST, target: "/v1/x", host: None, headers: &headers };
        let Ok(mut answer) = connection.send(&head, body).await else { panic!("the request failed") };
        let mut read = Vec::new();
        while let Some(chunk) = answer.body.next().await {
            read.extend_from_slice(&chunk.unwrap());
        }
        (read, answer.body.reusable())
    }

    #[tokio::test]
    async fn over_tls_a_connection_is_reused_and_its_close_is_seen_on_the_socket() {
        let (port, done) = tls_upstream(2);
        let connection = tls_connection(port).await;
        let (read, connection) = exchange(connection, b"first").await;
        assert_eq!(read, b"first");
        let mut connection = connection.expect("kept alive");
        assert!(!connection.is_closed(), "an idle TLS connection is open");
        let (read, connection) = exchange(connection, b"second").await;
        assert_eq!(read, b"second");
        let mut connection = connection.expect("kept alive");
        // The close_notify and the close arrive while this runtime is not looking (this
        // thread blocks).
        done.recv().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(connection.is_closed(), "the upstream ended the session");
    }
}
