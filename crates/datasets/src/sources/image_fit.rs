//! Decoded images to a dataset's shape: exactly as stored (MNIST, SVHN, CIFAR-10), or centre-cropped and
//! resized (CelebA's 178×218 aligned faces to 32×32), then to CHW planes of f32 in [0, 1]. Decoding runs in
//! parallel, because CelebA's 182,000 JPEGs take minutes on one core.

use std::sync::atomic::{AtomicUsize, Ordering};

use image::imageops::FilterType;
use image::DynamicImage;
use rayon::prelude::*;
use ssinfogan_core::ImageSpec;

/// How often, in images, a long decode logs its progress.
const PROGRESS_EVERY: usize = 20_000;

/// What to do with a decoded image whose size is not the dataset's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// The image must already have the dataset's size; any other is an error.
    Exact,
    /// Crop the centred `side`×`side` square (the largest centred square if the image is smaller), then resize
    /// it to the dataset's size. An image already of the dataset's size is kept as it is.
    CentreCrop { side: u32 },
}

/// Decodes one PNG/JPEG and writes it into `out` (exactly `spec.pixels()` values), CHW, as f32 in [0, 1].
pub fn decode_into(encoded: &[u8], spec: ImageSpec, fit: Fit, out: &mut [f32]) -> Result<(), String> {
    let decoded = image::load_from_memory(encoded).map_err(|e| format!("cannot decode the image: {e}"))?;
    fit_into(decoded, spec, fit, out)
}

/// Fits an already decoded image to `spec` (see [`Fit`]) and writes it into `out`, CHW, as f32 in [0, 1].
pub fn fit_into(decoded: DynamicImage, spec: ImageSpec, fit: Fit, out: &mut [f32]) -> Result<(), String> {
    let (width, height) = (decoded.width(), decoded.height());
    let target = (spec.width as u32, spec.height as u32);
    let decoded = match fit {
        _ if (width, height) == target => decoded,
        Fit::Exact => return Err(format!("image is {height}×{width}, this dataset's are {spec}")),
        Fit::CentreCrop { side } => {
            let side = side.min(width).min(height);
            let square = decoded.crop_imm((width - side) / 2, (height - side) / 2, side, side);
            // Triangle is bilinear interpolation widened to the scale factor when shrinking (an area average), as
            // PIL's bilinear resize in the DCGAN face pipeline; unlike CatmullRom it has no negative lobes, so it
            // adds no ringing around edges and a flat colour stays exactly flat.
            DynamicImage::from(image::imageops::resize(&square.to_rgb8(), target.0, target.1, FilterType::Triangle))
        }
    };
    if out.len() != spec.pixels() {
        return Err(format!("internal: {} values reserved for a {spec} image", out.len()));
    }
    match spec.channels {
        1 => {
            for (value, &p) in out.iter_mut().zip(decoded.to_luma8().as_raw()) {
                *value = f32::from(p) / 255.0;
            }
        }
        3 => {
            let rgb = decoded.to_rgb8();
            let plane = spec.height * spec.width;
            // HWC bytes to CHW planes.
            for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
                for channel in 0..3 {
                    out[channel * plane + i] = f32::from(px[channel]) / 255.0;
                }
            }
        }
        c => return Err(format!("{c}-channel images are not supported")),
    }
    Ok(())
}

/// Runs `decode(item, slot)` for every item on rayon's pool (so `RAYON_NUM_THREADS`, which `--jobs` sets per run,
/// bounds it like the training's kernels), each writing one image of `spec` into its own slot of the result, so
/// the images come out in item order. Returns the error of the first item (in item order) that fails. `what`
/// names the images in the progress lines logged every 20,000 images.
pub fn decode_in_parallel<T, E>(
    items: &[T],
    spec: ImageSpec,
    what: &str,
    decode: impl Fn(&T, &mut [f32]) -> Result<(), E> + Sync,
) -> Result<Vec<f32>, E>
where
    T: Sync,
    E: Send,
{
    let pixels = spec.pixels();
    let mut out = vec![0.0f32; items.len() * pixels];
    if pixels == 0 {
        return Ok(out);
    }
    let done = AtomicUsize::new(0);
    let results: Vec<Result<(), E>> = out
        .par_chunks_mut(pixels)
        .zip(items.par_iter())
        .map(|(slot, item)| {
            decode(item, slot)?;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(PROGRESS_EVERY) {
                tracing::info!("{what}: {n} of {} images decoded", items.len());
            }
            Ok(())
        })
        .collect();
    results.into_iter().collect::<Result<(), E>>()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_centre_crop_takes_the_middle_and_keeps_a_flat_colour_flat() {
        // 6 wide, 8 high: the centred 4×4 square starts at (1, 2). Inside it, red; outside, blue.
        let img = image::RgbImage::from_fn(6, 8, |x, y| {
            if (1..5).contains(&x) && (2..6).contains(&y) {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let spec = ImageSpec { channels: 3, height: 2, width: 2 };
        let mut out = vec![0.0; spec.pixels()];
        fit_into(DynamicImage::from(img.clone()), spec, Fit::CentreCrop { side: 4 }, &mut out).unwrap();
        assert_eq!(out, vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        // A crop larger than the image falls back to the largest centred square (6×6 from row 1).
        fit_into(DynamicImage::from(img.clone()), spec, Fit::CentreCrop { side: 100 }, &mut out).unwrap();
        assert!(out[0] > 0.0 && out[8] > 0.0, "{out:?}");
        let message = fit_into(DynamicImage::from(img), spec, Fit::Exact, &mut out).unwrap_err();
        assert_eq!(message, "image is 8×6, this dataset's are 2×2×3");
    }

    #[test]
    fn parallel_decoding_keeps_item_order_and_reports_the_first_failure() {
        let spec = ImageSpec { channels: 1, height: 1, width: 2 };
        let items: Vec<usize> = (0..1000).collect();
        let out = decode_in_parallel(&items, spec, "test", |&i, slot: &mut [f32]| {
            slot.copy_from_slice(&[i as f32, -(i as f32)]);
            Ok::<(), String>(())
        })
        .unwrap();
        assert_eq!(&out[2 * 777..2 * 778], &[777.0, -777.0]);
        let failure =
            decode_in_parallel(
                &items,
                spec,
                "test",
                |&i, _: &mut [f32]| {
                    if i % 300 == 299 {
                        Err(format!("item {i}"))
                    } else {
                        Ok(())
                    }
                },
            );
        assert_eq!(failure.unwrap_err(), "item 299");
    }
}
