from backend import protocol


def test_events_round_trip_as_single_json_lines() -> None:
    events = [
        protocol.stage("detect", 2, 6),
        protocol.progress("detect", 120, 300, 48.123),
        protocol.warning("two people"),
        protocol.result("/tmp/x.motion.npz"),
        protocol.error("bad_input", "no person", "detail"),
    ]
    for event in events:
        line = protocol.encode(event)
        assert "\n" not in line
        assert protocol.decode(line) == event
    assert protocol.progress("fit", 1, 2, 3.14159)["fps"] == 3.14


def test_decode_ignores_noise() -> None:
    assert protocol.decode("") is None
    assert protocol.decode("W0000 some library log line") is None
    assert protocol.decode("{not json") is None
    assert protocol.decode('{"no_event": 1}') is None
