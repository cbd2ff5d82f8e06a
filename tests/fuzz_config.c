/*
 * fuzz_config.c: the config loader (daemon/config.c) against arbitrary text, through
 * config_load() as the daemon calls it, with what config.h promises checked on every
 * call; any breach aborts.
 *
 * A text in: either a config out and no errors, or NULL and errors, one per line, each
 * naming the file ("FILE:LINE: message" or "FILE: message") and holding no control
 * character. A config out is one the daemon can run: every queue named validly and
 * once, with a handler and a priority range, a socket path, a journal directory that is
 * absolute if there is one, settings within their bounds. Never a crash, a leak (ASan's
 * LeakSanitizer, at exit for the plain build and per input under libFuzzer) or a large
 * allocation (libFuzzer's -malloc_limit_mb). config_load() reads only files, so each
 * input is written to one temporary file first; the same text is loaded twice, as at
 * start and as a reload that cannot switch users (CONFIG_LOAD_NO_SWITCH).
 *
 * libconfig's @include reads another file, whichever the text names (/dev/zero, say):
 * that file is the administrator's, not input, so the harness turns "@include" into
 * "#include" (a comment) before it loads the text.
 *
 * Built two ways:
 *   - by `make check` as tests/fuzz_config, a plain program (gcc, ASan and UBSan under
 *     --enable-sanitizers) that loads every seed (the files of
 *     $top_srcdir/tests/corpus/config: the examples of the documentation and small
 *     broken files; $top_srcdir/conf/jobpool.conf, the annotated config with every
 *     setting, read where it lives so that it never goes stale; the embedded
 *     defaults), a fixed number of deterministic mutations of each, and every file
 *     named on its command line (a crash input from the fuzzer);
 *   - by `make fuzz` (clang) as tests/fuzz_config_libfuzzer, with libFuzzer's own main:
 *     `tests/fuzz_config_libfuzzer -max_total_time=300 -max_len=16384 DIR
 *     $(top_srcdir)/tests/corpus/config $(top_srcdir)/conf` (DIR: new inputs found).
 */

#include "autoconf.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "proto.h"

#define CHECK(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "fuzz_config: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #c);					\
		abort();						\
	}								\
} while (0)

/* Errors are a line or two per setting: far less than this for any input we give. */
#define MAX_CAUSE	(1024 * 1024)

static char	fuzz_dir[64];
static char	fuzz_path[96];

static void
fuzz_cleanup(void)
{
	if (fuzz_path[0] != '\0')
		unlink(fuzz_path);
	if (fuzz_dir[0] != '\0')
		rmdir(fuzz_dir);
}

/* The temporary file every input is written to, made once. */
static const char *
fuzz_file(void)
{
	const char	*tmp;

	if (fuzz_path[0] != '\0')
		return (fuzz_path);
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0' || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(fuzz_dir, sizeof fuzz_dir, "%s/jpfuzzcf.XXXXXX", tmp);
	if (mkdtemp(fuzz_dir) == NULL) {
		perror("fuzz_config: mkdtemp");
		exit(99);
	}
	snprintf(fuzz_path, sizeof fuzz_path, "%s/jobpool.conf", fuzz_dir);
	atexit(fuzz_cleanup);
	return (fuzz_path);
}

/* Each error line names the file and holds no control character. */
static void
check_cause(const char *cause, const char *path)
{
	size_t		 plen = strlen(path), len;
	const char	*line, *end;

	CHECK(cause != NULL);
	len = strlen(cause);
	CHECK(len > 0 && len < MAX_CAUSE);
	for (line = cause; line != NULL; line = end != NULL ? end + 1 : NULL) {
		end = strchr(line, '\n');
		CHECK(strncmp(line, path, plen) == 0);
		CHECK(line[plen] == ':');
		for (; *line != '\0' && line != end; line++)
			CHECK((unsigned char)*line >= ' ' && *line != 0x7f);
	}
}

