"medcf.fusion: batched hyper-layers equal the per-sample loop, hyperfan-in, imputation, splits, bad input, determinism."
import numpy as np, pandas as pd, pytest, torch
from medcf.phantoms import BrainPhantom
from medcf.fusion import (HyperNet, HyperLinear, HyperConv, FusionNet, TabularMLP, IterativeImputer, encode_record,
                          stratified_split, balanced_accuracy, macro_auroc, FusionData, make_model, run_fusion, TASKS,
                          predict, evaluate, train_fusion, summarise)

torch.set_num_threads(1)


@pytest.mark.parametrize('layer,x', [
    (lambda: HyperLinear(10, 7, 5), lambda: torch.randn(6, 10)),
    (lambda: HyperConv(3, 4, 3, 5, stride=2, padding=1), lambda: torch.randn(6, 3, 9, 9)),
    (lambda: HyperConv(2, 3, 3, 5, padding=1, dim=3), lambda: torch.randn(6, 2, 5, 5, 5)),
])
def test_batched_equals_loop(layer, x):
    torch.manual_seed(0)
    l, x, e = layer(), x(), torch.randn(6, 5)
    y = l(x, e); y.sum().backward(); g = [p.grad.clone() for p in l.parameters()]
    l.zero_grad(); y2 = l.forward_loop(x, e); y2.sum().backward()
    assert torch.allclose(y, y2, atol=1e-5)
    assert all(torch.allclose(a, p.grad, atol=1e-5) for a, p in zip(g, l.parameters()))
    assert not torch.allclose(y[0], y[1])  # different samples get different weights


def test_hyperfan_in_variance():
    torch.manual_seed(0)
    e = torch.randn(2000, 8)
    for fan_in in (8, 512):
        h = HyperNet(8, 4 * fan_in, fan_in, 4, hidden=32, gain=2.0)
        with torch.no_grad(): w, b = h(e)
        assert abs(float(w.var()) * fan_in - 1) < 0.3  # gain / (2 fan_in) with gain 2
        assert abs(float(b.var()) - 0.5) < 0.2


def test_bad_input():
    net = FusionNet(5, 3, 'concat', width=4)
    with pytest.raises(ValueError, match='record batch'): net(torch.randn(2, 1, 32, 32), torch.randn(2, 4))  # width mismatch
    with pytest.raises(ValueError, match='image batch'): net(torch.randn(2, 32, 32), torch.randn(2, 5))  # wrong rank
    with pytest.raises(ValueError, match='image batch'): FusionNet(5, 3, 'image', dim=3, width=4)(torch.randn(2, 1, 16, 16), torch.randn(2, 5))
    t = torch.randn(2, 5); t[0, 1] = float('nan')
    with pytest.raises(ValueError, match='impute'): net(torch.randn(2, 1, 32, 32), t)  # NaN reaching the network
    with pytest.raises(ValueError, match='not fitted'): IterativeImputer().transform(np.zeros((2, 3)))  # no imputer fitted
    imp = IterativeImputer().fit(np.array([[1., np.nan], [2., 3.], [3., 4.]]))
    with pytest.raises(ValueError, match='fitted on 2'): imp.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match='2-D'): imp.transform(np.zeros(2))
    with pytest.raises(ValueError, match='entirely missing'): IterativeImputer().fit(np.array([[1., np.nan], [2., np.nan]]))
    with pytest.raises(ValueError, match='embedding'): HyperLinear(4, 2, 3)(torch.randn(2, 4), torch.randn(2, 2))
    with pytest.raises(ValueError, match='input'): HyperConv(3, 2, 1, 4)(torch.randn(2, 3, 8), torch.randn(2, 4))
    with pytest.raises(ValueError, match='fusion'): FusionNet(5, 3, 'attention')
    with pytest.raises(ValueError, match='tab_encoder'): FusionNet(5, 3, 'hyper_shortcut')
    with pytest.raises(ValueError, match='lacks'): encode_record(pd.DataFrame(dict(age=[70])), ['age', 'sex'])
    with pytest.raises(ValueError, match='sex'): encode_record(pd.DataFrame(dict(sex=['Male'])), ['sex'])
    with pytest.raises(ValueError, match='task'): FusionData('survival', 100)


