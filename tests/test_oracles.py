"Tests for medcf.oracles: input checks, specs, determinism, checkpoint files (sha256), the LiT scores, shipped oracles."
import json, re, types, warnings, numpy as np, pandas as pd, pytest, torch
from medcf.phantoms import SCMPhantom, Variable, ChestPhantom
from medcf import oracles as O

torch.set_num_threads(1)

class Toy(SCMPhantom):
    "A tiny 1-channel SCM: a binary bright square, a 3-valued position and a continuous brightness."
    channels = 1
    def _variables(self):
        return [Variable('square', [0, 1], mechanism=lambda p, u: (u < 0.5).astype(int)),
                Variable('pos', ['left', 'mid', 'right'], mechanism=lambda p, u: np.array(['left', 'mid', 'right'])[u]),
                Variable('level', None, range=(0.0, 1.0), parents=('square',), mechanism=lambda p, u: u),
                Variable('hidden', [0, 1], observed=False, mechanism=lambda p, u: u)]
    def _draw_noise(self, rng, n):
        return dict(square=rng.uniform(0, 1, n), pos=rng.integers(0, 3, n), level=rng.uniform(0, 1, n), hidden=rng.integers(0, 2, n))
    def _render(self, v, noise):
        s = self.size; x = torch.full((len(v), 1, s, s), -1.0)
        for i, r in enumerate(v.itertuples()):
            x[i] += 0.5 * r.level
            if r.square: c = {'left': 0, 'mid': s // 3, 'right': 2 * s // 3}[r.pos]; x[i, 0, s // 3:2 * s // 3, c:c + s // 3] = 1.0
        return x.clamp(-1, 1)
    def _prompt(self, row): return f"{'A square' if row['square'] else 'Nothing'} on the {row['pos']}"

@pytest.fixture(scope='module')
def toy(): return Toy(size=32)

@pytest.fixture(scope='module')
def tiny(toy): return O.train_oracle(toy, steps=3, batch_size=8, n_train=32, eval_n=16, seed=0)

def test_check_images_rejects_bad_input():
    with pytest.raises(TypeError, match='torch.Tensor'): O.check_images([[1.0]])
    with pytest.raises(ValueError, match='rank 4'): O.check_images(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match='empty'): O.check_images(torch.zeros(0, 1, 8, 8))
    with pytest.raises(ValueError, match='expected 1'): O.check_images(torch.zeros(2, 3, 8, 8), channels=1)
    with pytest.raises(TypeError, match='dtype'): O.check_images(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match='NaN'): O.check_images(torch.full((1, 1, 8, 8), float('nan')))
    with pytest.raises(ValueError, match=r'\[-1, 1\]'): O.check_images(torch.full((1, 1, 8, 8), 255.0))
    assert O.check_images(np.full((2, 1, 8, 8), -0.5, np.float32)).shape == (2, 1, 8, 8)
    with pytest.warns(UserWarning, match=r'images in \[0, 1\]\?'): O.check_images(torch.rand(2, 1, 8, 8))  # passes the range, reads wrong

def test_attr_specs_kinds(toy):
    specs = {s.name: s for s in O.attr_specs(toy)}
    assert set(specs) == {'square', 'pos', 'level'}  # the hidden variable is not read
    assert (specs['square'].kind, specs['pos'].kind, specs['level'].kind) == ('binary', 'categorical', 'continuous')
    assert specs['pos'].n_out == 3 and specs['square'].n_out == 1

def test_encode_targets_checks_columns_and_values(toy):
    specs = O.attr_specs(toy)
    b = toy.sample(4, seed=0)
    t = O.encode_targets(specs, b.attrs)
    assert t.shape == (4, 3) and set(t[:, 0].tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match='lacks'): O.encode_targets(specs, b.attrs.drop(columns='pos'))
    bad = b.attrs.copy(); bad['pos'] = 'up'
    with pytest.raises(ValueError, match='not one of'): O.encode_targets(specs, bad)

def test_training_is_deterministic(toy):
    a = O.train_oracle(toy, steps=2, batch_size=4, n_train=16, eval_n=8, seed=3)
    b = O.train_oracle(toy, steps=2, batch_size=4, n_train=16, eval_n=8, seed=3)
    for (k, v), w in zip(a.net.state_dict().items(), b.net.state_dict().values()): assert torch.equal(v, w), k
    for key in ('data_seed', 'steps', 'wall_time_s', 'hardware', 'heldout'): assert key in a.card

def test_noise_augmented_training(toy):
    "noise_std trains on noisy copies (other weights than without it), is recorded in the card, and is range-checked."
    kw = dict(steps=2, batch_size=4, n_train=16, eval_n=8, seed=3)
    a, b = O.train_oracle(toy, **kw), O.train_oracle(toy, noise_std=0.05, **kw)
    assert b.card['noise_std'] == 0.05 and 'noise_std=0.05' in b.card['recipe'] and 'noise_std' not in a.card['recipe']
    assert any(not torch.equal(v, w) for v, w in zip(a.net.state_dict().values(), b.net.state_dict().values()))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match='noise_std'): O.train_oracle(toy, noise_std=bad, **kw)

def test_noise_agreement(tiny, toy):
    x = toy.sample(6, seed=2).images
    agree = O.noise_agreement(tiny, x, 0.01, seed=0)
    assert set(agree.index) == {'square', 'pos'} and ((agree >= 0) & (agree <= 1)).all()  # discrete attributes only
    assert agree.equals(O.noise_agreement(tiny, x, 0.01, seed=0))  # seeded
    with pytest.raises(ValueError, match='noise_std=0.0: expected a positive'): O.noise_agreement(tiny, x, 0.0)
    assert O.reading_agreement(tiny, x, x).eq(1.0).all()  # an image always agrees with itself
    with pytest.raises(ValueError, match='one changed copy per image'): O.reading_agreement(tiny, x, x[:3])

def test_predict_probs_features_shapes(tiny, toy):
    b = toy.sample(5, seed=1)
    p = tiny.predict(b.images)
    assert list(p.columns) == ['square', 'pos', 'level'] and len(p) == 5
    assert set(p['pos']) <= {'left', 'mid', 'right'} and set(p['square']) <= {0, 1}
    pr = tiny.probs(b.images)
    assert np.allclose(pr[['pos=left', 'pos=mid', 'pos=right']].sum(axis=1), 1, atol=1e-5)
    assert tiny.features(b.images).shape == (5, tiny.net.head.in_features)
    assert len(tiny.predict(Toy(size=64).sample(2, seed=0).images)) == 2  # other sizes are resized
    with pytest.raises(ValueError, match='channel'): tiny.predict(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match='rank 4'): tiny.predict(torch.zeros(32, 32))

def test_logits_are_differentiable_on_request(tiny, toy):
    x = toy.sample(2, seed=2).images.requires_grad_(True)
    tiny.logits(x, grad=True)['square'].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0

def test_checkpoint_roundtrip_and_corruption(tiny, toy, tmp_path):
    tiny.save(tmp_path)
    o2 = O.AttributeOracle.load(tmp_path)
    b = toy.sample(6, seed=4)
    assert (o2.predict(b.images)[['square', 'pos']] == tiny.predict(b.images)[['square', 'pos']]).all().all()
    card = json.loads((tmp_path / 'attributes.json').read_text())
    assert card['sha256'] == O.file_sha256(tmp_path / 'attributes.safetensors') and card['card_sha256'] == O.card_digest(card)
    for field, value in [('size', card['size'] * 2), ('specs', card['specs'][::-1])]:  # an edited card would read the weights wrongly
        (tmp_path / 'attributes.json').write_text(json.dumps({**card, field: value}, indent=1))
        with pytest.raises(ValueError, match='was edited'): O.AttributeOracle.load(tmp_path)
    (tmp_path / 'attributes.json').write_text(json.dumps({k: v for k, v in card.items() if k != 'card_sha256'}, indent=1))
    with pytest.warns(UserWarning, match='records no card_sha256'): O.AttributeOracle.load(tmp_path)  # an older card loads, unchecked, and says so
    (tmp_path / 'attributes.json').write_text(json.dumps(card, indent=1))
    raw = bytearray((tmp_path / 'attributes.safetensors').read_bytes()); raw[-5] ^= 0xFF
    (tmp_path / 'attributes.safetensors').write_bytes(bytes(raw))
    with pytest.raises(ValueError, match='corrupt'): O.AttributeOracle.load(tmp_path)
    with pytest.raises(FileNotFoundError): O.AttributeOracle.load(tmp_path, 'nothing')
    (tmp_path / 'attributes.json').write_text('{not json')
    with pytest.raises(ValueError, match='not valid JSON'): O.AttributeOracle.load(tmp_path)

