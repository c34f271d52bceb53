//! Throughput of the age STREAM next to raw ChaCha20-Poly1305 on the same data, in the
//! same run, and the time of one Argon2id derivation at the login parameters:
//! `cargo bench -p coffre-core --bench stream` (or `cargo xtask bench`).
//!
//! The goal (issue: coffre-core) is a format overhead of at most 10 %: header, nonce,
//! chunking and push-style buffering cost little next to the cipher itself.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use chacha20poly1305::{aead::AeadInPlace, ChaCha20Poly1305, KeyInit, Nonce, Tag};
use coffre_core::format::stream::{CHUNK_SIZE, TAG_BYTES};
use coffre_core::opaque::KSF_V1;
use coffre_core::{Decryptor, Encryptor, Identity};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SIZE: usize = 64 * 1024 * 1024;
/// Pieces the caller pushes, as a browser stream or a file read would deliver them.
const PIECE: usize = 64 * 1024;

fn data() -> Vec<u8> {
    (0..SIZE as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn stream(c: &mut Criterion) {
    let plain = data();
    let id = Identity::generate().unwrap();
    let recipients = [id.to_recipient()];
    let mut group = c.benchmark_group("64MiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);

    // Raw AEAD over 64 KiB chunks, out of place like any stream (copy the chunk to the
    // output, encrypt it there, append the tag): the floor any chunked format pays.
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let nonce_of = |i: usize| {
        let mut nonce = Nonce::default();
        nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
        nonce
    };
    let mut out = Vec::with_capacity(SIZE + SIZE / CHUNK_SIZE * TAG_BYTES + 1024);
    group.bench_function(BenchmarkId::new("encrypt", "raw chacha20poly1305"), |b| {
        b.iter(|| {
            out.clear();
            for (i, chunk) in plain.chunks(CHUNK_SIZE).enumerate() {
                let start = out.len();
                out.extend_from_slice(chunk);
                let tag = cipher
                    .encrypt_in_place_detached(&nonce_of(i), b"", &mut out[start..])
                    .unwrap();
                out.extend_from_slice(&tag);
            }
        })
    });
    let raw_ct = out.clone();

    group.bench_function(BenchmarkId::new("encrypt", "age STREAM (Encryptor)"), |b| {
        b.iter(|| {
            out.clear();
            let mut enc = Encryptor::new(&recipients).unwrap();
            for piece in plain.chunks(PIECE) {
                enc.push(piece, &mut out).unwrap();
            }
            enc.finish(&mut out).unwrap();
        })
    });

    let mut plain_out = Vec::with_capacity(SIZE);
    group.bench_function(BenchmarkId::new("decrypt", "raw chacha20poly1305"), |b| {
        b.iter(|| {
            plain_out.clear();
            for (i, chunk) in raw_ct.chunks(CHUNK_SIZE + TAG_BYTES).enumerate() {
                let (ct, tag) = chunk.split_at(chunk.len() - TAG_BYTES);
                let start = plain_out.len();
                plain_out.extend_from_slice(ct);
                cipher
                    .decrypt_in_place_detached(
                        &nonce_of(i),
                        b"",
                        &mut plain_out[start..],
                        Tag::from_slice(tag),
                    )
                    .unwrap();
            }
        })
    });

    let mut file = Vec::new();
    let mut enc = Encryptor::new(&recipients).unwrap();
    enc.push(&plain, &mut file).unwrap();
    enc.finish(&mut file).unwrap();
    let ids = [id];
    group.bench_function(BenchmarkId::new("decrypt", "age STREAM (Decryptor)"), |b| {
        b.iter(|| {
            plain_out.clear();
            let mut dec = Decryptor::new(&ids);
            for piece in file.chunks(PIECE) {
                dec.push(piece, &mut plain_out).unwrap();
            }
            dec.finish(&mut plain_out).unwrap();
        })
    });
    group.finish();
}

/// One Argon2id derivation at the parameters every account registers with (KSF v1:
/// m = 64 MiB, t = 3, p = 1): the cost of each login and of each offline guess.
fn argon2id(c: &mut Criterion) {
    let argon2 = KSF_V1.argon2().unwrap();
    let mut out = [0u8; 64];
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(10);
    group.bench_function("KSF v1 (m=64MiB t=3 p=1)", |b| {
        b.iter(|| {
            argon2
                .hash_password_into(&[7u8; 64], &[0u8; 16], &mut out)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, stream, argon2id);
criterion_main!(benches);
