//! Round trips and negative tests of age encryption through the public streaming API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use coffre_core::format::stream::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, PAYLOAD_NONCE_BYTES};
use coffre_core::{decrypt, encrypt, DecryptError, Decryptor, Encryptor, Envelope, Identity};
use proptest::prelude::*;

fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn encrypt_in_pieces(plain: &[u8], ids: &[&Identity], piece: usize) -> Vec<u8> {
    let recipients: Vec<_> = ids.iter().map(|i| i.to_recipient()).collect();
    let mut enc = Encryptor::new(&recipients).unwrap();
    let mut out = Vec::new();
    for chunk in plain.chunks(piece.max(1)) {
        enc.push(chunk, &mut out).unwrap();
    }
    enc.finish(&mut out).unwrap();
    out
}

fn decrypt_in_pieces(file: &[u8], ids: &[Identity], piece: usize) -> Result<Vec<u8>, DecryptError> {
    let mut dec = Decryptor::new(ids);
    let mut out = Vec::new();
    for chunk in file.chunks(piece.max(1)) {
        dec.push(chunk, &mut out)?;
    }
    dec.finish(&mut out)?;
    Ok(out)
}

/// Offset of the payload (after the header) in a file.
fn header_len(file: &[u8]) -> usize {
    let end = file.windows(4).position(|w| w == b"\n---").unwrap();
    end + 1 + file[end + 1..].iter().position(|b| *b == b'\n').unwrap() + 1
}

/// Expected ciphertext size of an age payload for `len` plaintext bytes.
fn payload_len(len: usize) -> usize {
    let chunks = if len == 0 {
        1
    } else {
        len.div_ceil(CHUNK_SIZE)
    };
    PAYLOAD_NONCE_BYTES + len + chunks * 16
}

#[test]
fn round_trips_at_chunk_boundaries() {
    let id = Identity::generate().unwrap();
    for len in [
        0,
        1,
        65_535,
        65_536,
        65_537,
        2 * 65_536,
        5 * 1024 * 1024 + 123,
    ] {
        let plain = data(len, len as u32);
        let file = encrypt(&plain, &[id.to_recipient()]).unwrap();
        assert_eq!(
            file.len() - header_len(&file),
            payload_len(len),
            "len {len}"
        );
        assert_eq!(
            decrypt(&file, std::slice::from_ref(&id)).unwrap(),
            plain,
            "len {len}"
        );
    }
}

#[test]
fn every_recipient_can_open_a_multi_recipient_file() {
    let ids: Vec<Identity> = (0..3).map(|_| Identity::generate().unwrap()).collect();
    let plain = data(70_000, 1);
    let file = encrypt_in_pieces(&plain, &ids.iter().collect::<Vec<_>>(), 10_000);
    for id in &ids {
        assert_eq!(decrypt(&file, std::slice::from_ref(id)).unwrap(), plain);
    }
    // With several identities, the one that matches is found whatever its position.
    let other = Identity::generate().unwrap();
    assert_eq!(decrypt(&file, &[other, ids[2].clone()]).unwrap(), plain);
}

#[test]
fn wrong_identity_matches_nothing() {
    let id = Identity::generate().unwrap();
    let file = encrypt(b"secret", &[id.to_recipient()]).unwrap();
    let other = Identity::generate().unwrap();
    assert_eq!(
        decrypt(&file, &[other]),
        Err(DecryptError::NoIdentityMatched)
    );
    assert_eq!(decrypt(&file, &[]), Err(DecryptError::NoIdentityMatched));
}

#[test]
fn every_bit_flip_in_a_small_file_is_rejected() {
    let id = Identity::generate().unwrap();
    let file = encrypt(b"Titre de sejour, recto", &[id.to_recipient()]).unwrap();
    let ids = [id];
    for byte in 0..file.len() {
        for bit in 0..8 {
            let mut bad = file.clone();
            bad[byte] ^= 1 << bit;
            let result = decrypt(&bad, &ids);
            assert!(
                result.is_err(),
                "flip of bit {bit} of byte {byte} was accepted"
            );
        }
    }
}

