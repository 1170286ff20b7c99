//! The medial axis of a binary shape and its distance transform, as Morpho-MNIST measures stroke length and
//! thickness on them: the shape is thinned one pixel at a time, nearest-to-the-background first, keeping every
//! pixel whose removal would split the shape or shorten a line to nothing, so that what remains is one pixel wide
//! and runs along the ridges of the distance transform (the algorithm of scikit-image's `medial_axis`).

/// Euclidean distance of each pixel of `shape` to the nearest background pixel (0 on the background), exact:
/// squared distances along the columns, then the lower envelope of parabolas along each row (Felzenszwalb &
/// Huttenlocher 2012). Pixels beyond the image are not background.
pub fn distance_transform(shape: &[bool], rows: usize, cols: usize) -> Vec<f64> {
    let far = ((rows * rows + cols * cols) as f64) * 4.0;
    let mut squared = vec![0.0; rows * cols];
    let mut line = vec![0.0; rows.max(cols)];
    let mut out = vec![0.0; rows.max(cols)];
    for c in 0..cols {
        for r in 0..rows {
            line[r] = if shape[r * cols + c] { far } else { 0.0 };
        }
        lower_envelope(&line[..rows], &mut out[..rows]);
        for r in 0..rows {
            squared[r * cols + c] = out[r];
        }
    }
    for r in 0..rows {
        line[..cols].copy_from_slice(&squared[r * cols..(r + 1) * cols]);
        lower_envelope(&line[..cols], &mut out[..cols]);
        squared[r * cols..(r + 1) * cols].copy_from_slice(&out[..cols]);
    }
    // A shape without background has no distance to it: what the pixel-scale "far" value would say is not one.
    squared.iter().map(|&d| if d >= far { f64::INFINITY } else { d.sqrt() }).collect()
}

/// `out[q] = min_p (f[p] + (q − p)²)`: the one-dimensional squared distance transform of sampled function `f`.
fn lower_envelope(f: &[f64], out: &mut [f64]) {
    let n = f.len();
    let mut vertices = vec![0usize; n];
    let mut bounds = vec![0.0f64; n + 1];
    let mut k = 0;
    bounds[0] = f64::NEG_INFINITY;
    bounds[1] = f64::INFINITY;
    for q in 1..n {
        // Where q's parabola falls below the envelope's last one; pop those it hides entirely. The first bound
        // is −∞, so the loop stops at the first parabola at the latest.
        let meet = |p: usize| ((f[q] + (q * q) as f64) - (f[p] + (p * p) as f64)) / (2.0 * (q - p) as f64);
        let mut s = meet(vertices[k]);
        while s <= bounds[k] {
            k -= 1;
            s = meet(vertices[k]);
        }
        k += 1;
        vertices[k] = q;
        bounds[k] = s;
        bounds[k + 1] = f64::INFINITY;
    }
    let mut k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while bounds[k + 1] < q as f64 {
            k += 1;
        }
        let p = vertices[k];
        *o = (q as f64 - p as f64).powi(2) + f[p];
    }
}

/// The 3 × 3 neighbourhood of pixel (r, c) as a 9-bit pattern, bit 3·i + j for row i and column j of the window;
/// pixels beyond the image count as background.
fn pattern(image: &[bool], rows: usize, cols: usize, r: usize, c: usize) -> usize {
    let mut index = 0;
    for i in 0..3 {
        for j in 0..3 {
            let (y, x) = (r as i64 + i as i64 - 1, c as i64 + j as i64 - 1);
            if y >= 0 && x >= 0 && (y as usize) < rows && (x as usize) < cols && image[y as usize * cols + x as usize] {
                index |= 1 << (3 * i + j);
            }
        }
    }
    index
}

/// The number of 8-connected components among the set bits of a 3 × 3 pattern.
fn components(pattern: usize) -> usize {
    let mut seen = 0usize;
    let mut count = 0;
    for start in 0..9usize {
        if pattern & (1 << start) == 0 || seen & (1 << start) != 0 {
            continue;
        }
        count += 1;
        let mut stack: Vec<usize> = vec![start];
        seen |= 1 << start;
        while let Some(at) = stack.pop() {
            let (i, j) = (at / 3, at % 3);
            for next in 0..9usize {
                let (y, x) = (next / 3, next % 3);
                if pattern & (1 << next) != 0 && seen & (1 << next) == 0 && i.abs_diff(y) <= 1 && j.abs_diff(x) <= 1 {
                    seen |= 1 << next;
                    stack.push(next);
                }
            }
        }
    }
    count
}

