"""The write-up's convolutional network as a plain PyTorch module, usable without Lightning."""

from torch import Tensor, nn

IMAGE_SIZE = 28
NUM_CLASSES = 10


class MNISTCNN(nn.Module):
    """Two convolutions with max pooling and ReLU, dropout, and two fully connected layers; returns logits.

    Softmax is applied where probabilities are needed (prediction): cross-entropy on logits is the numerically
    stable way to train. The input is normalised images of shape (N, 1, 28, 28).

    Args:
        conv1_channels: Output channels of the first convolution.
        conv2_channels: Output channels of the second convolution.
        kernel_sizes: Kernel sizes of the first and second convolution (no padding).
        hidden_units: Width of the first fully connected layer.
        dropout: Dropout rate before the fully connected layers, in [0, 1).
        batch_norm: Batch normalisation after each convolution and the first fully connected layer (not in the
            write-up; it lets the higher-accuracy configs train faster).
    """

    def __init__(
        self,
        conv1_channels: int = 32,
        conv2_channels: int = 64,
        kernel_sizes: tuple[int, int] = (5, 5),
        hidden_units: int = 256,
        dropout: float = 0.5,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("conv1_channels", conv1_channels),
            ("conv2_channels", conv2_channels),
            ("hidden_units", hidden_units),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1 (got {value}).")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout}); the write-up uses 0.5.")
        first, second = kernel_sizes
        side = ((IMAGE_SIZE - first + 1) // 2 - second + 1) // 2
        if min(first, second) < 1 or side < 1:
            raise ValueError(
                f"kernel_sizes {list(kernel_sizes)} do not fit a {IMAGE_SIZE}x{IMAGE_SIZE} image (use sizes of 1 to 5)."
            )

        def conv_block(channels_in: int, channels_out: int, kernel_size: int) -> list[nn.Module]:
            norm = [nn.BatchNorm2d(channels_out)] if batch_norm else []
            conv = nn.Conv2d(channels_in, channels_out, kernel_size, bias=not batch_norm)
            # Pooling before ReLU gives the same result (ReLU is monotonic) on a quarter of the values.
            return [conv, *norm, nn.MaxPool2d(2), nn.ReLU()]

        self.features = nn.Sequential(
            *conv_block(1, conv1_channels, first), *conv_block(conv1_channels, conv2_channels, second)
        )
        norm = [nn.BatchNorm1d(hidden_units)] if batch_norm else []
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(conv2_channels * side * side, hidden_units, bias=not batch_norm),
            *norm,
            nn.ReLU(),
            nn.Linear(hidden_units, NUM_CLASSES),
        )

    def forward(self, images: Tensor) -> Tensor:
        """Map normalised images of shape (N, 1, 28, 28) to class logits of shape (N, 10)."""
        return self.classifier(self.features(images))
