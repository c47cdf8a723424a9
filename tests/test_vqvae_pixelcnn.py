"""VQ-VAE with an EMA codebook and the gated PixelCNN prior."""

import numpy as np
import pytest
import torch

from matgen.errors import InputError
from matgen.metrics.segmentation import miou
from matgen.models.pixelcnn import GatedPixelCNN
from matgen.models.vqvae import VQVAE, EMAQuantizer
from matgen.train.losses import vqvae_loss


def fit(model: VQVAE, batch, steps: int, **loss_kw) -> None:
    """``steps`` Adam steps of the VQ-VAE loss on ``batch()`` → (image, mask); eval mode after."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        image, mask = batch()
        recon, logits, commitment, _ = model(image, mask)
        loss = vqvae_loss(recon, logits, image, mask, commitment, **loss_kw)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def test_quantizer_picks_the_nearest_code_and_passes_gradients_straight_through():
    q = EMAQuantizer(2, 3).eval()
    q.embed.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0]]))
    z = torch.tensor([[[[0.9, 0.2], [0.1, 4.0], [-0.2, 0.1]]]], requires_grad=True)
    out, commitment, codes = q(z)
    assert codes.tolist() == [[[1, 2, 0]]]
    assert torch.equal(out.detach(), q.embed[codes])
    out.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))  # straight-through estimator
    expected = ((0.1**2 + 0.2**2) + (0.1**2 + 1.0**2) + (0.2**2 + 0.1**2)) / 6
    assert float(commitment.detach()) == pytest.approx(expected)


def test_ema_moves_codes_to_their_vectors_and_restarts_dead_codes():
    torch.manual_seed(0)
    q = EMAQuantizer(2, 4, decay=0.5)
    q.embed.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [50.0, 50.0], [-50.0, 50.0]]))
    q.embed_sum.copy_(q.embed)
    z = torch.tensor([1.0, 1.0]).repeat(1, 8, 1, 1)  # every vector near code 0
    for _ in range(12):
        q(z)
    assert torch.allclose(q.embed[0], torch.tensor([1.0, 1.0]), atol=0.05)
    # unused codes' usage decays (×0.5 per step) below 1 % of the mean (8 / 4) after 7 steps:
    # they are re-seeded
    # on encoder outputs, far from their start at (10, 10), (±50, 50)
    assert torch.allclose(q.embed[1:], torch.tensor([1.0, 1.0]).expand(3, 2), atol=1e-3)


def test_vqvae_shapes_and_it_learns_image_and_mask_jointly():
    torch.manual_seed(1)
    model = VQVAE(n_classes=3, width=16, n_res=1, embed_dim=8, n_codes=16, downsample=4)
    mask = torch.zeros(8, 16, 16, dtype=torch.long)
    mask[:, :, 8:] = 1
    mask[:, 4:8, 2:6] = 2
    image = torch.tensor([0.5, 0.8, 0.1])[mask][:, None]
    recon, logits, commitment, codes = model(image, mask)
    assert (
        recon.shape == image.shape and logits.shape == (8, 3, 16, 16) and codes.shape == (8, 4, 4)
    )
    fit(model, lambda: (image, mask), 150)
    with torch.no_grad():
        recon, logits, _, codes = model(image, mask)
        again_image, again_logits = model.decode_codes(codes)
    assert miou(logits.argmax(1).numpy(), mask.numpy(), 3) > 0.9
    assert float((recon - image).abs().mean()) < 0.05
    assert torch.allclose(again_image, recon, atol=1e-6)  # a code map decodes to the same pair
    with pytest.raises(ValueError, match="not a power of two"):
        VQVAE(3, downsample=3)


def test_a_mask_blind_encoder_decodes_the_annotations_mean_not_each_draw():
    """Annotations that move a square's edge by up to two pixels either way at random: a joint
    VQ-VAE copies each annotation into its codes; one whose encoder sees the image alone
    decodes the mask the image implies, nearer the true square than the annotations are."""
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(0)

    def batch(n=16, size=16):  # squares of side 6-9 anywhere, each annotated with its own shift
        true = torch.zeros(n, size, size, dtype=torch.long)
        annotated = torch.zeros_like(true)
        for i in range(n):
            y, x, side = torch.randint(3, 7, (3,), generator=gen).tolist()
            s = int(torch.randint(-2, 3, (1,), generator=gen))
            true[i, y : y + side + 3, x : x + side + 3] = 1
            annotated[i, y - s : y + side + 3 + s, x - s : x + side + 3 + s] = 1
        noise = 0.03 * torch.randn(n, 1, size, size, generator=gen)
        return 0.2 + 0.6 * true[:, None].float() + noise, true, annotated

    test_image, test_true, test_annotated = batch(64)
    recon = {}
    for blind in (False, True):
        model = VQVAE(2, width=16, n_res=1, embed_dim=8, n_codes=16, downsample=2,
                      upsample="nearest", encoder_mask="none" if blind else "all")  # fmt: skip
        assert model.encoder[0].in_channels == (1 if blind else 3)
        fit(model, lambda: batch()[::2], 200, image_weight=20)  # (image, annotated)
        with torch.no_grad():
            out = model(test_image, test_annotated)
            recon[blind] = out[1].argmax(1)
            if blind:  # the codes do not depend on the mask
                no_mask = model(test_image, torch.zeros_like(test_annotated))[3]
                assert torch.equal(out[3], no_mask)
    annotations = miou(test_annotated.numpy(), test_true.numpy(), 2)
    joint, blind = (miou(recon[b].numpy(), test_true.numpy(), 2) for b in (False, True))
    assert joint < annotations + 0.05  # the joint model keeps each annotation's edge
    assert blind > annotations + 0.15 and blind > 0.85


def test_the_phases_encoder_sees_each_pore_filled_with_the_phase_round_it():
    """encoder_mask="phases": pores (the last class) inside either phase are filled with that
    phase, so the codes do not change when the pores' drawn outlines do."""
    from matgen.models.vqvae import fill_last_class

    yy, xx = torch.meshgrid(torch.arange(24), torch.arange(24), indexing="ij")
    phases = (xx >= 12).long()[None]  # matrix left, second phase right
    mask = phases.clone()
    for cy, cx, r in ((6, 5, 2.5), (17, 17, 3.5), (12, 12, 2.0)):  # in 0, in 1, on the edge
        mask[0][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 2
    filled = fill_last_class(mask, 3)
    assert filled.shape == (1, 2, 24, 24) and torch.equal(filled.sum(1), torch.ones(1, 24, 24))
    away = (xx - 12).abs() > 2  # all but the pore on the phases' edge
    assert torch.equal(filled.argmax(1)[0][away], phases[0][away])
    larger = mask.clone()
    larger[0][(yy - 6) ** 2 + (xx - 5) ** 2 <= 3.5**2] = 2  # the first pore drawn larger
    model = VQVAE(3, width=8, n_res=0, embed_dim=4, n_codes=8, downsample=2,
                  encoder_mask="phases").eval()  # fmt: skip
    assert model.encoder[0].in_channels == 1 + 2
    image = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(image, mask)[3], model(image, larger)[3])
        assert model(image, mask)[1].shape == (1, 3, 24, 24)  # every class decoded
    with pytest.raises(ValueError, match="encoder_mask"):
        VQVAE(3, encoder_mask="pores")


