"""Export a trained model for other runtimes: ``python -m lightning_app.export --ckpt_path best --format onnx
--output mnist.onnx``.

The file holds the network with its input normalisation and softmax inside: float images ``(N, 1, 28, 28)`` in
[0, 1] (bright ink on black, as MNIST's) give ``(N, 10)`` probabilities, with any N.
"""

import argparse
import os
import tempfile
import warnings
from pathlib import Path

from lightning_app.errors import UserError, first_line, report_user_errors
from lightning_app.training import run_folder

FORMATS = ("onnx", "torchscript")

INPUT, OUTPUT = "images", "probabilities"  # the names of the exported graph's input and output


def parse_args(args: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m lightning_app.export",
        description="Write a trained checkpoint as an ONNX or TorchScript file with its normalisation inside.",
    )
    run_folder.add_checkpoint_options(parser)
    parser.add_argument("--format", default="onnx", help="onnx (the default) or torchscript.")
    parser.add_argument("--output", required=True, help="The file to write, e.g. mnist.onnx or mnist.pt.")
    options = parser.parse_args(args)
    if options.format not in FORMATS:
        raise UserError(f"--format {options.format}: pass onnx or torchscript.")
    return options


def check_output(path: Path) -> None:
    """Refuse an output that cannot be written, before the model is loaded."""
    if path.is_dir():
        raise UserError(f"--output {path} is a folder: pass a file name, e.g. {path / 'mnist.onnx'}.")
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"--output {path}: the folder {folder} does not exist. Create it or pass another path.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"--output {path}: the folder {folder} is not writable. Pass a path in a folder you can write.")


def write(model, file_format: str, path: Path) -> None:
    """Write the exportable model to ``path`` through a temporary file, so that a failed export leaves nothing."""
    import torch

    example = torch.rand(2, 1, 28, 28)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes the file private; the export is an ordinary file
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript-based exporters' deprecation notices
            if file_format == "onnx":
                import onnx

                # The TorchScript-based exporter: the torch.export-based one needs the onnxscript package too.
                torch.onnx.export(
                    model,
                    (example,),
                    temporary,
                    input_names=[INPUT],
                    output_names=[OUTPUT],
                    dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                    opset_version=17,
                    dynamo=False,
                )
                onnx.checker.check_model(temporary)
            else:
                torch.jit.save(torch.jit.trace(model, example), temporary)
        os.replace(temporary, path)
    except OSError as err:
        raise UserError(f"--output {path}: cannot write it ({err.strerror or err}).") from None
    except Exception as err:  # the exporters raise many types for a network they cannot trace
        raise UserError(f"the model cannot be exported as {file_format}: {first_line(err)}") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@report_user_errors
def main(args: list[str] | None = None) -> Path:
    """Export the checkpoint(s) and return the path written."""
    options = parse_args(args)
    output = Path(options.output)
    check_output(output)
    from lightning_app.model.exportable import Exportable
    from lightning_app.model.loading import load_model

    paths = run_folder.checkpoint_files(options)
    model = Exportable(load_model(paths, "cpu"))
    write(model, options.format, output)
    print(
        f"Wrote {output} ({options.format}): input '{INPUT}' float (N, 1, 28, 28) in [0, 1], bright ink on black; "
        f"output '{OUTPUT}' (N, 10).",
        flush=True,
    )
    return output


if __name__ == "__main__":
    main()
