/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "nbd://HOST[:PORT]/EXPORT" and "nbd+unix:///EXPORT?socket=PATH" backends:
 * an export on an NBD server, reached through libnbd's asynchronous API.
 * "nbds://" and "nbds+unix://" are the same over TLS (libnbd and GnuTLS do
 * the handshake and the records; credentials come from the URI's
 * tls-psk-file= or tls-certificates= and the user part).
 *
 * Connections
 * - open() connects once on the control thread (bounded by the timeout) to
 *   check the URI, the export and its flags; that handle is kept as a spare
 *   and the first queue takes it over without connecting again.
 * - One connection per queue when the server allows multi-conn (or the
 *   export is read-only, where consistency across connections is moot).
 *   Without multi-conn, the queues of one loop share one connection and a
 *   queue on a second loop is refused: flushes on one connection would not
 *   cover writes sent on another.
 * - A connection's socket fd is watched on its queue's loop; libnbd is
 *   driven with nbd_aio_notify_read/write and its direction. Completion
 *   callbacks only record results (libnbd holds the handle's lock while it
 *   runs them); the requests are finished after the libnbd call returns.
 * - Further connections (more queues, reconnects) are made by a connector
 *   thread per connection, which does the blocking part (name lookup,
 *   connect, handshake) and hands the ready handle to the loop through an
 *   eventfd. No thread per request, nothing blocks a data-plane loop.
 *
 * Failure ("nbd-timeout=" query parameter, seconds or "NNNms", default 10 s)
 * - Each request gets a deadline, submit time + timeout. A request still
 *   unanswered at its deadline takes the connection down (a hung server
 *   looks the same as a dead one).
 * - When the connection goes down (socket error, EOF, timeout), the handle
 *   is closed and every unanswered request goes back to a wait list; the
 *   connector thread reconnects every second or so. On reconnect the waiting
 *   requests are sent again (block writes are idempotent and the guest saw
 *   no completion). A waiting request fails with -EIO at its deadline.
 * - A connection down for longer than the timeout fails new requests with
 *   -EIO at once, until it is back.
 * - So every request completes within timeout + one timer tick
 *   (timeout / 4, at most 1 s) of being submitted: this bounds how long a
 *   ring stop waits for in-flight I/O.
 *
 * Requests
 * - libnbd has no vectored I/O: a READ/WRITE becomes one NBD command per
 *   iovec (split further at the server's maximum), each straight into guest
 *   memory. FUA maps to NBD_CMD_FLAG_FUA, or a flush after the write when
 *   the server has no FUA. FLUSH without server support completes at once
 *   (the server has no volatile cache to flush). DISCARD maps to TRIM and
 *   WRITE_ZEROES to WRITE_ZEROES, offered only when the server has them.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "backend_internal.h"
#include "umdev/log.h"

#define NBD_DEFAULT_TIMEOUT_MS 10000
#define NBD_MAX_TIMEOUT_MS 3600000
#define NBD_RECONNECT_PAUSE_MS 1000
/* Largest command sent: NBD servers commonly cap requests at 32 MiB. */
#define NBD_MAX_DATA (32u << 20)
#define NBD_MAX_RANGE (1u << 30) /* trim and write-zeroes */

struct nbd_conn;

struct nbd_bdev {
	char *uri; /* the spec without our own query parameters */
	unsigned timeout_ms;
	bool multi_conn, can_flush, can_fua, can_trim, can_zero;
	uint64_t max_data;
	pthread_mutex_t lock; /* spare and shared, from any queue's thread */
	struct nbd_handle *spare; /* connected, no fd watched */
	struct nbd_conn *shared; /* without multi-conn: the one connection */
};

enum nbd_list { NBD_L_NONE, NBD_L_ACTIVE, NBD_L_WAIT, NBD_L_DONE };

struct nbd_req {
	struct umdev_bdev_io *io;
	struct nbd_conn *c;
	uint64_t deadline_ms;
	unsigned pieces; /* commands not yet answered */
	int err; /* first errno of a piece, or our own */
	bool issuing;
	bool flushing; /* FUA emulation: the write is done, the flush is out */
	bool final; /* failed by us: never sent again */
	enum nbd_list list;
	struct nbd_req *prev, *next;
};

struct nbd_rlist {
	struct nbd_req *head, *tail;
};

struct nbd_conn {
	umdev_bdev *b;
	struct nbd_bdev *nb;
	umdev_loop *loop;
	unsigned refs; /* queues using it (several only without multi-conn) */
	struct nbd_handle *h; /* NULL while down */
	int fd;
	uint32_t events;
	uint64_t down_since_ms;
	int tfd; /* timerfd: deadlines */
	bool timer_on;
	unsigned tick_ms;
	int depth; /* nesting of nbd_conn_run */
	bool was_up; /* connected at least once: later ones are reconnects */
	struct nbd_rlist active, wait, done;
	struct nbd_req *free_list;
	/* connector thread */
	int efd;
	pthread_t thr;
	bool thr_running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop; /* under mu */
	struct nbd_handle *ready; /* under mu: connected by the thread */
	struct umdev_ratelimit rl; /* loop thread */
	struct umdev_ratelimit conn_rl; /* connector threads (one at a time) */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int nbd_errno(void)
{
	int e = nbd_get_errno();

	return e > 0 ? -e : -EIO;
}

/* ---- request lists (queue thread only) ---- */

static void rl_push(struct nbd_rlist *l, struct nbd_req *r, enum nbd_list which)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
	r->list = which;
}

static void rl_del(struct nbd_rlist *l, struct nbd_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = NULL;
	r->list = NBD_L_NONE;
}

static struct nbd_rlist *rl_of(struct nbd_conn *c, enum nbd_list which)
{
	switch (which) {
	case NBD_L_ACTIVE:
		return &c->active;
	case NBD_L_WAIT:
		return &c->wait;
	case NBD_L_DONE:
		return &c->done;
	default:
		return NULL;
	}
}

static void req_move(struct nbd_req *r, enum nbd_list to)
{
	struct nbd_rlist *from = rl_of(r->c, r->list);

	if (from)
		rl_del(from, r);
	rl_push(rl_of(r->c, to), r, to);
}

/* ---- connecting (blocking, bounded; control or connector thread) ---- */

/*
 * Splits our own "nbd-timeout=" out of the URI's query; the rest goes to
 * libnbd untouched. Returns the URI to use (caller frees) or NULL.
 */
static char *nbd_uri_strip(const char *spec, unsigned *timeout_ms, int *err)
{
	char *uri = strdup(spec), *q, *p, *out;
	size_t olen;

	*timeout_ms = NBD_DEFAULT_TIMEOUT_MS;
	if (!uri) {
		*err = -ENOMEM;
		return NULL;
	}
	q = strchr(uri, '?');
	if (!q)
		return uri;
	out = q + 1;
	olen = 0;
	p = q + 1;
	while (*p) {
		char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		char *next = amp ? amp + 1 : p + len;

		if (len > 12 && strncmp(p, "nbd-timeout=", 12) == 0) {
			char val[32], *end;
			unsigned long v;

			if (len - 12 >= sizeof(val))
				goto bad;
			memcpy(val, p + 12, len - 12);
			val[len - 12] = '\0';
			if (val[0] < '0' || val[0] > '9')
				goto bad;
			v = strtoul(val, &end, 10);
			if (strcmp(end, "ms") == 0)
				;
			else if (*end == '\0' && v <= NBD_MAX_TIMEOUT_MS / 1000)
				v *= 1000;
			else
				goto bad;
			if (v < 10 || v > NBD_MAX_TIMEOUT_MS)
				goto bad;
			*timeout_ms = (unsigned)v;
		} else {
			if (olen)
				out[olen++] = '&';
			memmove(out + olen, p, len);
			olen += len;
		}
		p = next;
	}
	out[olen] = '\0';
	if (olen == 0)
		*q = '\0';
	return uri;
bad:
	umdev_err("nbd-timeout: want seconds (1 to 3600) or milliseconds like 500ms");
	free(uri);
	*err = -EINVAL;
	return NULL;
}

/*
 * Connects to @uri within @timeout_ms; gives up early when *@stop (read
 * under @mu) becomes true. NULL with -errno in *err, the reason in @why.
 */
static struct nbd_handle *nbd_connect_bounded(const char *uri, unsigned timeout_ms,
					      pthread_mutex_t *mu, const bool *stop, int *err,
					      char *why, size_t whylen)
{
	uint64_t deadline = now_ms() + timeout_ms;
	struct nbd_handle *h = nbd_create();

	if (!h) {
		*err = -ENOMEM;
		snprintf(why, whylen, "%s", nbd_get_error() ? nbd_get_error() : "out of memory");
		return NULL;
	}
	/*
	 * Reads land in guest memory: no need to clear it first. The URI is
	 * the operator's (never a guest's), so its TLS query parameters may
	 * name local files (tls-psk-file, tls-certificates).
	 */
	if (nbd_set_pread_initialize(h, false) < 0 || nbd_set_uri_allow_local_file(h, true) < 0 ||
	    nbd_set_request_structured_replies(h, true) < 0 || nbd_aio_connect_uri(h, uri) < 0)
		goto fail;
	while (nbd_aio_is_ready(h) != 1) {
		uint64_t now = now_ms();
		bool stopping = false;

		if (nbd_aio_is_dead(h) == 1 || nbd_aio_is_closed(h) == 1)
			goto fail;
		if (now >= deadline) {
			nbd_close(h);
			*err = -ETIMEDOUT;
			snprintf(why, whylen, "no answer within %u ms", timeout_ms);
			return NULL;
		}
		if (mu) {
			pthread_mutex_lock(mu);
			stopping = *stop;
			pthread_mutex_unlock(mu);
		}
		if (stopping) {
			nbd_close(h);
			*err = -ECANCELED;
			snprintf(why, whylen, "cancelled");
			return NULL;
		}
		if (nbd_poll(h, (int)(deadline - now < 100 ? deadline - now : 100)) < 0)
			goto fail;
	}
	return h;
fail:
	*err = nbd_errno();
	snprintf(why, whylen, "%s", nbd_get_error() ? nbd_get_error() : strerror(-*err));
	nbd_close(h);
	return NULL;
}

/* Runs @cookie to completion within @timeout_ms; blocking. */
static int nbd_wait_cookie(struct nbd_handle *h, int64_t cookie, unsigned timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	int r;

	if (cookie < 0)
		return nbd_errno();
	while ((r = nbd_aio_command_completed(h, cookie)) == 0) {
		uint64_t now = now_ms();

		if (now >= deadline)
			return -ETIMEDOUT;
		if (nbd_poll(h, (int)(deadline - now)) < 0)
			return nbd_errno();
	}
	return r < 0 ? nbd_errno() : 0;
}

/* ---- open/close ---- */

static int nbd_open(umdev_bdev *b, const char *arg, bool readonly)
{
	struct nbd_bdev *nb = calloc(1, sizeof(*nb));
	int64_t size, minbs, prefbs, maxbs;
	char why[256];
	int err = 0;

	if (!nb)
		return -ENOMEM;
	nb->uri = nbd_uri_strip(b->spec, &nb->timeout_ms, &err);
	if (!nb->uri) {
		free(nb);
		return err;
	}
	pthread_mutex_init(&nb->lock, NULL);
	nb->spare = nbd_connect_bounded(nb->uri, nb->timeout_ms, NULL, NULL, &err, why,
					sizeof(why));
	if (!nb->spare) {
		umdev_err("nbd '%s': %s", nb->uri, why);
		goto fail;
	}
	size = nbd_get_size(nb->spare);
	if (size < 0) {
		err = nbd_errno();
		umdev_err("nbd '%s': no size: %s", nb->uri, nbd_get_error());
		goto fail;
	}
	if (size < 512) {
		umdev_err("nbd '%s': export of %" PRId64 " bytes, a disk needs at least 512",
			  nb->uri, size);
		err = -EINVAL;
		goto fail;
	}
	if (size % 512)
		umdev_warn("nbd '%s': size %" PRId64 " is not a multiple of 512, the tail is not used",
			   nb->uri, size);
	nb->multi_conn = nbd_can_multi_conn(nb->spare) == 1;
	nb->can_flush = nbd_can_flush(nb->spare) == 1;
	nb->can_fua = nbd_can_fua(nb->spare) == 1;
	nb->can_trim = nbd_can_trim(nb->spare) == 1;
	nb->can_zero = nbd_can_zero(nb->spare) == 1;
	minbs = nbd_get_block_size(nb->spare, LIBNBD_SIZE_MINIMUM);
	prefbs = nbd_get_block_size(nb->spare, LIBNBD_SIZE_PREFERRED);
	maxbs = nbd_get_block_size(nb->spare, LIBNBD_SIZE_MAXIMUM);
	nb->max_data = maxbs > 0 && maxbs < NBD_MAX_DATA ? (uint64_t)maxbs : NBD_MAX_DATA;
	if (nbd_is_read_only(nb->spare) == 1)
		b->info.readonly = true;
	/* Read-only: no write ever crosses connections. */
	if (b->info.readonly || readonly)
		nb->multi_conn = true;
	b->info.size = (uint64_t)size & ~511ull;
	b->info.block_size = minbs > 512 && minbs <= 65536 && !(minbs & (minbs - 1)) ?
				     (uint32_t)minbs : 512;
	b->info.physical_block_size = prefbs >= b->info.block_size && prefbs <= 65536 &&
					      !(prefbs & (prefbs - 1)) ?
					      (uint32_t)prefbs : b->info.block_size;
	b->info.can_discard = nb->can_trim;
	b->info.can_write_zeroes = nb->can_zero;
	b->info.volatile_cache = nb->can_flush;
	b->info.direct = false;
	b->priv = nb;
	umdev_info("nbd '%s': %" PRIu64 " bytes%s, %s%s%s%s%s, timeout %u ms", nb->uri,
		   b->info.size, b->info.readonly ? " read-only" : "",
		   nbd_get_structured_replies_negotiated(nb->spare) == 1 ? "structured" : "simple",
		   nb->can_flush ? " flush" : "", nb->can_fua ? " fua" : "",
		   nb->can_trim ? " trim" : "", nb->multi_conn ? " multi-conn" : "",
		   nb->timeout_ms);
	if (nb->can_zero)
		umdev_dbg("nbd '%s': write-zeroes supported", nb->uri);
	return 0;
fail:
	if (nb->spare)
		nbd_close(nb->spare);
	pthread_mutex_destroy(&nb->lock);
	free(nb->uri);
	free(nb);
	return err < 0 ? err : -EIO;
}

static void nbd_bdev_close(umdev_bdev *b)
{
	struct nbd_bdev *nb = b->priv;

	if (nb->spare)
		nbd_close(nb->spare);
	pthread_mutex_destroy(&nb->lock);
	free(nb->uri);
	free(nb);
}

/* Blocking flush on a connection of its own (or the spare). */
static int nbd_flush_sync(umdev_bdev *b)
{
	struct nbd_bdev *nb = b->priv;
	struct nbd_handle *h;
	char why[256];
	int err = 0;

	if (!nb->can_flush || b->info.readonly)
		return 0;
	pthread_mutex_lock(&nb->lock);
	h = nb->spare;
	nb->spare = NULL;
	pthread_mutex_unlock(&nb->lock);
	if (!h)
		h = nbd_connect_bounded(nb->uri, nb->timeout_ms, NULL, NULL, &err, why,
					sizeof(why));
	if (!h)
		return err;
	err = nbd_wait_cookie(h, nbd_aio_flush(h, (nbd_completion_callback){ 0 }, 0),
			      nb->timeout_ms);
	pthread_mutex_lock(&nb->lock);
	if (!nb->spare && err == 0) {
		nb->spare = h;
		h = NULL;
	}
	pthread_mutex_unlock(&nb->lock);
	if (h)
		nbd_close(h);
	return err;
}

/* ---- the connection on its loop ---- */

static void nbd_conn_run(struct nbd_conn *c);
static void nbd_send(struct nbd_conn *c, struct nbd_req *r);

static void nbd_timer_set(struct nbd_conn *c, bool on)
{
	struct itimerspec its = { 0 };

	if (c->timer_on == on)
		return;
	if (on) {
		its.it_value.tv_sec = c->tick_ms / 1000;
		its.it_value.tv_nsec = (long)(c->tick_ms % 1000) * 1000000;
		its.it_interval = its.it_value;
	}
	if (timerfd_settime(c->tfd, 0, &its, NULL) == 0)
		c->timer_on = on;
}

static void *nbd_connector(void *opaque)
{
	struct nbd_conn *c = opaque;
	unsigned budget = c->nb->timeout_ms < 1000 ? 1000 : c->nb->timeout_ms;
	char why[256];
	uint64_t one = 1;

	pthread_setname_np(pthread_self(), "umdev-nbd");
	for (;;) {
		struct timespec until;
		struct nbd_handle *h;
		int err = 0;

		h = nbd_connect_bounded(c->nb->uri, budget, &c->mu, &c->stop, &err, why,
					sizeof(why));
		pthread_mutex_lock(&c->mu);
		if (h && !c->stop) {
			c->ready = h;
			pthread_mutex_unlock(&c->mu);
			if (write(c->efd, &one, sizeof(one)) < 0)
				umdev_dbg("nbd: eventfd write: %s", strerror(errno));
			return NULL;
		}
		if (c->stop) {
			pthread_mutex_unlock(&c->mu);
			if (h)
				nbd_close(h);
			return NULL;
		}
		umdev_warn_rl(&c->conn_rl, "nbd '%s': connecting failed: %s", c->nb->uri, why);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)NBD_RECONNECT_PAUSE_MS * 1000000;
		until.tv_sec += until.tv_nsec / 1000000000;
		until.tv_nsec %= 1000000000;
		while (!c->stop && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
			;
		if (c->stop) {
			pthread_mutex_unlock(&c->mu);
			return NULL;
		}
		pthread_mutex_unlock(&c->mu);
	}
}

static void nbd_connector_start(struct nbd_conn *c)
{
	if (c->thr_running)
		return;
	c->stop = false;
	if (pthread_create(&c->thr, NULL, nbd_connector, c) != 0) {
		umdev_err_rl(&c->rl, "nbd '%s': cannot start the reconnect thread", c->nb->uri);
		return;
	}
	c->thr_running = true;
}

static void nbd_connector_stop(struct nbd_conn *c)
{
	if (!c->thr_running)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thr, NULL);
	c->thr_running = false;
}

