"MS trial simulator: bad input, determinism, shapes and the ground truth's internal consistency."
import numpy as np, pytest
from medcf.phantoms import MSTrial, MSPhantom, MS_ARMS, MS_TABULAR, ms_arm_index

def test_arm_index():
    assert [ms_arm_index(a) for a in MS_ARMS] == [0, 1, 2]
    for bad in ('drug_c', 3, -1, True, None, 1.0):
        with pytest.raises(ValueError, match='unknown arm'): ms_arm_index(bad)

def test_bad_settings():
    with pytest.raises(ValueError, match='horizon=0: expected'): MSTrial(horizon=0)
    with pytest.raises(ValueError, match='p_miss'): MSTrial(p_miss=1.0)
    with pytest.raises(ValueError, match='mc'): MSTrial(mc=0)
    with pytest.raises(ValueError, match=r'n=0.*patients'): MSTrial().simulate(0)
    with pytest.raises(ValueError, match='outside the trial'): MSTrial().simulate(3, seed=0).cate('drug_a', t=5)
    with pytest.raises(ValueError, match='not an allowed value'): MSPhantom().sample(2, seed=0, arm='drug_c')

def test_shapes_and_truth():
    tr = MSTrial(seed=1).simulate(30, seed=2)
    G, A = len(tr.grid), len(MS_ARMS)
    assert tr.latent.shape == tr.disability.shape == tr.expected.shape == (30, A, G)
    assert tr.tabular().shape == (30, len(MS_TABULAR)) and tr.baseline.images.shape == (30, 1, 64, 64)
    assert np.all(tr.mask[:, 0]) and np.array_equal(tr.visit_y[:, 0], tr.baseline.attrs['edss0'].to_numpy())
    y = tr.visit_y[tr.mask]; assert np.all((y >= 0) & (y <= 10) & (y * 2 == np.round(y * 2)))
    assert np.all(np.isnan(tr.visit_y[~tr.mask]))
    assert np.allclose(tr.cate('placebo'), 0) and np.all(tr.cate('drug_a') <= 1e-9)   # drugs only slow progression
    sub = tr[np.arange(5)]
    assert len(sub) == 5 and np.array_equal(sub.latent, tr.latent[:5])

def test_do_arm_changes_nothing_at_baseline():
    ph = MSPhantom(seed=0)
    b = ph.sample(8, seed=3)
    cf = ph.counterfactual(b, arm='drug_b')
    assert (cf.attrs['arm'] == 'drug_b').all()
    assert cf.attrs.drop(columns='arm').equals(b.attrs.drop(columns='arm'))   # randomization: no parents, no children at baseline
    import torch; assert torch.equal(cf.images, b.images)


def test_index_one_patient():
    "An int or numpy int selects one patient, as a slice of one does (was a TypeError)."
    d = MSTrial().simulate(3, seed=0)
    for i in (1, np.int64(1)):
        one = d[i]
        assert len(one) == 1 and np.array_equal(one.visit_y, d[1:2].visit_y, equal_nan=True)


def test_trial_settings_accept_numpy_and_name_bad_seeds():
    "numpy numbers are settings like Python's (np.int64(12) was refused); a negative seed is named, not a numpy error."
    assert len(MSTrial(steps_per_year=np.int64(12), mc=np.int64(8), horizon=np.float32(2.0)).simulate(2, seed=0)) == 2
    with pytest.raises(ValueError, match='horizon'): MSTrial(horizon=float('inf'))
    with pytest.raises(ValueError, match='seed=-1'): MSTrial(seed=-1)
    with pytest.raises(ValueError, match='seed=-1'): MSTrial().simulate(2, seed=-1)


def test_dense_schedule_keeps_a_visit_that_took_place():
    "Two visits clipped onto one grid point: the earlier one was dropped even when the later one was missed (a patient lost an attended horizon visit)."
    import numpy as np
    from medcf.phantoms import MSTrial
    tr = MSTrial(seed=0, visit_every=1 / 12, p_miss=0.5)
    n, V, G = 3, 25, len(tr.grid)
    class Rng:  # scripted draws: no jitter but +1 on the second-to-last visit (it lands on the horizon with the last one)
        def __init__(self): self.calls = 0
        def integers(self, lo, hi, size): j = np.zeros(size, int); j[:, -2] = 1; return j
        def random(self, size):
            self.calls += 1
            r = np.ones(size)
            if self.calls == 1: r[0, -1] = 0.0; r[1, -2] = 0.0  # patient 0 misses the last visit, patient 1 the one before it
            return r
    noise = np.zeros((n, 64)); noise[:, V - 2] = 0.5  # the second-to-last visit reads 3.5, the last 3.0
    idx, y = tr._visits(Rng(), n, np.full((n, G), 3.0), noise)
    assert (idx[:, -2] == -1).all() and (idx[:, -1] == G - 1).all()  # one visit on the point, in the last column (the final visit)
    assert y[:, -1].tolist() == [3.5, 3.0, 3.0]  # patient 0's attended visit moved into its missed last slot; the others keep the last


def test_sigma_is_checked_where_it_is_read():
    "Session 52 (nb 50 exercise 1, 'set sigma to zero for all arms'): trial.sigma = 0 failed with \"'int' object is not subscriptable\", a pair with an IndexError, and -0.5 or NaN ran."
    from medcf.phantoms import MSTrial
    for bad, msg in ((0, r"sigma=0: expected one volatility per arm \['placebo', 'drug_a', 'drug_b'\], e.g. \(0.0, 0.0, 0.0\)"), ((0.1, 0.1), r"sigma=\(0.1, 0.1\): expected one volatility per arm"),
                     ((-0.5, 0.1, 0.1), r"sigma\[0\] \(placebo\)=-0.5: expected a finite volatility >= 0"), ((0.1, float('nan'), 0.1), r"sigma\[1\] \(drug_a\)=nan")):
        tr = MSTrial(size=32, seed=0, mc=4); tr.sigma = bad
        with pytest.raises(ValueError, match=msg): tr.simulate(3)
    class ODE(MSTrial): sigma = (0., 0., 0.)
    d = ODE(size=32, seed=0, mc=4).simulate(3)
    tr = MSTrial(size=32, seed=0, mc=4); tr.sigma = [0, 0, 0]  # a list of ints is the same world
    assert np.array_equal(tr.simulate(3).latent, d.latent)
