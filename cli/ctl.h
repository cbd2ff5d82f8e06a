/*
 * ctl.h: jobpoolctl's command table entry and what its commands share (ctl.c).
 *
 * A command is one ctl-*.c file that defines a struct ctl_cmd: its name, usage, help
 * line, the options it takes, flags saying what ctl_run() does for it (connect, job
 * ids), and the functions that run it. ctl_run() parses the options into a struct
 * ctl_run, checks the operands, connects, calls exec, then flushes stdout and closes
 * the connection; jobpoolctl.c holds the table and makes `jobpoolctl -h` from it.
 *
 * Exit statuses: 0 success; 1 a job ended failed, timed out or cancelled, or a cancel
 * was refused; 2 bad usage; 3 the command could not be carried out (the daemon cannot
 * be reached, answered an error, or input/output failed).
 */

#ifndef CTL_H
#define CTL_H

#include <stdint.h>
#include <stdio.h>

#include "jobpool.h"

#define EXIT_JOBFAIL	1
#define EXIT_USAGE	2
#define EXIT_DAEMON	3

/* What comes before a command in every usage line. */
#define CTL_SYNOPSIS	"jobpoolctl [-s socket] [--json]"

/* Room for what names a request in errors: "verb id". */
#define CTL_WHAT_MAX	64

/* map -j: the most jobs in flight. */
#define CTL_WINDOW_MAX	(1024 * 1024)

/* The options a command may take besides --json and -h (struct ctl_cmd's options). */
#define CTL_O_QUEUE	0x001	/* -q, --queue: opts.queue */
#define CTL_O_PRIO	0x002	/* -p, --prio, --priority: opts.priority */
#define CTL_O_DELAY	0x004	/* --delay: opts.delay_ms */
#define CTL_O_TIMEOUT	0x008	/* --timeout: opts.timeout_ms */
#define CTL_O_NONBLOCK	0x010	/* -n, --nonblock: JOBPOOL_NONBLOCK, opts.flags */
#define CTL_O_WAIT	0x020	/* -w, --wait: wait */
#define CTL_O_RAW	0x040	/* -r, --raw: raw */
#define CTL_O_KEEP	0x080	/* -k, --keep-order: keep */
#define CTL_O_WINDOW	0x100	/* -j, --window: window */
#define CTL_O_ALL	0x200	/* -a, --all: all */
#define CTL_O_REDIS	0x400	/* --redis, --stream: redis, stream (no daemon) */
#define CTL_O_TYPE	0x800	/* --type: type */
#define CTL_O_SINCE	0x1000	/* --since: since */
#define CTL_O_FOLLOW	0x2000	/* -f, --follow: follow */
#define CTL_O_KEY	0x4000	/* --key: key (the job's key, SUBMIT key=) */
#define CTL_O_IDEM	0x8000	/* --idem: idem (an idempotency token) */

/* What ctl_run() does for a command (struct ctl_cmd's flags). */
#define CTL_CONNECT	0x1	/* connects: exec runs with r->jp, closed after it */
#define CTL_IDS		0x2	/* the operands are job ids (r->ids), at least one */

/* One run of a command: its options and operands, and what ctl_run() made for it. */
struct ctl_run {
	const struct ctl_cmd		 *cmd;

	struct jobpool_submit_opts	  opts;		/* -q, -p, --delay, --timeout, -n */
	int				  wait;
	int				  raw;
	int				  keep;
	int				  all;
	uint64_t			  window;	/* 0: not given */
	const char			 *redis;	/* --redis URL: no daemon */
	const char			 *stream;	/* --stream */
	const char			 *type;		/* events --type */
	const char			 *since;	/* events --since */
	int				  follow;	/* events -f */
	const char			 *key;		/* --key: the jobs' key */
	const char			 *idem;		/* submit --idem */

	int				  argc;		/* the operands */
	char				**argv;
	uint64_t			 *ids;		/* the operands as job ids */
	struct jobpool			 *jp;		/* CTL_CONNECT */
	void				 *data;		/* check's, for exec; freed after */
};

/* A command's table entry (tmux's cmd_entry, git's builtin flags). */
struct ctl_cmd {
	const char	 *name;
	const char	 *usage[2];	/* after the name; a second form, or NULL */
	const char	 *help;		/* what it does, for jobpoolctl -h */
	int		  options;	/* CTL_O_* */
	int		  maxargs;	/* operands at most, or -1 */
	const char	 *toomany;	/* why not more, or NULL */
	int		  flags;	/* CTL_CONNECT, CTL_IDS */

