"""Tests for medcf.zoo from three mutation-testing passes: session 36's over its pure functions (captions, snapshot and guidance
choice rules, decoder rounds, card updates, the age-bin ceiling, resampling; Z-numbers are that helper's mutant ids) and
session 38's over the training wiring and the evaluation functions (ids 38-Z for lines 1-375, 38-M for the rest; the training
stages are stubbed, generation runs on the tiny pipeline of conftest's `pipe`), with session 43's over the evaluation paths'
wiring (which set, seed, scale and interval each card figure is computed from; their collaborators stubbed). Each test pins a
behaviour no other test pinned. What needs a trained model and many samples is measured in nbs/90_model_zoo.ipynb."""
import copy, json, math, os, types, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from medcf import zoo
from medcf import diffusion as D
from medcf.oracles import AttrSpec
from medcf.phantoms import ChestPhantom

torch.set_num_threads(1)


# Z3: zoo_phantom passes its seed to the phantom (a mutant used seed=0 whatever was asked)
def test_zoo_phantom_passes_its_seed():
    ph = zoo.zoo_phantom('chest', seed=3)
    assert ph.seed == 3 and ph.size == zoo.RECIPES['chest']['size']
    a, b = ph.sample(2).images, ChestPhantom(size=64, seed=3).sample(2).images  # the unseeded stream is the constructor's
    assert torch.equal(a, b)


# Z4: paper_prompts names the wrong type of attrs (a mutant failed with an AttributeError on .columns)
def test_paper_prompts_refuses_attrs_that_are_not_a_dataframe():
    with pytest.raises(TypeError, match='attrs is a dict; expected'): zoo.paper_prompts('chest', {'effusion': [0]})


# Z7, Z8, Z11: the caption share is a probability in [0, 1]; 0 gives only the phantom's captions, 1 only the paper-style ones
def test_training_captions_share_ends_and_refusals():
    b = zoo.zoo_phantom('chest').sample(6, seed=1)
    assert zoo.training_captions('chest', b, share=0.0) == list(b.prompts)
    assert zoo.training_captions('chest', b, share=1.0) == zoo.paper_prompts('chest', b.attrs)
    assert zoo.caption_mix('chest', b.attrs, share=1.0) == zoo.paper_prompts('chest', b.attrs)
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError, match=r'expected a probability in \[0, 1\]'): zoo.training_captions('chest', b, share=bad)


# Z10: the style draw is the documented stream: paper style where default_rng([seed, CAPTION_STREAM]).random(n) < share
# (the shipped checkpoints were trained on the captions this draw gives; another draw with the same share changes which images)
def test_caption_style_draw_is_the_documented_stream():
    b = zoo.zoo_phantom('skin').sample(40, seed=2)
    u = np.random.default_rng([5, zoo.CAPTION_STREAM]).random(40)
    paper = zoo.paper_prompts('skin', b.attrs)
    want = [p if x < 0.3 else q for x, p, q in zip(u, paper, b.prompts)]
    assert zoo.training_captions('skin', b, share=0.3, seed=5) == want


# Z20, Z21: hardware() names the CPU model from /proc/cpuinfo and the threads torch uses (not the logical CPUs twice)
def test_zoo_hardware_line():
    h = zoo.hardware()
    assert f"{os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()};" in h
    if os.path.exists('/proc/cpuinfo'):
        with open('/proc/cpuinfo', encoding='utf-8') as f: names = [l.split(':', 1)[1].strip() for l in f if l.startswith('model name')]
        if names: assert h.startswith(names[0] + ';')


def test_hardware_names_apple_mps(monkeypatch):
    "On Apple silicon (device='mps') a card says so, not 'no GPU' (faked here: this machine has no MPS)."
    if torch.cuda.is_available(): pytest.skip('a CUDA machine names its GPU first')
    assert zoo.hardware().endswith('; no GPU') or torch.backends.mps.is_available()
    monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: True)
    assert zoo.hardware().endswith('; Apple MPS')


def _fake_pipe():
    "select_snapshot reads only pipe.unet's parameters (validation_fd is stubbed below)."
    torch.manual_seed(0)
    return types.SimpleNamespace(unet=torch.nn.Linear(3, 2))


def _snaps(net, *steps):
    return {s: [p.detach().clone() + k + 1 for p in net.parameters()] for k, s in enumerate(steps)}


# Z27: the chosen snapshot is loaded into the UNet even when it is not the last candidate scored
def test_select_snapshot_loads_the_best_not_the_last(monkeypatch):
    p = _fake_pipe(); snaps = _snaps(p.unet, 400, 800)
    scores = iter([1.0, 2.0, 3.0])  # 400, 800, final
    monkeypatch.setattr(zoo, 'validation_fd', lambda *a, **k: next(scores))
    rows = zoo.select_snapshot('chest', p, snaps)
    assert [r['step'] for r in rows] == [400, 800, 'final'] and [r['chosen'] for r in rows] == [True, False, False]
    assert all(torch.equal(a, b) for a, b in zip(p.unet.parameters(), snaps[400]))


# Z25, Z26: an exact tie goes to the latest snapshot, and 'final' is later than every snapshot
def test_select_snapshot_tie_goes_to_the_latest(monkeypatch):
    p = _fake_pipe(); snaps = _snaps(p.unet, 400, 800); final = [q.detach().clone() for q in p.unet.parameters()]
    scores = iter([1.0, 1.0, 2.0])
    monkeypatch.setattr(zoo, 'validation_fd', lambda *a, **k: next(scores))
    with pytest.warns(UserWarning, match='2 candidates tie.*the latest snapshot'): rows = zoo.select_snapshot('chest', p, snaps)
    assert [r['chosen'] for r in rows] == [False, True, False]
    p = _fake_pipe(); final = [q.detach().clone() for q in p.unet.parameters()]
    scores = iter([1.0, 2.0, 1.0])
    monkeypatch.setattr(zoo, 'validation_fd', lambda *a, **k: next(scores))
    with pytest.warns(UserWarning, match='the latest snapshot'): rows = zoo.select_snapshot('chest', p, _snaps(p.unet, 400, 800))
    assert [r['step'] for r in rows if r['chosen']] == ['final'] and all(torch.equal(a, b) for a, b in zip(p.unet.parameters(), final))


# Z29: scores are compared unrounded: 1.2341 beats 1.2344 although both round to 1.234 (no tie, no warning)
def test_select_snapshot_compares_unrounded_whatever_the_order(monkeypatch):
    p = _fake_pipe(); snaps = _snaps(p.unet, 400, 800)
    scores = iter([1.2341, 1.2344, 5.0])
    monkeypatch.setattr(zoo, 'validation_fd', lambda *a, **k: next(scores))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        rows = zoo.select_snapshot('chest', p, snaps)
    assert [r['chosen'] for r in rows] == [True, False, False]


# Z30, Z32: a tie on FD and on adherence goes to the first listed setting, and the warning says so
def test_select_guidance_full_tie_goes_to_the_first_listed(monkeypatch):
    rows = [(2.0, None, {'adherence_x': 0.95}, 1.1), (3.0, None, {'adherence_x': 0.95}, 1.1), (5.0, None, {'adherence_x': 0.95}, 1.1)]
    monkeypatch.setattr(zoo, '_per_scale', lambda *a, **k: rows)
    with pytest.warns(UserWarning, match='3 candidates tie.*the first listed'): sel = zoo.select_guidance('chest', None, (2.0, 3.0, 5.0))
    assert [r['chosen'] for r in sel] == [True, False, False]


# Z35, Z36: a setting meets min_adherence when its WEAKEST attribute reaches it (reaching it exactly counts)
def test_select_guidance_min_adherence_reads_the_weakest_attribute(monkeypatch):
    rows = [(2.0, None, {'adherence_a': 0.99, 'adherence_b': 0.5}, 1.0), (3.0, None, {'adherence_a': 0.9, 'adherence_b': 0.95}, 1.2)]
    monkeypatch.setattr(zoo, '_per_scale', lambda *a, **k: rows)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        sel = zoo.select_guidance('chest', None, (2.0, 3.0), min_adherence=0.9)
    assert [r['meets_min_adherence'] for r in sel] == [False, True] and [r['chosen'] for r in sel] == [False, True]


# Z42: a bool inside a list of decoder rounds is refused as a bool alone is (a mutant read True as one step)
def test_decoder_rounds_refuse_bools_in_a_list():
    for bad in (True, [True], (2000, False)):
        with pytest.raises(ValueError, match='vae_decoder_steps='): zoo.decoder_rounds(bad)
    assert zoo.decoder_rounds([np.int64(3), 0]) == [3]


