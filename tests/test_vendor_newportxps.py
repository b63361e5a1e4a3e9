"""Newport's own low-level Python class (`newportxps.XPS_C8_drivers.XPS`, from the `newportxps`
package) as the oracle for the XPS emulator, and our driver's requests against what it sends.

Calls and answers: XPS Unified Programmer's Manual (EDH0373En1023): ErrorListGet is what the vendor
class reads on connect to fill its error table; positioner names are accepted where the manual
allows "group or positioner"; EventExtendedConfigurationTriggerSet takes the documented events
(Always, Immediate, TimerN, <group>.PVT.TrajectoryPulse, ...) and refuses unknown ones (-40);
EventExtendedConfigurationActionSet refuses unknown actions (-39); a DOPulse carries only a mask.
"""

from __future__ import annotations

import pytest

XPS_C8 = pytest.importorskip("newportxps.XPS_C8_drivers")

from sim.xps_emulator import XpsEmulator  # noqa: E402
from stage_drivers import MotionParams, open_stage  # noqa: E402


class Recording(XpsEmulator):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.sent: list[str] = []

    def execute(self, cmd, state=None):
        self.sent.append(cmd)
        return super().execute(cmd, state)


@pytest.fixture
def emu():
    e = Recording(speedup=float("inf")).start()
    yield e
    e.close()


@pytest.fixture
def vendor(emu):
    x = XPS_C8.XPS()
    sid = x.TCP_ConnectToServer("127.0.0.1", emu.port, 2.0)
    assert sid >= 0
    yield x, sid
    x.TCP_CloseSocket(sid)


def test_vendor_connect_reads_the_error_table(vendor, emu):
    x, sid = vendor
    assert emu.sent[0] == "ErrorListGet(char *)"
    assert x.errorcodes["-35"] == "Position is outside of travel limits"
    assert x.errorcodes["-4"] == "Unknown command" and x.errorcodes["0"] == "Successful command"


def test_vendor_status_and_list_calls(vendor, emu):
    x, sid = vendor
    assert x.ControllerStatusGet(sid) == [0, 0]
    err, text = x.ControllerStatusStringGet(sid, 0)
    assert (err, text) == (0, "Controller status OK")
    assert x.ObjectsListGet(sid) == (0, "XYZ;XYZ.X;XYZ.Y;XYZ.Z;")
    err, text = x.GroupStatusListGet(sid)
    assert err == 0 and "11 : Ready state from homing" in text.split(";")
    err, text = x.Send(sid, "InstallerVersionGet(char *)")
    assert err == 0 and text
    err, fw = x.FirmwareVersionGet(sid)
    assert err == 0 and fw.startswith("XPS-D")
    assert x.GroupStatusStringGet(sid, 0) == (0, "Not initialized state")  # sent as "(0, char*)"
    assert x.ErrorStringGet(sid, -17)[1] == "Parameter out of range or incorrect"  # sent as "(-17, char *)"


def test_vendor_motion_positioner_level_and_readbacks(vendor, emu):
    x, sid = vendor
    assert x.GroupInitialize(sid, "XYZ")[0] == 0
    assert x.GroupHomeSearch(sid, "XYZ")[0] == 0
    assert x.GroupStatusGet(sid, "XYZ") == [0, 11]
    # one positioner of a multi-positioner group moves alone; the others keep their targets
    assert x.GroupMoveAbsolute(sid, "XYZ.X", [1.5])[0] == 0
    err, xpos = x.GroupPositionCurrentGet(sid, "XYZ.X", 1)
    assert err == 0 and xpos == pytest.approx(1.5, abs=1e-4)
    err, *xyz = x.GroupPositionCurrentGet(sid, "XYZ", 3)
    assert xyz == pytest.approx([1.5, 0.0, 0.0], abs=1e-4)
    assert x.GroupMoveRelative(sid, "XYZ.Y", [-0.25])[0] == 0
    assert x.GroupPositionTargetGet(sid, "XYZ", 3)[1:] == pytest.approx([1.5, -0.25, 0.0], abs=1e-4)
    assert x.GroupVelocityCurrentGet(sid, "XYZ", 3) == [0, 0.0, 0.0, 0.0]  # at rest
    assert x.GroupMoveAbsolute(sid, "XYZ.X", [500.0])[0] == -35  # outside the travel limits
    assert x.GroupMoveAbsolute(sid, "XYZ.Q", [1.0])[0] == -18  # no such positioner
    assert x.PositionerMotionDoneSet(sid, "XYZ.X", 0.001, 0.01, 0.02, 0.001, 1.0)[0] == 0
    assert x.PositionerMotionDoneGet(sid, "XYZ.X") == [0, 0.001, 0.01, 0.02, 0.001, 1.0]
    assert x.PositionerErrorGet(sid, "XYZ.X") == [0, 0]
    assert x.PositionerErrorRead(sid, "XYZ.Y") == [0, 0]
    assert x.PositionerHardwareStatusGet(sid, "XYZ.Z") == [0, 0]
    assert x.PositionerSGammaParametersGet(sid, "XYZ.X")[0] == 0
    assert x.PositionerUserTravelLimitsGet(sid, "XYZ.X") == [0, -50.0, 50.0]


