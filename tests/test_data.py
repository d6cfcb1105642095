"Tests for medcf.data: prompts, uncertainty policies, phantom datasets, real-format readers and their fixtures."
from pathlib import Path
import re, shutil, warnings
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from medcf.phantoms import SCMPhantom, SkinPhantom, Variable, data_path
from medcf.data import *

torch.set_num_threads(1)
SAMPLES = Path(__file__).resolve().parent.parent / 'data_samples'
CHEX = SAMPLES / 'chexpert'


class Toy(SCMPhantom):
    "A tiny chest-like phantom, so these tests do not depend on the real phantoms' rendering."
    channels = 1
    def _variables(self):
        return [Variable('sex', ['Female', 'Male'], mechanism=lambda p, u: np.where(u < .5, 'Female', 'Male')),
                Variable('age', None, range=(18, 90), mechanism=lambda p, u: 18 + 72 * u),
                Variable('view', ['AP', 'PA'], mechanism=lambda p, u: np.where(u < .5, 'AP', 'PA')),
                Variable('devices', [0, 1], parents=('view',), mechanism=lambda p, u: (u < np.where(p['view'] == 'AP', .6, .3)).astype(int)),
                Variable('effusion', [0, 1], parents=('devices',), mechanism=lambda p, u: (u < .3 + .2 * p['devices']).astype(int)),
                Variable('cardiomegaly', [0, 1], mechanism=lambda p, u: (u < .15).astype(int))]
    def _draw_noise(self, rng, n): return {**{k: rng.random(n) for k in self.variables}, 'tex': rng.normal(size=(n, 4))}
    def _render(self, t, noise):
        yy = torch.linspace(-1, 1, self.size)[:, None].expand(self.size, self.size)
        tex = torch.as_tensor(noise['tex'][:, :1], dtype=torch.float32)[:, :, None, None]
        eff = torch.as_tensor(t['effusion'].to_numpy(dtype=np.float32))[:, None, None, None]
        return (0.3 * tex * yy + 0.5 * eff * (yy > .5) - .3).clamp(-1, 1)
    def _prompt(self, row): return chest_prompt(row)


# --- prompts and policies ---------------------------------------------------------------------------------------------
def test_chest_prompt_formats():
    assert chest_prompt({'Support Devices': 1, 'Pleural Effusion': 1.0, 'Path': 'x'}) == 'Chest X-ray showing Pleural Effusion, Support Devices'
    assert chest_prompt({'Pleural Effusion': 0, 'Cardiomegaly': np.nan}) == 'Normal chest X-ray with no significant findings'
    assert chest_prompt(pd.Series({'effusion': 1, 'devices': 0, 'cardiomegaly': 1})) == 'Chest X-ray showing Cardiomegaly, Pleural Effusion'
    u = {'Pleural Effusion': -1, 'Support Devices': 0}
    assert chest_prompt(u, 'U-zeros') == 'Normal chest X-ray with no significant findings'
    assert chest_prompt(u, 'U-ones') == 'Chest X-ray showing Pleural Effusion'
    assert chest_prompt(u, 'ignore') == 'Chest X-ray'
    with pytest.raises(ValueError, match='no chest finding'): chest_prompt({'Sex': 'Male'})


def test_skin_prompt_formats():
    assert skin_prompt({'melanoma': 1, 'hair': 1, 'ruler': 1, 'ink': 0}) == 'a dermoscopic image with melanoma (MEL) showing hair, ruler'
    assert skin_prompt({'melanoma': 0}) == 'a dermoscopic image with nevus (NV)'
    assert skin_prompt({'diagnosis': 'NV', 'dark_corners': 1}) == 'a dermoscopic image with nevus (NV) showing dark corners'
    assert skin_prompt({'MEL': 1.0, 'NV': 0.0}) == 'a dermoscopic image with melanoma (MEL)'
    assert skin_diagnosis({'diagnosis': 'lentigo NOS'}) == 'BKL'
    with pytest.raises(ValueError, match='unknown diagnosis'): skin_prompt({'diagnosis': 'wart'})
    with pytest.raises(ValueError, match='cannot tell the diagnosis'): skin_prompt({'hair': 1})
    with pytest.raises(ValueError, match='expected 0 or 1'): skin_prompt({'melanoma': 1, 'hair': 3})


def test_policies():
    vals = [1, 0, -1, np.nan]
    assert apply_policy(vals, 'U-zeros')[0].tolist() == [1, 0, 0, 0]
    assert apply_policy(vals, 'U-ones')[0].tolist() == [1, 0, 1, 0]
    y, m = apply_policy(vals, 'ignore')
    assert y.tolist() == [1, 0, 0, 0] and m.tolist() == [True, True, False, True]
    y, m = apply_policy(np.array([[1, -1], [np.nan, 0]]), 'ignore')
    assert y.shape == m.shape == (2, 2) and m.tolist() == [[True, False], [True, True]]


def test_unknown_policy_and_bad_labels():
    with pytest.raises(ValueError, match="unknown uncertainty policy 'U-maybe'.*U-zeros"): apply_policy([1], 'U-maybe')
    with pytest.raises(ValueError, match='unknown uncertainty policy'): chest_prompt({'Edema': 1}, policy='zeros')
    with pytest.raises(ValueError, match='not CheXpert labels'): apply_policy([2, 1])
    with pytest.raises(ValueError, match='numbers 1, 0, -1 or blank'): apply_policy(['yes'])


# --- phantom datasets -------------------------------------------------------------------------------------------------
def test_split_determinism_and_disjointness():
    ph = Toy(32, 0)
    tr, tr2 = PhantomDataset(ph, 24, 'train', seed=3), PhantomDataset(Toy(32, 99), 12, 'train', seed=3)
    assert torch.equal(tr.images[:12], tr2.images) and tr.prompts[:12] == tr2.prompts  # size and phantom seed do not matter
    va, te = PhantomDataset(ph, 16, 'val', seed=3), PhantomDataset(ph, 16, 'test', seed=3)
    f = lambda d: d.images.flatten(1)
    for a, b in [(tr, va), (tr, te), (va, te)]: assert torch.cdist(f(a), f(b)).min() > 0
    assert not torch.equal(PhantomDataset(ph, 12, 'train', seed=4).images, tr2.images)
    s = PhantomStream(ph, split='val', seed=3)
    for i in (0, 7, 15): assert torch.equal(s[i]['image'], va[i]['image']) and torch.equal(s[i]['attrs'], va[i]['attrs'])
    assert [it['index'] for it in s.__getitems__([5, 2])] == [5, 2] and torch.equal(s.__getitems__([5, 2])[1]['image'], va[2]['image'])


def test_dataset_items_and_collate():
    ph = Toy(32, 0)
    ds = PhantomDataset(ph, 10, 'train', seed=0)
    assert ds.attr_names == ['sex', 'age', 'view', 'devices', 'effusion', 'cardiomegaly']
    pd.testing.assert_frame_equal(decode_attrs(ds.targets, ds.codebook), ds.attrs, check_dtype=False)
    batch = collate([ds[i] for i in range(4)])
    assert batch['image'].shape == (4, 1, 32, 32) and batch['attrs'].shape == (4, 6) and batch['mask'].all()
    assert isinstance(batch['prompt'], list) and all(isinstance(p, str) for p in batch['prompt'])
    assert batch['index'].tolist() == [0, 1, 2, 3]
    dl = torch.utils.data.DataLoader(PhantomStream(ph, 100, 'train', 0), batch_size=5, collate_fn=collate)
    b = next(iter(dl)); assert torch.equal(b['image'], torch.stack([ds[i]['image'] for i in range(5)]))
    custom = PhantomDataset(ph, 3, 'test', prompt_fn=lambda r: f"age {r['age']:.0f}")
    assert all(p.startswith('age ') for p in custom.prompts)


def test_stream_default_length_shuffles():
    "A shuffling DataLoader over the default stream works (its sampler lists every index: 2**20, not a billion), reproducibly, and any length reads in order."
    ph = Toy(32, 0)
    s = PhantomStream(ph, split='train', seed=0)
    assert len(s) == 2**20
    load = lambda: next(iter(torch.utils.data.DataLoader(s, batch_size=3, shuffle=True, collate_fn=collate, generator=torch.Generator().manual_seed(1))))
    b = load()
    assert b['index'].tolist() != [0, 1, 2] and torch.equal(load()['index'], b['index'])
    for img, i in zip(b['image'], b['index']): assert torch.equal(img, s[int(i)]['image'])
    long = PhantomStream(ph, 10**9, 'train', 0)
    first = next(iter(torch.utils.data.DataLoader(long, batch_size=2, collate_fn=collate)))
    assert len(long) == 10**9 and first['index'].tolist() == [0, 1] and torch.equal(first['image'][1], s[1]['image'])


def test_stream_reads_in_spawned_workers():
    "DataLoader workers started fresh (spawn: macOS, Windows; Linux from Python 3.14) get a pickled stream and render the same samples."
    from medcf.phantoms import ChestPhantom
    s = PhantomStream(ChestPhantom(32), 40, 'val', 1, prompt_fn=chest_prompt)
    dl = torch.utils.data.DataLoader(s, batch_size=4, num_workers=1, multiprocessing_context='spawn', collate_fn=collate)
    b = next(iter(dl))
    assert torch.equal(b['image'], torch.stack([s[i]['image'] for i in range(4)])) and b['prompt'] == [s[i]['prompt'] for i in range(4)]


def test_dataset_bad_input():
    ph = Toy(32, 0)
    with pytest.raises(ValueError, match='unknown split'): PhantomDataset(ph, 4, 'training')
    with pytest.raises(ValueError, match='non-negative integer'): PhantomStream(ph, split='train', seed=-1)
    with pytest.raises(ValueError, match='positive integer'): PhantomStream(ph, 0)
    with pytest.raises(TypeError, match='SCMPhantom'): PhantomStream('chest')
    with pytest.raises(IndexError): PhantomDataset(ph, 4)[4]
    with pytest.raises(ValueError, match='empty'): collate([])


# --- readers on the fixtures ------------------------------------------------------------------------------------------
def test_chexpert_round_trip():
    full = read_chexpert(CHEX, 'train', frontal_only=False)
    assert list(full.columns[:len(CHEXPERT_HEADER)]) == CHEXPERT_HEADER
    front = read_chexpert(CHEX / 'CheXpert-v1.0-small', 'train')
    assert (full['Frontal/Lateral'] == 'Lateral').sum() > 0 and len(front) == (full['Frontal/Lateral'] == 'Frontal').sum()
    assert (front[CHEXPERT_FINDINGS] == -1).any().any(), 'the fixture should hold uncertain labels'
    for p in UNCERTAINTY_POLICIES:
        ds = CheXpertDataset(CHEX, 'train', size=32, policy=p)
        it = ds[0]
        assert it['image'].shape == (1, 32, 32) and it['image'].min() >= -1 and it['image'].max() <= 1
        assert it['attrs'].shape == it['mask'].shape == (14,)
        assert (~ds.mask).any() == (p == 'ignore')
        unc = torch.from_numpy(ds.table[CHEXPERT_FINDINGS].to_numpy(dtype=float) == -1)  # the policy-applied labels themselves
        want = {'U-ones': 1.0, 'U-zeros': 0.0, 'ignore': 0.0}[p]
        assert unc.any() and (ds.targets[unc] == want).all() and (ds.mask[unc] == (p != 'ignore')).all()
    for p in UNCERTAINTY_POLICIES:  # the vectorised captions equal the row-by-row ones
        assert chest_prompts(full, p) == [chest_prompt(r, p) for _, r in full.iterrows()]
    valid = read_chexpert(CHEX, 'valid')
    assert valid[CHEXPERT_FINDINGS].isin([0, 1]).all().all()  # like the real valid.csv: fully labelled
    assert all(p.startswith(('Chest X-ray showing', 'Normal chest X-ray')) for p in valid['prompt'])


def _copy_chexpert(tmp_path) -> Path:
    shutil.copytree(CHEX, tmp_path / 'chexpert')
    return tmp_path / 'chexpert' / 'CheXpert-v1.0-small'


def test_chexpert_missing_column(tmp_path):
    f = _copy_chexpert(tmp_path)
    pd.read_csv(f / 'train.csv').drop(columns=['Pleural Effusion', 'AP/PA']).to_csv(f / 'train.csv', index=False)
    with pytest.raises(ValueError, match=r"train.csv is missing columns \['AP/PA', 'Pleural Effusion'\]; expected the CheXpert header"):
        read_chexpert(f)


