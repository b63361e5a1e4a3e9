"""The design file, as pydantic models (schema_version 1).

Every quantity is stored as a float in fabplan's internal unit (um, nm, mJ/cm^2, uJ, s, fs, Hz);
the YAML may give it with units. Unknown keys are errors (extra="forbid").
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from fabplan.design.quantities import (
    AccelUmS2,
    AngleDeg,
    DurationFs,
    EnergyUj,
    FluenceMjCm2,
    FrequencyHz,
    JerkUmS3,
    LengthUm,
    TimeS,
    VelocityUmS,
    WavelengthNm,
)
from fabplan.units import parse_kind

Point = tuple[LengthUm, LengthUm]
Point3 = tuple[LengthUm, LengthUm, LengthUm]
Interval = tuple[LengthUm, LengthUm]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ---------------------------------------------------------------- sample


class Film(Strict):
    material: str = Field("CsPbBr3", description="Film material (CsPbBr3 is the reference material).")
    thickness: WavelengthNm = Field(100.0, gt=0, description="Film thickness, nm.")


class Substrate(Strict):
    material: str = Field("fused-silica", description="fused-silica, glass, or any name with `index`.")
    index: float | None = Field(None, gt=1.0, description="Refractive index; default from the material.")


class Circle(Strict):
    center: Point
    radius: LengthUm = Field(gt=0)


class Shape(Strict):
    """Exactly one of rect [xmin, ymin, xmax, ymax], polygon [[x, y], ...] or circle."""

    name: str | None = None
    rect: tuple[LengthUm, LengthUm, LengthUm, LengthUm] | None = None
    polygon: list[Point] | None = None
    circle: Circle | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Shape:
        given = [k for k in ("rect", "polygon", "circle") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'rect', 'polygon' or 'circle'")
        if self.rect is not None and not (self.rect[0] < self.rect[2] and self.rect[1] < self.rect[3]):
            raise ValueError("rect must be [xmin, ymin, xmax, ymax] with xmin < xmax and ymin < ymax")
        if self.polygon is not None and len(self.polygon) < 3:
            raise ValueError("a polygon needs at least 3 points")
        return self

    def geometry(self):
        """The shape as a shapely geometry (um, sample coordinates)."""
        import shapely

        if self.rect is not None:
            return shapely.box(*self.rect)
        if self.polygon is not None:
            poly = shapely.Polygon(self.polygon)
            return poly if poly.is_valid else shapely.make_valid(poly)
        assert self.circle is not None
        return shapely.Point(self.circle.center).buffer(self.circle.radius, quad_segs=64)


class Sample(Strict):
    film: Film = Film()
    substrate: Substrate = Substrate()
    region: Shape = Field(description="Usable film region in sample coordinates (um).")
    keepouts: list[Shape] = Field(default_factory=list, description="Zones where no disc may be made.")
    fiducials: dict[str, Point] = Field(default_factory=dict, description="Named points (um).")

    def region_polygon(self):
        return self.region.geometry()

    def keepout_geometries(self) -> list:
        return [k.geometry() for k in self.keepouts]


# ---------------------------------------------------------------- laser


class WaveplateAttenuator(Strict):
    """Half-wave plate + polariser: E = E_min + (E_max - E_min) sin^2(2 (theta - theta0))."""

    type: Literal["waveplate"]
    energy_min: EnergyUj = Field(ge=0)
    energy_max: EnergyUj = Field(gt=0)
    theta0: AngleDeg = 0.0
    move_time: TimeS = Field(0.5, ge=0, description="Time to rotate to a new setting, s.")


class PercentAttenuator(Strict):
    """Pharos attenuator: E = energy_at_100 * (percent - offset_percent) / (100 - offset_percent)."""

    type: Literal["percent"]
    energy_at_100: EnergyUj = Field(gt=0)
    offset_percent: float = Field(0.0, ge=0, lt=100)
    move_time: TimeS = Field(0.5, ge=0)


Attenuator = Annotated[WaveplateAttenuator | PercentAttenuator, Field(discriminator="type")]


class Laser(Strict):
    wavelength: WavelengthNm = Field(515.0, gt=0)
    pulse_duration: DurationFs = Field(220.0, gt=0)
    repetition_rate: FrequencyHz = Field(1000.0, gt=0)
    max_pulse_energy: EnergyUj = Field(gt=0, description="Largest pulse energy the laser may deliver, uJ.")
    attenuator: Attenuator | None = None


# ---------------------------------------------------------------- beam


class Lg01Profile(Strict):
    model: Literal["lg01"]
    ring_diameter: LengthUm = Field(gt=0, description="Diameter of the bright ring (2 r_p), um.")


class AnnularProfile(Strict):
    model: Literal["annular"]
    inner_diameter: LengthUm = Field(gt=0, description="Inner edge of the mask ring, imaged, um.")
    outer_diameter: LengthUm = Field(gt=0, description="Outer edge of the mask ring, imaged, um.")
    na: float = Field(0.32, gt=0, lt=1.6, description="Objective numerical aperture.")

    @model_validator(mode="after")
    def _order(self) -> AnnularProfile:
        if self.outer_diameter <= self.inner_diameter:
            raise ValueError("outer_diameter must be larger than inner_diameter")
        return self


class MeasuredProfile(Strict):
    model: Literal["measured"]
    csv: str = Field(description="CSV with a radial profile, relative to the design file.")
    radius_column: str = "r_um"
    value_column: str = "intensity"


BeamProfile = Annotated[Lg01Profile | AnnularProfile | MeasuredProfile, Field(discriminator="model")]


class Beam(Strict):
    profile: BeamProfile
    threshold_fluence: FluenceMjCm2 = Field(gt=0, description="Single-shot ablation threshold F_th(1).")
    incubation_exponent: float = Field(0.8, gt=0, le=1.0, description="S in F_th(N) = F_th(1) N^(S-1).")
    damage_fluence: FluenceMjCm2 = Field(gt=0, description="Peak fluence above which the film is damaged.")
    fluence_definition: Literal["peak", "ring-fwhm-average", "geometric-annulus"] = Field(
        "peak",
        description=(
            "What every fluence of this design means (disc fluences, threshold_fluence, damage_fluence): "
            "'peak' = the maximum of F(r); 'ring-fwhm-average' = the mean of F(r) over the ring where "
            "F >= peak/2; 'geometric-annulus' = pulse energy / pi (r_o^2 - r_i^2) of the mask (annular "
            "beam only). Only the fluence <-> pulse energy conversion depends on it."
        ),
    )


# ---------------------------------------------------------------- arrays


def _sweep_schema(what: str) -> WithJsonSchema:
    value = {"anyOf": [{"type": "number"}, {"type": "string"}]}
    return WithJsonSchema(
        {
            "description": f"Values of {what}: a list, or an inclusive range {{start, stop, step}}.",
            "x-kind": "sweep",
            "anyOf": [
                {"type": "array", "items": value, "minItems": 1},
                {
                    "type": "object",
                    "properties": {"start": value, "stop": value, "step": value},
                    "required": ["start", "stop", "step"],
                    "additionalProperties": False,
                },
            ],
        }
    )


class DiscParams(Strict):
    diameter: LengthUm | None = Field(None, gt=0, description="Target disc diameter, um.")
    fluence: FluenceMjCm2 | None = Field(None, gt=0, description="Peak ring fluence, mJ/cm^2.")
    pulses: int = Field(1, ge=1, le=100000)


def expand_range(value: Any, kind: str | None) -> Any:
    """{start, stop, step} -> inclusive list of values (ints for pulses); lists pass through."""
    if not isinstance(value, dict):
        return value
    unknown = set(value) - {"start", "stop", "step"}
    if unknown or len(value) != 3:
        raise ValueError("a range needs exactly the keys start, stop and step")
    if kind is None:  # pulses: integers
        try:
            start, stop, step = (int(value[k]) for k in ("start", "stop", "step"))
        except (TypeError, ValueError):
            raise ValueError("pulses range needs integer start, stop and step") from None
        if step <= 0 or stop < start:
            raise ValueError("range needs step > 0 and stop >= start")
        return list(range(start, stop + 1, step))
    start, stop, step = (parse_kind(value[k], kind) for k in ("start", "stop", "step"))
    if step <= 0 or stop < start:
        raise ValueError("range needs step > 0 and stop >= start")
    count = int(np.floor((stop - start) / step + 1e-9)) + 1
    if count > 1_000_000:
        raise ValueError(f"range gives {count} values; at most 1,000,000")
    return [float(f"{start + i * step:.12g}") for i in range(count)]


class AxisSweep(Strict):
    """Parameters swept along one lattice axis; several are combined as a cartesian product
    (diameter varies slowest, then fluence, then pulses). Each is a list or a {start, stop, step} range."""

    @model_validator(mode="before")
    @classmethod
    def _ranges(cls, data: Any) -> Any:
        if isinstance(data, dict):
            kinds = {"diameter": "length_um", "fluence": "fluence_mj_cm2", "pulses": None}
            data = {k: expand_range(v, kinds[k]) if k in kinds else v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _not_empty(self) -> AxisSweep:
        if not self.parameters():
            raise ValueError("a sweep axis needs at least one of diameter, fluence, pulses")
        for name, values in self.parameters():
            if not values:
                raise ValueError(f"sweep of {name} is empty")
        return self

    def parameters(self) -> list[tuple[str, list]]:
        """[(name, values), ...]; combined with diameter varying slowest, then fluence, then pulses."""
        return [
            (k, getattr(self, k)) for k in ("diameter", "fluence", "pulses") if getattr(self, k) is not None
        ]

    diameter: Annotated[list[Annotated[LengthUm, Field(gt=0)]], _sweep_schema("length, um")] | None = None
    fluence: (
        Annotated[list[Annotated[FluenceMjCm2, Field(gt=0)]], _sweep_schema("fluence, mJ/cm^2")] | None
    ) = None
    pulses: Annotated[list[Annotated[int, Field(ge=1)]], _sweep_schema("pulses (integers)")] | None = None


class Sweep(Strict):
    rows: AxisSweep | None = None
    cols: AxisSweep | None = None


class LatticeArray(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.]+$", description="Array name, the prefix of disc ids.")
    lattice: Literal["square", "rect", "hex"] = "square"
    origin: Point = (0.0, 0.0)
    pitch: LengthUm | tuple[LengthUm, LengthUm] = Field(description="um; [px, py] for rect.")
    shape: tuple[int, int] | None = Field(None, description="[rows, cols]; implied by a sweep.")
    rotation: AngleDeg = 0.0
    skip: list[str] = Field(default_factory=list, description="Sites to leave empty, e.g. r03c07.")
    disc: DiscParams = DiscParams()
    sweep: Sweep | None = None
    repeats: int = Field(1, ge=1, description="Repeat the swept rows this many times.")


class ExplicitDisc(Strict):
    x: LengthUm
    y: LengthUm
    diameter: LengthUm | None = Field(None, gt=0)
    fluence: FluenceMjCm2 | None = Field(None, gt=0)
    pulses: int | None = Field(None, ge=1)


class ExplicitArray(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.]+$")
    disc: DiscParams = DiscParams()
    discs: list[ExplicitDisc] | None = None
    csv: str | None = Field(
        None, description="CSV with columns x_um, y_um and optional diameter_um, fluence_mj_cm2, pulses."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ExplicitArray:
        if (self.discs is None) == (self.csv is None):
            raise ValueError("give exactly one of 'discs' or 'csv'")
        return self


def _array_kind(value: Any) -> str:
    if isinstance(value, dict) and ("discs" in value or "csv" in value):
        return "explicit-array"
    return "lattice-array"


DiscArray = Annotated[
    Annotated[LatticeArray, Tag("lattice-array")] | Annotated[ExplicitArray, Tag("explicit-array")],
    Discriminator(_array_kind),
]


# ---------------------------------------------------------------- process


class FocusMap(Strict):
    points: list[Point3] = Field(min_length=1, description="Measured [x, y, z] in stage coords, um.")
    model: Literal["plane", "smooth"] = "plane"


class Alignment(Strict):
    fiducials: dict[str, Point] = Field(
        description="Stage positions (um) where the named sample fiducials were found."
    )


class Travel(Strict):
    x: Interval = (-25000.0, 25000.0)
    y: Interval = (-25000.0, 25000.0)
    z: Interval = (-5000.0, 5000.0)

    @field_validator("x", "y", "z")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] >= v[1]:
            raise ValueError("travel must be [min, max] with min < max")
        return v


class Motion(Strict):
    velocity: VelocityUmS = Field(100000.0, gt=0, description="um/s (100 mm/s default).")
    acceleration: AccelUmS2 = Field(1.0e6, gt=0, description="um/s^2 (1 m/s^2 default).")
    jerk: JerkUmS3 = Field(1.0e8, gt=0, description="um/s^3.")


class Process(Strict):
    mode: Literal["step", "fly"] = "step"
    ordering: Literal["auto", "serpentine", "nearest", "as-listed"] = "auto"
    position_tolerance: LengthUm = Field(0.1, gt=0, description="Max |encoder - target| to fire, um.")
    settle_time: TimeS = Field(0.02, ge=0)
    margin: LengthUm = Field(1.0, ge=0, description="Clearance between a trench and other discs, um.")
    focus_map: FocusMap | None = None
    alignment: Alignment | None = None
    travel: Travel = Travel()
    motion: Motion = Motion()
    fly_trigger_jitter: TimeS = Field(50e-9, ge=0, description="Position-compare trigger jitter, s.")


# ---------------------------------------------------------------- design


class Design(Strict):
    schema_version: Literal[1] = Field(description="Always 1 for this format.")
    name: str = "design"
    description: str = ""
    sample: Sample
    laser: Laser
    beam: Beam
    arrays: list[DiscArray] = Field(min_length=1)
    process: Process = Process()

    _path: Path | None = PrivateAttr(None)
    _source_text: str = PrivateAttr("")
    _yaml: Any = PrivateAttr(None)  # YamlSource, to locate problems found after loading

    @property
    def path(self) -> Path | None:
        """The file this design was loaded from (relative file references resolve against it)."""
        return self._path

    @property
    def source_text(self) -> str:
        """The YAML text as loaded (hashed into plans)."""
        return self._source_text

    def problem(self, path: tuple, message: str):
        """A Problem located at `path` in this design's file (file-level when not loaded from YAML)."""
        from fabplan.design.yamlsource import format_path
        from fabplan.errors import Problem

        if self._yaml is not None:
            return self._yaml.problem(path, message)
        return Problem(message, format_path(path), str(self._path) if self._path else None)

    def __repr__(self) -> str:
        """One line, not the whole model tree (print(design.model_dump()) for that).

        >>> from fabplan.design import load_design
        >>> from fabplan.shipped import shipped_design
        >>> load_design(shipped_design("hex_sweep"))
        Design('hex-sweep' from hex_sweep.yaml: 1 array(s) [H], CsPbBr3 100 nm film, lg01 beam, F_th(1) 40 mJ/cm^2, step mode)
        """
        where = f" from {self._path.name}" if self._path else ""
        ids = ", ".join(a.id for a in self.arrays[:4]) + (", ..." if len(self.arrays) > 4 else "")
        film = self.sample.film
        return (f"Design({self.name!r}{where}: {len(self.arrays)} array(s) [{ids}], {film.material} "
                f"{film.thickness:g} nm film, {self.beam.profile.model} beam, F_th(1) "
                f"{self.beam.threshold_fluence:g} mJ/cm^2, {self.process.mode} mode)")

    __str__ = __repr__

    def _repr_html_(self) -> str:
        from fabplan._display import html_summary

        b, laser = self.beam, self.laser
        facts = [("file", str(self._path or "-")), ("description", self.description or "-"),
                 ("film", f"{self.sample.film.material} {self.sample.film.thickness:g} nm"),
                 ("laser", f"{laser.wavelength:g} nm, {laser.pulse_duration:g} fs, {laser.repetition_rate:g} Hz, "
                           f"max {laser.max_pulse_energy:g} uJ"),
                 ("beam", f"{b.profile.model}; F_th(1) {b.threshold_fluence:g} mJ/cm^2, S {b.incubation_exponent:g}, "
                          f"damage {b.damage_fluence:g} mJ/cm^2; fluences: {b.fluence_definition}"),
                 ("arrays", ", ".join(a.id for a in self.arrays)), ("mode", self.process.mode)]
        return html_summary(f"Design {self.name!r}", facts)

    def resolve(self, relative: str) -> Path:
        """A path named in the design, relative to the design file's folder."""
        p = Path(relative)
        return p if p.is_absolute() or self._path is None else self._path.parent / p
