"""StyleGAN2 model, ADA and the StyleGAN2-ADA training loop on tiny CPU models."""

import inspect
import math

import numpy as np
import pandas as pd
import pytest
import torch

from matgen.checkpoint import resume_path_for
from matgen.data.ada import AdaptiveProbability, augment
from matgen.errors import InputError, MatgenError, TrainingDiverged
from matgen.inference.stylegan2 import MODEL_KEYS, generate, load_stylegan2
from matgen.models.kernels import gaussian_blur
from matgen.models.stylegan2 import (
    Discriminator,
    Generator,
    ModulatedConv2d,
    blur,
    check_resolution,
    minibatch_stddev,
)
from matgen.train.distributed import launch
from matgen.train.stylegan2 import train_stylegan2

TINY_MODEL = dict(z_dim=16, w_dim=16, n_mapping=1, channel_base=64, channel_max=16)
TINY_TRAIN = dict(
    TINY_MODEL,
    batch_size=8,
    r1_interval=4,
    pl_interval=2,
    ada_interval=2,
    ada_kimg=1,
    ema_kimg=0.05,
    log_every=2,
    device="cpu",
    show_progress=False,
)


def generator_pair(new_keys: set[str], **option) -> tuple[Generator, Generator]:
    """A two-phase 32-px G with detector noise, and the same G with ``option``, from one seed;
    checks that the option adds the weights ``new_keys`` alone and redraws none of the others."""
    base = dict(TINY_MODEL, pore_phase_grey=-0.75, detector_noise_sd=0.1)
    torch.manual_seed(0)
    plain = Generator(32, **base).eval()
    torch.manual_seed(0)
    G = Generator(32, **base, **option).eval()
    weights = G.state_dict()
    assert set(weights) - set(plain.state_dict()) == new_keys
    assert all(torch.equal(v, weights[k]) for k, v in plain.state_dict().items())  # created last
    return plain, G