def test_imputer_fitted_on_train_only_and_better_than_mean():
    b = BrainPhantom().sample(600, seed=4)
    cols = TASKS['ad']['columns']
    X, T = encode_record(b.attrs, cols), encode_record(b.truth, cols)
    imp = IterativeImputer().fit(X[:400])
    mean_before = imp.mean.copy()
    Z = imp.transform(X[400:])
    assert np.array_equal(imp.mean, mean_before) and not np.isnan(Z).any()
    assert Z.shape == (200, len(cols) + len(imp.incomplete)) and set(np.unique(Z[:, len(cols):])) <= {0, 1}
    assert np.array_equal(imp.transform(X[400:]), Z)  # deterministic
    j = cols.index('abeta'); m = np.isnan(X[400:, j])
    est = Z[m, j] * imp.std[j] + imp.mean[j]
    assert np.abs(est - T[400:, j][m]).mean() < np.abs(imp.mean[j] - T[400:, j][m]).mean()


def test_stratified_split():
    st = pd.DataFrame(dict(a=np.repeat(['x', 'y'], [300, 100]), b=np.tile([0, 1], 200)))
    tr, va, te = stratified_split(st, (0.6, 0.2, 0.2), seed=1)
    assert len(np.concatenate([tr, va, te])) == 400 and len(set(tr) | set(va) | set(te)) == 400
    assert abs((st.a.iloc[te] == 'y').mean() - 0.25) < 0.03
    assert [a.tolist() for a in stratified_split(st, seed=1)] == [a.tolist() for a in (tr, va, te)]
    with pytest.raises(ValueError, match='fractions'): stratified_split(st, (0.5, 0.6))


def test_metrics_match_sklearn():
    skm = pytest.importorskip('sklearn.metrics')
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200); p = rng.dirichlet(np.ones(3), 200); p[np.arange(200), y] += 0.3; p /= p.sum(1, keepdims=True)
    assert np.isclose(balanced_accuracy(y, p.argmax(1), 3), skm.balanced_accuracy_score(y, p.argmax(1)))
    assert np.isclose(macro_auroc(y, p), skm.roc_auc_score(y, p, multi_class='ovr', average='macro'))


def test_run_is_deterministic_and_complete():
    kw = dict(seeds=(0,), n=60, epochs=1, size=16, width=2, progress=False)
    a, ca = run_fusion('ad', **kw)
    b, _ = run_fusion('ad', **kw)
    assert set(a.model) == {'image', 'tabular', 'concat', 'film', 'daft', 'hyperfusion'}
    pd.testing.assert_frame_equal(a.drop(columns='train_s'), b.drop(columns='train_s'))
    assert a.auroc.between(0, 1).all() and len(ca) == 6


def test_hyperfusion_ad_keeps_tabular_model_frozen():
    d = FusionData('ad', 60, seed=0, size=16)
    enc = TabularMLP(d.n_tab, 3)
    before = [p.clone() for p in enc.parameters()]
    m = make_model('hyperfusion', d, width=2, tab_encoder=enc)
    m(d.images[:4], d.tab[:4]).sum().backward()
    assert all(torch.equal(a, p) for a, p in zip(before, enc.parameters()))
    assert all(p.grad is None for p in m.tab_encoder.parameters())
    assert any(p.grad is not None for p in m.blocks[-1].short.parameters())
    assert m.tab_encoder is not enc and all(p.requires_grad for p in enc.parameters())  # a frozen copy: the caller's model is left as it was


def test_volumes_3d():
    r, _ = run_fusion('ad', seeds=(0,), n=60, epochs=1, size=16, dim=3, width=2, models=('tabular', 'hyperfusion'), progress=False)
    assert list(r.model) == ['tabular', 'hyperfusion'] and r.auroc.between(0, 1).all()
    with pytest.raises(ValueError, match="needs 'tabular'"): run_fusion('ad', models=('hyperfusion',), progress=False)


