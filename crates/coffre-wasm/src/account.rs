//! The client side of accounts: OPAQUE registration and login (RFC 9807), key bundles and
//! recovery codes. Passphrases go in, protocol messages come out; the OPAQUE export key
//! never leaves wasm: it only seals and opens key bundles inside the objects below.

use coffre_core::bundle::KeyBundle;
use coffre_core::opaque::{ClientLogin, ClientRegistration, ExportKey, KsfParams};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::error::CoffreError;
use crate::keys::Identity;

fn ksf(version: u16) -> Result<KsfParams, CoffreError> {
    Ok(KsfParams::from_version(version)?)
}

/// The Argon2id parameter version new registrations use (store it with the account).
#[wasm_bindgen(js_name = defaultKsfVersion)]
pub fn default_ksf_version() -> u16 {
    KsfParams::default().version()
}

/// A registration in progress (also how a passphrase is changed: register again, then
/// seal the same identity with the new result).
///
/// ```text
/// const reg = Registration.start(passphrase);   send reg.request
/// const done = reg.finish(response, ksfVersion); send done.upload
/// const bundle = done.sealIdentity(identity, accountId); store it on the server
/// ```
#[wasm_bindgen]
pub struct Registration {
    state: Option<ClientRegistration>,
    passphrase: Zeroizing<Vec<u8>>,
    request: Vec<u8>,
}

#[wasm_bindgen]
impl Registration {
    /// Step 1: blinds the passphrase. Send `request` to the server.
    pub fn start(passphrase: &str) -> Result<Registration, CoffreError> {
        let passphrase = Zeroizing::new(passphrase.as_bytes().to_vec());
        let (state, request) = ClientRegistration::start(&passphrase)?;
        Ok(Self {
            state: Some(state),
            passphrase,
            request,
        })
    }

    /// The registration request to send.
    #[wasm_bindgen(getter)]
    pub fn request(&self) -> Vec<u8> {
        self.request.clone()
    }

    /// Step 2: from the server's response, runs Argon2id (version `ksf_version`, see
    /// `defaultKsfVersion()`) and returns the result holding the upload to send.
    pub fn finish(
        &mut self,
        response: &[u8],
        ksf_version: u16,
    ) -> Result<RegistrationResult, CoffreError> {
        let state = self
            .state
            .take()
            .ok_or_else(|| CoffreError::invalid_state("the registration is finished"))?;
        let (upload, export_key) = state.finish(&self.passphrase, response, ksf(ksf_version)?)?;
        Ok(RegistrationResult { upload, export_key })
    }
}

/// A finished registration: the upload for the server and the new export key (kept in
/// wasm).
#[wasm_bindgen]
pub struct RegistrationResult {
    upload: Vec<u8>,
    export_key: ExportKey,
}

#[wasm_bindgen]
impl RegistrationResult {
    /// The registration upload to send to the server.
    #[wasm_bindgen(getter)]
    pub fn upload(&self) -> Vec<u8> {
        self.upload.clone()
    }

    /// Seals `identity` under this registration's export key: the passphrase key bundle
    /// to store with the account.
    #[wasm_bindgen(js_name = sealIdentity)]
    pub fn seal_identity(
        &self,
        identity: &Identity,
        account_id: &str,
    ) -> Result<Vec<u8>, CoffreError> {
        Ok(
            KeyBundle::seal_with_export_key(&identity.inner, &self.export_key, account_id)?
                .to_bytes(),
        )
    }
}

/// A login in progress.
///
/// ```text
/// const login = Login.start(passphrase);         send login.request
/// const done = login.finish(response, ksfVersion); send done.finalization
/// const me = done.openBundle(bundle, accountId);  the account's Identity
/// ```
#[wasm_bindgen]
pub struct Login {
    state: Option<ClientLogin>,
    passphrase: Zeroizing<Vec<u8>>,
    request: Vec<u8>,
}

#[wasm_bindgen]
impl Login {
    /// Step 1: blinds the passphrase. Send `request` (KE1) to the server.
    pub fn start(passphrase: &str) -> Result<Login, CoffreError> {
        let passphrase = Zeroizing::new(passphrase.as_bytes().to_vec());
        let (state, request) = ClientLogin::start(&passphrase)?;
        Ok(Self {
            state: Some(state),
            passphrase,
            request,
        })
    }

