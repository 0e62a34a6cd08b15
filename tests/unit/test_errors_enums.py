"""Unit tests of the DRMAA2 enums, constants and exception hierarchy (the API contract's lists)."""

from __future__ import annotations

import builtins
import enum
import inspect

import pytest

import drmaa2
from drmaa2 import enums, errors
from drmaa2.enums import Capability, Cpu, Event, JobState, Os, ResourceLimit, StatusCode

# -- enums -----------------------------------------------------------------------------------

EXPECTED_ENUMS: dict[type[enum.IntEnum], list[tuple[str, int]]] = {
    JobState: [
        ("UNSET_JSTATE", -1),
        ("UNDETERMINED", 0),
        ("QUEUED", 1),
        ("QUEUED_HELD", 2),
        ("RUNNING", 3),
        ("SUSPENDED", 4),
        ("REQUEUED", 5),
        ("REQUEUED_HELD", 6),
        ("DONE", 7),
        ("FAILED", 8),
        ("RUNNING_HELD", 9),
    ],
    Capability: [
        ("UNSET_CAPABILITY", -1),
        ("ADVANCE_RESERVATION", 0),
        ("RESERVE_SLOTS", 1),
        ("CALLBACK", 2),
        ("BULK_JOBS_MAXPARALLEL", 3),
        ("JT_EMAIL", 4),
        ("JT_STAGING", 5),
        ("JT_DEADLINE", 6),
        ("JT_MAXSLOTS", 7),
        ("JT_ACCOUNTINGID", 8),
        ("RT_STARTNOW", 9),
        ("RT_DURATION", 10),
        ("RT_MACHINEOS", 11),
        ("RT_MACHINEARCH", 12),
    ],
    Os: [
        ("UNSET_OS", -1),
        ("OTHER_OS", 0),
        ("AIX", 1),
        ("BSD", 2),
        ("LINUX", 3),
        ("HPUX", 4),
        ("IRIX", 5),
        ("MACOS", 6),
        ("SUNOS", 7),
        ("TRU64", 8),
        ("UNIXWARE", 9),
        ("WIN", 10),
        ("WINNT", 11),
    ],
    Cpu: [
        ("UNSET_CPU", -1),
        ("OTHER_CPU", 0),
        ("ALPHA", 1),
        ("ARM", 2),
        ("ARM64", 3),
        ("CELL", 4),
        ("PARISC", 5),
        ("PARISC64", 6),
        ("X86", 7),
        ("X64", 8),
        ("IA64", 9),
        ("MIPS", 10),
        ("MIPS64", 11),
        ("PPC", 12),
        ("PPC64", 13),
        ("SPARC", 14),
        ("SPARC64", 15),
        ("PPC64LE", 16),
    ],
    Event: [("UNSET_EVENT", -1), ("NEW_STATE", 0), ("MIGRATED", 1), ("ATTRIBUTE_CHANGE", 2)],
    StatusCode: [
        ("UNSET_ERROR", -1),
        ("SUCCESS", 0),
        ("DENIED_BY_DRMS", 1),
        ("DRM_COMMUNICATION", 2),
        ("TRY_LATER", 3),
        ("SESSION_MANAGEMENT", 4),
        ("TIMEOUT", 5),
        ("INTERNAL", 6),
        ("INVALID_ARGUMENT", 7),
        ("INVALID_SESSION", 8),
        ("INVALID_STATE", 9),
        ("OUT_OF_RESOURCE", 10),
        ("UNSUPPORTED_ATTRIBUTE", 11),
        ("UNSUPPORTED_OPERATION", 12),
        ("IMPLEMENTATION_SPECIFIC", 13),
        ("AUTHORIZATION", 14),
        ("LASTERROR", 15),
    ],
}

INT_ENUMS = list(EXPECTED_ENUMS)


@pytest.mark.parametrize("kind", INT_ENUMS, ids=lambda k: k.__name__)
def test_int_enum_members_exactly_as_contract(kind: type[enum.IntEnum]) -> None:
    members = [(member.name, int(member.value)) for member in kind]
    assert members == EXPECTED_ENUMS[kind]
    # No hidden aliases either.
    assert list(kind.__members__) == [name for name, _ in EXPECTED_ENUMS[kind]]


