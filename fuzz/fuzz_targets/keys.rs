//! Text keys: `age1…` recipients, `AGE-SECRET-KEY-1…` identities, identity and recipient
//! files, and typed recovery codes. Whatever parses is written back in its one canonical
//! spelling, which is the input up to case (and, for a code, dashes and spaces), and
//! reads back to the same key.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run keys` from the repository root.
#![no_main]

use coffre_core::recovery::RecoveryCode;
use coffre_core::{parse_identity_file, parse_recipients_file, Fingerprint, Identity, Recipient};
use libfuzzer_sys::fuzz_target;

fn check_recipient(recipient: &Recipient) {
    let text = recipient.to_string();
    assert_eq!(text.parse::<Recipient>().ok(), Some(*recipient));
    let _ = Fingerprint::of(recipient).number();
}

fn check_identity(identity: &Identity) {
    let text = identity.to_secret_string();
    let again: Identity = text.parse().expect("a written identity reads back");
    assert_eq!(*again.to_bytes(), *identity.to_bytes());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(recipient) = text.parse::<Recipient>() {
        check_recipient(&recipient);
        assert_eq!(recipient.to_string(), text.trim().to_ascii_lowercase());
    }
    if let Ok(identity) = text.parse::<Identity>() {
        check_identity(&identity);
        assert_eq!(
            *identity.to_secret_string(),
            text.trim().to_ascii_uppercase()
        );
    }
    if let Ok(recipients) = parse_recipients_file(text) {
        recipients.iter().for_each(check_recipient);
    }
    if let Ok(identities) = parse_identity_file(text) {
        identities.iter().for_each(check_identity);
    }
    if let Ok(code) = text.parse::<RecoveryCode>() {
        let shown = code.to_display_string();
        assert_eq!(shown.parse::<RecoveryCode>().ok(), Some(code));
        let typed: String = text
            .chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .collect();
        let canonical: String = shown.chars().filter(|c| *c != '-').collect();
        assert_eq!(canonical, typed.to_ascii_uppercase());
    }
});
