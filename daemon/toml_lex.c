/*
 * toml_lex.c - the scalar half of the TOML parser: the whole-input checks
 * (UTF-8, control characters), the four kinds of string, integers, floats,
 * booleans and the four date-time types, and the "LINE:COLUMN: message"
 * errors every part of the parser reports through.
 *
 * Control characters other than tab, LF and CRLF are never valid anywhere
 * in a TOML 1.0 document (not in strings, not in comments, not between
 * tokens), so tr_toml_check_text() rejects them, lone CRs and bad UTF-8 in
 * one pass before parsing starts; the lexers below can then treat every
 * byte as either a token character or text.
 */
#include "alloc.h"
#include "toml_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest token quoted back in an error message. */
#define QUOTE_MAX 40

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int tr_toml_line_of(tr_toml_parser *p, size_t pos)
{
    size_t i;

    if (pos > p->len)
        pos = p->len;
    /* Lines are asked for mostly in increasing order: resume from the last answer. */
    if (pos < p->line_cache_pos) {
        p->line_cache_pos = 0;
        p->line_cache_line = 1;
    }
    for (i = p->line_cache_pos; i < pos; i++)
        if (p->text[i] == '\n')
            p->line_cache_line++;
    p->line_cache_pos = pos;
    return p->line_cache_line;
}

int tr_toml_fail(tr_toml_parser *p, size_t pos, const char *fmt, ...)
{
    char message[TR_ERROR_MSG_MAX];
    size_t start;
    int column = 1;
    va_list ap;

    if (pos > p->len)
        pos = p->len;
    start = pos;
    while (start > 0 && p->text[start - 1] != '\n')
        start--;
    /* Columns count characters, not bytes: skip UTF-8 continuation bytes. */
    for (; start < pos; start++)
        if (((unsigned char)p->text[start] & 0xC0) != 0x80)
            column++;
    va_start(ap, fmt);
    (void)vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    return tr_error_set(p->err, TR_EPARSE, "%d:%d: %s", tr_toml_line_of(p, pos), column,
                        message);
}

int tr_toml_nomem(tr_toml_parser *p)
{
    return tr_error_set(p->err, TR_ENOMEM, "%d: out of memory", tr_toml_line_of(p, p->pos));
}

const char *tr_toml_describe(const tr_toml_parser *p, size_t pos, char *buf, size_t size)
{
    unsigned char c;
    size_t n = 1;

    if (pos >= p->len)
        return "end of input";
    c = (unsigned char)p->text[pos];
    if (c == '\n' || c == '\r')
        return "end of line";
    if (c == '\t')
        return "a tab";
    if (c >= 0x80) /* the input is valid UTF-8 by now: quote the whole character */
        n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (pos + n > p->len)
        n = p->len - pos;
    (void)snprintf(buf, size, "'%.*s'", (int)n, p->text + pos);
    return buf;
}

static int utf8_error(tr_toml_parser *p, size_t pos)
{
    return tr_toml_fail(p, pos, "invalid UTF-8 byte 0x%02X", (unsigned char)p->text[pos]);
}

int tr_toml_check_text(tr_toml_parser *p)
{
    const unsigned char *s = (const unsigned char *)p->text;
    size_t i = 0, k, extra;
    uint32_t cp, min;

    while (i < p->len) {
        unsigned char c = s[i];

        if (c < 0x80) {
            if (c == '\r' && (i + 1 >= p->len || s[i + 1] != '\n'))
                return tr_toml_fail(p, i, "carriage return not followed by a line feed");
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F)
                return tr_toml_fail(p, i, "control character U+%04X is not allowed", c);
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            extra = 1, min = 0x80, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2, min = 0x800, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return utf8_error(p, i);
        }
        if (i + extra >= p->len)
            return tr_toml_fail(p, i, "truncated UTF-8 sequence");
        for (k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return utf8_error(p, i + k);
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return tr_toml_fail(p, i, "invalid UTF-8 sequence (overlong, surrogate or "
                                      "beyond U+10FFFF)");
        i += extra + 1;
    }
    return TR_OK;
}

/* ------------------------------------------------------------------ strings */

