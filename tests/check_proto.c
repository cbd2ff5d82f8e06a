/*
 * check_proto.c: unit tests for proto.c, the wire protocol decoders and the number and
 * name rules. Every request, option and error path; incremental decoding of a pipelined
 * stream split at every byte and at random places; oversized bodies; lost framing.
 */

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define MAXB	1048576u

/* Decode the NUL-terminated string s with the default body limit. */
static ssize_t
dec(const char *s, struct proto_request *req)
{
	return (proto_request_decode(s, strlen(s), MAXB, req));
}

/* Decode s, expect a whole malformed request of its full length with message err. */
static void
expect_invalid(const char *s, const char *err)
{
	struct proto_request	req;
	ssize_t			n;

	n = dec(s, &req);
	ck_assert_msg(n == (ssize_t)strlen(s), "%s: returned %zd", s, n);
	ck_assert_int_eq(req.cmd, PROTO_INVALID);
	ck_assert_str_eq(req.err_code, "proto");
	ck_assert_str_eq(req.err, err);
}

/* Decode s (of length len), expect framing lost with message err. */
static void
expect_lost(const char *s, size_t len, const char *err)
{
	struct proto_request	req;
	ssize_t			n;

	n = proto_request_decode(s, len, MAXB, &req);
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(req.cmd, PROTO_INVALID);
	ck_assert_str_eq(req.err_code, "proto");
	if (err != NULL)
		ck_assert_str_eq(req.err, err);
	else
		ck_assert(req.err[0] != '\0');
}

START_TEST(test_noargs)
{
	struct proto_request	req;

	ck_assert_int_eq(dec("PING\n", &req), 5);
	ck_assert_int_eq(req.cmd, PROTO_PING);
	ck_assert_ptr_null(req.err_code);
	ck_assert_int_eq(dec("STATS\n", &req), 6);
	ck_assert_int_eq(req.cmd, PROTO_STATS);
	ck_assert_int_eq(dec("QUIT\n", &req), 5);
	ck_assert_int_eq(req.cmd, PROTO_QUIT);
	ck_assert_int_eq(dec(" \tPING \t \n", &req), 10);
	ck_assert_int_eq(req.cmd, PROTO_PING);

	expect_invalid("PING x\n", "PING: unexpected argument 'x'");
	expect_invalid("STATS all\n", "STATS: unexpected argument 'all'");
	expect_invalid("QUIT now please\n", "QUIT: unexpected argument 'now'");
	expect_invalid("ping\n", "unknown command 'ping'");
	expect_invalid("FOO\n", "unknown command 'FOO'");
	expect_invalid("PINGS\n", "unknown command 'PINGS'");
	expect_invalid("SUBMITX\n", "unknown command 'SUBMITX'");
	expect_invalid("STATUSES 1\n", "unknown command 'STATUSES'");
	expect_invalid("X\n", "unknown command 'X'");
	expect_invalid("\n", "empty request line");
	expect_invalid(" \t \r\n", "empty request line");
}
END_TEST

START_TEST(test_id_commands)
{
	static const struct {
		const char		*name;
		enum proto_cmd		 cmd;
	} c[] = {
		{ "WAIT", PROTO_WAIT }, { "STATUS", PROTO_STATUS }, { "CANCEL", PROTO_CANCEL }
	};
	struct proto_request	req;
	char			line[128], err[128];
	size_t			i;

	for (i = 0; i < sizeof c / sizeof c[0]; i++) {
		snprintf(line, sizeof line, "%s 42\n", c[i].name);
		ck_assert_int_eq(dec(line, &req), (ssize_t)strlen(line));
		ck_assert_int_eq(req.cmd, c[i].cmd);
		ck_assert_uint_eq(req.id, 42);

		snprintf(line, sizeof line, "%s 9999999999999999999\r\n", c[i].name);
		ck_assert_int_eq(dec(line, &req), (ssize_t)strlen(line));
		ck_assert_int_eq(req.cmd, c[i].cmd);
		ck_assert_uint_eq(req.id, UINT64_C(9999999999999999999));

		snprintf(line, sizeof line, "%s\n", c[i].name);
		snprintf(err, sizeof err, "%s: missing job id", c[i].name);
		expect_invalid(line, err);

		snprintf(line, sizeof line, "%s 0\n", c[i].name);
		snprintf(err, sizeof err, "%s: bad job id '0'", c[i].name);
		expect_invalid(line, err);

		snprintf(line, sizeof line, "%s -1\n", c[i].name);
		snprintf(err, sizeof err, "%s: bad job id '-1'", c[i].name);
		expect_invalid(line, err);

		snprintf(line, sizeof line, "%s +1\n", c[i].name);
		snprintf(err, sizeof err, "%s: bad job id '+1'", c[i].name);
		expect_invalid(line, err);

		snprintf(line, sizeof line, "%s 1x\n", c[i].name);
		snprintf(err, sizeof err, "%s: bad job id '1x'", c[i].name);
		expect_invalid(line, err);

		snprintf(line, sizeof line, "%s 12345678901234567890\n", c[i].name);
		snprintf(err, sizeof err, "%s: bad job id '12345678901234567890'",
		    c[i].name);
		expect_invalid(line, err);

		snprintf(line, sizeof line, "%s 1 2\n", c[i].name);
		snprintf(err, sizeof err, "%s: unexpected argument '2'", c[i].name);
		expect_invalid(line, err);
	}
}
END_TEST

