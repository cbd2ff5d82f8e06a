/*
 * check_priv.c: unit tests for daemon/priv.c: the peer allow lists (empty, users,
 * groups and their members, names that do not resolve, reloads), a worker's rlimits,
 * user, group and capabilities (priv_worker), the master's drop (priv_drop_master) and
 * the socket's owner (priv_socket_owner); administrators (admin_users, admin_groups,
 * also by a peer's groups) and the table of job owners. Anything that changes the process runs in a
 * forked child that reports what it became through a pipe. The user and group
 * switches need root and are skipped, saying so, without it.
 */

#include "autoconf.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <linux/capability.h>
#include <linux/securebits.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "jobpoold.h"
#include "log.h"
#include "priv.h"

#include "checkcapture.h"

/* Ids no account on a test machine has. */
#define UID_A	4242
#define UID_B	4243
#define GID_A	4343
#define GID_B	4344

static int
skip_unless_root(const char *what)
{
	if (geteuid() == 0)
		return (0);
	fprintf(stderr, "check_priv: skipping %s: needs root\n", what);
	return (1);
}

/* ------------------------------------------------------------------------------- */
/* Allow lists. */

static struct config *
acl_config(char **users, int nusers, char **groups, int ngroups)
{
	static struct config	cf;

	memset(&cf, 0, sizeof cf);
	cf.allow_users = users;
	cf.nallow_users = nusers;
	cf.allow_groups = groups;
	cf.nallow_groups = ngroups;
	return (&cf);
}

START_TEST(test_acl_empty)
{
	/* Before any set, and with both lists empty: anyone who can connect. */
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_A, NULL, 0), 1);
	priv_acl_set(acl_config(NULL, 0, NULL, 0));
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_A, NULL, 0), 1);
	ck_assert_int_eq(priv_acl_allows(UID_B, GID_B, NULL, 0), 1);
	ck_assert_int_eq(priv_acl_allows(0, 0, NULL, 0), 1);
	ck_assert_int_eq(priv_acl_allows((uid_t)-2, (gid_t)-2, NULL, 0), 1);
	priv_acl_free();
}
END_TEST

START_TEST(test_acl_users)
{
	char		*users[] = { (char *)"4242", NULL };
	struct passwd	*pw = getpwnam("nobody");
	uid_t		 me = geteuid(), nobody = 0;

	if (pw != NULL && pw->pw_uid != me) {
		users[1] = (char *)"nobody";
		nobody = pw->pw_uid;
	}
	priv_acl_set(acl_config(users, users[1] != NULL ? 2 : 1, NULL, 0));
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_A, NULL, 0), 1);
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_B, NULL, 0), 1);	/* any group */
	ck_assert_int_eq(priv_acl_allows(UID_B, GID_A, NULL, 0), 0);
	ck_assert_int_eq(priv_acl_allows(UID_B, GID_B, NULL, 0), 0);
	if (users[1] != NULL)
		ck_assert_int_eq(priv_acl_allows(nobody, GID_B, NULL, 0), 1);
	/* Root and the daemon's own user always may. */
	ck_assert_int_eq(priv_acl_allows(0, GID_B, NULL, 0), 1);
	ck_assert_int_eq(priv_acl_allows(me, GID_B, NULL, 0), 1);
	priv_acl_free();
}
END_TEST

/*
 * Administrators: root and the daemon's user always; admin_users by uid, admin_groups
 * by primary or supplementary group; not the allow lists; a new generation every set.
 */
START_TEST(test_admin_lists)
{
	char		*users[] = { (char *)"4242", (char *)"no-such-user-chk" };
	char		*groups[] = { (char *)"4344", (char *)"no-such-group-chk" };
	gid_t		 supp[] = { 20000, GID_B };
	struct config	*cf;
	uid_t		 me = geteuid();
	uint64_t	 gen;

	ck_assert_int_eq(priv_admin_allows(0, GID_A, NULL, 0), 1);
	ck_assert_int_eq(priv_admin_allows(me, GID_A, NULL, 0), 1);
	ck_assert_int_eq(priv_admin_allows(UID_A, GID_A, NULL, 0), 0);
	/* Being allowed in is not being an administrator. */
	cf = acl_config(users, 1, groups, 1);
	gen = priv_admin_gen();
	priv_acl_set(cf);
	ck_assert_uint_ne(priv_admin_gen(), gen);
	ck_assert_int_eq(priv_admin_allows(UID_A, GID_A, NULL, 0), 0);
	ck_assert_int_eq(priv_admin_allows(UID_B, GID_B, NULL, 0), 0);

	cf = acl_config(NULL, 0, NULL, 0);
	cf->admin_users = users;
	cf->nadmin_users = 2;
	cf->admin_groups = groups;
	cf->nadmin_groups = 2;
	gen = priv_admin_gen();
	priv_acl_set(cf);
	ck_assert_uint_ne(priv_admin_gen(), gen);
	ck_assert_int_eq(priv_admin_allows(UID_A, GID_A, NULL, 0), 1);
	ck_assert_int_eq(priv_admin_allows(UID_B, GID_A, NULL, 0), 0);
	ck_assert_int_eq(priv_admin_allows(UID_B, GID_B, NULL, 0), 1);
	ck_assert_int_eq(priv_admin_allows(UID_B, GID_A, supp, 2), 1);
	ck_assert_int_eq(priv_admin_allows(UID_B, GID_A, supp, 1), 0);
	ck_assert_int_eq(priv_admin_allows((uid_t)-1, GID_B, NULL, 0), 0);
	ck_assert_int_eq(priv_admin_allows(0, GID_A, NULL, 0), 1);
	ck_assert_int_eq(priv_admin_allows(me, GID_A, NULL, 0), 1);
	/* The allow lists are untouched by the admin lists: anyone may connect. */
	ck_assert_int_eq(priv_acl_allows(UID_B, GID_A, NULL, 0), 1);
	gen = priv_admin_gen();
	priv_acl_free();
	ck_assert_uint_ne(priv_admin_gen(), gen);
	ck_assert_int_eq(priv_admin_allows(UID_A, GID_A, NULL, 0), 0);
	ck_assert_int_eq(priv_admin_allows(UID_B, GID_B, NULL, 0), 0);
}
END_TEST

/*
 * The owner table: root is index 0 from the start, a uid keeps its index, indices go
 * back to their uids, and the table stops at 65,536 uids while the ones in it stay.
 */
