/*
 * ctl-redis.c: jobpoolctl submit --redis URL --stream S: one job added to a Redis stream
 * that jobpoold queues read (jobpool.conf(5), REDIS STREAMS), without a local daemon;
 * with -w, its result read back from the key the reading daemon writes with the
 * source's result_ttl (<stream>:result:<entry id>), polled every 20 ms.
 */

#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "ctl.h"
#include "redis_url.h"

#define CTL_REDIS_POLL_MS	20

/* Connected, authenticated, on its database; NULL after saying why (never the password). */
static redisContext *
ctl_redis_connect(const char *url)
{
	struct redis_url	 u;
	struct timeval		 tv = { 10, 0 };
	redisContext		*c;
	redisReply		*reply;
	char			 why[256];

	if (redis_url_parse(url, &u, why, sizeof why) != 0) {
		ctl_warnx("submit: --redis: %s", why);
		return (NULL);
	}
	if ((c = redisConnectWithTimeout(u.host, u.port, tv)) == NULL || c->err != 0) {
		ctl_warnx("submit: redis %s:%d: %s", u.host, u.port,
		    c != NULL ? c->errstr : "out of memory");
		goto fail;
	}
	redisSetTimeout(c, tv);
	reply = NULL;
	if (u.pass[0] != '\0')
		reply = u.user[0] != '\0' ? redisCommand(c, "AUTH %s %s", u.user, u.pass) :
		    redisCommand(c, "AUTH %s", u.pass);
	if (u.pass[0] != '\0' && (reply == NULL || reply->type == REDIS_REPLY_ERROR)) {
		ctl_warnx("submit: redis %s:%d: AUTH: %s", u.host, u.port,
		    reply != NULL ? reply->str : c->errstr);
		freeReplyObject(reply);
		goto fail;
	}
	freeReplyObject(reply);
	if (u.db != 0) {
		reply = redisCommand(c, "SELECT %d", u.db);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
			ctl_warnx("submit: redis %s:%d: SELECT %d: %s", u.host, u.port, u.db,
			    reply != NULL ? reply->str : c->errstr);
			freeReplyObject(reply);
			goto fail;
		}
		freeReplyObject(reply);
	}
	explicit_bzero(&u, sizeof u);
	return (c);
fail:
	explicit_bzero(&u, sizeof u);
	if (c != NULL)
		redisFree(c);
	return (NULL);
}

/*
 * Wait for the entry's result key: "<end>\n<output or error>". Print the output of a
 * done job (as submit -w does); say why for the others. The exit status.
 */
static int
ctl_redis_wait(const struct ctl_run *r, redisContext *c, const char *stream,
    const char *id)
{
	struct timespec	 ts = { 0, CTL_REDIS_POLL_MS * 1000000L };
	redisReply	*reply;
	const char	*nl;
	size_t		 n;
	int		 ret;

	for (;;) {
		reply = redisCommand(c, "GET %s:result:%s", stream, id);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
			ctl_warnx("submit: wait: redis: %s", reply != NULL ? reply->str :
			    c->errstr);
			freeReplyObject(reply);
			return (EXIT_DAEMON);
		}
		if (reply->type == REDIS_REPLY_STRING)
			break;
		freeReplyObject(reply);
		nanosleep(&ts, NULL);
	}
	nl = memchr(reply->str, '\n', reply->len);
	n = nl != NULL ? (size_t)(nl - reply->str) : reply->len;
	nl = nl != NULL ? nl + 1 : reply->str + reply->len;
	if (n == 4 && memcmp(reply->str, "done", 4) == 0) {
		fwrite(nl, 1, reply->len - (size_t)(nl - reply->str), stdout);
		if (!r->raw)
			putchar('\n');
		ret = 0;
	} else {
		ctl_warnx("entry %s %.*s: %.*s", id, (int)n, reply->str,
		    (int)(reply->len - (size_t)(nl - reply->str)), nl);
		ret = EXIT_JOBFAIL;
	}
	freeReplyObject(reply);
	return (ret);
}

/* submit --redis: XADD stream * payload data; print the entry id, or with -w the result. */
int
ctl_redis_submit(const struct ctl_run *r, const void *data, size_t len)
{
	redisContext	*c;
	redisReply	*reply;
	const char	*argv[5] = { "XADD", r->stream, "*", "payload", data };
	size_t		 argvlen[5] = { 4, 0, 1, 7, len };
	char		 id[64];
	int		 ret;

	if (r->stream == NULL) {
		ctl_warnx("submit: --redis needs --stream");
		return (ctl_usage_error(r));
	}
	argvlen[1] = strlen(r->stream);
	if ((c = ctl_redis_connect(r->redis)) == NULL)
		return (EXIT_DAEMON);
	reply = redisCommandArgv(c, 5, argv, argvlen);
	if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
		ctl_warnx("submit: XADD %s: %s", r->stream, reply == NULL ? c->errstr :
		    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		freeReplyObject(reply);
		redisFree(c);
		return (EXIT_DAEMON);
	}
	snprintf(id, sizeof id, "%s", reply->str);
	freeReplyObject(reply);
	if (!r->wait) {
		if (ctl_json)
			printf("{\"entry\":\"%s\"}\n", id);
		else
			printf("%s\n", id);
		ret = 0;
	} else
		ret = ctl_redis_wait(r, c, r->stream, id);
	redisFree(c);
	return (ret);
}