/* PAUSE <queue> and RESUME <queue>: the queue is required, and only one. */
START_TEST(test_pause_commands)
{
	struct proto_request	req;

	ck_assert_int_eq(dec("PAUSE default\n", &req), 14);
	ck_assert_int_eq(req.cmd, PROTO_PAUSE);
	ck_assert_str_eq(req.queue, "default");
	ck_assert_int_eq(dec("RESUME a.b-c_9\r\n", &req), 16);
	ck_assert_int_eq(req.cmd, PROTO_RESUME);
	ck_assert_str_eq(req.queue, "a.b-c_9");

	expect_invalid("PAUSE\n", "PAUSE: missing queue name");
	expect_invalid("RESUME\n", "RESUME: missing queue name");
	expect_invalid("PAUSE a b\n", "PAUSE: unexpected argument 'b'");
	expect_invalid("RESUME a/b\n", "RESUME: bad queue name 'a/b'");
	expect_invalid("PAUSE 0123456789012345678901234567890123456789012345678901234567890123\n",
	    "PAUSE: bad queue name '0123456789012345678901234567890123456789...'");
	expect_invalid("pause q\n", "unknown command 'pause'");
	expect_invalid("PAUSES q\n", "unknown command 'PAUSES'");
}
END_TEST

START_TEST(test_submit)
{
	struct proto_request	req;
	const char		*s;

	s = "SUBMIT default 5\nhello\n";
	ck_assert_int_eq(dec(s, &req), (ssize_t)strlen(s));
	ck_assert_int_eq(req.cmd, PROTO_SUBMIT);
	ck_assert_str_eq(req.queue, "default");
	ck_assert_uint_eq(req.size, 5);
	ck_assert_ptr_eq(req.body, s + 17);
	ck_assert(memcmp(req.body, "hello", 5) == 0);
	ck_assert_int_eq(req.flags, 0);
	ck_assert_int_eq(req.prio, 0);
	ck_assert_uint_eq(req.delay_ms, 0);
	ck_assert_uint_eq(req.timeout_ms, 0);
	ck_assert_uint_eq(req.skip, 0);

	s = "SUBMIT\tq.1-x_Z\t 3 prio=-5 delay=100\ttimeout=2000 wait nonblock \r\nabc\n";
	ck_assert_int_eq(dec(s, &req), (ssize_t)strlen(s));
	ck_assert_int_eq(req.cmd, PROTO_SUBMIT);
	ck_assert_str_eq(req.queue, "q.1-x_Z");
	ck_assert_int_eq(req.prio, -5);
	ck_assert_uint_eq(req.delay_ms, 100);
	ck_assert_uint_eq(req.timeout_ms, 2000);
	ck_assert_int_eq(req.flags, PROTO_F_WAIT | PROTO_F_NONBLOCK | PROTO_F_PRIO |
	    PROTO_F_DELAY | PROTO_F_TIMEOUT);
	ck_assert(memcmp(req.body, "abc", 3) == 0);

	/* Options in another order, and the extreme values. */
	s = "SUBMIT q 0 nonblock timeout=0 prio=9223372036854775807 delay=4294967295\n\n";
	ck_assert_int_eq(dec(s, &req), (ssize_t)strlen(s));
	ck_assert_int_eq(req.cmd, PROTO_SUBMIT);
	ck_assert_uint_eq(req.size, 0);
	ck_assert_int_eq(req.prio, INT64_MAX);
	ck_assert_uint_eq(req.delay_ms, UINT32_MAX);
	ck_assert_uint_eq(req.timeout_ms, 0);
	ck_assert_int_eq(req.flags, PROTO_F_NONBLOCK | PROTO_F_TIMEOUT | PROTO_F_PRIO |
	    PROTO_F_DELAY);

	s = "SUBMIT q 1 prio=-9223372036854775808\nx\n";
	ck_assert_int_eq(dec(s, &req), (ssize_t)strlen(s));
	ck_assert_int_eq(req.prio, INT64_MIN);

	/* Each option on its own. */
	ck_assert_int_gt(dec("SUBMIT q 0 wait\n\n", &req), 0);
	ck_assert_int_eq(req.flags, PROTO_F_WAIT);
	ck_assert_int_gt(dec("SUBMIT q 0 nonblock\n\n", &req), 0);
	ck_assert_int_eq(req.flags, PROTO_F_NONBLOCK);
	ck_assert_int_gt(dec("SUBMIT q 0 prio=3\n\n", &req), 0);
	ck_assert_int_eq(req.flags, PROTO_F_PRIO);
	ck_assert_int_eq(req.prio, 3);
	ck_assert_int_gt(dec("SUBMIT q 0 delay=7\n\n", &req), 0);
	ck_assert_int_eq(req.flags, PROTO_F_DELAY);
	ck_assert_uint_eq(req.delay_ms, 7);
	ck_assert_int_gt(dec("SUBMIT q 0 timeout=8\n\n", &req), 0);
	ck_assert_int_eq(req.flags, PROTO_F_TIMEOUT);
	ck_assert_uint_eq(req.timeout_ms, 8);

	/* Leading zeros are still decimal. */
	ck_assert_int_gt(dec("SUBMIT q 003\nabc\n", &req), 0);
	ck_assert_uint_eq(req.size, 3);
}
END_TEST

/* key=NAME (issue 15): 1 to 255 bytes of printable ASCII, errors naming the field. */
START_TEST(test_submit_key)
{
	struct proto_request	req;
	char			line[600], key[300];

	ck_assert_int_gt(dec("SUBMIT q 3 key=example.org:8080 wait\nabc\n", &req), 0);
	ck_assert_int_eq(req.cmd, PROTO_SUBMIT);
	ck_assert_int_eq(req.flags, PROTO_F_KEY | PROTO_F_WAIT);
	ck_assert_uint_eq(req.keylen, 16);
	ck_assert(memcmp(req.key, "example.org:8080", 16) == 0);
	ck_assert_int_gt(dec("SUBMIT q 0\n\n", &req), 0);
	ck_assert_int_eq(req.flags & PROTO_F_KEY, 0);
	/* 255 bytes is the most. */
	memset(key, 'k', 255);
	key[255] = '\0';
	snprintf(line, sizeof line, "SUBMIT q 1 key=%s\nx\n", key);
	ck_assert_int_gt(dec(line, &req), 0);
	ck_assert_int_eq(req.cmd, PROTO_SUBMIT);
	ck_assert_uint_eq(req.keylen, 255);
	key[255] = 'k';
	key[256] = '\0';
	snprintf(line, sizeof line, "SUBMIT q 1 key=%s\nx\n", key);
	expect_invalid(line, "SUBMIT: key: 256 bytes, more than 255");
	expect_invalid("SUBMIT q 1 key=\nx\n",
	    "SUBMIT: key: empty (key=NAME, 1 to 255 printable bytes)");
	expect_invalid("SUBMIT q 1 key=a\rb\nx\n",
	    "SUBMIT: key: byte 0x0d at 1 is not printable ASCII");
	expect_invalid("SUBMIT q 1 key=a key=b\nx\n", "SUBMIT: duplicate option 'key=b'");
}
END_TEST

