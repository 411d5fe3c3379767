# Sourced by tests/gpu_run.sh and experiments/gpu_rows.sh on a lent GPU machine (no network):
# installs into $site (default /tmp/site) the distributions the suite imports beyond the
# machine's own python3 packages, from the wheels in .whl/suite (tests/fetch_gpu_wheels.sh,
# carried with the tree), and puts $site on PYTHONPATH. Writes the machine (python, cores,
# GPU) and what it installed to "$out/machine.txt".
site=${site:-${GPU_RUN_SITE:-/tmp/site}}
{ python3 --version; nproc
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; } \
  | tee "$out/machine.txt"
missing=$(python3 - <<'EOF'
import importlib.metadata as md
wanted = ['tensorflow-datasets', 'array_record', 'dm-tree', 'wrapt', 'etils', 'importlib_resources',
          'zipp', 'googleapis-common-protos', 'immutabledict', 'ml_collections', 'promise',
          'simple-parsing', 'docstring_parser', 'tensorflow-metadata', 'termcolor', 'toml',
          'tqdm', 'scikit-learn', 'joblib', 'threadpoolctl', 'narwhals', 'pytest-xdist',
          'execnet']
for name in wanted:
  try:
    md.version(name)
  except md.PackageNotFoundError:
    print(name)
EOF
)
if [ -n "$missing" ]; then
  echo "gpu_site: installing from .whl/suite:" $missing | tee -a "$out/machine.txt"
  # shellcheck disable=SC2086
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --find-links .whl/suite --target "$site" $missing 2>&1 | tee -a "$out/machine.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "gpu_site: install failed (wheels for this python?)"; return 1; }
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
fi