def test_chexpert_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='no CheXpert train.csv'): read_chexpert(tmp_path)
    f = _copy_chexpert(tmp_path)
    (f / 'valid.csv').unlink()
    with pytest.raises(FileNotFoundError, match='valid.csv not found'): read_chexpert(f, 'valid')
    first = pd.read_csv(f / 'train.csv')['Path'][0]
    (tmp_path / 'chexpert' / first).unlink()
    with pytest.raises(FileNotFoundError, match=r'1 CheXpert image file\(s\).*view1_frontal.jpg'): read_chexpert(f)
    assert len(read_chexpert(f, check=False)) > 0


def test_corrupt_image(tmp_path):
    f = _copy_chexpert(tmp_path)
    first = pd.read_csv(f / 'train.csv')['Path'][0]
    p = tmp_path / 'chexpert' / first
    p.write_bytes(p.read_bytes()[:200])  # truncated JPEG
    ds = CheXpertDataset(f, 'train')
    with pytest.raises(ValueError, match=f'cannot read image file .*{p.name}'): ds[0]
    (tmp_path / 'x.png').write_text('hello')
    with pytest.raises(ValueError, match='x.png'): load_image(tmp_path / 'x.png')
    with pytest.raises(FileNotFoundError, match='nothere.jpg'): load_image(tmp_path / 'nothere.jpg')


def test_isic_round_trip_and_errors(tmp_path):
    i19 = read_isic2019(SAMPLES / 'isic' / '2019')
    gt = pd.read_csv(SAMPLES / 'isic' / '2019' / 'ISIC_2019_Training_GroundTruth.csv')
    assert list(gt.columns) == ['image', 'MEL', 'NV', 'BCC', 'AK', 'BKL', 'DF', 'VASC', 'SCC', 'UNK']
    assert (i19['image'] == gt['image']).all() and (i19['melanoma'] == gt['MEL']).all()
    i20 = read_isic2020(SAMPLES / 'isic' / '2020')
    raw = pd.read_csv(SAMPLES / 'isic' / '2020' / 'train.csv')
    assert list(raw.columns) == ISIC2020_COLUMNS and (i20['melanoma'] == raw['target']).all()
    ds = ISICDataset(pd.concat([i19, i20], ignore_index=True), size=32)
    it = ds[len(i19)]
    assert it['image'].shape == (3, 32, 32) and it['prompt'].startswith('a dermoscopic image with')
    d = tmp_path / 'i19'; shutil.copytree(SAMPLES / 'isic' / '2019', d)
    gt.drop(columns=['MEL']).to_csv(d / 'ISIC_2019_Training_GroundTruth.csv', index=False)
    with pytest.raises(ValueError, match=r"missing columns \['MEL'\]"): read_isic2019(d)
    with pytest.raises(FileNotFoundError, match='holds none of the ISIC 2020 tables'): read_isic2020(tmp_path)


def test_medmnist_round_trip_and_errors(tmp_path):
    for name, ch in (('chestmnist.npz', 1), ('dermamnist.npz', 3)):
        p = SAMPLES / 'medmnist' / name
        with np.load(p) as z: assert sorted(z.files) == sorted(MEDMNIST_KEYS)
        for split in ('train', 'val', 'test'):
            x, y = read_medmnist(p, split)
            ds = MedMNISTDataset(p, split, size=32)
            assert len(ds) == len(x) == len(y) and ds[0]['image'].shape == (ch, 32, 32)
            assert torch.equal(ds.targets, torch.from_numpy(y.astype(np.float32)))
    assert MedMNISTDataset(SAMPLES / 'medmnist' / 'chestmnist.npz').targets.shape[1] == 14
    bad = tmp_path / 'chestmnist.npz'
    np.savez(bad, train_images=np.zeros((2, 28, 28), np.uint8), train_labels=np.zeros((2, 14)))
    with pytest.raises(ValueError, match=r"missing keys \['val_images'"): read_medmnist(bad)
    with pytest.raises(FileNotFoundError, match='nope.npz'): read_medmnist(tmp_path / 'nope.npz')


def test_fixtures_reproducible(tmp_path):
    """The committed fixture TABLES and labels are what write_data_samples writes (if this fails after a change to the
    phantoms' samplers, rerun it). Images are only checked for shape and type: they follow the phantom renderer of the
    day they were written, and a renderer change leaves them valid fixtures of the formats."""
    write_data_samples(tmp_path)
    for rel in ['chexpert/CheXpert-v1.0-small/train.csv', 'chexpert/CheXpert-v1.0-small/valid.csv',
                'isic/2019/ISIC_2019_Training_GroundTruth.csv', 'isic/2019/ISIC_2019_Training_Metadata.csv', 'isic/2020/train.csv']:
        assert (tmp_path / rel).read_text() == (SAMPLES / rel).read_text(), \
            f"{rel} differs: rerun `python -c \"from medcf.data import write_data_samples; write_data_samples('data_samples', overwrite=True)\"`"
    for name in ('chestmnist.npz', 'dermamnist.npz'):
        with np.load(tmp_path / 'medmnist' / name) as a, np.load(SAMPLES / 'medmnist' / name) as b:
            for k in MEDMNIST_KEYS:
                assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype, f'{name}:{k} has another shape or type'
                if 'labels' in k: assert np.array_equal(a[k], b[k]), f'{name}:{k} differs'


def test_writers_round_trip_with_any_phantom(tmp_path):
    "The fixture writers work for any phantom with the needed columns, and the readers give its labels back."
    ph = Toy(32, 0)
    write_chexpert_fixture(tmp_path / 'c', ph, n_train=10, n_valid=6, seed=5)
    truth = ph.sample(16, seed=5).attrs
    valid = read_chexpert(tmp_path / 'c', 'valid')
    assert (valid['Pleural Effusion'].to_numpy() == truth['effusion'][10:].to_numpy()).all()
    assert (valid['Sex'].to_numpy() == truth['sex'][10:].to_numpy()).all() and (valid['AP/PA'].to_numpy() == truth['view'][10:].to_numpy()).all()
    train = read_chexpert(tmp_path / 'c', 'train', policy='U-ones')
    assert ((train['Support Devices'].fillna(0) != 0).to_numpy() == (truth['devices'][:10] == 1).to_numpy()).all()  # -1 only for positives
    write_medmnist_fixture(tmp_path / 'chestmnist_32.npz', ph, n=(4, 2, 2), seed=1)
    ds = MedMNISTDataset(tmp_path / 'chestmnist_32.npz', 'val')
    assert ds.flavor == 'chestmnist' and ds.attr_names[2] == 'Effusion' and len(ds) == 2
    with pytest.raises(ValueError, match='chestmnist or dermamnist'): write_medmnist_fixture(tmp_path / 'x.npz', ph)
    with pytest.raises(ValueError, match='cannot tell the diagnosis'): write_isic2019_fixture(tmp_path / 'i', ph, n=2)


def test_interventions_make_counterfactual_twins():
    ph = Toy(32, 0)
    plain, twin = PhantomDataset(ph, 20, 'val', seed=2), PhantomDataset(ph, 20, 'val', seed=2, effusion=1)
    assert (twin.attrs['effusion'] == 1).all() and (twin.attrs['sex'] == plain.attrs['sex']).all()
    same = plain.attrs['effusion'].to_numpy() == 1
    assert same.any() and (~same).any()
    assert torch.equal(twin.images[same], plain.images[same]) and not torch.equal(twin.images[~same], plain.images[~same])
    with pytest.raises(ValueError, match='unknown variable'): PhantomStream(ph, 10, 'train', 0, effusions=1)
    with pytest.raises(ValueError, match='not an allowed value'): PhantomStream(ph, 10, 'train', 0, effusion=2)
    assert skin_prompt({'melanoma': 1, 'ruler': 1}, artifacts=False) == 'a dermoscopic image with melanoma (MEL)'


# --- bad input: nothing silently clipped, dropped or overwritten -------------------------------------------------------
def test_decode_attrs_rejects_wrong_width_and_codes():
    book = attr_codebook(Toy(32, 0)); k = len(book)
    x = encode_attrs(Toy(32, 0).sample(3, seed=0).attrs, book)
    for bad in (torch.zeros(3, 2 * k), torch.zeros(3, k + 1), torch.zeros(2, 3, k)):  # 2K used to give a 6-row table
        with pytest.raises(ValueError, match=rf'shape .*expected N x {k}'): decode_attrs(bad, book)
    for code in (-1, 0.6, 99, float('nan')):  # -1 used to give the last category, 0.6 was rounded
        y = x.clone(); y[1, 0] = code
        with pytest.raises(ValueError, match=r"sex has codes .* in rows \[1\]; expected whole numbers 0..1"): decode_attrs(y, book)
    assert decode_attrs(x[0], book)['sex'].tolist() == decode_attrs(x, book)['sex'][:1].tolist()


def test_collate_and_chunk_errors_name_the_item():
    with pytest.raises(ValueError, match=r"item 1 has keys \['b'\]; expected .*\['a'\]"): collate([dict(a=torch.zeros(2)), dict(b=torch.zeros(2))])
    with pytest.raises(ValueError, match=r"item 1 'a' is of shape \(3,\); expected .*\(2,\)"): collate([dict(a=torch.zeros(2)), dict(a=torch.zeros(3))])
    for chunk in (0, -1):
        with pytest.raises(ValueError, match=f'chunk={chunk}: expected a positive integer'): PhantomDataset(Toy(32, 0), 4, chunk=chunk)


def test_read_table_empty_file_or_folder(tmp_path):
    (tmp_path / 'e.csv').write_text('')
    with pytest.raises(ValueError, match='e.csv is empty'): read_table(tmp_path / 'e.csv', ['a'], 'x')
    with pytest.raises(FileNotFoundError, match='is a folder'): read_table(tmp_path, ['a'], 'x')


def test_chexpert_blank_view_all_lateral_and_empty(tmp_path):
    f = _copy_chexpert(tmp_path); raw = pd.read_csv(f / 'train.csv')
    raw.assign(**{'Frontal/Lateral': [np.nan] + list(raw['Frontal/Lateral'][1:])}).to_csv(f / 'train.csv', index=False)
    for fo in (True, False):  # the row used to be dropped silently
        with pytest.raises(ValueError, match=r"rows \[0\] \(Path .*patient00001.*\) have a blank Frontal/Lateral"): read_chexpert(f, frontal_only=fo)
    raw.assign(**{'Frontal/Lateral': 'Lateral'}).to_csv(f / 'train.csv', index=False)
    with pytest.raises(ValueError, match=r"no 'Frontal' rows \(all 27 are 'Lateral'\).*frontal_only=False"): read_chexpert(f)
    assert len(read_chexpert(f, frontal_only=False)) == len(raw)
    raw.iloc[:0].to_csv(f / 'train.csv', index=False)
    with pytest.raises(ValueError, match='train.csv has a header but no rows'): read_chexpert(f)


def test_isic2019_metadata_must_cover_every_image(tmp_path):
    d = tmp_path / 'i19'; shutil.copytree(SAMPLES / 'isic' / '2019', d)
    gt, meta = (pd.read_csv(d / f'ISIC_2019_Training_{n}.csv') for n in ('GroundTruth', 'Metadata'))
    meta.assign(sex=[np.nan] + list(meta['sex'][1:])).to_csv(d / 'ISIC_2019_Training_Metadata.csv', index=False)
    assert pd.isna(read_isic2019(d)['sex'][0])  # a blank cell in the real metadata is real missing data: kept
    meta.iloc[1:].to_csv(d / 'ISIC_2019_Training_Metadata.csv', index=False)  # used to give sex/age NaN silently
    with pytest.raises(ValueError, match=r"no row for 1 of 12 images, e.g. \['ISIC_0000000'\]"): read_isic2019(d)
    pd.concat([meta, meta.iloc[:1]]).to_csv(d / 'ISIC_2019_Training_Metadata.csv', index=False)
    with pytest.raises(ValueError, match=r"Metadata.csv has image \['ISIC_0000000'\] in more than one row"): read_isic2019(d)
    (d / 'ISIC_2019_Training_Metadata.csv').unlink()
    with pytest.raises(FileNotFoundError, match='metadata=False'): read_isic2019(d)
    assert read_isic2019(d, metadata=False)['sex'].isna().all()
    pd.concat([gt, gt.iloc[:1]]).to_csv(d / 'ISIC_2019_Training_GroundTruth.csv', index=False)  # used to keep both rows
    with pytest.raises(ValueError, match=r"GroundTruth.csv has image \['ISIC_0000000'\] in more than one row \(rows \[0, 12\]\)"): read_isic2019(d, metadata=False)
    gt.astype({'MEL': object}).assign(MEL=['yes'] + list(gt['MEL'][1:])).to_csv(d / 'ISIC_2019_Training_GroundTruth.csv', index=False)
    with pytest.raises(ValueError, match=r"rows \[0\] \(images \['ISIC_0000000'\]\) are not one-hot"): read_isic2019(d, metadata=False)


