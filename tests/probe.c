/* probe: try one system call and say what the kernel answered.
 *
 *     probe CALL [ARG]     prints "ok" (exit 0) or the errno name (exit 1)
 *
 * Used by tests/test_security*.py to check from inside a container (or a
 * forked, confined child) what capabilities and seccomp let through.
 * Built static (gcc -static -O2 -o probe probe.c) so it runs in any root.
 *
 * Every call is chosen to be harmless when it IS allowed: mounts go on a
 * directory the caller made private, reboot gets a bad magic (EINVAL, never
 * a reboot), swapon gets a file without a swap signature (EINVAL), keys go
 * to the process keyring, the hostname is set to its current value...
 * "Allowed" therefore often means "a different errno than EPERM".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/perf_event.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static const char *arg;   /* optional argument after CALL */

static long report(long r)
{
	if (r < 0) {
		const char *name = strerrorname_np(errno);
		printf("%s\n", name ? name : "E?");
		return 1;
	}
	printf("ok\n");
	return 0;
}

static long do_mount(void)
{
	const char *dir = arg ? arg : "/tmp";
	if (mount("probe", dir, "tmpfs", 0, "size=16k") < 0)
		return -1;
	return umount2(dir, 0);
}

static long do_clone_ns(void)
{
	long pid = syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return pid;
}

static long do_clone3(void)
{
	uint64_t args[11] = {0};
	args[4] = SIGCHLD;    /* exit_signal */
	long pid = syscall(SYS_clone3, args, sizeof(args));
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return pid;
}

static long do_fork(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return pid;
}

static long do_setns(void)
{
	int fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	return setns(fd, CLONE_NEWUTS);
}

static long do_sethostname(void)
{
	char name[256] = {0};
	if (gethostname(name, sizeof(name) - 1) < 0)
		return -1;
	return sethostname(name, strlen(name));
}

static long do_swapon(void)
{
	char path[64];
	static char zeros[65536];
	snprintf(path, sizeof(path), "%s/probe-swap.%d", arg ? arg : "/tmp", getpid());
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	long r = write(fd, zeros, sizeof(zeros));
	close(fd);
	if (r >= 0)
		r = syscall(SYS_swapon, path, 0);
	int saved = errno;
	unlink(path);
	errno = saved;
	return r;
}

static long do_bpf(void)
{
	uint32_t attr[30] = {0};
	attr[0] = 2;    /* BPF_MAP_TYPE_ARRAY */
	attr[1] = 4;    /* key_size */
	attr[2] = 4;    /* value_size */
	attr[3] = 1;    /* max_entries */
	return syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof(attr));
}

static long do_perf(void)
{
	struct perf_event_attr pe;
	memset(&pe, 0, sizeof(pe));
	pe.type = PERF_TYPE_SOFTWARE;
	pe.size = sizeof(pe);
	pe.config = PERF_COUNT_SW_TASK_CLOCK;
	pe.disabled = 1;
	pe.exclude_kernel = 1;
	pe.exclude_hv = 1;
	return syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
}

static long do_mknod(mode_t type, int major, int minor)
{
	char path[64];
	snprintf(path, sizeof(path), "%s/probe-node.%d", arg ? arg : "/tmp", getpid());
	long r = mknod(path, type | 0600, makedev(major, minor));
	int saved = errno;
	unlink(path);
	errno = saved;
	return r;
}

static long do_open(void)
{
	char c;
	int fd = open(arg ? arg : "/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	long r = read(fd, &c, 1);
	close(fd);
	return r;
}

static long do_rlimit(void)
{
	/* lower a hard limit, then raise it again: raising needs CAP_SYS_RESOURCE */
	struct rlimit rl = {0, 0};
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		return -1;
	rl.rlim_cur = rl.rlim_max = 1;
	return setrlimit(RLIMIT_CORE, &rl);
}

static long do_clock_settime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return clock_settime(CLOCK_MONOTONIC, &ts);   /* EINVAL when allowed */
}

static long do_process_vm_readv(void)
{
	char src[8] = "probe", dst[8];
	struct iovec local = {dst, sizeof(dst)}, remote = {src, sizeof(src)};
	return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0);
}

