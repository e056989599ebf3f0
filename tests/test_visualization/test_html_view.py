"""The interactive HTML view: exposed faces merged exactly, the figure's frames / slider /
legend, and the page in headless Chromium (offline, non-empty canvas, slider moves time)."""
import base64
import contextlib
import importlib.util
import io
import json
import os
import os.path as osp
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from occworld4d.visualization.figure import scene_info

pytest.importorskip('plotly', reason='the HTML view needs plotly (requirements/runtime.txt)')
from occworld4d.visualization.html import face_quads, scene_figure, write_scene_html  # noqa

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VOC = 'dynamiccity_carlasc'  # free 0, road 6, vehicle 10


def _area(quads):
    """Area of each axis-aligned rectangle (N, 4, 3) in voxel faces."""
    ext = quads.max(axis=1) - quads.min(axis=1)  # one extent is 0
    ext = np.sort(ext, axis=1)
    return ext[:, 1] * ext[:, 2]


def test_face_quads_single_voxel_and_merging():
    g = np.zeros((3, 3, 2), np.uint8)
    g[1, 1, 0] = 10
    q, c = face_quads(g, 0)
    assert q.shape == (5, 4, 3) and (c == 10).all()  # 4 sides + top, no bottom
    assert sorted(map(tuple, q[np.argmax(q[:, :, 2].min(axis=1))])) == \
        [(1, 1, 1), (1, 2, 1), (2, 1, 1), (2, 2, 1)]  # the top face at z = 1
    # a 3 x 3 road slab: its top is one rectangle, each side one strip
    g[:, :, 0] = 6
    q, c = face_quads(g, 0)
    assert len(q) == 5 and _area(q).tolist().count(9) == 1 and (c == 6).all()
    # a vehicle on the slab: faces between two occupied voxels are not drawn; the exposed
    # area is preserved by the merging (8 road top + 4 road side strips of 3 + vehicle 5)
    g[1, 1, 1] = 10
    q, c = face_quads(g, 0)
    assert _area(q[c == 6]).sum() == 8 + 4 * 3 and _area(q[c == 10]).sum() == 5


def test_face_quads_area_equals_exposed_faces_random():
    rng = np.random.default_rng(0)
    g = rng.choice([0, 0, 6, 10], size=(9, 7, 5)).astype(np.uint8)
    q, c = face_quads(g, 0)
    occ = np.pad(g != 0, 1)
    exposed = 0
    for axis in range(3):
        for step in (-1, 1):
            if axis == 2 and step == -1:
                continue
            nb = np.roll(occ, -step, axis=axis)
            exposed += int((occ & ~nb).sum())
    assert _area(q).sum() == exposed
    assert len(q) < exposed  # something was merged


def _scene(T=3):
    sem = np.zeros((T, 16, 16, 4), np.uint8)
    sem[:, :, :, 0] = 6
    for t in range(T):
        sem[t, 2 + 4 * t:6 + 4 * t, 2:8, 1:3] = 10  # a vehicle driving along +X
    return sem


def test_scene_figure_frames_slider_legend():
    info = scene_info(VOC, (16, 16, 4), voxel_size=(0.5, 0.5, 0.5), frame_rate=2.0)
    fig, stats = scene_figure(_scene(), info, title='toy')
    names = [t.name for t in fig.data]
    assert names[:11] == ['building', 'barrier', 'other', 'pedestrian', 'pole', 'road',
                          'ground', 'sidewalk', 'vegetation', 'vehicle', 'bicycle']
    assert names[-1] == 'ego (+X)' and all(t.showlegend for t in fig.data)
    assert len(fig.frames) == 3 and stats['frames'] == 3
    assert [s.label for s in fig.layout.sliders[0].steps] == ['0.0s', '0.5s', '1.0s']
    veh = [np.asarray(f.data[9].x) for f in fig.frames]  # vehicle x range moves by 2 m
    assert [float(v.min()) for v in veh] == [-3.0, -1.0, 1.0]
    assert 'frame 2 of 0..2' in fig.frames[2].layout.title.text
    # the frame budget keeps evenly spread frames, first and last
    fig5, st5 = scene_figure(_scene(4), info, max_voxels=stats['voxels'])
    assert st5['frames_total'] == 4 and st5['frames'] == 3
    assert [f.name for f in fig5.frames] == ['0', '2', '3']


def test_html_is_self_contained(tmp_path):
    info = scene_info(VOC, (16, 16, 4), voxel_size=(0.5, 0.5, 0.5))
    path = str(tmp_path / 'v.html')
    stats = write_scene_html(_scene(), info, path)
    html = open(path, encoding='utf-8').read()
    assert stats['bytes'] == os.path.getsize(path) < 8_000_000
    assert '<script src=' not in html and 'cdn.plot.ly' not in html.split('/*')[0]
    assert 'Plotly.newPlot' in html and os.listdir(tmp_path) == ['v.html']


