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
stats_print_daemon(FILE *f, const struct stats_rec *r)
{
	const char	*v;
	uint64_t	 t;

	fputs(*r->name != '\0' ? r->name : "jobpoold", f);
	if ((v = stats_get(r, "version")) != NULL)
		fprintf(f, " %s", v);
	if ((v = stats_get(r, "pid")) != NULL)
		fprintf(f, ", pid %s", v);
	if ((v = stats_get(r, "uptime")) != NULL) {
		if (ctl_parse_id(v, &t) != 0)
			fprintf(f, ", up %ss", v);
		else if (t >= 86400)
			fprintf(f, ", up %" PRIu64 "d%02" PRIu64 "h", t / 86400, t / 3600 % 24);
		else if (t >= 3600)
			fprintf(f, ", up %" PRIu64 "h%02" PRIu64 "m", t / 3600, t / 60 % 60);
		else if (t >= 60)
			fprintf(f, ", up %" PRIu64 "m%02" PRIu64 "s", t / 60, t % 60);
		else
			fprintf(f, ", up %" PRIu64 "s", t);
	}
	if ((v = stats_get(r, "connections")) != NULL)
		fprintf(f, ", connections %s", v);
	if ((v = stats_get(r, "jobs")) != NULL)
		fprintf(f, ", jobs %s", v);
	putc('\n', f);
}

/* The journal line of STATS, readable: where, how durable, how big, and trouble. */
static void
stats_print_journal(FILE *f, const struct stats_rec *r)
{
	const char	*v, *dir = stats_get(r, "dir"), *fsync = stats_get(r, "fsync");
	const char	*why = stats_get(r, "reason");

	fprintf(f, "journal: %s, fsync %s", dir != NULL ? dir : "?", fsync != NULL ? fsync : "?");
	if ((v = stats_get(r, "bytes")) != NULL)
		fprintf(f, ", %s bytes", v);
	if ((v = stats_get(r, "live_bytes")) != NULL)
		fprintf(f, " (%s of waiting and dead jobs)", v);
	if ((v = stats_get(r, "unknown_queue")) != NULL && strcmp(v, "0") != 0)
		fprintf(f, ", %s jobs kept for queues not configured", v);
	if ((v = stats_get(r, "state")) != NULL && strcmp(v, "ok") != 0)
		fprintf(f, ", %s: %s", v, why != NULL ? why : "");
	putc('\n', f);
	/* Damage the start skipped: a line of its own, so that it is not missed. */
	if ((v = stats_get(r, "damaged")) != NULL && strcmp(v, "0") != 0) {
		const char *bytes = stats_get(r, "damaged_bytes");
		const char *file = stats_get(r, "damaged_file");

		fprintf(f, "journal_damaged: %s region%s (%s bytes) skipped at the start",
		    v, strcmp(v, "1") == 0 ? "" : "s", bytes != NULL ? bytes : "?");
		if (file != NULL)
			fprintf(f, ", kept as %s/%s", dir != NULL ? dir : "?", file);
		fputs("; the daemon's log says where\n", f);
	}
}

/*
 * Print the STATS records on stdout as one line of JSON:
 * {"daemon":{},"journal":{} or null,"queues":[],"workers":[]}.
 */
void
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

/*
 * The STATS records as text, to f: the daemon and journal lines, then the queues
 * (their counts, their flow, their latencies) and the workers as tables (stats_view).
 * top shows the same, again every second. 0, or -1 out of memory.
 */
int
status_fprint(FILE *f, const struct stats_rec *recs, size_t n)
{
	struct stats_rec	*view;
	size_t			 nview, i;

	if (stats_view(recs, n, &view, &nview) != 0)
		return (-1);
	for (i = 0; i < n; i++) {
		if (strcmp(recs[i].type, "daemon") == 0)
			stats_print_daemon(f, &recs[i]);
	}
	for (i = 0; i < n; i++) {
		if (strcmp(recs[i].type, "journal") == 0)
			stats_print_journal(f, &recs[i]);
	}
	putc('\n', f);
	table_fprint(f, stats_view_queue_cols, stats_view_queue_ncols, view, nview,
	    "queue");
	/* Why a queue is not running, under the table. */
	for (i = 0; i < n; i++) {
		const char *why = stats_get(&recs[i], "reason");

		if (strcmp(recs[i].type, "queue") == 0 && why != NULL)
			fprintf(f, "queue %s: %s: %s\n", recs[i].name,
			    stats_get(&recs[i], "state"), why);
	}
	putc('\n', f);
	table_fprint(f, stats_view_flow_cols, stats_view_flow_ncols, view, nview,
	    "queue");
	putc('\n', f);
	table_fprint(f, stats_view_latency_cols, stats_view_latency_ncols, view, nview,
	    "latency");
	putc('\n', f);
	table_fprint(f, stats_view_worker_cols, stats_view_worker_ncols, view, nview,
	    "worker");
	stats_free(view, nview);
	return (0);
}

/* status without an id: the daemon, its queues and its workers. */
static int
status_daemon(struct jobpool *jp)
{
	struct stats_rec	*recs;
	size_t			 len, n;
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
	else if (status_fprint(stdout, recs, n) != 0) {
		ctl_warnx("status: %s", strerror(errno));
		rc = EXIT_DAEMON;
	}
	stats_free(recs, n);
	free(text);
	return (rc == JOBPOOL_OK ? 0 : rc);
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

/*
 * A chain's stages (STATUS's stages=ID@QUEUE:STATE,...), one line each:
 * "stage 2: job 7, queue resize, running".
 */
static void
status_stages(char *list)
{
	char		*st, *at, *colon;
	unsigned	 n = 0;

	while ((st = strsep(&list, ",")) != NULL) {
		n++;
		if ((at = strchr(st, '@')) == NULL || (colon = strrchr(at, ':')) == NULL) {
			printf("stage %u: %s\n", n, st);
			continue;
		}
		*at++ = '\0';
		*colon++ = '\0';
		printf("stage %u: job %s, queue %s, %s\n", n, st, at, colon);
	}
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
		else if (strcmp(tok, "stages") == 0)
			status_stages(eq);
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
