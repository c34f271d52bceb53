//! Interoperability with the reference `age` tool (Debian package `age`): files written by
//! `coffre` open with `age -d`, files written by `age -e` open with `coffre decrypt`, key
//! files cross over, and Coffre's recombined envelopes (`envelope || payload`) are plain
//! age files.
//!
//! These tests fail, never skip, when `age` is missing: `cargo xtask test` installs it
//! (`apt-get install -y age`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use coffre_core::{parse_identity_file, Envelope, Identity};
use common::{coffre, keygen, ok, random_bytes, run};

/// The sizes every direction is tried with: empty, one byte short of a chunk, 5 MiB.
const SIZES: [usize; 3] = [0, 64 * 1024 - 1, 5 * 1024 * 1024];

/// Runs the reference `age` tool (or `age-keygen`) in `dir`.
fn age_tool(tool: &str, dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(tool);
    cmd.args(args).current_dir(dir);
    if let Err(e) = Command::new(tool).arg("--version").output() {
        panic!(
            "`{tool}` is needed by the interop tests but cannot be run ({e}); install it with \
             `apt-get install -y age` or run `cargo xtask test`, which does"
        );
    }
    run(&mut cmd, stdin)
}

fn age(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    age_tool("age", dir, args, stdin)
}

/// Generates an identity with `age-keygen -o NAME`; returns its recipient.
fn age_keygen(dir: &Path, name: &str) -> String {
    ok(age_tool("age-keygen", dir, &["-o", name], b""));
    let out = ok(age_tool("age-keygen", dir, &["-y", name], b""));
    String::from_utf8(out).unwrap().trim().to_owned()
}

#[test]
fn coffre_encrypts_age_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, recipient) = keygen(d, "id");
    for len in SIZES {
        let plain = random_bytes(len);
        fs::write(d.join("plain"), &plain).unwrap();
        ok(coffre(
            d,
            &["encrypt", "-r", &recipient, "-o", "f.age", "plain"],
            b"",
        ));
        let back = ok(age(d, &["-d", "-i", "id", "f.age"], b""));
        assert!(back == plain, "age could not open coffre's {len}-byte file");
    }
}

#[test]
fn age_encrypts_coffre_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, recipient) = keygen(d, "id");
    for len in SIZES {
        let plain = random_bytes(len);
        fs::write(d.join("plain"), &plain).unwrap();
        ok(age(
            d,
            &["-e", "-r", &recipient, "-o", "f.age", "plain"],
            b"",
        ));
        ok(coffre(
            d,
            &["decrypt", "-i", "id", "-o", "back", "f.age"],
            b"",
        ));
        let back = fs::read(d.join("back")).unwrap();
        assert!(back == plain, "coffre could not open age's {len}-byte file");
    }
}

#[test]
fn three_recipients_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Mixed key sources: two coffre keygen identities and one age-keygen identity.
    let (_, r1) = keygen(d, "id1");
    let (_, r2) = keygen(d, "id2");
    let r3 = age_keygen(d, "id3");
    for len in SIZES {
        let plain = random_bytes(len);
        let by_coffre = ok(coffre(
            d,
            &["encrypt", "-r", &r1, "-r", &r2, "-r", &r3],
            &plain,
        ));
        let by_age = ok(age(d, &["-e", "-r", &r1, "-r", &r2, "-r", &r3], &plain));
        for id in ["id1", "id2", "id3"] {
            let back = ok(age(d, &["-d", "-i", id], &by_coffre));
            assert!(back == plain, "age -i {id}, {len} bytes");
            let back = ok(coffre(d, &["decrypt", "-i", id], &by_age));
            assert!(back == plain, "coffre -i {id}, {len} bytes");
        }
    }
}

#[test]
fn key_files_cross_over() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // age-keygen's file (with its comments) read by coffre.
    let age_recipient = age_keygen(d, "age-id");
    let plain = random_bytes(10_000);
    let file = ok(age(d, &["-e", "-r", &age_recipient], &plain));
    assert_eq!(ok(coffre(d, &["decrypt", "-i", "age-id"], &file)), plain);
    // coffre keygen's file read by age, and the same public key derived by both tools.
    let (_, coffre_recipient) = keygen(d, "coffre-id");
    let derived = ok(age_tool("age-keygen", d, &["-y", "coffre-id"], b""));
    assert_eq!(String::from_utf8(derived).unwrap().trim(), coffre_recipient);
    let file = ok(coffre(d, &["encrypt", "-r", &coffre_recipient], &plain));
    assert_eq!(ok(age(d, &["-d", "-i", "coffre-id"], &file)), plain);
    // A recipients file for -R, read by both.
    fs::write(
        d.join("team"),
        format!("# both\n{age_recipient}\n{coffre_recipient}\n"),
    )
    .unwrap();
    let file = ok(coffre(d, &["encrypt", "-R", "team"], &plain));
    assert_eq!(ok(age(d, &["-d", "-i", "age-id"], &file)), plain);
    let file = ok(age(d, &["-e", "-R", "team"], &plain));
    assert_eq!(ok(coffre(d, &["decrypt", "-i", "coffre-id"], &file)), plain);
}

