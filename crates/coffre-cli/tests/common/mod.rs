//! Helpers shared by the integration tests: run the built `coffre` binary and check how it
//! fails.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub const COFFRE: &str = env!("CARGO_BIN_EXE_coffre");

/// Runs `coffre args…` in `dir` with `stdin` as standard input.
pub fn coffre(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    run(Command::new(COFFRE).args(args).current_dir(dir), stdin)
}

/// Runs a prepared command, feeding `stdin`, and collects its output.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    // Write from another thread so a large input cannot deadlock against a full stdout.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

/// Asserts success and returns stdout.
pub fn ok(output: Output) -> Vec<u8> {
    assert!(
        output.status.success(),
        "expected success, got {:?}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Asserts the `coffre` failure contract: exit code 1, nothing on stdout, exactly one
/// stderr line `error: <message>`; returns the message.
pub fn fails(output: Output) -> String {
    assert!(output.stdout.is_empty(), "stdout not empty on failure");
    fails_after_streaming(output)
}

/// Like [`fails`], but standard output may hold what was streamed before the failure
/// (for decryption: the chunks that authenticated before a later one failed).
pub fn fails_after_streaming(output: Output) -> String {
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.ends_with('\n'), "stderr: {stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0]
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("stderr does not start with `error: `: {stderr:?}"))
        .to_owned()
}

/// `n` bytes from the OS random source.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
}

/// Generates an identity with `coffre keygen -o NAME` in `dir`; returns (path, recipient).
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let output = coffre(dir, &["keygen", "-o", name], b"");
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    ok(output);
    let recipient = stderr
        .trim()
        .strip_prefix("Public key: ")
        .unwrap()
        .to_owned();
    (dir.join(name), recipient)
}

/// Names of the entries of `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
