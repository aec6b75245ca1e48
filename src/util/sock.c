/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/sock.h"

int umdev_msg_attach_fds(struct msghdr *mh, void *cbuf, size_t cbuf_size, const int *fds,
			 unsigned nfds)
{
	struct cmsghdr *cm;

	if (!nfds)
		return 0;
	if (nfds > cbuf_size / sizeof(int) || cbuf_size < CMSG_SPACE(sizeof(int) * nfds))
		return -EINVAL;
	memset(cbuf, 0, cbuf_size);
	mh->msg_control = cbuf;
	mh->msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	return 0;
}

int umdev_sock_listen(const char *path, int *out)
{
	return umdev_sock_listen_mode(path, 0, 4, out);
}

int umdev_sock_listen_mode(const char *path, mode_t mode, int backlog, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old = 0;
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			return -EEXIST;
		}
		/* Someone answers: a live server. Nobody: a stale file to replace. */
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN) {
			close(fd);
			return -EADDRINUSE;
		}
		close(fd);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -errno;
	}
	/*
	 * Bound in place (a temporary name renamed afterwards would be the name
	 * ss(8) and /proc/net/unix show for every connection) and listening
	 * right after, so the moment a client can be refused is as short as it
	 * can be; clients that connect as soon as the file appears retry.
	 */
	if (mode)
		old = umask(~mode & 0777);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (mode)
		umask(old);
	if (ret < 0 || listen(fd, backlog) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

int umdev_listener_open(struct umdev_listener *l, umdev_loop *loop, const char *path, int fd,
			umdev_loop_fd_cb cb, void *opaque)
{
	int ret;

	l->fd = fd;
	l->path = NULL;
	if (fd < 0) {
		if (!path)
			return -EINVAL;
		l->path = strdup(path);
		if (!l->path)
			return -ENOMEM;
		ret = umdev_sock_listen(path, &l->fd);
		if (ret < 0)
			goto fail;
	}
	ret = umdev_loop_add_fd(loop, l->fd, EPOLLIN, cb, opaque);
	if (ret < 0) {
		/* Undo only what we did: a caller's fd stays the caller's on failure. */
		if (l->path) {
			close(l->fd);
			unlink(l->path);
		}
		goto fail;
	}
	return 0;
fail:
	free(l->path);
	l->path = NULL;
	l->fd = -1;
	return ret;
}

void umdev_listener_close(struct umdev_listener *l, umdev_loop *loop)
{
	if (l->fd >= 0) {
		umdev_loop_del_fd(loop, l->fd);
		close(l->fd);
	}
	if (l->path)
		unlink(l->path);
	free(l->path);
	l->fd = -1;
	l->path = NULL;
}