/* Drops the connection; unanswered requests wait for the next one. */
static void nbd_conn_down(struct nbd_conn *c, const char *why)
{
	struct nbd_req *r, *next;

	if (!c->h)
		return;
	umdev_warn_rl(&c->rl, "nbd '%s': connection lost (%s), reconnecting", c->nb->uri, why);
	umdev_loop_del_fd(c->loop, c->fd);
	/* Completion callbacks do not run from here on (only their free, unset). */
	nbd_close(c->h);
	c->h = NULL;
	c->fd = -1;
	c->down_since_ms = now_ms();
	/* Answered in full and fine: those complete; everything else is sent again. */
	for (r = c->done.head; r; r = next) {
		next = r->next;
		if (!r->final && (r->err || r->pieces))
			req_move(r, NBD_L_WAIT);
	}
	while ((r = c->active.head))
		req_move(r, NBD_L_WAIT);
	nbd_connector_start(c);
}

static void nbd_fd_cb(void *opaque, uint32_t events)
{
	struct nbd_conn *c = opaque;
	unsigned dir;

	if (!c->h)
		return;
	dir = (unsigned)nbd_aio_get_direction(c->h);
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (dir & LIBNBD_AIO_DIRECTION_READ))
		nbd_aio_notify_read(c->h);
	if (c->h && (events & (EPOLLOUT | EPOLLERR)) && (dir & LIBNBD_AIO_DIRECTION_WRITE))
		nbd_aio_notify_write(c->h);
	/* Replies are all read by now: a hang-up that libnbd did not see is still one. */
	if ((events & (EPOLLHUP | EPOLLERR)) && c->h && nbd_aio_is_dead(c->h) != 1 &&
	    nbd_aio_is_closed(c->h) != 1)
		nbd_conn_down(c, "socket closed");
	nbd_conn_run(c);
}

