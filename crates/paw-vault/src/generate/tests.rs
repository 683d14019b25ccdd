use super::*;

fn rules() -> PasswordRules {
    PasswordRules::default()
}

fn code_and_reason(r: &PasswordRules) -> (&'static str, String) {
    let err = r.validate().unwrap_err();
    (err.code(), err.to_string())
}

#[test]
fn defaults_are_valid_and_strong() {
    let r = rules();
    assert_eq!(r.length, 24);
    r.validate().unwrap();
    assert_eq!(r.alphabet().unwrap().chars.len(), 26 + 26 + 10 + 27);
    let bits = r.entropy_bits().unwrap();
    assert!((155.0..156.0).contains(&bits), "{bits}");
}

#[test]
fn invalid_rules_name_the_rule() {
    let cases: Vec<(PasswordRules, &str)> = vec![
        (
            PasswordRules {
                length: 7,
                ..rules()
            },
            "length must be 8 to 256, not 7",
        ),
        (
            PasswordRules {
                length: 257,
                ..rules()
            },
            "not 257",
        ),
        (
            PasswordRules {
                lowercase: false,
                uppercase: false,
                digits: false,
                symbols: false,
                ..rules()
            },
            "no character class is enabled",
        ),
        (
            PasswordRules {
                symbols: false,
                symbol_set: Some("-_".into()),
                ..rules()
            },
            "symbol_set is given but symbols is off",
        ),
        (
            PasswordRules {
                symbol_set: Some(String::new()),
                ..rules()
            },
            "symbol_set is empty",
        ),
        (
            PasswordRules {
                symbol_set: Some("-a".into()),
                ..rules()
            },
            "only ASCII punctuation",
        ),
        (
            PasswordRules {
                symbol_set: Some("- ".into()),
                ..rules()
            },
            "only ASCII punctuation",
        ),
        (
            PasswordRules {
                symbol_set: Some("-_-".into()),
                ..rules()
            },
            "lists - twice",
        ),
        (
            PasswordRules {
                forbidden: "0123456789".into(),
                ..rules()
            },
            "every digits character",
        ),
        (
            PasswordRules {
                symbol_set: Some("-_".into()),
                forbidden: "_-".into(),
                ..rules()
            },
            "every symbols character",
        ),
        (
            PasswordRules {
                forbidden: "a\n".into(),
                ..rules()
            },
            "not U+000A",
        ),
        (
            PasswordRules {
                forbidden: "é".into(),
                ..rules()
            },
            "not U+00E9",
        ),
    ];
    for (r, reason) in cases {
        let (code, message) = code_and_reason(&r);
        assert_eq!(code, "vault_rules_invalid", "{r:?}");
        assert!(message.contains(reason), "{message} lacks {reason}");
    }
    // Forbidding everything of a class that is off is harmless.
    PasswordRules {
        digits: false,
        forbidden: "0123456789".into(),
        ..rules()
    }
    .validate()
    .unwrap();
}

#[test]
fn ten_thousand_passwords_obey_the_rules() {
    let r = PasswordRules {
        length: 12,
        symbol_set: Some("-_.".into()),
        forbidden: "O0Il1".into(),
        ..rules()
    };
    let alphabet = r.alphabet().unwrap();
    assert_eq!(alphabet.chars.len(), 26 + 26 + 10 + 3 - 5);
    let mut seen = [false; 256];
    for _ in 0..10_000 {
        let p = generate_password(&r).unwrap();
        let p = p.expose();
        assert_eq!(p.len(), 12);
        for c in p {
            assert!(alphabet.chars.contains(c), "{c}");
            assert!(!b"O0Il1".contains(c));
            seen[usize::from(*c)] = true;
        }
        assert!(p.iter().any(u8::is_ascii_lowercase));
        assert!(p.iter().any(u8::is_ascii_uppercase));
        assert!(p.iter().any(u8::is_ascii_digit));
        assert!(p.iter().any(|c| b"-_.".contains(c)));
    }
    // Every allowed character turned up somewhere in 120,000 draws.
    for c in &alphabet.chars {
        assert!(seen[usize::from(*c)], "{} never drawn", char::from(*c));
    }
}

