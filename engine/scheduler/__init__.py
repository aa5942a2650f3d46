"""Time: the working-day calendar (calendar.py, days.py); timer jobs and SLAs build on it."""
from engine.scheduler.calendar import Coverage, DurationError, WorkCalendar
from engine.scheduler.days import CalendarDays, DayView, calendar_for

__all__ = ["CalendarDays", "Coverage", "DayView", "DurationError", "WorkCalendar", "calendar_for"]
