//! Password login with OPAQUE (RFC 9807), through the `opaque-ke` crate.
//!
//! Coffre uses one cipher suite, [`CoffreSuite`]: ristretto255 for the OPRF and the
//! 3DH key exchange, SHA-512, and Argon2id as the key stretching function (KSF).
//! This module wraps `opaque-ke`'s generic types in byte-oriented, non-generic helpers so
//! that the server and the wasm bindings only ever handle `Vec<u8>` messages.
//!
//! # Flow
//!
//! Registration (client ⇄ server, three messages):
//! [`ClientRegistration::start`] → [`server_registration_start`] →
//! [`ClientRegistration::finish`] → [`server_registration_finish`], which returns the
//! [`PasswordFile`] the server stores for the account.
//!
//! Login: [`ClientLogin::start`] → [`server_login_start`] (the server keeps the
//! [`ServerLoginState`]) → [`ClientLogin::finish`] → [`ServerLoginState::finish`]. Both
//! sides end with the same [`SessionKey`]; the client also gets the [`ExportKey`], which
//! opens the key bundle ([`crate::bundle`]) and which the server never learns.
//!
//! # Security rules applied here
//!
//! - The server never sees the passphrase. A [`PasswordFile`] is useless without the
//!   [`ServerSetup`] (its OPRF seed): a stolen database alone allows no offline guessing
//!   (RFC 9807 §10.5, "Offline dictionary attacks"). Keep the setup in its own key file.
//! - Unknown accounts get a well-formed, same-size answer computed from a fake record
//!   (`None` in [`server_login_start`], RFC 9807 §10.9 "Preventing client enumeration").
//! - Argon2id parameters are versioned per account ([`KsfParams`]); the server stores the
//!   version next to the [`PasswordFile`] and tells the client which one to use.
//! - The credential identifier is the account's stable id (RFC 9807 §6.4.1): each account
//!   gets its own OPRF key, so a record cannot be moved to another account.
//! - Identifiers: Coffre leaves RFC 9807's `client_identity` / `server_identity` at their
//!   defaults (the client's and server's public keys). The account binding already comes
//!   from the credential identifier, and putting the handle into the envelope would force
//!   a re-registration on every rename. The login *context* is set to
//!   [`LOGIN_CONTEXT_LABEL`], so a transcript of another OPAQUE application never
//!   verifies here (RFC 9807 §6.1, "context").

use core::fmt;

use opaque_ke::{
    errors::{InternalError, ProtocolError},
    ClientLoginFinishParameters, ClientRegistrationFinishParameters, CredentialFinalization,
    CredentialRequest, CredentialResponse, Identifiers, RegistrationRequest, RegistrationResponse,
    RegistrationUpload, Ristretto255, ServerLoginParameters, TripleDh,
};
use rand_core::OsRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The one OPAQUE cipher suite of Coffre: ristretto255 OPRF, 3DH over ristretto255 with
/// SHA-512, Argon2id key stretching (RFC 9807 §7, the "ristretto255-SHA512" row).
#[derive(Debug, Clone, Copy)]
pub struct CoffreSuite;

impl opaque_ke::CipherSuite for CoffreSuite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, sha2::Sha512>;
    type Ksf = argon2::Argon2<'static>;
}

/// OPAQUE context string shared by client and server at login (RFC 9807 §6.1): binds the
/// key exchange to Coffre, version 1.
pub const LOGIN_CONTEXT_LABEL: &[u8] = b"coffre/v1/opaque/login";

/// Length of the export key (the suite's hash output, SHA-512).
pub const EXPORT_KEY_BYTES: usize = 64;
/// Length of the session key (the key exchange hash output, SHA-512).
pub const SESSION_KEY_BYTES: usize = 64;

/// Length of a registration request (client → server).
pub const REGISTRATION_REQUEST_BYTES: usize = 32;
/// Length of a registration response (server → client).
pub const REGISTRATION_RESPONSE_BYTES: usize = 64;
/// Length of a registration upload (client → server), which is also the stored
/// [`PasswordFile`].
pub const REGISTRATION_UPLOAD_BYTES: usize = 192;
/// Length of a login request, RFC 9807's KE1 (client → server).
pub const LOGIN_REQUEST_BYTES: usize = 96;
/// Length of a login response, KE2 (server → client).
pub const LOGIN_RESPONSE_BYTES: usize = 320;
/// Length of a login finalization, KE3 (client → server).
pub const LOGIN_FINALIZATION_BYTES: usize = 64;
/// Length of a serialized [`ServerSetup`] (OPRF seed, private key, fake-record public key).
pub const SERVER_SETUP_BYTES: usize = 128;
/// Length of a serialized [`ServerLoginState`].
pub const SERVER_LOGIN_STATE_BYTES: usize = 128;

