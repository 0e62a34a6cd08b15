"""Names of Grid Engine's ``uge-drmaa2`` binding beyond the core API: the implementation-specific
key accessors of the data types, :func:`describe_attribute`, and :func:`binding_keywords`
(the binding's keyword names of the methods' arguments).

A backend declares its implementation-specific keys in its
:class:`~drmaa2.backend.BackendSpec` (``extension_keys``); this module only reads them, so the
framework knows no backend's keys. Every call takes ``backend`` (None: the default backend, as
for the session functions).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from drmaa2.errors import InvalidArgumentException

__all__ = ["ImplementationSpecific", "binding_keywords", "describe_attribute"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def binding_keywords(**names: str) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]:
    """Let a method also take its arguments by the keyword names of Grid Engine's binding:
    ``names`` maps the binding's name to this API's (``job_list="jobs"``). The binding's names
    are keyword-only, shown in the method's signature (default None: not given); giving
    both names of one argument raises TypeError, as Python does for an argument given twice.
    Type checkers see only this API's names."""

    def decorate(method: Callable[_P, _T]) -> Callable[_P, _T]:
        signature = inspect.signature(method)
        missing = [ours for ours in names.values() if ours not in signature.parameters]
        if missing:
            raise TypeError(f"{method.__qualname__} has no parameter {missing[0]!r}")

        @functools.wraps(method)
        def call(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            if kwargs:
                for theirs, ours in names.items():
                    if theirs in kwargs:
                        value = kwargs.pop(theirs)
                        if ours not in kwargs:
                            kwargs[ours] = value
                        elif value is not None:  # None, as the signature shows it: not given
                            raise TypeError(
                                f"{method.__qualname__}() got both {ours!r} and {theirs!r} "
                                f"(Grid Engine's binding's name of {ours!r})"
                            )
            return method(*args, **kwargs)

        others = [
            inspect.Parameter(theirs, inspect.Parameter.KEYWORD_ONLY, default=None)
            for theirs in names
        ]
        call.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), *others]
        )
        return call

    return decorate


def _declared(type_name: str, backend: str | None) -> tuple[str, dict[str, str]]:
    """The chosen backend's name and its keys (with their descriptions) for one data type."""
    # Imported when first needed: plugins imports backend, which imports types and this module.
    from drmaa2.plugins import registry

    chosen = registry.choose(backend)
    keys = registry.spec(chosen).extension_keys
    return chosen, {key.name: key.description for key in keys if key.data_type == type_name}


def _listing(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names) or "none"


class ImplementationSpecific:
    """The ``implementation_specific`` accessors of JobTemplate, JobInfo, MachineInfo and
    QueueInfo, named as in Grid Engine's binding."""

    __slots__ = ()

    implementation_specific: dict[str, str] | None

    @classmethod
    def get_implementation_specific_keys(cls, *, backend: str | None = None) -> list[str]:
        """The implementation-specific keys the backend may set or read on this type (for the
        ``os`` backend's JobInfo: ``pid``, ``ru_maxrss``, … of ``drmaa2_ostracker.extension``)."""
        return list(_declared(cls.__name__, backend)[1])

    def _known_key(self, key: object, backend: str | None) -> str:
        type_name = type(self).__name__
        chosen, declared = _declared(type_name, backend)
        present = self.implementation_specific or {}
        if isinstance(key, str) and (key in declared or key in present):
            return key
        known = list(declared) + [name for name in present if name not in declared]
        raise InvalidArgumentException(
            f"{type_name}: unknown implementation-specific key {key!r}; the keys of backend "
            f"{chosen!r} are: {_listing(known)}"
        )

    def get_impl_spec_key_value(self, key: str, *, backend: str | None = None) -> str | None:
        """The value of an implementation-specific key, None while it is not set.

        InvalidArgumentException, naming the known keys, for a key the backend does not know.
        """
        checked = self._known_key(key, backend)
        return (self.implementation_specific or {}).get(checked)

    def set_impl_spec_key_value(self, key: str, value: str, *, backend: str | None = None) -> None:
        """Set an implementation-specific key (a str value) in ``implementation_specific``.

        InvalidArgumentException, naming the known keys, for a key the backend does not know.
        """
        checked = self._known_key(key, backend)
        if not isinstance(value, str):
            raise InvalidArgumentException(
                f"{type(self).__name__}: implementation-specific key {checked!r}: expected a "
                f"str value, got {value!r}"
            )
        # Through the record's checked __setattr__ (the field is a slot of the subclass).
        self.__setattr__(
            "implementation_specific", {**(self.implementation_specific or {}), checked: value}
        )


def describe_attribute(instance: Any, name: str, *, backend: str | None = None) -> str:
    """A human-readable description of attribute ``name`` of a DRMAA2 data type instance (or
    class): a standard field, or an implementation-specific key of the backend.

    InvalidArgumentException for anything else, naming the known attributes and keys.
    """
    from drmaa2.types import _Record  # types imports this module

    kind = instance if isinstance(instance, type) else type(instance)
    if not issubclass(kind, _Record):
        raise InvalidArgumentException(
            f"describe_attribute: expected a DRMAA2 data type instance (JobTemplate, JobInfo, "
            f"…), got {instance!r}"
        )
    described = kind._describe(name) if isinstance(name, str) else None
    if described is not None:
        return described
    chosen, declared = _declared(kind.__name__, backend)
    if isinstance(name, str) and name in declared:
        return (
            f"{kind.__name__} implementation-specific key {name!r} of backend {chosen!r}: "
            f"{declared[name]}"
        )
    raise InvalidArgumentException(
        f"{kind.__name__} has no attribute {name!r}; its attributes are: "
        f"{_listing(kind._checks)}; the implementation-specific keys of backend {chosen!r} "
        f"are: {_listing(declared)}"
    )
