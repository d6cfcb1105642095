"The model card README and the training loops' settings of medcf.diffusion (from a mutation-testing pass: each test pins a value to a hand-worked example, a closed form or a stated rule)."
import copy, json
import numpy as np, pytest, torch
from medcf import diffusion as D
from tiny_sd import imgs, fresh_unet

torch.set_num_threads(1)


# kills: C2 C3 C4 C6 C7 C8 C17 C18 C20 C23 C24 C26 C27 C28 C29 C30 (the whole README of a hand-made card, written out by hand)
def test_model_card_markdown_whole_readme_by_hand():
    "Every line of the README for a small card: title (< escaped), description on one line, short fields, the quality table (nested keys joined by ' / ', "
    "list items named by their tag keys or else their index, tag keys not repeated as rows, lists as JSON, a mixed list as one value), the record "
    "(what / rule / outcome / caveat first, then the other scalars, its flat rows as a table with None blank, its JSON folded), the files."
    card = {'name': 'demo <1>', 'description': 'two\nlines', 'hardware': 'cpu', 'recipe': {'steps': 3},
            'quality': {'fd': {'a': 0.5}, 'runs': [{'fd': 1}, {'fd': 2}], 'seeds': [{'seed': 0, 'fd': 3}], 'ivl': ['a', 'b'], 'mix': [1, {'x': 2}]},
            'trial': {'n': 4, 'outcome': 'held', 'what': 'a trial', 'caveat': 'small', 'rows': [{'k': 1, 'v': None}, {'k': 2, 'v': 'x'}], 'rule': 'r'},
            'files': {'unet/w': 'abc'}}
    want = '''# medcf model: demo &lt;1>

two lines

- **hardware**: cpu
- **recipe**: `{"steps": 3}`

## Quality

| figure | value |
|---|---|
| fd / a | 0.5 |
| runs [0] / fd | 1 |
| runs [1] / fd | 2 |
| seeds [seed 0] / fd | 3 |
| ivl | ["a", "b"] |
| mix | [1, {"x": 2}] |

## Records

### trial

**what**: a trial

**rule**: r

**outcome**: held

**caveat**: small

**n**: 4

| k | v |
|---|---|
| 1 |  |
| 2 | x |

<details><summary>all fields</summary>

```json
{
 "n": 4,
 "outcome": "held",
 "what": "a trial",
 "caveat": "small",
 "rows": [
  {
   "k": 1,
   "v": null
  },
  {
   "k": 2,
   "v": "x"
  }
 ],
 "rule": "r"
}
```

</details>


## Files (sha256, checked on load)

- `unet/w`: `abc`
'''
    assert D.model_card_markdown(card) == want


# kills: C10 C11 C12 C19
def test_model_card_markdown_missing_name_and_description_and_an_empty_quality():
    "A card whose name and description are None reads 'unnamed' and an empty description (not 'None'); an empty quality dict is a short field, not an empty table; no records, no Records heading."
    md = D.model_card_markdown({'name': None, 'description': None, 'quality': {}})
    assert md == '# medcf model: unnamed\n\n\n\n- **quality**: `{}`\n\n## Files (sha256, checked on load)\n\n'


# kills: C13 C14 C15 C16
def test_model_card_markdown_short_dict_rule_and_files_not_listed_twice():
    "A dict without 'what' or a backtick whose JSON is at most 1500 characters is one list line; 1501 characters, or a 'what', make it a record; 'files' is only in the Files section."
    at = {'k': 'x' * 1491}; over = {'k': 'x' * 1492}  # json.dumps: 9 + len characters: 1500 and 1501
    assert len(json.dumps(at)) == 1500 and len(json.dumps(over)) == 1501
    md = D.model_card_markdown({'name': 'n', 'at': at, 'over': over, 'told': {'what': 'w'}, 'files': {'f': 'h'}})
    assert f'- **at**: `{json.dumps(at)}`' in md and '### at' not in md
    assert '### over' in md and '- **over**' not in md
    assert '### told' in md and '- **told**' not in md
    assert '- **files**' not in md and md.endswith('## Files (sha256, checked on load)\n\n- `f`: `h`\n')


# kills: F5b F6 F31 (and F7: the EMA weights end in the UNet)
def test_ema_is_the_warmed_up_recurrence_over_the_raw_steps(pipe):
    "EMA_k = d_k EMA_(k-1) + (1 - d_k) raw_k with d_k = min(ema_decay, (1 + k) / (10 + k)), EMA_(-1) = the initial weights: computed by hand over the raw run's "
    "per-step snapshots (EMA off), it equals the EMA run's per-step snapshots and final weights (the EMA never feeds back into training)."
    data, kw = (imgs(4), ['a', 'b'] * 2), dict(steps=10, batch_size=2, warmup=1, snapshot_every=1, progress=False)
    p0 = fresh_unet(pipe); w0 = [q.detach().clone() for q in p0.unet.parameters()]
    raw = D.finetune(copy.deepcopy(p0), data, ema_decay=None, **kw)['snapshots']
    q = copy.deepcopy(p0); ema = D.finetune(q, data, ema_decay=0.5, **kw)['snapshots']
    e = w0
    for k in range(10):
        d = min(0.5, (1 + k) / (10 + k))  # 0.1, 0.18, ... reaches 0.5 at k = 8
        e = [d * a + (1 - d) * r for a, r in zip(e, raw[k + 1])]
        assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(e, ema[k + 1])), k
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(e, q.unet.parameters()))


# kills: S4 (S2 through finetune)
def test_min_snr_weights_follow_the_prediction_type_in_finetune(pipe):
    "With an enormous gamma Min-SNR is plain MSE for an epsilon target (weight min(gamma / SNR, 1) = 1) but not for v-prediction, whose weight SNR / (SNR + 1) < 1: "
    "the same seeded first step then has a strictly smaller loss."
    from diffusers import DDIMScheduler
    data, kw = (imgs(4), ['a', 'b'] * 2), dict(steps=1, batch_size=4, warmup=1, ema_decay=None, progress=False)
    eps = [D.finetune(fresh_unet(pipe), data, snr_gamma=g, **kw)['loss'][0] for g in (None, 1e12)]
    assert eps[1] == pytest.approx(eps[0], rel=1e-5)
    vs = DDIMScheduler(**D.SD_BETAS, clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type='v_prediction')
    v = [D.finetune(fresh_unet(pipe, vs), data, snr_gamma=g, **kw)['loss'][0] for g in (None, 1e12)]
    assert v[1] < v[0] * 0.999