@pytest.fixture
def tiles(tmp_path):
    """24 tiles of 8x8: dark discs (pores) on a bright matrix, radius and position random."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:8, :8]
    out = np.empty((24, 1, 8, 8), np.float16)
    for i in range(24):
        cy, cx, r = rng.uniform(2, 6), rng.uniform(2, 6), rng.uniform(1.2, 2.5)
        out[i, 0] = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 0.15, 0.8)
    path = tmp_path / "tiles.npy"
    np.save(path, out)
    return path


def test_generator_and_discriminator_shapes_follow_resolution():
    for res in (8, 32):
        G = Generator(res, **TINY_MODEL)
        D = Discriminator(res, 64, 16)
        images, ws = G(torch.randn(3, 16), return_ws=True, mixing_prob=1.0)
        assert images.shape == (3, 1, res, res)
        assert ws.shape == (3, 2 * int(math.log2(res)) - 2, 16) and G.num_ws == ws.shape[1]
        assert D(images).shape == (3,)
    with pytest.raises(ValueError, match="not a power of two"):
        check_resolution(48)


def test_constant_noise_makes_a_tile_a_function_of_z_alone():
    G = Generator(16, **TINY_MODEL).eval()
    for layer in [G.conv1, *G.convs]:  # noise strengths start at 0: give the noise an effect
        layer.noise_strength.data.fill_(1.0)
    z = torch.randn(3, 16)
    with torch.no_grad():
        a = G(z, noise_mode="const")
        b = G(z[[2, 0, 1]], noise_mode="const")[[1, 2, 0]]  # same z, other batch places
        random_1, random_2 = G(z, noise_mode="random"), G(z, noise_mode="random")
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a[0], a[1], atol=1e-3)  # the tile follows z
    assert not torch.allclose(random_1, random_2, atol=1e-3)  # fresh noise changes it
    assert not torch.allclose(random_1, a, atol=1e-3)


def test_noise_only_from_the_set_resolution_up():
    G = Generator(16, **TINY_MODEL, noise_min_resolution=16).eval()
    coarse = [G.conv1, *G.convs[:2]]  # the 4-px and 8-px layers
    for layer in [G.conv1, *G.convs]:
        layer.noise_strength.data.fill_(1.0)
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert not torch.allclose(G(z), G(z), atol=1e-4)  # the 16-px noise still acts
        for layer in G.convs[2:]:
            layer.noise_strength.data.zero_()
        torch.testing.assert_close(G(z), G(z))  # what is left, the coarse noise, does nothing
        torch.testing.assert_close(G(z), G(z, noise_mode="none"))
    assert [c.use_noise for c in coarse] == [False] * 3 and all(c.use_noise for c in G.convs[2:])


def test_noise_only_up_to_the_set_resolution():
    G = Generator(16, **TINY_MODEL, noise_max_resolution=8).eval()
    layers = [G.conv1, *G.convs]  # 4, 8, 8, 16, 16 px
    assert [c.use_noise for c in layers] == [True, True, True, False, False]
    band = Generator(16, **TINY_MODEL, noise_min_resolution=8, noise_max_resolution=8)
    assert [c.use_noise for c in [band.conv1, *band.convs]] == [False, True, True, False, False]
    for layer in layers:
        layer.noise_strength.data.fill_(1.0)
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert not torch.allclose(G(z), G(z), atol=1e-4)  # the coarse noise acts
        for layer in layers[:3]:
            layer.noise_strength.data.zero_()
        torch.testing.assert_close(G(z), G(z))  # the 16-px layers have none


def test_detector_noise_is_fixed_white_noise_on_the_output_and_changes_nothing_else():
    torch.manual_seed(0)
    plain = Generator(16, **TINY_MODEL).eval()
    torch.manual_seed(0)
    G = Generator(16, **TINY_MODEL, detector_noise_sd=0.2).eval()
    weights = G.state_dict()
    assert set(weights) - set(plain.state_dict()) == {"detector_noise_const"}
    assert all(torch.equal(v, weights[k]) for k, v in plain.state_dict().items())
    z = torch.randn(64, 16)
    with torch.no_grad():
        clean = plain(z, noise_mode="none")
        torch.testing.assert_close(G(z, noise_mode="none"), clean)
        noise = G(z) - clean  # the layers' strengths start at 0: all of it is the detector's
        assert noise.std().item() == pytest.approx(0.2, rel=0.03)
        spectrum = torch.fft.fft2(noise[:, 0]).abs().square().mean(0)
        assert spectrum.max() < 1.5 * spectrum.mean()  # white: no frequency stands out
        torch.testing.assert_close(G(z, noise_mode="const"), G(z, noise_mode="const"))
    seeded = generate(G, np.arange(4))  # drawn from each tile's seed, after the layers' maps
    np.testing.assert_array_equal(seeded, generate(G, np.arange(4)))
    assert 0.05 < np.std(seeded - generate(plain, np.arange(4))) < 0.15  # 0.2 / 2 in 0..1 grey


def test_orig_architecture_draws_the_image_from_the_last_layer_alone(tmp_path):
    torch.manual_seed(0)
    skip = Generator(16, **TINY_MODEL).eval()
    torch.manual_seed(0)
    orig = Generator(16, **TINY_MODEL, architecture="orig").eval()
    assert all(torch.equal(v, orig.state_dict()[k]) for k, v in skip.state_dict().items())
    z = torch.randn(4, 16)
    with torch.no_grad():
        for G in (skip, orig):  # the lower resolutions' outputs made loud
            for to_rgb in (G.to_rgb1, *G.to_rgbs[:-1]):
                to_rgb.bias.fill_(5.0)
        assert skip(z, noise_mode="const").mean() > 4  # skip outputs add them up
        top = orig(z, noise_mode="const")
        assert top.abs().mean() < 1  # the last layer's toRGB alone
        orig.to_rgbs[-1].bias.fill_(5.0)
        torch.testing.assert_close(orig(z, noise_mode="const"), top + 5)
    with pytest.raises(ValueError, match="architecture"):
        Generator(16, **TINY_MODEL, architecture="resnet")
    kw = dict(TINY_TRAIN, total_kimg=0.016)
    tiles = tmp_path / "t.npy"
    np.save(tiles, np.full((8, 1, 16, 16), 0.5, np.float16))
    train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "l.csv", architecture="orig", **kw)
    assert load_stylegan2(tmp_path / "m.pt").architecture == "orig"  # kept in the checkpoint


def test_a_pore_floor_bounds_the_signal_below_and_leaves_the_bright_side(tmp_path):
    torch.manual_seed(0)
    plain = Generator(16, **TINY_MODEL).eval()
    torch.manual_seed(0)
    floored = Generator(16, **TINY_MODEL, pore_floor=-0.5, pore_floor_width=0.02).eval()
    assert all(torch.equal(v, floored.state_dict()[k]) for k, v in plain.state_dict().items())
    z = torch.randn(8, 16)
    with torch.no_grad():
        for G in (plain, floored):  # a signal that swings well past the floor
            G.to_rgbs[-1].conv.weight.mul_(20.0)
        a, b = plain(z, noise_mode="const"), floored(z, noise_mode="const")
    assert (a < -0.6).float().mean() > 0.05  # without a floor it dips under it
    assert b.min() >= -0.5  # with one it does not
    bright = a > -0.3  # several widths above the floor the signal is the same
    torch.testing.assert_close(b[bright], a[bright], atol=1e-3, rtol=0)
    deep = a < -0.7  # far below it, flat at the floor
    torch.testing.assert_close(b[deep], torch.full_like(b[deep], -0.5), atol=1e-3, rtol=0)


def test_training_sets_the_pore_floor_from_the_real_tiles(tmp_path):
    from matgen.train.stylegan2 import pore_floor

    rng = np.random.default_rng(0)
    tiles = np.clip(0.6 + 0.02 * rng.standard_normal((8, 1, 16, 16)), 0, 1)
    tiles[:, :, :4, :4] = 0.1 + 0.02 * rng.standard_normal((8, 1, 4, 4))  # dark pores, 1/16
    floor = pore_floor(tiles, 1.0)
    # 1 % of the pixels: inside the pores' 6 %, low in their grey (0.1 - 2.3 sd ~ 0.05)
    assert 2 * 0.03 - 1 < floor["pore_floor"] < 2 * 0.08 - 1
    assert floor["pore_floor_width"] == pytest.approx(2 * 0.02, rel=0.25)  # the noise sd
    with pytest.raises(InputError, match="pore_floor_percentile 60"):
        pore_floor(tiles, 60.0)
    path = tmp_path / "t.npy"
    np.save(path, tiles.astype(np.float16))
    kw = dict(TINY_TRAIN, total_kimg=0.016)
    train_stylegan2(path, tmp_path / "m.pt", tmp_path / "l.csv", pore_floor_percentile=1.0, **kw)
    G = load_stylegan2(tmp_path / "m.pt")  # kept in the checkpoint
    assert G.pore_floor == pytest.approx(floor["pore_floor"], abs=1e-3)  # float16 tiles
    assert G.pore_floor_width == pytest.approx(floor["pore_floor_width"], rel=0.05)


def test_a_two_phase_output_blends_the_solid_towards_the_pore_grey_by_a_logit():
    torch.manual_seed(0)
    G = Generator(16, **TINY_MODEL, pore_phase_grey=-0.75).eval()
    assert G.img_channels == 1 and G.to_rgbs[-1].bias.numel() == 2  # solid grey + pore logit
    z = torch.randn(8, 16)
    with torch.no_grad():
        G.to_rgbs[-1].bias[1] = 100.0  # every pixel certainly pore: the pore level, flat
        assert torch.allclose(G(z, noise_mode="const"), torch.tensor(-0.75), atol=1e-5)
        G.to_rgbs[-1].bias[1] = -100.0  # every pixel certainly solid: the solid channel itself
        solid = G(z, noise_mode="const")
        assert solid.std() > 0.01 and (solid - (-0.75)).abs().min() > 0
        G.to_rgbs[-1].bias[1] = 0.0  # in between: a pixel lies between its solid and the level
        mixed = G(z, noise_mode="const")
        lo, hi = (
            torch.minimum(solid, torch.tensor(-0.75)),
            torch.maximum(solid, torch.tensor(-0.75)),
        )
        assert ((mixed >= lo - 1e-5) & (mixed <= hi + 1e-5)).all()
        assert (mixed - solid).abs().mean() > 0.05


def test_training_sets_the_pore_phase_grey_from_the_real_pores(tmp_path):
    from matgen.train.stylegan2 import pore_phase_grey

    rng = np.random.default_rng(0)
    tiles = np.clip(0.6 + 0.02 * rng.standard_normal((8, 1, 16, 16)), 0, 1)
    tiles[:, :, 2:9, 2:9] = 0.12 + 0.02 * rng.standard_normal((8, 1, 7, 7))  # pores of 0.12
    assert pore_phase_grey(tiles) == pytest.approx(2 * 0.12 - 1, abs=0.02)
    with pytest.raises(InputError, match="no pore interior"):
        pore_phase_grey(np.full((4, 1, 8, 8), 0.6, np.float32))
    path = tmp_path / "t.npy"
    np.save(path, tiles.astype(np.float16))
    kw = dict(TINY_TRAIN, total_kimg=0.016)
    train_stylegan2(path, tmp_path / "m.pt", tmp_path / "l.csv", two_phase=True, **kw)
    G = load_stylegan2(tmp_path / "m.pt")  # kept in the checkpoint
    assert G.pore_phase_grey == pytest.approx(pore_phase_grey(tiles), abs=2e-3)  # float16 tiles
    assert generate(G, np.arange(3), 3).shape == (3, 1, 16, 16)


def test_solid_under_pores_term_pulls_the_hidden_solid_to_the_solid_around_the_pore():
    from matgen.train.losses import solid_under_pores_loss

    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    pore = (((yy - 16) ** 2 + (xx - 16) ** 2) < 25).float()[None, None]  # a 5-px pore
    ramp = (0.2 + 0.01 * xx)[None, None]  # a solid that brightens to the right
    # the solid continued under the pore costs next to nothing; a bright patch under it costs
    # its squared excess, whatever the solid's own gradient
    continued = solid_under_pores_loss(ramp, pore)
    bright = ramp + 0.5 * pore
    assert float(continued) < 1e-3
    assert float(solid_under_pores_loss(bright, pore)) == pytest.approx(0.25, rel=0.1)
    assert float(solid_under_pores_loss(bright, torch.zeros_like(pore))) == 0  # no pores: free
    # with a margin only the excess beyond it pays: texture-sized differences are free
    assert float(solid_under_pores_loss(bright, pore, margin=0.3)) == pytest.approx(0.04, rel=0.1)
    assert float(solid_under_pores_loss(ramp + 0.2 * pore, pore, margin=0.3)) == 0
    # only the solid under the pores moves: no gradient reaches the solid around them or the
    # pore weights (the pores stay where G puts them)
    solid, weight = bright.clone().requires_grad_(True), pore.clone().requires_grad_(True)
    solid_under_pores_loss(solid, weight).backward()
    assert weight.grad is None or float(weight.grad.abs().sum()) == 0
    assert float(solid.grad[pore == 0].abs().max()) == 0
    assert float(solid.grad[pore == 1].min()) > 0  # darkens the bright patch


def test_a_two_phase_generator_returns_the_phases_it_blends():
    torch.manual_seed(0)
    G = Generator(16, **TINY_MODEL, pore_phase_grey=-0.75).eval()
    z = torch.randn(4, 16)
    with torch.no_grad():
        image, solid, pore = G(z, noise_mode="none", return_phases=True)
        assert torch.equal(image, G(z, noise_mode="none"))
        assert torch.allclose(image, solid + pore * (-0.75 - solid))
        assert solid.shape == pore.shape == image.shape and 0 <= pore.min() <= pore.max() <= 1
    with pytest.raises(ValueError, match="no phases"):
        Generator(16, **TINY_MODEL)(z, return_phases=True)
    with pytest.raises(ValueError, match="one at a time"):
        G(z, return_ws=True, return_phases=True)


def test_solid_under_pores_term_is_logged_and_needs_two_phases(tiles, tmp_path):
    weights = {}
    for lam, margin in ((0.0, 0.0), (1.0, 0.0), (1.0, 0.05)):
        kw = {**TINY_TRAIN, "two_phase": True, "lambda_solid_under_pores": lam}
        out, log = tmp_path / f"m{lam}_{margin}.pt", tmp_path / f"l{lam}_{margin}.csv"
        train_stylegan2(tiles, out, log, seed=3, total_kimg=0.048, solid_under_pores_margin=margin,
                        **kw)  # fmt: skip
        assert ("solid_under_pores" in pd.read_csv(log)) == (lam > 0)
        weights[lam, margin] = torch.load(out, weights_only=False)["G"]
    for a, b in (((0.0, 0.0), (1.0, 0.0)), ((1.0, 0.0), (1.0, 0.05))):
        assert any(not torch.equal(weights[a][k], weights[b][k]) for k in weights[a])
    with pytest.raises(InputError, match="lambda_solid_under_pores: needs stylegan2.two_phase"):
        train_stylegan2(tiles, tmp_path / "x.pt", tmp_path / "x.csv", lambda_solid_under_pores=1.0,
                        **TINY_TRAIN)  # fmt: skip
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "x.csv").exists()


def test_pore_outline_field_bends_outlines_only_and_changes_nothing_when_off():
    new = {"pore_outline_strength", "pore_outline_kernel", "pore_outline_noise_const"}
    plain, G = generator_pair(new, pore_outline_noise_sigma=1.5)
    # the detector's noise, then the outlines' (drawn 2 × 3σ wider: no padding at the edges)
    assert G.extra_noise_shapes() == [(1, 32, 32), (1, 42, 42)]
    z = torch.randn(16, 16)
    with torch.no_grad():
        G.pore_outline_strength.fill_(1.0)
        field = G._outline_field(torch.randn(256, 1, 42, 42), "random", torch.zeros(1))
        assert field.shape == (256, 1, 32, 32)
        for part in (field, field[..., :2, :], field[..., :, -2:]):  # unit variance, edges too
            assert part.std().item() == pytest.approx(1.0, rel=0.05)
        # correlated over about σ: neighbours alike, pixels 6σ apart not
        corr = lambda d: torch.corrcoef(torch.stack([field[..., :-d].flatten(),  # noqa: E731
                                                     field[..., d:].flatten()]))[0, 1]  # fmt: skip
        assert corr(1) > 0.7 and abs(corr(9)) < 0.05

        # the field moves pixels only where the pore logit is near 0: the outlines
        def bent(strength: float) -> torch.Tensor:
            G.pore_outline_strength.fill_(strength)
            return G(z, noise_mode="const") - plain(z, noise_mode="const")

        for logit_bias, moved in ((100.0, False), (-100.0, False), (0.0, True)):
            G.to_rgbs[-1].bias[1] = plain.to_rgbs[-1].bias[1] = logit_bias
            assert (bent(1.0).abs().mean() > 0.05) == moved, logit_bias  # certain pore, solid
            assert float(bent(0.0).abs().max()) == 0  # from strength 0: G as without the field
    seeded = generate(G, np.arange(4))  # its noise drawn from each tile's seed, after the others
    np.testing.assert_array_equal(seeded, generate(G, np.arange(4)))
    assert not np.array_equal(seeded, generate(G, np.arange(4), noise_seeds=np.arange(4) + 9))
    with pytest.raises(ValueError, match="needs a two-phase output"):
        Generator(32, **TINY_MODEL, pore_outline_noise_sigma=1.5)


def test_pore_outline_strength_is_learnt_logged_and_needs_two_phases(tiles, tmp_path):
    kw = {**TINY_TRAIN, "two_phase": True, "total_kimg": 0.048, "seed": 3}
    train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "l.csv", pore_outline_noise_sigma=1.0,
                    **kw)  # fmt: skip
    strength = pd.read_csv(tmp_path / "l.csv")["pore_outline_strength"]
    assert strength.abs().iloc[-1] > 0  # from 0: G learns how much the outlines bend
    G = load_stylegan2(tmp_path / "m.pt")  # kept in the checkpoint
    assert G.pore_outline_noise_sigma == 1.0 and float(G.pore_outline_strength) != 0
    train_stylegan2(tiles, tmp_path / "p.pt", tmp_path / "p.csv", **kw)  # off: no column, no key
    assert "pore_outline_strength" not in pd.read_csv(tmp_path / "p.csv")
    payload = torch.load(tmp_path / "p.pt", weights_only=False)
    assert "pore_outline_noise_sigma" not in payload["model_config"]
    with pytest.raises(InputError, match="pore_outline_noise_sigma: needs stylegan2.two_phase"):
        train_stylegan2(tiles, tmp_path / "x.pt", tmp_path / "x.csv", pore_outline_noise_sigma=1.0,
                        **TINY_TRAIN)  # fmt: skip
    assert not (tmp_path / "x.pt").exists()


def test_pore_outline_strength_can_be_fixed(tiles, tmp_path):
    kw = {**TINY_TRAIN, "two_phase": True, "total_kimg": 0.048, "seed": 3}
    train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "l.csv", pore_outline_noise_sigma=1.0,
                    pore_outline_noise_strength=0.75, **kw)  # fmt: skip
    assert (pd.read_csv(tmp_path / "l.csv")["pore_outline_strength"] == 0.75).all()  # not learnt
    G = load_stylegan2(tmp_path / "m.pt")
    assert float(G.pore_outline_strength) == 0.75
    assert "pore_outline_strength" not in dict(G.named_parameters())  # a buffer: no optimiser
    assert G.state_dict()["pore_outline_strength"] == 0.75  # the learnt one's key
    torch.manual_seed(0)
    learnt = Generator(32, **TINY_MODEL, pore_phase_grey=-0.75, pore_outline_noise_sigma=1.5)
    torch.manual_seed(0)
    fixed = Generator(32, **TINY_MODEL, pore_phase_grey=-0.75, pore_outline_noise_sigma=1.5,
                      pore_outline_fixed_strength=0.0)  # fmt: skip
    fixed.load_state_dict(learnt.state_dict())  # same weights drawn, same keys
    z = torch.randn(4, 16)
    assert torch.equal(fixed.eval()(z, noise_mode="const"), learnt.eval()(z, noise_mode="const"))
    with pytest.raises(InputError, match="pore_outline_noise_strength: needs pore_outline_noise"):
        train_stylegan2(tiles, tmp_path / "x.pt", tmp_path / "x.csv",
                        pore_outline_noise_strength=0.5, **kw)  # fmt: skip
    with pytest.raises(ValueError, match="pore_outline_fixed_strength: needs"):
        Generator(32, **TINY_MODEL, pore_phase_grey=-0.75, pore_outline_fixed_strength=0.5)


def test_training_measures_the_detector_noise_of_the_real_tiles(tmp_path):
    noisy = tmp_path / "noisy.npy"
    rng = np.random.default_rng(1)
    ramps = np.linspace(0.3, 0.7, 16)[None, None, :, None] * rng.uniform(0.5, 1.5, (24, 1, 1, 16))
    np.save(noisy, (ramps + 0.04 * rng.standard_normal(ramps.shape)).astype(np.float16))
    kw = dict(TINY_TRAIN, total_kimg=0.016)
    train_stylegan2(noisy, tmp_path / "m.pt", tmp_path / "l.csv", detector_noise=True, **kw)
    G = load_stylegan2(tmp_path / "m.pt")
    assert G.detector_noise_sd == pytest.approx(2 * 0.04, rel=0.05)  # G's -1..1 output units
    train_stylegan2(noisy, tmp_path / "p.pt", tmp_path / "p.csv", **kw)
    assert load_stylegan2(tmp_path / "p.pt").detector_noise_sd == 0  # the paper's: off


def test_noise_lr_mul_scales_how_far_adam_moves_the_noise_strengths(tmp_path):
    """Adam moves every parameter by about lr a step, whatever its gradient: the noise
    strength's multiplier is its own learning rate, and a model file remembers it."""
    moved = {}
    for mul in (1.0, 0.1):
        torch.manual_seed(0)
        G = Generator(8, **TINY_MODEL, noise_lr_mul=mul)
        opt = torch.optim.Adam(G.parameters(), lr=0.01, betas=(0.0, 0.99))
        for _ in range(5):
            opt.zero_grad()
            G(torch.randn(4, 16)).square().mean().backward()
            opt.step()
        moved[mul] = abs(G.convs[-1].noise_strength.item() * G.convs[-1].noise_lr_mul)
    assert 0.02 < moved[1.0] <= 0.05 + 1e-6  # ~lr a step, 5 steps
    assert moved[0.1] == pytest.approx(moved[1.0] / 10, rel=0.3)
    tiles = np.random.default_rng(0).random((16, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "t.npy", tiles)
    kw = dict(TINY_TRAIN, total_kimg=0.016, noise_lr_mul=0.1)
    train_stylegan2(tmp_path / "t.npy", tmp_path / "m.pt", tmp_path / "l.csv", **kw)
    assert load_stylegan2(tmp_path / "m.pt").convs[0].noise_lr_mul == 0.1


def test_log_noise_strengths_scale_instead_of_crossing_zero(tmp_path):
    """With log_noise_strength each strength is exp(a learnt log): it starts at the set value,
    Adam's steps of about lr scale it by about e^lr (a linear strength at 0.01 would cross zero
    in a few such steps), and a model file remembers the parameterisation."""
    torch.manual_seed(0)
    G = Generator(8, **TINY_MODEL, log_noise_strength=0.01)
    assert [float(c.strength().detach()) for c in (G.conv1, *G.convs)] == pytest.approx([0.01] * 3)
    opt = torch.optim.Adam(G.parameters(), lr=0.01, betas=(0.0, 0.99))
    for _ in range(5):
        opt.zero_grad()
        G(torch.randn(4, 16)).square().mean().backward()
        opt.step()
    moved = float(G.convs[-1].strength().detach())
    assert 0.01 * math.exp(-0.05 - 1e-6) <= moved <= 0.01 * math.exp(0.05 + 1e-6) and moved != 0.01
    tiles = np.random.default_rng(0).random((16, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "t.npy", tiles)
    kw = dict(TINY_TRAIN, total_kimg=0.016, log_noise_strength=0.02)
    train_stylegan2(tmp_path / "t.npy", tmp_path / "m.pt", tmp_path / "l.csv", **kw)
    loaded = load_stylegan2(tmp_path / "m.pt")
    assert loaded.convs[0].log_noise and 0 < float(loaded.convs[0].strength().detach()) < 0.03


def test_demodulation_makes_the_output_independent_of_the_style_scale():
    conv = ModulatedConv2d(4, 6, 3, w_dim=5)
    x = torch.randn(2, 4, 8, 8)
    w = torch.randn(2, 5)
    out = conv(x, w)
    conv.affine.weight.data *= 7.0  # styles s -> ~7 s
    conv.affine.bias.data *= 7.0
    torch.testing.assert_close(conv(x, w), out, rtol=1e-4, atol=1e-4)
    # and unit-variance input gives roughly unit-variance output
    big = conv(torch.randn(16, 4, 32, 32), torch.randn(16, 5))
    assert 0.7 < float(big.detach().std()) < 1.3


def test_blur_keeps_a_constant_image_constant_and_stddev_feature_sees_collapse():
    x = torch.full((1, 2, 8, 8), 0.3)
    torch.testing.assert_close(blur(x, (1, 2))[..., 2:-2, 2:-2], torch.full((1, 2, 4, 4), 0.3))
    same = torch.randn(1, 3, 4, 4).repeat(4, 1, 1, 1)
    assert float(minibatch_stddev(same)[:, -1].abs().max()) < 1e-3
    assert float(minibatch_stddev(torch.randn(4, 3, 4, 4))[:, -1].mean()) > 0.5


def test_ada_p_zero_is_identity_and_p_one_is_differentiable():
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    assert augment(x, 0.0) is x
    torch.manual_seed(0)
    y = augment(x, 1.0)
    assert y.shape == x.shape and not torch.allclose(y, x)
    y.square().sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_ada_flips_rotations_and_translations_are_exact_pixel_moves():
    torch.manual_seed(1)
    x = torch.arange(64.0).reshape(1, 1, 8, 8).repeat(16, 1, 1, 1)
    flips = augment(x, 1.0, ("xflip",))
    for img in flips:
        assert torch.allclose(img, x[0], atol=1e-4) or torch.allclose(img, x[0].flip(-1), atol=1e-4)
    rots = augment(x, 1.0, ("rot90",))
    options = [torch.rot90(x[0], k, (1, 2)) for k in range(4)]
    assert all(any(torch.allclose(img, o, atol=1e-4) for o in options) for img in rots)
    moved = augment(x, 1.0, ("translate",))
    for img in moved:  # a whole-pixel shift: every value is one of the original values
        assert torch.allclose(img, img.round(), atol=1e-4)
    with pytest.raises(ValueError, match="unknown augmentations"):
        augment(x, 0.5, ("hue",))


def test_roll_is_a_circular_shift_per_image_and_differentiable():
    torch.manual_seed(2)
    x = torch.arange(2 * 64.0).reshape(1, 2, 8, 8).repeat(32, 1, 1, 1).requires_grad_()
    rolled = augment(x, 1.0, ("roll",))
    shifts = {(a, b) for a in range(8) for b in range(8)}
    seen = set()
    for img in rolled:
        match = [s for s in shifts if torch.equal(img, torch.roll(x[0], s, (1, 2)))]
        assert len(match) == 1  # every image is one whole-pixel circular shift, both channels alike
        seen.add(match[0])
    assert len(seen) > 16  # offsets drawn over the whole period, per image
    rolled.square().sum().backward()
    assert torch.equal(x.grad, 2 * x.detach())  # a permutation: gradient goes back one to one
    kept = augment(x.detach(), 0.5, ("roll",))
    assert 4 < sum(torch.equal(a, b) for a, b in zip(kept, x.detach())) < 28


def test_ada_controller_moves_p_towards_the_target():
    ada = AdaptiveProbability(target=0.6, interval=4, kimg=1.0)
    for step in range(4):
        ada.accumulate(sign_sum=8, count=8)  # D is sure about every real: overfitting
        ada.update(step, batch_size=8)
    assert ada.rt == 1.0 and ada.p == pytest.approx(8 * 4 / 1000)
    for step in range(4, 8):
        ada.accumulate(sign_sum=-8, count=8)
        ada.update(step, batch_size=8)
    assert ada.p == 0.0  # decreased back, clamped at zero
    for step in range(8, 12):
        ada.accumulate(sign_sum=-8, count=8)
        ada.update(step, batch_size=8)
    assert ada.p == 0.0


def test_training_logs_ada_and_regularisers_and_sampling_is_seeded(tiles, tmp_path):
    summary = train_stylegan2(
        tiles, tmp_path / "m.pt", tmp_path / "log.csv", seed=1, total_kimg=0.08, **TINY_TRAIN
    )
    assert summary["steps"] == 10 and summary["r1_gamma"] == pytest.approx(0.0002 * 64 / 8)
    log = pd.read_csv(tmp_path / "log.csv")
    assert list(log.step) == [2, 4, 6, 8, 10]
    assert {"loss_d", "loss_g", "r1", "pl_penalty", "ada_p", "ada_rt", "sec_per_kimg"} <= set(log)
    assert np.isfinite(log[["loss_d", "loss_g", "r1", "pl_penalty"]].to_numpy()).all()
    assert (log.r1 > 0).any() and log.ada_p.between(0, 1).all()
    assert not resume_path_for(tmp_path / "m.pt").exists()  # removed once the model is final
    G = load_stylegan2(tmp_path / "m.pt")
    seeds = np.array([5, 6, 7])
    a = generate(G, seeds, batch_size=2)
    b = generate(G, seeds[1:2])
    assert a.shape == (3, 1, 8, 8) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_allclose(a[1], b[0], atol=1e-6)  # a tile depends on its seed only
    assert not np.allclose(a[0], a[2])


def test_generator_learns_the_intensity_of_the_real_tiles(tiles, tmp_path):
    G0 = Generator(8, **TINY_MODEL).eval()
    with torch.no_grad():
        before = float(((G0(torch.randn(64, 16)) + 1) / 2).clamp(0, 1).mean())
    train_stylegan2(
        tiles,
        tmp_path / "m.pt",
        tmp_path / "log.csv",
        seed=2,
        total_kimg=1.6,
        **{**TINY_TRAIN, "ema_kimg": 0.02, "lr": 0.01, "monitor_kimg": 0.4},
    )
    after = generate(load_stylegan2(tmp_path / "m.pt"), np.arange(64))
    real = np.load(tiles).astype(np.float32)
    assert abs(after.mean() - real.mean()) < 0.5 * abs(before - real.mean())
    assert abs(after.mean() - real.mean()) < 0.08
    # the monitor: a measurement at the first log row after every 0.4 kimg (50 steps)
    log = pd.read_csv(tmp_path / "log.csv")
    measured = log.dropna(subset=["ema_porosity"])
    assert list(measured.step) == [50, 100, 150, 200]
    assert log.real_porosity.iloc[0] == pytest.approx((real[:, 0] < 0.475).mean(), abs=0.03)
    gap = (measured.ema_porosity - log.real_porosity.iloc[0]).abs().to_numpy()
    assert gap.max() < 0.08  # measured 0.21 / 0.22 / 0.17 / 0.12 against 0.18 (untrained: 0.8)


def test_with_a_crop_stride_d_sees_crops_of_the_images_instead_of_the_tiles(tiles, tmp_path):
    # the tiles are bright with dark pores (mean ~0.75), the one 24-px image a flat 0.3: a G
    # trained against crops of the image must learn the image's grey, not the tiles'
    np.save(tmp_path / "images.npy", np.full((1, 1, 24, 24), 0.3, np.float32))
    pd.DataFrame({"path": ["a.tif"], "height": [24], "width": [24]}).to_csv(
        tmp_path / "images.csv", index=False
    )
    kw = dict(seed=2, total_kimg=0.4, **{**TINY_TRAIN, "ema_kimg": 0.02, "lr": 0.01})
    train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "l.csv", crop_stride=4,
                    images_path=tmp_path / "images.npy",
                    images_table_path=tmp_path / "images.csv", **kw)  # fmt: skip
    after = generate(load_stylegan2(tmp_path / "m.pt"), np.arange(64))
    assert abs(after.mean() - 0.3) < 0.1 and np.load(tiles).astype(np.float32).mean() > 0.6
    with pytest.raises(InputError, match="crop_stride 4 needs the ingested images"):
        train_stylegan2(tiles, tmp_path / "n.pt", tmp_path / "n.csv", crop_stride=4, **kw)
    with pytest.raises(InputError, match="tile size 8 is larger than the image"):
        np.save(tmp_path / "small.npy", np.full((1, 1, 6, 6), 0.3, np.float32))
        pd.DataFrame({"path": ["s.tif"]}).to_csv(tmp_path / "small.csv", index=False)
        train_stylegan2(tiles, tmp_path / "n.pt", tmp_path / "n.csv", crop_stride=4,
                        images_path=tmp_path / "small.npy",
                        images_table_path=tmp_path / "small.csv", **kw)  # fmt: skip
    assert not (tmp_path / "n.pt").exists()


def test_grey_histogram_term_pulls_the_grey_levels_towards_the_real_ones(tiles, tmp_path):
    real = np.sort(np.load(tiles).astype(np.float32).ravel())
    w1 = {}
    for weight in (0.0, 10.0):
        out = tmp_path / f"m{weight}.pt"
        kw = {**TINY_TRAIN, "lr": 0.01, "lambda_grey_histogram": weight}
        train_stylegan2(tiles, out, tmp_path / f"l{weight}.csv", seed=2, total_kimg=0.4, **kw)
        fake = np.sort(generate(load_stylegan2(out), np.arange(24)).ravel())
        w1[weight] = float(np.abs(fake - real).mean())
        log = pd.read_csv(tmp_path / f"l{weight}.csv")
        assert ("grey_histogram" in log) == (weight > 0)
    # measured 0.140 without the term, 0.117 with it (grey levels in 0..1)
    assert w1[10.0] < 0.92 * w1[0.0]
    assert log.grey_histogram.between(0, 2).all()


def test_per_phase_grey_term_darkens_the_pore_cores_that_the_pooled_term_lightens():
    from matgen.train.losses import grey_histogram_loss, pore_split_level

    # real: 20 % pore at 0.15, solid at 0.6; generated: 30 % pore with light cores at 0.25
    real = torch.cat([torch.full((200,), 0.15), torch.full((800,), 0.6)])
    fake = torch.cat([torch.full((300,), 0.25), torch.full((700,), 0.6)]).requires_grad_(True)
    level = pore_split_level(np.concatenate([real.numpy(), real.numpy()]).reshape(10, 1, 20, 10))
    assert 0.15 < (level + 1) / 2 < 0.6  # Otsu's level in [-1, 1] units, between the phases
    lighter = {}
    for name, split in (("pooled", None), ("per_phase", 0.4)):
        (grad,) = torch.autograd.grad(grey_histogram_loss(fake, real, split=split), fake)
        # gradient descent lightens a pore pixel where its gradient is negative
        lighter[name] = float((grad[:300] < 0).float().mean())
    # pooled: the surplus third of the pore pixels is matched with real solid and pushed up,
    # lighter; per phase every pore pixel is pushed towards the real pores' grey
    assert lighter == {"pooled": pytest.approx(1 / 3, abs=0.01), "per_phase": 0.0}


def test_per_phase_grey_term_is_logged_and_trains_g(tiles, tmp_path):
    weights = {}
    for phase in (0.0, 10.0):
        kw = {**TINY_TRAIN, "lambda_grey_histogram": 10.0, "lambda_grey_histogram_phase": phase}
        out, log = tmp_path / f"m{phase}.pt", tmp_path / f"l{phase}.csv"
        train_stylegan2(tiles, out, log, seed=3, total_kimg=0.08, **kw)
        assert ("grey_histogram_phase" in pd.read_csv(log)) == (phase > 0)
        weights[phase] = torch.load(out, weights_only=False)["G"]
    assert any(not torch.equal(weights[0.0][k], weights[10.0][k]) for k in weights[0.0])


def test_porosity_term_grows_pores_at_their_boundaries_and_leaves_their_cores_dark():
    from matgen.train.losses import porosity_distribution_loss, soft_porosity

    # discs of pore (-0.76, the SEM's pore grey in G's units) in solid (+0.3), with noise
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")

    def discs(radius: float) -> tuple[torch.Tensor, torch.Tensor]:
        inside = (yy - 16) ** 2 + (xx - 16) ** 2 < radius**2
        tile = torch.where(inside, -0.76, 0.3).expand(8, 1, 32, 32)
        return tile + 0.06 * torch.randn(8, 1, 32, 32, generator=g), inside

    real, real_inside = discs(9.0)  # pore fraction 0.25
    start, core = discs(5.0)  # 0.08
    level = -0.23
    assert float(soft_porosity(real, level).mean()) == pytest.approx(
        float(real_inside.float().mean()), abs=0.02
    )
    fake = start.clone().requires_grad_(True)
    opt = torch.optim.SGD([fake], lr=300.0)  # plain descent: Adam would move every pixel
    for _ in range(300):
        opt.zero_grad()
        porosity_distribution_loss(fake, soft_porosity(real, level), level).backward()
        opt.step()
    with torch.no_grad():
        grown = float(soft_porosity(fake, level).mean())
        # the pore fraction reaches the real one (from 0.08 to within 0.03 of 0.25)
        assert grown == pytest.approx(float(real_inside.float().mean()), abs=0.03)
        # it grows them by darkening the solid at their edge: the centre keeps its grey
        # (measured 0.002 within 2 px) and no pixel of the starting pores gets lighter
        moved = fake - start
        centre = (yy - 16) ** 2 + (xx - 16) ** 2 < 2.0**2
        assert float(moved[:, :, centre].abs().mean()) < 0.01
        assert float(moved[:, :, core].max()) < 0.01


def test_porosity_term_is_logged_and_trains_g(tiles, tmp_path):
    weights = {}
    for weight in (0.0, 10.0):
        out, log = tmp_path / f"m{weight}.pt", tmp_path / f"l{weight}.csv"
        train_stylegan2(
            tiles, out, log, seed=3, total_kimg=0.08, lambda_porosity=weight, **TINY_TRAIN
        )
        logged = pd.read_csv(log)
        assert ("porosity_distribution" in logged) == (weight > 0)
        weights[weight] = torch.load(out, weights_only=False)["G"]
    values = logged["porosity_distribution"]
    assert values.notna().all() and (values >= 0).all() and values.max() > 0
    # the same seed and steps: only the term tells the two generators apart
    assert any(not torch.equal(weights[0.0][k], weights[10.0][k]) for k in weights[0.0])


def test_smoothed_grey_term_sees_mottled_pores_that_the_raw_histogram_misses():
    from matgen.train.losses import grey_histogram_loss, smoothed_grey_histogram_loss

    # two phases in 8 x 8 blocks (pores 0.15, solid 0.6); the real tiles carry white detector
    # noise (sd 0.08), the fake ones none, each block offset by a grey drawn from the same
    # N(0, 0.08): the raw grey-level histograms are the same mixture, the pictures are not
    g = torch.Generator().manual_seed(0)
    phase = torch.where(torch.rand(64, 1, 8, 8, generator=g) < 0.2, 0.15, 0.6)
    up = lambda x: x.repeat_interleave(8, -1).repeat_interleave(8, -2)  # noqa: E731
    real = up(phase) + 0.08 * torch.randn(64, 1, 64, 64, generator=g)
    fake = up(phase + 0.08 * torch.randn(64, 1, 8, 8, generator=g)).requires_grad_(True)
    raw = float(grey_histogram_loss(fake.detach(), real))
    assert raw < 0.01  # measured 0.002
    with torch.no_grad():
        assert float(smoothed_grey_histogram_loss(fake, real, 0.0)) == pytest.approx(raw)
        both = smoothed_grey_histogram_loss(fake, real, 1.0)
    # smoothed, the real noise falls to sd 0.023 while the blocks keep 0.08 (less at their
    # edges): measured 0.032, ten times the raw term
    assert 0.02 < float(both) - raw < 0.06
    smoothed_grey_histogram_loss(fake, real, 1.0).backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
    # the same noisy picture as the real one scores near zero at both scales
    same = up(phase) + 0.08 * torch.randn(64, 1, 64, 64, generator=g)
    assert float(smoothed_grey_histogram_loss(same, real, 1.0)) < 0.005  # measured 0.0006


def test_learning_rates_ramp_down_to_zero_over_the_last_fraction(tiles, tmp_path):
    from matgen.train.stylegan2 import lr_rampdown_factor

    assert [lr_rampdown_factor(s, 100, 0.4) for s in (0, 60, 80, 100)] == pytest.approx(
        [1.0, 1.0, 0.5, 0.0], abs=1e-12
    )
    assert lr_rampdown_factor(99, 100, 0.0) == 1.0
    moves: dict[int, float] = {}
    before: dict[str, torch.Tensor] = {}

    def watch(step, state):
        now = {k: v.detach().clone() for k, v in state["G"].named_parameters()}
        if before:
            moves[step] = sum(float((now[k] - before[k]).abs().sum()) for k in now)
        before.update(now)

    kw = dict(seed=3, total_kimg=0.096, lr_rampdown=1.0, on_step=watch, **TINY_TRAIN)  # 12 steps
    train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "l.csv", **kw)
    # Adam's steps scale with the rate: step 12 runs at 0.017, step 2 at 0.98 (measured: the
    # move of step 12 is 0.008 of step 2's; 0.55 at constant rates)
    assert moves[12] < 0.1 * moves[2]


