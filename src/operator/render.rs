//! Operator output as text: aligned tables and an order's full story.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use crate::store::{
    ItemDetail, OrderDetail, OrderPage, PruneReport, Replays, RequestPage, RequestView,
    StoredRequest,
};

use super::Replayed;

/// A Unix-milliseconds time as RFC 3339 UTC, to the second.
pub fn time(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Rows under a header, each column as wide as its widest cell; the last
/// column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count();
                let _ = write!(line, "{cell}{:pad$}  ", "");
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn order_list(page: &OrderPage) -> String {
    if page.orders.is_empty() {
        return "no orders\n".into();
    }
    let rows: Vec<Vec<String>> = page
        .orders
        .iter()
        .map(|o| {
            vec![
                o.id.to_string(),
                o.number.clone(),
                o.platform.clone(),
                o.shop.clone(),
                o.state.to_string(),
                if o.failed_items > 0 {
                    format!("{} ({} failed)", o.items, o.failed_items)
                } else {
                    o.items.to_string()
                },
                o.buyer_email.clone().unwrap_or_default(),
                time(o.created_at_ms),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID", "ORDER", "PLATFORM", "SHOP", "STATE", "ITEMS", "BUYER", "RECEIVED",
        ],
        &rows,
    );
    let _ = writeln!(out, "{} of {} order(s)", page.orders.len(), page.total);
    out
}

pub fn order_detail(detail: &OrderDetail) -> String {
    let o = &detail.order;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Order {} (id {}): {} {}, the shop's id {}",
        o.number, o.id, o.platform, o.shop, o.external_id
    );
    let _ = writeln!(out, "  state:    {}", o.state);
    let _ = writeln!(
        out,
        "  buyer:    {}",
        o.buyer_email.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "  received: {}", time(o.created_at_ms));
    let _ = writeln!(out, "  updated:  {}", time(o.updated_at_ms));
    if let Some(at) = detail.found_by_reconciliation_at_ms {
        let _ = writeln!(
            out,
            "  found by reconciliation: {} (fetched from the shop's API; no webhook had brought it)",
            time(at)
        );
    }

    let _ = writeln!(out, "\nItems ({})", detail.items.len());
    for item in &detail.items {
        out.push_str(&item_text(item));
    }

    let _ = writeln!(out, "\nWebhooks ({})", detail.requests.len());
    for request in &detail.requests {
        out.push_str(&request_text(request));
    }
    out
}

fn item_text(detail: &ItemDetail) -> String {
    let i = &detail.item;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  item {}: {} {} for {} ({}, line item {})",
        i.id,
        i.action,
        i.course_key
            .as_deref()
            .unwrap_or(if i.sku.is_empty() { "(no SKU)" } else { &i.sku }),
        i.email.as_deref().unwrap_or("(no learner email)"),
        i.state,
        i.line_item_id,
    );
    if i.course_key.as_deref().is_some_and(|k| k != i.sku) && !i.sku.is_empty() {
        let _ = writeln!(out, "    SKU: {}", i.sku);
    }
    if let Some(mode) = &i.mode {
        let _ = writeln!(out, "    mode: {mode} (Enrollment API)");
    }
    if let Some(reason) = &i.reason {
        let _ = writeln!(out, "    reason: {reason}");
    }
    if detail.attempts.is_empty() {
        let _ = writeln!(out, "    no LMS calls yet");
    }
    for a in &detail.attempts {
        let status = a
            .http_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "no answer".into());
        let counted = if a.counted { "" } else { ", not counted" };
        let _ = writeln!(
            out,
            "    {} {} → LMS {status}: {} ({} ms{counted})",
            time(a.at_ms),
            a.action,
            a.outcome,
            a.duration_ms
        );
        if !a.detail.is_empty() {
            let _ = writeln!(out, "      {}", a.detail);
        }
    }
    out
}

fn request_text(r: &StoredRequest) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  request {}: {} {} {} from {}: {} {}{}",
        r.id,
        time(r.received_at_ms),
        r.method,
        r.endpoint,
        r.source_ip.as_deref().unwrap_or("?"),
        r.http_status,
        r.outcome,
        r.topic
            .as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default(),
    );
    if let Some(reason) = &r.reason {
        let _ = writeln!(out, "    reason: {reason}");
    }
    out.push_str(&replay_lines(&r.replays, r.http_status));
    for (name, value) in &r.headers {
        let _ = writeln!(out, "    {name}: {value}");
    }
    if r.body_truncated {
        let _ = writeln!(
            out,
            "    (body of {} bytes; the first {} kept)",
            r.body_size,
            r.body.len()
        );
    }
    // Byte for byte, not indented: what the shop signed, to compare when a
    // signature was refused.
    let _ = writeln!(out, "    body, as received ({} bytes):", r.body.len());
    out.push_str(&String::from_utf8_lossy(&r.body));
    out.push_str("\n\n");
    out
}