def test_isic2020_target_agrees_with_diagnosis(tmp_path):
    d = tmp_path / 'i20'; shutil.copytree(SAMPLES / 'isic' / '2020', d)
    raw = pd.read_csv(d / 'train.csv'); nv = raw.index[raw['diagnosis'] == 'nevus'][0]
    raw.assign(target=raw['target'].where(raw.index != nv, 1)).to_csv(d / 'train.csv', index=False)  # used to read as melanoma
    with pytest.raises(ValueError, match=rf"rows \[{nv}\] .* have target \[1\] but diagnosis \['nevus'\]; expected target 1 exactly where"): read_isic2020(d)
    pd.concat([raw, raw.iloc[:1]]).to_csv(d / 'train.csv', index=False)
    with pytest.raises(ValueError, match='train.csv has image_name .* in more than one row'): read_isic2020(d)
    raw.assign(diagnosis=[np.nan, 'lentigo'] + list(raw['diagnosis'][2:])).to_csv(d / 'train.csv', index=False)
    with pytest.raises(ValueError, match=r"rows \[0\] .* have no diagnosis"): read_isic2020(d)  # was a TypeError from sorting
    raw.assign(diagnosis=['lentigo'] + list(raw['diagnosis'][1:])).to_csv(d / 'train.csv', index=False)
    with pytest.raises(ValueError, match=r"diagnoses \['lentigo'\]"): read_isic2020(d)


def test_isic_dataset_melanoma_must_be_binary():
    t = read_isic2019(SAMPLES / 'isic' / '2019')
    for v in (5, np.nan):
        with pytest.raises(ValueError, match=r'melanoma has values \[(5|nan)\] .*expected 0 or 1'): ISICDataset(t.assign(melanoma=v))


def test_medmnist_labels_must_fit_the_flavour(tmp_path):
    def put(y, i, j, v): y = y.copy(); y[i, j] = v; return y
    for name, change, msg in [('chestmnist', lambda y: put(y, 0, 1, 2), r'label values \[2\] in rows \[0\]'),
                              ('chestmnist', lambda y: y[:, :7], '7 label columns; expected chestmnist labels: 14 columns'),
                              ('dermamnist', lambda y: put(y, 3, 0, 9), r'label values \[9\] in rows \[3\]')]:
        with np.load(SAMPLES / 'medmnist' / f'{name}.npz') as z: a = dict(z)
        a['train_labels'] = change(a['train_labels']); p = tmp_path / name / f'{name}.npz'; p.parent.mkdir(exist_ok=True); np.savez(p, **a)
        with pytest.raises(ValueError, match=msg): MedMNISTDataset(p)
    with pytest.raises(ValueError, match=r'label values \[-1\]'): medmnist_prompt('dermamnist', [-1])  # used to give VASC
    with pytest.raises(ValueError, match='2 label columns'): medmnist_prompt('chestmnist', [2, 1])
    for size in (0, -4, '32'):
        with pytest.raises(ValueError, match='size=.*expected a positive integer'): MedMNISTDataset(SAMPLES / 'medmnist' / 'chestmnist.npz', size=size)


def test_adnimerge_no_baseline_duplicates_and_bad_rid(tmp_path):
    raw = pd.read_csv(SAMPLES / 'adni' / 'ADNIMERGE_sample.csv', dtype=str, keep_default_na=False)
    def read(df, **kw): df.to_csv(tmp_path / 'a.csv', index=False); return read_adnimerge(tmp_path / 'a.csv', **kw)
    with pytest.raises(ValueError, match=r"no baseline rows .*VISCODE values are \['BL', 'M12', 'M24'\]"): read(raw.assign(VISCODE=raw.VISCODE.str.upper()))
    with pytest.raises(ValueError, match=r"no baseline rows .*\['m12', 'm24'\]"): read(raw[raw.VISCODE != 'bl'])
    assert len(read(raw[raw.VISCODE != 'bl'], baseline_only=False)) == (raw.VISCODE != 'bl').sum()
    with pytest.raises(ValueError, match=r"RID, VISCODE \[\(9001, 'bl'\)\] in more than one row"): read(pd.concat([raw, raw.iloc[:1]]))
    for rid in ('', 'abc'):
        with pytest.raises(ValueError, match=r'RID has values .* in rows \[0\]; expected a whole-number'): read(raw.assign(RID=[rid] + list(raw.RID[1:])))
    with pytest.raises(ValueError, match='header but no rows'): read(raw.iloc[:0])
    (tmp_path / 'e.csv').write_text('')
    with pytest.raises(ValueError, match='e.csv is empty'): read_adnimerge(tmp_path / 'e.csv')
    with pytest.raises(FileNotFoundError, match='is a folder'): read_adnimerge(tmp_path)


def test_fixture_writers_check_counts(tmp_path):
    ph = Toy(32, 0)
    for n in ((4, 2), 4):  # (4, 2) used to write an npz that read_medmnist rejects
        with pytest.raises(ValueError, match=r'expected 3 counts \(train, val, test\)'): write_medmnist_fixture(tmp_path / 'chestmnist.npz', ph, n=n)
    assert not (tmp_path / 'chestmnist.npz').exists()
    for kw in (dict(n_train=0), dict(n_valid=-1), dict(n_train='4')):
        with pytest.raises(ValueError, match=f"{list(kw)[0]}=.*expected a positive integer"): write_chexpert_fixture(tmp_path / 'c', ph, **kw)
    with pytest.raises(ValueError, match='p_uncertain=2'): write_chexpert_fixture(tmp_path / 'c', ph, p_uncertain=2)
    with pytest.raises(ValueError, match='image_size=0'): write_isic2019_fixture(tmp_path / 'i', SkinPhantom(32), n=2, image_size=0)
    with pytest.raises(ValueError, match='n=0'): write_isic2020_fixture(tmp_path / 'j', SkinPhantom(32), n=0)


def test_fixture_writers_refuse_to_overwrite(tmp_path):
    ph, skin = Toy(32, 0), SkinPhantom(32)
    f = write_chexpert_fixture(tmp_path / 'c', ph, n_train=3, n_valid=2)
    (f / 'train.csv').write_text('MY OWN DATA\n')
    with pytest.raises(FileExistsError, match='write over .*train.csv.*overwrite=True'): write_chexpert_fixture(tmp_path / 'c', ph, n_train=3, n_valid=2)
    assert (f / 'train.csv').read_text() == 'MY OWN DATA\n'
    write_chexpert_fixture(tmp_path / 'c', ph, n_train=3, n_valid=2, overwrite=True)
    assert len(read_chexpert(f, frontal_only=False)) >= 3
    for write, out in ((write_isic2019_fixture, 'ISIC_2019_Training_GroundTruth.csv'), (write_isic2020_fixture, 'train.csv')):
        d = tmp_path / write.__name__; d.mkdir(); (d / out).write_text('USER DATA\n')
        with pytest.raises(FileExistsError, match=out): write(d, skin, n=2)
        assert (d / out).read_text() == 'USER DATA\n'
        write(d, skin, n=2, overwrite=True); assert (d / out).read_text() != 'USER DATA\n'
    p = tmp_path / 'm' / 'dermamnist.npz'; p.parent.mkdir(); p.write_bytes(b'USER')
    with pytest.raises(FileExistsError, match='dermamnist.npz'): write_medmnist_fixture(p, skin, n=(2, 2, 2))
    assert p.read_bytes() == b'USER'
    assert len(MedMNISTDataset(write_medmnist_fixture(p, skin, n=(2, 2, 2), overwrite=True), 'val')) == 2
    (tmp_path / 'ds' / 'chexpert' / 'CheXpert-v1.0-small').mkdir(parents=True); (tmp_path / 'ds' / 'chexpert' / 'CheXpert-v1.0-small' / 'valid.csv').write_text('x')
    with pytest.raises(FileExistsError, match='valid.csv'): write_data_samples(tmp_path / 'ds')


def test_check_files_wants_a_list(tmp_path):
    "A single path string was read as a list of one-letter paths."
    from medcf.data import check_files
    with pytest.raises(TypeError, match='one path'): check_files(str(tmp_path / 'x.png'))
    with pytest.raises(FileNotFoundError, match='1 image file'): check_files([tmp_path / 'x.png'])


def test_isic2020_blank_diagnosis_column(tmp_path):
    "An entirely blank diagnosis column (read as floats) was an AttributeError from pandas' .str; now the rows are named."
    d = tmp_path / 'i20'; shutil.copytree(SAMPLES / 'isic' / '2020', d)
    pd.read_csv(d / 'train.csv').assign(diagnosis=np.nan).to_csv(d / 'train.csv', index=False)
    with pytest.raises(ValueError, match=r"rows \[0, 1, .* have no diagnosis"): read_isic2020(d)


def test_phantom_stream_float_index():
    "A float index was truncated (stream[2.7] gave sample 2)."
    from medcf.phantoms import ChestPhantom
    s = PhantomStream(ChestPhantom(size=32), 10, split='train', seed=0)
    with pytest.raises(IndexError, match='must be integers'): s[2.7]
    assert s[np.int64(3)]['index'] == 3


def test_one_label_named_twice_is_refused():
    "A phantom column and its CheXpert name given together: the last one used to win silently (so the caption flipped with the order)."
    for labels in ({'effusion': 1, 'Pleural Effusion': 0}, {'Pleural Effusion': 0, 'effusion': 1}):
        with pytest.raises(ValueError, match="both name the finding 'Pleural Effusion'"): chest_prompt(labels)
    assert chest_prompt({'effusion': 1}) == chest_prompt({'Pleural Effusion': 1})


def test_missing_attribute_values_are_refused_before_encoding():
    attrs = pd.DataFrame(dict(age=[50., np.nan, 70.], sex=['Male', 'Female', 'Male']))
    cb = {'age': None, 'sex': ['Female', 'Male']}  # as attr_codebook gives for a phantom with these columns
    with pytest.raises(ValueError, match='age has 1 missing'): encode_attrs(attrs, cb)  # NaN used to pass into the targets
    with pytest.raises(ValueError, match='sex has 1 missing'): encode_attrs(attrs.fillna({'age': 60.}).assign(sex=['Male', None, 'Male']), cb)


def test_parse_censored_refuses_infinite_text():
    for v in ('inf', '-inf', '1e400', '<inf'):
        with pytest.raises(ValueError, match='unparseable'): parse_censored(pd.Series(['1.5', v], name='ABETA'))


def test_datasets_mask_a_brain_phantoms_blank_record_values():
    "BrainPhantom blanks some record values: the datasets give mask False and target 0 there (they gave NaN targets with mask True)."
    from medcf.phantoms import BrainPhantom
    d = PhantomDataset(BrainPhantom(16), 8)
    blank = torch.tensor(d.attrs[list(d.codebook)].isna().to_numpy())
    assert blank.any() and torch.equal(d.mask, ~blank) and torch.isfinite(d.targets).all() and (d.targets[blank] == 0).all()
    s = PhantomStream(BrainPhantom(16), 8)
    assert torch.equal(s[3]['mask'], d[3]['mask']) and torch.equal(s[3]['attrs'], d[3]['attrs'])
    with pytest.raises(ValueError, match='missing values'): encode_attrs(d.attrs, d.codebook)  # the strict encoder still refuses


def test_only_uncertain_findings_are_not_captioned_normal():
    "CheXpert's train.csv leaves No Finding blank (never 0) when a finding is positive or uncertain: such a row was captioned 'Normal'."
    t = pd.DataFrame({'No Finding': [np.nan, 1.0, np.nan], 'Atelectasis': [-1.0, np.nan, np.nan], 'Pleural Effusion': [np.nan, 0.0, 1.0]})
    assert chest_prompts(t) == ['Chest X-ray', 'Normal chest X-ray with no significant findings', 'Chest X-ray showing Pleural Effusion']
    assert chest_prompts(t, 'U-ones')[0] == 'Chest X-ray showing Atelectasis'


