//! Size limits of the wire, checked before decoding.

/// How large the pieces of the wire may be. Network input above a limit is refused unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireLimits {
    /// An encoded envelope. A Welcome with the ratchet tree of a 1,000-member group is about
    /// 1 MiB, so the default leaves room for that and not much more.
    pub max_envelope_bytes: usize,
    /// The body of one application message.
    pub max_body_bytes: usize,
}

impl Default for WireLimits {
    fn default() -> Self {
        Self {
            max_envelope_bytes: 4 * 1024 * 1024,
            max_body_bytes: 256 * 1024,
        }
    }
}