static int put_utf8(tr_buf *buf, uint32_t cp)
{
    char out[4];
    size_t n;

    if (cp < 0x80) {
        out[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    return tr_buf_put(buf, out, n);
}

static int put_checked(tr_toml_parser *p, const char *data, size_t len)
{
    int rc = tr_buf_put(&p->scratch, data, len);

    if (rc == TR_ENOMEM)
        return tr_toml_nomem(p);
    if (rc != TR_OK)
        return tr_toml_fail(p, p->pos, "string too long");
    return TR_OK;
}

/* A \uXXXX or \UXXXXXXXX escape; p->pos is on the 'u' or 'U'. */
static int lex_unicode_escape(tr_toml_parser *p)
{
    size_t start = p->pos - 1, digits = p->text[p->pos] == 'u' ? 4 : 8, i;
    uint32_t cp = 0;
    int rc;

    for (i = 1; i <= digits; i++) {
        int v = p->pos + i < p->len ? tr_hex_value((unsigned char)p->text[p->pos + i]) : -1;

        if (v < 0)
            return tr_toml_fail(p, start, "\\%c escape needs %zu hexadecimal digits",
                                p->text[p->pos], digits);
        cp = (cp << 4) | (uint32_t)v;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return tr_toml_fail(p, start, "escape \\%.*s is not a Unicode scalar value",
                            (int)digits + 1, p->text + p->pos);
    rc = put_utf8(&p->scratch, cp);
    if (rc != TR_OK)
        return rc == TR_ENOMEM ? tr_toml_nomem(p) : tr_toml_fail(p, start, "string too long");
    p->pos += digits + 1;
    return TR_OK;
}

/* In a multi-line basic string, "\" + spaces + newline swallows all whitespace after it. */
static int lex_line_ending_backslash(tr_toml_parser *p)
{
    size_t start = p->pos - 1, i = p->pos;

    while (i < p->len && (p->text[i] == ' ' || p->text[i] == '\t'))
        i++;
    if (i >= p->len || (p->text[i] != '\n' && p->text[i] != '\r'))
        return tr_toml_fail(p, start, "invalid escape: only whitespace may follow a "
                                      "line-ending backslash");
    while (i < p->len && (p->text[i] == ' ' || p->text[i] == '\t' || p->text[i] == '\n' ||
                          p->text[i] == '\r'))
        i++;
    p->pos = i;
    return TR_OK;
}

static int lex_escape(tr_toml_parser *p, bool multi)
{
    static const char simple_from[] = "btnfr\"\\";
    static const char simple_to[] = "\b\t\n\f\r\"\\";
    const char *hit;
    char c, what[16];

    p->pos++; /* the backslash */
    if (p->pos >= p->len)
        return tr_toml_fail(p, p->pos - 1, "unterminated string");
    c = p->text[p->pos];
    if (c == 'u' || c == 'U')
        return lex_unicode_escape(p);
    if (multi && (c == ' ' || c == '\t' || c == '\n' || c == '\r'))
        return lex_line_ending_backslash(p);
    hit = c != '\0' ? strchr(simple_from, c) : NULL;
    if (hit == NULL)
        return tr_toml_fail(p, p->pos - 1, "invalid escape sequence '\\' followed by %s",
                            tr_toml_describe(p, p->pos, what, sizeof(what)));
    p->pos++;
    return put_checked(p, &simple_to[hit - simple_from], 1);
}

int tr_toml_lex_string(tr_toml_parser *p, bool is_key, char **out, size_t *len_out)
{
    size_t start = p->pos, run;
    char quote = p->text[p->pos];
    bool basic = quote == '"';
    bool multi = p->pos + 2 < p->len && p->text[p->pos + 1] == quote &&
                 p->text[p->pos + 2] == quote;
    int rc;

    *out = NULL;
    *len_out = 0;
    if (multi && is_key)
        return tr_toml_fail(p, start, "a key cannot be a multi-line string");
    tr_buf_clear(&p->scratch);
    p->pos += multi ? 3 : 1;
    if (multi && p->pos < p->len && p->text[p->pos] == '\n')
        p->pos++;
    else if (multi && p->pos + 1 < p->len && p->text[p->pos] == '\r')
        p->pos += 2;
    for (;;) {
        char c;

        run = p->pos;
        while (run < p->len && p->text[run] != quote && p->text[run] != '\n' &&
               p->text[run] != '\r' && !(basic && p->text[run] == '\\'))
            run++;
        rc = put_checked(p, p->text + p->pos, run - p->pos);
        if (rc != TR_OK)
            return rc;
        p->pos = run;
        if (p->pos >= p->len)
            return tr_toml_fail(p, start, "unterminated string");
        c = p->text[p->pos];
        if (c == '\n' || c == '\r') {
            if (!multi)
                return tr_toml_fail(p, start, "unterminated string (newline before the "
                                              "closing quote)");
            /* Newlines are kept as LF whatever the file used. */
            p->pos += c == '\r' ? 2 : 1;
            rc = put_checked(p, "\n", 1);
        } else if (c == '\\') {
            rc = lex_escape(p, multi);
        } else if (!multi) {
            p->pos++;
            break;
        } else {
            size_t quotes = 0;

            while (p->pos + quotes < p->len && p->text[p->pos + quotes] == quote)
                quotes++;
            if (quotes > 5)
                return tr_toml_fail(p, p->pos + 5, "too many quotes at the end of a "
                                                   "multi-line string");
            p->pos += quotes;
            /* Up to two quotes right before the closing three belong to the text. */
            rc = put_checked(p, p->text + p->pos - quotes, quotes >= 3 ? quotes - 3 : quotes);
            if (rc != TR_OK)
                return rc;
            if (quotes >= 3)
                break;
        }
        if (rc != TR_OK)
            return rc;
    }
    *out = tr_strndup(p->scratch.ptr ? p->scratch.ptr : "", p->scratch.len);
    if (*out == NULL)
        return tr_toml_nomem(p);
    *len_out = p->scratch.len;
    return TR_OK;
}

/* ------------------------------------------------------------------ numbers */

static bool is_scalar_char(unsigned char c)
{
    return is_digit(c) || is_alpha(c) || c == '_' || c == '+' || c == '-' || c == '.' ||
           c == ':';
}

static bool is_base_digit(unsigned char c, int base)
{
    switch (base) {
    case 2: return c == '0' || c == '1';
    case 8: return c >= '0' && c <= '7';
    case 16: return tr_hex_value(c) >= 0;
    default: return is_digit(c);
    }
}

/*
 * Digits with single underscores between them, from s; returns the end of
 * the group, or NULL when it does not start with a digit or an underscore
 * is not between two digits.
 */
static const char *scan_digits(const char *s, const char *end, int base)
{
    if (s >= end || !is_base_digit((unsigned char)*s, base))
        return NULL;
    while (s < end) {
        if (is_base_digit((unsigned char)*s, base))
            s++;
        else if (*s == '_' && s + 1 < end && is_base_digit((unsigned char)s[1], base))
            s += 2;
        else if (*s == '_')
            return NULL;
        else
            break;
    }
    return s;
}

static int bad_number(tr_toml_parser *p, size_t start, size_t n, const char *why)
{
    return tr_toml_fail(p, start, "invalid number '%.*s%s': %s",
                        (int)(n > QUOTE_MAX ? QUOTE_MAX : n), p->text + start,
                        n > QUOTE_MAX ? "..." : "", why);
}

static int to_integer(tr_toml_parser *p, size_t start, size_t n, const char *s, const char *end,
                      int base, bool negative, int64_t *out)
{
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t value = 0;

    for (; s < end; s++) {
        uint64_t digit;

        if (*s == '_')
            continue;
        digit = (uint64_t)tr_hex_value((unsigned char)*s);
        if (value > (limit - digit) / (uint64_t)base)
            return bad_number(p, start, n, "does not fit in a 64-bit integer");
        value = value * (uint64_t)base + digit;
    }
    if (!negative)
        *out = (int64_t)value;
    else
        *out = value == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)value;
    return TR_OK;
}

static int to_float(tr_toml_parser *p, size_t start, size_t n, double *out)
{
    char *endptr = NULL;
    size_t i;
    int rc;

    tr_buf_clear(&p->scratch);
    for (i = 0; i < n; i++) {
        if (p->text[start + i] == '_')
            continue;
        rc = tr_buf_putc(&p->scratch, p->text[start + i]);
        if (rc != TR_OK)
            return rc == TR_ENOMEM ? tr_toml_nomem(p) : bad_number(p, start, n, "too long");
    }
    errno = 0;
    *out = strtod(p->scratch.ptr, &endptr);
    if (endptr == NULL || *endptr != '\0')
        return bad_number(p, start, n, "not a float");
    if (errno == ERANGE && isinf(*out))
        return bad_number(p, start, n, "too large for a 64-bit float");
    return TR_OK;
}

static int lex_number(tr_toml_parser *p, size_t start, size_t n, tr_toml_value *value)
{
    const char *tok = p->text + start, *end = tok + n, *s = tok, *q;
    bool negative = false, is_float = false;
    int base = 10;

    if (*s == '+' || *s == '-')
        negative = *s++ == '-';
    if (end - s >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')) {
        if (s != tok)
            return bad_number(p, start, n, "hexadecimal, octal and binary integers take no sign");
        base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
        s += 2;
        q = scan_digits(s, end, base);
        if (q != end)
            return bad_number(p, start, n, q == NULL ? "digits must not start or end with '_'"
                                                     " or have '__'" : "invalid digit");
        value->type = TR_TOML_INTEGER;
        return to_integer(p, start, n, s, end, base, false, &value->u.integer);
    }
    q = scan_digits(s, end, 10);
    if (q == NULL)
        return bad_number(p, start, n, s < end && is_digit((unsigned char)*s)
                                           ? "'_' must be between two digits"
                                           : "expected a digit");
    if (s[0] == '0' && q - s > 1)
        return bad_number(p, start, n, "leading zeros are not allowed");
    if (q < end && *q == '.') {
        is_float = true;
        q = scan_digits(q + 1, end, 10);
        if (q == NULL)
            return bad_number(p, start, n, "a decimal point must have digits on both sides");
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        is_float = true;
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        q = scan_digits(q, end, 10);
        if (q == NULL)
            return bad_number(p, start, n, "the exponent needs digits");
    }
    if (q != end)
        return bad_number(p, start, n, "unexpected characters");
    if (is_float) {
        value->type = TR_TOML_FLOAT;
        return to_float(p, start, n, &value->u.number);
    }
    value->type = TR_TOML_INTEGER;
    return to_integer(p, start, n, s, end, 10, negative, &value->u.integer);
}

/* ------------------------------------------------------------------ date-times */

/* The value of count decimal digits at s, or -1. */
static int read_digits(const char *s, size_t count)
{
    int value = 0;
    size_t i;

    for (i = 0; i < count; i++) {
        if (!is_digit((unsigned char)s[i]))
            return -1;
        value = value * 10 + (s[i] - '0');
    }
    return value;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

static bool read_date(const char *s, size_t n, tr_toml_datetime *dt)
{
    if (n < 10 || s[4] != '-' || s[7] != '-')
        return false;
    dt->year = read_digits(s, 4);
    dt->month = read_digits(s + 5, 2);
    dt->day = read_digits(s + 8, 2);
    return dt->year >= 0 && dt->month >= 1 && dt->month <= 12 && dt->day >= 1 &&
           dt->day <= days_in_month(dt->year, dt->month);
}

/* HH:MM:SS[.fraction]; *used is how many bytes it took. */
static bool read_time(const char *s, size_t n, tr_toml_datetime *dt, size_t *used)
{
    size_t i, digits = 0;

    if (n < 8 || s[2] != ':' || s[5] != ':')
        return false;
    dt->hour = read_digits(s, 2);
    dt->minute = read_digits(s + 3, 2);
    dt->second = read_digits(s + 6, 2);
    if (dt->hour < 0 || dt->hour > 23 || dt->minute < 0 || dt->minute > 59 || dt->second < 0 ||
        dt->second > 60)
        return false;
    i = 8;
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit((unsigned char)s[i]); i++, digits++)
            if (digits < 9) /* precision beyond nanoseconds is truncated */
                dt->nanosecond = dt->nanosecond * 10 + (s[i] - '0');
        if (digits == 0)
            return false;
        for (; digits < 9; digits++)
            dt->nanosecond *= 10;
    }
    *used = i;
    return true;
}

static bool read_offset(const char *s, size_t n, tr_toml_datetime *dt)
{
    int hours, minutes;

    if (n == 1 && (s[0] == 'Z' || s[0] == 'z')) {
        dt->has_offset = true;
        return true;
    }
    if (n != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':')
        return false;
    hours = read_digits(s + 1, 2);
    minutes = read_digits(s + 4, 2);
    if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59)
        return false;
    dt->has_offset = true;
    dt->offset_minutes = (s[0] == '-' ? -1 : 1) * (hours * 60 + minutes);
    return true;
}

