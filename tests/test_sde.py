"Bad input, determinism and pairing for medcf.sde (fast: tiny trials, one epoch)."
import numpy as np, pytest, torch
from medcf.phantoms import MSTrial, MS_ARMS
from medcf.sde import (trial_tensors, check_visits, BaselineEncoder, CausalSDE, TLearner, GRUBaseline, fit, predict,
                       evaluate, auroc, enrichment, SharedBrownian, benchmark_epoch)
import torchsde


def test_unknown_arm(small):
    tr, T = small
    m = CausalSDE(); m.fit_scaler(T.tab)
    with pytest.raises(ValueError, match='unknown arm'): m.sample_paths(T[:2], n_paths=2, arms=('placebo', 'drug_c'))
    for model in (TLearner(), GRUBaseline()):
        model.fit_scaler(T.tab)
        with pytest.raises(ValueError, match='unknown arm'): model(T[:2], 'drug_c')
        with pytest.raises(ValueError, match='unknown arm'): model(T[:2], 3)
    with pytest.raises(ValueError, match='unknown arm'): tr.cate('aspirin')

def test_visit_times_not_increasing(small):
    tr, _ = small
    i = int(np.argmax(tr.mask.all(1)))
    t = tr.visit_t.copy(); t[i, [2, 3]] = t[i, [3, 2]]
    with pytest.raises(ValueError, match='not strictly increasing'): check_visits(t)
    t = tr.visit_t.copy(); t[i, 2] = t[i, 1]                       # a repeated date
    with pytest.raises(ValueError, match='not strictly increasing'): check_visits(t)
    bad = tr[:]; bad.visit_idx = bad.visit_idx.copy(); bad.visit_idx[i, [2, 3]] = bad.visit_idx[i, [3, 2]]
    with pytest.raises(ValueError, match='not strictly increasing'): trial_tensors(bad)
    check_visits(tr.visit_t)                                        # the simulator's own visits pass

def test_wrong_tabular_width(small):
    _, T = small
    enc = BaselineEncoder()
    with pytest.raises(ValueError, match=r'expected \(N, 6\)'): enc(T.image[:3], T.tab[:3, :5])
    with pytest.raises(ValueError, match=r'expected \(N, 6\)'): enc.fit_scaler(torch.zeros(4, 7))
    with pytest.raises(ValueError, match='image has shape'): enc(T.image[:2], T.tab[:3])

def test_bad_settings(small):
    _, T = small
    with pytest.raises(ValueError, match='objective'): fit(CausalSDE(), T, epochs=1, objective='vae')
    with pytest.raises(ValueError, match='epochs'): fit(CausalSDE(), T, epochs=0)
    with pytest.raises(ValueError, match='level'): predict(GRUBaseline(), T, level=1.5)
    with pytest.raises(ValueError): auroc(np.ones(3), np.ones(3, bool))   # no negatives
    with pytest.raises(ValueError): trial_tensors(small[0], img_size=24)   # does not divide 64

def test_simulator_determinism_and_pairing():
    a, b = MSTrial(seed=3).simulate(10, seed=5), MSTrial(seed=3).simulate(10, seed=5)
    assert np.array_equal(a.visit_y, b.visit_y, equal_nan=True) and np.array_equal(a.latent, b.latent)
    assert torch.equal(a.baseline.images, b.baseline.images)
    c = MSTrial(seed=3).simulate(10, seed=6)
    assert not np.array_equal(a.latent, c.latent)
    # same Brownian path for every arm: placebo - drug_a is deterministic drift, so the difference is monotone
    assert np.all(np.diff(a.latent[:, 0] - a.latent[:, 1], axis=1) >= -1e-12)

def test_training_and_paths_deterministic(small):
    tr, T = small
    out = []
    for _ in range(2):
        torch.manual_seed(0); m = CausalSDE(); h = fit(m, T, epochs=1, batch_size=12, seed=4)
        out.append((h, m.sample_paths(T[:3], n_paths=4, seed=2)))
    assert out[0][0] == out[1][0] and torch.equal(out[0][1], out[1][1])
    P, P1 = out[0][1], m.sample_paths(T[:3], n_paths=4, seed=2, batched=False)
    assert P.shape == (4, len(MS_ARMS), 3, len(T.grid)) and torch.allclose(P, P1, atol=1e-5)