def test_run_fusion_returns_its_models():
    "return_models gives every trained model by (seed, name); scored again on its seed's data it reproduces the table's row."
    from medcf.fusion import evaluate
    kw = dict(seeds=(0, 1), n=60, epochs=1, size=16, width=2, models=('tabular', 'hyperfusion'), progress=False)
    r, curves, models = run_fusion('age', return_models=True, **kw)
    assert sorted(models) == [(s, m) for s in (0, 1) for m in ('hyperfusion', 'tabular')]
    for s in (0, 1):
        data = FusionData('age', 60, s, 16, None)
        for name in ('tabular', 'hyperfusion'):
            row = r[(r.seed == s) & (r.model == name)].iloc[0]
            assert evaluate(models[(s, name)], data)['mae'] == pytest.approx(row.mae, abs=1e-9)
    assert len(run_fusion('age', **kw)) == 2
    with pytest.raises(TypeError, match='return_models'): run_fusion('age', return_models='yes', **kw)


def test_metrics_reject_bad_input():
    "Empty, mismatched, out-of-range or NaN input raised nothing and returned nan, 0.5 or 1.0."
    with pytest.raises(ValueError, match='non-empty'): balanced_accuracy([], [], 2)
    with pytest.raises(ValueError, match=r'0\.\.1'): balanced_accuracy([0, 5, 5], [0, 5, 0], 2)
    with pytest.raises(ValueError, match='NaN'): balanced_accuracy([0, 1], [np.nan, 1], 2)
    with pytest.raises(ValueError, match='one per patient'): balanced_accuracy([0, 1, 1], [0, 1], 2)
    with pytest.raises(ValueError, match='at least 2 classes'): macro_auroc([0, 0], np.eye(2))
    with pytest.raises(ValueError, match=r'0\.\.1'): macro_auroc([0, 5], np.eye(2))
    p = np.array([[np.nan, .5], [.2, .8], [.3, .7], [.9, .1]])
    with pytest.raises(ValueError, match='NaN'): macro_auroc([0, 1, 1, 0], p)
    with pytest.raises(ValueError, match='N x K'): macro_auroc([0, 1], [0.2, 0.8])
    with pytest.raises(ValueError, match='one per patient'): macro_auroc([0, 1, 1], np.eye(2))


def test_settings_are_checked():
    X = np.array([[1., np.nan], [2., 3.], [3., 4.]])
    for r in (float('nan'), -1):
        with pytest.raises(ValueError, match='ridge'): IterativeImputer(ridge=r)
    for k in (0, 2.5, '5'):
        with pytest.raises(ValueError, match='n_iter'): IterativeImputer(n_iter=k)
    assert IterativeImputer(n_iter=np.int64(2), ridge=0.5).fit(X).n_out == 3
    st = pd.DataFrame(dict(a=np.tile([0, 1], 20)))
    with pytest.raises(ValueError, match='three positive parts'): stratified_split(st, (0.5, 0.5))
    with pytest.raises(ValueError, match='three positive parts'): FusionData('ad', 40, size=16, fractions=(0.5, 0.5))
    with pytest.raises(ValueError, match=r'n=30\.5'): FusionData('ad', 30.5, size=16)
    with pytest.raises(ValueError, match='seeds'): run_fusion('ad', seeds=(), progress=False)
    with pytest.raises(ValueError, match='models'): run_fusion('ad', models=('tabular', 'resnet'), progress=False)
    with pytest.raises(ValueError, match='models'): run_fusion('ad', models='tabular', progress=False)
    with pytest.raises(ValueError, match='epochs'): run_fusion('ad', epochs=0, progress=False)
    with pytest.raises(ValueError, match='task, model'): summarise(pd.DataFrame({'x': [1]}))


def test_prediction_and_training_arguments():
    d = FusionData('ad', 40, seed=0, size=16)
    m = make_model('tabular', d)
    with pytest.raises(ValueError, match='width'): make_model('image', d, width=0)
    with pytest.raises(ValueError, match='bs'): predict(m, d, np.array([0, 1]), bs=0)
    for idx in (np.array([], int), np.array([0., 1.])):
        with pytest.raises(ValueError, match='integer patient indices'): predict(m, d, idx)
    with pytest.raises(ValueError, match=r'0\.\.39'): predict(m, d, np.array([0, 40]))
    with pytest.raises(ValueError, match="'train', 'val', 'test'"): evaluate(m, d, 'valid')
    for kw in (dict(epochs=0), dict(bs=0), dict(bs=-1)):
        with pytest.raises(ValueError, match=next(iter(kw))): train_fusion(m, d, progress=False, **kw)
    assert predict(m, d, np.arange(5), bs=np.int64(2)).shape == (5, 3)


