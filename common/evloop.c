/* evloop.c - loops, timers and signals over libevent, and the daemons' start-up. */
#include "common/evloop.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"

struct timer {
	struct event ev; /* embedded: one allocation per timer */
	timer_cb cb;
	void *arg;
	bool periodic;
};

struct sigstop {
	struct event term, intr;
	void (*cb)(void *arg, const char *sig);
	void *arg;
};

struct event_base *evloop_new(bool changelist)
{
	struct event_config *ec = event_config_new();
	if (!ec)
		return NULL;
	if (changelist)
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	struct event_base *b = event_base_new_with_config(ec);
	event_config_free(ec);
	return b;
}

void evloop_run(struct event_base *b)
{
	event_base_dispatch(b);
}

void evloop_run_once(struct event_base *b)
{
	event_base_loop(b, EVLOOP_NONBLOCK);
}

void evloop_stop(struct event_base *b)
{
	event_base_loopbreak(b);
}

void evloop_free(struct event_base *b)
{
	if (b)
		event_base_free(b);
}

void evloop_shutdown(void)
{
	libevent_global_shutdown();
}

/* ---- timers ---- */

static void timer_trampoline(evutil_socket_t fd, short what, void *arg)
{
	struct timer *t = arg;
	(void)fd;
	(void)what;
	t->cb(t->arg);
}

struct timer *timer_new(struct event_base *b, timer_cb cb, void *arg)
{
	struct timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cb = cb;
	t->arg = arg;
	if (event_assign(&t->ev, b, -1, 0, timer_trampoline, t) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

/* Re-assigns the event only when its kind changes: event_assign must not
 * touch a pending event, so it is deleted first. */
static void timer_arm(struct timer *t, long ms, bool periodic)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	if (t->periodic != periodic) {
		struct event_base *b = event_get_base(&t->ev);
		event_del(&t->ev);
		event_assign(&t->ev, b, -1, periodic ? EV_PERSIST : 0, timer_trampoline, t);
		t->periodic = periodic;
	}
	event_add(&t->ev, &tv);
}

void timer_every(struct timer *t, long ms)
{
	timer_arm(t, ms, true);
}

void timer_once(struct timer *t, long ms)
{
	timer_arm(t, ms, false);
}

struct once {
	timer_cb cb;
	void *arg;
};

static void once_trampoline(evutil_socket_t fd, short what, void *arg)
{
	struct once o = *(struct once *)arg;
	(void)fd;
	(void)what;
	free(arg);
	o.cb(o.arg);
}

int evloop_once(struct event_base *b, long ms, timer_cb cb, void *arg)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	struct once *o = malloc(sizeof(*o));
	if (!o)
		return -1;
	o->cb = cb;
	o->arg = arg;
	if (event_base_once(b, -1, EV_TIMEOUT, once_trampoline, o, &tv) != 0) {
		free(o);
		return -1;
	}
	return 0;
}

void timer_fire(struct timer *t)
{
	event_active(&t->ev, EV_TIMEOUT, 0);
}

void timer_stop(struct timer *t)
{
	event_del(&t->ev);
}

void timer_free(struct timer *t)
{
	if (!t)
		return;
	event_del(&t->ev);
	free(t);
}

/* ---- signals ---- */

static void sig_trampoline(evutil_socket_t sig, short what, void *arg)
{
	struct sigstop *s = arg;
	(void)what;
	s->cb(s->arg, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

struct sigstop *sigstop_new(struct event_base *b, void (*cb)(void *arg, const char *sig), void *arg)
{
	struct sigstop *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cb = cb;
	s->arg = arg;
	if (evsignal_assign(&s->term, b, SIGTERM, sig_trampoline, s) != 0 ||
	    evsignal_assign(&s->intr, b, SIGINT, sig_trampoline, s) != 0 ||
	    evsignal_add(&s->term, NULL) != 0) {
		free(s);
		return NULL;
	}
	if (evsignal_add(&s->intr, NULL) != 0) {
		event_del(&s->term);
		free(s);
		return NULL;
	}
	return s;
}

void sigstop_free(struct sigstop *s)
{
	if (!s)
		return;
	event_del(&s->term);
	event_del(&s->intr);
	free(s);
}

/* ---- start-up ---- */

int evloop_args(int argc, char **argv, const char *name, const char *version)
{
	if (argc <= 1)
		return -1;
	if (strcmp(argv[1], "--version") == 0) {
		printf("%s %s\n", name, version);
		return 0;
	}
	bool help = strcmp(argv[1], "--help") == 0;
	fprintf(help ? stdout : stderr,
		"usage: %s [--version | --help]\n"
		"Configuration comes from the environment; see README.md.\n",
		name);
	return help ? 0 : 2;
}

void evloop_process_init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

void evloop_consumer_name(char *out, size_t len, const char *fallback)
{
	char host[64] = {0}; /* gethostname may not terminate a truncated name */
	snprintf(host, sizeof(host), "%s", fallback);
	gethostname(host, sizeof(host) - 1);
	snprintf(out, len, "%s-%ld", host, (long)getpid());
}