def test_save_refuses_to_replace_a_checkpoint(tiny, tmp_path):
    "A second save under the same name is refused (nothing written) unless overwrite=True; another name is fine."
    tiny.save(tmp_path); before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match="save_checkpoint would write over .*attributes.safetensors.*overwrite=True"): tiny.save(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    (tmp_path / 'attributes.safetensors').unlink()  # half a checkpoint (the card alone) is refused as well
    with pytest.raises(FileExistsError, match='attributes.json'): tiny.save(tmp_path)
    tiny.save(tmp_path, overwrite=True); tiny.save(tmp_path, 'other')
    assert O.AttributeOracle.load(tmp_path).card['sha256'] == O.AttributeOracle.load(tmp_path, 'other').card['sha256']

def test_load_oracle_unknown_name():
    with pytest.raises(ValueError, match='neither'): O.load_oracle('no-such-oracle')
    with pytest.raises(TypeError, match='name must be a zoo name'): O.load_oracle(3)

def test_text_tower_cache_and_norm():
    tt = O.text_tower()
    e = tt.encode(['Chest X-ray', 'Chest X-ray showing Pleural Effusion', 'Chest X-ray'])
    assert e.shape == (3, 384) and torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.equal(e[0], e[2]) and 'Chest X-ray' in tt.cache
    with pytest.raises(TypeError): tt.encode([])

def test_lit_scores_and_errors(toy, tmp_path):
    lit = O.train_lit(toy, steps=2, batch_size=8, n_train=16, eval_n=8)
    b = toy.sample(4, seed=5)
    s = lit.image_text_score(b.images, b.prompts)
    assert s.shape == (4,) and (s.abs() <= 1 + 1e-5).all()
    d = lit.direction_score(b.images, b.images.flip(-1), 'Nothing on the left', 'A square on the left')
    assert d.shape == (4,)
    i, t = lit.image_embed(b.images), lit.text_embed(b.prompts)  # the values, by their definitions (a sign flip or a swap fails)
    assert torch.allclose(s, (i * t).sum(-1), atol=1e-5)
    dt = lit.text_embed(['A square on the left']) - lit.text_embed(['Nothing on the left'])
    assert torch.allclose(d, torch.nn.functional.cosine_similarity(lit.image_embed(b.images.flip(-1)) - i, dt.expand_as(i), dim=-1), atol=1e-5)
    with pytest.raises(ValueError, match='texts'): lit.image_text_score(b.images, b.prompts[:2])
    with pytest.raises(ValueError, match='at least two'): lit.zero_shot(b.images, ['one'])
    lit.save(tmp_path)
    with pytest.raises(FileExistsError, match='lit.safetensors'): lit.save(tmp_path)  # a second save is refused...
    lit.save(tmp_path, overwrite=True)  # ...unless asked for
    l2 = O.LiTModel.load(tmp_path)
    assert torch.allclose(l2.image_embed(b.images), lit.image_embed(b.images), atol=1e-2)
    with pytest.raises(ValueError, match='not an attribute oracle'): O.AttributeOracle.load(tmp_path, 'lit')
    assert not any(p.requires_grad for p in l2.net.parameters())  # a judge: a guidance backward fills no weight's .grad ...
    x = b.images.clone().requires_grad_(True); l2.image_embed(x, grad=True).sum().backward()
    assert x.grad.abs().sum() > 0  # ... and still reaches the images


def test_lit_refuses_captions_it_would_misread(toy):
    "A dict of class captions was scored by its keys ('no', 'yes'); None failed with a bare TypeError; identical source and target captions scored 0 without a word."
    lit = O.train_lit(toy, steps=1, batch_size=8, n_train=8, eval_n=8)
    b = toy.sample(4, seed=5)
    with pytest.raises(TypeError, match=r'got a dict.*list\(d.values\(\)\)'): lit.zero_shot(b.images, {'no': 'Nothing on the left', 'yes': 'A square on the left'})
    with pytest.raises(TypeError, match='got a dict'): O.zero_shot_accuracy(lit, b.images, [0, 1, 0, 1], {'a': 'x', 'b': 'y'})
    with pytest.raises(TypeError, match='texts must be a caption or a list of captions, got NoneType'): lit.image_text_score(b.images, None)
    with pytest.raises(TypeError, match='src_text must be'): lit.direction_score(b.images, b.images, None, 'b')
    with pytest.raises(TypeError, match='tgt_text must hold captions .*got int'): lit.direction_score(b.images, b.images, 'a', ['b', 1, 'c', 'd'])
    with pytest.warns(UserWarning, match='equals src_text for 2 of 4'): d = lit.direction_score(b.images, b.images.flip(-1), ['a', 'b', 'c', 'd'], ['a', 'x', 'c', 'y'])
    assert (d[[0, 2]] == 0).all() and d.shape == (4,)
    assert lit.zero_shot(b.images, np.array(['Nothing on the left', 'A square on the left'])).shape == (4, 2)  # an array of captions is a list of them
    for blank in ('', ['a', '  ']):  # a blank caption scored about 0 against any image
        with pytest.raises(ValueError, match=r'texts has blank captions at \[\d\]'): lit.image_text_score(b.images[:len(blank) if isinstance(blank, list) else 1], blank)
    with pytest.raises(ValueError, match='class_texts has blank captions'): lit.zero_shot(b.images, ['x', ''])

RELIABLE = {'chest': ['sex', 'effusion', 'cardiomegaly', 'devices', 'view'],
            'skin': ['skin_tone', 'variegation', 'hair', 'ruler', 'ink', 'bubbles', 'dark_corners']}

@pytest.mark.parametrize('name', ['chest', 'skin'])
def test_shipped_oracle_reads_fresh_phantoms(name):
    from medcf import phantoms as P
    cls = {'chest': 'ChestPhantom', 'skin': 'SkinPhantom'}[name]
    if not hasattr(P, cls): pytest.skip(f"{cls} not available")
    o = O.load_oracle(name)
    assert o.card['sha256'] == O.file_sha256(O.data_path('oracles', name, 'attributes.safetensors'))
    b = getattr(P, cls)().sample(200, seed=7_000_000)
    acc = o.evaluate(b.images, b.attrs).set_index('attribute').value
    low = {a: acc[a] for a in RELIABLE[name] if acc[a] < 0.95}
    assert not low, f"shipped {name} oracle below 95% on fresh phantoms: {low}"

@pytest.mark.parametrize('name', ['chest', 'skin'])
def test_shipped_lit_loads(name):
    lit = O.load_lit(name)
    assert lit.card['kind'] == 'lit' and lit.net.head.out_features == 384
    x = torch.full((2, lit.channels, 64, 64), -0.5)
    assert lit.image_embed(x).shape == (2, 384)


def test_perceptual_distance(tiny, toy):
    "Zero on identical images, positive otherwise, differentiable, one value per image; mismatched or wrong-channel input refused."
    x = toy.sample(4, seed=1).images
    was = tiny.net.training, [q.requires_grad for q in tiny.net.parameters()]
    tiny.net.train().requires_grad_(True)  # an oracle someone is still training
    d = O.PerceptualDistance(tiny)
    assert tiny.net.training and all(q.requires_grad for q in tiny.net.parameters())  # the wrapped oracle is left as it was
    assert not d.net.training and not any(q.requires_grad for q in d.net.parameters())  # the copy that measures is frozen
    tiny.net.train(was[0]); [q.requires_grad_(r) for q, r in zip(tiny.net.parameters(), was[1])]
    assert torch.allclose(d(x, x), torch.zeros(4), atol=1e-6)
    y = x.flip(0).clone().requires_grad_(True)
    out = d(y, x); out.sum().backward()
    assert out.shape == (4,) and (out[[0, 3]] > 0).all() and y.grad.abs().sum() > 0
    assert [m.shape[-1] for m in O.feature_maps(tiny.net, x)] == [32, 16, 8, 4]  # the stem, then each halving stage
    with pytest.raises(ValueError, match='same shape'): d(x[:2], x)
    with pytest.raises(ValueError, match='3 channel'): d(x.repeat(1, 3, 1, 1), x.repeat(1, 3, 1, 1))
    with pytest.raises(ValueError, match='NaN'): d(torch.full_like(x, float('nan')), x)  # was a NaN distance
    assert torch.isfinite(d(x * 1.3, x)).all()  # an unclamped reconstruction overshooting [-1, 1] is what a training loss compares
    with pytest.raises(TypeError, match='AttributeOracle'): O.PerceptualDistance(tiny.net)


def test_mistakes_that_read_as_numbers(tiny, toy, tmp_path):
    "Inputs that used to give a plausible figure (or a raw torch error) now say what is wrong."
    b = toy.sample(6, seed=2)
    with pytest.raises(ValueError, match="pos='[A-Z]+' is not one of"): tiny.evaluate(b.images, b.attrs.assign(pos=b.attrs.pos.str.upper()))
    with pytest.raises(ValueError, match='level holds NaN'): tiny.evaluate(b.images, b.attrs.assign(level=np.nan))
    with pytest.raises(ValueError, match='lacks the column'): tiny.evaluate(b.images, b.attrs.drop(columns='square'))
    for bs in (0, -1, 2.5):
        with pytest.raises(ValueError, match='batch_size'): tiny.predict(b.images, batch_size=bs)
    with pytest.raises(ValueError, match='size'): O.resize_images(b.images, 0)
    lit = O.train_lit(toy, steps=1, batch_size=8, n_train=8, eval_n=8)
    with pytest.raises(TypeError, match='ordered list'): lit.zero_shot(b.images, 'A square on the left')  # was 21 one-letter classes
    with pytest.raises(TypeError, match='ordered list'): lit.zero_shot(b.images, {'a', 'b'})
    with pytest.raises(ValueError, match='hidden variable'): O.caption_swap_accuracy(lit, toy, b, 'hidden')  # was NaN, as if captions just never said it
    with pytest.raises(ValueError, match='1-d array of integer'): O.zero_shot_accuracy(lit, b.images, np.zeros((6, 1), int), ['a', 'b'])
    with pytest.raises(ValueError, match='1-d array of integer'): O.zero_shot_accuracy(lit, b.images, [0.5] * 6, ['a', 'b'])
    with pytest.raises(TypeError, match=r"card\['bad'\] is a object"): O.save_checkpoint(tiny.net, tmp_path / 'c', 'x', {'n': 2, 'bad': object()})
    assert not (tmp_path / 'c').exists()  # no orphan weights file
    O.save_checkpoint(tiny.net, tmp_path / 'd', 'x', {'n': np.int64(3), 'acc': np.float32(0.5), 'seeds': np.arange(2), 'where': tmp_path})
    card = json.loads((tmp_path / 'd' / 'x.json').read_text())  # numpy values as numbers, a path as text
    assert (card['n'], card['acc'], card['seeds'], card['where']) == (3, 0.5, [0, 1], str(tmp_path)) and card['card_sha256'] == O.card_digest(card)


def test_training_pieces_check_their_input(toy, monkeypatch):
    "Specs, losses and the training call name a wrong shape or setting instead of failing deep inside torch (or after training)."
    with pytest.raises(ValueError, match="kind='binay'"): O.AttrSpec('x', 'binay', [0, 1])
    with pytest.raises(ValueError, match='range'): O.AttrSpec('age', 'continuous')
    specs = O.attr_specs(toy); width = sum(s.n_out for s in specs)
    with pytest.raises(ValueError, match=f'N x {width}'): O.oracle_loss(specs, torch.zeros(4, width + 1), torch.zeros(4, len(specs)))
    with pytest.raises(ValueError, match='target has shape'): O.oracle_loss(specs, torch.zeros(4, width), torch.zeros(3, len(specs)))
    e = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    with pytest.raises(ValueError, match='caption_ids'): O.lit_loss(e, e, torch.arange(4)[:, None], torch.tensor(10.))  # (N,1) broadcast to N x N
    with pytest.raises(ValueError, match='n=0'): O.phantom_pool(toy, 0, seed=0)
    monkeypatch.setattr(O, 'phantom_pool', lambda *a, **k: (_ for _ in ()).throw(AssertionError('rendered data before checking eval_n')))
    with pytest.raises(ValueError, match='eval_n=0'): O.train_oracle(toy, steps=3, batch_size=8, eval_n=0)


def test_attribute_saliency(tiny, toy):
    "Mean |d reading / d pixel| scaled to mean 1: equals the gradient by hand, any batch size, every kind; bad input refused."
    x = toy.sample(6, seed=3).images
    m = O.attribute_saliency(tiny, x, 'level')
    xg = x.clone().requires_grad_(True)
    g, = torch.autograd.grad(tiny.logits(xg, grad=True)['level'].sum(), xg)
    by_hand = g.abs().sum((0, 1)); by_hand = by_hand / by_hand.mean()
    assert m.shape == (32, 32) and torch.allclose(m, by_hand, atol=1e-5) and abs(float(m.mean()) - 1) < 1e-5
    assert torch.allclose(O.attribute_saliency(tiny, x, 'level', batch_size=4), m, atol=1e-5)
    xg = x.clone().requires_grad_(True); z = tiny.logits(xg, grad=True)['pos']
    g, = torch.autograd.grad(torch.log_softmax(z, 1).gather(1, z.argmax(1, keepdim=True)).sum(), xg)  # categorical: log-probability of the class read
    by_hand = g.abs().sum((0, 1)); assert torch.allclose(O.attribute_saliency(tiny, x, 'pos'), by_hand / by_hand.mean(), atol=1e-5)
    xg = x.clone().requires_grad_(True); g, = torch.autograd.grad(tiny.logits(xg, grad=True)['square'].sum(), xg)  # binary: the logit
    by_hand = g.abs().sum((0, 1)); assert torch.allclose(O.attribute_saliency(tiny, x, 'square'), by_hand / by_hand.mean(), atol=1e-5)
    with pytest.raises(TypeError, match='AttributeOracle'): O.attribute_saliency(tiny.net, x, 'level')
    with pytest.raises(ValueError, match=r"name='hidden': this oracle reads \['square', 'pos', 'level'\]"): O.attribute_saliency(tiny, x, 'hidden')
    with pytest.raises(ValueError, match="expected the oracle's size 32 x 32"): O.attribute_saliency(tiny, Toy(size=64).sample(2, seed=0).images, 'level')
    with pytest.raises(ValueError, match='channel'): O.attribute_saliency(tiny, torch.zeros(2, 3, 32, 32), 'level')
    with pytest.raises(ValueError, match='batch_size'): O.attribute_saliency(tiny, x, 'level', batch_size=0)
    import copy
    flat = copy.deepcopy(tiny); torch.nn.init.zeros_(flat.net.head.weight)  # a head that ignores its features
    with pytest.raises(ValueError, match="the 'level' reading does not change with any pixel"): O.attribute_saliency(flat, x, 'level')


def test_chest_age_is_read_at_the_aortic_knob():
    "The shipped chest oracle's age saliency peaks at the aortic knob (rows 14-23, columns 33-43 at 64 px), which the phantom grows with age."
    from medcf.phantoms import ChestPhantom
    m = O.attribute_saliency(O.load_oracle('chest'), ChestPhantom(size=64).sample(64, seed=5).images, 'age')
    r, c = divmod(int(m.argmax()), 64)
    assert 14 <= r <= 23 and 33 <= c <= 43 and float(m[14:24, 33:44].sum() / m.sum()) > 0.3


def test_reading_distance(tiny, toy):
    "Distances between readings in the attribute's units: |value| for continuous, |probability| for binary, half-L1 of class probabilities; checked input."
    a, b = toy.sample(6, seed=4).images, toy.sample(6, seed=5).images
    pa, pb = tiny.probs(a), tiny.probs(b)
    d = O.ReadingDistance(tiny, 'level')(a, b)
    lv = next(s for s in tiny.specs if s.name == 'level')
    za, zb = tiny.logits(a)['level'], tiny.logits(b)['level']
    assert torch.allclose(d, (za - zb).abs() * (lv.range[1] - lv.range[0]), atol=1e-6)  # unclamped, in the attribute's units
    assert np.allclose(O.ReadingDistance(tiny, 'square')(a, b).numpy(), (pa.square - pb.square).abs(), atol=1e-5)
    cols = ['pos=left', 'pos=mid', 'pos=right']
    assert np.allclose(O.ReadingDistance(tiny, 'pos')(a, b).numpy(), 0.5 * np.abs(pa[cols].to_numpy() - pb[cols].to_numpy()).sum(1), atol=1e-5)
    assert O.ReadingDistance(tiny, 'level')(a, a).abs().max() < 1e-6
    import copy; live = copy.deepcopy(tiny); live.net.requires_grad_(True)  # an oracle being fine-tuned (train_oracle returns it frozen, as load_oracle does)
    before = [None if p.grad is None else p.grad.clone() for p in live.net.parameters()]
    assert any(p.requires_grad for p in live.net.parameters())
    x = a.clone().requires_grad_(True); O.ReadingDistance(live, 'level')(x, b).sum().backward(); assert x.grad.abs().sum() > 0
    after = [p.grad for p in live.net.parameters()]
    assert all((u is None and v is None) or (u is not None and v is not None and torch.equal(u, v)) for u, v in zip(before, after))  # a frozen copy reads: the oracle's weights get no gradient
    r = O.ReadingDistance(tiny, 'level')
    assert np.allclose(r.read(a).clamp(lv.range[0], lv.range[1]).numpy(), pa.level, atol=1e-5)  # read(): predict's value before its clamp
    assert np.allclose(O.ReadingDistance(tiny, 'square').read(a).numpy(), pa.square, atol=1e-5)
    with pytest.raises(ValueError, match='channel'): r.read(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="name='hidden': this oracle reads"): O.ReadingDistance(tiny, 'hidden')
    with pytest.raises(TypeError, match='AttributeOracle'): O.ReadingDistance(tiny.net, 'level')
    with pytest.raises(ValueError, match='expected images of the same shape'): O.ReadingDistance(tiny, 'level')(a[:2], b)
    with pytest.raises(ValueError, match='channel'): O.ReadingDistance(tiny, 'level')(torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 32, 32))
    big = torch.nn.functional.interpolate(a, scale_factor=2, mode='bilinear')  # a read at another size is resized, as predict resizes, and says so as predict does
    with pytest.warns(UserWarning, match=f'trained at {tiny.size}x{tiny.size} and resizes'): r.read(big)
    with pytest.warns(UserWarning, match='and resizes'): r(big, big)


