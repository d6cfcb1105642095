"Stated rules of medcf.fusion and the brain phantom (from a mutation-testing pass: each test pins a rule, a hand-worked value or the message a refusal must contain)."
import numpy as np, pandas as pd, pytest, torch
from medcf.phantoms import BrainPhantom
from medcf.fusion import (HyperNet, HyperLinear, HyperConv, FusionNet, IterativeImputer, encode_record, stratified_split,
                          balanced_accuracy, FusionData, make_model, predict, evaluate)

torch.set_num_threads(1)


# M01: encode_record's doc says sex becomes 1 for 'M', 0 for 'F', missing stays NaN
def test_encode_record_codes_sex_as_documented():
    out = encode_record(pd.DataFrame(dict(sex=['M', 'F', None], age=[70, 71.5, np.nan])), ['sex', 'age'])
    assert np.array_equal(out, np.array([[1., 70.], [0., 71.5], [np.nan, np.nan]]), equal_nan=True)


# M04, M05: documented defaults (5 rounds, ridge 1e-2), checked against the ridge normal equations by hand
def test_imputer_defaults_are_the_documented_ones():
    X = np.array([[1., 2.], [2., np.nan], [3., 6.], [4., 9.], [5., np.nan]])
    imp = IterativeImputer().fit(X)
    assert len(imp.coefs) == 5 * 1  # n_iter=5 rounds over the one incomplete column
    mu, sd = np.nanmean(X, 0), np.nanstd(X, 0)
    o = ~np.isnan(X[:, 1]); z0 = (X[:, 0] - mu[0]) / sd[0]; z1 = (X[o, 1] - mu[1]) / sd[1]
    A = np.c_[np.ones(o.sum()), z0[o]]
    w = np.linalg.solve(A.T @ A + 1e-2 * np.eye(2), A.T @ z1)  # ridge 1e-2 on standardised data
    assert np.allclose(imp.coefs[-1][1], w)


# M06: only NaN marks a missing value; inf is refused, not imputed
def test_imputer_refuses_inf():
    with pytest.raises(ValueError, match='contains inf'): IterativeImputer().fit(np.array([[1., np.inf], [2., 3.], [3., 4.]]))
    imp = IterativeImputer().fit(np.array([[1., np.nan], [2., 3.], [3., 4.]]))
    with pytest.raises(ValueError, match='contains inf'): imp.transform(np.array([[-np.inf, 3.]]))


# M07: a column constant in training keeps scale 1 (as StandardScaler does): a new value v becomes v - mean
def test_imputer_constant_column_has_unit_scale():
    imp = IterativeImputer(indicators=False).fit(np.array([[1., 5.], [2., 5.], [3., 5.]]))
    assert imp.transform(np.array([[2., 7.]]))[0, 1] == pytest.approx(2.0)


# M11: the indicator column is 1 where the value was missing, 0 where observed
def test_imputer_indicator_marks_missing_with_one():
    imp = IterativeImputer().fit(np.array([[1., 2.], [2., np.nan], [3., 6.], [4., 8.]]))
    Z = imp.transform(np.array([[2.5, np.nan], [3.5, 7.]]))
    assert Z[:, 2].tolist() == [1.0, 0.0]


# M13: fractions must be three positive parts; a zero part is refused
def test_split_refuses_a_zero_fraction():
    st = pd.DataFrame(dict(a=np.tile([0, 1], 20)))
    with pytest.raises(ValueError, match='three positive parts'): stratified_split(st, (0.0, 0.5, 0.5))


# M16: each part lists its patients in ascending order (so images[idx] keeps the record's order)
def test_split_parts_are_sorted():
    st = pd.DataFrame(dict(a=np.repeat(['x', 'y', 'z'], [40, 30, 30])))
    for p in stratified_split(st, seed=3): assert np.array_equal(p, np.sort(p)) and len(p)


# M17: hyperfan-in without generated biases: the weights carry the whole variance, gain / fan_in
def test_hyperfan_in_without_bias():
    torch.manual_seed(0)
    e = torch.randn(2000, 8)
    h = HyperNet(8, 4 * 64, 64, 0, hidden=32, gain=2.0)
    with torch.no_grad(): w, b = h(e)
    assert b is None and abs(float(w.var()) * 64 / 2.0 - 1) < 0.3


