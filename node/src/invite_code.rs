//! Invite codes: what one person gives another to become a contact.
//!
//! A code carries the device certificate (handle, identity key, device key — signed by the
//! identity key), the node's peer id and the addresses it listens on. Text form:
//! `chorus1` followed by unpadded base64url of the versioned bincode encoding. The
//! certificate's signature is checked on decoding; the fingerprint people compare is the
//! certificate's identity key's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity_tofu::SignedDeviceCertificate;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "chorus1";
const MAX_CODE_LEN: usize = 8 * 1024;

/// A decoded invite code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCode {
    /// The encoded signed device certificate (also the MLS credential identity).
    pub certificate: Vec<u8>,
    /// The libp2p peer id of the person's node.
    pub peer_id: String,
    /// Multiaddrs the node listens on (may be empty: then mDNS, bootstrap peers or the DHT
    /// must find it).
    pub addrs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InviteCodeError {
    #[error("not an invite code (it should start with {PREFIX})")]
    Prefix,
    #[error("invite code is {0} characters long, the limit is {MAX_CODE_LEN}")]
    TooLong(usize),
    #[error("invite code is damaged (base64): {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("invite code is damaged: {0}")]
    Decode(#[from] identity_tofu::codec::CodecError),
    #[error("invite code's certificate is invalid: {0}")]
    Certificate(#[from] identity_tofu::CertificateError),
    #[error("invite code's peer id is invalid: {0}")]
    PeerId(String),
}

impl InviteCode {
    pub fn encode(&self) -> String {
        let bytes = identity_tofu::codec::encode(self).expect("an invite code always encodes");
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Parses and checks a code: the certificate's signature must verify.
    pub fn decode(text: &str) -> Result<Self, InviteCodeError> {
        let text = text.trim();
        if text.len() > MAX_CODE_LEN {
            return Err(InviteCodeError::TooLong(text.len()));
        }
        let body = text.strip_prefix(PREFIX).ok_or(InviteCodeError::Prefix)?;
        let bytes = URL_SAFE_NO_PAD.decode(body)?;
        let code: Self = identity_tofu::codec::decode(&bytes, MAX_CODE_LEN)?;
        code.signed_certificate()?;
        code.peer_id
            .parse::<gossip::net::PeerId>()
            .map_err(|e| InviteCodeError::PeerId(e.to_string()))?;
        Ok(code)
    }

    /// The certificate, signature checked.
    pub fn signed_certificate(&self) -> Result<SignedDeviceCertificate, InviteCodeError> {
        let cert = SignedDeviceCertificate::decode(&self.certificate)?;
        cert.verify_signature()?;
        Ok(cert)
    }

    /// Looks like an invite code (for telling it apart from a handle or a DNS name).
    pub fn looks_like(text: &str) -> bool {
        text.trim().starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_tofu::LocalIdentity;
    use rand::SeedableRng;

    fn code() -> InviteCode {
        let mut rng = rand_chacha_rng();
        let me = LocalIdentity::create("ann", &mut rng, 1_700_000_000_000).unwrap();
        InviteCode {
            certificate: me.credential_identity().to_vec(),
            peer_id: gossip::net::Keypair::generate_ed25519()
                .public()
                .to_peer_id()
                .to_string(),
            addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        }
    }

    fn rand_chacha_rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    #[test]
    fn a_code_round_trips() {
        let c = code();
        assert_eq!(InviteCode::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn damaged_codes_are_errors_not_panics() {
        let text = code().encode();
        assert!(matches!(
            InviteCode::decode("hello"),
            Err(InviteCodeError::Prefix)
        ));
        let truncated = &text[..text.len() / 2];
        assert!(InviteCode::decode(truncated).is_err());
        // Flip one character inside the certificate: the signature must fail or decoding must.
        let mut chars: Vec<char> = text.chars().collect();
        let i = PREFIX.len() + 40;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let flipped: String = chars.into_iter().collect();
        assert!(InviteCode::decode(&flipped).is_err());
    }
}