	/* Before connecting: 0, or an exit status after saying why. */
	int		(*check)(struct ctl_run *);
	/* Run the command; the exit status. */
	int		(*exec)(struct ctl_run *);
};

extern const struct ctl_cmd	ctl_submit_cmd, ctl_map_cmd, ctl_status_cmd, ctl_wait_cmd,
				ctl_cancel_cmd, ctl_dead_cmd, ctl_retry_cmd, ctl_reload_cmd,
				ctl_ping_cmd, ctl_top_cmd, ctl_events_cmd, ctl_pause_cmd,
				ctl_resume_cmd;

extern const char	*ctl_socket;		/* -s, or NULL for the default */
extern int		 ctl_json;		/* --json */
extern int		 ctl_progress_shown;	/* a progress line is on stderr */

/* ctl-redis.c: submit --redis. */
int	ctl_redis_submit(const struct ctl_run *, const void *, size_t);

/* Running a command. */
int	ctl_run(const struct ctl_cmd *, int, char **);
void	ctl_usage_line(FILE *, const struct ctl_cmd *);
int	ctl_usage_error(const struct ctl_run *);
int	ctl_check_ids(struct ctl_run *);

/* Errors, with the "jobpoolctl: " prefix; what names the command or the operation. */
void	ctl_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	ctl_progress_clear(void);
void	ctl_jperr(struct jobpool *, const char *, int);
void	ctl_err_reply(const char *, const char *);
void	ctl_job_failed(uint64_t, uint64_t, const char *, const void *, size_t);

/* Talking to the daemon, and stdout. */
struct jobpool	*ctl_connect(void);
int	ctl_request(struct jobpool *, const char *, const char *, struct jobpool_msg *);
int	ctl_request_id(struct jobpool *, const char *, uint64_t, char [CTL_WHAT_MAX],
	    struct jobpool_msg *);
int	ctl_per_id(struct jobpool *, const char *, const uint64_t *, int);
int	ctl_flush_stdout(void);
void	ctl_print_result(const struct ctl_run *, uint64_t,
	    const struct jobpool_result *);
int	ctl_parse_id(const char *, uint64_t *);
char	*ctl_token(char **);

/* JSON output. */
void	json_string(FILE *, const void *, size_t);
void	json_cstring(FILE *, const char *);
void	json_value(FILE *, const char *);
void	json_member(FILE *, int, const char *, const char *);
void	json_result(FILE *, uint64_t, uint64_t, const char *, const void *, size_t);

/* Records: the lines of a STATS, HISTORY or DEAD body (type, name, key=value words). */
struct stats_rec {
	const char	*type;
	const char	*name;
	size_t		 n;
	char		**keys;
	char		**vals;
};

/* A column of a table: its title, the key it shows (NULL: the name), alignment. */
struct table_col {
	const char	*title;
	const char	*key;
	int		 right;
};

int		 stats_parse(char *, struct stats_rec **, size_t *);
int		 stats_reply(const struct jobpool_msg *, const char *, char **,
		     struct stats_rec **, size_t *);
const char	*stats_get(const struct stats_rec *, const char *);
void		 stats_free(struct stats_rec *, size_t);
void		 stats_json_rec(const struct stats_rec *, const char *);
void		 stats_json_array(const struct stats_rec *, size_t, const char *,
		     const char *);
void		 table_print(const struct table_col *, size_t, const struct stats_rec *,
		     size_t, const char *);
void		 table_fprint(FILE *, const struct table_col *, size_t,
		     const struct stats_rec *, size_t, const char *);

/* Readable numbers: a duration in us, a size in KiB. */
void		 ctl_fmt_us(char *, size_t, uint64_t);
void		 ctl_fmt_kib(char *, size_t, uint64_t);

/*
 * The monitoring views of STATS records (status, top): per queue a "queue" record
 * (shown by the queue and the flow columns) and two "latency" records (wait, run), per
 * worker a "worker" record, with readable values, for table_print with these columns.
 * Free with stats_free.
 */
int		 stats_view(const struct stats_rec *, size_t, struct stats_rec **,
		     size_t *);
extern const struct table_col	stats_view_queue_cols[], stats_view_flow_cols[],
				stats_view_latency_cols[], stats_view_worker_cols[];
extern const size_t		stats_view_queue_ncols, stats_view_flow_ncols,
				stats_view_latency_ncols, stats_view_worker_ncols;

/* ctl-status.c: STATS records as status shows them (top too), in text or JSON. */
int		 status_fprint(FILE *, const struct stats_rec *, size_t);
void		 stats_print_json(const struct stats_rec *, size_t);

#endif /* CTL_H */
