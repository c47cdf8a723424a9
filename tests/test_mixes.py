"""Which generator serves which segmentation mix: honest label counts."""

import pytest

from matgen.errors import InputError
from matgen.pipeline.mixes import generator_real_counts, pairs_per_generator

MIXES = {
    "real8": {"real": 8, "synthetic_images": 0},
    "real8_syn5x": {"real": 8, "synthetic_images": 40},
    "real8_syn10x": {"real": 8, "synthetic_images": 80},
    "real2": {"real": 2, "synthetic_images": 0},
    "real2_syn10x": {"real": 2, "synthetic_images": 20},
    "synthetic_only": {"real": 0, "synthetic_images": 80},
}


def test_each_mix_uses_a_generator_of_its_own_real_images():
    counts = generator_real_counts(MIXES)
    assert counts == {"real8_syn5x": 8, "real8_syn10x": 8, "real2_syn10x": 2, "synthetic_only": 8}
    # the generator of 2 real images samples what its largest mix needs: a quarter
    assert pairs_per_generator(MIXES, 320) == {2: 80, 8: 320}
    fewer = {**MIXES, "real8_syn1x_gen2": {"real": 8, "synthetic_images": 8, "generator_real": 2}}
    assert generator_real_counts(fewer)["real8_syn1x_gen2"] == 2


def test_a_generator_that_saw_more_real_images_than_its_mix_is_refused():
    bad = {"real2_syn5x": {"real": 2, "synthetic_images": 10, "generator_real": 8}}
    with pytest.raises(InputError, match="generator_real 8 is more than the mix's 2 real"):
        generator_real_counts(bad)
