/*
 * priv.c: privileges. Who may connect (the allow lists, checked against the peer's
 * credentials and groups as the kernel recorded them at connect: SO_PEERCRED and
 * SO_PEERGROUPS), who the master runs as once its socket is bound (the configured
 * user; when a queue's workers run as yet another user, the master keeps exactly
 * CAP_SETUID, CAP_SETGID and CAP_KILL for that and nothing else), and what a worker
 * becomes before it runs a job: its queue's user and group, its resource limits, and no
 * capabilities at all.
 *
 * Whatever started as root and gives root up also gives up the way back through exec:
 * the bounding set is cut down to what is kept, the securebits are set and locked so
 * that uid 0 means nothing to execve (SECBIT_NOROOT), uid changes neither grant nor
 * take capabilities behind our back (SECBIT_NO_SETUID_FIXUP: we set them ourselves),
 * SECBIT_KEEP_CAPS stays off and ambient capabilities cannot be raised, and
 * no_new_privs is set, so setuid and file-capability programs grant nothing either.
 * What that still leaves a master with CAP_SETUID is in jobpoold(8), PRIVILEGES.
 *
 * Who may do what once connected is here too: jobs belong to the uid that submitted
 * them (the owner table), and administrators (root, the daemon's user, admin_users,
 * admin_groups) may act on every job and alone RELOAD and RETRY all; server.c asks.
 *
 * Names are resolved when a configuration is loaded or applied, never per connection:
 * a name-service lookup may block, and the master must not.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <linux/capability.h>
#include <linux/securebits.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobpoold.h"
#include "log.h"
#include "priv.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS	59	/* Linux 4.13; asm-generic's number */
#endif

/* What the master keeps when a queue's workers run as a user of their own. */
#define PRIV_MASTER_CAPS \
	((1ULL << CAP_SETUID) | (1ULL << CAP_SETGID) | (1ULL << CAP_KILL))

/* The securebits of anything that gave up root; every one of them locked. */
#define PRIV_SECUREBITS \
	(SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | \
	 SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED | \
	 SECBIT_KEEP_CAPS_LOCKED | \
	 SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)

/* Users and groups named in the config (allow_*, admin_*), resolved to ids at load. */
struct idlist {
	uid_t	*uids;
	size_t	 nuids;
	gid_t	*gids;
	size_t	 ngids;
};

/* The peers allowed in. */
static struct idlist	 acl;
static int		 acl_on;

/*
 * Administrators besides root and the daemon's own user: they see and act on every
 * job, and only they may RELOAD and RETRY all. Resolved like the allow lists; admin_gen
 * changes with every new set, so a connection's cached answer (server.c) is asked again
 * after a reload.
 */
static struct idlist	 admins;
static uint64_t	 admin_gen = 1;

/*
 * Who owns jobs. A job holds 16 bits for its owner (struct job must stay 72 bytes): an
 * index into this table of every uid that connected (or owns a job in the journal)
 * since the start. It only grows, so an index never changes its meaning; it holds at
 * most PRIV_OWNERS_MAX uids (384 KiB). Index 0 is root's from the start: a job made
 * without an owner (from an older journal) is root's, so only administrators see it.
 */
#define PRIV_OWNERS_MAX	65536
static uid_t	*owner_uids;		/* by index */
static uint16_t	*owner_sorted;		/* indices, in the order of their uids */
static uint32_t	 nowners;
static uint32_t	 capowners;

/* Set once the master dropped root without keeping what switching users takes. */
static int	 priv_gave_up_switch;

static void	priv_admin_set(const struct config *);

/* Refusals: at most one line a second; the others are counted and summed up. */
static void	priv_refused_sum(unsigned long, unsigned long long);
static struct log_limit	 refused_limit = { 1, 1000, priv_refused_sum, 0, 0, 0, 0 };
static struct priv_peer	 refused_last;	/* the last refused peer not logged */

/* Resolve a user name or decimal uid. 0, or -1. */
int
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