START_TEST(test_submit_binary_body)
{
	struct proto_request	req;
	static const char	s[] = "SUBMIT q 6\n\0\n\xff\r\nX\nPING\n";
	size_t			len = sizeof s - 1;

	ck_assert_int_eq(proto_request_decode(s, len, MAXB, &req), 18);
	ck_assert_int_eq(req.cmd, PROTO_SUBMIT);
	ck_assert_uint_eq(req.size, 6);
	ck_assert(memcmp(req.body, "\0\n\xff\r\nX", 6) == 0);
	ck_assert_int_eq(proto_request_decode(s + 18, len - 18, MAXB, &req), 5);
	ck_assert_int_eq(req.cmd, PROTO_PING);
}
END_TEST

START_TEST(test_submit_errors)
{
	char	line[256], name[80];

	expect_invalid("SUBMIT\n", "SUBMIT: missing queue name");
	expect_invalid("SUBMIT q\n", "SUBMIT: missing size");
	expect_invalid("SUBMIT a/b\n", "SUBMIT: bad queue name 'a/b'");
	/* A bad queue with a good size: the body is still consumed. */
	expect_invalid("SUBMIT a/b 3\nabc\n", "SUBMIT: bad queue name 'a/b'");
	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(line, sizeof line, "SUBMIT %s 1\nx\n", name);
	expect_invalid(line, "SUBMIT: bad queue name "
	    "'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...'");
	name[63] = '\0';
	snprintf(line, sizeof line, "SUBMIT %s 1\nx\n", name);
	{
		struct proto_request req;

		ck_assert_int_eq(dec(line, &req), (ssize_t)strlen(line));
		ck_assert_int_eq(req.cmd, PROTO_SUBMIT);
		ck_assert_str_eq(req.queue, name);
	}

	expect_invalid("SUBMIT q 3 bogus\nabc\n", "SUBMIT: unknown option 'bogus'");
	expect_invalid("SUBMIT q 3 bogus=1\nabc\n", "SUBMIT: unknown option 'bogus=1'");
	expect_invalid("SUBMIT q 3 wait=1\nabc\n", "SUBMIT: unknown option 'wait=1'");
	expect_invalid("SUBMIT q 3 WAIT\nabc\n", "SUBMIT: unknown option 'WAIT'");
	expect_invalid("SUBMIT q 3 =5\nabc\n", "SUBMIT: unknown option '=5'");
	expect_invalid("SUBMIT q 3 prio=1x\nabc\n", "SUBMIT: prio: bad number '1x'");
	expect_invalid("SUBMIT q 3 prio=\nabc\n", "SUBMIT: prio: bad number ''");
	expect_invalid("SUBMIT q 3 prio=+1\nabc\n", "SUBMIT: prio: bad number '+1'");
	expect_invalid("SUBMIT q 3 prio=-\nabc\n", "SUBMIT: prio: bad number '-'");
	expect_invalid("SUBMIT q 3 prio=9223372036854775808\nabc\n",
	    "SUBMIT: prio: bad number '9223372036854775808'");
	expect_invalid("SUBMIT q 3 delay=abc\nabc\n", "SUBMIT: delay: bad number 'abc'");
	expect_invalid("SUBMIT q 3 delay=-1\nabc\n", "SUBMIT: delay: bad number '-1'");
	expect_invalid("SUBMIT q 3 delay=4294967296\nabc\n",
	    "SUBMIT: delay: out of range '4294967296'");
	expect_invalid("SUBMIT q 3 timeout=1.5\nabc\n",
	    "SUBMIT: timeout: bad number '1.5'");
	expect_invalid("SUBMIT q 3 timeout=99999999999\nabc\n",
	    "SUBMIT: timeout: out of range '99999999999'");
	expect_invalid("SUBMIT q 3 wait wait\nabc\n", "SUBMIT: duplicate option 'wait'");
	expect_invalid("SUBMIT q 3 nonblock nonblock\nabc\n",
	    "SUBMIT: duplicate option 'nonblock'");
	expect_invalid("SUBMIT q 3 prio=1 prio=2\nabc\n",
	    "SUBMIT: duplicate option 'prio=2'");
	expect_invalid("SUBMIT q 3 delay=1 delay=1\nabc\n",
	    "SUBMIT: duplicate option 'delay=1'");
	expect_invalid("SUBMIT q 3 timeout=1 timeout=1\nabc\n",
	    "SUBMIT: duplicate option 'timeout=1'");
	expect_invalid("SUBMIT q 0 a b c d e f g h i j k l m n\n\n",
	    "SUBMIT: too many options");
	/* The first error is the one reported. */
	expect_invalid("SUBMIT q 0 bogus prio=x\n\n", "SUBMIT: unknown option 'bogus'");
}
END_TEST

