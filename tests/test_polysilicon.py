"""Polysilicon study: grain physics, ingestion checks, conditional models and their judges."""

import numpy as np
import pandas as pd
import pytest
import torch

from matgen.data.conditions import Conditioning, held_out_split, load_labelled
from matgen.data.ingest import ingest_domain
from matgen.errors import InputError
from matgen.io import save_image
from matgen.metrics.distributions import frechet_distance
from matgen.models.cnn import MicrostructureCNN
from matgen.models.dcgan import ConditionalDiscriminator
from matgen.models.tessellation import (
    TessellationGenerator,
    TessellationVAE,
    offset_nonuniformity,
    render_tessellation,
)
from matgen.pipeline.polysilicon import evaluate_samples, latent_traversal, sample_conditional
from matgen.synth.polysilicon import (
    directional_modulus,
    e11_of_image,
    grain_boundaries,
    grain_count,
    grey_to_psi,
    homogenised_e11,
    psi_to_grey,
    render_microstructure,
    simulate_polysilicon,
    voronoi_grains,
)
from matgen.train.conditional import train_evaluator, train_vae
from matgen.train.loop import TrainingRun

CLASSES = ["2um", "3um", "5um", "10um"]
# a seed decoder for 32-px test images: 8 x 8 cells of 4 px, nuclei looked for 3 cells away
TINY_DECODER = dict(
    latent_dim=3, local_channels=8, grid=8, seeds_per_cell=2, window=3, width=8, depth=2
)


def test_single_crystal_moduli_of_silicon():
    c11, c12 = 165.7, 63.9
    s11 = (c11 + c12) / ((c11 - c12) * (c11 + 2 * c12))
    assert directional_modulus([1, 0, 0]) == pytest.approx(1 / s11) == pytest.approx(130.1, abs=0.1)
    assert directional_modulus([1, 1, 0]) == pytest.approx(169.1, abs=0.1)
    assert directional_modulus([1, 1, 1]) == pytest.approx(187.9, abs=0.1)
    # an isotropic "cubic" crystal (C44 = (C11 - C12) / 2) has one modulus in every direction
    iso = directional_modulus(np.random.default_rng(0).normal(size=(20, 3)), 200, 100, 50)
    assert np.allclose(iso, 100 * 400 / 300)


def test_fibre_texture_moduli_and_bounds():
    # x = [001] at psi 0 and [1-10] at psi 90 for a <110> fibre along z
    assert homogenised_e11([0.0])["hill"] == pytest.approx(130.13, abs=0.01)
    assert homogenised_e11([90.0])["hill"] == pytest.approx(169.10, abs=0.01)
    one = homogenised_e11([33.0])
    assert one["voigt"] == pytest.approx(one["reuss"])  # one grain: no averaging
    psi = np.random.default_rng(1).uniform(0, 180, 40)
    e = homogenised_e11(psi, np.random.default_rng(2).uniform(1, 5, 40))
    assert e["reuss"] < e["hill"] < e["voigt"]
    assert 130 < e["reuss"] and e["voigt"] < 188


def test_orientation_reads_back_from_the_image():
    psi = np.array([0.0, 10.0, 95.0, 179.0])
    assert np.allclose(grey_to_psi(psi_to_grey(psi)), psi)
    rng = np.random.default_rng(3)
    labels = voronoi_grains(64, 25, rng)
    psi = rng.uniform(0, 180, 25)
    truth = homogenised_e11(psi, np.bincount(labels.ravel(), minlength=25))["hill"]
    image = np.round(render_microstructure(labels, psi, 0.01, rng) * 255) / 255  # 8-bit PNG
    assert e11_of_image(image)["hill"] == pytest.approx(truth, abs=0.5)
    assert grain_count(image) >= 25  # grains cut by the (periodic) image border count twice
    assert np.isnan(e11_of_image(np.zeros((16, 16)))["hill"])  # blank image: no grains


def test_embedded_generator_writes_classes_with_more_grains_for_larger_rves(tmp_path):
    sheet = simulate_polysilicon(
        tmp_path,
        seed=0,
        images_per_class=[4, 4, 4, 4],
        rve_sizes_um=[2, 3, 5, 10],
        image_size=32,
        grain_size_um=0.8,
    )
    table = pd.read_csv(sheet, sep="\t")
    assert list(table["class"].unique()) == CLASSES and len(table) == 16
    grains = table.groupby("class", sort=False).label_grains.mean()
    assert grains.is_monotonic_increasing and grains["10um"] > 10 * grains["2um"]
    assert (table.label_e11_reuss <= table.e11 + 1e-9).all()
    assert (table.e11 <= table.label_e11_voigt + 1e-9).all()
    assert table.pixel_size.tolist()[:4] == [2 / 32] * 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("poly")
    sheet = simulate_polysilicon(
        root / "raw",
        seed=1,
        images_per_class=[12, 12, 12, 12],
        rve_sizes_um=[2, 3, 5, 10],
        image_size=32,
        grain_size_um=0.8,
    )
    ingest_domain(
        sheet,
        "grains",
        root / "images.npy",
        root / "masks.npy",
        root / "table.csv",
        uniform_pixel_size=False,
        classes=CLASSES,
        require_e11=True,
    )
    return root


