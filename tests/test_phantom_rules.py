"Stated rules of medcf.phantoms' helpers, chest and skin phantoms (from a mutation-testing pass: each pins a value to a rule, a hand-worked example or the message a refusal must contain)."
import functools, inspect, json, os, re, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
import medcf.phantoms as P

torch.set_num_threads(1)


# --- M10, M11, M12: checks_bools refuses None for a plain bool flag, reads a real `bool` annotation, and refuses a function with no flag
def test_checks_bools_none_only_where_the_annotation_allows_it():
    @P.checks_bools
    def f(x: int, flag: bool = False, maybe: 'bool | None' = None): return flag, maybe  # `bool` the class: a module without postponed annotations
    assert f(1, True, None) == (True, None) and f(1, maybe=False) == (False, False)
    with pytest.raises(TypeError, match="flag=None: expected True or False"): f(1, flag=None)
    with pytest.raises(TypeError, match="flag='no': expected True or False"): f(1, 'no')
    with pytest.raises(TypeError, match="has no parameter annotated bool"): P.checks_bools(lambda x: x)


# --- M17: check_real takes a one-element tensor as its number, and refuses a bool tensor
def test_check_real_reads_one_element_tensors():
    assert P.check_real(torch.tensor(0.25), 'p', 0, 1) == 0.25 and P.check_real(torch.tensor([3]), 'k') == 3.0
    with pytest.raises(ValueError, match='expected'): P.check_real(torch.tensor(True), 'p')


# --- M23: check_weights names text given as weights (numpy's 'could not convert string' otherwise)
def test_check_weights_refuses_text():
    assert P.check_weights([2., 0., 1.], 3).tolist() == [2., 0., 1.]
    with pytest.raises(TypeError, match='must hold one number per example'): P.check_weights('abc', 3)


# --- M31: warn_truncated warns only past max_length (a text of exactly max_length tokens is kept whole)
class _Tok:
    "A tokenizer stub: one token per word, padded to the longest text."
    def __call__(self, texts, padding, return_tensors):
        class Out: pass
        o = Out(); o.input_ids = torch.zeros(len(texts), max(len(t.split()) for t in texts)); return o


def test_warn_truncated_only_past_the_limit():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        P.warn_truncated(_Tok(), ['a b c', 'a'], 3, 'the tokenizer')
    with pytest.warns(UserWarning, match='a text has 4 tokens; the tokenizer keeps the first 3'): P.warn_truncated(_Tok(), ['a b c d'], 3, 'the tokenizer')


# --- M32: some_names adds ', ...' only when names were left out
def test_some_names_exactly_k():
    assert P.some_names(list('abcdef')) == 'a, b, c, d, e, f' and P.some_names(['x', 'y'], 2) == 'x, y' and P.some_names([]) == ''


# --- M35: refuse_overwrite refuses a dangling symbolic link (writing would go through it)
def test_refuse_overwrite_refuses_a_dangling_link(tmp_path):
    link = tmp_path / 'grid.png'
    try: link.symlink_to(tmp_path / 'missing' / 'target.png')
    except (OSError, NotImplementedError): pytest.skip('no symbolic links here')
    with pytest.raises(FileExistsError, match='would write over'): P.refuse_overwrite([link], False, 'save_grid')
    P.refuse_overwrite([tmp_path / 'other.png'], False, 'save_grid')  # a free path passes


# --- M40, M42, M43, M44: jsonable turns numpy/torch values, tuples and paths into JSON and names where a bad value sits
def test_jsonable_converts_and_names_the_place():
    card = {'loss': np.float32(0.5), 3: (np.int64(2), Path('a') / 'b.csv'), 'w': torch.tensor([1., 2.])}
    out = P.jsonable(card, 'card')
    assert out == {'loss': 0.5, '3': [2, os.path.join('a', 'b.csv')], 'w': [1.0, 2.0]}
    assert type(out['loss']) is float and type(out['3'][0]) is int
    assert json.loads(json.dumps(out)) == out
    with pytest.raises(TypeError, match=r"card\['k'\]\[1\] is a set"): P.jsonable({'k': [1, {2}]}, 'card')


# --- M47, M48, M49, M50, M51: signature helpers
class _Net(torch.nn.Module):
    def forward(self, x, t, scale=1.0, *, offset=0): return x


def test_signature_helpers():
    assert list(P.parameters_of(_Net())) == ['x', 't', 'scale', 'offset']  # a module's forward, not its __call__
    assert P.parameters_of(min) is None and P.required_parameters(min) is None  # Python reads no signature of min
    def f(a, b=1, *c, d, e=2, **k): pass
    assert P.required_parameters(f) == ['a'] and P.required_parameters(f, keyword_only=True) == ['a', 'd']
    assert P.required_parameters(_Net()) == ['x', 't']
    def g(x, *, offset): pass
    def h(offset, /, x): pass
    assert P.takes_keyword(g, 'offset') and P.takes_keyword(_Net(), 'offset') and P.takes_keyword(f, 'b')
    assert not P.takes_keyword(h, 'offset') and not P.takes_keyword(f, 'k') and not P.takes_keyword(f, 'offset')  # positional-only, **kwargs
    assert not P.takes_keyword(functools.partial(g, offset=1), 'offset') and P.takes_keyword(functools.partial(g, 1), 'offset')




# --- chest renderer: where each hidden rendering variable draws (image left = patient's right; rows run from the apex down)
def _centroid(d):
    "Centre of mass (x, y) in grid units [-1, 1] of a non-negative N x 1 x S x S difference, one per image."
    S = d.shape[-1]; g = (torch.arange(S, dtype=torch.float64) + 0.5) * 2 / S - 1
    m = d[:, 0].double(); tot = m.sum((1, 2))
    return (m.sum(1) * g).sum(1) / tot, (m.sum(2) * g).sum(1) / tot


def _chest_pair(n=6, **do):
    "The same patients (devices=0, no effusion: nothing else drawn) without and with `do`."
    ph = P.ChestPhantom(64, seed=0, grain=0)
    b = ph.sample(n, seed=1, devices=0, effusion=0)
    return b, ph.counterfactual(b, **do)


# M114, M116: a right effusion fills the image's left lower zone, a left one the right
def test_effusion_side_is_the_patients_side():
    for side, sign in (('right', -1), ('left', 1)):
        b, cf = _chest_pair(effusion_side=side)
        x, y = _centroid((cf.images - b.images).abs())
        assert (sign * x > 0.2).all() and (y > 0).all(), (side, x, y)  # that half, below the middle


# M120: the pacemaker box sits in the patient's left upper chest
def test_pacemaker_is_left_upper_chest():
    b, cf = _chest_pair(pacemaker=1)
    x, y = _centroid((cf.images - b.images).abs())
    assert (x > 0.2).all() and (y < 0).all(), (x, y)


# M124: the chest drain is drawn on its own side
def test_chest_tube_is_drawn_on_its_side():
    for side, sign in (('right', -1), ('left', 1)):
        b, cf = _chest_pair(chest_tube=side)
        x, _ = _centroid((cf.images - b.images).abs())
        assert (sign * x > 0.2).all(), (side, x)


# M119: the heart lies to the patient's left: a larger heart (ctr) grows into the image's right half
def test_heart_grows_to_the_patients_left():
    b, cf = _chest_pair(ctr=0.70)
    small = P.ChestPhantom(64, seed=0, grain=0).counterfactual(b, ctr=0.40)
    x, _ = _centroid((cf.images - small.images).abs())
    assert (x > 0).all(), x


# M104, M105, M110, M111: planted mechanism rules stated in the class and variable docs
def test_chest_planted_rules():
    t = P.ChestPhantom(32).sample_truth(4000, seed=3)
    dr = t[t.chest_tube != 'none']
    one = dr[dr.effusion_side.isin(['left', 'right'])]
    assert len(one) > 20 and (one.chest_tube == one.effusion_side).all()  # the drain sits on the effusion side
    assert dr.effusion_side.ne('none').all() and (dr.devices == 1).all()
    alone = (t.devices == 1) & (t.pacemaker == 0) & (t.chest_tube == 'none') & (t.tubes == 0)
    assert alone.any() and (t.line[alone] == 1).all()  # always a line when devices=1 and no other device is
    ages = [18.0, 40.99, 41.0, 60.99, 61.0, 80.99, 81.0, 90.0]
    t2 = P.ChestPhantom(32).sample_truth(len(ages), seed=0, age=np.array(ages))
    assert t2.age_bin.tolist() == ['<=40', '<=40', '41-60', '41-60', '61-80', '61-80', '>80', '>80']  # [edge k, edge k+1)


