use super::*;
use crate::limits::{MAX_SEALED_COMPACT_CHARS, TAG_BYTES};

const SECRET: &[u8] = b"Tr0ub4dor&3-root-on-the-appliance";

fn kek(id: &str, byte: u8) -> Kek {
    Kek::from_bytes(id, &[byte; 32]).unwrap()
}

fn ring() -> KekRing {
    KekRing::single(kek("kek-2026-12", 7))
}

fn secret() -> SecretBytes {
    SecretBytes::from_slice(SECRET)
}

fn aad() -> Vec<u8> {
    account_aad("acct-42", 3)
}

#[test]
fn l5_round_trip_returns_the_plaintext() {
    let ring = ring();
    let sealed = seal(&ring, &secret(), &aad()).unwrap();
    assert_eq!(sealed.kek_id, "kek-2026-12");
    assert_eq!(sealed.wrapped_dek.len(), DEK_BYTES + TAG_BYTES);
    assert_eq!(sealed.ciphertext.len(), SECRET.len() + TAG_BYTES);
    assert!(!sealed.ciphertext.windows(SECRET.len()).any(|w| w == SECRET));
    assert_eq!(open(&ring, &sealed, &aad()).unwrap().expose(), SECRET);
}

#[test]
fn each_seal_has_its_own_data_key_and_nonces() {
    let ring = ring();
    let a = seal(&ring, &secret(), &aad()).unwrap();
    let b = seal(&ring, &secret(), &aad()).unwrap();
    assert_ne!(a.wrapped_dek, b.wrapped_dek);
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.dek_nonce, b.dek_nonce);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn l5_wrong_aad_fails_closed() {
    let ring = ring();
    let sealed = seal(&ring, &secret(), &aad()).unwrap();
    for other in [
        account_aad("acct-43", 3),
        account_aad("acct-42", 2),
        account_aad("acct-42", 4),
        Vec::new(),
    ] {
        let err = open(&ring, &sealed, &other).unwrap_err();
        assert_eq!(err.code(), "vault_open_failed");
    }
}

#[test]
fn l5_every_flipped_bit_fails_closed() {
    let ring = ring();
    let sealed = seal(&ring, &secret(), &aad()).unwrap();
    let mut variants = Vec::new();
    for i in 0..sealed.wrapped_dek.len() {
        let mut s = sealed.clone();
        s.wrapped_dek[i] ^= 0x01;
        variants.push(s);
    }
    for i in 0..NONCE_BYTES {
        let mut s = sealed.clone();
        s.dek_nonce[i] ^= 0x80;
        variants.push(s);
        let mut s = sealed.clone();
        s.nonce[i] ^= 0x80;
        variants.push(s);
    }
    for i in 0..sealed.ciphertext.len() {
        let mut s = sealed.clone();
        s.ciphertext[i] ^= 0x01;
        variants.push(s);
    }
    assert_eq!(
        variants.len(),
        (DEK_BYTES + TAG_BYTES) + 2 * NONCE_BYTES + SECRET.len() + TAG_BYTES
    );
    for s in variants {
        assert!(matches!(
            open(&ring, &s, &aad()),
            Err(VaultError::OpenFailed)
        ));
    }
}

#[test]
fn l5_unknown_or_wrong_kek_fails_closed() {
    let sealed = seal(&ring(), &secret(), &aad()).unwrap();

    let elsewhere = KekRing::single(kek("kek-other", 7));
    let err = open(&elsewhere, &sealed, &aad()).unwrap_err();
    assert_eq!(err.code(), "vault_kek_unknown");
    assert!(err.to_string().contains("kek-2026-12"));

    // Same id, different bytes: a mix-up of key files, not a missing key.
    let impostor = KekRing::single(kek("kek-2026-12", 8));
    let err = open(&impostor, &sealed, &aad()).unwrap_err();
    assert_eq!(err.code(), "vault_open_failed");

    // A row relabelled to another key of the ring.
    let both = KekRing::new(kek("kek-2026-12", 7), vec![kek("kek-old", 9)]).unwrap();
    let mut relabelled = sealed.clone();
    relabelled.kek_id = "kek-old".into();
    assert!(matches!(
        open(&both, &relabelled, &aad()),
        Err(VaultError::OpenFailed)
    ));
}