# Z45: an autoencoder history written by a vae_from run records no recipe by design: no 'older medcf' warning for it
def test_check_vae_stage_is_quiet_for_a_vae_from_history(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        zoo._check_vae_stage(tmp_path, {'loss': [], 'seconds': 0.0, 'vae_from': 'some/vae'}, {'model': 'chest'})
    with pytest.warns(UserWarning, match='records no recipe'): zoo._check_vae_stage(tmp_path, {'loss': []}, {'model': 'chest'})


# Z47: a recorded recipe that lacks a field this medcf records is reused with a warning naming the field (a mutant was silent)
def test_check_vae_stage_names_fields_the_old_recipe_never_recorded(tmp_path):
    with pytest.warns(UserWarning, match=r"written before medcf recorded \['vae_new_field'\]"):
        zoo._check_vae_stage(tmp_path, {'recipe': {'model': 'chest'}}, {'model': 'chest', 'vae_new_field': 1})
    with pytest.raises(ValueError, match='another recipe: model'):
        zoo._check_vae_stage(tmp_path, {'recipe': {'model': 'chest'}}, {'model': 'skin'})


# Z49, Z51, Z52: skin adherence prompts ask each finding with probability 1/2, drawn from `seed`; an unknown model is refused
def test_adherence_prompts_skin_is_seeded_and_balanced():
    p1, a1 = zoo.adherence_prompts('skin', 2000, seed=1)
    p2, a2 = zoo.adherence_prompts('skin', 2000, seed=2)
    assert list(a1.columns) == ['melanoma', 'hair', 'ruler', 'ink', 'bubbles', 'dark_corners'] and set(np.unique(a1.to_numpy())) == {0, 1}
    assert a1.equals(zoo.adherence_prompts('skin', 2000, seed=1)[1]) and not a1.equals(a2) and p1 != p2
    assert ((a1.mean() > 0.45) & (a1.mean() < 0.55)).all(), a1.mean()  # p = 1/2: sd of a mean over 2000 is 0.011
    with pytest.raises(ValueError, match='known: chest, skin'): zoo.adherence_prompts('brain', 4)


# Z53, Z54: attribute_adherence's per-value rows come in sorted order; mixed types sort by their str()
def test_sorted_values():
    assert zoo._sorted({10, 2, 33}) == [2, 10, 33]  # a set of these iterates 33, 10, 2
    assert zoo._sorted({1, 'a'}) == [1, 'a']  # '1' < 'a' (repr would put "'a'" first)


# Z65: update_card rewrites README.md from the updated card (under a mutant the README kept the old figures)
def test_update_card_rewrites_the_readme(tmp_path):
    from medcf.diffusion import CARD, model_card_markdown
    (tmp_path / CARD).write_text('{"name": "t"}')  # a card written by hand: update_card reads it as load_pipeline does
    card = zoo.update_card(tmp_path, quality={'fd_ratio': 1.5})
    assert card == {'name': 't', 'quality': {'fd_ratio': 1.5}}
    assert (tmp_path / 'README.md').read_text() == model_card_markdown(card)


# Z72: age_bin_ceiling has one row per version BUT 'real' (the real set compared with itself is no figure)
def test_age_bin_ceiling_leaves_out_real():
    real = pd.DataFrame(dict(age=[30., 50.], age_bin=['18-40', '40-60']))
    c = zoo.age_bin_ceiling({'real': real, 'a': real.assign(age=[31., 50.]), 'b': real.assign(age_bin=['18-40', '18-40'])})
    assert list(c.index) == ['a', 'b'] and c.loc['a'].tolist() == [1.0, 0.5] and c.loc['b'].tolist() == [0.5, 0.0]


# Z79: resample_like draws at random within a bin (a mutant took the bin's first pool index every time)
def test_resample_like_draws_at_random_within_a_bin():
    idx = zoo.resample_like([1.0, 2.0, 3.0, 4.0], [2.5] * 200, width=5.0, seed=0)  # one bin holds the whole pool
    assert sorted(set(idx.tolist())) == [0, 1, 2, 3]  # each index missed by 200 uniform draws with probability (3/4)**200


# ---- session 38: the recipes and training helpers (lines 1-375) ----

# 38-Z5: a column with ONE missing value is refused, not only an all-missing one (the docstring: "the phantom's value for every image")
def test_paper_prompts_refuses_a_single_missing_value():
    a = zoo.zoo_phantom('chest').sample(4, seed=0).attrs
    a.loc[a.index[1], 'effusion'] = np.nan
    with pytest.raises(ValueError, match=r"attrs\[\['effusion'\]\] hold missing values"): zoo.paper_prompts('chest', a)


# 38-Z4: the skin captions read 'melanoma' too: attrs without it are refused by name
def test_paper_prompts_skin_needs_melanoma():
    a = zoo.zoo_phantom('skin').sample(2, seed=0).attrs
    with pytest.raises(ValueError, match=r"attrs lacks \['melanoma'\]"): zoo.paper_prompts('skin', a.drop(columns='melanoma'))


# 38-Z13: an attribute that holds a value other than 0/1 anywhere is refused (not only one with no 0/1 at all)
def test_oversample_weights_refuses_a_partly_non_binary_attribute():
    attrs = pd.DataFrame(dict(ink=[0, 1, 2, 1]))
    with pytest.raises(ValueError, match='0/1 attribute'): zoo.oversample_weights(attrs, {'ink': 2})


def _stub_validation(monkeypatch):
    "validation_fd's collaborators, recording what they are asked: the phantom's draws, captions, generation, the FDs."
    seen = dict(phantoms=[], samples=[], captions=[], generate=[], fd=[])
    class Ph:
        def sample(self, n, seed):
            seen['samples'].append(seed)
            return types.SimpleNamespace(images=torch.full((n, 1, 2, 2), float(seed)))
    monkeypatch.setattr(zoo, 'zoo_phantom', lambda name, seed=0, **kw: seen['phantoms'].append((name, seed)) or Ph())
    def caps(name, b, share, seed):
        seen['captions'].append((float(b.images[0, 0, 0, 0]), share, seed)); return ['c'] * len(b.images)
    monkeypatch.setattr(zoo, 'training_captions', caps)
    def gen(pipe, caps, steps, w, seed, guidance_interval=None):
        seen['generate'].append((steps, w, seed, guidance_interval)); return torch.full((len(caps), 1, 2, 2), -1.0)
    monkeypatch.setattr(zoo, 'generate', gen)
    fds = iter([2.0, 3.0])  # the real-vs-real floor first, then generated vs real
    import medcf.metrics
    def fd(features, a, b):
        seen['fd'].append((float(a[0, 0, 0, 0]), float(b[0, 0, 0, 0]))); return next(fds)
    monkeypatch.setattr(medcf.metrics, 'oracle_frechet_distance', fd)
    return seen


# 38-Z15, 38-Z16, 38-Z17, 38-Z18, 38-Z19: validation_fd is FD(generated, real a) / FD(real a, real b) on the VALIDATION sets (never the card's
# 10_000 / 20_000), the captions of real set b drawn at `seed` with the recipe's share, the images generated at seed + 1
def test_validation_fd_is_the_ratio_on_the_validation_sets(monkeypatch):
    seen = _stub_validation(monkeypatch)
    r = zoo.validation_fd('chest', object(), types.SimpleNamespace(features=None), n=3, num_inference_steps=4, guidance_scale=2.5, seed=5,
                          guidance_interval=(0, 600))
    assert r == 3.0 / 2.0
    a, b = zoo.VALIDATION_SEEDS
    assert seen['samples'] == [a, b] and not {a, b} & {10_000, 20_000}  # the card's figures use 10_000 and 20_000
    assert seen['fd'] == [(a, b), (a, -1.0)]
    assert seen['captions'] == [(b, zoo.RECIPES['chest']['prism_share'], 5)] and seen['generate'] == [(4, 2.5, 6, (0, 600))]


# 38-Z20: a snapshot with fewer tensors than the UNet is refused (zip would have loaded a prefix of it)
def test_select_snapshot_refuses_a_snapshot_missing_a_tensor(monkeypatch):
    p = _fake_pipe(); ps = [q.detach().clone() for q in p.unet.parameters()]
    monkeypatch.setattr(zoo, 'validation_fd', lambda *a, **k: pytest.fail('scored a snapshot that does not match the UNet'))
    with pytest.raises(ValueError, match='snapshot of step 4 does not match'): zoo.select_snapshot('chest', p, {4: ps[:1]})


# 38-Z21: 'final' is left out only when a snapshot equals the final weights in EVERY tensor (sharing one is not the same weights)
def test_select_snapshot_keeps_final_unless_a_snapshot_is_all_of_it(monkeypatch):
    p = _fake_pipe(); w, b = [q.detach().clone() for q in p.unet.parameters()]
    scores = iter([2.0, 1.0])
    monkeypatch.setattr(zoo, 'validation_fd', lambda *a, **k: next(scores))
    rows = zoo.select_snapshot('chest', p, {4: [w, b + 1]})  # the weight matrix is the final one, the bias is not
    assert [r['step'] for r in rows] == [4, 'final'] and [r['chosen'] for r in rows] == [False, True]
    assert torch.equal(p.unet.bias, b)


# 38-Z28: guidance scale 1 is accepted ("1 means no guidance"); only scales under 1 are refused
def test_per_scale_accepts_scale_one(monkeypatch):
    monkeypatch.setattr(zoo, '_held_out', lambda name, pipe, oracle, n, seed, seeds: (pipe, oracle, 'a', 'b', 2.0))
    monkeypatch.setattr(zoo, 'prompt_adherence', lambda *a: {'x': 1.0})
    monkeypatch.setattr(zoo, '_generated_fd', lambda *a: 3.0)
    assert zoo._per_scale('chest', None, None, (1.0,), 2, 1, 0, (1, 2), 0) == [(1.0, None, {'adherence_x': 1.0}, 1.5)]
    with pytest.raises(ValueError, match='guidance scales >= 1'): zoo._per_scale('chest', None, None, (0.99,), 2, 1, 0, (1, 2), 0)


# 38-Z29: select_guidance records the FD ratio rounded to 3 decimals, as select_snapshot does (compared unrounded)
def test_select_guidance_records_fd_to_three_decimals(monkeypatch):
    monkeypatch.setattr(zoo, '_per_scale', lambda *a, **k: [(2.0, None, {'adherence_x': 0.95}, 1.23456), (3.0, None, {'adherence_x': 0.95}, 1.5)])
    rows = zoo.select_guidance('chest', None, (2.0, 3.0))
    assert [r['validation_fd_ratio'] for r in rows] == [1.235, 1.5]


# 38-Z34: vae_from must match the recipe's whole shape: channels, latent channels AND block widths
def test_vae_for_recipe_refuses_other_block_widths(tmp_path):
    from diffusers import AutoencoderKL
    r = zoo.RECIPES['chest']
    AutoencoderKL(in_channels=r['channels'], out_channels=r['channels'], latent_channels=r['latent_channels'], block_out_channels=(32, 64),
                  down_block_types=('DownEncoderBlock2D',) * 2, up_block_types=('UpDecoderBlock2D',) * 2).save_pretrained(tmp_path / 'v')
    with pytest.raises(ValueError, match=r"block_out_channels': \[32, 64\]"): zoo.vae_for_recipe(r, tmp_path / 'v')


# 38-Z38, 38-Z39: the autoencoder stage is the data (channels, size, n_images, data_seed), the latent channels and EVERY vae_* field;
# so a resume with another data_seed or another vae_* field is refused
def test_vae_stage_holds_the_data_and_every_vae_field(tmp_path):
    r = zoo.RECIPES['skin']
    s = zoo._vae_stage('skin', r)
    want = {'model', 'channels', 'size', 'n_images', 'data_seed', 'latent_channels'} | {k for k in r if k.startswith('vae_')}
    assert set(s) == want and s['model'] == 'skin' and s['vae_blocks'] == [32, 64, 64] and s['vae_decoder_steps'] == [2000, 2000]
    for k, v in (('data_seed', 1), ('vae_oversample', {}), ('vae_crop', 16)):
        with pytest.raises(ValueError, match=f'another recipe: {k}'): zoo._check_vae_stage(tmp_path, {'recipe': s}, zoo._vae_stage('skin', dict(r, **{k: v})))


# 38-Z41, 38-Z42: select_every is a number of steps in [1, unet_steps]: unet_steps itself passes that check, -1 does not
def test_select_every_bounds(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, 'zoo_phantom', lambda *a, **k: pytest.fail('rendered data: the refusal came too late'))
    with pytest.raises(ValueError, match='select_every=-1'): zoo.train_zoo_model('chest', tmp_path / 'o', unet_steps=3, select_every=-1)
    with pytest.raises(ValueError, match='inside out_dir'):  # past the select_every check, to the next refusal (no training)
        zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=tmp_path / 'out' / 'w', unet_steps=3, select_every=3)