def test_elbo_adjoint_gives_encoder_gradients(small):
    _, T = small
    m = CausalSDE(); m.fit_scaler(T.tab)
    m.elbo(T[:6], adjoint=True).backward()
    assert m.enc.mlp[0].weight.grad.abs().sum() > 0

def test_losses_are_functions_of_their_entropy(small):
    "elbo and mc_nll draw z0 and the Brownian path from `entropy` alone: the global RNG plays no part."
    _, T = small
    torch.manual_seed(0); m = CausalSDE(); m.fit_scaler(T.tab)
    for f in (lambda e: m.elbo(T[:6], entropy=e), lambda e: m.mc_nll(T[:6], k=3, entropy=e)):
        torch.manual_seed(1); a = f(5).item()
        torch.manual_seed(2); b = f(5).item()
        assert a == b and f(6).item() != a

def test_shared_brownian():
    bm = torchsde.BrownianInterval(0., 1., (4, 3), entropy=1)
    W = SharedBrownian(bm, 2)
    assert W.shape == (8, 3)
    w = W(0.2, 0.7); assert torch.equal(w[:4], w[4:])

def test_metrics():
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert auroc(np.array([3., 2., 1.]), np.array([1, 0, 0])) == 1.0
    e = enrichment(np.array([-3., -2., -1., 0.]), np.array([-1., -1., 0., 0.]), fractions=(0.5,))
    assert e.top[0] == -1 and e.rest[0] == 0

def test_evaluate_runs(small):
    tr, T = small
    m = GRUBaseline(); fit(m, T, epochs=1)
    r = evaluate(predict(m, T), tr)
    assert set(r) >= {'mse_final', 'mse_visits', 'pehe_drug_a', 'pehe_drug_b', 'coverage90', 'auroc_resp'}
    with pytest.raises(ValueError, match='prediction for'): evaluate(predict(m, T[:5]), tr)

def test_cate_at_any_time(small):
    tr, T = small
    m = CausalSDE(); m.fit_scaler(T.tab)
    p1, p2 = predict(m, T[:4], n_paths=4, t=1.0), predict(m, T[:4], n_paths=4)
    assert p1.cate.shape == p2.cate.shape == (4, len(MS_ARMS)) and np.allclose(p1.cate[:, 0], 0)
    with pytest.raises(ValueError, match='outside the trial'): predict(m, T[:4], n_paths=4, t=3.0)
    for t in (1.3, 1 / 24):  # between grid points: refused, not read at the nearest month
        with pytest.raises(ValueError, match=r'lies between the trial.s grid times .*expected one of its times'): predict(m, T[:4], n_paths=4, t=t)
        with pytest.raises(ValueError, match='lies between'): tr.cate('drug_a', t=t)
        with pytest.raises(ValueError, match='lies between'): tr.responders('drug_a', t=t)
    for t in ('1', np.nan, True):
        with pytest.raises(ValueError, match='expected a time in years'): tr.cate('drug_a', t=t)
    assert np.array_equal(tr.cate('drug_a', t=1.0), tr.cate('drug_a', t=1.0 + 1e-9)) and np.array_equal(tr.cate('drug_a', 2), tr.cate('drug_a'))
    assert predict(m, T[:4], n_paths=4, t=1 / 12).cate_t == pytest.approx(1 / 12)
    tl = TLearner(); tl.fit_scaler(T.tab)
    with pytest.raises(ValueError, match='horizon only'): predict(tl, T[:4], t=1.0)

def test_trial_tensors_rejects_bad_visits(small):
    "A NaN or off-scale EDSS at an observed visit, or a visit index off the grid, raises instead of becoming data."
    tr, _ = small
    i, j = np.argwhere(tr.visit_idx[:, 1:] >= 0)[0] + [0, 1]      # an observed follow-up visit
    for val, msg in [(np.nan, 'no EDSS'), (42., 'EDSS scale'), (-1., 'EDSS scale')]:
        bad = tr[:]; bad.visit_y = tr.visit_y.copy(); bad.visit_y[i, j] = val
        with pytest.raises(ValueError, match=msg): trial_tensors(bad)
    for val in (len(tr.grid), -5):
        bad = tr[:]; bad.visit_idx = tr.visit_idx.copy(); bad.visit_idx[i, j] = val  # at the observed visit: its EDSS is a number, so only the index can be refused
        with pytest.raises(ValueError, match=rf'visit_idx has values \[{val}\]; expected grid indices'): trial_tensors(bad)
    for s in (0, -16, 8.0):
        with pytest.raises(ValueError, match='img_size'): trial_tensors(tr, img_size=s)
    with pytest.raises(TypeError, match='MSTrialData'): trial_tensors(None)

