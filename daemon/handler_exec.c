/*
 * handler_exec.c: exec handlers ("exec:/path/prog [ARG ...]"): a program run per job.
 *
 * The command line is split into words once, when the worker starts, like a minimal
 * shell would split it: blanks separate words, '...' quotes everything literally,
 * "..." quotes everything but \" and \\, and a backslash outside quotes takes the next
 * character literally. There are no expansions of any kind (no $VAR, no globs, no ~)
 * and no shell is involved: the program is started directly with posix_spawn(), without
 * a PATH search, so PATH should be absolute. A user who wants a shell writes one.
 *
 * The contract with the program, per job:
 *   - it leads its own process group, with default signal dispositions and an empty
 *     signal mask, and inherits nothing of the worker's but the environment, the
 *     working directory and the three pipes below;
 *   - the payload is on stdin (then EOF), the result is what it writes to stdout (at
 *     most max_payload bytes: beyond that the group is killed and the job fails for
 *     good), and stderr is captured (its last 4 KiB) into the error text and the log;
 *   - exit status 0 is success, 65 (EX_DATAERR) a permanent failure that is never
 *     retried, anything else (75, EX_TEMPFAIL, by convention) a failure that may be
 *     retried, and so is death by a signal;
 *   - when the job is cancelled or times out, the whole group gets SIGTERM (so a shell
 *     `trap` can clean up), and SIGKILL if the program has not exited within the
 *     queue's grace period;
 *   - once the program has exited, its process group is killed with SIGKILL, also after
 *     a success: nothing it left running in the background survives the job, and its
 *     output is what was written when it exited (a background child holding stdout
 *     open is not waited for).
 *
 * The worker never blocks on the program: stdin, stdout and stderr go through one
 * poll() loop, woken by SIGUSR1 on a cancel and at least every 100 ms, and the
 * program's exit is seen through a pidfd (or, on kernels without one, waitid(WNOWAIT)
 * at each wake-up). The process group's leader is reaped only after the group has been
 * killed, so its id cannot have been reused by then.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "frame.h"
#include "handler.h"
#include "log.h"

#define EXEC_TICK_MS		100		/* longest poll() between looks at cancel */
#define EXEC_READ_CHUNK		(64 * 1024)
#define EXEC_STDERR_KEEP	4096		/* stderr bytes kept: the last ones */
#define EXEC_STDERR_HEAD	200		/* and the first line, for the log */
#define EXEC_DRAIN_MAX		(256 * 1024)	/* stderr read after the exit, at most */

extern char	**environ;

struct exec {
	char			**argv;		/* argv[0] is the program */
	char			 *words;	/* the strings argv points to */
	uint32_t		  max_payload;
	int			  no_pidfd;	/* pidfd_open() is not available */
	posix_spawnattr_t	  attr;
	posix_spawn_file_actions_t fa;
	int			  fa_fds[3];	/* the pipe ends fa was built for; -1: none */

	/* The running job's stderr: a ring of its last bytes, and its first ones. */
	char			  etail[EXEC_STDERR_KEEP];
	size_t			  elen;		/* bytes seen in all */
	char			  ehead[EXEC_STDERR_HEAD];
	size_t			  ehlen;
};

/*
 * Split s into words (see the top of the file) into x->words and x->argv. 0, or -1
 * with *cause.
 */
