//! Which URLs the app hands to the system browser (case G3: the app window itself never
//! navigates away from the app).

use paw_proto::ipc::MAX_URL_LEN;

use crate::ClientError;

/// Accepts only absolute `https` URLs with a host and no credentials. Anything else (file:,
/// javascript:, custom schemes that could launch local handlers) is refused.
pub fn validate_external_url(raw: &str) -> Result<url::Url, ClientError> {
    let reject = |why: &str| {
        Err(ClientError::UrlRejected(format!(
            "refusing to open URL: {why}"
        )))
    };
    if raw.len() > MAX_URL_LEN {
        return reject("too long");
    }
    if raw.chars().any(char::is_control) {
        return reject("contains control characters");
    }
    let Ok(u) = url::Url::parse(raw) else {
        return reject("not an absolute URL");
    };
    if u.scheme() != "https" {
        return reject("only https links are opened");
    }
    if u.host_str().is_none_or(str::is_empty) {
        return reject("no host");
    }
    if !u.username().is_empty() || u.password().is_some() {
        return reject("credentials in URL");
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g3_external_urls_https_only() {
        assert!(validate_external_url("https://example.com/paw/docs").is_ok());
        for bad in [
            "http://example.com",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "ssh://host",
            "https://user:pw@example.com/",
            "https://exa\nmple.com",
            "/relative",
            "",
        ] {
            let e = validate_external_url(bad).unwrap_err();
            assert_eq!(e.code(), paw_proto::ErrorCode::UrlRejected, "{bad}");
        }
        assert!(
            validate_external_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN))).is_err()
        );
    }
}
