//! `coffre`: the command line for Coffre documents, age v1 compatible — run `coffre --help`
//! (or `cargo run -p coffre-cli -- --help`) for `keygen`, `encrypt`, `decrypt`, `fingerprint`.
//!
//! `encrypt -a` writes age's ASCII armor (PEM) instead of binary; `decrypt` recognises
//! armor by itself.
//!
//! Files are streamed in 64 KiB pieces through `coffre_core`'s push-based [`Encryptor`] and
//! [`Decryptor`], so memory stays bounded whatever the file size. Output given with `-o` is
//! written to a temporary file next to it and renamed into place only once the whole file
//! was processed: a failed decryption never leaves a partial plaintext behind.
//!
//! Every failure prints exactly one line, `error: <message>`, on stderr and exits with 1.
//! Messages never contain a secret key, nor a key string given on the command line (it
//! could be a secret key typed by mistake).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use coffre_core::armor::ArmorWriter;
use coffre_core::{
    parse_identity_file, parse_recipients_file, DecryptError, Decryptor, EncryptError, Encryptor,
    Fingerprint, Identity, KeyError, Recipient,
};
use zeroize::Zeroizing;

/// Size of the pieces read from the input (one age STREAM chunk).
const READ_PIECE_BYTES: usize = 64 * 1024;

/// What `-o -` and a missing input name mean.
const STDIO_NAME: &str = "-";

#[derive(Parser)]
#[command(
    name = "coffre",
    version,
    about = "Coffre documents on the command line: age v1 files, X25519 keys, fingerprints",
    after_help = "Files are standard age v1 files: `age -d` opens what `coffre encrypt` writes, \
                  and `coffre decrypt` opens what `age -e` writes."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate an X25519 identity in age-keygen's format (prints the public key on stderr).
    Keygen {
        /// Write the identity to FILE (created with mode 0600; never overwritten).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Encrypt IN (or standard input) to one or more recipients.
    Encrypt {
        /// Encrypt to this recipient (age1…). May be repeated.
        #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
        recipients: Vec<String>,
        /// Encrypt to every recipient listed in PATH (one per line, # comments). May be
        /// repeated.
        #[arg(short = 'R', long = "recipients-file", value_name = "PATH")]
        recipients_files: Vec<PathBuf>,
        /// Write the ciphertext to OUT instead of standard output.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Write age's ASCII armor (PEM text, `-----BEGIN AGE ENCRYPTED FILE-----`)
        /// instead of binary: for mail, chat or a terminal.
        #[arg(short, long)]
        armor: bool,
        /// The file to encrypt; standard input when absent or `-`.
        #[arg(value_name = "IN")]
        input: Option<PathBuf>,
    },
    /// Decrypt IN (or standard input) with the identities in one or more identity files.
    /// Binary and ASCII-armored files are both recognised.
    Decrypt {
        /// Identity file (age-keygen format: AGE-SECRET-KEY-1… lines, # comments). May be
        /// repeated.
        #[arg(short = 'i', long = "identity", value_name = "PATH")]
        identities: Vec<PathBuf>,
        /// Write the plaintext to OUT instead of standard output.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// The file to decrypt; standard input when absent or `-`.
        #[arg(value_name = "IN")]
        input: Option<PathBuf>,
    },
    /// Print a recipient's fingerprint: six words, eleven emoji, then five groups of five
    /// digits.
    Fingerprint {
        /// The public key (age1…) to fingerprint.
        #[arg(value_name = "RECIPIENT")]
        recipient: String,
    },
}

/// Everything that makes `coffre` exit with 1. Displays as one line.
#[derive(Debug)]
enum CliError {
    /// An I/O operation failed; `what` names the file or stream.
    Io {
        action: &'static str,
        what: String,
        source: io::Error,
    },
    /// A key, key file or key argument could not be read.
    Key { context: String, source: KeyError },
    /// Encryption failed.
    Encrypt(EncryptError),
    /// Decryption failed: shown exactly as the core names the class.
    Decrypt(DecryptError),
    /// The command line asks for something `coffre` refuses to do.
    Refused(String),
}