def test_train_oracle_refuses_a_learning_rate_or_pool_it_cannot_use():
    "lr=inf trained an oracle with NaN weights whose card looked plausible; n_train=0 was replaced by the default."
    from medcf.oracles import train_oracle
    from medcf.phantoms import ChestPhantom
    ph = ChestPhantom(size=16)
    for lr in (float('inf'), 0.0, -1e-3):
        with pytest.raises(ValueError, match='lr='): train_oracle(ph, steps=1, batch_size=2, lr=lr, eval_n=4)
    with pytest.raises(ValueError, match='n_train=0'): train_oracle(ph, steps=1, batch_size=2, n_train=0, eval_n=4)


def test_predict_refuses_non_finite_outputs():
    "An oracle whose weights are NaN used to read NaN logits as confident labels (0, or the first category)."
    from medcf.oracles import load_oracle
    from medcf.phantoms import ChestPhantom
    o = load_oracle('chest'); x = ChestPhantom(size=64).sample(2, seed=0).images
    p = next(o.net.parameters())
    old = p.detach().clone()
    try:
        with torch.no_grad(): p.fill_(float('nan'))
        with pytest.raises(ValueError, match='NaN or inf'): o.predict(x)
    finally:
        with torch.no_grad(): p.copy_(old)
    assert len(o.predict(x)) == 2


def test_text_tower_says_when_it_truncates():
    from medcf.oracles import TextTower
    tt = TextTower()
    long = 'chest x-ray, ' * 40
    with pytest.warns(UserWarning, match='the text tower keeps the first 64'): tt.encode([long + 'no effusion'])  # the public call


def test_long_prompt_warns():
    from medcf.diffusion import build_pipeline, encode_prompts
    p = build_pipeline(channels=1, size=32, vae_blocks=(8, 8, 16), unet_blocks=(16, 32), seed=0)
    with pytest.warns(UserWarning, match='the tokenizer .* keeps the first'): encode_prompts(p, ['chest x-ray, ' * 40], cache=False)


def test_noise_agreement_moves_with_noise_and_seed():
    "With the shipped chest oracle: strong noise flips readings (agreement < 1) and the seed decides which (the tiny oracle read 1.0 at any noise)."
    from medcf.phantoms import ChestPhantom
    o, x = O.load_oracle('chest'), ChestPhantom(size=64).sample(64, seed=4).images
    a0, a1 = O.noise_agreement(o, x, 0.3, seed=0), O.noise_agreement(o, x, 0.3, seed=1)
    assert (a0 < 1).any() and a0.equals(O.noise_agreement(o, x, 0.3, seed=0)) and not a0.equals(a1)
    assert (O.noise_agreement(o, x, 1e-6, seed=0) == 1).all()  # no noise to speak of: every reading kept


# ---- read-only audit of the oracles and the zoo helpers, session 26 ----

def test_binary_spec_values_must_be_zero_one():
    "A binary spec with other labels was accepted: predict said 0/1, evaluate compared with the labels, a perfect oracle scored 0.0."
    with pytest.raises(ValueError, match=r"binary attribute's values are \[0, 1\].*'no', 'yes'"): O.AttrSpec('finding', 'binary', ['no', 'yes'])
    with pytest.raises(ValueError, match=r"binary attribute's values are \[0, 1\]"): O.AttrSpec('finding', 'binary', [1, 0])  # predictions came out flipped
    assert O.AttrSpec('finding', 'binary', [0, 1]).n_out == 1 and O.AttrSpec('finding', 'categorical', ['no', 'yes']).n_out == 2


def test_oracle_says_when_it_resizes(tiny, toy):
    "Images of another size were resized without a word (a 32-px set read by a 64-px chest oracle: age error 1.5 -> 10.7 years)."
    b = toy.sample(2, seed=1)
    with pytest.warns(UserWarning, match='images are 16x16; this oracle was trained at 32x32'): tiny.predict(b.images[..., ::2, ::2])
    import warnings
    with warnings.catch_warnings(): warnings.simplefilter('error'); tiny.predict(b.images)  # the trained size: silent


def test_lit_and_caption_swap_check_early(toy, monkeypatch):
    "train_lit checked eval_n only after training; caption_swap_accuracy raised a bare 'x is not in list' for an unknown value."
    lit = O.train_lit(toy, steps=1, batch_size=8, n_train=16, eval_n=8)
    def no_training(*a, **k): raise AssertionError('training started before eval_n was checked')
    monkeypatch.setattr(O.torch.optim, 'AdamW', no_training)
    with pytest.raises(ValueError, match='eval_n=0'): O.train_lit(toy, steps=2, batch_size=8, n_train=16, eval_n=0)
    monkeypatch.undo()
    b = toy.sample(3, seed=2); b.attrs.loc[0, 'pos'] = 'up'
    with pytest.raises(ValueError, match=r"holds \['up'\], not among Toy's values"): O.caption_swap_accuracy(lit, toy, b, 'pos')