def test_ingest_names_the_row_of_a_bad_class_missing_e11_or_odd_size(dataset, tmp_path):
    sheet = pd.read_csv(dataset / "raw/samples.tsv", sep="\t")
    sheet["path"] = [str(dataset / "raw" / p) for p in sheet.path]
    bad = sheet.copy()
    bad.loc[5, "class"] = "7um"
    bad.to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    out = [tmp_path / "i.npy", tmp_path / "m.npy", tmp_path / "t.csv"]
    with pytest.raises(InputError, match=r"a.tsv: row 7: class '7um' is not one of"):
        ingest_domain(tmp_path / "a.tsv", "grains", *out, uniform_pixel_size=False, classes=CLASSES)
    bad = sheet.copy()
    bad.loc[3, "e11"] = np.nan
    bad.to_csv(tmp_path / "b.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"b.tsv: row 5: e11 is missing"):
        ingest_domain(
            tmp_path / "b.tsv", "grains", *out, uniform_pixel_size=False, require_e11=True
        )
    bad = sheet.astype({"e11": object})
    bad.loc[2, "e11"] = "stiff"
    bad.to_csv(tmp_path / "c.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"row 4: e11 'stiff' is not a number"):
        ingest_domain(tmp_path / "c.tsv", "grains", *out, uniform_pixel_size=False)
    save_image(tmp_path / "big.png", np.zeros((40, 40), np.uint8))
    bad = sheet.copy()
    bad.loc[6, "path"] = str(tmp_path / "big.png")
    bad.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"d.tsv: row 8: .*big.png: shape \(40, 40\) differs"):
        ingest_domain(tmp_path / "d.tsv", "grains", *out, uniform_pixel_size=False)
    assert not out[0].exists()


def test_conditioning_and_stratified_split(dataset):
    data = load_labelled(dataset / "images.npy", dataset / "table.csv", CLASSES)
    cond = Conditioning(tuple(CLASSES), 160.0, 5.0)
    c = cond.encode(np.array([0, 3]), np.array([165.0, 150.0]))
    assert c.tolist() == [[1, 0, 0, 0, 1.0], [0, 0, 0, 1, -2.0]]
    train, test = held_out_split(len(data.images), 0.25, 0, data.class_index)
    assert len(test) == 12 and np.bincount(data.class_index[test]).tolist() == [3, 3, 3, 3]
    assert not set(train) & set(test)
    with pytest.raises(InputError, match="class 'x' is not one of"):
        cond.class_index(["x"])


def test_model_shapes():
    x, c = torch.rand(3, 1, 32, 32), torch.rand(3, 5)
    vae = TessellationVAE(32, 1, 5, **TINY_DECODER)
    recon, (mu_u, lv_u), (mu_z, lv_z) = vae(x, c)
    assert recon.shape == x.shape and mu_u.shape == lv_u.shape == (3, 8, 8, 8)
    assert mu_z.shape == lv_z.shape == (3, 3)
    G = TessellationGenerator(32, 1, 5, **TINY_DECODER)
    assert G.local_shape == (8, 8, 8)
    fake = G(torch.randn(3, 3), torch.randn(3, 8, 8, 8), c)
    assert fake.shape == x.shape and 0 <= fake.min() and fake.max() <= 1
    with pytest.raises(ValueError, match="local_channels 4 < 4 × seeds_per_cell"):
        TessellationGenerator(32, 1, 5, **{**TINY_DECODER, "local_channels": 4})
    assert ConditionalDiscriminator(32, 1, 5, 8)(x, c).shape == (3,)

    def convs(d):
        return [m.kernel_size[0] for m in d.features if isinstance(m, torch.nn.Conv2d)]

    assert convs(ConditionalDiscriminator(32, 1, 5, 8)) == [3, 4] * 3
    assert convs(ConditionalDiscriminator(32, 1, 5, 8, refine_scales=1)) == [3, 4, 4, 4]
    D = ConditionalDiscriminator(32, 1, 5, 8, projection=True).eval()
    with torch.no_grad():  # projection term: <V c, sum of the last feature maps>
        h = D.features(torch.cat([x, c[:, :, None, None].expand(-1, -1, 32, 32)], 1))
        plain = D.out(h.flatten(1)).squeeze(1)
        assert torch.allclose(D(x, c) - plain, (D.embed(c) * h.sum((2, 3))).sum(1), atol=1e-5)
        assert torch.allclose(
            D(x, torch.zeros_like(c)),
            D.out(D.features(torch.cat([x, torch.zeros(3, 5, 32, 32)], 1)).flatten(1)).squeeze(1),
        )
    logits, pred, feats = MicrostructureCNN(4, 1, 8)(x)
    assert logits.shape == (3, 4) and pred.shape == (3,) and feats.shape[0] == 3


def _nuclei(n_images: int, grid: int, seed: int, presence: float = 0.0) -> torch.Tensor:
    """Random candidate nuclei (N, 2, 5, G, G): positions, presence and grey logits."""
    g = torch.Generator().manual_seed(seed)
    seeds = torch.randn(n_images, 2, 5, grid, grid, generator=g) * 1.7
    seeds[:, :, 4] = presence
    return seeds


def test_renderer_draws_the_periodic_voronoi_tessellation_of_the_present_nuclei():
    from scipy.spatial import cKDTree

    seeds = _nuclei(1, 16, 0)
    image = render_tessellation(seeds, 64, 4, torch.zeros(()), torch.tensor(0.05), 4.0)[0, 0]
    s = seeds[0]
    present = (s[:, 2] > 0).numpy()
    corner = np.arange(16) * 4.0
    ys = (corner[:, None] + torch.sigmoid(s[:, 0]).numpy() * 4)[present]
    xs = (corner[None, :] + torch.sigmoid(s[:, 1]).numpy() * 4)[present]
    yy, xx = np.mgrid[:64, :64] + 0.5
    _, labels = cKDTree(np.stack([ys, xs], 1), boxsize=64).query(
        np.stack([yy.ravel(), xx.ravel()], 1)
    )
    labels = labels.reshape(64, 64)
    grey = torch.sigmoid(s[:, 3]).numpy()[present][labels]
    truth = np.where(grain_boundaries(labels), 0.05, grey)
    # every pixel, boundaries included: closed boundaries, one grey level per grain
    assert np.abs(image.numpy() - truth).max() < 1e-6


def test_presence_gradient_thins_out_nuclei_towards_a_coarse_microstructure():
    # dense nuclei fitted to a 12-grain image: the presence estimate switches most of them off
    # (a soft tessellation alone leaves the count where it started)
    rng = np.random.default_rng(0)
    labels = voronoi_grains(32, 12, rng)
    target = torch.from_numpy(render_microstructure(labels, rng.uniform(0, 180, 12), 0.0, rng))
    seeds = _nuclei(1, 8, 1, presence=1.0)
    noise = seeds[:, :, 2].clone()
    params = seeds.clone().requires_grad_()
    opt = torch.optim.Adam([params], lr=0.2)
    losses, counts = [], []
    for _ in range(80):
        live = torch.cat([params[:, :, :2], (params[:, :, 4] + noise)[:, :, None]], 2)
        live = torch.cat([live, params[:, :, 3:]], 2)
        image = render_tessellation(live, 32, 3, torch.zeros(()), torch.tensor(0.05), 4.0)
        loss = (image[0, 0] - target.float()).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        counts.append(int((live[:, :, 2] > 0).sum()))
    assert counts[0] > 80 and 6 <= counts[-1] <= 24  # of 128 candidates; the image has 12
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])