def test_visualize_tool_html(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('visualize_tool',
                                                  osp.join(ROOT, 'tools', 'visualize.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    np.savez(tmp_path / 's.npz', semantics=_scene(), vocabulary=VOC)
    out = tool.main([str(tmp_path / 's.npz'), '--html', str(tmp_path / 's.html')])
    assert out == str(tmp_path / 's.html') and sorted(os.listdir(tmp_path)) == ['s.html', 's.npz']
    assert '3 frame(s)' in capsys.readouterr().out


# ------------------------------------------------------------------ headless Chromium
def _chromium():
    for name in (os.environ.get('CHROMIUM'), 'chromium', 'chromium-browser', 'google-chrome'):
        if name and shutil.which(name):
            return shutil.which(name)
    msg = ('Chromium is not installed: `make test-env` installs it (apt-get install chromium); '
           'or set CHROMIUM=/path/to/chrome')
    if os.environ.get('CI'):
        pytest.fail(msg)
    pytest.skip(msg)


class _CDP:
    """The smallest Chrome DevTools Protocol client: one websocket, text frames."""

    def __init__(self, url: str, timeout: float = 30):
        hostport, path = url[len('ws://'):].split('/', 1)
        host, port = hostport.split(':')
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f'GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket'
                           f'\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n'
                           'Sec-WebSocket-Version: 13\r\n\r\n').encode())
        head = b''
        while b'\r\n\r\n' not in head:
            head += self.sock.recv(1)
        assert b' 101 ' in head.split(b'\r\n')[0], head
        self.id, self.events = 0, []

    def _exact(self, n):
        out = b''
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError('devtools socket closed')
            out += chunk
        return out

    def _send(self, text: str):
        data, mask = text.encode(), os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack('>H', n) if n < 65536 else
                                bytes([0x80 | 127]) + struct.pack('>Q', n))
        arr = np.frombuffer(data, np.uint8) ^ np.resize(np.frombuffer(mask, np.uint8), n)
        self.sock.sendall(head + mask + arr.tobytes())

    def _recv(self) -> dict:
        msg = b''
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7f
            if n == 126:
                n = struct.unpack('>H', self._exact(2))[0]
            elif n == 127:
                n = struct.unpack('>Q', self._exact(8))[0]
            payload = self._exact(n)
            if b0 & 0x0f == 8:
                raise ConnectionError('devtools socket closed')
            if b0 & 0x0f in (9, 10):  # ping / pong
                continue
            msg += payload
            if b0 & 0x80:
                return json.loads(msg)

    def call(self, method: str, **params):
        self.id += 1
        self._send(json.dumps(dict(id=self.id, method=method, params=params)))
        while True:
            m = self._recv()
            if m.get('id') == self.id:
                if 'error' in m:
                    raise RuntimeError(f'{method}: {m["error"]}')
                return m.get('result', {})
            self.events.append(m)

    def js(self, expr: str):
        r = self.call('Runtime.evaluate', expression=expr, returnByValue=True,
                      awaitPromise=True)
        if 'exceptionDetails' in r:
            raise RuntimeError(f'{expr}: {r["exceptionDetails"]}')
        return r['result'].get('value')

    def wait(self, expr: str, timeout: float = 60.0):
        end = time.time() + timeout
        while time.time() < end:
            if self.js(expr):
                return
            time.sleep(0.2)
        raise TimeoutError(f'page never satisfied {expr!r} within {timeout} s')

    def screenshot(self) -> np.ndarray:
        data = self.call('Page.captureScreenshot', format='png')['data']
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert('RGB'))