# M90: fit_chest_model names missing columns
def test_fit_chest_model_names_missing_columns():
    c = P.chexpert_counts()
    with pytest.raises(ValueError, match=r"counts lacks columns \['view'\]"): P.fit_chest_model(c.drop(columns='view'), iters=1)


# M92, M97, M109, M112: the phantom's P(no finding), P(male) and P(devices | effusion) follow the CheXpert counts it is fitted to
def test_chest_phantom_matches_its_counts_on_more_facts():
    c = P.chexpert_counts()
    w = c['count'].to_numpy(float)
    want = dict(male=float(w[(c.Sex == 'Male').to_numpy()].sum() / w.sum()),
                nf=float(w[(c['No Finding'] == 1).to_numpy()].sum() / w.sum()))
    t = P.ChestPhantom(32).sample_truth(40_000, seed=12)
    assert abs((t.sex == 'Male').mean() - want['male']) < 0.02
    assert abs(t.no_finding.mean() - want['nf']) < 0.02
    ph = P.ChestPhantom(32)
    on = ph.sample_truth(3000, seed=2, effusion=1); off = ph.sample_truth(3000, seed=2, effusion=0)
    assert (on.devices >= off.devices).all()  # do(effusion=1) never removes devices (the isotonic M-step)


# M136, M137, M138, M139: chest_facts on a hand-made table
def test_chest_facts_by_hand():
    df = pd.DataFrame(dict(effusion=[1, 0, 1, 0], devices=[1, 1, 0, 0], cardiomegaly=[0, 1, 1, 0], view=['AP', 'AP', 'PA', 'PA'],
                           age_bin=['<=40', '<=40', '>80', '>80'], no_finding=[0, 0, 0, 1]))
    f = P.chest_facts(df, weights=[3, 1, 1, 1])
    assert f['P(effusion)'] == pytest.approx(4 / 6) and f['P(devices)'] == pytest.approx(4 / 6)
    assert f['P(effusion | devices)'] == pytest.approx(3 / 4) and f['P(effusion | no devices)'] == pytest.approx(1 / 2)
    assert f['P(devices | AP)'] == pytest.approx(1.0) and f['P(devices | PA)'] == pytest.approx(0.0)
    assert f['P(cardiomegaly | age <=40)'] == pytest.approx(1 / 4) and f['P(effusion | age <=40)'] == pytest.approx(3 / 4)
    assert f['P(cardiomegaly | age >80)'] == pytest.approx(1 / 2) and f['P(no finding)'] == pytest.approx(1 / 6)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a group with no rows is NaN, without numpy's divide warning
        g = P.chest_facts(df[df.view == 'PA'])
        z = P.chest_facts(df, weights=[0, 0, 1, 1])  # zero total weight in the AP group
    assert np.isnan(g['P(devices | AP)']) and np.isnan(g['P(effusion | age 41-60)']) and g['P(devices | PA)'] == 0.0
    assert np.isnan(z['P(devices | AP)']) and z['P(effusion | age >80)'] == pytest.approx(1 / 2)


# M133, M134: chest_titles as its docstring writes them
def test_chest_titles_by_hand():
    a = pd.DataFrame([dict(sex='Female', age=45.7, view='AP', effusion=1, cardiomegaly=1, devices=0),
                      dict(sex='Male', age=81.0, view='PA', effusion=0, cardiomegaly=0, devices=1)])
    assert P.chest_titles(a) == ['F45 AP EC', 'M81 PA D']


# M182: the chest caption says 'no finding' only when there is none, 'other lung opacity' otherwise
def test_chest_caption_no_finding_and_other_opacity():
    ph = P.ChestPhantom(32)
    row = dict(sex='Female', age=50.0, age_bin='41-60', view='PA', devices=0, effusion=0, cardiomegaly=0)
    caps = ph.captions(pd.DataFrame([dict(row, no_finding=1), dict(row, no_finding=0)]))
    assert 'no finding' in caps[0] and 'other lung opacity' in caps[1] and 'no finding' not in caps[1]


# M141, M145, M147, M148, M150, M152: grids as their docstrings say
def test_grids_place_each_image_and_take_jpg(tmp_path):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    x = torch.stack([-torch.ones(1, 8, 8), torch.ones(1, 8, 8), torch.zeros(1, 8, 8)])
    p = P.save_grid(x, tmp_path / 'g.png', ncols=5)  # more columns than images: one row of three
    img = plt.imread(p)[..., :3]
    assert img.shape[:2] == (8, 3 * 8 + 2 * 2)
    assert np.allclose(img[:, :8], 0) and np.allclose(img[:, 10:18], 1) and np.allclose(img[:, 20:28], 0.5, atol=0.01)  # image k in tile k
    fig = P.show_grid(x, ncols=8); assert len(fig.axes) == 3; plt.close(fig)
    assert P.check_grid_path('a.jpg') == Path('a.jpg') and P.check_grid_path('A.PNG') == Path('A.PNG')
    with pytest.warns(UserWarning, match='shown clipped'): P.save_grid(x * 1.2, tmp_path / 'c.png')


# --- skin renderer
def _skin_pair(n=6, **do):
    "Plain lesions (no signs, no artifacts) without and with `do`."
    ph = P.SkinPhantom(64, seed=0)
    plain = dict(asymmetry=0, border=0, variegation=0, hair=0, ruler=0, ink=0, bubbles=0, dark_corners=0)
    b = ph.sample(n, seed=2, **plain)
    return ph, b, ph.counterfactual(b, **do)


# M161: the lesion's size follows diameter in mm over the 19 mm field of view
def test_lesion_area_follows_the_diameter():
    ph, b, _ = _skin_pair()
    S = 64
    small = ph.counterfactual(b, diameter=2.0).images  # the smallest lesion the variable allows
    for d in (6.0, 12.0):
        diff = (ph.counterfactual(b, diameter=d).images - small).abs().sum(1)
        ring = (diff > 0.5 * diff.amax((1, 2), keepdim=True)).sum((1, 2)).double()  # what the larger lesion covers beyond the small one
        area = ring + np.pi * (2.0 / 2 / 19 * S) ** 2
        want = np.pi * (d / 2 / 19.0 * S) ** 2  # pixels inside a circle of radius (d/2 mm) / (19 mm / S px)
        assert ((area / want - 1).abs() < 0.12).all(), (d, area.tolist(), want)


# M155, M156: melanoma follows the hidden clinic, and diameters stay in the stated ranges
def test_skin_mechanisms_follow_the_stated_rates_and_ranges():
    S = P.SkinPhantom
    t = S(32).sample_truth(20_000, seed=4)
    for c in (0, 1):
        assert abs(t.melanoma[t.clinic == c].mean() - S.p_mel_clinic[c]) < 0.02
    mel, nev = t.diameter[t.melanoma == 1], t.diameter[t.melanoma == 0]
    assert mel.between(*S.diam_melanoma).all() and nev.between(*S.diam_nevus).all()


# --- M64: Variable.valid refuses True among numbers held as objects (a bool is not a number)
def test_valid_refuses_a_bool_among_object_numbers():
    v = P.Variable('p', None, range=(0.0, 1.0))
    assert v.valid(np.array([0.5, 1], dtype=object)).tolist() == [0.5, 1.0]
    with pytest.raises(ValueError, match='p must be numeric, got True'): v.valid(np.array([0.5, True], dtype=object))


