"""Backend discovery through real entry-point metadata.

Each test writes importable plugin modules and ``<name>-1.0.dist-info`` directories into a
temporary directory, then runs a fresh Python with that directory first on PYTHONPATH, so that
``importlib.metadata`` sees those distributions next to the installed ``drmaa2-ostracker``.
Nothing is patched: the subprocess discovers plugins exactly as a user's program would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

# Shared by every subprocess script: run a call and describe its outcome as JSON-able data,
# and record every warning raised during the script.
_PRELUDE = """
import json, warnings
warnings.simplefilter("always")
_recorder = warnings.catch_warnings(record=True)
_caught = _recorder.__enter__()
warnings.simplefilter("always")
import drmaa2

def outcome(call):
    try:
        return {"ok": call()}
    except Exception as error:
        return {
            "error": type(error).__name__,
            "message": str(error),
            "invalid_argument": isinstance(error, drmaa2.InvalidArgumentException),
            "value_error": isinstance(error, ValueError),
        }

def warnings_seen():
    return [
        {"category": w.category.__name__, "message": str(w.message)} for w in _caught
    ]

def report(**values):
    print("@@RESULT@@" + json.dumps(values))
"""

# A complete (minimal) backend, for plugins that are chosen and used by the tests.
_FAKE_BACKEND = """
import drmaa2

class FakeBackend:
    def __init__(self, label):
        self.label = label

    def drms_name(self):
        return "fake drms " + self.label

    def drms_version(self):
        return drmaa2.Version(major="9", minor="1")

    def supports(self, capability):
        return capability == drmaa2.Capability.JT_EMAIL

    def job_session_names(self, contact):
        return ["fake-session-of-" + self.label]
"""


def _good_plugin(backend_name: str, label: str, default: bool = False) -> str:
    return _FAKE_BACKEND + textwrap.dedent(
        f"""
        @drmaa2.hookimpl
        def drmaa2_backends():
            return [
                drmaa2.BackendSpec(
                    name={backend_name!r},
                    factory=lambda: FakeBackend({label!r}),
                    description="a fake backend for tests",
                    default={default!r},
                )
            ]
        """
    )


#: The backends this distribution installs (entry points in pyproject.toml).
BUILTIN = ("os", "slurm")


def installed(*extra: str) -> list[str]:
    """What drmaa2.backends() lists with the test's extra plugins installed."""
    return sorted([*BUILTIN, *extra])


