"""Embedded multi-phase micrographs: phases, imperfect annotation, files and sheet."""

import numpy as np
import pandas as pd

from matgen.io import read_image
from matgen.metrics.segmentation import iou_per_class, miou_present_classes
from matgen.synth.segmentation import (
    annotate_like_a_human,
    multiphase_labels,
    render_micrograph,
    simulate_segmentation,
)


def test_three_phases_with_the_requested_fraction_and_distinct_grey_levels():
    rng = np.random.default_rng(0)
    labels = multiphase_labels(128, rng, second_phase_fraction=0.3)
    fractions = np.bincount(labels.ravel(), minlength=3) / labels.size
    assert set(np.unique(labels)) == {0, 1, 2}
    assert 0.2 < fractions[1] < 0.32 and 0.01 < fractions[2] < 0.2  # pores cover some phase 1
    image = render_micrograph(labels, rng)
    means = [image[labels == c].mean() for c in range(3)]
    assert means[2] < means[0] < means[1]  # pores dark, second phase bright
    # a global threshold cannot separate matrix and second phase exactly (gradient, noise, blur)
    cut = (means[0] + means[1]) / 2
    assert 0.02 < np.mean((image > cut) != (labels == 1)) < 0.3


def test_annotation_moves_edges_and_misses_small_objects_but_stays_close():
    rng = np.random.default_rng(1)
    labels = multiphase_labels(128, rng)
    annotated = annotate_like_a_human(labels, rng, max_shift=2, min_area=12)
    assert (annotated != labels).mean() > 0.01  # imperfect ...
    assert miou_present_classes(annotated, labels, 3) > 0.6  # ... but a fair annotation
    tiny = np.zeros((32, 32), int)
    tiny[5:7, 5:7] = 2  # a 4-px inclusion: missed by the annotator
    tiny[15:25, 15:25] = 1
    out = annotate_like_a_human(tiny, rng, max_shift=0)
    assert (out[5:7, 5:7] == 0).all() and iou_per_class(out, tiny, 3)[1] == 1.0


def test_simulation_writes_images_both_masks_and_a_sheet(tmp_path):
    sheet = simulate_segmentation(tmp_path, seed=2, n_images=3, size=64)
    table = pd.read_csv(sheet, sep="\t")
    assert list(table.columns) == [
        "path",
        "domain",
        "pixel_size",
        "sample",
        "mask",
        "label_exact_mask",
    ]
    image = read_image(tmp_path / table.path[0])
    mask = read_image(tmp_path / table["mask"][0])
    exact = read_image(tmp_path / table.label_exact_mask[0])
    assert image.shape == mask.shape == exact.shape == (64, 64)
    assert set(np.unique(exact)) <= {0, 1, 2} and not np.array_equal(mask, exact)


def test_ingest_checks_mask_classes(tmp_path):
    import pytest

    from matgen.data.ingest import ingest_domain
    from matgen.errors import InputError
    from matgen.io import save_image

    sheet = simulate_segmentation(tmp_path, seed=3, n_images=2, size=32)
    out = [tmp_path / "i.npy", tmp_path / "m.npy", tmp_path / "t.csv"]
    names = ["matrix", "second_phase", "pore"]
    ingest_domain(sheet, "micrograph", *out, mask_classes=names)
    assert np.load(out[1]).max() <= 2
    with pytest.raises(InputError, match="class 'extra' occurs in none of the masks"):
        ingest_domain(sheet, "micrograph", *out, mask_classes=names + ["extra"])
    save_image(tmp_path / "micrograph_001_mask.png", np.full((32, 32), 7, np.uint8))
    with pytest.raises(InputError, match=r"micrograph_001_mask.png: mask value 7 is not a class"):
        ingest_domain(sheet, "micrograph", *out, mask_classes=names)
    save_image(tmp_path / "micrograph_001_mask.png", np.zeros((16, 32), np.uint8))
    with pytest.raises(InputError, match=r"micrograph_001_mask.png: mask shape \(16, 32\) differs"):
        ingest_domain(sheet, "micrograph", *out, mask_classes=names)
