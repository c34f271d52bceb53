//! The `coffre` binary end to end: key files, fingerprints, round trips, and the one-line
//! error contract for every class of bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::path::Path;

use coffre_core::{Identity, Recipient};
use common::{coffre, entries, fails, fails_after_streaming, keygen, ok, random_bytes};

/// A file of three full chunks and a partial one, so chunk boundaries are crossed.
const MULTI_CHUNK_BYTES: usize = 3 * 64 * 1024 + 1234;
/// Length of an encrypted full chunk (64 KiB plaintext + 16-byte tag).
const ENCRYPTED_CHUNK_BYTES: usize = 64 * 1024 + 16;
/// Length of the payload nonce that follows the header.
const NONCE_BYTES: usize = 16;

fn encrypt_file(dir: &Path, recipient: &str, plain: &[u8]) -> Vec<u8> {
    fs::write(dir.join("plain"), plain).unwrap();
    ok(coffre(
        dir,
        &["encrypt", "-r", recipient, "-o", "file.age", "plain"],
        b"",
    ));
    fs::read(dir.join("file.age")).unwrap()
}

/// Where the header ends (just after the MAC line).
fn header_len(file: &[u8]) -> usize {
    let mac_line = find(file, b"\n--- ").unwrap() + 1;
    mac_line + find(&file[mac_line..], b"\n").unwrap() + 1
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decrypts `file` with identity file `id` to `-o out`; expects failure and checks that no
/// output file nor temporary file is left behind.
fn decrypt_fails(dir: &Path, id: &Path, file: &[u8]) -> String {
    fs::write(dir.join("bad.age"), file).unwrap();
    let before = entries(dir);
    let id = id.to_str().unwrap();
    let message = fails(coffre(
        dir,
        &["decrypt", "-i", id, "-o", "out", "bad.age"],
        b"",
    ));
    assert!(!dir.join("out").exists(), "a failed decryption left output");
    assert_eq!(
        entries(dir),
        before,
        "a failed decryption left a file behind"
    );
    // The same through standard input and output, where chunks that authenticated before
    // the failure have already been streamed out, as with age.
    let again = fails_after_streaming(coffre(dir, &["decrypt", "-i", id], file));
    assert_eq!(again, message);
    message
}

#[test]
fn keygen_writes_age_keygen_format_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let output = coffre(dir.path(), &["keygen", "-o", "me.txt"], b"");
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert!(ok(output).is_empty());
    let text = fs::read_to_string(dir.path().join("me.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(text.ends_with('\n'));

    let created = lines[0].strip_prefix("# created: ").unwrap();
    assert_eq!(created.len(), "2026-01-01T00:00:00Z".len(), "{created}");
    for (i, c) in created.chars().enumerate() {
        match i {
            4 | 7 => assert_eq!(c, '-'),
            10 => assert_eq!(c, 'T'),
            13 | 16 => assert_eq!(c, ':'),
            19 => assert_eq!(c, 'Z'),
            _ => assert!(c.is_ascii_digit(), "{created}"),
        }
    }
    let public = lines[1].strip_prefix("# public key: ").unwrap();
    assert_eq!(stderr, format!("Public key: {public}\n"));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
    let identity: Identity = lines[2].parse().unwrap();
    assert_eq!(identity.to_recipient().to_string(), public);
    assert!(!stderr.contains("AGE-SECRET-KEY"));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("me.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
}

#[test]
fn keygen_to_standard_output_shows_public_key_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let output = coffre(dir.path(), &["keygen"], b"");
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    let text = String::from_utf8(ok(output)).unwrap();
    let ids = coffre_core::parse_identity_file(&text).unwrap();
    assert_eq!(ids.len(), 1);
    let public = ids[0].to_recipient().to_string();
    assert_eq!(stderr, format!("Public key: {public}\n"));
    assert!(text.contains(&format!("# public key: {public}\n")));
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn keygen_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("id"), "precious").unwrap();
    let message = fails(coffre(dir.path(), &["keygen", "-o", "id"], b""));
    assert_eq!(message, "refusing to overwrite existing file id");
    assert_eq!(
        fs::read_to_string(dir.path().join("id")).unwrap(),
        "precious"
    );
}

#[test]
fn fingerprint_prints_words_emoji_then_number() {
    let dir = tempfile::tempdir().unwrap();
    // The core's pinned fingerprint vector: the identity whose secret bytes are all 7.
    let recipient = Identity::from_bytes(&[7; 32]).to_recipient().to_string();
    assert_eq!(
        recipient,
        "age1zwlyl6h27gzv0lfntr7fcqrjrzqazap8sy5zylkxwneh7llf0dksu37mwt"
    );
    let out = ok(coffre(dir.path(), &["fingerprint", &recipient], b""));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "cotton coral fame toilet reveal mixed\n\
         \u{1F41F} Fish, \u{1F41F} Fish, \u{1F34E} Apple, \u{1F437} Pig, \u{1F344} Mushroom, \
         \u{1F916} Robot, \u{1F430} Rabbit, \u{270F}\u{FE0F} Pencil, \u{1F453} Glasses, \
         \u{260E}\u{FE0F} Telephone, \u{260E}\u{FE0F} Telephone\n\
         65585 93878 28400 17817 80334\n"
    );
}

