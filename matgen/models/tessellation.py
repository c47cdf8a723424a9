"""Generators that draw grain maps: a network places seeds, a differentiable Voronoi renderer
draws the grains (after the physics of the data: grains grow from nuclei until they meet).

A convolutional trunk works on a G × G grid of cells (4 × 4 px each at 64² and G = 16); each
cell proposes ``seeds_per_cell`` candidate nuclei, each with a position inside the cell, a
presence logit and a grey level (the grain's orientation). The renderer gives every pixel to the
nearest present nucleus (a periodic, optionally anisotropic metric: columnar grains), paints the
grain its nucleus' grey and the one-pixel boundaries dark. The forward pass is that hard
tessellation, so every sample is a grain map — closed boundaries, one grey level per grain —
whatever the training state. The gradient of positions and grey levels comes from a soft
version (softmax over distances, Straight-Through), that of presence from what switching a
nucleus off or on would do to the image (:func:`render_tessellation`), so D's or the
likelihood's signal moves nuclei, switches them on and off and changes their grey levels: the
number of grains per image is learnt as the nucleation density.

A cell's pixels choose among the 12 present candidates nearest the cell's centre, taken from
the cells up to ``window`` away (all cells, periodically, once ``window`` ≥ G/2: the default, so
that a sparse map of 20 large grains is drawn as a tessellation whatever the distances); the
per-pixel cost is ∝ pixels × 16, not × all candidates. A map keeps at least its most probable
nucleus (an RVE holds at least one grain).

:class:`TessellationGenerator` is the cGAN's G (noise map + global latent + condition →
grain map); :class:`TessellationVAE` is the conditional VAE with a local latent map (one
Gaussian per cell, N(0, I) prior) and a global latent, decoded by the same trunk and renderer.
"""

from __future__ import annotations

import torch
from torch import nn

from .dcgan import _maps  # the condition as constant feature maps, as D takes it

_FAR = 1e4  # px²: an absent nucleus loses to any present one in the window
PARAMS = 5  # per candidate: y offset, x offset, presence, grey, presence probability (logits)
# a cell's pixels choose among the 12 present candidates nearest its centre (a pixel of a 4-px
# cell is within 2.9 px of it, so its own nearest nucleus is among them) and the soft map also
# weighs the 4 nearest candidates present or not, so that switching one on has a gradient
NEAREST_PRESENT, NEAREST_ANY = 12, 4
GREY_BREADTH = 8.0  # the grey levels' soft assignment is this much broader
LOGISTIC_SCALE = 1.7  # sigmoid(1.7 ε), ε ~ N(0, 1), is close to uniform on (0, 1)


_ORIENTATION_FEATURES = ("1", "cos 2πg", "sin 2πg", "cos 4πg", "sin 4πg")


def _orientation_features(grey: torch.Tensor) -> torch.Tensor:
    """(..., 5) features of grey levels in [0, 1]: 1 and the cos / sin of 2πg and 4πg, smooth
    periodic functions of the grain's orientation from which an MLP can form the stiffness
    moments (cos / sin 2ψ, 4ψ; ψ is an affine map of g)."""
    angle = 2 * torch.pi * grey
    return torch.stack(
        [torch.ones_like(grey), angle.cos(), angle.sin(), (2 * angle).cos(), (2 * angle).sin()], -1
    )


def orientation_fraction(
    grey: torch.Tensor, orientation_range: tuple[float, float] | None
) -> torch.Tensor:
    """Grain orientations as fractions of the period from their grey levels painted in
    ``orientation_range`` (ψ = 0 and ψ → one period); the grey itself where that is None."""
    if orientation_range is None:
        return grey
    lo, hi = orientation_range
    return (grey - lo) / (hi - lo)


def _monotone(w: torch.Tensor) -> torch.Tensor:
    """Coefficients (..., 5) of a turn f → f + Σ w_k φ_k(f) on the circle, the harmonics
    scaled down where needed so that the map's slope stays within 1 ± 0.9: a monotone map tilts
    the orientations' distribution; a folding one (slope < 0) lays orientations over each
    other. |slope − 1| ≤ 2π(|w₁| + |w₂|) + 4π(|w₃| + |w₄|)."""
    turn, harmonics = w[..., :1], w[..., 1:]
    frequency = torch.tensor([1.0, 1.0, 2.0, 2.0], device=w.device, dtype=w.dtype)
    slope = 2 * torch.pi * (harmonics.abs() * frequency).sum(-1, keepdim=True)
    return torch.cat([turn, harmonics * 0.9 / slope.clamp(min=0.9)], -1)


