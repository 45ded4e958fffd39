//! A local relay in front of a transaction pooler (PgBouncer in `pool_mode = transaction`,
//! before 1.21): Sluice's pools connect to it, and it forwards every connection to the pooler,
//! changing two things in the Postgres wire protocol so that sqlx's way of running a statement
//! survives a pooler that hands each transaction to any server connection.
//!
//! sqlx runs a statement with parameters in two exchanges: Parse (and Describe) closed by a
//! Sync, then Bind, Execute closed by another Sync. After the first Sync the server is idle, so
//! the pooler may run the second exchange on another server connection, where the statement
//! does not exist (or another client's of the same name does). The relay closes the first
//! exchange with a Flush instead of a Sync, so the server stays in the same implicit
//! transaction and the pooler keeps the server connection for this client, and answers sqlx's
//! Sync itself (ReadyForQuery) once the server's answers to Parse and Describe are through.
//! The second exchange then runs on the same server connection and ends with the real Sync,
//! which commits, before sqlx sees the answer. And every statement is renamed to the unnamed
//! statement, so nothing is left behind on a server connection for another client to collide
//! with; a Bind of a statement not parsed just before is refused (the unnamed statement would
//! be someone else's). sqlx must not cache statements (`statement_cache_capacity(0)`), so it
//! parses every statement right before binding it.
//!
//! Nothing else changes: authentication, simple queries, COPY and the client's own
//! transactions pass through. The relay speaks plain TCP to the pooler.

use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The relay: a listener on a loopback port; dropping it stops accepting connections.
pub struct Pinning {
    port: u16,
    task: JoinHandle<()>,
}

impl Drop for Pinning {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Pinning {
    /// Starts relaying connections made to a free loopback port to `host:port` (the pooler).
    pub async fn start(host: String, port: u16) -> io::Result<Pinning> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let local = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            loop {
                let client = match listener.accept().await {
                    Ok((c, _)) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "the pooler relay cannot accept a connection");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let host = host.clone();
                tokio::spawn(async move {
                    if let Err(e) = relay(client, &host, port).await {
                        tracing::debug!(error = %e, "a pooler relay connection ended");
                    }
                });
            }
        });
        Ok(Pinning { port: local, task })
    }

    /// The loopback port to connect to instead of the pooler.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A protocol message: its type byte and its body (without the length).
struct Message {
    kind: u8,
    body: Vec<u8>,
}

/// The largest message the relay accepts from either side (Postgres' own limit is 1 GiB).
const MAX_MESSAGE: usize = 1 << 30;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Message> {
    let kind = r.read_u8().await?;
    let len = r.read_u32().await? as usize;
    if !(4..=MAX_MESSAGE).contains(&len) {
        return Err(bad("message length out of range"));
    }
    let mut body = vec![0; len - 4];
    r.read_exact(&mut body).await?;
    Ok(Message { kind, body })
}

async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, m: &Message) -> io::Result<()> {
    w.write_u8(m.kind).await?;
    w.write_u32((m.body.len() + 4) as u32).await?;
    w.write_all(&m.body).await
}

/// The NUL-terminated string at the start of `b`, and the rest after it.
fn cstr(b: &[u8]) -> io::Result<(&[u8], &[u8])> {
    let end = b
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| bad("unterminated string"))?;
    Ok((&b[..end], &b[end + 1..]))
}

/// Startup code of an SSL request and of a cancel request.
const SSL_REQUEST: u32 = 80_877_103;
const GSS_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