class PluginDir:
    """A directory of plugin modules and dist-info metadata, put on a subprocess's path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "site"
        self.path.mkdir()
        self.state_dir = root / "state"
        self.files = root / "files"
        self.files.mkdir()

    def add(self, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
        """Add the distribution ``dist`` 1.0 with ``[drmaa2]`` entry points and its modules."""
        for module, source in modules.items():
            (self.path / f"{module}.py").write_text(source)
        info = self.path / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[drmaa2]\n{lines}")

    def add_plugin(self, dist: str, entry_point: str, module: str, source: str) -> None:
        self.add(dist, {entry_point: module}, {module: source})

    def run(self, script: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Run ``script`` (after the prelude) in a fresh Python; return what it reported."""
        child_env = dict(os.environ)
        child_env.pop("DRMAA2_BACKEND", None)
        child_env.pop("PYTHONWARNINGS", None)
        child_env["DRMAA2_OS_STATE_DIR"] = str(self.state_dir)
        child_env["TEST_FILES_DIR"] = str(self.files)
        existing = child_env.get("PYTHONPATH")
        child_env["PYTHONPATH"] = (
            str(self.path) if not existing else os.pathsep.join([str(self.path), existing])
        )
        child_env.update(env or {})
        completed = subprocess.run(
            [sys.executable, "-c", _PRELUDE + textwrap.dedent(script)],
            env=child_env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, (
            f"subprocess failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
        )
        results = [
            line[len("@@RESULT@@") :]
            for line in completed.stdout.splitlines()
            if line.startswith("@@RESULT@@")
        ]
        assert len(results) == 1, f"no result reported:\n{completed.stdout}\n{completed.stderr}"
        data: dict[str, Any] = json.loads(results[0])
        return data


@pytest.fixture
def plugins(tmp_path: Path) -> PluginDir:
    return PluginDir(tmp_path)


def _drmaa2_warnings(seen: list[dict[str, str]]) -> list[dict[str, str]]:
    return [w for w in seen if "drmaa2" in w["message"]]


# -- baseline ----------------------------------------------------------------------------------


def test_only_the_os_backend_is_installed(plugins: PluginDir) -> None:
    result = plugins.run(
        """
        report(
            backends=drmaa2.backends(),
            names=outcome(lambda: drmaa2.get_job_session_names()),
            made=outcome(lambda: drmaa2.create_job_session("s").name),
            drms=outcome(lambda: drmaa2.get_drms_name()),
            warnings=warnings_seen(),
        )
        """
    )
    assert result["backends"] == installed()
    # No choice and no $DRMAA2_BACKEND: the default backend (os) is used.
    assert result["names"] == {"ok": []}
    assert result["made"] == {"ok": "s"}
    assert "drmaa2-ostracker" in result["drms"]["ok"]
    assert _drmaa2_warnings(result["warnings"]) == []
    # The os backend used the state directory from $DRMAA2_OS_STATE_DIR.
    assert (plugins.state_dir / "store.sqlite3").exists()


def test_the_os_backend_is_not_imported_before_discovery(plugins: PluginDir) -> None:
    """drmaa2 finds the os backend only through its entry point, never by importing it."""
    result = plugins.run(
        """
        import sys
        before = "drmaa2_ostracker.plugin" in sys.modules
        names = drmaa2.backends()
        report(before=before, after="drmaa2_ostracker.plugin" in sys.modules, names=names)
        """
    )
    assert result == {"before": False, "after": True, "names": installed()}


# -- (a) a good extra plugin -------------------------------------------------------------------


def test_good_extra_plugin_is_listed_with_os(plugins: PluginDir) -> None:
    plugins.add_plugin("fake-backend", "fake", "fake_plugin", _good_plugin("fake", "A"))
    result = plugins.run(
        """
        report(
            backends=drmaa2.backends(),
            fake=outcome(lambda: drmaa2.get_drms_name(backend="fake")),
            fake_version=outcome(lambda: str(drmaa2.get_drms_version(backend="fake"))),
            fake_supports=outcome(
                lambda: [drmaa2.supports(c, backend="fake") for c in drmaa2.Capability]
            ),
            os=outcome(lambda: drmaa2.get_job_session_names(backend="os")),
            warnings=warnings_seen(),
        )
        """
    )
    assert result["backends"] == installed("fake")
    assert result["fake"] == {"ok": "fake drms A"}
    assert result["fake_version"] == {"ok": "9.1"}
    assert result["fake_supports"] == {"ok": [c == 4 for c in range(-1, 13)]}
    assert result["os"] == {"ok": []}
    assert _drmaa2_warnings(result["warnings"]) == []


def test_one_plugin_may_offer_several_backends(plugins: PluginDir) -> None:
    source = _FAKE_BACKEND + textwrap.dedent(
        """
        @drmaa2.hookimpl
        def drmaa2_backends():
            return [
                drmaa2.BackendSpec(name="alpha", factory=lambda: FakeBackend("alpha")),
                drmaa2.BackendSpec(name="beta", factory=lambda: FakeBackend("beta")),
            ]
        """
    )
    plugins.add_plugin("two-backends", "two", "two_plugin", source)
    result = plugins.run(
        """
        report(
            backends=drmaa2.backends(),
            alpha=outcome(lambda: drmaa2.get_drms_name(backend="alpha")),
            beta=outcome(lambda: drmaa2.get_drms_name(backend="beta")),
        )
        """
    )
    assert result["backends"] == installed("alpha", "beta")
    assert result["alpha"] == {"ok": "fake drms alpha"}
    assert result["beta"] == {"ok": "fake drms beta"}


# -- (b) a broken plugin ----------------------------------------------------------------------


def test_plugin_failing_to_import_is_reported_and_skipped(plugins: PluginDir) -> None:
    plugins.add_plugin(
        "broken-backend",
        "broken",
        "broken_plugin",
        'raise ImportError("the broken backend needs libbroken.so.7")\n',
    )
    result = plugins.run(
        """
        backends = drmaa2.backends()
        report(
            backends=backends,
            names=outcome(lambda: drmaa2.get_job_session_names(backend="os")),
            default=outcome(lambda: drmaa2.get_job_session_names()),
            warnings=warnings_seen(),
        )
        """
    )
    assert result["backends"] == installed()
    assert result["names"] == {"ok": []}
    # The broken plugin is no candidate: "os" is still the only backend.
    assert result["default"] == {"ok": []}
    reported = _drmaa2_warnings(result["warnings"])
    assert len(reported) == 1, result["warnings"]
    warning = reported[0]
    assert warning["category"] == "RuntimeWarning"
    assert "broken" in warning["message"]
    assert "broken_plugin" in warning["message"]
    assert "ImportError" in warning["message"]
    assert "the broken backend needs libbroken.so.7" in warning["message"]


def test_plugin_module_missing_is_reported_and_skipped(plugins: PluginDir) -> None:
    plugins.add("ghost-backend", {"ghost": "no_such_ghost_module"}, {})
    result = plugins.run(
        """
        report(
            backends=drmaa2.backends(),
            names=outcome(lambda: drmaa2.get_job_session_names(backend="os")),
            warnings=warnings_seen(),
        )
        """
    )
    assert result["backends"] == installed()
    assert result["names"] == {"ok": []}
    reported = _drmaa2_warnings(result["warnings"])
    assert len(reported) == 1, result["warnings"]
    assert reported[0]["category"] == "RuntimeWarning"
    assert "ghost" in reported[0]["message"]
    assert "no_such_ghost_module" in reported[0]["message"]
    assert "ModuleNotFoundError" in reported[0]["message"]


def test_plugin_whose_hook_raises_is_reported_and_skipped(plugins: PluginDir) -> None:
    source = textwrap.dedent(
        """
        import drmaa2

        @drmaa2.hookimpl
        def drmaa2_backends():
            raise RuntimeError("hook exploded on purpose")
        """
    )
    plugins.add_plugin("exploding-backend", "exploding", "exploding_plugin", source)
    plugins.add_plugin("fake-backend", "fake", "fake_plugin", _good_plugin("fake", "A"))
    result = plugins.run(
        """
        report(
            backends=outcome(drmaa2.backends),
            fake=outcome(lambda: drmaa2.get_drms_name(backend="fake")),
            warnings=warnings_seen(),
        )
        """
    )
    assert result["backends"] == {"ok": installed("fake")}
    assert result["fake"] == {"ok": "fake drms A"}
    reported = _drmaa2_warnings(result["warnings"])
    assert len(reported) == 1, result["warnings"]
    assert reported[0]["category"] == "RuntimeWarning"
    assert "exploding" in reported[0]["message"]
    assert "hook exploded on purpose" in reported[0]["message"]


def test_broken_plugin_next_to_a_good_one(plugins: PluginDir) -> None:
    plugins.add_plugin("broken-backend", "broken", "broken_plugin", "raise ImportError('nope')\n")
    plugins.add_plugin("fake-backend", "fake", "fake_plugin", _good_plugin("fake", "A"))
    result = plugins.run(
        """
        report(
            backends=drmaa2.backends(),
            fake=outcome(lambda: drmaa2.get_drms_name(backend="fake")),
            os=outcome(lambda: drmaa2.get_job_session_names(backend="os")),
        )
        """
    )
    assert result["backends"] == installed("fake")
    assert result["fake"] == {"ok": "fake drms A"}
    assert result["os"] == {"ok": []}


# -- (c) two plugins claiming one name --------------------------------------------------------


def test_two_plugins_claiming_one_name_are_rejected(plugins: PluginDir) -> None:
    plugins.add_plugin("first-dup", "dup_one", "first_dup_plugin", _good_plugin("dup", "1"))
    plugins.add_plugin("second-dup", "dup_two", "second_dup_plugin", _good_plugin("dup", "2"))
    result = plugins.run(
        """
        report(
            backends=outcome(drmaa2.backends),
            dup=outcome(lambda: drmaa2.get_drms_name(backend="dup")),
        )
        """
    )
    for key in ("backends", "dup"):
        failure = result[key]
        assert failure.get("error") == "InvalidArgumentException", failure
        assert failure["invalid_argument"] is True
        message = failure["message"]
        assert "'dup'" in message
        assert "first_dup_plugin" in message
        assert "second_dup_plugin" in message


def test_plugin_claiming_the_os_name_is_rejected(plugins: PluginDir) -> None:
    plugins.add_plugin("impostor", "impostor", "impostor_plugin", _good_plugin("os", "fake"))
    result = plugins.run("report(backends=outcome(drmaa2.backends))")
    failure = result["backends"]
    assert failure.get("error") == "InvalidArgumentException", failure
    assert "'os'" in failure["message"]
    assert "impostor_plugin" in failure["message"]
    assert "drmaa2_ostracker.plugin" in failure["message"]


def test_one_distribution_seen_twice_is_not_a_conflict(plugins: PluginDir) -> None:
    """The same entry point visible twice on sys.path (one distribution) is one plugin."""
    plugins.add_plugin("fake-backend", "fake", "fake_plugin", _good_plugin("fake", "A"))
    second = plugins.root / "site2"
    second.mkdir()
    info = second / "fake_backend-1.0.dist-info"
    info.mkdir()
    for name in ("METADATA", "entry_points.txt"):
        source = plugins.path / "fake_backend-1.0.dist-info" / name
        (info / name).write_text(source.read_text())
    result = plugins.run(
        """
        report(backends=outcome(drmaa2.backends))
        """,
        env={"PYTHONPATH": os.pathsep.join([str(plugins.path), str(second)])},
    )
    assert result["backends"] == {"ok": installed("fake")}


# -- (d) choosing the backend -----------------------------------------------------------------


def test_env_selects_the_backend(plugins: PluginDir) -> None:
    plugins.add_plugin("fake-backend", "fake", "fake_plugin", _good_plugin("fake", "A"))
    result = plugins.run(
        """
        report(
            default=outcome(lambda: drmaa2.get_drms_name()),
            names=outcome(lambda: drmaa2.get_job_session_names()),
            explicit_os=outcome(lambda: drmaa2.get_job_session_names(backend="os")),
        )
        """,
        env={"DRMAA2_BACKEND": "fake"},
    )
    assert result["default"] == {"ok": "fake drms A"}
    assert result["names"] == {"ok": ["fake-session-of-A"]}
    # An explicit backend= wins over the environment.
    assert result["explicit_os"] == {"ok": []}


def test_env_selects_os_among_two(plugins: PluginDir) -> None:
    plugins.add_plugin("fake-backend", "fake", "fake_plugin", _good_plugin("fake", "A"))
    result = plugins.run(
        """
        report(
            names=outcome(lambda: drmaa2.get_job_session_names()),
            drms=outcome(lambda: drmaa2.get_drms_name()),
            explicit_fake=outcome(lambda: drmaa2.get_drms_name(backend="fake")),
        )
        """,
        env={"DRMAA2_BACKEND": "os"},
    )
    assert result["names"] == {"ok": []}
    assert "drmaa2-ostracker" in result["drms"]["ok"]
    assert result["explicit_fake"] == {"ok": "fake drms A"}


def test_env_is_read_at_call_time(plugins: PluginDir) -> None:
    plugins.add_plugin("fake-backend", "fake", "fake_plugin", _good_plugin("fake", "A"))
    result = plugins.run(
        """
        import os
        os.environ["DRMAA2_BACKEND"] = "fake"
        first = outcome(lambda: drmaa2.get_drms_name())
        os.environ["DRMAA2_BACKEND"] = "os"
        second = outcome(lambda: drmaa2.get_job_session_names())
        report(first=first, second=second)
        """
    )
    assert result["first"] == {"ok": "fake drms A"}
    assert result["second"] == {"ok": []}


def test_unknown_backend_argument_lists_installed_names(plugins: PluginDir) -> None:
    plugins.add_plugin("fake-backend", "fake", "fake_plugin", _good_plugin("fake", "A"))
    result = plugins.run(
        """
        report(
            names=outcome(lambda: drmaa2.get_job_session_names(backend="nosuch")),
            session=outcome(lambda: drmaa2.create_job_session(backend="nosuch")),
            supports=outcome(
                lambda: drmaa2.supports(drmaa2.Capability.CALLBACK, backend="nosuch")
            ),
        )
        """
    )
    for key in ("names", "session", "supports"):
        failure = result[key]
        assert failure.get("error") == "InvalidArgumentException", failure
        assert failure["value_error"] is True
        assert "nosuch" in failure["message"]
        assert "'fake'" in failure["message"]
        assert "'os'" in failure["message"]
    # Nothing was created in the os state directory by the failed calls.
    assert not (plugins.state_dir / "store.sqlite3").exists()


def test_unknown_backend_from_env_lists_installed_names(plugins: PluginDir) -> None:
    result = plugins.run(
        """
        report(names=outcome(lambda: drmaa2.get_job_session_names()))
        """,
        env={"DRMAA2_BACKEND": "nosuch"},
    )
    failure = result["names"]
    assert failure.get("error") == "InvalidArgumentException", failure
    assert "nosuch" in failure["message"]
    assert "'os'" in failure["message"]


def test_two_backends_and_no_choice_use_the_default_one(plugins: PluginDir) -> None:
    plugins.add_plugin("fake-backend", "fake", "fake_plugin", _good_plugin("fake", "A"))
    result = plugins.run(
        """
        report(drms=outcome(lambda: drmaa2.get_drms_name()))
        """
    )
    assert "drmaa2-ostracker" in result["drms"]["ok"], result


def test_two_defaults_and_no_choice_lists_both(plugins: PluginDir) -> None:
    plugins.add_plugin(
        "fake-backend", "fake", "fake_plugin", _good_plugin("fake", "A", default=True)
    )
    result = plugins.run(
        """
        report(
            names=outcome(lambda: drmaa2.get_job_session_names()),
            drms=outcome(lambda: drmaa2.get_drms_name()),
            session=outcome(lambda: drmaa2.JobSession()),
        )
        """
    )
    for key in ("names", "drms", "session"):
        failure = result[key]
        assert failure.get("error") == "InvalidArgumentException", failure
        assert "'fake'" in failure["message"]
        assert "'os'" in failure["message"]
        assert "DRMAA2_BACKEND" in failure["message"]
    assert not (plugins.state_dir / "store.sqlite3").exists()


# -- (e) entry points are loaded once ---------------------------------------------------------


def test_entry_points_are_loaded_once_and_cached(plugins: PluginDir) -> None:
    source = textwrap.dedent(
        """
        import os
        import drmaa2

        _files = os.environ["TEST_FILES_DIR"]
        with open(os.path.join(_files, "imports.txt"), "a") as counter:
            counter.write("imported\\n")

        class CountingBackend:
            def __init__(self):
                with open(os.path.join(_files, "factory.txt"), "a") as counter:
                    counter.write("built\\n")

            def drms_name(self):
                return "counting"

            def supports(self, capability):
                return False

        @drmaa2.hookimpl
        def drmaa2_backends():
            with open(os.path.join(_files, "hook.txt"), "a") as counter:
                counter.write("called\\n")
            return [drmaa2.BackendSpec(name="counting", factory=CountingBackend)]
        """
    )
    plugins.add_plugin("counting-backend", "counting", "counting_plugin", source)
    result = plugins.run(
        """
        lists = [drmaa2.backends() for _ in range(3)]
        names = [drmaa2.get_drms_name(backend="counting") for _ in range(3)]
        flags = [drmaa2.supports(drmaa2.Capability.CALLBACK, backend="counting")]
        os_names = [drmaa2.get_job_session_names(backend="os") for _ in range(2)]
        unknown = outcome(lambda: drmaa2.get_drms_name(backend="nosuch"))
        lists.append(drmaa2.backends())
        report(lists=lists, names=names, flags=flags, os_names=os_names, unknown=unknown)
        """
    )
    assert result["lists"] == [installed("counting")] * 4
    assert result["names"] == ["counting"] * 3
    assert result["flags"] == [False]
    assert result["os_names"] == [[], []]
    assert result["unknown"]["error"] == "InvalidArgumentException"
    assert (plugins.files / "imports.txt").read_text() == "imported\n"
    assert (plugins.files / "hook.txt").read_text() == "called\n"
    assert (plugins.files / "factory.txt").read_text() == "built\n"


def test_broken_plugin_is_reported_once(plugins: PluginDir) -> None:
    source = textwrap.dedent(
        """
        import os
        with open(os.path.join(os.environ["TEST_FILES_DIR"], "attempts.txt"), "a") as f:
            f.write("attempt\\n")
        raise ImportError("still broken")
        """
    )
    plugins.add_plugin("broken-backend", "broken", "broken_plugin", source)
    result = plugins.run(
        """
        lists = [drmaa2.backends() for _ in range(3)]
        names = [drmaa2.get_job_session_names(backend="os") for _ in range(2)]
        report(lists=lists, names=names, warnings=warnings_seen())
        """
    )
    assert result["lists"] == [installed()] * 3
    assert result["names"] == [[], []]
    reported = _drmaa2_warnings(result["warnings"])
    assert len(reported) == 1, result["warnings"]
    assert "still broken" in reported[0]["message"]
    assert (plugins.files / "attempts.txt").read_text() == "attempt\n"