def test_shipped_cards_are_checked():
    "Every shipped oracle and LiT card records its own sha256, and loads without a warning."
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for name in ('chest', 'skin'):
            for c in (O.load_oracle(name).card, O.load_lit(name).card): assert c['card_sha256'] == O.card_digest(c)
        assert O.load_perceptual('chest').card['card_sha256'] == O.card_digest(O.load_perceptual('chest').card)


def test_a_loaded_oracle_is_a_frozen_judge_that_can_read_raw_decoder_output():
    "load_oracle freezes the weights (guidance's backward fills no .grad), gradients still reach the images; bounded=False reads an overshooting decoder output, and the range error says how to fix one."
    from medcf.oracles import load_oracle
    o = load_oracle('chest')
    assert not any(q.requires_grad for q in o.net.parameters())
    x = (torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2.2 - 1.1).requires_grad_(True)
    with pytest.raises(ValueError, match='clamp it'): o.logits(x, grad=True)
    o.logits(x, grad=True, bounded=False)['effusion'].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and all(q.grad is None for q in o.net.parameters())
    assert o.features(x.detach(), bounded=False).shape[0] == 2
    with pytest.raises(ValueError, match=r'x/127.5-1'): o.logits(torch.full((1, 1, 64, 64), 200.0))


def test_train_lit_on_other_captions(toy):
    "train_lit(captions=...) trains on the captions a function writes from the pool's attributes, records it in the recipe, and refuses a wrong count."
    import functools
    seen = []
    def shout(attrs): seen.append(len(attrs)); return [f'caption {i % 3}' for i in range(len(attrs))]
    lit = O.train_lit(toy, steps=1, batch_size=8, n_train=16, eval_n=8, captions=shout)
    assert seen == [16] and lit.card['n_captions'] == 3 and 'captions=' in lit.card['recipe'] and '0x' not in lit.card['recipe']
    assert "measured with the phantom's own captions" in lit.card['zero_shot_captions']  # its zero-shot scores read other captions than it trained on: said
    with pytest.raises(ValueError, match=r'one non-empty caption per row \(16\); got 15'): O.train_lit(toy, steps=1, batch_size=8, n_train=16, eval_n=8, captions=lambda a: ['x'] * 15)
    with pytest.raises(ValueError, match="got '' among them"): O.train_lit(toy, steps=1, batch_size=8, n_train=16, eval_n=8, captions=lambda a: [''] * 16)
    with pytest.raises(TypeError, match='returned str'): O.train_lit(toy, steps=1, batch_size=8, n_train=16, eval_n=8, captions=lambda a: 'x')
    series = O.train_lit(toy, steps=1, batch_size=8, n_train=16, eval_n=8, captions=lambda a: a.apply(lambda r: f'caption {r.name % 2}', axis=1))
    assert series.card['n_captions'] == 2  # a Series of captions is one caption per row too
    assert O._describe(functools.partial(shout, 1, k=2)).endswith("shout, 1, k=2)")


@pytest.mark.parametrize('name', ['chest', 'skin'])
def test_caption_mix_is_training_captions_from_attributes(name):
    from medcf import zoo
    b = zoo.zoo_phantom(name).sample(40, seed=3)
    mix = zoo.caption_mix(name, b.attrs, seed=2)
    assert mix == zoo.training_captions(name, b, seed=2)
    assert set(mix) & set(b.prompts) and set(mix) - set(b.prompts)  # both styles drawn


def test_attribute_adherence_reads_back_what_prompts_ask():
    "Per attribute and asked value on the shipped chest model: shares for discrete attributes, |read - asked| for continuous ones; bad tables refused before generating."
    from medcf import zoo
    from medcf.diffusion import load_pipeline
    pipe, oracle, ph = load_pipeline('chest'), O.load_oracle('chest'), zoo.zoo_phantom('chest')
    t = ph.sample_truth(6, seed=3, view='AP')
    df = zoo.attribute_adherence(pipe, oracle, ph.captions(t), t[['view', 'age']], num_inference_steps=3)
    v = df[df.attribute == 'view']
    assert v.asked.tolist() == ['all', 'AP'] and v.n.tolist() == [6, 6] and v.mean_abs_error.isna().all()
    age = df[df.attribute == 'age']
    assert age.asked.tolist() == ['all'] and age.read_as_asked.isna().all() and age.mean_abs_error.iloc[0] > 0
    for bad, err in [(dict(asked=t[['view']].assign(view='lateral')), r"asked\['view'\] holds \['lateral'\]"),
                     (dict(asked=t[['severity']]), r"asked names \['severity'\]"), (dict(prompts=['a'] * 5), '5 prompts for 6 rows'),
                     (dict(asked=t[['view']].assign(view=None)), 'missing values'), (dict(asked=t.view), 'expected a DataFrame'),
                     (dict(prompts=pd.Series(ph.captions(t), index=t.index)[::-1]), 'different indexes'),  # was paired by position: wrong shares, no word
                     (dict(asked=t[['age']].assign(age=t.age * 12)), "outside age's range \\[18, 90\\]")]:  # ages in months
        kw = dict(prompts=ph.captions(t), asked=t[['view']]) | bad
        with pytest.raises((ValueError, TypeError), match=err): zoo.attribute_adherence(pipe, oracle, kw['prompts'], kw['asked'], num_inference_steps=2)


def test_caption_swap_accuracy_with_other_captions():
    "caption_swap_accuracy(captions=fn) scores the swap in any caption style (the papers' short ones here): each image picks between fn's captions for each value."
    import functools
    from medcf import zoo
    lit, ph = O.load_lit('chest'), zoo.zoo_phantom('chest')
    b = ph.sample(24, seed=3)
    acc = O.caption_swap_accuracy(lit, ph, b, 'devices', captions=functools.partial(zoo.paper_prompts, 'chest'))
    i = lit.image_embed(b.images)
    t0, t1 = (lit.text_embed(zoo.paper_prompts('chest', b.attrs.assign(devices=v))).to(i) for v in (0, 1))
    assert acc == float((((i * t1).sum(-1) > (i * t0).sum(-1)).numpy() == b.attrs.devices.to_numpy()).mean())
    assert O.caption_swap_accuracy(lit, ph, b, 'devices', captions=ph.captions) == O.caption_swap_accuracy(lit, ph, b, 'devices')  # the default, by function
    with pytest.raises(ValueError, match=r'expected one per row \(24\)'): O.caption_swap_accuracy(lit, ph, b, 'devices', captions=lambda a: ['x'] * 3)


def test_continuous_values_out_of_range_and_other_bad_input(toy, tiny):
    "Ages in months, a string age, a dict of attrs, a float step count and a negative seed got a silent wrong figure or a message naming a derived value."
    spec = O.AttrSpec('age', 'continuous', range=(18.0, 90.0))
    assert O.check_continuous(spec, [18, 90.0], 'ages').tolist() == [18.0, 90.0]
    with pytest.raises(ValueError, match=r"ages holds 840, outside age's range \[18, 90\]"): O.check_continuous(spec, [30, 840], 'ages')
    with pytest.raises(TypeError, match=r"ages holds <U2 values \('70', ...\) but age is continuous"): O.check_continuous(spec, ['70'], 'ages')
    b = toy.sample(4, seed=0)
    with pytest.raises(ValueError, match=r"level holds 5, outside level's range \[0, 1\]"): O.encode_targets(tiny.specs, b.attrs.assign(level=5.0))
    with pytest.raises(TypeError, match='attrs is a dict; expected a DataFrame'): tiny.evaluate(b.images, b.attrs.to_dict())
    with pytest.raises(ValueError, match=r'seed=-1: expected a non-negative integer'): O.phantom_pool(toy, 4, seed=-1)  # was reported as seed=-100003
    for kw, msg in [(dict(steps=2.0), r'steps=2.0: expected a positive integer'), (dict(seed=0.5), r'seed=0.5: expected a non-negative integer'),
                    (dict(batch_size=1), r'batch_size=1: expected an integer >= 2')]:
        with pytest.raises(ValueError, match=msg): O.train_oracle(toy, **({'steps': 2, 'batch_size': 8} | kw))
        with pytest.raises(ValueError, match=msg): O.train_lit(toy, **({'steps': 2, 'batch_size': 8} | kw))
    with pytest.raises(ValueError, match=r'size=64.9: expected a positive integer'): O.AttributeOracle(tiny.net, tiny.specs, 64.9, 1)


def test_train_oracle_leaves_the_callers_global_generator_alone(toy):
    torch.manual_seed(3); want = torch.rand(2)
    torch.manual_seed(3); a = O.train_oracle(toy, steps=2, batch_size=4, n_train=8, eval_n=4, seed=0)
    assert torch.equal(torch.rand(2), want)
    b = O.train_oracle(toy, steps=2, batch_size=4, n_train=8, eval_n=4, seed=0)
    assert all(torch.equal(x, y) for x, y in zip(a.net.state_dict().values(), b.net.state_dict().values()))


def test_range_hint_inside_guidance():
    "Inside guidance (images that carry a gradient) a decoded prediction slightly past [-1.5, 1.5] was told to rescale 0..1 images; it is told to clamp or pass bounded=False (DeCoDEx prototype)."
    from medcf.oracles import check_images
    x = (torch.linspace(-1.54, 1.26, 64).view(1, 1, 8, 8)).requires_grad_(True)
    with pytest.raises(ValueError, match='bounded=False'): check_images(x, 1)
    with pytest.raises(ValueError, match='x\\*2-1'): check_images(x.detach() * 3, 1)

def test_numpy_views_labels_and_cards(tiny, tmp_path):
    "A flipped numpy view reads like its copy, object arrays are refused by name, bool labels score, and a forged card is named, not a KeyError."
    x = np.random.default_rng(0).uniform(-1, 1, (2, 1, 32, 32))
    assert tiny.predict(x[..., ::-1]).equals(tiny.predict(np.ascontiguousarray(x[..., ::-1])))
    with pytest.raises(TypeError, match='numpy array of dtype object'): tiny.predict(x.astype(object))
    with pytest.raises(ValueError, match='noise_std=inf'): O.noise_agreement(tiny, torch.tensor(x).float(), float('inf'))
    with pytest.raises(ValueError, match='seed=1.5'): O.noise_agreement(tiny, torch.tensor(x).float(), 0.1, seed=1.5)
    class Two:
        def zero_shot(self, images, texts): return torch.tensor([[1., 0.], [0., 1.]])
    for labels in (np.array([0, 1]), np.array([False, True]), [0., 1.]): assert O.zero_shot_accuracy(Two(), x, labels, ['a', 'b']) == 1.0
    with pytest.raises(ValueError, match='integer class indices'): O.zero_shot_accuracy(Two(), x, [0.5, 1.], ['a', 'b'])
    tiny.save(tmp_path, 'o')
    card = json.loads((tmp_path / 'o.json').read_text()); del card['config']['feat_dim']; card['card_sha256'] = O.card_digest(card)
    (tmp_path / 'o.json').write_text(json.dumps(card))
    with pytest.raises(ValueError, match="lacks a field an oracle needs"): O.AttributeOracle.load(tmp_path, 'o')
    (tmp_path / 'o.json').write_text('[1, 2]')
    with pytest.raises(ValueError, match='holds a list; expected a JSON object'): O.AttributeOracle.load(tmp_path, 'o')

