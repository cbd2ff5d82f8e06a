/*
 * jobpoolctl.c: the command-line client of jobpoold.
 *
 * This file owns the global options, the command table and `jobpoolctl -h`, made from
 * the table. Each command lives in its own ctl-*.c; ctl.c runs it and holds what the
 * commands share (ctl.h says what a table entry holds and the exit statuses).
 */

#include "autoconf.h"

#include <sys/types.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

#define CTL_HELP_COL	26	/* where the help of a command or an option starts */
#define CTL_HELP_WIDTH	80

/* Long options without a short form. */
enum {
	OPT_JSON = 256
};

/* The commands, in the order jobpoolctl -h lists them. */
static const struct ctl_cmd *const ctl_cmds[] = {
	&ctl_submit_cmd,
	&ctl_map_cmd,
	&ctl_status_cmd,
	&ctl_top_cmd,
	&ctl_wait_cmd,
	&ctl_cancel_cmd,
	&ctl_dead_cmd,
	&ctl_retry_cmd,
	&ctl_pause_cmd,
	&ctl_resume_cmd,
	&ctl_reload_cmd,
	&ctl_ping_cmd,
	&ctl_events_cmd,
};

/* The global options as jobpoolctl -h shows them. */
static const struct {
	const char	*synopsis;
	const char	*help;
} ctl_global_help[] = {
	{ "-s, --socket path", "the daemon's socket (default: $JOBPOOL_SOCKET, else "
	    "the per-user or system socket)" },
	{ "    --json", "print JSON instead of text" },
	{ "-h, --help", "print this help and exit" },
	{ "-V, --version", "print the version and exit" },
};

/*
 * Print the words of s from column col, each after a space, or on a new line at
 * column indent when it would run past CTL_HELP_WIDTH. A bracketed group ("[-w [-r]]",
 * "[data | -]") is one word. Returns the column reached.
 */
static size_t
ctl_help_wrap(FILE *f, const char *s, size_t col, size_t indent)
{
	const char	*p;
	size_t		 len, depth;

	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return (col);
		for (p = s, depth = 0; *p != '\0' && (*p != ' ' || depth > 0); p++) {
			if (*p == '[')
				depth++;
			else if (*p == ']' && depth > 0)
				depth--;
		}
		len = (size_t)(p - s);
		if (col + 1 + len > CTL_HELP_WIDTH) {
			fprintf(f, "\n%*s", (int)indent, "");
			col = indent;
		} else {
			putc(' ', f);
			col++;
		}
		fwrite(s, 1, len, f);
		col += len;
		s = p;
	}
}

/* Print help at column CTL_HELP_COL, after what is on the line up to column col. */
static void
ctl_help_text(FILE *f, size_t col, const char *help)
{
	/* At least two spaces between, or the help starts a line of its own. */
	if (col + 2 > CTL_HELP_COL) {
		putc('\n', f);
		col = 0;
	}
	fprintf(f, "%*s", (int)(CTL_HELP_COL - 1 - col), "");
	ctl_help_wrap(f, help, CTL_HELP_COL - 1, CTL_HELP_COL);
	putc('\n', f);
}

/* jobpoolctl -h: the commands from their table entries, then the global options. */
static void
ctl_help(FILE *f)
{
	const struct ctl_cmd	*cmd;
	size_t			 i, col, indent;

	fputs("usage: " CTL_SYNOPSIS " command [args]\n\ncommands:\n", f);
	for (i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++) {
		cmd = ctl_cmds[i];
		fprintf(f, "  %s", cmd->name);
		col = 2 + strlen(cmd->name);
		indent = col + 1;
		if (cmd->usage[0] != NULL)
			col = ctl_help_wrap(f, cmd->usage[0], col, indent);
		if (cmd->usage[1] != NULL) {
			col = ctl_help_wrap(f, "|", col, indent);
			col = ctl_help_wrap(f, cmd->usage[1], col, indent);
		}
		ctl_help_text(f, col, cmd->help);
	}
	fputs("\noptions:\n", f);
	for (i = 0; i < sizeof ctl_global_help / sizeof ctl_global_help[0]; i++) {
		fprintf(f, "  %s", ctl_global_help[i].synopsis);
		ctl_help_text(f, 2 + strlen(ctl_global_help[i].synopsis),
		    ctl_global_help[i].help);
	}
}

/* The command called name, or NULL. */
static const struct ctl_cmd *
ctl_cmd_find(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++) {
		if (strcmp(ctl_cmds[i]->name, name) == 0)
			return (ctl_cmds[i]);
	}
	return (NULL);
}

/* Parse the global options and run the command. */
int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const struct ctl_cmd	*cmd;
	char			 prog[64];
	int			 ch;

	/* A daemon that goes away must give an error, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	argv[0] = (char *)"jobpoolctl";		/* getopt's complaints, as ours */

	/* "+": stop at the command; each command parses its own options. */
	while ((ch = getopt_long(argc, argv, "+hs:V", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (*optarg == '\0') {
				ctl_warnx("-s: empty socket path");
				return (EXIT_USAGE);
			}
			ctl_socket = optarg;
			break;
		case OPT_JSON:
			ctl_json = 1;
			break;
		case 'h':
			ctl_help(stdout);
			return (0);
		case 'V':
			printf("jobpoolctl %s\n", PACKAGE_VERSION);
			return (0);
		default:
			ctl_help(stderr);
			return (EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		ctl_warnx("no command given");
		ctl_help(stderr);
		return (EXIT_USAGE);
	}
	if ((cmd = ctl_cmd_find(argv[0])) == NULL) {
		ctl_warnx("unknown command '%s'", argv[0]);
		ctl_help(stderr);
		return (EXIT_USAGE);
	}

	/*
	 * Restart getopt on the command's arguments; argv[0] is the command name.
	 * optind = 0 (not 1) makes glibc and musl drop their saved scanning state.
	 * getopt names argv[0] in its complaints: make them read like ours.
	 */
	snprintf(prog, sizeof prog, "jobpoolctl: %s", cmd->name);
	argv[0] = prog;
	optind = 0;
	return (ctl_run(cmd, argc, argv));
}