#[test]
fn fingerprint_rejects_a_secret_key_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let secret = Identity::generate().unwrap().to_secret_string();
    let message = fails(coffre(dir.path(), &["fingerprint", &secret], b""));
    assert_eq!(
        message,
        "recipient: wrong key type: expected a key starting with age"
    );
    assert!(!message.contains(secret.as_str()));
    let message = fails(coffre(dir.path(), &["fingerprint", "age1nope"], b""));
    assert!(
        message.starts_with("recipient: not a valid Bech32 string"),
        "{message}"
    );
}

#[test]
fn round_trip_through_files_and_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keygen(d, "id");
    let id = id.to_str().unwrap();
    for len in [0, 1, 64 * 1024, MULTI_CHUNK_BYTES] {
        let plain = random_bytes(len);
        // Files in, files out.
        let file = encrypt_file(d, &recipient, &plain);
        ok(coffre(
            d,
            &["decrypt", "-i", id, "-o", "back", "file.age"],
            b"",
        ));
        assert_eq!(fs::read(d.join("back")).unwrap(), plain, "len {len}");
        // Pipes in, pipes out (`-` names standard input and output).
        let piped = ok(coffre(
            d,
            &["encrypt", "-r", &recipient, "-o", "-", "-"],
            &plain,
        ));
        assert_ne!(piped, file, "each encryption uses a fresh file key");
        let back = ok(coffre(d, &["decrypt", "--identity", id], &piped));
        assert_eq!(back, plain, "len {len}");
    }
}

#[test]
fn many_recipients_and_key_files_with_comments() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id_a, a) = keygen(d, "a");
    let (id_b, b) = keygen(d, "b");
    let (id_c, c) = keygen(d, "c");
    fs::write(
        d.join("recipients"),
        format!("# the team\n{b}\n\n# and\n{c}\n"),
    )
    .unwrap();
    let plain = random_bytes(100_000);
    let file = ok(coffre(
        d,
        &["encrypt", "-r", &a, "-R", "recipients"],
        &plain,
    ));
    for id in [&id_a, &id_b, &id_c] {
        let back = ok(coffre(d, &["decrypt", "-i", id.to_str().unwrap()], &file));
        assert_eq!(back, plain);
    }
    // Several identity files, and several identities in one file.
    let (id_x, _) = keygen(d, "x");
    let both = format!(
        "{}\n# second one\n{}",
        fs::read_to_string(&id_x).unwrap(),
        fs::read_to_string(&id_c).unwrap()
    );
    fs::write(d.join("both"), both).unwrap();
    ok(coffre(d, &["decrypt", "-i", "both", "-o", "out"], &file));
    assert_eq!(fs::read(d.join("out")).unwrap(), plain);
    let back = ok(coffre(d, &["decrypt", "-i", "x", "-i", "a"], &file));
    assert_eq!(back, plain);
}

#[test]
fn output_replaces_an_existing_file_only_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keygen(d, "id");
    let plain = random_bytes(70_000);
    let mut file = encrypt_file(d, &recipient, &plain);
    let last = file.len() - 1;
    file[last] ^= 1;
    fs::write(d.join("bad.age"), &file).unwrap();
    fs::write(d.join("out"), "old").unwrap();
    let id = id.to_str().unwrap();
    let message = fails(coffre(
        d,
        &["decrypt", "-i", id, "-o", "out", "bad.age"],
        b"",
    ));
    assert_eq!(message, "payload authentication failed");
    assert_eq!(fs::read_to_string(d.join("out")).unwrap(), "old");
    ok(coffre(
        d,
        &["decrypt", "-i", id, "-o", "out", "file.age"],
        b"",
    ));
    assert_eq!(fs::read(d.join("out")).unwrap(), plain);
    // Special files are written in place, never replaced.
    ok(coffre(
        d,
        &["decrypt", "-i", id, "-o", "/dev/null", "file.age"],
        b"",
    ));
}

