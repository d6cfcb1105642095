"""medcf.zoo's recipes and training helpers (lines 1-375), from a mutation pass in session 38: each test pins a behaviour no earlier test pinned.
Ids are that pass's mutant ids. No model is trained: the training stages are stubbed where a run is needed."""
import copy, json, types
import numpy as np, pandas as pd, pytest, torch
from medcf import zoo

torch.set_num_threads(1)


# Z5: a column with ONE missing value is refused, not only an all-missing one (the docstring: "the phantom's value for every image")
def test_paper_prompts_refuses_a_single_missing_value():
    a = zoo.zoo_phantom('chest').sample(4, seed=0).attrs
    a.loc[a.index[1], 'effusion'] = np.nan
    with pytest.raises(ValueError, match=r"attrs\[\['effusion'\]\] hold missing values"): zoo.paper_prompts('chest', a)


# Z4: the skin captions read 'melanoma' too: attrs without it are refused by name
def test_paper_prompts_skin_needs_melanoma():
    a = zoo.zoo_phantom('skin').sample(2, seed=0).attrs
    with pytest.raises(ValueError, match=r"attrs lacks \['melanoma'\]"): zoo.paper_prompts('skin', a.drop(columns='melanoma'))


# Z13: an attribute that holds a value other than 0/1 anywhere is refused (not only one with no 0/1 at all)
def test_oversample_weights_refuses_a_partly_non_binary_attribute():
    attrs = pd.DataFrame(dict(ink=[0, 1, 2, 1]))
    with pytest.raises(ValueError, match='0/1 attribute'): zoo.oversample_weights(attrs, {'ink': 2})


def _stub_validation(monkeypatch):
    "validation_fd's collaborators, recording what they are asked: the phantom's draws, captions, generation, the FDs."
    seen = dict(samples=[], captions=[], generate=[], fd=[])
    class Ph:
        def sample(self, n, seed):
            seen['samples'].append(seed)
            return types.SimpleNamespace(images=torch.full((n, 1, 2, 2), float(seed)))
    monkeypatch.setattr(zoo, 'zoo_phantom', lambda name, seed=0, **kw: Ph())
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


# Z15, Z16, Z17, Z18, Z19: validation_fd is FD(generated, real a) / FD(real a, real b) on the VALIDATION sets (never the card's
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


def _fake_pipe():
    torch.manual_seed(0)
    return types.SimpleNamespace(unet=torch.nn.Linear(3, 2))


# Z20: a snapshot with fewer tensors than the UNet is refused (zip would have loaded a prefix of it)
def test_select_snapshot_refuses_a_snapshot_missing_a_tensor(monkeypatch):
    p = _fake_pipe(); ps = [q.detach().clone() for q in p.unet.parameters()]
    monkeypatch.setattr(zoo, 'validation_fd', lambda *a, **k: pytest.fail('scored a snapshot that does not match the UNet'))
    with pytest.raises(ValueError, match='snapshot of step 4 does not match'): zoo.select_snapshot('chest', p, {4: ps[:1]})


# Z21: 'final' is left out only when a snapshot equals the final weights in EVERY tensor (sharing one is not the same weights)
def test_select_snapshot_keeps_final_unless_a_snapshot_is_all_of_it(monkeypatch):
    p = _fake_pipe(); w, b = [q.detach().clone() for q in p.unet.parameters()]
    scores = iter([2.0, 1.0])
    monkeypatch.setattr(zoo, 'validation_fd', lambda *a, **k: next(scores))
    rows = zoo.select_snapshot('chest', p, {4: [w, b + 1]})  # the weight matrix is the final one, the bias is not
    assert [r['step'] for r in rows] == [4, 'final'] and [r['chosen'] for r in rows] == [False, True]
    assert torch.equal(p.unet.bias, b)


# Z28: guidance scale 1 is accepted ("1 means no guidance"); only scales under 1 are refused
def test_per_scale_accepts_scale_one(monkeypatch):
    monkeypatch.setattr(zoo, '_held_out', lambda name, pipe, oracle, n, seed, seeds: (pipe, oracle, 'a', 'b', 2.0))
    monkeypatch.setattr(zoo, 'prompt_adherence', lambda *a: {'x': 1.0})
    monkeypatch.setattr(zoo, '_generated_fd', lambda *a: 3.0)
    assert zoo._per_scale('chest', None, None, (1.0,), 2, 1, 0, (1, 2), 0) == [(1.0, None, {'adherence_x': 1.0}, 1.5)]
    with pytest.raises(ValueError, match='guidance scales >= 1'): zoo._per_scale('chest', None, None, (0.99,), 2, 1, 0, (1, 2), 0)


