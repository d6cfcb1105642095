"Closed forms and stated rules of medcf.sde and the multiple-sclerosis trial phantom (from a mutation-testing pass: each test pins a behaviour no earlier test noticed changing)."
import argparse, dataclasses, math, warnings
import numpy as np, pandas as pd, pytest, torch
from scipy import stats
from medcf.phantoms import MSTrial, MSTrialData, MSPhantom, MS_ARMS, MS_TABULAR, snap_to_grid, grid_index, _ms_poisson
from medcf.sde import (trial_tensors, check_visits, BaselineEncoder, CausalSDE, TLearner, GRUBaseline, fit, predict, evaluate,
                       gauss_nll, save_model, load_model, MSPrediction)

torch.set_num_threads(1)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)




def _nll(y, mu, sd):  # the Gaussian negative log-density, written out
    return 0.5 * ((y - mu) / sd) ** 2 + np.log(sd) + HALF_LOG_2PI


def _zero(lin):
    with torch.no_grad(): lin.weight.zero_(); lin.bias.zero_()


def _scripted_sde(T, z0=(0.5, -0.3), eff_a=(0.4, 0.2), eff_b=(-0.3, 0.1), w=(0.8, -0.6), b=-0.2, obs_sd=2.0, log_g=-60.):
    "A CausalSDE with d=2 whose paths are known in closed form: z(0) fixed, drift 0 under placebo and a constant under each drug, g ~ 1e-3."
    torch.manual_seed(0)
    m = CausalSDE(d=2, c=4, q=4, width=8, image=False); m.fit_scaler(T.tab)
    with torch.no_grad():
        _zero(m.z0_prior); m.z0_prior.bias.copy_(torch.tensor([*z0, -60., -60.]))         # z(0) = z0, sd e^-30
        _zero(m.z0_post); m.z0_post.bias.copy_(m.z0_prior.bias)                           # posterior = prior: KL(z0) = 0
        _zero(m.sde.prog[-1])                                                             # no natural progression
        _zero(m.sde.effect[-1]); m.sde.effect[-1].bias.copy_(torch.tensor([*eff_a, *eff_b]))  # drift of drug_a, drug_b
        _zero(m.sde.u_net[-1])                                                            # posterior drift = prior drift: path KL 0
        _zero(m.sde.g_net); m.sde.g_net.bias.fill_(log_g)                                 # diffusion softplus(log_g - 2) + 1e-3
        m.dec.weight.copy_(torch.tensor([w])); m.dec.bias.fill_(b)
        m.log_obs_sd.fill_(math.log(obs_sd))
    return m


def _closed_form_mean(T, z0=(0.5, -0.3), eff_a=(0.4, 0.2), eff_b=(-0.3, 0.1), w=(0.8, -0.6), b=-0.2):
    "(A, G) expected EDSS: 10 sigmoid(w . (z0 + drift_arm t) + b)."
    t = T.grid.double().numpy()
    out = []
    for eff in ((0., 0.), eff_a, eff_b):
        z = np.asarray(z0)[None] + np.asarray(eff)[None] * t[:, None]
        out.append(10 / (1 + np.exp(-(z @ np.asarray(w) + b))))
    return np.stack(out)


# --- S42, S46, S79-adjacent: sample_paths / predict follow the SDE in closed form --------------------------------------------
def test_causal_sde_paths_match_closed_form(small):
    "With z(0) fixed, no placebo drift, a constant drift per drug and g ~ 1e-3, every path is 10 sigmoid(w.(z0 + v_arm t) + b)."
    _, T = small
    m = _scripted_sde(T)
    P = m.sample_paths(T[:3], n_paths=2, seed=0)
    want = _closed_form_mean(T)
    assert np.allclose(P.numpy(), want[None, :, None, :], atol=0.02)


# --- S48, S49, S50 (mc_nll), S53, S54 (elbo): the losses are the stated Gaussian likelihoods ------------------------------------
def test_losses_are_the_gaussian_likelihood_of_observed_visits(small):
    "Paths are deterministic here: -log mean_j p(visits | path j) = sum of Gaussian NLLs at observed visits, for any k; the ELBO adds "
    "KL terms that are exactly 0 (posterior = prior). Unobserved visits play no part."
    _, T = small
    b = T[:8]
    b.visit_y = torch.where(b.mask, b.visit_y, torch.full_like(b.visit_y, 9.0))     # junk where there is no visit
    m = _scripted_sde(T)
    mean = _closed_form_mean(T)                                                     # (A, G)
    mu = mean[b.arm.numpy()[:, None], b.visit_idx.clamp(min=0).numpy()]             # (B, V)
    want = (_nll(b.visit_y.double().numpy(), mu, 2.0) * b.mask.numpy()).sum(1).mean()
    for k in (1, 5):
        assert m.mc_nll(b, k=k).item() == pytest.approx(want, abs=0.05)
    assert m.elbo(b, beta=1.0).item() == pytest.approx(want, abs=0.05)
    assert m.elbo(b, beta=1.0).item() == pytest.approx(m.elbo(b, beta=0.0).item(), abs=1e-5)


# --- S38, S39: gauss_nll ------------------------------------------------------------------------------------------------------
def test_gauss_nll_is_the_normal_negative_log_density():
    y, mu, sd = torch.tensor([1., -0.5, 3.]), torch.tensor([0., 0.5, 3.]), torch.tensor([2., 0.3, 1.])
    assert torch.allclose(gauss_nll(y, mu, sd), -torch.distributions.Normal(mu, sd).log_prob(y), atol=1e-6)


# --- S81, S80: the SDE's predictive interval is the path plus the measurement noise --------------------------------------------
def test_causal_sde_interval_is_path_plus_measurement_noise(small):
    "Deterministic paths: the level-0.9 interval of an observed EDSS is mean -+ 1.645 obs_sd (Monte Carlo over 3000 draws)."
    _, T = small
    m = _scripted_sde(T, obs_sd=0.5)
    p = predict(m, T[:2], level=0.9, n_paths=3000)
    z = stats.norm.ppf(0.95)
    assert np.allclose(p.hi - p.mean, z * 0.5, atol=0.1) and np.allclose(p.mean - p.lo, z * 0.5, atol=0.1)


# --- S82, S78: the effect is paired; the Brownian path follows the seed --------------------------------------------------------
def test_paired_effect_of_an_arm_with_placebo_dynamics_is_exactly_zero(small):
    "drug_a with placebo's drift and diffusion, large noise: each path's effect is 0 (same z0 and Brownian path), so is its interval."
    _, T = small
    m = _scripted_sde(T, eff_a=(0., 0.), log_g=2.)
    p = predict(m, T[:3], n_paths=64)
    assert np.all(p.cate_lo[:, 1] == 0) and np.all(p.cate_hi[:, 1] == 0) and np.all(p.cate[:, 1] == 0)
    assert np.all(p.hi[:, 0] - p.lo[:, 0] > 0.5)                                  # the paths themselves do vary
    a, b = m.sample_paths(T[:2], n_paths=3, seed=1), m.sample_paths(T[:2], n_paths=3, seed=2)
    assert not torch.allclose(a, b)                                                # z(0) is fixed here: only the Brownian path can differ


