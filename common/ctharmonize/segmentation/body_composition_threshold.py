"""Weight-free body-composition labels by HU thresholds and morphology (``threshold`` backend).

Per axial slice (all distances in mm, so the method is the same at 0.7 and 2.8 mm pixels):

1. *Body*: on HU Gaussian-smoothed by ``smooth_sigma`` voxels, the largest component above
   ``body_hu`` (-500 HU, the air/tissue midpoint) without the table, holes filled. *Lungs*: the
   given or threshold-computed lung mask.
2. *Denoise*: the noise SD is estimated (robust MAD of neighbour differences in soft tissue and
   fat), then total-variation denoising with weight ``tv_factor`` x SD (edge-preserving: thin fat
   layers survive; a soft kernel is barely changed, 100-140 HU sharp-kernel noise is removed);
   optionally a Gaussian blur of ``tissue_sigma`` voxels within the body tissue only.
3. *Tissue classes*: bone >= ``bone_hu``; fat ``fat_hu`` (-190..-30); soft tissue ``muscle_hu``
   (-29..150), cleaned by ``majority_passes`` 3x3 in-plane majority votes. Body voxels below the
   fat range (tissue/air partial volume at the skin, the lung surface, the airway wall) and those
   within ``lung_rim_mm`` of the lung take the class of the nearest classified voxel.
4. *Wall*: the largest component of soft tissue or bone deeper than ``skin_mm`` below the body
   surface, opened by ``wall_opening_mm`` (noise bridges through the fat). Its filled outline is
   "inside the wall"; a ring with gaps is bridged by a hull (dilate ``wall_closing_mm``, fill,
   erode back), or replaced by its convex hull.
5. *Cavity* (thoracic / abdominal cavity, where soft tissue is organ, not skeletal muscle): the
   lungs plus the convex hull of the lungs (mediastinum between them)
   and the inside of the bone cage (hull of the bone with ``cage_closing_mm``, which links the rib
   cross-sections, shrunk by ``cage_wall_mm`` so the ribs and intercostal muscles stay outside).
   The hull and cage parts stop ``spine_depth_mm`` behind the front of the vertebral body (found
   as the most anterior bone in a 30 mm wide midline band of the posterior body half, median over
   neighbouring slices): the paraspinal muscles behind the spine are never cavity.
6. Labels: skeletal muscle (5) = soft tissue inside the wall, outside the cavity; subcutaneous fat
   (6) = fat outside the wall or on its outermost voxel (between the skin and the outer muscle /
   bone wall; soft-tissue specks < ``speck_mm2`` there count as fat). Soft tissue outside the wall
   that is not a speck, lies deeper than ``skin_mm`` and comes within ``superficial_gap_mm`` of the
   wall's outline is skeletal muscle too: superficial layers (pectoralis, latissimus, the thin back
   muscles that noise in a sharp kernel breaks off the wall; 0 disables). Soft tissue separated
   from the wall by fat (e.g. breast glandular tissue) stays "other". Visceral / intermuscular
   fat (7) = fat deeper inside; bone (8); other (9) = remaining body voxels (skin,
   cavity organs: heart, vessels, oesophagus, liver); 0 outside the body.

Limitations: contrast-enhanced vessels above ``bone_hu`` count as bone; where the cavity is
neither lung- nor rib-bounded (pelvis), organs in the muscle range count as muscle.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image
from skimage.restoration import denoise_tv_chambolle

from ctharmonize.errors import DimensionError
from ctharmonize.io.volume import Volume
from ctharmonize.segmentation.body_mask import body_mask, smooth_hu
from ctharmonize.segmentation.holes import INPLANE_STRUCTURE, fill_holes_per_slice
from ctharmonize.segmentation.image_input import as_segmentation_input
from ctharmonize.segmentation.orientation import posterior_sign

__all__ = ["body_composition_threshold"]


def _edt_slices(mask: np.ndarray, sampling) -> np.ndarray:
    """Per-slice Euclidean distance (mm) of True voxels to the nearest False voxel of their slice."""
    out = np.zeros(mask.shape, dtype=np.float32)
    for z in range(mask.shape[0]):
        if mask[z].all():
            out[z] = np.inf
        elif mask[z].any():
            out[z] = ndimage.distance_transform_edt(mask[z], sampling=sampling)
    return out


def _hull_slices(mask: np.ndarray, radius_mm: float, sampling) -> np.ndarray:
    """Per slice: dilate by ``radius_mm``, fill holes, erode by ``radius_mm`` (distance transforms).

    Unlike a closing this also closes a ring of separate pieces (rib cross-sections, a muscle
    wall with gaps) whose gaps are narrower than 2 x ``radius_mm``, and fills what it encloses.
    The slices are padded by the radius so that the image border does not stop the erosion."""
    py, px = (int(np.ceil(radius_mm / s)) + 1 for s in sampling)
    padded = np.pad(mask, ((0, 0), (py, py), (px, px)))
    dilated = fill_holes_per_slice(_edt_slices(~padded, sampling) <= radius_mm)
    hull = _edt_slices(dilated, sampling) > radius_mm
    return hull[:, py:-py, px:-px] | mask


def _largest_per_slice(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected in-plane component of every slice."""
    labels, n = ndimage.label(mask, structure=INPLANE_STRUCTURE)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    best: dict[int, tuple[int, int]] = {}
    for lab, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is not None and (sl[0].start not in best or sizes[lab] > best[sl[0].start][1]):
            best[sl[0].start] = (lab, sizes[lab])
    keep = np.zeros(n + 1, dtype=bool)
    keep[[lab for lab, _ in best.values()]] = True
    return keep[labels]


