"""The `SCHEDULES` registry: when masks are chosen. A new schedule is one file plus one line."""

from .base import Schedule, cubic_density
from .gradual import GradualSchedule
from .init import InitSchedule
from .learned import LearnedSchedule
from .movement import MovementSchedule
from .regrow import RegrowError, RegrowSchedule

SCHEDULES: dict[str, type[Schedule]] = {
    "init": InitSchedule,
    "gradual": GradualSchedule,
    "learned": LearnedSchedule,
    "movement": MovementSchedule,
    "regrow": RegrowSchedule,
}

__all__ = ["SCHEDULES", "RegrowError", "Schedule", "cubic_density"]