def test_grain_density_penalty_is_zero_in_the_real_spread_and_pulls_outliers_back():
    from matgen.train.conditional import _GrainDensity

    rng = np.random.default_rng(3)
    real, classes = [], []
    for k, n in enumerate((12, 40)):  # two classes: ~12 and ~40 grains per 32-px image
        for _ in range(12):
            labels = voronoi_grains(32, int(rng.poisson(n)), rng)
            real.append(render_microstructure(labels, rng.uniform(0, 90, labels.max() + 1), 0, rng))
            classes.append(k)
    density = _GrainDensity(np.asarray(real)[:, None], np.asarray(classes), 2, tolerance=2.0)
    assert float(density.mu[1] - density.mu[0]) == pytest.approx(np.log(40 / 12), abs=0.35)

    def penalty(presence_logit: float, k: int):
        seeds = _nuclei(6, 8, 1, presence_logit)  # 128 candidates per image
        noise = torch.randn(seeds[:, :, 2].shape, generator=torch.Generator().manual_seed(0))
        seeds[:, :, 2] = seeds[:, :, 4] + noise * 1.7
        seeds.requires_grad_(True)
        maps = render_tessellation(seeds, 32, 3, torch.zeros(()), torch.tensor(0.05), 4.0)
        loss = density.penalty(maps, seeds, torch.full((6,), k))
        loss.backward()
        return float(loss.detach()), float(seeds.grad[:, :, 4].sum())

    # ~40 of 128 candidates present: class-1 maps with about the real count pay (almost) nothing
    # (the maps' nucleus positions are seeded; this draw: typical 0.005, crowded 0.055, sparse 1.06)
    typical = penalty(-0.85, 1)[0]
    assert typical < 0.01
    crowded, grad = penalty(-0.85, 0)  # the same maps as class 0 (~16 grains): too many
    assert crowded > 10 * typical and crowded > 0.05 and grad > 0  # descent lowers presence
    sparse, grad = penalty(-4.0, 1)  # ~2 nuclei where class 1 has ~40
    assert sparse > 100 * typical and sparse > 0.05 and grad < 0  # descent raises them
    # a map drawn empty (no presence logit near 0) still has a gradient towards more nuclei
    empty, grad = penalty(-12.0, 0)
    assert empty > 0.05 and grad < -1e-3


def test_grain_density_class_mean_term_pulls_a_class_whose_maps_all_sit_low_in_the_band():
    from matgen.train.conditional import _GrainDensity

    rng = np.random.default_rng(4)
    real, classes = [], []
    for k, n in enumerate((12, 40)):
        for _ in range(12):
            labels = voronoi_grains(32, int(rng.poisson(n)), rng)
            real.append(render_microstructure(labels, rng.uniform(0, 90, labels.max() + 1), 0, rng))
            classes.append(k)
    images, classes = np.asarray(real)[:, None], np.asarray(classes)
    # a band of 5 sd: maps with ~0.7x the real class-1 count pay nothing for the band itself
    plain = _GrainDensity(images, classes, 2, tolerance=5.0)
    pulled = _GrainDensity(images, classes, 2, tolerance=5.0, class_mean=1.0, momentum=0.5)

    def penalty(density: _GrainDensity):
        seeds = _nuclei(6, 8, 1, -1.6)  # ~27 of 128 candidates present, where class 1 has ~40
        noise = torch.randn(seeds[:, :, 2].shape, generator=torch.Generator().manual_seed(0))
        seeds[:, :, 2] = seeds[:, :, 4] + noise * 1.7
        seeds.requires_grad_(True)
        maps = render_tessellation(seeds, 32, 3, torch.zeros(()), torch.tensor(0.05), 4.0)
        loss = density.penalty(maps, seeds, torch.full((6,), 1))
        loss.backward()
        return float(loss.detach()), float(seeds.grad[:, :, 4].sum())

    assert penalty(plain) == (0.0, 0.0)
    first, grad_first = penalty(pulled)
    for _ in range(4):  # the same low maps batch after batch: the running mean sinks to them
        last, grad_last = penalty(pulled)
    drift = float(pulled.running[1] - pulled.mu[1])
    assert -0.7 < drift < -0.15 and float(pulled.running[0]) == float(pulled.mu[0])
    assert last == pytest.approx(drift**2, rel=1e-5) and last > first > 0
    assert grad_last < grad_first < 0  # descent raises the presence logits, more as it persists
    # the running means travel in the resume checkpoint
    restored = _GrainDensity(images, classes, 2, tolerance=5.0, class_mean=1.0, momentum=0.5)
    restored.load_state_dict(pulled.state_dict())
    assert torch.equal(restored.running, pulled.running)


def test_offset_nonuniformity_tells_random_nuclei_from_a_lattice_and_spreads_it():
    def logits(offsets: torch.Tensor) -> torch.Tensor:  # (N, m, 2, G, G) in (0, 1) -> seeds
        seeds = torch.zeros(offsets.shape[0], offsets.shape[1], 5, *offsets.shape[-2:])
        seeds[:, :, :2] = torch.logit(offsets)
        seeds[:, :, 2] = 1.0  # all present
        return seeds

    g = torch.Generator().manual_seed(0)
    random = offset_nonuniformity(logits(torch.rand(8, 2, 2, 16, 16, generator=g) * 0.98 + 0.01))
    lattice = logits(torch.full((8, 2, 2, 16, 16), 0.4))
    assert float(random) < 0.002
    # equal offsets: 1/12-ish for the offsets, 1/3 for each neighbour-difference set
    assert float(offset_nonuniformity(lattice)) == pytest.approx(2 * 0.0933 + 2 / 3, abs=0.01)
    rows = torch.rand(8, 2, 2, 16, 16, generator=g) * 0.98 + 0.01
    rows[:, :, 0] = rows[:, :1, 0, :, :1]  # one y offset per row of cells: straight rows
    assert float(offset_nonuniformity(logits(rows))) > 50 * float(random)
    jitter = lattice + 0.3 * torch.randn(lattice.shape, generator=g)
    jitter[:, :, 2] = 1.0
    before = float(offset_nonuniformity(jitter))
    jitter.requires_grad_(True)
    opt = torch.optim.Adam([jitter], lr=0.1)
    for _ in range(30):
        opt.zero_grad()
        offset_nonuniformity(jitter).backward()
        opt.step()
    assert float(offset_nonuniformity(jitter.detach())) < 0.3 * before  # descent spreads the nuclei
    absent = logits(torch.full((2, 2, 2, 4, 4), 0.4))
    absent[:, :, 2] = -1.0  # no nucleus present: nothing to judge
    assert float(offset_nonuniformity(absent)) == 0.0


def test_frechet_distance():
    a = np.random.default_rng(0).normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    assert frechet_distance(a, a + [2.0, 0, 0]) == pytest.approx(4.0, rel=1e-6)


