//! What the appliance's own HTTP clients (webhook and Alertmanager receivers, the
//! VictoriaMetrics reader) share: how a failed request is put into words. A leaf: it
//! imports nothing of the appliance.

/// The error with its causes (`error sending request: … Connection refused`), without
/// the URL: its query may carry a token, and the caller names the target already.
pub fn error_text(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}
