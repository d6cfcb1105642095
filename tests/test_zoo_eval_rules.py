"medcf.zoo's evaluation helpers (lines 376-655), from a mutation pass in session 38: each test pins a value to a hand-worked example or a stated rule (ids: that pass's mutants)."
import math, types
import numpy as np, pandas as pd, pytest, torch
from medcf import zoo
from medcf import diffusion as D
from medcf.oracles import AttrSpec
from tiny_sd import tiny_pipeline

torch.set_num_threads(1)


class Reached(Exception):
    "Raised by a fake oracle's features: the call got past every refusal."


class FakeOracle:
    "Reads fixed rows (or a function of the images); records what it was shown."
    channels = 1

    def __init__(self, specs, reads):
        self.specs, self.reads, self.seen = specs, reads, []

    def predict(self, x):
        self.seen.append(x)
        return self.reads(x) if callable(self.reads) else self.reads.reset_index(drop=True)

    @property
    def features(self): raise Reached


def _mean_reader(x):
    "ink = 1 where the image's mean is > 0; grade always 1 (a categorical attribute); view always 'AP'."
    m = x.float().mean(dim=(1, 2, 3)).numpy()
    return pd.DataFrame(dict(ink=(m > 0).astype(int), grade=np.ones(len(m), int), view=['AP'] * len(m)))


def _const(values):
    "N x 1 x 8 x 8 images, image i constant at values[i]."
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 8, 8).clone()


@pytest.fixture(scope='module')
def pipe(): return tiny_pipeline()


# M16, M17, M18, M19: attribute_adherence's shares and errors, worked by hand from fixed readings
def test_attribute_adherence_figures_by_hand(pipe):
    specs = [AttrSpec('view', 'categorical', ['AP', 'PA']), AttrSpec('age', 'continuous', range=(18., 90.))]
    asked = pd.DataFrame(dict(view=['AP', 'AP', 'PA', 'PA'], age=[30., 40., 50., 60.]))
    read = pd.DataFrame(dict(view=['AP', 'PA', 'PA', 'PA'], age=[31., 38., 50., 66.]))
    df = zoo.attribute_adherence(pipe, FakeOracle(specs, read), ['a', 'b', 'c', 'd'], asked, num_inference_steps=2)
    v = df[df.attribute == 'view'].set_index('asked')
    assert v.n.tolist() == [4, 2, 2] and v.read_as_asked.tolist() == [0.75, 0.5, 1.0]  # all: 3 of 4; AP: 1 of 2; PA: 2 of 2
    age = df[df.attribute == 'age']
    assert age.asked.tolist() == ['all'] and age.mean_abs_error.tolist() == [(1 + 2 + 0 + 6) / 4]  # mean |read - asked|


# M15, M20 (and M06, M07 through prompt_adherence): the oracle reads the images generate() draws at the given seed and guidance interval
def test_adherence_generates_at_the_given_seed_and_interval(pipe):
    specs = [AttrSpec(k, 'binary', [0, 1]) for k in ('effusion', 'devices', 'cardiomegaly')]
    prompts, asked = zoo.adherence_prompts('chest', 4)
    o = FakeOracle(specs, asked)
    zoo.prompt_adherence(pipe, o, 'chest', n=4, num_inference_steps=2, guidance_scale=3.0, seed=5, guidance_interval=(0, 500))
    want = D.generate(pipe, prompts, 2, 3.0, seed=5, guidance_interval=(0, 500))
    assert not torch.equal(want, D.generate(pipe, prompts, 2, 3.0, seed=5))  # the interval changes the images (else this test proves nothing)
    assert not torch.equal(want, D.generate(pipe, prompts, 2, 3.0, seed=6))
    assert torch.equal(o.seen[0], want)


