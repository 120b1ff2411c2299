#include "log.h"
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static tr_log_level current_level = TR_LOG_INFO;
static tr_log_format current_format = TR_LOG_TEXT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void tr_log_setup(tr_log_level level, tr_log_format format)
{
    current_level = level;
    current_format = format;
}

tr_log_level tr_log_get_level(void)
{
    return current_level;
}

int tr_log_level_parse(const char *name)
{
    int i;

    for (i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

static void format_time(char *out, size_t size)
{
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(now.tv_nsec / 1000000) % 1000);
}

void tr_log(tr_log_level level, const char *module, const char *fmt, ...)
{
    /* Log lines are capped at 16 KiB; a longer message is cut with "...". */
    tr_buf msg = TR_BUF_INIT(16 * 1024);
    tr_buf line = TR_BUF_INIT(64 * 1024);
    char when[64];
    va_list ap;
    int rc;

    if (level > current_level)
        return;
    va_start(ap, fmt);
    rc = tr_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc != 0) {
        tr_buf_clear(&msg);
        (void)tr_buf_puts(&msg, "(log message too long or out of memory)");
    }
    format_time(when, sizeof(when));
    if (current_format == TR_LOG_JSON) {
        (void)tr_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"", when,
                            level_names[level]);
        (void)tr_buf_put_json_escaped(&line, module, strlen(module));
        (void)tr_buf_puts(&line, "\",\"msg\":\"");
        (void)tr_buf_put_json_escaped(&line, tr_buf_cstr(&msg), msg.len);
        (void)tr_buf_puts(&line, "\"}\n");
    } else {
        (void)tr_buf_printf(&line, "%s %-5s %s: %s\n", when, level_names[level], module,
                            tr_buf_cstr(&msg));
    }
    /* One write per line so concurrent writers do not interleave mid-line. */
    fwrite(tr_buf_cstr(&line), 1, line.len, stderr);
    fflush(stderr);
    tr_buf_dispose(&msg);
    tr_buf_dispose(&line);
}
