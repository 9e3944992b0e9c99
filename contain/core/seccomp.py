"""Seccomp: Docker's default profile, Docker profile files, and the classic
BPF program the kernel runs on every system call of the container.

A profile (Docker's JSON format, or DEFAULT_PROFILE below, the same thing as
Python data) says, per system call name, what happens: allow it, fail it
with an errno, kill the process...  Some rules only apply when the container
holds a capability ("includes": {"caps": [...]}) or lacks one ("excludes"),
or on some architectures; some look at the call's arguments.

compile_profile() turns a profile into a list of (code, jt, jf, k) classic
BPF instructions for *this* machine's architecture:

    A = seccomp_data.arch          not the native ABI (e.g. a 32-bit int 0x80
    if A != AUDIT_ARCH: KILL         call on x86_64): kill the process
    A = seccomp_data.nr
    if A & X32 bit: KILL           x86_64 only: the x32 ABI shares the arch
    binary search over nr          ~8 comparisons reach a range of numbers
      -> RET action                  that share one action, or
      -> JA block                    a block testing the arguments in order

Every jump of a conditional instruction is 8 bits wide, so the search tree
falls back to an unconditional JA (32-bit offset) wherever a subtree is
longer than 255 instructions; argument blocks are short and local.

Numbers above the highest call the profile names answer ENOSYS, as runc
does: a call newer than the profile (fchmodat2, say) then looks absent to
libc, which falls back to the older call instead of failing with EPERM.

The program is built in the parent (cached per architecture and capability
set; a few hundred microseconds when not cached) and installed by the child
with install() as its very last step before execve.
"""

import os

from . import linux, security
from ..errors import UsageError

# <linux/seccomp.h> return values
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

# <linux/filter.h> classic BPF opcodes used here
LD_W_ABS = 0x20      # A = *(u32 *)(seccomp_data + k)
JEQ = 0x15           # if A == k
JGT = 0x25           # if A > k
JGE = 0x35           # if A >= k
JA = 0x05            # pc += k
AND = 0x54           # A &= k
RET = 0x06           # return k
BPF_MAXINSNS = 4096

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
OFF_NR = 0
OFF_ARCH = 4
OFF_ARGS = 16

X32_SYSCALL_BIT = 0x40000000
ENOSYS = 38
EPERM = 1

# libseccomp's action names as they appear in Docker profiles
_ACTIONS = {
    "SCMP_ACT_ALLOW": RET_ALLOW,
    "SCMP_ACT_ERRNO": RET_ERRNO,
    "SCMP_ACT_KILL": RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": RET_TRAP,
    "SCMP_ACT_TRACE": RET_TRACE,
    "SCMP_ACT_LOG": RET_LOG,
}
_OPS = ("SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
        "SCMP_CMP_GT", "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ")