START_TEST(test_submit_framing)
{
	struct proto_request	req;
	const char		*s;
	size_t			i;

	/* A size that cannot be read means the body cannot be found. */
	expect_lost("SUBMIT q abc\nabc\n", 17, "SUBMIT: bad size 'abc'");
	expect_lost("SUBMIT q -1\n", 12, "SUBMIT: bad size '-1'");
	expect_lost("SUBMIT q +1\nx\n", 14, "SUBMIT: bad size '+1'");
	expect_lost("SUBMIT q 12345678901234567890\n", 30,
	    "SUBMIT: bad size '12345678901234567890'");
	expect_lost("SUBMIT q 3\nabcd\n", 16,
	    "SUBMIT: body of 3 bytes not followed by newline");
	expect_lost("SUBMIT q 0\nx", 12, "SUBMIT: body of 0 bytes not followed by newline");
	/* A malformed request still needs its body to be followed by a newline. */
	expect_lost("SUBMIT q 3 bogus\nabcd", 21,
	    "SUBMIT: body of 3 bytes not followed by newline");

	/* Every prefix of a good or a bad SUBMIT needs more bytes. */
	s = "SUBMIT q 5 wait\nhello\n";
	for (i = 0; i < strlen(s); i++)
		ck_assert_int_eq(proto_request_decode(s, i, MAXB, &req), 0);
	s = "SUBMIT q/ 5 wait\nhello\n";
	for (i = 0; i < strlen(s); i++)
		ck_assert_int_eq(proto_request_decode(s, i, MAXB, &req), 0);
}
END_TEST

START_TEST(test_toolarge)
{
	struct proto_request	req;
	const char		*s = "SUBMIT q 11 wait\n0123456789A\nPING\n";
	size_t			len = strlen(s);
	ssize_t			n;

	n = proto_request_decode(s, len, 10, &req);
	ck_assert_int_eq(n, 17);
	ck_assert_int_eq(req.cmd, PROTO_INVALID);
	ck_assert_str_eq(req.err_code, "toolarge");
	ck_assert_str_eq(req.err, "SUBMIT: size 11 exceeds the limit of 10 bytes");
	ck_assert_uint_eq(req.skip, 12);
	/* The caller skips the body and its newline and carries on. */
	ck_assert_int_eq(s[n + req.skip - 1], '\n');
	n = proto_request_decode(s + n + req.skip, len - n - req.skip, 10, &req);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(req.cmd, PROTO_PING);

	/* Known as soon as the line is in, without the body. */
	n = proto_request_decode(s, 17, 10, &req);
	ck_assert_int_eq(n, 17);
	ck_assert_str_eq(req.err_code, "toolarge");
	ck_assert_uint_eq(req.skip, 12);

	/* Exactly the limit is fine. */
	n = proto_request_decode("SUBMIT q 10\n0123456789\n", 23, 10, &req);
	ck_assert_int_eq(n, 23);
	ck_assert_int_eq(req.cmd, PROTO_SUBMIT);

	/* A huge size: skip is 64-bit. */
	n = dec("SUBMIT q 9999999999999999999\n", &req);
	ck_assert_int_eq(n, 29);
	ck_assert_str_eq(req.err_code, "toolarge");
	ck_assert_uint_eq(req.skip, UINT64_C(10000000000000000000));

	/* Too large wins over other errors: the caller must skip the body. */
	n = proto_request_decode("SUBMIT a/b 11 bogus\n", 20, 10, &req);
	ck_assert_int_eq(n, 20);
	ck_assert_str_eq(req.err_code, "toolarge");
	ck_assert_uint_eq(req.skip, 12);
}
END_TEST

START_TEST(test_line_limits)
{
	struct proto_request	req;
	char			buf[PROTO_MAX_LINE + 64];
	ssize_t			n;

	/* 1024 bytes and a newline is a line (a bad one). */
	memset(buf, 'x', sizeof buf);
	buf[PROTO_MAX_LINE] = '\n';
	n = proto_request_decode(buf, PROTO_MAX_LINE + 1, MAXB, &req);
	ck_assert_int_eq(n, PROTO_MAX_LINE + 1);
	ck_assert_int_eq(req.cmd, PROTO_INVALID);
	ck_assert_ptr_nonnull(strstr(req.err, "unknown command 'xxx"));
	ck_assert_uint_lt(strlen(req.err), 80);

	/* 1024 bytes without a newline may still become a line. */
	ck_assert_int_eq(proto_request_decode(buf, PROTO_MAX_LINE, MAXB, &req), 0);

	/* 1025 bytes without a newline never will. */
	memset(buf, 'x', sizeof buf);
	expect_lost(buf, PROTO_MAX_LINE + 1, "line longer than 1024 bytes");
	buf[PROTO_MAX_LINE + 1] = '\n';
	expect_lost(buf, PROTO_MAX_LINE + 2, "line longer than 1024 bytes");

	/* A long valid request: padded with spaces. */
	memset(buf, ' ', sizeof buf);
	memcpy(buf, "PING", 4);
	buf[PROTO_MAX_LINE] = '\n';
	ck_assert_int_eq(proto_request_decode(buf, PROTO_MAX_LINE + 1, MAXB, &req),
	    PROTO_MAX_LINE + 1);
	ck_assert_int_eq(req.cmd, PROTO_PING);
}
END_TEST

START_TEST(test_garbage)
{
	struct proto_request	req;
	static const char	nul[] = "PI\0NG\n";
	static const char	bin[] = "\x00\x01\x02\xff";
	static const char	bel[] = "WAIT 1\x07\n";
	static const char	del[] = "PING\x7f\n";
	static const char	esc[] = "\x1b[A";
	static const char	ok_then_bad[] = "PING\n\x01";

	expect_lost(nul, sizeof nul - 1, "control byte 0x00 in request line");
	expect_lost(bel, sizeof bel - 1, "control byte 0x07 in request line");
	expect_lost(del, sizeof del - 1, "control byte 0x7f in request line");
	/* Garbage is refused at once, without waiting for a newline. */
	expect_lost(bin, sizeof bin - 1, "binary data where a request line should be");
	expect_lost(esc, sizeof esc - 1, NULL);
	expect_lost("\x01", 1, NULL);
	/* A good request before garbage still comes out first. */
	ck_assert_int_eq(proto_request_decode(ok_then_bad, sizeof ok_then_bad - 1, MAXB,
	    &req), 5);
	ck_assert_int_eq(req.cmd, PROTO_PING);
	expect_lost(ok_then_bad + 5, 1, NULL);

	/* Bytes above ASCII on a line are binary garbage: framing is lost. */
	expect_lost("PING\xc3\xa9\n", 6, "binary data where a request line should be");
	expect_lost("PING\xc3\xa9\n", 7, "non-ASCII byte 0xc3 in request line");
	expect_lost("SUBMIT q 1 caf\xc3\xa9\nx\n", 19, "non-ASCII byte 0xc3 in request line");
	expect_lost("SUBMIT q\xff 1\nx\n", 14, NULL);
	expect_lost("\xff", 1, NULL);
	/* A carriage return inside a line is not a separator. */
	expect_invalid("PI\rNG\n", "unknown command 'PI?NG'");
	expect_invalid("PING\r\r\n", "unknown command 'PING?'");
}
END_TEST

