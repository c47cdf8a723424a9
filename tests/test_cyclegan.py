"""CycleGAN parts and training on tiny CPU models."""

import random

import numpy as np
import pandas as pd
import pytest
import torch

from matgen.checkpoint import resume_path_for
from matgen.errors import InputError
from matgen.inference.cyclegan import load_cyclegan_generator, translate
from matgen.models.cyclegan import ImagePool, PatchDiscriminator, ResnetGenerator, patch_layers_for
from matgen.train.cyclegan import train_cyclegan
from matgen.train.losses import (
    forward_model_loss,
    grey_histogram_loss,
    lsgan_loss,
    observe_low_resolution,
)

TINY = dict(
    batch_size=2,
    ngf=4,
    n_blocks=1,
    n_downsampling=1,
    ndf=4,
    n_layers=2,
    pool_size=4,
    log_every=2,
    device="cpu",
    show_progress=False,
)


@pytest.fixture
def domains(tmp_path):
    """Low-res tiles (8 px) = 4x block means of high-res tiles (32 px) of random blobs."""
    rng = np.random.default_rng(0)
    high = (rng.random((12, 1, 32, 32)) > 0.7).astype(np.float32)
    high = np.clip(high + 0.1 * rng.standard_normal(high.shape), 0, 1)
    low = high.reshape(12, 1, 8, 4, 8, 4).mean((3, 5))
    np.save(tmp_path / "low.npy", low[:10].astype(np.float16))
    np.save(tmp_path / "high.npy", high[2:].astype(np.float16))
    return tmp_path / "low.npy", tmp_path / "high.npy"


def test_generators_change_resolution_by_their_scale():
    x = torch.randn(2, 1, 16, 16)
    assert ResnetGenerator(1, 1, 8, 1, 1, scale=4)(x).shape == (2, 1, 64, 64)
    assert ResnetGenerator(1, 1, 8, 1, 1, scale=0.25)(x).shape == (2, 1, 4, 4)
    y = ResnetGenerator(1, 1, 8, 1, 2, scale=1)(x)
    assert y.shape == x.shape and float(y.detach().abs().max()) <= 1.0
    with pytest.raises(ValueError, match="not a power of two"):
        ResnetGenerator(scale=3)


def test_patch_discriminator_depth_fits_the_tile_size():
    for size, wanted, expect in ((16, 3, 2), (64, 3, 3), (8, 3, 1), (256, 3, 3)):
        n = patch_layers_for(size, wanted)
        assert n == expect
        out = PatchDiscriminator(1, 4, n)(torch.randn(1, 1, size, size))
        assert out.shape[-1] >= 2


def test_lsgan_loss_and_image_pool():
    assert float(lsgan_loss(torch.ones(3, 1, 2, 2), True)) == 0.0
    assert float(lsgan_loss(torch.full((3, 1, 2, 2), 0.5), False)) == pytest.approx(0.25)
    pool = ImagePool(2, random.Random(0))
    first = torch.zeros(2, 1, 4, 4)
    assert torch.equal(pool.query(first), first)  # fills the pool
    out = pool.query(torch.ones(8, 1, 4, 4))
    values = set(out.flatten(1).mean(1).tolist())
    assert values <= {0.0, 1.0} and 0.0 in values  # some old fakes come back, never mixed
    assert torch.equal(ImagePool(0).query(first), first)


def test_training_reduces_the_cycle_loss_and_translates_to_the_right_size(domains, tmp_path):
    low, high = domains
    summary = train_cyclegan(
        low,
        high,
        tmp_path / "c.pt",
        tmp_path / "c.csv",
        seed=1,
        steps=40,
        lr=2e-3,
        checkpoint_every=100,
        **TINY,
    )
    assert summary["scale"] == 4
    log = pd.read_csv(tmp_path / "c.csv")
    assert {"loss_g", "loss_d", "gan_h", "gan_l", "cycle", "identity", "lr"} <= set(log)
    assert (log.identity == 0).all()  # scale 4: no identity loss
    assert log.cycle.iloc[-3:].mean() < 0.9 * log.cycle.iloc[:3].mean()
    assert log.lr.iloc[-1] < log.lr.iloc[0]  # linear decay in the second half
    G = load_cyclegan_generator(tmp_path / "c.pt", "G_LH")
    out = translate(G, np.load(low), batch_size=3)
    assert out.shape == (10, 1, 32, 32) and 0 <= out.min() and out.max() <= 1
    back = translate(load_cyclegan_generator(tmp_path / "c.pt", "G_HL"), out)
    assert back.shape == (10, 1, 8, 8)


