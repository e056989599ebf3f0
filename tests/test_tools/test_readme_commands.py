"""The README commands work as written.

Every ```bash / ```shell block of README.md, configs/*/README.md and docs/*.md is split into
commands (``\\`` continuations joined, comments dropped). Each command is

* **run** when it is a tiny CPU command: ``python tools/<tool>.py`` of a tool that finishes in
  seconds (train, test, sample, export_scene, visualize, render_sensors), every config it names
  is a tiny one (``*_tiny_*`` / ``*-tiny.py``), it has no placeholder (an upper-case word
  such as ``CKPT`` or ``W/...``) and no absolute path. Run commands execute in order (README.md
  first, then the method READMEs and docs), in one temporary folder (with ``configs/``,
  ``tools/`` and ``projects/`` linked in), in this process, exactly as written, with one change: ``tools/train.py`` gets
  ``--cfg-options train_cfg.max_epochs=1`` appended, and ``train_dataloader.dataset.num_scenes=4``
  when the config's training set has ``num_scenes`` (the synthetic city; 2 iterations of
  batch 2 instead of 8): real trainings, real work dirs and checkpoints, small so that the
  whole test stays within minutes on one thread;
  a command already run from an earlier README (the same text) is not run again;
* **checked** otherwise (``make demo``, reference-size / real-data configs, long recipes,
  placeholders): the tool or script exists and its argparse accepts the options (the parser
  runs, the tool does not), every ``configs/...py`` it names exists, a ``make`` target is in
  the Makefile, ``pip install -r`` files exist.

For every command, a checkpoint or scene it reads (the checkpoint argument of test.py /
sample.py, ``*ckpt=`` / ``*checkpoint=`` options, ``--input``) must be a placeholder,
``none``, a preset camera rig, an existing file of the repository, or something an earlier
command writes (a work dir, an ``--out`` file); a checkpoint file name inside a work dir (``.../epoch_10.pth``)
is a guess and fails: the tools take the work dir and pick its latest checkpoint. Paths into
``../shared`` fail (a user does not have them).
"""
import argparse
import glob
import os
import os.path as osp
import re
import shlex
import sys
from typing import Dict, List, Optional

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FENCE = re.compile(r'^```(bash|shell|sh)\s*$')
RUN_TOOLS = ('tools/train.py', 'tools/test.py', 'tools/sample.py', 'tools/visualize.py',
             'tools/render_sensors.py', 'tools/dataset_converters/export_scene.py')
WORDS = {'STATIC', 'FORWARD', 'LEFT', 'RIGHT'}  # --command values, not placeholders
PLACEHOLDER = re.compile(r'^(?:[A-Za-z_.0-9]+=)?[A-Z][A-Z0-9_]*(?:/|$)')
PRESET_RIGS = ('nuscenes', )
WRITES = ('--out', '--work-dir', '--json', '--sample-dir')


def readme_files() -> List[str]:
    files = ['README.md'] + sorted(glob.glob('configs/*/README.md', root_dir=ROOT))
    files += sorted(glob.glob('docs/*.md', root_dir=ROOT))
    return [f for f in files if blocks(f)]


def blocks(rel: str) -> List[List[tuple]]:
    """[(line number, command text)] per command block of a markdown file."""
    out, cur, start, pending = [], None, 0, ''
    with open(osp.join(ROOT, rel)) as f:
        for n, line in enumerate(f, 1):
            if cur is None:
                if FENCE.match(line.strip()):
                    cur = []
                continue
            if line.strip().startswith('```'):
                out.append(cur)
                cur = None
                continue
            text = line.rstrip('\n')
            if not pending:
                start = n
            if text.rstrip().endswith('\\'):
                pending += text.rstrip()[:-1] + ' '
                continue
            text = (pending + text).strip()
            pending = ''
            if text and not text.startswith('#'):
                cur.append((start, text))
    return out


def split(text: str) -> List[str]:
    return shlex.split(text, comments=True)


def is_placeholder(token: str) -> bool:
    value = token.split('=', 1)[1] if '=' in token else token
    return value not in WORDS and bool(PLACEHOLDER.match(token))


def strip_env(tokens: List[str]) -> tuple:
    env = {}
    while tokens and re.match(r'^[A-Z_][A-Z0-9_]*=', tokens[0]):
        k, v = tokens[0].split('=', 1)
        env[k] = v
        tokens = tokens[1:]
    return env, tokens


def configs_of(tokens: List[str]) -> List[str]:
    found = []
    for t in tokens:
        for part in t.split('='):
            if part.startswith('configs/') and part.endswith('.py'):
                found.append(part)
    return found


def is_tiny(config: str) -> bool:
    name = osp.basename(config)
    return '_tiny_' in name or name.endswith('-tiny.py')


def runnable(tokens: List[str]) -> bool:
    if len(tokens) < 2 or tokens[0] != 'python' or tokens[1] not in RUN_TOOLS:
        return False
    cfgs = configs_of(tokens)
    if not cfgs or not all(is_tiny(c) for c in cfgs):
        return False
    return not any(is_placeholder(t) or t.startswith('/') or '[' in t or t == '|'
                   for t in tokens[2:])