/* The connector's handle, on the loop: send what waited. */
static void nbd_adopt(struct nbd_conn *c, struct nbd_handle *h)
{
	struct nbd_rlist waiting = c->wait;
	struct nbd_req *r;
	int64_t size = nbd_get_size(h);

	if (size < 0 || ((uint64_t)size & ~511ull) != c->b->info.size) {
		umdev_err_rl(&c->rl, "nbd '%s': the export now has %" PRId64
			     " bytes instead of %" PRIu64 ", not using it", c->nb->uri, size,
			     c->b->info.size);
		nbd_close(h);
		nbd_connector_start(c);
		return;
	}
	c->fd = nbd_aio_get_fd(h);
	c->events = EPOLLIN;
	if (c->fd < 0 || umdev_loop_add_fd(c->loop, c->fd, c->events, nbd_fd_cb, c) < 0) {
		nbd_close(h);
		c->fd = -1;
		nbd_connector_start(c);
		return;
	}
	c->h = h;
	if (c->was_up)
		umdev_info("nbd '%s': connected again", c->nb->uri);
	c->was_up = true;
	c->down_since_ms = 0;
	c->wait.head = c->wait.tail = NULL;
	while ((r = waiting.head)) {
		waiting.head = r->next;
		if (waiting.head)
			waiting.head->prev = NULL;
		r->list = NBD_L_NONE;
		rl_push(&c->active, r, NBD_L_ACTIVE);
		nbd_send(c, r);
	}
	nbd_conn_run(c);
}