#[test]
fn error_no_identity_matched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, recipient) = keygen(d, "id");
    let (other, _) = keygen(d, "other");
    let file = encrypt_file(d, &recipient, b"papiers");
    assert_eq!(decrypt_fails(d, &other, &file), "no identity matched");
}

#[test]
fn error_header_mac_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keygen(d, "id");
    let mut file = encrypt_file(d, &recipient, b"papiers");
    // Change one base64 character in the middle of the MAC: still canonical base64,
    // another MAC.
    let at = find(&file, b"\n--- ").unwrap() + 5 + 10;
    file[at] = if file[at] == b'A' { b'B' } else { b'A' };
    assert_eq!(decrypt_fails(d, &id, &file), "header MAC mismatch");
}

#[test]
fn error_payload_authentication_failed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keygen(d, "id");
    let plain = random_bytes(MULTI_CHUNK_BYTES);
    let file = encrypt_file(d, &recipient, &plain);
    let payload = header_len(&file) + NONCE_BYTES;
    for at in [payload, payload + ENCRYPTED_CHUNK_BYTES + 7, file.len() - 1] {
        let mut bad = file.clone();
        bad[at] ^= 0x40;
        assert_eq!(
            decrypt_fails(d, &id, &bad),
            "payload authentication failed",
            "flipped byte {at}"
        );
    }
}

#[test]
fn error_truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keygen(d, "id");
    let plain = random_bytes(MULTI_CHUNK_BYTES);
    let file = encrypt_file(d, &recipient, &plain);
    let header = header_len(&file);
    for cut in [
        // Inside the header, inside the nonce, before any chunk, after a full chunk.
        30,
        header - 1,
        header + 5,
        header + NONCE_BYTES,
        header + NONCE_BYTES + 2 * ENCRYPTED_CHUNK_BYTES,
    ] {
        assert_eq!(
            decrypt_fails(d, &id, &file[..cut]),
            "truncated file",
            "cut at {cut}"
        );
    }
}

#[test]
fn error_malformed_header() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keygen(d, "id");
    let file = encrypt_file(d, &recipient, b"papiers");

    let mut not_age = file.clone();
    not_age[0] = b'x';
    let message = decrypt_fails(d, &id, &not_age);
    assert!(message.starts_with("malformed header: "), "{message}");

    // A stanza body line with a character outside base64.
    let body = find(&file, b"\n").unwrap() + 1;
    let body = body + find(&file[body..], b"\n").unwrap() + 1;
    let mut garbled = file.clone();
    garbled[body + 3] = b'!';
    let message = decrypt_fails(d, &id, &garbled);
    assert!(message.starts_with("malformed header: "), "{message}");

    // Not an age file at all.
    let message = decrypt_fails(d, &id, b"%PDF-1.7 this is a plain document\n");
    assert!(message.starts_with("malformed header: "), "{message}");
}

#[test]
fn errors_name_the_file_and_never_show_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keygen(d, "id");
    let id = id.to_str().unwrap();
    encrypt_file(d, &recipient, b"papiers");

    let message = fails(coffre(d, &["decrypt", "-i", id, "missing.age"], b""));
    assert!(message.starts_with("opening missing.age: "), "{message}");
    let message = fails(coffre(d, &["decrypt", "-i", "nope", "file.age"], b""));
    assert!(
        message.starts_with("reading identity file nope: "),
        "{message}"
    );
    let message = fails(coffre(d, &["encrypt", "-r", &recipient, "missing"], b""));
    assert!(message.starts_with("opening missing: "), "{message}");
    let message = fails(coffre(d, &["encrypt", "-R", "nope"], b""));
    assert!(
        message.starts_with("reading recipients file nope: "),
        "{message}"
    );
    let message = fails(coffre(d, &["decrypt", "file.age"], b""));
    assert_eq!(message, "no identity given: use -i IDENTITY_FILE");
    let message = fails(coffre(d, &["encrypt", "-o", "x.age", "plain"], b""));
    assert_eq!(message, "no recipient given");
    assert!(!d.join("x.age").exists());
    let message = fails(coffre(
        d,
        &["encrypt", "-r", &recipient, "-o", "no/such/dir/x"],
        b"x",
    ));
    assert!(
        message.starts_with("creating a temporary file in no/such/dir: "),
        "{message}"
    );

    // A recipient file holding a secret key by mistake: the line is not echoed.
    let secret = fs::read_to_string(d.join("id")).unwrap();
    fs::write(d.join("oops"), &secret).unwrap();
    let message = fails(coffre(d, &["encrypt", "-R", "oops"], b""));
    assert_eq!(
        message,
        "recipients file oops: line 3: not a key: wrong key type: expected a key starting \
         with age"
    );
    let message = fails(coffre(
        d,
        &["encrypt", "-r", secret.lines().nth(2).unwrap()],
        b"",
    ));
    assert!(
        message.starts_with("recipient #1 (-r): wrong key type"),
        "{message}"
    );
    // A recipient given where an identity is expected.
    fs::write(d.join("pub"), format!("{recipient}\n")).unwrap();
    let message = fails(coffre(d, &["decrypt", "-i", "pub", "file.age"], b""));
    assert!(message.starts_with("identity file pub: line 1: not a key: wrong key type"));
    let recipient: Recipient = recipient.parse().unwrap();
    assert!(!message.contains(&recipient.to_string()));
}