static int
exec_split(struct exec *x, const char *s, char **cause)
{
	const char	*line = s;
	size_t		 n = 0, max;
	char		*w;
	char		 q;
	int		 inword = 0;

	max = strlen(s) / 2 + 2;
	if ((x->words = malloc(strlen(s) + 1)) == NULL ||
	    (x->argv = calloc(max, sizeof *x->argv)) == NULL) {
		*cause = strdup("exec: out of memory");
		return (-1);
	}
	w = x->words;
	while (*s != '\0') {
		if (*s == ' ' || *s == '\t' || *s == '\n') {
			if (inword) {
				*w++ = '\0';
				inword = 0;
			}
			s++;
			continue;
		}
		if (!inword) {
			x->argv[n++] = w;
			inword = 1;
		}
		if (*s == '\\') {
			if (s[1] == '\0')
				goto trailing;
			*w++ = s[1];
			s += 2;
		} else if (*s == '\'' || *s == '"') {
			q = *s++;
			while (*s != q) {
				if (*s == '\0')
					goto unterminated;
				if (q == '"' && *s == '\\' && (s[1] == '"' || s[1] == '\\'))
					s++;
				*w++ = *s++;
			}
			s++;
		} else
			*w++ = *s++;
	}
	if (inword)
		*w = '\0';
	x->argv[n] = NULL;
	if (n == 0) {
		*cause = strdup("exec: no program after 'exec:'");
		return (-1);
	}
	return (0);

trailing:
	if (asprintf(cause, "exec: a backslash ends the command line '%s'", line) == -1)
		*cause = NULL;
	return (-1);
unterminated:
	if (asprintf(cause, "exec: unterminated %c quote in the command line '%s'", q,
	    line) == -1)
		*cause = NULL;
	return (-1);
}

static void
exec_free(struct exec *x)
{
	if (x == NULL)
		return;
	if (x->fa_fds[0] != -1)
		posix_spawn_file_actions_destroy(&x->fa);
	posix_spawnattr_destroy(&x->attr);
	free(x->argv);
	free(x->words);
	free(x);
}

/*
 * Once per worker: split the command line, check the program can be run, and prepare
 * what every spawn shares. arg is the command line (handler_exec_open).
 */
