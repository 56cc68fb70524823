//! Documents a request names instead of (or besides) sending them:
//! - **Automatic persisted queries** (Apollo's protocol): a request carries
//!   `extensions.persistedQuery {version: 1, sha256Hash}`; without `query`
//!   it runs the document registered under that hash, or gets
//!   `PersistedQueryNotFound` and resends it whole, which registers it (the
//!   hash checked). Registered documents live in a bounded LRU cache, by
//!   count and bytes; an entry holds the document text only, never
//!   variables or results, and only an authenticated request registers one.
//! - **Trusted documents**: a manifest of the operations an application
//!   ships (`@graphql-codegen/client-preset`'s persisted documents or
//!   Relay's `persisted_queries.json`: `{id: text}`; Apollo's persisted
//!   query manifest: `{operations: [{id, body}]}`). A request names one by
//!   `documentId` (its id, or `sha256:<hash>` as the GraphQL-over-HTTP
//!   persisted-operations appendix writes it) or by APQ hash, or sends its
//!   text. With `require`, nothing else runs: it is refused before it is
//!   parsed (admins may be exempted).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::error::code;

type Hash = [u8; 32];

/// Which documents run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TrustMode {
    /// The manifest is not consulted.
    #[default]
    Off,
    /// Listed documents may be named by id; any other document runs too.
    Allow,
    /// Only listed documents run.
    Require,
}

/// How documents are found and trusted, built once in the composition root.
#[derive(Clone, Debug)]
pub struct DocumentSettings {
    /// Whether APQ registration and lookup are on.
    pub apq: bool,
    /// Most documents the APQ cache holds.
    pub apq_max_entries: usize,
    /// Most bytes of document text the APQ cache holds.
    pub apq_max_bytes: usize,
    /// The trusted documents, when a manifest was given.
    pub trusted: Option<Arc<TrustedDocuments>>,
    pub mode: TrustMode,
    /// Whether admins may run untrusted documents under `require`.
    pub exempt_admins: bool,
}

impl DocumentSettings {
    pub const DEFAULT_APQ_ENTRIES: usize = 1_000;
    pub const DEFAULT_APQ_BYTES: usize = 16 * 1024 * 1024;
}

impl Default for DocumentSettings {
    fn default() -> Self {
        Self {
            apq: true,
            apq_max_entries: Self::DEFAULT_APQ_ENTRIES,
            apq_max_bytes: Self::DEFAULT_APQ_BYTES,
            trusted: None,
            mode: TrustMode::Off,
            exempt_admins: false,
        }
    }
}

/// A manifest of trusted documents, by id and by SHA-256 of their text.
#[derive(Default)]
pub struct TrustedDocuments {
    by_id: HashMap<String, Arc<str>>,
    by_hash: HashMap<Hash, Arc<str>>,
}

impl std::fmt::Debug for TrustedDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedDocuments({} documents)", self.by_id.len())
    }
}

impl TrustedDocuments {
    /// Reads a manifest file (see the module's formats).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read(path)
            .with_context(|| format!("reading trusted documents from {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("trusted documents in {}", path.display()))
    }

    pub fn parse(text: &[u8]) -> anyhow::Result<Self> {
        let manifest: Map<String, Json> =
            serde_json::from_slice(text).context("the manifest is not a JSON object")?;
        let mut documents = Self::default();
        if let Some(operations) = manifest.get("operations") {
            // Apollo's persisted query manifest.
            let operations = operations
                .as_array()
                .context("`operations` must be an array")?;
            for (i, operation) in operations.iter().enumerate() {
                let field = |name: &str| {
                    operation
                        .get(name)
                        .and_then(Json::as_str)
                        .with_context(|| format!("operations[{i}] has no string `{name}`"))
                };
                documents.add(field("id")?, field("body")?);
            }
        } else {
            for (id, body) in &manifest {
                let body = body
                    .as_str()
                    .with_context(|| format!("document `{id}` is not a string"))?;
                documents.add(id, body);
            }
        }
        anyhow::ensure!(
            !documents.by_id.is_empty(),
            "the manifest lists no document"
        );
        Ok(documents)
    }

    fn add(&mut self, id: &str, body: &str) {
        let body: Arc<str> = Arc::from(body);
        self.by_hash.insert(sha256(&body), body.clone());
        self.by_id.insert(id.to_owned(), body);
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn by_document_id(&self, id: &str) -> Option<&Arc<str>> {
        self.by_id
            .get(id)
            .or_else(|| parse_hash(id.strip_prefix("sha256:")?).and_then(|h| self.by_hash.get(&h)))
    }
}

/// What a request says about its document.
#[derive(Debug, Default)]
pub struct Requested {
    pub query: Option<String>,
    pub document_id: Option<String>,
    /// `extensions.persistedQuery`, as sent.
    pub persisted: Option<Json>,
}

/// The document a request runs.
#[derive(Debug)]
pub struct Document {
    pub query: String,
    /// Listed in the trusted documents.
    pub trusted: bool,
    /// The hash to register it under once the request is authenticated and
    /// the document admitted.
    register: Option<Hash>,
}

/// Whether a document may run, before it is parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Only an admin may run it (`require` with admins exempted).
    AdminOnly,
    Refused,
}

/// Why a request's document cannot be found or used.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// A hash no document is registered under (the client resends the text).
    NotFound,
    /// APQ is off (the client stops sending hashes).
    NotSupported,
    /// A `documentId` the manifest does not list.
    UnknownId(String),
    /// Only trusted documents run.
    NotTrusted,
    /// The request is malformed (a hash that does not match, say).
    Bad(String),
}