# --- M69, M73, M76, M77, M78: batch indexing of two rows, 0/1 Series, and what a slice carries
def test_batch_slices_keep_labels_aligned_and_the_source():
    ph = P.ChestPhantom(32)
    b = ph.sample(4, seed=0)
    two = b[:2]
    assert two[np.array([1, 0])].attrs.age.tolist() == b.attrs.age.tolist()[1::-1]  # positions, in a 2-row batch too
    with pytest.raises(TypeError, match='reads as rows 0 and 1 repeated'): b[pd.Series([0, 1, 1, 0])]
    s = b[[3, 1]]
    assert s.truth.index.tolist() == [0, 1] and (s.truth[s.attrs.columns] == s.attrs).all().all()  # labels as attrs's
    assert s.prompts == [b.prompts[3], b.prompts[1]] and s.source == b.source and s.source['phantom'] == 'ChestPhantom'
    with pytest.raises(ValueError, match='batch was drawn by'): P.ChestPhantom(32, grain=0).counterfactual(s, effusion=1)


# --- M84, M85: render_config records numpy float settings; a dict whose keys are not names is not recorded (a setting holding one is refused)
def test_render_config_settings():
    s = P.SkinPhantom(32)
    s.fov_mm = np.float32(20.0)
    assert s.render_config()['fov_mm'] == 20.0
    assert P._setting({1: 0.5}) is P._SKIP and P._setting({'b': 1, 'a': 2}) == {'a': 2, 'b': 1}


# --- M87, M88, M89: plot_graph draws roots on top, arrows from parent down to child, hidden variables grey
def test_plot_graph_layers_arrows_and_hidden_style():
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ph = P.ChestPhantom(32)
    fig = P.plot_graph(ph); ax = fig.axes[0]
    names = [t for t in ax.texts if not isinstance(t, matplotlib.text.Annotation)]
    pos = {t.get_text(): t.get_position() for t in names}
    assert set(pos) == set(ph.variables) and pos['sex'][1] == 0 and pos['age'][1] == -1  # roots on top, a child one layer down
    arrows = [t for t in ax.texts if isinstance(t, matplotlib.text.Annotation)]
    assert len(arrows) == sum(len(v.parents) for v in ph.variables.values())
    assert all(a.xyann[1] > a.xy[1] for a in arrows)  # from the parent (above) to the child
    colour = {t.get_text(): matplotlib.colors.to_hex(t.get_color()) for t in names}
    assert colour['severity'] != colour['effusion'] and colour['effusion'] == '#000000'
    plt.close(fig)


# --- M125: the hidden other opacity is drawn: a patch in the upper or middle zone of one lung
def test_other_opacity_is_drawn_in_one_lung():
    b, cf = _chest_pair(opacity=1)
    d = (cf.images - P.ChestPhantom(64, seed=0, grain=0).counterfactual(b, opacity=0).images).abs()
    x, y = _centroid(d)
    assert (d.flatten(1).amax(1) > 0.1).all() and (x.abs() > 0.2).all() and (y < 0.2).all(), (x, y)


# The EM fit's default stopping point: the observable joint has settled although the hidden class's parameters have not (the docment's claim)
def test_fit_chest_model_observable_joint_settles_by_200_iterations():
    import itertools
    counts = P.chexpert_counts()
    def joint(f):  # P(stratum, effusion, cardiomegaly, devices, view), the hidden severity summed out, from the fitted tables by hand
        b = lambda p, x: p if x else 1 - p
        return np.array([f['p_stratum'][k] * sum((f['p_severe'][k] if s else 1 - f['p_severe'][k]) * b(f['p_effusion'][k, s], e) * b(f['p_cardiomegaly'][k, s], c)
                                                 * b(f['p_devices'][k, e, c, s], d) * b(f['p_ap'][k, d, s], v) for s in (0, 1))
                         for k, e, c, d, v in itertools.product(range(8), (0, 1), (0, 1), (0, 1), (0, 1))])
    f200, f1000 = P.fit_chest_model(counts, 200), P.fit_chest_model(counts, 1000)
    j200, j1000 = joint(f200), joint(f1000)
    assert abs(j200.sum() - 1) < 1e-9 and 0.5 * np.abs(j200 - j1000).sum() < 0.002  # total variation: settled
    assert f1000['loglik'] >= f200['loglik'] and np.abs(f200['p_severe'] - f1000['p_severe']).max() > 0.02  # the hidden part still moves


# --- review (phantom data): settings that are tuples of tuples, arrays or a replaced fit are recorded; a setting that cannot be is refused by name
def test_render_config_records_nested_and_array_settings():
    b = P.SkinPhantom(32).sample(40, seed=1)
    other = P.SkinPhantom(32); other.p_signs = {'asymmetry': (0.9, 0.9), 'border': (0.9, 0.9), 'variegation': (0.9, 0.9)}
    assert other.render_config()['p_signs']['border'] == (0.9, 0.9)
    with pytest.raises(ValueError, match='batch was drawn by'): other.counterfactual(b, ruler=0)  # its ABCD signs would change under do(ruler=0)
    tones = P.SkinPhantom(32); tones.p_tone = np.array([0., 0, 0, 0, 0, 1])
    assert tones.render_config()['p_tone'] == (0., 0., 0., 0., 0., 1.)
    with pytest.raises(ValueError, match='batch was drawn by'): tones.counterfactual(b, ink=0)
    c = P.ChestPhantom(32); c.fit = {**c.fit, 'p_severe': c.fit['p_severe'] * 0.5}
    assert c.render_config()['fit']['p_severe'] == tuple((P._chest_fit()['p_severe'] * 0.5).tolist())
    for bad in (lambda: 1, {1: 0.5}, (0.1, object())):
        with pytest.raises(TypeError, match="SkinPhantom.p_ruler is a .* that render_config cannot record"): tones.p_ruler = bad
    assert 'p_ruler' not in vars(tones)  # refused, not kept
    assert P._setting([np.array([1, 2]), {'b': (1,), 'a': None}]) == ((1, 2), {'a': None, 'b': (1,)}) and P._setting({'k': {1: 2}}) is P._SKIP


def test_render_config_of_default_phantoms_is_unchanged_and_defaults_written_out_record_nothing():
    "The zoo's image cache and the model cards store render_config as JSON: a default phantom's must stay as it was."
    assert P.ChestPhantom(32).render_config() == {'phantom': 'ChestPhantom', 'grain': 0.015, 'size': 32}
    assert P.SkinPhantom(32).render_config() == {'phantom': 'SkinPhantom', 'size': 32}
    assert P.BrainPhantom(32, dim=3).render_config() == {'phantom': 'BrainPhantom', 'dim': 3, 'size': 32}
    assert P.MSPhantom(32).render_config() == {'phantom': 'MSPhantom', 'size': 32}
    s = P.SkinPhantom(32); b = s.sample(3, seed=0)
    same = P.SkinPhantom(32); same.p_ruler = list(P.SkinPhantom.p_ruler); same.p_tone = np.array(P.SkinPhantom.p_tone); same.p_signs = dict(P.SkinPhantom.p_signs)
    assert same.render_config() == s.render_config() and torch.equal(same.counterfactual(b, ink=0).images, s.counterfactual(b, ink=0).images)


# --- review (phantom data): a setting assigned after construction is checked as the constructor checks it
def test_settings_assigned_later_are_checked_as_the_constructor_checks_them():
    c = P.ChestPhantom(16)
    for bad in (-0.1, 1.0, True, 'x'):
        with pytest.raises(ValueError, match=rf"grain={bad!r}: expected a noise std in \[0, 1\)"): c.grain = bad
    assert c.grain == 0.015
    c.grain = np.float32(0.5); assert type(c.grain) is float
    b = P.BrainPhantom(16)
    for bad in (4, 2.0, True):
        with pytest.raises(ValueError, match=rf"dim={bad!r}: expected 2 \(axial slice\) or 3 \(volume\)"): b.dim = bad
    with pytest.raises(ValueError, match=r"dim=2\.0: expected 2"): P.BrainPhantom(16, dim=2.0)  # the constructor shares the check
    assert b.dim == 2 and b.sample(1, seed=0).images.shape == (1, 1, 16, 16)