def test_sixteen_bit_images_keep_their_contrast(tmp_path):
    "A 16-bit PNG (an X-ray stored 12-bit in 16) was clipped at 255 by Pillow: 94% of a 0..4095 ramp came out white."
    from PIL import Image
    ramp = np.tile(np.linspace(0, 4095, 64).round().astype(np.uint16), (64, 1))
    Image.fromarray(ramp).save(tmp_path / 'x.png')
    with Image.open(tmp_path / 'x.png') as im: assert im.mode.startswith('I')
    for ch in (1, 3):
        x = load_image(tmp_path / 'x.png', size=64, channels=ch)
        assert x.shape == (ch, 64, 64) and (x >= 0.99).float().mean() < 0.05 and x.min() < -0.99
        assert (x[:, :, 1:] >= x[:, :, :-1] - 1e-6).all()  # still a ramp, left to right


def test_isic2020_jpeg_folder_and_duplicates(tmp_path):
    "Kaggle's layout keeps DICOM in train/ and JPEG in jpeg/train/ (the default took train/); ISIC's duplicates list drops the second image."
    d = tmp_path / 'i20'; shutil.copytree(SAMPLES / 'isic' / '2020', d)
    (d / 'jpeg').mkdir(); shutil.copytree(d / 'train', d / 'jpeg' / 'train')
    for p in (d / 'train').glob('*.jpg'): p.rename(p.with_suffix('.dcm'))
    df = read_isic2020(d)
    assert all('/jpeg/train/' in f.replace('\\', '/') for f in df['file']) and df.attrs['duplicates_dropped'] == []
    names = df['image'].tolist()
    pd.DataFrame({'image_name_1': [names[0]], 'image_name_2': [names[1]]}).to_csv(d / 'ISIC_2020_Training_Duplicates.csv', index=False)
    df2 = read_isic2020(d)
    assert df2['image'].tolist() == names[:1] + names[2:] and df2.attrs['duplicates_dropped'] == [names[1]]
    assert read_isic2020(d, drop_duplicates=False)['image'].tolist() == names
    pd.DataFrame({'image_name_1': [names[0], names[1]], 'image_name_2': [names[1], names[0]]}).to_csv(d / 'ISIC_2020_Training_Duplicates.csv', index=False)
    assert read_isic2020(d)['image'].tolist() == names[:1] + names[2:]  # a pair listed both ways dropped both copies


def test_a_float_image_with_nan_is_refused(tmp_path):
    "A float TIFF with one NaN pixel was stretched from NaN to NaN and came back blank (-1 everywhere)."
    from PIL import Image
    a = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    Image.fromarray(a, 'F').save(tmp_path / 'ok.tif')
    assert load_image(tmp_path / 'ok.tif', size=32).std() > 0.3
    a[3, 4] = np.nan; Image.fromarray(a, 'F').save(tmp_path / 'nan.tif')
    with pytest.raises(ValueError, match=r'nan.tif holds 1 NaN or inf pixels'): load_image(tmp_path / 'nan.tif', size=32)


def test_medmnist_keeps_pixels_as_bytes():
    "The split stays uint8 (a 224-px ChestMNIST train split was 16 GB as floats); an item equals the same image of `images`."
    ds = MedMNISTDataset(SAMPLES / 'medmnist' / 'dermamnist.npz', 'train', size=32)
    assert ds.raw.dtype == torch.uint8 and ds.images.shape == (len(ds), 3, 32, 32)
    for i in (0, len(ds) - 1): assert torch.equal(ds[i]['image'], ds.images[i])
    x = np.load(SAMPLES / 'medmnist' / 'dermamnist.npz')['train_images'][0]
    assert torch.allclose(MedMNISTDataset(SAMPLES / 'medmnist' / 'dermamnist.npz', 'train')[0]['image'], torch.from_numpy(x).permute(2, 0, 1).float() / 127.5 - 1)


def test_load_image_follows_exif_orientation(tmp_path):
    "A photograph stored sideways with an EXIF orientation tag (6: rotate 90 degrees clockwise to view) is loaded as viewers show it."
    from PIL import Image
    a = np.zeros((16, 32), np.uint8); a[:, :16] = 255  # stored: 32 wide, the left half white
    im = Image.fromarray(a); ex = im.getexif(); ex[0x0112] = 6
    im.save(tmp_path / 'x.jpg', exif=ex, quality=95)
    x = load_image(tmp_path / 'x.jpg', size=16, channels=1, crop=False)[0]  # viewed: 16 wide, 32 tall, the top half white
    assert x[:6].mean() > 0.8 and x[-6:].mean() < -0.8


def test_chexpert_rgb_for_an_rgb_model():
    "channels=3 repeats the gray value in R, G and B, what Stable Diffusion's VAE takes; other channel counts are refused."
    rgb = CheXpertDataset(CHEX, 'train', size=32, channels=3)[0]['image']
    assert rgb.shape == (3, 32, 32) and torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[1], rgb[2])
    assert (rgb[0] - CheXpertDataset(CHEX, 'train', size=32)[0]['image'][0]).abs().max() <= 1 / 127.5
    with pytest.raises(ValueError, match='channels=2'): CheXpertDataset(CHEX, 'train', channels=2)
    ds = CheXpertDataset(CHEX, 'train', 32, True, 'U-ones')  # the positional order from before `channels` (added last)
    assert ds.policy == 'U-ones' and ds.channels == 1


def test_medmnist_gray_as_rgb():
    "ChestMNIST for an RGB model: channels=3 repeats the gray value; DermaMNIST is RGB and is not turned gray."
    g, c = (MedMNISTDataset(SAMPLES / 'medmnist' / 'chestmnist.npz', 'train', size=32, channels=k) for k in (None, 3))
    assert g[0]['image'].shape == (1, 32, 32) and c[0]['image'].shape == c.images.shape[1:] == (3, 32, 32)
    assert all(torch.equal(c[0]['image'][j], g[0]['image'][0]) for j in range(3))
    with pytest.raises(ValueError, match='holds RGB images; expected None, 3'): MedMNISTDataset(SAMPLES / 'medmnist' / 'dermamnist.npz', channels=1)
    with pytest.raises(ValueError, match=r'channels=2: chestmnist.npz holds grayscale'): MedMNISTDataset(SAMPLES / 'medmnist' / 'chestmnist.npz', channels=2)


def test_silent_label_mistakes_are_refused(tmp_path):
    "From a bad-input audit of data.py: near-miss finding names captioned a positive study normal; a diagnosis and a contradicting melanoma label gave a nevus; a duplicated CheXpert Path and a text 'No Finding' column were read."
    assert chest_prompt({'Pleural Effusion': 1, 'Cardiomegaly': 0}) == 'Chest X-ray showing Pleural Effusion'
    for bad in ({'Effusion': 1, 'Cardiomegaly': 0}, {'pleural effusion': 1}, {'Pleural_Effusion': 1}):
        with pytest.raises(ValueError, match=r"which look like \['Pleural Effusion'\] but are not their exact names"): chest_prompt(bad)
    with pytest.raises(ValueError, match=r"\['Pneumonia '\], which look like \['Pneumonia'\]"): chest_prompts(pd.DataFrame({'Path': ['a'], 'Pneumonia ': [1]}))
    assert chest_prompts(pd.DataFrame({'Path': ['a'], 'Sex': ['Male'], 'Pleural Effusion': [1]})) == ['Chest X-ray showing Pleural Effusion']  # other columns still ignored
    assert skin_diagnosis({'diagnosis': 'BCC', 'melanoma': 0}) == 'BCC' and skin_diagnosis({'melanoma': 0, 'BCC': 1, 'NV': 0}) == 'BCC'
    for bad in ({'diagnosis': 'NV', 'melanoma': 1}, {'diagnosis': 'NV', 'MEL': 1, 'NV': 0}, {'melanoma': 0, 'MEL': 1}):
        with pytest.raises(ValueError, match='the labels contradict each other'): skin_prompt(bad)
    f = _copy_chexpert(tmp_path)
    t = pd.read_csv(f / 'train.csv', dtype=str, keep_default_na=False)
    pd.concat([t, t[:1]]).to_csv(f / 'train.csv', index=False)
    with pytest.raises(ValueError, match=r"train.csv has Path \[.*\] in more than one row"): read_chexpert(f)
    base = read_chexpert(_copy_chexpert(tmp_path / 'b'))
    for cell, ok in ((' ', True), ('yes', False), ('2', False)):
        g = _copy_chexpert(tmp_path / f'nf{ok}{len(cell)}{cell}')
        u = t.copy(); u.loc[0, 'No Finding'] = cell; u.to_csv(g / 'train.csv', index=False)
        if ok: assert read_chexpert(g).prompt.tolist() == base.prompt.tolist()  # a stray space is blank
        else:
            with pytest.raises(ValueError, match=r"'No Finding' holds \[('yes'|2.0)\]"): read_chexpert(g)


def test_writers_check_the_file_they_write(tmp_path):
    "write_medmnist_fixture checked 'chestmnist' and numpy wrote 'chestmnist.npz' over an existing file; overwrite='no' was truthy."
    from medcf.phantoms import ChestPhantom, save_grid
    ph = ChestPhantom(32)
    p = write_medmnist_fixture(tmp_path / 'chestmnist', ph, n=(2, 1, 1), size=28)
    assert p == tmp_path / 'chestmnist.npz' and p.exists()
    before = p.read_bytes()
    with pytest.raises(FileExistsError, match='chestmnist.npz'): write_medmnist_fixture(tmp_path / 'chestmnist', ph, n=(2, 1, 1), size=28, seed=1)
    assert p.read_bytes() == before
    png = save_grid(ph.sample(2, seed=0).images, tmp_path / 'g.png')
    with pytest.raises(TypeError, match="overwrite='no': expected True or False"): save_grid(ph.sample(2, seed=1).images, png, overwrite='no')


def test_messages_name_what_was_wrong(tmp_path):
    "A folder was reported as a missing file; findings='Cardiomegaly' listed its letters; a seed of 1.5 was reported as 4.5; collate stacked a uint8 image beside float ones by casting."
    (tmp_path / 'img.png').mkdir()
    with pytest.raises(FileNotFoundError, match='is a folder, not a file'): load_image(tmp_path / 'img.png')
    with pytest.raises(FileNotFoundError, match='1 of them are folders'): check_files([tmp_path / 'img.png'])
    with pytest.raises(TypeError, match="findings='Cardiomegaly' is a string"): CheXpertDataset(SAMPLES / 'chexpert', findings='Cardiomegaly')
    from medcf.phantoms import ChestPhantom
    with pytest.raises(ValueError, match=r'seed=1.5: expected a non-negative integer'): write_medmnist_fixture(tmp_path / 'chestmnist.npz', ChestPhantom(32), n=(2, 1, 1), seed=1.5)
    f = {'image': torch.zeros(1, 4, 4), 'prompt': 'a'}
    with pytest.raises(ValueError, match=r"item 1 'image' is torch.uint8; expected item 0's dtype torch.float32"): collate([f, {'image': torch.zeros(1, 4, 4, dtype=torch.uint8), 'prompt': 'b'}])
    with pytest.raises(TypeError, match='item 0 is a str; expected a list of dicts'): collate(['image'])


def test_dataset_indices_and_dataset_interventions():
    "ds[2.0] and ds[True] failed raw (or read row 1); PhantomDataset(devices=[1, 0]) said 'one value per sample (1)'."
    ds = CheXpertDataset(SAMPLES / 'chexpert', size=16)
    assert torch.equal(ds[np.int64(1)]['image'], ds[1]['image']) and torch.equal(ds[torch.tensor(1)]['image'], ds[1]['image'])
    for bad in (2.0, True, torch.tensor(1.0)):
        with pytest.raises(TypeError, match='expected an integer position'): ds[bad]
    with pytest.raises(IndexError, match='out of range'): ds[len(ds)]
    assert [x['index'] for x in ds][:2] == [0, 1]  # iteration still stops at the end
    from medcf.phantoms import ChestPhantom
    with pytest.raises(ValueError, match=r"\['devices'\] are given \[\(2,\)\] values; a dataset applies do\(...\) to every sample alike"):
        PhantomDataset(ChestPhantom(32), 2, devices=[1, 0])


