//! Workstation settings: where the broker is and which CA pins its certificate.
//!
//! Stored as JSON in the app's config directory. They hold no secret (the CA is public), so a
//! plain file is right here; tokens and keys live only in the OS keyring.

use std::io::Write;
use std::path::{Path, PathBuf};

use paw_proto::ipc::{
    CaInfo, SettingsInput, SettingsView, MAX_FALLBACK_BROKERS, MAX_PATH_LEN, MAX_URL_LEN,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ClientError;

const FILE: &str = "settings.json";
/// A CA bundle is a few KiB; refuse to slurp anything large from a mistyped path.
const MAX_CA_FILE: u64 = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settings {
    Unconfigured,
    Configured {
        broker_url: String,
        /// Brokers of the same deployment to move to when the one in use is unreachable.
        fallback_urls: Vec<String>,
        ca_path: PathBuf,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    broker_url: String,
    /// Absent in files written before the app knew several brokers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    fallback_urls: Vec<String>,
    ca_path: PathBuf,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ClientError {
    ClientError::InvalidSettings {
        field,
        reason: reason.into(),
    }
}

impl Settings {
    /// Validates user input. All fields empty means "forget the broker".
    pub fn validate(input: SettingsInput) -> Result<Self, ClientError> {
        let url = input.broker_url.trim();
        let ca = input.ca_path.trim();
        let fallbacks: Vec<&str> = input
            .fallback_urls
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
            .collect();
        if url.is_empty() && ca.is_empty() && fallbacks.is_empty() {
            return Ok(Self::Unconfigured);
        }
        let broker_url = validate_broker_url(url)?;
        if fallbacks.len() > MAX_FALLBACK_BROKERS {
            return Err(invalid(
                "fallback_urls",
                format!("list at most {MAX_FALLBACK_BROKERS} other brokers"),
            ));
        }
        let mut fallback_urls: Vec<String> = Vec::with_capacity(fallbacks.len());
        for raw in fallbacks {
            let u = validate_url("fallback_urls", raw)?;
            if u == broker_url || fallback_urls.contains(&u) {
                return Err(invalid("fallback_urls", format!("{u} is listed twice")));
            }
            fallback_urls.push(u);
        }
        if ca.is_empty() {
            return Err(invalid(
                "ca_path",
                "the broker's CA certificate is required",
            ));
        }
        if ca.len() > MAX_PATH_LEN || ca.chars().any(char::is_control) {
            return Err(invalid("ca_path", "not a usable file path"));
        }
        let ca_path = PathBuf::from(ca);
        if !ca_path.is_absolute() {
            return Err(invalid("ca_path", "use an absolute path"));
        }
        load_ca(&ca_path)?;
        Ok(Self::Configured {
            broker_url,
            fallback_urls,
            ca_path,
        })
    }

    /// The primary broker's URL: the name of the deployment the tokens and the witness pin
    /// belong to, whichever of its brokers is in use.
    pub fn broker_url(&self) -> Option<&str> {
        match self {
            Self::Configured { broker_url, .. } => Some(broker_url),
            Self::Unconfigured => None,
        }
    }

    /// Every configured broker URL, the primary first.
    pub fn broker_urls(&self) -> Vec<String> {
        match self {
            Self::Configured {
                broker_url,
                fallback_urls,
                ..
            } => std::iter::once(broker_url)
                .chain(fallback_urls)
                .cloned()
                .collect(),
            Self::Unconfigured => Vec::new(),
        }
    }

    pub fn view(&self) -> Result<SettingsView, ClientError> {
        Ok(match self {
            Self::Unconfigured => SettingsView {
                broker_url: String::new(),
                fallback_urls: Vec::new(),
                ca_path: String::new(),
                ca: None,
            },
            Self::Configured {
                broker_url,
                fallback_urls,
                ca_path,
            } => SettingsView {
                broker_url: broker_url.clone(),
                fallback_urls: fallback_urls.clone(),
                ca_path: ca_path.display().to_string(),
                // A CA file removed after saving shows as "no CA" rather than failing the page.
                ca: load_ca(ca_path).ok().map(|c| c.info),
            },
        })
    }
}

/// `https://host[:port]` with nothing else: a path, query or credentials in the base URL would
/// change where requests go in ways the user does not see.
fn validate_broker_url(raw: &str) -> Result<String, ClientError> {
    validate_url("broker_url", raw)
}

fn validate_url(field: &'static str, raw: &str) -> Result<String, ClientError> {
    if raw.len() > MAX_URL_LEN || raw.chars().any(char::is_control) {
        return Err(invalid(field, "not a usable URL"));
    }
    let u = url::Url::parse(raw).map_err(|e| invalid(field, format!("not a URL: {e}")))?;
    if u.scheme() != "https" {
        return Err(invalid(field, "the broker is reached over https:// only"));
    }
    let Some(host) = u.host_str().filter(|h| !h.is_empty()) else {
        return Err(invalid(field, "a host is required"));
    };
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid(field, "credentials do not belong in the URL"));
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
        return Err(invalid(
            field,
            "give only https://host[:port], without a path",
        ));
    }
    Ok(match u.port() {
        Some(p) => format!("https://{host}:{p}"),
        None => format!("https://{host}"),
    })
}

/// A parsed, validated CA certificate.
pub struct LoadedCa {
    pub der: Vec<u8>,
    pub info: CaInfo,
}

/// Reads the PEM file at `path` and checks it holds exactly one CA certificate.
pub fn load_ca(path: &Path) -> Result<LoadedCa, ClientError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| invalid("ca_path", format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() || meta.len() > MAX_CA_FILE {
        return Err(invalid("ca_path", "not a PEM certificate file"));
    }
    let pem = std::fs::read(path)
        .map_err(|e| invalid("ca_path", format!("cannot read {}: {e}", path.display())))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|_| invalid("ca_path", "not a PEM certificate file"))?;
    let [cert] = certs.as_slice() else {
        return Err(invalid(
            "ca_path",
            format!("expected exactly one certificate, found {}", certs.len()),
        ));
    };
    let der = cert.as_ref().to_vec();
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| invalid("ca_path", "the certificate does not parse"))?;
    if !parsed.is_ca() {
        return Err(invalid(
            "ca_path",
            "this certificate is not a CA certificate",
        ));
    }
    let not_after = parsed
        .validity()
        .not_after
        .to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid("ca_path", "the certificate's expiry is out of range"))?;
    let info = CaInfo {
        subject: parsed.subject().to_string(),
        fingerprint_sha256: fingerprint(&der),
        not_after,
    };
    Ok(LoadedCa { der, info })
}

