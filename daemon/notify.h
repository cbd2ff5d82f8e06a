/*
 * notify.h: the systemd notify protocol (sd_notify) and the watchdog. Without
 * $NOTIFY_SOCKET nothing is sent and no timer runs (only the start-up line about failed
 * queues is logged), so jobpoold runs the same on a terminal.
 *
 * The master calls: notify_init() once its event base exists; notify_ready() once the
 * socket listens and every queue has its workers up or has failed (the first call ends
 * start-up and logs the failed queues, with or without systemd); notify_reloading()
 * and then notify_ready() around a reload (also a failed one); notify_stopping() when the
 * shutdown starts; notify_progress() whenever the drain makes progress (a job finished
 * or a worker exited), so a long drain extends systemd's stop timeout instead of being
 * killed. notify.c keeps STATUS= current on its own timer and pings the watchdog from
 * the event loop when $WATCHDOG_USEC asks for it.
 */

#ifndef NOTIFY_H
#define NOTIFY_H

struct event_base;

void	notify_init(struct event_base *base);
void	notify_ready(void);
void	notify_reloading(void);
void	notify_stopping(void);
void	notify_progress(void);
void	notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Free notify's timers (at exit). */
void	notify_free(void);

#endif /* NOTIFY_H */
