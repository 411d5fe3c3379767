#!/usr/bin/env bash
# Downloads into .whl/suite/ (git-ignored; a folder of its own, since benchmarks/gpu_run.sh
# installs every wheel directly in .whl/) the wheels that tests/gpu_run.sh installs on a lent
# GPU machine, which has no network. That machine's python3 already has jax (CUDA), flax,
# optax, orbax, torch, tensorboard, matplotlib, pytest and hypothesis (and what they require);
# these are the suite's other imports, at the versions of constraints.txt, for CPython 3.11
# and 3.12 on manylinux x86_64 (the H200 lent before ran 3.12.3), plus pytest-xdist. About
# 33 MB.
#
#   bash tests/fetch_gpu_wheels.sh      # then carry .whl/suite with the working tree
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3

# Distributions the suite imports beyond the machine's packages (a run of ring and digits
# training, the evaluation and ganjax.main, listed from sys.modules), and what pip needs to
# install them: TFDS's (array_record, dm-tree, etils' extras, ...) and scikit-learn's.
NAMES=(tensorflow-datasets array_record dm-tree wrapt etils importlib_resources zipp
       googleapis-common-protos immutabledict ml_collections simple-parsing docstring_parser
       tensorflow-metadata termcolor toml tqdm scikit-learn joblib threadpoolctl narwhals)
specs=()
for name in "${NAMES[@]}"; do
  pattern="^$(echo "$name" | sed 's/[-_]/[-_]/g')=="
  spec=$(grep -iE "$pattern" constraints.txt) || { echo "not in constraints.txt: $name" >&2; exit 1; }
  specs+=("$spec")
done
specs+=(pytest-xdist==3.8.0 execnet==2.1.2)  # to run the suite in parallel there

mkdir -p .whl/suite
for py in 311 312; do
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --implementation cp --python-version "$py" --abi "cp$py" --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d .whl/suite "${specs[@]}"
done
# promise 2.3 has no wheel on PyPI: build its (pure-Python) one from the sdist.
"$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps -w .whl/suite \
  "$(grep -iE '^promise==' constraints.txt)"
ls -1 .whl/suite
du -sh .whl/suite
