//! New secrets for rotation: passwords by an account's rules, and Ed25519 SSH keys.
//!
//! Randomness comes only from the operating system (`OsRng`). A password character is one
//! random byte mapped onto the alphabet by rejection sampling: bytes at or above the largest
//! multiple of the alphabet size are drawn again, so every character is exactly equally
//! likely (a plain `byte % n` would favour the first `256 % n` characters). When every class
//! must appear, a password without one is thrown away whole and drawn again, which keeps the
//! result uniform over the passwords the rules allow.

mod rules;
mod ssh;

pub use rules::{PasswordRules, DEFAULT_SYMBOLS};
pub use ssh::generate_ssh_key;

use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Result, VaultError};
use crate::limits::MAX_GENERATION_ATTEMPTS;
use crate::SecretBytes;
use rules::Alphabet;

/// A fresh password obeying `rules` (which are validated first).
pub fn generate_password(rules: &PasswordRules) -> Result<SecretBytes> {
    let alphabet = rules.alphabet()?;
    generate_with(
        &alphabet,
        rules.length,
        rules.require_each_class,
        &mut OsRng,
    )
}

fn generate_with(
    alphabet: &Alphabet,
    length: usize,
    require_each_class: bool,
    rng: &mut impl RngCore,
) -> Result<SecretBytes> {
    let mut sampler = Sampler::new(&alphabet.chars, rng);
    let mut password = Zeroizing::new(Vec::with_capacity(length));
    for _ in 0..MAX_GENERATION_ATTEMPTS {
        password.zeroize();
        for _ in 0..length {
            password.push(sampler.next()?);
        }
        let complete = !require_each_class
            || alphabet
                .classes
                .iter()
                .all(|(_, class)| password.iter().any(|c| class.contains(c)));
        if complete {
            return Ok(SecretBytes::new(std::mem::take(&mut *password)));
        }
    }
    Err(VaultError::GenerationExhausted {
        attempts: MAX_GENERATION_ATTEMPTS,
    })
}

/// Uniform draws from an alphabet of at most 256 characters, one random byte per try.
struct Sampler<'a, R: RngCore> {
    chars: &'a [u8],
    /// The largest multiple of `chars.len()` that is ≤ 256: bytes below it are accepted.
    zone: usize,
    rng: &'a mut R,
    /// Random bytes are fetched in blocks to spare system calls, and wiped like the password
    /// they become.
    buf: Zeroizing<[u8; 64]>,
    pos: usize,
}

impl<'a, R: RngCore> Sampler<'a, R> {
    fn new(chars: &'a [u8], rng: &'a mut R) -> Self {
        let n = chars.len().max(1);
        Sampler {
            chars,
            zone: 256 - 256 % n,
            rng,
            buf: Zeroizing::new([0; 64]),
            pos: 64,
        }
    }

    fn next(&mut self) -> Result<u8> {
        loop {
            if self.pos == self.buf.len() {
                self.rng
                    .try_fill_bytes(&mut self.buf[..])
                    .map_err(|_| VaultError::Randomness)?;
                self.pos = 0;
            }
            let byte = usize::from(self.buf[self.pos]);
            self.pos += 1;
            if byte < self.zone {
                if let Some(c) = self.chars.get(byte % self.chars.len()) {
                    return Ok(*c);
                }
                // Only an empty alphabet gets here, and validation refuses those.
                return Err(VaultError::RulesInvalid {
                    reason: "the alphabet is empty".into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
