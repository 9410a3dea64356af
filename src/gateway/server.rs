//! The gateway's listener: accepts connections within the connection limit (TLS first when a
//! name is configured), speaks HTTP/1.1, checks the request target, the `Host` and the key, and
//! hands the request, now absolute-form to the route's upstream, to the pipeline.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{HOST, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use super::{GatewayConfig, GatewayError, Presented};
use crate::credentials::{Broker, Destination, KEY_QUERY, Sender};
use crate::error::{ProxyError, Shape};
use crate::inspect::provider_of_host;
use crate::proxy::body::ProxyBody;
use crate::proxy::conns::ConnectionSlot;
use crate::proxy::identity::{ANONYMOUS, Identity};
use crate::proxy::target::{Host, Target, canonical_path};
use crate::proxy::tls::LeafCache;
use crate::proxy::{ClientInfo, ConnectionPermit, Handler, Lifecycle, Limits, Refusal, drive};

/// TLS for the gateway: a leaf for `name` minted from Gatehouse's CA (which `gatehouse exec`
/// already makes agents trust), re-minted as the leaf cache ages it out.
pub struct TlsName {
    /// The CA's leaf cache.
    pub leaves: Arc<LeafCache>,
    /// The name agents reach the gateway by.
    pub name: Host,
}

/// The gateway listener and what its connections need.
pub struct GatewayServer<H> {
    handler: Arc<H>,
    config: GatewayConfig,
    broker: Arc<Broker>,
    tls: Option<TlsName>,
    limits: Limits,
    lifecycle: Lifecycle,
}

/// A request the gateway accepted: where it goes and its path there.
struct Routed {
    target: Target,
    uri: Uri,
}

impl<H: Handler> GatewayServer<H> {
    /// Assembles the gateway; nothing listens until [`GatewayServer::serve`].
    pub fn new(
        handler: Arc<H>,
        config: GatewayConfig,
        broker: Arc<Broker>,
        tls: Option<TlsName>,
        (limits, lifecycle): (Limits, Lifecycle),
    ) -> Arc<Self> {
        Arc::new(Self {
            handler,
            config,
            broker,
            tls,
            limits,
            lifecycle,
        })
    }

