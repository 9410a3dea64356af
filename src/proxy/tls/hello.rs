//! Reading a TLS ClientHello without terminating TLS, for tunnels that are relayed untouched: the
//! SNI must still name the CONNECT target, or a pinned host on a shared CDN would front for any
//! other site behind it.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

const MAX_HELLO_BYTES: usize = 64 * 1024;

/// Why a tunnel's first bytes were not an acceptable ClientHello.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// The agent closed or the read failed.
    #[error("reading the ClientHello failed: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a TLS ClientHello.
    #[error("the tunnel's first bytes are not a TLS ClientHello: {0}")]
    NotTls(String),
    /// The ClientHello is implausibly large.
    #[error("ClientHello larger than {MAX_HELLO_BYTES} bytes")]
    TooLarge,
}

/// Reads from `io` until a whole ClientHello has arrived. Returns every byte read (to be replayed
/// to the upstream) and the SNI, if the client sent one.
pub async fn read_client_hello<IO>(io: &mut IO) -> Result<(Bytes, Option<String>), HelloError>
where
    IO: AsyncRead + Unpin,
{
    let mut acceptor = rustls::server::Acceptor::default();
    let mut seen = BytesMut::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(HelloError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        seen.extend_from_slice(&chunk[..n]);
        if seen.len() > MAX_HELLO_BYTES {
            return Err(HelloError::TooLarge);
        }
        let mut fresh = &chunk[..n];
        while !fresh.is_empty() {
            acceptor.read_tls(&mut fresh)?;
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let sni = accepted.client_hello().server_name().map(str::to_string);
                return Ok((seen.freeze(), sni));
            }
            Ok(None) => {}
            Err((err, _alert)) => return Err(HelloError::NotTls(err.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_bytes_are_not_a_client_hello() {
        let mut io: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let err = read_client_hello(&mut io).await.unwrap_err();
        assert!(matches!(err, HelloError::NotTls(_)), "{err}");
    }
}
