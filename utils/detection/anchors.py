"""AutoAnchor: best possible recall of the anchors on a dataset, and k-means + evolution when too low."""

from __future__ import annotations

import numpy as np
import torch


def label_sizes(shapes_hw: np.ndarray, labels: list[np.ndarray], imgsz: int) -> np.ndarray:
    """Box (w, h) in pixels with every image's longest side at ``imgsz``."""
    scaled = imgsz * shapes_hw[:, ::-1] / shapes_hw.max(1, keepdims=True)  # (w, h) per image
    wh = [lb[:, 3:5] * s for lb, s in zip(labels, scaled) if len(lb)]
    return np.concatenate(wh, 0) if wh else np.zeros((0, 2))


def anchor_fitness(anchors_px: np.ndarray, wh: np.ndarray, thr: float = 4.0) -> tuple[float, float]:
    """(best possible recall, anchors above threshold per box) for the ``anchor_t`` ratio rule."""
    if not len(wh):
        return 1.0, 0.0
    r = wh[:, None] / anchors_px[None]
    worst = np.minimum(r, 1 / r).min(2)
    best = worst.max(1)
    return float((best > 1 / thr).mean()), float((worst > 1 / thr).sum(1).mean())


def kmeans_anchors(wh: np.ndarray, n: int, thr: float = 4.0, generations: int = 1000, seed: int = 0
                   ) -> np.ndarray:
    """k-means on box sizes (whitened), then a mutation search on the anchor-fit metric."""
    rng = np.random.default_rng(seed)
    wh = wh[(wh >= 2).all(1)]
    if len(wh) < n:
        raise ValueError(f"only {len(wh)} boxes of 2 px or more: too few for {n} anchors")
    sigma = wh.std(0)
    points = wh / sigma
    centres = points[rng.choice(len(points), n, replace=False)]
    for _ in range(30):
        assign = ((points[:, None] - centres[None]) ** 2).sum(2).argmin(1)
        new = np.array([points[assign == k].mean(0) if (assign == k).any() else centres[k] for k in range(n)])
        if np.allclose(new, centres):
            break
        centres = new
    anchors = centres * sigma

    def fit(a: np.ndarray) -> float:
        r = wh[:, None] / a[None]
        best = np.minimum(r, 1 / r).min(2).max(1)
        return float((best * (best > 1 / thr)).mean())

    score = fit(anchors)
    for _ in range(generations):
        mutation = np.ones_like(anchors)
        while (mutation == 1).all():
            mask = rng.random(anchors.shape) < 0.9
            mutation = ((mask * rng.random(anchors.shape) * rng.standard_normal(anchors.shape) * 0.1) + 1
                        ).clip(0.3, 3.0)
        candidate = (anchors * mutation).clip(min=2.0)
        candidate_score = fit(candidate)
        if candidate_score > score:
            anchors, score = candidate, candidate_score
    return anchors[np.argsort(anchors.prod(1))]


def check_anchors(anchors_grid: torch.Tensor, strides: torch.Tensor, shapes_hw: np.ndarray,
                  labels: list[np.ndarray], imgsz: int, thr: float = 4.0, seed: int = 0
                  ) -> tuple[torch.Tensor | None, str]:
    """Returns (new anchors in grid units or None to keep, a report line)."""
    anchors_px = (anchors_grid * strides.view(-1, 1, 1)).view(-1, 2).cpu().numpy()
    rng = np.random.default_rng(seed)
    wh = label_sizes(shapes_hw, labels, imgsz)
    wh = wh * rng.uniform(0.9, 1.1, (len(wh), 1))  # the scale augmentation
    bpr, per_box = anchor_fitness(anchors_px, wh, thr)
    line = f"AutoAnchor: {per_box:.2f} anchors/target, best possible recall {bpr:.4f}"
    tiny = int((wh < 2).any(1).sum())
    if tiny:
        line += (f" ({tiny} of {len(wh)} boxes are under 2 px at --imgsz {imgsz}: counted in the recall, left out "
                 f"of any k-means fit)")
    if bpr > 0.98:
        return None, line + ": current anchors fit the dataset"
    n = anchors_px.shape[0]
    usable = int((wh >= 2).all(1).sum())
    if usable < n:  # a fit needs at least one box per anchor
        return None, line + f"; only {usable} boxes of 2 px or more, too few to fit {n} anchors: kept the originals"
    new = kmeans_anchors(wh, n, thr, seed=seed)
    new_bpr, _ = anchor_fitness(new, wh, thr)
    if new_bpr <= bpr:
        return None, line + f"; k-means found no better anchors ({new_bpr:.4f}), kept the originals"
    grid = torch.tensor(new, dtype=torch.float32).view_as(anchors_grid) / strides.view(-1, 1, 1).cpu()
    return grid, line + f"; new anchors have best possible recall {new_bpr:.4f}"