def test_a_narrower_discriminator_leaves_the_generator_as_it_was(tiles, tmp_path):
    kw = dict(seed=1, total_kimg=0.016, **TINY_TRAIN)
    train_stylegan2(tiles, tmp_path / "a.pt", tmp_path / "a.csv", **kw)
    train_stylegan2(tiles, tmp_path / "b.pt", tmp_path / "b.csv", d_channel_base=16, **kw)
    a, b = (torch.load(tmp_path / f"{k}.pt", weights_only=False) for k in "ab")
    assert a["model_config"] == b["model_config"]  # sampling rebuilds the same G
    assert {k: v.shape for k, v in a["G"].items()} == {k: v.shape for k, v in b["G"].items()}
    # channel_base 64 gives D 8 maps at 8 px and 16 at 4 px; 16 gives 2 and 4
    assert a["D"]["from_rgb.weight"].shape[0] == 8 and b["D"]["from_rgb.weight"].shape[0] == 2
    assert a["D"]["conv.weight"].shape[0] == 16 and b["D"]["conv.weight"].shape[0] == 4
    n_a, n_b = (sum(v.numel() for v in m["D"].values()) for m in (a, b))
    assert n_b < n_a / 4
    assert generate(load_stylegan2(tmp_path / "b.pt"), np.arange(2)).shape == (2, 1, 8, 8)