def _majority(mask: np.ndarray, within: np.ndarray) -> np.ndarray:
    """3x3 in-plane majority vote of a bool mask among the ``within`` voxels (removes specks and
    fills one-voxel holes; straight edges do not move)."""
    votes = ndimage.uniform_filter(mask.astype(np.float32), size=(1, 3, 3), mode="nearest")
    count = ndimage.uniform_filter(within.astype(np.float32), size=(1, 3, 3), mode="nearest")
    return within & (votes > 0.5 * count)


def _masked_smooth(hu: np.ndarray, mask: np.ndarray, sigma: float, sigma_z: float) -> np.ndarray:
    """Gaussian smoothing (voxels) of HU clipped to [-1024, 400] using only the ``mask`` voxels
    (normalised convolution: edges of the mask are not pulled toward what lies outside it)."""
    w = mask.astype(np.float32)
    num = ndimage.gaussian_filter(np.clip(hu, -1024.0, 400.0) * w, (sigma_z, sigma, sigma), mode="nearest")
    den = ndimage.gaussian_filter(w, (sigma_z, sigma, sigma), mode="nearest")
    return np.where(mask, num / np.maximum(den, 1e-6), -1024.0).astype(np.float32)


def _noise_sd(hu: np.ndarray, mask: np.ndarray) -> float:
    """Robust noise SD (HU) of the ``mask`` voxels: 1.4826 x median absolute horizontal neighbour
    difference / sqrt(2) (edges are rare, so the median ignores them)."""
    both = mask[:, :, 1:] & mask[:, :, :-1]
    if not both.any():
        return 0.0
    diff = np.abs(hu[:, :, 1:] - hu[:, :, :-1])[both]
    return float(1.4826 * np.median(diff) / np.sqrt(2.0))


def _nearest_fill(classes: np.ndarray, unknown: np.ndarray, sampling, skip: int = -1) -> np.ndarray:
    """Per slice, give every ``unknown`` voxel the value of the nearest voxel with a class > 0
    (other than ``skip``)."""
    out = classes.copy()
    for z in np.flatnonzero(unknown.any(axis=(1, 2))):
        known = (classes[z] > 0) & (classes[z] != skip)
        if not known.any():
            continue
        _, (iy, ix) = ndimage.distance_transform_edt(~known, sampling=sampling, return_indices=True)
        fill = unknown[z]
        out[z][fill] = classes[z][iy[fill], ix[fill]]
    return out


