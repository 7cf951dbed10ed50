//! The local API's bearer token: 32 random bytes (base64url) in `<state dir>/api-token`, readable
//! by its owner only. Anything on the machine can open a TCP connection to loopback, and a web
//! page can send it requests; only the product, which reads this file (or `nectar-agent token`),
//! knows the token. Created once and reused across restarts; the agent refuses to start on a file
//! others could read or replace, since then the token would not be a secret.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use subtle::ConstantTimeEq as _;

/// The token's file name inside the state directory.
pub const FILE_NAME: &str = "api-token";
/// Random bytes in a generated token (256 bits: not guessable, not enumerable).
const TOKEN_BYTES: usize = 32;
/// Shortest token accepted from an existing file: a hand-written short one would be guessable.
pub const MIN_TOKEN_CHARS: usize = 32;
/// Longest file read: a token is 43 characters; anything much larger is not one.
const MAX_FILE_BYTES: u64 = 4096;

/// The secret the product presents as `Authorization: Bearer <token>`. Its `Debug` never shows it.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    /// The token text, for the product (`nectar-agent token`) and tests.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is the token, in time independent of where they differ (a timing
    /// difference would let a caller guess it byte by byte). The length is not secret.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    /// A new token from the operating system's random number generator.
    fn generate() -> Result<Self, TokenError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| TokenError::Rng(e.to_string()))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Why the token could not be created or loaded (the agent does not start).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or writing failed.
    #[error("API token {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Other users may read or write the file, so the token is not a secret.
    #[error(
        "API token {path} is accessible to other users (mode {mode:03o}); run `chmod 600 {path}` (or delete it to get a new token) and start again"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is empty.
    #[error("API token {path} is empty; delete it to get a new token")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file does not hold a usable token.
    #[error(
        "API token {path} does not hold a usable token (one line of at least {MIN_TOKEN_CHARS} characters from A-Z a-z 0-9 - . _ ~ + / =); delete it to get a new token"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The operating system's random number generator failed.
    #[error("cannot generate the API token: {0}")]
    Rng(String),
}

/// Loads the token from `<state_dir>/api-token`, creating it (mode 0600) on first start.
pub fn load_or_create(state_dir: &Path) -> Result<ApiToken, TokenError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TokenError::Io { path, source }
    };
    fs::create_dir_all(state_dir).map_err(io(state_dir))?;
    let path = state_dir.join(FILE_NAME);
    match File::open(&path) {
        Ok(file) => return read_existing(&path, file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&path)(e)),
    }
    let token = ApiToken::generate()?;
    let tmp = state_dir.join(format!(
        ".{FILE_NAME}.{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let written = write_private(&tmp, token.expose()).map_err(io(&tmp));
    // Published with a hard link, not a rename: the link fails if the file appeared meanwhile
    // (`nectar-agent token` and `run` starting together), so both end up with the same token
    // instead of the last writer silently replacing the one the other already handed out. Either
    // way readers see no file or a complete one.
    let published = written.and_then(|()| fs::hard_link(&tmp, &path).map_err(io(&path)));
    let _ = fs::remove_file(&tmp);
    match published {
        Ok(()) => {
            // The new name is durable only once the directory entry is on disk.
            if let Ok(dir) = File::open(state_dir) {
                let _ = dir.sync_all();
            }
            Ok(token)
        }
        Err(TokenError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
            let file = File::open(&path).map_err(io(&path))?;
            read_existing(&path, file)
        }
        Err(e) => Err(e),
    }
}

/// Writes `text` to a new file only its owner can read, and flushes it to disk.
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Set at creation, so the file is never readable by others, not even briefly.
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Checks and reads an existing token file (through the open handle: what is checked is what is
/// read).
fn read_existing(path: &Path, file: File) -> Result<ApiToken, TokenError> {
    let meta = file.metadata().map_err(|source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(TokenError::Malformed {
            path: path.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        // Group or others may read it (the token leaks) or write it (it can be replaced).
        if mode & 0o077 != 0 {
            return Err(TokenError::Exposed {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|_| TokenError::Malformed {
            path: path.to_path_buf(),
        })?;
    // A trailing newline from an editor or `echo` is not part of the token.
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_path_buf(),
        });
    }
    // The product sends it in a header: only token68 characters, and long enough not to guess.
    let usable = token.len() >= MIN_TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
    if !usable {
        return Err(TokenError::Malformed {
            path: path.to_path_buf(),
        });
    }
    Ok(ApiToken(token.to_owned()))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nectar-agent-token-{}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn the_token_file_is_created_with_mode_0600_and_reused_across_restarts() {
        let dir = temp_dir();
        let first = load_or_create(&dir).expect("created");
        let path = dir.join(FILE_NAME);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            first.expose().len(),
            43,
            "32 bytes, base64url without padding"
        );
        assert_eq!(fs::read_to_string(&path).expect("read"), first.expose());
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&dir).expect("dir").count(), 1);
        let again = load_or_create(&dir).expect("reused");
        assert_eq!(again.expose(), first.expose());
        assert_ne!(
            load_or_create(&temp_dir()).expect("other").expose(),
            first.expose(),
            "random per installation"
        );
    }

    #[test]
    fn a_group_or_world_accessible_token_file_is_refused() {
        let dir = temp_dir();
        let token = load_or_create(&dir).expect("created");
        let path = dir.join(FILE_NAME);
        for bad in [0o644, 0o640, 0o604, 0o620] {
            fs::set_permissions(&path, fs::Permissions::from_mode(bad)).expect("chmod");
            let refused = load_or_create(&dir).expect_err("exposed");
            assert!(
                matches!(refused, TokenError::Exposed { mode, .. } if mode == bad),
                "{bad:o}: {refused}"
            );
            assert!(refused.to_string().contains("chmod 600"), "{refused}");
        }
        // Nothing was overwritten: fixing the mode brings the same token back.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(load_or_create(&dir).expect("ok").expose(), token.expose());
    }

    #[test]
    fn an_empty_or_unusable_token_file_is_refused() {
        let dir = temp_dir();
        let path = dir.join(FILE_NAME);
        write_private(&path, "\n").expect("write");
        assert!(matches!(
            load_or_create(&dir),
            Err(TokenError::Empty { .. })
        ));
        for bad in ["short", &format!("{} with spaces", "x".repeat(40))] {
            fs::remove_file(&path).expect("rm");
            write_private(&path, bad).expect("write");
            assert!(
                matches!(load_or_create(&dir), Err(TokenError::Malformed { .. })),
                "{bad}"
            );
        }
        // A hand-written token with a trailing newline is fine.
        fs::remove_file(&path).expect("rm");
        let own = "a".repeat(40);
        write_private(&path, &format!("{own}\n")).expect("write");
        assert_eq!(load_or_create(&dir).expect("ok").expose(), own);
    }

    #[test]
    fn tokens_compare_whole_and_debug_hides_them() {
        let token = ApiToken("secret-token-value".into());
        assert!(token.matches("secret-token-value"));
        assert!(!token.matches("secret-token-valuE"));
        assert!(!token.matches("secret-token-valu"));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "ApiToken(<redacted>)");
    }
}