# --- review (phantom data): CheXpert's CSVs store labels as 1.0/0.0, which pass the 0/1 check and must fit as 1/0 do
def test_fit_chest_model_takes_float_labels():
    counts = P.chexpert_counts()
    f = counts.astype({c: float for c in ('Pleural Effusion', 'Support Devices', 'Cardiomegaly', 'No Finding')})
    a, b = P.fit_chest_model(counts, iters=2), P.fit_chest_model(f, iters=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)


# --- review (phantom data): snap_to_grid's arithmetic assumes grid[k] = k * step: any other grid is refused, not snapped to a wrong time
def test_snap_to_grid_refuses_a_grid_not_evenly_spaced_from_0():
    for grid in ([0.5, 1.0, 1.5, 2.0], [0., 0.1, 1.0, 2.0], [0., 1., 1., 2.]):
        with pytest.raises(ValueError, match=r"expected evenly spaced, increasing times in years starting at 0"): P.snap_to_grid(np.array([1.0]), np.array(grid))
    assert np.allclose(P.snap_to_grid(np.array([0.1, 1.0, np.nan]), np.linspace(0, 2, 9)), [0., 1., np.nan], equal_nan=True)


# --- review (phantom data): from_visits checks scores against visit times, the baseline column and the EDSS scale
def test_from_visits_checks_scores_against_visits():
    imgs, grid = torch.zeros(3, 1, 16, 16), np.linspace(0, 2, 9)
    rec = pd.DataFrame(dict(age=[40.] * 3, sex=['F', 'M', 'F'], duration=[2.] * 3, edss0=[2.] * 3, relapses=[0] * 3, lesion_vol=[3.] * 3, arm=['placebo'] * 3))  # from_visits refuses a record lacking a column trial_tensors reads
    def make(vt, vy): return P.MSTrialData.from_visits(imgs, rec, np.array(vt, dtype=float), np.array(vy, dtype=float), grid)
    assert make([[0, .5, 1.]] * 3, [[2, 2.5, 3]] * 3).visit_idx.tolist() == [[0, 2, 4]] * 3
    for vt, vy, msg in (([[0, .5, 1.]] * 3, [[2, np.nan, 3]] * 3, r"visit slots with a visit time but no score \(NaN\): 3, e\.g\. patient 0, visit 1"),
                        ([[0, .5, np.nan]] * 3, [[2, 3, 7]] * 3, r"visit slots with a score but no visit time \(NaN\): 3, e\.g\. patient 0, visit 2: t=nan, score 7"),
                        ([[0, .5, 1.]] * 3, [[2, 55, 3]] * 3, r"a score outside the EDSS scale \[0, 10\]: 3, e\.g\. patient 0, visit 1: t=0\.5, score 55"),
                        ([[.5, 1., 2.]] * 3, [[1, 1, 1]] * 3, r"patient 0's visit 0 is at t=0\.5; expected column 0 to be the baseline, at t=0"),
                        ([[0, 1., 2.]] * 3, [[1, 1]] * 3, r"visit_y has shape \(3, 2\) and visit_t \(3, 3\)"),
                        ([[]] * 3, [[]] * 3, r"visit times of shape \(3, 0\); expected .*V >= 1: column 0 the baseline")):
        with pytest.raises(ValueError, match=msg): make(vt, vy)


# --- review (phantom data): a complex intervention value was cut to its real part
def test_complex_intervention_is_refused():
    with pytest.raises(ValueError, match=r"age=\(50\+30j\) is complex; expected a real number in \[18\.0, 90\.0\]"): P.ChestPhantom(32).sample_truth(2, seed=0, age=50 + 30j)


# --- review 2 (phantoms): fdg was the only unclipped biomarker: do(neurodegeneration=15), inside its range, drove it out of [0.5, 2] and failed
def test_brain_fdg_stays_in_range_under_legal_interventions():
    br = P.BrainPhantom(32, seed=0)
    for v in (-20, 15, 20):
        t = br.sample_truth(300, seed=0, neurodegeneration=v)
        assert t.fdg.between(0.5, 2).all()
    assert br.sample_truth(3000, seed=1).fdg.between(0.5, 2, inclusive='neither').all()  # the clip never acts on an observational draw


# --- review 2 (phantoms): a boolean Series not indexed 0..n-1 (taken from reordered attrs) selected rows by position, silently the wrong ones
def test_mask_series_with_other_index_is_refused():
    b = P.ChestPhantom(32, seed=0).sample(10, seed=1)
    mask = b.attrs.sort_values('age').effusion == 1
    with pytest.raises(ValueError, match=r"the mask is a pandas Series with index \[6, 8, 9, 4, 2\]\.\.\.; its values go to the rows by position.*index 0\.\.9"): b[mask]
    assert b[mask.sort_index()].attrs.effusion.tolist() == [1, 1] and len(b[b.attrs.effusion == 1]) == 2  # aligned: selects by label and position alike
    assert b[pd.Series([3, 1], index=[7, 8])].attrs.age.tolist() == b.attrs.age[[3, 1]].tolist()  # a Series of positions: its values, whatever its labels


# --- review 2 (phantoms): MSTrialData[[-3, -2, -2]] of 3 patients re-checked its resolved positions [0, 1, 1] and read them as a 0/1 mask
def test_ms_trial_negative_index_resolving_to_zeros_and_ones():
    d = P.MSTrial(size=32, seed=0, mc=4).simulate(3, seed=2)
    s = d[[-3, -2, -2]]
    assert len(s) == 3 and np.array_equal(s.visit_y, d.visit_y[[0, 1, 1]], equal_nan=True) and torch.equal(s.baseline.images, d.baseline.images[[0, 1, 1]])
    with pytest.raises(TypeError, match='reads as rows 0 and 1 repeated'): d[[0, 1, 1]]  # the user's own 0/1 index is still refused


# --- review 2 (phantoms): the skin's probability settings were accepted unchecked, then clipped silently or failed in sample()
def test_skin_probability_settings_are_checked():
    for name, bad, msg in (('p_hair', -0.2, r"p_hair=-0\.2: expected a probability in \[0, 1\] \(default 0\.25\)"),
                           ('p_clinic', True, r"p_clinic=True: expected a probability"),
                           ('p_ruler', (0.1, 1.5), r"p_ruler=\(0\.1, 1\.5\): expected 2 probabilities in \[0, 1\] \(default \(0\.08, 0\.35\)\)"),
                           ('p_mel_clinic', (0.1,), r"p_mel_clinic=\(0\.1,\): expected 2 probabilities"),
                           ('p_tone', (0.1,) * 6, r"p_tone=.* sums to 0\.6; expected the shares of Fitzpatrick I\.\.VI, summing to 1"),
                           ('p_tone', (0.5, 0.5), r"p_tone=\(0\.5, 0\.5\): expected 6 probabilities"),
                           ('p_signs', {'asymmetry': (0.1, 0.8)}, r"expected a dict with exactly the keys \['asymmetry', 'border', 'variegation'\]"),
                           ('p_signs', {**P.SkinPhantom.p_signs, 'border': (0.1, 2)}, r"p_signs\['border'\]=\(0\.1, 2\): expected 2 probabilities in \[0, 1\]")):
        s = P.SkinPhantom(32)
        with pytest.raises(ValueError, match=msg): setattr(s, name, bad)
        assert name not in vars(s)  # refused, not kept
    s = P.SkinPhantom(32); s.p_ruler = [0, 1]; s.p_hair = np.float32(0.5); s.p_tone = np.full(6, 1 / 6)  # lists, arrays, numpy numbers and the ends are probabilities
    assert s.render_config()['p_ruler'] == (0, 1) and s.sample_truth(2, seed=0).shape[0] == 2


