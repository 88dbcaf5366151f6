//! The shops' order APIs: pages of orders changed since a time, with the
//! waits and fallbacks their documentation describes.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, LINK, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use crate::config::{ShopifyApi, WooCommerceApi};

/// The longest one `Retry-After` is waited out; past it the run stops and
/// the shop is tried again at the next interval.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);
/// 429s waited out for one page before the run gives up.
const MAX_THROTTLED: u32 = 5;
/// Pages followed in one run at most (250 or 100 orders each).
const MAX_PAGES: u32 = 1000;

/// Why a shop's orders could not be fetched, with the fix where we know it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Credentials(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Answer(String),
}

/// One order as the API returned it.
#[derive(Debug, Clone)]
pub struct FetchedOrder {
    /// The order's JSON, as a webhook would carry it.
    pub body: Vec<u8>,
    /// When the shop last changed it (Unix ms), if it says.
    pub updated_at_ms: Option<i64>,
}

/// How a WooCommerce key reached the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WooAuth {
    Basic,
    /// The server strips `Authorization`: the key goes in the query.
    QueryParameters,
}

fn iso(ms: i64) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Sends a request, waiting out 429s (`Retry-After`, bounded).
async fn send(make: impl Fn() -> RequestBuilder) -> Result<Response, ApiError> {
    let mut throttled = 0;
    loop {
        let response = make()
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(format!("the shop's API cannot be reached: {e}")))?;
        if response.status() != StatusCode::TOO_MANY_REQUESTS {
            return Ok(response);
        }
        throttled += 1;
        let wait = retry_after(response.headers()).unwrap_or(Duration::from_secs(2));
        if throttled > MAX_THROTTLED || wait > MAX_RETRY_WAIT {
            return Err(ApiError::Answer(format!(
                "the shop's API kept answering 429 (asked to wait {} s); tried again next time",
                wait.as_secs()
            )));
        }
        tracing::info!(
            wait_s = wait.as_secs_f64(),
            "shop API throttled us; waiting"
        );
        tokio::time::sleep(wait).await;
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return Some(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The URL of a `Link` header's `rel="next"`.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
        .and_then(|part| {
            let start = part.find('<')? + 1;
            let end = part[start..].find('>')? + start;
            Some(part[start..end].to_owned())
        })
}

async fn error_text(response: Response) -> String {
    let text = response.text().await.unwrap_or_default();
    text.chars().take(300).collect()
}

/// The largest page of orders read (250 orders of a busy shop fit many times over).
const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;

/// A page's JSON, read within `MAX_PAGE_BYTES`.
async fn read_json(mut response: Response) -> Result<Value, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ApiError::Unreachable(format!("the orders page could not be read: {e}")))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_PAGE_BYTES {
            return Err(ApiError::Answer(format!(
                "an orders page is larger than {} MiB",
                MAX_PAGE_BYTES / 1024 / 1024
            )));
        }
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Answer(format!("the orders page is not JSON: {e}")))
}

fn orders_of(list: &[Value], updated: &str) -> Vec<FetchedOrder> {
    list.iter()
        .map(|order| FetchedOrder {
            body: serde_json::to_vec(order).unwrap_or_default(),
            updated_at_ms: order
                .get(updated)
                .and_then(Value::as_str)
                .and_then(parse_time),
        })
        .collect()
}

/// The orders of a Shopify shop updated since `since_ms`, every page.
pub async fn shopify_orders(
    client: &Client,
    api: &ShopifyApi,
    since_ms: i64,
    limit: u32,
) -> Result<Vec<FetchedOrder>, ApiError> {
    let mut url = shopify_url(api, "orders.json")?;
    url.query_pairs_mut()
        .append_pair("status", "any")
        .append_pair("updated_at_min", &iso(since_ms))
        .append_pair("limit", &limit.to_string());
    let mut next = Some(url.to_string());
    let mut orders = Vec::new();
    let mut pages = 0;
    while let Some(page) = next.take() {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(ApiError::Answer("more pages than one run follows".into()));
        }
        let response = send(|| {
            client
                .get(&page)
                .header("X-Shopify-Access-Token", api.access_token.expose())
        })
        .await?;
        let response = shopify_ok(response).await?;
        next = next_link(response.headers());
        let json = read_json(response).await?;
        let list = json
            .get("orders")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::Answer("the orders page has no 'orders' list".into()))?;
        orders.extend(orders_of(list, "updated_at"));
    }
    Ok(orders)
}

