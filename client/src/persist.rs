//! Crash-safe, checksummed files: every write goes to a temporary file in the same directory, is
//! fsynced, then renamed over the target (and the directory fsynced), so a reader sees the old
//! file or the new one, never half of either. The payload travels inside an envelope with its
//! SHA-256, so a truncated, corrupted or hand-edited file is detected and never trusted.
//!
//! The checksum guards against accidents, not adversaries: whoever can edit the file can
//! recompute it. What matters for licensing is signed (leases are re-verified on every load)
//! or re-learnt from the server on the next heartbeat.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Marks the envelope layout, so a future layout is recognised rather than misread.
const FORMAT: &str = "nectar-sealed/1";

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    sha256: String,
    /// The payload JSON as text, so the checksum covers exactly the bytes that were written.
    payload: String,
}

/// Why a sealed file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file exists but is not an intact envelope of the expected payload.
    #[error("{path} is corrupted ({reason}); it is ignored")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: &'static str,
    },
    /// The value could not be serialised.
    #[error("could not serialise the state: {0}")]
    Encode(#[from] serde_json::Error),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_owned(),
        source,
    }
}

fn digest(payload: &str) -> String {
    hex::encode(Sha256::digest(payload.as_bytes()))
}

/// Serialises `value` into a checksummed envelope.
pub fn seal<T: Serialize>(value: &T) -> Result<Vec<u8>, PersistError> {
    let payload = serde_json::to_string(value)?;
    let envelope = Envelope {
        format: FORMAT.into(),
        sha256: digest(&payload),
        payload,
    };
    Ok(serde_json::to_vec(&envelope)?)
}

/// Opens an envelope made by [`seal`]; `None` if it is not intact.
fn unseal<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, &'static str> {
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|_| "not an envelope")?;
    if envelope.format != FORMAT {
        return Err("unknown format");
    }
    if envelope.sha256 != digest(&envelope.payload) {
        return Err("checksum mismatch");
    }
    serde_json::from_str(&envelope.payload).map_err(|_| "unreadable payload")
}

/// Writes `bytes` to `path` atomically and durably (temp file + fsync + rename + dir fsync).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Unique per write, so concurrent writers never share a temp file; a crash leaves at most a
    // stray `.tmp` file, which readers never open.
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, path).map_err(io_err(path))?;
        // The rename is durable only once the directory entry is on disk.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Seals `value` and writes it atomically to `path`.
pub fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), PersistError> {
    write_atomic(path, &seal(value)?)
}

/// Reads a sealed file: `Ok(None)` if absent, `Err(Corrupt)` if present but not intact.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, PersistError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    unseal(&bytes)
        .map(Some)
        .map_err(|reason| PersistError::Corrupt {
            path: path.to_owned(),
            reason,
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh directory under the system temp dir (removed by the OS, not by us).
    pub(crate) fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nectar-client-{label}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        n: i64,
    }

    fn sample() -> Sample {
        Sample {
            name: "lease".into(),
            n: 42,
        }
    }

    #[test]
    fn a_saved_value_loads_back_and_no_temp_file_remains() {
        // Arrange
        let dir = temp_dir("roundtrip");
        let path = dir.join("state.json");
        // Act
        save(&path, &sample()).expect("save");
        save(&path, &Sample { n: 43, ..sample() }).expect("overwrite");
        // Assert
        let loaded: Option<Sample> = load(&path).expect("load");
        assert_eq!(loaded, Some(Sample { n: 43, ..sample() }));
        let names: Vec<String> = fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn a_missing_file_is_no_state_not_an_error() {
        let dir = temp_dir("missing");
        assert!(matches!(load::<Sample>(&dir.join("nope.json")), Ok(None)));
    }

    #[test]
    fn truncated_edited_or_garbage_files_are_detected_as_corrupt() {
        let dir = temp_dir("corrupt");
        let path = dir.join("state.json");
        save(&path, &sample()).expect("save");
        let good = fs::read_to_string(&path).expect("read");
        let edited = good.replace("42", "99");
        assert_ne!(edited, good);
        for (label, bytes) in [
            ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
            ("edited", edited.into_bytes()),
            ("garbage", b"\x00\x01not json".to_vec()),
            ("empty", Vec::new()),
        ] {
            fs::write(&path, &bytes).expect("write");
            assert!(
                matches!(load::<Sample>(&path), Err(PersistError::Corrupt { .. })),
                "{label}"
            );
        }
    }

    #[test]
    fn an_interrupted_write_leaves_the_previous_file_intact() {
        // A crash between writing the temp file and the rename: the temp file is left over, the
        // target still holds the previous complete state.
        let dir = temp_dir("interrupted");
        let path = dir.join("state.json");
        save(&path, &sample()).expect("save");
        let half = &seal(&Sample { n: 7, ..sample() }).expect("seal")[..10];
        fs::write(dir.join(".state.json.dead.tmp"), half).expect("stray temp");
        assert_eq!(load::<Sample>(&path).expect("load"), Some(sample()));
    }
}