/// How a request is linked to replays, one indented line each.
fn replay_lines(replays: &Replays, http_status: u16) -> String {
    let mut out = String::new();
    if let Some(original) = replays.replay_of {
        let _ = writeln!(
            out,
            "    a replay (webhooks replay) of request {original}, not a new delivery"
        );
    }
    if let Some(latest) = replays.replayed_by {
        let _ = writeln!(out, "    replayed: latest as request {latest}");
    }
    if replays.resolved(http_status) {
        if let Some(by) = replays.taken_in_by {
            let _ = writeln!(out, "    resolved: taken in by request {by}");
        }
    }
    out
}

/// A rejected request's state: taken in since (by which request), replayed
/// without success, or untouched.
fn resolution(r: &RequestView) -> String {
    match (r.replays.taken_in_by, r.replays.replayed_by) {
        (Some(by), _) if r.replays.resolved(r.http_status) => format!("resolved by {by}"),
        (_, Some(latest)) => format!("replayed as {latest}, still refused"),
        _ => String::new(),
    }
}

pub fn rejected_requests(page: &RequestPage) -> String {
    if page.requests.is_empty() {
        return "no rejected requests\n".into();
    }
    let rows: Vec<Vec<String>> = page
        .requests
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                time(r.received_at_ms),
                r.platform.clone(),
                r.http_status.to_string(),
                r.shop.clone().unwrap_or_default(),
                match r.replays.replay_of {
                    Some(original) => format!("replay of {original}"),
                    None => r.source_ip.clone().unwrap_or_default(),
                },
                resolution(r),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "REQUEST", "RECEIVED", "PLATFORM", "STATUS", "SHOP", "FROM", "RESOLVED", "REASON",
        ],
        &rows,
    );
    let _ = writeln!(
        out,
        "{} of {} rejected request(s)",
        page.requests.len(),
        page.total
    );
    out
}

pub fn replayed(replayed: &Replayed) -> String {
    let Replayed {
        request_id,
        http_status,
        status,
        reason,
        ..
    } = replayed;
    let mut out = match request_id {
        Some(id) => format!(
            "request {} judged again as request {id} (a replay of request {}): {http_status} {status}",
            replayed.replayed, replayed.original
        ),
        None => format!(
            "request {} judged again: {http_status} {status} (nothing new, not stored)",
            replayed.replayed
        ),
    };
    if let Some(reason) = reason {
        let _ = write!(out, ": {reason}");
    }
    out.push('\n');
    out
}

/// `older_than` as the operator wrote it.
pub fn pruned(report: &PruneReport, older_than: &str) -> String {
    format!(
        "deleted {} finished order(s) and {} request(s) older than {older_than}\n",
        report.orders, report.requests,
    )
}

/// `edx-webhooks settings`: each setting's names, one a row.
pub fn settings(list: &[crate::config::SettingNames]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.env.to_owned(),
                s.file_key.unwrap_or("-").to_owned(),
                if s.secret { "yes" } else { "" }.to_owned(),
                s.aliases.join(" "),
            ]
        })
        .collect();
    table(
        &["ENVIRONMENT", "FILE KEY", "SECRET", "ALSO ACCEPTED"],
        &rows,
    )
}

/// What `reconcile` did, a line per shop.
pub fn reconciled(reports: &[crate::reconcile::ShopReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let run = &report.run;
        let _ = write!(out, "{} {}: ", report.platform, report.shop);
        if report.skipped {
            out.push_str("skipped: another process is reconciling it\n");
            continue;
        }
        let _ = write!(
            out,
            "{} fetched, {} new, {} changed, {} unchanged, {} refused",
            run.fetched, run.new, run.changed, run.unchanged, run.refused
        );
        if let Some(error) = &run.error {
            let _ = write!(out, "; could not be reconciled: {error}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_by_characters() {
        let rows = vec![
            vec!["1".into(), "ünïcode".into(), "x".into()],
            vec!["22".into(), "b".into(), "last column is free".into()],
        ];
        assert_eq!(
            table(&["ID", "NAME", "NOTE"], &rows),
            "ID  NAME     NOTE\n1   ünïcode  x\n22  b        last column is free\n"
        );
    }

    #[test]
    fn times() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }
}
