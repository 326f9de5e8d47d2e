"""Pulmonary vessel trees (and their companion bronchi) grown from the hila into the lungs.

A tree is built top-down by recursive bisection of random target points sampled inside one
lung: each node sends a segment part of the way towards the centroid of its points, splits
the points along their principal axis and recurses. Radii follow Murray's law
(r_child = r_parent / 2^(1/3)), so the tree tapers towards the periphery.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grow_tree"]


def grow_tree(
    root: np.ndarray,
    targets: np.ndarray,
    rng: np.random.Generator,
    root_radius: float = 6.0,
    min_radius: float = 0.6,
) -> list[tuple[np.ndarray, np.ndarray, float, int]]:
    """Segments ``(start, end, radius_mm, generation)`` of a tree from ``root`` to ``targets`` (N, 3) mm."""
    segments: list[tuple[np.ndarray, np.ndarray, float, int]] = []
    stack = [(np.asarray(root, float), np.asarray(targets, float), root_radius, 0)]
    while stack:
        start, pts, radius, gen = stack.pop()
        if len(pts) == 0:
            continue
        radius = max(radius, min_radius)
        if len(pts) == 1:
            segments.append((start, pts[0], radius, gen))
            continue
        centroid = pts.mean(axis=0)
        frac = rng.uniform(0.35, 0.6) if gen else 0.25
        end = start + frac * (centroid - start)
        segments.append((start, end, radius, gen))
        centred = pts - centroid
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        proj = centred @ axis
        order = np.argsort(proj)
        cut = len(pts) // 2 + int(rng.integers(-len(pts) // 8, len(pts) // 8 + 1)) if len(pts) > 8 else len(pts) // 2
        cut = min(max(cut, 1), len(pts) - 1)
        child_r = radius / 2 ** (1 / 3)
        stack.append((end, pts[order[:cut]], child_r, gen + 1))
        stack.append((end, pts[order[cut:]], child_r, gen + 1))
    return segments
