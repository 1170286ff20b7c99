//! Generated images as picture files: `rows × columns` images of (channels, height, width) values in [0, 1] tiled
//! into one RGB image, and RGB buffers encoded as PNG. Sample grids, the explorer's sprite sheets and the progress
//! frames are all made this way.

/// `rows × columns` images of (channels, height, width) values in [0, 1], row-major, tiled into one RGB image,
/// each scaled by `scale` (nearest neighbour).
pub fn tile(
    pixels: &[f32],
    rows: usize,
    columns: usize,
    (c, h, w): (usize, usize, usize),
    scale: u32,
) -> Result<(u32, u32, Vec<u8>), String> {
    if pixels.len() != rows * columns * c * h * w || !(c == 1 || c == 3) {
        return Err(format!("{} values for {rows} × {columns} images of {c}×{h}×{w}", pixels.len()));
    }
    let (width, height) = ((columns * w) as u32 * scale, (rows * h) as u32 * scale);
    let mut rgb = vec![0u8; (width * height * 3) as usize];
    for y in 0..height {
        for x in 0..width {
            let (px, py) = ((x / scale) as usize, (y / scale) as usize);
            let (row, column, iy, ix) = (py / h, px / w, py % h, px % w);
            let image = row * columns + column;
            for channel in 0..3 {
                let source = if c == 1 { 0 } else { channel };
                let v = pixels[((image * c + source) * h + iy) * w + ix];
                rgb[((y * width + x) * 3) as usize + channel] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
    Ok((width, height, rgb))
}

/// PNG bytes of an RGB buffer.
pub fn png_bytes(width: u32, height: u32, rgb: Vec<u8>) -> Result<Vec<u8>, String> {
    let image = image::RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| format!("pixel buffer does not match {width}×{height}"))?;
    let mut png = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).map_err(|e| e.to_string())?;
    Ok(png)
}
