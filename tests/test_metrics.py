"Tests for medcf.metrics: known values, bad input, and the counterfactual metrics on ideal / do-nothing editors."
import warnings
import numpy as np, pandas as pd, pytest, torch
from medcf import metrics as M
from medcf.phantoms import SCMPhantom, Variable

class Toy(SCMPhantom):
    "Binary `bar` (a bright bar); its child `glow` brightens the whole image; `tone` (0/1) shifts the background."
    channels = 1
    def _variables(self):
        return [Variable('bar', [0, 1], mechanism=lambda p, u: (u < 0.5).astype(int)),
                Variable('tone', [0, 1], mechanism=lambda p, u: (u < 0.5).astype(int))]
    def _draw_noise(self, rng, n): return dict(bar=rng.uniform(0, 1, n), tone=rng.uniform(0, 1, n), tex=rng.normal(0, .02, (n, 1, self.size, self.size)))
    def _render(self, v, noise):
        s = self.size; x = torch.full((len(v), 1, s, s), -0.8) + 0.3 * torch.tensor(v['tone'].to_numpy(), dtype=torch.float32)[:, None, None, None]
        x[torch.tensor(v['bar'].to_numpy() == 1), :, s // 4: s // 2, :] = 0.9
        return (x + torch.tensor(noise['tex'], dtype=torch.float32)).clamp(-1, 1)
    def _prompt(self, row): return 'bar' if row['bar'] else 'no bar'

def reader(images):
    "A perfect oracle for Toy: reads the bar rows and the background."
    return pd.DataFrame(dict(bar=(images[:, 0, 4:8].mean((1, 2)) > 0.5).long().numpy(),
                             tone=(images[:, 0, -4:].mean((1, 2)) > -0.65).long().numpy()))

@pytest.fixture
def setup():
    ph = Toy(size=16); b = ph.sample(20, seed=0)
    return ph, b, {'bar': 1 - b.attrs.bar.to_numpy()}

def test_auroc_known_values():
    assert M.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert M.auroc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0 and M.auroc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert M.auroc([0.5] * 4, [0, 1, 0, 1]) == 0.5  # ties count one half
    with pytest.raises(ValueError, match='both classes'): M.auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match='only 0 and 1'): M.auroc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match='empty'): M.auroc([], [])
    with pytest.raises(ValueError, match='mismatch'): M.auroc([0.1, 0.2, 0.3], [0, 1])

def test_accuracy_and_groups():
    assert M.accuracy([1, 0, 1], [1, 1, 1]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r'pred has shape \(2,\) but labels \(3,\)'): M.accuracy([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match='pred has shape'): M.accuracy([1], [1, 0, 1])  # would broadcast without the check
    assert M.worst_group_accuracy([0, 1, 1, 0], [0, 1, 0, 0], ['a', 'a', 'b', 'b']) == 0.5
    g = M.group_accuracies([0, 1, 1, 0], [0, 1, 0, 0], ['a', 'a', 'b', 'b'])
    assert g.group.tolist() == ['b', 'a'] and g.n.tolist() == [2, 2]

def test_calibration_known_values():
    rng = np.random.default_rng(0); p = rng.uniform(0, 1, 50_000); y = (rng.uniform(0, 1, 50_000) < p).astype(int)
    assert M.expected_calibration_error(p, y) < 0.01  # a calibrated sampler
    assert M.expected_calibration_error(np.where(p > .5, 1., 0.), y) > 0.2  # an over-confident one
    assert M.nll([1.0, 0.0], [1, 0]) == pytest.approx(0, abs=1e-9)
    assert M.nll([[0.5, 0.5]] * 3, [0, 1, 1]) == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match='logits'): M.nll([1.5, -0.2], [1, 0])
    with pytest.raises(ValueError, match='sum to 1'): M.nll([[0.5, 0.6]], [0])
    with pytest.raises(ValueError, match='lie in'): M.nll([[0.5, 0.5]], [2])
    r = M.reliability_curve(p, y, 10)
    assert r['count'].sum() == len(p) and (r.confidence >= 0.5).all()

def test_accuracy_rejection_curve():
    conf = np.array([0.9, 0.8, 0.3, 0.2]); ok = np.array([True, True, False, False])
    c = M.accuracy_rejection_curve(conf, ok, rates=[0, 0.5])
    assert c.accuracy.tolist() == [0.5, 1.0] and c.n_kept.tolist() == [4, 2]
    with pytest.raises(ValueError): M.accuracy_rejection_curve(conf, ok, rates=[1.0])

def test_frechet_distance():
    rng = np.random.default_rng(0); a = rng.normal(size=(2000, 4))
    assert M.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert M.frechet_distance(a, a + 1) == pytest.approx(4, rel=1e-6)  # mean shift of 1 in 4 dims
    assert M.frechet_distance(a, 2 * a) == pytest.approx(4 * 1, rel=0.05)  # Tr(S + 4S - 2*2S) = Tr(S) ~ 4
    with pytest.raises(ValueError, match='same D'): M.frechet_distance(a, a[:, :3])
    with pytest.raises(ValueError, match='at least 2'): M.frechet_distance(a[:1], a)

def test_true_counterfactual_is_perfect_identity_is_not(setup):
    ph, b, tgt = setup
    true_edit = M.true_counterfactual_editor(ph, b)
    good = M.counterfactual_report(true_edit, ph, b, reader, bar=tgt['bar'])
    assert good.effectiveness == 1 and good.mae_inside == 0 and good.mae_outside == 0 and good.leakage_max == 0
    assert good.composition == 0 and good.reversibility == 0 and good.minimality == 1
    idle = M.counterfactual_report(M.identity_editor, ph, b, reader, bar=tgt['bar'])
    assert idle.effectiveness == 0 and idle.mae_inside > 0.5 and idle.minimality == 0 and idle.composition == 0

def test_leaky_editor_is_caught(setup):
    ph, b, tgt = setup
    def leaky(images, target):  # right bar, but it also brightens the background (changes `tone`)
        return (ph.counterfactual(b, **target).images + 0.4).clamp(-1, 1)
    r = M.counterfactual_report(leaky, ph, b, reader, bar=tgt['bar'])
    assert r.effectiveness == 1 and r.mae_outside > 0.2 and r.leakage_worst == 'tone' and r.composition > 0.2

def test_counterfactual_error_region(setup):
    ph, b, tgt = setup
    cf = ph.counterfactual(b, **tgt)
    reg = M.changed_region(b.images, cf.images)
    assert reg.shape == (20, 16, 16) and reg[:, 4:8].all() and not reg[:, 10:].any()
    e = M.counterfactual_error(b.images, true_cf=cf.images, factual=b.images)
    assert (e.mae_outside < 0.05).all() and (e.mae_inside > 1).all()
    with pytest.raises(ValueError, match='shape'): M.counterfactual_error(b.images[:3], true_cf=cf.images, factual=b.images)
    with pytest.raises(TypeError, match='positional'): M.counterfactual_error(b.images, cf.images, b.images)  # swapping the references looked perfect
    with pytest.raises(TypeError, match='positional'): M.minimality(b.images, b.images, cf.images)
    x = torch.zeros(2, 1, 8, 8)
    with pytest.warns(UserWarning, match='none below 0'): whole = M.counterfactual_error(x, true_cf=x + 1, factual=x)  # the whole image changes: nothing is outside
    assert whole.region_frac.eq(1).all() and whole.mae_outside.isna().all() and whole.mae_inside.eq(1).all()
    with pytest.raises(ValueError, match='channel|rank'): M.changed_region(b.images[:, 0], cf.images[:, 0])

def test_edit_fn_contract(setup):
    ph, b, tgt = setup
    with pytest.raises(ValueError, match='shape'): M.composition(lambda x, t: x[:, :, :8], b.images, {'bar': b.attrs.bar.to_numpy()})
    with pytest.raises(ValueError, match='same attributes'): M.reversibility(M.identity_editor, b.images, {'bar': 0}, {'tone': 1})
    with pytest.raises(ValueError, match='does not read'): M.effectiveness(reader, b.images, {'size': 1})
    with pytest.raises(ValueError, match='not observed'): M.counterfactual_report(M.identity_editor, ph, b, reader, hidden=1)


def test_proportion_interval_known_values_and_bad_input():
    "Wilson intervals against published values (0/10 -> [0, .2775], 5/10 -> [.2366, .7634]); counts are checked."
    lo, hi = M.proportion_interval(0, 10); assert lo == 0.0 and abs(hi - 0.27753) < 1e-4
    lo, hi = M.proportion_interval(5, 10); assert abs(lo - 0.23659) < 1e-4 and abs(hi - 0.76341) < 1e-4
    lo, hi = M.proportion_interval(10, 10); assert hi == 1.0 and abs(lo - 0.72247) < 1e-4
    assert M.proportion_interval(50, 100, level=0.99)[0] < M.proportion_interval(50, 100)[0]  # wider at higher coverage
    with pytest.raises(ValueError, match='0 <= successes <= n'): M.proportion_interval(11, 10)
    with pytest.raises(ValueError, match='0 <= successes <= n'): M.proportion_interval(0, 0)
    with pytest.raises(TypeError, match='integer count'): M.proportion_interval(0.5, 10)
    with pytest.raises(ValueError, match='coverage'): M.proportion_interval(1, 10, level=95)


def test_rate_count_recovers_counts_and_refuses_other_rates():
    "Every k/256 rounded to 4 decimals comes back as k; a rate that is no count of n, a bad n or a rate outside [0, 1] raises."
    assert [M.rate_count(round(k / 256, 4), 256) for k in range(257)] == list(range(257))
    assert M.rate_count(0.944, 1000) == 944 and M.rate_count(2 / 3, 3, decimals=6) == 2
    with pytest.raises(ValueError, match='not a count of n=100'): M.rate_count(0.9727, 100)
    with pytest.raises(ValueError, match='could be any count from 29180 to 29182'): M.rate_count(0.9727, 30000)  # 4 decimals cannot tell them apart
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match='positive integer'): M.rate_count(0.5, bad)
    with pytest.raises(ValueError, match=r'in \[0, 1\]'): M.rate_count(1.2, 10)

def test_labels_of_one_kind():
    "Mistakes that used to return a plausible number: probabilities or text against class labels, missing groups."
    with pytest.raises(ValueError, match='not probabilities'): M.accuracy([0.7, 0.2, 0.9], [1, 0, 1])
    with pytest.raises(TypeError, match='one kind'): M.accuracy(['Male', 'Female'], [1, 0])
    assert M.accuracy(np.array([1., 0.]), [1, 1]) == 0.5  # whole-number floats are labels
    with pytest.raises(ValueError, match=r'groups has missing values .* at positions \[1\]'): M.group_accuracies([1, 0, 1, 1], [1, 0, 0, 1], ['a', None, 'b', 'b'])
    with pytest.raises(ValueError, match='1-d'): M.group_accuracies(np.eye(3), [1, 0, 1], ['a', 'b', 'b'])
    with pytest.raises(ValueError, match='eps'): M.nll([0.2, 0.9], [0, 1], eps=0)
    with pytest.raises(ValueError, match='1-d'): M.accuracy_rejection_curve(np.ones((3, 2)), [1, 0, 1])
    assert len(M.accuracy_rejection_curve([0.9, 0.2, 0.6], [1, 0, 1], rates=0.5)) == 1  # a single rate is a list of one