/// Version of the Argon2id parameters in force for new registrations.
pub const KSF_V1: KsfParams = KsfParams { version: 1 };

/// Version number of the fast parameters used by this crate's unit tests only.
#[cfg(test)]
pub(crate) const KSF_TEST_VERSION: u16 = 0xfff0;

/// Argon2id parameters (memory in KiB, passes, lanes) of a KSF version.
fn argon2_cost(version: u16) -> Option<(u32, u32, u32)> {
    match version {
        // 64 MiB, 3 passes, 1 lane: RFC 9106 §7.4's second recommended option raised to
        // 3 passes, within what a phone browser can allocate.
        1 => Some((65_536, 3, 1)),
        // Never reachable outside this crate's tests: an account can never be
        // registered with it.
        #[cfg(test)]
        KSF_TEST_VERSION => Some((256, 1, 1)),
        _ => None,
    }
}

/// A versioned set of Argon2id parameters for OPAQUE's key stretching function.
///
/// The server stores the version of each account next to its [`PasswordFile`] and sends it
/// to the client before login, so the cost can be raised for new registrations without
/// breaking old ones. Only known versions can be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KsfParams {
    version: u16,
}

/// The KSF version is not one this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown key stretching parameters version {0}")]
pub struct UnknownKsfVersion(pub u16);

impl KsfParams {
    /// The parameters of a stored version number.
    pub fn from_version(version: u16) -> Result<Self, UnknownKsfVersion> {
        match argon2_cost(version) {
            Some(_) => Ok(Self { version }),
            None => Err(UnknownKsfVersion(version)),
        }
    }

    /// The version number to store with the account.
    pub fn version(self) -> u16 {
        self.version
    }

    /// The Argon2id instance (version 0x13, no secret) for these parameters.
    pub fn argon2(self) -> Result<argon2::Argon2<'static>, UnknownKsfVersion> {
        let (m_cost, t_cost, p_cost) =
            argon2_cost(self.version).ok_or(UnknownKsfVersion(self.version))?;
        let params = argon2::Params::new(m_cost, t_cost, p_cost, None)
            .map_err(|_| UnknownKsfVersion(self.version))?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }
}

impl Default for KsfParams {
    fn default() -> Self {
        KSF_V1
    }
}

/// A protocol message or stored OPAQUE value could not be read.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The value does not have the fixed length of its kind.
    #[error("malformed {what}: expected {expected} bytes, found {found}")]
    WrongLength {
        /// Which message or value.
        what: &'static str,
        /// Its fixed length.
        expected: usize,
        /// The length received.
        found: usize,
    },
    /// The length is right but a group element or key in it is not a valid encoding.
    #[error("malformed {what}: invalid group element or key encoding")]
    InvalidEncoding {
        /// Which message or value.
        what: &'static str,
    },
}

/// Why a registration step failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// A message could not be read.
    #[error(transparent)]
    Malformed(#[from] MessageError),
    /// The server's response is well-formed but unacceptable (it reflected the client's
    /// blinded element, RFC 9807 §5.2).
    #[error("the server's registration response is invalid")]
    InvalidResponse,
    /// Argon2id failed (usually: not enough memory for the parameters).
    #[error("key stretching failed (not enough memory?)")]
    KeyStretching,
    /// The OPAQUE computation failed for another internal reason.
    #[error("the OPAQUE computation failed")]
    Internal,
}

/// Why a login step failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// A message could not be read.
    #[error(transparent)]
    Malformed(#[from] MessageError),
    /// Authentication failed: wrong passphrase, unknown account, or a tampered message.
    /// Which of these it was is deliberately not told.
    #[error("invalid login")]
    InvalidLogin,
    /// Argon2id failed (usually: not enough memory for the parameters).
    #[error("key stretching failed (not enough memory?)")]
    KeyStretching,
    /// The OPAQUE computation failed for another internal reason.
    #[error("the OPAQUE computation failed")]
    Internal,
}

fn registration_error(e: ProtocolError) -> RegistrationError {
    match e {
        ProtocolError::ReflectedValueError => RegistrationError::InvalidResponse,
        ProtocolError::LibraryError(InternalError::KsfError) => RegistrationError::KeyStretching,
        _ => RegistrationError::Internal,
    }
}