# M19: an embedding with the wrong number of rows is refused with the layer's message
def test_embedding_batch_size_is_checked():
    with pytest.raises(ValueError, match=r'embedding has shape \(3, 3\); expected \(2, 3\)'): HyperLinear(4, 2, 3)(torch.randn(2, 4), torch.randn(3, 3))
    with pytest.raises(ValueError, match=r'embedding has shape \(3, 4\); expected \(2, 4\)'): HyperConv(3, 2, 1, 4)(torch.randn(2, 3, 8, 8), torch.randn(3, 4))


# M21: HyperConv refuses a dimension other than 2 or 3
def test_hyperconv_refuses_dim():
    with pytest.raises(ValueError, match='dim=4: expected 2 or 3'): HyperConv(3, 2, 1, 4, dim=4)


# M23: FiLM and DAFT start as the identity modulation: a fresh model's output does not depend on the record
@pytest.mark.parametrize('fusion', ['film', 'daft'])
def test_modulation_starts_as_identity(fusion):
    torch.manual_seed(0)
    net = FusionNet(5, 3, fusion, width=4).eval()
    img = torch.randn(3, 1, 16, 16)
    assert torch.allclose(net(img, torch.randn(3, 5)), net(img, torch.randn(3, 5) * 3))


# M32: a class index equal to n_classes is out of range
def test_class_index_k_is_refused():
    with pytest.raises(ValueError, match=r'classes \[2\]; expected class indices in 0\.\.1'): balanced_accuracy([0, 2], [0, 1], 2)


# M36: images a little outside [-1, 1] are refused
def test_from_record_refuses_images_slightly_out_of_range():
    b = BrainPhantom(16, seed=0).sample(60, seed=2)
    rec = b.attrs.assign(stage=b.truth.stage, age=b.truth.age)
    with pytest.raises(ValueError, match=r'expected images scaled to \[-1, 1\]'): FusionData.from_record('ad', b.images * 1.05, rec)


# M42: mae_F / mae_M are the mean absolute errors in years over the women / men of the part
def test_evaluate_mae_per_sex():
    d = FusionData('age', 40, seed=0, size=16)
    torch.manual_seed(0); m = make_model('concat', d, 2)
    idx = d.split['test']
    err = np.abs(predict(m, d, idx)[:, 0].numpy() * d.y_std + d.y_mean - d.batch.truth.age.to_numpy()[idx])
    r = evaluate(m, d)
    sex = d.batch.truth.sex.to_numpy()[idx]
    assert r['mae_F'] == pytest.approx(err[sex == 'F'].mean(), abs=1e-3) and r['mae_M'] == pytest.approx(err[sex == 'M'].mean(), abs=1e-3)


# M54: the caption states the age rounded to the nearest year
def test_brain_caption_rounds_the_age():
    b = BrainPhantom(16, seed=0).sample(40, seed=1)
    for cap, age in zip(b.prompts, b.attrs.age):
        assert f"{int(np.floor(age + 0.5))}-year-old" in cap
    assert (b.attrs.age % 1 >= 0.5).any()  # some ages round up



# M22: the hyper-generated 1x1 shortcut is summed before the ReLU (linear): gain 1, weight variance 1 / (2 fan_in)
def test_hyper_shortcut_uses_linear_gain():
    from medcf.fusion import ResBlock
    torch.manual_seed(0)
    blk = ResBlock(8, 16, cond='hyper', embed_dim=8)
    with torch.no_grad(): w, _ = blk.short.hyper(torch.randn(2000, 8))
    assert abs(float(w.var()) * 2 * 8 - 1) < 0.3  # fan_in = 8 channels x 1x1 kernel


# M24: DAFT scales and shifts the block input: x * (1 + a) + b; a pure shift b=1 equals the identity block on x + 1
def test_daft_applies_its_shift():
    import copy
    from medcf.fusion import ResBlock
    torch.manual_seed(0)
    blk = ResBlock(8, 16, cond='daft', embed_dim=3).eval()
    plain = copy.deepcopy(blk)
    with torch.no_grad(): blk.daft[-1].bias[8:] = 1.0  # shift 1, scale 0 (weights start at zero)
    x, e = torch.randn(2, 8, 8, 8), torch.randn(2, 3)
    assert torch.allclose(blk(x, e), plain(x + 1, e), atol=1e-5)


