"""The fastest public MNIST-to-99% recipe, written in plain PyTorch from its description: the anchor for fast.yaml.

tuomaso/train_mnist_fast: conv 24@5x5, max-pool, ReLU, conv 32@3x3, max-pool, ReLU, fully connected 800 -> 256 -> 10;
Adam at 0.01 with betas (0.7, 0.9); one-cycle without momentum cycling; batch 256; one epoch over the 60,000 training
images, sliced directly from tensors (no DataLoader); then the 10,000 test images. Given this machine's bf16 (where
the CPU or GPU has it), channels-last and glibc's malloc settings, as the project gets.

    python benchmarks/recipe.py --data_dir ../shared/data --seed 0

Prints one JSON line: seed, test accuracy, training seconds (the loop over the epoch alone) and whole-process seconds.
"""

import argparse
import json
import time

START = time.time()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.datasets import MNIST  # noqa: E402


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 24, 5)
        self.conv2 = nn.Conv2d(24, 32, 3)
        self.fc1 = nn.Linear(800, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def load(data_dir: str, train: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = MNIST(data_dir, train=train)
    images = dataset.data.to(device).unsqueeze(1).float().div(255).sub(0.1307).div(0.3081)
    return images.contiguous(memory_format=torch.channels_last), dataset.targets.to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bf16", choices=["auto", "on", "off"], default="auto")
    options = parser.parse_args()

    from lightning_app.training.memory import keep_freed_memory

    keep_freed_memory()  # glibc's malloc set as the project's training sets it, so that both sides allocate alike
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if options.bf16 == "auto":
        from lightning_app.training.precision import default_precision

        bf16 = default_precision("auto") == "bf16-mixed"
    else:
        bf16 = options.bf16 == "on"
    torch.manual_seed(options.seed)
    train_x, train_y = load(options.data_dir, True, device)
    test_x, test_y = load(options.data_dir, False, device)
    model = Net().to(device, memory_format=torch.channels_last)
    batch = 256
    steps = -(-len(train_y) // batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.7, 0.9))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=steps, cycle_momentum=False)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    order = torch.randperm(len(train_y), device=device)
    model.train()
    for step in range(steps):
        index = order[step * batch : (step + 1) * batch]
        with autocast:
            loss = F.cross_entropy(model(train_x[index]), train_y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    training = time.perf_counter() - start

    model.eval()
    with torch.inference_mode(), autocast:
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in zip(test_x.split(2000), test_y.split(2000)))
    result = {"seed": options.seed, "test_acc": correct / len(test_y), "training_s": training}
    result["process_s"] = time.time() - START
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
