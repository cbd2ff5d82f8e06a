/*
 * wordcount.c: an example jobpool handler plugin, to copy. It counts the lines, words
 * and bytes of each job's payload, like wc(1).
 *
 * Build (with jobpool-handler.h installed, or -I pointing at jobpoold's lib/):
 *
 *     cc -shared -fPIC -o wordcount.so wordcount.c
 *
 * Configure a queue with it; the argument after the path picks the output format:
 *
 *     handler = "plugin:/usr/local/lib/jobpool/wordcount.so json";
 *
 * "text" (the default) gives "LINES WORDS BYTES" as wc does; "json" gives
 * {"lines":L,"words":W,"bytes":B}. Any other argument makes init() fail, which marks
 * the queue failed in `jobpoolctl status` with the reason.
 *
 * What it shows: init() parsing its argument into per-worker state, fini() freeing it;
 * process() working through a long payload in chunks and polling jobpool_cancelled()
 * between them; a per-job allocation released by a cleanup hook, which jobpoold runs if
 * the job is cancelled, times out or fails, and which the plugin pops (running it) itself
 * when the job succeeds.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobpool-handler.h>

#define CHUNK	(64 * 1024)	/* bytes between looks at jobpool_cancelled() */

enum format { FORMAT_TEXT, FORMAT_JSON };

struct wc_state {
	enum format		format;
	unsigned long long	jobs;	/* done by this worker */
};

struct wc_counts {
	unsigned long long	lines, words, bytes;
	int			inword;
};

static int
wc_init(const char *arg, void **state, char *err, size_t errlen)
{
	struct wc_state	*st;
	enum format	 format;

	if (*arg == '\0' || strcmp(arg, "text") == 0)
		format = FORMAT_TEXT;
	else if (strcmp(arg, "json") == 0)
		format = FORMAT_JSON;
	else {
		snprintf(err, errlen, "unknown output format '%s' (want text or json)",
		    arg);
		return (-1);
	}
	if ((st = calloc(1, sizeof *st)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	st->format = format;
	*state = st;
	return (0);
}

static void
wc_fini(void *state)
{
	free(state);
}

static int
wc_process(void *state, const void *payload, size_t len, struct jobpool_output *out)
{
	struct wc_state		*st = state;
	struct wc_counts	*c;
	const unsigned char	*p = payload;
	size_t			 i, end;
	int			 rc;

	/*
	 * The counts live on the heap only to show a cleanup hook: if the job is cancelled
	 * below, or fails, jobpoold runs free(c) for us.
	 */
	if ((c = calloc(1, sizeof *c)) == NULL ||
	    jobpool_cleanup_push(free, c) != 0) {
		free(c);
		jobpool_output_printf(out, "wordcount: out of memory");
		return (JOBPOOL_HANDLER_ERROR);
	}
	for (i = 0; i < len; i = end) {
		if (jobpool_cancelled()) {
			jobpool_output_reset(out);
			jobpool_output_printf(out, "wordcount: cancelled after %zu of %zu "
			    "bytes", i, len);
			return (JOBPOOL_HANDLER_ERROR);	/* the hook frees c */
		}
		end = len - i > CHUNK ? i + CHUNK : len;
		for (; i < end; i++) {
			if (p[i] == '\n')
				c->lines++;
			if (isspace(p[i]))
				c->inword = 0;
			else if (!c->inword) {
				c->inword = 1;
				c->words++;
			}
		}
	}
	c->bytes = len;

	if (st->format == FORMAT_JSON)
		rc = jobpool_output_printf(out, "{\"lines\":%llu,\"words\":%llu,"
		    "\"bytes\":%llu}", c->lines, c->words, c->bytes);
	else
		rc = jobpool_output_printf(out, "%llu %llu %llu", c->lines, c->words,
		    c->bytes);
	jobpool_cleanup_pop(1);		/* success: free c ourselves */
	if (rc != 0)
		return (JOBPOOL_HANDLER_ERROR);
	st->jobs++;
	return (JOBPOOL_HANDLER_OK);
}

/* The one symbol jobpoold looks up. */
const struct jobpool_handler jobpool_handler = {
	.abi_version = JOBPOOL_HANDLER_ABI_VERSION,
	.name = "wordcount",
	.init = wc_init,
	.process = wc_process,
	.fini = wc_fini,
};