# --- S80, S83, S84: GRU / T-learner intervals and effects ------------------------------------------------------------------------
def test_gaussian_model_interval_and_effect(small):
    "mean -+ z_{(1+level)/2} sd, and the effect is the arm's mean minus placebo's at the chosen time."
    _, T = small
    torch.manual_seed(0); m = GRUBaseline(); m.fit_scaler(T.tab)
    p = predict(m, T[:5], level=0.8, t=1.0)
    mu, sd = zip(*(m(T[:5], a) for a in MS_ARMS))
    mu, sd = torch.stack(mu, 1).detach().numpy(), torch.stack(sd, 1).detach().numpy()
    z = stats.norm.ppf(0.9)
    assert np.allclose(p.mean, mu) and np.allclose(p.lo, mu - z * sd, atol=1e-5) and np.allclose(p.hi, mu + z * sd, atol=1e-5)
    ti = int(np.argmin(np.abs(T.grid.numpy() - 1.0)))
    assert np.allclose(p.cate, mu[:, :, ti] - mu[:, :1, ti], atol=1e-6)


# --- S86, S87: evaluate's visit MSE leaves the baseline out; an interval that touches y covers it --------------------------------
def test_evaluate_visit_mse_is_follow_up_only_and_coverage_is_closed(small):
    tr, _ = small
    G, n = len(tr.grid), len(tr)
    mean = np.broadcast_to(np.arange(G, dtype=float), (n, 3, G)).copy()
    y = np.where(tr.mask, np.maximum(tr.visit_idx, 0), np.nan).astype(float)       # each visit's truth: its grid index
    mean[:, :, 0] = 50.                                                            # wrong at the baseline only
    pred = MSPrediction('exact', np.asarray(tr.grid), mean, mean.copy(), mean.copy(), np.zeros((n, 3)))
    r = evaluate(pred, dataclasses.replace(tr, visit_y=y))
    assert r['mse_visits'] == 0 and r['coverage90'] == 1


# --- S88, S89: every patient a responder ------------------------------------------------------------------------------------------
def test_evaluate_with_every_patient_a_responder(small):
    tr, T = small
    m = GRUBaseline(); m.fit_scaler(T.tab)
    with pytest.warns(UserWarning, match='every patient is a true responder'):
        r = evaluate(predict(m, T), tr, threshold=20.)
    assert np.isnan(r['auroc_resp'])


# --- S70, S71: fit's history is the epoch's mean loss ----------------------------------------------------------------------------
def test_fit_history_is_the_mean_loss_over_patients(small):
    "GRU loss is a mean over patients, so the epoch's size-weighted mean over batches (10, 10, 4) is the loss on all 24 (lr 1e-9: no visible change)."
    _, T = small
    torch.manual_seed(0); m = GRUBaseline()
    h = fit(m, T, epochs=1, batch_size=10, lr=1e-9)
    assert h[0] == pytest.approx(m.loss(T).item(), rel=1e-5)


# --- S61, S62: GRU loss --------------------------------------------------------------------------------------------------------
def test_gru_loss_is_nll_summed_over_observed_visits(small):
    _, T = small
    torch.manual_seed(0); m = GRUBaseline(); m.fit_scaler(T.tab)
    b = T[:6]
    b.visit_y = torch.where(b.mask, b.visit_y, torch.full_like(b.visit_y, 9.0))
    mu, sd = (x.detach().double().numpy() for x in m(b, b.arm))
    ix = b.visit_idx.clamp(min=0).numpy()
    rows = np.arange(len(b))[:, None]
    want = (_nll(b.visit_y.double().numpy(), mu[rows, ix], sd[rows, ix]) * b.mask.numpy()).sum(1).mean()
    assert m.loss(b).item() == pytest.approx(want, rel=1e-5)


# --- S59, S60: T-learner loss ------------------------------------------------------------------------------------------------------
def test_tlearner_loss_reads_the_final_visit(small):
    _, T = small
    torch.manual_seed(0); m = TLearner(); m.fit_scaler(T.tab)
    fin = T.mask[:, -1]
    mu, sd = (x.detach().double().numpy() for x in m(T[fin], T.arm[fin]))
    assert m.loss(T).item() == pytest.approx(_nll(T.visit_y[fin, -1].double().numpy(), mu, sd).mean(), rel=1e-5)
    none = T[~fin]                                                                  # nobody reached the final visit: zero, with a gradient
    loss = m.loss(none); loss.backward()
    assert loss.item() == 0


# --- S63, S65: fit's refusals and warnings ------------------------------------------------------------------------------------------
def test_fit_refuses_adjoint_without_elbo_and_warns_at_ten_percent(small):
    tr, T = small
    with pytest.raises(ValueError, match="adjoint=True is implemented for objective='elbo' only"): fit(CausalSDE(), T[:4], epochs=1, adjoint=True)
    g = tr.grid
    for last, warns in ((g[21], True), (g[22], False)):                            # 12.5% and 8.3% of 2 years before the horizon
        t = tr.visit_t[:, :8].copy(); y = tr.visit_y[:, :8].copy()
        t[:, -1] = np.where(np.isnan(t[:, -1]), np.nan, last); y[:, -1] = np.where(np.isnan(t[:, -1]), np.nan, 3.0)
        own = trial_tensors(MSTrialData.from_visits(tr.baseline.images, tr.baseline.attrs, t, y, g))
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always'); fit(TLearner(), own, epochs=1)
        assert any('lie more than 10% of the follow-up' in str(x.message) for x in w) == warns


# --- S73, S74, S75, S76, S77: save_model / load_model -------------------------------------------------------------------------------
def test_save_and_load_edge_cases(small, tmp_path):
    _, T = small
    m = GRUBaseline(c=8, width=16); m.fit_scaler(T.tab)
    p = save_model(m, tmp_path / 'm.pt')
    m2 = GRUBaseline(c=8, width=16); m2.fit_scaler(T.tab[:10])
    save_model(m2, p, overwrite=True)                                              # asked for: replaced
    back = load_model(p)
    assert torch.equal(back.enc.tab_mean, m2.enc.tab_mean) and not back.training
    with pytest.raises(FileNotFoundError, match='does not exist'): load_model(tmp_path / 'missing.pt')
    with pytest.raises(FileNotFoundError, match='is a folder'): load_model(tmp_path)
    torch.save(dict(medcf_model='GRUBaseline', config=m.config, state_dict=m.state_dict(), extra=argparse.Namespace(a=1)), tmp_path / 'pickle.pt')
    with pytest.raises(ValueError, match='not a model file'): load_model(tmp_path / 'pickle.pt')  # arbitrary objects are not unpickled
    torch.save([1, 2], tmp_path / 'list.pt')
    with pytest.raises(ValueError, match='holds no medcf model'): load_model(tmp_path / 'list.pt')