/// `AB:CD:…` over the DER bytes, the form admins compare by eye.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads and writes the settings file.
pub struct SettingsStore {
    dir: PathBuf,
}

impl SettingsStore {
    pub fn new(dir: PathBuf) -> Result<Self, ClientError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| ClientError::Storage(format!("create {}: {e}", dir.display())))?;
        Ok(Self { dir })
    }

    pub fn load(&self) -> Result<Settings, ClientError> {
        let path = self.dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Settings::Unconfigured)
            }
            Err(e) => {
                return Err(ClientError::Storage(format!(
                    "read {}: {e}",
                    path.display()
                )))
            }
        };
        let Ok(d) = serde_json::from_slice::<OnDisk>(&bytes) else {
            // A corrupt file must not brick the app; the user re-enters two values.
            tracing::warn!(path = %path.display(), "settings file unreadable; starting unconfigured");
            return Ok(Settings::Unconfigured);
        };
        Ok(Settings::Configured {
            broker_url: d.broker_url,
            fallback_urls: d.fallback_urls,
            ca_path: d.ca_path,
        })
    }

    /// Atomic replace: a crash leaves either the old or the new file, never a torn one.
    pub fn save(&self, s: &Settings) -> Result<(), ClientError> {
        let path = self.dir.join(FILE);
        let storage = |e: std::io::Error| ClientError::Storage(format!("{}: {e}", path.display()));
        let Settings::Configured {
            broker_url,
            fallback_urls,
            ca_path,
        } = s
        else {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(storage(e)),
                _ => Ok(()),
            };
        };
        let body = serde_json::to_vec_pretty(&OnDisk {
            broker_url: broker_url.clone(),
            fallback_urls: fallback_urls.clone(),
            ca_path: ca_path.clone(),
        })
        .map_err(|e| ClientError::Storage(e.to_string()))?;
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(storage)?;
        f.write_all(&body).map_err(storage)?;
        f.sync_all().map_err(storage)?;
        std::fs::rename(&tmp, &path).map_err(storage)?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(storage)?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn write_ca(dir: &Path) -> (PathBuf, rcgen::CertifiedKey) {
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "paw test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, cert.pem()).unwrap();
        (
            path,
            rcgen::CertifiedKey {
                cert,
                key_pair: key,
            },
        )
    }

    fn input(url: &str, ca: &Path) -> SettingsInput {
        SettingsInput {
            broker_url: url.into(),
            fallback_urls: Vec::new(),
            ca_path: ca.display().to_string(),
        }
    }

    #[test]
    fn fallback_brokers_are_checked_like_the_primary_and_kept_in_order() {
        let d = tempfile::tempdir().unwrap();
        let (ca, _) = write_ca(d.path());
        let with = |list: &[&str]| SettingsInput {
            fallback_urls: list.iter().map(|s| (*s).to_owned()).collect(),
            ..input("https://a.example:8443", &ca)
        };
        let ok = Settings::validate(with(&[
            " https://c.example/ ",
            "",
            "https://b.example:8443",
        ]))
        .unwrap();
        assert_eq!(
            ok.broker_urls(),
            [
                "https://a.example:8443",
                "https://c.example",
                "https://b.example:8443"
            ]
        );
        let too_many: Vec<String> = (0..=MAX_FALLBACK_BROKERS)
            .map(|i| format!("https://b{i}.example"))
            .collect();
        let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
        for bad in [
            vec!["http://b.example"],
            vec!["https://b.example/api"],
            vec!["https://a.example:8443"],
            vec!["https://b.example", "https://b.example/"],
            too_many,
        ] {
            let e = Settings::validate(with(&bad)).unwrap_err();
            assert!(e.to_string().starts_with("fallback_urls:"), "{bad:?}: {e}");
        }
        // Saved and read back whole; a file from before the list reads as no fallbacks.
        let store = SettingsStore::new(d.path().join("cfg")).unwrap();
        store.save(&ok).unwrap();
        assert_eq!(store.load().unwrap(), ok);
        std::fs::write(
            d.path().join("cfg/settings.json"),
            format!(
                r#"{{"broker_url": "https://a.example", "ca_path": {:?}}}"#,
                ca.display().to_string()
            ),
        )
        .unwrap();
        assert_eq!(
            store.load().unwrap().broker_urls(),
            ["https://a.example".to_owned()]
        );
    }

    #[test]
    fn broker_url_must_be_plain_https_origin() {
        let d = tempfile::tempdir().unwrap();
        let (ca, _) = write_ca(d.path());
        let ok = Settings::validate(input(" https://broker.example:8443/ ", &ca)).unwrap();
        assert_eq!(ok.broker_url(), Some("https://broker.example:8443"));
        for bad in [
            "http://broker.example",
            "https://u:p@broker.example",
            "https://broker.example/api",
            "https://broker.example?x=1",
            "broker.example",
            "https://",
        ] {
            let e = Settings::validate(input(bad, &ca)).unwrap_err();
            assert_eq!(e.code(), paw_proto::ErrorCode::InvalidSettings, "{bad}");
            assert!(e.to_string().starts_with("broker_url:"), "{bad}: {e}");
        }
    }

    #[test]
    fn ca_must_be_one_ca_certificate() {
        let d = tempfile::tempdir().unwrap();
        let (ca, _) = write_ca(d.path());
        let info = load_ca(&ca).unwrap().info;
        assert!(info.subject.contains("paw test CA"));
        assert_eq!(info.fingerprint_sha256.len(), 32 * 3 - 1);

        let leaf_params = rcgen::CertificateParams::new(vec!["leaf".into()]).unwrap();
        let leaf = leaf_params
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let leaf_path = d.path().join("leaf.pem");
        std::fs::write(&leaf_path, leaf.pem()).unwrap();
        let two = d.path().join("two.pem");
        std::fs::write(
            &two,
            format!("{}{}", std::fs::read_to_string(&ca).unwrap(), leaf.pem()),
        )
        .unwrap();
        let junk = d.path().join("junk.pem");
        std::fs::write(&junk, "hello").unwrap();
        for (bad, why) in [
            (leaf_path, "not a CA"),
            (two, "exactly one"),
            (junk, "exactly one"),
            (d.path().join("missing.pem"), "cannot read"),
        ] {
            let e = Settings::validate(input("https://b", &bad)).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
        let rel = Settings::validate(SettingsInput {
            broker_url: "https://b".into(),
            fallback_urls: Vec::new(),
            ca_path: "ca.pem".into(),
        });
        assert!(rel.unwrap_err().to_string().contains("absolute"));
    }

    #[test]
    fn store_round_trips_and_clears() {
        let d = tempfile::tempdir().unwrap();
        let (ca, _) = write_ca(d.path());
        let store = SettingsStore::new(d.path().join("cfg")).unwrap();
        assert_eq!(store.load().unwrap(), Settings::Unconfigured);
        let s = Settings::validate(input("https://b:1", &ca)).unwrap();
        store.save(&s).unwrap();
        assert_eq!(store.load().unwrap(), s);
        assert!(!d.path().join("cfg/settings.json.tmp").exists());
        store.save(&Settings::Unconfigured).unwrap();
        assert_eq!(store.load().unwrap(), Settings::Unconfigured);
        std::fs::write(d.path().join("cfg/settings.json"), "{not json").unwrap();
        assert_eq!(store.load().unwrap(), Settings::Unconfigured);
    }
}