def test_vendor_compare_events_gpio_and_one_pulse_per_dopulse(vendor, emu):
    x, sid = vendor
    x.GroupInitialize(sid, "XYZ")
    x.GroupHomeSearch(sid, "XYZ")
    assert x.PositionerPositionComparePulseParametersSet(sid, "XYZ.X", 1, 0.075)[0] == 0
    assert x.PositionerPositionComparePulseParametersGet(sid, "XYZ.X") == [0, 1.0, 0.075]
    assert x.PositionerPositionCompareSet(sid, "XYZ.X", 0.1, 0.3, 0.1)[0] == 0
    # (the vendor class parses the bool output with bool("0") == True, so read the raw reply)
    assert x.Send(sid, "PositionerPositionCompareGet(XYZ.X,double *,double *,double *,bool *)") == (
        0, "0.1,0.3,0.1,0")
    # newportxps's own trajectory-scan event (Always + PVT pulse -> GatheringOneData) is accepted ...
    err, _ = x.EventExtendedConfigurationTriggerSet(sid, ("Always", "XYZ.PVT.TrajectoryPulse"), ("0", "0"),
                                                     ("0", "0"), ("0", "0"), ("0", "0"))
    assert err == 0
    assert x.EventExtendedConfigurationActionSet(sid, ("GatheringOneData",), ("",), ("",), ("",), ("",))[0] == 0
    err, eid = x.EventExtendedStart(sid)
    assert err == 0 and x.EventExtendedRemove(sid, eid)[0] == 0
    assert x.EventExtendedRemove(sid, eid)[0] == -80  # removed already
    # ... unknown event and action names are refused
    assert x.EventExtendedConfigurationTriggerSet(sid, ("XYZ.X.NoSuchEvent",), ("0",), ("0",), ("0",),
                                                  ("0",))[0] == -40
    assert x.EventExtendedConfigurationActionSet(sid, ("GPIO3.DO.DOBurst",), ("2",), ("5",), ("0",),
                                                 ("0",))[0] == -39
    # every digital I/O answers, inputs cannot be set
    for name in ("GPIO1.DO", "GPIO2.DO", "GPIO4.DO", "GPIO1.DI", "GPIO4.DI", "GPIO3.DO"):
        assert x.GPIODigitalGet(sid, name) == [0, 0]
    assert x.GPIODigitalSet(sid, "GPIO4.DO", 3, 1)[0] == 0 and x.GPIODigitalGet(sid, "GPIO4.DO") == [0, 1]
    assert x.GPIODigitalSet(sid, "GPIO4.DI", 1, 1)[0] == -8
    assert x.GPIODigitalGet(sid, "GPIO9.DO")[0] == -8
    # a DOPulse on the trigger bit is one trigger: one laser pulse, whatever the unused parameters say
    assert x.EventExtendedConfigurationTriggerSet(sid, ("Immediate",), ("0",), ("0",), ("0",), ("0",))[0] == 0
    assert x.EventExtendedConfigurationActionSet(sid, ("GPIO3.DO.DOPulse",), ("2",), ("5",), ("0",),
                                                 ("0",))[0] == 0
    fired = []
    emu.laser.fire_one = lambda *a, **k: fired.append(a)
    assert x.EventExtendedStart(sid)[0] == 0
    assert len(fired) == 1


def test_vendor_external_gathering_latches_each_compare_pulse(vendor, emu):
    """TRIG IN external gathering (manual 7.2.1.45, data type ExternalLatchPosition), started by the
    ExternalGatheringRun action, latches the encoders at each position-compare pulse."""
    x, sid = vendor
    x.GroupInitialize(sid, "XYZ")
    x.GroupHomeSearch(sid, "XYZ")
    x.GroupMoveAbsolute(sid, "XYZ", [0.0, 0.5, 0.0])
    types = ["XYZ.X.ExternalLatchPosition", "XYZ.Y.ExternalLatchPosition"]
    assert x.GatheringExternalConfigurationSet(sid, types)[0] == 0
    assert x.GatheringExternalConfigurationSet(sid, ["XYZ.X.NoSuchType"])[0] == -29
    assert x.EventExtendedConfigurationTriggerSet(sid, ("Immediate",), ("0",), ("0",), ("0",), ("0",))[0] == 0
    assert x.EventExtendedConfigurationActionSet(sid, ("ExternalGatheringRun",), ("5",), ("1",), ("0",),
                                                 ("0",))[0] == 0
    assert x.EventExtendedStart(sid)[0] == 0
    x.PositionerPositionCompareSet(sid, "XYZ.X", 0.1, 0.5, 0.1)
    x.PositionerPositionCompareEnable(sid, "XYZ.X")
    assert x.GroupMoveAbsolute(sid, "XYZ", [0.6, 0.5, 0.0])[0] == 0
    x.PositionerPositionCompareDisable(sid, "XYZ.X")
    assert x.GatheringExternalCurrentNumberGet(sid) == [0, 5, 5]
    rows = [[float(v) for v in x.GatheringExternalDataGet(sid, i)[1].split(";")] for i in range(5)]
    assert [r[0] for r in rows] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5], abs=1e-4)
    assert [r[1] for r in rows] == pytest.approx([0.5] * 5, abs=1e-4)
    assert x.GatheringExternalDataGet(sid, 5)[0] == -17