def test_counterfactual_metric_input_checks(setup):
    ph, b, target = setup
    cf = ph.counterfactual(b, **target)
    with pytest.raises(ValueError, match=r'\(0, 2\)'): M.changed_region(b.images, cf.images, threshold=5)
    with pytest.raises(TypeError, match='string'): M.leakage(reader, cf.images, cf.images, intervened='bar')
    with pytest.raises(ValueError, match='does not read'): M.leakage(reader, cf.images, cf.images, intervened=['barr'])
    with pytest.raises(ValueError, match='rows'): M.leakage(lambda x: reader(x[:2]), cf.images, cf.images)
    with pytest.raises(ValueError, match='missing'): M.effectiveness(reader, cf.images, {'bar': None})
    with pytest.raises(TypeError, match='one kind'): M.effectiveness(reader, cf.images, {'bar': '1'})
    with pytest.raises(ValueError, match='non-empty'): M.reversibility(M.identity_editor, b.images, {}, {})
    with pytest.raises(ValueError, match='positive integer'): M.composition(M.identity_editor, b.images, {'bar': 0}, n_apply=0)
    grad = cf.images.clone().requires_grad_(True)  # an editor whose output carries a graph
    assert len(M.counterfactual_error(grad, true_cf=cf.images, factual=b.images)) == len(b.images)

def test_effectiveness_reads_the_oracle_specs():
    "With an AttributeOracle the attribute's kind comes from its spec: an int age is a continuous target, an unknown value an error."
    from medcf.oracles import load_oracle
    from medcf.phantoms import ChestPhantom
    o, x = load_oracle('chest'), ChestPhantom(size=64, seed=0).sample(4, seed=3).images
    mae = M.effectiveness(o, x, {'age': 70})['age']
    assert mae == pytest.approx(M.effectiveness(o, x, {'age': 70.0})['age']) and mae > 0
    with pytest.raises(ValueError, match='not a value the oracle reads'): M.effectiveness(o, x, {'effusion': 2})

def test_effectiveness_checks_the_same_with_a_bound_predict():
    "oracle.predict (how notebooks pass it) is checked against the oracle's specs like the oracle itself (it used to score 2 as 0.0)."
    from medcf.oracles import load_oracle
    from medcf.phantoms import ChestPhantom
    o, x = load_oracle('chest'), ChestPhantom(size=64, seed=0).sample(4, seed=3).images
    for target in ({'effusion': 2}, {'effusion': 0.5}, {'sex': 'female'}):
        with pytest.raises(ValueError, match='not a value the oracle reads'): M.effectiveness(o.predict, x, target)
    assert M.effectiveness(o.predict, x, {'age': 70}) == M.effectiveness(o, x, {'age': 70})

def test_report_never_averages_a_share_with_an_error():
    "A continuous intervention gets its own column in its units; `effectiveness` is the discrete attributes' share only."
    from medcf.oracles import load_oracle
    from medcf.phantoms import ChestPhantom
    ph = ChestPhantom(size=64, seed=0); b = ph.sample(8, seed=0); o = load_oracle('chest')
    ed = M.true_counterfactual_editor(ph, b)
    both = M.counterfactual_report(ed, ph, b, o.predict, age=80.0, effusion=1)
    eff = M.effectiveness(o, ph.counterfactual(b, age=80.0, effusion=1).images, {'age': 80.0, 'effusion': 1})
    assert both.effectiveness == eff['effusion'] and both.effectiveness_mae_age == pytest.approx(eff['age']) and eff['age'] > 0
    age_only = M.counterfactual_report(ed, ph, b, o.predict, age=80.0)
    assert np.isnan(age_only.effectiveness) and age_only.effectiveness_mae_age > 0

def test_leakage_refuses_an_attribute_it_would_drop(setup):
    "An attribute asked for by name that discrete_only leaves out is an error, not a silent omission (the report used to say 0.0)."
    ph, b, tgt = setup
    def with_age(images): return reader(images).assign(age=images.mean((1, 2, 3)).numpy() * 50 + 50)
    cf = ph.counterfactual(b, **tgt)
    assert 'age' in M.leakage(with_age, cf.images * 0.9, cf.images, intervened=['bar'], attributes=['age'])
    with pytest.raises(ValueError, match='continuous'): M.leakage(with_age, cf.images, cf.images, ['bar'], discrete_only=True, attributes=['age', 'tone'])


def test_report_gives_continuous_leakage_in_its_units(setup):
    "The report's leakage was over discrete attributes only: an editor that made every patient 7 years younger scored leakage 0 (a language edit's real side effect, 2503.23618)."
    ph, b, tgt = setup
    def with_age(images): return reader(images).assign(age=images.mean((1, 2, 3)).numpy() * 50 + 50)
    true = M.true_counterfactual_editor(ph, b)
    shifted = lambda x, target: (true(x, target) - 0.1).clamp(-1, 1)  # reads younger, the rest as the truth
    ok, bad = (M.counterfactual_report(ed, ph, b, with_age, edit_checks=False, **tgt) for ed in (true, shifted))
    assert ok.leakage_mae_age == 0 and bad.leakage_mae_age > 3
    only = M.counterfactual_report(shifted, ph, b, with_age, leakage_attributes=['age'], edit_checks=False, **tgt)  # was refused
    assert np.isnan(only.leakage_max) and only.leakage_mae_age == bad.leakage_mae_age
    assert 'leakage_mae_age' not in M.counterfactual_report(true, ph, b, with_age, leakage_attributes=['tone'], edit_checks=False, **tgt)

def test_accuracy_refuses_probabilities_on_either_side_and_missing_values():
    with pytest.raises(ValueError, match='labels holds non-integer'): M.accuracy([1, 0], [0.7, 0.2])  # sklearn's (y_true, y_pred) order
    with pytest.raises(ValueError, match='labels holds non-integer'): M.accuracy(np.array([1., 0.]), [0.7, 0.2])
    with pytest.raises(ValueError, match='missing'): M.accuracy(pd.Series(['a', None, 'b']), pd.Series(['a', 'b', 'b']))
    with pytest.raises(ValueError, match='missing'): M.accuracy(np.array([1, np.nan, 0], dtype=object), [1, 1, 0])
    with pytest.raises(ValueError, match='missing'): M.worst_group_accuracy([1, 0], [1, None], ['a', 'b'])
    assert M.accuracy([0.5, 1.5], [0.5, 2.5]) == 0.5  # non-integer values on both sides are values, compared as such

def test_frechet_distance_of_one_feature():
    "D = 1 is an N x 1 input like any other (np.cov returns a scalar there): the 1-d Gaussian formula."
    rng = np.random.default_rng(0); a, b = rng.normal(size=(4000, 1)), 1 + 2 * rng.normal(size=(4000, 1))
    sa, sb = a.std(ddof=1), b.std(ddof=1)
    assert M.frechet_distance(a, b) == pytest.approx((a.mean() - b.mean()) ** 2 + (sa - sb) ** 2, rel=1e-9)


def test_nll_says_when_the_floor_sets_it():
    "A true label given probability 0 is floored at eps: the mean then depends on eps, and a warning says how many were floored."
    with pytest.warns(UserWarning, match=r'1 of 2 true labels have probability below eps=1e-12 \(exactly 0 for 1\)'):
        assert M.nll([0.0, 1.0], [1, 1]) == pytest.approx(-np.log(1e-12) / 2)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error'); M.nll([0.3, 0.9], [1, 1])  # nothing floored, nothing said


def test_rejection_curve_is_independent_of_the_order_of_ties():
    "Saturated confidences tie; the samples tied at the cut count by their mean accuracy, so the curve does not depend on input order."
    c, ok = np.array([1, 1, 1, 1, .6, .6]), np.array([1, 1, 0, 0, 1, 0])
    a, b = (M.accuracy_rejection_curve(c[o], ok[o], rates=[0, 0.5]).accuracy.tolist() for o in (np.arange(6), np.arange(6)[::-1]))
    assert a == b == [pytest.approx(0.5), pytest.approx(0.5)]  # 3 kept of the four tied at 1.0, half of which are right


def test_report_without_a_checked_attribute_says_nan(setup):
    "When no attribute is left to check for leakage, leakage_max is NaN (it read 0.0: 'no leakage')."
    ph, b, tgt = setup
    r = M.counterfactual_report(M.identity_editor, ph, b, reader, leakage_attributes=[], **tgt)
    assert np.isnan(r.leakage_max) and r.leakage_worst == ''


def test_an_editor_that_asks_is_told_its_source(setup):
    "An edit_fn with a `source` parameter is told the values its input images have (a text editor's source caption): the factual ones, then the target's when reversibility edits back; one without it is called as before."
    ph, b, tgt = setup
    told = []
    def captioned(images, target, source):  # renders the truth for the asked values, from the values it is told the images have
        told.append((source['bar'].tolist(), target['bar'].tolist()))
        assert (ph.counterfactual(b, **source).images - images).abs().max() < 1e-6, "told the values the images really have"
        return ph.counterfactual(b, **target).images
    r = M.counterfactual_report(captioned, ph, b, reader, bar=tgt['bar'])
    fact, flip = b.attrs.bar.tolist(), tgt['bar'].tolist()
    assert told == [(fact, flip), (fact, fact), (fact, flip), (flip, fact)]  # edit; composition's null edit; reversibility there and back
    assert r.reversibility == 0 and r.composition == 0 and r.effectiveness == 1
    assert M.reversibility(M.identity_editor, b.images, {'bar': fact}, tgt) == 0  # two-argument editors: unchanged


def test_the_source_protocol_reaches_a_wrapped_module(setup):
    "A functools.partial of an nn.Module whose forward names source is told it (Module.__call__'s *args, **kwargs hid it)."
    import functools
    ph, b, tgt = setup
    class Ed(torch.nn.Module):
        def forward(self, images, target, source, scale=1.0): return ph.counterfactual(b, **target).images
    assert M.reversibility(functools.partial(Ed(), scale=1.0), b.images, {'bar': b.attrs.bar.to_numpy()}, tgt) == 0