def test_adnimerge_near_baseline_codes_and_ranges(tmp_path):
    "A baseline written 'BL' beside 'bl' rows (silently dropped before) and values outside their range are refused."
    raw = pd.read_csv(SAMPLES / 'adni' / 'ADNIMERGE_sample.csv', dtype=str, keep_default_na=False)
    def read(df, **kw): df.to_csv(tmp_path / 'a.csv', index=False); return read_adnimerge(tmp_path / 'a.csv', **kw)
    first = raw.index[raw.VISCODE == 'bl'][0]
    for code in ('BL', ' bl'):
        with pytest.raises(ValueError, match=rf"VISCODE has \['{code}'\]; rows .* would not count as baseline"):
            read(raw.assign(VISCODE=raw.VISCODE.where(raw.index != first, code)))
    with pytest.raises(ValueError, match=r"VISCODE has \['BL'\]"): read(raw.assign(VISCODE=raw.VISCODE.str.upper()), baseline_only=False)
    rid = int(raw.RID[first])
    for col, v, want in [('MMSE', '35', 'between 0 and 30'), ('APOE4', '3', 'between 0 and 2'), ('APOE4', '1.5', 'whole numbers'),
                         ('AGE', '7', 'between 40 and 110'), ('PTEDUCAT', '-1', 'between 0 and 30'), ('ABETA', '-5', 'at least 0'),
                         ('Years_bl', '-0.5', 'at least 0')]:
        bad = raw.copy(); bad.loc[first, col] = v
        with pytest.raises(ValueError, match=rf"{col} has values \['{re.escape(v)}'\] for RID \[{rid}\]; expected .*{want}"): read(bad)
    assert len(read(raw)) == (raw.VISCODE == 'bl').sum()  # the fixture's own values pass


