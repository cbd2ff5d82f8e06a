/*
 * ctl-status.c: jobpoolctl status, the daemon's queues and workers (STATS), or one
 * job (STATUS and HISTORY).
 */

#include "autoconf.h"

#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static int	status_check(struct ctl_run *);
static int	status_exec(struct ctl_run *);

const struct ctl_cmd ctl_status_cmd = {
	.name = "status",
	.usage = { "[id]" },
	.help = "show the daemon's queues and workers, or one job",
	.maxargs = 1,
	.flags = CTL_CONNECT,
	.check = status_check,
	.exec = status_exec,
};

/* Print the daemon line of STATS as a readable summary. */
static void
stats_print_daemon(const struct stats_rec *r)
{
	const char	*v;
	uint64_t	 t;

	fputs(*r->name != '\0' ? r->name : "jobpoold", stdout);
	if ((v = stats_get(r, "version")) != NULL)
		printf(" %s", v);
	if ((v = stats_get(r, "pid")) != NULL)
		printf(", pid %s", v);
	if ((v = stats_get(r, "uptime")) != NULL) {
		if (ctl_parse_id(v, &t) != 0)
			printf(", up %ss", v);
		else if (t >= 86400)
			printf(", up %" PRIu64 "d%02" PRIu64 "h", t / 86400, t / 3600 % 24);
		else if (t >= 3600)
			printf(", up %" PRIu64 "h%02" PRIu64 "m", t / 3600, t / 60 % 60);
		else if (t >= 60)
			printf(", up %" PRIu64 "m%02" PRIu64 "s", t / 60, t % 60);
		else
			printf(", up %" PRIu64 "s", t);
	}
	if ((v = stats_get(r, "connections")) != NULL)
		printf(", connections %s", v);
	if ((v = stats_get(r, "jobs")) != NULL)
		printf(", jobs %s", v);
	putchar('\n');
}

/* The journal line of STATS, readable: where, how durable, how big, and trouble. */
static void
stats_print_journal(const struct stats_rec *r)
{
	const char	*v, *dir = stats_get(r, "dir"), *fsync = stats_get(r, "fsync");
	const char	*why = stats_get(r, "reason");

	printf("journal: %s, fsync %s", dir != NULL ? dir : "?", fsync != NULL ? fsync : "?");
	if ((v = stats_get(r, "bytes")) != NULL)
		printf(", %s bytes", v);
	if ((v = stats_get(r, "live_bytes")) != NULL)
		printf(" (%s of waiting and dead jobs)", v);
	if ((v = stats_get(r, "unknown_queue")) != NULL && strcmp(v, "0") != 0)
		printf(", %s jobs kept for queues not configured", v);
	if ((v = stats_get(r, "state")) != NULL && strcmp(v, "ok") != 0)
		printf(", %s: %s", v, why != NULL ? why : "");
	putchar('\n');
	/* Damage the start skipped: a line of its own, so that it is not missed. */
	if ((v = stats_get(r, "damaged")) != NULL && strcmp(v, "0") != 0) {
		const char *bytes = stats_get(r, "damaged_bytes");
		const char *file = stats_get(r, "damaged_file");

		printf("journal_damaged: %s region%s (%s bytes) skipped at the start",
		    v, strcmp(v, "1") == 0 ? "" : "s", bytes != NULL ? bytes : "?");
		if (file != NULL)
			printf(", kept as %s/%s", dir != NULL ? dir : "?", file);
		fputs("; the daemon's log says where\n", stdout);
	}
}

/* Print the STATS records as {"daemon":{},"queues":[],"workers":[]}. */
static void
stats_print_json(const struct stats_rec *recs, size_t n)
{
	const struct stats_rec	*daemon = NULL;
	size_t			 i;

	for (i = 0; i < n; i++) {
		if (strcmp(recs[i].type, "daemon") == 0)
			daemon = &recs[i];
	}
	fputs("{\"daemon\":", stdout);
	if (daemon != NULL)
		stats_json_rec(daemon, "name");
	else
		fputs("{}", stdout);
	fputs(",\"journal\":", stdout);
	for (i = 0; i < n && strcmp(recs[i].type, "journal") != 0; i++)
		;
	if (i < n)
		stats_json_rec(&recs[i], "name");
	else
		fputs("null", stdout);
	fputs(",\"queues\":", stdout);
	stats_json_array(recs, n, "queue", "name");
	fputs(",\"workers\":", stdout);
	stats_json_array(recs, n, "worker", "queue");
	fputs("}\n", stdout);
}

