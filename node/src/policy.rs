//! Tie-break policy and consistency mode names as flags and config files spell them.

use ds_p2p::engine::TieBreak;

pub fn parse_policy(name: &str) -> anyhow::Result<TieBreak> {
    TieBreak::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| {
            let known: Vec<_> = TieBreak::ALL.iter().map(|p| p.name()).collect();
            anyhow::anyhow!("unknown tie-break policy {name:?}: use one of {known:?}")
        })
}

/// A consistency mode: `accept-and-hold`, `settle-then-pick[:<ms>]` or `sequencer`.
pub fn parse_consistency(name: &str) -> anyhow::Result<ds_p2p::engine::ConsistencyMode> {
    name.parse().map_err(|e: String| anyhow::anyhow!(e))
}

/// A group reference as 32 hex digits.
pub fn parse_group_ref(text: &str) -> anyhow::Result<ds_p2p::wire::GroupRef> {
    let bytes = hex::decode(text).map_err(|e| anyhow::anyhow!("{text:?} is not hex: {e}"))?;
    let array: [u8; 16] = bytes.try_into().map_err(|b: Vec<u8>| {
        anyhow::anyhow!(
            "a group reference is 16 bytes (32 hex digits), not {}",
            b.len()
        )
    })?;
    Ok(ds_p2p::wire::GroupRef(array))
}
