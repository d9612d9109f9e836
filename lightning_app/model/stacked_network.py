"""A deeper network for higher accuracy: stacked small convolutions with batch normalisation, after An et al. 2020."""

from collections.abc import Sequence

from torch import Tensor, nn

from lightning_app.model.network import IMAGE_SIZE, NUM_CLASSES


class StackedCNN(nn.Module):
    """Convolutions without padding, each with batch normalisation and ReLU, some with max pooling; returns logits.

    An et al. ("An Ensemble of Simple Convolutional Neural Network Models for MNIST Digit Recognition", 2020) stack
    such convolutions without pooling (ten of 3x3 in their best model); pooling after some of them here keeps an
    epoch affordable on a CPU. The input is normalised images of shape (N, 1, 28, 28).

    Args:
        channels: Output channels of each convolution, first to last.
        kernel_size: The kernel size of every convolution: 3, 5 or 7 in An et al.
        pool_after: Which convolutions (counted from 1) a 2x2 max pooling follows.
        hidden_units: Width of the fully connected layer before the output layer; 0 for none.
        dropout: Dropout rate before the fully connected layers, in [0, 1).
    """

    def __init__(
        self,
        channels: Sequence[int] = (32, 32, 64, 64),
        kernel_size: int = 3,
        pool_after: Sequence[int] = (2, 4),
        hidden_units: int = 256,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a list of counts of at least 1 (got {list(channels)}).")
        if bad := [index for index in pool_after if not 1 <= index <= len(channels)]:
            raise ValueError(f"pool_after {bad}: count the convolutions from 1 to {len(channels)}.")
        if hidden_units < 0:
            raise ValueError(f"hidden_units must be 0 (none) or more (got {hidden_units}).")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout}).")
        layers: list[nn.Module] = []
        side, before = IMAGE_SIZE, 1
        for index, width in enumerate(channels, start=1):
            side -= kernel_size - 1
            if index in pool_after:
                side //= 2
            if side < 1:
                raise ValueError(
                    f"{index} convolutions of kernel_size {kernel_size} with pooling after {list(pool_after)} leave "
                    f"nothing of a {IMAGE_SIZE}x{IMAGE_SIZE} image: use fewer convolutions, a smaller kernel or "
                    f"less pooling."
                )
            layers += [nn.Conv2d(before, width, kernel_size, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            if index in pool_after:
                layers.append(nn.MaxPool2d(2))
            before = width
        self.features = nn.Sequential(*layers)
        flat = before * side * side
        head: list[nn.Module] = [nn.Flatten(), nn.Dropout(dropout)]
        if hidden_units:
            head += [nn.Linear(flat, hidden_units, bias=False), nn.BatchNorm1d(hidden_units), nn.ReLU()]
            flat = hidden_units
        self.classifier = nn.Sequential(*head, nn.Linear(flat, NUM_CLASSES))

    def forward(self, images: Tensor) -> Tensor:
        """Map normalised images of shape (N, 1, 28, 28) to class logits of shape (N, 10)."""
        return self.classifier(self.features(images))
