"""Optical constants n(lambda), k(lambda) as data, with a smooth derivative for group indices.

Tables are interpolated with a cubic spline of n (C2, so dn/dlambda is continuous and the material
group index n - lambda dn/dlambda is smooth: CsPbBr3 has n_g ~ 7-11 on the exciton's red wing, which
sets the mode spacing). k is interpolated linearly (it only feeds absorption estimates).
Wavelengths are in nm throughout; a wavelength outside a table's range is a UserError, never an
extrapolation.

Shipped tables (fabplan/data/, CC0 via the refractiveindex.info database; each file's header carries
the full citation):
- cspbbr3-ermolaev-o (default), cspbbr3-ermolaev-e: G. Ermolaev et al., "Giant and tunable excitonic
  optical anisotropy in single-crystal halide perovskites", Nano Lett. 23, 2570-2577 (2023).
- cspbbr3-brennan: M. C. Brennan et al., MRS Commun. (2024), melt-grown polished crystal.
- fused-silica: I. H. Malitson, JOSA 55, 1205 (1965), three-term Sellmeier.
- air: n = 1.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from fabplan.errors import UserError

ArrayLike = float | np.ndarray


@dataclass(frozen=True)
class Material:
    """An isotropic optical material, valid on [lo_nm, hi_nm].

    `scale` multiplies n and k (less dense films: MAPbBr3 films have ~8 % lower n than crystals).
    """

    name: str
    lo_nm: float
    hi_nm: float
    citation: str = ""
    scale: float = 1.0

    def n(self, wavelength_nm: ArrayLike) -> np.ndarray:
        """Real refractive index."""
        wl = self._check(wavelength_nm)
        return self.scale * self._n(wl)

    def dn_dwl(self, wavelength_nm: ArrayLike) -> np.ndarray:
        """dn/dlambda in 1/nm."""
        wl = self._check(wavelength_nm)
        return self.scale * self._dn(wl)

    def k(self, wavelength_nm: ArrayLike) -> np.ndarray:
        """Extinction coefficient (0 where the source gives none)."""
        wl = self._check(wavelength_nm)
        return self.scale * self._k(wl)

    def n_group(self, wavelength_nm: ArrayLike) -> np.ndarray:
        """Material group index n - lambda dn/dlambda."""
        wl = np.asarray(wavelength_nm, dtype=float)
        return self.n(wl) - wl * self.dn_dwl(wl)

    def scaled(self, scale: float) -> Material:
        """The same material with n and k multiplied by `scale` (> 0)."""
        if not np.isfinite(scale) or scale <= 0:
            raise UserError(f"index scale must be a positive number, got {scale!r}")
        if scale == 1.0:
            return self
        import dataclasses

        return dataclasses.replace(self, scale=self.scale * scale, name=f"{self.name}*{scale:g}")

    def _check(self, wavelength_nm: ArrayLike) -> np.ndarray:
        wl = np.asarray(wavelength_nm, dtype=float)
        if wl.size and (np.nanmin(wl) < self.lo_nm - 1e-9 or np.nanmax(wl) > self.hi_nm + 1e-9):
            bad = float(np.nanmin(wl)) if np.nanmin(wl) < self.lo_nm else float(np.nanmax(wl))
            raise UserError(
                f"{self.name}: wavelength {bad:.6g} nm is outside its data range "
                f"{self.lo_nm:g}-{self.hi_nm:g} nm (no extrapolation)"
            )
        return wl

    # Overridden by subclasses.
    def _n(self, wl: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _dn(self, wl: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _k(self, wl: np.ndarray) -> np.ndarray:
        return np.zeros_like(wl)


@dataclass(frozen=True)
class ConstantMaterial(Material):
    """Non-dispersive index (air, or a user's number)."""

    value: float = 1.0

    def _n(self, wl: np.ndarray) -> np.ndarray:
        return np.full_like(wl, self.value)

    def _dn(self, wl: np.ndarray) -> np.ndarray:
        return np.zeros_like(wl)


@dataclass(frozen=True)
class SellmeierMaterial(Material):
    """n^2 - 1 = sum B_i L^2 / (L^2 - C_i^2), L in um (C_i given in um, not squared)."""

    b: tuple[float, ...] = ()
    c_um: tuple[float, ...] = ()

    def _n2(self, wl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lam2 = (wl / 1000.0) ** 2
        n2 = np.ones_like(lam2)
        dn2 = np.zeros_like(lam2)  # d(n^2)/d(L^2)
        for bi, ci in zip(self.b, self.c_um, strict=True):
            n2 = n2 + bi * lam2 / (lam2 - ci**2)
            dn2 = dn2 - bi * ci**2 / (lam2 - ci**2) ** 2
        return n2, dn2

    def _n(self, wl: np.ndarray) -> np.ndarray:
        return np.sqrt(self._n2(wl)[0])

    def _dn(self, wl: np.ndarray) -> np.ndarray:
        n2, dn2 = self._n2(wl)
        # dn/dlambda_nm = dn2/dL2 * dL2/dlambda_nm / (2 n), L2 = (wl/1000)^2.
        return dn2 * (2.0 * wl / 1e6) / (2.0 * np.sqrt(n2))


@dataclass(frozen=True, eq=False)  # arrays inside: identity comparison, hashable
class TabulatedMaterial(Material):
    """n, k from a table: cubic spline of n (smooth derivative), linear k."""

    wavelength_nm: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    n_table: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    k_table: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    _spline: CubicSpline | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_spline", CubicSpline(self.wavelength_nm, self.n_table))

    def _n(self, wl: np.ndarray) -> np.ndarray:
        return self._spline(wl)

    def _dn(self, wl: np.ndarray) -> np.ndarray:
        return self._spline(wl, 1)

    def _k(self, wl: np.ndarray) -> np.ndarray:
        return np.interp(wl, self.wavelength_nm, self.k_table)


# Malitson 1965, fused silica, 0.21-3.71 um.
FUSED_SILICA = SellmeierMaterial(
    name="fused-silica",
    lo_nm=210.0,
    hi_nm=3710.0,
    citation="I. H. Malitson, J. Opt. Soc. Am. 55, 1205 (1965)",
    b=(0.6961663, 0.4079426, 0.8974794),
    c_um=(0.0684043, 0.1162414, 9.896161),
)
AIR = ConstantMaterial(name="air", lo_nm=0.0, hi_nm=np.inf, citation="n = 1", value=1.0)

_TABLE_FILES = {
    "cspbbr3-ermolaev-o": "CsPbBr3_nk_Ermolaev-o.csv",
    "cspbbr3-ermolaev-e": "CsPbBr3_nk_Ermolaev-e.csv",
    "cspbbr3-brennan": "CsPbBr3_nk_Brennan.csv",
}
_ALIASES = {
    "cspbbr3": "cspbbr3-ermolaev-o",
    "ermolaev-o": "cspbbr3-ermolaev-o",
    "ermolaev-e": "cspbbr3-ermolaev-e",
    "brennan": "cspbbr3-brennan",
    "silica": "fused-silica",
    "sio2": "fused-silica",
    "quartz": "fused-silica",
    "glass": "fused-silica",
    "vacuum": "air",
}
MATERIAL_NAMES = (*_TABLE_FILES, "fused-silica", "air")
DEFAULT_FILM = "cspbbr3-ermolaev-o"


def parse_nk_csv(text: str, name: str) -> TabulatedMaterial:
    """Read `wavelength,n[,k]` rows; '#' lines are comments (their text becomes the citation).

    The wavelength column is in um if its header says um (or all values are < 20), else in nm.
    """
    comments = [ln[1:].strip() for ln in text.splitlines() if ln.lstrip().startswith("#")]
    rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].lstrip().startswith("#")]
    header: list[str] = []
    if rows and not _is_number(rows[0][0]):
        header = [h.strip().lower() for h in rows[0]]
        rows = rows[1:]
    try:
        data = np.array([[float(v) for v in r[:3]] + [0.0] * (3 - len(r[:3])) for r in rows], float)
    except ValueError as exc:
        raise UserError(f"{name}: cannot read n,k table ({exc})") from None
    if data.ndim != 2 or len(data) < 4:
        raise UserError(f"{name}: an n,k table needs at least 4 rows of wavelength,n[,k]")
    wl = data[:, 0]
    in_um = (header and re.search(r"\bum\b|micro|_um", header[0])) or (not header and wl.max() < 20)
    if header and "nm" in header[0]:
        in_um = False
    if in_um:
        wl = wl * 1000.0
    order = np.argsort(wl)
    wl, n, k = wl[order], data[order, 1], data[order, 2]
    if np.any(np.diff(wl) <= 0):
        raise UserError(f"{name}: wavelengths must be distinct")
    if not np.all(np.isfinite(data)) or np.any(n <= 0):
        raise UserError(f"{name}: n must be finite and positive")
    return TabulatedMaterial(
        name=name,
        lo_nm=float(wl[0]),
        hi_nm=float(wl[-1]),
        citation=" ".join(c for c in comments if c.lower().startswith(("reference", "source"))),
        wavelength_nm=wl,
        n_table=n,
        k_table=k,
    )


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=16)
def _shipped(name: str) -> TabulatedMaterial:
    text = resources.files("fabplan").joinpath("data", _TABLE_FILES[name]).read_text(encoding="utf-8")
    return parse_nk_csv(text, name)


