//! The one HTTPS client for calls outside AWS (partners' webhooks, the SMS gateway,
//! OAuth providers). It trusts the public web roots (the SDK client trusts only AWS's),
//! refuses plain `http` and any address that is not public unicast, after DNS resolution
//! too (`address`), follows no redirects, has a timeout and a User-Agent, logs method,
//! host, path, status and latency (never headers, query strings or bodies), and classifies
//! failures: timeouts, connection errors, 429 (with `Retry-After`) and 5xx are retryable;
//! other answers are not. Retrying is the caller's due work (`delivery`), never a sleep.
//!
//! In the local stand-in every call goes to its recorder instead (`OUTBOUND_RECORDER_URL`,
//! the one address allowed despite the rules): `POST https://partner.example/hook`
//! arrives at `<recorder>/_local/outbound/to/partner.example/hook` with the original URL
//! in `x-hub-original-url`. Only functions that call out enable the `outbound` feature.

pub mod address;
pub mod delivery;

use std::{net::IpAddr, sync::Arc, time::Duration};

use url::Url;

/// The header that tells the recorder where a call was meant to go.
pub const ORIGINAL_URL_HEADER: &str = "x-hub-original-url";
/// Longest `Retry-After` honoured (a longer one is capped, not ignored).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Longest response body kept for logs and delivery records.
const EXCERPT_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// Never sent, never to be retried: the URL or its address is not allowed.
    #[error("refused: {0}")]
    Refused(String),
    /// Worth retrying later. `maybe_delivered` tells whether the request may have reached
    /// the other side (a timeout or a 5xx), for callers that must not repeat a call.
    #[error("retryable: {reason}")]
    Retryable {
        reason: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
        maybe_delivered: bool,
    },
    /// The other side refused the call (a 3xx or 4xx other than 429): not retried.
    #[error("rejected with {status}: {excerpt}")]
    Rejected { status: u16, excerpt: String },
}

impl OutboundError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, OutboundError::Retryable { .. })
    }
}

/// A call to make. `secret_headers` are sent but never logged or stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub secret_headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OutboundRequest {
    pub fn post_json(url: impl Into<String>, body: &serde_json::Value) -> Self {
        Self {
            method: "POST".into(),
            url: url.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            secret_headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub latency: Duration,
}

impl OutboundResponse {
    /// The start of the body, for logs and delivery records.
    pub fn excerpt(&self) -> String {
        excerpt(&self.body)
    }
}

fn excerpt(body: &[u8]) -> String {
    let end = body.len().min(EXCERPT_BYTES);
    String::from_utf8_lossy(&body[..end]).into_owned()
}

#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// The stand-in's recorder: every call goes there instead.
    pub recorder: Option<Url>,
    pub timeout: Duration,
    pub user_agent: String,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            recorder: None,
            timeout: Duration::from_secs(10),
            user_agent: concat!("PartnerHub/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl OutboundConfig {
    /// From the hub's configuration (`OUTBOUND_RECORDER_URL`, `OUTBOUND_TIMEOUT_SECONDS`).
    pub fn from_config(config: &crate::Config) -> Result<Self, String> {
        let recorder = match &config.outbound_recorder_url {
            Some(url) => Some(Url::parse(url).map_err(|e| format!("OUTBOUND_RECORDER_URL: {e}"))?),
            None => None,
        };
        Ok(Self {
            recorder,
            timeout: config
                .outbound_timeout
                .clamp(Duration::from_secs(1), Duration::from_secs(60)),
            ..Self::default()
        })
    }
}

/// The outbound client; cheap to clone, built once per process by functions that call out.
#[derive(Clone, Debug)]
pub struct OutboundClient {
    http: reqwest::Client,
    recorder: Option<Url>,
}

impl OutboundClient {
    pub fn new(config: OutboundConfig) -> Result<Self, String> {
        // reqwest asks for a process-wide provider even with a preconfigured backend;
        // another one installed first is fine (this client's config names ring itself).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(PublicOnly)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent(config.user_agent)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            recorder: config.recorder,
        })
    }

    /// Where the call goes: the URL itself (checked), or the recorder.
    fn target(&self, url: &Url) -> Result<Url, OutboundError> {
        check_url(url)?;
        Ok(self.browser_url(url))
    }

    /// Where a person's browser goes for a third party's page (an OAuth2 provider's
    /// consent page): the URL itself, or in the stand-in the recorder's address for it,
    /// where the local fakes play the third party.
    pub fn browser_url(&self, url: &Url) -> Url {
        let Some(recorder) = &self.recorder else {
            return url.clone();
        };
        let host = url.host_str().unwrap_or_default();
        let mut target = recorder.clone();
        target.set_path(&format!("/_local/outbound/to/{host}{}", url.path()));
        target.set_query(url.query());
        target
    }

    pub async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let url = Url::parse(&request.url)
            .map_err(|e| OutboundError::Refused(format!("not a URL: {e}")))?;
        let target = self.target(&url)?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| OutboundError::Refused(format!("method {}", request.method)))?;
        let mut builder = self.http.request(method, target);
        for (name, value) in request.headers.iter().chain(&request.secret_headers) {
            builder = builder.header(name, value);
        }
        if self.recorder.is_some() {
            builder = builder.header(ORIGINAL_URL_HEADER, url.as_str());
        }
        let started = std::time::Instant::now();
        let result = builder.body(request.body).send().await;
        let latency = started.elapsed();
        let host = url.host_str().unwrap_or_default();
        let outcome = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = retry_after(response.headers());
                let body = response
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                classify(status, retry_after, body, latency)
            }
            Err(err) => Err(transport_error(&err)),
        };
        match &outcome {
            Ok(response) => tracing::info!(
                method = %request.method, host, path = url.path(), status = response.status,
                latency_ms = latency.as_millis() as u64, "outbound call"
            ),
            Err(error) => tracing::warn!(
                method = %request.method, host, path = url.path(),
                latency_ms = latency.as_millis() as u64, %error, "outbound call failed"
            ),
        }
        outcome
    }
}