START_TEST(test_owner_table)
{
	uint32_t	i;
	int		a, b, c, k;

	ck_assert_uint_eq(priv_owner_uid(0), 0);
	ck_assert_uint_eq(priv_owner_uid(7), 0);	/* not in it: root's */
	a = priv_owner_index(UID_A);
	ck_assert_int_eq(a, 1);
	ck_assert_int_eq(priv_owner_index(0), 0);
	b = priv_owner_index(UID_B);
	c = priv_owner_index(5);
	ck_assert_int_eq(b, 2);
	ck_assert_int_eq(c, 3);
	ck_assert_int_eq(priv_owner_index(UID_A), a);
	ck_assert_int_eq(priv_owner_index(5), c);
	ck_assert_int_eq(priv_owner_index(UID_B), b);
	ck_assert_uint_eq(priv_owner_uid((uint16_t)a), UID_A);
	ck_assert_uint_eq(priv_owner_uid((uint16_t)b), UID_B);
	ck_assert_uint_eq(priv_owner_uid((uint16_t)c), 5);
	ck_assert_uint_eq(priv_owner_count(), 4);
	ck_assert_int_eq(priv_owner_index((uid_t)-1), 4);

	/* Full: 65,536 uids in all (descending, so every insert moves the others). */
	for (i = 0; priv_owner_count() < 65536; i++)
		ck_assert_int_ge(priv_owner_index((uid_t)(3000000 - i)), 0);
	ck_assert_int_eq(priv_owner_index(6), -1);
	ck_assert_int_eq(priv_owner_index(UID_B), b);
	ck_assert_int_eq(priv_owner_index((uid_t)-1), 4);
	for (k = 5; k < 65536; k += 4099)
		ck_assert_int_eq(priv_owner_index(priv_owner_uid((uint16_t)k)), k);
	ck_assert_uint_eq(priv_owner_uid(65535), 3000000 - (65536 - 6));
	priv_acl_free();
	ck_assert_uint_eq(priv_owner_count(), 0);
	ck_assert_uint_eq(priv_owner_uid((uint16_t)a), 0);
	ck_assert_int_eq(priv_owner_index(UID_B), 1);
	priv_acl_free();
}
END_TEST

/* Names that resolve to nothing are ignored with a warning; the list still applies. */
START_TEST(test_acl_unresolved)
{
	char	*users[] = { (char *)"no-such-user-chk", (char *)"" };
	char	*groups[] = { (char *)"no-such-group-chk", (char *)"12x" };

	priv_acl_set(acl_config(users, 2, NULL, 0));
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_A, NULL, 0), 0);
	ck_assert_int_eq(priv_acl_allows(0, GID_A, NULL, 0), 1);
	priv_acl_set(acl_config(NULL, 0, groups, 2));
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_A, NULL, 0), 0);
	/* Out of range ids do not wrap to something else. */
	users[0] = (char *)"4294967295";
	users[1] = (char *)"99999999999999999999";
	priv_acl_set(acl_config(users, 2, NULL, 0));
	ck_assert_int_eq(priv_acl_allows((uid_t)-1, GID_A, NULL, 0), 0);
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_A, NULL, 0), 0);
	priv_acl_free();
}
END_TEST

/* A group list matches the peer's primary gid, by name or by number. */
START_TEST(test_acl_groups)
{
	char		*groups[] = { (char *)"4343", NULL }, gname[64];
	struct group	*gr = getgrnam("nogroup");
	gid_t		 gid = 0;

	if (gr == NULL)
		gr = getgrnam("nobody");
	if (gr != NULL) {
		/* A copy: getgrnam() reuses the buffer gr points into. */
		snprintf(gname, sizeof gname, "%s", gr->gr_name);
		gid = gr->gr_gid;
		groups[1] = gname;
	}
	priv_acl_set(acl_config(NULL, 0, groups, gr != NULL ? 2 : 1));
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_A, NULL, 0), 1);
	ck_assert_int_eq(priv_acl_allows(UID_B, GID_A, NULL, 0), 1);	/* any user */
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_B, NULL, 0), 0);
	ck_assert_int_eq(priv_acl_allows(UID_A, 0, NULL, 0), 0);
	if (gr != NULL)
		ck_assert_int_eq(priv_acl_allows(UID_A, gid, NULL, 0), 1);
	priv_acl_free();
}
END_TEST

/* Either list lets a peer in. */
START_TEST(test_acl_both)
{
	char	*users[] = { (char *)"4242" };
	char	*groups[] = { (char *)"4344" };

	priv_acl_set(acl_config(users, 1, groups, 1));
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_A, NULL, 0), 1);
	ck_assert_int_eq(priv_acl_allows(UID_B, GID_B, NULL, 0), 1);
	ck_assert_int_eq(priv_acl_allows(UID_B, GID_A, NULL, 0), 0);
	priv_acl_free();
}
END_TEST

/* A peer's supplementary groups count like its primary group. */
START_TEST(test_acl_supplementary)
{
	char	*groups[] = { (char *)"4343" };
	gid_t	 with[] = { GID_B, 7, GID_A }, without[] = { GID_B, 7 };

	priv_acl_set(acl_config(NULL, 0, groups, 1));
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_B, with, 3), 1);
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_B, with + 2, 1), 1);
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_B, without, 2), 0);
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_B, NULL, 0), 0);
	priv_acl_free();
}
END_TEST

/*
 * The group database's member lists are not consulted: a user listed as a member of
 * an allowed group, connecting without that group, is refused (what counts is the
 * peer's own groups, as the kernel has them).
 */
START_TEST(test_acl_no_member_lists)
{
	struct group	*gr;
	struct passwd	*pw;
	char		*groups[1], gname[256];
	uid_t		 uid = 0;
	gid_t		 gid = 0;
	char		**m;
	int		 found = 0;

	setgrent();
	while (!found && (gr = getgrent()) != NULL) {
		for (m = gr->gr_mem; *m != NULL; m++) {
			if ((pw = getpwnam(*m)) == NULL || pw->pw_uid == 0 ||
			    pw->pw_uid == geteuid() || pw->pw_gid == gr->gr_gid)
				continue;
			snprintf(gname, sizeof gname, "%s", gr->gr_name);
			uid = pw->pw_uid;
			gid = gr->gr_gid;
			found = 1;
			break;
		}
	}
	endgrent();
	if (!found) {
		fprintf(stderr, "check_priv: skipping test_acl_no_member_lists: no group "
		    "with a member whose primary group is another\n");
		return;
	}
	groups[0] = gname;
	priv_acl_set(acl_config(NULL, 0, groups, 1));
	ck_assert_int_eq(priv_acl_allows(uid, gid + 1000, NULL, 0), 0);
	ck_assert_int_eq(priv_acl_allows(uid, gid + 1000, &gid, 1), 1);
	ck_assert_int_eq(priv_acl_allows(uid, gid, NULL, 0), 1);
	priv_acl_free();
}
END_TEST

/* A reload replaces the lists; priv_acl_free() lets anyone in again. */
START_TEST(test_acl_reload)
{
	char	*a[] = { (char *)"4242" }, *b[] = { (char *)"4243" };

	priv_acl_set(acl_config(a, 1, NULL, 0));
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_A, NULL, 0), 1);
	ck_assert_int_eq(priv_acl_allows(UID_B, GID_A, NULL, 0), 0);
	priv_acl_set(acl_config(b, 1, NULL, 0));
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_A, NULL, 0), 0);
	ck_assert_int_eq(priv_acl_allows(UID_B, GID_A, NULL, 0), 1);
	priv_acl_set(acl_config(NULL, 0, NULL, 0));
	ck_assert_int_eq(priv_acl_allows(UID_A, GID_A, NULL, 0), 1);
	priv_acl_set(acl_config(a, 1, NULL, 0));
	priv_acl_free();
	ck_assert_int_eq(priv_acl_allows(UID_B, GID_A, NULL, 0), 1);
	priv_acl_free();
}
END_TEST

/* ------------------------------------------------------------------------------- */
/* Peers on real sockets: priv_peer_check, and the refusal log. */