# kills: V14
def test_train_vae_adds_the_perceptual_distance_times_its_weight(pipe):
    "A perceptual 'distance' that is a constant 10 per image changes no gradient, so the runs train alike and each step's loss is the plain one plus weight x 10."
    x = imgs(4)
    def run(**kw): return D.train_vae(copy.deepcopy(pipe), x, steps=2, batch_size=2, decoder_only=True, progress=False, **kw)['loss']
    const = lambda a, b: torch.full((len(a),), 10.0)
    plain, half = run(), run(perceptual=const, perceptual_weight=0.5)
    assert [h - p for h, p in zip(half, plain)] == pytest.approx([5.0, 5.0], abs=1e-5)


# kills: V20
def test_train_vae_leaves_the_autoencoder_frozen_and_in_eval(pipe):
    "After training, as after build_pipeline: the autoencoder is in eval mode with no parameter asking for gradients (a later sampler run with grad=True must not train it)."
    p = copy.deepcopy(pipe)
    D.train_vae(p, imgs(4), steps=1, batch_size=2, progress=False)
    assert not p.vae.training and not any(q.requires_grad for q in p.vae.parameters())


def test_train_vae_keeps_the_callers_marking_when_it_finishes(pipe):
    "A finished run froze every VAE weight, though one stopped by an error put the caller's marking back and finetune keeps its UNet's: now both ends put it back."
    p = copy.deepcopy(pipe)
    p.vae.decoder.conv_out.weight.requires_grad_(True)
    D.train_vae(p, imgs(4), steps=1, batch_size=2, progress=False, decoder_only=True)
    assert not p.vae.training and [n for n, q in p.vae.named_parameters() if q.requires_grad] == ['decoder.conv_out.weight']


# kills: V5
def test_train_vae_stops_on_a_non_finite_loss_with_finite_gradients(pipe):
    "A NaN perceptual distance carries no gradient (it is a constant), so only the loss check can see it: train_vae stops at step 0 naming the loss, weights untouched."
    p = copy.deepcopy(pipe); w0 = [q.detach().clone() for q in p.vae.parameters()]
    nan = lambda a, b: torch.full((len(a),), float('nan'))
    with pytest.raises(FloatingPointError, match=r'train_vae diverged at step 0: the loss is nan'):
        D.train_vae(p, imgs(4), steps=2, batch_size=2, perceptual=nan, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(w0, p.vae.parameters()))


# kills: V6
def test_train_vae_stops_on_a_non_finite_gradient_with_a_finite_loss(pipe):
    "sqrt(|r - r.detach()|) is 0 (a finite loss) with a NaN gradient (inf x 0): only the gradient-norm check can see it; train_vae stops at step 0 naming it, weights untouched."
    p = copy.deepcopy(pipe); w0 = [q.detach().clone() for q in p.vae.parameters()]
    bad = lambda a, b: (a - a.detach()).abs().sqrt().flatten(1).mean(1)
    with pytest.raises(FloatingPointError, match=r'train_vae diverged at step 0: the gradient norm is nan'):
        D.train_vae(p, imgs(4), steps=2, batch_size=2, perceptual=bad, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(w0, p.vae.parameters()))


# kills: V9 V10
def test_train_vae_crop_is_a_multiple_of_the_factor_up_to_the_image_side(pipe):
    "crop takes a multiple of the VAE factor (4 here) in [4, 32]: the full side 32 and 8 train; 6 (not a multiple) and 36 (past the side) are refused with the rule."
    assert D.vae_factor(pipe) == 4
    for c in (8, 32): D.train_vae(copy.deepcopy(pipe), imgs(2), steps=1, batch_size=1, crop=c, decoder_only=True, progress=False)
    for c in (6, 36):
        with pytest.raises(ValueError, match=rf'crop={c}: expected a multiple of 4 in \[4, 32\]'):
            D.train_vae(copy.deepcopy(pipe), imgs(2), steps=1, batch_size=1, crop=c, decoder_only=True, progress=False)


# kills: V4 F11 V8 F10
@pytest.mark.parametrize('which, decay', [('vae', 0.0), ('unet', 1e-2)])
def test_training_clips_the_gradient_norm_to_one_and_decays_as_stated(pipe, monkeypatch, which, decay):
    "Both loops clip the gradients to a total norm of 1 before each optimiser step (with a steep loss every step's norm is <= 1 and at least one was clipped to "
    "exactly 1); AdamW's weight decay is 1e-2 for the UNet (finetune's comment) and none for the autoencoder."
    norms, decays, step = [], [], torch.optim.AdamW.step
    def spy(self, *a, **k):
        ps = [q for g in self.param_groups for q in g['params'] if q.grad is not None]
        norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(q.grad) for q in ps])).item())
        decays.extend(g['weight_decay'] for g in self.param_groups)
        return step(self, *a, **k)
    monkeypatch.setattr(torch.optim.AdamW, 'step', spy)
    big = lambda a, b: (a - b).pow(2).flatten(1).sum(1) * 100  # a steep loss: gradients far above norm 1
    if which == 'vae': D.train_vae(copy.deepcopy(pipe), imgs(4), steps=3, batch_size=4, perceptual=big, progress=False)
    else: D.finetune(fresh_unet(pipe), (imgs(4), ['a', 'b'] * 2), steps=3, batch_size=4, warmup=1, ema_decay=None, progress=False)
    assert len(norms) == 3 and max(norms) <= 1 + 1e-4 and any(abs(n - 1) < 1e-4 for n in norms), norms
    assert set(decays) == {decay}


