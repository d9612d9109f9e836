"""Tell ink from paper in a photo's grey levels: even out the light, estimate the paper, threshold the strokes."""

from collections.abc import Callable

import numpy as np
from PIL import Image

from lightning_app.errors import UserError

CELLS = 24  # the paper's level is estimated on a grid this many cells along the photo's longer side


CLOSING = 2  # cells: strokes up to about twice this many cells wide are ink, wider regions are paper in shade


PAPER_PERCENTILE = 90  # of a cell's grey levels: the paper, when ink covers less than a tenth of the cell


MIN_CONTRAST = 0.1  # of the paper's level: anything fainter than this is not a stroke


NOISE_SIGMAS = 4.0  # ink must stand this many standard deviations of the paper's noise above it


class BlankImage(UserError):
    """No marks stand out from the background."""

    def __init__(self) -> None:
        super().__init__("the image is blank: it has no marks that stand out from the background")


def flatten(grey: np.ndarray) -> np.ndarray:
    """Each pixel's ink: how much darker (lighter, for light ink) than the paper around it it is, as a fraction."""
    if light_ink(grey):
        grey = 255 - grey
    cell = max(2, -(-max(grey.shape) // CELLS))
    (paper,) = cell_levels(grey, cell, [PAPER_PERCENTILE])
    return ink_against(grey, paper, cell)


def light_ink(grey: np.ndarray) -> bool:
    """Whether the ink is lighter than the paper (chalk on a blackboard, a negative)."""
    # Taken the wrong way round, each cell's paper would be its ink, and the paper around the strokes would
    # count as ink, magnified by the division: much more ink than the right way finds. The cells are large
    # here, several times a thick stroke's width, so that this holds whatever the pen.
    cell = max(2, -(-max(grey.shape) // (CELLS // 4)))
    lighter, darker = cell_levels(grey, cell, [100 - PAPER_PERCENTILE, PAPER_PERCENTILE])
    dark = ink_against(grey, darker, cell, closing=0)
    light = ink_against(255 - grey, 255 - lighter, cell, closing=0)
    return np.clip(light, 0, 1).mean() < np.clip(dark, 0, 1).mean()


def ink_against(grey: np.ndarray, paper: np.ndarray, cell: int, closing: int = CLOSING) -> np.ndarray:
    """Dark ink against paper whose level in each cell of the grid is ``paper``: 0 for paper, 1 for black."""
    # A closing of the grid: a cell within a thick stroke takes the paper's level from its neighbours, while
    # regions wider than a stroke, a shadow's, keep their own.
    paper = window(window(paper, closing, np.maximum), closing, np.minimum)
    grid = Image.fromarray(paper.astype(np.float32))
    level = np.asarray(grid.resize((paper.shape[1] * cell, paper.shape[0] * cell), Image.Resampling.BILINEAR))
    height, width = grey.shape
    return 1 - grey / np.maximum(level[:height, :width], 1)


def cell_levels(grey: np.ndarray, cell: int, percentiles: list[float]) -> np.ndarray:
    """Percentiles of the grey levels in each ``cell`` x ``cell`` square of a grid over the image."""
    height, width = grey.shape
    rows, cols = -(-height // cell), -(-width // cell)
    padded = np.pad(grey, ((0, rows * cell - height), (0, cols * cell - width)), mode="reflect")
    cells = padded.reshape(rows, cell, cols, cell).swapaxes(1, 2).reshape(rows, cols, cell * cell)
    step = max(1, cell * cell // 256)  # a sample of each cell is enough for its percentiles
    return np.percentile(cells[..., ::step], percentiles, axis=-1)


def window(grid: np.ndarray, reach: int, reduce: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """The maximum or minimum of each cell's square of neighbours up to ``reach`` cells away.

    Beyond its edges the grid continues as their slope goes (odd reflection), rather than repeating the edge, so
    that a closing keeps light that falls off towards the photo's edge, such as a shadow's. A square's extreme is
    that of its rows' extremes, so rows and columns are reduced in turn.

    Args:
        grid: The levels, one per cell.
        reach: How many cells away a neighbour may be; 0 gives the grid back.
        reduce: ``np.maximum`` for the maximum, ``np.minimum`` for the minimum.
    """
    if reach == 0:
        return grid
    height, width = grid.shape
    padded = np.pad(grid, reach, mode="reflect", reflect_type="odd")
    rows = padded[:, :width]
    for dx in range(1, 2 * reach + 1):
        rows = reduce(rows, padded[:, dx : dx + width])
    out = rows[:height]
    for dy in range(1, 2 * reach + 1):
        out = reduce(out, rows[dy : dy + height])
    return out


def threshold(ink: np.ndarray) -> float:
    """The level of ink that separates strokes from paper: Otsu's threshold among the pixels above the noise."""
    sample = ink[::2, ::2].ravel()
    middle = float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(sample - middle)))  # the paper's standard deviation, robustly
    floor = max(middle + NOISE_SIGMAS * noise, middle + MIN_CONTRAST / 2)
    marks = sample[sample > floor]
    if marks.size == 0 or marks.max() - middle < MIN_CONTRAST:
        raise BlankImage()
    return max(otsu(marks), floor)


def otsu(values: np.ndarray) -> float:
    """The threshold that best splits values into two classes (Otsu's method, on a 256-bin histogram)."""
    counts, edges = np.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    total = weight[-1]
    mass = np.cumsum(counts * centres)
    below = mass / np.maximum(weight, 1)
    above = (mass[-1] - mass) / np.maximum(total - weight, 1)
    between = weight * (total - weight) * (below - above) ** 2
    return float(edges[np.argmax(between) + 1])