/* A config that loaded is one the daemon can run. */
static void
check_config(const struct config *cf, const char *path)
{
	const struct queue_config	*qc;
	int				 i, k;

	CHECK(cf->path != NULL && strcmp(cf->path, path) == 0);
	CHECK(cf->socket_path != NULL && cf->socket_path[0] != '\0');
	CHECK(cf->max_payload > 0 && cf->max_payload <= CONFIG_MAX_MAX_PAYLOAD);
	CHECK(cf->log_level >= LOG_EMERG && cf->log_level <= LOG_DEBUG);
	CHECK(cf->journal_fsync >= CONFIG_FSYNC_NEVER &&
	    cf->journal_fsync <= CONFIG_FSYNC_ALWAYS);
	CHECK(cf->journal_dir == NULL || cf->journal_dir[0] == '/');
	CHECK(cf->nallow_users >= 0 && cf->nallow_groups >= 0);
	for (i = 0; i < cf->nallow_users; i++)
		CHECK(cf->allow_users[i] != NULL);
	for (i = 0; i < cf->nallow_groups; i++)
		CHECK(cf->allow_groups[i] != NULL);
	CHECK(cf->nqueues >= 0);
	for (i = 0; i < cf->nqueues; i++) {
		qc = &cf->queues[i];
		CHECK(qc->name != NULL && proto_valid_name(qc->name, strlen(qc->name)));
		CHECK(qc->handler != NULL && qc->handler[0] != '\0');
		CHECK(qc->workers >= 0);
		CHECK(qc->prio_min <= qc->prio_max);
		CHECK(qc->backoff_jitter >= 0 && qc->backoff_jitter <= 1);
		CHECK(qc->rate >= 0);
		CHECK(config_find_queue(cf, qc->name) == qc);
		for (k = 0; k < i; k++)
			CHECK(strcmp(cf->queues[k].name, qc->name) != 0);
	}
}

/* Load the file as the daemon does (flags as config_load_flags), and check the result. */
static void
load_and_check(const char *path, int flags)
{
	struct config	*cf;
	char		*cause = (char *)1;

	cf = config_load_flags(path, flags, &cause);
	if (cf != NULL) {
		CHECK(cause == NULL);
		check_config(cf, path);
		config_free(cf);
	} else {
		check_cause(cause, path);
		free(cause);
	}
}

/*
 * Not ours: libconfig 1.5 (Debian bookworm's libconfig9) leaks the string a token holds
 * when the parse fails after the lexer made it (the grammar has no %destructor; fixed
 * in libconfig 1.7). The daemon leaks those few bytes once per config it could not read;
 * anything else config_load leaks is still reported.
 */
const char	*__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return ("leak:libconfig_yylex\nleak:strbuf_append\n");
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*path = fuzz_file();
	char		*buf, *p;
	FILE		*f;

	if ((buf = malloc(size + 1)) == NULL)
		return (0);
	memcpy(buf, data, size);
	buf[size] = '\0';
	/* memmem, not strstr: the text may hold NULs. */
	for (p = buf; (p = memmem(p, size - (size_t)(p - buf), "@include", 8)) != NULL;)
		*p = '#';
	if ((f = fopen(path, "w")) == NULL || fwrite(buf, 1, size, f) != size ||
	    fclose(f) != 0) {
		perror(path);
		exit(99);
	}
	free(buf);
	load_and_check(path, 0);
	load_and_check(path, CONFIG_LOAD_NO_SWITCH);
	return (0);
}

#ifndef FUZZ_LIBFUZZER

#define MUTATIONS	1000	/* per seed */
#define MUTATE_MAX	32768

/* xorshift64*, for mutations that are the same on every run. */
static uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (*s * 0x2545F4914F6CDD1DULL);
}

/* Pieces of libconfig syntax and of jobpool's values, inserted or written over. */
static const char *const tokens[] = {
	";", "=", ":", ",", "\"", "{", "}", "(", ")", "[", "]", "\n", " ", "#", "/*", "*/",
	"//", "\\", "\\x00", "\\n", "0", "1", "-1", "0x7fffffff", "4294967296", "1e308",
	"-0.5", "99999999999999999999", "L", "true", "false", "\"\"", "\"a\"",
	"queues = ( { name = \"q\"; handler = \"echo\"; } );", "name", "handler",
	"workers", "\"plugin:\"", "\"exec:/bin/true\"", "\"echo\"", "timeout", "rate",
	"max_payload", "journal_dir", "\"relative\"", "user", "\"root\"", "@include",
};

