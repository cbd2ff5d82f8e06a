/*
 * redis_url.h: redis://[[user]:password@]host[:port][/db], taken apart.
 */

#ifndef REDIS_URL_H
#define REDIS_URL_H

#include <stddef.h>

struct redis_url {
	char		 host[256];
	int		 port;		/* default 6379 */
	int		 db;		/* default 0 */
	char		 user[128];	/* "": none (AUTH with the password alone) */
	char		 pass[256];	/* "": no AUTH */
};

/* 0, or -1 with why (which never quotes the password). */
int	redis_url_parse(const char *url, struct redis_url *u, char *why, size_t len);

#endif /* REDIS_URL_H */