static long do_open_by_handle_at(void)
{
	struct { unsigned int bytes; int type; unsigned char h[128]; } handle = {128, 0, {0}};
	int mount_id;
	/* /tmp, not /: a root on 9p or another fs without file handles would
	 * answer EOPNOTSUPP here before the call under test is made */
	const char *dir = arg ? arg : "/tmp";
	if (name_to_handle_at(AT_FDCWD, dir, (struct file_handle *)&handle, &mount_id, 0) < 0)
		return -1;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return syscall(SYS_open_by_handle_at, fd, &handle, O_RDONLY);
}

static long do_personality_bad(void)
{
	long r = personality(PER_LINUX | ADDR_NO_RANDOMIZE);
	if (r >= 0)
		personality(PER_LINUX);
	return r;
}

#ifdef __x86_64__
static long do_x32(void)
{
	return syscall(0x40000000 | SYS_getpid);
}

static long do_int80(void)
{
	long r;
	/* getpid through the 32-bit ABI: seccomp sees AUDIT_ARCH_I386 */
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(20) : "memory");
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r;
}
#endif

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: probe CALL [ARG]\n");
		return 2;
	}
	const char *c = argv[1];
	arg = argc > 2 ? argv[2] : NULL;
	long r;
#define IS(name) (strcmp(c, name) == 0)
	if (IS("getpid"))                 r = getpid();
	else if (IS("mount"))             r = do_mount();
	else if (IS("umount"))            r = umount2("/proc/self/exe", UMOUNT_NOFOLLOW);
	else if (IS("pivot_root"))        r = syscall(SYS_pivot_root, "/nonexistent-probe",
	                                              "/nonexistent-probe");
	else if (IS("unshare"))           r = unshare(CLONE_NEWUTS);
	else if (IS("clone_ns"))          r = do_clone_ns();
	else if (IS("clone3"))            r = do_clone3();
	else if (IS("fork"))              r = do_fork();
	else if (IS("setns"))             r = do_setns();
	else if (IS("sethostname"))       r = do_sethostname();
	else if (IS("init_module"))       r = syscall(SYS_init_module, NULL, 0, "");
	else if (IS("finit_module"))      r = syscall(SYS_finit_module, -1, "", 0);
	else if (IS("delete_module"))     r = syscall(SYS_delete_module, "probe_no_such_module",
	                                              O_NONBLOCK);
	else if (IS("kexec_load"))        r = syscall(SYS_kexec_load, 0, 0, NULL, 0);
	else if (IS("reboot"))            r = syscall(SYS_reboot, 0, 0, 0, NULL);  /* bad magic */
	else if (IS("swapon"))            r = do_swapon();
	else if (IS("swapoff"))           r = syscall(SYS_swapoff, "/nonexistent-probe");
	else if (IS("add_key"))           r = syscall(SYS_add_key, "user", "probe", "x", 1,
	                                              -2 /* KEY_SPEC_PROCESS_KEYRING */);
	else if (IS("keyctl"))            r = syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */,
	                                              -2, 1);
	else if (IS("request_key"))       r = syscall(SYS_request_key, "user", "probe-none",
	                                              NULL, 0);
	else if (IS("bpf"))               r = do_bpf();
	else if (IS("perf_event_open"))   r = do_perf();
	else if (IS("open_by_handle_at")) r = do_open_by_handle_at();
	else if (IS("clock_settime"))     r = do_clock_settime();
	else if (IS("syslog"))            r = syscall(SYS_syslog, 10 /* SIZE_BUFFER */, NULL, 0);
	else if (IS("acct"))              r = acct(NULL);
	else if (IS("chroot"))            r = chroot("/");
	else if (IS("process_vm_readv"))  r = do_process_vm_readv();
	else if (IS("personality"))       r = personality(0xffffffff);
	else if (IS("personality_bad"))   r = do_personality_bad();
	else if (IS("socket"))            r = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	else if (IS("vsock"))             r = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	else if (IS("mknod"))             r = do_mknod(S_IFCHR, 1, 3);
	else if (IS("mknod_blk"))         r = do_mknod(S_IFBLK, 7, 0);
	else if (IS("open"))              r = do_open();
	else if (IS("rlimit"))            r = do_rlimit();
	else if (IS("setuid"))            r = setuid(getuid());
	else if (IS("euid"))              { printf("%d\n", (int)geteuid()); return 0; }
	else if (IS("nnp"))               { printf("%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)); return 0; }
#ifdef __x86_64__
	else if (IS("x32"))               r = do_x32();
	else if (IS("int80"))             r = do_int80();
#endif
	else {
		fprintf(stderr, "probe: unknown call %s\n", c);
		return 2;
	}
	return report(r);
}
