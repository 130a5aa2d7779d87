//! Documents parsed and validated once: a bounded cache of parsed documents by the
//! SHA-256 of their text (also the store of Apollo's automatic persisted queries, whose
//! hashes are that same SHA-256), and of the validations that passed, by document,
//! operation name and variables (validation reads the variables: a page size, a cost).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ValidationResult};
use lru::LruCache;
use sha2::{Digest, Sha256};

/// Most documents kept, and most bytes of document text among them.
pub const MAX_DOCUMENTS: usize = 1_000;
pub const MAX_TEXT_BYTES: usize = 8 * 1024 * 1024;
/// Most validations kept (documents times operation names times variables).
pub const MAX_VALIDATIONS: usize = 4_000;

/// The SHA-256 of a document's text.
pub type Hash = [u8; 32];

pub fn hash(text: &str) -> Hash {
    Sha256::digest(text.as_bytes()).into()
}

/// A document's text and its parse.
pub struct Stored {
    pub text: Arc<str>,
    /// Shared with the operations that run it (the error pipeline reads it).
    pub document: Arc<ExecutableDocument>,
}

struct Texts {
    entries: LruCache<Hash, Arc<Stored>>,
    bytes: usize,
}

/// The cache, shared by every transport of a server.
pub struct Documents {
    texts: Mutex<Texts>,
    validated: Mutex<LruCache<Hash, ValidationResult>>,
}

impl Default for Documents {
    fn default() -> Self {
        Self {
            texts: Mutex::new(Texts { entries: LruCache::unbounded(), bytes: 0 }),
            validated: Mutex::new(LruCache::new(
                NonZeroUsize::new(MAX_VALIDATIONS).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Documents {
    /// The document with this hash, when known.
    pub fn get(&self, hash: &Hash) -> Option<Arc<Stored>> {
        lock(&self.texts).entries.get(hash).cloned()
    }

    /// Keeps a parsed document (the least recently used go first past the bounds; a
    /// document larger than the whole budget is not kept).
    pub fn put(&self, hash: Hash, text: Arc<str>, document: ExecutableDocument) -> Arc<Stored> {
        let stored = Arc::new(Stored { text, document: Arc::new(document) });
        let size = stored.text.len();
        if size > MAX_TEXT_BYTES {
            return stored;
        }
        let mut texts = lock(&self.texts);
        if let Some(old) = texts.entries.put(hash, stored.clone()) {
            texts.bytes -= old.text.len();
        }
        texts.bytes += size;
        while texts.entries.len() > MAX_DOCUMENTS || texts.bytes > MAX_TEXT_BYTES {
            match texts.entries.pop_lru() {
                Some((_, old)) => texts.bytes -= old.text.len(),
                None => break,
            }
        }
        stored
    }

    /// How many documents and bytes of text are kept.
    pub fn size(&self) -> (usize, usize) {
        let texts = lock(&self.texts);
        (texts.entries.len(), texts.bytes)
    }

    /// Gives the request its parsed document: from the cache when its text was seen
    /// before, else parsed now and kept. A text that does not parse (or nests too deep
    /// to parse) is left to the schema, which answers its error.
    pub fn attach(&self, request: &mut Request) {
        let key = hash(&request.query);
        if let Some(stored) = self.get(&key) {
            request.set_parsed_query(ExecutableDocument::clone(&stored.document));
            return;
        }
        // A text nested too deep is not parsed here (the parser would overflow the
        // stack): the schema refuses it.
        if crate::graphql::limits::nesting::check(&request.query).is_err() {
            return;
        }
        if let Ok(document) = async_graphql::parser::parse_query(&request.query) {
            let stored = self.put(key, Arc::from(request.query.as_str()), document);
            request.set_parsed_query(ExecutableDocument::clone(&stored.document));
        }
    }
}

/// What validation depends on besides the schema: the text (by its hash), the operation,
/// the variables. The schema's one extension ([`super::pipeline`]) skips validating a
/// document again with the same key (successful validations only; every refusal is
/// worked out anew), and measuring its limits again: they depend on the same things.
pub(crate) fn validation_key(text: &Hash, request: &Request) -> Option<Hash> {
    let variables = serde_json::to_vec(&request.variables).ok()?;
    let mut digest = Sha256::new();
    digest.update(text);
    digest.update(request.operation_name.as_deref().unwrap_or("").as_bytes());
    digest.update([0]);
    digest.update(&variables);
    Some(digest.finalize().into())
}

impl Documents {
    /// The result of a validation that passed with this key.
    pub(crate) fn validated(&self, key: &Hash) -> Option<ValidationResult> {
        lock(&self.validated).get(key).copied()
    }

    /// Keeps the result of a validation that passed.
    pub(crate) fn keep_validated(&self, key: Hash, result: ValidationResult) {
        lock(&self.validated).put(key, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_kept_within_their_bounds() {
        let documents = Documents::default();
        for i in 0..(MAX_DOCUMENTS + 10) {
            let text = format!("{{ a{i} }}");
            let parsed = async_graphql::parser::parse_query(&text).expect("parses");
            documents.put(hash(&text), Arc::from(text.as_str()), parsed);
        }
        let (count, bytes) = documents.size();
        assert_eq!(count, MAX_DOCUMENTS);
        assert!(bytes <= MAX_TEXT_BYTES);
        assert!(documents.get(&hash("{ a0 }")).is_none(), "the oldest went first");
        assert!(documents.get(&hash(&format!("{{ a{} }}", MAX_DOCUMENTS + 9))).is_some());
    }

    #[test]
    fn a_request_seen_before_gets_its_document_from_the_cache() {
        let documents = Documents::default();
        let mut first = Request::new("{ a }");
        documents.attach(&mut first);
        assert_eq!(documents.size().0, 1);
        let mut second = Request::new("{ a }");
        documents.attach(&mut second);
        assert_eq!(documents.size().0, 1);
        assert!(second.parsed_query().is_ok());
        let mut broken = Request::new("{ a");
        documents.attach(&mut broken);
        assert_eq!(documents.size().0, 1, "a text that does not parse is not kept");
    }
}