# --- S34, S37, S102: the record is standardized with the training data's mean and sd ----------------------------------------------
def test_encoder_standardizes_the_record(small):
    _, T = small
    enc = BaselineEncoder(image=False); enc.fit_scaler(T.tab)
    seen = []
    enc.mlp[0].register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    enc(T.image, T.tab)
    rec = seen[0].double().numpy()
    tab = T.tab.double().numpy()
    want = (tab - tab.mean(0)) / tab.std(0, ddof=1)
    assert np.allclose(rec, want, atol=1e-4)


# --- S03, S06, S07, S25: TrialTensors indexing and visit times --------------------------------------------------------------------------
def test_trial_tensors_first_patient_by_negative_index_and_visit_times(small):
    tr, T = small
    assert torch.equal(T[-len(T)].tab, T[:1].tab)
    assert np.allclose(T.visit_t.numpy(), np.nan_to_num(tr.visit_t), atol=1e-6)   # the grid time where observed, 0 elsewhere
    assert torch.equal(T.mask, torch.as_tensor(tr.visit_idx >= 0)) and T.mask[:, 0].all()  # the baseline is an observed visit


# --- S08, S09: check_visits shape refusals -------------------------------------------------------------------------------------
def test_check_visits_refuses_bad_shapes():
    with pytest.raises(ValueError, match=r'expected \(patients, visits\)'): check_visits([0., 0.5, 1.])
    with pytest.raises(ValueError, match='mask has shape'): check_visits([[0., 0.5, 1.]], [[True, True]])


# --- P05, P08: _ms_poisson is the Poisson quantile ---------------------------------------------------------------------------
def test_ms_poisson_is_the_capped_poisson_quantile():
    lam = np.repeat([0.3, 1.0, 2.5, 3.0], 50)
    u = np.tile(np.linspace(0.005, 0.995, 50), 4)
    want = np.minimum(stats.poisson.ppf(u, lam), 8).astype(int)
    assert np.array_equal(_ms_poisson(lam, u, 8), want)
    assert _ms_poisson(np.array([3.0]), np.array([0.99999]), 8)[0] == 8


# --- P09, P10: stated population facts of the phantom --------------------------------------------------------------------------
def test_ms_phantom_women_and_randomization():
    t = MSPhantom().sample_truth(4000, seed=0)
    assert abs((t['sex'] == 'F').mean() - 0.7) < 0.03                             # 70% women
    share = t['arm'].value_counts(normalize=True)
    assert set(share.index) == set(MS_ARMS) and np.allclose(share.values, 1 / 3, atol=0.03)  # randomized 1:1:1


# --- P04, P15, P16, P22, P23, P37, P62: the latent SDE of the trial ---------------------------------------------------------------------
def test_trial_latent_paths_follow_the_stated_sde():
    "x_a(t) = burden + rate (1 - effect_a) t + sigma_a W(t) with one W per patient; sigma = 0.12, 0.12, 0.06 (drug_b halves it); Var W(T) = T."
    tr = MSTrial(size=16, seed=0).simulate(300, seed=1)
    tt, t = tr.baseline.truth, tr.grid
    x0, rate = tt['burden'].to_numpy()[:, None], tt['rate'].to_numpy()[:, None]
    W = [(tr.latent[:, a] - x0 - rate * (1 - e) * t) / s for a, (e, s) in
         enumerate([(0., 0.12), (tt['effect_a'].to_numpy()[:, None], 0.12), (tt['effect_b'].to_numpy()[:, None], 0.06)])]
    assert np.allclose(W[0], W[1], atol=1e-9) and np.allclose(W[0], W[2], atol=1e-9) and np.all(W[0][:, 0] == 0)
    assert 0.7 * t[-1] < W[0][:, -1].var() < 1.3 * t[-1]
    assert np.allclose(tr.disability, 10 / (1 + np.exp(-tr.latent)))                 # disability = 10 sigmoid(x)


# --- P35, P36: E[D | baseline] with no noise is the path itself ----------------------------------------------------------------
def test_expected_disability_without_noise_is_the_path():
    class Still(MSTrial): sigma = (0., 0., 0.)
    tr = Still(size=16, seed=0, mc=8).simulate(5, seed=1)
    assert np.allclose(tr.expected, tr.disability, atol=1e-9)


# --- P52: sex coding ------------------------------------------------------------------------------------------------------------------
def test_tabular_sex_is_one_for_men(small):
    tr, _ = small
    assert np.array_equal(tr.tabular()[:, MS_TABULAR.index('sex')], (tr.baseline.attrs['sex'] == 'M').to_numpy().astype(np.float32))


# --- P53, P54, P55, P56, P59, P60: cate, ite and responders by definition -------------------------------------------------------
def test_cate_ite_responders_by_definition(small):
    tr, _ = small
    i = int(np.argmin(np.abs(tr.grid - 1.0)))
    for arm in ('drug_a', 'drug_b'):
        j = MS_ARMS.index(arm)
        assert np.array_equal(tr.cate(arm, 1.0), tr.expected[:, j, i] - tr.expected[:, 0, i])
        assert np.array_equal(tr.ite(arm, 1.0), tr.disability[:, j, i] - tr.disability[:, 0, i])
    c = tr.cate('drug_a')
    assert tr.responders(threshold=float(c[0]))[0]                                  # "at most" the threshold
    assert np.array_equal(tr.responders(threshold=float(np.median(c))), c <= np.median(c))


# --- P46, P47: snap_to_grid is the nearest grid time --------------------------------------------------------------------------------
def test_snap_to_grid_takes_the_nearest_time():
    grid = np.linspace(0, 2, 25)                                                    # monthly
    t = np.array([[0., 0.30, 0.40, 2.0, np.nan]])
    assert np.allclose(snap_to_grid(t, grid), [[0., 1 / 3, 5 / 12, 2.0, np.nan]], equal_nan=True)


# --- P42: grid_index names the neighbouring grid times -------------------------------------------------------------------------
def test_grid_index_message_names_the_neighbours():
    with pytest.raises(ValueError, match=r'between the trial.s grid times 1\.25 and 1\.333'): grid_index(np.linspace(0, 2, 25), 1.3)


# --- P18, P19: MSTrial settings --------------------------------------------------------------------------------------------------
def test_ms_trial_refuses_visit_spacing_and_negative_miss_rate():
    for v in (0.01, 3.0):
        with pytest.raises(ValueError, match='visit_every'): MSTrial(visit_every=v)
    with pytest.raises(ValueError, match='p_miss'): MSTrial(p_miss=-0.1)


# --- P49, P50: MSTrialData refuses truth of the wrong shape --------------------------------------------------------------------
def test_trial_data_refuses_truth_of_the_wrong_shape(small):
    tr, _ = small
    for bad in (tr.latent[:, :, :-1], tr.latent[:, :2]):
        with pytest.raises(ValueError, match='latent has shape'): dataclasses.replace(tr, latent=bad)


