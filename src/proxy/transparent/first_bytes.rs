//! The first bytes of a redirected connection, read before anything is judged: the agent never
//! said where it goes, so the name comes from what it sends — the SNI of its TLS ClientHello, or
//! the `Host` header of its first HTTP/1.x request. Every byte read is kept, to be replayed to
//! the interception that follows.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::super::rewind::Rewind;
use super::super::tls::{HelloError, read_client_hello};

const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What the first bytes named.
#[derive(Debug)]
pub struct Named {
    /// Every byte read so far.
    pub bytes: Bytes,
    /// The host the agent named (SNI, or `Host` without its port).
    pub host: String,
    /// Whether the agent speaks TLS.
    pub tls: bool,
}

/// Why the first bytes name no destination the proxy can judge.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// The agent closed or the read failed.
    #[error("reading the first bytes failed: {0}")]
    Io(#[from] std::io::Error),
    /// A TLS ClientHello that could not be read.
    #[error(transparent)]
    Hello(#[from] HelloError),
    /// TLS without SNI: nothing names the host the agent means.
    #[error(
        "TLS ClientHello without SNI: a redirected connection is judged by the name it asks for"
    )]
    NoSni,
    /// Not an HTTP/1.x request head (HTTP/2 without TLS included).
    #[error("the first bytes are neither a TLS ClientHello nor an HTTP/1.x request: {0}")]
    NotHttp(String),
    /// The request head is larger than the limit.
    #[error("request head larger than limits.max_header_bytes")]
    TooLarge,
    /// No `Host` header, or more than one.
    #[error("a redirected HTTP request must carry exactly one Host header")]
    Host,
    /// The agent closed before its first bytes named a host.
    #[error("the agent closed after {0} bytes, before naming a host")]
    Short(usize),
}

/// Reads until the first bytes name a host: a whole ClientHello (TLS), or a whole request head
/// of at most `max_head` bytes (plain HTTP).
pub async fn read_name<IO>(io: &mut IO, max_head: usize) -> Result<Named, NameError>
where
    IO: AsyncRead + Unpin,
{
    let mut first = BytesMut::with_capacity(2048);
    if io.read_buf(&mut first).await? == 0 {
        return Err(NameError::Short(0));
    }
    if first[0] == TLS_HANDSHAKE_RECORD {
        let mut replayed = Rewind::new(first.freeze(), &mut *io);
        let (bytes, sni) = read_client_hello(&mut replayed).await?;
        let host = sni.ok_or(NameError::NoSni)?;
        return Ok(Named {
            bytes,
            host,
            tls: true,
        });
    }
    loop {
        if let Some(host) = host_of_head(&first)? {
            return Ok(Named {
                bytes: first.freeze(),
                host,
                tls: false,
            });
        }
        if first.len() > max_head {
            return Err(NameError::TooLarge);
        }
        if io.read_buf(&mut first).await? == 0 {
            return Err(NameError::Short(first.len()));
        }
    }
}

/// The host of a complete HTTP/1.x request head (`None` while it is incomplete).
fn host_of_head(bytes: &[u8]) -> Result<Option<String>, NameError> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(_)) => {}
        Err(e) => return Err(NameError::NotHttp(e.to_string())),
    }
    let mut hosts = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"));
    let (Some(host), None) = (hosts.next(), hosts.next()) else {
        return Err(NameError::Host);
    };
    let value = std::str::from_utf8(host.value).map_err(|_| NameError::Host)?;
    let authority: http::uri::Authority = value.trim().parse().map_err(|_| NameError::Host)?;
    Ok(Some(authority.host().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn host_comes_from_the_head_and_every_byte_is_kept() {
        let head = b"GET /x HTTP/1.1\r\nHost: Example.COM:80\r\nAccept: */*\r\n\r\nbody";
        let mut io: &[u8] = head;
        let named = read_name(&mut io, 8192).await.unwrap();
        assert_eq!(named.host, "Example.COM");
        assert!(!named.tls);
        assert_eq!(&named.bytes[..], &head[..]);
    }

    #[tokio::test]
    async fn no_host_two_hosts_h2c_and_oversized_heads_are_refused() {
        let cases: [(&[u8], &str); 4] = [
            (b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "Host"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", "Host"),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "neither"),
            (b"\x00\x01binary", "neither"),
        ];
        for (bytes, expected) in cases {
            let mut io: &[u8] = bytes;
            let err = read_name(&mut io, 8192).await.unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(100));
        let mut io: &[u8] = long.as_bytes();
        let err = read_name(&mut io, 50).await.unwrap_err();
        assert!(
            matches!(err, NameError::TooLarge | NameError::Short(_)),
            "{err}"
        );
    }
}