fn shopify_url(api: &ShopifyApi, resource: &str) -> Result<url::Url, ApiError> {
    api.url
        .join(&format!("/admin/api/{}/{resource}", api.version))
        .map_err(|e| ApiError::Answer(format!("bad API URL: {e}")))
}

/// A Shopify answer that is not a page of orders, named with its fix.
async fn shopify_ok(response: Response) -> Result<Response, ApiError> {
    match response.status() {
        s if s.is_success() => Ok(response),
        StatusCode::UNAUTHORIZED => Err(ApiError::Credentials(format!(
            "Shopify refused the access token (401 {}): set the Admin API access token of the shop's custom app (EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN / access_token)",
            error_text(response).await
        ))),
        StatusCode::FORBIDDEN => Err(ApiError::Credentials(
            "Shopify answered 403: the custom app lacks the read_orders scope; add it in the app's Admin API configuration and reinstall the app".into(),
        )),
        StatusCode::NOT_FOUND => Err(ApiError::Credentials(format!(
            "Shopify answered 404: check the shop's API URL and API version (EDX_WEBHOOKS_SHOPIFY_API_URL, EDX_WEBHOOKS_SHOPIFY_API_VERSION): {}",
            error_text(response).await
        ))),
        status => Err(ApiError::Answer(format!(
            "Shopify answered {status}: {}",
            error_text(response).await
        ))),
    }
}

/// One cheap read that tells whether the credentials work.
pub async fn probe_shopify(client: &Client, api: &ShopifyApi) -> Result<(), ApiError> {
    let mut url = shopify_url(api, "orders.json")?;
    url.query_pairs_mut()
        .append_pair("status", "any")
        .append_pair("limit", "1");
    let response = send(|| {
        client
            .get(url.clone())
            .header("X-Shopify-Access-Token", api.access_token.expose())
    })
    .await?;
    shopify_ok(response).await.map(drop)
}

fn woo_url(api: &WooCommerceApi) -> Result<url::Url, ApiError> {
    let base = api.url.as_str().trim_end_matches('/');
    url::Url::parse(&format!("{base}/wp-json/wc/v3/orders"))
        .map_err(|e| ApiError::Answer(format!("bad API URL: {e}")))
}

/// One WooCommerce request with the key as `auth` says; on a 401 to Basic
/// auth, once more with the key in the query (hosts that strip
/// `Authorization`). Returns the answer and the way that worked.
async fn woo_get(
    client: &Client,
    api: &WooCommerceApi,
    url: &url::Url,
    auth: WooAuth,
) -> Result<(Response, WooAuth), ApiError> {
    let basic = || {
        client.get(url.clone()).basic_auth(
            api.consumer_key.expose(),
            Some(api.consumer_secret.expose()),
        )
    };
    let query = || {
        let mut url = url.clone();
        url.query_pairs_mut()
            .append_pair("consumer_key", api.consumer_key.expose())
            .append_pair("consumer_secret", api.consumer_secret.expose());
        client.get(url)
    };
    if auth == WooAuth::QueryParameters {
        return Ok((send(query).await?, auth));
    }
    let response = send(basic).await?;
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok((response, WooAuth::Basic));
    }
    let retried = send(query).await?;
    if retried.status().is_success() {
        tracing::warn!(shop = %api.url, "the shop's server strips the Authorization header; the REST key goes in the query instead");
        return Ok((retried, WooAuth::QueryParameters));
    }
    Ok((response, WooAuth::Basic))
}

