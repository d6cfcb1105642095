"The medcf console script: tour output, README check, argument errors."
import json, subprocess, sys
from pathlib import Path
import pytest, torch
import medcf.cli as cli
from medcf.phantoms import ChestPhantom, SkinPhantom
from medcf.cli import main, readme_text, tour, page_phantoms, page_generation

def test_tour_writes_a_seeded_report(tmp_path):
    a = tour(tmp_path / 'a', seed=1, pages=[page_phantoms])  # the full tour also generates with the zoo (slow)
    html = a.read_text()
    pngs = sorted(p.name for p in (tmp_path / 'a').glob('*.png'))
    assert len(pngs) >= 5 and all(f'src="{p}"' in html for p in pngs)
    b = tour(tmp_path / 'b', seed=1, pages=[page_phantoms])  # same seed, same figures
    for p in pngs: assert (tmp_path / 'a' / p).read_bytes() == (b.parent / p).read_bytes(), p
    tour(tmp_path / 'a', seed=2, pages=[page_phantoms])  # its own folder: rewritten, figures of the same names replaced
    assert (tmp_path / 'a' / pngs[0]).read_bytes() != (b.parent / pngs[0]).read_bytes()

def test_tour_refuses_a_folder_of_somebody_else(tmp_path, monkeypatch):
    "The tour writes fixed names: a non-empty folder without an earlier tour, or a file, is refused before any page runs."
    drawn = []
    page = lambda out, seed: drawn.append(out) or ('p', [])
    (tmp_path / 'notes.txt').write_text('mine'); (tmp_path / 'index.html').write_text('<title>my site</title>')
    with pytest.raises(FileExistsError, match='holds no earlier medcf tour'): tour(tmp_path, pages=[page])
    with pytest.raises(FileExistsError, match='holds no earlier medcf tour'): main(['tour', '--out', str(tmp_path)])
    assert drawn == [] and (tmp_path / 'index.html').read_text() == '<title>my site</title>'  # nothing drawn, nothing replaced
    with pytest.raises(NotADirectoryError, match='is a file'): tour(tmp_path / 'notes.txt', pages=[page])
    own = tour(tmp_path / 'report', pages=[page]).parent  # new folder: written
    (own / 'extra.png').write_bytes(b'x')
    tour(own, pages=[page])  # an earlier tour's folder (its index.html says so): rewritten
    assert (own / 'extra.png').read_bytes() == b'x' and len(drawn) == 2
    empty = tmp_path / 'empty'; empty.mkdir(); tour(empty, pages=[page])  # an empty folder is fine
    import medcf.cli as cli
    monkeypatch.setattr(cli, 'TOUR_PAGES', [page])
    assert main(['tour', '--out', str(tmp_path), '--overwrite']) == 0  # asked for: the tour's index.html replaces the one there, other files stay
    assert 'medcf tour' in (tmp_path / 'index.html').read_text() and (tmp_path / 'notes.txt').read_text() == 'mine'

def test_save_figure_refuses_an_existing_file(tmp_path):
    from medcf.cli import save_figure
    x = -torch.ones(2, 1, 8, 8)
    p = save_figure(x, tmp_path / 'f.png', ['a', 'b']); first = p.read_bytes()
    with pytest.raises(FileExistsError, match='save_figure would write over'): save_figure(x[:1], p, ['c'])
    assert p.read_bytes() == first
    assert save_figure(x[:1], p, ['c'], overwrite=True).read_bytes() != first

def _capture_figures(monkeypatch) -> dict:
    "Replace cli.save_figure by a stub that keeps what each page hands it: {file name: (images, titles)}."
    shown = {}
    monkeypatch.setattr(cli, 'save_figure', lambda images, path, titles=None, **k: shown.__setitem__(Path(path).name, (images, titles)) or Path(path))
    return shown

def test_unknown_command_and_missing_out():
    with pytest.raises(SystemExit): main(['nonsense'])
    with pytest.raises(SystemExit): main(['tour'])

def test_readme_in_step():
    root = Path(__file__).resolve().parent.parent
    assert (root / 'README.md').read_text() == readme_text(root / 'nbs' / 'index.ipynb'), "run `medcf readme`"

