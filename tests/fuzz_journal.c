/*
 * fuzz_journal.c: the journal reader (journal_replay(), the replay recovery runs on
 * every file) against arbitrary file contents, with what it promises checked; any
 * breach aborts:
 *   - every byte of the file is in a record applied or in a damaged region, and a
 *     region is there exactly when something was wrong (with what, and where);
 *   - damaged regions are separated by records;
 *   - the live jobs hold no more payload than the records applied carried: nothing is
 *     made up out of damage;
 *   - the crc work is at most the file four times plus JOURNAL_RESYNC_COST bytes per
 *     crc checked, whatever sizes the file claims, and the checkpoints find exactly
 *     what checking every crc from scratch finds;
 *   - ASan and UBSan watch every read, and libFuzzer's -malloc_limit_mb every allocation.
 * Each input is read as it is, and again after a journal header, so that mutations are
 * not all spent on the header.
 *
 * Built two ways:
 *   - by `make check` as tests/fuzz_journal, a plain program (gcc, ASan and UBSan under
 *     --enable-sanitizers) that reads the seed corpus, tests/corpus/journal/ (made by
 *     tests/journal_corpus.py), or the files and directories named on its command line,
 *     and a fixed number of pseudo-random mutations of each (-v: what each seed holds);
 *   - by `make fuzz` (clang) as tests/fuzz_journal_libfuzzer, with libFuzzer's own main:
 *     `tests/fuzz_journal_libfuzzer -max_total_time=300 -max_len=65536 CORPUS_DIR`.
 */

#include "autoconf.h"

#include <sys/stat.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

#define JHDR	"JOBPOOL JRNL v1\n"

#define CHECK(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "fuzz_journal: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #c);					\
		abort();						\
	}								\
} while (0)

static void
replay_checked(const uint8_t *buf, size_t len)
{
	struct journal_replay	jr, naive;
	int			header;

	memset(&jr, 0, sizeof jr);
	memset(&naive, 0, sizeof naive);
	naive.naive = 1;
	CHECK(journal_replay(buf, len, &jr) == 0);
	CHECK(journal_replay(buf, len, &naive) == 0);

	header = len >= 16 && memcmp(buf, JHDR, 16) == 0;
	if (len == 0)
		CHECK(jr.records == 0 && jr.regions == 0);
	else
		CHECK((header ? 16 : 0) + jr.record_bytes + jr.damaged_bytes == len);
	CHECK((jr.regions == 0) == (jr.damaged_bytes == 0));
	CHECK((jr.regions == 0) == (jr.why == NULL));
	CHECK(jr.regions <= jr.records + 1);
	if (jr.regions > 0) {
		CHECK(jr.first_damage < len);
		CHECK(jr.why[0] != '\0');
		if (!header)
			CHECK(jr.first_damage == 0);
	}
	CHECK(jr.jobs <= jr.records);
	CHECK(jr.dead <= jr.jobs);
	CHECK(jr.tokens <= jr.records);
	CHECK(jr.payload_bytes <= jr.record_bytes);
	CHECK(jr.hashed <= 4 * len + jr.checks * JOURNAL_RESYNC_COST);

	/* The checkpoints change how much is hashed, never what is found. */
	CHECK(naive.records == jr.records);
	CHECK(naive.record_bytes == jr.record_bytes);
	CHECK(naive.regions == jr.regions);
	CHECK(naive.damaged_bytes == jr.damaged_bytes);
	CHECK(naive.first_damage == jr.first_damage);
	CHECK(naive.why == jr.why);
	CHECK(naive.checks == jr.checks);
	CHECK(naive.jobs == jr.jobs);
	CHECK(naive.dead == jr.dead);
	CHECK(naive.payload_bytes == jr.payload_bytes);
	CHECK(naive.next_id == jr.next_id);
	CHECK(naive.tokens == jr.tokens);
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t	*buf;

	/* Copies of exactly the file's size, so that ASan sees any read past the end. */
	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return (0);
	memcpy(buf, data, size);
	replay_checked(buf, size);
	free(buf);
	if ((buf = malloc(16 + size)) == NULL)
		return (0);
	memcpy(buf, JHDR, 16);
	memcpy(buf + 16, data, size);
	replay_checked(buf, 16 + size);
	free(buf);
	return (0);
}

#ifndef FUZZ_LIBFUZZER

#define MUTATIONS	1500
#define MAX_FILE	(1 << 20)

/* xorshift64*, for mutations that are the same on every run. */
static uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (*s * 0x2545F4914F6CDD1DULL);
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/*
 * A few edits of a seed, of the kinds damage takes: bits flipped, bytes changed, a
 * 4-byte field (a size, say) set to a value that matters, bytes put in or taken out, a
 * span copied over another (a record where another was), the file cut short.
 */