fn login_error(e: ProtocolError) -> LoginError {
    match e {
        // A reflected value is a misbehaving server: to the user, a failed login.
        ProtocolError::InvalidLoginError | ProtocolError::ReflectedValueError => {
            LoginError::InvalidLogin
        }
        ProtocolError::LibraryError(InternalError::SealOpenHmacError) => LoginError::InvalidLogin,
        ProtocolError::LibraryError(InternalError::KsfError) => LoginError::KeyStretching,
        _ => LoginError::Internal,
    }
}

/// Checks the fixed length, then lets `opaque-ke` decode. `opaque-ke` ignores trailing
/// bytes, so the length check is what makes the encodings canonical.
fn decode<T, E>(
    bytes: &[u8],
    what: &'static str,
    expected: usize,
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, MessageError> {
    if bytes.len() != expected {
        return Err(MessageError::WrongLength {
            what,
            expected,
            found: bytes.len(),
        });
    }
    parse(bytes).map_err(|_| MessageError::InvalidEncoding { what })
}

fn ksf_instance<E>(ksf: KsfParams, on_error: E) -> Result<argon2::Argon2<'static>, E> {
    ksf.argon2().map_err(|_| on_error)
}

/// Copies a 64-byte hash output out of `opaque-ke`'s result and wipes the original.
fn take_64(source: &mut [u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (o, s) in out.iter_mut().zip(source.iter()) {
        *o = *s;
    }
    source.zeroize();
    out
}

/// OPAQUE's export key: a secret only the client learns, the same at every login with the
/// same passphrase, new at every registration (RFC 9807 §6.2.4). Coffre derives the key
/// bundle's sealing key from it. Wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ExportKey([u8; EXPORT_KEY_BYTES]);

impl ExportKey {
    /// The raw bytes, for key derivations inside this crate.
    pub(crate) fn expose(&self) -> &[u8; EXPORT_KEY_BYTES] {
        &self.0
    }

    /// Wraps known bytes (tests of the key bundle, which need no OPAQUE run).
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; EXPORT_KEY_BYTES]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for ExportKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExportKey(<redacted>)")
    }
}

/// The key both sides share after a successful login (RFC 9807 §6.4). Wiped on drop,
/// never printed; equality is constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKey([u8; SESSION_KEY_BYTES]);

impl SessionKey {
    /// The raw key bytes, e.g. to derive a session token. Callers must not copy them
    /// anywhere that outlives the key.
    pub fn expose(&self) -> &[u8; SESSION_KEY_BYTES] {
        &self.0
    }
}

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SessionKey {}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// The server's long-term OPAQUE secret: OPRF seed and 3DH key pair (RFC 9807 §6.2.2
/// "server setup"). Lives in its own key file, never in the account database. The inner
/// `opaque-ke` seed and private key wipe themselves on drop; `Debug` shows nothing.
#[derive(Clone)]
pub struct ServerSetup {
    inner: opaque_ke::ServerSetup<CoffreSuite>,
}

impl ServerSetup {
    /// Generates a new server setup from the secure random source.
    pub fn generate() -> Self {
        Self {
            inner: opaque_ke::ServerSetup::new(&mut OsRng),
        }
    }

    /// The [`SERVER_SETUP_BYTES`] bytes to write to the key file, wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut array = self.inner.serialize();
        let out = Zeroizing::new(array.to_vec());
        array.as_mut_slice().zeroize();
        out
    }

    /// Reads a server setup written by [`ServerSetup::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        decode(bytes, "server setup", SERVER_SETUP_BYTES, |b| {
            opaque_ke::ServerSetup::<CoffreSuite>::deserialize(b)
        })
        .map(|inner| Self { inner })
    }
}

impl fmt::Debug for ServerSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSetup(<redacted>)")
    }
}

/// The registration record the server stores per account (RFC 9807 §5.1.1
/// `RegistrationRecord`: client public key, masking key, envelope). Alone, it allows no
/// password guessing; it is still wiped on drop and not printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PasswordFile(Vec<u8>);

impl PasswordFile {
    /// The [`REGISTRATION_UPLOAD_BYTES`] bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Reads a stored record, checking its length and encodings.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        decode(bytes, "password file", REGISTRATION_UPLOAD_BYTES, |b| {
            opaque_ke::ServerRegistration::<CoffreSuite>::deserialize(b)
        })?;
        Ok(Self(bytes.to_vec()))
    }

    fn to_inner(&self) -> Result<opaque_ke::ServerRegistration<CoffreSuite>, MessageError> {
        decode(&self.0, "password file", REGISTRATION_UPLOAD_BYTES, |b| {
            opaque_ke::ServerRegistration::<CoffreSuite>::deserialize(b)
        })
    }
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordFile(<redacted>)")
    }
}

