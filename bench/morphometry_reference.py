"""Morpho-MNIST's morphometrics of digit images, computed with scikit-image as the paper's code computes them:
the reference that `crates/morphometry/tests/reference.rs` holds our Rust implementation to.

Castro et al., "Morpho-MNIST: Quantitative Assessment and Diagnostics for Representation Learning", JMLR 2019:
upsample 4x (cubic spline, Gaussian of sigma 4/3: `pyramid_expand`), store as 8-bit, binarise half way between
the darkest and brightest pixel, then area, medial-axis length and thickness, and from the upsampled image's
moments the slant and the sheared bounding box's width and height (2% of the ink outside).

    python bench/morphometry_reference.py GRID.png CELL OUT.csv

GRID.png holds CELL x CELL digit images side by side, read row by row; OUT.csv gets one row per digit with
`index,area,length,thickness,slant,width,height`. Needs numpy, scipy and scikit-image (PyPI).
"""

import csv
import sys

import numpy as np
from scipy import ndimage
from skimage import io, morphology, transform

SCALE = 4
BOUND_FRACTION = 0.02
# Neighbours along the axis, each pair once: right (1), below-left, below, below-right (sqrt 2, 1, sqrt 2).
AXIS_STEPS = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [np.sqrt(2.0), 1.0, np.sqrt(2.0)]])


def measure(image: np.ndarray):
    hires = (255.0 * transform.pyramid_expand(image, upscale=SCALE, order=3)).astype(np.uint8)
    low, high = float(hires.min()), float(hires.max())
    binary = hires >= low + (high - low) * 0.5
    # The tie-break of the thinning is random in scikit-image: seeded, so the reference repeats.
    axis, distance = morphology.medial_axis(binary, return_distance=True, rng=0)
    area = binary.sum() / SCALE**2
    axis_f = axis.astype(float)
    length = np.einsum("ij,ij->", ndimage.correlate(axis_f, AXIS_STEPS, mode="constant"), axis_f) / SCALE
    thickness = 2.0 * np.mean(distance[axis]) / SCALE

    img = hires.astype(float)
    y, x = np.mgrid[: img.shape[0], : img.shape[1]]
    m00 = img.sum()
    cx, cy = (x * img).sum() / m00, (y * img).sum() / m00
    u11 = (x * y * img).sum() / m00 - cx * cy
    u02 = (y * y * img).sum() / m00 - cy * cy
    shear = u11 / u02
    slant = np.arctan(-shear)

    # Share of the ink left of the sheared line through x = t, and above row t.
    locs = np.arange(img.shape[1])
    horizontal = np.array([((x + 0.5 < t + shear * (y - cy)) * img).sum() for t in locs]) / m00
    vertical = np.array([((y < t) * img).sum() for t in range(img.shape[0])]) / m00
    half = BOUND_FRACTION / 2
    left, right = np.interp([half, 1 - half], horizontal, locs)
    top, bottom = np.interp([half, 1 - half], vertical, np.arange(img.shape[0]))
    return area, length, thickness, slant, (right - left) / SCALE, (bottom - top) / SCALE


def main():
    grid_path, cell, out_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    grid = io.imread(grid_path)
    rows, cols = grid.shape[0] // cell, grid.shape[1] // cell
    with open(out_path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["index", "area", "length", "thickness", "slant", "width", "height"])
        for i in range(rows * cols):
            r, c = divmod(i, cols)
            digit = grid[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell]
            out.writerow([i, *(repr(float(v)) for v in measure(digit))])


if __name__ == "__main__":
    main()