static int
exec_init(const struct config *cf, const struct queue_config *qc, const char *arg,
    void **state, char **cause)
{
	struct exec		*x;
	struct sigaction	 sa;
	sigset_t		 set;
	int			 fd, fl;

	*state = NULL;
	if ((x = calloc(1, sizeof *x)) == NULL) {
		*cause = strdup("exec: out of memory");
		return (-1);
	}
	x->fa_fds[0] = x->fa_fds[1] = x->fa_fds[2] = -1;
	posix_spawnattr_init(&x->attr);
	if (exec_split(x, arg != NULL ? arg : "", cause) != 0)
		goto fail;
	if (access(x->argv[0], X_OK) != 0) {
		if (asprintf(cause, "exec %s: cannot run it: %s", x->argv[0],
		    strerror(errno)) == -1)
			*cause = NULL;
		goto fail;
	}
	x->max_payload = cf->max_payload;

	/* Its own process group, default dispositions, nothing blocked. */
	sigemptyset(&set);
	posix_spawnattr_setsigmask(&x->attr, &set);
	sigfillset(&set);
	posix_spawnattr_setsigdefault(&x->attr, &set);
	posix_spawnattr_setpgroup(&x->attr, 0);
	posix_spawnattr_setflags(&x->attr, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

	/* The worker's job and result pipes must never reach a program. */
	for (fd = 3; fd <= 4; fd++) {
		if ((fl = fcntl(fd, F_GETFD)) != -1 && !(fl & FD_CLOEXEC))
			(void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
	/*
	 * Our pipe ends must come out above 2 so the spawn's dup2s are real; and a program
	 * that closes stdin early must not kill the worker with SIGPIPE (the program
	 * itself gets SIGPIPE back at its default through SETSIGDEF).
	 */
	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", O_RDWR) == -1) {
			if (asprintf(cause, "exec %s: /dev/null: %s", x->argv[0],
			    strerror(errno)) == -1)
				*cause = NULL;
			goto fail;
		}
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGPIPE, &sa, NULL);

	*state = x;
	return (0);

fail:
	if (*cause == NULL)
		*cause = strdup("exec: out of memory");
	exec_free(x);
	return (-1);
}

static void
exec_fini(void *state)
{
	exec_free(state);
}

static uint64_t
exec_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

/* Keep stderr's first bytes and its last EXEC_STDERR_KEEP. */
static void
exec_stderr_add(struct exec *x, const char *p, size_t n)
{
	size_t	pos, k;

	if (x->ehlen < sizeof x->ehead) {
		k = n < sizeof x->ehead - x->ehlen ? n : sizeof x->ehead - x->ehlen;
		memcpy(x->ehead + x->ehlen, p, k);
		x->ehlen += k;
	}
	if (n > EXEC_STDERR_KEEP) {
		x->elen += n - EXEC_STDERR_KEEP;
		p += n - EXEC_STDERR_KEEP;
		n = EXEC_STDERR_KEEP;
	}
	while (n > 0) {
		pos = x->elen % EXEC_STDERR_KEEP;
		k = EXEC_STDERR_KEEP - pos < n ? EXEC_STDERR_KEEP - pos : n;
		memcpy(x->etail + pos, p, k);
		x->elen += k;
		p += k;
		n -= k;
	}
}

/* Append ": " and the kept stderr (trailing newlines dropped) to out, if any. */
static void
exec_stderr_put(struct exec *x, struct jobpool_output *out)
{
	size_t	n, pos;

	if (x->elen == 0)
		return;
	if (x->elen > EXEC_STDERR_KEEP) {
		pos = x->elen % EXEC_STDERR_KEEP;
		obuf_printf(out, ": [stderr truncated: %zu bytes dropped, the last %d "
		    "follow] ", x->elen - EXEC_STDERR_KEEP, EXEC_STDERR_KEEP);
		obuf_add(out, x->etail + pos, EXEC_STDERR_KEEP - pos);
		obuf_add(out, x->etail, pos);
	} else {
		obuf_add_lit(out, ": ");
		obuf_add(out, x->etail, x->elen);
	}
	n = x->elen < EXEC_STDERR_KEEP ? x->elen : EXEC_STDERR_KEEP;
	while (n > 0 && out->len > 0 && out->buf[out->len - 1] == '\n') {
		out->len--;
		n--;
	}
}

/* The first line of stderr, printable, into buf. */
static const char *
exec_stderr_line(struct exec *x, char *buf, size_t size)
{
	size_t	i;

	for (i = 0; i < x->ehlen && i < size - 1 && x->ehead[i] != '\n'; i++)
		buf[i] = (x->ehead[i] >= 0x20 && x->ehead[i] < 0x7f) ? x->ehead[i] : '?';
	buf[i] = '\0';
	return (buf);
}

/* Describe a wait status: "exit status 3", "killed by signal 9 (Killed)". */
static void
exec_status_put(struct jobpool_output *out, int status)
{
	if (WIFEXITED(status))
		obuf_printf(out, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		obuf_printf(out, "killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		obuf_printf(out, "wait status 0x%x", (unsigned)status);
}

/* (Re)build the spawn's file actions when the pipe ends differ from the last job's. */
static int
exec_file_actions(struct exec *x, int in, int out, int err)
{
	if (x->fa_fds[0] == in && x->fa_fds[1] == out && x->fa_fds[2] == err)
		return (0);
	if (x->fa_fds[0] != -1)
		posix_spawn_file_actions_destroy(&x->fa);
	x->fa_fds[0] = x->fa_fds[1] = x->fa_fds[2] = -1;
	if (posix_spawn_file_actions_init(&x->fa) != 0)
		return (-1);
	/* dup2 clears FD_CLOEXEC on 0-2; the pipes' own fds (above 2) close on exec. */
	if (posix_spawn_file_actions_adddup2(&x->fa, in, 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&x->fa, out, 1) != 0 ||
	    posix_spawn_file_actions_adddup2(&x->fa, err, 2) != 0) {
		posix_spawn_file_actions_destroy(&x->fa);
		return (-1);
	}
	x->fa_fds[0] = in;
	x->fa_fds[1] = out;
	x->fa_fds[2] = err;
	return (0);
}

/* A pidfd for pid, or -1 (then the caller falls back to waitid at each wake-up). */
static int
exec_pidfd(struct exec *x, pid_t pid)
{
#ifdef SYS_pidfd_open
	int	fd;

	if (x->no_pidfd)
		return (-1);
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd == -1 && (errno == ENOSYS || errno == EPERM))
		x->no_pidfd = 1;
	return (fd);	/* pidfd_open() sets close-on-exec itself */
#else
	x->no_pidfd = 1;
	return (-1);
#endif
}

/* Has pid exited? Leave it unreaped, so its process group id stays ours. */
static int
exec_exited(pid_t pid)
{
	siginfo_t	si;

	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1)
		return (errno != EINTR);	/* ECHILD: gone; nothing to wait for */
	return (si.si_pid == pid);
}

static void
exec_close(int *fd)
{
	if (*fd != -1) {
		close(*fd);
		*fd = -1;
	}
}

/* Write what the program's stdin takes of in[*off..len); close it when done or refused. */
static void
exec_feed(int *fd, const char *in, size_t len, size_t *off)
{
	ssize_t	r = write(*fd, in + *off, len - *off);

	if (r > 0)
		*off += (size_t)r;
	/* EPIPE: it stopped reading, which is its business. */
	if (*off == len || (r == -1 && errno != EAGAIN && errno != EINTR))
		exec_close(fd);
}

/* Run the program on one job. */
static int
exec_run(void *state, const char *in, size_t len, struct jobpool_output *out)
{
	struct exec	*x = state;
	struct pollfd	 pfd[4];
	int		 pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	int		 pidfd = -1, status = 0, rc, n, i, timeout, cw, pe, exited = 0;
	int		 termed = 0, killed = 0, overflow = 0, nomem = 0, result;
	int		 ipin, ipout, iperr, ipid;
	size_t		 base = out->len, off = 0, room, drained;
	ssize_t		 r;
	uint64_t	 deadline = 0, now;
	pid_t		 pid;
	char		 ebuf[4096], line[EXEC_STDERR_HEAD + 1];
	const char	*prog = x->argv[0];

	x->elen = x->ehlen = 0;
	if (pipe2(pin, O_CLOEXEC) == -1 || pipe2(pout, O_CLOEXEC) == -1 ||
	    pipe2(perr, O_CLOEXEC) == -1) {
		obuf_printf(out, "exec %s: pipe: %s", prog, strerror(errno));
		goto fail_pipes;
	}
	if (exec_file_actions(x, pin[0], pout[1], perr[1]) != 0) {
		obuf_printf(out, "exec %s: posix_spawn_file_actions: out of memory", prog);
		goto fail_pipes;
	}
	rc = posix_spawn(&pid, prog, &x->fa, &x->attr, x->argv, environ);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	if (rc != 0) {
		close(pin[1]);
		close(pout[0]);
		close(perr[0]);
		obuf_printf(out, "exec %s: cannot run it: %s", prog, strerror(rc));
		log_warnx("exec %s: posix_spawn: %s", prog, strerror(rc));
		return (FRAME_FAILED);
	}
	pidfd = exec_pidfd(x, pid);
	worker_child(worker_current(), pid);

	/*
	 * Only our end of stdin is non-blocking: the program's ends are left alone. A
	 * payload that fits the pipe goes in now, without a poll() to learn that an empty
	 * pipe has room; the rest waits for the loop.
	 */
	if (len == 0 || fcntl(pin[1], F_SETFL, O_NONBLOCK) == -1)
		exec_close(&pin[1]);
	else
		exec_feed(&pin[1], in, len, &off);

	while (!exited) {
		if (!termed && jobpool_cancelled()) {
			/* The whole group, so a shell's foreground child goes too. */
			(void)kill(-pid, SIGTERM);
			termed = 1;
			deadline = exec_now_ms() + worker_grace_ms();
		}
		timeout = EXEC_TICK_MS;
		if (termed && !killed) {
			now = exec_now_ms();
			if (now >= deadline) {
				(void)kill(-pid, SIGKILL);
				killed = 1;
			} else if (deadline - now < (uint64_t)timeout)
				timeout = (int)(deadline - now);
		}

		n = 0;
		ipin = ipout = iperr = ipid = -1;
		if (pin[1] != -1) {
			pfd[ipin = n++] = (struct pollfd){ pin[1], POLLOUT, 0 };
		}
		if (pout[0] != -1)
			pfd[ipout = n++] = (struct pollfd){ pout[0], POLLIN, 0 };
		if (perr[0] != -1)
			pfd[iperr = n++] = (struct pollfd){ perr[0], POLLIN, 0 };
		if (pidfd != -1)
			pfd[ipid = n++] = (struct pollfd){ pidfd, POLLIN, 0 };
		else if (pout[0] == -1 && perr[0] == -1 && timeout > 10)
			timeout = 10;	/* nothing but the clock tells us it exited */
		if ((cw = worker_child_wait_ms()) >= 0 && cw < timeout)
			timeout = cw;	/* the master must hear of the group by then */

		rc = poll(pfd, (nfds_t)n, timeout);
		pe = errno;
		worker_child_due();
		if (rc == -1) {
			if (pe == EINTR)
				continue;	/* SIGUSR1: look at jobpool_cancelled() */
			errno = pe;
			log_warn("exec %s: poll", prog);
			if (!killed)
				(void)kill(-pid, SIGKILL);
			killed = 1;
			continue;
		}

		if (ipin != -1 && pfd[ipin].revents != 0)
			exec_feed(&pin[1], in, len, &off);
		if (ipout != -1 && pfd[ipout].revents != 0) {
			room = x->max_payload - (out->len - base) + 1;
			if (room > EXEC_READ_CHUNK)
				room = EXEC_READ_CHUNK;
			if (obuf_reserve(out, room) != 0) {
				nomem = 1;
				r = 0;
			} else
				r = read(pout[0], out->buf + out->len, room);
			if (r > 0) {
				out->len += (size_t)r;
				if (out->len - base > x->max_payload)
					overflow = 1;
			}
			if (r == 0 || overflow || nomem ||
			    (r == -1 && errno != EAGAIN && errno != EINTR)) {
				exec_close(&pout[0]);
				if ((overflow || nomem) && !killed) {
					(void)kill(-pid, SIGKILL);
					killed = 1;
				}
			}
		}
		if (iperr != -1 && pfd[iperr].revents != 0) {
			r = read(perr[0], ebuf, sizeof ebuf);
			if (r > 0)
				exec_stderr_add(x, ebuf, (size_t)r);
			else if (r == 0 || (errno != EAGAIN && errno != EINTR))
				exec_close(&perr[0]);
		}
		if (ipid != -1)
			exited = (pfd[ipid].revents != 0);
		else
			exited = exec_exited(pid);
	}

	/*
	 * The leader has exited and is not reaped yet, so -pid is still its group: kill
	 * whatever it left behind, take what is already in the pipes (without waiting for
	 * an EOF that a dying grandchild might still hold), then reap.
	 */
	(void)kill(-pid, SIGKILL);
	exec_close(&pin[1]);
	for (drained = 0; pout[0] != -1 || perr[0] != -1;) {
		n = 0;
		ipout = iperr = -1;
		if (pout[0] != -1)
			pfd[ipout = n++] = (struct pollfd){ pout[0], POLLIN, 0 };
		if (perr[0] != -1)
			pfd[iperr = n++] = (struct pollfd){ perr[0], POLLIN, 0 };
		if (poll(pfd, (nfds_t)n, 0) <= 0)
			break;
		if (ipout != -1 && pfd[ipout].revents != 0) {
			room = x->max_payload - (out->len - base) + 1;
			if (room > EXEC_READ_CHUNK)
				room = EXEC_READ_CHUNK;
			r = 0;
			if (obuf_reserve(out, room) != 0)
				nomem = 1;
			else if ((r = read(pout[0], out->buf + out->len, room)) > 0) {
				out->len += (size_t)r;
				if (out->len - base > x->max_payload)
					overflow = 1;
			}
			if (r <= 0 || overflow || nomem)
				exec_close(&pout[0]);
		}
		if (iperr != -1 && pfd[iperr].revents != 0) {
			r = read(perr[0], ebuf, sizeof ebuf);
			if (r > 0) {
				exec_stderr_add(x, ebuf, (size_t)r);
				drained += (size_t)r;
			}
			if (r <= 0 || drained > EXEC_DRAIN_MAX)
				exec_close(&perr[0]);
		}
	}
	exec_close(&pout[0]);
	exec_close(&perr[0]);
	worker_child(worker_current(), 0);	/* killed: nothing of it is left */
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	exec_close(&pidfd);

	/* The verdict. */
	if (termed) {
		out->len = base;
		if (killed && !(WIFEXITED(status) ||
		    (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)))
			obuf_printf(out, "%s did not exit within the grace period (%u "
			    "ms) after SIGTERM and was killed", prog, worker_grace_ms());
		else {
			obuf_printf(out, "%s exited on SIGTERM (", prog);
			exec_status_put(out, status);
			obuf_add_lit(out, ")");
		}
		log_job(LOG_INFO, worker_current(), worker_queue_name(), (long)getpid(),
		    "exec %s: job %llu: %.*s", prog, (unsigned long long)worker_current(),
		    (int)(out->len - base), out->buf + base);
		return (FRAME_CANCELLED);
	}
	if (overflow || nomem) {
		out->len = base;
		if (overflow)
			obuf_printf(out, "exec %s: its output is larger than max_payload "
			    "(%u bytes); the program was killed", prog, x->max_payload);
		else
			obuf_printf(out, "exec %s: out of memory for its output", prog);
		log_job(LOG_WARNING, worker_current(), worker_queue_name(), (long)getpid(),
		    "job %llu: %.*s", (unsigned long long)worker_current(),
		    (int)(out->len - base), out->buf + base);
		return (overflow ? FRAME_PERMANENT : FRAME_FAILED);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return (FRAME_OK);
	out->len = base;
	exec_status_put(out, status);
	i = (int)(out->len - base);
	exec_stderr_put(x, out);
	result = WIFEXITED(status) && WEXITSTATUS(status) == EX_DATAERR ?
	    FRAME_PERMANENT : FRAME_FAILED;
	/* One line per failed job: how it ended and the first line of its stderr. */
	log_job(LOG_WARNING, worker_current(), worker_queue_name(), (long)getpid(),
	    "exec %s: job %llu failed%s: %.*s%s%s", prog,
	    (unsigned long long)worker_current(),
	    result == FRAME_PERMANENT ? " permanently" : "", i, out->buf + base,
	    x->ehlen > 0 ? ": " : "", exec_stderr_line(x, line, sizeof line));
	return (result);

fail_pipes:
	exec_close(&pin[0]);
	exec_close(&pin[1]);
	exec_close(&pout[0]);
	exec_close(&pout[1]);
	exec_close(&perr[0]);
	exec_close(&perr[1]);
	return (FRAME_FAILED);
}

/*
 * "exec:PATH [ARG ...]": fill *h; *arg is the command line after "exec:", which
 * exec_init() splits and checks (so a bad one marks the queue failed, once).
 */
int
handler_exec_open(const char *spec, struct handler *h, const char **arg, char **cause)
{
	*cause = NULL;
	if (strncmp(spec, CONFIG_HANDLER_EXEC, strlen(CONFIG_HANDLER_EXEC)) == 0)
		spec += strlen(CONFIG_HANDLER_EXEC);
	memset(h, 0, sizeof *h);
	h->name = "exec";
	h->init = exec_init;
	h->run = exec_run;
	h->fini = exec_fini;
	h->own_cleanup = 1;	/* the program cleans up on SIGTERM, and the text says how */
	h->unheld = 1;		/* a result is written before the next program starts */
	*arg = spec;
	return (0);
}