def test_the_model_keeps_the_snapshot_closest_to_the_real_tiles(tiles, tmp_path):
    # 12 steps, scored at every measurement from step 4 (monitor every 2 steps)
    kw = dict(seed=5, monitor_kimg=0.016, select_from_kimg=0.032, **TINY_TRAIN)
    summary = train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "m.csv", total_kimg=0.096, **kw)
    log = pd.read_csv(tmp_path / "m.csv")
    scored = log.dropna(subset=["snapshot_mismatch"])
    assert list(scored.step) == [4, 6, 8, 10, 12] and (scored.snapshot_mismatch > 0).all()
    best = int(scored.step[scored.snapshot_mismatch.idxmin()])
    assert best < 12 and summary["selected_kimg"] == best * 8 / 1000
    # the same run stopped at the chosen step, nothing selected: the same EMA weights
    kw["select_from_kimg"] = 0.0
    train_stylegan2(tiles, tmp_path / "s.pt", tmp_path / "s.csv", total_kimg=best * 0.008, **kw)
    kept, stopped = (torch.load(tmp_path / f, weights_only=False) for f in ("m.pt", "s.pt"))
    for name, value in stopped["G_ema"].items():
        assert torch.equal(value, kept["G_ema"][name]), name
    with pytest.raises(InputError, match="select_from_kimg 1.0 .* set monitor_kimg"):
        bad = {**kw, "monitor_kimg": 0.0, "select_from_kimg": 1.0, "total_kimg": 0.016}
        train_stylegan2(tiles, tmp_path / "x.pt", tmp_path / "x.csv", **bad)