# --- S13, S14, S15: trial_tensors refuses visit indices off the grid at an observed visit, and a visit_y of another shape -------
def test_trial_tensors_refuses_off_grid_indices_at_observed_visits(small):
    "The existing check sets index G on a slot whose EDSS may be NaN: the NaN refusal ('visit_idx >= 0' in its text) answered instead."
    tr, _ = small
    i = int(np.argmax(tr.mask[:, -1]))                                              # a patient with an observed final visit
    for val in (len(tr.grid), -2):
        bad = tr[:]; bad.visit_idx = tr.visit_idx.copy(); bad.visit_idx[i, -1] = val
        with pytest.raises(ValueError, match=r'expected grid indices 0\.\.24, or -1'): trial_tensors(bad)
    bad = tr[:]; bad.visit_y = tr.visit_y[:, :-1]
    with pytest.raises(ValueError, match='visit_y has shape'): trial_tensors(bad)


# --- S16: the baseline visit's EDSS is checked like any other observed visit -----------------------------------------------------
def test_trial_tensors_checks_the_baseline_edss(small):
    tr, _ = small
    for val, msg in ((np.nan, 'no EDSS'), (12., 'EDSS scale')):
        bad = tr[:]; bad.visit_y = tr.visit_y.copy(); bad.visit_y[0, 0] = val
        with pytest.raises(ValueError, match=msg): trial_tensors(bad)


# --- S18: any negative EDSS is off the scale -------------------------------------------------------------------------------
def test_trial_tensors_refuses_a_slightly_negative_edss(small):
    tr, _ = small
    bad = tr[:]; bad.visit_y = tr.visit_y.copy(); bad.visit_y[0, 0] = -0.25
    with pytest.raises(ValueError, match='EDSS scale'): trial_tensors(bad)


# --- S19, S20, S21, S23: the time grid must start at 0, be finite, have two times and be evenly spaced -----------------------
def test_trial_tensors_refuses_bad_grids(small):
    tr, _ = small
    own = dataclasses.replace(tr, latent=None, disability=None, expected=None)
    g = np.asarray(tr.grid, float)
    nan = g.copy(); nan[-1] = np.nan
    for grid in (g + 0.5, nan, g[:1]):
        bad = dataclasses.replace(own, grid=grid, visit_idx=np.minimum(tr.visit_idx, len(grid) - 1))
        with pytest.raises(ValueError, match='expected a 1-d array of finite times in years starting at 0'): trial_tensors(bad)
    uneven = g.copy(); uneven[5:] += 0.005 * (g[1] - g[0])                          # one spacing 0.5% longer
    with pytest.raises(ValueError, match='expected an even spacing'): trial_tensors(dataclasses.replace(own, grid=uneven))


# --- S26: one arm per patient -----------------------------------------------------------------------------------------------
def test_models_refuse_a_list_of_arms_of_another_length(small):
    _, T = small
    for m in (GRUBaseline(), TLearner()):
        m.fit_scaler(T.tab)
        with pytest.raises(ValueError, match='got 3 arms for 2 patients'): m(T[:2], ['placebo', 'drug_a', 'drug_b'])


# --- S28: a NaN EDSS at an observed visit of hand-made tensors -----------------------------------------------------------------
def test_fit_refuses_nan_edss_in_tensors(small):
    _, T = small
    bad = T[:8]; bad.visit_y = bad.visit_y.clone(); bad.visit_y[0, 0] = float('nan')
    with pytest.raises(ValueError, match='data.visit_y is NaN or inf at an observed visit'): fit(GRUBaseline(), bad, epochs=1)


# --- S17: EDSS 10 is on the scale --------------------------------------------------------------------------------------------
def test_trial_tensors_accepts_the_ends_of_the_scale(small):
    tr, _ = small
    ok = tr[:]; ok.visit_y = tr.visit_y.copy(); ok.visit_y[0, 0], ok.visit_y[1, 0] = 10., 0.
    T = trial_tensors(ok)
    assert T.visit_y[0, 0] == 10 and T.visit_y[1, 0] == 0


# --- S30, S31: images a little outside [-1, 1] ------------------------------------------------------------------------------
def test_fit_refuses_images_a_little_outside_the_range(small):
    _, T = small
    for lo, hi in ((-1., None), (None, 1.)):                                            # only the top, only the bottom out
        bad = T[:8]; bad.image = (bad.image * 1.05).clamp(min=lo, max=hi)
        with pytest.raises(ValueError, match=r'expected baseline images scaled to \[-1, 1\]'): fit(GRUBaseline(), bad, epochs=1)


# --- S47: z(0) is drawn with the log-variance convention the ELBO's KL uses ------------------------------------------------
def test_z0_prior_draws_have_variance_exp_lv():
    "elbo's KL[q(z0)||p(z0)] reads the second half of z0_prior as a log-variance; the prior draws of mc_nll and sample_paths must too."
    torch.manual_seed(0)
    m = CausalSDE(d=2, c=4, q=4, width=8, image=False)
    with torch.no_grad(): _zero(m.z0_prior); m.z0_prior.bias.copy_(torch.tensor([1., -1., math.log(4.), math.log(0.25)]))
    z = m._z0_prior(torch.zeros(1, 4), 20000, torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), torch.tensor([1., -1.]), atol=0.05) and torch.allclose(z.std(0), torch.tensor([2., 0.5]), rtol=0.03)


# --- S53, S55: the ELBO's KL terms in closed form -----------------------------------------------------------------------------
def test_elbo_kl_terms_closed_form(small):
    "KL[N(mq, e^lq) || N(mp, e^lp)] per dimension is (lp - lq + (e^lq + (mq - mp)^2) / e^lp - 1) / 2; with a constant posterior "
    "correction u and diffusion g the path KL is |u / g|^2 T / 2. Same entropy: the likelihood term cancels in the difference."
    _, T = small
    m = _scripted_sde(T)
    mp, lp, mq, lq = np.array([0.5, -0.3]), np.array([0., 0.]), np.array([0.2, -0.1]), np.array([math.log(4.), math.log(0.25)])
    u = np.array([0.3, -0.2])
    with torch.no_grad():
        m.z0_prior.bias.copy_(torch.tensor([*mp, *lp])); m.z0_post.bias.copy_(torch.tensor([*mq, *lq])); m.sde.u_net[-1].bias.copy_(torch.tensor(u))
        m.sde.g_net.bias.fill_(2.)
    g = math.log1p(math.exp(0.)) + 1e-3                                              # softplus(2 - 2) + 1e-3
    kl0 = 0.5 * (lp - lq + (np.exp(lq) + (mq - mp) ** 2) / np.exp(lp) - 1).sum()
    path = 0.5 * ((u / g) ** 2).sum() * float(T.grid[-1])
    b = T[:6]
    e0, e1, eh = (m.elbo(b, beta=x).item() for x in (0., 1., 0.5))
    assert e1 - e0 == pytest.approx(kl0 + path, rel=1e-3) and eh - e0 == pytest.approx(0.5 * (kl0 + path), rel=1e-3)