/* status without an id: the daemon, its queues and its workers. */
static int
status_daemon(struct jobpool *jp)
{
	static const struct table_col queue_cols[] = {
		{ "QUEUE", NULL, 0 },
		{ "STATE", "state", 0 },
		{ "HANDLER", "handler", 0 },
		{ "WORKERS", "workers", 1 },
		{ "DEPTH", "depth", 1 },
		{ "DELAYED", "delayed", 1 },
		{ "RUNNING", "running", 1 },
		{ "DONE", "done", 1 },
		{ "FAILED", "failed", 1 },
		{ "DEAD", "dead", 1 },
		{ "CANCELLED", "cancelled", 1 },
	};
	static const struct table_col worker_cols[] = {
		{ "QUEUE", NULL, 0 },
		{ "PID", "pid", 1 },
		{ "STATE", "state", 0 },
		{ "JOBS", "jobs", 1 },
		{ "RSS_KIB", "rss_kib", 1 },
	};
	struct stats_rec	*recs;
	size_t			 len, n, i;
	char			*text;
	int			 rc;

	if ((rc = jobpool_stats(jp, &text, &len)) != JOBPOOL_OK) {
		ctl_jperr(jp, "status", rc);
		return (EXIT_DAEMON);
	}
	if (stats_parse(text, &recs, &n) != 0) {
		ctl_warnx("status: %s", strerror(errno));
		free(text);
		return (EXIT_DAEMON);
	}
	if (ctl_json)
		stats_print_json(recs, n);
	else {
		for (i = 0; i < n; i++) {
			if (strcmp(recs[i].type, "daemon") == 0)
				stats_print_daemon(&recs[i]);
		}
		for (i = 0; i < n; i++) {
			if (strcmp(recs[i].type, "journal") == 0)
				stats_print_journal(&recs[i]);
		}
		putchar('\n');
		table_print(queue_cols, sizeof queue_cols / sizeof queue_cols[0],
		    recs, n, "queue");
		/* Why a queue is not running, under the table. */
		for (i = 0; i < n; i++) {
			const char *why = stats_get(&recs[i], "reason");

			if (strcmp(recs[i].type, "queue") == 0 && why != NULL)
				printf("queue %s: %s: %s\n", recs[i].name,
				    stats_get(&recs[i], "state"), why);
		}
		putchar('\n');
		table_print(worker_cols, sizeof worker_cols / sizeof worker_cols[0],
		    recs, n, "worker");
	}
	stats_free(recs, n);
	free(text);
	return (0);
}

/* Send "VERB id" and take a reply of the type wanted. 0, or an exit status. */
static int
status_ask(struct jobpool *jp, const char *verb, uint64_t id,
    enum jobpool_msg_type type, char *what, struct jobpool_msg *msg)
{
	int	rc;

	if ((rc = ctl_request_id(jp, verb, id, what, msg)) != 0)
		return (rc);
	if (msg->type != type) {
		ctl_warnx("%s: unexpected reply from jobpoold", what);
		return (EXIT_DAEMON);
	}
	return (0);
}

/* The attempts of a job, after its status: text lines, or a "history" JSON array. */
static int
status_history(struct jobpool *jp, uint64_t id, int first)
{
	struct jobpool_msg	 msg;
	struct stats_rec	*recs;
	char			 what[CTL_WHAT_MAX], *text;
	size_t			 n, i, k, kept;
	int			 rc, shown = 0;

	if ((rc = status_ask(jp, "history", id, JOBPOOL_MSG_DATA, what, &msg)) != 0)
		return (rc);
	if ((rc = stats_reply(&msg, what, &text, &recs, &n)) != 0)
		return (rc);
	if (ctl_json)
		printf("%s\"history\":[", first ? "" : ",");
	for (i = 0, kept = 0; i < n; i++)
		kept += strcmp(recs[i].type, "attempt") == 0;
	for (i = 0; i < n; i++) {
		if (strcmp(recs[i].type, "attempt") != 0)
			continue;
		/* The daemon keeps a job's last attempts only: say what is missing. */
		if (shown == 0 && !ctl_json && strtoul(recs[i].name, NULL, 10) > 1)
			printf("attempts 1-%lu: not kept (the daemon keeps the last %zu)\n",
			    strtoul(recs[i].name, NULL, 10) - 1, kept);
		if (ctl_json) {
			printf("%s{\"attempt\":%s", shown ? "," : "", recs[i].name);
			for (k = 0; k < recs[i].n; k++)
				json_member(stdout, 0, recs[i].keys[k], recs[i].vals[k]);
			putchar('}');
		} else {
			const char *err = stats_get(&recs[i], "error");

			printf("attempt %s: worker %s, %s after %s ms%s%s\n", recs[i].name,
			    stats_get(&recs[i], "worker"), stats_get(&recs[i], "outcome"),
			    stats_get(&recs[i], "ms"), err != NULL && *err ? ": " : "",
			    err != NULL ? err : "");
		}
		shown++;
	}
	if (ctl_json)
		putchar(']');
	stats_free(recs, n);
	free(text);
	return (0);
}

/* status ID: the job's key=value words, as "key: value" lines or a JSON object. */
static int
status_job(struct jobpool *jp, uint64_t id)
{
	struct jobpool_msg	 msg;
	char			 what[CTL_WHAT_MAX], *copy, *s, *tok, *eq;
	int			 rc, first = 1;

	/* The raw reply, so keys this client does not know are shown too. */
	if ((rc = status_ask(jp, "status", id, JOBPOOL_MSG_OK, what, &msg)) != 0)
		return (rc);
	if ((copy = strdup(msg.text != NULL ? msg.text : "")) == NULL) {
		ctl_warnx("%s: %s", what, strerror(errno));
		return (EXIT_DAEMON);
	}
	if (ctl_json)
		putchar('{');
	for (s = copy; (tok = ctl_token(&s)) != NULL; /* nothing */) {
		if ((eq = strchr(tok, '=')) == NULL)
			continue;
		*eq++ = '\0';
		if (ctl_json)
			json_member(stdout, first, tok, eq);
		else
			printf("%s: %s\n", tok, eq);
		first = 0;
	}
	free(copy);
	rc = status_history(jp, id, first);
	if (ctl_json)
		fputs("}\n", stdout);
	return (rc);
}

/* status [ID]: an id, if given, is a job id. */
static int
status_check(struct ctl_run *r)
{
	return (r->argc == 0 ? 0 : ctl_check_ids(r));
}

/* status [ID]: the daemon's queues and workers, or one job. */
static int
status_exec(struct ctl_run *r)
{
	if (r->argc == 0)
		return (status_daemon(r->jp));
	return (status_job(r->jp, r->ids[0]));
}