# ------------------------------------------------------------ syscall tables
# Generated once (not parsed at run time) from linux-libc-dev 6.1's headers:
# x86_64 from <asm/unistd_64.h>, aarch64 from <asm-generic/unistd.h> as arm64
# configures it (gcc -E -dM with __ARCH_WANT_RENAMEAT, _NEW_STAT,
# _SET_GET_RLIMIT, _SYS_CLONE3, _MEMFD_SECRET).  Calls 451-469 (cachestat ..
# file_setattr, kernels 6.5-6.17) share one number on every architecture
# since 5.1 and were added by hand, with x86_64's uretprobe (335).
_X86_64 = {
    "read": 0, "write": 1, "open": 2, "close": 3, "stat": 4, "fstat": 5, "lstat": 6,
    "poll": 7, "lseek": 8, "mmap": 9, "mprotect": 10, "munmap": 11, "brk": 12,
    "rt_sigaction": 13, "rt_sigprocmask": 14, "rt_sigreturn": 15, "ioctl": 16,
    "pread64": 17, "pwrite64": 18, "readv": 19, "writev": 20, "access": 21, "pipe": 22,
    "select": 23, "sched_yield": 24, "mremap": 25, "msync": 26, "mincore": 27,
    "madvise": 28, "shmget": 29, "shmat": 30, "shmctl": 31, "dup": 32, "dup2": 33,
    "pause": 34, "nanosleep": 35, "getitimer": 36, "alarm": 37, "setitimer": 38,
    "getpid": 39, "sendfile": 40, "socket": 41, "connect": 42, "accept": 43,
    "sendto": 44, "recvfrom": 45, "sendmsg": 46, "recvmsg": 47, "shutdown": 48,
    "bind": 49, "listen": 50, "getsockname": 51, "getpeername": 52, "socketpair": 53,
    "setsockopt": 54, "getsockopt": 55, "clone": 56, "fork": 57, "vfork": 58,
    "execve": 59, "exit": 60, "wait4": 61, "kill": 62, "uname": 63, "semget": 64,
    "semop": 65, "semctl": 66, "shmdt": 67, "msgget": 68, "msgsnd": 69, "msgrcv": 70,
    "msgctl": 71, "fcntl": 72, "flock": 73, "fsync": 74, "fdatasync": 75,
    "truncate": 76, "ftruncate": 77, "getdents": 78, "getcwd": 79, "chdir": 80,
    "fchdir": 81, "rename": 82, "mkdir": 83, "rmdir": 84, "creat": 85, "link": 86,
    "unlink": 87, "symlink": 88, "readlink": 89, "chmod": 90, "fchmod": 91, "chown": 92,
    "fchown": 93, "lchown": 94, "umask": 95, "gettimeofday": 96, "getrlimit": 97,
    "getrusage": 98, "sysinfo": 99, "times": 100, "ptrace": 101, "getuid": 102,
    "syslog": 103, "getgid": 104, "setuid": 105, "setgid": 106, "geteuid": 107,
    "getegid": 108, "setpgid": 109, "getppid": 110, "getpgrp": 111, "setsid": 112,
    "setreuid": 113, "setregid": 114, "getgroups": 115, "setgroups": 116,
    "setresuid": 117, "getresuid": 118, "setresgid": 119, "getresgid": 120,
    "getpgid": 121, "setfsuid": 122, "setfsgid": 123, "getsid": 124, "capget": 125,
    "capset": 126, "rt_sigpending": 127, "rt_sigtimedwait": 128, "rt_sigqueueinfo": 129,
    "rt_sigsuspend": 130, "sigaltstack": 131, "utime": 132, "mknod": 133, "uselib": 134,
    "personality": 135, "ustat": 136, "statfs": 137, "fstatfs": 138, "sysfs": 139,
    "getpriority": 140, "setpriority": 141, "sched_setparam": 142,
    "sched_getparam": 143, "sched_setscheduler": 144, "sched_getscheduler": 145,
    "sched_get_priority_max": 146, "sched_get_priority_min": 147,
    "sched_rr_get_interval": 148, "mlock": 149, "munlock": 150, "mlockall": 151,
    "munlockall": 152, "vhangup": 153, "modify_ldt": 154, "pivot_root": 155,
    "_sysctl": 156, "prctl": 157, "arch_prctl": 158, "adjtimex": 159, "setrlimit": 160,
    "chroot": 161, "sync": 162, "acct": 163, "settimeofday": 164, "mount": 165,
    "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170,
    "setdomainname": 171, "iopl": 172, "ioperm": 173, "create_module": 174,
    "init_module": 175, "delete_module": 176, "get_kernel_syms": 177,
    "query_module": 178, "quotactl": 179, "nfsservctl": 180, "getpmsg": 181,
    "putpmsg": 182, "afs_syscall": 183, "tuxcall": 184, "security": 185, "gettid": 186,
    "readahead": 187, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190,
    "getxattr": 191, "lgetxattr": 192, "fgetxattr": 193, "listxattr": 194,
    "llistxattr": 195, "flistxattr": 196, "removexattr": 197, "lremovexattr": 198,
    "fremovexattr": 199, "tkill": 200, "time": 201, "futex": 202,
    "sched_setaffinity": 203, "sched_getaffinity": 204, "set_thread_area": 205,
    "io_setup": 206, "io_destroy": 207, "io_getevents": 208, "io_submit": 209,
    "io_cancel": 210, "get_thread_area": 211, "lookup_dcookie": 212,
    "epoll_create": 213, "epoll_ctl_old": 214, "epoll_wait_old": 215,
    "remap_file_pages": 216, "getdents64": 217, "set_tid_address": 218,
    "restart_syscall": 219, "semtimedop": 220, "fadvise64": 221, "timer_create": 222,
    "timer_settime": 223, "timer_gettime": 224, "timer_getoverrun": 225,
    "timer_delete": 226, "clock_settime": 227, "clock_gettime": 228,
    "clock_getres": 229, "clock_nanosleep": 230, "exit_group": 231, "epoll_wait": 232,
    "epoll_ctl": 233, "tgkill": 234, "utimes": 235, "vserver": 236, "mbind": 237,
    "set_mempolicy": 238, "get_mempolicy": 239, "mq_open": 240, "mq_unlink": 241,
    "mq_timedsend": 242, "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245,
    "kexec_load": 246, "waitid": 247, "add_key": 248, "request_key": 249, "keyctl": 250,
    "ioprio_set": 251, "ioprio_get": 252, "inotify_init": 253, "inotify_add_watch": 254,
    "inotify_rm_watch": 255, "migrate_pages": 256, "openat": 257, "mkdirat": 258,
    "mknodat": 259, "fchownat": 260, "futimesat": 261, "newfstatat": 262,
    "unlinkat": 263, "renameat": 264, "linkat": 265, "symlinkat": 266,
    "readlinkat": 267, "fchmodat": 268, "faccessat": 269, "pselect6": 270, "ppoll": 271,
    "unshare": 272, "set_robust_list": 273, "get_robust_list": 274, "splice": 275,
    "tee": 276, "sync_file_range": 277, "vmsplice": 278, "move_pages": 279,
    "utimensat": 280, "epoll_pwait": 281, "signalfd": 282, "timerfd_create": 283,
    "eventfd": 284, "fallocate": 285, "timerfd_settime": 286, "timerfd_gettime": 287,
    "accept4": 288, "signalfd4": 289, "eventfd2": 290, "epoll_create1": 291,
    "dup3": 292, "pipe2": 293, "inotify_init1": 294, "preadv": 295, "pwritev": 296,
    "rt_tgsigqueueinfo": 297, "perf_event_open": 298, "recvmmsg": 299,
    "fanotify_init": 300, "fanotify_mark": 301, "prlimit64": 302,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "clock_adjtime": 305,
    "syncfs": 306, "sendmmsg": 307, "setns": 308, "getcpu": 309,
    "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313,
    "sched_setattr": 314, "sched_getattr": 315, "renameat2": 316, "seccomp": 317,
    "getrandom": 318, "memfd_create": 319, "kexec_file_load": 320, "bpf": 321,
    "execveat": 322, "userfaultfd": 323, "membarrier": 324, "mlock2": 325,
    "copy_file_range": 326, "preadv2": 327, "pwritev2": 328, "pkey_mprotect": 329,
    "pkey_alloc": 330, "pkey_free": 331, "statx": 332, "io_pgetevents": 333,
    "rseq": 334, "uretprobe": 335, "pidfd_send_signal": 424, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "pidfd_open": 434, "clone3": 435, "close_range": 436, "openat2": 437,
    "pidfd_getfd": 438, "faccessat2": 439, "process_madvise": 440, "epoll_pwait2": 441,
    "mount_setattr": 442, "quotactl_fd": 443, "landlock_create_ruleset": 444,
    "landlock_add_rule": 445, "landlock_restrict_self": 446, "memfd_secret": 447,
    "process_mrelease": 448, "futex_waitv": 449, "set_mempolicy_home_node": 450,
    "cachestat": 451, "fchmodat2": 452, "map_shadow_stack": 453, "futex_wake": 454,
    "futex_wait": 455, "futex_requeue": 456, "statmount": 457, "listmount": 458,
    "lsm_get_self_attr": 459, "lsm_set_self_attr": 460, "lsm_list_modules": 461,
    "mseal": 462, "setxattrat": 463, "getxattrat": 464, "listxattrat": 465,
    "removexattrat": 466, "open_tree_attr": 467, "file_getattr": 468,
    "file_setattr": 469,
}

