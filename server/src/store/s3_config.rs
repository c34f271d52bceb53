//! Where an S3-compatible bucket is and how to reach it: parsed from `--payloads s3://…`
//! whether or not this build carries the S3 backend (the `s3` feature), so that a build
//! without it refuses such a URL with a clear error instead of not knowing the syntax.

/// Where and how to reach the bucket.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The endpoint (`http://127.0.0.1:8333`), for engines other than AWS.
    pub endpoint: Option<String>,
    /// The region (engines other than AWS accept any).
    pub region: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Prefix of every object name.
    pub prefix: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}
