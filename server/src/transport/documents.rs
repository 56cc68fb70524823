//! Documents a request names instead of (or besides) sending them:
//! - **Automatic persisted queries** (Apollo's protocol): a request carries
//!   `extensions.persistedQuery {version: 1, sha256Hash}`; without `query`
//!   it runs the document registered under that hash, or gets
//!   `PersistedQueryNotFound` and resends it whole, which registers it (the
//!   hash checked). Registered documents live in a bounded LRU cache, by
//!   count and bytes, keyed by tenant and hash: a tenant neither sees
//!   whether another ran a document nor finds it. An entry holds the
//!   document text only, never variables or results. A hash is looked up
//!   once the caller is authenticated, and a document is registered only
//!   once its request ran without a request error (credentials, rates,
//!   parse and validation all passed).
//! - **Trusted documents**: a manifest of the operations an application
//!   ships (`@graphql-codegen/client-preset`'s persisted documents or
//!   Relay's `persisted_queries.json`: `{id: text}`; Apollo's persisted
//!   query manifest: `{operations: [{id, body}]}`). A request names one by
//!   `documentId` (its id, or `sha256:<hash>` as the GraphQL-over-HTTP
//!   persisted-operations appendix writes it) or by APQ hash, or sends its
//!   text. With `require`, nothing else runs: it is refused before it is
//!   parsed (admins may be exempted).

use std::collections::HashMap;
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
    /// The hash to register it under once its request ran.
    register: Option<Hash>,
}

impl Document {
    /// What to register once the request ran cleanly, if anything (a copy
    /// of the text, made only for a document sent whole with its hash).
    pub fn registration(&self) -> Option<Registration> {
        self.register.map(|hash| Registration {
            hash,
            text: Arc::from(self.query.as_str()),
        })
    }
}

/// A document to remember under its hash.
#[derive(Debug)]
pub struct Registration {
    hash: Hash,
    text: Arc<str>,
}

/// A request's document, or the APQ hash to look it up by once the
/// caller's tenant is known.
#[derive(Debug)]
pub enum Resolved {
    Ready(Document),
    Cached(ApqHash),
}

/// An APQ hash not in the trusted documents.
#[derive(Debug, Clone, Copy)]
pub struct ApqHash(Hash);

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
    /// Bounded by the settings' count and bytes (checked on insert, not
    /// preallocated: a large count costs nothing until used).
    entries: lru::LruCache<(Arc<str>, Hash), Arc<str>>,
    bytes: usize,
}

