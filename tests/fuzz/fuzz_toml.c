/*
 * fuzz_toml.c - libFuzzer target for the TOML parser: parse the input, walk
 * the whole tree through the public accessors (so every node and every
 * string is read), and free it. ASan/UBSan do the judging.
 */
#include "alloc.h"
#include "error.h"
#include "toml.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

/* Recursion is bounded by the parser's TR_TOML_MAX_DEPTH. */
static void walk(const tr_toml_value *value)
{
    tr_toml_datetime parts;
    const char *text;
    size_t i, len = 0;

    sink += (size_t)tr_toml_line(value);
    sink += strlen(tr_toml_type_name(tr_toml_type_of(value)));
    switch (tr_toml_type_of(value)) {
    case TR_TOML_TABLE:
        for (i = 0; i < tr_toml_count(value); i++) {
            const char *key = tr_toml_key_at_len(value, i, &len);

            if (len > 0)
                sink += (unsigned char)key[len - 1];
            /* A key with a NUL in it is found under its C-string prefix, if at all. */
            if (memchr(key, '\0', len) == NULL && tr_toml_get(value, key) != tr_toml_at(value, i))
                __builtin_trap();
            walk(tr_toml_at(value, i));
        }
        sink += tr_toml_key_at(value, i) == NULL;
        break;
    case TR_TOML_ARRAY:
        for (i = 0; i < tr_toml_count(value); i++)
            walk(tr_toml_at(value, i));
        sink += tr_toml_at(value, i) == NULL;
        break;
    case TR_TOML_STRING:
        text = tr_toml_string(value, &len);
        if (text[len] != '\0')
            __builtin_trap();
        if (len > 0)
            sink += (unsigned char)text[len - 1];
        break;
    case TR_TOML_INTEGER:
        sink += (size_t)tr_toml_integer(value);
        break;
    case TR_TOML_FLOAT:
        sink += tr_toml_float(value) > 0;
        break;
    case TR_TOML_BOOL:
        sink += tr_toml_bool(value);
        break;
    case TR_TOML_DATETIME:
    case TR_TOML_DATETIME_LOCAL:
    case TR_TOML_DATE_LOCAL:
    case TR_TOML_TIME_LOCAL:
        text = tr_toml_datetime_text(value, &parts);
        sink += strlen(text) + (size_t)parts.nanosecond + (size_t)parts.offset_minutes;
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_toml_value *doc = NULL;
    tr_error err = { 0, "" };
    int rc = tr_toml_parse(&doc, (const char *)data, size, &err);

    if (rc == TR_OK) {
        walk(doc);
        tr_toml_free(doc);
    } else if (doc != NULL || strchr(err.message, ':') == NULL) {
        __builtin_trap(); /* failures leave nothing behind and always say where */
    }
    return 0;
}
