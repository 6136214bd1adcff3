//! The pages, server-rendered. Every value from the table is escaped.

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use shared::{
    accounts::Account,
    admin::{AdminUser, Session},
    billing::Selection,
    clock,
    partner_webhooks::{ChangeRequest, ChangeRequestStatus},
    plans::Plan,
    timeline::TimelineEntry,
};

/// One shop on the page.
pub struct ShopView {
    pub account: Account,
    pub selection: Option<Selection>,
    pub events: Vec<TimelineEntry>,
    /// The shop's delivery log: its latest webhook attempts (`webhook.attempted`).
    pub attempts: Vec<TimelineEntry>,
    pub change_requests: Vec<ChangeRequest>,
}

/// Text made safe for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}section{{border:1px solid #ddd;border-radius:8px;padding:1rem;margin:1rem 0}}.paused{{color:#a40}}.running{{color:#070}}table{{border-collapse:collapse}}td,th{{padding:.2rem .6rem;text-align:left}}</style></head><body>{body}</body></html>",
        title = escape(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // Links and forms carry single-use tokens in their paths: never in a Referer.
            (header::REFERRER_POLICY, "no-referrer"),
            // No scripts at all; never framed (clickjacking); forms post only here.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        html,
    )
        .into_response()
}

pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    document(
        status,
        title,
        &format!(
            "<h1>{}</h1><p>{}</p><p><a href=\"/admin/login\">Sign in with your password</a></p>",
            escape(title),
            escape(message)
        ),
    )
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    message_page(status, "Cannot sign you in", message)
}

pub fn password_form(token: &str, csrf: &str, problem: Option<&str>) -> Response {
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    document(
        status,
        "Set your password",
        &format!(
            "<h1>Set your password</h1>{}<form method=\"post\" action=\"/admin/confirm/{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><p><label>Password <input type=\"password\" name=\"password\" autocomplete=\"new-password\" required minlength=\"12\"></label></p><p><label>Again <input type=\"password\" name=\"repeat\" autocomplete=\"new-password\" required minlength=\"12\"></label></p><button type=\"submit\">Set password</button></form>",
            problem
                .map(|p| format!("<p role=\"alert\">{}</p>", escape(p)))
                .unwrap_or_default(),
            escape(token),
            escape(csrf),
        ),
    )
}

pub fn login_form(csrf: &str, problem: Option<&str>, status: StatusCode) -> Response {
    document(
        status,
        "Sign in",
        &format!(
            "<h1>Sign in</h1>{}<form method=\"post\" action=\"/admin/login\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><p><label>Email <input type=\"email\" name=\"email\" autocomplete=\"username\" required></label></p><p><label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label></p><button type=\"submit\">Sign in</button></form>",
            problem
                .map(|p| format!("<p role=\"alert\">{}</p>", escape(p)))
                .unwrap_or_default(),
            escape(csrf),
        ),
    )
}

