/* transport.c: the library's state and its two transports
 * (docs/pkcs11-library.md, "Fork").
 *
 * In a normal process a frame goes to goCall, the Go dispatcher in this
 * library. Go does not survive fork(), so a pthread_atfork child handler
 * marks the process as forked and forgets the parent's state; a forked
 * child's C_Initialize then starts openhsm-p11-helper with one end of a
 * socketpair as its fd 0, and every frame goes over the socket, preceded by
 * its u32 little-endian length. Nothing in a forked child calls into Go.
 * OPENHSM_P11_FORCE_HELPER=1 makes any process use the helper.
 *
 * A privileged parent's credentials: after a successful C_Initialize in a
 * process that has not forked, goSnapshot gives the configuration and the
 * bytes of the credential files (and the log, open), which are kept here,
 * in pages of their own, until C_Finalize. A forked child inherits them and
 * sends them to its helper in the C_Initialize frame (the log goes to the
 * helper as fd 3), so a child that has dropped privileges opens no file.
 *
 * A helper that fails to start or to initialize is not started again for a
 * while: 1 s, doubling to 30 s; C_Initialize answers the last failure at
 * once meanwhile. Failures are written to standard error once per reason. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"
#include "wire.h"

extern char **environ;

/* goCall is exported by module.go (cgo writes the same prototype into
 * _cgo_export.h). It takes a request frame and returns the reply in memory
 * from malloc, or *resp NULL if it could not allocate. */
void goCall(unsigned char *req, size_t reqLen, unsigned char **resp, size_t *respLen);
/* goSnapshot (module.go) returns 0 with the handoff in *blob (from malloc)
 * and the log open for appending in *logFD (-1 for none), or -1 with the
 * reason in *msg (from malloc, or NULL). */
int goSnapshot(unsigned char **blob, size_t *blobLen, int *logFD, char **msg);

/* REPLY_MAX bounds a reply read from the socket: the helper sends no
 * bigger frame. */
#define REPLY_MAX FRAME_MAX
/* The helper gets this long to exit once its socket is closed. */
#define HELPER_EXIT_MS 5000
/* The helper's descriptor for the handed-over log (core.HelperLogFD). */
#define HELPER_LOG_FD 3
/* The back-off of a failing helper. */
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 30000

enum { MODE_NONE, MODE_INPROC, MODE_HELPER };

/* state_mu serializes C_Initialize and C_Finalize (lock order: state_mu,
 * then sock_mu). initialized, mode and forked are read without it. */
static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;
static int initialized;
static int mode = MODE_NONE;
static int forked;
static pid_t helper_pid; /* under state_mu */

/* sock_mu serializes round trips on the helper socket. */
static pthread_mutex_t sock_mu = PTHREAD_MUTEX_INITIALIZER;
static int sock_fd = -1;
static int sock_broken;

/* The credentials kept for forked children (under state_mu): the handoff
 * from goSnapshot in pages of their own (not in core dumps, locked in
 * memory if the limits allow), and the log open for appending. */
static unsigned char *cred;
static size_t cred_len, cred_size;
static int cred_logfd = -1;
static dev_t cred_log_dev;
static ino_t cred_log_ino;

/* The back-off of a failing helper (under state_mu). */
static unsigned bo_fails;
static uint64_t bo_until_ms;
static CK_RV bo_rv;

/* The last line written to standard error (under state_mu). */
static char last_report[1400];

#define LOAD(v) __atomic_load_n(&(v), __ATOMIC_ACQUIRE)
#define STORE(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELEASE)

/* atfork_child runs in the child of fork(): the child has one thread, the
 * parent's state is not its own, and Go is not usable. It forgets the
 * parent's initialization, drops its copy of the helper socket (so that the
 * parent's helper still sees the parent close it) and resets the mutexes,
 * which another parent thread may have held at the fork. */
static void atfork_child(void)
{
	pthread_mutex_init(&state_mu, NULL);
	pthread_mutex_init(&sock_mu, NULL);
	STORE(forked, 1);
	STORE(initialized, 0);
	STORE(mode, MODE_NONE);
	if (sock_fd >= 0)
		close(sock_fd);
	sock_fd = -1;
	sock_broken = 0;
	helper_pid = 0;
	/* The parent's credentials stay: they are why the child can start a
	 * helper after dropping privileges. The back-off and the reports are
	 * the child's own. */
	bo_fails = 0;
	bo_until_ms = 0;
	last_report[0] = 0;
}

