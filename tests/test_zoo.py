"""Tests for medcf.zoo's pure functions (captions, snapshot and guidance choice rules, decoder rounds, card updates, the age-bin
ceiling, resampling), from a mutation-testing pass (session 36): each pins a behaviour no other test pinned; Z-numbers are
the helper's mutant ids. The functions that need a trained model and many samples are measured in nbs/90_model_zoo.ipynb."""
import os, types, warnings
import numpy as np, pandas as pd, pytest, torch
from medcf import zoo
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
        names = [l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')]
        if names: assert h.startswith(names[0] + ';')


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
