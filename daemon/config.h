/*
 * config.h: jobpoold's configuration, from a libconfig file or the embedded defaults.
 *
 * Loading goes in phases, as in sshd: every field unset, parse the file, fill defaults,
 * validate. A struct config is immutable once loaded; a reload loads a whole new one and
 * keeps the old one if that fails. The caller owns what config_load() returns.
 */

#ifndef CONFIG_H
#define CONFIG_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#define CONFIG_DEFAULT_PATH	SYSCONFDIR "/jobpool/jobpool.conf"
#define CONFIG_EMBEDDED_NAME	"<embedded defaults>"
#define CONFIG_DEF_DASHBOARD_DIR	PKGDATADIR "/dashboard"
#define CONFIG_DEF_JAVASCRIPT	"/usr/share/javascript"

/* The largest max_payload a config may set; frames between master and workers are
 * sanity-checked against this, not the setting, which a reload may change. */
#define CONFIG_MAX_MAX_PAYLOAD	268435456
#define CONFIG_FRAME_MAX	(CONFIG_MAX_MAX_PAYLOAD + 4096)
/* The most jobs in one batch (batch_size): dispatch gathers them on its stack. */
#define CONFIG_MAX_BATCH_SIZE	1024

/* A queue's handler is a built-in's name, or one of these followed by a path. */
#define CONFIG_HANDLER_PLUGIN	"plugin:"
#define CONFIG_HANDLER_EXEC	"exec:"

/*
 * Issue 17: a queue's source, a Redis stream read through a consumer group
 * (source_redis.c). Fixed arrays, not pointers: a queue's copy of its config, and a
 * reload's comparison of it, stay plain struct copies. redis[0] == '\0': none.
 */
#define CONFIG_SOURCE_URL_MAX	512
#define CONFIG_SOURCE_NAME_MAX	256
struct source_config {
	char		 redis[CONFIG_SOURCE_URL_MAX];	/* redis://[user:pass@]host[:port][/db] */
	char		 stream[CONFIG_SOURCE_NAME_MAX];
	char		 group[CONFIG_SOURCE_NAME_MAX];	/* default "jobpool" */
	char		 consumer[CONFIG_SOURCE_NAME_MAX]; /* default: the host name */
	uint32_t	 claim_ms;	/* others' entries idle this long are claimed; default 60 s */
	uint32_t	 result_ms;	/* results as keys <stream>:result:<id> living this long; 0: none */
	char		 password_file[CONFIG_SOURCE_NAME_MAX]; /* the password, read at each connect */
};

/* http_output: a job's result is the response's body, or the response as JSON. */
#define CONFIG_HTTP_OUTPUT_BODY		0
#define CONFIG_HTTP_OUTPUT_RESPONSE	1

struct queue_config {
	char		*name;		/* [A-Za-z0-9_.-]{1,63}, unique */
	char		*handler;	/* "echo", "sha256", "spin", "sleep", "http", "plugin:PATH [ARG]", "exec:PATH [ARGS]" */
	int		 line;		/* where the queue is defined, for messages */
	int		 workers;	/* processes; the file may say 0 for one per CPU */
	uint32_t	 max_jobs;	/* queued + delayed jobs before backpressure */
	uint64_t	 max_bytes;	/* their payload bytes before backpressure */
	int		 prio_min;	/* accepted priority range, inclusive */
	int		 prio_max;
	uint32_t	 timeout_ms;	/* default per-attempt timeout, 0: none */
	uint32_t	 batch;		/* jobs in flight to one worker at most */
	uint32_t	 concurrency;	/* jobs one worker runs at once (IO handlers); default 1,
					   http: 16 */
	uint32_t	 batch_size;	/* issue 15: jobs per call of a batch handler; 0: none */
	uint32_t	 batch_wait_ms;	/* a short batch goes once its oldest waited this */

	/* Issue 15: handler = "http" (handler_http.c), its bounds. */
	uint32_t	 http_max_response;	/* body bytes; default 1 MiB */
	uint32_t	 http_max_redirects;	/* followed; 0: none; default 5 */
	uint32_t	 http_timeout_ms;	/* a request's whole time; default 30 s */
	uint32_t	 http_connect_timeout_ms; /* its connection's; default 10 s */
	uint32_t	 http_max_host_connections; /* per host and worker; 0: concurrency */
	int		 http_output;		/* CONFIG_HTTP_OUTPUT_*: what a result is */