# M26: integer tensors (e.g. uint8 images) are refused, not silently cast
def test_integer_tensors_are_refused():
    net = FusionNet(5, 3, 'concat', width=4)
    with pytest.raises(TypeError, match='image batch has dtype torch.uint8; expected a floating-point tensor'):
        net(torch.zeros(2, 1, 16, 16, dtype=torch.uint8), torch.randn(2, 5))
    with pytest.raises(TypeError, match='record has dtype torch.int64'): net(torch.randn(2, 1, 16, 16), torch.zeros(2, 5, dtype=torch.long))


# M27, M28: FusionNet refuses 'tabular' (TabularMLP's job) and a tab_encoder that its fusion would ignore; session 42's pass over the
# multi-line refusals: FusionNet itself (not only make_model) refuses a tab_encoder of another record width
def test_fusionnet_refuses_tabular_and_encoders_it_cannot_use():
    from medcf.fusion import TabularMLP
    with pytest.raises(ValueError, match='use TabularMLP'): FusionNet(5, 3, 'tabular')
    with pytest.raises(ValueError, match="tab_encoder is used by 'hyper_shortcut' only; fusion='film'"): FusionNet(5, 3, 'film', tab_encoder=TabularMLP(5, 3))
    with pytest.raises(ValueError, match=r"tab_encoder reads records 7 wide; this model's are 5 \(n_tab\)"):
        FusionNet(5, 3, 'hyper_shortcut', tab_encoder=TabularMLP(7, 3))
    FusionNet(5, 3, 'hyper_shortcut', tab_encoder=TabularMLP(5, 3))  # the same width is taken


# M44: the AD loss is class-weighted, weight_k = n_train / (3 * count_k) ('balanced' weights)
def test_ad_loss_is_class_weighted(monkeypatch):
    from medcf.fusion import TabularMLP, train_fusion
    d = FusionData('ad', 60, seed=0, size=16)
    seen, Real = [], torch.nn.CrossEntropyLoss
    def spy(*a, **kw): seen.append(kw.get('weight')); return Real(*a, **kw)
    monkeypatch.setattr(torch.nn, 'CrossEntropyLoss', spy)
    torch.manual_seed(0); train_fusion(TabularMLP(d.n_tab, 3), d, 1, progress=False)
    y = d.y[d.split['train']].numpy(); cnt = np.array([(y == k).sum() for k in range(3)])
    assert seen[0] is not None and np.allclose(seen[0].numpy(), len(y) / (3 * np.maximum(cnt, 1)))


# M58: the renderer adds per-pixel noise (render_noise 'pixel_seed'): neighbouring pixels inside the brain differ
def test_brain_images_carry_pixel_noise():
    im = BrainPhantom(64).sample(4, seed=0).images[:, 0, 24:40, 24:40]
    assert float((im[:, :, 1:] - im[:, :, :-1]).abs().median()) > 0.02  # iid noise of sd 0.04: median |diff| ~ 0.038; a smooth image ~ 0


# M65: from_record refuses fewer than 30 rows (the split needs patients in every part)
def test_from_record_needs_30_rows():
    b = BrainPhantom(16, seed=0).sample(29, seed=2)
    rec = b.attrs.assign(stage=b.truth.stage, age=b.truth.age)
    with pytest.raises(ValueError, match='the number of patients'): FusionData.from_record('ad', b.images, rec)


# M67: HyperFusion on the age task hyper-generates the head from the record (make_model's doc)
def test_hyperfusion_age_generates_the_head():
    d = FusionData('age', 40, seed=0, size=16)
    m = make_model('hyperfusion', d, 2)
    assert m.fusion == 'hyper_head' and isinstance(m.head1, HyperLinear)


