//! Native HTTPS: the certificate chain and key of `LEAD_TLS_CERT` and
//! `LEAD_TLS_KEY`, served by rustls (ring provider, TLS 1.2 and 1.3, ALPN
//! `http/1.1`), and swapped for new files on SIGHUP.
//!
//! The rustls `ServerConfig` is built once; its certificate comes from
//! [`Reloadable`], a resolver holding the current key pair behind a lock,
//! so a reload changes what new handshakes get while connections already
//! open keep theirs. A reload that cannot read or check the new files
//! leaves the current pair in place.
//!
//! No error or log line shows key material: a PEM parse error of the key
//! file is described by kind only (rustls's own message may quote a line
//! of the file), and [`Tls`]'s `Debug` shows the paths alone.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsPaths;

/// The protocol offered in ALPN: the server speaks HTTP/1.1 only.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Native HTTPS for every listener: an acceptor and the files to reload
/// its certificate from. Cheap to clone (one shared resolver).
#[derive(Clone)]
pub(crate) struct Tls {
    paths: TlsPaths,
    provider: Arc<CryptoProvider>,
    current: Arc<Reloadable>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.paths.cert)
            .field("key", &self.paths.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads and checks the files of `paths` and builds the acceptor.
    ///
    /// # Errors
    ///
    /// A message naming the variable and the path of the file that cannot
    /// be read or used (never its contents).
    pub(crate) fn load(paths: TlsPaths) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = load_pair(&paths, &provider)?;
        let current = Arc::new(Reloadable {
            current: RwLock::new(Arc::new(key)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: cannot set up the protocol versions: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // A client offering only h2 fails its handshake instead of
        // speaking a protocol the server does not serve.
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        Ok(Tls {
            paths,
            provider,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The acceptor each accepted TCP connection is handed to.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// The files' paths (for the log).
    pub(crate) fn paths(&self) -> &TlsPaths {
        &self.paths
    }

    /// Reads the files again and, when they hold a usable chain and its
    /// key, serves them to every new handshake. Connections already open
    /// are not touched.
    ///
    /// # Errors
    ///
    /// As [`Tls::load`]; the certificate served stays the previous one.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let key = load_pair(&self.paths, &self.provider)?;
        *self
            .current
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }
}

/// The certificate resolver: every handshake gets the current pair,
/// whatever name the client asks for (one certificate per server).
struct Reloadable {
    current: RwLock<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for Reloadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of it.
        f.write_str("Reloadable { .. }")
    }
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The chain of `paths.cert` with the key of `paths.key`, checked to
/// belong together.
fn load_pair(paths: &TlsPaths, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let cert_error = |e: pem::Error| {
        format!(
            "LEAD_TLS_CERT: cannot use {}: {}",
            paths.cert,
            pem_problem(&e)
        )
    };
    let chain = CertificateDer::pem_file_iter(&paths.cert)
        .map_err(cert_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(cert_error)?;
    if chain.is_empty() {
        return Err(format!(
            "LEAD_TLS_CERT: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            paths.cert
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&paths.key).map_err(|e| {
        format!(
            "LEAD_TLS_KEY: cannot use {}: {}",
            paths.key,
            match e {
                pem::Error::NoItemsFound => {
                    "no PEM private key in it (PKCS#8, PKCS#1 RSA or SEC1 EC)".to_owned()
                }
                other => pem_problem(&other),
            }
        )
    })?;
    let signing_key = provider.key_provider.load_private_key(key).map_err(|_| {
        format!(
            "LEAD_TLS_KEY: {} is not a usable private key (RSA, ECDSA P-256/P-384 or Ed25519)",
            paths.key
        )
    })?;
    let pair = CertifiedKey::new(chain, signing_key);
    match pair.keys_match() {
        Ok(()) => Ok(pair),
        // A key type that cannot tell its public key: rustls itself
        // (`CertifiedKey::from_der`) accepts it; so do we.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(pair),
        Err(rustls::Error::InconsistentKeys(_)) => Err(format!(
            "LEAD_TLS_KEY: {} is not the key of the first certificate of LEAD_TLS_CERT ({})",
            paths.key, paths.cert
        )),
        Err(e) => Err(format!(
            "LEAD_TLS_CERT: the first certificate of {} cannot be read: {e}",
            paths.cert
        )),
    }
}

/// What is wrong with a PEM file, without quoting it: rustls's messages
/// for a malformed section show the offending line, which in a key file
/// is key material.
fn pem_problem(err: &pem::Error) -> String {
    match err {
        pem::Error::Io(e) => e.to_string(),
        pem::Error::NoItemsFound => "no PEM certificate in it".to_owned(),
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".to_owned(),
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".to_owned(),
        pem::Error::SectionTooLarge => "a PEM section is too large".to_owned(),
        _ => "not a valid PEM file".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost`, written as PEM files.
    fn write_pair(dir: &std::path::Path, name: &str) -> (TlsPaths, Vec<u8>, String) {
        let generated =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a cert");
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, generated.cert.pem()).expect("write cert");
        let key_pem = generated.signing_key.serialize_pem();
        std::fs::write(&key, &key_pem).expect("write key");
        (
            TlsPaths {
                cert: cert.display().to_string(),
                key: key.display().to_string(),
            },
            generated.cert.der().to_vec(),
            key_pem,
        )
    }

    fn served(tls: &Tls) -> Vec<u8> {
        tls.current.current.read().expect("lock").cert[0].to_vec()
    }

    #[test]
    fn a_pair_loads_and_a_reload_serves_the_new_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (paths, first, _) = write_pair(dir.path(), "a");
        let tls = Tls::load(paths.clone()).expect("a valid pair");
        assert_eq!(served(&tls), first);
        let (other, second, _) = write_pair(dir.path(), "b");
        std::fs::copy(&other.cert, &paths.cert).expect("copy");
        std::fs::copy(&other.key, &paths.key).expect("copy");
        tls.reload().expect("the new pair");
        assert_eq!(served(&tls), second);
    }

    #[test]
    fn a_bad_file_is_named_without_its_contents_and_a_bad_reload_keeps_the_pair() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (paths, first, key_pem) = write_pair(dir.path(), "a");
        let tls = Tls::load(paths.clone()).expect("a valid pair");
        let secret_line = key_pem
            .lines()
            .nth(1)
            .expect("a base64 line of the key")
            .to_owned();

        // A key file cut short: its first lines are key material.
        let cut: String = key_pem.lines().take(2).collect::<Vec<_>>().join("\n");
        std::fs::write(&paths.key, &cut).expect("write");
        let err = tls.reload().expect_err("a truncated key");
        assert!(err.starts_with("LEAD_TLS_KEY: cannot use "), "{err}");
        assert!(err.contains(&paths.key), "{err}");
        assert!(!err.contains(&secret_line), "{err}");
        assert_eq!(served(&tls), first, "the previous pair is kept");

        // Another pair's key with the first certificate.
        let (other, _, _) = write_pair(dir.path(), "b");
        std::fs::copy(&other.key, &paths.key).expect("copy");
        let err = tls.reload().expect_err("a key of another certificate");
        assert!(err.contains("is not the key of"), "{err}");
        assert_eq!(served(&tls), first);

        let missing = TlsPaths {
            cert: dir.path().join("nope.crt").display().to_string(),
            key: paths.key.clone(),
        };
        let err = Tls::load(missing.clone()).expect_err("a missing file");
        assert!(
            err.starts_with(&format!("LEAD_TLS_CERT: cannot use {}", missing.cert)),
            "{err}"
        );
        std::fs::write(&paths.cert, "not a certificate").expect("write");
        let err = Tls::load(paths.clone()).expect_err("no certificate");
        assert!(err.starts_with("LEAD_TLS_CERT: "), "{err}");
        assert!(!format!("{tls:?}").contains(&secret_line));
    }
}
