"""Train a convolutional network on MNIST digits with PyTorch Lightning."""
