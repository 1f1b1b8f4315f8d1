/* fdlimit.c - raising the soft open-file limit (see fdlimit.h). */
#include <sys/resource.h>

#include "common/fdlimit.h"
#include "common/log.h"

long fd_limit_raise(long need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need) {
		rlim_t want = (rlim_t)need;
		if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
			want = rl.rlim_max;
		struct rlimit up = {want, rl.rlim_max};
		if (want > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = want;
	}
	long have = rl.rlim_cur == RLIM_INFINITY ? need : (long)rl.rlim_cur;
	if (have < need)
		log_event(LOG_WARN,
			  "open-file limit below what the configuration may use; connections "
			  "beyond it fail (raise the hard limit: ulimit -Hn, LimitNOFILE=, "
			  "docker --ulimit nofile=)",
			  LF_I("limit", have), LF_I("needed", need));
	return have;
}
