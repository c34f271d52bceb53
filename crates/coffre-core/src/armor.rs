//! age's ASCII armor (c2sp.org/age, "ASCII armor"): the binary file as strict PEM
//! (RFC 7468 section 3), label `AGE ENCRYPTED FILE`, padded standard base64 in lines of
//! 64 columns.
//!
//! ```text
//! -----BEGIN AGE ENCRYPTED FILE-----
//! YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBURWlGMHlwcXIrYnB2Y3FY
//! …
//! yPC8DpksHoMx+2Y=
//! -----END AGE ENCRYPTED FILE-----
//! ```
//!
//! Armor is malleable unless it is read strictly (c2sp.org/age), so [`Dearmorer`] refuses
//! every encoding but the canonical one: no headers, every line but the last exactly 64
//! columns, no empty line, no whitespace inside the block, canonical base64 with its `=`
//! padding. Allowed, as the spec permits: whitespace before and after the block (at most
//! [`ARMOR_MAX_WHITESPACE_BYTES`] each side), and LF or CRLF line endings. Both types are
//! push-based like [`Encryptor`](crate::Encryptor) and [`Decryptor`](crate::Decryptor),
//! with memory bounded by one line; [`Decryptor`](crate::Decryptor) recognises armor by
//! itself.

use base64::engine::general_purpose::STANDARD;
use base64::{DecodeError, Engine};

/// The line that opens an armored file.
pub const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
/// The line that closes an armored file.
pub const ARMOR_END: &str = "-----END AGE ENCRYPTED FILE-----";
/// Base64 characters per full line.
pub const ARMOR_COLUMNS: usize = 64;
/// Binary bytes a full line carries.
const LINE_BYTES: usize = ARMOR_COLUMNS / 4 * 3;
/// How much whitespace may come before, and after, the block (as age reads it): enough
/// for any editor or mail client, small enough that a stream of blanks is refused early.
pub const ARMOR_MAX_WHITESPACE_BYTES: usize = 1024;
/// The longest line kept while reading: a full line and a carriage return. Longer lines
/// are refused as soon as this is exceeded, whatever the piece sizes.
const MAX_LINE_BYTES: usize = ARMOR_COLUMNS + 1;
/// What starts the begin and end lines, to tell a mistyped one from base64.
const DASHES: &[u8] = b"-----";

/// Why armored input could not be read. Line numbers count from 1 at the start of the
/// input, leading blank lines included.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArmorError {
    /// The first line that is not blank is not exactly the begin line (wrong label or
    /// case, spaces inside or before it, or text before the armor).
    #[error("line {line}: expected the armor begin line {ARMOR_BEGIN}")]
    BadBeginLine {
        /// The line number.
        line: usize,
    },
    /// A line starting with dashes is not exactly the end line.
    #[error("line {line}: expected the armor end line {ARMOR_END}")]
    BadEndLine {
        /// The line number.
        line: usize,
    },
    /// More whitespace than [`ARMOR_MAX_WHITESPACE_BYTES`] before or after the block.
    #[error("more than {ARMOR_MAX_WHITESPACE_BYTES} bytes of whitespace around the armor")]
    TooMuchWhitespace,
    /// An empty line inside the block (PEM headers and their blank line are not allowed).
    #[error("line {line}: empty line inside the armor")]
    EmptyLine {
        /// The line number.
        line: usize,
    },
    /// A PEM header (`Name: value`) inside the block: age armor has none.
    #[error("line {line}: PEM headers are not allowed in age armor")]
    PemHeader {
        /// The line number.
        line: usize,
    },
    /// Spaces, tabs or a stray carriage return inside the block.
    #[error("line {line}: whitespace inside the armor")]
    Whitespace {
        /// The line number.
        line: usize,
    },
    /// A line is longer than [`ARMOR_COLUMNS`].
    #[error("line {line}: longer than {ARMOR_COLUMNS} columns")]
    LineTooLong {
        /// The line number.
        line: usize,
    },
    /// A line shorter than [`ARMOR_COLUMNS`] is not followed by the end line: only the
    /// last line may be short.
    #[error("line {line}: shorter than {ARMOR_COLUMNS} columns but not the last line")]
    ShortLine {
        /// The number of the short line.
        line: usize,
    },
    /// A character outside the base64 alphabet, or `=` where padding cannot be.
    #[error("line {line}, column {column}: invalid base64 character")]
    InvalidCharacter {
        /// The line number.
        line: usize,
        /// The column (from 1) of the character.
        column: usize,
    },
    /// The line's length is not a multiple of 4: its `=` padding is missing or wrong.
    #[error("line {line}: base64 padding is missing or wrong")]
    BadPadding {
        /// The line number.
        line: usize,
    },
    /// The last base64 character carries bits that must be zero: another encoder could
    /// write the same bytes differently, which armor must not allow.
    #[error("line {line}: base64 is not canonical")]
    NonCanonical {
        /// The line number.
        line: usize,
    },
    /// The input ends before the end line.
    #[error("the file ends before the line {ARMOR_END}")]
    Truncated,
    /// Something other than whitespace follows the end line.
    #[error("line {line}: data after the armor end line")]
    TrailingData {
        /// The line number.
        line: usize,
    },
    /// The reader already failed; it cannot go on.
    #[error("armor reading already failed")]
    Poisoned,
}