# --- S49, S51, S54, S61: what sits in visit_y where there is no visit plays no part in any loss ---------------------------------
def test_losses_ignore_unobserved_slots(small):
    _, T = small
    b = T[:8]
    junk = T[:8]; junk.visit_y = torch.where(b.mask, b.visit_y, torch.full_like(b.visit_y, 9.0))
    assert (~b.mask).any()
    torch.manual_seed(0); s = CausalSDE(); s.fit_scaler(T.tab)
    torch.manual_seed(0); g = GRUBaseline(); g.fit_scaler(T.tab)
    for f in (lambda d: s.elbo(d, entropy=3), lambda d: s.mc_nll(d, k=3, entropy=3), g.loss):
        assert f(junk).item() == pytest.approx(f(b).item(), rel=1e-6)


# --- S64, S67, S68, S69: fit's KL warm-up and fresh paths every step -------------------------------------------------------------
def test_fit_kl_warmup_schedule_and_fresh_paths(small, monkeypatch):
    "24 patients in batches of 10 for 2 epochs: 6 steps; kl_warmup=0.5 grows the KL weight to 1 over the first 3 steps. "
    "Every step draws its own paths (a new entropy); kl_warmup is a fraction in [0, 1]."
    _, T = small
    seen = []
    elbo, mc = CausalSDE.elbo, CausalSDE.mc_nll
    monkeypatch.setattr(CausalSDE, 'elbo', lambda self, b, **kw: (seen.append(('elbo', kw['beta'], kw['entropy'])), elbo(self, b, **kw))[1])
    monkeypatch.setattr(CausalSDE, 'mc_nll', lambda self, b, **kw: (seen.append(('mc', None, kw['entropy'])), mc(self, b, **kw))[1])
    fit(CausalSDE(d=2, c=4, q=4, width=8, image=False), T, epochs=2, batch_size=10, objective='elbo', kl_warmup=0.5)
    assert len(seen) == 7 and seen[6] == seen[5]  # six steps, then the last step's batch again with the weights it left (the last-step check)
    betas = [s[1] for s in seen[:6]]
    assert all(0 <= x < 1 for x in betas[:2]) and betas[2:] == [1.] * 4 and betas == sorted(betas)
    assert len({s[2] for s in seen[:6]}) == 6
    seen.clear(); fit(CausalSDE(d=2, c=4, q=4, width=8, image=False), T, epochs=1, batch_size=10)
    assert [s[0] for s in seen] == ['mc'] * 4 and len({s[2] for s in seen[:3]}) == 3 and seen[3] == seen[2]
    with pytest.raises(ValueError, match='kl_warmup'): fit(CausalSDE(), T, epochs=1, objective='elbo', kl_warmup=1.5)


# --- S79: the prior SDE is integrated by Euler steps of the grid's spacing ------------------------------------------------------
def test_sample_paths_steps_by_the_grid_spacing(small):
    "Drift dz = a z dt under placebo: Euler on the monthly grid gives z(t_n) = z0 (1 + a dt)^n (not e^(a t), not a finer step's value)."
    _, T = small
    m = _scripted_sde(T, z0=(0.3, 0.), w=(1., 0.), b=0.)
    lin = torch.nn.Linear(2 + 4 + 1, 2)
    with torch.no_grad(): _zero(lin); lin.weight[0, 0] = 1.0                          # a = 1 on the first latent dimension
    m.sde.prog = lin
    P = m.sample_paths(T[:2], n_paths=64, arms=('placebo',))                         # (K, 1, N, G) = 10 sigmoid(z_1)
    z = torch.logit(P / 10).double().numpy().mean(0)                                 # g = 1e-3: the noise averages out
    dt, n = float(T.grid[1] - T.grid[0]), np.arange(len(T.grid))
    assert np.allclose(z, 0.3 * (1 + dt) ** n, atol=0.01)                           # a half step would end 0.08 higher


# --- S85: a T-learner predicts the horizon only --------------------------------------------------------------------------------
def test_tlearner_prediction_is_at_the_horizon(small):
    tr, T = small
    torch.manual_seed(0); m = TLearner(); m.fit_scaler(T.tab)
    p = predict(m, T)
    assert p.times.tolist() == [float(T.grid[-1])] and p.mean.shape == (len(T), len(MS_ARMS), 1)
    fin = tr.mask[:, -1]
    want = np.mean((tr.visit_y[fin, -1] - p.mean[np.arange(len(tr)), tr.arm, 0][fin]) ** 2)
    assert evaluate(p, tr)['mse_final'] == pytest.approx(want)


# --- P26: a monthly schedule never puts a follow-up visit on the baseline ------------------------------------------------------
def test_dense_schedule_keeps_every_baseline_and_increasing_visits():
    tr = MSTrial(size=16, seed=0, visit_every=1 / 12, p_miss=0).simulate(40, seed=1)
    assert tr.mask[:, 0].all() and (tr.visit_idx[:, 1:][tr.mask[:, 1:]] >= 1).all()
    check_visits(tr.visit_t)


# --- P32, P34: observed EDSS = own arm's disability + N(0, obs_sd) noise, rounded to half steps ---------------------------------
def test_observed_edss_is_own_arm_disability_plus_noise():
    "Residuals at follow-up visits: sd close to sqrt(0.3^2 + 0.5^2/12) = 0.333 (noise plus half-step rounding), mean about 0 in every arm."
    tr = MSTrial(size=16, seed=0).simulate(300, seed=1)
    D = tr.disability[np.arange(len(tr)), tr.arm]                                    # (N, G) under the patient's own arm
    fu = tr.mask.copy(); fu[:, 0] = False
    r = tr.visit_y[fu] - np.take_along_axis(D, np.maximum(tr.visit_idx, 0), 1)[fu]
    arm = np.broadcast_to(tr.arm[:, None], fu.shape)[fu]
    assert tr.obs_sd == 0.3 and abs(r.std() - math.sqrt(0.3 ** 2 + 0.5 ** 2 / 12)) < 0.03
    assert all(abs(r[arm == a].mean()) < 0.06 for a in range(len(MS_ARMS)))


# --- P40, P45: the stated tolerances (1e-6 years) work on both sides of the trial ---------------------------------------------
def test_grid_tolerance_at_both_ends():
    grid = np.linspace(0, 2, 25)
    assert grid_index(grid, -1e-7) == 0 and grid_index(grid, 2 + 1e-7) == 24
    assert np.allclose(snap_to_grid(np.array([[-1e-7, 2 + 1e-7]]), grid), [[0., 2.]])
    for t in (-0.01, 2.01):
        with pytest.raises(ValueError, match='outside the grid'): snap_to_grid(np.array([[t]]), grid)


# --- P65, P66, P68: a record without a column, with text in a number column, without an arm column -----------------------------
def test_record_refusals_name_the_problem(small):
    import copy
    tr, _ = small
    def with_attrs(attrs):
        b = copy.deepcopy(tr.baseline); b.attrs = attrs
        return MSTrialData(b, tr.grid, tr.visit_idx, tr.visit_y, None, None, None)
    with pytest.raises(ValueError, match=r"lacks \['age'\]"): with_attrs(tr.baseline.attrs.drop(columns='age')).tabular()
    with pytest.raises(ValueError, match='relapses holds values that are not numbers'): with_attrs(tr.baseline.attrs.assign(relapses='two')).tabular()
    with pytest.raises(ValueError, match="has no 'arm' column"): with_attrs(tr.baseline.attrs.drop(columns='arm')).arm