# kills: V13
def test_train_vae_edge_term_compares_with_the_targets(pipe):
    "With targets (here flat at -0.5, a dark image) the edge term is edge_weight x edge_l1(reconstruction, target), not against the input: the first step's loss with edge_weight 2 "
    "exceeds the one without by 2 x edge_l1 of the (reconstruction, target) pair the perceptual hook is handed."
    x, y = imgs(4), torch.full((4, 1, 32, 32), -0.5)
    seen = []
    def spy(a, b): seen.append((a.detach().clone(), b.detach().clone())); return torch.zeros(len(a))
    def run(**kw): return D.train_vae(copy.deepcopy(pipe), x, steps=1, batch_size=2, targets=y, perceptual=spy, decoder_only=True, progress=False, **kw)['loss'][0]
    plain, edged = run(), run(edge_weight=2.0)
    rec, tgt = seen[1]
    assert torch.equal(tgt, torch.full_like(tgt, -0.5)) and torch.equal(rec, seen[0][0])
    assert edged - plain == pytest.approx(2.0 * D.edge_l1(rec, tgt).item(), rel=1e-4)


# kills: V16 V28
def test_train_vae_fits_the_scaling_factor_on_the_training_images(pipe):
    "After training the encoder, the factor train_vae sets and returns is fit_latent_scale of the trained autoencoder on all the training images (up to 1024)."
    p, x = copy.deepcopy(pipe), imgs(6)
    sf = D.train_vae(p, x, steps=1, batch_size=2, progress=False)['scaling_factor']
    assert p.vae.config.scaling_factor == sf
    assert sf == pytest.approx(D.fit_latent_scale(copy.deepcopy(p), x), rel=1e-6)


# kills: V17
def test_train_vae_says_nothing_of_the_unet_when_the_factor_was_never_fitted(pipe):
    "A fresh pipeline (factor 1.0, a UNet never trained on its latents) re-fits the factor silently: the 're-fitted' warning is for a factor fitted before."
    import warnings
    p = copy.deepcopy(pipe); assert p.vae.config.scaling_factor == 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        sf = D.train_vae(p, imgs(4), steps=1, batch_size=2, progress=False)['scaling_factor']
    assert abs(sf - 1) > 0.01 and not [w for w in caught if 're-fitted' in str(w.message)]


# session 43's pass over train_vae: the 're-fitted' warning's two conditions, each alone (a mutant never counted a loaded UNet,
# another warned only past a 50% change)
def test_train_vae_warns_for_a_loaded_unet_or_a_factor_moved_past_a_percent(pipe):
    import warnings
    p = copy.deepcopy(pipe); x = imgs(4)
    fitted = D.train_vae(p, x, steps=1, batch_size=2, progress=False)['scaling_factor']  # a factor fitted before, a UNet never trained on it
    def refit(start, lr=1e-9):
        p.vae.register_to_config(scaling_factor=start)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always'); sf = D.train_vae(p, x, steps=1, batch_size=2, lr=lr, progress=False)['scaling_factor']
        return sf, [str(w.message) for w in caught if 're-fitted' in str(w.message)]
    sf, said = refit(fitted * 1.1)  # (continuing from `fitted` itself, the factor barely moves and nothing is said: test_sd_compat_audit_session_32)
    assert 0.01 < abs(sf / (fitted * 1.1) - 1) < 0.5 and len(said) == 1  # moved by about 9%
    p.unet.register_to_config(_name_or_path='a/unet/folder')  # as from_pretrained records it: this UNet was trained on the old latents
    sf, said = refit(fitted)
    assert sf == pytest.approx(fitted, rel=1e-3) and len(said) == 1


# session 43: train_vae's batches and posterior noise follow its seed (a mutant seeded 0 whatever was asked)
def test_train_vae_follows_its_seed(pipe):
    x = imgs(6)
    run = lambda seed: D.train_vae(copy.deepcopy(pipe), x, steps=2, batch_size=2, seed=seed, progress=False)['loss']
    assert run(1) == run(1) and run(1) != run(0)


