//! Choosing and opening the storage backends from the command line or `COFFRE_*`
//! variables: `--records sled|postgres://…` and `--payloads files|s3://…`.
//!
//! - `sled` (default): records in the data directory; one process only.
//! - `postgres://user:password@host:port/database`: records in PostgreSQL (schema applied by
//!   `coffre-server migrate`); any number of server processes.
//! - `files` (default): one file per payload in `<data>/payloads`.
//! - `s3://bucket[/prefix]?endpoint=http://host:port&region=…`: payload pieces as objects;
//!   the credentials come from `COFFRE_S3_ACCESS_KEY` and `COFFRE_S3_SECRET_KEY` (or
//!   `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`), never from the URL, so that they do
//!   not end up in process listings or logs.

use std::path::Path;
use std::sync::Arc;

use crate::store::{
    self, Export, FilePayloads, Payloads, PgRecords, Records, S3Config, S3Payloads, SledRecords,
    StoreError,
};

/// Where the records live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordsSpec {
    /// sled in the data directory.
    Sled,
    /// A PostgreSQL database URL.
    Postgres(String),
}

/// Where the payloads live.
#[derive(Debug, Clone)]
pub enum PayloadsSpec {
    /// Files in `<data>/payloads`.
    Files,
    /// An S3 bucket.
    S3(S3Config),
}

/// A backend address that cannot be used, said in one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl RecordsSpec {
    /// Parses `sled` or a `postgres://` / `postgresql://` URL.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let text = text.trim();
        if text == "sled" {
            Ok(Self::Sled)
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(Self::Postgres(text.to_owned()))
        } else {
            Err(SpecError(format!(
                "--records: expected `sled` or a postgres:// URL, not {:?}",
                redact(text)
            )))
        }
    }
}

impl PayloadsSpec {
    /// Parses `files` or an `s3://bucket[/prefix]?endpoint=…&region=…` URL; `env` gives the
    /// credentials (see the module docs).
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, SpecError> {
        let text = text.trim();
        if text == "files" {
            return Ok(Self::Files);
        }
        let Some(rest) = text.strip_prefix("s3://") else {
            return Err(SpecError(format!(
                "--payloads: expected `files` or an s3:// URL, not {text:?}"
            )));
        };
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            return Err(SpecError(
                "--payloads: the s3:// URL names no bucket".into(),
            ));
        }
        let mut endpoint = None;
        let mut region = "us-east-1".to_owned();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", v)) => endpoint = Some(v.to_owned()),
                Some(("region", v)) => v.clone_into(&mut region),
                _ => {
                    return Err(SpecError(format!(
                        "--payloads: unknown s3:// parameter {pair:?} (endpoint, region)"
                    )))
                }
            }
        }
        let key = |ours: &str, aws: &str| env(ours).or_else(|| env(aws));
        let (Some(access_key), Some(secret_key)) = (
            key("COFFRE_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
            key("COFFRE_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"),
        ) else {
            return Err(SpecError(
                "--payloads: set COFFRE_S3_ACCESS_KEY and COFFRE_S3_SECRET_KEY for the bucket"
                    .into(),
            ));
        };
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        Ok(Self::S3(S3Config {
            bucket: bucket.to_owned(),
            endpoint,
            region,
            access_key,
            secret_key,
            prefix,
        }))
    }
}

/// A URL with its password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// The opened backends. `sled` and `files` are set when the embedded ones are used (the
/// audit reads them directly).
pub struct Opened {
    /// The records.
    pub records: Arc<dyn Records>,
    /// The payloads.
    pub payloads: Arc<dyn Payloads>,
    /// The sled records, when used.
    pub sled: Option<Arc<SledRecords>>,
    /// The payload files, when used.
    pub files: Option<FilePayloads>,
}

/// Why a backend could not be opened: which one, and the cause (no secrets).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {cause}")]
pub struct OpenError {
    /// Which backend, e.g. `records postgres://coffre:***@db:5432/coffre`.
    pub what: String,
    /// What failed.
    pub cause: StoreError,
}

