"""Find the handwritten digits in a photo: even out the light, tell ink from paper, keep only the digits.

A phone photo of digits on paper is lit unevenly, the paper may be tinted, the pen blue or a pencil, and the page
may carry ruled lines, specks of dirt and a shadow along its edge. ``find_digits`` takes the photo's grey levels
and returns the digits it finds, left to right, each as a box and a map of its ink:

1. Which is ink, dark or light, is decided first: taken the wrong way round, the paper around the strokes would
   pass for ink, so the right way finds less ink.
2. The paper's level is estimated locally, on a grid of cells over the photo: a high percentile of each cell,
   and a closing over the grid so that a cell inside a thick stroke takes the level of the paper around it,
   while shade wider than any stroke keeps its own. Each pixel's ink is how much darker than the paper's level
   it is, as a fraction of that level, so the gradient of light, the paper's tint and the pen's colour drop out.
3. Ink is told from paper by Otsu's threshold among the pixels that stand above the paper's noise, with
   hysteresis: a stroke is a connected piece of ink above half the threshold that reaches it somewhere.
4. Lines across the photo (ruled lines, margins) are cut out, also where a digit touches them, but not where a
   stroke crosses them. Specks, shade along the border, and what is left of faint lines and of a shadow's edge
   (fainter than the digits and much thinner than their strokes) are dropped.
5. Pieces that overlap horizontally are one digit (a pen that skipped leaves a digit in pieces, one above the
   other), and so is a short loose stroke just beside a digit (a 5's bar); other marks much shorter than the
   digits are not digits. The digits are ordered left to right.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image, ImageFilter

from lightning_app.errors import UserError

CELLS = 24  # the paper's level is estimated on a grid this many cells along the photo's longer side
CLOSING = 2  # cells: strokes up to about twice this many cells wide are ink, wider regions are paper in shade
PAPER_PERCENTILE = 90  # of a cell's grey levels: the paper, when ink covers less than a tenth of the cell
MIN_CONTRAST = 0.1  # of the paper's level: anything fainter than this is not a stroke
NOISE_SIGMAS = 4.0  # ink must stand this many standard deviations of the paper's noise above it
LINE_SPAN = 0.5  # of the photo's width (height): a ruled (margin) line reaches at least this far across it
LINE_COVER = 0.3  # of the photo's width (height): a faint line, broken up by the threshold, covers this much of it
LINE_SHAPE = 100  # the photo's width (height) over a line's thickness (besides a pixel or two), at least
LINE_GAP = 3  # pixels: a line broken by no more than this is unbroken
LINE_FAINT = 0.6  # of the darkest strokes' ink: a line broken up more is fainter than this
LINE_SLOPES = np.tan(np.radians(np.arange(-10, 10.5, 0.5)))  # tilts of the page that lines are looked for at
SPECK = 0.03  # of the largest piece's area: smaller pieces are dirt or noise
BORDER_SPAN = 0.6  # of the photo's width (height): pieces this long along its border, or touching it, are shadows
BORDER_BLOT = 0.3  # of the photo's area within its box: larger pieces touching the border may be shadows
SHADOW = 2.0  # times the strokes' width: pieces along the border that are wider than this are shadows
LARGE = 0.3  # of the largest piece's area: pieces this large are (parts of) digits, whose strokes set the width
FRAGMENT = 5  # a piece at least this many times longer than it is thick is a line's or a shadow's remnant,
THIN = 0.5  # if it is also thinner than this fraction of the digits' strokes,
FAINT_PIECE = 0.6  # and fainter than this fraction of their ink
OVERLAP = 0.5  # of the narrower piece's width: pieces overlapping this much horizontally are one digit
STACKED = 0.2  # of the narrower piece's width: pieces mostly one above the other overlapping this much are one
LOOSE = 0.5  # of the digits' height: shorter marks are loose strokes, dots or dirt, not digits
LOOSE_GAP = 0.15  # of a digit's height: a loose stroke this close to it is part of it
SMALL = 0.25  # of the digits' typical ink: a mark with less, right beside a digit, is part of it
NEAR_GAP = 0.08  # of the digit's height: right beside it
MAX_DIGITS = 20  # more separate marks than this are text, a page or a pattern, not a number
MARGIN = 0.15  # of the photo's longer side: background added all round when a first look finds no marks,
CROWDED = 0.1  # if at least this fraction of the image is strokes,
CROWDED_INK = 0.35  # darker than this fraction of the paper's level (shade on a page is never as dark)


@dataclass
class Digit:
    """One digit found in the photo: its box (left, top, right, bottom) and its ink, 0 to 1, within that box."""

    box: tuple[int, int, int, int]
    ink: np.ndarray


@dataclass
class Pieces:
    """Connected pieces of ink, stored as horizontal runs of ink pixels labelled with the piece they belong to."""

    row: np.ndarray  # each run's row
    start: np.ndarray  # its first column
    end: np.ndarray  # one past its last column
    label: np.ndarray  # its piece, 0 to count - 1
    count: int
    strong: np.ndarray  # for each piece, whether any of its pixels is in the strong mask given to ``label``
    shape: tuple[int, int]  # the image's

    @cached_property
    def stats(self) -> tuple[np.ndarray, ...]:
        """Each piece's area in pixels, and its top, bottom (exclusive), left and right (exclusive) edges."""
        n, label = self.count, self.label
        area = np.bincount(label, weights=self.end - self.start, minlength=n)
        top, left = np.full(n, np.iinfo(np.int64).max), np.full(n, np.iinfo(np.int64).max)
        bottom, right = np.zeros(n, np.int64), np.zeros(n, np.int64)
        np.minimum.at(top, label, self.row)
        np.maximum.at(bottom, label, self.row + 1)
        np.minimum.at(left, label, self.start)
        np.maximum.at(right, label, self.end)
        return area, top, bottom, left, right

    def pixels(self, runs: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The flat index in the image of every pixel of the runs, run after run."""
        starts = self.row[runs] * self.shape[1] + self.start[runs]
        lengths = self.end[runs] - self.start[runs]
        # Each run's start plus 0, 1, ... up to the run's length.
        return np.repeat(starts, lengths) + np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)

    def paint(self, keep: np.ndarray) -> np.ndarray:
        """A boolean image of the pieces whose entry in ``keep`` (one per piece) is true."""
        mask = np.zeros(self.shape, dtype=bool)
        mask.reshape(-1)[self.pixels(keep[self.label])] = True
        return mask


class BlankImage(UserError):
    """No marks stand out from the background."""

    def __init__(self) -> None:
        super().__init__("the image is blank: it has no marks that stand out from the background")


def find_digits(grey: np.ndarray, single: bool = False) -> list[Digit]:
    """The digits in a photo's grey levels (0 black to 255 white), left to right; ``single``: all ink is one digit."""
    try:
        return find_in(grey, single)
    except BlankImage:
        # A digit cropped to its ink (a scan cut to the digit) leaves too little paper for the estimates of its
        # level and noise, which then take the strokes for paper: add a margin of the photo's own background all
        # round, as MNIST's digits have, and look again. Only then: on a blank page, the margin's edge against
        # shade would pass for a stroke.
        if not crowded(grey):
            raise
        ring = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
        width = max(2, round(MARGIN * max(grey.shape)))
        found = find_in(np.pad(grey, width, constant_values=np.median(ring)), single)
        height, side = grey.shape
        for digit in found:  # boxes back in the photo's own pixels
            left, top, right, bottom = (value - width for value in digit.box)
            digit.box = (max(left, 0), max(top, 0), min(right, side), min(bottom, height))
        return found


def crowded(grey: np.ndarray) -> bool:
    """Whether strokes far darker (lighter, for light ink) than the paper cover much of the image: a tight crop."""
    levels = 255 - grey if light_ink(grey) else grey
    return bool(np.mean(levels < CROWDED_INK * np.percentile(levels, 95)) >= CROWDED)


def find_in(grey: np.ndarray, single: bool) -> list[Digit]:
    """``find_digits``' work on the grey levels as they are."""
    ink = flatten(grey)
    strong = threshold(ink)
    # Hysteresis: strokes are the pieces of ink above half the threshold that reach the threshold somewhere, so
    # that grainy pencil and thin pen lines stay whole while the paper's noise stays out.
    pieces = label(ink >= strong / 2, ink >= strong)
    mask = drop_lines(pieces.paint(pieces.strong), ink)
    pieces = label(mask)
    keep = keep_pieces(pieces, ink)
    groups = group(pieces, keep, single)
    if len(groups) > MAX_DIGITS:
        raise UserError(
            f"the image holds {len(groups)} separate marks, more than a number of {MAX_DIGITS} digits: crop it to "
            f"the digits"
        )
    return [cut_out(ink, pieces, members) for members in groups]


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
    near = range(-closing, closing + 1)
    paper = np.max([shift(paper, dy, dx) for dy in near for dx in near], axis=0)
    paper = np.min([shift(paper, dy, dx) for dy in near for dx in near], axis=0)
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


def shift(grid: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The grid moved by (dy, dx) cells, continued beyond its edges as their slope goes (odd reflection).

    Continuing the slope, rather than repeating the edge, lets a closing keep light that falls off towards the
    photo's edge, such as a shadow's.
    """
    padded = np.pad(grid, CLOSING, mode="reflect", reflect_type="odd")
    return padded[CLOSING + dy : CLOSING + dy + grid.shape[0], CLOSING + dx : CLOSING + dx + grid.shape[1]]


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


def label(mask: np.ndarray, strong: np.ndarray | None = None) -> Pieces:
    """The connected pieces of a boolean image (8-connected), as labelled runs, and which hold ``strong`` pixels."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    flat = padded.ravel()
    changes = np.diff(flat)
    starts, ends = np.flatnonzero(changes == 1) + 1, np.flatnonzero(changes == -1) + 1
    # Positions in the padded image, one past each row's end: the padding keeps runs from spilling across rows.
    stride = width + 2
    # Runs of the next row that touch a run, diagonally included: their columns overlap with one to spare.
    first = np.searchsorted(ends - stride, starts, side="left")
    last = np.searchsorted(starts - stride, ends, side="right")
    touching = np.maximum(last - first, 0)
    upper = np.repeat(np.arange(starts.size), touching)
    lower = np.repeat(first, touching) + np.arange(touching.sum()) - np.repeat(np.cumsum(touching) - touching, touching)
    parent = connect(starts.size, upper, lower)
    _, labels = np.unique(parent, return_inverse=True)
    labels = labels.ravel()
    count = int(labels.max(initial=-1)) + 1
    if strong is None:
        has_strong = np.ones(count, dtype=bool)
    else:
        padded[:, 1:-1] = strong
        strong_before = np.concatenate([[0], np.cumsum(flat)])  # flat is a view of padded
        has_strong = np.bincount(labels, strong_before[ends] - strong_before[starts], minlength=count) > 0
    return Pieces(starts // stride, starts % stride - 1, (ends - 1) % stride, labels, count, has_strong, mask.shape)


def connect(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each of n nodes' representative, the same for nodes joined by the edges (a, b): union-find in whole arrays."""
    parent = np.arange(n)
    while True:
        pa, pb = parent[a], parent[b]
        if np.array_equal(pa, pb):
            return parent
        # Hook the larger root under the smaller, then halve the paths until every node points at its root.
        np.minimum.at(parent, np.maximum(pa, pb), np.minimum(pa, pb))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


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


def keep_pieces(pieces: Pieces, ink: np.ndarray) -> np.ndarray:
    """Which pieces may be parts of digits: not specks, shade along the photo's border, or remnants of lines."""
    area, top, bottom, left, right = pieces.stats
    lengths = pieces.end - pieces.start
    # Most rows of a digit cross a stroke, so a piece's typical run of ink is the width of its strokes.
    typical = per_piece(pieces.label, lengths, pieces.count, 50)
    long = np.maximum(bottom - top, right - left)
    keep = ~shade(pieces, typical)
    if keep.any():
        keep &= area >= SPECK * area[keep].max()
    if keep.any():
        # What is left of a faint line, or of a shadow's ragged edge, is fainter than the digits (the largest
        # pieces) and much thinner than their strokes: its runs of ink are short or, along a line, it is long
        # and thin.
        strength = per_piece(np.repeat(pieces.label, lengths), ink.ravel()[pieces.pixels()], pieces.count, 90)
        large = keep & (area >= LARGE * area[keep].max())
        stroke, dark = float(np.median(typical[large])), float(np.median(strength[large]))
        thin = (typical < THIN * stroke) | ((long >= FRAGMENT * area / long) & (area / long < THIN * stroke))
        keep &= ~(thin & (strength < FAINT_PIECE * dark))
    return keep


def shade(pieces: Pieces, typical: np.ndarray) -> np.ndarray:
    """Which pieces are shade at the photo's border: along it, or a band across the photo wider than strokes."""
    area, top, bottom, left, right = pieces.stats
    height, width = pieces.shape
    along_rows = ((top == 0) | (bottom == height)) & (right - left >= BORDER_SPAN * width)
    along_cols = ((left == 0) | (right == width)) & (bottom - top >= BORDER_SPAN * height)
    border = (top == 0) | (left == 0) | (bottom == height) | (right == width)
    candidate = along_rows | along_cols | (border & ((bottom - top) * (right - left) > BORDER_BLOT * height * width))
    others = ~candidate & (area >= SPECK * area[~candidate].max(initial=0))
    if not (candidate.any() and others.any()):
        return np.zeros_like(candidate)  # a tight crop of the digits: what touches the border is a digit
    # A digit cut by the photo's edge only touches it where its strokes cross it.
    lengths, count = pieces.end - pieces.start, pieces.count
    along = np.max(
        [
            np.bincount(pieces.label, weights=lengths * (pieces.row == 0), minlength=count) / width,
            np.bincount(pieces.label, weights=lengths * (pieces.row == height - 1), minlength=count) / width,
            np.bincount(pieces.label, weights=pieces.start == 0, minlength=count) / height,
            np.bincount(pieces.label, weights=pieces.end == width, minlength=count) / height,
        ],
        axis=0,
    )
    wide = area / np.maximum(bottom - top, right - left) > SHADOW * float(np.median(typical[others]))
    return candidate & ((along >= BORDER_SPAN) | wide)


def per_piece(labels: np.ndarray, values: np.ndarray, count: int, percentile: float) -> np.ndarray:
    """A percentile of the values within each of ``count`` pieces, given each value's piece."""
    order = np.lexsort((values, labels))
    counts = np.bincount(labels, minlength=count)
    first = np.cumsum(counts) - counts
    return values[order][first + (counts - 1) * percentile // 100]


def group(pieces: Pieces, keep: np.ndarray, single: bool) -> list[np.ndarray]:
    """The kept pieces gathered into digits, left to right: each digit is an array of its pieces' indices."""
    area, top, bottom, left, right = pieces.stats
    kept = np.flatnonzero(keep)
    if kept.size == 0:
        raise BlankImage()
    starts, ends = left[kept], right[kept]
    overlap = np.minimum(ends[:, None], ends[None, :]) - np.maximum(starts[:, None], starts[None, :])
    narrower = np.minimum((ends - starts)[:, None], (ends - starts)[None, :])
    # Pieces one above the other belong together even when they overlap less: a slanted digit, broken across.
    uppers, lowers = top[kept], bottom[kept]
    level = np.minimum(lowers[:, None], lowers[None, :]) - np.maximum(uppers[:, None], uppers[None, :])
    stacked = level < 0.5 * np.minimum((lowers - uppers)[:, None], (lowers - uppers)[None, :])
    together = (overlap >= OVERLAP * narrower) | (stacked & (overlap >= STACKED * narrower))
    roots = connect(kept.size, *np.nonzero(np.triu(together, 1)))
    groups = [kept[roots == root] for root in np.unique(roots)]
    box = np.array([(left[g].min(), top[g].min(), right[g].max(), bottom[g].max()) for g in groups])
    heights, ink = box[:, 3] - box[:, 1], np.array([area[g].sum() for g in groups])
    # The digits' height and ink are those of most of the ink: a mark joined to what is not a digit cannot make
    # the digits look small.
    order = np.argsort(heights)
    typical = heights[order][np.searchsorted(np.cumsum(ink[order]), ink.sum() / 2)]
    tall = heights >= LOOSE * typical
    # A stroke that came loose (a 5's bar) is much shorter than its digit, beside it or just off it; a dot or a
    # sliver right beside a digit has much less ink. Either joins the nearest digit level with it, if close.
    close = np.where(tall, NEAR_GAP, LOOSE_GAP)
    loose = ~tall | (ink < SMALL * np.median(ink[tall]))
    for mark in np.flatnonzero(loose)[np.argsort(ink[loose])]:
        level = ~loose & (box[:, 1] < box[mark, 3]) & (box[:, 3] > box[mark, 1])
        apart = np.maximum(0, np.maximum(box[:, 0] - box[mark, 2], box[mark, 0] - box[:, 2]))
        apart = np.where(level, apart, np.inf)
        nearest = int(np.argmin(apart))
        if apart[nearest] <= close[mark] * heights[nearest]:
            groups[nearest] = np.concatenate([groups[nearest], groups[mark]])
            tall[mark] = False
            heights[mark] = 0
    # The other short marks (dots, dashes, dirt) are not digits of the number.
    groups = [g for g, h in zip(groups, heights) if h >= LOOSE * typical]
    if single:
        return [np.concatenate(groups)]
    return sorted(groups, key=lambda g: left[g].min())


def cut_out(ink: np.ndarray, pieces: Pieces, members: np.ndarray) -> Digit:
    """A digit's box and its ink within it: its own pieces with their antialiased edges, nothing else."""
    _, top, bottom, left, right = pieces.stats
    box = (int(left[members].min()), int(top[members].min()), int(right[members].max()), int(bottom[members].max()))
    # A pixel more all round, and the mask widened by as much, bring the strokes' soft edges (below the
    # threshold) with them.
    height, width = pieces.shape
    rows = slice(max(box[1] - 1, 0), min(box[3] + 1, height))
    cols = slice(max(box[0] - 1, 0), min(box[2] + 1, width))
    keep = np.zeros(pieces.count, dtype=bool)
    keep[members] = True
    mask = pieces.paint(keep)[rows, cols]
    near = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
    strokes = ink[rows, cols]
    # The strokes' own level of ink is 1, however faint the pen.
    core = float(np.percentile(strokes[mask], 75))
    return Digit(box, np.clip(strokes / core, 0, 1) * near)
