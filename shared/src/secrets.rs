//! Secrets. Tokens the hub only checks are random and stored as SHA-256 hashes;
//! secrets the hub must present again are sealed field by field under a KMS data key
//! (envelope encryption, see [`SecretSealer`]).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use aws_sdk_kms::{Client, primitives::Blob};

use crate::cache::TtlCache;
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

/// A random token that names its owner, `<prefix><owner>_<random>`, so the owner's
/// record can be read beside the token's own (one round trip). The name is a hint only:
/// the token's record (found by the token's hash) must name the same owner.
pub fn owned_token(prefix: &str, owner: uuid::Uuid) -> String {
    random_token(&format!("{prefix}{}_", owner.simple()))
}

/// The owner an [`owned_token`] names (unchecked; `None` for any other token).
pub fn token_owner(prefix: &str, token: &str) -> Option<uuid::Uuid> {
    let (owner, _) = token.strip_prefix(prefix)?.split_once('_')?;
    uuid::Uuid::try_parse(owner).ok()
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

/// How long a data key seals new secrets, and how many, before a fresh one is made (the
/// AWS Encryption SDK's caching model: a bounded age and number of messages per key).
pub const SEALING_KEY_MAX_AGE: Duration = Duration::from_secs(5 * 60);
pub const SEALING_KEY_MAX_USES: u32 = 1000;
/// How long an opened data key stays in memory, and how many are kept.
pub const OPENED_KEY_MAX_AGE: Duration = Duration::from_secs(5 * 60);
pub const OPENED_KEYS_KEPT: usize = 1000;

/// The sealed form's version prefix: `v2.<wrapped data key>.<nonce and ciphertext>`.
/// Values without it were sealed by KMS `Encrypt` alone and are opened by `Decrypt`.
const ENVELOPE: &str = "v2.";
/// The encryption context of every data key (KMS binds it to the wrapped key).
const KEY_CONTEXT: (&str, &str) = ("purpose", "partner-hub-secrets");

/// Seals and opens the secrets the hub must present again, by envelope encryption: a
/// KMS data key (AES-256) encrypts each value with AES-GCM, the record and field as
/// associated data, so a sealed value cannot be moved to another record or field; the
/// data key travels wrapped by KMS inside the sealed value.
///
/// Plaintext data keys are cached per process ([`SEALING_KEY_MAX_AGE`] and
/// [`SEALING_KEY_MAX_USES`] for sealing, [`OPENED_KEY_MAX_AGE`] for opening), so a warm
/// function seals with no KMS call and opens a value sealed under a known key with none.
#[derive(Clone)]
pub struct SecretSealer {
    kms: Client,
    key_id: String,
    keys: Arc<KeyCache>,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSealer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A data key in the clear, with its KMS-wrapped form.
#[derive(Clone)]
struct DataKey {
    plain: Key<Aes256Gcm>,
    wrapped: Vec<u8>,
}

struct SealingKey {
    key: DataKey,
    made: Instant,
    uses: u32,
}

struct KeyCache {
    /// Held while a new data key is made, so concurrent seals wait for one key.
    sealing: tokio::sync::Mutex<Option<SealingKey>>,
    /// Plaintext data keys by their wrapped form.
    opened: TtlCache<Vec<u8>, Key<Aes256Gcm>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self {
            sealing: tokio::sync::Mutex::new(None),
            opened: TtlCache::new(OPENED_KEY_MAX_AGE, OPENED_KEYS_KEPT),
        }
    }
}

impl SecretSealer {
    pub fn new(kms: Client, key_id: impl Into<String>) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
            keys: Arc::default(),
        }
    }

    pub async fn seal(
        &self,
        plaintext: &str,
        record: &str,
        field: &str,
    ) -> Result<String, SecretError> {
        let key = self.sealing_key().await?;
        let cipher = Aes256Gcm::new(&key.plain);
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let nonce = Nonce::from(nonce);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &associated_data(record, field),
                },
            )
            .map_err(|_| SecretError::Corrupt)?;
        let mut body = nonce.to_vec();
        body.extend_from_slice(&ciphertext);
        Ok(format!(
            "{ENVELOPE}{}.{}",
            URL_SAFE_NO_PAD.encode(&key.wrapped),
            URL_SAFE_NO_PAD.encode(body)
        ))
    }

    pub async fn open(
        &self,
        sealed: &str,
        record: &str,
        field: &str,
    ) -> Result<String, SecretError> {
        let Some(envelope) = sealed.strip_prefix(ENVELOPE) else {
            return self.open_kms_sealed(sealed, record, field).await;
        };
        let (wrapped, body) = envelope.split_once('.').ok_or(SecretError::Corrupt)?;
        let decode = |text: &str| {
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| SecretError::Corrupt)
        };
        let (wrapped, body) = (decode(wrapped)?, decode(body)?);
        if body.len() < NONCE_BYTES {
            return Err(SecretError::Corrupt);
        }
        let key = self.opening_key(wrapped).await?;
        let (nonce, ciphertext) = body.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SecretError::Corrupt)?;
        let plain = Aes256Gcm::new(&key)
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &associated_data(record, field),
                },
            )
            .map_err(|_| SecretError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| SecretError::Corrupt)
    }

    /// Makes sure a data key is ready for sealing (a cold function can ask for it while
    /// it reads, so sealing later costs no round trip of its own).
    pub async fn prepare(&self) -> Result<(), SecretError> {
        let mut sealing = self.keys.sealing.lock().await;
        if !sealing.as_ref().is_some_and(SealingKey::fresh) {
            *sealing = Some(SealingKey::new(self.generate().await?));
        }
        Ok(())
    }

    /// The current sealing key, counted as used; a new one once it is too old or used.
    async fn sealing_key(&self) -> Result<DataKey, SecretError> {
        let mut sealing = self.keys.sealing.lock().await;
        if !sealing.as_ref().is_some_and(SealingKey::fresh) {
            *sealing = Some(SealingKey::new(self.generate().await?));
        }
        let current = sealing.as_mut().ok_or(SecretError::Corrupt)?;
        current.uses += 1;
        Ok(current.key.clone())
    }

    async fn generate(&self) -> Result<DataKey, SecretError> {
        let out = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .encryption_context(KEY_CONTEXT.0, KEY_CONTEXT.1)
            .send()
            .await
            .map_err(kms_error)?;
        let plain = out.plaintext.ok_or(SecretError::Corrupt)?;
        let wrapped = out.ciphertext_blob.ok_or(SecretError::Corrupt)?;
        let key = DataKey {
            plain: key_from(plain.as_ref())?,
            wrapped: wrapped.into_inner(),
        };
        // Values sealed under it open without KMS in this process.
        self.keys.opened.insert(key.wrapped.clone(), key.plain);
        Ok(key)
    }

    /// The data key a sealed value carries: from the cache, or unwrapped by KMS.
    async fn opening_key(&self, wrapped: Vec<u8>) -> Result<Key<Aes256Gcm>, SecretError> {
        if let Some(key) = self.keys.opened.get(&wrapped) {
            return Ok(key);
        }
        let out = self
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(wrapped.clone()))
            .encryption_context(KEY_CONTEXT.0, KEY_CONTEXT.1)
            .send()
            .await
            .map_err(kms_error)?;
        let key = key_from(out.plaintext.ok_or(SecretError::Corrupt)?.as_ref())?;
        self.keys.opened.insert(wrapped, key);
        Ok(key)
    }

    /// A value sealed by KMS `Encrypt` (before envelope encryption): one `Decrypt`.
    async fn open_kms_sealed(
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
            .map_err(kms_error)?;
        let plain = out.plaintext.ok_or(SecretError::Corrupt)?;
        String::from_utf8(plain.into_inner()).map_err(|_| SecretError::Corrupt)
    }

    /// Seals a value the way the hub did before envelope encryption (one KMS `Encrypt`
    /// per value), for tests that open values stored by earlier versions.
    pub async fn seal_with_kms(
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
            .map_err(kms_error)?;
        let blob = out.ciphertext_blob.ok_or(SecretError::Corrupt)?;
        Ok(URL_SAFE_NO_PAD.encode(blob.as_ref()))
    }
}

impl SealingKey {
    fn new(key: DataKey) -> Self {
        Self {
            key,
            made: Instant::now(),
            uses: 0,
        }
    }

    fn fresh(&self) -> bool {
        self.made.elapsed() < SEALING_KEY_MAX_AGE && self.uses < SEALING_KEY_MAX_USES
    }
}

const NONCE_BYTES: usize = 12;

/// The associated data of a sealed value: its record and field, unambiguously joined.
fn associated_data(record: &str, field: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(record.len() + field.len() + 1);
    aad.extend_from_slice(record.as_bytes());
    aad.push(0);
    aad.extend_from_slice(field.as_bytes());
    aad
}

fn key_from(bytes: &[u8]) -> Result<Key<Aes256Gcm>, SecretError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| SecretError::Corrupt)?;
    Ok(Key::<Aes256Gcm>::from(bytes))
}

fn kms_error<E, R>(e: aws_sdk_kms::error::SdkError<E, R>) -> SecretError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    SecretError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string())
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
    fn associated_data_tells_record_and_field_apart() {
        assert_ne!(associated_data("ab", "c"), associated_data("a", "bc"));
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
