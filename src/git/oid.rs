//! A git object id: what every layer names commits, trees and blobs by, with no git access.

/// A git object id (SHA-1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjectId(pub [u8; 20]);

impl ObjectId {
    /// The id as 40 hex digits.
    pub fn to_hex(&self) -> String {
        let mut digits = [0u8; 40];
        self.as_hex(&mut digits).to_string()
    }

    /// The first 7 hex digits.
    pub fn short(&self) -> String {
        let mut digits = [0u8; 40];
        self.as_hex(&mut digits)[..7].to_string()
    }

    /// The 40 hex digits, written into `digits` (no allocation: ids are formatted on every
    /// request the server answers).
    pub fn as_hex<'a>(&self, digits: &'a mut [u8; 40]) -> &'a str {
        hex(&self.0, digits)
    }

    /// Parses 40 hex digits.
    pub fn from_hex(hex: &str) -> Option<ObjectId> {
        let bytes = hex.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, chunk) in bytes.chunks(2).enumerate() {
            let s = std::str::from_utf8(chunk).ok()?;
            out[i] = u8::from_str_radix(s, 16).ok()?;
        }
        Some(ObjectId(out))
    }
}

/// `bytes` as lowercase hex digits in `out`, two for each byte (as many bytes as `out` holds).
pub fn hex<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let len = (bytes.len() * 2).min(out.len() & !1);
    let out = &mut out[..len];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
    // Only ASCII digits were written.
    std::str::from_utf8(out).unwrap_or_default()
}

impl std::fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut digits = [0u8; 40];
        f.write_str(self.as_hex(&mut digits))
    }
}

#[cfg(test)]
mod tests {
    use crate::git::oid::{hex, ObjectId};

    #[test]
    fn ids_read_and_print_as_hex() {
        let text = "00ff10a9b2c3d4e5f60718293a4b5c6d7e8f9a0b";
        let id = ObjectId::from_hex(text).expect("40 hex digits");
        assert_eq!(id.to_hex(), text);
        assert_eq!(id.to_string(), text);
        assert_eq!(format!("{id:?}"), text);
        assert_eq!(id.short(), "00ff10a");
        let mut two = [0u8; 5];
        assert_eq!(hex(&[0xab, 0xcd, 0xef], &mut two), "abcd");
    }
}