/* Without an allow list, anyone; with one, a peer with unknown credentials is refused. */
START_TEST(test_peer_check)
{
	char			*users[] = { (char *)"4242" };
	struct priv_peer	 peer;
	char			*cause;
	int			 sp[2], p[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	ck_assert_int_eq(pipe(p), 0);
	priv_acl_set(acl_config(NULL, 0, NULL, 0));
	ck_assert_int_eq(priv_peer_check(sp[0], &peer, &cause), 0);
	ck_assert_ptr_null(cause);
	ck_assert_int_eq(peer.pid, getpid());
	ck_assert_uint_eq(peer.uid, geteuid());
	ck_assert_uint_eq(peer.gid, getegid());
	/* No credentials (not a socket) and no list: let in, uid unknown. */
	ck_assert_int_eq(priv_peer_check(p[0], &peer, &cause), 0);
	ck_assert_ptr_null(cause);
	ck_assert_uint_eq(peer.uid, (uid_t)-1);

	/* With a list: the daemon's own user gets in, an unknown peer does not. */
	priv_acl_set(acl_config(users, 1, NULL, 0));
	ck_assert_int_eq(priv_peer_check(sp[0], &peer, &cause), 0);
	ck_assert_int_eq(priv_peer_check(p[0], &peer, &cause), -1);
	ck_assert_str_eq(cause, "getsockopt SO_PEERCRED: Socket operation on non-socket; "
	    "refused, since allow_users or allow_groups is set");
	ck_assert_uint_eq(peer.uid, (uid_t)-1);
	ck_assert_int_eq(peer.pid, 0);
	free(cause);
	priv_acl_free();
	close(sp[0]);
	close(sp[1]);
	close(p[0]);
	close(p[1]);
}
END_TEST

/*
 * Connect to path as uid UID_B with primary gid gid and the supplementary groups
 * groups[0..n), from a child; accept and check the peer in the parent (as root, so the
 * peer is neither root nor the daemon's user). Returns what priv_peer_check did.
 */
static int	peer_admin;	/* what priv_peer_admin said of peer_as's peer */

static int
peer_as(const char *path, gid_t gid, const gid_t *groups, int n, struct priv_peer *peer,
    char **cause)
{
	struct sockaddr_un	 sun;
	int			 lfd, afd, fd, rc, status;
	pid_t			 pid;
	char			 c;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	(void)unlink(path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(chmod(path, 0777), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups((size_t)n, groups) != 0 || setresgid(gid, gid, gid) != 0 ||
		    setresuid(UID_B, UID_B, UID_B) != 0)
			_exit(2);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
		    connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
			_exit(3);
		/* Stay connected until the parent has looked. */
		(void)read(fd, &c, 1);
		_exit(0);
	}
	afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	rc = priv_peer_check(afd, peer, cause);
	peer_admin = priv_peer_admin(afd, peer->uid);
	ck_assert_int_eq(peer->pid, pid);
	close(afd);
	close(lfd);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x",
	    status);
	(void)unlink(path);
	return (rc);
}

/*
 * As root: allow_groups matches the groups the connecting process has (SO_PEERGROUPS),
 * more than fit the first buffer included, and its primary group.
 */