def test_nearest_decoder_learns_and_the_residual_noise_has_the_residual_spectrum():
    torch.manual_seed(2)
    model = VQVAE(3, width=16, n_res=1, embed_dim=8, n_codes=16, upsample="nearest", noise_size=16)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())
    mask = torch.zeros(8, 16, 16, dtype=torch.long)
    mask[:, :, 8:] = 1
    mask[:, 4:8, 2:6] = 2
    image = torch.tensor([0.5, 0.8, 0.1])[mask][:, None] + 0.05 * torch.randn(8, 1, 16, 16)
    fit(model, lambda: (image, mask), 150, image_weight=20)
    assert torch.equal(model.residual_noise((2, 1, 16, 16)), torch.zeros(2, 1, 16, 16))  # unfitted
    std = model.fit_residual_noise(image, mask)
    with torch.no_grad():
        recon = model(image, mask)[0]
    residual = image - recon
    residual = residual - residual.mean((-2, -1), keepdim=True)
    assert std == pytest.approx(float(residual.square().mean().sqrt()), rel=1e-4)  # Parseval
    assert 0.03 < std < 0.1  # the pixel noise (0.05) plus what 16 codes miss
    # drawn fields: that variance, and the residuals' spectrum frequency by frequency
    noise = model.residual_noise((4000, 1, 16, 16), torch.Generator().manual_seed(0))
    assert float(noise.std()) == pytest.approx(std, rel=0.03)
    drawn = torch.fft.fft2(noise).abs().square().mean((0, 1)) / 256
    assert torch.allclose(drawn, model.residual_power, rtol=0.15, atol=1e-4 * std**2 * 256)
    with pytest.raises(ValueError, match="fitted on 16"):
        model.fit_residual_noise(image[..., :8, :8], mask[..., :8, :8])
    with pytest.raises(ValueError, match="upsample"):
        VQVAE(3, upsample="bilinear")


def test_pixelcnn_is_causal_in_raster_order():
    torch.manual_seed(2)
    net = GatedPixelCNN(n_codes=5, dim=8, n_layers=4, kernel=3)
    codes = torch.randint(0, 5, (1, 6, 6))
    embedded = net.embed(codes).permute(0, 3, 1, 2).detach().requires_grad_(True)
    v, h = embedded, embedded
    for layer in net.layers:
        v, h = layer(v, h)
    out = net.head(h)
    i, j = 3, 2
    out[0, :, i, j].sum().backward()
    grad = embedded.grad[0].abs().sum(0)
    seen = grad > 0
    order = np.arange(36).reshape(6, 6)
    assert not seen.numpy()[order >= i * 6 + j].any()  # nothing at or after (i, j)
    assert seen[i, j - 1] and seen[i - 1, j + 2]  # left neighbour and the row above


