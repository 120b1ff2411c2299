/*
 * log.h - leveled log lines on stderr, as text or as JSON (one object per
 * line). Callers pass fields, not secrets: nothing here can tell a token
 * from a name, so secret values must never reach a log call (config.c masks
 * them before they could).
 */
#ifndef TR_LOG_H
#define TR_LOG_H

typedef enum tr_log_level {
    TR_LOG_ERROR = 0,
    TR_LOG_WARN = 1,
    TR_LOG_INFO = 2,
    TR_LOG_DEBUG = 3,
} tr_log_level;

typedef enum tr_log_format {
    TR_LOG_TEXT = 0,
    TR_LOG_JSON = 1,
} tr_log_format;

void tr_log_setup(tr_log_level level, tr_log_format format);
tr_log_level tr_log_get_level(void);
/* "error|warn|info|debug" → level; returns -1 when the name is unknown. */
int tr_log_level_parse(const char *name);

/*
 * One line: `2026-11-25T10:00:00.123Z info  store: opened ./var/triaged.db`
 * or {"ts":"...","level":"info","module":"store","msg":"opened ..."}.
 */
void tr_log(tr_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define tr_log_error(mod, ...) tr_log(TR_LOG_ERROR, (mod), __VA_ARGS__)
#define tr_log_warn(mod, ...) tr_log(TR_LOG_WARN, (mod), __VA_ARGS__)
#define tr_log_info(mod, ...) tr_log(TR_LOG_INFO, (mod), __VA_ARGS__)
#define tr_log_debug(mod, ...) tr_log(TR_LOG_DEBUG, (mod), __VA_ARGS__)

#endif