def test_fit_rejects_bad_settings(small):
    tr, T = small
    for bs in (0, -1, 2.5):
        with pytest.raises(ValueError, match='batch_size'): fit(GRUBaseline(), T, epochs=1, batch_size=bs)
    assert len(fit(GRUBaseline(), T[:8], epochs=np.int64(1), batch_size=np.int64(4))) == 1   # numpy ints are integers
    bad = T[:8]; bad.tab = bad.tab.clone(); bad.tab[0, 0] = float('nan')
    with pytest.raises(ValueError, match='data.tab'): fit(GRUBaseline(), bad, epochs=1)
    with pytest.raises(TypeError, match='TrialTensors'): fit(GRUBaseline(), tr, epochs=1)
    with pytest.raises(TypeError, match='TrialTensors'): predict(GRUBaseline(), tr)
    with pytest.raises(ValueError, match='CausalSDE only'): fit(GRUBaseline(), T, epochs=1, objective='elbo')
    with pytest.raises(ValueError, match='kl_warmup'): fit(CausalSDE(), T, epochs=1, objective='elbo', kl_warmup=-1)
    with pytest.raises(TypeError, match='CausalSDE'): benchmark_epoch(GRUBaseline(), T[:4], adjoint=True)
    with pytest.raises(ValueError, match='batch_size'): benchmark_epoch(CausalSDE(), T[:4], adjoint=False, batch_size=0)

def test_metrics_reject_nan_and_bad_labels():
    with pytest.raises(ValueError, match='scores'): auroc(np.array([np.nan, 0.1, 0.9, 0.5]), np.array([1, 0, 1, 0]))
    with pytest.raises(ValueError, match='labels'): auroc(np.array([0.1, 0.9, 0.5]), np.array([0, 2, 0]))
    with pytest.raises(ValueError, match='labels'): auroc(np.array([0.1, 0.9, 0.5]), np.array([0, 1, np.nan]))
    assert auroc(np.array([0.1, 0.9, 0.5]), np.array([False, True, False])) == 1.0
    x = np.arange(10.)
    with pytest.raises(ValueError, match='at least 2'): enrichment(np.array([]), np.array([]))
    with pytest.raises(ValueError, match='at least 2'): enrichment(x[:1], x[:1], fractions=(0.5,))
    for fr in ((5,), (0, -1), (0.5, 1.0), ()):
        with pytest.raises(ValueError, match='fractions'): enrichment(x, x, fractions=fr)
    with pytest.raises(ValueError, match='NaN'): enrichment(np.r_[np.nan, x[1:]], x, fractions=(0.1,))


def test_fit_wants_a_built_model():
    "A model name where a model belongs was an AttributeError deep in fit."
    tt = trial_tensors(MSTrial(seed=0).simulate(8, seed=0), img_size=16)
    with pytest.raises(TypeError, match='expected a built model'): fit('gru', tt, epochs=1)

def test_evaluate_scores_the_effect_at_its_own_time(small):
    "An effect predicted for t = 1 year is scored against the truth at 1 year (it used to be the horizon's, whatever t)."
    tr, T = small
    m = GRUBaseline(); fit(m, T, epochs=1)
    p1, ph = predict(m, T, t=1.0), predict(m, T)
    assert p1.cate_t == pytest.approx(float(T.grid[np.argmin(np.abs(T.grid.numpy() - 1.0))])) and ph.cate_t == pytest.approx(float(T.grid[-1]))
    for a in MS_ARMS[1:]:
        j = MS_ARMS.index(a)
        assert evaluate(p1, tr)[f'pehe_{a}'] == pytest.approx(np.sqrt(np.mean((p1.cate[:, j] - tr.cate(a, t=1.0)) ** 2)))
        assert evaluate(ph, tr)[f'pehe_{a}'] == pytest.approx(np.sqrt(np.mean((ph.cate[:, j] - tr.cate(a)) ** 2)))
    resp1, resp_h = tr.responders('drug_a', -0.5, t=1.0), tr.responders('drug_a', -0.5)
    assert (resp1 != resp_h).any()  # the two times disagree on who responds: the check below can tell them apart
    assert evaluate(p1, tr)['auroc_resp'] == pytest.approx(auroc(-p1.cate[:, 1], resp1))