@pytest.mark.parametrize("channels_last", [False, True])
def test_killed_cyclegan_resumes_bit_identically(domains, tmp_path, channels_last):
    low, high = domains
    kw = dict(seed=2, steps=8, checkpoint_every=3, lambda_forward=10.0, channels_last=channels_last,
              **TINY)  # fmt: skip
    train_cyclegan(low, high, tmp_path / "a.pt", tmp_path / "a.csv", **kw)

    def kill(step, nets):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_cyclegan(low, high, tmp_path / "b.pt", tmp_path / "b.csv", on_step=kill, **kw)
    assert resume_path_for(tmp_path / "b.pt").exists()
    train_cyclegan(low, high, tmp_path / "b.pt", tmp_path / "b.csv", **kw)
    a = torch.load(tmp_path / "a.pt", weights_only=False)
    b = torch.load(tmp_path / "b.pt", weights_only=False)
    for net in ("G_LH", "G_HL", "D_H", "D_L"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), (net, k)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a.csv").drop(columns="sec_per_step"),
        pd.read_csv(tmp_path / "b.csv").drop(columns="sec_per_step"),
    )


def test_bad_inputs(domains, tmp_path):
    low, high = domains
    np.save(tmp_path / "odd.npy", np.zeros((4, 1, 24, 24), np.float16))
    with pytest.raises(InputError, match="24 is not a power-of-two multiple of the 8 px"):
        train_cyclegan(low, tmp_path / "odd.npy", tmp_path / "c.pt", tmp_path / "c.csv", **TINY)
    with pytest.raises(InputError, match="fewer than one batch"):
        train_cyclegan(
            low, high, tmp_path / "c.pt", tmp_path / "c.csv", **{**TINY, "batch_size": 11}
        )
    torch.save({"model_config": {}, "family": "stylegan2"}, tmp_path / "s.pt")
    with pytest.raises(InputError, match="not a cyclegan model checkpoint"):
        load_cyclegan_generator(tmp_path / "s.pt")


def test_low_resolution_observation_is_blurred_block_means():
    rng = np.random.default_rng(1)
    high = torch.from_numpy(rng.random((2, 1, 32, 32), dtype=np.float32))
    blocks = high.reshape(2, 1, 8, 4, 8, 4).mean((3, 5))
    assert torch.allclose(observe_low_resolution(high, 4, 0.0), blocks, atol=1e-6)
    blurred = observe_low_resolution(high, 4, 0.7)
    assert blurred.shape == (2, 1, 8, 8)
    # a point-spread blur keeps the grey level, and smooths: less variance than the blocks
    assert float(blurred.mean()) == pytest.approx(float(high.mean()), abs=5e-3)
    assert float(blurred.var()) < float(blocks.var())
    flat = torch.full((1, 1, 16, 16), 0.3)
    assert torch.allclose(observe_low_resolution(flat, 4, 1.0), torch.full((1, 1, 4, 4), 0.3))


def test_forward_model_loss_accepts_other_grey_levels_but_not_other_structure():
    from scipy import ndimage

    rng = np.random.default_rng(2)
    field = ndimage.gaussian_filter(rng.standard_normal((4, 1, 32, 32)), (0, 0, 3, 3))
    high = torch.from_numpy((field > np.quantile(field, 0.75)).astype(np.float32))
    low = 0.2 + 0.6 * observe_low_resolution(1 - high, 4, 0.7)  # attenuation of the solid
    # the translation shows pores dark on another grey scale: same structure, loss ~ 0
    sem_like = 0.6 - 0.5 * high
    assert float(forward_model_loss(sem_like, low, 4, 0.7)) < 1e-3
    shuffled = sem_like[[1, 2, 3, 0]]  # other tiles' structure
    assert float(forward_model_loss(shuffled, low, 4, 0.7)) > 0.02
    inverted = 1 - sem_like  # pores bright: no positive gain fits it
    assert float(forward_model_loss(inverted, low, 4, 0.7)) > 0.02
    # texture inside the solid changes grey levels, not phases: a soft segmentation at the
    # pore level sees through it
    textured = sem_like + 0.2 * (1 - high) * torch.rand(
        high.shape, generator=torch.Generator().manual_seed(0)
    )
    grey = float(forward_model_loss(textured, low, 4, 0.7))
    phase = float(forward_model_loss(textured, low, 4, 0.7, pore_level=0.35, softness=0.02))
    assert phase < 1e-3 < grey


