/*
 * log.c: one line per message on stderr, with a "<N>" priority prefix for journald when
 * stderr is the journal stream, or a timestamp and level name on a terminal or file.
 * Workers log through the same code with their pid in the ident.
 */

#include "autoconf.h"

#include <sys/stat.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include <event2/event.h>

#include "jobpoold.h"
#include "log.h"

int		 log_level = LOG_INFO;	/* log.h: read inline on the job's path */
static int	 log_journal;
static char	 log_ident[64] = "jobpoold";

static const char *const log_names[] = {
	"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"
};

/* Is stderr the journal stream systemd told us about in $JOURNAL_STREAM (dev:ino)? */
static int
log_stderr_is_journal(void)
{
	const char		*js = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 sb;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return (0);
	if (fstat(STDERR_FILENO, &sb) != 0)
		return (0);
	return ((unsigned long long)sb.st_dev == dev &&
	    (unsigned long long)sb.st_ino == ino);
}

/* Set the level, the ident, and whether lines go to the journal. */
void
log_init(int level, const char *ident)
{
	log_level = level;
	if (ident != NULL)
		snprintf(log_ident, sizeof log_ident, "%s", ident);
	log_journal = log_stderr_is_journal();
}

void
log_set_level(int level)
{
	log_level = level;
}

int
log_get_level(void)
{
	return (log_level);
}

/* Parse a level name. */
int
log_level_parse(const char *name)
{
	size_t	i;

	for (i = LOG_ERR; i < sizeof log_names / sizeof log_names[0]; i++) {
		if (strcmp(name, log_names[i]) == 0)
			return ((int)i);
	}
	if (strcmp(name, "warn") == 0)
		return (LOG_WARNING);
	return (-1);
}

/* Write one message as one line: a single write(2), so lines from workers do not mix. */
void
log_vlog(int pri, const char *fmt, va_list ap)
{
	char		 line[2048];
	int		 n, m;
	struct timespec	 ts;
	struct tm	 tm;
	int		 saved = errno;

	if (pri > log_level)
		return;
	if (log_journal)
		n = snprintf(line, sizeof line, "<%d>", pri);
	else {
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = (int)strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
		n += snprintf(line + n, sizeof line - n, ".%03ld %s[%ld] %s: ",
		    ts.tv_nsec / 1000000, log_ident, (long)getpid(),
		    log_names[pri & 7]);
	}
	m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof line - 2)
		n = sizeof line - 2;
	/* One message, one line: fold embedded newlines. */
	for (m = 0; m < n; m++) {
		if (line[m] == '\n')
			line[m] = ' ';
	}
	line[n++] = '\n';
	(void)write(STDERR_FILENO, line, n);
	errno = saved;
}

/* Log at an explicit priority. */
void
log_msg(int pri, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vlog(pri, fmt, ap);
	va_end(ap);
}

/* A job's or worker's message, with structured fields when the journal is there. */
void
log_job(int pri, unsigned long long job_id, const char *queue, long pid,
    const char *fmt, ...)
{
	char		msg[1024], fmsg[1040], fpri[16], fident[80], fq[96], jid[32];
	char		wpid[32];
	struct iovec	iov[6];
	va_list		ap;
	int		saved = errno, n = 0;

	if (pri > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (log_journal) {
#define LOG_FIELD(buf, ...) do {					\
	int l_ = snprintf(buf, sizeof buf, __VA_ARGS__);		\
	iov[n].iov_base = buf;						\
	iov[n++].iov_len = l_ < (int)sizeof buf ? (size_t)l_ : sizeof buf - 1; \
} while (0)
		LOG_FIELD(fmsg, "MESSAGE=%s", msg);
		LOG_FIELD(fpri, "PRIORITY=%d", pri);
		LOG_FIELD(fident, "SYSLOG_IDENTIFIER=%s", log_ident);
		/* Fields without a value are left out rather than sent empty. */
		if (queue != NULL && *queue != '\0')
			LOG_FIELD(fq, "QUEUE=%s", queue);
		if (job_id != 0)
			LOG_FIELD(jid, "JOB_ID=%llu", job_id);
		if (pid != 0)
			LOG_FIELD(wpid, "WORKER_PID=%ld", pid);
#undef LOG_FIELD
		if (sd_journal_sendv(iov, n) >= 0) {
			errno = saved;
			return;
		}
	}
	log_msg(pri, "%s", msg);
	errno = saved;
}

#define LOG_FN(fn, pri)						\
void								\
fn(const char *fmt, ...)					\
{								\
	va_list	ap;						\
								\
	va_start(ap, fmt);					\
	log_vlog(pri, fmt, ap);					\
	va_end(ap);						\
}

LOG_FN(log_debug, LOG_DEBUG)
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_notice, LOG_NOTICE)
LOG_FN(log_warnx, LOG_WARNING)
LOG_FN(log_errx, LOG_ERR)

/* Log with ": strerror(errno)" appended. */
static void
log_verr(int pri, const char *fmt, va_list ap)
{
	char	buf[1024];
	int	saved = errno;

	vsnprintf(buf, sizeof buf, fmt, ap);
	errno = saved;
	log_msg(pri, "%s: %s", buf, strerror(saved));
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_verr(LOG_WARNING, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_verr(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vlog(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}

/* The window of l ends: say how many lines it held back. */
static void
log_limit_sum(struct log_limit *l)
{
	if (l->held > 0)
		l->sum(l->held, now_ms() - l->start_ms);
	l->held = 0;
}

static void
log_limit_cb(evutil_socket_t fd, short events, void *arg)
{
	struct log_limit	*l = arg;

	l->armed = 0;
	log_limit_sum(l);
}

int
log_limit_pass(struct log_limit *l)
{
	unsigned long long	now = now_ms(), left;
	struct timeval		tv;

	if (l->start_ms == 0 || now - l->start_ms >= l->window_ms) {
		log_limit_sum(l);	/* its timer has not run yet */
		l->start_ms = now;
		l->logged = 0;
	}
	if (l->logged < l->burst) {
		l->logged++;
		return (1);
	}
	if (l->held++ == 0 && !l->armed && master_base != NULL) {
		left = l->start_ms + l->window_ms - now;
		tv.tv_sec = (time_t)(left / 1000);
		tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
		if (event_base_once(master_base, -1, EV_TIMEOUT, log_limit_cb, l,
		    &tv) == 0)
			l->armed = 1;
	}
	return (0);
}

void
log_limit_reset(struct log_limit *l)
{
	log_limit_sum(l);
	l->start_ms = 0;
	l->logged = 0;
	l->armed = 0;	/* a pending timer goes with its event base */
}