#[test]
fn l5_rewrap_moves_to_the_new_kek_without_touching_the_ciphertext() {
    let old_ring = KekRing::single(kek("kek-2026-06", 1));
    let sealed = seal(&old_ring, &secret(), &aad()).unwrap();

    let rotating = KekRing::new(kek("kek-2026-12", 2), vec![kek("kek-2026-06", 1)]).unwrap();
    assert!(needs_rewrap(&rotating, &sealed));
    // During the rotation both the old and the re-wrapped row open.
    assert_eq!(open(&rotating, &sealed, &aad()).unwrap().expose(), SECRET);
    let rewrapped = rewrap(&rotating, &sealed).unwrap();
    assert_eq!(rewrapped.kek_id, "kek-2026-12");
    assert_eq!(rewrapped.nonce, sealed.nonce);
    assert_eq!(rewrapped.ciphertext, sealed.ciphertext);
    assert_ne!(rewrapped.wrapped_dek, sealed.wrapped_dek);
    assert!(!needs_rewrap(&rotating, &rewrapped));

    // The retired key leaves the ring: the re-wrapped row still opens, the old one cannot.
    let new_ring = KekRing::single(kek("kek-2026-12", 2));
    assert_eq!(
        open(&new_ring, &rewrapped, &aad()).unwrap().expose(),
        SECRET
    );
    assert_eq!(
        open(&new_ring, &sealed, &aad()).unwrap_err().code(),
        "vault_kek_unknown"
    );
    // The AAD binding survives the rewrap.
    assert_eq!(
        open(&new_ring, &rewrapped, &account_aad("acct-43", 3))
            .unwrap_err()
            .code(),
        "vault_open_failed"
    );
}

#[test]
fn sizes_are_bounded() {
    let ring = ring();
    for bad in [0, MAX_SECRET_BYTES + 1] {
        let err = seal(&ring, &SecretBytes::new(vec![b'x'; bad]), &aad()).unwrap_err();
        assert_eq!(err.code(), "vault_secret_size");
    }
    let big = SecretBytes::new(vec![b'x'; MAX_SECRET_BYTES]);
    let sealed = seal(&ring, &big, &aad()).unwrap();
    assert_eq!(
        open(&ring, &sealed, &aad()).unwrap().len(),
        MAX_SECRET_BYTES
    );
    // The compact form of the largest secret fits the parser's bound.
    let compact = sealed.to_compact();
    assert_eq!(Sealed::from_compact(&compact).unwrap(), sealed);
}

#[test]
fn compact_form_round_trips_and_refuses_anything_else() {
    let ring = ring();
    let sealed = seal(&ring, &secret(), &aad()).unwrap();
    let compact = sealed.to_compact();
    assert!(compact.starts_with("pawv1:kek-2026-12:"), "{compact}");
    assert_eq!(compact.split(':').count(), 6);
    let parsed = Sealed::from_compact(&compact).unwrap();
    assert_eq!(parsed, sealed);
    assert_eq!(open(&ring, &parsed, &aad()).unwrap().expose(), SECRET);

    let fields: Vec<&str> = compact.split(':').collect();
    let with = |i: usize, v: &str| {
        let mut f = fields.clone();
        f[i] = v;
        f.join(":")
    };
    // 20 base64 characters are 15 bytes: less than a tag.
    let short_ct = &fields[5][..20];
    let bad = [
        with(0, "pawv2"),
        with(1, ""),
        with(2, "AAAA"),
        with(3, "AAAA"),
        with(4, "!!!"),
        with(5, short_ct),
        fields[..5].join(":"),
        format!("{compact}:extra"),
        "x".repeat(MAX_SEALED_COMPACT_CHARS + 1),
    ];
    for text in bad {
        let err = Sealed::from_compact(&text).unwrap_err();
        assert_eq!(err.code(), "vault_encoding_invalid", "{text}");
    }
    // A truncation that still looks like a ciphertext parses, and then fails to open.
    let truncated = Sealed::from_compact(&with(5, &fields[5][..40])).unwrap();
    assert_eq!(
        open(&ring, &truncated, &aad()).unwrap_err().code(),
        "vault_open_failed"
    );
}

#[test]
fn json_form_round_trips_with_base64_fields() {
    let sealed = seal(&ring(), &secret(), &aad()).unwrap();
    let json = serde_json::to_value(&sealed).unwrap();
    assert_eq!(json["kek_id"], "kek-2026-12");
    assert!(json["nonce"].is_string());
    assert_eq!(json.as_object().unwrap().len(), 5);
    let back: Sealed = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, sealed);

    let mut extra = json.clone();
    extra["plaintext"] = "oops".into();
    assert!(serde_json::from_value::<Sealed>(extra).is_err());
    let mut short = json;
    short["nonce"] = "AAAA".into();
    assert!(serde_json::from_value::<Sealed>(short).is_err());
}