class _Parsed(Exception):
    pass


def load_tool(rel: str):
    import importlib.util
    name = 'readme_' + re.sub(r'\W', '_', rel)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, rel))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def parse_only(rel: str, argv: List[str]) -> None:
    """Run the tool's argparse on ``argv`` and stop: an unknown option / missing argument is
    argparse's own error (SystemExit 2, message on stderr)."""
    mod = load_tool(rel)
    original = argparse.ArgumentParser.parse_args

    def parse(self, args=None, namespace=None):
        original(self, args, namespace)
        raise _Parsed()

    argparse.ArgumentParser.parse_args = parse
    old_argv = sys.argv
    sys.argv = [rel] + argv
    try:
        import inspect
        main = mod.main
        if inspect.signature(main).parameters:
            main(argv)
        else:
            main()
    except _Parsed:
        return
    finally:
        argparse.ArgumentParser.parse_args = original
        sys.argv = old_argv
    raise AssertionError(f'{rel}: main() returned without parsing arguments')


def read_paths(tokens: List[str]) -> List[str]:
    """Checkpoints / scenes a command reads."""
    tool = tokens[1] if len(tokens) > 1 else ''
    positional = [t for t in tokens[2:] if not t.startswith('-')]
    out = []
    if tool in ('tools/test.py', 'tools/sample.py') and len(positional) >= 2:
        out.append(positional[1])
    if tool in ('tools/dataset_converters/cache_latents.py', ) and len(positional) >= 2:
        out.append(positional[1])
    for i, t in enumerate(tokens):
        if '=' in t and re.search(r'(ckpt|checkpoint)=', t):
            out.append(t.split('=', 1)[1])
        if t in ('--input', '--extractor-ckpt', '--cameras', '--calib') and i + 1 < len(tokens):
            if not tokens[i + 1].startswith('-'):
                out.append(tokens[i + 1])
    return out


def written_paths(tokens: List[str]) -> List[str]:
    out = []
    for i, t in enumerate(tokens):
        if t in WRITES and i + 1 < len(tokens):
            out.append(tokens[i + 1].rstrip('/'))
    if len(tokens) > 2 and tokens[1] == 'tools/train.py' and '--work-dir' not in tokens:
        out.append('work_dirs/' + osp.splitext(osp.basename(tokens[2]))[0])
    if len(tokens) > 1 and tokens[1] == 'tools/sample.py' and '--out' not in tokens:
        out.append('outputs/sample')
    return out


def check_read(path: str, produced: List[str], where: str) -> Optional[str]:
    """None when ``path`` is fine, else the problem."""
    if path.lower() == 'none' or is_placeholder(path) or path in PRESET_RIGS:
        return None
    if '../shared' in path:
        return f'{where}: {path!r} points into ../shared, which a user does not have'
    for p in produced:
        if path == p:
            return None
        if path.startswith(p + '/'):
            if path.endswith(('.pth', '.safetensors')):
                return (f'{where}: {path!r} guesses a checkpoint file name inside the work dir '
                        f'{p!r}; pass the work dir (the tools use its latest checkpoint)')
            return None
    if osp.exists(osp.join(ROOT, path)):
        return None
    return (f'{where}: {path!r} is neither written by an earlier command of this README nor '
            'part of the repository')


def check_command(rel: str, line: int, text: str, env: Dict[str, str],
                  produced: List[str]) -> List[str]:
    """Static checks of one command; returns the problems."""
    where = f'{rel}:{line}'
    tokens = split(text)
    if not tokens:
        return []
    if tokens[0] == 'export':
        return []
    _, tokens = strip_env(tokens)
    problems = []
    if tokens[0] == 'make':
        with open(osp.join(ROOT, 'Makefile')) as f:
            targets = set(re.findall(r'^([\w.-]+):', f.read(), re.M))
        problems += [f'{where}: make target {t!r} is not in the Makefile'
                     for t in tokens[1:] if '=' not in t and t not in targets]
        return problems
    if tokens[0] == 'pip':
        for i, t in enumerate(tokens):
            if t == '-r' and not osp.isfile(osp.join(ROOT, tokens[i + 1])):
                problems.append(f'{where}: requirements file {tokens[i + 1]} does not exist')
        return problems
    if tokens[0] == 'bash' and len(tokens) > 1 and tokens[1].startswith('tools/'):
        if not osp.isfile(osp.join(ROOT, tokens[1])):
            return [f'{where}: {tokens[1]} does not exist']
        tool = {'tools/dist_train.sh': 'tools/train.py',
                'tools/dist_test.sh': 'tools/test.py'}.get(tokens[1])
        if tool:  # CONFIG [CHECKPOINT] GPUS [args]
            nargs = 2 if tool == 'tools/train.py' else 3
            tokens = ['python', tool] + tokens[2:2 + nargs - 1] + tokens[2 + nargs:]
        else:
            return problems
    if tokens[0] != 'python' or len(tokens) < 2:
        return problems
    tool = tokens[1]
    if not osp.isfile(osp.join(ROOT, tool)):
        return [f'{where}: {tool} does not exist']
    for cfg in configs_of(tokens):
        if not osp.isfile(osp.join(ROOT, cfg)):
            problems.append(f'{where}: config {cfg} does not exist')
    synopsis = any(t.startswith('[') or '|' in t for t in tokens)  # a usage line
    for path in [] if synopsis else read_paths(tokens):
        problem = check_read(path, produced, where)
        if problem:
            problems.append(problem)
    if not synopsis and tool.endswith('.py'):
        try:
            parse_only(tool, tokens[2:])
        except SystemExit as err:
            problems.append(f'{where}: {tool} rejects the options of {text!r} (exit '
                            f'{err.code}; its message is above)')
    produced += written_paths(tokens)
    return problems