impl Refused {
    /// The error code and message clients branch on: Apollo's links look for
    /// the `PersistedQuery…` messages or codes.
    pub fn code_and_message(&self) -> (&'static str, String) {
        match self {
            Refused::NotFound => (
                code::PERSISTED_QUERY_NOT_FOUND,
                "PersistedQueryNotFound".into(),
            ),
            Refused::NotSupported => (
                code::PERSISTED_QUERY_NOT_SUPPORTED,
                "PersistedQueryNotSupported".into(),
            ),
            Refused::UnknownId(id) => (
                code::PERSISTED_QUERY_NOT_FOUND,
                format!(
                    "no trusted document has the id `{}`",
                    id.chars().take(80).collect::<String>()
                ),
            ),
            Refused::NotTrusted => (
                code::TRUSTED_DOCUMENT_REQUIRED,
                "only trusted documents run here: send the documentId of one listed in the \
                 server's manifest"
                    .into(),
            ),
            Refused::Bad(message) => (code::BAD_USER_INPUT, message.clone()),
        }
    }
}

/// The registry of persisted documents of one server.
pub struct Documents {
    settings: DocumentSettings,
    apq: Mutex<Apq>,
}

struct Apq {
    entries: lru::LruCache<Hash, Arc<str>>,
    bytes: usize,
}

impl Documents {
    pub fn new(settings: DocumentSettings) -> Self {
        let capacity = NonZeroUsize::new(settings.apq_max_entries).unwrap_or(NonZeroUsize::MIN);
        Self {
            settings,
            apq: Mutex::new(Apq {
                entries: lru::LruCache::new(capacity),
                bytes: 0,
            }),
        }
    }

    /// The document a request runs. Cheap: a hash lookup, or one SHA-256
    /// of the text when a manifest or APQ needs it.
    pub fn resolve(&self, requested: Requested) -> Result<Document, Refused> {
        let persisted = requested.persisted.map(persisted_hash).transpose()?;
        let trusted = self
            .settings
            .trusted
            .as_deref()
            .filter(|_| self.settings.mode != TrustMode::Off);
        if let Some(id) = requested.document_id {
            if requested.query.is_some() {
                return Err(Refused::Bad(
                    "send either `query` or `documentId`, not both".into(),
                ));
            }
            let Some(documents) = trusted else {
                return Err(Refused::Bad(
                    "this server has no trusted documents to name by `documentId`".into(),
                ));
            };
            return match documents.by_document_id(&id) {
                Some(text) => Ok(Document {
                    query: text.to_string(),
                    trusted: true,
                    register: None,
                }),
                None => Err(Refused::UnknownId(id)),
            };
        }
        match (requested.query, persisted) {
            (Some(query), persisted) => {
                let hash = (persisted.is_some() || trusted.is_some()).then(|| sha256(&query));
                if let (Some(sent), Some(hash)) = (persisted, hash) {
                    if sent != hash {
                        return Err(Refused::Bad("provided sha does not match query".into()));
                    }
                }
                let listed = trusted
                    .zip(hash)
                    .is_some_and(|(documents, hash)| documents.by_hash.contains_key(&hash));
                let register = (persisted.is_some() && self.settings.apq && !listed)
                    .then_some(hash)
                    .flatten();
                Ok(Document {
                    query,
                    trusted: listed,
                    register,
                })
            }
            (None, Some(hash)) => {
                if let Some(text) = trusted.and_then(|documents| documents.by_hash.get(&hash)) {
                    return Ok(Document {
                        query: text.to_string(),
                        trusted: true,
                        register: None,
                    });
                }
                if !self.settings.apq {
                    return Err(Refused::NotSupported);
                }
                let mut apq = self.apq.lock().expect("apq cache lock");
                match apq.entries.get(&hash) {
                    Some(text) => Ok(Document {
                        query: text.to_string(),
                        trusted: false,
                        register: None,
                    }),
                    None => Err(Refused::NotFound),
                }
            }
            (None, None) => Err(Refused::Bad("`query` is required".into())),
        }
    }

