//! Protocol names.

use std::{fmt, sync::Arc};

use crate::{Error, InvalidName, message::MAX_MESSAGE_LEN};

/// The longest protocol name that fits in one message: the name plus its
/// trailing `\n` must not exceed [`MAX_MESSAGE_LEN`].
pub const MAX_PROTOCOL_LEN: usize = MAX_MESSAGE_LEN - 1;

/// A validated protocol name, such as `/noise` or `/yamux/1.0.0`.
///
/// libp2p specs, connections/README.md: a protocol id is a UTF-8 string that
/// starts with `/`. Because every multistream-select message ends with `\n`,
/// a name never contains one. The multistream header itself
/// (`/multistream/1.0.0`) is reserved: proposing it would make a nested
/// negotiation indistinguishable from a proposal (go-multistream#20).
///
/// Cloning is cheap (the name is shared).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Protocol(Arc<str>);

impl Protocol {
    /// Validates `name` and wraps it.
    ///
    /// # Errors
    /// [`InvalidName`] if the name is empty, does not start with `/`,
    /// contains `\n`, is longer than [`MAX_PROTOCOL_LEN`] bytes, or is the
    /// reserved multistream header.
    pub fn new(name: impl AsRef<str>) -> Result<Self, InvalidName> {
        let name = name.as_ref();
        InvalidName::check(name.as_bytes())?;
        Ok(Self(Arc::from(name)))
    }

    /// Validates raw bytes received from the wire (UTF-8 is checked too).
    pub(crate) fn from_wire(bytes: &[u8]) -> Result<Self, Error> {
        InvalidName::check(bytes).map_err(Error::InvalidProtocol)?;
        let name = std::str::from_utf8(bytes).map_err(|_| Error::InvalidUtf8)?;
        Ok(Self(Arc::from(name)))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Protocol {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl TryFrom<&str> for Protocol {
    type Error = InvalidName;

    fn try_from(name: &str) -> Result<Self, InvalidName> {
        Self::new(name)
    }
}

impl TryFrom<String> for Protocol {
    type Error = InvalidName;

    fn try_from(name: String) -> Result<Self, InvalidName> {
        Self::new(name)
    }
}

impl PartialEq<str> for Protocol {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Protocol {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_libp2p_names() {
        for name in [
            "/",
            "/noise",
            "/yamux/1.0.0",
            "/ipfs/ping/1.0.0",
            "/ünïcode",
        ] {
            assert_eq!(Protocol::new(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn rejects_invalid_names() {
        let long = format!("/{}", "a".repeat(MAX_PROTOCOL_LEN));
        for name in ["", "noise", "/a\nb", long.as_str(), "/multistream/1.0.0"] {
            assert!(Protocol::new(name).is_err(), "{name:?} accepted");
        }
        let longest = format!("/{}", "a".repeat(MAX_PROTOCOL_LEN - 1));
        assert!(Protocol::new(longest).is_ok());
    }

    #[test]
    fn wire_names_must_be_utf8() {
        assert!(matches!(
            Protocol::from_wire(b"/\xff\xfe"),
            Err(Error::InvalidUtf8)
        ));
    }
}
