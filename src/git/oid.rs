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

    /// Parses 40 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<ObjectId> {
        ObjectId::from_hex_bytes(hex.as_bytes())
    }

    /// Parses 40 hex digits given as bytes (as a raw commit holds them).
    pub fn from_hex_bytes(bytes: &[u8]) -> Option<ObjectId> {
        let bytes: &[u8; 40] = bytes.try_into().ok()?;
        let mut out = [0u8; 20];
        for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(ObjectId(out))
    }
}

/// The value of one hex digit.
fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
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

    #[test]
    fn only_forty_hex_digits_are_an_id() {
        let upper = "00FF10A9B2C3D4E5F60718293A4B5C6D7E8F9A0B";
        assert_eq!(
            ObjectId::from_hex(upper).map(|id| id.to_hex()),
            Some(upper.to_ascii_lowercase())
        );
        let good = "00ff10a9b2c3d4e5f60718293a4b5c6d7e8f9a0b";
        // `u8::from_str_radix` would take "+f" as 15.
        for bad in [
            &good[..39],
            &format!("{good}0"),
            &format!("+f{}", &good[2..]),
            &format!("{}g", &good[..39]),
            &format!("{} ", &good[..39]),
            &format!("{}é", &good[..38]),
            "",
        ] {
            assert_eq!(ObjectId::from_hex(bad), None, "{bad:?}");
        }
        // Every byte value, in either place of a pair.
        for b in 0..=255u8 {
            let is_hex = b.is_ascii_hexdigit();
            let mut text = good.as_bytes().to_vec();
            text[0] = b;
            assert_eq!(ObjectId::from_hex_bytes(&text).is_some(), is_hex, "{b:#x}");
            let mut text = good.as_bytes().to_vec();
            text[39] = b;
            assert_eq!(ObjectId::from_hex_bytes(&text).is_some(), is_hex, "{b:#x}");
        }
    }
}
