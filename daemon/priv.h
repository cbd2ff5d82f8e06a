/*
 * priv.h: privileges: the peer allow lists, the master's privilege drop, and what a
 * worker becomes before it runs jobs (priv.c).
 */

#ifndef PRIV_H
#define PRIV_H

#include <sys/types.h>

struct config;
struct queue_config;

/* Build the allow lists from cf (start-up and reload). */
void	priv_acl_set(const struct config *cf);
/* May a peer with these credentials connect? */
int	priv_acl_allows(uid_t uid, gid_t gid);
void	priv_acl_free(void);
/* chown the socket to socket_owner/socket_group. 0, or -1 with *cause. */
int	priv_socket_owner(const struct config *cf, const char *path, char **cause);
/* Root with a user set: become it (sockdir: a directory we made, chowned first). */
int	priv_drop_master(const struct config *cf, const char *sockdir, char **cause);
/* In a worker: rlimits, user and group, no capabilities. 0, or -1 with *cause. */
int	priv_worker(const struct queue_config *qc, char **cause);

#endif /* PRIV_H */
