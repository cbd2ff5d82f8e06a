/*
 * checkhandler.h: what the handler suites that open a handler through struct handler
 * share (check_handler_exec, check_handler_plugin): the configuration init is given,
 * one job run in this process, and its output checked.
 */

#ifndef CHECKHANDLER_H
#define CHECKHANDLER_H

#include <string.h>

#include "config.h"
#include "handler.h"

/* What a handler's init gets; each suite sets the fields its handlers read. */
static struct config		test_cf;
static struct queue_config	test_qc;

/* Run one job on the string in; the output is appended to out. */
static inline int
run(struct handler *h, void *state, const char *in, struct jobpool_output *out)
{
	return (h->run(state, in, strlen(in), out));
}

/* The output so far must be exactly want (shown up to 500 bytes if not); then empty it. */
static inline void
out_is(struct jobpool_output *out, const char *want)
{
	ck_assert_msg(out->len == strlen(want) &&
	    (out->len == 0 || memcmp(out->buf, want, out->len) == 0),
	    "output '%.*s' (%zu bytes), want '%s'", (int)(out->len > 500 ? 500 : out->len),
	    out->buf, out->len, want);
	out->len = 0;
}

#endif