def test_train_oracle_options_named(toy):
    "train_oracle's network options are refused by name (an empty widths was an IndexError, feat_dim=0 trained a 0-d oracle)."
    for kw, msg in ((dict(widths=()), 'widths=()'), (dict(widths='abc'), "widths='abc'"), (dict(feat_dim=0), 'feat_dim=0'), (dict(noise_std='0.1'), "noise_std='0.1'")):
        with pytest.raises(ValueError, match=msg): O.train_oracle(toy, steps=1, batch_size=4, n_train=8, eval_n=8, **kw)

def test_save_into_a_file_path_says_so(tiny, tmp_path):
    "oracle.save('dir/attributes.json') with that file present: 'is a file', not a bare 'File exists'."
    tiny.save(tmp_path, 'o')
    with pytest.raises(FileExistsError, match=r'o.json is a file; expected a folder'): tiny.save(tmp_path / 'o.json')


# --- From a mutation-testing pass over medcf/oracles.py (session 36): each pins a behaviour no test above pinned, to a closed
# form, a hand-worked value or a refusal's message; O-numbers are the helper's mutant ids.


# O4: check_images refuses every rank but 4 (under a mutant a 5-d batch passed and failed later inside a conv)
def test_check_images_refuses_rank_5():
    with pytest.raises(ValueError, match='rank 5'): O.check_images(torch.zeros(1, 1, 1, 8, 8))


# O16, O17: an AttrSpec needs at least two discrete values, and a continuous range with low < high
def test_attr_spec_refuses_one_value_and_an_empty_range():
    with pytest.raises(ValueError, match='at least two'): O.AttrSpec('pos', 'categorical', ['left'])
    with pytest.raises(ValueError, match='low < high'): O.AttrSpec('level', 'continuous', range=(1.0, 1.0))


# O20: a binary variable whose values are listed [1, 0] is read as binary with values [0, 1] (a mutant refused it)
def test_attr_specs_sorts_binary_values():
    V = types.SimpleNamespace
    ph = V(observed=('flag',), variables={'flag': V(values=[1, 0], range=None)})
    (s,) = O.attr_specs(ph)
    assert (s.kind, s.values) == ('binary', [0, 1])


# O22: a continuous attribute refuses bool values (True read as 1 in its units)
def test_check_continuous_refuses_bools():
    spec = O.AttrSpec('age', 'continuous', range=(0.0, 100.0))
    with pytest.raises(TypeError, match='holds bool values'): O.check_continuous(spec, np.array([True, False]), 'asked')


# O27: continuous targets are scaled to [0, 1] by the spec's range (low, high), not divided by high alone
def test_encode_targets_scales_by_the_range():
    spec = O.AttrSpec('age', 'continuous', range=(10.0, 30.0))
    t = O.encode_targets([spec], pd.DataFrame({'age': [10.0, 20.0, 30.0]}))
    assert t[:, 0].tolist() == [0.0, 0.5, 1.0]


# O30, O31: resize_images refuses non-square images, also when their width is already the target size
def test_resize_images_refuses_non_square():
    for shape in ((1, 1, 16, 32), (1, 1, 16, 24)):
        with pytest.raises(ValueError, match='expected square images'): O.resize_images(torch.zeros(shape), 32)


# O47: an oracle whose head has another output count than its specs need is refused when it is built
def test_attribute_oracle_refuses_a_head_that_does_not_match_its_specs():
    specs = [O.AttrSpec('flag', 'binary', [0, 1]), O.AttrSpec('pos', 'categorical', ['l', 'm', 'r'])]  # 1 + 3 outputs
    with pytest.raises(ValueError, match='the head has 2 outputs but the specs need 4'):
        O.AttributeOracle(O.OracleNet(1, 2, widths=(4, 8), feat_dim=8), specs, 16, 1)


def _constant_oracle(bias: float):
    "An oracle reading one continuous attribute (age in [18, 90]) whose head outputs `bias` for every image."
    net = O.OracleNet(1, 1, widths=(4, 8), feat_dim=8)
    with torch.no_grad(): net.head.weight.zero_(); net.head.bias.fill_(bias)
    return O.AttributeOracle(net, [O.AttrSpec('age', 'continuous', range=(18.0, 90.0))], 16, 1)


# O52, O54: a continuous reading is the head output clamped to [0, 1] and mapped to the range: never outside it, in probs as in predict
def test_continuous_readings_stay_in_the_range():
    x = torch.full((2, 1, 16, 16), -0.5)
    for bias, want in ((2.0, 90.0), (-1.0, 18.0), (0.5, 54.0)):
        o = _constant_oracle(bias)
        assert o.predict(x)['age'].tolist() == [want, want] and o.probs(x)['age'].tolist() == [want, want]


# O57, O59: evaluate refuses attrs of another length, and a continuous attribute's error is the MEAN ABSOLUTE error
def test_evaluate_mae_and_length():
    o, x = _constant_oracle(0.5), torch.full((2, 1, 16, 16), -0.5)  # reads 18 + 0.5 * 72 = 54 on every image
    r = o.evaluate(x, pd.DataFrame({'age': [44.0, 64.0]}))
    assert r.loc[0, ['attribute', 'metric', 'value', 'n']].tolist() == ['age', 'MAE', 10.0, 2]  # |54-44| and |54-64|; signed they cancel
    with pytest.raises(ValueError, match='2 images but 3 rows of attrs'): o.evaluate(x, pd.DataFrame({'age': [44.0, 64.0, 50.0]}))


# O65: phantom_pool draws chunk k with seed * 100_003 + k, as its docstring and the cards say
def test_phantom_pool_chunk_seeds():
    ph = ChestPhantom(size=32)
    x, attrs, prompts = O.phantom_pool(ph, 5, seed=2, chunk=3)
    a, b = ph.sample(3, seed=2 * 100_003), ph.sample(2, seed=2 * 100_003 + 1)
    assert torch.equal(x, torch.cat([a.images, b.images]).to(torch.float16)) and prompts == a.prompts + b.prompts


# O68: oracle_loss weighs a continuous attribute's MSE by continuous_weight, 10 by default
def test_oracle_loss_continuous_weight():
    specs = [O.AttrSpec('age', 'continuous', range=(0.0, 1.0))]
    out, target = torch.tensor([[0.2], [0.4]]), torch.tensor([[0.0], [0.0]])
    mse = (0.2 ** 2 + 0.4 ** 2) / 2
    assert O.oracle_loss(specs, out, target)[0].item() == pytest.approx(10 * mse)
    assert O.oracle_loss(specs, out, target, continuous_weight=1.0)[0].item() == pytest.approx(mse)


# O72: the default training pool is steps * batch_size images, at most 24,000
def test_default_pool_size():
    assert O._pool_size(None, 3, 8) == 24 and O._pool_size(None, 2000, 64) == 24_000 and O._pool_size(100, 2000, 64) == 100


# O81: the card's held-out figures are measured on the seed the card names (eval_data_seed = 10**6 + seed)
def test_train_oracle_heldout_is_on_the_named_seed():
    ph = ChestPhantom(size=32)
    o = O.train_oracle(ph, steps=1, batch_size=4, n_train=8, eval_n=8, seed=2, widths=(4, 8), feat_dim=8)
    assert o.card['eval_data_seed'] == 10**6 + 2
    ev = ph.sample(8, seed=o.card['eval_data_seed'])
    assert o.card['heldout'] == o.evaluate(ev.images, ev.attrs).to_dict('records')


# O100, O101: ReadingDistance.read gives a continuous attribute in its units: low + output * (high - low), unclamped
def test_reading_distance_reads_continuous_in_units():
    x = torch.full((2, 1, 16, 16), -0.5)
    for bias, want in ((0.5, 54.0), (2.0, 162.0)):  # 18 + bias * 72; no clamp (a loss needs its gradient)
        assert O.ReadingDistance(_constant_oracle(bias), 'age').read(x).tolist() == pytest.approx([want, want])


# O109: a single string is one text (a mutant encoded it character by character); also, a text's embedding does not depend on the
# texts batched with it (the padding is masked out of the pooling)
def test_text_tower_embedding_is_independent_of_the_batch():
    tt = O.text_tower()
    short, long = 'pleural effusion', 'a frontal chest x-ray of an old man with a pacemaker, cardiomegaly and a large pleural effusion'
    tt.cache.pop(short, None); tt.cache.pop(long, None)
    together = tt.encode([short, long])[0]
    tt.cache.pop(short, None)
    alone = tt.encode([short])[0]
    assert torch.allclose(together, alone, atol=1e-5)
    assert tt.encode(short).shape == (1, tt.dim)


# O116: image_text_score takes one caption for every image (or one per image)
def test_image_text_score_one_caption_for_all():
    lit = O.LiTModel(O.OracleNet(1, O.text_tower().dim, widths=(4, 8), feat_dim=8), 16, 1)
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    one, each = lit.image_text_score(x, 'a chest'), lit.image_text_score(x, ['a chest'] * 3)
    assert one.shape == (3,) and torch.allclose(one, each)


def _lit():
    torch.manual_seed(0)
    return O.LiTModel(O.OracleNet(1, O.text_tower().dim, widths=(4, 8), feat_dim=8), 16, 1, logit_scale=10.0)


# O121: zero_shot is softmax(logit_scale * cosine), the CLIP rule
def test_zero_shot_uses_the_logit_scale():
    lit, x = _lit(), torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    texts = ['a chest with effusion', 'a chest without effusion']
    assert torch.allclose(lit.zero_shot(x, texts), torch.softmax(10.0 * lit.similarity(x, texts), 1), atol=1e-6)


# O126: lit_loss spreads the target over identical captions: two identical pairs with equal logits lose log 2 (hand-worked)
def test_lit_loss_with_identical_captions():
    e = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    loss = O.lit_loss(e, e, torch.tensor([0, 0]), torch.tensor(1.0))  # every logit 1: log_softmax = log 1/2, target 1/2 each
    assert loss.item() == pytest.approx(np.log(2))