def test_grey_histogram_loss_is_the_w1_between_grey_levels():
    g = torch.Generator().manual_seed(0)
    target = torch.rand((4, 1, 16, 16), generator=g)
    # the same grey levels in another arrangement cost nothing: only the histogram counts
    assert float(grey_histogram_loss(target.flip(-1)[[2, 0, 3, 1]], target)) < 1e-7
    assert float(grey_histogram_loss(target + 0.1, target)) == pytest.approx(0.1, abs=1e-6)
    # a two-phase target: too few dark pixels cost their share times the grey gap
    two_phase = torch.where(torch.arange(1000) < 150, 0.1, 0.6).float()
    fewer_pores = torch.where(torch.arange(1000) < 100, 0.1, 0.6).float()
    assert float(grey_histogram_loss(fewer_pores, two_phase)) == pytest.approx(0.05 * 0.5)
    # other pixel counts: the target's quantiles at the generated ranks
    assert float(grey_histogram_loss(fewer_pores[::4], two_phase)) == pytest.approx(0.025, abs=2e-3)
    generated = (target + 0.2).requires_grad_(True)
    grey_histogram_loss(generated, target.requires_grad_(True)).backward()
    assert generated.grad is not None and target.grad is None
    # per phase (cut at 0.35): another pore fraction costs nothing, grey pores still cost
    assert float(grey_histogram_loss(fewer_pores, two_phase, split=0.35)) < 1e-7
    grey_pores = torch.where(torch.arange(1000) < 100, 0.3, 0.6).float()
    assert float(grey_histogram_loss(grey_pores, two_phase, split=0.35)) == pytest.approx(0.02)
    # a phase the target lacks is not matched
    assert float(grey_histogram_loss(two_phase, torch.full((1000,), 0.6), split=0.35)) < 1e-7


def test_forward_pyramid_sees_a_per_tile_offset_that_the_input_noise_hides():
    g = torch.Generator().manual_seed(0)
    signal = torch.rand((4, 1, 16, 16), generator=g).round() * 0.5
    low = signal + 0.2 * torch.randn((4, 1, 16, 16), generator=g)  # a noisy instrument
    # the same structure, each tile brighter or darker as a whole (another porosity)
    shifted = signal + torch.tensor([0.05, -0.05, 0.05, -0.05]).view(4, 1, 1, 1)
    costs = {}
    for pyramid in (False, True):
        exact = float(forward_model_loss(signal, low, 1, 0.0, pyramid=pyramid))
        costs[pyramid] = float(forward_model_loss(shifted, low, 1, 0.0, pyramid=pyramid)) - exact
    assert 0 < costs[False] < 0.01  # at the voxel scale the offset hides under the noise
    assert costs[True] > 10 * costs[False]  # block means down to one a tile: it costs
    assert float(forward_model_loss(signal, signal, 1, 0.0, pyramid=True)) < 1e-5


def test_calibrated_forward_model_pins_the_porosity_a_batch_match_leaves_free():
    g = torch.Generator().manual_seed(1)
    solid = (torch.rand((4, 1, 32, 32), generator=g) > 0.2).float()  # 1 = solid, 0 = pore
    translated = solid * 1.2 - 0.6  # pores dark, solid bright in [-1, 1]
    # what a micro-CT calibrated at pore -0.6 / solid 0.6 reads of it (factor 4, no blur)
    low = -0.6 + 1.2 * torch.nn.functional.avg_pool2d(solid, 4)
    porous = torch.where(torch.rand((4, 1, 32, 32), generator=g) < 0.15, -0.6, translated)

    def cost(t, levels):
        return float(forward_model_loss(t, low, 4, 0.0, pore_level=0.0, levels=levels))

    assert cost(translated, (-0.6, 0.6)) < 1e-3
    # 15 % more pores everywhere: the batch's gain and offset absorb much of it, the calibrated
    # instrument reads it in full
    assert cost(porous, (-0.6, 0.6)) > 0.1 and cost(porous, (-0.6, 0.6)) > 1.5 * cost(porous, None)


