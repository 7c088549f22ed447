"""benchmarks/robustness_fuzz: the verify summary (a pure function) on hand-made rows."""

from __future__ import annotations

from benchmarks.robustness_fuzz_verify import summarise_verify


def _row(kind, expected, verdict, alone, seconds):
    from provenance import mutants

    return {"kind": kind, "detail": "d", "expected": expected, "verdict": verdict, "reason": "r",
            "seconds": seconds, "c2pa_alone": alone,
            "wrong": verdict in ("crash", "hang") or mutants.is_wrong(expected, verdict),
            "wrong_c2pa_alone": mutants.is_wrong(expected, {"intact": "trusted"}.get(alone, alone))}


def test_summarise_verify_counts():
    rows = [_row("flip_manifest", "tampered", "tampered", "tampered", 0.1),      # right both ways
            _row("flip_manifest", "tampered", "none", "intact", 0.3),            # wrong both ways
            _row("flip_media", "not_intact", "trusted", "intact", 0.2),          # changed but trusted
            _row("truncate", "not_intact", "crash", "error", 0.4),               # a crash is wrong
            _row("truncate", "not_intact", "hang", "hang", 5.0)]
    s = summarise_verify(rows, baseline="trusted")
    assert s["unmutated_verdict"] == "trusted" and s["n"] == 5
    assert (s["crashes"], s["hangs"], s["changed_but_trusted"]) == (1, 1, 1)
    assert (s["manifest_bearing"], s["manifest_bearing_not_tampered"], s["wrong"]) == (2, 1, 4)
    assert s["verdicts"] == {"tampered": 1, "none": 1, "trusted": 1, "crash": 1, "hang": 1}
    assert s["c2pa_alone"] == {"wrong": 2, "changed_but_intact": 2, "manifest_bearing_not_tampered": 1,
                               "classes": {"tampered": 1, "intact": 2, "error": 1, "hang": 1}}
    assert s["by_kind"]["flip_manifest"] == {"n": 2, "verdicts": {"tampered": 1, "none": 1}, "manifest_bearing": 2,
                                             "wrong": 1, "c2pa_alone": {"tampered": 1, "intact": 1},
                                             "wrong_c2pa_alone": 1}
    assert s["by_kind"]["insert"]["n"] == 0
    assert (s["seconds_median"], s["seconds_max"]) == (0.3, 5.0)
    assert [r["kind"] for r in s["wrong_examples"]] == ["flip_manifest", "flip_media", "truncate", "truncate"]