# M68: HyperFusion (AD) initialises its hypernetwork for the encoder's real embedding: hyperfan-in variance 1 / (2 fan_in)
def test_hyperfusion_ad_init_uses_the_embedding_scale():
    from medcf.fusion import TabularMLP
    d = FusionData('ad', 200, seed=0, size=16)
    torch.manual_seed(0); enc = TabularMLP(d.n_tab, 3)
    with torch.no_grad(): enc.body[0].weight.mul_(3.0)  # an embedding whose second moment is far from 1
    m = make_model('hyperfusion', d, 4, tab_encoder=enc)
    with torch.no_grad(): w, _ = m.blocks[-1].short.hyper(enc.embed(d.tab[d.split['train']]))
    fan_in = 4 * 4  # 1x1 shortcut over 4 * width channels
    assert 0.4 < float(w.var()) * 2 * fan_in < 2.5  # wide band (hidden width 16 makes it noisy); an init for E[e^2]=1 gives ~0.13 here


# M70: FusionData refuses a phantom that is not a BrainPhantom, by type
def test_fusion_data_refuses_other_phantoms():
    with pytest.raises(TypeError, match='expected a BrainPhantom'): FusionData('ad', 60, phantom='brain')


# review fus-1: a repeated model name trained one model twice on one seed, and summarise showed the copies as a spread over 2 seeds
def test_repeated_models_and_seed_rows_are_refused():
    from medcf.fusion import run_fusion, summarise
    with pytest.raises(ValueError, match=r"models=\('image', 'image'\): a repeated model .*expected distinct names"):
        run_fusion('age', (0,), 30, 1, models=('image', 'image'), size=16, width=2, progress=False)
    r = pd.DataFrame(dict(task='age', model='image', seed=[0, 0], mae=[5.269, 5.269]))  # one run concatenated twice (was '5.269 ± 0.000', seeds 2)
    with pytest.raises(ValueError, match=r"several rows for \(task, model, seed\) \[\['age', 'image', 0\]\]; expected one row per seed"): summarise(r)
    with pytest.raises(ValueError, match=r"lack columns \['seed'\]"): summarise(r.drop(columns='seed'))  # without seeds the rows cannot be told apart


# review fus-2: an age outside the strata's (0, 200] years (months, 0, negative) was reported as a missing stratum value
def test_from_record_refuses_ages_out_of_range():
    b = BrainPhantom(16, seed=0).sample(40, seed=9)
    rec = b.attrs.assign(stage=b.truth.stage)
    for ages, rows in ((rec.age * 12, r'\[0, 1, 2, 3, 4\]'), (rec.age.where(rec.index != 3, 0.0), r'\[3\]'), (rec.age.where(rec.index != 5, -70.0), r'\[5\]')):
        with pytest.raises(ValueError, match=rf"record rows {rows} have ages .*outside \(0, 200\]; expected ages in years"): FusionData.from_record('ad', b.images, rec.assign(age=ages))


# review fus-3: an inf in the record went through the networks (NaN outputs, no error); NaN was refused
def test_networks_refuse_inf_in_the_record():
    from medcf.fusion import TabularMLP
    torch.manual_seed(0)
    img, t = torch.rand(4, 1, 16, 16) * 2 - 1, torch.randn(4, 3); t[1, 2] = float('inf')
    for m in (FusionNet(3, 1, 'concat', width=2), FusionNet(3, 1, 'hyper_head', width=2), TabularMLP(3, 1)):
        with pytest.raises(ValueError, match='record contains NaN or inf'): m.eval()(img, t)


# review fus-4: ridge=0 was allowed and crashed (LinAlgError) on a constant or duplicated column; a ridge too small to help is said
def test_imputer_ridge_must_be_positive():
    with pytest.raises(ValueError, match=r'ridge=0: expected a finite penalty > 0'): IterativeImputer(ridge=0)
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=50), rng.normal(size=50)]; X = np.c_[X, X[:, 0]]; X[::5, 1] = np.nan  # column 2 duplicates column 0
    with pytest.raises(ValueError, match=r"regression of column 1 on the others is singular at ridge=1e-20 .*expected a larger ridge"): IterativeImputer(ridge=1e-20).fit(X)
    assert np.isfinite(IterativeImputer().fit_transform(X)).all()  # the default handles it