_AARCH64 = {
    "io_setup": 0, "io_destroy": 1, "io_submit": 2, "io_cancel": 3, "io_getevents": 4,
    "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "getxattr": 8, "lgetxattr": 9,
    "fgetxattr": 10, "listxattr": 11, "llistxattr": 12, "flistxattr": 13,
    "removexattr": 14, "lremovexattr": 15, "fremovexattr": 16, "getcwd": 17,
    "lookup_dcookie": 18, "eventfd2": 19, "epoll_create1": 20, "epoll_ctl": 21,
    "epoll_pwait": 22, "dup": 23, "dup3": 24, "fcntl": 25, "inotify_init1": 26,
    "inotify_add_watch": 27, "inotify_rm_watch": 28, "ioctl": 29, "ioprio_set": 30,
    "ioprio_get": 31, "flock": 32, "mknodat": 33, "mkdirat": 34, "unlinkat": 35,
    "symlinkat": 36, "linkat": 37, "renameat": 38, "umount2": 39, "mount": 40,
    "pivot_root": 41, "nfsservctl": 42, "statfs": 43, "fstatfs": 44, "truncate": 45,
    "ftruncate": 46, "fallocate": 47, "faccessat": 48, "chdir": 49, "fchdir": 50,
    "chroot": 51, "fchmod": 52, "fchmodat": 53, "fchownat": 54, "fchown": 55,
    "openat": 56, "close": 57, "vhangup": 58, "pipe2": 59, "quotactl": 60,
    "getdents64": 61, "lseek": 62, "read": 63, "write": 64, "readv": 65, "writev": 66,
    "pread64": 67, "pwrite64": 68, "preadv": 69, "pwritev": 70, "sendfile": 71,
    "pselect6": 72, "ppoll": 73, "signalfd4": 74, "vmsplice": 75, "splice": 76,
    "tee": 77, "readlinkat": 78, "newfstatat": 79, "fstat": 80, "sync": 81, "fsync": 82,
    "fdatasync": 83, "sync_file_range": 84, "timerfd_create": 85, "timerfd_settime": 86,
    "timerfd_gettime": 87, "utimensat": 88, "acct": 89, "capget": 90, "capset": 91,
    "personality": 92, "exit": 93, "exit_group": 94, "waitid": 95,
    "set_tid_address": 96, "unshare": 97, "futex": 98, "set_robust_list": 99,
    "get_robust_list": 100, "nanosleep": 101, "getitimer": 102, "setitimer": 103,
    "kexec_load": 104, "init_module": 105, "delete_module": 106, "timer_create": 107,
    "timer_gettime": 108, "timer_getoverrun": 109, "timer_settime": 110,
    "timer_delete": 111, "clock_settime": 112, "clock_gettime": 113,
    "clock_getres": 114, "clock_nanosleep": 115, "syslog": 116, "ptrace": 117,
    "sched_setparam": 118, "sched_setscheduler": 119, "sched_getscheduler": 120,
    "sched_getparam": 121, "sched_setaffinity": 122, "sched_getaffinity": 123,
    "sched_yield": 124, "sched_get_priority_max": 125, "sched_get_priority_min": 126,
    "sched_rr_get_interval": 127, "restart_syscall": 128, "kill": 129, "tkill": 130,
    "tgkill": 131, "sigaltstack": 132, "rt_sigsuspend": 133, "rt_sigaction": 134,
    "rt_sigprocmask": 135, "rt_sigpending": 136, "rt_sigtimedwait": 137,
    "rt_sigqueueinfo": 138, "rt_sigreturn": 139, "setpriority": 140, "getpriority": 141,
    "reboot": 142, "setregid": 143, "setgid": 144, "setreuid": 145, "setuid": 146,
    "setresuid": 147, "getresuid": 148, "setresgid": 149, "getresgid": 150,
    "setfsuid": 151, "setfsgid": 152, "times": 153, "setpgid": 154, "getpgid": 155,
    "getsid": 156, "setsid": 157, "getgroups": 158, "setgroups": 159, "uname": 160,
    "sethostname": 161, "setdomainname": 162, "getrlimit": 163, "setrlimit": 164,
    "getrusage": 165, "umask": 166, "prctl": 167, "getcpu": 168, "gettimeofday": 169,
    "settimeofday": 170, "adjtimex": 171, "getpid": 172, "getppid": 173, "getuid": 174,
    "geteuid": 175, "getgid": 176, "getegid": 177, "gettid": 178, "sysinfo": 179,
    "mq_open": 180, "mq_unlink": 181, "mq_timedsend": 182, "mq_timedreceive": 183,
    "mq_notify": 184, "mq_getsetattr": 185, "msgget": 186, "msgctl": 187, "msgrcv": 188,
    "msgsnd": 189, "semget": 190, "semctl": 191, "semtimedop": 192, "semop": 193,
    "shmget": 194, "shmctl": 195, "shmat": 196, "shmdt": 197, "socket": 198,
    "socketpair": 199, "bind": 200, "listen": 201, "accept": 202, "connect": 203,
    "getsockname": 204, "getpeername": 205, "sendto": 206, "recvfrom": 207,
    "setsockopt": 208, "getsockopt": 209, "shutdown": 210, "sendmsg": 211,
    "recvmsg": 212, "readahead": 213, "brk": 214, "munmap": 215, "mremap": 216,
    "add_key": 217, "request_key": 218, "keyctl": 219, "clone": 220, "execve": 221,
    "mmap": 222, "fadvise64": 223, "swapon": 224, "swapoff": 225, "mprotect": 226,
    "msync": 227, "mlock": 228, "munlock": 229, "mlockall": 230, "munlockall": 231,
    "mincore": 232, "madvise": 233, "remap_file_pages": 234, "mbind": 235,
    "get_mempolicy": 236, "set_mempolicy": 237, "migrate_pages": 238, "move_pages": 239,
    "rt_tgsigqueueinfo": 240, "perf_event_open": 241, "accept4": 242, "recvmmsg": 243,
    "wait4": 260, "prlimit64": 261, "fanotify_init": 262, "fanotify_mark": 263,
    "name_to_handle_at": 264, "open_by_handle_at": 265, "clock_adjtime": 266,
    "syncfs": 267, "setns": 268, "sendmmsg": 269, "process_vm_readv": 270,
    "process_vm_writev": 271, "kcmp": 272, "finit_module": 273, "sched_setattr": 274,
    "sched_getattr": 275, "renameat2": 276, "seccomp": 277, "getrandom": 278,
    "memfd_create": 279, "bpf": 280, "execveat": 281, "userfaultfd": 282,
    "membarrier": 283, "mlock2": 284, "copy_file_range": 285, "preadv2": 286,
    "pwritev2": 287, "pkey_mprotect": 288, "pkey_alloc": 289, "pkey_free": 290,
    "statx": 291, "io_pgetevents": 292, "rseq": 293, "kexec_file_load": 294,
    "pidfd_send_signal": 424, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_open": 434, "clone3": 435,
    "close_range": 436, "openat2": 437, "pidfd_getfd": 438, "faccessat2": 439,
    "process_madvise": 440, "epoll_pwait2": 441, "mount_setattr": 442,
    "quotactl_fd": 443, "landlock_create_ruleset": 444, "landlock_add_rule": 445,
    "landlock_restrict_self": 446, "memfd_secret": 447, "process_mrelease": 448,
    "futex_waitv": 449, "set_mempolicy_home_node": 450, "cachestat": 451,
    "fchmodat2": 452, "map_shadow_stack": 453, "futex_wake": 454, "futex_wait": 455,
    "futex_requeue": 456, "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459,
    "lsm_set_self_attr": 460, "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463,
    "getxattrat": 464, "listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467,
    "file_getattr": 468, "file_setattr": 469,
}
# ------------------------------------------------------------ architectures
# name -> (AUDIT_ARCH_* from <linux/audit.h>, syscall table, the names Docker
# profiles use for it in includes/excludes "arches", has the x32 ABI).  Only
# little-endian 64-bit ABIs: argument halves are read at fixed offsets.
ARCHES = {
    "x86_64": (0xC000003E, _X86_64, ("amd64", "x86_64"), True),
    "aarch64": (0xC00000B7, _AARCH64, ("arm64", "aarch64"), False),
}


