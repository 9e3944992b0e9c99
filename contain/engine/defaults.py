"""Docker's defaults, the engine's side of a container's security: what
`contain run` asks of the runtime core unless told otherwise, and the
--cap-add/--cap-drop/--security-opt flags that change it.  The core knows
none of this: it executes whatever config.json says (generate.py writes it).

  - the 14 capabilities Docker keeps (moby/oci/caps/defaults.go);
  - the paths of /proc and /sys Docker masks or makes read-only
    (moby/oci/defaults.go);
  - the device cgroup's allow-list (runc's AllowedDevices);
  - Docker's default seccomp profile (moby/profiles/seccomp/default.json),
    as data in Docker's format; generate.py resolves it for the container's
    capabilities into config.json's plain OCI form.
"""

from ..core.security import CAP_NAMES, all_caps, cap_number
from ..errors import UsageError

EPERM = 1       # <asm-generic/errno-base.h>
ENOSYS = 38     # <asm-generic/errno.h>

DEFAULT_CAPS = frozenset(CAP_NAMES[n] for n in (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
    "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
    "AUDIT_WRITE"))


# Docker's defaults (moby/oci/defaults.go): masked and read-only paths.
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
)
READONLY_PATHS = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)


# Docker's default device cgroup for an unprivileged container (runc's
# AllowedDevices): mknod of anything, use of the harmless character devices.
DEFAULT_DEVICE_RULES = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm",    # /dev/null
    "c 1:5 rwm",    # /dev/zero
    "c 1:7 rwm",    # /dev/full
    "c 1:8 rwm",    # /dev/random
    "c 1:9 rwm",    # /dev/urandom
    "c 5:0 rwm",    # /dev/tty
    "c 5:1 rwm",    # /dev/console
    "c 5:2 rwm",    # /dev/ptmx
    "c 136:* rwm",  # /dev/pts/*
    "c 10:200 rwm",  # /dev/net/tun
)


def resolve_caps(cap_add=(), cap_drop=(), privileged=False):
    """The container's capability set from Docker's flags (moby TweakCapabilities).

    --privileged: all.  --cap-add ALL: all but the dropped ones.
    --cap-drop ALL: only the added ones.  Otherwise the defaults minus the
    dropped plus the added (a cap both added and dropped is added).
    """
    add = {str(n).upper() for n in cap_add}
    drop = {str(n).upper() for n in cap_drop}
    add_caps = {cap_number(n) for n in add if n != "ALL"}
    drop_caps = {cap_number(n) for n in drop if n != "ALL"}
    if privileged:
        return all_caps()
    if "ALL" in add:
        return all_caps() - drop_caps
    if "ALL" in drop:
        return frozenset(add_caps)
    return frozenset((DEFAULT_CAPS - drop_caps) | add_caps)


# ------------------------------------------------------------------ options
def parse_security_opts(opts):
    """--security-opt values -> {'no_new_privileges': bool, 'seccomp': None |
    'unconfined' | PATH, 'systempaths': None | 'unconfined'}.

    Docker accepts KEY=VALUE and the older KEY:VALUE.  There is no AppArmor
    or SELinux here: only apparmor=unconfined and label=disable are taken.
    """
    result = {"no_new_privileges": False, "seccomp": None, "systempaths": None}
    for opt in opts:
        if opt == "no-new-privileges":
            key, value = opt, "true"
        else:
            sep = "=" if "=" in opt else ":"
            key, _, value = opt.partition(sep)
        if key == "no-new-privileges":
            if value not in ("true", "false"):
                raise UsageError(f"invalid --security-opt {opt!r}: "
                                 "no-new-privileges takes true or false")
            result["no_new_privileges"] = value == "true"
        elif key == "seccomp" and value:
            result["seccomp"] = None if value == "builtin" else value
        elif key == "systempaths" and value == "unconfined":
            result["systempaths"] = value
        elif (key, value) in (("apparmor", "unconfined"), ("label", "disable")):
            pass
        elif key in ("apparmor", "label"):
            raise UsageError(f"--security-opt {opt}: contain has no AppArmor or SELinux "
                             "support; only apparmor=unconfined and label=disable")
        else:
            raise UsageError(f"invalid --security-opt {opt!r}")
    return result


def embed_seccomp_profiles(opts):
    """--security-opt values with seccomp=PATH replaced by seccomp=<the
    file's JSON>, as Docker's CLI does: call it when the container is
    created, so a restart later does not depend on the file or the cwd."""
    out = []
    for opt in opts:
        key, sep, value = opt.partition("=" if "=" in opt else ":")
        if key == "seccomp" and value and value not in ("unconfined", "builtin") \
                and not value.lstrip().startswith("{"):
            try:
                with open(value) as f:
                    value = f.read()
            except OSError as e:
                raise UsageError(f"seccomp profile {value}: {e.strerror}") from None
            from ..core import seccomp
            seccomp.profile_program(value, DEFAULT_CAPS)     # fail now, not at start
            opt = "seccomp=" + value
        out.append(opt)
    return out