# kills: F2
def test_cond_drop_replaces_the_caption_by_the_empty_prompt(pipe):
    "cond_drop is the probability that a caption is replaced by '': at cond_drop = 1 - 1e-6 every caption of 2 steps is dropped, so the weights equal those "
    "of the same seeded run on all-empty captions with cond_drop 0 (the dropout draws are taken either way)."
    import warnings
    kw = dict(steps=2, batch_size=4, warmup=1, ema_decay=None, progress=False)
    a, b = fresh_unet(pipe), fresh_unet(pipe)
    D.finetune(a, (imgs(4), ['a', 'b'] * 2), cond_drop=1 - 1e-6, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "4 of 4 captions are empty"
        D.finetune(b, (imgs(4), [''] * 4), cond_drop=0.0, **kw)
    assert all(torch.equal(x, y) for x, y in zip(a.unet.parameters(), b.unet.parameters()))


def _hooked(pipe, fn):
    "A fresh pipeline whose UNet's prediction passes through fn (a forward hook)."
    p = fresh_unet(pipe)
    def hook(m, inp, out): out.sample = fn(out.sample); return out
    p.unet.register_forward_hook(hook)
    return p


# kills: F16
def test_finetune_names_a_non_finite_loss_as_the_loss(pipe):
    "A NaN added to the prediction makes the loss NaN (and its gradient): finetune stops at step 0 naming the loss, the check that comes first, with the UNet's weights untouched."
    p = _hooked(pipe, lambda s: s + float('nan')); w0 = [q.detach().clone() for q in p.unet.parameters()]
    with pytest.raises(FloatingPointError, match=r'finetune diverged at step 0: the loss is nan'), pytest.warns(UserWarning, match='stopped before its first optimiser step'):
        D.finetune(p, (imgs(4), ['a', 'b'] * 2), steps=2, batch_size=2, warmup=1, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(w0, p.unet.parameters()))


# kills: F17
def test_finetune_stops_on_a_non_finite_gradient_with_a_finite_loss(pipe):
    "prediction + sqrt(|prediction - prediction.detach()|) has the prediction's value (a finite loss) and a NaN gradient: finetune stops at step 0 naming the gradient norm, weights untouched."
    p = _hooked(pipe, lambda s: s + (s - s.detach()).abs().sqrt()); w0 = [q.detach().clone() for q in p.unet.parameters()]
    with pytest.raises(FloatingPointError, match=r'finetune diverged at step 0: the gradient norm is nan'), pytest.warns(UserWarning, match='stopped before its first optimiser step'):
        D.finetune(p, (imgs(4), ['a', 'b'] * 2), steps=2, batch_size=2, warmup=1, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(w0, p.unet.parameters()))


# kills: V27 (and F51 for the UNet)
def test_bf16_autocast_covers_the_encoder_the_decoder_and_the_unet(pipe):
    "autocast='bf16' runs encoder and decoder (train_vae) and the UNet (finetune) in bfloat16: each one's output comes out bfloat16; with None, float32."
    def dtypes(mods):
        seen, hs = [], []
        for m in mods: hs.append(m.register_forward_hook(lambda m, i, o: seen.append((o.sample if hasattr(o, 'sample') else o).dtype)))
        return seen, hs
    for ac, want in (('bf16', torch.bfloat16), (None, torch.float32)):
        p = copy.deepcopy(pipe); seen, _ = dtypes([p.vae.encoder, p.vae.decoder])
        D.train_vae(p, imgs(4), steps=1, batch_size=2, autocast=ac, decoder_only=True, progress=False)
        assert seen[:2] == [want, want], (ac, seen)
        q = fresh_unet(pipe); seen, _ = dtypes([q.unet])
        D.finetune(q, (imgs(4), ['a', 'b'] * 2), steps=1, batch_size=2, warmup=1, autocast=ac, ema_decay=None, progress=False)
        assert seen[0] == want, (ac, seen)


# kills: V22
def test_train_vae_kl_term_is_the_mean_kl_per_image(pipe):
    "loss = L1 + kl_weight x the mean over the batch of each image's KL(q(z|x) || N(0, I)) = 0.5 sum(mu^2 + var - 1 - log var): with four copies of one image "
    "(any draw is that image) the first step's loss at kl_weight 1 exceeds the one at 0 by that image's KL, worked out from the encoder's posterior."
    x = imgs(1).expand(4, 1, 32, 32).contiguous()
    def first(kl): return D.train_vae(copy.deepcopy(pipe), x, steps=1, batch_size=4, kl_weight=kl, decoder_only=True, progress=False)['loss'][0]
    with torch.no_grad():
        mean, logvar = pipe.vae.encode(x[:1]).latent_dist.parameters.chunk(2, dim=1)
        logvar = logvar.clamp(-30, 20)  # diffusers' DiagonalGaussianDistribution clamps it so
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum().item()
    assert kl > 0.01 and first(1.0) - first(0.0) == pytest.approx(kl, rel=1e-3)


# kills: V29
def test_train_vae_crops_a_non_square_image_whose_short_side_is_the_crop(pipe):
    "crop=32 on 64 x 32 images: the crop is smaller than the height, so every batch is a 32 x 32 window (not the whole image because it matches the width)."
    from diffusers import UNet2DConditionModel
    p = copy.deepcopy(pipe)
    p.unet = UNet2DConditionModel.from_config({**{k: v for k, v in dict(pipe.unet.config).items() if not k.startswith('_')}, 'sample_size': (16, 8)})
    seen, enc = [], p.vae.encode
    p.vae.encode = lambda x, *a, **k: seen.append(tuple(x.shape)) or enc(x, *a, **k)
    D.train_vae(p, imgs(2, s=32).repeat(1, 1, 2, 1), steps=2, batch_size=2, crop=32, decoder_only=True, progress=False)
    assert seen == [(2, 1, 32, 32)] * 3  # two steps, then the last batch again for the last-step check (6673e7c)


# kills: F18 F19 F20 F21 F22
def test_resume_refuses_another_warmup_gamma_target_trained_set_or_text_encoder(pipe, tmp_path):
    "Each of these changes what the resumed steps would train, so a state saved without it is refused, naming the setting: the warm-up, snr_gamma, "
    "the prediction type, which parameters train, and the text encoder's weights."
    from diffusers import DDIMScheduler
    data = (imgs(4), ['a', 'b'] * 2)
    def run(p=None, **k): return D.finetune(p or fresh_unet(pipe), data, **{**dict(steps=2, batch_size=2, warmup=1, progress=False, ckpt_dir=tmp_path), **k})
    run()
    vs = DDIMScheduler(**D.SD_BETAS, clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type='v_prediction')
    part = fresh_unet(pipe)
    for n, q in part.unet.named_parameters(): q.requires_grad_('attn2' in n)
    te = fresh_unet(pipe); te.text_encoder = copy.deepcopy(pipe.text_encoder)
    with torch.no_grad(): next(te.text_encoder.parameters()).add_(0.01)
    for p, kw, err in [(None, dict(warmup=2), r'warmup=2 \(saved with 1\)'), (None, dict(snr_gamma=5.0), r'snr_gamma=5.0 \(saved with None\)'),
                       (fresh_unet(pipe, vs), {}, r"prediction_type='v_prediction' \(saved with 'epsilon'\)"), (part, {}, 'trained='), (te, {}, 'text_encoder=')]:
        with pytest.raises(ValueError, match='saved with other settings.*' + err): run(p, steps=3, **kw)


# kills: F3 F4 F9 (documented defaults: the signatures' comments and the notebooks' recipes rely on them)
def test_training_defaults_are_the_documented_ones():
    "finetune: lr 3e-4, cond_drop 0.1 (the usual CFG dropout), EMA 0.999, warm-up 100, checkpoints every 500 steps; train_vae: lr 1e-3, KL weight 1e-6 (SD's VAE)."
    import inspect
    ft = {k: v.default for k, v in inspect.signature(D.finetune).parameters.items()}
    assert (ft['lr'], ft['cond_drop'], ft['ema_decay'], ft['warmup'], ft['ckpt_every'], ft['snr_gamma'], ft['autocast']) == (3e-4, 0.1, 0.999, 100, 500, None, None)
    tv = {k: v.default for k, v in inspect.signature(D.train_vae).parameters.items()}
    assert (tv['lr'], tv['kl_weight'], tv['edge_weight'], tv['decoder_only'], tv['autocast']) == (1e-3, 1e-6, 0.0, False, None)


# kills: F12 F13 F14 F15 (and F2 through the embeddings)
@pytest.mark.parametrize('pt', ['epsilon', 'v_prediction'])
def test_finetune_first_step_is_the_ddpm_noising_replayed_by_hand(pipe, pt):
    "The first step, replayed from the seed in finetune's draw order (batch, posterior sample, noise, timesteps, dropout): z = mu + sigma n0 (the VAE posterior, "
    "scaled), x_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps with t uniform in [0, T), the prompt's embedding (cond_drop 0), and the loss the mean squared error "
    "to eps (or v = sqrt(abar) eps - sqrt(1 - abar) z)."
    from diffusers import DDIMScheduler
    sch = DDIMScheduler(**D.SD_BETAS, clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type=pt)
    p, x, prompts = fresh_unet(pipe, sch), imgs(4), ['a', 'b', 'c', 'd']
    seen = []
    p.unet.register_forward_hook(lambda m, args, kwargs, out: seen.append((args[0].detach().clone(), args[1].clone(), kwargs['encoder_hidden_states'].detach().clone(), out.sample.detach().clone())), with_kwargs=True)
    loss = D.finetune(p, (x, prompts), steps=1, batch_size=3, cond_drop=0.0, warmup=1, ema_decay=None, seed=5, progress=False)['loss'][0]
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        idx = torch.randint(4, (3,), generator=g)
        post = pipe.vae.encode(x).latent_dist; sf = pipe.vae.config.scaling_factor
        z = post.mean[idx] * sf + post.std[idx] * sf * torch.randn(post.mean[idx].shape, generator=g)
        eps = torch.randn(z.shape, generator=g)
        t = torch.randint(0, 1000, (3,), generator=g)
        ab = sch.alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = ab.sqrt() * z + (1 - ab).sqrt() * eps
        emb = D.encode_prompts(p, [prompts[i] for i in idx])
    (xs, ts, cs, pred) = seen[0]  # the training step's call (the last-step check calls the UNet again, in eval mode)
    assert torch.equal(ts, t) and torch.allclose(xs, x_t, atol=1e-5) and torch.allclose(cs, emb, atol=1e-6)
    target = eps if pt == 'epsilon' else ab.sqrt() * eps - (1 - ab).sqrt() * z
    assert loss == pytest.approx((pred - target).pow(2).mean().item(), rel=1e-5)


# kills: F33 F35
def test_the_cards_finetune_record_names_the_runs_settings_and_where_it_resumed(pipe, tmp_path):
    "A run of 2 steps, then the same run resumed to 3: the second record says steps 3, resumed_from 2, and the settings it trained with."
    p = fresh_unet(pipe); p.model_card = {'name': 't'}
    kw = dict(batch_size=2, lr=2e-4, cond_drop=0.25, ema_decay=0.9, seed=3, warmup=1, progress=False, ckpt_dir=tmp_path)
    D.finetune(p, (imgs(4), ['a', 'b'] * 2), steps=2, **kw)
    with pytest.warns(UserWarning, match='changes the learning-rate schedule'): D.finetune(p, (imgs(4), ['a', 'b'] * 2), steps=3, **kw)
    first, second = p.model_card['finetune']
    assert (first['steps'], first['resumed_from'], second['steps'], second['resumed_from']) == (2, 0, 3, 2)
    assert {k: second[k] for k in ('n_images', 'lr', 'batch_size', 'cond_drop', 'ema_decay', 'seed')} == dict(n_images=4, lr=2e-4, batch_size=2, cond_drop=0.25, ema_decay=0.9, seed=3)


# kills: F38
def test_finetune_freezes_a_unet_that_came_all_trainable(pipe):
    "A UNet whose every parameter asked for gradients trains whole and comes back as build_pipeline gives it: eval mode, nothing trainable."
    p = fresh_unet(pipe); p.unet.requires_grad_(True)
    D.finetune(p, (imgs(4), ['a', 'b'] * 2), steps=1, batch_size=2, warmup=1, progress=False)
    assert not p.unet.training and not any(q.requires_grad for q in p.unet.parameters())


# kills: G20
def test_an_unused_negative_prompt_is_said_when_any_image_has_one():
    "At guidance_scale 1 the negative prompts are unused: said when any of them is non-empty (not only when all are); all empty is silent."
    import warnings
    with pytest.warns(UserWarning, match='is unused at guidance_scale=1'): D.check_negative_prompt(['', 'ribs'], 1.0, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert D.check_negative_prompt(['', ''], 1.0, 2) == ['', ''] and D.check_negative_prompt(['', 'ribs'], 3.0, 2) == ['', 'ribs']
    assert not caught


# kills: F56
def test_resume_takes_sample_weights_in_the_same_proportions(pipe, tmp_path):
    "Sampling weights draw in proportion: (1, 1, 2, 2) and (2, 2, 4, 4) are the same draws, so a state saved with one resumes with the other; (1, 2, 1, 2) is refused."
    data = (imgs(4), ['a', 'b'] * 2)
    def run(w, steps): return D.finetune(fresh_unet(pipe), data, steps=steps, batch_size=2, warmup=1, weights=w, progress=False, ckpt_dir=tmp_path)
    run([1.0, 1.0, 2.0, 2.0], 2)
    with pytest.warns(UserWarning, match='changes the learning-rate schedule'): out = run([2.0, 2.0, 4.0, 4.0], 3)
    assert out['start'] == 2
    with pytest.raises(ValueError, match='saved with other settings.*weights='): run([1.0, 2.0, 1.0, 2.0], 4)


# kills: IE9
def test_inversion_editor_regenerates_with_its_guidance_interval(pipe):
    "inversion_editor(guidance_interval=(0, 100)) is ddim_invert + regenerate with that interval, bit for bit: on a 4-step grid from step 2 the step at t=251 runs unguided, so it is not the every-step edit."
    x = imgs(2)
    caps = lambda v: [f"effusion {int(e)}" for e in np.broadcast_to(np.asarray(v['effusion']), (2,))]
    ed = D.inversion_editor(pipe, caps, num_inference_steps=4, start_step=2, guidance_scale=2.0, guidance_interval=(0, 100))
    inv = D.ddim_invert(pipe, x, ['effusion 1'] * 2, 4, start_step=2, check=False)
    got = ed(x, dict(effusion=0), dict(effusion=1))
    assert torch.equal(got, D.regenerate(pipe, inv, ['effusion 0'] * 2, guidance_scale=2.0, guidance_interval=(0, 100)))
    assert not torch.equal(got, D.regenerate(pipe, inv, ['effusion 0'] * 2, guidance_scale=2.0))


import contextlib


@contextlib.contextmanager
def _default_dtype(dt):
    "torch's default dtype set to `dt` inside, and set back whatever happens."
    old = torch.get_default_dtype(); torch.set_default_dtype(dt)
    try: yield
    finally: torch.set_default_dtype(old)


def test_seeded_noise_does_not_change_with_the_default_dtype(pipe):
    "A seed's noise is drawn in float32 whatever torch's default dtype (a float64 draw is another stream: initial_latents differed by 4.4 and came back float64): "
    "initial_latents and generate with step noise (eta=1) give the same tensors after torch.set_default_dtype(torch.float64)."
    want_x, want_im = D.initial_latents(pipe, 2, seed=1), D.generate(pipe, ['a', 'b'], num_inference_steps=2, seed=1, eta=1.0)
    with _default_dtype(torch.float64): got_x, got_im = D.initial_latents(pipe, 2, seed=1), D.generate(pipe, ['a', 'b'], num_inference_steps=2, seed=1, eta=1.0)
    assert got_x.dtype == torch.float32 and torch.equal(got_x, want_x)
    assert torch.equal(got_im, want_im)


def test_training_draws_do_not_change_with_the_default_dtype(pipe):
    "finetune's latents, noise and caption drops and train_vae's posterior samples are float32 draws whatever torch's default dtype: the same weights after torch.set_default_dtype(torch.float64)."
    x = imgs(4); data = (x, ['a', 'b'] * 2)  # float32 images, made outside the float64 session
    def runs(dt):
        ft, vae = fresh_unet(pipe), D.assemble_pipeline(copy.deepcopy(pipe.vae), pipe.unet, pipe.scheduler, pipe.text_encoder, pipe.tokenizer)  # float32 models
        with _default_dtype(dt):
            D.finetune(ft, data, steps=2, batch_size=2, warmup=1, cond_drop=0.5, seed=3, progress=False)
            D.train_vae(vae, x, steps=1, batch_size=2, seed=4, progress=False)
        return [q.detach().clone() for q in (*ft.unet.parameters(), *vae.vae.parameters())]
    want, got = runs(torch.float32), runs(torch.float64)
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_finetune_resume_refuses_another_tokenizer(pipe, tmp_path):
    "The resume check records the tokenizer as well as the text encoder's weights: a state saved with model_max_length 48 (or right padding) is refused with 16 (or left), "
    "naming what differs; the same tokenizer resumes; a state saved before the tokenizer was recorded resumes with a warning that it was not checked."
    data, kw = (imgs(4), ['a', 'b'] * 2), dict(steps=2, batch_size=2, warmup=1, progress=False, ckpt_dir=tmp_path)
    D.finetune(fresh_unet(pipe), data, **kw)
    def with_tok(**changes):
        p = fresh_unet(pipe); tok = copy.deepcopy(p.tokenizer)
        for k, v in changes.items(): setattr(tok, k, v)
        return D.assemble_pipeline(p.vae, p.unet, p.scheduler, p.text_encoder, tok)
    with pytest.raises(ValueError, match=r"saved with other settings: tokenizer \(model_max_length: 48 saved, 16 now\); resume with the saved settings"):
        D.finetune(with_tok(model_max_length=16), data, **kw)
    with pytest.raises(ValueError, match=r"tokenizer \(padding_side: 'right' saved, 'left' now\)"): D.finetune(with_tok(padding_side='left'), data, **kw)
    assert D.finetune(with_tok(), data, **kw)['start'] == 2  # a copy of the same tokenizer: its state, finished
    f = tmp_path / 'finetune_state.pt'; s = torch.load(f, weights_only=False); del s['settings']['tokenizer']; torch.save(s, f)  # as the previous medcf saved it
    with pytest.warns(UserWarning, match=r"saved before medcf recorded \['tokenizer'\]; resuming without checking"): assert D.finetune(with_tok(), data, **kw)['start'] == 2


def _dropout_pipe(pipe):
    "`pipe` with a new seeded UNet whose resnets have dropout 0.1 (a valid diffusers config): in train mode it draws from torch's global generator."
    from diffusers import UNet2DConditionModel
    torch.manual_seed(0)
    u = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), down_block_types=('CrossAttnDownBlock2D',) * 2,
                             up_block_types=('CrossAttnUpBlock2D',) * 2, layers_per_block=1, cross_attention_dim=384, attention_head_dim=8, norm_num_groups=16, dropout=0.1)
    return D.assemble_pipeline(pipe.vae, u, pipe.scheduler, pipe.text_encoder, pipe.tokenizer)


