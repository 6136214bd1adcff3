//! Secrets. Tokens the hub only checks are random and stored as SHA-256 hashes;
//! secrets the hub must present again are sealed field by field with KMS.

use aws_sdk_kms::{Client, primitives::Blob};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("KMS request failed: {0}")]
    Kms(String),
    #[error("sealed secret is corrupt")]
    Corrupt,
}

/// A high-entropy token (256 random bits), URL-safe, with a readable prefix.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A short random identifier (128 bits, hex), for values that are not secrets.
pub fn random_hex16() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The stored form of a token the hub only checks.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares a presented token with a stored hash in constant time.
pub fn token_matches(token: &str, stored_hash: &str) -> bool {
    token_hash(token)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

/// A fresh RSA key pair as a partner makes one (the contract's `ssh-keygen -m PEM` /
/// `openssl rsa -pubout`): (private PKCS#1 PEM, public SPKI PEM).
#[cfg(feature = "keygen")]
pub fn generate_rsa_key_pair(bits: usize) -> Result<(String, String), String> {
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
        .map_err(|e| format!("RSA key generation failed: {e}"))?;
    rsa_key_pair_pems(&private)
}

/// The PEMs of a private key and its public key.
#[cfg(feature = "keygen")]
pub fn rsa_key_pair_pems(private: &rsa::RsaPrivateKey) -> Result<(String, String), String> {
    use rsa::{
        pkcs1::EncodeRsaPrivateKey,
        pkcs8::{EncodePublicKey, LineEnding},
    };
    let private_pem = private
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?
        .to_string();
    let public_pem = rsa::RsaPublicKey::from(private)
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?;
    Ok((private_pem, public_pem))
}

/// Seals and opens secrets with a KMS key; the encryption context binds a ciphertext
/// to its record and field, so a sealed value cannot be moved to another record.
#[derive(Clone, Debug)]
pub struct SecretSealer {
    kms: Client,
    key_id: String,
}

impl SecretSealer {
    pub fn new(kms: Client, key_id: impl Into<String>) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
        }
    }

    pub async fn seal(
        &self,
        plaintext: &str,
        record: &str,
        field: &str,
    ) -> Result<String, SecretError> {
        let out = self
            .kms
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext.as_bytes()))
            .encryption_context("record", record)
            .encryption_context("field", field)
            .send()
            .await
            .map_err(|e| {
                SecretError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string())
            })?;
        let blob = out.ciphertext_blob.ok_or(SecretError::Corrupt)?;
        Ok(URL_SAFE_NO_PAD.encode(blob.as_ref()))
    }

    pub async fn open(
        &self,
        sealed: &str,
        record: &str,
        field: &str,
    ) -> Result<String, SecretError> {
        let ciphertext = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| SecretError::Corrupt)?;
        let out = self
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(ciphertext))
            .encryption_context("record", record)
            .encryption_context("field", field)
            .send()
            .await
            .map_err(|e| {
                SecretError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string())
            })?;
        let plain = out.plaintext.ok_or(SecretError::Corrupt)?;
        String::from_utf8(plain.into_inner()).map_err(|_| SecretError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_prefixed() {
        let a = random_token("pt_");
        let b = random_token("pt_");
        assert!(a.starts_with("pt_"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 43);
    }

    #[test]
    fn token_hash_matches_only_the_token() {
        let token = random_token("pt_");
        let stored = token_hash(&token);
        assert!(token_matches(&token, &stored));
        assert!(!token_matches("pt_other", &stored));
        assert_ne!(stored, token);
    }
}