# O129: a label equal to the number of class texts is out of range and refused (a mutant scored it as wrong)
def test_zero_shot_accuracy_refuses_a_label_one_past_the_classes():
    x = torch.zeros(2, 1, 16, 16)
    with pytest.raises(ValueError, match=r'labels must lie in 0\.\.1'): O.zero_shot_accuracy(_lit(), x, [0, 2], ['a', 'b'])


# O134: a caption is informative only when every value of the attribute gives another caption; none informative gives NaN
def test_caption_swap_needs_a_distinct_caption_per_value():
    V = types.SimpleNamespace
    ph = V(variables={'pos': V(values=['l', 'm', 'r'])}, observed=('pos',))
    class Batch:
        attrs = pd.DataFrame({'pos': ['l', 'm']}); images = torch.zeros(2, 1, 16, 16)
        def __len__(self): return 2
    caps = lambda a: ['left side' if p == 'l' else 'other side' for p in a['pos']]  # 'm' and 'r' read alike: 2 captions for 3 values
    assert np.isnan(O.caption_swap_accuracy(_lit(), ph, Batch(), 'pos', captions=caps))


# O136: caption_swap_accuracy scores the informative rows only (an uninformative row is not a wrong answer)
def test_caption_swap_scores_informative_rows_only():
    V = types.SimpleNamespace
    ph = V(variables={'pos': V(values=['l', 'm', 'r'])}, observed=('pos',))
    emb = {'left': [1.0, 0, 0], 'middle': [0, 1.0, 0], 'right': [0, 0, 1.0], 'other': [0, 1.0, 0]}
    lit = V(image_embed=lambda x: torch.tensor([[1.0, 0, 0]] * len(x)),  # both images read as 'left'
            text_embed=lambda c: torch.tensor([emb[t] for t in c]))
    class Batch:
        attrs = pd.DataFrame({'pos': ['l', 'm'], 'style': ['full', 'poor']}); images = torch.zeros(2, 1, 16, 16)
        def __len__(self): return 2
    def caps(a):  # row 0 names every position; row 1 only tells 'l' from the rest
        full = {'l': 'left', 'm': 'middle', 'r': 'right'}
        return [full[p] if s == 'full' else ('left' if p == 'l' else 'other') for p, s in zip(a['pos'], a['style'])]
    assert O.caption_swap_accuracy(lit, ph, Batch(), 'pos', captions=caps) == 1.0  # row 0 right; row 1 left out


# O144: train_lit starts its inverse temperature at 10 (LiTModel's default); one small step cannot move it far
def test_train_lit_starts_at_logit_scale_10():
    class Tiny(SCMPhantom):  # one binary attribute, two captions
        channels = 1
        def _variables(self): return [Variable('square', [0, 1], mechanism=lambda p, u: (u < 0.5).astype(int))]
        def _draw_noise(self, rng, n): return dict(square=rng.uniform(0, 1, n))
        def _render(self, v, noise): return torch.full((len(v), 1, self.size, self.size), -1.0) + torch.tensor(v['square'].to_numpy(), dtype=torch.float32)[:, None, None, None]
        def _prompt(self, row): return 'A square' if row['square'] else 'Nothing'
    lit = O.train_lit(Tiny(size=16), steps=1, batch_size=4, n_train=8, eval_n=4, widths=(4, 8), feat_dim=8)
    assert 9.5 < lit.logit_scale < 10.5  # one AdamW step of lr 2e-3 moves log(scale) by about 0.002

def test_torch_threads_sets_restores_and_refuses():
    before = torch.get_num_threads()
    with O.torch_threads(before + 1): assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match='inside'):
        with O.torch_threads(before + 1): raise RuntimeError('inside')
    assert torch.get_num_threads() == before  # restored when the block raises
    for bad in (0, 1.5, True, '2', None):
        with pytest.raises(ValueError, match=r'expected a positive integer \(torch threads\)'):
            with O.torch_threads(bad): pass
    assert torch.get_num_threads() == before

def test_train_oracle_card_records_the_blocks_threads():
    with O.torch_threads(1): o = O.train_oracle(ChestPhantom(size=32), steps=2, batch_size=4, n_train=8, eval_n=4, widths=(4,), feat_dim=8)
    assert o.card['threads'] == 1 and 'torch threads 1;' in o.card['hardware'] and o.card['torch'] == torch.__version__
    line = [l for l in O.card_markdown(o.card).splitlines() if l.startswith('- training:')][0]
    assert f"(1 thread(s)) on {o.card['hardware']}, torch {torch.__version__}, {o.card['trained']}" in line


# --- session 41: claims a mutation pass over medcf.oracles (90 one-line mutants) found no test or notebook held -----------------
def test_attr_specs_keeps_the_phantoms_values_their_order_and_type():
    "Class k of a categorical head is values[k] in the phantom's own order (not sorted); 0./1. floats stay a categorical of floats, so predict gives attrs' value type."
    V = types.SimpleNamespace
    ph = V(observed=('pos', 'flag'), variables={'pos': V(values=['r', 'l', 'm'], range=None), 'flag': V(values=[0.0, 1.0], range=None)})
    pos, flag = O.attr_specs(ph)
    assert (pos.kind, pos.values) == ('categorical', ['r', 'l', 'm'])
    assert flag.kind == 'categorical' and flag.values == [0.0, 1.0] and all(isinstance(v, float) for v in flag.values)

