#!/bin/sh
# The init of the test VM (tests/vm.py builds the initramfs and boots it).
#
#   /init REPO MODULE...            stage 1, busybox in the initramfs
#   vm-init.sh --stage2 REPO MODULE...   stage 2, after switch_root
#
# Stage 1 loads the modules, mounts the host's / (9p, read-only) under an
# overlay whose upper layer is on the ext4 scratch disk, binds scratch
# directories over /tmp, /var/tmp and /var/lib/contain, and switches root.
# Stage 2 mounts /run, /dev/pts and cgroup2 the way systemd does, and runs
# tests/run.py MODULE... from a session scope, writing its output to the
# virtio port contain.out and "passed failed skipped rc" to contain.status.
# Any failure powers the VM off; tests/vm.py then reports it.
set -u

port() {  # the /dev node of the virtio-serial port named $1
    for d in /sys/class/virtio-ports/*; do
        [ "$(cat "$d/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${d##*/}"; return 0; }
    done
    return 1
}

poweroff_now() {  # if sysrq cannot, init's exit panics and panic=-1 ends QEMU
    sync
    echo o >/proc/sysrq-trigger
    sleep 10
    exit 1
}

fail() {
    echo "vm-init: $*" >/dev/console
    out=$(port contain.out) && echo "vm-init: $*" >"$out"
    poweroff_now
}

stage1() {
    export PATH=/bin
    /bin/busybox --install -s /bin
    mount -t proc proc /proc
    mount -t sysfs sys /sys
    mount -t devtmpfs dev /dev
    for m in /modules.d/*.ko; do
        insmod "$m" || fail "cannot load $m"
    done
    i=0
    while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    mount -t 9p -o trans=virtio,version=9p2000.L,cache=loose,msize=512000,ro \
        hostroot /lower || fail "cannot mount the host's root (9p)"
    mount -t ext4 /dev/vda /scratch || fail "cannot mount the scratch disk"
    mkdir -p /scratch/upper /scratch/work /scratch/tmp /scratch/var-tmp \
        /scratch/var-lib-contain
    chmod 1777 /scratch/tmp /scratch/var-tmp
    mount -t overlay -o lowerdir=/lower,upperdir=/scratch/upper,workdir=/scratch/work \
        root /newroot || fail "cannot mount the overlay root"
    mkdir -p /newroot/var/lib/contain
    mount --bind /scratch/tmp /newroot/tmp
    mount --bind /scratch/var-tmp /newroot/var/tmp
    mount --bind /scratch/var-lib-contain /newroot/var/lib/contain
    for d in dev proc sys; do mount --move "/$d" "/newroot/$d"; done
    exec switch_root /newroot /bin/sh "$1/tests/vm-init.sh" --stage2 "$@"
}

stage2() {
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    export HOME=/root LANG=C.UTF-8
    mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
    mkdir -p /dev/pts /dev/shm
    mount -t devpts -o mode=620,ptmxmode=666,gid=5 devpts /dev/pts
    mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
    cg=/sys/fs/cgroup
    mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $cg \
        || fail "cannot mount cgroup2"
    echo "+cpuset +cpu +io +memory +pids" >$cg/cgroup.subtree_control \
        || fail "cannot enable the cgroup controllers"
    mkdir -p $cg/init.scope $cg/user.slice/session-1.scope
    echo $$ >$cg/init.scope/cgroup.procs
    hostname contain-vm
    ip link set lo up
    out=$(port contain.out) || fail "no virtio port contain.out"
    status=$(port contain.status) || fail "no virtio port contain.status"
    repo=$1
    shift
    cd "$repo" || fail "no $repo"
    {
        sh -c 'echo $$ >'$cg'/user.slice/session-1.scope/cgroup.procs || exit 1
               echo "=== $(uname -sr), cgroup $(cat /proc/self/cgroup)," \
                    "controllers: $(cat '$cg'/cgroup.subtree_control) ==="
               exec /usr/bin/python3 -I tests/run.py --counts /run/counts "$@"' \
            run "$@"
        echo $? >/run/rc
    } >"$out" 2>&1
    counts=$(cat /run/counts 2>/dev/null) || counts="0 0 0"
    echo "$counts $(cat /run/rc)" >"$status"
    poweroff_now
}

if [ "${1:-}" = "--stage2" ]; then
    shift
    stage2 "$@"
else
    stage1 "$@"
fi