/* Is uid the user called name (or with that decimal uid)? */
int
priv_is_user(const char *name, uid_t uid)
{
	uid_t	u;

	return (priv_uid(name, &u, NULL) == 0 && u == uid);
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

static void
idlist_free(struct idlist *l)
{
	free(l->uids);
	free(l->gids);
	memset(l, 0, sizeof *l);
}

/*
 * Resolve what_users and what_groups ("allow" or "admin", then _users, _groups) into
 * l. A name that does not resolve now (the config checked it at load), or that finds no
 * memory, is logged and left out: the list only ever grants less.
 */
static void
idlist_set(struct idlist *l, const char *what, char **users, int nusers, char **groups,
    int ngroups)
{
	uid_t	*nu, uid;
	gid_t	*ng, gid;
	int	 i;

	idlist_free(l);
	for (i = 0; i < nusers; i++) {
		if (priv_uid(users[i], &uid, NULL) != 0) {
			log_warnx("%s_users: no user '%s'; ignored", what, users[i]);
			continue;
		}
		if ((nu = reallocarray(l->uids, l->nuids + 1, sizeof *nu)) == NULL) {
			log_warnx("%s_users: out of memory; '%s' ignored", what, users[i]);
			continue;
		}
		l->uids = nu;
		l->uids[l->nuids++] = uid;
	}
	for (i = 0; i < ngroups; i++) {
		if (priv_gid(groups[i], &gid) != 0) {
			log_warnx("%s_groups: no group '%s'; ignored", what, groups[i]);
			continue;
		}
		if ((ng = reallocarray(l->gids, l->ngids + 1, sizeof *ng)) == NULL) {
			log_warnx("%s_groups: out of memory; '%s' ignored", what, groups[i]);
			continue;
		}
		l->gids = ng;
		l->gids[l->ngids++] = gid;
	}
}

/* Is gid on l? (gid_t)-1, unknown, never is. */
static int
idlist_has_gid(const struct idlist *l, gid_t gid)
{
	size_t	i;

	if (gid == (gid_t)-1)
		return (0);
	for (i = 0; i < l->ngids; i++) {
		if (l->gids[i] == gid)
			return (1);
	}
	return (0);
}

/* Is a peer with this uid, primary gid and supplementary groups on l? */
static int
idlist_has(const struct idlist *l, uid_t uid, gid_t gid, const gid_t *groups,
    size_t ngroups)
{
	size_t	i;

	for (i = 0; i < l->nuids; i++) {
		if (l->uids[i] == uid)
			return (1);
	}
	if (idlist_has_gid(l, gid))
		return (1);
	for (i = 0; i < ngroups; i++) {
		if (idlist_has_gid(l, groups[i]))
			return (1);
	}
	return (0);
}

/*
 * Build the allow lists of cf (at start and on reload). Groups are kept as gids and
 * matched at connect against the peer's own groups (priv_peer_check), not against the
 * group database's member lists: those miss groups given by other means (PAM, setpriv,
 * a service manager) and would cost a blocking lookup per member.
 */
void
priv_acl_set(const struct config *cf)
{
	acl_on = cf->nallow_users > 0 || cf->nallow_groups > 0;
	idlist_set(&acl, "allow", cf->allow_users, cf->nallow_users, cf->allow_groups,
	    cf->nallow_groups);
	priv_admin_set(cf);
}

/*
 * Build the administrator lists of cf. A name that no longer resolves (the config
 * checked it at load) is logged and left out: fewer administrators, never more.
 */
static void
priv_admin_set(const struct config *cf)
{
	admin_gen++;
	idlist_set(&admins, "admin", cf->admin_users, cf->nadmin_users, cf->admin_groups,
	    cf->nadmin_groups);
}

/*
 * May a peer with these credentials connect? Root and the daemon's own user always
 * may; otherwise, with allow lists set, its uid, its primary gid or one of its
 * supplementary groups must be on them.
 */
int
priv_acl_allows(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups)
{
	if (!acl_on || uid == 0 || uid == geteuid())
		return (1);
	return (idlist_has(&acl, uid, gid, groups, ngroups));
}

/*
 * Is a peer with these credentials an administrator? Root and the daemon's own user
 * always are; otherwise its uid must be on admin_users, or its primary gid or one of
 * its supplementary groups on admin_groups.
 */
int
priv_admin_allows(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups)
{
	if (uid == 0 || uid == geteuid())
		return (1);
	if (uid == (uid_t)-1)
		return (0);
	return (idlist_has(&admins, uid, gid, groups, ngroups));
}

/* The administrator lists in force: a new number after every priv_acl_set. */
uint64_t
priv_admin_gen(void)
{
	return (admin_gen);
}

/*
 * The peer's supplementary groups (SO_PEERGROUPS, Linux 4.13): into buf if they fit,
 * else into *big (malloc'd, the caller frees it). 0 with *groups and *ngroups, or -1.
 */
static int
priv_peer_groups(int fd, gid_t *buf, size_t nbuf, gid_t **big, gid_t **groups,
    size_t *ngroups)
{
	gid_t		*p = buf, *np;
	socklen_t	 len = (socklen_t)(nbuf * sizeof *buf);
	int		 tries;

	*big = NULL;
	/* The groups were fixed at connect: a second try with their size is enough. */
	for (tries = 0; tries < 3; tries++) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p, &len) == 0) {
			*groups = p;
			*ngroups = len / sizeof *p;
			return (0);
		}
		if (errno != ERANGE)
			return (-1);
		/* len is now the size needed. */
		if ((np = realloc(*big, len > 0 ? len : sizeof *np)) == NULL)
			return (-1);
		*big = p = np;
	}
	errno = ERANGE;
	return (-1);
}

