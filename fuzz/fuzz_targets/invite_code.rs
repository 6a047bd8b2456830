//! Invite codes (node/src/invite_code.rs): text a person pastes from someone else — base64,
//! bincode, a signed device certificate, a libp2p peer id.
//!
//! Checks: no panic; a code that decodes encodes to a code that decodes to the same value.

#![no_main]

use chorus_fuzz::invite_code::InviteCode;
use chorus_fuzz::seeds;
use gossip::net::Keypair;
use identity_tofu::LocalIdentity;
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn real_codes() -> Vec<String> {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let mut codes = Vec::new();
    for (handle, addrs) in [
        ("ann", vec!["/ip4/127.0.0.1/tcp/4001".to_string()]),
        (
            "bo.b-2",
            vec![
                "/ip4/192.0.2.7/udp/4001/quic-v1".to_string(),
                "/dns4/chorus.example/tcp/443".to_string(),
                "/ip6/::1/tcp/9".to_string(),
            ],
        ),
        ("carol", Vec::new()),
    ] {
        let me =
            LocalIdentity::create(handle, &mut rng, 1_767_225_600_000).expect("a valid handle");
        let peer = Keypair::ed25519_from_bytes([handle.len() as u8; 32]).expect("a 32-byte key");
        let code = InviteCode {
            certificate: me.credential_identity().to_vec(),
            peer_id: peer.public().to_peer_id().to_string(),
            addrs,
        };
        codes.push(code.encode());
    }
    codes
}

fuzz_target!(
    init: {
        seeds::write(real_codes());
    },
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let _ = InviteCode::looks_like(text);
        if let Ok(code) = InviteCode::decode(text) {
            let again = InviteCode::decode(&code.encode()).expect("an encoded code decodes");
            assert_eq!(again, code, "invite code round trip");
        }
    }
);
