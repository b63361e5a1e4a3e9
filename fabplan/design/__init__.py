"""Design files: YAML -> validated Design -> DiscTable, with located errors."""

from fabplan.design.expand import expand
from fabplan.design.loader import load_design, loads_design
from fabplan.design.models import Design

__all__ = ["Design", "expand", "load_design", "loads_design"]