# session 48: the phantom, size and channels are the recipe's (data, oracles and evaluation are made for them); an override
# of one failed after rendering ('images are 64x64; this model expects 32x32'), now before
def test_train_zoo_model_refuses_another_size_before_rendering(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, 'zoo_phantom', lambda *a, **k: pytest.fail('rendered data: the refusal came too late'))
    for bad in (dict(size=32), dict(channels=3), dict(phantom='SkinPhantom')):
        with pytest.raises(ValueError, match=r"the chest recipe's phantom, size and channels are fixed \(ChestPhantom, 64 px, 1 channel"):
            zoo.train_zoo_model('chest', tmp_path / 'o', **bad)
    with pytest.raises(ValueError, match='inside out_dir'):  # the recipe's own value is no override: on to the next refusal
        zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=tmp_path / 'out' / 'w', size=64, channels=1)


# 38-Z43: the default work folder is out_dir/../_train_<name> (a resumable run finds it there); shown by a refusal on a history written by hand
def test_default_work_folder_is_beside_out_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, 'zoo_phantom', lambda *a, **k: pytest.fail('rendered data: the work folder was not the default one'))
    work = tmp_path / '_train_chest'; (work / 'vae').mkdir(parents=True); (work / 'vae' / 'config.json').write_text('{}')
    (work / 'vae_history.json').write_text(json.dumps({'loss': [], 'seconds': 0.0, 'recipe': dict(zoo._vae_stage('chest', zoo.RECIPES['chest']), vae_steps=1)}))
    with pytest.raises(ValueError, match=r"work_dir='.*_train_chest' holds an autoencoder trained by another recipe: vae_steps=3000 \(saved with 1\)"):
        zoo.train_zoo_model('chest', tmp_path / 'out')


# 38-Z2, 38-Z44, 38-Z45, 38-Z46, 38-Z47, 38-Z49: one run with its training stages stubbed: the recipe table is left alone, the data cache is named by
# name/size/n/seed, captions are drawn at data_seed, the VAE gets vae_oversample's weights and the UNet oversample's, each decoder round its
# own seed (data_seed + 1 + k), and the card's VAE loss is the mean over all VAE rounds' losses
def test_train_zoo_model_wiring_with_stubbed_stages(tmp_path, monkeypatch):
    before = copy.deepcopy(zoo.RECIPES)
    vae_calls, unet_calls = [], []
    def train_vae(pipe, images, steps, batch, lr, **kw):
        vae_calls.append(dict(kw, steps=steps, lr=lr, n=len(images))); return dict(loss=[float(steps)], seconds=1.0)
    def finetune(pipe, data, steps, batch, lr, *a, **kw):
        unet_calls.append(dict(kw, steps=steps, captions=list(data[1]))); return dict(loss=[0.5], start=0, snapshots={})
    monkeypatch.setattr(zoo, 'train_vae', train_vae); monkeypatch.setattr(zoo, 'finetune', finetune)
    card = zoo.train_zoo_model('skin', tmp_path / 'out', work_dir=tmp_path / 'w', progress=False, n_images=8, data_seed=3,
                               vae_steps=7, vae_decoder_steps=(3, 0, 5), unet_steps=2, select_every=None)
    assert zoo.RECIPES == before  # overrides change this run's recipe, never the table
    assert (tmp_path / 'w' / 'images_skin_64px_8_3.pt').exists()
    b = zoo.zoo_phantom('skin', 3).sample(8, seed=3)
    assert [(c['steps'], c.get('decoder_only', False), c['seed']) for c in vae_calls] == [(7, False, 3), (3, True, 4), (5, True, 5)]
    ink = b.attrs['ink'].to_numpy()
    for c in vae_calls: assert c['weights'].tolist() == np.where(ink == 1, 4.0, 1.0).tolist()
    w = np.ones(8)
    for k, f in {'ink': 4, 'hair': 2, 'ruler': 2, 'bubbles': 2, 'dark_corners': 2}.items(): w = w * np.where(b.attrs[k].to_numpy() == 1, f, 1)
    assert unet_calls[0]['weights'].tolist() == w.tolist()
    u = np.random.default_rng([3, zoo.CAPTION_STREAM]).random(8) < 0.5
    paper = zoo.paper_prompts('skin', b.attrs)
    assert unet_calls[0]['captions'] == [p if k else q for k, p, q in zip(u, paper, b.prompts)]
    assert card['vae_final_loss'] == pytest.approx((7 + 3 + 5) / 3) and card['recipe']['vae_decoder_steps'] == [3, 0, 5]


# session 48: the training images' cache in work_dir is read as tensors and text only (weights_only), and only when it was
# rendered by the recipe's phantom from the rows it redraws; anything else is rendered again with a warning, never run
def _touch(path):  # what a pickled object in a cache file could make torch.load(weights_only=False) do
    open(path, 'w').close()
    return 'ran'

class _Payload:
    def __init__(self, path): self.path = path
    def __reduce__(self): return (_touch, (self.path,))

SMALL = dict(zoo.RECIPES['skin'], n_images=6, data_seed=3)

def test_training_data_renders_once_then_rereads(tmp_path, monkeypatch):
    images, attrs = zoo.training_data('skin', SMALL, str(tmp_path / 'new'))  # a folder named as text, made when missing
    b = zoo.zoo_phantom('skin', 3).sample(6, seed=3)
    assert torch.equal(images, b.images) and attrs.equals(b.attrs)
    assert zoo.caption_mix('skin', attrs, 0.5, 3) == zoo.training_captions('skin', b, 0.5, 3)  # the captions train_zoo_model gives the UNet
    monkeypatch.setattr(type(zoo.zoo_phantom('skin')), 'sample', lambda *a, **k: pytest.fail('rendered again: the cache was not reused'))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        again, attrs2 = zoo.training_data('skin', SMALL, tmp_path / 'new')
    assert torch.equal(again, images) and attrs2.equals(attrs)

