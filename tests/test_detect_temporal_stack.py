"""benchmarks.detect_ens_indist2: the leave-one-person-out stack that selection reads never scores a
person with a stacker that saw them."""

from __future__ import annotations

import numpy as np

from benchmarks.detect_ens_indist2 import crossfit_stack


def test_crossfit_stack_separates_when_a_member_does():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 30)                                                   # (60,)
    groups = np.repeat(np.arange(6), 10)
    good = (2 * y - 1)[:, None] * 3.0 + rng.normal(0, 0.5, (60, 4))           # (60, 4) frames: informative
    noise = rng.normal(0, 1, (60, 4))
    s = crossfit_stack(np.stack([good, noise], -1), y, groups, c=1.0)        # (60,)
    assert s.shape == (60,) and np.all((s > 0) & (s < 1))
    assert s[y == 1].min() > s[y == 0].max()


def test_crossfit_stack_holds_each_group_out():
    """One person whose member score is inverted: the stacker fitted on the others scores them inverted."""
    y = np.tile([0, 1], 30)
    groups = np.repeat(np.arange(6), 10)
    z = np.repeat(((2 * y - 1) * 2.0)[:, None, None], 3, axis=1)             # (60, 3, 1)
    z[groups == 5] *= -1
    s = crossfit_stack(z, y, groups, c=1.0)
    held = groups == 5
    assert s[held & (y == 0)].min() > s[held & (y == 1)].max()               # not fitted on person 5
    assert s[~held & (y == 1)].min() > s[~held & (y == 0)].max()