#[test]
fn header_and_payload_flips_give_their_own_errors() {
    let id = Identity::generate().unwrap();
    let file = encrypt(&data(1000, 3), &[id.to_recipient()]).unwrap();
    let ids = [id];
    let h = header_len(&file);
    // The MAC's first base64 character.
    let mac_at = h - 44;
    let mut bad = file.clone();
    bad[mac_at] = if bad[mac_at] == b'A' { b'B' } else { b'A' };
    assert_eq!(decrypt(&bad, &ids), Err(DecryptError::HeaderMacMismatch));
    let mut bad = file.clone();
    bad[h + PAYLOAD_NONCE_BYTES + 10] ^= 0x40;
    assert_eq!(
        decrypt(&bad, &ids),
        Err(DecryptError::PayloadAuthenticationFailed)
    );
    let mut bad = file.clone();
    bad[h] ^= 1; // the payload nonce
    assert_eq!(
        decrypt(&bad, &ids),
        Err(DecryptError::PayloadAuthenticationFailed)
    );
    let mut bad = file;
    bad[3] = b'X'; // the version line
    assert!(matches!(
        decrypt(&bad, &ids),
        Err(DecryptError::MalformedHeader(_))
    ));
}

#[test]
fn truncation_anywhere_is_detected() {
    let id = Identity::generate().unwrap();
    let plain = data(3 * CHUNK_SIZE + 100, 9);
    let file = encrypt(&plain, &[id.to_recipient()]).unwrap();
    let ids = [id];
    let h = header_len(&file);
    let p = h + PAYLOAD_NONCE_BYTES;
    let mut cuts = vec![
        0,
        1,
        h / 2,
        h - 1,
        h,
        h + 5,
        p,
        p + 1,
        p + 15,
        file.len() - 1,
    ];
    for k in 1..=3 {
        // At every chunk boundary, and just around it.
        let at = p + k * ENCRYPTED_CHUNK_SIZE;
        cuts.extend([at - 1, at, at + 1]);
    }
    for cut in cuts {
        let result = decrypt_in_pieces(&file[..cut], &ids, 4096);
        assert!(result.is_err(), "cut at {cut} accepted");
        if cut >= p && (cut - p) % ENCRYPTED_CHUNK_SIZE == 0 {
            assert_eq!(
                result,
                Err(DecryptError::Truncated),
                "cut at chunk boundary {cut}"
            );
        }
    }
}

#[test]
fn swapped_chunks_are_rejected() {
    let id = Identity::generate().unwrap();
    let file = encrypt(&data(3 * CHUNK_SIZE + 7, 4), &[id.to_recipient()]).unwrap();
    let p = header_len(&file) + PAYLOAD_NONCE_BYTES;
    let mut bad = file.clone();
    let (a, b) = (
        p..p + ENCRYPTED_CHUNK_SIZE,
        p + ENCRYPTED_CHUNK_SIZE..p + 2 * ENCRYPTED_CHUNK_SIZE,
    );
    let first = file[a.clone()].to_vec();
    bad.copy_within(b.clone(), a.start);
    bad[b].copy_from_slice(&first);
    assert_eq!(
        decrypt(&bad, &[id]),
        Err(DecryptError::PayloadAuthenticationFailed)
    );
}

#[test]
fn appended_bytes_are_rejected() {
    let id = Identity::generate().unwrap();
    let ids = [id];
    for len in [0, 10, CHUNK_SIZE, CHUNK_SIZE + 10] {
        let file = encrypt(&data(len, 5), &[ids[0].to_recipient()]).unwrap();
        for extra in [1, 16, 17, ENCRYPTED_CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE + 1] {
            let mut bad = file.clone();
            bad.extend(std::iter::repeat_n(0xAB, extra));
            let result = decrypt_in_pieces(&bad, &ids, 1000);
            assert!(
                result.is_err(),
                "len {len} + {extra} trailing bytes accepted"
            );
        }
        // A whole extra final-looking chunk after a full final chunk is trailing data.
        let mut bad = file.clone();
        bad.extend_from_slice(&file[file.len() - 20..]);
        assert!(decrypt(&bad, &ids).is_err());
    }
}