def test_pixelcnn_learns_a_pattern_and_samples_it():
    torch.manual_seed(3)
    net = GatedPixelCNN(n_codes=3, dim=16, n_layers=3, kernel=3)
    stripes = torch.arange(6).repeat(6, 1) % 3  # each row 0 1 2 0 1 2: next code = previous + 1
    data = stripes.repeat(16, 1, 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(120):
        loss = torch.nn.functional.cross_entropy(net(data), data)
        opt.zero_grad()
        loss.backward()
        opt.step()
    samples = net.sample(4, (6, 6), temperature=0.5, generator=torch.Generator().manual_seed(0))
    follows = (samples[:, :, 1:] == (samples[:, :, :-1] + 1) % 3).float().mean()
    assert samples.shape == (4, 6, 6) and float(follows) > 0.9


def test_row_cached_sampling_draws_what_the_full_network_would():
    """The sampler keeps every layer's inputs and computes one new row (vertical stack) or
    column (horizontal stack) per layer and step: the same draws as a full forward pass per
    position, on a map wider and taller than the network's reach (3 + 2 + 2 rows/columns)."""
    torch.manual_seed(4)
    net = GatedPixelCNN(n_codes=5, dim=8, n_layers=3, kernel=5).eval()

    def full_forward_sample(n, shape, generator):
        codes = torch.zeros(n, *shape, dtype=torch.long)
        for i in range(shape[0]):
            for j in range(shape[1]):
                probs = torch.softmax(net(codes)[:, :, i, j], 1)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return codes

    with torch.no_grad():
        expected = full_forward_sample(6, (12, 15), torch.Generator().manual_seed(1))
    fast = net.sample(6, (12, 15), generator=torch.Generator().manual_seed(1))
    assert torch.equal(fast, expected)


def test_a_prior_of_fewer_code_maps_stops_sooner_under_a_pass_cap(tmp_path):
    """max_passes bounds how often each code is seen: 8 maps keep every epoch, 2 maps a quarter
    of them (and the log has one row per epoch run)."""
    import pandas as pd

    from matgen.train.segmentation import train_pixelcnn

    codes = np.random.default_rng(0).integers(0, 6, (8, 8, 8))
    # an epoch shows 32 windows of 4 x 4 = 512 codes
    kw = dict(n_codes=6, epochs=4, steps_per_epoch=1, batch_size=32, window=4, dim=8,
              n_layers=2, max_passes=4, device="cpu", show_progress=False)  # fmt: skip
    eight = train_pixelcnn(codes, tmp_path / "8.pt", tmp_path / "8.csv", **kw)
    two = train_pixelcnn(codes[:2], tmp_path / "2.pt", tmp_path / "2.csv", **kw)
    # 8 maps: 512 codes x 4 passes / 512 a epoch = 4 epochs; 2 maps: 128 x 4 / 512 -> 1
    assert (eight["epochs"], two["epochs"]) == (4, 1)
    assert len(pd.read_csv(tmp_path / "2.csv")) == 1


def test_pore_centre_cells_mark_one_cell_per_pore_whatever_its_size():
    """Each pore (4-connected region of the pore class) marks the cell its centroid falls in,
    once: a large pore over four cells one mark, two touching-diagonally pores two."""
    from matgen.inference.segmentation import pore_centre_cells

    masks = np.zeros((2, 16, 16), np.uint8)
    masks[0, 2:10, 2:10] = 2  # one pore over cells (0..2, 0..2): centroid (5.5, 5.5) -> (1, 1)
    masks[0, 13, 13] = 2  # a one-pixel pore -> (3, 3)
    masks[0, 0:4, 12:16] = 1  # the other phases mark nothing
    masks[1, 4, 4] = masks[1, 5, 5] = 2  # diagonal neighbours: two pores, one cell
    masks[1, 8:11, 0:3] = 2  # (9, 1) -> (2, 0)
    marks = pore_centre_cells(masks, 4, 2)
    assert marks.shape == (2, 4, 4) and set(np.unique(marks)) == {0, 1}
    assert sorted(zip(*np.nonzero(marks[0]))) == [(1, 1), (3, 3)]
    assert sorted(zip(*np.nonzero(marks[1]))) == [(1, 1), (2, 0)]
    assert not pore_centre_cells(np.zeros((1, 8, 8), np.uint8), 4, 2).any()
    with pytest.raises(InputError, match="do not tile into 3-px cells"):
        pore_centre_cells(masks, 3, 2)


def test_pore_centre_marks_carry_the_pores_size_class():
    """With size edges (equivalent diameter, px) each mark is 1 + the pore's size class; two
    centres in one cell keep the larger pore's class; edges must increase."""
    from matgen.inference.segmentation import pore_centre_cells

    masks = np.zeros((1, 24, 24), np.uint8)
    masks[0, 1, 1] = 2  # 1 px: diameter 1.13 -> class 1
    masks[0, 4:8, 12:16] = 2  # 16 px: diameter 4.51 -> class 2 (edge 3 <= 4.51 < 6)
    masks[0, 12:20, 2:10] = 2  # 64 px: diameter 9.03 -> class 3
    masks[0, 20, 20] = 2  # a 1-px pore beside a 9-px one, both centred in cell (5, 5)
    masks[0, 21:24, 21:24] = 2
    marks = pore_centre_cells(masks, 4, 2, size_edges=[3.0, 6.0])
    assert marks[0, 0, 0] == 1 and marks[0, 1, 3] == 2 and marks[0, 4, 1] == 3
    assert marks[0, 5, 5] == 2  # the 9-px pore (diameter 3.39) wins over the 1-px one
    assert (marks > 0).sum() == 4
    with pytest.raises(InputError, match="not increasing"):
        pore_centre_cells(masks, 4, 2, size_edges=[6.0, 3.0])


def test_a_two_level_prior_draws_pores_at_the_marks_of_its_class_map(tmp_path):
    """Pores of 4 x 4 px, each on one 4-px cell, and a class map that holds only their centres
    as marks (the pores themselves left to the codes): given marks the code level draws pore
    codes under the marked cells and background elsewhere."""
    from matgen.inference.segmentation import code_class_counts, load_pixelcnn, pore_centre_cells
    from matgen.models.pixelcnn import class_map_condition
    from matgen.train.segmentation import train_pixelcnn

    rng = np.random.default_rng(2)
    cells = rng.random((8, 4, 4)) < 0.3
    masks = cells.repeat(4, 1).repeat(4, 2).astype(np.uint8)  # class 1: pores
    marks = pore_centre_cells(masks, 4, 1)
    under = masks[:, ::2, ::2].astype(np.int64)
    codes = under * 2 + (rng.random(under.shape) < 0.5)
    train_pixelcnn(codes, tmp_path / "p.pt", tmp_path / "p.csv", n_codes=4, epochs=10,
                   steps_per_epoch=10, batch_size=16, window=8, dim=16, n_layers=2, kernel=3,
                   lr=5e-3, class_counts=code_class_counts(masks, 2, 2),
                   class_map_counts=code_class_counts(masks, 4, 2), class_map_classes=1,
                   class_map_marks=marks, class_map_window=4, class_map_batch_size=16,
                   device="cpu", show_progress=False)  # fmt: skip
    prior, _, _ = load_pixelcnn(tmp_path / "p.pt")
    assert prior.top.n_codes == 2  # the background phase and the marks
    class_map = torch.zeros(6, 4, 4, dtype=torch.long)
    class_map[:, 1, 2] = class_map[:, 3, 0] = 1
    cond_map = class_map_condition(class_map, 2, 2)
    with torch.no_grad():
        drawn = prior.bottom.sample(
            6,
            (8, 8),
            generator=torch.Generator().manual_seed(0),
            cond=torch.tensor([[0.875, 0.125]] * 6),
            cond_map=cond_map,
        )
    assert ((drawn // 2) == cond_map.argmax(1)).float().mean() > 0.9
    with pytest.raises(InputError, match="marks of shape"):
        train_pixelcnn(codes, tmp_path / "q.pt", tmp_path / "q.csv", n_codes=4, epochs=1,
                       steps_per_epoch=1, batch_size=4, window=8, dim=8, n_layers=2, kernel=3,
                       class_map_counts=code_class_counts(masks, 4, 2), class_map_classes=1,
                       class_map_marks=marks[:, :2], class_map_window=4, device="cpu",
                       show_progress=False)  # fmt: skip


def test_size_class_marks_tell_the_code_level_how_large_a_pore_to_draw(tmp_path):
    """Pores of two sizes in 4-px cells — 2 x 2 px (one code) or 4 x 4 px (four codes) — marked
    with their size class: given a small mark the code level draws one pore code in the cell,
    given a large mark four. Marks without sizes leave it to guess: the large ones fall short."""
    from matgen.inference.segmentation import code_class_counts, load_pixelcnn, pore_centre_cells
    from matgen.models.pixelcnn import class_map_condition
    from matgen.train.segmentation import train_pixelcnn

    rng = np.random.default_rng(3)
    kind = rng.choice(3, size=(16, 4, 4), p=[0.6, 0.2, 0.2])  # none, small, large
    masks = np.zeros((16, 16, 16), np.uint8)
    for n, i, j in zip(*np.nonzero(kind)):
        side = 2 if kind[n, i, j] == 1 else 4
        masks[n, 4 * i : 4 * i + side, 4 * j : 4 * j + side] = 1
    codes = masks[:, ::2, ::2].astype(np.int64)  # 1: a pore code
    drawn = {}
    for edges in ([], [3.0]):
        marks = pore_centre_cells(masks, 4, 1, size_edges=edges)
        out = tmp_path / f"p{len(edges)}.pt"
        train_pixelcnn(codes, out, tmp_path / "p.csv", n_codes=2, seed=1, epochs=15,
                       steps_per_epoch=10, batch_size=16, window=8, dim=16, n_layers=3,
                       kernel=3, lr=5e-3, class_counts=code_class_counts(masks, 2, 2),
                       class_map_counts=code_class_counts(masks, 4, 2), class_map_classes=1,
                       class_map_marks=marks, class_map_mark_classes=len(edges) + 1,
                       class_map_window=4, device="cpu", show_progress=False)  # fmt: skip
        prior, _, _ = load_pixelcnn(out)
        assert prior.top.n_codes == 2 + len(edges)  # the background and the mark classes
        class_map = torch.zeros(32, 4, 4, dtype=torch.long)
        class_map[:, 1, 1] = 1  # a small pore's mark (or the only mark)
        class_map[:, 2, 3] = 1 + len(edges)  # a large pore's mark
        with torch.no_grad():
            d = prior.bottom.sample(
                32,
                (8, 8),
                generator=torch.Generator().manual_seed(0),
                cond=torch.tensor([[0.9, 0.1]] * 32),
                cond_map=class_map_condition(class_map, 2 + len(edges), 2),
            )
        drawn[len(edges)] = (d[:, 2:4, 2:4].sum((1, 2)).float().mean(),
                             d[:, 4:6, 6:8].sum((1, 2)).float().mean())  # fmt: skip
    small, large = drawn[1]
    assert small < 1.5 and large > 3.5, drawn
    assert drawn[0][1] < 3.5, drawn  # one mark class: a guess between the two sizes


def test_conditional_sampling_draws_what_the_full_network_would():
    """With a condition per map, the row-cached sampler still gives a full forward pass's
    draws (the condition's bias enters both stacks in both paths)."""
    torch.manual_seed(5)
    net = GatedPixelCNN(n_codes=4, dim=8, n_layers=3, kernel=3, n_cond=3).eval()
    cond = torch.softmax(torch.randn(5, 3), 1)

    def full_forward_sample(generator):
        codes = torch.zeros(5, 7, 9, dtype=torch.long)
        for i in range(7):
            for j in range(9):
                probs = torch.softmax(net(codes, cond)[:, :, i, j], 1)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return codes

    with torch.no_grad():
        expected = full_forward_sample(torch.Generator().manual_seed(2))
    fast = net.sample(5, (7, 9), generator=torch.Generator().manual_seed(2), cond=cond)
    assert torch.equal(fast, expected)
    with pytest.raises(ValueError, match="conditions"):
        net.sample(1, (3, 3))


def test_a_prior_conditioned_on_class_fractions_draws_the_fractions_asked(tmp_path):
    """Maps of two kinds (mostly code 0 under a class-0 mask, mostly code 1 under class 1):
    the conditioned prior, given a window's fractions, draws that kind, where an unconditioned
    one mixes them; the class-count maps travel in its model file."""
    from matgen.inference.segmentation import (
        class_fractions,
        code_class_counts,
        draw_class_fractions,
        load_pixelcnn,
    )
    from matgen.train.segmentation import train_pixelcnn

    rng = np.random.default_rng(0)
    masks = np.repeat(np.arange(2), 4)[:, None, None] * np.ones((8, 16, 16), np.uint8)
    counts = code_class_counts(masks, 2, 2)  # (8, 2, 8, 8), 4 px a code
    assert counts.shape == (8, 2, 8, 8) and counts.dtype == np.uint16
    assert (counts[:4, 0] == 4).all() and (counts[4:, 1] == 4).all()
    np.testing.assert_allclose(class_fractions(counts[[0, 7]]), [[1, 0], [0, 1]])
    codes = np.where(rng.random((8, 8, 8)) < 0.85, masks[:, ::2, ::2], 1 - masks[:, ::2, ::2])
    kw = dict(n_codes=2, epochs=6, steps_per_epoch=10, batch_size=16, window=6, dim=16,
              n_layers=2, kernel=3, lr=5e-3, device="cpu", show_progress=False)  # fmt: skip
    train_pixelcnn(codes, tmp_path / "c.pt", tmp_path / "c.csv", class_counts=counts, **kw)
    prior, window, stored = load_pixelcnn(tmp_path / "c.pt")
    assert window == 6 and np.array_equal(stored, counts)
    gen = torch.Generator().manual_seed(0)
    drawn = draw_class_fractions(stored, 200, 6, gen)
    assert 0.35 < drawn[:, 0].mean() < 0.65 and set(np.unique(drawn)) == {0.0, 1.0}
    # centred on the real fractions: the same windows, one common offset, an exact mean
    gen_again = torch.Generator().manual_seed(0)
    centred = draw_class_fractions(stored, 200, 6, gen_again, np.array([0.5, 0.5]))
    np.testing.assert_allclose(centred.mean(0), [0.5, 0.5], atol=1e-6)
    offset = np.broadcast_to(centred[0] - drawn[0], drawn.shape)
    np.testing.assert_allclose(centred - drawn, offset, atol=1e-6)
    assert abs(drawn[:, 0].mean() - 0.5) > 1e-3  # (the random windows alone did not average it)
    cond = torch.tensor([[1.0, 0.0]] * 8 + [[0.0, 1.0]] * 8)
    with torch.no_grad():
        maps = prior.sample(16, (8, 8), generator=gen, cond=cond)
    share_one = maps.float().mean((1, 2))
    assert share_one[:8].mean() < 0.3 and share_one[8:].mean() > 0.7


@pytest.mark.parametrize("map_context", [0, 2])
def test_map_conditioned_sampling_draws_what_the_full_network_would(map_context):
    """With a conditioning map (and a condition per map; read directly or through the context
    network) the row-cached sampler gives a full forward pass's draws: the map's bias is
    sliced at the row and column being drawn."""
    torch.manual_seed(6)
    net = GatedPixelCNN(n_codes=4, dim=8, n_layers=3, kernel=3, n_cond=3, n_cond_map=2,
                        map_context=map_context).eval()  # fmt: skip
    cond = torch.softmax(torch.randn(5, 3), 1)
    cond_map = torch.randn(5, 2, 7, 9)

    def full_forward_sample(generator):
        codes = torch.zeros(5, 7, 9, dtype=torch.long)
        for i in range(7):
            for j in range(9):
                probs = torch.softmax(net(codes, cond, cond_map)[:, :, i, j], 1)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return codes

    with torch.no_grad():
        expected = full_forward_sample(torch.Generator().manual_seed(2))
        fast = net.sample(5, (7, 9), generator=torch.Generator().manual_seed(2), cond=cond,
                          cond_map=cond_map)  # fmt: skip
    assert torch.equal(fast, expected)
    with pytest.raises(ValueError, match="cond_map"):
        net.sample(5, (7, 9), cond=cond)


def test_a_conditioning_map_convolution_of_even_side_is_refused():
    with pytest.raises(ValueError, match="map_kernel 4"):
        GatedPixelCNN(n_codes=4, dim=8, n_layers=2, kernel=3, n_cond_map=1, map_kernel=4)


def test_a_map_conditioned_prior_sees_the_map_below_and_right():
    """The conditioning map is not causal: the logits at a position change when the map
    changes below or to the right of it, unlike the codes there."""
    torch.manual_seed(7)
    net = GatedPixelCNN(n_codes=4, dim=8, n_layers=2, kernel=3, n_cond_map=1).eval()
    codes = torch.randint(0, 4, (1, 6, 6))
    cond_map = torch.zeros(1, 1, 6, 6)
    moved = cond_map.clone()
    moved[0, 0, 4, 4] = 1.0  # two rows below and two columns right of (2, 2)
    with torch.no_grad():
        a, b = net(codes, cond_map=cond_map), net(codes, cond_map=moved)
        later = codes.clone()
        later[0, 4, 4] = (codes[0, 4, 4] + 1) % 4
        c = net(later, cond_map=cond_map)
    assert not torch.allclose(a[0, :, 2, 2], b[0, :, 2, 2])
    assert torch.allclose(a[0, :, 2, 2], c[0, :, 2, 2])


def test_the_map_context_network_lets_a_position_see_the_map_further_ahead():
    """Read directly through 3 x 3 convolutions a position sees the map one row below it;
    through a context network of depth 3 (dilations 1, 2, 4) seven rows and one more for the
    layers' own 3 x 3 convolution, not nine (rows below: nothing drawn carries them up). The
    codes stay causal."""
    torch.manual_seed(8)
    codes = torch.randint(0, 4, (1, 24, 24))
    base = torch.zeros(1, 1, 24, 24)

    def sees(net, di, dj):
        moved = base.clone()
        moved[0, 0, 10 + di, 10 + dj] = 1.0
        with torch.no_grad():
            return not torch.allclose(net(codes, cond_map=base)[0, :, 10, 10],
                                      net(codes, cond_map=moved)[0, :, 10, 10])  # fmt: skip

    plain = GatedPixelCNN(n_codes=4, dim=8, n_layers=2, kernel=3, n_cond_map=1,
                          map_kernel=3).eval()  # fmt: skip
    wide = GatedPixelCNN(n_codes=4, dim=8, n_layers=2, kernel=3, n_cond_map=1, map_kernel=3,
                         map_context=3).eval()  # fmt: skip
    assert sees(plain, 1, 0) and sees(plain, 1, -1) and not sees(plain, 2, 0)
    assert sees(wide, 8, 0) and sees(wide, 8, 8) and sees(wide, 8, -8)
    assert not sees(wide, 9, 0) and not sees(wide, 9, 3)
    later = codes.clone()
    later[0, 11, 10] = (codes[0, 11, 10] + 1) % 4
    with torch.no_grad():
        assert torch.allclose(wide(codes, cond_map=base)[0, :, 10, 10],
                              wide(later, cond_map=base)[0, :, 10, 10])  # fmt: skip


@pytest.mark.parametrize(
    "cheap", [{}, dict(map_kernel=3, pore_map_batch_size=8, amp=True)], ids=["full", "cheap"]
)
def test_a_prior_with_a_pore_level_draws_pores_at_the_marks_and_codes_that_fill_them(
    tmp_path, cheap
):
    """Pores of 4 x 4 px on 4-px cells, the class map holding only their centres as marks and
    a pore map on the code grid: the pore level draws pore codes under the marked cells and
    none elsewhere, the code level draws pore codes where the pore map has them, and drawn
    whole each pore is one 4-px cell. Its log carries the pore map's NLL; a pore map needs a
    class map and the code maps' shape. The embedded default's cheaper settings (3 x 3
    conditioning-map convolutions, the pore level on half the windows, bfloat16 where the CPU
    runs it) learn the same."""
    import pandas as pd

    from matgen.inference.segmentation import code_class_counts, load_pixelcnn, pore_centre_cells
    from matgen.models.pixelcnn import class_map_condition, with_pore_map
    from matgen.train.segmentation import train_pixelcnn

    rng = np.random.default_rng(3)
    masks = (rng.random((8, 4, 4)) < 0.3).repeat(4, 1).repeat(4, 2).astype(np.uint8)
    under = masks[:, ::2, ::2].astype(np.int64)  # the pore map: 2 x 2 codes a pore
    codes = under * 2 + (rng.random(under.shape) < 0.5)
    kw = dict(n_codes=4, epochs=10, steps_per_epoch=10, batch_size=16, window=8, dim=16,
              n_layers=2, kernel=3, lr=5e-3, class_counts=code_class_counts(masks, 2, 2),
              class_map_counts=code_class_counts(masks, 4, 2), class_map_classes=1,
              class_map_marks=pore_centre_cells(masks, 4, 1), class_map_window=4,
              class_map_batch_size=16, device="cpu", show_progress=False)  # fmt: skip
    train_pixelcnn(codes, tmp_path / "p.pt", tmp_path / "p.csv", pore_map=under.astype(bool),
                   pore_map_dim=8, **kw, **cheap)  # fmt: skip
    prior, _, _ = load_pixelcnn(tmp_path / "p.pt")
    assert prior.pores is not None and prior.pore_dim == 8
    side = cheap.get("map_kernel", 5)
    for level in (prior.pores, prior.bottom):
        assert all(layer.cond_map.kernel_size == (side, side) for layer in level.layers)
    assert {"nll", "class_map_nll", "pore_map_nll"} <= set(pd.read_csv(tmp_path / "p.csv"))
    class_map = torch.zeros(6, 4, 4, dtype=torch.long)
    class_map[:, 1, 2] = class_map[:, 3, 0] = 1  # two marks
    cond_map = class_map_condition(class_map, 2, 2)
    cond = torch.tensor([[0.875, 0.125]] * 6)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        pores = prior.pores.sample(6, (8, 8), generator=gen, cond=cond, cond_map=cond_map)
        assert (pores == cond_map[:, 1]).float().mean() > 0.9
        pore_map = cond_map[:, 1].long()
        drawn = prior.bottom.sample(6, (8, 8), generator=gen, cond=cond,
                                    cond_map=with_pore_map(cond_map, pore_map))  # fmt: skip
        assert ((drawn // 2) == pore_map).float().mean() > 0.9
        whole = prior.sample(16, (8, 8), generator=gen, cond=torch.tensor([[0.7, 0.3]] * 16))
    blocks = (whole // 2).reshape(16, 4, 2, 4, 2)
    assert (blocks.amax((2, 4)) == blocks.amin((2, 4))).float().mean() > 0.9
    with pytest.raises(InputError, match="pore map of shape"):
        train_pixelcnn(codes, tmp_path / "q.pt", tmp_path / "q.csv",
                       pore_map=under[:, :4].astype(bool), **kw)  # fmt: skip
    with pytest.raises(InputError, match="give class_map_counts"):
        train_pixelcnn(
            codes,
            tmp_path / "q.pt",
            tmp_path / "q.csv",
            n_codes=4,
            pore_map=under.astype(bool),
            device="cpu",
            show_progress=False,
            window=8,
        )


def test_a_pore_level_to_the_pixel_draws_each_codes_pixels(tmp_path):
    """Pores of 3 x 3 px at the top-left of marked 4-px cells: to the code (2-px codes) their
    footprint is the whole cell, to the pixel four distinct patterns (all four pixels, the
    left column, the top row, one pixel). A pore level given which of each code's pixels are
    pore (16 symbols) draws whole 3 x 3 squares at the marks (in any corner: the training
    windows are turned), so the pore's outline is set to the pixel before the codes."""
    from matgen.inference.segmentation import (
        code_class_counts,
        code_pixel_blocks,
        load_pixelcnn,
        pore_centre_cells,
    )
    from matgen.models.pixelcnn import class_map_condition
    from matgen.train.segmentation import pore_symbols, train_pixelcnn

    rng = np.random.default_rng(4)
    cells = rng.random((8, 4, 4)) < 0.3
    masks = np.zeros((8, 16, 16), np.uint8)
    for n, i, j in zip(*np.nonzero(cells)):
        masks[n, 4 * i : 4 * i + 3, 4 * j : 4 * j + 3] = 1
    blocks = code_pixel_blocks(masks == 1, 2)
    symbols = pore_symbols(blocks)
    assert sorted(np.unique(symbols[:, :2, :2][cells[:, :1, :1].repeat(2, 1).repeat(2, 2)])) == [
        1, 3, 5, 15
    ]  # fmt: skip
    codes = (symbols > 0) * 2 + (rng.random(symbols.shape) < 0.5)
    # 30 epochs: at 20 the level drew whole squares at 8 of 16 marks on one CPU (16 of 16 at
    # 30), the float32 kernels' rounding deciding which side of the 0.6 it landed
    train_pixelcnn(codes, tmp_path / "p.pt", tmp_path / "p.csv", n_codes=4, epochs=30,
                   steps_per_epoch=10, batch_size=16, window=8, dim=16, n_layers=2, kernel=3,
                   lr=5e-3, class_counts=code_class_counts(masks, 2, 2),
                   class_map_counts=code_class_counts(masks, 4, 2), class_map_classes=1,
                   class_map_marks=pore_centre_cells(masks, 4, 1), class_map_window=4,
                   pore_map=blocks, pore_map_dim=16, map_kernel=3, map_context=2, device="cpu",
                   show_progress=False)  # fmt: skip
    prior, _, _ = load_pixelcnn(tmp_path / "p.pt")
    assert prior.pores.n_codes == 16 and prior.bottom.n_cond_map == 2 + 16
    class_map = torch.zeros(8, 4, 4, dtype=torch.long)
    class_map[:, 1, 2] = class_map[:, 3, 0] = 1
    with torch.no_grad():
        drawn = prior.pores.sample(8, (8, 8), generator=torch.Generator().manual_seed(0),
                                   cond=torch.tensor([[0.86, 0.14]] * 8),
                                   cond_map=class_map_condition(class_map, 2, 2))  # fmt: skip
    bits = torch.stack([(drawn >> b) & 1 for b in range(4)], 1).reshape(8, 2, 2, 8, 8)
    pixels = bits.permute(0, 3, 1, 4, 2).reshape(8, 16, 16)  # which pixels are pore
    corners = []  # a 3 x 3 px pore in any corner of its cell: the windows were turned (D4)
    for a in (0, 1):
        for b in (0, 1):
            square = torch.zeros(4, 4, dtype=torch.long)
            square[a : a + 3, b : b + 3] = 1
            corners.append(square)
    whole = [
        any(torch.equal(pixels[n, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4], c) for c in corners)
        for n in range(8)
        for i, j in ((1, 2), (3, 0))
    ]
    assert np.mean(whole) >= 0.6, whole  # by chance: a 3 x 3 square in 1 of 2^16 patterns
    in_cells = [
        pixels[:, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].sum((1, 2)) for i, j in ((1, 2), (3, 0))
    ]
    assert 7.5 <= torch.cat(in_cells).float().mean() <= 10.5
    assert pixels.sum() <= 8 * 2 * 9 * 1.1  # nothing drawn beside the marked cells


def test_a_two_level_prior_draws_codes_that_follow_its_class_map(tmp_path):
    """Masks of 4-px cells of two classes, codes 0/1 under class 0 and 2/3 under class 1: the
    two-level prior's code level draws the codes of the class its class map holds, and drawn
    whole (class map, then codes) keeps each cell one class; its model file loads as a
    two-level prior and its log carries the class map's NLL."""
    import pandas as pd

    from matgen.inference.segmentation import code_class_counts, load_pixelcnn
    from matgen.models.pixelcnn import HierarchicalPrior, class_map_condition
    from matgen.train.segmentation import train_pixelcnn

    rng = np.random.default_rng(1)
    cells = rng.random((8, 4, 4)) < 0.4
    masks = cells.repeat(4, 1).repeat(4, 2).astype(np.uint8)  # (8, 16, 16)
    under = masks[:, ::2, ::2].astype(np.int64)  # the class under each 2-px code
    codes = under * 2 + (rng.random(under.shape) < 0.5)
    kw = dict(n_codes=4, epochs=10, steps_per_epoch=10, batch_size=16, window=8, dim=16,
              n_layers=2, kernel=3, lr=5e-3, device="cpu", show_progress=False)  # fmt: skip
    train_pixelcnn(codes, tmp_path / "p.pt", tmp_path / "p.csv",
                   class_counts=code_class_counts(masks, 2, 2),
                   class_map_counts=code_class_counts(masks, 4, 2), class_map_window=4,
                   class_map_batch_size=16, **kw)  # fmt: skip
    prior, window, _ = load_pixelcnn(tmp_path / "p.pt")
    assert isinstance(prior, HierarchicalPrior) and prior.cell == 2 and window == 8
    log = pd.read_csv(tmp_path / "p.csv")
    assert {"nll", "class_map_nll"} <= set(log.columns) and len(log) == 10
    gen = torch.Generator().manual_seed(0)
    class_map = torch.zeros(6, 4, 4, dtype=torch.long)
    class_map[:, :, 2:] = 1  # the right half class 1
    cond_map = class_map_condition(class_map, 2, 2)
    assert cond_map.shape == (6, 2, 8, 8)
    cond = torch.tensor([[0.5, 0.5]] * 6)
    with torch.no_grad():
        drawn = prior.bottom.sample(6, (8, 8), generator=gen, cond=cond, cond_map=cond_map)
        assert ((drawn // 2) == cond_map.argmax(1)).float().mean() > 0.9
        whole = prior.sample(16, (8, 8), generator=gen, cond=torch.tensor([[0.6, 0.4]] * 16))
    blocks = (whole // 2).reshape(16, 4, 2, 4, 2)
    assert (blocks.amax((2, 4)) == blocks.amin((2, 4))).float().mean() > 0.9
    assert 0.15 < (whole // 2).float().mean() < 0.65
    with pytest.raises(ValueError, match="cells"):
        prior.sample(1, (7, 8), cond=cond[:1])
    # max_passes caps the class map's passes too: 10 passes over its 128 cells in 2 epochs
    # of 2 steps of 4² cells allow 20 windows a step, not the 32 asked
    short = dict(kw, epochs=2, steps_per_epoch=2, max_passes=10)
    summary = train_pixelcnn(codes, tmp_path / "s.pt", tmp_path / "s.csv",
                             class_counts=code_class_counts(masks, 2, 2),
                             class_map_counts=code_class_counts(masks, 4, 2),
                             class_map_window=4, class_map_batch_size=32, **short)  # fmt: skip
    assert summary["epochs"] == 2 and summary["class_map_batch_size"] == 20


def test_level_temperatures_reach_each_level_of_a_hierarchical_prior(monkeypatch):
    """A factor per level multiplies the temperature that level draws at (the others keep
    it); all factors 1 is the plain temperature, draw for draw; an unknown level is refused."""
    from matgen.models.pixelcnn import HierarchicalPrior

    torch.manual_seed(9)
    prior = HierarchicalPrior(n_codes=6, n_classes=3, cell=2, dim=8, n_layers=2, kernel=3,
                              n_cond=3, pore_dim=8, map_kernel=3, map_context=2).eval()  # fmt: skip
    cond = torch.tensor([[0.6, 0.3, 0.1]] * 4)

    def draw(seed, **kw):
        return prior.sample(4, (8, 8), generator=torch.Generator().manual_seed(seed), cond=cond,
                            **kw)  # fmt: skip

    ones = dict(class_map=1.0, pores=1.0, codes=1.0)
    assert torch.equal(draw(0), draw(0, level_temperature=ones))
    assert not torch.equal(draw(0), draw(0, level_temperature=dict(codes=0.3)))
    seen = {}
    for name, level in (("class_map", prior.top), ("pores", prior.pores), ("codes", prior.bottom)):

        def spy(n, shape, temperature, *args, _name=name, _orig=level.sample):
            seen[_name] = temperature
            return _orig(n, shape, temperature, *args)

        monkeypatch.setattr(level, "sample", spy)
    draw(0, temperature=2.0, level_temperature=dict(pores=0.5, codes=0.25))
    assert seen == dict(class_map=2.0, pores=1.0, codes=0.5)
    with pytest.raises(ValueError, match="levels are class_map, pores, codes"):
        draw(0, level_temperature={"pore": 0.5})
