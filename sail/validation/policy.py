"""The validation policy: the windows ratings, rating times, release years and ages must fall in,
the longest title, the least pixel variation of an image, and what audio may be (least level, most
clipping, longest duration).

The packaged default is `policy.yaml` next to this module, one comment per key. Another YAML (or
JSON) file sets any of its keys, the rest keeping the packaged values: `load_policy(path)` reads
`path`, else the file named by the environment variable `SAIL_VALIDATION_POLICY`, else only the
packaged default. Unknown keys, wrong types and inverted windows raise `ValueError` naming the key.
Bounds relative to the moment of validation ("now + tolerance", "current year + N") are fixed by
`ValidationPolicy.resolve(now)`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import yaml

POLICY_ENV = "SAIL_VALIDATION_POLICY"
PACKAGED_POLICY = Path(__file__).with_name("policy.yaml")
RANGE_KEYS = ("rating_range", "age_range")


@dataclass(frozen=True)
class Windows:
    """A policy resolved at `now`: inclusive (low, high) bounds per checked column."""

    now: datetime
    timestamp: tuple[int, int]  # Unix seconds
    rating: tuple[int, int]
    year: tuple[int, int]
    age: tuple[int, int]
    title_length: tuple[int, int]  # characters
    min_image_std: float  # pixel standard deviation, 0-255 scale
    min_audio_rms: float  # RMS level, full scale 1
    max_clipped_fraction: float  # of samples at full scale
    max_audio_seconds: float

    def to_dict(self) -> dict:
        """A JSON-serialisable copy."""
        return asdict(self) | {"now": self.now.isoformat()}


@dataclass(frozen=True)
class ValidationPolicy:
    """The configured windows; `policy.yaml` says what each key means."""

    earliest_interaction: date
    future_tolerance_hours: float
    rating_range: tuple[int, int]
    earliest_release_year: int
    release_years_ahead: int
    age_range: tuple[int, int]
    max_title_chars: int
    min_image_std: float
    min_audio_rms: float
    max_clipped_fraction: float
    max_audio_seconds: float

    def __post_init__(self):
        floor = self.earliest_interaction
        _require(
            isinstance(floor, date) and not isinstance(floor, datetime),
            "earliest_interaction",
            "a date (YYYY-MM-DD)",
            floor,
        )
        hours = self.future_tolerance_hours
        _require(_is_number(hours) and hours >= 0, "future_tolerance_hours", "hours >= 0", hours)
        _require(
            _is_int(self.earliest_release_year),
            "earliest_release_year",
            "an integer year",
            self.earliest_release_year,
        )
        ahead = self.release_years_ahead
        _require(_is_int(ahead) and ahead >= 0, "release_years_ahead", "an integer >= 0", ahead)
        for key in RANGE_KEYS:
            window = getattr(self, key)
            _require(_is_int_pair(window), key, "two integers [low, high]", window)
            _require(window[0] <= window[1], key, "[low, high], not inverted", window)
        longest = self.max_title_chars
        _require(_is_int(longest) and longest >= 1, "max_title_chars", "an integer >= 1", longest)
        std = self.min_image_std
        _require(_is_number(std) and std >= 0, "min_image_std", "a number >= 0", std)
        rms = self.min_audio_rms
        _require(_is_number(rms) and 0 <= rms < 1, "min_audio_rms", "a number in [0, 1)", rms)
        clipped = self.max_clipped_fraction
        _require(
            _is_number(clipped) and 0 <= clipped <= 1,
            "max_clipped_fraction",
            "a number in [0, 1]",
            clipped,
        )
        seconds = self.max_audio_seconds
        _require(_is_number(seconds) and seconds > 0, "max_audio_seconds", "seconds > 0", seconds)

    def resolve(self, now: datetime) -> Windows:
        """The windows at `now` (timezone-aware); raises `ValueError` if one comes out inverted."""
        if now.tzinfo is None:
            raise ValueError(f"now must be timezone-aware, got {now!r}")
        floor = datetime.combine(self.earliest_interaction, time(), UTC)
        latest = now + timedelta(hours=self.future_tolerance_hours)
        timestamp = (int(floor.timestamp()), int(latest.timestamp()))
        year = (self.earliest_release_year, now.astimezone(UTC).year + self.release_years_ahead)
        _require(
            timestamp[0] <= timestamp[1],
            "earliest_interaction",
            f"no later than now + future_tolerance_hours ({latest.isoformat()})",
            self.earliest_interaction,
        )
        _require(
            year[0] <= year[1],
            "earliest_release_year",
            f"no later than the current year + release_years_ahead ({year[1]})",
            year[0],
        )
        return Windows(
            now,
            timestamp,
            self.rating_range,
            year,
            self.age_range,
            (1, self.max_title_chars),
            self.min_image_std,
            self.min_audio_rms,
            self.max_clipped_fraction,
            self.max_audio_seconds,
        )

    def to_dict(self) -> dict:
        """A JSON-serialisable copy, as a policy file would write it."""
        return asdict(self) | {
            "earliest_interaction": self.earliest_interaction.isoformat(),
            **{key: list(getattr(self, key)) for key in RANGE_KEYS},
        }


def load_policy(path: Path | str | None = None) -> ValidationPolicy:
    """The packaged policy, overridden by `path`, else by the file `$SAIL_VALIDATION_POLICY`."""
    override = path if path is not None else os.environ.get(POLICY_ENV) or None
    source = Path(override) if override is not None else PACKAGED_POLICY
    values = _read(PACKAGED_POLICY)
    if source != PACKAGED_POLICY:
        values |= _read(source)
    try:
        return ValidationPolicy(**{key: _parse(key, value) for key, value in values.items()})
    except ValueError as error:
        raise ValueError(f"validation policy {source}: {error}") from None


def _read(path: Path) -> dict:
    """The mapping a policy file holds; unknown keys raise."""
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, ValueError) as error:  # PyYAML: ValueError for a date like 1995-13-01
        raise ValueError(f"validation policy {path} is not valid YAML or JSON: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"validation policy {path}: expected a mapping of keys to values")
    known = [field.name for field in fields(ValidationPolicy)]
    for key in values:
        if key not in known:
            raise ValueError(
                f"validation policy {path}: unknown key {key!r} (known: {', '.join(known)})"
            )
    return values


def _parse(key: str, value: object) -> object:
    """A file's value as the field holds it: ISO date strings to dates, lists to tuples."""
    if key == "earliest_interaction" and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{key} must be a date (YYYY-MM-DD), got {value!r}") from None
    if key in RANGE_KEYS and isinstance(value, list):
        return tuple(value)
    return value


def _require(condition: bool, key: str, expected: str, value: object) -> None:
    if not condition:
        raise ValueError(f"{key} must be {expected}, got {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)


def _is_int_pair(value: object) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(map(_is_int, value))