def _behind_spine(body: np.ndarray, bone: np.ndarray, sy: float, sx: float, sz: float, post: int | None,
                  depth_mm: float, band_mm: float = 15.0, window_mm: float = 30.0) -> np.ndarray:
    """Bool (Z, Y, X): rows more than ``depth_mm`` behind the front of the vertebral body.

    The front is the most anterior bone row within +-``band_mm`` of the body's midline column in
    the posterior half of the body, a running median over ``window_mm`` of slices (disc slices
    have no vertebral-body bone). All False when no such bone is found or the image is not axial."""
    nz, ny, nx = body.shape
    out = np.zeros(body.shape, dtype=bool)
    if post is None:
        return out
    rows = np.arange(ny)
    front = np.full(nz, np.nan)
    for z in range(nz):
        yy, xx = np.nonzero(body[z])
        if yy.size == 0:
            continue
        cy, cx = yy.mean(), xx.mean()
        hw = int(round(band_mm / sx))
        x0, x1 = max(int(round(cx)) - hw, 0), min(int(round(cx)) + hw + 1, nx)
        half = (rows - cy) * post > 0
        hit = bone[z][:, x0:x1].any(axis=1) & half
        if hit.any():
            r = rows[hit]
            front[z] = r.min() if post > 0 else r.max()
    if np.isnan(front).all():
        return out
    half_w = max(int(round(window_mm / (2 * sz))), 0)
    for z in range(nz):
        vals = front[max(z - half_w, 0) : z + half_w + 1]
        vals = vals[~np.isnan(vals)]
        if vals.size == 0:
            vals = front[~np.isnan(front)]
        cut = np.median(vals) + post * depth_mm / sy
        out[z] = ((rows - cut) * post > 0)[:, None]
    return out


