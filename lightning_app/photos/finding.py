"""Find the handwritten digits in a photo, left to right: keep the strokes, drop dirt and shadows, group the rest."""

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from lightning_app.errors import UserError
from lightning_app.photos.ink import BlankImage, flatten, light_ink, threshold
from lightning_app.photos.pieces import Pieces, connect, label
from lightning_app.photos.ruled_lines import drop_lines

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
