/*
 * fuzz_proto.c: the protocol decoders (lib/proto.c) against arbitrary bytes, with what
 * proto.h promises checked on every call; any breach aborts.
 *
 * Requests: the input is decoded as the server decodes a connection's input buffer,
 * request after request, with the same max_body. Every call returns -1, 0 or a span
 * within the buffer; a SUBMIT's body lies inside that span; an invalid request has an
 * error code and a NUL-terminated, printable message; a "toolarge" SUBMIT says how much
 * to skip. Replies: the same input decoded as libjobpool decodes the daemon's output.
 * Every prefix of the input is decoded too: a request cut short must ask for more bytes
 * or fail framing, never decode into something else than the whole input gives.
 *
 * Built two ways:
 *   - by `make check` as tests/fuzz_proto, a plain program (gcc, ASan and UBSan under
 *     --enable-sanitizers) that runs the seeds below and every file named on its command
 *     line, and a fixed number of pseudo-random mutations of the seeds;
 *   - by `make fuzz` (clang) as tests/fuzz_proto_libfuzzer, with libFuzzer's own main:
 *     `tests/fuzz_proto_libfuzzer -max_total_time=300 CORPUS_DIR`.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define MAX_BODY	65536

#define CHECK(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "fuzz_proto: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #c);					\
		abort();						\
	}								\
} while (0)

static void
check_text(const char *s, size_t max)
{
	size_t	i;

	for (i = 0; i < max && s[i] != '\0'; i++)
		CHECK(s[i] >= ' ' && s[i] <= '~');
	CHECK(i < max);
}

/* Decode one request at buf[0..len) and check the result; returns decode's value. */
static ssize_t
one_request(const char *buf, size_t len, struct proto_request *req)
{
	ssize_t	n;

	memset(req, 0xa5, sizeof *req);
	n = proto_request_decode(buf, len, MAX_BODY, req);
	CHECK(n >= -1 && n <= (ssize_t)len);
	if (n == -1) {
		check_text(req->err, sizeof req->err);
		return (n);
	}
	if (n == 0)
		return (n);
	if (req->cmd == PROTO_INVALID) {
		CHECK(req->err_code != NULL);
		CHECK(strcmp(req->err_code, "proto") == 0 ||
		    strcmp(req->err_code, "toolarge") == 0);
		check_text(req->err, sizeof req->err);
		if (strcmp(req->err_code, "toolarge") == 0)
			CHECK(req->skip > MAX_BODY);
		else
			CHECK(req->skip == 0);
		return (n);
	}
	CHECK(req->cmd >= PROTO_PING && req->cmd <= PROTO_RESUME);
	if (req->cmd == PROTO_PAUSE || req->cmd == PROTO_RESUME)
		CHECK(proto_valid_name(req->queue, strlen(req->queue)));
	if (req->cmd == PROTO_SUBMIT) {
		CHECK(req->size <= MAX_BODY);
		CHECK(req->body >= buf && req->body + req->size <= buf + n);
		CHECK(memchr(req->queue, '\0', sizeof req->queue) != NULL);
		CHECK(proto_valid_name(req->queue, strlen(req->queue)));
	}
	return (n);
}

static void
fuzz_requests(const char *buf, size_t len)
{
	struct proto_request	req, whole;
	size_t			off = 0, cut;
	ssize_t			n, m;

	while (off < len) {
		n = one_request(buf + off, len - off, &whole);
		if (n <= 0)
			break;
		/* A prefix of this request is incomplete, or lost framing, never another one. */
		for (cut = 0; cut < (size_t)n; cut += 1 + cut / 8) {
			m = one_request(buf + off, cut, &req);
			CHECK(m <= 0 || (m == n && req.cmd == whole.cmd));
		}
		if (whole.cmd == PROTO_INVALID && whole.skip > 0)
			break;	/* the server discards the body it refused */
		off += (size_t)n;
	}
}

static void
fuzz_replies(const char *buf, size_t len)
{
	struct proto_reply	rep;
	size_t			off = 0;
	ssize_t			n;

	while (off < len) {
		memset(&rep, 0xa5, sizeof rep);
		n = proto_reply_decode(buf + off, len - off, MAX_BODY, &rep);
		CHECK(n >= -1 && n <= (ssize_t)(len - off));
		if (n == -1)
			check_text(rep.err, sizeof rep.err);
		if (n <= 0)
			break;
		CHECK(rep.type >= PROTO_REPLY_OK && rep.type <= PROTO_REPLY_RESULT);
		if (rep.type == PROTO_REPLY_DATA || rep.type == PROTO_REPLY_RESULT) {
			CHECK(rep.size <= MAX_BODY);
			CHECK(rep.body >= buf + off && rep.body + rep.size <= buf + off + n);
		}
		if (rep.type == PROTO_REPLY_OK || rep.type == PROTO_REPLY_ERR)
			CHECK(rep.text >= buf + off && rep.text + rep.textlen <= buf + off + n);
		if (rep.type == PROTO_REPLY_RESULT)
			CHECK(rep.status >= buf + off &&
			    rep.status + rep.statuslen <= buf + off + n);
		off += (size_t)n;
	}
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*buf;

	/* A copy of exactly size bytes, so that ASan sees any read past the end. */
	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return (0);
	memcpy(buf, data, size);
	fuzz_requests(buf, size);
	fuzz_replies(buf, size);
	free(buf);
	return (0);
}

