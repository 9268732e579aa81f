# Source this to get the build environment: `. scripts/env.sh` (installs libtorch on first use).
_lt_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$("$_lt_root/scripts/setup-libtorch" --print-env)"
unset _lt_root