def test_killed_training_resumes_bit_identically(tiles, tmp_path):
    # 12 steps, checkpoint every 4; the rates ramp down over the last half (they follow the step)
    kw = dict(seed=3, total_kimg=0.096, checkpoint_kimg=0.032, lr_rampdown=0.5, **TINY_TRAIN)
    kw["d_channel_base"] = 32  # the resumed D is rebuilt at its own widths
    train_stylegan2(tiles, tmp_path / "plain.pt", tmp_path / "plain.csv", **kw)
    kw["monitor_kimg"] = 0.04  # every 5 steps, at log rows (every 2): 6, 10 and the last, 12
    train_stylegan2(tiles, tmp_path / "full.pt", tmp_path / "full.csv", **kw)

    def cut_and_resume(name, at, **extra):
        def kill(step, state):
            if step == at:
                raise KeyboardInterrupt

        model, log = tmp_path / f"{name}.pt", tmp_path / f"{name}.csv"
        with pytest.raises(KeyboardInterrupt):
            train_stylegan2(tiles, model, log, on_step=kill, **kw, **extra)
        assert resume_path_for(model).exists() and not model.exists()
        train_stylegan2(tiles, model, log, **kw, **extra)
        return torch.load(model, weights_only=False), pd.read_csv(log).drop(columns="sec_per_kimg")

    cut, cut_log = cut_and_resume("cut", 7)
    full = torch.load(tmp_path / "full.pt", weights_only=False)
    plain = torch.load(tmp_path / "plain.pt", weights_only=False)
    for key in ("G_ema", "G", "D"):
        for name, value in full[key].items():
            assert torch.equal(value, cut[key][name]), (key, name)
            assert torch.equal(value, plain[key][name]), (key, name)  # the monitor draws nothing
    log = pd.read_csv(tmp_path / "full.csv").drop(columns="sec_per_kimg")
    pd.testing.assert_frame_equal(log, cut_log)
    assert list(log.dropna(subset=["ema_porosity"]).step) == [6, 10, 12]
    # choosing a snapshot (scored at 6, 10, 12): the checkpoint at 8 carries step 6's
    sel = dict(select_from_kimg=0.04)
    train_stylegan2(tiles, tmp_path / "sel.pt", tmp_path / "sel.csv", **kw, **sel)
    cut, cut_log = cut_and_resume("sel_cut", 9, **sel)
    full = torch.load(tmp_path / "sel.pt", weights_only=False)
    assert full["summary"]["selected_kimg"] == cut["summary"]["selected_kimg"] == 6 * 0.008
    for name, value in full["G_ema"].items():
        assert torch.equal(value, cut["G_ema"][name]), name
    log = pd.read_csv(tmp_path / "sel.csv").drop(columns="sec_per_kimg")
    pd.testing.assert_frame_equal(log, cut_log)