def test_finetune_seed_covers_the_unets_dropout(pipe):
    "The UNet's dropout draws from torch's global generator, which finetune forks and seeds from `seed`: two seed=0 runs agree whatever the caller's global stream "
    "(the losses differed), another seed differs, and the caller's global stream is left as it was."
    data, kw = (imgs(4), ['a', 'b'] * 2), dict(steps=3, batch_size=4, warmup=1, progress=False, ema_decay=None)
    losses, after = [], []
    for g in (1, 2):
        p = _dropout_pipe(pipe); torch.manual_seed(g); want = torch.rand(3); torch.manual_seed(g)
        losses.append(D.finetune(p, data, **kw)['loss'])
        after.append(torch.equal(torch.rand(3), want))  # the caller's stream goes on as if finetune had not run
    assert losses[0] == losses[1]
    assert all(after)
    assert D.finetune(_dropout_pipe(pipe), data, seed=1, **kw)['loss'] != losses[0]


def test_finetune_with_dropout_resumes_exactly(pipe, tmp_path):
    "A dropout UNet's run stopped at step 3 (its state saved at step 2) and resumed ends with the uninterrupted run's weights bit for bit (the global stream was not "
    "saved: max diff 4.4e-4); a state saved before medcf kept the global generators resumes as before (from a seeded stream)."
    data, kw = (imgs(4), ['a', 'b'] * 2), dict(steps=4, batch_size=4, warmup=1, progress=False, ckpt_every=2, ckpt_dir=tmp_path)
    torch.manual_seed(7); full = _dropout_pipe(pipe); torch.manual_seed(7); D.finetune(full, data, **{**kw, 'ckpt_dir': tmp_path / 'full'})
    p, n = _dropout_pipe(pipe), [0]
    def stop(m, a):
        n[0] += 1
        if n[0] == 3: raise KeyboardInterrupt
    h = p.unet.register_forward_pre_hook(stop)
    torch.manual_seed(7)
    with pytest.warns(UserWarning, match='stopped early'), pytest.raises(KeyboardInterrupt): D.finetune(p, data, **kw)
    h.remove()
    f = tmp_path / 'finetune_state.pt'; s = torch.load(f, weights_only=False); del s['global_rng']
    (tmp_path / 'old').mkdir(); torch.save(s, tmp_path / 'old' / f.name)  # the step-2 state as the previous medcf saved it
    torch.manual_seed(7); p2 = _dropout_pipe(pipe); torch.manual_seed(7)
    assert D.finetune(p2, data, **kw)['start'] == 2
    assert all(torch.equal(a, b) for a, b in zip(full.unet.parameters(), p2.unet.parameters()))
    assert D.finetune(_dropout_pipe(pipe), data, **{**kw, 'ckpt_dir': tmp_path / 'old'})['start'] == 2