def body_composition_threshold(
    image: Volume | np.ndarray,
    spacing=None,
    lung: np.ndarray | None = None,
    smooth_sigma: float = 1.0,
    smooth_sigma_z: float = 0.0,
    muscle_hu: tuple[float, float] = (-29.0, 150.0),
    fat_hu: tuple[float, float] = (-190.0, -30.0),
    bone_hu: float = 200.0,
    body_hu: float = -500.0,
    lung_rim_mm: float = 1.5,
    skin_mm: float = 5.0,
    wall_opening_mm: float = 3.0,
    majority_passes: int = 2,
    speck_mm2: float = 50.0,
    superficial_gap_mm: float = 3.0,
    tv_factor: float = 0.7,
    tissue_sigma: float = 0.0,
    wall_closing_mm: float = 10.0,
    cage_closing_mm: float = 40.0,
    cage_wall_mm: float = 12.0,
    spine_depth_mm: float = 30.0,
    include_lungs: bool = True,
    name: str | None = None,
) -> np.ndarray:
    """uint8 (Z, Y, X) canonical tissue codes: 1/2 lungs, 5 muscle, 6 SAT, 7 VAT/IMAT, 8 bone,
    9 other body tissue, 0 outside the body. HU thresholds; see the module docstring.

    ``image``: Volume or (Z, Y, X) HU array (``spacing`` (sx, sy, sz) mm). ``lung``: optional
    uint8 lung mask (1 right, 2 left); computed with the threshold lung backend when None.
    ``include_lungs=False`` leaves lungs as 0.
    """
    inp = as_segmentation_input(image, spacing, name)
    sx, sy, sz = inp.spacing
    sampling = (sy, sx)
    hu = np.where(inp.fov, inp.hu, -1024.0)
    if lung is None:
        from ctharmonize.segmentation.lung_threshold import segment_lungs_threshold

        lung = segment_lungs_threshold(image, spacing, name=name)
    lung = np.asarray(lung)
    if lung.shape != hu.shape:
        raise DimensionError(name, f"lung mask shape {lung.shape} differs from the image shape {hu.shape}")
    sm = smooth_hu(hu, smooth_sigma, inp.fov, sigma_z=smooth_sigma_z)
    out = np.zeros(hu.shape, dtype=np.uint8)
    body = body_mask(sm, inp.spacing, threshold=body_hu)
    if not body.any():
        return out
    full_out, full_lung = out, lung
    ys, xs = np.nonzero(body.any(axis=0))  # work inside the body's in-plane bounding box
    box = (slice(None), slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    hu, sm, body, lung, out = hu[box], sm[box], body[box], lung[box], out[box]
    lungs = (lung > 0) & body
    tissue = body & ~lungs
    noise = _noise_sd(hu, tissue & (sm > fat_hu[0]) & (sm < muscle_hu[1]))
    if tv_factor > 0 and noise > 0:  # edge-preserving: total-variation denoising scaled to the noise
        hu = denoise_tv_chambolle(np.clip(hu, -1024.0, 400.0), weight=tv_factor * noise, eps=2e-3,
                                  channel_axis=None)
    # (optional) blur within the tissue only: air outside the body and in the lungs does not leak in
    sm = _masked_smooth(hu, tissue, tissue_sigma, smooth_sigma_z)
    # voxels touching the lungs are lung/tissue partial-volume mixtures: classified from their neighbours
    lung_rim = tissue & (_edt_slices(~lungs, sampling) <= lung_rim_mm + 1e-3) if lungs.any() else np.zeros_like(body)
    known = tissue & ~lung_rim
    bone = known & (sm >= bone_hu)
    dense = known & ~bone & (sm >= fat_hu[0])
    soft = dense & (sm >= muscle_hu[0]) & (sm <= muscle_hu[1])
    for _ in range(majority_passes):
        soft = _majority(soft, dense)
    fat = dense & ~soft & (sm <= fat_hu[1])
    # class map for the partial-volume fill: 1 fat, 2 soft, 3 bone, 4 lung, 5 other dense (> 150 HU)
    classes = np.zeros(hu.shape, dtype=np.uint8)
    classes[dense] = 5
    classes[fat] = 1
    classes[soft] = 2
    classes[bone] = 3
    classes[lungs] = 4
    classes = _nearest_fill(classes, tissue & (classes == 0), sampling, skip=4)
    bone = classes == 3
    fat, soft = classes == 1, classes == 2

    # the wall: soft tissue / bone below the skin, opened so noise bridges through the fat break
    depth = _edt_slices(body, sampling)
    core = (soft | bone) & (depth > skin_mm)
    ry, rx = max(int(round(wall_opening_mm / sy)), 1), max(int(round(wall_opening_mm / sx)), 1)
    yy, xx = np.ogrid[-ry : ry + 1, -rx : rx + 1]
    disk = ((yy * sy) ** 2 + (xx * sx) ** 2) <= max(wall_opening_mm, sy, sx) ** 2 + 1e-6
    wall = _largest_per_slice(ndimage.binary_opening(core, structure=disk[None]) | bone)
    inner = fill_holes_per_slice(wall)  # a closed ring: its own outline, notches of fat stay SAT
    closed = _hull_slices(wall, wall_closing_mm, sampling)
    for z in range(inner.shape[0]):
        if wall[z].any() and inner[z].sum() < 1.5 * wall[z].sum():  # gaps in the ring: bridge them
            inner[z] = closed[z]
            if inner[z].sum() < 1.5 * wall[z].sum():  # still open: its convex hull
                inner[z] = convex_hull_image(wall[z])

    cage = _hull_slices(bone, cage_closing_mm, sampling)
    cavity = _edt_slices(cage, sampling) > cage_wall_mm
    for z in np.flatnonzero(lungs.any(axis=(1, 2))):  # lungs and the mediastinum between them
        cavity[z] |= convex_hull_image(lungs[z])
    cavity &= ~_behind_spine(body, bone, sy, sx, sz, posterior_sign(inp.direction), spine_depth_mm)
    cavity |= lungs

    out[body] = 9
    out[soft & inner & ~cavity] = 5
    # soft-tissue specks (noise, small vessels) in the subcutaneous compartment are SAT
    sub_soft = soft & ~inner
    lab, n = ndimage.label(sub_soft, structure=INPLANE_STRUCTURE)
    if n:
        area = np.bincount(lab.ravel()) * sx * sy
        speck = (area < speck_mm2)[lab] & sub_soft
        fat = fat | speck
        soft = soft & ~speck
        if superficial_gap_mm > 0:  # superficial muscle layers outside the wall (pectoralis, latissimus)
            near = _edt_slices(~inner, sampling) <= superficial_gap_mm + 1e-3
            touching = np.zeros(n + 1, dtype=bool)
            touching[np.unique(lab[near & sub_soft & ~speck])] = True
            touching[0] = False
            superficial = touching[lab] & (depth > skin_mm) & ~cavity  # touching components hold no specks
            out[superficial] = 5
    deep = _edt_slices(inner, (1.0, 1.0)) > 1.0  # fat on the wall's outermost voxel (its blurred edge) is SAT
    out[fat & ~deep] = 6
    out[fat & deep] = 7
    out[bone] = 8
    if include_lungs:
        full_out[full_lung == 1] = 1
        full_out[full_lung == 2] = 2
    else:
        full_out[full_lung > 0] = 0
    return full_out
