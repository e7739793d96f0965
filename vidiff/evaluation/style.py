"""How strongly a Shapes video shows the "outlined" style (stylized generation, Lumiere 4.1).

Hollowness: the fraction of an object's silhouette (its pixels with their holes filled) that is not
drawn. Filled shapes read ~0; the outlined style of :func:`vidiff.shapes.scenes.render` reads ~0.34 at
32 px. Motion and colour are read by the usual reader, which the outline does not disturb.
"""

from __future__ import annotations

import numpy as np

from vidiff.shapes.reader import as_unit_cthw, segment


def hollowness(video) -> float:
    """Mean over frames (with an object) of 1 - drawn / filled silhouette; NaN when nothing is drawn."""
    from scipy.ndimage import binary_fill_holes

    labels = segment(as_unit_cthw(video))  # (t, h, w), -1 = background
    vals = []
    for frame in labels:
        drawn = frame >= 0
        if drawn.sum() < 4:
            continue
        filled = binary_fill_holes(drawn)
        vals.append(1.0 - drawn.sum() / filled.sum())
    return float(np.mean(vals)) if vals else float("nan")
