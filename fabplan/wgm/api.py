"""Notebook/CLI-facing WGM estimates: slab, one disc, sweeps and per-disc design annotations.

Everything returns plain dataclasses or numpy arrays. Wavelengths in nm, diameters in um.

Counting convention: by default only the fundamental radial family (radial order 1) is solved. It has
the lowest radiation loss at a given wavelength and sits at the rim where lasing starts, and its
spacing is the FSR the lab measures. `max_radial_order` adds higher radial families. A mode counts in
the window if its resonance lies in the window and its radiative Q >= q_min (default 100: a mode
broader than ~5 nm is not a resonance worth counting). "Single-mode" means exactly one counted mode.

FSR: the local spacing of the fundamental family at the window centre, from exact dispersive roots at
the continuous azimuthal order resonating there, minus and plus 1/2 (see `_fsr_centre`); it includes
the film's material dispersion (n_g ~ 7 at 540 nm) and the disc's own geometric dispersion.
`single_mode_limit` is the largest D whose FSR still exceeds the window width.

Example (notebook):
    >>> from fabplan.wgm import estimate_disc, sweep
    >>> r = estimate_disc(10.0)               # 100 nm CsPbBr3 on silica, air outside, 530-545 nm
    >>> r.fsr_nm, r.n_modes_in_window, r.wavelengths_nm
    >>> s = sweep(np.arange(2, 30, 0.5))      # arrays: s.fsr_nm, s.n_modes, s.q_rad, s.single_mode_limit_um
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline

from fabplan.errors import UserError
from fabplan.wgm import disc as _disc
from fabplan.wgm.materials import DEFAULT_FILM, Material, get_material
from fabplan.wgm.slab import SlabMode, _check_pol, slab_arrays

DEFAULT_WINDOW_NM = (530.0, 545.0)
# A mode counts (and single_mode_limit accepts a disc) only with radiative Q >= 100: a line broader than
# lambda/Q ~ 5 nm at 540 nm is wider than the spacing of any disc here and than the gain window's
# structure, i.e. not a resonance a laser can select. Exposed as --q-min / q_min.
DEFAULT_Q_MIN = 100.0
MAX_DIAMETER_UM = 2000.0  # m ~ 24,000 at 530 nm: beyond, the batch sizes stop being sensible
MAX_UNIQUE = 4000  # distinct diameters solved by annotate_diameters (~5 s worst case)
_GRID_STEP_NM = 0.25


@dataclass(frozen=True)
class Mode:
    """One resonance: azimuthal order m, radial order (1 = fundamental), wavelength, radiative Q."""

    m: int
    radial_order: int
    wavelength_nm: float
    q_rad: float
    n_eff: float  # slab effective index at this resonance (self-consistent)
    # Absorption Q of the UNPUMPED film, n_g N / (2 n_f Gamma k) (modal loss (n_f/N) Gamma 4 pi k / lambda):
    # ~2e3 at 540 nm for 100 nm, close to the measured ~1.8e3 (REFERENCE.md section 4). Gain bleaches it.
    q_abs: float = float("nan")


@dataclass(frozen=True)
class DiscModes:
    """WGM estimate for one disc; slab numbers are at the window centre."""

    diameter_um: float
    thickness_nm: float
    polarization: str
    family: str  # "Hz" (slab TE) or "Ez" (slab TM)
    n_eff: float
    n_group: float
    confinement: float
    n_outside: float
    fsr_nm: float  # local spacing of the fundamental family at the window centre (exact roots)
    fsr_estimate_nm: float  # lambda^2 / (pi D n_g), for comparison
    modes: list[Mode]  # resonances inside the window, sorted by wavelength
    window_nm: tuple[float, float]
    q_min: float = DEFAULT_Q_MIN

    @property
    def n_modes_in_window(self) -> int:
        return sum(1 for md in self.modes if md.q_rad >= self.q_min)

    @property
    def single_mode(self) -> bool:
        return self.n_modes_in_window == 1

    @property
    def wavelengths_nm(self) -> np.ndarray:
        """Resonance wavelengths in the window (the mode comb), ascending."""
        return np.array([md.wavelength_nm for md in self.modes])

    def __repr__(self) -> str:  # one line; the full mode list is in .modes / .to_dict()
        lo, hi = self.window_nm
        return (f"DiscModes(D {self.diameter_um:g} um, {self.thickness_nm:g} nm film, FSR {self.fsr_nm:.3f} nm "
                f"at {0.5 * (lo + hi):g} nm, {self.n_modes_in_window} mode(s) in {lo:g}-{hi:g} nm, "
                f"n_g {self.n_group:.2f})")

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["window_nm"] = list(self.window_nm)
        d["n_modes_in_window"] = self.n_modes_in_window
        d["single_mode"] = self.single_mode
        return d


@dataclass(frozen=True)
class Sweep:
    """FSR, mode count and Q versus diameter (one entry per diameter)."""

    diameter_um: np.ndarray
    fsr_nm: np.ndarray
    fsr_estimate_nm: np.ndarray
    n_modes: np.ndarray
    q_rad: np.ndarray  # radiative Q trend of the fundamental family at the window centre
    single_mode: np.ndarray
    window_nm: tuple[float, float]
    single_mode_limit_um: float  # largest D whose FSR at the window centre exceeds the window width
    thickness_nm: float = 100.0
    polarization: str = "te"
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "diameter_um": self.diameter_um.tolist(),
            "fsr_nm": self.fsr_nm.tolist(),
            "fsr_estimate_nm": self.fsr_estimate_nm.tolist(),
            "n_modes": self.n_modes.tolist(),
            "q_rad": self.q_rad.tolist(),
            "single_mode": self.single_mode.tolist(),
            "window_nm": list(self.window_nm),
            "single_mode_limit_um": self.single_mode_limit_um,
            "thickness_nm": self.thickness_nm,
            "polarization": self.polarization,
        }


@dataclass(frozen=True)
class Stack:
    """Film / substrate / cover (air) plus the index used outside the disc rim."""

    film: Material
    substrate: Material
    cover: Material
    outside: Material
    thickness_nm: float
    polarization: str

    @property
    def lo_nm(self) -> float:
        return max(m.lo_nm for m in (self.film, self.substrate, self.cover, self.outside))

    @property
    def hi_nm(self) -> float:
        return min(m.hi_nm for m in (self.film, self.substrate, self.cover, self.outside))


def make_stack(thickness_nm: float = 100.0, material: str | float | Material = DEFAULT_FILM,
               substrate: str | float | Material = "fused-silica", outside: str | float | Material = "air",
               polarization: str = "te", index_scale: float = 1.0, cover: str | float | Material = "air") -> Stack:
    """Resolve material specs; `outside` may be 'air', 'substrate', a material name or a number."""
    if not np.isfinite(thickness_nm) or thickness_nm <= 0:
        raise UserError(f"film thickness must be positive, got {thickness_nm} nm")
    pol = _check_pol(polarization)
    film = get_material(material, index_scale)
    sub = get_material(substrate)
    out = sub if isinstance(outside, str) and outside.strip().lower() == "substrate" else get_material(outside)
    return Stack(film, sub, get_material(cover), out, float(thickness_nm), pol)


def _check_range(stack: Stack, lo: float, hi: float) -> None:
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi < lo:
        raise UserError(f"bad wavelength window {lo}-{hi} nm")
    if lo < stack.lo_nm or hi > stack.hi_nm:
        names = [m.name for m in (stack.film, stack.substrate, stack.outside) if lo < m.lo_nm or hi > m.hi_nm]
        raise UserError(
            f"wavelengths {lo:g}-{hi:g} nm are outside the data range of {', '.join(names)} "
            f"({stack.lo_nm:g}-{stack.hi_nm:g} nm usable)"
        )


def estimate_slab(thickness_nm: float = 100.0, wavelength_nm: float = 540.0,
                  material: str | float | Material = DEFAULT_FILM, substrate: str | float | Material = "fused-silica",
                  polarization: str = "te", order: int = 0, index_scale: float = 1.0,
                  cover: str | float | Material = "air") -> SlabMode:
    """Slab mode (N, group index with material dispersion, confinement) at one wavelength
    (thickness and wavelength take units: "100 nm", "0.54 um"; bare numbers are nm)."""
    from fabplan.units import parse_kind

    thickness_nm = parse_kind(thickness_nm, "wavelength_nm")
    wavelength_nm = parse_kind(wavelength_nm, "wavelength_nm")
    st = make_stack(thickness_nm, material, substrate, "air", polarization, index_scale, cover)
    _check_range(st, wavelength_nm, wavelength_nm)
    wl = np.array([float(wavelength_nm)])
    N, ng, gamma, _ = slab_arrays(wl, st.thickness_nm, st.film, st.substrate, st.cover, st.polarization, order)
    if not np.isfinite(N[0]):
        raise UserError(
            f"no guided {st.polarization.upper()}{order} mode in a {thickness_nm:g} nm film at {wavelength_nm:g} nm "
            "(below cutoff)"
        )
    return SlabMode(float(wl[0]), st.thickness_nm, st.polarization, order, float(N[0]), float(ng[0]),
                    float(gamma[0]), float(st.film.n(wl)[0]), float(st.substrate.n(wl)[0]), float(st.cover.n(wl)[0]))


class IndexModel:
    """N(lambda), dN/dlambda (slab TE0/TM0, spline of exact slab solutions) and n_o(lambda) on [lo, hi]."""

    def __init__(self, stack: Stack, lo_nm: float, hi_nm: float):
        n_pts = max(8, int(np.ceil((hi_nm - lo_nm) / _GRID_STEP_NM)) + 1)
        wl = np.linspace(lo_nm, hi_nm, n_pts)
        N, ng, gamma, _ = slab_arrays(wl, stack.thickness_nm, stack.film, stack.substrate, stack.cover,
                                      stack.polarization)
        if not np.all(np.isfinite(N)):
            bad = wl[~np.isfinite(N)]
            raise UserError(
                f"no guided {stack.polarization.upper()}0 slab mode in a {stack.thickness_nm:g} nm film at "
                f"{bad.min():.1f}-{bad.max():.1f} nm (below cutoff): use a thicker film"
            )
        n_out = stack.outside.n(wl)
        if np.any(N <= n_out):
            raise UserError(
                f"slab effective index ({N.min():.3f}) is not above the outside index ({n_out.max():.3f}): "
                "no whispering-gallery modes"
            )
        self.lo_nm, self.hi_nm = float(lo_nm), float(hi_nm)
        self.grid_nm = wl
        self._N = CubicSpline(wl, N)
        self._no = CubicSpline(wl, n_out)
        self._ng = CubicSpline(wl, ng)
        self._gamma = CubicSpline(wl, gamma)

    def __call__(self, wl: np.ndarray):
        return self._N(wl), self._N(wl, 1), self._no(wl), self._no(wl, 1)

    def q_abs(self, wl: np.ndarray, film: Material) -> np.ndarray:
        """Unpumped-film absorption Q = n_g N / (2 n_f Gamma k) at each wavelength (capped like q_rad).

        Modal absorption is (n_f / N) Gamma k, not Gamma k (perturbation of a slab by Im eps = 2 n_f k:
        d(N^2) = Gamma_E 2 n_f i k, so Im N = (n_f / N) Gamma k; a complex-index slab solve agrees to
        0.1 %, issue 18): the old n_g / (2 Gamma k) was 21-23 % too high."""
        k = film.k(wl)
        with np.errstate(divide="ignore"):
            q = self._ng(wl) * self._N(wl) / (2.0 * film.n(wl) * self._gamma(wl) * k)
        return np.minimum(q, _disc.Q_RAD_MAX)

    def slab(self, wl: float) -> tuple[float, float, float, float]:
        """(N, n_g, Gamma, n_outside) at one wavelength."""
        return float(self._N(wl)), float(self._ng(wl)), float(self._gamma(wl)), float(self._no(wl))


def _m_continuous(q: np.ndarray, radius_um: np.ndarray, wl: np.ndarray, model: IndexModel, family: str):
    """Non-integer azimuthal order whose asymptotic resonance sits at wl (inverts the Airy series)."""
    n_in, _, n_out, _ = model(wl)
    x = 2 * np.pi * radius_um * 1000.0 / wl
    target = n_in * x  # n_in k0 R
    m = np.maximum(target, 1.0)
    for _ in range(8):  # contraction factor ~ m^(-2/3) / 3: a few passes reach 1e-6
        xm = _disc.asymptotic_x(m, q, n_in, n_out, family) * n_in  # N x(m)
        m = np.maximum(m - (xm - target), 0.5)
    return m


def _solve_batch(radius_um: np.ndarray, model: IndexModel, family: str, lo_nm, hi_nm,
                 max_radial_order: int):
    """All resonances with lambda in [lo, hi] (scalars or one per radius): (row, m, q, lambda, Q, N).

    Seeds: the asymptotic (non-integer) mode number m_q(lambda) is tabulated on the index grid; every
    integer crossed between two grid points gives one seed, interpolated linearly. This also works
    where m_q(lambda) is not monotonic (anomalous dispersion on the blue side of the exciton).
    """
    radius_um = np.asarray(radius_um, dtype=float)
    n_r = radius_um.size
    grid = model.grid_nm
    n_g = grid.size
    rows, ms, qs, seeds = [], [], [], []
    for q in range(1, max_radial_order + 1):
        R = np.repeat(radius_um, n_g)
        wl = np.tile(grid, n_r)
        mc = _m_continuous(np.full(R.size, q), R, wl, model, family).reshape(n_r, n_g)
        a, b = mc[:, :-1], mc[:, 1:]
        fa, fb = np.floor(a), np.floor(b)
        count = np.abs(fa - fb).astype(int).ravel()  # integers crossed in each grid interval
        idx = np.repeat(np.arange(count.size), count)
        k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        lo_f = np.minimum(fa, fb).ravel()
        m = lo_f[idx] + 1 + k
        r, j = np.divmod(idx, n_g - 1)
        ma, mb = a.ravel()[idx], b.ravel()[idx]
        t = (m - ma) / (mb - ma)
        rows.append(r)
        ms.append(m)
        qs.append(np.full(m.size, q))
        seeds.append(grid[j] + t * (grid[j + 1] - grid[j]))
    row = np.concatenate(rows)
    m = np.concatenate(ms)
    q = np.concatenate(qs)
    wl0 = np.concatenate(seeds)
    lo_r = np.broadcast_to(np.asarray(lo_nm, dtype=float), radius_um.shape)
    hi_r = np.broadcast_to(np.asarray(hi_nm, dtype=float), radius_um.shape)
    # Seeds are approximate: the Airy series is off by up to ~2 % at m ~ 10 (leaky, high radial orders),
    # ~0.2 % at m ~ 100. A seed this close outside the range may still converge inside it.
    slack = 0.3 * (grid[1] - grid[0]) + 0.05 * (hi_r[row] - lo_r[row]) + 0.2 * wl0 / np.maximum(m, 1.0) * q
    keep = (m >= 1) & (wl0 >= lo_r[row] - slack) & (wl0 <= hi_r[row] + slack)
    row, m, q, wl0 = row[keep], m[keep], q[keep], wl0[keep]
    x, wl, n_in, ok = _disc.solve_dispersive(m, q, radius_um[row], model, family, wl0)
    sel = ok & (wl >= lo_r[row]) & (wl <= hi_r[row])
    row, m, q, wl, x, n_in = row[sel], m[sel].astype(int), q[sel], wl[sel], x[sel], n_in[sel]
    # A seed of a leaky high radial order can converge to a neighbouring order's root: label every
    # root by its zero count, then keep one per (disc, m, radial order, wavelength). The wavelength is
    # in the key because where N(lambda)/lambda is not monotonic (anomalous dispersion below ~525 nm)
    # one (m, q) has several resonances.
    q = _disc.radial_order(m, n_in * x.real)
    keep = (q >= 1) & (q <= max_radial_order)
    row, m, q, wl, x, n_in = row[keep], m[keep], q[keep], wl[keep], x[keep], n_in[keep]
    if row.size == 0:
        empty = np.zeros(0)
        return row, m, q, empty, empty, empty
    o = np.lexsort((wl, q, m, row))
    same = (np.diff(row[o]) == 0) & (np.diff(m[o]) == 0) & (np.diff(q[o]) == 0) & (np.diff(wl[o]) < 1e-3)
    first = np.sort(o[np.concatenate([[True], ~same])])
    return row[first], m[first], q[first], wl[first], _disc.q_rad(x[first]), n_in[first]


def free_spectral_range(diameter_um: float, wavelength_nm: float, thickness_nm: float = 100.0,
                        material: str | float | Material = DEFAULT_FILM,
                        substrate: str | float | Material = "fused-silica", outside: str | float | Material = "air",
                        polarization: str = "te", index_scale: float = 1.0) -> float:
    """FSR (nm) of the fundamental family near one wavelength, from exact dispersive roots (units
    accepted: "10um", "540 nm")."""
    from fabplan.units import parse_kind

    wavelength_nm = parse_kind(wavelength_nm, "wavelength_nm")
    return estimate_disc(diameter_um, thickness_nm, material, substrate, outside,
                         (wavelength_nm - 0.05, wavelength_nm + 0.05), polarization, index_scale).fsr_nm


def _fsr_centre(radius_um: np.ndarray, model: IndexModel, family: str, centre: float):
    """FSR and Q of the fundamental family at `centre`, smooth in D: (fsr_nm, q_rad) arrays.

    The characteristic equation holds for any real order nu, so lambda(nu) is a smooth curve through
    the integer-m resonances. With nu_c the (asymptotic) order resonating at the centre, the exact
    self-consistent roots at nu_c -/+ 1/2 give FSR = lambda(nu_c - 1/2) - lambda(nu_c + 1/2): a unit
    step in m centred on the window centre, without the jumps of "the two modes nearest the centre" as
    D changes. Q is the geometric mean of the two roots' Q (the trend, not one mode's Q).
    """
    R = np.asarray(radius_um, dtype=float)
    n = R.size
    nu = _m_continuous(np.ones(n, dtype=int), R, np.full(n, centre), model, family)
    ng = max(model.slab(centre)[1], 1.0)
    half = 0.5 * centre**2 / (np.pi * 2000.0 * R * ng)
    orders = np.concatenate([nu - 0.5, nu + 0.5])
    ok_order = orders >= 0.5
    orders = np.maximum(orders, 0.5)
    x, wl, n_in, ok = _disc.solve_dispersive(orders, np.ones(2 * n, dtype=int), np.tile(R, 2), model, family,
                                             np.concatenate([centre + half, centre - half]))
    ok &= ok_order
    ok[ok] &= _disc.radial_order(orders[ok], n_in[ok] * x.real[ok]) == 1
    q = _disc.q_rad(x)
    good = ok[:n] & ok[n:]
    fsr = np.where(good, wl[:n] - wl[n:], np.nan)
    with np.errstate(invalid="ignore"):
        q_c = np.where(good, np.sqrt(q[:n]) * np.sqrt(q[n:]), np.nan)
    return fsr, q_c


def _ext_range(stack: Stack, window_nm: tuple[float, float], d_min_um: float, ng: float) -> tuple[float, float]:
    """Window widened by ~1.5 FSR of the smallest disc (to bracket the FSR), clipped to the data."""
    lo, hi = window_nm
    c = 0.5 * (lo + hi)
    fsr = c * c / (np.pi * max(d_min_um, 0.3) * 1000.0 * max(ng, 1.0))
    pad = 1.5 * fsr + 2.0
    return max(lo - pad, stack.lo_nm), min(hi + pad, stack.hi_nm)


def _window(window_nm) -> tuple[float, float]:
    lo, hi = (float(v) for v in window_nm)
    if not hi > lo:
        raise UserError(f"window must be lo:hi with hi > lo, got {lo:g}:{hi:g} nm")
    return lo, hi


def _model_for(stack: Stack, window: tuple[float, float], d_min_um: float) -> tuple[IndexModel, float, float]:
    _check_range(stack, *window)
    c = 0.5 * (window[0] + window[1])
    ng = float(slab_arrays(np.array([c]), stack.thickness_nm, stack.film, stack.substrate, stack.cover,
                           stack.polarization)[1][0])
    lo_ext, hi_ext = _ext_range(stack, window, d_min_um, ng if np.isfinite(ng) else 2.0)
    return IndexModel(stack, lo_ext, hi_ext), lo_ext, hi_ext


def _batch(diameters_um: np.ndarray, stack: Stack, window: tuple[float, float], max_radial_order: int):
    d = np.asarray(diameters_um, dtype=float)
    if d.size == 0:
        raise UserError("no diameters given")
    if np.any(~np.isfinite(d)) or np.any(d <= 0):
        raise UserError("disc diameters must be positive")
    if d.max() > MAX_DIAMETER_UM:
        raise UserError(f"disc diameter {d.max():g} um is beyond the estimator's range (<= {MAX_DIAMETER_UM:g} um)")
    if d.size > 20000:
        raise UserError(f"{d.size} diameters at once: use a coarser sweep (<= 20000)")
    if max_radial_order < 1:
        raise UserError("max_radial_order must be >= 1")
    model, lo_ext, hi_ext = _model_for(stack, window, float(d.min()))
    family = _disc.family_for(stack.polarization)
    res = _solve_batch(d / 2.0, model, family, window[0], window[1], max_radial_order)
    fsr, q_c = _fsr_centre(d / 2.0, model, family, 0.5 * (window[0] + window[1]))
    return model, family, res, fsr, q_c


def estimate_disc(diameter_um: float, thickness_nm: float = 100.0, material: str | float | Material = DEFAULT_FILM,
                  substrate: str | float | Material = "fused-silica", outside: str | float | Material = "air",
                  window_nm: tuple[float, float] = DEFAULT_WINDOW_NM, polarization: str = "te",
                  index_scale: float = 1.0, *, max_radial_order: int = 1, q_min: float = DEFAULT_Q_MIN) -> DiscModes:
    """Resonances of one disc in a gain window, FSR at the window centre, slab numbers at the centre.

    Diameter and thickness take units as the CLI does ("10um", "0.1 um"; bare numbers: um, nm).

    >>> estimate_disc("10um", thickness_nm="100 nm")  # doctest: +ELLIPSIS
    DiscModes(D 10 um, 100 nm film, FSR 1.2... nm at 537.5 nm, ... mode(s) in 530-545 nm, n_g ...)
    """
    from fabplan.units import parse_kind

    diameter_um = parse_kind(diameter_um, "length_um")
    thickness_nm = parse_kind(thickness_nm, "wavelength_nm")
    stack = make_stack(thickness_nm, material, substrate, outside, polarization, index_scale)
    window = _window(window_nm)
    model, family, (row, m, q, wl, Q, N), fsr_c, _ = _batch(np.array([float(diameter_um)]), stack, window,
                                                             max_radial_order)
    centre = 0.5 * (window[0] + window[1])
    n_eff, n_g, gamma, n_out = model.slab(centre)
    fsr = float(fsr_c[0])
    inw = (wl >= window[0]) & (wl <= window[1])
    order = np.argsort(wl[inw])
    wl_in = wl[inw][order]
    qa = model.q_abs(wl_in, stack.film)
    modes = [
        Mode(int(mi), int(qi), float(wi), float(Qi), float(Ni), float(Qa))
        for mi, qi, wi, Qi, Ni, Qa in zip(m[inw][order], q[inw][order], wl_in, Q[inw][order], N[inw][order], qa,
                                          strict=True)
    ]
    return DiscModes(
        diameter_um=float(diameter_um), thickness_nm=stack.thickness_nm, polarization=stack.polarization,
        family=family, n_eff=n_eff, n_group=n_g, confinement=gamma, n_outside=n_out, fsr_nm=fsr,
        fsr_estimate_nm=centre**2 / (np.pi * diameter_um * 1000.0 * n_g), modes=modes, window_nm=window,
        q_min=float(q_min),
    )


def _per_diameter(d_unique: np.ndarray, stack: Stack, window: tuple[float, float], max_radial_order: int,
                  q_min: float):
    """(fsr, n_modes, fundamental Q at the centre, n_g at centre) per diameter, one vectorised solve."""
    model, _, (row, m, q, wl, Q, _), fsr, q_c = _batch(d_unique, stack, window, max_radial_order)
    counted = (wl >= window[0]) & (wl <= window[1]) & (Q >= q_min)
    n_modes = np.bincount(row[counted], minlength=d_unique.size)
    return fsr, n_modes, q_c, model.slab(0.5 * (window[0] + window[1]))[1]


def annotate_diameters(diameters_um, thickness_nm: float = 100.0, material: str | float | Material = DEFAULT_FILM,
                       substrate: str | float | Material = "fused-silica", outside: str | float | Material = "air",
                       window_nm: tuple[float, float] = DEFAULT_WINDOW_NM, polarization: str = "te",
                       index_scale: float = 1.0, *, max_radial_order: int = 1, q_min: float = DEFAULT_Q_MIN):
    """(fsr_nm, n_modes, single_mode) arrays aligned with `diameters_um` (NaN/0/False where D is NaN,
    not positive or above MAX_DIAMETER_UM).

    Solved once per unique diameter rounded to 1 nm, so 250,000-disc designs cost a few solves. If a
    design has more than MAX_UNIQUE distinct diameters (a continuous gradient), they are rounded more
    coarsely (10 nm, 100 nm) to bound the cost: FSR moves by ~0.1 % per 10 nm at D = 10 um, a mode
    count may then be off by one for a disc whose mode sits at a window edge.
    """
    d = np.asarray(diameters_um, dtype=float).ravel()
    fsr = np.full(d.shape, np.nan)
    n_modes = np.zeros(d.shape, dtype=int)
    valid = np.isfinite(d) & (d > 0) & (d <= MAX_DIAMETER_UM)
    if np.any(valid):
        stack = make_stack(thickness_nm, material, substrate, outside, polarization, index_scale)
        for decimals in (3, 2, 1, 0):
            uniq, inv = np.unique(np.round(d[valid], decimals), return_inverse=True)
            if uniq.size <= MAX_UNIQUE:
                break
        uniq = np.maximum(uniq, 10.0 ** -decimals)
        f_u, n_u, _, _ = _per_diameter(uniq, stack, _window(window_nm), max_radial_order, q_min)
        fsr[valid] = f_u[inv]
        n_modes[valid] = n_u[inv]
    shape = np.shape(diameters_um)
    return fsr.reshape(shape), n_modes.reshape(shape), (n_modes == 1).reshape(shape)


def sweep(diameters_um, thickness_nm: float = 100.0, material: str | float | Material = DEFAULT_FILM,
          substrate: str | float | Material = "fused-silica", outside: str | float | Material = "air",
          window_nm: tuple[float, float] = DEFAULT_WINDOW_NM, polarization: str = "te", index_scale: float = 1.0,
          *, max_radial_order: int = 1, q_min: float = DEFAULT_Q_MIN) -> Sweep:
    """FSR, mode count and fundamental Q versus diameter, plus the single-mode limit for the window."""
    d = np.asarray(diameters_um, dtype=float).ravel()
    stack = make_stack(thickness_nm, material, substrate, outside, polarization, index_scale)
    window = _window(window_nm)
    fsr, n_modes, q_c, ng = _per_diameter(d, stack, window, max_radial_order, q_min)
    centre = 0.5 * (window[0] + window[1])
    return Sweep(
        diameter_um=d, fsr_nm=fsr, fsr_estimate_nm=centre**2 / (np.pi * d * 1000.0 * ng), n_modes=n_modes,
        q_rad=q_c, single_mode=n_modes == 1, window_nm=window,
        single_mode_limit_um=single_mode_limit(thickness_nm, material, substrate, outside, window, polarization,
                                               index_scale, q_min=q_min),
        thickness_nm=float(thickness_nm), polarization=stack.polarization,
    )


def single_mode_limit(thickness_nm: float = 100.0, material: str | float | Material = DEFAULT_FILM,
                      substrate: str | float | Material = "fused-silica", outside: str | float | Material = "air",
                      window_nm: tuple[float, float] = DEFAULT_WINDOW_NM, polarization: str = "te",
                      index_scale: float = 1.0, d_lo_um: float = 0.5, d_hi_um: float = 200.0,
                      q_min: float = DEFAULT_Q_MIN) -> float:
    """Largest diameter whose fundamental FSR at the window centre exceeds the window width and whose
    radiative Q there is at least `q_min` (a disc too leaky to resonate is not a single-mode laser).

    Below it at most one fundamental mode can sit in the window whatever the exact diameter. A
    geometric scan around the estimate lambda^2 / (pi D n_g) = width (one vectorised solve) brackets the
    last crossing, then bisection to 1e-4 um. Diameters whose resonances are too leaky to find (FSR NaN,
    e.g. ~1 um discs with the substrate outside) are skipped. NaN if no disc in [d_lo, d_hi] qualifies.
    """
    stack = make_stack(thickness_nm, material, substrate, outside, polarization, index_scale)
    window = _window(window_nm)
    width = window[1] - window[0]

    def excess(d_um: np.ndarray) -> np.ndarray:
        fsr, _, q_c, _ = _per_diameter(np.asarray(d_um, dtype=float), stack, window, 1, 0.0)
        return np.where(q_c >= q_min, fsr - width, np.nan)

    c = 0.5 * (window[0] + window[1])
    ng = float(slab_arrays(np.array([c]), stack.thickness_nm, stack.film, stack.substrate, stack.cover,
                           stack.polarization)[1][0])
    d0 = c * c / (np.pi * 1000.0 * max(ng, 1.0) * width)
    grid = np.geomspace(max(d0 / 4, d_lo_um), min(max(d0 * 4, 2 * d_lo_um), d_hi_um), 33)
    e = excess(grid)
    above = np.nonzero(np.isfinite(e) & (e >= 0))[0]
    if above.size == 0:
        return float("nan")
    i = above[-1]
    if i == grid.size - 1:
        return float(grid[-1])  # still single-mode at the top of the scan
    a, b = float(grid[i]), float(grid[i + 1])
    while b - a > 1e-4:
        mid = 0.5 * (a + b)
        fm = float(excess(np.array([mid]))[0])
        if np.isfinite(fm) and fm >= 0:
            a = mid
        else:
            b = mid
    return 0.5 * (a + b)


@dataclass(frozen=True)
class ModeUncertainty:
    """Sensitivity of the comb to the film: 1-sigma shifts from thickness and index uncertainty."""

    thickness_sd_nm: float
    index_sd_rel: float
    wavelength_sd_nm: list[float]  # per mode of the nominal estimate (NaN where a mode left the window)
    fsr_sd_nm: float
    note: str = ("FSR and mode count are robust to the film's thickness and index; absolute mode positions "
                 "are not (they move by more than one FSR for +-5 nm or -1 % of index)")

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def mode_uncertainty(nominal: DiscModes, thickness_sd_nm: float = 5.0, index_sd_rel: float = 0.01,
                     material: str | float | Material = DEFAULT_FILM,
                     substrate: str | float | Material = "fused-silica", outside: str | float | Material = "air",
                     index_scale: float = 1.0) -> ModeUncertainty:
    """Propagate thickness and index uncertainty into each mode's wavelength and the FSR.

    Central differences of the exact roots of the same azimuthal order m (the comb shifts as a whole:
    following m, not "the mode nearest"), combined in quadrature. Windows are widened to keep m.
    """
    lo, hi = nominal.window_nm
    pad = 4.0 * max(nominal.fsr_nm if np.isfinite(nominal.fsr_nm) else 2.0, 1.0) + 3.0
    wide = (lo - pad, hi + pad)
    t0 = nominal.thickness_nm
    sens = []
    for kw in ({"thickness_nm": t0 + thickness_sd_nm}, {"thickness_nm": t0 - thickness_sd_nm},
               {"index_scale": index_scale * (1 + index_sd_rel)}, {"index_scale": index_scale * (1 - index_sd_rel)}):
        args = dict(thickness_nm=t0, material=material, substrate=substrate, outside=outside,
                    window_nm=wide, polarization=nominal.polarization, index_scale=index_scale)
        args.update(kw)
        try:
            r = estimate_disc(nominal.diameter_um, **args)
            sens.append(({md.m: md.wavelength_nm for md in r.modes if md.radial_order == 1}, r.fsr_nm))
        except UserError:
            sens.append(({}, float("nan")))
    out = []
    for md in nominal.modes:
        d = [(sens[i][0].get(md.m, np.nan) - sens[i + 1][0].get(md.m, np.nan)) / 2.0 for i in (0, 2)]
        out.append(float(np.hypot(*d)))
    dfsr = [(sens[i][1] - sens[i + 1][1]) / 2.0 for i in (0, 2)]
    return ModeUncertainty(float(thickness_sd_nm), float(index_sd_rel), out, float(np.hypot(*dfsr)))