def test_shrinking_is_antialiased():
    "64 -> 16 px: each output pixel weighs many input pixels, so pixel noise averages out at least as much as in 4x4 block means (plain bilinear samples 2x2)."
    x = torch.rand(8, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert O.resize_images(x, 16).std() < torch.nn.functional.avg_pool2d(x, 4).std()

def test_checkpoints_are_float16_and_a_missing_file_is_named(tiny, tmp_path):
    from safetensors.torch import load_file
    w = tiny.save(tmp_path)
    assert {v.dtype for v in load_file(str(w)).values()} == {torch.float16} and json.loads((tmp_path / 'attributes.json').read_text())['dtype'] == 'float16'
    w.unlink()
    with pytest.raises(FileNotFoundError, match=r'checkpoint file .*attributes\.safetensors is missing'): O.AttributeOracle.load(tmp_path)

def test_predict_in_small_batches_reads_every_image(tiny, toy):
    x = toy.sample(5, seed=3).images
    pd.testing.assert_frame_equal(tiny.predict(x, batch_size=2), tiny.predict(x))
    assert tiny.features(x, batch_size=2).shape == (5, tiny.net.feat[0].out_features)

def test_a_binary_reading_is_one_where_its_probability_exceeds_a_half():
    "predict agrees with probs: a logit of exactly 0 (probability 0.5) reads 0."
    net = O.OracleNet(1, 1, widths=(4, 8), feat_dim=8)
    with torch.no_grad(): net.head.weight.zero_(); net.head.bias.zero_()
    o, x = O.AttributeOracle(net, [O.AttrSpec('flag', 'binary', [0, 1])], 16, 1), torch.full((2, 1, 16, 16), -0.5)
    assert o.probs(x).flag.tolist() == [0.5, 0.5] and o.predict(x).flag.tolist() == [0, 0]

def test_shipped_skin_oracle_reads_in_the_attrs_value_types():
    "predict promises attrs' value types: skin tone as integers (an object column of ints compared and grouped unlike attrs'); continuous readings are floats (float32)."
    from medcf.phantoms import SkinPhantom
    b = SkinPhantom().sample(4, seed=0)
    read = O.load_oracle('skin').predict(b.images)
    assert {k: t.kind for k, t in read.dtypes.items()} == {k: t.kind for k, t in b.attrs[read.columns].dtypes.items()}

def test_cosine_lr_warms_up_linearly_then_follows_the_cosine():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    lrs = []
    for step in (0, 4, 9, 10, 55, 99):
        O._cosine_lr(opt, 2.0, step, 100, 10); lrs.append(opt.param_groups[0]['lr'])
    assert lrs == pytest.approx([0.2, 1.0, 2.0, 2.0, 1.0, 2.0 * 0.5 * (1 + np.cos(np.pi * 89 / 90))])

def test_load_perceptual_names_the_folder_without_one():
    with pytest.raises(FileNotFoundError, match=r"no perceptual oracle in .*skin \(perceptual\.json\); only 'chest' ships one"): O.load_perceptual('skin')

def test_card_markdown_gives_each_accuracy_its_wilson_interval(tiny):
    from medcf.metrics import proportion_interval, rate_count
    r = next(r for r in tiny.card['heldout'] if r['metric'] == 'accuracy')
    lo, hi = proportion_interval(rate_count(r['value'], r['n']), r['n'])
    assert f"| {r['attribute']} | {r['kind']} | accuracy | {r['value']:.4f} | [{lo:.4f}, {hi:.4f}] | {r['n']} |" in O.card_markdown(tiny.card)
    big = dict(tiny.card, heldout=[dict(r, value=19453 / 20000, n=20000)])  # evaluate stores k/n unrounded: 4 decimals could not tell 19453 from 19454
    lo, hi = proportion_interval(19453, 20000)
    assert f"| 0.9727 | [{lo:.4f}, {hi:.4f}] | 20000 |" in O.card_markdown(big)
    hand = dict(tiny.card, heldout=[dict(r, value=0.9727, n=256)])  # a value rounded by hand is still read back as its count, 249
    lo, hi = proportion_interval(249, 256)
    assert f"| 0.9727 | [{lo:.4f}, {hi:.4f}] | 256 |" in O.card_markdown(hand)

def test_perceptual_distance_compares_unit_normalised_channel_vectors(tiny, toy):
    "By its definition: per stage, |u/|u| - v/|v||^2 summed over channels, averaged over positions, summed over stages; a feature map's scale does not count."
    a, b = toy.sample(3, seed=1).images, toy.sample(3, seed=2).images
    n = lambda u: u / u.norm(dim=1, keepdim=True)
    want = sum(((n(u) - n(v)) ** 2).sum(1).mean((1, 2)) for u, v in zip(O.feature_maps(tiny.net, a), O.feature_maps(tiny.net, b)))
    assert torch.allclose(O.PerceptualDistance(tiny)(a, b), want, atol=1e-5)

def test_reading_distance_of_a_continuous_attribute_is_in_its_units():
    "Age on the shipped chest judge: the distance is |read(a) - read(b)| in years (the head's output times the range, 18..90)."
    from medcf.phantoms import ChestPhantom
    a, b = ChestPhantom().sample(3, seed=0).images, ChestPhantom().sample(3, seed=1).images
    rd = O.ReadingDistance(O.load_oracle('chest'), 'age')
    d = rd(a, b)
    assert torch.allclose(d, (rd.read(a) - rd.read(b)).abs(), atol=1e-4) and d.max() > 1  # years, not a fraction of the range

def test_lit_refuses_mismatched_sets_labels_and_another_kind_of_card(tiny, tmp_path):
    lit, x = _lit(), torch.full((3, 1, 16, 16), -0.5)
    with pytest.raises(ValueError, match=r'src_images gave \(3, 384\) embeddings but edited_images \(2, 384\)'): lit.direction_score(x, x[:2], 'a', 'b')
    with pytest.raises(ValueError, match='3 images but 2 labels'): O.zero_shot_accuracy(lit, x, [0, 1], ['a', 'b'])
    tiny.save(tmp_path, 'lit')
    with pytest.raises(ValueError, match="is a 'attribute_oracle' card, not a LiT model"): O.LiTModel.load(tmp_path)

def test_lit_loss_averages_both_directions():
    "Hand-worked: images e1, e2 against captions (0.6, 0.8), (1, 0); logits [[0.6, 1], [0.8, 0]], image->text and text->image halves differ."
    img, txt = torch.eye(2), torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    ce = lambda z, k: -np.log(np.exp(z[k]) / np.exp(z).sum())
    i2t = (ce(np.array([0.6, 1.0]), 0) + ce(np.array([0.8, 0.0]), 1)) / 2
    t2i = (ce(np.array([0.6, 0.8]), 0) + ce(np.array([1.0, 0.0]), 1)) / 2
    assert O.lit_loss(img, txt, torch.tensor([0, 1]), torch.tensor(1.0)).item() == pytest.approx(0.5 * (i2t + t2i))

def test_train_lit_starts_from_the_backbones_body_and_refuses_one_of_another_size(tiny, toy):
    lit = O.train_lit(toy, steps=1, batch_size=4, n_train=8, eval_n=4, backbone=tiny)
    assert all(torch.equal(p, q) for p, q in zip(lit.net.body.state_dict().values(), tiny.net.body.state_dict().values()))
    with pytest.raises(ValueError, match='backbone reads 1-channel 32px images; the phantom renders 1-channel 16px'): O.train_lit(Toy(size=16), steps=1, backbone=tiny)

def test_caption_swap_without_an_informative_caption_is_nan_without_a_numpy_warning():
    "NaN is returned before any scoring: the mean of an empty selection gave the same NaN with numpy's 'Mean of empty slice' RuntimeWarning."
    V = types.SimpleNamespace
    ph = V(variables={'pos': V(values=['l', 'm'])}, observed=('pos',))
    class Batch:
        attrs = pd.DataFrame({'pos': ['l', 'm']}); images = torch.full((2, 1, 16, 16), -0.5)
        def __len__(self): return 2
    with warnings.catch_warnings():
        warnings.simplefilter('error'); assert np.isnan(O.caption_swap_accuracy(_lit(), ph, Batch(), 'pos', captions=lambda a: ['same'] * len(a)))


# orc1: save reads the network's config from the network, so an oracle or LiT tower built by hand (card=None) loads back
def test_save_writes_the_networks_config_so_a_hand_built_model_loads(tmp_path):
    specs = [O.AttrSpec('effusion', 'binary', [0, 1]), O.AttrSpec('age', 'continuous', range=(18., 90.))]
    torch.manual_seed(0); o = O.AttributeOracle(O.OracleNet(1, 2, (4, 8), 8), specs, size=16, channels=1)
    o.save(tmp_path)
    back = O.AttributeOracle.load(tmp_path)
    assert back.card['config'] == {'widths': [4, 8], 'feat_dim': 8} and all(torch.equal(a, b.half().float()) for a, b in zip(back.net.state_dict().values(), o.net.state_dict().values()))  # the float16 weights
    lit = O.LiTModel(O.OracleNet(1, O.text_tower().dim, (4, 8), 8), 16, 1)
    lit.save(tmp_path)
    assert O.LiTModel.load(tmp_path).card['config'] == {'widths': [4, 8], 'feat_dim': 8, 'embed_dim': O.text_tower().dim}
    wrong = O.AttributeOracle(o.net, specs, 16, 1, card={'config': {'widths': [16, 32], 'feat_dim': 8}})
    with pytest.raises(ValueError, match=r"card's config \{'widths': \[16, 32\], 'feat_dim': 8\} does not describe the network, whose config is \{'widths': \[4, 8\], 'feat_dim': 8\}"):
        wrong.save(tmp_path / 'w')
    assert not (tmp_path / 'w').exists()

def test_lit_load_names_a_missing_card_field(tmp_path):
    "A LiT card without config (as save wrote before) raised a bare KeyError('config')."
    net = O.OracleNet(1, O.text_tower().dim, (4, 8), 8)
    O.save_checkpoint(net, tmp_path, 'lit', {'kind': 'lit', 'size': 16, 'channels': 1, 'logit_scale': 10.0})
    with pytest.raises(ValueError, match=r"lit.json lacks a field a LiT model needs \(KeyError\('config'\)\); expected the card LiTModel.save writes"): O.LiTModel.load(tmp_path)

# orc2: the recipe names the phantom with its settings, and the card records its render_config
def test_recipe_records_the_phantoms_settings():
    from medcf.phantoms import SkinPhantom
    kw = dict(steps=2, batch_size=4, n_train=8, eval_n=4, widths=(4,), feat_dim=8)
    plain = O.train_oracle(ChestPhantom(size=32), **kw)
    assert plain.card['recipe'] == 'train_oracle(ChestPhantom(size=32), steps=2, batch_size=4, n_train=8, lr=0.003, seed=0, widths=(4,), feat_dim=8)'  # as before
    grainless = O.train_oracle(ChestPhantom(size=32, grain=0), **kw)
    assert grainless.card['recipe'].startswith('train_oracle(ChestPhantom(size=32, grain=0.0), steps=2,')
    assert grainless.card['phantom_config'] == {'phantom': 'ChestPhantom', 'grain': 0.0, 'size': 32}
    again = eval(grainless.card['recipe'][:-1] + ', eval_n=4)', {'train_oracle': O.train_oracle, 'ChestPhantom': ChestPhantom})  # the recorded recipe, rerun
    assert all(torch.equal(a, b) for a, b in zip(grainless.net.state_dict().values(), again.net.state_dict().values()))
    skin = SkinPhantom(size=32); skin.p_ruler = (0.3, 0.1)
    lit = O.train_lit(skin, steps=1, batch_size=4, n_train=8, eval_n=4, widths=(4,), feat_dim=8)
    assert lit.card['recipe'].startswith('train_lit(SkinPhantom(size=32), steps=1,') and lit.card['recipe'].endswith("; with the phantom's p_ruler set after construction (values in phantom_config)")
    assert lit.card['phantom_config'] == {'phantom': 'SkinPhantom', 'p_ruler': (0.3, 0.1), 'size': 32}

# orc3: AttrSpec refuses a repeated value (a head column never a target) and an infinite range (every target scaled to 0)
def test_attrspec_refuses_a_repeated_value_and_an_infinite_range():
    with pytest.raises(ValueError, match=r"AttrSpec 'view': values \['AP', 'AP', 'PA'\] repeat 'AP'; expected distinct values"): O.AttrSpec('view', 'categorical', ['AP', 'AP', 'PA'])
    with pytest.raises(ValueError, match=r"AttrSpec 'age': range=\(0.0, inf\); expected two finite numbers"): O.AttrSpec('age', 'continuous', range=(0., float('inf')))
    with pytest.raises(ValueError, match=r"AttrSpec 'age': range=\(-inf, 1.0\); expected two finite numbers"): O.AttrSpec('age', 'continuous', range=(-float('inf'), 1.))
    assert O.AttrSpec('view', 'categorical', ['AP', 'PA']).n_out == 2 and O.AttrSpec('age', 'continuous', range=(0, 100)).range == (0, 100)

# orc4: a trained network comes back as load gives one: eval mode, frozen
def test_trained_networks_are_frozen_as_loaded(tiny, toy):
    lit = O.train_lit(toy, steps=1, batch_size=4, n_train=8, eval_n=4, widths=(4,), feat_dim=8)
    for net in (tiny.net, lit.net): assert not net.training and not any(p.requires_grad for p in net.parameters())

def test_train_lit_takes_a_hand_built_backbone(tiny, toy):
    "The backbone's stage widths are read from its network: a hand-built AttributeOracle (card None, no config) failed with KeyError('config')."
    hand = O.AttributeOracle(tiny.net, tiny.specs, tiny.size, tiny.channels)
    lit = O.train_lit(toy, steps=1, batch_size=8, n_train=8, eval_n=8, backbone=hand)
    assert lit.card['config']['widths'] == tiny.card['config']['widths']

def test_train_lit_names_a_backbone_that_is_not_an_oraclenet(tiny, toy):
    "A backbone whose network is not an OracleNet is refused as such (the message named AttributeOracle.save, which a training call never reaches)."
    import copy
    odd = copy.copy(tiny); odd.net = torch.nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r'backbone.net is a Linear; expected an OracleNet'): O.train_lit(toy, steps=1, batch_size=8, n_train=8, eval_n=8, backbone=odd)

def test_load_says_a_card_field_has_the_wrong_type_rather_than_that_it_is_missing(tmp_path):
    "A card whose config widths is a number (present, of the wrong type) was reported as 'lacks a field' by both loaders; the message says what is wrong now."
    net = O.OracleNet(1, O.text_tower().dim, (4, 8), 8)
    O.save_checkpoint(net, tmp_path, 'lit', {'kind': 'lit', 'size': 16, 'channels': 1, 'logit_scale': 10.0, 'config': {'widths': 4, 'feat_dim': 8, 'embed_dim': O.text_tower().dim}})
    with pytest.raises(ValueError, match=r"lit.json holds a field of the wrong type a LiT model needs \(TypeError"): O.LiTModel.load(tmp_path)
    O.save_checkpoint(O.OracleNet(1, 1, (4, 8), 8), tmp_path, 'o', {'kind': 'attribute_oracle', 'size': 16, 'channels': 1, 'config': {'widths': 4, 'feat_dim': 8},
                                                                   'specs': [dict(name='sex', kind='binary', values=[0, 1], range=None)]})
    with pytest.raises(ValueError, match=r"o.json holds a field of the wrong type an oracle needs \(TypeError"): O.AttributeOracle.load(tmp_path, 'o')


