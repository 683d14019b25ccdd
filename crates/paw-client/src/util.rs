//! Small encoding helpers shared by the use cases. A leaf: it uses nothing else in the crate
//! but the error type, so any module may import it without closing a cycle.

use serde::Serialize;

use crate::error::ClientError;

/// Lower-case hex of `b`, as hashes and ids are shown and sent.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A request body as JSON.
pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(v).map_err(|e| ClientError::Internal(format!("encode request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_and_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn encode_is_json() {
        assert_eq!(encode(&serde_json::json!({"a": 1})).unwrap(), br#"{"a":1}"#);
    }
}
