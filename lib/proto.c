/*
 * proto.c: the client wire protocol (PROTOCOL.md), both directions: requests as the
 * daemon decodes them, replies as libjobpool decodes them, and the rules for numbers
 * and queue names that both sides share.
 *
 * Everything works on the caller's buffer in one pass and allocates nothing. Text the
 * peer sent is only ever copied into an error message through proto_quote(), which
 * keeps it short and printable, so an error can always go out on one reply line.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

#define PROTO_QUOTE_MAX		40	/* bytes of peer text quoted in an error */
#define PROTO_MAX_TOKENS	16	/* words of a request line that are looked at */
#define PROTO_MAX_DIGITS	19

/* Byte classes inside a line. */
#define PROTO_C_WORD		0
#define PROTO_C_SPACE		1
#define PROTO_C_BAD		2

struct proto_token {
	const char	*s;
	size_t		 n;
};

static void	proto_err(struct proto_request *, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	proto_reply_err(struct proto_reply *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* Classify one byte of a line: part of a word, a separator, or not allowed at all. */
static inline int
proto_class(unsigned char c)
{
	if (c > ' ' && c < 0x7f)
		return (PROTO_C_WORD);
	if (c == ' ' || c == '\t')
		return (PROTO_C_SPACE);
	/* A '\r' inside a line is kept in its word, which then fails validation. */
	if (c == '\r')
		return (PROTO_C_WORD);
	return (PROTO_C_BAD);
}

/* Copy peer text into dst for an error message: printable, truncated, NUL-terminated. */
static const char *
proto_quote(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t	i, max;

	max = dstlen - 4;	/* room for "..." and the NUL */
	for (i = 0; i < n && i < max; i++) {
		if (s[i] < ' ' || s[i] > '~')
			dst[i] = '?';
		else
			dst[i] = s[i];
	}
	if (i < n) {
		memcpy(dst + i, "...", 3);
		i += 3;
	}
	dst[i] = '\0';
	return (dst);
}

/* Mark a request invalid with an error code and message. */
static void
proto_err(struct proto_request *req, const char *code, const char *fmt, ...)
{
	va_list	ap;

	req->cmd = PROTO_INVALID;
	req->err_code = code;
	va_start(ap, fmt);
	vsnprintf(req->err, sizeof req->err, fmt, ap);
	va_end(ap);
}

/* Record "<what> '<quoted token>'" as the request's error. */
static void
proto_err_tok(struct proto_request *req, const char *cmd, const char *what,
    const struct proto_token *t)
{
	char	q[PROTO_QUOTE_MAX + 4];

	proto_quote(q, sizeof q, t->s, t->n);
	if (cmd != NULL)
		proto_err(req, "proto", "%s: %s '%s'", cmd, what, q);
	else
		proto_err(req, "proto", "%s '%s'", what, q);
}

/* Parse an unsigned decimal of at most 19 digits. */
int
proto_parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t	v = 0;
	size_t		i;
	unsigned	d;

	/* 19 digits cannot overflow 64 bits, so the length check is the range check. */
	if (n == 0 || n > PROTO_MAX_DIGITS)
		return (-1);
	for (i = 0; i < n; i++) {
		d = (unsigned char)s[i] - '0';
		if (d > 9)
			return (-1);
		v = v * 10 + d;
	}
	*out = v;
	return (0);
}

/* Parse a signed decimal of at most 19 digits. */
int
proto_parse_i64(const char *s, size_t n, int64_t *out)
{
	uint64_t	u;
	int		neg = 0;

	if (n > 0 && s[0] == '-') {
		neg = 1;
		s++;
		n--;
	}
	if (proto_parse_u64(s, n, &u) != 0)
		return (-1);
	if (neg) {
		if (u > (uint64_t)INT64_MAX + 1)
			return (-1);
		if (u == (uint64_t)INT64_MAX + 1)
			*out = INT64_MIN;
		else
			*out = -(int64_t)u;
	} else {
		if (u > (uint64_t)INT64_MAX)
			return (-1);
		*out = (int64_t)u;
	}
	return (0);
}

/*
 * The bytes of words: PROTO_W_NAME of queue names (letters, digits, _ . -), PROTO_W_IDEM
 * of idempotency tokens (those and : @ / + = ~). A table: a queue name is checked on
 * every SUBMIT (bench W1).
 */
#define PROTO_W_NAME	1
#define PROTO_W_IDEM	2
#define PROTO_W_BOTH	(PROTO_W_NAME | PROTO_W_IDEM)
#define PROTO_W_RANGE(a, b)	[a ... b] = PROTO_W_BOTH
static const unsigned char proto_word_bytes[256] = {
	PROTO_W_RANGE('a', 'z'), PROTO_W_RANGE('A', 'Z'), PROTO_W_RANGE('0', '9'),
	['_'] = PROTO_W_BOTH, ['.'] = PROTO_W_BOTH, ['-'] = PROTO_W_BOTH,
	[':'] = PROTO_W_IDEM, ['@'] = PROTO_W_IDEM, ['/'] = PROTO_W_IDEM,
	['+'] = PROTO_W_IDEM, ['='] = PROTO_W_IDEM, ['~'] = PROTO_W_IDEM
};

/* Is s[0..n) 1 to max bytes of the kind of word (PROTO_W_*)? */
static inline int
proto_valid_word(const char *s, size_t n, size_t max, unsigned char kind)
{
	size_t	i;

	if (n == 0 || n > max)
		return (0);
	for (i = 0; i < n; i++) {
		if (!(proto_word_bytes[(unsigned char)s[i]] & kind))
			return (0);
	}
	return (1);
}

/* Is this a valid queue name? */
int
proto_valid_name(const char *name, size_t n)
{
	return (proto_valid_word(name, n, PROTO_MAX_NAME, PROTO_W_NAME));
}

/* An idempotency token: a word that every reader of it can take as it is. */
int
proto_valid_idem(const char *s, size_t n)
{
	return (proto_valid_word(s, n, PROTO_MAX_IDEM, PROTO_W_IDEM));
}

/* Format an unsigned number in decimal; returns its length. */
size_t
proto_fmt_u64(char *buf, uint64_t v)
{
	char	tmp[20];
	size_t	n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return (n);
}

/* Find the end of the line at buf: its length without "\r\n", and the span with it. */
static int
proto_line(const char *buf, size_t len, size_t maxline, size_t *linelen, size_t *span)
{
	const char	*nl;
	size_t		 i, n;

	if (len == 0)
		return (0);
	n = len < maxline + 1 ? len : maxline + 1;
	nl = memchr(buf, '\n', n);
	if (nl == NULL) {
		if (len > maxline)
			return (-1);
		/*
		 * Binary garbage is refused as soon as it is seen rather than after a
		 * whole line's worth of it; this rescans at most one partial line.
		 */
		for (i = 0; i < len; i++) {
			if (proto_class((unsigned char)buf[i]) == PROTO_C_BAD)
				return (-2);
		}
		return (0);
	}
	*span = (size_t)(nl - buf) + 1;
	*linelen = (size_t)(nl - buf);
	if (*linelen > 0 && buf[*linelen - 1] == '\r')
		(*linelen)--;
	return (1);
}

/*
 * Split a line into words, checking every byte. Returns the number of words (only the
 * first PROTO_MAX_TOKENS are stored) or -1 at a byte that cannot be on a line; *bad
 * is then that byte.
 */
static int
proto_split(const char *s, size_t n, struct proto_token *tok, unsigned char *bad)
{
	const char	*p = s, *end = s + n, *start;
	int		 ntok = 0, cls;

	while (p < end) {
		cls = proto_class((unsigned char)*p);
		if (cls == PROTO_C_SPACE) {
			p++;
			continue;
		}
		if (cls == PROTO_C_BAD) {
			*bad = (unsigned char)*p;
			return (-1);
		}
		start = p;
		while (p < end && proto_class((unsigned char)*p) == PROTO_C_WORD)
			p++;
		if (ntok < PROTO_MAX_TOKENS) {
			tok[ntok].s = start;
			tok[ntok].n = (size_t)(p - start);
		}
		ntok++;
	}
	return (ntok);
}

/* Does token t equal the string s? */
static inline int
proto_is(const struct proto_token *t, const char *s, size_t n)
{
	return (t->n == n && memcmp(t->s, s, n) == 0);
}

/* Decode a command that takes no arguments. */
static void
proto_decode_noargs(struct proto_request *req, enum proto_cmd cmd, const char *name,
    const struct proto_token *tok, int ntok)
{
	if (ntok > 1) {
		proto_err_tok(req, name, "unexpected argument", &tok[1]);
		return;
	}
	req->cmd = cmd;
}

/* Decode a command that takes one job id. */
static void
proto_decode_id(struct proto_request *req, enum proto_cmd cmd, const char *name,
    const struct proto_token *tok, int ntok)
{
	uint64_t	id;

	if (ntok < 2) {
		proto_err(req, "proto", "%s: missing job id", name);
		return;
	}
	if (proto_parse_u64(tok[1].s, tok[1].n, &id) != 0 || id == 0) {
		proto_err_tok(req, name, "bad job id", &tok[1]);
		return;
	}
	if (ntok > 2) {
		proto_err_tok(req, name, "unexpected argument", &tok[2]);
		return;
	}
	req->cmd = cmd;
	req->id = id;
}

/*
 * A job's key (key=NAME): 1 to PROTO_MAX_KEY bytes of printable ASCII (the tokenizer
 * let no space or control through; bytes above 0x7e are refused here). 0, or -1 with
 * req->err naming the field.
 */
static int
proto_check_key(struct proto_request *req, const struct proto_token *val)
{
	size_t	i;

	if (val->n == 0) {
		proto_err(req, "proto", "SUBMIT: key: empty (key=NAME, 1 to %d "
		    "printable bytes)", PROTO_MAX_KEY);
		return (-1);
	}
	if (val->n > PROTO_MAX_KEY) {
		proto_err(req, "proto", "SUBMIT: key: %zu bytes, more than %d", val->n,
		    PROTO_MAX_KEY);
		return (-1);
	}
	for (i = 0; i < val->n; i++) {
		if ((unsigned char)val->s[i] <= 0x20 || (unsigned char)val->s[i] >= 0x7f) {
			proto_err(req, "proto", "SUBMIT: key: byte 0x%02x at %zu is not "
			    "printable ASCII", (unsigned char)val->s[i], i);
			return (-1);
		}
	}
	return (0);
}

/* Parse option t of SUBMIT ("wait", "prio=-3", ...) into req; 0 ok, -1 with req->err set. */
static int
proto_submit_option(struct proto_request *req, const struct proto_token *t)
{
	const char		*eq;
	struct proto_token	 key, val;
	uint64_t		 u;
	int64_t			 i;
	int			 flag = 0;

	if (proto_is(t, "wait", 4))
		flag = PROTO_F_WAIT;
	else if (proto_is(t, "nonblock", 8))
		flag = PROTO_F_NONBLOCK;
	else if ((eq = memchr(t->s, '=', t->n)) != NULL) {
		key.s = t->s;
		key.n = (size_t)(eq - t->s);
		val.s = eq + 1;
		val.n = t->n - key.n - 1;
		if (proto_is(&key, "prio", 4)) {
			flag = PROTO_F_PRIO;
			if (proto_parse_i64(val.s, val.n, &i) != 0) {
				proto_err_tok(req, "SUBMIT", "prio: bad number", &val);
				return (-1);
			}
			req->prio = i;
		} else if (proto_is(&key, "delay", 5) || proto_is(&key, "timeout", 7)) {
			flag = key.n == 5 ? PROTO_F_DELAY : PROTO_F_TIMEOUT;
			if (proto_parse_u64(val.s, val.n, &u) != 0) {
				proto_err_tok(req, "SUBMIT", flag == PROTO_F_DELAY ?
				    "delay: bad number" : "timeout: bad number", &val);
				return (-1);
			}
			if (u > UINT32_MAX) {
				proto_err_tok(req, "SUBMIT", flag == PROTO_F_DELAY ?
				    "delay: out of range" : "timeout: out of range", &val);
				return (-1);
			}
			if (flag == PROTO_F_DELAY)
				req->delay_ms = (uint32_t)u;
			else
				req->timeout_ms = (uint32_t)u;
		} else if (proto_is(&key, "key", 3)) {
			flag = PROTO_F_KEY;
			if (proto_check_key(req, &val) != 0)
				return (-1);
			req->key = val.s;
			req->keylen = val.n;
		} else if (proto_is(&key, "idem", 4)) {
			flag = PROTO_F_IDEM;
			if (val.n > PROTO_MAX_IDEM) {
				proto_err(req, "proto", "SUBMIT: idem: a token of %zu bytes "
				    "is too long (at most %d)", val.n, PROTO_MAX_IDEM);
				return (-1);
			}
			if (!proto_valid_idem(val.s, val.n)) {
				proto_err_tok(req, "SUBMIT", "idem: bad token (1 to 64 of "
				    PROTO_IDEM_CHARS ")", &val);
				return (-1);
			}
			req->idem = val.s;
			req->idemlen = val.n;
		}
	}
	if (flag == 0) {
		proto_err_tok(req, "SUBMIT", "unknown option", t);
		return (-1);
	}
	if (req->flags & flag) {
		proto_err_tok(req, "SUBMIT", "duplicate option", t);
		return (-1);
	}
	req->flags |= flag;
	return (0);
}

/* Copy an optional queue name argument into req->queue; -1 (req->err set) if bad. */
static int
proto_decode_queue_arg(struct proto_request *req, const char *name,
    const struct proto_token *t)
{
	if (!proto_valid_name(t->s, t->n)) {
		proto_err_tok(req, name, "bad queue name", t);
		return (-1);
	}
	memcpy(req->queue, t->s, t->n);
	req->queue[t->n] = '\0';
	return (0);
}

/* DEAD [queue] */
static void
proto_decode_dead(struct proto_request *req, const struct proto_token *tok, int ntok)
{
	if (ntok > 2) {
		proto_err_tok(req, "DEAD", "unexpected argument", &tok[2]);
		return;
	}
	if (ntok == 2 && proto_decode_queue_arg(req, "DEAD", &tok[1]) != 0)
		return;
	req->cmd = PROTO_DEAD;
}

/* PAUSE <queue> | RESUME <queue>: the queue is required. */
static void
proto_decode_pause(struct proto_request *req, enum proto_cmd cmd, const char *name,
    const struct proto_token *tok, int ntok)
{
	if (ntok < 2) {
		proto_err(req, "proto", "%s: missing queue name", name);
		return;
	}
	if (ntok > 2) {
		proto_err_tok(req, name, "unexpected argument", &tok[2]);
		return;
	}
	if (proto_decode_queue_arg(req, name, &tok[1]) != 0)
		return;
	req->cmd = cmd;
}

/* RETRY <id> | RETRY all [queue] */
static void
proto_decode_retry(struct proto_request *req, const struct proto_token *tok, int ntok)
{
	if (ntok >= 2 && proto_is(&tok[1], "all", 3)) {
		if (ntok > 3) {
			proto_err_tok(req, "RETRY", "unexpected argument", &tok[3]);
			return;
		}
		if (ntok == 3 && proto_decode_queue_arg(req, "RETRY", &tok[2]) != 0)
			return;
		req->flags |= PROTO_F_ALL;
		req->cmd = PROTO_RETRY;
		return;
	}
	proto_decode_id(req, PROTO_RETRY, "RETRY", tok, ntok);
}

/* The longest type= glob EVENTS takes. */
#define PROTO_MAX_GLOB		PROTO_MAX_NAME

/* One option of EVENTS into req: 0, or -1 with req->err set. */
static int
proto_events_option(struct proto_request *req, const struct proto_token *t)
{
	const char		*eq;
	struct proto_token	 key, val;
	int			 flag;

	if ((eq = memchr(t->s, '=', t->n)) == NULL) {
		proto_err_tok(req, "EVENTS", "unknown option", t);
		return (-1);
	}
	key.s = t->s;
	key.n = (size_t)(eq - t->s);
	val.s = eq + 1;
	val.n = t->n - key.n - 1;
	if (proto_is(&key, "since", 5)) {
		if (proto_is(&val, "now", 3))
			flag = PROTO_F_SINCE_NOW;
		else if (proto_is(&val, "all", 3))
			flag = PROTO_F_SINCE_ALL;
		else if (proto_parse_u64(val.s, val.n, &req->id) == 0)
			flag = PROTO_F_SINCE;
		else {
			proto_err_tok(req, "EVENTS", "since: not a sequence number, "
			    "'now' or 'all'", &val);
			return (-1);
		}
		if (req->flags & (PROTO_F_SINCE | PROTO_F_SINCE_ALL | PROTO_F_SINCE_NOW))
			flag = -1;
	} else if (proto_is(&key, "epoch", 5)) {
		if (proto_parse_u64(val.s, val.n, &req->epoch) != 0) {
			proto_err_tok(req, "EVENTS", "epoch: bad number", &val);
			return (-1);
		}
		flag = req->flags & PROTO_F_EPOCH ? -1 : PROTO_F_EPOCH;
	} else if (proto_is(&key, "queue", 5)) {
		if (proto_decode_queue_arg(req, "EVENTS", &val) != 0)
			return (-1);
		flag = req->flags & PROTO_F_QUEUE ? -1 : PROTO_F_QUEUE;
	} else if (proto_is(&key, "type", 4)) {
		if (val.n == 0 || val.n > PROTO_MAX_GLOB) {
			proto_err_tok(req, "EVENTS", "type: a pattern of 1 to 63 "
			    "characters expected", &val);
			return (-1);
		}
		flag = req->glob != NULL ? -1 : 0;
		req->glob = val.s;
		req->globlen = val.n;
	} else if (proto_is(&key, "until", 5)) {
		if (!proto_is(&val, "now", 3)) {
			proto_err_tok(req, "EVENTS", "until: only 'now' is known", &val);
			return (-1);
		}
		flag = req->flags & PROTO_F_UNTIL ? -1 : PROTO_F_UNTIL;
	} else {
		proto_err_tok(req, "EVENTS", "unknown option", t);
		return (-1);
	}
	if (flag == -1) {
		proto_err_tok(req, "EVENTS", "duplicate option", t);
		return (-1);
	}
	req->flags |= flag;
	return (0);
}

/* EVENTS [since=SEQ|now|all] [epoch=E] [queue=Q] [type=GLOB] [until=now] */
static void
proto_decode_events(struct proto_request *req, const struct proto_token *tok, int ntok)
{
	int	i;

	if (ntok > PROTO_MAX_TOKENS) {
		proto_err(req, "proto", "EVENTS: too many options");
		return;
	}
	for (i = 1; i < ntok; i++) {
		if (proto_events_option(req, &tok[i]) != 0)
			return;
	}
	if ((req->flags & PROTO_F_EPOCH) && !(req->flags & PROTO_F_SINCE)) {
		proto_err(req, "proto", "EVENTS: epoch= goes with since=SEQ");
		return;
	}
	req->cmd = PROTO_EVENTS;
}

/* Decode SUBMIT, whose body follows the line: returns as proto_request_decode. */
static ssize_t
proto_decode_submit(const char *buf, size_t len, size_t span, uint32_t max_body,
    struct proto_request *req, const struct proto_token *tok, int ntok)
{
	uint64_t	size;
	size_t		need;
	int		i, failed = 0;

	if (ntok < 3) {
		/* No size, so no body: the line alone is the request. */
		if (ntok < 2)
			proto_err(req, "proto", "SUBMIT: missing queue name");
		else if (!proto_valid_name(tok[1].s, tok[1].n))
			proto_err_tok(req, "SUBMIT", "bad queue name", &tok[1]);
		else
			proto_err(req, "proto", "SUBMIT: missing size");
		return ((ssize_t)span);
	}
	/* Without a size the body cannot be found, so framing is lost. */
	if (proto_parse_u64(tok[2].s, tok[2].n, &size) != 0) {
		proto_err_tok(req, "SUBMIT", "bad size", &tok[2]);
		return (-1);
	}

	if (!proto_valid_name(tok[1].s, tok[1].n)) {
		proto_err_tok(req, "SUBMIT", "bad queue name", &tok[1]);
		failed = 1;
	} else {
		memcpy(req->queue, tok[1].s, tok[1].n);
		req->queue[tok[1].n] = '\0';
	}
	if (ntok > PROTO_MAX_TOKENS) {
		if (!failed)
			proto_err(req, "proto", "SUBMIT: too many options");
		failed = 1;
	}
	for (i = 3; !failed && i < ntok; i++) {
		if (proto_submit_option(req, &tok[i]) != 0)
			failed = 1;
	}

	if (size > max_body) {
		proto_err(req, "toolarge", "SUBMIT: size %llu exceeds the limit of %lu "
		    "bytes", (unsigned long long)size, (unsigned long)max_body);
		req->skip = size + 1;
		return ((ssize_t)span);
	}
	need = span + (size_t)size + 1;
	if (len < need)
		return (0);
	/* "\r\n" ends a body as it ends a line: socat and telnet send it. */
	if (buf[need - 1] == '\r') {
		if (len < ++need)
			return (0);
	}
	if (buf[need - 1] != '\n') {
		proto_err(req, "proto", "SUBMIT: body of %llu bytes not followed by "
		    "newline", (unsigned long long)size);
		return (-1);
	}
	if (failed)
		return ((ssize_t)need);
	req->cmd = PROTO_SUBMIT;
	req->body = buf + span;
	req->size = (uint32_t)size;
	return ((ssize_t)need);
}

/* Decode the request at the start of buf. */
ssize_t
proto_request_decode(const char *buf, size_t len, uint32_t max_body,
    struct proto_request *req)
{
	struct proto_token	 tok[PROTO_MAX_TOKENS];
	size_t			 linelen = 0, span = 0;
	int			 ntok, rc;
	unsigned char		 bad;

	req->cmd = PROTO_INVALID;
	req->queue[0] = '\0';
	req->id = 0;
	req->epoch = 0;
	req->glob = NULL;
	req->globlen = 0;
	req->key = NULL;
	req->keylen = 0;
	req->idem = NULL;
	req->idemlen = 0;
	req->prio = 0;
	req->delay_ms = 0;
	req->timeout_ms = 0;
	req->flags = 0;
	req->body = NULL;
	req->size = 0;
	req->err_code = NULL;
	req->err[0] = '\0';
	req->skip = 0;

	rc = proto_line(buf, len, PROTO_MAX_LINE, &linelen, &span);
	if (rc == 0)
		return (0);
	if (rc == -1) {
		proto_err(req, "proto", "line longer than %d bytes", PROTO_MAX_LINE);
		return (-1);
	}
	if (rc == -2) {
		proto_err(req, "proto", "binary data where a request line should be");
		return (-1);
	}

	ntok = proto_split(buf, linelen, tok, &bad);
	if (ntok < 0) {
		proto_err(req, "proto", "%s byte 0x%02x in request line", bad >= 0x80 ?
		    "non-ASCII" : "control", bad);
		return (-1);
	}
	if (ntok == 0) {
		proto_err(req, "proto", "empty request line");
		return ((ssize_t)span);
	}

	switch (tok[0].n) {
	case 4:
		if (memcmp(tok[0].s, "PING", 4) == 0)
			proto_decode_noargs(req, PROTO_PING, "PING", tok, ntok);
		else if (memcmp(tok[0].s, "WAIT", 4) == 0)
			proto_decode_id(req, PROTO_WAIT, "WAIT", tok, ntok);
		else if (memcmp(tok[0].s, "QUIT", 4) == 0)
			proto_decode_noargs(req, PROTO_QUIT, "QUIT", tok, ntok);
		else if (memcmp(tok[0].s, "DEAD", 4) == 0)
			proto_decode_dead(req, tok, ntok);
		else
			goto unknown;
		break;
	case 5:
		if (memcmp(tok[0].s, "STATS", 5) == 0)
			proto_decode_noargs(req, PROTO_STATS, "STATS", tok, ntok);
		else if (memcmp(tok[0].s, "RETRY", 5) == 0)
			proto_decode_retry(req, tok, ntok);
		else if (memcmp(tok[0].s, "PAUSE", 5) == 0)
			proto_decode_pause(req, PROTO_PAUSE, "PAUSE", tok, ntok);
		else
			goto unknown;
		break;
	case 6:
		if (memcmp(tok[0].s, "SUBMIT", 6) == 0)
			return (proto_decode_submit(buf, len, span, max_body, req, tok,
			    ntok));
		if (memcmp(tok[0].s, "STATUS", 6) == 0)
			proto_decode_id(req, PROTO_STATUS, "STATUS", tok, ntok);
		else if (memcmp(tok[0].s, "CANCEL", 6) == 0)
			proto_decode_id(req, PROTO_CANCEL, "CANCEL", tok, ntok);
		else if (memcmp(tok[0].s, "RELOAD", 6) == 0)
			proto_decode_noargs(req, PROTO_RELOAD, "RELOAD", tok, ntok);
		else if (memcmp(tok[0].s, "EVENTS", 6) == 0)
			proto_decode_events(req, tok, ntok);
		else if (memcmp(tok[0].s, "RESUME", 6) == 0)
			proto_decode_pause(req, PROTO_RESUME, "RESUME", tok, ntok);
		else
			goto unknown;
		break;
	case 7:
		if (memcmp(tok[0].s, "HISTORY", 7) != 0)
			goto unknown;
		proto_decode_id(req, PROTO_HISTORY, "HISTORY", tok, ntok);
		break;
	default:
		goto unknown;
	}
	return ((ssize_t)span);

unknown:
	proto_err_tok(req, NULL, "unknown command", &tok[0]);
	return ((ssize_t)span);
}

/* Say why a reply cannot be parsed. */
static void
proto_reply_err(struct proto_reply *rep, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(rep->err, sizeof rep->err, fmt, ap);
	va_end(ap);
}

/* Decode the body that follows a DATA or RESULT line of span bytes. */
static ssize_t
proto_reply_body(const char *buf, size_t len, size_t span, uint64_t max_body,
    const struct proto_token *t, struct proto_reply *rep)
{
	char		q[PROTO_QUOTE_MAX + 4];
	uint64_t	size;
	size_t		need;

	if (proto_parse_u64(t->s, t->n, &size) != 0) {
		proto_reply_err(rep, "bad size '%s'", proto_quote(q, sizeof q, t->s,
		    t->n));
		return (-1);
	}
	if (size > max_body || size > SIZE_MAX - span - 1) {
		proto_reply_err(rep, "body of %llu bytes is too large",
		    (unsigned long long)size);
		return (-1);
	}
	need = span + (size_t)size + 1;
	if (len < need)
		return (0);
	if (buf[need - 1] != '\n') {
		proto_reply_err(rep, "body of %llu bytes not followed by newline",
		    (unsigned long long)size);
		return (-1);
	}
	rep->body = buf + span;
	rep->size = (size_t)size;
	return ((ssize_t)need);
}

/* Decode the reply or RESULT at the start of buf. */
ssize_t
proto_reply_decode(const char *buf, size_t len, uint64_t max_body,
    struct proto_reply *rep)
{
	struct proto_token	 tok[PROTO_MAX_TOKENS];
	char			 q[PROTO_QUOTE_MAX + 4];
	size_t			 linelen = 0, span = 0;
	const char		*p, *end;
	int			 ntok, rc;
	unsigned char		 bad;

	memset(rep, 0, offsetof(struct proto_reply, err));
	rep->err[0] = '\0';

	rc = proto_line(buf, len, PROTO_MAX_REPLY_LINE, &linelen, &span);
	if (rc == 0)
		return (0);
	if (rc == -1) {
		proto_reply_err(rep, "reply line longer than %d bytes",
		    PROTO_MAX_REPLY_LINE);
		return (-1);
	}
	if (rc == -2) {
		proto_reply_err(rep, "binary data where a reply line should be");
		return (-1);
	}
	ntok = proto_split(buf, linelen, tok, &bad);
	if (ntok < 0) {
		proto_reply_err(rep, "control byte 0x%02x in reply line", bad);
		return (-1);
	}
	if (ntok == 0) {
		proto_reply_err(rep, "empty reply line");
		return (-1);
	}

	if (proto_is(&tok[0], "OK", 2) || proto_is(&tok[0], "ERR", 3)) {
		rep->type = tok[0].n == 2 ? PROTO_REPLY_OK : PROTO_REPLY_ERR;
		end = buf + linelen;
		p = tok[0].s + tok[0].n;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		rep->text = p;
		rep->textlen = (size_t)(end - p);
		if (rep->type == PROTO_REPLY_ERR && ntok < 2) {
			proto_reply_err(rep, "ERR without a code");
			return (-1);
		}
		if (rep->type == PROTO_REPLY_OK && ntok >= 2 &&
		    proto_parse_u64(tok[1].s, tok[1].n, &rep->id) != 0)
			rep->id = 0;
		return ((ssize_t)span);
	}
	if (proto_is(&tok[0], "DATA", 4)) {
		rep->type = PROTO_REPLY_DATA;
		if (ntok != 2) {
			proto_reply_err(rep, "DATA needs one size");
			return (-1);
		}
		return (proto_reply_body(buf, len, span, max_body, &tok[1], rep));
	}
	if (proto_is(&tok[0], "RESULT", 6)) {
		rep->type = PROTO_REPLY_RESULT;
		/* Words after the size are allowed, for later versions. */
		if (ntok < 4) {
			proto_reply_err(rep, "RESULT needs an id, a status and a size");
			return (-1);
		}
		if (proto_parse_u64(tok[1].s, tok[1].n, &rep->id) != 0 ||
		    rep->id == 0) {
			proto_reply_err(rep, "RESULT: bad job id '%s'",
			    proto_quote(q, sizeof q, tok[1].s, tok[1].n));
			return (-1);
		}
		rep->status = tok[2].s;
		rep->statuslen = tok[2].n;
		return (proto_reply_body(buf, len, span, max_body, &tok[3], rep));
	}
	proto_reply_err(rep, "unknown reply '%s'", proto_quote(q, sizeof q, tok[0].s,
	    tok[0].n));
	return (-1);
}
