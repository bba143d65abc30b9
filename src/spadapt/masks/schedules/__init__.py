"""The `SCHEDULES` registry: when masks are chosen. A new schedule is one file plus one line."""

from .base import Schedule, ScheduleError, cubic_density
from .gradual import GradualSchedule
from .init import InitSchedule
from .learned import LearnedSchedule
from .lottery import LotterySchedule
from .movement import MovementSchedule
from .regrow import RegrowSchedule

SCHEDULES: dict[str, type[Schedule]] = {
    "init": InitSchedule,
    "gradual": GradualSchedule,
    "learned": LearnedSchedule,
    "movement": MovementSchedule,
    "regrow": RegrowSchedule,
    "lottery": LotterySchedule,
}

__all__ = ["SCHEDULES", "Schedule", "ScheduleError", "cubic_density"]
