//! Builds the shared state from a validated [`Config`], binds the listener, and shuts down
//! gracefully: stop accepting, let in-flight requests finish within the grace period, then cut
//! what remains.

use crate::proxy::executions::ExecutionKey;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::approval::{Approvals, Notifier};
use crate::audit::Judge;
use crate::audit::{AuditError, AuditKeys, AuditLog, AuditStore, spawn_feeder};
use crate::budget::{Ledger, RateLimits};
use crate::config::Config;
use crate::pii::Redactor;
use crate::pipeline::Pipeline;
use crate::policy::PolicyHandle;
use crate::proxy::buffers::{BufferLimits, Buffers};
use crate::proxy::guard::AddressGuard;
use crate::proxy::identity::Agents;
use crate::proxy::resolve::Resolver;
use crate::proxy::tls::{CaError, CertificateAuthority, LeafCache, RootsError};
use crate::proxy::transparent::TransparentAgents;
use crate::proxy::upstream::Upstream;
use crate::proxy::{GuardedConnector, Lifecycle, ProxyServer};
use crate::reload::{build_geo, watch_geo, watch_policies};
use crate::telemetry::Telemetry;

mod housekeeping;
use housekeeping::{checkpoint, checkpoints, housekeeping};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The CA could not be created or loaded.
    #[error("certificate authority: {0}")]
    Ca(#[from] CaError),
    /// The upstream trust store could not be built.
    #[error(transparent)]
    Roots(#[from] RootsError),
    /// The audit trail could not be opened.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The audit keys could not be read or made.
    #[error(transparent)]
    AuditKey(#[from] crate::audit::KeyError),
    /// The audit index could not be opened.
    #[error(transparent)]
    AuditStore(#[from] crate::audit::StoreError),
    /// The store (budget ledger) could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The admin listener could not start.
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    /// The webhook client could not be built.
    #[error(transparent)]
    Notify(#[from] crate::approval::NotifyError),
    /// The geo database could not be opened.
    #[error(transparent)]
    Geo(#[from] crate::geo::MmdbError),
    /// The key execution ids are signed with could not be had.
    #[error(transparent)]
    ExecutionKey(#[from] crate::proxy::executions::KeyError),
    /// The PII detectors could not be built.
    #[error(transparent)]
    Pii(#[from] crate::pii::ScannerError),
    /// The OpenTelemetry exporters could not be set up from the `OTEL_*` variables.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    /// The listening address is unavailable.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
}

/// How shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every in-flight request finished within the grace period.
    Clean,
    /// The grace period ran out; remaining connections were cut.
    Cut,
}

/// A running proxy.
pub struct Gatehouse {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    gateway_addr: Option<SocketAddr>,
    ca_cert: PathBuf,
    lifecycle: Lifecycle,
    listener: JoinHandle<()>,
    grace: Duration,
    /// The audit trail and the store its checkpoints go to (the last one at shutdown).
    audit: (Arc<AuditLog>, Arc<crate::store::Store>),
    /// The ledger, whose settlements are written and leases given back at shutdown.
    ledger: Arc<Ledger>,
    /// The OpenTelemetry exporters, flushed at shutdown.
    telemetry: Telemetry,
}

impl Gatehouse {
    /// Creates the CA if needed, binds the listener and starts serving.
    pub async fn start(config: Config) -> Result<Gatehouse, StartError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (ca, created) = CertificateAuthority::load_or_create(&config.ca.dir)?;
        let ca_cert = CertificateAuthority::cert_path(&config.ca.dir);
        if created {
            tracing::info!(path = %ca_cert.display(), "created a new local CA; agents must trust this certificate");
        }
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;

        let mut guard = AddressGuard::new(config.network.allow_cidrs.clone());
        guard.add_own_listener(addr);
        // The admin API is bound first, so the guard refuses it as a destination too.
        let admin_listener = match &config.admin {
            Some(admin) => {
                let (listener, bound) = crate::admin::bind(admin.listen).await?;
                guard.add_own_listener(bound);
                Some((listener, bound))
            }
            None => None,
        };
        // The gateway too: no route may lead back into Gatehouse.
        let gateway_listener = match &config.gateway {
            Some(gateway) => {
                let bind = |source| StartError::Bind {
                    addr: gateway.listen,
                    source,
                };
                let listener = TcpListener::bind(gateway.listen).await.map_err(bind)?;
                let bound = listener.local_addr().map_err(bind)?;
                guard.add_own_listener(bound);
                Some((listener, bound))
            }
            None => None,
        };
        let transparent = bind_transparent(&config, &mut guard).await?;
        let resolver = Arc::new(Resolver::new(
            guard,
            config.network.dns_cache_ttl,
            config.upstream.connect_timeout,
        ));
        let connector = GuardedConnector::new(resolver.clone(), config.upstream.connect_timeout);
        let lifecycle = Lifecycle::default();
        let upstream = Upstream::new(&config.upstream, connector.clone(), lifecycle.clone())?;
        let keys = AuditKeys::load_or_create(&config.ca.dir)?;
        let audit = Arc::new(AuditLog::open(&config.audit_file, keys)?);
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let (geo, geo_file) = build_geo(&config.geo)?;
        let geo = Arc::new(geo);
        if !geo.has_database() {
            tracing::warn!(
                "no geo.database: every destination outside geo.networks is `unknown`, which \
                 rules on destination.country, .eu, .eea and .adequate treat as outside"
            );
        }
        let tasks = lifecycle.tasks.clone();
        let ledger = Arc::new(Ledger::open(&config.budget, config.prices.clone(), tasks).await?);
        let policies = Arc::new(PolicyHandle::new(config.policies.clone()));
        let notifier = Notifier::new(
            config.approvals.webhooks.clone(),
            config.approvals.dashboard_url.clone(),
            &config.upstream.extra_ca_files,
        )?;
        let store = ledger.store().clone();
        // The file must be the trail its checkpoints name, whole, before anything is added.
        let newest = store.newest_checkpoint(&audit.file_name()).await?;
        let trail = newest
            .as_ref()
            .map(|n| n.trail.clone())
            .or_else(|| audit.trail());
        let of_trail = match &trail {
            Some(trail) => store.checkpoints(trail).await?,
            None => Vec::new(),
        };
        audit.continues(newest.as_ref(), &of_trail)?;
        if !config.budget.budgets.is_empty() {
            // Before serving: what earlier runs answered but never wrote is charged from the
            // file, then their leases are released.
            let (offset, trail) = audit.begin_run(ledger.leases().run())?;
            let reconciled = ledger.recover(audit.path(), &trail, offset).await?;
            if reconciled.runs > 0 {
                tracing::info!(
                    runs = reconciled.runs,
                    calls = reconciled.calls,
                    charged = reconciled.charged,
                    "ledger reconciled from the audit file; earlier leases released"
                );
            }
        }
        // The index catches up with a file known whole.
        let mut index = AuditStore::open(&config.audit_store)?;
        let indexed = index.catch_up(&config.audit_file)?;
        if indexed > 0 {
            tracing::info!(records = indexed, store = %config.audit_store.display(), "audit index caught up with the file");
        }
        audit.index_into(spawn_feeder(index)?);
        let redactor = Arc::new(Redactor::new(&config.pii)?);
        // Read from the standard OTEL_* variables; off (and free) when they name no collector.
        let telemetry = Telemetry::from_env(
            (metrics.clone(), redactor.clone()),
            |extra_roots| crate::proxy::tls::client_config(extra_roots).map_err(|e| e.to_string()),
            tokio::runtime::Handle::current(),
        )?;
        let pipeline = Arc::new(Pipeline {
            resolver,
            tunnel_hosts: config.tunnel_hosts.clone(),
            max_request_body_bytes: config.limits.max_request_body_bytes,
            body_timeout: config.limits.client_body_timeout,
            buffers: Buffers::new(BufferLimits {
                total: config.limits.max_buffered_bytes,
                per_agent: config.limits.max_buffered_bytes_per_agent,
            }),
            inspect: config.inspect.clone(),
            redactor: redactor.clone(),
            geo: geo.clone(),
            judge: Judge::new(policies.clone(), audit.clone(), metrics.clone()),
            broker: config.credentials.clone(),
            rate_limits: RateLimits::new(&config.budget.rate_limits),
            ledger: ledger.clone(),
            approvals: Approvals::new(config.approvals.clone(), store, notifier, metrics.clone()),
            upstream,
            metrics: metrics.clone(),
            telemetry: telemetry.clone(),
        });
        if config.identity.allow_anonymous && !config.identity.agents.is_empty() {
            tracing::warn!(
                "identity.allow_anonymous with declared agents: an agent that drops its token is \
                 `anonymous`, outside the budgets and credentials of its agent and team"
            );
        }
        if config.pii.hash_key.is_none() {
            tracing::warn!(
                "no pii.hash_key_env or pii.hash_key_file: `hash` redactions use a key of this \
                 process only, so tokens change on restart"
            );
        }
        tracing::info!(
            policies = %config.policies.source,
            version = %config.policies.version,
            rules = config.policies.set.len(),
            "policies loaded"
        );
        let leaves = LeafCache::new(
            Arc::new(ca),
            config.ca.leaf_cache_size,
            config.ca.leaf_cache_ttl,
            config.ca.leaf_validity,
        )?;
        let leaves = Arc::new(leaves);
        let server = ProxyServer::new(
            pipeline.clone(),
            Agents::new(
                &config.identity,
                ExecutionKey::load_or_create(&config.ca.dir)?,
            ),
            leaves.clone(),
            connector,
            config.limits.clone(),
            lifecycle.clone(),
        );
        let gateway_addr = match (&config.gateway, gateway_listener) {
            (Some(gateway), Some((listener, bound))) => {
                let tls = gateway
                    .tls_name
                    .as_ref()
                    .map(|name| crate::gateway::TlsName {
                        leaves: leaves.clone(),
                        name: name.clone(),
                    });
                let gateway_server = crate::gateway::GatewayServer::new(
                    pipeline.clone(),
                    gateway.clone(),
                    config.credentials.clone(),
                    tls,
                    (config.limits.clone(), lifecycle.clone()),
                );
                lifecycle
                    .tasks
                    .spawn(gateway_server.serve(listener, server.slots()));
                tracing::info!(addr = %bound, tls = gateway.tls_name.is_some(), "base-URL gateway listening");
                Some(bound)
            }
            _ => None,
        };
        for (listener, agents) in transparent {
            lifecycle
                .tasks
                .spawn(server.clone().serve_transparent(listener, agents));
        }
        let listener = tokio::spawn(server.serve(listener));
        let folder = std::path::PathBuf::from(&config.policies.source);
        let inputs = crate::reload::PolicyInputs {
            extras: config.policy_extras.clone(),
            custom_kinds: config.pii.custom_kinds(),
        };
        let reloadable = folder.is_dir().then(|| (folder.clone(), inputs.clone()));
        if folder.is_dir() {
            lifecycle.tasks.spawn(watch_policies(
                folder,
                config.policy_reload_interval,
                policies.clone(),
                inputs,
                lifecycle.shutdown.clone(),
            ));
        }
        let admin_addr = match (&config.admin, admin_listener) {
            (Some(admin), Some((listener, bound))) => {
                let token = match &admin.token {
                    Some(token) => token.clone(),
                    None => crate::admin::generated_token(&config.ca.dir)?,
                };
                let state = Arc::new(crate::admin::AdminState {
                    config: Arc::new(config.clone()),
                    ledger: ledger.clone(),
                    metrics: metrics.clone(),
                    policies: policies.clone(),
                    reloadable,
                    token,
                    audit: audit.clone(),
                });
                let limits = crate::admin::AdminLimits {
                    max_connections: admin.max_connections,
                    header_timeout: config.limits.client_header_timeout,
                };
                crate::admin::serve(listener, state, limits, &lifecycle);
                Some(bound)
            }
            _ => None,
        };
        lifecycle
            .tasks
            .spawn(housekeeping(pipeline, lifecycle.shutdown.clone()));
        let checkpoints_to = (audit.clone(), ledger.store().clone());
        lifecycle.tasks.spawn(checkpoints(
            checkpoints_to.clone(),
            config.audit_checkpoints,
            lifecycle.shutdown.clone(),
        ));
        if let Some(file) = geo_file {
            lifecycle.tasks.spawn(watch_geo(
                file,
                geo,
                config.geo.reload_interval,
                lifecycle.shutdown.clone(),
            ));
        }
        tracing::info!(%addr, config = %config.source, ca = %ca_cert.display(), "gatehouse listening");
        Ok(Gatehouse {
            addr,
            admin_addr,
            gateway_addr,
            ca_cert,
            lifecycle,
            listener,
            grace: config.limits.shutdown_grace,
            audit: checkpoints_to,
            ledger,
            telemetry,
        })
    }

    /// The address the proxy listens on (useful when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin API's address, when it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The base-URL gateway's address, when it runs.
    pub fn gateway_addr(&self) -> Option<SocketAddr> {
        self.gateway_addr
    }

    /// The CA certificate agents must trust.
    pub fn ca_cert_path(&self) -> &std::path::Path {
        &self.ca_cert
    }

    /// Stops accepting, drains in-flight requests within the grace period, then cuts the rest.
    pub async fn shutdown(self) -> Drained {
        self.lifecycle.shutdown.cancel();
        let _ = self.listener.await;
        self.lifecycle.tasks.close();
        let drained = tokio::time::timeout(self.grace, self.lifecycle.tasks.wait()).await;
        let drained = match drained {
            Ok(()) => {
                tracing::info!("shutdown complete; all requests drained");
                Drained::Clean
            }
            Err(_) => {
                tracing::warn!(grace = ?self.grace, "grace period over; cutting remaining connections");
                self.lifecycle.abort.cancel();
                self.lifecycle.tasks.wait().await;
                Drained::Cut
            }
        };
        if let Err(e) = self.ledger.close().await {
            tracing::error!(error = %e, "the ledger could not write its last settlements; the next start charges them from the audit file");
        }
        // Every record is written now: the last checkpoint covers them all.
        checkpoint(&self.audit, None).await;
        // Blocking (the exporters' threads send what is queued): off the runtime's workers.
        let telemetry = self.telemetry;
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        drained
    }
}

/// Binds the transparent listeners (when `transparent:` is set); the network guard refuses their
/// addresses as destinations, like the proxy's own.
async fn bind_transparent(
    config: &Config,
    guard: &mut AddressGuard,
) -> Result<Vec<(TcpListener, Arc<TransparentAgents>)>, StartError> {
    let Some(transparent) = &config.transparent else {
        return Ok(Vec::new());
    };
    let agents = Arc::new(transparent.agents.clone());
    let mut bound = Vec::new();
    for addr in &transparent.listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: *addr,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| StartError::Bind {
            addr: *addr,
            source,
        })?;
        guard.add_own_listener(local);
        tracing::info!(addr = %local, "transparent listener: serving redirected connections");
        bound.push((listener, agents.clone()));
    }
    Ok(bound)
}
