/* fdlimit.h - open-file limit: a daemon that may hold many sockets raises its
 * own soft RLIMIT_NOFILE at start-up, as far as the hard limit allows. */
#ifndef COMMON_FDLIMIT_H
#define COMMON_FDLIMIT_H

/* Raises the soft limit to at least need descriptors if it is lower (never
 * lowers it). Returns the soft limit then in force; below need, a warning
 * says what the daemon may fail to open and how to raise the hard limit. */
long fd_limit_raise(long need);

#endif
