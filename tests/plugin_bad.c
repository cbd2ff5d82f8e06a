/*
 * plugin_bad.c: broken handler plugins for check_handler_plugin, one per define:
 *   PLUGIN_NOSYM      no jobpool_handler symbol at all
 *   PLUGIN_ABI        abi_version 99
 *   PLUGIN_NOPROCESS  process is NULL
 *   PLUGIN_MINIMAL    not broken: no name, no init, no fini; process echoes
 */

#include <stddef.h>

#include "jobpool-handler.h"

static int
bad_process(void *state, const void *payload, size_t len, struct jobpool_output *out)
{
	if (state != NULL)
		return (JOBPOOL_HANDLER_PERMANENT);
	return (jobpool_output_write(out, payload, len) == 0 ? JOBPOOL_HANDLER_OK :
	    JOBPOOL_HANDLER_ERROR);
}

#if defined(PLUGIN_NOSYM)
/* Close, but not the name jobpoold looks up. */
const struct jobpool_handler jobpool_handler_v2 = {
	.abi_version = JOBPOOL_HANDLER_ABI_VERSION,
	.process = bad_process,
};
#elif defined(PLUGIN_ABI)
const struct jobpool_handler jobpool_handler = {
	.abi_version = 99,
	.name = "future",
	.process = bad_process,
};
#elif defined(PLUGIN_NOPROCESS)
const struct jobpool_handler jobpool_handler = {
	.abi_version = JOBPOOL_HANDLER_ABI_VERSION,
	.name = "noprocess",
};
/* Keep the function (and the compiler quiet about it) for the other variants' sake. */
int	(*plugin_bad_unused)(void *, const void *, size_t, struct jobpool_output *) =
	    bad_process;
#elif defined(PLUGIN_MINIMAL)
const struct jobpool_handler jobpool_handler = {
	.abi_version = JOBPOOL_HANDLER_ABI_VERSION,
	.process = bad_process,
};
#else
#error "define one of PLUGIN_NOSYM, PLUGIN_ABI, PLUGIN_NOPROCESS, PLUGIN_MINIMAL"
#endif
