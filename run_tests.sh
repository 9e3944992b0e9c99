#!/usr/bin/env bash
# The one test command: ./run_tests.sh [TEST...]
# Runs the suite with /usr/bin/python3, then the core tests again with a
# Python 3.12+ and a 3.9 when installed (pyenv's, here); prints
# `N passed, N failed, N skipped` last and exits non-zero when anything failed.
set -u
cd "$(dirname "$0")"

# What the integration tests need, installed on a Debian-family host as root.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  command -v busybox >/dev/null || need+=(busybox-static)
  command -v iptables >/dev/null || need+=(iptables)
  command -v skopeo >/dev/null || need+=(skopeo)
  command -v umoci >/dev/null || need+=(umoci)
  # real engines driving the runtime (tests/test_engines.py); runc is the reference runtime
  command -v podman >/dev/null || need+=(podman)
  command -v containerd >/dev/null || need+=(containerd)
  { command -v runc || test -x /usr/sbin/runc; } >/dev/null || need+=(runc)
  command -v docker-registry >/dev/null || need+=(docker-registry)
  command -v htpasswd >/dev/null || need+=(apache2-utils)
  command -v openssl >/dev/null || need+=(openssl)
  command -v zstd >/dev/null || need+=(zstd)
  if [ ${#need[@]} -gt 0 ]; then
    echo "run_tests.sh: installing ${need[*]}"
    apt-get update -qq >/dev/null && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
      || echo "run_tests.sh: could not install ${need[*]} (tests needing them will say so)"
  fi
fi

pythons=("${PYTHON:-/usr/bin/python3}")
if [ -z "${CONTAIN_ONE_PYTHON:-}" ]; then
  # a 3.12+ (os.unshare/os.setns) and the oldest supported, 3.9 (ctypes for both)
  for pattern in "3.1[2-9]*" "3.9*"; do
    for p in /root/.pyenv/versions/$pattern/bin/python3; do
      [ -x "$p" ] && { pythons+=("$p"); break; }
    done
  done
fi

total_p=0 total_f=0 total_s=0 rc=0
counts=$(mktemp)
for i in "${!pythons[@]}"; do
  py=${pythons[$i]}
  args=("$@")
  # the second interpreter runs the fast unit tests and the core container tests
  if [ "$i" -gt 0 ] && [ $# -eq 0 ]; then args=(${CONTAIN_SECOND_PYTHON_TESTS:-test_unit_core test_run}); fi
  echo "=== $("$py" --version 2>&1) (${py}) ==="
  "$py" -I tests/run.py --counts "$counts" "${args[@]}" || rc=1
  read -r p f s <"$counts" || { p=0; f=1; s=0; }
  total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
done
rm -f "$counts"
echo "${total_p} passed, ${total_f} failed, ${total_s} skipped"
[ "$rc" = 0 ] && [ "$total_f" = 0 ]