    /// Accepts connections until shutdown starts; they take from `slots`, the forward proxy's: one limit and one share per agent.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, slots: crate::proxy::Slots) {
        let (permits, per_agent) = slots;
        let shutdown = self.lifecycle.shutdown.clone();
        while let Some((stream, peer)) =
            crate::proxy::next_connection(&listener, &shutdown, "gateway").await
        {
            // Over the limit, a connection is closed at once: nothing of it is held.
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "gateway connection limit reached; closing");
                continue;
            };
            let slot = ConnectionPermit(Arc::new(ConnectionSlot::new(permit, per_agent.clone())));
            let this = self.clone();
            self.lifecycle
                .spawn(async move { this.serve_client(stream, peer, slot).await });
        }
    }

    async fn serve_client(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        permit: ConnectionPermit,
    ) {
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return self.clone().serve_http(stream, peer, permit).await;
        };
        let config = match tls.leaves.server_config(&tls.name) {
            Ok(config) => {
                let mut config = (*config).clone();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Arc::new(config)
            }
            Err(e) => {
                tracing::error!(error = %e, "the gateway's certificate could not be minted");
                return;
            }
        };
        let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
        match tokio::time::timeout(self.limits.client_header_timeout, accept).await {
            Ok(Ok(tls)) => self.clone().serve_http(tls, peer, permit).await,
            Ok(Err(e)) => tracing::info!(%peer, error = %e, "gateway TLS handshake failed"),
            Err(_) => tracing::info!(%peer, "gateway TLS handshake timed out"),
        }
    }

    async fn serve_http<IO>(self: Arc<Self>, io: IO, peer: SocketAddr, permit: ConnectionPermit)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let this = self.clone();
        let service = service_fn(move |req| {
            let this = this.clone();
            let permit = permit.clone();
            async move { Ok::<_, Infallible>(this.dispatch(peer, permit, req).await) }
        });
        let conn = self
            .limits
            .http1_server()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let Err(e) = drive(conn, &self.lifecycle.shutdown, |c| c.graceful_shutdown()).await else {
            return;
        };
        tracing::info!(%peer, error = %e, "gateway client connection ended with an error");
        // A head hyper refused (431 over the header limit, 400 unparseable) is a refusal too.
        let Some(error) = ProxyError::of_rejected_head(&e) else {
            return;
        };
        self.handler.refused(&Refusal {
            peer,
            identity: None,
            method: "",
            target: None,
            path: "",
            error: &error,
        });
    }

    async fn dispatch(
        self: Arc<Self>,
        peer: SocketAddr,
        permit: ConnectionPermit,
        mut req: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        // Every refusal here is in the audit trail (a 429 of the connection share too: it never
        // reaches the steps), shaped like the errors of the provider the route goes to.
        let refuse = |identity: Option<&Identity>, target: Option<&Target>, err: ProxyError| {
            let refusal = Refusal {
                peer,
                identity,
                method: method.as_str(),
                target,
                path: &path,
                error: &err,
            };
            let recorded = self.handler.refused(&refusal);
            tracing::warn!(%peer, status = err.status().as_u16(), reason = %err.reason, "gateway request refused");
            let provider = target.and_then(|t| provider_of_host(&t.host.as_string()));
            let err = err.recorded_decision(recorded);
            closing(err.to_response_shaped(&Shape::of_call(None, provider)))
        };
        if let Err(reason) = crate::proxy::headers::check_head(req.method(), req.headers()) {
            return refuse(None, None, ProxyError::bad_request(reason));
        }
        let routed = match self.route(&req) {
            Ok(routed) => routed,
            Err(e) => return refuse(None, None, e),
        };
        let presented = match self.config.keys.identify(req.headers(), req.uri().query()) {
            Ok(presented) => presented,
            Err(e) => return refuse(None, Some(&routed.target), e.into()),
        };
        let identity = match (&presented, self.config.allow_anonymous) {
            (Some(presented), _) => presented.identity.clone(),
            // A web page the operator's browser opened must not spend the anonymous agent's
            // budget: browsers name the page's origin, SDKs and agents do not.
            (None, true) if from_a_browser(req.headers()) => {
                return refuse(
                    None,
                    Some(&routed.target),
                    GatewayError::BrowserOrigin.into(),
                );
            }
            (None, true) => anonymous(),
            (None, false) => {
                return refuse(None, Some(&routed.target), GatewayError::MissingKey.into());
            }
        };
        if let Err(err) = permit.0.count(&identity.agent) {
            return refuse(Some(&identity), Some(&routed.target), err);
        }
        let uri = match presented {
            Some(presented) => self.swap_key(&mut req, &routed, &presented),
            None => Ok(routed.uri),
        };
        *req.uri_mut() = match uri {
            Ok(uri) => uri,
            Err(e) => return refuse(Some(&identity), Some(&routed.target), e),
        };
        req.extensions_mut().insert(permit);
        let client = Arc::new(ClientInfo {
            peer,
            identity,
            tunnel: None,
        });
        self.handler.request(client, req).await
    }

    /// The route's upstream and path for an origin-form request whose `Host` names the gateway.
    fn route<B>(&self, req: &Request<B>) -> Result<Routed, ProxyError> {
        let uri = req.uri();
        let origin_form = uri.scheme().is_none() && uri.authority().is_none();
        if req.method() == Method::CONNECT || !origin_form || !uri.path().starts_with('/') {
            return Err(GatewayError::NotOriginForm.into());
        }
        if !self.names_gateway(req.headers().get(HOST)) {
            return Err(GatewayError::ForeignHost.into());
        }
        canonical_path(uri.path()).map_err(GatewayError::Path)?;
        // Some servers read `\` as `/`: upstream, `\..\` could leave a route's base path.
        if uri.path().contains('\\') {
            return Err(GatewayError::Path("backslash").into());
        }
        let (upstream, path) = self.config.routes.resolve(uri.path())?;
        let full = match uri.query() {
            Some(query) => format!("https://{}{path}?{query}", upstream.authority),
            None => format!("https://{}{path}", upstream.authority),
        };
        let uri: Uri = full
            .parse()
            .map_err(|_| ProxyError::bad_request("the path does not make a URL upstream"))?;
        let (_, target) = Target::of_uri(&uri).map_err(ProxyError::bad_request)?;
        Ok(Routed { target, uri })
    }

    /// Whether `Host` names this gateway (a loopback name, its address or its TLS name).
    fn names_gateway(&self, host: Option<&HeaderValue>) -> bool {
        let Some(host) = host.and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let Ok(authority) = host.parse::<http::uri::Authority>() else {
            return false;
        };
        let name = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = name.to_ascii_lowercase();
        let tls_name = self.tls.as_ref().map(|t| t.name.as_string());
        name == "localhost"
            || name
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback() || ip == self.config.listen.ip())
            || tls_name.is_some_and(|t| t.eq_ignore_ascii_case(&name))
    }

    /// Takes the agent's gateway key off the request: the slots that held it carry the
    /// placeholder of the credential brokered for the request (the broker puts the real key on
    /// last) or nothing when none is. Returns the URI to forward to.
    fn swap_key<B>(
        &self,
        req: &mut Request<B>,
        routed: &Routed,
        presented: &Presented,
    ) -> Result<Uri, ProxyError> {
        let identity = &presented.identity;
        let host = routed.target.host.as_string();
        let to = Destination {
            https: true,
            host: &host,
            port: routed.target.port,
            path: routed.uri.path(),
        };
        let sender = Sender {
            agent: &identity.agent,
            team: identity.team.as_deref(),
            anonymous: false,
        };
        let placeholder = self.broker.find(to, sender).map(|c| c.placeholder.as_str());
        let headers = req.headers_mut();
        for name in &presented.headers {
            headers.remove(*name);
            let Some(placeholder) = placeholder else {
                continue;
            };
            let prefix = if *name == "authorization" {
                "Bearer "
            } else {
                ""
            };
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&format!("{prefix}{placeholder}")),
            ) else {
                return Err(ProxyError::internal(
                    "the placeholder is not a header value",
                ));
            };
            headers.insert(name, value);
        }
        if !presented.query {
            return Ok(routed.uri.clone());
        }
        // The other parameters stay as the agent wrote them (`+` and `%20` are not the same to
        // every server); only pairs naming `key`, however spelled, go.
        let query = routed.uri.query().unwrap_or_default();
        let mut pairs: Vec<String> = query
            .split('&')
            .filter(|pair| !pair.is_empty() && !names_key(pair))
            .map(str::to_string)
            .collect();
        if let Some(placeholder) = placeholder {
            let encoded: String = form_urlencoded::byte_serialize(placeholder.as_bytes()).collect();
            pairs.push(format!("{KEY_QUERY}={encoded}"));
        }
        let query = pairs.join("&");
        let rebuilt = match query.is_empty() {
            true => routed.uri.path().to_string(),
            false => format!("{}?{query}", routed.uri.path()),
        };
        let mut parts = routed.uri.clone().into_parts();
        parts.path_and_query = rebuilt.parse().ok();
        Uri::from_parts(parts).map_err(|_| ProxyError::internal("the query could not be rebuilt"))
    }
}

/// `response`, closing the connection it goes out on: a refused request's body is never read.
fn closing(mut response: Response<ProxyBody>) -> Response<ProxyBody> {
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Whether a query pair (`name=value` or `name`) names Google's `key`, percent-decoded.
fn names_key(pair: &str) -> bool {
    let name = pair.split('=').next().unwrap_or_default();
    form_urlencoded::parse(name.as_bytes())
        .next()
        .is_some_and(|(decoded, _)| decoded == KEY_QUERY)
}

fn anonymous() -> Identity {
    Identity {
        agent: ANONYMOUS.to_string(),
        team: None,
        env: None,
        execution: None,
        labels: Default::default(),
    }
}

/// Whether a browser sent the request (`Origin`, or a `Sec-Fetch-Site` other than `none`, which is
/// what a user typing the address gets).
fn from_a_browser(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::ORIGIN)
        || headers
            .get("sec-fetch-site")
            .is_some_and(|site| site.as_bytes() != b"none")
}