static void
mutate_and_run(const char *seed, size_t len, uint64_t *rs)
{
	static char	 buf[MUTATE_MAX];
	const char	*t;
	size_t		 n, k, edits, pos, end, tl;

	n = len < sizeof buf ? len : sizeof buf;
	memcpy(buf, seed, n);
	edits = 1 + next_rand(rs) % 6;
	for (k = 0; k < edits; k++) {
		pos = n > 0 ? next_rand(rs) % n : 0;
		switch (next_rand(rs) % 6) {
		case 0:		/* write a token over the text */
			t = tokens[next_rand(rs) % (sizeof tokens / sizeof tokens[0])];
			tl = strlen(t);
			if (pos + tl <= n)
				memcpy(buf + pos, t, tl);
			break;
		case 1:		/* insert a token */
			t = tokens[next_rand(rs) % (sizeof tokens / sizeof tokens[0])];
			tl = strlen(t);
			if (n + tl <= sizeof buf) {
				memmove(buf + pos + tl, buf + pos, n - pos);
				memcpy(buf + pos, t, tl);
				n += tl;
			}
			break;
		case 2:		/* replace a byte by any byte */
			if (n > 0)
				buf[pos] = (char)next_rand(rs);
			break;
		case 3:		/* delete up to a line */
			end = pos + next_rand(rs) % 80;
			if (end > n)
				end = n;
			memmove(buf + pos, buf + end, n - end);
			n -= end - pos;
			break;
		case 4:		/* double the line at pos */
			while (pos > 0 && buf[pos - 1] != '\n')
				pos--;
			end = pos;
			while (end < n && buf[end] != '\n')
				end++;
			if (end < n)
				end++;
			if (n + (end - pos) <= sizeof buf) {
				memmove(buf + end + (end - pos), buf + end, n - end);
				memcpy(buf + end, buf + pos, end - pos);
				n += end - pos;
			}
			break;
		default:	/* cut the text short */
			n = pos;
			break;
		}
	}
	LLVMFuzzerTestOneInput((const uint8_t *)buf, n);
}

/* The whole of a file, NUL-terminated; its length in *len. */
static char *
read_whole(const char *path, size_t *len)
{
	FILE	*f;
	char	*data;
	long	 sz;

	if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
	    (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		perror(path);
		exit(1);
	}
	if ((data = malloc((size_t)sz + 1)) == NULL ||
	    fread(data, 1, (size_t)sz, f) != (size_t)sz) {
		perror(path);
		exit(1);
	}
	fclose(f);
	data[sz] = '\0';
	*len = (size_t)sz;
	return (data);
}

static int
name_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

int
main(int argc, char **argv)
{
	uint64_t	 rs = 0x9E3779B97F4A7C15ULL;
	size_t		 runs = 0, len, nseeds = 0, i;
	const char	*top;
	char		 dir[PATH_MAX], path[PATH_MAX + 256];
	char		*names[256], *data;
	struct dirent	*de;
	DIR		*d;
	int		 a, r;

	/* The corpus in name order, so that the mutations are the same on every run. */
	if ((top = getenv("top_srcdir")) == NULL)
		top = ".";
	snprintf(dir, sizeof dir, "%s/tests/corpus/config", top);
	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "fuzz_config: %s: %s\n", dir, strerror(errno));
		return (99);
	}
	while ((de = readdir(d)) != NULL && nseeds < sizeof names / sizeof names[0]) {
		if (de->d_name[0] != '.' && (names[nseeds] = strdup(de->d_name)) != NULL)
			nseeds++;
	}
	closedir(d);
	if (nseeds == 0) {
		fprintf(stderr, "fuzz_config: no seeds in %s\n", dir);
		return (99);
	}
	qsort(names, nseeds, sizeof names[0], name_cmp);
	/*
	 * Two more seeds where they live, so that they never go stale: the annotated
	 * jobpool.conf (every setting) and the embedded defaults.
	 */
	for (i = 0; i < nseeds + 2; i++) {
		if (i < nseeds) {
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			data = read_whole(path, &len);
			free(names[i]);
		} else if (i == nseeds) {
			snprintf(path, sizeof path, "%s/conf/jobpool.conf", top);
			data = read_whole(path, &len);
		} else {
			data = strdup(config_embedded());
			CHECK(data != NULL);
			len = strlen(data);
		}
		LLVMFuzzerTestOneInput((const uint8_t *)data, len);
		runs++;
		for (r = 0; r < MUTATIONS; r++) {
			mutate_and_run(data, len, &rs);
			runs++;
		}
		free(data);
	}
	for (a = 1; a < argc; a++) {
		data = read_whole(argv[a], &len);
		LLVMFuzzerTestOneInput((const uint8_t *)data, len);
		free(data);
		runs++;
	}
	printf("fuzz_config: %zu seeds, %zu texts loaded twice each, every check held\n",
	    nseeds + 2, runs);
	return (0);
}

#endif /* !FUZZ_LIBFUZZER */
