/*
 * notify.c: the systemd notify protocol (sd_notify). Without $NOTIFY_SOCKET every
 * call here does nothing, so jobpoold runs the same on a terminal.
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>

#include <systemd/sd-daemon.h>

#include "jobpoold.h"
#include "log.h"
#include "notify.h"

/* The socket listens and every worker is up. */
void
notify_ready(void)
{
	sd_notify(0, "READY=1\nSTATUS=running");
}

void
notify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
}

/* A one-line STATUS= for systemctl status. */
void
notify_status(const char *fmt, ...)
{
	char	buf[256];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", buf);
}

void
notify_init(struct event_base *base)
{
}

void
notify_reloading(void)
{
}

void
notify_progress(void)
{
}

void
notify_free(void)
{
}