def test_enrichment_refuses_a_fraction_it_cannot_honour():
    "With 4 patients a 5% top group would be 0 patients: refused, not silently made 1 (25%); each row says its group size."
    x = np.array([-3., -2., -1., 0.])
    assert enrichment(x, x, fractions=(0.25, 0.5, 0.75)).n_top.tolist() == [1, 2, 3]
    for f in (0.05, 0.1, 0.9, 0.95):
        with pytest.raises(ValueError, match='top group of'): enrichment(x, x, fractions=(f,))

def test_adjoint_encoder_gradient_equals_direct(small):
    "The adjoint must carry the encoder's gradient through the SDE, not only through the KL outside it: close to direct backprop."
    _, T = small
    grads = []
    for adj in (False, True):
        torch.manual_seed(0); m = CausalSDE(); m.fit_scaler(T.tab)
        torch.manual_seed(1); m.elbo(T[:6], adjoint=adj).backward()
        grads.append(m.enc.mlp[0].weight.grad.clone())
    assert (grads[1] - grads[0]).norm() < 0.1 * grads[0].norm()

def test_causal_sde_effect_at_its_time(small):
    "predict(t=1) reads the SDE's effect at 1 year, not at the horizon (whose true effect differs)."
    tr, T = small
    torch.manual_seed(0); m = CausalSDE(); m.fit_scaler(T.tab)
    p1, ph = predict(m, T[:8], n_paths=8, t=1.0), predict(m, T[:8], n_paths=8)
    assert p1.cate_t < ph.cate_t and not np.allclose(p1.cate[:, 1:], ph.cate[:, 1:])


def test_grid_visit_index_and_scaler_checks():
    "Read-only audit, session 26: an uneven grid was integrated in steps of its first spacing (a straight line), a non-increasing one failed inside torchsde, "
    "float visit indices gave an IndexError, one training record gave NaN everywhere."
    import dataclasses
    tr = MSTrial(seed=0).simulate(6, seed=1)
    g = np.asarray(tr.grid, dtype=float)
    uneven = g.copy(); uneven[1:] = np.concatenate([[1.0], np.linspace(1.0, g[-1], len(g) - 1)[1:]])
    with pytest.raises(ValueError, match="spacing ranges over"): trial_tensors(dataclasses.replace(tr, grid=uneven))
    back = g.copy(); back[1] = g[2]
    with pytest.raises(ValueError, match="time grid is not strictly increasing"): trial_tensors(dataclasses.replace(tr, grid=back))
    with pytest.raises(TypeError, match="visit_idx has dtype float64; expected integer"): trial_tensors(dataclasses.replace(tr, visit_idx=np.asarray(tr.visit_idx, dtype=float)))
    enc = BaselineEncoder()
    with pytest.raises(ValueError, match="fit_scaler got 1 training record"): enc.fit_scaler(torch.as_tensor(tr.tabular())[:1])


def test_final_visit_is_read_where_it_happened():
    "evaluate read every prediction at the horizon, also for patients whose final visit came a month earlier (a perfect prediction scored > 0)."
    from medcf.sde import MSPrediction, evaluate
    tr = MSTrial(seed=0).simulate(40, seed=1)
    G, n, last = len(tr.grid), len(tr), np.asarray(tr.visit_idx)[:, -1]
    assert ((last >= 0) & (last < G - 1)).any()  # some observed final visits are before the horizon
    mean = np.broadcast_to(np.arange(G, dtype=float), (n, 3, G)).copy()  # each time's prediction is its grid index
    y = np.asarray(tr.visit_y, dtype=float).copy(); y[:, -1] = np.where(last >= 0, last, np.nan)  # the truth at the final visit: its index
    import dataclasses
    t2 = dataclasses.replace(tr, visit_y=y)
    pred = MSPrediction('exact', np.asarray(tr.grid), mean, mean - 1, mean + 1, np.zeros((n, 3)))
    r = evaluate(pred, t2)
    assert r['mse_final'] == 0 and r['coverage90'] == 1


