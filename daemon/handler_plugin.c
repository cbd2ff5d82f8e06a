/*
 * handler_plugin.c: plugin handlers ("plugin:/path/lib.so [ARG]"), the ABI of
 * lib/jobpool-handler.h seen from the worker's side.
 *
 * handler_plugin_open() runs in a worker, after the fork, never in the master: it
 * dlopens the shared object, checks its struct jobpool_handler and fills a struct
 * handler with adapters around it. A worker runs one queue's handler for its whole
 * life, so the loaded plugin lives in this file's single `plugin` record: the adapters
 * (whose signatures carry no handler pointer) find it there.
 *
 * A plugin of ABI 2 may have a batch entry point (process_batch), adapted as the
 * handler's run_batch; one of ABI 1 is read only as far as its struct goes.
 *
 * Also here: the output functions the plugin ABI promises (jobpool_output_*). They and
 * worker.c's jobpool_cancelled() and jobpool_cleanup_*() are exported from the jobpoold
 * executable (daemon/jobpoold.sym) so that a plugin needs no library to link against.
 */

#include "autoconf.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "frame.h"
#include "handler.h"

/* The plugin this worker loaded, and where the running job's output starts. */
static struct {
	void				*dl;		/* the dlopen handle */
	const struct jobpool_handler	*jh;
	char				*path;
	void				*state;		/* what the plugin's init returned */
	struct jobpool_output		*out;		/* the running job's output, or NULL */
	size_t				 out_base;	/* its length when process() began */
	struct jobpool_job		*batch;		/* the running batch (its own outputs) */
	size_t				 nbatch;
} plugin;