#[test]
fn account_aad_is_unambiguous() {
    assert_ne!(account_aad("a1", 2), account_aad("a", 12));
    assert_ne!(account_aad("acct", 1), account_aad("acct", 256));
    let aad = account_aad("ab", 1);
    assert_eq!(
        aad,
        [
            b"account:".as_slice(),
            &[0, 0, 0, 0, 0, 0, 0, 2],
            b"ab",
            &[0, 0, 0, 0, 0, 0, 0, 1]
        ]
        .concat()
    );
}

#[test]
fn kek_debug_is_redacted() {
    let k = kek("kek-2026-12", 0xab);
    let shown = format!("{k:?} {:?}", KekRing::single(kek("kek-x", 0xab)));
    assert!(shown.contains("kek-2026-12"));
    assert!(shown.contains("<redacted>"));
    assert!(!shown.contains("abab"), "{shown}");
    assert!(!shown.contains("171"), "{shown}");
}

#[test]
fn kek_decodes_hex_and_base64_and_nothing_else() {
    let hex_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let from_hex = Kek::from_encoded("k", &format!("  {hex_key}\n")).unwrap();
    assert_eq!(from_hex.key()[..4], [0x00, 0x11, 0x22, 0x33]);
    assert_eq!(from_hex.to_hex().expose(), hex_key.as_bytes());

    let b64 = "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=";
    assert_eq!(Kek::from_encoded("k", b64).unwrap().key(), from_hex.key());
    let no_pad = b64.trim_end_matches('=');
    assert_eq!(
        Kek::from_encoded("k", no_pad).unwrap().key(),
        from_hex.key()
    );

    for bad in [
        &hex_key[..62],                                                     // 31 bytes of hex
        "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", // 64 non-hex
        "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7g==",                     // base64 of 31 bytes
        "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8AAQ==",                 // base64 of 34 bytes
        "",
    ] {
        let err = Kek::from_encoded("k", bad).unwrap_err();
        assert_eq!(err.code(), "vault_kek_invalid", "{bad}");
    }
    assert_eq!(
        Kek::from_bytes("k", &[1; 31]).unwrap_err().code(),
        "vault_kek_invalid"
    );
}

#[test]
fn kek_ids_are_plain_labels_and_unique_in_a_ring() {
    for bad in ["", "has:colon", "has space", &"k".repeat(65)] {
        let err = Kek::from_bytes(bad, &[1; 32]).unwrap_err();
        assert_eq!(err.code(), "vault_kek_id_invalid", "{bad:?}");
    }
    assert!(Kek::from_bytes("kek-2026.12_a", &[1; 32]).is_ok());
    let err = KekRing::new(kek("a", 1), vec![kek("b", 2), kek("a", 3)]).unwrap_err();
    assert_eq!(err.code(), "vault_kek_duplicate");
    let ring = KekRing::new(kek("a", 1), vec![kek("b", 2)]).unwrap();
    assert_eq!(ring.get("b").map(Kek::id), Some("b"));
    assert!(ring.get("c").is_none());
}

#[test]
fn kek_from_environment_value() {
    let var = "PAW_VAULT_TEST_KEK_7F3A";
    std::env::set_var(var, "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=\n");
    let k = Kek::from_env("kek-env", var).unwrap();
    assert_eq!(k.key()[1], 0x11);
    std::env::remove_var(var);
    let err = Kek::from_env("kek-env", var).unwrap_err();
    assert_eq!(err.code(), "vault_kek_env_missing");
    assert!(err.to_string().contains(var));
}

#[cfg(unix)]
#[test]
fn kek_file_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek");
    let generated = Kek::generate("kek-file").unwrap();
    std::fs::write(&path, generated.to_hex().expose()).unwrap();

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let loaded = Kek::from_file("kek-file", &path).unwrap();
    assert_eq!(loaded.key(), generated.key());

    for mode in [0o640, 0o604, 0o644] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = Kek::from_file("kek-file", &path).unwrap_err();
        assert_eq!(err.code(), "vault_kek_file_permissions");
        assert!(err.to_string().contains(&format!("{mode:o}")), "{err}");
    }

    let missing = Kek::from_file("kek-file", &dir.path().join("nope")).unwrap_err();
    assert_eq!(missing.code(), "vault_kek_file_unreadable");

    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let not_file = Kek::from_file("kek-file", dir.path()).unwrap_err();
    assert_eq!(not_file.code(), "vault_kek_file_unreadable");
}
