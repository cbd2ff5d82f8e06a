/*
 * redis_url.c: a Redis URL taken apart, for the daemon's Redis sources and
 * jobpoolctl submit --redis. Messages never quote the password.
 */

#include "autoconf.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"

/* redis://[[user]:pass@]host[:port][/db]: 0, or -1 with why (never the password). */
int
redis_url_parse(const char *url, struct redis_url *u, char *why, size_t len)
{
	static const char	 scheme[] = "redis://";
	const char		*p, *at, *colon, *end, *slash;
	char			*ep;
	long			 v;
	size_t			 n;

	memset(u, 0, sizeof *u);
	u->port = 6379;
	if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
		snprintf(why, len, "the URL must begin with redis:// (TLS, rediss://, is not "
		    "supported by this build's hiredis)");
		return (-1);
	}
	p = url + sizeof scheme - 1;
	slash = strchr(p, '/');
	end = slash != NULL ? slash : p + strlen(p);
	/* The last '@' before the path: a password may hold one. */
	at = NULL;
	for (const char *c = p; c < end; c++)
		if (*c == '@')
			at = c;
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon == NULL) {
			snprintf(why, len, "user information must be user:password@ or "
			    ":password@");
			return (-1);
		}
		if ((size_t)(colon - p) >= sizeof u->user ||
		    (size_t)(at - colon - 1) >= sizeof u->pass) {
			snprintf(why, len, "the user name or password is too long");
			return (-1);
		}
		memcpy(u->user, p, (size_t)(colon - p));
		memcpy(u->pass, colon + 1, (size_t)(at - colon - 1));
		if (u->pass[0] == '\0') {
			snprintf(why, len, "the password after ':' is empty");
			return (-1);
		}
		p = at + 1;
	}
	colon = memchr(p, ':', (size_t)(end - p));
	n = (size_t)((colon != NULL ? colon : end) - p);
	if (n == 0 || n >= sizeof u->host) {
		snprintf(why, len, "no host, or a host name too long");
		return (-1);
	}
	memcpy(u->host, p, n);
	if (colon != NULL) {
		errno = 0;
		v = strtol(colon + 1, &ep, 10);
		if (ep == colon + 1 || ep != end || errno != 0 || v < 1 || v > 65535) {
			snprintf(why, len, "the port must be a number from 1 to 65535");
			return (-1);
		}
		u->port = (int)v;
	}
	if (slash != NULL && slash[1] != '\0') {
		errno = 0;
		v = strtol(slash + 1, &ep, 10);
		if (*ep != '\0' || errno != 0 || v < 0 || v > INT_MAX) {
			snprintf(why, len, "the database after '/' must be a number from 0");
			return (-1);
		}
		u->db = (int)v;
	}
	return (0);
}