static void
mutate_and_run(const uint8_t *seed, size_t len, uint64_t *rs, uint8_t *buf)
{
	static const uint32_t	 fields[] = {
		0, 1, 8, 9, 20, 31, 32, 255, 256, 4096, 65535, 0x7fffffff, 0xffffffffU,
		268435456 + 4096 + 65536, 268435456 + 4096 + 65537
	};
	size_t			 n, k, edits, pos, span, from;

	n = len < MAX_FILE ? len : MAX_FILE;
	memcpy(buf, seed, n);
	edits = 1 + next_rand(rs) % 3;
	for (k = 0; k < edits; k++) {
		pos = n > 0 ? next_rand(rs) % n : 0;
		switch (next_rand(rs) % 7) {
		case 0:		/* a bit flipped */
			if (n > 0)
				buf[pos] ^= (uint8_t)(1 << next_rand(rs) % 8);
			break;
		case 1:		/* a byte changed */
			if (n > 0)
				buf[pos] = (uint8_t)next_rand(rs);
			break;
		case 2:		/* a field set */
			if (pos + 4 <= n)
				put32(buf + pos, next_rand(rs) % 3 == 0 ?
				    (uint32_t)(n - pos) : fields[next_rand(rs) %
				    (sizeof fields / sizeof fields[0])]);
			break;
		case 3:		/* bytes put in */
			span = 1 + next_rand(rs) % 64;
			if (n + span <= MAX_FILE) {
				memmove(buf + pos + span, buf + pos, n - pos);
				for (from = 0; from < span; from++)
					buf[pos + from] = (uint8_t)next_rand(rs);
				n += span;
			}
			break;
		case 4:		/* bytes taken out */
			span = 1 + next_rand(rs) % 64;
			if (pos + span <= n) {
				memmove(buf + pos, buf + pos + span, n - pos - span);
				n -= span;
			}
			break;
		case 5:		/* a span copied over another */
			span = 1 + next_rand(rs) % 128;
			from = n > 0 ? next_rand(rs) % n : 0;
			if (from + span <= n && pos + span <= n)
				memmove(buf + pos, buf + from, span);
			break;
		default:	/* cut short */
			n = pos;
			break;
		}
	}
	LLVMFuzzerTestOneInput(buf, n);
}

/* A file's contents (malloc'd), or NULL with the reason printed. */
static uint8_t *
read_file(const char *path, size_t *lenp)
{
	struct stat	 sb;
	uint8_t		*data;
	FILE		*f;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &sb) != 0) {
		perror(path);
		if (f != NULL)
			fclose(f);
		return (NULL);
	}
	if ((data = malloc((size_t)sb.st_size + 1)) == NULL ||
	    fread(data, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
		perror(path);
		free(data);
		fclose(f);
		return (NULL);
	}
	fclose(f);
	*lenp = (size_t)sb.st_size;
	return (data);
}

static size_t	 runs, seeds;
static uint64_t	 rs = 0x9E3779B97F4A7C15ULL;
static uint8_t	*mbuf;
static int	 verbose;

/* One seed: as it is, then mutated. 0, or -1 if it cannot be read. */
static int
run_seed(const char *path)
{
	uint8_t	*data;
	size_t	 len;
	int	 r;

	if ((data = read_file(path, &len)) == NULL)
		return (-1);
	LLVMFuzzerTestOneInput(data, len);
	if (verbose) {
		struct journal_replay	jr;

		memset(&jr, 0, sizeof jr);
		if (journal_replay(data, len, &jr) == 0)
			printf("%s: %zu bytes: %llu records, %llu damaged regions (%llu "
			    "bytes, first at %llu: %s), %llu jobs (%llu dead), %llu "
			    "tokens, next id %llu; %llu crcs checked over %llu bytes\n",
			    path, len,
			    (unsigned long long)jr.records, (unsigned long long)jr.regions,
			    (unsigned long long)jr.damaged_bytes,
			    (unsigned long long)jr.first_damage,
			    jr.why != NULL ? jr.why : "-", (unsigned long long)jr.jobs,
			    (unsigned long long)jr.dead, (unsigned long long)jr.tokens,
			    (unsigned long long)jr.next_id,
			    (unsigned long long)jr.checks, (unsigned long long)jr.hashed);
	}
	for (r = 0; r < MUTATIONS; r++)
		mutate_and_run(data, len, &rs, mbuf);
	free(data);
	seeds++;
	runs += 1 + MUTATIONS;
	return (0);
}

static int
cmp_str(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* Every file of a directory, in name order (so that the mutations are the same). */
static int
run_dir(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		**names = NULL, **nn, path[4096];
	size_t		 n = 0, i;
	int		 rc = 0;

	if ((d = opendir(dir)) == NULL) {
		perror(dir);
		return (-1);
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((nn = realloc(names, (n + 1) * sizeof *names)) == NULL ||
		    (nn[n] = strdup(de->d_name)) == NULL) {
			perror("fuzz_journal");
			exit(1);
		}
		names = nn;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof *names, cmp_str);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		if (run_seed(path) != 0)
			rc = -1;
		free(names[i]);
	}
	free(names);
	if (n == 0) {
		fprintf(stderr, "fuzz_journal: %s: no seeds\n", dir);
		rc = -1;
	}
	return (rc);
}

int
main(int argc, char **argv)
{
	struct stat	 sb;
	const char	*top;
	char		 dir[4096];
	int		 a, rc = 0;

	if ((mbuf = malloc(MAX_FILE)) == NULL)
		return (1);
	if (argc < 2 || (argc == 2 && strcmp(argv[1], "-v") == 0)) {
		verbose = argc == 2;
		/* make check: the committed corpus. */
		if ((top = getenv("top_srcdir")) == NULL)
			top = ".";
		snprintf(dir, sizeof dir, "%s/tests/corpus/journal", top);
		rc = run_dir(dir);
	}
	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "-v") == 0) {
			verbose = 1;
			continue;
		}
		if (stat(argv[a], &sb) == 0 && S_ISDIR(sb.st_mode))
			rc |= run_dir(argv[a]);
		else
			rc |= run_seed(argv[a]);
	}
	free(mbuf);
	if (rc != 0)
		return (1);
	printf("fuzz_journal: %zu seeds, %zu files read, every check held\n", seeds, runs);
	return (0);
}

#endif /* !FUZZ_LIBFUZZER */