static void format_datetime(tr_toml_value *value)
{
    const tr_toml_datetime *dt = &value->u.datetime.parts;
    char *text = value->u.datetime.text;
    size_t size = sizeof(value->u.datetime.text), used = 0;

    if (value->type != TR_TOML_TIME_LOCAL)
        used += (size_t)snprintf(text, size, "%04d-%02d-%02d", dt->year, dt->month, dt->day);
    if (value->type == TR_TOML_DATE_LOCAL)
        return;
    used += (size_t)snprintf(text + used, size - used, "%s%02d:%02d:%02d",
                             value->type == TR_TOML_TIME_LOCAL ? "" : "T", dt->hour, dt->minute,
                             dt->second);
    if (dt->nanosecond != 0) {
        int fraction = dt->nanosecond, width = 9;

        while (fraction % 10 == 0)
            fraction /= 10, width--;
        used += (size_t)snprintf(text + used, size - used, ".%0*d", width, fraction);
    }
    if (!dt->has_offset)
        return;
    if (dt->offset_minutes == 0)
        (void)snprintf(text + used, size - used, "Z");
    else
        (void)snprintf(text + used, size - used, "%c%02d:%02d",
                       dt->offset_minutes < 0 ? '-' : '+', abs(dt->offset_minutes) / 60,
                       abs(dt->offset_minutes) % 60);
}

