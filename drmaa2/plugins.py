"""Backend discovery: pluggy plugins found through the entry-point group ``drmaa2``.

Entry points are loaded once, on first use, and the result is cached. A plugin that fails to
import or whose hook raises is skipped with a :class:`RuntimeWarning` naming it and its error;
the other backends keep working. Two plugins claiming one backend name are rejected with an
error naming both.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
import warnings
from typing import Any

import pluggy

from drmaa2.backend import Backend, BackendSpec
from drmaa2.errors import InvalidArgumentException

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "BackendRegistry",
    "hookimpl",
    "hookspec",
    "registry",
]

#: The pluggy project name, and the entry-point group backends are registered under.
PROJECT_NAME = "drmaa2"
ENTRY_POINT_GROUP = "drmaa2"
#: The environment variable naming the default backend.
BACKEND_ENV = "DRMAA2_BACKEND"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin's implementation of :func:`drmaa2_backends`.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class _HookSpecs:
    @hookspec
    def drmaa2_backends(self) -> list[BackendSpec]:  # type: ignore[empty-body]
        """Return the backends this plugin offers.

        A complete minimal plugin, ``my_backend/plugin.py``::

            import drmaa2
            from my_backend.backend import MyBackend  # implements drmaa2.backend.Backend

            @drmaa2.hookimpl
            def drmaa2_backends() -> list[drmaa2.BackendSpec]:
                return [drmaa2.BackendSpec(name="mine", factory=MyBackend,
                                           description="jobs on my scheduler")]

        registered in the plugin's ``pyproject.toml``::

            [project.entry-points.drmaa2]
            mine = "my_backend.plugin"

        after which ``drmaa2.backends()`` lists ``"mine"`` and
        ``drmaa2.create_job_session(backend="mine")`` uses it.
        """


drmaa2_backends = _HookSpecs.drmaa2_backends


class _Claim:
    """A backend name claimed by one plugin."""

    def __init__(self, spec: BackendSpec, plugin: str) -> None:
        self.spec = spec
        self.plugin = plugin


class BackendRegistry:
    """Owns plugin discovery and the lookup of backends by name."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self._group = group
        self._lock = threading.RLock()
        self._claims: dict[str, _Claim] | None = None
        self._conflict: InvalidArgumentException | None = None
        self._instances: dict[str, Backend] = {}

    def reset(self) -> None:
        """Forget what was discovered, so the next lookup reads the entry points again."""
        with self._lock:
            self._claims = None
            self._conflict = None
            self._instances.clear()

    def _discover(self) -> dict[str, _Claim]:
        with self._lock:
            if self._claims is None:
                self._claims, self._conflict = self._load_entry_points()
            if self._conflict is not None:
                raise self._conflict
            return self._claims

    def _load_entry_points(self) -> tuple[dict[str, _Claim], InvalidArgumentException | None]:
        manager = pluggy.PluginManager(PROJECT_NAME)
        manager.add_hookspecs(_HookSpecs)
        for entry_point in _entry_points(self._group):
            label = _describe(entry_point)
            try:
                plugin = entry_point.load()
                manager.register(plugin, name=label)
            except Exception as error:  # a broken plugin must not break the others
                _warn_skipped(label, error)
        claims: dict[str, _Claim] = {}
        conflicts: list[str] = []
        for impl in reversed(manager.hook.drmaa2_backends.get_hookimpls()):
            label = manager.get_name(impl.plugin) or repr(impl.plugin)
            try:
                returned: object = impl.function()
                if not isinstance(returned, (list, tuple)):
                    raise TypeError(f"drmaa2_backends returned {returned!r}, not a list")
                specs: list[object] = list(returned)
                for spec in specs:
                    if not isinstance(spec, BackendSpec):
                        raise TypeError(f"drmaa2_backends returned {spec!r}, not a BackendSpec")
            except Exception as error:
                _warn_skipped(label, error)
                continue
            for spec in specs:
                assert isinstance(spec, BackendSpec)
                earlier = claims.get(spec.name)
                if earlier is not None and earlier.plugin != label:
                    conflicts.append(
                        f"backend name {spec.name!r} is claimed by two plugins: "
                        f"{earlier.plugin} and {label}; uninstall one of them"
                    )
                else:
                    claims[spec.name] = _Claim(spec, label)
        conflict = InvalidArgumentException("; ".join(conflicts)) if conflicts else None
        return claims, conflict

    def names(self) -> list[str]:
        """The installed backend names, sorted."""
        return sorted(self._discover())

    def spec(self, name: str) -> BackendSpec:
        """The record of the backend called ``name``."""
        claims = self._discover()
        claim = claims.get(name)
        if claim is None:
            raise InvalidArgumentException(
                f"unknown DRMAA2 backend {name!r}; installed backends: {_listing(claims)}"
            )
        return claim.spec

    def choose(self, name: str | None) -> str:
        """Resolve the backend to use: ``name``, then $DRMAA2_BACKEND, then the only one,
        then the one installed backend that declares itself the default."""
        if name is None:
            name = os.environ.get(BACKEND_ENV) or None
        if name is not None:
            self.spec(name)
            return name
        claims = self._discover()
        if len(claims) == 1:
            return next(iter(claims))
        if not claims:
            raise InvalidArgumentException(
                "no DRMAA2 backend is installed (none registered in the 'drmaa2' entry-point "
                "group); install one, for example drmaa2-ostracker"
            )
        defaults = [claimed for claimed, claim in claims.items() if claim.spec.default]
        if len(defaults) == 1:
            return defaults[0]
        raise InvalidArgumentException(
            f"several DRMAA2 backends are installed ({_listing(claims)}); choose one with "
            f"backend=... or ${BACKEND_ENV}"
        )

    def get(self, name: str | None) -> tuple[str, Backend]:
        """The backend object for ``name`` (see :meth:`choose`), built once and cached."""
        chosen = self.choose(name)
        with self._lock:
            instance = self._instances.get(chosen)
            if instance is None:
                instance = self.spec(chosen).factory()
                self._instances[chosen] = instance
            return chosen, instance


def _entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    found = importlib.metadata.entry_points(group=group)
    # One distribution can be visible twice on sys.path (e.g. an editable install next to a
    # regular one); the same entry point seen twice is not a conflict.
    unique: dict[tuple[str, str], importlib.metadata.EntryPoint] = {}
    for entry_point in found:
        unique.setdefault((entry_point.name, entry_point.value), entry_point)
    return list(unique.values())


def _describe(entry_point: importlib.metadata.EntryPoint) -> str:
    dist: Any = getattr(entry_point, "dist", None)
    where = f" from {dist.name} {dist.version}" if dist is not None else ""
    return f"{entry_point.name} ({entry_point.value}{where})"


def _warn_skipped(label: str, error: BaseException) -> None:
    warnings.warn(
        f"drmaa2: skipping backend plugin {label}: {type(error).__name__}: {error}",
        RuntimeWarning,
        stacklevel=4,
    )


def _listing(claims: dict[str, _Claim]) -> str:
    return ", ".join(repr(name) for name in sorted(claims)) or "none"


#: The process-wide registry used by the session functions.
registry = BackendRegistry()