def test_finetune_refuses_a_state_with_a_broken_global_rng(pipe, tmp_path):
    "A state whose global generators' states are not a dict of uint8 tensors is refused by name when read, before any work (torch's own error came from inside the run)."
    data, kw = (imgs(4), ['a', 'b'] * 2), dict(steps=2, batch_size=2, warmup=1, progress=False, ckpt_dir=tmp_path)
    D.finetune(fresh_unet(pipe), data, **kw)
    f = tmp_path / 'finetune_state.pt'; s = torch.load(f, weights_only=False); s['global_rng'] = {'cpu': torch.zeros(3)}; torch.save(s, f)
    with pytest.raises(ValueError, match=r"holds a global_rng of dict; expected a dict of torch's generator states by device type \(uint8 tensors\)"): D.finetune(fresh_unet(pipe), data, **kw)


def test_save_pipeline_refuses_a_tokenizer_or_padding_mask_it_would_not_give_back(pipe, tmp_path):
    "Without include_text_encoder, a left-padding tokenizer or a text encoder that reads the padding mask is refused by name (the folder reloaded "
    "padding right, the mask flag None: embeddings 6.04 and 2.63 apart); with it both come back; the packaged parts and the shipped pipelines still save."
    for what, edit, match in (('side', lambda p: setattr(p.tokenizer, 'padding_side', 'left'), r"tokenizer differs from the packaged MiniLM's \(padding_side 'left', packaged 'right'\)"),
                              ('mask', lambda p: setattr(p.text_encoder.config, 'use_attention_mask', True), r"use_attention_mask=True \(the packaged MiniLM's: False\)")):
        p = copy.deepcopy(pipe); edit(p)
        with pytest.raises(ValueError, match=match + '.*include_text_encoder=True'): D.save_pipeline(p, tmp_path / what)
        assert not (tmp_path / what).exists()
        back = D.load_pipeline(D.save_pipeline(p, tmp_path / what, include_text_encoder=True, fp16=False))
        assert torch.equal(D.encode_prompts(p, ['Chest X-ray']), D.encode_prompts(back, ['Chest X-ray']))
    p = copy.deepcopy(pipe); p.tokenizer.model_max_length = 16  # the padding length travels in the card
    assert D.load_pipeline(D.save_pipeline(p, tmp_path / 'short')).tokenizer.model_max_length == 16
    assert D.save_pipeline(D.load_pipeline('chest'), tmp_path / 'chest').exists()


