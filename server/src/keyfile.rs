//! The OPAQUE server key file.
//!
//! The server setup (OPRF seed and 3DH key pair) turns stored OPAQUE records into
//! something a passphrase guess can be checked against. DESIGN.md keeps it apart from the
//! database: whoever steals only the sled directory (or a backup of it) can test no guess
//! offline. So the file lives outside the data directory — [`load_or_create`] refuses a
//! path inside it — and is created readable by its owner only.
//!
//! Format, version 1: the 18 bytes `coffre-server-key` and a NUL, one version byte (1),
//! then the serialized server setup. A file without that prefix is the unversioned form
//! of the first releases (the setup alone) and is still read as it is.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use coffre_core::opaque::ServerSetup;

/// Why the key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The key file would sit inside the data directory.
    #[error("the server key file {key} is inside the data directory {data}; keep it apart (DESIGN.md, \"Cryptography\")")]
    InsideDataDir {
        /// Key file path.
        key: PathBuf,
        /// Data directory.
        data: PathBuf,
    },
    /// Reading or writing failed.
    #[error("server key file {path}: {source}")]
    Io {
        /// Key file path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not hold a server setup.
    #[error("server key file {0} is malformed")]
    Malformed(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Absolute form of `path`, resolving symlinks of the longest existing ancestor, so that
/// `data/../data/key` or a symlink into the data directory is still caught.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            let mut out = canonical;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return Ok(out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(absolute),
        }
    }
}

/// Refuses a key file path inside the data directory.
pub fn check_outside(key: &Path, data_dir: &Path) -> Result<(), KeyFileError> {
    let key_abs = resolve(key).map_err(io(key))?;
    let data_abs = resolve(data_dir).map_err(io(data_dir))?;
    if key_abs.starts_with(&data_abs) {
        return Err(KeyFileError::InsideDataDir {
            key: key_abs,
            data: data_abs,
        });
    }
    Ok(())
}

/// The prefix of a versioned key file.
const MAGIC: &[u8] = b"coffre-server-key\0";
/// The version this server writes.
const VERSION: u8 = 1;

/// The setup bytes inside a key file's bytes, by its version.
fn setup_bytes(file: &[u8]) -> Option<&[u8]> {
    match file.strip_prefix(MAGIC) {
        Some([VERSION, setup @ ..]) => Some(setup),
        Some(_) => None, // a version this server does not know
        None => Some(file),
    }
}

/// Reads the server setup from `key`, or creates it (mode 0600) on first run.
/// Returns the setup and whether it was created now.
pub fn load_or_create(key: &Path, data_dir: &Path) -> Result<(ServerSetup, bool), KeyFileError> {
    check_outside(key, data_dir)?;
    match fs::read(key) {
        Ok(bytes) => {
            let setup = setup_bytes(&bytes)
                .and_then(|b| ServerSetup::from_bytes(b).ok())
                .ok_or_else(|| KeyFileError::Malformed(key.to_owned()))?;
            warn_if_readable_by_others(key);
            Ok((setup, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let setup = ServerSetup::generate();
            let file = [MAGIC, &[VERSION], setup.to_bytes().as_slice()].concat();
            write_new(key, &file).map_err(io(key))?;
            Ok((setup, true))
        }
        Err(e) => Err(io(key)(e)),
    }
}

/// Reads the serialized setup (for `audit`, which looks for it inside the store).
pub fn read_raw(key: &Path) -> Result<Vec<u8>, KeyFileError> {
    let file = fs::read(key).map_err(io(key))?;
    setup_bytes(&file)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| KeyFileError::Malformed(key.to_owned()))
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut options = fs::OpenOptions::new();
    // create_new: never overwrite an existing key (that would lock every account out).
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "server key file is readable by group or others; chmod 600 it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn created_once_then_reloaded_identically() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let key = dir.path().join("secrets/server.key");
        let (first, created) = load_or_create(&key, &data).unwrap();
        assert!(created);
        let (second, created) = load_or_create(&key, &data).unwrap();
        assert!(!created);
        assert_eq!(*first.to_bytes(), *second.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn refuses_a_key_inside_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir_all(&data).unwrap();
        for key in [
            data.join("k"),
            data.join("sub/../k"),
            dir.path().join("data/./x/k"),
        ] {
            assert!(
                matches!(
                    load_or_create(&key, &data),
                    Err(KeyFileError::InsideDataDir { .. })
                ),
                "{key:?}"
            );
        }
        assert!(!data.join("k").exists());
    }

    #[test]
    fn versioned_files_are_written_and_unversioned_ones_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let key = dir.path().join("new.key");
        let (setup, _) = load_or_create(&key, &data).unwrap();
        let file = fs::read(&key).unwrap();
        assert_eq!(&file[..MAGIC.len()], MAGIC);
        assert_eq!(file[MAGIC.len()], VERSION);
        assert_eq!(&file[MAGIC.len() + 1..], setup.to_bytes().as_slice());
        assert_eq!(read_raw(&key).unwrap(), *setup.to_bytes());
        // A key file of the first releases: the setup alone.
        let old = dir.path().join("old.key");
        fs::write(&old, setup.to_bytes().as_slice()).unwrap();
        let (read, created) = load_or_create(&old, &data).unwrap();
        assert!(!created);
        assert_eq!(*read.to_bytes(), *setup.to_bytes());
        assert_eq!(fs::read(&old).unwrap(), *setup.to_bytes(), "left as it was");
        // A version from the future is refused, never replaced.
        let future = dir.path().join("future.key");
        let bytes = [MAGIC, &[VERSION + 1], setup.to_bytes().as_slice()].concat();
        fs::write(&future, &bytes).unwrap();
        assert!(matches!(
            load_or_create(&future, &data),
            Err(KeyFileError::Malformed(_))
        ));
        assert_eq!(fs::read(&future).unwrap(), bytes);
    }

    #[test]
    fn malformed_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        fs::write(&key, b"short").unwrap();
        assert!(matches!(
            load_or_create(&key, &dir.path().join("data")),
            Err(KeyFileError::Malformed(_))
        ));
        assert_eq!(fs::read(&key).unwrap(), b"short");
    }
}