def native_arch():
    """This machine's architecture as ARCHES names it."""
    machine = os.uname().machine
    if machine not in ARCHES:
        raise UsageError(f"seccomp: no system call table for {machine}; "
                         "use --security-opt seccomp=unconfined")
    return machine


def syscall_number(name, arch=None):
    """The number of a system call on arch (default: this machine), or None."""
    return ARCHES[arch or native_arch()][1].get(name)


def _kernel_version():
    parts = []
    for piece in os.uname().release.split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _version(text):
    return tuple(int(p) for p in str(text).split(".") if p.isdigit())


# ------------------------------------------------------------------ programs
def load_profile(path, caps, arch=None):
    """The BPF program of a Docker seccomp profile file (JSON)."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise UsageError(f"seccomp profile {path}: {e.strerror}") from None
    return profile_program(text, caps, arch, f"seccomp profile {path}")


def profile_program(text, caps, arch=None, source="the seccomp profile"):
    """The BPF program of a profile given as JSON text (Docker's API, too,
    carries the profile's content in --security-opt seccomp=...)."""
    from .. import fastjson
    try:
        profile = fastjson.loads(text)
    except ValueError as e:
        raise UsageError(f"{source}: not valid JSON ({e})") from None
    if not isinstance(profile, dict):
        raise UsageError(f"{source}: expected a JSON object")
    return compile_profile(profile, caps, arch, source)


def resolve_profile(profile, caps, arch=None):
    """A profile in Docker's format (rules with includes/excludes by
    capability, architecture, kernel) made plain OCI form for this host and
    capability set: what config.json's linux.seccomp holds."""
    arch = arch or native_arch()
    _, _, arch_names, _ = ARCHES[arch]
    cap_names = {security.cap_name(c) for c in caps}
    kernel = _kernel_version()
    rules = []
    for rule in profile.get("syscalls") or ():
        if not _applies(rule, cap_names, arch_names, kernel):
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        out = {"names": list(names), "action": rule.get("action")}
        for key in ("errnoRet", "args"):
            if rule.get(key) is not None:
                out[key] = rule[key]
        rules.append(out)
    out = {"defaultAction": profile.get("defaultAction"),
           "architectures": ["SCMP_ARCH_" + arch.upper()], "syscalls": rules}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return out


def install(program):
    """Install program on this process: the child's last step before execve.

    The kernel accepts a filter only from a process that has CAP_SYS_ADMIN
    or has set no_new_privs; without the former, the latter is set here.
    """
    if not program:
        return
    effective = linux.capget()[0]
    if not effective >> security.CAP_SYS_ADMIN & 1:
        security.set_no_new_privs()
    linux.seccomp_set_mode_filter(program)


# ----------------------------------------------------------------- compiler
def compile_profile(profile, caps, arch=None, source="the seccomp profile"):
    """Classic BPF for a profile (a dict in Docker's format) and a cap set."""
    audit_arch, table, arch_names, has_x32 = ARCHES[arch or native_arch()]
    default = _action(profile.get("defaultAction"), profile.get("defaultErrnoRet"),
                      source)
    rules, highest = _rules_by_number(profile, caps, table, arch_names, source)
    ranges = _ranges(rules, default, highest)

    program = [
        (LD_W_ABS, 0, 0, OFF_ARCH),
        (JEQ, 1, 0, audit_arch),
        (RET, 0, 0, RET_KILL_PROCESS),
        (LD_W_ABS, 0, 0, OFF_NR),
    ]
    if has_x32:
        # x32 calls carry AUDIT_ARCH_X86_64 and nr | 0x40000000; nr -1 (a
        # tracer cancelling a call) is let through to the table.
        program += [(JGE, 0, 2, X32_SYSCALL_BIT),
                    (JEQ, 1, 0, 0xFFFFFFFF),
                    (RET, 0, 0, RET_KILL_PROCESS)]
    program += _link(_search(ranges, 0, len(ranges)))
    if len(program) > BPF_MAXINSNS:
        raise UsageError(f"{source}: the BPF program is too long "
                         f"({len(program)} > {BPF_MAXINSNS} instructions)")
    return program


def _action(name, errno_ret, source):
    """The SECCOMP_RET_* value of an action name (+ errno for ERRNO/TRACE)."""
    value = _ACTIONS.get(name)
    if value is None:
        hint = " (needs a listener contain does not run)" if name == "SCMP_ACT_NOTIFY" else ""
        raise UsageError(f"{source}: unsupported action {name!r}{hint}")
    if value in (RET_ERRNO, RET_TRACE):
        value |= (EPERM if errno_ret is None else int(errno_ret)) & 0xFFFF
    return value


def _applies(rule, cap_names, arch_names, kernel):
    """Docker's includes/excludes: every included cap held, none excluded..."""
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if any(_cap(c) not in cap_names for c in inc.get("caps") or ()):
        return False
    if inc.get("arches") and not set(inc["arches"]) & set(arch_names):
        return False
    if inc.get("minKernel") and kernel < _version(inc["minKernel"]):
        return False
    if any(_cap(c) in cap_names for c in exc.get("caps") or ()):
        return False
    if exc.get("arches") and set(exc["arches"]) & set(arch_names):
        return False
    if exc.get("minKernel") and kernel >= _version(exc["minKernel"]):
        return False
    return True


def _cap(name):
    name = str(name).upper()
    return name if name.startswith("CAP_") else "CAP_" + name


def _rules_by_number(profile, caps, table, arch_names, source):
    """{nr: [(conditions, action)...]} in profile order, and the highest nr
    the profile names (applicable or not)."""
    cap_names = {security.cap_name(c) for c in caps}
    kernel = _kernel_version()
    by_nr, highest = {}, -1
    for rule in profile.get("syscalls") or ():
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        numbers = [table[n] for n in names if n in table]
        if not numbers:
            continue
        highest = max(highest, max(numbers))
        if not _applies(rule, cap_names, arch_names, kernel):
            continue
        action = _action(rule.get("action"), rule.get("errnoRet"), source)
        conds = tuple(_condition(arg, source) for arg in rule.get("args") or ())
        for nr in numbers:
            by_nr.setdefault(nr, []).append((conds, action))
    return by_nr, highest


def _condition(arg, source):
    try:
        index, op = int(arg["index"]), arg["op"]
        value, value_two = int(arg.get("value", 0)), int(arg.get("valueTwo", 0) or 0)
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{source}: bad argument rule {arg!r}") from None
    if not 0 <= index <= 5 or op not in _OPS:
        raise UsageError(f"{source}: bad argument rule {arg!r}")
    return (index, op, value & (2**64 - 1), value_two & (2**64 - 1))


def _target(rules, default):
    """One call's outcome: an action, or (checks, fallback) when arguments
    decide.  An unconditional rule is the fallback of the conditional ones."""
    if len(rules) == 1 and not rules[0][0]:
        return rules[0][1]          # the common case: one plain rule
    fallback = next((action for conds, action in rules if not conds), default)
    checks = tuple((conds, action) for conds, action in rules
                   if conds and action != fallback)
    return (checks, fallback) if checks else fallback


def _ranges(rules, default, highest):
    """[(first nr, target)] covering 0..2**32-1, neighbours merged."""
    if highest < 0:
        return [(0, default)]
    above = default if default in (RET_ALLOW, RET_LOG) else RET_ERRNO | ENOSYS
    ranges = []
    for nr in range(highest + 1):
        target = _target(rules[nr], default) if nr in rules else default
        if not ranges or ranges[-1][1] != target:
            ranges.append((nr, target))
    if ranges[-1][1] != above:
        ranges.append((highest + 1, above))
    return ranges


def _search(ranges, lo, hi):
    """A binary search over ranges[lo:hi]; blocks are left as ('block', target)."""
    if hi - lo == 1:
        target = ranges[lo][1]
        return [(RET, 0, 0, target)] if isinstance(target, int) else [("block", target)]
    mid = (lo + hi) // 2
    left, right = _search(ranges, lo, mid), _search(ranges, mid, hi)
    if len(left) <= 255:
        return [(JGE, len(left), 0, ranges[mid][0])] + left + right
    # too far for an 8-bit jump: the true branch goes through a JA
    return [(JGE, 0, 1, ranges[mid][0]), (JA, 0, 0, len(left))] + left + right


def _link(code):
    """Append the argument blocks after the search and point the JAs at them."""
    blocks, where = [], {}
    for ins in code:
        if ins[0] == "block" and ins[1] not in where:
            where[ins[1]] = len(code) + sum(len(b) for b in blocks)
            blocks.append(_block(*ins[1]))
    out = []
    for i, ins in enumerate(code):
        out.append((JA, 0, 0, where[ins[1]] - i - 1) if ins[0] == "block" else ins)
    for block in blocks:
        out += block
    return out


def _block(checks, fallback):
    """Each rule's argument tests in order (first match wins), else fallback."""
    code = []
    for conds, action in checks:
        code += _rule(conds, action)
    return code + [(RET, 0, 0, fallback)]


def _rule(conds, action):
    """All conditions (AND) then RET action; a failed test jumps past the RET."""
    pieces = [_compare(*c) for c in conds]
    total = sum(len(p) for p in pieces)
    out, pos = [], 0
    for piece in pieces:
        end = pos + len(piece)
        for code, jt, jf, k in piece:
            jt, jf = (_offset(j, pos, end, total) for j in (jt, jf))
            out.append((code, jt, jf, k))
            pos += 1
    return out + [(RET, 0, 0, action)]


def _offset(label, pos, end, total):
    if label == "P":           # this condition holds: on to the next one
        return end - pos - 1
    if label == "F":           # it does not: skip the rest and the RET
        return total - pos
    return label


def _compare(index, op, value, value_two):
    """One 64-bit comparison as 32-bit halves (high first), little-endian."""
    lo, hi = OFF_ARGS + 8 * index, OFF_ARGS + 8 * index + 4
    v_lo, v_hi = value & 0xFFFFFFFF, value >> 32
    load_hi, load_lo = (LD_W_ABS, 0, 0, hi), (LD_W_ABS, 0, 0, lo)
    if op == "SCMP_CMP_EQ":
        return [load_hi, (JEQ, 0, "F", v_hi), load_lo, (JEQ, 0, "F", v_lo)]
    if op == "SCMP_CMP_NE":
        return [load_hi, (JEQ, 0, "P", v_hi), load_lo, (JEQ, "F", 0, v_lo)]
    if op == "SCMP_CMP_MASKED_EQ":   # (arg & value) == valueTwo
        d_lo, d_hi = value_two & 0xFFFFFFFF, value_two >> 32
        return [load_hi, (AND, 0, 0, v_hi), (JEQ, 0, "F", d_hi),
                load_lo, (AND, 0, 0, v_lo), (JEQ, 0, "F", d_lo)]
    if op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        last = (JGT, 0, "F", v_lo) if op == "SCMP_CMP_GT" else (JGE, 0, "F", v_lo)
        return [load_hi, (JGT, "P", 0, v_hi), (JEQ, 0, "F", v_hi), load_lo, last]
    # LT is "not GE", LE is "not GT"
    last = (JGE, "F", 0, v_lo) if op == "SCMP_CMP_LT" else (JGT, "F", 0, v_lo)
    return [load_hi, (JGT, "F", 0, v_hi), (JEQ, 0, "P", v_hi), load_lo, last]


def describe(program):
    """A readable listing of a program (for -v and for debugging)."""
    names = {LD_W_ABS: "ld", JEQ: "jeq", JGT: "jgt", JGE: "jge", JA: "ja",
             AND: "and", RET: "ret"}
    lines = []
    for i, (code, jt, jf, k) in enumerate(program):
        op = names.get(code, hex(code))
        if code in (JEQ, JGT, JGE):
            lines.append(f"{i:4} {op} {k:#x} ? {i + 1 + jt} : {i + 1 + jf}")
        elif code == JA:
            lines.append(f"{i:4} ja {i + 1 + k}")
        else:
            lines.append(f"{i:4} {op} {k:#x}")
    return "\n".join(lines)