def test_hold_keeps_a_variable_in_the_true_counterfactual():
    "hold= scores against the counterfactual that keeps named variables (hidden ones too) at their factual values: an editor that keeps the chest drains is exact there, and leaks against the plain one."
    from medcf.phantoms import ChestPhantom
    from medcf.oracles import load_oracle
    ph = ChestPhantom(64, seed=0); b = ph.sample(16, seed=3, effusion=1); o = load_oracle('chest')
    assert (ph.counterfactual(b, effusion=0).truth.chest_tube != b.truth.chest_tube).any()  # the SCM's drains go with the effusion
    keep = lambda images, target: ph.counterfactual(b, **target, chest_tube=b.truth.chest_tube.to_numpy()).images
    held = M.counterfactual_report(keep, ph, b, o.predict, effusion=0, hold=['chest_tube'])
    plain = M.counterfactual_report(keep, ph, b, o.predict, effusion=0)
    assert held.mae_inside == held.mae_outside == 0 and plain.mae_inside > 0
    with pytest.raises(ValueError, match='not variables'): M.counterfactual_report(keep, ph, b, o.predict, effusion=0, hold=['drain'])
    with pytest.raises(ValueError, match='intervened on'): M.counterfactual_report(keep, ph, b, o.predict, effusion=0, hold=['effusion'])
    for bad in ('chest_tube', {'chest_tube': 0}, None):
        with pytest.raises(TypeError, match='sequence of variable names'): M.counterfactual_report(keep, ph, b, o.predict, effusion=0, hold=bad)


def test_groups_from_attribute_columns():
    "group_accuracies and worst_group_accuracy take a DataFrame (or N x k array) of attributes and group by their combinations."
    pred, y = np.array([1, 1, 0, 0, 1, 0]), np.array([1, 0, 0, 0, 1, 1])
    g = pd.DataFrame(dict(effusion=[1, 1, 0, 0, 1, 1], devices=[1, 0, 0, 0, 1, 0]))
    with pytest.warns(UserWarning, match=r"'effusion=0, devices=1'"): t = M.group_accuracies(pred, y, g)  # the one combination absent is named
    assert set(t.group) == {'effusion=1, devices=1', 'effusion=1, devices=0', 'effusion=0, devices=0'}
    assert t.set_index('group').accuracy['effusion=1, devices=0'] == 0 and M.worst_group_accuracy(pred, y, g.to_numpy()) == 0


def test_group_weights_balance_the_groups_group_accuracies_scores():
    "Every group present gets the same total weight (mean 1), with the groups `group_accuracies` forms from the same input."
    rng = np.random.default_rng(0)
    df = pd.DataFrame(dict(melanoma=rng.integers(0, 2, 500), ruler=(rng.random(500) < 0.1).astype(int)))
    w = M.group_weights(df)
    g = M.group_ids(df)
    totals = pd.Series(w).groupby(g).sum()
    assert len(totals) == 4 and np.allclose(totals, 500 / 4) and np.isclose(w.mean(), 1)
    assert set(totals.index) == set(M.group_accuracies(df.melanoma, df.melanoma, df).group)
    assert np.allclose(M.group_weights(df.to_numpy()), w) and np.allclose(M.group_weights(g), w)
    assert np.allclose(M.group_weights(['a', 'a', 'a', 'b']), [2 / 3, 2 / 3, 2 / 3, 2])


def test_groups_with_missing_values_are_refused_not_named_nan():
    df = pd.DataFrame(dict(a=[0, 1, np.nan], b=[1, 1, 0]))
    with pytest.raises(ValueError, match=r"missing values .* rows \[2\] \(columns \['a'\]\)"): M.group_weights(df)
    with pytest.raises(ValueError, match='missing values'): M.group_accuracies([0, 1, 0], [0, 1, 1], df)
    with pytest.raises(ValueError, match='NaN'): M.group_weights(df.to_numpy())
    with pytest.raises(ValueError, match='no columns'): M.group_weights(df[[]])
    with pytest.raises(ValueError, match='empty'): M.group_weights([])
    with pytest.raises(ValueError, match='one id per sample'): M.group_weights(np.zeros((2, 2, 2)))


def test_channel_last_images_are_refused_by_the_region_metrics():
    "An N x H x W x 3 batch passed the rank check: region 0.989 of the image and plausible errors over the wrong axes (skin audit)."
    x = torch.rand(2, 3, 16, 16) * 2 - 1; y = x.clone(); y[:, :, :4] = 0
    h = lambda t: t.permute(0, 2, 3, 1)
    with pytest.raises(ValueError, match=r'channel-last batch\? expected N x C x H x W'): M.counterfactual_error(h(x), true_cf=h(y), factual=h(x))
    with pytest.raises(ValueError, match='channel-last'): M.changed_region(h(x), h(y))
    with pytest.raises(ValueError, match='channel-last'): M.minimality(h(x), factual=h(x), true_cf=h(y))
    assert M.counterfactual_error(x, true_cf=y, factual=x).region_frac.tolist() == [0.25, 0.25]
    lat = torch.rand(2, 4, 8, 8) * 2 - 1; assert M.changed_region(lat, lat).shape == (2, 8, 8)  # 4-channel latents still measure


def test_pandas_inputs_with_different_indexes_are_refused():
    "Values are paired by position: a shuffled Series scored accuracy 0.44 and 0.67 per group for a perfect classifier, without a word."
    a = pd.DataFrame(dict(m=np.random.default_rng(0).integers(0, 2, 50), r=np.random.default_rng(1).integers(0, 2, 50)))
    shuffled = a.m.sample(frac=1, random_state=0)
    for f in (lambda: M.group_accuracies(a.m, shuffled, a.r), lambda: M.accuracy(a.m, shuffled), lambda: M.auroc(a.r.astype(float), shuffled),
              lambda: M.nll(pd.Series(np.full(50, .5)), shuffled), lambda: M.expected_calibration_error(pd.Series(np.full(50, .5)), shuffled),
              lambda: M.accuracy_rejection_curve(pd.Series(np.ones(50)), shuffled), lambda: M.group_accuracies(a.m, a.m, a.iloc[::-1])):
        with pytest.raises(ValueError, match='different indexes'): f()
    assert M.accuracy(a.m, shuffled.loc[a.m.index]) == 1.0 and M.worst_group_accuracy(a.m, a.m, a) == 1.0  # aligned: fine
    assert M.accuracy(a.m, a.m.to_numpy()) == 1.0  # one pandas input pairs by position, as documented


def test_absent_combinations_of_group_columns_are_named():
    df = pd.DataFrame(dict(melanoma=[0, 0, 1, 1, 0], tone=[1, 2, 1, 1, 6]))
    with pytest.warns(UserWarning, match=r"2 combination\(s\).*no accuracy.*'melanoma=1, tone=2', 'melanoma=1, tone=6'"): M.group_accuracies(df.melanoma, df.melanoma, df)
    with pytest.warns(UserWarning, match='no weight can draw them'): M.group_weights(df)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error'); M.group_weights(df.iloc[:4].assign(tone=[1, 2, 1, 2]))  # every combination present: silent


def test_holding_a_variable_the_batch_was_drawn_under_warns():
    "A batch drawn with do(ruler=1) keeps ruler=1 in every counterfactual, so hold=('ruler',) changed nothing and gave the plain row without a word."
    from medcf.phantoms import SkinPhantom
    ph = SkinPhantom(32)
    b = ph.sample(4, seed=5, melanoma=1, ruler=1)
    predict = lambda x: pd.DataFrame(dict(melanoma=np.ones(len(x), int), ruler=np.ones(len(x), int)))
    with pytest.warns(UserWarning, match=r"\['ruler'\] already keep their values: the batch was drawn under do\(ruler=...\)"):
        M.counterfactual_report(M.identity_editor, ph, b, predict, leakage_attributes=['ruler'], hold=('ruler',), melanoma=0)


def test_group_ids_of_mixed_types_and_lists_of_rows():
    "group_weights sorted ids with np.unique, so ids of mixed types (which groupby takes) failed with a bare TypeError."
    mixed = pd.Series([1, 'a', 1, 'a', 'a'], dtype=object)
    assert np.allclose(M.group_weights(mixed), [1.25, 5 / 6, 1.25, 5 / 6, 5 / 6]) and len(M.group_accuracies([1] * 5, [1] * 5, mixed)) == 2
    with pytest.raises(ValueError, match=r'groups has shape \(2, 5\)'): M.group_weights([np.zeros(5), np.ones(5)])  # a list of columns is not N ids


def test_group_accuracies_give_each_group_its_interval():
    "Each group's accuracy comes with its Wilson interval; a group of 3 is wide, a group of 300 narrow, and `level` sets the coverage."
    g = np.array(['small'] * 3 + ['big'] * 300); y = np.ones(303, int); p = y.copy(); p[[0, 3, 4, 5]] = 0
    t = M.group_accuracies(p, y, g).set_index('group')
    assert list(t.columns) == ['n', 'accuracy', 'lo', 'hi'] and t.loc['small', 'n'] == 3
    for grp in t.index:
        k, n = round(t.loc[grp, 'accuracy'] * t.loc[grp, 'n']), int(t.loc[grp, 'n'])
        assert (t.loc[grp, 'lo'], t.loc[grp, 'hi']) == pytest.approx(M.proportion_interval(k, n))
    assert t.loc['small', 'hi'] - t.loc['small', 'lo'] > 3 * (t.loc['big', 'hi'] - t.loc['big', 'lo'])
    wide, narrow = M.group_accuracies(p, y, g, level=0.99).set_index('group'), M.group_accuracies(p, y, g, level=0.5).set_index('group')
    assert (wide.hi - wide.lo > narrow.hi - narrow.lo).all()
    with pytest.raises(ValueError, match='coverage in'): M.group_accuracies(p, y, g, level=95)


def test_of_tied_worst_groups_the_best_measured_speaks():
    "Groups a (1 sample) and b (20) both score 0: the figure is b's, whose interval [0, 0.16] says something, so no small-group warning."
    g = ['a'] + ['b'] * 20 + ['c'] * 20
    pred, y = np.r_[np.zeros(21), np.ones(20)], np.r_[np.ones(21), np.ones(20)]
    with warnings.catch_warnings(): warnings.simplefilter('error'); assert M.worst_group_accuracy(pred, y, g) == 0.0
    with pytest.warns(UserWarning, match='the worst group, a, has 1 samples'): M.worst_group_accuracy(pred[[0, 21]], y[[0, 21]], ['a', 'c'])

def test_worst_group_warning_points_at_the_callers_line():
    "worst_group_accuracy's absent-group warning pointed at a line inside metrics.py, not at the user's call."
    df = pd.DataFrame(dict(melanoma=[0, 0, 1, 1, 0], tone=[1, 2, 1, 1, 6]))
    for f in (M.worst_group_accuracy, M.group_accuracies):
        with pytest.warns(UserWarning, match='no accuracy') as rec: f(df.melanoma, df.melanoma, df)
        assert rec[0].filename == __file__, (f.__name__, rec[0].filename)
    with pytest.warns(UserWarning, match='no weight') as rec: M.group_weights(df)
    assert rec[0].filename == __file__