def test_bad_inputs_fail_in_one_line_and_overwrite_nothing(tiles, tmp_path):
    odd = tmp_path / "odd.npy"
    np.save(odd, np.zeros((16, 1, 12, 12), np.float16))
    with pytest.raises(InputError, match="12 px is not a power of two"):
        train_stylegan2(odd, tmp_path / "m.pt", tmp_path / "l.csv", **TINY_TRAIN)
    few = tmp_path / "few.npy"
    np.save(few, np.zeros((5, 1, 8, 8), np.float16))
    with pytest.raises(InputError, match="5 tiles, fewer than one batch"):
        train_stylegan2(few, tmp_path / "m.pt", tmp_path / "l.csv", **TINY_TRAIN)

    def kill(step, state):
        if step == 5:
            raise KeyboardInterrupt

    kw = dict(total_kimg=0.08, checkpoint_kimg=0.032, **TINY_TRAIN)
    with pytest.raises(KeyboardInterrupt):
        train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "l.csv", on_step=kill, **kw)
    resume = resume_path_for(tmp_path / "m.pt")
    before = resume.read_bytes()
    with pytest.raises(InputError, match="different architecture .*channel_max 16 vs 8"):
        train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "l.csv", **{**kw, "channel_max": 8})
    assert resume.read_bytes() == before and not (tmp_path / "m.pt").exists()

    def poison(step, state):
        if step == 5:
            for p in state["D"].parameters():
                p.data.fill_(float("nan"))

    resume.unlink()
    with pytest.raises(
        TrainingDiverged, match=r"loss_d is not finite at step 6 .*m\.resume\.pt \(step 4\)"
    ):
        train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "l.csv", on_step=poison, **kw)
    assert not (tmp_path / "m.pt").exists()
    with pytest.raises(InputError, match="not a stylegan2 model checkpoint"):
        torch.save({"model_config": {}, "family": "cyclegan"}, tmp_path / "c.pt")
        load_stylegan2(tmp_path / "c.pt")


