/*
 * priv.c: privileges. Who may connect (the allow lists, checked against SO_PEERCRED),
 * who the master runs as once its socket is bound (the configured user; when a queue's
 * workers run as yet another user, the master keeps exactly CAP_SETUID, CAP_SETGID and
 * CAP_KILL for that and nothing else), and what a worker becomes before it runs a job:
 * its queue's user and group, its resource limits, and no capabilities at all.
 *
 * Names are resolved when a configuration is loaded or applied, never per connection:
 * a name-service lookup may block, and the master must not.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <linux/capability.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobpoold.h"
#include "log.h"
#include "priv.h"

/* The peers allowed in, resolved: uids, gids (primary), and members of those groups. */
static uid_t	*acl_uids;
static size_t	 acl_nuids;
static gid_t	*acl_gids;
static size_t	 acl_ngids;
static int	 acl_on;

/* Resolve a user name or decimal uid. 0, or -1. */
static int
priv_uid(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd	*pw;
	char		*end;
	unsigned long	 v;

	if ((pw = getpwnam(name)) != NULL) {
		*uid = pw->pw_uid;
		if (gid != NULL)
			*gid = pw->pw_gid;
		return (0);
	}
	errno = 0;
	v = strtoul(name, &end, 10);
	if (*name == '\0' || *end != '\0' || errno != 0 || v >= (uid_t)-1)
		return (-1);
	*uid = (uid_t)v;
	if (gid != NULL)
		*gid = (gid_t)-1;
	return (0);
}

/* Resolve a group name or decimal gid. 0, or -1. */
static int
priv_gid(const char *name, gid_t *gid)
{
	struct group	*gr;
	char		*end;
	unsigned long	 v;

	if ((gr = getgrnam(name)) != NULL) {
		*gid = gr->gr_gid;
		return (0);
	}
	errno = 0;
	v = strtoul(name, &end, 10);
	if (*name == '\0' || *end != '\0' || errno != 0 || v >= (gid_t)-1)
		return (-1);
	*gid = (gid_t)v;
	return (0);
}

static int
acl_add_uid(uid_t uid)
{
	uid_t	*n;

	if ((n = reallocarray(acl_uids, acl_nuids + 1, sizeof *n)) == NULL)
		return (-1);
	acl_uids = n;
	acl_uids[acl_nuids++] = uid;
	return (0);
}

/* Build the allow lists of cf (at start and on reload). */
void
priv_acl_set(const struct config *cf)
{
	struct group	*gr;
	gid_t		*ng;
	uid_t		 uid;
	gid_t		 gid;
	char		**m;
	int		 i;

	free(acl_uids);
	free(acl_gids);
	acl_uids = NULL;
	acl_gids = NULL;
	acl_nuids = acl_ngids = 0;
	acl_on = cf->nallow_users > 0 || cf->nallow_groups > 0;
	for (i = 0; i < cf->nallow_users; i++) {
		if (priv_uid(cf->allow_users[i], &uid, NULL) != 0) {
			log_warnx("allow_users: no user '%s'; ignored", cf->allow_users[i]);
			continue;
		}
		(void)acl_add_uid(uid);
	}
	for (i = 0; i < cf->nallow_groups; i++) {
		if (priv_gid(cf->allow_groups[i], &gid) != 0) {
			log_warnx("allow_groups: no group '%s'; ignored",
			    cf->allow_groups[i]);
			continue;
		}
		if ((ng = reallocarray(acl_gids, acl_ngids + 1, sizeof *ng)) != NULL) {
			acl_gids = ng;
			acl_gids[acl_ngids++] = gid;
		}
		/* Supplementary members, resolved now rather than per connection. */
		if ((gr = getgrgid(gid)) == NULL)
			continue;
		for (m = gr->gr_mem; *m != NULL; m++) {
			if (priv_uid(*m, &uid, NULL) == 0)
				(void)acl_add_uid(uid);
		}
	}
}

/*
 * May a peer with these credentials connect? Root and the daemon's own user always
 * may; otherwise, with allow lists set, its uid or primary gid must be on them.
 */
int
priv_acl_allows(uid_t uid, gid_t gid)
{
	size_t	i;

	if (!acl_on || uid == 0 || uid == geteuid())
		return (1);
	for (i = 0; i < acl_nuids; i++) {
		if (acl_uids[i] == uid)
			return (1);
	}
	for (i = 0; i < acl_ngids; i++) {
		if (acl_gids[i] == gid)
			return (1);
	}
	return (0);
}

void
priv_acl_free(void)
{
	free(acl_uids);
	free(acl_gids);
	acl_uids = NULL;
	acl_gids = NULL;
	acl_nuids = acl_ngids = 0;
	acl_on = 0;
}

/* Give the socket (and the directory we made for it) its configured owner and group. */
int
priv_socket_owner(const struct config *cf, const char *path, char **cause)
{
	uid_t	uid = (uid_t)-1;
	gid_t	gid = (gid_t)-1;

	*cause = NULL;
	if (cf->socket_owner != NULL && priv_uid(cf->socket_owner, &uid, NULL) != 0) {
		if (asprintf(cause, "socket_owner: no user '%s'", cf->socket_owner) == -1)
			*cause = NULL;
		return (-1);
	}
	if (cf->socket_group != NULL && priv_gid(cf->socket_group, &gid) != 0) {
		if (asprintf(cause, "socket_group: no group '%s'", cf->socket_group) == -1)
			*cause = NULL;
		return (-1);
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) == -1) {
		if (asprintf(cause, "chown %s: %s", path, strerror(errno)) == -1)
			*cause = NULL;
		return (-1);
	}
	return (0);
}

