//! TLS on both sides of the proxy: the local CA and the leaf certificates it mints for the
//! agent-facing side, and the verified client configuration for the upstream side.

mod acceptor;
mod ca;
mod hello;
mod leaf;
mod roots;

pub use acceptor::{AcceptError, Accepted, accept};
pub use ca::{CA_CERT_FILE, CA_KEY_FILE, CaError, CertificateAuthority};
pub use hello::{HelloError, read_client_hello};
pub use leaf::LeafCache;
pub use roots::{RootsError, client_config, native_roots_pem, pem_encode_certificate};

/// The crypto provider every TLS config in Gatehouse uses.
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