def test_training_data_names_a_recipe_it_cannot_use(tmp_path):
    with pytest.raises(ValueError, match=r"r lacks \['n_images'\]; expected the run's recipe"):
        zoo.training_data('skin', {k: v for k, v in SMALL.items() if k != 'n_images'}, tmp_path)
    with pytest.raises(ValueError, match=r"r lacks .*expected the run's recipe"): zoo.training_data('skin', None, tmp_path)
    with pytest.raises(ValueError, match=r"r\['size'\]=32: the skin phantom renders 64 px images"): zoo.training_data('skin', dict(SMALL, size=32), tmp_path)
    with pytest.raises(ValueError, match='unknown zoo model'): zoo.training_data('brain', SMALL, tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was written

@pytest.mark.parametrize('what', ['pickle', 'other rows', 'other settings', 'not a dict'])
def test_training_data_replaces_a_cache_it_cannot_trust(tmp_path, what):
    cache = tmp_path / 'images_skin_64px_6_3.pt'; ran = tmp_path / 'ran'
    fresh = zoo.zoo_phantom('skin', 3).sample(6, seed=3).images
    if what == 'pickle': torch.save(_Payload(str(ran)), cache)
    else:
        zoo.training_data('skin', SMALL, tmp_path)
        saved = torch.load(cache, weights_only=True)
        if what == 'other rows': saved['attrs'] = 'f' * 64
        if what == 'other settings': saved['source'] = saved['source'].replace('"size": 64', '"size": 32')
        if what == 'not a dict': saved = saved['images']
        torch.save(saved, cache)
    with pytest.warns(UserWarning, match=r'images_skin_64px_6_3.pt is not reused: .*rendering the images again and replacing it'):
        images, _ = zoo.training_data('skin', SMALL, tmp_path)
    assert not ran.exists() and torch.equal(images, fresh)
    assert torch.equal(torch.load(cache, weights_only=True)['images'], fresh)  # replaced by a cache that is reused next time

def test_train_zoo_model_runs_no_code_from_its_cache(tmp_path, monkeypatch):
    (tmp_path / 'w').mkdir(); ran = tmp_path / 'ran'
    torch.save(_Payload(str(ran)), tmp_path / 'w' / 'images_skin_64px_8_3.pt')
    monkeypatch.setattr(zoo, 'train_vae', lambda *a, **k: dict(loss=[1.0], seconds=1.0))
    monkeypatch.setattr(zoo, 'finetune', lambda *a, **k: dict(loss=[0.5], start=0, snapshots={}))
    with pytest.warns(UserWarning, match='is not reused'):
        zoo.train_zoo_model('skin', tmp_path / 'out', work_dir=tmp_path / 'w', progress=False, n_images=8, data_seed=3,
                            vae_steps=1, vae_decoder_steps=(0,), unet_steps=1, select_every=None)
    assert not ran.exists()


# ---- session 38: the evaluation helpers (lines 376-655) ----

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


# 38-M16, 38-M17, 38-M18, 38-M19: attribute_adherence's shares and errors, worked by hand from fixed readings
def test_attribute_adherence_figures_by_hand(pipe):
    specs = [AttrSpec('view', 'categorical', ['AP', 'PA']), AttrSpec('age', 'continuous', range=(18., 90.))]
    asked = pd.DataFrame(dict(view=['AP', 'AP', 'PA', 'PA'], age=[30., 40., 50., 60.]))
    read = pd.DataFrame(dict(view=['AP', 'PA', 'PA', 'PA'], age=[31., 38., 50., 66.]))
    df = zoo.attribute_adherence(pipe, FakeOracle(specs, read), ['a', 'b', 'c', 'd'], asked, num_inference_steps=2)
    v = df[df.attribute == 'view'].set_index('asked')
    assert v.n.tolist() == [4, 2, 2] and v.read_as_asked.tolist() == [0.75, 0.5, 1.0]  # all: 3 of 4; AP: 1 of 2; PA: 2 of 2
    age = df[df.attribute == 'age']
    assert age.asked.tolist() == ['all'] and age.mean_abs_error.tolist() == [(1 + 2 + 0 + 6) / 4]  # mean |read - asked|


# 38-M15, 38-M20 (and 38-M06, 38-M07 through prompt_adherence): the oracle reads the images generate() draws at the given seed and guidance interval
def test_adherence_generates_at_the_given_seed_and_interval(pipe):
    specs = [AttrSpec(k, 'binary', [0, 1]) for k in ('effusion', 'devices', 'cardiomegaly')]
    prompts, asked = zoo.adherence_prompts('chest', 4)
    o = FakeOracle(specs, asked)
    zoo.prompt_adherence(pipe, o, 'chest', n=4, num_inference_steps=2, guidance_scale=3.0, seed=5, guidance_interval=(0, 500))
    want = D.generate(pipe, prompts, 2, 3.0, seed=5, guidance_interval=(0, 500))
    assert not torch.equal(want, D.generate(pipe, prompts, 2, 3.0, seed=5))  # the interval changes the images (else this test proves nothing)
    assert not torch.equal(want, D.generate(pipe, prompts, 2, 3.0, seed=6))
    assert torch.equal(o.seen[0], want)
    # session 43: the skin prompts are drawn at the same seed (chest prompts do not depend on it; a mutant drew them at 0)
    skin = [AttrSpec(k, 'binary', [0, 1]) for k in ('melanoma', 'hair', 'ruler', 'ink', 'bubbles', 'dark_corners')]
    (p5, a5), (p0, _) = zoo.adherence_prompts('skin', 4, 5), zoo.adherence_prompts('skin', 4, 0)
    o = FakeOracle(skin, a5)
    zoo.prompt_adherence(pipe, o, 'skin', n=4, num_inference_steps=2, seed=5)
    want = D.generate(pipe, p5, 2, 3.0, seed=5)
    assert p5 != p0 and torch.equal(o.seen[0], want) and not torch.equal(want, D.generate(pipe, p0, 2, 3.0, seed=5))


# 38-M05: prompt_adherence is the pooled ('all') share per prompted attribute
def test_prompt_adherence_is_the_pooled_share(pipe):
    specs = [AttrSpec(k, 'binary', [0, 1]) for k in ('effusion', 'devices', 'cardiomegaly')]
    _, asked = zoo.adherence_prompts('chest', 8)  # the 8 finding combinations once each
    read = asked.assign(effusion=1, cardiomegaly=0)  # devices read as asked; the others half right
    s = zoo.prompt_adherence(pipe, FakeOracle(specs, read), 'chest', n=8, num_inference_steps=2)
    assert s.to_dict() == dict(effusion=0.5, devices=1.0, cardiomegaly=0.5)


# 38-M09, 38-M10, 38-M12: attribute_adherence's refusals (before any image is generated: pipe=None is never reached)
def test_attribute_adherence_refuses_a_string_no_attribute_and_a_partly_bad_column():
    specs = [AttrSpec('view', 'categorical', ['AP', 'PA'])]
    o = FakeOracle(specs, None)
    with pytest.raises(ValueError, match='1 prompts for 2 rows'): zoo.attribute_adherence(None, o, 'ab', pd.DataFrame(dict(view=['AP', 'PA'])))
    with pytest.raises(ValueError, match='no attribute'): zoo.attribute_adherence(None, o, ['a', 'b'], pd.DataFrame(index=range(2)))
    with pytest.raises(ValueError, match=r"asked\['view'\] holds \['lateral'\]"):
        zoo.attribute_adherence(None, o, ['a', 'b'], pd.DataFrame(dict(view=['AP', 'lateral'])))  # one bad value among good ones


# 38-M03: each skin adherence prompt names exactly the artifacts its row asks for
def test_adherence_prompts_skin_pairs_prompts_with_rows():
    from medcf.data import SKIN_ARTIFACTS
    prompts, asked = zoo.adherence_prompts('skin', 12, seed=0)
    for p, (_, row) in zip(prompts, asked.iterrows()):
        for k, word in SKIN_ARTIFACTS.items():
            assert (word in p) == bool(row[k]), (p, dict(row))


# 38-M25, 38-M26, 38-M27, 38-M28: vae_positive_recall worked by hand
def test_vae_positive_recall_by_hand():
    specs = [AttrSpec('ink', 'binary', [0, 1]), AttrSpec('hair', 'binary', [0, 1]), AttrSpec('grade', 'categorical', [0, 1, 2])]
    o = FakeOracle(specs, _mean_reader)
    real = types.SimpleNamespace(images=_const([0.5, 0.5, -0.5, 0.5]), attrs=pd.DataFrame(dict(ink=[1, 1, 1, 0], hair=0, grade=[1, 1, 0, 2])))
    rt = _const([0.5, -0.5, -0.5, 0.4])
    t = zoo.vae_positive_recall(None, o, real, rt)
    # ink: rows 0-2 are positive; read as ink on real 0, 1 (2 of 3), on the round trip 0 only (1 of 3); hair has no positives; grade is not binary
    assert list(t.index) == ['ink'] and t.loc['ink'].tolist() == [3, pytest.approx(2 / 3), pytest.approx(1 / 3)]


# 38-M24: vae_agreement compares the readings of the real images with those of the round trip given
def test_vae_agreement_by_hand(pipe):
    specs = [AttrSpec('ink', 'binary', [0, 1]), AttrSpec('view', 'categorical', ['AP', 'PA'])]
    real = types.SimpleNamespace(images=_const([0.5, 0.5, -0.5, 0.5]), attrs=pd.DataFrame(dict(ink=[1, 1, 0, 1])))
    s = zoo.vae_agreement(None, FakeOracle(specs, _mean_reader), real, _const([0.5, -0.5, -0.5, -0.4]))
    assert s.to_dict() == dict(ink=0.5, view=1.0)  # ink read the same on images 0 and 2
    # session 43: without a round trip given, the pipeline's own is read (a mutant compared the real images with themselves)
    x = torch.linspace(-1, 1, 2 * 32 * 32).view(2, 1, 32, 32); o = FakeOracle(specs, _mean_reader)
    zoo.vae_agreement(pipe, o, types.SimpleNamespace(images=x))
    assert torch.equal(o.seen[0], x) and torch.equal(o.seen[1], D.vae_roundtrip(pipe, x)) and not torch.equal(o.seen[1], x)


# 38-M29, 38-M30, 38-M31: oracle_ceiling's noise has E|n| equal to the round trip's mean absolute error: std = L1 * sqrt(pi / 2)
def test_oracle_ceiling_noise_std_closed_form():
    o = FakeOracle([AttrSpec('view', 'categorical', ['AP', 'PA'])], lambda x: pd.DataFrame(dict(view=['AP'] * len(x))))
    x = torch.full((4, 1, 8, 8), -0.5); rt = x.clone(); rt[:, :, :4] += 0.1  # half the pixels moved by 0.1: L1 = 0.05
    real = types.SimpleNamespace(images=x)
    assert zoo.oracle_ceiling(None, o, real, rt) == dict(noise_std=round(0.05 * math.sqrt(math.pi / 2), 4), view=1.0)  # 0.0627


# 38-M32: evaluate_zoo_model accepts n_invert == n (every real image inverted)
def test_evaluate_zoo_model_accepts_n_invert_equal_to_n():
    with pytest.raises(Reached): zoo.evaluate_zoo_model('chest', object(), FakeOracle([], None), n=4, n_invert=4)  # gets past the check to the FD floor


# 38-M37: update_card keeps the text encoder's field as it keeps max_length
def test_update_card_refuses_text_encoder(tmp_path):
    from medcf.diffusion import CARD
    (tmp_path / CARD).write_text('{"name": "t"}')
    with pytest.raises(ValueError, match=r"\['text_encoder'\] say how load_pipeline rebuilds the text encoder"): zoo.update_card(tmp_path, text_encoder='x')
    assert (tmp_path / CARD).read_text() == '{"name": "t"}' and not (tmp_path / 'README.md').exists()


# 38-M48, 38-M49: grain_versions: `other` is each clean chest plus some chest's grain plane (real - clean), clipped to [-1, 1] as the phantom clips
def test_grain_versions_moves_grain_planes():
    real, clean, other = zoo.grain_versions(4, seed=3)
    assert torch.equal(real.images, zoo.zoo_phantom('chest').sample(4, seed=3).images)
    assert torch.equal(clean.images, zoo.zoo_phantom('chest', grain=0).sample(4, seed=3).images)  # the same chests (session 43: a mutant drew others)
    grain = real.images - clean.images
    assert other.min() >= -1 and other.max() <= 1
    src = [[j for j in range(4) if torch.allclose(other[i], (clean.images[i] + grain[j]).clamp(-1, 1))] for i in range(4)]
    assert sorted(s[0] for s in src) == [0, 1, 2, 3] and all(len(s) == 1 for s in src)  # a permutation of the 4 grain planes
    assert all(s[0] != i for i, s in enumerate(src))  # and each chest gets ANOTHER chest's plane (seed 10_000 gave two their own back before)
    _, _, o2 = zoo.grain_versions(4, seed=10_000)
    r2 = zoo.zoo_phantom('chest').sample(4, seed=10_000).images
    assert not any(torch.equal(o2[i], r2[i]) for i in range(4))
    with pytest.raises(ValueError, match=r"n=1: expected an integer >= 2 \(chests: another chest's grain needs two\)"): zoo.grain_versions(1, seed=0)


# 38-M51, 38-M52: age_bin_ceiling refuses readings without age/age_bin and a non-dict
def test_age_bin_ceiling_refuses_other_tables():
    real = pd.DataFrame(dict(age=[30., 50.], age_bin=['18-40', '40-60']))
    with pytest.raises(ValueError, match=r"expected the chest oracle's readings \(age, age_bin\)"): zoo.age_bin_ceiling({'real': real, 'x': real[['age']]})
    with pytest.raises(ValueError, match="expected a dict with a 'real' entry"): zoo.age_bin_ceiling(['real', 'x'])


# 38-M53: resample_like refuses a NaN in the target, not only in the source
def test_resample_like_refuses_nan_target():
    with pytest.raises(ValueError, match='NaN or inf'): zoo.resample_like([1., 2., 3.], [1., float('nan')])


# 38-M56, 38-M57, 38-M58: attribute_mix_fd refuses n < 2, a non-integer draws, a negative seed and a zero width before any image is drawn
def test_attribute_mix_fd_refuses_before_drawing():
    o = FakeOracle([AttrSpec('age', 'continuous', range=(18., 90.))], None)
    for kw, msg in [(dict(n=1), r'2 <= n <= pool_n'), (dict(draws=2.5), 'draws=2.5'), (dict(seed=-1), 'seed=-1'), (dict(width=0), 'bin width > 0')]:
        with pytest.raises(ValueError, match=msg): zoo.attribute_mix_fd('chest', 'age', pipe=object(), oracle=o, **kw)


# session 41's mutation pass: attribute_mix_fd's share is the part of the generated set's excess over random real draws that the resampled draws reproduce
def test_attribute_mix_fd_share_is_the_part_of_the_excess_reproduced():
    r = zoo.attribute_mix_fd('chest', 'age', n=4, pool_n=8, num_inference_steps=2, draws=1, width=100.0)  # one age bin: a small smoke set
    want = (r['pool_resampled'] - r['pool_random']) / (r['generated'] - r['pool_random'])  # from the figures rounded to 3 decimals
    assert r['share'] == pytest.approx(want, rel=0.05, abs=0.01) and r['n'] == 4 and r['steps'] == 2


# session 43's mutation pass over the zoo's evaluation paths. The card's figures come from evaluate_zoo_model; its body had no
# test (14 one-line mutants survived: the round trip of real set b, the generated FD at another seed, the ratio without the floor,
# the inversion at the guidance scale, the captions of the other set, ...). Each collaborator is stubbed and records what it is
# given; the figures are worked from the stubs' numbers.
def _stub_evaluation(monkeypatch, real_a, real_b):
    import medcf.metrics
    seen, P, O = dict(adherence=[], roundtrip=[], fd=[], gen_fd=[], captions=[], invert=[]), object(), types.SimpleNamespace(features='features')
    monkeypatch.setattr(zoo, '_held_out', lambda name, pipe, oracle, n, seed: seen.update(held_out=(name, pipe, oracle, n, seed)) or (P, O, real_a, real_b, 2.0))
    monkeypatch.setattr(zoo, 'prompt_adherence', lambda *a: seen['adherence'].append(a) or pd.Series(dict(effusion=0.123456)))
    def roundtrip(pipe, x):
        seen['roundtrip'].append((pipe, x)); return x + 0.5
    monkeypatch.setattr(zoo, 'vae_roundtrip', roundtrip)
    monkeypatch.setattr(zoo, 'vae_agreement', lambda pipe, o, real, rt: seen.update(agreement=(real, rt)) or pd.Series(dict(effusion=0.987654)))
    monkeypatch.setattr(zoo, 'vae_positive_recall', lambda pipe, o, real, rt: seen.update(recall=(real, rt)) or
                        pd.DataFrame(dict(effusion=dict(positives=7, real=0.912345, roundtrip=0.812345))).T)
    monkeypatch.setattr(zoo, 'oracle_ceiling', lambda pipe, o, real, rt: seen.update(ceiling=(real, rt)) or dict(noise_std=0.1))
    monkeypatch.setattr(zoo, '_generated_fd', lambda *a: seen['gen_fd'].append(a) or 3.0)
    monkeypatch.setattr(medcf.metrics, 'oracle_frechet_distance', lambda f, a, b: seen['fd'].append((f, a, b)) or 2.5)
    monkeypatch.setattr(zoo, 'training_captions', lambda name, b, share, seed: seen['captions'].append((b, share, seed)) or ['c'] * len(b.images))
    monkeypatch.setattr(zoo, 'ddim_invert', lambda *a: seen['invert'].append(a) or types.SimpleNamespace(image_mae=0.05, vae_mae=0.04, latent_error=0.3))
    return seen, P, O


def test_evaluate_zoo_model_computes_each_figure_from_its_sets(monkeypatch):
    ph = zoo.zoo_phantom('chest')
    real_a, real_b = ph.sample(4, seed=1), ph.sample(4, seed=2)
    monkeypatch.setitem(zoo.RECIPES['chest'], 'guidance_scale', 2.5)  # the shipped recipes' 3.0 is also the default of generate
    monkeypatch.setitem(zoo.RECIPES['chest'], 'prism_share', 0.25)
    seen, P, O = _stub_evaluation(monkeypatch, real_a, real_b)
    given_pipe, given_oracle = object(), object()
    q = zoo.evaluate_zoo_model('chest', given_pipe, given_oracle, n=4, num_inference_steps=7, n_invert=2, seed=5)
    assert seen['held_out'] == ('chest', given_pipe, given_oracle, 4, 5)
    assert seen['adherence'] == [(P, O, 'chest', 4, 7, 2.5, 5, (0, 600))]  # the recipe's scale and interval
    assert q['prompt_adherence'] == dict(effusion=0.1235)
    # one round trip of real set a for the three autoencoder figures, one of set b for the autoencoder's FD against set a
    assert [x for _, x in seen['roundtrip']] == [real_a.images, real_b.images] and all(p is P for p, _ in seen['roundtrip'])
    rt = seen['agreement'][1]
    assert torch.equal(rt, real_a.images + 0.5) and seen['agreement'][0] is real_a
    assert seen['recall'] == (real_a, rt) and seen['ceiling'] == (real_a, rt)
    assert q['vae_attribute_agreement'] == dict(effusion=0.9877) and q['oracle_noise_agreement'] == dict(noise_std=0.1)
    assert q['vae_positive_recall'] == dict(effusion=dict(positives=7, real=0.9123, roundtrip=0.8123))
    assert seen['gen_fd'] == [(P, O, 'chest', real_a, real_b, 7, 2.5, 5, (0, 600), 0.25)]  # the recipe's caption mix (prism_share), resolved once
    (f, a, b), = seen['fd']
    assert f == 'features' and a is real_a.images and torch.equal(b, real_b.images + 0.5)
    assert q['oracle_fd'] == dict(generated_vs_real=3.0, real_vs_real_floor=2.0, ratio=1.5, vae_roundtrip_vs_real=2.5, vae_ratio=1.25)
    # inversion: the first n_invert real images of set a with their own training-style captions, at guidance 1
    (b, share, s), = seen['captions']
    assert b.attrs.equals(real_a[:2].attrs) and (share, s) == (0.25, 5)
    (p, x, caps, steps, w), = seen['invert']
    assert p is P and torch.equal(x, real_a.images[:2]) and caps == ['c', 'c'] and (steps, w) == (7, 1.0)
    assert q['inversion'] == dict(image_mae=0.05, vae_floor_mae=0.04, gap=0.01, latent_mae=0.3)
    assert {k: v for k, v in q['eval'].items() if k != 'seconds'} == dict(n=4, n_invert=2, steps=7, guidance_scale=2.5, guidance_interval=[0, 600], seed=5)
    q = zoo.evaluate_zoo_model('chest', given_pipe, given_oracle, n=100, num_inference_steps=7, guidance_scale=1.5, guidance_interval=None)
    assert seen['adherence'][-1][3:] == (100, 7, 1.5, 0, None) and seen['gen_fd'][-1][6:] == (1.5, 0, None, 0.25)
    assert q['eval']['n_invert'] == 64  # n_invert=None: min(64, n) (the stub's set a holds 4)
    assert q['eval']['guidance_scale'] == 1.5 and q['eval']['guidance_interval'] is None


# session 43: _held_out draws both real sets at `seeds` + `seed` from the phantom of seed 0 and keeps the pipeline and oracle it is given
def test_held_out_draws_both_sets_at_the_offset_seeds(monkeypatch):
    import medcf.oracles
    seen = _stub_validation(monkeypatch)  # its FD stub gives 2.0, then 3.0
    monkeypatch.setattr(zoo, 'load_pipeline', lambda name: f'{Path(name).name} pipeline')  # the zoo's folder (session 52: a bare name could load ./chest)
    monkeypatch.setattr(medcf.oracles, 'load_oracle', lambda name: types.SimpleNamespace(features=f'{name} features'))
    O = types.SimpleNamespace(features='given features')
    pipe, oracle, a, b, floor = zoo._held_out('skin', 'given pipeline', O, 3, 5, seeds=(100, 200))
    assert (pipe, oracle) == ('given pipeline', O) and seen['phantoms'] == [('skin', 0)] and seen['samples'] == [105, 205]
    assert floor == 2.0 and seen['fd'] == [(105.0, 205.0)] and a.images.shape[0] == b.images.shape[0] == 3
    assert float(a.images[0, 0, 0, 0]) == 105.0 and float(b.images[0, 0, 0, 0]) == 205.0
    pipe, oracle, *_ = zoo._held_out('skin', None, None, 3, 0)  # None: the shipped ones, at the card's seeds
    assert pipe == 'skin pipeline' and oracle.features == 'skin features' and seen['samples'][-2:] == [10_000, 20_000]


# session 43: select_snapshot scores each candidate with ITS weights loaded, at the n, steps, scale and interval it was given
def test_select_snapshot_scores_each_candidate_with_its_own_weights(monkeypatch):
    p = _fake_pipe(); final = p.unet.weight.detach().clone(); snaps = _snaps(p.unet, 400, 800)
    seen, scores = [], iter([3.0, 1.0, 2.0])
    def vfd(name, pipe, oracle, n, steps, w, guidance_interval=None, prism_share=None):
        seen.append(((name, pipe, oracle, n, steps, w, guidance_interval, prism_share), pipe.unet.weight.detach().clone())); return next(scores)
    monkeypatch.setattr(zoo, 'validation_fd', vfd)
    rows = zoo.select_snapshot('skin', p, snaps, n=5, num_inference_steps=6, guidance_scale=2.5, oracle='o', guidance_interval=(0, 600))
    assert [r['step'] for r in rows] == [400, 800, 'final']  # (which one is chosen and loaded after: test_select_snapshot_loads_the_best_not_the_last)
    assert all(args == ('skin', p, 'o', 5, 6, 2.5, (0, 600), None) for args, _ in seen)  # prism_share None: the recipe's
    assert [torch.equal(w, want) for (_, w), want in zip(seen, [snaps[400][0], snaps[800][0], final])] == [True] * 3


# session 43: _per_scale scores every (scale, interval) with adherence at adherence_seed and FD at fd_seed on one pair of real sets;
# select_guidance asks it for the validation sets with FD at seed 0 (validation_fd's) and records each interval as a list;
# guidance_sweep asks for the card's sets, every scale, FD and adherence at its seed
def test_per_scale_and_its_callers_pass_their_seeds_and_settings(monkeypatch):
    seen = dict(adherence=[], fd=[])
    monkeypatch.setattr(zoo, '_held_out', lambda *a, **k: seen.update(held_out=(a, k)) or ('P', 'O', 'a', 'b', 2.0))
    monkeypatch.setattr(zoo, 'prompt_adherence', lambda *a: seen['adherence'].append(a) or {'x': 0.9})
    monkeypatch.setattr(zoo, '_generated_fd', lambda *a: seen['fd'].append(a) or 3.0 * a[6])
    out = zoo._per_scale('chest', 'pipe', 'oracle', (1.5, 2.0), 3, 4, 7, (1, 2), 9, (None, (0, 600)))
    grid = [(w, gi) for w in (1.5, 2.0) for gi in (None, (0, 600))]
    assert seen['held_out'] == (('chest', 'pipe', 'oracle', 3, 9), dict(seeds=(1, 2)))
    assert seen['adherence'] == [('P', 'O', 'chest', 3, 4, w, 7, gi) for w, gi in grid]
    assert seen['fd'] == [('P', 'O', 'chest', 'a', 'b', 4, w, 9, gi, None) for w, gi in grid]  # prism_share None: the recipe's
    assert out == [(w, gi, {'adherence_x': 0.9}, 3.0 * w / 2.0) for w, gi in grid]
    calls = []
    monkeypatch.setattr(zoo, '_per_scale', lambda *a: calls.append(a) or [(2.0, (0, 600), {'adherence_x': 0.95}, 1.2)])
    rows = zoo.select_guidance('chest', 'pipe', (2.0,), n=3, num_inference_steps=4, oracle='o', seed=7, intervals=((0, 600),))
    assert calls[-1] == ('chest', 'pipe', 'o', (2.0,), 3, 4, 7, zoo.VALIDATION_SEEDS, 0, ((0, 600),), None) and rows[0]['guidance_interval'] == [0, 600]
    monkeypatch.setattr(zoo, '_per_scale', lambda *a: calls.append(a) or [(w, None, {'adherence_x': 0.9}, 1.5) for w in a[3]])
    df = zoo.guidance_sweep('chest', 'pipe', 'o', scales=(1.0, 2.0), n=3, num_inference_steps=4, seed=5)
    assert calls[-1] == ('chest', 'pipe', 'o', (1.0, 2.0), 3, 4, 5, (10_000, 20_000), 5, ((0, 600),), None)  # the recipe's interval and caption mix
    assert df.to_dict('records') == [dict(guidance_scale=w, adherence_x=0.9, fd_ratio=1.5) for w in (1.0, 2.0)]


# session 43: judge_reads gives the shipped judge the real chests, the grain-free ones, the ones with another grain plane and the
# shipped chest autoencoder's round trip of the real ones
def test_judge_reads_reads_each_version(monkeypatch):
    import medcf.oracles
    real, clean = (types.SimpleNamespace(images=torch.full((2, 1, 2, 2), v)) for v in (0.125, 0.25))
    other = torch.full((2, 1, 2, 2), 0.375)
    monkeypatch.setattr(zoo, 'grain_versions', lambda n, seed: (real, clean, other) if (n, seed) == (2, 7) else pytest.fail(f'grain_versions({n}, {seed})'))
    monkeypatch.setattr(medcf.oracles, 'load_oracle', lambda name: types.SimpleNamespace(predict=lambda x: (name, float(x[0, 0, 0, 0]))))
    monkeypatch.setattr(zoo, 'load_pipeline', lambda name: f'{Path(name).name} pipeline')
    monkeypatch.setattr(zoo, 'vae_roundtrip', lambda pipe, x: x + (0.5 if pipe == 'chest pipeline' else 9.0))
    r = zoo.judge_reads(2, 7)
    assert r == {'real': ('chest', 0.125), 'grain removed': ('chest', 0.25), 'another grain': ('chest', 0.375), 'VAE round trip': ('chest', 0.625)}


# session 43: attribute_mix_fd compares real set a's features with the images generated from set b's captions, with random
# draws (without replacement) from a pool of its own seed, and with draws resampled at seed + k to the generated set's readings
def test_attribute_mix_fd_draws_its_sets_as_documented(monkeypatch):
    import medcf.metrics, medcf.oracles
    real_a, real_b = (types.SimpleNamespace(images=_const([v] * 6)) for v in (1.0, 2.0))
    gen, ages = _const([3.0, 3.5, 4.0, 4.5, 5.0, 5.5]), [3.0, 3.5, 4.0, 4.5, 5.0, 5.5]
    O = types.SimpleNamespace(specs=[AttrSpec('age', 'continuous', range=(0., 200.))], features=lambda x: x.flatten(1)[:, :1],
                              predict=lambda x: pd.DataFrame(dict(age=x.flatten(1)[:, 0].numpy())))
    seen = dict(samples=[], resample=[], fd=[])
    monkeypatch.setattr(medcf.oracles, 'load_oracle', lambda name: pytest.fail('loaded the shipped oracle over the one given'))
    monkeypatch.setattr(zoo, '_held_out', lambda name, pipe, oracle, n, seed: ('P', oracle, real_a, real_b, 2.0))
    monkeypatch.setattr(zoo, '_generated', lambda *a: seen.update(generated=a) or gen)
    class Ph:
        def sample(self, n, seed): seen['samples'].append((n, seed)); return types.SimpleNamespace(images=_const([100.0 + i for i in range(n)]))
    monkeypatch.setattr(zoo, 'zoo_phantom', lambda name, seed=0, **kw: Ph())
    monkeypatch.setattr(zoo, 'resample_like', lambda s, t, width, seed: seen['resample'].append((s.tolist(), t.tolist(), width, seed)) or np.array([5, 0, 5, 1, 2, 3]))
    fds = iter([4.0, 2.0, 2.0, 3.0, 3.0])  # generated, then the random draws, then the resampled ones
    monkeypatch.setattr(medcf.metrics, 'frechet_distance', lambda a, b: seen['fd'].append((a[:, 0].tolist(), b[:, 0].tolist())) or next(fds))
    r = zoo.attribute_mix_fd('chest', 'age', 'pipe', O, n=6, pool_n=6, num_inference_steps=4, seed=3, draws=2, width=4.0, guidance_scale=2.5)
    assert seen['generated'] == ('P', 'chest', real_b, 4, 2.5, 3, (0, 600), None) and seen['samples'] == [(6, 50_003)]  # None: the recipe's caption mix
    pool = [100.0 + i for i in range(6)]
    assert all(a == [1.0] * 6 for a, _ in seen['fd']) and seen['fd'][0][1] == ages  # real set a against the generated set
    assert all(sorted(b) == pool for _, b in seen['fd'][1:3])  # all 6 of the pool of 6, each once
    assert seen['resample'] == [(pool, ages, 4.0, 3), (pool, ages, 4.0, 4)] and seen['fd'][3][1] == [105.0, 100.0, 105.0, 101.0, 102.0, 103.0]
    assert {k: r[k] for k in ('floor', 'generated', 'pool_random', 'pool_resampled', 'share')} == dict(floor=2.0, generated=2.0, pool_random=1.0, pool_resampled=1.5, share=0.5)
    assert r['sd_generated'] == round(float(np.std(ages)), 2) and r['sd_real'] == round(float(np.std(pool)), 2)

def test_decoder_perceptual_weight_is_a_finite_positive_number():
    "The perceptual weight of decoder rounds: True and inf are refused by name (True was a weight of 1, inf a NaN loss), a numpy float is a weight."
    r = dict(zoo.RECIPES['chest'], vae_decoder_steps=700, vae_decoder_perceptual='chest')
    for w in (True, float('inf'), 0, -1.0, '0.5'):
        with pytest.raises(ValueError, match=r"vae_decoder_perceptual_weight=.*: expected a finite weight > 0 when vae_decoder_perceptual='chest'"): zoo.decoder_perceptual(dict(r, vae_decoder_perceptual_weight=w))
    assert zoo.decoder_perceptual(dict(r, vae_decoder_perceptual_weight=np.float32(0.5))) is not None

def test_selection_and_evaluation_generate_from_the_run_s_caption_mix(tmp_path, monkeypatch):
    "A run trained with prism_share=1.0 (paper-style captions only) has its snapshots scored on paper-style captions too, not on the recipe's 50/50 mix; validation_fd and evaluate_zoo_model take the share, checked before any image is drawn."
    import medcf.metrics
    drawn = []
    def generate(pipe, caps, *a, **k): drawn.append(list(caps)); return torch.zeros(len(caps), 1, 64, 64)
    monkeypatch.setattr(zoo, 'generate', generate); monkeypatch.setattr(medcf.metrics, 'oracle_frechet_distance', lambda *a, **k: 1.0)
    monkeypatch.setattr(zoo, 'train_vae', lambda *a, **k: dict(loss=[1.0], seconds=1.0))
    monkeypatch.setattr(zoo, 'finetune', lambda pipe, *a, **k: dict(loss=[0.5], start=0, snapshots={1: [p.detach().clone() for p in pipe.unet.parameters()]}))
    phantom_style = lambda caps: sum(c.startswith('chest x-ray,') for c in caps)  # the phantom's own detailed captions
    zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=tmp_path / 'w', progress=False, n_images=8, vae_steps=1, unet_steps=2,
                        prism_share=1.0, select_every=1, select_n=8, select_steps=1)
    assert drawn and all(phantom_style(c) == 0 for c in drawn)  # the previous library scored the snapshots on 5 of 8 phantom-style captions
    oracle = types.SimpleNamespace(features=None)  # read only by the stubbed FD
    drawn.clear(); zoo.validation_fd('chest', object(), oracle, n=8)
    assert phantom_style(drawn[0]) > 0  # the recipe's mix by default
    drawn.clear(); zoo.validation_fd('chest', object(), oracle, n=8, prism_share=1.0)
    assert phantom_style(drawn[0]) == 0
    with pytest.raises(ValueError, match=r'prism_share=1.5: expected a share of captions in \[0, 1\]'): zoo.evaluate_zoo_model('chest', object(), object(), n=4, n_invert=2, prism_share=1.5)
    for f in (lambda: zoo.guidance_sweep('chest', object(), object(), n=4, prism_share=1.5), lambda: zoo.attribute_mix_fd('chest', 'age', object(), types.SimpleNamespace(specs=[types.SimpleNamespace(name='age', kind='continuous')]), n=4, pool_n=8, prism_share=1.5)):
        with pytest.raises(ValueError, match=r'prism_share=1.5: expected a share of captions in \[0, 1\]'): f()  # every function that generates the card's set takes the run's share