def test_prediction_flips_and_their_input_checks(setup):
    ph, b, do = setup
    cf = ph.counterfactual(b, **do).images
    bar = lambda x: reader(x).bar.to_numpy()
    assert M.prediction_flips(bar, b.images, cf).all()  # every bar was flipped, and the reader follows it
    assert not M.prediction_flips(lambda x: reader(x).tone.to_numpy(), b.images, cf).any()  # the tone stays
    with pytest.raises(TypeError, match='select a column'): M.prediction_flips(reader, b.images, cf)
    with pytest.raises(ValueError, match='threshold probabilities first'): M.prediction_flips(lambda x: x.mean((1, 2, 3)).numpy(), b.images, cf)
    with pytest.raises(ValueError, match=r'expected one label per image, shape \(20,\)'): M.prediction_flips(lambda x: bar(x)[:5], b.images, cf)
    with pytest.raises(ValueError, match='shape'): M.prediction_flips(bar, b.images, cf[:5])


def test_counterfactual_flip_rate_names_what_a_classifier_follows(setup):
    "A reader of the bar flips under do(bar) and not under do(tone); patients the intervention leaves as they were get their own row (no flips for a deterministic classifier, some for a random one)."
    ph, b, _ = setup
    bar = lambda x: reader(x).bar.to_numpy()
    t = M.counterfactual_flip_rate(bar, ph, b, bar=1).set_index('change')
    assert set(t.index) == {'bar 0 -> 1', 'bar 1 -> 1'} and t.n.sum() == len(b)
    assert t.loc['bar 0 -> 1', 'flip_rate'] == 1 and t.loc['bar 1 -> 1', 'flip_rate'] == 0
    lo, hi = M.proportion_interval(int(t.loc['bar 0 -> 1', 'n']), int(t.loc['bar 0 -> 1', 'n']))
    assert (t.loc['bar 0 -> 1', 'lo'], t.loc['bar 0 -> 1', 'hi']) == pytest.approx((lo, hi))
    tone = M.counterfactual_flip_rate(bar, ph, b, tone=1 - b.truth.tone.to_numpy())
    assert (tone.flip_rate == 0).all() and tone.change.str.startswith('tone ').all()
    rng = np.random.default_rng(0)
    coin = M.counterfactual_flip_rate(lambda x: rng.integers(0, 2, len(x)), ph, b, bar=1).set_index('change')
    assert coin.loc['bar 1 -> 1', 'flip_rate'] > 0  # its own randomness, measured where nothing changed
    both = M.counterfactual_flip_rate(bar, ph, b, bar=1, tone=0)
    assert both.change.str.contains(', tone ').all()
    with pytest.raises(ValueError, match='keyword arguments'): M.counterfactual_flip_rate(bar, ph, b)
    with pytest.raises(ValueError, match=r"\['glow'\] are not variables of this phantom"): M.counterfactual_flip_rate(bar, ph, b, glow=1)
    with pytest.raises(ValueError, match='intervened on'): M.counterfactual_flip_rate(bar, ph, b, bar=1, hold=['bar'])


def test_flip_rate_of_a_continuous_intervention_says_only_whether_it_moved():
    "A continuous intervention (age) splits patients by moved / not moved, not into one row per age."
    from medcf.phantoms import ChestPhantom
    ph = ChestPhantom(32); b = ph.sample(6, seed=1)
    age = b.truth.age.to_numpy().copy(); age[:2] += 5.0; age[2] -= 5.0
    t = M.counterfactual_flip_rate(lambda x: np.zeros(len(x), int), ph, b, age=age)
    assert (t.flip_rate == 0).all() and t.set_index('change').n.to_dict() == {'age increased': 2, 'age decreased': 1, 'age unchanged': 3}  # split by direction


def test_holding_what_the_intervention_draws_is_named_not_silent():
    "Holding every device variable under do(devices) left the images as they were: the flip rate read 0 and the shortcut looked honest, without a word."
    from medcf.phantoms import ChestPhantom
    ph = ChestPhantom(32); b = ph.sample(24, seed=5)
    flip = 1 - b.truth.devices.to_numpy()
    kids = [v for v in ChestPhantom.DEVICE_VARIABLES if v != 'devices']
    with pytest.warns(UserWarning, match=r"samples whose \['devices'\] changed, the intervention reaches the image only through the held variables") as rec:
        M.counterfactual_flip_rate(lambda x: np.zeros(len(x), int), ph, b, hold=kids, devices=flip)
    assert rec[0].filename == __file__
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        M.counterfactual_flip_rate(lambda x: np.zeros(len(x), int), ph, b, hold=['chest_tube'], effusion=1 - b.truth.effusion.to_numpy())  # the effusion is still drawn
        M.counterfactual_flip_rate(lambda x: np.zeros(len(x), int), ph, b, hold={'chest_tube', 'line'}, effusion=1)  # a set: order does not matter
    with pytest.raises(ValueError, match=r"\['no_finding'\] are computed from other variables.*hold the variables they are computed from"):
        M.counterfactual_flip_rate(lambda x: np.zeros(len(x), int), ph, b, hold=['no_finding'], effusion=1)


def test_device_variables_keep_every_device():
    "hold=('chest_tube',) was documented as keeping the devices, but lines, tubes and pacemakers follow the disease; DEVICE_VARIABLES keeps them all."
    from medcf.phantoms import ChestPhantom
    ph = ChestPhantom(32)
    b = ph.sample(200, seed=4); b = b[np.flatnonzero((b.truth.effusion == 1) & (b.truth.devices == 1))]
    kinds = {n for n, v in ph.variables.items() if 'devices' in v.parents and n != 'view'}  # every variable that draws a device
    assert set(ChestPhantom.DEVICE_VARIABLES) == {'devices'} | kinds
    drain_only = ph.counterfactual(b, effusion=0, chest_tube=b.truth.chest_tube.to_numpy())
    assert (drain_only.truth.devices == 0).any()  # what the docstring promised and did not do