def test_console_script_installed():
    r = subprocess.run(['medcf', '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and 'tour' in r.stdout

def test_generation_page_and_command(tmp_path):
    title, figs = page_generation(tmp_path, seed=0, n=1, num_inference_steps=2)
    assert len(figs) == 4 and all((tmp_path / f).exists() for _, f in figs)
    out = tmp_path / 'g.png'
    assert main(['generate', '--model', 'chest', '--prompt', 'Chest X-ray showing Pleural Effusion', '--n', '2', '--steps', '2', '--out', str(out)]) == 0
    assert out.exists()
    with pytest.raises(ValueError, match='zoo'): main(['generate', '--model', 'no_such_model', '--prompt', 'x', '--n', '1', '--steps', '2', '--out', str(out)])

def test_generate_command_is_quiet(tmp_path):
    "The console script prints its result and nothing else: no library warnings (e.g. transformers' image processors without torchvision)."
    out = tmp_path / 'q.png'
    r = subprocess.run(['medcf', 'generate', '--model', 'chest', '--prompt', 'Chest X-ray showing Pleural Effusion', '--n', '1',
                        '--steps', '2', '--out', str(out)], capture_output=True, text=True)
    assert r.returncode == 0 and out.exists(), r.stderr
    assert r.stderr == '', f'unexpected output on stderr: {r.stderr[:500]}'
    assert r.stdout.strip() == f'wrote {out}'


def test_generate_command_refuses_to_overwrite(tmp_path):
    "An existing --out is kept unless --overwrite; a bad path or guidance fails before the model is loaded."
    out = tmp_path / 'g.png'
    out.write_bytes(b'precious')
    args = ['generate', '--model', 'chest', '--prompt', 'Chest X-ray', '--n', '1', '--steps', '2', '--out', str(out)]
    with pytest.raises(FileExistsError, match='--overwrite'): main(args)
    assert out.read_bytes() == b'precious'
    assert main(args + ['--overwrite']) == 0 and out.read_bytes() != b'precious'
    with pytest.raises(ValueError, match='guidance_scale=nan'): main(args[:-1] + [str(tmp_path / 'h.png'), '--guidance', 'nan'])
    with pytest.raises(ValueError, match='.png'): main(args[:-1] + [str(tmp_path / 'h.txt')])
    with pytest.raises(FileNotFoundError, match='does not exist'): main(args[:-1] + [str(tmp_path / 'no' / 'h.png')])
    assert not (tmp_path / 'h.png').exists()

def test_console_reports_mistakes_in_one_line(tmp_path):
    "A mistake in the arguments or files is one line on stderr and exit status 2, not a traceback (MEDCF_TRACEBACK=1 shows it)."
    import os
    cmd = ['medcf', 'generate', '--model', 'brain', '--prompt', 'x', '--n', '1', '--out', str(tmp_path / 'g.png')]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("medcf: error: unknown model 'brain'") and 'Traceback' not in r.stderr
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'MEDCF_TRACEBACK': '1'})
    assert r.returncode != 0 and 'Traceback' in r.stderr
    r = subprocess.run(['medcf', 'generate', '--prompt', 'x', '--n', '1', '--steps', '2', '--guidance', '1e300', '--out', str(tmp_path / 'h.png')], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith('medcf: error: sampling produced NaN or inf') and 'Traceback' not in r.stderr  # an overflowing scale, named


def test_tour_refuses_an_empty_page_list(tmp_path):
    "pages=[] used to mean every default page."
    from medcf.cli import tour
    with pytest.raises(ValueError, match=r'pages=\[\]'): tour(tmp_path / 't', pages=[])
    assert not (tmp_path / 't').exists()


def test_importing_the_cli_keeps_the_matplotlib_backend():
    "`import medcf.cli` left a notebook on Agg (no inline figure showed after it); only the console script chooses Agg."
    code = "import matplotlib; matplotlib.use('svg'); import medcf.cli; print(matplotlib.get_backend())"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == 'svg'


def test_generate_command_device_dtype_variant(tmp_path):
    "--dtype loads the weights in another precision (bfloat16 runs on a CPU too); --variant is passed to load_pipeline; a bad dtype is refused before loading."
    from medcf.diffusion import generate_grid
    out = tmp_path / 'b.png'
    args = ['generate', '--model', 'chest', '--prompt', 'Chest X-ray', '--n', '1', '--steps', '2', '--out', str(out), '--device', 'cpu']
    assert main(args + ['--dtype', 'bfloat16']) == 0 and out.exists()
    with pytest.raises(ValueError, match="variants are a diffusers folder's"): main(args[:-3] + [str(tmp_path / 'v.png'), '--variant', 'fp16'])
    with pytest.raises(ValueError, match="dtype='float8'"): generate_grid('chest', 'x', n=1, out=tmp_path / 'c.png', dtype='float8')
    with pytest.raises(SystemExit): main(args + ['--dtype', 'float8'])  # argparse's choices


def test_generate_command_guidance_interval(tmp_path, monkeypatch, capsys):
    "The CLI guided at the recipe's interval with no way to say otherwise, while the library's generate() guides at every step by default (0.38 apart on the chest model)."
    import medcf.cli as C
    got = []
    monkeypatch.setattr(C, 'generate_grid', lambda *a, **k: got.append(a) or tmp_path / 'x.png')
    base = ['generate', '--prompt', 'Chest X-ray', '--n', '1', '--steps', '2', '--out', str(tmp_path / 'x.png')]
    for flag, want in [([], 'recipe'), (['--guidance-interval', 'all'], None), (['--guidance-interval', '0,600'], (0, 600))]:
        main(base + flag); assert got[-1][7] == want
    with pytest.raises(SystemExit): main(base + ['--guidance-interval', 'late'])
    assert "'late': expected 'recipe', 'all' or two timesteps LO,HI" in capsys.readouterr().err


def test_generate_command_negative_prompt_and_rescale(tmp_path, monkeypatch):
    "--negative-prompt and --guidance-rescale reach generate(); a bad rescale or a list of negative prompts is refused before the model loads."
    import medcf.cli as C
    from medcf.diffusion import generate_grid
    got = []
    monkeypatch.setattr(C, 'generate_grid', lambda *a, **k: got.append(k) or tmp_path / 'x.png')
    base = ['generate', '--prompt', 'Chest X-ray', '--n', '1', '--steps', '2', '--out', str(tmp_path / 'x.png')]
    main(base); assert got[-1]['negative_prompt'] == '' and got[-1]['guidance_rescale'] == 0.0
    main(base + ['--negative-prompt', 'blurry', '--guidance-rescale', '0.7']); assert got[-1]['negative_prompt'] == 'blurry' and got[-1]['guidance_rescale'] == 0.7
    with pytest.raises(ValueError, match='guidance_rescale'): generate_grid('nosuchmodel', 'x', n=1, out=tmp_path / 'c.png', guidance_rescale=1.5)
    with pytest.raises(TypeError, match='one string for the grid'): generate_grid('nosuchmodel', 'x', n=1, out=tmp_path / 'c.png', negative_prompt=['a'])
    png = generate_grid('chest', 'Chest X-ray', n=2, out=tmp_path / 'd.png', num_inference_steps=2, negative_prompt='blurry', guidance_rescale=0.7)
    assert png.exists()


def test_generate_command_bad_device(tmp_path):
    "--device gpu (a RuntimeError) and --device cuda on a CPU build (an AssertionError) printed tracebacks past console()'s one-line errors."
    base = ['generate', '--prompt', 'Chest X-ray', '--n', '1', '--steps', '1', '--out', str(tmp_path / 'x.png')]
    with pytest.raises(ValueError, match=r"device='gpu': expected a torch device name such as 'cpu', 'cuda'"): main(base + ['--device', 'gpu'])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda': this torch .* sees no CUDA device"): main(base + ['--device', 'cuda'])
    assert not (tmp_path / 'x.png').exists()


def test_tour_checks_its_seed_before_making_the_folder(tmp_path):
    "medcf tour --seed -1 failed after making an empty folder."
    with pytest.raises(ValueError, match='seed=-1'): tour(tmp_path / 't', seed=-1)
    assert not (tmp_path / 't').exists()
    with pytest.raises(ValueError, match=r'seed=4294967296: expected an integer in \[0, 4294967295\]'): tour(tmp_path / 't', seed=2**32)  # generate_grid's noise keys are 32-bit
    assert not (tmp_path / 't').exists()  # the previous library drew the phantom pages first and failed at the generation page


# --- From a mutation-testing pass over medcf/cli.py (session 36): the C-numbers are the helper's mutant ids.
# --- C06: page and figure titles are escaped in index.html ---------------------------------------------------------------------
def test_tour_escapes_titles(tmp_path):
    page = lambda out, seed: ('A & B <i>', [('caption <b>', 'f.png')])
    html = cli.tour(tmp_path / 't', pages=[page]).read_text()
    assert '<h2>A &amp; B &lt;i&gt;</h2>' in html and '<figcaption>caption &lt;b&gt;</figcaption>' in html and '<i>' not in html


# --- C08, C09, C10 (C11, already killed by test_cli.py, fails here too): `medcf generate` passes the documented defaults and each option to its own parameter ------------------
def test_generate_command_defaults_and_positions(tmp_path, monkeypatch):
    import inspect
    got, sig = [], inspect.signature(cli.generate_grid)  # each value read by its parameter's name, however the command passes it
    def fake(*a, **k):
        b = sig.bind(*a, **k); b.apply_defaults(); got.append(b.arguments); return tmp_path / 'x.png'
    monkeypatch.setattr(cli, 'generate_grid', fake)
    cli.main(['generate', '--prompt', 'Chest X-ray'])
    assert {k: got[-1][k] for k in ('model', 'prompt', 'n', 'out', 'seed', 'num_inference_steps')} == dict(
        model='chest', prompt='Chest X-ray', n=16, out='grid.png', seed=0, num_inference_steps=50)  # the help's '(default 16)', 'grid.png', '(default 0)', '(default 50)'
    assert got[-1]['guidance_scale'] is None and got[-1]['guidance_interval'] == 'recipe'  # no --guidance: generate_grid takes the checkpoint's recipe scale (session 42)
    cli.main(['generate', '--prompt', 'p', '--n', '3', '--out', 'o.png', '--seed', '7', '--steps', '9', '--guidance', '2.5'])
    assert {k: got[-1][k] for k in ('prompt', 'n', 'out', 'seed', 'num_inference_steps', 'guidance_scale')} == dict(
        prompt='p', n=3, out='o.png', seed=7, num_inference_steps=9, guidance_scale=2.5)


# --- C12, C13, C14, C19, C22: `readme --check` reports and writes nothing; `readme` writes the notebook's visible cells --------------------------------------------------
def test_readme_check_does_not_write(tmp_path, monkeypatch, capsys):
    proj = tmp_path / 'proj'; (proj / 'nbs').mkdir(parents=True); (proj / 'settings.ini').write_text('[DEFAULT]\n')
    cells = [{'cell_type': 'markdown', 'source': ['# Title'], 'metadata': {}},
             {'cell_type': 'code', 'source': ['#| hide\n', 'secret = 1'], 'metadata': {}, 'outputs': [], 'execution_count': None},
             {'cell_type': 'code', 'source': ['#| eval: false\n', 'print(2)'], 'metadata': {}, 'execution_count': 1,
              'outputs': [{'output_type': 'stream', 'name': 'stdout', 'text': ['2\n']}]}]
    nb = {'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    want = '# Title\n\n```python\nprint(2)\n```\n\n```\n2\n```\n'  # a hidden cell left out; another directive dropped, its cell kept
    (proj / 'nbs' / 'index.ipynb').write_text(json.dumps(nb)); (proj / 'README.md').write_text('stale\n')
    monkeypatch.chdir(proj)
    assert cli.main(['readme', '--check']) == 1 and (proj / 'README.md').read_text() == 'stale\n'
    assert 'out of step' in capsys.readouterr().err
    assert cli.main(['readme']) == 0 and (proj / 'README.md').read_text() == want and 'wrote README.md' in capsys.readouterr().out
    assert cli.main(['readme', '--check']) == 0 and 'README.md is in step' in capsys.readouterr().out
    (tmp_path / 'other').mkdir(); (tmp_path / 'other' / 'settings.ini').write_text('[DEFAULT]\n'); monkeypatch.chdir(tmp_path / 'other')
    with pytest.raises(FileNotFoundError, match='no settings.ini with nbs/index.ipynb'): cli.main(['readme'])  # another project's settings.ini is not ours


# --- C15: a missing folder (an OSError) is one line and exit status 2, like the other mistakes ----------------------------------
def test_console_reports_a_missing_folder_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv('MEDCF_TRACEBACK', raising=False)
    monkeypatch.setattr('sys.argv', ['medcf', 'generate', '--prompt', 'x', '--out', str(tmp_path / 'no' / 'g.png')])
    with pytest.raises(SystemExit) as e: cli.console()
    assert e.value.code == 2 and capsys.readouterr().err.startswith('medcf: error: ')


# --- C20, C24 (and session 42's devices, melanoma): each counterfactual strip of the tour is the factual row over the TRUE counterfactual of the same samples
@pytest.mark.parametrize('name,phantom,do', [('chest_cf_effusion.png', ChestPhantom, dict(effusion=1)), ('chest_cf_devices.png', ChestPhantom, dict(devices=1)),
                                             ('skin_cf_melanoma.png', SkinPhantom, dict(melanoma=1))])
def test_tour_counterfactual_strip(name, phantom, do, tmp_path, monkeypatch):
    shown = _capture_figures(monkeypatch)
    cli.page_phantoms(tmp_path, seed=0)
    images, titles = shown[name]
    ph = phantom(seed=0); b = ph.sample(16)[:8]; cf = ph.counterfactual(b, **do)
    assert titles == ['factual'] * 8 + [f'do({next(iter(do))}=1)'] * 8 and not torch.equal(cf.images, b.images)
    assert torch.equal(images[:8], b.images) and torch.equal(images[8:], cf.images)


# --- session 40's mutation pass: `medcf tour --seed` reaches tour; `medcf readme` finds the project from a subfolder ------------------
def test_tour_command_passes_its_seed_and_overwrite(tmp_path, monkeypatch, capsys):
    got = []
    monkeypatch.setattr(cli, 'tour', lambda out, seed=0, overwrite=False: got.append((out, seed, overwrite)) or Path(out) / 'index.html')
    assert main(['tour', '--out', str(tmp_path), '--seed', '7']) == 0 and main(['tour', '--out', str(tmp_path), '--overwrite']) == 0
    assert got == [(str(tmp_path), 7, False), (str(tmp_path), 0, True)] and 'index.html' in capsys.readouterr().out


def test_readme_finds_the_project_from_a_subfolder(tmp_path, monkeypatch):
    proj = tmp_path / 'proj'; (proj / 'nbs').mkdir(parents=True); (proj / 'settings.ini').write_text('[DEFAULT]\n')
    nb = {'cells': [{'cell_type': 'markdown', 'source': ['# T'], 'metadata': {}}], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    (proj / 'nbs' / 'index.ipynb').write_text(json.dumps(nb)); (proj / 'README.md').write_text('# T\n')
    monkeypatch.chdir(proj / 'nbs')  # where a student runs nbdev commands
    assert cli.readme(check=True) and cli.main(['readme', '--check']) == 0


@pytest.mark.parametrize('err', [ValueError, TypeError, OSError, FloatingPointError])
def test_console_turns_each_mistake_into_one_line(err, monkeypatch, capsys):
    "The four kinds of mistake console() reports as one line and exit status 2; anything else (a bug) keeps its traceback."
    monkeypatch.delenv('MEDCF_TRACEBACK', raising=False)
    monkeypatch.setattr(cli, 'main', lambda argv=None: (_ for _ in ()).throw(err('what was wrong')))
    with pytest.raises(SystemExit) as e: cli.console()
    assert e.value.code == 2 and capsys.readouterr().err.startswith('medcf: error: what was wrong\n')
    monkeypatch.setattr(cli, 'main', lambda argv=None: (_ for _ in ()).throw(RuntimeError('a bug')))
    with pytest.raises(RuntimeError, match='a bug'): cli.console()


# --- session 42's mutation pass over medcf/cli.py ---------------------------------------------------------------------------------------
def test_save_figure_checks_its_path_draws_titles_and_columns_and_closes(tmp_path):
    "save_figure refuses a name matplotlib would write elsewhere, draws the titles and `ncols` columns, and leaves no figure open."
    import matplotlib.pyplot as plt, matplotlib.image as mpimg
    from medcf.cli import save_figure
    x = torch.linspace(-1, 1, 4 * 64).reshape(4, 1, 8, 8)
    with pytest.raises(ValueError, match='expected a .png file'): save_figure(x, tmp_path / 'grid')  # matplotlib wrote grid.png instead
    assert not list(tmp_path.iterdir())
    open_before = len(plt.get_fignums())
    wide, tall = save_figure(x, tmp_path / 'w.png', ncols=4), save_figure(x, tmp_path / 't.png', ncols=2)
    assert len(plt.get_fignums()) == open_before  # a long tour opens many figures: each one is closed once written
    (hw, ww), (ht, wt) = mpimg.imread(wide).shape[:2], mpimg.imread(tall).shape[:2]
    assert ww / hw > 2 * wt / ht  # one row of four is wider for its height than two rows of two
    titled = save_figure(x, tmp_path / 'a.png', ['one', 'two', 'three', 'four'], ncols=4)
    assert titled.read_bytes() != wide.read_bytes()


def test_tour_pages_follow_the_seed_and_label_the_skin_grid(tmp_path, monkeypatch):
    "Every phantom figure of the tour changes with its seed; the skin grid's titles say each lesion's own diagnosis and type."
    shown = _capture_figures(monkeypatch)
    cli.page_phantoms(tmp_path, seed=1); one = dict(shown)
    cli.page_phantoms(tmp_path, seed=2)
    assert len(one) == 5 and all(not torch.equal(one[k][0], shown[k][0]) for k in one)
    attrs = SkinPhantom(seed=2).sample(16).attrs
    assert shown['skin_grid.png'][1] == [('MEL' if m else 'NV') + f' F{t}' for m, t in zip(attrs.melanoma, attrs.skin_tone)]
    assert {'MEL', 'NV'} <= {t.split()[0] for t in shown['skin_grid.png'][1]}  # both diagnoses appear, so a swap shows


def test_tour_makes_a_nested_folder(tmp_path):
    page = lambda out, seed: ('p', [])
    idx = tour(tmp_path / 'reports' / 'today', pages=[page])
    assert idx == tmp_path / 'reports' / 'today' / 'index.html' and idx.exists()


def test_tour_runs_every_page_and_closes_its_html(tmp_path):
    pages = [lambda out, seed, k=k: (f'page {k}', [(f'figure {k}', f'f{k}.png')]) for k in range(3)]
    text = tour(tmp_path / 't', seed=4, pages=pages).read_text()
    assert [text.count(f'<h2>page {k}</h2>') for k in range(3)] == [1, 1, 1] and text.count('seed 4') == 3
    assert text.startswith('<html>') and text.rstrip().endswith('</body></html>')


def test_generation_page_passes_its_seed_steps_and_n(tmp_path, monkeypatch):
    got = []
    monkeypatch.setattr(cli, 'generate_grid', lambda model, prompt, n, out, seed, num_inference_steps, overwrite: got.append(
        (model, n, seed, num_inference_steps, overwrite)) or Path(out))
    title, figs = page_generation(tmp_path, seed=5, n=3, num_inference_steps=7)
    assert [Path(g[0]).name for g in got] == ['chest', 'chest', 'skin', 'skin'] and {g[1:] for g in got} == {(3, 5, 7, True)}  # the zoo's folders (a ./chest here is not the shipped model)
    assert all('7 DDIM steps' in c for c, _ in figs)


def test_the_tour_has_its_generation_page():
    "`medcf tour` writes the phantom page and the generation page the issue asks for, in that order."
    assert cli.TOUR_PAGES[:2] == [page_phantoms, page_generation]

def test_a_tour_stopped_halfway_is_resumed_by_the_same_command(tmp_path):
    "index.html was written last, so a tour stopped by an error or Ctrl-C left figures the same command then refused ('holds no earlier medcf tour'); the folder is marked as the tour's from the start."
    def first(out, seed): (out / 'f0.png').write_bytes(b'x'); return 'page 0', [('figure 0', 'f0.png')]
    def stop(out, seed): raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): tour(tmp_path / 't', pages=[first, stop])
    assert 'stopped before its figures were all drawn' in (tmp_path / 't' / 'index.html').read_text()
    text = tour(tmp_path / 't', pages=[first]).read_text()  # no overwrite needed
    assert '<h2>page 0</h2>' in text and 'stopped before' not in text

def test_a_rerun_stopped_halfway_leaves_no_earlier_report(tmp_path):
    "A re-run into an earlier tour's folder rewrote index.html only at its end: stopped halfway, the seed-0 report stood over figures redrawn at seed 1."
    def first(out, seed): (out / 'f0.png').write_bytes(bytes([seed])); return 'page 0', [('figure 0', 'f0.png')]
    def stop(out, seed): raise KeyboardInterrupt
    assert 'seed 0' in tour(tmp_path / 't', seed=0, pages=[first]).read_text()
    with pytest.raises(KeyboardInterrupt): tour(tmp_path / 't', seed=1, pages=[first, stop])
    text = (tmp_path / 't' / 'index.html').read_text()
    assert (tmp_path / 't' / 'f0.png').read_bytes() == b'\x01' and 'stopped before its figures were all drawn' in text and 'seed 0' not in text
    assert 'seed 1' in tour(tmp_path / 't', seed=1, pages=[first]).read_text()  # the same command resumes it

def test_readme_keeps_printed_text_only(tmp_path):
    "readme_text copied a figure's text/plain placeholder and stderr's warnings into README.md as if they were the cell's output."
    out = lambda **o: o
    cells = [dict(cell_type='code', metadata={}, source=['plt.plot([1, 2]); plt.show()'], outputs=[
                 out(output_type='display_data', metadata={}, data={'image/png': 'iVBORw0KGgo=', 'text/plain': ['<Figure size 640x480 with 1 Axes>']})]),
             dict(cell_type='code', metadata={}, source=['x = f(); print(x); x'], outputs=[
                 out(output_type='stream', name='stderr', text=['foo.py:12: FutureWarning: bar is deprecated\n']),
                 out(output_type='stream', name='stdout', text=['printed 3\n']),
                 out(output_type='execute_result', metadata={}, execution_count=2, data={'text/plain': ['3']})])]
    p = tmp_path / 'index.ipynb'; p.write_text(json.dumps(dict(nbformat=4, nbformat_minor=5, metadata={}, cells=cells)))
    assert readme_text(p) == '```python\nplt.plot([1, 2]); plt.show()\n```\n\n```python\nx = f(); print(x); x\n```\n\n```\nprinted 3\n3\n```\n'

def test_generate_refuses_a_negative_prompt_the_guidance_would_draw(tmp_path, monkeypatch):
    "--guidance 0 --negative-prompt x drew images of x (w = 0 is the negative prompt's own prediction); below 1 the guidance steers towards it."
    got = []
    monkeypatch.setattr(cli, 'generate_grid', lambda *a, **k: got.append((a[6], k['negative_prompt'])) or Path(a[3]))
    args = ['generate', '--prompt', 'Chest X-ray showing Pleural Effusion', '--out', str(tmp_path / 'g.png')]
    for w in ['0', '0.5', '-2']:
        with pytest.raises(ValueError, match=r'would draw the negative prompt, not avoid it.*w = 0 generates the negative prompt alone.*--guidance above 1'):
            main(args + ['--guidance', w, '--negative-prompt', 'Support Devices'])
    assert got == []  # refused before the model is loaded
    assert main(args + ['--guidance', '0']) == 0 and main(args + ['--guidance', '3', '--negative-prompt', 'Support Devices']) == 0 and main(args + ['--negative-prompt', 'Support Devices']) == 0
    assert got == [(0.0, ''), (3.0, 'Support Devices'), (None, 'Support Devices')]  # unconditional sampling, and guidance that steers away (the recipe's too), still run


def test_on_off_environment_flags_are_read_strictly(monkeypatch, tmp_path):
    "Session 52: MEDCF_FULL=true, yes or 2 ran the fast mode without a word; MEDCF_TRACEBACK=0 (or false) turned tracebacks on."
    from medcf.phantoms import is_full, env_flag
    monkeypatch.delenv('IN_TEST', raising=False)
    for v, want in (('1', True), ('0', False), ('', False), (' 1 ', True)):
        monkeypatch.setenv('MEDCF_FULL', v); assert is_full() is want
    monkeypatch.setenv('IN_TEST', '1'); monkeypatch.setenv('MEDCF_FULL', 'true'); assert is_full() is False  # nbdev_test's fast mode, whatever MEDCF_FULL says
    monkeypatch.delenv('IN_TEST')
    for v in ('true', 'yes', '2'):
        monkeypatch.setenv('MEDCF_FULL', v)
        with pytest.raises(ValueError, match=rf"MEDCF_FULL='{v}': expected 1 \(on\) or 0 / unset \(off\)"): is_full()
    monkeypatch.setenv('MEDCF_TRACEBACK', '0'); monkeypatch.setattr(sys, 'argv', ['medcf', 'generate', '--model', 'brain', '--prompt', 'x', '--out', str(tmp_path / 'g.png')])
    with pytest.raises(SystemExit) as e: cli.console()
    assert e.value.code == 2  # one line, no traceback
    monkeypatch.setenv('MEDCF_TRACEBACK', 'false')
    with pytest.raises(SystemExit) as e: cli.console()
    assert e.value.code == 2


def test_readme_text_names_a_notebook_it_cannot_read(tmp_path):
    "Session 52: a notebook with merge-conflict markers gave a JSON error naming no file, one without 'cells' a KeyError traceback (exit 1)."
    nb = tmp_path / 'index.ipynb'
    nb.write_text('{\n<<<<<<< HEAD\n "cells": []\n}\n')
    with pytest.raises(ValueError, match=r"index.ipynb is not a notebook medcf can read .*resolve a merge conflict's <<<<<<< markers"): readme_text(nb)
    for bad in ('{"nbformat": 4}', '[1, 2]', '{"cells": [{"source": "x"}]}'):
        nb.write_text(bad)
        with pytest.raises(ValueError, match=r"index.ipynb holds no notebook cells"): readme_text(nb)


def test_the_tour_draws_the_shipped_checkpoints_and_out_expands_the_home_folder(tmp_path, monkeypatch):
    "Session 52: a saved pipeline folder ./chest in the working directory replaced the shipped chest checkpoint in the tour, captioned 'chest checkpoint'; --out=~/report made a literal '~' folder (the shell leaves ~ after '=')."
    from medcf import diffusion as D
    seen = []
    monkeypatch.setattr(cli, 'generate_grid', lambda model, prompt, n, out, **k: seen.append(model) or out)
    (tmp_path / 'chest' / 'unet').mkdir(parents=True); monkeypatch.chdir(tmp_path)
    page_generation(tmp_path / 'r')
    assert seen and all(Path(m).parent == D.zoo_dir() for m in seen)
    with pytest.warns(UserWarning, match=r"'chest' loads the pipeline folder .*chest in the working directory, not the zoo's chest checkpoint; pass './chest'"):
        assert D._resolve('chest') == Path('chest')
    assert D._resolve('./chest') == Path('chest') and D._resolve('skin') == D.zoo_dir() / 'skin'
    got = []
    monkeypatch.setenv('HOME', str(tmp_path / 'home')); monkeypatch.setattr(cli, 'tour', lambda out, seed, overwrite=False: got.append(out) or Path(out) / 'index.html')
    main(['tour', '--out=~/report'])
    assert got == [str(tmp_path / 'home' / 'report')]