def test_sde_audit_session_32(small):
    "Read-only audit, session 32: records read wrongly without a word, arms in another order, unmatched rows, NaN images, a T-learner with nothing to learn."
    import copy
    from medcf.phantoms import MSTrialData
    tr, T = small
    def with_(base=None, vi=None, vy=None, **kw):
        return MSTrialData(base if base is not None else tr.baseline, tr.grid, tr.visit_idx if vi is None else vi, tr.visit_y if vy is None else vy, None, None, None, **kw)
    b = copy.deepcopy(tr.baseline); b.attrs['sex'] = (b.attrs.sex == 'M').astype(int)
    with pytest.raises(ValueError, match=r"sex has values \['0', '1'\]|sex has values \[0, 1\]"): trial_tensors(with_(b))
    b = copy.deepcopy(tr.baseline); b.attrs.loc[0, 'sex'] = None
    with pytest.raises(ValueError, match='sex has values'): trial_tensors(with_(b))
    with pytest.raises(ValueError, match=r"arms=\('drug_a', 'placebo', 'drug_b'\); expected \('placebo'"): with_(arms=('drug_a', 'placebo', 'drug_b'))
    with pytest.raises(ValueError, match='24 baselines but 23 rows of visits'): with_(vi=tr.visit_idx[:-1], vy=tr.visit_y[:-1])
    with pytest.raises(ValueError, match='visit_idx has shape .* and visit_y'): with_(vy=tr.visit_y[:, :-1])
    b = copy.deepcopy(tr.baseline); b.attrs['arm'] = b.attrs.arm.map({'placebo': 0, 'drug_a': 1, 'drug_b': 2})
    with pytest.raises(ValueError, match="arm column has .*expected arm names"): trial_tensors(with_(b))
    b = copy.deepcopy(tr.baseline); b.images[0, 0, 3, 3] = float('nan')
    with pytest.raises(ValueError, match='1 NaN or inf pixels'): fit(CausalSDE(), trial_tensors(with_(b)), epochs=1)
    b = copy.deepcopy(tr.baseline); b.images = b.images * 500
    with pytest.raises(ValueError, match=r'expected baseline images scaled to \[-1, 1\]'): fit(GRUBaseline(), trial_tensors(with_(b)), epochs=1)
    with pytest.raises(ValueError, match='no ground truth'): with_().cate('drug_a')
    assert len(with_()[:5]) == 5  # a trial without truth can be split
    # a dense schedule kept its final visit; with none in the last column a T-learner is refused, not trained on nothing
    dense = MSTrial(seed=0, visit_every=1 / 12, p_miss=0).simulate(30, seed=1)
    assert dense.mask[:, -1].mean() > 0.5
    none_final = with_(vi=np.where(np.arange(tr.visit_idx.shape[1]) == tr.visit_idx.shape[1] - 1, -1, tr.visit_idx),
                       vy=np.where(np.arange(tr.visit_idx.shape[1]) == tr.visit_idx.shape[1] - 1, np.nan, tr.visit_y))
    with pytest.raises(ValueError, match='no patient has an observed final visit'): fit(TLearner(), trial_tensors(none_final), epochs=1)
    # an arm absent from training is said; evaluate without responders keeps the other metrics
    two = T[T.arm != 2]
    with pytest.warns(UserWarning, match=r"arm\(s\) \['drug_b'\]"): fit(GRUBaseline(), two, epochs=1)
    m = GRUBaseline(); fit(m, T, epochs=1)
    with pytest.warns(UserWarning, match='responder AUROC is undefined'): r = evaluate(predict(m, T), tr, threshold=-20)
    assert np.isnan(r['auroc_resp']) and np.isfinite(r['pehe_drug_a'])
    # raw errors made clear
    assert len(T[0]) == 1 and len(T[-1]) == 1
    with pytest.raises(ValueError, match='holds no patients'): T[:0]
    with pytest.raises(TypeError, match='expected a fitted CausalSDE'): predict('sde', T)
    for kw in (dict(seed=None), dict(seed=1.0), dict(seed=-1), dict(level='0.9')):
        with pytest.raises(ValueError, match=next(iter(kw))): predict(m, T, **kw)
    for kw in (dict(lr='1e-2'), dict(kl_warmup='0.3'), dict(seed=None)):
        with pytest.raises(ValueError, match=next(iter(kw))): fit(GRUBaseline(), T, epochs=1, **kw)
    s = CausalSDE(); s.fit_scaler(T.tab)
    with pytest.raises(TypeError, match=r"arms='drug_a'; expected a sequence"): s.sample_paths(T[:2], 2, arms='drug_a')
    with pytest.raises(TypeError, match='expected TrialTensors'): s.sample_paths(tr, 2)
    with pytest.raises(ValueError, match='has no time'): check_visits(np.array([[0, np.nan, 1.]]), np.ones((1, 3), bool))
    with pytest.raises(ValueError, match='negative time'): check_visits(np.array([[-0.5, 0, 1.]]))