def test_two_process_data_parallel_training_on_cpu(tiles, tmp_path):
    kw = dict(
        tiles_path=str(tiles),
        model_out=str(tmp_path / "ddp.pt"),
        log_out=str(tmp_path / "ddp.csv"),
        seed=4,
        total_kimg=0.048,
        **{k: v for k, v in TINY_TRAIN.items()},
    )
    launch("matgen.train.stylegan2:train_stylegan2", kw, nproc=2)
    payload = torch.load(tmp_path / "ddp.pt", weights_only=False)
    assert payload["summary"]["processes"] == 2 and payload["step"] == 6
    log = pd.read_csv(tmp_path / "ddp.csv")  # rank 0 alone wrote the log
    assert list(log.step) == [2, 4, 6]
    G = load_stylegan2(tmp_path / "ddp.pt")
    assert np.isfinite(generate(G, np.arange(4))).all()
    with pytest.raises(MatgenError, match="2 data-parallel processes failed"):
        launch("matgen.train.stylegan2:train_stylegan2", {**kw, "batch_size": 7}, nproc=2)


def test_pore_crack_field_draws_one_gated_straight_line_per_tile(tiles, tmp_path):
    new = {"pore_crack_gate.weight", "pore_crack_gate.bias", "pore_crack_noise_const"}
    plain, G = generator_pair(new, pore_crack_strength=3.0, pore_crack_width=0.6)
    assert G.extra_noise_shapes() == [(1, 32, 32), (1, 2)]
    ws = torch.randn(3, G.num_ws, 16)
    with torch.no_grad():
        G.pore_crack_gate.weight.zero_()
        G.pore_crack_gate.bias.fill_(0.0)  # gate 1/2
        # normals (0, 0): angle π/2 (a vertical line), offset 0: between columns 15 and 16
        field = G._crack_field(torch.zeros(3, 1, 2), "random", torch.zeros(3, 1, 32, 32), ws)
        assert field.shape == (3, 1, 32, 32)
        half_px = 1.5 * math.exp(-0.5 * (0.5 / 0.6) ** 2)  # strength × gate × profile at 0.5 px
        np.testing.assert_allclose(field[..., 15], half_px, rtol=1e-5)
        np.testing.assert_allclose(field[..., 16], half_px, rtol=1e-5)
        assert float(field[..., :12].abs().max()) < 1e-6  # 4 px away: nothing
        # any normals: one straight line, the field's pixels over half its peak on one axis
        field = G._crack_field(torch.randn(64, 1, 2), "random", torch.zeros(64, 1, 32, 32), ws[:1])
        for one in field[:, 0]:
            y, x = np.nonzero(one.numpy() > 0.75)
            if len(x) > 8:
                coords = np.stack([x - x.mean(), y - y.mean()])
                minor = np.linalg.eigvalsh(np.cov(coords))[0]
                assert minor < 0.5, minor  # a line about 1-2 px wide
        # a shut gate draws what G without the field draws
        z = torch.randn(4, 16)
        G.pore_crack_gate.bias.fill_(-100.0)
        np.testing.assert_allclose(G(z, noise_mode="const"), plain(z, noise_mode="const"),
                                   atol=1e-5)  # fmt: skip
        G.pore_crack_gate.bias.fill_(100.0)
        assert (G(z, noise_mode="const") - plain(z, noise_mode="const")).abs().max() > 0.1
    seeded = generate(G, np.arange(4))  # the line drawn from each tile's seed
    np.testing.assert_array_equal(seeded, generate(G, np.arange(4)))
    with pytest.raises(ValueError, match="pore_crack_strength: needs a two-phase output"):
        Generator(32, **TINY_MODEL, pore_crack_strength=1.0)
    kw = {**TINY_TRAIN, "two_phase": True, "total_kimg": 0.048, "seed": 3}
    train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "l.csv",
                    pore_cracks={"strength": 2.0, "width": 0.8}, **kw)  # fmt: skip
    gate = pd.read_csv(tmp_path / "l.csv")["pore_crack_gate"]
    assert ((gate > 0) & (gate < 1)).all()  # the mean gate over fixed latents, logged
    G = load_stylegan2(tmp_path / "m.pt")
    assert (G.pore_crack_strength, G.pore_crack_width) == (2.0, 0.8)
    with pytest.raises(InputError, match="pore_cracks: needs stylegan2.two_phase"):
        train_stylegan2(tiles, tmp_path / "x.pt", tmp_path / "x.csv",
                        pore_cracks={"strength": 2.0}, **TINY_TRAIN)  # fmt: skip


