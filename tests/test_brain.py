"Brain phantom and ADNIMERGE reader: determinism, counterfactual consistency, missing values, bad input."
import numpy as np, pandas as pd, pytest, torch
from medcf.phantoms import BrainPhantom, data_path
from medcf.data import read_adnimerge, parse_censored


def test_deterministic_and_shapes():
    a, b = BrainPhantom(seed=3).sample(20), BrainPhantom(seed=3).sample(20)
    assert torch.equal(a.images, b.images) and a.attrs.equals(b.attrs)
    assert a.images.shape == (20, 1, 64, 64) and -1 <= a.images.min() and a.images.max() <= 1
    v = BrainPhantom(size=32, dim=3).sample(3, seed=0)
    assert v.images.shape == (3, 1, 32, 32, 32)


def test_missing_values_only_in_attrs():
    b = BrainPhantom().sample(400, seed=1)
    assert b.truth.notna().all().all()
    miss = b.attrs.isna().mean()
    assert miss[['age', 'sex', 'education', 'stage']].eq(0).all()
    assert 0.2 < miss.abeta < 0.5 and (b.attrs.abeta.isna() == b.attrs.ptau.isna()).all()
    assert {'pathology', 'head_size', 'hippocampus'} <= set(b.truth.columns) - set(b.attrs.columns)


def test_counterfactual_keeps_noise_and_ancestors():
    ph = BrainPhantom()
    b = ph.sample(8, seed=2)
    same = ph.counterfactual(b)
    assert torch.equal(same.images, b.images)  # the null intervention changes nothing
    old = ph.counterfactual(b, age=90.0)
    assert (old.truth.sex == b.truth.sex).all() and (old.truth.ventricles >= b.truth.ventricles).all()
    assert not torch.equal(old.images, b.images)
    ad = ph.counterfactual(b, stage='AD')
    assert (ad.truth.hippocampus <= b.truth.hippocampus + 1e-9).all() and (ad.truth.age == b.truth.age).all()
    assert ad.attrs.abeta.isna().equals(b.attrs.abeta.isna())  # same missingness pattern (same exogenous noise)


def test_bad_input():
    with pytest.raises(ValueError, match='dim'): BrainPhantom(dim=4)
    with pytest.raises(ValueError, match='stage'): BrainPhantom().sample(2, stage='dementia')
    with pytest.raises(ValueError, match='age'): BrainPhantom().sample(2, age=150)


def test_adnimerge_fixture():
    d = read_adnimerge(data_path('adni', 'ADNIMERGE_sample.csv'))
    assert d.rid.is_unique and set(d.stage) <= {'CN', 'MCI', 'AD'}
    assert set(BrainPhantom.tabular) <= set(d.columns)
    r = d.set_index('rid')
    assert r.loc[9001, 'abeta'] == 1700 and r.loc[9001, 'abeta_censored'] == 1
    assert r.loc[9007, 'tau'] == 1300 and r.loc[9007, 'ptau_censored'] == 1 and r.loc[9007, 'abeta_censored'] == -1
    assert np.isnan(r.loc[9005, 'abeta']) and np.isnan(r.loc[9006, 'apoe4'])
    assert r.loc[9003, 'stage'] == 'AD' and r.loc[9002, 'sex'] == 'M'


def test_adnimerge_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError): read_adnimerge(tmp_path / 'nope.csv')
    raw = pd.read_csv(data_path('adni', 'ADNIMERGE_sample.csv'), dtype=str)
    raw.drop(columns=['PTAU']).to_csv(tmp_path / 'a.csv', index=False)
    with pytest.raises(ValueError, match='PTAU'): read_adnimerge(tmp_path / 'a.csv')
    bad = raw.copy(); bad.loc[0, 'ABETA'] = 'high'; bad.to_csv(tmp_path / 'b.csv', index=False)
    with pytest.raises(ValueError, match='ABETA'): read_adnimerge(tmp_path / 'b.csv')
    bad = raw.copy(); bad.loc[0, 'PTGENDER'] = 'X'; bad.to_csv(tmp_path / 'c.csv', index=False)
    with pytest.raises(ValueError, match='PTGENDER'): read_adnimerge(tmp_path / 'c.csv')
    bad = raw.copy(); bad.loc[0, 'DX'] = 'Alzheimer'; bad.to_csv(tmp_path / 'd.csv', index=False)
    with pytest.raises(ValueError, match='DX'): read_adnimerge(tmp_path / 'd.csv')


def test_parse_censored():
    v, f = parse_censored(pd.Series(['<80', '>1300', '', '250'], name='TAU'))
    assert v[0] == 80 and v[1] == 1300 and np.isnan(v[2]) and f.tolist() == [-1, 1, 0, 0]
