/*
 * plugin_bad.c: broken handler plugins for check_handler_plugin, one per define:
 *   PLUGIN_NOSYM      no jobpool_handler symbol at all
 *   PLUGIN_ABI        abi_version 99
 *   PLUGIN_NOPROCESS  process is NULL
 *   PLUGIN_MINIMAL    not broken: no name, no init, no fini; process echoes
 *   PLUGIN_ABI1       not broken: built for ABI 1, whose struct ended at fini; what
 *                     follows it here (a process_batch) must never be read
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
#elif defined(PLUGIN_ABI1)
static int
bad_batch(void *state, struct jobpool_job *jobs, size_t n)
{
	return (JOBPOOL_HANDLER_PERMANENT);
}

/* Memory after a version 1 struct: a field of version 2 there is not the plugin's. */
const struct jobpool_handler jobpool_handler = {
	.abi_version = 1,
	.name = "abi1",
	.process = bad_process,
	.process_batch = bad_batch,
};
#else
#error "define one of PLUGIN_NOSYM, PLUGIN_ABI, PLUGIN_NOPROCESS, PLUGIN_MINIMAL, PLUGIN_ABI1"
#endif