# ------------------------------------------------------------------- profile
def _names(text):
    return text.split()


# Docker's default profile (moby profiles/seccomp/default.json), as data.
# Rules are read in order; see compile_profile() for how they combine.
# Calls it never names (add_key, keyctl, request_key, kexec_load, swapon,
# swapoff, userfaultfd, ...) fall to the default action: EPERM.
_SYS_ADMIN_CALLS = _names("""
    bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
    mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd
    setdomainname sethostname setns syslog umount umount2 unshare""")

# The namespace flags of clone(2) (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|
# NEWUSER|NEWPID|NEWNET): without CAP_SYS_ADMIN clone is allowed only with
# none of them set.
CLONE_NAMESPACE_FLAGS = 0x7E020000

DEFAULT_PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": EPERM,
    "syscalls": [
        {"names": _names("""
            accept accept4 access adjtimex alarm bind brk capget capset chdir chmod
            chown chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64
            clock_gettime clock_gettime64 clock_nanosleep clock_nanosleep_time64 close
            close_range connect copy_file_range creat dup dup2 dup3 epoll_create
            epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
            epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat
            faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod
            fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
            flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs
            fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv
            futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid
            geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername
            getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
            getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname
            getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
            inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel
            ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get
            ioprio_set io_setup io_submit io_uring_enter io_uring_register
            io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset
            landlock_restrict_self lchown lchown32 lgetxattr link linkat listen
            listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
            madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod
            mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify
            mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
            mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync
            munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect
            open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
            pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
            prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
            pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
            recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat
            renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
            rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
            rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
            sched_getparam sched_get_priority_max sched_get_priority_min
            sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
            sched_setaffinity sched_setattr sched_setparam sched_setscheduler
            sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64
            send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
            setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
            setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32
            setreuid setreuid32 setrlimit set_robust_list setsid setsockopt
            set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt
            shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
            socketcall socketpair splice stat stat64 statfs statfs64 statx symlink
            symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
            timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
            timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64
            timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
            umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork
            vmsplice wait4 waitid waitpid write writev"""),
         "action": "SCMP_ACT_ALLOW"},
        {"names": ["process_vm_readv", "process_vm_writev", "ptrace"],
         "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        # AF_VSOCK (40) sockets reach the hypervisor: refused.
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
        # personality(2): only the harmless personas (Linux, Linux32,
        # UNAME26 variants) and the query 0xffffffff.
    ] + [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]}
        for persona in (0, 8, 131072, 131080, 4294967295)
    ] + [
        {"names": ["sync_file_range2", "swapcontext"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["ppc64le"]}},
        {"names": _names("""arm_fadvise64_64 arm_sync_file_range sync_file_range2
                            breakpoint cacheflush set_tls"""),
         "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["amd64", "x32", "x86"]}},
        {"names": ["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"],
         "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390", "s390x"]}},
        {"names": ["riscv_flush_icache"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["riscv64"]}},
        # What each added capability gives back.
        {"names": ["open_by_handle_at"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_DAC_READ_SEARCH"]}},
        {"names": _SYS_ADMIN_CALLS, "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                   "op": "SCMP_CMP_MASKED_EQ"}],
         "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 1, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                   "op": "SCMP_CMP_MASKED_EQ"}],
         "comment": "s390 parameter ordering for clone is different",
         "includes": {"arches": ["s390", "s390x"]},
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        # clone3 passes its flags in memory a filter cannot read: ENOSYS
        # makes libc fall back to clone, whose flags are checked above.
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["reboot"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_BOOT"]}},
        {"names": ["chroot"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_CHROOT"]}},
        {"names": ["delete_module", "init_module", "finit_module"],
         "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_MODULE"]}},
        {"names": ["acct"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_PACCT"]}},
        {"names": _names("""kcmp pidfd_getfd process_madvise process_vm_readv
                            process_vm_writev ptrace"""),
         "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}},
        {"names": ["iopl", "ioperm"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_RAWIO"]}},
        {"names": ["settimeofday", "stime", "clock_settime", "clock_settime64"],
         "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_TIME"]}},
        {"names": ["vhangup"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_TTY_CONFIG"]}},
        {"names": ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
         "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_NICE"]}},
        {"names": ["syslog"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYSLOG"]}},
        {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_BPF"]}},
        {"names": ["perf_event_open"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_PERFMON"]}},
    ],
}