START_TEST(test_peer_groups)
{
	char			*groups[] = { (char *)"4343" };
	struct priv_peer	 peer;
	gid_t			 many[100];
	char			 dir[64], path[96], *cause;
	int			 i;

	if (skip_unless_root("test_peer_groups"))
		return;
	snprintf(dir, sizeof dir, "/tmp/check_priv.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(path, sizeof path, "%s/sock", dir);
	for (i = 0; i < 100; i++)
		many[i] = (gid_t)(20000 + i);
	priv_acl_set(acl_config(NULL, 0, groups, 1));

	/* The 100th supplementary group is the allowed one. */
	many[99] = GID_A;
	ck_assert_int_eq(peer_as(path, GID_B, many, 100, &peer, &cause), 0);
	ck_assert_ptr_null(cause);
	ck_assert_uint_eq(peer.uid, UID_B);
	ck_assert_uint_eq(peer.gid, GID_B);
	/* One supplementary group, the allowed one. */
	ck_assert_int_eq(peer_as(path, GID_B, many + 99, 1, &peer, &cause), 0);
	/* The primary group, no supplementary ones. */
	ck_assert_int_eq(peer_as(path, GID_A, NULL, 0, &peer, &cause), 0);
	/* None of them. */
	many[99] = 20099;
	ck_assert_int_eq(peer_as(path, GID_B, many, 100, &peer, &cause), -1);
	ck_assert_str_eq(cause, "not in allow_users or allow_groups");
	ck_assert_uint_eq(peer.uid, UID_B);
	free(cause);
	ck_assert_int_eq(peer_as(path, GID_B, NULL, 0, &peer, &cause), -1);
	free(cause);
	priv_acl_free();
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/*
 * As root: admin_groups matches the peer's groups as allow_groups does (SO_PEERGROUPS,
 * past the first buffer, and its primary group); admin_users its uid.
 */
START_TEST(test_peer_admin)
{
	char			*groups[] = { (char *)"4343" };
	char			*users[] = { (char *)"4243" };
	struct config		*cf = acl_config(NULL, 0, NULL, 0);
	struct priv_peer	 peer;
	gid_t			 many[100];
	char			 dir[64], path[96], *cause;
	int			 i;

	if (skip_unless_root("test_peer_admin"))
		return;
	snprintf(dir, sizeof dir, "/tmp/check_priv.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(path, sizeof path, "%s/sock", dir);
	for (i = 0; i < 100; i++)
		many[i] = (gid_t)(20000 + i);
	cf->admin_groups = groups;
	cf->nadmin_groups = 1;
	priv_acl_set(cf);

	many[99] = GID_A;
	ck_assert_int_eq(peer_as(path, GID_B, many, 100, &peer, &cause), 0);
	ck_assert_int_eq(peer_admin, 1);
	ck_assert_int_eq(peer_as(path, GID_A, NULL, 0, &peer, &cause), 0);
	ck_assert_int_eq(peer_admin, 1);
	many[99] = 20099;
	ck_assert_int_eq(peer_as(path, GID_B, many, 100, &peer, &cause), 0);
	ck_assert_int_eq(peer_admin, 0);
	ck_assert_int_eq(peer_as(path, GID_B, NULL, 0, &peer, &cause), 0);
	ck_assert_int_eq(peer_admin, 0);

	/* By uid, whatever its groups. */
	cf->admin_groups = NULL;
	cf->nadmin_groups = 0;
	cf->admin_users = users;
	cf->nadmin_users = 1;
	priv_acl_set(cf);
	ck_assert_int_eq(peer_as(path, GID_B, NULL, 0, &peer, &cause), 0);
	ck_assert_int_eq(peer_admin, 1);
	priv_acl_free();
	ck_assert_int_eq(peer_as(path, GID_B, NULL, 0, &peer, &cause), 0);
	ck_assert_int_eq(peer_admin, 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static char	logdir[64];
static char	*log_last;

/* What was logged so far (checkcapture.h); valid until the next call. */
static const char *
log_text(void)
{
	free(log_last);
	return (log_last = capture_read());
}

static int
count_lines(const char *s)
{
	int	n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return (n);
}

static void
assert_matches(const char *text, const char *re)
{
	regex_t	r;

	ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&r, text, 0, NULL, 0) == 0, "/%s/ not in:\n%s", re, text);
	regfree(&r);
}

/*
 * Refusals are logged at most once a second: the first in full, the rest counted and
 * summed up by a timer (or, with no event loop, by the next line or priv_acl_free).
 */
START_TEST(test_peer_refused_log)
{
	struct priv_peer	 a = { 11, UID_A, GID_A }, b = { 12, UID_B, GID_B };
	struct priv_peer	 u = { 0, (uid_t)-1, (gid_t)-1 };
	struct timeval		 tv = { 1, 500 * 1000 };
	const char		*text;
	int			 i;

	snprintf(logdir, sizeof logdir, "/tmp/check_priv.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(logdir));
	capture_into(logdir);
	unsetenv("JOURNAL_STREAM");
	log_init(LOG_INFO, "check_priv");
	master_base = event_base_new();
	ck_assert_ptr_nonnull(master_base);

	priv_peer_refused(&a, "not in allow_users or allow_groups");
	for (i = 0; i < 4; i++)
		priv_peer_refused(&b, "not in allow_users or allow_groups");
	text = log_text();
	ck_assert_int_eq(count_lines(text), 1);
	assert_matches(text, "refused a connection from uid 4242 gid 4343 \\(pid 11\\): "
	    "not in allow_users or allow_groups");

	/* The second is over: the timer sums up the four. */
	event_base_loopexit(master_base, &tv);
	event_base_dispatch(master_base);
	text = log_text();
	ck_assert_int_eq(count_lines(text), 2);
	assert_matches(text, "refused 4 more connections in [0-9.]+ s, not logged one by "
	    "one \\(at most one a second is\\); the last from uid 4243 gid 4344 "
	    "\\(pid 12\\)");

	/* A new second: the next refusal is logged at once (a peer without credentials). */
	priv_peer_refused(&u, "getsockopt SO_PEERCRED: oops");
	text = log_text();
	ck_assert_int_eq(count_lines(text), 3);
	assert_matches(text, "refused a connection: getsockopt SO_PEERCRED: oops");
	/* Within that second: counted; priv_acl_free says so at exit. */
	priv_peer_refused(&a, "not in allow_users or allow_groups");
	ck_assert_int_eq(count_lines(log_text()), 3);
	priv_acl_free();
	text = log_text();
	ck_assert_int_eq(count_lines(text), 4);
	assert_matches(text, "refused 1 more connection in [0-9.]+ s");
	priv_acl_free();
	event_base_free(master_base);
	master_base = NULL;
	capture_stop();
	free(log_last);
	log_last = NULL;
	rmdir(logdir);
}
END_TEST

/* ------------------------------------------------------------------------------- */
/* What a process became: filled in a child and sent up a pipe. */

struct report {
	int		rc;
	char		cause[256];
	uid_t		ruid, euid, suid;
	gid_t		rgid, egid, sgid;
	int		ngroups;
	gid_t		groups[16];
	struct rlimit	as, cpu, nofile;
	unsigned long long capeff, capprm, capbnd;
	int		nnp;		/* NoNewPrivs */
	int		securebits;
	int		can_switch;	/* priv_can_switch() */
};

/* What anything that gave up root has: every bit locked (see priv.c). */
#define LOCKED_BITS	(SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | \
			 SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | \
			 SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)
/* CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7). */
#define MASTER_CAPS	((1ULL << 5) | (1ULL << 6) | (1ULL << 7))

/* The capability sets and no_new_privs of a process, from its status text. */
static void
parse_status(const char *text, struct report *r)
{
	const char	*line;

	r->capeff = r->capprm = r->capbnd = ~0ULL;
	r->nnp = -1;
	for (line = text; line != NULL && *line != '\0';
	    line = strchr(line, '\n') != NULL ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, "CapEff:", 7) == 0)
			r->capeff = strtoull(line + 7, NULL, 16);
		else if (strncmp(line, "CapPrm:", 7) == 0)
			r->capprm = strtoull(line + 7, NULL, 16);
		else if (strncmp(line, "CapBnd:", 7) == 0)
			r->capbnd = strtoull(line + 7, NULL, 16);
		else if (strncmp(line, "NoNewPrivs:", 11) == 0)
			r->nnp = atoi(line + 11);
	}
}

/* This process's, from /proc. */
static void
read_caps(struct report *r)
{
	char	buf[4096];
	size_t	n;
	FILE	*f;

	buf[0] = '\0';
	if ((f = fopen("/proc/self/status", "r")) != NULL) {
		n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	parse_status(buf, r);
}

static void
fill_report(struct report *r, int rc, const char *cause)
{
	r->rc = rc;
	snprintf(r->cause, sizeof r->cause, "%s", cause != NULL ? cause : "");
	getresuid(&r->ruid, &r->euid, &r->suid);
	getresgid(&r->rgid, &r->egid, &r->sgid);
	r->ngroups = getgroups(16, r->groups);
	getrlimit(RLIMIT_AS, &r->as);
	getrlimit(RLIMIT_CPU, &r->cpu);
	getrlimit(RLIMIT_NOFILE, &r->nofile);
	read_caps(r);
	r->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	r->can_switch = priv_can_switch();
}

typedef void	(*child_fn)(void *, struct report *);

/* Run fn in a child; it fills *r, which comes back up a pipe. */
static void
in_child(child_fn fn, void *arg, struct report *r)
{
	int	p[2], status;
	pid_t	pid;
	ssize_t	n;

	memset(r, 0, sizeof *r);
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct report	cr;

		close(p[0]);
		memset(&cr, 0, sizeof cr);
		fn(arg, &cr);
		/* _exit: no LeakSanitizer pass in a process that may have changed user. */
		_exit(write(p[1], &cr, sizeof cr) == (ssize_t)sizeof cr ? 0 : 1);
	}
	close(p[1]);
	n = read(p[0], r, sizeof *r);
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status 0x%x", status);
	ck_assert_int_eq(n, (ssize_t)sizeof *r);
}

static void
worker_child(void *arg, struct report *r)
{
	char	*cause = NULL;
	int	 rc;

	rc = priv_worker(arg, &cause);
	fill_report(r, rc, cause);
	free(cause);
}

/* Nothing configured: the worker stays what it was, limits included. */
START_TEST(test_worker_nothing)
{
	struct queue_config	qc;
	struct report		before, after;

	memset(&qc, 0, sizeof qc);
	fill_report(&before, 0, NULL);
	in_child(worker_child, &qc, &after);
	ck_assert_int_eq(after.rc, 0);
	ck_assert_str_eq(after.cause, "");
	ck_assert_uint_eq(after.euid, before.euid);
	ck_assert_uint_eq(after.egid, before.egid);
	ck_assert_uint_eq(after.nofile.rlim_cur, before.nofile.rlim_cur);
	ck_assert_uint_eq(after.nofile.rlim_max, before.nofile.rlim_max);
	ck_assert_uint_eq(after.cpu.rlim_max, before.cpu.rlim_max);
	ck_assert_uint_eq(after.as.rlim_max, before.as.rlim_max);
	/* No capabilities, even for a worker that stays root. */
	ck_assert_uint_eq(after.capeff, 0);
	ck_assert_uint_eq(after.capprm, 0);
	if (geteuid() == 0) {
		/* And no way back to them through exec. */
		ck_assert_uint_eq(after.capbnd, 0);
		ck_assert_int_eq(after.nnp, 1);
		ck_assert_int_eq(after.securebits & 0xff, LOCKED_BITS);
	} else {
		/* Nothing to give up: as it was. */
		ck_assert_uint_eq(after.capbnd, before.capbnd);
		ck_assert_int_eq(after.nnp, before.nnp);
		ck_assert_int_eq(after.securebits, before.securebits);
	}
}
END_TEST

/*
 * The master raises its soft descriptor limit to the hard one (each client takes a
 * descriptor); its workers go back to the soft limit it was started with, unless
 * their queue sets rlimit_nofile. (In the test's own process: Check forks each test.)
 */
START_TEST(test_nofile_raise)
{
	struct queue_config	qc;
	struct report		r;
	struct rlimit		rl;
	unsigned long long	was, now;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max < 256)
		return;		/* nothing this test can lower and raise again */
	rl.rlim_cur = 200;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_int_eq(priv_nofile_raise(&was, &now), 0);
	ck_assert_uint_eq(was, 200);
	ck_assert_uint_eq(now, rl.rlim_max);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_uint_eq(rl.rlim_cur, rl.rlim_max);

	memset(&qc, 0, sizeof qc);
	in_child(worker_child, &qc, &r);
	ck_assert_msg(r.rc == 0, "priv_worker: %s", r.cause);
	ck_assert_uint_eq(r.nofile.rlim_cur, 200);
	ck_assert_uint_eq(r.nofile.rlim_max, rl.rlim_max);
	/* A queue's own rlimit_nofile still wins. */
	qc.rlimit_nofile = 64;
	in_child(worker_child, &qc, &r);
	ck_assert_msg(r.rc == 0, "priv_worker: %s", r.cause);
	ck_assert_uint_eq(r.nofile.rlim_cur, 64);

	/* Already at the hard limit: nothing to do. */
	ck_assert_int_eq(priv_nofile_raise(&was, &now), 0);
	ck_assert_uint_eq(was, now);
}
END_TEST

