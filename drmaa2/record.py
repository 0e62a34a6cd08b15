"""The base of every DRMAA2 data type: checked assignment, building from keywords or a
mapping, conversion to and from JSON-compatible data, copying.
"""

from __future__ import annotations

import difflib
import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, fields
from types import MethodType
from typing import Any, ClassVar, TypeVar, cast, overload

from drmaa2.compat import binding_keywords
from drmaa2.errors import InvalidArgumentException
from drmaa2.fields import _Check, _Encode, _Mismatch

_R = TypeVar("_R", bound="_Record")

# Longest repr of an offending value shown in a message: a huge environment stays readable.
_MAX_SHOWN = 200


def _show(value: object) -> str:
    text = repr(value)
    if len(text) > _MAX_SHOWN:
        return text[: _MAX_SHOWN - 3] + "..."
    return text


def _validated(cls: type[_R]) -> type[_R]:
    """Collect the checks and encoders of a record dataclass from its fields' metadata."""
    specs = fields(cls)
    cls._checks = {spec.name: spec.metadata["kind"].check for spec in specs}
    cls._encoders = tuple((spec.name, spec.metadata["kind"].encode) for spec in specs)
    cls._abouts = {spec.name: spec.metadata["kind"].about for spec in specs}
    # Fields with a default factory (implementation_specific: {}) hold a fresh default when
    # set to None: they read as an empty dict, never None.
    cls._unset_values = {
        spec.name: spec.default_factory for spec in specs if spec.default_factory is not MISSING
    }
    # Required: never None (no default, or a default that is not None).
    cls._required = frozenset(
        spec.name
        for spec in specs
        if spec.default is not None and spec.name not in cls._unset_values
    )
    cls._defaults = {
        spec.name: spec.default for spec in specs if spec.default not in (MISSING, None)
    }
    # What each field holds until it is set (see _new_from_dict): a fresh value of its
    # factory, or its default (immutable values, checked once here), or None.
    cls._initial = tuple(
        (
            spec.name,
            cls._unset_values.get(spec.name),
            cls._checks[spec.name](cls._defaults[spec.name])
            if spec.name in cls._defaults
            else None,
        )
        for spec in specs
    )
    # The fields a mapping must give (required, with no default).
    cls._must_give = tuple(
        name for name in cls._checks if name in cls._required and name not in cls._defaults
    )
    for alias, name in cls._aliases.items():
        setattr(cls, alias, property(operator.attrgetter(name), doc=f"Another name of {name}."))
    return cls


@binding_keywords(d="data")
def _new_from_dict(cls: type[_R], data: Mapping[str, Any]) -> _R:
    """Build one from a mapping of field names to values (native or as given by ``to_dict``).

    Called on an instance instead (``x.from_dict(mapping)``, as in Grid Engine's binding), it
    sets the mapping's fields on that instance and returns None.
    """
    if not isinstance(data, Mapping):
        raise InvalidArgumentException(
            f"{cls.__name__}.from_dict: expected a mapping, got {_show(data)}"
        )
    data = cls._canonical(data)
    cls._check_keys(data)
    if cls.__post_init__ is not _Record.__post_init__:  # a type with more to do
        return cls(**data)
    # What ``cls(**data)`` makes, without its call and its check of every default: run_job
    # of a mapping builds one per job. The given values are checked as by assignment.
    made = object.__new__(cls)
    for name, fresh, value in cls._initial:
        object.__setattr__(made, name, value if fresh is None else fresh())
    for name, value in data.items():
        made.__setattr__(name, value)
    return made


