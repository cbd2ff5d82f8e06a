/*
 * frame.c: encode and decode the master-worker frame header (frame.h).
 */

#include <string.h>

#include "frame.h"

/* Write a frame header into dst. */
void
frame_put(void *dst, uint8_t type, uint8_t status, uint64_t id, uint32_t len)
{
	struct frame_hdr	h;

	h.len = len;
	h.type = type;
	h.status = status;
	h.flags = 0;
	h.id = id;
	memcpy(dst, &h, FRAME_HDR_LEN);
}

/* Set the flags of the header at dst (written by frame_put). */
void
frame_set_flags(void *dst, uint16_t flags)
{
	memcpy((char *)dst + offsetof(struct frame_hdr, flags), &flags, sizeof flags);
}

/* Decode a frame header if one is there. */
int
frame_get(const void *src, size_t avail, uint32_t max, struct frame_hdr *h)
{
	if (avail < FRAME_HDR_LEN)
		return (0);
	memcpy(h, src, FRAME_HDR_LEN);
	if (h->type < FRAME_JOB || h->type > FRAME_TYPE_MAX || h->len > max)
		return (-1);
	return (1);
}