def render_tessellation(
    seeds: torch.Tensor,
    resolution: int,
    window: int,
    log_elongation: torch.Tensor,
    boundary_level: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Grain map (N, 1, R, R) in [0, 1] from candidate nuclei ``seeds`` (N, m, 5, G, G) of logits
    per cell: y offset, x offset, presence (> 0: present in this sample), grey, and the presence
    probability's logit (what the gradient of the presence flows into). Periodic both ways.

    ``log_elongation``: log of the grains' stretch along y (the metric divides y distances by
    it); ``boundary_level``: grey of the boundary pixels; ``temperature`` (px²): width of the
    soft assignment that carries the gradient of positions and grey levels.

    Forward: the hard tessellation. Backward: positions and grey levels through a soft
    tessellation of the present nuclei (Straight-Through); presence through what switching a
    nucleus would do to the image, a first-order estimate of the loss' change: a present nucleus'
    pixels as they would be without it (each to its runner-up nucleus, boundaries redrawn), an
    absent one's pixels (those nearer to it than to their nucleus) as they would be with it. A
    soft tessellation gives no usable density signal: every boundary pulls the nuclei on its two
    sides in opposite directions."""
    n, m, _, g, _ = seeds.shape
    cell = resolution // g
    dev, dt = seeds.device, seeds.dtype
    # nuclei in one flat list per image, index (row · G + col) · m + slot
    flat = seeds.permute(0, 3, 4, 1, 2).reshape(n, g * g * m, PARAMS)
    ids = torch.arange(g * g * m, device=dev)
    row, col = (ids // (g * m)).to(dt), ((ids // m) % g).to(dt)
    ys = (row + torch.sigmoid(flat[..., 0])) * cell  # px, image coordinates
    xs = (col + torch.sigmoid(flat[..., 1])) * cell
    grey, probability = torch.sigmoid(flat[..., 3]), torch.sigmoid(flat[..., 4])
    # an RVE holds at least one grain: the most probable nucleus of an image is always present
    on = (flat[..., 2] > 0) | (flat[..., 2] == flat[..., 2].amax(1, keepdim=True))
    absent = _FAR * (~on).to(dt)
    stretch = log_elongation.exp()

    def wrap(t: torch.Tensor) -> torch.Tensor:  # the nearest periodic image of a difference
        return torch.remainder(t + resolution / 2, resolution) - resolution / 2

    with torch.no_grad():  # which nuclei a cell's pixels weigh: near its centre, present first
        centre = (torch.arange(g, device=dev, dtype=dt) + 0.5) * cell
        covers_grid = 2 * window + 1 >= g
        if covers_grid:
            # the window covers the grid: every cell weighs every nucleus, so the distances
            # separate by axis (no per-cell gather; the same numbers, a third of the time)
            dy = wrap(ys[:, None] - centre.view(g, 1)) / stretch  # (N, G, nuclei)
            dx = wrap(xs[:, None] - centre.view(g, 1))
            d2_centre = dy[:, :, None] ** 2 + dx[:, None] ** 2  # (N, G, G, nuclei)
            absent_near = absent[:, None, None]
        else:
            window_ids = _candidate_ids(g, m, window, dev)[0]  # (G, G, m·k²)
            dy = wrap(ys[:, window_ids] - centre.view(g, 1, 1)) / stretch
            d2_centre = dy**2 + wrap(xs[:, window_ids] - centre.view(1, g, 1)) ** 2
            absent_near = absent[:, window_ids]
        near = torch.cat(
            [
                (d2_centre + absent_near).topk(NEAREST_PRESENT, -1, largest=False)[1],
                d2_centre.topk(NEAREST_ANY, -1, largest=False).indices,
            ],
            -1,
        )
        if not covers_grid:
            near = window_ids.expand(n, -1, -1, -1).gather(-1, near)  # (N, G, G, near): ids

    def pick(t: torch.Tensor) -> torch.Tensor:  # (N, nuclei) -> (N, G, G, cell², near)
        picked = t.gather(-1, near.view(n, -1)).view(n, g, g, 1, -1)
        return picked.expand(-1, -1, -1, cell * cell, -1)

    offset = torch.arange(cell, device=dev, dtype=dt) + 0.5
    corner = torch.arange(g, device=dev, dtype=dt) * cell
    py = (corner.view(g, 1, 1, 1) + offset.view(1, 1, cell, 1)).expand(g, g, cell, cell)
    px = (corner.view(1, g, 1, 1) + offset.view(1, 1, 1, cell)).expand(g, g, cell, cell)
    py, px = py.reshape(g, g, cell * cell, 1), px.reshape(g, g, cell * cell, 1)
    d2 = (wrap(pick(ys) - py) / stretch) ** 2 + wrap(pick(xs) - px) ** 2
    gone = pick(absent)
    with torch.no_grad():
        first, second = (d2 + gone).topk(2, -1, largest=False).indices.split(1, -1)
        # the absent candidate a pixel would go to if it were switched on
        nearer = d2 + _FAR * (gone == 0) + _FAR * (d2 >= d2.gather(-1, first))
        newcomer = nearer.argmin(-1, keepdim=True)
        has_new = nearer.gather(-1, newcomer).squeeze(-1) < _FAR
    # soft tessellation of the present nuclei: a sharp one (temperature) for the boundaries, a
    # broader one for the grey levels
    sharp = torch.softmax(-d2 / temperature - gone, -1).topk(2, -1).values
    broad = torch.softmax(-d2 / (GREY_BREADTH * temperature) - gone, -1)
    grey_near = pick(grey)
    grey_soft = (broad * grey_near).sum(-1)
    edge_soft = 1 - (sharp[..., 0] - sharp[..., 1])

    def to_image(t: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        t = t if index is None else t.gather(-1, index).squeeze(-1)
        t = t.view(n, g, g, cell, cell).permute(0, 1, 3, 2, 4)
        return t.reshape(n, 1, resolution, resolution)

    near_ids = pick(ids.expand(n, -1))  # (N, G, G, cell², near): which nucleus each one is
    own, runner_up = to_image(near_ids, first), to_image(near_ids, second)
    new = to_image(near_ids, newcomer)
    has_new = to_image(has_new)
    level = boundary_level.to(dt)
    hard = torch.where(_edges(own, own), level, to_image(grey_near, first))
    soft = to_image(grey_soft * (1 - edge_soft)) + level * to_image(edge_soft)
    with torch.no_grad():
        # each pixel as it would be without its nucleus: neighbours of the same grain switch too
        without = torch.where(_edges(runner_up, own, runner_up), level, to_image(grey_near, second))
        with_new = torch.where(
            _edges(torch.where(has_new, new, own), own, torch.where(has_new, new, own)),
            level,
            to_image(grey_near, newcomer),
        )
        remove_effect, add_effect = hard - without, (with_new - hard) * has_new
    p_own, p_new = to_image(pick(probability), first), to_image(pick(probability), newcomer)
    presence = (p_own - p_own.detach()) * remove_effect + (p_new - p_new.detach()) * add_effect
    return hard + soft - soft.detach() + presence


def _edges(
    labels: torch.Tensor, own: torch.Tensor, changed: torch.Tensor | None = None
) -> torch.Tensor:
    """Boundary pixels by the simulator's convention (the right or lower neighbour is another
    grain), with each pixel taking ``labels`` and a neighbour taking ``changed`` where it belongs
    to the same grain of ``own`` as the pixel (what changes with that grain), else ``own``."""
    changed = labels if changed is None else changed
    edge = torch.zeros_like(labels, dtype=torch.bool)
    for a, b in (
        ((..., slice(None), slice(None, -1)), (..., slice(None), slice(1, None))),
        ((..., slice(None, -1), slice(None)), (..., slice(1, None), slice(None))),
    ):
        same = own[a] == own[b]
        edge[a] |= labels[a] != torch.where(same, changed[b], own[b])
    return edge


def _candidate_ids(g: int, m: int, window: int, device: torch.device) -> torch.Tensor:
    """Global nucleus index (1, G, G, m·k²) of each candidate a cell's pixels look at: the cells
    up to ``window`` away (k = 2·window + 1 per side, fewer than the periodic grid's G; a window
    that covers the grid needs no index, see :func:`render_tessellation`)."""
    k = 2 * window + 1
    cells = torch.arange(g, device=device)
    off = torch.arange(k, device=device) - window
    rows = (cells.view(g, 1, 1, 1, 1) + off.view(1, 1, 1, k, 1)) % g
    cols = (cells.view(1, g, 1, 1, 1) + off.view(1, 1, 1, 1, k)) % g
    slot = torch.arange(m, device=device).view(1, 1, m, 1, 1)
    ids = (rows * g + cols) * m + slot  # (G, G, m, k, k)
    return ids.reshape(1, g, g, m * k * k)


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 1, 1, padding_mode="circular"), nn.BatchNorm2d(cout), nn.ReLU()
    )


class SeedDecoder(nn.Module):
    """[local map (N, L, G, G), global latent (N, Z), condition (N, C)] → grain map (N, 1, R, R)
    in [0, 1]: a periodic convolutional trunk on the cell grid, a 1×1 head to the candidate
    nuclei, and :func:`render_tessellation` (with a learnt elongation and boundary grey)."""

    def __init__(
        self,
        resolution: int,
        cond_dim: int,
        latent_dim: int,
        local_channels: int,
        grid: int,
        seeds_per_cell: int,
        window: int,
        width: int,
        depth: int,
        temperature: float,
        presence_gain: float = 2.0,
        orientation_feedback: int = 0,
        orientation_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        if resolution % grid:
            raise ValueError(f"resolution {resolution} is not a multiple of the grid {grid}")
        if local_channels < 4 * seeds_per_cell:
            raise ValueError(
                f"local_channels {local_channels} < 4 × seeds_per_cell ({4 * seeds_per_cell}): "
                "each candidate's position, presence and grey need their own noise channel"
            )
        self.resolution, self.grid, self.window = resolution, grid, window
        self.seeds_per_cell, self.temperature = seeds_per_cell, temperature
        if (
            orientation_range is not None
            and not 0 < orientation_range[0] < orientation_range[1] < 1
        ):
            raise ValueError(f"orientation_range {orientation_range} is not 0 < lo < hi < 1")
        self.orientation_range = None if orientation_range is None else tuple(orientation_range)
        chans = [local_channels + latent_dim + cond_dim] + [width] * depth
        self.trunk = nn.Sequential(*[_conv(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.head = nn.Conv2d(width, seeds_per_cell * (PARAMS - 1), 1)
        # the nucleation density must move by several logits (from ~20 to ~280 nuclei an image):
        # a gain on the presence logits lets Adam's lr-sized steps get there within the run
        gain = torch.ones(1, 1, PARAMS - 1, 1, 1)
        gain[:, :, 2] = presence_gain
        self.register_buffer("gain", gain, persistent=False)
        self.log_elongation = nn.Parameter(torch.zeros(()))
        self.boundary_logit = nn.Parameter(torch.tensor(-3.0))  # dark, as imaged
        # drawn last, its output layer zero: with it a decoder starts as the same function
        self.feedback = None
        if orientation_feedback:
            self.feedback = nn.Sequential(
                nn.Linear(len(_ORIENTATION_FEATURES) + cond_dim + 1, orientation_feedback),
                nn.LeakyReLU(0.2),
                nn.Linear(orientation_feedback, len(_ORIENTATION_FEATURES)),
            )
            nn.init.zeros_(self.feedback[-1].weight)
            nn.init.zeros_(self.feedback[-1].bias)

    def seeds(self, local: torch.Tensor, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Candidate nuclei logits (N, m, 4, G, G).

        The first 4m local channels also enter the position, presence and grey logits
        directly: with a standard normal local map, sigmoid(1.7 ε) is close to uniform, so the
        nuclei start as a Poisson process with uniformly random orientations (presence
        probability sigmoid(head)) instead of a lattice of equal grains the trunk would first
        have to unlearn; the trunk learns the corrections (density, orientation texture)."""
        g, m = self.grid, self.seeds_per_cell
        h = self.trunk(torch.cat([local, _maps(z, g), _maps(cond, g)], 1))
        skip = local[:, : 4 * m].reshape(len(h), m, 4, g, g) * LOGISTIC_SCALE
        out = self.head(h).view(len(h), m, PARAMS - 1, g, g) * self.gain
        seeds = torch.cat([out + skip, out[:, :, 2:3]], 2)
        if self.orientation_range is not None:
            # the orientation on its circle: the noise's quantile Φ(ε), uniform for a standard
            # normal ε, turned by the head's output, modulo one period
            quantile = torch.special.ndtr(skip[:, :, 3] / LOGISTIC_SCALE)
            seeds = self._with_orientation(seeds, quantile + out[:, :, 3])
        return seeds if self.feedback is None else self._orientation_feedback(seeds, cond)

    def _with_orientation(self, seeds: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
        """``seeds`` with the grey logits of orientations given as fractions of the period (any
        real number, taken modulo 1), painted in ``orientation_range``."""
        lo, hi = self.orientation_range
        grey = lo + (hi - lo) * torch.remainder(fraction, 1.0)
        return torch.cat([seeds[:, :, :3], torch.logit(grey)[:, :, None], seeds[:, :, 4:]], 2)

    def _orientation_feedback(self, seeds: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Seeds with grey logits corrected by the map's draft orientations as a whole.

        A map's homogenised property (E11) is set by all its grains' orientations together,
        area-weighted, but the trunk sees 7 cells of 16 and each grain's grey comes mostly from
        its own noise: the draft's E11 scatters around the condition as widely as the real
        class does. The draft is rendered (no gradient) and summarised by the mean features
        φ = (1, cos/sin 2πg, 4πg) of its grain pixels' grey levels g; a small MLP of them, the
        condition and the log expected number of nuclei gives per map the coefficients of a
        correction Σ_k w_k φ_k(g) to every grey logit, which can pull grains towards or away
        from any orientation (with ``orientation_range``: a turn of each orientation on its
        circle, kept monotone by :func:`_monotone`). Its inputs carry no gradient: the feedback
        reads the draft, it does not move its nuclei. Measured (docs/polysilicon.md): the
        cGAN's maps then carry their E11 (MAE below a class-mean guess's, was above it) with the
        density band at 1.5 σ; the cVAE's lose class accuracy (off there in the config)."""
        with torch.no_grad():
            draft = self._render(seeds)[:, 0]
            grain = (draft != torch.sigmoid(self.boundary_logit)).to(draft.dtype)[..., None]
            pixels = grain.sum((1, 2)).clamp(min=1)  # a map always holds a grain; no 0 / 0
            features = _orientation_features(orientation_fraction(draft, self.orientation_range))
            summary = (features * grain).sum((1, 2)) / pixels
            log_count = expected_nuclei(seeds).clamp(min=1e-6).log()[:, None]
        w = self.feedback(torch.cat([summary, cond, log_count], 1))[:, None, None, None]
        if self.orientation_range is not None:  # turn each orientation on its circle
            fraction = orientation_fraction(torch.sigmoid(seeds[:, :, 3]), self.orientation_range)
            return self._with_orientation(
                seeds, fraction + (_orientation_features(fraction) * _monotone(w)).sum(-1)
            )
        grey = seeds[:, :, 3] + (_orientation_features(torch.sigmoid(seeds[:, :, 3])) * w).sum(-1)
        return torch.cat([seeds[:, :, :3], grey[:, :, None], seeds[:, :, 4:]], 2)

    def _render(self, seeds: torch.Tensor) -> torch.Tensor:
        return render_tessellation(
            seeds,
            self.resolution,
            self.window,
            self.log_elongation,
            torch.sigmoid(self.boundary_logit),
            self.temperature,
        )

    def forward(
        self, local: torch.Tensor, z: torch.Tensor, cond: torch.Tensor, return_seeds: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        seeds = self.seeds(local, z, cond)
        image = self._render(seeds)
        return (image, seeds) if return_seeds else image


class _GrainMapModel(nn.Module):
    """What the cGAN's G and the cVAE share: the seed decoder, the latent shapes, and drawing a
    grain map from a global latent, a local map and the condition. Subclasses call
    ``_init_decoder`` after any layers of their own (the order the weights are drawn in)."""

    def _init_decoder(
        self,
        resolution: int,
        cond_dim: int,
        latent_dim: int,
        local_channels: int,
        grid: int,
        seeds_per_cell: int,
        window: int,
        width: int,
        depth: int,
        temperature: float,
        presence_gain: float,
        orientation_feedback: int = 0,
        orientation_range: tuple[float, float] | None = None,
    ) -> None:
        self.resolution, self.latent_dim, self.cond_dim = resolution, latent_dim, cond_dim
        self.local_shape = (local_channels, grid, grid)
        self.decoder = SeedDecoder(
            resolution,
            cond_dim,
            latent_dim,
            local_channels,
            grid,
            seeds_per_cell,
            window,
            width,
            depth,
            temperature,
            presence_gain,
            orientation_feedback,
            orientation_range,
        )

    def generate(
        self, z: torch.Tensor, local: torch.Tensor, cond: torch.Tensor, return_seeds: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The grain map; with ``return_seeds`` also the candidate nuclei (N, m, 5, G, G)."""
        return self.decoder(local, z, cond, return_seeds)

    def sample(self, z: torch.Tensor, eps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """A grain map from prior draws: standard normal ``z`` (N, Z) and ``eps`` (N, L, G, G)."""
        return self.generate(z, eps, cond)


class TessellationGenerator(_GrainMapModel):
    """cGAN generator: (z (N, latent_dim), local noise (N, L, G, G), cond) → grain map in
    [0, 1]. ``z`` is a global latent (traversable); the local noise map places the nuclei."""

    def __init__(
        self,
        resolution: int = 64,
        img_channels: int = 1,
        cond_dim: int = 5,
        latent_dim: int = 4,
        local_channels: int = 8,
        grid: int = 16,
        seeds_per_cell: int = 2,
        window: int = 8,
        width: int = 32,
        depth: int = 3,
        temperature: float = 4.0,
        presence_gain: float = 2.0,
        orientation_feedback: int = 0,
        orientation_range: tuple[float, float] | None = None,
    ) -> None:
        if img_channels != 1:
            raise ValueError("a grain map has one channel")
        super().__init__()
        self._init_decoder(
            resolution,
            cond_dim,
            latent_dim,
            local_channels,
            grid,
            seeds_per_cell,
            window,
            width,
            depth,
            temperature,
            presence_gain,
            orientation_feedback,
            orientation_range,
        )

    def forward(
        self, z: torch.Tensor, local: torch.Tensor, cond: torch.Tensor, return_seeds: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return self.generate(z, local, cond, return_seeds)


def expected_nuclei(seeds: torch.Tensor) -> torch.Tensor:
    """(N,) expected number of nuclei of each sample: the sum of the candidates' presence
    probabilities (differentiable; the drawn count is the number of presence logits > 0)."""
    return torch.sigmoid(seeds[:, :, 4]).sum((1, 2, 3))


def _w2_to_uniform(values: torch.Tensor) -> torch.Tensor:
    """Squared 1-D Wasserstein-2 distance between the samples ``values`` and U(0, 1): the mean
    squared gap between the sorted values and the uniform quantiles (0 for a perfect spread,
    1/12 when all sit at 0.5)."""
    if values.numel() < 2:
        return values.sum() * 0
    ranked = values.sort().values
    quantiles = (torch.arange(len(ranked), device=values.device, dtype=values.dtype) + 0.5) / len(
        ranked
    )
    return (ranked - quantiles).square().mean()


def offset_nonuniformity(seeds: torch.Tensor) -> torch.Tensor:
    """How far the present nuclei of ``seeds`` (N, m, 5, G, G) are from a random pattern.

    Nuclei scattered at random (the real grains' binomial process) sit anywhere in their cell,
    independently of their neighbours: their offsets in the cell, and the differences (mod 1)
    of the y offsets of side-by-side cells and of the x offsets of stacked cells, are all
    uniform on (0, 1). A lattice of square grains has equal offsets, hence straight, axis-
    aligned boundaries. Returns the sum over those four sets of the squared W2 distance to
    U(0, 1): about 0 for random nuclei, 0.8 for a perfect lattice (1/12 for each offset set,
    1/3 for each difference set); differentiable in the offsets."""
    on = seeds[:, :, 2] > 0  # (N, m, G, G)
    offsets = torch.sigmoid(seeds[:, :, :2])  # (N, m, 2, G, G): y, x in cell units
    total = _w2_to_uniform(offsets[:, :, 0][on]) + _w2_to_uniform(offsets[:, :, 1][on])
    for axis, dim in ((0, -1), (1, -2)):  # y offsets along a row, x offsets down a column
        a = offsets[:, :, axis]  # (N, m, G, G)
        b = a.roll(-1, dim)  # the periodic neighbour (the RVE is periodic)
        pair = on[:, :, None] & on.roll(-1, dim)[:, None]  # (N, m, m, G, G): every slot pair
        diff = torch.remainder(a[:, :, None] - b[:, None], 1.0)
        total = total + _w2_to_uniform(diff[pair])
    return total


def orientation_nonuniformity_by_class(
    seeds: torch.Tensor, class_index: torch.Tensor, orientation_range: tuple[float, float]
) -> torch.Tensor:
    """How far the present nuclei's orientations of ``seeds`` (N, m, 5, G, G) are from random,
    class by class (``class_index`` (N,)): the sum over the classes in the batch of the squared
    W2 distance between their nuclei's orientations, as fractions of the period read from the
    grey levels in ``orientation_range``, and U(0, 1). Real grains are oriented at random in
    every class; a map must still tilt its own orientations to carry its E11, but pooled over
    maps of a class at their real conditions the tilts average out. Differentiable in the grey
    logits."""
    on = seeds[:, :, 2] > 0
    fraction = orientation_fraction(torch.sigmoid(seeds[:, :, 3]), orientation_range).clamp(0, 1)
    total = seeds.sum() * 0
    for k in class_index.unique():
        mine = class_index == k
        total = total + _w2_to_uniform(fraction[mine][on[mine]])
    return total


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


class TessellationVAE(_GrainMapModel):
    """Conditional VAE with a local latent map u (N, L, G, G) and a global latent z (N, Z);
    both with N(0, I) priors; q(u, z | x, c) from a convolutional encoder, p(x | u, z, c) the
    seed decoder and renderer. ``forward`` → (reconstruction in [0, 1], (mu, logvar) of u, of
    z)."""

    def __init__(
        self,
        resolution: int = 64,
        img_channels: int = 1,
        cond_dim: int = 5,
        latent_dim: int = 4,
        local_channels: int = 8,
        grid: int = 16,
        seeds_per_cell: int = 2,
        window: int = 8,
        width: int = 32,
        depth: int = 3,
        temperature: float = 4.0,
        presence_gain: float = 2.0,
        orientation_feedback: int = 0,
        orientation_range: tuple[float, float] | None = None,
    ) -> None:
        n_local = (resolution // grid).bit_length() - 1
        if grid * 2**n_local != resolution or grid % 4:
            raise ValueError(f"resolution {resolution} / grid {grid} is not a power of two ≥ 1")
        super().__init__()
        chans = [img_channels + cond_dim] + [width] * n_local
        self.to_grid = nn.Sequential(*[_down(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.local_stats = nn.Conv2d(width + cond_dim, 2 * local_channels, 3, 1, 1)
        self.to_global = nn.Sequential(_down(width, width), _down(width, width))
        self.global_stats = nn.Linear(width * (grid // 4) ** 2 + cond_dim, 2 * latent_dim)
        self._init_decoder(
            resolution,
            cond_dim,
            latent_dim,
            local_channels,
            grid,
            seeds_per_cell,
            window,
            width,
            depth,
            temperature,
            presence_gain,
            orientation_feedback,
            orientation_range,
        )

    def encode(
        self, x: torch.Tensor, cond: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        h = self.to_grid(torch.cat([x, _maps(cond, x.shape[-1])], 1))
        mu_u, logvar_u = self.local_stats(torch.cat([h, _maps(cond, h.shape[-1])], 1)).chunk(2, 1)
        flat = torch.cat([self.to_global(h).flatten(1), cond], 1)
        mu_z, logvar_z = self.global_stats(flat).chunk(2, 1)
        return (mu_u, logvar_u.clamp(-12, 8)), (mu_z, logvar_z.clamp(-12, 8))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, ...]:
        (mu_u, lv_u), (mu_z, lv_z) = self.encode(x, cond)
        u = mu_u + torch.randn_like(mu_u) * torch.exp(0.5 * lv_u)
        z = mu_z + torch.randn_like(mu_z) * torch.exp(0.5 * lv_z)
        return self.generate(z, u, cond), (mu_u, lv_u), (mu_z, lv_z)