/*
 * Each limit, soft and hard. RLIMIT_AS at 2^47 (all of x86-64's user address space)
 * is a real limit that ASan's reservations still fit in.
 */
START_TEST(test_worker_rlimits)
{
	struct queue_config	qc;
	struct report		r;

	memset(&qc, 0, sizeof qc);
	qc.rlimit_as = 1ULL << 47;
	qc.rlimit_cpu = 3600;
	qc.rlimit_nofile = 64;
	in_child(worker_child, &qc, &r);
	ck_assert_msg(r.rc == 0, "priv_worker: %s", r.cause);
	ck_assert_uint_eq(r.as.rlim_cur, 1ULL << 47);
	ck_assert_uint_eq(r.as.rlim_max, 1ULL << 47);
	ck_assert_uint_eq(r.cpu.rlim_cur, 3600);
	ck_assert_uint_eq(r.cpu.rlim_max, 3600);
	ck_assert_uint_eq(r.nofile.rlim_cur, 64);
	ck_assert_uint_eq(r.nofile.rlim_max, 64);

	/* 0 leaves that one alone. */
	memset(&qc, 0, sizeof qc);
	qc.rlimit_nofile = 32;
	in_child(worker_child, &qc, &r);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_uint_eq(r.nofile.rlim_cur, 32);
	{
		struct rlimit	cpu;

		ck_assert_int_eq(getrlimit(RLIMIT_CPU, &cpu), 0);
		ck_assert_uint_eq(r.cpu.rlim_cur, cpu.rlim_cur);
		ck_assert_uint_eq(r.cpu.rlim_max, cpu.rlim_max);
	}
}
END_TEST

/* A limit the kernel refuses (above fs.nr_open, even for root): -1 and why. */
START_TEST(test_worker_rlimit_refused)
{
	struct queue_config	qc;
	struct report		r;

	memset(&qc, 0, sizeof qc);
	qc.rlimit_nofile = 1ULL << 40;
	in_child(worker_child, &qc, &r);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_str_eq(r.cause, "rlimit_nofile 1099511627776: Operation not permitted");
}
END_TEST

/* A user or group that does not resolve: -1 and why, and nothing changed. */
START_TEST(test_worker_unknown)
{
	struct queue_config	qc;
	struct report		before, r;

	fill_report(&before, 0, NULL);
	memset(&qc, 0, sizeof qc);
	qc.user = (char *)"no-such-user-chk";
	in_child(worker_child, &qc, &r);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_str_eq(r.cause, "user: no user 'no-such-user-chk'");
	ck_assert_uint_eq(r.euid, before.euid);

	memset(&qc, 0, sizeof qc);
	qc.group = (char *)"no-such-group-chk";
	in_child(worker_child, &qc, &r);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_str_eq(r.cause, "group: no group 'no-such-group-chk'");
	ck_assert_uint_eq(r.egid, before.egid);
}
END_TEST

/* As root: the queue's user, with its primary group and no other, and no capabilities. */
START_TEST(test_worker_user)
{
	struct queue_config	qc;
	struct passwd		*pw;
	struct report		r;

	if (skip_unless_root("test_worker_user"))
		return;
	if ((pw = getpwnam("nobody")) == NULL) {
		fprintf(stderr, "check_priv: skipping test_worker_user: no user nobody\n");
		return;
	}
	memset(&qc, 0, sizeof qc);
	qc.user = (char *)"nobody";
	qc.rlimit_nofile = 100;
	in_child(worker_child, &qc, &r);
	ck_assert_msg(r.rc == 0, "priv_worker: %s", r.cause);
	ck_assert_uint_eq(r.ruid, pw->pw_uid);
	ck_assert_uint_eq(r.euid, pw->pw_uid);
	ck_assert_uint_eq(r.suid, pw->pw_uid);
	ck_assert_uint_eq(r.rgid, pw->pw_gid);
	ck_assert_uint_eq(r.egid, pw->pw_gid);
	ck_assert_uint_eq(r.sgid, pw->pw_gid);
	ck_assert_int_eq(r.ngroups, 1);
	ck_assert_uint_eq(r.groups[0], pw->pw_gid);
	ck_assert_uint_eq(r.capeff, 0);
	ck_assert_uint_eq(r.capprm, 0);
	ck_assert_uint_eq(r.capbnd, 0);
	ck_assert_int_eq(r.nnp, 1);
	ck_assert_int_eq(r.securebits & 0xff, LOCKED_BITS);
	/* The limits were set first, as root, and stay. */
	ck_assert_uint_eq(r.nofile.rlim_cur, 100);
}
END_TEST

/* As root: user and group; and a group alone, which keeps the uid. */
START_TEST(test_worker_user_group)
{
	struct queue_config	qc;
	struct passwd		*pw;
	struct group		*gr;
	struct report		r;
	char			 gname[64];
	uid_t			 uid;
	gid_t			 gid;

	if (skip_unless_root("test_worker_user_group"))
		return;
	pw = getpwnam("nobody");
	if ((gr = getgrnam("nogroup")) == NULL)
		gr = getgrnam("nobody");
	if (pw == NULL || gr == NULL) {
		fprintf(stderr, "check_priv: skipping test_worker_user_group: no "
		    "nobody/nogroup\n");
		return;
	}
	/* Copies: getgrnam() in the child reuses the buffer gr points into. */
	uid = pw->pw_uid;
	gid = gr->gr_gid;
	snprintf(gname, sizeof gname, "%s", gr->gr_name);
	memset(&qc, 0, sizeof qc);
	qc.user = (char *)"nobody";
	qc.group = gname;
	in_child(worker_child, &qc, &r);
	ck_assert_msg(r.rc == 0, "priv_worker: %s", r.cause);
	ck_assert_uint_eq(r.euid, uid);
	ck_assert_uint_eq(r.egid, gid);
	ck_assert_uint_eq(r.sgid, gid);
	ck_assert_int_eq(r.ngroups, 1);
	ck_assert_uint_eq(r.groups[0], gid);

	/* The group overrides the user's primary group. */
	qc.group = (char *)"4343";
	in_child(worker_child, &qc, &r);
	ck_assert_msg(r.rc == 0, "priv_worker: %s", r.cause);
	ck_assert_uint_eq(r.euid, uid);
	ck_assert_uint_eq(r.rgid, GID_A);
	ck_assert_uint_eq(r.egid, GID_A);
	ck_assert_int_eq(r.ngroups, 1);
	ck_assert_uint_eq(r.groups[0], GID_A);
	ck_assert_uint_eq(r.capeff, 0);

	/* A group alone: still root, in that group only. */
	memset(&qc, 0, sizeof qc);
	qc.group = gname;
	in_child(worker_child, &qc, &r);
	ck_assert_msg(r.rc == 0, "priv_worker: %s", r.cause);
	ck_assert_uint_eq(r.euid, 0);
	ck_assert_uint_eq(r.egid, gid);
	ck_assert_int_eq(r.ngroups, 1);
	ck_assert_uint_eq(r.groups[0], gid);
	ck_assert_uint_eq(r.capeff, 0);
	ck_assert_uint_eq(r.capbnd, 0);
}
END_TEST

