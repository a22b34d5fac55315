#!/usr/bin/env bash
# The whole GPU run of issue 13 in one command: the suite on numpy+cupy (cupy must not skip),
# parity of every tutorial network in float64 and float32, and the GPU benchmark table.
# Every step's log lands in $OUT (or ./gpu-out), and a failing step does not stop the next.
#
#   bash benchmarks/gpu.sh                          # on the GPU machine (needs cupy and a GPU)
#   XNN_GPU_BACKEND=numpy bash benchmarks/gpu.sh    # dry run on a CPU: numpy in cupy's place
#
# On the GPU machine, which reaches no package index, first put the wheels it lacks next to the
# checkout (here: `bash ../shared/gpu/prepare-wheels.sh tqdm mpich`: tqdm is a dependency since
# issue 16, mpich gives mpi4py an MPI and mpiexec for the 2-rank cupy tests of issue 18) and
# install them there:
#   python3 -m pip install -q --no-index --no-deps --target .site .whl/*.whl
#   export PYTHONPATH=$PWD/.site:$PWD PATH=$PWD/.site/bin:$PATH
# The suite's cupy cases then include scikit-learn's array API checks on cupy (issue 17) and
# xnn.distributed's host staging of cupy arrays with 2 ranks sharing the GPU (issue 18).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-./gpu-out}"
mkdir -p "$OUT"
GPU="${XNN_GPU_BACKEND:-cupy}"       # the backend under test; numpy only for a dry run
export PYTHONUNBUFFERED=1
status=0

step() {  # step NAME SECONDS COMMAND...: run it with a time limit, log it, remember a failure
    local name=$1 limit=$2
    shift 2
    echo "=== $name ($(date +%T), limit ${limit}s): $*" | tee -a "$OUT/summary.log"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 3 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$OUT/summary.log"
    echo "    exit $rc" | tee -a "$OUT/summary.log"
    [ $rc -eq 0 ] || status=1
}

python3 - > "$OUT/machine.log" 2>&1 <<'PY'
import platform, numpy, xnn
print("python", platform.python_version(), "numpy", numpy.__version__)
try:
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    print("cupy", cupy.__version__, "gpu", props["name"], "cuda runtime",
          cupy.cuda.runtime.runtimeGetVersion())
except Exception as err:  # the dry run has no cupy
    print("no cupy:", type(err).__name__, err)
print("available backends:", xnn.available_backends())
PY
cat "$OUT/machine.log" | tee -a "$OUT/summary.log"

if [ "$GPU" = cupy ]; then
    export XNN_REQUIRE_GPU=1  # a cupy test that cannot run fails instead of skipping
fi

# 1. the whole suite on numpy and the GPU backend (the GPU-only tests select cupy themselves)
step suite 330 env XNN_TEST_BACKENDS="numpy,$GPU" XNN_FUZZ_EXAMPLES=5 \
    python3 -m pytest -q -x -p no:cacheprovider --durations=15 tests/

# 2. parity of every tutorial network, numpy as the reference
for dtype in float64 float32; do
    for net in xor linear polynomial deep_mlp arithmetic digits; do
        step "parity-$net-$dtype" 60 python3 -m xnn parity --example "$net" \
            --backends "numpy,$GPU" --steps 100 --dtype "$dtype"
    done
done

# 3. speed against torch CUDA (on a dry run: the CPU table, quick)
if [ "$GPU" = cupy ]; then
    step bench 240 python3 benchmarks/run.py --backend cupy --quick --no-memory --out "$OUT/bench"
else
    step bench 240 python3 benchmarks/run.py --quick --threads 1 --workloads xor,arithmetic \
        --no-memory --no-scaling --out "$OUT/bench"
fi

echo "=== done, exit $status; logs in $OUT" | tee -a "$OUT/summary.log"
exit $status