def test_predicted_age_is_years_after_scaling_and_shifting():
    "The age target is (age - y_mean) / y_std: years are out * y_std + y_mean. Exercise 5 of nb 40 said 'multiply by data.y_std for years' (off by y_mean, ~70 years); it and predict's docstring now add y_mean."
    import json, pathlib
    rng = np.random.default_rng(0); age = rng.uniform(60, 85, 40)
    d = FusionData.from_record('age', -torch.ones(40, 1, 8, 8), pd.DataFrame(dict(age=age, sex=['M', 'F'] * 20)))
    assert np.allclose(d.y.numpy() * d.y_std + d.y_mean, age, atol=1e-3) and d.y_mean > 60
    assert 'out * data.y_std + data.y_mean' in predict.__doc__
    nb = pathlib.Path(__file__).parents[1] / 'nbs' / '40_fusion.ipynb'
    if nb.exists():  # a source checkout: the exercise's prose states the same rule
        ex5 = next(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c.get('id') == 'ec74bd93')
        assert 'multiply by `data.y_std` and add `data.y_mean` for years' in ex5 and 'multiply by `data.y_std` for years' not in ex5


def test_duplicated_record_columns_are_refused_by_name():
    "A record joined twice (pd.concat(axis=1)) has every column twice: encode_record said 'column 'age' is not numeric' (it is) or raised AttributeError for sex; from_record a TypeError."
    a = pd.DataFrame(dict(sex=['M', 'F'] * 20, age=np.linspace(60, 85, 40)))
    df = pd.concat([a, a[['age']]], axis=1)
    for c in (['age'], ['sex', 'age']):
        with pytest.raises(ValueError, match=r"record has duplicated columns \['age'\]; expected one column per name"): encode_record(df, c)
    assert np.array_equal(encode_record(df, ['sex']), encode_record(a, ['sex']))  # a column read once is still read
    for dup in ('age', 'sex'):
        with pytest.raises(ValueError, match=rf"record has duplicated columns \['{dup}'\]; expected one column per name"):
            FusionData.from_record('age', -torch.ones(40, 1, 8, 8), pd.concat([a, a[[dup]]], axis=1))

def test_imputer_gives_a_column_constant_in_floats_sd_one():
    "A training column holding 0.1 in every row has a computed sd of 1.4e-17 (rounding), not 0: the imputer kept it, so a patient with 0.2 was standardised to ~7e15; a constant column gets sd 1, as one whose sd is exactly 0 did."
    from medcf.fusion import IterativeImputer
    rng = np.random.default_rng(0)
    X = np.c_[np.full(40, 0.1), rng.normal(size=40)]
    assert np.nanstd(X, 0)[0] != 0  # the premise: rounding, not 0
    imp = IterativeImputer().fit(X)
    Z = imp.transform(np.array([[0.2, 0.0]]))
    assert imp.std[0] == 1 and abs(Z[0, 0] - 0.1) < 1e-6  # transform returns float32 (0.1 is 0.1 + 1.5e-9 there)


def test_fusion_data_refuses_a_split_with_an_empty_part_or_one_training_patient():
    "For 'age' no split was checked: fractions (0.8, 0.1, 0.1) gave an empty val part (train_fusion then failed on 'idx'), (0.02, 0.49, 0.49) one training patient (y_std 0, every target NaN/inf) or none (an imputer error blaming 'sex'); equal training ages gave y_std 0 too."
    said = r"the split of 30 patients has parts of \{{'train': {}, 'val': {}, 'test': {}\}} patients; expected 2 or more in train and 1 or more in val and in test: use more patients, another seed or other fractions \(now \({}\)\)"
    for seed, fr, sizes in ((1, (0.8, 0.1, 0.1), (25, 0, 5)), (1, (0.02, 0.49, 0.49), (1, 15, 14)), (0, (0.02, 0.49, 0.49), (0, 17, 13))):
        with pytest.raises(ValueError, match=said.format(*sizes, ', '.join(map(str, fr)))): FusionData('age', 30, seed, size=16, fractions=fr)
    rec = pd.DataFrame(dict(age=np.r_[np.full(20, 70.0), np.linspace(66, 71, 20)], sex=['M', 'F'] * 20))  # ages that differ pass
    with pytest.raises(ValueError, match=r"the \d+ training patients all have age 70; the age target is standardised by their spread, so expected ages that differ"):
        FusionData.from_record('age', -torch.ones(30, 1, 8, 8), pd.DataFrame(dict(age=np.full(30, 70.0), sex=['M', 'F'] * 15)))
    d = FusionData.from_record('age', -torch.ones(40, 1, 8, 8), rec)
    assert d.y_std > 0 and torch.isfinite(d.y).all()


