/*
 * ctl-top.c: jobpoolctl top, a live view of the daemon: what status shows, asked for
 * again every second and drawn over the whole terminal, until q (or ^C).
 *
 * Plain termios and ANSI escapes (ncurses is not among the dependencies): the
 * terminal goes to the alternate screen without echo or line buffering, each frame
 * is drawn from the top left, every line cleared to its end and cut at the width, and
 * whatever ends it (q, ^C, TERM, HUP, a lost daemon) restores the terminal as it was.
 * With --json, no terminal: one STATS snapshot per second, a JSON object a line.
 */

#include "autoconf.h"

#include <sys/ioctl.h>
#include <sys/types.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define TOP_INTERVAL_MS	1000

static int	top_exec(struct ctl_run *);

const struct ctl_cmd ctl_top_cmd = {
	.name = "top",
	.help = "a live view of the queues and workers, every second; q quits",
	.maxargs = 0,
	.flags = CTL_CONNECT,
	.exec = top_exec,
};

static volatile sig_atomic_t	top_stop;	/* the signal that asks us to end */
static volatile sig_atomic_t	top_resized;
static struct termios		top_saved;
static int			top_raw;	/* the terminal is ours: restore it */

static void
top_signal(int sig)
{
	if (sig == SIGWINCH)
		top_resized = 1;
	else
		top_stop = sig;
}

/* Catch what ends us, without SA_RESTART, so poll() returns at once. */
static void
top_catch(void)
{
	static const int	sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
	struct sigaction	sa;
	size_t			i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = top_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
}

/* Write all of s to the terminal (stdout). */
static void
top_write(const char *s, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(STDOUT_FILENO, s, len)) == -1) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += n;
		len -= (size_t)n;
	}
}

static void
top_puts(const char *s)
{
	top_write(s, strlen(s));
}

/* The alternate screen, no cursor, keys one at a time without echo (^C still ^C). */
static int
top_term_enter(void)
{
	struct termios	t;

	if (tcgetattr(STDIN_FILENO, &top_saved) != 0)
		return (-1);
	t = top_saved;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0)
		return (-1);
	top_raw = 1;
	top_puts("\033[?1049h\033[?25l\033[H\033[2J");
	return (0);
}

/* The terminal as it was: main screen, cursor, line mode and echo. */
static void
top_term_leave(void)
{
	if (!top_raw)
		return;
	top_puts("\033[?25h\033[?1049l");
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &top_saved);
	top_raw = 0;
}

/* The terminal's size; 80x24 if it cannot say. */
static void
top_size(int *rows, int *cols)
{
	struct winsize	ws;

	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

/*
 * Draw text over the screen from its top left: each line cut at the width and
 * cleared to its end, no more lines than fit, then the rest of the screen cleared.
 */
static void
top_draw(const char *text)
{
	char		*frame = NULL;
	size_t		 flen = 0, len;
	const char	*p = text, *e;
	FILE		*f;
	int		 rows, cols, row;

	top_size(&rows, &cols);
	if ((f = open_memstream(&frame, &flen)) == NULL)
		return;
	fputs("\033[H", f);
	for (row = 0; row < rows && *p != '\0'; row++) {
		e = strchr(p, '\n');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		fwrite(p, 1, len < (size_t)cols ? len : (size_t)cols, f);
		fputs("\033[K", f);
		/* No newline after the last row: it would scroll the screen. */
		if (row + 1 < rows)
			fputs("\r\n", f);
		p += len + (e != NULL);
	}
	fputs("\033[J", f);
	if (fclose(f) == 0)
		top_write(frame, flen);
	free(frame);
}

/* One frame: a title line (the time, how to quit), then what status shows. */
static int
top_frame(struct jobpool *jp)
{
	struct stats_rec	*recs;
	char			*text, *frame = NULL, when[32];
	size_t			 len, n, flen = 0;
	time_t			 now = time(NULL);
	FILE			*f;
	int			 rc;

	if ((rc = jobpool_stats(jp, &text, &len)) != JOBPOOL_OK)
		return (rc);
	if (stats_parse(text, &recs, &n) != 0) {
		free(text);
		return (JOBPOOL_ESYS);
	}
	if (ctl_json) {
		stats_print_json(recs, n);
		fflush(stdout);
	} else if ((f = open_memstream(&frame, &flen)) != NULL) {
		strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
		fprintf(f, "jobpoolctl top  %s  every %d s  (q quits)\n", when,
		    TOP_INTERVAL_MS / 1000);
		if (status_fprint(f, recs, n) != 0 || fclose(f) != 0) {
			if (frame != NULL)
				top_draw("out of memory\n");
		} else
			top_draw(frame);
		free(frame);
	}
	stats_free(recs, n);
	free(text);
	return (JOBPOOL_OK);
}

/* Wait up to ms for a key: 1 if it asks to quit (q), else 0. */
static int
top_wait(int ms)
{
	struct pollfd	pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	char		buf[64];
	ssize_t		n, i;

	if (ctl_json || !top_raw)
		pfd.fd = -1;	/* no keys: only the time and signals */
	if (poll(&pfd, 1, ms) <= 0 || !(pfd.revents & (POLLIN | POLLHUP)))
		return (0);
	if ((n = read(STDIN_FILENO, buf, sizeof buf)) <= 0)
		return (n == 0);	/* the terminal went away */
	for (i = 0; i < n; i++) {
		if (buf[i] == 'q' || buf[i] == 'Q')
			return (1);
	}
	return (0);
}

static uint64_t
top_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

/* top: a frame every second until q, ^C, TERM or HUP; with --json, a line each. */
static int
top_exec(struct ctl_run *r)
{
	uint64_t	next, now;
	int		rc = JOBPOOL_OK, quit = 0;

	if (!ctl_json && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))) {
		ctl_warnx("top: needs a terminal on stdin and stdout (--json prints a "
		    "snapshot a line instead)");
		return (EXIT_USAGE);
	}
	top_catch();
	if (!ctl_json && top_term_enter() != 0) {
		ctl_warnx("top: cannot set up the terminal: %s", strerror(errno));
		return (EXIT_DAEMON);
	}
	while (!quit && !top_stop) {
		if ((rc = top_frame(r->jp)) != JOBPOOL_OK)
			break;
		if (ctl_json && ferror(stdout))
			break;
		next = top_now_ms() + TOP_INTERVAL_MS;
		while (!quit && !top_stop && (now = top_now_ms()) < next) {
			quit = top_wait((int)(next - now));
			if (top_resized) {
				top_resized = 0;
				break;	/* draw again at the new size now */
			}
		}
	}
	top_term_leave();
	if (rc != JOBPOOL_OK) {
		ctl_jperr(r->jp, "top", rc);
		return (EXIT_DAEMON);
	}
	return (0);
}
