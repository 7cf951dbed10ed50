//! What an installation remembers across restarts, in one checksummed, atomically written file:
//! its id, the lease token, the endorsements of the server's signing keys, the trusted-time
//! high-water mark, the lock, and a pending tamper signal.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decision::LockReason;
use crate::persist::{self, PersistError};

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "state.json";

/// A lock the server imposed, with when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// The verdict.
    pub reason: LockReason,
    /// The server's sentence.
    pub detail: String,
    /// When it was learnt (trusted Unix seconds).
    pub at: i64,
}

/// The persisted state. Its `Debug` never prints the lease token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// This installation's id (generated once when not configured).
    #[serde(default)]
    pub installation_id: Option<String>,
    /// Fingerprint of the license key this state was learnt under.
    #[serde(default)]
    pub key_id: Option<String>,
    /// The current lease (compact JWS); re-verified on every load.
    #[serde(default)]
    pub lease: Option<String>,
    /// Endorsements of signing keys (compact JWS), as last fetched. They add no trust of their
    /// own: each is checked against the compiled-in roots on every load.
    #[serde(default)]
    pub endorsements: Vec<String>,
    /// Highest trusted time seen (Unix seconds): server `ts` and local wall time.
    #[serde(default)]
    pub high_water: i64,
    /// A conclusive server verdict that locks the installation.
    #[serde(default)]
    pub lock: Option<Lock>,
    /// A clock rollback was seen and not yet reported to the server.
    #[serde(default)]
    pub tamper_pending: bool,
    /// Trusted time of the last heartbeat the server answered.
    #[serde(default)]
    pub last_heartbeat_at: Option<i64>,
    /// The server's heartbeat interval from that answer, in seconds.
    #[serde(default)]
    pub heartbeat_interval: Option<i64>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("installation_id", &self.installation_id)
            .field("lease", &self.lease.as_ref().map(|_| "<redacted>"))
            .field("endorsements", &self.endorsements.len())
            .field("high_water", &self.high_water)
            .field("lock", &self.lock)
            .field("tamper_pending", &self.tamper_pending)
            .field("last_heartbeat_at", &self.last_heartbeat_at)
            .finish()
    }
}

/// Reads and writes [`State`] in a directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
}

impl StateStore {
    /// The store for `dir`/[`STATE_FILE`].
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(STATE_FILE),
        }
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored state; a missing file is the default state, and so is a corrupted one, with a
    /// warning: a damaged file is never trusted (the installation re-learns from the server).
    pub fn load(&self) -> State {
        match persist::load(&self.path) {
            Ok(state) => state.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "state file not usable; starting without state");
                State::default()
            }
        }
    }

    /// Like [`StateStore::load`] but reporting why the file was not usable.
    pub fn try_load(&self) -> Result<Option<State>, PersistError> {
        persist::load(&self.path)
    }

    /// Writes `state` atomically.
    pub fn save(&self, state: &State) -> Result<(), PersistError> {
        persist::save(&self.path, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::tests::temp_dir;

    #[test]
    fn a_corrupted_state_file_is_detected_and_treated_as_no_state() {
        // Arrange
        let dir = temp_dir("state");
        let store = StateStore::in_dir(&dir);
        let state = State {
            installation_id: Some("inst-1".into()),
            lease: Some("a.b.c".into()),
            high_water: 1_000,
            ..State::default()
        };
        store.save(&state).expect("save");
        assert_eq!(store.load(), state);
        // Act: flip one byte inside the payload.
        let mut bytes = std::fs::read(store.path()).expect("read");
        let at = bytes.len() / 2;
        bytes[at] = bytes[at].wrapping_add(1);
        std::fs::write(store.path(), &bytes).expect("write");
        // Assert
        assert!(matches!(
            store.try_load(),
            Err(PersistError::Corrupt { .. })
        ));
        assert_eq!(store.load(), State::default());
    }

    #[test]
    fn state_debug_output_never_shows_the_lease() {
        let state = State {
            lease: Some("eyJhbGciOiJFUzI1NiJ9.secret.sig".into()),
            ..State::default()
        };
        let shown = format!("{state:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
