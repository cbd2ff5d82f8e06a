/*
 * checkcapture.h: a Check suite's stderr sent to a file, for suites that assert on what
 * the daemon logs (check_log, check_notify).
 */

#ifndef CHECKCAPTURE_H
#define CHECKCAPTURE_H

#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char	capture_path[160];
static int	capture_saved = -1;

/* Send stderr to a fresh file "stderr" in dir (which the caller owns). */
static inline void
capture_into(const char *dir)
{
	int	fd;

	snprintf(capture_path, sizeof capture_path, "%s/stderr", dir);
	fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	capture_saved = dup(STDERR_FILENO);
	ck_assert_int_ge(capture_saved, 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

/* Everything written to stderr so far (malloc'd, NUL-terminated). */
static inline char *
capture_read(void)
{
	struct stat	 sb;
	char		*buf;
	int		 fd;

	fd = open(capture_path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(read(fd, buf, (size_t)sb.st_size), (ssize_t)sb.st_size);
	buf[sb.st_size] = '\0';
	close(fd);
	return (buf);
}

/* Put stderr back and remove the file. */
static inline void
capture_stop(void)
{
	if (capture_saved != -1) {
		dup2(capture_saved, STDERR_FILENO);
		close(capture_saved);
		capture_saved = -1;
	}
	unlink(capture_path);
}

#endif /* CHECKCAPTURE_H */