/*
 * May the peer on fd connect? With an allow list set, a peer whose credentials cannot
 * be read is refused: the list would otherwise not apply to it.
 */
int
priv_peer_check(int fd, struct priv_peer *peer, char **cause)
{
	struct ucred	 cred;
	socklen_t	 clen = sizeof cred;
	gid_t		 buf[64], *big = NULL, *groups = NULL;
	size_t		 ngroups = 0;
	int		 rc = -1;

	*cause = NULL;
	peer->pid = 0;
	peer->uid = (uid_t)-1;
	peer->gid = (gid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == -1) {
		if (!acl_on)
			return (0);
		if (asprintf(cause, "getsockopt SO_PEERCRED: %s; refused, since "
		    "allow_users or allow_groups is set", strerror(errno)) == -1)
			*cause = NULL;
		return (-1);
	}
	peer->pid = cred.pid;
	peer->uid = cred.uid;
	peer->gid = cred.gid;
	if (priv_acl_allows(cred.uid, cred.gid, NULL, 0))
		return (0);
	if (acl.ngids == 0)
		goto refuse;
	if (priv_peer_groups(fd, buf, sizeof buf / sizeof buf[0], &big, &groups,
	    &ngroups) == -1) {
		if (asprintf(cause, "not in allow_users or allow_groups by uid or "
		    "primary group, and its supplementary groups are unknown "
		    "(getsockopt SO_PEERGROUPS: %s)", strerror(errno)) == -1)
			*cause = NULL;
		goto out;
	}
	if (priv_acl_allows(cred.uid, cred.gid, groups, ngroups)) {
		rc = 0;
		goto out;
	}
refuse:
	*cause = strdup("not in allow_users or allow_groups");
out:
	free(big);
	return (rc);
}

/*
 * Is the peer on fd, whose uid SO_PEERCRED gave at accept, an administrator? Its
 * groups are read as allow_groups reads them (as they were at connect); when they
 * cannot be read it is not one.
 */
int
priv_peer_admin(int fd, uid_t uid)
{
	struct ucred	 cred;
	socklen_t	 clen = sizeof cred;
	gid_t		 buf[64], *big = NULL, *groups = NULL;
	size_t		 ngroups = 0;
	int		 rc;

	if (priv_admin_allows(uid, (gid_t)-1, NULL, 0))
		return (1);
	if (uid == (uid_t)-1 || admins.ngids == 0)
		return (0);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == -1 ||
	    cred.uid != uid)
		return (0);
	if (priv_admin_allows(uid, cred.gid, NULL, 0))
		return (1);
	if (priv_peer_groups(fd, buf, sizeof buf / sizeof buf[0], &big, &groups,
	    &ngroups) == -1)
		return (0);
	rc = priv_admin_allows(uid, cred.gid, groups, ngroups);
	free(big);
	return (rc);
}

/*
 * The owner index of uid, added to the table if it is new: 0 and up, or -1 when the
 * table is full or out of memory. Never blocks: a binary search, and a memmove when
 * a uid is new.
 */