/// For each 3 × 3 pattern with its centre set: whether the centre stays, because removing it changes how many
/// pieces its neighbourhood falls into (it connects them, or is a piece of its own), or because at most one
/// neighbour is set (the end of a line).
fn keeps() -> [bool; 512] {
    let mut table = [false; 512];
    for (index, keep) in table.iter_mut().enumerate() {
        let centre = 1 << 4;
        *keep = index & centre != 0 && (components(index) != components(index & !centre) || index.count_ones() < 3);
    }
    table
}

/// The medial axis of `shape` and its distance transform. Pixels are visited once, in order of distance, then of
/// how many background pixels their neighbourhood holds (corners last, so that a corner's arm survives), then in a
/// scattered order where both tie. The scatter matters: visited in raster order, a ridge of equal distances is
/// peeled from one end to the other, each pixel removable while its successor still holds the line together, and
/// the axis of a wide stroke vanishes. scikit-image scatters at random; a fixed scatter makes ours repeatable.
pub fn medial_axis(shape: &[bool], rows: usize, cols: usize) -> (Vec<bool>, Vec<f64>) {
    let distance = distance_transform(shape, rows, cols);
    let table = keeps();
    let mut order: Vec<(f64, u32, u32, usize)> = (0..rows * cols)
        .filter(|&p| shape[p])
        .map(|p| (distance[p], 9 - pattern(shape, rows, cols, p / cols, p % cols).count_ones(), scatter(p), p))
        .collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut skeleton = shape.to_vec();
    for &(_, _, _, p) in &order {
        if !table[pattern(&skeleton, rows, cols, p / cols, p % cols)] {
            skeleton[p] = false;
        }
    }
    (skeleton, distance)
}

/// A fixed permutation of pixel indices that puts neighbours far apart in the visiting order (Knuth's
/// multiplicative hash).
fn scatter(p: usize) -> u32 {
    (p as u32).wrapping_mul(2_654_435_761)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_force(shape: &[bool], rows: usize, cols: usize) -> Vec<f64> {
        (0..rows * cols)
            .map(|p| {
                if !shape[p] {
                    return 0.0;
                }
                (0..rows * cols)
                    .filter(|&q| !shape[q])
                    .map(|q| {
                        let (dy, dx) = ((p / cols) as f64 - (q / cols) as f64, (p % cols) as f64 - (q % cols) as f64);
                        (dy * dy + dx * dx).sqrt()
                    })
                    .fold(f64::INFINITY, f64::min)
            })
            .collect()
    }

    #[test]
    fn the_distance_transform_is_the_nearest_background_pixels_distance() {
        let (rows, cols) = (9, 11);
        // An irregular blob: a disc, a bar and a hole.
        let shape: Vec<bool> = (0..rows * cols)
            .map(|p| {
                let (r, c) = ((p / cols) as i64, (p % cols) as i64);
                let disc = (r - 4).pow(2) + (c - 4).pow(2) <= 10;
                let bar = (1..=7).contains(&r) && (7..=9).contains(&c);
                (disc || bar) && !(r == 4 && c == 4)
            })
            .collect();
        let fast = distance_transform(&shape, rows, cols);
        for (p, (a, b)) in fast.iter().zip(brute_force(&shape, rows, cols)).enumerate() {
            assert!((a - b).abs() < 1e-12, "pixel {p}: {a} against {b}");
        }
    }

    #[test]
    fn the_table_keeps_connections_and_line_ends_and_removes_the_rest() {
        let table = keeps();
        let centre = 1 << 4;
        // Left and right neighbours only: the centre connects them.
        assert!(table[centre | 1 << 3 | 1 << 5]);
        // One neighbour: a line's end stays.
        assert!(table[centre | 1 << 1]);
        // A full block: the centre is inside, its removal changes nothing.
        assert!(!table[511]);
        // The top row and the centre: removing the centre leaves the row in one piece.
        assert!(!table[centre | 0b111]);
        assert!(!table[0], "the background is never kept");
    }

    #[test]
    fn a_bar_thins_to_its_centre_line() {
        // A horizontal bar 5 pixels high: its axis is the middle row, at distance 3 from the background.
        let (rows, cols) = (9, 30);
        let shape: Vec<bool> =
            (0..rows * cols).map(|p| (2..7).contains(&(p / cols)) && (3..27).contains(&(p % cols))).collect();
        let (skeleton, distance) = medial_axis(&shape, rows, cols);
        for c in 6..24 {
            let kept: Vec<usize> = (0..rows).filter(|&r| skeleton[r * cols + c]).collect();
            assert_eq!(kept, [4], "column {c}");
            assert_eq!(distance[4 * cols + c], 3.0);
        }
        assert!(skeleton.iter().zip(&shape).all(|(&s, &inside)| !s || inside), "the axis lies inside the shape");
    }
}
