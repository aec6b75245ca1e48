/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * no-io-uring: run a program with io_uring blocked for real, as a container
 * runtime's default seccomp profile does.
 *
 *   no-io-uring PROGRAM [ARGS...]
 *
 * Installs a seccomp filter that makes io_uring_setup, io_uring_enter and
 * io_uring_register fail with ENOSYS (inherited by every child and thread,
 * kept across exec), sets UMDEV_TEST_NO_IO_URING=1 so tests know what to
 * expect, then execs PROGRAM. Before exec it checks that the filter works:
 * a launcher that silently let io_uring through would make the tests it
 * wraps prove nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/io_uring.h>
#include <seccomp.h>

static int block_io_uring(void)
{
	static const int calls[] = { __NR_io_uring_setup, __NR_io_uring_enter,
				     __NR_io_uring_register };
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int ret = ctx ? 0 : -ENOMEM;

	for (unsigned i = 0; ret == 0 && i < sizeof(calls) / sizeof(calls[0]); i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), calls[i], 0);
	/* Unprivileged callers need no_new_privs; libseccomp sets it by default. */
	if (ret == 0)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	return ret;
}

int main(int argc, char **argv)
{
	struct io_uring_params p;
	long ret;

	if (argc < 2) {
		fprintf(stderr, "usage: no-io-uring PROGRAM [ARGS...]\n");
		return 2;
	}
	ret = block_io_uring();
	if (ret < 0) {
		fprintf(stderr, "no-io-uring: cannot install the seccomp filter: %s\n",
			strerror((int)-ret));
		return 1;
	}
	memset(&p, 0, sizeof(p));
	ret = syscall(__NR_io_uring_setup, 2, &p);
	if (ret >= 0 || errno != ENOSYS) {
		fprintf(stderr, "no-io-uring: io_uring_setup still answers (%ld, %s)\n", ret,
			strerror(errno));
		return 1;
	}
	if (setenv("UMDEV_TEST_NO_IO_URING", "1", 1) < 0) {
		perror("no-io-uring: setenv");
		return 1;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no-io-uring: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