START_TEST(test_crlf)
{
	struct proto_request	req;
	const char		*s;

	ck_assert_int_eq(dec("PING\r\n", &req), 6);
	ck_assert_int_eq(req.cmd, PROTO_PING);
	ck_assert_int_eq(dec("WAIT 7\r\n", &req), 8);
	ck_assert_int_eq(req.cmd, PROTO_WAIT);
	ck_assert_uint_eq(req.id, 7);
	s = "SUBMIT q 2 wait\r\nab\n";
	ck_assert_int_eq(dec(s, &req), (ssize_t)strlen(s));
	ck_assert_int_eq(req.cmd, PROTO_SUBMIT);
	ck_assert_int_eq(req.flags, PROTO_F_WAIT);
	ck_assert(memcmp(req.body, "ab", 2) == 0);
	/* A body may end in "\r\n" too (what socat sends), and what follows is read. */
	s = "SUBMIT default 5 wait\r\nhello\r\nPING\r\n";
	ck_assert_int_eq(dec(s, &req), 30);
	ck_assert_int_eq(req.cmd, PROTO_SUBMIT);
	ck_assert_uint_eq(req.size, 5);
	ck_assert(memcmp(req.body, "hello", 5) == 0);
	ck_assert_int_eq(dec(s + 30, &req), 6);
	ck_assert_int_eq(req.cmd, PROTO_PING);
	/* ... which may hold '\r' and '\n' of its own: the size says where it ends. */
	s = "SUBMIT q 2\n\r\n\r\n";
	ck_assert_int_eq(dec(s, &req), (ssize_t)strlen(s));
	ck_assert(memcmp(req.body, "\r\n", 2) == 0);
	/* The '\r' alone needs the byte after it; a '\r' and no '\n' loses framing. */
	ck_assert_int_eq(dec("SUBMIT q 2\r\nab\r", &req), 0);
	expect_lost("SUBMIT q 2\r\nab\rX", 17,
	    "SUBMIT: body of 2 bytes not followed by newline");
	expect_lost("SUBMIT q 2\r\nab\r\r\n", 18,
	    "SUBMIT: body of 2 bytes not followed by newline");
	/* A lone '\r' is not a line end. */
	ck_assert_int_eq(dec("PING\r", &req), 0);
}
END_TEST

START_TEST(test_quoting)
{
	struct proto_request	req;
	char			line[600];
	size_t			i;

	memset(line, 'A', 500);
	memcpy(line + 500, "\n", 2);
	ck_assert_int_eq(dec(line, &req), 501);
	ck_assert_int_eq(req.cmd, PROTO_INVALID);
	ck_assert_uint_lt(strlen(req.err), sizeof req.err);
	ck_assert_ptr_nonnull(strstr(req.err, "...'"));

	snprintf(line, sizeof line, "SUBMIT q 0 prio=%s\n\n", "1\r2");
	ck_assert_int_gt(dec(line, &req), 0);
	ck_assert_str_eq(req.err, "SUBMIT: prio: bad number '1?2'");
	for (i = 0; req.err[i] != '\0'; i++)
		ck_assert(req.err[i] >= ' ' && req.err[i] <= '~');
}
END_TEST

/* One decoded request, reduced to what can be compared. */
struct seen {
	int		cmd;
	ssize_t		n;
	uint64_t	id;
	char		queue[PROTO_MAX_NAME + 1];
	int64_t		prio;
	int		flags;
	uint32_t	delay, timeout, size;
	char		body[64];
	char		code[16];
	char		err[256];
	uint64_t	skip;
};

static const char stream[] =
    "PING\n"
    "SUBMIT default 5 wait\nhello\n"
    "STATS\r\n"
    "SUBMIT q2 0 prio=-3 nonblock\n\n"
    "WAIT 17\n"
    "BOGUS thing\n"
    "SUBMIT big 40 wait\n0123456789012345678901234567890123456789\n"
    "STATUS 18\n"
    "SUBMIT bad/name 3 delay=5\n\n\n\n\n"
    "  CANCEL\t19 \r\n"
    "SUBMIT q 4 timeout=100 delay=20\n\0\n\r\x01\n"
    "\n"
    "SUBMIT q 3 prio=x\nabc\n"
    "SUBMIT q 2 wait\r\nhi\r\n"
    "QUIT\n";

/* Decode a whole stream the way the daemon does, growing the data a few bytes at a time. */
static size_t
decode_stream(const char *s, size_t len, const size_t *cuts, size_t ncuts,
    struct seen *out, size_t max)
{
	struct proto_request	req;
	char			buf[sizeof stream];
	size_t			have = 0, off = 0, fed = 0, c = 0, nout = 0;
	uint64_t		skip = 0;
	ssize_t			n;