impl Documents {
    pub fn new(settings: DocumentSettings) -> Self {
        Self {
            settings,
            apq: Mutex::new(Apq {
                entries: lru::LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    /// The document a request runs. Cheap: a hash lookup, or one SHA-256
    /// of the text when a manifest or APQ needs it.
    pub fn resolve(&self, requested: Requested) -> Result<Resolved, Refused> {
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
                Some(text) => Ok(Resolved::Ready(Document {
                    query: text.to_string(),
                    trusted: true,
                    register: None,
                })),
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
                Ok(Resolved::Ready(Document {
                    query,
                    trusted: listed,
                    register,
                }))
            }
            (None, Some(hash)) => {
                if let Some(text) = trusted.and_then(|documents| documents.by_hash.get(&hash)) {
                    return Ok(Resolved::Ready(Document {
                        query: text.to_string(),
                        trusted: true,
                        register: None,
                    }));
                }
                if !self.settings.apq {
                    return Err(Refused::NotSupported);
                }
                // Under `require` only an exempt admin could run it: say so
                // now rather than ask for the text only to refuse it.
                if self.settings.mode == TrustMode::Require && !self.settings.exempt_admins {
                    return Err(Refused::NotTrusted);
                }
                Ok(Resolved::Cached(ApqHash(hash)))
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

    /// The document `tenant` registered under `hash`.
    pub fn cached(&self, tenant: &str, hash: ApqHash) -> Result<Document, Refused> {
        let mut apq = self.apq.lock().expect("apq cache lock");
        match apq.entries.get(&(Arc::from(tenant), hash.0)) {
            Some(text) => Ok(Document {
                query: text.to_string(),
                trusted: false,
                register: None,
            }),
            None => Err(Refused::NotFound),
        }
    }

    /// Remembers, for `tenant`, a document its request sent whole and ran
    /// cleanly; the least recently used go first.
    pub fn register(&self, tenant: &str, registration: Registration) {
        let size = registration.text.len();
        if size > self.settings.apq_max_bytes || self.settings.apq_max_entries == 0 {
            return;
        }
        let mut apq = self.apq.lock().expect("apq cache lock");
        let apq = &mut *apq;
        if let Some((_, old)) = apq
            .entries
            .push((Arc::from(tenant), registration.hash), registration.text)
        {
            apq.bytes -= old.len();
        }
        apq.bytes += size;
        while apq.bytes > self.settings.apq_max_bytes
            || apq.entries.len() > self.settings.apq_max_entries
        {
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

    /// The document a request resolves to (its hash looked up for `tenant`).
    fn document(docs: &Documents, tenant: &str, requested: Requested) -> Result<Document, Refused> {
        match docs.resolve(requested)? {
            Resolved::Ready(document) => Ok(document),
            Resolved::Cached(hash) => docs.cached(tenant, hash),
        }
    }

    fn register(docs: &Documents, tenant: &str, text: &str) {
        let whole = Requested {
            query: Some(text.into()),
            persisted: apq(&hex(text)),
            ..Requested::default()
        };
        let document = document(docs, tenant, whole).unwrap();
        docs.register(tenant, document.registration().unwrap());
    }

    #[test]
    fn apq_registers_a_document_sent_whole_and_finds_it_by_hash_per_tenant() {
        let docs = Documents::new(DocumentSettings::default());
        let other = "{ models { totalCount } }";
        let by_hash = || Requested {
            persisted: apq(&hex(other)),
            ..Requested::default()
        };
        assert_eq!(
            document(&docs, "a", by_hash()).unwrap_err(),
            Refused::NotFound
        );
        // Resolving does not register: only a request that ran does.
        let whole = Requested {
            query: Some(other.into()),
            persisted: apq(&hex(other)),
            ..Requested::default()
        };
        document(&docs, "a", whole).unwrap();
        assert_eq!(
            document(&docs, "a", by_hash()).unwrap_err(),
            Refused::NotFound
        );
        register(&docs, "a", other);
        assert_eq!(document(&docs, "a", by_hash()).unwrap().query, other);
        assert_eq!(docs.apq_held(), (1, other.len()));
        // Another tenant neither finds it nor learns it exists.
        assert_eq!(
            document(&docs, "b", by_hash()).unwrap_err(),
            Refused::NotFound
        );
        // A document named by a listed id or sent as text registers nothing.
        let plain = Requested {
            query: Some(other.into()),
            ..Requested::default()
        };
        assert!(document(&docs, "a", plain)
            .unwrap()
            .registration()
            .is_none());

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
        for i in 0..10 {
            register(&docs, "a", &format!("{{ a{i} }}"));
        }
        assert_eq!(docs.apq_held().0, 3);
        // The most recent stay.
        let recent = Requested {
            persisted: apq(&hex("{ a9 }")),
            ..Requested::default()
        };
        assert!(document(&docs, "a", recent).is_ok());
        register(&docs, "a", &"x".repeat(60));
        register(&docs, "a", &"y".repeat(60));
        let (entries, bytes) = docs.apq_held();
        assert!(bytes <= 100 && entries >= 1, "{entries} {bytes}");
        register(&docs, "a", &"z".repeat(101));
        assert!(docs.apq_held().1 <= 100);
        // A huge count costs nothing up front.
        let big = Documents::new(DocumentSettings {
            apq_max_entries: usize::MAX,
            ..DocumentSettings::default()
        });
        assert_eq!(big.apq_held(), (0, 0));
    }

    #[test]
    fn trusted_documents_by_id_hash_or_text() {
        let docs = documents(TrustMode::Require, false);
        let by_id = |id: &str| Requested {
            document_id: Some(id.into()),
            ..Requested::default()
        };
        assert_eq!(document(&docs, "a", by_id("abc123")).unwrap().query, Q);
        let by_sha = document(&docs, "a", by_id(&format!("sha256:{}", hex(Q)))).unwrap();
        assert!(by_sha.trusted);
        assert_eq!(
            docs.resolve(by_id("nope")).unwrap_err(),
            Refused::UnknownId("nope".into())
        );
        let by_apq_hash = document(
            &docs,
            "a",
            Requested {
                persisted: apq(&hex(Q)),
                ..Requested::default()
            },
        )
        .unwrap();
        assert_eq!(
            (by_apq_hash.trusted, docs.gate(&by_apq_hash)),
            (true, Gate::Open)
        );
        // An unlisted hash under `require` is refused at once, not
        // "not found" (which would only make the client send the text).
        let unlisted_hash = Requested {
            persisted: apq(&hex("{ models { totalCount } }")),
            ..Requested::default()
        };
        assert_eq!(
            docs.resolve(unlisted_hash).unwrap_err(),
            Refused::NotTrusted
        );
        let listed_text = document(
            &docs,
            "a",
            Requested {
                query: Some(Q.into()),
                ..Requested::default()
            },
        )
        .unwrap();
        assert_eq!(docs.gate(&listed_text), Gate::Open);
        let unlisted = document(
            &docs,
            "a",
            Requested {
                query: Some("{ models { totalCount } }".into()),
                ..Requested::default()
            },
        )
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