def test_the_hold_warning_blames_hold_only_where_it_hid_the_change():
    "The warning fired where the plain counterfactual's image did not change either (a hidden variable that draws nothing for those patients), and crashed on images off the CPU."
    from medcf.phantoms import ChestPhantom
    import warnings
    ph = ChestPhantom(32); b = ph.sample(64, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter('error'); warnings.filterwarnings('ignore', message='.*do not descend')  # sex is not downstream: that warning is another's
        M._true_counterfactual(ph, b, ('sex',), dict(severity=1 - b.truth.severity.to_numpy()))
    plain = M._true_counterfactual(ph, b, (), dict(severity=1 - b.truth.severity.to_numpy()))
    assert ((plain.images == b.images).flatten(1).all(1)).any()  # the case: some of those images do not change without hold either
    b.images = b.images.double()  # not the dtype the phantom renders: compared on the CPU all the same
    M._true_counterfactual(ph, b, ('chest_tube',), dict(effusion=1))


def test_report_can_name_every_leakage_and_skip_the_edit_checks(setup):
    "The report ran the editor four times and gave only the worst leakage, so the attribute a study cares about could hide behind another."
    ph, b, do = setup
    calls = []
    def leaky(images, target):
        calls.append(1); cf = ph.counterfactual(b, **target).images
        return torch.where(torch.arange(len(cf))[:, None, None, None] % 2 == 0, ph.counterfactual(b, **target, tone=1 - b.truth.tone.to_numpy()).images, cf)
    full = M.counterfactual_report(leaky, ph, b, reader, leakage_each=True, **do)
    assert len(calls) == 4 and full['leakage_tone'] == full.leakage_max > 0 and full.leakage_worst == 'tone'
    calls.clear()
    quick = M.counterfactual_report(leaky, ph, b, reader, edit_checks=False, **do)
    assert len(calls) == 1 and np.isnan(quick.composition) and np.isnan(quick.reversibility) and 'leakage_tone' not in quick
    assert quick.drop(['composition', 'reversibility']).equals(full.drop(['composition', 'reversibility', 'leakage_tone']))
    with pytest.raises(TypeError, match='edit_checks='): M.counterfactual_report(leaky, ph, b, reader, edit_checks='no', **do)


def test_float32_rounding_above_one_is_a_probability():
    "A float32 softmax summed over classes gives 1.0000001: the calibration metrics refused it, naming a value the caller never passed (1 - p)."
    p = torch.tensor([1.0000001, 0.25, 0.0]); y = [1, 0, 0]
    assert np.isfinite(M.nll(p, y)) and np.isfinite(M.expected_calibration_error(p, y)) and len(M.reliability_curve(p, y))
    with pytest.raises(ValueError, match=r'must lie in \[0, 1\]; got \[0.5, 1.01\]'): M.nll([1.01, 0.5], [1, 0])
    with pytest.raises(ValueError, match=r'got \[-0.2, 0.5\]'): M.nll([-0.2, 0.5], [1, 0])


def test_skin_holds_the_ideal_editor_and_idle_holds():
    "On the skin model: the ideal editor ignored hold and was scored as leaking against the held truth; holding variables the intervention does not reach (hair, bubbles) changed nothing without a word."
    from medcf.phantoms import SkinPhantom
    ph = SkinPhantom(32); b = ph.sample(48, seed=2)
    predict = lambda x: pd.DataFrame(dict(melanoma=np.ones(len(x), int), ruler=np.zeros(len(x), int)))
    kids = {n for n, v in ph.variables.items() if 'melanoma' in v.parents}
    assert set(SkinPhantom.MELANOMA_ARTIFACTS) <= kids and not ({'hair', 'bubbles', 'dark_corners'} & kids)
    hold = SkinPhantom.MELANOMA_ARTIFACTS
    r = M.counterfactual_report(M.true_counterfactual_editor(ph, b, hold=hold), ph, b, predict, hold=hold, edit_checks=False, melanoma=1)
    assert r.mae_inside == r.mae_outside == 0
    plain = M.counterfactual_report(M.true_counterfactual_editor(ph, b), ph, b, predict, hold=hold, edit_checks=False, melanoma=1)
    assert plain.mae_outside > 0  # what the editor without hold was charged
    with pytest.warns(UserWarning, match=r"\['hair', 'bubbles'\] do not descend from \['melanoma'\].*changes nothing") as rec:
        M.counterfactual_flip_rate(lambda x: np.zeros(len(x), int), ph, b, hold=('hair', 'bubbles'), melanoma=1)
    assert rec[0].filename == __file__
    with pytest.raises(ValueError, match=r"\['drain'\] are not variables of this phantom"): M.true_counterfactual_editor(ph, b, hold=('drain',))


def test_ideal_editor_checks_hold_as_the_report_does():
    "true_counterfactual_editor had its own weaker hold check: a derived variable was passed on as an intervention, and a target naming a held variable silently dropped the hold."
    from medcf.phantoms import ChestPhantom
    ph = ChestPhantom(32); b = ph.sample(8, seed=1)
    with pytest.raises(ValueError, match=r"\['no_finding'\] are computed from other variables"): M.true_counterfactual_editor(ph, b, hold=('no_finding',))
    with pytest.raises(TypeError, match='hold must be a sequence of variable names'): M.true_counterfactual_editor(ph, b, hold='chest_tube')
    ed = M.true_counterfactual_editor(ph, b, hold={'chest_tube'})  # a set, as the report takes
    with pytest.raises(ValueError, match=r"target \['chest_tube'\] are held by this editor"): ed(b.images, dict(chest_tube=np.zeros(8, int)))
    assert torch.equal(ed(b.images, dict(effusion=np.ones(8, int))), ph.counterfactual(b, effusion=1, chest_tube=b.truth.chest_tube.to_numpy()).images)


def test_bad_input_that_gave_silent_figures():
    "One-hot rows averaged element by element, an oracle's probabilities compared with labels, attribute readings taken for features, discrete_only='no' read as True."
    assert M.accuracy([0, 1, 2, 1], [0, 1, 2, 2]) == 0.75
    with pytest.raises(ValueError, match=r'shape \(4, 3\); expected one label per sample.*argmax'): M.accuracy(np.eye(3)[[0, 1, 2, 1]], np.eye(3)[[0, 1, 2, 2]])
    with pytest.raises(ValueError, match='n_bins=True'): M.reliability_curve([0.2, 0.9], [0, 1], n_bins=True)
    from medcf.oracles import AttrSpec
    class Oracle:  # an AttributeOracle's interface: specs, predict (labels) and probs
        specs = [AttrSpec('effusion', 'binary', [0, 1]), AttrSpec('view', 'categorical', ['AP', 'PA']), AttrSpec('age', 'continuous', range=(18., 90.))]
        def predict(self, x): return pd.DataFrame(dict(effusion=np.ones(len(x), int), view=['AP'] * len(x), age=np.full(len(x), 50.)))
        def probs(self, x): return pd.DataFrame({'effusion': np.full(len(x), 0.9), 'view=AP': np.full(len(x), 0.8), 'view=PA': np.full(len(x), 0.2), 'age': np.full(len(x), 50.)})
        def view_probs(self, x): return self.probs(x).assign(effusion=1)
    o, x = Oracle(), torch.linspace(-1, 1, 256).reshape(4, 1, 8, 8)
    assert M.effectiveness(o.predict, x, dict(effusion=1)) == {'effusion': 1.0}
    with pytest.raises(ValueError, match=r"predict returned effusion = 0.9, where the oracle reads effusion as one of \[0, 1\].*not its probs"): M.effectiveness(o.probs, x, dict(effusion=1))
    with pytest.raises(ValueError, match=r"predict returned columns view=<value>"): M.leakage(o.view_probs, x, x)
    assert M.effectiveness(o.predict, x, dict(age=60)) == {'age': 10.0}
    with pytest.raises(ValueError, match=r"target age holds 300, outside age's range"): M.effectiveness(o.predict, x, dict(age=300))
    with pytest.raises(TypeError, match=r"target age holds .* values \('70', ...\)"): M.effectiveness(o.predict, x, dict(age='70'))
    with pytest.raises(TypeError, match="discrete_only='no': expected True or False"): M.leakage(o.predict, x, x, discrete_only='no')
    with pytest.raises(TypeError, match=r'intervened=None; expected a list of attribute names \(\(\) for none\)'): M.leakage(o.predict, x, x, intervened=None)
    a, b = torch.rand(6, 1, 8, 8) * 2 - 1, torch.rand(6, 1, 8, 8) * 2 - 1
    feats = lambda im: im.flatten(1)[:, :3].numpy()
    assert M.oracle_frechet_distance(feats, a, b) >= 0
    with pytest.raises(TypeError, match=r'features returned a DataFrame \(attribute readings\?\) on images_a'): M.oracle_frechet_distance(o.predict, a, b)
    with pytest.raises(ValueError, match='features returned 5 rows for the 6 images of images_a'): M.oracle_frechet_distance(lambda im: feats(im)[:5], a, b)


def test_rare_group_workflow_messages():
    "From a rare-subgroup augmentation audit: groups as (effusion, devices) tuples were refused as not N x k; a 1-sample worst group read 0.0 without a word; a dataset passed as the batch gave AttributeError: no attribute 'truth'."
    import warnings
    pred, lab = np.array([1, 1, 0, 0, 1]), np.array([1, 1, 0, 0, 0])
    rows = [(1, 0), (1, 0), (0, 0), (0, 0), (0, 1)]
    assert M.group_ids(rows).tolist() == ['1, 0', '1, 0', '0, 0', '0, 0', '0, 1'] == M.group_ids(np.array(rows)).tolist()
    with pytest.raises(ValueError, match=r'rows of lengths \[1, 2\]'): M.group_ids([(1, 0), (1,)])
    with pytest.warns(UserWarning, match=r"the worst group, 0, 1, has 1 samples: its accuracy 0 has the 95% interval \[0.00, 0.79\]") as rec:
        assert M.worst_group_accuracy(pred, lab, rows) == 0.0
    assert rec[0].filename == __file__
    many = np.repeat(pred, 20), np.repeat(lab, 20), np.repeat(np.array(['a', 'a', 'b', 'b', 'c']), 20)
    with warnings.catch_warnings(): warnings.simplefilter('error'); assert M.worst_group_accuracy(*many) == 0.0  # 20 samples: said plainly
    from medcf.phantoms import ChestPhantom
    from medcf.data import PhantomDataset
    ph = ChestPhantom(32); ds = PhantomDataset(ph, 4, 'test')
    with pytest.raises(TypeError, match=r'batch is a PhantomDataset \(a dataset: take dataset.batch\(indices\)\)'): M.counterfactual_flip_rate(lambda x: np.zeros(len(x), int), ph, ds, devices=0)
    with pytest.raises(TypeError, match='batch is a PhantomDataset'): M.true_counterfactual_editor(ph, ds)
    assert len(M.counterfactual_flip_rate(lambda x: np.zeros(len(x), int), ph, ds.batch(range(4)), devices=0)) >= 1


def test_signed_leakage_tells_a_missed_effect_from_an_invented_one():
    "leakage has no sign: an editor that never adds the devices the truth adds and one that adds them to as many extra patients scored the same 0.104 (2503.23618's question is which)."
    from medcf.oracles import AttrSpec
    class Reader:  # reads devices from the top-left pixel, view from the top-right, age from the mean
        specs = [AttrSpec('devices', 'binary', [0, 1]), AttrSpec('view', 'categorical', ['AP', 'PA']), AttrSpec('age', 'continuous', range=(18., 90.))]
        def predict(self, x):
            return pd.DataFrame(dict(devices=(x[:, 0, 0, 0] > 0).long().numpy(), view=np.where(x[:, 0, 0, -1] > 0, 'AP', 'PA'),
                                     age=(x.mean((1, 2, 3)).numpy() + 1) * 36 + 18))
    r = Reader()
    truth = -torch.ones(10, 1, 4, 4); truth[:4, 0, 0, 0] = 1  # the truth shows devices on 4 of 10
    missed = truth.clone(); missed[:4, 0, 0, 0] = -1  # shows none
    invented = truth.clone(); invented[4:8, 0, 0, 0] = 1  # shows 4 more
    same = M.leakage(r.predict, missed, truth, attributes=['devices']).devices
    assert same == M.leakage(r.predict, invented, truth, attributes=['devices']).devices == 0.4
    assert M.leakage(r.predict, missed, truth, attributes=['devices'], signed=True).devices == -0.4
    assert M.leakage(r.predict, invented, truth, attributes=['devices'], signed=True).devices == 0.4
    older = (truth + 0.5).clamp(-1, 1)
    s = M.leakage(r.predict, older, truth, signed=True)
    assert list(s.index) == ['devices', 'age'] and s.age == pytest.approx(float((older - truth).mean()) * 36)  # categorical view has no direction: left out
    with pytest.raises(ValueError, match=r"attributes \['view'\] are categorical, which have no direction"): M.leakage(r.predict, older, truth, attributes=['view'], signed=True)
    with pytest.raises(TypeError, match="signed='yes'"): M.leakage(r.predict, older, truth, signed='yes')



def test_review_fixes_names_columns_and_ties():
    "From the session's review: (N, 1) columns were refused with advice (argmax) that scores 1.0; leakage_attributes as a string or an array broke; dict_keys refused; a tie for the worst group warned about its smallest member."
    import warnings
    y = np.array([[1], [0], [1], [1]]); p = np.array([[1], [0], [0], [1]])
    assert M.accuracy(p, y) == 0.75 == M.accuracy(pd.DataFrame(p, columns=['e']), pd.DataFrame(y, columns=['e']))
    reader = lambda x: pd.DataFrame(dict(a=(x.flatten(1)[:, 0] > 0).long().numpy(), b=(x.flatten(1)[:, 1] > 0).long().numpy()))
    x = torch.linspace(-1, 1, 4 * 16).reshape(4, 1, 4, 4); y2 = x.flip(0)
    want = M.leakage(reader, x, y2, attributes=['a', 'b'])
    assert M.leakage(reader, x, y2, attributes=np.array(['a', 'b'])).equals(want) and M.leakage(reader, x, y2, attributes=pd.Index(['a', 'b'])).equals(want)
    assert M.leakage(reader, x, y2, intervened={'a': 1}.keys()).index.tolist() == ['b']
    with pytest.raises(TypeError, match="leakage_attributes='a' is a string"): M._names('a', 'leakage_attributes')
    pred, lab = np.array([0] * 30 + [1]), np.array([1] * 30 + [0])  # two groups, both at 0: 30 samples and 1
    with warnings.catch_warnings(): warnings.simplefilter('error'); assert M.worst_group_accuracy(pred, lab, ['big'] * 30 + ['one']) == 0.0


def test_flip_rate_says_which_way_the_flips_went():
    "A flip rate alone read 'adding a ruler flips 9.8%' as a ruler shortcut when adding it lowered P(melanoma) (the skin diffusion-classifier audit); up/down count the flips to a higher and a lower label."
    from medcf.phantoms import ChestPhantom
    ph = ChestPhantom(32); b = ph.sample(64, seed=5)
    thr = float(b.images.mean())
    clf = lambda x: (x.mean((1, 2, 3)) > thr).long().numpy()  # a fixed threshold: the same image always gets the same label
    t = M.counterfactual_flip_rate(clf, ph, b, effusion=1)
    before, after = clf(b.images), clf(ph.counterfactual(b, effusion=1).images)
    moved = (b.truth.effusion.to_numpy() == 0)
    row = t.set_index('change').loc['effusion 0 -> 1']
    assert row.up == int(((after > before) & moved).sum()) and row.down == int(((after < before) & moved).sum())
    assert (t.up + t.down == (t.flip_rate * t.n).round().astype(int)).all() and t.up.sum() > 0
    assert 'up' not in M.counterfactual_flip_rate(lambda x: np.array(['a'] * len(x)), ph, b, effusion=1)  # text labels have no direction


def test_editing_builder_findings():
    "From the session-33 editing prototype: an in-place editor no longer corrupts the batch (it scored as perfect); a third parameter not named source is explained; an intervention that changes no image is said."
    import warnings
    from medcf.phantoms import ChestPhantom
    from medcf.metrics import counterfactual_report, composition
    ph = ChestPhantom(32)
    b = ph.sample(6, seed=0)
    before = b.images.clone()
    predict = lambda x: b.attrs.iloc[:len(x)].reset_index(drop=True)  # a stand-in reader: the factual attributes
    in_place = lambda im, t: im.clamp_(-.5, .5)
    out_of_place = lambda im, t: im.clamp(-.5, .5)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        r1 = counterfactual_report(in_place, ph, b, predict, devices=0)
        r2 = counterfactual_report(out_of_place, ph, b, predict, devices=0)
    assert torch.equal(b.images, before)  # the factual images are the caller's, untouched
    assert r1.minimality == pytest.approx(r2.minimality) and r1.composition == pytest.approx(r2.composition) and r1.composition > 0
    assert composition(in_place, b.images, {'devices': b.attrs.devices.to_numpy()})[0] > 0 and torch.equal(b.images, before)
    with pytest.raises(TypeError, match='rename the third parameter `source`'): counterfactual_report(lambda im, t, src: im, ph, b, predict, devices=0)
    same = b[b.attrs.devices.to_numpy() == 0]
    with pytest.warns(UserWarning, match='every image already has the asked value'): counterfactual_report(out_of_place, ph, same, predict, devices=0, edit_checks=False)


def test_transposed_groups_are_named():
    "Groups given column-wise (a 2 x N array of two attributes) said only 'length mismatch {groups: 2}' (DeCoDEx prototype)."
    from medcf.metrics import worst_group_accuracy
    pred = labels = np.array([0, 1, 1, 0, 1, 0])
    g = np.array([[0, 0, 1, 1, 0, 1], [1, 0, 1, 0, 1, 0]])
    with pytest.raises(ValueError, match='it looks transposed'): worst_group_accuracy(pred, labels, g)
    assert worst_group_accuracy(pred, labels, g.T) == 1.0

def test_unit_range_said_once_per_report(setup):
    "An editor returning [0, 1] images: one counterfactual_report says so once (not once per editor run and per check), as does every metric for its images; each call says it again."
    import warnings
    ph, b, _ = setup
    to_unit = lambda x, t: (x + 1) / 2
    def said(f):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always'); f()
        return [str(x.message) for x in w if 'none below 0' in str(x.message)]
    first = said(lambda: M.counterfactual_report(to_unit, ph, b, reader, bar=1))
    assert len(first) == 1 and 'edit_fn output' in first[0]
    assert len(said(lambda: M.counterfactual_report(to_unit, ph, b, reader, bar=1))) == 1  # the next call is told again
    assert len(said(lambda: M.reversibility(to_unit, b.images, {'bar': b.attrs.bar.to_numpy()}, {'bar': 1 - b.attrs.bar.to_numpy()}))) == 1
    u = (b.images + 1) / 2
    assert len(said(lambda: (M.counterfactual_error(u, true_cf=u, factual=u), M.counterfactual_error(u, true_cf=u, factual=u)))) == 2  # one a call: each call says it again

def test_numbers_are_asked_for_by_name():
    "Strings where numbers belong, ragged rows, string scalars and mixed-type group ids are refused, naming the argument."
    with pytest.raises(TypeError, match='scores has dtype <U'): M.auroc(np.array(['Male', 'Female', 'Male', 'Female']), [0, 1, 0, 1])
    with pytest.raises(TypeError, match='probs has dtype'): M.expected_calibration_error(['0.2', '0.9'], [0, 1])
    with pytest.raises(ValueError, match='probs has rows of different lengths'): M.expected_calibration_error([[.5, .5], [1.]], [0, 1])
    with pytest.raises(TypeError, match='feats_a has dtype'): M.frechet_distance([['a', 'b']] * 3, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"ids that differ only in type, \[0, '0'\]"): M.group_accuracies([0, 1, 0, 1], [0, 1, 0, 1], [0, '0', 1, 1])
    with pytest.raises(ValueError, match="eps='1e-12'"): M.nll([.5, .5], [0, 1], eps='1e-12')
    with pytest.raises(ValueError, match="threshold='0.1'"): M.changed_region(-torch.ones(1, 1, 4, 4), -torch.ones(1, 1, 4, 4), '0.1')
    with pytest.raises(ValueError, match="rate='0.5'"): M.rate_count('0.5', 10)
    assert M.group_accuracies([0, 1, 0, 1], [0, 1, 0, 1], ['0', '0', '1', '1']).n.tolist() == [2, 2]  # one kind of id: fine

def test_ragged_rows_leave_the_warning_filters_alone(monkeypatch):
    "Where numpy itself raises on ragged rows (1.24+), reading an input does not touch the process-wide warning filters (not thread-safe); the old-numpy path still names the rows."
    if getattr(M, '_RAGGED_WARNS', False): pytest.skip('numpy < 1.24: the filter is how ragged rows are caught')
    class NoFilters:  # medcf.metrics' view of the warnings module, without catch_warnings
        def __getattr__(self, k): return getattr(warnings, k)
        def catch_warnings(self, *a, **k): raise AssertionError('warnings.catch_warnings entered')
    monkeypatch.setattr(M, 'warnings', NoFilters())
    assert M.accuracy([1, 0, 1], [1, 0, 0]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match='probs has rows of different lengths'): M.expected_calibration_error([[.5, .5], [1.]], [0, 1])
    monkeypatch.undo()
    monkeypatch.setattr(M, '_RAGGED_WARNS', True)  # the numpy < 1.24 path, run here under a numpy that raises anyway
    with pytest.raises(ValueError, match='probs has rows of different lengths'): M.expected_calibration_error([[.5, .5], [1.]], [0, 1])

def test_a_continuous_group_column_is_named():
    "A float column of many values (age in years) passed as a group attribute makes one group per sample: the warning names it and says to bin it; a binned one is quiet."
    import warnings
    rng = np.random.default_rng(0); n = 300
    attrs = pd.DataFrame(dict(effusion=rng.integers(0, 2, n), age=rng.uniform(20, 90, n)))
    with pytest.warns(UserWarning, match="column 'age' looks continuous"): M.group_ids(attrs)
    with warnings.catch_warnings():
        warnings.simplefilter('error'); M.group_ids(attrs.assign(age=pd.cut(attrs.age, [0, 40, 60, 80, 100]).astype(str)))

def test_numbers_held_as_objects_and_missing_ids():
    "Numbers in an object column (a table transposed beside a text column) are numbers; a NaN among string group ids is refused, not made a 'nan' group."
    assert M.auroc(pd.Series([.1, .9, .3, .7], dtype=object), [0, 1, 0, 1]) == 1.0
    with pytest.raises(ValueError, match=r'missing values \(None/NaN\) at positions \[1\]'): M.group_ids(['a', np.nan, 'b', 'b'])


# A mutation-testing pass over medcf/metrics.py (150 one-at-a-time mutants) left 41 that changed a number or a refusal and that
# no test caught; each test below fails on at least one of them and pins the value to a hand derivation or an independent
# computation (scipy, scikit-learn), never to medcf itself.
# --- AUROC -----------------------------------------------------------------------------------------
def test_auroc_pairs_of_ties_and_unbalanced_classes():
    "Two tied scores count one half (the existing test ties all four, which the `cnt > 1` guard also averages when mutated)."
    assert M.auroc([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == 0.875  # pairs: 0.9 > both, 0.5 > 0.1, 0.5 = 0.5 -> (2 + 1 + 0.5) / 4
    skm = pytest.importorskip('sklearn.metrics')
    rng = np.random.default_rng(0); y = (rng.random(300) < 0.3).astype(int)
    s = np.round(y + rng.normal(0, 1, 300), 1)  # rounded to 0.1: ties of two and more, 3:7 classes
    assert M.auroc(s, y) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)

def test_auroc_refuses_a_column_of_scores():
    with pytest.raises(ValueError, match='scores has shape'): M.auroc(np.array([[0.1], [0.9], [0.4]]), [0, 1, 0])


# --- Frechet distance -------------------------------------------------------------------------------
def test_frechet_distance_of_non_commuting_covariances():
    "The existing cases (a vs a, a + 1, 2a; D = 1) have commuting covariances, where S_a S_b is symmetric; here it is not."
    linalg = pytest.importorskip('scipy.linalg')
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 3)) @ np.array([[2., 0, 0], [1, 1, 0], [0, 0.5, 0.3]])
    b = rng.normal(size=(400, 3)) @ np.array([[0.5, 1, 0], [0, 1, 2], [1, 0, 1]]) + 0.3
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    want = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sa + sb - 2 * linalg.sqrtm(sa @ sb).real)  # pytorch-fid's formula
    assert M.frechet_distance(a, b) == pytest.approx(want, rel=1e-6)