#ifndef FUZZ_LIBFUZZER

/* Inputs that reach every command and every error of PROTOCOL.md, and their replies. */
static const char *const seeds[] = {
	"PING\n",
	"SUBMIT default 5\nhello\n",
	"SUBMIT q.1-x_y 0\n\n",
	"SUBMIT default 3 wait prio=-5 delay=1.5 timeout=0.25 nonblock\nabc\n",
	"SUBMIT default 3 prio=99999999999999999999\nabc\n",
	"SUBMIT default 70000\n",
	"SUBMIT default 3\nabcX",
	"SUBMIT default 5 wait\r\nhello\r\nPING\r\n",
	"SUBMIT default 3\nabc\rX",
	"SUBMIT bad/name 1\nx\n",
	"SUBMIT default -1\nx\n",
	"SUBMIT default 3 delay=-1 timeout=x wait=1\nabc\n",
	"WAIT 1\nSTATUS 18446744073709551615\nCANCEL 0\nHISTORY 7\n",
	"STATUS\nSTATS\nDEAD\nDEAD default\nRETRY 5\nRETRY all\nRETRY all default\n",
	"RELOAD\nQUIT\n",
	"PAUSE default\nRESUME default\nPAUSE\nRESUME a b\nPAUSE bad/name\n",
	"ping\n\r\nPING extra\n\tPING \x01\n",
	"UNKNOWN a b c d e f g h i j k l m n o p q r s t\n",
	"OK\nOK 12 queued\nERR proto the line is too long\n",
	"DATA 5\nhello\nRESULT 9 ok 3\nabc\nRESULT 9 failed 0\n\n",
	"RESULT 1 ok 99999999\nx\nDATA x\n",
};

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
mutate_and_run(const char *seed, size_t len, uint64_t *rs)
{
	static const char	 bytes[] = "\n \t\r0123456789-=.:SUBMITWAITPINGOKERRDATA\x00\xff";
	char			 buf[512];
	size_t			 n, k, edits, pos;

	n = len < sizeof buf ? len : sizeof buf;
	memcpy(buf, seed, n);
	edits = 1 + next_rand(rs) % 4;
	for (k = 0; k < edits; k++) {
		pos = n > 0 ? next_rand(rs) % n : 0;
		switch (next_rand(rs) % 3) {
		case 0:		/* replace a byte */
			if (n > 0)
				buf[pos] = bytes[next_rand(rs) % (sizeof bytes - 1)];
			break;
		case 1:		/* insert a byte */
			if (n < sizeof buf) {
				memmove(buf + pos + 1, buf + pos, n - pos);
				buf[pos] = bytes[next_rand(rs) % (sizeof bytes - 1)];
				n++;
			}
			break;
		default:	/* cut the input short */
			n = pos;
			break;
		}
	}
	LLVMFuzzerTestOneInput((const uint8_t *)buf, n);
}

int
main(int argc, char **argv)
{
	uint64_t	 rs = 0x9E3779B97F4A7C15ULL;
	size_t		 i, runs = 0;
	int		 a, r;
	FILE		*f;
	char		*data;
	long		 sz;

	for (i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		LLVMFuzzerTestOneInput((const uint8_t *)seeds[i], strlen(seeds[i]));
		runs++;
		for (r = 0; r < 10000; r++) {
			mutate_and_run(seeds[i], strlen(seeds[i]), &rs);
			runs++;
		}
	}
	for (a = 1; a < argc; a++) {
		if ((f = fopen(argv[a], "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
		    (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
			perror(argv[a]);
			return (1);
		}
		if ((data = malloc((size_t)sz + 1)) == NULL ||
		    fread(data, 1, (size_t)sz, f) != (size_t)sz) {
			perror(argv[a]);
			return (1);
		}
		fclose(f);
		LLVMFuzzerTestOneInput((const uint8_t *)data, (size_t)sz);
		free(data);
		runs++;
	}
	printf("fuzz_proto: %zu inputs decoded, every check held\n", runs);
	return (0);
}

#endif /* !FUZZ_LIBFUZZER */