async fn woo_ok(response: Response) -> Result<Response, ApiError> {
    match response.status() {
        s if s.is_success() => Ok(response),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            let status = response.status().as_u16();
            let text = error_text(response).await;
            let fix = if text.contains("woocommerce_rest_cannot_view") {
                "the REST API key lacks read permission or is wrong: create a key with Read permission (WooCommerce > Settings > Advanced > REST API) and set EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_KEY and _CONSUMER_SECRET"
            } else {
                "check the consumer key and secret (EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_KEY, EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_SECRET)"
            };
            Err(ApiError::Credentials(format!(
                "WooCommerce refused the REST API key ({status} {text}): {fix}"
            )))
        }
        StatusCode::NOT_FOUND => Err(ApiError::Credentials(format!(
            "WooCommerce answered 404 (rest_no_route): the REST API is off or permalinks are plain; check EDX_WEBHOOKS_WOOCOMMERCE_API_URL: {}",
            error_text(response).await
        ))),
        status => Err(ApiError::Answer(format!(
            "WooCommerce answered {status}: {}",
            error_text(response).await
        ))),
    }
}

/// The orders of a WooCommerce shop modified since `since_ms`, every page;
/// `auth` is updated to the way the key got through.
pub async fn woocommerce_orders(
    client: &Client,
    api: &WooCommerceApi,
    since_ms: i64,
    per_page: u32,
    auth: &mut WooAuth,
) -> Result<Vec<FetchedOrder>, ApiError> {
    let mut orders = Vec::new();
    let mut page = 1u32;
    loop {
        let mut url = woo_url(api)?;
        url.query_pairs_mut()
            .append_pair("modified_after", iso(since_ms).trim_end_matches('Z'))
            .append_pair("dates_are_gmt", "true")
            .append_pair("per_page", &per_page.to_string())
            .append_pair("page", &page.to_string())
            .append_pair("orderby", "modified")
            .append_pair("order", "asc");
        let (response, used) = woo_get(client, api, &url, *auth).await?;
        let response = woo_ok(response).await?;
        *auth = used;
        let total_pages: u32 = response
            .headers()
            .get("x-wp-totalpages")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1);
        let json = read_json(response).await?;
        let list = json
            .as_array()
            .ok_or_else(|| ApiError::Answer("the orders page is not a list".into()))?;
        orders.extend(orders_of(list, "date_modified_gmt"));
        if page >= total_pages.min(MAX_PAGES) || list.is_empty() {
            return Ok(orders);
        }
        page += 1;
    }
}

/// One cheap read that tells whether the key works, and how it got through.
pub async fn probe_woocommerce(client: &Client, api: &WooCommerceApi) -> Result<WooAuth, ApiError> {
    let mut url = woo_url(api)?;
    url.query_pairs_mut().append_pair("per_page", "1");
    let (response, used) = woo_get(client, api, &url, WooAuth::Basic).await?;
    woo_ok(response).await.map(|_| used)
}

/// `2026-03-02T10:15:05-05:00`, `…Z`, or WooCommerce's zone-less GMT
/// `2026-03-02T10:15:05`, to Unix ms.
pub fn parse_time(text: &str) -> Option<i64> {
    let t = text.trim();
    let num = |s: &str| s.parse::<i64>().ok();
    let (date, rest) = t.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let (clock, offset_min) = match rest.find(['Z', '+', '-']) {
        Some(i) => {
            let (clock, zone) = rest.split_at(i);
            let offset = if zone == "Z" {
                0
            } else {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let (h, mi) = zone[1..]
                    .split_once(':')
                    .unwrap_or((&zone[1..3.min(zone.len())], "0"));
                sign * (num(h)? * 60 + num(mi)?)
            };
            (clock, offset)
        }
        None => (rest, 0),
    };
    let mut c = clock.split(':');
    let (h, mi) = (num(c.next()?)?, num(c.next()?)?);
    let sec: f64 = c.next().unwrap_or("0").parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 - offset_min * 60;
    Some(secs * 1000 + (sec * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests;