@pytest.mark.parametrize("kind", INT_ENUMS, ids=lambda k: k.__name__)
def test_int_enums_are_int_enums(kind: type[enum.IntEnum]) -> None:
    assert issubclass(kind, enum.IntEnum)
    for name, value in EXPECTED_ENUMS[kind]:
        member = kind[name]
        assert member == value
        assert kind(value) is member
        assert isinstance(member, int)


@pytest.mark.parametrize("kind", INT_ENUMS, ids=lambda k: k.__name__)
def test_int_enums_reject_values_out_of_range(kind: type[enum.IntEnum]) -> None:
    codes = [code for _, code in EXPECTED_ENUMS[kind]]
    assert codes == list(range(-1, len(codes) - 1)), "UNSET_* -1, then the codes from 0"
    with pytest.raises(ValueError, match=str(max(codes) + 1)):
        kind(max(codes) + 1)
    with pytest.raises(ValueError, match="-2"):
        kind(-2)


@pytest.mark.parametrize("kind", [*INT_ENUMS, ResourceLimit], ids=lambda k: k.__name__)
def test_enums_are_exported_by_drmaa2(kind: type[enum.Enum]) -> None:
    assert getattr(drmaa2, kind.__name__) is kind
    assert kind.__name__ in drmaa2.__all__


def test_resource_limit_string_values() -> None:
    expected = [
        "CORE_FILE_SIZE",
        "CPU_TIME",
        "DATA_SIZE",
        "FILE_SIZE",
        "OPEN_FILES",
        "STACK_SIZE",
        "VIRTUAL_MEMORY",
        "WALLCLOCK_TIME",
    ]
    assert [member.name for member in ResourceLimit] == expected
    assert [member.value for member in ResourceLimit] == expected
    for name in expected:
        member = ResourceLimit[name]
        assert isinstance(member, str)
        assert member == name
        assert ResourceLimit(name) is member
    with pytest.raises(ValueError, match="WALL_TIME"):
        ResourceLimit("WALL_TIME")


def test_job_state_helpers() -> None:
    assert {state for state in JobState if state.is_terminal} == {JobState.DONE, JobState.FAILED}
    assert {state for state in JobState if state.is_started} == {
        JobState.RUNNING,
        JobState.RUNNING_HELD,
        JobState.SUSPENDED,
        JobState.DONE,
        JobState.FAILED,
    }


# -- constants -------------------------------------------------------------------------------

CONSTANTS = {
    "INFINITE_TIME": -1,
    "ZERO_TIME": 0,
    "NOW": -2,
    "UNSET_TIME": -3,
    "HOME_DIR": "$DRMAA2_HOME_DIR$",
    "WORKING_DIR": "$DRMAA2_WORKING_DIR$",
    "PARAMETRIC_INDEX": "$DRMAA2_INDEX$",
}


@pytest.mark.parametrize(("name", "value"), CONSTANTS.items())
def test_constants(name: str, value: object) -> None:
    for where in (drmaa2, enums):
        actual = getattr(where, name)
        assert actual == value
        assert type(actual) is type(value)
    assert name in drmaa2.__all__


# -- exceptions ------------------------------------------------------------------------------

EXPECTED_EXCEPTIONS: list[tuple[str, StatusCode]] = [
    ("DeniedByDrmsException", StatusCode.DENIED_BY_DRMS),
    ("DrmCommunicationException", StatusCode.DRM_COMMUNICATION),
    ("TryLaterException", StatusCode.TRY_LATER),
    ("SessionManagementException", StatusCode.SESSION_MANAGEMENT),
    ("TimeoutException", StatusCode.TIMEOUT),
    ("InternalException", StatusCode.INTERNAL),
    ("InvalidArgumentException", StatusCode.INVALID_ARGUMENT),
    ("InvalidSessionException", StatusCode.INVALID_SESSION),
    ("InvalidStateException", StatusCode.INVALID_STATE),
    ("OutOfResourceException", StatusCode.OUT_OF_RESOURCE),
    ("UnsupportedAttributeException", StatusCode.UNSUPPORTED_ATTRIBUTE),
    ("UnsupportedOperationException", StatusCode.UNSUPPORTED_OPERATION),
    ("ImplementationSpecificException", StatusCode.IMPLEMENTATION_SPECIFIC),
]

