#!/usr/bin/env bash
# Run a command under other CPU kernels than this machine's best: a result that depends on how one
# kernel rounds then shows up here, not on a user's machine (`make test` runs the tests marked
# numeric_paths this way). PyTorch (ATen), MKL, oneDNN and OpenBLAS pick their kernels by the CPU's
# features when they load; each can be told to take an older set.
set -euo pipefail
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
if grep -qw avx512f <<<"$flags"; then
  kernels=(ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
    OPENBLAS_CORETYPE=Haswell)
elif grep -qw avx2 <<<"$flags"; then
  kernels=(ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41
    OPENBLAS_CORETYPE=Nehalem)
else  # not x86 with AVX2: another split of the work still rounds differently
  kernels=(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1)
fi
echo "other-kernels: ${kernels[*]}" >&2
exec env "${kernels[@]}" "$@"