/// `https` only, a host that is a name or a public address, no credentials in the URL.
pub fn check_url(url: &Url) -> Result<(), OutboundError> {
    let refused = |why: String| Err(OutboundError::Refused(why));
    if url.scheme() != "https" {
        return refused(format!("{} is not https", url.scheme()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refused("credentials in the URL".into());
    }
    match url.host() {
        None => refused("no host".into()),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") || !name.contains('.') {
                refused(format!("{name} is not a public host name"))
            } else {
                Ok(())
            }
        }
        Some(url::Host::Ipv4(ip)) => public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => public(IpAddr::V6(ip)),
    }
}

fn public(ip: IpAddr) -> Result<(), OutboundError> {
    match address::refusal(ip) {
        Some(why) => Err(OutboundError::Refused(format!("{ip} is {why}"))),
        None => Ok(()),
    }
}

fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: Vec<u8>,
    latency: Duration,
) -> Result<OutboundResponse, OutboundError> {
    match status {
        200..=299 => Ok(OutboundResponse {
            status,
            body,
            latency,
        }),
        429 => Err(OutboundError::Retryable {
            reason: "429 Too Many Requests".into(),
            status: Some(status),
            retry_after,
            maybe_delivered: false,
        }),
        500..=599 => Err(OutboundError::Retryable {
            reason: format!("{status}: {}", excerpt(&body)),
            status: Some(status),
            retry_after,
            maybe_delivered: true,
        }),
        _ => Err(OutboundError::Rejected {
            status,
            excerpt: excerpt(&body),
        }),
    }
}

fn transport_error(err: &reqwest::Error) -> OutboundError {
    // Our resolver's refusal, wherever reqwest wrapped it.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<RefusedAddress>() {
            return OutboundError::Refused(refused.0.clone());
        }
        source = e.source();
    }
    OutboundError::Retryable {
        reason: if err.is_timeout() {
            "timed out".into()
        } else {
            format!("could not connect: {err}")
        },
        status: None,
        retry_after: None,
        // A timeout may strike after the request was sent; a refused connection not.
        maybe_delivered: !err.is_connect(),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is read as "later", one minute).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, crate::clock::now())
}