# --- review 2 (phantoms): a discrete variable with integer levels took True as its level 1 and 2+0j as 2
def test_discrete_levels_refuse_bools_and_complex_numbers():
    sk = P.SkinPhantom(32)
    for v, what in ((True, 'True is a bool'), (np.bool_(True), 'True is a bool'), (2 + 0j, r'\(2\+0j\) is complex'), (np.array([2 + 0j, 3]), r'\(2\+0j\) is complex')):
        with pytest.raises(ValueError, match=rf"skin_tone={what}, not a level; expected one of \[1, 2, 3, 4, 5, 6\]"): sk.sample_truth(3, seed=0, skin_tone=v)
    with pytest.raises(ValueError, match=r"relapses=True is a bool"): P.MSPhantom(32).sample_truth(3, seed=0, relapses=True)
    assert sk.sample_truth(3, seed=0, melanoma=np.array([True, False, True])).melanoma.tolist() == [1, 0, 1]  # a 0/1 flag keeps True/False as 1/0


# --- review 2 (phantoms): counterfactual of a batch without exogenous noise (real data) blamed the phantom's _draw_noise with a KeyError
def test_counterfactual_refuses_a_batch_without_noise():
    ms = P.MSPhantom(32); base = ms.sample(4, seed=0)
    d = P.MSTrialData.from_visits(base.images, base.attrs[list(P.MS_TABULAR) + ['arm']], np.zeros((4, 1)), base.attrs.edss0.to_numpy()[:, None], np.linspace(0, 2, 25))
    with pytest.raises(ValueError, match=r"batch has no exogenous noise for \['age', 'sex', 'duration', 'activity'\]\.\.\.: it is not a batch this phantom sampled \(real data"):
        ms.counterfactual(d.baseline, arm='drug_a')
    assert torch.equal(ms.counterfactual(base, arm=base.attrs.arm.to_numpy()).images, base.images)

def test_check_weights_reads_bfloat16_tensors():
    "Weights from a model run in bfloat16 are numbers: read as float (numpy's 'Got unsupported ScalarType BFloat16' before), as float32 ones are."
    from medcf.phantoms import check_weights
    w = torch.tensor([0.5, 1.5, 2.0]).bfloat16()
    assert check_weights(w, 3).tolist() == [0.5, 1.5, 2.0]
    with pytest.raises(ValueError, match='weights has 3 entries for 2 examples'): check_weights(w, 2)

def test_snap_to_grid_takes_a_float32_grid_even_to_its_own_precision():
    "A model's grid comes as float32 (TrialTensors.grid): over 5 monthly years its steps differ by ~5e-7, float32 rounding, not unevenness; it snaps as the float64 grid does. An uneven float32 grid is still refused."
    g64 = np.linspace(0, 5, 61); g32 = g64.astype(np.float32)
    t = np.array([[0.0, 0.49, 1.02, 4.97]])
    assert np.allclose(P.snap_to_grid(t, g32), P.snap_to_grid(t, g64))
    with pytest.raises(ValueError, match='expected evenly spaced'): P.snap_to_grid(t, np.array([0, 0.1, 1, 2, 3, 4, 5], dtype=np.float32))

def test_grid_index_reads_a_float32_grid_to_its_precision():
    "predict looks t up on the TrialTensors' float32 grid: past 32 years float32 holds 33.8333 as 33.83333206, 1.3e-6 off, beyond the 1e-6 tolerance (torch 2.2 with numpy 1.23 refused a real grid time this way)."
    g = np.linspace(0, 34, 34 * 6 + 1); g32 = g.astype(np.float32)
    assert P.grid_index(g32, float(g[-2])) == len(g) - 2 and P.grid_index(g, float(g[-2])) == len(g) - 2
    with pytest.raises(ValueError, match='lies between'): P.grid_index(g32, float(g[-2]) + 0.01)


# --- review (sde data): pandas nullable visit tables (Float64, whose to_numpy() holds pd.NA) are missing visits, as NaN is
def test_from_visits_reads_pd_NA_as_a_missing_visit():
    imgs, grid = torch.zeros(3, 1, 16, 16), np.linspace(0, 2, 9)
    rec = pd.DataFrame(dict(age=[40.] * 3, sex=['F', 'M', 'F'], duration=[2.] * 3, edss0=[2.] * 3, relapses=[0] * 3, lesion_vol=[3.] * 3, arm=['placebo'] * 3))  # from_visits refuses a record lacking a column trial_tensors reads
    vt, vy = np.array([[0, .5, np.nan]] * 3), np.array([[2, 2.5, np.nan]] * 3)
    ref = P.MSTrialData.from_visits(imgs, rec, vt, vy, grid)
    nt, ny = (pd.DataFrame(a).astype('Float64').to_numpy() for a in (vt, vy))
    assert nt.dtype == object and nt[0, 2] is pd.NA  # what a nullable table gives
    for t, y in ((nt, vy), (vt, ny), (nt, ny), (pd.DataFrame(vt).astype('Float64'), pd.DataFrame(vy).astype('Float64'))):
        d = P.MSTrialData.from_visits(imgs, rec, t, y, grid)  # visit_t with pd.NA raised TypeError ('NAType'); visit_y with pd.NA was 'not numbers'
        assert np.array_equal(d.visit_idx, ref.visit_idx) and np.array_equal(d.visit_y, ref.visit_y, equal_nan=True)
    with pytest.raises(ValueError, match='visit_y holds values that are not numbers'): P.MSTrialData.from_visits(imgs, rec, vt, np.array([[2, 'x', np.nan]] * 3, dtype=object), grid)


# --- review (default dtype): a float64 session (torch.set_default_dtype) gets the same float32 images and truths from a seed
def _seeded_batches():
    skin = dict(hair=1, ruler=1, ink=1, bubbles=1, dark_corners=1, asymmetry=1, border=1, variegation=1)  # every drawing branch of the skin renderer
    return [P.ChestPhantom(size=32).sample(4, seed=0), P.SkinPhantom(size=32).sample(3, seed=0, **skin), P.SkinPhantom(size=32).sample(3, seed=1)]

def test_phantoms_render_the_same_float32_images_in_a_float64_session(request):
    "The chest film grain was drawn with torch.randn in the default dtype (a float64 draw is another random stream: images off by up to 0.16) and the skin colours were float64 constants: seed 0 gave other images, in float64."
    ref = _seeded_batches()
    request.getfixturevalue('float64_session')
    for a, b in zip(ref, _seeded_batches()):
        assert b.images.dtype == torch.float32 and torch.equal(a.images, b.images)
        assert a.truth.equals(b.truth) and a.attrs.equals(b.attrs)

def test_builds_float32_restores_the_callers_default_dtype(float64_session):
    "builds_float32 runs a builder with float32 as the default dtype and gives the caller's back, also when the builder raises."
    lin = P.builds_float32(lambda: torch.nn.Linear(2, 2))()
    assert lin.weight.dtype == torch.float32 and torch.get_default_dtype() == torch.float64
    def boom(): raise KeyError('x')
    with pytest.raises(KeyError): P.builds_float32(boom)()
    assert torch.get_default_dtype() == torch.float64

def test_fusion_models_get_the_same_float32_weights_in_a_float64_session(request):
    "medcf.fusion's modules (builds_float32's other users, kept here with it) drew their initial weights in the default dtype: in a float64 session run_fusion trained other weights from the same seed (the age results changed; the AD task failed in cross_entropy)."
    from medcf.fusion import TabularMLP, FusionNet
    def built():
        out = []
        for make in (lambda: TabularMLP(7, 3), lambda: FusionNet(7, 1, 'hyper_head', 2, 4), lambda: FusionNet(7, 3, 'daft', 2, 4)):
            torch.manual_seed(0); out.append(make().state_dict())
        return out
    ref = built()
    request.getfixturevalue('float64_session')
    for a, b in zip(ref, built()):
        assert all(b[k].dtype == a[k].dtype and torch.equal(a[k], b[k]) for k in a) and all(v.dtype == torch.float32 for v in b.values() if v.is_floating_point())


# --- review (MS trial grids): from_visits documents an evenly spaced grid from 0 and gets snap_to_grid's check; grid_index names a grid not from 0 or not increasing
def _two_patients():
    rec = pd.DataFrame(dict(age=[40., 50.], sex=['F', 'M'], duration=[2., 3.], edss0=[1., 2.], relapses=[0, 1], lesion_vol=[3., 4.], arm=['placebo', 'drug_a']))
    return torch.zeros(2, 1, 16, 16), rec, np.array([[0, 0.5, 2.0], [0, 1.0, np.nan]]), np.array([[1, 1.5, 2], [2, 2.5, np.nan]])

