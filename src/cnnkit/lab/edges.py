"""Edge detection by cross-correlation: the examples of seeds 003 and 004 (B6), recomputed.

003 (section 2.1): a 6x6 image whose top half is 1, the horizontal-edge kernel
``[[-1, -1, -1], [0, 0, 0], [1, 1, 1]]``; its comment says "strong response (±3) in the middle
rows, 0 in the uniform regions". 004 (section 2.2): a 6x8 image with a dark band in columns 2-5
and the kernel ``[1, -1]``, printed as a 6x7 output with 1 in column 1 and -1 in column 5.
Both are computed with :func:`cnnkit.reference.conv2d` (the loop method: 004's corr2d) and
printed the way the seeds print tensors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from cnnkit.reference import conv2d

SEED003_KERNEL = ((-1.0, -1.0, -1.0), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
SEED004_KERNEL = ((1.0, -1.0),)


def seed003_image() -> torch.Tensor:
    """003's test image: 6x6 zeros with the top three rows set to 1 ("top half bright")."""
    image = torch.zeros(6, 6)
    image[:3, :] = 1.0
    return image


def seed004_image() -> torch.Tensor:
    """004's 6x8 image: ones, with columns 2 to 5 set to 0 (a dark vertical band)."""
    image = torch.ones(6, 8)
    image[:, 2:6] = 0.0
    return image


@dataclass(frozen=True)
class EdgeExample:
    """One image, one kernel, their cross-correlation, and what the seed claims about it."""

    seed: str
    title: str
    image: list[list[float]]
    kernel: list[list[float]]
    output: list[list[float]]
    seed_claim: str
    note: str
    max_difference_from_torch: float

    @property
    def finding(self) -> str:
        """Where the response is non-zero, read from the output (not typed in)."""
        return describe_response(torch.tensor(self.output))


@dataclass(frozen=True)
class EdgesResult:
    examples: tuple[EdgeExample, ...]

    def to_dict(self) -> dict:
        return {"examples": [{**asdict(e), "finding": e.finding} for e in self.examples]}


def describe_response(output: torch.Tensor) -> str:
    """Name the rows (or columns) where a 2-D response is non-zero and the values there.

    A response that is the same in every row is read along a row (a vertical edge); one that
    is the same in every column is read down a column (a horizontal edge).
    """
    if bool((output == output[:1]).all()):
        axis, lines = "column", output[0]
    elif bool((output == output[:, :1]).all()):
        axis, lines = "row", output[:, 0]
    else:
        return f"{int((output != 0).sum())} non-zero values, not constant along rows or columns"
    values = lines.tolist()
    parts = [f"{axis} {i}: {v:g}" for i, v in enumerate(values) if v != 0]
    if not parts:
        return "0 everywhere"
    zero = sum(1 for v in values if v == 0)
    return ", ".join(parts) + f"; 0 in the other {zero} {axis}s"


def _example(
    seed: str, title: str, image: torch.Tensor, kernel: tuple, claim: str, note: str = ""
) -> EdgeExample:
    weight = torch.tensor(kernel)
    output = conv2d(image[None, None], weight[None, None], method="loop")[0, 0]
    expected = torch.nn.functional.conv2d(image[None, None], weight[None, None])[0, 0]
    return EdgeExample(
        seed=seed,
        title=title,
        image=image.tolist(),
        kernel=weight.tolist(),
        output=(output + 0.0).tolist(),
        seed_claim=claim,
        note=note,
        max_difference_from_torch=float((output - expected).abs().max()),
    )


def edges() -> EdgesResult:
    """Recompute 003's horizontal-edge and 004's vertical-edge examples (B6).

    The output is the cross-correlation ``Y[i, j] = sum_{a, b} K[a, b] X[i + a, j + b]`` (004),
    for 003 a 4x4 map (``6 - 3 + 1``), for 004 a 6x7 map (``8 - 2 + 1``).
    """
    return EdgesResult(
        (
            _example(
                "003",
                "horizontal-edge kernel on a 6x6 image whose top half is bright",
                seed003_image(),
                SEED003_KERNEL,
                "strong response (±3) in the middle rows, 0 in the uniform regions",
                "the kernel adds the row below and subtracts the row above, so a bright-above-"
                "dark edge gives -3 (never +3)",
            ),
            _example(
                "004",
                "kernel [1, -1] on the 6x8 image with a dark band in columns 2-5",
                seed004_image(),
                SEED004_KERNEL,
                "6x7 output with 1 in column 1 and -1 in column 5, 0 elsewhere",
            ),
        )
    )
