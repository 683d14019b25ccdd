//! [`HidAuthenticator`]: real security keys, CTAP2 over USB HID.
//!
//! The protocol work (HID framing, CBOR commands, the PIN/UV auth protocol with its ECDH and
//! AES) is the `ctap-hid-fido2` crate's; this module decides which key to use, how the user is
//! verified (the key's built-in biometrics, else its PIN through [`KeyPrompt`]), announces the
//! touch, turns the crate's answers into the WebAuthn pieces the broker checks, and turns its
//! errors into [`FidoError`]s the UI can act on.
//!
//! Rules kept here:
//! - **Exactly one key.** With none plugged in the answer is [`FidoError::NoDevice`]; with
//!   several, [`FidoError::SeveralDevices`]: paw never picks one silently.
//! - **Verification is required.** A key with neither a PIN nor built-in verification is
//!   refused ([`FidoError::PinNotSet`]) before it is asked to sign: the broker would refuse an
//!   assertion without UV anyway, and the user deserves to know why.
//! - **Nothing printed.** The crate's own keep-alive text and logs are switched off; the UI says
//!   "touch your key" instead.

use ciborium::Value;
use ctap_hid_fido2::fidokey::get_assertion::get_assertion_params::GetAssertionArgsBuilder;
use ctap_hid_fido2::fidokey::make_credential::{Attestation, MakeCredentialArgsBuilder};
use ctap_hid_fido2::public_key_credential_user_entity::PublicKeyCredentialUserEntity;
use ctap_hid_fido2::{FidoKeyHid, FidoKeyHidFactory, LibCfg};

use crate::pin::{with_pin, Touching};
use crate::{Assertion, Authenticator, FidoError, KeyPrompt, Registration, UserEntity};

/// How a key verifies its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verification {
    /// Fingerprint or similar on the key itself: no PIN to ask for.
    BuiltIn,
    /// The key's PIN (clientPin set).
    Pin,
}

/// A USB security key, found afresh for every operation (keys come and go).
#[derive(Clone)]
pub struct HidAuthenticator {
    cfg: LibCfg,
}

impl std::fmt::Debug for HidAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HidAuthenticator")
    }
}

impl Default for HidAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl HidAuthenticator {
    pub fn new() -> Self {
        let mut cfg = LibCfg::init();
        cfg.enable_log = false;
        cfg.enable_keep_alive_msg = false;
        cfg.keep_alive_msg = String::new();
        Self { cfg }
    }

    /// The one plugged-in key, opened.
    fn open(&self) -> Result<FidoKeyHid, FidoError> {
        let mut devices = ctap_hid_fido2::get_fidokey_devices();
        let device = match (devices.pop(), devices.is_empty()) {
            (None, _) => return Err(FidoError::NoDevice),
            (Some(_), false) => return Err(FidoError::SeveralDevices),
            (Some(d), true) => d,
        };
        FidoKeyHidFactory::create_by_params(&[device.param], &self.cfg)
            .map_err(|e| classify(&e.to_string()))
    }

    fn verification(key: &FidoKeyHid) -> Result<Verification, FidoError> {
        let info = key.get_info().map_err(|e| classify(&e.to_string()))?;
        verification_from_options(&info.options)
    }

    fn pin_retries(key: &FidoKeyHid) -> Option<u32> {
        key.get_pin_retries()
            .ok()
            .and_then(|n| u32::try_from(n).ok())
    }

    /// Runs `op` with user verification: directly for built-in verification, else with a PIN
    /// from the prompt. The touch is announced while the key waits for it.
    fn verified<T>(
        key: &FidoKeyHid,
        prompt: &dyn KeyPrompt,
        op: impl Fn(Option<&str>) -> Result<T, FidoError>,
    ) -> Result<T, FidoError> {
        match Self::verification(key)? {
            Verification::BuiltIn => {
                let _touch = Touching::start(prompt);
                op(None)
            }
            Verification::Pin => with_pin(prompt, Self::pin_retries(key), |pin| {
                let _touch = Touching::start(prompt);
                match op(Some(pin)) {
                    // The key's own count is the truth; ask it rather than guess.
                    Err(FidoError::PinInvalid { .. }) => Err(FidoError::PinInvalid {
                        retries: Self::pin_retries(key),
                    }),
                    other => other,
                }
            }),
        }
    }
}

impl Authenticator for HidAuthenticator {
    fn make_credential(
        &self,
        rp_id: &str,
        user: &UserEntity,
        client_data_json: &[u8],
        prompt: &dyn KeyPrompt,
    ) -> Result<Registration, FidoError> {
        let key = self.open()?;
        let entity = PublicKeyCredentialUserEntity::new(
            Some(&user.id),
            Some(&user.name),
            Some(&user.display_name),
        );
        let att = Self::verified(&key, prompt, |pin| {
            // The crate hashes what it is given as "challenge" into the clientDataHash, so it
            // gets the clientDataJSON itself.
            let mut args =
                MakeCredentialArgsBuilder::new(rp_id, client_data_json).user_entity(&entity);
            if let Some(pin) = pin {
                args = args.pin(pin);
            }
            key.make_credential_with_args(&args.build())
                .map_err(|e| classify(&e.to_string()))
        })?;
        Ok(Registration {
            credential_id: att.credential_descriptor.id.clone(),
            attestation_object: attestation_object(&att)?,
        })
    }

