/*
 * log.h: jobpoold's logging. Levels are syslog priorities. Under systemd
 * ($JOURNAL_STREAM names our stderr) each message is one line with a "<N>" priority
 * prefix, which journald turns into the entry's priority; on a terminal each line
 * carries a timestamp and the level instead.
 */

#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <syslog.h>

void	log_init(int level, const char *ident);
/* The level in force (log_set_level): lines above it are not made. */
extern int	log_level;
void	log_set_level(int level);
int	log_get_level(void);
/* Parse "error", "warning", "notice", "info" or "debug"; -1 if none. */
int	log_level_parse(const char *name);
void	log_vlog(int pri, const char *fmt, va_list ap)
	    __attribute__((format(printf, 2, 0)));
void	log_msg(int pri, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like log_warnx, with ": strerror(errno)" appended. */
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A message about a job and/or a worker: under systemd it goes to the journal with the
 * fields JOB_ID=, QUEUE= and WORKER_PID= (so `journalctl JOB_ID=42` finds a job's
 * lines); elsewhere it is an ordinary line. job_id 0 and pid 0 mean "none".
 */
void	log_job(int pri, unsigned long long job_id, const char *queue, long pid,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/*
 * A rate limit for lines that a client can cause (refused peers, lost framing): at
 * most burst lines in each window_ms; the lines held back are counted, and when the
 * window ends (a one-shot timer on the master's event base) sum() is called to say how
 * many. Set burst, window_ms and sum; the rest starts zeroed.
 */
struct log_limit {
	unsigned	 burst;
	unsigned	 window_ms;
	void		(*sum)(unsigned long held_back, unsigned long long span_ms);
	unsigned long long start_ms;
	unsigned	 logged;
	unsigned long	 held;
	int		 armed;
};
/* May one more such line be logged now? 0: it was counted instead. */
int	log_limit_pass(struct log_limit *l);
/* Say now how many were held back, and start afresh (at exit). */
void	log_limit_reset(struct log_limit *l);

/* Start-up failures and broken invariants only: log at LOG_CRIT and exit(1). */
void	fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* LOG_H */
