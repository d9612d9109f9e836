"""Connected pieces of ink, kept as horizontal runs of pixels: labelling, and each piece's box and area."""

from dataclasses import dataclass
from functools import cached_property

import numpy as np


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
