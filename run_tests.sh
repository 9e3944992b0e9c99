#!/usr/bin/env bash
# The one test command: ./run_tests.sh [TEST...]
# Runs the suite with /usr/bin/python3, then the core tests again with a
# Python 3.12+ and a 3.9 when installed (pyenv's, here), then (with no TEST
# given) the kernel-facing tests inside a throw-away QEMU VM that boots the
# installed Debian kernel with only cgroup v2 (tests/vm.py); prints one count
# line per block, `N passed, N failed, N skipped` last (all blocks), and exits
# non-zero when anything failed.  CONTAIN_VM=0 leaves the VM block out;
# CONTAIN_VM_TESTS chooses its modules.
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
  if [ $# -eq 0 ] && [ "${CONTAIN_VM:-1}" != 0 ]; then   # the VM block's needs
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
    ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
  fi
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

total_p=0 total_f=0 total_s=0 rc=0 blocks=()
counts=$(mktemp)
trap 'rm -f "$counts"' EXIT
add_block() {  # add_block LABEL: the counts file's numbers, one line in the summary
  local p f s
  read -r p f s <"$counts" || { p=0; f=1; s=0; }
  : >"$counts"
  total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
  blocks+=("$1: $p passed, $f failed, $s skipped")
}
for i in "${!pythons[@]}"; do
  py=${pythons[$i]}
  args=("$@")
  # the second interpreter runs the fast unit tests and the core container tests
  if [ "$i" -gt 0 ] && [ $# -eq 0 ]; then args=(${CONTAIN_SECOND_PYTHON_TESTS:-test_unit_core test_run}); fi
  version=$("$py" --version 2>&1)
  echo "=== ${version} (${py}) ==="
  "$py" -I tests/run.py --counts "$counts" "${args[@]}" || rc=1
  add_block "${version}, host kernel $(uname -r)"
done

# The VM block: the tests that meet the kernel and cgroups, again on a second
# kernel with pure cgroup v2 (TCG emulation is slow: a chosen subset).
if [ $# -eq 0 ] && [ "${CONTAIN_VM:-1}" != 0 ] && [ "$(id -u)" = 0 ]; then
  echo "=== VM: cgroup v2 only ==="
  # about 5 minutes under TCG; left out: lifecycle's concurrency, restart and
  # logs classes (2 minutes more), the network, image and userns modules
  vm_tests="test_cgroups_kernel test_cgroups_cli test_run test_boundary test_security
    test_lifecycle.CreateStartTest test_lifecycle.DetachedTest
    test_lifecycle.StopKillRmWaitTest test_lifecycle.ExecTest"
  /usr/bin/python3 -I tests/vm.py --counts "$counts" ${CONTAIN_VM_TESTS:-$vm_tests} || rc=1
  add_block "VM: $(/usr/bin/python3 -I tests/vm.py --describe)"
fi

for line in "${blocks[@]}"; do echo "  $line"; done
echo "${total_p} passed, ${total_f} failed, ${total_s} skipped"
[ "$rc" = 0 ] && [ "$total_f" = 0 ]