def test_from_visits_refuses_a_grid_not_evenly_spaced_from_0():
    "An uneven grid was accepted (only sde.trial_tensors refused it later); one not from 0 was refused as 't=0.0 lies between the trial's grid times 2 and 0.5', a decreasing one as visits 'outside the grid's [0, 0.5] years'."
    img, rec, t, y = _two_patients()
    for grid in ([0, 0.5, 1.0, 2.0], [0.5, 1.0, 2.0], [0., 2., 1., 0.5]):
        with pytest.raises(ValueError, match=r"grid=\[.*\]: expected evenly spaced, increasing times in years starting at 0"): P.MSTrialData.from_visits(img, rec, t, y, np.array(grid))
    assert P.MSTrialData.from_visits(img, rec, t, y, np.linspace(0, 2, 5)).visit_idx.tolist() == [[0, 1, 4], [0, 2, -1]]

def test_grid_index_refuses_a_grid_not_from_0_or_not_increasing():
    for grid in ([0.5, 1.0, 2.0], [0., 2., 1., 0.5], [0., np.nan, 1.], [[0., 1.]]):
        with pytest.raises(ValueError, match=r"grid=\[.*\]: expected a 1-d array of increasing times in years starting at 0"): P.grid_index(np.array(grid), 0.0)
    assert P.grid_index(np.array([0., 0.5, 1.0, 2.0]), 1.0) == 2  # increasing from 0 is all grid_index needs
    with pytest.raises(ValueError, match=r"t=-0.5 is outside the trial"): P.grid_index(np.linspace(0, 2, 5), -0.5)


# --- review (MSTrial settings): steps_per_year is the grid's resolution (a horizon off the grid was spread over round(horizon * steps_per_year) steps)
def test_ms_trial_refuses_a_horizon_that_is_not_a_whole_number_of_grid_steps():
    "horizon=2.1, steps_per_year=12 gave a 0.084-year step; horizon=0.3, steps_per_year=4 one 0.3-year step, under which visit_every=0.25 was accepted."
    for h, spy, hint in ((2.1, 12, 'horizon=2.08333'), (0.3, 4, 'horizon=0.25'), (1.1, 4, 'horizon=1')):
        with pytest.raises(ValueError, match=rf"horizon={h} is .* steps of 1/steps_per_year = 1/{spy} years; expected a whole number of grid steps, e\.g\. {hint}"):
            P.MSTrial(size=16, horizon=h, steps_per_year=spy, mc=2)
    for h, spy in ((2.1, 10), (np.float32(2.1), 10), (34, 6), (0.25, 4), (2, 48)):
        tr = P.MSTrial(size=16, horizon=h, steps_per_year=spy, visit_every=0.25, mc=2)
        assert np.allclose(np.diff(tr.grid), 1 / spy) and np.isclose(tr.grid[-1], h)


# --- review (MSTrial settings): visit_every and p_miss are numbers (True/False read as 1 year and 0; a string gave a bare TypeError)
def test_ms_trial_refuses_visit_every_and_p_miss_that_are_not_numbers():
    for v in (True, '0.25', None):
        with pytest.raises(ValueError, match=rf"visit_every={v!r}: expected a number of years in \[1/steps_per_year, horizon\] = \[0\.08333, 2\]"): P.MSTrial(size=16, visit_every=v, mc=2)
    for v in (False, True, '0.1', 1.0):
        with pytest.raises(ValueError, match=rf"p_miss={v!r}: expected a probability in \[0, 1\)"): P.MSTrial(size=16, p_miss=v, mc=2)
    tr = P.MSTrial(size=16, visit_every=np.float64(0.5), p_miss=np.float32(0), mc=2)
    assert (tr.visit_every, tr.p_miss) == (0.5, 0.0) and type(tr.visit_every) is float

def test_from_visits_refuses_non_square_baselines():
    "from_visits' docs say N x 1 x S x S, but a 48 x 32 baseline was accepted (trial_tensors refuses it later, far from the cause)."
    import torch
    from medcf.phantoms import MSTrialData, MSTrial
    tr = MSTrial(seed=0).simulate(4, seed=1)
    args = (tr.baseline.attrs, tr.visit_t, tr.visit_y, tr.grid)
    with pytest.raises(ValueError, match=r"images has shape \(4, 1, 48, 32\); expected a tensor N x 1 x S x S of baseline slices, square"):
        MSTrialData.from_visits(torch.zeros(4, 1, 48, 32), *args)
    assert len(MSTrialData.from_visits(tr.baseline.images, *args).baseline.attrs) == 4


# --- review (brain phantom): missing_rates is checked (fdg=1.5 blanked every fdg, -0.2 none; a mistyped key failed in sample with a bare KeyError)
def test_brain_missing_rates_are_checked_on_a_subclass_and_an_instance():
    for mr, msg in (({**P.BrainPhantom.missing_rates, 'fdg': 1.5}, r"missing_rates\['fdg'\]=1\.5: expected a probability in \[0, 1\]"),
                    ({**P.BrainPhantom.missing_rates, 'fdg': -0.2}, r"missing_rates\['fdg'\]=-0\.2: expected a probability in \[0, 1\]"),
                    ({'fdg': True}, r"missing_rates\['fdg'\]=True: expected a probability"), ({'fdg': float('nan')}, r"missing_rates\['fdg'\]=nan: expected a probability"),
                    ({**P.BrainPhantom.missing_rates, 'fgd': 0.5}, r"missing_rates has keys \['fgd'\] that are not record columns that may go missing; expected keys among \['education', 'apoe4'"),
                    ({'age': 0.1, 'stage': 0.1}, r"keys \['age', 'stage'\] that are not record columns"), ([0.5], r"missing_rates=\[0\.5\]: expected a dict")):
        sub = type('Sub', (P.BrainPhantom,), dict(missing_rates=mr))
        with pytest.raises(ValueError, match=msg): sub(16)
        b = P.BrainPhantom(16)
        with pytest.raises(ValueError, match=msg): b.missing_rates = mr
        assert 'missing_rates' not in vars(b) and b.missing_rates is P.BrainPhantom.missing_rates  # the refused value is not kept
    b = P.BrainPhantom(16)
    b.missing_rates = {'education': np.float32(0.5), 'fdg': 1, 'mmse': 0}  # any record column but age and sex, rates 0 and 1 included
    a = b.sample(40, seed=0).attrs
    assert a.fdg.isna().all() and a.mmse.notna().all() and 0 < a.education.isna().mean() < 1 and a.abeta.notna().all()
    d = P.BrainPhantom(16).sample(64, seed=0)  # the default rates give the draws they gave before the check
    assert d.attrs.isna().sum().to_dict() == {'sex': 0, 'age': 0, 'education': 0, 'apoe4': 1, 'stage': 0, 'abeta': 22, 'ptau': 22, 'tau': 22, 'av45': 40, 'fdg': 14, 'mmse': 2}
    assert np.isclose(d.attrs.fdg.sum(), 62.193771110086914) and np.isclose(d.attrs.abeta.sum(), 43113.72978068479)


# --- review (chest_facts): it read a no_finding column its docment did not list (a table of the five listed columns gave a bare KeyError 'no_finding')
def test_chest_facts_names_the_columns_a_table_lacks():
    df = pd.DataFrame(dict(effusion=[1, 0, 1, 0], devices=[1, 1, 0, 0], cardiomegaly=[0, 1, 0, 0], view=['AP', 'PA', 'AP', 'PA'], age_bin=['<=40', '41-60', '61-80', '>80']))
    with pytest.raises(ValueError, match=r"df lacks the columns \['no_finding'\]; expected one row per study with the columns \['effusion', 'devices', 'cardiomegaly', 'no_finding', 'view', 'age_bin'\]"):
        P.chest_facts(df)
    with pytest.raises(ValueError, match=r"df lacks the columns \['devices', 'view'\]"): P.chest_facts(df.drop(columns=['devices', 'view']).assign(no_finding=0))
    assert 'no_finding' in inspect.getsource(P.chest_facts).splitlines()[0]  # the df docment lists it
    f = P.chest_facts(df.assign(no_finding=[0, 0, 0, 1]))
    assert f['P(no finding)'] == 0.25 and f['P(devices | AP)'] == 0.5