static int lex_datetime(tr_toml_parser *p, size_t start, size_t n, tr_toml_value *value)
{
    const char *tok = p->text + start;
    tr_toml_datetime *dt = &value->u.datetime.parts;
    size_t used = 0;
    const char *kind = "date-time";

    if (tok[2] == ':') {
        kind = "time";
        if (!read_time(tok, n, dt, &used) || used != n)
            goto bad;
        value->type = TR_TOML_TIME_LOCAL;
    } else if (!read_date(tok, n, dt)) {
        kind = "date";
        goto bad;
    } else if (n == 10) {
        value->type = TR_TOML_DATE_LOCAL;
    } else {
        if (tok[10] != 'T' && tok[10] != 't' && tok[10] != ' ')
            goto bad;
        if (!read_time(tok + 11, n - 11, dt, &used))
            goto bad;
        used += 11;
        if (used == n)
            value->type = TR_TOML_DATETIME_LOCAL;
        else if (read_offset(tok + used, n - used, dt))
            value->type = TR_TOML_DATETIME;
        else
            goto bad;
    }
    format_datetime(value);
    return TR_OK;
bad:
    return tr_toml_fail(p, start, "invalid %s '%.*s' (out of range or not RFC 3339)", kind,
                        (int)(n > QUOTE_MAX ? QUOTE_MAX : n), tok);
}

