//! Leak scans (cases C4, C7, H1, H3, L1): search every place a secret could land — files,
//! logs, API answers, process memory — for it in every form a leak would take. The search is
//! on bytes, not text: a database page, a WAL frame or a memory dump is not UTF-8, and a
//! secret's raw bytes are as much a leak as its base64.
//!
//! A scan that finds nothing means something only if it would have found a leak, so callers
//! plant a secret in a copy of a scanned place ([`Places::planted`]) and check that the same
//! scan reports it there.
//!
//! Failure messages name a secret and an encoding, never the secret's value: a test's output
//! is a log too.
//!
//! Depends on `std` and `base64` only, so the desktop e2e crate includes this same file
//! (`#[path]`) instead of keeping a second copy.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

/// One form of a secret: `what` names it (secret and encoding) in reports.
#[derive(Clone)]
pub struct Needle {
    pub what: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Needle {
    // The bytes are the secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Needle({}, {} bytes)", self.what, self.bytes.len())
    }
}

/// `text` as it is (a password, a URL, a PEM block, a token).
pub fn text(name: &str, text: &str) -> Needle {
    Needle {
        what: format!("{name} (text)"),
        bytes: text.as_bytes().to_vec(),
    }
}

/// `text` as UTF-16LE: how WebKit keeps `localStorage` values on disk and how JavaScript holds
/// strings with characters past Latin-1.
pub fn utf16le(name: &str, text: &str) -> Needle {
    Needle {
        what: format!("{name} (UTF-16LE)"),
        bytes: text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
    }
}

/// The forms raw key bytes take when they leak: the bytes themselves, hex in either case, and
/// base64 in both alphabets with and without padding.
pub fn encodings(name: &str, raw: &[u8]) -> Vec<Needle> {
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = vec![
        Needle {
            what: format!("{name} (raw bytes)"),
            bytes: raw.to_vec(),
        },
        Needle {
            what: format!("{name} (hex)"),
            bytes: hex.clone().into_bytes(),
        },
        Needle {
            what: format!("{name} (HEX)"),
            bytes: hex.to_ascii_uppercase().into_bytes(),
        },
    ];
    for (form, s) in [
        ("base64", STANDARD.encode(raw)),
        ("base64, no padding", STANDARD_NO_PAD.encode(raw)),
        ("base64url", URL_SAFE.encode(raw)),
        ("base64url, no padding", URL_SAFE_NO_PAD.encode(raw)),
    ] {
        // Without padding the forms of a 32-byte key differ from the padded ones by the `=`
        // alone; both are kept because a substring search for the longer misses the shorter.
        if !out.iter().any(|n| n.bytes == s.as_bytes()) {
            out.push(Needle {
                what: format!("{name} ({form})"),
                bytes: s.into_bytes(),
            });
        }
    }
    out
}

/// The places a scan searches, each a name and its bytes.
#[derive(Clone, Default)]
pub struct Places {
    places: Vec<(String, Vec<u8>)>,
}