def test_imputer_refused_refit_keeps_the_earlier_fit():
    "A refit refused for an entirely missing column had already stored the new column names and width: the imputer stayed fitted but refused the record it had been fitted on."
    rng = np.random.default_rng(0)
    good = pd.DataFrame(rng.normal(size=(50, 3)), columns=['a', 'b', 'c']); good.iloc[::5, 1] = np.nan
    imp = IterativeImputer().fit(good); ref = imp.transform(good)
    for bad in (pd.DataFrame(dict(x=[1., 2., 3.], y=[np.nan] * 3)), np.array([[1., np.inf], [2., 3.]])):
        with pytest.raises(ValueError, match=r"columns \['y'\] are entirely missing|contains inf"): imp.fit(bad)
        assert imp.fitted and imp.columns == ['a', 'b', 'c'] and imp.n_features == 3 and np.array_equal(imp.transform(good), ref)


def test_hyperfan_in_docstring_states_the_variance_without_biases():
    "The docstring said the generated weights get gain/(2 fan_in); with n_bias=0 (allowed) they get gain/fan_in, as measured here."
    doc = HyperNet.init_hyperfan_in.__doc__
    assert 'gain/(2 fan_in)' in doc and 'without generated biases (n_bias=0) the weights carry the whole variance, gain/fan_in' in doc
    torch.manual_seed(0); e = torch.randn(2000, 8)
    with torch.no_grad(): w, _ = HyperNet(8, 16 * 64, 64, 0, hidden=64, gain=2.0)(e)
    assert abs(float(w.var()) * 64 / 2.0 - 1) < 0.2


def test_from_record_refuses_a_missing_rid_by_its_own_message():
    "Two rows with rid NaN were refused as 'several rows for participants [nan]': a missing id is not a repeated one."
    b = BrainPhantom(16, seed=0).sample(40, seed=9)
    rec = b.attrs.assign(stage=b.truth.stage, rid=[np.nan, np.nan] + list(range(38)))
    with pytest.raises(ValueError, match=r"record rows \[0, 1\] \(2 in all\) have no rid \(participant id\); expected an id in every row"):
        FusionData.from_record('ad', b.images, rec)
    with pytest.raises(ValueError, match=r"several rows for participants \[3\.0\]"):  # a repeated id among the others is still named
        FusionData.from_record('ad', b.images, rec.assign(rid=[2.0, 3.0, 3.0] + list(range(4, 41))))


def test_encode_record_refuses_a_numbers_column_read_as_text():
    "encode_record converted '63' silently where encode_attrs refuses text in a numbers column: one rule for both now, with the conversion named."
    from medcf.fusion import encode_record
    df = pd.DataFrame(dict(age=['63', '71'], sex=['M', 'F']))
    with pytest.raises(ValueError, match=r"column 'age' holds text \('63' in row 0\); expected numbers: convert the column with pd.to_numeric first"): encode_record(df, ['age', 'sex'])
    ok = encode_record(df.assign(age=pd.to_numeric(df['age'])), ['age', 'sex'])
    assert ok.tolist() == [[63.0, 1.0], [71.0, 0.0]]
    assert np.isnan(encode_record(pd.DataFrame(dict(age=[63.0, None]), dtype=object), ['age'])[1, 0])  # a missing value in an object column is not text