/// Whitespace allowed around the block (ASCII space, tab, LF, VT, FF, CR).
pub(crate) fn is_armor_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Writes armor around a binary age file given in pieces of any size.
///
/// ```
/// use coffre_core::armor::{ArmorWriter, Dearmorer};
/// let mut writer = ArmorWriter::new();
/// let mut text = Vec::new();
/// writer.push(b"age-encryption.org/v1\n", &mut text);
/// writer.finish(&mut text);
/// assert!(text.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----\n"));
///
/// let mut reader = Dearmorer::new();
/// let mut binary = Vec::new();
/// reader.push(&text, &mut binary)?;
/// reader.finish(&mut binary)?;
/// assert_eq!(binary, b"age-encryption.org/v1\n");
/// # Ok::<(), coffre_core::armor::ArmorError>(())
/// ```
#[derive(Default)]
pub struct ArmorWriter {
    started: bool,
    /// Bytes of the current line not yet written; fewer than a full line.
    pending: Vec<u8>,
    /// Reused base64 buffer.
    text: String,
}

impl ArmorWriter {
    /// Starts an armored file.
    pub fn new() -> Self {
        Self::default()
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            out.extend_from_slice(ARMOR_BEGIN.as_bytes());
            out.push(b'\n');
        }
    }

    /// Encodes `input`; appends every complete line to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        self.start(out);
        if !self.pending.is_empty() {
            let take = (LINE_BYTES - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < LINE_BYTES {
                return;
            }
            let line = core::mem::take(&mut self.pending);
            self.write_lines(&line, out);
            self.pending = line;
            self.pending.clear();
        }
        let whole = input.len() / LINE_BYTES * LINE_BYTES;
        self.write_lines(&input[..whole], out);
        self.pending.extend_from_slice(&input[whole..]);
    }

    /// Encodes the last line and appends it and the end line to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        self.start(out);
        let rest = core::mem::take(&mut self.pending);
        self.write_lines(&rest, out);
        out.extend_from_slice(ARMOR_END.as_bytes());
        out.push(b'\n');
    }

    /// Encodes `bytes` (whole lines, or the last one) as lines of base64.
    fn write_lines(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.text.clear();
        STANDARD.encode_string(bytes, &mut self.text);
        for line in self.text.as_bytes().chunks(ARMOR_COLUMNS) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
}

