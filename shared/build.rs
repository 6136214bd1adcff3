//! Picks the roots AWS endpoints chain to out of Mozilla's set (`webpki-root-certs`) and
//! writes them as one PEM bundle to `$OUT_DIR/aws-roots.pem`, which `src/aws.rs` compiles
//! in. Filtering here rather than at init keeps the other ~140 roots out of every binary
//! and the search out of every cold start; see `src/trust_roots.rs`.

#[path = "src/trust_roots.rs"]
mod trust_roots;

fn main() {
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|cert| cert.as_ref())
        .filter(|der| trust_roots::is_aws_root(der));
    let pem = trust_roots::pem_bundle(roots);
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("aws-roots.pem"), pem).expect("OUT_DIR is writable");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/trust_roots.rs");
}