def test_an_autoencoder_saved_without_its_history_is_trained_again(tmp_path, monkeypatch):
    "work/vae/config.json without vae_history.json (written last, so the save was cut short) is not a finished stage: the autoencoder is trained again, with a warning (the previous library failed with a bare FileNotFoundError)."
    calls = []
    monkeypatch.setattr(zoo, 'train_vae', lambda *a, **k: calls.append(1) or dict(loss=[1.0], seconds=1.0))
    monkeypatch.setattr(zoo, 'finetune', lambda *a, **k: dict(loss=[0.5], start=0, snapshots={}))
    (tmp_path / 'w' / 'vae').mkdir(parents=True); (tmp_path / 'w' / 'vae' / 'config.json').write_text('{}')
    with pytest.warns(UserWarning, match=r'holds an autoencoder but .*vae_history.json is missing \(a save cut short\?\): training the autoencoder stage again'):
        zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=tmp_path / 'w', progress=False, n_images=8, vae_steps=1, unet_steps=2, select_every=None)
    assert calls == [1] and (tmp_path / 'w' / 'vae_history.json').exists()

def test_an_evaluation_seed_past_the_last_generation_seed_is_refused_under_its_own_name(monkeypatch):
    "The card's generated set draws its noise at seed + 1, so an evaluation seed of 2**32 - 1 cannot be served: it is refused naming the seed the caller passed, before any image is drawn (the previous library drew the real sets, then `generate` refused 'seed=4294967296', a number the caller never passed)."
    monkeypatch.setattr(zoo, 'load_pipeline', lambda *a, **k: pytest.fail('a model was loaded before the seed was checked'))
    monkeypatch.setattr(zoo, 'zoo_phantom', lambda *a, **k: pytest.fail('an image was drawn before the seed was checked'))
    msg = r'seed=4294967295: the generated set draws its noise at seed \+ 1, .*expected a seed in \[0, 4294967294\]'
    oracle = types.SimpleNamespace(specs=[types.SimpleNamespace(name='age', kind='continuous')])
    for f in (lambda: zoo.validation_fd('chest', None, oracle, n=4, seed=2**32 - 1),
              lambda: zoo.evaluate_zoo_model('chest', None, oracle, n=4, n_invert=2, seed=2**32 - 1),
              lambda: zoo.attribute_mix_fd('chest', 'age', None, oracle, n=4, pool_n=8, seed=2**32 - 1)):
        with pytest.raises(ValueError, match=msg): f()
    drawn = []
    monkeypatch.setattr(zoo, 'generate', lambda pipe, caps, *a, seed=0, **k: drawn.append(seed) or torch.zeros(len(caps), 1, 64, 64))
    zoo._generated(object(), 'chest', ChestPhantom(size=64).sample(2, seed=0), 1, 1.0, 2**32 - 2)
    assert drawn == [2**32 - 1]  # the last valid seed is still served