	uint32_t	 retries;	/* extra attempts after a failed attempt */
	int		 paused;	/* made paused (PAUSE); a reload leaves a queue's pause be */

	/* Issue 3: lifecycle. */
	uint32_t	 backoff_base_ms;	/* retry delay base; default 1000 */
	uint32_t	 backoff_max_ms;	/* retry delay cap; default 60000 */
	double		 backoff_jitter;	/* 0..1: delay spread +-jitter*delay; default 0.2 */
	uint32_t	 grace_ms;		/* cancel/timeout: cooperative, then kill; default 5000 */
	uint32_t	 max_running;		/* jobs running at once across workers; 0: workers */
	double		 rate;			/* jobs started per second; 0: unlimited */
	uint32_t	 burst;			/* token bucket size; default max(1, ceil(rate)) */
	/* Issue 15: the same limits for each job key (keys.c). */
	uint32_t	 max_running_per_key;	/* jobs of one key running at once; 0: no limit */
	double		 rate_per_key;		/* jobs of one key started per second; 0: unlimited */
	uint32_t	 burst_per_key;		/* its bucket; default max(1, ceil(rate_per_key)) */
	uint32_t	 max_jobs_per_worker;	/* recycle a worker after this many jobs; 0: never */
	uint64_t	 max_worker_rss;	/* recycle a worker above this RSS (bytes); 0: never */
	uint32_t	 poison_after;		/* a job that kills this many workers in a row is dead; 0: off; default 3 */

	/* Issue 4: privileges and limits of this queue's workers. */
	char		*user;			/* run workers as this user (root only); NULL: the daemon's */
	char		*group;			/* and group; NULL: the user's primary group */
	uint64_t	 rlimit_as;		/* RLIMIT_AS bytes; 0: unchanged */
	uint64_t	 rlimit_cpu;		/* RLIMIT_CPU seconds; 0: unchanged */
	uint64_t	 rlimit_nofile;		/* RLIMIT_NOFILE; 0: unchanged */

	struct source_config source;		/* issue 17: where else jobs come from */

	/* Issue 19: a hook's queue ("hook.N", made from hooks = (...), not queues). */
	uint32_t	 hook;			/* N, its place in hooks; 0: a user's queue */
	uint32_t	 hook_types;		/* the event types it runs on, a bit each */
	char		 hook_queue[64];	/* the queues whose events it runs on, a glob */

	/*
	 * Issue 15: a chain (chain.c). A job's successful result goes on as a new job to
	 * the queue named here; "" none. Fixed, as source: a plain struct copy.
	 */
	char		 then[64];		/* a queue name ([A-Za-z0-9_.-]{1,63}) */
};

/* journal_fsync: when the journal is flushed to disk (see jobpool.conf(5)). */
#define CONFIG_FSYNC_NEVER	0	/* written to the OS before the reply; never fsync'd */
#define CONFIG_FSYNC_INTERVAL	1	/* written before the reply; fsync'd every interval */
#define CONFIG_FSYNC_ALWAYS	2	/* fsync'd before the reply, shared by a group */

/* idempotency_window and idempotency_max: 10 minutes, and 100,000 tokens (17 MiB). */
#define CONFIG_DEF_IDEMPOTENCY_WINDOW_MS	600000U
#define CONFIG_DEF_IDEMPOTENCY_MAX		100000U
#define CONFIG_MAX_IDEMPOTENCY_MAX		(1U << 24)