def test_stratified_split_needs_rows():
    "An empty table gave three empty splits without a word."
    import pandas as pd
    from medcf.fusion import stratified_split
    with pytest.raises(ValueError, match='one row per patient'): stratified_split(pd.DataFrame({'dx': []}))
    with pytest.raises(ValueError, match='DataFrame'): stratified_split(pd.Series([0, 1, 0]))


def test_imputer_says_when_a_column_was_complete_in_training():
    "A column complete at fit but missing at transform becomes its training mean with no indicator, as before, but no longer silently."
    import warnings
    imp = IterativeImputer().fit(np.array([[1., 2.], [2., np.nan], [3., 6.], [4., 8.]]))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert imp.transform(np.array([[2.5, np.nan]])).shape == (1, 3)  # column 1 may be missing: imputed, flagged, no warning
    with pytest.warns(UserWarning, match=r'columns \[0\] have missing values but had none'): z = imp.transform(np.array([[np.nan, 8.], [4., np.nan]]))
    assert z[0, 0] == 0 and z.shape == (2, 3)  # the training mean (standardised: 0), no column added


def test_brain_age_data_has_the_patients_asked_for():
    "The age task keeps cognitively normal subjects only; it used to return fewer than n when a draw had too few (234 of 240 at seed 0)."
    for seed in (0, 3):
        d = FusionData('age', 240, seed=seed, size=16)
        assert len(d.batch) == 240 and (d.batch.truth.stage == 'CN').all()


def test_fusion_inputs_that_were_ignored_or_misread(monkeypatch):
    "Read-only audit, session 26: a diverged first epoch pinned NaN weights; tab_encoder was dropped silently; FusionNet froze the caller's MLP; strata joined by '|' merged."
    import torch, pandas as pd
    from medcf import fusion as Fu
    da = Fu.FusionData('age', 30, size=32)
    maes, states = iter([float('nan'), 5.0, 7.0]), []  # a NaN first epoch, then finite ones
    real = Fu.evaluate
    def fake(m, d, part):
        states.append({k: v.clone() for k, v in m.state_dict().items()})
        return {**real(m, d, part), 'mae': next(maes)}
    monkeypatch.setattr(Fu, 'evaluate', fake)
    model = Fu.make_model('concat', da, 4)
    Fu.train_fusion(model, da, 3, progress=False)
    assert all(torch.equal(v, states[1][k]) for k, v in model.state_dict().items())  # epoch 2's weights (epoch 1's NaN score blocked every later one)
    monkeypatch.setattr(Fu, 'evaluate', lambda m, d, part: {**real(m, d, part), 'mae': float('nan')})
    with pytest.raises(FloatingPointError, match='no epoch gave a finite validation score'): Fu.train_fusion(Fu.make_model('concat', da, 4), da, 2, progress=False)
    monkeypatch.undo()
    tm = Fu.TabularMLP(da.n_tab, da.n_out)
    with pytest.raises(ValueError, match="tab_encoder is used by HyperFusion on the AD task only"): Fu.make_model('film', da, 4, tm)
    Fu.FusionNet(da.n_tab, da.n_out, 'hyper_shortcut', 2, 4, tab_encoder=tm)
    assert all(p.requires_grad for p in tm.parameters())  # the caller's model is not frozen in place
    with pytest.raises(TypeError, match="indicators='no'"): Fu.IterativeImputer(indicators='no')
    with pytest.raises(ValueError, match="contain '\\|'"): Fu.stratified_split(pd.DataFrame({'a': ['a|b', 'a'], 'b': ['c', 'b|c']}))
    one = pd.DataFrame(dict(task=['age'], model=['concat'], seed=[0], mae=[0.333]))
    assert Fu.summarise(one).loc[('age', 'concat'), 'mae'] == '0.333'  # was '0.333 ± nan'