    /// The login request (KE1) to send.
    #[wasm_bindgen(getter)]
    pub fn request(&self) -> Vec<u8> {
        self.request.clone()
    }

    /// Step 2: from the server's response (KE2) and the account's Argon2id version,
    /// authenticates the server and returns the result holding the finalization (KE3).
    /// A wrong passphrase throws `INVALID_LOGIN` (and nothing must be sent back).
    pub fn finish(
        &mut self,
        response: &[u8],
        ksf_version: u16,
    ) -> Result<LoginResult, CoffreError> {
        let state = self
            .state
            .take()
            .ok_or_else(|| CoffreError::invalid_state("the login is finished"))?;
        let (finalization, session_key, export_key) =
            state.finish(&self.passphrase, response, ksf(ksf_version)?)?;
        Ok(LoginResult {
            finalization,
            session_key: Zeroizing::new(session_key.expose().to_vec()),
            export_key,
        })
    }
}

/// A successful login: the finalization for the server, the session key, and the export
/// key (kept in wasm) that opens the account's key bundle.
#[wasm_bindgen]
pub struct LoginResult {
    finalization: Vec<u8>,
    session_key: Zeroizing<Vec<u8>>,
    export_key: ExportKey,
}

#[wasm_bindgen]
impl LoginResult {
    /// The login finalization (KE3) to send to the server.
    #[wasm_bindgen(getter)]
    pub fn finalization(&self) -> Vec<u8> {
        self.finalization.clone()
    }

    /// The session key both sides now share (64 bytes), for whatever binds the session.
    #[wasm_bindgen(js_name = sessionKey)]
    pub fn session_key(&self) -> Vec<u8> {
        self.session_key.to_vec()
    }

    /// Opens the account's passphrase key bundle: the account's identity.
    #[wasm_bindgen(js_name = openBundle)]
    pub fn open_bundle(&self, bundle: &[u8], account_id: &str) -> Result<Identity, CoffreError> {
        let bundle = KeyBundle::from_bytes(bundle)?;
        Ok(Identity {
            inner: bundle.open_with_export_key(&self.export_key, account_id)?,
        })
    }

    /// Seals `identity` under this login's export key (re-sealing after a format upgrade).
    #[wasm_bindgen(js_name = sealIdentity)]
    pub fn seal_identity(
        &self,
        identity: &Identity,
        account_id: &str,
    ) -> Result<Vec<u8>, CoffreError> {
        Ok(
            KeyBundle::seal_with_export_key(&identity.inner, &self.export_key, account_id)?
                .to_bytes(),
        )
    }
}

/// A printed recovery code (128 bits, 8 groups of 4 characters with a checksum).
#[wasm_bindgen]
pub struct RecoveryCode {
    inner: coffre_core::recovery::RecoveryCode,
}

#[wasm_bindgen]
impl RecoveryCode {
    /// A new random code.
    pub fn generate() -> Result<RecoveryCode, CoffreError> {
        Ok(Self {
            inner: coffre_core::recovery::RecoveryCode::generate()?,
        })
    }

    /// Reads a typed code (case, spaces and dashes ignored). A typo throws
    /// `RECOVERY_CODE_TYPO`; a character codes never use throws
    /// `RECOVERY_CODE_INVALID_CHARACTER` with a hint in the message.
    pub fn parse(code: &str) -> Result<RecoveryCode, CoffreError> {
        Ok(Self {
            inner: code.parse()?,
        })
    }

    /// The code to print: `XXXX-XXXX-…` (8 groups).
    #[wasm_bindgen(js_name = toString)]
    pub fn to_display_string(&self) -> String {
        self.inner.to_display_string().as_str().to_owned()
    }

    /// The token that proves to the server that the client holds the code (32 bytes).
    #[wasm_bindgen(js_name = authToken)]
    pub fn auth_token(&self, account_id: &str) -> Vec<u8> {
        self.inner.derive_auth_token(account_id).expose().to_vec()
    }

    /// What the server stores to check this code's `authToken(accountId)` later
    /// (32 bytes): SHA-256 of a fixed label and the token. Not a secret: it proves
    /// nothing by itself and opens nothing.
    pub fn verifier(&self, account_id: &str) -> Vec<u8> {
        let token = self.inner.derive_auth_token(account_id);
        coffre_core::recovery::recovery_verifier(&token).to_vec()
    }