int tr_toml_lex_scalar(tr_toml_parser *p, int line, int depth, tr_toml_value **out)
{
    static const char *const specials[] = { "inf", "+inf", "-inf", "nan", "+nan", "-nan" };
    size_t start = p->pos, end = p->pos, n, i;
    tr_toml_value *value = NULL;
    const char *tok;
    char what[16];
    int rc;

    *out = NULL;
    while (end < p->len && is_scalar_char((unsigned char)p->text[end]))
        end++;
    /* "1979-05-27 07:32:00": RFC 3339 lets a space stand for the T. */
    if (end - start == 10 && p->text[start + 4] == '-' && end + 3 < p->len &&
        p->text[end] == ' ' && is_digit((unsigned char)p->text[end + 1]) &&
        is_digit((unsigned char)p->text[end + 2]) && p->text[end + 3] == ':') {
        end++;
        while (end < p->len && is_scalar_char((unsigned char)p->text[end]))
            end++;
    }
    n = end - start;
    tok = p->text + start;
    if (n == 0)
        return tr_toml_fail(p, start, "expected a value, found %s",
                            tr_toml_describe(p, start, what, sizeof(what)));
    value = tr_toml_value_new(TR_TOML_BOOL, line, depth);
    if (value == NULL)
        return tr_toml_nomem(p);
    if ((n == 4 && memcmp(tok, "true", 4) == 0) || (n == 5 && memcmp(tok, "false", 5) == 0)) {
        value->u.boolean = n == 4;
        rc = TR_OK;
        goto cleanup;
    }
    for (i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
        if (n == strlen(specials[i]) && memcmp(tok, specials[i], n) == 0) {
            value->type = TR_TOML_FLOAT;
            value->u.number = tok[n - 1] == 'f' ? INFINITY : NAN;
            if (tok[0] == '-')
                value->u.number = -value->u.number;
            rc = TR_OK;
            goto cleanup;
        }
    }
    if (n >= 3 && is_digit((unsigned char)tok[0]) && is_digit((unsigned char)tok[1]) &&
        (tok[2] == ':' || (n >= 5 && tok[4] == '-' && is_digit((unsigned char)tok[2]) &&
                           is_digit((unsigned char)tok[3]))))
        rc = lex_datetime(p, start, n, value);
    else if (is_digit((unsigned char)tok[0]) || tok[0] == '+' || tok[0] == '-')
        rc = lex_number(p, start, n, value);
    else
        rc = tr_toml_fail(p, start, "invalid value '%.*s%s' (strings need quotes)",
                          (int)(n > QUOTE_MAX ? QUOTE_MAX : n), tok, n > QUOTE_MAX ? "..." : "");
cleanup:
    if (rc != TR_OK) {
        tr_toml_free(value);
        return rc;
    }
    p->pos = end;
    *out = value;
    return TR_OK;
}