# --- proportion_interval ----------------------------------------------------------------------------
def test_wilson_interval_matches_scipy_for_every_count():
    st = pytest.importorskip('scipy.stats')
    for k in range(11):
        ci = st.binomtest(k, 10).proportion_ci(0.95, method='wilson')
        assert M.proportion_interval(k, 10) == pytest.approx((ci.low, ci.high), abs=1e-9), k


# --- calibration --------------------------------------------------------------------------------------
def test_reliability_table_and_ece_by_hand():
    "Top-label confidences 0.65, 0.7 | 0.95, 0.85, 0.81 in 5 bins: two non-empty bins, ECE their count-weighted |acc - conf|."
    p, y = [0.65, 0.7, 0.95, 0.15, 0.81], [1, 0, 1, 0, 0]
    r = M.reliability_curve(p, y, n_bins=5)
    assert r.bin_lo.tolist() == pytest.approx([0.6, 0.8]) and r.bin_hi.tolist() == pytest.approx([0.8, 1.0]) and r['count'].tolist() == [2, 3]
    assert r.confidence.tolist() == pytest.approx([0.675, 0.87]) and r.accuracy.tolist() == pytest.approx([0.5, 2 / 3])
    assert M.expected_calibration_error(p, y, n_bins=5) == pytest.approx((2 * abs(0.5 - 0.675) + 3 * abs(2 / 3 - 0.87)) / 5)

