//! Bearer-token authentication of the listeners.
//!
//! Three scopes, each with its own token file: `ingest` (OTLP over gRPC and HTTP), `read` (the
//! API's reads and `/metrics`) and `write` (the API's changes: reloads, silences, posted
//! alerts, incidents, deployments, rollback approvals). A write token also reads. A scope
//! with no token file is open, so an unconfigured collector behaves as before.
//!
//! A token file holds one token per line (blank lines and `#` comments ignored), so an operator
//! can give each agent its own token and rotate one by adding the new line, reloading
//! (SIGHUP), moving the agents over and removing the old line. Tokens are kept only as SHA-256
//! digests and compared in constant time, so neither timing nor length reveals them.
//!
//! Lifecycle: [`Tokens::load`] reads the files at start (and `validate` calls it too);
//! [`Tokens::reload`] re-reads them on SIGHUP and keeps the tokens in force when a file has
//! become unreadable or empty, so a bad edit does not lock every agent out.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

/// What a request wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Ingest,
    Read,
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
}

/// The token files named in the configuration (`auth:`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenFiles {
    pub ingest: Option<PathBuf>,
    pub read: Option<PathBuf>,
    pub write: Option<PathBuf>,
}

/// A problem with a token file, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: cannot read the {scope} token file: {source}")]
    Read {
        path: PathBuf,
        scope: &'static str,
        source: std::io::Error,
    },
    #[error("{path}: the {scope} token file has no token (one token per line)")]
    Empty { path: PathBuf, scope: &'static str },
    #[error("{path}:{line}: a token must be printable ASCII without spaces")]
    Malformed { path: PathBuf, line: usize },
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A token that is not valid for any scope.
    Invalid,
    /// A valid token of another scope (a read token on a write): authenticated, not allowed.
    Forbidden,
}

impl Denied {
    pub fn as_str(self) -> &'static str {
        match self {
            Denied::Missing => "missing",
            Denied::Invalid => "invalid",
            Denied::Forbidden => "forbidden",
        }
    }

    pub fn message(self, scope: Scope) -> String {
        match self {
            Denied::Missing => format!(
                "authentication required: send \"Authorization: Bearer <token>\" with a {} token",
                scope.as_str()
            ),
            Denied::Invalid => "the bearer token is not valid".to_owned(),
            Denied::Forbidden => format!(
                "the bearer token is valid but not a {} token",
                scope.as_str()
            ),
        }
    }
}

type Digest = [u8; 32];

#[derive(Debug, Default)]
struct Sets {
    /// The files the sets were read from: a reload re-reads them, a configuration reload may
    /// name others.
    files: TokenFiles,
    ingest: Option<Vec<Digest>>,
    read: Option<Vec<Digest>>,
    write: Option<Vec<Digest>>,
}

/// The tokens in force; cheap to clone and shared by every listener.
#[derive(Clone, Debug)]
pub struct Tokens {
    sets: Arc<RwLock<Sets>>,
}

fn digest(token: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Reads one token file: one token per line, `#` comments and blank lines ignored.
pub fn read_token_file(path: &Path, scope: Scope) -> Result<Vec<String>, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_owned(),
        scope: scope.as_str(),
        source,
    })?;
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::Malformed {
                path: path.to_owned(),
                line: i + 1,
            });
        }
        tokens.push(line.to_owned());
    }
    if tokens.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_owned(),
            scope: scope.as_str(),
        });
    }
    Ok(tokens)
}

fn load_set(path: Option<&Path>, scope: Scope) -> Result<Option<Vec<Digest>>, TokenError> {
    path.map(|p| {
        read_token_file(p, scope).map(|t| t.iter().map(|t| digest(t.as_bytes())).collect())
    })
    .transpose()
}

impl Tokens {
    /// Tokens that let everything through.
    pub fn open() -> Tokens {
        Tokens {
            sets: Arc::default(),
        }
    }

