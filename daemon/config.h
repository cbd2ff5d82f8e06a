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

#define CONFIG_DEFAULT_PATH	SYSCONFDIR "/jobpool/jobpool.conf"
#define CONFIG_EMBEDDED_NAME	"<embedded defaults>"

struct queue_config {
	char		*name;		/* [A-Za-z0-9_.-]{1,63}, unique */
	char		*handler;	/* "echo", "sha256", "spin", "sleep" */
	int		 line;		/* where the queue is defined, for messages */
	int		 workers;	/* processes; the file may say 0 for one per CPU */
	uint32_t	 max_jobs;	/* queued + delayed jobs before backpressure */
	uint64_t	 max_bytes;	/* their payload bytes before backpressure */
	int		 prio_min;	/* accepted priority range, inclusive */
	int		 prio_max;
	uint32_t	 timeout_ms;	/* default per-attempt timeout, 0: none */
	uint32_t	 batch;		/* jobs in flight to one worker at most */
	uint32_t	 retries;	/* extra attempts after a failed attempt */
};

struct config {
	char			*path;		/* the file, or CONFIG_EMBEDDED_NAME */
	char			*socket_path;
	mode_t			 socket_mode;
	uint32_t		 max_payload;	/* largest job payload (and result) in bytes */
	uint64_t		 max_output;	/* reply bytes buffered per connection */
	uint32_t		 keep_results;	/* finished jobs kept for WAIT and STATUS */
	uint64_t		 keep_results_bytes; /* their payload + result bytes */
	uint32_t		 shutdown_timeout_ms; /* running jobs may finish within this */
	uint32_t		 kill_timeout_ms;     /* after TERM to workers, then KILL */
	int			 log_level;	/* LOG_ERR .. LOG_DEBUG from <syslog.h> */

	struct queue_config	*queues;
	int			 nqueues;
};

/*
 * Load path (NULL: the embedded defaults). On success return the config. On failure
 * return NULL and set *cause to every error found, one per line, each as
 * "file:line: message" (or "file: message" where no line applies); the caller frees it.
 */
struct config	*config_load(const char *path, char **cause);
/* The embedded default config text, libconfig syntax. */
const char	*config_embedded(void);
/* The socket path used when the config names none: see DESIGN.md, names that are fixed. */
char		*config_default_socket(void);
/* Find a queue by name, or NULL. */
const struct queue_config *config_find_queue(const struct config *cf, const char *name);
void		 config_free(struct config *cf);

#endif /* CONFIG_H */
