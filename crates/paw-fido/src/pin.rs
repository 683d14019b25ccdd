//! The PIN and touch conversation shared by every authenticator: ask, try, ask again when the
//! PIN was wrong, and say when the key is waiting for a touch.

use zeroize::Zeroizing;

use crate::{FidoError, KeyPrompt, PinRequest};

/// Wrong PINs accepted in one operation. CTAP2 keys refuse further PINs after three wrong
/// ones until they are plugged in again, so asking a fourth time would only produce that error.
pub const PIN_TRIES_PER_OPERATION: u32 = 3;

/// Runs `op` with a PIN from `prompt`, asking again (saying the last one was wrong) while the
/// key answers [`FidoError::PinInvalid`], at most [`PIN_TRIES_PER_OPERATION`] times. Any
/// other outcome, success or failure, ends the conversation.
pub fn with_pin<T>(
    prompt: &dyn KeyPrompt,
    retries: Option<u32>,
    mut op: impl FnMut(&str) -> Result<T, FidoError>,
) -> Result<T, FidoError> {
    let mut request = PinRequest {
        retries,
        wrong: false,
    };
    let mut last = FidoError::PinInvalid { retries };
    for _ in 0..PIN_TRIES_PER_OPERATION {
        let pin: Zeroizing<String> = prompt.pin(request)?;
        match op(pin.as_str()) {
            Err(FidoError::PinInvalid { retries }) => {
                request = PinRequest {
                    retries,
                    wrong: true,
                };
                last = FidoError::PinInvalid { retries };
            }
            other => return other,
        }
    }
    Err(last)
}

/// Tells the prompt the key waits for a touch, and that it no longer does when dropped (on
/// success, error or unwinding alike), so the UI never keeps a stale "touch your key".
pub struct Touching<'a>(&'a dyn KeyPrompt);

impl<'a> Touching<'a> {
    pub fn start(prompt: &'a dyn KeyPrompt) -> Self {
        prompt.touch(true);
        Self(prompt)
    }
}

impl Drop for Touching<'_> {
    fn drop(&mut self) {
        self.0.touch(false);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Mutex;

    use super::*;

    /// Answers PIN requests from a script and records what it was asked.
    pub(crate) struct Script {
        pins: Mutex<Vec<Option<&'static str>>>,
        pub asked: Mutex<Vec<PinRequest>>,
        pub touches: Mutex<Vec<bool>>,
    }

    impl Script {
        pub fn new(pins: &[Option<&'static str>]) -> Self {
            Self {
                pins: Mutex::new(pins.iter().rev().copied().collect()),
                asked: Mutex::new(Vec::new()),
                touches: Mutex::new(Vec::new()),
            }
        }
    }

    impl KeyPrompt for Script {
        fn pin(&self, request: PinRequest) -> Result<Zeroizing<String>, FidoError> {
            self.asked.lock().unwrap().push(request);
            match self.pins.lock().unwrap().pop() {
                Some(Some(p)) => Ok(Zeroizing::new(p.to_owned())),
                Some(None) => Err(FidoError::Cancelled),
                None => Err(FidoError::Timeout),
            }
        }
        fn touch(&self, waiting: bool) {
            self.touches.lock().unwrap().push(waiting);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Script;
    use super::*;

    fn key(pin: &'static str) -> impl FnMut(&str) -> Result<u32, FidoError> {
        let mut retries = 8;
        move |given| {
            if given == pin {
                Ok(retries)
            } else {
                retries -= 1;
                Err(FidoError::PinInvalid {
                    retries: Some(retries),
                })
            }
        }
    }

    #[test]
    fn a_right_pin_is_asked_for_once() {
        let s = Script::new(&[Some("1234")]);
        assert_eq!(with_pin(&s, Some(8), key("1234")), Ok(8));
        assert_eq!(
            *s.asked.lock().unwrap(),
            [PinRequest {
                retries: Some(8),
                wrong: false
            }]
        );
    }

    #[test]
    fn a_wrong_pin_is_asked_again_saying_so_with_the_retries_left() {
        let s = Script::new(&[Some("0000"), Some("1234")]);
        assert_eq!(with_pin(&s, Some(8), key("1234")), Ok(7));
        let asked = s.asked.lock().unwrap();
        assert_eq!(
            asked[1],
            PinRequest {
                retries: Some(7),
                wrong: true
            }
        );
    }

    #[test]
    fn three_wrong_pins_end_the_operation() {
        let s = Script::new(&[Some("1"), Some("2"), Some("3"), Some("1234")]);
        assert_eq!(
            with_pin(&s, None, key("1234")),
            Err(FidoError::PinInvalid { retries: Some(5) })
        );
        assert_eq!(s.asked.lock().unwrap().len(), 3);
    }

    #[test]
    fn cancelling_the_prompt_stops_without_calling_the_key() {
        let s = Script::new(&[None]);
        let mut called = false;
        let r = with_pin(&s, None, |_| {
            called = true;
            Ok(())
        });
        assert_eq!(r, Err(FidoError::Cancelled));
        assert!(!called);
    }

    #[test]
    fn other_key_errors_are_not_retried() {
        let s = Script::new(&[Some("1"), Some("2")]);
        let r: Result<(), _> = with_pin(&s, None, |_| Err(FidoError::PinBlocked));
        assert_eq!(r, Err(FidoError::PinBlocked));
        assert_eq!(s.asked.lock().unwrap().len(), 1);
    }

    #[test]
    fn touching_always_ends_with_not_waiting() {
        let s = Script::new(&[]);
        {
            let _t = Touching::start(&s);
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _t = Touching::start(&s);
            panic!("key call failed hard");
        }));
        assert!(r.is_err());
        assert_eq!(*s.touches.lock().unwrap(), [true, false, true, false]);
    }
}