    fn get_assertion(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        allow_credentials: &[Vec<u8>],
        prompt: &dyn KeyPrompt,
    ) -> Result<Assertion, FidoError> {
        if allow_credentials.is_empty() {
            // paw never uses discoverable credentials: the broker always names the key.
            return Err(FidoError::NoCredential);
        }
        let key = self.open()?;
        let a = Self::verified(&key, prompt, |pin| {
            let mut args = GetAssertionArgsBuilder::new(rp_id, client_data_json);
            for id in allow_credentials {
                args = args.add_credential_id(id);
            }
            if let Some(pin) = pin {
                args = args.pin(pin);
            }
            let mut all = key
                .get_assertion_with_args(&args.build())
                .map_err(|e| classify(&e.to_string()))?;
            if all.is_empty() {
                return Err(FidoError::NoCredential);
            }
            Ok(all.swap_remove(0))
        })?;
        // CTAP2 lets a key leave out the credential id when the allow list had only one.
        let credential_id = match (a.credential_id.is_empty(), allow_credentials) {
            (false, _) => a.credential_id,
            (true, [only]) => only.clone(),
            (true, _) => {
                return Err(FidoError::Device(
                    "the key did not say which credential it used".into(),
                ))
            }
        };
        Ok(Assertion {
            credential_id,
            authenticator_data: a.auth_data,
            signature: a.signature,
        })
    }

    fn is_virtual(&self) -> bool {
        false
    }

    fn label(&self) -> String {
        "USB security key".to_owned()
    }
}

/// Which verification a key offers, from authenticatorGetInfo's options.
fn verification_from_options(options: &[(String, bool)]) -> Result<Verification, FidoError> {
    let option = |name: &str| options.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    match (option("uv"), option("clientPin")) {
        (Some(true), _) => Ok(Verification::BuiltIn),
        (_, Some(true)) => Ok(Verification::Pin),
        _ => Err(FidoError::PinNotSet),
    }
}

