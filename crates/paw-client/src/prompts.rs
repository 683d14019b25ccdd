//! The conversation between a running security-key operation and the person at the keyboard.
//!
//! A key operation runs on a blocking thread; when the key wants its PIN, that thread waits here
//! until the UI answers (`submit_pin`), gives up (`cancel_key_prompt`) or [`PIN_WAIT`] passes.
//! The UI learns what to show by asking [`KeyPrompts::view`] while the operation runs — polling
//! keeps the window's capability limited to paw's own commands (no event permissions).
//!
//! The PIN is held as `Zeroizing<String>` from the moment it arrives, handed to the key once,
//! and wiped when the operation drops it.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use paw_fido::{FidoError, KeyPrompt, PinRequest};
use paw_proto::ipc::{KeyPromptView, MAX_PIN_BYTES};
use zeroize::Zeroizing;

use crate::{ClientError, Pin};

/// How long a PIN prompt waits for the user before the operation ends with a timeout.
pub const PIN_WAIT: Duration = Duration::from_secs(120);
/// CTAP2's shortest PIN.
const MIN_PIN_CHARS: usize = 4;

enum Answer {
    Pin(Zeroizing<String>),
    Cancel,
}

#[derive(Default)]
struct Inner {
    view: Option<KeyPromptView>,
    /// True while an operation waits in [`KeyPrompt::pin`].
    asking: bool,
    answer: Option<Answer>,
}

#[derive(Default)]
pub struct KeyPrompts {
    inner: Mutex<Inner>,
    answered: Condvar,
}

impl KeyPrompts {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave a PIN half-written: recover the state.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the UI should show now.
    pub fn view(&self) -> KeyPromptView {
        self.lock().view.unwrap_or(KeyPromptView::Idle)
    }

    /// The user typed the PIN. Refused when no PIN is being asked for, so a stray PIN is never
    /// kept for a later operation.
    pub fn submit_pin(&self, mut pin: Pin) -> Result<(), ClientError> {
        let pin = pin.with_exposed(|p| {
            if p.len() > MAX_PIN_BYTES {
                return Err(ClientError::InvalidInput {
                    field: "pin",
                    reason: format!("at most {MAX_PIN_BYTES} bytes"),
                });
            }
            if p.chars().count() < MIN_PIN_CHARS {
                return Err(ClientError::InvalidInput {
                    field: "pin",
                    reason: format!("at least {MIN_PIN_CHARS} characters"),
                });
            }
            Ok(Zeroizing::new(p.to_owned()))
        })?;
        self.answer(Answer::Pin(pin))
    }

    /// The user closed the PIN prompt. Without a PIN request this does nothing.
    pub fn cancel(&self) {
        let _ = self.answer(Answer::Cancel);
    }

    fn answer(&self, answer: Answer) -> Result<(), ClientError> {
        let mut g = self.lock();
        if !g.asking {
            return Err(ClientError::InvalidInput {
                field: "pin",
                reason: "the security key is not asking for a PIN".into(),
            });
        }
        g.answer = Some(answer);
        self.answered.notify_all();
        Ok(())
    }
}

impl KeyPrompt for KeyPrompts {
    fn pin(&self, request: PinRequest) -> Result<Zeroizing<String>, FidoError> {
        let deadline = Instant::now() + PIN_WAIT;
        let mut g = self.lock();
        g.answer = None;
        g.asking = true;
        g.view = Some(KeyPromptView::Pin {
            retries: request.retries,
            wrong: request.wrong,
        });
        let result = loop {
            if let Some(answer) = g.answer.take() {
                break match answer {
                    Answer::Pin(p) => Ok(p),
                    Answer::Cancel => Err(FidoError::Cancelled),
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(FidoError::Timeout);
            }
            g = match self.answered.wait_timeout(g, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        };
        g.asking = false;
        g.view = None;
        result
    }

    fn touch(&self, waiting: bool) {
        self.lock().view = waiting.then_some(KeyPromptView::Touch);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn wait_for_pin_prompt(p: &KeyPrompts) {
        for _ in 0..500 {
            if matches!(p.view(), KeyPromptView::Pin { .. }) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("no PIN prompt");
    }

    #[test]
    fn a_pin_reaches_the_waiting_operation_and_the_prompt_closes() {
        let p = Arc::new(KeyPrompts::default());
        let q = p.clone();
        let op = std::thread::spawn(move || {
            q.pin(PinRequest {
                retries: Some(5),
                wrong: true,
            })
        });
        wait_for_pin_prompt(&p);
        assert_eq!(
            p.view(),
            KeyPromptView::Pin {
                retries: Some(5),
                wrong: true
            }
        );
        p.submit_pin(Pin::from("123456".to_owned())).unwrap();
        assert_eq!(op.join().unwrap().unwrap().as_str(), "123456");
        assert_eq!(p.view(), KeyPromptView::Idle);
    }

    #[test]
    fn cancel_ends_the_operation_as_cancelled() {
        let p = Arc::new(KeyPrompts::default());
        let q = p.clone();
        let op = std::thread::spawn(move || q.pin(PinRequest::default()));
        wait_for_pin_prompt(&p);
        p.cancel();
        assert_eq!(op.join().unwrap(), Err(FidoError::Cancelled));
    }

    #[test]
    fn a_pin_nobody_asked_for_is_refused_not_kept() {
        let p = KeyPrompts::default();
        let e = p.submit_pin(Pin::from("123456".to_owned())).unwrap_err();
        assert_eq!(e.code(), paw_proto::ErrorCode::BadRequest);
        assert!(p.lock().answer.is_none());
    }

    #[test]
    fn f2_pins_too_short_or_too_long_are_refused_with_bad_request() {
        let p = KeyPrompts::default();
        for bad in ["", "123", &"9".repeat(64)] {
            let e = p.submit_pin(Pin::from(bad.to_owned())).unwrap_err();
            assert_eq!(e.code(), paw_proto::ErrorCode::BadRequest, "{bad:?}");
            assert!(!e.to_string().contains(bad) || bad.is_empty());
        }
    }

    #[test]
    fn touch_shows_and_clears() {
        let p = KeyPrompts::default();
        p.touch(true);
        assert_eq!(p.view(), KeyPromptView::Touch);
        p.touch(false);
        assert_eq!(p.view(), KeyPromptView::Idle);
    }
}