def test_transparent_images_are_refused(tmp_path):
    "Converting an image with transparent pixels dropped the alpha and kept the colour under it; an opaque alpha reads as RGB."
    from PIL import Image
    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb, 'RGB').save(tmp_path / 'rgb.png')
    alpha = np.full((16, 16, 1), 255, np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], 2), 'RGBA').save(tmp_path / 'opaque.png')
    for ch in (1, 3): assert torch.equal(load_image(tmp_path / 'opaque.png', 16, ch), load_image(tmp_path / 'rgb.png', 16, ch))
    alpha[:4] = 0
    Image.fromarray(np.concatenate([rgb, alpha], 2), 'RGBA').save(tmp_path / 'rgba.png')
    Image.fromarray(np.concatenate([rgb[..., :1], alpha], 2), 'LA').save(tmp_path / 'la.png')
    p = Image.fromarray(rgb[..., 0] // 64, 'L').convert('P'); p.info['transparency'] = 0; p.save(tmp_path / 'p.png', transparency=0)
    for f, mode in (('rgba.png', 'RGBA'), ('la.png', 'LA'), ('p.png', 'P')):
        with pytest.raises(ValueError, match=rf"{f} has \d+ transparent or translucent pixels \(mode {mode}\); expected an opaque image"):
            load_image(tmp_path / f, 16, 3)


def test_skin_diagnosis_refuses_two_one_hot_diagnoses_beside_another_key():
    "Two one-hot columns at 1 are two diagnoses: refused beside 'diagnosis' or 'melanoma' too, not only alone (a mutation tester's find)."
    from medcf.data import skin_diagnosis
    for labels in ({'diagnosis': 'NV', 'MEL': 1, 'BCC': 1}, {'diagnosis': 'NV', 'NV': 1, 'MEL': 1}, {'melanoma': 0, 'MEL': 1, 'NV': 1}):
        with pytest.raises(ValueError, match=r"contradict each other.*one-hot \["): skin_diagnosis(labels)
    assert skin_diagnosis({'diagnosis': 'NV', 'NV': 1, 'MEL': 0}) == 'NV' and skin_diagnosis({'melanoma': 0, 'BCC': 1}) == 'BCC'


# --- From a mutation-testing pass over medcf/data.py (session 36): each pins a behaviour no test above pinned, to a hand-made file,
# a hand-worked value, a documented default or a refusal's message; the M-numbers are the helper's mutant ids.
NORMAL = 'Normal chest X-ray with no significant findings'


class Graded(SCMPhantom):
    "A tiny phantom with a numeric category whose values are not 0..K-1 (a grade 1, 2, 3) beside text ones."
    channels = 1
    def _variables(self):
        return [Variable('sex', ['Female', 'Male'], mechanism=lambda p, u: np.where(u < .5, 'Female', 'Male')),
                Variable('grade', [1, 2, 3], mechanism=lambda p, u: 1 + (u * 3).astype(int)),
                Variable('effusion', [0, 1], mechanism=lambda p, u: (u < .4).astype(int))]
    def _draw_noise(self, rng, n): return {k: rng.random(n) for k in self.variables}
    def _render(self, t, noise):
        g = torch.as_tensor(t['grade'].to_numpy(dtype=np.float32))[:, None, None, None]
        return (g / 3 - 1).expand(-1, 1, self.size, self.size).clone()
    def _prompt(self, row): return chest_prompt({'effusion': row['effusion']})


def _png(path, a, mode=None):
    Image.fromarray(a, mode).save(path) if mode else Image.fromarray(a).save(path)
    return path


def _chexpert(root, split, rows):
    "A hand-written CheXpert CSV (header as CheXpert ships it; unlisted cells blank); images are not written (read with check=False)."
    folder = Path(root) / 'CheXpert-v1.0-small'; folder.mkdir(parents=True, exist_ok=True)
    base = {'Sex': 'Female', 'Age': 60, 'Frontal/Lateral': 'Frontal', 'AP/PA': 'AP'}
    pd.DataFrame([{**base, **r} for r in rows]).reindex(columns=CHEXPERT_HEADER).to_csv(folder / f'{split}.csv', index=False)
    return folder


# --- M08: apply_policy's labels are float32, as its docstring states ---------------------------------------------------
def test_apply_policy_gives_float32_labels():
    y, m = apply_policy([1, 0, -1, np.nan], 'U-ones')
    assert y.dtype == np.float32 and m.dtype == bool


# --- M14, M15: a label row or table with no finding is refused, not captioned -------------------------------------------
def test_no_finding_alone_or_no_finding_column_is_refused():
    with pytest.raises(ValueError, match='no chest finding in the labels'): chest_prompt({'No Finding': 1})
    with pytest.raises(ValueError, match='no CheXpert finding among the columns'): chest_prompts(pd.DataFrame({'Path': ['a'], 'Sex': ['Male']}))


# --- M21: under 'ignore', a row with only an uncertain finding and an all-negative row get their own captions --------------
def test_ignore_policy_captions_each_row_on_its_own():
    t = pd.DataFrame({'Pleural Effusion': [-1.0, 0.0], 'Cardiomegaly': [0.0, 0.0]})  # no 'No Finding' column
    assert chest_prompts(t, 'ignore') == ['Chest X-ray', NORMAL]  # row 0: its only finding is masked, no claim; row 1: all negative
    assert chest_prompts(t[::-1].reset_index(drop=True), 'ignore') == [NORMAL, 'Chest X-ray']


# --- M23, M28, M30: contradicting or impossible diagnosis labels are refused -----------------------------------------------
def test_skin_diagnosis_refuses_impossible_labels():
    with pytest.raises(ValueError, match='the labels contradict each other'): skin_diagnosis({'diagnosis': 'MEL', 'melanoma': 0})
    with pytest.raises(ValueError, match=r'melanoma=2; expected 0 \(nevus\) or 1 \(melanoma\)'): skin_diagnosis({'melanoma': 2})
    with pytest.raises(ValueError, match='cannot tell the diagnosis'): skin_diagnosis({'MEL': 1, 'NV': 1})


# --- M26, M27: a diagnosis code in lower case, or with spaces around it, is read ---------------------------------------------
def test_skin_diagnosis_reads_case_and_spaces():
    assert skin_diagnosis({'diagnosis': 'mel'}) == 'MEL' and skin_diagnosis({'diagnosis': ' nevus '}) == 'NV'


# --- M31: a blank artifact cell is 'not stated', not an error --------------------------------------------------------------
def test_skin_prompt_skips_blank_artifacts():
    assert skin_prompt({'melanoma': 1, 'hair': np.nan, 'ruler': 1}) == 'a dermoscopic image with melanoma (MEL) showing ruler'


# --- M37: numeric categories are kept as numbers (codebook None), not replaced by their index -------------------------------
def test_numeric_categories_keep_their_values():
    ph = Graded(16, 0)
    assert attr_codebook(ph) == {'sex': ['Female', 'Male'], 'grade': None, 'effusion': None}
    ds = PhantomDataset(ph, 12)
    assert ds.targets[:, 1].tolist() == ds.attrs['grade'].astype(float).tolist() and set(ds.attrs['grade']) <= {1, 2, 3}


# --- M39, M40, M43: encode/decode refuse what they cannot represent --------------------------------------------------------
def test_encode_decode_refuse_values_outside_the_codebook():
    book = {'sex': ['Female', 'Male']}
    with pytest.raises(ValueError, match=r"sex has values \['Other'\] outside \['Female', 'Male'\]"): encode_attrs(pd.DataFrame({'sex': ['Female', 'Other']}), book)
    assert encode_attrs(pd.DataFrame({'a': [1, 2, 3]}), {}).shape == (3, 0)  # N x K with K = 0
    with pytest.raises(ValueError, match=r'sex has codes \[2.0\] in rows \[0\]'): decode_attrs(torch.tensor([[2.0]]), book)  # one past the last


# --- M47, M54: a phantom stream and dataset refuse positions past either end ------------------------------------------------
def test_phantom_stream_and_dataset_refuse_out_of_range_positions():
    ph = Graded(16, 0)
    with pytest.raises(IndexError, match=r'indices \[10\] out of range for a split of length 10'): PhantomStream(ph, 10)[10]
    ds = PhantomDataset(ph, 4)
    with pytest.raises(IndexError, match='out of range'): ds[-1]
    assert ds[3]['index'] == 3


# --- M55, M57: dataset positions are integers in [0, n) --------------------------------------------------------------------
def test_dataset_refuses_a_bool_tensor_and_a_negative_position():
    ds = MedMNISTDataset(data_path('medmnist', 'chestmnist.npz'), 'val')
    with pytest.raises(TypeError, match='expected an integer position'): ds[torch.tensor(True)]
    with pytest.raises(IndexError, match=r'index -1 out of range'): ds[-1]


# --- M61: float fields are stacked into a tensor like ints -----------------------------------------------------------------
def test_collate_stacks_floats():
    b = collate([{'w': 0.5, 'i': 1}, {'w': 1.5, 'i': 2}])
    assert torch.is_tensor(b['w']) and b['w'].tolist() == [0.5, 1.5]


# --- M64, M65: a 16-bit image is stretched exactly onto [-1, 1]; a constant one is -1 without warnings -----------------------
def test_sixteen_bit_stretch_reaches_both_ends(tmp_path):
    ramp = np.tile(np.linspace(0, 4095, 16).round().astype(np.uint16), (16, 1))
    x = load_image(_png(tmp_path / 'r.png', ramp), size=16)
    assert x.min().item() == -1.0 and x.max().item() == 1.0  # own minimum -> 0 -> -1, own maximum -> 255 -> +1
    flat = _png(tmp_path / 'f.png', np.full((16, 16), 3000, np.uint16))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert (load_image(flat, size=16) == -1).all()


# --- M67, M68: translucent pixels and other channel counts are refused -----------------------------------------------------
def test_load_image_refuses_translucent_pixels_and_two_channels(tmp_path):
    a = np.full((8, 8, 4), 255, np.uint8); a[0, 0, 3] = 200  # one translucent pixel
    with pytest.raises(ValueError, match=r'has 1 transparent or translucent pixels'): load_image(_png(tmp_path / 't.png', a, 'RGBA'), 8, 3)
    with pytest.raises(ValueError, match='channels=2'): load_image(_png(tmp_path / 'g.png', np.zeros((8, 8), np.uint8)), 8, channels=2)


# --- M71, M75: crop=True keeps the centre square of a wide image -----------------------------------------------------------
def test_load_image_crops_the_centre(tmp_path):
    a = np.full((16, 48), 255, np.uint8); a[:, 16:32] = 0  # white | black centre square | white
    p = _png(tmp_path / 'w.png', a)
    assert (load_image(p, size=16) == -1).all()  # the centre square only
    assert load_image(p, size=16, crop=False).max() == 1  # stretched: the white sides stay


# --- M73: pixel 0 is -1 and pixel 255 is +1 --------------------------------------------------------------------------------
def test_load_image_maps_bytes_onto_minus_one_to_one(tmp_path):
    a = np.zeros((8, 8), np.uint8); a[:, 4:] = 255
    x = load_image(_png(tmp_path / 'bw.png', a), size=8, crop=False)
    assert x[0, :, :4].eq(-1).all() and x[0, :, 4:].eq(1).all()


# --- M78, M79, M80, M81, M82, M84: CheXpert layouts and label cells --------------------------------------------------------
def test_chexpert_valid_only_folder_and_bad_cells(tmp_path):
    ok = {'Path': 'CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg', 'No Finding': -1.0, 'Pleural Effusion': 0.0}
    f = _chexpert(tmp_path / 'v', 'valid', [ok])  # only valid.csv, as a download of the validation set gives
    t = read_chexpert(f.parent, 'valid', check=False)
    assert t['prompt'].tolist() == ['Chest X-ray']  # No Finding -1 is a CheXpert label ('expected 1, 0, -1 or blank'); not 1, so not normal
    with pytest.raises(ValueError, match="split='test'; CheXpert ships 'train' and 'valid'"): read_chexpert(f, 'test', check=False)
    _chexpert(tmp_path / 'a', 'valid', [{**ok, 'Frontal/Lateral': 'frontal'}])
    with pytest.raises(ValueError, match=r"Frontal/Lateral has values \['frontal'\]"): read_chexpert(tmp_path / 'a', 'valid', check=False)
    _chexpert(tmp_path / 'b', 'valid', [{**ok, 'Path': 'view1_frontal.jpg'}])
    with pytest.raises(ValueError, match=r"Path values \['view1_frontal.jpg'\] are not like"): read_chexpert(tmp_path / 'b', 'valid', check=False)
    with pytest.raises(ValueError, match=r"unknown findings \['Effusion'\]"): CheXpertDataset(f, 'valid', findings=['Effusion'])


# --- M87, M88, M91: ISIC 2019 ground truth must be one-hot; melanoma is MEL only ---------------------------------------------
def _isic2019(root, rows):
    "A hand-written ISIC_2019_Training_GroundTruth.csv: image name -> the columns set to 1.0 (the others 0.0), or a dict of values."
    root.mkdir(parents=True, exist_ok=True)
    recs = [{'image': name, **{c: float(c in ones) for c in ISIC_DIAGNOSES}} if isinstance(ones, tuple) else {'image': name, **ones}
            for name, ones in rows]
    pd.DataFrame(recs, columns=ISIC2019_GROUND_TRUTH).fillna(0.0).to_csv(root / 'ISIC_2019_Training_GroundTruth.csv', index=False)
    return root

def test_isic2019_one_hot_rows_and_melanoma(tmp_path):
    t = read_isic2019(_isic2019(tmp_path / 'a', [('ISIC_1', ('MEL',)), ('ISIC_2', ('BCC',)), ('ISIC_3', ('NV',))]), check=False, metadata=False)
    assert t['diagnosis'].tolist() == ['MEL', 'BCC', 'NV'] and t['melanoma'].tolist() == [1, 0, 0]  # a carcinoma is not a melanoma
    for bad in [('MEL', 'NV'), {'MEL': 0.5, 'NV': 0.5}]:  # two diagnoses; a soft label summing to 1
        d = _isic2019(tmp_path / str(len(bad)), [('ISIC_1', ('NV',)), ('ISIC_2', bad)])
        with pytest.raises(ValueError, match=r"rows \[1\] \(images \['ISIC_2'\]\) are not one-hot"): read_isic2019(d, check=False, metadata=False)


# --- M93, M94, M96: ISIC 2020 duplicates list and target values --------------------------------------------------------------
def _isic2020(root, names, target=None, dup=None):
    root.mkdir(parents=True, exist_ok=True)
    n = len(names); target = target or [0] * n
    pd.DataFrame({'image_name': names, 'patient_id': [f'IP_{i}' for i in range(n)], 'sex': 'male', 'age_approx': 50.0,
                  'anatom_site_general_challenge': 'torso', 'diagnosis': ['melanoma' if t == 1 else 'nevus' for t in target],
                  'benign_malignant': 'benign', 'target': target}).to_csv(root / 'train.csv', index=False)
    if dup is not None: pd.DataFrame(dup, columns=['image_name_1', 'image_name_2']).to_csv(root / ISIC2020_DUPLICATES, index=False)
    return root

def test_isic2020_duplicates_keep_a_lesion_whose_twin_is_gone(tmp_path):
    d = _isic2020(tmp_path / 'a', ['A', 'B', 'C'], dup=[('X', 'B'), ('C', 'C')])  # X is not in train.csv; C listed with itself
    t = read_isic2020(d, check=False)
    assert t['image'].tolist() == ['A', 'B', 'C'] and t.attrs['duplicates_dropped'] == []  # dropping B or C would lose the only copy
    with pytest.raises(ValueError, match=r'target has values \[0, 2\]; expected 0 or 1'): read_isic2020(_isic2020(tmp_path / 'b', ['A', 'B'], [0, 2]), check=False)


# --- M98, M99, M100, M101: read_medmnist refuses a bad split, float images, a label count mismatch; DermaMNIST has classes 0..6 ---
def _npz(path, **change):
    a = {f'{s}_images': np.zeros((2, 28, 28), np.uint8) for s in ('train', 'val', 'test')} | {f'{s}_labels': np.zeros((2, 14), np.uint8) for s in ('train', 'val', 'test')}
    np.savez(path, **(a | change)); return path

def test_read_medmnist_refuses_what_it_cannot_read(tmp_path):
    p = _npz(tmp_path / 'chestmnist.npz')
    with pytest.raises(ValueError, match="split='training'; expected 'train', 'val' or 'test'"): read_medmnist(p, 'training')
    with pytest.raises(ValueError, match=r'train_images is float32 \(2, 28, 28\); expected uint8'): read_medmnist(_npz(tmp_path / 'f.npz', train_images=np.zeros((2, 28, 28), np.float32)))
    with pytest.raises(ValueError, match='has 2 train images but 3 labels'): read_medmnist(_npz(tmp_path / 'n.npz', train_labels=np.zeros((3, 14), np.uint8)))
    assert medmnist_prompt('dermamnist', [6]) == 'a dermoscopic image with vascular lesion (VASC)'  # class 6, the last of 7
    with pytest.raises(ValueError, match=r'label values \[7\]'): medmnist_prompt('dermamnist', [7])


# --- M104: a four-dimensional split must be RGB ----------------------------------------------------------------------------
def test_read_medmnist_refuses_four_channel_images(tmp_path):
    with pytest.raises(ValueError, match=r'train_images is uint8 \(2, 28, 28, 4\); expected uint8 N x H x W or N x H x W x 3'):
        read_medmnist(_npz(tmp_path / 'c.npz', train_images=np.zeros((2, 28, 28, 4), np.uint8)))


# --- M108, M109, M110: the MedMNIST writer stores each phantom image to within half a grey level, and seeds do not overlap ----
def test_medmnist_fixture_round_trip_and_seeds(tmp_path):
    from medcf.phantoms import SkinPhantom
    ph = SkinPhantom(32)
    p = write_medmnist_fixture(tmp_path / 's0' / 'dermamnist.npz', ph, n=(2, 2, 2), seed=0, size=32)  # stored at the phantom's own size
    ds = MedMNISTDataset(p, 'train')
    truth = ph.sample(2, seed=0).images  # the writer draws train of seed 0 with phantom seed 0 (write_medmnist_fixture's seed * 3 + k, k = 0)
    assert ds.images.shape == truth.shape and (ds.images - truth.clamp(-1, 1)).abs().max() <= 0.5 / 127.5 + 1e-5  # rounded to the nearest byte
    q = write_medmnist_fixture(tmp_path / 's1' / 'dermamnist.npz', ph, n=(2, 2, 2), seed=1, size=32)
    a = {s: MedMNISTDataset(p, s).images.flatten(1) for s in ('train', 'val', 'test')}
    b = {s: MedMNISTDataset(q, s).images.flatten(1) for s in ('train', 'val', 'test')}
    assert all(torch.cdist(a[s], b[t]).min() > 0 for s in a for t in b)  # seeds 0 and 1 share no image in any split


# --- M116, M117, M120, M121: ADNIMERGE ids, censoring columns and stages --------------------------------------------------------
def _adni(path, rows):
    cols = ['RID', 'VISCODE', 'DX_bl', 'DX', 'AGE', 'PTGENDER', 'PTEDUCAT', 'APOE4', 'ABETA', 'PTAU', 'TAU', 'AV45', 'FDG', 'MMSE', 'Years_bl']
    pd.DataFrame(rows, columns=cols).to_csv(path, index=False); return path

def test_adnimerge_stages_censoring_columns_and_ids(tmp_path):
    rows = [['1', 'bl', 'SMC', '', '70', 'Female', '16', '0', '900', '20', '250', '1.1', '1.2', '29', '0'],  # DX blank at baseline: DX_bl (SMC is cognitively normal)
            ['1', 'm12', 'SMC', '', '70', 'Female', '16', '0', '880', '21', '255', '', '', '28', '1'],     # DX blank at a follow-up: unknown
            ['2', 'bl', 'LMCI', 'MCI', '75', 'Male', '12', '1', '700', '30', '300', '1.3', '1.0', '26', '0']]
    d = read_adnimerge(_adni(tmp_path / 'a.csv', rows), baseline_only=False)
    assert d['stage'].tolist()[0] == 'CN' and pd.isna(d['stage'][1]) and d['stage'][2] == 'MCI'
    for c in ('abeta_censored', 'ptau_censored', 'tau_censored'):  # present even when nothing is censored: the same columns for every file
        assert d[c].tolist() == [0, 0, 0]
    rows[2][0] = '2.5'
    with pytest.raises(ValueError, match=r"RID has values \['2.5'\] in rows \[2\]; expected a whole-number participant id"): read_adnimerge(_adni(tmp_path / 'b.csv', rows), baseline_only=False)


# --- M131: a MedMNIST item's mask has one entry per label, like attrs ------------------------------------------------------------
def test_medmnist_item_mask_matches_its_labels():
    it = MedMNISTDataset(data_path('medmnist', 'chestmnist.npz'), 'val')[0]
    assert it['mask'].shape == it['attrs'].shape == (14,) and it['mask'].dtype == torch.bool and it['mask'].all()


# --- session 41's mutation pass: a 16-bit image is stretched from its OWN minimum; the full-size CheXpert folder is found ----
def test_sixteen_bit_stretch_starts_at_the_images_own_minimum(tmp_path):
    "A 12-bit X-ray whose darkest pixel is 1000 still reaches -1 (dividing by the maximum alone left it at -0.33)."
    ramp = np.tile(np.linspace(1000, 3000, 16).round().astype(np.uint16), (16, 1))
    x = load_image(_png(tmp_path / 'r.png', ramp), size=16)
    assert x.min().item() == -1.0 and x.max().item() == 1.0

def test_chexpert_folder_finds_the_full_size_download(tmp_path):
    "CheXpert ships as CheXpert-v1.0-small (the one the fixtures copy) and CheXpert-v1.0 (full size); the parent of either is accepted."
    (tmp_path / 'CheXpert-v1.0').mkdir(); (tmp_path / 'CheXpert-v1.0' / 'valid.csv').write_text('Path\n')
    assert chexpert_folder(tmp_path) == tmp_path / 'CheXpert-v1.0' and chexpert_folder(tmp_path / 'CheXpert-v1.0') == tmp_path / 'CheXpert-v1.0'


# --- data review (phdata) 1: ISIC 2020 duplicates that chain (A~B, B~C) are one lesion: one image of it is kept -------------
def test_isic2020_duplicate_chain_keeps_one_image_per_lesion(tmp_path):
    "A~B and B~C show one lesion: dropping B alone kept A and C, so a split could still put that lesion on both sides."
    t = read_isic2020(_isic2020(tmp_path / 'a', ['A', 'B', 'C', 'D'], dup=[('A', 'B'), ('B', 'C')]), check=False)
    assert t['image'].tolist() == ['A', 'D'] and t.attrs['duplicates_dropped'] == ['B', 'C']
    t = read_isic2020(_isic2020(tmp_path / 'b', ['A', 'B', 'C', 'D'], dup=[('C', 'B'), ('D', 'X'), ('X', 'A')]), check=False)
    assert t['image'].tolist() == ['A', 'B'] and t.attrs['duplicates_dropped'] == ['C', 'D']  # the first in train.csv's order stays; X (not in train.csv) still links D and A


# --- data review (phdata) 2: chest_prompts reads the phantom columns as chest_prompt does -----------------------------------------
def test_chest_prompts_reads_the_phantom_columns():
    "With the aliases and one CheXpert column, sick rows were captioned 'Normal ...'; with the aliases alone the table was refused."
    t = pd.DataFrame({'effusion': [1, 0, 0], 'cardiomegaly': [0, 1, 0], 'devices': [1, 0, 0], 'no_finding': [0, 0, 1], 'Lung Opacity': [0, 0, 0]})
    for tab in (t, t.drop(columns='Lung Opacity')):
        assert chest_prompts(tab) == [chest_prompt(r) for _, r in tab.iterrows()] == \
            ['Chest X-ray showing Pleural Effusion, Support Devices', 'Chest X-ray showing Cardiomegaly', 'Normal chest X-ray with no significant findings']
    with pytest.raises(ValueError, match=r"columns 'Pleural Effusion' and 'effusion' both name the finding 'Pleural Effusion'; expected one of them"):
        chest_prompts(t.assign(**{'Pleural Effusion': [1, 0, 0]}))
    assert list(t.columns) == ['effusion', 'cardiomegaly', 'devices', 'no_finding', 'Lung Opacity']  # the caller's table is not renamed


# --- data review (phdata) 3: a dataset keeps a copy of its phantom, so changing the caller's phantom later does not reach it ----
def test_phantom_dataset_is_not_changed_by_a_later_change_to_its_phantom():
    "After skin.p_ruler = (1, 1) (to build a shifted test set), train.batch re-rendered rulers that train.attrs says are absent."
    skin = SkinPhantom(size=16)
    train, stream = PhantomDataset(skin, 8, 'train'), PhantomStream(skin, 8, 'train')
    skin.p_ruler = (1.0, 1.0)
    assert (PhantomDataset(skin, 8, 'test').attrs['ruler'] == 1).all()  # the changed phantom is what a new dataset draws from
    b = train.batch(range(8))
    assert train.attrs['ruler'].tolist() == b.attrs['ruler'].tolist() == stream.batch(range(8)).attrs['ruler'].tolist() and (train.attrs['ruler'] == 0).any()
    assert torch.equal(b.images, train.images) and torch.equal(train.stream[0]['image'], train[0]['image'])
    assert train.stream.phantom.rng is not skin.rng  # nor do the two share a random stream


# --- data review (phdata) 4: load_image reads a LAB TIFF as grayscale (through RGB) and names a file it cannot convert ------------
def test_load_image_converts_lab_to_gray_and_names_a_file_it_cannot_convert(tmp_path, monkeypatch):
    "Pillow has no LAB -> L conversion: channels=1 raised 'conversion from LAB to RGB not supported', naming no file."
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8), 'RGB')
    rgb.convert('LAB').save(tmp_path / 'scan.tif'); rgb.convert('LAB').convert('RGB').convert('L').save(tmp_path / 'gray.png')
    with Image.open(tmp_path / 'scan.tif') as im: assert im.mode == 'LAB'
    assert torch.equal(load_image(tmp_path / 'scan.tif', 16, 1), load_image(tmp_path / 'gray.png', 16, 1))
    def no_conversion(self, mode=None, *args, **kw): raise ValueError(f'conversion from {self.mode} to {mode} not supported')
    monkeypatch.setattr(Image.Image, 'convert', no_conversion)  # a mode Pillow cannot convert at all
    with pytest.raises(ValueError, match=re.escape(f"image file {tmp_path / 'scan.tif'} has Pillow mode 'LAB', which cannot be converted to 'RGB'")):
        load_image(tmp_path / 'scan.tif', 16, 3)