/// Server, registration step 1: answers the client's registration request.
///
/// `credential_id` is the account's stable identifier; the same bytes must be given at
/// every login of that account.
pub fn server_registration_start(
    setup: &ServerSetup,
    request: &[u8],
    credential_id: &[u8],
) -> Result<Vec<u8>, RegistrationError> {
    let request = decode(
        request,
        "registration request",
        REGISTRATION_REQUEST_BYTES,
        RegistrationRequest::<CoffreSuite>::deserialize,
    )?;
    let result = opaque_ke::ServerRegistration::start(&setup.inner, request, credential_id)
        .map_err(registration_error)?;
    Ok(result.message.serialize().to_vec())
}

/// Server, registration step 2: turns the client's upload into the record to store.
pub fn server_registration_finish(upload: &[u8]) -> Result<PasswordFile, RegistrationError> {
    let upload = decode(
        upload,
        "registration upload",
        REGISTRATION_UPLOAD_BYTES,
        RegistrationUpload::<CoffreSuite>::deserialize,
    )?;
    let record = opaque_ke::ServerRegistration::finish(upload);
    Ok(PasswordFile(record.serialize().to_vec()))
}

/// Server, login step 1: answers a login request.
///
/// `record` is `None` when the account does not exist: `opaque-ke` then answers from a
/// fake record, with a response of the same size and shape, so that a login attempt does
/// not tell whether the account exists. The returned state must be kept (see
/// [`ServerLoginState::to_bytes`]) until the client's finalization arrives.
pub fn server_login_start(
    setup: &ServerSetup,
    record: Option<&PasswordFile>,
    request: &[u8],
    credential_id: &[u8],
) -> Result<(ServerLoginState, Vec<u8>), LoginError> {
    let request = decode(
        request,
        "login request",
        LOGIN_REQUEST_BYTES,
        CredentialRequest::<CoffreSuite>::deserialize,
    )?;
    let record = record.map(PasswordFile::to_inner).transpose()?;
    let result = opaque_ke::ServerLogin::start(
        &mut OsRng,
        &setup.inner,
        record,
        request,
        credential_id,
        server_login_parameters(),
    )
    .map_err(login_error)?;
    Ok((
        ServerLoginState {
            inner: result.state,
        },
        result.message.serialize().to_vec(),
    ))
}

fn server_login_parameters() -> ServerLoginParameters<'static, 'static> {
    ServerLoginParameters {
        context: Some(LOGIN_CONTEXT_LABEL),
        identifiers: Identifiers::default(),
    }
}

/// What the server keeps between the login response and the client's finalization. It
/// holds the session key and the expected client MAC: a secret, wiped on drop, not
/// printed. Use it once.
pub struct ServerLoginState {
    inner: opaque_ke::ServerLogin<CoffreSuite>,
}

impl ServerLoginState {
    /// Server, login step 2: checks the client's finalization (KE3) and returns the
    /// session key. A wrong passphrase, an unknown account or a tampered message all give
    /// [`LoginError::InvalidLogin`]; the server counts these as failed attempts.
    pub fn finish(self, finalization: &[u8]) -> Result<SessionKey, LoginError> {
        let finalization = decode(
            finalization,
            "login finalization",
            LOGIN_FINALIZATION_BYTES,
            CredentialFinalization::<CoffreSuite>::deserialize,
        )?;
        let mut result = self
            .inner
            .finish(finalization, server_login_parameters())
            .map_err(login_error)?;
        Ok(SessionKey(take_64(result.session_key.as_mut_slice())))
    }

    /// The [`SERVER_LOGIN_STATE_BYTES`] bytes to keep server-side between the two login
    /// requests (never send them to the client). Wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut array = self.inner.serialize();
        let out = Zeroizing::new(array.to_vec());
        array.as_mut_slice().zeroize();
        out
    }

    /// Reads a state written by [`ServerLoginState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        decode(bytes, "server login state", SERVER_LOGIN_STATE_BYTES, |b| {
            opaque_ke::ServerLogin::<CoffreSuite>::deserialize(b)
        })
        .map(|inner| Self { inner })
    }
}

impl fmt::Debug for ServerLoginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerLoginState(<redacted>)")
    }
}