#[test]
fn plaintext_is_released_only_after_its_chunk_verified() {
    let id = Identity::generate().unwrap();
    let plain = data(4 * CHUNK_SIZE, 6);
    let mut file = encrypt(&plain, &[id.to_recipient()]).unwrap();
    let p = header_len(&file) + PAYLOAD_NONCE_BYTES;
    // Corrupt the third chunk (index 2).
    file[p + 2 * ENCRYPTED_CHUNK_SIZE + 5] ^= 1;
    let mut dec = Decryptor::new(&[id]);
    let mut out = Vec::new();
    let err = dec.push(&file, &mut out).unwrap_err();
    assert_eq!(err, DecryptError::PayloadAuthenticationFailed);
    assert_eq!(out.len(), 2 * CHUNK_SIZE);
    assert_eq!(out, plain[..2 * CHUNK_SIZE]);
    // A failed decryptor stays failed.
    assert_eq!(dec.push(b"more", &mut out), Err(DecryptError::Poisoned));
}

#[test]
fn envelope_of_one_document_does_not_open_the_payload_of_another() {
    let id = Identity::generate().unwrap();
    let a = encrypt(&data(5000, 1), &[id.to_recipient()]).unwrap();
    let b = encrypt(&data(5000, 2), &[id.to_recipient()]).unwrap();
    let (env_a, _) = Envelope::split(&a).unwrap();
    let (_, payload_b) = Envelope::split(&b).unwrap();
    let mixed = env_a.join(payload_b);
    assert_eq!(
        decrypt(&mixed, &[id]),
        Err(DecryptError::PayloadAuthenticationFailed)
    );
}

#[test]
fn envelopes_split_rewrap_and_join() {
    let owner = Identity::generate().unwrap();
    let worker = Identity::generate().unwrap();
    let plain = data(CHUNK_SIZE + 1, 8);
    let file = encrypt(&plain, &[owner.to_recipient()]).unwrap();
    let (envelope, payload) = Envelope::split(&file).unwrap();
    assert_eq!(envelope.join(payload), file);
    assert_eq!(Envelope::parse(envelope.as_bytes()).unwrap(), envelope);

    let for_worker = envelope
        .rewrap(std::slice::from_ref(&owner), &worker.to_recipient())
        .unwrap();
    assert_ne!(for_worker, envelope);
    assert_eq!(
        decrypt(&for_worker.join(payload), std::slice::from_ref(&worker)).unwrap(),
        plain
    );
    // The worker's envelope does not open for the owner, and vice versa.
    assert_eq!(
        decrypt(&for_worker.join(payload), std::slice::from_ref(&owner)),
        Err(DecryptError::NoIdentityMatched)
    );
    // Only someone who can open an envelope can rewrap it.
    assert!(envelope
        .rewrap(std::slice::from_ref(&worker), &owner.to_recipient())
        .is_err());
    // Both envelopes carry the same file key.
    assert_eq!(
        envelope.open(&[owner]).unwrap().expose(),
        for_worker.open(&[worker]).unwrap().expose()
    );
}