#[test]
fn single_class_rules_work_without_the_class_check() {
    let r = PasswordRules {
        length: 8,
        lowercase: false,
        uppercase: false,
        symbols: false,
        require_each_class: false,
        ..rules()
    };
    let p = generate_password(&r).unwrap();
    assert_eq!(p.len(), 8);
    assert!(p.expose().iter().all(u8::is_ascii_digit));
}

/// Pearson's statistic of observed counts against a uniform expectation.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&o| (o as f64 - expected).powi(2) / expected)
        .sum()
}

/// 89 characters do not divide 256, so a modulo draw would favour 78 of them by half again.
/// With 88 degrees of freedom the statistic has mean 88 and deviation about 13; 160 is past
/// one in a million for a fair sampler, and a biased one scores over 1,500 (checked below).
const CHI_SQUARE_LIMIT: f64 = 160.0;

#[test]
fn characters_are_uniform() {
    let r = PasswordRules {
        length: 64,
        require_each_class: false,
        ..rules()
    };
    let alphabet = r.alphabet().unwrap();
    let mut counts = vec![0u64; alphabet.chars.len()];
    for _ in 0..2_000 {
        for c in generate_password(&r).unwrap().expose() {
            let i = alphabet.chars.iter().position(|a| a == c).unwrap();
            counts[i] += 1;
        }
    }
    let stat = chi_square(&counts);
    assert!(stat < CHI_SQUARE_LIMIT, "chi-square {stat}");

    // Negative control: the same test on `byte % n` fails.
    let mut biased = vec![0u64; alphabet.chars.len()];
    let mut buf = [0u8; 64];
    for _ in 0..2_000 {
        OsRng.fill_bytes(&mut buf);
        for b in buf {
            biased[usize::from(b) % alphabet.chars.len()] += 1;
        }
    }
    assert!(chi_square(&biased) > 1_000.0, "{}", chi_square(&biased));
}

/// Yields a fixed sequence of bytes, then zeros.
struct Script(Vec<u8>, usize);

impl RngCore for Script {
    fn next_u32(&mut self) -> u32 {
        u32::from(self.next_byte())
    }
    fn next_u64(&mut self) -> u64 {
        u64::from(self.next_byte())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            *d = self.next_byte();
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl Script {
    fn next_byte(&mut self) -> u8 {
        let b = self.0.get(self.1).copied().unwrap_or(0);
        self.1 += 1;
        b
    }
}

#[test]
fn bytes_past_the_last_full_multiple_are_redrawn() {
    let r = PasswordRules {
        length: 8,
        require_each_class: false,
        ..rules()
    };
    let alphabet = r.alphabet().unwrap();
    assert_eq!(alphabet.chars.len(), 89);
    // 256 - 256 % 89 = 178: 178 and 255 are rejected, 177 maps to index 88 and 90 to 1.
    let mut rng = Script(vec![178, 177, 255, 90, 3, 4, 5, 6, 7, 8], 0);
    let p = generate_with(&alphabet, 8, false, &mut rng).unwrap();
    let idx = |i: usize| alphabet.chars[i];
    assert_eq!(
        p.expose(),
        [
            idx(88),
            idx(1),
            idx(3),
            idx(4),
            idx(5),
            idx(6),
            idx(7),
            idx(8)
        ]
    );
}

#[test]
fn rules_that_never_complete_give_up_with_a_clear_error() {
    let alphabet = rules().alphabet().unwrap();
    // All-zero randomness only ever draws 'a', which never holds an uppercase letter.
    let mut rng = Script(Vec::new(), 0);
    let err = generate_with(&alphabet, 8, true, &mut rng).unwrap_err();
    assert_eq!(err.code(), "vault_generation_exhausted");
    assert!(err.to_string().contains("10000 attempts"));
    // Without the class requirement the same randomness is accepted.
    let p = generate_with(&alphabet, 8, false, &mut Script(Vec::new(), 0)).unwrap();
    assert_eq!(p.expose(), b"aaaaaaaa");
}

#[test]
fn rules_round_trip_through_toml_with_defaults() {
    let r: PasswordRules = toml::from_str("length = 32\nsymbol_set = \"-_\"\n").unwrap();
    assert_eq!(r.length, 32);
    assert_eq!(r.symbol_set.as_deref(), Some("-_"));
    assert!(r.lowercase && r.require_each_class);
    assert!(toml::from_str::<PasswordRules>("lenght = 32").is_err());
}