def test_evaluate_names_coverage_after_the_prediction_level(small):
    "predict records the interval's level and evaluate names its coverage after it (coverage50 at 0.5, coverage90 at 0.9); a level outside (0, 1) is refused."
    tr, T = small
    m = GRUBaseline(); m.fit_scaler(T.tab)  # untrained: the keys and levels are what is checked
    p50, p90 = predict(m, T, level=0.5), predict(m, T)
    assert (p50.level, p90.level) == (0.5, 0.9)
    r50, r90 = evaluate(p50, tr), evaluate(p90, tr)
    assert 'coverage50' in r50 and 'coverage90' not in r50 and 'coverage90' in r90
    assert r50['coverage50'] <= r90['coverage90']  # the 50% interval lies inside the 90% one
    with pytest.raises(ValueError, match=r'pred.level=1.5: expected the coverage its intervals were made for'): evaluate(dataclasses.replace(p90, level=1.5), tr)

def test_trial_tensors_refuses_a_score_without_a_visit(small):
    "A finite EDSS at a slot with no visit time (visit_idx -1) would be seen by no loss or metric: refused, naming patient and slot; simulated trials have NaN there."
    tr, _ = small
    assert np.isnan(tr.visit_y[tr.visit_idx < 0]).all()
    i, j = np.argwhere(tr.visit_idx < 0)[0]
    y = tr.visit_y.copy(); y[i, j] = 2.5
    with pytest.raises(ValueError, match=rf'patient {i}, visit slot {j}: an EDSS of 2.5 is recorded at a slot with no visit'):
        trial_tensors(dataclasses.replace(tr, visit_y=y))

def test_evaluate_finds_a_late_grid_time_exactly():
    "Past 32 years the float32 tensor grid is off the trial's float64 one by more than 1e-6: evaluate reads the effect at predict's grid index, and refuses an index off this trial's grid."
    tr = MSTrial(size=16, seed=0, horizon=34, steps_per_year=6, visit_every=2, mc=2).simulate(6, seed=1)
    T = trial_tensors(tr, 16)
    m = GRUBaseline(); m.fit_scaler(T.tab)
    p = predict(m, T, t=float(tr.grid[-2]))
    assert abs(p.cate_t - tr.grid[-2]) > 1e-6 and p.cate_i == len(tr.grid) - 2  # the float32 copy of the time, and its index
    assert np.isfinite(evaluate(p, tr)['pehe_drug_a'])  # the effect was read: the previous library refused 't=... lies between the trial's grid times'
    with pytest.raises(ValueError, match=r"the prediction's effect is for grid index 3 .* which is not that time on this trial's grid"):
        evaluate(dataclasses.replace(p, cate_i=3), tr)

def test_sample_paths_refuses_no_arms(small):
    _, T = small
    with pytest.raises(ValueError, match=r'arms=\[\] is empty; expected at least one arm to simulate'):
        CausalSDE(d=2, c=4, q=4, width=8, image=False).sample_paths(T[:4], n_paths=2, arms=[])

def test_fit_refuses_overflowing_seeds(small):
    "A CausalSDE's step k seeds torch with seed * 100003 + k: a seed that would pass 2**64 - 1 is refused by name (torch said 'Overflow when unpacking long long'); other models stop at 2**64 - 1."
    _, T = small
    top = (2**64 - 1) // 100003  # one epoch of one step: the step seed is seed * 100003
    with pytest.raises(ValueError, match=rf'seed={top + 1} is too large.*expected a seed <= {top}'): fit(CausalSDE(), T[:8], epochs=1, k=1, seed=top + 1)
    assert len(fit(CausalSDE(d=2, c=4, q=4, width=8, image=False), T[:8], epochs=1, k=1, seed=top)) == 1  # the largest seed still trains
    with pytest.raises(ValueError, match=rf'seed={2**64} is too large: torch seeds stop at 2\*\*64 - 1; expected a seed <= {2**64 - 1}'):
        fit(GRUBaseline(), T[:8], epochs=1, seed=2**64)

def test_sampling_seeds_stop_where_torch_seeds_do(small):
    "sample_paths seeds torch with `seed`, predict also with seed + 1: a seed past 2**64 - 1 is refused by name, not torch's 'Overflow when unpacking long long'."
    _, T = small
    m = CausalSDE(d=2, c=4, q=4, width=8, image=False)
    assert m.sample_paths(T[:4], n_paths=2, seed=2**64 - 1).shape[0] == 2  # the largest seed torch takes
    with pytest.raises(ValueError, match=r'seed=18446744073709551616: expected an integer in \[0, 18446744073709551615\]'): m.sample_paths(T[:4], n_paths=2, seed=2**64)
    with pytest.raises(ValueError, match=r'seed=18446744073709551615: expected an integer in \[0, 18446744073709551614\] \(torch seeds stop at 2\*\*64 - 1, and the measurement noise is drawn with seed \+ 1\)'):
        predict(m, T[:4], seed=2**64 - 1, n_paths=2)

def test_fit_scaler_gives_a_constant_column_sd_one(small):
    "A column constant in training (all women) gets sd 1, not 1e-3: a man's record sits 1 sd off, not 1000 sds (which saturated the encoder and gave five patients one prediction)."
    _, T = small
    wom = T[T.tab[:, 1] == 0]
    enc = BaselineEncoder(image=False); enc.fit_scaler(wom.tab)
    assert enc.tab_sd[1] == 1 and enc.tab_mean[1] == 0
    assert torch.equal(enc.tab_sd[[0, 2, 3]], wom.tab[:, [0, 2, 3]].std(0))  # varying columns keep their sd
    tab = wom.tab.clone(); tab[:, 0] = 43.7                                  # a constant that float32 cannot hold exactly: its sd is ~1e-6, not 0
    enc.fit_scaler(tab); assert enc.tab_sd[0] == 1
    man = wom.tab[:1].clone(); man[:, 1] = 1
    assert ((man - enc.tab_mean) / enc.tab_sd)[0, 1] == 1

def test_tlearner_fit_warns_when_horizon_visits_are_not_in_the_last_column(small):
    "Visits written left-aligned (NaN padding at the end) leave the last column empty for patients seen at the horizon: the T-learner, which learns from the last column only, used to drop them without a word."
    tr, T = small
    vt, vy = np.full(tr.visit_t.shape, np.nan), np.full(tr.visit_y.shape, np.nan)
    for i in range(len(tr)):
        m = ~np.isnan(tr.visit_t[i]); vt[i, :m.sum()], vy[i, :m.sum()] = tr.visit_t[i][m], tr.visit_y[i][m]
    L = trial_tensors(MSTrialData.from_visits(tr.baseline.images, tr.baseline.attrs, vt, vy, tr.grid))
    at_h = (T.visit_idx == len(T.grid) - 1).any(1); n = int((at_h & ~L.mask[:, -1]).sum())
    assert n > 0 and int(at_h.sum()) == int((L.visit_idx == len(L.grid) - 1).any(1).sum())
    with pytest.warns(UserWarning, match=rf"{n} of {int(at_h.sum())} patients seen at the horizon \(2 years\) have that visit in another column and the last column empty: "
                                         r"the T-learner learns from the last column only and drops them; expected the final scheduled visit in the last column"):
        fit(TLearner(image=False), L, epochs=1)
    with warnings.catch_warnings(): warnings.simplefilter('error'); fit(TLearner(image=False), T, epochs=1)  # the trial's own layout: no warning