impl Places {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.places.push((name.into(), bytes.into()));
    }

    /// All of `other`'s places too.
    pub fn extend(&mut self, other: &Places) {
        self.places.extend(other.places.iter().cloned());
    }

    /// Every file under `dir` (recursively) for which `skip` is false, named by its path.
    /// Returns the files read. A file that vanishes meanwhile (a WAL checkpointed away) is
    /// skipped; one that cannot be read otherwise fails the scan.
    pub fn add_tree(&mut self, dir: &Path, skip: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
        let mut read = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            let entries =
                std::fs::read_dir(&d).unwrap_or_else(|e| panic!("listing {}: {e}", d.display()));
            for e in entries {
                let p = e
                    .unwrap_or_else(|e| panic!("listing {}: {e}", d.display()))
                    .path();
                if p.is_dir() {
                    todo.push(p);
                } else if !skip(&p) {
                    match std::fs::read(&p) {
                        Ok(bytes) => {
                            self.add(p.display().to_string(), bytes);
                            read.push(p);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => panic!("reading {}: {e}", p.display()),
                    }
                }
            }
        }
        read.sort();
        read
    }

    /// The bytes of place `name`.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.places
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// The places' names, in the order they were added.
    pub fn names(&self) -> Vec<&str> {
        self.places.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn len(&self) -> usize {
        self.places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// How many bytes the scan searches.
    pub fn total_bytes(&self) -> usize {
        self.places.iter().map(|(_, b)| b.len()).sum()
    }

    /// The names of the places holding `needle`.
    pub fn find(&self, needle: &[u8]) -> Vec<String> {
        self.places
            .iter()
            .filter(|(_, hay)| contains(hay, needle))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Every needle found, as "WHAT in PLACE" (never the value).
    pub fn leaks(&self, needles: &[Needle]) -> Vec<String> {
        needles
            .iter()
            .flat_map(|n| {
                self.find(&n.bytes)
                    .into_iter()
                    .map(move |p| format!("{} in {p}", n.what))
            })
            .collect()
    }

    /// A copy with `bytes` written into the middle of place `name` (a negative control: the
    /// secret planted where a leak would put it, surrounded by what is really there).
    pub fn planted(&self, name: &str, bytes: &[u8]) -> Places {
        let mut copy = self.clone();
        let (_, hay) = copy
            .places
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no place named {name}"));
        let mid = hay.len() / 2;
        hay.splice(mid..mid, bytes.iter().copied());
        copy
    }
}

/// Whether `needle` occurs in `hay`. An empty needle is a test bug, not a match.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    assert!(!needle.is_empty(), "an empty needle matches everything");
    let (first, rest) = (needle[0], &needle[1..]);
    // Candidates by the first byte, then a comparison: fast enough for the megabytes of a
    // database or a process's heap in a debug build.
    let last_start = match hay.len().checked_sub(needle.len()) {
        Some(n) => n,
        None => return false,
    };
    let mut i = 0;
    while i <= last_start {
        match hay[i..=last_start].iter().position(|&b| b == first) {
            Some(off) => {
                let at = i + off;
                if &hay[at + 1..at + needle.len()] == rest {
                    return true;
                }
                i = at + 1;
            }
            None => return false,
        }
    }
    false
}

/// What [`process_memory`] read.
#[derive(Debug, Default)]
pub struct MemoryRead {
    pub regions: usize,
    pub bytes: usize,
    /// Readable regions whose read failed (`[vvar]`, a mapping gone meanwhile).
    pub unreadable: usize,
}

/// Process `pid`'s memory (root reads `/proc/PID/mem`), one place per region named
/// `"LABEL START-END PATH"`: every readable region but read-only mappings of a file (shared
/// libraries, fonts, locale data), whose bytes are the file's, not the process's. Only pages
/// `/proc/PID/pagemap` says are in memory or swapped out are read, concatenated: WebKit
/// reserves tens of GiB it never touches, and reading those would fault them in.
pub fn process_memory(pid: u32, label: &str, into: &mut Places) -> std::io::Result<MemoryRead> {
    use std::io::{Read, Seek, SeekFrom};
    const PAGE: u64 = 4096;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem"))?;
    let mut pagemap = std::fs::File::open(format!("/proc/{pid}/pagemap"))?;
    let mut read = MemoryRead::default();
    for line in maps.lines() {
        // start-end perms offset dev inode [path]
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let path = f.nth(3).unwrap_or("");
        let file_backed = path.starts_with('/');
        if !perms.starts_with('r') || (file_backed && !perms[1..].starts_with('w')) {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        // Runs of pages that are present (bit 63) or swapped (bit 62).
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut page = start / PAGE;
        let last = end / PAGE;
        let mut entries = vec![0u8; 8 * 65536];
        let mut ok = pagemap.seek(SeekFrom::Start(page * 8)).is_ok();
        while ok && page < last {
            let n = ((last - page) as usize).min(65536);
            ok = pagemap.read_exact(&mut entries[..n * 8]).is_ok();
            for (i, e) in entries[..n * 8].chunks_exact(8).enumerate() {
                let e = u64::from_le_bytes(e.try_into().unwrap_or_default());
                if e >> 62 != 0 {
                    let at = (page + i as u64) * PAGE;
                    match runs.last_mut() {
                        Some((_, end)) if *end == at => *end += PAGE,
                        _ => runs.push((at, at + PAGE)),
                    }
                }
            }
            page += n as u64;
        }
        let mut buf = Vec::new();
        for (a, b) in runs {
            let mut chunk = vec![0u8; (b - a) as usize];
            if mem.seek(SeekFrom::Start(a)).is_ok() && mem.read_exact(&mut chunk).is_ok() {
                buf.extend_from_slice(&chunk);
            } else {
                ok = false;
            }
        }
        if !ok {
            read.unreadable += 1;
        }
        if !buf.is_empty() {
            read.regions += 1;
            read.bytes += buf.len();
            into.add(format!("{label} {range} {path}"), buf);
        }
    }
    Ok(read)
}

/// The base64url strings of `len` characters in `hay` whose SHA-256 (by `sha256`) is one of
/// `hashes`: finds a one-time credential the broker knows by its hash only (it stores no other
/// form), wherever it lies, also as UTF-16LE (a zero byte after each character). Returns the
/// indexes of the hashes found.
pub fn by_hash(
    hay: &[u8],
    len: usize,
    hashes: &[[u8; 32]],
    sha256: &dyn Fn(&[u8]) -> [u8; 32],
) -> Vec<usize> {
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut found = Vec::new();
    let mut look = |chars: &[u8]| {
        if chars.len() >= len {
            for w in chars.windows(len) {
                let h = sha256(w);
                if let Some(i) = hashes.iter().position(|x| *x == h) {
                    if !found.contains(&i) {
                        found.push(i);
                    }
                }
            }
        }
    };
    // Runs of the alphabet: as bytes, then as UTF-16LE code units at either alignment.
    for (step, phase) in [(1usize, 0usize), (2, 0), (2, 1)] {
        let mut run: Vec<u8> = Vec::new();
        let mut i = phase;
        while i < hay.len() {
            let b = hay[i];
            let wide_ok = step == 1 || hay.get(i + 1) == Some(&0);
            if alphabet(b) && wide_ok {
                run.push(b);
            } else {
                look(&run);
                run.clear();
            }
            i += step;
        }
        look(&run);
    }
    found
}
