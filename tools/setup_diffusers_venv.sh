#!/bin/sh
# The diffusers reference of the VAE tests: a venv over Debian's python3 and its torch
# (--system-site-packages) with diffusers 0.27.2 and its pure-Python dependencies from
# PyPI, --no-deps so that pip never replaces Debian's torch or numpy.
#   usage: tools/setup_diffusers_venv.sh [DIR]     (default: .venv-diffusers)
# Does nothing when DIR's python already imports diffusers 0.27.2.
set -e
dir=${1:-.venv-diffusers}
py=/usr/bin/python3
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import diffusers, safetensors.torch, torch; assert diffusers.__version__ == '0.27.2'" 2>/dev/null; then
    exit 0
fi
"$py" -m venv --system-site-packages "$dir"
"$dir/bin/pip" install -q --disable-pip-version-check --no-deps \
    diffusers==0.27.2 huggingface_hub==0.23.4 safetensors==0.4.3 packaging importlib_metadata zipp regex tqdm \
    pyyaml fsspec typing_extensions filelock requests
"$dir/bin/python" -c "import diffusers, safetensors.torch, torch; print('diffusers', diffusers.__version__, 'on torch', torch.__version__)"