def test_a_confidence_on_a_bin_edge_falls_in_the_bin_it_closes():
    "Bins are right-closed, ((m-1)/M, m/M], as ECE is defined (Guo et al. 2017): confidence 0.75 in 4 bins is the top of bin [0.5, 0.75], not the bottom of [0.75, 1]."
    r = M.reliability_curve([0.75, 0.25, 1.0], [1, 0, 1], n_bins=4)  # top-label confidences 0.75, 0.75, 1.0
    assert r.bin_hi.tolist() == pytest.approx([0.75, 1.0]) and r['count'].tolist() == [2, 1]

def test_calibration_refuses_labels_that_are_not_class_indices():
    with pytest.raises(ValueError, match='integer class indices'): M.expected_calibration_error([0., 1., 1.], [0.2, 0.8, 0.6])  # arguments swapped
    with pytest.raises(ValueError, match='integer class indices'): M.nll([0.3, 0.9], [0.5, 1])
    with pytest.raises(ValueError, match=r'must lie in 0\.\.1'): M.nll([[0.7, 0.3]], [-1])  # would read p[:, -1]
    with pytest.raises(ValueError, match=r'must lie in 0\.\.1'): M.expected_calibration_error([0.3], [-1])

def test_probabilities_are_refused_beyond_float_rounding():
    with pytest.raises(ValueError, match=r'must lie in \[0, 1\]'): M.nll([-0.05, 0.5], [1, 0])
    with pytest.raises(ValueError, match='sum to 1'): M.nll([[0.5, 0.505]], [0])

def test_nll_uses_the_eps_it_is_given():
    with pytest.warns(UserWarning, match='below eps=0.001'):
        assert M.nll([0.0, 1.0], [1, 1], eps=1e-3) == pytest.approx(-np.log(1e-3) / 2)

def test_nll_warns_for_a_tiny_nonzero_probability_and_refuses_eps_one():
    with pytest.warns(UserWarning, match=r'1 of 2 true labels have probability below eps=1e-12 \(exactly 0 for 0\)'): M.nll([1e-13, 1.0], [1, 1])
    with pytest.raises(ValueError, match='eps'): M.nll([0.2, 0.9], [0, 1], eps=1)


# --- accuracy / rejection ---------------------------------------------------------------------------
def test_accuracy_refuses_a_column_against_a_row_and_two_columns():
    with pytest.raises(ValueError, match='shape'): M.accuracy([1, 0, 1], np.array([[1], [0], [1]]))  # would broadcast to 3 x 3 (5/9)
    with pytest.raises(ValueError, match='one label per sample'): M.accuracy(np.array([[1, 0], [0, 0]]), np.array([[1, 1], [0, 1]]))

def test_rejection_keeps_the_nearest_count_and_at_least_one():
    conf, ok = [0.9, 0.8, 0.3], [1, 1, 0]
    c = M.accuracy_rejection_curve(conf, ok, rates=[0.1, 0.9])  # 3 x 0.9 = 2.7 -> 3 kept; 3 x 0.1 = 0.3 -> at least 1
    assert c.n_kept.tolist() == [3, 1] and c.accuracy.tolist() == pytest.approx([2 / 3, 1.0])
    with pytest.raises(ValueError, match=r'\[0, 1\)'): M.accuracy_rejection_curve(conf, ok, rates=[-0.1])


# --- image metrics ------------------------------------------------------------------------------------
def test_counterfactual_error_by_hand_on_three_channels():
    f = -0.5 * torch.ones(2, 3, 2, 2); t = f.clone(); t[0, :, 0, 0] = 0.5  # image 0: one changed pixel; image 1: none
    e = t.clone(); e[0, 0, 0, 0] = 0.2; e[:, 1, 1, 1] += 0.3  # error 0.3 in one channel of the changed pixel, 0.3 in one channel elsewhere
    err = M.counterfactual_error(e, true_cf=t, factual=f)
    assert err.mae_inside[0] == pytest.approx(0.1) and np.isnan(err.mae_inside[1])  # channel mean: 0.3 / 3; an empty region is NaN
    assert err.mae_outside.tolist() == pytest.approx([0.1 / 3, 0.1 / 4]) and err.mae_all.tolist() == pytest.approx([0.05, 0.025])
    assert err.region_frac.tolist() == [0.25, 0.0]

def test_region_takes_any_channel_and_minimality_is_nan_where_the_truth_changes_nothing():
    f = -0.5 * torch.ones(2, 3, 2, 2); t = f.clone(); t[0, 1, 0, 0] = -0.4  # the truth moves one channel of one pixel by 0.1 (a channel mean of 0.033)
    reg = M.changed_region(f, t)
    assert reg[0, 0, 0] and reg.sum() == 1  # "any channel": the pixel counts as changed
    e = f.clone(); e[:, 0, 1, 1] = 0.5  # the edit moves both images; the truth of image 1 moves nothing
    m = M.minimality(e, factual=f, true_cf=t)
    assert m[0] == pytest.approx(10.0) and np.isnan(m[1])  # 1/12 against 0.1/12; "as much as needed" of nothing is undefined, not 1e8

def test_minimality_counts_changes_of_both_signs():
    f = -0.5 * torch.ones(1, 1, 2, 2); t = f.clone(); t[0, 0, 0, 0] = 0.5  # the truth moves one pixel by +1
    e = t.clone(); e[0, 0, 1, 1] = -1.0  # the edit also moves another by -0.5
    assert M.minimality(e, factual=f, true_cf=t).tolist() == pytest.approx([1.5])

def test_composition_iterates_and_errors_are_absolute():
    x = -0.5 * torch.ones(2, 1, 4, 4)
    drift = lambda im, t: im + 0.1
    assert M.composition(drift, x, {'a': 0}, n_apply=3) == pytest.approx([0.1, 0.2, 0.3])
    y = torch.linspace(-1, 1, 32).reshape(2, 1, 4, 4)
    assert M.composition(lambda im, t: -im, y, {'a': 0}) == pytest.approx([float(2 * y.abs().mean())])  # signed mean would be 0

def test_reversibility_is_an_absolute_error():
    y = torch.linspace(-1, 1, 32).reshape(2, 1, 4, 4)
    one_way = lambda im, t: -im if t['a'] == 1 else im  # edits to a=1 by negating, never comes back
    assert M.reversibility(one_way, y, {'a': 0}, {'a': 1}) == pytest.approx(float(2 * y.abs().mean()))


# --- effectiveness / leakage --------------------------------------------------------------------------
def test_effectiveness_kind_from_the_readings_without_specs():
    x = -0.5 * torch.ones(4, 1, 2, 2)
    rd = lambda im: pd.DataFrame(dict(age=np.full(len(im), 63.5), bar=np.array([1., 0., 1., 1.])))
    assert M.effectiveness(rd, x, {'age': 70}) == {'age': 6.5}  # float readings: a mean error in years, whatever the target's dtype
    assert M.effectiveness(rd, x, {'bar': 1}) == {'bar': 0.75}  # readings 0./1.: a binary attribute, a share
    whole = lambda im: pd.DataFrame(dict(age=np.array([70, 72, 70, 69])))  # a reader giving age in whole years
    assert M.effectiveness(whole, x, {'age': 70.0}) == M.effectiveness(whole, x, {'age': np.full(4, 70)}) == {'age': 0.5}  # integer readings: a share, whatever the target's dtype (as a mean error in years it would be 0.75)
    with pytest.raises(ValueError, match=r'target age=70\.5 is not a whole number, but the readings of age are integers \(70, \.\.\.\)'): M.effectiveness(whole, x, {'age': 70.5})

def test_bfloat16_tensors_are_read_as_float32():
    "Scores, probabilities and features from a model run under bfloat16 are read (numpy has no bfloat16) as their float32 values."
    s, p = torch.tensor([.1, .4, .35, .8]).bfloat16(), torch.tensor([[.7, .3], [.2, .8], [.6, .4]]).bfloat16()
    assert M.auroc(s, [0, 0, 1, 1]) == M.auroc(s.float(), [0, 0, 1, 1]) == 0.75
    assert M.nll(p, [0, 1, 1]) == pytest.approx(-np.log(p.float().numpy()[[0, 1, 2], [0, 1, 1]]).mean())  # rows sum to 1.002: bfloat16's rounding, allowed
    h = torch.softmax(torch.randn(500, 10, generator=torch.Generator().manual_seed(0)), 1)
    for lo in (h.half(), h.bfloat16(), h.half().numpy()):  # sums stray from 1 by up to 3e-4 (float16) or 3e-3 (bfloat16)
        assert M.expected_calibration_error(lo, np.zeros(500, int)) == pytest.approx(M.expected_calibration_error(torch.as_tensor(lo).float() / torch.as_tensor(lo).float().sum(1, keepdim=True), np.zeros(500, int)), abs=5e-3)
    with pytest.raises(ValueError, match=r'rows of probs must sum to 1 within 0.0001 \(got sums in \[0.99'): M.nll(p.float() * 0.999, [0, 1, 1])  # float32: the tight bound
    f = torch.randn(40, 3, generator=torch.Generator().manual_seed(0)).bfloat16()
    ok = torch.tensor([1., 0., 1., 1.])  # 0/1 correctness and a target, as bfloat16 tensors (accuracy_rejection_curve and effectiveness read them raw before)
    assert M.accuracy_rejection_curve(s, ok.bfloat16()).equals(M.accuracy_rejection_curve(s, ok))
    rd = lambda im: pd.DataFrame(dict(age=np.full(len(im), 63.5)))
    assert M.effectiveness(rd, -0.5 * torch.ones(4, 1, 2, 2), {'age': torch.full((4,), 70.).bfloat16()}) == {'age': 6.5}
    g = f + 1  # rounded to bfloat16 too
    assert M.frechet_distance(f, g) == M.frechet_distance(f.float(), g.float()) == pytest.approx(3, abs=0.01)  # the means differ by 1 in each of 3 features

def test_discrete_only_leaves_continuous_attributes_out():
    rd = lambda im: pd.DataFrame(dict(a=(im[:, 0, 0, 0] > 0).long().numpy(), age=(im.mean((1, 2, 3)).numpy() + 1) * 40))
    x = -0.5 * torch.ones(4, 1, 2, 2); y = x.clone(); y[:2, 0, 0, 0] = 0.5
    assert M.leakage(rd, y, x).to_dict() == pytest.approx({'a': 0.5, 'age': 5.0})  # 2 of 4 images, +1 on 1 of 4 pixels x 40 / 2
    assert M.leakage(rd, y, x, discrete_only=True).to_dict() == {'a': 0.5}


# --- counterfactual_report aggregation ----------------------------------------------------------------
def corner_reader(images): return reader(images).assign(corner=(images[:, 0, 0, 0] > 0).long().numpy())

