//! The storm's requests, generated from a seed: valid signed orders mixed
//! with mutated and random bodies, bad headers and broken framing.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{MAX_BODY, REQUESTS, VALID_EVERY};
use crate::helpers::{shopify_order, sign, COURSE_A, SHOP, SHOPIFY_KEY, WOO_SECRET, WOO_SOURCE};

/// One generated request: its bytes, and whether it is complete and
/// well-framed, so the service must answer it and store it.
pub(super) struct Case {
    pub bytes: Vec<u8>,
    pub complete: bool,
    /// The learner of a valid signed order, who must end enrolled.
    pub learner: Option<String>,
}

pub(super) const PATHS: [&str; 5] = [
    "/webhooks/shopify",
    "/webhooks/shopify/order/create",
    "/webhooks/woocommerce",
    "/webhooks/woocommerce/order/create",
    "/webhooks/woocommerce/order/update",
];

pub(super) fn valid_order(n: usize) -> (Vec<u8>, String) {
    let learner = format!("storm-{n}@example.org");
    let order = shopify_order(
        900_000 + n as u64,
        &[(1, COURSE_A, Some(&learner))],
        Some("buyer@example.org"),
        "paid",
    );
    (order.to_string().into_bytes(), learner)
}

/// A request with `headers` and a body framed by Content-Length.
pub(super) fn framed(path: &str, headers: &[(String, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut bytes =
        format!("POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// A body: random bytes, or a valid order mutated one of many ways.
fn hostile_body(rng: &mut StdRng, n: usize) -> Vec<u8> {
    let (mut body, _) = valid_order(n);
    match rng.gen_range(0..10) {
        0 => (0..rng.gen_range(0..2_000)).map(|_| rng.gen()).collect(),
        1 => {
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..body.len());
                body[at] ^= 1 << rng.gen_range(0..8);
            }
            body
        }
        2 => {
            body.truncate(rng.gen_range(0..body.len()));
            body
        }
        3 => {
            let mut duplicated = br#"{"id":1,"line_items":7,"id":"x","#.to_vec();
            duplicated.extend_from_slice(&body[1..]);
            duplicated
        }
        4 => {
            let depth = if rng.gen_bool(0.5) { 10_000 } else { 200 };
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            format!(r#"{{"id":5,"line_items":[{{"id":1,"sku":{nested}}}],"x":{nested}}}"#)
                .into_bytes()
        }
        5 => {
            let huge = [
                "1e999999",
                "-1e400",
                &"9".repeat(400),
                "18446744073709551616",
                "-0",
            ];
            let number = huge[rng.gen_range(0..huge.len())];
            format!(r#"{{"id":{number},"line_items":[{{"id":{number},"sku":{number}}}]}}"#)
                .into_bytes()
        }
        6 => {
            let at = rng.gen_range(0..body.len());
            body.splice(at..at, [0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]);
            body
        }
        7 => String::from_utf8(body)
            .unwrap()
            .replace("A course", "Курс ☃ 𝄞 \u{202e}")
            .replace("example.org", "пример.рф")
            .into_bytes(),
        _ => body,
    }
}

/// Headers for a delivery of `body`: mostly right, often wrong.
fn hostile_headers(rng: &mut StdRng, path: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let woo = path.contains("woocommerce");
    let (sig_name, source_name, source, key) = if woo {
        (
            "x-wc-webhook-signature",
            "x-wc-webhook-source",
            WOO_SOURCE,
            WOO_SECRET,
        )
    } else {
        (
            "x-shopify-hmac-sha256",
            "x-shopify-shop-domain",
            SHOP,
            SHOPIFY_KEY,
        )
    };
    let mut headers = vec![("content-type".to_owned(), b"application/json".to_vec())];
    headers.push((sig_name.into(), sign(key, body).into_bytes()));
    headers.push((source_name.into(), source.as_bytes().to_vec()));
    match rng.gen_range(0..10) {
        0 => headers[0].1 = b"text/plain; charset=\xff".to_vec(),
        1 => headers.push((sig_name.into(), b"AAAA".to_vec())),
        2 => headers[1].1 = Vec::new(),
        3 => headers.push(("x-huge".into(), vec![b'h'; 6_000])),
        4 => headers[2].1 = "ünïcödé.myshopify.com".as_bytes().to_vec(),
        5 => {
            headers.remove(1);
        }
        6 => headers[1].1 = b"not base64 !!".to_vec(),
        7 => headers.push(("x-shopify-topic".into(), b"orders/\xe9\x80".to_vec())),
        8 => headers[0].1 = b"application/x-www-form-urlencoded".to_vec(),
        _ => {}
    }
    headers
}

/// Requests whose framing is broken or incomplete: the server may refuse
/// them at the HTTP level or never see them whole.
fn broken_framing(rng: &mut StdRng, path: &str, body: &[u8]) -> Vec<u8> {
    let head = format!("POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\n");
    let mut bytes = head.into_bytes();
    match rng.gen_range(0..6) {
        // Content-Length twice, disagreeing.
        0 => bytes.extend_from_slice(
            format!(
                "content-length: {}\r\ncontent-length: 3\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        ),
        // A chunked body cut off mid-chunk.
        1 => bytes.extend_from_slice(
            format!(
                "transfer-encoding: chunked\r\n\r\n{:x}\r\n",
                body.len() + 50
            )
            .as_bytes(),
        ),
        // More promised than sent.
        2 => bytes
            .extend_from_slice(format!("content-length: {}\r\n\r\n", body.len() * 2).as_bytes()),
        // A header name that is no token, and a bare line feed.
        3 => bytes.extend_from_slice(b"bad header\xff: x\n\r\n"),
        // A Content-Length that is no number.
        4 => bytes.extend_from_slice(b"content-length: 12abc\r\n\r\n"),
        // A body over the limit.
        _ => {
            bytes.extend_from_slice(format!("content-length: {}\r\n\r\n", MAX_BODY * 2).as_bytes());
            bytes.extend_from_slice(&vec![b' '; MAX_BODY * 2]);
            return bytes;
        }
    }
    bytes.extend_from_slice(body);
    bytes
}

/// A well-framed chunked request.
fn chunked(path: &str, headers: &[(String, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ntransfer-encoding: chunked\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(format!("{name}: ").as_bytes());
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    for chunk in body.chunks(100) {
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    bytes
}

pub(super) fn generate(seed: u64) -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..REQUESTS)
        .map(|n| {
            if n % VALID_EVERY == 0 {
                let (body, learner) = valid_order(n);
                let headers = vec![
                    ("content-type".to_owned(), b"application/json".to_vec()),
                    (
                        "x-shopify-hmac-sha256".into(),
                        sign(SHOPIFY_KEY, &body).into_bytes(),
                    ),
                    ("x-shopify-shop-domain".into(), SHOP.as_bytes().to_vec()),
                    ("x-shopify-topic".into(), b"orders/create".to_vec()),
                ];
                return Case {
                    bytes: framed(PATHS[0], &headers, &body),
                    complete: true,
                    learner: Some(learner),
                };
            }
            let path = PATHS[rng.gen_range(0..PATHS.len())];
            let body = hostile_body(&mut rng, n);
            let headers = hostile_headers(&mut rng, path, &body);
            let (bytes, complete) = match rng.gen_range(0..10) {
                0 => (broken_framing(&mut rng, path, &body), false),
                1 => (chunked(path, &headers, &body), true),
                _ => (framed(path, &headers, &body), true),
            };
            Case {
                bytes,
                complete,
                learner: None,
            }
        })
        .collect()
}
