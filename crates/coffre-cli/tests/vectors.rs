//! The `coffre decrypt` binary on every test vector of coffre-core (C2SP CCTV's age
//! vectors, binary and armored, and Coffre's own): the right outcome, the exact plaintext
//! on standard output (for a failing file, all that authenticated before the failure,
//! as CCTV's payload hash requires), and with `-o` no file at all when decryption fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use coffre_core::Identity;
use common::{coffre, entries, fails_after_streaming};
use sha2::{Digest, Sha256};

struct Vector {
    name: String,
    expect: String,
    payload_sha256: Option<String>,
    identities: Vec<String>,
    file: Vec<u8>,
}

fn read_vector(path: &Path) -> Vector {
    let raw = fs::read(path).unwrap();
    let split = raw.windows(2).position(|w| w == b"\n\n").unwrap();
    let mut v = Vector {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        expect: String::new(),
        payload_sha256: None,
        identities: Vec::new(),
        file: raw[split + 2..].to_vec(),
    };
    for line in std::str::from_utf8(&raw[..split]).unwrap().lines() {
        let (key, value) = line.split_once(": ").unwrap();
        match key {
            "expect" => v.expect = value.to_owned(),
            "payload" => v.payload_sha256 = Some(value.to_owned()),
            "identity" => v.identities.push(value.to_owned()),
            "compressed" => {
                let mut out = Vec::new();
                flate2::read::ZlibDecoder::new(v.file.as_slice())
                    .read_to_end(&mut out)
                    .unwrap();
                v.file = out;
            }
            _ => {}
        }
    }
    v
}

fn vector_paths() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../coffre-core/tests/testdata");
    let mut paths = Vec::new();
    for dir in ["cctv", "coffre"] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && path.extension().is_none() {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
}

/// The same exceptions as coffre-core's tests/testkit.rs: a file cut before or inside
/// the nonce (or empty) is reported as truncated; a file that starts with text other than
/// armor is not an age file.
fn expected_outcome(v: &Vector) -> &str {
    match v.name.as_str() {
        "stream_no_nonce" | "stream_short_nonce" | "armor_empty" => "payload failure",
        "armor_garbage_leading" => "header failure",
        _ => &v.expect,
    }
}

/// The outcome class of an error line of `coffre decrypt`.
fn outcome_of(message: &str) -> &'static str {
    if message.starts_with("malformed header: ") {
        "header failure"
    } else if message.starts_with("malformed armor: ") {
        "armor failure"
    } else if message == "header MAC mismatch" {
        "HMAC failure"
    } else if message == "no identity matched" {
        "no match"
    } else if [
        "payload authentication failed",
        "truncated file",
        "trailing data after the end of the file",
        "malformed payload: empty final chunk",
    ]
    .contains(&message)
    {
        "payload failure"
    } else {
        "other failure"
    }
}

#[test]
fn decrypt_gives_each_vectors_outcome_and_exact_plaintext() {
    let paths = vector_paths();
    assert!(paths.len() >= 90, "vectors are missing: {}", paths.len());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut failures = Vec::new();
    let mut checked_partial = 0;
    for path in &paths {
        let v = read_vector(path);
        // A vector without an identity still needs one for the command line to start.
        let mut ids = v.identities.clone();
        if ids.is_empty() {
            ids.push(Identity::generate().unwrap().to_secret_string().to_string());
        }
        fs::write(d.join("id"), ids.join("\n") + "\n").unwrap();
        fs::write(d.join("in.age"), &v.file).unwrap();
        let want = expected_outcome(&v);

        // To standard output, from standard input: what is streamed must be exactly what
        // authenticated.
        let output = coffre(d, &["decrypt", "-i", "id"], &v.file);
        let stdout = output.stdout.clone();
        let got = if output.status.success() {
            "success"
        } else {
            outcome_of(&fails_after_streaming(output))
        };
        if got != want {
            failures.push(format!("{}: expected {want}, got {got}", v.name));
            continue;
        }
        match &v.payload_sha256 {
            Some(hash) => {
                if &hex::encode(Sha256::digest(&stdout)) != hash {
                    failures.push(format!(
                        "{}: standard output ({} bytes) does not match the payload hash",
                        v.name,
                        stdout.len()
                    ));
                }
                if want != "success" {
                    checked_partial += 1;
                }
            }
            None if want != "success" && !stdout.is_empty() => failures.push(format!(
                "{}: {} bytes on standard output although nothing authenticated",
                v.name,
                stdout.len()
            )),
            None => {}
        }

        // To a file: written only on success, and nothing left behind on failure.
        let before = entries(d);
        let output = coffre(d, &["decrypt", "-i", "id", "-o", "out", "in.age"], b"");
        if want == "success" {
            if !output.status.success() {
                failures.push(format!("{}: -o failed", v.name));
            } else if let Some(hash) = &v.payload_sha256 {
                let written = fs::read(d.join("out")).unwrap();
                if &hex::encode(Sha256::digest(&written)) != hash {
                    failures.push(format!("{}: -o file differs", v.name));
                }
            }
            let _ = fs::remove_file(d.join("out"));
        } else {
            assert!(output.stdout.is_empty(), "{}: stdout with -o", v.name);
            fails_after_streaming(output);
            if entries(d) != before {
                failures.push(format!("{}: a failed -o left {:?}", v.name, entries(d)));
            }
        }
    }
    assert!(
        checked_partial >= 10,
        "only {checked_partial} failing vectors had a payload hash"
    );
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
