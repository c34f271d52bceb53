//! Document metadata (file name, MIME type, category, dates), sealed under a key derived
//! from the document's file key so the server never sees it. JS reaches the file key only
//! through the objects that hold it: an `Encryptor`, a `Decryptor` past the header, or an
//! `Envelope` opened with an identity.

use coffre_core::metadata::{open_metadata, seal_metadata, Category, Metadata as CoreMetadata};
use coffre_core::FileKey;
use wasm_bindgen::prelude::*;

use crate::envelope::Envelope;
use crate::error::{CoffreError, ErrorCode};
use crate::keys::{parse_identities, Identity};
use crate::stream::{Decryptor, Encryptor};

/// A document's metadata in clear.
#[wasm_bindgen]
#[derive(Clone)]
pub struct Metadata {
    inner: CoreMetadata,
}

#[wasm_bindgen]
impl Metadata {
    /// `category` is one of `identity`, `health`, `housing`, `income`, `other`; dates are
    /// `YYYY-MM-DD` (checked when sealing).
    #[wasm_bindgen(constructor)]
    pub fn new(
        name: String,
        mime_type: String,
        category: &str,
        created: Option<String>,
        document_date: Option<String>,
    ) -> Result<Metadata, CoffreError> {
        let category = Category::from_tag(category).ok_or_else(|| {
            CoffreError::new(
                ErrorCode::MetadataInvalidCategory,
                "the category must be identity, health, housing, income or other",
            )
        })?;
        Ok(Self {
            inner: CoreMetadata {
                name,
                mime_type,
                category,
                created,
                document_date,
            },
        })
    }

    /// The file name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.name.clone()
    }

    /// The MIME type.
    #[wasm_bindgen(getter, js_name = mimeType)]
    pub fn mime_type(&self) -> String {
        self.inner.mime_type.clone()
    }

    /// The category tag.
    #[wasm_bindgen(getter)]
    pub fn category(&self) -> String {
        self.inner.category.tag().to_owned()
    }

    /// The date the paper was made, `YYYY-MM-DD`, if given.
    #[wasm_bindgen(getter)]
    pub fn created(&self) -> Option<String> {
        self.inner.created.clone()
    }

    /// The date printed on the document, `YYYY-MM-DD`, if given.
    #[wasm_bindgen(getter, js_name = documentDate)]
    pub fn document_date(&self) -> Option<String> {
        self.inner.document_date.clone()
    }
}

fn seal(metadata: &Metadata, key: &FileKey) -> Result<Vec<u8>, CoffreError> {
    Ok(seal_metadata(&metadata.inner, key)?)
}

fn open(sealed: &[u8], key: &FileKey) -> Result<Metadata, CoffreError> {
    Ok(Metadata {
        inner: open_metadata(sealed, key)?,
    })
}

#[wasm_bindgen]
impl Encryptor {
    /// Seals `metadata` under this document's file key.
    #[wasm_bindgen(js_name = sealMetadata)]
    pub fn seal_metadata(&self, metadata: &Metadata) -> Result<Vec<u8>, CoffreError> {
        seal(metadata, self.file_key()?)
    }
}

#[wasm_bindgen]
impl Decryptor {
    /// Opens the document's sealed metadata; only once the header has been read.
    #[wasm_bindgen(js_name = openMetadata)]
    pub fn open_metadata(&self, sealed: &[u8]) -> Result<Metadata, CoffreError> {
        open(sealed, self.file_key()?)
    }
}

#[wasm_bindgen]
impl Envelope {
    /// Opens the envelope with `identity` and the document's sealed metadata with it
    /// (listing documents without fetching their payloads).
    #[wasm_bindgen(js_name = openMetadata)]
    pub fn open_metadata(
        &self,
        identity: &Identity,
        sealed: &[u8],
    ) -> Result<Metadata, CoffreError> {
        open(
            sealed,
            &self.file_key(std::slice::from_ref(&identity.inner))?,
        )
    }

    /// Like `openMetadata`, with identity strings.
    #[wasm_bindgen(js_name = openMetadataWithStrings)]
    pub fn open_metadata_with_strings(
        &self,
        identities: Vec<String>,
        sealed: &[u8],
    ) -> Result<Metadata, CoffreError> {
        open(sealed, &self.file_key(&parse_identities(&identities)?)?)
    }

    /// Seals new `metadata` for this envelope's document (renaming, recategorising).
    #[wasm_bindgen(js_name = sealMetadata)]
    pub fn seal_metadata(
        &self,
        identity: &Identity,
        metadata: &Metadata,
    ) -> Result<Vec<u8>, CoffreError> {
        seal(
            metadata,
            &self.file_key(std::slice::from_ref(&identity.inner))?,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Metadata {
        Metadata::new(
            "carte-vitale.jpg".into(),
            "image/jpeg".into(),
            "health",
            None,
            Some("2026-03-01".into()),
        )
        .unwrap()
    }

    #[test]
    fn seal_with_encryptor_open_with_decryptor_and_envelope() {
        let id = Identity::generate().unwrap();
        let mut enc = Encryptor::new(vec![id.recipient()]).unwrap();
        let sealed = enc.seal_metadata(&sample()).unwrap();
        let mut file = enc.push_bytes(b"scan").unwrap().to_vec();
        file.extend_from_slice(enc.finish_bytes().unwrap());

        let mut dec = Decryptor::new(vec![id.to_secret_string()]).unwrap();
        assert_eq!(
            dec.open_metadata(&sealed).err().unwrap().code(),
            ErrorCode::InvalidState
        );
        dec.push_bytes(&file).unwrap();
        let meta = dec.open_metadata(&sealed).unwrap();
        assert_eq!(meta.name(), "carte-vitale.jpg");
        assert_eq!(meta.category(), "health");
        assert_eq!(meta.document_date().as_deref(), Some("2026-03-01"));

        let env = Envelope::split(&file).unwrap();
        assert_eq!(
            env.open_metadata(&id, &sealed).unwrap().mime_type(),
            "image/jpeg"
        );
        let other = Identity::generate().unwrap();
        let mut enc2 = Encryptor::new(vec![other.recipient()]).unwrap();
        let foreign = enc2.seal_metadata(&sample()).unwrap();
        enc2.finish_bytes().unwrap();
        assert_eq!(
            env.open_metadata(&id, &foreign).err().unwrap().code(),
            ErrorCode::MetadataAuthenticationFailed
        );
        assert_eq!(
            Metadata::new("a".into(), "b/c".into(), "pets", None, None)
                .err()
                .unwrap()
                .code(),
            ErrorCode::MetadataInvalidCategory
        );
    }
}
