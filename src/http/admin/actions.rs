//! What the buttons do: retry an order's failed items, retry every failed
//! order, correct a failed item's learner email. Each answers with a redirect
//! (303) to the page that shows the result.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tracing::info;

use super::error::PageError;
use super::extract::CsrfForm;
use super::pages::{order_page, EmailError};
use super::{AdminState, NoFields};
use crate::domain::LearnerEmail;

pub async fn retry_order(
    State(state): State<AdminState>,
    Path(order_id): Path<i64>,
    _form: CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    // Reading it first makes an unknown order a 404, not "nothing to retry".
    state.store.order_detail(order_id).await?;
    let retried = state.store.retry_order_id(order_id).await?;
    info!(order = order_id, retried, "admin: order retried");
    Ok(Redirect::to(&format!("/admin/orders/{order_id}?retried={retried}")).into_response())
}

#[derive(Deserialize)]
pub struct RetryAllForm {
    /// The page the button was on: back there afterwards.
    #[serde(default)]
    from: String,
}

pub async fn retry_all_failed(
    State(state): State<AdminState>,
    form: CsrfForm<RetryAllForm>,
) -> Result<Response, PageError> {
    let retried = state.store.retry_all_failed().await?;
    info!(retried, "admin: every failed order retried");
    let back = match form.fields.from.as_str() {
        "orders" => "/admin/orders",
        _ => "/admin",
    };
    Ok(Redirect::to(&format!("{back}?retried={retried}")).into_response())
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
}

pub async fn set_email(
    State(state): State<AdminState>,
    Path((order_id, item_id)): Path<(i64, i64)>,
    form: CsrfForm<EmailForm>,
) -> Result<Response, PageError> {
    let detail = state.store.order_detail(order_id).await?;
    if !detail.items.iter().any(|d| d.item.id == item_id) {
        return Err(PageError::NotFound(format!(
            "order {order_id} has no item {item_id}"
        )));
    }
    let typed = form.fields.email.trim().to_owned();
    let refused = |message: String| EmailError {
        item_id,
        typed: typed.clone(),
        message,
    };
    let error = match LearnerEmail::parse(&typed) {
        Ok(email) => match state.store.set_email(item_id, &email).await {
            Ok(()) => {
                info!(
                    order = order_id,
                    item = item_id,
                    "admin: learner email corrected"
                );
                let to = format!("/admin/orders/{order_id}?email_changed=true");
                return Ok(Redirect::to(&to).into_response());
            }
            Err(crate::store::StoreError::Invalid(why)) => refused(why),
            Err(e) => return Err(e.into()),
        },
        Err(_) => refused(format!(
            "'{typed}' is not an email address a learner can be enrolled with."
        )),
    };
    order_page(&state, form.operator, order_id, None, Some(error)).await
}