def test_fusion_audit_session_32(tmp_path):
    "Read-only audit, session 32: raw errors and silent results in the fusion module, and the data a researcher brings."
    from medcf.data import read_adnimerge
    # a diverging AD run ends in the divergence message (macro_auroc refused the NaN probabilities first)
    d = FusionData('ad', 60, size=32); torch.manual_seed(0)
    with pytest.raises(FloatingPointError, match='training diverged'): train_fusion(make_model('concat', d, 4), d, 2, lr=1e6, progress=False)
    for lr in ('1e-3', 0, -1.0):
        with pytest.raises(ValueError, match='lr'): train_fusion(make_model('concat', d, 4), d, 1, lr=lr, progress=False)
    # a part with one stage is refused where the data is made, naming the part
    with pytest.raises(ValueError, match=r"the (train|val|test) part .* holds only stage .*use more patients \(n=30\)"): FusionData('ad', 30, seed=8, size=32)
    # a last training batch of one joins the one before (BatchNorm refused it); 33 training patients at bs 32
    res, _ = run_fusion('ad', (0,), 58, 1, models=('image',), size=16, dim=3, width=4, progress=False)
    assert np.isfinite(res.bacc).all()
    with pytest.raises(ValueError, match='distinct seeds'): run_fusion('ad', (0, 0), 40, 1, models=('tabular',), size=16, progress=False)
    # missing strata, a record of another dtype, a wrong encoder, wrong architecture arguments
    with pytest.raises(ValueError, match=r"strata have missing values in \['stage'\] \(rows \[2, 6"): stratified_split(pd.DataFrame(dict(stage=['CN', 'AD', None, 'MCI'] * 3)))
    with pytest.raises(ValueError, match='seed'): stratified_split(pd.DataFrame(dict(stage=['CN', 'AD'] * 6)), seed='a')
    net = FusionNet(5, 3, 'concat', width=4); img, rec = torch.randn(4, 1, 32, 32), torch.randn(4, 5)
    assert torch.equal(net.eval()(img, rec.double()), net(img, rec))  # encode_record gives float64: cast, not a dtype error
    with pytest.raises(TypeError, match='expected a torch tensor'): net(img, rec.numpy())
    bad = img.clone(); bad[0, 0, 3, 3] = float('nan')
    with pytest.raises(ValueError, match='1 NaN or inf pixels'): net(bad, rec)
    with pytest.raises(ValueError, match='record contains NaN'): TabularMLP(5, 3)(None, torch.full((4, 5), float('nan')))
    with pytest.raises(ValueError, match=r'expected \(4, 5\)'): TabularMLP(5, 3)(None, torch.randn(4, 6))
    with pytest.raises(ValueError, match='TabularMLP on this data'): make_model('hyperfusion', d, tab_encoder=TabularMLP(5, 3))
    with pytest.raises(ValueError, match='dim=4'): FusionNet(5, 3, 'concat', dim=4)
    for kw in (dict(width=0), dict(n_out=0)):
        with pytest.raises(ValueError, match=next(iter(kw))): FusionNet(**{**dict(n_tab=5, n_out=3, fusion='concat'), **kw})
    da = FusionData('age', 40, size=16)
    with pytest.raises(ValueError, match=r"outputs of shape \(\d+, 3\); the 'age' task expects \(batch, 1\)"): train_fusion(FusionNet(1, 3, 'image', width=4), da, 1, progress=False)
    with pytest.raises(ValueError, match="the 'age' task expects"): evaluate(FusionNet(1, 3, 'image', width=4), da)
    # the imputer checks a DataFrame's columns and says what to do with text
    imp = IterativeImputer().fit(pd.DataFrame(dict(age=[70, 75, 80, 65.], abeta=[900, np.nan, 500, 1200])))
    with pytest.raises(ValueError, match=r"columns \['abeta', 'age'\]; the imputer was fitted on \['age', 'abeta'\]"): imp.transform(pd.DataFrame(dict(abeta=[np.nan, 800.], age=[72, 68.])))
    with pytest.raises(ValueError, match='encode_record'): IterativeImputer().fit(pd.DataFrame(dict(sex=['M', 'F', 'M'], age=[1., 2, 3])))
    with pytest.warns(UserWarning, match=r"columns \['age'\] have missing"): imp.transform(pd.DataFrame(dict(age=[np.nan], abeta=[800.])))
    # summarise names the seeds a metric comes from
    r = pd.DataFrame(dict(task='age', model='m', seed=[0, 1], mae=[3., 5.], mae_F=[4., np.nan]))
    assert summarise(r).loc[('age', 'm')].tolist() == ['4.000 ± 1.414', '4.000 (1 of 2 seeds)', 2]
    # read_adnimerge: a blank Years_bl at baseline is 0 years (the age was NaN); at a follow-up the age is unknown, said
    from medcf.phantoms import data_path
    raw = pd.read_csv(data_path('adni', 'ADNIMERGE_sample.csv'), dtype=str, keep_default_na=False)
    bad = raw.copy(); bl = bad.index[bad.VISCODE == 'bl']; bad.loc[bl, 'Years_bl'] = ''
    bad.to_csv(tmp_path / 'a.csv', index=False)
    assert read_adnimerge(tmp_path / 'a.csv').age.tolist() == read_adnimerge(data_path('adni', 'ADNIMERGE_sample.csv')).age.tolist()
    fu = raw.index[raw.VISCODE != 'bl'][0]; bad = raw.copy(); bad.loc[fu, 'Years_bl'] = ''; bad.to_csv(tmp_path / 'b.csv', index=False)
    with pytest.warns(UserWarning, match=r'Years_bl is blank at 1 follow-up visits'): v = read_adnimerge(tmp_path / 'b.csv', baseline_only=False)
    assert v.age.isna().sum() == 1