    /// Whether `document` may run, before it is parsed.
    pub fn gate(&self, document: &Document) -> Gate {
        match self.settings.mode {
            TrustMode::Require if !document.trusted => {
                if self.settings.exempt_admins {
                    Gate::AdminOnly
                } else {
                    Gate::Refused
                }
            }
            _ => Gate::Open,
        }
    }

    /// Registers an APQ document the request sent whole, once it was
    /// authenticated and admitted; the least recently used go first.
    pub fn register(&self, document: &Document) {
        let Some(hash) = document.register else {
            return;
        };
        let size = document.query.len();
        if size > self.settings.apq_max_bytes {
            return;
        }
        let mut apq = self.apq.lock().expect("apq cache lock");
        let apq = &mut *apq;
        if let Some((_, old)) = apq.entries.push(hash, Arc::from(document.query.as_str())) {
            apq.bytes -= old.len();
        }
        apq.bytes += size;
        while apq.bytes > self.settings.apq_max_bytes {
            match apq.entries.pop_lru() {
                Some((_, old)) => apq.bytes -= old.len(),
                None => break,
            }
        }
    }

    /// Documents and bytes the APQ cache holds.
    #[cfg(test)]
    pub fn apq_held(&self) -> (usize, usize) {
        let apq = self.apq.lock().expect("apq cache lock");
        (apq.entries.len(), apq.bytes)
    }
}

/// `extensions.persistedQuery`'s hash, checked.
fn persisted_hash(value: Json) -> Result<Hash, Refused> {
    let bad = |message: &str| Refused::Bad(message.to_owned());
    let object = value
        .as_object()
        .ok_or_else(|| bad("`extensions.persistedQuery` must be an object"))?;
    if object.get("version").and_then(Json::as_i64) != Some(1) {
        return Err(bad("unsupported persisted query version (only 1 is)"));
    }
    object
        .get("sha256Hash")
        .and_then(Json::as_str)
        .and_then(parse_hash)
        .ok_or_else(|| bad("`extensions.persistedQuery.sha256Hash` must be 64 hex digits"))
}

