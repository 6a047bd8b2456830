//! Terminal QR codes: text made of Unicode half-block characters, two QR rows per line.
//!
//! Used to show a safety number or a fingerprint so that the other person can scan it with a
//! phone instead of reading 60 digits aloud. Only the `unicode` renderer of `qrcode` is used,
//! which needs none of that crate's optional features.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// The colour of the terminal the code will be printed on.
///
/// A QR code must be dark modules on a light background (with a light margin) to scan; on a
/// dark terminal the block characters are the *light* parts, so the rendering is inverted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TerminalBackground {
    /// Light text on a dark background (the common terminal default).
    #[default]
    Dark,
    /// Dark text on a light background.
    Light,
}

/// Why a QR code could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot render QR code: {0}")]
pub struct QrError(#[source] pub qrcode::types::QrError);

/// Renders `data` as a QR code (error correction level M, with the standard quiet zone) in
/// Unicode block characters, one string with `\n` between lines.
///
/// Digits-only data is encoded in the QR numeric mode automatically, which keeps a 60-digit
/// safety number at the smallest symbol size that fits.
pub fn render_terminal(data: &[u8], background: TerminalBackground) -> Result<String, QrError> {
    let code = QrCode::with_error_correction_level(data, EcLevel::M).map_err(QrError)?;
    let (dark, light) = match background {
        TerminalBackground::Dark => (Dense1x2::Light, Dense1x2::Dark),
        TerminalBackground::Light => (Dense1x2::Dark, Dense1x2::Light),
    };
    Ok(code
        .render::<Dense1x2>()
        .dark_color(dark)
        .light_color(light)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_blocks_and_backgrounds_are_inverses() {
        let dark = render_terminal(b"12345", TerminalBackground::Dark).unwrap();
        let light = render_terminal(b"12345", TerminalBackground::Light).unwrap();
        assert!(dark.contains('\u{2588}') || dark.contains('\u{2580}'));
        assert_ne!(dark, light);
        assert_eq!(dark.lines().count(), light.lines().count());
    }

    #[test]
    fn too_much_data_is_an_error_not_a_panic() {
        let data = vec![b'x'; 8000];
        assert!(render_terminal(&data, TerminalBackground::Dark).is_err());
    }
}