/* Not root (root dropped to UID_A first): switching user fails and says so. */
static void
unprivileged_worker_child(void *arg, struct report *r)
{
	gid_t	g = GID_A;

	if (geteuid() == 0 && (setgroups(1, &g) != 0 || setresgid(GID_A, GID_A, GID_A) != 0 ||
	    setresuid(UID_A, UID_A, UID_A) != 0)) {
		fill_report(r, -2, "cannot drop root for the test");
		return;
	}
	worker_child(arg, r);
}

START_TEST(test_worker_not_permitted)
{
	struct queue_config	qc;
	struct report		r;

	memset(&qc, 0, sizeof qc);
	qc.user = (char *)"nobody";
	qc.group = (char *)"4343";
	if (getpwnam("nobody") == NULL || getuid() == getpwnam("nobody")->pw_uid) {
		fprintf(stderr, "check_priv: skipping test_worker_not_permitted: "
		    "no user nobody, or running as it\n");
		return;
	}
	in_child(unprivileged_worker_child, &qc, &r);
	ck_assert_int_eq(r.rc, -1);
	/* The message names the call that failed. */
	ck_assert_str_eq(r.cause, "cannot run as nobody:4343: setgroups: Operation not "
	    "permitted");
}
END_TEST

/* ------------------------------------------------------------------------------- */
/* The master's drop and the socket's owner. */

struct drop_arg {
	struct config	*cf;
	const char	*sockdir;
	int		 then_worker;	/* then run priv_worker as a queue user */
};

static void
drop_child(void *arg, struct report *r)
{
	struct drop_arg		*d = arg;
	struct queue_config	 qc;
	char			*cause = NULL;
	int			 rc;

	rc = priv_drop_master(d->cf, d->sockdir, &cause);
	if (rc == 0 && d->then_worker) {
		memset(&qc, 0, sizeof qc);
		qc.user = (char *)"nobody";
		qc.group = (char *)"4343";
		rc = priv_worker(&qc, &cause);
	}
	fill_report(r, rc, cause);
	free(cause);
}

/* As root (without it the master never switches): names that do not resolve. */
START_TEST(test_drop_errors)
{
	struct config		cf;
	struct drop_arg		d = { &cf, NULL, 0 };
	struct report		r;

	if (skip_unless_root("test_drop_errors"))
		return;
	memset(&cf, 0, sizeof cf);
	cf.user = (char *)"no-such-user-chk";
	in_child(drop_child, &d, &r);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_str_eq(r.cause, "user: no user 'no-such-user-chk'");
	ck_assert_uint_eq(r.euid, 0);

	cf.user = (char *)"nobody";
	cf.group = (char *)"no-such-group-chk";
	in_child(drop_child, &d, &r);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_str_eq(r.cause, "group: no group 'no-such-group-chk'");
	ck_assert_uint_eq(r.euid, 0);

	/* A bare uid has no primary group to take. */
	cf.user = (char *)"4242";
	cf.group = NULL;
	in_child(drop_child, &d, &r);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_str_eq(r.cause, "user: '4242' has no primary group; set group");
	ck_assert_uint_eq(r.euid, 0);
}
END_TEST

/* Without a user, or without root, the master stays as it is. */
START_TEST(test_drop_stays)
{
	struct config	cf;
	struct drop_arg	d = { &cf, NULL, 0 };
	struct report	before, r;

	fill_report(&before, 0, NULL);
	memset(&cf, 0, sizeof cf);
	in_child(drop_child, &d, &r);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_uint_eq(r.euid, before.euid);
	cf.group = (char *)"nogroup";	/* a group without a user: stays */
	in_child(drop_child, &d, &r);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_uint_eq(r.euid, before.euid);
	ck_assert_uint_eq(r.egid, before.egid);
	if (geteuid() != 0) {
		/* Not root: user is ignored (with a warning), not an error. */
		cf.user = (char *)"nobody";
		in_child(drop_child, &d, &r);
		ck_assert_int_eq(r.rc, 0);
		ck_assert_uint_eq(r.euid, before.euid);
	}
}
END_TEST

/*
 * As root without 'user': the warning says where to set it. The embedded defaults are
 * no file to edit, so it asks for one rather than naming "<embedded defaults>".
 */
