"""The built wheel installs in a fresh virtual environment and the README's example runs there."""
import os
import re
import subprocess
import sys
import tempfile

from conftest import KEY

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_wheel_installs_and_readme_example_runs(server):
    work = tempfile.mkdtemp(prefix="tidepool-wheel-")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", work, HERE], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wheels = [f for f in os.listdir(work) if f.endswith(".whl")]
    assert len(wheels) == 1 and wheels[0].startswith("tidepool_client-0.2.0-")
    venv = os.path.join(work, "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    subprocess.run([python, "-m", "pip", "install", "-q", os.path.join(work, wheels[0]), "pandas"], check=True)
    readme = open(os.path.join(HERE, "README.md")).read()
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    env = dict(os.environ, TIDEPOOL_URL=f"http://127.0.0.1:{server}", TIDEPOOL_API_KEY=KEY, PYTHONPATH="")
    out = subprocess.run([python, "-c", example], env=env, cwd=work, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "45"  # the query vector itself, year 2020
    typed = subprocess.run([python, "-c", "import tidepool_client, os; print(os.path.exists(os.path.join("
                            "os.path.dirname(tidepool_client.__file__), 'py.typed')))"], capture_output=True, text=True)
    assert typed.stdout.strip() == "True"