pub fn admin_page(
    user: &AdminUser,
    session: &Session,
    shops: &[ShopView],
    catalog: &[Plan],
) -> Response {
    let mut body = format!(
        "<h1>Your shops</h1><p>Signed in as {} {} ({})</p><form method=\"post\" action=\"/admin/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form>",
        escape(&user.first_name),
        escape(&user.last_name),
        escape(user.email.as_str()),
        escape(&session.csrf),
    );
    for shop in shops {
        let account = &shop.account;
        let name = account
            .shop
            .as_ref()
            .map(|s| s.name.as_str().to_owned())
            .unwrap_or_else(|| account.external_id.as_str().to_owned());
        let (state, class) = if account.running {
            ("running", "running")
        } else {
            ("paused", "paused")
        };
        body.push_str(&format!(
            "<section class=\"shop\"><h2>{}</h2><p>{} — <span class=\"{class}\">{state}</span></p>",
            escape(&name),
            escape(account.external_id.as_str()),
        ));
        match &shop.selection {
            Some(selection) => {
                let period = &selection.period;
                body.push_str("<h3>Plans</h3><ul class=\"plans\">");
                for plan in &selection.plans {
                    body.push_str(&format!(
                        "<li>{} <small>(version {})</small></li>",
                        escape(&plan.spec.name),
                        plan.version
                    ));
                }
                body.push_str(&format!(
                    "</ul><p>Billing period {} to {}; trial ends {}</p>",
                    clock::rfc3339_millis(period.start),
                    clock::rfc3339_millis(period.end),
                    clock::rfc3339_millis(period.trial_ends_at),
                ));
            }
            None => body.push_str("<p>No plans chosen yet.</p>"),
        }
        body.push_str(&subscriptions_section(shop, session, catalog));
        body.push_str(&delivery_log(&shop.attempts));
        body.push_str("<h3>Recent events</h3><table>");
        for event in &shop.events {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&event.occurred_at),
                escape(&event.event_type)
            ));
        }
        body.push_str("</table></section>");
    }
    if shops.is_empty() {
        body.push_str("<p>No shops yet.</p>");
    }
    document(StatusCode::OK, "Your shops", &body)
}

/// Change requests and what the shop may ask for (contract 5.2).
fn subscriptions_section(shop: &ShopView, session: &Session, catalog: &[Plan]) -> String {
    let mut out = String::from("<h3>Change your subscriptions</h3>");
    if !shop.change_requests.is_empty() {
        out.push_str("<ul class=\"change-requests\">");
        for request in &shop.change_requests {
            let what = format!(
                "{} ({})",
                escape(&request.reason),
                escape(&request.created_at)
            );
            out.push_str(&match (request.status, &request.confirmation_url) {
                (ChangeRequestStatus::AwaitingConfirmation, Some(url)) => format!(
                    "<li>{what}: <a class=\"confirm\" href=\"{}\" rel=\"noopener noreferrer\">Confirm your new subscriptions</a></li>",
                    escape(url)
                ),
                (ChangeRequestStatus::Failed, _) => {
                    format!("<li>{what}: could not be sent to your partner</li>")
                }
                _ => format!("<li>{what}: sent to your partner, waiting for its answer</li>"),
            });
        }
        out.push_str("</ul>");
    }
    let current: Vec<u32> = shop
        .selection
        .as_ref()
        .map(|s| s.plans.iter().map(|p| p.spec.id).collect())
        .unwrap_or_default();
    for plan in catalog.iter().filter(|p| !current.contains(&p.spec.id)) {
        out.push_str(&format!(
            "<form method=\"post\" action=\"/admin/shops/{}/subscriptions\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"plan\" value=\"{}\"><button type=\"submit\">Ask for {}</button> <small>{}</small></form>",
            shop.account.id,
            escape(&session.csrf),
            plan.spec.id,
            escape(&plan.spec.name),
            escape(&plan.spec.summary),
        ));
    }
    out
}

/// The shop's latest webhook attempts: when, what, the outcome, the partner's status and
/// latency, and why it failed. Never a secret (the log holds none).
fn delivery_log(attempts: &[TimelineEntry]) -> String {
    if attempts.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h3>Webhooks to your partner</h3><table class=\"deliveries\"><tr><th>When</th><th>What</th><th>Attempt</th><th>Outcome</th><th>Status</th><th>Latency</th><th>Error</th></tr>",
    );
    for entry in attempts {
        let data: serde_json::Value = serde_json::from_str(&entry.data).unwrap_or_default();
        let text = |key: &str| match &data[key] {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&entry.occurred_at),
            escape(&text("kind")),
            escape(&text("attempt")),
            escape(&text("outcome")),
            escape(&text("httpStatus")),
            escape(&text("latencyMs")).to_string() + if data["latencyMs"].is_null() { "" } else { " ms" },
            escape(&text("error")),
        ));
    }
    out.push_str("</table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