#[test]
fn rewrapped_envelope_opens_with_age() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (owner_file, owner_recipient) = keygen(d, "owner");
    let owner = parse_identity_file(&fs::read_to_string(owner_file).unwrap()).unwrap();
    // The new recipient's key comes from age-keygen, as a partner's would.
    let worker_recipient = age_keygen(d, "worker");

    for len in SIZES {
        let plain = random_bytes(len);
        let file = ok(coffre(d, &["encrypt", "-r", &owner_recipient], &plain));
        let (own_envelope, payload) = Envelope::split(&file).unwrap();
        let for_worker = own_envelope
            .rewrap(&owner, &worker_recipient.parse().unwrap())
            .unwrap();
        // The envelope is what a server would store: it must parse on its own.
        Envelope::parse(for_worker.as_bytes()).unwrap();
        let shared = for_worker.join(payload);
        fs::write(d.join("shared.age"), &shared).unwrap();
        let back = ok(age(d, &["-d", "-i", "worker", "shared.age"], b""));
        assert!(
            back == plain,
            "age could not open a rewrapped {len}-byte file"
        );
        // The owner's own envelope with the same payload still opens, with both tools.
        let own = own_envelope.join(payload);
        assert!(ok(age(d, &["-d", "-i", "owner"], &own)) == plain);
        // And the worker's identity is no use on the owner's envelope.
        let wrong = age(d, &["-d", "-i", "worker"], &own);
        assert!(!wrong.status.success());
    }

    // Envelopes made apart from the payload by the streaming encryptor, too.
    let plain = random_bytes(200_000);
    let worker = Identity::generate().unwrap();
    fs::write(
        d.join("worker2"),
        format!("{}\n", worker.to_secret_string().as_str()),
    )
    .unwrap();
    let owner_id = &owner[0];
    let (envelopes, mut encryptor) =
        coffre_core::Encryptor::detached(&[owner_id.to_recipient(), worker.to_recipient()])
            .unwrap();
    let mut payload = Vec::new();
    encryptor.push(&plain, &mut payload).unwrap();
    encryptor.finish(&mut payload).unwrap();
    for (envelope, id) in envelopes.iter().zip(["owner", "worker2"]) {
        let back = ok(age(d, &["-d", "-i", id], &envelope.join(&payload)));
        assert!(back == plain, "detached envelope for {id}");
    }
}

#[test]
fn armor_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, recipient) = keygen(d, "id");
    for len in SIZES {
        let plain = random_bytes(len);
        // `coffre encrypt -a` opened by `age -d`, from a file and from standard input.
        let by_coffre = ok(coffre(d, &["encrypt", "-a", "-r", &recipient], &plain));
        fs::write(d.join("c.txt"), &by_coffre).unwrap();
        let back = ok(age(d, &["-d", "-i", "id", "c.txt"], b""));
        assert!(
            back == plain,
            "age could not open coffre's {len}-byte armor"
        );
        assert!(ok(age(d, &["-d", "-i", "id"], &by_coffre)) == plain);

        // `age -a` opened by `coffre decrypt`, to standard output and to a file.
        let by_age = ok(age(d, &["-e", "-a", "-r", &recipient], &plain));
        assert!(by_age.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(ok(coffre(d, &["decrypt", "-i", "id"], &by_age)) == plain);
        fs::write(d.join("a.txt"), &by_age).unwrap();
        ok(coffre(
            d,
            &["decrypt", "-i", "id", "-o", "back", "a.txt"],
            b"",
        ));
        assert!(fs::read(d.join("back")).unwrap() == plain);

        // Both write the one canonical armor: age's text decoded and armored again by
        // coffre-core is the same text, byte for byte.
        let binary = coffre_core::armor::dearmor(&by_age).unwrap();
        assert!(coffre_core::armor::armor(&binary) == by_age, "{len} bytes");
    }
}