#[test]
fn armor_round_trips_and_is_recognised_on_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keygen(d, "id");
    let id = id.to_str().unwrap();
    for len in [0, 47, 48, MULTI_CHUNK_BYTES] {
        let plain = random_bytes(len);
        let text = ok(coffre(d, &["encrypt", "-a", "-r", &recipient], &plain));
        let lines: Vec<&[u8]> = text
            .strip_suffix(b"\n")
            .unwrap()
            .split(|&b| b == b'\n')
            .collect();
        assert_eq!(lines[0], b"-----BEGIN AGE ENCRYPTED FILE-----");
        assert_eq!(*lines.last().unwrap(), b"-----END AGE ENCRYPTED FILE-----");
        let body = &lines[1..lines.len() - 1];
        for line in &body[..body.len() - 1] {
            assert_eq!(line.len(), 64);
        }
        assert!(!body.is_empty() && body[body.len() - 1].len() <= 64);
        // The same text, decoded, is a binary age file that decrypts the same.
        let binary = coffre_core::armor::dearmor(&text).unwrap();
        assert!(binary.starts_with(b"age-encryption.org/v1\n"));
        assert!(ok(coffre(d, &["decrypt", "-i", id], &text)) == plain);
        assert!(ok(coffre(d, &["decrypt", "-i", id], &binary)) == plain);
        // With -o, and with CRLF line endings as a Windows editor would save it.
        fs::write(d.join("plain"), &plain).unwrap();
        ok(coffre(
            d,
            &[
                "encrypt", "--armor", "-r", &recipient, "-o", "f.txt", "plain",
            ],
            b"",
        ));
        let crlf = String::from_utf8(fs::read(d.join("f.txt")).unwrap())
            .unwrap()
            .replace('\n', "\r\n");
        assert!(ok(coffre(d, &["decrypt", "-i", id], crlf.as_bytes())) == plain);
    }
}

#[test]
fn error_malformed_armor_names_the_rule_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keygen(d, "id");
    let text = String::from_utf8(ok(coffre(
        d,
        &["encrypt", "-a", "-r", &recipient],
        &random_bytes(1000),
    )))
    .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let with = |i: usize, line: &str| {
        let mut l = lines.clone();
        l[i] = line;
        l.join("\n") + "\n"
    };
    let bad_char = lines[2].replacen(|c: char| c.is_ascii_alphanumeric(), "!", 1);
    let long = format!("{}A", lines[2]);
    let short = &lines[2][..60];
    let last = lines[lines.len() - 2];
    // Without its `=` padding, or one character short when it has none.
    let no_padding = match last.trim_end_matches('=') {
        same if same == last => last[..last.len() - 1].to_owned(),
        stripped => stripped.to_owned(),
    };
    let (last_no, after_no) = (lines.len() - 1, lines.len() + 1);
    for (bad, want) in [
        (
            with(2, &bad_char),
            "malformed armor: line 3, column 1: invalid base64 character".into(),
        ),
        (
            with(2, &long),
            "malformed armor: line 3: longer than 64 columns".into(),
        ),
        (
            with(2, short),
            "malformed armor: line 3: shorter than 64 columns but not the last line".into(),
        ),
        (
            with(lines.len() - 2, &no_padding),
            format!("malformed armor: line {last_no}: base64 padding is missing or wrong"),
        ),
        (
            lines[..lines.len() - 1].join("\n") + "\n",
            "malformed armor: the file ends before the line -----END AGE ENCRYPTED FILE-----"
                .into(),
        ),
        (
            text.clone() + "garbage\n",
            format!("malformed armor: line {after_no}: data after the armor end line"),
        ),
        (
            text[..text.len() / 2].to_owned(),
            "malformed armor: the file ends before the line -----END AGE ENCRYPTED FILE-----"
                .into(),
        ),
    ] {
        let want: String = want;
        assert_eq!(decrypt_fails(d, &id, bad.as_bytes()), want);
    }
}
