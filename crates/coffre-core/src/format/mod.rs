//! The age v1 file format, as Coffre writes and reads it (c2sp.org/age).

pub mod header;
pub mod stream;
pub mod x25519;