static void nbd_efd_cb(void *opaque, uint32_t events)
{
	struct nbd_conn *c = opaque;
	struct nbd_handle *h;
	uint64_t v;

	if (read(c->efd, &v, sizeof(v)) < 0)
		return;
	pthread_mutex_lock(&c->mu);
	h = c->ready;
	c->ready = NULL;
	pthread_mutex_unlock(&c->mu);
	if (!h)
		return;
	/* The thread handed it over and ends: reap it before it may start again. */
	if (c->thr_running) {
		pthread_join(c->thr, NULL);
		c->thr_running = false;
	}
	nbd_adopt(c, h);
}

/* Deadlines: a hung server goes down; waiting requests fail with -EIO. */
static void nbd_timer_cb(void *opaque, uint32_t events)
{
	struct nbd_conn *c = opaque;
	uint64_t v, now = now_ms();
	struct nbd_req *r, *next;

	if (read(c->tfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	for (r = c->active.head; r && c->h; r = r->next) {
		if (now >= r->deadline_ms) {
			nbd_conn_down(c, "request timed out");
			break;
		}
	}
	for (r = c->wait.head; r; r = next) {
		next = r->next;
		if (now >= r->deadline_ms) {
			r->err = EIO;
			r->final = true;
			req_move(r, NBD_L_DONE);
		}
	}
	nbd_conn_run(c);
}

static void nbd_piece_done(struct nbd_req *r)
{
	if (--r->pieces == 0 && !r->issuing)
		req_move(r, NBD_L_DONE);
}

/* libnbd's completion callback: runs under the handle's lock, only records. */
static int nbd_piece_cb(void *opaque, int *error)
{
	struct nbd_req *r = opaque;

	if (*error && !r->err)
		r->err = *error;
	nbd_piece_done(r);
	return 1;
}

static bool nbd_issue(struct nbd_conn *c, struct nbd_req *r, int64_t cookie)
{
	if (cookie >= 0)
		return true;
	/* Refused before sending (a dead handle is taken down by nbd_conn_run). */
	r->pieces--;
	if (!r->err)
		r->err = nbd_get_errno() > 0 ? nbd_get_errno() : EIO;
	return false;
}

/* Sends @r (on the active list) as NBD commands on the current handle. */
static void nbd_send(struct nbd_conn *c, struct nbd_req *r)
{
	struct umdev_bdev_io *io = r->io;
	struct nbd_handle *h = c->h;
	struct nbd_bdev *nb = c->nb;
	nbd_completion_callback cb = { .callback = nbd_piece_cb, .user_data = r };
	uint64_t off = io->offset, left = io->len;

	r->issuing = true;
	r->err = 0;
	r->pieces = 0;
	if (r->flushing) {
		r->pieces++;
		nbd_issue(c, r, nbd_aio_flush(h, cb, 0));
		goto out;
	}
	switch (io->op) {
	case UMDEV_BDEV_READ:
	case UMDEV_BDEV_WRITE: {
		uint32_t fl = io->op == UMDEV_BDEV_WRITE && io->fua && nb->can_fua ?
				      LIBNBD_CMD_FLAG_FUA : 0;

		for (int i = 0; i < io->iovcnt && !r->err; i++) {
			char *base = io->iov[i].iov_base;
			size_t len = io->iov[i].iov_len;

			while (len && !r->err) {
				size_t n = len < nb->max_data ? len : (size_t)nb->max_data;
				int64_t ck;

				r->pieces++;
				if (io->op == UMDEV_BDEV_READ)
					ck = nbd_aio_pread(h, base, n, off, cb, 0);
				else
					ck = nbd_aio_pwrite(h, base, n, off, cb, fl);
				if (!nbd_issue(c, r, ck))
					break;
				base += n;
				len -= n;
				off += n;
			}
		}
		break;
	}
	case UMDEV_BDEV_FLUSH:
		if (nb->can_flush) {
			r->pieces++;
			nbd_issue(c, r, nbd_aio_flush(h, cb, 0));
		}
		break;
	case UMDEV_BDEV_DISCARD:
	case UMDEV_BDEV_WRITE_ZEROES:
		while (left && !r->err) {
			uint64_t n = left < NBD_MAX_RANGE ? left : NBD_MAX_RANGE;
			int64_t ck;

			r->pieces++;
			if (io->op == UMDEV_BDEV_DISCARD)
				ck = nbd_aio_trim(h, n, off, cb, 0);
			else
				ck = nbd_aio_zero(h, n, off, cb, 0);
			if (!nbd_issue(c, r, ck))
				break;
			off += n;
			left -= n;
		}
		break;
	}
out:
	r->issuing = false;
	if (r->pieces == 0)
		req_move(r, NBD_L_DONE);
}

static void nbd_complete(struct nbd_conn *c, struct nbd_req *r)
{
	struct umdev_bdev_io *io = r->io;
	int err = r->err;

	rl_del(&c->done, r);
	r->io = NULL;
	r->next = c->free_list;
	c->free_list = r;
	/* Connection trouble is an I/O error to the guest; the server's own errno stays. */
	if (err == ENOTCONN || err == ESHUTDOWN || err == ECONNRESET || err == EPIPE)
		err = EIO;
	io->done(io, -err);
}

/*
 * After every libnbd call: take a dead handle down, finish answered
 * requests (which may submit more, re-entering here), then set the events
 * libnbd waits for. Nested calls leave the work to the outermost.
 */
static void nbd_conn_run(struct nbd_conn *c)
{
	struct nbd_req *r;

	if (c->depth++)
		goto out;
	for (;;) {
		if (c->h && (nbd_aio_is_dead(c->h) == 1 || nbd_aio_is_closed(c->h) == 1))
			nbd_conn_down(c, nbd_get_error() ? nbd_get_error() : "server went away");
		r = c->done.head;
		if (!r)
			break;
		if (c->h && !r->err && !r->final && !r->flushing && r->io->op == UMDEV_BDEV_WRITE &&
		    r->io->fua && !c->nb->can_fua && c->nb->can_flush) {
			/* FUA without server support: the write, then a flush. */
			r->flushing = true;
			req_move(r, NBD_L_ACTIVE);
			nbd_send(c, r);
			continue;
		}
		nbd_complete(c, r);
	}
	if (c->h) {
		unsigned dir = (unsigned)nbd_aio_get_direction(c->h);
		uint32_t ev = EPOLLIN | ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? EPOLLOUT : 0);

		if (ev != c->events && umdev_loop_mod_fd(c->loop, c->fd, ev) == 0)
			c->events = ev;
	}
	/* The timer only runs while something can time out. */
	nbd_timer_set(c, c->active.head || c->wait.head);
out:
	c->depth--;
}

/* ---- queues ---- */

static void nbd_conn_free(struct nbd_conn *c)
{
	struct nbd_req *r;

	nbd_connector_stop(c);
	if (c->ready)
		nbd_close(c->ready);
	if (c->active.head || c->wait.head || c->done.head)
		umdev_err("nbd '%s': queue freed with requests in flight", c->nb->uri);
	umdev_loop_del_fd(c->loop, c->efd);
	umdev_loop_del_fd(c->loop, c->tfd);
	close(c->efd);
	close(c->tfd);
	if (c->h) {
		umdev_loop_del_fd(c->loop, c->fd);
		/* A healthy idle connection serves the next queue (a device reset). */
		pthread_mutex_lock(&c->nb->lock);
		if (!c->nb->spare && nbd_aio_is_ready(c->h) == 1 && !c->active.head) {
			c->nb->spare = c->h;
			c->h = NULL;
		}
		pthread_mutex_unlock(&c->nb->lock);
		if (c->h)
			nbd_close(c->h);
	}
	while ((r = c->free_list)) {
		c->free_list = r->next;
		free(r);
	}
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static struct nbd_conn *nbd_conn_new(umdev_bdev *b, umdev_loop *loop, int *err)
{
	struct nbd_conn *c = calloc(1, sizeof(*c));
	struct nbd_bdev *nb = b->priv;
	struct nbd_handle *h;

	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	c->b = b;
	c->nb = nb;
	c->loop = loop;
	c->refs = 1;
	c->fd = -1;
	c->tick_ms = nb->timeout_ms / 4;
	if (c->tick_ms < 5)
		c->tick_ms = 5;
	if (c->tick_ms > 1000)
		c->tick_ms = 1000;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->efd < 0 || c->tfd < 0) {
		*err = -errno;
		goto fail;
	}
	if ((*err = umdev_loop_add_fd(loop, c->efd, EPOLLIN, nbd_efd_cb, c)) < 0)
		goto fail;
	if ((*err = umdev_loop_add_fd(loop, c->tfd, EPOLLIN, nbd_timer_cb, c)) < 0) {
		umdev_loop_del_fd(loop, c->efd);
		goto fail;
	}
	pthread_mutex_lock(&nb->lock);
	h = nb->spare;
	nb->spare = NULL;
	pthread_mutex_unlock(&nb->lock);
	/* Until connected, requests wait as they would for a reconnect. */
	c->down_since_ms = now_ms();
	if (h)
		nbd_adopt(c, h);
	else
		nbd_connector_start(c);
	return c;
fail:
	if (c->efd >= 0)
		close(c->efd);
	if (c->tfd >= 0)
		close(c->tfd);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
	return NULL;
}

static int nbd_queue_new(umdev_bdev_queue *q)
{
	struct nbd_bdev *nb = q->b->priv;
	struct nbd_conn *c;
	int err = 0;

	if (!nb->multi_conn) {
		pthread_mutex_lock(&nb->lock);
		c = nb->shared;
		if (c && c->loop != q->loop) {
			pthread_mutex_unlock(&nb->lock);
			umdev_err("nbd '%s': the server does not allow multi-conn, so all queues of "
				  "this device must run on one loop", nb->uri);
			return -EOPNOTSUPP;
		}
		if (c)
			c->refs++;
		pthread_mutex_unlock(&nb->lock);
		if (c) {
			q->priv = c;
			return 0;
		}
	}
	c = nbd_conn_new(q->b, q->loop, &err);
	if (!c)
		return err;
	if (!nb->multi_conn) {
		pthread_mutex_lock(&nb->lock);
		nb->shared = c;
		pthread_mutex_unlock(&nb->lock);
	}
	q->priv = c;
	return 0;
}

static void nbd_queue_free(umdev_bdev_queue *q)
{
	struct nbd_conn *c = q->priv;
	struct nbd_bdev *nb = c->nb;
	bool last;

	pthread_mutex_lock(&nb->lock);
	last = --c->refs == 0;
	if (last && nb->shared == c)
		nb->shared = NULL;
	pthread_mutex_unlock(&nb->lock);
	if (last)
		nbd_conn_free(c);
}

static int nbd_submit(umdev_bdev_queue *q, struct umdev_bdev_io *io)
{
	struct nbd_conn *c = q->priv;
	struct nbd_req *r = c->free_list;
	uint64_t now = now_ms();

	if (r) {
		c->free_list = r->next;
	} else {
		r = calloc(1, sizeof(*r));
		if (!r)
			return -ENOMEM;
	}
	memset(r, 0, sizeof(*r));
	r->io = io;
	r->c = c;
	r->deadline_ms = now + c->nb->timeout_ms;
	io->priv = r;
	if (c->h) {
		rl_push(&c->active, r, NBD_L_ACTIVE);
		nbd_send(c, r);
	} else if (now - c->down_since_ms >= c->nb->timeout_ms) {
		/* Down for longer than the timeout: fail fast until it is back. */
		r->err = EIO;
		r->final = true;
		rl_push(&c->done, r, NBD_L_DONE);
	} else {
		rl_push(&c->wait, r, NBD_L_WAIT);
	}
	nbd_conn_run(c);
	return 0;
}

/* Every URI scheme, one backend: libnbd tells them apart ("nbds": TLS). */
#define NBD_OPS(name, scheme)                                                              \
	const struct umdev_bdev_ops name = {                                               \
		.kind = scheme,                                                            \
		.open = nbd_open,                                                          \
		.close = nbd_bdev_close,                                                   \
		.queue_new = nbd_queue_new,                                                \
		.queue_free = nbd_queue_free,                                              \
		.submit = nbd_submit,                                                      \
		.flush_sync = nbd_flush_sync,                                              \
	}

NBD_OPS(umdev_bdev_nbd_ops, "nbd");
NBD_OPS(umdev_bdev_nbd_unix_ops, "nbd+unix");
NBD_OPS(umdev_bdev_nbds_ops, "nbds");
NBD_OPS(umdev_bdev_nbds_unix_ops, "nbds+unix");