# Z29: select_guidance records the FD ratio rounded to 3 decimals, as select_snapshot does (compared unrounded)
def test_select_guidance_records_fd_to_three_decimals(monkeypatch):
    monkeypatch.setattr(zoo, '_per_scale', lambda *a, **k: [(2.0, None, {'adherence_x': 0.95}, 1.23456), (3.0, None, {'adherence_x': 0.95}, 1.5)])
    rows = zoo.select_guidance('chest', None, (2.0, 3.0))
    assert [r['validation_fd_ratio'] for r in rows] == [1.235, 1.5]


# Z34: vae_from must match the recipe's whole shape: channels, latent channels AND block widths
def test_vae_for_recipe_refuses_other_block_widths(tmp_path):
    from diffusers import AutoencoderKL
    r = zoo.RECIPES['chest']
    AutoencoderKL(in_channels=r['channels'], out_channels=r['channels'], latent_channels=r['latent_channels'], block_out_channels=(32, 64),
                  down_block_types=('DownEncoderBlock2D',) * 2, up_block_types=('UpDecoderBlock2D',) * 2).save_pretrained(tmp_path / 'v')
    with pytest.raises(ValueError, match=r"block_out_channels': \[32, 64\]"): zoo.vae_for_recipe(r, tmp_path / 'v')


# Z38, Z39: the autoencoder stage is the data (channels, size, n_images, data_seed), the latent channels and EVERY vae_* field;
# so a resume with another data_seed or another vae_* field is refused
def test_vae_stage_holds_the_data_and_every_vae_field(tmp_path):
    r = zoo.RECIPES['skin']
    s = zoo._vae_stage('skin', r)
    want = {'model', 'channels', 'size', 'n_images', 'data_seed', 'latent_channels'} | {k for k in r if k.startswith('vae_')}
    assert set(s) == want and s['model'] == 'skin' and s['vae_blocks'] == [32, 64, 64] and s['vae_decoder_steps'] == [2000, 2000]
    for k, v in (('data_seed', 1), ('vae_oversample', {}), ('vae_crop', 16)):
        with pytest.raises(ValueError, match=f'another recipe: {k}'): zoo._check_vae_stage(tmp_path, {'recipe': s}, zoo._vae_stage('skin', dict(r, **{k: v})))


# Z41, Z42: select_every is a number of steps in [1, unet_steps]: unet_steps itself passes that check, -1 does not
def test_select_every_bounds(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, 'zoo_phantom', lambda *a, **k: pytest.fail('rendered data: the refusal came too late'))
    with pytest.raises(ValueError, match='select_every=-1'): zoo.train_zoo_model('chest', tmp_path / 'o', unet_steps=3, select_every=-1)
    with pytest.raises(ValueError, match='inside out_dir'):  # past the select_every check, to the next refusal (no training)
        zoo.train_zoo_model('chest', tmp_path / 'out', work_dir=tmp_path / 'out' / 'w', unet_steps=3, select_every=3)


# Z43: the default work folder is out_dir/../_train_<name> (a resumable run finds it there); shown by a refusal on a history written by hand
def test_default_work_folder_is_beside_out_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, 'zoo_phantom', lambda *a, **k: pytest.fail('rendered data: the work folder was not the default one'))
    work = tmp_path / '_train_chest'; (work / 'vae').mkdir(parents=True); (work / 'vae' / 'config.json').write_text('{}')
    (work / 'vae_history.json').write_text(json.dumps({'loss': [], 'seconds': 0.0, 'recipe': dict(zoo._vae_stage('chest', zoo.RECIPES['chest']), vae_steps=1)}))
    with pytest.raises(ValueError, match=r"work_dir='.*_train_chest' holds an autoencoder trained by another recipe: vae_steps=3000 \(saved with 1\)"):
        zoo.train_zoo_model('chest', tmp_path / 'out')


# Z2, Z44, Z45, Z46, Z47, Z49: one run with its training stages stubbed: the recipe table is left alone, the data cache is named by
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