@lru_cache(maxsize=16)
def _user_file(path: str, mtime: float) -> TabulatedMaterial:
    return parse_nk_csv(Path(path).read_text(encoding="utf-8"), Path(path).name)


def get_material(spec: str | float | Material, scale: float = 1.0) -> Material:
    """A Material from a shipped name, a CSV path, a number (constant index) or a Material."""
    if isinstance(spec, Material):
        mat = spec
    elif isinstance(spec, (int, float)) and not isinstance(spec, bool):
        if spec < 1.0:
            raise UserError(f"refractive index must be >= 1, got {spec}")
        mat = ConstantMaterial(name=f"n={spec:g}", lo_nm=0.0, hi_nm=np.inf, value=float(spec))
    else:
        text = str(spec).strip()
        key = _ALIASES.get(text.lower(), text.lower())
        if key in _TABLE_FILES:
            mat = _shipped(key)
        elif key == "fused-silica":
            mat = FUSED_SILICA
        elif key == "air":
            mat = AIR
        elif _is_number(text):
            return get_material(float(text), scale)
        elif text.lower().endswith((".csv", ".txt")) or Path(text).is_file():
            p = Path(text)
            if not p.is_file():
                raise UserError(f"n,k file not found: {text}")
            mat = _user_file(str(p.resolve()), p.stat().st_mtime)
        else:
            raise UserError(
                f"unknown material {text!r}; use one of {', '.join(MATERIAL_NAMES)}, "
                "a CSV file (wavelength,n,k) or a number"
            )
    return mat.scaled(scale)