def test_vae_learns_and_resumes_bit_identically(dataset, tmp_path, monkeypatch):
    kw = dict(
        classes=CLASSES,
        seed=2,
        epochs=4,
        batch_size=8,
        decoder=TINY_DECODER,
        device="cpu",
        show_progress=False,
    )
    paths = (dataset / "images.npy", dataset / "table.csv")
    train_vae(*paths, tmp_path / "a.pt", tmp_path / "a.csv", **kw)
    log = pd.read_csv(tmp_path / "a.csv")
    assert log.reconstruction.iloc[-1] < log.reconstruction.iloc[0]

    original = TrainingRun.checkpoint

    def killed_after_epoch_2(self, epoch):
        original(self, epoch)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainingRun, "checkpoint", killed_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_vae(*paths, tmp_path / "b.pt", tmp_path / "b.csv", **kw)
    monkeypatch.setattr(TrainingRun, "checkpoint", original)
    (tmp_path / "b.csv").unlink()  # Snakemake removes a failed job's outputs: restored on resume
    train_vae(*paths, tmp_path / "b.pt", tmp_path / "b.csv", **kw)
    a, b = (torch.load(tmp_path / f"{n}.pt", weights_only=False) for n in "ab")
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))
    with pytest.raises(InputError, match="fewer than one batch"):
        train_vae(*paths, tmp_path / "c.pt", tmp_path / "c.csv", **{**kw, "batch_size": 100})


def test_vae_gan_trains_prior_draws_against_a_critic(dataset, tmp_path):
    from matgen.inference.conditional import load_conditional

    kw = dict(classes=CLASSES, seed=2, epochs=2, batch_size=8, decoder=TINY_DECODER)
    kw.update(device="cpu", show_progress=False)
    paths = (dataset / "images.npy", dataset / "table.csv")
    train_vae(*paths, tmp_path / "p.pt", tmp_path / "p.csv", **kw)
    critic = dict(width=8, projection=True, augment_p=0.5, augment_ops=["roll"])
    train_vae(
        *paths, tmp_path / "a.pt", tmp_path / "a.csv", adversarial=100.0, discriminator=critic, **kw
    )
    log = pd.read_csv(tmp_path / "a.csv")
    assert {"loss_d", "loss_g"} <= set(log.columns) and np.isfinite(log.loss_d).all()
    assert "loss_d" not in pd.read_csv(tmp_path / "p.csv").columns
    plain, adv = (torch.load(tmp_path / f"{n}.pt", weights_only=False) for n in "pa")
    assert "D" in adv and "D" not in plain
    assert not torch.equal(
        plain["model"]["decoder.head.weight"], adv["model"]["decoder.head.weight"]
    )
    model, _ = load_conditional(tmp_path / "a.pt", "cvae")  # the critic is not part of the model
    assert model.latent_dim == 3
    # the cGAN's grain-density and scatter terms and the physics-E11 term on the prior draws:
    # they change the decoder
    terms = dict(density_weight=10.0, offset_weight=2.0, e11_weight=1.0)
    train_vae(*paths, tmp_path / "t.pt", tmp_path / "t.csv", adversarial=100.0, **terms, **kw)
    shaped = torch.load(tmp_path / "t.pt", weights_only=False)
    assert np.isfinite(pd.read_csv(tmp_path / "t.csv").loss_g).all()
    assert not torch.equal(
        adv["model"]["decoder.head.weight"], shaped["model"]["decoder.head.weight"]
    )
    # ... and so does holding each class's mean grain count (the term's running means)
    terms["density_class_mean"] = 1.0
    train_vae(*paths, tmp_path / "m.pt", tmp_path / "m.csv", adversarial=100.0, **terms, **kw)
    held = torch.load(tmp_path / "m.pt", weights_only=False)
    assert not torch.equal(
        held["model"]["decoder.head.weight"], shaped["model"]["decoder.head.weight"]
    )
    # ... and so does the cGAN's per-class orientation term, which needs the decoder's range
    with pytest.raises(InputError, match="vae: orientation_weight needs decoder.orientation_range"):
        train_vae(*paths, tmp_path / "o.pt", tmp_path / "o.csv", adversarial=100.0,
                  orientation_weight=1.0, **kw)  # fmt: skip
    circle = {**TINY_DECODER, "orientation_range": [0.2, 0.95]}
    for name, weight in (("r", 0.0), ("o", 10.0)):
        train_vae(*paths, tmp_path / f"{name}.pt", tmp_path / f"{name}.csv", adversarial=100.0,
                  orientation_weight=weight, **{**kw, "decoder": circle})  # fmt: skip
    ranged, oriented = (torch.load(tmp_path / f"{n}.pt", weights_only=False) for n in "ro")
    assert np.isfinite(pd.read_csv(tmp_path / "o.csv").loss_g).all()
    assert not torch.equal(
        ranged["model"]["decoder.head.weight"], oriented["model"]["decoder.head.weight"]
    )
    # settings that would silently do nothing are refused: terms on the prior draws without a
    # critic, a class-mean weight without the density term it weighs within
    with pytest.raises(InputError, match="vae: density_weight, e11_weight act on the prior"):
        train_vae(*paths, tmp_path / "n.pt", tmp_path / "n.csv", density_weight=1.0,
                  e11_weight=1.0, **kw)  # fmt: skip
    with pytest.raises(InputError, match="density_class_mean .* needs density_weight > 0"):
        train_vae(*paths, tmp_path / "n.pt", tmp_path / "n.csv", adversarial=100.0,
                  density_class_mean=1.0, **kw)  # fmt: skip
    assert not (tmp_path / "n.pt").exists()
    with pytest.raises(InputError, match=r"augment_p must be in \[0, 1\], got 2"):
        train_vae(
            *paths,
            tmp_path / "x.pt",
            tmp_path / "x.csv",
            adversarial=1.0,
            discriminator={"augment_p": 2},
            **kw,
        )