def test_probe_blur_is_a_gaussian_psf_on_the_drawn_image_before_the_detector_noise(tiles, tmp_path):
    plain, G = generator_pair(set(), psf_sigma=0.7)  # no weight added, none redrawn
    # one bright pixel in a flat tile: the PSF itself, sigma 0.7 px, summing to 1
    spike = torch.zeros(1, 1, 32, 32)
    spike[..., 16, 16] = 1.0
    psf = gaussian_blur(spike, G.psf_sigma)[0, 0]
    assert float(psf.sum()) == pytest.approx(1.0, abs=1e-6)
    axis = torch.arange(32.0) - 16
    width = float((psf.sum(0) * axis.square()).sum()) ** 0.5  # the PSF's sd along one axis
    assert width == pytest.approx(0.7, rel=0.02)
    flat = torch.full((2, 1, 32, 32), 0.3)  # mirrored edges: a flat tile stays flat
    torch.testing.assert_close(gaussian_blur(flat, G.psf_sigma), flat)
    z = torch.randn(64, 16)
    with torch.no_grad():
        for layer in (plain.to_rgbs[-1], G.to_rgbs[-1]):  # a loud 32-px output: sharp detail
            layer.conv.weight.mul_(20.0)
        sharp, blurred = plain(z, noise_mode="none"), G(z, noise_mode="none")
        torch.testing.assert_close(blurred, gaussian_blur(sharp, G.psf_sigma))
        window = torch.outer(torch.hann_window(32), torch.hann_window(32))  # no wrap-around edge
        power = [torch.fft.fft2((x[:, 0] - x.mean()) * window).abs().square().mean(0)
                 for x in (sharp, blurred)]  # fmt: skip
        f = torch.fft.fftfreq(32).abs()
        high = (f.view(-1, 1) > 0.35) & (f.view(1, -1) > 0.35)
        # the PSF's power transfer there is exp(-4 pi^2 0.49 (fx^2 + fy^2)) < 0.01
        assert float(power[1][high].sum() / power[0][high].sum()) < 0.02
        noise = G(z) - blurred  # the detector's noise comes after the blur: still white
        assert noise.std().item() == pytest.approx(0.1, rel=0.05)
    kw = {**TINY_TRAIN, "two_phase": True, "total_kimg": 0.016}
    train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "l.csv", psf_sigma=0.7, **kw)
    assert load_stylegan2(tmp_path / "m.pt").psf_sigma == 0.7
    # every Generator option travels in a model file (a new one forgotten there is lost on load)
    assert set(MODEL_KEYS) == set(inspect.signature(Generator).parameters)


def test_pore_rim_brightens_the_solid_all_round_each_pore_by_a_learnt_strength(tiles, tmp_path):
    plain, G = generator_pair({"pore_rim_strength", "pore_rim_kernel"}, pore_rim_length=1.5)
    z = torch.randn(4, 16)
    with torch.no_grad():
        torch.testing.assert_close(G(z, noise_mode="const"), plain(z, noise_mode="const"))  # at 0
        G.pore_rim_strength.fill_(0.5)
        yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        distance = ((yy - 15.5).square() + (xx - 15.5).square()).sqrt()
        disc = (distance < 6).float()[None, None]  # a round pore, 12 px across
        rim = G._rim(disc)[0, 0]
        ring = (distance > 6) & (distance < 7)  # the solid's first pixel round the pore
        far = distance > 14
        assert float(rim[ring].min()) > 0.05  # brighter all the way round...
        torch.testing.assert_close(torch.rot90(rim), rim)  # ...the same on every side
        assert float(rim[far].max()) < 1e-3  # and only near the wall
        outward = [float(rim[(distance > d) & (distance < d + 1)].mean()) for d in (6, 7, 8, 9)]
        assert outward == sorted(outward, reverse=True)  # fading with distance from the wall
    with pytest.raises(ValueError, match="pore_rim_length: needs a two-phase output"):
        Generator(32, **TINY_MODEL, pore_rim_length=1.5)
    with pytest.raises(ValueError, match="pore_rim_length 2.0: too long for 8 px"):
        Generator(8, **TINY_MODEL, pore_phase_grey=-0.75, pore_rim_length=2.0)
    kw = {**TINY_TRAIN, "two_phase": True, "total_kimg": 0.032}
    train_stylegan2(tiles, tmp_path / "m.pt", tmp_path / "l.csv", pore_rim_length=1.5, **kw)
    strength = pd.read_csv(tmp_path / "l.csv")["pore_rim_strength"]
    assert strength.iloc[-1] != 0  # learnt (logged)
    assert load_stylegan2(tmp_path / "m.pt").pore_rim_length == 1.5
    with pytest.raises(InputError, match="pore_rim_length: needs stylegan2.two_phase"):
        train_stylegan2(tiles, tmp_path / "x.pt", tmp_path / "x.csv", pore_rim_length=1.5,
                        **TINY_TRAIN)  # fmt: skip
