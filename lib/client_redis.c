/*
 * client_redis.c: jobpool_redis_submit(), a job added to a Redis stream that jobpoold
 * queues read (jobpool.conf(5), REDIS STREAMS), without a local daemon; waiting, its
 * result read back from the key the reading daemon writes with the source's result_ttl:
 * <stream>:result:<entry id> = "<end>\n<output or why>", polled every 20 ms.
 *
 * hiredis's blocking API, one connection per call: a producer that submits to Redis
 * does so rarely enough, and a connection per call keeps no state in the library.
 * No message quotes the URL, so none can show its password.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "client.h"
#include "jobpool.h"
#include "redis_url.h"

#define CLIENT_REDIS_POLL_MS	20
#define CLIENT_REDIS_TIMEOUT_S	10	/* connect, and each command */

/* A failed connection or command: the error code for the reply (NULL: c's error). */
static int
client_redis_fail(redisContext *c, redisReply *reply, const char *host, int port,
    const char *what)
{
	int	rc;

	if (reply != NULL) {
		rc = client_fail_nojp(JOBPOOL_EREDIS, "redis %s:%d: %s: %s", host, port,
		    what, reply->type == REDIS_REPLY_ERROR ? reply->str :
		    "unexpected reply");
		freeReplyObject(reply);
		return (rc);
	}
	if (c->err == REDIS_ERR_IO)
		return (client_fail_nojp(JOBPOOL_ESYS, "redis %s:%d: %s: %s", host, port,
		    what, strerror(errno)));
	return (client_fail_nojp(JOBPOOL_EREDIS, "redis %s:%d: %s: %s", host, port, what,
	    c->errstr));
}

/* Connected, authenticated, on its database: 0, or an error code (c set to NULL). */
static int
client_redis_connect(const struct redis_url *u, redisContext **cp)
{
	struct timeval	 tv = { CLIENT_REDIS_TIMEOUT_S, 0 };
	redisContext	*c;
	redisReply	*reply;
	int		 rc;

	*cp = NULL;
	if ((c = redisConnectWithTimeout(u->host, u->port, tv)) == NULL) {
		errno = ENOMEM;
		return (client_fail_nojp(JOBPOOL_ESYS, "redis %s:%d: %s", u->host,
		    u->port, strerror(errno)));
	}
	if (c->err != 0) {
		rc = client_redis_fail(c, NULL, u->host, u->port, "connect");
		goto fail;
	}
	redisSetTimeout(c, tv);
	if (u->pass[0] != '\0') {
		if (u->user[0] != '\0')
			reply = redisCommand(c, "AUTH %s %s", u->user, u->pass);
		else
			reply = redisCommand(c, "AUTH %s", u->pass);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
			rc = client_redis_fail(c, reply, u->host, u->port, "AUTH");
			goto fail;
		}
		freeReplyObject(reply);
	}
	if (u->db != 0) {
		reply = redisCommand(c, "SELECT %d", u->db);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
			rc = client_redis_fail(c, reply, u->host, u->port, "SELECT");
			goto fail;
		}
		freeReplyObject(reply);
	}
	*cp = c;
	return (JOBPOOL_OK);
fail:
	redisFree(c);
	return (rc);
}