int
priv_owner_index(uid_t uid)
{
	uint32_t	 lo, hi, mid, ncap;
	uid_t		*nu;
	uint16_t	*ns;

	if (nowners == 0 && uid != 0 && priv_owner_index(0) != 0)
		return (-1);
	lo = 0;
	hi = nowners;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (owner_uids[owner_sorted[mid]] == uid)
			return (owner_sorted[mid]);
		if (owner_uids[owner_sorted[mid]] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (nowners == PRIV_OWNERS_MAX)
		return (-1);
	if (nowners == capowners) {
		ncap = capowners == 0 ? 16 : capowners * 2;
		if (ncap > PRIV_OWNERS_MAX)
			ncap = PRIV_OWNERS_MAX;
		if ((nu = reallocarray(owner_uids, ncap, sizeof *nu)) == NULL)
			return (-1);
		owner_uids = nu;
		if ((ns = reallocarray(owner_sorted, ncap, sizeof *ns)) == NULL)
			return (-1);
		owner_sorted = ns;
		capowners = ncap;
	}
	owner_uids[nowners] = uid;
	memmove(owner_sorted + lo + 1, owner_sorted + lo,
	    (nowners - lo) * sizeof *owner_sorted);
	owner_sorted[lo] = (uint16_t)nowners;
	return ((int)nowners++);
}

/* The uid of owner index idx: root for an index not (or no longer) in the table. */
uid_t
priv_owner_uid(uint16_t idx)
{
	return (idx < nowners ? owner_uids[idx] : 0);
}

/* How many uids the owner table holds. */
uint32_t
priv_owner_count(void)
{
	return (nowners);
}

/* The end of a second in which refusals were held back: how many, and the last. */
static void
priv_refused_sum(unsigned long held, unsigned long long span_ms)
{
	log_warnx("refused %lu more connection%s in %.1f s, not logged one by one (at "
	    "most one a second is); the last from uid %ld gid %ld (pid %ld)", held,
	    held == 1 ? "" : "s", (double)span_ms / 1000.0, (long)refused_last.uid,
	    (long)refused_last.gid, (long)refused_last.pid);
}

/*
 * Log a refused peer. A local client that connects in a loop must not flood the
 * journal: one line a second at most; the others are counted, and a timer says how
 * many once the second is over.
 */
void
priv_peer_refused(const struct priv_peer *peer, const char *cause)
{
	if (cause == NULL)
		cause = "refused (out of memory saying why)";
	if (!log_limit_pass(&refused_limit)) {
		refused_last = *peer;
		return;
	}
	if (peer->uid == (uid_t)-1)
		log_warnx("refused a connection: %s", cause);
	else
		log_warnx("refused a connection from uid %ld gid %ld (pid %ld): %s",
		    (long)peer->uid, (long)peer->gid, (long)peer->pid, cause);
}

void
priv_acl_free(void)
{
	log_limit_reset(&refused_limit);
	idlist_free(&acl);
	acl_on = 0;
	idlist_free(&admins);
	admin_gen++;
	/* Called once the jobs are gone: no job's owner index outlives its table. */
	free(owner_uids);
	free(owner_sorted);
	owner_uids = NULL;
	owner_sorted = NULL;
	nowners = capowners = 0;
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

/*
 * Set the process's capabilities to exactly mask (effective and permitted; none
 * inheritable, which also empties the ambient set).
 */
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

/* This process's effective capabilities, and whether it has any at all. 0, or -1. */
static int
priv_capget(uint64_t *eff, int *any)
{
	struct __user_cap_header_struct	hdr;
	struct __user_cap_data_struct	data[2];

	memset(&hdr, 0, sizeof hdr);
	memset(data, 0, sizeof data);
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	if (syscall(SYS_capget, &hdr, data) == -1)
		return (-1);
	*eff = (uint64_t)data[0].effective | (uint64_t)data[1].effective << 32;
	/* The ambient set is within permitted and inheritable. */
	*any = (data[0].effective | data[1].effective | data[0].permitted |
	    data[1].permitted | data[0].inheritable | data[1].inheritable) != 0;
	return (0);
}

/*
 * With CAP_SETPCAP (so while root): cut the bounding set down to keep, and lock the
 * securebits, so that no exec, as uid 0 or any other, gives back what goes. Then set
 * no_new_privs. 0, or -1 with *call naming what failed.
 */
static int
priv_restrict(uint64_t keep, const char **call)
{
	int	cap, have, bits;

	for (cap = 0; (have = prctl(PR_CAPBSET_READ, cap, 0, 0, 0)) >= 0; cap++) {
		if (have == 0 || (cap < 64 && (keep & (1ULL << cap)) != 0))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1) {
			*call = "prctl PR_CAPBSET_DROP";
			return (-1);
		}
	}
	if ((bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0)) == -1) {
		*call = "prctl PR_GET_SECUREBITS";
		return (-1);
	}
	/* Other bits (newer kernels have more) are left as they are. */
	bits = (bits & ~SECBIT_KEEP_CAPS) | PRIV_SECUREBITS;
	if (prctl(PR_SET_SECUREBITS, (unsigned long)bits, 0, 0, 0) == -1) {
		*call = "prctl PR_SET_SECUREBITS";
		return (-1);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		*call = "prctl PR_SET_NO_NEW_PRIVS";
		return (-1);
	}
	return (0);
}