def test_trial_from_your_own_visits(small):
    "MSTrialData.from_visits: your images, record and visit times (placed on the grid) train and predict; off-grid times are refused."
    from medcf.phantoms import MSTrialData
    tr, T = small
    t = tr.visit_t
    own = MSTrialData.from_visits(tr.baseline.images, tr.baseline.attrs, t, tr.visit_y, tr.grid)
    assert np.array_equal(own.visit_idx, tr.visit_idx) and own.expected is None
    O = trial_tensors(own)
    assert torch.equal(O.tab, T.tab) and torch.equal(O.visit_idx, T.visit_idx)
    m = GRUBaseline(); fit(m, O, epochs=1)
    assert predict(m, O).mean.shape == (len(tr), len(MS_ARMS), len(tr.grid))
    with pytest.raises(ValueError, match='no ground truth'): evaluate(predict(m, O), own)
    off = t.copy(); off[0, 1] += 0.01
    with pytest.raises(ValueError, match='lies between'): MSTrialData.from_visits(tr.baseline.images, tr.baseline.attrs, off, tr.visit_y, tr.grid)
    with pytest.raises(ValueError, match='expected N of each'): MSTrialData.from_visits(tr.baseline.images[:3], tr.baseline.attrs, t, tr.visit_y, tr.grid)
    for bad in (tr.baseline.images[:, 0], tr.baseline.images.repeat(1, 3, 1, 1), tr.baseline.images.numpy()):  # one grey baseline slice each (session 42)
        with pytest.raises(ValueError, match='expected a tensor N x 1 x S x S of baseline slices'): MSTrialData.from_visits(bad, tr.baseline.attrs, t, tr.visit_y, tr.grid)


def test_save_load_and_fine_tuning(small, tmp_path):
    "save_model/load_model keep settings and record scaling (a state_dict alone lost d, c, q, width); fit(refit_scaler=False) keeps an earlier scaling; k reaches mc_nll."
    from medcf.sde import save_model, load_model
    tr, T = small
    for m in (CausalSDE(d=3, c=8, q=4, width=16), TLearner(c=8, width=16), GRUBaseline(c=8, width=16)):
        fit(m, T, epochs=1)
        p = save_model(m, tmp_path / f'{type(m).__name__}.pt')
        back = load_model(p)
        assert type(back) is type(m) and back.config == m.config
        a, b = predict(m, T[:4], n_paths=4), predict(back, T[:4], n_paths=4)
        assert np.array_equal(a.mean, b.mean) and np.array_equal(a.cate, b.cate)
        with pytest.raises(FileExistsError): save_model(m, p)
    with pytest.raises(FileNotFoundError, match='does not exist; expected an existing folder'): save_model(m, tmp_path / 'nope' / 'm.pt')
    with pytest.raises(TypeError, match='expected one of'): save_model(torch.nn.Linear(2, 2), tmp_path / 'x.pt')
    (tmp_path / 'bad.pt').write_bytes(b'not a model')
    with pytest.raises(ValueError, match='not a model file'): load_model(tmp_path / 'bad.pt')
    torch.save({'a': torch.zeros(1)}, tmp_path / 'other.pt')
    with pytest.raises(ValueError, match='holds no medcf model'): load_model(tmp_path / 'other.pt')
    m = GRUBaseline(); fit(m, T, epochs=1)
    mean = m.enc.tab_mean.clone()
    fit(m, T[:10], epochs=1, refit_scaler=False)
    assert torch.equal(m.enc.tab_mean, mean)
    fit(m, T[:10], epochs=1)
    assert not torch.equal(m.enc.tab_mean, mean)
    with pytest.raises(ValueError, match='never fitted'): fit(GRUBaseline(), T, epochs=1, refit_scaler=False)
    h2, h8 = fit(CausalSDE(), T, epochs=1, k=2), fit(CausalSDE(), T, epochs=1)
    assert h2 != h8
    with pytest.raises(ValueError, match='k='): fit(CausalSDE(), T, epochs=1, k=0)


