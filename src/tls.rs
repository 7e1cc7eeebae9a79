//! The process's TLS cryptography: rustls over ring, installed as rustls's default provider
//! before the first HTTPS client is built (the package index's and S3's, both reqwest, which
//! takes the process default).

/// Installs ring as the process's rustls provider, unless one is installed already.
pub(crate) fn install_provider() {
    // An error only says a provider is installed: the first one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