UGE_ALIASES = {
    "DeniedByDrms": "DeniedByDrmsException",
    "DrmCommunicationError": "DrmCommunicationException",
    "TryLaterError": "TryLaterException",
    "SessionManagementError": "SessionManagementException",
    "InternalError": "InternalException",
    "InvalidArgument": "InvalidArgumentException",
    "InvalidSession": "InvalidSessionException",
    "InvalidState": "InvalidStateException",
    "ResourceNotAvailable": "OutOfResourceException",
    "UnsupportedAttribute": "UnsupportedAttributeException",
    "UnsupportedOperation": "UnsupportedOperationException",
    "ImplementationSpecificError": "ImplementationSpecificException",
}


def test_base_exception() -> None:
    base = drmaa2.Drmaa2Exception
    assert base is errors.Drmaa2Exception
    assert base.__bases__ == (Exception,)
    # Grid Engine's binding's code for an exception built without one.
    assert base.error_code is StatusCode.UNSET_ERROR
    assert "Drmaa2Exception" in drmaa2.__all__


def test_exception_subclasses_in_code_order() -> None:
    """The direct subclasses are defined in the contract's order (their error codes ascend)."""
    defined = [
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and value.__bases__[0] is errors.Drmaa2Exception
        and value.__name__ == name
        and value.__module__ == errors.__name__
    ]
    assert defined == [name for name, _ in EXPECTED_EXCEPTIONS]
    codes = [getattr(errors, name).error_code for name in defined]
    assert codes == sorted(codes)


@pytest.mark.parametrize(("name", "code"), EXPECTED_EXCEPTIONS)
def test_exception_class_and_error_code(name: str, code: StatusCode) -> None:
    cls = getattr(drmaa2, name)
    assert cls is getattr(errors, name)
    assert name in drmaa2.__all__
    assert issubclass(cls, drmaa2.Drmaa2Exception)
    assert cls.__bases__[0] is drmaa2.Drmaa2Exception
    assert cls.error_code is code
    error = cls(f"something wrong with {name}")
    assert error.error_code is code
    assert isinstance(error.error_code, StatusCode)
    assert str(error) == f"something wrong with {name}"
    with pytest.raises(drmaa2.Drmaa2Exception) as caught:
        raise error
    assert caught.value is error


def test_timeout_exception_is_builtin_timeout_error() -> None:
    assert issubclass(drmaa2.TimeoutException, builtins.TimeoutError)
    assert issubclass(drmaa2.TimeoutException, OSError)
    with pytest.raises(builtins.TimeoutError):
        raise drmaa2.TimeoutException("waited 0.1 s")


def test_invalid_argument_exception_is_value_error() -> None:
    assert issubclass(drmaa2.InvalidArgumentException, ValueError)
    with pytest.raises(ValueError, match="bad value 42"):
        raise drmaa2.InvalidArgumentException("bad value 42")


@pytest.mark.parametrize(
    "name",
    [
        name
        for name, _ in EXPECTED_EXCEPTIONS
        if name not in ("TimeoutException", "InvalidArgumentException")
    ],
)
def test_other_exceptions_are_not_builtin_error_classes(name: str) -> None:
    cls = getattr(drmaa2, name)
    assert not issubclass(cls, ValueError)
    assert not issubclass(cls, builtins.TimeoutError)


def test_exceptions_are_distinct_classes() -> None:
    classes = [getattr(drmaa2, name) for name, _ in EXPECTED_EXCEPTIONS]
    assert len(set(classes)) == len(classes)
    for cls in classes:
        for other in classes:
            if other is not cls:
                assert not issubclass(cls, other)


