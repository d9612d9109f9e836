"""The write-up's convolutional network as a plain PyTorch module, usable without Lightning."""

from torch import Tensor, nn

IMAGE_SIZE = 28
NUM_CLASSES = 10


class MNISTCNN(nn.Module):
    """Two conv layers with ReLU and max pooling, dropout, and two fully connected layers.

    The network returns logits; softmax is applied where probabilities are needed (prediction), because
    cross-entropy on logits is the numerically stable way to train it.

    Args:
        conv1_channels: Output channels of the first convolution.
        conv2_channels: Output channels of the second convolution.
        kernel_size: Kernel size of both convolutions (no padding).
        hidden_units: Width of the first fully connected layer.
        dropout: Dropout rate before the fully connected layers, in [0, 1).
    """

    def __init__(
        self,
        conv1_channels: int = 32,
        conv2_channels: int = 64,
        kernel_size: int = 5,
        hidden_units: int = 128,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        side = ((IMAGE_SIZE - kernel_size + 1) // 2 - kernel_size + 1) // 2
        if side < 1:
            raise ValueError(f"kernel_size={kernel_size} leaves nothing of a {IMAGE_SIZE}x{IMAGE_SIZE} image")
        self.features = nn.Sequential(
            nn.Conv2d(1, conv1_channels, kernel_size),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(conv1_channels, conv2_channels, kernel_size),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(conv2_channels * side * side, hidden_units),
            nn.ReLU(),
            nn.Linear(hidden_units, NUM_CLASSES),
        )

    def forward(self, images: Tensor) -> Tensor:
        """Map normalised images of shape (N, 1, 28, 28) to class logits of shape (N, 10)."""
        return self.classifier(self.features(images))
