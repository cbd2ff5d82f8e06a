/*
 * checkloop.h: running the master's event loop (master_base) from a Check test until
 * something has happened, with a bound on every wait. Each suite defines WAIT_MS (the
 * longest any wait may take; never reached normally) before including this, and calls
 * checkloop_init() once master_base exists. Include after jobpoold.h.
 */

#ifndef CHECKLOOP_H
#define CHECKLOOP_H

#include <signal.h>

#include <event2/event.h>

/* A 20 ms tick so that each loop pass returns even when nothing else happens. */
static struct event	*tick;

static void
tick_cb(evutil_socket_t fd, short events, void *arg)
{
}

static inline void
checkloop_init(void)
{
	ck_assert_ptr_nonnull(tick = evtimer_new(master_base, tick_cb, NULL));
}

/* Run the event loop until cond holds, at most WAIT_MS. */
#define run_until(cond) do {						\
	uint64_t deadline_ = now_ms() + WAIT_MS;			\
	struct timeval tv_ = { 0, 20000 };				\
									\
	while (!(cond) && now_ms() < deadline_) {			\
		evtimer_add(tick, &tv_);				\
		event_base_loop(master_base, EVLOOP_ONCE);		\
	}								\
	ck_assert_msg((cond), "timed out waiting for: %s", #cond);	\
} while (0)

/* Run the event loop for ms (to see that nothing happens meanwhile). */
static inline void
run_for(unsigned ms)
{
	uint64_t	end = now_ms() + ms;
	struct timeval	tv = { 0, 20000 };

	while (now_ms() < end) {
		evtimer_add(tick, &tv);
		event_base_loop(master_base, EVLOOP_ONCE);
	}
}

/* The end of a test: every worker left is killed and reaped (none is respawned). */
static inline void
checkloop_reap_workers(void)
{
	master_stopping = 1;
	supervisor_signal_all(SIGKILL);
	run_until(!supervisor_alive());
}

#endif /* CHECKLOOP_H */