def test_ddim_scheduler_takes_the_betas_of_a_schedule_ddim_cannot_build(pipe):
    "A DDPM 'sigmoid' or Heun 'exp' schedule (check_scheduler and finetune take both) gives a DDIM with the scheduler's own alphas_cumprod, "
    "exactly, and generate samples with it (DDIMScheduler's constructor raised a bare NotImplementedError); a schedule DDIM has is built from the config as before."
    import warnings, diffusers
    with warnings.catch_warnings():  # Heun's constructor warns of numpy's copy keyword
        warnings.simplefilter('ignore')
        scheds = (diffusers.DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule='sigmoid', rescale_betas_zero_snr=True),
                  diffusers.HeunDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule='exp'))
    for sched in scheds:
        p = copy.copy(pipe); p.scheduler = sched
        with warnings.catch_warnings(): warnings.simplefilter('ignore'); s = D.ddim_scheduler(p, 10)
        assert torch.equal(s.alphas_cumprod, sched.alphas_cumprod) and s.config.num_train_timesteps == 1000 and len(s.timesteps) == 10
        with warnings.catch_warnings(): warnings.simplefilter('ignore'); assert D.generate(p, ['a'], num_inference_steps=2).isfinite().all()
    s = D.ddim_scheduler(pipe, 10)
    assert s.config.trained_betas is None and s.config.beta_schedule == 'scaled_linear' and torch.equal(s.alphas_cumprod, pipe.scheduler.alphas_cumprod)