def test_grain_versions_gives_every_chest_another_grain_plane():
    "The grain is one of the phantom's 64 bank planes, so another chest's grain can be the chest's own plane: on the card's first set (256, seed 10_000) the previous library gave chests 3, 108 and 244 their own plane back (correlation 1.000 with their own grain). Now every chest gets a plane other than its own, each chest's grain still used once; a set where more than half the chests share a plane is refused by name."
    real, clean, other = zoo.grain_versions(256, seed=10_000)
    bank = zoo.zoo_phantom('chest')._grain().flatten(1)
    plane = real.noise['grain'] % len(bank)
    moved = (other - clean.images).flatten(1)
    unit = lambda x: (x - x.mean(1, keepdim=True)) / x.norm(dim=1, keepdim=True)
    corr = unit(moved) @ unit(bank - bank.mean(1, keepdim=True)).T  # each chest's added grain against every bank plane
    got = corr.argmax(1).numpy()
    assert (corr.max(1).values > 0.9).all()  # each version carries one bank plane
    assert sorted(got.tolist()) == sorted(plane.tolist())  # a permutation of the set's grain planes
    assert (got != plane).all(), f"chests {np.flatnonzero(got == plane).tolist()} got their own plane back"
    with pytest.raises(ValueError, match=r"n=2, seed=69: 2 of the 2 chests carry grain plane 34, more than half, so not every chest can get another plane; expected a set in which no plane"):
        zoo.grain_versions(2, seed=69)  # both chests of this set carry plane 34

