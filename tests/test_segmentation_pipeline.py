"""Segmentation study stages: split, generator fit + sampling, U-Nets on mixes, summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from matgen.data.ingest import ingest_domain
from matgen.errors import InputError
from matgen.inference.segmentation import load_pixelcnn, segment
from matgen.pipeline import segmentation as seg
from matgen.synth.segmentation import CLASS_NAMES, simulate_segmentation
from matgen.train.segmentation import random_crops, train_segmenter

CLASSES = list(CLASS_NAMES)
SPLIT = {"n_test": 2, "seed": 0}


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    d = tmp_path_factory.mktemp("seg")
    sheet = simulate_segmentation(d / "raw", seed=1, n_images=6, size=32)
    ingest_domain(sheet, "micrograph", d / "i.npy", d / "m.npy", d / "t.csv", mask_classes=CLASSES)
    return d


def test_split_is_reproducible_and_test_uses_exact_masks(real):
    a = seg.load_real(real / "i.npy", real / "m.npy", real / "t.csv", SPLIT)
    b = seg.load_real(real / "i.npy", real / "m.npy", real / "t.csv", SPLIT)
    assert np.array_equal(a["test_index"], b["test_index"]) and len(a["test_index"]) == 2
    assert not set(a["train_index"]) & set(a["test_index"])
    # exact and annotated masks differ (the annotation moves edges and misses small objects)
    assert (a["test_exact"] != a["test_masks"]).any()
    with pytest.raises(InputError, match="split.n_test must leave some"):
        seg.load_real(real / "i.npy", real / "m.npy", real / "t.csv", {"n_test": 6, "seed": 0})


def test_random_crops_keep_image_and_mask_aligned():
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 3, (2, 20, 20))
    images = masks[:, None].astype(np.float32) / 2
    x, m = random_crops(images, masks, 16, 8, rng)
    assert x.shape == (16, 1, 8, 8) and m.shape == (16, 8, 8)
    assert np.array_equal(x[:, 0] * 2, m.astype(np.float32))
    with pytest.raises(InputError, match="crop 32 is larger"):
        random_crops(images, masks, 1, 32, rng)


@pytest.mark.parametrize("amp", [False, True])
def test_u_net_learns_an_easy_segmentation(amp, monkeypatch):
    import matgen.util

    # amp as where bfloat16 pays, so every machine runs the bfloat16 path
    monkeypatch.setattr(matgen.util, "cpu_bfloat16_pays", lambda: True)
    rng = np.random.default_rng(1)
    masks = (rng.random((4, 32, 32)) > 0.5).astype(np.int64)
    masks = np.repeat(np.repeat(masks[:, ::4, ::4], 4, 1), 4, 2)  # 4-px blocks
    images = 0.2 + 0.6 * masks[:, None] + 0.05 * rng.standard_normal((4, 1, 32, 32))
    images = images.astype(np.float32)
    model, losses = train_segmenter(
        (images, masks),
        (images[:0], masks[:0]),
        0.0,
        n_classes=2,
        seed=0,
        epochs=6,
        steps_per_epoch=10,
        batch_size=4,
        crop=16,
        width=4,
        depth=2,
        lr=5e-3,
        amp=amp,
        device="cpu",
    )
    assert losses[-1] < 0.5 * losses[0]
    pred = segment(model, images)
    assert pred.shape == (4, 32, 32) and (pred == masks).mean() > 0.95


def _discs_with_hand_drawn_masks(rng: np.random.Generator):
    """8 images of 32 px with three discs each; masks with each disc's boundary moved ±1 px."""
    from matgen.synth.segmentation import annotate_like_a_human

    yy, xx = np.mgrid[:32, :32]
    exact = np.zeros((8, 32, 32), np.int64)
    for e in exact:
        for _ in range(3):
            cy, cx, r = rng.uniform(4, 28), rng.uniform(4, 28), rng.uniform(2.5, 4)
            e[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    noisy = np.stack([annotate_like_a_human(e, rng, max_shift=1, min_area=1) for e in exact])
    noise = 0.05 * rng.standard_normal((8, 1, 32, 32))
    return (0.2 + 0.6 * exact[:, None] + noise).astype(np.float32), exact, noisy


@pytest.mark.parametrize(
    "calibrated, epochs, width, lr",
    [(False, 8, 4, 5e-3), (True, 20, 8, 1e-2)],
    ids=["short", "long"],
)
def test_the_u_net_decision_draws_rare_phases_at_their_true_area_under_noisy_boundaries(
    calibrated, epochs, width, lr
):
    """Hand-drawn masks: each disc's boundary moved ±1 px at random. The median-frequency
    weights (the rare discs ~5x) pull a weighted U-Net's boundary outwards; the logit-adjusted
    model is the same network with the head's bias shifted by -log w, close to the true area
    once its logits are calibrated (trained long enough) but not before (a sixth of it); the
    fraction-matched one is close either way."""
    from matgen.train.segmentation import class_weights

    images, exact, noisy = _discs_with_hand_drawn_masks(np.random.default_rng(3))
    kw = dict(n_classes=2, seed=0, epochs=epochs, steps_per_epoch=10, batch_size=8, crop=16,
              width=width, depth=2, lr=lr, device="cpu")  # fmt: skip
    empty = (images[:0], noisy[:0])
    nets = {d: train_segmenter((images, noisy), empty, 0.0, decision=d, **kw)[0]
            for d in ("weighted", "logit_adjusted", "fraction_matched")}  # fmt: skip
    w = class_weights([noisy], 2)
    assert w[1] > 3 * w[0]
    for name, p in nets["weighted"].state_dict().items():  # one network, the head's bias aside
        q = nets["logit_adjusted"].state_dict()[name]
        expected = p - torch.log(torch.from_numpy(w)) if name == "head.bias" else p
        assert torch.allclose(q, expected, atol=1e-6), name
    area = {d: (segment(net, images) == 1).mean() / exact.mean() for d, net in nets.items()}
    assert area["weighted"] > 1.3
    assert abs(area["fraction_matched"] - 1) < 0.1
    if calibrated:
        assert abs(area["logit_adjusted"] - 1) < 0.1
    else:
        assert area["logit_adjusted"] < 0.5
    with pytest.raises(InputError, match="decision 'best'"):
        train_segmenter((images, noisy), empty, 0.0, decision="best", **kw)


@pytest.mark.parametrize("encoder_mask", ["all", "phases", "none"])
def test_a_vqvae_trains_on_masks_with_unlabelled_pixels(encoder_mask, tmp_path):
    """Hand-drawn masks may leave pixels unlabelled (255): the encoder reads them as class 0,
    the loss leaves them out, in every encoder mode."""
    from matgen.train.segmentation import train_vqvae

    images, exact, noisy = _discs_with_hand_drawn_masks(np.random.default_rng(4))
    masks = noisy.copy()
    masks[:, :4] = 255
    summary = train_vqvae(images, masks, tmp_path / "vq.pt", tmp_path / "vq.csv", n_classes=3,
                          epochs=1, steps_per_epoch=2, batch_size=4, crop=16, width=8, n_res=0,
                          embed_dim=4, n_codes=8, downsample=2, encoder_mask=encoder_mask,
                          show_progress=False)  # fmt: skip
    assert summary["epochs"] == 1
    assert np.isfinite(pd.read_csv(tmp_path / "vq.csv")["mask_ce"]).all()


def test_class_fractions_are_matched_over_the_parts_by_their_shares():
    """Two parts drawn at shares 3/4 and 1/4: the shift makes the argmax fractions the
    share-weighted label fractions; unlabelled pixels count for neither."""
    from matgen.train.segmentation import match_class_fractions

    class Logits(torch.nn.Module):  # the image is the logit of class 1; class 0 at 0
        depth = 0  # no pooling: any size

        def __init__(self) -> None:
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.zeros_like(x), x], 1)

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2, 4, 1, 32, 32)).astype(np.float32)
    masks = np.zeros((2, 4, 32, 32), np.int64)
    masks[0].reshape(-1)[: masks[0].size // 5] = 1  # part 0: 20 % class 1
    masks[1].reshape(-1)[: masks[1].size // 2] = 1  # part 1: 50 %
    masks[1, 0, 0] = 255  # unlabelled
    shift = match_class_fractions(Logits(), [(0.75, x[0], masks[0]), (0.25, x[1], masks[1])])
    drawn = [((x[k, :, 0] + float(shift[1] - shift[0])) > 0).mean() for k in (0, 1)]
    assert 0.75 * drawn[0] + 0.25 * drawn[1] == pytest.approx(0.75 * 0.2 + 0.25 * 0.5, abs=0.01)
    # a U-Net of two poolings on 30-px images (padded as when it segments)
    from matgen.models.unet import UNet

    net = UNet(1, 2, 4, 2).eval()
    assert match_class_fractions(
        net, [(1.0, x[0][:, :, :30, :30], masks[0][:, :30, :30])]
    ).shape == (2,)


def test_first_argmax_is_the_argmax_over_classes_ties_to_the_first():
    """The class-major argmax of the fraction matching picks what argmax over a trailing class
    axis picks, ties included (logits rounded to quarters tie often)."""
    from matgen.train.segmentation import first_argmax

    scores = torch.round(torch.randn(3, 5000, generator=torch.Generator().manual_seed(0)) * 4) / 4
    shift = torch.tensor([0.25, 0.0, -0.5])
    expected = (scores.T + shift).argmax(1)
    assert torch.equal(first_argmax(scores, shift), expected)
    assert (scores.T + shift).eq((scores.T + shift).max(1, keepdim=True).values).sum(1).gt(1).any()


def test_generator_chain_and_mix_training(real, tmp_path):
    kw_vq = dict(
        seed=0,
        epochs=2,
        steps_per_epoch=3,
        batch_size=4,
        crop=16,
        width=8,
        n_res=1,
        embed_dim=4,
        n_codes=8,
        downsample=4,
        device="cpu",
        show_progress=False,
    )
    seg.fit_vqvae(
        real / "i.npy",
        real / "m.npy",
        real / "t.csv",
        tmp_path / "vq.pt",
        tmp_path / "vq.csv",
        classes=CLASSES,
        split=SPLIT,
        **kw_vq,
    )
    log = pd.read_csv(tmp_path / "vq.csv")
    assert list(log.columns[:6]) == [
        "step",
        "mse",
        "mask_ce",
        "commitment",
        "perplexity",
        "codes_used",
    ]
    seg.fit_pixelcnn(
        tmp_path / "vq.pt",
        real / "i.npy",
        real / "m.npy",
        real / "t.csv",
        tmp_path / "px.pt",
        tmp_path / "px.csv",
        split=SPLIT,
        seed=0,
        epochs=2,
        steps_per_epoch=3,
        batch_size=4,
        window=4,
        dim=8,
        n_layers=2,
        device="cpu",
        show_progress=False,
    )
    out = tmp_path / "syn"
    seg.sample_pairs(
        tmp_path / "vq.pt",
        tmp_path / "px.pt",
        out / "i.npy",
        out / "m.npy",
        out / "t.csv",
        n=10,
        seed=3,
        batch_size=4,
        device="cpu",
    )
    images, masks = np.load(out / "i.npy"), np.load(out / "m.npy")
    assert images.shape == (10, 1, 16, 16) and masks.shape == (10, 16, 16)
    assert masks.max() < len(CLASSES) and (out / "pairs" / "mask_0003.png").exists()
    again = tmp_path / "again"
    seg.sample_pairs(
        tmp_path / "vq.pt",
        tmp_path / "px.pt",
        again / "i.npy",
        again / "m.npy",
        again / "t.csv",
        n=10,
        seed=3,
        batch_size=4,
        device="cpu",
    )
    assert np.array_equal(np.load(again / "m.npy"), masks)  # seeded
    # the convolutional prior draws maps larger than its 4-code training windows
    wide = tmp_path / "wide"
    kw = dict(n=3, seed=3, device="cpu")
    seg.sample_pairs(tmp_path / "vq.pt", tmp_path / "px.pt", wide / "i.npy", wide / "m.npy",
                     wide / "t.csv", size=32, **kw)  # fmt: skip
    assert np.load(wide / "i.npy").shape == (3, 1, 32, 32)
    with pytest.raises(InputError, match="sample size 30 px is not a multiple of the code size 4"):
        seg.sample_pairs(tmp_path / "vq.pt", tmp_path / "px.pt", wide / "i.npy",
                         wide / "m.npy", wide / "t.csv", size=30, **kw)  # fmt: skip
    # a prior conditioned on class fractions: the count maps in its file, each map's
    # (calibrated) condition in the pairs' table
    px = dict(seed=0, epochs=1, steps_per_epoch=2, batch_size=4, window=4, dim=8, n_layers=2,
              device="cpu", show_progress=False)  # fmt: skip
    seg.fit_pixelcnn(tmp_path / "vq.pt", real / "i.npy", real / "m.npy", real / "t.csv",
                     tmp_path / "pc.pt", tmp_path / "pc.csv", split=SPLIT,
                     condition_on_fractions=True, **px)  # fmt: skip
    cond = tmp_path / "cond"
    seg.sample_pairs(tmp_path / "vq.pt", tmp_path / "pc.pt", cond / "i.npy", cond / "m.npy",
                     cond / "t.csv", calibration_rounds=1, calibration_maps=4, **kw)  # fmt: skip
    table = pd.read_csv(cond / "t.csv")
    asked = table[[f"condition_{c}" for c in range(len(CLASSES))]].to_numpy()
    assert asked.shape == (3, len(CLASSES)) and np.allclose(asked.sum(1), 1, atol=1e-5)
    # a two-level prior: the phases' layout (every class but the pores) in 8-px cells first
    two = dict(px, condition_on_fractions=True, class_map_window=2, class_map_batch_size=4)
    seg.fit_pixelcnn(tmp_path / "vq.pt", real / "i.npy", real / "m.npy", real / "t.csv",
                     tmp_path / "tl.pt", tmp_path / "tl.csv", split=SPLIT, class_map_px=8,
                     **two)  # fmt: skip
    prior, _, _ = load_pixelcnn(tmp_path / "tl.pt")
    assert prior.cell == 2 and prior.top.n_codes == len(CLASSES) - 1
    assert prior.n_cond == len(CLASSES)  # both levels conditioned on all the fractions
    seg.sample_pairs(tmp_path / "vq.pt", tmp_path / "tl.pt", two_out := tmp_path / "two" / "i.npy",
                     tmp_path / "two" / "m.npy", tmp_path / "two" / "t.csv",
                     calibration_rounds=1, calibration_maps=4, **kw)  # fmt: skip
    assert np.load(two_out).shape == (3, 1, 16, 16)
    # the class map may also mark the pores' centres: a class of its own over the phases
    seg.fit_pixelcnn(tmp_path / "vq.pt", real / "i.npy", real / "m.npy", real / "t.csv",
                     tmp_path / "pm.pt", tmp_path / "pm.csv", split=SPLIT, class_map_px=8,
                     class_map_pore_centres=True, **two)  # fmt: skip
    assert load_pixelcnn(tmp_path / "pm.pt")[0].top.n_codes == len(CLASSES)
    # and a pore map on the code grid drawn between the class map and the codes
    seg.fit_pixelcnn(tmp_path / "vq.pt", real / "i.npy", real / "m.npy", real / "t.csv",
                     tmp_path / "po.pt", tmp_path / "po.csv", split=SPLIT, class_map_px=8,
                     class_map_pore_centres=True, class_map_pore_sizes=[3.0, 6.0],
                     pore_map=True, pore_map_dim=4, map_context=2, **two)  # fmt: skip
    prior = load_pixelcnn(tmp_path / "po.pt")[0]
    assert prior.pores.n_codes == 2 and prior.bottom.n_cond_map == len(CLASSES) + 4
    assert prior.top.n_codes == len(CLASSES) + 2  # the phases and three pore-size marks
    assert prior.bottom.map_net is not None and prior.top.map_net is None
    assert "pore_map_nll" in pd.read_csv(tmp_path / "po.csv").columns
    seg.sample_pairs(tmp_path / "vq.pt", tmp_path / "po.pt", tmp_path / "po" / "i.npy",
                     tmp_path / "po" / "m.npy", tmp_path / "po" / "t.csv",
                     calibration_rounds=1, calibration_maps=4,
                     level_temperature=dict(pores=0.7, codes=0.7), **kw)  # fmt: skip
    assert np.load(tmp_path / "po" / "m.npy").shape == (3, 16, 16)
    with pytest.raises(InputError, match="px.pt: sample.level_temperature is for a prior drawn"):
        seg.sample_pairs(tmp_path / "vq.pt", tmp_path / "px.pt", wide / "i.npy",
                         wide / "m.npy", wide / "t.csv", level_temperature=dict(codes=0.7),
                         **kw)  # fmt: skip
    for extra, message in (
        (dict(pore_map=True), "4-px codes would make 2\\^16 symbols"),
        ({}, "pore_map_pixels is a kind of pore map"),
    ):
        with pytest.raises(InputError, match=message):
            seg.fit_pixelcnn(tmp_path / "vq.pt", real / "i.npy", real / "m.npy", real / "t.csv",
                             tmp_path / "bad.pt", tmp_path / "bad.csv", split=SPLIT,
                             class_map_px=8, class_map_pore_centres=True, pore_map_pixels=True,
                             **extra, **two)  # fmt: skip
    with pytest.raises(InputError, match="class_map_pore_sizes split the pore centres' marks"):
        seg.fit_pixelcnn(tmp_path / "vq.pt", real / "i.npy", real / "m.npy", real / "t.csv",
                         tmp_path / "bad.pt", tmp_path / "bad.csv", split=SPLIT, class_map_px=8,
                         class_map_pore_sizes=[3.0], **two)  # fmt: skip
    for key in ("class_map_pore_centres", "pore_map"):
        with pytest.raises(InputError, match=f"{key} .* set class_map_px > 0"):
            seg.fit_pixelcnn(tmp_path / "vq.pt", real / "i.npy", real / "m.npy", real / "t.csv",
                             tmp_path / "bad.pt", tmp_path / "bad.csv", split=SPLIT,
                             **{key: True}, **two)  # fmt: skip
    with pytest.raises(InputError, match="class_map_px 6 is not a multiple of the VQ-VAE's 4-px"):
        seg.fit_pixelcnn(tmp_path / "vq.pt", real / "i.npy", real / "m.npy", real / "t.csv",
                         tmp_path / "bad.pt", tmp_path / "bad.csv", split=SPLIT, class_map_px=6,
                         **two)  # fmt: skip
    unet = dict(epochs=1, steps_per_epoch=2, batch_size=4, crop=16, width=4, depth=2, device="cpu")
    scores = seg.train_mix(
        real / "i.npy",
        real / "m.npy",
        real / "t.csv",
        out / "i.npy",
        out / "m.npy",
        tmp_path / "s.csv",
        tmp_path / "u.pt",
        mix_name="mix",
        mix={"real": 2, "synthetic_images": 1},
        seeds=[0, 1],
        classes=CLASSES,
        split=SPLIT,
        **unet,
    )
    assert list(scores.seed) == [0, 1] and scores.synthetic_share.eq(1 / 3).all()
    assert scores.epochs.eq(unet["epochs"]).all()
    short = seg.train_mix(
        real / "i.npy", real / "m.npy", real / "t.csv", None, None, tmp_path / "s2.csv",
        tmp_path / "u2.pt", mix_name="short", mix={"real": 2, "synthetic_images": 0, "epochs": 2},
        seeds=[0], classes=CLASSES, split=SPLIT, **unet,
    )  # fmt: skip
    assert short.epochs.eq(2).all()  # the mix's own budget replaces unet.epochs
    assert scores[["miou", "miou_present"]].apply(lambda c: c.between(0, 1)).all().all()
    with pytest.raises(InputError, match="needs 40 synthetic pairs"):
        seg.train_mix(
            real / "i.npy",
            real / "m.npy",
            real / "t.csv",
            out / "i.npy",
            out / "m.npy",
            tmp_path / "s.csv",
            tmp_path / "u.pt",
            mix_name="big",
            mix={"real": 1, "synthetic_images": 10},
            seeds=[0],
            classes=CLASSES,
            split=SPLIT,
            **unet,
        )
    with pytest.raises(InputError, match="5 real images asked for, the training split has 4"):
        seg.train_mix(
            real / "i.npy",
            real / "m.npy",
            real / "t.csv",
            out / "i.npy",
            out / "m.npy",
            tmp_path / "s.csv",
            tmp_path / "u.pt",
            mix_name="many",
            mix={"real": 5, "synthetic_images": 0},
            seeds=[0],
            classes=CLASSES,
            split=SPLIT,
            **unet,
        )
    checks = seg.generator_checks(
        tmp_path / "vq.pt",
        real / "i.npy",
        real / "m.npy",
        real / "t.csv",
        out / "i.npy",
        out / "m.npy",
        tmp_path / "u.pt",
        tmp_path / "c.csv",
        tmp_path / "curves.npz",
        classes=CLASSES,
        split=SPLIT,
        device="cpu",
    )
    values = checks.set_index("check")["value"]
    assert 0 <= values["vqvae_reconstruction_mask_miou"] <= 1
    assert 0 <= values["generated_mask_image_agreement_miou"] <= 1
    # the reference: the same judge on the real annotated pairs; the ratio is of the two
    assert 0 < values["real_mask_image_agreement_miou"] <= 1
    assert values["generated_over_real_agreement"] == pytest.approx(
        values["generated_mask_image_agreement_miou"] / values["real_mask_image_agreement_miou"]
    )
    assert values["power_spectrum_max_abs_log10_ratio"] >= 0
    with np.load(tmp_path / "curves.npz") as curves:
        assert curves["real_power"].shape == curves["synthetic_power"].shape


def test_summary_averages_seeds_and_answers_the_few_real_question(tmp_path):
    rows = []
    for mix, real, syn, scores in (
        ("r8", 8, 0, [0.80, 0.82]),
        ("r2", 2, 0, [0.60, 0.64]),
        ("r2s", 2, 10, [0.70, 0.72]),
        ("r2_short", 2, 0, [0.70, 0.74]),  # real only at another budget: above r2s
        ("syn", 0, 8, [0.5, 0.5]),
    ):
        for seed, s in enumerate(scores):
            rows.append(
                dict(
                    mix=mix,
                    seed=seed,
                    real=real,
                    synthetic_images=syn,
                    synthetic_share=syn / (real + syn),
                    miou=s - 0.1,
                    miou_present=s,
                )
            )
    files = []
    for mix, group in pd.DataFrame(rows).groupby("mix", sort=False):
        group.to_csv(tmp_path / f"{mix}.csv", index=False)
        files.append(tmp_path / f"{mix}.csv")
    summary = seg.summarise_mixes(files, tmp_path / "runs.csv", tmp_path / "summary.csv")
    s = summary.set_index("mix")
    assert s.loc["r2", "miou_present_mean"] == pytest.approx(0.62)
    assert s.loc["r2", "miou_present_std"] == pytest.approx(np.std([0.60, 0.64], ddof=1))
    # r2s beats r2 but not r2_short: compared with the best real-only budget, it does not
    assert s.loc["r2s", "beats_real_only_at_fewest_real"] == False  # noqa: E712
    assert np.isnan(s.loc["r8", "beats_real_only_at_fewest_real"])
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 10


def test_miou_figure_marks_a_real_only_mix_at_another_budget(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from matgen.figures import segmentation as figures

    summary = pd.DataFrame(
        [
            dict(mix=m, real=r, synthetic_images=n, synthetic_share=n / (r + n), epochs=e,
                 exact_masks=False, miou_mean=v, miou_std=0.01, miou_present_mean=v,
                 miou_present_std=0.01, n_seeds=3)
            for m, r, n, e, v in [("r2", 2, 0, 10, 0.80), ("r2s", 2, 10, 10, 0.85),
                                  ("r2_short", 2, 0, 5, 0.83), ("r8", 8, 0, 10, 0.84)]
        ]
    )  # fmt: skip
    summary.to_csv(tmp_path / "summary.csv", index=False)
    drawn = {}
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: drawn.update(fig=fig))
    figures.miou_figure(tmp_path / "summary.csv", tmp_path / "miou.png")
    ax = drawn["fig"].axes[0]
    lines = {c.get_label(): c.lines[0] for c in ax.containers}  # each errorbar's data line
    assert list(lines) == ["2 real images, 5 epochs", "2 real images", "8 real images"]
    short, plain = lines["2 real images, 5 epochs"], lines["2 real images"]
    assert short.get_color() == plain.get_color() != lines["8 real images"].get_color()
    assert short.get_markerfacecolor() == "none" and short.get_marker() == "D"
    assert short.get_xdata()[0] < 0 == plain.get_xdata()[0]  # beside its line, not on it
    plt.close(drawn["fig"])
    tables = []  # the runs table gets a column of each mix's U-Net epochs
    monkeypatch.setattr(figures, "draw_table", lambda ax, cells, header, **kw: tables.append(
        dict(zip(header, zip(*cells)))))  # fmt: skip
    figures.runs_table_figure(tmp_path / "summary.csv", tmp_path / "runs.png")
    assert tables[0]["U-Net\nepochs"] == ("10", "10", "5", "10")


def test_cli_segment_writes_label_maps_and_class_fractions(real, tmp_path, capsys):
    from matgen.checkpoint import save_checkpoint
    from matgen.cli import main
    from matgen.models.unet import UNet

    cfg = dict(in_ch=1, out_ch=3, width=4, depth=2)
    save_checkpoint(
        tmp_path / "u.pt",
        step=1,
        model_config=cfg,
        include_rng=False,
        family="segmenter",
        model=UNet(**cfg).state_dict(),
        classes=CLASSES,
    )
    image = real / "raw" / "micrograph_000.png"
    assert (
        main(
            [
                "segment",
                str(tmp_path / "u.pt"),
                str(image),
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "out" / "class_fractions.csv")
    assert list(table.columns) == [
        "image",
        "fraction_matrix",
        "fraction_second_phase",
        "fraction_pore",
    ]
    assert table.iloc[0, 1:].sum() == pytest.approx(1.0)
    assert (tmp_path / "out" / "micrograph_000_labels.png").exists()
    assert (
        main(["segment", str(tmp_path / "vq.pt"), str(image), "--out", str(tmp_path / "o2")]) == 2
    )
    assert "vq.pt: checkpoint not found" in capsys.readouterr().err


def test_fields_of_view_part_the_two_mious_where_a_class_is_absent():
    from matgen.pipeline.segmentation import fields_of_view, score_segmentation

    truth = np.zeros((1, 4, 8), np.int64)
    truth[0, :, :4] = 1  # left field: all class 1; right field: all class 0
    pred = truth.copy()
    pred[0, 0, 7] = 2  # one stray pixel of class 2 in the right field
    fields = fields_of_view(truth, 4)
    assert fields.shape == (2, 4, 4) and (fields[0] == 1).all() and (fields[1] == 0).all()
    whole = score_segmentation(pred, truth, ["a", "b", "c"])
    # whole image: classes 0, 1 present; 2 predicted once -> mIoU (15/16 + 1 + 0) / 3
    assert whole["miou"] == pytest.approx((15 / 16 + 1 + 0) / 3)
    assert whole["miou_present"] == pytest.approx((15 / 16 + 1) / 2)
    per_field = score_segmentation(pred, truth, ["a", "b", "c"], field_of_view=4)
    # left field perfect (1.0 both); right field: mIoU (15/16 + 0) / 2, customised 15/16
    assert per_field["miou"] == pytest.approx((1 + (15 / 16) / 2) / 2)
    assert per_field["miou_present"] == pytest.approx((1 + 15 / 16) / 2)
    with pytest.raises(InputError, match="field_of_view 16 px is larger"):
        fields_of_view(truth, 16)


def _pairs(rng, n, noise, stretch=1.0):
    """n 32-px grey images of two phases with one round (or stretched) pore each, and masks."""
    yy, xx = np.mgrid[:32, :32]
    images, masks = [], []
    for _ in range(n):
        m = np.zeros((32, 32), np.uint8)
        cy, cx = rng.uniform(10, 22, 2)
        m[((yy - cy) / stretch) ** 2 + ((xx - cx) * stretch) ** 2 <= 16] = 2
        images.append(np.where(m == 2, 0.1, 0.6) + noise * rng.normal(size=m.shape))
        masks.append(m)
    return np.asarray(images, np.float32)[:, None], np.asarray(masks)


def _blocks(x):
    """Every 4 images (N, ..., 32, 32) as one 64-px image of 2 x 2 blocks."""
    x = x.reshape(-1, 2, 2, *x.shape[1:])
    return np.concatenate(np.concatenate(list(np.moveaxis(x, (1, 2), (0, 1))), -2), -1)


def test_pair_realism_catches_missing_noise_and_elongated_pores():
    rng = np.random.default_rng(0)
    real_x, real_m = _pairs(rng, 256, 0.05)
    real_x, real_m = _blocks(real_x), _blocks(real_m)  # 64-px real images, cut back to 32
    same = seg.pair_realism(real_x, real_m, *_pairs(rng, 256, 0.05), pore_class=2)[0]
    same = {r["check"]: r for r in same}
    assert same["power_spectrum_max_abs_log10_ratio"]["value"] < 0.1
    assert same["pore_aspect_ratio_generated_over_real"]["value"] == pytest.approx(1, abs=0.02)
    assert same["pore_equivalent_diameter_ks"]["met"]
    assert all(r["met"] for r in same.values() if r["target"])
    smooth, curves = seg.pair_realism(real_x, real_m, *_pairs(rng, 256, 0.0), pore_class=2)
    smooth = {r["check"]: r for r in smooth}
    assert not smooth["power_spectrum_max_abs_log10_ratio"]["met"]  # no pixel noise:
    assert curves["synthetic_power"][-1] < 0.7 * curves["real_power"][-1]  # less at Nyquist
    long, curves = seg.pair_realism(real_x, real_m, *_pairs(rng, 256, 0.05, 2.0), pore_class=2)
    long = {r["check"]: r for r in long}
    assert long["pore_aspect_ratio_generated_over_real"]["value"] < 0.5  # 4:1 ellipses
    assert not long["pore_aspect_ratio_generated_over_real"]["met"]
    assert curves["generated_pore_aspect_ratio"].mean() < 0.5
    assert curves["real_power"].shape == (16,)  # real images cut to the generated size
    # a second phase grown over a third of every generated mask: its area fraction is off
    grown_x, grown_m = _pairs(rng, 256, 0.05)
    grown_m[:, :11][grown_m[:, :11] == 0] = 1
    grown = {r["check"]: r for r in seg.pair_realism(real_x, real_m, grown_x, grown_m, 2)[0]}
    gap = same["phase_fraction_max_abs_difference"]
    assert gap["met"] and gap["value"] < 0.01
    assert grown["phase_fraction_max_abs_difference"]["value"] > 0.25
    assert not grown["phase_fraction_max_abs_difference"]["met"]


def test_pair_realism_tells_thin_second_phase_from_broad_patches():
    """The same second-phase area fraction (1/4) drawn as a 16-px square in each 32-px field
    (real, and generated alike) or as 1-px stripes every 4 px (generated): stripes have about 8
    times the interface per phase area (2 edges per px of width against 4 sides of 16 px over
    256 px)."""
    rng = np.random.default_rng(1)
    real_m = np.zeros((4, 64, 64), np.uint8)
    for y in (8, 40):
        for x in (8, 40):
            real_m[:, y : y + 16, x : x + 16] = 1
    real_x = rng.normal(0.5, 0.05, (4, 1, 64, 64)).astype(np.float32)
    syn_x = rng.normal(0.5, 0.05, (16, 1, 32, 32)).astype(np.float32)
    squares = np.zeros((16, 32, 32), np.uint8)
    squares[:, 8:24, 8:24] = 1
    stripes = np.zeros((16, 32, 32), np.uint8)
    stripes[:, :, ::4] = 1
    key = "phase_interface_per_area_max_abs_ratio_minus_1"
    like = {r["check"]: r for r in seg.pair_realism(real_x, real_m, syn_x, squares, 2)[0]}
    thin = {r["check"]: r for r in seg.pair_realism(real_x, real_m, syn_x, stripes, 2)[0]}
    assert like[key]["met"] and like[key]["value"] == pytest.approx(0, abs=1e-9)
    assert thin[key]["value"] > 3 and not thin[key]["met"]
    assert thin["phase_fraction_max_abs_difference"]["met"]  # the fractions do not see it


class _OneHotDecoder:
    """A VQ-VAE stand-in for the calibration tests: code c decodes to class c (two classes)."""

    def decode_codes(self, codes):
        import torch

        return None, torch.nn.functional.one_hot(codes, 2).permute(0, 3, 1, 2).float()


def test_calibration_leaves_a_faithful_prior_alone_whatever_windows_the_pilots_draw():
    """A prior that draws exactly the fraction asked needs no shift. The pilots' windows differ
    (a quarter or three quarters of class 1), so 64 random ones average 0.5 only to about
    ±0.03; each batch's conditions are centred on the real fractions, so no round measures
    that draw and the shift stays at 0 (uncentred, it took the windows' error)."""
    import torch

    from matgen.inference.segmentation import calibrated_fraction_shift

    class FaithfulPrior:
        def sample(self, n, shape, temperature, generator, cond):
            ones = torch.round(cond[:, 1].clamp(0, 1) * shape[0] * shape[1]).long()
            flat = torch.arange(shape[0] * shape[1])[None, :] < ones[:, None]
            return flat.long().reshape(n, *shape)

    counts = np.zeros((4, 2, 8, 8), np.uint16)
    counts[:2, 0], counts[:2, 1] = 3, 1  # class 1: a quarter of two images, three quarters of two
    counts[2:, 0], counts[2:, 1] = 1, 3
    for seed in range(3):
        shift = calibrated_fraction_shift(
            FaithfulPrior(), _OneHotDecoder(), counts, 8, rounds=3, maps=64, seed=seed
        )
        assert np.abs(shift).max() < 0.01


def test_calibration_shifts_a_drifting_prior_onto_the_real_fractions():
    """A prior that draws class 1 at 0.2 below the fraction asked (the free-running drift):
    the pilot batches find the shift that brings its masks to the real maps' fraction."""
    import torch

    from matgen.inference.segmentation import calibrated_fraction_shift

    class DriftingPrior:
        def sample(self, n, shape, temperature, generator, cond):
            p = (cond[:, 1] - 0.2).clamp(0, 1)[:, None, None].expand(n, *shape)
            return torch.bernoulli(p, generator=generator).long()

    counts = np.zeros((4, 2, 8, 8), np.uint16)
    counts[:, 0], counts[:, 1] = 3, 1  # a quarter of each code's pixels in class 1
    kw = dict(maps=64, seed=0)
    shift = calibrated_fraction_shift(DriftingPrior(), _OneHotDecoder(), counts, 8, rounds=3, **kw)
    assert shift[1] == pytest.approx(0.2, abs=0.02)
    assert calibrated_fraction_shift(DriftingPrior(), _OneHotDecoder(), counts, 8, rounds=0, **kw)[
        1
    ] == pytest.approx(0)


def test_reconstruction_miou_scores_what_the_codes_encode():
    """A VQ-VAE that encodes the phases alone is judged on them (its pores, drawn from the
    image, may differ from the hand-drawn ones); one that encodes no mask is not judged."""
    from types import SimpleNamespace

    from matgen.metrics.segmentation import miou
    from matgen.pipeline.segmentation import reconstruction_miou

    annotated = np.zeros((1, 16, 16), np.int64)
    annotated[0, :, 8:] = 1
    annotated[0, 3:6, 2:5] = 2  # a pore in the matrix
    annotated[0, 0, 0] = 255  # unlabelled
    predicted = torch.from_numpy(np.where(annotated == 255, 0, annotated))
    predicted[0, 2:7, 1:6] = 2  # the same pore drawn larger
    plain = miou(predicted.numpy(), annotated, 3, 255)
    assert plain < 0.95
    assert (
        reconstruction_miou(SimpleNamespace(encoder_mask="all"), predicted, annotated, 3) == plain
    )
    assert reconstruction_miou(SimpleNamespace(encoder_mask="phases"), predicted, annotated, 3) == 1
    predicted[0, :, 7] = 1  # the phases' edge moved a pixel
    assert reconstruction_miou(SimpleNamespace(encoder_mask="phases"), predicted, annotated, 3) < 1
    assert np.isnan(
        reconstruction_miou(SimpleNamespace(encoder_mask="none"), predicted, annotated, 3)
    )