def test_judge_samples_and_traversal(dataset, tmp_path):
    paths = (dataset / "images.npy", dataset / "table.csv")
    metrics = train_evaluator(
        *paths,
        tmp_path / "cnn.pt",
        tmp_path / "cnn.csv",
        tmp_path / "held.csv",
        classes=CLASSES,
        seed=3,
        epochs=12,
        batch_size=8,
        width=8,
        device="cpu",
        show_progress=False,
        held_out_fraction=0.25,
    )
    assert metrics["n_held_out"] == 12 and metrics["accuracy"] >= 0.5  # chance: 0.25
    train_vae(
        *paths,
        tmp_path / "vae.pt",
        tmp_path / "vae.csv",
        classes=CLASSES,
        seed=2,
        epochs=2,
        batch_size=8,
        decoder=TINY_DECODER,
        device="cpu",
        show_progress=False,
    )
    table = sample_conditional(
        tmp_path / "vae.pt",
        "cvae",
        dataset / "table.csv",
        tmp_path / "s/images.npy",
        tmp_path / "s/table.csv",
        n=10,
        seed=4,
        device="cpu",
    )
    assert table["class"].value_counts().to_dict() == {"2um": 3, "3um": 3, "5um": 2, "10um": 2}
    real = pd.read_csv(dataset / "table.csv")
    for name, e11 in zip(table["class"], table.e11):  # conditions are real (class, E11) pairs
        assert e11 in set(real.loc[real["class"] == name, "e11"])
    summary = evaluate_samples(
        tmp_path / "cnn.pt",
        {
            "cVAE": {
                "images": str(tmp_path / "s/images.npy"),
                "table": str(tmp_path / "s/table.csv"),
            }
        },
        *paths,
        tmp_path / "per.csv",
        tmp_path / "sum.csv",
        device="cpu",
    )
    row = summary.set_index("set").loc["real"]
    assert row.physics_e11_mae < 0.5 and row.physics_e11_r2 > 0.99  # the physics reads back
    # the real maps carry their own E11: far below what guessing the class mean misses by
    assert row.physics_mae_over_class_mean_guess < 0.1
    assert summary.set_index("set").loc["cVAE"].frechet_distance > 0
    out = latent_traversal(
        tmp_path / "vae.pt",
        "cvae",
        dataset / "table.csv",
        tmp_path / "g.npy",
        tmp_path / "t.csv",
        tmp_path / "ts.csv",
        steps=3,
        device="cpu",
    )
    assert np.load(tmp_path / "g.npy").shape == (4, 3, 3, 32, 32)
    assert list(out.latent) == [0, 1, 2] and set(out.dominant) <= {
        "grains",
        "mean_grain_area",
        "grey_std",
        "e11_physics",
    }


def test_cgan_options_train_resume_config_and_load(dataset, tmp_path):
    from matgen.inference.conditional import load_conditional
    from matgen.train.conditional import train_cgan

    kw = dict(
        classes=CLASSES,
        seed=5,
        epochs=2,
        batch_size=8,
        generator=TINY_DECODER,
        width=8,
        projection=True,
        d_steps=2,
        betas=[0.5, 0.999],
        offset_weight=1.0,
        device="cpu",
        show_progress=False,
    )
    paths = (dataset / "images.npy", dataset / "table.csv")
    train_cgan(*paths, tmp_path / "g.pt", tmp_path / "g.csv", **kw)
    log = pd.read_csv(tmp_path / "g.csv")
    assert list(log.step) == [1, 2] and np.isfinite(log[["loss_d", "loss_g"]]).all().all()
    G, cond = load_conditional(tmp_path / "g.pt", "cgan")
    assert G.latent_dim == 3 and G.local_shape == (8, 8, 8) and cond.classes == tuple(CLASSES)
    c = torch.from_numpy(cond.encode([0, 1, 2, 3], [150.0] * 4))
    with torch.no_grad():
        x = G(torch.randn(4, 3), torch.randn(4, 8, 8, 8), c)
    assert x.shape == (4, 1, 32, 32) and 0 <= x.min() and x.max() <= 1
    with pytest.raises(InputError, match="d_steps must be at least 1"):
        train_cgan(*paths, tmp_path / "h.pt", tmp_path / "h.csv", **{**kw, "d_steps": 0})
    with pytest.raises(InputError, match="density_class_mean .* needs density_weight > 0"):
        train_cgan(*paths, tmp_path / "h.pt", tmp_path / "h.csv",
                   **{**kw, "density_class_mean": 1.0})  # fmt: skip
    assert not (tmp_path / "h.csv").exists()
    # with the class-mean density term, a run killed after its first epoch resumes (running
    # means included) to the uninterrupted run's G, bit for bit
    held = {**kw, "d_steps": 1, "density_weight": 10.0, "density_class_mean": 1.0}
    train_cgan(*paths, tmp_path / "m.pt", tmp_path / "m.csv", **held)
    original = TrainingRun.checkpoint

    def killed_after_epoch_1(self, epoch):
        original(self, epoch)
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrainingRun, "checkpoint", killed_after_epoch_1)
        with pytest.raises(KeyboardInterrupt):
            train_cgan(*paths, tmp_path / "n.pt", tmp_path / "n.csv", **held)
    (tmp_path / "n.csv").unlink()
    train_cgan(*paths, tmp_path / "n.pt", tmp_path / "n.csv", **held)
    m, n = (torch.load(tmp_path / f"{x}.pt", weights_only=False)["G"] for x in "mn")
    assert all(torch.equal(v, n[k]) for k, v in m.items())
    assert pd.read_csv(tmp_path / "m.csv").loss_density.iloc[-1] > 0
    # precise batch norm: the same trained weights, only the BN statistics re-estimated from
    # G's own draws at the end (seeded: twice the same)
    for name in ("b1", "b2"):
        train_cgan(*paths, tmp_path / f"{name}.pt", tmp_path / f"{name}.csv",
                   **{**kw, "precise_batch_norm": 3})  # fmt: skip
    plain, b1, b2 = (
        torch.load(tmp_path / f"{x}.pt", weights_only=False)["G"] for x in ("g", "b1", "b2")
    )
    stats = [k for k in plain if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(b1[k], b2[k]) for k in plain)
    assert all(torch.equal(plain[k], b1[k]) for k in plain if k not in stats and "tracked" not in k)
    assert not any(torch.allclose(plain[k], b1[k]) for k in stats)
    # the physics-E11 term (as the cVAE's prior draws pay it) changes G
    train_cgan(*paths, tmp_path / "p.pt", tmp_path / "p.csv", **{**kw, "e11_weight": 1.0})
    physics = torch.load(tmp_path / "p.pt", weights_only=False)
    plain = torch.load(tmp_path / "g.pt", weights_only=False)
    assert not torch.equal(physics["G"]["decoder.head.weight"], plain["G"]["decoder.head.weight"])
    assert np.isfinite(pd.read_csv(tmp_path / "p.csv").loss_g).all()
    # orientations on their circle, with the per-class orientation term: the saved G keeps the
    # range (sampling paints in it); the term needs the range
    with pytest.raises(InputError, match="orientation_weight needs generator.orientation_range"):
        train_cgan(
            *paths, tmp_path / "o.pt", tmp_path / "o.csv", **{**kw, "orientation_weight": 1.0}
        )
    circle = {**kw["generator"], "orientation_range": [0.2, 0.95]}
    train_cgan(*paths, tmp_path / "o.pt", tmp_path / "o.csv",
               **{**kw, "generator": circle, "orientation_weight": 1.0})  # fmt: skip
    G, _ = load_conditional(tmp_path / "o.pt", "cgan")
    with torch.no_grad():
        x = G(torch.randn(4, 3), torch.randn(4, 8, 8, 8), c)
    grains = x[x > 0.125]
    assert G.decoder.orientation_range == (0.2, 0.95)
    assert 0.2 - 1e-6 <= grains.min() and grains.max() < 0.95 + 1e-6
    # with an EMA the saved G, the one sampling loads, is the average, not the trained weights
    train_cgan(*paths, tmp_path / "e.pt", tmp_path / "e.csv", **{**kw, "ema_decay": 0.5})
    saved = torch.load(tmp_path / "e.pt", weights_only=False)
    trained, average = saved["G_train"], saved["G"]
    key = "decoder.head.weight"
    assert not torch.equal(trained[key], average[key])
    assert torch.equal(
        saved["G"][key], load_conditional(tmp_path / "e.pt", "cgan")[0].state_dict()[key]
    )


