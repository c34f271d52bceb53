//! The native benchmark of `coffre decrypt` (throughput and peak memory on a large file).

#[allow(clippy::wildcard_imports)]
use super::*;

/// Size of the file the decryption memory benchmark streams, unless `--size-mib` says.
pub(crate) const BENCH_DEFAULT_MIB: u64 = 1024;

/// Streams `size_mib` MiB through `coffre encrypt`, then measures `coffre decrypt` to
/// /dev/null under `/usr/bin/time -v`: maximum resident set size and throughput.
pub(crate) fn bench_decrypt_memory(ctx: &Ctx, size_mib: u64) -> Result {
    let cli = release_cli(ctx);
    let dir = TempDir::new()?;
    let id = dir.path.join("bench.key");
    let file = dir.path.join("bench.age");
    let bytes = size_mib * 1024 * 1024;

    let keygen = Command::new(&cli)
        .args([OsStr::new("keygen"), OsStr::new("-o"), id.as_os_str()])
        .output()
        .map_err(|e| Failure(format!("cannot run {}: {e}", cli.display())))?;
    let stderr = String::from_utf8_lossy(&keygen.stderr);
    let Some(recipient) = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Public key: "))
        .map(str::to_owned)
    else {
        return fail(format!("coffre keygen failed: {}", stderr.trim()));
    };

    println!(
        "encrypting {size_mib} MiB of pseudo-random data into {}",
        file.display()
    );
    let started = Instant::now();
    let mut encrypt = Command::new(&cli)
        .args([
            OsStr::new("encrypt"),
            OsStr::new("-r"),
            OsStr::new(&recipient),
        ])
        .arg("-o")
        .arg(&file)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Failure(format!("cannot run {}: {e}", cli.display())))?;
    if let Some(mut stdin) = encrypt.stdin.take() {
        let mut rng = XorShift64(0x9e37_79b9_7f4a_7c15);
        let mut piece = vec![0u8; 1 << 20];
        for _ in 0..size_mib {
            rng.fill(&mut piece);
            stdin
                .write_all(&piece)
                .map_err(|e| Failure(format!("feeding coffre encrypt: {e}")))?;
        }
    }
    let encrypted = encrypt
        .wait()
        .map_err(|e| Failure(format!("waiting for coffre encrypt: {e}")))?;
    let encrypt_secs = started.elapsed().as_secs_f64();
    if !encrypted.success() {
        return fail(format!("coffre encrypt failed ({encrypted})"));
    }

    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v")
        .arg(&cli)
        .args(["decrypt", "-i"])
        .arg(&id)
        .args(["-o", "/dev/null"])
        .arg(&file);
    println!("$ {}", show(&cmd));
    let started = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| Failure(format!("cannot run /usr/bin/time: {e}")))?;
    let decrypt_secs = started.elapsed().as_secs_f64();
    let report = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return fail(format!("coffre decrypt failed:\n{report}"));
    }
    let Some(max_rss_kib) = report.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Maximum resident set size (kbytes):")
            .and_then(|v| v.trim().parse::<u64>().ok())
    }) else {
        return fail(format!("no maximum resident set size in:\n{report}"));
    };

    let mb = bytes as f64 / 1e6;
    println!(
        "\nfile: {size_mib} MiB plaintext, {} bytes encrypted",
        file_len(&file)
    );
    println!(
        "coffre encrypt (stdin → file): {encrypt_secs:.2} s, {:.0} MB/s",
        mb / encrypt_secs
    );
    println!(
        "coffre decrypt (file → /dev/null): {decrypt_secs:.2} s, {:.0} MB/s",
        mb / decrypt_secs
    );
    println!(
        "coffre decrypt maximum resident set size: {max_rss_kib} KiB ({:.1} MiB)",
        max_rss_kib as f64 / 1024.0
    );
    Ok(())
}

pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Cheap non-cryptographic filler: the benchmark needs incompressible-looking bytes fast,
/// not secrets.
pub(crate) struct XorShift64(u64);

impl XorShift64 {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            let bytes = x.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = env::temp_dir().join(format!("coffre-bench-{}-{nanos}", std::process::id()));
        fs::create_dir(&path).map_err(|e| Failure(format!("creating {}: {e}", path.display())))?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