@pytest.mark.parametrize(("alias", "name"), UGE_ALIASES.items())
def test_uge_alias_is_the_same_class(alias: str, name: str) -> None:
    assert getattr(drmaa2, alias) is getattr(drmaa2, name)
    assert getattr(errors, alias) is getattr(errors, name)
    assert alias in drmaa2.__all__


def test_uge_alias_catches_the_real_exception() -> None:
    with pytest.raises(drmaa2.InvalidArgument):
        raise drmaa2.InvalidArgumentException("x")
    with pytest.raises(drmaa2.ResourceNotAvailable):
        raise drmaa2.OutOfResourceException("y")


def test_authorization_error_is_a_kind_of_denied_by_drms() -> None:
    """Grid Engine's AuthorizationError, which DRMAA2 lacks, has the binding's code
    AUTHORIZATION and is a DeniedByDrmsException."""
    cls = drmaa2.AuthorizationError
    assert cls is errors.AuthorizationError and "AuthorizationError" in drmaa2.__all__
    assert cls.__bases__ == (drmaa2.DeniedByDrmsException,)
    assert cls.error_code is StatusCode.AUTHORIZATION
    assert cls("not yours").error_code is StatusCode.AUTHORIZATION
    with pytest.raises(drmaa2.DeniedByDrms, match="not yours"):
        raise cls("not yours")
    assert not issubclass(drmaa2.DeniedByDrmsException, cls)


def test_an_except_chain_naming_authorization_error_reaches_the_right_clause() -> None:
    """Naming AuthorizationError before InvalidArgument, as code for the binding does, leaves
    the InvalidArgument clause to catch an invalid argument."""
    caught = ""
    try:
        drmaa2.JobTemplate({"remote_command": 1})
    except drmaa2.AuthorizationError:
        caught = "authorization"
    except drmaa2.InvalidArgument as error:
        caught = f"invalid argument: {error}"
    assert caught.startswith("invalid argument: JobTemplate.remote_command")


def test_timeout_error_alias_is_an_attribute_only() -> None:
    assert drmaa2.TimeoutError is drmaa2.TimeoutException
    assert errors.TimeoutError is drmaa2.TimeoutException
    assert "TimeoutError" not in drmaa2.__all__
    assert "TimeoutError" not in errors.__all__


def test_star_import_does_not_bind_timeout_error() -> None:
    namespace: dict[str, object] = {}
    exec("from drmaa2 import *", namespace)
    assert "TimeoutError" not in namespace
    # The builtin stays visible and is not the DRMAA2 class.
    exec("result = TimeoutError", namespace)
    assert namespace["result"] is builtins.TimeoutError
    assert namespace["result"] is not drmaa2.TimeoutException
    # Everything that is exported did arrive.
    for name in drmaa2.__all__:
        assert namespace[name] is getattr(drmaa2, name)


def test_star_import_of_errors_does_not_bind_timeout_error() -> None:
    namespace: dict[str, object] = {}
    exec("from drmaa2.errors import *", namespace)
    assert "TimeoutError" not in namespace
    assert namespace["TimeoutException"] is drmaa2.TimeoutException


def test_every_name_in_all_exists() -> None:
    missing = [name for name in drmaa2.__all__ if not hasattr(drmaa2, name)]
    assert missing == []
    assert len(set(drmaa2.__all__)) == len(drmaa2.__all__)
    for module in (enums, errors):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == []


def test_all_lists_the_contract_names() -> None:
    contract = {
        "BackendSpec",
        "backends",
        "hookimpl",
        "JobInfo",
        "JobTemplate",
        "MachineInfo",
        "QueueInfo",
        "Version",
        "Notification",
        "Job",
        "JobArray",
        "JobSession",
        "MonitoringSession",
        "create_job_session",
        "open_job_session",
        "destroy_job_session",
        "get_job_session_names",
        "open_monitoring_session",
        "create_reservation_session",
        "open_reservation_session",
        "destroy_reservation_session",
        "get_reservation_session_names",
        "get_drms_name",
        "get_drms_version",
        "get_drmaa_name",
        "get_drmaa_version",
        "supports",
        "drmaa_supports",
        "register_event_notification",
        "unregister_event_notification",
    }
    assert contract - set(drmaa2.__all__) == set()