def _norm(cmd: str) -> tuple[str, list[str]]:
    name, _, rest = cmd.partition("(")
    args = [a.strip().replace(" ", "") for a in rest.rstrip(")").split(",")] if rest.rstrip(")") else []
    return name, args


def _same(ours: str, theirs: str) -> None:
    """Same function, same number of arguments, same placeholders, numerically equal values; ours never
    uses exponent notation (which the vendor's str(float) emits for small numbers)."""
    (n1, a1), (n2, a2) = _norm(ours), _norm(theirs)
    assert n1 == n2 and len(a1) == len(a2), (ours, theirs)
    for x, y in zip(a1, a2, strict=True):
        assert "e" not in x.lower() or not x.replace(".", "").replace("-", "").replace("e", "").isdigit()
        try:
            assert float(x) == pytest.approx(float(y), abs=1e-12), (ours, theirs)
        except ValueError:
            assert x == y, (ours, theirs)


def test_driver_requests_match_the_vendor_class(emu):
    st = open_stage(emu.url)
    st.home()
    x = XPS_C8.XPS()
    sid = x.TCP_ConnectToServer("127.0.0.1", emu.port, 2.0)
    try:
        pairs = []

        def both(ours, theirs):
            emu.sent.clear()
            ours()
            mine = list(emu.sent)
            emu.sent.clear()
            theirs()
            pairs.append((mine, list(emu.sent)))

        both(lambda: st.move_to(1500.0, -250.0, 10.0), lambda: x.GroupMoveAbsolute(sid, "XYZ", [1.5, -0.25, 0.01]))
        both(lambda: st.position(), lambda: x.GroupPositionCurrentGet(sid, "XYZ", 3))
        both(lambda: st.set_gate(True), lambda: x.GPIODigitalSet(sid, "GPIO3.DO", 1, 1))
        both(lambda: st.set_motion_params("X", MotionParams(20000.0, 200000.0, 0.005, 0.05)),
             lambda: x.PositionerSGammaParametersSet(sid, "XYZ.X", 20.0, 200.0, 0.005, 0.05))
        both(lambda: st.status_code(), lambda: x.GroupStatusGet(sid, "XYZ"))
        both(lambda: st.set_motion_done("X", 1.0, 0.01, 100.0, 0.001, 1.0),
             lambda: x.PositionerMotionDoneSet(sid, "XYZ.X", 0.001, 0.1, 0.01, 0.001, 1.0))
        both(lambda: st.error_string(-17), lambda: x.ErrorStringGet(sid, -17))
        both(lambda: st.fire_pulses(1), lambda: (
            x.EventExtendedConfigurationTriggerSet(sid, ("Immediate",), ("0",), ("0",), ("0",), ("0",)),
            x.EventExtendedConfigurationActionSet(sid, ("GPIO3.DO.DOPulse",), ("2",), ("0",), ("0",), ("0",)),
            x.EventExtendedStart(sid)))
        both(lambda: st.arm_compare("X", [100.0, 110.0, 120.0]), lambda: (
            x.PositionerPositionComparePulseParametersSet(sid, "XYZ.X", 1, 0.075),
            x.PositionerPositionCompareSet(sid, "XYZ.X", 0.1, 0.125, 0.01),
            x.GatheringExternalConfigurationSet(sid, [f"XYZ.{a}.ExternalLatchPosition" for a in "XYZ"]),
            x.EventExtendedConfigurationTriggerSet(sid, ("Immediate",), ("0",), ("0",), ("0",), ("0",)),
            x.EventExtendedConfigurationActionSet(sid, ("ExternalGatheringRun",), ("3",), ("1",), ("0",), ("0",)),
            x.EventExtendedStart(sid),
            x.PositionerPositionCompareEnable(sid, "XYZ.X")))
        both(lambda: st.disarm_compare(), lambda: (x.PositionerPositionCompareDisable(sid, "XYZ.X"),
                                                   x.GatheringExternalCurrentNumberGet(sid),
                                                   x.GatheringExternalStopAndSave(sid)))  # nothing crossed
        for mine, theirs in pairs:
            mine = [c for c in mine if not c.startswith("ErrorListGet")]
            assert len(mine) == len(theirs), (mine, theirs)
            for a, b in zip(mine, theirs, strict=True):
                _same(a, b)
    finally:
        x.TCP_CloseSocket(sid)
        st.close()