def test_generator_is_shift_equivariant():
    # periodic trunk and renderer: rolling the local map by one cell rolls the grain map by a
    # cell's 4 px, so no position in the RVE is special (no frame). The boundary convention
    # (right / lower neighbour, not across the image edge) differs only on the wrapped edge
    G = TessellationGenerator(32, 1, 5, **TINY_DECODER).eval()
    z, local, c = torch.randn(1, 3), torch.randn(1, 8, 8, 8), torch.rand(1, 5)
    with torch.no_grad():
        x = G(z, local, c)
        shifted = G(z, torch.roll(local, (1, 3), (2, 3)), c)
    keep = torch.ones(32, 32, dtype=torch.bool)
    keep[[3, 31], :] = False
    keep[:, [11, 31]] = False
    assert torch.allclose(shifted[0, 0][keep], torch.roll(x, (4, 12), (2, 3))[0, 0][keep])
    assert not torch.allclose(shifted, x, atol=1e-3)


def test_cgan_discriminator_augmentation_is_seeded_and_checked(dataset, tmp_path):
    from matgen.train.conditional import train_cgan

    kw = dict(
        classes=CLASSES,
        seed=3,
        epochs=1,
        batch_size=8,
        generator=TINY_DECODER,
        width=8,
        projection=True,
        device="cpu",
        show_progress=False,
    )
    paths = (dataset / "images.npy", dataset / "table.csv")

    def weights(name: str, **extra) -> torch.Tensor:
        train_cgan(*paths, tmp_path / f"{name}.pt", tmp_path / f"{name}.csv", **{**kw, **extra})
        state = torch.load(tmp_path / f"{name}.pt", weights_only=False)["G"]
        return torch.cat([v.flatten().float() for v in state.values()])

    plain = weights("plain")
    once = weights("aug", augment_p=0.5)
    again = weights("aug2", augment_p=0.5)
    assert torch.equal(once, again)  # the augmentations draw from the seeded generator
    assert not torch.allclose(once, plain)  # ... and D really saw augmented images
    with pytest.raises(InputError, match=r"augment_p must be in \[0, 1\], got 1.5"):
        train_cgan(*paths, tmp_path / "x.pt", tmp_path / "x.csv", **{**kw, "augment_p": 1.5})
    with pytest.raises(InputError, match=r"unknown augment_ops \['rot45'\]"):
        train_cgan(
            *paths,
            tmp_path / "x.pt",
            tmp_path / "x.csv",
            **{**kw, "augment_p": 0.5, "augment_ops": ["rot45"]},
        )
    assert not (tmp_path / "x.pt").exists()


def test_worst_class_is_chosen_on_each_target_s_scale():
    from matgen.pipeline.polysilicon import worst_class_ratios

    per_class = pd.DataFrame(
        {
            "set": ["cGAN"] * 3,
            "class": ["2um", "3um", "5um"],
            # in log terms 0.81 lies farther from 1 than 1.21, but only 1.21 misses ±20 %
            "grains_ratio": [0.81, 1.21, 1.0],
            "area_ratio": [1.0, 0.75, 1.1],
            # a lattice is too many aligned boundaries: 1.35 fails, 0.7 does not
            "alignment_ratio": [0.7, 1.35, 1.0],
        }
    )
    worst = worst_class_ratios(per_class)
    assert worst["grains_ratio"]["cGAN"] == 1.21
    assert worst["area_ratio"]["cGAN"] == 0.75
    assert worst["alignment_ratio"]["cGAN"] == 1.35


def test_grains_per_class_compares_each_class_with_the_real_images_of_that_class():
    from matgen.pipeline.polysilicon import grains_per_class

    per_sample = pd.DataFrame(
        {
            "set": ["real"] * 4 + ["cGAN"] * 4,
            "index": [0, 1, 2, 3] * 2,
            "class": ["2um", "2um", "10um", "10um"] * 2,
            "grains": [10, 12, 40, 44, 11, 11, 20, 22],
            "mean_grain_area": [100.0, 80.0, 25.0, 23.0, 90.0, 90.0, 48.0, 48.0],
            "axis_aligned_boundaries": [0.3, 0.3, 0.4, 0.4, 0.3, 0.3, 0.8, 0.8],
        }
    )
    table = grains_per_class(per_sample).set_index(["set", "class"])
    assert table.loc[("cGAN", "10um"), "alignment_ratio"] == pytest.approx(2.0)  # a lattice
    assert table.loc[("cGAN", "2um"), "alignment_ratio"] == pytest.approx(1.0)
    assert table.loc[("cGAN", "2um"), "grains_ratio"] == pytest.approx(1.0)
    assert table.loc[("cGAN", "10um"), "grains_ratio"] == pytest.approx(0.5)
    assert table.loc[("cGAN", "10um"), "area_ratio"] == pytest.approx(2.0)
    assert table.loc[("cGAN", "2um"), "within_20_percent"]
    assert not table.loc[("cGAN", "10um"), "within_20_percent"]
    assert table.loc[("real", "10um"), "n"] == 2