def test_forward_model_loss_ties_the_translation_to_its_input(tmp_path):
    from scipy import ndimage

    # pores of a smooth field, seen by a blurring, 4x coarser instrument
    rng = np.random.default_rng(4)
    field = ndimage.gaussian_filter(rng.standard_normal((24, 1, 32, 32)), (0, 0, 2, 2))
    pores = (field > np.quantile(field, 0.8)).astype(np.float32)
    high = np.clip(0.6 - 0.45 * pores + 0.03 * rng.standard_normal(pores.shape), 0, 1)
    ct = 0.2 + 0.6 * observe_low_resolution(torch.from_numpy(1 - pores), 4, 0.7).numpy()
    low, high_path = tmp_path / "low.npy", tmp_path / "high.npy"
    np.save(low, ct[:12].astype(np.float16))
    np.save(high_path, high[12:].astype(np.float16))
    kw = dict(seed=3, steps=40, lr=2e-3, checkpoint_every=100, **TINY)
    agreement = {}
    for weight in (0.0, 100.0):
        out = tmp_path / f"f{weight}.pt"
        train_cyclegan(
            low, high_path, out, tmp_path / f"f{weight}.csv", lambda_forward=weight, **kw
        )
        x = np.load(low).astype(np.float32)
        y = translate(load_cyclegan_generator(out, "G_LH"), x)
        seen = observe_low_resolution(torch.from_numpy(y), 4, 0.7).numpy()
        agreement[weight] = np.corrcoef(seen.ravel(), x.ravel())[0, 1]
    log = pd.read_csv(tmp_path / "f100.0.csv")
    assert log.forward.iloc[-3:].mean() < log.forward.iloc[:3].mean()
    # without it the translation's coarse view is unrelated to (here anti-correlated with) x
    assert agreement[100.0] > 0.4 and agreement[100.0] > agreement[0.0] + 0.5
    with pytest.raises(InputError, match="forward_factor 2 but the tiles differ by a factor 4"):
        kw = dict(lambda_forward=1, forward_factor=2, **TINY)
        train_cyclegan(low, high_path, tmp_path / "x.pt", tmp_path / "x.csv", **kw)


def _row_shifts(images: np.ndarray, period: int) -> np.ndarray:
    """Each row's shift (px) of a horizontal sinusoid of ``period`` px, from its phase."""
    bin_ = images.shape[-1] // period
    phase = np.angle(np.fft.rfft(images, axis=-1)[..., bin_])
    return -(phase - phase[..., :1]) * period / (2 * np.pi)  # against each image's first row


def test_scan_row_jitter_shifts_rows_by_an_ar1_series_of_the_asked_rms():
    from matgen.models.cyclegan import scan_row_jitter

    x = torch.cos(2 * np.pi * torch.arange(64) / 16).expand(32, 1, 128, 64).clone()
    torch.testing.assert_close(scan_row_jitter(x, 0.0, 0.5), x, atol=1e-5, rtol=0)
    g = torch.Generator().manual_seed(0)
    y = scan_row_jitter(x, 0.75, 0.5, g).numpy()[:, 0]
    shifts = _row_shifts(y, 16)
    steps = np.diff(shifts, axis=1)  # row-to-row: rms · √(2 (1 − ρ)) = 0.75 px here
    assert np.sqrt(np.mean(steps**2)) == pytest.approx(0.75, rel=0.1)
    lag2 = shifts[:, 2:] - shifts[:, :-2]  # rms · √(2 (1 − ρ²)) = 0.92 px
    assert np.sqrt(np.mean(lag2**2)) == pytest.approx(0.75 * np.sqrt(1.5), rel=0.1)
    assert np.abs(y).max() == pytest.approx(1.0, abs=1e-3)  # a shift, not a blur