def test_review_session_32(small):
    "The session-32 review: off-grid visit times name the patient and the remedy; indices past the end stop iteration; 0-d times; early final visits warned; k only where it applies."
    import warnings
    from medcf.phantoms import MSTrialData
    from medcf.fusion import IterativeImputer
    import pandas as pd
    tr, T = small
    off = tr.visit_t.copy(); off[3, 1] = 0.26
    with pytest.raises(ValueError, match=r'1 visit times are not on the grid, e\.g\. patient 3, visit 1: .*snap_to_grid\(visit_t, grid\)'):
        MSTrialData.from_visits(tr.baseline.images, tr.baseline.attrs, off, tr.visit_y, tr.grid)
    from medcf.phantoms import snap_to_grid
    assert np.array_equal(MSTrialData.from_visits(tr.baseline.images, tr.baseline.attrs, snap_to_grid(off, tr.grid), tr.visit_y, tr.grid).visit_idx, tr.visit_idx)
    for bad_t, msg in ((tr.visit_t * 365, r'range over \[0, 7\d\d(\.\d+)?\], outside the grid.*days or months'), (tr.visit_t - 0.5, 'outside the grid')):
        with pytest.raises(ValueError, match=msg): MSTrialData.from_visits(tr.baseline.images, tr.baseline.attrs, bad_t, tr.visit_y, tr.grid)
    with pytest.raises(ValueError, match='at least two times'): MSTrialData.from_visits(tr.baseline.images, tr.baseline.attrs, tr.visit_t, tr.visit_y, [0.0])
    with pytest.raises(TypeError, match='a single True/False'): T[True]
    assert len(T[np.array(2)]) == 1
    with pytest.raises(IndexError): T[len(T)]
    assert len(list(T)) == len(T) and len(T[torch.tensor(2)]) == 1
    assert np.array_equal(tr.cate('drug_a', t=torch.tensor(1.0)), tr.cate('drug_a', t=1.0)) and np.array_equal(tr.cate('drug_a', t=np.array(1.0)), tr.cate('drug_a', t=1.0))
    own = MSTrialData.from_visits(tr.baseline.images, tr.baseline.attrs, tr.visit_t[:, :5], tr.visit_y[:, :5], tr.grid)  # visits up to about a year
    with pytest.warns(UserWarning, match=r'observed final visits .* lie more than 10% of the follow-up before the horizon \(earliest 0\.\d+ of 2 years\)'):
        fit(TLearner(), trial_tensors(own), epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter('error'); fit(TLearner(), T, epochs=1)  # the simulator's final visits sit within a month of the horizon
    for m, kw in ((GRUBaseline(), {}), (CausalSDE(), dict(objective='elbo'))):
        with pytest.raises(ValueError, match="k=4 applies to CausalSDE with objective='mc' only"): fit(m, T, epochs=1, k=4, **kw)
    imp = IterativeImputer().fit(pd.DataFrame({'a': pd.array([1.0, None, 3.0, 4.0], dtype='Float64'), 'b': [1.0, 2.0, 3.0, 5.0]}))
    assert imp.transform(pd.DataFrame({'a': pd.array([None], dtype='Float64'), 'b': [2.0]})).shape == (1, 3)  # pd.NA is a missing value


def test_models_without_the_image_branch(small, tmp_path):
    "image=False drops the CNN branch (nb 50 exercise 2 compares with and without it); the default keeps the same parameters and draws."
    from medcf.sde import save_model, load_model
    tr, T = small
    sums = []
    for make in (CausalSDE, TLearner, GRUBaseline):
        torch.manual_seed(0); sums.append(round(float(sum(p.double().sum() for p in make().state_dict().values())), 6))
    assert sums == [3.300367, 22.333996, -4.182975]  # the models' initial weights at seed 0 before `image` existed (efcb044): the default draws are unchanged
    for make in (CausalSDE, TLearner, GRUBaseline):
        m = make(image=False)
        assert not any('cnn' in k for k in m.state_dict()) and m.config['image'] is False
        fit(m, T, epochs=1)
        back = load_model(save_model(m, tmp_path / f'{make.__name__}.pt'))
        assert np.array_equal(predict(back, T[:3], n_paths=4).mean, predict(m, T[:3], n_paths=4).mean)
    with pytest.raises(TypeError, match='image'): CausalSDE(image='no')