def test_predict_refuses_one_path(small):
    "One path per patient gave a '90%' predictive and effect interval of width 0 (lo == hi): predict refuses n_paths < 2 by name, and two paths already give a width."
    _, T = small
    m = CausalSDE(d=2, c=4, q=4, width=8, image=False); m.fit_scaler(T.tab)
    for n in (1, 0):
        with pytest.raises(ValueError, match=rf'n_paths={n}: expected an integer >= 2 \(paths per patient and arm: a quantile interval needs several paths; one gives a zero-width interval, lo == hi\)'):
            predict(m, T[:3], n_paths=n)
    p = predict(m, T[:3], n_paths=2)
    assert (p.hi > p.lo).all() and (p.cate_hi[:, 1:] > p.cate_lo[:, 1:]).all()


# --- review (default dtype): models are built, draw and load in float32 whatever torch's default dtype
def _fits(T):
    out = []
    for make, kw in ((TLearner, dict(c=4, width=8)), (GRUBaseline, dict(c=4, width=8)), (CausalSDE, dict(d=2, c=4, q=4, width=8))):
        torch.manual_seed(0); m = make(**kw)
        h = fit(m, T, epochs=1, batch_size=12); p = predict(m, T[:5], n_paths=4)
        out.append((h, p.mean, p.lo, p.hi, p.cate, p.cate_lo, [q.detach().clone() for q in m.parameters()]))
    torch.manual_seed(0); m = CausalSDE(d=2, c=4, q=4, width=8)
    out.append(fit(m, T, epochs=1, batch_size=12, objective='elbo'))
    return out

def test_fits_and_predictions_are_the_same_in_a_float64_session(small, request):
    "The models were built in the default dtype (float64 weights from another random stream) and failed on trial_tensors' float32 data; the z(0), Brownian and noise draws and predict's quantiles followed the default dtype too."
    _, T = small
    ref = _fits(T)
    request.getfixturevalue('float64_session')
    got = _fits(T)
    for a, b in zip(ref[:3], got[:3]):
        assert a[0] == b[0] and all(np.array_equal(x, y) for x, y in zip(a[1:6], b[1:6]))
        assert all(q.dtype == torch.float32 and torch.equal(p, q) for p, q in zip(a[6], b[6]))
    assert ref[3] == got[3]

def test_load_model_rebuilds_float32_in_a_float64_session(small, tmp_path, request):
    "load_model says it rebuilds the model in float32; it built it in the default dtype, so in a float64 session it could not predict on trial_tensors' float32 images."
    _, T = small
    paths = {}
    for make in (TLearner, GRUBaseline):
        m = make(c=4, width=8); fit(m, T, epochs=1); paths[make] = (save_model(m, tmp_path / f'{make.__name__}.pt'), predict(m, T[:5]).mean)
    request.getfixturevalue('float64_session')
    for make, (p, ref) in paths.items():
        back = load_model(p)
        assert all(q.dtype == torch.float32 for q in back.state_dict().values()) and np.array_equal(predict(back, T[:5]).mean, ref)

def test_load_model_names_a_damaged_or_other_version_file(tmp_path):
    "A file without a config, with a setting this medcf lacks (a newer one's), or with weights missing gave a bare KeyError, TypeError or RuntimeError naming neither the file nor what was expected."
    s = torch.load(save_model(TLearner(c=4, width=8), tmp_path / 'm.pt'), weights_only=True)
    cases = {'no_config': ({k: v for k, v in s.items() if k != 'config'}, r"holds a TLearner without 'config' as a dict"),
             'newer_config': (dict(s, config=dict(s['config'], dropout=0.1)), r"holds a TLearner that this medcf cannot rebuild \(TypeError: .*dropout"),
             'truncated_state': (dict(s, state_dict=dict(list(s['state_dict'].items())[:-2])), r"holds a TLearner that this medcf cannot rebuild \(RuntimeError: .*Missing key")}
    for name, (obj, msg) in cases.items():
        torch.save(obj, tmp_path / f'{name}.pt')
        with pytest.raises(ValueError, match=rf"{name}\.pt {msg}.*expected a file save_model wrote with this medcf version \(a TLearner's config takes \['c', 'width', 'image'\]"):
            load_model(tmp_path / f'{name}.pt')


def test_trial_tensors_refuses_non_square_baselines():
    "The docment says images are average-pooled to img_size, but only the width was read: a 48 x 32 baseline came out 24 x 16 at img_size=16, 30 x 32 came out 15 x 16."
    tr = MSTrial(size=32, seed=0).simulate(6, seed=1)
    for shape in ((48, 32), (30, 32)):
        own = MSTrialData.from_visits(torch.zeros(6, 1, 32, 32), tr.baseline.attrs, tr.visit_t, tr.visit_y, tr.grid)
        own.baseline.images = torch.zeros(6, 1, *shape)  # set afterwards: from_visits refuses non-square baselines itself now
        with pytest.raises(ValueError, match=rf"baseline images have shape \(6, 1, {shape[0]}, 32\); expected square slices N x 1 x S x S"): trial_tensors(own, 16)
    own = MSTrialData.from_visits(torch.zeros(6, 1, 32, 32), tr.baseline.attrs, tr.visit_t, tr.visit_y, tr.grid)
    assert tuple(trial_tensors(own, 16).image.shape) == (6, 1, 16, 16)
    with pytest.raises(ValueError, match=r"img_size=12 must divide the image size 32"): trial_tensors(own, 12)


def test_a_zero_d_numpy_arm_is_an_index_like_the_others():
    "np.array(1) raised 'TypeError: len() of unsized object' while 1, np.int64(1) and torch.tensor(1) worked."
    T = trial_tensors(MSTrial(size=32, seed=0).simulate(6, seed=1))
    torch.manual_seed(0); m = GRUBaseline(c=4, width=8)
    ref = m(T, 1)
    for a in (np.int64(1), torch.tensor(1), np.array(1), np.array(MS_ARMS[1])):
        assert all(torch.equal(x, y) for x, y in zip(m(T, a), ref))
    with pytest.raises(ValueError, match=r"unknown arm 7"): m(T, np.array(7))