START_TEST(test_drop_root_warning)
{
	struct config	 cf;
	char		*cause = NULL;
	const char	*text;

	if (skip_unless_root("test_drop_root_warning"))
		return;
	snprintf(logdir, sizeof logdir, "/tmp/check_priv.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(logdir));
	capture_into(logdir);
	unsetenv("JOURNAL_STREAM");
	log_init(LOG_INFO, "check_priv");
	memset(&cf, 0, sizeof cf);
	cf.path = (char *)CONFIG_EMBEDDED_NAME;
	ck_assert_int_eq(priv_drop_master(&cf, NULL, &cause), 0);
	text = log_text();
	assert_matches(text, "running as root with every capability: set 'user' in a "
	    "configuration file \\(jobpoold -c FILE; the embedded defaults run as "
	    "root\\) so that jobpoold drops root");
	ck_assert_ptr_null(strstr(text, CONFIG_EMBEDDED_NAME));
	cf.path = (char *)"/etc/x/jobpool.conf";
	ck_assert_int_eq(priv_drop_master(&cf, NULL, &cause), 0);
	assert_matches(log_text(), "set 'user' in /etc/x/jobpool.conf so that");
	ck_assert_uint_eq(geteuid(), 0);
	capture_stop();
	free(log_last);
	log_last = NULL;	rmdir(logdir);
}
END_TEST

/* As root: become the user, hand it the socket's directory, and keep no capability. */
START_TEST(test_drop_user)
{
	struct config	cf;
	struct drop_arg	d = { &cf, NULL, 0 };
	struct passwd	*pw;
	struct report	r;
	struct stat	sb;
	char		dir[64];

	if (skip_unless_root("test_drop_user"))
		return;
	if ((pw = getpwnam("nobody")) == NULL) {
		fprintf(stderr, "check_priv: skipping test_drop_user: no user nobody\n");
		return;
	}
	snprintf(dir, sizeof dir, "/tmp/check_priv.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	memset(&cf, 0, sizeof cf);
	cf.user = (char *)"nobody";
	d.sockdir = dir;
	in_child(drop_child, &d, &r);
	ck_assert_msg(r.rc == 0, "priv_drop_master: %s", r.cause);
	ck_assert_uint_eq(r.ruid, pw->pw_uid);
	ck_assert_uint_eq(r.euid, pw->pw_uid);
	ck_assert_uint_eq(r.suid, pw->pw_uid);
	ck_assert_uint_eq(r.egid, pw->pw_gid);
	ck_assert_int_eq(r.ngroups, 1);
	ck_assert_uint_eq(r.groups[0], pw->pw_gid);
	ck_assert_uint_eq(r.capeff, 0);
	ck_assert_uint_eq(r.capprm, 0);
	ck_assert_uint_eq(r.capbnd, 0);
	ck_assert_int_eq(r.nnp, 1);
	ck_assert_int_eq(r.securebits & 0xff, LOCKED_BITS);
	/* No queue needed more: a reload cannot add a queue user. */
	ck_assert_int_eq(r.can_switch, 0);
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert_uint_eq(sb.st_uid, pw->pw_uid);
	ck_assert_uint_eq(sb.st_gid, pw->pw_gid);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/*
 * As root, with a queue that has a user of its own: the master keeps exactly
 * CAP_SETUID, CAP_SETGID and CAP_KILL; the worker it starts then has none.
 */
START_TEST(test_drop_keeps_caps)
{
	struct queue_config	qc;
	struct config		cf;
	struct drop_arg		d = { &cf, NULL, 0 };
	struct passwd		*pw;
	struct report		r;
	const unsigned long long want = (1ULL << 5) | (1ULL << 6) | (1ULL << 7);

	if (skip_unless_root("test_drop_keeps_caps"))
		return;
	if ((pw = getpwnam("nobody")) == NULL) {
		fprintf(stderr, "check_priv: skipping test_drop_keeps_caps: no nobody\n");
		return;
	}
	memset(&qc, 0, sizeof qc);
	qc.user = (char *)"nobody";
	memset(&cf, 0, sizeof cf);
	cf.user = (char *)"nobody";
	cf.group = (char *)"4343";
	cf.queues = &qc;
	cf.nqueues = 1;
	in_child(drop_child, &d, &r);
	ck_assert_msg(r.rc == 0, "priv_drop_master: %s", r.cause);
	ck_assert_uint_eq(r.euid, pw->pw_uid);
	ck_assert_uint_eq(r.egid, GID_A);
	/* CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7), and nothing else. */
	ck_assert_uint_eq(r.capeff, want);
	ck_assert_uint_eq(r.capprm, want);
	/* Nothing more to get back through exec. */
	ck_assert_uint_eq(r.capbnd, want);
	ck_assert_int_eq(r.nnp, 1);
	ck_assert_int_eq(r.securebits & 0xff, LOCKED_BITS);
	ck_assert_int_eq(r.can_switch, 1);

	/* A worker forked from that master switches, then drops them all. */
	d.then_worker = 1;
	in_child(drop_child, &d, &r);
	ck_assert_msg(r.rc == 0, "priv_worker: %s", r.cause);
	ck_assert_uint_eq(r.euid, pw->pw_uid);
	ck_assert_uint_eq(r.egid, GID_A);
	ck_assert_uint_eq(r.capeff, 0);
	ck_assert_uint_eq(r.capprm, 0);
	/* Without CAP_SETPCAP it cannot cut the bounding set further: the master's. */
	ck_assert_uint_eq(r.capbnd, want);
	ck_assert_int_eq(r.nnp, 1);
	ck_assert_int_eq(r.securebits & 0xff, LOCKED_BITS);
}
END_TEST

/*
 * As root, with a queue user: the master that kept CAP_SETUID can become uid 0 again,
 * but then has no capabilities, and an exec as uid 0 gives it none (bounding set,
 * SECBIT_NOROOT, no_new_privs). Before the fix it got back every capability.
 */
static void
regain_child(void *arg, struct report *r)
{
	struct drop_arg	*d = arg;
	char		 buf[4096], *cause = NULL;
	int		 p[2], status;
	ssize_t		 n, got = 0;
	pid_t		 pid;

	if (priv_drop_master(d->cf, NULL, &cause) != 0) {
		fill_report(r, -1, cause);
		return;
	}
	if (setresuid(0, 0, 0) != 0) {
		fill_report(r, -2, "setresuid(0, 0, 0) failed");
		return;
	}
	if (pipe(p) != 0 || (pid = fork()) == -1) {
		fill_report(r, -3, "pipe or fork failed");
		return;
	}
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		execl("/bin/cat", "cat", "/proc/self/status", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while ((n = read(p[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0)
		got += n;
	buf[got] = '\0';
	close(p[0]);
	(void)waitpid(pid, &status, 0);
	/* What the exec'd program had; uids are this process's, which it shared. */
	fill_report(r, WIFEXITED(status) ? WEXITSTATUS(status) : -4, NULL);
	parse_status(buf, r);
}

START_TEST(test_drop_no_way_back)
{
	struct queue_config	qc;
	struct config		cf;
	struct drop_arg		d = { &cf, NULL, 0 };
	struct report		r;

	if (skip_unless_root("test_drop_no_way_back"))
		return;
	if (getpwnam("nobody") == NULL || access("/bin/cat", X_OK) != 0) {
		fprintf(stderr, "check_priv: skipping test_drop_no_way_back: no nobody "
		    "or /bin/cat\n");
		return;
	}
	memset(&qc, 0, sizeof qc);
	qc.user = (char *)"nobody";
	memset(&cf, 0, sizeof cf);
	cf.user = (char *)"nobody";
	cf.queues = &qc;
	cf.nqueues = 1;
	in_child(regain_child, &d, &r);
	ck_assert_msg(r.rc == 0, "rc %d: %s", r.rc, r.cause);
	/* CAP_SETUID does make it uid 0 ... */
	ck_assert_uint_eq(r.euid, 0);
	ck_assert_uint_eq(r.ruid, 0);
	/* ... but exec gives it nothing. */
	ck_assert_uint_eq(r.capeff, 0);
	ck_assert_uint_eq(r.capprm, 0);
	ck_assert_uint_eq(r.capbnd, MASTER_CAPS);
	ck_assert_int_eq(r.nnp, 1);
}
END_TEST

/* Take cap out of this process's effective set. 0, or -1. */
static int
drop_effective(int cap)
{
	struct __user_cap_header_struct	hdr;
	struct __user_cap_data_struct	data[2];

	memset(&hdr, 0, sizeof hdr);
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &hdr, data) != 0)
		return (-1);
	data[cap / 32].effective &= ~(1U << (cap % 32));
	return ((int)syscall(SYS_capset, &hdr, data));
}

struct without_arg {
	struct config	*cf;
	int		 cap;		/* taken away before the drop */
	const char	*log;		/* stderr goes here, if set */
	const char	*sockdir;
};

static void
drop_without_child(void *arg, struct report *r)
{
	struct without_arg	*w = arg;
	char			*cause = NULL;
	int			 fd, rc;

	if (w->log != NULL) {
		fd = open(w->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd == -1 || dup2(fd, STDERR_FILENO) == -1) {
			fill_report(r, -2, "cannot send stderr to the log file");
			return;
		}
		close(fd);
		unsetenv("JOURNAL_STREAM");
		log_init(LOG_INFO, "check_priv");
	}
	if (w->cap >= 0 && drop_effective(w->cap) != 0) {
		fill_report(r, -2, "cannot drop the capability for the test");
		return;
	}
	rc = priv_drop_master(w->cf, w->sockdir, &cause);
	fill_report(r, rc, cause);
	free(cause);
}

/* As root: a failed drop names the call that failed. */
START_TEST(test_drop_names_call)
{
	static const struct {
		int		 cap;
		const char	*want;
	} cases[] = {
		{ CAP_SETPCAP, "cannot switch to user nobody: prctl PR_CAPBSET_DROP: "
		    "Operation not permitted" },
		{ CAP_SETGID, "cannot switch to user nobody: setgroups: Operation not "
		    "permitted" },
		{ CAP_SETUID, "cannot switch to user nobody: setresuid: Operation not "
		    "permitted" },
	};
	struct config		cf;
	struct without_arg	w = { &cf, -1, NULL, NULL };
	struct report		r;
	size_t			i;

	if (skip_unless_root("test_drop_names_call"))
		return;
	if (getpwnam("nobody") == NULL) {
		fprintf(stderr, "check_priv: skipping test_drop_names_call: no nobody\n");
		return;
	}
	memset(&cf, 0, sizeof cf);
	cf.user = (char *)"nobody";
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		w.cap = cases[i].cap;
		in_child(drop_without_child, &w, &r);
		ck_assert_int_eq(r.rc, -1);
		ck_assert_str_eq(r.cause, cases[i].want);
	}
}
END_TEST

/* As root: a socket directory that cannot be handed over is said, and the drop goes on. */
START_TEST(test_drop_chown_fails)
{
	struct config		cf;
	struct without_arg	w = { &cf, -1, NULL, "/nonexistent/check_priv" };
	struct report		r;
	const char		*text;

	if (skip_unless_root("test_drop_chown_fails"))
		return;
	if (getpwnam("nobody") == NULL) {
		fprintf(stderr, "check_priv: skipping test_drop_chown_fails: no nobody\n");
		return;
	}
	snprintf(logdir, sizeof logdir, "/tmp/check_priv.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(logdir));
	/* The child logs to it; log_text() reads it (checkcapture.h's file). */
	snprintf(capture_path, sizeof capture_path, "%s/stderr", logdir);
	w.log = capture_path;
	memset(&cf, 0, sizeof cf);
	cf.user = (char *)"nobody";
	in_child(drop_without_child, &w, &r);
	ck_assert_msg(r.rc == 0, "priv_drop_master: %s", r.cause);
	ck_assert_uint_eq(r.euid, getpwnam("nobody")->pw_uid);
	text = log_text();
	assert_matches(text, "warning: cannot hand the socket's directory to user nobody: "
	    "chown /nonexistent/check_priv: No such file or directory; the socket will "
	    "be left behind at exit");
	unlink(capture_path);
	free(log_last);
	log_last = NULL;
	rmdir(logdir);
}
END_TEST

START_TEST(test_socket_owner)
{
	struct config	cf;
	struct passwd	*pw;
	struct group	*gr;
	struct stat	sb;
	char		dir[64], path[96], *cause;
	int		fd;

	snprintf(dir, sizeof dir, "/tmp/check_priv.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/sock", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	memset(&cf, 0, sizeof cf);

	/* Nothing set: nothing done. */
	cause = (char *)"unset";
	ck_assert_int_eq(priv_socket_owner(&cf, "/nonexistent/x", &cause), 0);
	ck_assert_ptr_null(cause);

	cf.socket_owner = (char *)"no-such-user-chk";
	ck_assert_int_eq(priv_socket_owner(&cf, path, &cause), -1);
	ck_assert_str_eq(cause, "socket_owner: no user 'no-such-user-chk'");
	free(cause);
	cf.socket_owner = NULL;
	cf.socket_group = (char *)"no-such-group-chk";
	ck_assert_int_eq(priv_socket_owner(&cf, path, &cause), -1);
	ck_assert_str_eq(cause, "socket_group: no group 'no-such-group-chk'");
	free(cause);

	/* chown fails: the message names the path and the error. */
	cf.socket_group = (char *)"4343";
	ck_assert_int_eq(priv_socket_owner(&cf, "/nonexistent/x", &cause), -1);
	ck_assert_str_eq(cause, "chown /nonexistent/x: No such file or directory");
	free(cause);

	if (geteuid() == 0 && (pw = getpwnam("nobody")) != NULL &&
	    ((gr = getgrnam("nogroup")) != NULL || (gr = getgrnam("nobody")) != NULL)) {
		char	gname[64];
		uid_t	uid = pw->pw_uid;
		gid_t	gid = gr->gr_gid;

		/* A copy: getgrnam() reuses the buffer gr points into. */
		snprintf(gname, sizeof gname, "%s", gr->gr_name);
		cf.socket_owner = (char *)"nobody";
		cf.socket_group = gname;
		ck_assert_int_eq(priv_socket_owner(&cf, path, &cause), 0);
		ck_assert_ptr_null(cause);
		ck_assert_int_eq(stat(path, &sb), 0);
		ck_assert_uint_eq(sb.st_uid, uid);
		ck_assert_uint_eq(sb.st_gid, gid);
		/* The group alone leaves the owner. */
		cf.socket_owner = NULL;
		cf.socket_group = (char *)"4343";
		ck_assert_int_eq(priv_socket_owner(&cf, path, &cause), 0);
		ck_assert_int_eq(stat(path, &sb), 0);
		ck_assert_uint_eq(sb.st_uid, uid);
		ck_assert_uint_eq(sb.st_gid, GID_A);
	} else
		fprintf(stderr, "check_priv: skipping the chown part of "
		    "test_socket_owner: needs root and nobody/nogroup\n");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *
priv_suite(void)
{
	Suite	*s = suite_create("priv");
	TCase	*ta = tcase_create("acl");
	TCase	*tp = tcase_create("peer");
	TCase	*tw = tcase_create("worker");
	TCase	*tm = tcase_create("master");

	tcase_add_test(ta, test_acl_empty);
	tcase_add_test(ta, test_acl_users);
	tcase_add_test(ta, test_acl_unresolved);
	tcase_add_test(ta, test_acl_groups);
	tcase_add_test(ta, test_acl_both);
	tcase_add_test(ta, test_acl_supplementary);
	tcase_add_test(ta, test_acl_no_member_lists);
	tcase_add_test(ta, test_acl_reload);
	tcase_add_test(ta, test_admin_lists);
	tcase_add_test(ta, test_owner_table);
	suite_add_tcase(s, ta);
	tcase_add_test(tp, test_peer_check);
	tcase_add_test(tp, test_peer_groups);
	tcase_add_test(tp, test_peer_admin);
	tcase_add_test(tp, test_peer_refused_log);
	suite_add_tcase(s, tp);
	tcase_add_test(tw, test_worker_nothing);
	tcase_add_test(tw, test_worker_rlimits);
	tcase_add_test(tw, test_nofile_raise);
	tcase_add_test(tw, test_worker_rlimit_refused);
	tcase_add_test(tw, test_worker_unknown);
	tcase_add_test(tw, test_worker_user);
	tcase_add_test(tw, test_worker_user_group);
	tcase_add_test(tw, test_worker_not_permitted);
	suite_add_tcase(s, tw);
	tcase_add_test(tm, test_drop_errors);
	tcase_add_test(tm, test_drop_stays);
	tcase_add_test(tm, test_drop_root_warning);
	tcase_add_test(tm, test_drop_user);
	tcase_add_test(tm, test_drop_keeps_caps);
	tcase_add_test(tm, test_drop_no_way_back);
	tcase_add_test(tm, test_drop_names_call);
	tcase_add_test(tm, test_drop_chown_fails);
	tcase_add_test(tm, test_socket_owner);
	suite_add_tcase(s, tm);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(priv_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
