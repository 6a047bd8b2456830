//! Work the core hands to other tasks because it waits on the network — DNS and DHT lookups —
//! and what comes back. The core stays free for other calls meanwhile; each result returns
//! through one channel into the daemon's loop.
//!
//! DHT records (Kademlia, through gossip):
//!
//! ```text
//! chorus/handle/<handle>         -> an invite code (text); self-authenticating: its
//!                                   certificate is signed by the identity key, and its
//!                                   handle must be the one looked up
//! chorus/kp/<fingerprint, 32 B>  -> a KeyPackageBundle with the last-resort KeyPackage, for
//!                                   inviting someone whose node is away
//! ```
//! Handles in the DHT are first come, first served for each looker (TOFU pins the first
//! identity seen for a handle); people who need more compare safety numbers.

use ds_p2p::engine::KeyPackageBundle;
use tokio::sync::oneshot;

use crate::api::ApiResult;
use crate::invite_code::InviteCode;

/// Largest bundle record read back from the DHT.
const MAX_BUNDLE: usize = 64 * 1024;

pub fn handle_key(handle: &str) -> Vec<u8> {
    let mut k = b"chorus/handle/".to_vec();
    k.extend_from_slice(handle.as_bytes());
    k
}

pub fn bundle_key(fingerprint: &identity_tofu::Fingerprint) -> Vec<u8> {
    let mut k = b"chorus/kp/".to_vec();
    k.extend_from_slice(fingerprint.to_hex().as_bytes());
    k
}

pub fn encode_bundle(bundle: &KeyPackageBundle) -> Vec<u8> {
    identity_tofu::codec::encode(bundle).expect("bundles encode")
}

pub fn decode_bundle(bytes: &[u8]) -> Option<KeyPackageBundle> {
    identity_tofu::codec::decode(bytes, MAX_BUNDLE).ok()
}

/// A finished lookup, for the core.
pub enum Found {
    /// `contact add` by DNS name or handle: the invite code found (or why not).
    Contact {
        code: Result<InviteCode, String>,
        /// Pinned as an address of its own when the contact came through DNS.
        dns_name: Option<String>,
        name: Option<String>,
        reply: oneshot::Sender<ApiResult>,
    },
    /// The DHT bundle of a contact whose node did not answer an invite's KeyPackage request.
    Bundle {
        nonce: [u8; 16],
        record: Option<Vec<u8>>,
    },
}

/// Looks a handle up in the DHT and checks that the code found is for that handle.
pub async fn handle_lookup(
    net: gossip::net::NodeHandle,
    handle: String,
) -> Result<InviteCode, String> {
    let record = net
        .get_record(handle_key(&handle))
        .await
        .map_err(|e| format!("DHT lookup of {handle}: {e}"))?
        .ok_or_else(|| {
            format!(
                "no DHT record for the handle {handle:?} (their node publishes it while it runs)"
            )
        })?;
    let text = String::from_utf8(record)
        .map_err(|_| format!("the DHT record for {handle} is not text"))?;
    let code =
        InviteCode::decode(&text).map_err(|e| format!("the DHT record for {handle}: {e}"))?;
    let cert = code.signed_certificate().map_err(|e| e.to_string())?;
    if cert.certificate().handle != handle {
        return Err(format!(
            "the DHT record for {handle:?} carries the handle {:?}: refused",
            cert.certificate().handle
        ));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_and_bundles_round_trip() {
        assert_eq!(handle_key("ann"), b"chorus/handle/ann");
        let bundle = KeyPackageBundle {
            owner: vec![1, 2],
            fresh: vec![],
            last_resort: vec![3; 40],
            created_at_ms: 5,
        };
        assert_eq!(decode_bundle(&encode_bundle(&bundle)), Some(bundle));
        assert_eq!(decode_bundle(b"garbage"), None);
    }
}