/// Opens the backends; the embedded ones live in `data` (created if missing).
pub async fn open(
    records: &RecordsSpec,
    payloads: &PayloadsSpec,
    data: &Path,
    cache_bytes: u64,
) -> Result<Opened, OpenError> {
    let (records, sled): (Arc<dyn Records>, _) = match records {
        RecordsSpec::Sled => {
            let sled =
                Arc::new(
                    SledRecords::open(data, cache_bytes).map_err(|cause| OpenError {
                        what: format!(
                            "records sled {} (is a server already running on it?)",
                            data.display()
                        ),
                        cause,
                    })?,
                );
            (sled.clone(), Some(sled))
        }
        RecordsSpec::Postgres(url) => {
            let pg = PgRecords::connect(url).await.map_err(|cause| OpenError {
                what: format!("records {}", redact(url)),
                cause,
            })?;
            (Arc::new(pg), None)
        }
    };
    let (payloads, files): (Arc<dyn Payloads>, _) = match payloads {
        PayloadsSpec::Files => {
            let dir = data.join(store::PAYLOAD_DIR);
            let files = FilePayloads::open(&dir).map_err(|cause| OpenError {
                what: format!("payloads {}", dir.display()),
                cause,
            })?;
            (Arc::new(files.clone()), Some(files))
        }
        PayloadsSpec::S3(config) => {
            let s3 = S3Payloads::connect(config)
                .await
                .map_err(|cause| OpenError {
                    what: format!(
                        "payloads s3://{}/{} at {}",
                        config.bucket,
                        config.prefix,
                        config.endpoint.as_deref().unwrap_or("AWS")
                    ),
                    cause,
                })?;
            (Arc::new(s3), None)
        }
    };
    Ok(Opened {
        records,
        payloads,
        sled,
        files,
    })
}

/// What [`copy`] moved.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Copied {
    /// Records of every kind.
    pub records: u64,
    /// Payloads with at least one byte.
    pub payloads: u64,
    /// Payload bytes.
    pub payload_bytes: u64,
}

/// Copies a whole store into an empty one: a snapshot of the records, then the
/// acknowledged bytes of every payload, piece by piece (never a whole payload in
/// memory). Payloads are copied before the records are written, so that the target
/// never holds a record whose bytes are missing; a failure leaves the target's records
/// empty and its payloads as orphans that its sweep removes.
pub async fn copy(
    from: (&dyn Records, &dyn Payloads),
    to: (&dyn Records, &dyn Payloads),
) -> Result<Copied, StoreError> {
    let (from_records, from_payloads) = from;
    let (to_records, to_payloads) = to;
    let export = from_records.export().await?;
    let copied = copy_payloads(&export, from_payloads, to_payloads).await?;
    to_records.import(&export).await?;
    Ok(copied)
}

/// Copies the acknowledged bytes of every document of `export`, piece by piece.
async fn copy_payloads(
    export: &Export,
    from_payloads: &dyn Payloads,
    to_payloads: &dyn Payloads,
) -> Result<Copied, StoreError> {
    use futures_util::TryStreamExt as _;
    let mut copied = Copied {
        records: export.len() as u64,
        ..Copied::default()
    };
    for doc in &export.documents {
        to_payloads.begin(doc.id).await?;
        if doc.stored == 0 {
            continue;
        }
        let mut stream = from_payloads.read(doc.id, 0, doc.stored).await?;
        let mut offset = 0u64;
        let mut piece: Vec<bytes::Bytes> = Vec::new();
        let mut piece_len = 0usize;
        while let Some(mut bytes) = stream.try_next().await? {
            while !bytes.is_empty() {
                let take = (store::PIECE_BYTES - piece_len).min(bytes.len());
                piece.push(bytes.split_to(take));
                piece_len += take;
                if piece_len == store::PIECE_BYTES {
                    to_payloads
                        .append(doc.id, offset, offset, std::mem::take(&mut piece))
                        .await?;
                    offset += piece_len as u64;
                    piece_len = 0;
                }
            }
        }
        if piece_len > 0 {
            to_payloads.append(doc.id, offset, offset, piece).await?;
            offset += piece_len as u64;
        }
        to_payloads.sync(doc.id).await?;
        if offset != doc.stored {
            return Err(StoreError::Backend(format!(
                "payload of {} gave {offset} bytes, {} recorded",
                doc.id, doc.stored
            )));
        }
        copied.payloads += 1;
        copied.payload_bytes += offset;
    }
    Ok(copied)
}