/* Milliseconds on the monotonic clock. */
static long long
client_redis_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Poll the entry's result key until it exists or wait_ms (< 0: forever) passed. */
static int
client_redis_wait(redisContext *c, const struct redis_url *u, const char *stream,
    int wait_ms, struct jobpool_redis_result *res)
{
	struct timespec	 ts = { 0, CLIENT_REDIS_POLL_MS * 1000000L };
	redisReply	*reply;
	const char	*nl;
	long long	 deadline;
	size_t		 n;

	deadline = client_redis_now_ms() + wait_ms;
	for (;;) {
		reply = redisCommand(c, "GET %s:result:%s", stream, res->entry);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
			return (client_redis_fail(c, reply, u->host, u->port, "GET"));
		if (reply->type == REDIS_REPLY_STRING)
			break;
		freeReplyObject(reply);
		if (wait_ms >= 0 && client_redis_now_ms() >= deadline)
			return (client_fail_nojp(JOBPOOL_ETIMEDOUT,
			    "no result for entry %s of stream %s after %d ms (is result_ttl "
			    "set on the source reading it?)", res->entry, stream, wait_ms));
		nanosleep(&ts, NULL);
	}
	nl = memchr(reply->str, '\n', reply->len);
	n = nl != NULL ? (size_t)(nl - reply->str) : reply->len;
	nl = nl != NULL ? nl + 1 : reply->str + reply->len;
	if (n == 0 || n >= sizeof res->end) {
		freeReplyObject(reply);
		return (client_fail_nojp(JOBPOOL_EPROTO, "redis %s:%d: %s:result:%s: not "
		    "a result (\"<end>\\n<output>\")", u->host, u->port, stream, res->entry));
	}
	memcpy(res->end, reply->str, n);
	res->end[n] = '\0';
	res->len = reply->len - (size_t)(nl - reply->str);
	if ((res->data = malloc(res->len + 1)) == NULL) {
		freeReplyObject(reply);
		return (client_fail_nojp(JOBPOOL_ESYS, "malloc: %s", strerror(errno)));
	}
	memcpy(res->data, nl, res->len);
	((char *)res->data)[res->len] = '\0';
	freeReplyObject(reply);
	return (JOBPOOL_OK);
}

/* XADD stream * payload data; with wait_ms != 0, its result. */
int
jobpool_redis_submit(const char *url, const char *stream, const void *data,
    size_t len, int wait_ms, struct jobpool_redis_result *res)
{
	struct redis_url	 u;
	redisContext		*c;
	redisReply		*reply;
	const char		*argv[5];
	size_t			 argvlen[5];
	char			 why[256];
	int			 rc;

	if (res != NULL)
		memset(res, 0, sizeof *res);
	if (url == NULL || stream == NULL || *stream == '\0' || res == NULL ||
	    (data == NULL && len != 0))
		return (client_fail_nojp(JOBPOOL_EINVAL, "jobpool_redis_submit: %s",
		    url == NULL ? "no URL" : stream == NULL || *stream == '\0' ?
		    "no stream" : res == NULL ? "no result" : "no data"));
	if (redis_url_parse(url, &u, why, sizeof why) != 0) {
		explicit_bzero(&u, sizeof u);
		return (client_fail_nojp(JOBPOOL_EINVAL, "redis URL: %s", why));
	}
	if ((rc = client_redis_connect(&u, &c)) != JOBPOOL_OK)
		goto out;

	argv[0] = "XADD";
	argvlen[0] = 4;
	argv[1] = stream;
	argvlen[1] = strlen(stream);
	argv[2] = "*";
	argvlen[2] = 1;
	argv[3] = "payload";
	argvlen[3] = 7;
	argv[4] = data != NULL ? data : "";
	argvlen[4] = len;
	reply = redisCommandArgv(c, 5, argv, argvlen);
	if (reply == NULL || reply->type != REDIS_REPLY_STRING ||
	    reply->len >= sizeof res->entry) {
		rc = client_redis_fail(c, reply, u.host, u.port, "XADD");
		goto out;
	}
	memcpy(res->entry, reply->str, reply->len);
	res->entry[reply->len] = '\0';
	freeReplyObject(reply);

	rc = JOBPOOL_OK;
	if (wait_ms != 0)
		rc = client_redis_wait(c, &u, stream, wait_ms, res);
out:
	if (c != NULL)
		redisFree(c);
	explicit_bzero(&u, sizeof u);
	return (rc);
}

/* Free what jobpool_redis_submit() allocated in res. */
void
jobpool_redis_result_free(struct jobpool_redis_result *res)
{
	if (res == NULL)
		return;
	free(res->data);
	res->data = NULL;
	res->len = 0;
}
