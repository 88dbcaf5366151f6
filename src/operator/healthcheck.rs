//! `edx-webhooks healthcheck`: one GET of `/healthz` for a container's or a
//! supervisor's health probe, needing no tool beside the binary.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Why the probe failed; the process exits 1 whatever it is.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("no answer from {url} within {}", humantime::format_duration(*.timeout))]
    Timeout { url: String, timeout: Duration },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

/// Where a service listening on `listen` answers `/healthz` from this
/// machine: an unspecified address (`0.0.0.0`, `[::]`) is probed on loopback.
pub fn healthz_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/healthz", SocketAddr::new(ip, listen.port()))
}

/// GETs `url` without proxies or redirects; a 2xx within `timeout` is healthy.
pub async fn probe(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ProbeError::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    let answer = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            ProbeError::Timeout {
                url: url.to_owned(),
                timeout,
            }
        } else {
            ProbeError::Unreachable {
                url: url.to_owned(),
                reason: innermost(&e),
            }
        }
    })?;
    let status = answer.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err(ProbeError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        })
    }
}

/// The root cause's message ("Connection refused"), not reqwest's wrapper.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::healthz_url;

    #[test]
    fn unspecified_listen_addresses_are_probed_on_loopback() {
        for (listen, url) in [
            ("0.0.0.0:8090", "http://127.0.0.1:8090/healthz"),
            ("[::]:8090", "http://[::1]:8090/healthz"),
            ("127.0.0.1:9000", "http://127.0.0.1:9000/healthz"),
            ("10.1.2.3:80", "http://10.1.2.3:80/healthz"),
            ("[fe80::1]:8090", "http://[fe80::1]:8090/healthz"),
        ] {
            assert_eq!(healthz_url(listen.parse().unwrap()), url, "{listen}");
        }
    }
}
