"""Which generator serves which segmentation mix, and how many pairs each one samples.

A mix of N real images plus synthetic pairs may only use a generator (VQ-VAE + PixelCNN) trained
on those N real images, or the mix has in fact used more labelled images than it says. So there
is one generator per real-image count, shared by the mixes with that count. Kept free of torch:
the workflow plans its jobs with these functions.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputError


def generator_real_counts(mixes: dict[str, dict[str, Any]]) -> dict[str, int]:
    """For every mix with synthetic images, how many real images its generator is trained on.

    A mix's own ``generator_real`` where given, else its ``real`` count; a synthetic-only mix
    (``real`` 0) gets the largest real count of the mixes that use synthetic pairs. A mix with
    real images whose generator would see more of them than the mix itself raises
    :class:`InputError`.
    """
    mixed = [int(m.get("real", 0)) for m in mixes.values() if float(m.get("synthetic_images", 0))]
    largest = max(mixed, default=0)
    counts = {}
    for name, mix in mixes.items():
        if not float(mix.get("synthetic_images", 0)):
            continue
        real = int(mix.get("real", 0))
        count = int(mix.get("generator_real") or real or largest)
        if count < 1:
            raise InputError(f"config: segmentation.mixes.{name}: its generator needs real images")
        if real and count > real:
            raise InputError(
                f"config: segmentation.mixes.{name}: generator_real {count} is more than the "
                f"mix's {real} real images (the mix would use labels it does not count)"
            )
        counts[name] = count
    return counts


def pairs_per_generator(mixes: dict[str, dict[str, Any]], n: int) -> dict[int, int]:
    """Pairs each generator samples (keyed by its real-image count): ``n`` for the generator
    whose mixes ask for the most synthetic images, the others in proportion, rounded up (a
    generator for 2 real images serving mixes of up to 20 image-equivalents samples a quarter
    of what one serving 80 does)."""
    need: dict[int, float] = {}
    for name, count in generator_real_counts(mixes).items():
        need[count] = max(need.get(count, 0.0), float(mixes[name]["synthetic_images"]))
    most = max(need.values(), default=0.0)
    return {c: max(1, math.ceil(n * v / most)) for c, v in sorted(need.items())}