__attribute__((constructor)) static void transport_load(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

int lib_initialized(void)
{
	return LOAD(initialized);
}

/* ---- reports ---- */

/* report writes a line to standard error, the host's log, unless it is the
 * line written last (under state_mu). Control characters are replaced, so
 * that a file name cannot forge lines. */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	char line[sizeof last_report];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	for (i = 0; line[i]; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	if (strcmp(line, last_report) == 0)
		return;
	memcpy(last_report, line, sizeof line);
	fprintf(stderr, "openhsm-pkcs11: %s\n", line);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the credentials kept for forked children ---- */

/* fd_at_least moves fd to a descriptor >= min (keeping CLOEXEC). */
static int fd_at_least(int fd, int min)
{
	int nfd;
	if (fd >= min)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, min);
	close(fd);
	return nfd;
}

/* cred_drop forgets the credentials (under state_mu). */
static void cred_drop(void)
{
	if (cred) {
		explicit_bzero(cred, cred_size);
		munlock(cred, cred_size);
		munmap(cred, cred_size);
	}
	cred = NULL;
	cred_len = cred_size = 0;
	if (cred_logfd >= 0)
		close(cred_logfd);
	cred_logfd = -1;
}

/* cred_keep asks Go for the credentials, in a process that has not forked
 * and has just initialized (under state_mu). Without them, forked children
 * read the files themselves. */
static void cred_keep(void)
{
	unsigned char *blob = NULL, *p;
	size_t n = 0, size;
	long page = sysconf(_SC_PAGESIZE);
	int logfd = -1;
	char *msg = NULL;

	cred_drop();
	if (goSnapshot(&blob, &n, &logfd, &msg) != 0) {
		report("cannot keep the configuration and credentials for forked children, "
		       "which will read the files themselves: %s",
		       msg ? msg : "unknown error");
		free(msg);
		return;
	}
	if (page <= 0)
		page = 4096;
	size = (n + (size_t)page - 1) / (size_t)page * (size_t)page;
	p = size ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
		 : MAP_FAILED;
	if (p == MAP_FAILED) {
		if (blob)
			explicit_bzero(blob, n);
		free(blob);
		if (logfd >= 0)
			close(logfd);
		return;
	}
	madvise(p, size, MADV_DONTDUMP);
	(void)mlock(p, size); /* best effort: RLIMIT_MEMLOCK may refuse */
	memcpy(p, blob, n);
	explicit_bzero(blob, n);
	free(blob);
	cred = p;
	cred_len = n;
	cred_size = size;
	/* Above the helper's fd 3, so that the dup2 onto 3 always makes a new
	 * descriptor without CLOEXEC. */
	cred_logfd = logfd >= 0 ? fd_at_least(logfd, HELPER_LOG_FD + 1) : -1;
	if (cred_logfd >= 0) {
		struct stat st;
		if (fstat(cred_logfd, &st) == 0) {
			cred_log_dev = st.st_dev;
			cred_log_ino = st.st_ino;
		} else {
			close(cred_logfd);
			cred_logfd = -1;
		}
	}
}

/* cred_log_ok reports whether the kept log descriptor is still the log: a
 * child may have closed its inherited descriptors, and the number may now
 * be another file or a socket, which must not reach the helper. */
static int cred_log_ok(void)
{
	struct stat st;
	return cred && cred_logfd >= 0 && fstat(cred_logfd, &st) == 0 &&
	       st.st_dev == cred_log_dev && st.st_ino == cred_log_ino;
}

/* ---- the helper ---- */

static void helper_log(const char *what, const char *path, int err)
{
	report("%s%s%s: %s", what, path ? " " : "", path ? path : "", strerror(err));
}

/* helper_path finds openhsm-p11-helper: $OPENHSM_P11_HELPER, or next to
 * this library (as loaded, then with symbolic links resolved). */
static int helper_path(char *out, size_t n)
{
	const char *env = getenv("OPENHSM_P11_HELPER");
	Dl_info info;
	char real[PATH_MAX];
	const char *lib, *slash;
	int pass;

	if (env && *env) {
		if (strlen(env) >= n)
			return -1;
		strcpy(out, env);
		return 0;
	}
	memset(&info, 0, sizeof info);
	if (!dladdr((void *)&sock_fd, &info) || !info.dli_fname)
		return -1;
	for (pass = 0; pass < 2; pass++) {
		lib = info.dli_fname;
		if (pass == 1) {
			if (!realpath(info.dli_fname, real))
				break;
			lib = real;
		}
		slash = strrchr(lib, '/');
		if (slash) {
			if (snprintf(out, n, "%.*s/openhsm-p11-helper",
				     (int)(slash - lib), lib) >= (int)n)
				return -1;
		} else if (snprintf(out, n, "./openhsm-p11-helper") >= (int)n) {
			return -1;
		}
		if (access(out, X_OK) == 0)
			return 0;
	}
	return 0; /* the first guess; posix_spawn reports why it fails */
}

/* helper_start starts the helper (under state_mu), with the kept log on
 * its fd 3 when there is one; path gets its path. */
static CK_RV helper_start(char *path, size_t pathLen)
{
	char arg0[] = "openhsm-p11-helper";
	char *argv[] = { arg0, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	pid_t pid;
	int sv[2], err, pass_log = cred_log_ok();

	if (helper_path(path, pathLen) != 0) {
		report("cannot locate openhsm-p11-helper next to the library; set OPENHSM_P11_HELPER");
		return CKR_DEVICE_ERROR;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		helper_log("socketpair", NULL, errno);
		return CKR_DEVICE_ERROR;
	}
	/* Both ends above 2, so the dup2 onto fd 0 below always makes a new
	 * descriptor (without CLOEXEC) even if the host closed its stdin. */
	sv[0] = fd_at_least(sv[0], 3);
	sv[1] = fd_at_least(sv[1], 3);
	if (sv[0] < 0 || sv[1] < 0) {
		err = errno;
		if (sv[0] >= 0)
			close(sv[0]);
		if (sv[1] >= 0)
			close(sv[1]);
		helper_log("socketpair", NULL, err);
		return CKR_DEVICE_ERROR;
	}

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
	if (pass_log)
		posix_spawn_file_actions_adddup2(&fa, cred_logfd, HELPER_LOG_FD);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	/* The helper gets fd 0 (the socket), 1 and 2, the kept log as fd 3,
	 * and none of the host's other descriptors (listening sockets,
	 * files). */
	posix_spawn_file_actions_addclosefrom_np(&fa, pass_log ? HELPER_LOG_FD + 1 : 3);
#endif
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	err = posix_spawn(&pid, path, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	if (err != 0) {
		close(sv[0]);
		helper_log("cannot start the fork helper", path, err);
		return CKR_DEVICE_ERROR;
	}

	pthread_mutex_lock(&sock_mu);
	sock_fd = sv[0];
	sock_broken = 0;
	pthread_mutex_unlock(&sock_mu);
	helper_pid = pid;
	return CKR_OK;
}

/* helper_reap waits for the helper to exit, and kills it if it does not.
 * It returns the wait status, or -1 when someone else reaped it. */
static int helper_reap(pid_t pid)
{
	struct timespec ms = { 0, 1000000 };
	int st, i;
	pid_t r;

	for (i = 0; i < HELPER_EXIT_MS; i++) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -1; /* reaped by someone else */
		nanosleep(&ms, NULL);
	}
	kill(pid, SIGKILL);
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	return r == pid ? st : -1;
}

/* helper_stop closes the socket and waits for the helper (under
 * state_mu); it returns the helper's wait status, or -1. */
static int helper_stop(void)
{
	pid_t pid = helper_pid;
	int fd;

	pthread_mutex_lock(&sock_mu);
	fd = sock_fd;
	sock_fd = -1;
	sock_broken = 0;
	pthread_mutex_unlock(&sock_mu);
	if (fd >= 0) {
		shutdown(fd, SHUT_RDWR);
		close(fd);
	}
	helper_pid = 0;
	return pid > 0 ? helper_reap(pid) : -1;
}

static int helper_is_broken(void)
{
	int b;
	pthread_mutex_lock(&sock_mu);
	b = sock_broken;
	pthread_mutex_unlock(&sock_mu);
	return b;
}

static int send_all(int fd, const unsigned char *p, size_t n)
{
	ssize_t k;
	while (n > 0) {
		k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int recv_all(int fd, unsigned char *p, size_t n)
{
	ssize_t k;
	while (n > 0) {
		k = recv(fd, p, n, 0);
		if (k == 0)
			return -1; /* the helper has gone */
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* helper_call makes one round trip on the socket. Once a round trip fails
 * the stream is out of step, so the socket stays broken (CKR_DEVICE_ERROR)
 * until C_Finalize. */
static CK_RV helper_call(frame_req *f, unsigned char **reply, size_t *n)
{
	size_t body = f->len - FRAME_PREFIX;
	unsigned char hdr[4], *buf = NULL;
	uint32_t len;
	CK_RV rv = CKR_OK;
	int i;

	for (i = 0; i < 4; i++)
		f->buf[i] = (unsigned char)(body >> (8 * i));
	pthread_mutex_lock(&sock_mu);
	if (sock_fd < 0) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	if (sock_broken || send_all(sock_fd, f->buf, f->len) != 0 ||
	    recv_all(sock_fd, hdr, 4) != 0) {
		rv = CKR_DEVICE_ERROR;
		goto broken;
	}
	len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
	      (uint32_t)hdr[3] << 24;
	if (len < 8 || len > REPLY_MAX) {
		rv = CKR_DEVICE_ERROR;
		goto broken;
	}
	buf = malloc(len);
	if (!buf) {
		rv = CKR_HOST_MEMORY;
		goto broken;
	}
	if (recv_all(sock_fd, buf, len) != 0) {
		free(buf);
		buf = NULL;
		rv = CKR_DEVICE_ERROR;
		goto broken;
	}
	*reply = buf;
	*n = len;
	goto out;
broken:
	sock_broken = 1;
out:
	pthread_mutex_unlock(&sock_mu);
	return rv;
}

/* ---- calls ---- */

static CK_RV inproc_call(frame_req *f, unsigned char **reply, size_t *n)
{
	unsigned char *r = NULL;
	size_t rn = 0;
	goCall(f->buf + FRAME_PREFIX, f->len - FRAME_PREFIX, &r, &rn);
	if (!r)
		return CKR_HOST_MEMORY;
	*reply = r;
	*n = rn;
	return CKR_OK;
}

static CK_RV transport_call(frame_req *f, unsigned char **reply, size_t *n)
{
	switch (LOAD(mode)) {
	case MODE_INPROC:
		if (LOAD(forked)) /* never: the fork handler resets mode */
			return CKR_CRYPTOKI_NOT_INITIALIZED;
		return inproc_call(f, reply, n);
	case MODE_HELPER:
		return helper_call(f, reply, n);
	default:
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
}

void call_begin(call *c, uint32_t fn)
{
	memset(c, 0, sizeof *c);
	fr_init(&c->req, fn);
	c->result = CKR_OK;
}

int call_send(call *c)
{
	size_t n = 0;
	CK_RV rv = fr_finish(&c->req);

	if (rv == CKR_OK)
		rv = transport_call(&c->req, &c->reply, &n);
	if (rv != CKR_OK) {
		c->result = rv;
		return 0;
	}
	rp_init(&c->rep, c->reply, n);
	c->result = (CK_RV)rp_u64(&c->rep);
	if (c->rep.bad) {
		c->result = CKR_DEVICE_ERROR;
		return 0;
	}
	/* A bare error CK_RV (as goCall sends when the Go side panics):
	 * nothing to copy out. */
	if (c->rep.left == 0 && c->result != CKR_OK)
		return 0;
	return 1;
}

int call_check(call *c)
{
	if (!rp_done(&c->rep)) {
		c->result = CKR_DEVICE_ERROR;
		return 0;
	}
	return 1;
}

CK_RV call_end(call *c)
{
	fr_free(&c->req);
	free(c->reply);
	c->reply = NULL;
	return c->result;
}

/* ---- C_Initialize and C_Finalize ---- */

static int force_helper(void)
{
	const char *v = getenv("OPENHSM_P11_FORCE_HELPER");
	return v && strcmp(v, "1") == 0;
}

/* send_initialize sends C_Initialize on the current transport, with the
 * kept credentials when with_cred (the frame is wiped once sent). On a
 * failure the reason the Go side gave (its e item) goes to why. */
static CK_RV send_initialize(CK_FLAGS flags, int with_cred, char *why, size_t whyLen)
{
	call c;
	uint32_t n;
	const unsigned char *e;

	why[0] = 0;
	call_begin(&c, WIRE_INITIALIZE);
	fr_item_u(&c.req, flags);
	if (with_cred && cred)
		fr_item_b(&c.req, cred, cred_len);
	else
		fr_item_b(&c.req, NULL, 0);
	if (call_send(&c)) {
		n = rp_u32(&c.rep);
		e = rp_take(&c.rep, n);
		if (call_check(&c) && n > 0 && c.result != CKR_OK)
			snprintf(why, whyLen, "%.*s", (int)n, (const char *)e);
	}
	if (c.req.buf)
		explicit_bzero(c.req.buf, c.req.cap);
	return call_end(&c);
}

/* helper_initialize starts a helper and initializes it (under state_mu),
 * unless the last attempts failed and the back-off has not run out: then
 * it answers the last failure at once. */
static CK_RV helper_initialize(CK_FLAGS flags)
{
	char path[PATH_MAX], why[1024];
	const char *how = NULL;
	uint64_t delay;
	CK_RV rv;
	int st = -1, broken = 0, started;

	if (bo_fails > 0 && now_ms() < bo_until_ms)
		return bo_rv;
	path[0] = 0;
	why[0] = 0;
	rv = helper_start(path, sizeof path);
	started = rv == CKR_OK;
	if (started) {
		STORE(mode, MODE_HELPER);
		rv = send_initialize(flags, 1, why, sizeof why);
		if (rv == WIRE_RV_USE_HELPER)
			rv = CKR_GENERAL_ERROR; /* the helper must never ask for itself */
		if (rv != CKR_OK) {
			STORE(mode, MODE_NONE);
			broken = helper_is_broken();
			st = helper_stop();
		}
	}
	if (rv == CKR_OK) {
		if (bo_fails > 0)
			report("the fork helper %s started after %u failed attempts", path, bo_fails);
		bo_fails = 0;
		last_report[0] = 0;
		return rv;
	}
	if (bo_fails < 32)
		bo_fails++;
	delay = (uint64_t)BACKOFF_FIRST_MS << (bo_fails - 1 < 16 ? bo_fails - 1 : 16);
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	bo_until_ms = now_ms() + delay;
	bo_rv = rv;
	if (why[0]) {
		how = why;
	} else if (broken) {
		/* It died before answering: its own messages, if any, are above
		 * on the same standard error. */
		if (st >= 0 && WIFEXITED(st))
			snprintf(why, sizeof why, "the fork helper %s exited with status %d before it answered C_Initialize",
				 path, WEXITSTATUS(st));
		else if (st >= 0 && WIFSIGNALED(st))
			snprintf(why, sizeof why, "the fork helper %s was killed by signal %d before it answered C_Initialize",
				 path, WTERMSIG(st));
		else
			snprintf(why, sizeof why, "the fork helper %s ended before it answered C_Initialize", path);
		how = why;
	} else if (started) {
		snprintf(why, sizeof why, "the fork helper %s answered C_Initialize with 0x%lx", path,
			 (unsigned long)rv);
		how = why;
	}
	/* A helper that could not be started has been reported already. */
	if (how)
		report("%s (in the fork helper; until it is started again, after %u s at first, doubling up to %u s, "
		       "C_Initialize answers 0x%lx at once; each reason is reported once)",
		       how, BACKOFF_FIRST_MS / 1000, BACKOFF_MAX_MS / 1000, (unsigned long)rv);
	return rv;
}

CK_RV lib_initialize(CK_FLAGS flags)
{
	char why[1024];
	CK_RV rv = CKR_OK;
	int helper;

	pthread_mutex_lock(&state_mu);
	if (LOAD(initialized)) {
		pthread_mutex_unlock(&state_mu);
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	}
	helper = LOAD(forked) || force_helper();
	if (!helper) {
		STORE(mode, MODE_INPROC);
		rv = send_initialize(flags, 0, why, sizeof why);
		if (rv != CKR_OK)
			STORE(mode, MODE_NONE);
		if (rv == WIRE_RV_USE_HELPER)
			helper = 1; /* the config file asks for the helper */
		else if (rv != CKR_OK && why[0])
			report("%s", why);
	}
	if (helper)
		rv = helper_initialize(flags);
	if (rv == CKR_OK) {
		STORE(initialized, 1);
		/* Go is usable here: keep what forked children will need. */
		if (!LOAD(forked))
			cred_keep();
	}
	pthread_mutex_unlock(&state_mu);
	return rv;
}

CK_RV lib_finalize(void)
{
	call c;
	CK_RV rv;
	int helper;

	pthread_mutex_lock(&state_mu);
	if (!LOAD(initialized)) {
		pthread_mutex_unlock(&state_mu);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	helper = LOAD(mode) == MODE_HELPER;

	call_begin(&c, WIRE_FINALIZE);
	if (call_send(&c))
		call_check(&c);
	rv = call_end(&c);

	/* A helper that has died or broken its stream holds nothing any more:
	 * the library is finalized whatever it answered, so that the
	 * application can initialize again. */
	if (rv == CKR_OK || (helper && helper_is_broken())) {
		STORE(initialized, 0);
		STORE(mode, MODE_NONE);
		if (helper)
			helper_stop();
		cred_drop();
	}
	pthread_mutex_unlock(&state_mu);
	return rv;
}

/* ---- slot events (operation life cycle) ---- */

uint64_t lib_wait_slice_ms(void)
{
	return LOAD(mode) == MODE_HELPER ? 0 : 1000;
}