async fn relay(client: TcpStream, host: &str, port: u16) -> io::Result<()> {
    client.set_nodelay(true)?;
    let server = TcpStream::connect((host, port)).await?;
    server.set_nodelay(true)?;
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let (mut cr, mut cw) = (BufReader::new(cr), BufWriter::new(cw));
    let (mut sr, mut sw) = (BufReader::new(sr), BufWriter::new(sw));

    // Start-up: a length-prefixed packet without a type byte. SSL and GSS encryption are
    // declined (the pools connect here without TLS); a cancel request is passed on as is.
    loop {
        let len = cr.read_u32().await? as usize;
        if !(8..=10_000).contains(&len) {
            return Err(bad("start-up packet length out of range"));
        }
        let mut body = vec![0; len - 4];
        cr.read_exact(&mut body).await?;
        let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        if code == SSL_REQUEST || code == GSS_REQUEST {
            cw.write_u8(b'N').await?;
            cw.flush().await?;
            continue;
        }
        sw.write_u32(len as u32).await?;
        sw.write_all(&body).await?;
        sw.flush().await?;
        if code == CANCEL_REQUEST {
            return Ok(());
        }
        break;
    }
    // Authentication: the server's messages go through until the first ReadyForQuery; each
    // request for a password or a SASL step is answered by one message of the client.
    loop {
        let m = read_message(&mut sr).await?;
        write_message(&mut cw, &m).await?;
        match m.kind {
            b'Z' => {
                cw.flush().await?;
                break;
            }
            b'E' => {
                cw.flush().await?;
                return Ok(());
            }
            b'R' => {
                let code = m
                    .body
                    .get(..4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                // 3 cleartext, 5 MD5, 10 SASL, 11 SASL continue: the client answers.
                if matches!(code, Some(3 | 5 | 10 | 11)) {
                    cw.flush().await?;
                    let answer = read_message(&mut cr).await?;
                    write_message(&mut sw, &answer).await?;
                    sw.flush().await?;
                }
            }
            _ => {}
        }
    }

    // The transaction status of the last ReadyForQuery, and the statement parsed by the
    // client's last Parse exchange (held open by a Flush), which only the next Bind may use.
    let mut status = b'I';
    let mut parsed: Option<Vec<u8>> = None;
    loop {
        let mut batch = Vec::new();
        loop {
            let m = match read_message(&mut cr).await {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            };
            let end = matches!(m.kind, b'S' | b'Q' | b'X');
            batch.push(m);
            if end {
                break;
            }
        }
        let last = batch.last().map_or(b'S', |m| m.kind);
        if last == b'X' {
            for m in &batch {
                write_message(&mut sw, m).await?;
            }
            sw.flush().await?;
            return Ok(());
        }
        if last == b'Q' {
            parsed = None;
            for m in &batch {
                write_message(&mut sw, m).await?;
            }
            sw.flush().await?;
            status = answer(&mut sr, &mut cw, &mut cr, &mut sw).await?;
            continue;
        }
        // An extended-protocol batch closed by Sync.
        let mut parses = None;
        let mut describes = false;
        let mut executes = false;
        for m in &mut batch {
            match m.kind {
                b'P' => {
                    let (name, rest) = cstr(&m.body)?;
                    parses = Some(name.to_vec());
                    m.body = [&[0u8][..], rest].concat();
                }
                b'B' => {
                    let (portal, rest) = cstr(&m.body)?;
                    let (name, rest) = cstr(rest)?;
                    let known = parses.as_deref().or(parsed.as_deref());
                    if !name.is_empty() && known != Some(name) {
                        return Err(bad(
                            "a Bind of a statement not parsed just before (sqlx must not cache statements behind a transaction pooler)",
                        ));
                    }
                    m.body = [portal, &[0u8], &[0u8], rest].concat();
                    executes = true;
                }
                b'D' | b'C' => {
                    let (what, name) = m.body.split_first().ok_or_else(|| bad("empty message"))?;
                    cstr(name)?;
                    if *what == b'S' {
                        m.body = vec![b'S', 0];
                        describes |= m.kind == b'D';
                    }
                }
                b'E' => executes = true,
                _ => {}
            }
        }
        if let (Some(name), false) = (&parses, executes) {
            // Parse (and Describe) only: hold the server with a Flush, answer the Sync here.
            let sync = batch.pop();
            for m in &batch {
                write_message(&mut sw, m).await?;
            }
            write_message(
                &mut sw,
                &Message {
                    kind: b'H',
                    body: Vec::new(),
                },
            )
            .await?;
            sw.flush().await?;
            let done = if describes {
                [b'T', b'n']
            } else {
                [b'1', b'1']
            };
            loop {
                let m = read_message(&mut sr).await?;
                write_message(&mut cw, &m).await?;
                if m.kind == b'E' {
                    // The server now skips everything up to a Sync: send the client's.
                    if let Some(sync) = &sync {
                        write_message(&mut sw, sync).await?;
                    }
                    sw.flush().await?;
                    status = answer(&mut sr, &mut cw, &mut cr, &mut sw).await?;
                    parsed = None;
                    break;
                }
                if done.contains(&m.kind) {
                    write_message(
                        &mut cw,
                        &Message {
                            kind: b'Z',
                            body: vec![status],
                        },
                    )
                    .await?;
                    cw.flush().await?;
                    parsed = Some(name.clone());
                    break;
                }
            }
            continue;
        }
        parsed = None;
        for m in &batch {
            write_message(&mut sw, m).await?;
        }
        sw.flush().await?;
        status = answer(&mut sr, &mut cw, &mut cr, &mut sw).await?;
    }
}

/// Passes the server's answer to the client up to and including its ReadyForQuery, whose
/// transaction status it returns. A COPY FROM STDIN in between takes the client's data to the
/// server until the client ends it.
async fn answer<SR, CW, CR, SW>(
    sr: &mut SR,
    cw: &mut CW,
    cr: &mut CR,
    sw: &mut SW,
) -> io::Result<u8>
where
    SR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    CR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
{
    loop {
        let m = read_message(sr).await?;
        write_message(cw, &m).await?;
        match m.kind {
            b'Z' => {
                cw.flush().await?;
                return Ok(m.body.first().copied().unwrap_or(b'I'));
            }
            b'G' => {
                cw.flush().await?;
                loop {
                    let c = read_message(cr).await?;
                    write_message(sw, &c).await?;
                    if matches!(c.kind, b'c' | b'f') {
                        sw.flush().await?;
                        break;
                    }
                }
            }
            _ => {}
        }
    }
}
