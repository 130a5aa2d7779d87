//! The server's Ed25519 key that signs audit checkpoints.
//!
//! The key file holds the 32-byte secret seed in standard base64 (one line). It comes
//! from `CASEFILE_AUDIT_SIGNING_KEY_FILE` (which every replica must share) or, when that is
//! unset, from `<data dir>/audit-signing-key`, generated at the first start with mode 0600.
//! With `DATABASE_URL` set the data dir is still where the generated key goes (it holds
//! no cluster then): a single server just works; replicas must set the key file, or each
//! signs with a key of its own (every signature still verifies with the public key the
//! checkpoint names, but an auditor would see several keys).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};

/// The file name of the generated key in the data dir.
pub const KEY_FILE: &str = "audit-signing-key";

/// The checkpoint signing key.
pub struct AuditKey {
    key: SigningKey,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("public_key", &self.public_key_base64()).finish()
    }
}

impl AuditKey {
    /// The key from `file`, or (no file given) the data dir's, generated when missing.
    pub fn load(file: Option<&Path>, data_dir: &Path) -> anyhow::Result<Self> {
        match file {
            Some(path) => Self::read(path),
            None => {
                let path = data_dir.join(KEY_FILE);
                if path.exists() { Self::read(&path) } else { Self::generate(&path) }
            }
        }
    }

    fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the audit signing key {}", path.display()))?;
        let bytes = STANDARD.decode(text.trim()).ok().filter(|b| b.len() == 32);
        let Some(seed) = bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
            bail!(
                "{} must hold a 32-byte Ed25519 seed in standard base64 (openssl rand -base64 32)",
                path.display()
            );
        };
        Ok(AuditKey { key: SigningKey::from_bytes(&seed) })
    }

    fn generate(path: &PathBuf) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let seed: [u8; 32] = rand::random();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating the audit signing key {}", path.display()))?;
        writeln!(file, "{}", STANDARD.encode(seed))?;
        tracing::info!(path = %path.display(), "generated the audit signing key");
        Ok(AuditKey { key: SigningKey::from_bytes(&seed) })
    }

    /// A key from a seed (tests, tools).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        AuditKey { key: SigningKey::from_bytes(&seed) }
    }

    /// The raw 32-byte public key in standard base64.
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.key.verifying_key().as_bytes())
    }

    /// The raw 64-byte signature of `message` in standard base64.
    pub fn sign_base64(&self, message: &[u8]) -> String {
        STANDARD.encode(self.key.sign(message).to_bytes())
    }

    /// Whether `signature` (standard base64) is this key's over `message`.
    pub fn verify_base64(&self, message: &[u8], signature: &str) -> bool {
        let Some(bytes) = STANDARD.decode(signature.trim()).ok() else { return false };
        let Ok(signature) = ed25519_dalek::Signature::from_slice(&bytes) else { return false };
        self.key.verifying_key().verify_strict(message, &signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_private_to_its_owner_and_read_back_the_same() {
        let dir = std::env::temp_dir().join(format!("casefile-key-{}", uuid::Uuid::new_v4()));
        let first = AuditKey::load(None, &dir).expect("generate");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join(KEY_FILE)).expect("file").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let again = AuditKey::load(None, &dir).expect("read");
        assert_eq!(first.public_key_base64(), again.public_key_base64());
        let signature = first.sign_base64(b"hello");
        assert!(again.verify_base64(b"hello", &signature));
        assert!(!again.verify_base64(b"hellO", &signature));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