	while (fed < len) {
		size_t piece = c < ncuts ? cuts[c++] : len - fed;

		if (piece > len - fed)
			piece = len - fed;
		memcpy(buf + have, s + fed, piece);
		have += piece;
		fed += piece;
		for (;;) {
			if (skip > 0) {
				size_t take = have - off < skip ? have - off : (size_t)skip;

				off += take;
				skip -= take;
				if (skip > 0)
					break;
			}
			n = proto_request_decode(buf + off, have - off, 20, &req);
			if (n == 0)
				break;
			ck_assert_int_gt(n, 0);
			ck_assert_uint_lt(nout, max);
			memset(&out[nout], 0, sizeof out[nout]);
			out[nout].n = n;
			out[nout].cmd = req.cmd;
			out[nout].id = req.id;
			memcpy(out[nout].queue, req.queue, sizeof req.queue);
			out[nout].prio = req.prio;
			out[nout].flags = req.flags;
			out[nout].delay = req.delay_ms;
			out[nout].timeout = req.timeout_ms;
			out[nout].size = req.size;
			if (req.body != NULL)
				memcpy(out[nout].body, req.body, req.size);
			if (req.err_code != NULL)
				snprintf(out[nout].code, sizeof out[nout].code, "%s",
				    req.err_code);
			memcpy(out[nout].err, req.err, sizeof req.err);
			out[nout].skip = req.skip;
			nout++;
			off += (size_t)n;
			skip = req.skip;
		}
	}
	ck_assert_uint_eq(off, len);
	return (nout);
}

/* Check the stream's decoding against what it says. */
static void
check_reference(const struct seen *r, size_t n)
{
	ck_assert_uint_eq(n, 15);
	ck_assert_int_eq(r[0].cmd, PROTO_PING);
	ck_assert_int_eq(r[1].cmd, PROTO_SUBMIT);
	ck_assert_str_eq(r[1].queue, "default");
	ck_assert_str_eq(r[1].body, "hello");
	ck_assert_int_eq(r[1].flags, PROTO_F_WAIT);
	ck_assert_int_eq(r[2].cmd, PROTO_STATS);
	ck_assert_int_eq(r[3].cmd, PROTO_SUBMIT);
	ck_assert_int_eq(r[3].prio, -3);
	ck_assert_int_eq(r[3].flags, PROTO_F_PRIO | PROTO_F_NONBLOCK);
	ck_assert_int_eq(r[4].cmd, PROTO_WAIT);
	ck_assert_uint_eq(r[4].id, 17);
	ck_assert_int_eq(r[5].cmd, PROTO_INVALID);
	ck_assert_str_eq(r[5].err, "unknown command 'BOGUS'");
	ck_assert_int_eq(r[6].cmd, PROTO_INVALID);
	ck_assert_str_eq(r[6].code, "toolarge");
	ck_assert_uint_eq(r[6].skip, 41);
	ck_assert_int_eq(r[7].cmd, PROTO_STATUS);
	ck_assert_uint_eq(r[7].id, 18);
	ck_assert_int_eq(r[8].cmd, PROTO_INVALID);
	ck_assert_str_eq(r[8].err, "SUBMIT: bad queue name 'bad/name'");
	ck_assert_int_eq(r[9].cmd, PROTO_CANCEL);
	ck_assert_uint_eq(r[9].id, 19);
	ck_assert_int_eq(r[10].cmd, PROTO_SUBMIT);
	ck_assert_uint_eq(r[10].size, 4);
	ck_assert(memcmp(r[10].body, "\0\n\r\x01", 4) == 0);
	ck_assert_int_eq(r[11].cmd, PROTO_INVALID);
	ck_assert_str_eq(r[11].err, "empty request line");
	ck_assert_int_eq(r[12].cmd, PROTO_INVALID);
	ck_assert_str_eq(r[12].err, "SUBMIT: prio: bad number 'x'");
	ck_assert_int_eq(r[13].cmd, PROTO_SUBMIT);
	ck_assert_str_eq(r[13].body, "hi");
	ck_assert_int_eq(r[13].n, 21);
	ck_assert_int_eq(r[14].cmd, PROTO_QUIT);
}

/* Are two decodings the same? */
static void
check_same(const struct seen *a, size_t na, const struct seen *b, size_t nb)
{
	size_t	i;

	ck_assert_uint_eq(na, nb);
	for (i = 0; i < na; i++) {
		ck_assert_int_eq(a[i].cmd, b[i].cmd);
		ck_assert_int_eq(a[i].n, b[i].n);
		ck_assert_uint_eq(a[i].id, b[i].id);
		ck_assert_str_eq(a[i].queue, b[i].queue);
		ck_assert_int_eq(a[i].prio, b[i].prio);
		ck_assert_int_eq(a[i].flags, b[i].flags);
		ck_assert_uint_eq(a[i].delay, b[i].delay);
		ck_assert_uint_eq(a[i].timeout, b[i].timeout);
		ck_assert_uint_eq(a[i].size, b[i].size);
		ck_assert(memcmp(a[i].body, b[i].body, sizeof a[i].body) == 0);
		ck_assert_str_eq(a[i].code, b[i].code);
		ck_assert_str_eq(a[i].err, b[i].err);
		ck_assert_uint_eq(a[i].skip, b[i].skip);
	}
}

START_TEST(test_incremental)
{
	struct seen	ref[32], got[32];
	size_t		nref, ngot, len = sizeof stream - 1, i, cuts[sizeof stream];
	unsigned	seed, round;

	/* All at once. */
	nref = decode_stream(stream, len, NULL, 0, ref, 32);
	check_reference(ref, nref);

	/* Byte by byte. */
	for (i = 0; i < len; i++)
		cuts[i] = 1;
	ngot = decode_stream(stream, len, cuts, len, got, 32);
	check_same(ref, nref, got, ngot);

	/* Random splits, reproducibly. */
	seed = 12345;
	for (round = 0; round < 500; round++) {
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			cuts[i] = 1 + (seed >> 16) % 40;
		}
		ngot = decode_stream(stream, len, cuts, len, got, 32);
		check_same(ref, nref, got, ngot);
	}
}
END_TEST

