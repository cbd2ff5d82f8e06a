/*
 * checkmaster.h: what the suites that start the master's parts without master_main()
 * share (check_master, check_server): a temporary directory holding the config file
 * and the socket, and the environment of a plain start (no systemd sockets, no notify
 * socket, SIGPIPE ignored as master.c does).
 */

#ifndef CHECKMASTER_H
#define CHECKMASTER_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static char		 tdir[64];
static char		 tconf[96];	/* tdir/jobpool.conf */
static char		 tsock[96];	/* tdir/jobpool.sock */

/* A new temporary directory for suite, and a plain start's environment. */
static inline void
checkmaster_dir(const char *suite)
{
	signal(SIGPIPE, SIG_IGN);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	snprintf(tdir, sizeof tdir, "/tmp/%s.XXXXXX", suite);
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(tconf, sizeof tconf, "%s/jobpool.conf", tdir);
	snprintf(tsock, sizeof tsock, "%s/jobpool.sock", tdir);
}

#endif
