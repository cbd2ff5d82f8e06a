/*
 * client.h: what libjobpool's files share and do not export.
 */

#ifndef CLIENT_H
#define CLIENT_H

/*
 * Record why a call without a connection (jobpool_connect, jobpool_redis_submit) failed,
 * for jobpool_error(NULL) in this thread; returns rc.
 */
int	client_fail_nojp(int rc, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif /* CLIENT_H */