# --- review (default dtype): seeded draws and the networks are float32 whatever torch's default dtype
def _trained(toy):
    o = O.train_oracle(toy, steps=2, batch_size=8, n_train=16, eval_n=8, widths=(4, 8), feat_dim=8, noise_std=0.2)
    lit = O.train_lit(toy, steps=2, batch_size=8, n_train=16, eval_n=8, widths=(4, 8), feat_dim=8)
    return [p.clone() for p in o.net.parameters()], o.card['loss_curve'], [p.clone() for p in lit.net.parameters()], lit.logit_scale, lit.card['loss_curve']

def test_training_is_the_same_in_a_float64_session(toy, request):
    "OracleNet was built in the default dtype (float64 weights from another random stream) and failed on the float32 pool ('Input type ... and weight type (torch.DoubleTensor)'); the noise draws and LiT's logit scale were float64 too."
    ref = _trained(toy)
    request.getfixturevalue('float64_session')
    got = _trained(toy)
    for a, b in zip(ref, got):
        if isinstance(a, list) and a and isinstance(a[0], torch.Tensor): assert all(q.dtype == torch.float32 and torch.equal(p, q) for p, q in zip(a, b))
        else: assert a == b

def test_noise_agreement_draws_the_same_noise_in_a_float64_session(tiny, monkeypatch, request):
    "noise_agreement's seeded noise was drawn in the default dtype: in float64 another stream (and float64 images)."
    monkeypatch.setattr(O, 'reading_agreement', lambda oracle, images, others: others)  # the noisy images it reads
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    ref = O.noise_agreement(tiny, x, 0.1, seed=4)
    request.getfixturevalue('float64_session')
    got = O.noise_agreement(tiny, x, 0.1, seed=4)
    assert got.dtype == torch.float32 and torch.equal(ref, got)

def test_loaded_oracle_and_lit_read_float32_images_in_a_float64_session(request):
    "The loaders built the network in the default dtype: in a float64 session predict failed on float32 images ('expected scalar type Float but found Double')."
    x = ChestPhantom(size=64).sample(4, seed=0).images
    ref = O.load_oracle('chest').predict(x), O.load_lit('chest').image_embed(x)
    request.getfixturevalue('float64_session')
    oracle, lit = O.load_oracle('chest'), O.load_lit('chest')
    assert all(p.dtype == torch.float32 for net in (oracle.net, lit.net) for p in net.parameters())
    assert oracle.predict(x).equals(ref[0]) and torch.equal(lit.image_embed(x), ref[1])


# --- review (network options): train_lit checks feat_dim and widths as train_oracle does; OracleNet names the widths its GroupNorm cannot split
def _no_pool(*a, **k): raise AssertionError('the pool was rendered before the options were checked')

def test_train_lit_refuses_feat_dim_and_widths_before_rendering(toy, monkeypatch):
    "feat_dim=0 trained a tower that embeds every image alike (and saved it); feat_dim=-1 or 2.5 failed inside torch after the pool was rendered."
    monkeypatch.setattr(O, 'phantom_pool', _no_pool)
    kw = dict(steps=1, batch_size=4, n_train=8, eval_n=4)
    for bad, msg in ((dict(feat_dim=0), r'feat_dim=0: expected a positive integer'), (dict(feat_dim=-1), r'feat_dim=-1: expected a positive integer'),
                     (dict(feat_dim=2.5), r'feat_dim=2\.5: expected a positive integer'), (dict(widths=()), r'widths=\(\): expected a non-empty sequence'),
                     (dict(widths=(8, 36)), r'widths=\(8, 36\): the stage width 36 cannot be split')):
        with pytest.raises(ValueError, match=msg): O.train_lit(toy, **kw, **{'widths': (4, 8), 'feat_dim': 8, **bad})

def test_oraclenet_names_widths_its_groupnorm_cannot_split(toy, monkeypatch):
    "GroupNorm(min(8, w // 4), w): widths (16, 32, 64, 100) or (36,) failed in torch ('num_channels (100) must be divisible by num_groups (8)', naming no widths), (2,) with ZeroDivisionError; train_oracle only after rendering the pool."
    for w, first in (((16, 32, 64, 100), 100), ((36,), 36), ((2,), 2)):
        with pytest.raises(ValueError, match=rf"widths={re.escape(repr(w))}: the stage width {first} cannot be split into its GroupNorm's min\(8, width // 4\) groups; expected every width >= 4"):
            O.OracleNet(1, 3, w)
    for w in range(1, 70):  # the rule is torch's: exactly the widths whose GroupNorm cannot be built are refused
        try: torch.nn.GroupNorm(min(8, w // 4), w); builds = True
        except (ValueError, ZeroDivisionError): builds = False
        if builds: O.OracleNet(1, 3, (w,), 8)
        else:
            with pytest.raises(ValueError, match=rf'the stage width {w} cannot be split'): O.OracleNet(1, 3, (w,), 8)
    monkeypatch.setattr(O, 'phantom_pool', _no_pool)
    with pytest.raises(ValueError, match=r'widths=\(16, 32, 64, 100\): the stage width 100'): O.train_oracle(toy, steps=1, batch_size=2, n_train=4, eval_n=2, widths=(16, 32, 64, 100))


# --- review (text cache): train_lit's weights do not depend on what the process's text tower encoded before
def test_train_lit_weights_do_not_depend_on_captions_encoded_earlier(toy):
    "The cache keeps a caption's embedding from the batch that first encoded it (the padding moves its last bits): captions encoded one at a time earlier gave weights up to 7.8e-7 away from a fresh cache's."
    cap = lambda a: [f"{'a bright square' if s else 'nothing'} on the {p}, level {l:.1f}" for s, p, l in zip(a['square'], a['pos'], a['level'])]
    kw = dict(steps=4, batch_size=16, n_train=32, eval_n=2, widths=(4, 8), feat_dim=8, seed=0, captions=cap)
    tt = O.text_tower(); saved = dict(tt.cache)
    try:
        uniq = list(dict.fromkeys(cap(O.phantom_pool(toy, 32, 0)[1])))
        tt.cache.clear(); alone = torch.cat([tt.encode(c) for c in uniq]); tt.cache.clear(); batch = tt.encode(uniq)
        assert (alone != batch).any()  # the premise: some caption embeds differently alone and in the batch
        tt.cache.clear(); fresh = [p.clone() for p in O.train_lit(toy, **kw).net.parameters()]
        assert all(torch.equal(tt.cache[c], e) for c, e in zip(uniq, batch))  # cached as a fresh process's encode(uniq) caches them
        tt.cache.clear()
        for c in uniq: tt.encode(c)  # met earlier in the process, one at a time (image_text_score calls, say)
        later = [p.clone() for p in O.train_lit(toy, **kw).net.parameters()]
        assert all(torch.equal(a, b) for a, b in zip(fresh, later))
        assert all(torch.equal(tt.cache[c], e) for c, e in zip(uniq, alone))  # what the process had cached is kept
    finally: tt.cache.clear(); tt.cache.update(saved)


def test_text_tower_fresh_encode_leaves_the_cache():
    "encode(fresh=True) gives what a fresh process's encode gives and keeps what the cache already holds (train_lit relies on it)."
    from medcf.oracles import TextTower
    tt = TextTower()
    tt.encode(['one caption', 'two captions here'])
    kept = tt.cache['one caption'].clone()
    got = tt.encode(['one caption', 'three', 'one caption'], fresh=True)
    assert torch.equal(got, TextTower().encode(['one caption', 'three', 'one caption']))
    assert torch.equal(tt.cache['one caption'], kept) and 'three' in tt.cache
    with pytest.raises(TypeError, match='fresh'): tt.encode('x', fresh='no')


def test_lit_image_embed_takes_decoded_overshoot_with_bounded_false():
    "image_embed(grad=True) is for CLIP-guided editing, but refused the decoder's overshoot of [-1, 1] with no bounded=False to pass (AttributeOracle.logits has one)."
    lit = O.load_lit('chest')
    x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2.9 - 1.45  # a decoded x0-hat at a noisy step: [-1.45, 1.45]
    with pytest.raises(ValueError, match=r"expected \[-1, 1\]"): lit.image_embed(x)
    x.requires_grad_(True)
    e = lit.image_embed(x, grad=True, bounded=False)
    (e @ lit.text_embed('Chest X-ray showing Pleural Effusion').T).sum().backward()
    assert e.shape == (2, lit.net.head.out_features) and x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    inside = x.detach().clamp(-1, 1)
    assert torch.equal(lit.image_embed(inside), lit.image_embed(inside, bounded=False))  # the same embedding where the check passes


def test_reading_agreement_names_others_when_others_is_at_fault(tiny, toy):
    "Every fault of `others` (NaN, wrong channels, a list) was reported as one of `images`, and None reached len() with no name."
    x = toy.sample(4, seed=2).images
    bad = x.clone(); bad[0, 0, 0, 0] = float('nan')
    for others, err, msg in [(bad, ValueError, r'^others contains NaN or inf'), (x.repeat(1, 2, 1, 1), ValueError, r'^others has 2 channel\(s\)'),
                             (x.tolist(), TypeError, r'^others must be a torch.Tensor .*got list'), (None, TypeError, r'^others must be a torch.Tensor .*got NoneType')]:
        with pytest.raises(err, match=msg): O.reading_agreement(tiny, x, others)
    with pytest.raises(ValueError, match=r'^images contains NaN or inf'): O.reading_agreement(tiny, bad, x)  # a fault of images is still named so
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        O.reading_agreement(tiny, x, (x + 1) / 2)  # others in [0, 1]: said once, naming others
    said = [str(m.message) for m in w if 'none below 0' in str(m.message)]
    assert len(said) == 1 and said[0].startswith('every value of others'), said


def test_noise_agreement_bounds_the_seed_by_name():
    "Session 52: a seed of 2**64 failed in torch with 'Overflow when unpacking long long' (sde.predict and sample_paths name the bound)."
    from medcf.oracles import noise_agreement
    o = O.load_oracle('chest')
    x = ChestPhantom(o.size).sample(2, seed=0).images
    with pytest.raises(ValueError, match=r"seed=18446744073709551616: expected an integer in \[0, 18446744073709551615\]"): noise_agreement(o, x, 0.1, seed=2**64)


def test_text_tower_checks_max_length_against_the_encoders_positions():
    "Session 52: max_length=600 warned that 600 tokens were kept, then failed in torch ('size of tensor a (600) must match ... (512)') on the first long text; 0 warned 'keeps the first 0'."
    for bad in (600, 0, 2.5):
        with pytest.raises(ValueError, match=rf"max_length={bad!r}: expected an integer in \[1, 512\] \(tokens kept per text, at most the encoder's 512 positions\)"): O.TextTower(max_length=bad)
    assert O.TextTower(max_length=512).max_length == 512
