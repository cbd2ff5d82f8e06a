/*
 * proto.h: the client wire protocol (PROTOCOL.md), shared by jobpoold and libjobpool.
 *
 * Decoders work on a contiguous byte buffer that the caller owns; what they return
 * points into that buffer. They never allocate, log or exit.
 */

#ifndef PROTO_H
#define PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_MAX_LINE		1024	/* a command line, without its newline */
#define PROTO_MAX_NAME		63	/* a queue name */
#define PROTO_MAX_KEY		255	/* a job's key (SUBMIT key=) */
#define PROTO_MAX_IDEM		64	/* an idempotency token (SUBMIT idem=) */

enum proto_cmd {
	PROTO_INVALID = 0,	/* a whole request that is malformed: see err_code/err */
	PROTO_PING,
	PROTO_SUBMIT,
	PROTO_WAIT,
	PROTO_STATUS,
	PROTO_CANCEL,
	PROTO_STATS,
	PROTO_QUIT,
	PROTO_DEAD,		/* DEAD [queue] */
	PROTO_RETRY,		/* RETRY <id> | RETRY all [queue] */
	PROTO_HISTORY,		/* HISTORY <id> */
	PROTO_RELOAD,		/* RELOAD */
	PROTO_EVENTS,		/* EVENTS [since=SEQ|now|all] [epoch=E] [queue=Q] [type=GLOB] [until=now] */
	PROTO_PAUSE,		/* PAUSE <queue> */
	PROTO_RESUME		/* RESUME <queue> */
};

#define PROTO_F_WAIT		0x01
#define PROTO_F_NONBLOCK	0x02
#define PROTO_F_PRIO		0x04	/* prio= was given */
#define PROTO_F_DELAY		0x08	/* delay= was given */
#define PROTO_F_TIMEOUT		0x10	/* timeout= was given */
#define PROTO_F_ALL		0x20	/* RETRY all */
#define PROTO_F_SINCE		0x40	/* EVENTS since=SEQ (in id) */
#define PROTO_F_SINCE_ALL	0x80	/* EVENTS since=all */
#define PROTO_F_SINCE_NOW	0x100	/* EVENTS since=now (the default) */
#define PROTO_F_EPOCH		0x200	/* EVENTS epoch=E (in epoch) */
#define PROTO_F_UNTIL		0x400	/* EVENTS until=now */
#define PROTO_F_QUEUE		0x800	/* EVENTS queue=Q (in queue) */
#define PROTO_F_KEY		0x8000	/* SUBMIT key=NAME (in key, keylen) */
#define PROTO_F_IDEM		0x4000	/* SUBMIT idem=TOKEN (in idem) */

struct proto_request {
	enum proto_cmd	 cmd;
	char		 queue[PROTO_MAX_NAME + 1];	/* SUBMIT, PAUSE, RESUME; DEAD, RETRY all: "" for every queue */
	uint64_t	 id;				/* WAIT, STATUS, CANCEL, RETRY, HISTORY; EVENTS since */
	uint64_t	 epoch;				/* EVENTS epoch= */
	const char	*glob;				/* EVENTS type=: into the caller's buffer, or NULL */
	size_t		 globlen;
	const char	*key;				/* SUBMIT key=: into the caller's buffer */
	size_t		 keylen;
	const char	*idem;				/* SUBMIT idem=: into the caller's buffer, or NULL */
	size_t		 idemlen;
	int64_t		 prio;
	uint32_t	 delay_ms;
	uint32_t	 timeout_ms;
	int		 flags;
	const char	*body;				/* SUBMIT: into the caller's buffer */
	uint32_t	 size;				/* SUBMIT: body length */

	/* PROTO_INVALID only: */
	const char	*err_code;	/* "proto" or "toolarge" */
	char		 err[256];	/* names the offending field */
	uint64_t	 skip;		/* bytes of body still to discard after the returned length */
};

/*
 * Decode the request at the start of buf[0..len).
 * Returns:
 *   > 0  the number of bytes the request spans (line, body and the body's newline);
 *        req is filled. A malformed but well-framed request has cmd == PROTO_INVALID and
 *        err_code/err set: reply ERR and carry on. A SUBMIT whose body exceeds max_body
 *        returns the line's length only, with err_code "toolarge" and req->skip set to
 *        the number of bytes (body and newline) the caller must read and discard; if
 *        the last of them is a '\r', a '\n' right after it ends the body too (the
 *        daemon drops it: "\r\n" may end a body as it ends a line).
 *    0   more bytes are needed;
 *   -1   framing is lost (a line too long, a body not followed by "\n" or "\r\n"): req->err
 *        says why; reply ERR proto and close.
 */
ssize_t		 proto_request_decode(const char *buf, size_t len, uint32_t max_body,
		     struct proto_request *req);

/* A message from the daemon, as decoded by proto_reply_decode(). */
enum proto_reply_type {
	PROTO_REPLY_OK = 1,	/* OK [word ...] */
	PROTO_REPLY_ERR,	/* ERR <code> <message> */
	PROTO_REPLY_DATA,	/* DATA <size> + body */
	PROTO_REPLY_RESULT	/* RESULT <id> <status> <size> + body */
};

struct proto_reply {
	enum proto_reply_type	 type;
	uint64_t		 id;		/* RESULT: the job; OK: the first word if a number, else 0 */
	const char		*text;		/* OK/ERR: the rest of the line after the first word */
	size_t			 textlen;
	const char		*status;	/* RESULT: the status word */
	size_t			 statuslen;
	const char		*body;		/* DATA/RESULT: into the caller's buffer */
	size_t			 size;
	char			 err[256];	/* after -1: why the reply cannot be parsed */
};

/* Reply lines are allowed to be longer than request lines, for future STATUS keys. */
#define PROTO_MAX_REPLY_LINE	4096

/*
 * Decode the reply or RESULT at the start of buf[0..len). Returns the number of bytes
 * the message spans (line, body and the body's newline) and fills rep; 0 if more bytes
 * are needed; -1 if the bytes are not a reply (rep->err says why). Bodies larger than
 * max_body are refused with -1. The byte just after text, status and body (a separator
 * or newline inside the span) may be overwritten by the caller to NUL-terminate them.
 */
ssize_t		 proto_reply_decode(const char *buf, size_t len, uint64_t max_body,
		     struct proto_reply *rep);

/* Parse an unsigned decimal of at most 19 digits from [s, s+n). 0 ok, -1 bad. */
int		 proto_parse_u64(const char *s, size_t n, uint64_t *out);
/* Parse a signed decimal (leading '-' allowed) of at most 19 digits. 0 ok, -1 bad. */
int		 proto_parse_i64(const char *s, size_t n, int64_t *out);
/* Is name a valid queue name: 1 to 63 of [A-Za-z0-9_.-]? */
int		 proto_valid_name(const char *name, size_t n);
/*
 * Is s[0..n) a valid idempotency token: 1 to PROTO_MAX_IDEM bytes of [A-Za-z0-9] and
 * . _ - : @ / + = ~ (words that need no quoting in a request line, an EVENT line, JSON
 * or a shell)?
 */
int		 proto_valid_idem(const char *s, size_t n);
#define PROTO_IDEM_CHARS	"A-Z a-z 0-9 . _ - : @ / + = ~"
/* Format v in decimal into buf (at least 21 bytes); returns the length. */
size_t		 proto_fmt_u64(char *buf, uint64_t v);

#endif /* PROTO_H */
