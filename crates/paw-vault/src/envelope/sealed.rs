//! A sealed secret as stored: the serde form (JSON with base64 fields) and a compact,
//! versioned string for a single database column.
//!
//! Compact form: `pawv1:<kek_id>:<dek_nonce>:<wrapped_dek>:<nonce>:<ciphertext>`, each binary
//! field base64url without padding. The version prefix lets a later format be read next to
//! this one; the parser checks every length exactly, so a truncated column is an error here
//! rather than an authentication failure that reads like a wrong key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Result, VaultError};
use crate::limits::{
    DEK_BYTES, MAX_SEALED_COMPACT_CHARS, MAX_SECRET_BYTES, NONCE_BYTES, TAG_BYTES,
};

const PREFIX_V1: &str = "pawv1";

/// Everything needed to open a secret, given the ring and the AAD. Holds no plaintext, so it
/// may be logged (ids and lengths are all anyone learns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// Which KEK wrapped the data key.
    pub kek_id: String,
    /// The data key encrypted under the KEK (32 bytes + 16-byte tag).
    #[serde(with = "b64")]
    pub wrapped_dek: Vec<u8>,
    /// Nonce of the data-key wrap.
    #[serde(with = "b64_nonce")]
    pub dek_nonce: [u8; NONCE_BYTES],
    /// Nonce of the secret's encryption.
    #[serde(with = "b64_nonce")]
    pub nonce: [u8; NONCE_BYTES],
    /// The secret encrypted under the data key, with its tag.
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// The one-column form (see the module docs).
    pub fn to_compact(&self) -> String {
        [
            PREFIX_V1,
            &self.kek_id,
            &URL_SAFE_NO_PAD.encode(self.dek_nonce),
            &URL_SAFE_NO_PAD.encode(&self.wrapped_dek),
            &URL_SAFE_NO_PAD.encode(self.nonce),
            &URL_SAFE_NO_PAD.encode(&self.ciphertext),
        ]
        .join(":")
    }

    /// Parses [`Sealed::to_compact`]'s output, refusing anything else.
    pub fn from_compact(text: &str) -> Result<Sealed> {
        let bad = |reason| VaultError::EncodingInvalid { reason };
        if text.len() > MAX_SEALED_COMPACT_CHARS {
            return Err(bad("longer than any sealed secret"));
        }
        let parts: Vec<&str> = text.split(':').collect();
        let [prefix, kek_id, dek_nonce, wrapped_dek, nonce, ciphertext] = parts[..] else {
            return Err(bad("expected six ':'-separated fields"));
        };
        if prefix != PREFIX_V1 {
            return Err(bad("unknown version prefix"));
        }
        if kek_id.is_empty() {
            return Err(bad("empty key id"));
        }
        let decode = |field: &str, what| URL_SAFE_NO_PAD.decode(field).map_err(|_| bad(what));
        let sealed = Sealed {
            kek_id: kek_id.to_string(),
            dek_nonce: nonce_from(decode(dek_nonce, "key nonce is not base64url")?)?,
            wrapped_dek: decode(wrapped_dek, "wrapped key is not base64url")?,
            nonce: nonce_from(decode(nonce, "nonce is not base64url")?)?,
            ciphertext: decode(ciphertext, "ciphertext is not base64url")?,
        };
        sealed.check_shape()?;
        Ok(sealed)
    }

    /// Lengths every sealed secret has. Checked on parse and before opening, so a row
    /// deserialised from JSON gets the same checks as one parsed from the compact form.
    pub(crate) fn check_shape(&self) -> Result<()> {
        let bad = |reason| VaultError::EncodingInvalid { reason };
        if self.wrapped_dek.len() != DEK_BYTES + TAG_BYTES {
            return Err(bad("wrapped key has the wrong length"));
        }
        if self.ciphertext.len() <= TAG_BYTES {
            return Err(bad("ciphertext is shorter than a tag and one byte"));
        }
        if self.ciphertext.len() > MAX_SECRET_BYTES + TAG_BYTES {
            return Err(bad("ciphertext is longer than any secret"));
        }
        Ok(())
    }
}

fn nonce_from(bytes: Vec<u8>) -> Result<[u8; NONCE_BYTES]> {
    bytes.try_into().map_err(|_| VaultError::EncodingInvalid {
        reason: "nonce has the wrong length",
    })
}

mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

mod b64_nonce {
    use serde::{Deserializer, Serializer};

    use crate::limits::NONCE_BYTES;

    pub fn serialize<S: Serializer>(bytes: &[u8; NONCE_BYTES], s: S) -> Result<S::Ok, S::Error> {
        super::b64::serialize(bytes, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; NONCE_BYTES], D::Error> {
        super::b64::deserialize(d)?
            .try_into()
            .map_err(|_| serde::de::Error::custom("a nonce is 12 bytes"))
    }
}