fn parse_hash(hex: &str) -> Option<Hash> {
    if hex.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

fn sha256(text: &str) -> Hash {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const Q: &str = "{ me { tenant } }";

    fn hex(text: &str) -> String {
        sha256(text).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn apq(hash: &str) -> Option<Json> {
        Some(json!({"version": 1, "sha256Hash": hash}))
    }

    fn documents(mode: TrustMode, exempt_admins: bool) -> Documents {
        let manifest = json!({"abc123": Q}).to_string();
        Documents::new(DocumentSettings {
            trusted: Some(Arc::new(
                TrustedDocuments::parse(manifest.as_bytes()).unwrap(),
            )),
            mode,
            exempt_admins,
            ..DocumentSettings::default()
        })
    }

    #[test]
    fn apq_registers_a_document_sent_whole_and_finds_it_by_hash() {
        let docs = Documents::new(DocumentSettings::default());
        let other = "{ models { totalCount } }";
        let by_hash = || Requested {
            persisted: apq(&hex(other)),
            ..Requested::default()
        };
        assert_eq!(docs.resolve(by_hash()).unwrap_err(), Refused::NotFound);
        let whole = docs
            .resolve(Requested {
                query: Some(other.into()),
                persisted: apq(&hex(other)),
                ..Requested::default()
            })
            .unwrap();
        // Not registered until the request was authenticated and admitted.
        assert_eq!(docs.resolve(by_hash()).unwrap_err(), Refused::NotFound);
        docs.register(&whole);
        assert_eq!(docs.resolve(by_hash()).unwrap().query, other);
        assert_eq!(docs.apq_held(), (1, other.len()));

        let mismatch = docs.resolve(Requested {
            query: Some(Q.into()),
            persisted: apq(&hex(other)),
            ..Requested::default()
        });
        assert!(matches!(mismatch, Err(Refused::Bad(m)) if m.contains("does not match")));
        for bad in [
            json!({"version": 2, "sha256Hash": hex(Q)}),
            json!({"version": 1, "sha256Hash": "zz"}),
        ] {
            let refused = docs.resolve(Requested {
                persisted: Some(bad),
                ..Requested::default()
            });
            assert!(matches!(refused, Err(Refused::Bad(_))), "{refused:?}");
        }
        assert_eq!(
            docs.resolve(Requested::default()).unwrap_err(),
            Refused::Bad("`query` is required".into())
        );
        let off = Documents::new(DocumentSettings {
            apq: false,
            ..DocumentSettings::default()
        });
        assert_eq!(off.resolve(by_hash()).unwrap_err(), Refused::NotSupported);
    }

    #[test]
    fn the_apq_cache_is_bounded_by_count_and_bytes() {
        let docs = Documents::new(DocumentSettings {
            apq_max_entries: 3,
            apq_max_bytes: 100,
            ..DocumentSettings::default()
        });
        let register = |text: &str| {
            let document = docs
                .resolve(Requested {
                    query: Some(text.into()),
                    persisted: apq(&hex(text)),
                    ..Requested::default()
                })
                .unwrap();
            docs.register(&document);
        };
        for i in 0..10 {
            register(&format!("{{ a{i} }}"));
        }
        assert_eq!(docs.apq_held().0, 3);
        register(&"x".repeat(60));
        register(&"y".repeat(60));
        let (entries, bytes) = docs.apq_held();
        assert!(bytes <= 100 && entries >= 1, "{entries} {bytes}");
        register(&"z".repeat(101));
        assert!(docs.apq_held().1 <= 100);
    }

    #[test]
    fn trusted_documents_by_id_hash_or_text() {
        let docs = documents(TrustMode::Require, false);
        let by_id = |id: &str| Requested {
            document_id: Some(id.into()),
            ..Requested::default()
        };
        assert_eq!(docs.resolve(by_id("abc123")).unwrap().query, Q);
        let by_sha = docs.resolve(by_id(&format!("sha256:{}", hex(Q)))).unwrap();
        assert!(by_sha.trusted);
        assert_eq!(
            docs.resolve(by_id("nope")).unwrap_err(),
            Refused::UnknownId("nope".into())
        );
        let by_apq_hash = docs
            .resolve(Requested {
                persisted: apq(&hex(Q)),
                ..Requested::default()
            })
            .unwrap();
        assert_eq!(
            (by_apq_hash.trusted, docs.gate(&by_apq_hash)),
            (true, Gate::Open)
        );
        let listed_text = docs
            .resolve(Requested {
                query: Some(Q.into()),
                ..Requested::default()
            })
            .unwrap();
        assert_eq!(docs.gate(&listed_text), Gate::Open);
        let unlisted = docs
            .resolve(Requested {
                query: Some("{ models { totalCount } }".into()),
                ..Requested::default()
            })
            .unwrap();
        assert_eq!(docs.gate(&unlisted), Gate::Refused);
        let exempting = documents(TrustMode::Require, true);
        assert_eq!(exempting.gate(&unlisted), Gate::AdminOnly);
        assert_eq!(
            documents(TrustMode::Allow, false).gate(&unlisted),
            Gate::Open
        );
    }

    #[test]
    fn reads_the_manifest_formats() {
        let apollo = json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [{"id": "h1", "name": "Me", "type": "query", "body": Q}]
        });
        let docs = TrustedDocuments::parse(apollo.to_string().as_bytes()).unwrap();
        assert_eq!(docs.by_document_id("h1").map(|t| &**t), Some(Q));
        assert!(TrustedDocuments::parse(b"{}").is_err());
        assert!(TrustedDocuments::parse(br#"{"a": 1}"#).is_err());
        assert!(TrustedDocuments::parse(b"[]").is_err());
    }
}
