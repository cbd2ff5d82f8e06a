/*
 * main.c: jobpoold's command line, start-up order and exit codes.
 *
 *   jobpoold [-c FILE] [-t] [-d] [-V] [-h]
 *
 * Exit codes (sysexits.h): 0 stopped cleanly, 64 usage, 71 the socket could not be set
 * up, 78 the configuration is invalid, 1 anything else.
 */

#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "jobpoold.h"
#include "log.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: jobpoold [-c FILE] [-t] [-d] [-V] [-h]\n"
	    "  -c FILE  configuration file (default: %s when run as root,\n"
	    "           the embedded defaults otherwise)\n"
	    "  -t       check the configuration and exit\n"
	    "  -d       log at debug level\n"
	    "  -V       print the version and exit\n"
	    "  -h       print this help and exit\n", CONFIG_DEFAULT_PATH);
}

/* Which configuration to load: -c, the system file for root, else embedded. */
static const char *
config_choice(const char *given)
{
	if (given != NULL)
		return (given);
	if (geteuid() == 0 && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
		return (CONFIG_DEFAULT_PATH);
	return (NULL);
}

int
main(int argc, char **argv)
{
	struct config	*cf;
	const char	*path = NULL;
	char		*cause = NULL, *line, *save = NULL;
	int		 ch, test = 0, debug = 0;

	while ((ch = getopt(argc, argv, "c:dthV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("jobpoold %s\n", PACKAGE_VERSION);
			return (0);
		case 'h':
			usage(stdout);
			return (0);
		default:
			usage(stderr);
			return (EX_USAGE);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "jobpoold: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return (EX_USAGE);
	}

	log_init(debug ? LOG_DEBUG : LOG_INFO, "jobpoold");
	path = config_choice(path);
	if ((cf = config_load(path, &cause)) == NULL) {
		for (line = strtok_r(cause, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			if (test)
				fprintf(stderr, "%s\n", line);
			else
				log_errx("%s", line);
		}
		if (!test)
			log_errx("configuration %s is invalid; not starting",
			    path != NULL ? path : CONFIG_EMBEDDED_NAME);
		free(cause);
		return (EX_CONFIG);
	}
	if (cf->warnings != NULL && test)
		fprintf(stderr, "%s\n", cf->warnings);
	if (test) {
		printf("jobpoold: configuration %s is valid\n", cf->path);
		config_free(cf);
		return (0);
	}
	if (!debug)
		log_set_level(cf->log_level);
	master_debug = debug;

	/* The master owns the config from here: a reload replaces it. */
	return (master_main(cf));
}