    /// Reads every configured token file; any problem is an error.
    pub fn load(files: &TokenFiles) -> Result<Tokens, TokenError> {
        let sets = Sets {
            files: files.clone(),
            ingest: load_set(files.ingest.as_deref(), Scope::Ingest)?,
            read: load_set(files.read.as_deref(), Scope::Read)?,
            write: load_set(files.write.as_deref(), Scope::Write)?,
        };
        Ok(Tokens {
            sets: Arc::new(RwLock::new(sets)),
        })
    }

    /// Re-reads the files. A file that cannot be read keeps its previous tokens; the problems
    /// are returned for the reload's report.
    pub fn reload(&self) -> Vec<String> {
        let files = match self.sets.read() {
            Ok(sets) => sets.files.clone(),
            Err(_) => return vec!["token state is poisoned; the tokens in force stay".into()],
        };
        self.reconfigure(&files)
    }

    /// Reads the tokens from `files` (a configuration reload may name other files, add a scope
    /// or drop one). Each scope changes only when its file could be read: a scope whose file
    /// fails keeps its previous file and tokens, and the problem is returned.
    pub fn reconfigure(&self, files: &TokenFiles) -> Vec<String> {
        let mut problems = Vec::new();
        let mut fresh = |path: Option<&Path>, scope| match load_set(path, scope) {
            Ok(set) => Some(set),
            Err(e) => {
                problems.push(format!("{e}; the previous {} tokens stay", scope.as_str()));
                None
            }
        };
        let ingest = fresh(files.ingest.as_deref(), Scope::Ingest);
        let read = fresh(files.read.as_deref(), Scope::Read);
        let write = fresh(files.write.as_deref(), Scope::Write);
        if let Ok(mut sets) = self.sets.write() {
            if let Some(s) = ingest {
                sets.ingest = s;
                sets.files.ingest = files.ingest.clone();
            }
            if let Some(s) = read {
                sets.read = s;
                sets.files.read = files.read.clone();
            }
            if let Some(s) = write {
                sets.write = s;
                sets.files.write = files.write.clone();
            }
        }
        problems
    }

    /// Whether requests of `scope` need a token at all.
    pub fn required(&self, scope: Scope) -> bool {
        let Ok(sets) = self.sets.read() else {
            return true;
        };
        match scope {
            Scope::Ingest => sets.ingest.is_some(),
            Scope::Read => sets.read.is_some() || sets.write.is_some(),
            Scope::Write => sets.write.is_some(),
        }
    }

    /// Checks a presented token (the part after `Bearer `) against the scope.
    pub fn check(&self, scope: Scope, presented: Option<&str>) -> Result<(), Denied> {
        let Ok(sets) = self.sets.read() else {
            return Err(Denied::Invalid);
        };
        // Reads are open only while neither reads nor writes are protected: once a write
        // token exists, a read token (or the write token) is needed to read.
        let allowed: Vec<&Vec<Digest>> = match scope {
            Scope::Ingest => sets.ingest.iter().collect(),
            Scope::Read => sets.read.iter().chain(sets.write.iter()).collect(),
            Scope::Write => sets.write.iter().collect(),
        };
        if allowed.is_empty() {
            return Ok(());
        }
        let Some(token) = presented else {
            return Err(Denied::Missing);
        };
        let d = digest(token.as_bytes());
        // Every candidate is compared, so the time taken does not say which one matched.
        let mut ok = subtle::Choice::from(0u8);
        for candidate in allowed.into_iter().flatten() {
            ok |= candidate.ct_eq(&d);
        }
        if bool::from(ok) {
            return Ok(());
        }
        let mut known = subtle::Choice::from(0u8);
        for candidate in [&sets.ingest, &sets.read, &sets.write]
            .into_iter()
            .flatten()
            .flatten()
        {
            known |= candidate.ct_eq(&d);
        }
        if bool::from(known) {
            Err(Denied::Forbidden)
        } else {
            Err(Denied::Invalid)
        }
    }