def test_report_takes_the_worst_leakage_and_names_it(setup):
    ph, b, tgt = setup
    def leaky(images, target):  # tone wrong on every other image, a bright corner on every image
        n = len(b); tone = np.where(np.arange(n) % 2 == 0, 1 - b.truth.tone.to_numpy(), b.truth.tone.to_numpy())
        out = ph.counterfactual(b, **target, tone=tone).images.clone(); out[:, 0, 0, 0] = 0.9
        return out
    r = M.counterfactual_report(leaky, ph, b, corner_reader, leakage_each=True, edit_checks=False, **tgt)
    assert r.leakage_tone == 0.5 and r.leakage_corner == 1.0
    assert r.leakage_max == 1.0 and r.leakage_worst == 'corner'
    good = M.counterfactual_report(M.true_counterfactual_editor(ph, b), ph, b, reader, edit_checks=False, **tgt)
    assert good.leakage_max == 0 and good.leakage_worst == ''  # nothing leaks: no name

def test_report_effectiveness_is_the_mean_over_discrete_targets(setup):
    ph, b, _ = setup
    half = np.arange(len(b)) % 2 == 0
    def tone_on_half(images, target):
        tone = np.where(half, target['tone'], 1 - np.asarray(target['tone']))
        return ph.counterfactual(b, bar=target['bar'], tone=tone).images
    r = M.counterfactual_report(tone_on_half, ph, b, reader, edit_checks=False, bar=1 - b.truth.bar.to_numpy(), tone=1 - b.truth.tone.to_numpy())
    assert r.effectiveness == pytest.approx((1.0 + 0.5) / 2)

def test_report_minimality_is_the_median_and_mae_outside_the_mean(setup):
    ph, b, tgt = setup
    true = M.true_counterfactual_editor(ph, b)
    def one_bright(images, target):  # the truth, with image 0 brightened by 0.3 everywhere
        out = true(images, target).clone(); out[0] = out[0] + 0.3
        return out.clamp(-1, 1)
    r = M.counterfactual_report(one_bright, ph, b, reader, leakage_attributes=[], edit_checks=False, **tgt)
    assert r.minimality == 1.0  # 19 of 20 images exactly the truth
    assert r.mae_outside == pytest.approx(0.3 / 20, rel=1e-4)  # image 0's 0.3 outside the bar, averaged over 20 images

def test_report_passes_its_threshold_on(setup):
    ph, b, tgt = setup
    r = M.counterfactual_report(M.identity_editor, ph, b, reader, threshold=1.95, edit_checks=False, **tgt)
    assert np.isnan(r.mae_inside)  # no pixel changes by more than 1.95: no region anywhere

def test_report_warns_only_when_no_image_changes(setup):
    ph, b, _ = setup
    assert 0 < b.attrs.bar.sum() < len(b)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        M.counterfactual_report(M.true_counterfactual_editor(ph, b), ph, b, reader, edit_checks=False,
                                bar=1 - b.attrs.bar.to_numpy(), tone=b.attrs.tone.to_numpy())  # bar changes everywhere, tone nowhere: something changes


# --- lower priority: refusals that the mutants dropped (input a user can plausibly pass) -------------
def test_rejection_curve_refuses_a_2d_correct():
    with pytest.raises(ValueError, match='correct has shape'): M.accuracy_rejection_curve([0.9, 0.5, 0.2], np.array([[1, 1], [1, 0], [0, 0]]))

def test_interval_and_threshold_refusals():
    with pytest.raises(TypeError, match='integer count'): M.proportion_interval(True, 10)
    with pytest.raises(ValueError, match='coverage'): M.proportion_interval(3, 10, level=0)
    with pytest.raises(ValueError, match=r'\(0, 2\)'): M.changed_region(-torch.ones(1, 1, 2, 2), -torch.ones(1, 1, 2, 2), threshold=0)

def test_rate_count_ambiguity_at_both_ends():
    with pytest.raises(ValueError, match='any count from 0 to 1'): M.rate_count(1 / 30000, 30000)  # 0 and 1 of 30000 both round to 0.0000
    with pytest.raises(ValueError, match='any count from 29999 to 30000'): M.rate_count(1 - 1 / 30000, 30000)

def test_group_accuracies_refuse_a_short_pred():
    with pytest.raises(ValueError, match='length mismatch'): M.group_accuracies([1], [1, 0, 1], ['a', 'b', 'b'])  # would broadcast

def test_oracle_frechet_refuses_images_of_other_sizes():
    feats = lambda im: im.flatten(1)[:, :3].numpy()
    a, b = torch.rand(4, 1, 8, 8) * 2 - 1, torch.rand(4, 1, 16, 16) * 2 - 1
    with pytest.raises(ValueError, match='expected the same C x H x W'): M.oracle_frechet_distance(feats, a, b)


# --- session 49: the report's targets, the editor's copies, leakage of intervened attributes, the worst group's message ----
def test_report_targets_come_from_the_truth_not_the_record():
    "The brain's record has gaps (NaN in attrs: apoe4 2%, abeta 35%, ...), but the SCM knows every value: the report asks the editor for do's value and tells it the true current one (it refused 'target apoe4 holds a missing value')."
    from medcf.phantoms import BrainPhantom
    ph = BrainPhantom(size=32, seed=0); b = ph.sample(48)
    assert ph.counterfactual(b, apoe4=1).attrs.apoe4.isna().any()  # the record's gaps are there
    asked = {}
    def editor(images, target, source):
        if not asked: asked.update(target=target['apoe4'], source=source['apoe4'])  # the edit itself (composition and reversibility call again)
        return ph.counterfactual(b, apoe4=target['apoe4']).images
    read = lambda x: pd.DataFrame(dict(apoe4=np.ones(len(x), int), age=np.full(len(x), 70.0)))
    r = M.counterfactual_report(editor, ph, b, read, apoe4=1)
    assert r.effectiveness == 1.0 and r.mae_inside == 0 and r.mae_outside == 0
    assert (asked['target'] == 1).all() and np.array_equal(asked['source'], b.truth.apoe4.to_numpy())

def test_an_editor_cannot_change_the_targets_the_metrics_use(setup):
    "The editor gets copies of the target and source dicts: flipping a value in them (keeping its own undo target there, say) leaves effectiveness scored on the values asked for."
    ph, b, tgt = setup
    ideal = M.true_counterfactual_editor(ph, b)
    def bookkeeping(images, target):
        out = ideal(images, target)
        target['bar'] = 1 - np.asarray(target['bar'])  # the editor's own bookkeeping, in the dict it was given
        return out
    r = M.counterfactual_report(bookkeeping, ph, b, reader, edit_checks=False, **tgt)
    assert r.effectiveness == 1.0  # the same images as the ideal editor's; the previous library scored them against the flipped values: 0

def test_leakage_refuses_attributes_that_are_all_intervened():
    "Asking for the leakage of only the attributes the edit changes returned {} (and the report NaN) without a word; it is refused by name. A list that also names others leaves the intervened ones out, as before (nb 04 passes its reliable attributes whatever is intervened)."
    rd = lambda im: pd.DataFrame(dict(a=(im[:, 0, 0, 0] > 0).long().numpy(), b=np.zeros(len(im), int)))
    x = -0.5 * torch.ones(4, 1, 2, 2)
    with pytest.raises(ValueError, match=r"attributes \['a'\] are all intervened \(\['a'\]\): the edit is meant to change them"): M.leakage(rd, x, x, intervened=['a'], attributes=['a'])
    assert M.leakage(rd, x, x, intervened=['a'], attributes=['a', 'b']).to_dict() == {'b': 0.0}

def test_worst_group_message_keeps_the_group_id_and_count():
    "A row of the group table taken as one Series made the id and the count floats ('the worst group, 3.0, has 2.0 samples')."
    with pytest.warns(UserWarning, match=r'the worst group, 3, has 2 samples'): M.worst_group_accuracy([1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [3, 3, 4, 4, 4, 4])

def test_a_confidence_on_a_bin_edge_falls_in_the_bin_the_table_prints():
    "Bins are (lo, hi]: a confidence equal to a printed bin_hi belongs to that bin. ceil(conf * n_bins) put 0.56 in (0.56, 0.6] at 25 bins (0.56 * 25 rounds to 14.000000000000002), so [0.56, 0.55] scored an ECE of 0.495 instead of 0.055."
    from medcf.metrics import reliability_curve, expected_calibration_error
    for n_bins in (10, 15, 25, 50, 100):
        for k in range(-(-n_bins // 2), n_bins + 1):  # every edge a top-label confidence can sit on (>= 0.5)
            conf = k / n_bins
            r = reliability_curve([conf], [1], n_bins)  # binary P(y=1) = conf: the top label's confidence
            assert r.bin_hi.item() == conf, (n_bins, k, r)
    assert abs(expected_calibration_error([0.56, 0.55], [1, 0], n_bins=25) - 0.055) < 1e-12

def test_a_coverage_level_that_is_not_a_number_in_0_1_is_refused_by_name(setup):
    "level was compared before it was checked: '0.95' or None failed with a bare \"'<' not supported between instances of 'int' and 'str'\" naming no argument, from proportion_interval, group_accuracies and counterfactual_flip_rate."
    import re
    p, y, g = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), np.array([0, 0, 1, 1])
    ph, b, _ = setup
    calls = []
    def classify(x): calls.append(len(x)); return (x.mean((1, 2, 3)) > -0.5).long()
    for bad in ('0.95', None, float('nan'), 0, 1.0, 95, True):
        msg = rf"level={re.escape(repr(bad))}: expected a coverage in \(0, 1\), e.g. 0.95"
        with pytest.raises(ValueError, match=msg): M.proportion_interval(3, 10, level=bad)
        with pytest.raises(ValueError, match=msg): M.group_accuracies(p, y, g, level=bad)
        with pytest.raises(ValueError, match=msg): M.counterfactual_flip_rate(classify, ph, b, level=bad, bar=1)
    assert calls == []  # refused before the counterfactual is rendered and classified
    assert M.proportion_interval(3, 10, level=np.float32(0.5)) == M.proportion_interval(3, 10, level=0.5)  # numpy numbers as before
    assert M.proportion_interval(3, 10, level=torch.tensor(0.5)) == M.proportion_interval(3, 10, level=0.5)  # a one-element tensor too

def test_effectiveness_says_targets_are_checked_only_against_an_oracle():
    "effectiveness checks a target against the values an attribute takes only when given an AttributeOracle or its bound predict; behind a lambda {'bar': 5} scores 0.0 (a failed edit reads the same), which its docstring now says."
    x = Toy(size=16).sample(4, seed=0).images
    assert M.effectiveness(lambda im: reader(im), x, {'bar': 5}) == {'bar': 0.0}  # nothing tells 5 apart from a target the edit missed
    doc = ' '.join(M.effectiveness.__doc__.split())
    assert "Only an `AttributeOracle` or its bound `predict` tells which values an attribute can take" in doc and "(effusion=5) is not refused and scores 0.0" in doc