impl CliError {
    fn io(action: &'static str, what: impl fmt::Display, source: io::Error) -> Self {
        Self::Io {
            action,
            what: what.to_string(),
            source,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io {
                action,
                what,
                source,
            } => write!(f, "{action} {what}: {source}"),
            Self::Key { context, source } => {
                write!(f, "{context}: {source}")?;
                // The line number alone does not say what is wrong with the line; the
                // cause never quotes the line, which may hold a secret key.
                if let KeyError::InvalidLine { source: cause, .. } = source {
                    write!(f, ": {cause}")?;
                }
                Ok(())
            }
            Self::Encrypt(e) => write!(f, "{e}"),
            Self::Decrypt(e) => write!(f, "{e}"),
            Self::Refused(message) => f.write_str(message),
        }
    }
}

impl From<EncryptError> for CliError {
    fn from(e: EncryptError) -> Self {
        Self::Encrypt(e)
    }
}

impl From<DecryptError> for CliError {
    fn from(e: DecryptError) -> Self {
        Self::Decrypt(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever an OS message might contain.
            let message = e.to_string().replace(['\n', '\r'], " ");
            // Nothing more can be done if stderr itself is gone.
            let _ = writeln!(io::stderr(), "error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Keygen { output } => keygen(output.as_deref()),
        Command::Encrypt {
            recipients,
            recipients_files,
            output,
            armor,
            input,
        } => encrypt(
            &recipients,
            &recipients_files,
            output.as_deref(),
            armor,
            input.as_deref(),
        ),
        Command::Decrypt {
            identities,
            output,
            input,
        } => decrypt(&identities, output.as_deref(), input.as_deref()),
        Command::Fingerprint { recipient } => fingerprint(&recipient),
    }
}

// ---------------------------------------------------------------------------------------
// keygen

fn keygen(output: Option<&Path>) -> Result<(), CliError> {
    let identity = Identity::generate().map_err(|source| CliError::Key {
        context: "generating an identity".into(),
        source,
    })?;
    let recipient = identity.to_recipient();
    let mut text = Zeroizing::new(String::new());
    text.push_str(&format!(
        "# created: {}\n# public key: {recipient}\n",
        rfc3339_utc_now()
    ));
    text.push_str(&identity.to_secret_string());
    text.push('\n');

    match output.filter(|p| p.as_os_str() != STDIO_NAME) {
        Some(path) => {
            write_new_private_file(path, text.as_bytes())?;
            print_public_key(&recipient);
        }
        None => {
            let mut stdout = io::stdout().lock();
            // Like age-keygen: when the key goes to a file or pipe, show the public key.
            if !stdout.is_terminal() {
                print_public_key(&recipient);
            }
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| CliError::io("writing", "standard output", e))?;
        }
    }
    Ok(())
}

fn print_public_key(recipient: &Recipient) {
    // A lost stderr does not make the key generation fail.
    let _ = writeln!(io::stderr(), "Public key: {recipient}");
}

/// Creates `path` readable by its owner only, refusing to replace an existing file.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let shown = path.display().to_string();
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            CliError::Refused(format!("refusing to overwrite existing file {shown}"))
        } else {
            CliError::io("creating", &shown, e)
        }
    })?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        // Best effort: a half-written key file is worse than none.
        let _ = fs::remove_file(path);
        return Err(CliError::io("writing", shown, e));
    }
    Ok(())
}

/// The current time as RFC 3339 in UTC, e.g. `2026-11-22T10:00:00Z`.
fn rfc3339_utc_now() -> String {
    // A clock before 1970 is a broken clock; the comment line is informative only.
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339_utc(secs)
}

