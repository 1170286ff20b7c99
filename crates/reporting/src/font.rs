//! The font every figure and grid title is drawn with: DejaVu Sans compiled into the binary (`assets/`), so
//! figures render on a machine with no fonts installed; plotters' default font path would need fontconfig and
//! freetype at run time.

use std::sync::Once;

use plotters::style::FontStyle;

use crate::error::ReportError;

/// The family name the bundled font is registered under.
pub(crate) const FONT: &str = "sans-serif";

/// Registers the bundled font with plotters, once per process.
pub(crate) fn ensure_font() -> Result<(), ReportError> {
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| {
        result = plotters::style::register_font(FONT, FontStyle::Normal, include_bytes!("../assets/DejaVuSans.ttf"))
            .map_err(|_| ReportError::Input("the bundled font assets/DejaVuSans.ttf is not a valid font".into()));
    });
    result
}