/* A malloc'd message for *cause: "plugin PATH: ...". */
static char *
plugin_cause(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *
plugin_cause(const char *path, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg = NULL, *cause = NULL;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	if (msg == NULL || asprintf(&cause, "plugin %s: %s", path, msg) == -1)
		cause = NULL;
	free(msg);
	return (cause);
}

static int
plugin_init(const struct config *cf, const struct queue_config *qc, const char *arg,
    void **state, char **cause)
{
	char	err[512];

	*state = NULL;
	if (plugin.jh->init == NULL)
		return (0);
	err[0] = '\0';
	if (plugin.jh->init(arg != NULL ? arg : "", &plugin.state, err, sizeof err) != 0) {
		err[sizeof err - 1] = '\0';
		*cause = plugin_cause(plugin.path, "init failed: %s",
		    err[0] != '\0' ? err : "(the plugin gave no reason)");
		plugin.state = NULL;
		return (-1);
	}
	return (0);
}

/* A plugin's status (process or process_batch) as a frame status; invalid: -1. */
static int
plugin_status(int rc)
{
	switch (rc) {
	case JOBPOOL_HANDLER_OK:
		return (FRAME_OK);
	case JOBPOOL_HANDLER_ERROR:
		return (FRAME_FAILED);
	case JOBPOOL_HANDLER_PERMANENT:
		return (FRAME_PERMANENT);
	default:
		return (-1);
	}
}

/*
 * Run one job. A plugin that gives up because the job was cancelled (or timed out)
 * usually returns an error: that is a cancellation, not a failed attempt.
 */
static int
plugin_run(void *state, const char *in, size_t len, struct jobpool_output *out)
{
	int	rc, st;

	plugin.out = out;
	plugin.out_base = out->len;
	rc = plugin.jh->process(plugin.state, in, len, out);
	plugin.out = NULL;
	switch (st = plugin_status(rc)) {
	case FRAME_OK:
		return (FRAME_OK);
	case -1:
		out->len = plugin.out_base;
		obuf_printf(out, "plugin %s: process() returned an invalid status %d "
		    "(want JOBPOOL_HANDLER_OK, _ERROR or _PERMANENT)", plugin.path, rc);
		return (FRAME_FAILED);
	default:
		return (jobpool_cancelled() ? FRAME_CANCELLED : st);
	}
}

/*
 * Run a batch (ABI 2). What process_batch() returns is the status of each job it left
 * unset; a failed job without a word of output gets one, so its error says something.
 */
static void
plugin_run_batch(void *state, struct jobpool_job *jobs, size_t n)
{
	size_t	i;
	int	rc, all, st;

	plugin.batch = jobs;
	plugin.nbatch = n;
	rc = plugin.jh->process_batch(plugin.state, jobs, n);
	plugin.batch = NULL;
	plugin.nbatch = 0;
	all = plugin_status(rc);
	for (i = 0; i < n; i++) {
		if (jobs[i].status == JOBPOOL_HANDLER_UNSET) {
			if (all == -1) {
				jobs[i].out->len = 0;
				obuf_printf(jobs[i].out, "plugin %s: process_batch() "
				    "returned an invalid status %d (want "
				    "JOBPOOL_HANDLER_OK, _ERROR or _PERMANENT)", plugin.path,
				    rc);
				jobs[i].status = FRAME_FAILED;
				continue;
			}
			st = all;
		} else if ((st = plugin_status(jobs[i].status)) == -1) {
			jobs[i].out->len = 0;
			obuf_printf(jobs[i].out, "plugin %s: process_batch() set an invalid "
			    "status %d for job %zu of its batch (want JOBPOOL_HANDLER_OK, "
			    "_ERROR or _PERMANENT)", plugin.path, jobs[i].status, i);
			jobs[i].status = FRAME_FAILED;
			continue;
		}
		if (st != FRAME_OK && jobs[i].out->len == 0)
			obuf_printf(jobs[i].out, "plugin %s: process_batch() failed this "
			    "job of its batch of %zu and gave no reason", plugin.path, n);
		jobs[i].status = st;
	}
}

static void
plugin_fini(void *state)
{
	if (plugin.jh != NULL && plugin.jh->fini != NULL)
		plugin.jh->fini(plugin.state);
	plugin.state = NULL;
	plugin.jh = NULL;
	/* No dlclose: the worker exits next, and a plugin's atexit hooks may need it. */
}

/*
 * "plugin:PATH [ARG]": split PATH from ARG at the first run of blanks (ARG "" when
 * absent), dlopen PATH, check its jobpool_handler and fill *h. *arg points into spec.
 */
int
handler_plugin_open(const char *spec, struct handler *h, const char **arg, char **cause)
{
	const struct jobpool_handler	*jh;
	const char			*p, *e;
	char				*path;
	void				*dl;
	const char			*dlerr;

	*cause = NULL;
	*arg = NULL;
	if (strncmp(spec, CONFIG_HANDLER_PLUGIN, strlen(CONFIG_HANDLER_PLUGIN)) == 0)
		spec += strlen(CONFIG_HANDLER_PLUGIN);
	for (p = spec; isspace((unsigned char)*p); p++)
		;
	for (e = p; *e != '\0' && !isspace((unsigned char)*e); e++)
		;
	if (e == p) {
		*cause = strdup("plugin: no path after 'plugin:'");
		return (-1);
	}
	if ((path = strndup(p, (size_t)(e - p))) == NULL) {
		*cause = strdup("plugin: out of memory");
		return (-1);
	}
	while (isspace((unsigned char)*e))
		e++;

	if (plugin.dl != NULL) {
		*cause = plugin_cause(path, "a worker loads one plugin only");
		goto fail;
	}
	dlerror();
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		dlerr = dlerror();
		*cause = plugin_cause(path, "cannot load: %s",
		    dlerr != NULL ? dlerr : "dlopen failed");
		goto fail;
	}
	dlerror();
	jh = dlsym(dl, "jobpool_handler");
	if (jh == NULL) {
		dlerr = dlerror();
		*cause = plugin_cause(path, "no symbol jobpool_handler: %s",
		    dlerr != NULL ? dlerr : "it is NULL");
		dlclose(dl);
		goto fail;
	}
	/* Fields are only added at the end: an older plugin's struct is a prefix. */
	if (jh->abi_version < 1 || jh->abi_version > JOBPOOL_HANDLER_ABI_VERSION) {
		*cause = plugin_cause(path, "ABI version %u is not supported: this "
		    "jobpoold supports versions 1 to %u (rebuild the plugin against its "
		    "jobpool-handler.h)", jh->abi_version, JOBPOOL_HANDLER_ABI_VERSION);
		dlclose(dl);
		goto fail;
	}
	if (jh->process == NULL) {
		*cause = plugin_cause(path, "jobpool_handler.process is NULL");
		dlclose(dl);
		goto fail;
	}

	plugin.dl = dl;
	plugin.jh = jh;
	plugin.path = path;
	memset(h, 0, sizeof *h);
	h->name = jh->name != NULL ? jh->name : path;
	h->init = plugin_init;
	h->run = plugin_run;
	h->fini = plugin_fini;
	/* Version 1's struct ends before process_batch: never read past it. */
	if (jh->abi_version >= 2 && jh->process_batch != NULL)
		h->run_batch = plugin_run_batch;
	h->priv = dl;
	*arg = e;
	return (0);

fail:
	if (*cause == NULL)
		*cause = strdup("plugin: out of memory");
	free(path);
	return (-1);
}

/* jobpool-handler.h: append to the job's output. */
int
jobpool_output_write(struct jobpool_output *out, const void *data, size_t len)
{
	if (len == 0)
		return (0);	/* data may be NULL then, which memcpy() must not see */
	return (obuf_add(out, data, len));
}

int
jobpool_output_printf(struct jobpool_output *out, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || obuf_reserve(out, (size_t)n + 1) != 0)
		return (-1);
	va_start(ap, fmt);
	vsnprintf(out->buf + out->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	out->len += (size_t)n;
	return (0);
}

/*
 * Drop what the running job wrote. out is the worker's whole result buffer (earlier
 * results and this job's frame header come first), so only this job's part goes.
 */
void
jobpool_output_reset(struct jobpool_output *out)
{
	size_t	i;

	if (out == plugin.out && out->len > plugin.out_base)
		out->len = plugin.out_base;
	/* A batch job's output is its own buffer: all of it goes. */
	for (i = 0; i < plugin.nbatch; i++) {
		if (plugin.batch[i].out == out) {
			out->len = 0;
			break;
		}
	}
}