def test_attribute_mix_fd_refuses_a_fractional_pool_or_a_bool_draws_before_drawing(monkeypatch):
    "pool_n and draws are counts, checked with the other arguments before any set is drawn: the previous library only compared pool_n (2 <= n <= pool_n), so pool_n=300.5 passed, the card's real sets were rendered and its images generated, and only then did phantom.sample refuse it naming `n`; draws=True ran as one draw, and n=2.5 reached the real-set draw."
    o = FakeOracle([AttrSpec('age', 'continuous', range=(18., 90.))], None)
    monkeypatch.setattr(zoo, '_held_out', lambda *a, **k: pytest.fail('the real sets were drawn before the arguments were checked'))
    monkeypatch.setattr(zoo, '_generated', lambda *a, **k: pytest.fail('images were generated before the arguments were checked'))
    for kw, msg in [(dict(pool_n=300.5), r'pool_n=300.5: expected an integer >= 2 \(real images in the pool\)'),
                    (dict(pool_n=True), r'pool_n=True: expected an integer >= 2'),
                    (dict(draws=True), r'draws=True: expected a positive integer \(pool draws averaged per figure\)'),
                    (dict(n=2.5, pool_n=8), r'n=2.5, pool_n=8: expected an integer with 2 <= n <= pool_n'),
                    (dict(n=True, pool_n=8), r'n=True, pool_n=8: expected an integer with 2 <= n <= pool_n')]:
        with pytest.raises(ValueError, match=msg): zoo.attribute_mix_fd('chest', 'age', pipe=object(), oracle=o, num_inference_steps=1, **kw)

def test_every_seeded_zoo_function_checks_its_seed_by_name_first(monkeypatch):
    "guidance_sweep checks its seed as evaluate_zoo_model does and select_guidance its adherence seed, before any model loads or set is drawn: the previous library drew the real sets at seed + 10_000 first, so seed=-10001 was refused as 'seed=-1' (a value never passed) and seed=-3 with numpy's bare 'expected non-negative integer'. The caption mix and the adherence prompts name a bad seed too (numpy's bare error before; True ran as seed 1, and the chest prompts took any seed)."
    monkeypatch.setattr(zoo, 'load_pipeline', lambda *a, **k: pytest.fail('a model was loaded before the seed was checked'))
    monkeypatch.setattr(zoo, '_held_out', lambda *a, **k: pytest.fail('the real sets were drawn before the seed was checked'))
    for s, msg in [(-10_001, r'seed=-10001: expected a non-negative integer'), (-3, r'seed=-3: expected a non-negative integer'), (True, r'seed=True: expected a non-negative integer'),
                   (2**32 - 1, r'seed=4294967295: the generated set draws its noise at seed \+ 1, .*expected a seed in \[0, 4294967294\]')]:
        with pytest.raises(ValueError, match=msg): zoo.guidance_sweep('chest', None, object(), scales=(2.0,), n=4, num_inference_steps=1, seed=s)
    for s, msg in [(-3, r'seed=-3: expected an integer in \[0, 4294967295\]'), (2**32, r'seed=4294967296: expected an integer in \[0, 4294967295\]'), (2.5, r'seed=2.5: expected an integer')]:
        with pytest.raises(ValueError, match=msg): zoo.select_guidance('chest', None, scales=(2.0,), n=4, num_inference_steps=1, oracle=object(), seed=s)
    b = ChestPhantom(size=64).sample(2, seed=0)
    for f in (lambda s: zoo.training_captions('chest', b, 0.5, seed=s), lambda s: zoo.caption_mix('chest', b.attrs, 0.5, seed=s),
              lambda s: zoo.adherence_prompts('chest', 4, seed=s), lambda s: zoo.adherence_prompts('skin', 4, seed=s)):
        for s in (-3, True):
            with pytest.raises(ValueError, match=rf'seed={s}: expected a non-negative integer'): f(s)


def test_update_card_refuses_a_nested_dict_that_drops_keys(tmp_path):
    "quality={'adherence': {'effusion': 0.95}} kept the top-level key and silently dropped the card's other adherence figures; now refused, naming them."
    from medcf.diffusion import CARD
    (tmp_path / CARD).write_text(json.dumps({'name': 't', 'quality': {'adherence': {'effusion': 0.9, 'devices': 0.97}, 'fd_ratio': 1.5}}))
    with pytest.raises(ValueError, match=r"drop its keys \['adherence.devices'\]"): zoo.update_card(tmp_path, quality={'adherence': {'effusion': 0.95}, 'fd_ratio': 1.5})
    assert json.loads((tmp_path / CARD).read_text())['quality']['adherence']['devices'] == 0.97  # nothing written
    card = zoo.update_card(tmp_path, quality={'adherence': {'effusion': 0.95, 'devices': 0.97, 'cardiomegaly': 0.93}, 'fd_ratio': 1.4})  # keys added: fine
    assert card['quality']['adherence'] == {'effusion': 0.95, 'devices': 0.97, 'cardiomegaly': 0.93}
    assert zoo.update_card(tmp_path, replace=['quality'], quality={'fd_ratio': 1.3})['quality'] == {'fd_ratio': 1.3}


