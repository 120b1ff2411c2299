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

/* Messages are cut at this many bytes, visibly: the tail says how much went. */
#define LOG_MESSAGE_MAX (16 * 1024)

void tr_log(tr_log_level level, const char *module, const char *fmt, ...)
{
    char msg[LOG_MESSAGE_MAX + 64];
    tr_buf line = TR_BUF_INIT(4 * LOG_MESSAGE_MAX);
    char when[64];
    size_t msg_len;
    va_list ap;
    int needed;

    if (level > current_level)
        return;
    va_start(ap, fmt);
    needed = vsnprintf(msg, LOG_MESSAGE_MAX + 1, fmt, ap);
    va_end(ap);
    if (needed < 0)
        needed = snprintf(msg, sizeof(msg), "(unformattable log message)");
    if ((size_t)needed > LOG_MESSAGE_MAX)
        snprintf(msg + LOG_MESSAGE_MAX, 64, "... (%d bytes cut)", needed - LOG_MESSAGE_MAX);
    msg_len = strlen(msg);
    format_time(when, sizeof(when));
    if (current_format == TR_LOG_JSON) {
        (void)tr_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"", when,
                            level_names[level]);
        (void)tr_buf_put_json_escaped(&line, module, strlen(module));
        (void)tr_buf_puts(&line, "\",\"msg\":\"");
        (void)tr_buf_put_json_escaped(&line, msg, msg_len);
        (void)tr_buf_puts(&line, "\"}\n");
    } else {
        (void)tr_buf_printf(&line, "%s %-5s %s: %s\n", when, level_names[level], module, msg);
    }
    /* One write per line so concurrent writers do not interleave mid-line. */
    fwrite(tr_buf_cstr(&line), 1, line.len, stderr);
    fflush(stderr);
    tr_buf_dispose(&line);
}
