"""Masked conditioning for Lumiere's conditional generation (section 4.2).

The base model takes ``<J, C, M>``: the noisy video J, a masked conditioning video C and a binary mask M
(1 = known pixel, kept from C; 0 = to generate). Each application is a choice of C and M:

- image-to-video: C holds the first frame, M marks the first frame;
- inpainting / object insertion: C is the video, M is 0 inside the region to fill, in every frame;
- outpainting: inpainting of a border;
- cinemagraph: C is the image repeated; the first frame is fully known, later frames are known only
  outside the region that moves.

Layouts: videos ``(b, c, t, h, w)`` in the model's [-1, 1] range; masks ``(b, 1, t, h, w)`` in {0, 1}.
The model's conditioning input is ``cat([C * M, M])``: 4 channels.
"""

from __future__ import annotations

import torch

COND_CHANNELS = 4  # C (3) + M (1)


def condition_input(video: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """``cat([C * M, M])`` (b, 4, t, h, w) from a video (b, 3, t, h, w) in [-1, 1] and a mask (b, 1, t, h, w)."""
    if known.shape[1] != 1 or known.shape[0] != video.shape[0] or known.shape[2:] != video.shape[2:]:
        raise ValueError(f"mask shape {tuple(known.shape)} does not fit the video {tuple(video.shape)} (needs (b, 1, t, h, w))")
    known = known.to(video.dtype)
    return torch.cat([video * known, known], 1)


def check_mask(mask: torch.Tensor) -> torch.Tensor:
    """Raise ValueError unless ``mask`` is a binary tensor; return it as float."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"a mask must be a tensor of 0 and 1 (1 = the region), got {type(mask).__name__}")
    if not torch.all((mask == 0) | (mask == 1)):
        raise ValueError("a mask must be binary (0 or 1 everywhere); threshold it first (e.g. > 0.5)")
    return mask.float()


def first_frame_mask(b: int, t: int, h: int, w: int) -> torch.Tensor:
    """Image-to-video: only the first frame is known."""
    m = torch.zeros(b, 1, t, h, w)
    m[:, :, 0] = 1
    return m


def inpaint_mask(region: torch.Tensor, t: int) -> torch.Tensor:
    """Inpainting: ``region`` (b, 1, h, w) or (b, 1, t, h, w), 1 = fill; known = outside the region."""
    if region.dim() == 4:
        region = region[:, :, None].expand(-1, -1, t, -1, -1)
    return 1.0 - region.float()


def border_region(b: int, h: int, w: int, border: int) -> torch.Tensor:
    """Outpainting: the region to fill is a ``border``-pixel frame around the picture."""
    if border < 1 or 2 * border >= min(h, w):
        raise ValueError(f"the border must be 1..{(min(h, w) - 1) // 2} pixels for a {h}x{w} video, got {border}")
    r = torch.ones(b, 1, h, w)
    r[:, :, border:h - border, border:w - border] = 0
    return r


def cinemagraph_mask(region: torch.Tensor, t: int) -> torch.Tensor:
    """Cinemagraph: frame 0 fully known; later frames known outside ``region`` (b, 1, h, w), 1 = animate."""
    m = (1.0 - region.float())[:, :, None].repeat(1, 1, t, 1, 1)
    m[:, :, 0] = 1
    return m


def random_box(g: torch.Generator, h: int, w: int, lo: float = 0.25, hi: float = 0.75) -> torch.Tensor:
    """A (1, h, w) box covering a ``lo``..``hi`` fraction of each side, at a random place."""
    bh = int(h * (lo + (hi - lo) * torch.rand((), generator=g)))
    bw = int(w * (lo + (hi - lo) * torch.rand((), generator=g)))
    y = int(torch.randint(0, h - bh + 1, (), generator=g))
    x = int(torch.randint(0, w - bw + 1, (), generator=g))
    r = torch.zeros(1, h, w)
    r[:, y:y + bh, x:x + bw] = 1
    return r


# the training mixture: (name, probability); "none" keeps text-to-video working in the same model
TRAINING_MIX = (("first_frame", 0.35), ("inpaint", 0.2), ("outpaint", 0.1), ("cinemagraph", 0.2), ("none", 0.15))


def random_training_mask(g: torch.Generator, b: int, t: int, h: int, w: int) -> torch.Tensor:
    """One mask per example, drawn from :data:`TRAINING_MIX` with the generator of the step (so a resumed
    run draws the same masks)."""
    names = [n for n, _ in TRAINING_MIX]
    probs = torch.tensor([p for _, p in TRAINING_MIX])
    kinds = torch.multinomial(probs, b, replacement=True, generator=g).tolist()
    out = torch.zeros(b, 1, t, h, w)
    for i, k in enumerate(kinds):
        name = names[k]
        if name == "first_frame":
            out[i] = first_frame_mask(1, t, h, w)[0]
        elif name == "inpaint":
            out[i] = inpaint_mask(random_box(g, h, w)[None], t)[0]
        elif name == "outpaint":
            border = int(torch.randint(max(1, h // 8), max(2, h // 4) + 1, (), generator=g))
            out[i] = inpaint_mask(border_region(1, h, w, min(border, (min(h, w) - 1) // 2)), t)[0]
        elif name == "cinemagraph":
            out[i] = cinemagraph_mask(random_box(g, h, w, 0.4, 0.9)[None], t)[0]
    return out