# M05: prompt_adherence is the pooled ('all') share per prompted attribute
def test_prompt_adherence_is_the_pooled_share(pipe):
    specs = [AttrSpec(k, 'binary', [0, 1]) for k in ('effusion', 'devices', 'cardiomegaly')]
    _, asked = zoo.adherence_prompts('chest', 8)  # the 8 finding combinations once each
    read = asked.assign(effusion=1, cardiomegaly=0)  # devices read as asked; the others half right
    s = zoo.prompt_adherence(pipe, FakeOracle(specs, read), 'chest', n=8, num_inference_steps=2)
    assert s.to_dict() == dict(effusion=0.5, devices=1.0, cardiomegaly=0.5)


# M09, M10, M12: attribute_adherence's refusals (before any image is generated: pipe=None is never reached)
def test_attribute_adherence_refuses_a_string_no_attribute_and_a_partly_bad_column():
    specs = [AttrSpec('view', 'categorical', ['AP', 'PA'])]
    o = FakeOracle(specs, None)
    with pytest.raises(ValueError, match='1 prompts for 2 rows'): zoo.attribute_adherence(None, o, 'ab', pd.DataFrame(dict(view=['AP', 'PA'])))
    with pytest.raises(ValueError, match='no attribute'): zoo.attribute_adherence(None, o, ['a', 'b'], pd.DataFrame(index=range(2)))
    with pytest.raises(ValueError, match=r"asked\['view'\] holds \['lateral'\]"):
        zoo.attribute_adherence(None, o, ['a', 'b'], pd.DataFrame(dict(view=['AP', 'lateral'])))  # one bad value among good ones


# M03: each skin adherence prompt names exactly the artifacts its row asks for
def test_adherence_prompts_skin_pairs_prompts_with_rows():
    from medcf.data import SKIN_ARTIFACTS
    prompts, asked = zoo.adherence_prompts('skin', 12, seed=0)
    for p, (_, row) in zip(prompts, asked.iterrows()):
        for k, word in SKIN_ARTIFACTS.items():
            assert (word in p) == bool(row[k]), (p, dict(row))


# M25, M26, M27, M28: vae_positive_recall worked by hand
def test_vae_positive_recall_by_hand():
    specs = [AttrSpec('ink', 'binary', [0, 1]), AttrSpec('hair', 'binary', [0, 1]), AttrSpec('grade', 'categorical', [0, 1, 2])]
    o = FakeOracle(specs, _mean_reader)
    real = types.SimpleNamespace(images=_const([0.5, 0.5, -0.5, 0.5]), attrs=pd.DataFrame(dict(ink=[1, 1, 1, 0], hair=0, grade=[1, 1, 0, 2])))
    rt = _const([0.5, -0.5, -0.5, 0.4])
    t = zoo.vae_positive_recall(None, o, real, rt)
    # ink: rows 0-2 are positive; read as ink on real 0, 1 (2 of 3), on the round trip 0 only (1 of 3); hair has no positives; grade is not binary
    assert list(t.index) == ['ink'] and t.loc['ink'].tolist() == [3, pytest.approx(2 / 3), pytest.approx(1 / 3)]


# M24: vae_agreement compares the readings of the real images with those of the round trip given
def test_vae_agreement_by_hand():
    specs = [AttrSpec('ink', 'binary', [0, 1]), AttrSpec('view', 'categorical', ['AP', 'PA'])]
    real = types.SimpleNamespace(images=_const([0.5, 0.5, -0.5, 0.5]), attrs=pd.DataFrame(dict(ink=[1, 1, 0, 1])))
    s = zoo.vae_agreement(None, FakeOracle(specs, _mean_reader), real, _const([0.5, -0.5, -0.5, -0.4]))
    assert s.to_dict() == dict(ink=0.5, view=1.0)  # ink read the same on images 0 and 2


# M29, M30, M31: oracle_ceiling's noise has E|n| equal to the round trip's mean absolute error: std = L1 * sqrt(pi / 2)
def test_oracle_ceiling_noise_std_closed_form():
    o = FakeOracle([AttrSpec('view', 'categorical', ['AP', 'PA'])], lambda x: pd.DataFrame(dict(view=['AP'] * len(x))))
    x = torch.full((4, 1, 8, 8), -0.5); rt = x.clone(); rt[:, :, :4] += 0.1  # half the pixels moved by 0.1: L1 = 0.05
    real = types.SimpleNamespace(images=x)
    assert zoo.oracle_ceiling(None, o, real, rt) == dict(noise_std=round(0.05 * math.sqrt(math.pi / 2), 4), view=1.0)  # 0.0627


