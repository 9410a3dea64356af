//! Leaf certificates for intercepted hosts: minted from the CA with a fresh key of their own,
//! cached (bounded, with a TTL) as ready-to-use rustls server configs.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use super::ca::{CaError, CertificateAuthority, random_serial};
use crate::proxy::target::Host;

/// ALPN protocols offered to agents, in order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

struct Entry {
    minted: Instant,
    config: Arc<ServerConfig>,
}

/// Mints and caches one server config per host.
pub struct LeafCache {
    ca: Arc<CertificateAuthority>,
    ttl: Duration,
    validity: Duration,
    entries: Mutex<LruCache<Host, Entry>>,
    sessions: Arc<dyn StoresServerSessions>,
    tickets: Arc<dyn ProducesTickets>,
}

impl LeafCache {
    /// A cache of at most `capacity` leaves, each reused for `ttl` and valid for `validity`.
    pub fn new(
        ca: Arc<CertificateAuthority>,
        capacity: usize,
        ttl: Duration,
        validity: Duration,
    ) -> Result<Self, CaError> {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        let tickets = rustls::crypto::ring::Ticketer::new().map_err(|e| CaError::Invalid {
            path: "<ticketer>".into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            ca,
            ttl,
            validity,
            entries: Mutex::new(LruCache::new(capacity)),
            sessions: ServerSessionMemoryCache::new(4096),
            tickets,
        })
    }

    /// The server config presenting a leaf for `host`, minted on first use or after the TTL.
    pub fn server_config(&self, host: &Host) -> Result<Arc<ServerConfig>, CaError> {
        if let Ok(mut entries) = self.entries.lock()
            && let Some(entry) = entries.get(host)
            && entry.minted.elapsed() < self.ttl
        {
            return Ok(entry.config.clone());
        }
        let config = Arc::new(self.mint(host)?);
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(
                host.clone(),
                Entry {
                    minted: Instant::now(),
                    config: config.clone(),
                },
            );
        }
        Ok(config)
    }

    /// How many leaves are cached now.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// Whether no leaf is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn mint(&self, host: &Host) -> Result<ServerConfig, CaError> {
        let (cert, key) = self.mint_leaf(host)?;
        let chain = vec![cert.der().clone(), self.ca.cert_der().clone()];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let invalid = |e: rustls::Error| CaError::Invalid {
            path: format!("<leaf for {host}>").into(),
            reason: e.to_string(),
        };
        let mut config = ServerConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(invalid)?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(invalid)?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        config.session_storage = self.sessions.clone();
        config.ticketer = self.tickets.clone();
        Ok(config)
    }

    /// A leaf for `host` with a fresh key of its own: DNS SAN for names, IP SAN for IP literals.
    fn mint_leaf(&self, host: &Host) -> Result<(rcgen::Certificate, KeyPair), CaError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![host.as_string()])?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host.as_string());
        name.push(DnType::OrganizationName, "Gatehouse interception");
        params.distinguished_name = name;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::from_secs(3600);
        params.not_after = now + self.validity;
        let cert = params.signed_by(&key, self.ca.issuer())?;
        Ok((cert, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(capacity: usize, ttl: Duration) -> (tempfile::TempDir, LeafCache) {
        let dir = tempfile::tempdir().unwrap();
        let ca = Arc::new(CertificateAuthority::create(dir.path()).unwrap());
        let cache = LeafCache::new(ca, capacity, ttl, Duration::from_secs(86400)).unwrap();
        (dir, cache)
    }

    #[test]
    fn leaves_are_cached_per_host_and_bounded() {
        let (_dir, cache) = cache(2, Duration::from_secs(3600));
        let a = Host::Name("a.example".into());
        let first = cache.server_config(&a).unwrap();
        let again = cache.server_config(&a).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        cache
            .server_config(&Host::Name("b.example".into()))
            .unwrap();
        cache
            .server_config(&Host::Ip("192.0.2.7".parse().unwrap()))
            .unwrap();
        assert_eq!(cache.len(), 2, "capacity bounds the cache");
        let remint = cache.server_config(&a).unwrap();
        assert!(!Arc::ptr_eq(&first, &remint), "evicted leaf is minted anew");
    }

    #[test]
    fn leaves_verify_for_their_host_only_and_never_reuse_the_ca_key() {
        use rcgen::PublicKeyData;
        use rustls::client::danger::ServerCertVerifier;
        use rustls_pki_types::{ServerName, UnixTime};

        let (_dir, cache) = cache(10, Duration::from_secs(3600));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cache.ca.cert_der().clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            super::super::provider(),
        )
        .build()
        .unwrap();
        let ca_key = cache.ca.issuer().key().subject_public_key_info();
        for host in ["api.example.com", "192.0.2.7", "2001:db8::1"] {
            let (cert, key) = cache.mint_leaf(&Host::parse(host).unwrap()).unwrap();
            assert_ne!(
                key.subject_public_key_info(),
                ca_key,
                "{host}: a leaf has its own key"
            );
            let name = ServerName::try_from(host).unwrap();
            verifier
                .verify_server_cert(cert.der(), &[], &name, &[], UnixTime::now())
                .unwrap_or_else(|e| panic!("{host}: {e}"));
            let other = ServerName::try_from("other.example.com").unwrap();
            assert!(
                verifier
                    .verify_server_cert(cert.der(), &[], &other, &[], UnixTime::now())
                    .is_err()
            );
        }
    }

    #[test]
    fn expired_leaves_are_minted_again() {
        let (_dir, cache) = cache(10, Duration::from_millis(1));
        let a = Host::Name("a.example".into());
        let first = cache.server_config(&a).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let second = cache.server_config(&a).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
    }
}
