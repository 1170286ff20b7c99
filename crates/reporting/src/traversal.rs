//! The latent explorer's sheet as a picture. The sheet itself ([`TraversalSheet`]) is a run file's content,
//! defined with the file (`ssinfogan_plan::share`); `explorer` lays it out in `index.html`.

use ssinfogan_plan::share::TraversalSheet;

use crate::pixels::{png_bytes, tile};

/// The sheet as a PNG, one pixel per generated pixel.
pub fn png(sheet: &TraversalSheet) -> Result<Vec<u8>, String> {
    let rows = sheet.noise_samples * sheet.code_values;
    let (width, height, rgb) =
        tile(&sheet.pixels, rows, sheet.columns(), (sheet.channels, sheet.height, sheet.width), 1)?;
    png_bytes(width, height, rgb)
}
