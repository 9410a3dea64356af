//! The agent-facing TLS handshake inside an intercepted tunnel: read the ClientHello, check its
//! SNI against the CONNECT target, present the matching leaf, negotiate h2 or HTTP/1.1.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::ca::CaError;
use super::leaf::LeafCache;
use crate::proxy::target::{Host, Target};

/// A finished handshake.
pub struct Accepted<IO> {
    /// The decrypted stream.
    pub stream: TlsStream<IO>,
    /// Whether the agent and proxy agreed on HTTP/2.
    pub h2: bool,
    /// Set when the SNI names another host than the CONNECT target (domain fronting): every
    /// request on this stream is refused with this reason.
    pub mismatch: Option<String>,
}

/// Why the handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The agent's bytes were not a TLS handshake we could complete.
    #[error("TLS handshake with the agent failed: {0}")]
    Handshake(#[from] std::io::Error),
    /// The SNI is not a host name.
    #[error("TLS SNI `{0}` is not a valid host name")]
    BadSni(String),
    /// A leaf could not be minted.
    #[error(transparent)]
    Leaf(#[from] CaError),
}

/// Completes the agent's handshake for a tunnel to `target`.
pub async fn accept<IO>(
    io: IO,
    target: &Target,
    leaves: &LeafCache,
) -> Result<Accepted<IO>, AcceptError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io).await?;
    let sni = start.client_hello().server_name().map(str::to_string);
    let (cert_host, mismatch) = match sni {
        None => (target.host.clone(), None),
        Some(sni) => {
            let host = Host::parse(&sni).map_err(|_| AcceptError::BadSni(sni.clone()))?;
            if host == target.host {
                (host, None)
            } else {
                let reason = format!(
                    "TLS SNI `{sni}` does not match the CONNECT target `{target}` (domain fronting is refused)"
                );
                (host, Some(reason))
            }
        }
    };
    let config = leaves.server_config(&cert_host)?;
    let stream = start.into_stream(config).await?;
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    Ok(Accepted {
        stream,
        h2,
        mismatch,
    })
}
