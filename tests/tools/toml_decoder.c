/*
 * toml_decoder.c - the decoder the official toml-test suite drives: reads
 * one TOML document on stdin and prints it as toml-test's "tagged JSON"
 * (every leaf is {"type": T, "value": "text"}), exit 0; or prints the
 * parser's "LINE:COLUMN: message" on stderr, exit 1.
 *
 * The JSON is written with tr_buf rather than cJSON because TOML strings
 * and keys may hold "\u0000", which cJSON's C strings cannot carry.
 */
#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "toml.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

static int put_string(tr_buf *out, const char *s, size_t len)
{
    int rc = tr_buf_putc(out, '"');

    if (rc == TR_OK)
        rc = tr_buf_put_json_escaped(out, s, len);
    if (rc == TR_OK)
        rc = tr_buf_putc(out, '"');
    return rc;
}

static int put_leaf(tr_buf *out, const char *type, const char *text)
{
    return tr_buf_printf(out, "{\"type\":\"%s\",\"value\":\"%s\"}", type, text);
}

static int put_float(tr_buf *out, double number)
{
    char text[64];

    if (isnan(number))
        return put_leaf(out, "float", "nan");
    if (isinf(number))
        return put_leaf(out, "float", number < 0 ? "-inf" : "inf");
    (void)snprintf(text, sizeof(text), "%.17g", number);
    return put_leaf(out, "float", text);
}

/* Recursion is bounded by the parser's TR_TOML_MAX_DEPTH. */
static int put_value(tr_buf *out, const tr_toml_value *value)
{
    const char *s, *key;
    char text[32];
    size_t i, len;
    int rc = TR_OK;

    switch (tr_toml_type_of(value)) {
    case TR_TOML_TABLE:
        rc = tr_buf_putc(out, '{');
        for (i = 0; rc == TR_OK && i < tr_toml_count(value); i++) {
            key = tr_toml_key_at_len(value, i, &len);
            if (i > 0)
                rc = tr_buf_putc(out, ',');
            if (rc == TR_OK)
                rc = put_string(out, key, len);
            if (rc == TR_OK)
                rc = tr_buf_putc(out, ':');
            if (rc == TR_OK)
                rc = put_value(out, tr_toml_at(value, i));
        }
        return rc == TR_OK ? tr_buf_putc(out, '}') : rc;
    case TR_TOML_ARRAY:
        rc = tr_buf_putc(out, '[');
        for (i = 0; rc == TR_OK && i < tr_toml_count(value); i++) {
            if (i > 0)
                rc = tr_buf_putc(out, ',');
            if (rc == TR_OK)
                rc = put_value(out, tr_toml_at(value, i));
        }
        return rc == TR_OK ? tr_buf_putc(out, ']') : rc;
    case TR_TOML_STRING:
        s = tr_toml_string(value, &len);
        rc = tr_buf_puts(out, "{\"type\":\"string\",\"value\":");
        if (rc == TR_OK)
            rc = put_string(out, s, len);
        return rc == TR_OK ? tr_buf_putc(out, '}') : rc;
    case TR_TOML_INTEGER:
        (void)snprintf(text, sizeof(text), "%" PRId64, tr_toml_integer(value));
        return put_leaf(out, "integer", text);
    case TR_TOML_FLOAT:
        return put_float(out, tr_toml_float(value));
    case TR_TOML_BOOL:
        return put_leaf(out, "bool", tr_toml_bool(value) ? "true" : "false");
    case TR_TOML_DATETIME:
        return put_leaf(out, "datetime", tr_toml_datetime_text(value, NULL));
    case TR_TOML_DATETIME_LOCAL:
        return put_leaf(out, "datetime-local", tr_toml_datetime_text(value, NULL));
    case TR_TOML_DATE_LOCAL:
        return put_leaf(out, "date-local", tr_toml_datetime_text(value, NULL));
    case TR_TOML_TIME_LOCAL:
        return put_leaf(out, "time-local", tr_toml_datetime_text(value, NULL));
    }
    return TR_EINVAL;
}

int main(void)
{
    tr_buf input = TR_BUF_INIT(TR_TOML_MAX_INPUT + 1);
    tr_buf output = TR_BUF_INIT((size_t)1 << 30); /* tagged JSON is ~20x the TOML */
    tr_toml_value *doc = NULL;
    tr_error err = { 0, "" };
    char chunk[65536];
    size_t n;
    int status = 1, rc;

    if (tr_alloc_install() != TR_OK) {
        fprintf(stderr, "toml-decoder: cannot install the allocator\n");
        return 1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        rc = tr_buf_put(&input, chunk, n);
        if (rc != TR_OK) {
            fprintf(stderr, "toml-decoder: input: %s\n", tr_strerror(rc));
            goto cleanup;
        }
    }
    if (ferror(stdin)) {
        fprintf(stderr, "toml-decoder: cannot read stdin\n");
        goto cleanup;
    }
    rc = tr_toml_parse(&doc, input.ptr, input.len, &err);
    if (rc != TR_OK) {
        fprintf(stderr, "%s\n", err.message);
        goto cleanup;
    }
    rc = put_value(&output, doc);
    if (rc != TR_OK) {
        fprintf(stderr, "toml-decoder: output: %s\n", tr_strerror(rc));
        goto cleanup;
    }
    if (fwrite(output.ptr, 1, output.len, stdout) != output.len || putchar('\n') == EOF) {
        fprintf(stderr, "toml-decoder: cannot write stdout\n");
        goto cleanup;
    }
    status = 0;
cleanup:
    tr_toml_free(doc);
    tr_buf_dispose(&output);
    tr_buf_dispose(&input);
    tr_alloc_uninstall();
    return status;
}
