//! Which of Mozilla's roots (`webpki-root-certs`) the functions trust, and their PEM form.
//!
//! Shared by `build.rs`, which applies it at build time and writes the PEM bundle that
//! `aws.rs` compiles in, and by the unit tests, which check that bundle against it.
//!
//! AWS service endpoints chain to the Amazon Trust Services roots: Amazon Root CA 1-4, and
//! Starfield Services Root Certificate Authority - G2 (the cross-sign that lets old clients
//! reach the Amazon roots), itself once cross-signed by Starfield Class 2 CA, which Mozilla
//! no longer ships (so `webpki-root-certs` 1.0.11 yields 5 roots; the name stays listed in
//! case a future set has it again).
//!
//! A root is picked by a byte-substring search of its DER for one of these names: a
//! common name is a PrintableString or UTF8String, so it appears in the DER as plain ASCII,
//! and a root is self-signed, so the name is both its subject and its issuer. That is not
//! an X.509 parse, but it is done once, at build time, over a fixed, reviewed set, and the
//! unit tests pin the outcome (the count, and Amazon Root CA 1 by its SHA-256 fingerprint).

/// Common-name prefixes of the roots AWS endpoints chain to. "Starfield Services Root"
/// does not match "Starfield Root Certificate Authority - G2", GoDaddy's, which AWS
/// endpoints do not use.
pub const AWS_ROOT_NAMES: [&[u8]; 3] = [
    b"Amazon Root CA ",
    b"Starfield Services Root Certificate Authority",
    b"Starfield Class 2",
];

/// Whether the DER certificate `der` is one of the roots AWS endpoints chain to.
pub fn is_aws_root(der: &[u8]) -> bool {
    AWS_ROOT_NAMES
        .iter()
        .any(|name| der.windows(name.len()).any(|window| window == *name))
}

/// `certs` (DER) as one PEM bundle, the form the SDK's `TrustStore` takes.
pub fn pem_bundle<'a>(certs: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    use base64::Engine as _;
    let base64 = base64::engine::general_purpose::STANDARD;
    let mut pem = Vec::new();
    for cert in certs {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in base64.encode(cert).as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}