@binding_keywords(d="data")
def _set_from_dict(self: _Record, data: Mapping[str, Any] | None) -> None:
    """Set the fields the mapping names on this object, as Grid Engine's binding's
    ``from_dict`` does; the other fields keep their values, and None or an empty mapping
    changes nothing.

    Each value is checked as by assignment; an unknown key or a wrong value raises
    InvalidArgumentException and leaves the object as it was. Called on the class
    (``JobTemplate.from_dict(mapping)``), it builds a new object instead.
    """
    if data is None:
        return
    if not isinstance(data, Mapping):
        raise InvalidArgumentException(
            f"{type(self).__name__}.from_dict: expected a mapping, got {_show(data)}"
        )
    data = self._canonical(data)
    self._check_names(data)
    updated = self.copy()
    for name, value in data.items():
        setattr(updated, name, value)
    for name in data:
        object.__setattr__(self, name, getattr(updated, name))


class _FromDict:
    """``from_dict`` of the data types: on the class it builds a new object
    (``JobTemplate.from_dict(mapping)``); on an instance it sets the mapping's fields on it
    (``template.from_dict(mapping)``, as in Grid Engine's binding)."""

    @overload
    def __get__(self, instance: None, owner: type[_R]) -> Callable[[Mapping[str, Any]], _R]: ...

    @overload
    def __get__(
        self, instance: _R, owner: type[_R] | None = None
    ) -> Callable[[Mapping[str, Any] | None], None]: ...

    def __get__(self, instance: Any, owner: Any = None) -> Callable[..., Any]:
        if instance is None:
            return cast(Callable[..., Any], MethodType(_new_from_dict, owner))
        return cast(Callable[..., Any], MethodType(_set_from_dict, instance))


