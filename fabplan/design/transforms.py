"""Sample -> stage coordinates (alignment on fiducials) and focus height (focus map).

Alignment: the user finds named fiducials on the stage; a least-squares map from their design
positions to the measured stage positions is fitted: translation (1 fiducial), similarity
(rotation + scale + translation, 2), or full affine (3 or more). The focus map gives z at (x, y)
in stage coordinates: a least-squares plane, or a smoothing thin-plate spline for warped samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fabplan.design import models


@dataclass(frozen=True)
class Affine:
    """x' = a x + b y + c ; y' = d x + e y + f, plus the fit's RMS residual (um)."""

    matrix: np.ndarray  # 2x3
    residual_um: float = 0.0

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.matrix
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        return m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]


IDENTITY = Affine(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))


def fit_affine(src: np.ndarray, dst: np.ndarray) -> Affine:
    """Least-squares map src -> dst (n x 2 each): translation, similarity or affine by n."""
    src = np.asarray(src, float).reshape(-1, 2)
    dst = np.asarray(dst, float).reshape(-1, 2)
    n = len(src)
    if n == 0:
        return IDENTITY
    if n == 1:
        t = dst[0] - src[0]
        return Affine(np.array([[1.0, 0.0, t[0]], [0.0, 1.0, t[1]]]))
    if n == 2:
        # Similarity: [x' y'] = [[a -b],[b a]] [x y] + t
        rows = []
        rhs = []
        for (x, y), (u, v) in zip(src, dst, strict=True):
            rows += [[x, -y, 1, 0], [y, x, 0, 1]]
            rhs += [u, v]
        a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
        m = np.array([[a, -b, tx], [b, a, ty]])
    else:
        design = np.c_[src, np.ones(n)]
        m = np.linalg.lstsq(design, dst, rcond=None)[0].T
    fitted = Affine(m)
    u, v = fitted(src[:, 0], src[:, 1])
    residual = float(np.sqrt(np.mean((u - dst[:, 0]) ** 2 + (v - dst[:, 1]) ** 2)))
    return Affine(m, residual)


def sample_to_stage(design: models.Design) -> Affine:
    """The alignment transform of a design (identity when no alignment is given)."""
    align = design.process.alignment
    if align is None:
        return IDENTITY
    names = list(align.fiducials)
    src = np.array([design.sample.fiducials[n] for n in names], float)
    dst = np.array([align.fiducials[n] for n in names], float)
    return fit_affine(src, dst)


def focus_z(design: models.Design) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """z(x, y) in stage coordinates from the focus map (0 everywhere without one)."""
    fm = design.process.focus_map
    if fm is None:
        return lambda x, y: np.zeros(np.shape(x))
    pts = np.asarray(fm.points, float)
    if fm.model == "plane":
        coef = np.linalg.lstsq(np.c_[pts[:, :2], np.ones(len(pts))], pts[:, 2], rcond=None)[0]
        return lambda x, y: coef[0] * np.asarray(x, float) + coef[1] * np.asarray(y, float) + coef[2]
    from scipy.interpolate import RBFInterpolator

    spline = RBFInterpolator(pts[:, :2], pts[:, 2], kernel="thin_plate_spline", smoothing=1e-3, degree=1)

    def smooth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        xy = np.c_[np.ravel(x), np.ravel(y)]
        return spline(xy).reshape(np.shape(x))

    return smooth