# --- data review (hunt3) 1: every reader returns absolute `file` paths, so a dataset built from a relative root survives a chdir ----
def test_readers_return_absolute_files_that_survive_a_chdir(tmp_path, monkeypatch):
    "read_chexpert promised absolute `file` paths but returned them relative to the working directory (as did the ISIC readers): a chdir broke ds[0]."
    shutil.copytree(CHEX, tmp_path / 'chexpert'); shutil.copytree(SAMPLES / 'isic', tmp_path / 'isic')
    (tmp_path / 'elsewhere').mkdir()
    monkeypatch.chdir(tmp_path)
    tables = [read_chexpert('chexpert'), read_isic2019('isic/2019'), read_isic2020('isic/2020')]
    for t in tables: assert all(Path(f).is_absolute() and Path(f).is_file() for f in t['file'])
    chex, isic = CheXpertDataset('chexpert', size=8), ISICDataset(tables[1], size=8)
    monkeypatch.chdir(tmp_path / 'elsewhere')  # a notebook or Hydra changing the working directory after the datasets were built
    assert chex[0]['image'].shape == (1, 8, 8) and isic[0]['image'].shape == (3, 8, 8)


# --- data review (hunt3) 2: 'No Finding' is read with the findings' rules (text '1' is 1), and a value they refuse is refused -------
def test_no_finding_is_parsed_like_the_findings():
    "A table read with dtype=str captioned every normal study 'Chest X-ray' ('1' != 1), and chest_prompt({'No Finding': 7}) was accepted."
    text = pd.DataFrame({'No Finding': ['1.0', '1', '', '0'], 'Cardiomegaly': ['', '0', '1.0', '0']})
    normal = 'Normal chest X-ray with no significant findings'
    assert chest_prompts(text) == chest_prompts(text.replace('', np.nan).astype(float)) == [normal, normal, 'Chest X-ray showing Cardiomegaly', 'Chest X-ray']
    assert chest_prompt({'No Finding': '1', 'Cardiomegaly': '0'}) == chest_prompt({'No Finding': 1, 'Cardiomegaly': 0}) == normal
    assert chest_prompt({'No Finding': -1, 'Cardiomegaly': 0}) == chest_prompt({'No Finding': np.nan, 'Cardiomegaly': 0}) == 'Chest X-ray'
    for v in (7, 'yes', 0.5):
        with pytest.raises(ValueError, match=r"'No Finding': .*(not CheXpert labels|must be numbers).*captioned normal only where it is 1"):
            chest_prompt({'No Finding': v, 'Cardiomegaly': 0})
    with pytest.raises(ValueError, match=r"'No Finding': label values \[2.0\]"): chest_prompts(pd.DataFrame({'No Finding': [1, 2], 'Cardiomegaly': [0, 0]}))


# --- data review (hunt3) 3: a 16-bit grayscale PNG with a transparent value (tRNS) is refused, as an 8-bit one is ------------------
def test_sixteen_bit_png_with_transparency_is_refused(tmp_path):
    "Pillow's convert('RGBA') ignores an I;16 image's tRNS value, so its transparent pixels loaded as their hidden value (white here)."
    a = np.full((8, 8), 1000, np.uint16); a[:4] = 5000
    try: Image.fromarray(a).save(tmp_path / 'g16.png', transparency=5000)
    except OSError: pytest.skip("this Pillow cannot write a 16-bit PNG with a transparency value (9.3, the floor, cannot)")
    Image.fromarray(a).save(tmp_path / 'plain16.png'); Image.fromarray(a).save(tmp_path / 'unused16.png', transparency=7)  # no pixel takes the value
    with Image.open(tmp_path / 'g16.png') as im: assert im.mode in WIDE_MODES and im.info['transparency'] == 5000
    with pytest.raises(ValueError, match=r"g16.png has 32 transparent or translucent pixels \(mode I;?16?\w*\); expected an opaque image"):
        load_image(tmp_path / 'g16.png', 4)
    assert torch.equal(load_image(tmp_path / 'unused16.png', 4), load_image(tmp_path / 'plain16.png', 4))


# --- data review (hunt3) 4: medmnist_prompt reads the flavour in any case, as MedMNISTDataset does ---------------------------------
def test_medmnist_prompt_flavour_any_case():
    "'ChestMNIST' returned '' with no label check (MedMNISTDataset lower-cases the flavour from the file name)."
    row = [0, 0, 1] + [0] * 11
    assert medmnist_prompt('ChestMNIST', row) == medmnist_prompt('chestmnist', row) == 'Chest X-ray showing Effusion'
    assert medmnist_prompt('DermaMNIST', [4]) == 'a dermoscopic image with melanoma (MEL)'
    with pytest.raises(ValueError, match='2 label columns; expected chestmnist labels'): medmnist_prompt('ChestMNIST', [7, 7])
    assert medmnist_prompt('PneumoniaMNIST', [1]) == ''  # another MedMNIST flavour: no caption, as documented
    with pytest.raises(TypeError, match="flavor=3; expected a MedMNIST name"): medmnist_prompt(3, [1])


# --- data review (hunt3) 5: sample addresses are 32-bit words, so a seed or index from 2**32 on is refused --------------------------
def test_sample_address_refuses_seed_and_index_beyond_32_bits():
    "SeedSequence splits an integer >= 2**32 into 32-bit words: (2**32, 'train', 5) drew the same stream as (0, 'val', 5 * 2**32)."
    assert sample_address(7, 'val', 3) == [7, 1, 3] and sample_address(2**32 - 1, 'test', 2**32 - 1) == [2**32 - 1, 2, 2**32 - 1]  # valid addresses unchanged
    for kw, name in (({'seed': 2**32}, 'seed'), ({'index': 5 * 2**32}, 'index')):
        with pytest.raises(ValueError, match=rf"{name}=\d+ is above 2\*\*32 - 1; expected an integer in \[0, 4294967295\]"):
            sample_address(**({'seed': 0, 'split': 'val', 'index': 0} | kw))
    ph = Toy(16, 0)
    with pytest.raises(ValueError, match=r'seed=4294967296 is above 2\*\*32 - 1'): PhantomStream(ph, 10, 'train', seed=2**32)
    with pytest.raises(ValueError, match=r'length=4294967297 is above 2\*\*32; expected at most 4294967296 samples'): PhantomStream(ph, 2**32 + 1)
    assert len(PhantomStream(ph, 2**32)) == 2**32
    from medcf.data import check_samples
    assert type(check_samples(np.int64(5), 'n')) is int  # the int its docstring promises (it returned what it was given)


# --- data review (hunt3) 6: ISICDataset checks `size` when it is built ------------------------------------------------------------
def test_isic_dataset_checks_size_up_front():
    "size=0 was accepted and failed only at ds[0]."
    t = read_isic2019(SAMPLES / 'isic' / '2019')
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=rf'size={bad!r}: expected a positive integer'): ISICDataset(t, size=bad)
    assert ISICDataset(t, size=8)[0]['image'].shape == (3, 8, 8)


# --- data review (hunt4) 1: CheXpertDataset(channels=3) repeats the gray value, as documented, even for a file stored as RGB -------
def test_chexpert_channels3_repeats_gray_of_rgb_file(tmp_path):
    "A tinted RGB chest JPEG kept its colours with channels=3 (per-channel means -0.23/-0.31/-0.38) instead of the gray value in R, G and B."
    ref = CheXpertDataset(CHEX, 'valid', size=16, channels=3)[0]['image']
    shutil.copytree(CHEX, tmp_path / 'chexpert')
    f = tmp_path / 'chexpert' / 'CheXpert-v1.0-small' / pd.read_csv(CHEX / 'CheXpert-v1.0-small' / 'valid.csv')['Path'][0].split('/', 1)[1]
    a = np.asarray(Image.open(f).convert('L'), dtype=np.float32)
    Image.fromarray(np.stack([a, a * 0.9, a * 0.8], -1).round().astype(np.uint8), 'RGB').save(f, quality=95)
    x3, x1 = CheXpertDataset(tmp_path / 'chexpert', 'valid', size=16, channels=3)[0]['image'], CheXpertDataset(tmp_path / 'chexpert', 'valid', size=16)[0]['image']
    assert x3.shape == (3, 16, 16) and torch.equal(x3, x1.expand(3, -1, -1)) and (x3[0] != ref[0]).any()  # the file's gray value, in all three channels
    assert torch.equal(ref, load_image(CHEX / 'CheXpert-v1.0-small' / pd.read_csv(CHEX / 'CheXpert-v1.0-small' / 'valid.csv')['Path'][0].split('/', 1)[1], 16, 3))  # a gray file: as before