/*
 * Become uid, with gid as the only group, real, effective and saved alike: 0, or -1
 * with *call naming what failed.
 */
static int
priv_switch(uid_t uid, gid_t gid, const char **call)
{
	*call = "setgroups";
	if (setgroups(1, &gid) == -1)
		return (-1);
	*call = "setresgid";
	if (setresgid(gid, gid, gid) == -1)
		return (-1);
	*call = "setresuid";
	return (setresuid(uid, uid, uid));
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
 * the workers' own users need, and no way back to more through exec. 0, or -1 with
 * *cause.
 */
int
priv_drop_master(const struct config *cf, const char *sockdir, char **cause)
{
	const char	*call = NULL;
	uint64_t	 keep;
	uid_t		 uid;
	gid_t		 gid, ugid;

	*cause = NULL;
	if (geteuid() != 0) {
		if (cf->user != NULL || cf->group != NULL)
			log_warnx("not started as root: user and group are ignored");
		return (0);
	}
	if (cf->user == NULL) {
		/* The embedded defaults are no file to edit: say to give one. */
		log_warnx("running as root with every capability: set 'user' in %s so "
		    "that jobpoold drops root once its socket is bound%s; its workers "
		    "run as root without capabilities", cf->path == NULL ?
		    "the configuration" : strcmp(cf->path, CONFIG_EMBEDDED_NAME) == 0 ?
		    "a configuration file (jobpoold -c FILE; the embedded defaults run "
		    "as root)" : cf->path, cf->group != NULL ?
		    " ('group' without 'user' is ignored)" : "");
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
	if (sockdir != NULL && chown(sockdir, uid, gid) == -1)
		log_warnx("cannot hand the socket's directory to user %s: chown %s: %s; "
		    "the socket will be left behind at exit", cf->user, sockdir,
		    strerror(errno));
	keep = priv_queues_switch(cf) ? PRIV_MASTER_CAPS : 0;
	/* All of it while still root: it takes CAP_SETPCAP. */
	if (priv_restrict(keep, &call) != 0)
		goto fail;
	/* SECBIT_NO_SETUID_FIXUP: the capabilities stay until capset says otherwise. */
	if (priv_switch(uid, gid, &call) != 0)
		goto fail;
	call = "capset";
	if (priv_capset(keep) == -1)
		goto fail;
	priv_gave_up_switch = keep == 0;
	log_info("running as user %s (uid %ld, gid %ld)%s", cf->user, (long)uid,
	    (long)gid, keep ? ", keeping CAP_SETUID, CAP_SETGID and CAP_KILL for "
	    "the queues' worker users" : ", without capabilities");
	return (0);
fail:
	if (asprintf(cause, "cannot switch to user %s: %s: %s", cf->user, call,
	    strerror(errno)) == -1)
		*cause = NULL;
	return (-1);
}

/* Can the master still start workers as other users? */
int
priv_can_switch(void)
{
	return (!priv_gave_up_switch);
}

/* The soft RLIMIT_NOFILE jobpoold was started with, once the master raised its own. */
static struct rlimit	priv_nofile_start;
static int		priv_nofile_raised;

/*
 * Raise the master's soft RLIMIT_NOFILE to its hard limit: the soft limit most
 * daemons start with (1024 under systemd) runs out before max_connections does.
 * Workers do not need that many, and the programs of exec: handlers may be hurt by a
 * huge one (select() sees no descriptor past 1023; some close every descriptor up to
 * the limit), so priv_worker() gives them back the limit jobpoold was started with.
 * A hard limit of infinity is more than the kernel allows (fs.nr_open): then the
 * soft limit goes as far as that.
 */
int
priv_nofile_raise(unsigned long long *was, unsigned long long *now)
{
	struct rlimit	rl;
	FILE		*fp;
	unsigned long long nr;

	*was = *now = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return (-1);
	*was = *now = (unsigned long long)rl.rlim_cur;
	if (rl.rlim_cur == rl.rlim_max)
		return (0);
	priv_nofile_start = rl;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		if ((fp = fopen("/proc/sys/fs/nr_open", "r")) == NULL)
			return (-1);
		if (fscanf(fp, "%llu", &nr) != 1 || nr <= priv_nofile_start.rlim_cur ||
		    (rl.rlim_max != RLIM_INFINITY && nr >= rl.rlim_max)) {
			fclose(fp);
			errno = EPERM;
			return (-1);
		}
		fclose(fp);
		rl.rlim_cur = (rlim_t)nr;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			return (-1);
	}
	priv_nofile_raised = 1;
	*now = (unsigned long long)rl.rlim_cur;
	return (0);
}

/* In a worker: the soft RLIMIT_NOFILE jobpoold was started with (see above). */
static int
priv_nofile_restore(char **cause)
{
	struct rlimit	rl;

	if (!priv_nofile_raised || getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return (0);
	rl.rlim_cur = priv_nofile_start.rlim_cur;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		if (asprintf(cause, "restoring RLIMIT_NOFILE %llu: %s",
		    (unsigned long long)rl.rlim_cur, strerror(errno)) == -1)
			*cause = NULL;
		return (-1);
	}
	return (0);
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
 * group, and no capabilities, even when it stays root. A worker of a master that
 * stayed root also gives up the way back through exec, as the master does when it
 * drops root: bounding set, securebits and no_new_privs. (A worker of a master that
 * kept CAP_SETUID has no CAP_SETPCAP to do that with; it has the master's.) 0, or -1
 * with *cause.
 */
int
priv_worker(const struct queue_config *qc, char **cause)
{
	const char	*call = NULL;
	uint64_t	 eff = 0;
	int		 any = 0;
	uid_t		 uid = getuid();
	gid_t		 gid = getgid(), ugid = (gid_t)-1;

	*cause = NULL;
	/* The queue's rlimit_nofile, if set, replaces it right after. */
	if (priv_nofile_restore(cause) != 0)
		return (-1);
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
	if (priv_capget(&eff, &any) == -1) {
		call = "capget";
		goto fail_caps;
	}
	/* Root's worker; one of a master that kept CAP_SETUID inherited its own. */
	if ((eff & (1ULL << CAP_SETPCAP)) != 0 && priv_restrict(0, &call) != 0)
		goto fail_caps;
	if ((qc->user != NULL || qc->group != NULL) && priv_switch(uid, gid, &call) != 0)
		goto fail_switch;
	/*
	 * Whatever the master kept, or root had, is not the worker's to have.
	 * Explicitly: with SECBIT_NO_SETUID_FIXUP, a uid change no longer drops them.
	 * Not without any: a seccomp filter may refuse capset (systemd's ~@privileged
	 * does).
	 */
	call = "capset";
	if (any && priv_capset(0) == -1)
		goto fail_caps;
	return (0);
fail_switch:
	if (asprintf(cause, "cannot run as %s%s%s: %s: %s",
	    qc->user != NULL ? qc->user : "", qc->group != NULL ? ":" : "",
	    qc->group != NULL ? qc->group : "", call, strerror(errno)) == -1)
		*cause = NULL;
	return (-1);
fail_caps:
	if (asprintf(cause, "cannot drop the worker's privileges: %s: %s", call,
	    strerror(errno)) == -1)
		*cause = NULL;
	return (-1);
}