def test_train_vae_warns_for_a_loaded_or_fine_tuned_unet_at_factor_one(pipe, tmp_path):
    "A saved-and-loaded pipeline, or a built one whose card records a fine-tune, has a UNet trained on the latents of factor 1.0: re-fitting the factor "
    "(1.0 -> 0.957 here) is said, as the appendix says (it was silent whenever the old factor was 1.0); a built pipeline's first fit stays silent."
    import warnings
    loaded = D.load_pipeline(D.save_pipeline(pipe, tmp_path / 'm'))
    tuned = copy.deepcopy(pipe); tuned.model_card = {'finetune': [dict(steps=2, resumed_from=0)]}
    for p, n in ((loaded, 1), (tuned, 1), (copy.deepcopy(pipe), 0)):
        assert p.vae.config.scaling_factor == 1.0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always'); sf = D.train_vae(p, imgs(4), steps=1, batch_size=2, progress=False)['scaling_factor']
        said = [str(w.message) for w in caught if 're-fitted vae.config.scaling_factor (1 -> ' in str(w.message)]
        assert abs(sf - 1) > 0.01 and len(said) == n


def test_build_unet_refuses_attention_levels_that_are_not_true_or_false():
    "Each attention level must be True or False: 'no', 'False' and the characters of a string read as True (cross-attention everywhere); "
    "numpy's bools are bools, and the levels asked for are built."
    for bad, match in ((['no', 'yes'], r"attention_levels\[0\]='no': expected True or False"), (('False', 'True'), r"attention_levels\[0\]='False'"),
                       ([1, 0], r'attention_levels\[0\]=1'), ('ab', r"attention_levels='ab': expected None or a sequence of True/False, one per level \(2\)")):
        with pytest.raises(TypeError, match=match): D.build_unet(8, 4, (16, 32), attention_levels=bad)
    with pytest.raises(TypeError, match=r"attention_levels\[0\]='False'"):
        D.build_pipeline(channels=1, size=32, vae_blocks=(8, 8, 16), unet_blocks=(16, 32), unet_attention=('False', 'True'))
    assert D.build_unet(8, 4, (16, 32), attention_levels=np.array([False, True])).config.down_block_types == ('DownBlock2D', 'CrossAttnDownBlock2D')


def test_build_pipeline_refuses_a_seed_that_is_not_a_64_bit_non_negative_integer(pipe):
    "seed is checked as finetune and train_vae check it: -1 (which built 2**64 - 1's weights), True (seed 1's) and 3.0 are refused by name; "
    "a numpy integer seed builds the int's weights."
    kw = dict(channels=1, size=32, vae_blocks=(8, 8, 16), unet_blocks=(16, 32))
    for bad in (-1, True, 3.0, 2**63):
        with pytest.raises(ValueError, match=rf"seed={bad!r}: expected an integer in \[0, 9223372036854775807\]"): D.build_pipeline(seed=bad, **kw)
    p = D.build_pipeline(seed=np.int64(0), **kw)
    assert all(torch.equal(a, b) for a, b in zip(p.unet.parameters(), pipe.unet.parameters()))


def test_finetune_leaves_the_same_marking_whether_it_finishes_or_stops(pipe):
    "A UNet marked all trainable comes back frozen (as load_pipeline gives it) from a run that stops with an error as from one that finishes "
    "(the error path put all 286 flags back); a partial marking (attn2 only) is kept on both paths."
    import warnings
    data, kw = (imgs(4), ['a'] * 4), dict(steps=2, batch_size=2, warmup=1, progress=False)
    for mark, want in (('all', []), ('attn2', [n for n, _ in pipe.unet.named_parameters() if 'attn2' in n])):
        for stop in (False, True):
            p = fresh_unet(pipe)
            for n, q in p.unet.named_parameters(): q.requires_grad_(mark == 'all' or 'attn2' in n)
            if stop:
                forward = p.unet.forward
                def flaky(*a, _forward=forward, _calls=[], **k):
                    _calls.append(1)
                    if len(_calls) == 2: raise KeyboardInterrupt
                    return _forward(*a, **k)
                p.unet.forward = flaky
                with warnings.catch_warnings(), pytest.raises(KeyboardInterrupt): warnings.simplefilter('ignore'); D.finetune(p, data, **kw)
            else: D.finetune(p, data, **kw)
            assert not p.unet.training and [n for n, q in p.unet.named_parameters() if q.requires_grad] == want, (mark, stop)


def test_save_pipeline_into_a_ckpt_dir_says_first_that_its_state_is_in_the_way(pipe, tmp_path):
    "A folder holding a finetune ckpt_dir's finetune_state.pt is refused by the same message with or without overwrite (the first one said "
    "'pass overwrite=True', which was then refused as well), and the state is left in place; a checkpoint alone still asks for overwrite=True."
    torch.save({'step': 1}, tmp_path / 'finetune_state.pt')
    for ow in (False, True):
        with pytest.raises(FileExistsError, match=r"holds files that are not a checkpoint's: \['finetune_state.pt'\] \(finetune_state.pt is a finetune ckpt_dir's "
                                                  r"resumable state\).*choose another folder") as e: D.save_pipeline(pipe, tmp_path, overwrite=ow)
        assert 'pass overwrite=True' not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['finetune_state.pt']
    d = D.save_pipeline(pipe, tmp_path / 'ck')
    with pytest.raises(FileExistsError, match=r'is not empty .*pass overwrite=True'): D.save_pipeline(pipe, d)


def test_train_vae_warns_after_finetune_on_a_pipeline_without_a_card(pipe):
    "A built pipeline has no model_card, so finetune left no record, and build -> finetune -> train_vae re-fitted the latent scale (1.0 -> 0.91) silently: finetune marks the UNet it trained."
    import warnings
    p = copy.deepcopy(pipe); assert getattr(p, 'model_card', None) is None and p.vae.config.scaling_factor == 1.0
    D.finetune(p, (imgs(4), ['a'] * 4), steps=1, batch_size=2, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always'); sf = D.train_vae(p, imgs(4), steps=1, batch_size=2, progress=False)['scaling_factor']
    assert abs(sf - 1) > 0.01 and any('re-fitted vae.config.scaling_factor (1 -> ' in str(w.message) for w in caught)