/* Set the process's capabilities to exactly mask (effective and permitted). */
static int
priv_capset(uint64_t mask)
{
	struct __user_cap_header_struct	hdr;
	struct __user_cap_data_struct	data[2];

	memset(&hdr, 0, sizeof hdr);
	memset(data, 0, sizeof data);
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	data[0].effective = data[0].permitted = (uint32_t)mask;
	data[1].effective = data[1].permitted = (uint32_t)(mask >> 32);
	return ((int)syscall(SYS_capset, &hdr, data));
}

/* Does any queue run its workers as a user or group of its own? */
static int
priv_queues_switch(const struct config *cf)
{
	int	i;

	for (i = 0; i < cf->nqueues; i++) {
		if (cf->queues[i].user != NULL || cf->queues[i].group != NULL)
			return (1);
	}
	return (0);
}

/*
 * After binding: if root and a user is configured, become that user. Keep only what
 * the workers' own users need. 0, or -1 with *cause.
 */
int
priv_drop_master(const struct config *cf, const char *sockdir, char **cause)
{
	uid_t	uid;
	gid_t	gid, ugid;
	int	keep;

	*cause = NULL;
	if (geteuid() != 0) {
		if (cf->user != NULL || cf->group != NULL)
			log_warnx("not started as root: user and group are ignored");
		return (0);
	}
	if (cf->user == NULL) {
		if (cf->group != NULL)
			log_warnx("group is set without user: staying root");
		return (0);
	}
	if (priv_uid(cf->user, &uid, &ugid) != 0) {
		if (asprintf(cause, "user: no user '%s'", cf->user) == -1)
			*cause = NULL;
		return (-1);
	}
	gid = ugid;
	if (cf->group != NULL && priv_gid(cf->group, &gid) != 0) {
		if (asprintf(cause, "group: no group '%s'", cf->group) == -1)
			*cause = NULL;
		return (-1);
	}
	if (gid == (gid_t)-1) {
		if (asprintf(cause, "user: '%s' has no primary group; set group", cf->user) == -1)
			*cause = NULL;
		return (-1);
	}
	/* The daemon must be able to remove its socket at exit. */
	if (sockdir != NULL)
		(void)chown(sockdir, uid, gid);
	keep = priv_queues_switch(cf);
	if (keep && prctl(PR_SET_KEEPCAPS, 1) == -1)
		goto fail;
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1)
		goto fail;
	if (keep) {
		/* Only what it takes to start workers as other users and signal them. */
		if (priv_capset((1ULL << CAP_SETUID) | (1ULL << CAP_SETGID) |
		    (1ULL << CAP_KILL)) == -1)
			goto fail;
		(void)prctl(PR_SET_KEEPCAPS, 0);
	}
	log_info("running as user %s (uid %ld, gid %ld)%s", cf->user, (long)uid,
	    (long)gid, keep ? ", keeping CAP_SETUID, CAP_SETGID and CAP_KILL for "
	    "the queues' worker users" : "");
	return (0);
fail:
	if (asprintf(cause, "cannot switch to user %s: %s", cf->user,
	    strerror(errno)) == -1)
		*cause = NULL;
	return (-1);
}

/* Apply one resource limit; 0 means unchanged. */
static int
priv_rlimit(int resource, uint64_t value, const char *name, char **cause)
{
	struct rlimit	rl;

	if (value == 0)
		return (0);
	rl.rlim_cur = rl.rlim_max = (rlim_t)value;
	if (setrlimit(resource, &rl) == -1) {
		if (asprintf(cause, "%s %llu: %s", name, (unsigned long long)value,
		    strerror(errno)) == -1)
			*cause = NULL;
		return (-1);
	}
	return (0);
}

/*
 * In a new worker, before its handler starts: the queue's limits, then its user and
 * group, and no capabilities. 0, or -1 with *cause.
 */
int
priv_worker(const struct queue_config *qc, char **cause)
{
	uid_t	uid = getuid();
	gid_t	gid = getgid(), ugid = (gid_t)-1;

	*cause = NULL;
	if (priv_rlimit(RLIMIT_AS, qc->rlimit_as, "rlimit_as", cause) != 0 ||
	    priv_rlimit(RLIMIT_CPU, qc->rlimit_cpu, "rlimit_cpu", cause) != 0 ||
	    priv_rlimit(RLIMIT_NOFILE, qc->rlimit_nofile, "rlimit_nofile", cause) != 0)
		return (-1);
	if (qc->user != NULL && priv_uid(qc->user, &uid, &ugid) != 0) {
		if (asprintf(cause, "user: no user '%s'", qc->user) == -1)
			*cause = NULL;
		return (-1);
	}
	if (qc->user != NULL && ugid != (gid_t)-1)
		gid = ugid;
	if (qc->group != NULL && priv_gid(qc->group, &gid) != 0) {
		if (asprintf(cause, "group: no group '%s'", qc->group) == -1)
			*cause = NULL;
		return (-1);
	}
	if (qc->user != NULL || qc->group != NULL) {
		/* Capabilities go with the uid change: no KEEPCAPS here. */
		(void)prctl(PR_SET_KEEPCAPS, 0);
		if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
		    setresuid(uid, uid, uid) == -1) {
			if (asprintf(cause, "cannot run as %s%s%s: %s",
			    qc->user != NULL ? qc->user : "", qc->group != NULL ? ":" : "",
			    qc->group != NULL ? qc->group : "", strerror(errno)) == -1)
				*cause = NULL;
			return (-1);
		}
	}
	/* Whatever the master kept is not the worker's to have. */
	if (geteuid() != 0)
		(void)priv_capset(0);
	return (0);
}
