//! Addresses: how the user reached a contact, which is what TOFU pins a key to.
//!
//! The same person may be reachable by several addresses (an invite code they sent, their
//! handle, a DNS name, a petname the user gave them); each address is pinned separately, so a
//! key change is noticed per route and a petname keeps pointing at the person it was given to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::handle::{HandleError, validate_handle};

/// Longest address value, in UTF-8 bytes.
pub const MAX_ADDRESS_LEN: usize = 256;

/// How the user reached a contact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Address {
    /// An invite code the contact gave out.
    InviteCode(String),
    /// A handle: from the DHT, or the handle in the contact's device certificate.
    Handle(String),
    /// A DNS name that resolves to the contact.
    DnsName(String),
    /// A name the user chose for the contact.
    Petname(String),
}

/// Why an address is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Empty value.
    #[error("address is empty")]
    Empty,
    /// Longer than [`MAX_ADDRESS_LEN`].
    #[error("address is {0} bytes long, the limit is {MAX_ADDRESS_LEN}")]
    TooLong(usize),
    /// Contains a control character.
    #[error("address contains a control character")]
    ControlCharacter,
    /// A handle address that breaks the handle syntax.
    #[error("invalid handle: {0}")]
    Handle(#[from] HandleError),
    /// Text form without a known `kind:` prefix.
    #[error("address must start with invite:, handle:, dns: or petname:")]
    UnknownKind,
}

impl Address {
    /// The kind, as used in the text form: `invite`, `handle`, `dns` or `petname`.
    pub fn kind(&self) -> &'static str {
        match self {
            Address::InviteCode(_) => "invite",
            Address::Handle(_) => "handle",
            Address::DnsName(_) => "dns",
            Address::Petname(_) => "petname",
        }
    }

    /// The value without its kind.
    pub fn value(&self) -> &str {
        match self {
            Address::InviteCode(v)
            | Address::Handle(v)
            | Address::DnsName(v)
            | Address::Petname(v) => v,
        }
    }

    /// The checked, canonical form under which the address is stored: DNS names are
    /// lowercased and lose a trailing dot (DNS is case-insensitive, and `example.org.` is
    /// `example.org`); everything else is kept exactly, after validation.
    pub fn normalized(&self) -> Result<Address, AddressError> {
        let value = self.value();
        if value.is_empty() {
            return Err(AddressError::Empty);
        }
        if value.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::TooLong(value.len()));
        }
        if value.chars().any(char::is_control) {
            return Err(AddressError::ControlCharacter);
        }
        Ok(match self {
            Address::Handle(h) => {
                validate_handle(h)?;
                self.clone()
            }
            Address::DnsName(name) => {
                let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
                if name.is_empty() {
                    return Err(AddressError::Empty);
                }
                Address::DnsName(name)
            }
            Address::InviteCode(_) | Address::Petname(_) => self.clone(),
        })
    }
}

impl fmt::Display for Address {
    /// `kind:value`, e.g. `handle:alice`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.value())
    }
}

impl FromStr for Address {
    type Err = AddressError;

    /// Parses the [`Display`](fmt::Display) form and normalizes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, value) = s.split_once(':').ok_or(AddressError::UnknownKind)?;
        let value = value.to_string();
        let address = match kind {
            "invite" => Address::InviteCode(value),
            "handle" => Address::Handle(value),
            "dns" => Address::DnsName(value),
            "petname" => Address::Petname(value),
            _ => return Err(AddressError::UnknownKind),
        };
        address.normalized()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        for a in [
            Address::InviteCode("X7-abc".into()),
            Address::Handle("alice".into()),
            Address::DnsName("alice.example.org".into()),
            Address::Petname("Mum".into()),
        ] {
            assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
        }
    }

    #[test]
    fn dns_names_normalize() {
        let a: Address = "dns:Alice.Example.ORG.".parse().unwrap();
        assert_eq!(a, Address::DnsName("alice.example.org".into()));
    }

    #[test]
    fn invalid_addresses_are_errors() {
        assert_eq!("nope".parse::<Address>(), Err(AddressError::UnknownKind));
        assert_eq!("mail:x".parse::<Address>(), Err(AddressError::UnknownKind));
        assert_eq!("petname:".parse::<Address>(), Err(AddressError::Empty));
        assert_eq!("dns:.".parse::<Address>(), Err(AddressError::Empty));
        assert_eq!(
            "petname:a\u{7}b".parse::<Address>(),
            Err(AddressError::ControlCharacter)
        );
        assert!(matches!(
            Address::Handle(" bob".into()).normalized(),
            Err(AddressError::Handle(_))
        ));
        assert_eq!(
            Address::Petname("x".repeat(MAX_ADDRESS_LEN + 1)).normalized(),
            Err(AddressError::TooLong(MAX_ADDRESS_LEN + 1))
        );
    }
}
