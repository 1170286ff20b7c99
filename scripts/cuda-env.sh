#!/usr/bin/env bash
# Sets up a CUDA 13.0 build toolchain from NVIDIA's PyPI wheels (no system CUDA needed) and
# prints the environment for building the `cuda` feature:
#
#   eval "$(scripts/cuda-env.sh)"
#   cargo build --release -p ssinfogan-cli --bin ssinfogan --features cuda --target-dir target/cuda
#
# Everything goes into target/cuda-env (git-ignored); nothing is installed system-wide.
# Progress goes to stderr, only `export` lines go to stdout.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/target/cuda-env"

# CUDA 13.0 on purpose, all pinned together:
# - cudarc 0.19.10 reads the version from `nvcc --version` and knows 13.0..13.4 only (13.5 panics);
# - candle's kernels ship as PTX that the driver JIT-compiles: PTX from nvcc 13.0 (ISA 9.0) loads on
#   any CUDA 13 driver, PTX from a newer nvcc needs a driver at least that new;
# - nvidia-nvvm (cicc) is an unpinned dependency of nvidia-cuda-nvcc and must match it.
pins=(
  nvidia-cuda-nvcc==13.0.88     # nvcc, ptxas, fatbinary
  nvidia-nvvm==13.0.88          # cicc + libdevice, used by nvcc
  nvidia-cuda-crt==13.0.88      # include/crt/*.h, needed by nvcc
  nvidia-cuda-cccl==13.0.85     # cub/thrust/libcu++ (candle's reduce.cu, moe kernels)
  nvidia-cuda-runtime==13.0.96  # cuda_runtime.h, cuda.h, cuda_fp16/bf16.h, libcudart.so.13
  nvidia-cublas==13.0.2.14      # libcublas.so.13, libcublasLt.so.13
  nvidia-curand==10.4.0.35      # libcurand.so.10
  nvidia-cuda-nvrtc==13.0.88    # libnvrtc.so.13
)

if [[ ! -x "$venv/bin/pip" ]]; then
  python3 -m venv "$venv" >&2
fi
if [[ "$(cat "$venv/.pins" 2>/dev/null)" != "${pins[*]}" ]]; then
  echo "cuda-env: installing ${pins[*]}" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
  echo "${pins[*]}" > "$venv/.pins"
fi

cuda="$("$venv/bin/python" -c 'import os, nvidia; print(os.path.join(nvidia.__path__[0], "cu13"))')"

# The wheels ship only versioned sonames (libcublas.so.13 ...), but the linker's -lcublas wants
# libcublas.so. Those dev symlinks go into a separate link-only folder.
link="$venv/link"
mkdir -p "$link"
for so in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13; do
  ln -sfn "$cuda/lib/$so" "$link/${so%.so.*}.so"
done

# libcuda (the driver) is on no PyPI wheel; the real one comes with the GPU machine's driver.
# Like the CUDA toolkit's own lib64/stubs/libcuda.so, we link against a stub: it exports every
# driver function that this cuda.h declares (incl. the _v2/_v3 names its #defines map to), has
# soname libcuda.so.1 so the binary records the real driver's name, and is deliberately not named
# libcuda.so.1 so it can never be loaded at run time.
if [[ ! -e "$link/libcuda.so" || "$cuda/include/cuda.h" -nt "$link/libcuda.so" ]]; then
  {
    grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' "$cuda/include/cuda.h" | tr -d ' \t('
    grep -oE '^[[:space:]]*#[[:space:]]*define[[:space:]]+cu[A-Z][A-Za-z0-9_]*[[:space:]]+cu[A-Z][A-Za-z0-9_]*' \
      "$cuda/include/cuda.h" | awk '{print $NF}'
  } | sort -u | sed 's/.*/void &(void) {}/' > "$link/libcuda-stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" "$link/libcuda-stub.c"
fi

# PATH: nvcc, for candle-kernels (cudaforge) and cudarc's version check.
# CUDA_ROOT: cudarc adds $CUDA_ROOT/lib to the link search. LIBRARY_PATH: the link folder above.
# LD_LIBRARY_PATH: lets the binary find the wheels' libraries on this machine (not the driver).
# CUDA_COMPUTE_CAP: there is no nvidia-smi here to ask; 90 = H100/H200 (kernels get sm_90a).
cat <<EOF
export PATH="$cuda/bin:\$PATH"
export CUDA_ROOT="$cuda"
export LIBRARY_PATH="$link\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$cuda/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
EOF