struct config {
	char			*path;		/* the file, or CONFIG_EMBEDDED_NAME */
	char			*socket_path;
	mode_t			 socket_mode;
	uint32_t		 max_payload;	/* largest job payload (and result) in bytes */
	uint64_t		 max_output;	/* reply bytes buffered per connection */
	uint32_t		 max_connections; /* clients connected at once */
	uint32_t		 max_connections_per_uid; /* of them, from one uid */
	uint32_t		 reserved_connections; /* beyond max_connections, root's and the daemon user's */
	uint32_t		 idle_timeout_ms;	/* close a connection idle this long; 0: never */
	uint32_t		 request_timeout_ms;	/* a request must arrive whole within this; 0: no limit */
	uint32_t		 keep_results;	/* finished jobs kept for WAIT and STATUS */
	uint64_t		 keep_results_bytes; /* their payload + result bytes */
	uint32_t		 shutdown_timeout_ms; /* running jobs may finish within this */
	uint32_t		 kill_timeout_ms;     /* after TERM to workers, then KILL */
	uint32_t		 output_timeout_ms;   /* past 4 x max_output, unread this long: close */
	int			 log_level;	/* LOG_ERR .. LOG_DEBUG from <syslog.h> */
	uint32_t		 dead_max;	/* dead jobs kept; oldest dropped; default 10000 */
	uint32_t		 events_ring;	/* events kept for EVENTS (events.c); at start only */
	uint32_t		 idempotency_window_ms; /* a token lives this long after its job ended */
	uint32_t		 idempotency_max; /* tokens held at most (idem.c) */

	/* The journal (journal.c): NULL journal_dir, none. */
	char			*journal_dir;	/* absolute; set only at start (a reload warns) */
	int			 journal_fsync;	/* CONFIG_FSYNC_* */
	uint32_t		 journal_fsync_interval_ms; /* interval: default 1000 */
	uint64_t		 journal_compact_size; /* rewrite past this; default 64 MiB */

	/* Issue 4: access and privileges. */
	char			*socket_owner;	/* user owning the socket (root only); NULL: unchanged */
	char			*socket_group;	/* group of the socket; default "jobpool" if it exists */
	char			**allow_users;	/* peers allowed by user name or uid; NULL: anyone who can connect */
	int			 nallow_users;
	char			**allow_groups;	/* peers allowed by (primary or supplementary) group */
	int			 nallow_groups;
	char			**admin_users;	/* act on every job, RELOAD, RETRY all (with root and user) */
	int			 nadmin_users;
	char			**admin_groups;	/* the same by (primary or supplementary) group */
	int			 nadmin_groups;
	char			*user;		/* drop to this user after binding (root only); NULL: stay */
	char			*group;		/* and this group; NULL: the user's primary group */

	/* Issue 19: the HTTP exporter (metrics.c). NULL: off. */
	char			*metrics_listen; /* "ADDR:PORT" as written, "[V6]:PORT" */

	/* Issue 20: the dashboard on metrics_listen (dashboard.c). */
	int			 dashboard;		/* serve it; default 1 */
	int			 dashboard_actions;	/* POST retry/cancel with the token; default 0 */
	char			*dashboard_token_file;	/* default: dashboard.token beside the socket */
	char			*dashboard_dir;		/* the page's files; default PKGDATADIR/dashboard */
	char			*dashboard_javascript;	/* Debian's libjs-* files; default /usr/share/javascript */

	struct queue_config	*queues;
	int			 nqueues;

	/* "file:line: warning: ..." lines about a valid config, joined by '\n'; or NULL */
	char			*warnings;
};

/*
 * Load path (NULL: the embedded defaults). On success return the config. On failure
 * return NULL and set *cause to every error found, one per line, each as
 * "file:line: message" (or "file: message" where no line applies); the caller frees it.
 */
struct config	*config_load(const char *path, char **cause);
/*
 * The same, for what the running daemon can apply. CONFIG_LOAD_NO_SWITCH: the daemon
 * can no longer start workers as other users (priv_can_switch), so a queue's user or
 * group is an error that asks for a restart.
 */
#define CONFIG_LOAD_NO_SWITCH	0x1
struct config	*config_load_flags(const char *path, int flags, char **cause);
/* The embedded default config text, libconfig syntax. */
const char	*config_embedded(void);
/* Does handler carry several jobs at once in one worker (its queue's concurrency)? */
int		 config_handler_concurrent(const char *handler);
/* The socket path used when the config names none: see DESIGN.md, names that are fixed. */
char		*config_default_socket(void);
/*
 * Parse a listening address, "IPv4:PORT" or "[IPv6]:PORT" with numeric addresses and a
 * port from 1 to 65535, into ss: 0, or -1 with why (a sentence for a person).
 */
int		 config_parse_listen(const char *str, struct sockaddr_storage *ss,
		    socklen_t *sslen, char *why, size_t whylen);
/* Find a queue by name, or NULL. */
const struct queue_config *config_find_queue(const struct config *cf, const char *name);
void		 config_free(struct config *cf);

#endif /* CONFIG_H */