# M32: evaluate_zoo_model accepts n_invert == n (every real image inverted)
def test_evaluate_zoo_model_accepts_n_invert_equal_to_n():
    with pytest.raises(Reached): zoo.evaluate_zoo_model('chest', object(), FakeOracle([], None), n=4, n_invert=4)  # gets past the check to the FD floor


# M37: update_card keeps the text encoder's field as it keeps max_length
def test_update_card_refuses_text_encoder(tmp_path):
    from medcf.diffusion import CARD
    (tmp_path / CARD).write_text('{"name": "t"}')
    with pytest.raises(ValueError, match=r"\['text_encoder'\] say how load_pipeline rebuilds the text encoder"): zoo.update_card(tmp_path, text_encoder='x')
    assert (tmp_path / CARD).read_text() == '{"name": "t"}' and not (tmp_path / 'README.md').exists()


# M48, M49: grain_versions: `other` is each clean chest plus some chest's grain plane (real - clean), clipped to [-1, 1] as the phantom clips
def test_grain_versions_moves_grain_planes():
    real, clean, other = zoo.grain_versions(4, seed=3)
    assert torch.equal(real.images, zoo.zoo_phantom('chest').sample(4, seed=3).images)
    grain = real.images - clean.images
    assert other.min() >= -1 and other.max() <= 1
    src = [[j for j in range(4) if torch.allclose(other[i], (clean.images[i] + grain[j]).clamp(-1, 1))] for i in range(4)]
    assert sorted(s[0] for s in src) == [0, 1, 2, 3] and all(len(s) == 1 for s in src)  # a permutation of the 4 grain planes
    assert all(s[0] != i for i, s in enumerate(src))  # and each chest gets ANOTHER chest's plane (seed 10_000 gave two their own back before)
    _, _, o2 = zoo.grain_versions(4, seed=10_000)
    r2 = zoo.zoo_phantom('chest').sample(4, seed=10_000).images
    assert not any(torch.equal(o2[i], r2[i]) for i in range(4))
    with pytest.raises(ValueError, match=r"n=1: expected an integer >= 2 \(chests: another chest's grain needs two\)"): zoo.grain_versions(1, seed=0)


# M51, M52: age_bin_ceiling refuses readings without age/age_bin and a non-dict
def test_age_bin_ceiling_refuses_other_tables():
    real = pd.DataFrame(dict(age=[30., 50.], age_bin=['18-40', '40-60']))
    with pytest.raises(ValueError, match=r"expected the chest oracle's readings \(age, age_bin\)"): zoo.age_bin_ceiling({'real': real, 'x': real[['age']]})
    with pytest.raises(ValueError, match="expected a dict with a 'real' entry"): zoo.age_bin_ceiling(['real', 'x'])


# M53: resample_like refuses a NaN in the target, not only in the source
def test_resample_like_refuses_nan_target():
    with pytest.raises(ValueError, match='NaN or inf'): zoo.resample_like([1., 2., 3.], [1., float('nan')])


# M56, M57, M58: attribute_mix_fd refuses n < 2, a non-integer draws, a negative seed and a zero width before any image is drawn
def test_attribute_mix_fd_refuses_before_drawing():
    o = FakeOracle([AttrSpec('age', 'continuous', range=(18., 90.))], None)
    for kw, msg in [(dict(n=1), r'2 <= n <= pool_n'), (dict(draws=2.5), 'draws=2.5'), (dict(seed=-1), 'seed=-1'), (dict(width=0), 'bin width > 0')]:
        with pytest.raises(ValueError, match=msg): zoo.attribute_mix_fd('chest', 'age', pipe=object(), oracle=o, **kw)