def small_train_set(config: str) -> List[str]:
    """``train_dataloader.dataset.num_scenes=4`` when ``config``'s training set has
    ``num_scenes`` and more than 4 (the synthetic city), else nothing."""
    from mmengine.config import Config
    dataset = Config.fromfile(config).train_dataloader.dataset
    if dataset.get('num_scenes', 0) > 4:
        return ['train_dataloader.dataset.num_scenes=4']
    return []


def run_command(rel: str, line: int, text: str, env: Dict[str, str]) -> None:
    tokens = split(text)
    cmd_env, tokens = strip_env(tokens)
    argv = tokens[2:]
    if tokens[1] == 'tools/train.py':
        argv = argv + ['--cfg-options', 'train_cfg.max_epochs=1', *small_train_set(argv[0])]
    mod = load_tool(tokens[1])
    saved = {k: os.environ.get(k) for k in {**env, **cmd_env}}
    os.environ.update({**env, **cmd_env})
    old_argv = sys.argv
    sys.argv = [tokens[1]] + argv
    try:
        mod.main(argv)
    except SystemExit as err:
        if err.code not in (0, None):
            raise AssertionError(f'{rel}:{line}: {text!r} exited with {err.code}') from err
    finally:
        sys.argv = old_argv
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_rules_on_examples():
    assert runnable(split('python tools/train.py configs/occworld/occworld_vqvae_tiny_'
                          'synthetic-city.py'))
    assert not runnable(split('python tools/test.py configs/occworld/occworld_wm_tiny_synthetic'
                              '-city.py CKPT'))  # a placeholder
    assert not runnable(split('python tools/train.py configs/occworld/occworld_wm_8xb1-200e_'
                              'occ3d-nuscenes.py'))  # reference size
    assert not runnable(split('python tools/demo.py --out demo_out'))
    assert runnable(split('python tools/sample.py configs/dynamiccity/dynamiccity_dit_tiny_'
                          'synthetic-city.py work_dirs/x --task command --command LEFT'))
    produced = ['work_dirs/x']
    assert check_read('work_dirs/x', produced, 'w') is None
    assert 'guesses' in check_read('work_dirs/x/epoch_10.pth', produced, 'w')
    assert 'neither written' in check_read('work_dirs/y', produced, 'w')
    assert '../shared' in check_read('../shared/data/a.pkl', produced, 'w')
    problems = check_command('t.md', 1, 'python tools/sample.py configs/occworld/occworld_wm_'
                             'tiny_synthetic-city.py CKPT --no-such-flag', {}, [])
    assert problems and 'rejects the options' in problems[0]
    assert check_command('t.md', 1, 'make no-such-target', {}, [])


@pytest.mark.slow
def test_readme_commands(tmp_path, monkeypatch):
    files = readme_files()
    assert 'README.md' in files and any(f.startswith('configs/') for f in files)
    problems, ran, checked = [], [], 0
    done = set()
    for name in ('configs', 'tools', 'projects'):
        os.symlink(osp.join(ROOT, name), tmp_path / name)
    monkeypatch.chdir(tmp_path)
    produced: List[str] = []  # README.md first, then the method READMEs and docs, in order
    for rel in files:
        for block in blocks(rel):
            env: Dict[str, str] = {}
            for line, text in block:
                text = re.sub(r'\$(\w+)', lambda m: env.get(m.group(1), m.group(0)), text)
                tokens = split(text)
                _, rest = strip_env(tokens)
                if tokens and (tokens[0] == 'export' or not rest):  # VAR=value lines
                    env.update(t.split('=', 1) for t in tokens if '=' in t)
                    continue
                before = list(produced)
                problems += check_command(rel, line, text, env, produced)
                checked += 1
                _, bare = strip_env(tokens)
                if runnable(bare) and ' '.join(bare) not in done:
                    if not [p for p in problems if p.startswith(f'{rel}:{line}:')]:
                        run_command(rel, line, text, env)
                        done.add(' '.join(bare))
                        ran.append(f'{rel}:{line}')
                        for path in set(produced) - set(before):
                            if not osp.exists(path):
                                problems.append(f'{rel}:{line}: {text!r} did not write '
                                                f'{path}')
    print(f'README commands: {len(ran)} run, {checked} checked: {ran}')
    assert not problems, '\n'.join(problems)
    assert len(ran) >= 10