fn rfc3339_utc(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of `days` since 1970-01-01 (H. Hinnant's `civil_from_days`,
/// restricted to dates on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based month
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------------------
// encrypt / decrypt

fn encrypt(
    recipient_args: &[String],
    recipient_files: &[PathBuf],
    output: Option<&Path>,
    armor: bool,
    input: Option<&Path>,
) -> Result<(), CliError> {
    let mut recipients = Vec::new();
    for (index, arg) in recipient_args.iter().enumerate() {
        // The argument is not echoed: it could be a secret key pasted by mistake.
        let recipient = arg.parse::<Recipient>().map_err(|source| CliError::Key {
            context: format!("recipient #{} (-r)", index + 1),
            source,
        })?;
        recipients.push(recipient);
    }
    for path in recipient_files {
        let text = read_key_file(path, "recipients file")?;
        let listed = parse_recipients_file(&text).map_err(|source| CliError::Key {
            context: format!("recipients file {}", path.display()),
            source,
        })?;
        recipients.extend(listed);
    }
    let mut encryptor = Encryptor::new(&recipients)?;

    let output = output.filter(|p| p.as_os_str() != STDIO_NAME);
    if output.is_none() && !armor && io::stdout().is_terminal() {
        return Err(CliError::Refused(
            "refusing to write binary ciphertext to a terminal: use -a for text, -o FILE, \
             or redirect standard output"
                .into(),
        ));
    }
    let (mut reader, in_name) = open_input(input)?;
    let mut sink = Sink::open(output)?;
    // Armor is a layer over the binary file: each piece of ciphertext goes through it.
    let mut armorer = armor.then(ArmorWriter::new);

    let mut piece = vec![0u8; READ_PIECE_BYTES];
    let mut out = Vec::with_capacity(2 * READ_PIECE_BYTES);
    let mut text = Vec::new();
    loop {
        let n = read_piece(&mut reader, &mut piece, &in_name)?;
        if n == 0 {
            break;
        }
        encryptor.push(&piece[..n], &mut out)?;
        write_ciphertext(&mut sink, armorer.as_mut(), &out, &mut text)?;
        out.clear();
    }
    encryptor.finish(&mut out)?;
    write_ciphertext(&mut sink, armorer.as_mut(), &out, &mut text)?;
    if let Some(armorer) = armorer {
        text.clear();
        armorer.finish(&mut text);
        sink.write_all(&text)?;
    }
    // The plaintext read buffer held the document: wipe it.
    zeroize::Zeroize::zeroize(&mut piece);
    sink.commit()
}

/// Writes `ciphertext`, through the armor when there is one.
fn write_ciphertext(
    sink: &mut Sink,
    armorer: Option<&mut ArmorWriter>,
    ciphertext: &[u8],
    text: &mut Vec<u8>,
) -> Result<(), CliError> {
    match armorer {
        None => sink.write_all(ciphertext),
        Some(armorer) => {
            text.clear();
            armorer.push(ciphertext, text);
            sink.write_all(text)
        }
    }
}

fn decrypt(
    identity_files: &[PathBuf],
    output: Option<&Path>,
    input: Option<&Path>,
) -> Result<(), CliError> {
    if identity_files.is_empty() {
        return Err(CliError::Refused(
            "no identity given: use -i IDENTITY_FILE".into(),
        ));
    }
    let mut identities = Vec::new();
    for path in identity_files {
        let text = read_key_file(path, "identity file")?;
        let listed = parse_identity_file(&text).map_err(|source| CliError::Key {
            context: format!("identity file {}", path.display()),
            source,
        })?;
        identities.extend(listed);
    }
    let mut decryptor = Decryptor::new(&identities);
    drop(identities);

    let output = output.filter(|p| p.as_os_str() != STDIO_NAME);
    let (mut reader, in_name) = open_input(input)?;
    let mut sink = Sink::open(output)?;

    let mut piece = vec![0u8; READ_PIECE_BYTES];
    // Plaintext, authenticated chunk by chunk; wiped when dropped.
    let mut out = Zeroizing::new(Vec::with_capacity(2 * READ_PIECE_BYTES));
    loop {
        let n = read_piece(&mut reader, &mut piece, &in_name)?;
        if n == 0 {
            break;
        }
        // What authenticated before an error is written out first, as age does; the
        // error then makes the exit status 1, and an `-o` file is never committed.
        let pushed = decryptor.push(&piece[..n], &mut out);
        sink.write_all(&out)?;
        pushed?;
        zeroize::Zeroize::zeroize(&mut *out);
        out.clear();
    }
    let finished = decryptor.finish(&mut out);
    sink.write_all(&out)?;
    finished?;
    sink.commit()
}

/// Reads a small key file (identities or recipients) as text that is wiped on drop.
fn read_key_file(path: &Path, kind: &str) -> Result<Zeroizing<String>, CliError> {
    let shown = format!("{kind} {}", path.display());
    let mut text = Zeroizing::new(String::new());
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| CliError::io("reading", shown, e))?;
    Ok(text)
}

fn open_input(input: Option<&Path>) -> Result<(Box<dyn Read>, String), CliError> {
    match input.filter(|p| p.as_os_str() != STDIO_NAME) {
        None => Ok((Box::new(io::stdin().lock()), "standard input".into())),
        Some(path) => {
            let file = File::open(path).map_err(|e| CliError::io("opening", path.display(), e))?;
            Ok((Box::new(file), path.display().to_string()))
        }
    }
}

/// Reads up to one piece; 0 means the end of the input.
fn read_piece(reader: &mut dyn Read, piece: &mut [u8], name: &str) -> Result<usize, CliError> {
    loop {
        match reader.read(piece) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CliError::io("reading", name, e)),
        }
    }
}

