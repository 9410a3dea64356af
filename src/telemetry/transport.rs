//! The HTTP client the OTLP exporters send with: the hyper client the proxy already uses (TLS by
//! rustls with the system and webpki roots), driven on the proxy's tokio runtime. The SDK's batch
//! processors export from threads of their own; each export is handed to the runtime and awaited
//! there, bounded in time and in the size of the collector's answer, so a slow or dead collector
//! delays only the exporter thread, never a request.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The largest collector answer read (a partial-success message is a few hundred bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Sends OTLP requests on the proxy's runtime.
#[derive(Debug, Clone)]
pub struct Transport {
    client: Client<Https, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
}

impl Transport {
    /// A client trusting `tls`'s roots, running on `runtime`, giving up on a request after
    /// `timeout`.
    pub fn new(
        tls: rustls::ClientConfig,
        runtime: tokio::runtime::Handle,
        timeout: Duration,
    ) -> Transport {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Transport {
            client: Client::builder(TokioExecutor::new()).build(connector),
            runtime,
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for Transport {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (client, timeout) = (self.client.clone(), self.timeout);
        let sent = self.runtime.spawn(async move {
            let exchange = async {
                let answer = client.request(request.map(Full::new)).await?;
                let (parts, body) = answer.into_parts();
                let body = Limited::new(body, MAX_ANSWER_BYTES).collect().await?;
                Ok::<_, HttpError>(Response::from_parts(parts, body.to_bytes()))
            };
            match tokio::time::timeout(timeout, exchange).await {
                Ok(answer) => answer,
                Err(_) => Err(HttpError::from(format!(
                    "the collector did not answer within {timeout:?}"
                ))),
            }
        });
        sent.await?
    }
}