/// The WebAuthn attestationObject (`fmt`, `attStmt`, `authData`) from the crate's parsed
/// answer. Only the formats a CTAP2 key produces are rebuilt; anything else is refused rather
/// than passed on half-formed.
fn attestation_object(att: &Attestation) -> Result<Vec<u8>, FidoError> {
    let text = |s: &str| Value::Text(s.to_owned());
    let x5c = || Value::Array(att.attstmt_x5c.iter().cloned().map(Value::Bytes).collect());
    let stmt: Vec<(Value, Value)> = match att.fmt.as_str() {
        "packed" => {
            let mut m = vec![
                (text("alg"), Value::Integer(att.attstmt_alg.into())),
                (text("sig"), Value::Bytes(att.attstmt_sig.clone())),
            ];
            if !att.attstmt_x5c.is_empty() {
                m.push((text("x5c"), x5c()));
            }
            m
        }
        "fido-u2f" => vec![
            (text("sig"), Value::Bytes(att.attstmt_sig.clone())),
            (text("x5c"), x5c()),
        ],
        "none" => Vec::new(),
        _ => {
            return Err(FidoError::Device(
                "the key used an attestation format paw does not support".into(),
            ))
        }
    };
    let object = Value::Map(vec![
        (text("fmt"), text(&att.fmt)),
        (text("attStmt"), Value::Map(stmt)),
        (text("authData"), Value::Bytes(att.auth_data.clone())),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&object, &mut out)
        .map_err(|e| FidoError::Attestation(format!("encoding: {e}")))?;
    Ok(out)
}

/// A [`FidoError`] from the crate's error text. The crate reports CTAP status codes only as
/// text ("0x31 CTAP2_ERR_PIN_INVALID ..."), so the CTAP names are matched; anything unknown
/// keeps its first line, bounded, as a device error (it never contains a PIN or key material).
fn classify(message: &str) -> FidoError {
    const TABLE: &[(&str, FidoError)] = &[
        (
            "CTAP2_ERR_PIN_INVALID",
            FidoError::PinInvalid { retries: None },
        ),
        (
            "CTAP2_ERR_PIN_AUTH_INVALID",
            FidoError::PinInvalid { retries: None },
        ),
        ("CTAP2_ERR_PIN_AUTH_BLOCKED", FidoError::PinAuthBlocked),
        ("CTAP2_ERR_PIN_BLOCKED", FidoError::PinBlocked),
        ("CTAP2_ERR_UV_BLOCKED", FidoError::PinAuthBlocked),
        ("CTAP2_ERR_PIN_NOT_SET", FidoError::PinNotSet),
        ("CTAP2_ERR_NO_CREDENTIALS", FidoError::NoCredential),
        ("CTAP2_ERR_OPERATION_DENIED", FidoError::Cancelled),
        ("CTAP2_ERR_KEEPALIVE_CANCEL", FidoError::Cancelled),
        ("CTAP2_ERR_USER_ACTION_TIMEOUT", FidoError::Timeout),
        ("CTAP2_ERR_ACTION_TIMEOUT", FidoError::Timeout),
        ("CTAP1_ERR_TIMEOUT", FidoError::Timeout),
    ];
    // Longest names first would matter only for prefixes; PIN_AUTH_INVALID vs PIN_INVALID are
    // distinct strings, and each table entry is matched as a whole word below.
    for (name, err) in TABLE {
        if message
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|word| word == *name)
        {
            return err.clone();
        }
    }
    let first = message.lines().next().unwrap_or_default();
    FidoError::Device(first.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctap_status_texts_become_actionable_errors() {
        let cases = [
            (
                "0x31 CTAP2_ERR_PIN_INVALID   PIN Invalid.",
                FidoError::PinInvalid { retries: None },
            ),
            (
                "0x32 CTAP2_ERR_PIN_BLOCKED PIN Blocked.",
                FidoError::PinBlocked,
            ),
            (
                "0x34 CTAP2_ERR_PIN_AUTH_BLOCKED x",
                FidoError::PinAuthBlocked,
            ),
            (
                "0x35 CTAP2_ERR_PIN_NOT_SET No PIN has been set.",
                FidoError::PinNotSet,
            ),
            (
                "0x2E CTAP2_ERR_NO_CREDENTIALS    No valid credentials provided.",
                FidoError::NoCredential,
            ),
            (
                "0x27 CTAP2_ERR_OPERATION_DENIED  Not authorized",
                FidoError::Cancelled,
            ),
            ("0x2F CTAP2_ERR_USER_ACTION_TIMEOUT x", FidoError::Timeout),
            (
                "read err = 0x3A CTAP2_ERR_ACTION_TIMEOUT",
                FidoError::Timeout,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(classify(text), want, "{text}");
        }
    }

    #[test]
    fn unknown_errors_keep_one_bounded_line() {
        let long = format!("{}\nsecond line", "x".repeat(500));
        match classify(&long) {
            FidoError::Device(m) => {
                assert_eq!(m.len(), 200);
                assert!(!m.contains("second"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn verification_prefers_built_in_then_pin_and_refuses_neither() {
        let o = |v: &[(&str, bool)]| -> Vec<(String, bool)> {
            v.iter().map(|(k, b)| ((*k).to_owned(), *b)).collect()
        };
        assert_eq!(
            verification_from_options(&o(&[("uv", true), ("clientPin", true)])),
            Ok(Verification::BuiltIn)
        );
        assert_eq!(
            verification_from_options(&o(&[("uv", false), ("clientPin", true)])),
            Ok(Verification::Pin)
        );
        assert_eq!(
            verification_from_options(&o(&[("clientPin", false)])),
            Err(FidoError::PinNotSet)
        );
        assert_eq!(verification_from_options(&[]), Err(FidoError::PinNotSet));
    }

    #[test]
    fn packed_attestation_is_rebuilt_as_webauthn_cbor() {
        let att = Attestation {
            fmt: "packed".into(),
            auth_data: vec![1, 2, 3],
            attstmt_alg: -7,
            attstmt_sig: vec![4, 5],
            attstmt_x5c: vec![vec![6, 7]],
            ..Default::default()
        };
        let bytes = attestation_object(&att).unwrap();
        let v: Value = ciborium::from_reader(bytes.as_slice()).unwrap();
        let map = v.as_map().unwrap();
        let get = |k: &str| {
            map.iter()
                .find(|(key, _)| key.as_text() == Some(k))
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("fmt").as_text(), Some("packed"));
        assert_eq!(get("authData").as_bytes(), Some(&vec![1, 2, 3]));
        let stmt = get("attStmt");
        let stmt = stmt.as_map().unwrap();
        assert_eq!(stmt.len(), 3);
        assert_eq!(stmt[0].1, Value::Integer((-7).into()));
        assert_eq!(stmt[2].1, Value::Array(vec![Value::Bytes(vec![6, 7])]));
    }

    #[test]
    fn unknown_attestation_formats_are_refused() {
        let att = Attestation {
            fmt: "tpm".into(),
            ..Default::default()
        };
        assert!(matches!(
            attestation_object(&att),
            Err(FidoError::Device(_))
        ));
    }

    /// Runs on every machine: with no FIDO device plugged in (CI), both operations say so
    /// instead of failing obscurely; with exactly one key plugged in this test is skipped by
    /// what it finds, not by an attribute.
    #[test]
    fn without_a_key_plugged_in_the_answer_is_no_device() {
        let devices = ctap_hid_fido2::get_fidokey_devices();
        if !devices.is_empty() {
            eprintln!("a FIDO device is plugged in; not asserting the no-device path");
            return;
        }
        let a = HidAuthenticator::new();
        assert_eq!(
            a.make_credential("localhost", &UserEntity::default(), b"{}", &crate::NoPrompt)
                .err(),
            Some(FidoError::NoDevice)
        );
        assert_eq!(
            a.get_assertion("localhost", b"{}", &[vec![1]], &crate::NoPrompt)
                .err(),
            Some(FidoError::NoDevice)
        );
        assert!(!a.is_virtual());
    }
}