# --- data review (hunt4) 2: read_chexpert cuts the folder name from Path only where it is there -------------------------------------
def test_read_chexpert_path_relative_to_folder(tmp_path):
    "A Path written relative to the folder (train/patient...) lost 'train/': a FileNotFoundError at paths without it, or a wrong `file` with check=False."
    ref = read_chexpert(CHEX, 'train')
    shutil.copytree(CHEX, tmp_path / 'chexpert')
    folder = tmp_path / 'chexpert' / 'CheXpert-v1.0-small'
    df = pd.read_csv(folder / 'train.csv')
    df.assign(Path=df['Path'].str.replace('CheXpert-v1.0-small/', '', regex=False)).to_csv(folder / 'train.csv', index=False)
    t = read_chexpert(folder, 'train')  # check=True: every file found
    assert [Path(f).relative_to(folder.resolve()).as_posix() for f in t['file']] == [p.split('/', 1)[1] for p in ref['Path']]
    assert all(Path(f).is_file() for f in t['file']) and t['prompt'].tolist() == ref['prompt'].tolist()
    df.assign(Path=df['Path'].str.replace('CheXpert-v1.0-small/', 'images/', regex=False)).to_csv(folder / 'train.csv', index=False)
    with pytest.raises(ValueError, match=r"train.csv Path values \['images/train/patient00001.*are not like 'CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg' \(rows \[0, 1, 2, 3, 4\]\); "
                                         r"expected the dataset folder \('CheXpert-v1.0-small', 'CheXpert-v1.0'\) or the split folder \('train/', 'valid/'\) first"):
        read_chexpert(folder, 'train', check=False)
    df.assign(Path=df['Path'].str.replace('CheXpert-v1.0-small/', 'mychex/', regex=False)).to_csv(folder / 'train.csv', index=False)
    shutil.move(folder, tmp_path / 'chexpert' / 'mychex')  # the folder's own name as prefix: cut, as the official name is
    assert [Path(f).name for f in read_chexpert(tmp_path / 'chexpert' / 'mychex', 'train')['file']] == [Path(f).name for f in ref['file']]


# --- data review (hunt5) 1: read_adnimerge refuses follow-up visits without Years_bl (they were given the baseline age) ---------------
def test_read_adnimerge_refuses_follow_up_without_years_bl(tmp_path):
    "Without a Years_bl column, baseline_only=False gave RID 9001's m24 visit the baseline AGE 71.4 (73.41 with Years_bl), silently."
    src = SAMPLES / 'adni' / 'ADNIMERGE_sample.csv'
    raw = pd.read_csv(src, dtype=str, keep_default_na=False)
    raw.drop(columns='Years_bl').to_csv(tmp_path / 'no_years.csv', index=False)
    with pytest.raises(ValueError, match=r"no_years.csv has follow-up visits \(VISCODE \['m12', 'm24'\]\) but no Years_bl column; AGE is the age at baseline, "
                                         r"so a visit's age is AGE \+ Years_bl. Expected a Years_bl column \(as ADNIMERGE has\), or pass baseline_only=True"):
        read_adnimerge(tmp_path / 'no_years.csv', baseline_only=False)
    assert read_adnimerge(tmp_path / 'no_years.csv').equals(read_adnimerge(src))  # baseline rows need no Years_bl
    raw[raw.VISCODE == 'bl'].drop(columns='Years_bl').to_csv(tmp_path / 'bl_only.csv', index=False)
    assert read_adnimerge(tmp_path / 'bl_only.csv', baseline_only=False).equals(read_adnimerge(src))


# --- data review (hunt5) 2: a text CheXpert label is named with its row and column ---------------------------------------------------
def test_apply_policy_names_text_cells(tmp_path):
    "A text cell ('unsure' in Edema at row 7) gave 'must be numbers ...; got array([[1.0, ...' naming neither the value, the column nor the row."
    f = tmp_path / 'CheXpert-v1.0-small'; f.mkdir()
    rows = pd.DataFrame({'Path': [f'CheXpert-v1.0-small/train/patient{i:05d}/study1/view1_frontal.jpg' for i in range(1, 11)],
                         'Sex': 'Female', 'Age': 60, 'Frontal/Lateral': 'Frontal', 'AP/PA': 'AP'})
    for c in CHEXPERT_FINDINGS: rows[c] = np.where(np.arange(10) % 3 == 0, 1.0, np.nan)
    rows = rows.astype({'Edema': object}); rows.loc[7, 'Edema'] = 'unsure'
    rows.to_csv(f / 'train.csv', index=False)
    with pytest.raises(ValueError, match=r"^CheXpert labels must be numbers 1, 0, -1 or blank; got 'unsure' at row 7, column 'Edema'$"): read_chexpert(tmp_path, check=False)
    with pytest.raises(ValueError, match=r"got 'x' at index 1, 2, '\?' at index 2, 0$"): apply_policy(np.array([[1, 0, ''], [0, -1, 'x'], ['?', 1, 1]], dtype=object))
    with pytest.raises(ValueError, match=r"not CheXpert labels \(2 at row 1 of 'Edema'\); expected 1"): apply_policy(pd.Series([1, 2], name='Edema'))
    assert apply_policy(np.array(['', '1', '-1'], dtype=object))[0].tolist() == [0, 1, 0]  # '' is blank, as before


# --- data review (hunt5) 3: ISICDataset refuses a row whose melanoma and diagnosis contradict each other ------------------------------
def test_isic_dataset_refuses_melanoma_diagnosis_clash():
    "diagnosis='NV' with melanoma=1 was taken (attrs [1, 1], prompt 'nevus (NV)'), while skin_diagnosis refuses the same row."
    t = read_isic2019(SAMPLES / 'isic' / '2019')
    assert ISICDataset(t, 8).targets.shape == (len(t), 2)  # a consistent table, as before
    t.loc[1, ['diagnosis', 'melanoma']] = ['NV', 1]; t.loc[2, ['diagnosis', 'melanoma']] = ['MEL', 0]
    with pytest.raises(ValueError, match=r"table rows \[1, 2\] have melanoma \[1, 0\] but diagnosis \['NV', 'MEL'\]; expected melanoma 1 exactly where the diagnosis is 'MEL'"):
        ISICDataset(t, 8)


# --- data review (hunt5) 4: PhantomDataset checks n under its own name ----------------------------------------------------------------
def test_phantom_dataset_checks_n_by_name():
    "n=0, 2.5 and 2**32 + 1 were reported as 'length=...', a parameter PhantomDataset does not have."
    ph = Toy(16, 0)
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match=rf'^n={bad}: expected a positive integer'): PhantomDataset(ph, bad)
    with pytest.raises(ValueError, match=r'^n=4294967297 is above 2\*\*32; expected at most 4294967296 samples'): PhantomDataset(ph, 2**32 + 1)
    assert len(PhantomDataset(ph, 3)) == 3


# --- data review (hunt5) 5: parse_censored takes exactly one leading < or > ----------------------------------------------------------
def test_parse_censored_refuses_doubled_signs():
    "'<>1700' read as 1700 flagged -1, '><8' as 8 flagged +1, '<<8' and '>>120' taken: lstrip cut every leading < and >."
    for v in ['<>1700', '><8', '<<8', '>>120', '<8>']:
        with pytest.raises(ValueError, match=rf"column 'ABETA' has unparseable values \['{re.escape(v)}'\]; expected numbers, '<x', '>x' or blank"):
            parse_censored(pd.Series(['812.5', v], name='ABETA'))
    num, flag = parse_censored(pd.Series(['>1700', '<8', ' 42', '< 8', None], name='ABETA'))  # valid values read as before
    assert num[:4].tolist() == [1700, 8, 42, 8] and np.isnan(num[4]) and flag.tolist() == [1, -1, 0, -1, 0]


# --- data review (hunt5) 6: encode_attrs names a numbers column that holds text -------------------------------------------------------
def test_encode_attrs_refuses_text_in_numbers_column():
    "Text in age gave numpy's 'could not convert string to float' naming no column, and age read as text ('63') was parsed silently."
    book = attr_codebook(Toy(16, 0))
    a = Toy(16, 0).sample(3, seed=0).attrs
    with pytest.raises(ValueError, match=r"^age has values \['63', 'unknown', '70'\] in rows \[0, 1, 2\] that are not numbers; expected numbers"):
        encode_attrs(a.assign(age=['63', 'unknown', '70']), book)
    with pytest.raises(ValueError, match=r"^age has values \['70'\] in rows \[1\] that are not numbers"): encode_attrs(a.assign(age=[61.5, '70', 70]), book)
    ref = encode_attrs(a, book)
    assert torch.equal(encode_attrs(a.assign(age=a['age'].astype(object)), book), ref)  # numbers held as objects (encode_known's fill) still encode
    assert torch.equal(encode_known(a.assign(age=[a['age'][0], np.nan, a['age'][2]]), book)[0][[0, 2]], ref[[0, 2]])


# --- data review (hunt5) 7: read_table refuses one column name given as a string -----------------------------------------------------
def test_read_table_refuses_one_name_string(tmp_path):
    "read_table(p, 'image', ...) checked the letters: 'missing columns ['i', 'm', 'a', 'g', 'e']'."
    pd.DataFrame({'image': ['a']}).to_csv(tmp_path / 't.csv', index=False)
    with pytest.raises(TypeError, match=r"required='image' is one column name; expected a list of column names \(e.g. \['image'\]\)"):
        read_table(tmp_path / 't.csv', 'image', 'an image list')
    assert read_table(tmp_path / 't.csv', ['image'], 'an image list')['image'].tolist() == ['a']


def test_chexpert_same_image_with_and_without_folder_name(tmp_path):
    "One image listed once as 'CheXpert-v1.0-small/train/...' and once as 'train/...' passed the duplicate check on Path, and was read twice; the rows named are the CSV's (they were counted among frontal rows only)."
    f = _copy_chexpert(tmp_path)
    t = pd.read_csv(f / 'train.csv', dtype=str, keep_default_na=False)
    u = t[:1].copy(); u['Path'] = u['Path'].str.split('/', n=1).str[1]
    assert u['Path'].iloc[0].startswith('train/')
    pd.concat([t, u]).to_csv(f / 'train.csv', index=False)
    with pytest.raises(ValueError, match=r"train.csv has Path \['train/.*'\] in more than one row \(rows \[0, " + str(len(t)) + r"\]\)"): read_chexpert(f)


def test_a_prompt_fn_that_returns_no_caption_is_refused():
    "A prompt_fn returning None for AP rows was stored as those samples' captions and passed through collate; finetune refused it calls later."
    from medcf.phantoms import ChestPhantom
    fn = lambda r: None if r['view'] == 'AP' else f"{r['view']} chest X-ray"
    with pytest.raises(TypeError, match=r"prompt_fn returned NoneType 'None' for sample \d+; expected a caption \(str\) for every row"):
        PhantomDataset(ChestPhantom(size=32), 8, prompt_fn=fn)
    ok = PhantomDataset(ChestPhantom(size=32), 4, prompt_fn=lambda r: f"{r['view']} chest X-ray")
    assert all(p.endswith('chest X-ray') for p in ok.prompts)


def test_fixture_writers_check_the_seed_by_name_before_writing(tmp_path):
    "Session 52: write_chexpert_fixture handed seed to numpy unchecked (-1: 'expected non-negative integer', 1.5: a SeedSequence TypeError, neither naming seed, as write_medmnist_fixture's check does); the ISIC writers made dest/ before the seed was refused, leaving empty folders."
    from medcf.phantoms import ChestPhantom
    chest, skin = ChestPhantom(32), SkinPhantom(32)
    for seed in (-1, 1.5):
        for f, ph in ((write_chexpert_fixture, chest), (write_isic2019_fixture, skin), (write_isic2020_fixture, skin)):
            with pytest.raises(ValueError, match=rf"seed={seed}: expected a non-negative integer"): f(tmp_path / f.__name__, ph, seed=seed)
    assert list(tmp_path.iterdir()) == []


def test_read_isic2020_reads_the_challenge_downloads_ground_truth(tmp_path):
    "Session 52: the ISIC challenge's own download names its table ISIC_2020_Training_GroundTruth(_v2).csv (train.csv is Kaggle's name); it was refused as 'train.csv not found'."
    d = write_isic2020_fixture(tmp_path / 'i', SkinPhantom(32), n=6, seed=1)
    kaggle = read_isic2020(d)
    for name in ('ISIC_2020_Training_GroundTruth_v2.csv', 'ISIC_2020_Training_GroundTruth.csv'):
        (d / 'train.csv').rename(d / name)
        got = read_isic2020(d)
        assert got.drop(columns=['file']).equals(kaggle.drop(columns=['file'])) and (d / name).exists()
        if name.endswith('_v2.csv'):  # its messages name the table read
            import pandas as pd
            t = pd.read_csv(d / name); t.loc[0, 'target'] = 2; t.to_csv(d / name, index=False)
            with pytest.raises(ValueError, match=rf'{name} target has values'): read_isic2020(d)
            t.loc[0, 'target'] = int(kaggle['melanoma'].iloc[0]); t.to_csv(d / name, index=False)
        (d / name).rename(d / 'train.csv')
    (d / 'train.csv').unlink()
    with pytest.raises(FileNotFoundError, match=r"holds none of the ISIC 2020 tables \['train.csv', 'ISIC_2020_Training_GroundTruth_v2.csv', 'ISIC_2020_Training_GroundTruth.csv'\]"): read_isic2020(d)