/// Where the output goes.
enum Sink {
    /// Standard output: written as it comes (authenticated chunk by chunk).
    Stdout(io::StdoutLock<'static>),
    /// A temporary file next to `path`, renamed over it by [`Sink::commit`]; removed when
    /// dropped uncommitted.
    Atomic {
        temp: tempfile::NamedTempFile,
        path: PathBuf,
    },
    /// An existing special file (`/dev/null`, a FIFO, a terminal…) that cannot be
    /// replaced by a rename; written directly.
    Special { file: File, path: PathBuf },
}

impl Sink {
    fn open(output: Option<&Path>) -> Result<Self, CliError> {
        let Some(path) = output else {
            return Ok(Self::Stdout(io::stdout().lock()));
        };
        let shown = path.display().to_string();
        let existing = match fs::metadata(path) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(CliError::io("checking", &shown, e)),
        };
        if let Some(meta) = &existing {
            if meta.is_dir() {
                return Err(CliError::Refused(format!("output {shown} is a directory")));
            }
            if !meta.is_file() {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| CliError::io("opening", &shown, e))?;
                return Ok(Self::Special {
                    file,
                    path: path.to_path_buf(),
                });
            }
        }
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".coffre-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| CliError::io("creating a temporary file in", dir.display(), e))?;
        // The temporary file is private (0600); a replaced file keeps its permissions.
        if let Some(meta) = existing {
            fs::set_permissions(temp.path(), meta.permissions())
                .map_err(|e| CliError::io("setting permissions on", temp.path().display(), e))?;
        }
        Ok(Self::Atomic {
            temp,
            path: path.to_path_buf(),
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        if bytes.is_empty() {
            return Ok(());
        }
        match self {
            Self::Stdout(out) => out
                .write_all(bytes)
                .map_err(|e| CliError::io("writing", "standard output", e)),
            Self::Atomic { temp, path } => temp
                .write_all(bytes)
                .map_err(|e| CliError::io("writing", path.display(), e)),
            Self::Special { file, path } => file
                .write_all(bytes)
                .map_err(|e| CliError::io("writing", path.display(), e)),
        }
    }

    /// Makes the output visible: flushes, and for a regular file syncs it to disk and
    /// renames it into place.
    fn commit(self) -> Result<(), CliError> {
        match self {
            Self::Stdout(mut out) => out
                .flush()
                .map_err(|e| CliError::io("writing", "standard output", e)),
            Self::Special { mut file, path } => file
                .flush()
                .map_err(|e| CliError::io("writing", path.display(), e)),
            Self::Atomic { temp, path } => {
                temp.as_file()
                    .sync_all()
                    .map_err(|e| CliError::io("writing", path.display(), e))?;
                temp.persist(&path)
                    .map_err(|e| CliError::io("renaming into", path.display(), e.error))?;
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// fingerprint

fn fingerprint(recipient: &str) -> Result<(), CliError> {
    // The argument is not echoed: it could be a secret key pasted by mistake.
    let recipient = recipient
        .parse::<Recipient>()
        .map_err(|source| CliError::Key {
            context: "recipient".into(),
            source,
        })?;
    let fp = Fingerprint::of(&recipient);
    let mut stdout = io::stdout().lock();
    let emoji: Vec<String> = fp
        .emoji_indices()
        .iter()
        .map(|&i| {
            let (glyph, name) = coffre_core::fingerprint::EMOJI[usize::from(i)];
            format!("{glyph} {name}")
        })
        .collect();
    writeln!(
        stdout,
        "{}\n{}\n{}",
        fp.words().join(" "),
        emoji.join(", "),
        fp.number()
    )
    .and_then(|()| stdout.flush())
    .map_err(|e| CliError::io("writing", "standard output", e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339_utc(1_798_761_600), "2027-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