/// Client side of a registration in progress (holds the OPRF blind; wiped on drop).
pub struct ClientRegistration {
    inner: opaque_ke::ClientRegistration<CoffreSuite>,
}

impl ClientRegistration {
    /// Client, registration step 1: blinds the passphrase. Returns the state to keep and
    /// the request to send.
    pub fn start(password: &[u8]) -> Result<(Self, Vec<u8>), RegistrationError> {
        let result = opaque_ke::ClientRegistration::<CoffreSuite>::start(&mut OsRng, password)
            .map_err(registration_error)?;
        Ok((
            Self {
                inner: result.state,
            },
            result.message.serialize().to_vec(),
        ))
    }

    /// Client, registration step 2: from the server's response, computes the upload to
    /// send and the new export key. `ksf` is the parameter version the server will store
    /// for this account (normally [`KSF_V1`]).
    pub fn finish(
        self,
        password: &[u8],
        response: &[u8],
        ksf: KsfParams,
    ) -> Result<(Vec<u8>, ExportKey), RegistrationError> {
        let response = decode(
            response,
            "registration response",
            REGISTRATION_RESPONSE_BYTES,
            RegistrationResponse::<CoffreSuite>::deserialize,
        )?;
        let argon2 = ksf_instance(ksf, RegistrationError::Internal)?;
        let mut result = self
            .inner
            .finish(
                &mut OsRng,
                password,
                response,
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon2)),
            )
            .map_err(registration_error)?;
        let export_key = ExportKey(take_64(result.export_key.as_mut_slice()));
        Ok((result.message.serialize().to_vec(), export_key))
    }
}

impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientRegistration(<redacted>)")
    }
}

/// Client side of a login in progress (holds the OPRF blind and the ephemeral key; wiped
/// on drop).
pub struct ClientLogin {
    inner: opaque_ke::ClientLogin<CoffreSuite>,
}

impl ClientLogin {
    /// Client, login step 1: blinds the passphrase. Returns the state to keep and the
    /// request (KE1) to send.
    pub fn start(password: &[u8]) -> Result<(Self, Vec<u8>), LoginError> {
        let result = opaque_ke::ClientLogin::<CoffreSuite>::start(&mut OsRng, password)
            .map_err(login_error)?;
        Ok((
            Self {
                inner: result.state,
            },
            result.message.serialize().to_vec(),
        ))
    }

    /// Client, login step 2: from the server's response (KE2), computes the finalization
    /// (KE3) to send, the session key and the export key. `ksf` is the account's stored
    /// parameter version.
    ///
    /// A wrong passphrase (or an unknown account, or a tampered response) is
    /// [`LoginError::InvalidLogin`], and nothing is sent back to the server.
    pub fn finish(
        self,
        password: &[u8],
        response: &[u8],
        ksf: KsfParams,
    ) -> Result<(Vec<u8>, SessionKey, ExportKey), LoginError> {
        let response = decode(
            response,
            "login response",
            LOGIN_RESPONSE_BYTES,
            CredentialResponse::<CoffreSuite>::deserialize,
        )?;
        let argon2 = ksf_instance(ksf, LoginError::Internal)?;
        let mut result = self
            .inner
            .finish(
                &mut OsRng,
                password,
                response,
                ClientLoginFinishParameters::new(
                    Some(LOGIN_CONTEXT_LABEL),
                    Identifiers::default(),
                    Some(&argon2),
                ),
            )
            .map_err(login_error)?;
        let session_key = SessionKey(take_64(result.session_key.as_mut_slice()));
        let export_key = ExportKey(take_64(result.export_key.as_mut_slice()));
        Ok((result.message.serialize().to_vec(), session_key, export_key))
    }
}

impl fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientLogin(<redacted>)")
    }
}

/// Runs a whole registration in-process. Used by this crate's tests (here and in
/// `bundle`) to get a real export key.
#[cfg(test)]
pub(crate) fn register_for_tests(
    setup: &ServerSetup,
    password: &[u8],
    credential_id: &[u8],
    ksf: KsfParams,
) -> (PasswordFile, ExportKey) {
    #![allow(clippy::unwrap_used)]
    let (state, request) = ClientRegistration::start(password).unwrap();
    let response = server_registration_start(setup, &request, credential_id).unwrap();
    let (upload, export_key) = state.finish(password, &response, ksf).unwrap();
    (server_registration_finish(&upload).unwrap(), export_key)
}

