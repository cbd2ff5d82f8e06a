/*
 * frame.h: the frames between the master and its workers, over pipes.
 *
 * Every frame is a 16-byte header in host byte order (both ends are on one host,
 * built from one source) followed by len bytes of payload:
 *
 *   uint32 len | uint8 type | uint8 status | uint16 flags | uint64 id
 *
 * Master to worker: FRAME_JOB (payload: the job's data), FRAME_BATCH (a queue with
 * batch_size: the payload is several whole FRAME_JOB frames, one after the other, which
 * the worker runs together in one call of its handler's batch entry point and answers
 * with one FRAME_RESULT each, in order; the header's id is the first job's),
 * FRAME_CANCEL (cancel job id, and only it: of several running, the others go on;
 * status FRAME_CANCEL_TIMEOUT when it ran past its timeout). Each CANCEL is followed,
 * once written, by SIGUSR1 so a busy worker looks at its pipe.
 * Worker to master: FRAME_READY (handler initialised; status 0, or nonzero with the
 * reason as payload; with status 0, an optional uint32 payload: how many jobs the
 * worker runs at once, its slots, for a handler that carries several (none: one)),
 * FRAME_RESULT (id: the job it answers; status: enum frame_status, payload: the
 * output or the error text; flags: for FRAME_FAILED, the least seconds to wait before
 * a retry, a server's Retry-After (0: none); a worker of one slot answers its jobs in
 * the order it was sent them, one of several slots in the order they end), FRAME_RETIRE (the worker exits after this frame without running
 * anything more: every job still in flight to it never started; payload: why),
 * FRAME_CHILD (job id runs in a process group of its own, an exec handler's program:
 * payload the group id as an int32; the job's RESULT ends it), so the master can kill
 * that group if the worker dies before it could; FRAME_HTTP (job id's response had
 * the HTTP status in flags; sent just before its RESULT by the http handler).
 */

#ifndef FRAME_H
#define FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR_LEN	16

enum frame_type {
	FRAME_JOB = 1,
	FRAME_CANCEL,
	FRAME_READY,
	FRAME_RESULT,
	FRAME_RETIRE,
	FRAME_CHILD,
	FRAME_BATCH,
	FRAME_HTTP
};
#define FRAME_TYPE_MAX	FRAME_HTTP

#define FRAME_CANCEL_USER	0
#define FRAME_CANCEL_TIMEOUT	1

enum frame_status {
	FRAME_OK = 0,		/* the handler succeeded */
	FRAME_FAILED,		/* the handler failed; may be retried */
	FRAME_PERMANENT,	/* the handler failed and says retrying is pointless */
	FRAME_CANCELLED,	/* the job was cancelled while it ran */
	FRAME_SKIPPED		/* cancelled before it started: it never ran */
};

struct frame_hdr {
	uint32_t	len;
	uint8_t		type;
	uint8_t		status;
	uint16_t	flags;
	uint64_t	id;
};

/* Write a header into dst, which has room for FRAME_HDR_LEN bytes. */
void	frame_put(void *dst, uint8_t type, uint8_t status, uint64_t id, uint32_t len);
/* Set the flags of the header at dst (written by frame_put). */
void	frame_set_flags(void *dst, uint16_t flags);
/*
 * Read the header at src if avail bytes hold one. 1: *h filled; 0: need more;
 * -1: not a valid frame (unknown type or len above max).
 */
int	frame_get(const void *src, size_t avail, uint32_t max, struct frame_hdr *h);

#endif /* FRAME_H */
