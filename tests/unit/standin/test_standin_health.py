import pytest

from micropvr_standin import config, health


def cfg(**kw):
    c = dict(config.DEFAULTS)
    c.update({k.replace("_", "-"): v for k, v in kw.items()})
    return c


@pytest.mark.parametrize("sessions, alive, score", [
    (0, True, 0.0), (250, True, 50.0), (400, True, 80.0), (401, False, 80.2), (600, False, 120.0)])
def test_sessions_over_80_percent(r110, sessions, alive, score):
    assert health.compute(sessions, cfg(score_max_sessions=500), r110, 0.0) == {
        "is_alive": alive, "score": score, "session_count": sessions}


def test_score_over_max_score(r19):
    c = cfg(score_max_sessions=1000, score_max_score=50)
    assert health.compute(500, c, r19)["is_alive"] is True       # score 50 == max: not passed
    res = health.compute(600, c, r19)                               # 60 % < 80 %, but 60 > 50
    assert res == {"is_alive": False, "score": 60.0, "session_count": 600}


def test_cpu_load_component_only_in_1_10_and_only_when_set(r19, r110):
    c = cfg(score_max_cpu_la1=8.0)
    assert health.compute(0, c, r110, 7.0) == {"is_alive": False, "score": 87.5, "session_count": 0}
    assert health.compute(0, c, r110, 6.4)["is_alive"] is True
    assert health.compute(0, c, r19, 7.0) == {"is_alive": True, "score": 0.0, "session_count": 0}
    assert health.compute(0, cfg(), r110, 100.0)["is_alive"] is True  # 0 = not checked


@pytest.mark.parametrize("sessions", [0, 1, 400])
@pytest.mark.parametrize("max_score", [1, 100, 1e6])
def test_bad_release_1_10_1_is_never_alive(r1101, sessions, max_score):
    res = health.compute(sessions, cfg(score_max_score=max_score), r1101, 0.0)
    assert res["is_alive"] is False
    assert res["score"] > max_score
    assert res["session_count"] == sessions


def test_good_releases_alive_when_idle(any_release):
    assert health.compute(0, cfg(), any_release, 0.0)["is_alive"] is (not any_release.broken_score)
