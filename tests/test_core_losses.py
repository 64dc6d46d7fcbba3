"""Loss derivatives against finite differences; NaN targets; composite losses."""

import numpy as np
import pytest

from hfcontrol import loss_funcs as lf
from hfcontrol.optimizers import HessianFree

RNG = np.random.default_rng(0)
ACTS = [RNG.uniform(0.1, 0.9, (4, 3)), RNG.uniform(0.1, 0.9, (4, 5)), RNG.uniform(0.1, 0.9, (4, 2))]
TARGETS = RNG.uniform(0.1, 0.9, (4, 2))

LOSSES = [lf.SquaredError(), lf.CrossEntropy(), lf.SparseL2(0.3, target=0.2),
          lf.SparseL1(0.3, target=0.2), lf.LossSet([lf.SquaredError(), lf.SparseL2(0.1)])]


def _total(loss, acts):
    return sum(np.sum(v) for v in loss.loss(acts, TARGETS) if v is not None)


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_derivatives_match_finite_differences(loss):
    eps = 1e-6
    d1 = loss.d_loss(ACTS, TARGETS)
    d2 = loss.d2_loss(ACTS, TARGETS)
    for layer, a in enumerate(ACTS):
        if d1[layer] is None:
            assert all(v is None for v in (loss.loss(ACTS, TARGETS)[layer],))
            continue
        fd1 = np.zeros_like(a)
        fd2 = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus = [x.copy() for x in ACTS]
            minus = [x.copy() for x in ACTS]
            plus[layer][idx] += eps
            minus[layer][idx] -= eps
            fd1[idx] = (_total(loss, plus) - _total(loss, minus)) / (2 * eps)
            fd2[idx] = (loss.d_loss(plus, TARGETS)[layer][idx]
                        - loss.d_loss(minus, TARGETS)[layer][idx]) / (2 * eps)
        np.testing.assert_allclose(d1[layer], fd1, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(d2[layer], fd2, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("loss", [lf.SquaredError(), lf.CrossEntropy()], ids=repr)
def test_nan_target_adds_no_error_gradient_or_curvature(loss):
    targets = TARGETS.copy()
    targets[1, 0] = np.nan
    for func in (loss.loss, loss.d_loss, loss.d2_loss):
        out = func(ACTS, targets)[-1]
        assert np.all(np.isfinite(out))
        assert out[1, 0] == 0
    assert np.isfinite(loss.batch_loss(ACTS, targets))


def test_batch_loss_divides_by_batch_size():
    out = np.array([[1.0, 2.0], [3.0, 4.0]])
    tgt = np.zeros((2, 2))
    assert lf.SquaredError().batch_loss([out], tgt) == pytest.approx(0.5 * 30 / 2)


def test_classification_error_counts_and_refuses_derivatives():
    out = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    tgt = np.array([[1.0, 0.0], [1.0, 0.0], [np.nan, np.nan]])
    # one wrong of the two labelled samples; the all-NaN row is not counted
    assert lf.ClassificationError().batch_loss([out], tgt) == pytest.approx(1 / 2)
    # on sequences it is a rate over samples and steps
    seq_out = np.zeros((2, 10, 2))
    seq_out[..., 0] = 1.0
    seq_tgt = np.zeros((2, 10, 2))
    seq_tgt[..., 1] = 1.0
    seq_tgt[1, 5:] = 0.0
    seq_tgt[1, 5:, 0] = 1.0
    assert lf.ClassificationError().batch_loss([seq_out], seq_tgt) == pytest.approx(15 / 20)
    with pytest.raises(TypeError, match="not differentiable"):
        lf.ClassificationError().d_loss([out], tgt)


def test_structural_damping_scales_with_optimiser_damping():
    opt = HessianFree(init_damping=2.0)
    sd = lf.StructuralDamping(0.5, optimizer=opt)
    d2 = sd.d2_loss(ACTS, TARGETS)
    assert d2[0] is None and d2[2] is None
    np.testing.assert_allclose(d2[1], 1.0)
    opt.damping = 4.0
    np.testing.assert_allclose(sd.d2_loss(ACTS, TARGETS)[1], 2.0)
    assert all(v is None for v in sd.d_loss(ACTS, TARGETS))


def test_list_becomes_lossset_and_bad_specs_raise():
    assert isinstance(lf.from_spec([lf.SquaredError(), lf.SparseL1(0.1)]), lf.LossSet)
    with pytest.raises(TypeError, match="LossFunction"):
        lf.LossSet([lf.SquaredError(), "x"])
    with pytest.raises(ValueError, match="weight"):
        lf.SparseL2(-1.0)
    with pytest.raises(ValueError, match="layers"):
        lf.SparseL2(1.0, layers=[7]).loss(ACTS, TARGETS)


def test_crossentropy_rejects_negative_targets():
    with pytest.raises(ValueError, match="CrossEntropy must be >= 0"):
        lf.CrossEntropy().d2_loss(ACTS, -TARGETS)


def test_losses_that_need_a_weight_cannot_be_named_bare():
    with pytest.raises(ValueError, match="needs a weight"):
        lf.from_spec("StructuralDamping")


def test_without_structural_damping_switches_it_off_temporarily():
    sd = lf.StructuralDamping(0.5)
    loss = lf.LossSet([lf.SquaredError(), sd])
    with lf.without_structural_damping(loss):
        assert sd.d2_loss(ACTS, TARGETS)[1].max() == 0
    np.testing.assert_allclose(sd.d2_loss(ACTS, TARGETS)[1], 0.5)


def test_crossentropy_rejects_negative_targets_in_every_method():
    for method in (lf.CrossEntropy().loss, lf.CrossEntropy().d_loss, lf.CrossEntropy().d2_loss):
        with pytest.raises(ValueError, match="targets for CrossEntropy must be >= 0"):
            method(ACTS, -TARGETS)