class _Record:
    """Validation, conversion and copying shared by every DRMAA2 data type."""

    __slots__ = ()

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    _checks: ClassVar[dict[str, _Check]]
    _encoders: ClassVar[tuple[tuple[str, _Encode | None], ...]]
    _abouts: ClassVar[dict[str, str]]
    _required: ClassVar[frozenset[str]]
    _defaults: ClassVar[dict[str, Any]]
    _unset_values: ClassVar[dict[str, Callable[[], Any]]]
    _initial: ClassVar[tuple[tuple[str, Callable[[], Any] | None, Any], ...]]
    _must_give: ClassVar[tuple[str, ...]]
    #: Other names of fields (Grid Engine's binding's), for attributes and mapping keys: they
    #: read and set the field; ``to_dict`` gives the field's own name.
    _aliases: ClassVar[dict[str, str]] = {}

    from_dict = _FromDict()

    def __setattr__(self, name: str, value: Any) -> None:
        name = self._aliases.get(name, name)
        if value is None:
            unset = self._unset_values.get(name)
            if unset is not None:
                value = unset()
            elif name in self._required:
                raise InvalidArgumentException(
                    f"{type(self).__name__}.{name}: a value is required, got None"
                )
        else:
            check = self._checks.get(name)
            if check is None:
                raise AttributeError(f"{type(self).__name__} has no field {name!r}")
            try:
                value = check(value)
            except _Mismatch as exc:
                shown = exc.offending[0] if exc.offending else value
                raise InvalidArgumentException(
                    f"{type(self).__name__}.{name}: expected {exc.expected}, got {_show(shown)}"
                ) from None
        object.__setattr__(self, name, value)

    def __post_init__(self, data: object) -> None:
        # The mapping given as first positional argument (or by the binding's keyword name);
        # the keywords' values are already set.
        if data is not None:
            self._fill({name: getattr(self, name) for name in self._checks}, data)

    def _fill(self, given: Mapping[str, Any], data: object) -> None:
        """Set the fields from keyword values (None: not given) and, if not None, a mapping of
        more values; a field given neither way gets its default."""
        values = {name: value for name, value in given.items() if not self._unset(name, value)}
        if data is not None:
            if not isinstance(data, Mapping):
                raise InvalidArgumentException(
                    f"{type(self).__name__}: expected a mapping of field names to values, "
                    f"got {_show(data)}"
                )
            data = self._canonical(data)
            self._check_keys(data, given)
            for name, value in data.items():
                if name in values:
                    raise InvalidArgumentException(
                        f"{type(self).__name__}: {name!r} is given both in the mapping and "
                        "as a keyword"
                    )
                values[name] = value
        for name in self._checks:
            setattr(self, name, values.get(name, self._defaults.get(name)))

    def _unset(self, name: str, value: Any) -> bool:
        """Whether ``value`` leaves field ``name`` unset: None, or an empty default ({})."""
        return value is None or (name in self._unset_values and value == self._unset_values[name]())

    @classmethod
    def _canonical(cls, data: Mapping[Any, Any]) -> Mapping[Any, Any]:
        """``data`` with the fields' other names replaced by their own (both given: an
        InvalidArgumentException naming them)."""
        aliases = cls._aliases
        if not any(key in aliases for key in data):
            return data
        for alias, name in aliases.items():
            if alias in data and name in data:
                raise InvalidArgumentException(
                    f"{cls.__name__}: {alias!r} is another name of {name!r}: give one of them"
                )
        return {aliases.get(key, key): value for key, value in data.items()}

    @classmethod
    def _check_keys(cls, data: Mapping[Any, Any], given: Mapping[str, Any] | None = None) -> None:
        cls._check_names(data)
        for name in cls._must_give:
            if name not in data and (given or {}).get(name) is None:
                raise InvalidArgumentException(f"{cls.__name__}: missing key {name!r}")

    @classmethod
    def _check_names(cls, data: Mapping[Any, Any]) -> None:
        for key in data:
            if key not in cls._checks:
                hint = ""
                if isinstance(key, str):
                    close = difflib.get_close_matches(key, [*cls._checks, *cls._aliases], n=1)
                    if close:
                        hint = f" (did you mean {close[0]!r}?)"
                raise InvalidArgumentException(f"{cls.__name__}: unknown key {_show(key)}{hint}")

    @classmethod
    @binding_keywords(d="data")
    def create_from_dict(cls: type[_R], data: Mapping[str, Any] | _R | None) -> _R:
        """Grid Engine's name: ``data`` itself if it is already of this type, else a new one
        built from the mapping, as ``from_dict`` builds it (None: an empty mapping)."""
        if isinstance(data, cls):
            return data
        return cls.from_dict({} if data is None else cast(Mapping[str, Any], data))

    @classmethod
    def _describe(cls, name: str) -> str | None:
        """What the standard attribute ``name`` holds; None if the type has no such field."""
        about = cls._abouts.get(cls._aliases.get(name, name))
        return None if about is None else f"{cls.__name__}.{name}: {about}"

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-compatible data (None for unset fields, ``{}`` for an unset
        ``implementation_specific``)."""
        data: dict[str, Any] = {}
        for name, encode in self._encoders:
            value = getattr(self, name)
            if value is not None and encode is not None:
                value = encode(value)
            data[name] = value
        return data

    @classmethod
    def from_json(cls: type[_R], text: str | bytes) -> _R:
        """Build from a JSON object, as written by ``to_json``."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentException(
                f"{cls.__name__}.from_json: not a JSON document ({exc}): {_show(text)}"
            ) from None
        return cls.from_dict(data)

    def to_json(self) -> str:
        """The ``to_dict()`` data as a JSON text."""
        return json.dumps(self.to_dict())

    @classmethod
    def coerce(cls: type[_R], value: object) -> _R:
        """Return ``value`` if it is already this type, or build one from a mapping."""
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise InvalidArgumentException(
            f"expected a {cls.__name__} or a mapping, got {_show(value)}"
        )

    def copy(self: _R) -> _R:
        """A copy with its own lists, dicts and nested values: changing one leaves the other."""
        duplicate = object.__new__(type(self))
        for name, _ in self._encoders:
            value = getattr(self, name)
            if isinstance(value, (list, dict, _Record)):
                value = value.copy()
            # The values were checked when set on self; no need to check them again.
            object.__setattr__(duplicate, name, value)
        return duplicate
