"""Ruled and margin lines of the paper: found along the page's tilt and cut out of the ink."""

import numpy as np

LINE_SPAN = 0.5  # of the photo's width (height): a ruled (margin) line reaches at least this far across it


LINE_COVER = 0.3  # of the photo's width (height): a faint line, broken up by the threshold, covers this much of it


LINE_SHAPE = 100  # the photo's width (height) over a line's thickness (besides a pixel or two), at least


LINE_GAP = 3  # pixels: a line broken by no more than this is unbroken


LINE_FAINT = 0.6  # of the darkest strokes' ink: a line broken up more is fainter than this


LINE_SLOPES = np.tan(np.radians(np.arange(-10, 10.5, 0.5)))  # tilts of the page that lines are looked for at


def drop_lines(mask: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The mask without long thin lines, ruled lines and margins, even where a digit touches them."""
    strokes = float(np.percentile(ink[mask], 90)) if mask.any() else 1.0
    return mask & ~line_pixels(mask, ink, strokes) & ~line_pixels(mask.T, ink.T, strokes).T


def line_pixels(mask: np.ndarray, ink: np.ndarray, strokes: float) -> np.ndarray:
    """The ink pixels of near-horizontal lines across the image, but not those of strokes that cross them.

    ``strokes`` is the ink of the darkest strokes: a line is either fainter, or unbroken across the image.
    """
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    found = np.zeros_like(mask)
    if rows.size < LINE_COVER * width:
        return found
    # Shear the ink so that lines at the page's tilt become rows: at that tilt one row holds a whole line. A
    # sample of the pixels is enough to find the tilt.
    sample = slice(None, None, max(1, rows.size // 4000))
    tilt = max(LINE_SLOPES, key=lambda slope: np.bincount(sheared_rows(rows[sample], cols[sample], slope)).max())
    sheared = sheared_rows(rows, cols, tilt)
    # Which columns each sheared row has ink in, counting its neighbours: a line may step by a row across.
    rowed = np.zeros((sheared.max() + 3, width), dtype=bool)
    rowed[sheared + 1, cols] = True
    near = rowed[:-2] | rowed[1:-1] | rowed[2:]
    covered = near.sum(axis=1)
    reach = width - np.argmax(near[:, ::-1], axis=1) - np.argmax(near, axis=1)
    line = (covered >= LINE_COVER * width) & (reach >= LINE_SPAN * width)
    # A line is thin: a run of such rows thicker than that is a stroke or several, lined up.
    starts = np.flatnonzero(np.diff(line.astype(np.int8), prepend=0) == 1)
    ends = np.flatnonzero(np.diff(line.astype(np.int8), append=0) == -1) + 1
    for low, high in zip(starts, ends):
        if (high - low) * LINE_SHAPE > width + 2 * LINE_SHAPE:
            continue
        on = (sheared >= low - 1) & (sheared <= high)
        # The pixels where a stroke crosses the line (ink just above it and just below it) are the stroke's.
        line_rows, line_cols = rows[on], cols[on]
        above = np.clip(line_rows - sheared[on] + low - 3, 0, height - 1)
        below = np.clip(line_rows - sheared[on] + high + 2, 0, height - 1)
        own = ~(mask[above, line_cols] & mask[below, line_cols])
        line_rows, line_cols = line_rows[own], line_cols[own]
        columns = np.unique(line_cols)
        if columns.size < LINE_COVER * width:
            continue
        # The strokes of a row of digits can line up too, but they are as dark as ink and broken by the gaps
        # between the digits.
        unbroken = np.diff(np.flatnonzero(np.diff(columns, prepend=-9, append=width + 9) > LINE_GAP)).max()
        if unbroken < LINE_SPAN * width and np.median(ink[line_rows, line_cols]) >= LINE_FAINT * strokes:
            continue
        found[line_rows, line_cols] = True
    return found


def sheared_rows(rows: np.ndarray, cols: np.ndarray, slope: float) -> np.ndarray:
    """Each pixel's row once the image is sheared by ``slope``, counted from 0."""
    sheared = np.rint(rows - slope * cols).astype(np.intp)
    return sheared - sheared.min(initial=0)