def test_iterative_imputer_refuses_a_numbers_column_read_as_text():
    "Session 52's review of 23f4a0e: encode_record refuses '63' in a numbers column, IterativeImputer (whose own error points to encode_record) converted it silently, from a DataFrame or a numpy array of strings."
    from medcf.fusion import IterativeImputer
    df = pd.DataFrame(dict(a=['63', 70.0, np.nan, 71.0], b=[1., 2., 3., np.nan]))
    with pytest.raises(ValueError, match=r"column 'a' holds text \('63' in row 0\); expected numbers: convert the column with pd.to_numeric first"): IterativeImputer().fit(df)
    with pytest.raises(ValueError, match=r"column 1 holds text \('2' in row 0\)"): IterativeImputer().fit(np.array([[1.0, '2'], [3.0, '4']], dtype=object))
    with pytest.raises(ValueError, match=r"column 0 holds text \('63' in row 0\)"): IterativeImputer().fit(np.array([['63', '1'], ['70', '2']]))
    fitted = IterativeImputer().fit(df.assign(a=pd.to_numeric(df['a'])))
    with pytest.raises(ValueError, match=r"column 'b' holds text \('x' in row 1\)"): fitted.transform(df.assign(a=pd.to_numeric(df['a']), b=[1.0, 'x', 2.0, None]))
    assert fitted.transform(df.assign(a=pd.to_numeric(df['a']), b=pd.array([1.0, None, 2.0, 3.0], dtype='Float64'))).shape == (4, 4)  # a nullable column's NA is missing, not text


def test_hyper_layers_refuse_a_bad_gain_embed_m2_or_size_before_drawing():
    "gain=inf gave a layer that output NaN and embed_m2=inf one that output exact zeros (both silently); gain < 0, embed_m2 0 or NaN and a zero size failed in math or torch naming no argument."
    base = dict(in_features=4, out_features=2, embed_dim=5)
    for kw, msg in [(dict(gain=float('inf')), r"gain=inf: expected a finite gain > 0"), (dict(gain=-1.0), r"gain=-1\.0: expected a finite gain > 0"),
                    (dict(embed_m2=float('inf')), r"embed_m2=inf: expected the finite second moment E\[e\^2\] > 0"),
                    (dict(embed_m2=0.0), r"embed_m2=0\.0: expected the finite second moment"), (dict(embed_m2=float('nan')), r"embed_m2=nan: expected the finite second moment"),
                    (dict(in_features=0), r"in_features=0: expected a positive integer"),
                    (dict(embed_m2=1e-320), r"standard deviation of inf; expected one that torch\.float32 can hold")]:
        torch.manual_seed(0)
        with pytest.raises(ValueError, match=msg): HyperLinear(**{**base, **kw})
        after = torch.rand(1); torch.manual_seed(0); assert torch.equal(after, torch.rand(1)) or kw == dict(embed_m2=1e-320), kw  # refused before any draw (the overflow only once the widths are built)
    with pytest.raises(ValueError, match=r"stride=0: expected a positive integer"): HyperConv(2, 2, 1, 3, stride=0)
    with pytest.raises(ValueError, match=r"embed_m2=nan: expected the finite second moment"): FusionNet(4, 2, 'hyper_head', embed_m2=float('nan'))
    with pytest.raises(ValueError, match=r"embed_m2=0\.0: expected"): HyperNet(5, 8, 4, 2).init_hyperfan_in(0.0)
    x, e = torch.randn(3, 4), torch.randn(3, 5)
    assert torch.isfinite(HyperLinear(**base, gain=1.0, embed_m2=4.0)(x, e)).all()  # finite values > 0 still build a working layer


def test_fusion_data_names_columns_with_no_training_value_and_what_to_change():
    "Session 52 (nb 40 exercise 2, 'raise missing_rates'): at a rate of 1 the imputer said 'drop them', which FusionData (whose task fixes the columns) offers no way to do."
    from medcf.phantoms import BrainPhantom
    from medcf.fusion import FusionData
    class Miss(BrainPhantom): missing_rates = dict(abeta=1.0, ptau=1.0, tau=1.0)
    with pytest.raises(ValueError, match=r"the record's \['abeta', 'ptau', 'tau'\] have no value in the \d+ training patients, so the imputer cannot learn them; the 'ad' task reads every column of .*use more patients \(n=60\) or another seed") as e:
        FusionData('ad', 60, 0, size=32, phantom=Miss(32))
    assert 'drop them' not in str(e.value)