def test_grains_per_image_weighs_each_set_s_classes_as_the_real_images_are():
    from matgen.pipeline.polysilicon import _grains_at_real_class_mix, grains_per_class

    # 3 real 2 um images (10 grains) to 1 real 10 um (40): the real mix is 3:1, mean 17.5.
    # Samples drawn evenly (2:2) whose every class matches the real one read 25 as a plain mean
    per_sample = pd.DataFrame(
        {
            "set": ["real"] * 4 + ["cVAE"] * 4,
            "index": [0, 1, 2, 3] * 2,
            "class": ["2um", "2um", "2um", "10um", "2um", "2um", "10um", "10um"],
            "grains": [10, 10, 10, 40, 10, 10, 40, 40],
            "mean_grain_area": [1.0] * 8,
        }
    )
    assert per_sample.groupby("set")["grains"].mean()["cVAE"] == 25
    mix = _grains_at_real_class_mix(grains_per_class(per_sample))
    assert mix["real"] == pytest.approx(17.5) and mix["cVAE"] == pytest.approx(17.5)


def test_physics_e11_term_matches_the_labelling_physics_and_pulls_greys_into_range():
    from matgen.synth.polysilicon import e11_trig_basis, trig_moments
    from matgen.train.conditional import _PhysicsE11

    rng = np.random.default_rng(5)
    psi, weights = rng.uniform(0, 180, 30), rng.uniform(1, 4, 30)
    moments = (trig_moments(np.deg2rad(psi)) * (weights / weights.sum())[:, None]).sum(0)
    basis = e11_trig_basis()
    voigt = 1 / np.linalg.inv(np.tensordot(moments, basis["voigt"], 1))[0, 0]
    reuss = 1 / (moments @ basis["reuss"])
    assert (voigt + reuss) / 2 == pytest.approx(homogenised_e11(psi, weights)["hill"], abs=1e-6)
    # on rendered RVEs the differentiable estimate is the segmentation-based physics (the
    # boundary pixels aside: they go to the nearest grain there)
    images = []
    for n_grains in (6, 15, 40):
        labels = voronoi_grains(64, n_grains, rng)
        images.append(render_microstructure(labels, rng.uniform(0, 180, n_grains), 0.0, rng))
    term = _PhysicsE11(160.0, 5.0, "cpu")
    estimate = term.e11(torch.tensor(np.stack(images)[:, None], dtype=torch.float32))
    physics = [e11_of_image(im)["hill"] for im in images]
    np.testing.assert_allclose(estimate.numpy(), physics, atol=0.6)  # GPa; real spread ~5
    dark = term.e11(torch.full((1, 1, 16, 16), 0.05))  # all boundary: read as ψ = 0, not NaN
    assert float(dark) == pytest.approx(homogenised_e11([0.0])["hill"], abs=1e-3)
    # through the renderer: the penalty moves grey logits; one out of range is pulled back
    seeds = torch.zeros(2, 1, 5, 8, 8)
    seeds[:, :, 2] = 1.0  # every candidate present
    seeds[:, :, :2] = torch.randn(2, 1, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    seeds[:, :, 3] = torch.linspace(-1.0, 1.0, 64).reshape(8, 8)
    seeds[0, 0, 3, 0, 0] = -4.0  # grey 0.018: below ψ's range
    seeds.requires_grad_(True)
    maps = render_tessellation(seeds, 32, 3, torch.zeros(()), torch.tensor(0.05), 4.0)
    cond = torch.tensor([[0.0, 0.0, 0.0, 1.0, 2.0]] * 2)  # asks for E11 2 σ above the mean
    term.penalty(maps, seeds, cond).backward()
    grey_grad = seeds.grad[:, 0, 3]
    assert grey_grad[0, 0, 0] < 0  # descent raises the too-dark grain's grey
    assert (grey_grad.abs() > 0).float().mean() > 0.5  # most grains' greys get a gradient
    # greys in ψ's range cost nothing; a nucleus 0.05 grey outside it what a 1 σ E11 miss does
    inside = seeds.detach().clone()
    inside[:, :, 3] = torch.logit(torch.linspace(0.2, 0.95, 128)).reshape(2, 1, 8, 8)
    assert float(term.outside_range(inside)) < 1e-6
    inside[0, 0, 3, 0, 0] = torch.logit(torch.tensor(0.15))
    assert float(term.outside_range(inside)) == pytest.approx(1.0 / 2, rel=1e-3)  # per map


@pytest.mark.parametrize("orientation_range", [None, (0.2, 0.95)])
def test_orientation_feedback_starts_as_the_same_map_and_steers_e11(orientation_range):
    # The draft grey levels come from each grain's own noise, so a map's E11 scatters around
    # whatever the trunk asks for, independent of the condition. Trained alone on the
    # physics-E11 penalty (the trunk as drawn), the feedback must cut the drafts' miss by a
    # fifth or more; it starts as the same function. With an orientation range it turns each
    # orientation on its circle instead of shifting a grey logit.
    from matgen.train.conditional import _PhysicsE11

    def build(feedback: int) -> TessellationGenerator:
        torch.manual_seed(3)
        return TessellationGenerator(32, 1, 5, **TINY_DECODER, orientation_feedback=feedback,
                                     orientation_range=orientation_range)  # fmt: skip

    plain, G = build(0), build(16)
    gen = torch.Generator().manual_seed(0)

    def batch(n: int = 32) -> tuple[torch.Tensor, ...]:
        z, local = torch.randn(n, 3, generator=gen), torch.randn(n, 8, 8, 8, generator=gen)
        cond = torch.zeros(n, 5)
        cond[:, 0], cond[:, -1] = 1.0, torch.randn(n, generator=gen)
        return z, local, cond

    held_out = batch(64)
    with torch.no_grad():
        # the same up to rounding (on the circle a grey goes through its fraction and back)
        torch.testing.assert_close(plain(*held_out), G(*held_out), rtol=0, atol=1e-6)
        # conditions spread as the drafts' own E11 does (as a real class's E11 and its maps')
        drafts = _PhysicsE11(0.0, 1.0, "cpu").e11(plain(*held_out))
    term = _PhysicsE11(float(drafts.mean()), float(drafts.std()), "cpu")

    def rms_miss(model: torch.nn.Module) -> float:
        with torch.no_grad():
            miss = (term.e11(model(*held_out)) - term.mean) / term.std - held_out[2][:, -1]
        return float(miss.square().mean().sqrt())

    before = rms_miss(G)  # ~√2: the drafts' E11 is independent of the condition
    opt = torch.optim.Adam(G.decoder.feedback.parameters(), lr=0.01)
    for _ in range(80):
        zb, lb, cb = batch()
        maps, seeds = G(zb, lb, cb, return_seeds=True)
        opt.zero_grad()
        term.penalty(maps, seeds, cb).backward()
        opt.step()
    # measured 1.49 → 0.95 on the grey logit, 1.61 → 0.63 on the circle
    assert before > 1.2 and rms_miss(G) < 0.8 * before


def test_orientations_drawn_on_their_circle_are_uniform_and_periodic():
    # A sigmoid of noise plus the trunk's logit cannot be uniform on ψ's grey range: it piles
    # greys up at the range's ends, where ψ = 0 and ψ → 180° are the same orientation. On the
    # circle, the noise's quantile turned by the trunk is uniform from the start, stays in the
    # range, and a turn by one whole period draws the same map.
    from matgen.metrics.distributions import orientation_nonuniformity
    from matgen.synth.polysilicon import BOUNDARY_THRESHOLD, GREY_RANGE

    gen = torch.Generator().manual_seed(0)
    z, local = torch.randn(256, 3, generator=gen), torch.randn(256, 8, 8, 8, generator=gen)
    cond = torch.zeros(256, 5)
    cond[:, 0] = 1.0
    read = {}
    for name, orientation_range in (("sigmoid", None), ("circle", GREY_RANGE)):
        torch.manual_seed(1)
        G = TessellationGenerator(32, 1, 5, **TINY_DECODER, orientation_range=orientation_range)
        with torch.no_grad():
            maps = G(z, local, cond)[:, 0].numpy()
        read[name] = orientation_nonuniformity(maps, GREY_RANGE, BOUNDARY_THRESHOLD)
    grains = maps[maps > BOUNDARY_THRESHOLD]
    assert grains.min() >= GREY_RANGE[0] - 1e-6 and grains.max() < GREY_RANGE[1] + 1e-6
    assert read["circle"] < 0.01 and read["sigmoid"] > 0.03  # measured 0.003 and 0.045
    head = G.decoder.head
    with torch.no_grad():
        head.bias.view(2, 4)[:, 3] += 1.0  # one period: the same orientations
        np.testing.assert_allclose(G(z, local, cond)[:, 0].numpy(), maps, atol=1e-5)
        head.bias.view(2, 4)[:, 3] += 0.5  # half a period: every grain turned by 90°
        turned = G(z, local, cond)[:, 0].numpy()
    moved = np.abs(turned - maps)[maps > BOUNDARY_THRESHOLD]
    assert np.median(moved) == pytest.approx(0.375, abs=0.01)  # half of the range, or wrapped


def test_circle_feedback_tilts_orientations_without_folding_them():
    # however large the feedback's harmonics, the turn f → f + Σ w_k φ_k(f) stays monotone (it
    # tilts the orientations' distribution); small ones pass unchanged
    from matgen.models.tessellation import _monotone, _orientation_features

    f = torch.linspace(0, 1, 2001)
    w = torch.randn(200, 5, generator=torch.Generator().manual_seed(0)) * 3
    turned = f + (_orientation_features(f)[None] * _monotone(w)[:, None]).sum(-1)
    slope = turned.diff(dim=1) * 2000
    assert slope.min() > 0.09 and slope.max() < 1.91
    small = torch.tensor([[0.3, 0.01, 0.02, 0.01, 0.0]])
    assert torch.equal(_monotone(small), small)


def test_orientation_penalty_is_per_class_and_spreads_a_texture():
    # Class 0 random, class 1 textured: only class 1 costs; pooling would hide a class whose
    # texture the other classes' grains fill in. Descent on the grey logits spreads it.
    from matgen.models.tessellation import orientation_nonuniformity_by_class

    lo, hi = 0.2, 0.95
    g = torch.Generator().manual_seed(0)
    fraction = torch.rand(8, 2, 16, 16, generator=g)
    fraction[4:] = 0.5 + 0.1 * torch.rand(4, 2, 16, 16, generator=g)  # class 1: one band
    seeds = torch.zeros(8, 2, 5, 16, 16)
    seeds[:, :, 2] = 1.0
    seeds[:, :, 3] = torch.logit(lo + (hi - lo) * fraction)
    k = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    only_random = orientation_nonuniformity_by_class(seeds[:4], k[:4], (lo, hi))
    both = orientation_nonuniformity_by_class(seeds, k, (lo, hi))
    # a band [0.5, 0.6]: ∫ (0.9 q − 0.5)² dq = 0.07
    assert float(only_random) < 0.001 and float(both) == pytest.approx(0.07, abs=0.003)
    # one class in the first half-period, the other in the second: uniform pooled, not per class
    mixed = seeds.clone()
    halves = torch.rand(8, 2, 16, 16, generator=g) / 2 + (k[:, None, None, None] / 2)
    mixed[:, :, 3] = torch.logit(lo + (hi - lo) * halves)
    pooled = orientation_nonuniformity_by_class(mixed, torch.zeros(8, dtype=torch.long), (lo, hi))
    assert float(orientation_nonuniformity_by_class(mixed, k, (lo, hi))) > 20 * float(pooled)
    textured = seeds[4:].clone().requires_grad_(True)
    opt = torch.optim.Adam([textured], lr=0.1)
    for _ in range(40):
        opt.zero_grad()
        orientation_nonuniformity_by_class(textured, k[4:], (lo, hi)).backward()
        opt.step()
    spread = orientation_nonuniformity_by_class(textured.detach(), k[4:], (lo, hi))
    assert float(spread) < 0.2 * float(both)


def test_orientation_nonuniformity_tells_random_orientations_from_a_preferred_one():
    from matgen.metrics.distributions import orientation_nonuniformity
    from matgen.synth.polysilicon import BOUNDARY_THRESHOLD, GREY_RANGE

    rng = np.random.default_rng(2)
    random_maps = [
        render_microstructure(voronoi_grains(64, 30, rng), rng.uniform(0, 180, 30), 0.0, rng)
        for _ in range(40)
    ]
    textured_maps = [  # orientations clustered around 45°
        render_microstructure(voronoi_grains(64, 30, rng), rng.normal(45, 15, 30) % 180, 0.0, rng)
        for _ in range(40)
    ]
    uniform = orientation_nonuniformity(np.stack(random_maps), GREY_RANGE, BOUNDARY_THRESHOLD)
    textured = orientation_nonuniformity(np.stack(textured_maps), GREY_RANGE, BOUNDARY_THRESHOLD)
    assert uniform < 0.02 and textured > 0.15
    # boundary pixels do not count: a map of boundaries only has no orientation to read
    assert np.isnan(orientation_nonuniformity(np.full((2, 8, 8), 0.01), GREY_RANGE, 0.1))