    /// Seals `identity` under this code: the recovery key bundle to store.
    #[wasm_bindgen(js_name = sealIdentity)]
    pub fn seal_identity(
        &self,
        identity: &Identity,
        account_id: &str,
    ) -> Result<Vec<u8>, CoffreError> {
        Ok(
            KeyBundle::seal_with_recovery_code(&identity.inner, &self.inner, account_id)?
                .to_bytes(),
        )
    }

    /// Opens the account's recovery key bundle: the account's identity.
    #[wasm_bindgen(js_name = openBundle)]
    pub fn open_bundle(&self, bundle: &[u8], account_id: &str) -> Result<Identity, CoffreError> {
        let bundle = KeyBundle::from_bytes(bundle)?;
        Ok(Identity {
            inner: bundle.open_with_recovery_code(&self.inner, account_id)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::ErrorCode;
    use coffre_core::opaque::{
        server_login_start, server_registration_finish, server_registration_start, ServerSetup,
    };

    #[test]
    fn register_login_and_open_bundle() {
        let setup = ServerSetup::generate();
        let account = "acct-42";
        let version = default_ksf_version();
        let me = Identity::generate().unwrap();

        let mut reg = Registration::start("correct horse").unwrap();
        let response =
            server_registration_start(&setup, &reg.request(), account.as_bytes()).unwrap();
        let done = reg.finish(&response, version).unwrap();
        let file = server_registration_finish(&done.upload()).unwrap();
        let bundle = done.seal_identity(&me, account).unwrap();
        assert_eq!(
            reg.finish(&response, version).err().unwrap().code(),
            ErrorCode::InvalidState
        );

        let mut login = Login::start("correct horse").unwrap();
        let (state, response) =
            server_login_start(&setup, Some(&file), &login.request(), account.as_bytes()).unwrap();
        let ok = login.finish(&response, version).unwrap();
        let server_key = state.finish(&ok.finalization()).unwrap();
        assert_eq!(server_key.expose().as_slice(), ok.session_key().as_slice());
        let opened = ok.open_bundle(&bundle, account).unwrap();
        assert_eq!(opened.recipient(), me.recipient());
        assert_eq!(
            ok.open_bundle(&bundle, "acct-43").err().unwrap().code(),
            ErrorCode::BundleAuthenticationFailed
        );

        let mut wrong = Login::start("wrong horse").unwrap();
        let (_, response) =
            server_login_start(&setup, Some(&file), &wrong.request(), account.as_bytes()).unwrap();
        assert_eq!(
            wrong.finish(&response, version).err().unwrap().code(),
            ErrorCode::InvalidLogin
        );
        let mut bad = Login::start("x").unwrap();
        assert_eq!(
            bad.finish(b"short", version).err().unwrap().code(),
            ErrorCode::MalformedMessage
        );
        let mut bad = Login::start("x").unwrap();
        assert_eq!(
            bad.finish(b"short", 0xbeef).err().unwrap().code(),
            ErrorCode::UnknownKsfVersion
        );
    }

    #[test]
    fn recovery_code_round_trip() {
        let me = Identity::generate().unwrap();
        let code = RecoveryCode::generate().unwrap();
        let typed = code.to_display_string().to_lowercase();
        let again = RecoveryCode::parse(&typed).unwrap();
        let bundle = code.seal_identity(&me, "acct").unwrap();
        assert_eq!(
            again.open_bundle(&bundle, "acct").unwrap().recipient(),
            me.recipient()
        );
        assert_eq!(again.auth_token("acct"), code.auth_token("acct"));
        let verifier: [u8; 32] = code.verifier("acct").try_into().unwrap();
        let token = coffre_core::recovery::RecoveryToken::from_bytes(
            again.auth_token("acct").try_into().unwrap(),
        );
        assert!(coffre_core::recovery::verify_recovery_token(
            &verifier, &token
        ));
        assert_ne!(code.verifier("acct"), code.verifier("acct-2"));
        assert_eq!(
            RecoveryCode::parse("ACD").err().unwrap().code(),
            ErrorCode::RecoveryCodeWrongLength
        );
    }
}
