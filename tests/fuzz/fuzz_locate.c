/*
 * fuzz_locate.c - libFuzzer target for fixers/locate_index.c: arbitrary bytes
 * as one YAML file of a work tree (as a kustomization.yaml, so the overlay
 * code runs too), then the queries over whatever was indexed. Every
 * document must have sane lines, and nothing may read out of bounds.
 */
#include "locate.h"

#include "alloc.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_locate_index *index = NULL;
    tr_locate_names defined, referenced;
    tr_locate_match matches[4];
    tr_error err = {0};
    size_t i;

    if (tr_locate_index_from_buffer(&index, "app/kustomization.yaml", (const char *)data, size,
                                    &err) != 0)
        return 0;
    for (i = 0; i < tr_locate_index_doc_count(index); i++) {
        const tr_locate_doc *d = tr_locate_index_doc(index, i);

        if (d->start_line < 1 || d->end_line < d->start_line)
            abort();
        if (d->name != NULL)
            (void)tr_locate_find(index, "app", d->kind, d->name, d->namespace_, matches, 4);
    }
    (void)tr_locate_find(index, NULL, "Deployment", "web", "default", matches, 4);
    if (tr_locate_config_refs(&defined, &referenced, index, "default", "Secret", &err) == 0) {
        tr_locate_names_dispose(&defined);
        tr_locate_names_dispose(&referenced);
    }
    tr_locate_index_free(index);
    return 0;
}