def test_translation_draws_the_scan_jitter_the_cyclegan_was_trained_with(tmp_path):
    from matgen.pipeline.stem import translate_simulation

    rng = np.random.default_rng(0)
    np.save(tmp_path / "sim.npy", rng.random((8, 1, 32, 32)).astype(np.float16))
    kw = dict(steps=2, batch_size=2, ngf=4, ndf=4, generator="unet", n_downsampling=2,
              show_progress=False, device="cpu")  # fmt: skip
    train_cyclegan(tmp_path / "sim.npy", tmp_path / "sim.npy", tmp_path / "j.pt",
                   tmp_path / "j.csv", scan_jitter_px=0.75, **kw)  # fmt: skip
    payload = torch.load(tmp_path / "j.pt", weights_only=False)
    assert payload["model_config"]["scan_jitter"] == [0.75, 0.5]
    del payload["model_config"]["scan_jitter"]  # the same G, translated without the jitter
    torch.save(payload, tmp_path / "plain.pt")
    for name, model in (("j1", "j"), ("j2", "j"), ("plain", "plain")):
        translate_simulation(tmp_path / f"{model}.pt", tmp_path / "sim.npy",
                             tmp_path / f"{name}.npy", seed=4)  # fmt: skip
    jittered, plain = (np.load(tmp_path / f"{k}.npy")[:, 0] for k in ("j1", "plain"))
    np.testing.assert_array_equal(np.load(tmp_path / "j2.npy")[:, 0], jittered)  # seeded
    # each row of the jittered translation is the plain one shifted: the phase of their
    # lowest frequency gives the shift, an AR(1) series of 0.75 px rms, 0.75 px row to row
    cross = np.fft.rfft(jittered, axis=-1)[..., 1] * np.conj(np.fft.rfft(plain, axis=-1)[..., 1])
    shifts = -np.angle(cross) * 32 / (2 * np.pi)
    assert np.sqrt(np.mean(shifts**2)) == pytest.approx(0.75, rel=0.2)
    assert np.sqrt(np.mean(np.diff(shifts, axis=1) ** 2)) == pytest.approx(0.75, rel=0.2)


def test_forward_levels_are_pore_below_solid_and_need_the_phase_view():
    from matgen.train.cyclegan import _forward_levels

    assert _forward_levels([0.2, 0.8], forward_phase=True) == pytest.approx((-0.6, 0.6))
    assert _forward_levels(None, forward_phase=False) is None
    for levels, phase in (([0.8, 0.2], True), ([0.2, 0.8], False), ([0.5], True)):
        with pytest.raises(InputError, match="forward_levels"):
            _forward_levels(levels, forward_phase=phase)


def test_channels_last_is_a_layout_not_another_model(domains, tmp_path):
    """Channels-last strides change only the order convolutions add up in: the same losses and
    weights to float32 rounding, and a model file the translation reads as before."""
    low, high = domains
    kw = dict(seed=2, steps=4, amp=False, lambda_forward=10.0, **TINY)
    for name, layout in (("a", False), ("b", True)):
        train_cyclegan(low, high, tmp_path / f"{name}.pt", tmp_path / f"{name}.csv",
                       channels_last=layout, **kw)  # fmt: skip
    logs = [pd.read_csv(tmp_path / f"{n}.csv").drop(columns="sec_per_step") for n in "ab"]
    pd.testing.assert_frame_equal(*logs, rtol=1e-4)
    a, b = (torch.load(tmp_path / f"{n}.pt", weights_only=False)["G_LH"] for n in "ab")
    # the weights (a bias in front of a normalisation has a gradient of rounding noise only,
    # which Adam turns into whole steps of either sign)
    weights = [k for k, v in a.items() if v.dim() == 4]
    assert weights and all(torch.allclose(a[k], b[k], atol=1e-6) for k in weights)
    cl = torch.channels_last  # the layout was used: weights saved in it, not in the default
    assert any(not v.is_contiguous() and v.is_contiguous(memory_format=cl) for v in b.values())
    assert all(v.is_contiguous() for v in a.values())
    out = translate(load_cyclegan_generator(tmp_path / "b.pt", "G_LH"), np.load(low))
    ref = translate(load_cyclegan_generator(tmp_path / "a.pt", "G_LH"), np.load(low))
    assert out.shape == (10, 1, 32, 32) and np.abs(out - ref).max() < 1e-3


