"The exported API as the docs render it: every signature resolves (nbdev's `show_doc` evaluates its annotations); and what holds across the whole library (flags take bools, text files are UTF-8)."
import inspect, importlib
import pytest

MODULES = ['phantoms', 'data', 'diffusion', 'oracles', 'metrics', 'zoo', 'fusion', 'sde', 'cli']

def exported(module: str) -> list:
    "(name, function) for every exported function and every public method (and `__init__`) of an exported class."
    mod = importlib.import_module(f'medcf.{module}')
    out = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if inspect.isfunction(obj): out.append((name, obj))
        elif inspect.isclass(obj) and obj.__module__ == mod.__name__:
            for k, v in vars(obj).items():
                f = v.__func__ if isinstance(v, (classmethod, staticmethod)) else v
                if inspect.isfunction(f) and (not k.startswith('_') or k == '__init__'): out.append((f'{name}.{k}', f))
    return out

@pytest.mark.parametrize('module', MODULES)
def test_signatures_resolve(module):
    bad = []
    for name, f in exported(module):
        try: inspect.signature(f, eval_str=True)
        except Exception as e: bad.append(f"{name}: {e!r}")
    assert not bad, '\n'.join(bad)

def test_lazy_names_stay_lazy():
    "Annotations name diffusers' classes, yet importing the library does not import diffusers (it costs about 1.5 s)."
    import subprocess, sys
    code = "import sys, medcf.diffusion, medcf.zoo; print('diffusers' in sys.modules, 'transformers' in sys.modules)"
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split() == ['False', 'False']
    from medcf.phantoms import _LazyModule
    for m in MODULES:  # a star import must not bind a proxy over the user's own `import diffusers` / `import matplotlib`
        mod = importlib.import_module(f'medcf.{m}')
        assert not [k for k in mod.__all__ if isinstance(getattr(mod, k), _LazyModule)], m

@pytest.mark.parametrize('module', MODULES)
def test_signatures_typed(module):
    "Every parameter of the exported API has a type (the docs print it beside its docment), and every function its return type."
    bad = []
    for name, f in exported(module):
        sig = inspect.signature(f)
        untyped = [p for p, v in sig.parameters.items() if p not in ('self', 'cls') and v.annotation is inspect.Parameter.empty
                   and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)]
        if untyped: bad.append(f"{name}: {untyped} untyped")
        if sig.return_annotation is inspect.Signature.empty and not name.endswith('__init__'): bad.append(f"{name}: no return type")
    assert not bad, '\n'.join(bad)


@pytest.mark.parametrize('module', MODULES)
def test_signatures_documented(module):
    "Every parameter of the exported API has a docment (the docs print it beside its type), and every public function and method a docstring (session 51's audit found 74 without)."
    from fastcore.docments import docments
    bad = []
    for name, f in exported(module):
        try: inspect.getsource(f)
        except (OSError, TypeError): continue  # a dataclass's generated __init__: its fields carry the docments
        d = docments(f)
        params = [p for p, v in inspect.signature(f).parameters.items() if p not in ('self', 'cls') and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)]
        if (missing := [p for p in params if not d.get(p)]): bad.append(f"{name}: no docment for {missing}")
        if not name.endswith('__init__') and not (f.__doc__ or '').strip(): bad.append(f"{name}: no docstring")
    assert not bad, '\n'.join(bad)

def test_lazy_module_reads_like_a_module():
    "A missing name is an AttributeError (hasattr and getattr with a default work), a submodule imports on first read, dunders are not forwarded."
    from medcf.phantoms import _LazyModule
    m = _LazyModule('json')
    assert not hasattr(m, 'no_such_name') and getattr(m, 'no_such_name', 7) == 7 and not hasattr(m, '__version__')
    assert m.decoder.JSONDecoder is __import__('json').decoder.JSONDecoder and m.dumps([1]) == '[1]'
    seen = []
    q = _LazyModule('json', lambda: seen.append(1))
    q.dumps, q.loads
    assert seen == [1]  # the hook runs once

@pytest.mark.parametrize('module', MODULES)
def test_flags_take_only_bools(module, tmp_path, monkeypatch):
    "Every exported parameter annotated bool refuses a string before any work ('no' would read as True), naming the parameter; a dataclass's generated __init__ is left to its fields' users."
    monkeypatch.chdir(tmp_path)  # a function that failed to check would run with its defaults: let it write nowhere that matters
    unchecked = []
    for name, f in exported(module):
        flags = [p.name for p in inspect.signature(f).parameters.values() if p.annotation in ('bool', 'bool | None')]
        if not flags or (name.endswith('.__init__') and '__dataclass_fields__' in vars(importlib.import_module(f'medcf.{module}')).get(name.split('.')[0], object).__dict__): continue
        for flag in flags:
            try: f(**{flag: 'no'}); unchecked.append(f'{name}({flag}=...) ran')
            except TypeError as e:
                if f"{flag}='no': expected True or False" not in str(e): unchecked.append(f'{name}({flag}=...): {e}')
    assert not unchecked, '\n'.join(unchecked)