/// Armors a whole binary age file in memory.
pub fn armor(file: &[u8]) -> Vec<u8> {
    let mut writer = ArmorWriter::new();
    let mut out = Vec::with_capacity(file.len() / 3 * 4 + file.len() / LINE_BYTES + 80);
    writer.push(file, &mut out);
    writer.finish(&mut out);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadState {
    /// Blank lines before the begin line; `at_line_start` is false after a space or tab,
    /// since nothing may precede the begin line on its own line.
    Leading { at_line_start: bool },
    /// Collecting the begin line.
    Begin,
    /// Collecting a base64 line or the end line.
    Body,
    /// After a line shorter than 64 columns: only the end line may follow.
    AfterShort { short_line: usize },
    /// After the end line: only whitespace.
    Trailing,
    /// An error was returned.
    Failed,
}

/// Reads an armored age file given in pieces of any size, and gives back the binary file.
///
/// Each line is checked and decoded as soon as it is complete; nothing of a bad line is
/// released. See the [module docs](self) for the rules.
pub struct Dearmorer {
    state: ReadState,
    /// The line being collected (without its line feed); at most [`MAX_LINE_BYTES`] + 1.
    line: Vec<u8>,
    /// The number of that line.
    line_no: usize,
    /// Whitespace seen before the block, or after it.
    whitespace: usize,
}

impl Default for Dearmorer {
    fn default() -> Self {
        Self::new()
    }
}

impl Dearmorer {
    /// Starts reading armor.
    pub fn new() -> Self {
        Self {
            state: ReadState::Leading {
                at_line_start: true,
            },
            line: Vec::with_capacity(MAX_LINE_BYTES + 1),
            line_no: 1,
            whitespace: 0,
        }
    }

    /// Reads `input`; appends the binary bytes of every complete line to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ArmorError> {
        let result = self.push_inner(input, out);
        if result.is_err() {
            self.state = ReadState::Failed;
        }
        result
    }

    /// Checks that the armor ended properly; a last line without a line feed is read here.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), ArmorError> {
        match self.state {
            ReadState::Failed => return Err(ArmorError::Poisoned),
            // Only the end line may lack its line feed; any other line, or part of the end
            // line, cut by the end of the input means the file was cut.
            ReadState::Body | ReadState::AfterShort { .. }
                if self.line.starts_with(DASHES)
                    && !ARMOR_END.as_bytes().starts_with(&self.line) =>
            {
                let line = core::mem::take(&mut self.line);
                self.end_line(&line, out)?;
            }
            _ => {}
        }
        match self.state {
            ReadState::Trailing => Ok(()),
            _ if self.line == ARMOR_END.as_bytes() => {
                let line = core::mem::take(&mut self.line);
                self.end_line(&line, out)
            }
            _ => Err(ArmorError::Truncated),
        }
    }

    fn push_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ArmorError> {
        while let Some((&byte, rest)) = input.split_first() {
            match self.state {
                ReadState::Failed => return Err(ArmorError::Poisoned),
                ReadState::Leading { at_line_start } => {
                    if is_armor_space(byte) {
                        self.count_whitespace()?;
                        let at_line_start = match byte {
                            b'\n' => {
                                self.line_no += 1;
                                true
                            }
                            // A CR belongs to a CRLF; a lone one is blank anyway.
                            b'\r' => at_line_start,
                            _ => false,
                        };
                        self.state = ReadState::Leading { at_line_start };
                        input = rest;
                    } else if at_line_start {
                        self.state = ReadState::Begin;
                        self.whitespace = 0;
                    } else {
                        return Err(ArmorError::BadBeginLine { line: self.line_no });
                    }
                }
                ReadState::Trailing => {
                    if !is_armor_space(byte) {
                        return Err(ArmorError::TrailingData { line: self.line_no });
                    }
                    self.count_whitespace()?;
                    if byte == b'\n' {
                        self.line_no += 1;
                    }
                    input = rest;
                }
                ReadState::Begin | ReadState::Body | ReadState::AfterShort { .. } => {
                    let room = MAX_LINE_BYTES + 1 - self.line.len();
                    let window = &input[..room.min(input.len())];
                    if let Some(at) = window.iter().position(|&b| b == b'\n') {
                        self.line.extend_from_slice(&window[..at]);
                        input = &input[at + 1..];
                        let line = core::mem::take(&mut self.line);
                        let result = self.end_line(&line, out);
                        self.line = line;
                        self.line.clear();
                        result?;
                        self.line_no += 1;
                    } else {
                        self.line.extend_from_slice(window);
                        input = &input[window.len()..];
                        if self.line.len() > MAX_LINE_BYTES {
                            // No valid line is this long: judge it now, it must fail.
                            let line = core::mem::take(&mut self.line);
                            self.end_line(&line, out)?;
                            return Err(ArmorError::LineTooLong { line: self.line_no });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn count_whitespace(&mut self) -> Result<(), ArmorError> {
        self.whitespace += 1;
        if self.whitespace > ARMOR_MAX_WHITESPACE_BYTES {
            return Err(ArmorError::TooMuchWhitespace);
        }
        Ok(())
    }

    /// Judges one complete line (its line feed removed) in the current state.
    fn end_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<(), ArmorError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let number = self.line_no;
        match self.state {
            ReadState::Begin => {
                if line != ARMOR_BEGIN.as_bytes() {
                    return Err(ArmorError::BadBeginLine { line: number });
                }
                self.state = ReadState::Body;
            }
            ReadState::Body => {
                if line == ARMOR_END.as_bytes() {
                    self.state = ReadState::Trailing;
                    return Ok(());
                }
                if line.starts_with(DASHES) {
                    return Err(ArmorError::BadEndLine { line: number });
                }
                if line.is_empty() {
                    return Err(ArmorError::EmptyLine { line: number });
                }
                if line.contains(&b':') {
                    return Err(ArmorError::PemHeader { line: number });
                }
                if line.iter().any(|&b| is_armor_space(b)) {
                    return Err(ArmorError::Whitespace { line: number });
                }
                if line.len() > ARMOR_COLUMNS {
                    return Err(ArmorError::LineTooLong { line: number });
                }
                let start = out.len();
                if let Err(e) = STANDARD.decode_vec(line, out) {
                    out.truncate(start);
                    return Err(base64_error(e, number));
                }
                if out.len() - start < LINE_BYTES {
                    self.state = ReadState::AfterShort { short_line: number };
                }
            }
            ReadState::AfterShort { short_line } => {
                if line == ARMOR_END.as_bytes() {
                    self.state = ReadState::Trailing;
                    return Ok(());
                }
                if line.starts_with(DASHES) {
                    return Err(ArmorError::BadEndLine { line: number });
                }
                if line.is_empty() {
                    return Err(ArmorError::EmptyLine { line: number });
                }
                return Err(ArmorError::ShortLine { line: short_line });
            }
            ReadState::Leading { .. } | ReadState::Trailing | ReadState::Failed => {
                return Err(ArmorError::Poisoned)
            }
        }
        Ok(())
    }
}

fn base64_error(e: DecodeError, line: usize) -> ArmorError {
    match e {
        DecodeError::InvalidByte(_, b'=')
        | DecodeError::InvalidLength(_)
        | DecodeError::InvalidPadding => ArmorError::BadPadding { line },
        DecodeError::InvalidByte(offset, _) => ArmorError::InvalidCharacter {
            line,
            column: offset + 1,
        },
        DecodeError::InvalidLastSymbol(_, _) => ArmorError::NonCanonical { line },
    }
}

/// Reads a whole armored file in memory; returns the binary age file.
pub fn dearmor(text: &[u8]) -> Result<Vec<u8>, ArmorError> {
    let mut reader = Dearmorer::new();
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    reader.push(text, &mut out)?;
    reader.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// Armor of `bytes` with lines joined by `eol`, as an editor might save it.
    fn armored_with(bytes: &[u8], eol: &str) -> Vec<u8> {
        String::from_utf8(armor(bytes))
            .unwrap()
            .replace('\n', eol)
            .into_bytes()
    }

    fn dearmor_in_pieces(text: &[u8], piece: usize) -> Result<Vec<u8>, ArmorError> {
        let mut reader = Dearmorer::new();
        let mut out = Vec::new();
        for p in text.chunks(piece.max(1)) {
            reader.push(p, &mut out)?;
        }
        reader.finish(&mut out)?;
        Ok(out)
    }

    /// A valid armor of 100 bytes: two full lines, one short line.
    fn sample() -> String {
        String::from_utf8(armor(&[7u8; 100])).unwrap()
    }

    fn lines_of(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    fn err_of(lines: &[String]) -> ArmorError {
        dearmor((lines.join("\n") + "\n").as_bytes()).unwrap_err()
    }

    #[test]
    fn writer_wraps_at_64_columns_with_a_short_or_full_last_line() {
        for len in [0usize, 1, 47, 48, 49, 96, 100, 1000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let text = String::from_utf8(armor(&data)).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[0], ARMOR_BEGIN);
            assert_eq!(*lines.last().unwrap(), ARMOR_END);
            let body = &lines[1..lines.len() - 1];
            assert_eq!(body.len(), len.div_ceil(LINE_BYTES), "{len}");
            for (i, line) in body.iter().enumerate() {
                if i + 1 < body.len() {
                    assert_eq!(line.len(), ARMOR_COLUMNS);
                } else {
                    assert!(line.len() <= ARMOR_COLUMNS && !line.is_empty());
                }
            }
            assert!(text.ends_with("-----\n"));
        }
    }

    #[test]
    fn line_endings_and_surrounding_whitespace_are_allowed() {
        let data = [9u8; 200];
        for text in [
            armored_with(&data, "\n"),
            armored_with(&data, "\r\n"),
            armor(&data).strip_suffix(b"\n").unwrap().to_vec(),
            [b"\n \t\r\n".as_slice(), &armor(&data), b"\r\n\t  \n"].concat(),
        ] {
            for piece in [1, 5, 64, 65, 66, text.len()] {
                assert_eq!(dearmor_in_pieces(&text, piece).unwrap(), data);
            }
        }
    }

    #[test]
    fn each_broken_rule_has_its_error() {
        let good = lines_of(&sample());
        let mut l = good.clone();
        l[2].push_str("AAAA");
        assert_eq!(err_of(&l), ArmorError::LineTooLong { line: 3 });

        let mut l = good.clone();
        l[1].truncate(60);
        assert_eq!(err_of(&l), ArmorError::ShortLine { line: 2 });

        let mut l = good.clone();
        l.insert(1, String::new());
        assert_eq!(err_of(&l), ArmorError::EmptyLine { line: 2 });

        let mut l = good.clone();
        l[2].insert(0, ' ');
        assert_eq!(err_of(&l), ArmorError::Whitespace { line: 3 });

        let mut l = good.clone();
        l[1].replace_range(10..11, "*");
        assert_eq!(
            err_of(&l),
            ArmorError::InvalidCharacter {
                line: 2,
                column: 11
            }
        );

        // 100 bytes: the last line is 4 bytes, "BwcHBw==". Drop its padding.
        let mut l = good.clone();
        assert_eq!(l[3], "BwcHBw==");
        l[3] = "BwcHBw".into();
        assert_eq!(err_of(&l), ArmorError::BadPadding { line: 4 });
        l[3] = "BwcHBw=".into();
        assert_eq!(err_of(&l), ArmorError::BadPadding { line: 4 });
        // Same bytes, but the unused bits of the last symbol are not zero.
        l[3] = "BwcHBx==".into();
        assert_eq!(err_of(&l), ArmorError::NonCanonical { line: 4 });

        let mut l = good.clone();
        l.pop();
        assert_eq!(err_of(&l), ArmorError::Truncated);
        let mut l = good.clone();
        l.truncate(3);
        assert_eq!(err_of(&l), ArmorError::Truncated);
        let cut = sample();
        for at in [1, 20, 40, 70, cut.len() - 10] {
            assert_eq!(
                dearmor(&cut.as_bytes()[..at]),
                Err(ArmorError::Truncated),
                "{at}"
            );
        }

        let mut l = good.clone();
        l.push("x".into());
        assert_eq!(err_of(&l), ArmorError::TrailingData { line: 6 });

        let mut l = good.clone();
        l[4] = "-----END AGE ENCRYPTED FILE----- ".into();
        assert_eq!(err_of(&l), ArmorError::BadEndLine { line: 5 });

        let mut l = good.clone();
        l[0] = "-----BEGIN AGE ENCRYPTED DATA-----".into();
        assert_eq!(err_of(&l), ArmorError::BadBeginLine { line: 1 });
        let mut l = good.clone();
        l[0].insert(0, ' ');
        assert_eq!(err_of(&l), ArmorError::BadBeginLine { line: 1 });
        let mut l = good;
        l.insert(0, "garbage".into());
        assert_eq!(err_of(&l), ArmorError::BadBeginLine { line: 1 });

        let blanks = vec![b' '; ARMOR_MAX_WHITESPACE_BYTES + 1];
        assert_eq!(dearmor(&blanks).unwrap_err(), ArmorError::TooMuchWhitespace);
        let after = [armor(b"x"), blanks].concat();
        assert_eq!(dearmor(&after).unwrap_err(), ArmorError::TooMuchWhitespace);
        assert_eq!(dearmor(b"").unwrap_err(), ArmorError::Truncated);
    }

    #[test]
    fn a_long_line_fails_before_its_end_arrives() {
        let mut reader = Dearmorer::new();
        let mut out = Vec::new();
        reader
            .push(format!("{ARMOR_BEGIN}\n").as_bytes(), &mut out)
            .unwrap();
        let err = reader.push(&[b'A'; 200], &mut out).unwrap_err();
        assert_eq!(err, ArmorError::LineTooLong { line: 2 });
        assert!(out.is_empty());
        assert_eq!(reader.push(b"\n", &mut out), Err(ArmorError::Poisoned));
    }

    #[test]
    fn the_decryptor_recognises_armor_by_itself() {
        let id = crate::Identity::generate().unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let file = crate::encrypt(&data, &[id.to_recipient()]).unwrap();
        assert_eq!(
            crate::decrypt(&armor(&file), std::slice::from_ref(&id)).unwrap(),
            data
        );
        let text = [b"\r\n".as_slice(), &armored_with(&file, "\r\n")].concat();
        let mut dec = crate::Decryptor::new(std::slice::from_ref(&id));
        let mut plain = Vec::new();
        for piece in text.chunks(999) {
            dec.push(piece, &mut plain).unwrap();
        }
        dec.finish(&mut plain).unwrap();
        assert_eq!(plain, data);
        // Armor errors come through as such, and nothing of the file is released.
        let cut = &text[..text.len() - 40];
        let mut dec = crate::Decryptor::new(&[id]);
        let mut plain = Vec::new();
        dec.push(cut, &mut plain).unwrap();
        assert_eq!(
            dec.finish(&mut plain).unwrap_err(),
            crate::DecryptError::Armor(ArmorError::Truncated)
        );
        assert_eq!(plain.len(), 3 * CHUNK);
    }

    /// Plaintext bytes per STREAM chunk, to count what an armored file released.
    const CHUNK: usize = 64 * 1024;

    proptest! {
        #[test]
        fn armor_round_trips_in_any_pieces(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            write_piece in 1usize..100,
            read_piece in 1usize..100,
        ) {
            let mut writer = ArmorWriter::new();
            let mut text = Vec::new();
            for p in data.chunks(write_piece) {
                writer.push(p, &mut text);
            }
            writer.finish(&mut text);
            prop_assert_eq!(&text, &armor(&data));
            prop_assert_eq!(dearmor_in_pieces(&text, read_piece).unwrap(), data);
        }
    }
}
