//! The embedded [`Payloads`] backend: one file per payload, `payloads/<document id>`.
//!
//! sled 0.34 keeps every value it has written in memory whatever its cache capacity
//! (measured: 192 MiB of 1 MiB values raise the process to 207 MiB resident), which would
//! make a large upload cost its size in RAM; payload bytes are therefore files beside
//! sled's. Pieces are written to the file as they arrive, and synced by
//! [`Payloads::sync`] *before* the record's stored length moves past them (once per
//! checkpoint, not per piece: one fsync per MiB cost four fifths of the upload speed), so
//! the record never claims bytes the file lacks. Between checkpoints the upload also
//! syncs in the background, so the disk writes while the network delivers and the
//! checkpoint's own sync has little left to do. Bytes past the stored length (a crash
//! before the checkpoint) were never acknowledged and are cut off by the next append.
//!
//! Every file operation runs on tokio's blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Id, PayloadStream, Payloads, StoreError, StoreResult, PIECE_BYTES};

/// Folder of the payload files, inside the data directory.
pub const PAYLOAD_DIR: &str = "payloads";

/// Payload files in one folder.
#[derive(Clone)]
pub struct FilePayloads {
    dir: Arc<PathBuf>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Runs file work on the blocking pool.
async fn blocking<T, F>(f: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(backend)?
        .map_err(backend)
}

impl FilePayloads {
    /// The payload folder `dir` (created if missing).
    pub fn open(dir: &Path) -> StoreResult<Self> {
        fs::create_dir_all(dir).map_err(backend)?;
        Ok(Self {
            dir: Arc::new(dir.to_owned()),
        })
    }

    /// The payload folder, for `audit`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the payload of `id` is stored.
    pub fn path(&self, id: Id) -> PathBuf {
        self.dir.join(id.to_string())
    }
}

/// Writes `parts`, one after the other, at `offset` of the file, first cutting off
/// anything past `stored` (see the module docs). Not synced.
fn write_parts(path: &Path, stored: u64, offset: u64, parts: &[Bytes]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let len = file.metadata()?.len();
    if offset == stored {
        file.set_len(offset)?;
    } else if len != offset {
        return Err(io::Error::other(format!(
            "payload file holds {len} bytes, piece at {offset}"
        )));
    }
    file.seek(SeekFrom::Start(offset))?;
    // `write_all_vectored` is not stable yet: the same loop by hand.
    let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
    let mut slices = &mut slices[..];
    io::IoSlice::advance_slices(&mut slices, 0); // skips empty parts
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[async_trait]
impl Payloads for FilePayloads {
    async fn begin(&self, id: Id) -> StoreResult<()> {
        let (path, dir) = (self.path(id), Arc::clone(&self.dir));
        blocking(move || {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)?
                .sync_all()?;
            // The new name is durable too, so a synced piece cannot lose its file.
            File::open(dir.as_path())?.sync_all()
        })
        .await
    }

    async fn append(&self, id: Id, stored: u64, offset: u64, parts: Vec<Bytes>) -> StoreResult<()> {
        let len: usize = parts.iter().map(Bytes::len).sum();
        if len > PIECE_BYTES {
            return Err(StoreError::PieceTooLarge);
        }
        if offset < stored {
            return Err(StoreError::OffsetMismatch { stored });
        }
        if len == 0 {
            return Ok(());
        }
        let path = self.path(id);
        blocking(move || write_parts(&path, stored, offset, &parts)).await
    }

    async fn sync(&self, id: Id) -> StoreResult<()> {
        let path = self.path(id);
        blocking(move || File::open(path)?.sync_data()).await
    }

    async fn read(&self, id: Id, start: u64, end: u64) -> StoreResult<PayloadStream> {
        let path = self.path(id);
        let stream = futures_util::stream::try_unfold(start, move |pos| {
            let path = path.clone();
            async move {
                if pos >= end {
                    return Ok(None);
                }
                let len = (end - pos).min(PIECE_BYTES as u64) as usize;
                let bytes = blocking(move || {
                    let mut file = File::open(path)?;
                    file.seek(SeekFrom::Start(pos))?;
                    let mut bytes = vec![0u8; len];
                    file.read_exact(&mut bytes)?;
                    Ok(bytes)
                })
                .await?;
                Ok(Some((Bytes::from(bytes), pos + len as u64)))
            }
        });
        Ok(Box::pin(stream))
    }

    async fn delete(&self, id: Id) -> StoreResult<()> {
        let path = self.path(id);
        blocking(move || match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
    }

    async fn held_bytes(&self, id: Id) -> StoreResult<Option<u64>> {
        let path = self.path(id);
        blocking(move || match fs::metadata(path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn list(&self) -> StoreResult<Vec<Id>> {
        let dir = Arc::clone(&self.dir);
        blocking(move || {
            let mut ids = Vec::new();
            for entry in fs::read_dir(dir.as_path())? {
                // A name that is not an id is not ours: `audit` reports it, the sweep
                // does not guess.
                if let Some(id) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) {
                    ids.push(id);
                }
            }
            Ok(ids)
        })
        .await
    }
}