# fixD90: train_zoo_model's refusals of finetune's state give advice it can take; evaluate_zoo_model names a bad n
def _unet_only(monkeypatch, calls):  # the VAE stage stubbed (the autoencoder build_pipeline gives); finetune runs for real on 4 chests
    monkeypatch.setattr(zoo, 'train_vae', lambda *a, **k: calls.append(1) or dict(loss=[1.0], seconds=1.0))
    return dict(progress=False, n_images=4, vae_steps=1, vae_decoder_steps=0, unet_steps=1, unet_batch=4, select_every=None)

def test_train_zoo_model_refuses_another_unet_setting_with_advice_it_takes(tmp_path, monkeypatch):
    "A rerun on the same work_dir with another UNet setting is refused naming the setting and advice train_zoo_model can follow (delete the state file, or a fresh work_dir); the previous library passed on finetune's 'pass resume=False ... or use another ckpt_dir', which train_zoo_model refuses as unknown recipe fields. Following the new advice works and keeps the autoencoder."
    calls = []; smoke = _unet_only(monkeypatch, calls); w = tmp_path / 'w'; state = w / 'finetune_state.pt'
    zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=w, **smoke)
    assert state.exists() and calls == [1]
    with pytest.raises(ValueError) as e: zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=w, overwrite=True, **dict(smoke, unet_lr=1e-3))
    msg = str(e.value)
    assert msg.startswith(f"{state} was saved with other settings: lr=0.001 (saved with 0.0006); train_zoo_model resumes its UNet stage from that state: rerun with the recipe it was saved with")
    assert msg.endswith(f"delete {state} to train the UNet stage over (the autoencoder and images in {w} are kept), or use a fresh work_dir")
    assert 'resume=False' not in msg and 'ckpt_dir' not in msg
    state.unlink()  # the advice, followed
    card = zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=w, overwrite=True, **dict(smoke, unet_lr=1e-3))
    assert card['recipe']['unet_lr'] == 1e-3 and card['resumed_from_step'] == 0 and calls == [1]  # the autoencoder was kept

def test_train_zoo_model_names_the_recipe_lr_when_its_unet_stage_diverges(tmp_path, monkeypatch):
    "Session 52's review: finetune's divergence said 'lower lr' and its warning 'start over with resume=False', neither train_zoo_model's; the last step's state was saved as finished, so the same command again returned and saved an overflowing UNet."
    smoke = dict(_unet_only(monkeypatch, []), unet_lr=1e9)
    w = tmp_path / 'w'
    for attempt in range(2):  # the rerun diverges again rather than saving the overflowing UNet
        with pytest.raises(FloatingPointError, match=r"finetune diverged at step 0: .*\(train_zoo_model: the recipe's unet_lr=1e\+09\); lower unet_lr in the recipe, and delete .*finetune_state.pt or use a fresh work_dir"), \
             pytest.warns(UserWarning, match='stopped early'):
            zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=w, **smoke)
    assert not (tmp_path / 'out').exists()


def test_train_zoo_model_checks_the_vae_counts_only_when_it_trains_the_vae(tmp_path):
    "d034f06 checked vae_steps and vae_batch with vae_from given, whose autoencoder skips the VAE stage: vae_steps=0 there was refused by name before the folder was read."
    with pytest.raises(FileNotFoundError, match='no config.json'): zoo.train_zoo_model('chest', tmp_path / 'a', vae_from=tmp_path, vae_steps=0, vae_batch=0)
    with pytest.raises(ValueError, match='vae_steps=0'): zoo.train_zoo_model('chest', tmp_path / 'a', vae_steps=0)


def test_train_zoo_model_refuses_an_unreadable_state_with_advice_it_takes(tmp_path, monkeypatch):
    "A finetune_state.pt in work_dir that cannot be read (cut short, another tool's), or one past unet_steps, is refused keeping finetune's reason, with advice train_zoo_model can follow (the previous library said 'resume=False ... or another ckpt_dir', and 'steps=' for unet_steps); finetune's other refusals pass through unchanged."
    import re
    smoke = _unet_only(monkeypatch, []); w = tmp_path / 'w'; w.mkdir(); state = w / 'finetune_state.pt'
    state.write_bytes(b'not a torch file')
    with pytest.raises(ValueError) as e: zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=w, **smoke)
    msg = str(e.value)
    assert msg.startswith(f"{state} cannot be read as a finetune state (") and "it may be cut short or another tool's; train_zoo_model resumes its UNet stage from that state: delete" in msg
    assert msg.endswith(f"delete {state} to train the UNet stage over (the autoencoder and images in {w} are kept), or use a fresh work_dir")
    assert 'resume=False' not in msg and 'ckpt_dir' not in msg and 'rerun with the recipe' not in msg
    torch.save({'step': 1}, state)
    with pytest.raises(ValueError, match=rf"{re.escape(str(state))} is not a finetune state \(it lacks .*\); train_zoo_model resumes its UNet stage from that state: delete"):
        zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=w, **smoke)
    state.unlink(); zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=w, **dict(smoke, unet_steps=2))
    with pytest.raises(ValueError, match=r"is already at step 2, past unet_steps=1; expected unet_steps >= 2 \(the total, resumed steps included\); train_zoo_model resumes its UNet stage from that state: rerun with the recipe"):
        zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=w, overwrite=True, **smoke)  # finetune's names, steps=, told as the recipe's
    def other(*a, **k): raise ValueError(f"{state} something else, pass resume=True")  # not a refusal that advises resume=False: passed through
    monkeypatch.setattr(zoo, 'finetune', other)
    with pytest.raises(ValueError, match=r'^' + re.escape(f"{state} something else, pass resume=True") + '$'): zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=w, overwrite=True, **smoke)

def test_evaluate_zoo_model_names_a_bad_n(monkeypatch):
    "n=0, -5, 2.5 or True is refused naming n, before any model loads; the previous library named n_invert (its default, min(64, n)), an argument the caller never passed."
    monkeypatch.setattr(zoo, 'load_pipeline', lambda *a, **k: pytest.fail('a model was loaded before n was checked'))
    for n in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match=rf'^n={n!r}: expected a positive integer \(images per figure\)$'): zoo.evaluate_zoo_model('chest', n=n, num_inference_steps=1)
    with pytest.raises(Reached): zoo.evaluate_zoo_model('chest', object(), FakeOracle([], None), n=np.int64(4))  # a numpy count is fine


def test_train_zoo_model_names_a_bad_count_by_its_recipe_field(tmp_path):
    "unet_steps=0 was refused by finetune as 'steps=0', a name train_zoo_model's caller never passed; the counts are checked by their recipe names before any work."
    for k, v in (('unet_steps', 0), ('vae_batch', -1), ('n_images', 2.5), ('data_seed', -1)):
        with pytest.raises(ValueError, match=rf"^{k}={v}: expected a (positive|non-negative) integer"):
            zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=tmp_path / 'work', progress=False, **{k: v})
    assert not (tmp_path / 'work').exists()


def test_caption_share_is_checked_not_compared():
    "share='0.5' failed in the comparison ('<=' not supported) and share=True was taken as 1 (every caption paper-style)."
    b = zoo.zoo_phantom('chest').sample(4, seed=0)
    for bad in ('0.5', True, float('nan')):
        with pytest.raises(ValueError, match=r"^share=.*: expected a probability in \[0, 1\]"): zoo.caption_mix('chest', b.attrs, share=bad)
        with pytest.raises(ValueError, match=r"^share=.*: expected a probability in \[0, 1\]"): zoo.training_captions('chest', b, share=bad)
    assert zoo.caption_mix('chest', b.attrs, share=np.float32(1.0)) == zoo.paper_prompts('chest', b.attrs)  # a numpy number is still a share


def test_adherence_prompts_checks_n_by_name():
    "Session 52: n was never checked (chest n=0 blamed missing CheXpert findings, skin n=0 returned no prompts, n=True gave one chest prompt; skin 2.5 and True numpy messages); prompt_adherence passes n straight in."
    for name in ('chest', 'skin'):
        for bad in (0, -3, 2.5, True):
            with pytest.raises(ValueError, match=rf"n={bad!r}: expected a positive integer"): zoo.adherence_prompts(name, bad)
    assert len(zoo.adherence_prompts('chest', 3)[0]) == 3 and len(zoo.adherence_prompts('skin', 5)[0]) == 5


def test_a_retrained_models_figures_use_the_caption_mix_its_card_records(monkeypatch):
    "Session 52 (nb 90 exercise 1): a model retrained with prism_share=1.0 was scored on the recipe's 0.5 mix (validation and card Frechet sets, inversion captions) because prism_share=None read RECIPES, not the pipeline's card."
    seen = []
    monkeypatch.setattr(zoo, 'training_captions', lambda name, b, share, seed: seen.append(share) or ['x'] * len(b))
    monkeypatch.setattr(zoo, 'generate', lambda pipe, prompts, *a, **k: torch.zeros(len(prompts), 1, 64, 64))
    pipe = types.SimpleNamespace(model_card={'recipe': {'prism_share': 1.0}})
    b = ChestPhantom(64).sample(2, seed=0)
    zoo._generated(pipe, 'chest', b, 1, 3.0, 0)
    zoo._generated(pipe, 'chest', b, 1, 3.0, 0, prism_share=0.25)  # an explicit share wins
    zoo._generated(types.SimpleNamespace(), 'chest', b, 1, 3.0, 0)  # no card: the recipe's
    assert seen == [1.0, 0.25, zoo.RECIPES['chest']['prism_share']]
    with pytest.raises(ValueError, match=r"the pipeline card's recipe prism_share=1.5: expected a share of captions in \[0, 1\]"):
        zoo._generated(types.SimpleNamespace(model_card={'recipe': {'prism_share': 1.5}}), 'chest', b, 1, 3.0, 0)



def test_the_zoos_figures_score_the_shipped_checkpoint_not_a_local_folder(tmp_path, monkeypatch):
    "Session 52's review of 772bd6c: with pipe=None the zoo's figures loaded load_pipeline('chest'), which a saved pipeline ./chest in the working directory shadows."
    class Loaded(Exception): pass
    def load(name_or_path, **k): raise Loaded(name_or_path)
    monkeypatch.setattr(zoo, 'load_pipeline', load)
    (tmp_path / 'chest' / 'unet').mkdir(parents=True); monkeypatch.chdir(tmp_path)
    with pytest.raises(Loaded) as e: zoo._held_out('chest', None, types.SimpleNamespace(), 2, 0)
    assert e.value.args[0] == D.zoo_dir() / 'chest'
