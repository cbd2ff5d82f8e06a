/*
 * priv.h: privileges: the peer allow lists, the master's privilege drop, and what a
 * worker becomes before it runs jobs (priv.c).
 */

#ifndef PRIV_H
#define PRIV_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

struct config;
struct queue_config;

/* A connected peer as the kernel recorded it at connect time. */
struct priv_peer {
	pid_t	pid;		/* 0 when unknown */
	uid_t	uid;		/* (uid_t)-1 when unknown */
	gid_t	gid;		/* (gid_t)-1 when unknown */
};

/* Build the allow lists from cf (start-up and reload). */
void	priv_acl_set(const struct config *cf);
/*
 * May a peer with this uid, primary gid and supplementary groups connect? 1 or 0.
 * groups may be NULL when ngroups is 0.
 */
int	priv_acl_allows(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups);
/*
 * May the peer on the connected socket fd connect? 0, or -1 with *cause (for the log;
 * NULL if out of memory). Fills *peer with what the kernel says, even on -1. Refuses a
 * peer whose credentials cannot be read whenever an allow list is set.
 */
int	priv_peer_check(int fd, struct priv_peer *peer, char **cause);
/* Log a refused peer: at most one line a second, then how many more were refused. */
void	priv_peer_refused(const struct priv_peer *peer, const char *cause);
/*
 * Administrators (admin_users, admin_groups; root and the daemon's user always are):
 * they act on every user's jobs, and only they may RELOAD and RETRY all. 1 or 0.
 */
int	priv_admin_allows(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups);
/* The same for the peer on fd, whose uid SO_PEERCRED gave; 0 if its groups are unknown. */
int	priv_peer_admin(int fd, uid_t uid);
/* Changes whenever the administrator lists do (a reload): cached answers are stale. */
uint64_t priv_admin_gen(void);
/*
 * Job owners: a uid's 16-bit index for struct job (added if new), or -1 when the table
 * is full (65,536 uids since the start) or out of memory. Index 0 is root.
 */
int	priv_owner_index(uid_t uid);
/* The uid of an owner index (root for one not in the table). */
uid_t	priv_owner_uid(uint16_t idx);
uint32_t priv_owner_count(void);
/*
 * Free the allow and administrator lists and the owner table (at exit, once the jobs
 * are freed), and log refusals not yet counted in the log.
 */
void	priv_acl_free(void);
/* The uid and primary gid ((gid_t)-1 if none) of a user name or decimal uid: 0, or -1. */
int	priv_uid(const char *name, uid_t *uid, gid_t *gid);
/* Is uid the user called name (a user name or a decimal uid)? */
int	priv_is_user(const char *name, uid_t uid);
/* chown the socket to socket_owner/socket_group. 0, or -1 with *cause. */
int	priv_socket_owner(const struct config *cf, const char *path, char **cause);
/* Root with a user set: become it (sockdir: a directory we made, chowned first). */
int	priv_drop_master(const struct config *cf, const char *sockdir, char **cause);
/*
 * Can the master still start workers as other users and groups? 0 once it dropped root
 * without keeping what that takes (no queue had a user or group of its own at start):
 * only a restart gets it back. 1 otherwise.
 */
int	priv_can_switch(void);
/*
 * In the master at start: raise the soft RLIMIT_NOFILE to the hard limit (each client
 * takes a descriptor). *was and *now say what it was and is; 0 if it could be read
 * and raised or needed no raising, -1 with errno if not. Workers go back to *was.
 */
int	priv_nofile_raise(unsigned long long *was, unsigned long long *now);
/* In a worker: rlimits, user and group, no capabilities. 0, or -1 with *cause. */
int	priv_worker(const struct queue_config *qc, char **cause);

#endif /* PRIV_H */
