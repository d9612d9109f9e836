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
    step = max(1, rows.size // 4000)
    fullest = fullest_rows(rows[::step], cols[::step]) if step > 1 else fullest_rows_of_runs(mask)
    tilt = LINE_SLOPES[np.argmax(fullest)]
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


def rises(width: int) -> np.ndarray:
    """How many rows each column rises at each of ``LINE_SLOPES``, rounded: shearing takes it from a pixel's row."""
    return np.rint(LINE_SLOPES[:, None] * np.arange(width)).astype(np.intp)


def fullest_rows(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For each of ``LINE_SLOPES``, the most of these pixels (at least one) that one row sheared by it holds."""
    sheared = rows - rises(cols.max() + 1)[:, cols]
    sheared -= sheared.min(axis=1, keepdims=True)
    span = int(sheared.max()) + 1
    sheared += span * np.arange(len(LINE_SLOPES))[:, None]
    counts = np.bincount(sheared.ravel(), minlength=span * len(LINE_SLOPES))
    return counts.reshape(len(LINE_SLOPES), span).max(axis=1)


def fullest_rows_of_runs(mask: np.ndarray) -> np.ndarray:
    """``fullest_rows`` of all the mask's pixels (at least one), counted by their runs down each column: fewer runs.

    A run of a column's pixels stays a run once sheared: it adds one to each row from its start to its end.
    """
    edges = np.diff(mask.astype(np.int8), axis=0, prepend=0, append=0)
    (start_rows, start_cols), (end_rows, end_cols) = np.nonzero(edges == 1), np.nonzero(edges == -1)
    table = rises(mask.shape[1])
    starts, ends = start_rows - table[:, start_cols], end_rows - table[:, end_cols]  # ends are past the runs
    lowest = starts.min(axis=1, keepdims=True)
    span = int((ends - lowest).max()) + 1
    offsets = span * np.arange(len(LINE_SLOPES))[:, None] - lowest
    size = span * len(LINE_SLOPES)
    changes = np.bincount((starts + offsets).ravel(), minlength=size) - np.bincount(
        (ends + offsets).ravel(), minlength=size
    )
    return np.cumsum(changes.reshape(len(LINE_SLOPES), span), axis=1).max(axis=1)