@contextlib.contextmanager
def launch_chromium(folder):
    """Headless Chromium with a fresh profile under ``folder``; yields a :class:`_CDP` to
    its first page. Network is cut off (a dead proxy, no name resolution)."""
    exe = _chromium()
    prof = tempfile.mkdtemp(prefix='chromium_', dir=str(folder))
    proc = subprocess.Popen(
        [exe, '--headless=new', '--no-sandbox', '--remote-debugging-port=0',
         f'--user-data-dir={prof}', '--no-first-run', '--no-default-browser-check',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-extensions', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
         '--proxy-server=http://127.0.0.1:9', '--host-resolver-rules=MAP * ~NOTFOUND',
         '--window-size=1200,900', 'about:blank'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = osp.join(prof, 'DevToolsActivePort')
        end = time.time() + 30
        while not osp.exists(port_file) or len(open(port_file).read().split()) < 2:
            if time.time() > end or proc.poll() is not None:
                pytest.fail(f'{exe} did not start its devtools endpoint (rc {proc.poll()})')
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        pages = json.loads(opener.open(f'http://127.0.0.1:{port}/json/list', timeout=10).read())
        page = next(p for p in pages if p['type'] == 'page')
        yield _CDP(page['webSocketDebuggerUrl'])
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def browser(tmp_path):
    with launch_chromium(tmp_path) as cdp:
        yield cdp


def _plot_box(cdp):
    r = cdp.js('(() => { const c = document.querySelector(".gl-container canvas") || '
               'document.querySelector("canvas"); const b = c.getBoundingClientRect(); '
               'return [b.left, b.top, b.right, b.bottom]; })()')
    dpr = cdp.js('window.devicePixelRatio')
    return [int(round(v * dpr)) for v in r]


def test_html_in_headless_chromium(tmp_path, browser):
    info = scene_info(VOC, (16, 16, 4), voxel_size=(0.5, 0.5, 0.5), frame_rate=2.0)
    path = str(tmp_path / 'scene.html')
    write_scene_html(_scene(), info, path, title='toy')
    cdp = browser
    cdp.call('Network.enable')
    cdp.call('Runtime.enable')
    cdp.call('Page.enable')
    cdp.call('Page.navigate', url='file://' + path)
    cdp.wait('(() => { const g = document.querySelector(".js-plotly-plot"); '
             'return !!(g && g._fullLayout && g._fullLayout.sliders && '
             'document.querySelector(".slider-rail-rect") && document.querySelector("canvas"))'
             '})()')
    time.sleep(1.5)  # let WebGL draw
    # offline: every request the page made is the file itself or inline data
    urls = [e['params']['request']['url'] for e in cdp.events
            if e.get('method') == 'Network.requestWillBeSent']
    assert urls and all(u.startswith(('file:', 'data:', 'blob:', 'about:')) for u in urls), urls
    errors = [e for e in cdp.events if e.get('method') == 'Runtime.exceptionThrown']
    assert not errors, errors
    x0, y0, x1, y1 = _plot_box(cdp)
    first = cdp.screenshot()[y0:y1, x0:x1].astype(int)
    # a non-empty canvas: saturated class colours (road magenta, vehicle blue) are drawn
    sat = first.max(axis=2) - first.min(axis=2)
    assert (sat > 80).mean() > 0.02, 'the WebGL canvas is (nearly) empty'
    blueish = (first[..., 2] > 150) & (first[..., 0] < 80)
    assert blueish.sum() > 50  # the vehicle
    assert 'frame 0 of 0..2' in cdp.js('document.querySelector(".gtitle").textContent')
    # move the slider: drag its grip to the end of the rail
    rail = cdp.js('(() => { const b = document.querySelector(".slider-rail-rect")'
                  '.getBoundingClientRect(); return [b.left, b.right, b.top + b.height / 2];'
                  '})()')
    grip = cdp.js('(() => { const b = document.querySelector(".slider-grip-rect")'
                  '.getBoundingClientRect(); return [b.left + b.width / 2, '
                  'b.top + b.height / 2]; })()')
    cdp.call('Input.dispatchMouseEvent', type='mousePressed', x=grip[0], y=grip[1],
             button='left', clickCount=1)
    for k in range(1, 11):
        cdp.call('Input.dispatchMouseEvent', type='mouseMoved', button='left',
                 x=grip[0] + (rail[1] - 2 - grip[0]) * k / 10, y=grip[1])
    cdp.call('Input.dispatchMouseEvent', type='mouseReleased', x=rail[1] - 2, y=grip[1],
             button='left', clickCount=1)
    cdp.wait('document.querySelector(".js-plotly-plot")._fullLayout.sliders[0].active === 2')
    cdp.wait('document.querySelector(".gtitle").textContent.includes("frame 2 of 0..2")')
    time.sleep(1.0)
    last = cdp.screenshot()[y0:y1, x0:x1].astype(int)
    changed = (np.abs(last - first).max(axis=2) > 60).mean()
    assert changed > 0.002, f'the slider did not change the drawn frame ({changed:.4f})'
    # toggling a class in the legend hides it: click the 'vehicle' legend entry
    box = cdp.js('(() => { const t = [...document.querySelectorAll(".legendtext")]'
                 '.find(e => e.textContent === "vehicle"); const b = t.getBoundingClientRect();'
                 ' return [b.left + b.width / 2, b.top + b.height / 2]; })()')
    for kind in ('mousePressed', 'mouseReleased'):
        cdp.call('Input.dispatchMouseEvent', type=kind, x=box[0], y=box[1], button='left',
                 clickCount=1)
    cdp.wait('document.querySelector(".js-plotly-plot")._fullData[9].visible === "legendonly"')
    time.sleep(1.0)
    hidden = cdp.screenshot()[y0:y1, x0:x1].astype(int)
    assert ((hidden[..., 2] > 150) & (hidden[..., 0] < 80)).sum() < blueish.sum() / 5