def test_saved_tensor_meter_counts_each_block_afresh():
    "A reused SavedTensorMeter kept peak (and live) from an earlier block: it reported 800000 bytes for a block whose peak was 8000."
    from medcf.sde import SavedTensorMeter
    m = SavedTensorMeter()
    with m:
        x = torch.ones(100_000, requires_grad=True); y = (x * x).sum()
    assert m.peak == 800_000
    with m:
        x2 = torch.ones(1000, requires_grad=True); y2 = (x2 * x2).sum()
        del y  # a tensor saved in the first block dies in the second: it is not counted against this one
    assert m.peak == 8000 and m.live == 8000
    del y2
    assert m.live == 0


def test_a_float32_grid_is_judged_even_alike_by_from_visits_and_trial_tensors():
    "from_visits judged evenness at the grid's own float precision, trial_tensors at rtol 1e-6, atol 1e-9 on float64: a float32 np.linspace(0, 33.8333, 407) passed from_visits, then trial_tensors refused it ('spacing ranges over [0.08333, 0.08334]'). Both now allow float32 rounding (the solver's grid is float32), and both still refuse a grid one spacing 1% off."
    n = 4
    rec = pd.DataFrame({c: [1.0] * n for c in MS_TABULAR}); rec['sex'] = ['M', 'F', 'M', 'F']; rec['arm'] = [MS_ARMS[0]] * n
    g = np.linspace(0, 33.8333, 407, dtype=np.float32)
    vt = np.array([[0, g[12], g[-1]]] * n, dtype=float); vy = np.array([[2., 2.5, 3.]] * n)
    own = MSTrialData.from_visits(torch.zeros(n, 1, 32, 32), rec, vt, vy, g)
    T = trial_tensors(own, 16)
    assert len(T.grid) == 407
    bad = np.linspace(0, 2, 25); bad[13:] += 0.01 * (bad[1] - bad[0])  # the spacing 12 -> 13 is 1% long
    with pytest.raises(ValueError, match=r"expected evenly spaced, increasing times in years starting at 0"):
        MSTrialData.from_visits(torch.zeros(n, 1, 32, 32), rec, np.array([[0, bad[12], bad[-1]]] * n), vy, bad)
    with pytest.raises(ValueError, match=r"expected evenly spaced, increasing times"): snap_to_grid(np.array([0.5]), bad)
    own.grid = bad  # set afterwards: from_visits refuses it itself
    with pytest.raises(ValueError, match=r"the time grid's spacing ranges over \[0\.08333, 0\.08417\] years; expected an even spacing"):
        trial_tensors(own, 16)


def _divergence_trial() -> object:
    "24 simulated patients at 16 px: the trial both divergence tests fit."
    return trial_tensors(MSTrial(size=32, mc=4, seed=0).simulate(24, seed=0), img_size=16)


def test_fit_stops_when_the_loss_or_a_gradient_is_not_finite():
    "lr=1e6 returned losses [nan, nan] silently with NaN weights (predict then gave 100% NaN means and evaluate failed on 'scores', a name the caller never used); a NaN gradient behind a finite loss was written into the weights too. fit now stops before the step with a FloatingPointError naming lr, the epoch and the step."
    T = _divergence_trial()
    torch.manual_seed(0); m = TLearner(c=4, width=8)
    with pytest.raises(FloatingPointError, match=r"^fit diverged at epoch 1, step 2 of 6: the loss is nan \(lr=1e\+06\); the model holds the weights this step started from .*try a smaller lr"):
        fit(m, T, epochs=2, batch_size=8, lr=1e6)
    assert not m.training
    torch.manual_seed(0); g = GRUBaseline(c=4, width=8)
    before = {k: v.clone() for k, v in g.named_parameters()}
    g.head[0].weight.register_hook(lambda grad: grad * float('nan'))  # a finite loss whose gradient is NaN
    with pytest.raises(FloatingPointError, match=r"^fit diverged at epoch 1, step 1 of 3: the gradient of head\.0\.weight holds NaN or inf \(lr=0\.01\)"):
        fit(g, T, epochs=1, batch_size=8)
    assert all(torch.equal(v, before[k]) for k, v in g.named_parameters())  # the optimiser never wrote the NaN gradient
    torch.manual_seed(0); ok = GRUBaseline(c=4, width=8)
    assert all(np.isfinite(fit(ok, T, epochs=1, batch_size=8)))  # a sound run is untouched


def test_fit_checks_the_weights_its_last_step_left():
    "Session 52's review of 97aadbb: each step checks its own loss and gradient, so a one-step fit with lr=1e6 returned [2.76] with a model whose predictions were not finite."
    T = _divergence_trial()
    torch.manual_seed(0); m = TLearner(c=4, width=8)
    with pytest.raises(FloatingPointError, match=r"^fit diverged at its last step \(1 of 1\): the loss of its batch with the weights it left is (nan|inf) \(lr=1e\+06\); the model holds the weights that step wrote"):
        fit(m, T, epochs=1, batch_size=24, lr=1e6)
    torch.manual_seed(0); ok = TLearner(c=4, width=8)
    assert np.isfinite(fit(ok, T, epochs=1, batch_size=24)).all() and np.isfinite(predict(ok, T).mean).all()  # a sound one-step fit is untouched


def test_model_constructors_check_their_sizes(tmp_path):
    "TLearner(width=0), CausalSDE(c=0) and BaselineEncoder(out=0) built (a width-0 T-learner trained and predicted a near-constant CATE); q=2.5, c=-1 and width='32' failed inside torch without naming the argument."
    cases = [(TLearner, dict(width=0), r"width=0: expected a positive integer"), (TLearner, dict(c=-1), r"c=-1: expected a positive integer"),
             (CausalSDE, dict(c=0), r"c=0"), (CausalSDE, dict(q=2.5), r"q=2\.5: expected a positive integer"), (CausalSDE, dict(d=0), r"d=0"),
             (CausalSDE, dict(width='32'), r"width='32': expected a positive integer"), (GRUBaseline, dict(c=0), r"c=0"), (GRUBaseline, dict(width=1.0), r"width=1\.0"),
             (BaselineEncoder, dict(out=0), r"out=0"), (BaselineEncoder, dict(n_tab=-1), r"n_tab=-1"), (BaselineEncoder, dict(width=True), r"width=True")]
    for cls, kw, msg in cases:
        torch.manual_seed(0); state = torch.get_rng_state()
        with pytest.raises(ValueError, match=rf"^{msg}"): cls(**kw)
        assert torch.equal(torch.get_rng_state(), state)  # refused before any layer drew its weights
    m = TLearner(c=np.int64(4), width=np.int64(8))
    assert m.config == dict(c=4, width=8, image=True) and type(m.config['c']) is int  # numpy sizes are stored as ints: load_model reads them back
    save_model(m, tmp_path / 'm.pt'); assert load_model(tmp_path / 'm.pt').config == m.config
    torch.save(dict(medcf_model='TLearner', config=dict(c=4, width=0, image=True), state_dict=m.state_dict()), tmp_path / 'bad.pt')
    with pytest.raises(ValueError, match=r"cannot rebuild \(ValueError: width=0: expected a positive integer\)"): load_model(tmp_path / 'bad.pt')
