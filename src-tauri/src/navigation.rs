//! Case G3: the app window shows the app and nothing else.

use paw_proto::{ApiError, ErrorCode};
use tauri::Url;

/// Origins that serve the embedded UI (and the isolation frame) on each platform.
fn is_app_url(u: &Url) -> bool {
    matches!(
        (u.scheme(), u.host_str()),
        ("tauri", Some("localhost"))
            | ("isolation", _)
            | ("http" | "https", Some("tauri.localhost"))
    )
}

/// Navigation policy for the main window: stay on the app; an external https link goes to the
/// system browser instead, anything else is dropped.
pub fn allow(u: &Url) -> bool {
    if is_app_url(u) {
        return true;
    }
    match paw_client::validate_external_url(u.as_str()) {
        Ok(ext) => {
            if let Err(e) = open_in_browser(&ext) {
                tracing::warn!(code = %e.code, "could not open external link");
            }
        }
        Err(_) => tracing::warn!(scheme = u.scheme(), "blocked navigation"),
    }
    false
}

pub fn open_in_browser(u: &Url) -> Result<(), ApiError> {
    open::that_detached(u.as_str()).map_err(|e| {
        ApiError::new(
            ErrorCode::UrlRejected,
            format!("no system browser could open the link: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g3_only_app_origins_are_app_urls() {
        for ok in [
            "tauri://localhost/index.html",
            "http://tauri.localhost/",
            "isolation://x/",
        ] {
            assert!(is_app_url(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "https://example.com/",
            "http://localhost:5173/",
            "tauri://evil.example/",
            "http://tauri.localhost.evil.example/",
            "file:///etc/passwd",
            "data:text/html,hi",
        ] {
            assert!(!is_app_url(&Url::parse(bad).unwrap()), "{bad}");
        }
    }
}
