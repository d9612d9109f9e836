"""Train, evaluate and use a CNN for MNIST digits with PyTorch Lightning; the commands are this package's modules.

Runs made before the library moved into sub-packages name its classes by their old paths, in their ``config.yaml``
and in their checkpoints' hyperparameters (``lightning_app.network.MNISTCNN``, ...): each old module name is
imported as the module that now holds its classes, so that those runs still resume, evaluate and predict.
"""

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "augment": "data.augmentation",
    "checkpoint_io": "training.atomic_checkpoint_io",
    "checkpoints": "model.loading",
    "console": "training.console",
    "ensemble_module": "model.ensemble",
    "figures": "reports.figures_callback",
    "images": "photos.mnist_style",
    "loggers": "training.tensorboard_logger",
    "memory": "training.memory",
    "module": "model.classifier",
    "network": "model.network",
    "plots": "reports.drawing",
    "precision": "training.precision",
    "pruning": "search.pruning",
    "resume": "training.resume",
    "runs": "training.run_folder",
    "search_space": "search.space",
    "weights": "training.weights",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import ``lightning_app.<old name>`` as the module it moved to: the same module object, the same classes."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.partition(".")
        if package == __name__ and name in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(f"{__name__}.{MOVED[spec.name.partition('.')[2]]}")
        self.specs = {**getattr(self, "specs", {}), spec.name: module.__spec__}
        return module

    def exec_module(self, module):
        """Nothing to run: the module was imported under its new name, whose spec it keeps."""
        module.__spec__ = self.specs.get(module.__spec__.name, module.__spec__)


if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(MovedModules())