#[test]
fn detached_encryption_gives_one_envelope_per_recipient_and_one_payload() {
    let ids: Vec<Identity> = (0..2).map(|_| Identity::generate().unwrap()).collect();
    let recipients: Vec<_> = ids.iter().map(|i| i.to_recipient()).collect();
    let (envelopes, mut enc) = Encryptor::detached(&recipients).unwrap();
    let plain = data(100_000, 11);
    let mut payload = Vec::new();
    enc.push(&plain, &mut payload).unwrap();
    enc.finish(&mut payload).unwrap();
    assert_eq!(payload.len(), payload_len(plain.len()));
    for (envelope, id) in envelopes.iter().zip(&ids) {
        assert_eq!(
            decrypt(&envelope.join(&payload), std::slice::from_ref(id)).unwrap(),
            plain
        );
        // The payload alone decrypts with the file key from the envelope.
        let key = envelope.open(std::slice::from_ref(id)).unwrap();
        let mut dec = Decryptor::with_file_key(key);
        let mut out = Vec::new();
        dec.push(&payload, &mut out).unwrap();
        dec.finish(&mut out).unwrap();
        assert_eq!(out, plain);
    }
}

#[test]
fn envelope_parse_rejects_everything_but_one_x25519_stanza() {
    let a = Identity::generate().unwrap();
    let b = Identity::generate().unwrap();
    let two = encrypt(b"x", &[a.to_recipient(), b.to_recipient()]).unwrap();
    let h = header_len(&two);
    assert!(Envelope::parse(&two[..h]).is_err());
    assert!(Envelope::split(&two).is_err());
    let one = encrypt(b"x", &[a.to_recipient()]).unwrap();
    let h = header_len(&one);
    assert!(Envelope::parse(&one[..h]).is_ok());
    assert!(Envelope::parse(&one).is_err(), "payload after the header");
    assert!(Envelope::parse(&one[..h - 1]).is_err(), "cut MAC line");
    assert!(Envelope::parse(b"").is_err());
    assert!(Envelope::parse(b"not an age header\n").is_err());
    let other_type =
        String::from_utf8(one[..h].to_vec())
            .unwrap()
            .replacen("-> X25519", "-> Y25519", 1);
    assert!(Envelope::parse(other_type.as_bytes()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_size_and_piece_boundaries_round_trip(
        len in 0usize..(3 * CHUNK_SIZE + 50),
        enc_piece in 1usize..(2 * CHUNK_SIZE),
        dec_piece in 1usize..(2 * CHUNK_SIZE),
        seed in any::<u32>(),
    ) {
        let id = Identity::generate().unwrap();
        let plain = data(len, seed);
        let file = encrypt_in_pieces(&plain, &[&id], enc_piece);
        // Same length as the one-shot helper (the bytes differ by randomness).
        let one = encrypt(&plain, &[id.to_recipient()]).unwrap();
        prop_assert_eq!(one.len(), file.len());
        prop_assert_eq!(decrypt_in_pieces(&file, &[id], dec_piece).unwrap(), plain);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any edit of a valid file (overwrite, insert or delete a few bytes) is either a
    /// no-op or rejected; nothing panics.
    #[test]
    fn edited_files_are_rejected_never_misread(
        len in 0usize..3000,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let id = Identity::generate().unwrap();
        let plain = data(len, len as u32);
        let file = encrypt(&plain, &[id.to_recipient()]).unwrap();
        let mut bad = file.clone();
        for (at, value, kind) in edits {
            let i = at.index(bad.len());
            match kind {
                0 => bad[i] = value,
                1 => bad.insert(i, value),
                _ => { bad.remove(i); }
            }
        }
        let result = decrypt(&bad, &[id]);
        if bad == file {
            prop_assert_eq!(result.unwrap(), plain);
        } else {
            prop_assert!(result.is_err());
        }
    }

    /// Arbitrary bytes never panic the header parser, the envelope parser or the decryptor.
    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), prefix in any::<bool>()) {
        let mut input = if prefix { b"age-encryption.org/v1\n-> X25519 ".to_vec() } else { Vec::new() };
        input.extend_from_slice(&bytes);
        let _ = coffre_core::format::header::Header::parse(&input);
        let _ = Envelope::parse(&input);
        let id = Identity::generate().unwrap();
        prop_assert!(decrypt(&input, &[id]).is_err());
    }
}
