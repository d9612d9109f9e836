"""The answer for an image's digits: the number read, each digit with its probability, runner-up and box."""

from torch import Tensor


def top_two(probabilities: Tensor) -> dict[str, int | float]:
    """The most likely digit and the runner-up, with their probabilities."""
    values, digits = probabilities.topk(2)
    return {
        "digit": int(digits[0]),
        "probability": round(float(values[0]), 4),
        "runner_up": int(digits[1]),
        "runner_up_probability": round(float(values[1]), 4),
    }


def answer(probabilities: Tensor, boxes: list[tuple[int, int, int, int]]) -> dict:
    """One image's answer: the number its digits make, each digit with its box, and for one digit its fields."""
    digits = [{**top_two(p), "box": list(box)} for p, box in zip(probabilities, boxes)]
    single = {key: value for key, value in digits[0].items() if key != "box"} if len(digits) == 1 else {}
    return {**single, "number": "".join(str(digit["digit"]) for digit in digits), "digits": digits}


def format_line(result: dict) -> str:
    """One image's result as a line of text."""
    if "error" in result:
        return f"{result['file']}: error: {result['error']}"
    if "digit" in result:
        return (
            f"{result['file']}: {result['digit']} ({result['probability']:.1%})  "
            f"runner-up {result['runner_up']} ({result['runner_up_probability']:.1%})"
        )
    each = ", ".join(f"{digit['digit']} ({digit['probability']:.1%})" for digit in result["digits"])
    return f"{result['file']}: {result['number']}  digits {each}"