/// The one reading of `Retry-After` (RFC 9110): whole seconds, or an HTTP date (the wait
/// until it, from `now` on the hub's clock; a date passed is no wait). Capped at
/// [`MAX_RETRY_AFTER`]; `None` for anything else (the caller's own backoff applies).
pub fn parse_retry_after(value: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is a very long wait, not a parse error.
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = time::OffsetDateTime::from(httpdate::parse_http_date(value).ok()?);
        let wait = at - now;
        if wait.is_negative() {
            Duration::ZERO
        } else {
            Duration::try_from(wait).unwrap_or(MAX_RETRY_AFTER)
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[derive(Debug)]
struct RefusedAddress(String);

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefusedAddress {}

/// Resolves names and refuses those with any non-public address.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some((ip, why)) = address::first_refused(&addrs) {
                return Err(
                    Box::new(RefusedAddress(format!("{host} resolves to {ip}, {why}")))
                        as Box<dyn std::error::Error + Send + Sync>,
                );
            }
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod retry_after_tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = crate::clock::parse_rfc3339("2026-12-04T10:00:00Z").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Fri, 04 Dec 2026 10:05:00 GMT", now),
            Some(Duration::from_secs(300))
        );
        // RFC 850 and asctime forms are HTTP dates too.
        assert_eq!(
            parse_retry_after("Friday, 04-Dec-26 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Fri Dec  4 10:01:00 2026", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Fri, 04 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date passed: no wait"
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        for bad in ["", "-5", "1.5", "soon", "Fri, 99 Dec 2026 10:00:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_to_public_hosts() {
        let check = |u: &str| check_url(&Url::parse(u).unwrap());
        assert!(check("https://partner.example.com/hook").is_ok());
        assert!(check("https://93.184.216.34/hook").is_ok());
        for refused in [
            "http://partner.example.com/hook",
            "https://localhost/hook",
            "https://api.localhost/hook",
            "https://intranet/hook",
            "https://127.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::1]/hook",
            "https://[fd00:ec2::254]/",
            "https://10.1.2.3/",
            "https://user:pass@partner.example.com/",
            "ftp://partner.example.com/",
        ] {
            assert!(
                matches!(check(refused), Err(OutboundError::Refused(_))),
                "{refused}"
            );
        }
    }

    #[test]
    fn answers_are_classified_for_retries() {
        let ok = classify(204, None, vec![], Duration::ZERO);
        assert!(ok.is_ok());
        let throttled = classify(429, Some(Duration::from_secs(7)), vec![], Duration::ZERO);
        assert_eq!(
            throttled,
            Err(OutboundError::Retryable {
                reason: "429 Too Many Requests".into(),
                status: Some(429),
                retry_after: Some(Duration::from_secs(7)),
                maybe_delivered: false,
            })
        );
        assert!(
            classify(503, None, b"down".to_vec(), Duration::ZERO)
                .unwrap_err()
                .is_retryable()
        );
        for status in [301, 400, 401, 404, 410, 422] {
            assert!(
                matches!(
                    classify(status, None, vec![], Duration::ZERO),
                    Err(OutboundError::Rejected { .. })
                ),
                "{status}"
            );
        }
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused_before_connecting() {
        let client = OutboundClient::new(OutboundConfig::default()).unwrap();
        // `localtest.me` and its subdomains resolve to 127.0.0.1 on public DNS; offline,
        // resolution fails instead, which is not a refusal but must not be a success.
        let result = client
            .send(OutboundRequest::post_json(
                "https://hook.localtest.me/x",
                &serde_json::json!({}),
            ))
            .await;
        assert!(result.is_err());
        // A literal private address never reaches the resolver: refused outright.
        let result = client
            .send(OutboundRequest::post_json(
                "https://192.168.0.10/hook",
                &serde_json::json!({}),
            ))
            .await;
        assert!(
            matches!(result, Err(OutboundError::Refused(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_private_answers() {
        use reqwest::dns::Resolve;
        // `localhost` resolves locally (no network) to a loopback address.
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = match PublicOnly.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn the_recorder_receives_the_call_with_its_original_host_and_path() {
        let client = OutboundClient::new(OutboundConfig {
            recorder: Some(Url::parse("http://127.0.0.1:3000").unwrap()),
            ..OutboundConfig::default()
        })
        .unwrap();
        let target = client
            .target(&Url::parse("https://partner.example.com/releva/webhooks?a=1").unwrap())
            .unwrap();
        assert_eq!(
            target.as_str(),
            "http://127.0.0.1:3000/_local/outbound/to/partner.example.com/releva/webhooks?a=1"
        );
        // The rules still apply to the original URL.
        assert!(
            client
                .target(&Url::parse("http://partner.example.com/").unwrap())
                .is_err()
        );
    }
}