# --- review (MS trial data): from_visits accepted a record lacking MS_TABULAR columns (trial_tensors refused it later: 'the baseline record lacks ...')
def test_from_visits_refuses_a_record_lacking_the_ms_tabular_columns():
    img, rec, t, y = _two_patients()
    grid = np.linspace(0, 2, 5)
    for drop in (['duration', 'edss0', 'relapses', 'lesion_vol'], ['arm'], ['sex']):
        with pytest.raises(ValueError, match=rf"record lacks the columns {re.escape(str(drop))}; expected one row per patient with the columns \['age', 'sex', 'duration', 'edss0', 'relapses', 'lesion_vol'\] \(sex 'M'/'F'\) and 'arm'.*map your cohort's own record onto these columns"):
            P.MSTrialData.from_visits(img, rec.drop(columns=drop), t, y, grid)
    assert P.MSTrialData.from_visits(img, rec[['arm'] + list(P.MS_TABULAR)].assign(site=1), t, y, grid).tabular().shape == (2, 6)  # any order, extra columns kept


# --- review (settings at class level): a subclass's class-level setting skipped the check an instance's gets (`class S(SkinPhantom): p_hair = 1.5` drew hair on every image; nb 00's exercise 2 sets settings on a subclass)
def test_a_subclass_class_level_setting_is_checked_at_construction_as_an_instance_one():
    for base, name, bad in ((P.SkinPhantom, 'p_hair', 1.5), (P.SkinPhantom, 'p_ruler', (0.1, 1.5)), (P.ChestPhantom, 'grain', 2.0), (P.BrainPhantom, 'dim', 5)):
        with pytest.raises(ValueError) as on_instance: setattr(base(16), name, bad)
        with pytest.raises(ValueError) as on_class: type('Sub', (base,), {name: bad})(16)
        assert str(on_class.value) == str(on_instance.value) and f'{name}=' in str(on_class.value)  # the instance's message
    with pytest.raises(ValueError, match=r'p_hair=1\.5: expected a probability in \[0, 1\]'): type('Deeper', (type('Ok', (P.SkinPhantom,), dict(p_hair=0.5)),), dict(p_hair=1.5))(16)  # a grandchild's too
    with pytest.raises(TypeError, match=r'Fn\.p_hair is a function .* that render_config cannot record'): type('Fn', (P.SkinPhantom,), dict(p_hair=lambda self: 0.5))(16)
    class Own(P.SkinPhantom):  # not settings of a parent: a new constant (not recordable), a property over a method, a method over a method
        lookup = {1: 'one'}
        observed = property(lambda self: [n for n, v in self.variables.items() if v.observed])
        def captions(self, attrs): return super().captions(attrs)
    assert Own(16).lookup == {1: 'one'}


def test_a_valid_class_level_setting_draws_as_the_same_value_set_on_an_instance():
    class Debiased(P.SkinPhantom): p_hair = 0.9; p_ruler = (0.2, 0.2)
    inst = P.SkinPhantom(32, seed=3); inst.p_hair = 0.9; inst.p_ruler = (0.2, 0.2)
    a, b = Debiased(32, seed=3).sample(6), inst.sample(6)
    assert torch.equal(a.images, b.images) and a.truth.equals(b.truth) and a.truth.hair.mean() > 0.5
    assert Debiased(32).render_config() == {'phantom': 'Debiased', 'size': 32}  # the class-level values are the class's defaults
    t = P.SkinPhantom(32).sample_truth(64, seed=0)  # the defaults draw what they drew before the check
    assert int(t.hair.sum()) == 13 and int(t.ruler.sum()) == 7


def test_a_class_level_value_the_constructor_replaces_is_refused():
    "`class C(ChestPhantom): grain = 0.1` built phantoms with grain 0.015: the constructor's argument replaced the class-level value without a word."
    from medcf.phantoms import ChestPhantom, BrainPhantom
    class C(ChestPhantom): grain = 0.1
    with pytest.raises(ValueError, match=r"C.grain = 0.1 in the class body is replaced by the constructor's grain=0.015; expected .*C\(..., grain=0.1\)"): C(32)
    assert C(32, grain=0.1).grain == 0.1  # the same value given to the constructor: nothing is lost
    class B(BrainPhantom): dim = 3
    with pytest.raises(ValueError, match=r"B.dim = 3 in the class body is replaced by the constructor's dim=2"): B(32)
    assert B(32, dim=3).dim == 3


def test_a_subclass_init_that_sets_a_setting_decides_for_itself():
    "Session 52's review of a9f3a31: the class-level check refused a subclass whose own __init__ sets an inherited setting (a BrainPhantom subclass's missing_rates, a SkinPhantom subclass's p_hair), named a constructor argument that does not exist, and crashed on a dict of arrays (a ChestPhantom subclass's fit)."
    from medcf.phantoms import ChestPhantom, BrainPhantom, SkinPhantom, fit_chest_model, chexpert_counts
    class B(BrainPhantom):
        def __init__(self, size=32, rates=None): self.missing_rates = rates or dict(apoe4=0.1); super().__init__(size)
    assert B(32).missing_rates == dict(apoe4=0.1)
    class S(SkinPhantom):
        p_hair = 0.5
        def __init__(self, size=32, p_hair=None):
            super().__init__(size)
            if p_hair is not None: self.p_hair = p_hair
    assert S(32).p_hair == 0.5 and S(32, p_hair=0.1).p_hair == 0.1
    class D(ChestPhantom):  # its own __init__ never mentions grain: the chest's constructor still replaces the class-level value unseen
        grain = 0.1
        def __init__(self, size=32): super().__init__(size)
    with pytest.raises(ValueError, match=r"D.grain = 0.1 in the class body is replaced by the constructor's grain=0.015; expected it set on the instance after the constructor"): D(32)
    class F(ChestPhantom): fit = fit_chest_model(chexpert_counts(), iters=5)
    with pytest.raises(ValueError, match=r"F.fit = .* in the class body is replaced by the constructor's fit=.*expected it set on the instance after the constructor: `self.fit = ...`"): F(32)
    f = ChestPhantom(32); f.fit = F.fit  # the route the message gives
    assert f.fit is F.fit


def test_fit_chest_model_refuses_an_iteration_count_that_is_not_a_positive_integer():
    "iters was never checked: 0 or -5 ended in UnboundLocalError 'pk', '200' and 2.5 in a bare range() TypeError, True ran one iteration."
    c = P.chexpert_counts()
    for bad in (0, -5, '200', 2.5, True, None):
        with pytest.raises(ValueError, match=rf"iters={re.escape(repr(bad))}: expected a positive integer \(EM iterations\)"): P.fit_chest_model(c, iters=bad)
    assert np.isfinite(P.fit_chest_model(c, iters=np.int64(1))['loglik'])  # a numpy integer still counts


def test_grid_index_refuses_a_tolerance_that_is_not_a_finite_number_at_least_zero():
    "tol was never checked: nan was reported as a fault of t ('t=1.0 is outside the trial'), -1 was replaced without a word, and inf snapped 1.03 to grid time 1.0, which the docstring says never happens."
    g = np.linspace(0, 2, 25)
    for bad in (float('nan'), -1, float('inf'), '1e-6', None, True):
        with pytest.raises(ValueError, match=rf"tol={re.escape(repr(bad))}: expected a finite tolerance >= 0 in years"): P.grid_index(g, 1.0, tol=bad)
    assert P.grid_index(g, 1.0, tol=0) == 12 and P.grid_index(g, 1.0, tol=np.float32(1e-6)) == 12 and P.grid_index(g, tol=0.5) == 24  # 0 is exact (the float grid's rounding still allowed)
    with pytest.raises(ValueError, match='lies between the trial'): P.grid_index(g, 1.03, tol=0.01)  # a finite tolerance still refuses a time between grid points