START_TEST(test_parse_u64)
{
	uint64_t	v = 77;

	ck_assert_int_eq(proto_parse_u64("0", 1, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(proto_parse_u64("00012", 5, &v), 0);
	ck_assert_uint_eq(v, 12);
	ck_assert_int_eq(proto_parse_u64("9999999999999999999", 19, &v), 0);
	ck_assert_uint_eq(v, UINT64_C(9999999999999999999));
	ck_assert_int_eq(proto_parse_u64("123", 2, &v), 0);
	ck_assert_uint_eq(v, 12);

	v = 77;
	ck_assert_int_eq(proto_parse_u64("", 0, &v), -1);
	ck_assert_int_eq(proto_parse_u64("18446744073709551615", 20, &v), -1);
	ck_assert_int_eq(proto_parse_u64("10000000000000000000", 20, &v), -1);
	ck_assert_int_eq(proto_parse_u64("+1", 2, &v), -1);
	ck_assert_int_eq(proto_parse_u64("-1", 2, &v), -1);
	ck_assert_int_eq(proto_parse_u64(" 1", 2, &v), -1);
	ck_assert_int_eq(proto_parse_u64("1 ", 2, &v), -1);
	ck_assert_int_eq(proto_parse_u64("1a", 2, &v), -1);
	ck_assert_int_eq(proto_parse_u64("0x10", 4, &v), -1);
	ck_assert_int_eq(proto_parse_u64("1\0", 2, &v), -1);
	ck_assert_int_eq(proto_parse_u64("/", 1, &v), -1);
	ck_assert_int_eq(proto_parse_u64(":", 1, &v), -1);
	ck_assert_uint_eq(v, 77);
}
END_TEST

START_TEST(test_parse_i64)
{
	int64_t	v = 77;

	ck_assert_int_eq(proto_parse_i64("0", 1, &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(proto_parse_i64("-0", 2, &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(proto_parse_i64("-42", 3, &v), 0);
	ck_assert_int_eq(v, -42);
	ck_assert_int_eq(proto_parse_i64("9223372036854775807", 19, &v), 0);
	ck_assert_int_eq(v, INT64_MAX);
	ck_assert_int_eq(proto_parse_i64("-9223372036854775807", 20, &v), 0);
	ck_assert_int_eq(v, -INT64_MAX);
	ck_assert_int_eq(proto_parse_i64("-9223372036854775808", 20, &v), 0);
	ck_assert_int_eq(v, INT64_MIN);

	v = 77;
	ck_assert_int_eq(proto_parse_i64("9223372036854775808", 19, &v), -1);
	ck_assert_int_eq(proto_parse_i64("-9223372036854775809", 20, &v), -1);
	ck_assert_int_eq(proto_parse_i64("9999999999999999999", 19, &v), -1);
	ck_assert_int_eq(proto_parse_i64("-99999999999999999999", 21, &v), -1);
	ck_assert_int_eq(proto_parse_i64("", 0, &v), -1);
	ck_assert_int_eq(proto_parse_i64("-", 1, &v), -1);
	ck_assert_int_eq(proto_parse_i64("--1", 3, &v), -1);
	ck_assert_int_eq(proto_parse_i64("+1", 2, &v), -1);
	ck_assert_int_eq(proto_parse_i64("-+1", 3, &v), -1);
	ck_assert_int_eq(proto_parse_i64("1-", 2, &v), -1);
	ck_assert_int_eq(v, 77);
}
END_TEST

START_TEST(test_fmt_u64)
{
	static const uint64_t	 vals[] = { 0, 1, 9, 10, 99, 100, 12345, UINT32_MAX,
	    UINT64_C(9999999999999999999), UINT64_C(10000000000000000000), UINT64_MAX };
	char			 buf[21], ref[32];
	size_t			 i, n;
	uint64_t		 back;

	for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		memset(buf, 'z', sizeof buf);
		n = proto_fmt_u64(buf, vals[i]);
		snprintf(ref, sizeof ref, "%" PRIu64, vals[i]);
		ck_assert_uint_eq(n, strlen(ref));
		ck_assert_str_eq(buf, ref);
		if (n <= 19) {
			ck_assert_int_eq(proto_parse_u64(buf, n, &back), 0);
			ck_assert_uint_eq(back, vals[i]);
		}
	}
	ck_assert_uint_eq(proto_fmt_u64(buf, UINT64_MAX), 20);
}
END_TEST

START_TEST(test_valid_name)
{
	char	name[70];

	ck_assert(proto_valid_name("default", 7));
	ck_assert(proto_valid_name("A-Z_a.z-09", 10));
	ck_assert(proto_valid_name("x", 1));
	ck_assert(proto_valid_name("ab/cd", 2));
	memset(name, 'q', sizeof name);
	ck_assert(proto_valid_name(name, 63));
	ck_assert(!proto_valid_name(name, 64));
	ck_assert(!proto_valid_name("", 0));
	ck_assert(!proto_valid_name("a b", 3));
	ck_assert(!proto_valid_name("a/b", 3));
	ck_assert(!proto_valid_name("a=b", 3));
	ck_assert(!proto_valid_name("\xff", 1));
	ck_assert(!proto_valid_name("a\0b", 3));
}
END_TEST

START_TEST(test_reply_ok_err)
{
	struct proto_reply	rep;
	const char		*s;

	s = "OK pong\n";
	ck_assert_int_eq(proto_reply_decode(s, strlen(s), 100, &rep), 8);
	ck_assert_int_eq(rep.type, PROTO_REPLY_OK);
	ck_assert_uint_eq(rep.textlen, 4);
	ck_assert(memcmp(rep.text, "pong", 4) == 0);
	ck_assert_uint_eq(rep.id, 0);

	s = "OK 42\r\n";
	ck_assert_int_eq(proto_reply_decode(s, strlen(s), 100, &rep), 7);
	ck_assert_uint_eq(rep.id, 42);
	ck_assert_uint_eq(rep.textlen, 2);

	s = "OK\n";
	ck_assert_int_eq(proto_reply_decode(s, strlen(s), 100, &rep), 3);
	ck_assert_int_eq(rep.type, PROTO_REPLY_OK);
	ck_assert_uint_eq(rep.textlen, 0);

	s = "OK id=3 queue=q state=done\n";
	ck_assert_int_eq(proto_reply_decode(s, strlen(s), 100, &rep), (ssize_t)strlen(s));
	ck_assert_uint_eq(rep.id, 0);

	s = "ERR busy queue 'q' is full\n";
	ck_assert_int_eq(proto_reply_decode(s, strlen(s), 100, &rep), (ssize_t)strlen(s));
	ck_assert_int_eq(rep.type, PROTO_REPLY_ERR);
	ck_assert_uint_eq(rep.textlen, strlen("busy queue 'q' is full"));
	ck_assert(memcmp(rep.text, "busy queue 'q' is full", rep.textlen) == 0);

	ck_assert_int_eq(proto_reply_decode("ERR\n", 4, 100, &rep), -1);
	ck_assert_str_eq(rep.err, "ERR without a code");
	ck_assert_int_eq(proto_reply_decode("OK pon", 6, 100, &rep), 0);
	ck_assert_int_eq(proto_reply_decode("", 0, 100, &rep), 0);
}
END_TEST

START_TEST(test_reply_bodies)
{
	struct proto_reply	rep;
	const char		*s;
	size_t			i;

	s = "DATA 5\nhe\nlo\n";
	ck_assert_int_eq(proto_reply_decode(s, strlen(s), 100, &rep), (ssize_t)strlen(s));
	ck_assert_int_eq(rep.type, PROTO_REPLY_DATA);
	ck_assert_uint_eq(rep.size, 5);
	ck_assert(memcmp(rep.body, "he\nlo", 5) == 0);
	for (i = 0; i < strlen(s); i++)
		ck_assert_int_eq(proto_reply_decode(s, i, 100, &rep), 0);

	s = "RESULT 7 ok 3\nabc\n";
	ck_assert_int_eq(proto_reply_decode(s, strlen(s), 100, &rep), (ssize_t)strlen(s));
	ck_assert_int_eq(rep.type, PROTO_REPLY_RESULT);
	ck_assert_uint_eq(rep.id, 7);
	ck_assert_uint_eq(rep.statuslen, 2);
	ck_assert(memcmp(rep.status, "ok", 2) == 0);
	ck_assert(memcmp(rep.body, "abc", 3) == 0);

	s = "RESULT 8 weird 0 extra=1\n\n";
	ck_assert_int_eq(proto_reply_decode(s, strlen(s), 100, &rep), (ssize_t)strlen(s));
	ck_assert_uint_eq(rep.size, 0);

	ck_assert_int_eq(proto_reply_decode("RESULT 0 ok 0\n\n", 15, 100, &rep), -1);
	ck_assert_str_eq(rep.err, "RESULT: bad job id '0'");
	ck_assert_int_eq(proto_reply_decode("RESULT 1 ok\n", 12, 100, &rep), -1);
	ck_assert_int_eq(proto_reply_decode("RESULT 1 ok x\n", 14, 100, &rep), -1);
	ck_assert_str_eq(rep.err, "bad size 'x'");
	ck_assert_int_eq(proto_reply_decode("DATA\n", 5, 100, &rep), -1);
	ck_assert_int_eq(proto_reply_decode("DATA 1 2\n", 9, 100, &rep), -1);
	ck_assert_int_eq(proto_reply_decode("DATA 101\n", 9, 100, &rep), -1);
	ck_assert_str_eq(rep.err, "body of 101 bytes is too large");
	ck_assert_int_eq(proto_reply_decode("DATA 1\nab", 9, 100, &rep), -1);
	ck_assert_str_eq(rep.err, "body of 1 bytes not followed by newline");
}
END_TEST

START_TEST(test_reply_garbage)
{
	struct proto_reply	rep;
	char			buf[PROTO_MAX_REPLY_LINE + 2];

	ck_assert_int_eq(proto_reply_decode("HELLO world\n", 12, 100, &rep), -1);
	ck_assert_str_eq(rep.err, "unknown reply 'HELLO'");
	ck_assert_int_eq(proto_reply_decode("ok\n", 3, 100, &rep), -1);
	ck_assert_int_eq(proto_reply_decode("\n", 1, 100, &rep), -1);
	ck_assert_int_eq(proto_reply_decode("OK \x01\n", 5, 100, &rep), -1);
	ck_assert_int_eq(proto_reply_decode("\xff\x00", 2, 100, &rep), -1);
	memset(buf, 'O', sizeof buf);
	ck_assert_int_eq(proto_reply_decode(buf, PROTO_MAX_REPLY_LINE, 100, &rep), 0);
	ck_assert_int_eq(proto_reply_decode(buf, PROTO_MAX_REPLY_LINE + 1, 100, &rep), -1);
}
END_TEST

/* The suite. */
static Suite *
proto_suite(void)
{
	Suite	*s = suite_create("proto");
	TCase	*tc;

	tc = tcase_create("requests");
	tcase_add_test(tc, test_noargs);
	tcase_add_test(tc, test_id_commands);
	tcase_add_test(tc, test_pause_commands);
	tcase_add_test(tc, test_submit);
	tcase_add_test(tc, test_submit_binary_body);
	tcase_add_test(tc, test_submit_errors);
	tcase_add_test(tc, test_submit_key);
	tcase_add_test(tc, test_submit_framing);
	tcase_add_test(tc, test_toolarge);
	tcase_add_test(tc, test_line_limits);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_crlf);
	tcase_add_test(tc, test_quoting);
	tcase_add_test(tc, test_incremental);
	suite_add_tcase(s, tc);

	tc = tcase_create("numbers");
	tcase_add_test(tc, test_parse_u64);
	tcase_add_test(tc, test_parse_i64);
	tcase_add_test(tc, test_fmt_u64);
	tcase_add_test(tc, test_valid_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("replies");
	tcase_add_test(tc, test_reply_ok_err);
	tcase_add_test(tc, test_reply_bodies);
	tcase_add_test(tc, test_reply_garbage);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(proto_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
