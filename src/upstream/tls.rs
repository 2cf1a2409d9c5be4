//! rustls client configs, built once on the control thread and shared by every shard.
//! Roots: the bundled webpki roots, the system's roots, and an origin's extra `ca_file`.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::Snapshot;

/// One config per origin (`None` for plain-HTTP origins).
pub fn configs(snapshot: &Snapshot) -> Result<Vec<Option<Arc<ClientConfig>>>, String> {
    let mut system: Option<Vec<CertificateDer<'static>>> = None;
    snapshot
        .origins
        .iter()
        .map(|o| {
            if !o.tls {
                return Ok(None);
            }
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let system =
                system.get_or_insert_with(|| rustls_native_certs::load_native_certs().certs);
            roots.add_parsable_certificates(system.iter().cloned());
            if let Some(path) = &o.ca_file {
                let certs: Vec<_> = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("{o}: cannot read ca_file {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!(
                        "{o}: ca_file {} holds no certificates",
                        path.display()
                    ));
                }
                for c in certs {
                    roots
                        .add(c)
                        .map_err(|e| format!("{o}: bad certificate in {}: {e}", path.display()))?;
                }
            }
            // An explicit provider: with more than one compiled in, the plain builder panics.
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut cfg = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Some(Arc::new(cfg)))
        })
        .collect()
}