def test_row_index_refuses_none_and_an_index_of_more_than_one_dimension():
    "None (numpy's newaxis) gave 2-d positions [[0 1 2 3]], and batch[None] or batch[np.array([[0, 1]])] failed deep in pandas ('Buffer has wrong number of dimensions')."
    with pytest.raises(TypeError, match=r"\[None\]: None is not an index .*expected an integer, slice, range, list/tuple/array of integers or a boolean mask"): P.row_index(None, 4)
    for two_d in (np.array([[0, 1]]), [[0, 1]], torch.tensor([[0], [1]]), np.ones((2, 2), bool)):
        with pytest.raises(ValueError, match=r"an index of shape \(\d, \d\) selects rows in 2 dimensions; a batch's rows are 1-d: expected an integer"): P.row_index(two_d, 4)
    b = P.ChestPhantom(size=16).sample(4, seed=0)
    with pytest.raises(TypeError, match=r"\[None\]: None is not an index"): b[None]
    with pytest.raises(ValueError, match=r"an index of shape \(1, 2\)"): b[np.array([[0, 1]])]
    assert P.row_index([2, 0], 4).tolist() == [2, 0] and len(b[np.array([True, False, True, False])]) == 2 and len(b[()]) == 0  # 1-d indexes as before


def test_dict_and_array_settings_are_read_only():
    "Session 52: an edit in place of one phantom's dict or array setting (chest.fit, the lru-cached CheXpert fit; BrainPhantom.missing_rates and SkinPhantom.p_signs, class defaults) changed every phantom's draws, earlier ones and PhantomDataset's cached copies included, while render_config kept reporting the default."
    import copy, pickle
    base = P.ChestPhantom(32, seed=0); before = base.sample_truth(2000, seed=1)
    other = P.ChestPhantom(32, seed=0)
    with pytest.raises(TypeError, match=r"dict and array settings are read-only: .*assign a new value instead"): other.fit['p_effusion'] = other.fit['p_effusion'] * 2
    with pytest.raises(ValueError, match='read-only'): other.fit['p_effusion'][0] = 1.0
    b = P.BrainPhantom(32)
    for edit in (lambda: b.missing_rates.__setitem__('abeta', 0.9), lambda: P.BrainPhantom.missing_rates.update(abeta=0.9), lambda: P.SkinPhantom(32).p_signs.pop('border')):
        with pytest.raises(TypeError, match='read-only'): edit()
    assert P.BrainPhantom.missing_rates['abeta'] == 0.35 and P.SkinPhantom.p_signs['border'] == (0.12, 0.80)
    assert base.sample_truth(2000, seed=1).equals(before)  # nothing reached the first phantom
    other.fit = {**other.fit, 'p_effusion': np.clip(other.fit['p_effusion'] * 2, 0, 1)}  # the route the message gives: drawn with and recorded
    assert other.sample_truth(2000, seed=1).effusion.mean() > before.effusion.mean() + 0.2 and 'fit' in other.render_config() and 'fit' not in base.render_config()
    mine = {'abeta': 0.5}; b.missing_rates = mine; mine['abeta'] = 0.1  # the caller's own dict stays the caller's
    assert b.missing_rates['abeta'] == 0.5 and mine['abeta'] == 0.1
    for c in (pickle.loads(pickle.dumps(other)), copy.deepcopy(other), copy.copy(other)):  # copies come back read-only and draw the same
        with pytest.raises(ValueError, match='read-only'): c.fit['p_effusion'][0] = 1.0
        assert c.render_config() == other.render_config()
    class Mine(P.SkinPhantom): p_signs = {'asymmetry': (0.2, 0.8), 'border': (0.2, 0.8), 'variegation': (0.2, 0.8)}
    with pytest.raises(TypeError, match='read-only'): Mine.p_signs['border'] = (0.9, 0.9)
    assert dict(Mine(32).p_signs) == {'asymmetry': (0.2, 0.8), 'border': (0.2, 0.8), 'variegation': (0.2, 0.8)}


def test_chest_facts_refuses_values_it_cannot_count():
    "Session 52: uncertain labels left as -1 gave P(effusion) = -0.25, a stray 2 a rate above the truth, an 'LL' view was counted overall but in neither view rate, and age bins from pd.cut made every age rate NaN, all without a word (the docstring and the missing-column message promised 0/1, 'AP'/'PA' and the phantom's bins)."
    ok = pd.DataFrame(dict(effusion=[1, 0, 0, 0], devices=[1, 0, 1, 0], cardiomegaly=[0, 0, 1, 1], no_finding=[0, 1, 0, 0], view=['AP', 'PA', 'AP', 'PA'], age_bin=['41-60'] * 4))
    assert P.chest_facts(ok)['P(effusion)'] == 0.25 and P.chest_facts(ok.astype({'effusion': bool}))['P(effusion)'] == 0.25
    for col, vals, msg in (('effusion', [1, -1, -1, 0], r"df's effusion holds \[-1\] \(rows \[1, 2\]\); expected 0 or 1 \(resolve CheXpert's uncertain -1 and blanks first: medcf.data.apply_policy\)"),
                           ('devices', [1, 2, 0, np.nan], r"df's devices holds \[2.0, nan\] \(rows \[1, 3\]\)"),
                           ('view', ['AP', 'LL', 'AP', 'ap'], r"df's view holds \['LL', 'ap'\] \(rows \[1, 3\]\); expected 'AP' or 'PA'"),
                           ('age_bin', pd.cut([50, 55, 45, 59], [0, 40, 60, 80, 200]), r"df's age_bin holds \[Interval\(40, 60, closed='right'\)\] \(rows \[0, 1, 2\]\); expected one of '<=40'")):
        with pytest.raises(ValueError, match=msg): P.chest_facts(ok.assign(**{col: vals}))


def test_a_class_level_setting_keeps_its_class_body_value():
    "Session 52 (nb 00 exercise 2 typed as it read): SkinPhantom.p_ruler = (0.2, 0.2) changed every skin phantom made later while render_config, which compares with the class's value, recorded nothing; a null 'true counterfactual' of a batch drawn before changed the ruler on 12% of images."
    for cls, name, value in ((P.SkinPhantom, 'p_ruler', (0.2, 0.2)), (P.BrainPhantom, 'ventricle_sex_offset', 1.0), (P.ChestPhantom, 'channels', 3), (P.SkinPhantom, 'p_signs', {})):
        before = getattr(cls, name)
        with pytest.raises(TypeError, match=rf"{cls.__name__}\.{name} = .* would change the default of every {cls.__name__} made from now on.*expected a subclass \(class Fair\({cls.__name__}\): {name} = \.\.\.\) or a value set on one phantom"):
            setattr(cls, name, value)
        assert getattr(cls, name) is before
    class Fair(P.SkinPhantom): p_ruler = (0.2, 0.2)  # the routes the message gives
    skin = P.SkinPhantom(32); skin.p_ruler = (0.2, 0.2)
    assert Fair(32).p_ruler == skin.p_ruler == (0.2, 0.2) and P.SkinPhantom.p_ruler == (0.08, 0.35)
    P.SkinPhantom._scratch = 1; del P.SkinPhantom._scratch  # private state and new names are the class's own business


def test_a_subclass_init_that_only_reads_a_setting_does_not_decide_for_it():
    "Session 52's review of 07873df: any mention of the name in the subclass's __init__ counted, so one that only read self.grain let a class-level grain = 0.1 be replaced by 0.015 unseen; a keyword passed on (grain=g) still decides."
    class G(P.ChestPhantom):
        grain = 0.1
        def __init__(self, size=32, seed=0): super().__init__(size, seed); self._note = self.grain
    with pytest.raises(ValueError, match=r"G.grain = 0.1 in the class body is replaced by the constructor's grain=0.015"): G(32)
    class E2(P.ChestPhantom):
        grain = 0.02
        def __init__(self, size=32, g=0.05): super().__init__(size, grain=g)
    assert E2(32).grain == 0.05
