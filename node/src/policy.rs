//! Tie-break policy names as flags and config files spell them.

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