    /// [`Tokens::check`] on a request's `Authorization` header.
    pub fn check_headers(&self, scope: Scope, headers: &HeaderMap) -> Result<(), Denied> {
        self.check(scope, bearer(headers))
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    bearer_value(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// The token of an `Authorization` value `Bearer <token>` (HTTP header or gRPC metadata).
pub fn bearer_value(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn open_scopes_need_nothing() {
        let t = Tokens::open();
        for s in [Scope::Ingest, Scope::Read, Scope::Write] {
            assert_eq!(t.check(s, None), Ok(()));
            assert!(!t.required(s));
        }
    }

    #[test]
    fn scopes_and_write_implies_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Tokens::load(&TokenFiles {
            ingest: Some(file(&dir, "i", "agent-a\n# comment\n\nagent-b\n")),
            read: Some(file(&dir, "r", "reader\n")),
            write: Some(file(&dir, "w", "  writer  \n")),
        })
        .expect("load");
        assert_eq!(t.check(Scope::Ingest, Some("agent-a")), Ok(()));
        assert_eq!(t.check(Scope::Ingest, Some("agent-b")), Ok(()));
        assert_eq!(
            t.check(Scope::Ingest, Some("reader")),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            t.check(Scope::Ingest, Some("stranger")),
            Err(Denied::Invalid)
        );
        assert_eq!(t.check(Scope::Ingest, None), Err(Denied::Missing));
        assert_eq!(t.check(Scope::Read, Some("reader")), Ok(()));
        assert_eq!(t.check(Scope::Read, Some("writer")), Ok(()));
        assert_eq!(t.check(Scope::Write, Some("writer")), Ok(()));
        assert_eq!(
            t.check(Scope::Write, Some("reader")),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            t.check(Scope::Write, Some("agent-a")),
            Err(Denied::Forbidden)
        );
        assert_eq!(t.check(Scope::Read, Some("")), Err(Denied::Invalid));
    }

    #[test]
    fn a_write_token_alone_protects_reads_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Tokens::load(&TokenFiles {
            write: Some(file(&dir, "w", "writer\n")),
            ..TokenFiles::default()
        })
        .expect("load");
        assert_eq!(t.check(Scope::Read, None), Err(Denied::Missing));
        assert_eq!(t.check(Scope::Read, Some("writer")), Ok(()));
        assert_eq!(t.check(Scope::Ingest, None), Ok(()));
    }

    #[test]
    fn file_problems_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = file(&dir, "empty", "# nothing\n\n");
        let e = Tokens::load(&TokenFiles {
            ingest: Some(empty.clone()),
            ..TokenFiles::default()
        })
        .expect_err("empty");
        assert!(e.to_string().contains(&empty.display().to_string()), "{e}");
        let bad = file(&dir, "bad", "ok\nhas space\n");
        let e = Tokens::load(&TokenFiles {
            read: Some(bad),
            ..TokenFiles::default()
        })
        .expect_err("malformed");
        assert!(
            e.to_string()
                .ends_with(":2: a token must be printable ASCII without spaces"),
            "{e}"
        );
        let e = Tokens::load(&TokenFiles {
            write: Some(dir.path().join("missing")),
            ..TokenFiles::default()
        })
        .expect_err("missing");
        assert!(
            e.to_string().contains("cannot read the write token file"),
            "{e}"
        );
    }

    #[test]
    fn reload_swaps_tokens_and_keeps_them_when_a_file_breaks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file(&dir, "i", "old\n");
        let t = Tokens::load(&TokenFiles {
            ingest: Some(path.clone()),
            ..TokenFiles::default()
        })
        .expect("load");
        std::fs::write(&path, "new\n").expect("write");
        assert!(t.reload().is_empty());
        assert_eq!(t.check(Scope::Ingest, Some("old")), Err(Denied::Invalid));
        assert_eq!(t.check(Scope::Ingest, Some("new")), Ok(()));
        std::fs::write(&path, "\n").expect("write");
        let problems = t.reload();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(t.check(Scope::Ingest, Some("new")), Ok(()));
    }

    #[test]
    fn bearer_header_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("hv"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "bearer   abc ".parse().expect("hv"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().expect("hv"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().expect("hv"));
        assert_eq!(bearer(&h), None);
    }
}