/// The fast KSF parameters of this crate's tests.
#[cfg(test)]
pub(crate) fn test_ksf() -> KsfParams {
    KsfParams {
        version: KSF_TEST_VERSION,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    const ACCOUNT: &[u8] = b"amina.k";
    const PASSWORD: &[u8] = b"correct horse battery staple";

    struct Login {
        client_result: Result<(Vec<u8>, SessionKey, ExportKey), LoginError>,
        server_state: ServerLoginState,
        response: Vec<u8>,
    }

    fn login(
        setup: &ServerSetup,
        record: Option<&PasswordFile>,
        password: &[u8],
        ksf: KsfParams,
    ) -> Login {
        let (client, request) = ClientLogin::start(password).unwrap();
        assert_eq!(request.len(), LOGIN_REQUEST_BYTES);
        let (server_state, response) =
            server_login_start(setup, record, &request, ACCOUNT).unwrap();
        let client_result = client.finish(password, &response, ksf);
        Login {
            client_result,
            server_state,
            response,
        }
    }

    #[test]
    fn registration_then_login_agree_on_keys() {
        let setup = ServerSetup::generate();
        let (record, export_at_registration) =
            register_for_tests(&setup, PASSWORD, ACCOUNT, test_ksf());
        assert_eq!(record.as_bytes().len(), REGISTRATION_UPLOAD_BYTES);

        let run = login(&setup, Some(&record), PASSWORD, test_ksf());
        let (finalization, client_session, export_at_login) = run.client_result.unwrap();
        assert_eq!(finalization.len(), LOGIN_FINALIZATION_BYTES);
        assert_eq!(export_at_login.expose(), export_at_registration.expose());

        // The server keeps its state as bytes between the two HTTP requests.
        let kept = run.server_state.to_bytes();
        assert_eq!(kept.len(), SERVER_LOGIN_STATE_BYTES);
        let server_state = ServerLoginState::from_bytes(&kept).unwrap();
        let server_session = server_state.finish(&finalization).unwrap();
        assert_eq!(server_session, client_session);

        // A second login: same export key, fresh session key.
        let again = login(&setup, Some(&record), PASSWORD, test_ksf());
        let (_, session2, export2) = again.client_result.unwrap();
        assert_eq!(export2.expose(), export_at_registration.expose());
        assert_ne!(session2, client_session);
    }

    #[test]
    fn message_lengths_match_the_constants() {
        let setup = ServerSetup::generate();
        assert_eq!(setup.to_bytes().len(), SERVER_SETUP_BYTES);
        let (state, request) = ClientRegistration::start(PASSWORD).unwrap();
        assert_eq!(request.len(), REGISTRATION_REQUEST_BYTES);
        let response = server_registration_start(&setup, &request, ACCOUNT).unwrap();
        assert_eq!(response.len(), REGISTRATION_RESPONSE_BYTES);
        let (upload, _) = state.finish(PASSWORD, &response, test_ksf()).unwrap();
        assert_eq!(upload.len(), REGISTRATION_UPLOAD_BYTES);
        let record = server_registration_finish(&upload).unwrap();
        let run = login(&setup, Some(&record), PASSWORD, test_ksf());
        assert_eq!(run.response.len(), LOGIN_RESPONSE_BYTES);
        assert_eq!(run.server_state.to_bytes().len(), SERVER_LOGIN_STATE_BYTES);
    }

    #[test]
    fn wrong_password_is_invalid_login() {
        let setup = ServerSetup::generate();
        let (record, _) = register_for_tests(&setup, PASSWORD, ACCOUNT, test_ksf());
        let run = login(
            &setup,
            Some(&record),
            b"correct horse battery stapler",
            test_ksf(),
        );
        assert_eq!(run.client_result.unwrap_err(), LoginError::InvalidLogin);
        // The client sends nothing; whatever the server then receives does not verify.
        let forged = [0x5a; LOGIN_FINALIZATION_BYTES];
        assert_eq!(
            run.server_state.finish(&forged).unwrap_err(),
            LoginError::InvalidLogin
        );
    }

    #[test]
    fn wrong_ksf_version_is_invalid_login() {
        let setup = ServerSetup::generate();
        let (record, _) = register_for_tests(&setup, PASSWORD, ACCOUNT, test_ksf());
        // Registered with the test parameters, logging in with V1 gives another key.
        // (This is the one test that runs Argon2id at the default 64 MiB.)
        let run = login(&setup, Some(&record), PASSWORD, KSF_V1);
        assert_eq!(run.client_result.unwrap_err(), LoginError::InvalidLogin);
    }

    #[test]
    fn unknown_account_gets_a_same_size_answer() {
        let setup = ServerSetup::generate();
        let (record, _) = register_for_tests(&setup, PASSWORD, ACCOUNT, test_ksf());
        let real = login(&setup, Some(&record), PASSWORD, test_ksf());
        let fake = login(&setup, None, PASSWORD, test_ksf());
        assert_eq!(real.response.len(), fake.response.len());
        assert_eq!(fake.client_result.unwrap_err(), LoginError::InvalidLogin);
        let forged = [0u8; LOGIN_FINALIZATION_BYTES];
        assert_eq!(
            fake.server_state.finish(&forged).unwrap_err(),
            LoginError::InvalidLogin
        );
    }

    #[test]
    fn the_record_alone_cannot_check_a_guess() {
        // An attacker with the database but not the setup file: even the right
        // passphrase does not verify against a record under another OPRF seed.
        let setup = ServerSetup::generate();
        let (record, _) = register_for_tests(&setup, PASSWORD, ACCOUNT, test_ksf());
        let other_setup = ServerSetup::generate();
        let run = login(&other_setup, Some(&record), PASSWORD, test_ksf());
        assert_eq!(run.client_result.unwrap_err(), LoginError::InvalidLogin);
    }

    #[test]
    fn a_record_is_bound_to_its_account() {
        let setup = ServerSetup::generate();
        let (record, _) = register_for_tests(&setup, PASSWORD, b"someone.else", test_ksf());
        let run = login(&setup, Some(&record), PASSWORD, test_ksf());
        assert_eq!(run.client_result.unwrap_err(), LoginError::InvalidLogin);
    }

    #[test]
    fn server_setup_round_trips_through_bytes() {
        let setup = ServerSetup::generate();
        let (record, export_key) = register_for_tests(&setup, PASSWORD, ACCOUNT, test_ksf());
        let restored = ServerSetup::from_bytes(&setup.to_bytes()).unwrap();
        assert_eq!(restored.to_bytes(), setup.to_bytes());
        let run = login(&restored, Some(&record), PASSWORD, test_ksf());
        assert_eq!(run.client_result.unwrap().2.expose(), export_key.expose());
        assert!(matches!(
            ServerSetup::from_bytes(&setup.to_bytes()[1..]),
            Err(MessageError::WrongLength {
                expected: SERVER_SETUP_BYTES,
                ..
            })
        ));
        // A private key scalar that is not canonical (all 0xff) is refused.
        let mut bad = setup.to_bytes().to_vec();
        bad[64..96].fill(0xff);
        assert!(matches!(
            ServerSetup::from_bytes(&bad),
            Err(MessageError::InvalidEncoding { .. })
        ));
    }

    #[test]
    fn debug_redacts_secrets() {
        let setup = ServerSetup::generate();
        let (record, export_key) = register_for_tests(&setup, PASSWORD, ACCOUNT, test_ksf());
        let run = login(&setup, Some(&record), PASSWORD, test_ksf());
        let (_, session_key, _) = run.client_result.unwrap();
        for shown in [
            format!("{setup:?}"),
            format!("{record:?}"),
            format!("{export_key:?}"),
            format!("{session_key:?}"),
            format!("{:?}", run.server_state),
        ] {
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(!shown.contains("0x") && !shown.contains(", "), "{shown}");
        }
    }

    #[test]
    fn truncated_or_extended_messages_are_malformed() {
        let setup = ServerSetup::generate();
        let (state, request) = ClientRegistration::start(PASSWORD).unwrap();
        let response = server_registration_start(&setup, &request, ACCOUNT).unwrap();
        for bad in [&request[..31], &[request.as_slice(), &[0]].concat()[..]] {
            assert!(matches!(
                server_registration_start(&setup, bad, ACCOUNT),
                Err(RegistrationError::Malformed(
                    MessageError::WrongLength { .. }
                ))
            ));
        }
        let (upload, _) = state.finish(PASSWORD, &response, test_ksf()).unwrap();
        assert!(matches!(
            server_registration_finish(&upload[..100]),
            Err(RegistrationError::Malformed(
                MessageError::WrongLength { .. }
            ))
        ));
        assert!(matches!(
            PasswordFile::from_bytes(&upload[1..]),
            Err(MessageError::WrongLength { .. })
        ));
        let record = server_registration_finish(&upload).unwrap();

        let (client, request) = ClientLogin::start(PASSWORD).unwrap();
        assert!(matches!(
            server_login_start(&setup, Some(&record), &request[..95], ACCOUNT),
            Err(LoginError::Malformed(MessageError::WrongLength { .. }))
        ));
        let (server, response) =
            server_login_start(&setup, Some(&record), &request, ACCOUNT).unwrap();
        let (state2, _) = ClientLogin::start(PASSWORD).unwrap();
        assert!(matches!(
            state2.finish(PASSWORD, &response[..319], test_ksf()),
            Err(LoginError::Malformed(MessageError::WrongLength { .. }))
        ));
        let (finalization, _, _) = client.finish(PASSWORD, &response, test_ksf()).unwrap();
        let kept = server.to_bytes();
        assert!(matches!(
            ServerLoginState::from_bytes(&kept[..10]),
            Err(MessageError::WrongLength { .. })
        ));
        assert!(matches!(
            ServerLoginState::from_bytes(&kept)
                .unwrap()
                .finish(&finalization[..63]),
            Err(LoginError::Malformed(MessageError::WrongLength { .. }))
        ));
    }

    #[test]
    fn an_invalid_point_is_an_encoding_error() {
        let setup = ServerSetup::generate();
        // 0xff..ff is not a canonical ristretto255 encoding.
        let bad = [0xff; REGISTRATION_REQUEST_BYTES];
        assert_eq!(
            server_registration_start(&setup, &bad, ACCOUNT).unwrap_err(),
            RegistrationError::Malformed(MessageError::InvalidEncoding {
                what: "registration request"
            })
        );
    }

    #[test]
    fn any_bit_flip_in_the_login_response_or_finalization_fails() {
        let setup = ServerSetup::generate();
        let (record, _) = register_for_tests(&setup, PASSWORD, ACCOUNT, test_ksf());
        // One flipped bit per region of KE2 (evaluated element, masking nonce, masked
        // response, server nonce, server key share, server MAC) and of KE3.
        for bit in [
            0,
            7,
            32 * 8 + 3,
            64 * 8 + 1,
            150 * 8,
            192 * 8 + 5,
            224 * 8,
            300 * 8 + 6,
        ] {
            let (client, request) = ClientLogin::start(PASSWORD).unwrap();
            let (_, mut response) =
                server_login_start(&setup, Some(&record), &request, ACCOUNT).unwrap();
            response[bit / 8] ^= 1 << (bit % 8);
            let err = client.finish(PASSWORD, &response, test_ksf()).unwrap_err();
            assert!(
                matches!(err, LoginError::InvalidLogin | LoginError::Malformed(_)),
                "bit {bit}: {err:?}"
            );
        }
        for bit in [0, 100, 511] {
            let run = login(&setup, Some(&record), PASSWORD, test_ksf());
            let (mut finalization, _, _) = run.client_result.unwrap();
            finalization[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                run.server_state.finish(&finalization).unwrap_err(),
                LoginError::InvalidLogin
            );
        }
    }

    #[test]
    fn ksf_versions() {
        assert_eq!(KsfParams::default(), KSF_V1);
        assert_eq!(KsfParams::from_version(1).unwrap(), KSF_V1);
        assert_eq!(KSF_V1.version(), 1);
        assert_eq!(KsfParams::from_version(0), Err(UnknownKsfVersion(0)));
        assert_eq!(KsfParams::from_version(2), Err(UnknownKsfVersion(2)));
        let params = KSF_V1.argon2().unwrap();
        let params = params.params();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (65_536, 3, 1)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        #[test]
        fn any_password_round_trips(password in proptest::collection::vec(any::<u8>(), 0..64)) {
            let setup = ServerSetup::generate();
            let (record, export_key) = register_for_tests(&setup, &password, ACCOUNT, test_ksf());
            let run = login(&setup, Some(&record), &password, test_ksf());
            let (finalization, client_session, login_export) = run.client_result.unwrap();
            prop_assert_eq!(login_export.expose(), export_key.expose());
            prop_assert_eq!(run.server_state.finish(&finalization).unwrap(), client_session);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let setup = ServerSetup::generate();
            let _ = server_registration_start(&setup, &bytes, ACCOUNT);
            let _ = server_registration_finish(&bytes);
            let _ = PasswordFile::from_bytes(&bytes);
            let _ = ServerSetup::from_bytes(&bytes);
            let _ = server_login_start(&setup, None, &bytes, ACCOUNT);
            let _ = ServerLoginState::from_bytes(&bytes);
            let (client, _) = ClientLogin::start(PASSWORD).unwrap();
            let _ = client.finish(PASSWORD, &bytes, test_ksf());
        }
    }
}