def test_bfloat16_on_the_cpu_only_where_it_pays():
    """bfloat16 autocast on CUDA, and on a CPU with native bfloat16 kernels and either AMX
    tiles or AMD's AVX512-BF16; an Intel CPU with AVX512-BF16 alone runs it slower than float32
    (measured), one without native kernels would emulate it."""
    from matgen.util import _bfloat16_pays, bfloat16_autocast, cpu_bfloat16_pays

    assert bfloat16_autocast(torch.device("cpu"), True) is cpu_bfloat16_pays()
    assert bfloat16_autocast(torch.device("cpu"), False) is False
    assert bfloat16_autocast(torch.device("cuda"), True) is True
    assert bfloat16_autocast(torch.device("cuda"), False) is False
    assert _bfloat16_pays(True, True, True, "GenuineIntel")  # Sapphire Rapids on: AMX
    assert _bfloat16_pays(True, False, True, "AuthenticAMD")  # Zen 4 on
    assert not _bfloat16_pays(True, False, True, "GenuineIntel")  # Cooper Lake, AMX hidden
    assert not _bfloat16_pays(False, False, False, "AuthenticAMD")  # emulated
    assert not _bfloat16_pays(False, True, True, "GenuineIntel")  # oneDNN without bfloat16


def test_amp_trains_in_bfloat16_where_it_pays_and_reruns_bit_identically(
    domains, tmp_path, monkeypatch
):
    """Where bfloat16 pays (forced here, so every machine runs the path) ``amp`` changes the
    arithmetic and a rerun is bit-identical; where it does not, ``amp`` trains in float32."""
    import matgen.util

    low, high = domains
    kw = dict(seed=2, steps=3, **TINY)
    weights = {}
    for name, amp, pays in (("a", True, True), ("b", True, True), ("c", False, True),
                            ("d", True, False)):  # fmt: skip
        monkeypatch.setattr(matgen.util, "cpu_bfloat16_pays", lambda pays=pays: pays)
        train_cyclegan(low, high, tmp_path / f"{name}.pt", tmp_path / f"{name}.csv", amp=amp, **kw)
        weights[name] = torch.load(tmp_path / f"{name}.pt", weights_only=False)["G_LH"]
    assert all(torch.equal(v, weights["b"][k]) for k, v in weights["a"].items())  # a rerun
    assert any(not torch.equal(v, weights["c"][k]) for k, v in weights["a"].items())
    assert all(torch.equal(v, weights["c"][k]) for k, v in weights["d"].items())  # float32


def test_synthetic_tiles_trains_on_the_first_tiles_of_the_later_stacks(domains, tmp_path):
    low, high = domains
    rng = np.random.default_rng(1)
    synthetic = rng.random((7, 1, 32, 32)).astype(np.float16)
    np.save(tmp_path / "synthetic.npy", synthetic)
    np.save(tmp_path / "first3.npy", synthetic[:3])
    run = dict(TINY, steps=2, seed=3)
    train_cyclegan(low, [high, tmp_path / "synthetic.npy"], tmp_path / "a.pt", tmp_path / "a.csv",
                   synthetic_tiles=3, **run)  # fmt: skip
    train_cyclegan(low, [high, tmp_path / "first3.npy"], tmp_path / "b.pt", tmp_path / "b.csv",
                   **run)  # fmt: skip
    train_cyclegan(low, [high, tmp_path / "synthetic.npy"], tmp_path / "c.pt", tmp_path / "c.csv",
                   **run)  # fmt: skip
    a, b, c = (torch.load(tmp_path / f"{k}.pt", weights_only=False)["G_LH"] for k in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same 13 tiles
    assert not all(torch.equal(a[k], c[k]) for k in a)  # all 17: other batches
    with pytest.raises(InputError, match="synthetic_tiles must be at least 1"):
        train_cyclegan(low, [high, tmp_path / "synthetic.npy"], tmp_path / "d.pt",
                       tmp_path / "d.csv", synthetic_tiles=0, **run)  # fmt: skip
