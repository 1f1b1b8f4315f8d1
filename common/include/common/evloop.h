/* evloop.h - the thin adapter over libevent every daemon starts from: the
 * loop, periodic and one-shot timers with plain void (*)(void *) callbacks,
 * SIGTERM/SIGINT, and the start-up the job daemons (worker, webhook,
 * feeengine) share. Services call these rather than event_new/event_base_*;
 * the few places that still need libevent itself say why.
 *
 * Timers and signal watchers belong to the loop's thread: create, arm and
 * free them there. timer_fire is the exception: with evthread_use_pthreads
 * (the api) it may be called from another thread to wake the loop. */
#ifndef COMMON_EVLOOP_H
#define COMMON_EVLOOP_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct timer;
struct sigstop;

/* ---- loops ---- */

/* A new loop. changelist: fold each iteration's epoll changes into one
 * epoll_ctl per descriptor (evhttp and libcurl toggle interest often).
 * NULL on failure. */
struct event_base *evloop_new(bool changelist);

/* Runs until evloop_stop or nothing is left to wait for. */
void evloop_run(struct event_base *b);

/* Runs what is ready now, without waiting (teardown steps). */
void evloop_run_once(struct event_base *b);

/* Ends evloop_run after the current callback (loop thread). */
void evloop_stop(struct event_base *b);

/* Frees the loop (after everything on it was freed). Accepts NULL. */
void evloop_free(struct event_base *b);

/* At process exit, after every loop was freed: libevent's global state. */
void evloop_shutdown(void);

/* ---- timers ---- */

typedef void (*timer_cb)(void *arg);

/* A timer on b calling cb(arg); not armed. NULL on failure. */
struct timer *timer_new(struct event_base *b, timer_cb cb, void *arg);

/* Arms t to fire every ms (re-arming resets the period). */
void timer_every(struct timer *t, long ms);

/* Arms t to fire once, ms from now (re-arming moves it). */
void timer_once(struct timer *t, long ms);

/* Runs the callback on the loop's next iteration, armed or not; a periodic
 * timer keeps its period, a pending one-shot is used up by it. */
void timer_fire(struct timer *t);

/* Calls cb(arg) once, ms from now (0: on the next iteration), with no timer
 * to free: for answers that must not come from inside the call that asked.
 * 0, or -1 if it could not be scheduled (cb will not run). */
int evloop_once(struct event_base *b, long ms, timer_cb cb, void *arg)
	__attribute__((warn_unused_result));

/* Disarms t. */
void timer_stop(struct timer *t);

/* Frees t (disarmed). Accepts NULL. */
void timer_free(struct timer *t);

/* ---- SIGTERM / SIGINT ---- */

/* Calls cb(arg, signal_name) on the loop when SIGTERM or SIGINT arrives
 * ("SIGTERM" / "SIGINT"). NULL on failure. */
struct sigstop *sigstop_new(struct event_base *b, void (*cb)(void *arg, const char *sig),
			    void *arg);
void sigstop_free(struct sigstop *s); /* accepts NULL */

/* ---- process start-up shared by the daemons ---- */

/* --version / --help / anything else for a daemon that takes no options:
 * returns -1 to go on (no arguments), else the exit code after printing. */
int evloop_args(int argc, char **argv, const char *name, const char *version);

/* SIGPIPE ignored (a peer closing a socket is an error return, not a
 * signal). */
void evloop_process_init(void);

/* "<hostname>-<pid>", a consumer name unique per process (fallback when the
 * host name is unknown). */
void evloop_consumer_name(char *out, size_t len, const char *fallback);

#endif