/// Name of the records' snapshot in a bucket backup.
pub const BUCKET_RECORDS: &str = "records.json";

/// The payload prefix of a bucket backup under `config`'s prefix.
fn backup_payloads(config: &S3Config) -> S3Config {
    S3Config {
        prefix: format!("{}payloads/", config.prefix),
        ..config.clone()
    }
}

/// Backs a store up into a bucket (under `config`'s prefix): the payload pieces first,
/// under `payloads/`, then one snapshot of the records as `records.json`, so that a
/// backup whose records are there is whole. Refuses a prefix that holds a backup already.
pub async fn backup_to_bucket(
    records: &dyn Records,
    payloads: &dyn Payloads,
    config: &S3Config,
) -> Result<Copied, StoreError> {
    let bucket = S3Payloads::connect(config).await?;
    if bucket.get_object(BUCKET_RECORDS).await?.is_some() {
        return Err(StoreError::NotEmpty);
    }
    let export = records.export().await?;
    let target = S3Payloads::connect(&backup_payloads(config)).await?;
    let copied = copy_payloads(&export, payloads, &target).await?;
    let json = serde_json::to_vec(&export).map_err(|e| StoreError::Backend(e.to_string()))?;
    bucket.put_object(BUCKET_RECORDS, json.into()).await?;
    Ok(copied)
}

/// Restores a bucket backup (see [`backup_to_bucket`]) into an empty store.
pub async fn restore_from_bucket(
    config: &S3Config,
    records: &dyn Records,
    payloads: &dyn Payloads,
) -> Result<Copied, StoreError> {
    let bucket = S3Payloads::connect(config).await?;
    let json = bucket
        .get_object(BUCKET_RECORDS)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut value: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| StoreError::Backend(e.to_string()))?;
    store::upgrade_legacy_export(&mut value);
    let export: Export =
        serde_json::from_value(value).map_err(|e| StoreError::Backend(e.to_string()))?;
    let source = S3Payloads::connect(&backup_payloads(config)).await?;
    let copied = copy_payloads(&export, &source, payloads).await?;
    records.import(&export).await?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn specs_parse_and_secrets_stay_out_of_messages() {
        assert_eq!(RecordsSpec::parse("sled").unwrap(), RecordsSpec::Sled);
        assert!(matches!(
            RecordsSpec::parse("postgres://c:pw@db/coffre").unwrap(),
            RecordsSpec::Postgres(_)
        ));
        let e = RecordsSpec::parse("mysql://c:hunter2@db/x").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(
            redact("postgres://c:pw@db:5432/x"),
            "postgres://c:***@db:5432/x"
        );
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");

        let env = |k: &str| match k {
            "COFFRE_S3_ACCESS_KEY" => Some("ak".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("sk".to_owned()),
            _ => None,
        };
        let PayloadsSpec::S3(c) = PayloadsSpec::parse(
            "s3://bucket/some/prefix?endpoint=http://127.0.0.1:8333",
            env,
        )
        .unwrap() else {
            panic!("not s3")
        };
        assert_eq!(c.bucket, "bucket");
        assert_eq!(c.prefix, "some/prefix/");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!((c.access_key.as_str(), c.secret_key.as_str()), ("ak", "sk"));
        assert!(!format!("{c:?}").contains("sk\""));
        assert!(PayloadsSpec::parse("s3://b", |_| None).is_err());
        assert!(PayloadsSpec::parse("s3://?endpoint=x", env).is_err());
        assert!(PayloadsSpec::parse("s3://b?colour=blue", env).is_err());
        assert!(matches!(
            PayloadsSpec::parse("files", |_| None).unwrap(),
            PayloadsSpec::Files
        ));
    }
}