def test_text_files_name_their_encoding():
    "Every text file the library opens, reads or writes names its encoding: without one, Python uses the locale's (cp1252 on most Windows machines), "
    "which cannot write a card or README holding a non-ASCII character, nor read a UTF-8 notebook back (`medcf readme`)."
    import ast
    from pathlib import Path
    bare = []
    for path in sorted((Path(__file__).resolve().parent.parent / 'medcf').glob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if not isinstance(node, ast.Call) or any(k.arg == 'encoding' for k in node.keywords): continue
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in ('read_text', 'write_text'): bare.append(f'{path.name}:{node.lineno} {f.attr}')
            elif isinstance(f, ast.Name) and f.id == 'open':
                mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == 'mode'), None)
                if not (isinstance(mode, ast.Constant) and 'b' in str(mode.value)): bare.append(f'{path.name}:{node.lineno} open')
    assert not bare, f"text I/O without encoding='utf-8': {bare}"


def test_cards_with_non_ascii_text_round_trip_under_an_ascii_locale(tmp_path):
    "Under a locale whose encoding is ASCII (as cp1252 is narrower than UTF-8 on Windows), a pipeline card and an oracle card holding non-ASCII "
    "text are written and read back: save_pipeline / load_pipeline and save_checkpoint / load_checkpoint name UTF-8 themselves."
    import os, subprocess, sys
    from pathlib import Path
    tests = Path(__file__).resolve().parent
    code = f'''
import sys, locale, torch; sys.path.insert(0, {str(tests)!r})
from tiny_sd import tiny_pipeline
from medcf import diffusion as D, oracles as O
assert locale.getpreferredencoding(False).lower().replace('-', '').replace('_', '') in ('ansix3.41968', 'ascii', 'usascii'), locale.getpreferredencoding(False)
out = D.save_pipeline(tiny_pipeline(), {str(tmp_path / 'm')!r}, card=dict(name='Thorax \\u2013 v2', description='trained by Jos\\xe9'))
assert D.load_pipeline(out).model_card['description'] == 'trained by Jos\\xe9' and '\\u2013' in (out / 'README.md').read_text(encoding='utf-8')
O.save_checkpoint(torch.nn.Linear(2, 1), {str(tmp_path / 'o')!r}, 'lin', dict(note='\\u00b1 0.1'))
assert O.load_checkpoint({str(tmp_path / 'o')!r}, 'lin')[1]['note'] == '\\u00b1 0.1'
'''
    env = dict(os.environ, PYTHONUTF8='0', PYTHONCOERCECLOCALE='0', LC_ALL='C', LANG='C')
    r = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, encoding='utf-8')
    assert r.returncode == 0, r.stderr[-2000:]


def test_lower_bounds_installs_each_floor_of_settings_ini(monkeypatch):
    "tests/lower_bounds.py installs `name==X` for every `name>=X` requirement (any upper bound after it dropped) and a --pin in a floor's place."
    import configparser
    from pathlib import Path
    tests = Path(__file__).parent; monkeypatch.syspath_prepend(str(tests))
    import lower_bounds as L
    cfg = configparser.ConfigParser(); cfg.read(tests.parent / 'settings.ini', encoding='utf-8')
    req = cfg['DEFAULT']['requirements'].split()
    got = L.plan()
    for r in req:
        name, _, floor = r.partition('>=')
        assert (f"{name}=={floor.split(',')[0]}" if floor else r) in got, r
    assert set(cfg['DEFAULT']['dev_requirements'].split()) <= set(got)
    numpy = [r for r in got if r.startswith('numpy==')]
    assert len(numpy) == 1 and int(numpy[0][7:].split('.')[0]) < 2  # torch's floor (2.2) was built against numpy 1: its wheels fail on numpy 2
    later = L.plan(['torch==2.4.0'])
    assert 'torch==2.4.0' in later and not any(r.startswith('torch==2.2') for r in later)
    assert 'numpy==1.26.4' in L.plan(['numpy==1.26.4']) and numpy[0] not in L.plan(['numpy==1.26.4'])  # a pin replaces the floor
    with pytest.raises(SystemExit, match="'torc' is not among settings.ini's requirements"): L.plan(['torc==1'])
