/* Errors are values: each function returns a status and leaves a message on its thread. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local char last_error[1024];

sadm_status sadm_error(sadm_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *sadm_last_error(void) { return last_error; }

const char *sadm_status_string(sadm_status status) {
    switch (status) {
    case SADM_OK: return "ok";
    case SADM_ERR_ARG: return "invalid argument";
    case SADM_ERR_NOMEM: return "out of memory";
    case SADM_ERR_IO: return "input/output error";
    case SADM_ERR_FORMAT: return "bad file format";
    case SADM_ERR_UNSUPPORTED: return "not supported";
    case SADM_ERR_NUMERIC: return "non-finite number";
    }
    return "unknown status";
}

const char *sadm_version(void) { return PACKAGE_VERSION; }