def test_fusion_data_from_your_own_record_and_phantom():
    "FusionData.from_record takes images and a record (as read_adnimerge gives); FusionData(phantom=) draws from a chosen phantom."
    ph = BrainPhantom(16, seed=5)
    d = FusionData('ad', 60, seed=1, phantom=ph)
    assert d.images.shape[-1] == 16 and len(d) == 60
    with pytest.raises(ValueError, match='size=32, but the phantom draws size 16'): FusionData('ad', 60, size=32, phantom=ph)
    b = BrainPhantom(16, seed=0).sample(60, seed=2)
    rec = b.attrs.assign(stage=b.truth.stage, age=b.truth.age)
    own = FusionData.from_record('ad', b.images, rec, seed=1)
    assert own.batch is None and own.n_tab == d.n_tab and sorted(np.concatenate(list(own.split.values()))) == list(range(60))
    assert own.y.tolist() == pd.Categorical(b.truth.stage, BrainPhantom.stages).codes.tolist()
    m = make_model('concat', own, 4); train_fusion(m, own, 1, progress=False)
    assert set(evaluate(m, own)) == {'bacc', 'auroc'}
    with pytest.raises(ValueError, match='60 images but 59 record rows'): FusionData.from_record('ad', b.images, rec.iloc[:59])
    with pytest.raises(ValueError, match=r"lacks columns \['stage'\]"): FusionData.from_record('ad', b.images, rec.drop(columns='stage'))
    gap = rec.copy(); gap.loc[3, 'stage'] = None
    with pytest.raises(ValueError, match=r"without a usable target or stratum: \{'stage': \[3\]\}"): FusionData.from_record('ad', b.images, gap)
    with pytest.raises(ValueError, match='N x 1 x S x S'): FusionData.from_record('ad', b.images[:, 0], rec)
    with pytest.warns(UserWarning, match="task='age' with \\d+ participants who are not cognitively normal"): age = FusionData.from_record('age', b.images, rec)
    assert age.n_out == 1 and abs(float(age.y[age.split['train']].mean())) < 1e-5
    with pytest.raises(ValueError, match=r'images range over .*expected images scaled to \[-1, 1\]'): FusionData.from_record('ad', (b.images + 1) * 127.5, rec)
    with pytest.warns(UserWarning, match=r'images in \[0, 1\]\? medcf expects \[-1, 1\]'): FusionData.from_record('ad', (b.images + 1) / 2, rec)  # passed silently
    dup = rec.assign(rid=[0, 0] + list(range(2, 60)))
    with pytest.raises(ValueError, match=r'several rows for participants \[0\]'): FusionData.from_record('ad', b.images, dup)
    inf = rec.copy(); inf.loc[5, 'age'] = np.inf
    with pytest.raises(ValueError, match=r"without a usable target or stratum: \{'age': \[5\]\}"): FusionData.from_record('ad', b.images, inf)
    imp = IterativeImputer().fit(pd.DataFrame({'a': pd.Series([1.0, pd.NA, 3.0, 4.0], dtype=object), 'b': [1.0, 2.0, 3.0, 5.0]}))
    assert imp.n_out == 3  # pd.NA in an object column is a missing value
