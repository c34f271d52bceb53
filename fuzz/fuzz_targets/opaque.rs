//! The server side of OPAQUE (coffre_core::opaque): every message a client sends, and the
//! records the server reads back. The first byte picks the parser; the rest is the
//! message. Records and states that parse write back to the same bytes. No Argon2id
//! runs: it is the client's side. The server setup and the one valid login request the
//! record mode answers are made once per process (OPAQUE draws its own randomness).
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run opaque` from the repository root.
#![no_main]

use std::sync::LazyLock;

use coffre_core::opaque::{
    server_login_start, server_registration_finish, server_registration_start, ClientLogin,
    PasswordFile, ServerLoginState, ServerSetup,
};
use libfuzzer_sys::fuzz_target;

const CREDENTIAL_ID: &[u8] = b"00112233445566778899aabbccddeeff";

static SETUP: LazyLock<ServerSetup> = LazyLock::new(ServerSetup::generate);
static LOGIN_REQUEST: LazyLock<Vec<u8>> =
    LazyLock::new(|| ClientLogin::start(b"1234").expect("a login request").1);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, message)) = data.split_first() else {
        return;
    };
    match mode % 6 {
        0 => {
            let _ = server_registration_start(&SETUP, message, CREDENTIAL_ID);
        }
        1 => {
            if let Ok(record) = server_registration_finish(message) {
                let again =
                    PasswordFile::from_bytes(record.as_bytes()).expect("a record reads back");
                assert_eq!(again.as_bytes(), record.as_bytes());
            }
        }
        2 => {
            // An unknown account: the fake record answers.
            if let Ok((state, _response)) = server_login_start(&SETUP, None, message, CREDENTIAL_ID)
            {
                let bytes = state.to_bytes();
                let again = ServerLoginState::from_bytes(&bytes).expect("a login state reads back");
                assert_eq!(*again.to_bytes(), *bytes);
                assert!(again.finish(&[0; 64]).is_err());
            }
        }
        3 => {
            if let Ok(state) = ServerLoginState::from_bytes(message) {
                assert_eq!(state.to_bytes().as_slice(), message);
                let _ = state.finish(message);
            }
        }
        4 => {
            if let Ok(record) = PasswordFile::from_bytes(message) {
                assert_eq!(record.as_bytes(), message);
                let _ = server_login_start(&SETUP, Some(&record), &LOGIN_REQUEST, CREDENTIAL_ID);
            }
        }
        _ => {
            if let Ok(setup) = ServerSetup::from_bytes(message) {
                assert_eq!(setup.to_bytes().as_slice(), message);
            }
        }
    }
});
